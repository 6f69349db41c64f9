/*
 * check_timer.c: sleeping, deadline order, and timers under a signal storm.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"

static int
sleep_accuracy_main(void *arg)
{
    static const int want[] = { 1, 5, 20, 50 };

    (void)arg;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int64_t t0 = diesel_now(), took;

        ck_assert_int_eq(diesel_sleep(want[i]), 0);
        took = diesel_now() - t0;
        /* Never early; late by a few ms at most on a quiet machine, and
         * a loaded CI machine gets some slack. */
        ck_assert_int_ge(took, want[i]);
        ck_assert_int_le(took, want[i] + 40);
    }
    return 0;
}

START_TEST(sleep_is_never_early_and_rarely_late)
{
    ck_assert_int_eq(t_run(sleep_accuracy_main, NULL), 0);
}
END_TEST

static int
sleep_args_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_sleep(-2), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* 0 never blocks: it yields and comes back. */
    ck_assert_int_eq(diesel_sleep(0), 0);
    return 0;
}

START_TEST(sleep_rejects_negative_times_and_zero_yields)
{
    ck_assert_int_eq(t_run(sleep_args_main, NULL), 0);
}
END_TEST

/* ---- Many sleepers wake in deadline order -------------------------------- */

#include "sanitize.h"

/* 100,000; valgrind runs 10,000 (it is some fifty times slower). */
#ifdef RUNNING_ON_VALGRIND
#define SLEEPERS (RUNNING_ON_VALGRIND ? 10000 : 100000)
#else
#define SLEEPERS 100000
#endif
static int64_t *woke;
static int nwoke;

static int
sleeper(void *arg)
{
    int ms = (int)(intptr_t)arg;
    int64_t due;

    ck_assert_int_eq(diesel_sleep(ms), 0);
    /* The deadline the loop used (monotonic ns), left in the record. */
    due = diesel__current->wait.deadline;
    ck_assert_int_ge(diesel_now(), due / 1000000);
    woke[nwoke++] = due;
    return 0;
}

static int
many_sleepers_main(void *arg)
{
    (void)arg;
    srand(1);
    for (int i = 0; i < SLEEPERS; i++) {
        /* Deadlines spread over 0.5 s, many equal. */
        int ms = 1 + rand() % 500;
        ck_assert_int_gt(diesel_task_spawn("sleeper", sleeper,
            (void *)(intptr_t)ms, 16 * 1024), 0);
    }
    return 0;
}

START_TEST(hundred_thousand_sleepers_wake_in_deadline_order)
{
    woke = calloc(SLEEPERS, sizeof(*woke));
    nwoke = 0;
    ck_assert_int_eq(t_run(many_sleepers_main, NULL), 0);
    ck_assert_int_eq(nwoke, SLEEPERS);
    /* Each woke no earlier than its deadline, and in deadline order. */
    for (int i = 1; i < SLEEPERS; i++)
        ck_assert_int_le(woke[i - 1], woke[i]);
    free(woke);
}
END_TEST

static int order[8];
static int norder;

static int
equal_sleeper(void *arg)
{
    diesel_sleep(10);
    order[norder++] = (int)(intptr_t)arg;
    return 0;
}

static int
equal_main(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < 8; i++)
        diesel_task_spawn("eq", equal_sleeper, (void *)i, 0);
    return 0;
}

START_TEST(equal_deadlines_wake_in_fifo_order)
{
    norder = 0;
    ck_assert_int_eq(t_run(equal_main, NULL), 0);
    ck_assert_int_eq(norder, 8);
    /* All eight park in the same millisecond or so; those that share a
     * deadline keep their order, and the deadlines themselves follow
     * the order of the calls. */
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(order[i], i);
}
END_TEST

/* ---- Signals every millisecond ------------------------------------------ */

static volatile sig_atomic_t nsignals;

static void
on_alarm(int sig)
{
    (void)sig;
    nsignals++;
}

static int
storm_main(void *arg)
{
    int64_t t0;

    (void)arg;
    for (int i = 0; i < 20; i++) {
        t0 = diesel_now();
        ck_assert_int_eq(diesel_sleep(10), 0);
        ck_assert_int_ge(diesel_now() - t0, 10);
        ck_assert_int_le(diesel_now() - t0, 60);
    }
    return 0;
}

START_TEST(signal_storm_is_absorbed_and_timers_stay_accurate)
{
    struct sigaction sa;
    struct itimerval it;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;   /* no SA_RESTART: epoll_wait sees EINTR */
    sigaction(SIGALRM, &sa, NULL);
    memset(&it, 0, sizeof(it));
    it.it_interval.tv_usec = 1000;
    it.it_value.tv_usec = 1000;
    setitimer(ITIMER_REAL, &it, NULL);
    ck_assert_int_eq(t_run(storm_main, NULL), 0);
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    ck_assert_int_gt(nsignals, 50);
}
END_TEST

Suite *
diesel_timer_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("timer");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sleep_is_never_early_and_rarely_late);
    tcase_add_test(tc, sleep_rejects_negative_times_and_zero_yields);
    tcase_add_test(tc, hundred_thousand_sleepers_wake_in_deadline_order);
    tcase_add_test(tc, equal_deadlines_wake_in_fifo_order);
    tcase_add_test(tc, signal_storm_is_absorbed_and_timers_stay_accurate);
    suite_add_tcase(s, tc);
    return s;
}
