/*
 * fd.c: parking a green thread until a descriptor is ready.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "internal.h"

/* Readiness now, without parking: poll(2) with a zero timeout. */
static int
ready_now(int fd, int events)
{
    struct pollfd p;
    int n, ready = 0;

    p.fd = fd;
    p.events = (short)(((events & DIESEL_READ) ? POLLIN : 0) |
        ((events & DIESEL_WRITE) ? POLLOUT : 0));
    p.revents = 0;
    do
        n = poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (p.revents & POLLNVAL) {
        errno = EBADF;
        return -1;
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP))
        ready |= DIESEL_READ;
    if (p.revents & (POLLOUT | POLLERR | POLLHUP))
        ready |= DIESEL_WRITE;
    return ready & events;
}

int
diesel_fd_wait(int fd, int events, int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running("diesel_fd_wait");
    struct diesel_loop *l;
    struct diesel__fd *f;
    int err, ready;

    if (t == NULL)
        return -1;
    if (fd < 0 || events == 0 || (events & ~(DIESEL_READ | DIESEL_WRITE)) ||
        timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    l = t->loop;
    if (timeout_ms == 0) {
        ready = ready_now(fd, events);
        if (ready == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        return ready;
    }
    if (fd < l->nfds) {
        f = &l->fds[fd];
        if (((events & DIESEL_READ) && f->reader != NULL) ||
            ((events & DIESEL_WRITE) && f->writer != NULL)) {
            errno = EBUSY;
            return -1;
        }
        /* Watched already (the loop disarms lazily): the common case of
         * a green thread waiting again on its socket makes no call. */
        if ((f->registered & events) == events)
            goto watched;
    }
    if (diesel__loop_watch(l, fd, events) != 0) {
        /* epoll refuses regular files and the like, which poll(2) calls
         * always ready: so are they here. */
        if (errno == EPERM)
            return events;
        return -1;
    }
    f = &l->fds[fd];
watched:
    if (events & DIESEL_READ)
        f->reader = t;
    if (events & DIESEL_WRITE)
        f->writer = t;
    t->wait.kind = DIESEL__WAIT_FD;
    t->wait.fd = fd;
    t->wait.events = events;
    t->wait.revents = 0;
    l->fd_waiters++;
    err = diesel__task_park(t, diesel__deadline(timeout_ms));
    l->fd_waiters--;
    f = &l->fds[fd];   /* the table may have grown meanwhile */
    if (f->reader == t)
        f->reader = NULL;
    if (f->writer == t)
        f->writer = NULL;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return t->wait.revents;
}

int
diesel_fd_close(int fd)
{
    if (diesel__loop != NULL)
        diesel__loop_forget(diesel__loop, fd, EBADF);
    return close(fd);
}
