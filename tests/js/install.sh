#!/bin/sh
# Installs the pinned tools that build JavaScript policies into
# /var/tmp/dovetail-tools/js (or $DOVETAIL_JS_TOOLS): componentize-js and jco,
# at the versions in tests/js/package-lock.json. Idempotent: an install that
# already matches the lock file is left alone. Needs Node 20+ and npm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DOVETAIL_JS_TOOLS:-/var/tmp/dovetail-tools/js}

command -v node >/dev/null 2>&1 || { echo "error: node not found: install Node.js 20 or later" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "error: npm not found: install npm with Node.js" >&2; exit 1; }

mkdir -p "$dest"
if ! cmp -s "$here/package-lock.json" "$dest/package-lock.json" \
  || [ ! -x "$dest/node_modules/.bin/componentize-js" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dest/"
  (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
  # npm ci may rewrite the lock's formatting; keep ours so the check above holds.
  cp "$here/package-lock.json" "$dest/package-lock.json"
fi

echo "node $(node --version)"
echo "componentize-js $("$dest/node_modules/.bin/componentize-js" --version)"
echo "jco $("$dest/node_modules/.bin/jco" --version)"
echo "tools in $dest/node_modules/.bin"
