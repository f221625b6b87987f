#!/bin/sh
# The German catalog is built and used: heraldd --help, a configuration error
# and a command-line error come out in German with LANGUAGE=de, and in English
# without it. HERALD_LOCALEDIR points heraldd at the build's compiled
# catalogs (BUILD_ROOT/po/de/LC_MESSAGES/herald.mo), so nothing is installed.
# Also: po/POTFILES.in lists every source file that marks strings.
# Usage: test-i18n.sh SOURCE_ROOT BUILD_ROOT (HERALDD in the environment).
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

# expect FILE TEXT: FILE contains TEXT
expect () {
  if ! grep -qF -- "$2" "$1"; then
    fail "expected “$2” in:"
    sed 's/^/    /' "$1" >&2
  fi
}

# Every file using _() or N_() must be in POTFILES.in, or its strings are
# never offered to translators.
for f in $(cd "$src" && grep -l '[^A-Za-z_]N\{0,1\}_ (' src/*.c); do
  grep -qx "$f" "$src/po/POTFILES.in" || fail "$f marks strings but is not in po/POTFILES.in"
done

mo="$build/po/de/LC_MESSAGES/herald.mo"
[ -s "$mo" ] || fail "$mo was not built"

# gettext ignores LANGUAGE when the locale is C/POSIX: use C.UTF-8.
unset LC_ALL LC_MESSAGES
export LANG=C.UTF-8
export HERALD_LOCALEDIR="$build/po"

printf '[limits]\nheartbeat-interval=abc\n' >"$tmp/bad.conf"

# German
LANGUAGE=de "$heraldd" --help >"$tmp/help.de" 2>&1 || fail "heraldd --help failed"
expect "$tmp/help.de" "Herald: ein Echtzeit-Push-Server (WebSocket und Server-Sent Events)"
expect "$tmp/help.de" "--config=DATEI"
expect "$tmp/help.de" "Konfigurationsdatei"
expect "$tmp/help.de" "Version ausgeben und beenden"

if LANGUAGE=de "$heraldd" --config "$tmp/bad.conf" --bus none >"$tmp/config.de" 2>&1; then
  fail "heraldd started with an invalid configuration"
fi
expect "$tmp/config.de" "[limits] heartbeat-interval: erwartet wurde eine ganze Zahl zwischen 1 und 3600, erhalten: „abc“"

if LANGUAGE=de "$heraldd" --bus tram >"$tmp/bus.de" 2>&1; then
  fail "heraldd accepted --bus tram"
fi
expect "$tmp/bus.de" "--bus muss session, system oder none sein"

# English without LANGUAGE: the German text above came from the catalog.
LANGUAGE= "$heraldd" --help >"$tmp/help.en" 2>&1 || fail "heraldd --help failed"
expect "$tmp/help.en" "Configuration file"
LANGUAGE= "$heraldd" --config "$tmp/bad.conf" --bus none >"$tmp/config.en" 2>&1 || true
expect "$tmp/config.en" "expected an integer between 1 and 3600, got “abc”"

if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s)" >&2
  exit 1
fi
echo "heraldd speaks German with LANGUAGE=de"
