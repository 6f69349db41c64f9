/*
 * dconsole_local.c: `dconsole local`, diesel's dpython for C.
 *
 * dconsole runs a loop of its own with the library's console on the
 * terminal: the same session, command table and built-ins as `dconsole
 * PID` reaches in a service (tasks, stacks, stats... show dconsole's own
 * loop), plus commands to try the library by hand, registered as any
 * service registers its own, so that help lists them:
 *
 *   connect ADDR [TIMEOUT]      a connection, named c1, c2...
 *   send CONN TEXT...           with \r \n \t \0 \\ \xHH escapes
 *   readline CONN [TIMEOUT]     one line, shown quoted
 *   recv CONN [N] [TIMEOUT]     what has come, up to N bytes
 *   close CONN | conns          close one | list them
 *   resolve NAME [TIMEOUT]      diesel_resolve
 *   sleep MS                    diesel_sleep
 *   fetch [--body] URL [TIMEOUT]   an HTTP/1.1 GET (dconsole_fetch.c)
 *
 * The session is a socketpair: one end is served by the library
 * (diesel_console_serve_fds) in a green thread of dconsole's loop, the
 * other is a diesel_console_client (diesel_console_client_open) that
 * dconsole's editor and relay drive exactly as they drive an attached
 * session.
 *
 *   terminal <-> dconsole (editor, relay) <-> socketpair <-> console
 *                                                  session green thread
 *                                                   |
 *                                         worker green thread: the wait
 *
 * A command that waits (on a peer, a name server, a timer) does so in a
 * worker green thread that the command joins, so that Ctrl-C can cancel
 * just that wait (dc_local_interrupt): cancelling the session's own green
 * thread would end the session.  The worker writes into a job of its own,
 * copied into the reply once it is joined; a job whose command gave up on
 * it (the loop stopping) is freed by its worker.  Every wait has a
 * timeout: the command's TIMEOUT, else dconsole's -t (5 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diesel.h"
#include "dconsole.h"
#include "dconsole_local.h"

#define RECV_DEFAULT 4096           /* recv's N when not given */
#define RECV_MAX (1 << 20)          /* ... and its most */
#define READLINE_MAX 65536          /* a longer line stays buffered */
#define RESOLVE_MAX 16              /* addresses resolve shows */

/* A connection made by connect. */
struct lconn {
    struct lconn *next;
    char name[16];                  /* "c1" */
    char peer[128];                 /* as diesel_conn_peer writes it */
    struct diesel_conn *c;
};

static struct {
    struct lconn *conns;
    int next_id;                    /* the next connection's number */
    int64_t worker;                 /* the worker running now, or 0 */
    int pending;                    /* Ctrl-C came before the worker */
    int registered;
    int ended;                      /* the session is over */
    int64_t timeout_ms;             /* a wait's when not given (-t) */
} L;

static void conns_drop_all(void);

/* ---- Jobs ---------------------------------------------------------------- */

/* Room for n more bytes and a NUL: 0, or -1 (j->oom). */
static int
grow(struct job *j, size_t n)
{
    size_t cap = j->cap ? j->cap : 256;
    char *t;

    while (j->len + n + 1 > cap)
        cap *= 2;
    t = realloc(j->text, cap);
    if (t == NULL) {
        j->oom = 1;
        return -1;
    }
    j->text = t;
    j->cap = cap;
    return 0;
}

void
dc_job_put(struct job *j, const char *s, size_t n)
{
    if (j->oom || (j->len + n + 1 > j->cap && grow(j, n) != 0))
        return;
    memcpy(j->text + j->len, s, n);
    j->len += n;
    j->text[j->len] = '\0';
}

void
dc_job_printf(struct job *j, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* Room for it (and the NUL), then written in place. */
    if (j->oom || (j->len + (size_t)n + 1 > j->cap && grow(j, (size_t)n)))
        return;
    va_start(ap, fmt);
    vsnprintf(j->text + j->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    j->len += (size_t)n;
}

int
dc_job_error(struct job *j, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(j->err, sizeof(j->err), fmt, ap);
    va_end(ap);
    return -1;
}

/* Bytes as a quoted C string: what readline and recv show, so that a
 * \r or a NUL from the peer can be seen. */
static void
job_quoted(struct job *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    dc_job_put(j, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[4] = { '\\', 0, 0, 0 };
        size_t k = 2;

        switch (c) {
        case '\r': e[1] = 'r'; break;
        case '\n': e[1] = 'n'; break;
        case '\t': e[1] = 't'; break;
        case '\\': e[1] = '\\'; break;
        case '"': e[1] = '"'; break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                e[0] = (char)c;
                k = 1;
            } else {
                e[1] = 'x';
                e[2] = hex[c >> 4];
                e[3] = hex[c & 15];
                k = 4;
            }
        }
        dc_job_put(j, e, k);
    }
    dc_job_put(j, "\"\n", 2);
}

void
dc_job_free(struct job *j)
{
    free(j->text);
    free(j);
}

static int
worker_main(void *arg)
{
    struct job *j = arg;
    int rc = j->fn(j);

    /* Given up on (the loop stops): the connections are for the last
     * one out, this worker or the session. */
    if (j->orphan) {
        dc_job_free(j);
        L.worker = 0;
        if (L.ended)
            conns_drop_all();
    }
    return rc;
}

/* A job with copies of argv (the session's words outlive no command). */
struct job *
dc_job_create(int (*fn)(struct job *), int argc, char **argv)
{
    size_t size = sizeof(struct job) + (size_t)(argc + 1) * sizeof(char *);
    struct job *j;
    char *p;

    for (int i = 0; i < argc; i++)
        size += strlen(argv[i]) + 1;
    j = calloc(1, size);
    if (j == NULL)
        return NULL;
    j->fn = fn;
    j->argc = argc;
    j->argv = (char **)(j + 1);
    p = (char *)(j->argv + argc + 1);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;

        memcpy(p, argv[i], n);
        j->argv[i] = p;
        p += n;
    }
    j->argv[argc] = NULL;
    j->timeout_ms = L.timeout_ms;
    return j;
}

/* A timeout in milliseconds: a whole number, -1 for none. */
static int
parse_ms(const char *s, int64_t *ms)
{
    char *end;
    long long v;

    if (!((*s >= '0' && *s <= '9') || *s == '-'))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < -1 ||
        v > (long long)86400 * 1000 * 365)
        return -1;
    *ms = v;
    return 0;
}

/* Run the job's wait in a worker and put what it says into the reply. */
int
dc_job_run(struct job *j, struct diesel_console_out *out,
    const char *timeout)
{
    int64_t id;
    int rc = -1;

    if (timeout != NULL && parse_ms(timeout, &j->timeout_ms) != 0) {
        rc = diesel_console_error(out, "%s: TIMEOUT %.40s is not a number "
            "of milliseconds (-1: none)", j->argv[0], timeout);
        dc_job_free(j);
        return rc;
    }

    id = diesel_task_spawn("local worker", worker_main, j, 0);
    if (id < 0) {
        int err = errno;

        dc_job_free(j);
        return diesel_console_error(out, "cannot start a green thread: %s",
            strerror(err));
    }
    L.worker = id;
    if (L.pending) {
        /* Ctrl-C came while the command was on its way here: the wait
         * it starts is interrupted (cancelling is sticky). */
        L.pending = 0;
        diesel_task_cancel(id);
    }
    if (diesel_task_join(id, &rc, -1) != 0) {
        /* The session itself is cancelled (the loop stops): it cannot
         * wait any more, so the worker ends the job alone (and clears
         * L.worker). */
        diesel_task_cancel(id);
        j->orphan = 1;
        return diesel_console_error(out, "interrupted");
    }
    L.worker = 0;
    if (j->len > 0)
        diesel_console_printf(out, "%s", j->text);
    if (j->oom)
        diesel_console_printf(out, "(out of memory: the rest is cut)\n");
    if (rc != 0)
        rc = diesel_console_error(out, "%s", j->err[0] ? j->err : "failed");
    dc_job_free(j);
    return rc;
}

int
dc_local_interrupt(int local)
{
    if (L.worker > 0) {
        diesel_task_cancel(L.worker);
        return 1;
    }
    if (!local)
        return 0;
    /* The line may not even have reached the session yet. */
    L.pending = 1;
    return 1;
}

void
dc_local_reply_done(void)
{
    L.pending = 0;
}

/* ---- Words --------------------------------------------------------------- */

static struct lconn *
find_conn(const char *name)
{
    for (struct lconn *k = L.conns; k != NULL; k = k->next) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

static int
unknown_conn(struct diesel_console_out *out, const char *name)
{
    if (L.conns == NULL)
        return diesel_console_error(out, "no connection named %.40s: there "
            "are none (connect HOST:PORT makes one)", name);
    return diesel_console_error(out, "no connection named %.40s (conns "
        "lists them)", name);
}

static void
conn_drop(struct lconn *k)
{
    for (struct lconn **p = &L.conns; *p != NULL; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            break;
        }
    }
    diesel_conn_close(k->c);
    free(k);
}

static void
conns_drop_all(void)
{
    while (L.conns != NULL)
        conn_drop(L.conns);
}

/* Why a wait failed, as a sentence: verb and what it was about first. */
int
dc_job_wait_error(struct job *j, const char *what, int err)
{
    switch (err) {
    case ETIMEDOUT:
        return dc_job_error(j, "%s: nothing within %lld ms", what,
            (long long)j->timeout_ms);
    case ECANCELED:
        return dc_job_error(j, "%s: interrupted", what);
    case ECONNRESET:
        return dc_job_error(j, "%s: the peer reset the connection", what);
    case EPIPE:
        return dc_job_error(j, "%s: the peer closed the connection", what);
    default:
        return dc_job_error(j, "%s: %s", what, strerror(err));
    }
}

/* ---- connect, close, conns ----------------------------------------------- */

static int
connect_job(struct job *j)
{
    const char *addr = j->argv[1];
    struct diesel_conn *c = diesel_conn_connect(addr, j->timeout_ms);
    struct lconn *k;
    int err = errno;

    if (c == NULL) {
        switch (err) {
        case ECONNREFUSED:
            return dc_job_error(j, "connect %.200s: connection refused "
                "(nothing listens there)", addr);
        case EINVAL:
            return dc_job_error(j, "connect %.200s: not an address (HOST:PORT, "
                "[IPv6]:PORT, or a UNIX socket path)", addr);
        case EADDRNOTAVAIL:
            return dc_job_error(j, "connect %.200s: no such host", addr);
        case ETIMEDOUT:
            return dc_job_error(j, "connect %.200s: no answer within %lld ms",
                addr, (long long)j->timeout_ms);
        default:
            return dc_job_wait_error(j, "connect", err);
        }
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        diesel_conn_close(c);
        return dc_job_error(j, "connect: out of memory");
    }
    k->c = c;
    snprintf(k->name, sizeof(k->name), "c%d", ++L.next_id);
    if (diesel_conn_peer(c, k->peer, sizeof(k->peer)) != 0)
        snprintf(k->peer, sizeof(k->peer), "%.100s", addr);
    k->next = L.conns;
    L.conns = k;
    dc_job_printf(j, "%s: connected to %s\n", k->name, k->peer);
    return 0;
}

static int
cmd_connect(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;

    (void)arg;
    if (argc < 2 || argc > 3)
        return diesel_console_error(out, "usage: connect HOST:PORT "
            "[TIMEOUT]");
    if ((j = dc_job_create(connect_job, argc, argv)) == NULL)
        return diesel_console_error(out, "out of memory");
    return dc_job_run(j, out, argc == 3 ? argv[2] : NULL);
}

static int
cmd_close(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct lconn *k;

    (void)arg;
    if (argc != 2)
        return diesel_console_error(out, "usage: close CONN");
    if ((k = find_conn(argv[1])) == NULL)
        return unknown_conn(out, argv[1]);
    diesel_console_printf(out, "%s: closed (%s)\n", k->name, k->peer);
    conn_drop(k);
    return 0;
}

static int
cmd_conns(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_console_table *t;
    int rc = 0;

    (void)argv;
    (void)arg;
    if (argc != 1)
        return diesel_console_error(out, "usage: conns");
    if (L.conns == NULL) {
        diesel_console_printf(out, "no connections (connect HOST:PORT makes "
            "one)\n");
        return 0;
    }
    if ((t = diesel_console_table_create(3)) == NULL)
        return diesel_console_error(out, "%s", strerror(errno));
    diesel_console_table_cell(t, "NAME");
    diesel_console_table_cell(t, "PEER");
    diesel_console_table_cell(t, "FD");
    diesel_console_table_row(t);
    for (struct lconn *k = L.conns; k != NULL; k = k->next) {
        if (diesel_console_table_cell(t, "%s", k->name) < 0 ||
            diesel_console_table_cell(t, "%s", k->peer) < 0 ||
            diesel_console_table_cell(t, "%d", diesel_conn_fd(k->c)) < 0 ||
            diesel_console_table_row(t) < 0)
            rc = -1;
    }
    if (rc == 0)
        rc = diesel_console_table_print(t, out);
    diesel_console_table_destroy(t);
    return rc == 0 ? 0 : diesel_console_error(out, "%s", strerror(errno));
}

/* ---- send, readline, recv ------------------------------------------------ */

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* TEXT's words joined by a space, escapes turned into their bytes, into
 * the job's text (the job prints nothing else before it sends). */
static int
unescape_words(struct job *j)
{
    for (int w = 2; w < j->argc; w++) {
        const char *s = j->argv[w];

        if (w > 2)
            dc_job_put(j, " ", 1);
        for (size_t i = 0; s[i] != '\0'; i++) {
            char c = s[i];
            int hi, lo;

            if (c != '\\') {
                dc_job_put(j, &c, 1);
                continue;
            }
            switch (s[++i]) {
            case 'r': c = '\r'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '0': c = '\0'; break;
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            case 'x':
                if ((hi = hexval(s[i + 1])) >= 0 &&
                    (lo = hexval(s[i + 2])) >= 0) {
                    c = (char)(hi * 16 + lo);
                    i += 2;
                    break;
                }
                /* FALLTHROUGH */
            default:
                return dc_job_error(j, "send: \"\\%.1s\" is not an escape "
                    "(\\r \\n \\t \\0 \\\\ \\\" \\xHH are)", s + i);
            }
            dc_job_put(j, &c, 1);
        }
    }
    return j->oom ? dc_job_error(j, "send: out of memory") : 0;
}

static int
send_job(struct job *j)
{
    size_t n;

    if (unescape_words(j) != 0)
        return -1;
    n = j->len;
    if (diesel_conn_send(j->conn->c, j->text, n, j->timeout_ms) != 0) {
        int err = errno;

        j->len = 0;
        return dc_job_wait_error(j, j->conn->name, err);
    }
    j->len = 0;
    dc_job_printf(j, "%s: sent %zu byte%s\n", j->conn->name, n,
        n == 1 ? "" : "s");
    return 0;
}

static int
readline_job(struct job *j)
{
    char *buf = malloc(READLINE_MAX + 1);
    ssize_t n;
    int err;

    if (buf == NULL)
        return dc_job_error(j, "readline: out of memory");
    n = diesel_conn_recv_until(j->conn->c, "\n", buf, READLINE_MAX,
        j->timeout_ms);
    err = errno;
    if (n > 0)
        job_quoted(j, buf, (size_t)n);
    free(buf);
    if (n > 0)
        return 0;
    if (n == 0)
        return dc_job_error(j, "%s: the peer closed the connection (close %s "
            "forgets it)", j->conn->name, j->conn->name);
    if (err == EMSGSIZE)
        return dc_job_error(j, "%s: no newline in the first %d bytes (they "
            "stay buffered: recv takes them)", j->conn->name, READLINE_MAX);
    if (err == ETIMEDOUT)
        return dc_job_error(j, "%s: no whole line within %lld ms (what came "
            "stays buffered)", j->conn->name, (long long)j->timeout_ms);
    return dc_job_wait_error(j, j->conn->name, err);
}

static int
recv_job(struct job *j)
{
    char *buf = malloc(j->n);
    ssize_t n;
    int err;

    if (buf == NULL)
        return dc_job_error(j, "recv: out of memory");
    n = diesel_conn_recv(j->conn->c, buf, j->n, j->timeout_ms);
    err = errno;
    if (n > 0)
        job_quoted(j, buf, (size_t)n);
    free(buf);
    if (n > 0)
        return 0;
    if (n == 0)
        return dc_job_error(j, "%s: the peer closed the connection (close %s "
            "forgets it)", j->conn->name, j->conn->name);
    return dc_job_wait_error(j, j->conn->name, err);
}

/* CONN, then optional numbers: a job for fn, or NULL with the error set. */
static struct job *
conn_job(struct diesel_console_out *out, int (*fn)(struct job *), int argc,
    char **argv)
{
    struct lconn *k = find_conn(argv[1]);
    struct job *j;

    if (k == NULL) {
        unknown_conn(out, argv[1]);
        return NULL;
    }
    if ((j = dc_job_create(fn, argc, argv)) == NULL) {
        diesel_console_error(out, "out of memory");
        return NULL;
    }
    j->conn = k;
    return j;
}

static int
cmd_send(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;

    (void)arg;
    if (argc < 3)
        return diesel_console_error(out, "usage: send CONN TEXT...");
    if ((j = conn_job(out, send_job, argc, argv)) == NULL)
        return -1;
    return dc_job_run(j, out, NULL);
}

static int
cmd_readline(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct job *j;

    (void)arg;
    if (argc < 2 || argc > 3)
        return diesel_console_error(out, "usage: readline CONN [TIMEOUT]");
    if ((j = conn_job(out, readline_job, argc, argv)) == NULL)
        return -1;
    return dc_job_run(j, out, argc == 3 ? argv[2] : NULL);
}

static int
cmd_recv(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;
    char *end;
    long n = RECV_DEFAULT;

    (void)arg;
    if (argc < 2 || argc > 4)
        return diesel_console_error(out, "usage: recv CONN [N] [TIMEOUT]");
    if (argc >= 3) {
        errno = 0;
        n = strtol(argv[2], &end, 10);
        if (errno != 0 || *end != '\0' || end == argv[2] || n < 1 ||
            n > RECV_MAX || argv[2][0] < '0' || argv[2][0] > '9')
            return diesel_console_error(out, "recv: N %.40s is not a number "
                "of bytes from 1 to %d", argv[2], RECV_MAX);
    }
    if ((j = conn_job(out, recv_job, argc, argv)) == NULL)
        return -1;
    j->n = (size_t)n;
    return dc_job_run(j, out, argc == 4 ? argv[3] : NULL);
}

/* ---- resolve, sleep ------------------------------------------------------ */

static int
resolve_job(struct job *j)
{
    struct sockaddr_storage ss[RESOLVE_MAX];
    const char *name = j->argv[1];
    int n = diesel_resolve(name, ss, RESOLVE_MAX, j->timeout_ms), err = errno;

    if (n < 0) {
        switch (err) {
        case EADDRNOTAVAIL:
            return dc_job_error(j, "resolve %.200s: no such name", name);
        case EAGAIN:
            return dc_job_error(j, "resolve %.200s: the name server did not "
                "answer (try again)", name);
        case EINVAL:
            return dc_job_error(j, "resolve %.200s: not a host name", name);
        case ETIMEDOUT:
            return dc_job_error(j, "resolve %.200s: no answer within %lld ms",
                name, (long long)j->timeout_ms);
        default:
            return dc_job_wait_error(j, "resolve", err);
        }
    }
    for (int i = 0; i < n; i++) {
        char text[INET6_ADDRSTRLEN];
        const void *a = ss[i].ss_family == AF_INET6 ?
            (const void *)&((struct sockaddr_in6 *)&ss[i])->sin6_addr :
            (const void *)&((struct sockaddr_in *)&ss[i])->sin_addr;

        if (inet_ntop(ss[i].ss_family, a, text, sizeof(text)) != NULL)
            dc_job_printf(j, "%s\n", text);
    }
    return 0;
}

static int
cmd_resolve(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;

    (void)arg;
    if (argc < 2 || argc > 3)
        return diesel_console_error(out, "usage: resolve NAME [TIMEOUT]");
    if ((j = dc_job_create(resolve_job, argc, argv)) == NULL)
        return diesel_console_error(out, "out of memory");
    return dc_job_run(j, out, argc == 3 ? argv[2] : NULL);
}

static int
sleep_job(struct job *j)
{
    if (diesel_sleep(j->timeout_ms) != 0)
        return dc_job_wait_error(j, "sleep", errno);
    return 0;
}

static int
cmd_sleep(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;
    int64_t ms;

    (void)arg;
    if (argc != 2)
        return diesel_console_error(out, "usage: sleep MS");
    if (parse_ms(argv[1], &ms) != 0 || ms < 0)
        return diesel_console_error(out, "sleep: %.40s is not a number of "
            "milliseconds", argv[1]);
    if ((j = dc_job_create(sleep_job, argc, argv)) == NULL)
        return diesel_console_error(out, "out of memory");
    j->timeout_ms = ms;
    return dc_job_run(j, out, NULL);
}

/* ---- The session --------------------------------------------------------- */

static const struct {
    const char *name;
    const char *help;
    diesel_console_fn fn;
} commands[] = {
    { "connect", "connect HOST:PORT [TIMEOUT]: open a connection, named c1, "
        "c2... (TIMEOUT in ms, default -t's, -1 none)", cmd_connect },
    { "send", "send CONN TEXT...: send TEXT (\\r \\n \\t \\0 \\\\ \\xHH "
        "escapes; words joined by a space)", cmd_send },
    { "readline", "readline CONN [TIMEOUT]: receive one line, shown quoted",
        cmd_readline },
    { "recv", "recv CONN [N] [TIMEOUT]: receive what has come, at most N "
        "bytes (default 4096), shown quoted", cmd_recv },
    { "close", "close CONN: close a connection", cmd_close },
    { "conns", "conns: the connections connect opened", cmd_conns },
    { "resolve", "resolve NAME [TIMEOUT]: the addresses of a host name",
        cmd_resolve },
    { "sleep", "sleep MS: park for MS milliseconds (Ctrl-C interrupts)",
        cmd_sleep },
    { "fetch", "fetch [--body] URL [TIMEOUT]: an HTTP/1.1 GET of an http:// "
        "URL: status, headers, body size (--body: the body too)",
        dc_local_fetch },
};

int
dc_local_is_command(const char *line, size_t n)
{
    size_t i = 0, w;

    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    for (w = i; w < n && line[w] != ' ' && line[w] != '\t' &&
        line[w] != '\r' && line[w] != '\n'; w++)
        ;
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strlen(commands[k].name) == w - i &&
            memcmp(commands[k].name, line + i, w - i) == 0)
            return 1;
    }
    return 0;
}

static int
serve_main(void *arg)
{
    int fd = (int)(intptr_t)arg;

    diesel_console_serve_fds(fd, fd);
    diesel_fd_close(fd);
    L.ended = 1;
    if (L.worker == 0)
        conns_drop_all();
    return 0;
}

struct diesel_console_client *
dc_local_open(int64_t timeout_ms, char *why, size_t size)
{
    struct diesel_console_client *c;
    int sv[2];

    if (!L.registered) {
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
            if (diesel_console_command(commands[i].name, commands[i].help,
                commands[i].fn, NULL) != 0) {
                snprintf(why, size, "cannot add the command %s: %s",
                    commands[i].name, strerror(errno));
                return NULL;
            }
        }
        L.registered = 1;
    }
    L.timeout_ms = timeout_ms;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        snprintf(why, size, "socketpair: %s", strerror(errno));
        return NULL;
    }
    fcntl(sv[1], F_SETFD, FD_CLOEXEC);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    c = diesel_console_client_open(sv[0]);
    if (c == NULL) {
        snprintf(why, size, "cannot open the session: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    if (diesel_task_spawn("console local", serve_main,
        (void *)(intptr_t)sv[1], 0) < 0) {
        snprintf(why, size, "cannot start a green thread: %s",
            strerror(errno));
        diesel_console_client_close(c);
        close(sv[1]);
        return NULL;
    }
    return c;
}
