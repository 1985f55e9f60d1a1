#!/usr/bin/env bash
# Installs what building C policies needs and prints what it has:
#   - clang, wasm-ld, wasi-libc and the wasm32 compiler runtime (Debian packages);
#   - wit-bindgen (C bindings) and wasm-tools (component new), from crates.io;
#   - the WASI preview1 reactor adapter, taken from the crates.io package
#     wasi-preview1-component-adapter-provider of the same version as the
#     host's wasmtime, so the component imports what the host links.
#
# Where: Debian packages system-wide (apt-get, as root); the rest under
# $DOVETAIL_TOOLS (default /var/tmp/dovetail-tools), outside the checkout so
# CI runs and fresh clones on the same machine reuse it. Re-runs are instant.
# build.sh (beside this script) finds everything there. Needs cargo (Rust).
set -euo pipefail

tools="${DOVETAIL_TOOLS:-/var/tmp/dovetail-tools}"
# Pinned: wit-bindgen-cli matches the workspace's wit-bindgen, wasm-tools the
# wasm-tools crates it uses (0.247 -> 1.247), the adapter the host's wasmtime.
wit_bindgen_version=0.57.1
wasm_tools_version=1.247.0
adapter_version=48.0.8
adapter="$tools/share/wasi_snapshot_preview1.reactor-$adapter_version.wasm"

say() { echo "c-toolchain: $*" >&2; }

# Debian: clang 14, lld 14 (wasm-ld), wasi-libc (sysroot in /usr/{include,lib}/wasm32-wasi),
# compiler-rt builtins for wasm32 (long double and 64-bit division helpers).
apt_install() {
  command -v apt-get >/dev/null || {
    say "missing $* and no apt-get: install clang, lld and wasi-libc for wasm32-wasi by hand"
    exit 1
  }
  say "installing $* (apt-get)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
missing=()
command -v clang >/dev/null || missing+=(clang)
command -v wasm-ld >/dev/null || missing+=(lld)
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing+=(wasi-libc)
[ -z "${missing[*]}" ] || apt_install "${missing[@]}"
# The builtins must match the compiler's version.
if [ ! -f "$(clang -print-resource-dir)/lib/wasi/libclang_rt.builtins-wasm32.a" ]; then
  apt_install "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev-wasm32"
fi

mkdir -p "$tools/bin" "$tools/share"

# crates.io tools, only the features the build uses (a smaller build).
installed() { # binary, expected version
  [ -x "$tools/bin/$1" ] && "$tools/bin/$1" --version 2>/dev/null | grep -qF " $2"
}
if ! installed wit-bindgen "$wit_bindgen_version"; then
  say "installing wit-bindgen-cli $wit_bindgen_version into $tools"
  cargo install --quiet --locked --force --root "$tools" "wit-bindgen-cli@$wit_bindgen_version" \
    --no-default-features --features c >&2
fi
if ! installed wasm-tools "$wasm_tools_version"; then
  say "installing wasm-tools $wasm_tools_version into $tools"
  cargo install --quiet --locked --force --root "$tools" "wasm-tools@$wasm_tools_version" \
    --no-default-features --features component,validate,print >&2
fi

# The adapter's bytes come from the crate's public constant, written by a
# throwaway program built once.
if [ ! -s "$adapter" ]; then
  say "writing the preview1 reactor adapter $adapter_version to $adapter"
  src="$(mktemp -d)"
  trap 'rm -rf "$src"' EXIT
  mkdir -p "$src/src"
  cat >"$src/Cargo.toml" <<TOML
[package]
name = "write-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$adapter_version"

[workspace]
TOML
  cat >"$src/src/main.rs" <<'RUST'
fn main() {
    let out = std::env::args().nth(1).expect("output path");
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    std::fs::write(&out, bytes).expect("write the adapter");
}
RUST
  CARGO_TARGET_DIR="$src/target" cargo run --quiet --manifest-path "$src/Cargo.toml" -- "$adapter.tmp" >&2
  # Renamed last: an interrupted install is redone on the next run.
  mv "$adapter.tmp" "$adapter"
fi
ln -sf "$(basename "$adapter")" "$tools/share/wasi_snapshot_preview1.reactor.wasm"

say "$(clang --version | head -n1)"
say "wasm-ld: $(wasm-ld --version | head -n1)"
say "wasi-libc: $(dpkg-query -W -f '${Version}' wasi-libc 2>/dev/null || echo 'present')"
say "$("$tools/bin/wit-bindgen" --version)"
say "$("$tools/bin/wasm-tools" --version)"
say "adapter: $adapter ($(wc -c <"$adapter") bytes)"
echo "$tools"
