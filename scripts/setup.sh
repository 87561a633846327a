#!/usr/bin/env bash
# Installs the Debian 12 packages that cgiq's build, tests and benchmark need,
# and only those that are missing. Safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libuv1-dev libhttp-parser-dev libsqlite3-dev libfcgi-dev libcunit1-dev
  curl nginx-light fcgiwrap spawn-fcgi wrk poppler-utils sqlite3 perl-base procps
  libfcgi-bin # cgi-fcgi, libfcgi's own client, against the FastCGI front
  groff-base # the install test renders the man page
  systemd    # integration_lifecycle checks the unit files with systemd-analyze verify
  clang libclang-rt-14-dev
  # real clients of the 102 tests (integration_clients): Python's http.client,
  # urllib, requests, urllib3, httpx and aiohttp, Node's http and fetch, wget,
  # Java's HttpClient and HttpURLConnection, headless Chromium
  python3 python3-requests python3-urllib3 python3-httpx python3-aiohttp nodejs wget
  openjdk-17-jdk-headless chromium
  php-cgi    # integration_apps: PHP programs through --interpreter
  media-types # /etc/mime.types: the types of static files (--static)
  git gitweb # integration_apps: gitweb served from examples/apps/gitweb
  libcgi-pm-perl # integration_stream: Perl's CGI.pm, streamed and -nph
  lighttpd   # bench_stream: lighttpd mod_cgi streams the same program
  libpq-dev postgresql # the PostgreSQL job store (--store postgresql://), tested on the suite's own server
)

# The user programs run as when cgiq starts as root with --user and no
# --program-user: it cannot signal cgiq nor open its database and spool.
if ! getent passwd cgiq-run >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cgiq-run
  else
    echo "cgiq setup: no user cgiq-run; as root: useradd --system --user-group --no-create-home --shell /usr/sbin/nologin cgiq-run" >&2
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "cgiq setup: missing packages: ${missing[*]}" >&2
  echo "cgiq setup: run this as root, then try again:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "cgiq setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx and lighttpd on install; cgiq's tests and benchmark
# run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now nginx lighttpd postgresql >/dev/null 2>&1 || true; fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
if [ -f /run/lighttpd.pid ]; then kill "$(cat /run/lighttpd.pid)" 2>/dev/null || true; fi
