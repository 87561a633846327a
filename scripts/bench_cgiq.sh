# Sourced by the benchmarks that run a cgiq of their own (bench_async.sh,
# bench_waiting.sh, bench_static.sh, bench_stream.sh): starting it on a free
# loopback port and stopping it by its PID; a free port; nginx beside it.
# Needs TMP (a private temp dir); sets ROOT_OK, PID and PORT.

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

# free_port: a free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# nginx_start HTTP_BODY: nginx in the foreground, one worker (as root its
# workers stay root, to reach the private temp dir), its pid file, logs and
# temp paths in $TMP, with HTTP_BODY inside its http block; sets NGINX_PID.
nginx_start() {
	local user_line=
	[[ $(id -u) == 0 ]] && user_line="user root;"
	mkdir -p "$TMP/nginx"
	cat >"$TMP/nginx.conf" <<EOF
daemon off;
$user_line
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
	client_body_temp_path $TMP/nginx/body;
	proxy_temp_path $TMP/nginx/proxy;
	fastcgi_temp_path $TMP/nginx/fastcgi;
	scgi_temp_path $TMP/nginx/scgi;
	uwsgi_temp_path $TMP/nginx/uwsgi;
$1
}
EOF
	nginx -p "$TMP/nginx" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" 2>"$TMP/nginx.log" &
	NGINX_PID=$!
}
