#!/usr/bin/env bash
# Static files: one 10 KiB style sheet, served by cgiq (--static assets, the
# HTTP front) and by nginx from the same directory, on 127.0.0.1, with wrk
# -t2 -c64 for BENCH_SECONDS (default 5) each, in BENCH_ROUNDS rounds
# (default 5) of one run each, which of the two goes first alternating.
# Prints requests/s and p99 latency of each run, each round's ratio
# cgiq / nginx, their median (target: at least 0.8), and cgiq's peak RSS.
# The machine is shared: the load of its other guests changes within
# seconds, so one pair of runs says little, the median of several pairs
# taken close together much more. Checks first that both answer the
# file's exact bytes. Called by scripts/bench.sh; can also run alone.
# BENCH_CGIQ: another cgiq binary to measure.
# Exit status 0 when both were measured, else 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"
DURATION="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-5}"
[[ $DURATION =~ ^[1-9][0-9]{0,3}$ ]] || { echo "bench_static: BENCH_SECONDS must be a number" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "bench_static: BENCH_ROUNDS must be 1 to 99" >&2; exit 1; }

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target cgiq >/dev/null
CGIQ="${BENCH_CGIQ:-build/cgiq}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench-static.XXXXXX")
. scripts/bench_cgiq.sh
NGINX_PID=
cleanup() {
	cgiq_stop
	if [[ -n $NGINX_PID ]]; then
		kill -TERM "$NGINX_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
	fi
	rm -rf -- "$TMP"
}
trap cleanup EXIT INT TERM

# 10 KiB of CSS, the same bytes for both.
mkdir -p "$TMP/www"
for i in $(seq 1 400); do printf '.c%03d { color: #%06x; }\n' "$i" $((i * 4099 % 16777216)); done >"$TMP/www/style.css"
truncate -s 10240 "$TMP/www/style.css"
[[ $(stat -c %s "$TMP/www/style.css") == 10240 ]] || { echo "bench_static: the style sheet is not 10 KiB" >&2; exit 1; }
chmod 755 "$TMP" "$TMP/www"
chmod 644 "$TMP/www/style.css"

"$CGIQ" --listen 127.0.0.1:0 --cgi-root "$TMP/www" --static assets --db "$TMP/cgiq.db" --spool "$TMP/spool" \
	$ROOT_OK 2>"$TMP/cgiq.log" &
PID=$!
cgiq_wait_port bench_static

NGINX_PORT=$(free_port)
# a line per request, as nginx's default configuration and cgiq's log
nginx_start "	access_log $TMP/nginx-access.log;
	include /etc/nginx/mime.types;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $TMP/www;
	}"
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/style.css" && break; sleep 0.1; done

# Both answer the file's exact bytes.
for url in "http://127.0.0.1:$PORT/style.css" "http://127.0.0.1:$NGINX_PORT/style.css"; do
	curl -s -o "$TMP/got.css" "$url" && cmp -s "$TMP/got.css" "$TMP/www/style.css" ||
		{ echo "bench_static: $url does not answer the file" >&2; exit 1; }
done

# wrk's requests/s and p99 (ms) of one run.
measure() {
	local out rps p99
	out=$(wrk -t2 -c64 -d"${DURATION}s" --latency "$1" 2>&1)
	rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
	p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v }' <<<"$out")
	echo "$rps $p99"
}

echo
echo "Static file: a 10 KiB style sheet, wrk -t2 -c64, ${DURATION} s per run, $ROUNDS rounds, cgiq and nginx in turns:"
echo
echo "| round | cgiq req/s | cgiq p99 (ms) | nginx req/s | nginx p99 (ms) | ratio |"
echo "|------:|-----------:|--------------:|------------:|---------------:|------:|"
ratios=()
for run in $(seq 1 "$ROUNDS"); do
	if ((run % 2)); then
		read -r c_rps c_p99 < <(measure "http://127.0.0.1:$PORT/style.css")
		read -r n_rps n_p99 < <(measure "http://127.0.0.1:$NGINX_PORT/style.css")
	else
		read -r n_rps n_p99 < <(measure "http://127.0.0.1:$NGINX_PORT/style.css")
		read -r c_rps c_p99 < <(measure "http://127.0.0.1:$PORT/style.css")
	fi
	ratio=$(awk -v a="$c_rps" -v b="$n_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	ratios+=("$ratio")
	printf '| %d | %s | %s | %s | %s | %s |\n' "$run" "$c_rps" "$c_p99" "$n_rps" "$n_p99" "$ratio"
done
echo
echo "median ratio cgiq / nginx: $(printf '%s\n' "${ratios[@]}" | sort -n |
	awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }') (target: at least 0.8)"
echo
echo "cgiq peak RSS: $(awk '/^VmHWM:/ { print $2, $3 }' "/proc/$PID/status")"
echo "cgiq job rows after the runs: $(sqlite3 "$TMP/cgiq.db" 'SELECT count(*) FROM jobs' 2>/dev/null || echo 0) (a static file is not a job)"
