/*
 * check_top.c: time accounting (acct.c, diesel_loop_account(3)) and the
 * console's top, hist and account (console_top.c), run in-process on the
 * loop's green threads.  No timing assertion: a busy green thread's share
 * is compared with an idle one's, and durations only from below (a spin
 * of 40 ms ran at least 40 ms, whatever the load).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests.h"
#include "internal.h"
#include "console_builtins.h"

/* ---- Running a command --------------------------------------------------- */

static struct t_reply
cmd(const char *line)
{
    static const struct {
        const char *name;
        diesel_console_fn fn;
    } cmds[] = {
        { "top", diesel__cmd_top },
        { "hist", diesel__cmd_hist },
        { "account", diesel__cmd_account },
    };
    char name[32];
    diesel_console_fn fn = NULL;

    snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, " "), line);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(cmds[i].name, name) == 0)
            fn = cmds[i].fn;
    ck_assert_msg(fn != NULL, "no command %s", name);
    return t_console_fn(fn, line, 0, 0);
}

static char *
cmd_ok(const char *line)
{
    struct t_reply r = cmd(line);

    t_reply_ok(&r, line);
    return r.out;
}

static void
cmd_err(const char *line, const char *want)
{
    struct t_reply r = cmd(line);

    t_reply_err(&r, line, want, 1);
}

/* The unsigned number after "key": in text, after from. */
static unsigned long long
num_after(const char *from, const char *key)
{
    char k[64];
    const char *p;

    snprintf(k, sizeof(k), "\"%s\":", key);
    p = strstr(from, k);
    ck_assert_msg(p != NULL, "no %s in %s", key, from);
    return strtoull(p + strlen(k), NULL, 10);
}

/* The JSON object of green thread name in top --json's tasks. */
static const char *
row_of(const char *json, const char *name)
{
    char k[64];
    const char *p;

    snprintf(k, sizeof(k), "\"name\":\"%s\"", name);
    p = strstr(json, k);
    ck_assert_msg(p != NULL, "no %s in %s", name, json);
    return p;
}

/* ---- Green threads to account for ---------------------------------------- */

static volatile int stop_all;

static int64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
spin_ns(int64_t ns)
{
    int64_t end = mono_ns() + ns;

    while (mono_ns() < end)
        ;
}

/* Computes in slices of 50 us, yielding between them (the loop turns
 * every 128 yields: 6.4 ms). */
static int
worker(void *arg)
{
    (void)arg;
    while (!stop_all) {
        spin_ns(50000);
        if (diesel_task_yield() != 0)
            break;
    }
    return 0;
}

/* Sleeps 5 ms at a time: woken by its timer, each time. */
static int
idler(void *arg)
{
    (void)arg;
    while (!stop_all && diesel_sleep(5) == 0)
        ;
    return 0;
}

static int
napper(void *arg)
{
    (void)arg;
    diesel_sleep(-1);
    return 0;
}

static int
yielder(void *arg)
{
    for (long i = 0; i < (long)(intptr_t)arg; i++)
        if (diesel_task_yield() != 0)
            break;               /* cancelled */
    return 0;
}

static int
stop_and_join(int64_t a, int64_t b)
{
    stop_all = 1;
    ck_assert_int_eq(diesel_task_join(a, NULL, -1), 0);
    if (b > 0)
        ck_assert_int_eq(diesel_task_join(b, NULL, -1), 0);
    return 0;
}

/* ---- top ----------------------------------------------------------------- */

static int
top_main(void *arg)
{
    int64_t w = diesel_task_spawn("worker", worker, NULL, 0);
    int64_t i = diesel_task_spawn("idler", idler, NULL, 0);
    int64_t n = diesel_task_spawn("napper", napper, NULL, 0);
    char *out, *text;
    const char *tasks, *row;

    (void)arg;
    diesel_task_yield();     /* the napper parks for good */
    ck_assert_ptr_null(diesel__loop->acct);
    out = cmd_ok("top 0.3 --json");
    /* The worker leads; the idler ran, woken by its timer each time
     * (how many times depends on the machine's load). */
    tasks = strstr(out, "\"tasks\":[");
    ck_assert_ptr_nonnull(tasks);
    ck_assert_ptr_eq(strstr(tasks, "\"name\":"), row_of(tasks, "worker"));
    row = row_of(tasks, "idler");
    ck_assert_uint_ge(num_after(row, "wakes"), 1);
    ck_assert_uint_ge(num_after(row, "runs"), 1);
    ck_assert_uint_gt(num_after(row_of(tasks, "worker"), "busy_ns"),
        num_after(row, "busy_ns"));
    ck_assert_uint_ge(num_after(row_of(tasks, "worker"), "runs"), 1);
    ck_assert_ptr_nonnull(strstr(out, "\"utilization\":"));
    /* The napper neither ran nor was woken: not a row, but counted. */
    ck_assert_ptr_null(strstr(out, "\"name\":\"napper\""));
    ck_assert_ptr_nonnull(strstr(out, "\"count\":4,"));
    free(out);
    /* It was off, and is off again: the window held it on. */
    ck_assert_ptr_null(diesel__loop->acct);
    text = cmd_ok("top 0.2");
    ck_assert_msg(strncmp(text, "top: 0.", 7) == 0, "%s", text);
    /* NAME as wide as the widest name shown: worker, idler, main. */
    ck_assert_msg(strstr(text, "\nID      NAME    BUSY%   BUSY      SCHED"
        "            RUNS     WAKES    STATE\n") != NULL, "%s", text);
    row = strstr(text, "STATE\n") + 6;
    ck_assert_msg(strncmp(row + 8, "worker ", 7) == 0, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, ", 4 green threads\n"));
    ck_assert_msg(strstr(text, "\n(1 green thread neither ran nor was "
        "woken)\n") != NULL, "%s", text);
    free(text);
    ck_assert_ptr_null(diesel__loop->acct);
    ck_assert_int_eq(diesel_task_cancel(n), 0);
    ck_assert_int_eq(diesel_task_join(n, NULL, -1), 0);
    return stop_and_join(w, i);
}

START_TEST(top_ranks_the_busy_green_thread_first)
{
    ck_assert_int_eq(t_run(top_main, NULL), 0);
}
END_TEST

/* The display column at which byte off of line starts (UTF-8). */
static size_t
col_of(const char *line, size_t off)
{
    size_t c = 0;

    for (size_t i = 0; i < off; i++)
        c += ((unsigned char)line[i] & 0xc0) != 0x80;
    return c;
}

/* The display column of the BUSY% figure (or header) in each row of
 * top's table is col: one column for every row, whatever its name. */
static void
top_rows_align(const char *text, size_t col)
{
    const char *p = strstr(text, "\nID ");
    int rows = 0;

    ck_assert_ptr_nonnull(p);
    for (p++; *p != '\0' && *p != '('; rows++) {
        const char *end = strchr(p, '\n');
        const char *pct = rows == 0 ? strstr(p, "BUSY%") : NULL;

        ck_assert_ptr_nonnull(end);
        if (rows > 0) {
            /* The first figure ending in '%' on the row. */
            for (const char *q = end; q > p; q--) {
                if (q[-1] == '%' && (q[0] == ' ' || q[0] == '\n')) {
                    pct = q - 1;
                    while (pct > p && pct[-1] != ' ')
                        pct--;
                }
            }
        }
        ck_assert_msg(pct != NULL && pct < end && col_of(p, (size_t)(pct -
            p)) == col && pct[-1] == ' ' && pct[-2] == ' ', "row %d: BUSY%% "
            "not at column %zu:\n%s", rows, col, text);
        p = end + 1;
    }
    ck_assert_int_gt(rows, 1);
}

static int
top_names_main(void *arg)
{
    /* A name is 31 bytes at most (diesel_task(3)), which NAME shows
     * whole; escaped, one of control bytes takes up to 4 columns a byte,
     * and is cut at 32 columns, ending in "...". */
    static const char full[] = "a-green-thread-name-of-thirty-1";
    static const char ctl[] = "ctl\x01\x01\x01\x01\x01\x01\x01\x01\x01tail";
    int64_t a = diesel_task_spawn(full, worker, NULL, 0);
    int64_t b = diesel_task_spawn("r\xc3\xa9sum\xc3\xa9 worker", worker,
        NULL, 0);
    int64_t c = diesel_task_spawn(ctl, worker, NULL, 0);
    char *text, want[128];

    (void)arg;
    ck_assert_uint_eq(strlen(full), 31);
    text = cmd_ok("top 0.2");
    /* NAME is 32 columns, the cap: the escaped name is cut, the others
     * whole and padded, and every row lines up. */
    snprintf(want, sizeof(want), "\nID      NAME%30sBUSY%%   BUSY ", "");
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof(want), " %s   ", full);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    ck_assert_msg(strstr(text, " ctl\\x01\\x01\\x01\\x01\\x01\\x01\\x...  ")
        != NULL && strstr(text, "tail") == NULL, "%s", text);
    ck_assert_msg(strstr(text, " r\xc3\xa9sum\xc3\xa9 worker   ") != NULL,
        "%s", text);
    ck_assert_msg(strchr(text, '\x01') == NULL, "%s", text);
    top_rows_align(text, 8 + 32 + 2);
    free(text);
    /* The JSON has the names whole. */
    text = cmd_ok("top 0.1 --json");
    ck_assert_msg(strstr(text, "\\u0001tail\"") != NULL, "%s", text);
    free(text);
    /* hist names it escaped too, whole. */
    free(cmd_ok("account on"));
    snprintf(want, sizeof(want), "hist %lld", (long long)c);
    text = cmd_ok(want);
    snprintf(want, sizeof(want), "run lengths, green thread %lld (ctl"
        "\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01\\x01tail), since ",
        (long long)c);
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0 &&
        strchr(text, '\x01') == NULL, "%s", text);
    free(text);
    free(cmd_ok("account off"));
    stop_and_join(a, b);
    ck_assert_int_eq(diesel_task_join(c, NULL, -1), 0);
    /* Short names: a narrow column, no longer a fixed 16. */
    stop_all = 0;
    a = diesel_task_spawn("w", worker, NULL, 0);
    text = cmd_ok("top 0.2");
    {
        const char *h = strstr(text, "\nID      NAME");
        size_t namew;

        ck_assert_ptr_nonnull(h);
        namew = (size_t)(strstr(h, "BUSY%") - h) - 1 - 8 - 2;
        ck_assert_msg(namew >= 4 && namew < 16, "NAME %zu wide:\n%s", namew,
            text);
        top_rows_align(text, 8 + namew + 2);
    }
    free(text);
    return stop_and_join(a, 0);
}

START_TEST(top_name_column_fits_the_longest_name_shown)
{
    ck_assert_int_eq(t_run(top_names_main, NULL), 0);
}
END_TEST

static int
top_on_main(void *arg)
{
    int64_t w = diesel_task_spawn("worker", worker, NULL, 0);
    char *out;

    (void)arg;
    ck_assert_int_eq(diesel_loop_account(1), 0);
    diesel_sleep(200);       /* the worker runs, before any window */
    out = cmd_ok("top 0.1 --json");
    /* Only what it ran in the window counts, not since switched on: one
     * CPU cannot run more than the window's length (200 ms before it
     * would show), give or take the window's printed rounding and the
     * switch-time clock's skew, which valgrind widens to some 40 us. */
    ck_assert_uint_le(num_after(row_of(out, "worker"), "busy_ns"),
        (unsigned long long)(strtod(strstr(out, "\"window_s\":") + 11,
        NULL) * 1e9) + 10000000);
    free(out);
    /* On before the window: still on after it. */
    ck_assert_ptr_nonnull(diesel__loop->acct);
    out = cmd_ok("account");
    ck_assert_msg(strncmp(out, "time accounting is on (clock ", 29) == 0,
        "%s", out);
    free(out);
    ck_assert_int_eq(diesel_loop_account(0), 0);
    ck_assert_ptr_null(diesel__loop->acct);
    return stop_and_join(w, 0);
}

START_TEST(top_leaves_accounting_on_when_it_was)
{
    ck_assert_int_eq(t_run(top_on_main, NULL), 0);
}
END_TEST

static int
refusals_main(void *arg)
{
    (void)arg;
    cmd_err("top 0", "'0' is not a number of seconds greater than 0 and "
        "at most 3600; usage: top [SECONDS] [--json] [--loop NAME]");
    cmd_err("top 3601", "'3601' is not a number of seconds greater than 0 "
        "and at most 3600; usage: top [SECONDS] [--json] [--loop NAME]");
    cmd_err("top x", "'x' is not a number of seconds greater than 0 and "
        "at most 3600; usage: top [SECONDS] [--json] [--loop NAME]");
    cmd_err("top 1 2", "usage: top [SECONDS] [--json] [--loop NAME]");
    cmd_err("top --all", "unknown option '--all'; usage: top [SECONDS] "
        "[--json] [--loop NAME]");
    cmd_err("hist", "time accounting is off: `account on` switches it on "
        "(top does, for its window only)");
    cmd_err("hist x", "'x' is not a green thread id; usage: hist "
        "[[LOOP:]ID] [--json] [--loop NAME]");
    cmd_err("account maybe", "'maybe' is neither on nor off; usage: account "
        "[on|off] [--json] [--loop NAME]");
    free(cmd_ok("account on"));
    cmd_err("hist 999999", "no green thread with id 999999");
    return 0;
}

START_TEST(top_hist_and_account_refuse_bad_arguments)
{
    ck_assert_int_eq(t_run(refusals_main, NULL), 0);
}
END_TEST

/* A session that ends during the window (its green thread cancelled):
 * top says so and lets go of the accounting it switched on. */
static int
top_runner(void *arg)
{
    (void)arg;
    cmd_err("top 60", "interrupted: the green thread running the command "
        "was cancelled");
    return 0;
}

static int
cancel_main(void *arg)
{
    int64_t r = diesel_task_spawn("session", top_runner, NULL, 0);

    (void)arg;
    diesel_sleep(50);
    ck_assert_ptr_nonnull(diesel__loop->acct);
    ck_assert_int_eq(diesel_task_cancel(r), 0);
    ck_assert_int_eq(diesel_task_join(r, NULL, -1), 0);
    ck_assert_ptr_null(diesel__loop->acct);
    return 0;
}

START_TEST(top_cancelled_says_so_and_switches_accounting_off)
{
    ck_assert_int_eq(t_run(cancel_main, NULL), 0);
}
END_TEST

/* ---- hist ---------------------------------------------------------------- */

static int
spinner(void *arg)
{
    (void)arg;
    spin_ns(40000000);   /* one run of 40 ms */
    return 0;
}

static int
hist_main(void *arg)
{
    int64_t y, s;
    char line[64], *out;
    const char *run, *sched;

    (void)arg;
    free(cmd_ok("account on"));
    y = diesel_task_spawn("yielder", yielder, (void *)(intptr_t)200, 0);
    s = diesel_task_spawn("spinner", spinner, NULL, 0);
    for (int i = 0; i < 200; i++)
        diesel_task_yield();
    ck_assert_int_eq(diesel_task_join(y, NULL, -1), 0);
    ck_assert_int_eq(diesel_task_join(s, NULL, -1), 0);
    out = cmd_ok("hist --json");
    run = strstr(out, "\"run\":");
    sched = strstr(out, "\"sched\":");
    ck_assert_ptr_nonnull(run);
    ck_assert_ptr_nonnull(sched);
    ck_assert_uint_ge(num_after(run, "count"), 400);
    ck_assert_uint_ge(num_after(sched, "count"), 400);
    /* The spinner's run, converted from the clock's ticks: 40 ms at
     * least (the clock's rate is measured, so allow 1%). */
    ck_assert_uint_ge(num_after(run, "max_ns"), 39600000);
    ck_assert_uint_le(num_after(run, "min_ns"), num_after(run, "median_ns"));
    ck_assert_uint_le(num_after(run, "median_ns"), num_after(run, "p90_ns"));
    ck_assert_uint_le(num_after(run, "p99_ns"), num_after(run, "max_ns"));
    ck_assert_ptr_nonnull(strstr(out, "{\"id\":null,\"name\":null,"));
    free(out);
    /* One green thread's: main's own 200 yields, and more. */
    snprintf(line, sizeof(line), "hist %lld", (long long)diesel_task_self());
    out = cmd_ok(line);
    ck_assert_msg(strncmp(out, "run lengths, green thread 1 (main), since ",
        42) == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\n  min "));
    ck_assert_ptr_nonnull(strstr(out, " median "));
    ck_assert_ptr_nonnull(strstr(out, "\nscheduling delays, green thread 1 "
        "(main), since "));
    ck_assert_ptr_nonnull(strstr(out, "\n  < "));
    free(out);
    return 0;
}

START_TEST(hist_counts_runs_and_delays_since_switched_on)
{
    ck_assert_int_eq(t_run(hist_main, NULL), 0);
}
END_TEST

/* Switched off and on again: what was counted before is forgotten. */
static int
epoch_main(void *arg)
{
    char line[64], *out;
    int64_t y;

    (void)arg;
    ck_assert_int_eq(diesel_loop_account(1), 0);
    y = diesel_task_spawn("yielder", yielder, (void *)(intptr_t)1000000, 0);
    for (int i = 0; i < 50; i++)
        diesel_task_yield();
    snprintf(line, sizeof(line), "hist %lld --json", (long long)y);
    out = cmd_ok(line);
    ck_assert_uint_ge(num_after(strstr(out, "\"run\":"), "count"), 50);
    free(out);
    ck_assert_int_eq(diesel_loop_account(0), 0);
    for (int i = 0; i < 50; i++)
        diesel_task_yield();
    ck_assert_int_eq(diesel_loop_account(1), 0);
    out = cmd_ok(line);
    ck_assert_uint_eq(num_after(strstr(out, "\"run\":"), "count"), 0);
    free(out);
    ck_assert_int_eq(diesel_task_cancel(y), 0);
    ck_assert_int_eq(diesel_task_join(y, NULL, -1), 0);
    return 0;
}

START_TEST(hist_forgets_what_came_before_switching_on_again)
{
    ck_assert_int_eq(t_run(epoch_main, NULL), 0);
}
END_TEST

/* ---- Switching it on: API, environment, clock ----------------------------- */

static int
state_main(void *arg)
{
    char *out = cmd_ok("account --json");

    ck_assert_msg(strstr(out, (const char *)arg) == out, "%s", out);
    free(out);
    return 0;
}

START_TEST(account_api_before_the_loop_switches_it_on_at_start)
{
    ck_assert_int_eq(diesel_loop_account(1), 0);
    ck_assert_int_eq(t_run(state_main, "{\"on\":true,"), 0);
    ck_assert_int_eq(diesel_loop_account(0), 0);
    ck_assert_int_eq(t_run(state_main, "{\"on\":false,"), 0);
}
END_TEST

START_TEST(account_environment_switches_it_on)
{
    const char *log;

    setenv("DIESEL_ACCOUNT", "1", 1);
    ck_assert_int_eq(t_run(state_main, "{\"on\":true,"), 0);
    setenv("DIESEL_ACCOUNT", "0", 1);
    ck_assert_int_eq(t_run(state_main, "{\"on\":false,"), 0);
    setenv("DIESEL_ACCOUNT", "yes", 1);
    t_log_capture_start();
    ck_assert_int_eq(t_run(state_main, "{\"on\":false,"), 0);
    log = t_log_capture_end();
    ck_assert_msg(strstr(log, "{diesel} ERROR:DIESEL_ACCOUNT=yes is neither "
        "0 nor 1: time accounting is off\n") != NULL, "%s", log);
    /* The API, once called, wins over the environment. */
    setenv("DIESEL_ACCOUNT", "1", 1);
    ck_assert_int_eq(diesel_loop_account(0), 0);
    ck_assert_int_eq(t_run(state_main, "{\"on\":false,"), 0);
    unsetenv("DIESEL_ACCOUNT");
}
END_TEST

START_TEST(account_clock_gettime_when_asked)
{
    setenv("DIESEL_ACCOUNT_CLOCK", "clock_gettime", 1);
    ck_assert_int_eq(diesel_loop_account(1), 0);
    ck_assert_int_eq(t_run(state_main,
        "{\"on\":true,\"clock\":\"clock_gettime\","), 0);
    /* And it measures: the spinner's 40 ms. */
    ck_assert_int_eq(t_run(hist_main, NULL), 0);
    unsetenv("DIESEL_ACCOUNT_CLOCK");
}
END_TEST

/* Off, a switch and a wake touch no record's figures. */
static int
off_main(void *arg)
{
    int64_t y = diesel_task_spawn("yielder", yielder, (void *)(intptr_t)100,
        0);

    (void)arg;
    for (int i = 0; i < 100; i++)
        diesel_task_yield();
    diesel_sleep(1);
    ck_assert_ptr_null(diesel__loop->acct);
    ck_assert_uint_eq(diesel__current->acct_epoch, 0);
    ck_assert_uint_eq(diesel__current->acct.runs, 0);
    ck_assert_int_eq(diesel_task_join(y, NULL, -1), 0);
    return 0;
}

START_TEST(account_off_counts_nothing)
{
    ck_assert_int_eq(t_run(off_main, NULL), 0);
}
END_TEST

Suite *
diesel_top_suite(void)
{
    Suite *s = suite_create("top");
    TCase *tc = tcase_create("top");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, top_ranks_the_busy_green_thread_first);
    tcase_add_test(tc, top_leaves_accounting_on_when_it_was);
    tcase_add_test(tc, top_name_column_fits_the_longest_name_shown);
    tcase_add_test(tc, top_hist_and_account_refuse_bad_arguments);
    tcase_add_test(tc, top_cancelled_says_so_and_switches_accounting_off);
    tcase_add_test(tc, hist_counts_runs_and_delays_since_switched_on);
    tcase_add_test(tc, hist_forgets_what_came_before_switching_on_again);
    tcase_add_test(tc, account_api_before_the_loop_switches_it_on_at_start);
    tcase_add_test(tc, account_environment_switches_it_on);
    tcase_add_test(tc, account_clock_gettime_when_asked);
    tcase_add_test(tc, account_off_counts_nothing);
    suite_add_tcase(s, tc);
    return s;
}
