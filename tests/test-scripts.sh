#!/bin/sh
# The quick-start scripts: scripts/run.sh passes its arguments to heraldd
# (--listen moves it, and it does not also listen on 8080), and installs only
# what running needs; scripts/test.sh installs the test tools too.
# Usage: test-scripts.sh SOURCE_ROOT BUILD_ROOT
set -eu
src=$1
build=$2
tmp=$(mktemp -d)
pid=""
cleanup () {
  [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail () {
  echo "not ok: $*" >&2
  failures=$((failures + 1))
}

# The package lists: "run" has no test tools, "test" has them all. With a
# dpkg-query that reports nothing installed and a non-root id, the script
# names every package it would install, and installs nothing.
mkdir -p "$tmp/bin"
printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/dpkg-query"
printf '#!/bin/sh\necho 1000\n' >"$tmp/bin/id"
chmod +x "$tmp/bin/dpkg-query" "$tmp/bin/id"
for mode in run test; do
  PATH="$tmp/bin:$PATH" sh "$src/scripts/install-deps.sh" $mode 2>&1 >/dev/null \
    | sed -n 's/^Missing packages:\(.*\) — .*/\1/p' | tr ' ' '\n' >"$tmp/$mode.list" || true
done
for tool in chromium valgrind redis-server scdoc dbus-daemon; do
  grep -qx "$tool" "$tmp/run.list" && fail "install-deps.sh run installs $tool, a test tool"
  grep -qx "$tool" "$tmp/test.list" || fail "install-deps.sh test does not install $tool"
done
grep -qx libsoup-3.0-dev "$tmp/run.list" || fail "install-deps.sh run does not install libsoup-3.0-dev"
grep -q 'install-deps.sh test' "$src/scripts/test.sh" || fail "scripts/test.sh does not install the test tools"
sh "$src/scripts/install-deps.sh" bogus 2>/dev/null && fail "install-deps.sh accepts an unknown mode"

# run.sh with --listen: a copy of scripts/ next to the real build directory.
mkdir -p "$tmp/tree/scripts"
cp "$src/scripts/run.sh" "$src/scripts/install-deps.sh" "$tmp/tree/scripts/"
ln -s "$build" "$tmp/tree/build"
: >"$tmp/empty.conf"
env -u HERALD_API_KEY -u HERALD_JWT_SECRET -u REDIS_URL \
  sh "$tmp/tree/scripts/run.sh" --listen 127.0.0.1:0 --bus none --config "$tmp/empty.conf" \
  >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
i=0
until grep -q "listening on http://" "$tmp/run.err" 2>/dev/null; do
  i=$((i + 1))
  if ! kill -0 "$pid" 2>/dev/null || [ "$i" -gt 600 ]; then
    cat "$tmp/run.out" "$tmp/run.err" >&2
    if grep -q "Missing packages" "$tmp/run.err" && [ "${CI:-}" != true ]; then
      echo "SKIP: packages missing and not root"
      exit 77
    fi
    fail "scripts/run.sh did not start heraldd"
    exit 1
  fi
  sleep 0.1
done
sleep 0.3 # a second listener would be logged right after the first
listening=$(grep -c "listening on http://" "$tmp/run.err")
[ "$listening" -eq 1 ] || fail "run.sh --listen: heraldd listens $listening times: $(grep listening "$tmp/run.err")"
grep -q "listening on http://127.0.0.1:8080" "$tmp/run.err" && fail "run.sh --listen 127.0.0.1:0 still listens on 8080"
grep "listening on" "$tmp/run.err"

[ "$failures" -eq 0 ] || exit 1
echo "ok: run.sh passes its arguments to heraldd"
