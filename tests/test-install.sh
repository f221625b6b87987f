#!/bin/sh
# meson install puts every file where a distribution expects it: installs the
# build into a temporary DESTDIR and checks the paths.
# Usage: test-install.sh BUILD_ROOT PREFIX SBINDIR SYSCONFDIR DATADIR MANDIR
#                        LOCALEDIR SYSTEMD_UNIT_DIR SYSUSERS_DIR
# (directories as meson resolved them: absolute, or relative to PREFIX).
set -eu

build=$1
prefix=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# An absolute directory, or one relative to the prefix
dir () {
  case $1 in
    /*) echo "$1" ;;
    *) echo "$prefix/$1" ;;
  esac
}
sbindir=$(dir "$3")
sysconfdir=$(dir "$4")
datadir=$(dir "$5")
mandir=$(dir "$6")
localedir=$(dir "$7")
unitdir=$(dir "$8")
sysusersdir=$(dir "$9")

fail () {
  echo "not ok: $*" >&2
  failures=$((failures + 1))
}

expect_file () {
  if [ -f "$tmp/root$1" ] && [ -s "$tmp/root$1" ]; then
    echo "ok: $1"
  else
    fail "$1 was not installed"
  fi
}

if ! meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >"$tmp/log" 2>&1; then
  cat "$tmp/log" >&2
  fail "meson install failed"
fi

expect_file "$sbindir/heraldd"
[ -x "$tmp/root$sbindir/heraldd" ] || fail "$sbindir/heraldd is not executable"
expect_file "$sysconfdir/herald/herald.conf.example"
expect_file "$datadir/dbus-1/interfaces/io.github.herald.Herald1.xml"
expect_file "$datadir/dbus-1/system.d/io.github.herald.Herald1.conf"
expect_file "$datadir/dbus-1/system-services/io.github.herald.Herald1.service"
expect_file "$unitdir/heraldd.service"
expect_file "$sysusersdir/herald.conf"
# MAN_PAGES=no: configured with -Dman=disabled (test-manpages fails that in CI)
if [ "${MAN_PAGES:-yes}" != no ]; then
  expect_file "$mandir/man8/heraldd.8"
  expect_file "$mandir/man5/herald.conf.5"
fi
expect_file "$localedir/de/LC_MESSAGES/herald.mo"

# The unit runs the installed binary, not a build path
if ! grep -qx "ExecStart=$sbindir/heraldd --bus system" "$tmp/root$unitdir/heraldd.service" 2>/dev/null; then
  fail "heraldd.service does not start $sbindir/heraldd"
fi
# Nothing may land outside the prefix and /etc
find "$tmp/root" -type f | sed "s|^$tmp/root||" >"$tmp/files"
while read -r f; do
  case $f in
    "$prefix"/* | /etc/*) ;;
    *) fail "$f is outside $prefix and /etc" ;;
  esac
done <"$tmp/files"
# The installed binary runs
"$tmp/root$sbindir/heraldd" --version | grep -q '^heraldd ' || fail "installed heraldd --version failed"

# The README's steps in the order written: the quick start (or "Building by
# hand") leaves build/ configured for the default prefix, then "Install the
# GNOME way" must still configure for /usr and /etc. Configured in a copy of
# the source tree; nothing is compiled.
readme_install () {
  src=${MESON_SOURCE_ROOT:-}
  [ -n "$src" ] && [ -f "$src/README.md" ] || { echo "ok: README check skipped (no MESON_SOURCE_ROOT)"; return; }
  mkdir -p "$tmp/src"
  tar -C "$src" --exclude='./build*' --exclude=./.git --exclude='*/node_modules' -cf - . | tar -C "$tmp/src" -xf -
  # The install section's code block, comments removed
  sed -n '/^## Install the GNOME way/,/^```$/p' "$src/README.md" | sed -e '1,/^```sh$/d' -e '/^```$/d' \
    -e 's/[[:space:]]*#.*$//' >"$tmp/install-steps"
  installdir=$(sed -n 's/^meson install -C \([^ ]*\).*/\1/p' "$tmp/install-steps" | head -n 1)
  [ -n "$installdir" ] || { fail "README: no 'meson install -C DIR' in Install the GNOME way"; return; }
  grep -q "^meson compile -C $installdir\$" "$tmp/install-steps" \
    || fail "README: 'meson compile' does not build $installdir, the directory it installs"
  (cd "$tmp/src" && meson setup build) >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log" >&2; fail "meson setup build failed"; return; }
  grep -E '^meson (setup|configure)' "$tmp/install-steps" | while read -r step; do
    (cd "$tmp/src" && sh -c "$step") >>"$tmp/setup.log" 2>&1 || echo "$step" >>"$tmp/failed-steps"
  done
  [ ! -s "$tmp/failed-steps" ] || { cat "$tmp/setup.log" >&2; fail "README step failed: $(cat "$tmp/failed-steps")"; return; }
  options="$tmp/src/$installdir/meson-info/intro-buildoptions.json"
  for want in prefix=/usr sysconfdir=/etc; do
    got=$(python3 -c 'import json, sys
print("%s=%s" % (sys.argv[2], [o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == sys.argv[2]][0]))' \
      "$options" "${want%%=*}" 2>/dev/null) || got="(not configured)"
    [ "$got" = "$want" ] && echo "ok: README install steps after the quick start give $want" \
      || fail "README install steps after the quick start give $got, not $want"
  done
}
readme_install

if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s)" >&2
  exit 1
fi
echo "$(wc -l <"$tmp/files") files installed where expected"
