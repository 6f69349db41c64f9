/*
 * check_stuck.c: the console answers while the loop is stuck (DESIGN.md,
 * "When the loop is stuck"), run for real: test/stuck_child holds its
 * loop (spinning, or in a blocking read(2)), the real tools/dconsole
 * attaches with real signals, and must print the report and exit 8; the
 * service must live on and serve a normal session afterwards.
 *
 * Waits are stretched by CK_TIMEOUT_MULTIPLIER, as in check_dconsole.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "hostile.h"

static char dir[64];

/*
 * Under valgrind (CI's memcheck run, --trace-children=yes) the service
 * runs inside valgrind, with its console on SIGUSR2 rather than SIGTRAP
 * (t_console_signo in proc.h says why): the child is told so by
 * STUCK_CHILD_SIGNAL, and dconsole by -s.  With SIGTRAP, valgrind also
 * queued a request for the process rather than hand it to the one thread
 * that left it unblocked, and dropped it ("Signal 5 being dropped from
 * thread 0's queue"): the tests of a request handed between threads were
 * skipped there; on SIGUSR2 they run.
 */

static struct t_proc child;

/* Start a program with its standard input on a pipe (p->in). */
static void
start(struct t_proc *p, const char *path, char *const argv[])
{
    static const struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };

    t_proc_start(p, path, argv, &how);
}

/* Start dconsole with argv (argv[0] "dconsole"), on the suite's console
 * signal: "-s SIGNO" goes in after argv[0]. */
static void
start_dconsole(struct t_proc *p, char *const argv[])
{
    char signo[16], *v[16];
    size_t n = 0;

    snprintf(signo, sizeof(signo), "%d", t_console_signo());
    v[n++] = argv[0];
    v[n++] = "-s";
    v[n++] = signo;
    for (size_t i = 1; argv[i] != NULL; i++) {
        ck_assert_uint_lt(n, sizeof(v) / sizeof(v[0]) - 1);
        v[n++] = argv[i];
    }
    v[n] = NULL;
    start(p, t_tool_path("dconsole"), v);
}

/* Its exit status within ms (else killed: -1). */
static int
finish(struct t_proc *p, int64_t ms)
{
    int st = t_proc_wait(p, ms);

    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run dconsole on the child with extra words; its exit status. */
static int dconsole_pid(struct t_proc *d, long target, const char *word);

static int
dconsole(struct t_proc *d, const char *word)
{
    return dconsole_pid(d, (long)child.pid, word);
}

/* The same, on the process target. */
static int
dconsole_pid(struct t_proc *d, long target, const char *word)
{
    char pid[32], t[32];
    char *argv[6];
    int n = 0;

    snprintf(pid, sizeof(pid), "%ld", target);
    snprintf(t, sizeof(t), "%lld", (long long)(t_slow(5000) / 1000));
    argv[n++] = "dconsole";
    argv[n++] = "-t";
    argv[n++] = t;
    argv[n++] = pid;
    if (word != NULL)
        argv[n++] = (char *)word;
    argv[n] = NULL;
    start_dconsole(d, argv);
    close(d->in);       /* a session from a pipe: no commands */
    d->in = -1;
    return finish(d, 30000);
}

/* Start stuck_child MODE MS [AFTER] and wait for "ready". */
static void
start_child(const char *mode, int64_t ms, const char *after)
{
    char path[1024], msbuf[32];
    char *argv[] = { "stuck_child", (char *)mode, msbuf, (char *)after,
        NULL };

    snprintf(path, sizeof(path), "%s/stuck_child", t_dir());
    snprintf(msbuf, sizeof(msbuf), "%lld", (long long)ms);
    start(&child, path, argv);
    ck_assert_msg(t_proc_expect(&child, 0, "ready", 10000),
        "no ready line: %s",
        child.ebuf);
}

static void
setup(void)
{
    char signo[16];

    t_console_dir_make(dir, "stuck");
    snprintf(signo, sizeof(signo), "%d", t_console_signo());
    setenv("STUCK_CHILD_SIGNAL", signo, 1);
}

static void
teardown(void)
{
    t_console_dir_remove(dir, &child);
    unsetenv("STUCK_CHILD_SIGNAL");
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p != NULL;
        p = strstr(p + 1, needle))
        n++;
    return n;
}

/*
 * The report's backtrace names func with a line of test/stuck_child.c
 * (the line of marker at, if not NULL: it is a return address), then its
 * caller, the green thread's function, at the line of marker call, and
 * ends there: nothing under the green thread's entry.
 */
static void
assert_frames(const char *out, const char *func, const char *at,
    const char *caller, const char *call)
{
    static const char file[] = "test/stuck_child.c";
    char want[128];
    const char *p;
    int line;

    snprintf(want, sizeof(want), "\n%s (%s:", func, file);
    p = strstr(out, want);
    if (p == NULL) {
        /* Built with _FORTIFY_SOURCE, the call in func is the inlined
         * wrapper of <bits/unistd.h>, and the frame names that header's
         * line, as addr2line without -i does: the function is still
         * func, and the line is not this file's. */
        snprintf(want, sizeof(want), "\n%s (/usr/include/", func);
        p = strstr(out, want);
        ck_assert_msg(p != NULL, "no %s (%s: in: %s", func, file, out);
        at = NULL;
    }
    ck_assert_msg(sscanf(strchr(p + 1, ':') + 1, "%d)\n", &line) == 1 &&
        line > 0, "%s", out);
    if (at != NULL)
        ck_assert_msg(line == t_source_line(file, at), "%s: line %d, not "
            "%d: %s", func, line, t_source_line(file, at), out);
    snprintf(want, sizeof(want), "\n%s (%s:%d)\ngreen threads (", caller,
        file, t_source_line(file, call));
    p = strchr(p + 1, '\n');
    ck_assert_msg(strncmp(p, want, strlen(want)) == 0, "want %s in: %s",
        want, out);
}

/*
 * The report for a loop held by `holder` in `frame` (a function of
 * stuck_child.c, then its caller, see assert_frames), then a normal
 * session once the loop is free; the service lives on and ends cleanly.
 */
static void
stuck_then_free(const char *mode, const char *holder, const char *frame,
    const char *at, const char *caller, const char *call,
    const char *command)
{
    static struct t_proc d;
    char want[128];
    int st;

    start_child(mode, t_slow(4000), NULL);
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    /* A session, or a one-shot command: the report either way. */
    st = dconsole(&d, command);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strstr(d.obuf, "the loop has not turned for ") != NULL,
        "%s", d.obuf);
    snprintf(want, sizeof(want), "green thread '%s' (id ", holder);
    ck_assert_msg(strstr(d.obuf, want) != NULL, "%s", d.obuf);
    ck_assert_msg(strstr(d.obuf, "its backtrace at the signal:\n") != NULL,
        "%s", d.obuf);
    assert_frames(d.obuf, frame, at, caller, call);
    snprintf(want, sizeof(want), " %s running (holds the loop)\n", holder);
    ck_assert_msg(strstr(d.obuf, want) != NULL, "%s", d.obuf);
    ck_assert_msg(strstr(d.obuf, " main waiting on fd 0 read\n") != NULL,
        "%s", d.obuf);
    /* The prefixes are dconsole's business: none is left. */
    ck_assert_msg(strstr(d.obuf, "| ") == NULL, "%s", d.obuf);
    ck_assert_msg(strstr(d.ebuf, "is stuck (no turn for ") != NULL &&
        strstr(d.ebuf, "the report above says which green thread holds "
        "it") != NULL, "%s", d.ebuf);
    ck_assert(t_proc_expect(&child, 1, "the loop is stuck: reported to "
        "console pid ", 5000));
    /* Let go of the loop now rather than at the end of the hold (which
     * only bounds a test that goes wrong). */
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    /* The service survives, and serves a normal session afterwards. */
    ck_assert_msg(t_proc_expect(&child, 0, "released", 20000), "%s",
        child.obuf);
    st = dconsole(&d, "pid");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(strstr(d.obuf, "pid ") != NULL, "%s", d.obuf);
    ck_assert(t_proc_expect(&child, 1, "Disconnected", 5000));
    /* One attach for the two dconsole runs' requests: the stuck one's
     * requests (signalled again while it waited) never attach later. */
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 1);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}

START_TEST(stuck_spinning_green_thread_is_reported)
{
    /* Where in stuck_spin the signal lands varies (and may be in code
     * inlined from another function of the file). */
    stuck_then_free("spin", "spinner", "stuck_spin", NULL, "spinner",
        "spin", NULL);
}
END_TEST

/*
 * The holder here is main, which the library spawned: it has no spawn
 * site, and its line says none (it said "spawned at ?").  The table of
 * green threads is by id, as tasks lists them, not in the order of the
 * id table's slots.
 */
START_TEST(stuck_report_of_a_holder_without_site_sorted_by_id)
{
    static struct t_proc d;
    const char *p;
    long last = 0, id;
    int rows = 0, st;

    start_child("mainspin", t_slow(4000), NULL);
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole(&d, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strstr(d.obuf, "\ngreen thread 'main' (id 1) holds it\n")
        != NULL && strstr(d.obuf, "spawned at") == NULL &&
        strchr(d.obuf, '?') == NULL, "%s", d.obuf);
    p = strstr(d.obuf, "\ngreen threads (41):\n");
    ck_assert_msg(p != NULL, "%s", d.obuf);
    for (p = strchr(p + 1, '\n') + 1; strncmp(p, "  ", 2) == 0;
        p = strchr(p, '\n') + 1) {
        id = strtol(p + 2, NULL, 10);
        ck_assert_msg(id > last, "id %ld after %ld:\n%s", id, last, d.obuf);
        last = id;
        rows++;
    }
    ck_assert_int_eq(rows, 41);
    ck_assert_int_eq(last, 41);
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    ck_assert_msg(t_proc_expect(&child, 0, "released", 20000), "%s",
        child.obuf);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

START_TEST(stuck_blocking_read_is_reported_and_resumes)
{
    stuck_then_free("read", "reader", "stuck_read", "read", "reader",
        "stuck_read", "pid");
}
END_TEST

START_TEST(stuck_request_on_another_thread_is_handed_to_the_loop)
{
    stuck_then_free("thread", "spinner", "stuck_spin", NULL, "spinner",
        "spin", NULL);
}
END_TEST

/*
 * Two loops, the console's idle, the other held in a blocking read: the
 * session is served, each loop has its section, the held one is named
 * stuck with its report (taken on its own thread), and `loops` says so.
 */
START_TEST(stuck_other_loop_is_named_with_its_report)
{
    static struct t_proc d;
    const char *p;
    int st;

    start_child("loop2", 0, NULL);
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole(&d, "tasks");
    ck_assert_msg(st == 0, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strncmp(d.obuf, "loop main (thread ", 18) == 0, "%s",
        d.obuf);
    p = strstr(d.obuf, "\nloop worker (thread ");
    ck_assert_msg(p != NULL && strstr(p, "): stuck: no answer in ") != NULL,
        "%s", d.obuf);
    ck_assert_msg(strstr(p, "the loop has not turned for ") != NULL &&
        strstr(p, "green thread 'reader' (id ") != NULL &&
        strstr(p, "stuck_read") != NULL &&
        strstr(p, " reader running (holds the loop)\n") != NULL, "%s",
        d.obuf);
    /* The main loop's own section is an ordinary reply. */
    ck_assert_msg(strstr(d.obuf, "main:1 ") != NULL, "%s", d.obuf);
    st = dconsole(&d, "loops");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    p = strstr(d.obuf, "\nworker ");
    ck_assert_msg(p != NULL && strstr(p, "stuck") != NULL &&
        strstr(d.obuf, "turning") != NULL, "%s", d.obuf);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/* needle in hay before end (a section's end). */
static int
before(const char *hay, const char *needle, const char *end)
{
    const char *p = strstr(hay, needle);

    return p != NULL && p < end;
}

/* Wait up to t_slow(ms) for n needles in its output (or error output). */
static int
expect_count(struct t_proc *p, int err, const char *needle, int n,
    int64_t ms)
{
    int64_t end = t_now_ms() + t_slow(ms);

    for (;;) {
        if (count(err ? p->ebuf : p->obuf, needle) >= n)
            return 1;
        if (t_now_ms() >= end || (err ? p->err : p->out) < 0)
            return count(err ? p->ebuf : p->obuf, needle) >= n;
        t_proc_pump(p, 20);
    }
}

/* Run dconsole on the child with the commands in script on its standard
 * input (a session from a pipe); its exit status. */
static int
dconsole_script(struct t_proc *d, const char *script)
{
    char pid[32], t[32];
    char *argv[] = { "dconsole", "-t", t, pid, NULL };
    size_t n = strlen(script);

    snprintf(pid, sizeof(pid), "%ld", (long)child.pid);
    snprintf(t, sizeof(t), "%lld", (long long)(t_slow(5000) / 1000));
    start_dconsole(d, argv);
    ck_assert(write(d->in, script, n) == (ssize_t)n);
    close(d->in);
    d->in = -1;
    return finish(d, 60000);
}

/* dconsole -t (t_slow(1000): one second, ten under valgrind) on the
 * child, running the one command `hold`. */
static void
dconsole_hold(struct t_proc *d)
{
    static char pid[32], t[32];
    char *argv[] = { "dconsole", "-t", t, pid, "hold", NULL };

    snprintf(pid, sizeof(pid), "%ld", (long)child.pid);
    snprintf(t, sizeof(t), "%.1f", (double)t_slow(1000) / 1000.0);
    start_dconsole(d, argv);
    close(d->in);
    d->in = -1;
}

/* The hold ends, the loop turns again: the reply comes, dconsole exits
 * 0, and the probe spoke once. */
static void
release_hold(struct t_proc *d)
{
    int st;

    ck_assert_int_eq(write(child.in, "x", 1), 1);
    st = finish(d, 30000);
    ck_assert_msg(st == 0, "dconsole exited %d: out %s err %s", st, d->obuf,
        d->ebuf);
    ck_assert_msg(strcmp(d->obuf, "held\n") == 0, "%s", d->obuf);
    ck_assert_int_eq(count(d->ebuf, "no reply for "), 1);
}

/*
 * An open session whose own loop gets stuck (`hold` spins in the
 * session's green thread): the reply says nothing, so after -t dconsole
 * probes with a second attach, which gets the stuck report: it is printed
 * on standard error, once, with what it means.  The reply comes when the
 * loop turns again, and dconsole exits 0.
 */
START_TEST(stuck_silent_session_is_probed_and_reported)
{
    static struct t_proc d;
    char want[128];

    start_child("hold", t_slow(120000), NULL);
    dconsole_hold(&d);
    ck_assert_msg(t_proc_expect(&child, 0, "holding", 10000), "%s %s",
        child.obuf, d.ebuf);
    ck_assert_msg(expect_count(&d, 1, "(holds the loop)\n", 1, 30000),
        "no report: out %s err %s; child %s", d.obuf, d.ebuf, child.ebuf);
    snprintf(want, sizeof(want), " s: the loop of PID %ld is stuck, and "
        "answers when it turns again; its report:\n", (long)child.pid);
    ck_assert_msg(strstr(d.ebuf, "dconsole: no reply for ") == d.ebuf &&
        strstr(d.ebuf, want) != NULL, "%s", d.ebuf);
    ck_assert_msg(strstr(d.ebuf, "\nthe loop has not turned for ") != NULL &&
        strstr(d.ebuf, "stuck_spin") != NULL &&
        strstr(d.ebuf, " running (holds the loop)\n") != NULL, "%s", d.ebuf);
    ck_assert_msg(strstr(d.obuf, "held") == NULL, "%s", d.obuf);
    release_hold(&d);
}
END_TEST

/*
 * The same with a second loop that turns: the probe gets a session, on
 * worker, whose `loops` names main stuck; dconsole says so, and where the
 * report is.
 */
START_TEST(stuck_silent_session_names_its_stuck_loop)
{
    static struct t_proc d;
    char want[160];

    start_child("hold2", t_slow(120000), NULL);
    ck_assert(t_proc_expect(&child, 0, "napper ", 10000));
    dconsole_hold(&d);
    ck_assert_msg(t_proc_expect(&child, 0, "holding", 10000), "%s %s",
        child.obuf, d.ebuf);
    ck_assert_msg(t_proc_expect(&d, 1, "whose tasks shows the report\n",
        30000), "no word: out %s err %s; child %s", d.obuf, d.ebuf,
        child.ebuf);
    snprintf(want, sizeof(want), " s: loop main of PID %ld is stuck, and "
        "answers when it turns again; `dconsole %ld` gets a session on a "
        "loop that turns", (long)child.pid, (long)child.pid);
    ck_assert_msg(strstr(d.ebuf, "dconsole: no reply for ") == d.ebuf &&
        strstr(d.ebuf, want) != NULL, "%s", d.ebuf);
    ck_assert_msg(strstr(d.ebuf, "worker") == NULL, "%s", d.ebuf);
    release_hold(&d);
}
END_TEST

/* A reply that is only slow (its loop turns: `nap` parks the session's
 * green thread for 2 s + t_slow(2 s), -t 2: a probe after 2 s) gets a
 * probe too, which finds the loop turning and says nothing; top, whose
 * 3 s window is silent by design, gets none.  (-t is not stretched under
 * valgrind, where the suite would wait ten times as long for nothing: a
 * probe that times out is sent again.) */
START_TEST(stuck_slow_reply_probe_says_nothing)
{
    static struct t_proc d;
    char pid[32], t[32], win[32];
    char *argv[] = { "dconsole", "-t", t, pid, "nap", NULL, NULL };
    int st;

    start_child("hold", 2000 + t_slow(2000), NULL);
    snprintf(pid, sizeof(pid), "%ld", (long)child.pid);
    snprintf(t, sizeof(t), "2");
    start_dconsole(&d, argv);
    close(d.in);
    d.in = -1;
    st = finish(&d, 60000);
    ck_assert_msg(st == 0, "dconsole exited %d: out %s err %s", st, d.obuf,
        d.ebuf);
    ck_assert_msg(strcmp(d.obuf, "napped\n") == 0, "%s", d.obuf);
    ck_assert_msg(d.en == 0, "%s", d.ebuf);
    /* The probe did attach: a second session, opened and closed. */
    ck_assert_msg(expect_count(&child, 1, "Disconnected from local console",
        2, 10000) && count(child.ebuf, "Connected to local console") == 2,
        "%s", child.ebuf);
    /* top's window is silent by design: no probe (3 s, -t 2). */
    argv[4] = "top";
    argv[5] = win;
    argv[6] = NULL;
    snprintf(win, sizeof(win), "3");
    start_dconsole(&d, argv);
    close(d.in);
    d.in = -1;
    st = finish(&d, 60000);
    ck_assert_msg(st == 0 && d.en == 0, "dconsole top exited %d: out %s "
        "err %s", st, d.obuf, d.ebuf);
    ck_assert_msg(expect_count(&child, 1, "Disconnected from local console",
        3, 10000) && count(child.ebuf, "Connected to local console") == 3,
        "%s", child.ebuf);
}
END_TEST

/*
 * Two loops, the console's (main) held in a blocking read, the other
 * turning: the attach is served on the turning loop, a full session.
 * Its `loops` marks its own loop and names main stuck, `tasks` gives
 * main's report in main's section and worker's green threads in its own,
 * and a command that changes something (cancel) works on worker.
 */
START_TEST(stuck_main_loop_attach_is_served_on_another)
{
    static struct t_proc d;
    char script[128], want[64];
    const char *p, *w;
    long long napper = -1;
    int st;

    start_child("mainstuck", t_slow(60000), NULL);
    ck_assert(t_proc_expect(&child, 0, "napper ", 10000));
    ck_assert(expect_count(&child, 0, "holding\n", 1, 10000));
    p = strstr(child.obuf, "napper ");
    ck_assert(p != NULL && sscanf(p, "napper %lld", &napper) == 1);
    snprintf(script, sizeof(script), "loops\ntasks\ncancel worker:%lld\n",
        napper);
    st = dconsole_script(&d, script);
    ck_assert_msg(st == 0, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    /* loops: this session's loop is worker; main is stuck. */
    p = strstr(d.obuf, "\nworker * ");
    ck_assert_msg(p != NULL && before(p, " turning\n", strchr(p + 1, '\n') +
        1), "%s", d.obuf);
    p = strstr(d.obuf, "\nmain ");
    ck_assert_msg(p != NULL && before(p, " stuck\n", strchr(p + 1, '\n') +
        1) && before(p, "*", strchr(p + 1, '\n')) == 0, "%s", d.obuf);
    /* tasks: main named stuck with its report, worker's own reply. */
    p = strstr(d.obuf, "loop main (thread ");
    ck_assert_msg(p != NULL && strstr(p, "): stuck: no answer in ") ==
        strchr(p, ')'), "%s", d.obuf);
    w = strstr(d.obuf, "\nloop worker (thread ");
    ck_assert_msg(w != NULL && w > p, "%s", d.obuf);
    ck_assert_msg(before(p, "the loop has not turned for ", w) &&
        before(p, "green thread 'reader' (id ", w) &&
        before(p, "stuck_read", w) &&
        before(p, " reader running (holds the loop)\n", w), "%s", d.obuf);
    snprintf(want, sizeof(want), "worker:%lld ", napper);
    ck_assert_msg(strstr(w, want) != NULL && strstr(w, "napper") != NULL,
        "%s", d.obuf);
    /* cancel, on the session's loop. */
    ck_assert_msg(t_proc_expect(&child, 0, "napper cancelled", 10000),
        "%s %s", child.obuf, d.obuf);
    ck_assert(t_proc_expect(&child, 1, "Disconnected", 5000));
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 1);
    ck_assert_msg(strstr(child.ebuf, "reported to console") == NULL, "%s",
        child.ebuf);
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    ck_assert_msg(t_proc_expect(&child, 0, "released", 20000), "%s",
        child.obuf);
    /* The requests queued on main's self-pipe meanwhile attach nothing. */
    usleep((useconds_t)t_slow(300) * 1000);
    t_proc_pump(&child, 100);
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 1);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/*
 * Two loops, both held in a blocking read: one report, a section per
 * loop, each with its own holder's backtrace and green threads, taken on
 * its own thread.
 */
START_TEST(stuck_every_loop_is_reported_in_one)
{
    static struct t_proc d;
    const char *m, *w;
    int st;

    start_child("allstuck", t_slow(60000), NULL);
    ck_assert(t_proc_expect(&child, 0, "worker holding", 10000));
    ck_assert(expect_count(&child, 0, "holding\n", 2, 10000));
    st = dconsole(&d, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strncmp(d.obuf, "every loop is stuck (2 loops)\n", 30) ==
        0, "%s", d.obuf);
    m = strstr(d.obuf, "\nloop main (thread ");
    w = strstr(d.obuf, "\nloop worker (thread ");
    ck_assert_msg(m != NULL && w != NULL && m < w, "%s", d.obuf);
    ck_assert_msg(strstr(m, "  the loop has not turned for ") == strchr(m + 1,
        '\n') + 1 && before(m, "  green thread 'reader' (id ", w) &&
        before(m, "stuck_read", w) &&
        before(m, " reader running (holds the loop)\n", w) &&
        before(m, " main waiting on fd 0 read\n", w), "%s", d.obuf);
    ck_assert_msg(strstr(w, "  the loop has not turned for ") == strchr(w + 1,
        '\n') + 1 && strstr(w, "  green thread 'wreader' (id ") != NULL &&
        strstr(w, "stuck_read") != NULL &&
        strstr(w, " wreader running (holds the loop)\n") != NULL &&
        strstr(w, " stopper waiting on fd ") != NULL, "%s", d.obuf);
    ck_assert_msg(strstr(d.obuf, "| ") == NULL, "%s", d.obuf);
    ck_assert_msg(strstr(d.ebuf, "is stuck (no turn for ") != NULL, "%s",
        d.ebuf);
    ck_assert(t_proc_expect(&child, 1, "every loop is stuck: reported to "
        "console pid ", 5000));
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    ck_assert_msg(t_proc_expect(&child, 0, "worker released", 20000), "%s",
        child.obuf);
    ck_assert(expect_count(&child, 0, "released\n", 2, 20000));
    /* The service serves a session once free, and never attached the
     * stuck request late. */
    st = dconsole(&d, "pid");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert(t_proc_expect(&child, 1, "Disconnected", 5000));
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 1);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/*
 * Every loop stuck, but worker's thread blocks the console signal: its
 * section says so at once, main's is the full report.
 */
START_TEST(stuck_every_loop_a_masked_one_says_so)
{
    static struct t_proc d;
    const char *m, *w;
    char want[128];
    int st;

    start_child("allstuckmask", t_slow(60000), NULL);
    ck_assert(t_proc_expect(&child, 0, "worker holding", 10000));
    ck_assert(expect_count(&child, 0, "holding\n", 2, 10000));
    st = dconsole(&d, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    m = strstr(d.obuf, "\nloop main (thread ");
    w = strstr(d.obuf, "\nloop worker (thread ");
    ck_assert_msg(m != NULL && w != NULL && m < w &&
        before(m, " reader running (holds the loop)\n", w), "%s", d.obuf);
    snprintf(want, sizeof(want), "):\n  no report: the loop blocks signal "
        "%d, the console's, on its thread\n", t_console_signo());
    ck_assert_msg(strstr(w, want) == strchr(w + 1, ')'), "%s", d.obuf);
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    ck_assert(expect_count(&child, 0, "released\n", 2, 20000));
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/*
 * A process of two loops forks; in the child, one thread and one loop,
 * which installs the console afresh and gets stuck, the request is not
 * routed to the parent's other loop (its slot is the parent's): the
 * child's handler reports, as with one loop.
 */
START_TEST(stuck_forked_child_reports_as_one_loop)
{
    static struct t_proc d;
    const char *p;
    long pid = -1;
    int st;

    start_child("forkstuck", 0, NULL);
    ck_assert(t_proc_expect(&child, 0, "forked ", 10000));
    p = strstr(child.obuf, "forked ");
    ck_assert(p != NULL && sscanf(p, "forked %ld", &pid) == 1 && pid > 0);
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole_pid(&d, pid, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strncmp(d.obuf, "the loop has not turned for ", 28) == 0 &&
        strstr(d.obuf, "green thread 'main' (id 1) holds it") != NULL &&
        strstr(d.obuf, "every loop") == NULL, "%s", d.obuf);
    ck_assert(t_proc_expect(&child, 1, "the loop is stuck: reported to "
        "console pid ", 5000));
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    close(child.in);
    child.in = -1;
    st = finish(&child, 10000);
    ck_assert_msg(st == 0, "exit %d: %s", st, child.ebuf);
}
END_TEST

START_TEST(stuck_idle_service_gets_a_normal_session)
{
    static struct t_proc d;
    int st;

    start_child("idle", 0, NULL);
    st = dconsole(&d, "pid");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert(strstr(d.obuf, "the loop has not turned") == NULL);
    ck_assert(t_proc_expect(&child, 1, "Disconnected", 5000));
    ck_assert(strstr(child.ebuf, "stuck") == NULL);
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 1);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/*
 * A loop busy for less than the threshold when the request comes: the
 * request is queued; dconsole signals again each second, and the loop,
 * stuck by then, is reported by the handler.  The queued request (and the
 * signals again) must not attach once the loop is free: one dconsole run,
 * one answer.
 */
START_TEST(stuck_queued_and_forwarded_requests_attach_once)
{
    static struct t_proc d;
    int st;

    start_child("thread", t_slow(5000), "1500");
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole(&d, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert_msg(t_proc_expect(&child, 0, "released", 30000), "%s",
        child.obuf);
    /* Let the loop read what was queued for it. */
    usleep((useconds_t)t_slow(500) * 1000);
    t_proc_pump(&child, 100);
    ck_assert_int_eq(count(child.ebuf, "Connected to local console"), 0);
    ck_assert_int_eq(count(child.ebuf, "the loop is stuck: reported"), 1);
    ck_assert_msg(strstr(child.ebuf, "refused") == NULL, "%s", child.ebuf);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/* A threshold of 0 turns the report off: dconsole waits for the loop. */
START_TEST(stuck_report_off_waits_for_the_loop)
{
    static struct t_proc d;
    int st;

    start_child("spin", t_slow(1500), "0");
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole(&d, "pid");
    ck_assert_msg(st == 0, "dconsole exited %d: %s %s", st, d.obuf, d.ebuf);
    ck_assert(strstr(child.ebuf, "stuck") == NULL);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

/*
 * Green threads named from client data (test/hostile.h): the handler
 * escapes their names, so the report keeps its framing (dconsole prints
 * it and exits 8, not 7), its table has one row per green thread, and
 * nothing that could drive a terminal reaches dconsole's output.
 */
START_TEST(stuck_report_escapes_hostile_names)
{
    static struct t_proc d;
    const char *table;
    long bad;
    int st, rows = 0;

    start_child("hostile", t_slow(4000), NULL);
    ck_assert(t_proc_expect(&child, 0, "holding", 10000));
    st = dconsole(&d, NULL);
    ck_assert_msg(st == 8, "dconsole exited %d: out %s err %s; child %s",
        st, d.obuf, d.ebuf, child.ebuf);
    ck_assert_msg(strstr(d.obuf, "green thread '" T_HOSTILE_ESCAPED
        "' (id 3) holds it") != NULL, "%s", d.obuf);
    table = strstr(d.obuf, "green threads (3):\n");
    ck_assert_msg(table != NULL, "%s", d.obuf);
    for (const char *p = strchr(table, '\n') + 1; *p != '\0'; p++)
        rows += *p == '\n';
    ck_assert_msg(rows == 3, "%d rows: %s", rows, table);
    ck_assert_msg(strstr(table, "  2 " T_HOSTILE_ESCAPED " sleeping\n") !=
        NULL, "%s", table);
    ck_assert_msg(strstr(table, "  3 " T_HOSTILE_ESCAPED
        " running (holds the loop)\n") != NULL, "%s", table);
    bad = t_forbidden_at(d.obuf, d.on);
    ck_assert_msg(bad < 0, "raw byte %#x at %ld of: %s",
        bad < 0 ? 0 : (unsigned char)d.obuf[bad], bad, d.obuf);
    bad = t_forbidden_at(d.ebuf, d.en);
    ck_assert_msg(bad < 0, "raw byte at %ld of: %s", bad, d.ebuf);
    ck_assert_int_eq(write(child.in, "go\n", 3), 3);
    ck_assert(t_proc_expect(&child, 0, "released", 20000));
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(finish(&child, 10000), 0);
}
END_TEST

START_TEST(stuck_after_rejects_negative)
{
    errno = 0;
    ck_assert_int_eq(diesel_console_stuck_after(-1), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_stuck_after(1000), 0);
}
END_TEST

Suite *
diesel_stuck_suite(void)
{
    Suite *s = suite_create("stuck");
    TCase *tc = tcase_create("stuck");

    /* Check stretches it by CK_TIMEOUT_MULTIPLIER itself. */
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, stuck_spinning_green_thread_is_reported);
    tcase_add_test(tc, stuck_blocking_read_is_reported_and_resumes);
    tcase_add_test(tc, stuck_report_of_a_holder_without_site_sorted_by_id);
    tcase_add_test(tc, stuck_request_on_another_thread_is_handed_to_the_loop);
    tcase_add_test(tc, stuck_idle_service_gets_a_normal_session);
    tcase_add_test(tc, stuck_other_loop_is_named_with_its_report);
    tcase_add_test(tc, stuck_main_loop_attach_is_served_on_another);
    tcase_add_test(tc, stuck_every_loop_is_reported_in_one);
    tcase_add_test(tc, stuck_every_loop_a_masked_one_says_so);
    tcase_add_test(tc, stuck_forked_child_reports_as_one_loop);
    tcase_add_test(tc, stuck_queued_and_forwarded_requests_attach_once);
    tcase_add_test(tc, stuck_report_off_waits_for_the_loop);
    tcase_add_test(tc, stuck_report_escapes_hostile_names);
    tcase_add_test(tc, stuck_after_rejects_negative);
    tcase_add_test(tc, stuck_silent_session_is_probed_and_reported);
    tcase_add_test(tc, stuck_silent_session_names_its_stuck_loop);
    tcase_add_test(tc, stuck_slow_reply_probe_says_nothing);
    suite_add_tcase(s, tc);
    return s;
}
