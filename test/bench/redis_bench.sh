#!/usr/bin/env bash
# redis_bench.sh: examples/redisping against Debian's redis-server, both
# driven by redis-benchmark in this same run: -c 50, PING_INLINE,
# PING_MBULK, SET and GET, with -P 1 and -P 16.  Each server on CPU 0, the
# client on CPU 1.  Prints requests per second and the ratio.
#
#   test/bench/redis_bench.sh [REQUESTS]     (default 200000)
set -u
cd "$(dirname "$0")/../.."
n=${1:-200000}
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

run() {   # port pipeline -> "TEST,rps" lines
    "${pin_cli[@]}" redis-benchmark -p "$1" -c 50 -n "$n" -P "$2" \
        -t ping_inline,ping_mbulk,set,get --csv 2>/dev/null |
        awk -F'","' 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print $1 "," $2 }'
}

printf 'redis-benchmark -c 50 -n %s; servers on CPU 0, client on CPU 1\n' "$n"
printf '%-12s %4s %14s %14s %8s\n' test P redis-server redisping ratio
for p in 1 16; do
    declare -A rr=()
    while IFS=, read -r t v; do rr[$t]=$v; done < <(run $rport $p)
    while IFS=, read -r t v; do
        printf '%-12s %4d %14.0f %14.0f %7.2fx\n' "$t" "$p" "${rr[$t]:-0}" "$v" \
            "$(awk -v a="$v" -v b="${rr[$t]:-0}" 'BEGIN { print (b > 0 ? a / b : 0) }')"
    done < <(run $dport $p)
done
