/*
 * sys/event.h: the part of the BSD kqueue interface that the kqueue shim
 * provides on Linux (test/kqshim/README).  Test-only: lib/poll_kqueue.c
 * finds it through -Itest/kqshim, and nothing installed includes it.
 *
 * Field types and constant values are FreeBSD's, so that code which
 * compiles here compiles there (FreeBSD 12 added ext[4], which EV_SET
 * clears and nothing here uses).
 */
#ifndef KQSHIM_SYS_EVENT_H
#define KQSHIM_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

struct kevent {
    uintptr_t ident;     /* a descriptor, for the filters here */
    short filter;        /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags; /* EV_* actions in, EV_* state out */
    unsigned int fflags; /* filter flags; the error with EV_EOF */
    int64_t data;        /* bytes readable; the errno with EV_ERROR */
    void *udata;         /* returned unchanged */
    uint64_t ext[4];     /* unused */
};

#define EV_SET(kevp, a, b, c, d, e, f) do {     \
    struct kevent *kqshim_kevp_ = (kevp);       \
    kqshim_kevp_->ident = (a);                  \
    kqshim_kevp_->filter = (b);                 \
    kqshim_kevp_->flags = (c);                  \
    kqshim_kevp_->fflags = (d);                 \
    kqshim_kevp_->data = (e);                   \
    kqshim_kevp_->udata = (f);                  \
    kqshim_kevp_->ext[0] = 0;                   \
    kqshim_kevp_->ext[1] = 0;                   \
    kqshim_kevp_->ext[2] = 0;                   \
    kqshim_kevp_->ext[3] = 0;                   \
} while (0)

/* Filters. */
#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)

/* Actions. */
#define EV_ADD 0x0001       /* add, or modify, the (ident, filter) */
#define EV_DELETE 0x0002    /* remove it; ENOENT if absent */
#define EV_ENABLE 0x0004    /* report it again */
#define EV_DISABLE 0x0008   /* keep it, but do not report it */
#define EV_ONESHOT 0x0010   /* remove it once reported */
#define EV_CLEAR 0x0020     /* edge-triggered: EINVAL in the shim */
#define EV_RECEIPT 0x0040   /* answer the change even when it succeeds */
#define EV_DISPATCH 0x0080  /* disable once reported: EINVAL in the shim */

/* Returned state. */
#define EV_EOF 0x8000       /* hangup; fflags holds an error if known */
#define EV_ERROR 0x4000     /* a change failed: data holds its errno */

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges,
    struct kevent *eventlist, int nevents, const struct timespec *timeout);

#endif /* KQSHIM_SYS_EVENT_H */
