/*
 * check_client.c: the attaching side through the library's own API,
 * diesel_console_client(3), against a real service
 * (test/console_app_child): what dconsole does, done by a tool of one's
 * own.  check_dconsole.c runs the same checks through the dconsole
 * binary; here each refusal's errno class and sentence are checked, and
 * that the stuck report and BUSY reach the caller.
 *
 * Each test has a rendezvous directory of its own (DIESEL_CONSOLE_DIR).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"

#include <check.h>

static char top[64];
static pid_t top_owner;

static void
top_remove(void)
{
    char cmd[128];

    if (top[0] != '\0' && getpid() == top_owner) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
        if (system(cmd) != 0) {
            /* Left in /tmp: harmless. */
        }
    }
}

/* A rendezvous directory of this test's own. */
static void
rdv_setup(void)
{
    char rdv[96];

    strcpy(top, "/tmp/diesel-client-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    top_owner = getpid();
    atexit(top_remove);
    ck_assert_int_eq(chmod(top, 0711), 0);
    snprintf(rdv, sizeof(rdv), "%s/r", top);
    setenv("DIESEL_CONSOLE_DIR", rdv, 1);
}

/* The service: console_app_child with opt (or none), ready. */
static void
app_start(struct t_proc *p, const char *opt)
{
    char path[512];
    char *argv[] = { "console_app_child", (char *)opt, NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };

    snprintf(path, sizeof(path), "%s/console_app_child", t_dir());
    t_proc_start(p, path, argv, &how);
    ck_assert_msg(t_proc_expect(p, 0, "ready ", 10000), "%s", p->ebuf);
}

/* Stop it (its input closed): it ends with 0, which under valgrind
 * says memcheck found nothing (its --error-exitcode) in the app too. */
static void
app_stop(struct t_proc *p)
{
    int st;

    close(p->in);
    p->in = -1;
    st = t_proc_wait(p, 10000);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "the app ended with status %#x; its log:\n%s", st, p->ebuf);
}

/* What a test does inside the loop, and what it saw. */
struct job {
    pid_t pid;
    struct t_proc *app;     /* the service, for run_stuck */
    int signo;
    int64_t timeout_ms;
    struct diesel_console_client *c;
    int err;                /* errno of a failed attach, else 0 */
    char why[1024];
    char report[4096];      /* DIESEL_CONSOLE_REPORT lines */
    size_t reported;
    int st;                 /* diesel_console_client_run's */
    char *reply;
    size_t len;
    int found;              /* diesel_console_client_list saw pid */
    char comm[64];
    const char *list_hint;  /* the attach's hints, NULL for none */
    const char *signal_hint;
    char threads[2048];     /* the app's threads, when the attach timed out */
    char others[1024];      /* the other notices (refusals), for a failure */
};

static void
on_notice(void *arg, int kind, const char *text, size_t len)
{
    struct job *j = arg;

    if (kind != DIESEL_CONSOLE_REPORT) {
        size_t at = strlen(j->others);

        snprintf(j->others + at, sizeof(j->others) - at, "%d: %.*s\n", kind,
            (int)len, text);
        return;
    }
    if (j->reported + len + 2 < sizeof(j->report)) {
        memcpy(j->report + j->reported, text, len);
        j->reported += len;
        j->report[j->reported++] = '\n';
        j->report[j->reported] = '\0';
    }
}

static void
job_attach(struct job *j)
{
    struct diesel_console_attach_opts o;

    memset(&o, 0, sizeof(o));
    o.signo = j->signo;
    o.timeout_ms = j->timeout_ms;
    o.notice = on_notice;
    o.arg = j;
    o.list_hint = j->list_hint;
    o.signal_hint = j->signal_hint;
    j->c = diesel_console_client_attach(j->pid, &o, j->why, sizeof(j->why));
    j->err = j->c != NULL ? 0 : errno;
}

/* Attach, run "fail boom", then "echo a b", close. */
static int
run_two(void *arg)
{
    struct job *j = arg;
    char *reply;
    size_t len;

    job_attach(j);
    if (j->c == NULL)
        return 1;
    j->st = diesel_console_client_run(j->c, "fail boom", &reply, &len,
        t_slow(5000));
    ck_assert_int_eq(j->st, 1);
    ck_assert_msg(strstr(reply, "boom") != NULL, "%s", reply);
    free(reply);
    j->st = diesel_console_client_run(j->c, "echo a b", &j->reply, &j->len,
        t_slow(5000));
    diesel_console_client_close(j->c);
    return 0;
}

START_TEST(client_attaches_and_runs_commands)
{
    struct t_proc app;
    struct job j;

    rdv_setup();
    app_start(&app, NULL);
    memset(&j, 0, sizeof(j));
    j.pid = app.pid;
    j.timeout_ms = t_slow(5000);
    ck_assert_int_eq(t_run(run_two, &j), 0);
    ck_assert_msg(j.err == 0, "%s: %s", strerror(j.err), j.why);
    ck_assert_int_eq(j.st, 0);
    ck_assert_msg(strstr(j.reply, "a b") != NULL, "%s", j.reply);
    ck_assert_uint_eq(strlen(j.reply), j.len);
    free(j.reply);
    app_stop(&app);
}
END_TEST

static int
list_fn(const struct diesel_console_service *sv, void *arg)
{
    struct job *j = arg;

    if (sv->pid == j->pid) {
        j->found = 1;
        snprintf(j->comm, sizeof(j->comm), "%s", sv->comm);
    }
    return 0;
}

static int
run_list(void *arg)
{
    struct job *j = arg;

    return diesel_console_client_list(j->signo, NULL, list_fn, j);
}

START_TEST(client_lists_a_proven_service_and_not_a_bare_one)
{
    struct t_proc app, bare;
    struct job j;

    rdv_setup();
    app_start(&app, NULL);
    app_start(&bare, "-n");
    memset(&j, 0, sizeof(j));
    j.pid = app.pid;
    ck_assert_int_eq(t_run(run_list, &j), 0);
    ck_assert_int_eq(j.found, 1);
    /* Under valgrind the process is valgrind's tool, by its name. */
    if (!t_under_valgrind())
        ck_assert_str_eq(j.comm, "console_app_chi");
    /* Another signal: that service is not listed for it. */
    memset(&j, 0, sizeof(j));
    j.pid = app.pid;
    j.signo = SIGUSR1;
    ck_assert_int_eq(t_run(run_list, &j), 0);
    ck_assert_int_eq(j.found, 0);
    /* Without the console installed: not listed. */
    memset(&j, 0, sizeof(j));
    j.pid = bare.pid;
    ck_assert_int_eq(t_run(run_list, &j), 0);
    ck_assert_int_eq(j.found, 0);
    app_stop(&bare);
    app_stop(&app);
}
END_TEST

static int
run_attach(void *arg)
{
    struct job *j = arg;

    job_attach(j);
    if (j->c != NULL)
        diesel_console_client_close(j->c);
    return 0;
}

/* Attach to pid and expect the refusal err, with want in its sentence. */
static void
refused(pid_t pid, int signo, int64_t timeout_ms, int err, const char *want)
{
    struct job j;

    memset(&j, 0, sizeof(j));
    j.pid = pid;
    j.signo = signo;
    j.timeout_ms = timeout_ms;
    ck_assert_int_eq(t_run(run_attach, &j), 0);
    ck_assert_msg(j.err == err, "errno %s, not %s: %s", strerror(j.err),
        strerror(err), j.why);
    ck_assert_msg(strstr(j.why, want) != NULL, "%s", j.why);
}

START_TEST(client_refusals_have_an_errno_class_and_a_sentence)
{
    struct t_proc app, bare;
    pid_t gone;
    char want[128];

    rdv_setup();
    gone = fork();
    ck_assert_int_ge(gone, 0);
    if (gone == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
    snprintf(want, sizeof(want), "no such process: %ld", (long)gone);
    refused(gone, 0, 1000, ESRCH, want);
    app_start(&app, NULL);
    app_start(&bare, "-n");
    /* valgrind catches every signal for the program it runs: there, only
     * the advertisement tells. */
    refused(bare.pid, 0, 1000, ENOTSUP, t_under_valgrind() ?
        "is not proven to be a libdiesel service" : "does not catch SIGTRAP");
    refused(app.pid, SIGUSR1, 1000, ENOTSUP, t_under_valgrind() ?
        "its console listens for SIGTRAP, not SIGUSR1); not signalled" :
        "does not catch SIGUSR1");
    /* Stopped: no answer, and the sentence says why. */
    ck_assert_int_eq(kill(app.pid, SIGSTOP), 0);
    refused(app.pid, 0, 600, ETIMEDOUT, "it is stopped (kill -CONT");
    ck_assert_int_eq(kill(app.pid, SIGCONT), 0);
    app_stop(&bare);
    app_stop(&app);
}
END_TEST

START_TEST(client_another_users_service_is_not_permitted)
{
    struct t_proc app;
    pid_t child;
    int st;

    if (geteuid() != 0 || getpwuid(65534) == NULL)
        return;     /* needs root, to be nobody */
    rdv_setup();
    app_start(&app, NULL);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct job j;

        if (setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            _exit(10);
        memset(&j, 0, sizeof(j));
        j.pid = app.pid;
        j.timeout_ms = 1000;
        t_run(run_attach, &j);
        _exit(j.err == EPERM && strstr(j.why, "not permitted (only root "
            "may attach to another user's process)") != NULL ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    app_stop(&app);
}
END_TEST

/* Hold the loop of one session, then attach again: the stuck report. */
static int
run_stuck(void *arg)
{
    struct job *j = arg;
    struct job first;
    char cmd[64];

    memset(&first, 0, sizeof(first));
    first.pid = j->pid;
    first.signo = j->signo;
    first.timeout_ms = j->timeout_ms;
    job_attach(&first);
    ck_assert_msg(first.c != NULL, "%s", first.why);
    snprintf(cmd, sizeof(cmd), "hog %lld", (long long)t_slow(4000));
    ck_assert_int_eq(diesel_console_client_send(first.c, cmd, strlen(cmd)),
        0);
    /* Attach once the hog holds the loop: a request that comes before it
     * is served a session, which under valgrind beside other runs it was
     * (the app had not yet read the hog when the signal came). */
    ck_assert_msg(t_proc_expect(j->app, 1, "INFO:hogging the loop for ",
        4000), "no hog; log: %s", j->app->ebuf);
    job_attach(j);
    if (j->err == ETIMEDOUT)
        t_proc_threads(j->pid, j->threads, sizeof(j->threads));
    if (j->c != NULL)
        diesel_console_client_close(j->c);
    diesel_console_client_close(first.c);
    return 0;
}

START_TEST(client_gets_the_stuck_report_through_its_callback)
{
    struct t_proc app;
    struct job j;
    char sig[16];

    /* On t_console_signo's signal: SIGUSR2 under valgrind (proc.h). */
    snprintf(sig, sizeof(sig), "-s%d", t_console_signo());
    rdv_setup();
    app_start(&app, sig);
    memset(&j, 0, sizeof(j));
    j.pid = app.pid;
    j.app = &app;
    j.signo = t_console_signo();
    j.timeout_ms = t_slow(8000);
    ck_assert_int_eq(t_run(run_stuck, &j), 0);
    if (j.err != EDEADLK)
        t_proc_pump(&app, 100);
    ck_assert_msg(j.err == EDEADLK, "%s: %s\nits threads then:\n%s\n"
        "notices:\n%s\nits log:\n%s", strerror(j.err), j.why, j.threads,
        j.others, app.ebuf);
    ck_assert_msg(strstr(j.why, "is stuck (no turn for ") != NULL, "%s",
        j.why);
    ck_assert_msg(strstr(j.report, "cmd_hog") != NULL ||
        strstr(j.report, "console") != NULL, "%s", j.report);
    app_stop(&app);
}
END_TEST

/* DIESEL__CONSOLE_SESSIONS_MAX (4) sessions, then one more: EBUSY. */
static int
run_busy(void *arg)
{
    struct job *j = arg;
    struct job held[4];

    for (int i = 0; i < 4; i++) {
        memset(&held[i], 0, sizeof(held[i]));
        held[i].pid = j->pid;
        held[i].timeout_ms = j->timeout_ms;
        job_attach(&held[i]);
        ck_assert_msg(held[i].c != NULL, "%s", held[i].why);
    }
    job_attach(j);
    if (j->c != NULL)
        diesel_console_client_close(j->c);
    for (int i = 0; i < 4; i++)
        diesel_console_client_close(held[i].c);
    return 0;
}

START_TEST(client_is_told_busy_past_the_most_sessions)
{
    struct t_proc app;
    struct job j;

    rdv_setup();
    app_start(&app, NULL);
    memset(&j, 0, sizeof(j));
    j.pid = app.pid;
    j.timeout_ms = t_slow(5000);
    ck_assert_int_eq(t_run(run_busy, &j), 0);
    ck_assert_msg(j.err == EBUSY, "%s: %s", strerror(j.err), j.why);
    ck_assert_msg(strstr(j.why, "refused the session: busy, with 4 console "
        "sessions open already") != NULL, "%s", j.why);
    app_stop(&app);
}
END_TEST

/* The app's advertisement, rewritten to say signo (or removed: 0). */
static void
advert_set(pid_t pid, int signo)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/service-%ld",
        getenv("DIESEL_CONSOLE_DIR"), (long)pid);
    if (signo == 0) {
        ck_assert_int_eq(unlink(path), 0);
        return;
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "DIESEL-CONSOLE-SERVICE 1 pid=%ld start=%llu signal=%d\n",
        (long)pid, t_proc_start_ticks(pid), signo);
    ck_assert_int_eq(fclose(f), 0);
}

/* Attach with or without hints; the sentence. */
static void
hinted(pid_t pid, const char *list, const char *sig, struct job *j)
{
    memset(j, 0, sizeof(*j));
    j->pid = pid;
    j->timeout_ms = 1000;
    j->list_hint = list;
    j->signal_hint = sig;
    ck_assert_int_eq(t_run(run_attach, j), 0);
    ck_assert_msg(j->err == ENOTSUP, "%s: %s", strerror(j->err), j->why);
}

/* A library used by other tools names none of dconsole's flags: the
 * caller's hints, when given, are the only way to say what to run. */
START_TEST(client_sentences_name_no_tool_but_the_callers_hints)
{
    struct t_proc app;
    struct job j;
    char want[128];

    rdv_setup();
    app_start(&app, NULL);
    /* It catches SIGTRAP, but says its console is on SIGUSR1. */
    advert_set(app.pid, SIGUSR1);
    hinted(app.pid, NULL, NULL, &j);
    ck_assert_msg(strstr(j.why, "its console listens for SIGUSR1, not "
        "SIGTRAP); not signalled") != NULL, "%s", j.why);
    ck_assert_msg(strstr(j.why, "dconsole") == NULL &&
        strstr(j.why, "use ") == NULL && strstr(j.why, "Check") == NULL,
        "%s", j.why);
    hinted(app.pid, "mytool list", "--sig", &j);
    snprintf(want, sizeof(want), "not SIGTRAP: use --sig %d); not "
        "signalled.  Check with `mytool list`, which lists the services "
        "that can be attached to", SIGUSR1);
    ck_assert_msg(strstr(j.why, want) != NULL, "%s", j.why);
    /* No advertisement at all. */
    advert_set(app.pid, 0);
    hinted(app.pid, NULL, NULL, &j);
    ck_assert_msg(strstr(j.why, "it has advertised no console); not "
        "signalled") != NULL && strstr(j.why, "Check") == NULL, "%s", j.why);
    hinted(app.pid, "mytool list", NULL, &j);
    ck_assert_msg(strstr(j.why, "not signalled.  Check with `mytool list`")
        != NULL, "%s", j.why);
    app_stop(&app);
}
END_TEST

/* One attach and `echo <its pid>`, in a green thread of its own. */
static int
run_echo(void *arg)
{
    struct job *j = arg;
    char cmd[64];

    job_attach(j);
    if (j->c == NULL)
        return 0;
    snprintf(cmd, sizeof(cmd), "echo pid %ld", (long)j->pid);
    j->st = diesel_console_client_run(j->c, cmd, &j->reply, &j->len,
        t_slow(5000));
    diesel_console_client_close(j->c);
    j->c = NULL;
    return 0;
}

/*
 * Both jobs at once: the service connects back to the one socket of this
 * process in its directory, shared by the two attaches.  The first target
 * is stopped (j[0].signo holds its pid) until both attaches have bound
 * and signalled (their green threads run to their first wait before the
 * sleep ends) and, for two services, until the second attach is over: a
 * socket of each attach's own would be gone, or another's, by then.
 */
static int
run_pair(void *arg)
{
    struct job *j = arg;
    pid_t stopped = j[0].pid;
    int64_t a = diesel_task_spawn("first", run_echo, &j[0], 0);
    int64_t b = diesel_task_spawn("second", run_echo, &j[1], 0);

    ck_assert(a > 0 && b > 0);
    ck_assert_int_eq(diesel_sleep(1), 0);
    if (j[1].pid != stopped)
        ck_assert_int_eq(diesel_task_join(b, NULL, -1), 0);
    ck_assert_int_eq(kill(stopped, SIGCONT), 0);
    ck_assert_int_eq(diesel_task_join(a, NULL, -1), 0);
    if (j[1].pid == stopped)
        ck_assert_int_eq(diesel_task_join(b, NULL, -1), 0);
    return 0;
}

static void
pair(pid_t first, pid_t second)
{
    struct job j[2];
    int st;

    ck_assert_int_eq(kill(first, SIGSTOP), 0);
    ck_assert_int_eq(waitpid(first, &st, WUNTRACED), first);
    ck_assert(WIFSTOPPED(st));
    memset(j, 0, sizeof(j));
    j[0].pid = first;
    j[1].pid = second;
    for (int i = 0; i < 2; i++)
        j[i].timeout_ms = t_slow(8000);
    ck_assert_int_eq(t_run(run_pair, j), 0);
    for (int i = 0; i < 2; i++) {
        char want[64];

        snprintf(want, sizeof(want), "pid %ld", (long)j[i].pid);
        ck_assert_msg(j[i].err == 0, "attach %d: %s: %s", i,
            strerror(j[i].err), j[i].why);
        ck_assert_int_eq(j[i].st, 0);
        ck_assert_msg(strstr(j[i].reply, want) != NULL, "%s", j[i].reply);
        free(j[i].reply);
    }
}

START_TEST(client_attaches_to_two_services_at_once)
{
    struct t_proc a, b;

    rdv_setup();
    /* Stopped, the loop makes no turn: no stuck report for that. */
    setenv("DIESEL_CONSOLE_STUCK_MS", "0", 1);
    app_start(&a, NULL);
    app_start(&b, NULL);
    unsetenv("DIESEL_CONSOLE_STUCK_MS");
    pair(a.pid, b.pid);
    app_stop(&b);
    app_stop(&a);
}
END_TEST

/* Two attaches to one service at once: each connection goes to the attach
 * whose nonce its greeting echoes. */
START_TEST(client_attaches_twice_to_one_service_at_once)
{
    struct t_proc a;

    rdv_setup();
    setenv("DIESEL_CONSOLE_STUCK_MS", "0", 1);
    app_start(&a, NULL);
    unsetenv("DIESEL_CONSOLE_STUCK_MS");
    pair(a.pid, a.pid);
    app_stop(&a);
}
END_TEST

/* One reader of the protocol's lines, for the library and any tool. */
START_TEST(client_parse_tells_each_kind_of_line)
{
    static const struct {
        const char *line;
        int kind;
        const char *text;
    } cases[] = {
        { "| hello there", DIESEL_CONSOLE_LINE_OUTPUT, "hello there" },
        { "|", DIESEL_CONSOLE_LINE_OUTPUT, "" },
        { "| ", DIESEL_CONSOLE_LINE_OUTPUT, "" },
        { "|x", DIESEL_CONSOLE_LINE_BAD, "" },
        { "OK", DIESEL_CONSOLE_LINE_OK, "" },
        { "OK then", DIESEL_CONSOLE_LINE_BAD, "" },
        { "OKAY", DIESEL_CONSOLE_LINE_BAD, "" },
        { "ERR no such command", DIESEL_CONSOLE_LINE_ERR, "no such command" },
        { "ERR", DIESEL_CONSOLE_LINE_ERR, "" },
        { "ERRx", DIESEL_CONSOLE_LINE_BAD, "" },
        { "BUSY 4", DIESEL_CONSOLE_LINE_BUSY, "4" },
        { "BUSY", DIESEL_CONSOLE_LINE_BAD, "" },
        { "STUCK 1500", DIESEL_CONSOLE_LINE_STUCK, "1500" },
        { "STUCKY 1", DIESEL_CONSOLE_LINE_BAD, "" },
        { "", DIESEL_CONSOLE_LINE_BAD, "" },
        { "hello", DIESEL_CONSOLE_LINE_BAD, "" },
    };
    char buf[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *text;
        size_t tn;
        int k = diesel_console_client_parse(cases[i].line,
            strlen(cases[i].line), &text, &tn);

        ck_assert_msg(k == cases[i].kind, "\"%s\": %d", cases[i].line, k);
        ck_assert_msg(tn == strlen(cases[i].text) &&
            memcmp(text, cases[i].text, tn) == 0, "\"%s\": \"%.*s\"",
            cases[i].line, (int)tn, text);
    }
    /* The sentences of the lines that end a session, written once. */
    ck_assert_int_eq(diesel_console_client_explain(42, "BUSY 4", 6, buf,
        sizeof(buf)), EBUSY);
    ck_assert_str_eq(buf, "PID 42 refused the session: busy, with 4 console "
        "sessions open already (its most); try again once one ends");
    ck_assert_int_eq(diesel_console_client_explain(42, "STUCK 1500", 10,
        buf, sizeof(buf)), EDEADLK);
    ck_assert_str_eq(buf, "the loop of PID 42 is stuck (no turn for 1.500 "
        "s): the report above says which green thread holds it");
    ck_assert_int_eq(diesel_console_client_explain(42, "ERR bye", 7, buf,
        sizeof(buf)), ECONNRESET);
    ck_assert_str_eq(buf, "PID 42 ended the session: bye");
    ck_assert_int_eq(diesel_console_client_explain(42, "| hi", 4, buf,
        sizeof(buf)), EPROTO);
    ck_assert_str_eq(buf, "PID 42 broke the console protocol (a line when "
        "no reply was due: \"| hi\"): the session is over");
    ck_assert_int_eq(diesel_console_client_explain(42, "hello", 5, buf,
        sizeof(buf)), EPROTO);
    ck_assert_str_eq(buf, "PID 42 broke the console protocol (not a reply "
        "line: \"hello\"): the session is over");
}
END_TEST

/* The library's escaping, for a tool's terminal: in pieces when the
 * buffer is short, never an escape cut in two. */
START_TEST(client_escape_makes_text_safe_in_pieces)
{
    static const char in[] = "a\tb\x1b[31m\xc3\xa9\xc2\x85\xff\x7f";
    const char *want = "a\tb\\x1b[31m\xc3\xa9\\xc2\\x85\\xff\\x7f";
    char buf[64], small[9], all[64] = "";
    size_t at = 0, n = sizeof(in) - 1;
    const char *p = in;

    ck_assert_uint_eq(diesel_console_escape(buf, sizeof(buf), &at, in, n),
        n);
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(at, strlen(want));
    while (n > 0) {
        size_t used;

        at = 0;
        used = diesel_console_escape(small, sizeof(small), &at, p, n);
        ck_assert_uint_gt(used, 0);
        ck_assert_uint_eq(strlen(small), at);
        strcat(all, small);
        p += used;
        n -= used;
    }
    ck_assert_str_eq(all, want);
}
END_TEST

Suite *
diesel_client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("client");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, client_attaches_and_runs_commands);
    tcase_add_test(tc, client_lists_a_proven_service_and_not_a_bare_one);
    tcase_add_test(tc, client_refusals_have_an_errno_class_and_a_sentence);
    tcase_add_test(tc, client_another_users_service_is_not_permitted);
    tcase_add_test(tc, client_gets_the_stuck_report_through_its_callback);
    tcase_add_test(tc, client_is_told_busy_past_the_most_sessions);
    tcase_add_test(tc, client_sentences_name_no_tool_but_the_callers_hints);
    tcase_add_test(tc, client_parse_tells_each_kind_of_line);
    tcase_add_test(tc, client_attaches_to_two_services_at_once);
    tcase_add_test(tc, client_attaches_twice_to_one_service_at_once);
    tcase_add_test(tc, client_escape_makes_text_safe_in_pieces);
    suite_add_tcase(s, tc);
    return s;
}
