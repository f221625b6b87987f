#!/bin/sh
# Publish a message to a Herald channel over D-Bus with busctl, as a local
# process (a cron job, a shell script) would, and print the offset Herald
# gave the message.
#
#   sh publish-busctl.sh [CHANNEL [JSON]]   (defaults: news '{"text":"hello"}')
#
# heraldd must own io.github.herald.Herald1 on the session bus (run it as
# your user: heraldd --bus session). For a system-wide heraldd, set
# HERALD_BUS=system and run as root or as a member of the herald group.
set -eu

channel=${1:-news}
data=${2:-'{"text":"hello"}'}

case ${HERALD_BUS:-session} in
  session) bus=--user ;;
  system) bus=--system ;;
  *) echo "HERALD_BUS must be session or system" >&2; exit 2 ;;
esac

# Publish(s channel, s data) → (t offset); busctl prints "t OFFSET".
busctl "$bus" call io.github.herald.Herald1 /io/github/herald/Herald1 \
  io.github.herald.Herald1 Publish ss "$channel" "$data"
