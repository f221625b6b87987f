#!/bin/bash
# Herald nodes behind Redis: one Redis server vs a 3-master Redis Cluster,
# side by side in one run, on this machine's loopback.
#
#   bench/cluster.sh                       # 100,000 connections, both modes
#   CONNS=5000 MODES=single bench/cluster.sh   # a small smoke run
#
# For each mode: NODES heraldd processes (--workers 1 each), one load process
# per node holding CONNS/NODES idle WebSocket subscribers (spread over
# CHANNELS channels, each process from its own 127.0.0.x source address so
# that ephemeral ports never run out), then one publisher on node 1's HTTP
# API: BCAST_S seconds of broadcasts at BCAST_RATE/s (every subscriber on
# every node gets each), then PUB_S seconds of per-channel publishes at
# PUB_RATE/s. Printed per node: connections, RSS (total and per
# connection), CPU % and deliveries/s over the publishing window, p99 latency;
# and per mode: Redis CPU %, deliveries against what every subscriber should
# have had.
#
# Environment: CONNS (100000), NODES (5; raised when the fd limit cannot hold
# CONNS/NODES per process), CHANNELS (1000), MODES ("single cluster"),
# BCAST_RATE (1), BCAST_S (5), PUB_RATE (2000), PUB_S (10), HERALDD,
# HERALD_LOAD, KEEP_TMP=1.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
CONNS=${CONNS:-100000}
NODES=${NODES:-5}
CHANNELS=${CHANNELS:-1000}
MODES=${MODES:-single cluster}
BCAST_RATE=${BCAST_RATE:-1}
BCAST_S=${BCAST_S:-5}
PUB_RATE=${PUB_RATE:-2000}
PUB_S=${PUB_S:-10}
API_KEY=benchkey

log () { echo "cluster-bench: $*" >&2; }
die () { log "$*"; exit 1; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null
FDS=$(ulimit -n)
PER_PROC=$((FDS - 300)) # a node's and a load process's own fds
if [ $(((CONNS + NODES - 1) / NODES)) -gt "$PER_PROC" ]; then
  NEED=$(((CONNS + PER_PROC - 1) / PER_PROC))
  log "the fd limit ($FDS) holds at most $PER_PROC connections per process: $NEED nodes instead of $NODES"
  NODES=$NEED
fi
[ "$NODES" -le 200 ] || die "too many nodes ($NODES)"

for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools)"
done

TMP=$(mktemp -d /tmp/herald-cluster-bench.XXXXXX)
PIDS=""
cleanup () {
  stop_all
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${HERALD_LOAD:-}" ]; then
  LOAD=$HERALD_LOAD
else
  LOAD=$TMP/herald-load
  ${CC:-cc} -O2 -g -Wall -o "$LOAD" "$HERE/herald-load.c" || die "cannot build herald-load"
fi
HERALDD=${HERALDD:-}
if [ -z "$HERALDD" ]; then
  for f in "$TOP/build/src/heraldd" $(ls -t "$TOP"/build*/src/heraldd 2>/dev/null); do
    if [ -x "$f" ]; then HERALDD=$f; break; fi
  done
fi
[ -n "$HERALDD" ] && [ -x "$HERALDD" ] || die "no heraldd (build it, or set HERALDD)"

port_busy () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Below the ephemeral range (32768-), cluster bus ports (PORT+10000) too: a
# port some outgoing connection uses as its local one cannot be bound.
free_port () {
  local p
  for _ in $(seq 1 200); do
    p=$((12000 + RANDOM % 8000))
    if ! port_busy "$p" && ! port_busy $((p + 10000)); then echo "$p"; return 0; fi
  done
  return 1
}
wait_port () {
  for _ in $(seq 1 150); do port_busy "$1" && return 0; sleep 0.1; done
  return 1
}
stop_all () {
  local p
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  PIDS=""
}
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb () { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
field () { tr ' ' '\n' < "$2" | sed -n "s/^$1=//p" | head -1; }

# ---- Redis ----
REDIS_PIDS=""
start_single () {
  local d=$TMP/redis-single p
  mkdir -p "$d"
  p=$(free_port) || die "no free port"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" \
    >"$d/log" 2>&1 &
  PIDS="$PIDS $!"
  REDIS_PIDS=$!
  wait_port "$p" || die "redis-server did not start: $(tail -3 "$d/log")"
  REDIS_CONF="url=redis://127.0.0.1:$p"
}
start_cluster () {
  local i p d seeds="" addrs=""
  REDIS_PIDS=""
  for i in 1 2 3; do
    d=$TMP/redis-cluster-$i
    mkdir -p "$d"
    p=$(free_port) || die "no free port"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" \
      --cluster-enabled yes --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 \
      >"$d/log" 2>&1 &
    PIDS="$PIDS $!"
    REDIS_PIDS="$REDIS_PIDS $!"
    wait_port "$p" || die "redis-server (cluster) did not start: $(tail -3 "$d/log")"
    seeds="$seeds${seeds:+;}127.0.0.1:$p"
    addrs="$addrs 127.0.0.1:$p"
    FIRST_PORT=${FIRST_PORT:-$p}
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $addrs --cluster-replicas 0 --cluster-yes >"$TMP/cluster-create.log" 2>&1 \
    || die "redis-cli --cluster create failed: $(tail -5 "$TMP/cluster-create.log")"
  for _ in $(seq 1 100); do
    redis-cli -p "${addrs##*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
  redis-cli -p "${addrs##*:}" cluster info | grep -q 'cluster_state:ok' || die "the cluster did not become ok"
  REDIS_CONF="cluster=$seeds"
  unset FIRST_PORT
}

# ---- one mode ----
run_mode () {
  local mode=$1 i d port per last rest ready
  local node_ports=() node_pids=() load_pids=()
  "start_$mode"
  per=$((CONNS / NODES))
  rest=$((CONNS - per * NODES))
  # "wanted" assumes every channel has CONNS/CHANNELS subscribers: each load
  # process spreads its own subscribers round-robin from channel 0.
  if [ $((per % CHANNELS)) -ne 0 ] || [ "$rest" -ne 0 ]; then
    log "$mode: CONNS/NODES ($per, +$rest) is not a multiple of CHANNELS ($CHANNELS): the wanted count is approximate"
  fi
  for i in $(seq 1 "$NODES"); do
    d=$TMP/$mode/node$i
    mkdir -p "$d"
    port=$(free_port) || die "no free port"
    cat > "$d/herald.conf" <<EOF
[limits]
max-connections=$((PER_PROC + 1000))

[auth]
anonymous=true

[redis]
$REDIS_CONF
EOF
    HERALD_API_KEY=$API_KEY "$HERALDD" --config "$d/herald.conf" --listen "127.0.0.1:$port" \
      --bus none --workers 1 >"$d/stdout.log" 2>"$d/stderr.log" &
    PIDS="$PIDS $!"
    node_pids+=("$!")
    node_ports+=("$port")
    wait_port "$port" || die "heraldd $i did not start: $(tail -5 "$d/stderr.log")"
  done
  local hold=$((BCAST_S + PUB_S + 10 + CONNS / 4000))
  local t_start
  t_start=$(date +%s.%N)
  for i in $(seq 1 "$NODES"); do
    local n=$per
    [ "$i" -eq "$NODES" ] && n=$((per + rest))
    d=$TMP/$mode/node$i
    "$LOAD" --url "http://127.0.0.1:${node_ports[$((i - 1))]}" --subscribers "$n" \
      --channels "$CHANNELS" --connect-only --duration "$hold" --connect-timeout 300 \
      --source-addrs "127.0.$((i / 250)).$((10 + i % 250))" \
      --server-pid "${node_pids[$((i - 1))]}" >"$d/load.out" 2>"$d/load.err" &
    PIDS="$PIDS $!"
    load_pids+=("$!")
  done
  # every load process has said "ready" (bounded)
  for _ in $(seq 1 3000); do
    ready=0
    for i in $(seq 1 "$NODES"); do grep -q '^ready' "$TMP/$mode/node$i/load.out" 2>/dev/null && ready=$((ready + 1)); done
    [ "$ready" -eq "$NODES" ] && break
    sleep 0.1
  done
  [ "$ready" -eq "$NODES" ] || die "$mode: only $ready of $NODES load processes ready"
  local connect_s
  connect_s=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  log "$mode: $CONNS connections on $NODES nodes in ${connect_s} s"
  sleep 1

  local r0=0 r1=0 p t0 t1
  for p in $REDIS_PIDS; do r0=$((r0 + $(cpu_ticks "$p"))); done
  for i in $(seq 1 "$NODES"); do NODE_CPU0[$i]=$(cpu_ticks "${node_pids[$((i - 1))]}"); done
  t0=$(date +%s.%N)
  "$LOAD" --url "http://127.0.0.1:${node_ports[0]}" --api-key "$API_KEY" --subscribers 0 \
    --broadcast --publish-rate "$BCAST_RATE" --duration "$BCAST_S" --publishers 1 --drain 3 \
    >"$TMP/$mode/bcast.out" 2>"$TMP/$mode/bcast.err"
  "$LOAD" --url "http://127.0.0.1:${node_ports[0]}" --api-key "$API_KEY" --subscribers 0 \
    --channels "$CHANNELS" --publish-rate "$PUB_RATE" --duration "$PUB_S" --publishers 4 --drain 3 \
    >"$TMP/$mode/pub.out" 2>"$TMP/$mode/pub.err"
  t1=$(date +%s.%N)
  for p in $REDIS_PIDS; do r1=$((r1 + $(cpu_ticks "$p"))); done
  for i in $(seq 1 "$NODES"); do NODE_CPU1[$i]=$(cpu_ticks "${node_pids[$((i - 1))]}"); done
  local win redis_pct
  win=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  redis_pct=$(awk -v t=$((r1 - r0)) -v w="$win" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", 100 * t / hz / w }')
  local bcasts pubs
  bcasts=$(field publishes "$TMP/$mode/bcast.out")
  pubs=$(field publishes "$TMP/$mode/pub.out")
  for i in $(seq 1 "$NODES"); do
    NODE_RSS[$i]=$(rss_kb "${node_pids[$((i - 1))]}")
  done
  for p in "${load_pids[@]}"; do wait "$p"; done

  # ---- this mode's table ----
  local total=0 want
  want=$(awk -v b="${bcasts:-0}" -v p="${pubs:-0}" -v c="$CONNS" -v ch="$CHANNELS" 'BEGIN { printf "%.0f", b * c + p * c / ch }')
  {
    echo
    echo "mode $mode ($REDIS_CONF): $CONNS connections, $NODES nodes, connected in ${connect_s} s;" \
      "publishing window ${win} s: ${bcasts:-0} broadcasts + ${pubs:-0} channel publishes"
    printf '%-6s | %7s | %9s | %7s | %8s | %12s | %8s\n' node conns "RSS MB" "B/conn" "CPU %" "deliveries/s" "p99 ms"
    printf '%s\n' "-------+---------+-----------+---------+----------+--------------+---------"
    for i in $(seq 1 "$NODES"); do
      local f=$TMP/$mode/node$i/load.out c rss base dl cpu p99
      c=$(field connected "$f"); base=$(field rss_base_kb "$f"); rss=${NODE_RSS[$i]}
      dl=$(field deliveries "$f"); p99=$(field p99_ms "$f")
      cpu=$(awk -v t=$((NODE_CPU1[i] - NODE_CPU0[i])) -v hz="$(getconf CLK_TCK)" 'BEGIN { print t / hz }')
      total=$((total + ${dl:-0}))
      awk -v i="$i" -v c="${c:-0}" -v rss="${rss:-0}" -v base="${base:-0}" -v dl="${dl:-0}" -v w="$win" \
          -v cpu="${cpu:-0}" -v p99="${p99:--}" \
        'BEGIN { printf "%-6s | %7d | %9.1f | %7.0f | %8.1f | %12.0f | %8s\n", i, c, rss / 1024,
                 (c > 0 ? (rss - base) * 1024 / c : 0), (w > 0 ? 100 * cpu / w : 0), (w > 0 ? dl / w : 0), p99 }'
    done
    echo "all nodes: $total deliveries of $want wanted ($(awk -v t="$total" -v w="$want" 'BEGIN { printf "%.2f", (w > 0 ? 100 * t / w : 0) }') %);" \
      "Redis CPU ${redis_pct} % of one core over the window (sum of its processes)"
  } >> "$OUT"
  stop_all
}

OUT=$TMP/table.txt
: > "$OUT"
declare -a NODE_RSS NODE_CPU0 NODE_CPU1
log "heraldd $HERALDD; $CONNS connections over $NODES nodes; fd limit $FDS; modes: $MODES"
for m in $MODES; do
  case $m in single|cluster) ;; *) die "unknown mode $m (single, cluster)" ;; esac
  run_mode "$m"
done
echo "Herald behind Redis — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPU % = a node's CPU over the publishing window (% of one core); B/conn = RSS growth per connection; everything shares $(nproc) cores."
cat "$OUT"
