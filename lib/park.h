/*
 * park.h: the run queue, the switch, and the park, inline.  task.c is
 * their home; conn.c (through diesel__fd_park) folds the park into its
 * receive and send calls, because a frame of its own on the green
 * thread's stack is one more cache line written when it parks and read
 * back when it resumes, on every round trip.
 */
#ifndef DIESEL_PARK_H
#define DIESEL_PARK_H

#include <errno.h>

#include "internal.h"
#include "sanitize.h"

/* Queue t with the events that woke it from a descriptor (0 for any
 * other reason), without touching its record.  Room was reserved at its
 * spawn (diesel__task_ready_reserve). */
static inline void
ready_push_ev(struct diesel_loop *l, struct diesel__task *t, int ev)
{
    DIESEL__HOT_ASSERT(diesel__nready(l) < l->ready_cap);
    l->ready[l->ready_tail & l->ready_mask] = (uintptr_t)t | (uintptr_t)ev;
    l->ready_tail++;
}

static inline void
ready_push(struct diesel_loop *l, struct diesel__task *t)
{
    ready_push_ev(l, t, 0);
}

/* The head of the run queue, not taken off it; NULL if empty. */
static inline struct diesel__task *
ready_peek(const struct diesel_loop *l)
{
    if (diesel__nready(l) == 0)
        return NULL;
    return (struct diesel__task *)(l->ready[l->ready_head & l->ready_mask] &
        ~(uintptr_t)63);
}

/* Take the head off the run queue (which is not empty).  The events that
 * woke it, if any, go to its record now, which the switch to it touches
 * anyway. */
static inline struct diesel__task *
ready_pop(struct diesel_loop *l)
{
    uintptr_t e = l->ready[l->ready_head & l->ready_mask];
    struct diesel__task *t = (struct diesel__task *)(e & ~(uintptr_t)63);

    l->ready_head++;
    /* No test: revents is read by a descriptor's wait alone, which was
     * woken by its events, or with an error and then revents unread. */
    t->wait.revents = (int)(e & 63);
    return t;
}

/* Called first thing in a context that was just switched to. */
static inline void
arrived(struct diesel_loop *l, struct diesel__task *self)
{
#ifdef DIESEL__ASAN
    const void *bottom;
    size_t size;

    __sanitizer_finish_switch_fiber(self ? self->asan_fake : l->asan_fake,
        &bottom, &size);
    if (l->asan_from_loop && self != NULL) {
        l->asan_bottom = bottom;
        l->asan_size = size;
    }
#else
    (void)l;
    (void)self;
#endif
}

/*
 * The bookkeeping of a switch from `from` to `to` (NULL: the loop's
 * context), up to the jump.  errno is saved for from and set for to here,
 * before the jump, so that to need do nothing once resumed; for the same
 * reason this returns what to's diesel_task_yield returns if to was
 * suspended there by its tail switch: -1 if it was cancelled meanwhile,
 * with errno ECANCELED, else 0.
 */
static inline __attribute__((always_inline)) int
switch_begin_core(struct diesel_loop *l, struct diesel__task *from,
    struct diesel__task *to)
{
    /* errno's address is fixed per OS thread: use the cached one rather
     * than a call to __errno_location at each switch. */
    int *errp = l->errno_ptr;
    int value = 0;

    if (from != NULL)
        from->saved_errno = *errp;
    else
        l->saved_errno = *errp;
    if (to != NULL) {
        to->state = DIESEL__RUNNING;
        to->switches++;
        /* ECANCELED is for diesel_task_yield's tail switch alone (its
         * caller returns what we say); a green thread suspended anywhere
         * else gets its own errno back, and need not restore it itself
         * once resumed (switch_to). */
        *errp = to->saved_errno;
        if (__builtin_expect(to->cancelled, 0) && to->yielded) {
            *errp = ECANCELED;
            value = -1;
        }
    } else {
        *errp = l->saved_errno;
    }
    /* A relaxed atomic store is a plain store on the CPUs we run on: the
     * watchdog of hog.c reads the counter from its own thread. */
    __atomic_store_n(&l->switches, l->switches + 1, __ATOMIC_RELAXED);
    diesel__current = to;
#ifdef DIESEL__ASAN
    l->asan_from_loop = from == NULL;
    if (from != NULL && from->state == DIESEL__DONE)
        from->asan_fake = NULL;   /* its frames are gone for good */
    __sanitizer_start_switch_fiber(
        from == NULL ? &l->asan_fake :
        from->state == DIESEL__DONE ? NULL : &from->asan_fake,
        to ? (const void *)to->stack_lo : l->asan_bottom,
        to ? (size_t)(to->stack_hi - to->stack_lo) : l->asan_size);
#endif
    DIESEL__TSAN_SWITCH(to ? to->tsan_fiber : l->tsan_fiber);
    return value;
}

/* The same, with accounting's share when it is on. */
static inline __attribute__((always_inline)) int
switch_begin(struct diesel_loop *l, struct diesel__task *from,
    struct diesel__task *to)
{
    if (__builtin_expect(l->acct != NULL, 0))
        diesel__acct_switch(l, from, to);
    return switch_begin_core(l, from, to);
}

/*
 * Suspend from (NULL: the loop's context) and resume to (NULL: the loop).
 * Returns when something switches back to from.
 *
 * Nothing but from lives across a call here, so that the frame that a
 * green thread parks in holds its pushed registers and nothing else: a
 * value kept in a register across a call would be spilled to that frame,
 * one more line of the stack touched on every switch.  Hence the loop is
 * read again after the switch, and to after accounting's call.  Every
 * case switches in the caller's frame, so that green threads parked in
 * one place have the same frames whatever the switch did.
 */
static inline __attribute__((always_inline)) void
switch_to(struct diesel_loop *l, struct diesel__task *from,
    struct diesel__task *to)
{
    ucontext_t *fuc = NULL, *tuc = NULL;
    int fresh = 0, value;

    if (from != NULL)
        from->yielded = 0;    /* suspended here, not in a tail switch */
#ifdef DIESEL__SWITCH_ASM
    /* The usual case first, in a test each of accounting, the way and
     * to: the register switch to a context that has run before.  Where
     * the caller knows whether to is NULL (suspend), so does this. */
    if (__builtin_expect(l->acct == NULL, 1) &&
        __builtin_expect(diesel__switch_fast, 1) &&
        __builtin_expect(to == NULL || !to->fresh, 1)) {
        value = switch_begin_core(l, from, to);
        diesel__ctx_swap_asm(from ? from->ctx.regs : l->ctx.regs,
            to ? to->ctx.regs : l->ctx.regs, value);
        goto resumed;
    }
#endif
    if (__builtin_expect(l->acct != NULL, 0)) {
        l->acct_to = to;
        diesel__acct_switch(l, from, to);
        l = diesel__loop;
        to = l->acct_to;
    }
    if (to != NULL && to->fresh) {
        to->fresh = 0;
        fresh = 1;
    }
    value = switch_begin_core(l, from, to);
    /* The ucontext pointers sit on a line of the record that nothing
     * else of a switch touches: the register switch loads them only to
     * enter a fresh stack. */
    if (__builtin_expect(fresh, 0)) {
        tuc = diesel__task_entry(l, to);
        l = diesel__loop;
    } else if (!diesel__ctx_fast()) {
        tuc = to ? to->uc : &l->uc;
    }
    if (!diesel__ctx_fast())
        fuc = from ? from->uc : &l->uc;
    diesel__ctx_switch(from ? &from->ctx : &l->ctx, fuc,
        to ? &to->ctx : &l->ctx, tuc, fresh, value);
#ifdef DIESEL__SWITCH_ASM
resumed:
#endif
#if defined(DIESEL__ASAN) || defined(DIESEL__TSAN)
    l = diesel__loop;       /* read again rather than kept (see above) */
    arrived(l, from);
    /* Whoever resumed us set errno already (switch_begin); the
     * sanitizers' fiber calls around the jump might not keep it. */
    *l->errno_ptr = from ? from->saved_errno : l->saved_errno;
#else
    /* Whoever resumed us set errno already (switch_begin): nothing to
     * do here, and the loop need not even be read again. */
    (void)l;
#endif
}

/* The green thread to run after self gives the CPU away, or NULL for the
 * loop: the next ready one, unless the loop must poll first.  May be
 * self, when it is the only one ready. */
static inline __attribute__((always_inline)) struct diesel__task *
pick_next(struct diesel_loop *l)
{
    if (diesel__nready(l) != 0 && l->poll_left != 0) {
        l->poll_left--;
        return ready_pop(l);
    }
    return NULL;
}

/* Give the CPU away from self (a green thread) until it is made ready. */
static inline __attribute__((always_inline)) void
suspend(struct diesel_loop *l, struct diesel__task *self)
{
    struct diesel__task *next = pick_next(l);

    if (next == self) {
        self->state = DIESEL__RUNNING;
        return;
    }
    /* A copy of the switch each for a green thread and for the loop, in
     * which the tests of to fold. */
    if (next != NULL)
        switch_to(l, self, next);
    else
        switch_to(l, self, NULL);
}

/* diesel__task_park, inline (see internal.h). */
static inline __attribute__((always_inline)) int
diesel__task_park_inline(struct diesel__task *t, int64_t deadline)
{
    struct diesel_loop *l = diesel__loop;   /* t->loop is off the hot lines */

    DIESEL__HOT_ASSERT(t == diesel__current && t->state == DIESEL__RUNNING);
    /* Cancellation stops waiting: a cancelled green thread never parks,
     * while calls that need not wait (a timeout of 0, an item already
     * there) still work, so that its clean-up code can run. */
    if (t->cancelled) {
        t->wait.kind = DIESEL__WAIT_NONE;
        return ECANCELED;
    }
    t->wake_err = 0;
    t->wait.since = l->now;
    if (deadline >= 0) {
        t->timer.key = deadline;
        if (diesel__heap_insert(&l->timers, &t->timer) != 0) {
            t->wait.kind = DIESEL__WAIT_NONE;
            return ENOMEM;
        }
        t->wait.deadline = deadline;
        t->timed = 1;
    }
    t->state = t->wait.kind == DIESEL__WAIT_SLEEP ? DIESEL__SLEEPING :
        DIESEL__WAITING;
    suspend(l, t);
    t->wait.kind = DIESEL__WAIT_NONE;
    /* Woken by the poll, which does not touch the record: the timer is
     * ours to take out of the heap.  The loop is read again, here and in
     * the callers: kept across the switch it would be spilled to the
     * stack, a line more to read back on every round trip.  A park with
     * no deadline set no timer (and whatever else wakes it clears the
     * bit, never sets it): no test, where the deadline is a constant. */
    if (deadline >= 0 && t->timed) {
        t->timed = 0;
        diesel__heap_remove(&diesel__loop->timers, &t->timer);
    }
    return t->wake_err;
}

/*
 * diesel_fd_wait's parking half, for a caller that is known to run in
 * green thread t and has its deadline (monotonic ns, -1 none) already:
 * conn.c.  Inline, because a frame of its own would be one more line of
 * the green thread's stack on every round trip.  -1 with errno; else
 * the events ready if it did not park (a regular file, always ready),
 * or 0 once woken with t->wait.revents ready: conn.c, which wants no
 * more than success, need not read those.
 */
static inline __attribute__((always_inline)) int
diesel__fd_park_core(struct diesel__task *t, int fd, int events,
    int64_t deadline)
{
    struct diesel_loop *l = diesel__loop;
    struct diesel__fd *f;
    int err;

    /* What the wait is, first: it means nothing until wait.kind says so,
     * and then fd need not be kept across the call below. */
    t->wait.fd = fd;
    t->wait.events = events;
    t->wait.revents = 0;
    /* An entry in the table, in one unsigned compare: fd < 0 is not. */
    if (__builtin_expect((unsigned)fd < (unsigned)l->nfds, 1)) {
        f = &l->fds[fd];
        if (((events & DIESEL_READ) && diesel__fd_reader(f) != NULL) ||
            ((events & DIESEL_WRITE) && diesel__fd_writer(f) != NULL)) {
            errno = EBUSY;
            return -1;
        }
        /* Watched already (the loop disarms lazily): the common case of
         * a green thread waiting again on its socket makes no call. */
        if ((diesel__fd_registered(f) & events) == events)
            goto watched;
    }
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    /* Nothing but the entry is used after the call (the loop is read
     * again): kept across it, values would be spilled to the stack, in a
     * frame that every park touches. */
    if ((f = diesel__loop_watch(l, fd, events)) == NULL) {
        /* epoll refuses regular files and the like, which poll(2) calls
         * always ready: so are they here. */
        if (errno == EPERM)
            return events;
        return -1;
    }
    l = diesel__loop;
watched:
    if (events & DIESEL_READ)
        diesel__fd_set_reader(f, t);
    if (events & DIESEL_WRITE)
        diesel__fd_set_writer(f, t);
    t->wait.kind = DIESEL__WAIT_FD;
    /* Counted down by whatever wakes it (see fd_waiters), so that the
     * loop need not be read again after the switch. */
    l->fd_waiters++;
    err = diesel__task_park_inline(t, deadline);
    /* Whatever woke us cleared the descriptor's entry (see struct
     * diesel__fd): nothing to undo there, and its line is not touched.
     * But a park that did not happen (cancelled, no memory) left it. */
    if (__builtin_expect(err != 0, 0)) {
        l = diesel__loop;   /* not kept across the switch (see above) */
        fd = t->wait.fd;
        f = &l->fds[fd];   /* the table may have grown meanwhile */
        if (diesel__fd_reader(f) == t || diesel__fd_writer(f) == t)
            l->fd_waiters--;
        if (diesel__fd_reader(f) == t)
            diesel__fd_set_reader(f, NULL);
        if (diesel__fd_writer(f) == t)
            diesel__fd_set_writer(f, NULL);
        errno = err;
        return -1;
    }
    return 0;
}

/* The same, returning the events ready, or -1 with errno. */
static inline __attribute__((always_inline)) int
diesel__fd_park(struct diesel__task *t, int fd, int events, int64_t deadline)
{
    int r = diesel__fd_park_core(t, fd, events, deadline);

    return r != 0 ? r : t->wait.revents;
}

#endif /* DIESEL_PARK_H */
