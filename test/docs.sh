#!/bin/sh
# test/docs.sh: the manual cannot drift from the header (make check-docs,
# run by make check).
#
# After a real `make install DESTDIR=tmp`, man(1) itself, looking only in
# tmp, must find
#   1. a page or a link for every function include/diesel.h declares
#      (DIESEL_API lines), and
#   2. every page that an .Xr in man/ names, when the page is ours
#      (diesel*, dconsole, libdiesel); the system's pages (close(2),
#      epoll(7)...) are not installed by us and are not checked.
# It prints every name that fails, and exits 1 if any did.
set -eu
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

if ! command -v man >/dev/null 2>&1; then
    echo "docs.sh: man(1) is missing; test/deps.sh installs it" >&2
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/diesel-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
$MAKE -s install DESTDIR="$tmp" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log" >&2
    echo "docs.sh: make install DESTDIR=$tmp failed" >&2
    exit 1
}
man3=$(find "$tmp" -type d -name man3 | head -n 1)
if [ -z "$man3" ]; then
    echo "docs.sh: make install put no man3 directory under $tmp" >&2
    exit 1
fi
mandir=$(dirname "$man3")

bad=0
# find SECTION NAME WHY: man -w must name an existing file under $mandir.
find_page() {
    path=$(MANPATH="$mandir" man -w "$1" "$2" 2>/dev/null) || path=
    case $path in
    "$mandir"/*)
        if [ -e "$path" ]; then
            return 0
        fi
        ;;
    esac
    echo "docs.sh: $2($1): no page after make install ($3)"
    bad=1
}

for f in $(sed -n 's/^DIESEL_API[^(]*[ *]\(diesel_[a-z0-9_]*\) *(.*/\1/p' \
    include/diesel.h); do
    find_page 3 "$f" "declared in include/diesel.h"
done
nf=$(grep -c '^DIESEL_API.*diesel_[a-z0-9_]* *(' include/diesel.h)

for page in man/*.[1-9]; do
    grep '^\.Xr ' "$page" | while read -r xr name sec rest; do
        case $name in
        diesel*|dconsole|libdiesel) echo "$sec $name" ;;
        esac
    done
done | sort -u > "$tmp/xr"
while read -r sec name; do
    find_page "$sec" "$name" "cited with .Xr in man/"
done < "$tmp/xr"

if [ "$bad" != 0 ]; then
    exit 1
fi
echo "docs.sh: man finds all $nf functions of diesel.h and" \
    "$(wc -l < "$tmp/xr" | tr -d ' ') pages cited with .Xr"
