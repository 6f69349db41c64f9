/*
 * stack.c: green thread stacks, their guard pages, and the handler that
 * names the green thread whose stack overflowed.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "sanitize.h"

static size_t page_size;
static int guard_madvise = -1;   /* -1 unknown, 1 works, 0 use mprotect */
static uint64_t mapped_stacks;   /* figures for the console (atomically) */
static uint64_t mapped_bytes;

size_t
diesel__stack_page(void)
{
    if (page_size == 0)
        page_size = (size_t)sysconf(_SC_PAGESIZE);
    return page_size;
}

static size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static int
install_guard(void *base, size_t len)
{
    if (guard_madvise != 0) {
        if (diesel__platform_guard(base, len) == 0) {
            guard_madvise = 1;
            return 0;
        }
        guard_madvise = 0;
    }
    return mprotect(base, len, PROT_NONE);
}

struct diesel__task *
diesel__stack_create(size_t stack_size)
{
    size_t page = diesel__stack_page();
    size_t rec = round_up(sizeof(struct diesel__task), 64);
    size_t size = round_up(stack_size + rec, page) + page;
    struct diesel__task *t;
    char *base;
    int err;

    base = mmap(NULL, size, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (install_guard(base, page) != 0) {
        err = errno;
        munmap(base, size);
        errno = err;
        return NULL;
    }
    t = (struct diesel__task *)(base + size - rec);
    memset(t, 0, sizeof(*t));
    t->map_base = base;
    t->map_size = size;
    t->stack_lo = base + page;
    t->stack_hi = (char *)t;
    t->timer.index = DIESEL__HEAP_OUT;
    t->valgrind_id = DIESEL__VALGRIND_STACK_REGISTER(t->stack_lo,
        t->stack_hi);
    __atomic_add_fetch(&mapped_stacks, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&mapped_bytes, size, __ATOMIC_RELAXED);
    return t;
}

void
diesel__stack_destroy(struct diesel__task *t)
{
    void *base = t->map_base;
    size_t size = t->map_size;

    DIESEL__VALGRIND_STACK_DEREGISTER(t->valgrind_id);
    DIESEL__TSAN_DESTROY(t->tsan_fiber);
    __atomic_sub_fetch(&mapped_stacks, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&mapped_bytes, size, __ATOMIC_RELAXED);
    munmap(base, size);
}

void
diesel__stack_stats(struct diesel__stack_stats *s)
{
    s->mapped = __atomic_load_n(&mapped_stacks, __ATOMIC_RELAXED);
    s->bytes = __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
    s->guard_madvise = guard_madvise == 1;
}

/* ---- Stack overflow ---------------------------------------------------- */

/*
 * How far below a stack's guard page a fault still counts as an overflow
 * of that stack: code built with -fstack-clash-protection touches every
 * page, so the first fault lands in the guard page; code without it may
 * skip a little further.
 */
#define OVERFLOW_SLACK (64 * 1024)

static struct sigaction old_segv, old_bus;
static int overflow_installed;
static __thread void *altstack;   /* this OS thread's, if we made it */
static __thread int chained;      /* inside the handler we hand on to */

static void
overflow_handler(int sig, siginfo_t *si, void *uctx)
{
    struct diesel__task *t = diesel__current;
    char *addr = si->si_addr;
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;

    /* A fault inside the handler we handed a fault on to is that
     * handler's business, never an overflow of ours. */
    if (!chained && t != NULL && addr < t->stack_lo &&
        addr + OVERFLOW_SLACK >= (char *)t->map_base) {
        char msg[160];
        size_t n = 0;

        memcpy(msg + n, "stack overflow in green thread '", 32);
        n += 32;
        for (const char *p = t->name; *p != '\0'; p++)
            msg[n++] = *p;
        memcpy(msg + n, "' (id ", 6);
        n += 6;
        n += diesel__fmt_u64(msg + n, (uint64_t)t->id);
        memcpy(msg + n, "): fault at 0x", 14);
        n += 14;
        n += diesel__fmt_hex(msg + n, (uint64_t)(uintptr_t)addr);
        memcpy(msg + n, ", stack of ", 11);
        n += 11;
        n += diesel__fmt_u64(msg + n, (uint64_t)(t->stack_hi - t->stack_lo));
        memcpy(msg + n, " bytes", 7);
        diesel__log_signal_safe("diesel", DIESEL_LOG_CRITICAL, msg);
        abort();
    }
    /* Not ours: hand the fault to whoever had it before us. */
    if (!chained && (old->sa_flags & SA_SIGINFO) &&
        old->sa_sigaction != NULL) {
        chained = 1;
        old->sa_sigaction(sig, si, uctx);
        chained = 0;
        return;
    }
    if (!chained && !(old->sa_flags & SA_SIGINFO) &&
        old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        chained = 1;
        old->sa_handler(sig);
        chained = 0;
        return;
    }
    /* Default action: restore it and return, so that the instruction
     * faults again and the process dies of the original signal. */
    signal(sig, SIG_DFL);
}

int
diesel__stack_overflow_init(void)
{
    stack_t ss, cur;

    /* Each OS thread running a loop needs an alternate stack: the
     * handler cannot run on the stack that just overflowed. */
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
    if (!__atomic_exchange_n(&overflow_installed, 1, __ATOMIC_ACQ_REL)) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = overflow_handler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
        sigaction(SIGBUS, &sa, &old_bus);
    }
    return 0;
}

void
diesel__stack_overflow_fini(void)
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
