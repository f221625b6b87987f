#!/bin/sh
# Log in to the example backend and follow Herald over SSE with its session
# cookie: no token anywhere. Run backend.py and heraldd --config herald.conf
# first (examples/proxy/, docs/integration.md).
#
#   sh try.sh [USER [HERALD_URL [BACKEND_URL]]]   (alice http://127.0.0.1:8080 http://127.0.0.1:5000)
set -eu

user=${1:-alice}
herald=${2:-http://127.0.0.1:8080}
backend=${3:-http://127.0.0.1:5000}
jar=$(mktemp)
trap 'rm -f "$jar"' EXIT

# The application's own login sets the session cookie
curl -sSf -c "$jar" -H 'Content-Type: application/json' -d "{\"user\":\"$user\"}" \
  "$backend/login" >/dev/null
# The browser would send the cookie by itself; Herald forwards it to the
# connect hook, which answers with the user and their channels (and subs:
# this stream follows user:$user without naming it).
curl -sSN -b "$jar" -H 'Accept: text/event-stream' --get --data-urlencode "channel=news" \
  "$herald/events"
