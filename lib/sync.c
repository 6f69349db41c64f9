/*
 * sync.c: events, bounded queues and locks between the green threads of
 * one loop.
 *
 * Each object keeps its parked green threads in FIFO wait lists (struct
 * diesel__waitlist in internal.h), threaded through the task records:
 *
 *   waitlist        task record         task record
 *   +------+        +-----------+       +-----------+
 *   | head |------->| wait_next |------>| wait_next |--> NULL
 *   | tail |--.     | wait_prev |<------| wait_prev |
 *   +------+  |     | wait_list |       | wait_list |  (both point back
 *             |     +-----------+       +-----------+   at the waitlist)
 *             '-------------------------^
 *
 * Whoever satisfies a waiter does the whole job for it before waking it:
 * it unlinks the waiter, then fires it, stores the item in its record
 * (wait_item), takes the item it was putting, or makes it the lock's
 * holder.  The waiter, once it runs, only looks at how it was woken.
 *
 * The hand-off race.  A waiter whose deadline passed, or that was
 * cancelled, is made ready (with ETIMEDOUT or ECANCELED) by the loop, but
 * stays in its list until it runs again, and some other green thread may
 * run in between.  Anything that hands over looks only at waiters still
 * WAITING, and unlinks the others it meets on the way (list_first_waiting
 * below).  diesel__task_wake does nothing to a green thread that is not
 * WAITING, so a wake error, once set, is never replaced.  Hence:
 *
 *   - park returns 0 if, and only if, the waiter was handed what it waited
 *     for, and it is unlinked then;
 *   - a waiter that timed out or was cancelled was handed nothing, and it
 *     unlinks itself if it is still linked: the object is as it was;
 *   - a waiter handed something and cancelled before it ran keeps what it
 *     was handed (its call succeeds; the cancel fails its next call).
 *
 * Lists are doubly linked so that a waiter that leaves early (timeout,
 * cancel) costs O(1), however many wait with it.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct diesel_event {
    struct diesel__waitlist waiters; /* green threads in diesel_event_wait */
    char name[DIESEL__NAME_MAX];     /* for the console, cut at 31 bytes */
};

/*
 * A ring of capacity slots; the oldest item is at items[first].
 *
 * Invariants (between calls): getters are WAITING only while the ring is
 * empty, and putters only while it is full.  A put with a getter WAITING
 * gives it the item directly; a get from a full ring moves the first
 * WAITING putter's item in.  So no one overtakes a green thread that
 * waits, and the ring order is the order of the puts.
 */
struct diesel_queue {
    void **items;                    /* the ring */
    size_t capacity;                 /* slots, >= 1 */
    size_t first;                    /* index of the oldest item */
    size_t length;                   /* items in the ring */
    struct diesel__waitlist getters; /* parked in diesel_queue_get */
    struct diesel__waitlist putters; /* parked in diesel_queue_put; each
                                        one's item is in its wait_item */
    unsigned closed : 1;             /* diesel_queue_close was called */
    char name[DIESEL__NAME_MAX];
};

/*
 * Held by at most one green thread, named by id: a record is reused by a
 * later green thread, an id never is.  Invariant: waiters are WAITING
 * only while the lock is held.
 */
struct diesel_lock {
    struct diesel__waitlist waiters; /* parked in diesel_lock_acquire */
    int64_t holder;                  /* id of the holder, or 0 */
    char name[DIESEL__NAME_MAX];
};

/* ---- Wait lists ---------------------------------------------------------- */

static void
list_push(struct diesel__waitlist *w, struct diesel__task *t)
{
    assert(t->wait_list == NULL);
    /* An object serves the green threads of one loop only. */
    assert(w->head == NULL || w->head->loop == t->loop);
    t->wait_list = w;
    t->wait_next = NULL;
    t->wait_prev = w->tail;
    if (w->tail != NULL)
        w->tail->wait_next = t;
    else
        w->head = t;
    w->tail = t;
}

static void
list_remove(struct diesel__task *t)
{
    struct diesel__waitlist *w = t->wait_list;

    assert(w != NULL);
    if (t->wait_prev != NULL)
        t->wait_prev->wait_next = t->wait_next;
    else
        w->head = t->wait_next;
    if (t->wait_next != NULL)
        t->wait_next->wait_prev = t->wait_prev;
    else
        w->tail = t->wait_prev;
    t->wait_next = t->wait_prev = NULL;
    t->wait_list = NULL;
}

/*
 * The first waiter that can still be handed something, or NULL.  Waiters
 * ahead of it were already woken by their deadline or a cancel and only
 * wait for their turn to run: they are unlinked, and get nothing.
 */
static struct diesel__task *
list_first_waiting(struct diesel__waitlist *w)
{
    struct diesel__task *t;

    while ((t = w->head) != NULL && t->state != DIESEL__WAITING)
        list_remove(t);
    return t;
}

/* Unlink every waiter and wake those still WAITING with err; how many. */
static int
list_wake_all(struct diesel__waitlist *w, int err)
{
    struct diesel__task *t;
    int n = 0;

    while ((t = w->head) != NULL) {
        list_remove(t);
        if (t->state == DIESEL__WAITING) {
            diesel__task_wake(t, err);
            n++;
        }
    }
    return n;
}

/* Unlink t, the first WAITING waiter, and wake it: it got what it waited
 * for. */
static void
hand_over(struct diesel__task *t)
{
    assert(t->state == DIESEL__WAITING);
    list_remove(t);
    diesel__task_wake(t, 0);
}

/* ---- Common parts of the calls ------------------------------------------- */

static void
name_copy(char *dst, const char *name, const char *fallback)
{
    strncpy(dst, name != NULL ? name : fallback, DIESEL__NAME_MAX - 1);
    dst[DIESEL__NAME_MAX - 1] = '\0';
}

/*
 * The calling green thread, if the call may go on: NULL with errno EPERM
 * (and a log line) outside a green thread, EINVAL for bad arguments (ok is
 * 0 or the timeout is below -1).  A cancelled green thread fails with
 * ECANCELED only where it would park (see diesel__task_park).
 */
static struct diesel__task *
enter(const char *func, int ok, int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running(func);

    if (t == NULL)
        return NULL;
    if (!ok || timeout_ms < -1) {
        errno = EINVAL;
        return NULL;
    }
    return t;
}

/*
 * Park t at the end of w until it is handed over to (0), or its timeout
 * passes, it is cancelled, or the object is closed (the error).  what and
 * object are what the console shows.
 */
static int
wait_in(struct diesel__task *t, struct diesel__waitlist *w, const char *what,
    const char *object, int64_t timeout_ms)
{
    int err;

    t->wait.kind = DIESEL__WAIT_OTHER;
    t->wait.what = what;
    t->wait.object = object;
    list_push(w, t);
    err = diesel__task_park(t, diesel__deadline(timeout_ms));
    /* Handed over means unlinked and woken with 0; anything else (also
     * ENOMEM for the timer, before parking) found it still linked, or
     * unlinked it without handing anything. */
    assert(err != 0 || t->wait_list == NULL);
    if (t->wait_list != NULL)
        list_remove(t);
    t->wait.object = NULL;
    return err;
}

static int
fail(int err)
{
    errno = err;
    return -1;
}

/* ---- Events ------------------------------------------------------------- */

struct diesel_event *
diesel_event_create(const char *name)
{
    struct diesel_event *ev = calloc(1, sizeof(*ev));

    if (ev == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    name_copy(ev->name, name, "event");
    return ev;
}

void
diesel_event_destroy(struct diesel_event *ev)
{
    if (ev == NULL)
        return;
    assert(ev->waiters.head == NULL);
    free(ev);
}

int
diesel_event_wait(struct diesel_event *ev, int64_t timeout_ms)
{
    struct diesel__task *t;
    int err;

    t = enter("diesel_event_wait", ev != NULL, timeout_ms);
    if (t == NULL)
        return -1;
    /* Only a later fire counts, so waiting always parks. */
    if (timeout_ms == 0)
        return fail(ETIMEDOUT);
    err = wait_in(t, &ev->waiters, "event", ev->name, timeout_ms);
    return err != 0 ? fail(err) : 0;
}

int
diesel_event_fire(struct diesel_event *ev)
{
    if (diesel__running("diesel_event_fire") == NULL)
        return -1;
    if (ev == NULL)
        return fail(EINVAL);
    return list_wake_all(&ev->waiters, 0);
}

/* ---- Queues -------------------------------------------------------------- */

static void
ring_push(struct diesel_queue *q, void *item)
{
    size_t i = q->first + q->length;

    assert(q->length < q->capacity);
    if (i >= q->capacity)
        i -= q->capacity;
    q->items[i] = item;
    q->length++;
}

static void *
ring_pop(struct diesel_queue *q)
{
    void *item = q->items[q->first];

    assert(q->length > 0);
    if (++q->first == q->capacity)
        q->first = 0;
    q->length--;
    return item;
}

struct diesel_queue *
diesel_queue_create(const char *name, size_t capacity)
{
    struct diesel_queue *q;

    if (capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    /* Checked here rather than left to calloc, whose failure sanitizers
     * report as a bug. */
    if (capacity > SIZE_MAX / sizeof(void *)) {
        errno = ENOMEM;
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    q->items = calloc(capacity, sizeof(*q->items));
    if (q->items == NULL) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->capacity = capacity;
    name_copy(q->name, name, "queue");
    return q;
}

void
diesel_queue_destroy(struct diesel_queue *q)
{
    if (q == NULL)
        return;
    assert(q->getters.head == NULL && q->putters.head == NULL);
    free(q->items);
    free(q);
}

int
diesel_queue_put(struct diesel_queue *q, void *item, int64_t timeout_ms)
{
    struct diesel__task *t, *getter;
    int err;

    t = enter("diesel_queue_put", q != NULL, timeout_ms);
    if (t == NULL)
        return -1;
    if (q->closed)
        return fail(EPIPE);
    if ((getter = list_first_waiting(&q->getters)) != NULL) {
        assert(q->length == 0);
        getter->wait_item = item;
        hand_over(getter);
        return 0;
    }
    if (q->length < q->capacity) {
        ring_push(q, item);
        return 0;
    }
    if (timeout_ms == 0)
        return fail(ETIMEDOUT);
    t->wait_item = item;
    err = wait_in(t, &q->putters, "queue put", q->name, timeout_ms);
    t->wait_item = NULL;
    return err != 0 ? fail(err) : 0;
}

int
diesel_queue_get(struct diesel_queue *q, void **item, int64_t timeout_ms)
{
    struct diesel__task *t, *putter;
    int err;

    t = enter("diesel_queue_get", q != NULL && item != NULL, timeout_ms);
    if (t == NULL)
        return -1;
    if (q->length > 0) {
        *item = ring_pop(q);
        /* Room for one more: the first parked putter's item moves in,
         * behind every item already there. */
        if ((putter = list_first_waiting(&q->putters)) != NULL) {
            ring_push(q, putter->wait_item);
            hand_over(putter);
        }
        return 0;
    }
    if (q->closed)
        return fail(EPIPE);
    if (timeout_ms == 0)
        return fail(ETIMEDOUT);
    t->wait_item = NULL;
    err = wait_in(t, &q->getters, "queue get", q->name, timeout_ms);
    if (err != 0)
        return fail(err);
    *item = t->wait_item;
    t->wait_item = NULL;
    return 0;
}

size_t
diesel_queue_length(const struct diesel_queue *q)
{
    return q != NULL ? q->length : 0;
}

int
diesel_queue_close(struct diesel_queue *q)
{
    if (diesel__running("diesel_queue_close") == NULL)
        return -1;
    if (q == NULL)
        return fail(EINVAL);
    q->closed = 1;
    /* Getters wait only on an empty queue and putters only on a full one:
     * neither will ever be served now.  Putters keep their items. */
    list_wake_all(&q->getters, EPIPE);
    list_wake_all(&q->putters, EPIPE);
    return 0;
}

/* ---- Locks --------------------------------------------------------------- */

struct diesel_lock *
diesel_lock_create(const char *name)
{
    struct diesel_lock *lk = calloc(1, sizeof(*lk));

    if (lk == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    name_copy(lk->name, name, "lock");
    return lk;
}

void
diesel_lock_destroy(struct diesel_lock *lk)
{
    if (lk == NULL)
        return;
    assert(lk->waiters.head == NULL);
    free(lk);
}

int
diesel_lock_acquire(struct diesel_lock *lk, int64_t timeout_ms)
{
    struct diesel__task *t;
    int err;

    t = enter("diesel_lock_acquire", lk != NULL, timeout_ms);
    if (t == NULL)
        return -1;
    if (lk->holder == t->id)
        return fail(EDEADLK);
    if (lk->holder == 0) {
        lk->holder = t->id;
        return 0;
    }
    if (timeout_ms == 0)
        return fail(ETIMEDOUT);
    err = wait_in(t, &lk->waiters, "lock", lk->name, timeout_ms);
    if (err != 0)
        return fail(err);
    assert(lk->holder == t->id);
    return 0;
}

int
diesel_lock_release(struct diesel_lock *lk)
{
    struct diesel__task *t = diesel__running("diesel_lock_release");
    struct diesel__task *next;

    if (t == NULL)
        return -1;
    if (lk == NULL)
        return fail(EINVAL);
    if (lk->holder != t->id)
        return fail(EPERM);
    /* Straight to the first waiter, so that no one barges in between. */
    if ((next = list_first_waiting(&lk->waiters)) != NULL) {
        lk->holder = next->id;
        hand_over(next);
    } else {
        lk->holder = 0;
    }
    return 0;
}
