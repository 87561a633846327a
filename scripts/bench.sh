#!/usr/bin/env bash
# Compares cgiq with nginx + fcgiwrap, the usual way to run CGI programs
# behind a web server, on this machine and on 127.0.0.1 only.
#
# Two programs: build/examples/hello-c (a trivial compiled CGI program, so the
# gateway's own cost dominates) and examples/cgi-bin/hello (the same in shell,
# so a fork+exec of /bin/sh is included). Each is measured with wrk at 16 and
# 64 connections against both systems, the systems taking turns for every
# (program, connections) cell. Prints a table of requests/s and 99th
# percentile latency, then cgiq's peak RSS and the size of its job database.
#
#   ./scripts/bench.sh                    10 s per measurement
#   BENCH_SECONDS=30 ./scripts/bench.sh
#   BENCH_KEEP=1 ./scripts/bench.sh       keep the temp dir (configs, logs, wrk output)
#
# Environment: BENCH_SECONDS (default 10), BENCH_FCGIWRAP_CHILDREN (default 4),
# BENCH_ASYNC_JOBS (default 10000; 0 skips scripts/bench_async.sh at the end, the
# job queue and synchronous requests on SQLite and on a PostgreSQL of its own),
# BENCH_WAIT_CLIENTS (default "1000 5000 10000"; 0 skips scripts/bench_waiting.sh,
# clients waiting on one 30 s job, BENCH_WAIT_SECONDS), BENCH_STATIC (default 1; 0
# skips scripts/bench_static.sh, a 10 KiB static file against nginx),
# BENCH_STREAM (default 1; 0 skips scripts/bench_stream.sh, a 1 GiB streamed
# output against lighttpd and nginx + fcgiwrap, and slow readers),
# BENCH_KEEP (default 0). Uses the Release build in build/; builds it when
# build/cgiq is missing. Exit status: 0 when both systems were measured,
# 3 when cgiq could not be built or did not answer (the nginx + fcgiwrap half
# is still measured and printed), 1 on any other error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PATH:/usr/sbin:/sbin"

DURATION="${BENCH_SECONDS:-10}"
FCGI_CHILDREN="${BENCH_FCGIWRAP_CHILDREN:-4}"
KEEP="${BENCH_KEEP:-0}"
CONNS_LIST=(16 64)
PROGRAMS=(hello-c hello)
THREADS=2

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $DURATION =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_SECONDS must be a whole number of seconds (1..9999), not '$DURATION'"
[[ $FCGI_CHILDREN =~ ^[1-9][0-9]{0,2}$ ]] || die "BENCH_FCGIWRAP_CHILDREN must be a number (1..999), not '$FCGI_CHILDREN'"

./scripts/setup.sh
for tool in wrk nginx fcgiwrap curl sqlite3 cmake cc setsid ps; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run ./scripts/setup.sh as root"
done
[[ -r /etc/nginx/fastcgi_params ]] || die "/etc/nginx/fastcgi_params is missing (package nginx-common)"

# ---- processes ------------------------------------------------------------

# The benchmark's files live in a private (0700) temp dir that only root can
# enter: as root, cgiq is told to run the programs as root (--allow-root)
# rather than as a user who could not reach them.
ROOT_OK=
[[ $(id -u) == 0 ]] && ROOT_OK=--allow-root
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cgiq-bench.XXXXXX")
declare -A STARTED=()    # pid -> name, for everything this script started

# Is pid running (a zombie does not count)?
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s%% *} != Z ]]
}

# Live members of process group $1 other than its leader.
group_members() {
	ps -o pid=,stat= -g "$1" 2>/dev/null | awk -v leader="$1" '$1 != leader && $2 !~ /^Z/ {print $1}' || true
}

# Starts "$@" in a new session (its own process group, pgid = pid) with
# output to $TMP/$name.log; sets START_PID.
start_proc() {
	local name=$1
	shift
	setsid "$@" >"$TMP/$name.log" 2>&1 </dev/null &
	START_PID=$!
	STARTED[$START_PID]=$name
}

# Stops a process this script started: SIGTERM (to the leader, or to the
# whole group when $2 is "group"), up to $3 tenths of a second for it to
# exit, then SIGKILL to whatever is left of its group, then reaps it.
stop_proc() {
	local pid=$1 how=${2:-leader} tenths=${3:-50} name=${STARTED[$1]:-?} i left
	if alive "$pid"; then
		if [[ $how == group ]]; then
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		for ((i = 0; i < tenths; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			log "$name (pid $pid) did not exit on SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# The leader is at most a zombie here, so its pid (the group id) is still ours.
	for ((i = 0; i < 20; i++)); do
		left=$(group_members "$pid")
		[[ -z $left ]] && break
		sleep 0.1
	done
	if [[ -n $left ]]; then
		log "$name left processes running in its group: ${left//$'\n'/ }; killing them"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "STARTED[$pid]"
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in "${!STARTED[@]}"; do
		stop_proc "$pid" group 30
	done
	if [[ $KEEP == 1 ]]; then
		log "kept $TMP"
	else
		rm -rf -- "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A loopback TCP port nothing listens on (bounded number of tries), below
# the kernel's ephemeral range, where the benchmark's own client connections
# (and their TIME-WAIT) could hold the port a server then fails to bind.
free_port() {
	local i p low
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	for ((i = 0; i < 200; i++)); do
		p=$((10000 + RANDOM % (low > 11000 ? low - 10000 : 1000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Waits up to ~10 s for an HTTP answer from $2 while process $1 lives.
wait_http() {
	local pid=$1 url=$2 i
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 1
		if curl -s -o /dev/null --max-time 2 "$url"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# 200 and "Hello" in the body, or a message and failure.
check_endpoint() {
	local label=$1 url=$2 out code
	out=$(curl -sS --max-time 10 -o "$TMP/check.body" -w '%{http_code}' "$url" 2>&1) || {
		log "$label: $url: curl failed: $out"
		return 1
	}
	code=$out
	if [[ $code != 200 ]] || ! grep -q Hello "$TMP/check.body"; then
		log "$label: $url answered $code, body: $(head -c 200 "$TMP/check.body" | tr '\r\n' '  ')"
		return 1
	fi
}

# ---- build ----------------------------------------------------------------

CGIQ_OK=1
CGIQ_WHY=""
if [[ ! -x build/cgiq || ! -x build/examples/hello-c || ! -x build/examples/spawn-bound ]]; then
	log "building Release into build/ (log: build.log in the temp dir)"
	if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2; } >"$TMP/build.log" 2>&1; then
		tail -n 15 "$TMP/build.log" >&2
		log "the build failed; trying to build just the hello-c example"
		cmake --build build --target hello-c >>"$TMP/build.log" 2>&1 || true
	fi
fi
if [[ ! -x build/cgiq ]]; then
	CGIQ_OK=0
	CGIQ_WHY="build/cgiq could not be built"
else
	if [[ -r build/CMakeCache.txt ]] && ! grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=Release$' build/CMakeCache.txt; then
		log "warning: build/ is not a Release build; numbers will not be representative"
	fi
	if [[ -n $(find src -newer build/cgiq -name '*.[ch]' -print -quit 2>/dev/null) ]]; then
		log "warning: sources under src/ are newer than build/cgiq; rebuild with: cmake --build build -j2"
	fi
fi

CGI_DIR="$TMP/cgi-bin"
mkdir -p "$CGI_DIR" "$TMP/spool" "$TMP/nginx"
if [[ -x build/examples/hello-c ]]; then
	cp build/examples/hello-c "$CGI_DIR/hello-c"
else
	log "build/examples/hello-c is missing; compiling examples/bench/hello.c with cc -O2"
	cc -O2 -o "$CGI_DIR/hello-c" examples/bench/hello.c
fi
cp examples/cgi-bin/hello "$CGI_DIR/hello"
chmod 755 "$CGI_DIR/hello-c" "$CGI_DIR/hello"

# ---- nginx + fcgiwrap ----------------------------------------------------

FCGI_SOCK="$TMP/fcgiwrap.sock"
start_proc fcgiwrap fcgiwrap -c "$FCGI_CHILDREN" -s "unix:$FCGI_SOCK"
FCGI_PID=$START_PID
for ((i = 0; i < 50; i++)); do
	[[ -S $FCGI_SOCK ]] && break
	alive "$FCGI_PID" || break
	sleep 0.1
done
[[ -S $FCGI_SOCK ]] || { cat "$TMP/fcgiwrap.log" >&2; die "fcgiwrap did not create $FCGI_SOCK"; }

NGINX_PORT=$(free_port) || die "no free loopback port found"
NGINX_CGIQ_PORT=$(free_port) || die "no free loopback port found"
CGIQ_FCGI_SOCK="$TMP/cgiq-fcgi.sock"
NGINX_CGIQ_URL="http://127.0.0.1:$NGINX_CGIQ_PORT"
# As root, nginx would switch its workers to "nobody", who cannot reach the
# socket in the private temp dir; keep them as root rather than opening the
# fcgiwrap socket (which runs any file it is told to) to every local user.
NGINX_USER=""
if [[ $(id -u) == 0 ]]; then NGINX_USER="user root root;"; fi
cat >"$TMP/nginx.conf" <<EOF
# Written by cgiq scripts/bench.sh; lives only for one benchmark run.
$NGINX_USER
worker_processes 2;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events {
	worker_connections 1024;
}
http {
	access_log off;
	client_body_temp_path $TMP/nginx/body;
	fastcgi_temp_path $TMP/nginx/fastcgi;
	proxy_temp_path $TMP/nginx/proxy;
	scgi_temp_path $TMP/nginx/scgi;
	uwsgi_temp_path $TMP/nginx/uwsgi;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $CGI_DIR\$fastcgi_script_name;
			fastcgi_pass unix:$FCGI_SOCK;
		}
	}
	# nginx + cgiq's FastCGI front (the socket appears when cgiq starts), with
	# kept connections as examples/nginx/cgiq.conf sets them up (fcgiwrap
	# cannot keep them)
	upstream cgiq_fastcgi {
		server unix:$CGIQ_FCGI_SOCK;
		keepalive 16;
		keepalive_timeout 50s;
	}
	server {
		listen 127.0.0.1:$NGINX_CGIQ_PORT;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $CGI_DIR\$fastcgi_script_name;
			fastcgi_keep_conn on;
			fastcgi_pass cgiq_fastcgi;
		}
	}
}
EOF
nginx -t -q -p "$TMP/nginx" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" 2>"$TMP/nginx-test.log" ||
	{ cat "$TMP/nginx-test.log" >&2; die "nginx rejected $TMP/nginx.conf"; }
start_proc nginx nginx -p "$TMP/nginx" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf"
NGINX_PID=$START_PID
NGINX_URL="http://127.0.0.1:$NGINX_PORT"
if ! wait_http "$NGINX_PID" "$NGINX_URL/hello"; then
	cat "$TMP/nginx.log" "$TMP/nginx-error.log" >&2 2>/dev/null || true
	die "nginx did not answer on 127.0.0.1:$NGINX_PORT"
fi

# ---- cgiq ------------------------------------------------------------------

CGIQ_PID=""
CGIQ_URL=""
if ((CGIQ_OK)); then
	CGIQ_PORT=$(free_port) || die "no free loopback port found"
	# Each front in its own process, as each is deployed: cgiq alone on HTTP,
	# and cgiq behind nginx on FastCGI (on its event loop, no threads of its own).
	start_proc cgiq build/cgiq --listen "127.0.0.1:$CGIQ_PORT" --cgi-root "$CGI_DIR" \
		--db "$TMP/cgiq.db" --spool "$TMP/spool" --processing never --max-jobs 64 --log-level warn $ROOT_OK
	CGIQ_PID=$START_PID
	start_proc cgiq-fcgi build/cgiq --fastcgi "unix:$CGIQ_FCGI_SOCK" \
		--cgi-root "$CGI_DIR" --db "$TMP/cgiq-fcgi.db" --spool "$TMP/spool-fcgi" \
		--processing never --max-jobs 64 --log-level warn $ROOT_OK
	CGIQ_FCGI_PID=$START_PID
	for ((i = 0; i < 100; i++)); do
		[[ -S $CGIQ_FCGI_SOCK ]] && break
		alive "$CGIQ_FCGI_PID" || break
		sleep 0.1
	done
	CGIQ_URL="http://127.0.0.1:$CGIQ_PORT"
	if ! wait_http "$CGIQ_PID" "$CGIQ_URL/hello"; then
		CGIQ_OK=0
		if alive "$CGIQ_PID"; then
			CGIQ_WHY="build/cgiq did not answer on 127.0.0.1:$CGIQ_PORT within 10 s"
		else
			CGIQ_WHY="build/cgiq exited at start-up"
		fi
		log "$CGIQ_WHY; its output:"
		tail -n 20 "$TMP/cgiq.log" >&2 || true
		stop_proc "$CGIQ_PID" leader 50
		CGIQ_PID=""
	fi
fi

# ---- checks ----------------------------------------------------------------

for prog in "${PROGRAMS[@]}"; do
	check_endpoint "nginx+fcgiwrap" "$NGINX_URL/$prog" || die "nginx+fcgiwrap does not serve /$prog correctly"
	if ((CGIQ_OK)) && ! check_endpoint cgiq "$CGIQ_URL/$prog"; then
		CGIQ_OK=0
		CGIQ_WHY="cgiq does not serve /$prog correctly (see above)"
	fi
	if ((CGIQ_OK)) && ! check_endpoint "nginx+cgiq" "$NGINX_CGIQ_URL/$prog"; then
		CGIQ_OK=0
		CGIQ_WHY="nginx + cgiq (FastCGI) does not serve /$prog correctly (see above)"
	fi
done
if ((!CGIQ_OK)); then
	log "SKIPPING cgiq: $CGIQ_WHY; measuring nginx+fcgiwrap only"
	if [[ -n $CGIQ_PID ]]; then
		stop_proc "$CGIQ_PID" leader 50
		CGIQ_PID=""
	fi
fi

# ---- measurements ------------------------------------------------------------

# CPU clock ticks of every process in the process groups given: "OWN REAPED",
# OWN their own user + system time, REAPED that of the children they reaped
# (the CGI programs, for cgiq and fcgiwrap's workers).
group_cpu() {
	local own=0 reaped=0 pgid pid s
	local -a f
	for pgid in "$@"; do
		[[ -n $pgid ]] || continue
		for pid in $(ps -o pid= -g "$pgid" 2>/dev/null); do
			s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
			read -r -a f <<<"${s##*) }"
			# fields 14-17 of stat (utime stime cutime cstime), 3 being f[0]
			own=$((own + f[11] + f[12]))
			reaped=$((reaped + f[13] + f[14]))
		done
	done
	echo "$own $reaped"
}

# Ticks of the children the benchmark's shell has waited for (wrk, once it
# is done); $$, as this runs in a command substitution.
shell_reaped() {
	local s
	local -a f
	s=$(cat "/proc/$$/stat")
	read -r -a f <<<"${s##*) }"
	echo $((f[13] + f[14]))
}

# Busy ticks of the whole machine (every CPU, all but idle and iowait).
machine_busy() {
	awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

# run_wrk KEY URL CONNS [SERVER_PGID [PROXY_PGID]]: writes $TMP/wrk-KEY.txt and
# sets RES[KEY.rps/.p99/.err], and RES[KEY.cpu]: "SERVER PROXY WRK BUSY
# REQUESTS": the CPU ticks the gateway's group, nginx's group, wrk and the
# whole machine used during the run, and the requests done. (The programs'
# own time is not read from the gateway: fcgiwrap's workers ignore SIGCHLD,
# so the kernel adds their children's time to nobody.)
declare -A RES=()
run_wrk() {
	local key=$1 url=$2 conns=$3 server=${4:-} proxy=${5:-} f="$TMP/wrk-$1.txt" non2xx sockerr
	local s0 s1 p0 p1 w0 w1 b0 b1 requests
	log "${key%%.*}: wrk -t$THREADS -c$conns -d${DURATION}s --latency $url"
	s0=$(group_cpu "$server") p0=$(group_cpu "$proxy") w0=$(shell_reaped) b0=$(machine_busy)
	wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --latency "$url" >"$f" 2>&1 ||
		{ cat "$f" >&2; die "wrk failed against $url"; }
	b1=$(machine_busy) s1=$(group_cpu "$server") p1=$(group_cpu "$proxy") w1=$(shell_reaped)
	requests=$(awk '/requests in/ {print $1; exit}' "$f")
	RES[$key.cpu]="$((${s1% *} - ${s0% *})) $((${p1% *} - ${p0% *})) $((w1 - w0)) $((b1 - b0)) ${requests:-0}"
	RES[$key.rps]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$f")
	RES[$key.p99]=$(awk '/Latency Distribution/ {d = 1} d && $1 == "99%" {print $2; exit}' "$f")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$f")
	sockerr=$(awk '/Socket errors:/ {sub(/^ *Socket errors: */, ""); print}' "$f")
	RES[$key.err]=""
	if [[ -n $non2xx ]]; then RES[$key.err]+="$non2xx non-2xx responses; "; fi
	if [[ -n $sockerr ]]; then RES[$key.err]+="socket errors: $sockerr; "; fi
	: "${RES[$key.rps]:=?}" "${RES[$key.p99]:=?}"
}

log "warming up (1 s per endpoint)"
for prog in "${PROGRAMS[@]}"; do
	wrk -t1 -c4 -d1s "$NGINX_URL/$prog" >/dev/null 2>&1 || true
	if ((CGIQ_OK)); then wrk -t1 -c4 -d1s "$CGIQ_URL/$prog" >/dev/null 2>&1 || true; fi
	if ((CGIQ_OK)); then wrk -t1 -c4 -d1s "$NGINX_CGIQ_URL/$prog" >/dev/null 2>&1 || true; fi
done

cell=0
for prog in "${PROGRAMS[@]}"; do
	for conns in "${CONNS_LIST[@]}"; do
		# Take turns: the first system of each cell rotates.
		case $((cell % 3)) in
		0) order=(cgiq nginx fcgi) ;;
		1) order=(nginx fcgi cgiq) ;;
		*) order=(fcgi cgiq nginx) ;;
		esac
		for sys in "${order[@]}"; do
			if [[ $sys == cgiq ]]; then
				if ((CGIQ_OK)); then run_wrk "cgiq.$prog.$conns" "$CGIQ_URL/$prog" "$conns" "$CGIQ_PID"; fi
			elif [[ $sys == fcgi ]]; then
				if ((CGIQ_OK)); then
					run_wrk "fcgi.$prog.$conns" "$NGINX_CGIQ_URL/$prog" "$conns" "$CGIQ_FCGI_PID" "$NGINX_PID"
				fi
			else
				run_wrk "nginx.$prog.$conns" "$NGINX_URL/$prog" "$conns" "$FCGI_PID" "$NGINX_PID"
			fi
		done
		cell=$((cell + 1))
	done
done

# The ceiling: two loops of posix_spawn + read + waitpid of hello-c, no HTTP,
# nothing recorded (the issue's reference: cgiq should reach about 90% of it).
BOUND="n/a"
if [[ -x build/examples/spawn-bound ]]; then
	log "spawn bound: build/examples/spawn-bound hello-c ${DURATION}s, 2 loops"
	BOUND=$(build/examples/spawn-bound "$CGI_DIR/hello-c" "$DURATION" 2 2>"$TMP/spawn-bound.log") ||
		{ cat "$TMP/spawn-bound.log" >&2; BOUND="n/a"; }
fi

# ---- cgiq's footprint (before stopping it) and shutdown ---------------------

HWM="n/a"
if ((CGIQ_OK)) && [[ -n $CGIQ_PID ]]; then
	alive "$CGIQ_PID" || { CGIQ_OK=0; CGIQ_WHY="cgiq died during the benchmark (log below)"; }
	HWM=$(awk '/^VmHWM:/ {print $2, $3}' "/proc/$CGIQ_PID/status" 2>/dev/null || echo "n/a")
	stop_proc "$CGIQ_PID" leader 100
	CGIQ_PID=""
fi

# ---- report ------------------------------------------------------------------

fmt_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
fmt_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'
}

echo
echo "cgiq benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -sr)"
echo "cgiq $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nginx -v 2>&1 | sed 's/^nginx version: //'); fcgiwrap -c $FCGI_CHILDREN; $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}')"
echo "wrk -t$THREADS -cN -d${DURATION}s --latency, client and servers on the same machine, 127.0.0.1"
echo
# ratio: cgiq (HTTP) / nginx+fcgiwrap; fcgi ratio: nginx+cgiq (FastCGI) / nginx+fcgiwrap.
printf '| %-8s | %5s | %10s | %9s | %20s | %18s | %5s | %16s | %14s | %10s |\n' \
	program conns "cgiq req/s" "cgiq p99" "nginx+fcgiwrap req/s" "nginx+fcgiwrap p99" ratio \
	"nginx+cgiq req/s" "nginx+cgiq p99" "fcgi ratio"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ---------- ------: -----------: ----------: ---------------------: -------------------: ------: -----------------: ---------------: -----------:
notes=()
for prog in "${PROGRAMS[@]}"; do
	for conns in "${CONNS_LIST[@]}"; do
		c="cgiq.$prog.$conns" n="nginx.$prog.$conns"
		f="fcgi.$prog.$conns"
		crps=${RES[$c.rps]:-n/a} cp99=${RES[$c.p99]:-n/a}
		frps=${RES[$f.rps]:-n/a} fp99=${RES[$f.p99]:-n/a}
		printf '| %-8s | %5s | %10s | %9s | %20s | %18s | %5s | %16s | %14s | %10s |\n' "$prog" "$conns" \
			"$crps" "$cp99" "${RES[$n.rps]}" "${RES[$n.p99]}" "$(fmt_ratio "$crps" "${RES[$n.rps]}")" \
			"$frps" "$fp99" "$(fmt_ratio "$frps" "${RES[$n.rps]}")"
		if [[ -n ${RES[$f.err]:-} ]]; then notes+=("nginx+cgiq $prog c=$conns: ${RES[$f.err]%; }"); fi
		if [[ -n ${RES[$c.err]:-} ]]; then notes+=("cgiq $prog c=$conns: ${RES[$c.err]%; }"); fi
		if [[ -n ${RES[$n.err]:-} ]]; then notes+=("nginx+fcgiwrap $prog c=$conns: ${RES[$n.err]%; }"); fi
	done
done
echo
if [[ $BOUND != n/a ]]; then
	echo "spawn bound (2 loops of posix_spawn + read + waitpid of hello-c, no HTTP, nothing recorded): $BOUND/s"
	for conns in "${CONNS_LIST[@]}"; do
		echo "  hello-c c=$conns, share of the bound: cgiq $(fmt_pct "${RES[cgiq.hello-c.$conns.rps]:-}" "$BOUND")," \
			"nginx+cgiq $(fmt_pct "${RES[fcgi.hello-c.$conns.rps]:-}" "$BOUND")," \
			"nginx+fcgiwrap $(fmt_pct "${RES[nginx.hello-c.$conns.rps]:-}" "$BOUND")"
	done
	echo
fi
# Where the CPU goes, per request: the gateway (cgiq, or fcgiwrap's master
# and workers, forks included), nginx, wrk, and the rest of the machine's
# busy time (the programs, the kernel's work for them, anything else
# running). With every CPU busy, req/s is about CPUs / the total.
cpu_us() {
	awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.0f", t * 1e6 / hz / n; else print "?" }'
}
echo "CPU per request in microseconds (clock ticks of each process group over the run / requests):"
printf '  %-8s %5s  %-15s %7s %6s %5s %6s %6s\n' program conns system gateway nginx wrk rest total
for prog in "${PROGRAMS[@]}"; do
	for conns in "${CONNS_LIST[@]}"; do
		for sys in cgiq nginx fcgi; do
			k="$sys.$prog.$conns"
			[[ -n ${RES[$k.cpu]:-} ]] || continue
			read -r g x w b n <<<"${RES[$k.cpu]}"
			case $sys in cgiq) label="cgiq" ;; nginx) label="nginx+fcgiwrap" ;; *) label="nginx+cgiq" ;; esac
			printf '  %-8s %5s  %-15s %7s %6s %5s %6s %6s\n' "$prog" "$conns" "$label" "$(cpu_us "$g" "$n")" \
				"$( [[ $sys == cgiq ]] && echo - || cpu_us "$x" "$n")" "$(cpu_us "$w" "$n")" \
				"$(cpu_us $((b - g - x - w)) "$n")" "$(cpu_us "$b" "$n")"
		done
	done
done
echo

if ((${#notes[@]})); then
	echo "Errors reported by wrk (these requests count in req/s but are not successes):"
	printf '  %s\n' "${notes[@]}"
	echo
fi

if ((CGIQ_OK)); then
	echo "cgiq peak RSS (VmHWM): $HWM"
	db_bytes=0
	for f in "$TMP/cgiq.db" "$TMP/cgiq.db-wal"; do
		if [[ -f $f ]]; then db_bytes=$((db_bytes + $(stat -c %s "$f"))); fi
	done
	echo "cgiq job database: $db_bytes bytes (cgiq.db + WAL)"
	if [[ -f $TMP/cgiq.db ]]; then
		tables=$(sqlite3 "$TMP/cgiq.db" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name" 2>&1) ||
			tables=""
		for t in $tables; do
			echo "  table $t: $(sqlite3 "$TMP/cgiq.db" "SELECT count(*) FROM \"$t\"" 2>&1) rows"
		done
	fi
	echo "cgiq spool after the run: $(du -sh "$TMP/spool" 2>/dev/null | cut -f1)"
	# The job queue: BENCH_ASYNC_JOBS asynchronous jobs (0 skips it).
	if [[ ${BENCH_ASYNC_JOBS:-10000} != 0 ]]; then
		./scripts/bench_async.sh || exit 1
	fi
	# Clients waiting on one long job: 102 lateness, memory per client
	# (BENCH_WAIT_CLIENTS=0 skips it).
	if [[ ${BENCH_WAIT_CLIENTS:-1000 5000 10000} != 0 ]]; then
		./scripts/bench_waiting.sh || exit 1
	fi
	# A static file (--static) against nginx serving it (BENCH_STATIC=0 skips it).
	if [[ ${BENCH_STATIC:-1} != 0 ]]; then
		./scripts/bench_static.sh || exit 1
	fi
	# A 1 GiB streamed output (--stream) against lighttpd mod_cgi and nginx +
	# fcgiwrap, and memory per slow-reader stream (BENCH_STREAM=0 skips it).
	if [[ ${BENCH_STREAM:-1} != 0 ]]; then
		./scripts/bench_stream.sh || exit 1
	fi
	exit 0
fi

echo "cgiq was NOT measured: $CGIQ_WHY."
if [[ -s $TMP/cgiq.log ]]; then
	echo "Last lines of its output:"
	tail -n 10 "$TMP/cgiq.log"
fi
exit 3
