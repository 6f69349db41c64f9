/*
 * dconsole.c: the operator's side of libdiesel's console.
 *
 *   dconsole PID               attach; a >>> prompt with line editing
 *   dconsole PID COMMAND ...   run one command, exit 0 on OK, 1 on ERR
 *   ... | dconsole PID         one command per input line, no prompts
 *   dconsole -l                the services that can be attached to
 *   dconsole dummy             the demo service (dconsole_dummy.c)
 *   dconsole local [COMMAND]   the console on dconsole's own loop, with
 *                              client commands (dconsole_local.c)
 *
 * The attach keeps diesel's topology, nothing listens in the app, and
 * closes its hole with the kernel's credentials (DESIGN.md, "Attach"):
 * take a handle on the target (a pidfd), prove from outside that it is a
 * libdiesel service with the console installed (its advertisement in the
 * private directory of its user names its start time; catching the
 * signal proves nothing), bind a UNIX socket in that directory, through
 * a descriptor of it, send the signal with a random nonce through the
 * handle, and take only the connection whose peer is the target's pid and
 * uid and whose greeting echoes the nonce.  Anyone else is closed without
 * a byte written.  A process not proven is never signalled.
 *
 * dconsole runs on libdiesel's own loop.  Its green threads:
 *
 *   main      the attach, then the session: read a command (the line
 *             editor, or standard input), send it, wait for the reply
 *   reply     one per command: reads the reply to its end; Ctrl-C
 *             cancels it, and the rest of that reply is skipped later
 *   watch     while the prompt waits for a key: notices the app going
 *             away and cancels main, so that the operator is told at once
 *   signals   reads the self-pipe the SIGINT/SIGTERM/SIGHUP handler
 *             writes, and stops the loop (or cancels the reply)
 *
 * Every way out goes through the end of diesel_loop_run() in client():
 * the terminal is restored, the socket removed, the history saved, the
 * message printed, and a fatal signal raised again with its default
 * action, so the shell sees how dconsole ended.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "diesel.h"
#include "dconsole.h"
#include "dconsole_edit.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0      /* SO_NOSIGPIPE is set instead, where it exists */
#endif

/* Exit statuses (console-spec.md, "dconsole exit codes"). */
enum {
    ST_OK = 0,           /* the command (every command) succeeded */
    ST_FAILED = 1,       /* a command failed (ERR), or a system error here */
    ST_USAGE = 2,        /* bad options or operands */
    ST_NOPROC = 3,       /* no such process */
    ST_PERM = 4,         /* not permitted (another user's process, or an
                           unsafe rendezvous directory) */
    ST_NOHANDLER = 5,    /* the target does not catch the console signal */
    ST_TIMEOUT = 6,      /* no answer within the timeout */
    ST_CLOSED = 7,       /* the app closed the session, or a protocol error */
    ST_STUCK = 8,        /* the loop is stuck: the app's signal handler
                           sent its report (printed) instead of a session */
};

/* How a command's reply ended. */
enum {
    RP_OK,               /* OK */
    RP_ERR,              /* ERR message */
    RP_CLOSED,           /* the connection ended, or garbage (s->msg says) */
    RP_INTERRUPTED,      /* Ctrl-C: the rest will be skipped */
};

/* What one line of a reply meant. */
enum {
    H_MORE,             /* output, or the end of a skipped reply */
    H_OK,
    H_ERR,
    H_ENDS,             /* it ends the session: a line when no reply was
                           due, STUCK, BUSY, not a reply line at all */
};

#define PROMPT ">>> "
#define DEFAULT_TIMEOUT 5.0
#define MAX_INPUT_LINE 65536        /* longer standard input lines: refused */

struct opts {
    double timeout;         /* -t, seconds */
    int signo;              /* -s, 0 if not given */
    const char *dir;        /* -d, or NULL */
    const char *out;        /* -o, or NULL: standard output */
    int quiet;              /* -q */
    int stop_on_error;      /* -e */
    int list;               /* -l */
    int help;               /* -h */
    int version;            /* --version */
    int dummy;              /* the operand was "dummy" */
    int local;              /* the operand was "local" */
    pid_t pid;              /* the target */
    char **cmd;             /* a one-shot command and its arguments */
    int ncmd;               /* how many words; 0 for a session */
};

struct session {
    const struct opts *o;
    int signo;              /* the console signal */
    pid_t pid;              /* the target */
    struct diesel_console_client *c;    /* the session, NULL before */
    int owed;               /* commands sent whose reply has not ended */
    int skip;               /* of those, replies Ctrl-C gave up on */
    int interactive;        /* terminal on both ends: prompt and editor */
    int64_t main_id;        /* the main green thread */
    int64_t reply_id;       /* the reply green thread, 0 if none */
    int local_cmd;          /* its command is one of dconsole local's */
    int busy;               /* a typed line is on its way to a reply */
    int64_t last_rx;        /* when the reply last said something (ms) */
    int64_t probe_id;       /* the probe green thread, 0 if none */
    int no_probe;           /* the command is silent by design */
    int int_pending;        /* Ctrl-C came before its reply started */
    int closed;             /* the app closed the session */
    int stopping;           /* a signal is stopping dconsole */
    const char *err;        /* the last ERR message (in the line) */
    char **words;           /* what the app's help lists: for Tab */
    size_t nwords;
    size_t cap_words;
    int collect;            /* reply output goes to words, not stdout */
    struct dc_edit *ed;     /* the line editor (interactive only) */
    int stuck;              /* the app sent its stuck report (exit 8) */
    char msg[1024];         /* the message to print on the way out */
};

/* Process-wide state that signal handlers and the exit path share. */
static int sig_pipe[2] = { -1, -1 };
static int stop_signal;

/* ---- Signal names ----------------------------------------------------------- */

static const char *
sig_name(int signo)
{
    static char name[32];

    return diesel_signal_name(signo, name, sizeof(name));
}

/* ---- Messages ------------------------------------------------------------------ */

/* Keep a one-line message for the way out; returns code. */
static int
fail(struct session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct session *s, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
    va_end(ap);
    return code;
}

static void
warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void put_safe(FILE *f, const char *text, size_t n);

/* A message on standard error.  Its arguments quote what other processes
 * control (process names, greetings, the app's errors, s->msg that holds
 * them): the whole text goes through put_safe, like every byte from
 * another process. */
static void
warn(const char *fmt, ...)
{
    char small[1024], *text = small;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        char *big = malloc((size_t)n + 1);

        if (big != NULL) {
            va_start(ap, fmt);
            vsnprintf(big, (size_t)n + 1, fmt, ap);
            va_end(ap);
            text = big;
        } else {
            n = (int)sizeof(small) - 1;
        }
    }
    fflush(stdout);
    fputs("dconsole: ", stderr);
    put_safe(stderr, text, (size_t)n);
    fputc('\n', stderr);
    fflush(stderr);
    if (text != small)
        free(text);
}

/*
 * Write what came from the app so that it cannot drive the terminal: the
 * app escapes control bytes already (diesel-console(7)), but root may be
 * attached to a user's process, and that user should not get to send
 * escape sequences to root's terminal.  The library's own escaping
 * (diesel_console_escape): tabs and valid UTF-8 pass; any other byte
 * below 0x20, 0x7f, C1 controls and invalid UTF-8 become \xHH.  Every
 * byte from another process that dconsole prints goes through here:
 * replies, the stuck report, the app's errors (print_error), messages
 * that quote a process name, a greeting or a bad line (warn), and -l
 * rows.
 */
static void
put_safe(FILE *f, const char *text, size_t n)
{
    char out[512];

    /* Through a buffer: standard error is unbuffered, and a byte per
     * write would be a system call per byte. */
    while (n > 0) {
        size_t at = 0, used = diesel_console_escape(out, sizeof(out), &at,
            text, n);

        fwrite(out, 1, at, f);
        text += used;
        n -= used;
    }
}

static void
print_error(const char *msg)
{
    fflush(stdout);
    fputs("error: ", stderr);
    put_safe(stderr, msg, strlen(msg));
    fputc('\n', stderr);
    fflush(stderr);
}

/* ---- The connection --------------------------------------------------------------- */

/* Why the connection ended, for s->msg.  Give a dying target a moment to
 * be gone, so that the message can say it exited. */
static int
closed(struct session *s, int err)
{
    s->closed = 1;
    if (diesel_console_client_gone(s->c, 200))
        return fail(s, ST_CLOSED, "PID %ld exited: the session is over",
            (long)s->pid);
    if (err != 0 && err != ECONNRESET && err != EPIPE)
        return fail(s, ST_CLOSED, "PID %ld: the session ended: %s",
            (long)s->pid, strerror(err));
    return fail(s, ST_CLOSED, "PID %ld closed the session", (long)s->pid);
}

static void
add_word(struct session *s, const char *text, size_t n)
{
    size_t w = 0;
    char **v;

    /* help lists each command on an indented row, under a title; an
     * older service, as "NAME  help" rows without a title. */
    if (n >= 3 && text[0] == ' ' && text[1] == ' ' && text[2] != ' ') {
        text += 2;
        n -= 2;
    } else {
        while (w < n && text[w] != ' ' && text[w] != '\t')
            w++;
        if (w + 2 > n || text[w + 1] != ' ')
            return;
        w = 0;
    }
    while (w < n && text[w] != ' ' && text[w] != '\t')
        w++;
    if (w == 0)
        return;
    /* Tab puts the word on the terminal, past put_safe: only a word that
     * put_safe would leave as it is (printable ASCII) is offered. */
    for (size_t i = 0; i < w; i++) {
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
            return;
    }
    if (s->nwords == s->cap_words) {
        size_t cap = s->cap_words ? s->cap_words * 2 : 32;
        v = realloc(s->words, cap * sizeof(*v));
        if (v == NULL)
            return;
        s->words = v;
        s->cap_words = cap;
    }
    s->words[s->nwords] = strndup(text, w);
    if (s->words[s->nwords] != NULL)
        s->nwords++;
}

/*
 * One line of a reply, as the library reads it
 * (diesel_console_client_parse).  Replies come in order, so the first
 * s->skip replies to end are the ones Ctrl-C gave up on: their lines are
 * dropped.
 */
static int
handle_line(struct session *s, char *line, size_t n)
{
    const char *text;
    size_t tn;
    int kind = diesel_console_client_parse(line, n, &text, &tn);

    if (s->owed == 0)
        return H_ENDS;
    switch (kind) {
    case DIESEL_CONSOLE_LINE_OUTPUT:
        if (s->skip > 0)
            return H_MORE;
        if (s->collect) {
            add_word(s, text, tn);
        } else {
            put_safe(stdout, text, tn);
            putc('\n', stdout);
        }
        return H_MORE;
    case DIESEL_CONSOLE_LINE_OK:
    case DIESEL_CONSOLE_LINE_ERR:
        s->owed--;
        if (s->skip > 0) {
            s->skip--;
            return H_MORE;
        }
        s->err = kind == DIESEL_CONSOLE_LINE_ERR ? text : NULL;
        return kind == DIESEL_CONSOLE_LINE_OK ? H_OK : H_ERR;
    default:
        return H_ENDS;
    }
}

/* A line that ends the session (BUSY, STUCK after the report, a line when
 * no reply was due, garbage): the library's sentence is the message. */
static int
ended(struct session *s, const char *line, size_t n)
{
    int err = diesel_console_client_explain(s->pid, line, n, s->msg,
        sizeof(s->msg));

    s->closed = 1;
    if (err == EDEADLK) {
        s->stuck = 1;
        return ST_STUCK;
    }
    return ST_CLOSED;
}

/* The next line of a reply, waiting as long as it takes.  What was
 * printed goes out before a wait: a reply that streams (log follow)
 * reaches a pipe or a file as it comes, not at its end, and a long one
 * in full buffers, not a write per line.  (A terminal is line buffered
 * already.  diesel_console_client_pending reads nothing: asking for a
 * line without waiting would read what is readable without a turn of
 * the loop, and a long reply then kept Ctrl-C from being seen.) */
static int
reply_line(struct session *s, char **line, size_t *n)
{
    static int tty = -1;
    int r;

    if (tty < 0)
        tty = isatty(STDOUT_FILENO);
    if (!tty && !diesel_console_client_pending(s->c))
        fflush(stdout);
    r = diesel_console_client_line(s->c, line, n, -1);
    s->last_rx = diesel_now();
    return r;
}

/* The reply green thread: reads one reply to its end. */
static int
reply_task(void *arg)
{
    struct session *s = arg;

    for (;;) {
        char *line;
        size_t n;
        int r = reply_line(s, &line, &n), h;

        if (r < 0 && errno == ECANCELED)
            return RP_INTERRUPTED;
        if (r <= 0) {
            closed(s, r < 0 ? errno : 0);
            return RP_CLOSED;
        }
        h = handle_line(s, line, n);
        if (h == H_MORE)
            continue;
        if (h == H_OK)
            return RP_OK;
        if (h == H_ERR)
            return RP_ERR;
        ended(s, line, n);
        return RP_CLOSED;
    }
}

/*
 * A reply that says nothing for -t seconds: is the service's loop stuck?
 * The session cannot tell (its loop is the one that would answer), so
 * the probe attaches once more, beside it.  A stuck loop answers with its
 * stuck report, printed on standard error with what it means; a session
 * means a loop turns, and the command is only slow: it is closed, and
 * nothing is said.  Once per command; the reply's end, or Ctrl-C, ends
 * the probe.
 */
struct probe {
    char *text;             /* the stuck report, lines */
    size_t len, cap;
};

#define PROBE_TRIES 3
#define PROBE_MIN_MS 2000   /* twice the service's default threshold */

/* The silence that makes a probe: -t, and at least PROBE_MIN_MS. */
static int64_t
probe_quiet(const struct session *s)
{
    int64_t t = (int64_t)(s->o->timeout * 1000.0 + 0.5);

    return t > PROBE_MIN_MS ? t : PROBE_MIN_MS;
}

static void
probe_notice(void *arg, int kind, const char *text, size_t len)
{
    struct probe *p = arg;

    if (kind != DIESEL_CONSOLE_REPORT)
        return;     /* a refusal: the attach fails, and says nothing */
    if (p->len + len + 2 > p->cap) {
        size_t cap = p->cap ? p->cap : 1024;
        char *t;

        while (p->len + len + 2 > cap)
            cap *= 2;
        if ((t = realloc(p->text, cap)) == NULL)
            return;
        p->text = t;
        p->cap = cap;
    }
    memcpy(p->text + p->len, text, len);
    p->len += len;
    p->text[p->len++] = '\n';
    p->text[p->len] = '\0';
}

/* The probe has a session: a loop turns.  With several loops, the
 * session's own may be the one stuck: `loops` says which are. */
static void
probe_loops(struct session *s, struct diesel_console_client *c,
    int64_t silent)
{
    char *reply = NULL, *line, *next;
    size_t len;

    /* No time limit: `loops` waits for the stuck loop's answer (the
     * stuck threshold), and the reply's end cancels the probe. */
    if (diesel_console_client_run(c, "loops", &reply, &len, -1) != 0) {
        free(reply);
        return;
    }
    for (line = reply; line != NULL && *line != '\0'; line = next) {
        char name[64];
        size_t n;

        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        n = strlen(line);
        /* LOOP THREAD TASKS UTIL STATE: the last word. */
        if (n < 6 || strcmp(line + n - 6, " stuck") != 0 ||
            sscanf(line, "%63s", name) != 1)
            continue;
        fflush(stdout);
        warn("no reply for %.1f s: loop %s of PID %ld is stuck, and "
            "answers when it turns again%s; `dconsole %ld` gets a session "
            "on a loop that turns, whose tasks shows the report",
            (double)silent / 1000.0, name, (long)s->pid,
            s->interactive ? " (Ctrl-C gives the prompt back)" : "",
            (long)s->pid);
    }
    free(reply);
}

static int
probe_task(void *arg)
{
    struct session *s = arg;
    struct diesel_console_attach_opts ao;
    struct diesel_console_client *c = NULL;
    struct probe p = { NULL, 0, 0 };
    char why[1024];
    int err = 0;

    memset(&ao, 0, sizeof(ao));
    ao.signo = s->signo;
    ao.dir = s->o->dir;
    ao.timeout_ms = (int64_t)(s->o->timeout * 1000.0 + 0.5);
    ao.notice = probe_notice;
    ao.arg = &p;
    /* The service calls its loop stuck once a turn has lasted its
     * threshold (1 s by default); before that, the request waits for the
     * loop, and times out: try again, the loop stuck longer by then. */
    for (int i = 0; i < PROBE_TRIES; i++) {
        if (i > 0 && diesel_sleep(probe_quiet(s)) != 0)
            break;      /* the reply came, or Ctrl-C */
        c = diesel_console_client_attach(s->pid, &ao, why, sizeof(why));
        err = errno;
        if (c != NULL || err != ETIMEDOUT)
            break;
    }
    if (c != NULL) {
        probe_loops(s, c, diesel_now() - s->last_rx);
        diesel_console_client_close(c);
    } else if (err == EDEADLK && p.len > 0) {
        fflush(stdout);
        warn("no reply for %.1f s: the loop of PID %ld is stuck, and "
            "answers when it turns again%s; its report:",
            (double)(diesel_now() - s->last_rx) / 1000.0, (long)s->pid,
            s->interactive ? " (Ctrl-C gives the prompt back)" : "");
        for (size_t at = 0; at < p.len;) {
            char *nl = memchr(p.text + at, '\n', p.len - at);
            size_t n = (size_t)(nl - (p.text + at));

            put_safe(stderr, p.text + at, n);     /* the app's words */
            putc('\n', stderr);
            at += n + 1;
        }
        fflush(stderr);
    }
    free(p.text);
    return 0;
}

/* Commands whose silence is their design: top and profile watch for a
 * window, log follow streams what comes.  No probe for them (it would
 * open a session at every window of top's redraw). */
static int
silent_by_design(const char *cmd, size_t n)
{
    char w1[16] = "", w2[16] = "";
    char line[64];

    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    memcpy(line, cmd, n);
    line[n] = '\0';
    if (sscanf(line, "%15s %15s", w1, w2) < 1)
        return 0;
    return strcmp(w1, "top") == 0 || strcmp(w1, "profile") == 0 ||
        (strcmp(w1, "log") == 0 && strcmp(w2, "follow") == 0);
}

/* Wait for the reply green thread; when it is silent for -t, probe. */
static int
join_reply(struct session *s, int *st)
{
    int64_t quiet = probe_quiet(s);
    int r;

    s->last_rx = diesel_now();
    for (;;) {
        int64_t wait = -1;

        if (!s->o->local && !s->no_probe && s->probe_id == 0) {
            wait = s->last_rx + quiet - diesel_now();
            if (wait < 0)
                wait = 0;
        }
        r = diesel_task_join(s->reply_id, st, wait);
        if (r == 0 || errno != ETIMEDOUT)
            break;
        if (diesel_now() - s->last_rx >= quiet) {
            s->probe_id = diesel_task_spawn("probe", probe_task, s, 0);
            if (s->probe_id < 0)
                s->probe_id = 1;    /* no probe, and no other try */
        }
    }
    if (s->probe_id > 1) {
        diesel_task_cancel(s->probe_id);
        diesel_task_join(s->probe_id, NULL, -1);
    }
    s->probe_id = 0;
    return r;
}

/* Ctrl-C while a reply is due: a local command's wait is interrupted,
 * and says so in its reply; any other reply is given up (the prompt comes
 * back, and the reply is skipped when it comes). */
static void
interrupt(struct session *s)
{
    if (!s->o->local || !dc_local_interrupt(s->local_cmd))
        diesel_task_cancel(s->reply_id);
}

/* Send one command and read its reply: RP_OK, RP_ERR (printed)... */
static int
run_command(struct session *s, const char *cmd, size_t n)
{
    int r, st = RP_CLOSED;

    r = diesel_console_client_send(s->c, cmd, n);
    if (r != 0) {
        int err = errno;
        char *last;
        size_t ln;

        /* The app may have said why before it closed. */
        while (diesel_console_client_line(s->c, &last, &ln, 0) > 0) {
            const char *text;
            size_t tn;
            int kind = diesel_console_client_parse(last, ln, &text, &tn);

            if (kind == DIESEL_CONSOLE_LINE_BUSY ||
                (kind == DIESEL_CONSOLE_LINE_ERR && s->owed == 0)) {
                ended(s, last, ln);
                return RP_CLOSED;
            }
        }
        closed(s, err);
        return RP_CLOSED;
    }
    s->owed++;
    s->local_cmd = s->o->local && dc_local_is_command(cmd, n);
    s->no_probe = silent_by_design(cmd, n);
    s->reply_id = diesel_task_spawn("reply", reply_task, s, 0);
    if (s->reply_id < 0) {
        s->reply_id = 0;
        fail(s, ST_FAILED, "cannot start a green thread: %s", strerror(errno));
        return RP_CLOSED;
    }
    if (s->int_pending) {
        s->int_pending = 0;
        interrupt(s);
    }
    if (join_reply(s, &st) != 0) {
        /* We are cancelled: the loop is stopping. */
        diesel_task_cancel(s->reply_id);
        st = RP_INTERRUPTED;
    }
    s->reply_id = 0;
    if (s->o->local)
        dc_local_reply_done();
    fflush(stdout);
    if (st == RP_INTERRUPTED)
        s->skip++;      /* its reply is still due: skip it */
    if (st == RP_ERR && s->err != NULL)
        print_error(s->err);
    return st;
}

/* ---- The attach ------------------------------------------------------------------ */

/* What the attach tells while it runs: connections it refused, and the
 * lines of a stuck report, which go to standard output. */
static void
on_notice(void *arg, int kind, const char *text, size_t len)
{
    (void)arg;
    if (kind == DIESEL_CONSOLE_REPORT) {
        put_safe(stdout, text, len);
        putc('\n', stdout);
    } else {
        warn("%.*s", (int)len, text);
    }
}

/* The library attaches (diesel_console_client(3)); its errno is the
 * class of the refusal, its sentence the message. */
static int
attach(struct session *s)
{
    struct diesel_console_attach_opts ao;
    int err;

    memset(&ao, 0, sizeof(ao));
    ao.signo = s->signo;
    ao.dir = s->o->dir;
    ao.timeout_ms = (int64_t)(s->o->timeout * 1000.0 + 0.5);
    ao.notice = on_notice;
    ao.arg = s;
    ao.list_hint = "dconsole -l";
    ao.signal_hint = "-s";
    ao.dir_hint = "-d";
    s->c = diesel_console_client_attach(s->pid, &ao, s->msg, sizeof(s->msg));
    err = errno;
    fflush(stdout);
    if (s->c != NULL)
        return 0;
    switch (err) {
    case ESRCH:
        return ST_NOPROC;
    case EPERM:
        return ST_PERM;
    case ENOTSUP:
        return ST_NOHANDLER;
    case ETIMEDOUT:
        return ST_TIMEOUT;
    case EBUSY:
    case EPROTO:
        s->closed = 1;
        return ST_CLOSED;
    case EDEADLK:
        s->closed = 1;
        s->stuck = 1;
        return ST_STUCK;
    default:
        return ST_FAILED;   /* ECANCELED: a signal stops us, no message */
    }
}

/* ---- Sessions ------------------------------------------------------------------------ */

/* While the prompt waits: the app must say nothing; if it goes away, or
 * speaks out of turn, tell main at once. */
static int
watch_task(void *arg)
{
    struct session *s = arg;

    for (;;) {
        char *line;
        size_t n;
        int r, h;

        r = diesel_console_client_line(s->c, &line, &n, -1);
        if (r < 0 && errno == ECANCELED)
            return 0;
        if (r <= 0) {
            closed(s, r < 0 ? errno : 0);
            diesel_task_cancel(s->main_id);
            return 0;
        }
        h = handle_line(s, line, n);
        if (h != H_MORE) {
            ended(s, line, n);
            diesel_task_cancel(s->main_id);
            return 0;
        }
    }
}

static const char *
history_path(void)
{
    static char path[PATH_MAX];
    const char *home = getenv("HOME");

    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL ||
        (size_t)snprintf(path, sizeof(path), "%s/.dconsole_history", home) >=
        sizeof(path))
        return NULL;
    return path;
}

static int
is_blank(const char *line)
{
    return line[strspn(line, " \t")] == '\0';
}

/* The first word is "quit". */
static int
is_quit(const char *line)
{
    line += strspn(line, " \t");
    return strncmp(line, "quit", 4) == 0 &&
        (line[4] == '\0' || line[4] == ' ' || line[4] == '\t');
}

/* `top` at the prompt, without --json: one window is not what an
 * operator watching wants. */
static int
is_top(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    return strncmp(line, "top", 3) == 0 && (line[3] == '\0' ||
        line[3] == ' ' || line[3] == '\t') && strstr(line, "--json") == NULL;
}

/* Like top(1): the screen cleared and top's window drawn again, window
 * after window (the window is the pause), until a key is pressed; keys
 * are read without echo or Enter meanwhile. */
static int
top_redraw(struct session *s, const char *line)
{
    struct termios cooked, keys;
    int term = tcgetattr(0, &cooked) == 0, r;

    if (term) {
        keys = cooked;
        keys.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        keys.c_cc[VMIN] = 0;
        keys.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &keys);
    }
    for (;;) {
        struct pollfd pfd = { 0, POLLIN, 0 };
        char junk[64];

        fputs("\033[H\033[2J", stdout);
        r = run_command(s, line, strlen(line));
        if (r != RP_OK)
            break;
        fputs("(a key stops)\n", stdout);
        fflush(stdout);
        if (poll(&pfd, 1, 0) > 0) {
            while (read(0, junk, sizeof(junk)) > 0)
                ;
            break;
        }
    }
    if (term)
        tcsetattr(0, TCSANOW, &cooked);
    return r;
}

static int
interactive(struct session *s)
{
    const char *hist = history_path();
    int r;

    if (!s->o->quiet) {
        printf(s->o->local ? "Local console PID=%ld (help lists the client "
            "commands)\n" : "Remote console PID=%ld\n", (long)s->pid);
        fflush(stdout);
    }
    /* The command names, for Tab. */
    s->collect = 1;
    r = run_command(s, "help", 4);
    s->collect = 0;
    if (r == RP_CLOSED || r == RP_INTERRUPTED)
        return r == RP_CLOSED ? (s->stuck ? ST_STUCK : ST_CLOSED) : ST_OK;
    s->ed = dc_edit_create(0, 1);
    if (s->ed == NULL)
        return fail(s, ST_FAILED, "out of memory");
    dc_edit_set_words(s->ed, s->words, s->nwords);
    if (hist != NULL)
        dc_edit_history_load(s->ed, hist);
    for (;;) {
        int64_t watch = diesel_task_spawn("watch", watch_task, s, 0);
        char *line;

        s->busy = 0;
        s->int_pending = 0;
        r = dc_edit_readline(s->ed, PROMPT, &line);
        s->busy = r > 0;
        if (watch > 0) {
            diesel_task_cancel(watch);
            diesel_task_join(watch, NULL, -1);
        }
        if (s->closed)
            return s->stuck ? ST_STUCK : ST_CLOSED;
        if (r < 0) {
            if (errno == ECANCELED)
                return ST_FAILED;    /* stopped by a signal */
            return fail(s, ST_FAILED, "reading the terminal: %s",
                strerror(errno));
        }
        if (r == 0)
            return ST_OK;
        if (is_blank(line))
            continue;
        dc_edit_history_add(s->ed, line);
        r = is_top(line) ? top_redraw(s, line) :
            run_command(s, line, strlen(line));
        if (r == RP_CLOSED)
            return s->stuck ? ST_STUCK :
                s->closed && is_quit(line) ? ST_OK : ST_CLOSED;
        if (r == RP_INTERRUPTED) {
            if (s->stopping)
                return ST_FAILED;
            putchar('\n');
            fflush(stdout);
        }
        if (r == RP_OK && is_quit(line))
            return ST_OK;
    }
}

/* Standard input, one command per line. */
static int
piped(struct session *s)
{
    char *buf = malloc(MAX_INPUT_LINE + 1);
    size_t len = 0, lineno = 0;
    int failed = 0, eof = 0, st = ST_OK;

    if (buf == NULL)
        return fail(s, ST_FAILED, "out of memory");
    while (!eof || len > 0) {
        char *nl = memchr(buf, '\n', len);
        size_t n;

        if (nl == NULL && !eof && len < MAX_INPUT_LINE) {
            ssize_t r;

            if (diesel_fd_wait(0, DIESEL_READ, -1) < 0) {
                if (errno == ECANCELED) {
                    st = ST_FAILED;
                    goto out;
                }
                eof = 1;    /* EBADF: no standard input */
                continue;
            }
            r = read(0, buf + len, MAX_INPUT_LINE - len);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0)
                eof = 1;
            else
                len += (size_t)r;
            continue;
        }
        lineno++;
        if (nl == NULL && len == MAX_INPUT_LINE) {
            /* Too long for the protocol anyway: drop it to its end. */
            warn("line %zu of standard input is longer than %d bytes: "
                "skipped", lineno, MAX_INPUT_LINE);
            failed = 1;
            len = 0;
            for (;;) {
                ssize_t r;
                if (diesel_fd_wait(0, DIESEL_READ, -1) < 0 ||
                    (r = read(0, buf, MAX_INPUT_LINE)) <= 0) {
                    eof = 1;
                    break;
                }
                nl = memchr(buf, '\n', (size_t)r);
                if (nl != NULL) {
                    len = (size_t)r - (size_t)(nl + 1 - buf);
                    memmove(buf, nl + 1, len);
                    break;
                }
            }
            if (s->o->stop_on_error) {
                st = ST_FAILED;
                goto out;
            }
            continue;
        }
        n = nl != NULL ? (size_t)(nl - buf) : len;
        buf[n] = '\0';
        if (!is_blank(buf)) {
            int r = run_command(s, buf, n);
            int quit = is_quit(buf);

            if (r == RP_CLOSED) {
                st = s->stuck ? ST_STUCK :
                    s->closed && quit ? ST_OK : ST_CLOSED;
                goto out;
            }
            if (r != RP_OK) {
                failed = 1;
                if (s->o->stop_on_error) {
                    st = ST_FAILED;
                    goto out;
                }
            }
            if (r == RP_OK && quit)
                break;
        }
        n = nl != NULL ? n + 1 : len;
        memmove(buf, buf + n, len - n);
        len -= n;
    }
    st = failed ? ST_FAILED : ST_OK;
out:
    free(buf);
    if (st == ST_OK && failed)
        st = ST_FAILED;
    return st;
}

/* Join the words of a one-shot command, quoting as diesel-console(7)
 * splits them: "double quotes" group, with \" and \\ inside. */
static char *
join_command(char **argv, int argc, size_t *len)
{
    size_t cap = 1, n = 0;
    char *line;

    for (int i = 0; i < argc; i++)
        cap += strlen(argv[i]) * 2 + 3;
    line = malloc(cap);
    if (line == NULL)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int quote = a[0] == '\0' || strpbrk(a, " \t\"\\") != NULL;

        if (i > 0)
            line[n++] = ' ';
        if (quote)
            line[n++] = '"';
        for (; *a != '\0'; a++) {
            if (quote && (*a == '"' || *a == '\\'))
                line[n++] = '\\';
            line[n++] = *a;
        }
        if (quote)
            line[n++] = '"';
    }
    line[n] = '\0';
    *len = n;
    return line;
}

/*
 * One operand holding a whole line, "tasks --json" (as a command quoted
 * whole over ssh): its first word a name, then a blank.  No command's
 * name holds a blank, so quoting it as one word could only be refused:
 * it is sent as the line, as if typed at the prompt.
 */
static int
whole_line(char **argv, int argc)
{
    const char *a = argv[0];
    size_t name;

    if (argc != 1)
        return 0;
    name = strspn(a, "abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");
    return name > 0 && (a[name] == ' ' || a[name] == '\t');
}

static int
one_shot(struct session *s)
{
    size_t n = 0;
    char *line;
    int r;

    if (whole_line(s->o->cmd, s->o->ncmd)) {
        line = strdup(s->o->cmd[0]);
        n = line != NULL ? strlen(line) : 0;
    } else {
        line = join_command(s->o->cmd, s->o->ncmd, &n);
    }
    if (line == NULL)
        return fail(s, ST_FAILED, "out of memory");
    r = run_command(s, line, n);
    free(line);
    if (r == RP_CLOSED)
        return s->stuck ? ST_STUCK :
            s->closed && is_quit(s->o->cmd[0]) ? ST_OK : ST_CLOSED;
    return r == RP_OK ? ST_OK : ST_FAILED;
}

/* The signal green thread: the handler only writes the signal number. */
static int
signal_task(void *arg)
{
    struct session *s = arg;

    for (;;) {
        unsigned char c;

        if (diesel_fd_wait(sig_pipe[0], DIESEL_READ, -1) < 0)
            return 0;
        while (read(sig_pipe[0], &c, 1) == 1) {
            if (c == SIGINT && s->interactive && s->reply_id > 0) {
                /* Ctrl-C while a reply prints: back to the prompt. */
                interrupt(s);
                continue;
            }
            if (c == SIGINT && s->interactive && s->busy) {
                /* The line has left the editor (which gave the terminal
                 * back, so Ctrl-C is a signal again) but its reply has
                 * not started: it is for that reply. */
                s->int_pending = 1;
                continue;
            }
            stop_signal = c;
            s->stopping = 1;
            diesel_loop_stop(128 + c);
            return 0;
        }
    }
}

static int
client_main(void *arg)
{
    struct session *s = arg;
    int st;

    s->main_id = diesel_task_self();
    if (diesel_task_spawn("signals", signal_task, s, 0) < 0)
        st = fail(s, ST_FAILED, "cannot start a green thread: %s",
            strerror(errno));
    else if (s->o->local)
        st = (s->c = dc_local_open((int64_t)(s->o->timeout * 1000.0 + 0.5),
            s->msg, sizeof(s->msg))) != NULL ? ST_OK : ST_FAILED;
    else
        st = attach(s);
    if (st == ST_OK) {
        if (s->o->ncmd > 0)
            st = one_shot(s);
        else if (s->interactive)
            st = interactive(s);
        else
            st = piped(s);
    }
    diesel_console_client_close(s->c);
    s->c = NULL;
    diesel_loop_stop(st);   /* the signal green thread too */
    return st;
}

static void
on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;

    if (write(sig_pipe[1], &c, 1) < 0) {
        /* Full: a signal is already on its way. */
    }
    errno = saved;
}

static int
client(const struct opts *o)
{
    struct session s;
    struct sigaction sa;
    int st;

    memset(&s, 0, sizeof(s));
    s.o = o;
    s.signo = o->signo != 0 ? o->signo : SIGTRAP;
    s.pid = o->local ? getpid() : o->pid;
    s.interactive = o->ncmd == 0 && isatty(0) && isatty(1);
    if (pipe(sig_pipe) != 0) {
        warn("pipe: %s", strerror(errno));
        return ST_FAILED;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* The tool's own loop need not announce itself: the app's log is
     * where the session is recorded. */
    diesel_log_level_set("diesel", DIESEL_LOG_ERROR);
    st = diesel_loop_run(client_main, &s);
    if (st < 0 && s.msg[0] == '\0' && stop_signal == 0)
        fail(&s, ST_FAILED, "cannot run the loop: %s", strerror(errno));
    if (st < 0)
        st = ST_FAILED;
    if (s.ed != NULL) {
        const char *hist = history_path();

        if (hist != NULL)
            dc_edit_history_save(s.ed, hist);
        dc_edit_destroy(s.ed);
    }
    fflush(stdout);
    if (s.msg[0] != '\0')
        warn("%s", s.msg);
    for (size_t i = 0; i < s.nwords; i++)
        free(s.words[i]);
    free(s.words);
    if (stop_signal != 0) {
        signal(stop_signal, SIG_DFL);
        raise(stop_signal);
        st = 128 + stop_signal;
    }
    return st;
}

/* ---- dconsole -l ------------------------------------------------------------------------ */

static void
format_uptime(long t, char *buf, size_t size)
{
    if (t < 0)
        snprintf(buf, size, "?");
    else if (t < 60)
        snprintf(buf, size, "%lds", t);
    else if (t < 3600)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else
        snprintf(buf, size, "%ldd%02ldh", t / 86400, t % 86400 / 3600);
}

/* One row of -l: the library lists only proven services, as an attach
 * would prove them, in the order of their pids; the header comes first. */
static int
list_row(const struct diesel_console_service *sv, void *arg)
{
    size_t *rows = arg;
    int root = geteuid() == 0;
    char up[32], user[32];

    if ((*rows)++ == 0) {
        if (root)
            printf("%7s  %-10s %8s  %s\n", "PID", "USER", "UPTIME",
                "COMMAND");
        else
            printf("%7s  %8s  %s\n", "PID", "UPTIME", "COMMAND");
    }
    format_uptime(sv->uptime, up, sizeof(up));
    if (root) {
        struct passwd *pw = getpwuid(sv->uid);

        if (pw != NULL)
            snprintf(user, sizeof(user), "%s", pw->pw_name);
        else
            snprintf(user, sizeof(user), "%lu", (unsigned long)sv->uid);
        printf("%7ld  %-10s %8s  ", (long)sv->pid, user, up);
    } else {
        printf("%7ld  %8s  ", (long)sv->pid, up);
    }
    put_safe(stdout, sv->comm, strlen(sv->comm));
    if (sv->signo != SIGTRAP)
        printf("  (console on %s: dconsole -s %d %ld)", sig_name(sv->signo),
            sv->signo, (long)sv->pid);
    putchar('\n');
    return 0;
}

static int
list_procs(const struct opts *o)
{
    int signo = o->signo != 0 ? o->signo : SIGTRAP;
    size_t rows = 0;

    /* With no -s, those on another signal too, each saying its own. */
    if (diesel_console_client_list(o->signo != 0 ? o->signo : -1, o->dir,
        list_row, &rows) != 0) {
        warn("cannot list processes: %s", strerror(errno));
        return ST_FAILED;
    }
    if (rows == 0)
        warn("no libdiesel service%s has its console on %s",
            geteuid() == 0 ? "" : " of yours", sig_name(signo));
    return ST_OK;
}

/* ---- Options ---------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: dconsole [-eq] [-d DIR] [-o FILE] [-s SIGNAL] [-t SECONDS] PID [COMMAND [ARG ...]]\n"
    "       dconsole -l [-s SIGNAL]\n"
    "       dconsole [-s SIGNAL] dummy\n"
    "       dconsole [-eq] [-o FILE] [-t SECONDS] local [COMMAND [ARG ...]]\n"
    "       dconsole -h | --version\n";

static const char help_text[] =
    "\n"
    "Attach to the libdiesel service PID and get a >>> prompt inside it;\n"
    "with COMMAND, run that one command; with standard input not a terminal,\n"
    "run one command per input line.  `dconsole local` runs the console on\n"
    "dconsole's own loop instead, with commands to try the library by hand:\n"
    "connect, send, readline, recv, close, conns, resolve, sleep and fetch\n"
    "(an HTTP/1.1 GET; no https: libc has no TLS).\n"
    "\n"
    "  -d DIR      rendezvous directory (as DIESEL_CONSOLE_DIR)\n"
    "  -e          with commands on standard input: stop at the first failure\n"
    "  -l          list the processes that catch the console signal\n"
    "  -o FILE     write the replies to FILE instead of standard output\n"
    "  -q          quiet: no banner\n"
    "  -s SIGNAL   the console signal, a name or a number (default TRAP)\n"
    "  -t SECONDS  how long to wait for the service to answer (default 5);\n"
    "              with local, for a command's wait (connect, readline...)\n"
    "  -h          this help\n"
    "  --version   the version\n"
    "\n"
    "Exit status: 0 ok, 1 a command failed, 2 usage, 3 no such process,\n"
    "4 not permitted, 5 no console handler, 6 no answer in time, 7 the\n"
    "service closed the session, 8 the loop is stuck (its report printed).\n"
    "See dconsole(1).\n";

static int
usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage(const char *fmt, ...)
{
    va_list ap;

    if (fmt != NULL) {
        fputs("dconsole: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    fputs(usage_text, stderr);
    return ST_USAGE;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    o->timeout = DEFAULT_TIMEOUT;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--version") == 0) {
            o->version = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (a[1] == '-')
            return usage("unknown option %s", a);
        for (const char *p = a + 1; *p != '\0'; p++) {
            const char *val;
            char *end;

            switch (*p) {
            case 'e': o->stop_on_error = 1; continue;
            case 'h': o->help = 1; continue;
            case 'l': o->list = 1; continue;
            case 'q': o->quiet = 1; continue;
            case 'd': case 'o': case 's': case 't':
                break;
            default:
                return usage("unknown option -%c", *p);
            }
            if (p[1] != '\0')
                val = p + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return usage("option -%c needs a value", *p);
            if (*p == 'd') {
                if (val[0] == '\0')
                    return usage("-d: an empty directory name");
                o->dir = val;
            } else if (*p == 'o') {
                o->out = val;
            } else if (*p == 's') {
                o->signo = diesel_signal_parse(val);
                if (o->signo < 0)
                    return usage("-s %s: not a signal", val);
                if (o->signo == SIGKILL || o->signo == SIGSTOP)
                    return usage("-s %s: %s cannot be caught", val,
                        sig_name(o->signo));
            } else {
                errno = 0;
                o->timeout = strtod(val, &end);
                if (errno != 0 || end == val || *end != '\0' ||
                    !(o->timeout > 0) || o->timeout > 86400)
                    return usage("-t %s: not a number of seconds greater "
                        "than 0 and at most 86400", val);
            }
            break;
        }
    }
    if (o->help || o->version)
        return 0;
    if (o->list) {
        if (i < argc)
            return usage("-l takes no operands");
        return 0;
    }
    if (i >= argc)
        return usage(NULL);
    if (strcmp(argv[i], "dummy") == 0) {
        if (i + 1 < argc)
            return usage("dummy takes no operands");
        o->dummy = 1;
        return 0;
    }
    if (strcmp(argv[i], "local") == 0) {
        if (o->dir != NULL || o->signo != 0)
            return usage("-d and -s are for attaching to a service, not for "
                "local");
        o->local = 1;
    } else {
        char *end;
        long pid;

        errno = 0;
        pid = strtol(argv[i], &end, 10);
        if (errno != 0 || end == argv[i] || *end != '\0' || pid <= 0 ||
            (long)(pid_t)pid != pid)
            return usage("%s: not a process id", argv[i]);
        o->pid = (pid_t)pid;
    }
    i++;
    o->cmd = argv + i;
    o->ncmd = argc - i;
    for (int k = 0; k < o->ncmd; k++) {
        if (strchr(o->cmd[k], '\n') != NULL)
            return usage("a command cannot hold a newline");
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct opts o;
    int st = parse_args(argc, argv, &o);

    if (st != 0)
        return st;
    if (o.help) {
        fputs(usage_text, stdout);
        fputs(help_text, stdout);
        return ST_OK;
    }
    if (o.version) {
        printf("dconsole (libdiesel) %s\n", DIESEL_VERSION_STRING);
        return ST_OK;
    }
    /* The replies to a file (`profile --folded` for a flame graph): the
     * whole of standard output, before anything is written to it. */
    if (o.out != NULL) {
        int fd = open(o.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) {
            fprintf(stderr, "dconsole: -o %s: %s\n", o.out, strerror(errno));
            return ST_FAILED;
        }
        if (fd != STDOUT_FILENO)
            close(fd);
    }
    if (o.list)
        return list_procs(&o);
    if (o.dummy)
        return dc_dummy_main(o.signo);
    return client(&o);
}
