#!/bin/sh
# examples/proxy: backend.py (a cookie-session backend) behind a live
# heraldd's [proxy] hooks. Logs in, follows a channel over SSE with the
# session cookie only (examples/proxy/try.sh), checks the connect hook's
# user, its "subs" and a published message; without the cookie, 403.
# Usage: test-example-proxy.sh SOURCE_ROOT; HERALDD names the built daemon.
# A missing tool skips (77), except under CI=true, where it fails.
set -eu

src=$1
heraldd=${HERALDD:?HERALDD must name the built heraldd}
tmp=$(mktemp -d)
pids=""
key=test-example-proxy-key

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
  for f in "$tmp"/*.log "$tmp"/*.out; do
    [ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
  done
  exit 1
}

for tool in python3 curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    [ "${CI:-}" = true ] && die "$tool is missing (scripts/install-deps.sh installs it)"
    echo "SKIP: $tool is not installed"
    exit 77
  fi
done

# wait_for FILE TEXT: bounded wait (10 s) until FILE contains TEXT
wait_for () {
  i=0
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 100 ] || return 1
    sleep 0.1
  done
}

python3 "$src/examples/proxy/backend.py" --port 0 2>"$tmp/backend.log" &
pids="$pids $!"
wait_for "$tmp/backend.log" "backend listening on" || die "backend.py did not start"
backend=$(sed -n 's|^backend listening on \(http://[^ ]*\)$|\1|p' "$tmp/backend.log" | head -n 1)

# The example's configuration, pointed at this backend
sed -e "s|http://127.0.0.1:5000|$backend|" -e '/^listen=/d' "$src/examples/proxy/herald.conf" \
  >"$tmp/herald.conf"
printf '[server]\ndrain-seconds=1\n' >>"$tmp/herald.conf"
"$heraldd" --check-config --config "$tmp/herald.conf" >"$tmp/check.out" 2>&1 \
  || die "the example's herald.conf does not check"
env -u HERALD_JWT_SECRET -u REDIS_URL HERALD_API_KEY=$key \
  "$heraldd" --config "$tmp/herald.conf" --listen 127.0.0.1:0 --bus none 2>"$tmp/heraldd.log" &
pids="$pids $!"
wait_for "$tmp/heraldd.log" "listening on http://" || die "heraldd did not start"
base=$(sed -n 's|^listening on \(http://[^ ]*\)$|\1|p' "$tmp/heraldd.log" | head -n 1)

# Without a session: the backend says no, Herald answers 403 before any stream
status=$(curl -s -o "$tmp/refused.out" -w '%{http_code}' "$base/events?channel=news")
[ "$status" = 403 ] || die "without a session cookie: HTTP $status, not 403"
grep -qF "not logged in" "$tmp/refused.out" || die "the 403 does not carry the backend's message"

sh "$src/examples/proxy/try.sh" alice "$base" "$backend" >"$tmp/stream.out" 2>&1 &
pids="$pids $!"
wait_for "$tmp/stream.out" '"user_id":"alice"' || die "try.sh did not connect as alice"

for channel in news user:alice; do
  curl -sSf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"channel\":\"$channel\",\"data\":{\"text\":\"hello $channel\"}}" \
    "$base/api/publish" >/dev/null || die "publishing to $channel failed"
  wait_for "$tmp/stream.out" "hello $channel" || die "the stream did not get the message on $channel"
done
echo "ok: the proxy example's stream, with a session cookie only, got news and user:alice"
