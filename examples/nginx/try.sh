#!/usr/bin/env bash
# Tries examples/nginx/cgiq.conf on this machine without touching /etc/nginx:
# cgiq's FastCGI front and an nginx with that server block, both in a temp
# dir and on loopback, then requests through nginx; both are stopped by PID
# at the end, and the temp dir removed.
#
#   examples/nginx/try.sh            nginx on 127.0.0.1:8081
#   TRY_PORT=9001 examples/nginx/try.sh
#
# Needs a build (./scripts/run.sh or cmake --build build) and nginx
# (scripts/setup.sh installs it). Exits 0 when every answer was right.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
port=${TRY_PORT:-8081}
cgiq=${CGIQ:-build/cgiq}
[[ -x $cgiq ]] || { echo "try.sh: no $cgiq: build first (./scripts/run.sh or cmake --build build)" >&2; exit 1; }
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { echo "try.sh: nginx is not installed" >&2; exit 1; }
nginx=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(realpath "$(mktemp -d /tmp/cgiq-try-nginx-XXXXXX)") # nginx's SCRIPT_FILENAME must match cgiq's real root
chmod 755 "$tmp" # cgiq's user must reach its socket's directory
# The example programs, copied where the users cgiq drops to can reach them
# (a checkout in a private home directory would be refused: --check-config).
mkdir -p "$tmp/www"
cp -a examples/cgi-bin "$tmp/www/"
chmod 755 "$tmp/www" "$tmp/www/cgi-bin"
cgiq_pid= nginx_pid=
stop() {
	[[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
	[[ -n $cgiq_pid ]] && kill "$cgiq_pid" 2>/dev/null && wait "$cgiq_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap stop EXIT
[[ -n ${TRY_DEBUG:-} ]] && trap "ls -la $tmp; stop" EXIT

# As the example's comment starts it, with paths in the temp dir. As root,
# cgiq runs as nobody and its programs as cgiq-run, as in production.
who=() owner=$(id -un) nginx_user=
if [[ $(id -u) == 0 ]]; then
	who=(--user nobody)
	owner=www-data:www-data
	nginx_user="user www-data;"
	chown nobody "$tmp"
fi
"$cgiq" "${who[@]}" --cgi-root "$tmp/www/cgi-bin" \
	--fastcgi "unix:$tmp/cgiq.sock" --fastcgi-owner "$owner" \
	--db "$tmp/var/cgiq.db" --spool "$tmp/var/spool" >"$tmp/cgiq.log" 2>&1 &
cgiq_pid=$!

# The example's server block, with the socket, the port, the CGI root and the
# spool moved; everything else as shipped.
sed -e "s|unix:/run/cgiq/cgiq.sock|unix:$tmp/cgiq.sock|" \
	-e "s|listen 80;|listen 127.0.0.1:$port;|" \
	-e "s|root /usr/lib;|root $tmp/www;|" \
	-e "s|/var/lib/cgiq/spool/|$tmp/var/spool/|" \
	-e "s|include fastcgi_params;|include /etc/nginx/fastcgi_params;|" \
	examples/nginx/cgiq.conf >"$tmp/site.conf"
cat >"$tmp/nginx.conf" <<EOF
daemon off;
$nginx_user
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 64; }
http {
	access_log $tmp/access.log;
	client_body_temp_path $tmp/body;
	fastcgi_temp_path $tmp/fastcgi;
	proxy_temp_path $tmp/proxy;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	include /etc/nginx/mime.types;
	include $tmp/site.conf;
}
EOF

for _ in $(seq 100); do # 10 s at most
	[[ -S $tmp/cgiq.sock ]] && break
	kill -0 "$cgiq_pid" 2>/dev/null || { cat "$tmp/cgiq.log" >&2; echo "try.sh: cgiq did not start" >&2; exit 1; }
	sleep 0.1
done
[[ -S $tmp/cgiq.sock ]] || { cat "$tmp/cgiq.log" >&2; echo "try.sh: no socket after 10 s" >&2; exit 1; }
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" 2>"$tmp/nginx.out" &
nginx_pid=$!
for _ in $(seq 100); do
	curl -s -o /dev/null "http://127.0.0.1:$port/" && break
	kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx.out" "$tmp/error.log" >&2; exit 1; }
	sleep 0.1
done

fail=0
check() { # URL-PATH WANT-STATUS WANT-BODY-START
	local got body
	got=$(curl -s -o "$tmp/body.out" -w '%{http_code}' "http://127.0.0.1:$port$1")
	body=$(head -c ${#3} "$tmp/body.out")
	if [[ $got == "$2" && $body == "$3" ]]; then
		echo "ok    GET $1 -> $got ${3:+($3...)}"
	else
		echo "wrong GET $1 -> $got, want $2 ($(head -c 60 "$tmp/body.out"))"
		fail=1
	fi
}
check /cgi-bin/hello 200 "Hello, world!"
check "/cgi-bin/sample.pdf?seconds=1" 200 "%PDF-"
check /cgi-bin/no-such 404 ""
echo "cgiq's log:"
sed 's/^/  /' "$tmp/cgiq.log"
if [[ $fail != 0 ]]; then
	echo "nginx's error log:"
	sed 's/^/  /' "$tmp/error.log"
fi
exit $fail
