/*
 * dconsole.c: the operator's side of libdiesel's console.
 *
 *   dconsole PID               attach; a >>> prompt with line editing
 *   dconsole PID COMMAND ...   run one command, exit 0 on OK, 1 on ERR
 *   ... | dconsole PID         one command per input line, no prompts
 *   dconsole -l                the services that can be attached to
 *   dconsole dummy             the demo service (dconsole_dummy.c)
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
    H_UNSOLICITED,      /* a line when no reply was due */
    H_BAD,              /* not a reply line at all */
    H_STUCK,            /* STUCK <ms>: the handler's report ended */
    H_BUSY,             /* BUSY <n>: the app serves its most sessions */
};

#define PROMPT ">>> "
#define DEFAULT_TIMEOUT 5.0
#define MAX_REPLY_LINE (16u << 20)  /* longer reply lines: protocol error */
#define MAX_INPUT_LINE 65536        /* longer standard input lines: refused */
#define LIVENESS_MS 250             /* how often the attach checks the target */
#define RESIGNAL_MS 1000            /* how often it signals again meanwhile */

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
    pid_t pid;              /* the target */
    char **cmd;             /* a one-shot command and its arguments */
    int ncmd;               /* how many words; 0 for a session */
};

struct session {
    const struct opts *o;
    int signo;              /* the console signal */
    pid_t pid;              /* the target */
    uid_t uid;              /* its effective uid */
    char comm[64];          /* its command name */
    int fd;                 /* the connection, -1 before */
    char *buf;              /* bytes read from the app */
    size_t off;             /* the first not yet handled */
    size_t len;             /* bytes in buf */
    size_t cap;             /* room in buf */
    int owed;               /* commands sent whose reply has not ended */
    int skip;               /* of those, replies Ctrl-C gave up on */
    int interactive;        /* terminal on both ends: prompt and editor */
    int64_t main_id;        /* the main green thread */
    int64_t reply_id;       /* the reply green thread, 0 if none */
    int closed;             /* the app closed the session */
    int stopping;           /* a signal is stopping dconsole */
    char *err;              /* the last ERR message (in buf) */
    char **words;           /* what the app's help lists: for Tab */
    size_t nwords;
    size_t cap_words;
    int collect;            /* reply output goes to words, not stdout */
    struct dc_edit *ed;     /* the line editor (interactive only) */
    int stuck;              /* the app sent its stuck report (exit 8) */
    int pidfd;              /* a handle on the target, or -1 */
    int looks;              /* the target's state read while waiting */
    int running;            /* of those, 'R': running or runnable */
    char msg[1024];         /* the message to print on the way out */
};

/* Process-wide state that signal handlers and the exit path share. */
static int sock_dirfd = -1;   /* the rendezvous directory holding it */
static char sock_name[64];    /* our socket's name in it */
static int have_sock;
static int sig_pipe[2] = { -1, -1 };
static int stop_signal;

/* ---- Signal names ----------------------------------------------------------- */

static const struct {
    const char *name;
    int signo;
} signames[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
    { "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
    { "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL },
    { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
    { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
    { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
    { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
    { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
    { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
    { "SYS", SIGSYS },
};

static const char *
sig_name(int signo)
{
    static char other[32];

    for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++) {
        if (signames[i].signo == signo) {
            snprintf(other, sizeof(other), "SIG%s", signames[i].name);
            return other;
        }
    }
    snprintf(other, sizeof(other), "signal %d", signo);
    return other;
}

static int
sig_parse(const char *s)
{
    char *end;
    long n;

    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++) {
        if (strcasecmp(signames[i].name, s) == 0)
            return signames[i].signo;
    }
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 1 || n >= NSIG)
        return -1;
    return (int)n;
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

/* A valid UTF-8 sequence at s (not a C1 control): its length, else 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        if (c == 0xc2)
            lo = 0xa0;  /* U+0080..U+009F are C1 controls */
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;  /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return need;
}

/*
 * Write what came from the app so that it cannot drive the terminal: the
 * app escapes control bytes already (diesel-console(7)), but root may be
 * attached to a user's process, and that user should not get to send
 * escape sequences to root's terminal.  Tabs and valid UTF-8 pass; any
 * other byte below 0x20, 0x7f, C1 controls and invalid UTF-8 become \xHH
 * (the rule of lib/escape.c).  Every byte from another process that
 * dconsole prints goes through here: replies, the stuck report, the
 * app's errors (print_error), messages that quote a process name, a
 * greeting or a bad line (warn), and -l rows.
 */
static void
put_safe(FILE *f, const char *text, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    char out[512];
    size_t i = 0, o = 0;

    /* Through a buffer: standard error is unbuffered, and a byte per
     * write would be a system call per byte. */
    while (i < n) {
        unsigned char c = s[i];
        size_t len;

        if (o + 8 > sizeof(out)) {
            fwrite(out, 1, o, f);
            o = 0;
        }
        if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
            out[o++] = (char)c;
            i++;
        } else if (c >= 0x80 && (len = utf8_len(s + i, n - i)) > 0) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            i++;
        }
    }
    fwrite(out, 1, o, f);
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

/* The next complete line already read, NUL-terminated; NULL if none. */
static char *
conn_line(struct session *s, size_t *n)
{
    char *start, *nl;

    if (s->buf == NULL)
        return NULL;
    start = s->buf + s->off;
    nl = memchr(start, '\n', s->len - s->off);
    if (nl == NULL)
        return NULL;
    *nl = '\0';
    *n = (size_t)(nl - start);
    s->off = (size_t)(nl + 1 - s->buf);
    return start;
}

/* Wait up to timeout_ms for bytes and read them: > 0, 0 at EOF, -1. */
static int
conn_fill(struct session *s, int64_t timeout_ms)
{
    ssize_t n;

    if (s->off > 0) {
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16384;
        char *b;

        if (s->cap >= MAX_REPLY_LINE) {
            errno = EMSGSIZE;
            return -1;
        }
        b = realloc(s->buf, cap + 1);
        if (b == NULL)
            return -1;
        s->buf = b;
        s->cap = cap;
    }
    for (;;) {
        if (diesel_fd_wait(s->fd, DIESEL_READ, timeout_ms) < 0)
            return -1;
        n = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (n >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
    s->len += (size_t)n;
    return n > 0 ? 1 : 0;
}

/* A whole line by deadline (-1: none): 1, 0 at EOF, -1 with errno. */
static int
conn_getline(struct session *s, int64_t deadline, char **line, size_t *n)
{
    for (;;) {
        int64_t left = -1;
        int r;

        *line = conn_line(s, n);
        if (*line != NULL)
            return 1;
        if (deadline >= 0) {
            left = deadline - diesel_now();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
        /* What was printed goes out before waiting for more: a reply
         * that streams (log follow) reaches a pipe or a file as it
         * comes, not at its end. */
        fflush(stdout);
        r = conn_fill(s, left);
        if (r <= 0)
            return r;
    }
}

static int
conn_send(struct session *s, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = send(s->fd, data, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN &&
                diesel_fd_wait(s->fd, DIESEL_WRITE, -1) >= 0)
                continue;
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Why the connection ended, for s->msg.  Give a dying target a moment to
 * be gone, so that the message can say it exited. */
static int
closed(struct session *s, int err)
{
    struct dc_proc p;

    s->closed = 1;
    for (int i = 0; i < 20; i++) {
        if (dc_proc_get(s->pid, s->signo, &p) != 0 && errno == ESRCH)
            return fail(s, ST_CLOSED, "PID %ld exited: the session is over",
                (long)s->pid);
        if (diesel_sleep(10) != 0)
            break;
    }
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
 * One line of a reply.  Replies come in order, so the first s->skip
 * replies to end are the ones Ctrl-C gave up on: their lines are dropped.
 */
static int
handle_line(struct session *s, char *line, size_t n)
{
    if (line[0] == '|' && (line[1] == ' ' || line[1] == '\0')) {
        const char *text = line[1] ? line + 2 : line + 1;
        size_t tn = line[1] ? n - 2 : 0;

        if (s->owed == 0)
            return H_UNSOLICITED;
        if (s->skip > 0)
            return H_MORE;
        if (s->collect) {
            add_word(s, text, tn);
        } else {
            put_safe(stdout, text, tn);
            putc('\n', stdout);
        }
        return H_MORE;
    }
    if (strncmp(line, "STUCK ", 6) == 0)
        return H_STUCK;
    if (strncmp(line, "BUSY ", 5) == 0)
        return H_BUSY;
    if (strcmp(line, "OK") == 0 || strncmp(line, "ERR", 3) == 0) {
        int ok = line[0] == 'O';

        if (!ok && line[3] != ' ' && line[3] != '\0')
            return H_BAD;
        if (s->owed == 0) {
            s->err = ok ? NULL : line + (line[3] ? 4 : 3);
            return H_UNSOLICITED;
        }
        s->owed--;
        if (s->skip > 0) {
            s->skip--;
            return H_MORE;
        }
        s->err = ok ? NULL : line + (line[3] ? 4 : 3);
        return ok ? H_OK : H_ERR;
    }
    return H_BAD;
}

/* The app's handler answered instead of its loop: "STUCK <ms>" ended the
 * report, whose lines went to standard output. */
static int
stuck(struct session *s, const char *line)
{
    long long ms = strtoll(line + 6, NULL, 10);

    s->closed = 1;
    s->stuck = 1;
    if (ms < 0)
        ms = 0;
    return fail(s, ST_STUCK, "the loop of PID %ld is stuck (no turn for "
        "%lld.%03lld s): the report above says which green thread holds it",
        (long)s->pid, ms / 1000, ms % 1000);
}

/* "BUSY <n>" right after the greeting: the app serves n sessions
 * already, its most, and closes. */
static int
busy(struct session *s, const char *line)
{
    long n = strtol(line + 5, NULL, 10);

    s->closed = 1;
    return fail(s, ST_CLOSED, "PID %ld refused the session: busy, with %ld "
        "console sessions open already (its most); try again once one "
        "ends", (long)s->pid, n);
}

static int
bad_line(struct session *s, int h, const char *line)
{
    if (h == H_STUCK)
        return stuck(s, line);
    if (h == H_BUSY)
        return busy(s, line);
    s->closed = 1;
    if (h == H_UNSOLICITED && s->err != NULL)
        return fail(s, ST_CLOSED, "PID %ld ended the session: %.900s",
            (long)s->pid, s->err);
    return fail(s, ST_CLOSED, "PID %ld broke the console protocol (%s: "
        "\"%.60s\"): the session is over", (long)s->pid,
        h == H_UNSOLICITED ? "a line when no reply was due" :
        "not a reply line", line);
}

/* The reply green thread: reads one reply to its end. */
static int
reply_task(void *arg)
{
    struct session *s = arg;

    for (;;) {
        char *line;
        size_t n;
        int r = conn_getline(s, -1, &line, &n), h;

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
        bad_line(s, h, line);   /* H_STUCK, H_BUSY too */
        return RP_CLOSED;
    }
}

/* Send one command and read its reply: RP_OK, RP_ERR (printed)... */
static int
run_command(struct session *s, const char *cmd, size_t n)
{
    char *line = malloc(n + 1);
    int r, st = RP_CLOSED;

    if (line == NULL) {
        fail(s, ST_FAILED, "out of memory");
        return RP_CLOSED;
    }
    memcpy(line, cmd, n);
    line[n] = '\n';
    r = conn_send(s, line, n + 1);
    free(line);
    if (r != 0) {
        int err = errno;
        char *last;
        size_t ln;

        /* The app may have said why before it closed. */
        while (conn_fill(s, 0) > 0)
            ;
        while ((last = conn_line(s, &ln)) != NULL) {
            if (strncmp(last, "BUSY ", 5) == 0) {
                busy(s, last);
                return RP_CLOSED;
            }
            if (strncmp(last, "ERR ", 4) == 0 && s->owed == 0) {
                s->closed = 1;
                fail(s, ST_CLOSED, "PID %ld ended the session: %.900s",
                    (long)s->pid, last + 4);
                return RP_CLOSED;
            }
        }
        closed(s, err);
        return RP_CLOSED;
    }
    s->owed++;
    s->reply_id = diesel_task_spawn("reply", reply_task, s, 0);
    if (s->reply_id < 0) {
        s->reply_id = 0;
        fail(s, ST_FAILED, "cannot start a green thread: %s", strerror(errno));
        return RP_CLOSED;
    }
    if (diesel_task_join(s->reply_id, &st, -1) != 0) {
        /* We are cancelled: the loop is stopping. */
        diesel_task_cancel(s->reply_id);
        st = RP_INTERRUPTED;
    }
    s->reply_id = 0;
    fflush(stdout);
    if (st == RP_INTERRUPTED)
        s->skip++;      /* its reply is still due: skip it */
    if (st == RP_ERR && s->err != NULL)
        print_error(s->err);
    return st;
}

/* ---- The attach ------------------------------------------------------------------ */

/* The rendezvous directory for uid (console-spec.md, "Rendezvous"). */
static int
rendezvous_dir(struct session *s, char *dir, size_t size)
{
    const char *d = s->o->dir != NULL ? s->o->dir : getenv("DIESEL_CONSOLE_DIR");
    char run[64];
    struct stat st;
    int n;

    if (d != NULL && d[0] != '\0') {
        n = snprintf(dir, size, "%s", d);
    } else {
        snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)s->uid);
        if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) &&
            st.st_uid == s->uid) {
            n = snprintf(dir, size, "%s/diesel", run);
        } else {
            const char *tmp = getenv("TMPDIR");

            if (tmp == NULL || tmp[0] == '\0')
                tmp = "/tmp";
            n = snprintf(dir, size, "%s/diesel-%lu", tmp,
                (unsigned long)s->uid);
        }
    }
    if (n < 0 || (size_t)n >= size)
        return fail(s, ST_FAILED, "rendezvous directory name too long");
    return 0;
}

/*
 * Open dir, the target user's private directory, and check it through the
 * descriptor: every later step (the advertisement, the sweep, the bind,
 * the chown, the unlink) is relative to it, so that the path swapped for
 * a symlink after the check leads nowhere.  Refuse, never repair, one
 * that is anything else.  0 and *dfd, or an exit status.
 */
static int
check_dir(struct session *s, const char *dir, int *dfd)
{
    struct stat st;
    unsigned long uid = (unsigned long)s->uid;
    int fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;

        if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
            return fail(s, ST_PERM, "rendezvous directory %s is a symbolic "
                "link: refusing to use it (someone may be trying to "
                "intercept the console; remove it)", dir);
        if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
            return fail(s, ST_PERM, "rendezvous directory %s is not a "
                "directory: refusing to use it (remove it)", dir);
        if (err == ENOENT)
            return fail(s, ST_NOHANDLER, "PID %ld (%s) is not proven to be "
                "a libdiesel service with its console installed (no "
                "rendezvous directory %s: it has advertised no console); "
                "not signalled.  Check with `dconsole -l`, which lists the "
                "services that can be attached to", (long)s->pid, s->comm,
                dir);
        return fail(s, ST_FAILED, "rendezvous directory %s: %s", dir,
            strerror(err));
    }
    if (fstat(fd, &st) != 0) {
        int err = errno;

        close(fd);
        return fail(s, ST_FAILED, "rendezvous directory %s: %s", dir,
            strerror(err));
    }
    if (st.st_uid != s->uid) {
        close(fd);
        return fail(s, ST_PERM, "rendezvous directory %s belongs to uid %lu, "
            "not to uid %lu who runs PID %ld: refusing to use it (remove it)",
            dir, (unsigned long)st.st_uid, uid, (long)s->pid);
    }
    if (st.st_mode & 077) {
        close(fd);
        return fail(s, ST_PERM, "rendezvous directory %s has mode %04o, not "
            "0700: refusing to use it (others could reach the console; "
            "chmod 700 it or remove it)", dir, (unsigned)(st.st_mode & 07777));
    }
    *dfd = fd;
    return 0;
}

/*
 * The advertisement <dfd>/service-<pid> (diesel-console(7)): a regular
 * file of uid, "DIESEL-CONSOLE-SERVICE 1 pid=<pid> start=<start>
 * signal=<signo>".  0 with *start and *signo, or -1 with why.
 */
static int
read_advert(int dfd, pid_t pid, uid_t uid, uint64_t *start, int *signo,
    char *why, size_t size)
{
    char name[64], text[160];
    unsigned long long st_;
    long apid;
    struct stat st;
    ssize_t n;
    int fd, sig, end = 0;

    snprintf(name, sizeof(name), "service-%ld", (long)pid);
    /* O_NONBLOCK: a FIFO in its place must not hang us. */
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(why, size, "no such file: it has advertised no "
                "console");
        else
            snprintf(why, size, "cannot be read: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
        close(fd);
        snprintf(why, size, "not a regular file of uid %lu",
            (unsigned long)uid);
        return -1;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        n = 0;
    text[n] = '\0';
    if (sscanf(text, "DIESEL-CONSOLE-SERVICE 1 pid=%ld start=%llu "
        "signal=%d\n%n", &apid, &st_, &sig, &end) != 3 || end != n ||
        apid != (long)pid) {
        snprintf(why, size, "malformed");
        return -1;
    }
    *start = (uint64_t)st_;
    *signo = sig;
    return 0;
}

/* p is proven a libdiesel service with the console on signo: its
 * advertisement is in dfd and names its start time.  0, or -1 with why. */
static int
proven(int dfd, const struct dc_proc *p, int signo, char *why, size_t size)
{
    uint64_t start;
    int sig;

    if (read_advert(dfd, p->pid, p->uid, &start, &sig, why, size) != 0)
        return -1;
    if (p->start == 0 || start != p->start) {
        snprintf(why, size, "stale: left by an earlier process %ld, which "
            "started at %llu, not at %llu", (long)p->pid,
            (unsigned long long)start, (unsigned long long)p->start);
        return -1;
    }
    if (sig != signo) {
        char want[32];

        /* sig_name's buffer is one: a copy for the second name. */
        snprintf(want, sizeof(want), "%s", sig_name(signo));
        snprintf(why, size, "its console listens for %s, not %s: use -s %d",
            sig_name(sig), want, sig);
        return -1;
    }
    return 0;
}

/* The pid in name if it is prefix<pid>suffix; else 0. */
static long
named_pid(const char *name, const char *prefix, const char *suffix)
{
    size_t lp = strlen(prefix);
    char *end;
    long pid;

    if (strncmp(name, prefix, lp) != 0 || name[lp] < '1' || name[lp] > '9')
        return 0;
    pid = strtol(name + lp, &end, 10);
    return strcmp(end, suffix) == 0 && pid > 0 ? pid : 0;
}

/*
 * Remove what dead processes left in dfd: a console-<pid>.sock whose
 * dconsole is gone (killed with SIGKILL, it could not remove it), or whose
 * pid is now another process's (one started after the socket was made);
 * a service-<pid> whose service is gone or whose pid was reused.  Only
 * those names are touched.
 */
static void
sweep(int dfd, int signo)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        long sp = named_pid(e->d_name, "console-", ".sock");
        long ap = named_pid(e->d_name, "service-", "");
        struct dc_proc p;
        struct stat st;
        int gone;

        if ((sp == 0 && ap == 0) || sp == (long)getpid())
            continue;
        gone = dc_proc_get((pid_t)(sp != 0 ? sp : ap), signo, &p) != 0 &&
            errno == ESRCH;
        if (!gone && sp != 0) {
            /* Its pid lives: stale only if that process was born after
             * the socket was made.  Both times are rounded to the second
             * (the boot time, the mtime), and the start in ticks: three
             * seconds of slack, so that a live dconsole's socket is never
             * taken for stale (one left a moment before its pid was
             * reused stays, harmlessly, until a later sweep). */
            gone = fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                p.born > 0 && p.born > (double)st.st_mtime + 3.0;
        } else if (!gone) {
            uint64_t start;
            int sig;
            char why[160];

            gone = p.start != 0 && read_advert(dfd, p.pid, p.uid, &start,
                &sig, why, sizeof(why)) == 0 && start != p.start;
        }
        if (gone)
            (void)unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

/* Bind and listen on <dir>/console-<our pid>.sock, through dfd. */
static int
listen_at(struct session *s, const char *dir, int dfd, int *lfd)
{
    mode_t old;
    int fd, r, err;

    snprintf(sock_name, sizeof(sock_name), "console-%ld.sock",
        (long)getpid());
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fail(s, ST_FAILED, "socket: %s", strerror(errno));
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* A dconsole that died with our pid may have left its socket. */
    (void)unlinkat(dfd, sock_name, 0);
    old = umask(077);
    r = dc_bind_at(fd, dfd, dir, sock_name);
    err = errno;
    umask(old);
    if (r != 0) {
        close(fd);
        if (err == ENAMETOOLONG)
            return fail(s, ST_FAILED, "socket path %s/%s is too long: use a "
                "shorter directory (-d or DIESEL_CONSOLE_DIR)", dir,
                sock_name);
        return fail(s, ST_FAILED, "bind %s/%s: %s", dir, sock_name,
            strerror(err));
    }
    sock_dirfd = dfd;
    have_sock = 1;
    /* root attaching to another user: the socket is root's, mode 0700, and
     * the app must be able to connect.  Not following a symlink: the
     * directory is that user's, who could have swapped the socket. */
    if (geteuid() != s->uid &&
        fchownat(dfd, sock_name, s->uid, (gid_t)-1,
        AT_SYMLINK_NOFOLLOW) != 0) {
        err = errno;
        close(fd);
        return fail(s, ST_FAILED, "chown %s/%s: %s", dir, sock_name,
            strerror(err));
    }
    if (listen(fd, 16) != 0) {
        err = errno;
        close(fd);
        return fail(s, ST_FAILED, "listen %s/%s: %s", dir, sock_name,
            strerror(err));
    }
    *lfd = fd;
    return 0;
}

static void
remove_socket(void)
{
    if (have_sock) {
        (void)unlinkat(sock_dirfd, sock_name, 0);
        have_sock = 0;
    }
}

/*
 * "DIESEL-CONSOLE 1 pid=<pid> program=<comm> nonce=<nonce>".  The
 * program name may hold spaces: the nonce is taken from the last field.
 */
static int
parse_greeting(const char *line, long *version, long *pid, long long *nonce)
{
    const char *p, *q;
    char *end;

    if (strncmp(line, "DIESEL-CONSOLE ", 15) != 0)
        return -1;
    *version = strtol(line + 15, &end, 10);
    if (end == line + 15 || (*end != ' ' && *end != '\0'))
        return -1;
    if (*version != 1)
        return 0;
    p = strstr(end, " pid=");
    q = NULL;
    for (const char *r = strstr(end, " nonce="); r != NULL;
        r = strstr(r + 1, " nonce="))
        q = r;
    if (p == NULL || q == NULL)
        return -1;
    *pid = strtol(p + 5, &end, 10);
    if (end == p + 5 || (*end != ' ' && *end != '\0'))
        return -1;
    *nonce = strtoll(q + 7, &end, 10);
    if (end == q + 7 || (*end != ' ' && *end != '\0'))
        return -1;
    return 0;
}

/*
 * Wait for the target's connection until the deadline: every other peer
 * is closed without a byte written.  0 and s->fd set, or an exit status.
 */
static int
accept_target(struct session *s, int lfd, int32_t nonce, int64_t deadline)
{
    int64_t resignal = diesel_now() + RESIGNAL_MS;

    for (;;) {
        int64_t left = deadline - diesel_now();
        struct dc_proc p;
        pid_t ppid;
        uid_t puid;
        char *line;
        size_t n;
        long version, gpid;
        long long gnonce;
        int fd, r;

        if (left <= 0)
            return ST_TIMEOUT;
        r = diesel_fd_wait(lfd, DIESEL_READ,
            left < LIVENESS_MS ? left : LIVENESS_MS);
        if (r < 0 && errno == ETIMEDOUT) {
            int32_t again = nonce;

            if (dc_proc_get(s->pid, s->signo, &p) != 0) {
                if (errno == ESRCH)
                    return fail(s, ST_NOPROC, "PID %ld exited before it "
                        "answered", (long)s->pid);
                continue;
            }
            s->looks++;
            s->running += p.state == 'R';
            /* Again, with the same nonce, once a second: a loop that was
             * merely busy may be stuck for long enough now, and then its
             * handler answers (the app attaches once per nonce).  Never
             * to a process that no longer catches the signal, nor just
             * before giving up. */
            if (diesel_now() >= resignal && p.catches &&
                deadline - diesel_now() >= LIVENESS_MS) {
                resignal = diesel_now() + RESIGNAL_MS;
                (void)dc_signal_send(s->pid, s->pidfd, s->signo, &again);
            }
            continue;
        }
        if (r < 0) {
            if (errno == ECANCELED)
                return ST_FAILED;   /* a signal stops us; it has its say */
            return fail(s, ST_FAILED, "waiting for PID %ld: %s",
                (long)s->pid, strerror(errno));
        }
        fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                return fail(s, ST_FAILED, "accept: %s", strerror(errno));
            continue;   /* EAGAIN, ECONNABORTED, EINTR... */
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
#ifdef SO_NOSIGPIPE
        {
            int one = 1;
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
        }
#endif
        if (dc_peer_cred(fd, &ppid, &puid) != 0) {
            warn("refused a connection: cannot tell who it is from (%s)",
                strerror(errno));
            close(fd);
            continue;
        }
        if (ppid != s->pid || puid != s->uid) {
            warn("refused a connection from pid %ld (uid %lu): expected "
                "PID %ld (uid %lu)", (long)ppid, (unsigned long)puid,
                (long)s->pid, (unsigned long)s->uid);
            close(fd);
            continue;
        }
        s->fd = fd;
        r = conn_getline(s, deadline, &line, &n);
        if (r <= 0) {
            diesel_fd_close(fd);
            s->fd = -1;
            s->off = s->len = 0;
            if (r < 0 && errno == ETIMEDOUT)
                return ST_TIMEOUT;
            if (r < 0 && errno == ECANCELED)
                return ST_FAILED;
            continue;
        }
        if (parse_greeting(line, &version, &gpid, &gnonce) != 0 ||
            (version == 1 && (gpid != (long)s->pid || gnonce != nonce))) {
            warn("refused a connection from PID %ld: its greeting does not "
                "answer this request: \"%.80s\"", (long)s->pid, line);
            diesel_fd_close(fd);
            s->fd = -1;
            s->off = s->len = 0;
            continue;
        }
        if (version != 1) {
            diesel_fd_close(fd);
            s->fd = -1;
            return fail(s, ST_CLOSED, "PID %ld speaks console protocol "
                "version %ld; this dconsole speaks version 1",
                (long)s->pid, version);
        }
        return 0;
    }
}

/*
 * Right after the greeting: when the app's loop is stuck, its signal
 * handler sends the report ("| " lines, then "STUCK <ms>") in place of a
 * session, with its first line in the greeting's write; an app that
 * serves its most sessions sends "BUSY <n>" the same way.  ST_STUCK with
 * the report printed, ST_CLOSED when busy, or 0 for a session.
 */
static int
stuck_report(struct session *s)
{
    int64_t deadline;
    const char *p;

    if (s->len == s->off)
        (void)conn_fill(s, 0);
    p = s->buf + s->off;
    if (s->len - s->off >= 5 && strncmp(p, "BUSY ", 5) == 0) {
        char *line;
        size_t n;

        if (conn_getline(s, diesel_now() + 1000, &line, &n) > 0)
            return busy(s, line);
        return 0;   /* the rest of the line never came: the session says */
    }
    if (s->len - s->off < 1 || (p[0] != '|' &&
        (s->len - s->off < 6 || strncmp(p, "STUCK ", 6) != 0)))
        return 0;
    deadline = diesel_now() + (int64_t)(s->o->timeout * 1000.0 + 0.5);
    for (;;) {
        char *line;
        size_t n;
        int r = conn_getline(s, deadline, &line, &n);

        if (r < 0 && errno == ECANCELED)
            return ST_FAILED;
        if (r <= 0) {
            s->closed = 1;
            fflush(stdout);
            return fail(s, ST_STUCK, "the loop of PID %ld is stuck: its "
                "report was cut short (%s)", (long)s->pid,
                r < 0 ? strerror(errno) : "end of file");
        }
        if (line[0] == '|' && (line[1] == ' ' || line[1] == '\0')) {
            put_safe(stdout, line[1] ? line + 2 : line + 1,
                line[1] ? n - 2 : 0);
            putc('\n', stdout);
            continue;
        }
        fflush(stdout);
        if (strncmp(line, "STUCK ", 6) == 0)
            return stuck(s, line);
        return bad_line(s, H_BAD, line);
    }
}

static int
attach(struct session *s)
{
    const struct opts *o = s->o;
    struct dc_proc p;
    char dir[PATH_MAX], why[512];
    uid_t me = geteuid();
    int32_t nonce;
    int64_t deadline;
    int lfd = -1, dfd = -1, st;

    /* The handle first: whatever is checked below is checked of the
     * process it holds, and the signal goes to that process or nowhere. */
    s->pidfd = dc_pid_open(o->pid);
    if (s->pidfd < 0 && errno == ESRCH)
        return fail(s, ST_NOPROC, "no such process: %ld", (long)o->pid);
    if (dc_proc_get(o->pid, s->signo, &p) != 0) {
        if (errno == ESRCH)
            return fail(s, ST_NOPROC, "no such process: %ld", (long)o->pid);
        if (errno == EACCES || errno == EPERM)
            return fail(s, ST_PERM, "PID %ld: not permitted (the system "
                "will not say who runs it)", (long)o->pid);
        return fail(s, ST_FAILED, "PID %ld: %s", (long)o->pid,
            strerror(errno));
    }
    s->pid = o->pid;
    s->uid = p.uid;
    snprintf(s->comm, sizeof(s->comm), "%s", p.comm);
    if (me != 0 && me != p.uid) {
        struct passwd *pw = getpwuid(p.uid);
        return fail(s, ST_PERM, "PID %ld runs as %s (uid %lu), you as uid "
            "%lu: not permitted (only root may attach to another user's "
            "process)", (long)s->pid, pw != NULL ? pw->pw_name : "another "
            "user", (unsigned long)p.uid, (unsigned long)me);
    }
    if (!p.catches) {
        if (p.ignores)
            return fail(s, ST_NOHANDLER, "PID %ld (%s) ignores %s: it has no "
                "console handler (diesel_console_install)", (long)s->pid,
                s->comm, sig_name(s->signo));
        return fail(s, ST_NOHANDLER, "PID %ld (%s) does not catch %s: it has "
            "no console handler (diesel_console_install), and signalling it "
            "would kill it", (long)s->pid, s->comm, sig_name(s->signo));
    }
    if ((st = rendezvous_dir(s, dir, sizeof(dir))) != 0 ||
        (st = check_dir(s, dir, &dfd)) != 0)
        return st;
    /* Catching the signal proves nothing (shells and debuggers do): only
     * the advertisement, tied to this process's start time, does. */
    if (proven(dfd, &p, s->signo, why, sizeof(why)) != 0) {
        sweep(dfd, s->signo);   /* a stale one of its pid too */
        close(dfd);
        return fail(s, ST_NOHANDLER, "PID %ld (%s) is not proven to be a "
            "libdiesel service with its console installed (%s/service-%ld: "
            "%s); not signalled.  Check with `dconsole -l`, which lists the "
            "services that can be attached to", (long)s->pid, s->comm, dir,
            (long)s->pid, why);
    }
    sweep(dfd, s->signo);
    if ((st = listen_at(s, dir, dfd, &lfd)) != 0) {
        if (!have_sock)
            close(dfd);
        return st;
    }
    nonce = dc_random31();
    if (dc_signal_send(s->pid, s->pidfd, s->signo, &nonce) != 0) {
        int err = errno;
        diesel_fd_close(lfd);
        remove_socket();
        if (err == ESRCH)
            return fail(s, ST_NOPROC, "no such process: %ld (it exited "
                "after it was checked)", (long)s->pid);
        if (err == EPERM)
            return fail(s, ST_PERM, "PID %ld: not permitted to signal it",
                (long)s->pid);
        return fail(s, ST_FAILED, "sending %s to PID %ld: %s",
            sig_name(s->signo), (long)s->pid, strerror(err));
    }
    deadline = diesel_now() + (int64_t)(o->timeout * 1000.0 + 0.5);
    st = accept_target(s, lfd, nonce, deadline);
    /* Connected or not, nobody else may come in now. */
    diesel_fd_close(lfd);
    remove_socket();
    if (st == 0)
        st = stuck_report(s);
    if (st == ST_TIMEOUT) {
        if (dc_proc_get(s->pid, s->signo, &p) == 0 && p.state == 'T')
            return fail(s, ST_TIMEOUT, "PID %ld did not answer within %g s: "
                "it is stopped (kill -CONT %ld resumes it)", (long)s->pid,
                o->timeout, (long)s->pid);
        if (dc_diagnose(s->pid, s->signo, why, sizeof(why)) > 0)
            return fail(s, ST_TIMEOUT, "PID %ld did not answer within %g s: "
                "%s", (long)s->pid, o->timeout, why);
        /* Running (or runnable) at every look: an idle loop sleeps in
         * poll, and a busy one serves the request between two turns. */
        if (s->looks >= 2 && s->running == s->looks)
            return fail(s, ST_TIMEOUT, "PID %ld did not answer within %g s: "
                "it was running at each of the %d looks taken meanwhile: its "
                "loop is blocked by a green thread that never yields (past "
                "its stuck threshold, 1 s unless DIESEL_CONSOLE_STUCK_MS says "
                "otherwise, an attach gets the stuck report)", (long)s->pid,
                o->timeout, s->looks);
        return fail(s, ST_TIMEOUT, "PID %ld did not answer within %g s: is "
            "its loop blocked by a green thread that never yields? is the "
            "console installed (diesel_console_install)? does it use the "
            "same rendezvous directory (%s)?", (long)s->pid, o->timeout,
            dir);
    }
    return st;
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
        int r;

        while ((line = conn_line(s, &n)) != NULL) {
            int h = handle_line(s, line, n);

            if (h != H_MORE) {
                bad_line(s, h, line);
                diesel_task_cancel(s->main_id);
                return 0;
            }
        }
        r = conn_fill(s, -1);
        if (r < 0 && errno == ECANCELED)
            return 0;
        if (r <= 0) {
            closed(s, r < 0 ? errno : 0);
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
        printf("Remote console PID=%ld\n", (long)s->pid);
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

        r = dc_edit_readline(s->ed, PROMPT, &line);
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

static int
one_shot(struct session *s)
{
    size_t n;
    char *line = join_command(s->o->cmd, s->o->ncmd, &n);
    int r;

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
                diesel_task_cancel(s->reply_id);
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
    if (s->fd >= 0) {
        diesel_fd_close(s->fd);
        s->fd = -1;
    }
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
    s.fd = -1;
    s.pidfd = -1;
    s.signo = o->signo != 0 ? o->signo : SIGTRAP;
    s.pid = o->pid;
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
    remove_socket();
    if (sock_dirfd >= 0)
        close(sock_dirfd);
    if (s.pidfd >= 0)
        close(s.pidfd);
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
    free(s.buf);
    if (stop_signal != 0) {
        signal(stop_signal, SIG_DFL);
        raise(stop_signal);
        st = 128 + stop_signal;
    }
    return st;
}

/* ---- dconsole -l ------------------------------------------------------------------------ */

struct listing {
    const struct opts *o;
    int signo;
    struct dc_proc *v;
    size_t n, cap;
};

/* p is listed only if it is proven a service, as an attach would prove
 * it: the same directory checks and advertisement.  Refusals stay quiet
 * here (a scratch session keeps their messages). */
static int
list_add(const struct dc_proc *p, void *arg)
{
    struct listing *l = arg;
    struct session s;
    char dir[PATH_MAX], why[512];
    uid_t me = geteuid();
    int dfd, ok;

    if (me != 0 && p->uid != me)
        return 0;
    if (p->pid == getpid())
        return 0;
    memset(&s, 0, sizeof(s));
    s.o = l->o;
    s.pid = p->pid;
    s.uid = p->uid;
    if (rendezvous_dir(&s, dir, sizeof(dir)) != 0 ||
        check_dir(&s, dir, &dfd) != 0)
        return 0;
    ok = proven(dfd, p, l->signo, why, sizeof(why)) == 0;
    sweep(dfd, l->signo);
    close(dfd);
    if (!ok)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct dc_proc *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *p;
    return 0;
}

static int
by_pid(const void *a, const void *b)
{
    const struct dc_proc *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

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

static int
list_procs(const struct opts *o)
{
    int signo = o->signo != 0 ? o->signo : SIGTRAP;
    struct listing l = { o, signo, NULL, 0, 0 };
    int root = geteuid() == 0;

    if (dc_proc_each(signo, list_add, &l) != 0) {
        warn("cannot list processes: %s", strerror(errno));
        free(l.v);
        return ST_FAILED;
    }
    if (l.n == 0) {
        warn("no libdiesel service%s has its console on %s",
            root ? "" : " of yours", sig_name(signo));
        return ST_OK;
    }
    qsort(l.v, l.n, sizeof(*l.v), by_pid);
    if (root)
        printf("%7s  %-10s %8s  %s\n", "PID", "USER", "UPTIME", "COMMAND");
    else
        printf("%7s  %8s  %s\n", "PID", "UPTIME", "COMMAND");
    for (size_t i = 0; i < l.n; i++) {
        char up[32], user[32];

        format_uptime(l.v[i].uptime, up, sizeof(up));
        if (root) {
            struct passwd *pw = getpwuid(l.v[i].uid);
            if (pw != NULL)
                snprintf(user, sizeof(user), "%s", pw->pw_name);
            else
                snprintf(user, sizeof(user), "%lu",
                    (unsigned long)l.v[i].uid);
            printf("%7ld  %-10s %8s  ", (long)l.v[i].pid, user, up);
        } else {
            printf("%7ld  %8s  ", (long)l.v[i].pid, up);
        }
        put_safe(stdout, l.v[i].comm, strlen(l.v[i].comm));
        putchar('\n');
    }
    free(l.v);
    return ST_OK;
}

/* ---- Options ---------------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: dconsole [-eq] [-d DIR] [-o FILE] [-s SIGNAL] [-t SECONDS] PID [COMMAND [ARG ...]]\n"
    "       dconsole -l [-s SIGNAL]\n"
    "       dconsole [-s SIGNAL] dummy\n"
    "       dconsole -h | --version\n";

static const char help_text[] =
    "\n"
    "Attach to the libdiesel service PID and get a >>> prompt inside it;\n"
    "with COMMAND, run that one command; with standard input not a terminal,\n"
    "run one command per input line.\n"
    "\n"
    "  -d DIR      rendezvous directory (as DIESEL_CONSOLE_DIR)\n"
    "  -e          with commands on standard input: stop at the first failure\n"
    "  -l          list the processes that catch the console signal\n"
    "  -o FILE     write the replies to FILE instead of standard output\n"
    "  -q          quiet: no banner\n"
    "  -s SIGNAL   the console signal, a name or a number (default TRAP)\n"
    "  -t SECONDS  how long to wait for the service to answer (default 5)\n"
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
                o->signo = sig_parse(val);
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
                    return usage("-t %s: not a number of seconds between 0 "
                        "and 86400", val);
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
    {
        char *end;
        long pid;

        errno = 0;
        pid = strtol(argv[i], &end, 10);
        if (errno != 0 || end == argv[i] || *end != '\0' || pid <= 0 ||
            (long)(pid_t)pid != pid)
            return usage("%s: not a process id", argv[i]);
        o->pid = (pid_t)pid;
    }
    o->cmd = argv + i + 1;
    o->ncmd = argc - i - 1;
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
