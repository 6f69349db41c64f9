#!/usr/bin/env bash
# redis_bench.sh: examples/redisping against Debian's redis-server, both
# driven by redis-benchmark in this same run: -c 50, PING_INLINE,
# PING_MBULK, SET and GET, with -P 1 and -P 16.  Each server on CPU 0, the
# client on CPU 1.  Each line is measured REDIS_REPS times (default 3),
# the two servers taking turns, and the best of each is printed, since on
# this shared machine one run can be 20% off: requests per second and
# their ratio, and the server's CPU time per request (the lower the
# better; when redis-benchmark is the bottleneck, as it often is at -P 16,
# the rates are the client's and the CPU times tell the servers apart).
#
#   test/bench/redis_bench.sh [REQUESTS]     (default 200000; 8x at -P 16)
set -u
cd "$(dirname "$0")/../.."
n=${1:-200000}
reps=${REDIS_REPS:-3}
if ! command -v redis-benchmark >/dev/null || ! command -v redis-server >/dev/null; then
    echo "redis benchmark skipped: redis-benchmark or redis-server not installed (Debian: redis-tools redis-server)"
    exit 0
fi
if [ ! -x examples/redisping ]; then
    echo "redis benchmark skipped: examples/redisping not built"
    exit 0
fi
pin_srv=(); pin_cli=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_srv=(taskset -c 0); pin_cli=(taskset -c 1)
fi
hz=$(getconf CLK_TCK)
rport=17301; dport=17302
"${pin_srv[@]}" redis-server --port $rport --save '' --appendonly no \
    --daemonize no --loglevel warning >/dev/null 2>&1 &
rpid=$!
"${pin_srv[@]}" examples/redisping "127.0.0.1:$dport" 2>/dev/null &
dpid=$!
trap 'kill $rpid $dpid 2>/dev/null' EXIT
for p in $rport $dport; do
    for _ in $(seq 50); do
        redis-cli -p $p ping >/dev/null 2>&1 && break
        sleep 0.1
    done
done

cpu_ticks() {   # utime + stime of a pid (all its threads), in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# port pid test pipeline requests -> "rps cpu_us_per_request"
measure() {
    local t0 t1 rps
    t0=$(cpu_ticks "$2")
    rps=$("${pin_cli[@]}" redis-benchmark -p "$1" -c 50 -n "$5" -P "$4" \
        -t "$3" --csv 2>/dev/null |
        awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }')
    t1=$(cpu_ticks "$2")
    awk -v r="${rps:-0}" -v t=$((t1 - t0)) -v hz="$hz" -v n="$5" \
        'BEGIN { printf "%.0f %.3f\n", r, t / hz * 1e6 / n }'
}

printf 'redis-benchmark -c 50 -n %s (%s at -P 16); servers on CPU 0, client on CPU 1; best of %s, taking turns\n' \
    "$n" $((n * 8)) "$reps"
printf '%-12s %3s %13s %11s %7s %16s %16s\n' test P redis-server redisping ratio \
    "cpu_us/req redis" "cpu_us/req ours"
for p in 1 16; do
    nn=$n
    [ "$p" = 16 ] && nn=$((n * 8))
    for t in ping_inline ping_mbulk set get; do
        br=0; bd=0; cr=; cd=
        for _ in $(seq "$reps"); do
            read -r r c < <(measure $rport $rpid $t $p $nn)
            [ "$r" -gt "$br" ] && br=$r
            cr=$(awk -v a="$c" -v b="${cr:-$c}" 'BEGIN { print (a < b ? a : b) }')
            read -r r c < <(measure $dport $dpid $t $p $nn)
            [ "$r" -gt "$bd" ] && bd=$r
            cd=$(awk -v a="$c" -v b="${cd:-$c}" 'BEGIN { print (a < b ? a : b) }')
        done
        printf '%-12s %3d %13d %11d %6.2fx %16.3f %16.3f\n' \
            "$(tr a-z A-Z <<<"$t")" "$p" "$br" "$bd" \
            "$(awk -v a="$bd" -v b="$br" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
            "$cr" "$cd"
    done
done
