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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct diesel_event {
    struct diesel__sync s;           /* kind, name, the thread's list */
    struct diesel__waitlist waiters; /* green threads in diesel_event_wait */
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
    struct diesel__sync s;           /* kind, name, the thread's list */
    void **items;                    /* the ring */
    size_t capacity;                 /* slots, >= 1 */
    size_t first;                    /* index of the oldest item */
    size_t length;                   /* items in the ring */
    struct diesel__waitlist getters; /* parked in diesel_queue_get */
    struct diesel__waitlist putters; /* parked in diesel_queue_put; each
                                        one's item is in its wait_item */
    unsigned closed : 1;             /* diesel_queue_close was called */
};

/*
 * Held by at most one green thread, named by id: a record is reused by a
 * later green thread, an id never is.  Invariant: waiters are WAITING
 * only while the lock is held.
 */
struct diesel_lock {
    struct diesel__sync s;           /* kind, name, the thread's list */
    struct diesel__waitlist waiters; /* parked in diesel_lock_acquire */
    int64_t holder;                  /* id of the holder, or 0 */
    int64_t held_since;              /* monotonic ns it was taken */
};

__thread struct diesel__sync *diesel__syncs;

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

/* Name s and put it at the head of this thread's list of objects. */
static void
sync_add(struct diesel__sync *s, enum diesel__sync_kind kind,
    const char *name, const char *fallback)
{
    s->kind = kind;
    strncpy(s->name, name != NULL ? name : fallback, DIESEL__NAME_MAX - 1);
    s->name[DIESEL__NAME_MAX - 1] = '\0';
    s->next = diesel__syncs;
    if (s->next != NULL)
        s->next->prevp = &s->next;
    s->prevp = &diesel__syncs;
    diesel__syncs = s;
}

static void
sync_del(struct diesel__sync *s)
{
    /* Destroyed on another thread than its creator's, it would unlink
     * itself from that thread's list while the list may be walked. */
    assert(*s->prevp == s);
    *s->prevp = s->next;
    if (s->next != NULL)
        s->next->prevp = s->prevp;
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
    const struct diesel__sync *object, int64_t timeout_ms)
{
    int64_t deadline = diesel__deadline(timeout_ms);
    int err;

    t->wait.kind = DIESEL__WAIT_OTHER;
    t->wait.what = what;
    t->wait.object = object->name;
    t->wait.sync = object;
    list_push(w, t);
    if (object->kind == DIESEL__SYNC_LOCK)
        diesel__sync_cycle_check(t);
    diesel__sync_park(t, deadline);
    err = diesel__task_park(t, deadline);
    diesel__sync_unpark(t);
    /* Handed over means unlinked and woken with 0; anything else (also
     * ENOMEM for the timer, before parking) found it still linked, or
     * unlinked it without handing anything. */
    assert(err != 0 || t->wait_list == NULL);
    if (t->wait_list != NULL)
        list_remove(t);
    t->wait.object = NULL;
    t->wait.sync = NULL;
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
    sync_add(&ev->s, DIESEL__SYNC_EVENT, name, "event");
    return ev;
}

void
diesel_event_destroy(struct diesel_event *ev)
{
    if (ev == NULL)
        return;
    assert(ev->waiters.head == NULL);
    sync_del(&ev->s);
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
    err = wait_in(t, &ev->waiters, "event", &ev->s, timeout_ms);
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
    sync_add(&q->s, DIESEL__SYNC_QUEUE, name, "queue");
    return q;
}

void
diesel_queue_destroy(struct diesel_queue *q)
{
    if (q == NULL)
        return;
    assert(q->getters.head == NULL && q->putters.head == NULL);
    sync_del(&q->s);
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
    err = wait_in(t, &q->putters, "queue put", &q->s, timeout_ms);
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
    err = wait_in(t, &q->getters, "queue get", &q->s, timeout_ms);
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
    sync_add(&lk->s, DIESEL__SYNC_LOCK, name, "lock");
    return lk;
}

void
diesel_lock_destroy(struct diesel_lock *lk)
{
    if (lk == NULL)
        return;
    assert(lk->waiters.head == NULL);
    sync_del(&lk->s);
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
        lk->held_since = t->loop->now;
        return 0;
    }
    if (timeout_ms == 0)
        return fail(ETIMEDOUT);
    err = wait_in(t, &lk->waiters, "lock", &lk->s, timeout_ms);
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
        lk->held_since = t->loop->now;
        hand_over(next);
    } else {
        lk->holder = 0;
    }
    return 0;
}

/* ---- For the console and the deadlock report ----------------------------- */

void
diesel__sync_info(const struct diesel__sync *s, struct diesel__sync_info *i)
{
    memset(i, 0, sizeof(*i));
    switch (s->kind) {
    case DIESEL__SYNC_EVENT: {
        const struct diesel_event *ev = (const struct diesel_event *)s;

        i->kind = "event";
        i->waiters = &ev->waiters;
        break;
    }
    case DIESEL__SYNC_QUEUE: {
        const struct diesel_queue *q = (const struct diesel_queue *)s;

        i->kind = "queue";
        i->waiters = &q->getters;
        i->putters = &q->putters;
        i->length = q->length;
        i->capacity = q->capacity;
        i->closed = q->closed;
        break;
    }
    case DIESEL__SYNC_LOCK: {
        const struct diesel_lock *lk = (const struct diesel_lock *)s;

        i->kind = "lock";
        i->waiters = &lk->waiters;
        i->holder = lk->holder;
        i->held_since = lk->held_since;
        break;
    }
    }
}

int64_t
diesel__sync_waits_for(const struct diesel__task *t, const char **what,
    const char **object)
{
    const struct diesel__sync *s = t->wait.sync;
    int64_t id = 0;
    const char *w = "-", *o = NULL;

    /* RUNNING: about to park (diesel__sync_cycle_check).  READY: woken,
     * it waits for no one any more. */
    if (t->state != DIESEL__WAITING && t->state != DIESEL__RUNNING) {
        /* nothing */
    } else if (t->wait.kind == DIESEL__WAIT_JOIN) {
        w = "join";
        id = t->wait.target;
    } else if (t->wait.kind == DIESEL__WAIT_OTHER && s != NULL) {
        w = t->wait.what;
        o = s->name;
        if (s->kind == DIESEL__SYNC_LOCK)
            id = ((const struct diesel_lock *)s)->holder;
    }
    if (what != NULL)
        *what = w;
    if (object != NULL)
        *object = o;
    return id;
}

/* Collect the live green threads into an array (by id) for the cycle
 * search: each has one edge at most, to whom it waits for. */
struct node {
    int64_t id;
    struct diesel__task *t;
    size_t walk;         /* the walk that reached it first, or 0 */
};

struct nodes {
    struct node *a;
    size_t n, cap;
};

static void
node_add(struct diesel__task *t, void *arg)
{
    struct nodes *ns = arg;

    if (ns->n < ns->cap) {
        ns->a[ns->n].id = t->id;
        ns->a[ns->n].t = t;
        ns->a[ns->n].walk = 0;
        ns->n++;
    }
}

static int
node_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct node *)a)->id, y = ((const struct node *)b)->id;

    return x < y ? -1 : x > y;
}

static struct node *
node_find(struct nodes *ns, int64_t id)
{
    struct node key = { id, NULL, 0 };

    return bsearch(&key, ns->a, ns->n, sizeof(key), node_cmp);
}

/*
 * Every green thread waits for one other at most (a lock has one holder,
 * a join one target), so the wait-for graph is a set of chains that may
 * each end in one cycle.  Walk each chain from every green thread not yet
 * reached, marking what the walk reaches with its number: meeting a mark
 * of this walk closes a cycle; meeting an older one joins a chain already
 * walked.  O(n log n) for n green threads.
 */
int
diesel__sync_cycles(struct diesel_loop *l,
    void (*fn)(struct diesel__task *const *ts, size_t n, void *), void *arg)
{
    struct nodes ns = { NULL, 0, (size_t)l->ntasks };
    struct diesel__task **cycle = NULL;
    int found = 0;

    if (ns.cap == 0)
        return 0;
    ns.a = malloc(ns.cap * sizeof(*ns.a));
    cycle = malloc(ns.cap * sizeof(*cycle));
    if (ns.a == NULL || cycle == NULL) {
        free(ns.a);
        free(cycle);
        errno = ENOMEM;
        return -1;
    }
    diesel__task_foreach(l, node_add, &ns);
    qsort(ns.a, ns.n, sizeof(*ns.a), node_cmp);
    for (size_t i = 0; i < ns.n; i++) {
        struct node *v = &ns.a[i];
        size_t walk = i + 1, len = 0;

        while (v != NULL && v->walk == 0) {
            int64_t next = diesel__sync_waits_for(v->t, NULL, NULL);

            v->walk = walk;
            v = next != 0 ? node_find(&ns, next) : NULL;
        }
        if (v == NULL || v->walk != walk)
            continue;
        /* v is on the cycle: go round it once. */
        for (struct node *u = v; len == 0 || u != v;
            u = node_find(&ns, diesel__sync_waits_for(u->t, NULL, NULL)))
            cycle[len++] = u->t;
        fn(cycle, len, arg);
        found++;
    }
    free(ns.a);
    free(cycle);
    return found;
}

/* ---- The deadlock report ------------------------------------------------- */

/* Green threads listed one by one in the report, at most. */
#define REPORT_TASKS 32

struct report {
    struct diesel_loop *l;
    size_t listed, skipped;
};

/* "lock b, held by 4 right", "join 3 left", "queue get jobs". */
static void
describe(struct diesel_loop *l, const struct diesel__task *t, char *buf,
    size_t size)
{
    const char *what, *object;
    int64_t id = diesel__sync_waits_for(t, &what, &object);
    struct diesel__task *u = id != 0 ? diesel__task_find(l, id) : NULL;
    int n;

    n = snprintf(buf, size, "%s%s%s", what, object != NULL ? " " : "",
        object != NULL ? object : "");
    if (id != 0 && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "%s%lld %s",
            t->wait.kind == DIESEL__WAIT_JOIN ? " " : ", held by ",
            (long long)id, u != NULL ? u->name : "(gone)");
}

static void
report_task(struct diesel__task *t, void *arg)
{
    struct report *r = arg;
    char desc[160];

    if (t->daemon)
        return;
    if (r->listed == REPORT_TASKS) {
        r->skipped++;
        return;
    }
    r->listed++;
    describe(r->l, t, desc, sizeof(desc));
    diesel_log("diesel", DIESEL_LOG_WARNING, "deadlock:   %lld %s: %s, for "
        "%.3fs", (long long)t->id, t->name, desc,
        (double)(r->l->now - t->wait.since) / 1e9);
}

static void
report_cycle(struct diesel__task *const *ts, size_t n, void *arg)
{
    char line[1024];
    size_t k = 0;

    (void)arg;
    for (size_t i = 0; i <= n && k < sizeof(line); i++) {
        struct diesel__task *t = ts[i % n];
        const char *what, *object;

        diesel__sync_waits_for(t, &what, &object);
        k += (size_t)snprintf(line + k, sizeof(line) - k, i < n ?
            "%lld %s -> %s%s%s -> " : "%lld %s", (long long)t->id, t->name,
            what, object != NULL ? " " : "", object != NULL ? object : "");
    }
    diesel_log("diesel", DIESEL_LOG_WARNING, "deadlock: cycle: %s", line);
}

void
diesel__sync_cycle_check(struct diesel__task *t)
{
    struct diesel_loop *l = t->loop;
    struct diesel__task **cycle;
    struct diesel__task *u = t;
    size_t n = 0;

    /* Follow whom each waits for from t: back at t is a cycle that t
     * closes now (any other was logged when it closed).  A chain of
     * green threads that wait for each other is short in practice;
     * ntasks bounds it, and a chain that runs into an older cycle. */
    for (uint64_t i = 0; i <= l->ntasks; i++) {
        int64_t id = diesel__sync_waits_for(u, NULL, NULL);

        if (id == 0 || (u = diesel__task_find(l, id)) == NULL)
            return;
        if (u == t)
            break;
    }
    if (u != t)
        return;
    cycle = malloc((size_t)l->ntasks * sizeof(*cycle));
    if (cycle == NULL)
        return;
    do {
        cycle[n++] = u;
        u = diesel__task_find(l, diesel__sync_waits_for(u, NULL, NULL));
    } while (u != t && n < l->ntasks);
    report_cycle(cycle, n, NULL);
    free(cycle);
}

void
diesel__sync_deadlock_report(struct diesel_loop *l)
{
    struct report r = { l, 0, 0 };

    diesel_log("diesel", DIESEL_LOG_WARNING, "deadlock: every green thread "
        "is parked with nothing that could wake any of them (%llu green "
        "threads, %llu on events, queues, locks or joins without a timeout; "
        "no timer, descriptor or signal of theirs left): the console's "
        "sync shows the objects", (unsigned long long)(l->ntasks -
        l->ndaemons), (unsigned long long)l->sync_parked);
    diesel__task_foreach(l, report_task, &r);
    if (r.skipped > 0)
        diesel_log("diesel", DIESEL_LOG_WARNING, "deadlock:   and %zu more",
            r.skipped);
    diesel__sync_cycles(l, report_cycle, NULL);
}
