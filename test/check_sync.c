/*
 * check_sync.c: events, bounded queues and locks between green threads:
 * FIFO service, hand-over, timeouts, cancellation, closing, a hand-over
 * racing a deadline, misuse outside a loop, and a producer/consumer
 * stress.  Every test runs real green threads through diesel_loop_run.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "internal.h"

/* ---- Helpers ----------------------------------------------------------- */

/* Let time pass without yielding: deadlines expire, the loop does not
 * run, so nothing is woken until the caller parks. */
static void
spin_ms(int64_t ms)
{
    int64_t end = t_now_ms() + ms;

    while (t_now_ms() < end)
        ;
}

/* A green thread's record, to look at its recorded state. */
static struct diesel__task *
task_of(int64_t id)
{
    struct diesel__task *t = diesel__task_find(diesel__loop, id);

    ck_assert_ptr_nonnull(t);
    return t;
}

/* The order in which waiters were served, one letter each. */
static char order[256];
static size_t norder;

static void
order_reset(void)
{
    norder = 0;
    order[0] = '\0';
}

static void
note(char c)
{
    ck_assert_uint_lt(norder, sizeof(order) - 1);
    order[norder++] = c;
    order[norder] = '\0';
}

/* What one waiting green thread was told. */
struct waiter {
    char tag;            /* noted when served */
    void *obj;           /* event, queue or lock */
    int64_t timeout;     /* for its call */
    void *item;          /* to put, or what it got */
    int rc;              /* its call's result */
    int err;             /* errno when rc is -1, else 0 */
    int after_err;       /* errno of a later diesel_sleep(1), or 0 */
    int64_t elapsed;     /* ms its call took */
};

static void
waiter_init(struct waiter *w, char tag, void *obj, int64_t timeout,
    void *item)
{
    memset(w, 0, sizeof(*w));
    w->tag = tag;
    w->obj = obj;
    w->timeout = timeout;
    w->item = item;
    w->rc = 99;
}

static void
waiter_done(struct waiter *w, int rc, int64_t t0)
{
    w->err = rc != 0 ? errno : 0;
    w->rc = rc;
    w->elapsed = t_now_ms() - t0;
    if (rc == 0)
        note(w->tag);
}

static int
event_waiter(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = t_now_ms();

    waiter_done(w, diesel_event_wait(w->obj, w->timeout), t0);
    return 0;
}

static int
getter(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = t_now_ms();

    waiter_done(w, diesel_queue_get(w->obj, &w->item, w->timeout), t0);
    return 0;
}

static int
putter(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = t_now_ms();

    waiter_done(w, diesel_queue_put(w->obj, w->item, w->timeout), t0);
    return 0;
}

/* Acquire, give others a chance to barge in, release. */
static int
locker(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = t_now_ms();

    waiter_done(w, diesel_lock_acquire(w->obj, w->timeout), t0);
    if (w->rc == 0) {
        diesel_task_yield();
        ck_assert_int_eq(diesel_lock_release(w->obj), 0);
    }
    return 0;
}

/* As the others, then check that a cancel still sticks afterwards. */
static int
then_sleep(struct waiter *w)
{
    if (diesel_sleep(1) != 0)
        w->after_err = errno;
    return 0;
}

static int
event_waiter_then_sleep(void *arg)
{
    event_waiter(arg);
    return then_sleep(arg);
}

static int
getter_then_sleep(void *arg)
{
    getter(arg);
    return then_sleep(arg);
}

static int
putter_then_sleep(void *arg)
{
    putter(arg);
    return then_sleep(arg);
}

static int
holder_then_release(void *arg)
{
    struct waiter *w = arg;
    int64_t t0 = t_now_ms();

    waiter_done(w, diesel_lock_acquire(w->obj, w->timeout), t0);
    then_sleep(w);
    /* Cancelled or not, the holder can still release. */
    if (w->rc == 0)
        ck_assert_int_eq(diesel_lock_release(w->obj), 0);
    return 0;
}

static int64_t
go(const char *name, diesel_task_fn fn, void *arg)
{
    int64_t id = diesel_task_spawn(name, fn, arg, 0);

    ck_assert_int_gt(id, 0);
    return id;
}

/* Wait for a green thread to return (it may have returned already):
 * 10 s, times CK_TIMEOUT_MULTIPLIER, since the stress test's 100,000
 * items took longer than 10 s under valgrind beside an ASan run. */
static void
join(int64_t id)
{
    if (diesel_task_join(id, NULL, t_slow(10000)) != 0)
        ck_assert_int_eq(errno, ESRCH);
}

/* Let every green thread spawned so far run until it parks. */
static void
settle(void)
{
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(diesel_task_yield(), 0);
}

static void
assert_parked_on(int64_t id, const char *what, const char *object)
{
    struct diesel__task *t = task_of(id);

    ck_assert_int_eq(t->state, DIESEL__WAITING);
    ck_assert_int_eq(t->wait.kind, DIESEL__WAIT_OTHER);
    ck_assert_str_eq(t->wait.what, what);
    ck_assert_str_eq(t->wait.object, object);
}

#define ITEM(n) ((void *)(uintptr_t)(n))

/* ---- Events ------------------------------------------------------------- */

static int
event_no_waiters_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("ev");
    int64_t t0;

    (void)arg;
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(diesel_event_fire(ev), 0);
    /* A fire before the wait is not remembered. */
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_event_wait(ev, 30), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(t_now_ms() - t0, 29);
    diesel_event_destroy(ev);
    return 0;
}

START_TEST(event_fire_with_no_waiters_returns_zero_and_is_not_remembered)
{
    ck_assert_int_eq(t_run(event_no_waiters_main, NULL), 0);
}
END_TEST

enum { MANY = 90 };     /* tags '!' to 'z' */

static int
event_many_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("many");
    static struct waiter w[MANY];
    int64_t id[MANY];
    char want[MANY + 1];

    (void)arg;
    order_reset();
    for (int i = 0; i < MANY; i++) {
        waiter_init(&w[i], (char)('!' + i), ev, -1, NULL);
        id[i] = go("w", event_waiter, &w[i]);
        want[i] = (char)('!' + i);
    }
    want[MANY] = '\0';
    settle();
    for (int i = 0; i < MANY; i++)
        assert_parked_on(id[i], "event", "many");
    ck_assert_uint_eq(norder, 0);
    ck_assert_int_eq(diesel_event_fire(ev), MANY);
    /* Everyone was woken by that fire: none is left for the next one. */
    ck_assert_int_eq(diesel_event_fire(ev), 0);
    for (int i = 0; i < MANY; i++)
        join(id[i]);
    ck_assert_str_eq(order, want);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(w[i].rc, 0);
    diesel_event_destroy(ev);
    return 0;
}

START_TEST(event_fire_wakes_every_waiter_in_fifo_order_and_counts_them)
{
    ck_assert_int_eq(t_run(event_many_main, NULL), 0);
}
END_TEST

static int
event_timeout_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("ev");
    struct waiter a, b;
    int64_t t0, ida, idb;

    (void)arg;
    order_reset();
    /* 0 never parks, and waiting always would. */
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_event_wait(ev, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_lt(t_now_ms() - t0, 20);
    waiter_init(&a, 'a', ev, 50, NULL);
    waiter_init(&b, 'b', ev, -1, NULL);
    ida = go("a", event_waiter, &a);
    idb = go("b", event_waiter, &b);
    join(ida);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ETIMEDOUT);
    ck_assert_int_ge(a.elapsed, 49);
    ck_assert_int_lt(a.elapsed, 1000);
    /* The one that timed out left the list; the other is still there. */
    ck_assert_int_eq(diesel_event_fire(ev), 1);
    join(idb);
    ck_assert_int_eq(b.rc, 0);
    ck_assert_str_eq(order, "b");
    diesel_event_destroy(ev);
    return 0;
}

START_TEST(event_wait_times_out_within_tolerance_and_leaves_the_list)
{
    ck_assert_int_eq(t_run(event_timeout_main, NULL), 0);
}
END_TEST

static int
event_args_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create(NULL);

    (void)arg;
    ck_assert_ptr_nonnull(ev);
    ck_assert_int_eq(diesel_event_wait(NULL, -1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_event_wait(ev, -2), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_event_fire(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    diesel_event_destroy(NULL);
    diesel_event_destroy(ev);
    return 0;
}

START_TEST(event_calls_reject_bad_arguments_with_einval)
{
    ck_assert_int_eq(t_run(event_args_main, NULL), 0);
}
END_TEST

static int
event_cancel_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("ev");
    struct waiter a, b;
    int64_t ida, idb;

    (void)arg;
    order_reset();
    waiter_init(&a, 'a', ev, -1, NULL);
    waiter_init(&b, 'b', ev, -1, NULL);
    ida = go("a", event_waiter_then_sleep, &a);
    idb = go("b", event_waiter, &b);
    settle();
    ck_assert_int_eq(diesel_task_cancel(ida), 0);
    join(ida);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ECANCELED);
    ck_assert_int_eq(a.after_err, ECANCELED);
    /* The event is intact: the other waiter is still served. */
    ck_assert_int_eq(diesel_event_fire(ev), 1);
    join(idb);
    ck_assert_int_eq(b.rc, 0);
    ck_assert_str_eq(order, "b");
    diesel_event_destroy(ev);
    return 0;
}

START_TEST(cancelled_event_waiter_returns_ecanceled_and_the_event_still_works)
{
    ck_assert_int_eq(t_run(event_cancel_main, NULL), 0);
}
END_TEST

/* ---- Queues: basics --------------------------------------------------- */

START_TEST(queue_create_rejects_zero_capacity_and_reports_enomem)
{
    struct diesel_queue *q;

    ck_assert_ptr_null(diesel_queue_create("q", 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(diesel_queue_create("q", SIZE_MAX));
    ck_assert_int_eq(errno, ENOMEM);
    /* Objects can be made and unmade outside a loop. */
    q = diesel_queue_create(NULL, 1);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(diesel_queue_length(q), 0);
    ck_assert_uint_eq(diesel_queue_length(NULL), 0);
    diesel_queue_destroy(q);
    diesel_queue_destroy(NULL);
}
END_TEST

static int
queue_fifo_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 3);
    void *item = NULL;
    uintptr_t next_in = 1, next_out = 1;

    (void)arg;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(diesel_queue_put(q, ITEM(next_in++), 0), 0);
    ck_assert_uint_eq(diesel_queue_length(q), 3);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(99), 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_uint_eq(diesel_queue_length(q), 3);
    /* Round and round the ring: items come out in the order put. */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
        ck_assert_ptr_eq(item, ITEM(next_out++));
        if (i % 4 == 1) {
            ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
            ck_assert_ptr_eq(item, ITEM(next_out++));
            ck_assert_uint_eq(diesel_queue_length(q), 1);
            ck_assert_int_eq(diesel_queue_put(q, ITEM(next_in++), -1), 0);
        }
        ck_assert_int_eq(diesel_queue_put(q, ITEM(next_in++), -1), 0);
        ck_assert_uint_eq(diesel_queue_length(q), next_in - next_out);
    }
    while (diesel_queue_length(q) > 0) {
        ck_assert_int_eq(diesel_queue_get(q, &item, -1), 0);
        ck_assert_ptr_eq(item, ITEM(next_out++));
    }
    ck_assert_uint_eq(next_in, next_out);
    item = ITEM(7);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_ptr_eq(item, ITEM(7));
    /* NULL is an item like any other. */
    ck_assert_int_eq(diesel_queue_put(q, NULL, 0), 0);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
    ck_assert_ptr_null(item);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_is_fifo_and_its_length_counts_items)
{
    ck_assert_int_eq(t_run(queue_fifo_main, NULL), 0);
}
END_TEST

static int
queue_putters_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("full", 2);
    struct waiter w[3];
    int64_t id[3];
    void *item;

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(2), 0), 0);
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i], (char)('a' + i), q, -1, ITEM(3 + i));
        id[i] = go("p", putter, &w[i]);
    }
    settle();
    for (int i = 0; i < 3; i++)
        assert_parked_on(id[i], "queue put", "full");
    ck_assert_uint_eq(diesel_queue_length(q), 2);
    /* Each get makes room, and the first parked putter's item moves in
     * at once, behind the items already there. */
    for (uintptr_t n = 1; n <= 5; n++) {
        ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
        ck_assert_ptr_eq(item, ITEM(n));
        ck_assert_uint_eq(diesel_queue_length(q), n <= 3 ? 2 : 5 - n);
        if (n <= 3)
            ck_assert_int_eq(task_of(id[n - 1])->state, DIESEL__READY);
    }
    for (int i = 0; i < 3; i++)
        join(id[i]);
    ck_assert_str_eq(order, "abc");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(w[i].rc, 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_put_parks_when_full_and_resumes_in_fifo_order)
{
    ck_assert_int_eq(t_run(queue_putters_main, NULL), 0);
}
END_TEST

static int
queue_barging_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    struct waiter w;
    int64_t id;
    void *item;

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    waiter_init(&w, 'a', q, -1, ITEM(2));
    id = go("p", putter, &w);
    settle();
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    /* The parked putter's item took the free slot before the putter even
     * ran: a put from here does not overtake it. */
    ck_assert_int_eq(diesel_queue_put(q, ITEM(3), 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(2));
    join(id);
    ck_assert_int_eq(w.rc, 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_get_with_parked_putters_moves_the_first_putters_item_in)
{
    ck_assert_int_eq(t_run(queue_barging_main, NULL), 0);
}
END_TEST

static int
queue_getters_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("empty", 4);
    struct waiter w[3];
    int64_t id[3];

    (void)arg;
    order_reset();
    for (int i = 0; i < 3; i++) {
        waiter_init(&w[i], (char)('a' + i), q, -1, NULL);
        id[i] = go("g", getter, &w[i]);
    }
    settle();
    for (int i = 0; i < 3; i++)
        assert_parked_on(id[i], "queue get", "empty");
    /* Each put goes straight to the first parked getter. */
    for (uintptr_t n = 1; n <= 3; n++) {
        ck_assert_int_eq(diesel_queue_put(q, ITEM(n), 0), 0);
        ck_assert_uint_eq(diesel_queue_length(q), 0);
    }
    ck_assert_int_eq(diesel_queue_put(q, ITEM(4), 0), 0);
    ck_assert_uint_eq(diesel_queue_length(q), 1);
    for (int i = 0; i < 3; i++)
        join(id[i]);
    ck_assert_str_eq(order, "abc");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_ptr_eq(w[i].item, ITEM(i + 1));
    }
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_get_parks_when_empty_and_getters_are_served_in_fifo_order)
{
    ck_assert_int_eq(t_run(queue_getters_main, NULL), 0);
}
END_TEST

static int
queue_timeout_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    void *item = ITEM(5);
    int64_t t0;

    (void)arg;
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_queue_get(q, &item, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(t_now_ms() - t0, 49);
    ck_assert_int_lt(t_now_ms() - t0, 1000);
    ck_assert_ptr_eq(item, ITEM(5));
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_queue_put(q, ITEM(2), 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(t_now_ms() - t0, 49);
    ck_assert_int_lt(t_now_ms() - t0, 1000);
    /* Nothing of the failed put is left behind. */
    ck_assert_uint_eq(diesel_queue_length(q), 1);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_put_and_get_time_out_within_tolerance)
{
    ck_assert_int_eq(t_run(queue_timeout_main, NULL), 0);
}
END_TEST

static int
queue_left_line_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    struct waiter a, b, c;
    int64_t ida, idb, idc;

    (void)arg;
    order_reset();
    waiter_init(&a, 'a', q, -1, NULL);
    waiter_init(&b, 'b', q, 20, ITEM(77));
    waiter_init(&c, 'c', q, -1, NULL);
    ida = go("a", getter, &a);
    idb = go("b", getter, &b);
    idc = go("c", getter, &c);
    join(idb);
    ck_assert_int_eq(b.rc, -1);
    ck_assert_int_eq(b.err, ETIMEDOUT);
    ck_assert_ptr_eq(b.item, ITEM(77));
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(2), 0), 0);
    join(ida);
    join(idc);
    ck_assert_str_eq(order, "ac");
    ck_assert_ptr_eq(a.item, ITEM(1));
    ck_assert_ptr_eq(c.item, ITEM(2));
    ck_assert_uint_eq(diesel_queue_length(q), 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_getter_that_timed_out_leaves_the_line_and_loses_nothing)
{
    ck_assert_int_eq(t_run(queue_left_line_main, NULL), 0);
}
END_TEST

static int
queue_args_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_queue_put(NULL, ITEM(1), 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), -2), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_queue_get(NULL, &item, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_queue_get(q, NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_queue_get(q, &item, -7), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_queue_close(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(diesel_queue_length(q), 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(queue_calls_reject_bad_arguments_with_einval)
{
    ck_assert_int_eq(t_run(queue_args_main, NULL), 0);
}
END_TEST

/* ---- Queues: closing ---------------------------------------------------- */

static int
queue_close_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 4);
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(2), 0), 0);
    ck_assert_int_eq(diesel_queue_close(q), 0);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(3), -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_uint_eq(diesel_queue_length(q), 2);
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), 0);
    ck_assert_ptr_eq(item, ITEM(2));
    /* Drained: fails at once, even with no timeout. */
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), -1);
    ck_assert_int_eq(errno, EPIPE);
    /* Closing twice is harmless. */
    ck_assert_int_eq(diesel_queue_close(q), 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(closed_queue_fails_puts_and_drains_gets_then_fails_with_epipe)
{
    ck_assert_int_eq(t_run(queue_close_main, NULL), 0);
}
END_TEST

static int
queue_close_wakes_main(void *arg)
{
    struct diesel_queue *empty = diesel_queue_create("empty", 1);
    struct diesel_queue *full = diesel_queue_create("full", 1);
    struct waiter g[2], p[2];
    int64_t gid[2], pid[2];

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_queue_put(full, ITEM(1), 0), 0);
    for (int i = 0; i < 2; i++) {
        waiter_init(&g[i], 'g', empty, -1, NULL);
        waiter_init(&p[i], 'p', full, -1, ITEM(10 + i));
        gid[i] = go("g", getter, &g[i]);
        pid[i] = go("p", putter, &p[i]);
    }
    settle();
    ck_assert_int_eq(diesel_queue_close(empty), 0);
    ck_assert_int_eq(diesel_queue_close(full), 0);
    /* The parked putters' items did not go in. */
    ck_assert_uint_eq(diesel_queue_length(full), 1);
    /* The woken green threads have not run yet, and do not need the
     * queues any more: they can go now. */
    diesel_queue_destroy(empty);
    diesel_queue_destroy(full);
    for (int i = 0; i < 2; i++) {
        join(gid[i]);
        join(pid[i]);
        ck_assert_int_eq(g[i].rc, -1);
        ck_assert_int_eq(g[i].err, EPIPE);
        ck_assert_int_eq(p[i].rc, -1);
        ck_assert_int_eq(p[i].err, EPIPE);
    }
    ck_assert_uint_eq(norder, 0);
    return 0;
}

START_TEST(queue_close_wakes_parked_getters_and_putters_with_epipe)
{
    ck_assert_int_eq(t_run(queue_close_wakes_main, NULL), 0);
}
END_TEST

/* ---- Queues: cancellation ------------------------------------------------ */

static int
queue_cancel_main(void *arg)
{
    struct diesel_queue *empty = diesel_queue_create("empty", 1);
    struct diesel_queue *full = diesel_queue_create("full", 1);
    struct waiter g, p;
    int64_t gid, pid;
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_queue_put(full, ITEM(1), 0), 0);
    waiter_init(&g, 'g', empty, -1, NULL);
    waiter_init(&p, 'p', full, -1, ITEM(2));
    gid = go("g", getter_then_sleep, &g);
    pid = go("p", putter_then_sleep, &p);
    settle();
    ck_assert_int_eq(diesel_task_cancel(gid), 0);
    ck_assert_int_eq(diesel_task_cancel(pid), 0);
    join(gid);
    join(pid);
    ck_assert_int_eq(g.rc, -1);
    ck_assert_int_eq(g.err, ECANCELED);
    ck_assert_int_eq(g.after_err, ECANCELED);
    ck_assert_int_eq(p.rc, -1);
    ck_assert_int_eq(p.err, ECANCELED);
    ck_assert_int_eq(p.after_err, ECANCELED);
    /* Both queues are as they were, and work. */
    ck_assert_uint_eq(diesel_queue_length(empty), 0);
    ck_assert_uint_eq(diesel_queue_length(full), 1);
    ck_assert_int_eq(diesel_queue_get(full, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    ck_assert_int_eq(diesel_queue_get(full, &item, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(diesel_queue_put(empty, ITEM(3), 0), 0);
    ck_assert_int_eq(diesel_queue_get(empty, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(3));
    diesel_queue_destroy(empty);
    diesel_queue_destroy(full);
    return 0;
}

START_TEST(cancelled_queue_waiters_return_ecanceled_and_the_queue_is_intact)
{
    ck_assert_int_eq(t_run(queue_cancel_main, NULL), 0);
}
END_TEST

static int
self_cancel_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("ev");
    struct diesel_queue *q = diesel_queue_create("q", 2);
    struct diesel_lock *lk = diesel_lock_create("lk");
    void *item = NULL;

    (void)arg;
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_task_cancel(diesel_task_self()), 0);
    /* Every call that would wait fails instead of parking, and takes
     * nothing... */
    ck_assert_int_eq(diesel_event_wait(ev, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(2), 0), 0);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(3), -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_uint_eq(diesel_queue_length(q), 2);
    /* ...but what needs no waiting still works, so that a cancelled
     * green thread can clean up: drain a queue, take a free lock. */
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(2));
    item = NULL;
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_ptr_null(item);
    ck_assert_int_eq(diesel_lock_acquire(lk, -1), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    ck_assert_int_eq(diesel_lock_release(lk), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_event_fire(ev), 0);
    ck_assert_int_eq(diesel_queue_close(q), 0);
    diesel_event_destroy(ev);
    diesel_queue_destroy(q);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(cancelled_green_thread_fails_only_where_it_would_wait)
{
    ck_assert_int_eq(t_run(self_cancel_main, NULL), 0);
}
END_TEST

/* ---- Hand-over racing a deadline or a cancel --------------------------- */

/*
 * These make a waiter's deadline pass, and the loop make it ready with
 * ETIMEDOUT, while another green thread, ready before it, is about to
 * hand it something.  Both park with deadlines (the other's earlier), and
 * main spins past both without yielding: the next turn of the loop wakes
 * them in deadline order, the other first.
 */
struct race {
    void *obj;
    int64_t victim;      /* the waiter whose deadline fired */
    int victim_rc, victim_err;
    void *victim_item;
    int rc, err;         /* the other's call */
    void *item;
};

/* The victim is ready, woken by its deadline, and has not run yet. */
static void
assert_timed_out_not_run(int64_t id)
{
    struct diesel__task *t = task_of(id);

    ck_assert_int_eq(t->state, DIESEL__READY);
    ck_assert_int_eq(t->wake_err, ETIMEDOUT);
}

static int
race_getter(void *arg)
{
    struct race *r = arg;

    r->victim_item = ITEM(55);
    r->victim_rc = diesel_queue_get(r->obj, &r->victim_item, 30);
    r->victim_err = errno;
    return 0;
}

static int
race_put(void *arg)
{
    struct race *r = arg;

    ck_assert_int_eq(diesel_sleep(5), 0);
    assert_timed_out_not_run(r->victim);
    r->rc = diesel_queue_put(r->obj, ITEM(1), 0);
    r->err = errno;
    return 0;
}

static int
race_getter_main(void *arg)
{
    struct race r = { 0 };
    int64_t other;
    void *item;

    (void)arg;
    r.obj = diesel_queue_create("q", 1);
    r.victim = go("victim", race_getter, &r);
    other = go("other", race_put, &r);
    settle();
    spin_ms(60);
    join(other);
    join(r.victim);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.victim_rc, -1);
    ck_assert_int_eq(r.victim_err, ETIMEDOUT);
    ck_assert_ptr_eq(r.victim_item, ITEM(55));
    /* The item went into the queue, not to the getter that gave up. */
    ck_assert_uint_eq(diesel_queue_length(r.obj), 1);
    ck_assert_int_eq(diesel_queue_get(r.obj, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    diesel_queue_destroy(r.obj);
    return 0;
}

START_TEST(queue_put_after_a_getters_deadline_fired_keeps_the_item_queued)
{
    ck_assert_int_eq(t_run(race_getter_main, NULL), 0);
}
END_TEST

static int
race_putter(void *arg)
{
    struct race *r = arg;

    r->victim_rc = diesel_queue_put(r->obj, ITEM(2), 30);
    r->victim_err = errno;
    return 0;
}

static int
race_get(void *arg)
{
    struct race *r = arg;

    ck_assert_int_eq(diesel_sleep(5), 0);
    assert_timed_out_not_run(r->victim);
    r->rc = diesel_queue_get(r->obj, &r->item, 0);
    r->err = errno;
    return 0;
}

static int
race_putter_main(void *arg)
{
    struct race r = { 0 };
    int64_t other;

    (void)arg;
    r.obj = diesel_queue_create("q", 1);
    ck_assert_int_eq(diesel_queue_put(r.obj, ITEM(1), 0), 0);
    r.victim = go("victim", race_putter, &r);
    other = go("other", race_get, &r);
    settle();
    spin_ms(60);
    join(other);
    join(r.victim);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_eq(r.item, ITEM(1));
    /* The put that failed did not leave its item behind. */
    ck_assert_int_eq(r.victim_rc, -1);
    ck_assert_int_eq(r.victim_err, ETIMEDOUT);
    ck_assert_uint_eq(diesel_queue_length(r.obj), 0);
    diesel_queue_destroy(r.obj);
    return 0;
}

START_TEST(queue_get_after_a_putters_deadline_fired_leaves_its_item_out)
{
    ck_assert_int_eq(t_run(race_putter_main, NULL), 0);
}
END_TEST

static int
race_lock_waiter(void *arg)
{
    struct race *r = arg;

    r->victim_rc = diesel_lock_acquire(r->obj, 30);
    r->victim_err = errno;
    return 0;
}

static int
race_release(void *arg)
{
    struct race *r = arg;

    ck_assert_int_eq(diesel_lock_acquire(r->obj, 0), 0);
    ck_assert_int_eq(diesel_sleep(5), 0);
    assert_timed_out_not_run(r->victim);
    r->rc = diesel_lock_release(r->obj);
    r->err = errno;
    return 0;
}

static int
race_lock_main(void *arg)
{
    struct race r = { 0 };
    int64_t other;

    (void)arg;
    r.obj = diesel_lock_create("lk");
    other = go("other", race_release, &r);
    r.victim = go("victim", race_lock_waiter, &r);
    settle();
    spin_ms(60);
    join(other);
    join(r.victim);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.victim_rc, -1);
    ck_assert_int_eq(r.victim_err, ETIMEDOUT);
    /* Nobody holds it: it was not handed to the waiter that gave up. */
    ck_assert_int_eq(diesel_lock_acquire(r.obj, 0), 0);
    ck_assert_int_eq(diesel_lock_release(r.obj), 0);
    diesel_lock_destroy(r.obj);
    return 0;
}

START_TEST(lock_release_after_a_waiters_deadline_fired_leaves_it_free)
{
    ck_assert_int_eq(t_run(race_lock_main, NULL), 0);
}
END_TEST

static int
race_event_waiter(void *arg)
{
    struct race *r = arg;

    r->victim_rc = diesel_event_wait(r->obj, 30);
    r->victim_err = errno;
    return 0;
}

static int
race_fire(void *arg)
{
    struct race *r = arg;

    ck_assert_int_eq(diesel_sleep(5), 0);
    assert_timed_out_not_run(r->victim);
    r->rc = diesel_event_fire(r->obj);
    return 0;
}

static int
race_event_main(void *arg)
{
    struct race r = { 0 };
    int64_t other;

    (void)arg;
    r.obj = diesel_event_create("ev");
    r.victim = go("victim", race_event_waiter, &r);
    other = go("other", race_fire, &r);
    settle();
    spin_ms(60);
    join(other);
    join(r.victim);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.victim_rc, -1);
    ck_assert_int_eq(r.victim_err, ETIMEDOUT);
    diesel_event_destroy(r.obj);
    return 0;
}

START_TEST(event_fire_after_a_waiters_deadline_fired_does_not_count_it)
{
    ck_assert_int_eq(t_run(race_event_main, NULL), 0);
}
END_TEST

/* Handed over to, then cancelled before it ran: it keeps what it got. */
static int
handed_then_cancelled_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create("ev");
    struct diesel_queue *empty = diesel_queue_create("empty", 1);
    struct diesel_queue *full = diesel_queue_create("full", 1);
    struct diesel_lock *lk = diesel_lock_create("lk");
    struct waiter e, g, p, l;
    int64_t id[4];
    void *item;

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_queue_put(full, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    waiter_init(&e, 'e', ev, -1, NULL);
    waiter_init(&g, 'g', empty, -1, NULL);
    waiter_init(&p, 'p', full, -1, ITEM(2));
    waiter_init(&l, 'l', lk, -1, NULL);
    id[0] = go("e", event_waiter_then_sleep, &e);
    id[1] = go("g", getter_then_sleep, &g);
    id[2] = go("p", putter_then_sleep, &p);
    id[3] = go("l", holder_then_release, &l);
    settle();
    ck_assert_int_eq(diesel_event_fire(ev), 1);
    ck_assert_int_eq(diesel_queue_put(empty, ITEM(3), 0), 0);
    ck_assert_int_eq(diesel_queue_get(full, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(1));
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(task_of(id[i])->state, DIESEL__READY);
        ck_assert_int_eq(diesel_task_cancel(id[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        join(id[i]);
    ck_assert_str_eq(order, "egpl");
    ck_assert_int_eq(e.rc, 0);
    ck_assert_int_eq(g.rc, 0);
    ck_assert_ptr_eq(g.item, ITEM(3));
    ck_assert_int_eq(p.rc, 0);
    ck_assert_int_eq(l.rc, 0);
    /* The cancel still sticks for their next call. */
    ck_assert_int_eq(e.after_err, ECANCELED);
    ck_assert_int_eq(g.after_err, ECANCELED);
    ck_assert_int_eq(p.after_err, ECANCELED);
    ck_assert_int_eq(l.after_err, ECANCELED);
    /* The putter's item is in; the lock was released by its new holder. */
    ck_assert_int_eq(diesel_queue_get(full, &item, 0), 0);
    ck_assert_ptr_eq(item, ITEM(2));
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    diesel_event_destroy(ev);
    diesel_queue_destroy(empty);
    diesel_queue_destroy(full);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(waiter_handed_over_to_then_cancelled_before_running_keeps_it)
{
    ck_assert_int_eq(t_run(handed_then_cancelled_main, NULL), 0);
}
END_TEST

/* ---- Locks -------------------------------------------------------------- */

static int
lock_basic_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create("lk");

    (void)arg;
    ck_assert_int_eq(diesel_lock_release(lk), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_lock_acquire(lk, -1), 0);
    ck_assert_int_eq(diesel_lock_acquire(lk, -1), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    ck_assert_int_eq(diesel_lock_release(lk), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(lock_acquire_twice_is_edeadlk_and_release_unheld_is_eperm)
{
    ck_assert_int_eq(t_run(lock_basic_main, NULL), 0);
}
END_TEST

static int
release_not_mine(void *arg)
{
    struct diesel_lock *lk = arg;

    ck_assert_int_eq(diesel_lock_release(lk), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    return 0;
}

static int
lock_other_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create("lk");
    int64_t id;

    (void)arg;
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    id = go("other", release_not_mine, lk);
    join(id);
    /* Still ours. */
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(lock_release_by_another_green_thread_fails_with_eperm)
{
    ck_assert_int_eq(t_run(lock_other_main, NULL), 0);
}
END_TEST

static int
lock_fifo_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create("the lock");
    struct waiter w[4];
    int64_t id[4];

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_lock_acquire(lk, -1), 0);
    for (int i = 0; i < 4; i++) {
        waiter_init(&w[i], (char)('a' + i), lk, -1, NULL);
        id[i] = go("l", locker, &w[i]);
    }
    settle();
    for (int i = 0; i < 4; i++)
        assert_parked_on(id[i], "lock", "the lock");
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    /* Handed to 'a' before it even ran: no barging. */
    ck_assert_int_eq(task_of(id[0])->state, DIESEL__READY);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    /* Queue up behind the others and get it last. */
    ck_assert_int_eq(diesel_lock_acquire(lk, -1), 0);
    note('m');
    ck_assert_str_eq(order, "abcdm");
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    for (int i = 0; i < 4; i++) {
        join(id[i]);
        ck_assert_int_eq(w[i].rc, 0);
    }
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(lock_is_handed_to_waiters_in_fifo_order_without_barging)
{
    ck_assert_int_eq(t_run(lock_fifo_main, NULL), 0);
}
END_TEST

static int
hold_lock(void *arg)
{
    struct diesel_lock *lk = arg;

    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    ck_assert_int_eq(diesel_sleep(200), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    return 0;
}

static int
lock_timeout_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create("lk");
    int64_t id, t0;

    (void)arg;
    id = go("holder", hold_lock, lk);
    settle();
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_lt(t_now_ms() - t0, 20);
    t0 = t_now_ms();
    ck_assert_int_eq(diesel_lock_acquire(lk, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(t_now_ms() - t0, 49);
    ck_assert_int_lt(t_now_ms() - t0, 1000);
    /* Then the holder releases it to us. */
    ck_assert_int_eq(diesel_lock_acquire(lk, 5000), 0);
    ck_assert_int_ge(t_now_ms() - t0, 150);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    join(id);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(lock_acquire_times_out_within_tolerance)
{
    ck_assert_int_eq(t_run(lock_timeout_main, NULL), 0);
}
END_TEST

static int
lock_cancel_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create("lk");
    struct waiter a, b;
    int64_t ida, idb;

    (void)arg;
    order_reset();
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    waiter_init(&a, 'a', lk, -1, NULL);
    waiter_init(&b, 'b', lk, -1, NULL);
    ida = go("a", locker, &a);
    idb = go("b", locker, &b);
    settle();
    ck_assert_int_eq(diesel_task_cancel(ida), 0);
    join(ida);
    ck_assert_int_eq(a.rc, -1);
    ck_assert_int_eq(a.err, ECANCELED);
    /* Still held by main, and 'b' is next. */
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    join(idb);
    ck_assert_int_eq(b.rc, 0);
    ck_assert_str_eq(order, "b");
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(cancelled_lock_waiter_returns_ecanceled_and_the_lock_is_intact)
{
    ck_assert_int_eq(t_run(lock_cancel_main, NULL), 0);
}
END_TEST

static int
lock_args_main(void *arg)
{
    struct diesel_lock *lk = diesel_lock_create(NULL);

    (void)arg;
    ck_assert_ptr_nonnull(lk);
    ck_assert_int_eq(diesel_lock_acquire(NULL, -1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_lock_acquire(lk, -2), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_lock_release(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    diesel_lock_destroy(NULL);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(lock_calls_reject_bad_arguments_with_einval)
{
    ck_assert_int_eq(t_run(lock_args_main, NULL), 0);
}
END_TEST

/* ---- What the console sees; misuse -------------------------------------- */

static int
visible_main(void *arg)
{
    struct diesel_event *ev = diesel_event_create(
        "an event with a name longer than thirty-one bytes");
    struct diesel_queue *empty = diesel_queue_create(NULL, 1);
    struct diesel_queue *full = diesel_queue_create("jobs", 1);
    struct diesel_lock *lk = diesel_lock_create("db");
    struct waiter e, g, p, l;
    int64_t id[4];
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_queue_put(full, ITEM(1), 0), 0);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), 0);
    waiter_init(&e, 'e', ev, -1, NULL);
    waiter_init(&g, 'g', empty, 10000, NULL);
    waiter_init(&p, 'p', full, -1, ITEM(2));
    waiter_init(&l, 'l', lk, -1, NULL);
    id[0] = go("e", event_waiter, &e);
    id[1] = go("g", getter, &g);
    id[2] = go("p", putter, &p);
    id[3] = go("l", locker, &l);
    settle();
    /* Names are copied and cut at 31 bytes; NULL gets the kind's name. */
    assert_parked_on(id[0], "event", "an event with a name longer tha");
    assert_parked_on(id[1], "queue get", "queue");
    assert_parked_on(id[2], "queue put", "jobs");
    assert_parked_on(id[3], "lock", "db");
    /* A deadline is kept (and valid) only for a park that has one. */
    ck_assert(task_of(id[1])->timed);
    ck_assert_int_ge(task_of(id[1])->wait.deadline, 0);
    ck_assert(!task_of(id[0])->timed);
    ck_assert_int_eq(diesel_event_fire(ev), 1);
    ck_assert_int_eq(diesel_queue_put(empty, ITEM(3), 0), 0);
    ck_assert_int_eq(diesel_queue_get(full, &item, 0), 0);
    ck_assert_int_eq(diesel_lock_release(lk), 0);
    for (int i = 0; i < 4; i++)
        join(id[i]);
    ck_assert_int_eq(e.rc | g.rc | p.rc | l.rc, 0);
    diesel_event_destroy(ev);
    diesel_queue_destroy(empty);
    diesel_queue_destroy(full);
    diesel_lock_destroy(lk);
    return 0;
}

START_TEST(parked_green_threads_show_what_and_which_object_they_wait_on)
{
    ck_assert_int_eq(t_run(visible_main, NULL), 0);
}
END_TEST

static size_t
count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

START_TEST(sync_calls_outside_a_green_thread_fail_with_eperm_and_log_a_line)
{
    struct diesel_event *ev = diesel_event_create("ev");
    struct diesel_queue *q = diesel_queue_create("q", 1);
    struct diesel_lock *lk = diesel_lock_create("lk");
    static const char *const calls[] = {
        "diesel_event_wait", "diesel_event_fire", "diesel_queue_put",
        "diesel_queue_get", "diesel_queue_close", "diesel_lock_acquire",
        "diesel_lock_release",
    };
    const char *log;
    char want[128];
    void *item;

    ck_assert_ptr_nonnull(ev);
    ck_assert_ptr_nonnull(q);
    ck_assert_ptr_nonnull(lk);
    t_log_capture_start();
    ck_assert_int_eq(diesel_event_wait(ev, 10), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_event_fire(ev), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_queue_put(q, ITEM(1), 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_queue_get(q, &item, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_queue_close(q), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_lock_acquire(lk, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_lock_release(lk), -1);
    ck_assert_int_eq(errno, EPERM);
    log = t_log_capture_end();
    /* One line per call, naming it and the way out. */
    ck_assert_uint_eq(count_lines(log), sizeof(calls) / sizeof(calls[0]));
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
        snprintf(want, sizeof(want), "{diesel} ERROR:%s() called outside a "
            "green thread: call it from a function run by "
            "diesel_loop_run() or diesel_task_spawn()\n", calls[i]);
        ck_assert_ptr_nonnull(strstr(log, want));
    }
    /* Nothing changed. */
    ck_assert_uint_eq(diesel_queue_length(q), 0);
    diesel_event_destroy(ev);
    diesel_queue_destroy(q);
    diesel_lock_destroy(lk);
}
END_TEST

static int
lone_getter_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_queue_get(q, &item, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(green_threads_parked_only_on_sync_objects_are_a_reported_deadlock)
{
    t_log_capture_start();
    ck_assert_int_eq(t_run(lone_getter_main, NULL), -1);
    ck_assert_int_eq(errno, EDEADLK);
    ck_assert_ptr_nonnull(strstr(t_log_capture_end(),
        "{diesel} ERROR:all 1 green threads are blocked"));
}
END_TEST

/* ---- Who waits on whom (issue 11, item 7) ---------------------------- */

static struct diesel_lock *locks[2];

/* Takes locks[i] then locks[1 - i] (i from arg); lets go of what it took. */
static int
cross_locker(void *arg)
{
    int i = arg != NULL;

    if (diesel_lock_acquire(locks[i], -1) != 0)
        return 1;
    diesel_task_yield();
    if (diesel_lock_acquire(locks[1 - i], -1) == 0)
        diesel_lock_release(locks[1 - i]);
    diesel_lock_release(locks[i]);
    return 0;
}

static int64_t left_id, right_id;

static void
locks_start(void)
{
    locks[0] = diesel_lock_create("a");
    locks[1] = diesel_lock_create("b");
    left_id = go("left", cross_locker, NULL);
    right_id = go("right", cross_locker, &locks[1]);
}

static void
locks_end(void)
{
    diesel_lock_destroy(locks[0]);
    diesel_lock_destroy(locks[1]);
}

static int
lock_cycle_main(void *arg)
{
    (void)arg;
    locks_start();
    /* Parked on a join: part of the deadlock, not a way out of it.  The
     * loop cancels them all (left may return before this join sees the
     * cancel); left and right may still be linked in the locks, which
     * are left to the process's end. */
    (void)diesel_task_join(left_id, NULL, -1);
    return 0;
}

START_TEST(lock_cycle_is_logged_when_it_closes_and_reported_as_a_deadlock)
{
    const char *log;

    t_log_capture_start();
    ck_assert_int_eq(t_run(lock_cycle_main, NULL), -1);
    ck_assert_int_eq(errno, EDEADLK);
    log = t_log_capture_end();
    /* right closes the cycle: it is logged then, and again in the
     * report, which lists every green thread and how long it waited. */
    ck_assert_msg(strstr(log, "{diesel} WARNING:deadlock: cycle: 3 right -> "
        "lock a -> 2 left -> lock b -> 3 right\n") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "{diesel} WARNING:deadlock: every green thread "
        "is parked with nothing that could wake any of them (3 green "
        "threads, 3 on events, queues, locks or joins without a timeout; no "
        "timer, descriptor or signal of theirs left): the console's sync "
        "shows the objects\n") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "WARNING:deadlock:   1 main: join 2 left, for "
        "0.") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "WARNING:deadlock:   2 left: lock b, held by 3 "
        "right, for 0.") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "WARNING:deadlock:   3 right: lock a, held by "
        "2 left, for 0.") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "WARNING:deadlock: cycle: 2 left -> lock b -> "
        "3 right -> lock a -> 2 left\n") != NULL, "%s", log);
    /* Nothing else is watched: then, as before, they are cancelled. */
    ck_assert_msg(strstr(log, "{diesel} ERROR:all 3 green threads are "
        "blocked") != NULL, "%s", log);
}
END_TEST

static int64_t joiner_ids[2];

static int
joiner(void *arg)
{
    int i = arg != NULL;

    diesel_task_yield();
    return diesel_task_join(joiner_ids[1 - i], NULL, -1) == 0 ? 0 : 1;
}

static int
join_cycle_main(void *arg)
{
    (void)arg;
    joiner_ids[0] = go("x", joiner, NULL);
    joiner_ids[1] = go("y", joiner, &joiner_ids[1]);
    /* Cancelled with them by the loop. */
    (void)diesel_task_join(joiner_ids[0], NULL, -1);
    return 0;
}

START_TEST(join_cycle_is_logged_when_it_closes)
{
    const char *log;

    t_log_capture_start();
    ck_assert_int_eq(t_run(join_cycle_main, NULL), -1);
    log = t_log_capture_end();
    ck_assert_msg(strstr(log, "WARNING:deadlock: cycle: 3 y -> join -> 2 x "
        "-> join -> 3 y\n") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "WARNING:deadlock:   2 x: join 3 y, for ")
        != NULL, "%s", log);
}
END_TEST

static int
canceller(void *arg)
{
    (void)arg;
    diesel_task_cancel(left_id);
    diesel_task_cancel(right_id);
    return 0;
}

/* A near miss: a green thread sleeps, and then breaks the cycle. */
static int
sleeper_breaks_it(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_sleep(50), 0);
    return canceller(NULL);
}

/* The other: it waits on a pipe that a thread writes to once the loop
 * polls with left and right parked (so the check before that poll ran). */
static int wake_pipe[2];

static void *
write_once_parked(void *arg)
{
    struct diesel_loop *l = arg;

    while (!(__atomic_load_n(&l->in_poll, __ATOMIC_ACQUIRE) &&
        __atomic_load_n(&l->sync_parked, __ATOMIC_RELAXED) == 2))
        sched_yield();
    ck_assert_int_eq(write(wake_pipe[1], "x", 1), 1);
    return NULL;
}

static int
reader_breaks_it(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_fd_wait(wake_pipe[0], DIESEL_READ, -1),
        DIESEL_READ);
    return canceller(NULL);
}

static int
near_miss_main(void *arg)
{
    pthread_t th;
    int64_t id;

    locks_start();
    if (arg != NULL) {
        ck_assert_int_eq(pipe(wake_pipe), 0);
        ck_assert_int_eq(pthread_create(&th, NULL, write_once_parked,
            diesel__loop), 0);
        id = go("reader", reader_breaks_it, NULL);
    } else {
        id = go("sleeper", sleeper_breaks_it, NULL);
    }
    join(left_id);
    join(right_id);
    join(id);
    if (arg != NULL) {
        pthread_join(th, NULL);
        close(wake_pipe[0]);
        close(wake_pipe[1]);
    }
    locks_end();
    return 0;
}

START_TEST(a_sleeper_or_a_descriptor_waiter_is_no_deadlock)
{
    const char *log;

    for (int fd = 0; fd < 2; fd++) {
        t_log_capture_start();
        ck_assert_int_eq(t_run(near_miss_main, fd ? "fd" : NULL), 0);
        log = t_log_capture_end();
        /* The cycle is there, and said; the loop is not stuck. */
        ck_assert_msg(strstr(log, "deadlock: cycle: 3 right -> lock a -> "
            "2 left -> lock b -> 3 right\n") != NULL, "%s", log);
        ck_assert_msg(strstr(log, "every green thread") == NULL, "%s", log);
        ck_assert_msg(strstr(log, "ERROR") == NULL, "%s", log);
    }
}
END_TEST

#ifndef NDEBUG
static int
destroy_parked_main(void *arg)
{
    struct diesel_queue *q = diesel_queue_create("q", 1);
    struct waiter g;

    (void)arg;
    waiter_init(&g, 'g', q, -1, NULL);
    go("g", getter, &g);
    settle();
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(destroying_an_object_with_a_parked_waiter_asserts)
{
    /* Keep the banner and assert's message out of the test output: this
     * runs in a child of its own (fork mode only). */
    t_log_capture_start();
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    t_run(destroy_parked_main, NULL);
}
END_TEST
#endif

/* ---- Producers and consumers ------------------------------------------- */

enum {
    PRODUCERS = 10,
    CONSUMERS = 10,
    ITEMS = 100000,
    PER_PRODUCER = ITEMS / PRODUCERS
};

struct stress {
    struct diesel_queue *q;
    int producer;                 /* for producers: which one */
    uint64_t sum;                 /* for consumers: of what they got */
    uint64_t count;
};

static int
produce(void *arg)
{
    struct stress *s = arg;

    /* Item: producer * PER_PRODUCER + sequence + 1, never NULL. */
    for (uintptr_t i = 0; i < PER_PRODUCER; i++) {
        uintptr_t v = (uintptr_t)s->producer * PER_PRODUCER + i + 1;
        ck_assert_int_eq(diesel_queue_put(s->q, ITEM(v), -1), 0);
        if (i % 97 == 0)
            diesel_task_yield();
    }
    return 0;
}

static int
consume(void *arg)
{
    struct stress *s = arg;
    uintptr_t last[PRODUCERS] = { 0 };
    void *item;

    while (diesel_queue_get(s->q, &item, -1) == 0) {
        uintptr_t v = (uintptr_t)item, p = (v - 1) / PER_PRODUCER;

        ck_assert_uint_lt(p, PRODUCERS);
        /* FIFO: each producer's items arrive in the order it put them. */
        ck_assert_uint_gt(v, last[p]);
        last[p] = v;
        s->sum += v;
        s->count++;
        if (s->count % 89 == 0)
            diesel_task_yield();
    }
    ck_assert_int_eq(errno, EPIPE);
    return 0;
}

static int
stress_main(void *arg)
{
    static struct stress p[PRODUCERS], c[CONSUMERS];
    int64_t pid[PRODUCERS], cid[CONSUMERS];
    struct diesel_queue *q = diesel_queue_create("work", 16);
    uint64_t sum = 0, count = 0;

    (void)arg;
    for (int i = 0; i < CONSUMERS; i++) {
        c[i] = (struct stress){ .q = q };
        cid[i] = go("consumer", consume, &c[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct stress){ .q = q, .producer = i };
        pid[i] = go("producer", produce, &p[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        join(pid[i]);
    ck_assert_int_eq(diesel_queue_close(q), 0);
    for (int i = 0; i < CONSUMERS; i++) {
        join(cid[i]);
        sum += c[i].sum;
        count += c[i].count;
        /* Every consumer got a share. */
        ck_assert_uint_gt(c[i].count, 0);
    }
    ck_assert_uint_eq(count, ITEMS);
    ck_assert_uint_eq(sum, (uint64_t)ITEMS * (ITEMS + 1) / 2);
    ck_assert_uint_eq(diesel_queue_length(q), 0);
    diesel_queue_destroy(q);
    return 0;
}

START_TEST(ten_producers_and_ten_consumers_pass_100000_items_exactly_once)
{
    ck_assert_int_eq(t_run(stress_main, NULL), 0);
}
END_TEST

Suite *
diesel_sync_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *tc = tcase_create("sync");
    TCase *stress = tcase_create("stress");
    const char *fork_mode = getenv("CK_FORK");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc,
        event_fire_with_no_waiters_returns_zero_and_is_not_remembered);
    tcase_add_test(tc,
        event_fire_wakes_every_waiter_in_fifo_order_and_counts_them);
    tcase_add_test(tc,
        event_wait_times_out_within_tolerance_and_leaves_the_list);
    tcase_add_test(tc, event_calls_reject_bad_arguments_with_einval);
    tcase_add_test(tc,
        cancelled_event_waiter_returns_ecanceled_and_the_event_still_works);
    tcase_add_test(tc, queue_create_rejects_zero_capacity_and_reports_enomem);
    tcase_add_test(tc, queue_is_fifo_and_its_length_counts_items);
    tcase_add_test(tc, queue_put_parks_when_full_and_resumes_in_fifo_order);
    tcase_add_test(tc,
        queue_get_with_parked_putters_moves_the_first_putters_item_in);
    tcase_add_test(tc,
        queue_get_parks_when_empty_and_getters_are_served_in_fifo_order);
    tcase_add_test(tc, queue_put_and_get_time_out_within_tolerance);
    tcase_add_test(tc,
        queue_getter_that_timed_out_leaves_the_line_and_loses_nothing);
    tcase_add_test(tc, queue_calls_reject_bad_arguments_with_einval);
    tcase_add_test(tc,
        closed_queue_fails_puts_and_drains_gets_then_fails_with_epipe);
    tcase_add_test(tc,
        queue_close_wakes_parked_getters_and_putters_with_epipe);
    tcase_add_test(tc,
        cancelled_queue_waiters_return_ecanceled_and_the_queue_is_intact);
    tcase_add_test(tc,
        cancelled_green_thread_fails_only_where_it_would_wait);
    tcase_add_test(tc,
        queue_put_after_a_getters_deadline_fired_keeps_the_item_queued);
    tcase_add_test(tc,
        queue_get_after_a_putters_deadline_fired_leaves_its_item_out);
    tcase_add_test(tc,
        lock_release_after_a_waiters_deadline_fired_leaves_it_free);
    tcase_add_test(tc,
        event_fire_after_a_waiters_deadline_fired_does_not_count_it);
    tcase_add_test(tc,
        waiter_handed_over_to_then_cancelled_before_running_keeps_it);
    tcase_add_test(tc,
        lock_acquire_twice_is_edeadlk_and_release_unheld_is_eperm);
    tcase_add_test(tc, lock_release_by_another_green_thread_fails_with_eperm);
    tcase_add_test(tc, lock_is_handed_to_waiters_in_fifo_order_without_barging);
    tcase_add_test(tc, lock_acquire_times_out_within_tolerance);
    tcase_add_test(tc,
        cancelled_lock_waiter_returns_ecanceled_and_the_lock_is_intact);
    tcase_add_test(tc, lock_calls_reject_bad_arguments_with_einval);
    tcase_add_test(tc,
        parked_green_threads_show_what_and_which_object_they_wait_on);
    tcase_add_test(tc,
        sync_calls_outside_a_green_thread_fail_with_eperm_and_log_a_line);
    tcase_add_test(tc,
        green_threads_parked_only_on_sync_objects_are_a_reported_deadlock);
    tcase_add_test(tc,
        lock_cycle_is_logged_when_it_closes_and_reported_as_a_deadlock);
    tcase_add_test(tc, join_cycle_is_logged_when_it_closes);
    tcase_add_test(tc, a_sleeper_or_a_descriptor_waiter_is_no_deadlock);
#ifndef NDEBUG
    /* An abort would end the whole run without fork mode. */
    if (fork_mode == NULL || strcmp(fork_mode, "no") != 0)
        tcase_add_test_raise_signal(tc,
            destroying_an_object_with_a_parked_waiter_asserts, SIGABRT);
#else
    (void)fork_mode;
#endif
    suite_add_tcase(s, tc);
    /* Slow under valgrind and the sanitizers. */
    tcase_set_timeout(stress, 120);
    tcase_add_test(stress,
        ten_producers_and_ten_consumers_pass_100000_items_exactly_once);
    suite_add_tcase(s, stress);
    return s;
}
