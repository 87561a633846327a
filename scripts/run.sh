#!/usr/bin/env bash
# Builds cgiq (Release, into build/) and runs it in the foreground with the
# example configuration: the programs in examples/cgi-bin, the job database
# and spool under var/, and a short 102 Processing timer for the demo.
#
#   ./scripts/run.sh                      listen on 127.0.0.1:8080
#   CGIQ_LISTEN=127.0.0.1:9000 ./scripts/run.sh
#   ./scripts/run.sh --log-level debug    extra options go to cgiq as they are
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CGIQ_RUN_NO_BUILD=1: serve with the build/ there is (the README's check,
# tests/docs/check_readme.sh, links its test build there).
if [[ -z ${CGIQ_RUN_NO_BUILD:-} ]]; then
	./scripts/setup.sh
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
	cmake --build build -j2 --target cgiq hello-c
fi

mkdir -p var

listen="${CGIQ_LISTEN:-127.0.0.1:8080}"

cat <<HINT
cgiq: try   curl -sv http://${listen}/sample.pdf -o sample.pdf  (two or more 102s, then the PDF)
cgiq: jobs  build/cgiq jobs --db var/cgiq.db                   (from another terminal)
cgiq: more  /hello /env /echo /fail /countdown (streamed) from examples/cgi-bin; stop with Ctrl-C
HINT

# cgiq refuses to run programs as root. Started by root (a fresh VM, CI), the
# demo runs as nobody and its programs as cgiq-run (made by setup.sh) when
# both can reach the examples; otherwise (a checkout under a private home
# directory) --allow-root keeps the demo working, and cgiq says so in its log.
who=()
if [[ $(id -u) == 0 ]]; then
	if runuser -u nobody -- test -x examples/cgi-bin/hello 2>/dev/null &&
		runuser -u cgiq-run -- test -x examples/cgi-bin/hello -a -r examples/cgi-bin/sample.pdf 2>/dev/null; then
		who=(--user nobody --group nogroup)
	else
		echo "cgiq: examples/cgi-bin is not readable by nobody and cgiq-run: running the programs as root (--allow-root)"
		who=(--allow-root)
	fi
fi

exec build/cgiq \
	"${who[@]}" \
	--listen "$listen" \
	--cgi-root examples/cgi-bin \
	--db var/cgiq.db \
	--spool var/spool \
	--processing-after 1s \
	--processing-interval 1s \
	--stream /countdown \
	"$@"
