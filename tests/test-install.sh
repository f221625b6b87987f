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

if [ "$failures" -ne 0 ]; then
  echo "$failures problem(s)" >&2
  exit 1
fi
echo "$(wc -l <"$tmp/files") files installed where expected"
