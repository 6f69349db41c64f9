#!/usr/bin/env bash
# cores_bench.sh: the examples with one loop (-t 1) and two (-t 2) side by
# side: examples/echo under test/bench/echo_load (-c 100, 64-byte round
# trips) and examples/redisping under redis-benchmark (-c 50, PING_INLINE,
# SET and GET, -P 1 and -P 16).  Throughput, and the server's CPU time per
# request (utime + stime of all its threads over the run, warm-up
# included, from /proc).
#
# This machine has two CPUs and the load generator needs one, so both
# servers run on CPU 0 and the load on CPU 1: two loops cannot go faster
# here, and the figure that matters is CPU per request, -t 2 against -t 1
# (the goal: no more than 1.1x), and that nothing is lost (echo_load's
# errors, every connection counted by the loops, redis-benchmark's
# completed requests).  With CORES_PIN=0 nothing is pinned.  Each line is
# measured CORES_REPS times (default 3), -t 1 and -t 2 taking turns, and
# the best of each is printed: timed figures on a shared machine are
# noisy (20% from one run to the next is common).  Beside them, counted
# over the same runs: the server's system calls, context switches and
# epoll_waits per request (perf's tracepoints; CORES_PERF=0: switches only).
#
# What the counts show (redisping, redis-benchmark -c 50 -P 1, pinned as
# above; December 2026):
# - The program's own work is the same: callgrind counts 3,260 user-space
#   instructions per SET with -t 1 and 3,390 with -t 2 (1.04x; the loop's
#   turns, more of them).  The locks are never slept on (no futex call in
#   a run).  Each request costs one read and one sendto either way.
# - At -P 1 some 90% of the CPU time is the kernel's (stime: loopback TCP,
#   the wake-ups), and what -t 2 adds is there: epoll_wait rises from 0.2-
#   0.4 per request to 0.8-0.86, and context switches from 0.04-0.07 per
#   request to 0.27-0.31, each switch a loop going to sleep in epoll_wait
#   and being woken.  Those cost ~2.5 us a request here, the 1.2-1.4x.
# - Why: redis-benchmark is one thread that answers every reply it got in
#   one pass with a burst of requests, and the kernel spreads its 50
#   connections over both loops: each burst wakes both loops, each polls
#   for its half and sleeps again, and the CPU goes from one to the other.
#   One loop takes the whole burst in one wake-up and one poll (1.8
#   requests a poll in a traced run of 100,000 SETs, 1.25 with two loops,
#   most polls with two loops finding one).  A control, two generators
#   (redis-benchmark -c 25 each) on CPU 1: two processes of one loop each
#   on CPU 0, a generator each, cost what one loop under both generators
#   does (7.4-10.3 us against 9.2-10.0 a request; 0.06-0.14 switches and
#   0.24-0.46 epoll_wait against 0.10-0.11 and 0.42-0.45), while one
#   process of two loops, each generator's connections split over both,
#   costs 13.0-13.3 us, 1.3-1.4x (0.33 switches, 0.79-0.87 epoll_wait).
#   Two pollers on one CPU cost nothing more as such; splitting one
#   client's bursts over them does (threads against processes, the other
#   difference, should be none to the scheduler).  Not the loops' code
#   nor their locks, then; on cores of their own the two halves of a
#   burst are served at once, which is what the loops are for.  echo_load
#   keeps the server saturated (0.05-0.1 epoll_wait a round trip either
#   way), so echo stays near 1.0-1.1x, and at -P 16 a read carries 16
#   requests and the extra polls and switches weigh less.
# - On a machine with more cores, each loop needs a CPU of its own (then a
#   loop that sleeps hands its CPU to nobody, and costs what -t 1 does at
#   the same load per loop), and the load generator more CPUs than the
#   loops (redis-benchmark --threads, several echo_load) so that the
#   loops, not the load, are the bottleneck: then throughput should
#   scale with the loops.  What the loops share would then cost too: the
#   keys are in 16 tables under 16 locks, each loop's record has cache
#   lines of its own, and redisping's `commands` counter is still one
#   atomic add per command on one line, the next thing to split if such a
#   run shows it.
#
#   test/bench/cores_bench.sh [SECONDS] [REQUESTS]   (default 3 s, 100000)
set -u
cd "$(dirname "$0")/../.."
secs=${1:-3}
n=${2:-100000}
reps=${CORES_REPS:-3}
B=test/bench
hz=$(getconf CLK_TCK)
pin_srv=(); pin_cli=()
if [ "${CORES_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] &&
    command -v taskset >/dev/null; then
    pin_srv=(taskset -c 0); pin_cli=(taskset -c 1)
fi
if [ ! -x examples/echo ] || [ ! -x $B/echo_load ]; then
    echo "cores benchmark skipped: examples/echo or $B/echo_load not built"
    exit 0
fi
port=17400
log=$(mktemp)
ewait=syscalls:sys_enter_epoll_wait
trap 'rm -f "$log" "$log.perf"; [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null' EXIT

cpu_ticks() {   # utime + stime of a pid (all its threads), in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Counted, not timed: the server's context switches (voluntary and not,
# all its threads, from /proc) and, where perf can count the kernel's
# system-call tracepoints (root, or perf_event_paranoid -1), its system
# calls and among them epoll_wait, over the same run as the CPU time.
perf_ok=0
if [ "${CORES_PERF:-1}" = 1 ] && command -v perf >/dev/null &&
    perf stat -x, -o /dev/null -e raw_syscalls:sys_enter,$ewait -- true \
    >/dev/null 2>&1; then
    perf_ok=1
fi
switches() {   # voluntary + nonvoluntary context switches of a pid
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '
        /^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
count_start() {   # pid: start counting
    cs0=$(switches "$1")
    cpid=
    if [ "$perf_ok" = 1 ]; then
        perf stat -x, -o "$log.perf" -e raw_syscalls:sys_enter,$ewait \
            -p "$1" 2>/dev/null &
        cpid=$!
        # perf attaches to every thread of the pid before it counts.
        sleep 0.2
    fi
}
# pid -> counted="switches syscalls epoll_waits" ("-" if not counted); not
# in a subshell: perf is this shell's child.
count_stop() {
    local cs1 sc=- ew=-
    cs1=$(switches "$1")
    if [ -n "$cpid" ]; then
        kill -INT "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null
        sc=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$log.perf")
        ew=$(awk -F, '/sys_enter_epoll_wait/ { print $1 }' "$log.perf")
        rm -f "$log.perf"
    fi
    counted="$((cs1 - cs0)) ${sc:--} ${ew:--}"
}

start() {   # example loops -> spid, port
    local try
    for try in $(seq 20); do
        port=$((port + 1))
        "${pin_srv[@]}" "examples/$1" -t "$2" "127.0.0.1:$port" \
            >/dev/null 2>"$log" &
        spid=$!
        for _ in $(seq 100); do
            grep -q "listening on" "$log" 2>/dev/null && return 0
            # Another benchmark's port (helpers share the machine): the next.
            grep -q "in use" "$log" 2>/dev/null && break
            sleep 0.05
        done
        wait "$spid" 2>/dev/null
        spid=
        grep -q "in use" "$log" 2>/dev/null || break
    done
    echo "examples/$1 -t $2 did not start: $(cat "$log")" >&2
    return 1
}

# Stop it; the loops' connection counts from its log, counts="a+b".  Not
# in a subshell ($(stop)): there the wait returned at once, the server
# being no child of it, and its last lines were read before it wrote them.
stop() {
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    spid=
    counts=$(sed -n \
        's/.*loop [0-9]* of [0-9]*: \([0-9]*\) connections.*/\1/p' \
        "$log" | paste -sd+)
}

# Sums over the runs of a line, for the counted table: requests, switches,
# system calls, epoll_waits (the last two only where perf counted).
declare -A nreq ncs nsc new_
tally() {   # key requests "switches syscalls epoll_waits"
    local c s e
    read -r c s e <<<"$3"
    [ "$2" -gt 0 ] || return 0
    nreq[$1]=$(( ${nreq[$1]:-0} + $2 ))
    ncs[$1]=$(( ${ncs[$1]:-0} + c ))
    if [ "$s" != - ]; then
        nsc[$1]=$(( ${nsc[$1]:-0} + s ))
        new_[$1]=$(( ${new_[$1]:-0} + e ))
    fi
}
# The counted row of a line: system calls, context switches and
# epoll_waits per request, -t 1, -t 2 and their ratio.
counted_row() {   # label key1 key2
    awk -v l="$1" -v n1="${nreq[$2]:-0}" -v n2="${nreq[$3]:-0}" \
        -v c1="${ncs[$2]:-0}" -v c2="${ncs[$3]:-0}" \
        -v s1="${nsc[$2]:--}" -v s2="${nsc[$3]:--}" \
        -v e1="${new_[$2]:--}" -v e2="${new_[$3]:--}" '
    function per(x, n) { return (x == "-" || n == 0) ? "-" : sprintf("%.3f", x / n) }
    function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2fx", a / b) }
    BEGIN {
        a = per(s1, n1); b = per(s2, n2); r1 = ratio(a, b)
        c = per(c1, n1); d = per(c2, n2); r2 = ratio(c, d)
        e = per(e1, n1); f = per(e2, n2)
        # ratio(a, b) is a / b: -t 2 over -t 1 is ratio(b, a).
        printf "%-18s %8s %8s %6s %8s %8s %6s %8s %8s\n", l, a, b,
            ratio(b, a), c, d, ratio(d, c), e, f
    }'
}
counted_head() {
    printf '%-18s %8s %8s %6s %8s %8s %6s %8s %8s\n' "" "syscalls" "" "" \
        "switches" "" "" "epoll_wait" ""
    printf '%-18s %8s %8s %6s %8s %8s %6s %8s %8s\n' "per request" "-t 1" \
        "-t 2" ratio "-t 1" "-t 2" ratio "-t 1" "-t 2"
}

min() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (a < b ? a : b) }'; }
max() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (a > b ? a : b) }'; }

declare -A rate cpu lost split
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)

# ---- echo ----------------------------------------------------------------
conns=${CORES_CONNS:-100}
for _ in $(seq "$reps"); do
    for t in 1 2; do
        start echo "$t" || continue
        t0=$(cpu_ticks "$spid")
        count_start "$spid"
        out=$("${pin_cli[@]}" $B/echo_load -c "$conns" -d "$secs" -w 1 \
            "127.0.0.1:$port")
        t1=$(cpu_ticks "$spid")
        count_stop "$spid"
        stop
        r=$(sed -n 's/.*rtt_per_sec=\([0-9]*\).*/\1/p' <<<"$out")
        all=$(sed -n 's/.*rtt_total=\([0-9]*\).*/\1/p' <<<"$out")
        errs=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
        c=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="${all:-0}" \
            'BEGIN { if (n > 0) printf "%.3f", t / hz * 1e6 / n; else print 99 }')
        # Per round trip: counted over the warm-up too, as the CPU time.
        tally "echo$t" "${all:-0}" "$counted"
        rate[echo$t]=$(max "${r:-0}" "${rate[echo$t]:-}")
        cpu[echo$t]=$(min "$c" "${cpu[echo$t]:-}")
        # Lost: errors, or connections the loops did not all count.
        [ -z "$counts" ] && counts=$conns
        served=$(( counts ))
        [ "$t" = 1 ] && served=$conns   # one loop logs no count
        lost[echo$t]=$(( ${lost[echo$t]:-0} + ${errs:-1} + conns - served ))
        split[echo$t]=$counts
    done
done

printf 'examples/echo -t 1 and -t 2: echo_load -c %s, 64-byte round trips, %s s after 1 s warm-up; best of %s taking turns\n' \
    "$conns" "$secs" "$reps"
if [ ${#pin_srv[@]} -gt 0 ]; then
    echo "server on CPU 0 (both loops of -t 2 as well), load on CPU 1"
fi
printf '%-18s %11s %11s %12s %12s %6s %5s  %s\n' test "rtt/s -t 1" \
    "rtt/s -t 2" "cpu_us -t 1" "cpu_us -t 2" ratio lost "per loop (-t 2)"
printf '%-18s %11d %11d %12s %12s %5.2fx %5d  %s\n' "echo 64 B" \
    "${rate[echo1]:-0}" "${rate[echo2]:-0}" "${cpu[echo1]:--}" \
    "${cpu[echo2]:--}" \
    "$(awk -v a="${cpu[echo2]:-0}" -v b="${cpu[echo1]:-0}" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
    $(( ${lost[echo1]:-0} + ${lost[echo2]:-0} )) "${split[echo2]:--}"
echo "counted over the same runs (their mean; syscalls and epoll_wait: perf)"
counted_head
counted_row "echo 64 B" echo1 echo2

# ---- redis-benchmark ---------------------------------------------------------
if ! command -v redis-benchmark >/dev/null || [ ! -x examples/redisping ]; then
    echo "redis part skipped: redis-benchmark (Debian: redis-tools) or examples/redisping missing"
    exit 0
fi
# pipeline test -> "rps cpu_us_per_request completed switches syscalls
# epoll_waits" (the last three over the run, "-" where not counted)
measure() {
    local t0 t1 out rps done
    t0=$(cpu_ticks "$spid")
    count_start "$spid"
    out=$("${pin_cli[@]}" redis-benchmark -p "$port" -c 50 -n "$3" -P "$1" \
        -t "$2" --csv 2>/dev/null)
    t1=$(cpu_ticks "$spid")
    count_stop "$spid"
    rps=$(awk -F'","' 'NR > 1 { gsub(/"/, "", $2); print $2; exit }' <<<"$out")
    # redis-benchmark prints its line only once every request was answered.
    done=0; [ -n "$rps" ] && done=$3
    awk -v r="${rps:-0}" -v t=$((t1 - t0)) -v hz="$hz" -v n="$3" -v d="$done" \
        -v k="$counted" \
        'BEGIN { printf "%.0f %.3f %d %s\n", r, t / hz * 1e6 / n, d, k }'
}

printf '\nexamples/redisping -t 1 and -t 2: redis-benchmark -c 50 -n %s (%s at -P 16); best of %s taking turns\n' \
    "$n" $((n * 8)) "$reps"
printf '%-18s %11s %11s %12s %12s %6s %5s\n' test "req/s -t 1" \
    "req/s -t 2" "cpu_us -t 1" "cpu_us -t 2" ratio lost
for p in 1 16; do
    nn=$n
    [ "$p" = 16 ] && nn=$((n * 8))
    for test in ping_inline set get; do
        k=$test$p
        for _ in $(seq "$reps"); do
            for t in 1 2; do
                start redisping "$t" || continue
                read -r r c d k1 k2 k3 < <(measure "$p" "$test" "$nn")
                stop
                tally "$k$t" "$d" "$k1 $k2 $k3"
                rate[$k$t]=$(max "$r" "${rate[$k$t]:-}")
                cpu[$k$t]=$(min "$c" "${cpu[$k$t]:-}")
                lost[$k]=$(( ${lost[$k]:-0} + nn - d ))
            done
        done
        printf '%-18s %11d %11d %12s %12s %5.2fx %5d\n' \
            "$(tr a-z A-Z <<<"$test") -P $p" "${rate[${k}1]:-0}" \
            "${rate[${k}2]:-0}" "${cpu[${k}1]:--}" "${cpu[${k}2]:--}" \
            "$(awk -v a="${cpu[${k}2]:-0}" -v b="${cpu[${k}1]:-0}" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
            "${lost[$k]}"
    done
done
echo "counted over the same runs (their mean; syscalls and epoll_wait: perf)"
counted_head
for p in 1 16; do
    for test in ping_inline set get; do
        counted_row "$(tr a-z A-Z <<<"$test") -P $p" "$test${p}1" "$test${p}2"
    done
done
echo "load average before and after: $load0 / $(cut -d' ' -f1-3 /proc/loadavg)"
cat <<'EOF'
(cpu_us: the server's CPU time per request, all its threads, from
/proc ticks (10 ms: short runs are coarse); ratio: -t 2 over -t 1, the
goal at most 1.1x; lost: requests or connections that did not complete.
syscalls, switches, epoll_wait: per request, the server's, counted (the
mean of the runs).  With both loops on one CPU, each burst of
redis-benchmark's requests wakes both loops, each taking half: more
epoll_waits and switches, the kernel's cost, not the loops' code (see
this script's header).  With more cores, each loop would need a CPU of
its own and the load generator more than one (echo_load instances or
redis-benchmark --threads on other CPUs) for -t 2 to show throughput
scaling.)
EOF
