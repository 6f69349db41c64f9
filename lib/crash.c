/*
 * crash.c: what the log says when a green thread dies of a fatal signal.
 *
 *   [2026/11/25 16:30:01] {diesel} CRITICAL:fatal signal SIGSEGV (fault at
 *       0x40) in green thread 'worker' (id 7)
 *   [...] {diesel} CRITICAL:backtrace of green thread 'worker' (id 7):
 *   ./service(crash_here+0x12)[0x55d0c3a1b2c3]
 *   ...
 *   [...] {diesel} CRITICAL:green threads (3):
 *   [...] {diesel} CRITICAL:  1 main waiting fd 5 read
 *   ...
 *
 * Then the default action runs, so the process dies of the original signal
 * (and dumps core) as it would have without libdiesel.  A stack overflow
 * (a fault in or just below a green thread's guard page) is named as such
 * and the process aborts.
 *
 * Everything here runs in a signal handler, on the alternate stack that
 * crash_init gives each OS thread running a loop: only async-signal-safe
 * calls, no locks, no malloc.  backtrace() is the exception that glibc
 * makes safe enough once it has been called (it loads libgcc_s the first
 * time), so crash_init calls it once.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/*
 * How far below a stack's guard page a fault still counts as an overflow
 * of that stack: code built with -fstack-clash-protection touches every
 * page, so the first fault lands in the guard page; code without it may
 * skip a little further.
 */
#define OVERFLOW_SLACK (64 * 1024)
#define BACKTRACE_MAX 64
#define TABLE_MAX 200     /* green threads listed at most */

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define NFATAL (sizeof(fatal) / sizeof(fatal[0]))
static struct sigaction old_action[NFATAL];
static int installed;
static int report = 1;
static int reported;             /* one report per process */
static __thread void *altstack;  /* this OS thread's, if we made it */
static __thread int chained;     /* inside a handler we hand on to */

int
diesel_crash_report(int enable)
{
    return __atomic_exchange_n(&report, enable != 0, __ATOMIC_RELAXED);
}

static const char *
signame(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    }
    return "signal";
}

/* The signal-safe line builder of internal.h (shared with
 * console_stuck.c), under short names. */
#define put diesel__sline_put

void
diesel__sline_u64(struct diesel__sline *l, uint64_t v)
{
    char tmp[24];

    tmp[diesel__fmt_u64(tmp, v)] = '\0';
    put(l, tmp);
}

void
diesel__sline_hex(struct diesel__sline *l, uint64_t v)
{
    char tmp[24];

    tmp[diesel__fmt_hex(tmp, v)] = '\0';
    put(l, "0x");
    put(l, tmp);
}

#define put_u64 diesel__sline_u64
#define put_hex diesel__sline_hex

static void
put_task(struct diesel__sline *l, const struct diesel__task *t)
{
    put(l, "green thread '");
    put(l, t->name);
    put(l, "' (id ");
    put_u64(l, (uint64_t)t->id);
    put(l, ")");
}

/* One line out: to the log, or to fd after prefix. */
static void
say_to(struct diesel__sline *l, int fd, const char *prefix)
{
    if (fd < 0) {
        diesel__log_signal_safe("diesel", DIESEL_LOG_CRITICAL, l->b);
    } else {
        struct diesel__sline out = { "", 0 };

        put(&out, prefix);
        put(&out, l->b);
        out.b[out.n++] = '\n';
        (void)diesel__platform_send(fd, out.b, out.n);
    }
    l->n = 0;
    l->b[0] = '\0';
}

static void
say(struct diesel__sline *l)
{
    say_to(l, -1, "");
}

void
diesel__crash_table(struct diesel_loop *lp, int fd, const char *prefix,
    const char *running_label)
{
    struct diesel__sline l = { "", 0 };
    size_t shown = 0;

    put(&l, "green threads (");
    put_u64(&l, lp->ntasks);
    put(&l, "):");
    say_to(&l, fd, prefix);
    for (size_t i = 0; i < lp->tasks_cap && shown < TABLE_MAX; i++) {
        const struct diesel__task *t = lp->tasks[i].t;

        if (t == NULL)
            continue;
        shown++;
        put(&l, "  ");
        put_u64(&l, (uint64_t)t->id);
        put(&l, " ");
        put(&l, t->name);
        put(&l, " ");
        put(&l, t == diesel__current ? running_label :
            diesel__task_state_name(t->state));
        if (t->state == DIESEL__WAITING || t->state == DIESEL__SLEEPING) {
            switch (t->wait.kind) {
            case DIESEL__WAIT_FD:
                put(&l, " on fd ");
                put_u64(&l, (uint64_t)t->wait.fd);
                put(&l, t->wait.events == DIESEL_READ ? " read" :
                    t->wait.events == DIESEL_WRITE ? " write" : " read/write");
                break;
            case DIESEL__WAIT_JOIN:
                put(&l, " on join ");
                put_u64(&l, (uint64_t)t->wait.target);
                break;
            case DIESEL__WAIT_OTHER:
                put(&l, " on ");
                put(&l, t->wait.what ? t->wait.what : "?");
                break;
            default:
                break;
            }
        }
        say_to(&l, fd, prefix);
    }
}

static void
crash_report(int sig, siginfo_t *si, struct diesel__task *t, int overflow)
{
    struct diesel__sline l = { "", 0 };
    void *frames[BACKTRACE_MAX];
    int n, fd;

    if (overflow) {
        put(&l, "stack overflow in ");
        put_task(&l, t);
        put(&l, ": fault at ");
        put_hex(&l, (uint64_t)(uintptr_t)si->si_addr);
        put(&l, ", stack of ");
        put_u64(&l, (uint64_t)(t->stack_hi - t->stack_lo));
        put(&l, " bytes");
    } else {
        put(&l, "fatal signal ");
        put(&l, signame(sig));
        if (sig != SIGABRT && si->si_code > 0) {
            put(&l, " (fault at ");
            put_hex(&l, (uint64_t)(uintptr_t)si->si_addr);
            put(&l, ")");
        }
        put(&l, " in ");
        put_task(&l, t);
    }
    say(&l);
    if (!__atomic_load_n(&report, __ATOMIC_RELAXED))
        return;
    put(&l, "backtrace of ");
    put_task(&l, t);
    put(&l, ":");
    say(&l);
    fd = diesel__log_fd();
    n = backtrace(frames, BACKTRACE_MAX);
    backtrace_symbols_fd(frames, n, fd);
    if (t->loop != NULL)
        diesel__crash_table(t->loop, -1, "", "running (crashed)");
}

static void
fatal_handler(int sig, siginfo_t *si, void *uctx)
{
    struct diesel__task *t = diesel__current;
    struct sigaction *old = NULL;
    char *addr = si->si_addr;
    int overflow = 0;

    for (size_t i = 0; i < NFATAL; i++) {
        if (fatal[i] == sig)
            old = &old_action[i];
    }
    /* A fault inside a handler we handed a fault on to is that
     * handler's business, never ours to report. */
    if (!chained && t != NULL) {
        overflow = (sig == SIGSEGV || sig == SIGBUS) && addr < t->stack_lo &&
            addr + OVERFLOW_SLACK >= (char *)t->map_base;
        if (!__atomic_exchange_n(&reported, 1, __ATOMIC_ACQ_REL))
            crash_report(sig, si, t, overflow);
    }
    if (overflow) {
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    /* Hand the signal to whoever had it before us (a sanitizer, say). */
    if (!chained && old != NULL && (old->sa_flags & SA_SIGINFO) &&
        old->sa_sigaction != NULL) {
        chained = 1;
        old->sa_sigaction(sig, si, uctx);
        chained = 0;
        return;
    }
    if (!chained && old != NULL && !(old->sa_flags & SA_SIGINFO) &&
        old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        chained = 1;
        old->sa_handler(sig);
        chained = 0;
        return;
    }
    /* The default action: a fault returns to the faulting instruction,
     * which faults again and kills the process with the original signal;
     * a signal that was sent (kill, raise, abort) is sent again, and is
     * delivered as soon as this handler returns. */
    signal(sig, SIG_DFL);
    if (si->si_code <= 0 || sig == SIGABRT)
        raise(sig);
}

int
diesel__crash_init(void)
{
    stack_t ss, cur;

    /* Each OS thread running a loop needs an alternate stack: the
     * handler cannot run on a stack that just overflowed. */
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        size_t size = 64 * 1024;
        if (size < (size_t)SIGSTKSZ)
            size = (size_t)SIGSTKSZ;
        altstack = malloc(size);
        if (altstack != NULL) {
            ss.ss_sp = altstack;
            ss.ss_size = size;
            ss.ss_flags = 0;
            if (sigaltstack(&ss, NULL) != 0) {
                free(altstack);
                altstack = NULL;
            }
        }
    }
    if (!__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL)) {
        struct sigaction sa;
        void *warm[2];

        /* Load what backtrace() loads the first time, now. */
        backtrace(warm, 2);
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = fatal_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NFATAL; i++)
            sigaction(fatal[i], &sa, &old_action[i]);
    }
    return 0;
}

void
diesel__crash_fini(void)
{
    if (altstack != NULL) {
        stack_t ss;

        memset(&ss, 0, sizeof(ss));
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, NULL);
        free(altstack);
        altstack = NULL;
    }
}
