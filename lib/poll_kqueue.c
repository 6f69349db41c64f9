/*
 * poll_kqueue.c: the BSD and macOS backend.
 *
 * Level-triggered like poll_epoll.c: EVFILT_READ and EVFILT_WRITE are
 * added without EV_CLEAR, and the loop disarms lazily (dispatch.h).
 * Each direction is a filter of its own, so the kernel may report two
 * events for one descriptor in one wait; they are merged into one entry
 * of the fired list, which the loop then takes (diesel__poll_dispatch).
 *
 * Additions go to the kernel at once, in one kevent() call for both
 * filters: a bad descriptor must fail diesel__poll_set as it fails
 * epoll_ctl, and only the kernel knows what it can watch.  Deletions wait
 * in a changelist that rides on the next wait.  They come from the wakes
 * and diesel_fd_close, the caller could do nothing about their failure,
 * and so they cost no system call of their own.  The price is that a
 * deletion can reach the kernel after its descriptor was closed (close(2)
 * drops the filters itself): it then comes back as an EV_ERROR event with
 * ENOENT or EBADF, which is ignored, and that wait returns early once.
 *
 * Only POSIX and <sys/event.h> here: on Linux the tests build this file
 * against the kqueue-over-epoll shim in test/kqshim.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "dispatch.h"
#include "internal.h"

const char diesel__poll_name[] = "kqueue";

/* With EV_RECEIPT every change is answered, and no pending event is taken
 * by a call that only applies changes.  Without it (older BSDs) only
 * errors are answered, and a ready event taken instead is harmless: it is
 * level-triggered and comes back on the next wait. */
#ifdef EV_RECEIPT
#define RECEIPT EV_RECEIPT
#else
#define RECEIPT 0
#endif

/* FreeBSD's read filter on a regular file fires only before the end of
 * the file; NOTE_FILE_POLL makes it always fire, as poll(2) does and as
 * diesel_fd_wait promises.  Sockets and pipes ignore it. */
#ifdef NOTE_FILE_POLL
#define READ_FFLAGS NOTE_FILE_POLL
#else
#define READ_FFLAGS 0
#endif

struct backend {
    int kq;
    struct kevent *events;   /* what kevent() returns */
    struct kevent *changes;  /* deletions waiting for the next wait */
    int nchanges;
    struct fired {           /* the last wait's events, one per fd */
        int fd, events;
    } *fired;
    int cap;                 /* size of events, changes and fired: every
                                change's error fits in events, and every
                                event in fired */
    int *slot;               /* fd -> its entry in fired during a wait,
                                or stale (see merge) */
    int nslot;               /* size of slot */
};

static const struct timespec zero;

int
diesel__poll_init(struct diesel_loop *l)
{
    struct backend *b = calloc(1, sizeof(*b));
    int err;

    if (b == NULL)
        return -1;
    b->cap = 256;
    b->events = malloc((size_t)b->cap * sizeof(*b->events));
    b->changes = malloc((size_t)b->cap * sizeof(*b->changes));
    b->fired = malloc((size_t)b->cap * sizeof(*b->fired));
    if (b->events == NULL || b->changes == NULL || b->fired == NULL)
        goto fail;
    b->kq = kqueue();
    if (b->kq < 0)
        goto fail;
    /* A kqueue is not inherited across fork(2), but its descriptor
     * number would be across exec(2) on some systems. */
    (void)fcntl(b->kq, F_SETFD, FD_CLOEXEC);
    l->backend = b;
    return 0;
fail:
    err = errno;
    free(b->fired);
    free(b->changes);
    free(b->events);
    free(b);
    errno = err;
    return -1;
}

void
diesel__poll_fini(struct diesel_loop *l)
{
    struct backend *b = l->backend;

    /* Closing the queue drops its filters, queued deletions included. */
    close(b->kq);
    free(b->fired);
    free(b->changes);
    free(b->events);
    free(b->slot);
    free(b);
    l->backend = NULL;
}

/* Double the event, change and fired lists. */
static int
grow(struct backend *b)
{
    int cap = b->cap * 2;
    struct kevent *e;
    struct fired *f = realloc(b->fired, (size_t)cap * sizeof(*f));

    if (f == NULL)
        return -1;
    b->fired = f;
    e = realloc(b->events, (size_t)cap * sizeof(*e));
    if (e == NULL)
        return -1;
    b->events = e;
    e = realloc(b->changes, (size_t)cap * sizeof(*e));
    if (e == NULL)
        return -1;
    b->changes = e;
    b->cap = cap;
    return 0;
}

static int
slot_reserve(struct backend *b, int fd)
{
    int n = b->nslot ? b->nslot : 64, *s;

    if (fd < b->nslot)
        return 0;
    while (n <= fd)
        n *= 2;
    s = realloc(b->slot, (size_t)n * sizeof(*s));
    if (s == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = b->nslot; i < n; i++)
        s[i] = -1;
    b->slot = s;
    b->nslot = n;
    return 0;
}

/* Apply changes now, without waiting, and fail with the first error the
 * kernel answers.  events has room for an answer to each change. */
static int
apply(struct backend *b, struct kevent *ch, int n)
{
    int r = kevent(b->kq, ch, n, b->events, n, &zero);

    if (r < 0)
        return -1;
    for (int i = 0; i < r; i++) {
        if ((b->events[i].flags & EV_ERROR) && b->events[i].data != 0) {
            errno = (int)b->events[i].data;
            return -1;
        }
    }
    return 0;
}

/* Drop queued deletions of (fd, filter): one reaching the kernel after an
 * EV_ADD of the same filter would undo it. */
static void
unqueue(struct backend *b, int fd, short filter)
{
    for (int i = 0; i < b->nchanges; ) {
        if (b->changes[i].ident == (uintptr_t)fd &&
            b->changes[i].filter == filter)
            b->changes[i] = b->changes[--b->nchanges];
        else
            i++;
    }
}

static int
queue(struct backend *b, int fd, short filter)
{
    if (b->nchanges == b->cap) {
        /* Full: apply the batch now.  Its errors are deletions of
         * closed descriptors, which are ignored. */
        for (int i = 0; i < b->nchanges; i++)
            b->changes[i].flags |= RECEIPT;
        if (kevent(b->kq, b->changes, b->nchanges, b->events, b->nchanges,
            &zero) < 0)
            return -1;
        b->nchanges = 0;
    }
    EV_SET(&b->changes[b->nchanges], (uintptr_t)fd, filter, EV_DELETE, 0, 0,
        0);
    b->nchanges++;
    return 0;
}

int
diesel__poll_set(struct diesel_loop *l, int fd, int old, int events)
{
    struct backend *b = l->backend;
    struct kevent add[2];
    int nadd = 0, del = old & ~events;

    if (events & ~old) {
        /* Add every filter wanted, not only the new ones: EV_ADD of an
         * existing filter only modifies it, and the kernel may have
         * dropped one that the loop thinks is there (a descriptor closed
         * without diesel_fd_close, then reused). */
        if (events & DIESEL_READ) {
            EV_SET(&add[nadd], (uintptr_t)fd, EVFILT_READ, EV_ADD | RECEIPT,
                READ_FFLAGS, 0, 0);
            nadd++;
        }
        if (events & DIESEL_WRITE) {
            EV_SET(&add[nadd], (uintptr_t)fd, EVFILT_WRITE,
                EV_ADD | RECEIPT, 0, 0, 0);
            nadd++;
        }
        if (slot_reserve(b, fd) != 0 || apply(b, add, nadd) != 0)
            return -1;
        for (int i = 0; i < nadd; i++)
            unqueue(b, fd, add[i].filter);
    }
    if ((del & DIESEL_READ) && queue(b, fd, EVFILT_READ) != 0)
        return -1;
    if ((del & DIESEL_WRITE) && queue(b, fd, EVFILT_WRITE) != 0)
        return -1;
    return 0;
}

int
diesel__poll_wait(struct diesel_loop *l, int timeout_ms)
{
    struct backend *b = l->backend;
    struct timespec ts, *tp = NULL;
    int n, k = 0;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
        tp = &ts;
    }
    n = kevent(b->kq, b->changes, b->nchanges, b->events, b->cap, tp);
    if (n < 0) {
        /* Send the changes again next time, even after EINTR (FreeBSD
         * has applied them then, not every system says so): a deletion
         * applied twice only fails with ENOENT, while one lost would
         * leave a filter that the loop no longer disarms. */
        return errno == EINTR ? 0 : -1;
    }
    b->nchanges = 0;
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &b->events[i];
        int fd = (int)e->ident, ev, j;

        if (e->flags & EV_ERROR) {
            /* A queued deletion whose descriptor was closed since. */
            if (e->data == 0 || e->data == ENOENT || e->data == EBADF)
                continue;
            ev = DIESEL_READ | DIESEL_WRITE;
        } else if (e->flags & EV_EOF) {
            /* Errors and hangups wake both directions: the green thread
             * learns what happened from its own read or write.  (A
             * socket half-closed by its peer wakes a writer too, which
             * epoll's EPOLLRDHUP would not; the writer's write tells it
             * to wait again, and the loop disarms a read filter that no
             * one waits on.) */
            ev = DIESEL_READ | DIESEL_WRITE;
        } else if (e->filter == EVFILT_READ) {
            ev = DIESEL_READ;
        } else if (e->filter == EVFILT_WRITE) {
            ev = DIESEL_WRITE;
        } else {
            continue;
        }
        /* Merge the two filters of one descriptor.  slot[fd] is left
         * from earlier waits, but an index below k whose entry names fd
         * can only have been set in this one. */
        if (fd >= 0 && fd < b->nslot) {
            j = b->slot[fd];
            if (j >= 0 && j < k && b->fired[j].fd == fd) {
                b->fired[j].events |= ev;
                continue;
            }
            b->slot[fd] = k;
        }
        b->fired[k].fd = fd;
        b->fired[k].events = ev;
        k++;
    }
    /* A full batch suggests more are waiting: take more next time. */
    if (n == b->cap)
        (void)grow(b);
    return k;
}

void
diesel__poll_dispatch(struct diesel_loop *l, int n)
{
    struct backend *b = l->backend;

    /* Not b->events: a wake that stops watching a descriptor applies
     * or queues changes, whose answers land there. */
    for (int i = 0; i < n; i++)
        diesel__loop_fired(l, b->fired[i].fd, b->fired[i].events);
}
