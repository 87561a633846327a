#!/bin/sh
# ctest install_layout: `cmake --install` into a temporary DESTDIR puts the
# daemon, its man page, the examples and (when present) the systemd units in
# the usual places, and the man page renders without a single warning.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
dest=$(mktemp -d /tmp/cgiq-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
# As /usr/local is: the example's users (www-data, cgiq-run) must enter it,
# or --test refuses the CGI root.
chmod 755 "$dest"
fail() { echo "check_install: $*" >&2; exit 1; }

DESTDIR=$dest cmake --install "$build" --prefix /usr/local >"$dest/install.log" 2>&1 ||
	{ cat "$dest/install.log" >&2; fail "cmake --install failed"; }
root=$dest/usr/local

[ -x "$root/sbin/cgiq" ] || fail "sbin/cgiq missing or not executable"
"$root/sbin/cgiq" --version | grep -qx 'cgiq [0-9.]*' || fail "installed cgiq --version"
[ -f "$root/share/man/man8/cgiq.8" ] || fail "share/man/man8/cgiq.8 missing"
cmp -s "$root/share/man/man8/cgiq.8" "$src/src/app/cgiq.8" || fail "installed man page differs"
ex=$root/share/doc/cgiq/examples
[ -x "$ex/cgi-bin/hello" ] || fail "examples/cgi-bin/hello missing or not executable"
[ -f "$ex/nginx/cgiq.conf" ] || fail "examples/nginx/cgiq.conf missing"
[ -f "$ex/bench/hello.c" ] || fail "examples/bench/hello.c missing"
[ ! -e "$ex/CMakeLists.txt" ] || fail "examples/CMakeLists.txt installed"
# The example configuration is valid.
"$root/sbin/cgiq" --config "$ex/cgiq.conf" --cgi-root "$ex/cgi-bin" --test >"$dest/test.log" 2>&1 ||
	{ cat "$dest/test.log" >&2; fail "examples/cgiq.conf does not pass --test"; }
if [ -d "$src/examples/systemd" ]; then
	for u in "$src"/examples/systemd/*.service "$src"/examples/systemd/*.socket; do
		[ -e "$u" ] || continue
		[ -f "$root/lib/systemd/system/$(basename "$u")" ] || fail "systemd unit $(basename "$u") missing"
	done
fi

# The page renders, and groff has nothing to say about it.
command -v groff >/dev/null || fail "groff not installed (scripts/setup.sh installs groff-base)"
warnings=$(groff -man -Tutf8 -ww -z "$root/share/man/man8/cgiq.8" 2>&1)
[ -z "$warnings" ] || fail "groff warnings: $warnings"
out=$(groff -man -Tutf8 -P-cbou "$root/share/man/man8/cgiq.8" 2>/dev/null)
for section in NAME SYNOPSIS DESCRIPTION OPTIONS 'CONFIGURATION FILE' SIGNALS FILES 'EXIT STATUS'; do
	printf '%s\n' "$out" | grep -q "^$section\$" || fail "man page section '$section' missing"
done
# Every option of cgiq --help is in the man page.
for opt in $("$root/sbin/cgiq" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
	printf '%s\n' "$out" | grep -q -- "$opt" || fail "option $opt of --help is not in the man page"
done
echo "check_install: ok"
