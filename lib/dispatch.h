/*
 * dispatch.h: what the loop does with one event of a poll, inline.  Each
 * backend's diesel__poll_dispatch hands its events here straight from
 * the array the kernel filled (epoll), or from its own list where two of
 * the kernel's make one (kqueue's two filters) or where a wake could
 * change the array under it (poll's packed pollfd array), so that an
 * event is not first copied into a list of the loop's and read back.
 */
#ifndef DIESEL_DISPATCH_H
#define DIESEL_DISPATCH_H

#include "internal.h"
#include "park.h"

/* Queue t, parked on a descriptor and just taken off its entry, with the
 * events ready.  It is parked on a descriptor no more (fd_waiters: the
 * count is kept here, in the loop's line that the queueing writes
 * anyway, rather than by the park around its switch).  With accounting
 * on, its figures want the wake's time. */
static inline void
diesel__wake_queued(struct diesel_loop *l, struct diesel__task *t, int ev)
{
    l->fd_waiters--;
    ready_push_ev(l, t, ev);
    if (__builtin_expect(l->acct != NULL, 0))
        diesel__acct_wake(l, t, 1);
}

/*
 * Wake the green threads waiting on fd for ev (DIESEL_READ and or
 * DIESEL_WRITE, errors and hangups being both); stop watching what no
 * one waits for any more (level-triggered, so it would fire again).
 *
 * A green thread parked on a descriptor is queued with the events that
 * woke it and nothing else: its record keeps saying waiting until it is
 * switched to (park.h, ready_pop), so that this touches the
 * descriptor's entry and the run queue but no record.  Touched here and
 * again when it runs, a record's line would be read twice per wake from
 * memory when thousands are woken by one poll.  The entry's pointer is
 * cleared instead, and that is what tells a queued green thread from a
 * parked one (diesel__task_wake, diesel__task_state).
 */
static inline __attribute__((always_inline)) void
diesel__loop_fired(struct diesel_loop *l, int fd, int ev)
{
    struct diesel__fd *f;
    struct diesel__task *r, *w;
    uintptr_t rd, wr;

    /* fd < 0 too, as unsigned. */
    if (__builtin_expect((unsigned)fd >= (unsigned)l->nfds, 0))
        return;
    f = &l->fds[fd];
    /* The entry's words are read once: the run queue's stores could be
     * to them as far as the compiler knows. */
    rd = (uintptr_t)f->rd;
    wr = (uintptr_t)f->wr;
    if (__builtin_expect(rd & DIESEL__FD_HANDLER, 0)) {
        /* Not a green thread's: the console's self-pipe.  The handler may
         * spawn green threads and grow l->fds, so f is not used after
         * it. */
        l->handlers[fd](l, fd, ev);
        return;
    }
    /* Only a green thread still parked wants the event: one woken
     * already (by an earlier poll, its deadline or a cancel) is off the
     * entry, and has yet to run and read.  Left armed, its descriptor
     * would be reported by every poll until then, and with thousands of
     * them queued each poll would cost thousands of reports for
     * nothing. */
    r = (struct diesel__task *)(rd & ~DIESEL__FD_FLAGS);
    w = (struct diesel__task *)(wr & ~DIESEL__FD_FLAGS);
    if (__builtin_expect(ev == DIESEL_READ && r != NULL && r != w, 1)) {
        /* The usual case, a reader alone woken by bytes to read, taken
         * first in fewer tests: the cases below come to the same, and
         * with someone waiting to read nothing is disarmed. */
        f->rd = (void *)(rd & DIESEL__FD_FLAGS);
        diesel__wake_queued(l, r, DIESEL_READ);
        return;
    }
    if (r != NULL && r == w) {
        /* One green thread waiting both ways. */
        if (ev & (DIESEL_READ | DIESEL_WRITE)) {
            f->rd = (void *)(rd & DIESEL__FD_FLAGS);
            f->wr = (void *)(wr & DIESEL__FD_FLAGS);
            diesel__wake_queued(l, r, ev & (DIESEL_READ | DIESEL_WRITE));
        }
    } else {
        if (r != NULL && (ev & DIESEL_READ)) {
            f->rd = (void *)(rd & DIESEL__FD_FLAGS);
            diesel__wake_queued(l, r, DIESEL_READ);
        }
        if (w != NULL && (ev & DIESEL_WRITE)) {
            f->wr = (void *)(wr & DIESEL__FD_FLAGS);
            diesel__wake_queued(l, w, DIESEL_WRITE);
        }
    }
    /* A direction that fired, is watched, and had no one waiting (rd or
     * wr is the watched bit alone) is watched no more. */
    if (__builtin_expect(((ev & DIESEL_READ) && rd == DIESEL__FD_REG) ||
        ((ev & DIESEL_WRITE) && wr == DIESEL__FD_REG), 0))
        diesel__loop_disarm(l, fd,
            (r != NULL ? (int)(rd & DIESEL__FD_REG) : 0) |
            (w != NULL ? (int)(wr & DIESEL__FD_REG) << 1 : 0));
}

#endif
