/*
 * crash.c: what the log says when a green thread dies of a fatal signal.
 *
 *   [2026/11/25 16:30:01] {diesel} CRITICAL:fatal signal SIGSEGV (fault at
 *       0x40) in green thread 'worker' (id 7)
 *   [...] {diesel} CRITICAL:backtrace of green thread 'worker' (id 7):
 *   crash_here (service.c:57)
 *   worker (service.c:80)
 *   [...] {diesel} CRITICAL:green threads (3):
 *   [...] {diesel} CRITICAL:  1 main waiting fd 5 read
 *   ...
 *
 * Then the default action runs, so the process dies of the original signal
 * (and dumps core) as it would have without libdiesel.  A stack overflow
 * (a fault in or just below a green thread's guard page, or a signal whose
 * frame the kernel could not push near the end of a green thread's stack)
 * is named as such and the process aborts.
 *
 * Everything here runs in a signal handler, on the alternate stack that
 * crash_init gives each OS thread running a loop: only async-signal-safe
 * calls, no locks, no malloc.  backtrace() is the exception that glibc
 * makes safe enough once it has been called (it loads libgcc_s the first
 * time), so crash_init calls it once.
 *
 * The alternate stack is every handler's that the library installs with
 * SA_ONSTACK (signal.c, console_attach.c, hog.c, here): a signal may come
 * while a green thread has only a few hundred bytes of its stack left,
 * and the kernel's frame alone takes more (3 KiB and more with AVX-512
 * state, 4.5 KiB on aarch64).  So diesel_loop_run fails rather than run a
 * loop on a thread without one, and one that the program (or a sanitizer)
 * set up already is kept only if it is as large as ours would be.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

/*
 * How far below a stack's guard page a fault still counts as an overflow
 * of that stack: code built with -fstack-clash-protection touches every
 * page, so the first fault lands in the guard page; code without it may
 * skip a little further.
 */
#define OVERFLOW_SLACK (64 * 1024)
/* What the handlers need on the alternate stack besides the kernel's
 * frame: the crash report and the console's stuck report take backtraces,
 * and the unwinder's frames are a few KiB (the stuck report used 7.5 KiB
 * of a painted stack on x86-64, kernel frame included), more under ASan.
 * ASan gives each thread an alternate stack of 4 * SIGSTKSZ, kept if it
 * is that large. */
#define HANDLER_STACK (48 * 1024)
#define BACKTRACE_MAX 64
#define TABLE_MAX 200     /* green threads listed at most */

static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
#define NFATAL (sizeof(fatal) / sizeof(fatal[0]))
static struct sigaction old_action[NFATAL];
static int installed;
static int report = 1;
static int reported;             /* one report per process */
static size_t frame_size;        /* the kernel's largest signal frame */
static __thread void *altstack;  /* this OS thread's, if we made it */
static __thread stack_t replaced; /* the smaller one it replaced, if any
                                    (ss_sp NULL: none) */
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
    diesel__sline_esc(l, t->name);
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
    const struct diesel__task *sorted[TABLE_MAX];
    size_t k = 0;
    enum diesel__state st;

    put(&l, "green threads (");
    put_u64(&l, lp->ntasks);
    put(&l, "):");
    say_to(&l, fd, prefix);
    /* By id, as tasks lists them, not in the order of the id table's
     * slots: the TABLE_MAX lowest ids, kept sorted as the slots are
     * walked (no malloc in a signal handler).  An id above the last
     * kept costs one comparison once the array is full. */
    for (size_t i = 0; i < lp->tasks_cap; i++) {
        const struct diesel__task *t = lp->tasks[i].t;
        size_t j;

        if (t == NULL || (k == TABLE_MAX && t->id > sorted[k - 1]->id))
            continue;
        j = k < TABLE_MAX ? k++ : k - 1;
        for (; j > 0 && sorted[j - 1]->id > t->id; j--)
            sorted[j] = sorted[j - 1];
        sorted[j] = t;
    }
    for (size_t i = 0; i < k; i++) {
        const struct diesel__task *t = sorted[i];

        put(&l, "  ");
        put_u64(&l, (uint64_t)t->id);
        put(&l, " ");
        /* Escaped: a newline in a name would forge a row, and end the
         * stuck report that carries this table. */
        diesel__sline_esc(&l, t->name);
        put(&l, " ");
        st = diesel__task_state(lp, t);
        put(&l, t == diesel__current ? running_label :
            diesel__task_state_name(st));
        if (st == DIESEL__WAITING || st == DIESEL__SLEEPING) {
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
                diesel__sline_esc(&l, t->wait.what ? t->wait.what : "?");
                break;
            default:
                break;
            }
        }
        say_to(&l, fd, prefix);
    }
}

/* How overflow() found the green thread's stack overflowed. */
enum { NO_OVERFLOW, FAULT_OVERFLOW, FRAME_OVERFLOW };

static void
crash_report(int sig, siginfo_t *si, struct diesel__task *t, int overflow,
    uintptr_t sp, uintptr_t pc)
{
    struct diesel__sline l = { "", 0 };
    void *frames[BACKTRACE_MAX];
    int n, fd;

    if (overflow) {
        put(&l, "stack overflow in ");
        put_task(&l, t);
        if (overflow == FRAME_OVERFLOW) {
            put(&l, ": no room for a signal frame at ");
            put_hex(&l, (uint64_t)sp);
        } else {
            put(&l, ": fault at ");
            put_hex(&l, (uint64_t)(uintptr_t)si->si_addr);
        }
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
    /* Code loaded with the console's load: say whose (console_module.c
     * marks the green thread while a module's command runs). */
    if (t->module != NULL) {
        const char *path, *name = diesel__module_name(t->module, &path);

        put(&l, ", running a command of module '");
        diesel__sline_esc(&l, name);
        put(&l, "' (");
        diesel__sline_esc(&l, path);
        put(&l, ")");
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
    diesel__frames_write(fd, frames, n, pc);
    if (t->loop != NULL)
        diesel__crash_table(t->loop, -1, "", "running (crashed)");
}

/*
 * The kernel sent this SIGSEGV itself, in place of a signal whose frame
 * it could not push where the thread was (Linux: SI_KERNEL, and no
 * address).  Unlike a fault, it does not come again once the handler
 * returns: the default action has to be raised.
 */
static int
from_kernel(const siginfo_t *si)
{
#ifdef SI_KERNEL
    return si->si_code == SI_KERNEL;
#else
    (void)si;
    return 0;
#endif
}

/* Whether sig in green thread t is its stack overflowing, and how. */
static int
overflow(int sig, const siginfo_t *si, const struct diesel__task *t,
    uintptr_t sp)
{
    /* As integers: the address may be NULL (no address at all), and
     * NULL + OVERFLOW_SLACK is undefined. */
    uintptr_t addr = (uintptr_t)si->si_addr;
    size_t frame = __atomic_load_n(&frame_size, __ATOMIC_RELAXED);

    if ((sig == SIGSEGV || sig == SIGBUS) && addr < (uintptr_t)t->stack_lo &&
        addr + OVERFLOW_SLACK >= (uintptr_t)t->map_base)
        return FAULT_OVERFLOW;
    /* A signal came with less of the stack left than its frame needs
     * (the program's handler, without SA_ONSTACK): an overflow too.  The
     * kilobyte is for the red zone and the frame's alignment. */
    if (sig == SIGSEGV && from_kernel(si) && frame > 0 &&
        sp >= (uintptr_t)t->map_base &&
        sp < (uintptr_t)t->stack_lo + frame + 1024)
        return FRAME_OVERFLOW;
    return NO_OVERFLOW;
}

static void
fatal_handler(int sig, siginfo_t *si, void *uctx)
{
    struct diesel__task *t = diesel__current;
    struct sigaction *old = NULL;
    uintptr_t sp = diesel__platform_uc_sp(uctx);
    int over = NO_OVERFLOW;

    for (size_t i = 0; i < NFATAL; i++) {
        if (fatal[i] == sig)
            old = &old_action[i];
    }
    /* A fault inside a handler we handed a fault on to is that
     * handler's business, never ours to report. */
    if (!chained && t != NULL) {
        over = overflow(sig, si, t, sp);
        if (!__atomic_exchange_n(&reported, 1, __ATOMIC_ACQ_REL))
            crash_report(sig, si, t, over, sp,
                diesel__platform_uc_pc(uctx));
    }
    if (over != NO_OVERFLOW) {
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
     * a signal that was sent (kill, raise, abort), or that the kernel sent
     * in place of one it could not deliver, is sent again, and is
     * delivered as soon as this handler returns. */
    signal(sig, SIG_DFL);
    if (si->si_code <= 0 || sig == SIGABRT || from_kernel(si))
        raise(sig);
}

/* The largest signal frame the kernel pushes on this machine: it grows
 * with the CPU's register state. */
static size_t
kernel_frame_size(void)
{
#ifdef _SC_MINSIGSTKSZ
    long n = sysconf(_SC_MINSIGSTKSZ);

    if (n > 0)
        return (size_t)n;
#endif
    return (size_t)MINSIGSTKSZ;
}

/* Give this OS thread an alternate stack of at least the kernel's frame
 * and HANDLER_STACK (and SIGSTKSZ), unless it has one that large. */
static int
altstack_init(void)
{
    size_t page = diesel__stack_page();
    size_t size = kernel_frame_size() + HANDLER_STACK;
    stack_t ss, cur;

    if (size < (size_t)SIGSTKSZ)
        size = (size_t)SIGSTKSZ;
    size = (size + page - 1) / page * page;
    if (sigaltstack(NULL, &cur) != 0)
        return -1;
    if (!(cur.ss_flags & SS_DISABLE) &&
        (cur.ss_size >= size || (cur.ss_flags & SS_ONSTACK)))
        return 0;
    altstack = malloc(size);
    if (altstack == NULL)
        return -1;
    ss.ss_sp = altstack;
    ss.ss_size = size;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        int err = errno;

        free(altstack);
        altstack = NULL;
        errno = err;
        return -1;
    }
    /* Too small: ours stands in for it while the loop runs. */
    replaced.ss_sp = NULL;
    if (!(cur.ss_flags & SS_DISABLE))
        replaced = cur;
    return 0;
}

int
diesel__crash_init(void)
{
    __atomic_store_n(&frame_size, kernel_frame_size(), __ATOMIC_RELAXED);
    /* Each OS thread running a loop needs an alternate stack: a green
     * thread's may be full (see above). */
    if (altstack_init() != 0) {
        int err = errno;

        diesel_log("diesel", DIESEL_LOG_ERROR, "cannot give this thread an "
            "alternate signal stack: %s", strerror(err));
        errno = err;
        return -1;
    }
    if (!__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL)) {
        struct sigaction sa;
        void *warm[2];

        /* Load what backtrace() loads the first time, now, and read
         * the symbols and line tables that the reports will name frames
         * with: in the handler, nothing can be read. */
        backtrace(warm, 2);
        diesel__sym_prepare();
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

        if (replaced.ss_sp != NULL) {
            ss = replaced;
            ss.ss_flags = 0;
        } else {
            memset(&ss, 0, sizeof(ss));
            ss.ss_flags = SS_DISABLE;
        }
        sigaltstack(&ss, NULL);
        free(altstack);
        altstack = NULL;
        replaced.ss_sp = NULL;
    }
}
