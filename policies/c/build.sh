#!/usr/bin/env bash
# Builds a C policy into a component: build.sh SRC_DIR OUT.wasm [WORLD].
# The script lives with the SDK (policy projects get it as sdk/build.sh).
exec "$(dirname "$0")/sdk/build.sh" "$@"
