/*
 * check_local.c: `dconsole local`, the console on dconsole's own loop
 * with commands to try the library by hand, driven on a real pty and
 * through a pipe against the real example services (examples/httphello,
 * examples/echo, examples/redisping), started here on port 0; and what it
 * is built on: diesel_console_client_open over a socketpair served by
 * diesel_console_serve_fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"

/* ---- The example services ------------------------------------------------ */

struct service {
    struct t_proc p;
    char addr[64];          /* "127.0.0.1:PORT" */
};

/* examples/NAME on 127.0.0.1:0, once it logs where it listens. */
static struct service *
service_start(const char *name)
{
    struct service *s = calloc(1, sizeof(*s));
    char path[1024], *at, *end;
    char *argv[] = { (char *)name, "127.0.0.1:0", NULL };

    ck_assert_ptr_nonnull(s);
    snprintf(path, sizeof(path), "%s/../examples/%s", t_dir(), name);
    t_proc_start(&s->p, path, argv, NULL);
    ck_assert_msg(t_proc_expect(&s->p, 1, "listening on ", 10000),
        "%s did not start: %s", name, s->p.ebuf);
    /* "... listening on 127.0.0.1:PORT" and a newline. */
    ck_assert_msg(t_proc_expect(&s->p, 1, "\n",  5000), "%s", s->p.ebuf);
    at = strstr(s->p.ebuf, "listening on ") + 13;
    end = at + strcspn(at, " \n,");
    snprintf(s->addr, sizeof(s->addr), "%.*s", (int)(end - at), at);
    ck_assert_msg(strncmp(s->addr, "127.0.0.1:", 10) == 0 &&
        atoi(s->addr + 10) > 0, "%s: no address in %s", name, s->p.ebuf);
    return s;
}

static void
service_stop(struct service *s)
{
    kill(s->p.pid, SIGTERM);
    t_proc_wait(&s->p, 30000);
    free(s);
}

/* ---- dconsole local ------------------------------------------------------ */

static int
exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `dconsole local` with script on standard input (a pipe): its exit
 * code; p holds what it printed. */
static int
local_piped(struct t_proc *p, const char *script)
{
    char *argv[] = { "dconsole", "local", NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    size_t n = strlen(script);
    int st;

    t_proc_start(p, t_tool_path("dconsole"), argv, &how);
    ck_assert_int_eq(write(p->in, script, n), (ssize_t)n);
    close(p->in);
    p->in = -1;
    st = t_proc_wait(p, 30000);
    ck_assert_msg(st != -1, "dconsole local did not end: %s %s", p->obuf,
        p->ebuf);
    return exit_code(st);
}

static char home[64];
static pid_t home_owner;

static void
home_remove(void)
{
    char cmd[128];

    if (home[0] != '\0' && getpid() == home_owner) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
        if (system(cmd) != 0) {
            /* Left in /tmp: harmless. */
        }
    }
}

/* A fresh HOME, so that the history goes nowhere that matters; removed
 * when the test's process exits. */
static void
home_make(void)
{
    strcpy(home, "/tmp/diesel-local-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(home));
    home_owner = getpid();
    atexit(home_remove);
    setenv("HOME", home, 1);
}

/* dconsole local with its standard input and output on a new pty. */
static void
term_start(struct t_proc *p)
{
    char *argv[] = { "dconsole", "local", NULL };
    struct t_proc_how how = { -1, NULL, NULL };
    struct winsize ws = { 24, 100, 0, 0 };
    int m = posix_openpt(O_RDWR | O_NOCTTY);

    ck_assert_int_ge(m, 0);
    ck_assert_int_eq(grantpt(m), 0);
    ck_assert_int_eq(unlockpt(m), 0);
    ioctl(m, TIOCSWINSZ, &ws);
    home_make();
    how.pty_name = ptsname(m);
    t_proc_start(p, t_tool_path("dconsole"), argv, &how);
    p->out = m;
    ck_assert_msg(t_proc_expect(p, 0, ">>> ", 10000), "no prompt: %s %s",
        p->obuf, p->ebuf);
}

/* Type keys; wait for expect (in the output or, err, the error output)
 * after them, then for the next prompt. */
static void
term_type_in(struct t_proc *p, const char *keys, int err, const char *expect)
{
    size_t mark = p->on, emark = p->en, at;
    int64_t end = t_now_ms() + t_slow(10000);

    ck_assert_int_eq(write(p->out, keys, strlen(keys)),
        (ssize_t)strlen(keys));
    if (expect == NULL)
        return;
    while (strstr(err ? p->ebuf + emark : p->obuf + mark, expect) == NULL) {
        ck_assert_msg(t_now_ms() < end, "no \"%s\" after typing \"%s\": "
            "%s / %s", expect, keys, p->obuf + mark, p->ebuf + emark);
        t_proc_pump(p, 20);
    }
    at = err ? mark : (size_t)(strstr(p->obuf + mark, expect) - p->obuf);
    while (strstr(p->obuf + at, ">>> ") == NULL) {
        ck_assert_msg(t_now_ms() < end, "no prompt after \"%s\"", keys);
        t_proc_pump(p, 20);
    }
}

static void
term_type(struct t_proc *p, const char *keys, const char *expect)
{
    term_type_in(p, keys, 0, expect);
}

/* Wait for the editor to hand the terminal back (ISIG on again: the
 * line was taken and its command runs), so that Ctrl-C is a signal and
 * not a key the editor reads. */
static void
term_wait_cooked(struct t_proc *p)
{
    int64_t end = t_now_ms() + t_slow(10000);
    struct termios t;

    for (;;) {
        ck_assert_int_eq(tcgetattr(p->out, &t), 0);
        if (t.c_lflag & ISIG)
            return;
        ck_assert_msg(t_now_ms() < end, "the editor kept the terminal raw");
        t_proc_pump(p, 20);
    }
}

static void
term_quit(struct t_proc *p)
{
    term_type(p, "quit\r", NULL);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 20000)), 0);
}

/*
 * The session on a terminal: fetch from httphello, connect, send
 * and readline with echo, RESP inline commands with redisping; the
 * built-ins show dconsole's own loop; help lists the client commands.
 */
START_TEST(local_tries_the_example_services_on_a_pty)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *http = service_start("httphello");
    struct service *echo = service_start("echo");
    struct service *redis = service_start("redisping");
    char keys[256];

    term_start(p);
    ck_assert_msg(strstr(p->obuf, "Local console PID=") != NULL, "%s",
        p->obuf);
    term_type(p, "help\r", "  readline CONN [TIMEOUT]");
    ck_assert_ptr_nonnull(strstr(p->obuf, "  fetch [--body] URL"));
    ck_assert_ptr_nonnull(strstr(p->obuf, "  tasks [--json]"));

    snprintf(keys, sizeof(keys), "fetch http://%s/\r", http->addr);
    term_type(p, keys, "<Response 14 bytes [200 OK]>\r\nHTTP/1.1 200 OK\r\n");
    ck_assert_ptr_nonnull(strstr(p->obuf, "Content-Length: 14\r\n"));
    snprintf(keys, sizeof(keys), "fetch --body http://%s/hi\r", http->addr);
    term_type(p, keys, "\r\n\r\nHello, World!\r\n");

    snprintf(keys, sizeof(keys), "connect %s\r", echo->addr);
    term_type(p, keys, "c1: connected to 127.0.0.1:");
    term_type(p, "send c1 \"hello,  world\\r\\n\"\r", "c1: sent 15 bytes");
    term_type(p, "readline c1\r", "\"hello,  world\\r\\n\"");

    snprintf(keys, sizeof(keys), "connect %s\r", redis->addr);
    term_type(p, keys, "c2: connected to");
    term_type(p, "send c2 PING\\r\\n\r", "c2: sent 6 bytes");
    term_type(p, "readline c2\r", "\"+PONG\\r\\n\"");
    term_type(p, "send c2 SET greeting hi\\r\\nGET greeting\\r\\n\r",
        "c2: sent 31 bytes");
    term_type(p, "readline c2\r", "\"+OK\\r\\n\"");
    term_type(p, "readline c2\r", "\"$2\\r\\n\"");
    term_type(p, "recv c2\r", "\"hi\\r\\n\"");

    term_type(p, "conns\r", "c1    127.0.0.1:");
    term_type(p, "tasks\r", "console local");
    ck_assert_ptr_nonnull(strstr(p->obuf, "reply"));
    term_type(p, "close c1\r", "c1: closed");
    term_quit(p);
    service_stop(http);
    service_stop(echo);
    service_stop(redis);
    free(p);
}
END_TEST

/* Ctrl-C cancels the wait of the command running, which says so; the
 * session, and the connection, go on. */
START_TEST(local_ctrl_c_interrupts_a_wait_and_the_session_goes_on)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *echo = service_start("echo");
    char keys[256];

    term_start(p);
    snprintf(keys, sizeof(keys), "connect %s\r", echo->addr);
    term_type(p, keys, "c1: connected to");
    /* No timeout: only Ctrl-C ends it. */
    term_type(p, "readline c1 -1\r", NULL);
    term_wait_cooked(p);
    ck_assert_int_eq(write(p->out, "\x03", 1), 1);
    term_type_in(p, "", 1, "error: c1: interrupted");
    term_type(p, "send c1 again\\n\r", "c1: sent 6 bytes");
    term_type(p, "readline c1\r", "\"again\\n\"");
    term_type(p, "sleep 600000\r", NULL);
    term_wait_cooked(p);
    ck_assert_int_eq(write(p->out, "\x03", 1), 1);
    term_type_in(p, "", 1, "error: sleep: interrupted");
    term_quit(p);
    service_stop(echo);
    free(p);
}
END_TEST

/* Ctrl-C the moment the editor gives the line up, before the command
 * has reached the session and started its wait: that wait is still the
 * one interrupted, and the session goes on (it used to give up the
 * reply instead and leave the sleep running). */
START_TEST(local_ctrl_c_before_the_wait_starts_interrupts_it)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct termios t;

    term_start(p);
    for (int i = 0; i < 5; i++) {
        int64_t end = t_now_ms() + t_slow(10000);

        term_type(p, "sleep 600000\r", NULL);
        /* No pause: the signal lands as close to the line as it can. */
        do {
            ck_assert_int_eq(tcgetattr(p->out, &t), 0);
            ck_assert_msg(t_now_ms() < end, "the editor kept the terminal "
                "raw");
        } while (!(t.c_lflag & ISIG));
        ck_assert_int_eq(kill(p->pid, SIGINT), 0);
        term_type_in(p, "", 1, "error: sleep: interrupted");
    }
    term_type(p, "conns\r", "no connections");
    term_quit(p);
    free(p);
}
END_TEST

/* Standard input not a terminal: one command per line, no prompt; the
 * same replies; a failed command makes the exit status 1. */
START_TEST(local_runs_commands_from_a_pipe)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *echo = service_start("echo");
    struct service *redis = service_start("redisping");
    char script[1024];

    snprintf(script, sizeof(script),
        "connect %s\n"
        "send c1 one\\ntwo\\n\n"
        "readline c1\n"
        "readline c1\n"
        "send c1 \\x41\\t\\\\\\0\\n\n"
        "readline c1\n"
        "connect %s 3000\n"
        "send c2 \"PING\\r\\n\"\n"
        "recv c2 100\n"
        "resolve localhost\n"
        "resolve 127.0.0.1\n"
        "sleep 10\n"
        "close c2\n"
        "conns\n",
        echo->addr, redis->addr);
    ck_assert_int_eq(local_piped(p, script), 0);
    ck_assert_msg(strstr(p->obuf, "c1: sent 8 bytes\n\"one\\n\"\n"
        "\"two\\n\"\nc1: sent 5 bytes\n\"A\\t\\\\\\x00\\n\"\n"
        "c2: connected to ") != NULL, "%s %s", p->obuf, p->ebuf);
    ck_assert_msg(strstr(p->obuf, "\"+PONG\\r\\n\"\n127.0.0.1\n::1\n"
        "127.0.0.1\nc2: closed") != NULL, "%s", p->obuf);
    ck_assert_msg(strstr(p->obuf, "NAME  PEER") != NULL &&
        strstr(p->obuf, "\nc1 ") != NULL && strstr(p->obuf, "\nc2 ") == NULL,
        "%s", p->obuf);
    ck_assert_ptr_null(strstr(p->obuf, ">>>"));
    ck_assert_str_eq(p->ebuf, "");
    service_stop(echo);
    service_stop(redis);
    free(p);
}
END_TEST

/* One command on the command line, as `dconsole PID COMMAND`. */
START_TEST(local_runs_one_command_from_its_arguments)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *http = service_start("httphello");
    char url[128];
    char *argv[] = { "dconsole", "local", "fetch", "--body", url, NULL };
    char *bad[] = { "dconsole", "local", "fetch", "https://example.org/",
        NULL };
    char *get[] = { "dconsole", "local", "get", url, NULL };

    snprintf(url, sizeof(url), "http://%s/", http->addr);
    t_proc_start(p, t_tool_path("dconsole"), argv, NULL);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 0);
    ck_assert_msg(strncmp(p->obuf, "<Response 14 bytes [200 OK]>\n"
        "HTTP/1.1 200 OK\n", 45) == 0, "%s %s", p->obuf, p->ebuf);
    ck_assert_msg(strstr(p->obuf, "\n\nHello, World!\n") != NULL, "%s",
        p->obuf);
    /* `get URL` is fetch, as dpython's get was; `get NAME` stays the
     * variables' built-in. */
    t_proc_start(p, t_tool_path("dconsole"), get, NULL);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 0);
    ck_assert_msg(strncmp(p->obuf, "<Response 14 bytes [200 OK]>\n"
        "HTTP/1.1 200 OK\n", 45) == 0, "%s %s", p->obuf, p->ebuf);
    ck_assert_ptr_null(strstr(p->obuf, "Hello, World!"));
    t_proc_start(p, t_tool_path("dconsole"), bad, NULL);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 1);
    ck_assert_str_eq(p->ebuf, "error: fetch https://example.org/: TLS is "
        "not supported: libc has none (only http:// URLs)\n");
    service_stop(http);
    free(p);
}
END_TEST

/* Its state letter in /proc/PID/stat ('S': sleeping), or '?'. */
static char
proc_state(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return '?';
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* SIGTERM while a command waits stops the loop: the wait and the session
 * are cancelled, the connections closed (under the sanitizers and
 * valgrind: nothing used after it was freed, nothing lost), and dconsole
 * dies of the signal, as it does otherwise. */
START_TEST(local_sigterm_while_a_command_waits_ends_cleanly)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *echo = service_start("echo");
    char *argv[] = { "dconsole", "local", NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    char script[256];
    int64_t end;

    snprintf(script, sizeof(script), "connect %s\nreadline c1 -1\n",
        echo->addr);
    t_proc_start(p, t_tool_path("dconsole"), argv, &how);
    ck_assert_int_eq(write(p->in, script, strlen(script)),
        (ssize_t)strlen(script));
    ck_assert_msg(t_proc_expect(p, 0, "c1: connected", 10000), "%s %s",
        p->obuf, p->ebuf);
    /* Parked: its loop waits in poll for the peer's line. */
    end = t_now_ms() + t_slow(10000);
    while (proc_state(p->pid) != 'S' && t_now_ms() < end)
        t_proc_pump(p, 20);
    t_proc_pump(p, 100);
    kill(p->pid, SIGTERM);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 128 + SIGTERM);
    ck_assert_msg(strstr(p->ebuf, "ERROR") == NULL &&
        strstr(p->ebuf, "Sanitizer") == NULL, "%s", p->ebuf);
    service_stop(echo);
    free(p);
}
END_TEST

/* -t is how long a command waits when given no TIMEOUT; -d and -s,
 * which name a service's console, are refused. */
START_TEST(local_t_sets_the_default_wait_and_d_s_are_refused)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *echo = service_start("echo");
    char *argv[] = { "dconsole", "-t", "0.3", "local", NULL };
    char *bad[] = { "dconsole", "-s", "USR2", "local", NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    char script[256];

    snprintf(script, sizeof(script), "connect %s\nreadline c1\n",
        echo->addr);
    t_proc_start(p, t_tool_path("dconsole"), argv, &how);
    ck_assert_int_eq(write(p->in, script, strlen(script)),
        (ssize_t)strlen(script));
    close(p->in);
    p->in = -1;
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 1);
    ck_assert_str_eq(p->ebuf, "error: c1: no whole line within 300 ms "
        "(what came stays buffered)\n");
    t_proc_start(p, t_tool_path("dconsole"), bad, NULL);
    ck_assert_int_eq(exit_code(t_proc_wait(p, 30000)), 2);
    ck_assert_msg(strncmp(p->ebuf, "dconsole: -d and -s are for attaching "
        "to a service, not for local\nusage: ", 73) == 0, "%s", p->ebuf);
    service_stop(echo);
    free(p);
}
END_TEST

/* A loopback TCP socket on a port of its own.  listening: it accepts
 * connections (the kernel completes them) and never answers, for the
 * timeouts; else the port is closed, bound but never listened on. */
static int
loopback_socket(int *port, int listening)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (listening)
        ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Every refusal a user can reach is one clear sentence, and the session
 * goes on after it. */
START_TEST(local_errors_are_sentences)
{
    struct t_proc *p = malloc(sizeof(*p));
    struct service *echo = service_start("echo");
    char script[4096];
    int closed, silent, cport, sport;
    static const char *const want[] = {
        "error: connect 127.0.0.1:%d: connection refused (nothing listens "
            "there)\n",
        "error: no connection named c1: there are none (connect HOST:PORT "
            "makes one)\n",
        "error: fetch https://127.0.0.1/: TLS is not supported: libc has "
            "none (only http:// URLs)\n",
        "error: fetch ftp://127.0.0.1/: not an http:// URL (give "
            "http://HOST[:PORT][/PATH])\n",
        "error: fetch http:///x: bad URL: no host\n",
        "error: fetch http://127.0.0.1:99999/: bad URL: the port must be a "
            "number from 1 to 65535\n",
        "error: fetch http://127.0.0.1:%d/: connection refused (nothing "
            "listens on 127.0.0.1:%d)\n",
        "error: fetch: nothing within 300 ms\n",
        "error: connect nonsense: not an address (HOST:PORT, [IPv6]:PORT, or "
            "a UNIX socket path)\n",
        "error: no connection named c9 (conns lists them)\n",
        "error: c1: no whole line within 200 ms (what came stays buffered)\n",
        "error: send: \"\\q\" is not an escape (\\r \\n \\t \\0 \\\\ \\\" "
            "\\xHH are)\n",
        "error: recv: N 0 is not a number of bytes from 1 to 1048576\n",
        "error: readline: TIMEOUT soon is not a number of milliseconds (-1: "
            "none)\n",
        "error: sleep: -5 is not a number of milliseconds\n",
        "error: fetch: not an HTTP/1.x response: \"GET / HTTP/1.1\"\n",
        "error: usage: connect HOST:PORT [TIMEOUT]\n",
        "error: resolve a/b: not a host name\n",
    };
    char line[512];
    const char *at;

    closed = loopback_socket(&cport, 0);
    silent = loopback_socket(&sport, 1);
    snprintf(script, sizeof(script),
        "connect 127.0.0.1:%d\n"
        "readline c1\n"
        "fetch https://127.0.0.1/\n"
        "fetch ftp://127.0.0.1/\n"
        "fetch http:///x\n"
        "fetch http://127.0.0.1:99999/\n"
        "fetch http://127.0.0.1:%d/\n"
        "fetch http://127.0.0.1:%d/ 300\n"
        "connect nonsense\n"
        "connect %s\n"
        "readline c9\n"
        "readline c1 200\n"
        "send c1 a\\q\n"
        "recv c1 0\n"
        "readline c1 soon\n"
        "sleep -5\n"
        "fetch http://%s/\n"
        "connect\n"
        "resolve a/b\n"
        "send c1 still here\\n\n"
        "readline c1\n",
        cport, cport, sport, echo->addr, echo->addr);
    ck_assert_int_eq(local_piped(p, script), 1);
    at = p->ebuf;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *hit;

        snprintf(line, sizeof(line), want[i], cport, cport);
        hit = strstr(at, line);
        ck_assert_msg(hit != NULL, "no \"%s\" in order in:\n%s", line,
            p->ebuf);
        at = hit + strlen(line);
    }
    ck_assert_msg(strstr(p->obuf, "\"still here\\n\"") != NULL, "%s",
        p->obuf);
    close(closed);
    close(silent);
    service_stop(echo);
    free(p);
}
END_TEST

/* A child that answers each connection on its port with response, once
 * the request's head has come, and closes it: its pid. */
static pid_t
canned_server(const char *response, size_t len, int *port)
{
    int lfd = loopback_socket(port, 1);
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        for (;;) {
            char req[8192];
            size_t n = 0;
            int c = accept(lfd, NULL, NULL);

            if (c < 0)
                _exit(1);
            while (n < sizeof(req) - 1) {
                ssize_t r = read(c, req + n, sizeof(req) - 1 - n);

                if (r <= 0)
                    break;
                n += (size_t)r;
                req[n] = '\0';
                if (strstr(req, "\r\n\r\n") != NULL)
                    break;
            }
            if (write(c, response, len) != (ssize_t)len)
                _exit(1);
            close(c);
        }
    }
    close(lfd);
    return pid;
}

static void
canned_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* The body ends where the response says: by chunks, by the end of the
 * stream, or it is cut short (an error); CR LF and a NUL in it show. */
START_TEST(local_fetch_reads_chunked_and_unsized_bodies)
{
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
        "chunked\r\n\r\n4\r\nWiki\r\n7;x=y\r\npedia\r\n\r\n0\r\n"
        "Trailer: t\r\n\r\n";
    static const char unsized[] = "HTTP/1.0 404 Not Found\r\nServer: t\r\n"
        "\r\nno\0such\r\nthing";
    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
        "\r\nonly this";
    struct t_proc *p = malloc(sizeof(*p));
    char script[512];
    int p1, p2, p3;
    pid_t s1 = canned_server(chunked, sizeof(chunked) - 1, &p1);
    pid_t s2 = canned_server(unsized, sizeof(unsized) - 1, &p2);
    pid_t s3 = canned_server(cut, sizeof(cut) - 1, &p3);

    snprintf(script, sizeof(script),
        "fetch --body http://127.0.0.1:%d/a\n"
        "fetch --body http://127.0.0.1:%d/b\n"
        "fetch http://127.0.0.1:%d/c\n", p1, p2, p3);
    ck_assert_int_eq(local_piped(p, script), 1);
    ck_assert_msg(strstr(p->obuf, "<Response 11 bytes [200 OK]>\n"
        "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\nWikipedia\n<") !=
        NULL, "%s %s", p->obuf, p->ebuf);
    ck_assert_msg(strstr(p->obuf, "<Response 14 bytes [404 Not Found]>\n"
        "HTTP/1.0 404 Not Found\nServer: t\n\nno\\x00such\nthing\n") !=
        NULL, "%s %s", p->obuf, p->ebuf);
    ck_assert_msg(strstr(p->ebuf, "error: fetch: the server closed the "
        "connection 91 bytes before the end of the body\n") != NULL, "%s",
        p->ebuf);
    ck_assert_ptr_null(strstr(p->obuf, "Content-Length: 100"));
    canned_stop(s1);
    canned_stop(s2);
    canned_stop(s3);
    free(p);
}
END_TEST

/* The peer closing, and a line longer than readline takes, are told;
 * the bytes of the long line stay for recv. */
START_TEST(local_peer_closing_and_long_lines_are_told)
{
    static const char bye[] = "bye\n";
    struct t_proc *p = malloc(sizeof(*p));
    char *longline = malloc(70001), script[512];
    int p1, p2;
    pid_t s1, s2;

    memset(longline, 'x', 70000);
    longline[70000] = '\0';
    s1 = canned_server(bye, sizeof(bye) - 1, &p1);
    s2 = canned_server(longline, 70000, &p2);
    snprintf(script, sizeof(script),
        "connect 127.0.0.1:%d\n"
        "send c1 hi\\r\\n\\r\\n\n"
        "readline c1\n"
        "readline c1\n"
        "recv c1\n"
        "close c1\n"
        "connect 127.0.0.1:%d\n"
        "send c2 \\r\\n\\r\\n\n"
        "readline c2\n"
        "recv c2 10\n", p1, p2);
    ck_assert_int_eq(local_piped(p, script), 1);
    ck_assert_msg(strstr(p->obuf, "\"bye\\n\"\nc1: closed") != NULL,
        "%s %s", p->obuf, p->ebuf);
    ck_assert_msg(strstr(p->obuf, "\n\"xxxxxxxxxx\"\n") != NULL, "%s",
        p->obuf);
    ck_assert_str_eq(p->ebuf, "error: c1: the peer closed the connection "
        "(close c1 forgets it)\n"
        "error: c1: the peer closed the connection (close c1 forgets it)\n"
        "error: c2: no newline in the first 65536 bytes (they stay "
        "buffered: recv takes them)\n");
    canned_stop(s1);
    canned_stop(s2);
    free(longline);
    free(p);
}
END_TEST

/* ---- What it is built on ------------------------------------------------- */

static int
serve_main(void *arg)
{
    int fd = *(int *)arg;

    return diesel_console_serve_fds(fd, fd) == 0 ? 0 : 1;
}

static int
open_main(void *arg)
{
    struct diesel_console_client *c;
    char *reply;
    size_t len;
    int sv[2];

    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_gt(diesel_task_spawn("serve", serve_main, &sv[1], 0), 0);
    c = diesel_console_client_open(sv[0]);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(diesel_console_client_fd(c), sv[0]);
    ck_assert_int_eq(diesel_console_client_run(c, "help tasks", &reply, &len,
        5000), 0);
    ck_assert_msg(strncmp(reply, "tasks [--json]", 14) == 0, "%s", reply);
    free(reply);
    ck_assert_int_eq(diesel_console_client_run(c, "nosuch", &reply, &len,
        5000), 1);
    ck_assert_str_eq(reply, "unknown command \"nosuch\" (try help)\n");
    free(reply);
    /* No process behind it: never "gone", and at once. */
    ck_assert_int_eq(diesel_console_client_gone(c, 5000), 0);
    ck_assert_int_eq(diesel_console_client_run(c, "quit", &reply, &len,
        5000), 0);
    free(reply);
    diesel_console_client_close(c);
    close(sv[1]);
    ck_assert_ptr_null(diesel_console_client_open(-1));
    ck_assert_int_eq(errno, EBADF);
    return 0;
}

START_TEST(client_open_runs_commands_over_a_socketpair)
{
    int64_t t0 = t_now_ms();

    ck_assert_int_eq(t_run(open_main, NULL), 0);
    ck_assert_int_lt(t_now_ms() - t0, t_slow(4000));
}
END_TEST

Suite *
diesel_local_suite(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("local");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, local_tries_the_example_services_on_a_pty);
    tcase_add_test(tc, local_ctrl_c_interrupts_a_wait_and_the_session_goes_on);
    tcase_add_test(tc, local_ctrl_c_before_the_wait_starts_interrupts_it);
    tcase_add_test(tc, local_runs_commands_from_a_pipe);
    tcase_add_test(tc, local_runs_one_command_from_its_arguments);
    tcase_add_test(tc, local_errors_are_sentences);
    tcase_add_test(tc, local_t_sets_the_default_wait_and_d_s_are_refused);
    tcase_add_test(tc, local_fetch_reads_chunked_and_unsized_bodies);
    tcase_add_test(tc, local_peer_closing_and_long_lines_are_told);
    tcase_add_test(tc, local_sigterm_while_a_command_waits_ends_cleanly);
    tcase_add_test(tc, client_open_runs_commands_over_a_socketpair);
    suite_add_tcase(s, tc);
    return s;
}
