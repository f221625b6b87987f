#!/bin/bash
# Many heraldd nodes behind one Redis and behind a 3-master Redis Cluster,
# side by side: per-node RSS, CPU, deliveries/s and p99, and Redis CPU.
#
#   bench/cluster.sh                          # 5 nodes, 100,000 connections in all
#   CONNS=1000 NODES=2 DURATION=3 bench/cluster.sh   # a smoke run
#   MODES=cluster bench/cluster.sh            # one side only (single | cluster)
#
# Environment: HERALDD, HERALD_LOAD (as bench/redis-bench.sh), NODES (5),
# CONNS (100000, in all), CHANNELS (per node, 100), RATE (publishes/s per
# node, 200), DURATION (s, 10), WORKERS (per node, 1), MODES ("single
# cluster"). Each node gets one herald-load process that opens CONNS/NODES
# WebSocket subscribers from its own 127.0.N.x source addresses (so the
# kernel's ephemeral ports do not run out) and publishes to that node; the
# channels are the node's own (prefix n<N>-), so every message goes through
# Redis (publish script, then pub/sub back) and the figures are the engine's
# cost per node. Needs redis-server and redis-cli; raise `ulimit -Hn` (and
# net.ipv4.ip_local_port_range) for the full run. Not a test: run it on a
# quiet machine.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
NODES=${NODES:-5}
CONNS=${CONNS:-100000}
CHANNELS=${CHANNELS:-100}
RATE=${RATE:-200}
DURATION=${DURATION:-10}
WORKERS=${WORKERS:-1}
MODES=${MODES:-"single cluster"}
API_KEY=benchkey

log () { echo "cluster-bench: $*" >&2; }

TMP=$(mktemp -d /tmp/herald-cluster-bench.XXXXXX)
PIDS=""
cleanup () {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  [ -n "${KEEP_TMP:-}" ] && { log "kept $TMP"; return; }
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HERALDD=${HERALDD:-$(ls -t "$TOP"/build*/src/heraldd 2>/dev/null | grep -v -e asan -e sanit | head -1)}
[ -x "${HERALDD:-}" ] || { log "build heraldd first (meson compile -C build)"; exit 1; }
LOAD=${HERALD_LOAD:-$(ls -t "$TOP"/build*/bench/herald-load 2>/dev/null | grep -v -e asan -e sanit | head -1)}
if [ ! -x "${LOAD:-}" ]; then
  LOAD=$TMP/herald-load
  ${CC:-cc} -O2 -Wall -o "$LOAD" "$HERE/herald-load.c" || { log "cannot build herald-load"; exit 1; }
fi
for tool in redis-server redis-cli curl; do
  command -v "$tool" >/dev/null || { log "$tool not installed"; exit 1; }
done

PER_NODE=$(( (CONNS + NODES - 1) / NODES ))
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" -lt $((PER_NODE + 1000)) ]; then
  log "fd limit $(ulimit -n) is below $((PER_NODE + 1000)) per process: raise ulimit -Hn"
  exit 1
fi

port_busy () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
# Below the ephemeral range; a cluster node also needs PORT+10000 (its bus).
free_port () {
  local p
  for _ in $(seq 1 500); do
    p=$((12000 + RANDOM % 8000))
    case "$USED_PORTS" in *" $p "* | *" $((p + 10000)) "*) continue ;; esac
    port_busy "$p" || port_busy "$((p + 10000))" \
      || { USED_PORTS="$USED_PORTS$p $((p + 10000)) "; echo "$p"; return 0; }
  done
  return 1
}
wait_port () { for _ in $(seq 1 100); do port_busy "$1" && return 0; sleep 0.1; done; return 1; }
# utime+stime of processes, in seconds
cpu_s () {
  local ticks=0 t
  for p in "$@"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    ticks=$((ticks + t))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

REDIS_PIDS=""
start_redis () { # $1 = single | cluster; sets REDIS_PIDS and REDIS_CONF
  local mode=$1 port seeds="" i
  REDIS_PIDS=""
  if [ "$mode" = single ]; then
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      >"$TMP/redis-$port.log" 2>&1 &
    REDIS_PIDS=$!
    wait_port "$port" || { log "redis-server did not start"; return 1; }
    REDIS_CONF="url=redis://127.0.0.1:$port"
  else
    for i in 1 2 3; do
      port=$(free_port)
      mkdir -p "$TMP/c$port"
      redis-server --port "$port" --bind 127.0.0.1 --dir "$TMP/c$port" --save "" \
        --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-require-full-coverage no >"$TMP/redis-$port.log" 2>&1 &
      REDIS_PIDS="$REDIS_PIDS $!"
      wait_port "$port" || { log "redis-server $port did not start"; return 1; }
      seeds="$seeds 127.0.0.1:$port"
    done
    # shellcheck disable=SC2086
    redis-cli --cluster create $seeds --cluster-yes >"$TMP/create.log" 2>&1 \
      || { log "redis-cli --cluster create failed"; cat "$TMP/create.log" >&2; return 1; }
    for _ in $(seq 1 100); do
      redis-cli -p "${seeds##*:}" cluster info 2>/dev/null | grep -q cluster_state:ok && break
      sleep 0.1
    done
    REDIS_CONF="cluster=$(echo $seeds | tr ' ' ';')"
  fi
  PIDS="$PIDS $REDIS_PIDS"
}

run () { # $1 = single | cluster
  local mode=$1 n port pids="" ports="" loads="" r0 r1 i addrs res
  start_redis "$mode" || return
  cat >"$TMP/herald-$mode.conf" <<EOF
[auth]
anonymous=true
[limits]
max-connections=$((PER_NODE + 1000))
[redis]
$REDIS_CONF
EOF
  for n in $(seq 1 "$NODES"); do
    port=$(free_port)
    env -u REDIS_URL HERALD_API_KEY=$API_KEY "$HERALDD" --config "$TMP/herald-$mode.conf" \
      --listen "127.0.0.1:$port" --bus none --workers "$WORKERS" 2>"$TMP/$mode-node$n.log" &
    pids="$pids $!"
    ports="$ports $port"
  done
  PIDS="$PIDS $pids"
  for port in $ports; do
    wait_port "$port" || { log "a heraldd did not start"; return; }
    for _ in $(seq 1 100); do
      curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  r0=$(cpu_s $REDIS_PIDS)
  set -- $pids
  n=0
  for port in $ports; do
    n=$((n + 1))
    addrs=$(for i in 1 2 3 4; do printf '127.0.%d.%d,' "$n" "$i"; done)
    "$LOAD" --target herald --url "http://127.0.0.1:$port" --api-key "$API_KEY" \
      --subscribers "$PER_NODE" --channels "$CHANNELS" --channel-prefix "n$n-" \
      --publish-rate "$RATE" --duration "$DURATION" --source-addrs "${addrs%,}" \
      --server-pid "$1" >"$TMP/$mode-load$n.out" 2>"$TMP/$mode-load$n.err" &
    loads="$loads $!"
    shift
  done
  # shellcheck disable=SC2086
  wait $loads 2>/dev/null
  r1=$(cpu_s $REDIS_PIDS)
  for n in $(seq 1 "$NODES"); do
    res=$(grep '^RESULT' "$TMP/$mode-load$n.out")
    if [ -z "$res" ]; then
      log "$mode node $n: no result"
      tail -3 "$TMP/$mode-load$n.err" >&2
      continue
    fi
    printf '%-8s node%-2s %s\n' "$mode" "$n" \
      "$(tr ' ' '\n' <<<"$res" | grep -E '^(connected|deliveries|expected|deliveries_per_s|p99_ms|server_cpu_s|rss_kb|errors)=' | tr '\n' ' ')"
  done
  printf '%-8s redis_cpu_s=%s (%s)\n' "$mode" \
    "$(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.2f", b - a }')" \
    "$([ "$mode" = single ] && echo "one redis-server" || echo "3 masters")"
  # shellcheck disable=SC2086
  kill $pids $REDIS_PIDS 2>/dev/null
  # shellcheck disable=SC2086
  wait $pids $REDIS_PIDS 2>/dev/null
}

log "heraldd $HERALDD: $NODES nodes x $PER_NODE connections, $CHANNELS channels and" \
    "$RATE publishes/s per node, ${DURATION}s"
for mode in $MODES; do
  run "$mode"
done
