/*
 * console_stuck.c: the console answers while the loop is stuck
 * (DESIGN.md, "When the loop is stuck").
 *
 * A console request is served by the loop, so a green thread that holds
 * the loop (it computes, spins, or sits in a blocking read(2)) would keep
 * the operator out just when they need to look.  The signal handler knows
 * better: on the loop's thread it can see the loop's state directly.  If
 * the loop is not in poll and its current turn has lasted longer than the
 * threshold, the handler attaches by itself and writes, in the console
 * protocol:
 *
 *   DIESEL-CONSOLE 1 pid=4242 program=service nonce=1234
 *   | the loop has not turned for 3.201 s
 *   | green thread 'spinner' (id 3) holds it, spawned at service.c:88
 *   | its backtrace at the signal:
 *   | spin (service.c:120)
 *   | worker (service.c:88)
 *   | green threads (3):
 *   |   1 main waiting on join 3
 *   |   3 spinner running (holds the loop)
 *   STUCK 3201
 *
 * and closes.  A request that lands on another OS thread is handed to the
 * loop's thread with pthread_kill (a one-request slot), since only there
 * can the backtrace of the holder be taken.
 *
 * With several loops (loops.c), a stuck console loop is not the end of
 * it: if another loop turns, the request is routed to it and gets a full
 * session there (diesel__loops_route).  Only when every loop is stuck
 * does the handler report, one section per loop, each other loop's taken
 * on that loop's thread ("Every loop stuck", below).  With one loop, the
 * report is what it always was.
 *
 * Async-signal-safe calls only: open, fstat, fstatat, socket, socketpair,
 * connect, getsockopt, send, pipe, read, poll, fcntl, shutdown, close,
 * clock_gettime, sigismember, pthread_kill.
 * backtrace() and backtrace_symbols_fd() are not on POSIX's list: see
 * diesel_console(3) for why they are acceptable here (crash.c uses them
 * the same way).  Frames are named from the tables built before
 * (frame.c), and with backtrace_symbols_fd() only where those have no
 * module for them.
 */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

#define BACKTRACE_MAX 64

/* The threshold, ns; 0: never report. */
static int64_t after_ns = 1000000000;

/* The rendezvous directory, for the handler: dir_len is 0 while it is
 * rewritten (or when it does not fit a socket path). */
static char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
static size_t dir_len;

/* The loop watching the console's pipe, and its OS thread. */
static struct diesel_loop *stuck_loop;
static pthread_t loop_thread;
static int handlers;          /* handlers looking at stuck_loop now */

/* A request handed from another OS thread to the loop's. */
enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };
static int slot_state;
static int32_t slot_pid, slot_uid, slot_nonce;

int
diesel_console_stuck_after(int64_t ms)
{
    if (ms < 0 || ms > INT64_MAX / 1000000) {
        errno = EINVAL;
        return -1;
    }
    __atomic_store_n(&after_ns, ms * 1000000, __ATOMIC_RELAXED);
    return 0;
}

int64_t
diesel__stuck_after_ns(void)
{
    int64_t after = __atomic_load_n(&after_ns, __ATOMIC_RELAXED);

    return after > 0 ? after : (int64_t)10 * 1000000000;
}

void
diesel__stuck_setup(const char *d)
{
    size_t n = d != NULL ? strlen(d) : 0;
    const char *env = getenv("DIESEL_CONSOLE_STUCK_MS");

    /* The operator's say, read here and not in the handler (getenv is
     * not async-signal-safe); a later diesel_console_stuck_after wins. */
    if (env != NULL && env[0] != '\0') {
        char *end;
        long long ms = strtoll(env, &end, 10);
        if (*end == '\0' && ms >= 0)
            diesel_console_stuck_after(ms);
    }

    __atomic_store_n(&dir_len, 0, __ATOMIC_RELEASE);
    if (n == 0 || n >= sizeof(dir))
        return;
    memcpy(dir, d, n + 1);
    __atomic_store_n(&dir_len, n, __ATOMIC_RELEASE);
}

void
diesel__stuck_loop(struct diesel_loop *l)
{
    if (l != NULL) {
        loop_thread = pthread_self();
        __atomic_store_n(&stuck_loop, l, __ATOMIC_RELEASE);
        return;
    }
    __atomic_store_n(&stuck_loop, NULL, __ATOMIC_SEQ_CST);
    /* A handler on another thread may still read the old loop. */
    while (__atomic_load_n(&handlers, __ATOMIC_SEQ_CST) > 0)
        sched_yield();
}

/* How long l's turn has lasted, if it is stuck; else -1. */
static int64_t
stuck_for(struct diesel_loop *l)
{
    return diesel__stuck_for(l);
}

int64_t
diesel__stuck_for(struct diesel_loop *l)
{
    int64_t after = __atomic_load_n(&after_ns, __ATOMIC_RELAXED), d;

    if (after <= 0 || __atomic_load_n(&l->in_poll, __ATOMIC_ACQUIRE))
        return -1;
    d = diesel__now_ns() - __atomic_load_n(&l->now, __ATOMIC_RELAXED);
    return d > after ? d : -1;
}

/* The interrupted pc, to skip the handler's own frames; NULL if unknown
 * (the platform file reads it from the signal's context). */
static void *
interrupted_pc(void *uctx)
{
    return (void *)diesel__platform_uc_pc(uctx);
}

static void
send_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = diesel__platform_send(fd, b, n);

        if (w <= 0)
            return;     /* a full buffer or a gone peer: the rest is lost */
        b += w;
        n -= (size_t)w;
    }
}

/* line, a newline, out. */
static void
emit(int fd, struct diesel__sline *l)
{
    l->b[l->n++] = '\n';
    send_all(fd, l->b, l->n);
    l->n = 0;
    l->b[0] = '\0';
}

/* The symbol of addr as backtrace_symbols_fd() writes it, appended to l:
 * it writes to a pipe of ours, never to the socket (a gone peer would
 * raise SIGPIPE). */
static void
put_symbol(struct diesel__sline *l, const int pfd[2], void *addr)
{
    char buf[sizeof(l->b)];
    ssize_t n;
    size_t len = 0;

    if (pfd[0] < 0) {
        diesel__sline_hex(l, (uint64_t)(uintptr_t)addr);
        return;
    }
    backtrace_symbols_fd(&addr, 1, pfd[1]);
    while ((n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)n;
        if (len == sizeof(buf) - 1) {
            char drop[256];
            while (read(pfd[0], drop, sizeof(drop)) > 0)
                ;
            break;
        }
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\0'))
        len--;
    buf[len] = '\0';
    if (len == 0)
        diesel__sline_hex(l, (uint64_t)(uintptr_t)addr);
    else
        diesel__sline_esc(l, buf);
}

/* A frame as the console's stacks shows it, from the table built before
 * (frame.c); else as backtrace_symbols_fd() does.  *entry: pc is in the
 * green thread's entry (entry may be NULL). */
static void
put_frame(struct diesel__sline *l, const int pfd[2], void *addr, int exact,
    int *entry)
{
    int e = 0;

    if (diesel__frame_sline(addr, exact, l, &e) != 0)
        put_symbol(l, pfd, addr);
    if (entry != NULL)
        *entry = e;
}

/* Milliseconds as "N.NNN". */
static void
put_seconds(struct diesel__sline *l, int64_t ms)
{
    char frac[4];

    diesel__sline_u64(l, (uint64_t)(ms / 1000));
    frac[0] = (char)('0' + ms % 1000 / 100);
    frac[1] = (char)('0' + ms % 100 / 10);
    frac[2] = (char)('0' + ms % 10);
    frac[3] = '\0';
    diesel__sline_put(l, ".");
    diesel__sline_put(l, frac);
}

/* Connect to the requester as attach() in console_attach.c does, with
 * the same checks, relative to the directory checked; the socket, or -1. */
static int
connect_peer(int32_t pid)
{
    struct diesel__sline name = { "", 0 };
    struct stat st;
    size_t n = __atomic_load_n(&dir_len, __ATOMIC_ACQUIRE);
    pid_t peer_pid;
    uid_t peer_uid;
    int fd, dfd, fl, bad;

    if (n == 0)
        return -1;
    dfd = diesel__console_dir_open(dir, geteuid(), &bad, &st);
    if (dfd < 0)
        return -1;
    diesel__sline_put(&name, "console-");
    diesel__sline_u64(&name, (uint64_t)pid);
    diesel__sline_put(&name, ".sock");
    if (fstatat(dfd, name.b, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISSOCK(st.st_mode)) {
        close(dfd);
        return -1;
    }
#ifdef SOCK_CLOEXEC
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
#endif
    if (fd < 0) {
        close(dfd);
        return -1;
    }
    /* A UNIX socket connects at once or fails: blocking is fine here. */
    if (diesel__platform_connect_at(fd, dfd, dir, name.b) != 0 ||
        diesel__platform_peer_cred(fd, &peer_pid, &peer_uid) != 0 ||
        peer_pid != (pid_t)pid ||
        (peer_uid != 0 && peer_uid != geteuid())) {
        close(fd);
        close(dfd);
        return -1;
    }
    close(dfd);
    /* Never block in the handler: a peer that does not read loses the
     * rest of the report. */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The report's lines (above), each after prefix, to fd; line may hold
 * text to send before them (the greeting).  ms < 0: the loop waits in
 * poll. */
static void
report_lines(int fd, const char *prefix, struct diesel__sline *line,
    int64_t ms, void *uctx)
{
    struct diesel__task *t = diesel__current;
    struct diesel_loop *l = diesel__loop;
    void *frames[BACKTRACE_MAX], *pc;
    int pfd[2] = { -1, -1 }, n, first = 0;

    if (pipe(pfd) == 0) {
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        fcntl(pfd[1], F_SETFL, O_NONBLOCK);
    } else {
        pfd[0] = pfd[1] = -1;
    }
    /* With the greeting, in one write: dconsole sees the report as soon
     * as it reads the greeting. */
    diesel__sline_put(line, prefix);
    if (ms < 0) {
        diesel__sline_put(line, "the loop waits in poll");
    } else {
        diesel__sline_put(line, "the loop has not turned for ");
        put_seconds(line, ms);
        diesel__sline_put(line, " s");
    }
    emit(fd, line);
    diesel__sline_put(line, prefix);
    if (t != NULL) {
        diesel__sline_put(line, "green thread '");
        /* Escaped: a newline would end the report's framing, and
         * dconsole would drop the report it is most needed for. */
        diesel__sline_esc(line, t->name);
        diesel__sline_put(line, "' (id ");
        diesel__sline_u64(line, (uint64_t)t->id);
        diesel__sline_put(line, ") holds it");
        /* Where it was spawned, as tasks says it: a green thread the
         * library started (main, a connection's, a session) has no
         * site, and the line says nothing rather than "?". */
        if (t->where != NULL) {
            diesel__sline_put(line, ", spawned at ");
            diesel__sline_esc(line, t->where);
        } else if (t->spawn_caller != NULL) {
            diesel__sline_put(line, ", spawned at ");
            put_frame(line, pfd, t->spawn_caller, 0, NULL);
        }
    } else {
        diesel__sline_put(line, "no green thread holds it (the loop's own "
            "code runs)");
    }
    emit(fd, line);
    diesel__sline_put(line, prefix);
    diesel__sline_put(line, "its backtrace at the signal:");
    emit(fd, line);
    n = backtrace(frames, BACKTRACE_MAX);
    /* Skip the handler's own frames: start at the interrupted pc. */
    pc = interrupted_pc(uctx);
    for (int i = 0; pc != NULL && i < n; i++) {
        if (frames[i] == pc) {
            first = i;
            break;
        }
    }
    for (int i = first; i < n; i++) {
        int entry = 0;

        diesel__sline_put(line, prefix);
        put_frame(line, pfd, frames[i], frames[i] == pc, &entry);
        if (entry) {
            line->n = 0;     /* the green thread's entry: the end */
            line->b[0] = '\0';
            break;
        }
        emit(fd, line);
    }
    if (l != NULL)
        diesel__crash_table(l, fd, prefix, "running (holds the loop)");
    if (pfd[0] >= 0) {
        close(pfd[0]);
        close(pfd[1]);
    }
}

/* ---- Every loop stuck ------------------------------------------------------
 *
 * With several loops, the handler reports only when none of them turns
 * (else the request goes to one that does: diesel__loops_route), and its
 * report has one section per loop, its lines indented under a heading:
 *
 *   | every loop is stuck (2 loops)
 *   | loop main (thread 4242):
 *   |   the loop has not turned for 3.201 s
 *   |   ...
 *   | loop worker (thread 4243):
 *   |   the loop has not turned for 2.950 s
 *   |   ...
 *   STUCK 3201
 *
 * This loop's section is written here; another's is written by a handler
 * on that loop's own thread (the holder's backtrace can be taken nowhere
 * else), asked as a session asks (diesel__stuck_report_ask), into a
 * socket pair whose lines are copied over with the prefix, each loop
 * given at most LOOP_REPORT_MS and all of them ALL_REPORT_MS.
 */
#define LOOP_REPORT_MS 2000
#define ALL_REPORT_MS 4000

struct every {
    int fd;                     /* the requester */
    int signo;
    void *uctx;
    int64_t deadline;           /* of the whole report, monotonic ns */
    struct diesel__sline *line;
};

/* The lines read from in until its end or deadline, each after "| ", to
 * out; signal-safe (poll, read).  The bytes read. */
static size_t
relay(int out, int in, int64_t deadline, struct diesel__sline *line)
{
    char buf[512];
    size_t total = 0;
    int start = 1;

    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        int64_t left;

        if (n > 0) {
            total += (size_t)n;
            for (ssize_t i = 0; i < n; i++) {
                if (start) {
                    diesel__sline_put(line, "| ");
                    start = 0;
                }
                if (buf[i] == '\n') {
                    emit(out, line);
                    start = 1;
                } else if (line->n < sizeof(line->b) - 2) {
                    line->b[line->n++] = buf[i];
                    line->b[line->n] = '\0';
                }
            }
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        left = deadline - diesel__now_ns();
        if (left <= 0)
            break;
        {
            struct pollfd p = { in, POLLIN, 0 };

            (void)poll(&p, 1, (int)((left + 999999) / 1000000));
        }
    }
    if (!start)
        emit(out, line);
    return total;
}

/* One loop's section of the report (diesel__loops_view's callback). */
static void
every_section(void *arg, const struct diesel__loop_view *v)
{
    struct every *e = arg;
    struct diesel__sline *line = e->line;
    int sv[2], fl;
    int64_t ns, deadline;

    diesel__sline_put(line, "| loop ");
    diesel__sline_esc(line, v->name);
    diesel__sline_put(line, " (thread ");
    diesel__sline_u64(line, (uint64_t)v->tid);
    diesel__sline_put(line, "):");
    emit(e->fd, line);
    if (v->loop == diesel__loop) {
        ns = stuck_for(v->loop);
        report_lines(e->fd, "|   ", line, ns < 0 ? -1 : ns / 1000000,
            e->uctx);
        return;
    }
    if (stuck_for(v->loop) < 0) {
        /* It turned meanwhile: a request now would get a session. */
        diesel__sline_put(line, "|   it turns again: attach again for a "
            "session");
        emit(e->fd, line);
        return;
    }
    if (v->blocks) {
        diesel__sline_put(line, "|   no report: the loop blocks signal ");
        diesel__sline_u64(line, (uint64_t)e->signo);
        diesel__sline_put(line, ", the console's, on its thread");
        emit(e->fd, line);
        return;
    }
    deadline = diesel__now_ns() + (int64_t)LOOP_REPORT_MS * 1000000;
    if (deadline > e->deadline)
        deadline = e->deadline;
#ifdef SOCK_CLOEXEC
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
#endif
        diesel__sline_put(line, "|   no report: no socket pair for it");
        emit(e->fd, line);
        return;
    }
    fl = fcntl(sv[0], F_GETFL);
    if (fl >= 0)
        fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    fl = fcntl(sv[1], F_GETFL);
    if (fl >= 0)
        fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
    if (diesel__stuck_report_ask(v->thread, v->loop, sv[1], e->signo) != 0) {
        diesel__sline_put(line, errno == EBUSY ? "|   no report: a session "
            "is asking for one now" : "|   no report: its thread is gone");
        emit(e->fd, line);
    } else {
        if (relay(e->fd, sv[0], deadline, line) == 0) {
            diesel__sline_put(line, "|   no report: its thread did not "
                "answer in time");
            emit(e->fd, line);
        }
        diesel__stuck_report_done();
    }
    close(sv[0]);
    close(sv[1]);
}

/* The report (above) to the requester; 0, or -1 if it could not attach. */
static int
report(int signo, int32_t pid, int32_t nonce, int64_t ns, void *uctx)
{
    struct diesel__sline line = { "", 0 };
    int64_t ms = ns / 1000000;
    unsigned n, hidden = 0;
    int fd;

    if (diesel__console_seen(pid, nonce))
        return 0;   /* reported already: dconsole signalled again */
    fd = connect_peer(pid);
    if (fd < 0)
        return -1;
    line.n = diesel__console_greeting(line.b, sizeof(line.b) - 64, nonce);
    n = diesel__loops_view(0, NULL, NULL, &hidden);
    if (n + hidden <= 1) {
        report_lines(fd, "| ", &line, ms, uctx);
    } else {
        struct every e = { fd, signo, uctx, diesel__now_ns() +
            (int64_t)ALL_REPORT_MS * 1000000, &line };

        /* With the greeting, in one write, as report_lines does. */
        diesel__sline_put(&line, "| every loop is stuck (");
        diesel__sline_u64(&line, (uint64_t)(n + hidden));
        diesel__sline_put(&line, " loops)");
        emit(fd, &line);
        n = diesel__loops_view(signo, every_section, &e, &hidden);
        if (hidden > 0) {
            diesel__sline_put(&line, "| ");
            diesel__sline_u64(&line, (uint64_t)hidden);
            diesel__sline_put(&line, " more loops, started past the ones "
                "the handler can see: not shown");
            emit(fd, &line);
        }
    }
    diesel__sline_put(&line, "STUCK ");
    diesel__sline_u64(&line, (uint64_t)ms);
    emit(fd, &line);
    close(fd);
    diesel__console_mark_seen(pid, nonce);
    diesel__sline_put(&line, n + hidden <= 1 ? "the loop is stuck: reported "
        "to console pid " : "every loop is stuck: reported to console pid ");
    diesel__sline_u64(&line, (uint64_t)pid);
    diesel__log_signal_safe("diesel", DIESEL_LOG_WARNING, line.b);
    return 0;
}

/* ---- A report for a session on another loop (loops.c) --------------------
 *
 * A session whose command a loop did not run in time asks that loop's
 * thread, with pthread_kill and the console's signal, to write this
 * report to a socket of the session's: one request at a time, in a slot.
 * pending counts the signals sent and not yet seen, so that one that
 * arrives after the session gave up is taken here, never for the
 * program's own raise (whose default action would end the process). */
enum { REP_FREE, REP_FILLING, REP_READY, REP_WRITING, REP_DONE };
static int rep_state;
static int rep_fd = -1;
static struct diesel_loop *rep_loop;
static unsigned rep_pending;

int
diesel__stuck_report_ask(pthread_t th, struct diesel_loop *l, int fd,
    int signo)
{
    int free_slot = REP_FREE;

    if (!__atomic_compare_exchange_n(&rep_state, &free_slot, REP_FILLING, 0,
        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        errno = EBUSY;
        return -1;
    }
    __atomic_store_n(&rep_fd, fd, __ATOMIC_RELAXED);
    __atomic_store_n(&rep_loop, l, __ATOMIC_RELAXED);
    __atomic_store_n(&rep_state, REP_READY, __ATOMIC_RELEASE);
    __atomic_add_fetch(&rep_pending, 1, __ATOMIC_SEQ_CST);
    if (pthread_kill(th, signo) != 0) {
        __atomic_sub_fetch(&rep_pending, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&rep_state, REP_FREE, __ATOMIC_RELEASE);
        errno = ESRCH;
        return -1;
    }
    return 0;
}

void
diesel__stuck_report_done(void)
{
    for (;;) {
        int st = REP_READY;

        /* Not taken: taken back.  Being written: wait (it never blocks). */
        if (__atomic_compare_exchange_n(&rep_state, &st, REP_FREE, 0,
            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return;
        if (st == REP_DONE || st == REP_FREE) {
            __atomic_store_n(&rep_state, REP_FREE, __ATOMIC_RELEASE);
            return;
        }
        sched_yield();
    }
}

int
diesel__stuck_report_forwarded(void *uctx)
{
    unsigned p = __atomic_load_n(&rep_pending, __ATOMIC_SEQ_CST);
    struct diesel_loop *l = diesel__loop;
    int ready = REP_READY;

    do {
        if (p == 0)
            return 0;
    } while (!__atomic_compare_exchange_n(&rep_pending, &p, p - 1, 0,
        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    if (l != NULL && __atomic_load_n(&rep_state, __ATOMIC_ACQUIRE) ==
        REP_READY && __atomic_load_n(&rep_loop, __ATOMIC_RELAXED) == l &&
        __atomic_compare_exchange_n(&rep_state, &ready, REP_WRITING, 0,
        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        struct diesel__sline line = { "", 0 };
        int fd = __atomic_load_n(&rep_fd, __ATOMIC_RELAXED);
        int64_t ms = -1;

        if (!__atomic_load_n(&l->in_poll, __ATOMIC_ACQUIRE))
            ms = (diesel__now_ns() - __atomic_load_n(&l->now,
                __ATOMIC_RELAXED)) / 1000000;
        report_lines(fd, "  ", &line, ms < 0 ? -1 : ms, uctx);
        shutdown(fd, SHUT_WR);
        __atomic_store_n(&rep_state, REP_DONE, __ATOMIC_RELEASE);
    }
    return 1;
}

int
diesel__stuck_handle(int signo, int32_t pid, int32_t uid, int32_t nonce,
    void *uctx)
{
    struct diesel_loop *l;
    int64_t ns;
    int done = 0, free_slot = SLOT_FREE;

    if (pid <= 0)
        return 0;
    __atomic_add_fetch(&handlers, 1, __ATOMIC_SEQ_CST);
    l = __atomic_load_n(&stuck_loop, __ATOMIC_SEQ_CST);
    if (l == NULL || (ns = stuck_for(l)) < 0) {
        /* Idle, or busy for less than the threshold: the loop serves it. */
    } else if (diesel__loops_route(l, pid, uid, SI_QUEUE, nonce)) {
        /* Another loop turns: the session is served there. */
        done = 1;
    } else if (diesel__loop == l) {
        done = report(signo, pid, nonce, ns, uctx) == 0;
    } else if (__atomic_compare_exchange_n(&slot_state, &free_slot,
        SLOT_FILLING, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        /* Another OS thread: only the loop's can take the holder's
         * backtrace.  One request waits at a time; more are queued. */
        slot_pid = pid;
        slot_uid = uid;
        slot_nonce = nonce;
        __atomic_store_n(&slot_state, SLOT_READY, __ATOMIC_RELEASE);
        if (pthread_kill(loop_thread, signo) == 0)
            done = 1;
        else
            __atomic_store_n(&slot_state, SLOT_FREE, __ATOMIC_RELEASE);
    }
    __atomic_sub_fetch(&handlers, 1, __ATOMIC_SEQ_CST);
    return done;
}

int
diesel__stuck_forwarded(int signo, int32_t *pid, int32_t *uid,
    int32_t *nonce, void *uctx)
{
    struct diesel_loop *l;
    int64_t ns;
    int ready = SLOT_READY, r = 2;

    if (__atomic_load_n(&slot_state, __ATOMIC_ACQUIRE) != SLOT_READY)
        return 0;
    l = __atomic_load_n(&stuck_loop, __ATOMIC_SEQ_CST);
    if (l != NULL && diesel__loop != l)
        return 0;       /* not the loop's thread: the program's own */
    *pid = slot_pid;
    *uid = slot_uid;
    *nonce = slot_nonce;
    if (!__atomic_compare_exchange_n(&slot_state, &ready, SLOT_FREE, 0,
        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return 0;
    if (l != NULL && (ns = stuck_for(l)) >= 0 &&
        (diesel__loops_route(l, *pid, *uid, SI_QUEUE, *nonce) ||
        report(signo, *pid, *nonce, ns, uctx) == 0))
        r = 1;
    return r;
}
