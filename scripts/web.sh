#!/usr/bin/env bash
# The web page: builds the wasm module with wasm-bindgen into web/pkg/ and serves web/ on
# 127.0.0.1, or writes a folder ready for any static host.
#
#   scripts/web.sh               build, then serve on http://127.0.0.1:8080/ (PORT=… to change)
#   scripts/web.sh --dist DIR    build, then copy the page into DIR (index.html, app.js, pkg/,
#                                models/ with the ready model, …)
#   scripts/web.sh --build       build only
#
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly: the script installs
# that version once (about 13 minutes on 2 cores) into $QNN_TOOLS (default /opt/qnn-tools) and
# reuses it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=serve
dist=""
case "${1:-}" in
    --dist) mode=dist; dist="${2:?--dist needs a folder}" ;;
    --build) mode=build ;;
    "") ;;
    *) echo "usage: scripts/web.sh [--build | --dist DIR]" >&2; exit 2 ;;
esac

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

case "$mode" in
    build) ;;
    dist)
        mkdir -p "$dist"
        # models/: the ready model the page loads on arrival (scripts/page-model.sh makes it)
        cp -r web/index.html web/app.js web/style.css web/vendor web/pkg web/models "$dist"/
        echo "web.sh: the page is in $dist — serve it from any static host (WebGPU needs https or localhost)"
        ;;
    serve)
        port="${PORT:-8080}"
        echo "web.sh: serving http://127.0.0.1:$port/ (Ctrl-C to stop)"
        exec python3 -m http.server "$port" --bind 127.0.0.1 --directory web
        ;;
esac
