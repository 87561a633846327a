#!/usr/bin/env bash
# Streamed output: one program that writes BENCH_STREAM_BYTES (default
# 1 GiB) as fast as a pipe takes it, served by cgiq (--stream, the HTTP
# front), by lighttpd's mod_cgi (server.stream-response-body = 2: streamed,
# the program held by a slow client, as cgiq does), and by nginx + fcgiwrap
# (fastcgi_buffering off), on 127.0.0.1, each read by curl in BENCH_ROUNDS
# rounds (default 3), which goes first rotating. Prints MB/s of each run
# and their medians, the ratio cgiq / lighttpd (target: at least 1), and
# cgiq's peak RSS. Then cgiq's memory per stream held by a slow reader:
# BENCH_SLOW_CLIENTS (default 20) curls reading 16 KB/s from a 64 MiB
# stream each; cgiq's resident memory, less what it had before they came,
# divided by their number (target: at most 256 KiB).
# Called by scripts/bench.sh; can also run alone. BENCH_CGIQ: another cgiq
# binary to measure. Exit status 0 when all were measured, else 1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"
BYTES="${BENCH_STREAM_BYTES:-1073741824}"
ROUNDS="${BENCH_ROUNDS:-3}"
SLOW="${BENCH_SLOW_CLIENTS:-20}"
[[ $BYTES =~ ^[1-9][0-9]{0,11}$ ]] || { echo "bench_stream: BENCH_STREAM_BYTES must be a number" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "bench_stream: BENCH_ROUNDS must be 1 to 99" >&2; exit 1; }
[[ $SLOW =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench_stream: BENCH_SLOW_CLIENTS must be 1 to 999" >&2; exit 1; }
for tool in lighttpd nginx fcgiwrap curl; do
	command -v "$tool" >/dev/null || { echo "bench_stream: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target cgiq >/dev/null
CGIQ="${BENCH_CGIQ:-build/cgiq}"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench-stream.XXXXXX")
. scripts/bench_cgiq.sh
OTHER_PIDS=()
SLOW_PIDS=()
FCGIWRAP_PID=
cleanup() {
	local p
	if [[ -n $FCGIWRAP_PID ]]; then
		kill -TERM -- "-$FCGIWRAP_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$FCGIWRAP_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$FCGIWRAP_PID" 2>/dev/null || true
		wait "$FCGIWRAP_PID" 2>/dev/null || true
	fi
	for p in "${SLOW_PIDS[@]}" "${OTHER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${SLOW_PIDS[@]}" "${OTHER_PIDS[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	cgiq_stop
	rm -rf -- "$TMP"
}
trap cleanup EXIT INT TERM

# The program: its header block, then BYTES (or QUERY_STRING) zero bytes.
mkdir -p "$TMP/cgi"
cat >"$TMP/cgi/bigstream" <<EOF
#!/bin/sh
n=\${QUERY_STRING:-$BYTES}
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec head -c "\$n" /dev/zero
EOF
chmod 755 "$TMP" "$TMP/cgi" "$TMP/cgi/bigstream"

"$CGIQ" --listen 127.0.0.1:0 --cgi-root "$TMP/cgi" --stream /bigstream --db "$TMP/cgiq.db" --spool "$TMP/spool" \
	--max-output 1000G --job-timeout 0 --max-jobs 200 $ROOT_OK 2>"$TMP/cgiq.log" &
PID=$!
cgiq_wait_port bench_stream

LPORT=$(free_port)
cat >"$TMP/lighttpd.conf" <<EOF
server.modules = ("mod_cgi")
server.document-root = "$TMP/cgi"
server.bind = "127.0.0.1"
server.port = $LPORT
server.pid-file = "$TMP/lighttpd.pid"
server.errorlog = "$TMP/lighttpd-error.log"
server.upload-dirs = ("$TMP")
server.stream-response-body = 2
cgi.assign = ("" => "")
EOF
lighttpd -D -f "$TMP/lighttpd.conf" 2>"$TMP/lighttpd.log" &
OTHER_PIDS+=($!)

# In a process group of its own: its workers are stopped with it.
start_fcgiwrap() {
	setsid fcgiwrap -c 2 -s "unix:$TMP/fcgiwrap.sock" >"$TMP/fcgiwrap.log" 2>&1 </dev/null &
	FCGIWRAP_PID=$!
	for _ in $(seq 1 50); do [[ -S $TMP/fcgiwrap.sock ]] && return 0; sleep 0.1; done
	echo "bench_stream: fcgiwrap did not start" >&2
	exit 1
}
start_fcgiwrap
NPORT=$(free_port)
nginx_start "	access_log off;
	server {
		listen 127.0.0.1:$NPORT;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $TMP/cgi\$fastcgi_script_name;
			fastcgi_buffering off;
			fastcgi_read_timeout 10m;
			fastcgi_pass unix:$TMP/fcgiwrap.sock;
		}
	}"
OTHER_PIDS+=("$NGINX_PID")

declare -A URL=([cgiq]="http://127.0.0.1:$PORT/bigstream" [lighttpd]="http://127.0.0.1:$LPORT/bigstream"
	[nginx+fcgiwrap]="http://127.0.0.1:$NPORT/bigstream")
NAMES=(cgiq lighttpd nginx+fcgiwrap)
# Each answers a short stream whole before it is measured.
for n in "${NAMES[@]}"; do
	ok=
	for _ in $(seq 1 100); do
		got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "${URL[$n]}?1000" || true)
		[[ $got == "200 1000" ]] && { ok=1; break; }
		sleep 0.1
	done
	[[ -n $ok ]] || { echo "bench_stream: $n does not answer ${URL[$n]} (got: $got)" >&2; exit 1; }
done

# MB/s (10^6 bytes) of one whole download, or "-" when it was not whole.
measure() {
	local out code size secs
	out=$(curl -s -o /dev/null --max-time 600 -w '%{http_code} %{size_download} %{time_total}' "$1" || true)
	read -r code size secs <<<"$out"
	if [[ $code == 200 && $size == "$BYTES" ]]; then
		awk -v b="$size" -v t="$secs" 'BEGIN { printf "%.0f", b / t / 1e6 }'
	else
		echo "-"
	fi
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "Streamed output: $BYTES bytes from one program (head -c from /dev/zero), read by curl, $ROUNDS rounds, MB/s:"
echo
echo "| round | cgiq | lighttpd mod_cgi | nginx + fcgiwrap |"
echo "|------:|-----:|-----------------:|-----------------:|"
declare -A ALL
for round in $(seq 1 "$ROUNDS"); do
	declare -A got=()
	# the order rotates: each goes first once in three rounds
	for k in 0 1 2; do
		n=${NAMES[$(((k + round - 1) % 3))]}
		got[$n]=$(measure "${URL[$n]}")
		[[ ${got[$n]} == - ]] && { echo "bench_stream: $n did not send the whole stream" >&2; exit 1; }
		ALL[$n]+="${got[$n]} "
	done
	printf '| %d | %s | %s | %s |\n' "$round" "${got[cgiq]}" "${got[lighttpd]}" "${got[nginx+fcgiwrap]}"
done
mc=$(tr ' ' '\n' <<<"${ALL[cgiq]}" | grep . | median)
ml=$(tr ' ' '\n' <<<"${ALL[lighttpd]}" | grep . | median)
mn=$(tr ' ' '\n' <<<"${ALL[nginx+fcgiwrap]}" | grep . | median)
echo
echo "medians: cgiq $mc MB/s, lighttpd $ml MB/s, nginx + fcgiwrap $mn MB/s;" \
	"cgiq / lighttpd $(awk -v a="$mc" -v b="$ml" 'BEGIN { printf "%.2f", a / b }') (target: at least 1)"
echo "cgiq peak RSS: $(awk '/^VmHWM:/ { print $2, $3 }' "/proc/$PID/status")"

# Slow readers: each holds a 64 MiB stream at 16 KB/s.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
rss0=$(rss_kb)
for _ in $(seq 1 "$SLOW"); do
	curl -s -o /dev/null --limit-rate 16k --max-time 60 "${URL[cgiq]}?67108864" &
	SLOW_PIDS+=($!)
done
# Four seconds of samples, once the buffers between have filled: the
# largest is the figure; the jobs still running at the end are counted.
peak=$rss0
for _ in $(seq 1 40); do
	sleep 0.1
	r=$(rss_kb)
	((r > peak)) && peak=$r
done
running=$(sqlite3 "$TMP/cgiq.db" "SELECT count(*) FROM jobs WHERE state = 'running'" 2>/dev/null || echo "?")
for p in "${SLOW_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${SLOW_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
SLOW_PIDS=()
echo "slow readers: $SLOW streams of 64 MiB at 16 KB/s each ($running jobs running at the end);" \
	"cgiq RSS $rss0 kB before, at most $peak kB with them:" \
	"$(((peak - rss0) / SLOW)) kB per stream (target: at most 256 KiB)"
[[ $running == "$SLOW" ]] || { echo "bench_stream: $running of $SLOW slow streams were running" >&2; exit 1; }
