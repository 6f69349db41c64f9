/*
 * check_profile.c: `profile SECONDS [--hz N] [--folded]`, the sampling
 * profiler (console_profile.c), and `dconsole -o FILE`.
 *
 * Run for real: test/profile_child has a green thread `worker` spinning
 * in prof_spin, the real tools/dconsole attaches with real signals, and
 * the profile's real SIGPROF timer samples the child's loop.  The
 * argument checks, the one-profile-at-a-time rule and the cancelled
 * profile run in this process, calling the command directly.  No test
 * asserts a timing: only which function leads, and that the loop's
 * waiting shows as poll when it does nothing else.
 *
 * Waits are stretched by CK_TIMEOUT_MULTIPLIER (t_slow).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "console.h"
#include "console_builtins.h"
#include "internal.h"
#include "proc.h"
#include "tests.h"

static char dir[64];
static struct t_proc child;

/* ---- In this process: the command called directly ------------------------ */

struct res {
    int rc;
    char out[8192];
    char err[256];
};

static void
run_profile(const char *line, struct res *r)
{
    struct diesel_console_out out;
    char copy[256], *argv[16], *save = NULL, *word;
    int argc = 0;

    diesel__console_out_init(&out);
    snprintf(copy, sizeof(copy), "%s", line);
    for (word = strtok_r(copy, " ", &save); word != NULL && argc < 15;
        word = strtok_r(NULL, " ", &save))
        argv[argc++] = word;
    argv[argc] = NULL;
    r->rc = diesel__cmd_profile(&out, argc, argv, NULL);
    snprintf(r->out, sizeof(r->out), "%.*s", (int)out.len,
        out.buf != NULL ? out.buf : "");
    snprintf(r->err, sizeof(r->err), "%s", out.has_err ? out.err : "");
    diesel__console_out_fini(&out);
}

static const struct {
    const char *line, *err;
} bad[] = {
    { "profile", "usage: profile SECONDS [--hz N] [--folded]" },
    { "profile 1 2", "usage: profile SECONDS" },
    { "profile x", "bad SECONDS 'x': a number from 0.01 to 300" },
    { "profile 0", "bad SECONDS '0'" },
    { "profile 301", "bad SECONDS '301'" },
    { "profile 1 --hz", "--hz: a whole number of samples a second from 1 "
      "to 1000" },
    { "profile 1 --hz 0", "--hz: a whole number" },
    { "profile 1 --hz 1001", "--hz: a whole number" },
    { "profile 1 --hz 2.5", "--hz: a whole number" },
    { "profile 1 --json", "unknown option '--json'" },
    { "profile 300 --hz 1000", "profile: 300 s at 1000 Hz is over 30000 "
      "samples: lower SECONDS or --hz" },
};

static int
bad_args(void *arg)
{
    struct res r;

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_profile(bad[i].line, &r);
        ck_assert_msg(r.rc == -1, "%s: OK", bad[i].line);
        ck_assert_msg(strstr(r.err, bad[i].err) != NULL,
            "%s: ERR '%s' lacks '%s'", bad[i].line, r.err, bad[i].err);
    }
    return 0;
}

START_TEST(profile_rejects_bad_arguments)
{
    struct res r;

    ck_assert_int_eq(t_run(bad_args, NULL), 0);
    /* Outside a loop. */
    run_profile("profile 1", &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err, "no loop runs on this thread");
}
END_TEST

static struct res first;

static int
long_profile(void *arg)
{
    run_profile(arg, &first);
    return 0;
}

static int
one_at_a_time(void *arg)
{
    struct res r;
    int64_t id = diesel_task_spawn("first", long_profile, "profile 0.5",
        0);

    (void)arg;
    ck_assert_int_gt(id, 0);
    diesel_sleep(10);       /* it sleeps in its window now */
    run_profile("profile 0.1", &r);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err, "profile: another profile is running in this "
        "process");
    ck_assert_int_eq(diesel_task_join(id, NULL, t_slow(10000)), 0);
    ck_assert_msg(first.rc == 0, "first: %s", first.err);
    ck_assert_msg(strstr(first.out, "profile: 0.50 s at 99 Hz, ") != NULL,
        "%s", first.out);
    /* The next one may run. */
    run_profile("profile 0.05 --hz 1000", &r);
    ck_assert_msg(r.rc == 0, "%s", r.err);
    return 0;
}

START_TEST(profile_one_at_a_time)
{
    ck_assert_int_eq(t_run(one_at_a_time, NULL), 0);
}
END_TEST

static int
cancelled(void *arg)
{
    struct sigaction sa;
    int64_t id = diesel_task_spawn("first", long_profile, "profile 30",
        0);

    (void)arg;
    ck_assert_int_gt(id, 0);
    diesel_sleep(50);
    ck_assert_int_eq(diesel_task_cancel(id), 0);
    ck_assert_int_eq(diesel_task_join(id, NULL, t_slow(10000)), 0);
    ck_assert_int_eq(first.rc, -1);
    ck_assert_str_eq(first.err, "interrupted: the green thread running the "
        "command was cancelled");
    ck_assert_int_eq(sigaction(SIGPROF, NULL, &sa), 0);
    ck_assert(sa.sa_handler == SIG_DFL);
    /* The timer is gone: a tick now would end this process (SIGPROF's
     * default), and Check would say so. */
    diesel_sleep(100);
    return 0;
}

START_TEST(profile_cancelled_stops_the_timer)
{
    ck_assert_int_eq(t_run(cancelled, NULL), 0);
}
END_TEST

/* ---- A real service, the real dconsole ------------------------------------ */

static void
start(struct t_proc *p, const char *path, char *const argv[])
{
    static const struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };

    t_proc_start(p, path, argv, &how);
}

static void
start_child(const char *mode)
{
    char path[1024];
    char *argv[] = { "profile_child", (char *)mode, NULL };

    snprintf(path, sizeof(path), "%s/profile_child", t_dir());
    start(&child, path, argv);
    ck_assert_msg(t_proc_expect(&child, 0, "ready", 10000),
        "no ready line: %s", child.ebuf);
}

/* dconsole [-o FILE] PID WORDS...; its exit status. */
static int
dconsole(struct t_proc *d, const char *file, const char *w1,
    const char *w2, const char *w3, const char *w4)
{
    char pid[32], t[32];
    char *argv[12];
    int n = 0, st;

    snprintf(pid, sizeof(pid), "%ld", (long)child.pid);
    snprintf(t, sizeof(t), "%lld", (long long)(t_slow(5000) / 1000));
    argv[n++] = "dconsole";
    argv[n++] = "-t";
    argv[n++] = t;
    if (file != NULL) {
        argv[n++] = "-o";
        argv[n++] = (char *)file;
    }
    argv[n++] = pid;
    if (w1 != NULL)
        argv[n++] = (char *)w1;
    if (w2 != NULL)
        argv[n++] = (char *)w2;
    if (w3 != NULL)
        argv[n++] = (char *)w3;
    if (w4 != NULL)
        argv[n++] = (char *)w4;
    argv[n] = NULL;
    start(d, t_tool_path("dconsole"), argv);
    close(d->in);
    d->in = -1;
    st = t_proc_wait(d, 60000);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
setup(void)
{
    t_console_dir_make(dir, "profile");
}

static void
teardown(void)
{
    t_console_dir_remove(dir, &child);
}

/* The service ends cleanly when its standard input closes. */
static void
finish_child(void)
{
    int st;

    close(child.in);
    child.in = -1;
    st = t_proc_wait(&child, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "child status %d: %s", st, child.ebuf);
}

/* SIGPROF's disposition in the child now, as its `sigprof` says. */
static void
expect_sigprof(const char *want)
{
    struct t_proc d;
    int st = dconsole(&d, NULL, "sigprof", NULL, NULL, NULL);

    ck_assert_msg(st == 0, "sigprof: %d %s", st, d.ebuf);
    ck_assert_msg(strstr(d.obuf, want) != NULL, "sigprof: '%s', not %s",
        d.obuf, want);
}

START_TEST(profile_table_names_the_hot_function)
{
    struct t_proc d;
    const char *g, *row, *nl;
    int st;

    start_child("spin");
    st = dconsole(&d, NULL, "profile", "1", NULL, NULL);
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "profile: 1.00 s at 99 Hz, ") != NULL,
        "%s", d.obuf);
    /* worker holds the loop: it comes first, and the hottest function
     * in it, first of its rows, is the one it spins in. */
    g = strchr(d.obuf, '\n');
    ck_assert_msg(g != NULL && strncmp(g + 1, "green thread 'worker': ",
        23) == 0, "worker is not the first group:\n%s", d.obuf);
    row = strstr(g, "\n       SELF    TOTAL  FUNCTION\n");
    ck_assert_msg(row != NULL, "%s", d.obuf);
    row = strchr(row + 1, '\n') + 1;
    nl = strchr(row, '\n');
    ck_assert_msg(nl != NULL && nl - row > 11 &&
        strncmp(nl - 11, "  prof_spin", 11) == 0,
        "the first row is not prof_spin:\n%s", d.obuf);
    /* The disposition is the program's again. */
    expect_sigprof("default");
    finish_child();
}
END_TEST

START_TEST(profile_folded_to_a_file)
{
    struct t_proc d;
    char file[128], line[1024];
    FILE *f;
    int st, lines = 0;
    long best = 0, spin = 0;

    start_child("spin");
    snprintf(file, sizeof(file), "%s/out.folded", dir);
    st = dconsole(&d, file, "profile", "1", "--folded", NULL);
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, ";") == NULL, "folded stacks on standard "
        "output: %s", d.obuf);
    f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp = strrchr(line, ' '), *end;
        long n;

        lines++;
        ck_assert_msg(sp != NULL, "not folded: %s", line);
        n = strtol(sp + 1, &end, 10);
        ck_assert_msg(n > 0 && *end == '\n', "not folded: %s", line);
        ck_assert_msg(memchr(line, ' ', (size_t)(sp - line)) == NULL,
            "a space in a frame: %s", line);
        if (n > best)
            best = n;
        *sp = '\0';
        if (strncmp(line, "worker;", 7) == 0 &&
            strlen(line) > 10 && strcmp(line + strlen(line) - 10,
            ";prof_spin") == 0 && n > spin)
            spin = n;
    }
    fclose(f);
    ck_assert_int_gt(lines, 0);
    /* The stack seen most is worker's, spinning. */
    ck_assert_msg(spin > 0 && spin == best, "worker;...;prof_spin %ld, the "
        "most %ld", spin, best);
    finish_child();
}
END_TEST

START_TEST(profile_idle_loop_is_in_poll)
{
    struct t_proc d;
    const char *nl;
    int st;

    start_child("idle");
    st = dconsole(&d, NULL, "profile", "1", "--hz", "200");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "profile: 1.00 s at 200 Hz, ") != NULL,
        "%s", d.obuf);
    /* Poll is the first group: the loop did nothing else. */
    nl = strchr(d.obuf, '\n');
    ck_assert_msg(nl != NULL && strncmp(nl + 1, "poll: ", 6) == 0, "%s",
        d.obuf);
    st = dconsole(&d, NULL, "profile", "0.5", "--folded", NULL);
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strncmp(d.obuf, "(poll) ", 7) == 0, "%s", d.obuf);
    finish_child();
}
END_TEST

START_TEST(profile_refused_when_the_program_handles_sigprof)
{
    struct t_proc d;
    int st;

    start_child("handler");
    st = dconsole(&d, NULL, "profile", "1", NULL, NULL);
    ck_assert_msg(st == 1, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "profile: the program handles SIGPROF "
        "itself (another profiler?): not sampling") != NULL ||
        strstr(d.ebuf, "profile: the program handles SIGPROF itself "
        "(another profiler?): not sampling") != NULL, "%s %s", d.obuf,
        d.ebuf);
    expect_sigprof("handled");
    finish_child();
}
END_TEST

START_TEST(profile_puts_back_an_ignored_sigprof)
{
    struct t_proc d;
    int st;

    start_child("ignore");
    st = dconsole(&d, NULL, "profile", "0.3", NULL, NULL);
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "green thread 'worker'") != NULL, "%s",
        d.obuf);
    expect_sigprof("ignored");
    finish_child();
}
END_TEST

/* Ticks the loop's thread blocks stay pending: they are discarded, not
 * left to SIGPROF's default (which would end the service). */
START_TEST(profile_of_a_thread_that_blocks_sigprof)
{
    struct t_proc d;
    int st;

    start_child("block");
    st = dconsole(&d, NULL, "profile", "0.3", NULL, NULL);
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "profile: 0.30 s at 99 Hz, 0 samples (0 "
        "dropped)\nno samples: does the loop's thread block SIGPROF?\n") !=
        NULL, "%s", d.obuf);
    expect_sigprof("default\n");
    finish_child();
}
END_TEST

START_TEST(dconsole_o_cannot_open_the_file)
{
    struct t_proc d;
    int st;

    start_child("idle");
    st = dconsole(&d, "/nonexistent/dir/out", "pid", NULL, NULL, NULL);
    ck_assert_int_eq(st, 1);
    ck_assert_msg(strstr(d.ebuf, "dconsole: -o /nonexistent/dir/out: No "
        "such file or directory") != NULL, "%s", d.ebuf);
    finish_child();
}
END_TEST

Suite *
diesel_profile_suite(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("profile");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, profile_rejects_bad_arguments);
    tcase_add_test(tc, profile_one_at_a_time);
    tcase_add_test(tc, profile_cancelled_stops_the_timer);
    tcase_add_test(tc, profile_table_names_the_hot_function);
    tcase_add_test(tc, profile_folded_to_a_file);
    tcase_add_test(tc, profile_idle_loop_is_in_poll);
    tcase_add_test(tc, profile_refused_when_the_program_handles_sigprof);
    tcase_add_test(tc, profile_puts_back_an_ignored_sigprof);
    tcase_add_test(tc, profile_of_a_thread_that_blocks_sigprof);
    tcase_add_test(tc, dconsole_o_cannot_open_the_file);
    suite_add_tcase(s, tc);
    return s;
}
