/*
 * kqueue.c: kqueue(2) and kevent(2) on top of epoll, so that the tests
 * run lib/poll_kqueue.c on Linux.  Test-only (see README): it emulates
 * what the backend uses, after FreeBSD's kqueue(2), and no more.
 *
 * Each queue is an epoll descriptor plus a table, by descriptor, of the
 * EVFILT_READ and EVFILT_WRITE registrations on it; the two filters of a
 * descriptor share its one epoll entry, whose mask is rebuilt after every
 * change.
 *
 * The gap between the two interfaces is close(2).  It drops a kqueue
 * filter, but removes an epoll entry only with the last descriptor of
 * the file: a file kept open elsewhere (dup, fork) goes on firing under
 * the closed descriptor's number.  So the table remembers the file
 * (device and inode) of each registration and checks it before reporting
 * or changing one; every epoll entry is EPOLLONESHOT, re-armed after each
 * report, so that an entry left behind by a closed descriptor fires at
 * most once more; and each entry carries a generation, so that it is not
 * mistaken for a later registration under the same number.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sys/event.h"

#define ADDED 1      /* shim_filter.state: registered */
#define ENABLED 2    /* ... and not EV_DISABLE'd */

/* Flags that this emulation refuses with EINVAL rather than fake. */
#define UNSUPPORTED (EV_CLEAR | EV_DISPATCH)

/* One (descriptor, filter) registration. */
struct shim_filter {
    unsigned char state;     /* ADDED | ENABLED */
    unsigned short flags;    /* returned with its events: EV_ONESHOT... */
    void *udata;             /* returned unchanged */
};

/* One descriptor in one queue. */
struct shim_reg {
    struct shim_filter f[2]; /* [0] EVFILT_READ, [1] EVFILT_WRITE */
    dev_t dev;               /* the file registered: a descriptor closed */
    ino_t ino;               /* and reused names another file */
    uint32_t gen;            /* tags its epoll entry (see translate) */
    uint32_t emask;          /* mask of its epoll entry, 0 if none */
};

struct shim_queue {
    int epfd;                /* the kqueue descriptor itself */
    dev_t dev;               /* its file, to notice that it was closed */
    ino_t ino;
    struct shim_reg *regs;   /* by descriptor */
    int nregs;
    uint32_t gen;            /* last generation handed out */
};

/* Queues by descriptor.  One lock for all, released while waiting, so
 * that loops on several threads may each have a queue. */
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_queue **shim_queues;
static int shim_nqueues;

static int
live(const struct shim_reg *r)
{
    return ((r->f[0].state | r->f[1].state) & ADDED) != 0;
}

/* Forget a registration whose descriptor was closed.  Its epoll entry,
 * if its file is still open elsewhere, cannot be reached any more: it is
 * one-shot, and its generation no longer matches. */
static void
forget(struct shim_reg *r)
{
    memset(r, 0, sizeof(*r));
}

static void
queue_free(struct shim_queue *q)
{
    free(q->regs);
    free(q);
}

/* The queue of descriptor kq, or NULL.  Descriptors of epoll instances
 * share one inode, so a queue closed and replaced by an epoll descriptor
 * that kqueue() did not make goes unnoticed; anything else is seen. */
static struct shim_queue *
queue_find(int kq)
{
    struct shim_queue *q;
    struct stat st;

    if (kq < 0 || kq >= shim_nqueues || (q = shim_queues[kq]) == NULL)
        return NULL;
    if (fstat(kq, &st) != 0 || st.st_dev != q->dev || st.st_ino != q->ino) {
        queue_free(q);
        shim_queues[kq] = NULL;
        return NULL;
    }
    return q;
}

/* The epoll mask for what is registered and enabled on r. */
static uint32_t
mask(const struct shim_reg *r)
{
    uint32_t m = 0;

    if (r->f[0].state == (ADDED | ENABLED))
        m |= EPOLLIN | EPOLLRDHUP;
    if (r->f[1].state == (ADDED | ENABLED))
        m |= EPOLLOUT;
    return m != 0 ? m | EPOLLONESHOT : 0;
}

/* Make fd's epoll entry match r (and re-arm it); 0 or an errno. */
static int
sync_reg(struct shim_queue *q, int fd, struct shim_reg *r)
{
    struct epoll_event ev;
    uint32_t m = mask(r);
    int op = r->emask != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (m == 0) {
        /* epoll reports hangups and errors even for an empty mask. */
        if (r->emask != 0)
            (void)epoll_ctl(q->epfd, EPOLL_CTL_DEL, fd, NULL);
        r->emask = 0;
        return 0;
    }
    ev.events = m;
    ev.data.u64 = (uint64_t)r->gen << 32 | (uint32_t)fd;
    if (epoll_ctl(q->epfd, op, fd, &ev) != 0) {
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else
            return errno;
        if (epoll_ctl(q->epfd, op, fd, &ev) != 0)
            return errno;
    }
    r->emask = m;
    return 0;
}

static int
regs_reserve(struct shim_queue *q, int fd)
{
    int n = q->nregs ? q->nregs : 64;
    struct shim_reg *r;

    if (fd < q->nregs)
        return 0;
    while (n <= fd)
        n = n > INT_MAX / 2 ? INT_MAX : n * 2;
    r = realloc(q->regs, (size_t)n * sizeof(*r));
    if (r == NULL)
        return ENOMEM;
    memset(r + q->nregs, 0, (size_t)(n - q->nregs) * sizeof(*r));
    q->regs = r;
    q->nregs = n;
    return 0;
}

/* Apply one change; 0 or the errno that FreeBSD would answer. */
static int
change(struct shim_queue *q, const struct kevent *c)
{
    struct shim_filter saved;
    struct shim_reg *r;
    struct stat st;
    int fd, i, err, was_live;

    if (c->filter != EVFILT_READ && c->filter != EVFILT_WRITE)
        return EINVAL;
    if (c->flags & UNSUPPORTED)
        return EINVAL;
    if (c->ident > INT_MAX || fstat((int)c->ident, &st) != 0)
        return EBADF;
    fd = (int)c->ident;
    i = c->filter == EVFILT_READ ? 0 : 1;
    r = fd < q->nregs ? &q->regs[fd] : NULL;
    /* Closed and reused since: close(2) took its filters. */
    if (r != NULL && live(r) && (r->dev != st.st_dev || r->ino != st.st_ino))
        forget(r);
    if ((c->flags & (EV_ADD | EV_DELETE)) != EV_ADD &&
        (r == NULL || !(r->f[i].state & ADDED)))
        return ENOENT;
    if (c->flags & EV_DELETE) {
        memset(&r->f[i], 0, sizeof(r->f[i]));
        return sync_reg(q, fd, r);
    }
    if (r == NULL) {
        if ((err = regs_reserve(q, fd)) != 0)
            return err;
        r = &q->regs[fd];
    }
    saved = r->f[i];
    was_live = live(r);
    if (c->flags & EV_ADD) {
        if (!was_live) {
            r->dev = st.st_dev;
            r->ino = st.st_ino;
            r->gen = ++q->gen;
            r->emask = 0;
        }
        /* A new filter starts enabled; re-adding keeps its state and
         * its flags (FreeBSD's kqueue_register). */
        if (!(r->f[i].state & ADDED)) {
            r->f[i].state = ADDED | ENABLED;
            r->f[i].flags = (unsigned short)(c->flags & ~(EV_ADD |
                EV_DELETE | EV_ENABLE | EV_DISABLE));
        }
    }
    r->f[i].udata = c->udata;
    if (c->flags & EV_ENABLE)
        r->f[i].state |= ENABLED;
    else if (c->flags & EV_DISABLE)
        r->f[i].state &= (unsigned char)~ENABLED;
    if ((err = sync_reg(q, fd, r)) != 0) {
        /* epoll refused (EPERM for a regular file): undo. */
        r->f[i] = saved;
        if (!was_live)
            forget(r);
        return err;
    }
    return 0;
}

/* Turn one epoll event into up to two kevents, one per filter that fires,
 * in out[0..room); returns how many. */
static int
translate(struct shim_queue *q, const struct epoll_event *ev,
    struct kevent *out, int room)
{
    int fd = (int)(ev->data.u64 & 0xffffffffu), n = 0;
    uint32_t e = ev->events;
    struct shim_reg *r;
    struct stat st;

    if (fd >= q->nregs)
        return 0;
    r = &q->regs[fd];
    /* The entry of a registration since deleted, or of a descriptor
     * closed while its file stayed open: one-shot, it is gone now. */
    if (!live(r) || r->gen != (uint32_t)(ev->data.u64 >> 32))
        return 0;
    if (fstat(fd, &st) != 0 || st.st_dev != r->dev || st.st_ino != r->ino) {
        forget(r);
        return 0;
    }
    for (int i = 0; i < 2; i++) {
        struct shim_filter *f = &r->f[i];
        uint32_t fire = i == 0 ?
            EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR :
            EPOLLOUT | EPOLLHUP | EPOLLERR;
        uint32_t eof = i == 0 ? EPOLLRDHUP | EPOLLHUP | EPOLLERR :
            EPOLLHUP | EPOLLERR;
        int64_t data = 1;
        int avail;

        if (f->state != (ADDED | ENABLED) || !(e & fire))
            continue;
        /* No room: a level-triggered filter fires again next time. */
        if (n == room)
            break;
        if (i == 0 && ioctl(fd, FIONREAD, &avail) == 0)
            data = avail;
        else if (i == 1 && (e & eof))
            data = 0;
        /* The socket error behind EPOLLERR cannot be read without
         * clearing it (SO_ERROR), which would hide it from the read or
         * write it belongs to: fflags stays 0. */
        EV_SET(&out[n], (uintptr_t)fd, i == 0 ? EVFILT_READ : EVFILT_WRITE,
            f->flags | ((e & eof) ? EV_EOF : 0), 0, data, f->udata);
        n++;
        if (f->flags & EV_ONESHOT)
            memset(f, 0, sizeof(*f));
    }
    /* Re-arm, or remove what a one-shot filter left empty. */
    (void)sync_reg(q, fd, r);
    return n;
}

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
kqueue(void)
{
    struct shim_queue *q = calloc(1, sizeof(*q));
    struct stat st;
    int fd, err;

    if (q == NULL)
        return -1;
    /* A real kqueue is not inherited by fork(2) at all; close-on-exec is
     * the nearest epoll offers. */
    fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
        goto fail;
    q->epfd = fd;
    q->dev = st.st_dev;
    q->ino = st.st_ino;
    pthread_mutex_lock(&shim_lock);
    if (fd >= shim_nqueues) {
        int n = shim_nqueues ? shim_nqueues : 16;
        struct shim_queue **a;
        while (n <= fd)
            n *= 2;
        a = realloc(shim_queues, (size_t)n * sizeof(*a));
        if (a == NULL) {
            pthread_mutex_unlock(&shim_lock);
            errno = ENOMEM;
            goto fail;
        }
        memset(a + shim_nqueues, 0, (size_t)(n - shim_nqueues) * sizeof(*a));
        shim_queues = a;
        shim_nqueues = n;
    }
    /* A queue left here was closed: its number is this one's now. */
    if (shim_queues[fd] != NULL)
        queue_free(shim_queues[fd]);
    shim_queues[fd] = q;
    pthread_mutex_unlock(&shim_lock);
    return fd;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    free(q);
    errno = err;
    return -1;
}

int
kevent(int kq, const struct kevent *changelist, int nchanges,
    struct kevent *eventlist, int nevents, const struct timespec *timeout)
{
    struct epoll_event evs[64];
    struct shim_queue *q;
    int64_t deadline = -1;
    int nout = 0, err = 0;

    if (nchanges < 0 || nevents < 0 || (timeout != NULL &&
        (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
        timeout->tv_nsec >= 1000000000))) {
        errno = EINVAL;
        return -1;
    }
    if (timeout != NULL) {
        /* Past some 30 years, wait forever. */
        if (timeout->tv_sec < 1000000000)
            deadline = now_ns() + (int64_t)timeout->tv_sec * 1000000000 +
                timeout->tv_nsec;
    }
    pthread_mutex_lock(&shim_lock);
    if ((q = queue_find(kq)) == NULL) {
        err = EBADF;
        goto out;
    }
    for (int i = 0; i < nchanges; i++) {
        struct kevent c = changelist[i];
        int e = change(q, &c);

        if (e == 0 && !(c.flags & EV_RECEIPT))
            continue;
        /* No room for the answer: an error fails the call, and the
         * changes after it are not applied (FreeBSD does the same). */
        if (nout == nevents) {
            err = e;
            goto out;
        }
        c.flags = EV_ERROR;
        c.data = e;
        eventlist[nout++] = c;
    }
    /* Answers to changes come back at once, without waiting. */
    if (nout > 0 || nevents == 0)
        goto out;
    for (;;) {
        int64_t left = deadline - now_ns();
        int ms = deadline < 0 ? -1 : left <= 0 ? 0 :
            left / 1000000 >= INT_MAX ? INT_MAX :
            (int)((left + 999999) / 1000000);
        int n, e;

        pthread_mutex_unlock(&shim_lock);
        n = epoll_wait(q->epfd, evs, nevents < 64 ? nevents : 64, ms);
        e = errno;
        pthread_mutex_lock(&shim_lock);
        if (n < 0) {
            err = e;
            goto out;
        }
        for (int j = 0; j < n; j++)
            nout += translate(q, &evs[j], eventlist + nout, nevents - nout);
        /* Only stale entries fired: wait out the rest of the time. */
        if (nout > 0 || n == 0 || ms == 0)
            break;
    }
out:
    pthread_mutex_unlock(&shim_lock);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return nout;
}
