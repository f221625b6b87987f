#!/bin/sh
# Quick start: install what is missing to build and run (not the test tools),
# build, and run heraldd on its embedded default (in-process engine,
# anonymous on loopback, demo page at http://127.0.0.1:8080/).
# Arguments go to heraldd: sh scripts/run.sh --listen 127.0.0.1:9000
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh run
[ -d build ] || meson setup build
meson compile -C build
exec ./build/src/heraldd "$@"
