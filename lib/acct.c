/*
 * acct.c: time accounting.  Per green thread, the time it ran (busy),
 * the time it waited for its turn once made ready (scheduled: the
 * wake-to-run delay), its runs and its wakes, with log-scale histograms
 * of run lengths and delays; per loop, the time it waited in poll against
 * the rest (utilization) and its turns.
 *
 * Off (the default), the switch and the wake test l->acct and go on: one
 * load and one branch, predicted.  On, each switch reads the clock once
 * and charges the time since the last read to the green thread that ran
 * (or, for the loop's own context, to nobody: it is the loop's busy time),
 * and each wake reads it once more.  The clock is the CPU's counter where
 * it ticks at a constant rate whatever the power state (x86-64 with an
 * invariant TSC, aarch64's virtual counter), converted with a rate
 * measured against CLOCK_MONOTONIC; clock_gettime(2) elsewhere, and when
 * DIESEL_ACCOUNT_CLOCK=clock_gettime asks for it.  Through a VM's
 * kvm-clock, clock_gettime costs twice what the counter does.
 *
 * Switching accounting on starts a new epoch: each record's figures are
 * zeroed when it is next touched (a switch, a wake) or read as zero until
 * then, so that switching on costs no walk over 100,000 records.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ---- The clock ----------------------------------------------------------- */

enum clock_kind { CLOCK_UNSET, CLOCK_COUNTER, CLOCK_MONO };

/* Process-wide, and several loops may switch accounting on at once:
 * written under clock_lock, read with atomics (a relaxed load of
 * clock_kind on the switch path is a plain load). */
static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static int clock_kind;
static double ns_per_tick = 1.0;
static uint64_t cal_tick;        /* the counter at calibration */
static int64_t cal_ns;           /* CLOCK_MONOTONIC then */

#if defined(__x86_64__)
#define COUNTER_NAME "rdtsc"
static inline uint64_t
counter(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Invariant TSC (CPUID 0x80000007, EDX bit 8): a constant rate in every
 * power state, the same on every core. */
static int
counter_usable(void)
{
    unsigned a, b, c, d;

    return __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
}
#elif defined(__aarch64__)
#define COUNTER_NAME "cntvct"
static inline uint64_t
counter(void)
{
    uint64_t v;

    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
}

static int
counter_usable(void)
{
    return 1;                    /* architecturally constant */
}
#else
#define COUNTER_NAME "clock_gettime"
static inline uint64_t
counter(void)
{
    return (uint64_t)diesel__now_ns();
}

static int
counter_usable(void)
{
    return 0;
}
#endif

static inline uint64_t
ticks(void)
{
    if (__builtin_expect(__atomic_load_n(&clock_kind, __ATOMIC_RELAXED) ==
        CLOCK_COUNTER, 1))
        return counter();
    return (uint64_t)diesel__now_ns();
}

uint64_t
diesel__acct_ns(uint64_t dt)
{
    double r;

    if (__atomic_load_n(&clock_kind, __ATOMIC_ACQUIRE) != CLOCK_COUNTER)
        return dt;
    __atomic_load(&ns_per_tick, &r, __ATOMIC_RELAXED);
    return (uint64_t)((double)dt * r);
}

/* Pick the clock, the first time; measure the counter's rate against
 * CLOCK_MONOTONIC over 2 ms then, and again over all the time since at
 * each later call (so that the rate gets better, for free). */
static void
clock_setup(void)
{
    uint64_t c;
    int64_t t;
    double r;

    pthread_mutex_lock(&clock_lock);
    if (clock_kind == CLOCK_UNSET) {
        const char *env = getenv("DIESEL_ACCOUNT_CLOCK");

        if ((env != NULL && strcmp(env, "clock_gettime") == 0) ||
            !counter_usable()) {
            __atomic_store_n(&clock_kind, CLOCK_MONO, __ATOMIC_RELEASE);
            goto out;
        }
        cal_ns = diesel__now_ns();
        cal_tick = counter();
        do
            t = diesel__now_ns();
        while (t - cal_ns < 2000000);
        c = counter();
        if (c <= cal_tick) {
            __atomic_store_n(&clock_kind, CLOCK_MONO, __ATOMIC_RELEASE);
            goto out;
        }
        r = (double)(t - cal_ns) / (double)(c - cal_tick);
        __atomic_store(&ns_per_tick, &r, __ATOMIC_RELAXED);
        __atomic_store_n(&clock_kind, CLOCK_COUNTER, __ATOMIC_RELEASE);
        goto out;
    }
    if (clock_kind == CLOCK_COUNTER) {
        t = diesel__now_ns();
        c = counter();
        if (c > cal_tick && t - cal_ns > 1000000000) {
            r = (double)(t - cal_ns) / (double)(c - cal_tick);
            __atomic_store(&ns_per_tick, &r, __ATOMIC_RELAXED);
        }
    }
out:
    pthread_mutex_unlock(&clock_lock);
}

const char *
diesel__acct_clock_name(void)
{
    return __atomic_load_n(&clock_kind, __ATOMIC_ACQUIRE) == CLOCK_COUNTER ?
        COUNTER_NAME : "clock_gettime";
}

/* ---- Histograms ---------------------------------------------------------- */

/* In ticks: the conversion to ns waits for a reader. */
static inline void
hist_add(struct diesel__hist *h, uint64_t v)
{
    unsigned k = 63u - (unsigned)__builtin_clzll(v | 1);

    if (k >= DIESEL__HIST_N)
        k = DIESEL__HIST_N - 1;
    h->b[k]++;
    if (v - 1 < h->min - 1)      /* v < min, or min is 0 (none yet) */
        h->min = v ? v : 1;
    if (v > h->max)
        h->max = v;
}

uint64_t
diesel__hist_quantile(const struct diesel__hist *h, double q)
{
    uint64_t want, seen = 0, v, n = diesel__hist_count(h);
    unsigned k;

    if (n == 0)
        return 0;
    want = (uint64_t)(q * (double)n);
    if (want < 1)
        want = 1;
    if (want > n)
        want = n;
    for (k = 0; k < DIESEL__HIST_N - 1; k++) {
        seen += h->b[k];
        if (seen >= want)
            break;
    }
    v = k == DIESEL__HIST_N - 1 ? h->max : ((uint64_t)2 << k) - 1;
    if (v > h->max)
        v = h->max;
    if (v < h->min)
        v = h->min;
    return v;
}

uint64_t
diesel__hist_count(const struct diesel__hist *h)
{
    uint64_t n = 0;

    for (unsigned k = 0; k < DIESEL__HIST_N; k++)
        n += h->b[k];
    return n;
}

/* ---- Switches and wakes -------------------------------------------------- */

/* Zero t's figures for the current epoch. */
static void
fresh(struct diesel_loop *l, struct diesel__task *t)
{
    memset(&t->acct, 0, sizeof(t->acct));
    t->acct_epoch = l->acct_epoch;
    t->acct_window = l->acct->window;
    t->acct_ready = 0;
}

/* The first touch of t in a new `top` window: what it had counted until
 * then is the window's base. */
static inline void
roll(const struct diesel__acct_loop *a, struct diesel__task *t)
{
    if (__builtin_expect(t->acct_window != a->window, 0)) {
        t->acct_window = a->window;
        t->acct.win_max = 0;
        t->acct.base_busy = t->acct.busy;
        t->acct.base_sched = t->acct.sched;
        t->acct.base_runs = t->acct.runs;
        t->acct.base_wakes = t->acct.wakes;
    }
}

void
diesel__acct_switch(struct diesel_loop *l, struct diesel__task *from,
    struct diesel__task *to)
{
    struct diesel__acct_loop *a = l->acct;
    uint64_t now = ticks(), d;

    if (from != NULL) {
        if (from->acct_epoch == l->acct_epoch) {
            roll(a, from);
            d = now - from->acct_in;
            from->acct.busy += d;
            hist_add(&from->acct.run, d);
            hist_add(&a->run, d);
        } else {
            /* Running when accounting was switched on: its run counts
             * from then, and is no whole run for the histograms. */
            fresh(l, from);
            d = now - a->since_tick;
            from->acct.busy += d;
        }
        a->busy += d;
        if (from->state == DIESEL__READY)     /* it yielded */
            from->acct_ready = now;
    }
    if (to != NULL) {
        if (to->acct_epoch != l->acct_epoch)
            fresh(l, to);
        roll(a, to);
        to->acct_in = now;
        to->acct.runs++;
        if (to->acct_ready != 0) {
            d = now - to->acct_ready;
            to->acct_ready = 0;
            to->acct.sched += d;
            if (d > to->acct.sched_max)
                to->acct.sched_max = d;
            if (d > to->acct.win_max)
                to->acct.win_max = d;
            hist_add(&to->acct.wait, d);
            hist_add(&a->wait, d);
        }
    }
}

void
diesel__acct_wake(struct diesel_loop *l, struct diesel__task *t, int woken)
{
    if (t->acct_epoch != l->acct_epoch)
        fresh(l, t);
    roll(l->acct, t);
    t->acct_ready = ticks();
    if (woken)
        t->acct.wakes++;
}

/* ---- On and off ---------------------------------------------------------- */

static int
turn_on(struct diesel_loop *l)
{
    struct diesel__acct_loop *a;

    if (l->acct != NULL)
        return 0;
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        errno = ENOMEM;
        return -1;
    }
    clock_setup();
    a->since = diesel__now_ns();
    a->since_tick = ticks();
    l->acct_epoch++;
    if (l->acct_epoch == 0)      /* 0 marks a record never counted */
        l->acct_epoch = 1;
    l->acct = a;
    return 0;
}

static void
maybe_off(struct diesel_loop *l)
{
    if (l->acct != NULL && !l->acct->sticky && l->acct->holds == 0) {
        free(l->acct);
        l->acct = NULL;
    }
}

int
diesel__acct_hold(struct diesel_loop *l)
{
    if (turn_on(l) != 0)
        return -1;
    l->acct->holds++;
    return 0;
}

void
diesel__acct_release(struct diesel_loop *l)
{
    if (l->acct != NULL && l->acct->holds > 0)
        l->acct->holds--;
    maybe_off(l);
}

int
diesel__acct_set(struct diesel_loop *l, int on)
{
    if (on) {
        if (turn_on(l) != 0)
            return -1;
        l->acct->sticky = 1;
    } else if (l->acct != NULL) {
        l->acct->sticky = 0;
        maybe_off(l);
    }
    return 0;
}

/* -1: never said (the environment decides at each loop start), else the
 * last diesel_loop_account() setting. */
static int default_on = -1;

int
diesel_loop_account(int enable)
{
    struct diesel_loop *l = diesel__loop;

    __atomic_store_n(&default_on, enable != 0, __ATOMIC_RELAXED);
    if (l == NULL)
        return 0;
    return diesel__acct_set(l, enable != 0);
}

int
diesel__acct_loop_start(struct diesel_loop *l)
{
    int on = __atomic_load_n(&default_on, __ATOMIC_RELAXED);

    if (on < 0) {
        const char *env = getenv("DIESEL_ACCOUNT");

        if (env == NULL || *env == '\0' || strcmp(env, "0") == 0)
            return 0;
        if (strcmp(env, "1") != 0) {
            diesel_log("diesel", DIESEL_LOG_ERROR, "DIESEL_ACCOUNT=%s is "
                "neither 0 nor 1: time accounting is off", env);
            return 0;
        }
        on = 1;
    }
    if (on && diesel__acct_set(l, 1) != 0)
        diesel_log("diesel", DIESEL_LOG_ERROR, "cannot switch time "
            "accounting on: %s", strerror(errno));
    return 0;
}

void
diesel__acct_loop_end(struct diesel_loop *l)
{
    free(l->acct);
    l->acct = NULL;
}

void
diesel__acct_before_poll(struct diesel_loop *l)
{
    if (l->acct != NULL)
        l->acct->poll_tick = ticks();
}

void
diesel__acct_after_poll(struct diesel_loop *l)
{
    struct diesel__acct_loop *a = l->acct;

    if (a != NULL) {
        a->poll += ticks() - a->poll_tick;
        a->turns++;
    }
}
