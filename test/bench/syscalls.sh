#!/bin/sh
# syscalls.sh BENCH_SWITCH [N]: system calls per green thread switch.
#
# Runs `BENCH_SWITCH --count N` (a yield ping-pong of N switches) and
# `BENCH_SWITCH --count 0` under `strace -f -c`, and divides the difference
# of their totals by N, so that startup, loop setup and teardown cancel
# out.  Once with the switch the library picks (the register switch
# where there is one), once with DIESEL_SWITCH=ucontext (N/10 switches:
# each costs a traced system call there).
set -e

bin=$1
n=${2:-200000}
nuc=$((n / 10))

if ! command -v strace >/dev/null 2>&1; then
    echo "syscalls per switch: strace not found, not measured"
    exit 0
fi
tmp=${TMPDIR:-/tmp}/diesel-bench-strace.$$
trap 'rm -f "$tmp" "$tmp.way"' EXIT
trap 'exit 1' INT TERM

# calls SWITCH N: total system calls of one run, from strace's summary
# line "100.00 0.000123 4 35 2 total" (calls is the 4th field).  The
# program prints the name of the switch it used into $tmp.way.
calls() {
    if [ "$1" = default ]; then
        env -u DIESEL_SWITCH strace -f -c -o "$tmp" "$bin" --count "$2" \
            >"$tmp.way"
    else
        env DIESEL_SWITCH="$1" strace -f -c -o "$tmp" "$bin" --count "$2" \
            >"$tmp.way"
    fi
    awk '$NF == "total" { print $4 }' "$tmp"
}

if ! calls default 0 >/dev/null 2>&1; then
    echo "syscalls per switch: strace failed (ptrace not permitted?)," \
        "not measured"
    exit 0
fi

def_run=$(calls default "$n")
# "way ms": the switch's name, and how long the N switches took
way=$(cut -d' ' -f1 "$tmp.way")
ms=$(cut -d' ' -f2 "$tmp.way")
def_base=$(calls default 0)
uc_run=$(calls ucontext "$nuc")
uc_base=$(calls ucontext 0)

echo "== syscalls per switch: diesel_task_yield ping-pong under strace"
echo "method: strace -f -c total calls of 'bench_switch --count N' minus" \
    "those of '--count 0', divided by N"
# The goal is no system call per switch.  What the ping-pong still makes
# is the loop's poll, at most once a millisecond while green threads keep
# yielding and none waits on a descriptor (loop.c, must_poll): met when
# the calls above the baseline are no more than the milliseconds, plus
# one for the start.
awk -v n="$n" -v way="$way" -v ar="$def_run" -v ab="$def_base" \
    -v nuc="$nuc" -v ur="$uc_run" -v ub="$uc_base" -v ms="$ms" 'BEGIN {
    a = (ar - ab) / n; u = (ur - ub) / nuc
    printf "  %-30s %9s %9s %9s %11s\n", "switch", "N", "calls", \
        "baseline", "per switch"
    printf "  %-30s %9d %9d %9d %11.4f\n", "default (" way ")", \
        n, ar, ab, a
    printf "  %-30s %9d %9d %9d %11.4f\n", "DIESEL_SWITCH=ucontext", \
        nuc, ur, ub, u
    printf "goal: 0 system calls/switch: %.6f (%d in %.1f ms of " \
        "switching: the loop'"'"'s poll, at most 1 a ms), %s\n", a, ar - ab, \
        ms, ar - ab <= ms + 1 ? "met" : "NOT met"
    printf "syscalls per switch: %.6f (default, %s, %d switches); " \
        "%.4f (DIESEL_SWITCH=ucontext)\n", a, way, n, u
}'
