/*
 * switch_smoke.c: the context switch, through the public interface and
 * the real library, with nothing but libc (no Check), so that it also
 * runs under qemu-user for another CPU (see cross.mk).
 *
 *   test/cross/switch_smoke                          the register switch
 *   DIESEL_SWITCH=ucontext test/cross/switch_smoke   swapcontext
 *
 * make check-switch-smoke runs both natively, make check-cross-aarch64
 * both under qemu-aarch64.  "ns/switch" is the whole yield (run queue,
 * errno, a poll every 128 switches), not the assembly alone.
 *
 * A failed check prints where and why and aborts; the last line is
 * "N passed, 0 failed".  Build with -O2: the register test relies on
 * the compiler keeping its locals in callee-saved registers.
 */
#include <errno.h>
#include <fenv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "diesel.h"

/* Internal (hidden, but linkable from the static library): which switch
 * runs, for the report.  Weak so that the test still links without it. */
extern const char *diesel__switch_name(void) __attribute__((weak));

static void
fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define CHECK(c, ...) \
    do { if (!(c)) fail(__FILE__, __LINE__, #c, __VA_ARGS__); } while (0)

static int passed;

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
spawn(const char *name, diesel_task_fn fn, intptr_t arg)
{
    int64_t id = diesel_task_spawn(name, fn, (void *)arg, 0);

    CHECK(id > 0, "spawn %s: %s", name, strerror(errno));
    return id;
}

/*
 * Green threads that yield as often as each other end in spawn order, and
 * joining one that has ended fails (ESRCH): the tests join only the last
 * one, which returns after all the others.
 */
static void
join(int64_t id, int want)
{
    int status = -1;

    CHECK(diesel_task_join(id, &status, -1) == 0, "join %lld: %s",
        (long long)id, strerror(errno));
    CHECK(status == want, "join %lld: status %d, want %d", (long long)id,
        status, want);
}

/* ---- Ping-pong: two green threads yield to each other ------------------- */

#define PINGPONG 500000          /* rounds per side: 1e6 switches */

static long pp_counter;
static long pp_rounds;

/* Side p (0 or 1) runs when the counter is 2i + p: strict alternation. */
static int
pp_body(void *arg)
{
    long p = (long)(intptr_t)arg;

    for (long i = 0; i < pp_rounds; i++) {
        CHECK(pp_counter == 2 * i + p, "side %ld saw %ld in round %ld", p,
            pp_counter, i);
        pp_counter++;
        CHECK(diesel_task_yield() == 0, "yield: %s", strerror(errno));
    }
    return (int)p;
}

static double
pingpong(long rounds)
{
    int64_t b, t0;

    pp_counter = 0;
    pp_rounds = rounds;
    spawn("ping", pp_body, 0);
    b = spawn("pong", pp_body, 1);
    t0 = now_ns();
    join(b, 1);
    CHECK(pp_counter == 2 * rounds, "counter %ld", pp_counter);
    return (double)(now_ns() - t0) / (double)(2 * rounds);
}

static void
test_pingpong(void)
{
    double ns = pingpong(PINGPONG);

    printf("pingpong: %d switches, %.1f ns/switch (%s switch)\n",
        2 * PINGPONG, ns, diesel__switch_name ? diesel__switch_name() : "?");
    passed++;
}

/* ---- Signals mid-switch: an interval timer while they ping-pong ---------- */

static volatile sig_atomic_t nsignals;

/* Runs on whatever stack sp points to when it lands, and uses it. */
static void
on_alarm(int sig)
{
    volatile char buf[512];
    int saved = errno;

    (void)sig;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)i;
    nsignals++;
    errno = saved;
}

static void
test_signals(void)
{
    struct sigaction sa;
    struct itimerval it = { { 0, 50 }, { 0, 50 } };   /* every 50 us */
    struct itimerval off = { { 0, 0 }, { 0, 0 } };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "%s", strerror(errno));
    nsignals = 0;
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "%s", strerror(errno));
    pingpong(PINGPONG / 2);
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "%s", strerror(errno));
    signal(SIGALRM, SIG_IGN);
    CHECK(nsignals > 0, "no SIGALRM arrived");
    printf("signals: %d switches under %d SIGALRMs\n", PINGPONG,
        (int)nsignals);
    passed++;
}

/* ---- Callee-saved registers, integer and FP ---------------------------- */

#define REG_ROUNDS 2000
#define REG_TASKS 3

struct regs_out {
    unsigned long a[8];
    double d[8];
};

static int
no_yield(void)
{
    return 0;
}

static int
do_yield(void)
{
    return diesel_task_yield();
}

/*
 * Sixteen values kept live across every call of between(), mixed so that
 * none can be recomputed from the loop counter: at -O2 they live in
 * callee-saved registers (x19-x28 and d8-d15 on aarch64; rbx, rbp,
 * r12-r15 and the stack on x86-64, which has no callee-saved xmm).
 */
static void
regs_mix(unsigned long seed, int (*between)(void), struct regs_out *o)
{
    unsigned long a0 = seed, a1 = seed * 3 + 1, a2 = seed * 5 + 2,
        a3 = seed * 7 + 3, a4 = seed * 11 + 4, a5 = seed * 13 + 5,
        a6 = seed * 17 + 6, a7 = seed * 19 + 7;
    double d0 = (double)seed * 0.5, d1 = d0 + 1.25, d2 = d0 + 2.5,
        d3 = d0 + 3.75, d4 = d0 + 5.0, d5 = d0 + 6.25, d6 = d0 + 7.5,
        d7 = d0 + 8.75;

    for (int i = 0; i < REG_ROUNDS; i++) {
        if (between() != 0)
            abort();
        a0 = a0 * 31 + a7;
        a1 ^= a0 >> 3;
        a2 += a1 * 7;
        a3 -= a2;
        a4 = (a4 << 1) ^ a3;
        a5 += a4 >> 5;
        a6 ^= a5 * 13;
        a7 += a6;
        d0 = d0 * 0.5 + d7 * 0.25 + (double)(a0 & 15);
        d1 = d1 * 0.5 + d0 * 0.25 + 1.0;
        d2 = d2 * 0.5 + d1 * 0.25 - (double)(a2 & 7);
        d3 = d3 * 0.5 + d2 * 0.25 + 3.0;
        d4 = d4 * 0.5 + d3 * 0.25 + (double)(a4 & 3);
        d5 = d5 * 0.5 + d4 * 0.25 - 5.0;
        d6 = d6 * 0.5 + d5 * 0.25 + (double)(a6 & 31);
        d7 = d7 * 0.5 + d6 * 0.25 + 7.0;
    }
    o->a[0] = a0; o->a[1] = a1; o->a[2] = a2; o->a[3] = a3;
    o->a[4] = a4; o->a[5] = a5; o->a[6] = a6; o->a[7] = a7;
    o->d[0] = d0; o->d[1] = d1; o->d[2] = d2; o->d[3] = d3;
    o->d[4] = d4; o->d[5] = d5; o->d[6] = d6; o->d[7] = d7;
}

/* Called through a volatile pointer: one out-of-line copy, never
 * specialised for no_yield. */
static void (*volatile regs_mix_fn)(unsigned long, int (*)(void),
    struct regs_out *) = regs_mix;

static int
regs_body(void *arg)
{
    unsigned long seed = (unsigned long)(intptr_t)arg;
    struct regs_out want, got;

    regs_mix_fn(seed, no_yield, &want);
    regs_mix_fn(seed, do_yield, &got);
    for (int k = 0; k < 8; k++) {
        CHECK(got.a[k] == want.a[k], "seed %lu: long %d is %#lx, want %#lx",
            seed, k, got.a[k], want.a[k]);
        CHECK(memcmp(&got.d[k], &want.d[k], sizeof(double)) == 0,
            "seed %lu: double %d is %a, want %a", seed, k, got.d[k],
            want.d[k]);
    }
    return 0;
}

#ifdef __aarch64__
/*
 * x29 is the frame pointer, which compiled code only reads when it
 * unwinds: put a value in it by hand around a yield and read it back.
 * Library frames with frame records save x29 themselves and would hide
 * a switch that loses it: cross.mk builds them -fomit-frame-pointer.
 */
static int
fp_body(void *arg)
{
    uintptr_t magic = (uintptr_t)arg, got;

    for (int i = 0; i < 100; i++) {
        __asm__ volatile(
            "stp x29, x30, [sp, #-16]!\n\t"
            "mov x29, %1\n\t"
            "bl diesel_task_yield\n\t"
            "mov %0, x29\n\t"
            "ldp x29, x30, [sp], #16"
            : "=r"(got) : "r"(magic)
            : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9",
              "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x18",
              "x30", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16",
              "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",
              "v26", "v27", "v28", "v29", "v30", "v31", "cc", "memory");
        CHECK(got == magic, "x29 is %#lx, want %#lx", (unsigned long)got,
            (unsigned long)magic);
    }
    return 0;
}
#endif

static void
test_registers(void)
{
    int64_t id = 0;

    for (int i = 0; i < REG_TASKS; i++)
        id = spawn("regs", regs_body, 1000 * (i + 1) + 7);
    join(id, 0);
#ifdef __aarch64__
    spawn("fp", fp_body, 0x1111);
    join(spawn("fp", fp_body, 0x2222), 0);
#endif
    passed++;
}

/* ---- FP control and status: per green thread, as MXCSR on x86 ----------- */

static int
fenv_body(void *arg)
{
    int mode = (int)(intptr_t)arg;
    volatile double one = 1.0, zero = 0.0, z;

    CHECK(fesetround(mode) == 0, "fesetround %d", mode);
    feclearexcept(FE_ALL_EXCEPT);
    for (int i = 0; i < 200; i++) {
        CHECK(diesel_task_yield() == 0, "yield: %s", strerror(errno));
        CHECK(fegetround() == mode, "rounding %#x, want %#x", fegetround(),
            mode);
        if (mode == FE_TONEAREST) {
            /* The noisy one: raise flags the others must not see. */
            z = one / zero;
            z = one / 3.0;
            (void)z;
            feclearexcept(FE_ALL_EXCEPT);
            z = one / zero;
        } else {
            CHECK(fetestexcept(FE_ALL_EXCEPT) == 0, "flags %#x leaked in",
                fetestexcept(FE_ALL_EXCEPT));
        }
    }
    fesetround(FE_TONEAREST);
    feclearexcept(FE_ALL_EXCEPT);
    return 0;
}

static void
test_fenv(void)
{
    spawn("upward", fenv_body, FE_UPWARD);
    spawn("noisy", fenv_body, FE_TONEAREST);
    join(spawn("downward", fenv_body, FE_DOWNWARD), 0);
    CHECK(fegetround() == FE_TONEAREST, "main's rounding changed");
    passed++;
}

/* ---- Spawn and exit 10,000 green threads, 100 at a time ----------------- */

#define WAVES 100
#define PER_WAVE 100

static int wave_marks[PER_WAVE];
static int wave_done;

/* Even ones return (their stacks are pooled for the next wave), odd ones
 * call diesel_task_exit (theirs are unmapped, new ones are mapped). */
static int
wave_body(void *arg)
{
    int i = (int)(intptr_t)arg;

    CHECK(errno == 0, "errno %d at start", errno);
    CHECK(diesel_task_yield() == 0, "yield: %s", strerror(errno));
    wave_marks[i]++;
    wave_done++;
    if (i & 1)
        diesel_task_exit(i);
    return i;
}

static void
test_spawn(void)
{
    int64_t id, last = 0;

    for (int w = 0; w < WAVES; w++) {
        memset(wave_marks, 0, sizeof(wave_marks));
        wave_done = 0;
        for (int i = 0; i < PER_WAVE; i++) {
            id = spawn("wave", wave_body, i);
            CHECK(id > last, "id %lld after %lld", (long long)id,
                (long long)last);
            last = id;
        }
        /* They run in spawn order, twice each. */
        join(last, PER_WAVE - 1);
        CHECK(wave_done == PER_WAVE, "wave %d: %d of %d done", w, wave_done,
            PER_WAVE);
        for (int i = 0; i < PER_WAVE; i++)
            CHECK(wave_marks[i] == 1, "wave %d: thread %d ran %d times", w,
                i, wave_marks[i]);
    }
    passed++;
}

/* ---- diesel_sleep wakes in deadline order ------------------------------ */

static const int sleep_ms[] = { 100, 20, 80, 40, 60 };
#define NSLEEP (int)(sizeof(sleep_ms) / sizeof(sleep_ms[0]))
static int woke[NSLEEP];
static int nwoke;

static int
sleep_body(void *arg)
{
    int ms = (int)(intptr_t)arg;
    int64_t t0 = diesel_now();

    CHECK(diesel_sleep(ms) == 0, "sleep %d: %s", ms, strerror(errno));
    CHECK(diesel_now() - t0 >= ms, "woke after %lld ms of %d",
        (long long)(diesel_now() - t0), ms);
    woke[nwoke++] = ms;
    return 0;
}

static void
test_sleep(void)
{
    int64_t id[NSLEEP];

    nwoke = 0;
    for (int i = 0; i < NSLEEP; i++)
        id[i] = spawn("sleeper", sleep_body, sleep_ms[i]);
    join(id[0], 0);     /* the longest: the others are done by then */
    CHECK(nwoke == NSLEEP, "%d of %d woke", nwoke, NSLEEP);
    for (int i = 1; i < NSLEEP; i++)
        CHECK(woke[i - 1] < woke[i], "woke %d ms before %d ms", woke[i - 1],
            woke[i]);
    passed++;
}

/* ---- errno belongs to the green thread -------------------------------- */

static int
errno_body(void *arg)
{
    int base = (int)(intptr_t)arg;

    for (int i = 0; i < 1000; i++) {
        errno = base + i;
        CHECK(diesel_task_yield() == 0, "yield failed");
        CHECK(errno == base + i, "errno %d, want %d", errno, base + i);
    }
    return 0;
}

static void
test_errno(void)
{
    int64_t id = 0;

    for (int i = 0; i < 3; i++)
        id = spawn("errno", errno_body, 10000 * (i + 1));
    errno = 4242;
    join(id, 0);
    CHECK(errno == 4242, "main's errno %d, want 4242", errno);
    passed++;
}

/* ------------------------------------------------------------------------ */

static int
run_all(void *arg)
{
    (void)arg;
    test_pingpong();
    test_registers();
    test_fenv();
    test_errno();
    test_spawn();
    test_sleep();
    test_signals();
    return 0;
}

int
main(void)
{
    const char *sw = getenv("DIESEL_SWITCH");

    setvbuf(stdout, NULL, _IOLBF, 0);
    diesel_log_level_set(NULL, DIESEL_LOG_ERROR);
    printf("switch_smoke: DIESEL_SWITCH=%s\n", sw ? sw : "(unset)");
    CHECK(diesel_loop_run(run_all, NULL) == 0, "loop: %s", strerror(errno));
    printf("%d passed, 0 failed\n", passed);
    return 0;
}
