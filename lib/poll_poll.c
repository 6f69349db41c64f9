/*
 * poll_poll.c: the portable backend, on poll(2).
 *
 * The pollfd array is kept packed, with an index from descriptor to
 * slot so that changes are O(1); each wait is O(watched descriptors).
 * What fired is listed apart before the loop sees it: a wake that stops
 * watching a descriptor (dispatch.h) moves the array's last entry into
 * its hole, under a walk of the array.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "internal.h"

const char diesel__poll_name[] = "poll";

struct backend {
    struct pollfd *pfd;      /* packed: the first n are watched */
    int n, cap;
    int *slot;               /* fd -> index in pfd, or -1 */
    int nslot;
    struct fired {           /* what the last wait reported, cap long */
        int fd, events;
    } *fired;
};

int
diesel__poll_init(struct diesel_loop *l)
{
    struct backend *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return -1;
    l->backend = b;
    return 0;
}

void
diesel__poll_fini(struct diesel_loop *l)
{
    struct backend *b = l->backend;

    free(b->pfd);
    free(b->slot);
    free(b->fired);
    free(b);
    l->backend = NULL;
}

static int
reserve(struct backend *b, int fd)
{
    if (fd >= b->nslot) {
        int n = b->nslot ? b->nslot : 64;
        int *s;
        while (n <= fd)
            n *= 2;
        s = realloc(b->slot, (size_t)n * sizeof(*s));
        if (s == NULL)
            return -1;
        for (int i = b->nslot; i < n; i++)
            s[i] = -1;
        b->slot = s;
        b->nslot = n;
    }
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 64;
        struct pollfd *p;
        struct fired *f = realloc(b->fired, (size_t)cap * sizeof(*f));

        if (f == NULL)
            return -1;
        b->fired = f;
        p = realloc(b->pfd, (size_t)cap * sizeof(*p));
        if (p == NULL)
            return -1;
        b->pfd = p;
        b->cap = cap;
    }
    return 0;
}

int
diesel__poll_set(struct diesel_loop *l, int fd, int old, int events)
{
    struct backend *b = l->backend;
    short pev = (short)(((events & DIESEL_READ) ? POLLIN : 0) |
        ((events & DIESEL_WRITE) ? POLLOUT : 0));
    int i;

    (void)old;
    if (reserve(b, fd) != 0) {
        errno = ENOMEM;
        return -1;
    }
    i = b->slot[fd];
    if (events == 0) {
        if (i >= 0) {
            /* Move the last entry into the hole. */
            b->pfd[i] = b->pfd[--b->n];
            b->slot[b->pfd[i].fd] = i;
            b->slot[fd] = -1;
        }
        return 0;
    }
    if (i < 0) {
        /* poll(2) reports a bad descriptor only when waiting: check
         * now, as epoll_ctl would. */
        struct pollfd p = { fd, 0, 0 };
        if (poll(&p, 1, 0) == 1 && (p.revents & POLLNVAL)) {
            errno = EBADF;
            return -1;
        }
        i = b->n++;
        b->slot[fd] = i;
        b->pfd[i].fd = fd;
    }
    b->pfd[i].events = pev;
    b->pfd[i].revents = 0;
    return 0;
}

int
diesel__poll_wait(struct diesel_loop *l, int timeout_ms)
{
    struct backend *b = l->backend;
    int n = poll(b->pfd, (nfds_t)b->n, timeout_ms), k = 0;

    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < b->n && k < n; i++) {
        short r = b->pfd[i].revents;
        int ev = 0;

        if (r == 0)
            continue;
        if (r & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
            ev |= DIESEL_READ;
        if (r & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))
            ev |= DIESEL_WRITE;
        b->fired[k].fd = b->pfd[i].fd;
        b->fired[k].events = ev;
        k++;
    }
    return k;
}

void
diesel__poll_dispatch(struct diesel_loop *l, int n)
{
    struct backend *b = l->backend;

    /* A handler (the console's) may grow the arrays: read b each time. */
    for (int i = 0; i < n; i++)
        diesel__loop_fired(l, b->fired[i].fd, b->fired[i].events);
}
