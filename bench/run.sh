#!/bin/bash
# Herald vs nginx+nchan, side by side on loopback.
#
#   bench/run.sh                # full run (~8 min): 10 s per scenario, 2 runs per server
#   QUICK=1 bench/run.sh        # smoke run (~2 min): 3 s per scenario, 1 run per server
#
# Both servers run one worker: nginx worker_processes 1 and heraldd --workers 1
# (the load client needs the other core). publish_1kch_w0 repeats the publish
# scenario with heraldd's default (--workers 0, one per core), for information.
#
# Environment: HERALDD (path to heraldd), WORKERS (heraldd --workers, 1),
# RUNS, DURATION, SCENARIOS (space-separated subset), SERVERS (subset of
# "herald nchan uws"), HERALD_LOAD (prebuilt client), KEEP_TMP=1 (keep logs
# and configs), UWS_DIR (a uWebSockets checkout with its uSockets submodule:
# adds bench/uws-pubsub.cpp built on it as a third server, WebSocket
# scenarios only — uWS has no SSE).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-1}
  DURATION=${DURATION:-3}
else
  RUNS=${RUNS:-2}
  DURATION=${DURATION:-10}
fi
WORKERS=${WORKERS:-1}
API_KEY=benchkey
ALL_SCENARIOS="ws_1k ws_5k sse_1k sse_5k latency_1k idle_10k broadcast_19k publish_1kch publish_1kch_w0"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
RESULTS_DIR="$HERE/results"
OUT="$RESULTS_DIR/latest.txt"

log () { echo "bench: $*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null
FDS=$(ulimit -n)

TMP=$(mktemp -d /tmp/herald-bench.XXXXXX)
SERVER_PIDS=""
STARTED_PIDS=""
cleanup () {
  type stop_server >/dev/null 2>&1 && stop_server
  if [ "${KEEP_TMP:-0}" = 1 ]; then log "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the load client ----
if [ -n "${HERALD_LOAD:-}" ]; then
  LOAD=$HERALD_LOAD
else
  LOAD=$TMP/herald-load
  ${CC:-cc} -O2 -g -Wall -o "$LOAD" "$HERE/herald-load.c" -lz || { log "cannot build herald-load"; exit 1; }
fi

# ---- nginx + nchan ----
NCHAN_MOD=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -e "$NCHAN_MOD" ]; then
  log "installing nginx-light and libnginx-mod-nchan"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null 2>&1 \
           || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null 2>&1; }; }; then
    log "cannot install nginx+nchan"; exit 1
  fi
  # the package may have started a system nginx; it does not disturb us (other port)
fi
NGINX=$(command -v nginx)

# ---- heraldd ----
HERALDD=${HERALDD:-}
if [ -z "$HERALDD" ]; then
  for f in "$TOP/build/src/heraldd" $(ls -t "$TOP"/build*/src/heraldd 2>/dev/null); do
    if [ -x "$f" ]; then HERALDD=$f; break; fi
  done
fi
if [ -n "$HERALDD" ] && [ ! -x "$HERALDD" ]; then
  log "HERALDD=$HERALDD is not executable"; exit 1
fi
SERVERS=${SERVERS:-herald nchan${UWS_DIR:+ uws}}
if [ -z "$HERALDD" ]; then
  log "heraldd not built yet (no build*/src/heraldd, HERALDD unset): measuring nchan only"
  SERVERS="nchan"
fi

# ---- uWebSockets (optional): our own minimal pub/sub on the checkout ----
UWS_BIN=""
case " $SERVERS " in
  *" uws "*)
    if [ -z "${UWS_DIR:-}" ] || [ ! -e "$UWS_DIR/src/App.h" ] || [ ! -e "$UWS_DIR/uSockets/src/libusockets.h" ]; then
      log "SERVERS names uws: set UWS_DIR to a uWebSockets checkout with uSockets in it"; exit 1
    fi
    mkdir -p "$TMP/uws"
    for f in "$UWS_DIR"/uSockets/src/*.c "$UWS_DIR"/uSockets/src/eventing/*.c "$UWS_DIR"/uSockets/src/crypto/*.c; do
      ${CC:-cc} -O3 -DLIBUS_NO_SSL -I"$UWS_DIR/uSockets/src" -c "$f" -o "$TMP/uws/$(basename "$f" .c).o" \
        || { log "cannot build uSockets ($f)"; exit 1; }
    done
    UWS_BIN=$TMP/uws/uws-pubsub
    ${CXX:-g++} -std=c++20 -O3 -DLIBUS_NO_SSL -DUWS_NO_ZLIB -I"$UWS_DIR/src" -I"$UWS_DIR/uSockets/src" \
      "$HERE/uws-pubsub.cpp" "$TMP"/uws/*.o -o "$UWS_BIN" || { log "cannot build uws-pubsub"; exit 1; }
    UWS_VERSION=$(git -C "$UWS_DIR" describe --tags 2>/dev/null || echo unknown)
    ;;
esac

# ---- helpers ----
port_busy () { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port () {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if ! port_busy "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

wait_port () {
  local i
  for i in $(seq 1 100); do
    port_busy "$1" && return 0
    sleep 0.1
  done
  return 1
}

start_nchan () {
  local d=$TMP/nginx
  mkdir -p "$d"
  PORT=$(free_port)
  # worker_connections above the fd limit on purpose: nginx starts closing
  # "reusable" connections once fewer than 1/16 of worker_connections are
  # free, which with 20000 would cap nchan at ~18,750 subscribers.
  cat > "$d/nginx.conf" <<EOF
load_module $NCHAN_MOD;
worker_processes 1;
worker_rlimit_nofile $FDS;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((FDS + FDS / 10)); multi_accept on; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  nchan_message_buffer_length 5;
  nchan_message_timeout 60s;
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location ~ ^/sub/(.+)\$ {
      nchan_subscriber websocket eventsource;
      nchan_channel_id \$1;
      nchan_subscriber_first_message newest;
    }
    location ~ ^/pub/(.+)\$ {
      nchan_publisher;
      nchan_channel_id \$1;
    }
  }
}
EOF
  "$NGINX" -p "$d" -e "$d/error.log" -c "$d/nginx.conf" >"$d/stdout.log" 2>&1 &
  STARTED_PIDS=$!
  if ! wait_port "$PORT"; then
    log "nginx did not start:"; cat "$d/error.log" "$d/stdout.log" >&2; exit 1
  fi
  local workers
  workers=$(pgrep -P "$STARTED_PIDS" | tr '\n' ',' | sed 's/,$//')
  SERVER_PIDS="$STARTED_PIDS${workers:+,$workers}"
}

start_herald () {
  local d=$TMP/herald workers=${1:-$WORKERS}
  mkdir -p "$d"
  PORT=$(free_port)
  cat > "$d/herald.conf" <<EOF
[limits]
max-connections=$((FDS + 5000))

[auth]
anonymous=true
EOF
  HERALD_API_KEY=$API_KEY "$HERALDD" --config "$d/herald.conf" --listen "127.0.0.1:$PORT" \
    --bus none --workers "$workers" >"$d/stdout.log" 2>"$d/stderr.log" &
  STARTED_PIDS=$!
  if ! wait_port "$PORT"; then
    log "heraldd did not start:"; tail -20 "$d/stderr.log" >&2; exit 1
  fi
  SERVER_PIDS=$STARTED_PIDS
}

start_uws () {
  PORT=$(free_port)
  "$UWS_BIN" "$PORT" >"$TMP/uws/stdout.log" 2>&1 &
  STARTED_PIDS=$!
  if ! wait_port "$PORT"; then
    log "uws-pubsub did not start:"; cat "$TMP/uws/stdout.log" >&2; exit 1
  fi
  SERVER_PIDS=$STARTED_PIDS
}

# The load client's --target: uws-pubsub speaks nchan's URL scheme.
load_target () { if [ "$1" = herald ]; then echo herald; else echo nchan; fi; }

stop_server () {
  local p
  for p in $STARTED_PIDS; do
    kill "$p" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  STARTED_PIDS=""
  SERVER_PIDS=""
}

# scenario -> client arguments
scenario_args () {
  case $1 in
    ws_1k) echo "--transport ws --subscribers 1000 --channels 1 --duration $DURATION" ;;
    ws_5k) echo "--transport ws --subscribers 5000 --channels 1 --duration $DURATION" ;;
    sse_1k) echo "--transport sse --subscribers 1000 --channels 1 --duration $DURATION" ;;
    sse_5k) echo "--transport sse --subscribers 5000 --channels 1 --duration $DURATION" ;;
    latency_1k) echo "--transport ws --subscribers 1000 --channels 1 --publish-rate 10 --duration $DURATION" ;;
    idle_10k) echo "--transport ws --subscribers 10000 --channels 1000 --connect-only --duration 1 --connect-concurrency 256" ;;
    broadcast_19k) echo "--transport ws --subscribers 19000 --broadcast --publish-rate 1 --duration $((DURATION < 5 ? DURATION : 5)) --drain 10 --source-addrs 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4" ;;
    publish_1kch|publish_1kch_w0) echo "--transport ws --subscribers 1000 --channels 1000 --publishers 8 --duration $DURATION" ;;
    *) log "unknown scenario $1"; exit 1 ;;
  esac
}

field () { # field NAME FILE
  tr ' ' '\n' < "$2" | sed -n "s/^$1=//p" | head -1
}

median () { # numbers on stdin
  sort -g | awk '{a[n++]=$1} END {if (n==0) {print "-"; exit} if (n%2) print a[int(n/2)]; else printf "%.6g\n", (a[n/2-1]+a[n/2])/2}'
}

minimum () { sort -g | head -1; }

pretty () { # number on stdin -> readable: integers from 100 up, else 3 significant digits
  awk -v d="${1:-}" '{ if ($1 == "-") print "-"; else if (d != "") printf "%.*f\n", d, $1;
                       else if ($1 >= 100) printf "%.0f\n", $1; else printf "%.3g\n", $1 }'
}

loadavg () { cut -d' ' -f1-3 /proc/loadavg; }

agg () { # agg SCENARIO SERVER METRIC [median|min]
  local f how=${4:-median}
  local vals=""
  for f in "$TMP"/res/"$1"."$2".*; do
    [ -s "$f" ] || continue
    vals="$vals$(field "$3" "$f")"$'\n'
  done
  vals=$(printf '%s' "$vals" | sed '/^$/d')
  if [ -z "$vals" ]; then echo "-"; return; fi
  if [ "$how" = min ]; then printf '%s\n' "$vals" | minimum; else printf '%s\n' "$vals" | median; fi
}

# ---- run ----
mkdir -p "$TMP/res" "$RESULTS_DIR"
: > "$TMP/raw.txt"
log "client $LOAD, fd limit $FDS, runs $RUNS, ${DURATION}s per scenario, servers: $SERVERS"
[ -n "$HERALDD" ] && log "heraldd: $HERALDD (--workers $WORKERS)"
LOAD_BEFORE=$(loadavg)
if awk -v l="${LOAD_BEFORE%% *}" -v c="$(nproc)" 'BEGIN { exit !(l > c * 0.5) }'; then
  log "warning: load average is $LOAD_BEFORE on $(nproc) cores: other work will skew the figures"
fi
T0=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  for sc in $SCENARIOS; do
    for srv in $SERVERS; do
      case $srv.$sc in uws.sse_*) continue ;; esac # uWS has no SSE
      if [ "$sc" = publish_1kch_w0 ]; then
        [ "$srv" = herald ] || continue # the peers' figure is publish_1kch's
        start_herald 0
      else
        "start_$srv"
      fi
      res=$TMP/res/$sc.$srv.$run
      # shellcheck disable=SC2046
      "$LOAD" --target "$(load_target "$srv")" --url "http://127.0.0.1:$PORT" --api-key "$API_KEY" \
        --server-pid "$SERVER_PIDS" $(scenario_args "$sc") \
        >"$TMP/client.out" 2>"$TMP/client.err"
      grep '^RESULT' "$TMP/client.out" > "$res"
      if [ ! -s "$res" ]; then
        log "$sc/$srv run $run: no result"; tail -5 "$TMP/client.err" >&2
      fi
      printf '%s server=%s run=%s %s\n' "$sc" "$srv" "$run" "$(cat "$res")" >> "$TMP/raw.txt"
      log "$sc $srv run $run: $(tr ' ' '\n' < "$res" | grep -E '^(deliveries_per_cpu_s|publishes_per_cpu_s|p99_ms|rss_per_conn_b|connect_s|complete|errors|client_cpu_pct|server_cpu_pct)=' | tr '\n' ' ')"
      stop_server
    done
  done
done
T1=$(date +%s)

# ---- table ----
# row: label scenario metric better(higher|lower|all) [goal note] [aggregate]
row () {
  local label=$1 sc=$2 metric=$3 better=$4 how=${5:-median}
  local h n u ratio uratio goal met hc nc
  case " $SCENARIOS " in *" $sc "*) ;; *) return ;; esac
  h=$(agg "$sc" herald "$metric" "$how")
  n=$(agg "${sc%_w0}" nchan "$metric" "$how")
  u=$(agg "${sc%_w0}" uws "$metric" "$how")
  uratio=$(awk -v h="$h" -v u="$u" 'BEGIN { if (h == "-" || u == "-" || u + 0 == 0) print "-"; else printf "%.2f", h / u }')
  u=$(echo "$u" | pretty)
  hc=$(agg "$sc" herald client_cpu_pct | pretty 0)/$(agg "$sc" herald server_cpu_pct | pretty 0)
  nc=$(agg "${sc%_w0}" nchan client_cpu_pct | pretty 0)/$(agg "${sc%_w0}" nchan server_cpu_pct | pretty 0)
  ratio=$(awk -v h="$h" -v n="$n" 'BEGIN { if (h == "-" || n == "-" || n + 0 == 0) print "-"; else printf "%.2f", h / n }')
  h=$(echo "$h" | pretty)
  n=$(echo "$n" | pretty)
  # Goals are the performance issue's: ratios against nchan from the same
  # run, or absolute bounds where the issue gives one.
  case $better in
    higher) goal=">=1.50x"; met=$(awk -v r="$ratio" 'BEGIN { print (r == "-") ? "n/a" : (r >= 1.5 ? "yes" : "NO") }') ;;
    lower) goal="<=1.00x"; met=$(awk -v r="$ratio" 'BEGIN { print (r == "-") ? "n/a" : (r <= 1.0 ? "yes" : "NO") }') ;;
    max:*) goal="<=${better#max:}"; met=$(awk -v h="$h" -v m="${better#max:}" 'BEGIN { print (h == "-") ? "n/a" : (h + 0 <= m + 0 ? "yes" : "NO") }') ;;
    info) goal="(info)"; met="-" ;;
    rss) goal="<=4096B"; met=$(awk -v h="$h" 'BEGIN { print (h == "-") ? "n/a" : (h + 0 <= 4096 ? "yes" : "NO") }') ;;
    all) goal="all 19000"; met=$(awk -v h="$h" 'BEGIN { print (h == "-") ? "n/a" : (h >= 19000 ? "yes" : "NO") }') ;;
  esac
  printf '%-34s | %12s | %12s | %6s | %-16s | %-4s | %-11s | %-11s' "$label" "$h" "$n" "$ratio" "$goal" "$met" "$hc" "$nc"
  [ -n "$UWS_BIN" ] && printf ' | %12s | %6s' "$u" "$uratio"
  echo
}

{
  echo "Herald vs nginx+nchan — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $RUNS run(s) x ${DURATION}s, median; $((T1 - T0)) s total"
  echo "load average before: $LOAD_BEFORE, after: $(loadavg) (other processes compete for the same cores)"
  echo "heraldd: ${HERALDD:-not built} (--workers $WORKERS unless noted); nchan: $("$NGINX" -v 2>&1 | sed 's/.*: //'), $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)${UWS_BIN:+; uWS: bench/uws-pubsub.cpp on uWebSockets $UWS_VERSION}"
  echo
  printf '%-34s | %12s | %12s | %6s | %-16s | %-4s | %-11s | %-11s' scenario herald nchan ratio goal met? "H cli/srv%" "N cli/srv%"
  [ -n "$UWS_BIN" ] && printf ' | %12s | %6s' uWS "H/uWS"
  echo
  printf '%s' "-----------------------------------+--------------+--------------+--------+------------------+------+-------------+------------"
  [ -n "$UWS_BIN" ] && printf '%s' "-+--------------+-------"
  echo
  row "deliveries/CPU-s WS 1ch x 1000"     ws_1k deliveries_per_cpu_s higher
  row "deliveries/CPU-s WS 1ch x 5000"     ws_5k deliveries_per_cpu_s higher
  row "deliveries/CPU-s SSE 1ch x 1000"    sse_1k deliveries_per_cpu_s higher
  row "deliveries/CPU-s SSE 1ch x 5000"    sse_5k deliveries_per_cpu_s higher
  row "p99 ms, 1000 subs x 10 msg/s"       latency_1k p99_ms max:5
  row "RSS B per idle WS conn (10k)"       idle_10k rss_per_conn_b rss
  row "s to establish 10k WS conns"        idle_10k connect_s max:2
  row "subs receiving bcast (of 19000)"    broadcast_19k complete all min
  row "bcast p99 ms at 19000"              broadcast_19k p99_ms info
  row "HTTP publishes/CPU-s, 1000 ch"      publish_1kch publishes_per_cpu_s higher
  row "  same, heraldd --workers 0 (2)"     publish_1kch_w0 publishes_per_cpu_s info
  echo
  echo "cli/srv% = load client / server CPU use in the measured window (% of one core; 2 cores shared)."
  [ -n "$UWS_BIN" ] && echo "ratio = Herald / nchan, H/uWS = Herald / uWebSockets (goals are against nchan; issue 20 wants >=1.2x uWS deliveries/CPU-s)"
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         if (v["errors"] + 0 > 0 || v["disconnects"] + 0 > 0 || v["publish_errors"] + 0 > 0 || v["stalls"] + 0 > 0 || v["connected"] + 0 < v["subscribers"] + 0)
           printf "warning: %s %s run %s: connected=%s/%s errors=%s publish_errors=%s disconnects=%s stalls=%s\n", $1, v["server"], v["run"], v["connected"], v["subscribers"], v["errors"], v["publish_errors"], v["disconnects"], v["stalls"] }' "$TMP/raw.txt"
  echo
  echo "raw:"
  cat "$TMP/raw.txt"
} > "$OUT"

sed '/^raw:$/,$d' "$OUT"
log "full results with raw client lines: $OUT"
