#!/bin/sh
# test/deps.sh: what the tests need, in one place; make check and .ci/run
# both start here.
#
#   test/deps.sh check    what make check needs (the default)
#   test/deps.sh ci       that and what .ci/run needs besides
#
# Each need is KIND:NAME:PACKAGE (Debian's package name): cmd (a command
# on PATH), hdr (a header the C compiler finds, with Check's pkg-config
# flags), pkg (a Debian package, checked with dpkg-query where it exists).
# DIESEL_DEPS, when set, replaces the list (the tests use it).
#
# Nothing missing: silent, exit 0.  Something missing: as root, or with
# sudo that needs no password, it is installed with apt-get, as CI does,
# unless DIESEL_DEPS_NO_INSTALL=1; otherwise (or when that fails) it says
# what is missing and the one command that installs it, and exits 1
# before anything is built.
set -u

CHECK_NEEDS="
hdr:check.h:check
cmd:pkg-config:pkg-config
cmd:nc:netcat-openbsd
cmd:curl:curl
cmd:wrk:wrk
cmd:redis-cli:redis-tools
cmd:redis-benchmark:redis-tools
cmd:timeout:coreutils
cmd:man:man-db
"
CI_NEEDS="
cmd:clang:clang
cmd:valgrind:valgrind
cmd:gdb:gdb
cmd:mandoc:mandoc
pkg:libclang-rt-14-dev:libclang-rt-14-dev
cmd:ps:procps
"

case ${1:-check} in
check) needs=$CHECK_NEEDS ;;
ci) needs="$CHECK_NEEDS $CI_NEEDS" ;;
*) echo "usage: test/deps.sh [check | ci]" >&2; exit 2 ;;
esac
needs=${DIESEL_DEPS-$needs}
CC=${CC:-cc}

# have KIND NAME: the need is met here.
have() {
    case $1 in
    cmd) command -v "$2" >/dev/null 2>&1 ;;
    hdr) printf '#include <%s>\n' "$2" |
        $CC $(pkg-config --cflags check 2>/dev/null) -E -x c - \
            >/dev/null 2>&1 ;;
    pkg) ! command -v dpkg-query >/dev/null 2>&1 ||
        dpkg-query -W -f='${Status}' "$2" 2>/dev/null |
        grep -q 'ok installed' ;;
    *) echo "test/deps.sh: $1:$2: unknown kind" >&2; return 1 ;;
    esac
}

# Sets missing (what, one per line) and pkgs (packages, each once).
probe() {
    missing=
    pkgs=
    for need in $needs; do
        kind=${need%%:*}
        rest=${need#*:}
        name=${rest%%:*}
        pkg=${rest#*:}
        have "$kind" "$name" && continue
        case $kind in
        cmd) what="the command $name" ;;
        hdr) what="the header <$name>" ;;
        *) what="the package $name" ;;
        esac
        missing="$missing
  $what (Debian package $pkg)"
        case " $pkgs " in
        *" $pkg "*) ;;
        *) pkgs="${pkgs:+$pkgs }$pkg" ;;
        esac
    done
}

probe
[ -z "$pkgs" ] && exit 0

# Install when we may, as CI does: root, or sudo without a password.
if [ "${DIESEL_DEPS_NO_INSTALL:-0}" != 1 ] &&
    command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        as=
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as="sudo -n"
    else
        as=none
    fi
    if [ "$as" != none ]; then
        echo "test/deps.sh: installing what the tests need: $pkgs"
        export DEBIAN_FRONTEND=noninteractive
        # $pkgs and $as are split on purpose.
        $as apt-get update -q &&
            $as apt-get install -y -q --no-install-recommends $pkgs
        probe
        [ -z "$pkgs" ] && exit 0
        echo "test/deps.sh: apt-get did not install all of it" >&2
    fi
fi

{
    echo "test/deps.sh: the tests need what is missing here:$missing"
    if command -v apt-get >/dev/null 2>&1; then
        echo "Install it with:"
    else
        echo "Install it with (Debian's names; other systems name them" \
            "alike):"
    fi
    if [ "$(id -u)" = 0 ]; then
        echo "  apt-get install $pkgs"
    else
        echo "  sudo apt-get install $pkgs"
    fi
} >&2
exit 1
