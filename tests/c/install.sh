#!/usr/bin/env bash
# Installs the C policy toolchain (clang, wasm-ld, wasi-libc, wit-bindgen,
# wasm-tools, the WASI preview1 reactor adapter) and prints where it is; the
# script ships with the C SDK so policy projects get it as sdk/install.sh.
exec "$(dirname "$0")/../../policies/c/sdk/install.sh" "$@"
