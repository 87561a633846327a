#!/usr/bin/env bash
# Clients waiting on one long job: for each count in BENCH_WAIT_CLIENTS
# (default "1000 5000 10000"), that many HTTP clients on 127.0.0.1 ask for
# the same program (shared through --coalesce: one job of
# BENCH_WAIT_SECONDS, default 30) with Prefer: processing, and get a 102
# every 2 s until it ends. build/examples/bench-waiting measures how late
# the 102s are against that schedule (each after the first: 2 s after the
# one before was due; the first: 2 s after the client sent its request,
# which also counts cgiq accepting and reading thousands of requests at
# once), whether every client got its whole 200, and cgiq's memory per
# waiting client (VmRSS once all wait, less VmRSS before they connect, over
# the count). A fresh cgiq per count.
# Called by scripts/bench.sh; can also run alone. BENCH_CGIQ: another
# cgiq binary to measure (a build of an older commit, for a comparison).
# Exit status 0 when every client of every count was answered, else 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
WAIT_S="${BENCH_WAIT_SECONDS:-30}"
LIST="${BENCH_WAIT_CLIENTS:-1000 5000 10000}"
[[ $WAIT_S =~ ^[1-9][0-9]{0,3}$ ]] || { echo "bench_waiting: BENCH_WAIT_SECONDS must be a number" >&2; exit 1; }
for n in $LIST; do
	[[ $n =~ ^[1-9][0-9]{0,4}$ ]] || { echo "bench_waiting: BENCH_WAIT_CLIENTS: '$n' is not a number up to 99999" >&2; exit 1; }
done

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target cgiq bench-waiting >/dev/null
CGIQ="${BENCH_CGIQ:-build/cgiq}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench-waiting.XXXXXX")
. scripts/bench_cgiq.sh
cleanup() { cgiq_stop; rm -rf -- "$TMP"; }
trap cleanup EXIT INT TERM

mkdir -p "$TMP/cgi"
printf '#!/bin/sh\nsleep %s\nprintf '"'"'Content-Type: text/plain\\n\\nwaited\\n'"'"'\n' "$WAIT_S" >"$TMP/cgi/slow"
printf '#!/bin/sh\nprintf '"'"'Content-Type: text/plain\\n\\nquick\\n'"'"'\n' >"$TMP/cgi/quick"
chmod 755 "$TMP/cgi/slow" "$TMP/cgi/quick"

status=0
rows=()
for n in $LIST; do
	rm -rf "$TMP/spool" "$TMP"/cgiq.db*
	# Descriptors for every client and then some; the 102s every 2 s.
	(ulimit -n $((n + 4096)) && exec "$CGIQ" --listen 127.0.0.1:0 --cgi-root "$TMP/cgi" --db "$TMP/cgiq.db" \
		--spool "$TMP/spool" --coalesce /slow --processing-after 2s --processing-interval 2s \
		--max-connections $((n + 100)) --job-timeout $((WAIT_S + 120))s $ROOT_OK 2>"$TMP/cgiq.log") &
	PID=$!
	cgiq_wait_port bench_waiting
	# One request first, so that the baseline holds what any first request
	# brings (the engine's threads, the database) and not the clients.
	curl -s -o /dev/null -m 10 "http://127.0.0.1:$PORT/quick" || true
	line=$(build/examples/bench-waiting "$PORT" /slow "$n" $((WAIT_S + 60)) 2000 2000 "$PID") || status=1
	jobs=$(grep -c ': succeeded, ' "$TMP/cgiq.log" || true)
	cgiq_stop
	declare -A f=()
	for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
	rows+=("$(printf '| %d | %s | %s | %s | %s / %s / %s | %s / %s | %s |' "$n" "${f[answered]}" "$((jobs - 1))" \
		"${f[102s]}" "${f[lateness_p50_ms]}" "${f[lateness_p99_ms]}" "${f[lateness_max_ms]}" "${f[first_p50_ms]}" \
		"${f[first_p99_ms]}" \
		"$(awk -v b="${f[per_client_bytes]}" 'BEGIN { printf "%.2f KiB", b / 1024 }')")")
	unset f
done

echo
echo "clients waiting on one coalesced ${WAIT_S} s job, a 102 every 2 s (Prefer: processing):"
echo "| clients | answered 200 | jobs run | 102s sent | 102 lateness p50 / p99 / max (ms) | first 102 late by p50 / p99 (ms) | cgiq memory per waiting client |"
echo "|--------:|-------------:|---------:|----------:|----------------------------------:|---------------------------------:|-------------------------------:|"
printf '%s\n' "${rows[@]}"
exit "$status"
