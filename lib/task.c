/*
 * task.c: spawning green threads, the run queue, parking and waking,
 * joining and cancelling.
 *
 * Switching is direct: a green thread that parks or yields switches
 * straight to the next ready one, and goes back to the loop's own context
 * only when none is ready, or when every green thread that was ready at
 * the last poll has had its turn (POLL_BUDGET switches at least), so that
 * green threads that keep yielding cannot starve I/O and timers, and so
 * that thousands woken by one poll all run before the next: polling
 * while most of them still wait to run would only report their
 * descriptors again.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sanitize.h"
#include "park.h"

#define POLL_BUDGET 128   /* switches between two polls, at least */
#define POOL_MAX 1024     /* default-size stacks kept for reuse */
#define STACK_MIN ((size_t)16 * 1024)
#define STACK_MAX ((size_t)1 << 30)

static void trampoline(void);

/* ---- The task table: id -> record, linear probing ----------------------- */

static size_t
hash_id(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 17) &
        (cap - 1);
}

static int
table_grow(struct diesel_loop *l)
{
    size_t cap = l->tasks_cap ? l->tasks_cap * 2 : 256;
    struct diesel__task_slot *tab = calloc(cap, sizeof(*tab));

    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < l->tasks_cap; i++) {
        if (l->tasks[i].t != NULL) {
            size_t j = hash_id(l->tasks[i].id, cap);
            while (tab[j].t != NULL)
                j = (j + 1) & (cap - 1);
            tab[j] = l->tasks[i];
        }
    }
    free(l->tasks);
    l->tasks = tab;
    l->tasks_cap = cap;
    return 0;
}

static int
table_add(struct diesel_loop *l, struct diesel__task *t)
{
    size_t j;

    /* Keep the load under 1/2 so that probes stay short. */
    if ((l->ntasks + 1) * 2 > l->tasks_cap && table_grow(l) != 0)
        return -1;
    j = hash_id(t->id, l->tasks_cap);
    while (l->tasks[j].t != NULL)
        j = (j + 1) & (l->tasks_cap - 1);
    l->tasks[j].id = t->id;
    l->tasks[j].t = t;
    return 0;
}

static void
table_del(struct diesel_loop *l, struct diesel__task *t)
{
    size_t mask = l->tasks_cap - 1;
    size_t i = hash_id(t->id, l->tasks_cap);

    while (l->tasks[i].t != t)
        i = (i + 1) & mask;
    /* Backward-shift deletion: move later entries of the probe run into
     * the hole when their home slot allows it, so no tombstones. */
    for (size_t j = (i + 1) & mask; l->tasks[j].t != NULL;
        j = (j + 1) & mask) {
        size_t home = hash_id(l->tasks[j].id, l->tasks_cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            l->tasks[i] = l->tasks[j];
            i = j;
        }
    }
    l->tasks[i].id = 0;
    l->tasks[i].t = NULL;
}

struct diesel__task *
diesel__task_find(struct diesel_loop *l, int64_t id)
{
    size_t mask, j;

    if (l->tasks_cap == 0 || id <= 0)
        return NULL;
    mask = l->tasks_cap - 1;
    for (j = hash_id(id, l->tasks_cap); l->tasks[j].t != NULL;
        j = (j + 1) & mask) {
        if (l->tasks[j].id == id)
            return l->tasks[j].t;
    }
    return NULL;
}

void
diesel__task_foreach(struct diesel_loop *l,
    void (*fn)(struct diesel__task *, void *), void *arg)
{
    for (size_t i = 0; i < l->tasks_cap; i++) {
        if (l->tasks[i].t != NULL)
            fn(l->tasks[i].t, arg);
    }
}

size_t
diesel__task_ids(struct diesel_loop *l, int64_t *ids)
{
    size_t n = 0;

    for (size_t i = 0; i < l->tasks_cap; i++) {
        if (l->tasks[i].t != NULL)
            ids[n++] = l->tasks[i].id;
    }
    return n;
}

/* ---- Switching ----------------------------------------------------------- */

/* The run queue and the switch itself are in park.h, which conn.c shares. */

void
diesel__task_run_ready(struct diesel_loop *l)
{
    l->poll_left = diesel__nready(l) > POLL_BUDGET ? diesel__nready(l) :
        POLL_BUDGET;
    if (diesel__nready(l) != 0)
        switch_to(l, NULL, ready_pop(l));
}

int
diesel__task_ready_reserve(struct diesel_loop *l, size_t n)
{
    size_t cap = l->ready_cap ? l->ready_cap : 256;
    uintptr_t *r;

    if (n <= l->ready_cap)
        return 0;
    while (cap < n)
        cap *= 2;
    r = malloc(cap * sizeof(*r));
    if (r == NULL) {
        errno = ENOMEM;
        return -1;
    }
    /* Unwrapped, in order, at the front. */
    for (size_t i = 0; i < diesel__nready(l); i++)
        r[i] = l->ready[(l->ready_head + i) & l->ready_mask];
    free(l->ready);
    l->ready = r;
    l->ready_tail -= l->ready_head;
    l->ready_head = 0;
    l->ready_cap = cap;
    l->ready_mask = cap - 1;
    return 0;
}

enum diesel__state
diesel__task_state(const struct diesel_loop *l, const struct diesel__task *t)
{
    if (t->state == DIESEL__WAITING && t->wait.kind == DIESEL__WAIT_FD &&
        t->wait.fd >= 0 && t->wait.fd < l->nfds &&
        diesel__fd_reader(&l->fds[t->wait.fd]) != t &&
        diesel__fd_writer(&l->fds[t->wait.fd]) != t)
        return DIESEL__READY;
    return t->state;
}

/* ---- Parking ------------------------------------------------------------- */

int
diesel__task_park(struct diesel__task *t, int64_t deadline)
{
    return diesel__task_park_inline(t, deadline);
}

void
diesel__task_wake(struct diesel__task *t, int err)
{
    /* The loop of this thread: t->loop is off the lines a wake touches. */
    struct diesel_loop *l = diesel__loop;

    if (t->state != DIESEL__WAITING && t->state != DIESEL__SLEEPING)
        return;
    if (t->wait.kind == DIESEL__WAIT_FD && t->state == DIESEL__WAITING) {
        struct diesel__fd *f = &l->fds[t->wait.fd];

        if (diesel__fd_reader(f) != t && diesel__fd_writer(f) != t)
            return;     /* queued by the poll already (see dispatch.h) */
        l->fd_waiters--;
        if (diesel__fd_reader(f) == t)
            diesel__fd_set_reader(f, NULL);
        if (diesel__fd_writer(f) == t)
            diesel__fd_set_writer(f, NULL);
    }
    t->wake_err = err;
    if (t->timed) {
        t->timed = 0;
        diesel__heap_remove(&l->timers, &t->timer);
    }
    t->state = DIESEL__READY;
    ready_push(l, t);
    if (__builtin_expect(l->acct != NULL, 0))
        diesel__acct_wake(l, t, 1);
}

int
diesel__task_cancel(struct diesel__task *t)
{
    t->cancelled = 1;
    diesel__task_wake(t, ECANCELED);
    return 0;
}

void
diesel__task_cancel_all(struct diesel_loop *l)
{
    for (size_t i = 0; i < l->tasks_cap; i++) {
        if (l->tasks[i].t != NULL)
            diesel__task_cancel(l->tasks[i].t);
    }
}

void
diesel__task_set_daemon(struct diesel__task *t)
{
    if (!t->daemon && t->state != DIESEL__DONE) {
        t->daemon = 1;
        t->loop->ndaemons++;
    }
}

void
diesel__task_cancel_daemons(struct diesel_loop *l)
{
    for (size_t i = 0; i < l->tasks_cap; i++) {
        struct diesel__task *t = l->tasks[i].t;
        if (t != NULL && t->daemon && !t->cancelled)
            diesel__task_cancel(t);
    }
}

/* ---- Spawning and ending ------------------------------------------------- */

/* Make uc enter the trampoline on t's stack, 32 bytes below its top.
 * That puts the stack lines of a round trip of a server's connection
 * handler (net.c's conn_main calls it) where the fewest hold them: in
 * examples/echo, the handler's frame and diesel_conn_peek's park with
 * the registers the switch pushes take two lines, against three at the
 * top (counted by test/bench/counted.sh: with the registers pushed on the
 * stack, 4.94 D1 misses per round trip at N = 1,000, against 5.94 without
 * the 32 bytes). */
#define STACK_TOP_PAD 32
static void
make_entry(ucontext_t *uc, struct diesel__task *t)
{
    getcontext(uc);
    uc->uc_stack.ss_sp = t->stack_lo;
    uc->uc_stack.ss_size = (size_t)(t->stack_hi - t->stack_lo) -
        STACK_TOP_PAD;
    uc->uc_link = NULL;
    makecontext(uc, trampoline, 0);
}

/*
 * Ready t's stack to be entered: 0, or -1 ENOMEM.  With the register
 * switch, a ucontext serves only to enter a fresh stack, once, and the
 * loop's entry_uc is made for it at that switch (diesel__task_entry);
 * with swapcontext, t keeps one of its own for every switch.  Either way
 * one getcontext (a system call) per stack, not per spawn: a pooled stack
 * is resumed, not entered.
 */
static int
prepare_entry(struct diesel__task *t)
{
    if (!diesel__switch_fast) {
        t->uc = malloc(sizeof(*t->uc));
        if (t->uc == NULL) {
            errno = ENOMEM;
            return -1;
        }
        make_entry(t->uc, t);
    }
    t->fresh = 1;
    return 0;
}

ucontext_t *
diesel__task_entry(struct diesel_loop *l, struct diesel__task *t)
{
    if (t->uc != NULL)
        return t->uc;
    make_entry(&l->entry_uc, t);
    return &l->entry_uc;
}

static struct diesel__task *
stack_get(struct diesel_loop *l, size_t size, const char *name)
{
    struct diesel__task *t;

    if (size == DIESEL_STACK_DEFAULT && l->pool != NULL) {
        t = l->pool;
        l->pool = t->next;
        l->npool--;
        if (t->dirty)
            l->npool_dirty--;   /* the green thread keeps t->dirty */
        return t;
    }
    t = diesel__stack_create(size);
    if (t == NULL) {
        long used = diesel__platform_map_count();
        long limit = diesel__platform_map_limit();

        if (limit > 0)
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "cannot map a %zu-byte stack for green thread '%s': %s "
                "(%ld memory mappings in use, vm.max_map_count is %ld)",
                size, name, strerror(errno), used, limit);
        else
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "cannot map a %zu-byte stack for green thread '%s': %s",
                size, name, strerror(errno));
        errno = ENOMEM;
        return NULL;
    }
    t->loop = l;
    t->pooled = size == DIESEL_STACK_DEFAULT;
    t->tsan_fiber = DIESEL__TSAN_CREATE();
    if (prepare_entry(t) != 0) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "cannot allocate the entry context of green thread '%s': %s",
            name, strerror(ENOMEM));
        diesel__stack_destroy(t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

int64_t
diesel__task_spawn(const char *where, void *caller, const char *name,
    diesel_task_fn fn, void *arg, size_t stack_size)
{
    struct diesel_loop *l = diesel__loop;
    struct diesel__task *t;

    if (l == NULL) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "diesel_task_spawn() called with no loop running on this "
            "thread: spawn green threads from the function given to "
            "diesel_loop_run()");
        errno = EPERM;
        return -1;
    }
    if (fn == NULL || stack_size > STACK_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (l->stopping) {
        errno = ECANCELED;
        return -1;
    }
    if (stack_size == 0) {
        stack_size = DIESEL_STACK_DEFAULT;    /* a multiple of any page */
    } else {
        size_t page = diesel__stack_page();   /* a power of 2 */

        if (stack_size < STACK_MIN)
            stack_size = STACK_MIN;
        stack_size = (stack_size + page - 1) & ~(page - 1);
    }
    t = stack_get(l, stack_size, name ? name : "task");
    if (t == NULL)
        return -1;
    t->id = l->last_id + 1;
    if (diesel__task_ready_reserve(l, l->ntasks + 1) != 0 ||
        table_add(l, t) != 0) {
        t->next = l->dead;
        l->dead = t;
        errno = ENOMEM;
        return -1;
    }
    l->last_id++;
    t->fn = fn;
    t->arg = arg;
    t->status = 0;
    t->joiners = NULL;
    t->join_target = NULL;
    t->join_done = 0;
    t->wait.kind = DIESEL__WAIT_NONE;
    t->wake_err = 0;
    t->saved_errno = 0;
    t->cancelled = 0;
    t->daemon = 0;
    t->switches = 0;
    t->longest_run = 0;
    t->deep_warned = 0;
    t->sync_parked = 0;
    t->spawned_at = l->now;
    t->where = where;
    t->spawn_caller = caller;
    if (name != NULL) {
        /* Names are short: a loop here costs half of what strnlen and
         * memcpy did (calls, and their set-up for long strings). */
        size_t n = 0;

        while (n < sizeof(t->name) - 1 && name[n] != '\0') {
            t->name[n] = name[n];
            n++;
        }
        t->name[n] = '\0';
    } else {
        snprintf(t->name, sizeof(t->name), "task-%lld", (long long)t->id);
    }
    l->ntasks++;
    l->spawned++;
    t->state = DIESEL__READY;
    ready_push(l, t);
    /* A pooled record keeps the figures of its last green thread. */
    t->acct_epoch = 0;
    if (__builtin_expect(l->acct != NULL, 0))
        diesel__acct_wake(l, t, 0);
    return t->id;
}

#undef diesel_task_spawn
int64_t
diesel_task_spawn(const char *name, diesel_task_fn fn, void *arg,
    size_t stack_size)
{
    return diesel__task_spawn(NULL, __builtin_return_address(0), name, fn,
        arg, stack_size);
}

int64_t
diesel_task_spawn_at(const char *where, const char *name, diesel_task_fn fn,
    void *arg, size_t stack_size)
{
    return diesel__task_spawn(where, __builtin_return_address(0), name, fn,
        arg, stack_size);
}

/*
 * The green thread returned (or called diesel_task_exit).  Hand its status
 * to its joiners, give its stack back, and switch away.  Returns only when
 * a later spawn reuses the stack, with t filled in anew.
 */
static void
finish(struct diesel__task *t, int status)
{
    struct diesel_loop *l = t->loop;
    struct diesel__task *next;

    t->status = status;
    t->state = DIESEL__DONE;
    if (t->id == l->main_id)
        l->main_status = status;
    while (t->joiners != NULL) {
        struct diesel__task *j = t->joiners;
        t->joiners = j->join_next;
        j->join_target = NULL;
        j->join_status = status;
        j->join_done = 1;
        diesel__task_wake(j, 0);
    }
    table_del(l, t);
    l->ntasks--;
    if (t->daemon)
        l->ndaemons--;
    if (l->exited != NULL) {
        l->exited[l->exited_next].id = t->id;
        l->exited[l->exited_next].status = status;
        l->exited_next = (l->exited_next + 1) % DIESEL__EXITED_KEEP;
    }
    /* The stack can be reused only once we are off it, which happens
     * before any other green thread runs: pooling it now is safe.
     * Unmapping it is not, so the loop does that (task_reap). */
    if (t->pooled && l->npool < POOL_MAX && !t->fresh) {
        /* Its pages stay: the next green thread on this stack would
         * inherit this one's high-water mark until the loop purges it
         * (diesel__task_purge_pool; a system call, so not here). */
        t->pool_sp = __builtin_frame_address(0);
        t->dirty = 1;
        l->npool_dirty++;
        t->next = l->pool;
        l->pool = t;
        l->npool++;
    } else {
        t->next = l->dead;
        l->dead = t;
    }
    next = pick_next(l);
#if defined(DIESEL__SWITCH_ASM) && !defined(DIESEL__ASAN)
    /* A tail switch, as in diesel_task_yield: when a spawn
     * reuses this stack, it resumes straight in trampoline, with no
     * return from here to mispredict. */
    if (diesel__switch_fast && (next == NULL || !next->fresh)) {
        diesel__ctx_swap_asm(t->ctx.regs, next ? next->ctx.regs :
            l->ctx.regs, switch_begin(l, t, next));
        return;
    }
#endif
    switch_to(l, t, next);
}

static void
trampoline(void)
{
    struct diesel__task *t = diesel__current;

    arrived(t->loop, t);
    DIESEL__ASAN_UNPOISON(t->stack_lo, (size_t)(t->stack_hi - t->stack_lo));
    for (;;) {
        *t->loop->errno_ptr = 0;     /* errno, without a call */
        finish(t, t->fn(t->arg));
    }
}

void
diesel_task_exit(int status)
{
    struct diesel__task *t = diesel__current;

    if (t == NULL) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "diesel_task_exit() called outside a green thread: "
            "exiting the process");
        exit(status);
    }
    /* The frames above us are abandoned and cannot be resumed into: the
     * stack is unmapped rather than pooled (finish sees fresh). */
    t->fresh = 1;
    finish(t, status);
    abort();    /* not reached: a fresh stack is never resumed here */
}

void
diesel__task_reap(struct diesel_loop *l)
{
    while (l->dead != NULL) {
        struct diesel__task *t = l->dead;
        l->dead = t->next;
        diesel__stack_destroy(t);
    }
}

void
diesel__task_purge_pool(struct diesel_loop *l, unsigned max)
{
    unsigned done = 0;

    for (struct diesel__task *t = l->pool; t != NULL && l->npool_dirty > 0 &&
        (max == 0 || done < max); t = t->next) {
        if (t->dirty) {
            diesel__stack_purge(t);
            l->npool_dirty--;
            done++;
        }
    }
}

void
diesel__task_free_all(struct diesel_loop *l)
{
    diesel__task_reap(l);
    while (l->pool != NULL) {
        struct diesel__task *t = l->pool;
        l->pool = t->next;
        diesel__stack_destroy(t);
    }
    l->npool = 0;
    l->npool_dirty = 0;
    free(l->tasks);
    l->tasks = NULL;
    l->tasks_cap = 0;
    free(l->ready);
    l->ready = NULL;
    l->ready_cap = 0;
    l->ready_mask = 0;
    l->ready_head = l->ready_tail = 0;
    free(l->exited);
    l->exited = NULL;
}

/* The status of a green thread that returned recently, if still kept. */
static int
exited_status(struct diesel_loop *l, int64_t id, int *status)
{
    if (l->exited == NULL || id <= 0 || id > l->last_id)
        return -1;
    for (size_t i = 0; i < DIESEL__EXITED_KEEP; i++) {
        if (l->exited[i].id == id) {
            *status = l->exited[i].status;
            return 0;
        }
    }
    return -1;
}

/* ---- Public calls -------------------------------------------------------- */

/* Take the head of the run queue off it, and put t at its tail:
 * ready_pop(l) then ready_push(l, t), in one go, nready unchanged (the
 * head's slot is the tail's when t is the only other one). */
static inline __attribute__((always_inline)) struct diesel__task *
ready_rotate(struct diesel_loop *l, struct diesel__task *t)
{
    struct diesel__task *next = ready_pop(l);

    t->state = DIESEL__READY;
    ready_push(l, t);
    return next;
}

/* diesel_task_yield, every case, with an ordinary switch. */
static __attribute__((noinline)) int
yield(struct diesel__task *t)
{
    struct diesel__task *next;
    struct diesel_loop *l;

    if (t == NULL) {
        diesel__misuse("diesel_task_yield");
        return -1;
    }
    l = t->loop;
    if (l->poll_left == 0) {
        /* Every green thread ready at the last poll has had its turn. */
        t->state = DIESEL__READY;
        ready_push(l, t);
        switch_to(l, t, NULL);
    } else {
        l->poll_left--;
        if (diesel__nready(l) != 0) {
            next = ready_rotate(l, t);
            switch_to(l, t, next);
        }
        /* else the only one ready: it goes on. */
    }
    if (t->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int
diesel__task_yield_loop(void)
{
    struct diesel__task *t = diesel__running("diesel__task_yield_loop");
    struct diesel_loop *l;

    if (t == NULL)
        return -1;
    if (t->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    l = t->loop;
    /* Behind whatever is ready, and back to the loop's own context rather
     * than straight to the next green thread: the loop polls (timeout 0,
     * since we are ready) and fires the timers that are due before it
     * runs the queue, us last. */
    t->state = DIESEL__READY;
    ready_push(l, t);
    switch_to(l, t, NULL);
    if (t->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

/*
 * The common case, a switch to the next ready green thread, which has run
 * before, with the register switch, is done here with no call but a tail
 * call to the switch, and no register to save: the switch saves the
 * return address into the caller of diesel_task_yield as t's pc, and t
 * resumes there with what its resumer's switch_begin worked out (errno,
 * the return value), with no return in between.  A return right after a
 * switch is predicted from the return stack, whose top is then the other
 * side's call: it mispredicts every time (bench_switch's "in a returning
 * call" row: 15 ns against 7 for the bare switch).  t->yielded tells
 * backtraces (backtrace.c) that the frame of diesel_task_yield is gone.
 *
 * Everything else goes through yield(), with an ordinary switch: the
 * loop's turn (once per POLL_BUDGET switches at least), a fresh stack,
 * the ucontext fallback, and every switch under ASan, whose runtime must
 * be told on the resumed side that the switch is over (arrived()).
 */
int
diesel_task_yield(void)
{
    struct diesel__task *t = diesel__current;
    int ret;

#if defined(DIESEL__SWITCH_ASM) && !defined(DIESEL__ASAN)
    if (t != NULL && diesel__switch_fast) {
        struct diesel_loop *l = diesel__loop;
        struct diesel__task *next = ready_peek(l);

        if (next != NULL && l->poll_left != 0 && !next->fresh) {
            l->poll_left--;
            next = ready_rotate(l, t);
            t->yielded = 1;
            return diesel__ctx_swap_asm(t->ctx.regs, next->ctx.regs,
                switch_begin(l, t, next));
        }
    }
#endif
    ret = yield(t);
    /* Not a tail call, so that this frame shows in backtraces. */
    __asm__ volatile("" : "+r"(ret));
    return ret;
}

int64_t
diesel_task_self(void)
{
    return diesel__current ? diesel__current->id : -1;
}

const char *
diesel_task_name(void)
{
    return diesel__current ? diesel__current->name : NULL;
}

int
diesel_task_rename(const char *name)
{
    struct diesel__task *t = diesel__running("diesel_task_rename");

    if (t == NULL)
        return -1;
    if (name == NULL) {
        errno = EINVAL;
        return -1;
    }
    strncpy(t->name, name, sizeof(t->name) - 1);
    t->name[sizeof(t->name) - 1] = '\0';
    return 0;
}

int
diesel_task_join(int64_t id, int *status, int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running("diesel_task_join");
    struct diesel__task *target;
    int64_t deadline;
    int err;

    if (t == NULL)
        return -1;
    if (timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    target = diesel__task_find(t->loop, id);
    if (target == NULL) {
        int st;
        if (exited_status(t->loop, id, &st) == 0) {
            if (status != NULL)
                *status = st;
            return 0;
        }
        errno = ESRCH;
        return -1;
    }
    if (target == t) {
        errno = EDEADLK;
        return -1;
    }
    if (timeout_ms == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    t->join_target = target;
    t->join_done = 0;
    t->join_next = target->joiners;
    target->joiners = t;
    t->wait.kind = DIESEL__WAIT_JOIN;
    t->wait.target = id;
    deadline = diesel__deadline(timeout_ms);
    diesel__sync_cycle_check(t);
    diesel__sync_park(t, deadline);
    err = diesel__task_park(t, deadline);
    diesel__sync_unpark(t);
    if (t->join_done) {
        if (status != NULL)
            *status = t->join_status;
        return 0;
    }
    /* Timed out or cancelled while the target still runs: unlink. */
    for (struct diesel__task **p = &target->joiners; *p != NULL;
        p = &(*p)->join_next) {
        if (*p == t) {
            *p = t->join_next;
            break;
        }
    }
    t->join_target = NULL;
    errno = err;
    return -1;
}

int
diesel_task_cancel(int64_t id)
{
    struct diesel_loop *l = diesel__loop;
    struct diesel__task *t;

    if (l == NULL) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "diesel_task_cancel() called with no loop running on this "
            "thread");
        errno = EPERM;
        return -1;
    }
    t = diesel__task_find(l, id);
    if (t == NULL) {
        errno = ESRCH;
        return -1;
    }
    return diesel__task_cancel(t);
}

const char *
diesel__task_state_name(enum diesel__state s)
{
    switch (s) {
    case DIESEL__READY: return "ready";
    case DIESEL__RUNNING: return "running";
    case DIESEL__WAITING: return "waiting";
    case DIESEL__SLEEPING: return "sleeping";
    case DIESEL__DONE: return "done";
    }
    return "?";
}
