/*
 * fd.c: parking a green thread until a descriptor is ready.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "internal.h"
#include "park.h"

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
    int ready;

    if (t == NULL)
        return -1;
    if (fd < 0 || events == 0 || (events & ~(DIESEL_READ | DIESEL_WRITE)) ||
        timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    if (timeout_ms == 0) {
        ready = ready_now(fd, events);
        if (ready == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        return ready;
    }
    return diesel__fd_park(t, fd, events, diesel__deadline(timeout_ms));
}

int
diesel_fd_close(int fd)
{
    if (diesel__loop != NULL)
        diesel__loop_forget(diesel__loop, fd, EBADF);
    return close(fd);
}
