#!/bin/sh
# curl or wget fetching URLs in order, for integration_clients.
# usage: client.sh curl|wget USER-AGENT URL...   ('-': the tool's own User-Agent)
# curl gets all URLs in one run (one connection while the server keeps it);
# wget one run each. For each URL one line: 'STATUS LENGTH SHA256', or
# 'ERROR' when the tool got no answer.
set -u
tool=$1 ua=$2
shift 2
dir=$(mktemp -d) || exit 2
trap 'rm -rf "$dir"' EXIT
n=0
case $tool in
curl)
  for url in "$@"; do
    n=$((n + 1))
    set -- "$@" -o "$dir/$n" "$url"
    shift
  done
  [ "$ua" = - ] || set -- -A "$ua" "$@"
  curl -s --max-time 30 -w '%{http_code}\n' "$@" >"$dir/codes"
  ;;
wget)
  : >"$dir/codes"
  for url in "$@"; do
    n=$((n + 1))
    if [ "$ua" = - ]; then
      wget -q -S -T 30 -t 1 -O "$dir/$n" "$url" 2>"$dir/head"
    else
      wget -q -S -T 30 -t 1 -U "$ua" -O "$dir/$n" "$url" 2>"$dir/head"
    fi
    awk '/^  HTTP\//{c=$2} END{print c}' "$dir/head" >>"$dir/codes"
  done
  ;;
*) echo "usage: client.sh curl|wget USER-AGENT URL..." >&2; exit 2 ;;
esac
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  code=$(sed -n "${i}p" "$dir/codes")
  if [ -s "$dir/$i" ] || [ "${code:-000}" != 000 ]; then
    echo "${code:-000} $(wc -c <"$dir/$i") $(sha256sum <"$dir/$i" | cut -d' ' -f1)"
  else
    echo "ERROR"
  fi
done
