/*
 * check_loops.c: one console for every loop (issue 13, item 1).  Real
 * loops on real OS threads in one process, and the console's commands run
 * from a green thread of the first loop, as a session runs them: `loops`,
 * the per-loop built-ins in one section per loop, --loop, LOOP:ID,
 * cancel, names, and a loop that is stuck.  ThreadSanitizer runs this
 * suite in CI (make check-tsan): a session reads no other loop's state.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "internal.h"
#include "console.h"

#define MAXLOOPS 4

static int nloops;                       /* besides the first */
static atomic_int started;               /* other loops running */
static atomic_int stop;                  /* the other loops end */
static atomic_int spin;                  /* loop 1 blocks while set */
static atomic_int spin_two;              /* ... and loop 2 too */
static int block_pipe[2];                /* ... in a read of this */
static atomic_int cancelled;             /* a sleeper saw ECANCELED */
static atomic_int main_cancelled;        /* ... an other_main did */
static const char *names[MAXLOOPS];      /* each other loop's, or NULL */
static atomic_int name_rc[MAXLOOPS];

/* The commands as a session runs them (helpers.c), by this suite's short
 * names: the reply's text, the command having succeeded; an ERR that
 * contains want; how many times needle is in text. */
static char *
ok(const char *line)
{
    return t_console_ok(line);
}

static void
err(const char *line, const char *want)
{
    t_console_err(line, want);
}

static int
count(const char *text, const char *needle)
{
    return t_count(text, needle);
}

/* ---- The other loops ------------------------------------------------------ */

static int
sleeper(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        if (diesel_sleep(5) != 0 && errno == ECANCELED) {
            atomic_fetch_add(&cancelled, 1);
            return 0;
        }
    }
    return 0;
}

/* A green thread parked on a pipe that nothing writes: fds shows it as
 * the pipe's reader, as LOOP:ID. */
static int
piper(void *arg)
{
    int *p = arg;

    while (!atomic_load(&stop))
        if (diesel_fd_wait(p[0], DIESEL_READ, 5) < 0 && errno == ECANCELED)
            break;
    return 0;
}

static int
other_main(void *arg)
{
    intptr_t i = (intptr_t)arg;
    int p[2];
    int64_t pid;

    if (names[i] != NULL)
        atomic_store(&name_rc[i], diesel_loop_name(names[i]) == 0 ? 0 :
            errno);
    diesel_task_spawn("sleeper-a", sleeper, NULL, 0);
    diesel_task_spawn("sleeper-b", sleeper, NULL, 0);
    ck_assert_int_eq(pipe(p), 0);
    pid = diesel_task_spawn("piper", piper, p, 0);
    ck_assert_int_gt(pid, 0);
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&stop)) {
        /* Loop 1 holds its thread while asked, in a blocking read(2)
         * (a spin would hold valgrind's one lock too): a stuck loop. */
        if ((i == 1 || (i == 2 && atomic_load(&spin_two))) &&
            atomic_load(&spin)) {
            char c;

            ck_assert_int_eq(read(block_pipe[0], &c, 1), 1);
        }
        if (diesel_sleep(5) != 0 && errno == ECANCELED) {
            atomic_fetch_add(&main_cancelled, 1);
            break;
        }
    }
    diesel_task_join(pid, NULL, -1);
    diesel_fd_close(p[0]);
    close(p[1]);
    return 0;
}

/* A loop whose green threads only yield: none waits on a descriptor, so
 * its turns poll at most once a millisecond (loop.c), and its mailbox
 * must still be read. */
static atomic_int yields;                /* made by its green threads */

static int
yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop) && diesel_task_yield() == 0)
        atomic_fetch_add_explicit(&yields, 1, memory_order_relaxed);
    return 0;
}

static int
busy_main(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_loop_name("busy"), 0);
    ck_assert_int_gt(diesel_task_spawn("yielder", yielder, NULL, 0), 0);
    atomic_fetch_add(&started, 1);
    return yielder(NULL);
}

static int busy_index;                   /* the loop that runs busy_main */

static atomic_int first_up;              /* the first loop runs */
static atomic_int trap_blocked;          /* loop 1 blocks SIGTRAP */

static void *
other_thread(void *arg)
{
    /* The first loop starts first, and is main. */
    while (!atomic_load(&first_up))
        usleep(1000);
    if ((intptr_t)arg == 1 && atomic_load(&trap_blocked)) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGTRAP);
        ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
    }
    return (void *)(intptr_t)diesel_loop_run((intptr_t)arg == busy_index ?
        busy_main : other_main, arg);
}

/* Start n other loops, run fn as the first loop's main green thread once
 * they all run, stop them. */
static void
with_loops(int n, diesel_task_fn fn)
{
    pthread_t th[MAXLOOPS];

    nloops = n;
    ck_assert_int_eq(pipe(block_pipe), 0);
    diesel__console_init();
    for (intptr_t i = 1; i <= n; i++)
        ck_assert_int_eq(pthread_create(&th[i - 1], NULL, other_thread,
            (void *)i), 0);
    ck_assert_int_eq(t_run(fn, NULL), 0);
    atomic_store(&stop, 1);
    if (atomic_exchange(&spin, 0))
        ck_assert_int_eq(write(block_pipe[1], "x", 1), 1);
    for (int i = 0; i < n; i++) {
        void *st;

        ck_assert_int_eq(pthread_join(th[i], &st), 0);
        ck_assert_int_eq((int)(intptr_t)st, 0);
    }
}

/* The first loop waits for the others before it asks anything. */
static void
wait_started(void)
{
    atomic_store(&first_up, 1);
    while (atomic_load(&started) < nloops)
        diesel_sleep(1);
}

/* ---- Two loops ------------------------------------------------------------ */

static int
two_main(void *arg)
{
    char *t, *p;
    char line[128];
    long id;

    (void)arg;
    /* The first loop is main by default. */
    ck_assert_int_eq(diesel_loop_name("main"), 0);
    wait_started();
    ck_assert_int_eq(atomic_load(&name_rc[1]), 0);

    t = ok("loops");
    ck_assert_msg(strstr(t, "LOOP") && strstr(t, "THREAD") &&
        strstr(t, "TASKS") && strstr(t, "STATE"), "%s", t);
    ck_assert_msg(strstr(t, "main *") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "worker") != NULL, "%s", t);
    ck_assert_int_eq(count(t, "turning"), 2);
    free(t);

    /* One section per loop, each loop's own green threads as LOOP:ID. */
    t = ok("tasks");
    ck_assert_msg(strstr(t, "loop main (thread ") == t, "%s", t);
    ck_assert_msg(strstr(t, "\nloop worker (thread ") != NULL, "%s", t);
    p = strstr(t, "\nloop worker");
    ck_assert_msg(strstr(p, "sleeper-a") && strstr(p, "sleeper-b"), "%s",
        t);
    ck_assert_msg(strstr(p, "worker:") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "main:1 ") != NULL, "%s", t);
    /* main's section has none of the worker's green threads. */
    ck_assert_ptr_null(memmem(t, (size_t)(p - t), "sleeper", 7));
    /* The id that tasks shows for sleeper-b, to cancel it. */
    p = strstr(p, "worker:");
    while (p != NULL && strstr(p, "sleeper-b") != NULL) {
        char *eol = strchr(p, '\n');

        if (eol != NULL && memmem(p, (size_t)(eol - p), "sleeper-b", 9))
            break;
        p = strstr(p + 1, "worker:");
    }
    ck_assert_ptr_nonnull(p);
    id = strtol(p + strlen("worker:"), NULL, 10);
    ck_assert_int_gt(id, 0);
    free(t);

    /* --loop narrows to one loop, its reply as it gives it. */
    t = ok("tasks --loop worker");
    ck_assert_ptr_null(strstr(t, "loop main"));
    ck_assert_ptr_null(strstr(t, "loop worker ("));
    ck_assert_msg(strstr(t, "sleeper-a") != NULL, "%s", t);
    free(t);
    t = ok("tasks --json");
    ck_assert_msg(strncmp(t, "{\"loops\":[{\"loop\":\"main\",\"thread\":",
        34) == 0, "%s", t);
    ck_assert_msg(strstr(t, "{\"loop\":\"worker\"") != NULL, "%s", t);
    ck_assert_int_eq(count(t, "\"reply\":{"), 2);
    free(t);
    err("tasks --loop nosuch", "no loop is named \"nosuch\"");
    err("tasks --loop", "--loop needs a loop's name");

    /* cancel takes the form shown; a bare id is ambiguous. */
    err("cancel 3", "2 loops run");
    err("cancel 3", "(cancel 3 on this session's loop is cancel main:3)");
    err("cancel x", "(cancel ID on this session's loop is cancel main:ID)");
    snprintf(line, sizeof(line), "cancel worker:%ld", id);
    t = ok(line);
    ck_assert_msg(strstr(t, "sleeper-b") != NULL, "%s", t);
    free(t);
    while (atomic_load(&cancelled) == 0)
        diesel_sleep(1);
    snprintf(line, sizeof(line), "cancel worker:%ld", id + 1000);
    err(line, "no green thread");

    /* stacks with LOOP:ID, the other per-loop commands in sections. */
    snprintf(line, sizeof(line), "stacks worker:%ld", id - 1);
    t = ok(line);
    ck_assert_msg(strstr(t, "sleeper-a") != NULL, "%s", t);
    free(t);
    t = ok("stats");
    ck_assert_int_eq(count(t, "loop main (thread"), 1);
    ck_assert_int_eq(count(t, "loop worker (thread"), 1);
    free(t);

    /* The accounting commands: account and hist per loop, top's window
     * on both loops at once; loops shows the utilization once on. */
    t = ok("account on");
    ck_assert_int_eq(count(t, "loop main (thread"), 1);
    ck_assert_int_eq(count(t, "loop worker (thread"), 1);
    free(t);
    t = ok("top 0.2");
    p = strstr(t, "\nloop worker (thread ");
    ck_assert_msg(strncmp(t, "loop main (thread ", 18) == 0 && p != NULL &&
        strstr(p, "sleeper-a") != NULL, "%s", t);
    free(t);
    snprintf(line, sizeof(line), "hist worker:%ld", id - 1);
    t = ok(line);
    ck_assert_ptr_null(strstr(t, "loop main"));
    free(t);
    t = ok("loops");
    ck_assert_msg(count(t, "%  ") == 2, "%s", t);
    free(t);

    /* Names: taken, bad, or outside a loop. */
    errno = 0;
    ck_assert_int_eq(diesel_loop_name("worker"), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(diesel_loop_name("a:b"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_loop_name(""), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_loop_name("0123456789012345678901234567890123"),
        -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_loop_name("front"), 0);
    t = ok("loops");
    ck_assert_msg(strstr(t, "front *") != NULL, "%s", t);
    free(t);
    return 0;
}

START_TEST(two_loops_one_console)
{
    names[1] = "worker";
    with_loops(1, two_main);
    ck_assert_int_eq(diesel_loop_name("x"), -1);
    ck_assert_int_eq(errno, EPERM);
}
END_TEST

/* ---- Four loops ------------------------------------------------------------ */

static int
four_main(void *arg)
{
    static const char *cmds[] = { "tasks", "stacks", "stats", "sync" };
    char *t;

    (void)arg;
    wait_started();
    t = ok("loops --json");
    ck_assert_msg(strstr(t, "\"name\":\"main\"") &&
        strstr(t, "\"name\":\"loop-2\"") &&
        strstr(t, "\"name\":\"loop-3\"") &&
        strstr(t, "\"name\":\"loop-4\""), "%s", t);
    ck_assert_msg(count(t, "\"state\":\"turning\"") == 4, "%s", t);
    free(t);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        t = ok(cmds[i]);
        ck_assert_msg(count(t, "\nloop loop-") == 3 &&
            strncmp(t, "loop main (thread ", 18) == 0, "%s:\n%s", cmds[i],
            t);
        free(t);
    }
    /* fds: the process's descriptors once, each loop's waiters in it. */
    t = ok("fds");
    ck_assert_msg(count(t, "loop loop-") == 0 && count(t, "\nFD ") == 0 &&
        strncmp(t, "FD ", 3) == 0, "%s", t);
    ck_assert_msg(strstr(t, "read: loop-2:") && strstr(t, "read: loop-3:") &&
        strstr(t, "read: loop-4:") && count(t, "(piper)") == 3, "%s", t);
    ck_assert_msg(strstr(t, " descriptors open\n") != NULL, "%s", t);
    free(t);
    t = ok("fds --loop loop-3");
    ck_assert_msg(count(t, "(piper)") == 1 && strstr(t, "read: loop-3:") &&
        !strstr(t, "loop-2:") && !strstr(t, "loop-4:") &&
        strstr(t, "descriptors that loop loop-3's green threads wait on"),
        "%s", t);
    free(t);
    t = ok("fds --json");
    ck_assert_msg(count(t, "\"loop\":\"loop-") == 3 &&
        strstr(t, "\"unanswered\":[]}") != NULL, "%s", t);
    free(t);
    err("fds --loop nosuch", "no loop is named \"nosuch\"");
    err("fds --loop", "--loop needs a loop's name");
    t = ok("tasks --loop loop-3");
    ck_assert_msg(strstr(t, "loop-3:") != NULL, "%s", t);
    ck_assert_ptr_null(strstr(t, "loop-2:"));
    free(t);
    /* The commands that show the process, not a loop, are as they were. */
    t = ok("pid");
    ck_assert_ptr_null(strstr(t, "loop main"));
    free(t);
    return 0;
}

START_TEST(four_loops_one_console)
{
    with_loops(3, four_main);
}
END_TEST

/* ---- One loop: nothing changes --------------------------------------------- */

static int
one_main(void *arg)
{
    char *t;

    (void)arg;
    wait_started();
    t = ok("tasks");
    ck_assert_ptr_null(strstr(t, "loop main"));
    ck_assert_msg(strstr(t, "\n1 ") != NULL, "%s", t);
    free(t);
    t = ok("tasks --loop main");
    ck_assert_msg(strstr(t, "\n1 ") != NULL, "%s", t);
    free(t);
    err("cancel main:99999", "no green thread");
    t = ok("loops");
    ck_assert_msg(strstr(t, "main *") != NULL, "%s", t);
    ck_assert_int_eq(count(t, "turning"), 1);
    free(t);
    err("loops extra", "usage: loops");
    return 0;
}

START_TEST(one_loop_replies_unchanged)
{
    with_loops(0, one_main);
}
END_TEST

/* ---- A stuck loop ---------------------------------------------------------- */

static int
stuck_main(void *arg)
{
    char *t, *p;
    int64_t t0;

    (void)arg;
    wait_started();
    /* Answers come from another thread: under valgrind slowly. */
    ck_assert_int_eq(diesel_console_stuck_after(t_slow(300)), 0);
    /* Its signal takes the stuck loop's report. */
    ck_assert_int_eq(diesel_console_install(0), 0);
    t = ok("loops");
    ck_assert_int_eq(count(t, "turning"), 3);
    free(t);
    atomic_store(&spin, 1);
    /* Loop 1 blocks once its sleep is over. */
    diesel_sleep(t_slow(50));
    t0 = t_now_ms();
    t = ok("tasks");
    ck_assert_msg(strstr(t, "\nloop blocked (thread ") != NULL &&
        strstr(t, "): stuck: no answer in") != NULL, "%s", t);
    /* Its report, from its own thread: what holds it, its backtrace (the
     * read it is blocked in, called from other_main), its green
     * threads. */
    p = strstr(t, "): stuck: no answer in");
    ck_assert_msg(strstr(p, "\n  the loop has not turned for ") != NULL &&
        strstr(p, "\n  green thread 'main' (id 1) holds it") != NULL &&
        strstr(p, "\n  its backtrace at the signal:") != NULL &&
        strstr(p, "other_main") != NULL, "%s", t);
    /* The others answer all the same; the report lists the blocked
     * loop's green threads too. */
    ck_assert_int_eq(count(t, "sleeper-a"), 2);
    ck_assert_msg(strstr(t, "free:") != NULL, "%s", t);
    free(t);
    ck_assert_int_ge(t_now_ms() - t0, t_slow(300) - 10);
    /* The log says so too, for whoever reads it afterwards. */
    t = ok("log tail 50");
    ck_assert_msg(strstr(t, "loop blocked (thread ") != NULL &&
        strstr(t, ") is stuck: it did not answer the console of pid ") !=
        NULL && strstr(t, "; its report went to that console") != NULL,
        "%s", t);
    free(t);
    t = ok("loops");
    ck_assert_int_eq(count(t, "turning"), 2);
    ck_assert_int_eq(count(t, "stuck"), 1);
    free(t);
    err("tasks --loop blocked", "loop blocked (thread");
    /* Dropped, not run late, once the loop turns again: its main green
     * thread goes on. */
    err("cancel blocked:1", "is stuck");
    /* fds lists the process's descriptors and says whose waiters are
     * missing: the blocked loop's piper, not the other's. */
    t = ok("fds");
    ck_assert_msg(strstr(t, "(no answer from loop blocked: the descriptors "
        "its green threads wait on are not shown)") != NULL &&
        count(t, "(piper)") == 1, "%s", t);
    free(t);
    atomic_store(&spin, 0);
    ck_assert_int_eq(write(block_pipe[1], "x", 1), 1);
    /* It answers again once it turns. */
    for (;;) {
        t = ok("loops");
        if (count(t, "turning") == 3)
            break;
        free(t);
        diesel_sleep(10);
    }
    free(t);
    return 0;
}

START_TEST(a_stuck_loop_is_named_the_others_answer)
{
    char dir[] = "/tmp/diesel-loops-XXXXXX";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("DIESEL_CONSOLE_DIR", dir, 1);
    names[1] = "blocked";
    names[2] = "free";
    with_loops(2, stuck_main);
    ck_assert_int_eq(atomic_load(&main_cancelled), 0);
    ck_assert_int_eq(diesel_console_uninstall(), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/*
 * A stuck loop whose thread blocks the console's signal (as the examples'
 * other loops once did): no report can come, and its section says why
 * instead of waiting for one.
 */
static int
blocked_main(void *arg)
{
    char *t, *p;

    (void)arg;
    wait_started();
    ck_assert_int_eq(diesel_console_stuck_after(t_slow(300)), 0);
    ck_assert_int_eq(diesel_console_install(0), 0);
    atomic_store(&spin, 1);
    diesel_sleep(t_slow(50));
    t = ok("tasks");
    p = strstr(t, "\nloop blocked (thread ");
    ck_assert_msg(p != NULL && strstr(p, "): stuck: no answer in") != NULL,
        "%s", t);
    ck_assert_msg(strstr(p, "\n  no report: loop blocked blocks signal 5, "
        "the console's, on its thread\n") != NULL, "%s", t);
    ck_assert_msg(strstr(p, "its backtrace") == NULL, "%s", t);
    /* The other loop answers as ever (and no report lists the blocked
     * loop's green threads). */
    ck_assert_int_eq(count(t, "sleeper-a"), 1);
    free(t);
    t = ok("tasks --json");
    ck_assert_msg(strstr(t, "\"report\":\"  no report: loop blocked "
        "blocks signal 5") != NULL, "%s", t);
    free(t);
    /* Logged, without claiming a report went anywhere. */
    t = ok("log tail 50");
    p = strstr(t, ") is stuck: it did not answer the console of pid ");
    ck_assert_msg(p != NULL && strstr(p, "its report went") == NULL,
        "%s", t);
    free(t);
    atomic_store(&spin, 0);
    ck_assert_int_eq(write(block_pipe[1], "x", 1), 1);
    return 0;
}

START_TEST(a_stuck_loop_blocking_the_signal_says_so)
{
    char dir[] = "/tmp/diesel-loops-XXXXXX";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("DIESEL_CONSOLE_DIR", dir, 1);
    names[1] = "blocked";
    names[2] = "free";
    atomic_store(&trap_blocked, 1);
    with_loops(2, blocked_main);
    ck_assert_int_eq(diesel_console_uninstall(), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* help's usages name --loop and LOOP:ID where a command takes them. */
static int
help_main(void *arg)
{
    static const char *const want[][2] = {
        { "help tasks", "tasks [--json] [--loop NAME]  " },
        { "help stacks", "[--loop NAME] [[LOOP:]ID]  " },
        { "help stats", "stats [--json] [--loop NAME]  " },
        { "help mem", "mem [--json] [--loop NAME]  " },
        { "help fds", "fds [--json] [--loop NAME]  " },
        { "help sync", "sync [--json] [--loop NAME]  " },
        { "help top", "top [SECONDS] [--json] [--loop NAME]  " },
        { "help hist", "hist [[LOOP:]ID] [--json] [--loop NAME]  " },
        { "help account", "account [on|off] [--json] [--loop NAME]  " },
        { "help cancel", "cancel [--json] [LOOP:]ID  " },
    };
    char *t;

    (void)arg;
    wait_started();
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        t = ok(want[i][0]);
        ck_assert_msg(strstr(t, want[i][1]) != NULL, "%s: %s", want[i][0],
            t);
        free(t);
    }
    /* Not for those that run on the session's loop alone. */
    t = ok("help loops");
    ck_assert_ptr_null(strstr(t, "--loop"));
    free(t);
    t = ok("help pid");
    ck_assert_ptr_null(strstr(t, "--loop"));
    free(t);
    return 0;
}

START_TEST(help_names_loop_options)
{
    with_loops(1, help_main);
}
END_TEST

/* ---- A loop that only yields answers -------------------------------------- */

static int
busy_first(void *arg)
{
    char *t;
    int before;

    (void)arg;
    wait_started();
    /* Asked again and again while it yields: each request is read from
     * its mailbox within its millisecond, never reported stuck. */
    for (int i = 0; i < 20; i++) {
        before = atomic_load(&yields);
        t = ok("tasks --loop busy");
        ck_assert_msg(count(t, "busy:") == 3 && count(t, "yielder") == 1 &&
            strstr(t, "stuck") == NULL,
            "%s", t);
        free(t);
        ck_assert_int_gt(atomic_load(&yields), before);
    }
    t = ok("loops");
    ck_assert_msg(strstr(t, "busy") != NULL && count(t, "turning") == 2,
        "%s", t);
    free(t);
    return 0;
}

START_TEST(a_loop_that_only_yields_answers)
{
    busy_index = 1;
    with_loops(1, busy_first);
}
END_TEST

/* ---- fds --json names the loops that did not answer ----------------------- */

/* The value of "unanswered" in fds --json's reply, which must be JSON. */
static void
unanswered(char *buf, size_t size)
{
    char *t = ok("fds --json");

    ck_assert_json(t);
    ck_assert_msg(t_json_value(t, "unanswered", buf, size) == 0, "%s", t);
    free(t);
}

static int
unanswered_main(void *arg)
{
    char v[256], *t;

    (void)arg;
    wait_started();
    ck_assert_int_eq(atomic_load(&name_rc[2]), 0);
    ck_assert_int_eq(diesel_console_stuck_after(t_slow(300)), 0);
    ck_assert_int_eq(diesel_console_install(0), 0);
    /* All answer: an empty array. */
    unanswered(v, sizeof(v));
    ck_assert_str_eq(v, "[]");
    /* Two stuck, one with a comma in its name: two strings, in the
     * order the loops started, which is either. */
    atomic_store(&spin_two, 1);
    atomic_store(&spin, 1);
    diesel_sleep(t_slow(50));
    unanswered(v, sizeof(v));
    ck_assert_msg(strcmp(v, "[\"blocked\",\"slow,ish\"]") == 0 ||
        strcmp(v, "[\"slow,ish\",\"blocked\"]") == 0, "%s", v);
    /* The text names them too. */
    t = ok("fds");
    ck_assert_msg(strstr(t, "(no answer from loop blocked, slow,ish: ") ||
        strstr(t, "(no answer from loop slow,ish, blocked: "), "%s", t);
    free(t);
    atomic_store(&spin, 0);
    atomic_store(&spin_two, 0);
    ck_assert_int_eq(write(block_pipe[1], "xx", 2), 2);
    /* One of three, once the others turn again. */
    for (;;) {
        t = ok("loops");
        if (count(t, "turning") == 4)
            break;
        free(t);
        diesel_sleep(10);
    }
    free(t);
    atomic_store(&spin, 1);
    diesel_sleep(t_slow(50));
    unanswered(v, sizeof(v));
    ck_assert_str_eq(v, "[\"blocked\"]");
    atomic_store(&spin, 0);
    ck_assert_int_eq(write(block_pipe[1], "x", 1), 1);
    return 0;
}

START_TEST(fds_json_names_unanswered_loops_in_an_array)
{
    char dir[] = "/tmp/diesel-loops-XXXXXX";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("DIESEL_CONSOLE_DIR", dir, 1);
    names[1] = "blocked";
    names[2] = "slow,ish";
    names[3] = "free";
    with_loops(3, unanswered_main);
    ck_assert_int_eq(diesel_console_uninstall(), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- mem: the process's figures once, each loop's in its section ---------- */

/* The text between start and the next section ("\nloop "), or the end. */
static char *
section(const char *t, const char *start)
{
    const char *p = strstr(t, start), *e;

    ck_assert_msg(p != NULL, "no %s in:\n%s", start, t);
    e = strstr(p + 1, "\nloop ");
    return strndup(p, e != NULL ? (size_t)(e - p) : strlen(p));
}

static const char *const proc_lines[] = { "\nrss ", "\nmalloc ",
    "\nstacks reserved ", "\nmappings ", "\nguard pages " };
static const char *const loop_lines[] = { "\nstacks committed ",
    "\nstack high water " };

static int
mem_main(void *arg)
{
    char *t, *s, v[4096];

    (void)arg;
    wait_started();
    t = ok("mem");
    ck_assert_msg(strncmp(t, "process (pid ", 13) == 0, "%s", t);
    ck_assert_msg(count(t, "\nloop main (thread ") == 1 &&
        count(t, "\nloop worker (thread ") == 1, "%s", t);
    /* The process's part once, in its section; each loop's part in each
     * loop's, and nothing of the process's there. */
    s = section(t, "process (pid ");
    for (size_t i = 0; i < 5; i++) {
        ck_assert_msg(count(t, proc_lines[i]) == 1, "%s:\n%s",
            proc_lines[i], t);
        ck_assert_msg(strstr(s, proc_lines[i]) != NULL, "%s:\n%s",
            proc_lines[i], t);
    }
    for (size_t i = 0; i < 2; i++)
        ck_assert_msg(strstr(s, loop_lines[i]) == NULL, "%s", t);
    free(s);
    for (int k = 0; k < 2; k++) {
        s = section(t, k == 0 ? "\nloop main (thread " :
            "\nloop worker (thread ");
        for (size_t i = 0; i < 2; i++)
            ck_assert_msg(count(s, loop_lines[i]) == 1, "%s:\n%s",
                loop_lines[i], t);
        for (size_t i = 0; i < 5; i++)
            ck_assert_msg(strstr(s, proc_lines[i]) == NULL, "%s", t);
        free(s);
    }
    /* The worker's own green threads: sleeper-a, -b, piper and its main
     * at least. */
    s = section(t, "\nloop worker (thread ");
    ck_assert_msg(strstr(s, " in 1 green threads") == NULL, "%s", s);
    free(s);
    free(t);

    /* JSON: {"process":{...},"loops":[{...,"reply":{"stacks":{...}}}]} */
    t = ok("mem --json");
    ck_assert_json(t);
    ck_assert_msg(strncmp(t, "{\"process\":{\"rss\":", 18) == 0, "%s", t);
    ck_assert_int_eq(t_json_value(t, "process", v, sizeof(v)), 0);
    ck_assert_msg(strstr(v, "\"malloc\":") && strstr(v, "\"mappings\":") &&
        strstr(v, "\"guard\":") && strstr(v, "\"stacks\":{\"mapped\":") &&
        strstr(v, "\"reserved\":") && !strstr(v, "committed") &&
        !strstr(v, "high_water"), "%s", v);
    ck_assert_int_eq(t_json_value(t, "loops", v, sizeof(v)), 0);
    ck_assert_msg(count(v, "\"reply\":{\"stacks\":{\"committed\":") == 2 &&
        count(v, "\"high_water_max\":") == 2 && !strstr(v, "\"rss\"") &&
        !strstr(v, "\"mapped\"") && !strstr(v, "\"mappings\""), "%s", v);
    free(t);

    /* One loop by name: its whole reply, as alone. */
    t = ok("mem --loop worker");
    ck_assert_msg(strncmp(t, "rss ", 4) == 0 && !strstr(t, "\nloop ") &&
        !strstr(t, "process ("), "%s", t);
    for (size_t i = 1; i < 5; i++)
        ck_assert_msg(count(t, proc_lines[i]) == 1, "%s", t);
    for (size_t i = 0; i < 2; i++)
        ck_assert_msg(count(t, loop_lines[i]) == 1, "%s", t);
    free(t);
    err("mem extra", "usage: mem [--json]");
    return 0;
}

START_TEST(mem_shows_the_process_once_and_each_loop_its_own)
{
    names[1] = "worker";
    with_loops(1, mem_main);
}
END_TEST

/* One loop: mem is one reply, the process's lines and the loop's in their
 * old order, no section. */
static int
mem_one_main(void *arg)
{
    static const char *const order[] = { "rss ", "\nmalloc ",
        "\nstacks reserved ", "\nstacks committed ", "\nstack high water ",
        "\nmappings ", "\nguard pages " };
    char *t;
    const char *p;

    (void)arg;
    wait_started();
    t = ok("mem");
    p = t;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        ck_assert_msg((p = strstr(p, order[i])) != NULL, "%s after %s:\n%s",
            order[i], i > 0 ? order[i - 1] : "", t);
        ck_assert_int_eq(count(t, order[i]), 1);
    }
    ck_assert_msg(strncmp(t, "rss ", 4) == 0 && !strstr(t, "process (") &&
        !strstr(t, "loop main"), "%s", t);
    free(t);
    t = ok("mem --json");
    ck_assert_json(t);
    ck_assert_msg(strncmp(t, "{\"rss\":", 7) == 0 &&
        strstr(t, "\"stacks\":{\"mapped\":") &&
        strstr(t, ",\"committed\":") && strstr(t, "]},\"mappings\":"),
        "%s", t);
    free(t);
    return 0;
}

START_TEST(one_loop_mem_is_one_reply_as_before)
{
    with_loops(0, mem_one_main);
}
END_TEST

/* ---- Loop names and argument errors ---------------------------------------- */

/* line fails with one ERR containing want, and nothing else: no section
 * of any loop. */
static void
err_alone(const char *line, const char *want)
{
    struct t_reply r = t_console(line);

    ck_assert_msg(r.rc != 0 && strstr(r.err, want) != NULL && r.len == 0,
        "%s: rc %d, ERR \"%s\" (want \"%s\"), text:\n%s", line, r.rc,
        r.err, want, r.out);
    free(r.out);
}

static int
names_main(void *arg)
{
    (void)arg;
    wait_started();
    /* A LOOP:ID whose loop does not run says so, as --loop does. */
    err_alone("cancel core-9:4", "no loop is named \"core-9\"");
    err_alone("stacks core-9:1", "no loop is named \"core-9\"");
    err_alone("hist core-9:1", "no loop is named \"core-9\"");
    err_alone("tasks --loop core-9", "no loop is named \"core-9\"");
    return 0;
}

START_TEST(loop_id_of_a_loop_that_does_not_run_says_so)
{
    names[1] = "worker";
    with_loops(1, names_main);
}
END_TEST

static int
names_one_main(void *arg)
{
    char *t;

    (void)arg;
    wait_started();
    err_alone("cancel core-2:3", "no loop is named \"core-2\"");
    err_alone("stacks core-2:1", "no loop is named \"core-2\"");
    /* The one loop's own name is as good as none. */
    t = ok("stacks main:1");
    ck_assert_msg(strstr(t, "ids: 1\n") != NULL, "%s", t);
    free(t);
    err("cancel main:99999", "no green thread 99999");
    return 0;
}

START_TEST(one_loop_names_a_loop_that_does_not_run)
{
    with_loops(0, names_one_main);
}
END_TEST

static int
args_main(void *arg)
{
    (void)arg;
    wait_started();
    /* A bad argument: one ERR, before any loop is asked, with help's
     * usage. */
    err_alone("hist abc", "'abc' is not a green thread id; usage: hist "
        "[[LOOP:]ID] [--json] [--loop NAME]");
    err_alone("stacks abc", "bad green thread id 'abc'; usage: stacks "
        "[--all] [--json] [--loop NAME] [[LOOP:]ID]");
    err_alone("stacks 1 2", "usage: stacks [--all] [--json] [--loop NAME] "
        "[[LOOP:]ID]");
    err_alone("top 0", "'0' is not a number of seconds greater than 0 and "
        "at most 3600; usage: top [SECONDS] [--json] [--loop NAME]");
    err_alone("top --all", "unknown option '--all'; usage: top [SECONDS] "
        "[--json] [--loop NAME]");
    err_alone("account maybe", "'maybe' is neither on nor off; usage: "
        "account [on|off] [--json] [--loop NAME]");
    err_alone("tasks extra", "usage: tasks [--json] [--loop NAME]");
    err_alone("stats now", "usage: stats [--json] [--loop NAME]");
    err_alone("sync now", "usage: sync [--json] [--loop NAME]");
    err_alone("mem all", "usage: mem [--json] [--loop NAME]");
    err_alone("cancel worker:1 2", "usage: cancel [--json] [LOOP:]ID");
    err_alone("hist --loop worker abc", "'abc' is not a green thread id; "
        "usage: hist [[LOOP:]ID] [--json] [--loop NAME]");
    return 0;
}

START_TEST(bad_arguments_give_one_error_before_asking)
{
    names[1] = "worker";
    with_loops(1, args_main);
}
END_TEST

/* ---- Ids as LOOP:ID in top, stacks and hist --------------------------------- */

/* Every "    ids: " line of text names its ids as LOOP:..., loop being
 * the section's; how many there are. */
static int
ids_lines(const char *text, const char *loop)
{
    char want[64];
    int n = 0;

    snprintf(want, sizeof(want), "    ids: %s:", loop);
    for (const char *p = text; (p = strstr(p, "    ids: ")) != NULL; p++, n++)
        ck_assert_msg(strncmp(p, want, strlen(want)) == 0, "%s in:\n%s",
            want, text);
    return n;
}

static int
ids_main(void *arg)
{
    char *t, *p, line[64];
    long id;

    (void)arg;
    wait_started();
    t = ok("stacks");
    p = strstr(t, "\nloop worker (thread ");
    ck_assert_ptr_nonnull(p);
    *p = '\0';
    ck_assert_int_gt(ids_lines(t, "main"), 0);
    ck_assert_int_gt(ids_lines(p + 1, "worker"), 0);
    ck_assert_msg(strstr(p + 1, ", worker:") || strstr(p + 1, "-"), "%s",
        p + 1);
    free(t);
    t = ok("stacks --loop worker");
    ck_assert_int_gt(ids_lines(t, "worker"), 0);
    p = strstr(t, "    ids: worker:");
    id = strtol(p + strlen("    ids: worker:"), NULL, 10);
    ck_assert_int_gt(id, 0);
    free(t);

    t = ok("account on");
    free(t);
    t = ok("top 0.2");
    p = strstr(t, "\nloop worker (thread ");
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(strstr(t, "\nID           NAME ") != NULL, "%s", t);
    ck_assert_msg(strstr(p, "\nID             NAME ") != NULL, "%s", t);
    ck_assert_msg(strstr(p, "\nworker:") != NULL && !strstr(t, "\n1 "),
        "%s", t);
    free(t);
    snprintf(line, sizeof(line), "hist worker:%ld", id);
    t = ok(line);
    snprintf(line, sizeof(line), "green thread worker:%ld (", id);
    ck_assert_msg(strstr(t, line) != NULL, "%s", t);
    free(t);
    t = ok("account off");
    free(t);
    return 0;
}

START_TEST(top_stacks_hist_show_loop_ids_beside_other_loops)
{
    names[1] = "worker";
    with_loops(1, ids_main);
}
END_TEST

/* One loop: ids bare, as they always were. */
static int
ids_one_main(void *arg)
{
    char *t;

    (void)arg;
    wait_started();
    t = ok("stacks");
    ck_assert_msg(strstr(t, "    ids: 1") != NULL && !strstr(t, "main:"),
        "%s", t);
    free(t);
    t = ok("account on");
    free(t);
    t = ok("top 0.1");
    ck_assert_msg(strstr(t, "\nID      NAME ") != NULL &&
        strstr(t, "\n1       ") != NULL && !strstr(t, "main:"), "%s", t);
    free(t);
    t = ok("hist 1");
    ck_assert_msg(strstr(t, "green thread 1 (") != NULL, "%s", t);
    free(t);
    t = ok("account off");
    free(t);
    return 0;
}

START_TEST(one_loop_top_stacks_hist_ids_unchanged)
{
    with_loops(0, ids_one_main);
}
END_TEST

Suite *
diesel_loops_suite(void)
{
    Suite *s = suite_create("loops");
    TCase *tc = tcase_create("loops");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, two_loops_one_console);
    tcase_add_test(tc, four_loops_one_console);
    tcase_add_test(tc, one_loop_replies_unchanged);
    tcase_add_test(tc, a_loop_that_only_yields_answers);
    tcase_add_test(tc, a_stuck_loop_is_named_the_others_answer);
    tcase_add_test(tc, a_stuck_loop_blocking_the_signal_says_so);
    tcase_add_test(tc, help_names_loop_options);
    tcase_add_test(tc, fds_json_names_unanswered_loops_in_an_array);
    tcase_add_test(tc, mem_shows_the_process_once_and_each_loop_its_own);
    tcase_add_test(tc, one_loop_mem_is_one_reply_as_before);
    tcase_add_test(tc, loop_id_of_a_loop_that_does_not_run_says_so);
    tcase_add_test(tc, one_loop_names_a_loop_that_does_not_run);
    tcase_add_test(tc, bad_arguments_give_one_error_before_asking);
    tcase_add_test(tc, top_stacks_hist_show_loop_ids_beside_other_loops);
    tcase_add_test(tc, one_loop_top_stacks_hist_ids_unchanged);
    suite_add_tcase(s, tc);
    return s;
}
