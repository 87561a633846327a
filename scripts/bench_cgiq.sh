# Sourced by the benchmarks that run a cgiq of their own (bench_async.sh,
# bench_waiting.sh): starting it on a free loopback port and stopping it by
# its PID. Needs TMP (a private temp dir); sets ROOT_OK, PID and PORT.

# As root, cgiq is told to run the programs as root (--allow-root): the
# benchmark's files live in a private (0700) temp dir only root can enter.
ROOT_OK=
[[ $(id -u) == 0 ]] && ROOT_OK=--allow-root
PID=
PORT=

# cgiq_stop: SIGTERM, up to 15 s for a clean stop, then SIGKILL.
cgiq_stop() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null || true
		for _ in $(seq 1 150); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PID" 2>/dev/null || true
	fi
	[[ -n $PID ]] && wait "$PID" 2>/dev/null || true
	PID=
}

# cgiq_wait_port NAME: PORT from "listening on" in $TMP/cgiq.log (10 s at
# most); exits with the log when cgiq did not start.
cgiq_wait_port() {
	PORT=
	for _ in $(seq 1 100); do
		PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/cgiq.log" | head -n1)
		[[ -n $PORT ]] && return 0
		sleep 0.1
	done
	echo "$1: cgiq did not start" >&2
	cat "$TMP/cgiq.log" >&2
	exit 1
}
