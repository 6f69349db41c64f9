/*
 * check_chan.c: channels between loops.  Every test runs real loops on
 * real OS threads (one pthread per loop) and waits for events (an item,
 * a parked green thread, a thread's end), never for a fixed time.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"

/* ---- Helpers ----------------------------------------------------------- */

/* A loop on an OS thread of its own, running fn(arg). */
struct loop_thread {
    pthread_t th;
    diesel_task_fn fn;
    void *arg;
    int status;
};

static void *
loop_main(void *p)
{
    struct loop_thread *lt = p;

    lt->status = diesel_loop_run(lt->fn, lt->arg);
    return NULL;
}

static void
loop_start(struct loop_thread *lt, diesel_task_fn fn, void *arg)
{
    lt->fn = fn;
    lt->arg = arg;
    lt->status = -99;
    ck_assert_int_eq(pthread_create(&lt->th, NULL, loop_main, lt), 0);
}

static int
loop_join(struct loop_thread *lt)
{
    ck_assert_int_eq(pthread_join(lt->th, NULL), 0);
    return lt->status;
}

/* Park the calling green thread (yielding) until n green threads are
 * parked in ch: the event, not a time. */
static void
until_parked(struct diesel_chan *ch, unsigned n)
{
    while (diesel__chan_parked(ch) != n) {
        if (diesel__current != NULL)
            diesel_sleep(1);
        else
            sched_yield();
    }
}

/* ---- A burst costs one wake-up ---------------------------------------- */

#define BURST 1000

static struct diesel_chan *burst_ch;
static atomic_int spinner_on, burst_sent;
static long burst_got;

/* The receiving loop's second green thread: it holds the loop (no yield)
 * while the burst is sent, so that the receiver, parked, cannot run and
 * take the items one by one. */
static int
burst_spinner(void *arg)
{
    (void)arg;
    atomic_store(&spinner_on, 1);
    while (!atomic_load(&burst_sent))
        ;
    return 0;
}

static int
burst_receiver(void *arg)
{
    void *item;

    (void)arg;
    while (diesel_chan_recv(burst_ch, &item, -1) == 0) {
        ck_assert_int_eq((intptr_t)item, burst_got + 1);
        burst_got++;
    }
    ck_assert_int_eq(errno, EPIPE);
    return 0;
}

static int
burst_recv_loop(void *arg)
{
    (void)arg;
    ck_assert_int_gt(diesel_task_spawn("receiver", burst_receiver, NULL, 0),
        0);
    /* The receiver parks first (nothing is there), then the spinner
     * holds the loop. */
    until_parked(burst_ch, 1);
    ck_assert_int_gt(diesel_task_spawn("spinner", burst_spinner, NULL, 0),
        0);
    return 0;
}

static int
burst_send_loop(void *arg)
{
    (void)arg;
    until_parked(burst_ch, 1);
    while (!atomic_load(&spinner_on))
        diesel_sleep(1);
    for (intptr_t i = 1; i <= BURST; i++)
        ck_assert_int_eq(diesel_chan_send(burst_ch, (void *)i, -1), 0);
    /* One write made the receiver's descriptor readable; the 999 sends
     * after it found it so and made no call. */
    ck_assert_uint_eq(diesel__chan_wakes(burst_ch), 1);
    /* Closed while the receiver is still held: the close finds it parked
     * and its descriptor readable already, and writes nothing either. */
    ck_assert_int_eq(diesel_chan_close(burst_ch), 0);
    atomic_store(&burst_sent, 1);
    return 0;
}

START_TEST(chan_burst_of_1000_sends_to_a_parked_receiver_writes_one_wake)
{
    struct loop_thread r, s;

    burst_ch = diesel_chan_create("burst", BURST);
    ck_assert_ptr_nonnull(burst_ch);
    loop_start(&r, burst_recv_loop, NULL);
    loop_start(&s, burst_send_loop, NULL);
    ck_assert_int_eq(loop_join(&s), 0);
    ck_assert_int_eq(loop_join(&r), 0);
    ck_assert_int_eq(burst_got, BURST);
    /* The receiver woke once and took the whole burst without parking
     * again: still one write (and the close found no one parked). */
    ck_assert_uint_eq(diesel__chan_wakes(burst_ch), 1);
    diesel_chan_destroy(burst_ch);
}
END_TEST

/* ---- Nothing lost: 2 and 4 loops, a small channel ---------------------- */

#define STREAM 20000

struct stream {
    struct diesel_chan *ch;
    atomic_long sum;
    atomic_long count;
    int senders;
    atomic_int senders_left;
};

static int
stream_send(void *arg)
{
    struct stream *st = arg;

    for (intptr_t i = 1; i <= STREAM; i++)
        ck_assert_int_eq(diesel_chan_send(st->ch, (void *)i, -1), 0);
    /* The last sender to finish closes: the receivers drain, then stop. */
    if (atomic_fetch_sub(&st->senders_left, 1) == 1)
        ck_assert_int_eq(diesel_chan_close(st->ch), 0);
    return 0;
}

static int
stream_recv(void *arg)
{
    struct stream *st = arg;
    void *item;

    while (diesel_chan_recv(st->ch, &item, -1) == 0) {
        atomic_fetch_add(&st->sum, (long)(intptr_t)item);
        atomic_fetch_add(&st->count, 1);
    }
    ck_assert_int_eq(errno, EPIPE);
    return 0;
}

static void
stream_run(int senders, int receivers)
{
    struct loop_thread lt[8];
    struct stream st;
    long per = (long)STREAM * (STREAM + 1) / 2;

    memset(&st, 0, sizeof(st));
    /* 4 slots: senders park on a full channel all the time. */
    st.ch = diesel_chan_create("stream", 4);
    ck_assert_ptr_nonnull(st.ch);
    atomic_store(&st.senders_left, senders);
    for (int i = 0; i < receivers; i++)
        loop_start(&lt[i], stream_recv, &st);
    for (int i = 0; i < senders; i++)
        loop_start(&lt[receivers + i], stream_send, &st);
    for (int i = 0; i < senders + receivers; i++)
        ck_assert_int_eq(loop_join(&lt[i]), 0);
    ck_assert_int_eq(atomic_load(&st.count), (long)senders * STREAM);
    ck_assert_int_eq(atomic_load(&st.sum), senders * per);
    ck_assert_uint_eq(diesel_chan_length(st.ch), 0);
    diesel_chan_destroy(st.ch);
}

START_TEST(chan_two_loops_pass_20000_items_through_4_slots_none_lost)
{
    stream_run(1, 1);
}
END_TEST

START_TEST(chan_four_loops_two_senders_two_receivers_none_lost)
{
    stream_run(2, 2);
}
END_TEST

/* ---- Timeouts, cancel, close ------------------------------------------ */

static int
timeouts(void *arg)
{
    struct diesel_chan *ch = diesel_chan_create("t", 1);
    void *item = arg;
    int64_t t0;

    ck_assert_ptr_nonnull(ch);
    ck_assert_int_eq(diesel_chan_recv(ch, &item, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_ptr_eq(item, arg);
    t0 = diesel_now();
    ck_assert_int_eq(diesel_chan_recv(ch, &item, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(diesel_now() - t0, 50);
    ck_assert_int_eq(diesel_chan_send(ch, (void *)7, 0), 0);
    ck_assert_int_eq(diesel_chan_send(ch, (void *)8, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    t0 = diesel_now();
    ck_assert_int_eq(diesel_chan_send(ch, (void *)8, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(diesel_now() - t0, 50);
    ck_assert_int_eq(diesel_chan_recv(ch, &item, 0), 0);
    ck_assert_ptr_eq(item, (void *)7);
    /* Nobody parked: no wake was ever written. */
    ck_assert_uint_eq(diesel__chan_wakes(ch), 0);
    ck_assert_uint_eq(diesel__chan_parked(ch), 0);
    diesel_chan_destroy(ch);
    return 0;
}

START_TEST(chan_send_and_recv_time_out_on_full_and_empty_and_keep_item)
{
    ck_assert_int_eq(t_run(timeouts, (void *)1), 0);
}
END_TEST

static struct diesel_chan *cancel_ch;

static int
cancel_recv(void *arg)
{
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_chan_recv(cancel_ch, &item, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    return 0;
}

static int
cancel_send(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_chan_send(cancel_ch, (void *)2, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    return 0;
}

static int
cancels(void *arg)
{
    int64_t id;
    int status;
    void *item;

    (void)arg;
    cancel_ch = diesel_chan_create("c", 1);
    ck_assert_ptr_nonnull(cancel_ch);
    id = diesel_task_spawn("r", cancel_recv, NULL, 0);
    until_parked(cancel_ch, 1);
    ck_assert_int_eq(diesel_task_cancel(id), 0);
    ck_assert_int_eq(diesel_task_join(id, &status, -1), 0);
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(diesel_chan_send(cancel_ch, (void *)1, 0), 0);
    id = diesel_task_spawn("s", cancel_send, NULL, 0);
    until_parked(cancel_ch, 1);
    ck_assert_int_eq(diesel_task_cancel(id), 0);
    ck_assert_int_eq(diesel_task_join(id, &status, -1), 0);
    ck_assert_int_eq(status, 0);
    /* The cancelled sender's item was not put. */
    ck_assert_uint_eq(diesel_chan_length(cancel_ch), 1);
    ck_assert_int_eq(diesel_chan_recv(cancel_ch, &item, 0), 0);
    ck_assert_ptr_eq(item, (void *)1);
    ck_assert_uint_eq(diesel__chan_parked(cancel_ch), 0);
    diesel_chan_destroy(cancel_ch);
    return 0;
}

START_TEST(chan_cancelled_receiver_and_sender_fail_ecanceled_taking_nothing)
{
    ck_assert_int_eq(t_run(cancels, NULL), 0);
}
END_TEST

/* A receiver and a sender parked on other loops are woken by a close. */
static struct diesel_chan *close_r, *close_s;

static int
close_recv_loop(void *arg)
{
    void *item;

    (void)arg;
    ck_assert_int_eq(diesel_chan_recv(close_r, &item, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    return 0;
}

static int
close_send_loop(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_chan_send(close_s, (void *)2, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    return 0;
}

START_TEST(chan_close_wakes_receivers_and_senders_of_other_loops_with_epipe)
{
    struct loop_thread r, s;
    void *item;

    close_r = diesel_chan_create("r", 1);
    close_s = diesel_chan_create("s", 1);
    ck_assert_ptr_nonnull(close_r);
    ck_assert_ptr_nonnull(close_s);
    ck_assert_int_eq(diesel_chan_send(close_s, (void *)1, 0), 0);
    loop_start(&r, close_recv_loop, NULL);
    loop_start(&s, close_send_loop, NULL);
    until_parked(close_r, 1);
    until_parked(close_s, 1);
    /* From this plain OS thread: close never waits. */
    ck_assert_int_eq(diesel_chan_close(close_r), 0);
    ck_assert_int_eq(diesel_chan_close(close_s), 0);
    ck_assert_int_eq(loop_join(&r), 0);
    ck_assert_int_eq(loop_join(&s), 0);
    /* What was queued before the close is still received, then EPIPE. */
    ck_assert_int_eq(diesel_chan_recv(close_s, &item, 0), 0);
    ck_assert_ptr_eq(item, (void *)1);
    ck_assert_int_eq(diesel_chan_recv(close_s, &item, 0), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(diesel_chan_send(close_s, (void *)3, 0), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(diesel_chan_close(close_s), 0);
    diesel_chan_destroy(close_r);
    diesel_chan_destroy(close_s);
}
END_TEST

/* ---- Misuse ------------------------------------------------------------ */

static struct diesel_chan *busy_ch;

static int
busy_recv(void *arg)
{
    void *item;

    (void)arg;
    return diesel_chan_recv(busy_ch, &item, -1) == 0 ? 0 : errno;
}

static int
busy(void *arg)
{
    void *item;
    int64_t id;
    int status;

    (void)arg;
    busy_ch = diesel_chan_create(NULL, 1);
    ck_assert_ptr_nonnull(busy_ch);
    id = diesel_task_spawn("first", busy_recv, NULL, 0);
    until_parked(busy_ch, 1);
    /* The loop waits one green thread per descriptor and direction. */
    ck_assert_int_eq(diesel_chan_recv(busy_ch, &item, -1), -1);
    ck_assert_int_eq(errno, EBUSY);
    /* The first receiver was left parked, and still gets the item. */
    ck_assert_uint_eq(diesel__chan_parked(busy_ch), 1);
    ck_assert_int_eq(diesel_chan_send(busy_ch, (void *)5, -1), 0);
    ck_assert_int_eq(diesel_task_join(id, &status, -1), 0);
    ck_assert_int_eq(status, 0);
    diesel_chan_destroy(busy_ch);
    return 0;
}

START_TEST(chan_second_receiver_of_one_loop_fails_ebusy_first_is_served)
{
    ck_assert_int_eq(t_run(busy, NULL), 0);
}
END_TEST

START_TEST(chan_calls_reject_bad_arguments_and_waits_outside_a_loop)
{
    struct diesel_chan *ch;
    void *item;

    ck_assert_ptr_null(diesel_chan_create("x", 0));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(diesel_chan_create("x", SIZE_MAX));
    ck_assert_int_eq(errno, EINVAL);
    ch = diesel_chan_create("x", 2);
    ck_assert_ptr_nonnull(ch);
    ck_assert_int_eq(diesel_chan_send(NULL, NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_chan_recv(NULL, &item, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_chan_recv(ch, NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_chan_send(ch, NULL, -2), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_chan_close(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(diesel_chan_length(NULL), 0);
    /* A plain OS thread may send and receive without waiting... */
    ck_assert_int_eq(diesel_chan_send(ch, NULL, 0), 0);
    ck_assert_uint_eq(diesel_chan_length(ch), 1);
    ck_assert_int_eq(diesel_chan_recv(ch, &item, 0), 0);
    ck_assert_ptr_null(item);
    /* ...but not wait: it has no loop to park in. */
    t_log_capture_start();
    ck_assert_int_eq(diesel_chan_recv(ch, &item, -1), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_chan_send(ch, NULL, 10), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_ptr_nonnull(strstr(t_log_capture_end(),
        "diesel_chan_send() called outside a green thread"));
    diesel_chan_destroy(ch);
    diesel_chan_destroy(NULL);
}
END_TEST

Suite *
diesel_chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
        chan_burst_of_1000_sends_to_a_parked_receiver_writes_one_wake);
    tcase_add_test(tc,
        chan_two_loops_pass_20000_items_through_4_slots_none_lost);
    tcase_add_test(tc, chan_four_loops_two_senders_two_receivers_none_lost);
    tcase_add_test(tc,
        chan_send_and_recv_time_out_on_full_and_empty_and_keep_item);
    tcase_add_test(tc,
        chan_cancelled_receiver_and_sender_fail_ecanceled_taking_nothing);
    tcase_add_test(tc,
        chan_close_wakes_receivers_and_senders_of_other_loops_with_epipe);
    tcase_add_test(tc,
        chan_second_receiver_of_one_loop_fails_ebusy_first_is_served);
    tcase_add_test(tc,
        chan_calls_reject_bad_arguments_and_waits_outside_a_loop);
    suite_add_tcase(s, tc);
    return s;
}
