/*
 * console_attach.c: how an operator gets in (DESIGN.md, "The console").
 *
 * Nothing listens in the program.  At install it advertises itself in its
 * private rendezvous directory (service-<pid>, with its start time: what
 * dconsole must find before it signals anything).  dconsole binds a UNIX
 * socket there and sends the console signal with a nonce; the signal
 * handler only writes a record to a self-pipe; the loop reads it, checks
 * the directory through a descriptor, connects through that descriptor,
 * and requires the kernel's word (SO_PEERCRED or its kin) that the peer
 * is the process that sent the signal, running as our user or root.  Then
 * a session green thread greets the peer with the nonce and serves
 * commands.  A SIGTRAP that is neither a request, nor the kernel's, nor
 * our own (tgkill from another process) is refused and logged.
 *
 *   any thread                 the loop's thread
 *   ----------                 -----------------
 *   on_signal()                on_pipe()                 session_main()
 *     write(pipe, record) -->    read records              greeting
 *     (or: a breakpoint:         dir checks, connect       commands...
 *      default action)           peer pid/uid checks  -->  Disconnected
 *                                spawn "console <pid>"
 *
 * While no one is attached, the console costs one pipe (two descriptors)
 * watched by the loop, and nothing else: no socket, thread or timer, and
 * no system call per turn of the loop.
 *
 * When a green thread holds the loop (it is not in poll, and its turn has
 * lasted past a threshold), the handler answers by itself instead of
 * writing the record: console_stuck.c.  A request signalled twice (dconsole
 * signals again while it waits) attaches once: see diesel__console_seen.
 *
 * With several loops, the handler answers by itself only when every loop
 * is stuck.  While the loop watching the pipe is stuck and another turns,
 * it hands the record to that loop (loops.c, diesel__loops_route: a slot
 * and a wake of its mailbox), whose on_mail calls attach() just as on_pipe
 * does, with every check: the session is spawned on, and lives on, that
 * loop.  Nothing below assumes the session's loop is the pipe's; what
 * two loops may both touch (the seen request, the refusals' counts, the
 * count of sessions) is atomic or under a lock of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "console.h"
#include "internal.h"

/* What the handler writes: 16 bytes, well under PIPE_BUF, so that each
 * write is whole or not at all, and reads stay aligned to records. */
struct record {
    int32_t pid;         /* si_pid: the sender, whose socket we connect to */
    int32_t uid;         /* si_uid: the sender's real uid (for the log) */
    int32_t code;        /* si_code: SI_QUEUE or SI_USER */
    int32_t nonce;       /* si_value.sival_int (0 from a plain kill) */
};

#define RECORDS_PER_TURN 32    /* read at most this many per loop turn */
#define REFUSALS_PER_SECOND 10 /* log lines, past which they are counted */

static struct {
    pthread_mutex_t lock;
    int installed;
    int signo;
    int rfd, wfd;                /* the self-pipe */
    pthread_t owner;             /* the thread that installed it */
    struct diesel_loop *loop;    /* the loop watching rfd, or NULL */
    int64_t refuse_window;       /* second of the last refusal logged */
    unsigned refused_in_window;
    unsigned long refused_quiet; /* refusals not logged */
} console = { PTHREAD_MUTEX_INITIALIZER, 0, 0, -1, -1, 0, NULL, 0, 0, 0 };

/* Read by the signal handler, so atomics only. */
static int handler_wfd = -1;
static int handler_active;       /* handlers running now (for uninstall) */
static unsigned long dropped;    /* records lost to a full pipe */
static int attached;             /* attached sessions open */
static struct sigaction handler_old; /* the action before ours */

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

unsigned long
diesel__console_dropped(void)
{
    return __atomic_load_n(&dropped, __ATOMIC_RELAXED);
}

/* ---- The signal handler --------------------------------------------------- */

/* The record to the self-pipe: the loop serves it. */
static void
queue(const struct record *r)
{
    int fd = __atomic_load_n(&handler_wfd, __ATOMIC_ACQUIRE);

    /* Non-blocking: a full pipe (a storm of signals while the loop is
     * busy) drops the request, never blocks the handler. */
    if (fd >= 0 && write(fd, r, sizeof(*r)) != (ssize_t)sizeof(*r))
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
}

/* What would have happened without us: a handler of the program's runs;
 * else the default action, which for SIGTRAP kills and dumps core. */
static void
pass_on(int sig, siginfo_t *si, void *uctx)
{
    if ((handler_old.sa_flags & SA_SIGINFO) &&
        handler_old.sa_sigaction != NULL) {
        handler_old.sa_sigaction(sig, si, uctx);
    } else if (!(handler_old.sa_flags & SA_SIGINFO) &&
        handler_old.sa_handler != SIG_DFL &&
        handler_old.sa_handler != SIG_IGN) {
        handler_old.sa_handler(sig);
    } else {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        /* Pending until this handler returns and unblocks it. */
        raise(sig);
    }
}

/*
 * Who sent it decides (diesel-console(7), "The signal"):
 *
 *   si_code > 0 (the kernel: a breakpoint, a single step)  passed on
 *   sent by this process (raise, kill, sigqueue of its own)  passed on
 *   SI_QUEUE or SI_USER from another process                 a request
 *   anything else (tgkill from another process, a timer...)  refused
 *
 * Only si_code says whether si_pid means anything: for a timer or an
 * asynchronous I/O completion the same bytes hold something else.
 */
static void
on_signal(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno, code = si->si_code, sender = 0;
    struct record r;

    __atomic_add_fetch(&handler_active, 1, __ATOMIC_SEQ_CST);
#ifdef SI_TKILL
    /* A request another OS thread handed to the loop's thread (tgkill
     * from this process): it takes precedence over "the program's own
     * raise". */
    if (code == SI_TKILL && si->si_pid == getpid()) {
        int f;

        /* A report asked by a session on another loop (loops.c). */
        if (diesel__stuck_report_forwarded(uctx)) {
            __atomic_sub_fetch(&handler_active, 1, __ATOMIC_SEQ_CST);
            errno = saved;
            return;
        }
        f = diesel__stuck_forwarded(sig, &r.pid, &r.uid, &r.nonce, uctx);

        if (f != 0) {
            if (f == 2) {
                r.code = SI_QUEUE;
                queue(&r);
            }
            __atomic_sub_fetch(&handler_active, 1, __ATOMIC_SEQ_CST);
            errno = saved;
            return;
        }
    }
    sender = code == SI_TKILL;
#endif
    sender = sender || code == SI_QUEUE || code == SI_USER;
    if (code > 0 || (sender && si->si_pid == getpid())) {
        __atomic_sub_fetch(&handler_active, 1, __ATOMIC_SEQ_CST);
        pass_on(sig, si, uctx);
        errno = saved;
        return;
    }
    r.pid = sender ? (int32_t)si->si_pid : 0;
    r.uid = sender ? (int32_t)si->si_uid : -1;
    r.code = (int32_t)code;
    r.nonce = code == SI_QUEUE ? si->si_value.sival_int : 0;
    /* A stuck loop cannot serve a request: answered here
     * (console_stuck.c).  Anything else is the loop's to refuse and log. */
    if (code != SI_QUEUE && code != SI_USER)
        queue(&r);
    else if (__atomic_load_n(&handler_wfd, __ATOMIC_ACQUIRE) < 0 ||
        !diesel__stuck_handle(sig, r.pid, r.uid, r.nonce, uctx))
        queue(&r);
    __atomic_sub_fetch(&handler_active, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

/* ---- Logging refusals ----------------------------------------------------- */

/* Log the count of refusals not logged, once their second is over (or
 * now, if force): called for every request and at the loop's end, since
 * the console keeps no timer. */
static pthread_mutex_t refuse_lock = PTHREAD_MUTEX_INITIALIZER;

/* refuse_lock held. */
static void
refusals_flush_locked(int force)
{
    int64_t second = diesel__now_ns() / 1000000000;

    if (second == console.refuse_window && !force)
        return;
    if (console.refused_quiet > 0)
        diesel_log("diesel", DIESEL_LOG_ERROR, "%lu more console requests "
            "were refused (not logged one by one)", console.refused_quiet);
    console.refuse_window = second;
    console.refused_in_window = 0;
    console.refused_quiet = 0;
}

/* Under a lock of their own: requests are attached on the console's loop
 * and, while it is stuck, on others (diesel__console_attach_record). */
static void
refusals_flush(int force)
{
    pthread_mutex_lock(&refuse_lock);
    refusals_flush_locked(force);
    pthread_mutex_unlock(&refuse_lock);
}

/* A refusal or failure, as one ERROR line; a storm of them is counted
 * rather than logged line by line. */
static void
refuse(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    pthread_mutex_lock(&refuse_lock);
    refusals_flush_locked(0);
    if (console.refused_in_window >= REFUSALS_PER_SECOND) {
        console.refused_quiet++;
        pthread_mutex_unlock(&refuse_lock);
        return;
    }
    console.refused_in_window++;
    pthread_mutex_unlock(&refuse_lock);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diesel_log("diesel", DIESEL_LOG_ERROR, "%s", msg);
}

/* ---- The rendezvous ------------------------------------------------------- */

/*
 * The rendezvous directory for uid U: dir when not NULL, else
 * DIESEL_CONSOLE_DIR; else /run/user/U/diesel when /run/user/U is a
 * directory of U's; else ${TMPDIR:-/tmp}/diesel-U.  The service computes
 * it for its own effective uid, the attaching side (console_client.c)
 * for the target's.
 */
int
diesel__console_rendezvous(uid_t uid, const char *dir, char *buf,
    size_t size)
{
    const char *env = dir != NULL ? dir : getenv("DIESEL_CONSOLE_DIR");
    char run[64];
    struct stat st;
    int n;

    if (env != NULL && env[0] != '\0') {
        n = snprintf(buf, size, "%s", env);
    } else {
        snprintf(run, sizeof(run), "/run/user/%lu", (unsigned long)uid);
        if (lstat(run, &st) == 0 && S_ISDIR(st.st_mode) &&
            st.st_uid == uid) {
            n = snprintf(buf, size, "%s/diesel", run);
        } else {
            env = getenv("TMPDIR");
            if (env == NULL || env[0] == '\0')
                env = "/tmp";
            n = snprintf(buf, size, "%s/diesel-%lu", env,
                (unsigned long)uid);
        }
    }
    if (n > 0 && (size_t)n < size)
        return 0;
    errno = ENAMETOOLONG;
    return -1;
}

static int
rendezvous_dir(char *buf, size_t size)
{
    return diesel__console_rendezvous(geteuid(), NULL, buf, size);
}

int
diesel__console_dir_open(const char *dir, uid_t uid, int *why,
    struct stat *st)
{
    int fd, err;

    /* O_NOFOLLOW: a symlink in the last component fails (ELOOP), and from
     * here on the descriptor is the directory, whatever the path names. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        *why = DIESEL__DIR_OPEN;
        if (lstat(dir, st) == 0) {
            if (S_ISLNK(st->st_mode))
                *why = DIESEL__DIR_SYMLINK;
            else if (!S_ISDIR(st->st_mode))
                *why = DIESEL__DIR_NOTDIR;
        }
        errno = err;
        return -1;
    }
    *why = DIESEL__DIR_OK;
    if (fstat(fd, st) != 0)
        *why = DIESEL__DIR_OPEN;
    else if (!S_ISDIR(st->st_mode))
        *why = DIESEL__DIR_NOTDIR;
    else if (st->st_uid != uid)
        *why = DIESEL__DIR_OWNER;
    else if (st->st_mode & 077)
        *why = DIESEL__DIR_MODE;
    if (*why != DIESEL__DIR_OK) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* The checks dconsole made, made again, on a descriptor: a real directory
 * of ours that no one else can enter.  The descriptor, or -1 with why. */
static int
open_dir(const char *dir, char *why, size_t size)
{
    struct stat st;
    int fd, bad;

    fd = diesel__console_dir_open(dir, geteuid(), &bad, &st);
    switch (bad) {
    case DIESEL__DIR_OK:
        break;
    case DIESEL__DIR_SYMLINK:
        snprintf(why, size, "rendezvous directory %s is a symbolic link",
            dir);
        break;
    case DIESEL__DIR_NOTDIR:
        snprintf(why, size, "rendezvous directory %s is not a directory",
            dir);
        break;
    case DIESEL__DIR_OWNER:
        snprintf(why, size, "rendezvous directory %s belongs to uid %u, "
            "not to us (uid %u)", dir, (unsigned)st.st_uid,
            (unsigned)geteuid());
        break;
    case DIESEL__DIR_MODE:
        snprintf(why, size, "rendezvous directory %s has mode %04o: others "
            "can enter it (0700 wanted)", dir, (unsigned)(st.st_mode & 07777));
        break;
    default:
        snprintf(why, size, "rendezvous directory %s: %s", dir,
            strerror(errno));
        break;
    }
    return fd;
}

/* ---- The advertisement --------------------------------------------------- */

/*
 * dconsole signals nothing it has not proven, from outside, to be a
 * libdiesel process with the console installed (DESIGN.md, "Attach"): the
 * proof is service-<pid> in the rendezvous directory, which only our user
 * (and root) can write, holding our start time, so that a pid reused by
 * another process does not match.  Written when the console is installed,
 * removed when it is uninstalled and at exit; one left by a process
 * killed outright is stale (its pid gone, or another start time), and
 * dconsole ignores it and sweeps it.  diesel-console(7) has the format.
 */
static struct {
    int on;                  /* our advertisement is in dir */
    pid_t pid;               /* the pid it names (a forked child's exit
                                must not remove its parent's) */
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
} advert;

static pthread_once_t advert_once = PTHREAD_ONCE_INIT;

int
diesel__console_advertise(const char *dir, int signo, char *why,
    size_t size)
{
    char name[64], tmp[64], text[128];
    uint64_t start;
    mode_t old;
    int dfd, fd, n, r, err;

    if (diesel__platform_start_time(&start) != 0) {
        snprintf(why, size, "its start time is unknown (%s)",
            strerror(errno));
        return -1;
    }
    /* Ours to create: the first of our services (or dconsole) to need it
     * makes it, private from the start. */
    old = umask(077);
    r = mkdir(dir, 0700);
    err = errno;
    umask(old);
    if (r != 0 && err != EEXIST) {
        snprintf(why, size, "cannot create the rendezvous directory %s: %s",
            dir, strerror(err));
        return -1;
    }
    dfd = open_dir(dir, why, size);
    if (dfd < 0)
        return -1;
    snprintf(name, sizeof(name), "service-%ld", (long)getpid());
    snprintf(tmp, sizeof(tmp), ".service-%ld.tmp", (long)getpid());
    n = snprintf(text, sizeof(text), "DIESEL-CONSOLE-SERVICE 1 pid=%ld "
        "start=%llu signal=%d\n", (long)getpid(), (unsigned long long)start,
        signo);
    /* Whole or not at all: written aside, then renamed over the name. */
    (void)unlinkat(dfd, tmp, 0);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
        O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || close(fd) != 0 ||
        renameat(dfd, tmp, dfd, name) != 0) {
        err = errno;
        snprintf(why, size, "cannot write %s/%s: %s", dir, name,
            strerror(err));
        if (fd >= 0)
            (void)unlinkat(dfd, tmp, 0);
        close(dfd);
        return -1;
    }
    close(dfd);
    return 0;
}

/* Remove our advertisement (console.lock held, or at exit). */
static void
unadvertise(void)
{
    char name[64];
    int bad, dfd;
    struct stat st;

    if (!advert.on || advert.pid != getpid())
        return;
    advert.on = 0;
    dfd = diesel__console_dir_open(advert.dir, geteuid(), &bad,
        &st);
    if (dfd < 0)
        return;
    snprintf(name, sizeof(name), "service-%ld", (long)advert.pid);
    (void)unlinkat(dfd, name, 0);
    close(dfd);
}

static void
unadvertise_at_exit(void)
{
    unadvertise();
}

static void
register_exit(void)
{
    atexit(unadvertise_at_exit);
}

/* At install (console.lock held): a console that is not advertised still
 * serves, but dconsole will refuse to signal us, so say so loudly. */
static void
advertise(int signo)
{
    char why[512];

    pthread_once(&advert_once, register_exit);
    if (rendezvous_dir(advert.dir, sizeof(advert.dir)) != 0) {
        diesel_log("diesel", DIESEL_LOG_ERROR, "the console is installed "
            "but not advertised (the rendezvous directory's name is too "
            "long): dconsole will refuse to attach");
        return;
    }
    if (diesel__console_advertise(advert.dir, signo, why, sizeof(why)) != 0) {
        diesel_log("diesel", DIESEL_LOG_ERROR, "the console is installed "
            "but not advertised (%s): dconsole will refuse to attach", why);
        return;
    }
    advert.pid = getpid();
    advert.on = 1;
}

/* The greeting line (with its newline) for a peer; signal-safe, since
 * the handler greets too when the loop is stuck (console_stuck.c). */
size_t
diesel__console_greeting(char *buf, size_t size, int32_t nonce)
{
    struct diesel__sline l = { "", 0 };
    const char *p = diesel__platform_progname();

    diesel__sline_put(&l, "DIESEL-CONSOLE 1 pid=");
    diesel__sline_u64(&l, (uint64_t)getpid());
    diesel__sline_put(&l, " program=");
    /* The name is one word in the greeting, escaped (escape.c): at most
     * 64 bytes of it. */
    if (p == NULL || *p == '\0')
        p = "?";
    (void)diesel__escape(l.b, l.n + 4 * 64 + 1, &l.n, p,
        strnlen(p, 64), DIESEL__ESC_TEXT | DIESEL__ESC_WORD);
    diesel__sline_put(&l, " nonce=");
    if (nonce < 0) {
        diesel__sline_put(&l, "-");
        diesel__sline_u64(&l, (uint64_t)-(int64_t)nonce);
    } else {
        diesel__sline_u64(&l, (uint64_t)nonce);
    }
    l.b[l.n++] = '\n';
    if (l.n >= size)
        l.n = size - 1;
    memcpy(buf, l.b, l.n);
    buf[l.n] = '\0';
    return l.n;
}

static void
greeting(char *buf, size_t size, int32_t nonce)
{
    (void)diesel__console_greeting(buf, size, nonce);
}

/* The request (pid, nonce) last served: dconsole signals again while it
 * waits, so the same request may arrive twice (or be answered by the
 * handler and queued as well). */
static uint64_t seen;

static uint64_t
seen_key(int32_t pid, int32_t nonce)
{
    return (uint64_t)(uint32_t)pid << 32 | (uint32_t)nonce;
}

int
diesel__console_seen(int32_t pid, int32_t nonce)
{
    return __atomic_load_n(&seen, __ATOMIC_ACQUIRE) == seen_key(pid, nonce);
}

void
diesel__console_mark_seen(int32_t pid, int32_t nonce)
{
    __atomic_store_n(&seen, seen_key(pid, nonce), __ATOMIC_RELEASE);
}

/* Seen already, or marked now, in one step: two loops may take the same
 * request (the self-pipe's and one routed to another loop). */
static int
seen_or_mark(int32_t pid, int32_t nonce)
{
    uint64_t k = seen_key(pid, nonce);

    return __atomic_exchange_n(&seen, k, __ATOMIC_ACQ_REL) == k;
}

/* ---- Sessions ------------------------------------------------------------- */

struct attach {
    int fd;
    long pid;            /* the peer, checked */
    unsigned uid;
    char greeting[160];
};

static int
session_main(void *arg)
{
    struct attach *a = arg;
    int rc, err;

    rc = diesel__console_serve_peer(a->fd, a->fd, a->greeting, 0,
        DIESEL__CONSOLE_WRITE_TIMEOUT_MS, a->pid, (long)a->uid);
    err = errno;
    if (rc != 0 && err == ETIMEDOUT)
        diesel_log("diesel", DIESEL_LOG_ERROR, "console session of pid %ld "
            "dropped: its reader made no progress for %d s", a->pid,
            DIESEL__CONSOLE_WRITE_TIMEOUT_MS / 1000);
    diesel_fd_close(a->fd);
    __atomic_sub_fetch(&attached, 1, __ATOMIC_RELAXED);
    diesel_log("diesel", DIESEL_LOG_WARNING, "Disconnected from local "
        "console (pid %ld, uid %u)", a->pid, a->uid);
    free(a);
    return rc;
}

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* One attach request, from the loop's own context: nothing here blocks
 * (a UNIX socket connects at once, or fails). */
static void
attach(struct diesel_loop *l, const struct record *r)
{
    struct stat st;
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], why[512];
    char hello[160], name[32], sock[32];
    struct attach *a;
    pid_t peer_pid;
    uid_t peer_uid;
    int fd, dfd, n, busy;
    int64_t id;

    refusals_flush(0);
    if (r->pid <= 0) {
        refuse("console request refused: no sender pid (si_code %d)",
            (int)r->code);
        return;
    }
    if (r->code != SI_QUEUE && r->code != SI_USER) {
        /* tgkill(2) to one of our threads, from outside: not how a
         * request comes, and not the program's own raise() either. */
        refuse("console request from pid %d refused: the signal was sent "
            "to one thread (si_code %d), not queued to the process as "
            "dconsole does", (int)r->pid, (int)r->code);
        return;
    }
    if (seen_or_mark(r->pid, r->nonce))
        return;     /* signalled again, or answered by the handler */
    if (rendezvous_dir(dir, sizeof(dir)) != 0) {
        refuse("console request from pid %d refused: the rendezvous "
            "directory's name is too long", (int)r->pid);
        return;
    }
    /* The socket first: with the descriptor table full, the log says so
     * in the plainest words. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        refuse("console attach from pid %d failed: socket: %s",
            (int)r->pid, strerror(errno));
        return;
    }
    dfd = open_dir(dir, why, sizeof(why));
    if (dfd < 0) {
        refuse("console request from pid %d refused: %s", (int)r->pid, why);
        close(fd);
        return;
    }
    snprintf(sock, sizeof(sock), "console-%d.sock", (int)r->pid);
    /* Every step from here is relative to the directory checked: a path
     * swapped for a symlink meanwhile leads nowhere. */
    if (fstatat(dfd, sock, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        refuse("console request from pid %d refused: %s/%s: %s", (int)r->pid,
            dir, sock, strerror(errno));
        close(fd);
        close(dfd);
        return;
    }
    if (!S_ISSOCK(st.st_mode)) {
        refuse("console request from pid %d refused: %s/%s is not a socket",
            (int)r->pid, dir, sock);
        close(fd);
        close(dfd);
        return;
    }
    if (set_flags(fd) != 0 ||
        diesel__platform_connect_at(fd, dfd, dir, sock) != 0) {
        refuse("console attach from pid %d failed: connect %s/%s: %s",
            (int)r->pid, dir, sock, strerror(errno));
        close(fd);
        close(dfd);
        return;
    }
    close(dfd);
    /* The kernel's word on who listens there, taken when it listened. */
    if (diesel__platform_peer_cred(fd, &peer_pid, &peer_uid) != 0) {
        refuse("console attach from pid %d failed: peer credentials: %s",
            (int)r->pid, strerror(errno));
        close(fd);
        return;
    }
    if (peer_pid != (pid_t)r->pid) {
        refuse("console request from pid %d refused: the socket %s/%s is "
            "held by pid %ld, not by the sender", (int)r->pid, dir, sock,
            (long)peer_pid);
        close(fd);
        return;
    }
    if (peer_uid != 0 && peer_uid != geteuid()) {
        refuse("console request from pid %d refused: its uid %u is "
            "neither ours (%u) nor root", (int)r->pid, (unsigned)peer_uid,
            (unsigned)geteuid());
        close(fd);
        return;
    }
    greeting(hello, sizeof(hello), r->nonce);
    /* A place taken now, given back if the session does not start: two
     * loops may attach at once (diesel__console_attach_record). */
    busy = __atomic_add_fetch(&attached, 1, __ATOMIC_RELAXED) >
        DIESEL__CONSOLE_SESSIONS_MAX;
    if (busy) {
        __atomic_sub_fetch(&attached, 1, __ATOMIC_RELAXED);
        char msg[sizeof(hello) + 64];

        /* Two short lines into an empty socket buffer: they fit.  A
         * status line of its own, not an ERR that would read as the
         * reply to a command the client pipelined after connecting. */
        n = snprintf(msg, sizeof(msg), "%sBUSY %d\n", hello,
            DIESEL__CONSOLE_SESSIONS_MAX);
        (void)diesel__platform_send(fd, msg, (size_t)n);
        close(fd);
        diesel_log("diesel", DIESEL_LOG_WARNING, "console request from pid "
            "%d refused: %d sessions already open", (int)r->pid,
            DIESEL__CONSOLE_SESSIONS_MAX);
        return;
    }
    a = malloc(sizeof(*a));
    if (a == NULL) {
        refuse("console attach from pid %d failed: out of memory",
            (int)r->pid);
        __atomic_sub_fetch(&attached, 1, __ATOMIC_RELAXED);
        close(fd);
        return;
    }
    a->fd = fd;
    a->pid = (long)peer_pid;
    a->uid = (unsigned)peer_uid;
    memcpy(a->greeting, hello, sizeof(hello));
    snprintf(name, sizeof(name), "console %ld", (long)peer_pid);
    /* No spawn site, as for main and a server's green threads: SPAWNED
     * AT names where the program spawned a green thread, "-" for the
     * library's own (it said lib/console_attach.c, without a line). */
    id = diesel__task_spawn(NULL, NULL, name, session_main, a, 0);
    if (id < 0) {
        refuse("console attach from pid %d failed: cannot spawn its green "
            "thread: %s", (int)r->pid, strerror(errno));
        __atomic_sub_fetch(&attached, 1, __ATOMIC_RELAXED);
        close(fd);
        free(a);
        return;
    }
    /* A session must not keep the program alive on its own. */
    diesel__task_set_daemon(diesel__task_find(l, id));
    diesel_log("diesel", DIESEL_LOG_WARNING, "Connected to local console "
        "(pid %ld, uid %u)", (long)peer_pid, (unsigned)peer_uid);
}

void
diesel__console_attach_record(struct diesel_loop *l, int32_t pid,
    int32_t uid, int32_t code, int32_t nonce)
{
    struct record r = { pid, uid, code, nonce };

    /* Uninstalled since the handler routed it: dropped, as the records
     * in the self-pipe were. */
    if (__atomic_load_n(&handler_wfd, __ATOMIC_ACQUIRE) < 0)
        return;
    attach(l, &r);
}

void
diesel__console_requeue(int32_t pid, int32_t uid, int32_t code,
    int32_t nonce)
{
    struct record r = { pid, uid, code, nonce };

    queue(&r);
}

/* The self-pipe is readable: a few records per turn, so that a storm of
 * signals cannot take the loop from the other green threads. */
static void
on_pipe(struct diesel_loop *l, int fd, int events)
{
    struct record recs[RECORDS_PER_TURN];
    ssize_t n;

    (void)events;
    n = read(fd, recs, sizeof(recs));
    if (n <= 0)
        return;
    for (size_t i = 0; i < (size_t)n / sizeof(recs[0]); i++)
        attach(l, &recs[i]);
}

/* ---- Install, and the loop's side ------------------------------------------ */

/* With console.lock held. */
static void
watch(struct diesel_loop *l)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

    if (diesel__loop_handler_add(l, console.rfd, on_pipe, 1) == 0) {
        console.loop = l;
        /* For the handler, should the loop get stuck. */
        diesel__stuck_setup(rendezvous_dir(dir, sizeof(dir)) == 0 ? dir :
            NULL);
        diesel__stuck_loop(l);
    } else
        diesel_log("diesel", DIESEL_LOG_ERROR, "the console cannot watch its "
            "self-pipe: %s", strerror(errno));
}

void
diesel__console_loop_start(struct diesel_loop *l)
{
    pthread_mutex_lock(&console.lock);
    if (console.installed && console.loop == NULL &&
        pthread_equal(console.owner, pthread_self()))
        watch(l);
    pthread_mutex_unlock(&console.lock);
}

void
diesel__console_loop_end(struct diesel_loop *l)
{
    pthread_mutex_lock(&console.lock);
    if (console.loop == l) {
        diesel__stuck_loop(NULL);
        diesel__loop_handler_del(l, console.rfd);
        console.loop = NULL;
        refusals_flush(1);
    }
    pthread_mutex_unlock(&console.lock);
}

/* fork(2): the child gets a pipe of its own, on the same descriptor
 * numbers, so that its requests never reach the parent's loop. */
static void
atfork_prepare(void)
{
    pthread_mutex_lock(&console.lock);
}

static void
atfork_parent(void)
{
    pthread_mutex_unlock(&console.lock);
}

static void
atfork_child(void)
{
    int p[2] = { -1, -1 };

    if (console.installed) {
        if (pipe(p) == 0 && set_flags(p[0]) == 0 && set_flags(p[1]) == 0 &&
            dup2(p[0], console.rfd) >= 0 && dup2(p[1], console.wfd) >= 0) {
            fcntl(console.rfd, F_SETFD, FD_CLOEXEC);
            fcntl(console.wfd, F_SETFD, FD_CLOEXEC);
        } else {
            /* No pipe of its own: requests are dropped, never sent to
             * the parent's loop. */
            __atomic_store_n(&handler_wfd, -1, __ATOMIC_RELEASE);
        }
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        __atomic_store_n(&attached, 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&console.lock);
}

static void
register_atfork(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int
diesel_console_install(int signo)
{
    struct sigaction sa, old;
    int p[2], err;

    if (signo == 0)
        signo = SIGTRAP;
    /* The fatal signals are the crash handler's (stack overflows and
     * crash reports). */
    if (signo < 0 || signo == SIGKILL || signo == SIGSTOP ||
        signo == SIGSEGV || signo == SIGBUS || signo == SIGILL ||
        signo == SIGFPE || signo == SIGABRT ||
        sigaction(signo, NULL, &old) != 0) {
        errno = EINVAL;
        return -1;
    }
    diesel__console_init();
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&console.lock);
    if (console.installed) {
        pthread_mutex_unlock(&console.lock);
        errno = EBUSY;
        return -1;
    }
    if (pipe(p) != 0)
        goto fail;
    if (set_flags(p[0]) != 0 || set_flags(p[1]) != 0) {
        err = errno;
        close(p[0]);
        close(p[1]);
        errno = err;
        goto fail;
    }
    console.rfd = p[0];
    console.wfd = p[1];
    console.signo = signo;
    console.owner = pthread_self();
    handler_old = old;
    __atomic_store_n(&handler_wfd, p[1], __ATOMIC_RELEASE);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    /* SA_ONSTACK: the alternate stack of a loop's thread (crash.c), so a
     * green thread deep in its stack has no extra frame pushed on it.
     * SA_RESTART: the program's own blocking calls do not see EINTR. */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) != 0) {
        err = errno;
        __atomic_store_n(&handler_wfd, -1, __ATOMIC_RELEASE);
        close(p[0]);
        close(p[1]);
        console.rfd = console.wfd = -1;
        errno = err;
        goto fail;
    }
    console.installed = 1;
    advertise(signo);
    {
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

        diesel__stuck_setup(rendezvous_dir(dir, sizeof(dir)) == 0 ? dir :
            NULL);
    }
    if (diesel__loop != NULL)
        watch(diesel__loop);
    pthread_mutex_unlock(&console.lock);
    return 0;
fail:
    pthread_mutex_unlock(&console.lock);
    return -1;
}

int
diesel__console_signo(void)
{
    int signo;

    pthread_mutex_lock(&console.lock);
    signo = console.installed ? console.signo : 0;
    pthread_mutex_unlock(&console.lock);
    return signo;
}

int
diesel_console_uninstall(void)
{
    pthread_mutex_lock(&console.lock);
    if (!console.installed) {
        pthread_mutex_unlock(&console.lock);
        errno = EINVAL;
        return -1;
    }
    if (console.loop != NULL && console.loop != diesel__loop) {
        /* Another thread's loop watches the pipe: it must let go first. */
        pthread_mutex_unlock(&console.lock);
        errno = EBUSY;
        return -1;
    }
    if (console.loop != NULL) {
        diesel__stuck_loop(NULL);
        diesel__loop_handler_del(console.loop, console.rfd);
        console.loop = NULL;
    }
    sigaction(console.signo, &handler_old, NULL);
    /* A handler still running on another thread may hold the old write
     * end: wait for it before the number can be reused. */
    __atomic_store_n(&handler_wfd, -1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&handler_active, __ATOMIC_SEQ_CST) > 0)
        sched_yield();
    close(console.rfd);
    close(console.wfd);
    console.rfd = console.wfd = -1;
    console.installed = 0;
    unadvertise();
    pthread_mutex_unlock(&console.lock);
    return 0;
}
