#!/usr/bin/env bash
# The web page: builds the wasm module with wasm-bindgen into web/pkg/ (and its threaded twin
# into web/pkg-mt/, below) and serves web/ on 127.0.0.1, or writes a folder ready for any static
# host, or an npm package.
#
#   scripts/web.sh               build, then serve on http://127.0.0.1:8080/ (PORT=… to change)
#                                with the COOP/COEP headers that make the page cross-origin
#                                isolated (scripts/serve.py)
#   scripts/web.sh --dist DIR    build, then copy the page into DIR (index.html, app.js, pkg/,
#                                pkg-mt/, threads.js, worker.js, models/ with the ready model,
#                                coi-serviceworker.js, examples/, …)
#   scripts/web.sh --npm DIR     build, then write the wasm module, its JavaScript glue and their
#                                TypeScript declarations into DIR as an npm package ("qnn"; its
#                                "qnn/threads" loads the threaded module with every core)
#   scripts/web.sh --build       build only
# --dist and --npm can be given together (one build).
#
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly: the script installs
# that version once (about 13 minutes on 2 cores) into $QNN_TOOLS (default /opt/qnn-tools) and
# reuses it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/web.sh [--build | --dist DIR | --npm DIR | --dist DIR --npm DIR]" >&2; exit 2; }
mode=serve
dist=""
npm=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) [ $# -ge 2 ] && [ -n "$2" ] || usage; dist="$2"; mode=out; shift 2 ;;
        --npm) [ $# -ge 2 ] && [ -n "$2" ] || usage; npm="$2"; mode=out; shift 2 ;;
        --build) build_only=1; shift ;;
        *) usage ;;
    esac
done
if [ -n "${build_only:-}" ]; then [ "$mode" = serve ] || usage; mode=build; fi

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { echo "web.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
tools="${QNN_TOOLS:-/opt/qnn-tools}"
bindgen="$tools/wasm-bindgen-$version/bin/wasm-bindgen"
if [ ! -x "$bindgen" ]; then
    echo "web.sh: installing wasm-bindgen-cli $version into $tools (once)" >&2
    cargo install wasm-bindgen-cli --version "$version" --root "$tools/wasm-bindgen-$version"
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --lib --release --target wasm32-unknown-unknown --no-default-features
"$bindgen" --target web --no-typescript --out-dir web/pkg \
    target/wasm32-unknown-unknown/release/qnn.wasm
echo "web.sh: built web/pkg ($(du -sh web/pkg | cut -f1))" >&2

# The threaded module, web/pkg-mt/: the same library with wasm threads (shared memory and
# atomics; rayon over a pool of Web Workers, wasm-bindgen-rayon), which the page uses when it is
# cross-origin isolated. Stable Rust has no std built with atomics for wasm32-unknown-unknown:
# this one build rebuilds std (-Z build-std, rust-src) on the pinned stable toolchain, with
# RUSTC_BOOTSTRAP=1, in its own target folder. RUSTFLAGS replaces .cargo/config.toml's
# rustflags, so +simd128 is repeated here. --shared-memory makes wasm-bindgen emit the threaded
# glue; the TLS exports are what it needs to set up each worker's thread-local storage.
build_threaded() {
    local toolchain
    toolchain=$(awk -F'"' '/^rust-version *=/ { print $2; exit }' Cargo.toml)
    [ -n "$toolchain" ] || { echo "web.sh: no rust-version in Cargo.toml" >&2; exit 1; }
    toolchain="$toolchain.0"
    # the pinned toolchain with std's sources (a machine that lacks it gets it from rustup)
    rustup component add rust-src --toolchain "$toolchain" >/dev/null 2>&1 ||
        rustup toolchain install "$toolchain" --profile minimal --component rust-src \
            --target wasm32-unknown-unknown
    local flags="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals"
    flags="$flags -C link-arg=--shared-memory -C link-arg=--import-memory"
    flags="$flags -C link-arg=--max-memory=4294967296"
    local sym
    for sym in __wasm_init_tls __tls_size __tls_align __tls_base __heap_base; do
        flags="$flags -C link-arg=--export=$sym"
    done
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" cargo "+$toolchain" build --lib --release \
        --target wasm32-unknown-unknown --no-default-features \
        -Z build-std=panic_abort,std --target-dir target/wasm-mt
    "$bindgen" --target web --no-typescript --out-dir web/pkg-mt \
        target/wasm-mt/wasm32-unknown-unknown/release/qnn.wasm
    echo "web.sh: built web/pkg-mt, threaded ($(du -sh web/pkg-mt | cut -f1))" >&2
}
build_threaded

if [ -n "$dist" ]; then
    mkdir -p "$dist"
    # models/: the ready model the page loads on arrival (scripts/page-model.sh makes it);
    # coi-serviceworker.js: cross-origin isolation on hosts that cannot send the headers
    # pkg-mt/, threads.js and worker.js: the threaded module, its loader and its workers
    # (cross-origin isolated pages)
    cp -r web/index.html web/app.js web/threads.js web/style.css web/coi-serviceworker.js web/worker.js \
        web/vendor web/pkg web/pkg-mt web/models web/examples "$dist"/
    echo "web.sh: the page is in $dist — serve it from any static host (WebGPU and the service worker need https or localhost)"
fi
if [ -n "$npm" ]; then
    mkdir -p "$npm"
    # the same module as the page's, with TypeScript declarations (qnn.d.ts, qnn_bg.wasm.d.ts)
    "$bindgen" --target web --out-dir "$npm" target/wasm32-unknown-unknown/release/qnn.wasm
    # "qnn/threads": every core in a cross-origin isolated page (the threaded module, its loader
    # and its workers, laid out as in web/)
    "$bindgen" --target web --out-dir "$npm/pkg-mt" \
        target/wasm-mt/wasm32-unknown-unknown/release/qnn.wasm
    cp web/threads.js web/threads.d.ts web/worker.js "$npm"/
    pkg_version=$(awk -F'"' '/^\[/ { p = ($0 == "[package]") } p && /^version *=/ { print $2; exit }' Cargo.toml)
    [ -n "$pkg_version" ] || { echo "web.sh: no version in Cargo.toml's [package]" >&2; exit 1; }
    sed "s/@VERSION@/$pkg_version/" web/npm/package.json > "$npm/package.json"
    cp web/npm/README.md LICENSE-MIT LICENSE-APACHE "$npm"/
    echo "web.sh: the npm package qnn $pkg_version is in $npm (npm pack or npm publish there)"
fi
if [ "$mode" = serve ]; then
    port="${PORT:-8080}"
    echo "web.sh: serving http://127.0.0.1:$port/ cross-origin isolated (Ctrl-C to stop)"
    exec python3 scripts/serve.py --port "$port" web
fi
