#!/bin/bash
# Deliveries per CPU-second of one heraldd node: in-process engine vs Redis engine.
#
#   bench/redis-bench.sh                 # 1000 WebSocket subscribers, 10 channels, 5 s
#   SUBS=5000 RATE=2000 DURATION=10 bench/redis-bench.sh
#
# Environment: HERALDD (default: newest build*/src/heraldd), HERALD_LOAD
# (default: build*/bench/herald-load or compiled here), SUBS, CHANNELS, RATE
# (publishes/s), DURATION (s), WORKERS. Needs redis-server (scripts/install-deps.sh).
# With Redis the node's own publishes make a round trip through Redis, so the
# figure shows what the engine costs; Redis's own CPU is reported beside it.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
SUBS=${SUBS:-1000}
CHANNELS=${CHANNELS:-10}
RATE=${RATE:-1000}
DURATION=${DURATION:-5}
WORKERS=${WORKERS:-0}
API_KEY=benchkey

log () { echo "redis-bench: $*" >&2; }

TMP=$(mktemp -d /tmp/herald-redis-bench.XXXXXX)
PIDS=""
cleanup () {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Newest build, not a sanitizer one.
HERALDD=${HERALDD:-$(ls -t "$TOP"/build*/src/heraldd 2>/dev/null | grep -v -e asan -e sanit | head -1)}
[ -x "${HERALDD:-}" ] || { log "build heraldd first (meson compile -C build)"; exit 1; }
LOAD=${HERALD_LOAD:-$(ls -t "$TOP"/build*/bench/herald-load 2>/dev/null | grep -v -e asan -e sanit | head -1)}
if [ ! -x "${LOAD:-}" ]; then
  LOAD=$TMP/herald-load
  ${CC:-cc} -O2 -Wall -o "$LOAD" "$HERE/herald-load.c" || { log "cannot build herald-load"; exit 1; }
fi
command -v redis-server >/dev/null || { log "redis-server not installed"; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null

port_busy () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port () {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  return 1
}
# utime+stime of a process, in clock ticks
cpu_ticks () { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
REDIS_PID=$!
PIDS="$PIDS $REDIS_PID"
for _ in $(seq 1 50); do port_busy "$REDIS_PORT" && break; sleep 0.1; done

cat > "$TMP/herald.conf" <<EOF
[auth]
anonymous=true
[limits]
max-connections=100000
EOF

run () { # $1 = memory | redis
  local engine=$1 port pid url t0 t1 res
  port=$(free_port)
  if [ "$engine" = redis ]; then
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT HERALD_API_KEY=$API_KEY \
      "$HERALDD" --config "$TMP/herald.conf" --listen "127.0.0.1:$port" --bus none \
      --workers "$WORKERS" 2>"$TMP/$engine.log" &
  else
    env -u REDIS_URL HERALD_API_KEY=$API_KEY \
      "$HERALDD" --config "$TMP/herald.conf" --listen "127.0.0.1:$port" --bus none \
      --workers "$WORKERS" 2>"$TMP/$engine.log" &
  fi
  pid=$!
  PIDS="$PIDS $pid"
  for _ in $(seq 1 100); do port_busy "$port" && break; sleep 0.1; done
  if [ "$engine" = redis ]; then
    for _ in $(seq 1 100); do
      curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  t0=$(cpu_ticks "$REDIS_PID")
  res=$("$LOAD" --target herald --url "http://127.0.0.1:$port" --api-key "$API_KEY" \
          --subscribers "$SUBS" --channels "$CHANNELS" --publish-rate "$RATE" \
          --duration "$DURATION" --server-pid "$pid" 2>"$TMP/load.err" | grep '^RESULT')
  t1=$(cpu_ticks "$REDIS_PID")
  kill "$pid"; wait "$pid" 2>/dev/null
  [ -n "$res" ] || { log "$engine: no result"; tail -5 "$TMP/load.err" >&2; return; }
  printf '%-7s %s redis_cpu_s=%s\n' "$engine" \
    "$(tr ' ' '\n' <<<"$res" | grep -E '^(deliveries_per_s|deliveries_per_cpu_s|server_cpu_s|p99_ms|errors)=' | tr '\n' ' ')" \
    "$(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')"
}

log "heraldd $HERALDD, $SUBS subscribers, $CHANNELS channels, $RATE publishes/s, ${DURATION}s"
run memory
run redis
