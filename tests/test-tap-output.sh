#!/bin/sh
# Every line a test writes to stdout in --tap mode must be TAP: meson reports
# anything else as "Unknown TAP output lines". Runs the test cases that print
# diagnostics or start heraldd (invalid UTF-8 in messages, heraldd's own
# stdout) and checks their stdout.
# Usage: test-tap-output.sh TESTS_BUILD_DIR
set -eu
dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

check () {
  if ! "$@" --tap >"$tmp/out" 2>"$tmp/err"; then
    echo "not ok: $* failed" >&2
    cat "$tmp/err" >&2
    failures=$((failures + 1))
  fi
  # TAP as GLib writes it: plan, results, diagnostics, version, bail out.
  if grep -nvE '^(ok |not ok |# |#$|1\.\.[0-9]+$|TAP version |Bail out!)' "$tmp/out" >"$tmp/bad"; then
    echo "not ok: $* wrote non-TAP lines to stdout:" >&2
    cat "$tmp/bad" >&2
    failures=$((failures + 1))
  else
    echo "ok: $* — $(grep -c '^ok ' "$tmp/out") result(s), every line TAP"
  fi
}

check "$dir/test-http-api" -p /http-api/publish-errors
check "$dir/test-daemon" -p /daemon/version -p /daemon/bad-config
check "$dir/test-operator" -p /operator/check-config -p /operator/one-instance-per-port

[ "$failures" -eq 0 ] || exit 1
