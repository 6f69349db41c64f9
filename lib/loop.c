/*
 * loop.c: the run loop.  Each turn runs the ready green threads, then
 * polls (without blocking if some are ready again, else until the next
 * deadline), wakes the green threads whose descriptors fired, and then
 * those whose deadlines passed.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "park.h"
#include "sanitize.h"

/* Dirty pooled stacks purged (stack.c) per turn that is about to wait. */
#define PURGE_PER_TURN 16
#define QUIET_POLL_NS 1000000  /* at most this long between polls when no
                                  green thread waits on a descriptor */

__thread struct diesel_loop *diesel__loop;
__thread struct diesel__task *diesel__current;

int64_t
diesel__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
diesel__deadline(int64_t timeout_ms)
{
    int64_t now;

    if (timeout_ms < 0)
        return -1;
    now = diesel__now_ns();
    if (timeout_ms > (INT64_MAX - now) / 1000000)
        return -1;
    return now + timeout_ms * 1000000;
}

struct diesel__task *
diesel__misuse(const char *func)
{
    diesel_log("diesel", DIESEL_LOG_ERROR,
        "%s() called outside a green thread: call it from a function run "
        "by diesel_loop_run() or diesel_task_spawn()", func);
    errno = EPERM;
    return NULL;
}

const char *
diesel_loop_backend(void)
{
    return diesel__poll_name;
}

/* ---- Descriptors ---------------------------------------------------------- */

static int
fds_reserve(struct diesel_loop *l, int fd)
{
    int n;
    struct diesel__fd *fds;
    diesel__fd_handler *h;

    if (fd < l->nfds)
        return 0;
    n = l->nfds ? l->nfds : 64;
    while (n <= fd)
        n *= 2;
    /* The handlers first: the entries' size is what says both grew. */
    h = realloc(l->handlers, (size_t)n * sizeof(*h));
    if (h == NULL) {
        errno = ENOMEM;
        return -1;
    }
    l->handlers = h;
    for (int i = l->nfds; i < n; i++)
        h[i] = NULL;
    fds = realloc(l->fds, (size_t)n * sizeof(*fds));
    if (fds == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memset(fds + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*fds));
    l->fds = fds;
    l->nfds = n;
    return 0;
}

static int
set_events(struct diesel_loop *l, int fd, int events)
{
    struct diesel__fd *f = &l->fds[fd];
    int old = diesel__fd_registered(f);

    if (diesel__poll_set(l, fd, old, events) != 0)
        return -1;
    if (old == 0 && events != 0)
        l->watched++;
    else if (old != 0 && events == 0)
        l->watched--;
    diesel__fd_set_registered(f, events);
    return 0;
}

struct diesel__fd *
diesel__loop_watch(struct diesel_loop *l, int fd, int events)
{
    if (fds_reserve(l, fd) != 0)
        return NULL;
    if ((diesel__fd_registered(&l->fds[fd]) & events) != events &&
        set_events(l, fd, diesel__fd_registered(&l->fds[fd]) | events) != 0)
        return NULL;
    return &l->fds[fd];
}

void
diesel__loop_forget(struct diesel_loop *l, int fd, int err)
{
    struct diesel__fd *f;

    if (fd < 0 || fd >= l->nfds)
        return;
    f = &l->fds[fd];
    if (diesel__fd_reader(f) != NULL)
        diesel__task_wake(diesel__fd_reader(f), err);
    if (diesel__fd_writer(f) != NULL)
        diesel__task_wake(diesel__fd_writer(f), err);
    diesel__fd_set_reader(f, NULL);
    diesel__fd_set_writer(f, NULL);
    if (diesel__fd_registered(f) != 0 && set_events(l, fd, 0) != 0) {
        /* The descriptor is already gone from the kernel's set (closed
         * behind our back): forget it here too. */
        diesel__fd_set_registered(f, 0);
        l->watched--;
    }
}

int
diesel__loop_handler_add(struct diesel_loop *l, int fd,
    diesel__fd_handler handler, int waker)
{
    assert(handler != NULL);
    if (fds_reserve(l, fd) != 0)
        return -1;
    assert(diesel__fd_reader(&l->fds[fd]) == NULL &&
        diesel__fd_writer(&l->fds[fd]) == NULL);
    if (set_events(l, fd, DIESEL_READ) != 0)
        return -1;
    l->handlers[fd] = handler;
    l->fds[fd].rd = (void *)((uintptr_t)l->fds[fd].rd | DIESEL__FD_HANDLER);
    /* Something outside the green threads can now make one runnable, so
     * the deadlock check in run() must not fire while it is watched. */
    if (waker)
        l->fds[fd].wr = (void *)((uintptr_t)l->fds[fd].wr |
            DIESEL__FD_WAKER);
    l->wakers += waker != 0;
    return 0;
}

void
diesel__loop_handler_del(struct diesel_loop *l, int fd)
{
    struct diesel__fd *f;

    if (fd < 0 || fd >= l->nfds || !((uintptr_t)l->fds[fd].rd & DIESEL__FD_HANDLER))
        return;
    f = &l->fds[fd];
    f->rd = (void *)((uintptr_t)f->rd & ~DIESEL__FD_HANDLER);
    l->handlers[fd] = NULL;
    if ((uintptr_t)f->wr & DIESEL__FD_WAKER) {
        f->wr = (void *)((uintptr_t)f->wr & ~DIESEL__FD_WAKER);
        l->wakers--;
    }
    if (diesel__fd_registered(f) != 0 && set_events(l, fd, 0) != 0) {
        diesel__fd_set_registered(f, 0);
        l->watched--;
    }
}

/* dispatch.h's rare path: a direction that fired with no one waiting
 * is watched no more (level-triggered, it would fire again).  A failure
 * leaves it watched, and the next event tries again. */
void
diesel__loop_disarm(struct diesel_loop *l, int fd, int events)
{
    (void)set_events(l, fd, events);
}

/* ---- The loop --------------------------------------------------------- */

/* The observers' hooks of a turn, around the poll (observers.c). */
static void
before_poll(struct diesel_loop *l)
{
    for (const struct diesel__loop_hooks *h = diesel__loop_observers;
        h->name != NULL; h++)
        if (h->before_poll != NULL)
            h->before_poll(l);
}

static void
after_poll(struct diesel_loop *l)
{
    for (const struct diesel__loop_hooks *h = diesel__loop_observers;
        h->name != NULL; h++)
        if (h->after_poll != NULL)
            h->after_poll(l);
}

/* End the observers started before `upto` (all: the NULL-named end of
 * the table), in reverse order. */
static void
observers_end(struct diesel_loop *l, const struct diesel__loop_hooks *upto)
{
    while (upto-- != diesel__loop_observers)
        if (upto->end != NULL)
            upto->end(l);
}

/* Start every observer in order; on a failure, end those started. */
static int
observers_start(struct diesel_loop *l)
{
    const struct diesel__loop_hooks *h;

    for (h = diesel__loop_observers; h->name != NULL; h++) {
        if (h->start != NULL && h->start(l) != 0) {
            int err = errno;

            observers_end(l, h);
            errno = err;
            return -1;
        }
    }
    return 0;
}

static const struct diesel__loop_hooks *
observers_last(void)
{
    const struct diesel__loop_hooks *h = diesel__loop_observers;

    while (h->name != NULL)
        h++;
    return h;
}

static void
fire_timers(struct diesel_loop *l)
{
    struct diesel__heap_node *n;

    while ((n = diesel__heap_min(&l->timers)) != NULL && n->key <= l->now) {
        struct diesel__task *t = (struct diesel__task *)((char *)n -
            offsetof(struct diesel__task, timer));
        diesel__task_wake(t, ETIMEDOUT);
    }
}

static int
poll_timeout(struct diesel_loop *l)
{
    struct diesel__heap_node *n;
    int64_t left;

    if (diesel__nready(l) != 0)
        return 0;
    n = diesel__heap_min(&l->timers);
    if (n == NULL)
        return -1;
    left = n->key - diesel__now_ns();
    if (left <= 0)
        return 0;
    /* Round up: waking early would only mean another turn. */
    left = (left + 999999) / 1000000;
    return left > 86400000 ? 86400000 : (int)left;
}

/*
 * Whether this turn asks the kernel, and the turn's time in l->now either
 * way (read after the poll when there is one).
 *
 * A poll that must not block (timeout 0: green threads are ready) is for
 * the green threads parked on descriptors.  With none parked, what the
 * loop watches is its own: the console's self-pipe and the mailbox that
 * other loops and the console's handler write, and descriptors left
 * watched after their green thread went on.  Those can wait a little, so
 * a loop whose green threads keep yielding and wait on no descriptor asks
 * the kernel once per QUIET_POLL_NS rather than once per POLL_BUDGET
 * switches (task.c): in a VM a poll costs about as much as a hundred
 * switches, which it would double.  An attach or a request from another
 * loop then waits up to QUIET_POLL_NS longer, in a loop that is busy.
 */
static int
must_poll(struct diesel_loop *l, int timeout)
{
    int64_t now;

    if (timeout != 0 || (l->watched > 0 && l->fd_waiters > 0))
        return 1;
    now = diesel__now_ns();
    if (l->watched > 0 && now - l->polled_at >= QUIET_POLL_NS)
        return 1;
    __atomic_store_n(&l->now, now, __ATOMIC_RELAXED);
    return 0;
}

static void
run(struct diesel_loop *l)
{
    while (l->ntasks > 0) {
        int timeout, idle, n = 0;

        l->iterations++;
        diesel__task_run_ready(l);
        diesel__task_reap(l);
        if (l->ntasks == 0)
            break;
        if (l->ntasks == l->ndaemons) {
            /* Only daemons (console sessions) are left: they must not
             * keep the program alive.  Cancel them once and let them
             * return; spawning a non-daemon later re-arms this. */
            if (!l->daemons_cancelled) {
                l->daemons_cancelled = 1;
                diesel__task_cancel_daemons(l);
                continue;
            }
        } else {
            l->daemons_cancelled = 0;
        }
        /* The run queue empty, its ring starts again at the front: the
         * poll's wakes and the switches that follow reuse its first few
         * lines, rather than stream through the whole ring and miss a
         * line every 8 wakes (it has room for every green thread). */
        if (diesel__nready(l) == 0)
            l->ready_head = l->ready_tail = 0;
        timeout = poll_timeout(l);
        /*
         * A deadlock: nothing could wake any green thread of the program.
         * Either every one of them (daemons aside) is parked on an event,
         * a queue, a lock or a join with no deadline, so that only they
         * could wake each other, whatever the library itself watches (the
         * console's self-pipe, its sessions); or nothing at all is left to
         * wait for, whatever they wait on: no timer, no descriptor.  The
         * report is logged once per episode, which ends when one of them
         * is woken (cancelled from the console, say).
         */
        idle = timeout < 0 && l->fd_waiters == 0 && l->wakers == 0;
        if (!diesel__sync_all_parked(l) && !idle) {
            l->deadlock_reported = 0;
        } else if (!l->deadlock_reported) {
            l->deadlock_reported = 1;
            diesel__sync_deadlock_report(l);
        }
        if (idle) {
            /* Nothing outside the green threads can end it either: fail
             * the loop rather than wait for ever. */
            l->deadlock_reported = 0;
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "all %llu green threads are blocked and nothing can wake "
                "them (no timers, no descriptors waited on): cancelling "
                "them all", (unsigned long long)l->ntasks);
            l->deadlocked = 1;
            diesel__task_cancel_all(l);
            continue;
        }
        if (timeout != 0 && l->npool_dirty > 0) {
            /* Idle: a good time for system calls that nobody waits for. */
            diesel__task_purge_pool(l, PURGE_PER_TURN);
            if (timeout > 0)
                timeout = poll_timeout(l);
        }
        before_poll(l);
        if (must_poll(l, timeout)) {
            /* A loop waiting in poll is idle: neither hogged (hog.c)
             * nor stuck (console_stuck.c). */
            __atomic_store_n(&l->in_poll, 1, __ATOMIC_RELEASE);
            n = diesel__poll_wait(l, timeout);
            /* The start of the next turn, as the console's handler reads
             * it, before in_poll drops: a request whose signal landed in
             * between would otherwise take the time before the poll for
             * the last turn, and an idle loop for one stuck all the time
             * it slept. */
            __atomic_store_n(&l->now, diesel__now_ns(), __ATOMIC_RELAXED);
            __atomic_store_n(&l->in_poll, 0, __ATOMIC_RELEASE);
            l->polled_at = l->now;
            l->polls++;
            if (n > 0)
                l->events += (uint64_t)n;
        }
        after_poll(l);
        /* Deadlines that passed came before what the poll has just
         * reported: their green threads run first. */
        fire_timers(l);
        if (n > 0)
            diesel__poll_dispatch(l, n);
    }
}

int
diesel_loop_run(diesel_task_fn fn, void *arg)
{
    struct diesel_loop *l;
    int status, err;

    if (diesel__loop != NULL) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "diesel_loop_run() called while a loop runs on this thread: "
            "spawn a green thread with diesel_task_spawn() instead");
        errno = EBUSY;
        return -1;
    }
    if (fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -1;
    diesel__switch_init();
    diesel__heap_init(&l->timers);
    l->errno_ptr = &errno;
    l->exited = calloc(DIESEL__EXITED_KEEP, sizeof(*l->exited));
    if (l->exited == NULL) {
        free(l);
        return -1;
    }
    l->started = l->now = diesel__now_ns();
    l->tsan_fiber = DIESEL__TSAN_CURRENT();
    if (diesel__poll_init(l) != 0) {
        err = errno;
        free(l->exited);
        free(l);
        errno = err;
        return -1;
    }
    diesel__loop = l;
    diesel_log("diesel", DIESEL_LOG_WARNING, "Starting diesel <hand-rolled %s>",
        diesel__poll_name);
    if (observers_start(l) != 0) {
        err = errno;
        diesel__loop = NULL;
        diesel__poll_fini(l);
        free(l->exited);
        free(l);
        errno = err;
        return -1;
    }
    l->main_id = diesel__task_spawn(NULL, NULL, "main", fn, arg, 0);
    if (l->main_id < 0) {
        err = errno;
        status = -1;
    } else {
        run(l);
        err = 0;
        status = l->stopping ? l->stop_status : l->main_status;
        if (l->deadlocked && !l->stopping) {
            err = EDEADLK;
            status = -1;
        }
    }
    observers_end(l, observers_last());
    diesel__task_free_all(l);
    diesel__heap_fini(&l->timers);
    diesel__poll_fini(l);
    free(l->fds);
    free(l->handlers);
    diesel__loop = NULL;
    free(l);
    if (err != 0)
        errno = err;
    return status;
}

int
diesel_loop_stop(int status)
{
    struct diesel_loop *l = diesel__loop;

    if (l == NULL) {
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "diesel_loop_stop() called with no loop running on this thread");
        errno = EPERM;
        return -1;
    }
    if (!l->stopping) {
        l->stopping = 1;
        l->stop_status = status;
    }
    diesel__task_cancel_all(l);
    return 0;
}
