/*
 * check_signal.c: diesel_signal_wait with real signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"

static int
raiser(void *arg)
{
    (void)arg;
    diesel_sleep(20);
    kill(getpid(), SIGUSR2);
    return 0;
}

static int
wait_main(void *arg)
{
    int sigs[] = { SIGUSR1, SIGUSR2 };
    int64_t t0 = diesel_now();

    (void)arg;
    diesel_task_spawn("raiser", raiser, NULL, 0);
    ck_assert_int_eq(diesel_signal_wait(sigs, 2, 5000), SIGUSR2);
    ck_assert_int_ge(diesel_now() - t0, 19);
    /* One that came while no one waited is kept for the next wait. */
    kill(getpid(), SIGUSR1);
    ck_assert_int_eq(diesel_signal_wait(sigs, 2, 0), SIGUSR1);
    /* Nothing pending: a timeout. */
    ck_assert_int_eq(diesel_signal_wait(sigs, 2, 20), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(diesel_signal_wait(sigs, 0, 20), -1);
    ck_assert_int_eq(errno, EINVAL);
    {
        int bad[] = { SIGKILL };
        ck_assert_int_eq(diesel_signal_wait(bad, 1, 20), -1);
        ck_assert_int_eq(errno, EINVAL);
    }
    return 0;
}

START_TEST(signal_wait_returns_the_signal_that_came)
{
    ck_assert_int_eq(t_run(wait_main, NULL), 0);
}
END_TEST

static int
second_waiter(void *arg)
{
    int sigs[] = { SIGUSR1 };

    (void)arg;
    ck_assert_int_eq(diesel_signal_wait(sigs, 1, 100), -1);
    ck_assert_int_eq(errno, EBUSY);
    return 0;
}

static int
cancelled(void *arg)
{
    int sigs[] = { SIGUSR1 };

    (void)arg;
    ck_assert_int_eq(diesel_signal_wait(sigs, 1, -1), -1);
    ck_assert_int_eq(errno, ECANCELED);
    return 0;
}

static int
raise_usr1(void *arg)
{
    (void)arg;
    diesel_sleep(20);
    kill(getpid(), SIGUSR1);
    return 0;
}

static int
busy_main(void *arg)
{
    int64_t w;
    int sigs[] = { SIGUSR1 };

    (void)arg;
    w = diesel_task_spawn("second", second_waiter, NULL, 0);
    ck_assert_int_eq(diesel_signal_wait(sigs, 1, 50), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    diesel_task_join(w, NULL, -1);
    w = diesel_task_spawn("cancelled", cancelled, NULL, 0);
    diesel_sleep(5);
    diesel_task_cancel(w);
    ck_assert_int_eq(diesel_task_join(w, NULL, 1000), 0);
    /* The waiter left cleanly: another can wait now (SIGUSR1 has its
     * default action again until then: it is sent once we wait). */
    diesel_task_spawn("raiser1", raise_usr1, NULL, 0);
    ck_assert_int_eq(diesel_signal_wait(sigs, 1, 5000), SIGUSR1);
    return 0;
}

START_TEST(one_waiter_at_a_time_and_cancel_frees_the_place)
{
    ck_assert_int_eq(t_run(busy_main, NULL), 0);
}
END_TEST

/*
 * A cancelled wait for SIGTERM must not leave the process deaf to it (a
 * console `cancel` of a service's stopper did).  In a child: a green
 * thread waits for SIGTERM and is cancelled.  With pending, SIGTERM is
 * sent to the child by itself just before the cancel, so that it is
 * caught and never taken; else the child says "c" on a pipe once the
 * waiter is gone, and the test sends SIGTERM.  Either way the child must
 * die of it; a child that lives on exits 0 after 30 s, or is killed.
 */
static int notify_fd = -1;

static int
term_waiter(void *arg)
{
    int sigs[] = { SIGTERM };

    (void)arg;
    return diesel_signal_wait(sigs, 1, -1) < 0 && errno == ECANCELED ? 0 : 1;
}

static int
cancel_main(void *arg)
{
    int pending = *(int *)arg;
    int64_t w = diesel_task_spawn("term", term_waiter, NULL, 0);

    diesel_sleep(5);    /* it waits now */
    if (pending)
        kill(getpid(), SIGTERM);
    diesel_task_cancel(w);
    if (diesel_task_join(w, NULL, 5000) != 0)
        return 2;
    (void)!write(notify_fd, "c", 1);
    diesel_sleep(t_slow(30000));
    return 0;
}

static int
cancelled_waiter_child(int pending)
{
    int p[2], st = -1;
    int64_t end;
    pid_t pid;
    char c;

    ck_assert_int_eq(pipe(p), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        notify_fd = p[1];
        /* Check's own handler (it kills the test's process group) is not
         * the disposition to come back: the default is. */
        signal(SIGTERM, SIG_DFL);
        _exit(t_run(cancel_main, &pending) == 0 ? 0 : 3);
    }
    close(p[1]);
    end = t_now_ms() + t_slow(10000);
    if (!pending) {
        ck_assert_msg(read(p[0], &c, 1) == 1, "the child never cancelled");
        kill(pid, SIGTERM);
    }
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (t_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(10000);
    }
    close(p[0]);
    return st;
}

START_TEST(cancelled_signal_wait_gives_the_signal_its_default_back)
{
    int st = cancelled_waiter_child(0);

    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
        "child status %#x: SIGTERM did not stop it", st);
}
END_TEST

START_TEST(cancelled_signal_wait_raises_a_signal_it_left_untaken)
{
    int st = cancelled_waiter_child(1);

    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
        "child status %#x: the SIGTERM caught before the cancel was lost",
        st);
}
END_TEST

START_TEST(signal_wait_outside_a_green_thread_is_eperm)
{
    int sigs[] = { SIGUSR1 };

    t_log_capture_start();
    ck_assert_int_eq(diesel_signal_wait(sigs, 1, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    t_log_capture_end();
}
END_TEST

/*
 * TESTPLAN 20: a green thread a few hundred bytes from the end of its
 * stack sends itself SIGUSR1 (kill) and SIGUSR2 (pthread_kill), which
 * another green thread waits for.  No signal frame fits in what is left
 * there: the handler must run on the alternate stack.  In a child
 * (test/deep_signal_child), which reports what happened.
 */
START_TEST(signal_sent_from_deep_in_a_green_thread_is_handled_and_it_returns)
{
    static char out[16384];
    char *argv[] = { "deep_signal_child", "wait", NULL };
    int st = t_spawn_capture(argv, out, sizeof(out), (int)t_slow(20000));
    const char *p = strstr(out, "room ");
    size_t room = 0;
    long min = 0;

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "child status %#x, stderr: %s", st, out);
    ck_assert_msg(strstr(out, "got SIGUSR1\n") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "got SIGUSR2\n") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "deep returned ") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "CRITICAL") == NULL, "stderr: %s", out);
    /* It was deep enough to mean something: no frame fits down there. */
    ck_assert_msg(p != NULL && sscanf(p, "room %zu min %ld", &room, &min) == 2,
        "stderr: %s", out);
    ck_assert_msg(room < (size_t)min, "room %zu, a frame needs %ld", room,
        min);
}
END_TEST

/* What a loop's thread has as its alternate signal stack. */
static stack_t in_loop;

static int
altstack_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(sigaltstack(NULL, &in_loop), 0);
    return 0;
}

/* In a loop: an alternate stack that the largest signal frame and the
 * handlers' own frames fit in. */
static void
assert_large_enough(const stack_t *ss, const void *not_this)
{
    long frame = (long)MINSIGSTKSZ;

#ifdef _SC_MINSIGSTKSZ
    if (sysconf(_SC_MINSIGSTKSZ) > 0)
        frame = sysconf(_SC_MINSIGSTKSZ);
#endif
    ck_assert(!(ss->ss_flags & SS_DISABLE));
    ck_assert_ptr_ne(ss->ss_sp, not_this);
    ck_assert_uint_ge(ss->ss_size, (size_t)frame + 32 * 1024);
    ck_assert_uint_ge(ss->ss_size, (size_t)SIGSTKSZ);
}

/*
 * Every handler of the library's runs on the loop thread's alternate
 * stack: a loop gets one that is large enough, in place of none or of a
 * smaller one of the program's, which it gives back at its end.
 */
START_TEST(loop_gets_a_large_enough_alternate_stack_and_gives_back_the_old_one)
{
    stack_t before, small, none, after;

    /* A sanitizer may have given the thread one: put it back at the end. */
    ck_assert_int_eq(sigaltstack(NULL, &before), 0);

    memset(&none, 0, sizeof(none));
    none.ss_flags = SS_DISABLE;
    ck_assert_int_eq(sigaltstack(&none, NULL), 0);
    ck_assert_int_eq(t_run(altstack_main, NULL), 0);
    assert_large_enough(&in_loop, NULL);
    ck_assert_int_eq(sigaltstack(NULL, &after), 0);
    ck_assert(after.ss_flags & SS_DISABLE);

    small.ss_size = 16 * 1024;
    small.ss_sp = malloc(small.ss_size);
    small.ss_flags = 0;
    ck_assert_ptr_nonnull(small.ss_sp);
    ck_assert_int_eq(sigaltstack(&small, NULL), 0);
    ck_assert_int_eq(t_run(altstack_main, NULL), 0);
    assert_large_enough(&in_loop, small.ss_sp);
    ck_assert_int_eq(sigaltstack(NULL, &after), 0);
    ck_assert(!(after.ss_flags & SS_DISABLE));
    ck_assert_ptr_eq(after.ss_sp, small.ss_sp);
    ck_assert_uint_eq(after.ss_size, small.ss_size);

    before.ss_flags &= SS_DISABLE;
    ck_assert_int_eq(sigaltstack(&before, NULL), 0);
    free(small.ss_sp);
}
END_TEST

Suite *
diesel_signal_suite(void)
{
    Suite *s = suite_create("signal");
    TCase *tc = tcase_create("signal");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, signal_wait_returns_the_signal_that_came);
    tcase_add_test(tc, one_waiter_at_a_time_and_cancel_frees_the_place);
    tcase_add_test(tc, cancelled_signal_wait_gives_the_signal_its_default_back);
    tcase_add_test(tc, cancelled_signal_wait_raises_a_signal_it_left_untaken);
    tcase_add_test(tc, signal_wait_outside_a_green_thread_is_eperm);
    tcase_add_test(tc,
        signal_sent_from_deep_in_a_green_thread_is_handled_and_it_returns);
    tcase_add_test(tc,
        loop_gets_a_large_enough_alternate_stack_and_gives_back_the_old_one);
    suite_add_tcase(s, tc);
    return s;
}
