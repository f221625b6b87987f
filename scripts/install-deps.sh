#!/bin/sh
# Installs what Herald needs on Debian 12 (as root). Safe to run again:
# only what is missing is installed.
#   sh scripts/install-deps.sh run    # build and run heraldd (scripts/run.sh)
#   sh scripts/install-deps.sh test   # also everything the test suite needs
#                                     # (the default; scripts/test.sh)
set -eu

mode=${1:-test}

# To build and run heraldd.
RUN_PACKAGES="
  build-essential meson ninja-build pkg-config gettext
  libglib2.0-dev libglib2.0-dev-bin libsoup-3.0-dev libjson-glib-dev
  libgnutls28-dev libhiredis-dev zlib1g-dev glib-networking
  liburing-dev
"
# To run the whole suite: a bus, Redis (and Sentinel: tests/test-sentinel.c runs
# redis-server --sentinel, the same binary), valgrind, the man pages, the examples
# (python3, curl) and systemd's tools for the install test.
TEST_PACKAGES="
  dbus-daemon dbus-bin libxml2-utils redis-server redis-sentinel curl valgrind
  scdoc python3 systemd openssl
"

case $mode in
  run) PACKAGES=$RUN_PACKAGES ;;
  test) PACKAGES="$RUN_PACKAGES $TEST_PACKAGES" ;;
  *)
    echo "usage: $0 [run|test]" >&2
    exit 2
    ;;
esac

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ "$mode" = test ]; then
  # The browser test (tests/browser): Chromium, and node/npm unless another
  # Node.js (e.g. NodeSource's, which bundles npm) is already installed.
  dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || missing="$missing chromium"
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing packages:$missing — run this script as root (or with sudo)." >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing
fi
