/*
 * internal.h: private structures of libdiesel and the diesel__ calls that
 * its files share.  Nothing here is part of the public interface.
 */
#ifndef DIESEL_INTERNAL_H
#define DIESEL_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <ucontext.h>

#include "diesel.h"
#include "heap.h"
#include "switch.h"

/*
 * An assertion on the round trip's path (the run queue, the park, a
 * read): checked where DIESEL_DEBUG is defined, which the sanitizer
 * builds do (Makefile), and compiled out otherwise, where each cost
 * instructions on every switch.  An assert(3) elsewhere stays as it is.
 */
#ifdef DIESEL_DEBUG
#include <assert.h>
#define DIESEL__HOT_ASSERT(x) assert(x)
#else
#define DIESEL__HOT_ASSERT(x) ((void)0)
#endif

#define DIESEL__NAME_MAX 32

/* The library's thread-local variables are defined in the program itself
 * (libdiesel is a static library, built for programs, not for shared
 * objects): the local-exec model reads one at a fixed offset from the
 * thread pointer, in one instruction, where the default first loads that
 * offset from the GOT into a register, which a park would then keep in a
 * callee-saved register across its switch, one more word of its frame on
 * the green thread's stack.  Code built as PIC but not PIE keeps the
 * default. */
#if !defined(__PIC__) || defined(__PIE__)
#define DIESEL__TLS_FIXED __attribute__((tls_model("local-exec")))
#else
#define DIESEL__TLS_FIXED
#endif

struct diesel__sync;

/* ------------------------------------------------------------------------
 * task.c
 *
 * A green thread and its stack are one mapping.  The task record sits at
 * the top, so that a stack taken from the pool comes with its record, and
 * a sleeping green thread usually costs one resident page:
 *
 *   map_base                                              map_base+map_size
 *   | guard page | stack, grows down <--------- | struct diesel__task |
 *                ^ stack_lo                     ^ stack_hi
 *
 * The guard page is MADV_GUARD_INSTALL'd where the kernel supports it (no
 * extra mapping), else mprotect'd (one more mapping per stack).
 */

enum diesel__state {
    DIESEL__READY,       /* in the run queue */
    DIESEL__RUNNING,     /* the one green thread on the CPU */
    DIESEL__WAITING,     /* parked on an fd, a join, an event... */
    DIESEL__SLEEPING,    /* parked on a timer only */
    DIESEL__DONE         /* returned; record waits for reuse */
};

enum diesel__wait_kind {
    DIESEL__WAIT_NONE,
    DIESEL__WAIT_SLEEP,  /* diesel_sleep */
    DIESEL__WAIT_FD,     /* diesel_fd_wait: fd, events */
    DIESEL__WAIT_JOIN,   /* diesel_task_join: target */
    DIESEL__WAIT_OTHER   /* what: a string set by the waiter */
};

/* What a parked green thread waits on, for the console.  What every park
 * on a descriptor and its wake touch comes first, up to since: those are
 * in the record's hot line (see struct diesel__task). */
struct diesel__wait {
    enum diesel__wait_kind kind;
    int fd;              /* WAIT_FD */
    int events;          /* WAIT_FD: DIESEL_READ/DIESEL_WRITE asked */
    int revents;         /* WAIT_FD: what was ready when woken */
    int64_t since;       /* monotonic ns when it parked */
    int64_t deadline;    /* monotonic ns of its timeout, valid while the
                            record's timed bit is set (written only then,
                            to keep a park without one off this line) */
    int64_t target;      /* WAIT_JOIN: id of the green thread */
    const char *what;    /* WAIT_OTHER: static description */
    const char *object;  /* WAIT_OTHER: the name of the object waited on
                            (an event, queue or lock), or NULL */
    const struct diesel__sync *sync; /* WAIT_OTHER: that object, or NULL
                            (sync.c: for `sync` and the deadlock report) */
};

/* acct.c: a log-scale histogram of durations in clock ticks (see
 * diesel__acct_ns): b[k] counts those of [2^k, 2^(k+1)) ticks (0 in b[0],
 * the longest in the last). */
#define DIESEL__HIST_N 48
struct diesel__hist {
    uint64_t min, max;   /* ticks; 0 while empty (min is at least 1) */
    uint32_t b[DIESEL__HIST_N];
};

/* acct.c: a green thread's time, since accounting was switched on, in
 * clock ticks (diesel__acct_ns converts). */
struct diesel__acct {
    uint64_t busy;       /* running */
    uint64_t sched;      /* ready but not running (wake to run) */
    uint64_t sched_max;  /* the longest such delay */
    uint64_t win_max;    /* ... in the console's current `top` window */
    /* The figures above when the green thread was first touched (run,
     * woken) in that window: top's deltas need no walk at its start. */
    uint64_t base_busy, base_sched, base_runs, base_wakes;
    uint64_t runs;       /* times switched in */
    uint64_t wakes;      /* times made ready by a wake */
    struct diesel__hist run;   /* run lengths */
    struct diesel__hist wait;  /* wake-to-run delays */
};

struct diesel__task {
    struct diesel__ctx ctx;       /* saved registers while not running */
    /* Everything a switch, a park on a descriptor and its wake read and
     * write comes next, up to wait.since: on x86-64, whose save area is
     * the stack pointer and the FPU control words (the registers are
     * pushed on the stack), these and the save area fill the record's
     * first line (the record is 64-byte aligned), so that a wake-run-park
     * cycle of a green thread parked on a descriptor touches one line of
     * its record and no other.  The loop is diesel__loop there, not the
     * loop field below. */
    uint64_t switches;            /* times it was switched in */
    enum diesel__state state;
    int saved_errno;              /* errno while switched out */
    int wake_err;                 /* 0, ETIMEDOUT, ECANCELED... on wake */
    unsigned cancelled : 1;       /* diesel_task_cancel was called */
    unsigned fresh : 1;           /* stack must be entered via setcontext */
    unsigned pooled : 1;          /* stack has the default size */
    unsigned daemon : 1;          /* does not keep the loop alive (a
                                     console session): see loop.c run() */
    unsigned yielded : 1;         /* suspended by diesel_task_yield's tail
                                     switch (task.c): its saved pc is in
                                     the caller of diesel_task_yield, which
                                     backtraces show as the top frame */
    unsigned timed : 1;           /* its park has a deadline: timer is in
                                     the loop's heap, wait.deadline valid */
    struct diesel__wait wait;     /* valid while WAITING/SLEEPING */
    struct diesel__task *next;    /* stack pool, dead list */
    struct diesel__heap_node timer; /* deadline of the current park */
    struct diesel_loop *loop;     /* the loop it belongs to */
    struct diesel__task *join_next; /* in the target's joiners list */
    struct diesel__task *joiners; /* green threads joined on this one */
    int64_t id;                   /* public id, > 0, never reused */
    diesel_task_fn fn;            /* body */
    void *arg;                    /* its argument */
    int status;                   /* exit status once DONE */
    struct diesel__task *join_target; /* while linked in its joiners */
    int join_status;              /* the target's status, once done */
    unsigned join_done : 1;       /* the target returned */
    struct diesel__task *wait_next; /* sync.c: in an object's FIFO wait */
    struct diesel__task *wait_prev; /* list (not next: the run queue's) */
    struct diesel__waitlist *wait_list; /* the list it is in, or NULL */
    void *wait_item;              /* sync.c: item to put, or handed over */
    int64_t longest_run;          /* hog.c: ns, its longest run without
                                     yielding that the watchdog saw (only
                                     runs past the threshold), or 0 */
    unsigned deep_warned : 1;     /* stack over 75%: logged once */
    unsigned sync_parked : 1;     /* counted in loop->sync_parked */
    unsigned dirty : 1;           /* stack.c: pages below the live frames
                                     may still be resident from an earlier
                                     green thread on this (pooled) stack */
    char *pool_sp;                /* finish()'s frame, when pooled */
    uint32_t acct_epoch;          /* acct.c: acct below counts since the
                                     loop's acct_epoch; stale (zero) if
                                     it differs */
    uint32_t acct_window;         /* acct.win_max and acct.base_* are of
                                     this window */
    uint64_t acct_in;             /* clock ticks when switched in */
    uint64_t acct_ready;          /* ... when made ready, or 0 */
    struct diesel__acct acct;
    int64_t spawned_at;           /* monotonic ns of the spawn */
    const char *where;            /* "file.c:42" of the spawn, or NULL */
    void *spawn_caller;           /* return address of the spawn call */
    const struct diesel_module *module; /* console_module.c: the loaded
                                     module whose console command it runs,
                                     or NULL (the crash report names it) */
    char name[DIESEL__NAME_MAX];
    void *map_base;               /* mapping: guard page + stack + record */
    size_t map_size;
    char *stack_lo;               /* lowest usable byte of the stack */
    char *stack_hi;               /* one past the highest (the record) */
    unsigned valgrind_id;         /* VALGRIND_STACK_REGISTER's id */
    void *asan_fake;              /* ASan's fake stack while switched out */
    void *tsan_fiber;             /* TSan's fiber handle */
    ucontext_t *uc;               /* the swapcontext fallback's context
                                     (makecontext'd entry first), malloc'd
                                     apart; NULL with the register switch,
                                     which enters through the loop's
                                     entry_uc.  In the record it took half
                                     of it, and the record and the stack's
                                     top share a page with room left for
                                     the cache colours (stack.c) */
};

/* From switches to the wait's since: the 48 bytes that, with x86-64's
 * save area of 16 (its registers are on the stack), make one line
 * (aarch64 saves more registers, and takes more). */
_Static_assert(offsetof(struct diesel__task, wait) +
    offsetof(struct diesel__wait, deadline) -
    offsetof(struct diesel__task, switches) <= 48,
    "a park and its wake touch 48 bytes of the record past its save area");
#if defined(__x86_64__) && defined(DIESEL__SWITCH_ASM)
_Static_assert(offsetof(struct diesel__task, wait) +
    offsetof(struct diesel__wait, deadline) <= 64,
    "on x86-64, the save area and what a park touches are one line");
#endif

/* A slot of the loop's table of live green threads.  The id is kept
 * beside the pointer so that a probe, or a walk over the ids, touches no
 * record: each record is on a page of its own, at the top of its stack,
 * and 100,000 of them cost 100,000 TLB misses (15 ms) to visit. */
struct diesel__task_slot {
    int64_t id;                   /* t's id; 0 when empty */
    struct diesel__task *t;       /* NULL when empty */
};

int64_t diesel__task_spawn(const char *where, void *caller, const char *name,
    diesel_task_fn fn, void *arg, size_t stack_size);
struct diesel__task *diesel__task_find(struct diesel_loop *, int64_t id);
/* Park the current green thread until woken or until deadline (monotonic
 * ns, -1 none).  Returns 0, or the wake error (ETIMEDOUT, ECANCELED...).
 * The caller fills t->wait first (kind, what...). */
int diesel__task_park(struct diesel__task *t, int64_t deadline);
/* Let the loop turn (poll, due timers, the ready queue) before the calling
 * green thread runs again; diesel_task_yield only reaches the loop every
 * POLL_BUDGET switches.  For long console commands.  0, or -1 with errno
 * ECANCELED (it does not yield once cancelled) or EPERM (no green thread). */
int diesel__task_yield_loop(void);
/* Make a parked green thread ready; it returns err from its park. */
void diesel__task_wake(struct diesel__task *t, int err);
/* Run ready green threads until none is left or the loop must poll. */
void diesel__task_run_ready(struct diesel_loop *);
/* Unmap stacks that ended and could not be pooled. */
void diesel__task_reap(struct diesel_loop *);
/* Purge up to max dirty pooled stacks (all for 0): see stack.c. */
void diesel__task_purge_pool(struct diesel_loop *, unsigned max);
void diesel__task_free_all(struct diesel_loop *);
int diesel__task_cancel(struct diesel__task *t);
void diesel__task_cancel_all(struct diesel_loop *);
/* Mark a green thread as a daemon: once only daemons are left, the loop
 * cancels them and ends when they have returned. */
void diesel__task_set_daemon(struct diesel__task *t);
/* Cancel every daemon green thread not cancelled yet. */
void diesel__task_cancel_daemons(struct diesel_loop *);
/* Call fn for every live green thread (for the console). */
void diesel__task_foreach(struct diesel_loop *,
    void (*fn)(struct diesel__task *, void *), void *arg);
/* Write the ids of the live green threads (ntasks of them), unsorted, to
 * ids; returns the count.  Reads the table only, no record. */
size_t diesel__task_ids(struct diesel_loop *, int64_t *ids);
const char *diesel__task_state_name(enum diesel__state);
/* t's state as the console shows it: ready for a green thread that the
 * poll has queued (dispatch.h) but that has not run since, whose
 * record still says waiting so that the wake need not touch it.
 * Signal-safe. */
enum diesel__state diesel__task_state(const struct diesel_loop *,
    const struct diesel__task *t);
/* The ucontext through which fresh green thread t is entered. */
ucontext_t *diesel__task_entry(struct diesel_loop *, struct diesel__task *t);
/* Make room in the run queue for n green threads: 0, or -1 (ENOMEM). */
int diesel__task_ready_reserve(struct diesel_loop *, size_t n);

/* ------------------------------------------------------------------------
 * sync.c
 *
 * Green threads parked on an event, a queue or a lock wait in a FIFO list
 * threaded through their records (wait_next, wait_prev).  A parked green
 * thread stays linked until whoever wakes it unlinks it, or until it runs
 * again and unlinks itself (timeout, cancel).
 */
struct diesel__waitlist {
    struct diesel__task *head;   /* first to be served */
    struct diesel__task *tail;   /* last to arrive */
};

/*
 * What every event, queue and lock starts with: its kind, its name, and
 * its place in the list of the objects created on its OS thread (newest
 * first), which `sync` walks.  An object is used by the green threads of
 * one loop, so it belongs to the thread that runs that loop; it is
 * created there (before the loop runs or inside it) and destroyed there.
 */
enum diesel__sync_kind {
    DIESEL__SYNC_EVENT,
    DIESEL__SYNC_QUEUE,
    DIESEL__SYNC_LOCK
};
struct diesel__sync {
    enum diesel__sync_kind kind;
    struct diesel__sync *next;   /* older object of the same thread */
    struct diesel__sync **prevp; /* the pointer that points at this one */
    char name[DIESEL__NAME_MAX]; /* cut at 31 bytes */
};
/* The newest object created on this OS thread, or NULL. */
extern __thread struct diesel__sync *diesel__syncs DIESEL__TLS_FIXED;

/* An object's state, for the console. */
struct diesel__sync_info {
    const char *kind;            /* "event", "queue", "lock" */
    const struct diesel__waitlist *waiters; /* lock, event: its waiters;
                                    queue: its getters */
    const struct diesel__waitlist *putters; /* queue: parked putters */
    int64_t holder;              /* lock: the holder's id, or 0 */
    int64_t held_since;          /* lock: monotonic ns it was taken */
    size_t length, capacity;     /* queue */
    int closed;                  /* queue: closed */
};
void diesel__sync_info(const struct diesel__sync *,
    struct diesel__sync_info *);
/* The green thread t waits for, by id (a lock's holder, a join's target),
 * or 0 if it waits for no one in particular (an event, a queue, or it is
 * not parked).  *what and *object, when not NULL, say how ("lock" and its
 * name, "join" and NULL). */
int64_t diesel__sync_waits_for(const struct diesel__task *t,
    const char **what, const char **object);
/* Call fn for each cycle of green threads waiting for each other (locks,
 * joins): ts[0] waits for ts[1] ... and ts[n-1] for ts[0].  Each cycle
 * once.  The count, or -1 (ENOMEM). */
int diesel__sync_cycles(struct diesel_loop *,
    void (*fn)(struct diesel__task *const *ts, size_t n, void *), void *arg);
/* Before t parks on a lock or a join (its wait filled in): if that
 * closes a cycle of green threads waiting for each other, log it
 * (WARNING, "deadlock: cycle: ..."). */
void diesel__sync_cycle_check(struct diesel__task *t);
/* Log the deadlock report (WARNING): who waits on what, and the cycles. */
void diesel__sync_deadlock_report(struct diesel_loop *);

/* ------------------------------------------------------------------------
 * stack.c */

/* Map a stack with room for the record at its top and a guard page. */
struct diesel__task *diesel__stack_create(size_t stack_size);
void diesel__stack_destroy(struct diesel__task *t);
size_t diesel__stack_page(void);
/* The deepest the stack of t has been used, from the pages the kernel
 * made resident (mincore): bytes from stack_hi down to the lowest
 * resident page, at page granularity; -1 when the system cannot tell. */
int64_t diesel__stack_high_water(const struct diesel__task *t);
/* Let the kernel take back the pages of a pooled stack below its live
 * frames (those of its suspended trampoline), so that the next green
 * thread's high-water mark starts from there; clears t->dirty. */
void diesel__stack_purge(struct diesel__task *t);
/* Stack memory figures of this process. */
struct diesel__stack_stats {
    uint64_t mapped;     /* stacks mapped now */
    uint64_t bytes;      /* bytes reserved for them */
    int guard_madvise;   /* 1 if guard pages are MADV_GUARD_INSTALL'd */
};
void diesel__stack_stats(struct diesel__stack_stats *);

/* ------------------------------------------------------------------------
 * crash.c */

/* Install the fatal-signal handlers (stack overflow, crash report) and
 * this OS thread's alternate signal stack; undo the latter. */
int diesel__crash_init(void);
void diesel__crash_fini(void);
/* Write the table of lp's green threads, one line each: to the log
 * (CRITICAL) if fd < 0, else to fd with each line after prefix.  The
 * running green thread's state reads running_label.  Signal-safe. */
void diesel__crash_table(struct diesel_loop *lp, int fd, const char *prefix,
    const char *running_label);

/* A signal-safe line builder (crash.c, console_stuck.c). */
struct diesel__sline {
    char b[512];
    size_t n;
};
static inline void
diesel__sline_put(struct diesel__sline *l, const char *s)
{
    while (*s != '\0' && l->n < sizeof(l->b) - 2)
        l->b[l->n++] = *s++;
    l->b[l->n] = '\0';
}
void diesel__sline_u64(struct diesel__sline *l, uint64_t v);
void diesel__sline_hex(struct diesel__sline *l, uint64_t v);

/* ------------------------------------------------------------------------
 * escape.c: the one escaping of text from elsewhere (signal-safe). */

#define DIESEL__ESC_TEXT   0    /* \xHH; for a console line or a log line */
#define DIESEL__ESC_JSON   1    /* inside a JSON string: \uXXXX, \" \\ \n \t */
#define DIESEL__ESC_QUOTED 2    /* text between quotes: " and \ as \xHH too */
#define DIESEL__ESC_WORD   4    /* one word: space and tab as \xHH too */
/* Append src[0..n), escaped, to dst at *at (dst has size bytes, and is
 * left NUL-terminated; *at moves on).  Stops before an escape that does
 * not fit whole; returns the number of input bytes consumed, so that a
 * caller can flush and go on. */
size_t diesel__escape(char *dst, size_t size, size_t *at, const char *src,
    size_t n, int mode);
/* s, escaped as text, appended to l (cut when l is full). */
void diesel__sline_esc(struct diesel__sline *l, const char *s);
/* The length of the valid UTF-8 sequence at s, or 0. */
size_t diesel__utf8_len(const unsigned char *s, size_t n);

/* ------------------------------------------------------------------------
 * loop.c */

/*
 * An observer of the loop (the crash report, the console, the hog
 * detector, the time accounting): libuv's prepare and check handles are
 * the model.  Any hook may be NULL.
 */
struct diesel__loop_hooks {
    const char *name;                /* for the reader: "console" */
    /* At the loop's start, in table order, before its first green thread
     * and after "Starting diesel" is logged.  -1 (errno set) ends the run
     * before it begins: the hooks started before it are ended. */
    int (*start)(struct diesel_loop *);
    /* At the loop's end, in reverse order, once no green thread is left. */
    void (*end)(struct diesel_loop *);
    /* Each turn, once the ready green threads have run: right before the
     * loop waits in poll (or would, when nothing is watched and some green
     * thread is ready again), and right after, with l->now updated and
     * before the timers and descriptors that came due are dispatched. */
    void (*before_poll)(struct diesel_loop *);
    void (*after_poll)(struct diesel_loop *);
};
/* observers.c: every observer, in start order; a NULL name ends it. */
extern const struct diesel__loop_hooks diesel__loop_observers[];

/* Called from the loop's own context (no green thread runs) when an fd
 * watched with diesel__loop_handler_add is ready.  It must not block. */
typedef void (*diesel__fd_handler)(struct diesel_loop *, int fd, int events);

/*
 * A descriptor as the loop sees it.  Its reader and writer point at a
 * green thread only while it is parked on the descriptor and not yet
 * woken: whatever wakes it (the poll, its deadline, a cancel, a close)
 * clears them.  A green thread parked on a descriptor whose entry no
 * longer points at it is in the run queue, though its state still says
 * waiting (see diesel__task_state).
 *
 * 16 bytes, four to a cache line: the poll's wake and the park each read
 * the entry, and with thousands of connections the line is gone from
 * the cache in between.  A record is 64-byte aligned, so each word's low
 * bits are free for flags: DIESEL__FD_REG in rd and wr, the backend
 * watches that direction now; DIESEL__FD_HANDLER in rd, the loop's
 * handlers[fd] is called instead of waking a green thread (the console's
 * self-pipe, a loop's mailbox); DIESEL__FD_WAKER in wr, of such a
 * descriptor: its handler counts in loop->wakers (the self-pipe does, the
 * mailbox does not).  Read and write them through the functions below.
 */
struct diesel__fd {
    /* Pointers, though tagged, rather than integers: the compiler may
     * then take the run queue's integer stores, which the poll's wake
     * makes between reading and clearing these, to be elsewhere. */
    void *rd;                    /* green thread waiting for DIESEL_READ */
    void *wr;                    /* ... for DIESEL_WRITE */
};
#define DIESEL__FD_REG ((uintptr_t)1)
#define DIESEL__FD_HANDLER ((uintptr_t)2)
#define DIESEL__FD_WAKER ((uintptr_t)2)  /* in wr, of a handler's fd: it
                                            counts in loop->wakers */
#define DIESEL__FD_FLAGS ((uintptr_t)3)
_Static_assert(DIESEL_READ == 1 && DIESEL_WRITE == 2,
    "diesel__fd_registered builds the events from the two REG bits");

static inline struct diesel__task *
diesel__fd_reader(const struct diesel__fd *f)
{
    return (struct diesel__task *)((uintptr_t)f->rd & ~DIESEL__FD_FLAGS);
}

static inline struct diesel__task *
diesel__fd_writer(const struct diesel__fd *f)
{
    return (struct diesel__task *)((uintptr_t)f->wr & ~DIESEL__FD_FLAGS);
}

static inline void
diesel__fd_set_reader(struct diesel__fd *f, struct diesel__task *t)
{
    f->rd = (void *)(((uintptr_t)f->rd & DIESEL__FD_FLAGS) | (uintptr_t)t);
}

static inline void
diesel__fd_set_writer(struct diesel__fd *f, struct diesel__task *t)
{
    f->wr = (void *)(((uintptr_t)f->wr & DIESEL__FD_FLAGS) | (uintptr_t)t);
}

/* The events the backend watches now. */
static inline int
diesel__fd_registered(const struct diesel__fd *f)
{
    return (int)((uintptr_t)f->rd & DIESEL__FD_REG) |
        (int)((uintptr_t)f->wr & DIESEL__FD_REG) << 1;
}

static inline void
diesel__fd_set_registered(struct diesel__fd *f, int events)
{
    f->rd = (void *)(((uintptr_t)f->rd & ~DIESEL__FD_REG) |
        ((events & DIESEL_READ) ? DIESEL__FD_REG : 0));
    f->wr = (void *)(((uintptr_t)f->wr & ~DIESEL__FD_REG) |
        ((events & DIESEL_WRITE) ? DIESEL__FD_REG : 0));
}

/* The exit status of a green thread that returned, kept for a late join. */
struct diesel__exited {
    int64_t id;
    int status;
};
#define DIESEL__EXITED_KEEP 4096

/* hog.c: one of the longest runs without yielding, for `stats`. */
#define DIESEL__RUNS_TOP 5
struct diesel__run {
    int64_t id;
    int64_t len;                     /* ns, 0 for an empty slot */
    char name[DIESEL__NAME_MAX];
};

struct diesel_loop {
    struct diesel__ctx ctx;          /* the loop's own (OS thread) context */
    /* The run queue, FIFO: a ring of record addresses, each or'ed with
     * the events (DIESEL_READ, DIESEL_WRITE) that woke it from a wait on
     * a descriptor (records are 64-byte aligned), or 0.  A ring, not a
     * list through the records, so that queueing a green thread writes
     * nothing in its record: the poll's wake (dispatch.h) touches
     * the descriptor's entry and this ring, and the record is first
     * touched when it is switched to (park.h). */
    uintptr_t *ready;
    size_t ready_head;               /* entries taken off since the
                                        ring was last empty at a poll
                                        (loop.c run, which resets both):
                                        the head is ready[head & mask] */
    size_t ready_tail;               /* entries put on since then (so
                                        that tail - head are queued) */
    size_t ready_mask;               /* ready_cap - 1 */
    size_t poll_left;                /* switches left before the next
                                        poll: every green thread ready at
                                        the last one, POLL_BUDGET at least
                                        (task.c) */
    size_t ready_cap;                /* a power of two, at least ntasks:
                                        reserved at each spawn, so that a
                                        wake never allocates */
    int saved_errno;                 /* its errno while a task runs */
    int *errno_ptr;                  /* &errno of this OS thread */
    uint64_t switches;               /* context switches (for the
                                        console): written only
                                        by the loop's thread, with relaxed
                                        atomic stores so that the watchdog
                                        may read it (hog.c) */
    struct diesel__acct_loop *acct;  /* acct.c: time accounting, or NULL
                                        while it is off (every switch
                                        tests it: keep it in this line) */
    uint32_t acct_epoch;             /* acct.c: bumped each time it is
                                        switched on (0: never) */
    struct diesel__task *acct_to;    /* park.h: the switch's target,
                                        kept here across accounting's
                                        call rather than on the stack */
    struct diesel__heap timers;      /* parked green threads by deadline */
    int64_t now;                     /* monotonic ns, cached per turn:
                                        also when the current turn began
                                        (console_stuck.c reads it from a
                                        signal handler: stored with
                                        relaxed atomics) */
    int in_poll;                     /* 1 while the loop waits in poll
                                        (relaxed atomics, as above) */
    void *backend;                   /* the poll backend's own state */
    struct diesel__fd *fds;          /* indexed by fd */
    diesel__fd_handler *handlers;    /* by fd too, where fds says so */
    int nfds;                        /* size of fds and handlers */
    int watched;                     /* fds the backend watches */
    int fd_waiters;                  /* green threads parked on fds and
                                        not woken yet: counted up by the
                                        park, down by whatever takes them
                                        off the descriptor's entry (the
                                        poll's wake, diesel__task_wake, a
                                        park that did not happen) */
    int wakers;                      /* other sources that can wake a
                                        parked green thread (the console's
                                        self-pipe) */
    struct diesel__task_slot *tasks; /* live green threads by id: an
                                        open-addressing hash table */
    size_t tasks_cap;                /* a power of two, or 0 */
    int64_t last_id;                 /* ids are 1, 2, 3... */
    struct diesel__exited *exited;   /* ring of recent exit statuses */
    size_t exited_next;              /* next slot to overwrite */
    uint64_t ntasks;                 /* green threads not DONE */
    uint64_t ndaemons;               /* ... of which daemons */
    struct diesel__task *pool;       /* default-size stacks to reuse */
    unsigned npool;
    unsigned npool_dirty;            /* ... of which dirty (stack.c) */
    struct diesel__task *dead;       /* stacks to unmap from the loop */
    int64_t main_id;                 /* the first green thread */
    void *asan_fake;                 /* as in struct diesel__task */
    const void *asan_bottom;         /* the OS thread's stack, for ASan */
    size_t asan_size;
    int asan_from_loop;              /* the switch in flight left the loop */
    void *tsan_fiber;
    int main_status;
    int stop_status;
    unsigned stopping : 1;
    unsigned deadlocked : 1;
    unsigned deadlock_reported : 1;  /* the current episode was logged */
    uint64_t sync_parked;            /* green threads, daemons aside,
                                        parked on an event, queue, lock or
                                        join without a deadline (sync.c,
                                        task.c) */
    unsigned daemons_cancelled : 1;  /* only daemons were left: cancelled */
    struct diesel__hog *hog;         /* hog.c: the watchdog, or NULL */
    struct diesel__run runs[DIESEL__RUNS_TOP]; /* longest runs, longest
                                        first (len 0: empty slot) */
    /* Figures for the console. */
    int64_t started;                 /* monotonic ns at start */
    uint64_t iterations;             /* turns of the loop */
    uint64_t polls;                  /* poll system calls */
    int64_t polled_at;               /* monotonic ns of the last one */
    uint64_t events;                 /* descriptors they reported */
    uint64_t spawned;                /* green threads spawned */
    /* debug.c: the process-wide list of running loops that debuggers
     * read (diesel_debug_root), and this loop's OS thread as they name
     * it.  Written at the loop's start and end only. */
    struct diesel_loop *debug_next;  /* the next running loop, or NULL */
    int64_t debug_lwp;               /* its OS thread's id (Linux: the
                                        tid), or -1 where unknown */
    struct diesel__loopent *loops;   /* loops.c: its registry entry (name,
                                        mailbox), from start to end */
    ucontext_t uc;                   /* the loop's context as a ucontext,
                                        for the fallback (last: it is
                                        large and seldom used) */
    ucontext_t entry_uc;             /* with the register switch, made to
                                        enter a fresh stack at the switch
                                        to it (diesel__task_entry) */
};

extern __thread struct diesel_loop *diesel__loop DIESEL__TLS_FIXED;
extern __thread struct diesel__task *diesel__current DIESEL__TLS_FIXED;

/* Every green thread but the daemons is parked on an event, a queue, a
 * lock or a join with no deadline: none of them can be woken by a timer,
 * a descriptor or a signal, only by another of them (loop.c). */
static inline int
diesel__sync_all_parked(const struct diesel_loop *l)
{
    return l->ntasks > l->ndaemons &&
        l->sync_parked == l->ntasks - l->ndaemons;
}
/* Count t in loop->sync_parked while it parks with no deadline on an
 * object or a join (daemons aside); _unpark undoes it. */
static inline void
diesel__sync_park(struct diesel__task *t, int64_t deadline)
{
    if (deadline < 0 && !t->daemon) {
        t->sync_parked = 1;
        t->loop->sync_parked++;
    }
}
static inline void
diesel__sync_unpark(struct diesel__task *t)
{
    if (t->sync_parked) {
        t->sync_parked = 0;
        t->loop->sync_parked--;
    }
}

int64_t diesel__now_ns(void);
/* The monotonic ns deadline of a timeout in ms: -1 for -1 (forever) and
 * for timeouts too far away to represent. */
int64_t diesel__deadline(int64_t timeout_ms);
/* The calling green thread, or NULL (and errno EPERM, one log line naming
 * func) when called outside one. */
struct diesel__task *diesel__misuse(const char *func);
/* Entries in the run queue. */
static inline size_t
diesel__nready(const struct diesel_loop *l)
{
    return l->ready_tail - l->ready_head;
}
static inline struct diesel__task *
diesel__running(const char *func)
{
    struct diesel__task *t = diesel__current;

    return t != NULL ? t : diesel__misuse(func);
}
/* Ensure fd is watched for events (added to what is watched already).
 * Its entry (the table may have grown), or NULL with errno. */
struct diesel__fd *diesel__loop_watch(struct diesel_loop *, int fd,
    int events);
/* Wake fd's waiters with err and stop watching it. */
void diesel__loop_forget(struct diesel_loop *, int fd, int err);
/* Watch fd for events only (0: not at all); a failure is left for the
 * next event to try again (dispatch.h). */
void diesel__loop_disarm(struct diesel_loop *, int fd, int events);
/* Watch fd for reading with a handler called from the loop instead of a
 * green thread; it counts as a waker (see run() in loop.c) if waker is
 * 1.  A loop's mailbox (loops.c) is not one: it only runs the console's
 * commands, never wakes the program's green threads. */
int diesel__loop_handler_add(struct diesel_loop *, int fd,
    diesel__fd_handler handler, int waker);
void diesel__loop_handler_del(struct diesel_loop *, int fd);

/* ------------------------------------------------------------------------
 * chan.c: channels between loops. */

/* Writes to the channel's wake descriptors so far (a test counts them). */
uint64_t diesel__chan_wakes(struct diesel_chan *);
/* Green threads parked in its send and receive calls now. */
unsigned diesel__chan_parked(struct diesel_chan *);

/* ------------------------------------------------------------------------
 * hog.c: hog warnings.  A watchdog thread, only while they are on. */

/* At loop start: start the watchdog if diesel_loop_hog_warn or
 * DIESEL_HOG_MS asked for it; at loop end: stop it (joined). */
void diesel__hog_loop_start(struct diesel_loop *);
void diesel__hog_loop_end(struct diesel_loop *);
/* Once per turn of the loop while the watchdog runs: record the length of
 * a hogging episode that ended (cheap when none did). */
void diesel__hog_settle(struct diesel_loop *);
static inline void
diesel__hog_turn(struct diesel_loop *l)
{
    if (l->hog != NULL)
        diesel__hog_settle(l);
}
/* The threshold in ms, 0 when off. */
int64_t diesel__hog_threshold(struct diesel_loop *);

/* ------------------------------------------------------------------------
 * acct.c: time accounting (diesel_loop_account(3)).  Off, it costs one
 * test of l->acct per switch and per wake; on, one read of a cheap clock
 * per switch and per wake. */

/* The loop-wide figures, while accounting is on. */
struct diesel__acct_loop {
    int sticky;                      /* on by the API, the environment or
                                        the console's `account on` */
    unsigned holds;                  /* console windows (top) holding it
                                        on; off when 0 and not sticky */
    int64_t since;                   /* monotonic ns when switched on */
    uint64_t since_tick;             /* ... in clock ticks */
    uint64_t poll_tick;              /* ticks when the loop began to poll */
    uint64_t poll;                   /* ticks waited in poll since */
    uint64_t busy;                   /* ticks run by green threads since */
    uint64_t turns;                  /* turns of the loop since */
    uint32_t window;                 /* current `top` window: see
                                        struct diesel__acct's base_* */
    struct diesel__hist run;         /* every green thread's run lengths */
    struct diesel__hist wait;        /* ... and wake-to-run delays */
};

void diesel__acct_switch(struct diesel_loop *, struct diesel__task *from,
    struct diesel__task *to);
void diesel__acct_wake(struct diesel_loop *, struct diesel__task *t,
    int woken);
/* Hold accounting on (for a console window), and let go: 0, or -1 with
 * errno ENOMEM. */
int diesel__acct_hold(struct diesel_loop *);
void diesel__acct_release(struct diesel_loop *);
/* Switch it on or off for good (the API, the console's `account`). */
int diesel__acct_set(struct diesel_loop *, int on);
/* t's figures, zero if counted before accounting was last switched on. */
static inline int
diesel__acct_fresh(const struct diesel_loop *l, const struct diesel__task *t)
{
    return l->acct != NULL && t->acct_epoch == l->acct_epoch;
}
/* The clock's name ("rdtsc", "cntvct", "clock_gettime"). */
const char *diesel__acct_clock_name(void);
/* Clock ticks to ns. */
uint64_t diesel__acct_ns(uint64_t ticks);
/* The duration (ticks) that a histogram's q quantile (0..1) falls in: the
 * upper bound of its bucket, within [min, max]. */
uint64_t diesel__hist_quantile(const struct diesel__hist *, double q);
uint64_t diesel__hist_count(const struct diesel__hist *);

/* Observer hooks (observers.c). */
int diesel__acct_loop_start(struct diesel_loop *);
void diesel__acct_loop_end(struct diesel_loop *);
void diesel__acct_before_poll(struct diesel_loop *);
void diesel__acct_after_poll(struct diesel_loop *);

/* ------------------------------------------------------------------------
 * debug.c: what a debugger reads to find the green threads of a live
 * process or a core file (tools/diesel-gdb.py): the root symbol
 * diesel_debug_root, whose layout debug.c draws, and the list of running
 * loops it leads to. */

/* Where a switched-out context keeps each register that a debugger needs
 * to unwind it: byte offsets from the start of the save area, under the
 * names gdb gives the registers.  Indirect (x86-64's register switch,
 * which pushes them on the green thread's stack): the offsets are from
 * the address in the save area's first word, and one with the top bit
 * set is a stack pointer, that address plus the rest of it. */
#define DIESEL__DEBUG_REGS_MAX 16
#define DIESEL__DEBUG_REGS_ADDR (UINT64_C(1) << 63)
struct diesel__debug_regs {
    uint32_t n;                      /* entries used */
    uint32_t indirect;               /* 1: see above */
    struct {
        const char *name;            /* "rsp", "rip", "x19"... */
        uint64_t off;                /* from the save area's start */
    } r[DIESEL__DEBUG_REGS_MAX];
};

/* Observer hooks (observers.c): the loop joins the list and leaves it. */
int diesel__debug_loop_start(struct diesel_loop *);
void diesel__debug_loop_end(struct diesel_loop *);
/* loops.c: the registry of running loops (names, mailboxes); observer
 * hooks. */
int diesel__loops_start(struct diesel_loop *);
void diesel__loops_end(struct diesel_loop *);

/* loops.c, the console's signal handler's view of the loops (issue 13):
 * atomics only, async-signal-safe.  _route hands an attach request to a
 * loop other than stuck that is turning (not stuck by diesel__stuck_for),
 * through a slot and a write to its mailbox; that loop's on_mail attaches
 * it (diesel__console_attach_record) and the session lives there: 1, or
 * 0 if no loop can take it.  _view calls fn for each loop the handler can
 * see, in the order of their slots (start order, unless one ended),
 * keeping them from ending meanwhile; with fn NULL it only counts them.
 * The count of loops seen; *hidden, if not NULL, the loops it cannot see
 * (started while its slots were all taken). */
struct diesel__loop_view {
    struct diesel_loop *loop;
    pthread_t thread;
    int64_t tid;
    int blocks;                  /* its thread blocks the signal given */
    char name[DIESEL__NAME_MAX];
};
int diesel__loops_route(struct diesel_loop *stuck, int32_t pid,
    int32_t uid, int32_t code, int32_t nonce);
unsigned diesel__loops_view(int signo, void (*fn)(void *,
    const struct diesel__loop_view *), void *arg, unsigned *hidden);

/* ------------------------------------------------------------------------
 * console_attach.c: a loop picks up the console's self-pipe when it starts
 * on the thread that installed the console, and lets go of it at its end. */

void diesel__console_loop_start(struct diesel_loop *);
void diesel__console_loop_end(struct diesel_loop *);
/* A request the handler routed to loop l (loops.c): attached there, with
 * every check of the self-pipe's requests; _requeue, signal-safe, puts
 * one that no loop took back on the self-pipe. */
void diesel__console_attach_record(struct diesel_loop *l, int32_t pid,
    int32_t uid, int32_t code, int32_t nonce);
void diesel__console_requeue(int32_t pid, int32_t uid, int32_t code,
    int32_t nonce);

/* ------------------------------------------------------------------------
 * console_stuck.c: when a green thread holds the loop for long, the
 * console's signal handler answers the request itself (DESIGN.md, "When
 * the loop is stuck").  Everything but _setup runs in a signal handler. */

/* The rendezvous directory, computed beforehand (getenv, snprintf are no
 * use in a handler): at install and when a loop starts. */
void diesel__stuck_setup(const char *dir);
/* The loop watching the console's pipe (on this OS thread), or NULL;
 * with NULL, waits for handlers still looking at the old one. */
void diesel__stuck_loop(struct diesel_loop *);
/* How long a loop may take to answer a command posted from another loop
 * (loops.c): the stuck threshold, or 10 s while it is off. */
int64_t diesel__stuck_after_ns(void);
/* In the handler: 1 if the request (pid, nonce) was answered here, with
 * the report, or handed to the loop's thread (which then answers it);
 * 0 if the loop is not stuck and the caller queues it as usual.  For
 * SI_TKILL, _forwarded takes a handed-over request, if one waits and this
 * is the loop's thread: 0 none; 1 answered; 2 the loop is no longer
 * stuck, so the caller queues *pid, *uid, *nonce as usual. */
int diesel__stuck_handle(int signo, int32_t pid, int32_t uid,
    int32_t nonce, void *uctx);
int diesel__stuck_forwarded(int signo, int32_t *pid, int32_t *uid,
    int32_t *nonce, void *uctx);
/* A report of a loop that did not run a command in time, for a session
 * on another loop (loops.c): _ask hands fd and the loop l to l's thread
 * th with the console's signal signo, whose handler (_forwarded, 1 if the
 * signal was for it) writes the report there, as the stuck report's lines
 * indented, and shuts fd's writing side down; _done, once the asker has
 * read it or gave up, frees the one slot (waiting while the handler
 * writes).  _ask: 0, or -1 with errno EBUSY (another session asks) or
 * ESRCH. */
int diesel__stuck_report_ask(pthread_t th, struct diesel_loop *l, int fd,
    int signo);
void diesel__stuck_report_done(void);
int diesel__stuck_report_forwarded(void *uctx);
/* How long l's current turn has lasted if it is stuck (not in poll, past
 * the threshold), else -1: atomics only, from any thread while l runs. */
int64_t diesel__stuck_for(struct diesel_loop *l);
/* The console's signal, or 0 while it is not installed. */
int diesel__console_signo(void);
/* The request (pid, nonce) that was last served, by the handler or the
 * loop: so that a request signalled twice attaches once. */
int diesel__console_seen(int32_t pid, int32_t nonce);
void diesel__console_mark_seen(int32_t pid, int32_t nonce);
/* The greeting line with its newline, signal-safe; its length. */
size_t diesel__console_greeting(char *buf, size_t size, int32_t nonce);
/* console_client.c: "DIESEL-CONSOLE <version> pid=<pid> program=<comm>
 * nonce=<nonce>": 0 with *version, and for version 1 *pid and *nonce;
 * -1 if it is no greeting. */
int diesel__console_greeting_parse(const char *line, long *version,
    long *pid, long long *nonce);
/* The rendezvous directory of uid: dir if not NULL, else what
 * diesel-console(7) says.  0, or -1 ENAMETOOLONG. */
int diesel__console_rendezvous(uid_t uid, const char *dir, char *buf,
    size_t size);
/* Open the rendezvous directory dir (O_DIRECTORY | O_NOFOLLOW) and check
 * it through the descriptor: uid's (the service passes its effective
 * uid), no group or other bits.  The descriptor, or -1 with *why one of DIESEL__DIR_* (errno set
 * for DIESEL__DIR_OPEN).  Async-signal-safe. */
enum {
    DIESEL__DIR_OK,
    DIESEL__DIR_OPEN,       /* open(2) failed: errno says why */
    DIESEL__DIR_SYMLINK,    /* a symbolic link */
    DIESEL__DIR_NOTDIR,     /* not a directory */
    DIESEL__DIR_OWNER,      /* someone else's */
    DIESEL__DIR_MODE,       /* others may enter it */
};
int diesel__console_dir_open(const char *dir, uid_t uid, int *why,
    struct stat *st);
/* Write this process's advertisement, service-<pid> in dir (created 0700
 * if missing), atomically: what dconsole checks before it signals.  0, or
 * -1 with why (size bytes) saying what went wrong. */
int diesel__console_advertise(const char *dir, int signo, char *why,
    size_t size);

/* ------------------------------------------------------------------------
 * conn.c
 *
 * The receive buffer holds bytes read but not yet handed out:
 *
 *   buf                 buf+off          buf+off+len           buf+cap
 *   | consumed (garbage) | unread bytes... | room to read into... |
 *
 * It is allocated at the first receive that needs it, compacted (moved to
 * the front) when the room at its end runs out, grows only as far as the
 * call being served asked for (recv_until's max, recv_exactly's len), and
 * is freed again when it empties after growing past CONN_BUF_KEEP.
 */
struct diesel_server;

struct diesel_conn {
    int fd;
    int rerr;                    /* sticky receive error, or 0 */
    /* Flags, a byte each rather than bits: every receive sets and clears
     * reading and sets drained, a store each where a bit is a load, a
     * mask and a store (the struct is no bigger: the pointer below is
     * 8-byte aligned). */
    unsigned char eof;           /* read(2) returned 0 */
    unsigned char drained;       /* the last read was short: the socket is
                                    presumed empty, so park before reading */
    unsigned char reading;       /* a receive call is in progress */
    unsigned char writing;       /* a send call is in progress */
    unsigned char closed;        /* closed during a call: free at its end */
    unsigned char failed;        /* rerr is set */
    char *buf;                   /* receive buffer (above), or NULL */
    size_t cap;                  /* its size */
    size_t off;                  /* first unread byte */
    size_t len;                  /* unread bytes */
    size_t wlen;                 /* bytes waiting to be sent */
    /* A receive and a send touch the fields up to here (56 bytes, one
     * cache line: conn.c allocates it line-aligned) and no further. */
    char *wbuf;                  /* diesel_conn_write's output, or NULL */
    size_t wcap;                 /* its size */
    size_t wroom;                /* the lesser of wcap and whigh, at least
                                    wlen: a write of up to wroom - wlen
                                    bytes is a copy and nothing more */
    size_t whigh;                /* high-water mark of wbuf */
    int64_t wtimeout;            /* how long a write past it may wait, ms */
    struct diesel_server *server; /* the server that accepted it, or NULL */
    char *peer;                  /* printable peer, cached, or NULL */
};

/* Wrap fd, which is already non-blocking and close-on-exec; peer may be
 * NULL.  NULL (errno ENOMEM) on failure, leaving fd open. */
struct diesel_conn *diesel__conn_wrap(int fd, const char *peer);

/* ------------------------------------------------------------------------
 * net.c */

/* Longest printable address: "unix:" and a 108-byte path, or a bracketed
 * IPv6 address with a scope and a port. */
#define DIESEL__ADDR_MAX 128

/* Format a socket address as "1.2.3.4:5", "[::1]:5", "unix:/path"; the
 * fd's own address stands in for an unnamed UNIX peer.  0, or -1 ENOSPC. */
int diesel__addr_format(const void *sa, unsigned salen, int fd, char *buf,
    size_t len);

/* The deadline of a timeout in ms (-1 or more), as the connection calls
 * pass it on: -1 none, 0 never block (diesel__deadline has no such case),
 * else monotonic ns. */
int64_t diesel__conn_deadline(int64_t timeout_ms);

/* ------------------------------------------------------------------------
 * poll_*.c: the backend contract (one file is linked in). */

extern const char diesel__poll_name[];
int diesel__poll_init(struct diesel_loop *);
void diesel__poll_fini(struct diesel_loop *);
/* Change what fd is watched for from old to events (0 removes it). */
int diesel__poll_set(struct diesel_loop *, int fd, int old, int events);
/* Wait up to timeout_ms (-1 forever); returns the count of events, 0 on
 * EINTR, -1 on error.  The loop then runs its timers, and then: */
int diesel__poll_wait(struct diesel_loop *, int timeout_ms);
/* Hand each of the n events of the last wait, one per descriptor, to
 * diesel__loop_fired (dispatch.h), in the order the kernel gave them. */
void diesel__poll_dispatch(struct diesel_loop *, int n);

/* ------------------------------------------------------------------------
 * log.c */

/* The descriptor log lines go to. */
int diesel__log_fd(void);
/* Log from a signal handler: no locks, no malloc, no stdio. */
void diesel__log_signal_safe(const char *logger, int level, const char *msg);
/* Signal-safe formatting helpers, for crash messages. */
size_t diesel__fmt_u64(char *buf, uint64_t v);
size_t diesel__fmt_hex(char *buf, uint64_t v);
/* Lines kept for `log tail` by default, and at most. */
#define DIESEL__LOG_KEEP_DEFAULT 1000
#define DIESEL__LOG_KEEP_MAX 1000000
struct diesel__log_kept {
    size_t capacity;     /* lines the ring holds (diesel_log_keep) */
    size_t kept;         /* lines in it now */
    uint64_t total;      /* lines kept since the start (or the last
                            diesel_log_keep that changed the size) */
};
/* Call fn for each of the last n lines kept, oldest first (each without
 * its newline), under the log's lock: fn must not log.  How many. */
size_t diesel__log_tail(size_t n, void (*fn)(const char *line, void *),
    void *arg, struct diesel__log_kept *info);
/* Call fn, as above, for each line kept from number seq on (lines are
 * numbered from 0 as they are kept; total is the next number); *lost
 * says how many of those were pushed out already.  The next seq. */
uint64_t diesel__log_since(uint64_t seq, void (*fn)(const char *line,
    void *), void *arg, uint64_t *lost);
/* Call fn for the default level (name NULL) and then for each logger in
 * use (given a level, or logged to), with its effective level and whether
 * that level is its own, on a copy taken under the lock (fn may log). */
void diesel__log_foreach(void (*fn)(const char *name, int level, int own,
    void *), void *arg);

/* ------------------------------------------------------------------------
 * platform_*.c */

/* Turn the page at addr into a guard page without a new mapping; 0 on
 * success, -1 if the kernel cannot (the caller falls back to mprotect). */
int diesel__platform_guard(void *addr, size_t len);
/* vm.max_map_count and the mappings in use, or -1 where unknown. */
long diesel__platform_map_limit(void);
long diesel__platform_map_count(void);
/* The pid and effective uid of a connected UNIX socket's peer; a pid of -1
 * where the system cannot tell it.  0, or -1 with errno. */
int diesel__platform_peer_cred(int fd, pid_t *pid, uid_t *uid);
/* send(2) that never raises SIGPIPE (EPIPE instead). */
ssize_t diesel__platform_send(int fd, const void *buf, size_t len);
/* The program's short name (for the console greeting). */
const char *diesel__platform_progname(void);
/* This process's start time as the system keeps it (Linux: clock ticks
 * since boot, field 22 of /proc/PID/stat; the BSDs: microseconds since
 * the epoch), the same figure dconsole reads from outside: the console's
 * advertisement carries it, so that a reused pid does not match. */
int diesel__platform_start_time(uint64_t *t);
/* Connect the UNIX socket fd to name inside the directory open as dirfd
 * (dir is its path, for systems that can only connect by path): the
 * directory checked is the one connected in, whatever its path names
 * now.  Async-signal-safe.  0, or -1 with errno. */
int diesel__platform_connect_at(int fd, int dirfd, const char *dir,
    const char *name);
/* Bind the UNIX socket fd to name inside the directory open as dirfd, as
 * diesel__platform_connect_at connects: a path swapped for a symlink
 * after the directory was checked is not followed. */
int diesel__platform_bind_at(int fd, int dirfd, const char *dir,
    const char *name);

/* What the attaching side needs to know about another process. */
struct diesel__proc {
    pid_t pid;
    uid_t uid;          /* effective uid: what its connect(2) carries */
    char state;         /* 'Z' zombie, 'T' stopped, 'R' running or
                           runnable, 'S'... '?' */
    int catches;        /* it has a handler for the signal asked about */
    int ignores;        /* it ignores that signal */
    char comm[64];      /* command name, as the system keeps it */
    long uptime;        /* seconds since it started, -1 if unknown */
    uint64_t start;     /* its start time, the figure
                           diesel__platform_start_time gives that process
                           (its console advertisement holds it); 0 if
                           unknown */
    double born;        /* when it started, seconds since the epoch; -1 */
};
/* Fill *p for pid, with catches/ignores for signo.  -1 with errno ESRCH
 * when there is no such process (zombies count as gone), EACCES when the
 * system will not say. */
int diesel__platform_proc_get(pid_t pid, int signo, struct diesel__proc *p);
/* Call fn for every process that catches signo (0: every process) and
 * that we may see; stop early when fn returns non-zero. */
int diesel__platform_proc_each(int signo,
    int (*fn)(const struct diesel__proc *, void *), void *arg);
/* A handle on pid taken before it is checked (a pidfd on Linux), so that
 * the process checked is the process signalled, or -1 where the system
 * has none (errno ENOSYS); -1 with errno ESRCH when there is no such
 * process. */
int diesel__platform_pid_open(pid_t pid);
/* Send signo to pid carrying *value, through pidfd when it is not -1
 * (ESRCH if that process has gone, even if its pid is someone else's
 * now), else sigqueue.  Where sigqueue does not exist a plain kill(2) is
 * sent and *value is set to 0, which is what the other side then sees. */
int diesel__platform_signal_send(pid_t pid, int pidfd, int signo,
    int32_t *value);
/* Why pid may not answer a console request, as far as can be seen from
 * outside: a sentence in buf and 1, or 0 when nothing is seen. */
int diesel__platform_diagnose(pid_t pid, int signo, char *buf, size_t size);
/* A random positive 31-bit number. */
int32_t diesel__platform_random31(void);
/* A descriptor pair that another OS thread can make readable: fds[0] to
 * wait on and read, fds[1] to write 8 bytes to (an eventfd twice, or a
 * pipe), both non-blocking and close-on-exec.  0, or -1 with errno. */
int diesel__platform_wakefd(int fds[2]);
/* Make the listening socket fd share its port with the other sockets
 * of the process that ask the same, the kernel spreading connections
 * between them: 0, or -1 with errno ENOTSUP where the system has no such
 * option, or one that does not spread (macOS, OpenBSD, NetBSD). */
int diesel__platform_reuseport(int fd);

/* For the console's built-in commands (console_builtins.c, backtrace.c).
 * Each returns -1 and sets errno (ENOSYS where the system cannot tell). */

/* The running program's path, NUL-terminated. */
int diesel__platform_exe_path(char *buf, size_t size);
/* What descriptor fd refers to (a path, "pipe:[123]"...). */
int diesel__platform_fd_path(int fd, char *buf, size_t size);
/* The open descriptors, ascending, in a malloc'd array (*fds, *n). */
int diesel__platform_fd_list(int **fds, size_t *n);
/* Seconds since the process started. */
double diesel__platform_process_age(void);
/* Resident and peak resident memory, bytes (-1 each when unknown). */
int diesel__platform_rss(int64_t *rss, int64_t *peak);
/* Bytes of [addr, addr+len) resident in memory; addr page-aligned. */
int64_t diesel__platform_resident(void *addr, size_t len);
/* The allocator's own figures, bytes; -1 for those it does not give. */
struct diesel__malloc_info {
    const char *source;  /* e.g. "glibc mallinfo2" */
    int64_t arena;       /* obtained from the system with brk/sbrk */
    int64_t mmapped;     /* obtained with mmap (large blocks) */
    int64_t in_use;      /* handed out to the program */
    int64_t free;        /* held by the allocator, free */
    int64_t releasable;  /* could be given back (top of the heap) */
};
int diesel__platform_malloc_info(struct diesel__malloc_info *);

/* console_module.c: a module's name and path, for the crash report
 * (plain reads: signal-safe). */
const char *diesel__module_name(const struct diesel_module *,
    const char **path);

/* Copy up to len bytes at addr in this process to buf without faulting:
 * the bytes readable from addr on (a short count stops at a page that is
 * not), or -1 and errno (EFAULT: not even the first). */
ssize_t diesel__platform_mem_read(const void *addr, void *buf, size_t len);
/* dlopen file name of the checked directory dirfd (path is the whole
 * path, for the systems that open it again): the handle, or NULL with
 * dlerror's text in why. */
void *diesel__platform_dlopen_at(int dirfd, const char *name,
    const char *path, char *why, size_t size);

/*
 * The profiler's clock (console_profile.c): signal signo, hz times a
 * second, to the calling thread; 0, or -1 with errno.  Linux: a
 * CLOCK_MONOTONIC timer aimed at this thread (SIGEV_THREAD_ID), so that
 * time the loop waits in poll is sampled too.  Elsewhere:
 * setitimer(ITIMER_PROF), SIGPROF only (else ENOTSUP), which counts the
 * process's CPU time and goes to whichever thread the kernel picks.  One
 * at a time; stop ends it (a no-op when none runs).
 */
int diesel__platform_prof_start(int signo, int hz);
void diesel__platform_prof_stop(void);

/*
 * The registers a suspended context resumes with, as an unwinder needs
 * them (see backtrace.c): its stack pointer once the switching call has
 * returned, its resume pc (a return address), and the callee-saved
 * integer registers, frame pointer first:
 *   x86-64   fp=rbp, then rbx r12 r13 r14 r15
 *   aarch64  fp=x29, then x19 ... x28
 */
#define DIESEL__REGS_CALLEE 11
struct diesel__regs {
    uintptr_t sp;
    uintptr_t pc;
    uintptr_t callee[DIESEL__REGS_CALLEE];
};
/* Read them from a context saved by swapcontext(3). */
int diesel__platform_uc_regs(const ucontext_t *uc, struct diesel__regs *r);
/* The stack pointer of the context a signal interrupted (a signal
 * handler's third argument), or 0 where unknown.  Signal-safe. */
uintptr_t diesel__platform_uc_sp(const void *uctx);
/* Its pc: the exact instruction interrupted, not a return address; 0
 * where unknown.  Signal-safe. */
uintptr_t diesel__platform_uc_pc(const void *uctx);
/* Where swapcontext(3) keeps the registers in a ucontext_t, for
 * debuggers (debug.c); n is 0 where unknown. */
extern const struct diesel__debug_regs diesel__platform_uc_layout;
/* The calling OS thread's id as a debugger names it (Linux: its tid; the
 * BSDs: the LWP id), or -1 where unknown. */
int64_t diesel__platform_thread_id(void);

#endif /* DIESEL_INTERNAL_H */
