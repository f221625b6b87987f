#!/bin/sh
# Soak: churn connections against heraldd while publishing, and show its RSS
# and open fds coming back to the baseline (docs/reliability.md).
#
#   bench/soak.sh [SECONDS]        (default 600)
#
# Environment: HERALDD (default: the newest build*/src/heraldd), PORT (18090),
# THREADS (8 churning clients), RATE (publishes/s, 200), SAMPLE (s, 10).
# Exit status 1 when, after the churn and a settle pause, open fds are not
# back to the baseline or RSS grew more than MAX_RSS_GROWTH_KB (16384).
set -eu
cd "$(dirname "$0")/.."
DURATION=${1:-600}
PORT=${PORT:-18090}
THREADS=${THREADS:-8}
RATE=${RATE:-200}
SAMPLE=${SAMPLE:-10}
MAX_RSS_GROWTH_KB=${MAX_RSS_GROWTH_KB:-16384}
HERALDD=${HERALDD:-$(ls -t build*/src/heraldd 2>/dev/null | head -n 1)}
[ -x "$HERALDD" ] || { echo "soak: no heraldd (set HERALDD)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
printf '[auth]\nanonymous=true\n[limits]\nmax-connections-per-ip=0\n' > "$tmp/herald.conf"
HERALD_API_KEY=soakkey "$HERALDD" --config "$tmp/herald.conf" --listen 127.0.0.1:$PORT \
  --bus none --workers 2 > "$tmp/heraldd.log" 2>&1 &
pid=$!
sleep 1
kill -0 $pid || { cat "$tmp/heraldd.log"; exit 2; }

rss() { awk '/^VmRSS:/ { print $2 }' /proc/$pid/status; }
fds() { ls /proc/$pid/fd | wc -l; }

base_rss=$(rss); base_fds=$(fds)
echo "soak: heraldd $HERALDD pid $pid, $DURATION s, $THREADS churn threads, $RATE msg/s"
printf '%8s %10s %6s\n' "t(s)" "RSS(KiB)" "fds"
printf '%8s %10s %6s\n' baseline "$base_rss" "$base_fds"

python3 bench/soak-churn.py --port $PORT --api-key soakkey --duration "$DURATION" \
  --threads "$THREADS" --rate "$RATE" > "$tmp/churn.out" 2>&1 &
churn=$!
start=$(date +%s); max_rss=$base_rss; max_fds=$base_fds
while kill -0 $churn 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 $pid || { echo "soak: heraldd died"; cat "$tmp/heraldd.log"; exit 1; }
  r=$(rss); f=$(fds)
  [ "$r" -gt "$max_rss" ] && max_rss=$r
  [ "$f" -gt "$max_fds" ] && max_fds=$f
  printf '%8s %10s %6s\n' $(( $(date +%s) - start )) "$r" "$f"
done
wait $churn || true
cat "$tmp/churn.out"
sleep 5 # closing connections finish their grace period
end_rss=$(rss); end_fds=$(fds)
printf '%8s %10s %6s\n' after "$end_rss" "$end_fds"
echo "soak: peak RSS $max_rss KiB, peak fds $max_fds; RSS growth $(( end_rss - base_rss )) KiB, fds $(( end_fds - base_fds ))"
status=0
[ "$end_fds" -le "$base_fds" ] || { echo "soak: FAIL: fds not back to baseline"; status=1; }
[ $(( end_rss - base_rss )) -le "$MAX_RSS_GROWTH_KB" ] || { echo "soak: FAIL: RSS grew"; status=1; }
kill -TERM $pid; wait $pid || { echo "soak: heraldd exit status $?"; status=1; }
grep -E "CRITICAL|WARNING" "$tmp/heraldd.log" | head -n 5 || true
[ $status -eq 0 ] && echo "soak: OK"
exit $status
