#!/usr/bin/env bash
# The job queue under load, on each job store: SQLite (--db) and PostgreSQL
# (--store postgresql://..., a throwaway cluster this script makes with
# initdb and pg_ctl as the postgres user, on a unix socket in a temp dir
# only, stopped by its PID). For each store, in the same run:
#   - BENCH_ASYNC_JOBS (default 10000) asynchronous jobs (Prefer:
#     respond-async) of the trivial compiled program submitted with wrk,
#     each 202 sent only after the job's row is committed durably; then
#     waited for until all have finished: jobs/s accepted and completed;
#   - synchronous requests/s of the same program (wrk, BENCH_SYNC_SECONDS,
#     default 10), each recorded as a job;
#   - bytes per job in the store (the SQLite file with its WAL; the
#     PostgreSQL table with its indexes and TOAST).
# The target: PostgreSQL completes at least 70% of SQLite's jobs/s.
# Called by scripts/bench.sh; can also run alone (BENCH_STORES="sqlite" or
# "postgresql" for one). Exit status 0, or 1 on an error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"
JOBS="${BENCH_ASYNC_JOBS:-10000}"
SYNC_SECONDS="${BENCH_SYNC_SECONDS:-10}"
STORES="${BENCH_STORES:-sqlite postgresql}"
CONNS=32
THREADS=2
[[ $JOBS =~ ^[1-9][0-9]{0,6}$ ]] || { echo "bench_async: BENCH_ASYNC_JOBS must be a number" >&2; exit 1; }
[[ $SYNC_SECONDS =~ ^[1-9][0-9]{0,3}$ ]] || { echo "bench_async: BENCH_SYNC_SECONDS must be a number" >&2; exit 1; }

# An up-to-date Release build (incremental: quick when nothing changed).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target cgiq hello-c >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench-async.XXXXXX")
. scripts/bench_cgiq.sh
PG_DIR=
PG_PID=
pg_stop() {
	[[ -n $PG_PID ]] || return 0
	kill -INT "$PG_PID" 2>/dev/null || true # a fast shutdown
	for _ in $(seq 1 200); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$PG_PID" 2>/dev/null || true
	PG_PID=
}
cleanup() {
	cgiq_stop
	pg_stop
	rm -rf -- "$TMP"
	[[ -n $PG_DIR ]] && rm -rf -- "$PG_DIR"
	return 0
}
trap cleanup EXIT INT TERM

# pg_start: a cluster of its own in PG_DIR (the postgres user's: $TMP is
# root's alone), with PostgreSQL's default durability (fsync on); sets PG_PID.
pg_start() {
	local bin
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	[[ -x $bin/initdb ]] || { echo "bench_async: no PostgreSQL server (run ./scripts/setup.sh)" >&2; exit 1; }
	PG_DIR=$(mktemp -d /tmp/cgiq-bench-pg.XXXXXX)
	chown postgres: "$PG_DIR"
	chmod 755 "$PG_DIR"
	(cd / && runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U cgiq --auth=trust -E UTF8 \
		--locale=C.UTF-8 >"$TMP/initdb.log" 2>&1) || { cat "$TMP/initdb.log" >&2; exit 1; }
	(cd / && runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
		-o "-c listen_addresses='' -k '$PG_DIR'" start >/dev/null 2>&1) || { cat "$PG_DIR/server.log" >&2; exit 1; }
	PG_PID=$(head -n1 "$PG_DIR/data/postmaster.pid")
	"$bin/createdb" -h "$PG_DIR" -U cgiq cgiq
	PSQL="$bin/psql"
}

# sql QUERY: one value from the store being measured.
sql() {
	if [[ $STORE == sqlite ]]; then
		sqlite3 "$TMP/cgiq.db" "$1" 2>/dev/null || echo 0
	else
		"$PSQL" -XAtq -h "$PG_DIR" -U cgiq cgiq -c "$1" 2>/dev/null || echo 0
	fi
}

# metric NAME: its value on cgiq's /metrics (0 when absent).
metric() {
	curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v n="$1" '$1 == n {v = $2} END {printf "%d\n", v}'
}

store_bytes() {
	if [[ $STORE == sqlite ]]; then
		cat "$TMP"/cgiq.db* | wc -c
	else
		sql "SELECT pg_total_relation_size('jobs')"
	fi
}

cat >"$TMP/async.lua" <<'LUA'
wrk.headers["Prefer"] = "respond-async"
LUA
mkdir -p "$TMP/cgi"
cp build/examples/hello-c "$TMP/cgi/"

RESULTS=()
for STORE in $STORES; do
	case $STORE in
	sqlite) rm -f "$TMP"/cgiq.db*; STORE_ARGS=(--db "$TMP/cgiq.db") ;;
	postgresql)
		[[ -n $PG_PID ]] || pg_start
		STORE_ARGS=(--store "postgresql://cgiq@/cgiq?host=$PG_DIR") ;;
	*) echo "bench_async: unknown store '$STORE' (sqlite, postgresql)" >&2; exit 1 ;;
	esac
	rm -rf "$TMP/spool"
	ADMIN=$(free_port)
	build/cgiq --listen 127.0.0.1:0 --admin-listen "127.0.0.1:$ADMIN" --cgi-root "$TMP/cgi" "${STORE_ARGS[@]}" \
		--spool "$TMP/spool" --processing never --max-jobs 16 --queue-max $((JOBS + 100)) --log-level info \
		$ROOT_OK 2>"$TMP/cgiq.log" &
	PID=$!
	cgiq_wait_port bench_async

	# wrk runs until cgiq has answered JOBS 202s (its only 2xx here) (its own duration is only a
	# bound); every 202 is sent after its row is committed durably. Progress
	# is read from /metrics, which costs both stores the same, not from the
	# store (a psql a poll would load PostgreSQL alone).
	start=$(date +%s.%N)
	wrk -t$THREADS -c$CONNS -d600s -s "$TMP/async.lua" "http://127.0.0.1:$PORT/hello-c" >"$TMP/wrk.txt" &
	WRK=$!
	for _ in $(seq 1 6000); do
		[[ $(metric 'cgiq_responses_total{front="http",code="2xx"}') -ge $JOBS ]] && break
		sleep 0.05
	done
	kill -INT "$WRK" 2>/dev/null || true
	wait "$WRK" 2>/dev/null || true
	accepted_at=$(date +%s.%N)
	# Completion: every accepted job has ended (10 minutes at most), and its
	# row says so in the store.
	for _ in $(seq 1 6000); do
		[[ $(metric cgiq_jobs_running) == 0 && $(metric cgiq_jobs_queued) == 0 ]] && break
		sleep 0.05
	done
	for _ in $(seq 1 600); do
		[[ $(sql "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')") == 0 ]] && break
		sleep 0.1
	done
	done_at=$(date +%s.%N)
	submitted=$(sql "SELECT count(*) FROM jobs")
	succeeded=$(sql "SELECT count(*) FROM jobs WHERE state = 'succeeded'")
	non202=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TMP/wrk.txt")
	bytes=$(store_bytes)
	# Synchronous requests, each a job recorded in the same store.
	wrk -t$THREADS -c$CONNS -d"${SYNC_SECONDS}s" "http://127.0.0.1:$PORT/hello-c" >"$TMP/wrk-sync.txt"
	sync_rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$TMP/wrk-sync.txt")
	sync_bad=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TMP/wrk-sync.txt")
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
	cgiq_stop
	RESULTS+=("$(awk -v st="$STORE" -v n="$submitted" -v ok="$succeeded" -v s="$start" -v a="$accepted_at" \
		-v d="$done_at" -v b="$bytes" -v rss="$rss" -v bad="${non202:-0}" -v rps="$sync_rps" \
		-v sbad="${sync_bad:-0}" 'BEGIN {
		printf "%s %d %.0f %.0f %d %d %.0f %d %d %d\n", st, n, n / (a - s), n / (d - s), ok, bad, b / (n ? n : 1), rps, sbad, rss
	}')")
done

printf '\nasync jobs accepted with Prefer: respond-async (wrk -t2 -c32), then synchronous requests (wrk -t2 -c32, %s s)\n' "$SYNC_SECONDS"
printf '| store | jobs | accepted jobs/s | completed jobs/s | succeeded | non-202 | bytes/job | sync req/s | sync non-2xx | cgiq peak RSS |\n'
printf '|-------|-----:|----------------:|-----------------:|----------:|--------:|----------:|-----------:|-------------:|--------------:|\n'
for r in "${RESULTS[@]}"; do
	read -r st n acc comp ok bad bpj rps sbad rss <<<"$r"
	printf '| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d kB |\n' "$st" "$n" "$acc" "$comp" "$ok" "$bad" "$bpj" "$rps" "$sbad" "$rss"
done
if [[ ${#RESULTS[@]} == 2 ]]; then
	read -r _ _ acc1 comp1 _ _ _ rps1 _ _ <<<"${RESULTS[0]}"
	read -r _ _ acc2 comp2 _ _ _ rps2 _ _ <<<"${RESULTS[1]}"
	awk -v a1="$acc1" -v c1="$comp1" -v r1="$rps1" -v a2="$acc2" -v c2="$comp2" -v r2="$rps2" 'BEGIN {
		printf "PostgreSQL / SQLite: accepted %.2f, completed %.2f (target >= 0.70), sync %.2f\n", a2 / a1, c2 / c1, r2 / r1
	}'
fi
