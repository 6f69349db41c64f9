/*
 * stack.c: green thread stacks, their guard pages, and the handler that
 * names the green thread whose stack overflowed.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "sanitize.h"

#define PURGE_KEEP ((uintptr_t)16 * 1024)  /* kept below a pooled stack's
                                              frames (see stack_purge) */

/*
 * Cache colours.  Every record would sit at the same offset in its page,
 * and with it the top of every stack: the lines that one wake-run-park
 * touches in a thousand green threads would fall into the same few cache
 * sets (the same D1 set; at a 128 KiB stack, 8 of a 1 MiB LL's 16 page
 * colours) and evict one another, however much cache is free.  So each
 * new stack puts its record a further line below the top of its page,
 * cycling over STACK_LINES lines, and every STACK_LINES stacks a further
 * page up its mapping, cycling over STACK_PAGES pages:
 *
 *   | guard, 1 + k pages | stack | record | 15 - k pages, never touched |
 *
 * The stack keeps its size; the guard grows under it (one mapping still,
 * and an overflow faults all the same), and the pages above the record
 * cost address space and no memory.  The bytes above the record in its
 * own page (at most 1,728) are never used, but that page is needed anyway.
 *
 * Why 28 lines: a round trip of a thousand connections touches each green
 * thread's hot lines (two of its record, the four or so of its top frames)
 * in a cycle, and a cache set that holds more lines of that cycle than it
 * has ways misses on every one of them.  Over 16 page colours and 16 line
 * offsets the stack tops crowded some of a 1 MiB LL's sets past its 16
 * ways (4 LL misses a round trip, counted); from about 24 offsets on they
 * fit.  The record is kept at 1 KiB (the ucontext lives apart), so that
 * even at the lowest offset 1,344 bytes of stack share its page, which
 * holds a sleeping green thread's frames: one page each, still.
 */
#define STACK_RECORD ((sizeof(struct diesel__task) + 63) / 64 * 64)
/* As many as fit beside the record (aarch64 saves more registers: its
 * record is a line or two longer, and gets that many fewer offsets). */
#define STACK_LINES_FIT ((4096 - 1344 - STACK_RECORD) / 64 + 1)
#define STACK_LINES (STACK_LINES_FIT < 28 ? STACK_LINES_FIT : 28)
#define STACK_PAGES 16
_Static_assert(STACK_RECORD + (STACK_LINES - 1) * 64 + 1344 <= 4096,
    "the record, its colours and a sleeping stack fit one 4 KiB page");
_Static_assert(STACK_LINES >= 24,
    "fewer line colours than a 1 MiB LL needs for 1,000 stack tops");
static unsigned stack_colour;    /* the next stack's (atomically) */

/* Both found out by the first loop to need them, perhaps by two at once
 * (the same answer): read and written atomically. */
static size_t page_size;
static int guard_madvise = -1;   /* -1 unknown, 1 works, 0 use mprotect */
static uint64_t mapped_stacks;   /* figures for the console (atomically) */
static uint64_t mapped_bytes;

size_t
diesel__stack_page(void)
{
    size_t page = __atomic_load_n(&page_size, __ATOMIC_RELAXED);

    if (page == 0) {
        page = (size_t)sysconf(_SC_PAGESIZE);
        __atomic_store_n(&page_size, page, __ATOMIC_RELAXED);
    }
    return page;
}

static size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static int
install_guard(void *base, size_t len)
{
    /* DIESEL_STACK_GUARD=mprotect: a debugger's core dump (gcore) reads
     * each mapping whole and drops one that has a guard region in it, and
     * with it every green thread's record; mprotect'd guard pages are
     * mappings of their own, which it skips (diesel_task(3)).  Loops on
     * several threads may both look first: they decide alike. */
    if (__atomic_load_n(&guard_madvise, __ATOMIC_RELAXED) < 0) {
        const char *e = getenv("DIESEL_STACK_GUARD");

        if (e != NULL && strcmp(e, "mprotect") == 0)
            __atomic_store_n(&guard_madvise, 0, __ATOMIC_RELAXED);
    }
    if (__atomic_load_n(&guard_madvise, __ATOMIC_RELAXED) != 0) {
        if (diesel__platform_guard(base, len) == 0) {
            __atomic_store_n(&guard_madvise, 1, __ATOMIC_RELAXED);
            return 0;
        }
        __atomic_store_n(&guard_madvise, 0, __ATOMIC_RELAXED);
    }
    return mprotect(base, len, PROT_NONE);
}

struct diesel__task *
diesel__stack_create(size_t stack_size)
{
    size_t page = diesel__stack_page();
    size_t rec = round_up(sizeof(struct diesel__task), 64);
    size_t used = round_up(stack_size + rec + (STACK_LINES - 1) * 64, page);
    size_t size = used + STACK_PAGES * page;
    unsigned n = __atomic_fetch_add(&stack_colour, 1, __ATOMIC_RELAXED);
    size_t low = (n / STACK_LINES % STACK_PAGES + 1) * page;
    struct diesel__task *t;
    char *base;
    int err;

    base = mmap(NULL, size, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (install_guard(base, low) != 0) {
        err = errno;
        munmap(base, size);
        errno = err;
        return NULL;
    }
    t = (struct diesel__task *)(base + low + used - rec -
        n % STACK_LINES * 64);
    memset(t, 0, sizeof(*t));
    t->map_base = base;
    t->map_size = size;
    t->stack_lo = base + low;
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

    free(t->uc);
    DIESEL__VALGRIND_STACK_DEREGISTER(t->valgrind_id);
    DIESEL__TSAN_DESTROY(t->tsan_fiber);
    __atomic_sub_fetch(&mapped_stacks, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&mapped_bytes, size, __ATOMIC_RELAXED);
    munmap(base, size);
}

/*
 * High-water marks come from the pages the kernel has made resident: a
 * stack is mapped with nothing committed, and its pages become resident
 * as the green thread first touches them, from the top down, and stay so.
 * So the lowest resident page is as deep as the stack has been used (to a
 * page), with no cost while the green thread runs: one mincore(2) per
 * stack, only when someone asks.  Painting the stack with a pattern would
 * commit all of it.
 *
 * A pooled stack keeps its pages, so the next green thread on it would
 * inherit the previous one's mark.  Giving them back to the kernel
 * (MADV_DONTNEED) when a green thread ends would cost a system call per
 * green thread (bench_spawn: 60 ns per spawn+run+return became 900 ns),
 * so a pooled stack is only marked dirty then, and purged later: by the
 * loop when it is about to sleep in poll (a few stacks per turn), and by
 * the console's tasks and mem before they measure.  A green thread that
 * took a dirty stack from the pool has t->dirty set: its mark may be an
 * earlier green thread's, and the console says so.  A purge keeps the
 * pages of the stack's suspended frames (trampoline, finish, the switch:
 * about a page, more under the sanitizers) and PURGE_KEEP below them, so
 * that green threads that stay shallow (most) do not fault their pages
 * in again after each purge: marks below about 20 KiB are therefore not
 * told apart from an earlier green thread's, but the deep ones, those
 * that matter, are.  Cost: one madvise(2) per purged stack, at idle, and
 * a page fault per page a later deep green thread touches again.
 */
int64_t
diesel__stack_high_water(const struct diesel__task *t)
{
    unsigned char vec[256];
    size_t page = diesel__stack_page();
    size_t pages = ((size_t)(t->stack_hi - t->stack_lo) + page - 1) / page;
    size_t done = 0;

    while (done < pages) {
        size_t k = pages - done < sizeof(vec) ? pages - done : sizeof(vec);

        if (mincore(t->stack_lo + done * page, k * page, vec) != 0)
            return -1;
        for (size_t i = 0; i < k; i++) {
            if (vec[i] & 1)
                return (int64_t)(t->stack_hi - (t->stack_lo +
                    (done + i) * page));
        }
        done += k;
    }
    return 0;
}

void
diesel__stack_purge(struct diesel__task *t)
{
    size_t page = diesel__stack_page();
    uintptr_t lo = (uintptr_t)t->stack_lo;
    uintptr_t hi = (uintptr_t)t->pool_sp & ~(uintptr_t)(page - 1);

    t->dirty = 0;
    /* Everything below the frame of finish() but the switch's few words
     * is dead.  Keep PURGE_KEEP below it all the same: the pages that
     * most green threads use stay, and only a deep one's are given back
     * (and cost a page fault each when touched again). */
    if (t->pool_sp == NULL || (uintptr_t)t->pool_sp > (uintptr_t)t->stack_hi ||
        hi < lo + PURGE_KEEP + page)
        return;
    hi -= PURGE_KEEP;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void
diesel__stack_stats(struct diesel__stack_stats *s)
{
    s->mapped = __atomic_load_n(&mapped_stacks, __ATOMIC_RELAXED);
    s->bytes = __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
    s->guard_madvise = __atomic_load_n(&guard_madvise, __ATOMIC_RELAXED) == 1;
}
