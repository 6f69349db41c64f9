/*
 * chan.c: channels, the one object that green threads of different loops
 * (different OS threads) share.
 *
 * The shared state is a ring of pointers behind a pthread mutex, as small
 * as a queue's.  A green thread that has to wait parks with the loop's
 * own descriptor wait (so timeouts and cancels work as for any other
 * wait) on one of two wake descriptors, which another OS thread can make
 * readable:
 *
 *   recv_fd  readable while receivers are parked and there is an item
 *            to take (or the channel is closed)
 *   send_fd  readable while senders are parked and there is room (or the
 *            channel is closed)
 *
 * Each one is written only when it has to become readable and is not
 * already, and read (emptied) as soon as no parked green thread needs it:
 * recv_sig and send_sig say which, under the mutex (settle() below).  So
 * a burst of sends to a parked receiver writes once, the receiver reads
 * once and takes the whole burst without parking again, and sends to a
 * receiver that is busy write nothing at all.
 *
 * A descriptor is watched by the loop of each green thread that parks on
 * it, for that wait only (forgotten after it): the channel can then be
 * destroyed on any thread without another loop's table keeping a
 * descriptor number that the kernel gives to something else.
 *
 * Order: parked green threads of different loops all see the descriptor
 * become readable, and the first to take the mutex is served; within a
 * loop, one green thread at a time may park on each side (the loop waits
 * one green thread per descriptor and direction).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "park.h"

struct diesel_chan {
    pthread_mutex_t mu;       /* guards everything below but the fds */
    void **items;             /* the ring */
    size_t capacity;          /* slots, >= 1 */
    size_t first;             /* index of the oldest item */
    size_t length;            /* items in the ring */
    unsigned recv_parked;     /* receivers between deciding to park and
                                 taking the mutex again */
    unsigned send_parked;     /* senders, likewise */
    unsigned recv_sig : 1;    /* recv_fd holds a wake not read yet */
    unsigned send_sig : 1;    /* send_fd, likewise */
    unsigned closed : 1;      /* diesel_chan_close was called */
    uint64_t wakes;           /* writes to either descriptor, for tests */
    int recv_fd[2];           /* [0] waited on and read, [1] written */
    int send_fd[2];
    char name[DIESEL__NAME_MAX];
};

/* ---- Wake descriptors ---------------------------------------------------- */

/* Make fd readable (want) or not, if it is not so already. */
static void
signal_set(struct diesel_chan *ch, const int fd[2], unsigned *sig, int want)
{
    uint64_t v = 1;

    if (want && !*sig) {
        /* An eventfd or a pipe that holds nothing: never full. */
        if (write(fd[1], &v, sizeof(v)) == (ssize_t)sizeof(v)) {
            *sig = 1;
            ch->wakes++;
        }
    } else if (!want && *sig) {
        if (read(fd[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
            *sig = 0;
    }
}

/* After every change, under the mutex: each descriptor is readable if,
 * and only if, a parked green thread can now go on. */
static void
settle(struct diesel_chan *ch)
{
    unsigned sig;

    sig = ch->recv_sig;
    signal_set(ch, ch->recv_fd, &sig,
        ch->recv_parked > 0 && (ch->length > 0 || ch->closed));
    ch->recv_sig = sig;
    sig = ch->send_sig;
    signal_set(ch, ch->send_fd, &sig,
        ch->send_parked > 0 && (ch->length < ch->capacity || ch->closed));
    ch->send_sig = sig;
}

/* ---- Calls --------------------------------------------------------------- */

struct diesel_chan *
diesel_chan_create(const char *name, size_t capacity)
{
    struct diesel_chan *ch;
    int err;

    if (capacity == 0 || capacity > SIZE_MAX / sizeof(void *)) {
        errno = EINVAL;
        return NULL;
    }
    if ((ch = calloc(1, sizeof(*ch))) == NULL)
        return NULL;
    if ((ch->items = malloc(capacity * sizeof(void *))) == NULL)
        goto fail;
    if ((err = pthread_mutex_init(&ch->mu, NULL)) != 0) {
        errno = err;
        goto fail_items;
    }
    if (diesel__platform_wakefd(ch->recv_fd) != 0)
        goto fail_mutex;
    if (diesel__platform_wakefd(ch->send_fd) != 0)
        goto fail_recv;
    ch->capacity = capacity;
    strncpy(ch->name, name != NULL ? name : "chan", DIESEL__NAME_MAX - 1);
    return ch;
fail_recv:
    err = errno;
    close(ch->recv_fd[0]);
    if (ch->recv_fd[1] != ch->recv_fd[0])
        close(ch->recv_fd[1]);
    errno = err;
fail_mutex:
    pthread_mutex_destroy(&ch->mu);
fail_items:
    err = errno;
    free(ch->items);
    errno = err;
fail:
    free(ch);
    return NULL;
}

/*
 * The caller, if the call may go on: a green thread, or any thread for a
 * timeout of 0 (which never parks), so that a plain OS thread can hand
 * work to a loop.  t is NULL in the latter case.
 */
static int
enter(const char *func, struct diesel_chan *ch, int64_t timeout_ms,
    struct diesel__task **t)
{
    *t = diesel__current;
    if (ch == NULL || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    if (*t == NULL && timeout_ms != 0) {
        diesel__misuse(func);
        return -1;
    }
    return 0;
}

/*
 * Park t on fd, the mutex released, until it is readable, the deadline
 * passes or t is cancelled; with the mutex held again.  *parked counts t
 * while it is away, so that whoever changes the channel meanwhile makes
 * fd readable.  0, or the error.
 */
static int
park(struct diesel_chan *ch, struct diesel__task *t, int fd,
    unsigned *parked, int64_t deadline)
{
    int err = 0;

    (*parked)++;
    pthread_mutex_unlock(&ch->mu);
    if (diesel__fd_park(t, fd, DIESEL_READ, deadline) < 0)
        err = errno;
    /* Watched for this wait only: see the top of the file.  (EBUSY: not
     * ours to forget, another green thread of this loop waits on it.) */
    if (err != EBUSY)
        diesel__loop_forget(t->loop, fd, 0);
    pthread_mutex_lock(&ch->mu);
    (*parked)--;
    return err;
}

/* The end of a send or a receive: the descriptors set for the change, the
 * mutex released, the call's result. */
static int
leave(struct diesel_chan *ch, int err)
{
    settle(ch);
    pthread_mutex_unlock(&ch->mu);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int
diesel_chan_send(struct diesel_chan *ch, void *item, int64_t timeout_ms)
{
    struct diesel__task *t;
    int64_t deadline = -1;
    int err = 0;

    if (enter("diesel_chan_send", ch, timeout_ms, &t) != 0)
        return -1;
    if (timeout_ms > 0)
        deadline = diesel__deadline(timeout_ms);
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        if (ch->closed) {
            err = EPIPE;
            break;
        }
        if (ch->length < ch->capacity) {
            ch->items[(ch->first + ch->length) % ch->capacity] = item;
            ch->length++;
            break;
        }
        if (timeout_ms == 0) {
            err = ETIMEDOUT;
            break;
        }
        if ((err = park(ch, t, ch->send_fd[0], &ch->send_parked,
            deadline)) != 0)
            break;
    }
    return leave(ch, err);
}

int
diesel_chan_recv(struct diesel_chan *ch, void **item, int64_t timeout_ms)
{
    struct diesel__task *t;
    int64_t deadline = -1;
    int err = 0;

    if (enter("diesel_chan_recv", ch, timeout_ms, &t) != 0)
        return -1;
    if (item == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (timeout_ms > 0)
        deadline = diesel__deadline(timeout_ms);
    pthread_mutex_lock(&ch->mu);
    for (;;) {
        if (ch->length > 0) {
            *item = ch->items[ch->first];
            ch->first = (ch->first + 1) % ch->capacity;
            ch->length--;
            break;
        }
        if (ch->closed) {
            err = EPIPE;
            break;
        }
        if (timeout_ms == 0) {
            err = ETIMEDOUT;
            break;
        }
        if ((err = park(ch, t, ch->recv_fd[0], &ch->recv_parked,
            deadline)) != 0)
            break;
    }
    return leave(ch, err);
}

size_t
diesel_chan_length(struct diesel_chan *ch)
{
    size_t n;

    if (ch == NULL)
        return 0;
    pthread_mutex_lock(&ch->mu);
    n = ch->length;
    pthread_mutex_unlock(&ch->mu);
    return n;
}

int
diesel_chan_close(struct diesel_chan *ch)
{
    if (ch == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&ch->mu);
    ch->closed = 1;
    settle(ch);
    pthread_mutex_unlock(&ch->mu);
    return 0;
}

void
diesel_chan_destroy(struct diesel_chan *ch)
{
    if (ch == NULL)
        return;
    /* A green thread still parked would wait on a closed descriptor. */
    assert(ch->recv_parked == 0 && ch->send_parked == 0);
    for (int i = 0; i < 2; i++) {
        close(ch->recv_fd[i]);
        close(ch->send_fd[i]);
        if (ch->recv_fd[1] == ch->recv_fd[0])
            break;
    }
    pthread_mutex_destroy(&ch->mu);
    free(ch->items);
    free(ch);
}

/* ---- For the tests ------------------------------------------------------- */

uint64_t
diesel__chan_wakes(struct diesel_chan *ch)
{
    uint64_t n;

    pthread_mutex_lock(&ch->mu);
    n = ch->wakes;
    pthread_mutex_unlock(&ch->mu);
    return n;
}

unsigned
diesel__chan_parked(struct diesel_chan *ch)
{
    unsigned n;

    pthread_mutex_lock(&ch->mu);
    n = ch->recv_parked + ch->send_parked;
    pthread_mutex_unlock(&ch->mu);
    return n;
}
