#!/usr/bin/env bash
# The README and the man page cannot drift from the code: this runs what they
# show.
#
#  1. Every link to a section (`](#name)`, also `](FILE#name)`) names a heading
#     that exists, and every relative link a file that exists.
#  2. A fenced block after `<!-- check: command -->`: each cgiq command line
#     in it is run with --check-config added, after moving the system paths it
#     names (/srv/cgi-bin, /var/lib/cgiq, /run/cgiq ...) into a temp dir; it
#     must exit 0. Other lines run as they are (same paths moved), but a
#     ./scripts/ command, which is only checked to exist. The same for the
#     cgiq command lines of the man page's EXAMPLES and its configuration
#     file, and for the start command in examples/nginx/cgiq.conf's comment.
#     Every `--option` the README names is one cgiq --help lists.
#  3. A fenced block after `<!-- check: run -->` runs, in order, against the
#     example server as ./scripts/run.sh starts it (on a free loopback port
#     instead of 8080), from a temp dir laid out as a checkout; each must exit
#     0, and `<!-- expect: TEXT -->` lines after the marker name text its
#     output (stdout and stderr) must contain.
#
# Usage: check_readme.sh BUILD_DIR SOURCE_DIR. Every process it starts is
# stopped by its PID; every wait has a deadline.
set -euo pipefail
build=$(cd "$1" && pwd -P)
src=$(cd "$2" && pwd -P)
readme=$src/README.md
fail=0
failed() { echo "check_readme: $*" >&2; fail=1; }

tmp=$(mktemp -d /tmp/cgiq-readme-XXXXXX)
chmod 755 "$tmp" # as a checkout is: nobody and cgiq-run must reach it
server=
cleanup() {
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$server" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. links
# GitHub's anchor of a heading: lower case, punctuation but - and _ dropped,
# spaces to -.
anchors() {
	awk '/^```/ { code = !code; next } !code && /^#+ / { sub(/^#+ /, ""); print }' "$1" |
		tr 'A-Z' 'a-z' | sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g'
}
check_links() { # FILE
	local file=$1 dir target path anchor
	dir=$(dirname "$file")
	grep -o '](\([^)]*\))' "$file" | sed -e 's/^](//' -e 's/)$//' | while read -r target; do
		case $target in http://* | https://* | mailto:*) continue ;; esac
		path=${target%%#*}
		anchor=
		[[ $target == *'#'* ]] && anchor=${target#*#}
		[[ -z $path ]] && path=$file || path=$dir/$path
		if [[ ! -e $path ]]; then
			echo "check_readme: ${file#"$src"/}: link to a missing file: $target" >&2
			echo fail
		elif [[ -n $anchor ]] && ! anchors "$path" | grep -qx -- "$anchor"; then
			echo "check_readme: ${file#"$src"/}: link to a missing section: $target" >&2
			echo fail
		fi
	done | grep -q fail && return 1 || return 0
}
for f in "$readme" "$src/src/README.md" "$src/scripts/BENCHMARKS.md" "$src/tests/fuzz/README.md" \
	"$src/examples/nginx/README.md"; do
	check_links "$f" || fail=1
done

# ------------------------------------------------- every option it names
# An option the README names in its text and tables (`--name`) is one that
# cgiq --help (or cgiq jobs --help) lists.
known=$( ("$build/cgiq" --help; "$build/cgiq" jobs --help 2>&1) | grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u)
unknown=$(grep -o '`--[a-z0-9][a-z0-9-]*' "$readme" | tr -d '`' | sort -u | comm -23 - <(printf '%s\n' "$known"))
[[ -z $unknown ]] || failed "README.md names options cgiq --help does not list: $(echo $unknown)"

# ---------------------------------------------------------------- 2. commands
# The system paths the examples name, moved into the temp dir.
mkdir -p "$tmp/sys/cgi-bin" "$tmp/sys/lib" "$tmp/sys/run" "$tmp/sys/etc"
cp -a "$src/examples/cgi-bin/." "$tmp/sys/cgi-bin/"
chmod 755 "$tmp/sys" "$tmp/sys/cgi-bin"
move_paths() {
	sed -e "s|/srv/cgi-bin|$tmp/sys/cgi-bin|g" -e "s|/usr/lib/cgi-bin|$tmp/sys/cgi-bin|g" \
		-e "s|/var/lib/cgiq|$tmp/sys/lib|g" -e "s|/run/cgiq|$tmp/sys/run|g" \
		-e "s|/etc/cgiq|$tmp/sys/etc|g" -e "s|/srv/gitweb|$tmp/sys/gitweb|g" -e "s|/srv/app|$tmp/sys/app|g" \
		-e "s|/srv/git\b|$tmp/sys/git|g" -e "s|127\.0\.0\.1:8080|127.0.0.1:0|g"
}
# A checkout's layout, with the test build as build/ and a var/ of its own.
# The examples are copied: the users cgiq drops to must reach them, which
# they may not where the checkout lies (a home directory).
mkdir -p "$tmp/co"
chmod 755 "$tmp/co"
ln -s "$build" "$tmp/co/build"
cp -a "$src/examples" "$tmp/co/examples"
chmod 755 "$tmp/co/examples" "$tmp/co/examples/cgi-bin"
ln -s "$src/scripts" "$tmp/co/scripts"
# The example configuration files name the same system paths: moved too.
for f in "$tmp/co/examples/apps"/*/cgiq.conf "$tmp/co/examples/cgiq.conf"; do
	move_paths <"$f" >"$f.moved" && mv "$f.moved" "$f"
done
mkdir -p "$tmp/sys/app" && cp -a "$src/examples/apps/php/." "$tmp/sys/app/" && chmod 755 "$tmp/sys/app"

# One command line (continuations joined), from WHERE, run in the checkout's
# layout (examples/...).
check_command() { # WHERE LINE
	local where=$1 line out
	line=$(printf '%s\n' "$2" | move_paths)
	case $line in
	./scripts/*)
		[[ -x $src/${line%% *} ]] || failed "$where: ${line%% *} is not an executable script"
		return
		;;
	cgiq\ *)
		[[ $line == *--check-config* || $line == *--test* ]] || line="$line --check-config"
		line="$build/cgiq ${line#cgiq }"
		;;
	esac
	if ! out=$(cd "$tmp/co" && timeout 20 bash -c "$line" 2>&1); then
		failed "$where: this failed: $2"
		printf '%s\n' "$out" | sed 's/^/    /' >&2
	fi
}
# The blocks after a marker: prints each block's lines with continuations
# joined, the blocks separated by a line holding a NUL-free separator.
blocks_after() { # MARKER FILE
	awk -v marker="$1" '
		$0 ~ "^<!-- check: " marker " -->" { armed = 1; next }
		armed && /^<!-- expect: / { next }
		armed && /^```/ { armed = 0; inblock = 1; next }
		inblock && /^```/ { inblock = 0; print "@@END@@"; next }
		inblock {
			line = $0; sub(/[ \t]+#.*$/, "", line)
			if (line ~ /\\$/) { sub(/\\$/, "", line); acc = acc line; next }
			print acc line; acc = ""
		}' "$2"
}
commands=0
while IFS= read -r line; do
	[[ -z $line || $line == @@END@@ ]] && continue
	commands=$((commands + 1))
	check_command "README.md" "$line"
done < <(blocks_after command "$readme")
[[ $commands -ge 5 ]] || failed "README.md: fewer command lines marked than expected ($commands)"
echo "check_readme: $commands command lines of the README checked"

# The man page's examples: its cgiq lines, and its configuration file.
man_text=$(sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$src/src/app/cgiq.8" | sed -e 's/\\-/-/g' -e 's/\\e/\\/g')
joined=$(printf '%s\n' "$man_text" | awk '/\\$/ { sub(/\\$/, ""); acc = acc $0; next } { print acc $0; acc = "" }')
n=0
while IFS= read -r line; do
	line=$(printf '%s' "$line" | sed -e 's/^ *//' -e 's/ *&& *$//')
	[[ $line == cgiq\ * ]] || continue
	n=$((n + 1))
	[[ $line == *--config* ]] && continue # the file's, below
	check_command "cgiq.8" "$line"
done <<<"$joined"
[[ $n -ge 2 ]] || failed "cgiq.8: fewer cgiq command lines in EXAMPLES than expected ($n)"
printf '%s\n' "$man_text" | awk '/^holds:/ { on = 1; next } on && /^\.nf/ { body = 1; next } body && /^\.fi/ { exit } body' |
	move_paths >"$tmp/sys/etc/cgiq.conf"
grep -q '^cgi-root' "$tmp/sys/etc/cgiq.conf" || failed "cgiq.8: no configuration file found in EXAMPLES"
check_command "cgiq.8 (its configuration file)" "cgiq --config /etc/cgiq/cgiq.conf --test"

# examples/nginx/cgiq.conf: the start command of its comment.
nginx_cmd=$(sed -n '/^#   install\|^#   cgiq\|^#        /p' "$src/examples/nginx/cgiq.conf" | sed 's/^#  *//' |
	awk '/\\$/ { sub(/\\$/, ""); acc = acc $0; next } { print acc $0; acc = "" }')
[[ $nginx_cmd == *cgiq\ * ]] || failed "examples/nginx/cgiq.conf: no start command in its comment"
while IFS= read -r line; do
	[[ -n $line ]] && check_command "examples/nginx/cgiq.conf" "$line"
done <<<"$nginx_cmd"

# ---------------------------------------------------------------- 3. run
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
try_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$tmp/co" && CGIQ_RUN_NO_BUILD=1 CGIQ_LISTEN="127.0.0.1:$port" exec ./scripts/run.sh \
	>"$tmp/server.log" 2>&1) &
server=$!
up=0
for _ in $(seq 200); do # 20 s at most
	if grep -q "listening on 127.0.0.1:$port" "$tmp/server.log" 2>/dev/null; then up=1; break; fi
	kill -0 "$server" 2>/dev/null || break
	sleep 0.1
done
if [[ $up != 1 ]]; then
	failed "./scripts/run.sh did not start the example server"
	sed 's/^/    /' "$tmp/server.log" >&2
else
	# Each block with its expectations, in README order.
	awk '
		/^<!-- check: run -->/ { armed = 1; n++; next }
		armed && /^<!-- expect: / {
			e = $0; sub(/^<!-- expect: /, "", e); sub(/ -->$/, "", e); print e > (dir "/expect." n); next
		}
		armed && /^```/ { armed = 0; inblock = 1; next }
		inblock && /^```/ { inblock = 0; next }
		inblock { print > (dir "/block." n) }
	' dir="$tmp" "$readme"
	blocks=0
	for b in "$tmp"/block.*; do
		[[ -e $b ]] || continue
		blocks=$((blocks + 1))
		i=${b##*.}
		sed -i -e "s|127\.0\.0\.1:8080|127.0.0.1:$port|g" "$b"
		if ! out=$(cd "$tmp/co" && TRY_PORT=$try_port timeout 120 bash -eo pipefail "$b" 2>&1); then
			failed "README.md: run block $i failed:"
			sed 's/^/    > /' "$b" >&2
			printf '%s\n' "$out" | tail -20 | sed 's/^/    /' >&2
			continue
		fi
		if [[ -e $tmp/expect.$i ]]; then
			while IFS= read -r want; do
				grep -qF -- "$want" <<<"$out" || failed "README.md: run block $i: no '$want' in its output"
			done <"$tmp/expect.$i"
		fi
		echo "check_readme: run block $i ok"
	done
	[[ $blocks -ge 3 ]] || failed "README.md: fewer run blocks than expected ($blocks)"
fi

[[ $fail == 0 ]] && echo "check_readme: ok"
exit $fail
