#!/usr/bin/env bash
# counted.sh: the counted section of `make bench`.  Timed rates move by
# 20-30% from pass to pass on a shared machine; counts do not.  Each server
# runs under valgrind's cachegrind (--cache-sim=yes --D1=32768,8,64
# --LL=1048576,16,64, server on CPU 0, load on CPU 1) and the figures are
# per round trip: instructions, D1 misses (reads + writes) and LL data
# misses (reads + writes, of a 1 MiB LL, small enough that N connections'
# state does not fit as it would not at 10,000 on a real machine).
#
# Each figure is the difference of two whole runs of the same server, one
# driven for COUNT_SHORT s and one for COUNT_LONG s, divided by the
# difference of the round trips made: start-up, connecting, the cold
# caches and the exit cancel out, and what is left is the steady round
# trip.  The echo servers (diesel, libuv, libevent, the plain epoll loop)
# at N = 100 and 1,000 connections of 64-byte round trips (echo_load);
# examples/redisping and redis-server per request, redis-benchmark -c 50
# -P 1, GET and SET.  A run under valgrind is some 50 times slower than
# natively: the counts do not care.
#
# COUNT_LINES=K adds, under each server's figures, the K source lines
# with the most D1 misses per round trip (reads, writes, instructions,
# file:line, function, the line's text), by the same difference: which
# load or store misses, and so which object (the task record, the stack,
# the conn, the loop's fd table...) it touches.  A server built without
# symbols shows as ???.
#
#   test/bench/counted.sh          (COUNT_CONNS, COUNT_SHORT, COUNT_LONG,
#                                   COUNT_REQS to change the defaults;
#                                   COUNT_SERVERS="diesel libuv" for some;
#                                   COUNT_LINES=12 for the lines)
set -u
cd "$(dirname "$0")/../.."
B=test/bench
if ! command -v valgrind >/dev/null; then
    echo "counted bench skipped: valgrind not installed (Debian: valgrind)"
    exit 0
fi
short=${COUNT_SHORT:-1}
long=${COUNT_LONG:-4}
reqs=${COUNT_REQS:-20000}
pin_srv=(); pin_cli=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_srv=(taskset -c 0); pin_cli=(taskset -c 1)
fi
cg=(valgrind -q --tool=cachegrind --cache-sim=yes --D1=32768,8,64
    --LL=1048576,16,64)
tmp=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"' EXIT
port=17400

# An echo or Redis server waits for connections; under valgrind it takes
# seconds to start.
wait_port() {   # port pid
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Ir D1 LLd of a finished cachegrind run: its summary line, in the order
# of its events line (Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw).
counts() {
    awk '/^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1 }
         /^summary:/ { print $(ev["Ir"] + 1),
             $(ev["D1mr"] + 1) + $(ev["D1mw"] + 1),
             $(ev["DLmr"] + 1) + $(ev["DLmw"] + 1) }' "$1"
}

# The COUNT_LINES lines of most D1 misses per unit of work: the
# difference of the per-line counts of two runs (short, long) divided by
# the difference of their work.
lines() {   # short-out long-out work
    awk -v w="$3" '
        /^events:/ { for (i = 2; i <= NF; i++) ev[$i] = i - 1; next }
        /^fl=/ { fl = substr($0, 4); next }
        /^fn=/ { fn = substr($0, 4); next }
        /^[0-9]/ {
            key = fl SUBSEP $1 SUBSEP fn
            sign = FILENAME == ARGV[1] ? -1 : 1
            r[key] += sign * $(ev["D1mr"] + 1)
            m[key] += sign * $(ev["D1mw"] + 1)
            ir[key] += sign * $(ev["Ir"] + 1)
        }
        END {
            for (key in r) {
                split(key, a, SUBSEP)
                printf "%.3f %.3f %.3f %.1f %s %s %s\n",
                    (r[key] + m[key]) / w, r[key] / w, m[key] / w,
                    ir[key] / w, a[1], a[2], a[3]
            }
        }' "$1" "$2" | sort -rn | head -n "$COUNT_LINES" |
    while read -r _ dr dw ir fl ln fn; do
        src=
        [ -r "$fl" ] && src=$(sed -n "${ln}{s/^[[:space:]]*//;p;q}" "$fl")
        printf '    %6s %6s %6s  %s:%s %s | %.60s\n' "$dr" "$dw" "$ir" \
            "${fl##*/}" "$ln" "$fn" "$src"
    done
}

# Runs cmd... under cachegrind on PORT, drives it with the load command
# in $load (PORT replaced), stops it with SIGTERM and prints
# "Ir D1 LLd work", work being what the load printed.
run_one() {   # port load-kind load-arg cmd...
    local p=$1 kind=$2 arg=$3 out work
    shift 3
    out=$tmp/cg.$p
    "${pin_srv[@]}" "${cg[@]}" --cachegrind-out-file="$out" "$@" \
        >/dev/null 2>"$tmp/err.$p" &
    spid=$!
    if ! wait_port "$p" "$spid"; then
        kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=
        echo "- - - 0"
        return
    fi
    if [ "$kind" = echo ]; then
        work=$("${pin_cli[@]}" $B/echo_load -c "${arg%:*}" -d "${arg#*:}" \
            -w 0 "127.0.0.1:$p" | sed -n 's/.*rtt_total=\([0-9]*\).*/\1/p')
    else
        "${pin_cli[@]}" redis-benchmark -p "$p" -c 50 -P 1 -t "${arg%:*}" \
            -n "${arg#*:}" -q >/dev/null 2>&1 && work=${arg#*:}
    fi
    kill -TERM "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    spid=
    if [ -s "$out" ]; then
        echo "$(counts "$out") ${work:-0}"
    else
        echo "- - - 0"
    fi
}

# name kind short-arg long-arg cmd... (cmd's PORT word is the port)
measure() {
    local name=$1 kind=$2 a1=$3 a2=$4 p1 p2 c1 c2
    shift 4
    case " ${COUNT_SERVERS:-$name} " in
    *" $name "*) ;;
    *) return ;;
    esac
    port=$((port + 1)); p1=$port
    c1=$(run_one "$p1" "$kind" "$a1" "${@//PORT/$p1}")
    port=$((port + 1)); p2=$port
    c2=$(run_one "$p2" "$kind" "$a2" "${@//PORT/$p2}")
    awk -v a="$c1" -v b="$c2" -v name="$name" -v n="$label" 'BEGIN {
        split(a, x); split(b, y)
        w = y[4] - x[4]
        if (x[1] == "-" || y[1] == "-" || w <= 0) {
            printf "%-12s %6s %12s %12s %12s  (failed)\n", name, n, "-", "-", "-"
            exit
        }
        printf "%-12s %6s %12.0f %12.3f %12.3f %10d\n", name, n,
            (y[1] - x[1]) / w, (y[2] - x[2]) / w, (y[3] - x[3]) / w, w
    }'
    if [ "${COUNT_LINES:-0}" -gt 0 ] && [ -s "$tmp/cg.$p1" ] &&
        [ -s "$tmp/cg.$p2" ]; then
        local w=$(( ${c2##* } - ${c1##* } ))
        if [ "$w" -gt 0 ]; then
            printf '    %6s %6s %6s  D1 misses per unit of work, by line\n' \
                D1mr D1mw instr
            lines "$tmp/cg.$p1" "$tmp/cg.$p2" "$w"
        fi
    fi
}

printf 'counted: cachegrind --cache-sim=yes --D1=32768,8,64 --LL=1048576,16,64; server on CPU 0\n'
printf 'per round trip (echo, 64 bytes) or request (redis, -c 50 -P 1): the difference of a %s s and a %s s run\n' \
    "$short" "$long"
printf '%-12s %6s %12s %12s %12s %10s\n' server n instr D1_miss LLd_miss counted
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
servers=("epoll:$B/echo_epoll PORT")
[ -x examples/echo ] && servers+=("diesel:examples/echo 127.0.0.1:PORT")
if [ -x $B/echo_uv ]; then
    servers+=("libuv:$B/echo_uv PORT")
else
    echo "(libuv: not built; Debian: libuv1-dev, then make bench again)"
fi
if [ -x $B/echo_event ]; then
    servers+=("libevent:$B/echo_event PORT")
else
    echo "(libevent: not built; Debian: libevent-dev, then make bench again)"
fi
for n in ${COUNT_CONNS:-100 1000}; do
    label=$n
    for s in "${servers[@]}"; do
        # shellcheck disable=SC2086
        measure "${s%%:*}" echo "$n:$short" "$n:$long" ${s#*:}
    done
done
if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
    echo "(redis: skipped, redis-benchmark or redis-server not installed; Debian: redis-tools redis-server)"
    exit 0
fi
for t in get set; do
    label=$(tr a-z A-Z <<<"$t")
    measure redis-server redis "$t:$((reqs / 4))" "$t:$reqs" \
        redis-server --port PORT --save '' --appendonly no --daemonize no \
        --loglevel warning
    [ -x examples/redisping ] &&
        measure redisping redis "$t:$((reqs / 4))" "$t:$reqs" \
            examples/redisping 127.0.0.1:PORT
done
