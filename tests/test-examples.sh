#!/bin/sh
# Runs one of the examples against a live heraldd and checks that a message
# published while it is subscribed is printed by it.
# Usage: test-examples.sh SOURCE_ROOT EXAMPLE
#   EXAMPLE: python, python-sse, node, node-sse, curl-sse (subscribers; the
#   test publishes over the HTTP API) or busctl (publish-busctl.sh on a private
#   session bus, with curl-sse.sh as the subscriber).
# HERALDD names the built daemon. A missing tool skips (exit 77), except under
# CI=true, where it fails: CI must run every example.
set -eu

src=$1
example=$2
heraldd=${HERALDD:?HERALDD must name the built heraldd}
tmp=$(mktemp -d)
pids=""
key=test-examples-key
text="hello from test-examples $example $$"

cleanup () {
  for pid in $pids; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $pids; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

die () {
  echo "not ok: $*" >&2
  for f in "$tmp"/*.log "$tmp"/*.out "$tmp"/*.err; do
    [ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
  done
  exit 1
}

need () {
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      if [ "${CI:-}" = true ]; then
        die "$tool is missing (scripts/install-deps.sh installs it)"
      fi
      echo "SKIP: $tool is not installed"
      exit 77
    fi
  done
}

# wait_for FILE TEXT: bounded wait (10 s) until FILE contains TEXT
wait_for () {
  i=0
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 100 ] || return 1
    sleep 0.1
  done
}

case $example in
  python | python-sse) need python3 curl ;;
  node | node-sse) need node npm curl ;;
  curl-sse) need curl ;;
  busctl) need busctl dbus-daemon curl ;;
  *) die "unknown example $example" ;;
esac

# ---- a private session bus for the D-Bus example ---------------------------
bus=none
if [ "$example" = busctl ]; then
  dbus-daemon --session --nofork --nopidfile --address="unix:path=$tmp/bus" \
    --print-address=1 >"$tmp/bus.out" 2>"$tmp/bus.err" &
  pids="$pids $!"
  wait_for "$tmp/bus.out" "unix:" || die "dbus-daemon did not start"
  DBUS_SESSION_BUS_ADDRESS="unix:path=$tmp/bus"
  export DBUS_SESSION_BUS_ADDRESS
  bus=session
fi

# ---- heraldd on a free loopback port, HTTP API on --------------------------
# A one-second drain window: the shutdown below must not wait the default 10 s.
printf '[server]\ndrain-seconds=1\n' >"$tmp/empty.conf"
env -u HERALD_JWT_SECRET -u REDIS_URL HERALD_API_KEY=$key \
  "$heraldd" --config "$tmp/empty.conf" --listen 127.0.0.1:0 --bus $bus 2>"$tmp/heraldd.log" &
heraldd_pid=$!
pids="$pids $heraldd_pid"
wait_for "$tmp/heraldd.log" "listening on http://" || die "heraldd did not start"
base=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$tmp/heraldd.log" | head -n 1)
channel=examples

# ---- the subscriber ---------------------------------------------------------
case $example in
  python) set -- python3 "$src/examples/python/subscribe.py" --url "$base" --count 1 "$channel" ;;
  python-sse) set -- python3 "$src/examples/python/subscribe.py" --sse --url "$base" --count 1 "$channel" ;;
  node | node-sse)
    node_dir="$src/examples/node"
    if [ ! -f "$node_dir/node_modules/ws/package.json" ] \
        || [ ! -f "$node_dir/node_modules/eventsource/package.json" ]; then
      # Both node tests may get here at once: one npm ci at a time.
      lock="${MESON_BUILD_ROOT:-$tmp}/npm-ci.lock"
      (cd "$node_dir" && flock "$lock" sh -c \
        '[ -f node_modules/ws/package.json ] && [ -f node_modules/eventsource/package.json ] \
         || npm ci --no-audit --no-fund') >"$tmp/npm.log" 2>&1 || die "npm ci failed"
    fi
    if [ "$example" = node ]; then
      set -- node "$node_dir/subscribe.js" --url "$base" --count 1 "$channel"
    else
      set -- node "$node_dir/subscribe.js" --sse --url "$base" --count 1 "$channel"
    fi
    ;;
  curl-sse | busctl) set -- sh "$src/examples/curl-sse.sh" "$channel" "$base" ;;
esac
"$@" >"$tmp/subscriber.out" 2>"$tmp/subscriber.err" &
subscriber=$!
pids="$pids $subscriber"

# Subscribed: the scripts say so on stderr, curl shows Herald's "connected" event.
case $example in
  curl-sse | busctl) wait_for "$tmp/subscriber.out" "event: connected" ;;
  *) wait_for "$tmp/subscriber.err" "subscribed to $channel" ;;
esac || die "the $example example did not subscribe"

# ---- publish ----------------------------------------------------------------
if [ "$example" = busctl ]; then
  # heraldd may still be taking its bus name: retry for a bounded time
  i=0
  until sh "$src/examples/publish-busctl.sh" "$channel" "{\"text\":\"$text\"}" \
      >"$tmp/publish.out" 2>"$tmp/publish.err"; do
    i=$((i + 1))
    [ "$i" -le 50 ] || die "publish-busctl.sh failed"
    sleep 0.2
  done
  grep -qx 't [0-9]*' "$tmp/publish.out" || die "publish-busctl.sh did not print the offset"
else
  curl -sSf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"channel\":\"$channel\",\"data\":{\"text\":\"$text\"}}" \
    "$base/api/publish" >"$tmp/publish.out" || die "publishing over the HTTP API failed"
fi

# ---- received? --------------------------------------------------------------
wait_for "$tmp/subscriber.out" "$text" || die "the $example example did not print the message"
case $example in
  python | python-sse | node | node-sse)
    # --count 1: the example exits by itself after the message
    i=0
    while kill -0 "$subscriber" 2>/dev/null; do
      i=$((i + 1))
      [ "$i" -le 100 ] || die "the $example example did not exit after --count 1"
      sleep 0.1
    done
    wait "$subscriber" || die "the $example example failed"
    ;;
esac
echo "ok: the $example example received: $(grep -F -- "$text" "$tmp/subscriber.out")"

# ---- the server closes it ---------------------------------------------------
# A subscriber without --count, then heraldd shuts down (closing with 1001):
# the Python example says so in one line and exits, without a traceback.
case $example in
  python | python-sse)
    if [ "$example" = python ]; then
      set -- python3 "$src/examples/python/subscribe.py" --url "$base" "$channel"
    else
      set -- python3 "$src/examples/python/subscribe.py" --sse --url "$base" "$channel"
    fi
    "$@" >"$tmp/closed.out" 2>"$tmp/closed.err" &
    closed=$!
    pids="$pids $closed"
    wait_for "$tmp/closed.err" "subscribed to $channel" || die "the second $example subscriber did not subscribe"
    kill "$heraldd_pid"
    i=0
    while kill -0 "$closed" 2>/dev/null; do
      i=$((i + 1))
      [ "$i" -le 100 ] || die "the $example example did not exit when the server closed it"
      sleep 0.1
    done
    status=0
    wait "$closed" || status=$?
    if grep -q Traceback "$tmp/closed.err"; then
      die "the $example example ended in a traceback when the server closed it: $(cat "$tmp/closed.err")"
    fi
    [ "$status" -eq 1 ] || die "the $example example exited with $status when the server closed it, not 1"
    echo "ok: closed by the server, the $example example said: $(tail -n 1 "$tmp/closed.err")"
    ;;
esac
