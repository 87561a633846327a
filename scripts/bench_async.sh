#!/usr/bin/env bash
# The job queue under load: submits BENCH_ASYNC_JOBS (default 10000)
# asynchronous jobs (Prefer: respond-async) of the trivial compiled program
# to cgiq on 127.0.0.1 with wrk, then waits for all of them to finish.
# Reports jobs/s accepted (each 202 is sent only after the job's row is
# fsync'ed) and completed, and the database size per job.
# Called by scripts/bench.sh; can also run alone. Exit status 0 or 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS="${BENCH_ASYNC_JOBS:-10000}"
CONNS=32
THREADS=2
[[ $JOBS =~ ^[1-9][0-9]{0,6}$ ]] || { echo "bench_async: BENCH_ASYNC_JOBS must be a number" >&2; exit 1; }

# An up-to-date Release build (incremental: quick when nothing changed).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target cgiq hello-c >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench-async.XXXXXX")
. scripts/bench_cgiq.sh
cleanup() { cgiq_stop; rm -rf -- "$TMP"; }
trap cleanup EXIT INT TERM

mkdir -p "$TMP/cgi"
cp build/examples/hello-c "$TMP/cgi/"
build/cgiq --listen 127.0.0.1:0 --cgi-root "$TMP/cgi" --db "$TMP/cgiq.db" --spool "$TMP/spool" \
	--processing never --max-jobs 16 --queue-max $((JOBS + 100)) --log-level info $ROOT_OK \
	2>"$TMP/cgiq.log" &
PID=$!
cgiq_wait_port bench_async

cat >"$TMP/async.lua" <<'LUA'
wrk.headers["Prefer"] = "respond-async"
LUA

count() { sqlite3 "$TMP/cgiq.db" "SELECT count(*) FROM jobs WHERE $1" 2>/dev/null || echo 0; }

# wrk runs until the database holds JOBS accepted jobs (its own duration is
# only a bound); every 202 is sent after its row is committed with fsync.
start=$(date +%s.%N)
wrk -t$THREADS -c$CONNS -d600s -s "$TMP/async.lua" "http://127.0.0.1:$PORT/hello-c" >"$TMP/wrk.txt" &
WRK=$!
for _ in $(seq 1 6000); do
	[[ $(count "1") -ge $JOBS ]] && break
	sleep 0.05
done
kill -INT "$WRK" 2>/dev/null || true
wait "$WRK" 2>/dev/null || true
accepted_at=$(date +%s.%N)
submitted=$(count "1")
# Completion: every accepted row has left queued/running (10 minutes at most).
for _ in $(seq 1 6000); do
	[[ $(count "state IN ('queued', 'running')") == 0 ]] && break
	sleep 0.1
done
done_at=$(date +%s.%N)
succeeded=$(count "state = 'succeeded'")
non202=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$TMP/wrk.txt")
refused=$(grep -c 'queue full' "$TMP/cgiq.log" || true)
db_bytes=$(cat "$TMP"/cgiq.db* | wc -c)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")

awk -v n="$submitted" -v ok="$succeeded" -v s="$start" -v a="$accepted_at" -v d="$done_at" \
	-v db="$db_bytes" -v rss="$rss" -v bad="${non202:-0}" 'BEGIN {
	printf "\nasync jobs: %d accepted with Prefer: respond-async (wrk -t2 -c32), %d answers other than 202\n", n, bad
	printf "| jobs | accepted jobs/s | completed jobs/s | succeeded | db bytes/job | cgiq peak RSS |\n"
	printf "|-----:|----------------:|-----------------:|----------:|-------------:|--------------:|\n"
	printf "| %d | %.0f | %.0f | %d | %.0f | %d kB |\n", n, n / (a - s), n / (d - s), ok, db / (n ? n : 1), rss
}'
