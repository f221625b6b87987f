#!/bin/sh
# Quick start: install what is missing, build, and run heraldd on its
# embedded default (in-process engine, anonymous on loopback, demo page at /).
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build
meson compile -C build
exec ./build/src/heraldd --listen 127.0.0.1:8080 "$@"
