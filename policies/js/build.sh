#!/bin/sh
# Builds a JavaScript Dovetail policy into a Wasm component.
#
#   policies/js/build.sh SRC_DIR OUT.wasm [WORLD]
#
# SRC_DIR holds policy.js (the entry module) and, unless WORLD is given, a file
# `world` naming the WIT world: instance-selector, consolidation-scorer or policy.
# The WIT is SRC_DIR/wit when present, else this repository's wit/.
# componentize-js comes from $DOVETAIL_JS_TOOLS (default
# /var/tmp/dovetail-tools/js, filled by tests/js/install.sh) or from PATH.
#
# Every optional WASI feature is disabled, so the component imports only
# dovetail:policy/log: no stdio, clocks, randomness, HTTP or fetch events.
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 SRC_DIR OUT.wasm [WORLD]" >&2
  exit 2
fi
src=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

entry="$src/policy.js"
[ -f "$entry" ] || { echo "error: $entry not found: a JavaScript policy's entry module is policy.js" >&2; exit 1; }

if [ $# -eq 3 ]; then
  world=$3
elif [ -f "$src/world" ]; then
  world=$(tr -d ' \n\r\t' < "$src/world")
else
  echo "error: no world: pass it as the third argument or write it to $src/world (instance-selector, consolidation-scorer or policy)" >&2
  exit 1
fi
case $world in
  instance-selector|consolidation-scorer|policy) ;;
  *) echo "error: world '$world' is not one of instance-selector, consolidation-scorer, policy" >&2; exit 1 ;;
esac

if [ -d "$src/wit" ]; then wit="$src/wit"; else wit="$repo/wit"; fi

tools=${DOVETAIL_JS_TOOLS:-/var/tmp/dovetail-tools/js}
if [ -x "$tools/node_modules/.bin/componentize-js" ]; then
  componentize="$tools/node_modules/.bin/componentize-js"
elif command -v componentize-js >/dev/null 2>&1; then
  componentize=componentize-js
else
  echo "error: componentize-js not found in $tools/node_modules/.bin or on PATH: run tests/js/install.sh (needs Node 20+ and npm)" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
# Write next to the target and rename, so a failed build leaves no half file.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$componentize" "$entry" --wit "$wit" --world-name "$world" \
  --disable stdio random clocks http fetch-event -o "$tmp"
mv "$tmp" "$out"
