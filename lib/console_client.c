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
    char sock_name[64];     /* our socket's name in it */
    int have_sock;          /* it exists */
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
    for (;;) {
        char *l, *text = NULL;
        size_t ln, tn = 0;
        int r = conn_getline(c, deadline, &l, &ln);

        if (r <= 0) {
            err = r < 0 ? errno : ECONNRESET;
            goto done;
        }
        if (l[0] == '|' && (l[1] == ' ' || l[1] == '\0')) {
            text = l[1] ? l + 2 : l + 1;
            tn = l[1] ? ln - 2 : 0;
        } else if (strcmp(l, "OK") == 0) {
            st = 0;
        } else if (strncmp(l, "ERR", 3) == 0 &&
            (l[3] == ' ' || l[3] == '\0')) {
            st = 1;
            text = l[3] ? l + 4 : l + 3;
            tn = strlen(text);
        } else if (strncmp(l, "BUSY ", 5) == 0) {
            err = EBUSY;
            goto done;
        } else if (strncmp(l, "STUCK ", 6) == 0) {
            err = EDEADLK;
            goto done;
        } else {
            err = EPROTO;
            goto done;
        }
        if (text != NULL) {
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
        if (st >= 0)
            break;
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
    if (errno == ENOENT)
        return fail(c, ENOTSUP, "PID %ld (%s) is not proven to be "
            "a libdiesel service with its console installed (no "
            "rendezvous directory %s: it has advertised no console); "
            "not signalled.  Check with `dconsole -l`, which lists the "
            "services that can be attached to", (long)c->pid, c->comm, dir);
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
proven(int dfd, const struct diesel__proc *p, int signo, char *why,
    size_t size)
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

        snprintf(why, size, "its console listens for %s, not %s: use -s %d",
            diesel_signal_name(sig, have, sizeof(have)),
            diesel_signal_name(signo, want, sizeof(want)), sig);
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

/* Bind and listen on <dir>/console-<our pid>.sock, through c->dfd. */
static int
listen_at(struct diesel_console_client *c, int *lfd)
{
    const char *dir = c->dir;
    mode_t old;
    int fd, r, err;

    snprintf(c->sock_name, sizeof(c->sock_name), "console-%ld.sock",
        (long)getpid());
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return fail(c, sys_err(errno), "socket: %s", strerror(errno));
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* An attacher that died with our pid may have left its socket. */
    (void)unlinkat(c->dfd, c->sock_name, 0);
    old = umask(077);
    r = diesel__platform_bind_at(fd, c->dfd, dir, c->sock_name);
    err = errno;
    umask(old);
    if (r != 0) {
        close(fd);
        if (err == ENAMETOOLONG)
            return fail(c, ENAMETOOLONG, "socket path %s/%s is too long: "
                "use a shorter directory (-d or DIESEL_CONSOLE_DIR)", dir,
                c->sock_name);
        return fail(c, sys_err(err), "bind %s/%s: %s", dir, c->sock_name,
            strerror(err));
    }
    c->have_sock = 1;
    /* root attaching to another user: the socket is root's, mode 0700, and
     * the app must be able to connect.  Not following a symlink: the
     * directory is that user's, who could have swapped the socket. */
    if (geteuid() != c->uid &&
        fchownat(c->dfd, c->sock_name, c->uid, (gid_t)-1,
        AT_SYMLINK_NOFOLLOW) != 0) {
        err = errno;
        close(fd);
        return fail(c, sys_err(err), "chown %s/%s: %s", dir, c->sock_name,
            strerror(err));
    }
    if (listen(fd, 16) != 0) {
        err = errno;
        close(fd);
        return fail(c, sys_err(err), "listen %s/%s: %s", dir, c->sock_name,
            strerror(err));
    }
    *lfd = fd;
    return 0;
}

static void
remove_socket(struct diesel_console_client *c)
{
    if (c->have_sock) {
        (void)unlinkat(c->dfd, c->sock_name, 0);
        c->have_sock = 0;
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

/* Drop a connection that is not the one awaited. */
static void
drop(struct diesel_console_client *c)
{
    diesel_fd_close(c->fd);
    c->fd = -1;
    c->off = c->len = 0;
}

/*
 * Wait for the target's connection until the deadline: every other peer
 * is closed without a byte written.  0 and c->fd set, or an errno class
 * (ETIMEDOUT with why left for the caller to fill).
 */
static int
accept_target(struct diesel_console_client *c, int lfd, int32_t nonce,
    int64_t deadline)
{
    int64_t resignal = diesel_now() + RESIGNAL_MS;

    for (;;) {
        int64_t left = deadline - diesel_now();
        struct diesel__proc p;
        pid_t ppid;
        uid_t puid;
        char *line;
        size_t n;
        long version, gpid;
        long long gnonce;
        int fd, r;

        if (left <= 0)
            return ETIMEDOUT;
        r = diesel_fd_wait(lfd, DIESEL_READ,
            left < LIVENESS_MS ? left : LIVENESS_MS);
        if (r < 0 && errno == ETIMEDOUT) {
            int32_t again = nonce;

            if (diesel__platform_proc_get(c->pid, c->signo, &p) != 0) {
                if (errno == ESRCH)
                    return fail(c, ESRCH, "PID %ld exited before it "
                        "answered", (long)c->pid);
                continue;
            }
            c->looks++;
            c->running += p.state == 'R';
            /* Again, with the same nonce, once a second: a loop that was
             * merely busy may be stuck for long enough now, and then its
             * handler answers (the app attaches once per nonce).  Never
             * to a process that no longer catches the signal, nor just
             * before giving up. */
            if (diesel_now() >= resignal && p.catches &&
                deadline - diesel_now() >= LIVENESS_MS) {
                resignal = diesel_now() + RESIGNAL_MS;
                (void)diesel__platform_signal_send(c->pid, c->pidfd,
                    c->signo, &again);
            }
            continue;
        }
        if (r < 0) {
            if (errno == ECANCELED)
                return fail(c, ECANCELED, "%s", "");
            return fail(c, sys_err(errno), "waiting for PID %ld: %s",
                (long)c->pid, strerror(errno));
        }
        fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                return fail(c, errno, "accept: %s", strerror(errno));
            continue;   /* EAGAIN, ECONNABORTED, EINTR... */
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
        if (ppid != c->pid || puid != c->uid) {
            notice(c, DIESEL_CONSOLE_REFUSED, "refused a connection from pid "
                "%ld (uid %lu): expected PID %ld (uid %lu)", (long)ppid,
                (unsigned long)puid, (long)c->pid, (unsigned long)c->uid);
            close(fd);
            continue;
        }
        c->fd = fd;
        r = conn_getline(c, deadline, &line, &n);
        if (r <= 0) {
            int err = errno;

            drop(c);
            if (r < 0 && err == ETIMEDOUT)
                return ETIMEDOUT;
            if (r < 0 && err == ECANCELED)
                return fail(c, ECANCELED, "%s", "");
            continue;
        }
        if (parse_greeting(line, &version, &gpid, &gnonce) != 0 ||
            (version == 1 && (gpid != (long)c->pid || gnonce != nonce))) {
            notice(c, DIESEL_CONSOLE_REFUSED, "refused a connection from PID "
                "%ld: its greeting does not answer this request: \"%.80s\"",
                (long)c->pid, line);
            drop(c);
            continue;
        }
        if (version != 1) {
            drop(c);
            return fail(c, EPROTO, "PID %ld speaks console protocol "
                "version %ld; this dconsole speaks version 1",
                (long)c->pid, version);
        }
        return 0;
    }
}

static int
busy(struct diesel_console_client *c, const char *line)
{
    long n = strtol(line + 5, NULL, 10);

    return fail(c, EBUSY, "PID %ld refused the session: busy, with %ld "
        "console sessions open already (its most); try again once one "
        "ends", (long)c->pid, n);
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
            return busy(c, line);
        return 0;   /* the rest of the line never came: the session says */
    }
    if (c->len - c->off < 1 || (p[0] != '|' &&
        (c->len - c->off < 6 || strncmp(p, "STUCK ", 6) != 0)))
        return 0;
    deadline = deadline_of(c->timeout_ms);
    for (;;) {
        char *line;
        size_t n;
        int r = conn_getline(c, deadline, &line, &n);

        if (r < 0 && errno == ECANCELED)
            return fail(c, ECANCELED, "%s", "");
        if (r <= 0)
            return fail(c, EDEADLK, "the loop of PID %ld is stuck: its "
                "report was cut short (%s)", (long)c->pid,
                r < 0 ? strerror(errno) : "end of file");
        if (line[0] == '|' && (line[1] == ' ' || line[1] == '\0')) {
            const char *text = line[1] ? line + 2 : line + 1;

            if (c->o->notice != NULL)
                c->o->notice(c->o->arg, DIESEL_CONSOLE_REPORT, text,
                    line[1] ? n - 2 : 0);
            continue;
        }
        if (strncmp(line, "STUCK ", 6) == 0) {
            long long ms = strtoll(line + 6, NULL, 10);

            if (ms < 0)
                ms = 0;
            return fail(c, EDEADLK, "the loop of PID %ld is stuck (no turn "
                "for %lld.%03lld s): the report above says which green "
                "thread holds it", (long)c->pid, ms / 1000, ms % 1000);
        }
        return fail(c, EPROTO, "PID %ld broke the console protocol (%s: "
            "\"%.60s\"): the session is over", (long)c->pid,
            "not a reply line", line);
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
    if (proven(c->dfd, &p, c->signo, why, sizeof(why)) != 0) {
        sweep(c->dfd, c->signo);    /* a stale one of its pid too */
        return fail(c, ENOTSUP, "PID %ld (%s) is not proven to be a "
            "libdiesel service with its console installed (%s/service-%ld: "
            "%s); not signalled.  Check with `dconsole -l`, which lists the "
            "services that can be attached to", (long)pid, c->comm, c->dir,
            (long)pid, why);
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
    int lfd = -1, err;

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
    if ((err = listen_at(c, &lfd)) != 0)
        goto out;
    nonce = diesel__platform_random31();
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
    err = accept_target(c, lfd, nonce, deadline_of(c->timeout_ms));
    /* Connected or not, nobody else may come in now. */
    diesel_fd_close(lfd);
    lfd = -1;
    remove_socket(c);
    if (err == 0)
        err = stuck_report(c);
    else if (err == ETIMEDOUT && (size == 0 || why[0] == '\0'))
        err = timed_out(c);
out:
    if (lfd >= 0)
        diesel_fd_close(lfd);
    remove_socket(c);
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
    int (*fn)(const struct diesel_console_service *, void *);
    void *arg;
};

/* p is listed only if it is proven a service, as an attach would prove
 * it: the same directory checks and advertisement. */
static int
list_one(const struct diesel__proc *p, void *arg)
{
    struct listing *l = arg;
    struct diesel_console_client c;
    struct diesel_console_service sv;
    char why[512];
    uid_t me = geteuid();
    int ok;

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
    ok = proven(c.dfd, p, l->signo, why, sizeof(why)) == 0;
    sweep(c.dfd, l->signo);
    close(c.dfd);
    if (!ok)
        return 0;
    memset(&sv, 0, sizeof(sv));
    sv.pid = p->pid;
    sv.uid = p->uid;
    sv.uptime = p->uptime;
    snprintf(sv.comm, sizeof(sv.comm), "%s", p->comm);
    return l->fn(&sv, l->arg);
}

int
diesel_console_client_list(int signo, const char *dir,
    int (*fn)(const struct diesel_console_service *, void *), void *arg)
{
    struct listing l;

    l.signo = signo != 0 ? signo : SIGTRAP;
    l.dir = dir;
    l.fn = fn;
    l.arg = arg;
    return diesel__platform_proc_each(l.signo, list_one, &l);
}
