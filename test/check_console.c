/*
 * check_console.c: the console's in-process side.  Most tests run a real
 * service (test/console_app_child) and attach to it as dconsole does
 * (test/console_client.c): the protocol, the built-in commands this side
 * owns (help, get, set, quit), bad input, the attach's security checks
 * (TESTPLAN 1, 2, 4, 7, 9) and faults (14, 15, 17, 18, 19, 20).  A few test
 * the pieces directly: word splitting, the line assembler, framing,
 * daemon green threads, the local console.
 *
 * Each test has a rendezvous directory of its own (DIESEL_CONSOLE_DIR),
 * so tests and other users of the machine never meet.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "console_client.h"
#include "proc.h"
#include "console.h"
#include "internal.h"
#include "sanitize.h"

#define NOBODY 65534

/* Timeouts grow under valgrind (CK_TIMEOUT_MULTIPLIER). */
static int
T(int ms)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    int k = m != NULL ? atoi(m) : 1;

    return ms * (k > 1 ? k : 1);
}

/* Memory figures mean little under valgrind, which maps memory of its
 * own as the program runs. */
static int
under_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
    return RUNNING_ON_VALGRIND != 0;
#else
    return 0;
#endif
}

/* ---- A rendezvous directory per test ------------------------------------- */

static char top[64];     /* /tmp/diesel-check-XXXXXX, 0711 */
static pid_t top_owner;   /* the test's process (not a forked client) */
static char rdv[72];     /* top/r: DIESEL_CONSOLE_DIR */

static void rdv_teardown(void);

static void
rdv_setup(void)
{
    /* A failed assertion ends the test's process with exit(): the
     * directory goes then too. */
    atexit(rdv_teardown);
    strcpy(top, "/tmp/diesel-check-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    top_owner = getpid();
    /* Others may pass through (a `nobody` app must reach its own dir). */
    ck_assert_int_eq(chmod(top, 0711), 0);
    snprintf(rdv, sizeof(rdv), "%s/r", top);
    setenv("DIESEL_CONSOLE_DIR", rdv, 1);
}

static void
rm_rf(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;

        while (d != NULL && (e = readdir(d)) != NULL) {
            char sub[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void
rdv_teardown(void)
{
    if (top[0] != '\0' && getpid() == top_owner)
        rm_rf(top);
    top[0] = '\0';
}

/* ---- The service under test ----------------------------------------------- */

struct app {
    pid_t pid;
    int in;              /* its stdin: closing it ends the app */
    int out;             /* its stdout */
    int err;             /* its stderr: the log */
    char log[1 << 20];
    size_t loglen;
};

static struct app app;

static void
app_drain(struct app *a)
{
    ssize_t n;

    while (a->loglen < sizeof(a->log) - 1 &&
        (n = read(a->err, a->log + a->loglen,
        sizeof(a->log) - 1 - a->loglen)) > 0)
        a->loglen += (size_t)n;
    a->log[a->loglen] = '\0';
}

/* Start the app as uid (-1: ours) with extra options; wait for "ready". */
static void
app_start(struct app *a, int uid, const char *opt)
{
    int pin[2], pout[2], perr[2];
    char path[512], line[128];
    size_t n = 0;
    int64_t end;

    memset(a, 0, sizeof(*a));
    ck_assert_int_eq(pipe(pin), 0);
    ck_assert_int_eq(pipe(pout), 0);
    ck_assert_int_eq(pipe(perr), 0);
    snprintf(path, sizeof(path), "%s/console_app_child", t_dir());
    a->pid = fork();
    ck_assert_int_ge(a->pid, 0);
    if (a->pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        if (uid >= 0 && (setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0))
            _exit(126);
        if (opt != NULL)
            execl(path, "console_app_child", opt, (char *)NULL);
        else
            execl(path, "console_app_child", (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    a->in = pin[1];
    a->out = pout[0];
    a->err = perr[0];
    fcntl(a->err, F_SETFL, O_NONBLOCK);
    fcntl(a->in, F_SETFD, FD_CLOEXEC);
    fcntl(a->out, F_SETFD, FD_CLOEXEC);
    fcntl(a->err, F_SETFD, FD_CLOEXEC);
    end = t_now_ms() + T(10000);
    while (n < sizeof(line) - 1 && memchr(line, '\n', n) == NULL) {
        struct pollfd p = { a->out, POLLIN, 0 };
        ssize_t r;

        line[n] = '\0';
        if (poll(&p, 1, (int)(end - t_now_ms())) != 1 ||
            (r = read(a->out, line + n, sizeof(line) - 1 - n)) <= 0) {
            usleep(100000);
            app_drain(a);
            ck_abort_msg("the app did not get ready; its stderr: %s", a->log);
        }
        n += (size_t)r;
    }
    line[n] = '\0';
    ck_assert_msg(strncmp(line, "ready ", 6) == 0, "app said: %s", line);
}

/* Close its stdin and wait for it; its wait status. */
static int
app_stop(struct app *a)
{
    int st = -1;
    int64_t end = t_now_ms() + T(10000);

    close(a->in);
    while (waitpid(a->pid, &st, WNOHANG) == 0) {
        if (t_now_ms() > end) {
            kill(a->pid, SIGKILL);
            waitpid(a->pid, &st, 0);
            break;
        }
        app_drain(a);
        usleep(5000);
    }
    app_drain(a);
    close(a->out);
    close(a->err);
    return st;
}

/* Wait until the log has needle; 1 if it does. */
static int
app_wait_log(struct app *a, const char *needle, int timeout_ms)
{
    int64_t end = t_now_ms() + timeout_ms;

    for (;;) {
        app_drain(a);
        if (strstr(a->log, needle) != NULL)
            return 1;
        if (t_now_ms() > end)
            return 0;
        usleep(2000);
    }
}

static int
proc_fds(pid_t pid)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

/* A line of /proc/PID/status, as a number (kB for VmRSS). */
static long
proc_status(pid_t pid, const char *key)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;
    size_t k = strlen(key);

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, k) == 0 && line[k] == ':') {
            v = strtol(line + k + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* SigCgt of /proc/PID/status. */
static unsigned long long
proc_sigcgt(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    unsigned long long v = 0;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "SigCgt:", 7) == 0)
            v = strtoull(line + 7, NULL, 16);
    }
    fclose(f);
    return v;
}

/* CPU time (utime + stime) of pid, in clock ticks. */
static long
proc_cpu(pid_t pid)
{
    char path[64], buf[1024], *p;
    long ut = 0, stime = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
        "%*u %ld %ld", &ut, &stime) != 2)
        return -1;
    return ut + stime;
}

static void
attach(struct dcc *c)
{
    ck_assert_msg(dcc_attach(c, app.pid, geteuid(), 0, T(5000)) == 0,
        "attach: %s; log: %s", strerror(errno), (app_drain(&app), app.log));
}

static char reply[1 << 16];

/* Run cmd; check its status and, if want is not NULL, its whole reply. */
static void
expect(struct dcc *c, const char *cmd, int status, const char *want)
{
    int st = dcc_command(c, cmd, reply, sizeof(reply), T(5000));
    int err = errno;

    ck_assert_msg(st == status, "%s: status %d (%s), reply: %s; log: %s",
        cmd, st, st == -1 ? strerror(err) : "", reply,
        (app_drain(&app), app.log));
    if (want != NULL)
        ck_assert_msg(strcmp(reply, want) == 0, "%s: reply [%s], wanted [%s]",
            cmd, reply, want);
}

static void
app_setup(void)
{
    rdv_setup();
    app_start(&app, -1, NULL);
}

/* ---- The protocol -------------------------------------------------------- */

START_TEST(greeting_names_pid_program_and_echoes_the_nonce)
{
    struct dcc c;
    char want[128], buf[64];
    long pid, nonce;

    app_setup();
    attach(&c);
    ck_assert_int_eq(sscanf(c.greeting, "DIESEL-CONSOLE 1 pid=%ld "
        "program=%63s nonce=%ld", &pid, buf, &nonce), 3);
    ck_assert_int_eq(pid, app.pid);
    ck_assert_str_eq(buf, "console_app_child");
    ck_assert_int_eq(nonce, c.nonce);
    ck_assert_int_gt(c.nonce, 0);
    ck_assert_int_eq(c.foreign, 0);
    snprintf(want, sizeof(want), "{diesel} WARNING:Connected to local "
        "console (pid %ld, uid %u)", (long)getpid(), (unsigned)geteuid());
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    expect(&c, "quit", 0, "OK\n");
    /* quit: the app closes. */
    ck_assert_int_eq(dcc_read_line(&c, buf, sizeof(buf), T(2000)), -1);
    dcc_close(&c);
    snprintf(want, sizeof(want), "{diesel} WARNING:Disconnected from local "
        "console (pid %ld, uid %u)", (long)getpid(), (unsigned)geteuid());
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/*
 * A service whose green threads only yield, none of them parked on a
 * descriptor: its loop polls at most once a millisecond (loop.c,
 * must_poll), and the console's self-pipe, which the signal handler
 * writes, is among what that poll watches.  Attach after attach gets its
 * session.  (On the console's signal of t_console_signo: a busy service
 * under valgrind.)
 */
START_TEST(a_service_whose_green_threads_only_yield_is_attached)
{
    struct dcc c;
    char opt[32];
    int signo = t_console_signo();

    rdv_setup();
    snprintf(opt, sizeof(opt), "-ys%d", signo);
    app_start(&app, -1, opt);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(dcc_attach(&c, app.pid, geteuid(), signo, T(5000)) ==
            0, "attach %d: %s; log: %s", i, strerror(errno),
            (app_drain(&app), app.log));
        expect(&c, "echo hi", 0, "| hi\nOK\n");
        expect(&c, "tasks", 0, NULL);
        ck_assert_msg(strstr(reply, "yielder") != NULL, "%s", reply);
        expect(&c, "quit", 0, "OK\n");
        dcc_close(&c);
    }
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* The log line of a cancel names the session that asked, by its peer,
 * as the attach's line does. */
START_TEST(cancel_is_logged_with_the_session_that_asked)
{
    struct dcc c;
    char want[256], cmdline[64];
    const char *p;
    long id;

    app_setup();
    attach(&c);
    expect(&c, "tasks --json", 0, NULL);
    p = strstr(reply, ",\"name\":\"ticker\"");
    ck_assert_msg(p != NULL, "%s", reply);
    while (p > reply && p[-1] != ':')
        p--;
    id = strtol(p, NULL, 10);
    ck_assert_int_gt(id, 0);
    snprintf(cmdline, sizeof(cmdline), "cancel %ld", id);
    snprintf(want, sizeof(want), "| cancelled green thread %ld (ticker)\nOK\n",
        id);
    expect(&c, cmdline, 0, want);
    snprintf(want, sizeof(want), "{diesel} WARNING:console: cancelled green "
        "thread %ld (ticker) for the session of pid %ld, uid %u\n", id,
        (long)getpid(), (unsigned)geteuid());
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(eof_ends_the_session_too)
{
    struct dcc c;

    app_setup();
    attach(&c);
    expect(&c, "echo hi", 0, "| hi\nOK\n");
    dcc_close(&c);
    ck_assert(app_wait_log(&app, "Disconnected from local console", T(2000)));
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(help_lists_every_command_sorted_or_one)
{
    struct dcc c;
    char prev[64] = "";
    int n = 0, section = 0, col = -1, builtins = 0, own = 0;

    app_setup();
    attach(&c);
    expect(&c, "help", 0, NULL);
    /* Two aligned lists, "  USAGE  what it does": the built-ins, then
     * the service's own; each sorted; [--json] marks those that take it.
     * Descriptions start in one column within a list. */
    for (char *line = strtok(reply, "\n"); line != NULL;
        line = strtok(NULL, "\n")) {
        char name[64], twice[140];
        const char *gap;

        if (strcmp(line, "OK") == 0)
            break;
        ck_assert_msg(strncmp(line, "| ", 2) == 0, "line: %s", line);
        if (strcmp(line, "| Built-in commands:") == 0 ||
            strcmp(line, "| This service's commands:") == 0) {
            ck_assert_int_eq(section, line[2] == 'B' ? 0 : 1);
            section = line[2] == 'B' ? 1 : 2;
            prev[0] = '\0';
            col = -1;
            continue;
        }
        if (strncmp(line, "| [--json]:", 11) == 0)
            continue;
        ck_assert_msg(section > 0 && strncmp(line, "|   ", 4) == 0 &&
            line[4] != ' ', "line: %s", line);
        ck_assert_int_eq(sscanf(line + 4, "%63s", name), 1);
        /* The name once: the usage starts with it, the rest does not
         * repeat it. */
        gap = strstr(line + 4, "  ");
        ck_assert_msg(gap != NULL, "USAGE, two spaces, help: %s", line);
        gap += strspn(gap, " ");
        snprintf(twice, sizeof(twice), "%s  %s", name, name);
        ck_assert_msg(strstr(line, twice) == NULL, "name twice: %s", line);
        if (col < 0)
            col = (int)(gap - line);
        ck_assert_msg((int)(gap - line) == col, "not aligned: %s", line);
        ck_assert_msg(strcmp(prev, name) < 0, "%s after %s", name, prev);
        strcpy(prev, name);
        if (strcmp(name, "tasks") == 0 || strcmp(name, "jecho") == 0)
            ck_assert_msg(strstr(line, "[--json]") != NULL, "%s", line);
        if (strcmp(name, "set") == 0 || strcmp(name, "echo") == 0)
            ck_assert_msg(strstr(line, "[--json]") == NULL, "%s", line);
        builtins += section == 1;
        own += section == 2;
        n++;
    }
    ck_assert_int_eq(section, 2);
    ck_assert_int_ge(builtins, 12);
    ck_assert_int_ge(own, 11);
    ck_assert_int_ge(n, 23);
    expect(&c, "help echo", 0, "| echo WORDS  print them back\nOK\n");
    expect(&c, "help quit", 0, "| quit  end this console session\nOK\n");
    expect(&c, "help nosuch", 1, "ERR no such command: nosuch\n");
    expect(&c, "help a b", 1, "ERR usage: help [--json] [COMMAND]\n");
    expect(&c, "help --json echo", 0, "| {\"name\":\"echo\",\"help\":\"echo "
        "WORDS: print them back\",\"usage\":\"echo WORDS\",\"description\":"
        "\"print them back\",\"builtin\":false,\"json\":false}\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(set_says_what_it_set_and_refuses_values_out_of_range)
{
    struct dcc c;
    int64_t v = 3;

    app_setup();
    attach(&c);
    /* A range of 1 to 3600: the words the other range errors use. */
    expect(&c, "set window 5", 0, "| window: 5 (was 10)\nOK\n");
    expect(&c, "set window -5", 1, "ERR bad value '-5' for window: want an "
        "integer greater than 0 and at most 3600\n");
    expect(&c, "set window 0", 1, NULL);
    expect(&c, "set window 3601", 1, NULL);
    expect(&c, "set window 3600", 0, "| window: 3600 (was 5)\nOK\n");
    expect(&c, "set window 1", 0, "| window: 1 (was 3600)\nOK\n");
    /* Parsing comes first: not a number says so, not the range. */
    expect(&c, "set window 1.5", 1, "ERR not an integer: 1.5\n");
    expect(&c, "set window 99999999999999999999", 1, NULL);
    ck_assert_msg(strncmp(reply, "ERR out of range", 16) == 0, "%s", reply);
    /* A range that takes in 0 and negatives. */
    expect(&c, "set offset -5", 0, "| offset: -5 (was 0)\nOK\n");
    expect(&c, "set offset -6", 1, "ERR bad value '-6' for offset: want an "
        "integer at least -5 and at most 5\n");
    expect(&c, "set offset 6", 1, NULL);
    /* Nothing refused was stored. */
    expect(&c, "get window", 0, "| 1\nOK\n");
    expect(&c, "get offset", 0, "| -5\nOK\n");
    /* A string's old value is escaped as get shows it. */
    expect(&c, "set name a\033b", 0, "| name: a\\x1bb (was diesel)\nOK\n");
    expect(&c, "set name c", 0, "| name: c (was a\\x1bb)\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
    /* An empty range is refused when the variable is made. */
    errno = 0;
    ck_assert_int_eq(diesel_console_var_int_range("emptyrange", &v, 2, 1),
        -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_var_int_range("onevalue", &v, 3, 3), 0);
}
END_TEST

START_TEST(get_and_set_variables_of_every_type)
{
    struct dcc c;

    app_setup();
    attach(&c);
    expect(&c, "get answer", 0, "| 42\nOK\n");
    expect(&c, "set answer -17", 0, "| answer: -17 (was 42)\nOK\n");
    expect(&c, "get answer", 0, "| -17\nOK\n");
    expect(&c, "set answer 9223372036854775807", 0,
        "| answer: 9223372036854775807 (was -17)\nOK\n");
    expect(&c, "get answer", 0, "| 9223372036854775807\nOK\n");
    expect(&c, "get ratio", 0, "| 0.5\nOK\n");
    expect(&c, "set ratio 2.25e3", 0, "| ratio: 2250 (was 0.5)\nOK\n");
    expect(&c, "get ratio", 0, "| 2250\nOK\n");
    expect(&c, "get name", 0, "| diesel\nOK\n");
    expect(&c, "set name \"two words\"", 0,
        "| name: two words (was diesel)\nOK\n");
    expect(&c, "get name", 0, "| two words\nOK\n");
    expect(&c, "get --json name", 0, "| {\"name\":\"name\",\"type\":"
        "\"string\",\"writable\":true,\"value\":\"two words\"}\nOK\n");
    expect(&c, "set name 0123456789abcde", 0,
        "| name: 0123456789abcde (was two words)\nOK\n");
    expect(&c, "set name 0123456789abcdef", 1,
        "ERR too long: name holds at most 15 bytes\n");
    expect(&c, "get name", 0, "| 0123456789abcde\nOK\n");
    /* Read-only. */
    expect(&c, "get fixed", 0, "| 7\nOK\n");
    expect(&c, "set fixed 8", 1, "ERR fixed is read-only\n");
    expect(&c, "get fixed", 0, "| 7\nOK\n");
    /* All of them. */
    expect(&c, "get", 0, NULL);
    /* Aligned: columns as wide as their widest cell. */
    ck_assert_msg(strstr(reply, "| fixed   int     ro  7\n") != NULL &&
        strstr(reply, "| answer  int     rw  9223372036854775807\n") !=
        NULL && strstr(reply, "| name    string  rw  ") != NULL, "%s",
        reply);
    /* Wrong argument counts, unknown names. */
    expect(&c, "get a b", 1, "ERR usage: get [--json] [NAME]\n");
    expect(&c, "set answer", 1, "ERR usage: set NAME VALUE\n");
    expect(&c, "set answer 1 2", 1, "ERR usage: set NAME VALUE\n");
    expect(&c, "get nosuch", 1, "ERR no such variable: nosuch\n");
    /* A URL is no variable's name: `get URL` is the program's `fetch`,
     * and this one has none. */
    expect(&c, "get http://127.0.0.1/", 1, "ERR get of a URL needs an HTTP "
        "client, which this program has not registered (a `fetch` command: "
        "dconsole local has one); get NAME shows a variable\n");
    expect(&c, "set nosuch 1", 1, "ERR no such variable: nosuch\n");
    /* Absurd numbers: refused, nothing changed. */
    expect(&c, "set answer 99999999999999999999999", 1, NULL);
    ck_assert_msg(strncmp(reply, "ERR out of range", 16) == 0, "%s", reply);
    expect(&c, "set answer -99999999999999999999999", 1, NULL);
    expect(&c, "set answer 12abc", 1, "ERR not an integer: 12abc\n");
    expect(&c, "set answer 0x10", 1, "ERR not an integer: 0x10\n");
    expect(&c, "set answer \" 5\"", 1, "ERR not an integer:  5\n");
    expect(&c, "set answer \"\"", 1, "ERR not an integer: \n");
    expect(&c, "set ratio 1e999", 1, "ERR not a finite number: 1e999\n");
    expect(&c, "set ratio nan", 1, "ERR not a finite number: nan\n");
    expect(&c, "set ratio inf", 1, "ERR not a finite number: inf\n");
    expect(&c, "set ratio 1e-400", 1, "ERR out of range: 1e-400\n");
    expect(&c, "set ratio 1.5x", 1, "ERR not a number: 1.5x\n");
    expect(&c, "get answer", 0, "| 9223372036854775807\nOK\n");
    expect(&c, "get ratio", 0, "| 2250\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(registered_commands_print_fail_and_are_escaped)
{
    struct dcc c;

    app_setup();
    attach(&c);
    expect(&c, "echo one \"two three\" f\"o\"o \"q\\\"uote\\\\\"", 0,
        "| one two three foo q\"uote\\\nOK\n");
    expect(&c, "echo", 0, "| \nOK\n");
    expect(&c, "  echo\t tabs  ", 0, "| tabs\nOK\n");
    expect(&c, "fail", 1, "| some output first\nERR it failed\n");
    expect(&c, "fail-errno", 1, "ERR No such file or directory\n");
    /* Nothing a command prints can end a reply or move the terminal. */
    expect(&c, "ctrl", 0, "| a\\x01b\\x1b[2Jc\\x7fd\te\\x0df\n| OK\n"
        "| ERR fake\n| | fake\nOK\n");
    /* Only a command registered as speaking JSON runs with --json. */
    expect(&c, "echo --json x", 1, "ERR echo does not speak JSON: run it "
        "without --json (help marks the commands that take it)\n");
    expect(&c, "jecho --json x", 0, "| [\"x\"]\nOK\n");
    expect(&c, "jecho x", 0, "| x\nOK\n");
    expect(&c, "help echo", 0, "| echo WORDS  print them back\nOK\n");
    expect(&c, "help jecho", 0, "| jecho [--json] WORDS  print them back, "
        "or a JSON list of them\nOK\n");
    expect(&c, "echo \"\"", 0, "| \nOK\n");
    expect(&c, "echo \"unterminated", 1, "ERR unterminated quote\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(bad_bytes_get_an_error_each_and_the_session_goes_on)
{
    static const struct {
        const char *line;
        size_t len;
        const char *want;
    } bad[] = {
        { "ec\0ho hi\n", 9, "ERR NUL byte in the line\n" },
        { "echo a\0b\n", 9, "ERR NUL byte in the line\n" },
        { "\0\n", 2, "ERR NUL byte in the line\n" },
        { "help\r\n", 6, "ERR unknown command \"help\\x0d\" (try help)\n" },
        { "\r\n", 2, "ERR unknown command \"\\x0d\" (try help)\n" },
        { "\xff\xfe\xc3\x28\n", 5,
          "ERR unknown command \"\\xff\\xfe\\xc3(\" (try help)\n" },
        /* telnet: IAC DO ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC IP */
        { "\xff\xfd\x01\xff\xfb\x03\xff\xf4\n", 9,
          "ERR unknown command \"\\xff\\xfd\\x01\\xff\\xfb\\x03\\xff\\xf4\" "
          "(try help)\n" },
        { "nosuch\n", 7, "ERR unknown command \"nosuch\" (try help)\n" },
        { "HELP\n", 5, "ERR unknown command \"HELP\" (try help)\n" },
        { "\x1b[2J\n", 5, "ERR unknown command \"\\x1b[2J\" (try help)\n" },
        { "quit now\n", 9, "ERR usage: quit\n" },
        /* Not UTF-8: escaped too (diesel-console(7), "Escaping"). */
        { "set answer \xff\n", 13, "ERR not an integer: \\xff\n" },
    };
    struct dcc c;

    app_setup();
    attach(&c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(dcc_send(&c, bad[i].line, bad[i].len), 0);
        ck_assert_msg(dcc_reply(&c, reply, sizeof(reply), T(2000)) == 1,
            "%zu: %s [%s]", i, strerror(errno), reply);
        ck_assert_msg(strcmp(reply, bad[i].want) == 0, "%zu: [%s]", i, reply);
    }
    /* A bare CR is data, even in the middle of a word. */
    expect(&c, "echo a\rb", 0, "| a\\x0db\nOK\n");
    /* UTF-8 passes; a byte that is not, and a C1 control, do not. */
    expect(&c, "echo \xc3\xa9t\xc3\xa9 \xff \xc2\x9b", 0,
        "| \xc3\xa9t\xc3\xa9 \\xff \\xc2\\x9b\nOK\n");
    expect(&c, "", 0, "OK\n");
    expect(&c, " \t ", 0, "OK\n");
    expect(&c, "get answer", 0, "| 42\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(line_at_the_limit_passes_one_byte_more_does_not)
{
    static char line[8192];
    struct dcc c;

    app_setup();
    attach(&c);
    /* 4096 bytes with the newline: "echo " and 4090 x's. */
    memcpy(line, "echo ", 5);
    memset(line + 5, 'x', 4090);
    line[4095] = '\0';
    ck_assert_int_eq(dcc_command(&c, line, reply, sizeof(reply), T(2000)), 0);
    ck_assert_uint_eq(strlen(reply), 2 + 4090 + 1 + 3);
    line[4095] = 'x';
    line[4096] = '\0';
    expect(&c, line, 1, "ERR line too long (limit 4096 bytes)\n");
    expect(&c, "echo next", 0, "| next\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(megabyte_line_is_refused_at_the_limit_and_memory_stays_flat)
{
    static char chunk[65536];
    struct dcc c;
    long before, after;

    app_setup();
    attach(&c);
    expect(&c, "echo warm", 0, NULL);
    before = proc_status(app.pid, "VmRSS");
    memset(chunk, 'A', sizeof(chunk));
    /* The error comes at the limit, while the line still goes on. */
    ck_assert_int_eq(dcc_send(&c, chunk, 8192), 0);
    ck_assert_int_eq(dcc_reply(&c, reply, sizeof(reply), T(2000)), 1);
    ck_assert_str_eq(reply, "ERR line too long (limit 4096 bytes)\n");
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(dcc_send(&c, chunk, sizeof(chunk)), 0);
    /* ...and nothing more until its newline. */
    ck_assert_int_eq(dcc_reply(&c, reply, sizeof(reply), 200), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    after = proc_status(app.pid, "VmRSS");
    ck_assert_msg(after - before < 256 || under_valgrind(),
        "VmRSS %ld kB -> %ld kB", before, after);
    ck_assert_int_eq(dcc_send(&c, "\n", 1), 0);
    expect(&c, "echo after", 0, "| after\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(ten_thousand_pipelined_commands_reply_in_order)
{
    enum { N = 10000 };
    static char req[N * 16], got[N * 32];
    size_t len = 0, sent = 0, have = 0;
    struct dcc c;
    int64_t end;

    app_setup();
    attach(&c);
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(req + len, "echo %d\n", i);
    /* One write; read while it goes, or both sides would fill up. */
    fcntl(c.fd, F_SETFL, O_NONBLOCK);
    end = t_now_ms() + T(20000);
    while (t_now_ms() < end) {
        struct pollfd p = { c.fd, POLLIN | (sent < len ? POLLOUT : 0), 0 };
        ssize_t n;

        if (poll(&p, 1, 1000) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < len) {
            n = send(c.fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (p.revents & POLLIN) {
            n = recv(c.fd, got + have, sizeof(got) - have - 1, 0);
            ck_assert_int_gt(n, 0);
            have += (size_t)n;
            got[have] = '\0';
            if (have >= 2 + 4 + 1 + 3 && strstr(got + have - 15,
                "| 9999\nOK\n") != NULL)
                break;
        }
    }
    got[have] = '\0';
    {
        char *p = got;
        for (int i = 0; i < N; i++) {
            char want[32];
            int k = sprintf(want, "| %d\nOK\n", i);
            ck_assert_msg(strncmp(p, want, (size_t)k) == 0,
                "reply %d: %.40s", i, p);
            p += k;
        }
        ck_assert_str_eq(p, "");
    }
    fcntl(c.fd, F_SETFL, 0);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(reply_is_cut_at_sixteen_mebibytes_with_a_note_and_err)
{
    static char big[17 << 20];
    struct dcc c;
    char *note;

    app_setup();
    attach(&c);
    ck_assert_int_eq(dcc_command(&c, "spew 20000000", big, sizeof(big),
        T(20000)), 1);
    note = strstr(big, "| [output cut at ");
    ck_assert_ptr_nonnull(note);
    /* The command returned 0, but its reply did not get through whole:
     * ERR, as a built-in's cut reply ends. */
    ck_assert_str_eq(strchr(note, '\n') + 1, "ERR reply too long (over the "
        "console's output limit, 16 MiB): its text was cut\n");
    /* 64-byte lines, each framed with "| ": well over 16 MiB of text. */
    ck_assert_uint_gt((size_t)(note - big), (size_t)16 << 20);
    expect(&c, "echo still here", 0, "| still here\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* ---- Attach security ----------------------------------------------------- */

/* Listen without checking the directory, signal, and see nothing come. */
static void
expect_no_connection(const char *why)
{
    struct dcc c;
    char want[256];

    int64_t end;

    ck_assert_int_eq(dcc_listen(&c, app.pid, geteuid(), 0), 0);
    ck_assert_int_eq(dcc_signal(&c, 0), 0);
    ck_assert_int_eq(dcc_accept(&c, 500), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_int_eq(c.foreign, 0);
    snprintf(want, sizeof(want), "{diesel} ERROR:console request from pid "
        "%ld refused: %s", (long)getpid(), why);
    /* Signalled again every second, as dconsole does (valgrind has been
     * seen to hold a signal back for 20 s), until the refusal is logged. */
    end = t_now_ms() + T(2000);
    while (!app_wait_log(&app, want, 1000) && t_now_ms() < end)
        ck_assert_int_eq(dcc_signal_again(&c, 0), 0);
    ck_assert_msg(app_wait_log(&app, want, 0), "wanted [%s], log: %s",
        want, app.log);
    dcc_close(&c);
    ck_assert_ptr_null(strstr(app.log, "Connected"));
}

START_TEST(directory_made_by_another_user_is_refused)
{
    char why[256];

    app_setup();
    /* `nobody` was there first, with a directory anyone can enter (the
     * app, finding it so, could not advertise its console: see
     * unsafe_directory_means_no_advertisement). */
    rm_rf(rdv);
    ck_assert_int_eq(mkdir(rdv, 0777), 0);
    ck_assert_int_eq(chmod(rdv, 0777), 0);
    ck_assert_int_eq(chown(rdv, NOBODY, NOBODY), 0);
    snprintf(why, sizeof(why), "rendezvous directory %s belongs to uid "
        "65534, not to us (uid 0)", rdv);
    expect_no_connection(why);
    /* Ours, but open to others. */
    ck_assert_int_eq(chown(rdv, 0, 0), 0);
    snprintf(why, sizeof(why), "rendezvous directory %s has mode 0777: "
        "others can enter it (0700 wanted)", rdv);
    expect_no_connection(why);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(symlinked_directory_is_refused)
{
    char real[160], why[256];

    app_setup();
    /* A good directory elsewhere, and the name a symlink to it. */
    snprintf(real, sizeof(real), "%s/elsewhere", top);
    ck_assert_int_eq(mkdir(real, 0700), 0);
    rm_rf(rdv);     /* the app made it, to advertise its console */
    ck_assert_int_eq(symlink(real, rdv), 0);
    snprintf(why, sizeof(why), "rendezvous directory %s is a symbolic link",
        rdv);
    expect_no_connection(why);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(nothing_connects_to_the_old_tcp_port)
{
    int ready[2], done[2], st;
    pid_t squatter;
    char b;
    struct dcc c;

    app_setup();
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(done), 0);
    squatter = fork();
    ck_assert_int_ge(squatter, 0);
    if (squatter == 0) {
        /* `nobody` listens on diesel's old port 4299, as the old attack
         * did, and counts what connects. */
        struct sockaddr_in sa;
        int fd, on = 1, got;

        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(3);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(4299);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            listen(fd, 8) != 0)
            _exit(4);
        (void)!write(ready[1], "r", 1);
        (void)!read(done[0], &b, 1);
        got = accept(fd, NULL, NULL);
        _exit(got >= 0 ? 1 : errno == EAGAIN ? 0 : 5);
    }
    close(ready[1]);
    close(done[0]);
    if (read(ready[0], &b, 1) != 1) {
        waitpid(squatter, &st, 0);
        ck_abort_msg("the squatter could not listen on 4299: exit %d",
            WEXITSTATUS(st));
    }
    attach(&c);
    expect(&c, "echo real session", 0, "| real session\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(write(done[1], "d", 1), 1);
    ck_assert_int_eq(waitpid(squatter, &st, 0), squatter);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "the squatter got a connection (status %#x)", st);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(client_closes_a_foreign_connector_without_a_byte)
{
    struct dcc c;
    pid_t intruder;
    int st;

    /* TESTPLAN 3, on the client's side (dconsole uses the same steps):
     * a process of ours with another pid connects first. */
    app_setup();
    ck_assert_int_eq(dcc_listen(&c, app.pid, geteuid(), 1), 0);
    intruder = fork();
    ck_assert_int_ge(intruder, 0);
    if (intruder == 0) {
        struct sockaddr_un sa;
        struct pollfd p;
        char buf[16];
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);

        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        strcpy(sa.sun_path, c.path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            _exit(2);
        p.fd = fd;
        p.events = POLLIN;
        if (poll(&p, 1, T(5000)) != 1 || read(fd, buf, sizeof(buf)) != 0)
            _exit(3);
        _exit(0);
    }
    usleep(100000);
    ck_assert_int_eq(dcc_signal(&c, 0), 0);
    ck_assert_int_eq(dcc_accept(&c, T(5000)), 0);
    ck_assert_int_eq(c.foreign, 1);
    expect(&c, "echo real", 0, "| real\nOK\n");
    waitpid(intruder, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "intruder: %#x", st);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(forged_sender_pid_is_refused)
{
    struct sockaddr_un sa;
    siginfo_t si;
    pid_t victim;
    int lfd, fd, st;
    char buf[16], want[256];
    struct pollfd p;

    app_setup();
    /* The app made the directory, to advertise its console. */
    ck_assert_int_eq(access(rdv, F_OK), 0);
    /* Another process, whose pid we claim to be... */
    victim = fork();
    ck_assert_int_ge(victim, 0);
    if (victim == 0) {
        pause();
        _exit(0);
    }
    /* ...and at its socket path, our own listener. */
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/console-%ld.sock", rdv,
        (long)victim);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGTRAP;
    si.si_code = SI_QUEUE;
    si.si_pid = victim;
    si.si_uid = geteuid();
    si.si_value.sival_int = 1234;
    ck_assert_int_eq(syscall(SYS_rt_sigqueueinfo, app.pid, SIGTRAP, &si), 0);
    /* The app does connect, sees who holds the socket, and hangs up
     * without a byte. */
    p.fd = lfd;
    p.events = POLLIN;
    ck_assert_int_eq(poll(&p, 1, T(5000)), 1);
    fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    p.fd = fd;
    ck_assert_int_eq(poll(&p, 1, T(5000)), 1);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
    close(fd);
    close(lfd);
    unlink(sa.sun_path);
    snprintf(want, sizeof(want), "{diesel} ERROR:console request from pid "
        "%ld refused: the socket %s is held by pid %ld, not by the sender",
        (long)victim, sa.sun_path, (long)getpid());
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    ck_assert_ptr_null(strstr(app.log, "Connected"));
    kill(victim, SIGKILL);
    waitpid(victim, &st, 0);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(breakpoint_kills_with_sigtrap_and_starts_no_session)
{
    struct dcc c;
    int st;
    struct rlimit no_core = { 0, 0 };

    rdv_setup();
    setrlimit(RLIMIT_CORE, &no_core);
    app_start(&app, -1, "-t");
    /* A client waits all along: the trap must not reach it. */
    ck_assert_int_eq(dcc_listen(&c, app.pid, geteuid(), 1), 0);
    st = app_stop(&app);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGTRAP,
        "status %#x, log: %s", st, app.log);
    ck_assert_int_eq(dcc_accept(&c, 100), -1);
    ck_assert_int_eq(c.foreign, 0);
    dcc_close(&c);
    ck_assert_ptr_null(strstr(app.log, "Connected"));
    ck_assert_ptr_null(strstr(app.log, "console request"));
    rdv_teardown();
}
END_TEST

/* TESTPLAN 9c: SIGTRAP from another process, in the forms that are not
 * a request (tgkill to one thread; a plain kill with no socket behind
 * it): each refused and logged, and the service lives and serves. */
START_TEST(foreign_tgkill_and_kill_are_refused_and_the_service_lives)
{
    static const char *forms[] = { "tgkill", "kill" };
    struct dcc c;

    app_setup();
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char want[256];
        int64_t end = t_now_ms() + T(2000);
        pid_t sender = fork();

        ck_assert_int_ge(sender, 0);
        if (sender == 0) {
            /* Until killed: the refusal names this pid, and valgrind has
             * been seen to hold a signal back for seconds. */
            for (;;) {
                if (i == 0)
                    syscall(SYS_tgkill, app.pid, app.pid, SIGTRAP);
                else
                    kill(app.pid, SIGTRAP);
                sleep(1);
            }
        }
        if (i == 0)
            snprintf(want, sizeof(want), "{diesel} ERROR:console request "
                "from pid %ld refused: the signal was sent to one thread "
                "(si_code %d), not queued to the process as dconsole does",
                (long)sender, SI_TKILL);
        else
            snprintf(want, sizeof(want), "{diesel} ERROR:console request "
                "from pid %ld refused: %s/console-%ld.sock: No such file or "
                "directory", (long)sender, rdv, (long)sender);
        while (!app_wait_log(&app, want, 200) && t_now_ms() < end)
            ;
        kill(sender, SIGKILL);
        waitpid(sender, NULL, 0);
        ck_assert_msg(app_wait_log(&app, want, 0), "%s: wanted [%s], log: %s",
            forms[i], want, app.log);
        ck_assert_int_eq(waitpid(app.pid, NULL, WNOHANG), 0);
    }
    attach(&c);
    expect(&c, "echo alive", 0, "| alive\nOK\n");
    dcc_close(&c);
    ck_assert_ptr_null(strstr(app.log, "core dumped"));
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* TESTPLAN 9d, the service's side: between the app's directory check and
 * its connect, the directory is swapped for a symlink to another where a
 * decoy listens at the same name; the app still reaches the socket in
 * the directory it checked, and the decoy gets nothing. */
START_TEST(connect_goes_to_the_directory_checked_despite_a_swap)
{
    struct sockaddr_un sa;
    struct pollfd pf;
    char other[160], moved[160];
    struct dcc c;
    int decoy;

    rdv_setup();
    snprintf(other, sizeof(other), "%s/elsewhere", top);
    snprintf(moved, sizeof(moved), "%s.moved", rdv);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    t_swap_set(rdv, other);
    app_start(&app, -1, NULL);
    t_swap_clear();
    /* The decoy: our pid's socket name, in the other directory. */
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.80s/console-%ld.sock",
        other, (long)getpid());
    decoy = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ck_assert_int_eq(bind(decoy, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(decoy, 4), 0);
    ck_assert_int_eq(dcc_attach(&c, app.pid, geteuid(), 0, T(5000)), 0);
    expect(&c, "echo checked", 0, "| checked\nOK\n");
    /* The swap did happen, and nothing reached the decoy. */
    ck_assert_int_eq(access(moved, F_OK), 0);
    pf.fd = decoy;
    pf.events = POLLIN;
    ck_assert_int_eq(poll(&pf, 1, 0), 0);
    dcc_close(&c);
    close(decoy);
    ck_assert_int_eq(app_stop(&app), 0);
    rm_rf(moved);
    rdv_teardown();
}
END_TEST

/* What dconsole checks before it signals: service-PID in the directory,
 * naming the start time and the signal; gone at uninstall and at exit. */
START_TEST(advertisement_is_written_at_install_and_removed_after)
{
    char path[256], text[256], want[256];
    struct stat st;
    struct dcc c;
    FILE *f;
    size_t n;

    app_setup();
    snprintf(path, sizeof(path), "%s/service-%ld", rdv, (long)app.pid);
    ck_assert_int_eq(lstat(rdv, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0700);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    snprintf(want, sizeof(want), "DIESEL-CONSOLE-SERVICE 1 pid=%ld start=%llu "
        "signal=%d\n", (long)app.pid, t_proc_start_ticks(app.pid), SIGTRAP);
    ck_assert_str_eq(text, want);
    /* Uninstalled: gone. */
    attach(&c);
    expect(&c, "uninstall", 0, "| uninstalled\nOK\n");
    ck_assert_int_ne(lstat(path, &st), 0);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    /* At exit: gone. */
    app_start(&app, -1, NULL);
    snprintf(path, sizeof(path), "%s/service-%ld", rdv, (long)app.pid);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_int_eq(app_stop(&app), 0);
    ck_assert_int_ne(lstat(path, &st), 0);
    rdv_teardown();
}
END_TEST

/* A directory others may enter: the console serves (the test client
 * checks nothing), but it is not advertised, so dconsole will refuse to
 * signal it; the log says so. */
START_TEST(unsafe_directory_means_no_advertisement)
{
    char path[256], want[256];
    struct stat st;

    rdv_setup();
    ck_assert_int_eq(mkdir(rdv, 0777), 0);
    ck_assert_int_eq(chmod(rdv, 0777), 0);
    app_start(&app, -1, NULL);
    snprintf(want, sizeof(want), "{diesel} ERROR:the console is installed "
        "but not advertised (rendezvous directory %s has mode 0777: others "
        "can enter it (0700 wanted)): dconsole will refuse to attach", rdv);
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    snprintf(path, sizeof(path), "%s/service-%ld", rdv, (long)app.pid);
    ck_assert_int_ne(lstat(path, &st), 0);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(root_attaches_to_an_app_of_another_user_and_is_logged)
{
    struct dcc c;
    char want[128];

    /* valgrind cannot start the app once it runs as nobody ("error 13
     * Permission denied" from its launcher): nothing of ours to test. */
    if (under_valgrind()) {
        fprintf(stderr, "%s: skipped under valgrind\n", __func__);
        return;
    }
    rdv_setup();
    app_start(&app, NOBODY, NULL);
    ck_assert_int_eq(dcc_attach(&c, app.pid, NOBODY, 0, T(5000)), 0);
    expect(&c, "echo as nobody", 0, "| as nobody\nOK\n");
    snprintf(want, sizeof(want), "WARNING:Connected to local console (pid "
        "%ld, uid 0)", (long)getpid());
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(peer_of_a_third_user_is_refused)
{
    int ready[2], st;
    pid_t child;
    siginfo_t si;
    char b, want[256];

    /* valgrind cannot start the app once it runs as nobody ("error 13
     * Permission denied" from its launcher): nothing of ours to test. */
    if (under_valgrind()) {
        fprintf(stderr, "%s: skipped under valgrind\n", __func__);
        return;
    }
    /* The app runs as nobody.  A process listens at the right place
     * under the right pid, but as uid 1234: neither nobody nor root. */
    rdv_setup();
    app_start(&app, NOBODY, NULL);
    ck_assert_int_eq(dcc_dir_prepare(rdv, NOBODY), 0);
    ck_assert_int_eq(pipe(ready), 0);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct sockaddr_un sa;
        struct pollfd p;
        int lfd, fd;
        char buf[8];

        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/console-%ld.sock",
            rdv, (long)getpid());
        lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            chown(sa.sun_path, NOBODY, NOBODY) != 0)
            _exit(2);
        /* The kernel records the peer's credentials at listen(). */
        if (setgid(1234) != 0 || setuid(1234) != 0 || listen(lfd, 4) != 0)
            _exit(3);
        (void)!write(ready[1], "r", 1);
        p.fd = lfd;
        p.events = POLLIN;
        if (poll(&p, 1, T(5000)) != 1 || (fd = accept(lfd, NULL, NULL)) < 0)
            _exit(4);
        p.fd = fd;
        /* Closed without a byte. */
        if (poll(&p, 1, T(5000)) != 1 || read(fd, buf, sizeof(buf)) != 0)
            _exit(5);
        _exit(0);
    }
    close(ready[1]);
    ck_assert_int_eq(read(ready[0], &b, 1), 1);
    /* Only root could signal for it; name its pid truthfully. */
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGTRAP;
    si.si_code = SI_QUEUE;
    si.si_pid = child;
    si.si_uid = 1234;
    si.si_value.sival_int = 99;
    ck_assert_int_eq(syscall(SYS_rt_sigqueueinfo, app.pid, SIGTRAP, &si), 0);
    waitpid(child, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %#x", st);
    snprintf(want, sizeof(want), "{diesel} ERROR:console request from pid "
        "%ld refused: its uid 1234 is neither ours (65534) nor root",
        (long)child);
    ck_assert_msg(app_wait_log(&app, want, T(2000)), "log: %s", app.log);
    ck_assert_ptr_null(strstr(app.log, "Connected"));
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* ---- Resources ------------------------------------------------------------ */

START_TEST(session_leaves_no_socket_or_descriptor_behind)
{
    struct dcc c;
    int before, during;

    app_setup();
    before = proc_fds(app.pid);
    ck_assert_int_gt(before, 0);
    attach(&c);
    expect(&c, "echo x", 0, NULL);
    during = proc_fds(app.pid);
    ck_assert_int_eq(during, before + 1);
    expect(&c, "quit", 0, "OK\n");
    dcc_close(&c);
    ck_assert(app_wait_log(&app, "Disconnected", T(2000)));
    ck_assert_int_eq(proc_fds(app.pid), before);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(fifty_attach_detach_cycles_leave_no_descriptor_behind)
{
    /* Under valgrind, where a cycle takes seconds, ten show a leak as
     * well: memcheck is what is tested there. */
    int cycles = under_valgrind() ? 10 : 50;
    int before;

    app_setup();
    before = proc_fds(app.pid);
    for (int i = 0; i < cycles; i++) {
        struct dcc c;
        attach(&c);
        expect(&c, "quit", 0, "OK\n");
        ck_assert_int_eq(dcc_read_line(&c, reply, sizeof(reply), T(2000)),
            -1);
        dcc_close(&c);
    }
    ck_assert(app_wait_log(&app, "Disconnected", T(2000)));
    /* The last session may still be on its way out. */
    for (int i = 0; i < 100 && proc_fds(app.pid) != before; i++)
        usleep(10000);
    ck_assert_int_eq(proc_fds(app.pid), before);
    app_drain(&app);
    ck_assert_int_eq(t_count(app.log, "WARNING:Connected"), cycles);
    ck_assert_int_eq(app_stop(&app), 0);
    ck_assert_int_eq(t_count(app.log, "WARNING:Disconnected"), cycles);
    rdv_teardown();
}
END_TEST

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

START_TEST(attach_takes_milliseconds)
{
    int64_t us[100];
    int n = under_valgrind() ? 20 : 100;   /* as above */

    app_setup();
    for (int i = 0; i < n; i++) {
        struct dcc c;
        struct timespec a, b;

        clock_gettime(CLOCK_MONOTONIC, &a);
        attach(&c);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[i] = (int64_t)(b.tv_sec - a.tv_sec) * 1000000 +
            (b.tv_nsec - a.tv_nsec) / 1000;
        dcc_close(&c);
    }
    qsort(us, (size_t)n, sizeof(us[0]), cmp_i64);
    fprintf(stderr, "console attach latency over %d attaches: median "
        "%lld us, 90th %lld us, max %lld us\n", n, (long long)us[n / 2],
        (long long)us[n * 9 / 10], (long long)us[n - 1]);
    ck_assert_int_lt(us[n / 2], T(50000));
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(uninstall_gives_the_signal_back_and_closes_the_pipe)
{
    struct dcc c;
    int before;

    app_setup();
    ck_assert(proc_sigcgt(app.pid) & (1ull << (SIGTRAP - 1)));
    before = proc_fds(app.pid);
    attach(&c);
    expect(&c, "uninstall", 0, "| uninstalled\nOK\n");
    /* (valgrind catches every signal itself) */
    ck_assert(!(proc_sigcgt(app.pid) & (1ull << (SIGTRAP - 1))) ||
        under_valgrind());
    /* The session goes on; the pipe's two ends are gone. */
    expect(&c, "echo still", 0, "| still\nOK\n");
    ck_assert_int_eq(proc_fds(app.pid), before - 2 + 1);
    expect(&c, "uninstall", 1, "ERR Invalid argument\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* ---- Faults ----------------------------------------------------------------- */

START_TEST(client_killed_mid_reply_leaves_the_app_unharmed)
{
    int go[2], st, before;
    pid_t client;
    char b;
    struct dcc c;

    app_setup();
    before = proc_fds(app.pid);
    ck_assert_int_eq(pipe(go), 0);
    client = fork();
    ck_assert_int_ge(client, 0);
    if (client == 0) {
        struct dcc k;
        char buf[65536];

        if (dcc_attach(&k, app.pid, geteuid(), 0, T(5000)) != 0)
            _exit(2);
        dcc_send(&k, "spew 16000000\n", 14);
        /* Some of the reply, then wait to be killed. */
        if (recv(k.fd, buf, sizeof(buf), MSG_WAITALL) <= 0)
            _exit(3);
        (void)!write(go[1], "g", 1);
        pause();
        _exit(0);
    }
    close(go[1]);
    ck_assert_int_eq(read(go[0], &b, 1), 1);
    kill(client, SIGKILL);
    waitpid(client, &st, 0);
    close(go[0]);
    ck_assert_msg(app_wait_log(&app, "Disconnected", T(5000)), "log: %s",
        app.log);
    ck_assert_int_eq(kill(app.pid, 0), 0);
    for (int i = 0; i < 100 && proc_fds(app.pid) != before; i++)
        usleep(10000);
    ck_assert_int_eq(proc_fds(app.pid), before);
    attach(&c);
    expect(&c, "echo unharmed", 0, "| unharmed\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(reader_that_stops_reading_is_dropped_after_the_write_timeout)
{
    struct dcc stalled, other;
    long rss0, rss, ticks0, ticks1;
    int64_t t0, waited;

    /* No stuck report: under valgrind a slice of the spew may outlast
     * the 1 s threshold, and the other session then got a report (one
     * CI run in two); it is to be served between the slices. */
    rdv_setup();
    app_start(&app, -1, "-S0");
    rss0 = proc_status(app.pid, "VmRSS");
    ck_assert_int_eq(dcc_attach(&stalled, app.pid, geteuid(), 0, T(5000)), 0);
    /* A big reply, and we never read it. */
    ck_assert_int_eq(dcc_send(&stalled, "spew 16000000\n", 14), 0);
    t0 = t_now_ms();
    usleep(300000);
    /* Another session is served meanwhile, and the app's green threads
     * keep running. */
    {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int st1, st2;
            char r1[256], r2[256];

            dcc_close(&stalled);
            if (dcc_attach(&other, app.pid, geteuid(), 0, T(5000)) != 0)
                _exit(2);
            /* Under valgrind the spew's slices take long turns: give
             * each answer seconds (scaled), not a fixed two. */
            st1 = dcc_command(&other, "get ticks", r1, sizeof(r1), T(10000));
            usleep(200000);
            st2 = dcc_command(&other, "get ticks", r2, sizeof(r2), T(10000));
            if (st1 != 0 || st2 != 0)
                _exit(3);
            ticks0 = atol(r1 + 2);
            ticks1 = atol(r2 + 2);
            _exit(ticks1 > ticks0 ? 0 : 4);
        } else {
            int st;
            waitpid(pid, &st, 0);
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                "the other session: status %#x; log: %s", st,
                (app_drain(&app), app.log));
        }
    }
    /* Buffered output stays capped: the 16 MiB reply and a little (and,
     * under ASan, the quarantined blocks the reply grew out of). */
    rss = proc_status(app.pid, "VmRSS");
#ifdef DIESEL__ASAN
    ck_assert_msg(rss - rss0 < 80 * 1024, "VmRSS %ld kB -> %ld kB", rss0,
        rss);
#else
    ck_assert_msg(rss - rss0 < 24 * 1024 || under_valgrind(),
        "VmRSS %ld kB -> %ld kB", rss0, rss);
#endif
    ck_assert_msg(app_wait_log(&app, "dropped: its reader made no progress "
        "for 10 s", T(20000)), "log: %s", app.log);
    waited = t_now_ms() - t0;
    ck_assert_int_ge(waited, 9000);
    ck_assert(app_wait_log(&app, "Disconnected", T(2000)));
    dcc_close(&stalled);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

START_TEST(descriptor_table_full_fails_the_attach_cleanly_and_recovers)
{
    struct dcc a, b, c;
    long cpu0, cpu1;

    app_setup();
    attach(&a);
    expect(&a, "fdfill", 0, NULL);
    ck_assert_msg(strstr(reply, "Too many open files") != NULL, "%s", reply);
    /* The attach fails: one log line, no connection. */
    ck_assert_int_eq(dcc_listen(&b, app.pid, geteuid(), 1), 0);
    ck_assert_int_eq(dcc_signal(&b, 0), 0);
    ck_assert_int_eq(dcc_accept(&b, 500), -1);
    dcc_close(&b);
    ck_assert(app_wait_log(&app, "failed: socket: Too many open files",
        T(2000)));
    /* The loop does not spin on what it could not do. */
    cpu0 = proc_cpu(app.pid);
    usleep(1000000);
    cpu1 = proc_cpu(app.pid);
    ck_assert_msg(cpu1 - cpu0 < sysconf(_SC_CLK_TCK) / 5,
        "%ld ticks of CPU in 1 s", cpu1 - cpu0);
    app_drain(&app);
    ck_assert_int_eq(t_count(app.log, "console attach from pid"), 1);
    /* Room again: everything works. */
    expect(&a, "fdfree", 0, NULL);
    dcc_close(&a);
    attach(&c);
    expect(&c, "echo recovered", 0, "| recovered\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/*
 * TESTPLAN 20: the attach signal comes while a green thread is a few
 * hundred bytes from the end of its stack (the app's deep command), where
 * no signal frame fits: the handler must run on the alternate stack.
 */

/* One line of the app's standard output, without its newline, read a
 * byte at a time so that nothing after it is consumed; 0, or -1. */
static int
app_out_line(struct app *a, char *buf, size_t size, int timeout_ms)
{
    int64_t end = t_now_ms() + timeout_ms;
    size_t n = 0;

    for (;;) {
        struct pollfd p = { a->out, POLLIN, 0 };
        int64_t left = end - t_now_ms();
        char ch;

        if (left <= 0 || poll(&p, 1, (int)left) != 1 ||
            read(a->out, &ch, 1) != 1)
            return -1;
        if (ch == '\n' || n + 1 >= size)
            break;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return 0;
}

/* Whether signo waits to be delivered in pid (to its first thread, the
 * loop's, or to the process). */
static int
proc_pending(pid_t pid, int signo)
{
    char path[64], line[256];
    unsigned long long mask = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "SigPnd:", 7) == 0 ||
            strncmp(line, "ShdPnd:", 7) == 0)
            mask |= strtoull(line + 7, NULL, 16);
    }
    fclose(f);
    return (mask & (1ull << (signo - 1))) != 0;
}

/* Start the app and send 'deep' down; first is the session that asked,
 * left open.  Returns once 'deep' holds the loop down there.  The loop is
 * never reported stuck but while 'deep' holds it, then after stuck_ms (0:
 * never): under ASan beside other runs a turn of the app's start outlasted
 * 100 ms, and first's attach got a stuck report (then EPIPE for 'deep')
 * 7 times in 18. */
static void
deep_start(struct dcc *first, int stuck_ms)
{
    char line[128], cmd[32];
    size_t room = 0;
    long min = 0;

    rdv_setup();
    setenv("DIESEL_CONSOLE_STUCK_MS", "0", 1);
    app_start(&app, -1, NULL);
    attach(first);
    snprintf(cmd, sizeof(cmd), stuck_ms > 0 ? "deep %d" : "deep", stuck_ms);
    expect(first, cmd, 0, "| going down\nOK\n");
    ck_assert_msg(app_out_line(&app, line, sizeof(line), T(10000)) == 0,
        "no word from deep; log: %s", (app_drain(&app), app.log));
    ck_assert_msg(sscanf(line, "deep %zu %ld", &room, &min) == 2,
        "app said: %s", line);
    /* Deep enough to mean something: no signal frame fits down there. */
    ck_assert_msg(room < (size_t)min, "room %zu, a frame needs %ld", room,
        min);
}

/* Let 'deep' come back up; it says it did, its frames intact. */
static void
deep_release(void)
{
    char line[128];
    long depth = -1;

    ck_assert_int_eq(write(app.in, "x", 1), 1);
    ck_assert_msg(app_out_line(&app, line, sizeof(line), T(10000)) == 0,
        "deep did not come back; log: %s", (app_drain(&app), app.log));
    ck_assert_msg(sscanf(line, "deep returned %ld", &depth) == 1 &&
        depth > 0, "app said: %s", line);
}

/* The session that sent 'deep' down still works, and so does a new one;
 * the app ends cleanly, having logged nothing critical. */
static void
deep_end(struct dcc *first)
{
    struct dcc c;

    expect(first, "echo first", 0, "| first\nOK\n");
    /* A sleep, so that the loop has turned since 'deep' held it (the
     * app reports no stuck loop since 'deep' returned, which under
     * valgrind, whose signals wait for a system call, the next attach
     * got before the threshold was lifted then). */
    expect(first, "sleep 1", 0, "| slept\nOK\n");
    dcc_close(first);
    attach(&c);
    expect(&c, "echo again", 0, "| again\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    ck_assert_msg(strstr(app.log, "CRITICAL") == NULL, "log: %s", app.log);
    unsetenv("DIESEL_CONSOLE_STUCK_MS");
    rdv_teardown();
}

START_TEST(attach_signal_deep_in_a_green_thread_is_queued_then_served)
{
    struct dcc first, c;
    int64_t end;

    /* The handler never answers by itself here: it queues the request,
     * which the loop serves once 'deep' lets it turn. */
    deep_start(&first, 0);
    ck_assert_int_eq(dcc_listen(&c, app.pid, geteuid(), 1), 0);
    ck_assert_int_eq(dcc_signal(&c, 0), 0);
    /* Delivered (to the loop's thread: the app's other one blocks it)
     * before 'deep' may come up. */
    end = t_now_ms() + T(5000);
    while (proc_pending(app.pid, SIGTRAP) && t_now_ms() < end)
        usleep(1000);
    ck_assert(!proc_pending(app.pid, SIGTRAP));
    deep_release();
    ck_assert_msg(dcc_accept(&c, T(5000)) == 0, "accept: %s; log: %s",
        strerror(errno), (app_drain(&app), app.log));
    expect(&c, "echo queued", 0, "| queued\nOK\n");
    dcc_close(&c);
    deep_end(&first);
}
END_TEST

START_TEST(attach_signal_deep_in_a_green_thread_is_answered_by_the_handler)
{
    struct dcc first, c;
    char line[1024];
    int holds = 0;
    /* Under valgrind, 2 s: once 'deep' has returned, the loop gives its
     * stack back, which there took 344 ms without a turn, and the
     * attach after it got a (true) stuck report (the threshold now ends
     * with 'deep', but the margin costs little). */
    int after = under_valgrind() ? 2000 : 100;

    /* Stuck after that long: the handler attaches by itself and writes
     * the report (a backtrace through the deep frames, the table of
     * green threads), all on the alternate stack. */
    deep_start(&first, after);
    usleep((useconds_t)after * 3 * 1000);
    attach(&c);
    for (;;) {
        ck_assert_msg(dcc_read_line(&c, line, sizeof(line), T(5000)) == 0,
            "the report did not end; log: %s", (app_drain(&app), app.log));
        if (strncmp(line, "STUCK ", 6) == 0)
            break;
        ck_assert_msg(strncmp(line, "| ", 2) == 0, "line: %s", line);
        holds += strstr(line, "| green thread 'deep' (id ") == line &&
            strstr(line, ") holds it") != NULL;
    }
    ck_assert_int_eq(holds, 1);
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), -1);
    dcc_close(&c);
    ck_assert_msg(app_wait_log(&app, "the loop is stuck: reported to "
        "console pid", T(5000)), "log: %s", app.log);
    deep_release();
    deep_end(&first);
}
END_TEST

static void
storm(int signo)
{
    /* 100,000 signals; a tenth under valgrind, whose signal delivery is
     * slower by orders of magnitude. */
    enum { SENDERS = 4 };
    int EACH = under_valgrind() ? 2500 : 25000;
    pid_t senders[SENDERS];
    struct dcc c;
    int served = 0, st;
    unsigned long dropped;
    int sessions;

    char opt[16];

    rdv_setup();
    snprintf(opt, sizeof(opt), "-s%d", signo);
    app_start(&app, -1, opt);
    ck_assert_msg(dcc_attach(&c, app.pid, geteuid(), signo, T(5000)) == 0,
        "attach: %s", strerror(errno));
    /* Hold the loop while the storm begins, so that the pipe fills up. */
    ck_assert_int_eq(dcc_send(&c, "hog 1000\n", 9), 0);
    usleep(50000);
    for (int i = 0; i < SENDERS; i++) {
        senders[i] = fork();
        ck_assert_int_ge(senders[i], 0);
        if (senders[i] == 0) {
            for (int k = 0; k < EACH; k++) {
                union sigval v;
                v.sival_int = k + 1;
                if (sigqueue(app.pid, signo, v) != 0 && errno != EAGAIN)
                    _exit(1);
            }
            _exit(0);
        }
    }
    if ((st = dcc_reply(&c, reply, sizeof(reply), T(10000))) != 0) {
        int ast = app_stop(&app);
        ck_abort_msg("hog: %d (%s) [%s]; app status %#x; log: %.2000s", st,
            strerror(errno), reply, ast, app.log);
    }
    /* Serve all along. */
    for (;;) {
        int alive = 0;
        char want[64];

        for (int i = 0; i < SENDERS; i++)
            alive += senders[i] > 0 && waitpid(senders[i], &st,
                WNOHANG) == 0;
        snprintf(want, sizeof(want), "| %d\nOK\n", served);
        snprintf(reply, sizeof(reply), "echo %d", served);
        expect(&c, reply, 0, want);
        served++;
        if (!alive)
            break;
    }
    for (int i = 0; i < SENDERS; i++)
        waitpid(senders[i], &st, 0);
    /* Let the loop work through what is left in the pipe. */
    usleep(500000);
    expect(&c, "cstats", 0, NULL);
    ck_assert_int_eq(sscanf(reply, "| sessions=%d dropped=%lu", &sessions,
        &dropped), 2);
    app_drain(&app);
    ck_assert_int_eq(sessions, 1);
    ck_assert_int_eq(kill(app.pid, 0), 0);
    app_drain(&app);
    ck_assert_int_eq(t_count(app.log, "WARNING:Connected"), 1);
    dcc_close(&c);
    /* And a real attach still works afterwards. */
    ck_assert_int_eq(dcc_attach(&c, app.pid, geteuid(), signo, T(5000)), 0);
    expect(&c, "echo after the storm", 0, "| after the storm\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    {
        const char *p = strstr(app.log, "more console requests were refused");
        long quiet = 0;

        while (p != NULL && p > app.log && p[-1] != ':')
            p--;
        if (p != NULL)
            quiet = atol(p);
        fprintf(stderr, "signal storm (signal %d): %d commands served "
            "meanwhile; %lu requests dropped (pipe full), %d refusals "
            "logged, %ld more counted\n", signo, served, dropped,
            t_count(app.log, "refused:"), quiet);
        /* SIGTRAP is a standard signal: a storm of it coalesces into a
         * few deliveries, which may or may not exceed the ten refusals
         * a second that are logged one by one.  A real-time signal
         * queues every one, so there the rest must have been counted
         * (but valgrind drops most of a storm itself: "Signal 5 being
         * dropped from thread 0's queue"). */
        ck_assert_int_gt(t_count(app.log, "refused:"), 0);
        if (signo != SIGTRAP && !under_valgrind())
            ck_assert_msg(p != NULL, "the storm's refusals were not counted");
    }
    rdv_teardown();
    if (signo != SIGTRAP && !under_valgrind())
        ck_assert_uint_gt(dropped, 0);
}

START_TEST(signal_storm_never_blocks_and_sessions_stay_bounded)
{
    /* valgrind takes SIGTRAP for itself: a storm of it fills its own
     * queue ("Signal 5 being dropped from thread 0's queue") and stalls
     * the app for minutes.  The real-time storm below still runs there. */
    if (under_valgrind()) {
        fprintf(stderr, "%s: skipped under valgrind\n", __func__);
        return;
    }
    storm(SIGTRAP);
}
END_TEST

START_TEST(signal_storm_of_queued_signals_drops_and_counts_the_excess)
{
    /* Real-time signals queue in the kernel: all of them reach the
     * handler, most while the loop is held, and the pipe fills. */
    storm(SIGRTMIN + 4);
}
END_TEST

START_TEST(two_sessions_are_served_independently)
{
    int go[2], st;
    pid_t other;
    struct dcc c;
    char b;

    app_setup();
    ck_assert_int_eq(pipe(go), 0);
    attach(&c);
    other = fork();
    ck_assert_int_ge(other, 0);
    if (other == 0) {
        struct dcc k;
        char r[256], want[64];
        int64_t t;

        dcc_close(&c);
        if (dcc_attach(&k, app.pid, geteuid(), 0, T(5000)) != 0)
            _exit(2);
        (void)!write(go[1], "a", 1);
        /* The first session sleeps in a command: we are answered. */
        usleep(100000);
        t = t_now_ms();
        if (dcc_command(&k, "echo b", r, sizeof(r), T(2000)) != 0 ||
            strcmp(r, "| b\nOK\n") != 0)
            _exit(3);
        if (t_now_ms() - t > 300)
            _exit(4);
        for (int i = 0; i < 1000; i++) {
            snprintf(want, sizeof(want), "echo b%d", i);
            if (dcc_command(&k, want, r, sizeof(r), T(2000)) != 0)
                _exit(5);
            snprintf(want, sizeof(want), "| b%d\nOK\n", i);
            if (strcmp(r, want) != 0)
                _exit(6);
        }
        _exit(0);
    }
    close(go[1]);
    ck_assert_int_eq(read(go[0], &b, 1), 1);
    expect(&c, "sleep 1000", 0, "| slept\nOK\n");
    for (int i = 0; i < 1000; i++) {
        char cmd[32], want[32];
        snprintf(cmd, sizeof(cmd), "echo a%d", i);
        snprintf(want, sizeof(want), "| a%d\nOK\n", i);
        expect(&c, cmd, 0, want);
    }
    waitpid(other, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "other: %#x", st);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    ck_assert_int_eq(t_count(app.log, "WARNING:Connected"), 2);
    rdv_teardown();
}
END_TEST

START_TEST(fifth_session_is_told_busy)
{
    int ready[2], done[2], st;
    pid_t holders[4];
    struct dcc c;
    char line[256], b;

    app_setup();
    ck_assert_int_eq(pipe(ready), 0);
    ck_assert_int_eq(pipe(done), 0);
    for (int i = 0; i < 4; i++) {
        holders[i] = fork();
        ck_assert_int_ge(holders[i], 0);
        if (holders[i] == 0) {
            struct dcc k;

            close(done[1]);
            if (dcc_attach(&k, app.pid, geteuid(), 0, T(5000)) != 0)
                _exit(2);
            (void)!write(ready[1], "r", 1);
            (void)!read(done[0], &b, 1);
            _exit(0);
        }
        ck_assert_int_eq(read(ready[0], &b, 1), 1);
    }
    ck_assert_int_eq(dcc_listen(&c, app.pid, geteuid(), 1), 0);
    ck_assert_int_eq(dcc_signal(&c, 0), 0);
    ck_assert_int_eq(dcc_accept(&c, T(5000)), 0);
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(2000)), 0);
    ck_assert_str_eq(line, "BUSY 4");
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(2000)), -1);
    dcc_close(&c);
    close(done[1]);
    for (int i = 0; i < 4; i++) {
        waitpid(holders[i], &st, 0);
        ck_assert_int_eq(WEXITSTATUS(st), 0);
    }
    ck_assert(app_wait_log(&app, "refused: 4 sessions already open",
        T(2000)));
    /* Once they are gone, a session comes up again. */
    for (int i = 0; i < 200 && t_count(app.log, "Disconnected") < 4; i++) {
        usleep(10000);
        app_drain(&app);
    }
    attach(&c);
    expect(&c, "echo room again", 0, "| room again\nOK\n");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* Issue 11, item 7: the console's self-pipe is watched, yet the loop
 * sees that no green thread of the program can be woken. */
START_TEST(deadlock_with_the_console_installed_is_logged_once_and_sync_shows_it)
{
    struct dcc c;

    rdv_setup();
    app_start(&app, -1, "-d");
    ck_assert_msg(app_wait_log(&app, "deadlock: every green thread is "
        "parked with nothing that could wake any of them (3 green threads, "
        "3 on events, queues, locks or joins", T(5000)), "%s", app.log);
    ck_assert_msg(app_wait_log(&app, " main: join 2 left, for ", T(2000)),
        "%s", app.log);
    ck_assert_msg(strstr(app.log, " left: lock b, held by 3 right, for ")
        != NULL, "%s", app.log);
    ck_assert_msg(strstr(app.log, "WARNING:deadlock: cycle: 3 right -> "
        "lock a -> 2 left -> lock b -> 3 right\n") != NULL, "%s", app.log);
    attach(&c);
    expect(&c, "sync", 0, NULL);
    ck_assert_msg(strstr(reply, "| lock b: held by 3 (right) for ") != NULL &&
        strstr(reply, "| lock a: held by 2 (left) for ") != NULL &&
        strstr(reply, "|   waiting: 2 (left) ") != NULL &&
        strstr(reply, "| cycle: 2 left -> lock b -> 3 right -> lock a -> "
        "2 left\n") != NULL &&
        strstr(reply, "| 2 objects, 1 cycle\n") != NULL, "%s", reply);
    expect(&c, "sync --json", 0, NULL);
    ck_assert_msg(strstr(reply, "\"cycles\":[[{\"id\":2,\"name\":\"left\","
        "\"waits_on\":\"lock\",\"object\":\"b\"},{\"id\":3,") != NULL,
        "%s", reply);
    /* The session's commands turned the loop: still one report. */
    app_drain(&app);
    ck_assert_int_eq(t_count(app.log, "every green thread is parked"), 1);
    /* The cycle, logged when it closed and again in the report. */
    ck_assert_int_eq(t_count(app.log, "deadlock: cycle:"), 2);
    ck_assert_ptr_null(strstr(app.log, "cancelling them all"));
    /* Break it: left fails, lets go of a, and right gets through. */
    expect(&c, "cancel 2", 0, NULL);
    ck_assert_msg(app_wait_log(&app, "{app} INFO:left returned 2", T(5000)),
        "%s", app.log);
    expect(&c, "sync", 0, NULL);
    ck_assert_msg(strstr(reply, "| lock a: free\n") != NULL &&
        strstr(reply, "| 2 objects, 0 cycles\n") != NULL, "%s", reply);
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    ck_assert_int_eq(t_count(app.log, "every green thread is parked"), 1);
    rdv_teardown();
}
END_TEST

/* Issue 11, item 6: a follower that does not read never holds the loop;
 * what it missed is counted and said. */
START_TEST(log_follow_drops_and_counts_what_a_slow_client_does_not_take)
{
    struct dcc c, d;
    char line[512];
    unsigned long long dropped = 0;
    int i;

    app_setup();
    attach(&c);
    ck_assert_int_eq(dcc_send(&c, "log follow\n", 11), 0);
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), 0);
    ck_assert_str_eq(line, "| following the log: Ctrl-C in dconsole stops "
        "it (a raw client sends a line)");
    /* c reads nothing while 20,000 lines are logged over a second or
     * more: the other session is served all the while. */
    attach(&d);
    ck_assert_int_eq(dcc_command(&d, "logs 20000", reply, sizeof(reply),
        T(60000)), 0);
    ck_assert_str_eq(reply, "| 20000 lines logged\nOK\n");
    expect(&d, "echo still here", 0, "| still here\nOK\n");
    dcc_close(&d);
    /* Read again: the lines that fitted, then the count of the others. */
    for (i = 0; i < 200000 && dropped == 0; i++) {
        ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), 0);
        if (sscanf(line, "| (%llu lines dropped: the console did not take "
            "them in time)", &dropped) != 1)
            ck_assert_msg(strncmp(line, "| [", 3) == 0, "%s", line);
    }
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_lt(dropped, 20000);
    /* A line ends it; the line is then run as usual. */
    ck_assert_int_eq(dcc_send(&c, "echo over\n", 10), 0);
    do {
        ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), 0);
    } while (strcmp(line, "| stopped following the log") != 0);
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), 0);
    ck_assert_str_eq(line, "OK");
    ck_assert_int_eq(dcc_read_line(&c, line, sizeof(line), T(5000)), 0);
    ck_assert_str_eq(line, "| over");
    dcc_close(&c);
    ck_assert_int_eq(app_stop(&app), 0);
    rdv_teardown();
}
END_TEST

/* ---- In process: the pieces ------------------------------------------------ */

START_TEST(words_split_on_blanks_and_group_in_quotes)
{
    char line[128];
    char *argv[8];
    const char *why;
    int n;

    strcpy(line, " a\tb  \"c d\"e\"\" \"\\\"\\\\\\n\" ");
    n = diesel__console_split(line, strlen(line), argv, 8, &why);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(argv[0], "a");
    ck_assert_str_eq(argv[1], "b");
    ck_assert_str_eq(argv[2], "c de");
    ck_assert_str_eq(argv[3], "\"\\\\n");
    strcpy(line, "a b c");
    ck_assert_int_eq(diesel__console_split(line, 5, argv, 2, &why), -1);
    ck_assert_str_eq(why, "too many words");
}
END_TEST

START_TEST(line_assembler_keeps_at_most_the_limit)
{
    static struct diesel__console_lines lb;
    static char data[10000];
    size_t used;

    diesel__console_lines_init(&lb);
    ck_assert_int_eq(diesel__console_lines_next(&lb, "ab", 2, &used),
        DIESEL__CONSOLE_MORE);
    ck_assert_int_eq(diesel__console_lines_next(&lb, "c\nd", 3, &used),
        DIESEL__CONSOLE_LINE);
    ck_assert_uint_eq(used, 2);
    ck_assert_uint_eq(lb.len, 3);
    ck_assert_int_eq(memcmp(lb.buf, "abc", 3), 0);
    memset(data, 'x', sizeof(data));
    data[9999] = '\n';
    ck_assert_int_eq(diesel__console_lines_next(&lb, data, sizeof(data),
        &used), DIESEL__CONSOLE_TOO_LONG);
    ck_assert_uint_eq(used, 4096);
    ck_assert_int_eq(diesel__console_lines_next(&lb, data + used,
        sizeof(data) - used, &used), DIESEL__CONSOLE_MORE);
    ck_assert_int_eq(diesel__console_lines_next(&lb, "ok\n", 3, &used),
        DIESEL__CONSOLE_LINE);
    ck_assert_uint_eq(lb.len, 2);
}
END_TEST

struct membuf {
    char buf[4096];
    size_t n;
};

static int
mem_write(void *ctx, const char *buf, size_t len)
{
    struct membuf *m = ctx;

    ck_assert_uint_lt(m->n + len, sizeof(m->buf));
    memcpy(m->buf + m->n, buf, len);
    m->n += len;
    m->buf[m->n] = '\0';
    return 0;
}

START_TEST(framing_prefixes_escapes_and_ends_with_a_status)
{
    struct diesel_console_out o;
    struct membuf m = { "", 0 };
    struct diesel__console_sink sink = { mem_write, &m, 0 };

    diesel__console_out_init(&o);
    diesel_console_printf(&o, "one\ntwo\x1b\x7f\n\nlast");
    ck_assert_int_eq(diesel__console_frame(&sink, &o, 0), 0);
    ck_assert_str_eq(m.buf, "| one\n| two\\x1b\\x7f\n| \n| last\nOK\n");
    m.n = 0;
    diesel__console_out_reset(&o);
    ck_assert_int_eq(diesel_console_error(&o, "bad\nthing\x01"), -1);
    ck_assert_int_eq(diesel__console_frame(&sink, &o, -1), 0);
    ck_assert_str_eq(m.buf, "ERR bad thing\\x01\n");
    m.n = 0;
    sink.human = 1;
    diesel__console_out_reset(&o);
    diesel_console_printf(&o, "plain\n");
    ck_assert_int_eq(diesel__console_frame(&sink, &o, 0), 0);
    ck_assert_str_eq(m.buf, "plain\n");
    diesel__console_out_fini(&o);
}
END_TEST

START_TEST(reply_text_is_capped)
{
    struct diesel_console_out o;
    static char chunk[1 << 20];
    int r = 0;

    diesel__console_out_init(&o);
    memset(chunk, 'y', sizeof(chunk));
    for (int i = 0; i < 20 && r >= 0; i++)
        r = diesel__console_out_write(&o, chunk, sizeof(chunk));
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, ENOBUFS);
    ck_assert_uint_le(o.len, DIESEL__CONSOLE_OUT_LIMIT);
    ck_assert_uint_le(o.cap, DIESEL__CONSOLE_OUT_LIMIT);
    ck_assert_int_eq(diesel_console_printf(&o, "more"), -1);
    ck_assert(memmem(o.buf, o.len, "[output cut at ", 15) != NULL);
    diesel__console_out_fini(&o);
}
END_TEST

/*
 * Which built-ins take --json: a command's help line says "[--json]"
 * exactly when "NAME --json" replies with JSON, and diesel-console(7)'s
 * list of commands marks the same ones (the page left out pid, log,
 * cancel, get and help; help left it out of log and cancel).
 */
static int
json_victim(void *arg)
{
    (void)arg;
    return diesel_sleep(-1);
}

static int
json_forms_agree(void *arg)
{
    /* Each built-in with arguments that make it succeed. */
    static const char *const lines[][2] = {
        { "help", "help --json" }, { "pid", "pid --json" },
        { "tasks", "tasks --json" }, { "stacks", "stacks --json" },
        { "stats", "stats --json" }, { "mem", "mem --json" },
        { "fds", "fds --json" }, { "log", "log --json" },
        { "cancel", NULL }, { "get", "get --json" },
        { "set", "set jsonvar 7 --json" }, { "quit", "quit --json" },
        { "account", "account on --json" }, { "hist", "hist --json" },
        { "top", "top 0.01 --json" },
        { "sync", "sync --json" }, { "profile", "profile 0.01 --json" },
    };
    unsigned *page = arg, says = 0, gives = 0;
    static int64_t v;
    char line[64], victim[64];
    int64_t id;

    ck_assert_int_eq(diesel_console_var_int("jsonvar", &v, 1), 0);
    id = diesel_task_spawn("victim", json_victim, NULL, 0);
    ck_assert_int_gt(id, 0);
    diesel_task_yield();
    snprintf(victim, sizeof(victim), "cancel %lld --json", (long long)id);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct t_reply r;
        const char *name = lines[i][0], *colon;
        char *help;

        /* The help line: "NAME [--json] ...: what it does". */
        snprintf(line, sizeof(line), "help %s", name);
        help = t_console_ok(line);
        ck_assert_msg(help[0] != '\0', "%s: nothing", line);
        colon = strstr(help, "  ");   /* USAGE  what it does */
        if (strstr(help, "[--json]") != NULL && colon != NULL &&
            strstr(help, "[--json]") < colon)
            says |= 1u << i;
        free(help);
        /* The reply to --json. */
        snprintf(line, sizeof(line), "%s",
            lines[i][1] != NULL ? lines[i][1] : victim);
        r = t_console(line);
        /* Those that do not speak JSON refuse --json (set, quit). */
        if (r.rc != 0)
            ck_assert_msg(strstr(r.err, "does not speak JSON") != NULL,
                "%s: ERR %s", line, r.err);
        if (r.rc == 0 && (r.out[0] == '{' || r.out[0] == '['))
            gives |= 1u << i;
        free(r.out);
    }
    ck_assert_msg(says == gives, "help says --json for %#x, --json gives "
        "JSON for %#x (bit i is line i)", says, gives);
    ck_assert_msg(*page == gives, "diesel-console(7) marks --json for "
        "%#x, --json gives JSON for %#x", *page, gives);
    return 0;
}

/* The errors an operator can reach in sync and log follow. */
static void
refused(const char *cmd, const char *want)
{
    struct t_reply r = t_console(cmd);

    t_reply_err(&r, cmd, want, 1);
}

static int
refusals_in_a_loop(void *arg)
{
    (void)arg;
    refused("sync now", "usage: sync [--json] [--loop NAME]");
    /* Run from a command but not in a session: nowhere to stream. */
    refused("log follow", "log follow streams into a console session: run "
        "it from dconsole");
    refused("log follow --json", "log follow has no JSON form: use log tail "
        "--json");
    refused("log follow now", "usage: log follow");
    return 0;
}

START_TEST(sync_and_log_follow_say_what_they_cannot_do)
{
    diesel__console_init();
    refused("sync", "no loop runs on this thread");
    ck_assert_int_eq(t_run(refusals_in_a_loop, NULL), 0);
}
END_TEST

START_TEST(builtins_take_json_as_help_and_the_page_say)
{
    static const char *const names[] = { "help", "pid", "tasks", "stacks",
        "stats", "mem", "fds", "log", "cancel", "get", "set", "quit",
        "account", "hist", "top", "sync", "profile" };
    char path[4096], buf[512];
    unsigned page = 0;
    int in_list = 0;
    FILE *f;

    /* The page: ".It Ic NAME ... Fl -json ..." in its Commands list. */
    snprintf(path, sizeof(path), "%s/../man/diesel-console.7", t_dir());
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (strncmp(buf, ".Ss ", 4) == 0 || strncmp(buf, ".Sh ", 4) == 0)
            in_list = strcmp(buf, ".Ss Commands\n") == 0;
        if (!in_list || strncmp(buf, ".It Ic ", 7) != 0)
            continue;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            size_t n = strlen(names[i]);

            if (strncmp(buf + 7, names[i], n) == 0 &&
                (buf[7 + n] == ' ' || buf[7 + n] == '\n') &&
                strstr(buf, "Fl -json") != NULL)
                page |= 1u << i;
        }
    }
    fclose(f);
    ck_assert_int_eq(t_run(json_forms_agree, &page), 0);
}
END_TEST

/* ---- In process: daemons, the loop's end, the local console ---------------- */

static int daemon_saw;

static int
daemon_body(void *arg)
{
    (void)arg;
    daemon_saw = diesel_sleep(-1) == -1 ? errno : 0;
    return 0;
}

static int
spawn_daemon_and_return(void *arg)
{
    int64_t id = diesel_task_spawn("daemon", daemon_body, NULL, 0);

    (void)arg;
    diesel__task_set_daemon(diesel__task_find(diesel__loop, id));
    diesel_sleep(10);
    return 3;
}

START_TEST(daemon_green_threads_do_not_keep_the_loop_alive)
{
    int64_t t0 = t_now_ms();

    ck_assert_int_eq(t_run(spawn_daemon_and_return, NULL), 3);
    ck_assert_int_eq(daemon_saw, ECANCELED);
    ck_assert_int_lt(t_now_ms() - t0, 2000);
}
END_TEST

static int
install_inside_and_return(void *arg)
{
    (void)arg;
    ck_assert_int_eq(diesel_console_install(0), 0);
    ck_assert_int_eq(diesel_console_install(0), -1);
    ck_assert_int_eq(errno, EBUSY);
    return 5;
}

static int
just_return(void *arg)
{
    (void)arg;
    return 6;
}

START_TEST(program_with_the_console_installed_still_ends)
{
    int fds = t_count_fds();

    /* Installed inside the loop: watched at once, let go at its end. */
    ck_assert_int_eq(t_run(install_inside_and_return, NULL), 5);
    ck_assert_int_eq(t_count_fds(), fds + 2);
    /* Installed before: the next loop picks it up and still ends. */
    ck_assert_int_eq(t_run(just_return, NULL), 6);
    ck_assert_int_eq(diesel_console_uninstall(), 0);
    ck_assert_int_eq(t_count_fds(), fds);
    ck_assert_int_eq(diesel_console_uninstall(), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_install(SIGKILL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_install(SIGSEGV), -1);
    ck_assert_int_eq(diesel_console_install(100000), -1);
}
END_TEST

START_TEST(registration_checks_names_and_duplicates)
{
    int64_t v;
    char s[4];

    ck_assert_int_eq(diesel_console_command("ok-name_2", "h",
        (diesel_console_fn)1, NULL), 0);
    ck_assert_int_eq(diesel_console_command("ok-name_2", "h",
        (diesel_console_fn)1, NULL), -1);
    ck_assert_int_eq(errno, EEXIST);
    /* Built-ins are taken too. */
    ck_assert_int_eq(diesel_console_command("help", "h",
        (diesel_console_fn)1, NULL), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(diesel_console_command("Upper", "h",
        (diesel_console_fn)1, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_command("", "h", (diesel_console_fn)1,
        NULL), -1);
    ck_assert_int_eq(diesel_console_command("a b", "h", (diesel_console_fn)1,
        NULL), -1);
    ck_assert_int_eq(diesel_console_command("x", "h", NULL, NULL), -1);
    ck_assert_int_eq(diesel_console_var_int("http.timeout", &v, 1), 0);
    ck_assert_int_eq(diesel_console_var_int("http.timeout", &v, 1), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(diesel_console_var_string("s", s, 0, 1), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* Commands and variables share one namespace: a variable cannot take
     * a command's name (a built-in's or not), nor a command a variable's. */
    ck_assert_int_eq(diesel_console_var_int("ok-name_2", &v, 1), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(diesel_console_var_string("stats", s, sizeof(s), 0), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(diesel_console_var_int("workers", &v, 0), 0);
    ck_assert_int_eq(diesel_console_command("workers", "h",
        (diesel_console_fn)1, NULL), -1);
    ck_assert_int_eq(errno, EEXIST);
}
END_TEST

static int sv[2];
static char local_got[4096];

static int
local_client(void *arg)
{
    static const char req[] = "echo local\nget\nquit\necho never\n";
    size_t n = 0;

    (void)arg;
    ck_assert_int_eq(write(sv[1], req, sizeof(req) - 1),
        (ssize_t)sizeof(req) - 1);
    for (;;) {
        ssize_t r;
        if (diesel_fd_wait(sv[1], DIESEL_READ, 2000) < 0)
            break;
        r = read(sv[1], local_got + n, sizeof(local_got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        local_got[n] = '\0';
        if (strstr(local_got, "OK\nOK\n") != NULL &&
            strstr(local_got, "| local\nOK\n") != NULL &&
            t_count(local_got, "OK\n") >= 3)
            break;
    }
    return 0;
}

static int
echo_cmd(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s%s", i > 1 ? " " : "", argv[i]);
    diesel_console_printf(out, "\n");
    return 0;
}

static int
local_main(void *arg)
{
    int64_t id;

    (void)arg;
    id = diesel_task_spawn("client", local_client, NULL, 0);
    ck_assert_int_eq(diesel_console_serve_fds(sv[0], sv[0]), 0);
    diesel_task_join(id, NULL, -1);
    return 0;
}

START_TEST(local_console_serves_the_protocol_on_descriptors)
{
    ck_assert_int_eq(diesel_console_serve_fds(0, 1), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_console_command("echo", "echo", echo_cmd, NULL),
        0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(t_run(local_main, NULL), 0);
    ck_assert_msg(strcmp(local_got, "| local\nOK\nOK\nOK\n") == 0, "[%s]",
        local_got);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static int pty_master;
static char pty_got[4096];

static int
pty_client(void *arg)
{
    size_t n = 0;
    int second = 0;

    (void)arg;
    ck_assert_int_eq(write(pty_master, "echo tty\n", 9), 9);
    while (n < sizeof(pty_got) - 1 &&
        t_count(pty_got, ">>> ") < 3) {
        /* One line at a time, as someone typing. */
        if (t_count(pty_got, ">>> ") == 2 && !second) {
            second = 1;
            ck_assert_int_eq(write(pty_master, "nosuch\n", 7), 7);
        }
        ssize_t r;
        if (diesel_fd_wait(pty_master, DIESEL_READ, 2000) < 0)
            break;
        r = read(pty_master, pty_got + n, sizeof(pty_got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        pty_got[n] = '\0';
    }
    /* EOF for the console: ^D at the start of a line. */
    ck_assert_int_eq(write(pty_master, "\004", 1), 1);
    return 0;
}

static int
pty_main(void *arg)
{
    int slave = *(int *)arg;
    int64_t id = diesel_task_spawn("client", pty_client, NULL, 0);

    ck_assert_int_eq(diesel_console_serve_fds(slave, slave), 0);
    diesel_task_join(id, NULL, -1);
    return 0;
}

START_TEST(local_console_on_a_terminal_prompts_and_answers_plainly)
{
    struct termios tio;
    int slave;

    ck_assert_int_eq(diesel_console_command("echo", "echo", echo_cmd, NULL),
        0);
    pty_master = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(pty_master, 0);
    ck_assert_int_eq(grantpt(pty_master), 0);
    ck_assert_int_eq(unlockpt(pty_master), 0);
    slave = open(ptsname(pty_master), O_RDWR | O_NOCTTY);
    ck_assert_int_ge(slave, 0);
    /* Canonical input, but no echo and no CR/LF games on output. */
    tcgetattr(slave, &tio);
    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    tio.c_oflag &= ~(tcflag_t)OPOST;
    tcsetattr(slave, TCSANOW, &tio);
    ck_assert_int_eq(t_run(pty_main, &slave), 0);
    ck_assert_msg(strcmp(pty_got, ">>> tty\n>>> ERR unknown command "
        "\"nosuch\" (try help)\n>>> ") == 0, "[%s]", pty_got);
    close(slave);
    close(pty_master);
}
END_TEST

Suite *
diesel_console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("protocol");
    TCase *sec = tcase_create("security");
    TCase *res = tcase_create("resources");
    TCase *faults = tcase_create("faults");
    TCase *unit = tcase_create("pieces");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, greeting_names_pid_program_and_echoes_the_nonce);
    tcase_add_test(tc, a_service_whose_green_threads_only_yield_is_attached);
    tcase_add_test(tc, eof_ends_the_session_too);
    tcase_add_test(tc, help_lists_every_command_sorted_or_one);
    tcase_add_test(tc, get_and_set_variables_of_every_type);
    tcase_add_test(tc, cancel_is_logged_with_the_session_that_asked);
    tcase_add_test(tc, set_says_what_it_set_and_refuses_values_out_of_range);
    tcase_add_test(tc, registered_commands_print_fail_and_are_escaped);
    tcase_add_test(tc, bad_bytes_get_an_error_each_and_the_session_goes_on);
    tcase_add_test(tc, line_at_the_limit_passes_one_byte_more_does_not);
    tcase_add_test(tc,
        megabyte_line_is_refused_at_the_limit_and_memory_stays_flat);
    tcase_add_test(tc, ten_thousand_pipelined_commands_reply_in_order);
    tcase_add_test(tc, reply_is_cut_at_sixteen_mebibytes_with_a_note_and_err);
    suite_add_tcase(s, tc);

    tcase_set_timeout(sec, 60);
    tcase_add_test(sec, directory_made_by_another_user_is_refused);
    tcase_add_test(sec, symlinked_directory_is_refused);
    tcase_add_test(sec, nothing_connects_to_the_old_tcp_port);
    tcase_add_test(sec, client_closes_a_foreign_connector_without_a_byte);
    tcase_add_test(sec, forged_sender_pid_is_refused);
    tcase_add_test(sec, breakpoint_kills_with_sigtrap_and_starts_no_session);
    tcase_add_test(sec, root_attaches_to_an_app_of_another_user_and_is_logged);
    tcase_add_test(sec, peer_of_a_third_user_is_refused);
    tcase_add_test(sec,
        foreign_tgkill_and_kill_are_refused_and_the_service_lives);
    tcase_add_test(sec, advertisement_is_written_at_install_and_removed_after);
    tcase_add_test(sec, unsafe_directory_means_no_advertisement);
    tcase_add_test(sec, connect_goes_to_the_directory_checked_despite_a_swap);
    suite_add_tcase(s, sec);

    tcase_set_timeout(res, 120);
    tcase_add_test(res, session_leaves_no_socket_or_descriptor_behind);
    tcase_add_test(res, fifty_attach_detach_cycles_leave_no_descriptor_behind);
    tcase_add_test(res, attach_takes_milliseconds);
    tcase_add_test(res, uninstall_gives_the_signal_back_and_closes_the_pipe);
    suite_add_tcase(s, res);

    tcase_set_timeout(faults, 120);
    tcase_add_test(faults, client_killed_mid_reply_leaves_the_app_unharmed);
    tcase_add_test(faults,
        reader_that_stops_reading_is_dropped_after_the_write_timeout);
    tcase_add_test(faults,
        descriptor_table_full_fails_the_attach_cleanly_and_recovers);
    tcase_add_test(faults, signal_storm_never_blocks_and_sessions_stay_bounded);
    tcase_add_test(faults,
        signal_storm_of_queued_signals_drops_and_counts_the_excess);
    tcase_add_test(faults, two_sessions_are_served_independently);
    tcase_add_test(faults, fifth_session_is_told_busy);
    tcase_add_test(faults,
        deadlock_with_the_console_installed_is_logged_once_and_sync_shows_it);
    tcase_add_test(faults,
        log_follow_drops_and_counts_what_a_slow_client_does_not_take);
    tcase_add_test(faults,
        attach_signal_deep_in_a_green_thread_is_queued_then_served);
    tcase_add_test(faults,
        attach_signal_deep_in_a_green_thread_is_answered_by_the_handler);
    suite_add_tcase(s, faults);

    tcase_set_timeout(unit, 30);
    tcase_add_test(unit, words_split_on_blanks_and_group_in_quotes);
    tcase_add_test(unit, line_assembler_keeps_at_most_the_limit);
    tcase_add_test(unit, framing_prefixes_escapes_and_ends_with_a_status);
    tcase_add_test(unit, reply_text_is_capped);
    tcase_add_test(unit, daemon_green_threads_do_not_keep_the_loop_alive);
    tcase_add_test(unit, program_with_the_console_installed_still_ends);
    tcase_add_test(unit, registration_checks_names_and_duplicates);
    tcase_add_test(unit, builtins_take_json_as_help_and_the_page_say);
    tcase_add_test(unit, sync_and_log_follow_say_what_they_cannot_do);
    tcase_add_test(unit, local_console_serves_the_protocol_on_descriptors);
    tcase_add_test(unit,
        local_console_on_a_terminal_prompts_and_answers_plainly);
    suite_add_tcase(s, unit);
    return s;
}
