#!/usr/bin/env bash
# Builds a Dovetail policy written in C into a component:
#   build.sh SRC_DIR OUT.wasm [WORLD]
# WORLD is instance-selector (selector), consolidation-scorer (scorer) or
# policy (both decisions); without it, the first line of SRC_DIR/world.
#
# Steps: `wit-bindgen c` writes bindings for the world, clang compiles them,
# this SDK and SRC_DIR/*.c for wasm32-wasi (wasi-libc) as a reactor, and
# `wasm-tools component new --adapt` wraps the core module with the WASI
# preview1 reactor adapter into the component Dovetail loads.
#
# Tools: clang, wasm-ld and wasi-libc (Debian: apt-get install clang lld
# wasi-libc libclang-rt-dev-wasm32), wit-bindgen and wasm-tools (cargo install
# --locked wit-bindgen-cli wasm-tools), the adapter file. The Dovetail
# repository's tests/c/install.sh installs them all under $DOVETAIL_TOOLS
# (default /var/tmp/dovetail-tools), where this script looks first.
# Overrides: CLANG, WIT_BINDGEN, WASM_TOOLS, DOVETAIL_ADAPTER, DOVETAIL_WIT,
# WASI_SYSROOT (a WASI SDK sysroot instead of Debian's wasi-libc), CFLAGS.
set -euo pipefail

usage() {
  echo "usage: $0 SRC_DIR OUT.wasm [instance-selector|consolidation-scorer|policy]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
src="$1"
out="$2"
[ -d "$src" ] || { echo "build.sh: source directory $src does not exist" >&2; exit 2; }

sdk="$(cd "$(dirname "$0")" && pwd)"
tools="${DOVETAIL_TOOLS:-/var/tmp/dovetail-tools}"
install_hint="install the C toolchain with tests/c/install.sh (in a policy project: sdk/install.sh)"

world="${3:-}"
if [ -z "$world" ]; then
  [ -f "$src/world" ] || { echo "build.sh: no WORLD argument and no $src/world file: give instance-selector, consolidation-scorer or policy" >&2; exit 2; }
  world="$(head -n1 "$src/world" | tr -d '[:space:]')"
fi
case "$world" in
  selector | instance-selector) world=instance-selector; selection=1; scoring=0 ;;
  scorer | consolidation-scorer) world=consolidation-scorer; selection=0; scoring=1 ;;
  policy) selection=1; scoring=1 ;;
  *) echo "build.sh: unknown world '$world': use instance-selector, consolidation-scorer or policy" >&2; exit 2 ;;
esac

# The WIT: beside the SDK in a policy project (sdk/, wit/), or the repository's.
wit="${DOVETAIL_WIT:-}"
if [ -z "$wit" ]; then
  for candidate in "$sdk/../wit" "$sdk/../../../wit"; do
    [ -f "$candidate/policy.wit" ] && { wit="$(cd "$candidate" && pwd)"; break; }
  done
fi
[ -n "$wit" ] && [ -f "$wit/policy.wit" ] || { echo "build.sh: wit/policy.wit not found next to $sdk; set DOVETAIL_WIT" >&2; exit 2; }

tool() { # NAME ENV_OVERRIDE: the override, then $tools/bin, then PATH
  local name="$1" override="$2"
  if [ -n "$override" ]; then echo "$override"; return; fi
  if [ -x "$tools/bin/$name" ]; then echo "$tools/bin/$name"; return; fi
  command -v "$name" || { echo "build.sh: $name not found: $install_hint" >&2; return 1; }
}
clang="$(tool clang "${CLANG:-}")"
wit_bindgen="$(tool wit-bindgen "${WIT_BINDGEN:-}")"
wasm_tools="$(tool wasm-tools "${WASM_TOOLS:-}")"
adapter="${DOVETAIL_ADAPTER:-$tools/share/wasi_snapshot_preview1.reactor.wasm}"
[ -f "$adapter" ] || { echo "build.sh: the WASI preview1 reactor adapter $adapter is missing: $install_hint" >&2; exit 1; }
sysroot=()
if [ -n "${WASI_SYSROOT:-}" ]; then
  sysroot=(--sysroot "$WASI_SYSROOT")
elif [ ! -f /usr/lib/wasm32-wasi/libc.a ]; then
  echo "build.sh: wasi-libc not found (/usr/lib/wasm32-wasi/libc.a): $install_hint, or set WASI_SYSROOT" >&2
  exit 1
fi

shopt -s nullglob
sources=("$src"/*.c)
[ -n "${sources[*]}" ] || { echo "build.sh: no .c files in $src" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# One name for every world, so the SDK includes the same header.
"$wit_bindgen" c --world "$world" --rename-world dovetail_bindings --out-dir "$work" "$wit" >"$work/wit-bindgen.log" 2>&1 ||
  { cat "$work/wit-bindgen.log" >&2; exit 1; }
# shellcheck disable=SC2086 # CFLAGS is a list of flags
"$clang" --target=wasm32-wasi -mexec-model=reactor "${sysroot[@]}" -Os -Wall -Wextra \
  -Wno-unused-parameter -Wno-missing-field-initializers \
  -DDT_SELECTION="$selection" -DDT_SCORING="$scoring" -I"$work" -I"$sdk" ${CFLAGS:-} \
  "$work/dovetail_bindings.c" "$work/dovetail_bindings_component_type.o" "$sdk"/*.c "${sources[@]}" \
  -Wl,--strip-all -o "$work/core.wasm"
mkdir -p "$(dirname "$out")"
"$wasm_tools" component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out.tmp"
"$wasm_tools" validate "$out.tmp"
mv "$out.tmp" "$out"
echo "built $out ($world, $(wc -c <"$out") bytes)" >&2
