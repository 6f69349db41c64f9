/*
 * check_hog.c: hog warnings (a green thread that holds the loop), the
 * longest runs in `stats`, and stack high-water marks in `tasks` and
 * `mem`.
 *
 * The hog tests spin on the clock: the watchdog checks every threshold/2,
 * so a spin of twice the threshold is warned about once, whatever the
 * machine's load, and a warning is never early.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "internal.h"
#include "console_builtins.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>) && !defined(DIESEL_NO_VALGRIND)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/*
 * Under valgrind, threads take turns on one lock, so the watchdog checks
 * late: spins last SLOW times longer there, and only the bounds that do
 * not depend on the watchdog's punctuality are checked.
 */
#define SLOW (RUNNING_ON_VALGRIND ? 3 : 1)

/* ---- Helpers ------------------------------------------------------------- */

/* Run a built-in command; its output (malloc'd, NUL-terminated). */
static char *
run_cmd(diesel_console_fn fn, const char *a0, const char *a1)
{
    struct diesel_console_out out;
    char *argv[3] = { (char *)a0, (char *)a1, NULL };
    char *s;

    diesel__console_out_init(&out);
    ck_assert_int_eq(fn(&out, a1 != NULL ? 2 : 1, argv, NULL), 0);
    s = malloc(out.len + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, out.buf != NULL ? out.buf : "", out.len);
    s[out.len] = '\0';
    free(out.buf);
    return s;
}

static int
threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Hold the loop for ms, calling nothing of the library's. */
static int __attribute__((noinline))
spin_for(int64_t ms)
{
    int64_t end = t_now_ms() + ms * SLOW;
    volatile unsigned n = 0;

    while (t_now_ms() < end)    /* line: spin_first */
        n++;                    /* line: spin_last */
    return (int)(n & 1);
}

static int
spinner(void *arg)
{
    return spin_for((int64_t)(intptr_t)arg);
}

/* ---- Hog warnings -------------------------------------------------------- */

static int
warns_main(void *arg)
{
    int64_t id;
    int st;

    (void)arg;
    ck_assert_int_eq(diesel_loop_hog_warn(100), 0);
    id = diesel_task_spawn("spinner", spinner, (void *)(intptr_t)200, 0);
    ck_assert_int_eq(diesel_task_join(id, &st, -1), 0);
    return (int)id;
}

START_TEST(hog_warning_names_the_green_thread_with_a_backtrace)
{
    const char *out;
    char want[128];
    const char *p;
    int id, ms, line;

    t_log_capture_start();
    id = t_run(warns_main, NULL);
    out = t_log_capture_end();
    snprintf(want, sizeof(want), "{diesel} WARNING:green thread 'spinner' "
        "(id %d) has held the loop for ", id);
    p = strstr(out, want);
    ck_assert_msg(p != NULL, "no warning in:\n%s", out);
    ck_assert_int_eq(sscanf(p + strlen(want), "%d ms without yielding", &ms),
        1);
    ck_assert_msg(ms >= 100 && (ms < 200 || SLOW > 1), "%d ms", ms);
    snprintf(want, sizeof(want), "WARNING:backtrace of green thread "
        "'spinner' (id %d), still running:\n", id);
    p = strstr(out, want);
    ck_assert_msg(p != NULL, "no backtrace in:\n%s", out);
    /* The spinning function, at a line of its loop (this file is built
     * with -g); frames inside it (t_now_ms, the clock) may come first.
     * Nothing under the green thread's function. */
    p += strlen(want);
    snprintf(want, sizeof(want), "\nspin_for (%s:", __FILE__);
    p = strstr(p - 1, want);
    ck_assert_msg(p != NULL, "no %s in:\n%s", want, out);
    ck_assert_int_eq(sscanf(p + strlen(want), "%d)", &line), 1);
    ck_assert_msg(line >= t_source_line(__FILE__, "spin_first") &&
        line <= t_source_line(__FILE__, "spin_last"), "line %d:\n%s", line,
        out);
    p = strchr(p + 1, '\n') + 1;
    ck_assert_msg(strstr(p, "trampoline") == NULL &&
        strstr(p, "??") == NULL, "%s", out);
    ck_assert_int_eq(t_count(out, "without yielding"), 1);
}
END_TEST

static int
normal_main(void *arg)
{
    int64_t end = t_now_ms() + 500;

    (void)arg;
    ck_assert_int_eq(diesel_loop_hog_warn(100), 0);
    while (t_now_ms() < end) {
        for (int i = 0; i < 1000; i++)
            ck_assert_int_eq(diesel_task_yield(), 0);
        spin_for(5);
        ck_assert_int_eq(diesel_sleep(3), 0);
        spin_for(20);
        ck_assert_int_eq(diesel_sleep(0), 0);
    }
    return 0;
}

START_TEST(hog_no_warning_for_normal_work)
{
    const char *out;

    t_log_capture_start();
    ck_assert_int_eq(t_run(normal_main, NULL), 0);
    out = t_log_capture_end();
    ck_assert_msg(strstr(out, "without yielding") == NULL, "%s", out);
}
END_TEST

static int
episodes_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_loop_hog_warn(100), 0);
    spin_for(450);          /* one long episode: one warning */
    ck_assert_int_eq(diesel_sleep(150), 0);
    spin_for(250);          /* a second one */
    ck_assert_int_eq(diesel_sleep(150), 0);
    return 0;
}

START_TEST(hog_warns_once_per_episode)
{
    const char *out;

    t_log_capture_start();
    ck_assert_int_eq(t_run(episodes_main, NULL), 0);
    out = t_log_capture_end();
    ck_assert_msg(t_count(out, "WARNING:green thread 'main' (id 1) has held "
        "the loop for") == 2, "%s", out);
    ck_assert_int_eq(t_count(out, "still running:"), 2);
}
END_TEST

static int
stats_main(void *arg)
{
    int64_t a, b;
    char *s, want[128];
    const char *p;
    int ms;

    (void)arg;
    ck_assert_int_eq(diesel_loop_hog_warn(100), 0);
    a = diesel_task_spawn("long-spin", spinner, (void *)(intptr_t)400, 0);
    ck_assert_int_eq(diesel_task_join(a, NULL, -1), 0);
    b = diesel_task_spawn("short-spin", spinner, (void *)(intptr_t)250, 0);
    ck_assert_int_eq(diesel_task_join(b, NULL, -1), 0);
    /* The watchdog records an episode when it sees the loop move again:
     * within one period (50 ms). */
    ck_assert_int_eq(diesel_sleep(120), 0);

    s = run_cmd(diesel__cmd_stats, "stats", NULL);
    ck_assert_msg(strstr(s, "hog warnings      over 100 ms\n") != NULL, "%s",
        s);
    p = strstr(s, "longest runs      ");
    ck_assert_msg(p != NULL, "%s", s);
    ck_assert_int_eq(sscanf(p + 18, "%d ms", &ms), 1);
    /* The estimate is within one period (50 ms) of the truth. */
    ck_assert_msg((ms >= 340 && ms <= 460) || (SLOW > 1 && ms >= 100),
        "%d ms\n%s", ms, s);
    snprintf(want, sizeof(want), " ms  long-spin (id %lld)\n", (long long)a);
    ck_assert_msg(strstr(p, want) != NULL, "%s", s);
    snprintf(want, sizeof(want), " ms  short-spin (id %lld)\n",
        (long long)b);
    ck_assert_msg(strstr(p, want) > strstr(p, "long-spin"), "%s", s);
    free(s);

    s = run_cmd(diesel__cmd_stats, "stats", "--json");
    ck_assert_msg(strstr(s, "\"hog_warn_ms\":100,") != NULL, "%s", s);
    snprintf(want, sizeof(want), "\"longest_runs\":[{\"id\":%lld,"
        "\"name\":\"long-spin\",\"ms\":", (long long)a);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    snprintf(want, sizeof(want), "{\"id\":%lld,\"name\":\"short-spin\","
        "\"ms\":", (long long)b);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    free(s);

    /* Off: no watchdog, no more warnings; the runs seen stay. */
    ck_assert_int_eq(diesel_loop_hog_warn(0), 0);
    s = run_cmd(diesel__cmd_stats, "stats", NULL);
    ck_assert_msg(strstr(s, "hog warnings      off\n") != NULL, "%s", s);
    ck_assert_msg(strstr(s, "long-spin") != NULL, "%s", s);
    free(s);
    return 0;
}

START_TEST(hog_longest_runs_in_stats)
{
    ck_assert_int_eq(t_run(stats_main, NULL), 0);
}
END_TEST

START_TEST(hog_bad_threshold_is_einval)
{
    errno = 0;
    ck_assert_int_eq(diesel_loop_hog_warn(-1), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static int
env_main(void *arg)
{
    char *s;

    (void)arg;
    s = run_cmd(diesel__cmd_stats, "stats", NULL);
    ck_assert_msg(strstr(s, "hog warnings      over 100 ms\n") != NULL, "%s",
        s);
    free(s);
    spin_for(250);
    return 0;
}

START_TEST(hog_env_variable_turns_warnings_on)
{
    const char *out;

    setenv("DIESEL_HOG_MS", "100", 1);
    t_log_capture_start();
    ck_assert_int_eq(t_run(env_main, NULL), 0);
    out = t_log_capture_end();
    ck_assert_msg(strstr(out, "WARNING:green thread 'main' (id 1) has held "
        "the loop for ") != NULL, "%s", out);
    unsetenv("DIESEL_HOG_MS");
}
END_TEST

static int during;

static int
threads_main(void *arg)
{
    (void)arg;
    during = threads();
    return 0;
}

START_TEST(hog_watchdog_ends_with_the_loop)
{
    int before = threads(), after;

    ck_assert_int_gt(before, 0);
    ck_assert_int_eq(diesel_loop_hog_warn(100), 0);
    ck_assert_int_eq(t_run(threads_main, NULL), 0);
    /* ThreadSanitizer starts a thread of its own at the first
     * pthread_create: allow for it once. */
    after = threads();
    ck_assert_int_ge(after, before);
    ck_assert_int_le(after, before + 1);
    ck_assert_int_eq(during, after + 1);
    /* A second loop starts its own watchdog, and ends it too. */
    ck_assert_int_eq(t_run(threads_main, NULL), 0);
    ck_assert_int_eq(during, after + 1);
    ck_assert_int_eq(threads(), after);
    /* Off: no watchdog. */
    ck_assert_int_eq(diesel_loop_hog_warn(0), 0);
    ck_assert_int_eq(t_run(threads_main, NULL), 0);
    ck_assert_int_eq(during, after);
    ck_assert_int_eq(threads(), after);
}
END_TEST

/*
 * TESTPLAN 20: the watchdog's signal comes while the hogging green thread
 * is a few hundred bytes from the end of its stack, where no signal frame
 * fits: the handler runs on the alternate stack, warns with a backtrace,
 * and the green thread comes back up.  In a child (deep_signal_child),
 * which reports what happened.
 */
START_TEST(hog_warning_deep_in_a_green_thread_is_handled_and_it_returns)
{
    static char out[1 << 16];
    char *argv[] = { "deep_signal_child", "hog", NULL };
    int st = t_spawn_capture(argv, out, sizeof(out), (int)t_slow(25000));
    const char *p = strstr(out, "room ");
    size_t room = 0;
    long min = 0;

    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "child status %#x, stderr: %s", st, out);
    ck_assert_msg(strstr(out, "WARNING:green thread 'deep' (id 2) has held "
        "the loop for ") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "WARNING:backtrace of green thread 'deep' "
        "(id 2), still running:\n") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "warned\n") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "deep returned ") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "CRITICAL") == NULL, "stderr: %s", out);
    ck_assert_msg(p != NULL && sscanf(p, "room %zu min %ld", &room, &min) == 2,
        "stderr: %s", out);
    ck_assert_msg(room < (size_t)min, "room %zu, a frame needs %ld", room,
        min);
}
END_TEST

/* ---- Stack high-water marks ---------------------------------------------- */

/* Use the stack down to depth bytes below base, a page at a time. */
static int __attribute__((noinline))
recurse(char *base, size_t depth)
{
    volatile char buf[512];
    char *here = __builtin_frame_address(0);

    buf[0] = 1;
    buf[sizeof(buf) - 1] = 1;
    if ((size_t)(base - here) >= depth)
        return buf[0];
    return recurse(base, depth) + buf[sizeof(buf) - 1];
}

static int
digger(void *arg)
{
    recurse(__builtin_frame_address(0), (size_t)(uintptr_t)arg);
    /* Park, so that the console sees it. */
    diesel_sleep(-1);
    return 0;
}

static int
high_main(void *arg)
{
    struct diesel__task *t;
    int64_t a, b, c, hw;
    size_t size;
    char *s, want[160];

    (void)arg;
    a = diesel_task_spawn("mid", digger, (void *)(uintptr_t)(64 * 1024),
        128 * 1024);
    ck_assert_int_gt(a, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    t = diesel__task_find(diesel__loop, a);
    ck_assert_ptr_nonnull(t);
    size = (size_t)(t->stack_hi - t->stack_lo);
    hw = diesel__stack_high_water(t);
    ck_assert_msg(hw * 100 > (int64_t)size * 50 && hw * 100 <
        (int64_t)size * 75, "%lld of %zu", (long long)hw, size);

    s = run_cmd(diesel__cmd_tasks, "tasks", NULL);
    ck_assert_msg(strstr(s, " HIGH ") != NULL, "%s", s);
    snprintf(want, sizeof(want), "%.1fK ", (double)hw / 1024);
    ck_assert_msg(strstr(s, want) != NULL, "%s\nwant %s", s, want);
    ck_assert_msg(strstr(s, "WARNING:") == NULL, "%s", s);
    free(s);
    s = run_cmd(diesel__cmd_tasks, "tasks", "--json");
    snprintf(want, sizeof(want), "\"high_water\":%lld,", (long long)hw);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    ck_assert_msg(strstr(s, "\"deep\":[]") != NULL, "%s", s);
    free(s);

    /* Deeper than 75%. */
    t_log_capture_start();
    b = diesel_task_spawn("deep", digger, (void *)(uintptr_t)(104 * 1024),
        128 * 1024);
    ck_assert_int_eq(diesel_sleep(10), 0);
    s = run_cmd(diesel__cmd_tasks, "tasks", NULL);
    snprintf(want, sizeof(want), "WARNING: green thread 'deep' (id %lld) "
        "has used ", (long long)b);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    ck_assert_msg(strstr(s, "over 75% of its stack\n") != NULL, "%s", s);
    ck_assert_int_eq(t_count(s, "WARNING: "), 1);
    free(s);
    s = run_cmd(diesel__cmd_mem, "mem", NULL);
    ck_assert_msg(strstr(s, "stack high water  ") != NULL, "%s", s);
    snprintf(want, sizeof(want), "in 'deep' (id %lld)\n", (long long)b);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    ck_assert_msg(strstr(s, "over 75% of its stack\n") != NULL, "%s", s);
    free(s);
    s = run_cmd(diesel__cmd_mem, "mem", "--json");
    snprintf(want, sizeof(want), "\"deep\":[%lld]", (long long)b);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    snprintf(want, sizeof(want), "\"high_water_max_id\":%lld", (long long)b);
    ck_assert_msg(strstr(s, want) != NULL, "%s", s);
    free(s);
    s = (char *)t_log_capture_end();
    /* Logged once, however many times it is looked at. */
    snprintf(want, sizeof(want), "{diesel} WARNING:green thread 'deep' "
        "(id %lld) has used ", (long long)b);
    ck_assert_msg(t_count(s, want) == 1, "%s", s);
    ck_assert_int_eq(t_count(s, "over 75% of its stack"), 1);

    /* A pooled stack does not pass its mark on. */
    c = diesel_task_spawn("pooled-deep", digger,
        (void *)(uintptr_t)(96 * 1024), 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    t = diesel__task_find(diesel__loop, c);
    ck_assert_int_gt(diesel__stack_high_water(t), 96 * 1024);
    ck_assert_int_eq(diesel_task_cancel(c), 0);
    ck_assert_int_eq(diesel_task_join(c, NULL, -1), 0);
    /* Taken straight from the pool, the stack is not purged yet: the mark
     * is the earlier green thread's, and the console says so. */
    c = diesel_task_spawn("pooled-next", digger, (void *)(uintptr_t)1024, 0);
    t = diesel__task_find(diesel__loop, c);
    ck_assert_int_eq(t->dirty, 1);
    ck_assert_int_eq(diesel_task_yield(), 0);
    s = run_cmd(diesel__cmd_tasks, "tasks", NULL);
    ck_assert_msg(strstr(s, "* a stack from the pool, used before") != NULL,
        "%s", s);
    free(s);
    s = run_cmd(diesel__cmd_tasks, "tasks", "--json");
    ck_assert_msg(strstr(s, "\"high_water_inherited\":true") != NULL, "%s",
        s);
    free(s);
    ck_assert_int_eq(diesel_task_cancel(c), 0);
    ck_assert_int_eq(diesel_task_join(c, NULL, -1), 0);
    /* Purged when the loop waits (the sleep), the next one starts low. */
    ck_assert_int_eq(diesel__loop->npool_dirty, 1);
    ck_assert_int_eq(diesel_sleep(10), 0);
    ck_assert_int_eq(diesel__loop->npool_dirty, 0);
    c = diesel_task_spawn("pooled-clean", digger, (void *)(uintptr_t)1024,
        0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    t = diesel__task_find(diesel__loop, c);
    ck_assert_int_eq(t->dirty, 0);
    ck_assert_msg(diesel__stack_high_water(t) < 32 * 1024, "%lld",
        (long long)diesel__stack_high_water(t));

    diesel_task_cancel(a);
    diesel_task_cancel(b);
    diesel_task_cancel(c);
    return 0;
}

START_TEST(stack_high_water_marks)
{
    ck_assert_int_eq(t_run(high_main, NULL), 0);
}
END_TEST

Suite *
diesel_hog_suite(void)
{
    Suite *s = suite_create("hog");
    TCase *tc = tcase_create("hog");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, hog_warning_names_the_green_thread_with_a_backtrace);
    tcase_add_test(tc, hog_no_warning_for_normal_work);
    tcase_add_test(tc, hog_warns_once_per_episode);
    tcase_add_test(tc, hog_longest_runs_in_stats);
    tcase_add_test(tc, hog_bad_threshold_is_einval);
    tcase_add_test(tc, hog_env_variable_turns_warnings_on);
    tcase_add_test(tc, hog_watchdog_ends_with_the_loop);
    tcase_add_test(tc,
        hog_warning_deep_in_a_green_thread_is_handled_and_it_returns);
    tcase_add_test(tc, stack_high_water_marks);
    suite_add_tcase(s, tc);
    return s;
}
