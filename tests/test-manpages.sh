#!/bin/sh
# The man pages cannot drift from the code:
#  - every long option heraldd --help-all prints is described in heraldd(8),
#    and every option heraldd(8) describes exists;
#  - every [group] key of data/herald.conf.example is described in
#    herald.conf(5), and every key herald.conf(5) describes is in the example;
#  - the example has exactly the keys of src/herald-config.c's key tables;
#  - the rendered pages were built.
# Usage: test-manpages.sh SOURCE_ROOT BUILD_ROOT (HERALDD in the environment).
set -eu

src=$1
build=$2
heraldd=${HERALDD:?HERALDD must name the built heraldd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail () {
  echo "not ok: $*" >&2
  failures=$((failures + 1))
}

# ---- heraldd(8) against --help-all ----------------------------------------
LANGUAGE=C LC_ALL=C "$heraldd" --help-all >"$tmp/help"
# "  -c, --config=FILE   …" and "  --bus=BUS   …": the first --word of each line
sed -n 's/^  \(-[A-Za-z?], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p' "$tmp/help" \
  | grep -v '^--help-' | sort -u >"$tmp/help-options"
[ -s "$tmp/help-options" ] || fail "no options found in heraldd --help-all"

# Options the page describes: "*--name*" at the start of a definition line.
sed -n 's/^\(\*-[A-Za-z?]\*, \)\{0,1\}\*\(--[a-z][a-z-]*\)\*.*/\2/p' \
  "$src/man/heraldd.8.scd" | sort -u >"$tmp/man-options"

for opt in $(comm -23 "$tmp/help-options" "$tmp/man-options"); do
  fail "heraldd --help has $opt but heraldd(8) does not describe it"
done
for opt in $(comm -13 "$tmp/help-options" "$tmp/man-options"); do
  fail "heraldd(8) describes $opt but heraldd --help does not have it"
done

# ---- herald.conf(5) against the example configuration ----------------------
# "[group]" then "#key=…" or "key=…" lines → "group key"
awk '
  /^\[[a-z]+\]$/ { group = substr($0, 2, length($0) - 2); next }
  group != "" && /^#?[a-z][a-z-]*=/ { sub(/^#/, ""); sub(/=.*/, ""); print group, $0 }
' "$src/data/herald.conf.example" | sort -u >"$tmp/example-keys"
[ -s "$tmp/example-keys" ] || fail "no keys found in data/herald.conf.example"

# The keys the parser knows: the *_keys[] tables of src/herald-config.c
awk '
  /static const char \*const [a-z]+_keys\[\]/ {
    match($0, /[a-z]+_keys/); group = substr($0, RSTART, RLENGTH - 5); collecting = 1
  }
  collecting {
    line = $0
    while (match(line, /"[a-z][a-z-]*"/)) {
      print group, substr(line, RSTART + 1, RLENGTH - 2); line = substr(line, RSTART + RLENGTH)
    }
    if ($0 ~ /NULL/) collecting = 0
  }
' "$src/src/herald-config.c" | sort -u >"$tmp/code-keys"
[ -s "$tmp/code-keys" ] || fail "no key tables found in src/herald-config.c"
comm -23 "$tmp/code-keys" "$tmp/example-keys" >"$tmp/code-only"
comm -13 "$tmp/code-keys" "$tmp/example-keys" >"$tmp/example-only"
while read -r group key; do
  fail "src/herald-config.c knows [$group] $key but data/herald.conf.example does not show it"
done <"$tmp/code-only"
while read -r group key; do
  fail "data/herald.conf.example shows [$group] $key but src/herald-config.c does not know it"
done <"$tmp/example-only"

# "# [group]" sections, then "*key*" definition lines → "group key"
awk '
  /^# \[[a-z]+\]$/ { group = substr($0, 4, length($0) - 4); next }
  /^# / { group = "" }
  group != "" && /^\*[a-z][a-z-]*\*$/ { print group, substr($0, 2, length($0) - 2) }
' "$src/man/herald.conf.5.scd" | sort -u >"$tmp/man-keys"

comm -23 "$tmp/example-keys" "$tmp/man-keys" | while read -r group key; do
  echo "[$group] $key"
done >"$tmp/missing"
comm -13 "$tmp/example-keys" "$tmp/man-keys" | while read -r group key; do
  echo "[$group] $key"
done >"$tmp/extra"
while read -r line; do
  fail "data/herald.conf.example has $line but herald.conf(5) does not describe it"
done <"$tmp/missing"
while read -r line; do
  fail "herald.conf(5) describes $line but data/herald.conf.example does not have it"
done <"$tmp/extra"

# ---- the rendered pages -----------------------------------------------------
# MAN_PAGES=no: configured without them (-Dman=disabled, or scdoc missing
# with -Dman=auto); CI must build them.
if [ "${MAN_PAGES:-yes}" = no ]; then
  if [ "${CI:-}" = true ]; then
    fail "man pages not built: scdoc missing? (scripts/install-deps.sh installs it)"
  else
    echo "man pages not built (-Dman): only the sources were checked"
  fi
else
  for page in heraldd.8 herald.conf.5; do
    if ! grep -q '^\.TH' "$build/man/$page" 2>/dev/null; then
      fail "$build/man/$page was not rendered"
    fi
  done
fi

echo "options: $(wc -l <"$tmp/help-options"), config keys: $(wc -l <"$tmp/example-keys")"
if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s)" >&2
  exit 1
fi
echo "man pages match heraldd --help and data/herald.conf.example"
