#!/bin/sh
# Install what is missing, build, and run the whole test suite.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh test
[ -d build ] || meson setup build
meson compile -C build
# playwright-core for the browser test, pinned by tests/browser/package-lock.json.
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund)
# ws, playwright-core and typescript for the herald-client tests, pinned by
# clients/js/package-lock.json.
[ -d clients/js/node_modules/ws ] && [ -d clients/js/node_modules/playwright-core ] \
  && [ -d clients/js/node_modules/typescript ] || (cd clients/js && npm ci --no-audit --no-fund)
meson test -C build --print-errorlogs "$@"
