/*
 * poll_epoll.c: the Linux backend.
 *
 * Level-triggered, and lazily disarmed by the loop: a descriptor stays in
 * the set between waits, so a green thread that reads, writes and waits
 * again costs no epoll_ctl; only an event that nobody waits for any more
 * takes the descriptor out (dispatch.h).  Events go to the loop
 * straight from the array epoll_wait filled.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dispatch.h"
#include "internal.h"

const char diesel__poll_name[] = "epoll";

/*
 * Events taken per wait, at most.  Few, so that a woken green thread runs
 * soon after its wake: the poll's wakes touch each descriptor's entry
 * and the run queue, and the green thread's park touches them again;
 * with a thousand events per wait, a thousand round trips run in
 * between, and those lines, and the array's, are read from memory a
 * second time.  Level-triggered, the rest are reported by the next wait
 * (epoll hands them out in turn), which costs a system call per 64
 * events.  Counted (test/bench/counted.sh, N = 1,000 connections of
 * 64-byte round trips): 4.49 D1 misses per round trip, against 4.92
 * when the array grew with full waits, 4.35 with 32 (but
 * 10 instructions more, against 4 with 64) and 4.50 with 128.
 */
#define EVENTS_MAX 64

struct backend {
    int epfd;
    struct epoll_event *events;
    int cap;
};

int
diesel__poll_init(struct diesel_loop *l)
{
    struct backend *b = calloc(1, sizeof(*b));
    int err;

    if (b == NULL)
        return -1;
    b->cap = EVENTS_MAX;
    b->events = malloc((size_t)b->cap * sizeof(*b->events));
    if (b->events == NULL)
        goto fail;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0)
        goto fail;
    l->backend = b;
    return 0;
fail:
    err = errno;
    free(b->events);
    free(b);
    errno = err;
    return -1;
}

void
diesel__poll_fini(struct diesel_loop *l)
{
    struct backend *b = l->backend;

    close(b->epfd);
    free(b->events);
    free(b);
    l->backend = NULL;
}

int
diesel__poll_set(struct diesel_loop *l, int fd, int old, int events)
{
    struct backend *b = l->backend;
    struct epoll_event ev;
    int op;

    ev.events = ((events & DIESEL_READ) ? EPOLLIN : 0) |
        ((events & DIESEL_WRITE) ? EPOLLOUT : 0);
    ev.data.u64 = 0;
    ev.data.fd = fd;
    op = old == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL :
        EPOLL_CTL_MOD;
    if (epoll_ctl(b->epfd, op, fd, &ev) == 0)
        return 0;
    /* Our idea of the set and the kernel's can differ for a descriptor
     * closed without diesel_fd_close and then reused: follow the
     * kernel's. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        return epoll_ctl(b->epfd, EPOLL_CTL_MOD, fd, &ev);
    return -1;
}

int
diesel__poll_wait(struct diesel_loop *l, int timeout_ms)
{
    struct backend *b = l->backend;
    int n = epoll_wait(b->epfd, b->events, b->cap, timeout_ms);

    if (n < 0)
        return errno == EINTR ? 0 : -1;
    return n;
}

void
diesel__poll_dispatch(struct diesel_loop *l, int n)
{
    struct backend *b = l->backend;

    /* A handler (the console's) may change the set, but epoll_ctl does
     * not touch this array. */
    for (int i = 0; i < n; i++) {
        uint32_t e = b->events[i].events;
        int ev = 0;

        /* Bytes to read and nothing else, the usual event, in one test
         * and a wake of its own (the events a constant in it). */
        if (__builtin_expect(e == EPOLLIN, 1)) {
            diesel__loop_fired(l, b->events[i].data.fd, DIESEL_READ);
            continue;
        }
        /* Errors and hangups wake both directions: the green thread
         * learns what happened from its own read or write. */
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
            ev |= DIESEL_READ;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            ev |= DIESEL_WRITE;
        diesel__loop_fired(l, b->events[i].data.fd, ev);
    }
}
