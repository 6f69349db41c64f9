/*
 * console_client.c: the attaching side of the console (DESIGN.md,
 * "Attach"), for dconsole and for any tool a service author writes:
 * diesel_console_client(3).
 *
 * The attach keeps diesel's topology, nothing listens in the app, and
 * closes its hole with the kernel's credentials: take a handle on the
 * target (a pidfd), prove from outside that it is a libdiesel service
 * with the console installed (its advertisement in the private directory
 * of its user names its start time; catching the signal proves nothing),
 * bind a UNIX socket in that directory, through a descriptor of it, send
 * the signal with a random nonce through the handle, and take only the
 * connection whose peer is the target's pid and uid and whose greeting
 * echoes the nonce.  Anyone else is closed without a byte written.  A
 * process not proven is never signalled.
 *
 * Every refusal is a sentence in the caller's why buffer and an errno of
 * its class (dconsole turns the class into its exit status):
 *
 *   ESRCH      no such process (or it exited meanwhile)
 *   EPERM      not permitted: another user's process, an unsafe directory
 *   ENOTSUP    not proven a service with its console on that signal
 *   ETIMEDOUT  no answer within the timeout (why says what was seen)
 *   EBUSY      the service serves its most sessions
 *   EPROTO     another protocol version
 *   EDEADLK    the loop is stuck: the report went to the notice callback
 *   ECANCELED  the calling green thread was cancelled (why is empty)
 *   EIO...     anything else (a system call failed: why says which)
 *
 * Everything works through the calling green thread's loop: waits park
 * that green thread only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define MAX_REPLY_LINE (16u << 20)  /* longer reply lines: protocol error */
#define LIVENESS_MS 250             /* how often the attach checks the target */
#define RESIGNAL_MS 1000            /* how often it signals again meanwhile */
#define NO_DEADLINE INT64_MAX

/*
 * The service connects to console-<pid of its signal's sender>.sock, so
 * every attach of this process in progress in one rendezvous directory
 * (a collector attaches to all its services at once) shares one
 * listening socket.  A descriptor has one reader: one of the attaches
 * waits on it at a time and hands each connection to the attach of its
 * peer's pid; the others wait on the event, fired when a connection is
 * handed over or the one waiting on the socket stops.
 *
 *   rdvs -> rdv (a directory) -> rdv ...
 *            waiting: attach -> attach ...   (fd -1 until handed one)
 *
 * The list is the OS thread's, as its loop is: an rdv lives only while
 * attaches of that loop use it, and the socket is removed with the last.
 */
struct rdv {
    struct rdv *next;
    dev_t dev;              /* the directory */
    ino_t ino;
    int dfd;                /* it, for the unlink at the end */
    int lfd;                /* listening on sock_name */
    char sock_name[64];     /* console-<our pid>.sock */
    int users;              /* attaches using it */
    int accepting;          /* one of them waits on lfd now */
    struct diesel_event *ev;
    struct diesel_console_client *waiting;  /* the attaches using it */
};

static __thread struct rdv *rdvs;

struct diesel_console_client {
    pid_t pid;              /* the target */
    uid_t uid;              /* its effective uid */
    int signo;              /* the console signal */
    char comm[64];          /* its command name */
    int fd;                 /* the connection, -1 before */
    int pidfd;              /* a handle on the target, or -1 */
    char *buf;              /* bytes read from the app */
    size_t off;             /* the first not yet handed out */
    size_t len;             /* bytes in buf */
    size_t cap;             /* room in buf */
    /* While attaching only: */
    const struct diesel_console_attach_opts *o;
    int64_t timeout_ms;     /* o->timeout_ms */
    int looks;              /* the target's state read while waiting */
    int running;            /* of those, 'R': running or runnable */
    int dfd;                /* the rendezvous directory, -1 */
    struct rdv *rdv;        /* the socket there, shared, or NULL */
    struct diesel_console_client *next;     /* in rdv->waiting */
    int32_t nonce;          /* sent with the signal */
    char dir[PATH_MAX];     /* the rendezvous directory's path */
    char *why;              /* the caller's buffer */
    size_t why_size;
};

/* Keep the sentence for the caller; returns err, the errno of its class. */
static int
fail(struct diesel_console_client *c, int err, const char *fmt, ...)
    DIESEL_PRINTF(3, 4);

static int
fail(struct diesel_console_client *c, int err, const char *fmt, ...)
{
    va_list ap;

    if (c->why_size > 0) {
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_size, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* A system call's errno, kept out of the classes above: an EPERM from
 * bind(2) must not read as "another user's process". */
static int
sys_err(int err)
{
    switch (err) {
    case ESRCH: case EPERM: case ENOTSUP: case ETIMEDOUT: case EBUSY:
    case EPROTO: case EDEADLK: case ECANCELED: case 0:
        return EIO;
    default:
        return err;
    }
}

static void
notice(struct diesel_console_client *c, int kind, const char *fmt, ...)
    DIESEL_PRINTF(3, 4);

/* Tell the caller, or the log when it has no callback. */
static void
notice(struct diesel_console_client *c, int kind, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    if (c->o != NULL && c->o->notice != NULL)
        c->o->notice(c->o->arg, kind, text, (size_t)n);
    else
        diesel_log("diesel", DIESEL_LOG_WARNING, "%s", text);
}

static const char *
sig_name(int signo)
{
    static char buf[32];

    return diesel_signal_name(signo, buf, sizeof(buf));
}

/* ---- The connection ------------------------------------------------------ */

/* The next complete line already read, NUL-terminated; NULL if none. */
static char *
conn_line(struct diesel_console_client *c, size_t *n)
{
    char *start, *nl;

    if (c->buf == NULL)
        return NULL;
    start = c->buf + c->off;
    nl = memchr(start, '\n', c->len - c->off);
    if (nl == NULL)
        return NULL;
    *nl = '\0';
    *n = (size_t)(nl - start);
    c->off = (size_t)(nl + 1 - c->buf);
    return start;
}

/* Wait up to timeout_ms for bytes and read them: > 0, 0 at EOF, -1. */
static int
conn_fill(struct diesel_console_client *c, int64_t timeout_ms)
{
    ssize_t n;

    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16384;
        char *b;

        if (c->cap >= MAX_REPLY_LINE) {
            errno = EMSGSIZE;
            return -1;
        }
        b = realloc(c->buf, cap + 1);
        if (b == NULL)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        if (diesel_fd_wait(c->fd, DIESEL_READ, timeout_ms) < 0)
            return -1;
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (n >= 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
    c->len += (size_t)n;
    return n > 0 ? 1 : 0;
}

/* A whole line by deadline (NO_DEADLINE: none): 1, 0 at EOF, -1. */
static int
conn_getline(struct diesel_console_client *c, int64_t deadline, char **line,
    size_t *n)
{
    for (;;) {
        int64_t left = -1;
        int r;

        *line = conn_line(c, n);
        if (*line != NULL)
            return 1;
        if (deadline != NO_DEADLINE) {
            left = deadline - diesel_now();
            if (left < 0) {
                errno = ETIMEDOUT;
                return -1;
            }
        }
        r = conn_fill(c, left);
        if (r <= 0)
            return r;
    }
}

static int64_t
deadline_of(int64_t timeout_ms)
{
    if (timeout_ms < 0 || timeout_ms > NO_DEADLINE / 2)
        return NO_DEADLINE;
    return diesel_now() + timeout_ms;
}

int
diesel_console_client_line(struct diesel_console_client *c, char **line,
    size_t *len, int64_t timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);

    if (timeout_ms == 0) {
        /* Never blocks: what is buffered, then what is readable now. */
        *line = conn_line(c, len);
        if (*line != NULL)
            return 1;
        deadline = diesel_now();
    }
    return conn_getline(c, deadline, line, len);
}

int
diesel_console_client_send(struct diesel_console_client *c,
    const char *line, size_t len)
{
    char *msg;
    const char *data;
    size_t n = len + 1;
    int r = 0;

    if (memchr(line, '\n', len) != NULL) {
        errno = EINVAL;
        return -1;
    }
    msg = malloc(n);
    if (msg == NULL)
        return -1;
    memcpy(msg, line, len);
    msg[len] = '\n';
    data = msg;
    while (n > 0) {
        ssize_t w = diesel__platform_send(c->fd, data, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN &&
                diesel_fd_wait(c->fd, DIESEL_WRITE, -1) >= 0)
                continue;
            r = -1;
            break;
        }
        data += w;
        n -= (size_t)w;
    }
    if (r != 0) {
        int err = errno;
        free(msg);
        errno = err;
        return -1;
    }
    free(msg);
    return 0;
}

int
diesel_console_client_parse(const char *line, size_t len, const char **text,
    size_t *tlen)
{
    static const struct {
        const char *word;   /* with the space that ends it */
        size_t n;
        int kind;
        int bare;           /* may come without a space and text */
    } kinds[] = {
        { "| ", 2, DIESEL_CONSOLE_LINE_OUTPUT, 1 },
        { "OK ", 3, DIESEL_CONSOLE_LINE_OK, 1 },
        { "ERR ", 4, DIESEL_CONSOLE_LINE_ERR, 1 },
        { "BUSY ", 5, DIESEL_CONSOLE_LINE_BUSY, 0 },
        { "STUCK ", 6, DIESEL_CONSOLE_LINE_STUCK, 0 },
    };

    *text = line + len;
    *tlen = 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t w = kinds[i].n - 1;

        if (len < w || memcmp(line, kinds[i].word, w) != 0)
            continue;
        if (len == w && kinds[i].bare)
            return kinds[i].kind;
        /* "OK" is OK alone: "OK then" is no reply line. */
        if (len > w && line[w] == ' ' &&
            kinds[i].kind != DIESEL_CONSOLE_LINE_OK) {
            *text = line + w + 1;
            *tlen = len - w - 1;
            return kinds[i].kind;
        }
        return DIESEL_CONSOLE_LINE_BAD;
    }
    return DIESEL_CONSOLE_LINE_BAD;
}

int
diesel_console_client_explain(pid_t pid, const char *line, size_t len,
    char *buf, size_t size)
{
    const char *text;
    size_t tn;
    long long v;

    switch (diesel_console_client_parse(line, len, &text, &tn)) {
    case DIESEL_CONSOLE_LINE_BUSY:
        snprintf(buf, size, "PID %ld refused the session: busy, with %lld "
            "console sessions open already (its most); try again once one "
            "ends", (long)pid, strtoll(text, NULL, 10));
        return EBUSY;
    case DIESEL_CONSOLE_LINE_STUCK:
        v = strtoll(text, NULL, 10);
        if (v < 0)
            v = 0;
        snprintf(buf, size, "the loop of PID %ld is stuck (no turn for "
            "%lld.%03lld s): the report above says which green thread "
            "holds it", (long)pid, v / 1000, v % 1000);
        return EDEADLK;
    case DIESEL_CONSOLE_LINE_ERR:
        /* What a service says as it closes a session it will not serve. */
        snprintf(buf, size, "PID %ld ended the session: %.900s", (long)pid,
            text);
        return ECONNRESET;
    case DIESEL_CONSOLE_LINE_BAD:
        snprintf(buf, size, "PID %ld broke the console protocol (not a reply "
            "line: \"%.60s\"): the session is over", (long)pid, line);
        return EPROTO;
    default:
        snprintf(buf, size, "PID %ld broke the console protocol (a line when "
            "no reply was due: \"%.60s\"): the session is over", (long)pid,
            line);
        return EPROTO;
    }
}

int
diesel_console_client_pending(const struct diesel_console_client *c)
{
    return c->buf != NULL &&
        memchr(c->buf + c->off, '\n', c->len - c->off) != NULL;
}

int
diesel_console_client_run(struct diesel_console_client *c, const char *line,
    char **reply, size_t *len, int64_t timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);
    size_t n = 0, cap = 256;
    char *out = malloc(cap);
    int st = -1, err = 0;

    *reply = NULL;
    *len = 0;
    if (out == NULL)
        return -1;
    out[0] = '\0';
    if (diesel_console_client_send(c, line, strlen(line)) != 0) {
        err = errno;
        goto done;
    }
    while (st < 0) {
        char *l;
        const char *text;
        size_t ln, tn;
        int r = conn_getline(c, deadline, &l, &ln), kind;

        if (r <= 0) {
            err = r < 0 ? errno : ECONNRESET;
            goto done;
        }
        kind = diesel_console_client_parse(l, ln, &text, &tn);
        if (kind == DIESEL_CONSOLE_LINE_OK) {
            st = 0;
            continue;
        }
        if (kind == DIESEL_CONSOLE_LINE_ERR) {
            st = 1;
        } else if (kind != DIESEL_CONSOLE_LINE_OUTPUT) {
            char why[8];

            err = diesel_console_client_explain(c->pid, l, ln, why,
                sizeof(why));
            goto done;
        }
        if (n + tn + 2 > cap) {
            char *b;

            while (n + tn + 2 > cap)
                cap *= 2;
            b = realloc(out, cap);
            if (b == NULL) {
                err = ENOMEM;
                goto done;
            }
            out = b;
        }
        memcpy(out + n, text, tn);
        n += tn;
        out[n++] = '\n';
        out[n] = '\0';
    }
done:
    if (st < 0) {
        free(out);
        errno = err;
        return -1;
    }
    *reply = out;
    *len = n;
    return st;
}

int
diesel_console_client_gone(struct diesel_console_client *c,
    int64_t timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);
    struct diesel__proc p;

    if (c->pid == 0)
        return 0;       /* diesel_console_client_open: no process */
    for (;;) {
        if (diesel__platform_proc_get(c->pid, c->signo, &p) != 0 &&
            errno == ESRCH)
            return 1;
        if (diesel_now() >= deadline || diesel_sleep(10) != 0)
            return 0;
    }
}

struct diesel_console_client *
diesel_console_client_open(int fd)
{
    struct diesel_console_client *c;
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

    if (fl < 0) {
        errno = EBADF;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    /* No process to watch: pid 0 makes diesel_console_client_gone say
     * "not gone" at once. */
    c->fd = fd;
    c->pidfd = -1;
    c->dfd = -1;
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return c;
}

int
diesel_console_client_fd(const struct diesel_console_client *c)
{
    return c->fd;
}

void
diesel_console_client_close(struct diesel_console_client *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        diesel_fd_close(c->fd);
    if (c->pidfd >= 0)
        close(c->pidfd);
    free(c->buf);
    free(c);
}

/* ---- The attach ---------------------------------------------------------- */

/* The refusal of a process not proven a service, with the caller's hint
 * of how to list those that are. */
static int
not_proven(struct diesel_console_client *c, const char *why)
{
    const char *hint = c->o != NULL ? c->o->list_hint : NULL;

    return fail(c, ENOTSUP, "PID %ld (%s) is not proven to be a libdiesel "
        "service with its console installed (%s); not signalled%s%s%s",
        (long)c->pid, c->comm, why, hint != NULL ? ".  Check with `" : "",
        hint != NULL ? hint : "", hint != NULL ? "`, which lists the "
        "services that can be attached to" : "");
}

/*
 * Open the target user's private directory and check it through the
 * descriptor: every later step (the advertisement, the sweep, the bind,
 * the chown, the unlink) is relative to it, so that the path swapped for
 * a symlink after the check leads nowhere.  Refuse, never repair, one
 * that is anything else.  0 and c->dfd, or an errno class.
 */
static int
check_dir(struct diesel_console_client *c)
{
    struct stat st;
    const char *dir = c->dir;
    int bad, fd;

    fd = diesel__console_dir_open(dir, c->uid, &bad, &st);
    if (fd >= 0) {
        c->dfd = fd;
        return 0;
    }
    switch (bad) {
    case DIESEL__DIR_SYMLINK:
        return fail(c, EPERM, "rendezvous directory %s is a symbolic "
            "link: refusing to use it (someone may be trying to "
            "intercept the console; remove it)", dir);
    case DIESEL__DIR_NOTDIR:
        return fail(c, EPERM, "rendezvous directory %s is not a "
            "directory: refusing to use it (remove it)", dir);
    case DIESEL__DIR_OWNER:
        return fail(c, EPERM, "rendezvous directory %s belongs to uid %lu, "
            "not to uid %lu who runs PID %ld: refusing to use it (remove "
            "it)", dir, (unsigned long)st.st_uid, (unsigned long)c->uid,
            (long)c->pid);
    case DIESEL__DIR_MODE:
        return fail(c, EPERM, "rendezvous directory %s has mode %04o, not "
            "0700: refusing to use it (others could reach the console; "
            "chmod 700 it or remove it)", dir,
            (unsigned)(st.st_mode & 07777));
    default:
        break;
    }
    if (errno == ENOENT) {
        char why[PATH_MAX + 64];

        snprintf(why, sizeof(why), "no rendezvous directory %s: it has "
            "advertised no console", dir);
        return not_proven(c, why);
    }
    return fail(c, sys_err(errno), "rendezvous directory %s: %s", dir,
        strerror(errno));
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
proven(int dfd, const struct diesel__proc *p, int signo, const char *hint,
    char *why, size_t size)
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
        char want[32], have[32];

        int n = snprintf(why, size, "its console listens for %s, not %s",
            diesel_signal_name(sig, have, sizeof(have)),
            diesel_signal_name(signo, want, sizeof(want)));

        if (hint != NULL && n >= 0 && (size_t)n < size)
            snprintf(why + n, size - (size_t)n, ": use %s %d", hint, sig);
        return -1;
    }
    return 0;
}

/*
 * The signal p's console listens on when it is not signo: p advertises
 * itself in its user's rendezvous directory dir (checked as an attach
 * checks it), with its start time, and catches that signal.  0 if not:
 * the caller says what it would have said.  Nothing is signalled on its
 * word: an attach with that signal proves everything again.
 */
static int
other_signal(const struct diesel__proc *p, const char *dir, int signo)
{
    struct diesel__proc q;
    struct stat st;
    uint64_t start;
    char why[160];
    int bad, dfd, sig = 0;

    dfd = diesel__console_dir_open(dir, p->uid, &bad, &st);
    if (dfd < 0)
        return 0;
    if (read_advert(dfd, p->pid, p->uid, &start, &sig, why,
        sizeof(why)) != 0 || p->start == 0 || start != p->start ||
        sig == signo || sig <= 0 ||
        diesel__platform_proc_get(p->pid, sig, &q) != 0 || !q.catches ||
        q.start != p->start)
        sig = 0;
    close(dfd);
    return sig;
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
 * attaching process is gone (killed with SIGKILL, it could not remove
 * it), or whose pid is now another process's (one started after the
 * socket was made); a service-<pid> whose service is gone or whose pid
 * was reused.  Only those names are touched.
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
        struct diesel__proc p;
        struct stat st;
        int gone;

        if ((sp == 0 && ap == 0) || sp == (long)getpid())
            continue;
        gone = diesel__platform_proc_get((pid_t)(sp != 0 ? sp : ap), signo,
            &p) != 0 && errno == ESRCH;
        if (!gone && sp != 0) {
            /* Its pid lives: stale only if that process was born after
             * the socket was made.  Both times are rounded to the second
             * (the boot time, the mtime), and the start in ticks: three
             * seconds of slack, so that a live attacher's socket is never
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

/* Bind and listen on <dir>/console-<our pid>.sock, through c->dfd, for
 * r: 0, or an errno class with no socket left. */
static int
listen_at(struct diesel_console_client *c, struct rdv *r)
{
    const char *dir = c->dir;
    mode_t old;
    int fd, rc, err;

    snprintf(r->sock_name, sizeof(r->sock_name), "console-%ld.sock",
        (long)getpid());
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fail(c, sys_err(errno), "socket: %s", strerror(errno));
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* An attacher that died with our pid may have left its socket. */
    (void)unlinkat(c->dfd, r->sock_name, 0);
    old = umask(077);
    rc = diesel__platform_bind_at(fd, c->dfd, dir, r->sock_name);
    err = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        if (err == ENAMETOOLONG) {
            const char *hint = c->o->dir_hint;

            return fail(c, ENAMETOOLONG, "socket path %s/%s is too long: "
                "use a shorter directory (%s%sDIESEL_CONSOLE_DIR)", dir,
                r->sock_name, hint != NULL ? hint : "",
                hint != NULL ? " or " : "");
        }
        return fail(c, sys_err(err), "bind %s/%s: %s", dir, r->sock_name,
            strerror(err));
    }
    /* root attaching to another user: the socket is root's, mode 0700, and
     * the app must be able to connect.  Not following a symlink: the
     * directory is that user's, who could have swapped the socket.  (Every
     * attach sharing it is to that user: the directory is checked to be
     * the target's.)  The backlog is the system's most: every service
     * attached to at once may connect before one is accepted. */
    if (geteuid() != c->uid &&
        fchownat(c->dfd, r->sock_name, c->uid, (gid_t)-1,
        AT_SYMLINK_NOFOLLOW) != 0) {
        err = errno;
        rc = fail(c, sys_err(err), "chown %s/%s: %s", dir, r->sock_name,
            strerror(err));
    } else if (listen(fd, SOMAXCONN) != 0) {
        err = errno;
        rc = fail(c, sys_err(err), "listen %s/%s: %s", dir, r->sock_name,
            strerror(err));
    }
    if (rc != 0) {
        close(fd);
        (void)unlinkat(c->dfd, r->sock_name, 0);
        return rc;
    }
    r->lfd = fd;
    return 0;
}

/* Use the socket of c's directory, bound now by the first attach there:
 * 0 with c->rdv, or an errno class. */
static int
rdv_join(struct diesel_console_client *c)
{
    struct stat st;
    struct rdv *r;
    int err;

    if (fstat(c->dfd, &st) != 0)
        return fail(c, sys_err(errno), "rendezvous directory %s: %s", c->dir,
            strerror(errno));
    for (r = rdvs; r != NULL; r = r->next) {
        if (r->dev == st.st_dev && r->ino == st.st_ino)
            break;
    }
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return fail(c, ENOMEM, "out of memory");
        r->dev = st.st_dev;
        r->ino = st.st_ino;
        r->lfd = -1;
        r->dfd = fcntl(c->dfd, F_DUPFD_CLOEXEC, 0);
        r->ev = diesel_event_create("console attach");
        if (r->dfd < 0 || r->ev == NULL) {
            err = fail(c, sys_err(errno), "rendezvous directory %s: %s",
                c->dir, strerror(errno));
            goto fail;
        }
        if ((err = listen_at(c, r)) != 0)
            goto fail;
        r->next = rdvs;
        rdvs = r;
    }
    r->users++;
    c->next = r->waiting;
    r->waiting = c;
    c->rdv = r;
    return 0;
fail:
    if (r->dfd >= 0)
        close(r->dfd);
    diesel_event_destroy(r->ev);
    free(r);
    return err;
}

/* c is done with its directory's socket; the last one removes it. */
static void
rdv_leave(struct diesel_console_client *c)
{
    struct rdv *r = c->rdv, **pp;
    struct diesel_console_client **cp;

    if (r == NULL)
        return;
    c->rdv = NULL;
    for (cp = &r->waiting; *cp != NULL; cp = &(*cp)->next) {
        if (*cp == c) {
            *cp = c->next;
            break;
        }
    }
    if (--r->users > 0)
        return;
    for (pp = &rdvs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    (void)unlinkat(r->dfd, r->sock_name, 0);
    diesel_fd_close(r->lfd);
    close(r->dfd);
    diesel_event_destroy(r->ev);
    free(r);
}

/*
 * "DIESEL-CONSOLE 1 pid=<pid> program=<comm> nonce=<nonce>".  The
 * program name may hold spaces: the nonce is taken from the last field.
 */
int
diesel__console_greeting_parse(const char *line, long *version, long *pid,
    long long *nonce)
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

/* Drop a connection that is not the one awaited. */
static void
drop(struct diesel_console_client *c)
{
    diesel_fd_close(c->fd);
    c->fd = -1;
    c->off = c->len = 0;
}

/* The attach waiting for a connection from pid (of uid) with nonce (any:
 * -1), other than not; NULL if none. */
static struct diesel_console_client *
waiting_for(struct rdv *r, pid_t pid, uid_t uid, long long nonce,
    const struct diesel_console_client *not)
{
    for (struct diesel_console_client *q = r->waiting; q != NULL;
        q = q->next) {
        if (q != not && q->fd < 0 && q->pid == pid && q->uid == uid &&
            (nonce < 0 || q->nonce == nonce))
            return q;
    }
    return NULL;
}

/*
 * Take the connections waiting on r's socket and hand each to the attach
 * of its peer's pid; c waits on the socket now, and is told of those
 * refused.  0, or an errno class (the descriptor table is full).
 */
static int
rdv_accept(struct rdv *r, struct diesel_console_client *c)
{
    for (;;) {
        struct diesel_console_client *q;
        pid_t ppid;
        uid_t puid;
        int fd = accept(r->lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                return fail(c, errno, "accept: %s", strerror(errno));
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return 0;   /* EAGAIN: all taken */
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (diesel__platform_peer_cred(fd, &ppid, &puid) != 0 ||
            ppid == -1) {
            notice(c, DIESEL_CONSOLE_REFUSED, "refused a connection: cannot "
                "tell who it is from (%s)", strerror(ppid == -1 ? ENOSYS :
                errno));
            close(fd);
            continue;
        }
        q = waiting_for(r, ppid, puid, -1, NULL);
        if (q == NULL) {
            notice(c, DIESEL_CONSOLE_REFUSED, "refused a connection from pid "
                "%ld (uid %lu): expected PID %ld (uid %lu)%s", (long)ppid,
                (unsigned long)puid, (long)c->pid, (unsigned long)c->uid,
                r->users > 1 ? " or another attached to meanwhile" : "");
            close(fd);
            continue;
        }
        q->fd = fd;
        q->off = q->len = 0;
    }
}

/*
 * c was handed a connection from its target: its greeting must echo c's
 * nonce.  One that echoes the nonce of another attach to the same target
 * (two at once) is handed on, with what was read of it.  0 for c's own,
 * -1 to wait on, or an errno class.
 */
static int
greeted(struct diesel_console_client *c, int64_t deadline)
{
    struct diesel_console_client *q;
    long version, gpid;
    long long gnonce;
    char *line;
    size_t n;
    int r = conn_getline(c, deadline, &line, &n);

    if (r <= 0) {
        int err = errno;

        drop(c);
        if (r < 0 && err == ETIMEDOUT)
            return ETIMEDOUT;
        if (r < 0 && err == ECANCELED)
            return fail(c, ECANCELED, "%s", "");
        return -1;
    }
    if (diesel__console_greeting_parse(line, &version, &gpid, &gnonce) == 0 &&
        version == 1 && gpid == (long)c->pid && gnonce != c->nonce &&
        (q = waiting_for(c->rdv, c->pid, c->uid, gnonce, c)) != NULL) {
        char *buf = q->buf;
        size_t cap = q->cap;

        line[n] = '\n';    /* q reads the greeting again */
        c->off -= n + 1;
        q->fd = c->fd;
        q->buf = c->buf;
        q->off = c->off;
        q->len = c->len;
        q->cap = c->cap;
        c->fd = -1;
        c->buf = buf;
        c->cap = cap;
        c->off = c->len = 0;
        diesel_event_fire(c->rdv->ev);
        return -1;
    }
    if (diesel__console_greeting_parse(line, &version, &gpid, &gnonce) != 0 ||
        (version == 1 && (gpid != (long)c->pid || gnonce != c->nonce))) {
        notice(c, DIESEL_CONSOLE_REFUSED, "refused a connection from PID "
            "%ld: its greeting does not answer this request: \"%.80s\"",
            (long)c->pid, line);
        drop(c);
        return -1;
    }
    if (version != 1) {
        drop(c);
        return fail(c, EPROTO, "PID %ld speaks console protocol "
            "version %ld, not version 1", (long)c->pid, version);
    }
    return 0;
}

/* How the target looks while it has not answered: ESRCH once it is gone,
 * else 0, with the signal sent again once a second. */
static int
look(struct diesel_console_client *c, int64_t deadline, int64_t *resignal)
{
    struct diesel__proc p;
    int32_t again = c->nonce;

    if (diesel__platform_proc_get(c->pid, c->signo, &p) != 0) {
        if (errno == ESRCH)
            return fail(c, ESRCH, "PID %ld exited before it answered",
                (long)c->pid);
        return 0;
    }
    c->looks++;
    c->running += p.state == 'R';
    /* Again, with the same nonce, once a second: a loop that was merely
     * busy may be stuck for long enough now, and then its handler answers
     * (the app attaches once per nonce).  Never to a process that no
     * longer catches the signal, nor just before giving up. */
    if (diesel_now() >= *resignal && p.catches &&
        deadline - diesel_now() >= LIVENESS_MS) {
        *resignal = diesel_now() + RESIGNAL_MS;
        (void)diesel__platform_signal_send(c->pid, c->pidfd, c->signo,
            &again);
    }
    return 0;
}

/*
 * Wait for the target's connection until the deadline: every other peer
 * is closed without a byte written.  0 and c->fd set, or an errno class
 * (ETIMEDOUT with why left for the caller to fill).
 */
static int
accept_target(struct diesel_console_client *c, int64_t deadline)
{
    struct rdv *r = c->rdv;
    int64_t resignal = diesel_now() + RESIGNAL_MS;
    int64_t next_look = diesel_now() + LIVENESS_MS;

    for (;;) {
        int64_t now = diesel_now(), left = deadline - now, wait;
        int w, err;

        if (c->fd >= 0) {
            /* Handed over, by c or by the attach waiting on the socket. */
            if ((err = greeted(c, deadline)) >= 0)
                return err;
            continue;
        }
        if (left <= 0)
            return ETIMEDOUT;
        if (now >= next_look) {
            if ((err = look(c, deadline, &resignal)) != 0)
                return err;
            next_look = diesel_now() + LIVENESS_MS;
            continue;
        }
        wait = next_look - now < left ? next_look - now : left;
        if (!r->accepting) {
            r->accepting = 1;
            w = diesel_fd_wait(r->lfd, DIESEL_READ, wait);
            err = errno;
            r->accepting = 0;
            if (w >= 0 && (err = rdv_accept(r, c)) != 0)
                w = -1;
            /* Those handed a connection take it; one of the others waits
             * on the socket in c's place. */
            diesel_event_fire(r->ev);
        } else {
            w = diesel_event_wait(r->ev, wait);
            err = errno;
        }
        if (w < 0 && err == ECANCELED)
            return fail(c, ECANCELED, "%s", "");
        if (w < 0 && (err == EMFILE || err == ENFILE))
            return err;     /* rdv_accept said */
        if (w < 0 && err != ETIMEDOUT)
            return fail(c, sys_err(err), "waiting for PID %ld: %s",
                (long)c->pid, strerror(err));
    }
}

/* The sentence for a line that ends the attach, kept for the caller. */
static int
ended(struct diesel_console_client *c, const char *line, size_t n)
{
    return diesel_console_client_explain(c->pid, line, n, c->why,
        c->why_size);
}

/*
 * Right after the greeting: when the app's loop is stuck, its signal
 * handler sends the report ("| " lines, then "STUCK <ms>") in place of a
 * session, with its first line in the greeting's write; an app that
 * serves its most sessions sends "BUSY <n>" the same way.  EDEADLK with
 * the report given to the notice callback, EBUSY, or 0 for a session.
 */
static int
stuck_report(struct diesel_console_client *c)
{
    int64_t deadline;
    const char *p;

    if (c->len == c->off)
        (void)conn_fill(c, 0);
    p = c->buf + c->off;
    if (c->len - c->off >= 5 && strncmp(p, "BUSY ", 5) == 0) {
        char *line;
        size_t n;

        if (conn_getline(c, diesel_now() + 1000, &line, &n) > 0)
            return ended(c, line, n);
        return 0;   /* the rest of the line never came: the session says */
    }
    if (c->len - c->off < 1 || (p[0] != '|' &&
        (c->len - c->off < 6 || strncmp(p, "STUCK ", 6) != 0)))
        return 0;
    deadline = deadline_of(c->timeout_ms);
    for (;;) {
        char *line;
        const char *text;
        size_t n, tn;
        int r = conn_getline(c, deadline, &line, &n);

        if (r < 0 && errno == ECANCELED)
            return fail(c, ECANCELED, "%s", "");
        if (r <= 0)
            return fail(c, EDEADLK, "the loop of PID %ld is stuck: its "
                "report was cut short (%s)", (long)c->pid,
                r < 0 ? strerror(errno) : "end of file");
        if (diesel_console_client_parse(line, n, &text, &tn) ==
            DIESEL_CONSOLE_LINE_OUTPUT) {
            if (c->o->notice != NULL)
                c->o->notice(c->o->arg, DIESEL_CONSOLE_REPORT, text, tn);
            continue;
        }
        /* STUCK ends the report; anything else breaks the protocol. */
        r = ended(c, line, n);
        return r == ECONNRESET ? EPROTO : r;
    }
}

/* No answer in time: say what can be seen of why. */
static int
timed_out(struct diesel_console_client *c)
{
    struct diesel__proc p;
    double secs = (double)c->timeout_ms / 1000.0;
    char why[512];

    if (diesel__platform_proc_get(c->pid, c->signo, &p) == 0 &&
        p.state == 'T')
        return fail(c, ETIMEDOUT, "PID %ld did not answer within %g s: "
            "it is stopped (kill -CONT %ld resumes it)", (long)c->pid,
            secs, (long)c->pid);
    if (diesel__platform_diagnose(c->pid, c->signo, why, sizeof(why)) > 0)
        return fail(c, ETIMEDOUT, "PID %ld did not answer within %g s: "
            "%s", (long)c->pid, secs, why);
    /* Running (or runnable) at every look: an idle loop sleeps in poll,
     * and a busy one serves the request between two turns. */
    if (c->looks >= 2 && c->running == c->looks)
        return fail(c, ETIMEDOUT, "PID %ld did not answer within %g s: "
            "it was running at each of the %d looks taken meanwhile: its "
            "loop is blocked by a green thread that never yields (past "
            "its stuck threshold, 1 s unless DIESEL_CONSOLE_STUCK_MS says "
            "otherwise, an attach gets the stuck report)", (long)c->pid,
            secs, c->looks);
    return fail(c, ETIMEDOUT, "PID %ld did not answer within %g s: is "
        "its loop blocked by a green thread that never yields? is the "
        "console installed (diesel_console_install)? does it use the "
        "same rendezvous directory (%s)?", (long)c->pid, secs, c->dir);
}

/* The checks before any signal: 0 with c->dfd, or an errno class. */
static int
prove(struct diesel_console_client *c, pid_t pid)
{
    struct diesel__proc p;
    char why[512];
    uid_t me = geteuid();
    int st;

    /* The handle first: whatever is checked below is checked of the
     * process it holds, and the signal goes to that process or nowhere. */
    c->pidfd = diesel__platform_pid_open(pid);
    if (c->pidfd < 0 && errno == ESRCH)
        return fail(c, ESRCH, "no such process: %ld", (long)pid);
    if (diesel__platform_proc_get(pid, c->signo, &p) != 0) {
        if (errno == ESRCH)
            return fail(c, ESRCH, "no such process: %ld", (long)pid);
        if (errno == EACCES || errno == EPERM)
            return fail(c, EPERM, "PID %ld: not permitted (the system "
                "will not say who runs it)", (long)pid);
        return fail(c, sys_err(errno), "PID %ld: %s", (long)pid,
            strerror(errno));
    }
    c->uid = p.uid;
    snprintf(c->comm, sizeof(c->comm), "%s", p.comm);
    if (me != 0 && me != p.uid) {
        struct passwd *pw = getpwuid(p.uid);

        return fail(c, EPERM, "PID %ld runs as %s (uid %lu), you as uid "
            "%lu: not permitted (only root may attach to another user's "
            "process)", (long)pid, pw != NULL ? pw->pw_name : "another "
            "user", (unsigned long)p.uid, (unsigned long)me);
    }
    if (!p.catches) {
        char rdv[PATH_MAX];
        int sig = diesel__console_rendezvous(c->uid, c->o->dir, rdv,
            sizeof(rdv)) == 0 ? other_signal(&p, rdv, c->signo) : 0;

        if (sig != 0) {
            char have[32], use[48] = "";

            if (c->o->signal_hint != NULL)
                snprintf(use, sizeof(use), ": use %.24s %d",
                    c->o->signal_hint, sig);
            return fail(c, ENOTSUP, "PID %ld (%s) does not catch %s: its "
                "console listens for %s, not %s (%s/service-%ld)%s",
                (long)pid, c->comm, sig_name(c->signo),
                diesel_signal_name(sig, have, sizeof(have)),
                sig_name(c->signo), rdv, (long)pid, use);
        }
        if (p.ignores)
            return fail(c, ENOTSUP, "PID %ld (%s) ignores %s: it has no "
                "console handler (diesel_console_install)", (long)pid,
                c->comm, sig_name(c->signo));
        return fail(c, ENOTSUP, "PID %ld (%s) does not catch %s: it has "
            "no console handler (diesel_console_install), and signalling "
            "it would kill it", (long)pid, c->comm, sig_name(c->signo));
    }
    if (diesel__console_rendezvous(c->uid, c->o->dir, c->dir,
        sizeof(c->dir)) != 0)
        return fail(c, ENAMETOOLONG, "rendezvous directory name too long");
    if ((st = check_dir(c)) != 0)
        return st;
    /* Catching the signal proves nothing (shells and debuggers do): only
     * the advertisement, tied to this process's start time, does. */
    if (proven(c->dfd, &p, c->signo, c->o->signal_hint, why,
        sizeof(why)) != 0) {
        char what[PATH_MAX + 640];

        sweep(c->dfd, c->signo);    /* a stale one of its pid too */
        snprintf(what, sizeof(what), "%s/service-%ld: %s", c->dir,
            (long)pid, why);
        return not_proven(c, what);
    }
    sweep(c->dfd, c->signo);
    return 0;
}

struct diesel_console_client *
diesel_console_client_attach(pid_t pid,
    const struct diesel_console_attach_opts *opts, char *why, size_t size)
{
    struct diesel_console_client *c;
    int32_t nonce;
    int err;

    if (size > 0)
        why[0] = '\0';
    if (pid <= 0 || opts == NULL) {
        snprintf(why, size, "no such process: %ld", (long)pid);
        errno = pid <= 0 ? ESRCH : EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(why, size, "out of memory");
        return NULL;
    }
    c->pid = pid;
    c->fd = -1;
    c->pidfd = -1;
    c->dfd = -1;
    c->o = opts;
    c->signo = opts->signo != 0 ? opts->signo : SIGTRAP;
    c->timeout_ms = opts->timeout_ms;
    c->why = why;
    c->why_size = size;
    if ((err = prove(c, pid)) != 0)
        goto out;
    c->nonce = diesel__platform_random31();
    if ((err = rdv_join(c)) != 0)
        goto out;
    nonce = c->nonce;
    if (diesel__platform_signal_send(c->pid, c->pidfd, c->signo,
        &nonce) != 0) {
        err = errno;
        if (err == ESRCH)
            err = fail(c, ESRCH, "no such process: %ld (it exited after it "
                "was checked)", (long)c->pid);
        else if (err == EPERM)
            err = fail(c, EPERM, "PID %ld: not permitted to signal it",
                (long)c->pid);
        else
            err = fail(c, sys_err(err), "sending %s to PID %ld: %s",
                sig_name(c->signo), (long)c->pid, strerror(err));
        goto out;
    }
    err = accept_target(c, deadline_of(c->timeout_ms));
    /* Connected or not, nobody else may come in for c now (nor at all,
     * once no attach waits). */
    rdv_leave(c);
    if (err == 0)
        err = stuck_report(c);
    else if (err == ETIMEDOUT && (size == 0 || why[0] == '\0'))
        err = timed_out(c);
out:
    rdv_leave(c);
    if (c->dfd >= 0)
        close(c->dfd);
    c->dfd = -1;
    c->o = NULL;
    c->why = NULL;
    c->why_size = 0;
    if (err != 0) {
        diesel_console_client_close(c);
        errno = err;
        return NULL;
    }
    return c;
}

/* ---- The list ------------------------------------------------------------ */

struct listing {
    int signo;
    const char *dir;
    struct diesel_console_service *v;   /* those proven, to sort */
    size_t n, cap;
    int err;                /* ENOMEM: the walk stopped */
};

/* p is listed only if it is proven a service, as an attach would prove
 * it: the same directory checks and advertisement. */
static int
list_one(const struct diesel__proc *p, void *arg)
{
    struct listing *l = arg;
    struct diesel_console_client c;
    struct diesel_console_service sv;
    struct diesel__proc q;
    char why[512];
    uid_t me = geteuid();
    int ok, sig = 0;

    if (me != 0 && p->uid != me)
        return 0;
    if (p->pid == getpid())
        return 0;
    memset(&c, 0, sizeof(c));
    c.pid = p->pid;
    c.uid = p->uid;
    c.dfd = -1;
    if (diesel__console_rendezvous(p->uid, l->dir, c.dir,
        sizeof(c.dir)) != 0 || check_dir(&c) != 0)
        return 0;
    if (l->signo < 0) {
        /* Any signal: the one it advertises, if it catches that one. */
        uint64_t start;
        int adv = read_advert(c.dfd, p->pid, p->uid, &start, &sig, why,
            sizeof(why)) == 0;

        ok = adv && sig > 0 &&
            diesel__platform_proc_get(p->pid, sig, &q) == 0 && q.catches &&
            proven(c.dfd, &q, sig, NULL, why, sizeof(why)) == 0;
        if (adv)        /* only where there is something to sweep */
            sweep(c.dfd, ok ? sig : SIGTRAP);
    } else {
        sig = l->signo;
        ok = proven(c.dfd, p, sig, NULL, why, sizeof(why)) == 0;
        sweep(c.dfd, sig);
    }
    close(c.dfd);
    if (!ok)
        return 0;
    memset(&sv, 0, sizeof(sv));
    sv.signo = sig;
    sv.pid = p->pid;
    sv.uid = p->uid;
    sv.uptime = p->uptime;
    snprintf(sv.comm, sizeof(sv.comm), "%s", p->comm);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct diesel_console_service *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL) {
            l->err = ENOMEM;
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = sv;
    return 0;
}

static int
by_pid(const void *a, const void *b)
{
    const struct diesel_console_service *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* In the order of their pids, whatever order the system walks them in:
 * a tool prints the list as it comes. */
int
diesel_console_client_list(int signo, const char *dir,
    int (*fn)(const struct diesel_console_service *, void *), void *arg)
{
    struct listing l;
    int r;

    memset(&l, 0, sizeof(l));
    l.signo = signo > 0 ? signo : signo < 0 ? -1 : SIGTRAP;
    l.dir = dir;
    r = diesel__platform_proc_each(l.signo > 0 ? l.signo : 0, list_one, &l);
    if (r == 0 && l.err != 0) {
        errno = l.err;
        r = -1;
    }
    if (r == 0 && l.n > 0) {
        qsort(l.v, l.n, sizeof(*l.v), by_pid);
        for (size_t i = 0; i < l.n && fn(&l.v[i], arg) == 0; i++)
            ;
    }
    if (r != 0) {
        int err = errno;

        free(l.v);
        errno = err;
        return r;
    }
    free(l.v);
    return 0;
}
