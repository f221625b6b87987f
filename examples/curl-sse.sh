#!/bin/sh
# Follow a Herald channel over Server-Sent Events with curl and print the
# stream as it arrives: "event: connected" once subscribed, then one
# "id:/event: message/data:" block per message, and ": ping" heartbeats.
#
#   sh curl-sse.sh [CHANNEL [BASE_URL]]        (defaults: news http://127.0.0.1:8080)
#
# With a token: HERALD_TOKEN=eyJ... sh curl-sse.sh news
# Stop with Ctrl-C.
set -eu

channel=${1:-news}
base=${2:-http://127.0.0.1:8080}

# -N: no output buffering, so each event shows up at once.
if [ -n "${HERALD_TOKEN:-}" ]; then
  exec curl -sSN -H 'Accept: text/event-stream' -H "Authorization: Bearer $HERALD_TOKEN" \
    --get --data-urlencode "channel=$channel" "$base/events"
fi
exec curl -sSN -H 'Accept: text/event-stream' --get --data-urlencode "channel=$channel" "$base/events"
