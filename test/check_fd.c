/*
 * check_fd.c: parking on descriptors, over real pipes and socketpairs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"

static int sp[2];

static void
make_pair(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    fcntl(sp[0], F_SETFL, O_NONBLOCK);
    fcntl(sp[1], F_SETFL, O_NONBLOCK);
}

/* ---- Ping-pong ------------------------------------------------------------ */

enum { ROUNDS = 2000 };

static int
ponger(void *arg)
{
    char c;

    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        ck_assert_int_eq(diesel_fd_wait(sp[1], DIESEL_READ, 5000),
            DIESEL_READ);
        ck_assert_int_eq(read(sp[1], &c, 1), 1);
        ck_assert_int_eq(c, (char)i);
        c++;
        ck_assert_int_eq(write(sp[1], &c, 1), 1);
    }
    return 0;
}

static int
pingpong_main(void *arg)
{
    int64_t id;
    char c;

    (void)arg;
    make_pair();
    id = diesel_task_spawn("ponger", ponger, NULL, 0);
    for (int i = 0; i < ROUNDS; i++) {
        c = (char)i;
        ck_assert_int_eq(write(sp[0], &c, 1), 1);
        ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 5000),
            DIESEL_READ);
        ck_assert_int_eq(read(sp[0], &c, 1), 1);
        ck_assert_int_eq(c, (char)(i + 1));
    }
    ck_assert_int_eq(diesel_task_join(id, NULL, -1), 0);
    diesel_fd_close(sp[0]);
    diesel_fd_close(sp[1]);
    return 0;
}

START_TEST(two_green_threads_ping_pong_over_a_socketpair)
{
    int fds = t_count_fds();

    ck_assert_int_eq(t_run(pingpong_main, NULL), 0);
    /* The loop's own descriptors are gone too. */
    ck_assert_int_eq(t_count_fds(), fds);
}
END_TEST

/* ---- Timeouts, EOF, both directions ------------------------------------- */

static int
timeouts_main(void *arg)
{
    int64_t t0;
    int p[2];

    (void)arg;
    make_pair();
    /* Nothing to read: times out, not early. */
    t0 = diesel_now();
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 30), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_ge(diesel_now() - t0, 30);
    /* 0 never blocks. */
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 0), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_WRITE, 0), DIESEL_WRITE);
    /* Both directions at once: only writable is ready. */
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ | DIESEL_WRITE, 100),
        DIESEL_WRITE);
    /* Data makes it readable. */
    ck_assert_int_eq(write(sp[1], "x", 1), 1);
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 100), DIESEL_READ);
    /* EOF: the peer closes; readable, and read says 0. */
    close(sp[1]);
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 100), DIESEL_READ);
    {
        char buf[4];
        ck_assert_int_eq(read(sp[0], buf, sizeof(buf)), 1);
        ck_assert_int_eq(read(sp[0], buf, sizeof(buf)), 0);
    }
    diesel_fd_close(sp[0]);
    /* A pipe whose writer closed: the reader wakes. */
    ck_assert_int_eq(pipe(p), 0);
    close(p[1]);
    ck_assert(diesel_fd_wait(p[0], DIESEL_READ, 100) & DIESEL_READ);
    diesel_fd_close(p[0]);
    return 0;
}

START_TEST(fd_wait_times_out_and_sees_eof)
{
    ck_assert_int_eq(t_run(timeouts_main, NULL), 0);
}
END_TEST

static int
late_writer(void *arg)
{
    (void)arg;
    diesel_sleep(10);
    ck_assert_int_eq(write(sp[1], "x", 1), 1);
    return 0;
}

static int
huge_timeout_main(void *arg)
{
    (void)arg;
    make_pair();
    diesel_task_spawn("late", late_writer, NULL, 0);
    /* A timeout too large to add to the clock means forever, not a
     * deadline in the past. */
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, INT64_MAX),
        DIESEL_READ);
    diesel_fd_close(sp[0]);
    diesel_fd_close(sp[1]);
    return 0;
}

START_TEST(huge_timeouts_mean_forever)
{
    ck_assert_int_eq(t_run(huge_timeout_main, NULL), 0);
}
END_TEST

static int
bad_args_main(void *arg)
{
    char path[] = "/tmp/diesel-fd-XXXXXX";
    int f;

    (void)arg;
    make_pair();
    ck_assert_int_eq(diesel_fd_wait(-1, DIESEL_READ, 10), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_fd_wait(sp[0], 0, 10), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_fd_wait(sp[0], 4, 10), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, -5), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* A descriptor that is not open. */
    ck_assert_int_eq(diesel_fd_wait(1000, DIESEL_READ, 10), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(diesel_fd_wait(1000, DIESEL_READ, 0), -1);
    ck_assert_int_eq(errno, EBADF);
    /* A regular file is always ready, as poll(2) says. */
    f = mkstemp(path);
    ck_assert_int_ge(f, 0);
    unlink(path);
    ck_assert_int_eq(diesel_fd_wait(f, DIESEL_READ | DIESEL_WRITE, 10),
        DIESEL_READ | DIESEL_WRITE);
    close(f);
    diesel_fd_close(sp[0]);
    diesel_fd_close(sp[1]);
    return 0;
}

START_TEST(fd_wait_rejects_bad_arguments)
{
    ck_assert_int_eq(t_run(bad_args_main, NULL), 0);
}
END_TEST

static int
second_reader(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 1000), -1);
    ck_assert_int_eq(errno, EBUSY);
    /* Writing is another direction: allowed. */
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_WRITE, 1000), DIESEL_WRITE);
    return 0;
}

static int
busy_main(void *arg)
{
    (void)arg;
    make_pair();
    diesel_task_spawn("second", second_reader, NULL, 0);
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    diesel_fd_close(sp[0]);
    diesel_fd_close(sp[1]);
    return 0;
}

/*
 * Thousands of green threads woken at once by one poll run one after the
 * other, and the loop polls again every so many switches meanwhile: a
 * descriptor whose green thread is woken but has not run yet must not be
 * reported again and again by those polls (level-triggered, it is still
 * readable).  Each is reported once to wake its thread, and at most once
 * more, which takes it out until its thread waits again.
 */
enum { MANY = 2000 };
static int many_fd[MANY][2];
static int many, many_read;   /* MANY, or what the descriptor limit allows */

static int
woken_reader(void *arg)
{
    int *p = arg;
    char b;

    ck_assert_int_eq(diesel_fd_wait(p[0], DIESEL_READ, 10000), DIESEL_READ);
    ck_assert_int_eq(read(p[0], &b, 1), 1);
    many_read++;
    /* Wait again: nothing comes, the descriptor must be armed again. */
    ck_assert_int_eq(diesel_fd_wait(p[0], DIESEL_READ, 10), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    return 0;
}

static int
woken_main(void *arg)
{
    uint64_t events;
    int64_t ids[MANY];

    (void)arg;
    for (int i = 0; i < many; i++) {
        ck_assert_int_eq(pipe(many_fd[i]), 0);
        ids[i] = diesel_task_spawn("reader", woken_reader, many_fd[i], 0);
        ck_assert_int_gt(ids[i], 0);
    }
    /* All of them park; then every pipe becomes readable at once. */
    diesel_sleep(20);
    events = diesel__loop->events;
    for (int i = 0; i < many; i++)
        ck_assert_int_eq(write(many_fd[i][1], "x", 1), 1);
    for (int i = 0; i < many; i++)
        ck_assert_int_eq(diesel_task_join(ids[i], NULL, -1), 0);
    ck_assert_int_eq(many_read, many);
    events = diesel__loop->events - events;
    ck_assert_msg(events <= 2 * (uint64_t)many, "%llu descriptors reported "
        "for %d wake-ups", (unsigned long long)events, many);
    for (int i = 0; i < many; i++) {
        diesel_fd_close(many_fd[i][0]);
        close(many_fd[i][1]);
    }
    return 0;
}

START_TEST(woken_descriptors_are_not_reported_again_before_their_thread_runs)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MANY + 64) {
        rl.rlim_cur = rl.rlim_max < 2 * MANY + 64 ? rl.rlim_max :
            2 * MANY + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    many = rl.rlim_cur >= 2 * MANY + 64 ? MANY : (int)(rl.rlim_cur - 64) / 2;
    /* Past 128 of them, the loop polls while they run (task.c). */
    ck_assert_int_ge(many, 500);
    ck_assert_int_eq(t_run(woken_main, NULL), 0);
}
END_TEST

/* ---- Woken by the poll, cancelled before it runs ------------------------ */

/*
 * The poll queues a green thread parked on a descriptor without touching
 * its record (loop.c, dispatch): its record still says waiting.  Two
 * readers woken by one poll: the first to run sees the other ready (as
 * the console shows it) and cancels it.  The cancel must not queue it a
 * second time: it was woken already, so its wait returns the event, and
 * the cancel meets its next call.
 */
static int qp[2][2];
static int64_t qid[2];
static int qran[2], qrc[2], qsleep[2], qerr[2];
static enum diesel__state qother[2];

static int
queued_reader(void *arg)
{
    int me = (int)(intptr_t)arg, other = 1 - me;
    char c;

    qrc[me] = diesel_fd_wait(qp[me][0], DIESEL_READ, 10000);
    qran[me] = 1;
    if (!qran[other]) {
        struct diesel__task *o = diesel__task_find(diesel__loop, qid[other]);

        qother[me] = diesel__task_state(diesel__loop, o);
        ck_assert_int_eq(diesel_task_cancel(qid[other]), 0);
    }
    ck_assert_int_eq(read(qp[me][0], &c, 1), 1);
    qsleep[me] = diesel_sleep(1);
    qerr[me] = errno;
    return 0;
}

static int
queued_main(void *arg)
{
    int first, second;

    (void)arg;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pipe(qp[i]), 0);
        qid[i] = diesel_task_spawn("reader", queued_reader,
            (void *)(intptr_t)i, 0);
        ck_assert_int_gt(qid[i], 0);
    }
    /* Both parked, then both readable before the loop polls again. */
    while (diesel__task_find(diesel__loop, qid[0])->state !=
        DIESEL__WAITING || diesel__task_find(diesel__loop, qid[1])->state !=
        DIESEL__WAITING)
        ck_assert_int_eq(diesel_task_yield(), 0);
    ck_assert_int_eq(write(qp[0][1], "x", 1), 1);
    ck_assert_int_eq(write(qp[1][1], "x", 1), 1);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(diesel_task_join(qid[i], NULL, 10000), 0);
    /* Whichever ran first saw the other queued, as ready. */
    first = qother[0] == DIESEL__READY ? 0 : 1;
    second = 1 - first;
    ck_assert_int_eq(qother[first], DIESEL__READY);
    ck_assert_int_eq(qrc[first], DIESEL_READ);
    ck_assert_int_eq(qsleep[first], 0);
    /* The other's wait returned what woke it; its next call is cancelled. */
    ck_assert_int_eq(qrc[second], DIESEL_READ);
    ck_assert_int_eq(qsleep[second], -1);
    ck_assert_int_eq(qerr[second], ECANCELED);
    for (int i = 0; i < 2; i++) {
        diesel_fd_close(qp[i][0]);
        close(qp[i][1]);
    }
    return 0;
}

START_TEST(a_green_thread_woken_by_the_poll_and_cancelled_wakes_once)
{
    ck_assert_int_eq(t_run(queued_main, NULL), 0);
}
END_TEST

START_TEST(two_readers_of_one_fd_is_ebusy)
{
    ck_assert_int_eq(t_run(busy_main, NULL), 0);
}
END_TEST

/* ---- Closing and reusing descriptors ------------------------------------- */

static int closed_err;

static int
reader_of_closed(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_fd_wait(sp[0], DIESEL_READ, 2000), -1);
    closed_err = errno;
    return 0;
}

static int
close_main(void *arg)
{
    int64_t id;
    int old = 0, p[2];

    (void)arg;
    make_pair();
    id = diesel_task_spawn("reader", reader_of_closed, NULL, 0);
    diesel_sleep(5);
    /* Data arrives, and in the same turn, before the loop polls, the
     * descriptor is closed: the waiter wakes with EBADF, not READ. */
    ck_assert_int_eq(write(sp[1], "stale", 5), 5);
    old = sp[0];
    ck_assert_int_eq(diesel_fd_close(sp[0]), 0);
    ck_assert_int_eq(diesel_task_join(id, NULL, 1000), 0);
    ck_assert_int_eq(closed_err, EBADF);
    /* The number is reused at once by a pipe with nothing in it: the old
     * socket's readiness must not reach the new owner. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(p[0], old);
    ck_assert_int_eq(diesel_fd_wait(p[0], DIESEL_READ, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    diesel_fd_close(p[0]);
    close(p[1]);
    diesel_fd_close(sp[1]);
    return 0;
}

START_TEST(closed_fd_wakes_waiter_and_reuse_sees_no_stale_event)
{
    ck_assert_int_eq(t_run(close_main, NULL), 0);
}
END_TEST

/* An event already fetched for a descriptor that a green thread closes
 * and reopens in the same turn goes to nobody. */
static int pair2[2];

static int
closer(void *arg)
{
    int p[2];

    (void)arg;
    /* Both sockets of sp are readable now; whoever runs first closes the
     * other's descriptor and reuses the number for an empty pipe. */
    diesel_fd_close(pair2[0]);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(p[0], pair2[0]);
    ck_assert_int_eq(diesel_fd_wait(p[0], DIESEL_READ, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    diesel_fd_close(p[0]);
    close(p[1]);
    return 0;
}

static int
victim(void *arg)
{
    (void)arg;
    /* Woken by EBADF when closer closes our descriptor. */
    ck_assert_int_eq(diesel_fd_wait(pair2[0], DIESEL_READ, 1000), -1);
    ck_assert_int_eq(errno, EBADF);
    return 0;
}

static int
same_turn_main(void *arg)
{
    int64_t v, c;

    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair2), 0);
    v = diesel_task_spawn("victim", victim, NULL, 0);
    diesel_task_yield();
    ck_assert_int_eq(write(pair2[1], "x", 1), 1);
    c = diesel_task_spawn("closer", closer, NULL, 0);
    diesel_task_join(v, NULL, -1);
    diesel_task_join(c, NULL, -1);
    close(pair2[1]);
    return 0;
}

START_TEST(fd_closed_with_an_event_pending_loses_the_event)
{
    ck_assert_int_eq(t_run(same_turn_main, NULL), 0);
}
END_TEST

/* ---- Many descriptors ---------------------------------------------------- */

enum { PAIRS = 300 };
static int pairs[PAIRS][2];

static int
echo_one(void *arg)
{
    int *p = arg;
    char c;

    ck_assert_int_eq(diesel_fd_wait(p[1], DIESEL_READ, 5000), DIESEL_READ);
    ck_assert_int_eq(read(p[1], &c, 1), 1);
    ck_assert_int_eq(write(p[1], &c, 1), 1);
    return 0;
}

static int
many_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < PAIRS; i++) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]), 0);
        diesel_task_spawn("echo", echo_one, pairs[i], 0);
    }
    diesel_task_yield();
    for (int i = PAIRS - 1; i >= 0; i--)
        ck_assert_int_eq(write(pairs[i][0], "q", 1), 1);
    for (int i = 0; i < PAIRS; i++) {
        char c;
        ck_assert_int_eq(diesel_fd_wait(pairs[i][0], DIESEL_READ, 5000),
            DIESEL_READ);
        ck_assert_int_eq(read(pairs[i][0], &c, 1), 1);
        diesel_fd_close(pairs[i][0]);
        diesel_fd_close(pairs[i][1]);
    }
    return 0;
}

START_TEST(hundreds_of_descriptors_wake_the_right_green_threads)
{
    ck_assert_int_eq(t_run(many_main, NULL), 0);
}
END_TEST

/* ---- Polls among green threads that yield ------------------------------- */

/*
 * Green threads that keep yielding make the loop turn every POLL_BUDGET
 * switches (task.c).  With none of them parked on a descriptor, those
 * turns ask the kernel at most once a millisecond (loop.c, must_poll):
 * what the loop then watches is its own (the mailbox, descriptors left
 * watched), and a poll costs as much as a hundred switches.  With one
 * parked on a descriptor, every turn polls, so that it is woken as soon
 * as its bytes come, however busy the others are.
 */
enum { YIELDS = 100000, BUDGET = 128 };

/* No ck_assert in the loops: each one is a write to Check's pipe. */
static int
yielder(void *arg)
{
    int bad = 0;

    (void)arg;
    for (int i = 0; i < YIELDS; i++)
        bad += diesel_task_yield() != 0;
    return bad;
}

static int
quiet_main(void *arg)
{
    int64_t a, b, t0, ms;
    uint64_t polls, turns;
    int p[2], st;

    (void)arg;
    /* A descriptor waited on once and left watched: the loop has
     * something to poll. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(diesel_fd_wait(p[0], DIESEL_READ, 1), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_gt(diesel__loop->watched, 0);
    ck_assert_int_eq(diesel__loop->fd_waiters, 0);

    a = diesel_task_spawn("yield-a", yielder, NULL, 0);
    b = diesel_task_spawn("yield-b", yielder, NULL, 0);
    ck_assert_int_gt(a, 0);
    ck_assert_int_gt(b, 0);
    t0 = diesel__now_ns();
    polls = diesel__loop->polls;
    turns = diesel__loop->iterations;
    ck_assert_int_eq(diesel_task_join(a, &st, -1), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(diesel_task_join(b, &st, -1), 0);
    ck_assert_int_eq(st, 0);
    ms = (diesel__now_ns() - t0) / 1000000;
    polls = diesel__loop->polls - polls;
    turns = diesel__loop->iterations - turns;
    /* The loop still turned once per POLL_BUDGET switches or so (each
     * of those turns used to poll); it polled once a millisecond at most. */
    ck_assert_msg(turns >= 2 * YIELDS / BUDGET / 2, "%llu turns",
        (unsigned long long)turns);
    ck_assert_msg(polls <= (uint64_t)ms + 2, "%llu polls in %lld ms (%llu "
        "turns)", (unsigned long long)polls, (long long)ms,
        (unsigned long long)turns);
    diesel_fd_close(p[0]);
    close(p[1]);
    return 0;
}

START_TEST(yielding_with_no_descriptor_waited_on_polls_once_a_millisecond)
{
    ck_assert_int_eq(t_run(quiet_main, NULL), 0);
}
END_TEST

static int busy_pipe[2];
static int busy_woken;

static int
busy_reader(void *arg)
{
    char c;

    (void)arg;
    ck_assert_int_eq(diesel_fd_wait(busy_pipe[0], DIESEL_READ, -1),
        DIESEL_READ);
    ck_assert_int_eq(read(busy_pipe[0], &c, 1), 1);
    busy_woken = 1;
    return 0;
}

static int
busy_yielder(void *arg)
{
    int bad = 0;

    (void)arg;
    while (!busy_woken)
        bad += diesel_task_yield() != 0;
    return bad;
}

static int
among_main(void *arg)
{
    int64_t r, y;
    long after = 0;
    int st;

    (void)arg;
    ck_assert_int_eq(pipe(busy_pipe), 0);
    r = diesel_task_spawn("reader", busy_reader, NULL, 0);
    y = diesel_task_spawn("yield-a", busy_yielder, NULL, 0);
    ck_assert_int_gt(r, 0);
    ck_assert_int_gt(y, 0);
    while (diesel__loop->fd_waiters == 0)
        ck_assert_int_eq(diesel_task_yield(), 0);
    /* The bytes come while two green threads keep the loop busy. */
    ck_assert_int_eq(write(busy_pipe[1], "x", 1), 1);
    while (!busy_woken) {
        if (diesel_task_yield() != 0)
            break;
        after++;
    }
    ck_assert_int_eq(busy_woken, 1);
    /* Within a turn or two of the loop: each is BUDGET switches, half of
     * them ours. */
    ck_assert_msg(after <= 2 * BUDGET, "woken after %ld yields", after);
    ck_assert_int_eq(diesel_task_join(r, NULL, -1), 0);
    ck_assert_int_eq(diesel_task_join(y, &st, -1), 0);
    ck_assert_int_eq(st, 0);
    diesel_fd_close(busy_pipe[0]);
    close(busy_pipe[1]);
    return 0;
}

START_TEST(a_descriptor_waited_on_is_polled_among_yielding_green_threads)
{
    ck_assert_int_eq(t_run(among_main, NULL), 0);
}
END_TEST

Suite *
diesel_fd_suite(void)
{
    Suite *s = suite_create("fd");
    TCase *tc = tcase_create("fd");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, two_green_threads_ping_pong_over_a_socketpair);
    tcase_add_test(tc, fd_wait_times_out_and_sees_eof);
    tcase_add_test(tc, fd_wait_rejects_bad_arguments);
    tcase_add_test(tc, huge_timeouts_mean_forever);
    tcase_add_test(tc, two_readers_of_one_fd_is_ebusy);
    tcase_add_test(tc,
        woken_descriptors_are_not_reported_again_before_their_thread_runs);
    tcase_add_test(tc, closed_fd_wakes_waiter_and_reuse_sees_no_stale_event);
    tcase_add_test(tc, fd_closed_with_an_event_pending_loses_the_event);
    tcase_add_test(tc, hundreds_of_descriptors_wake_the_right_green_threads);
    tcase_add_test(tc,
        a_green_thread_woken_by_the_poll_and_cancelled_wakes_once);
    tcase_add_test(tc,
        yielding_with_no_descriptor_waited_on_polls_once_a_millisecond);
    tcase_add_test(tc,
        a_descriptor_waited_on_is_polled_among_yielding_green_threads);
    suite_add_tcase(s, tc);
    return s;
}
