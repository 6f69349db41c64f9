/*
 * conn.c: buffered stream connections.
 *
 * Every call tries its system call first and parks the green thread
 * (diesel_fd_wait) only when the kernel has nothing to give or no room to
 * take.  One more saving: a read that returns fewer bytes than there was
 * room for has almost certainly emptied the socket, so the next receive
 * parks straight away instead of making a read(2) that would only fail
 * with EAGAIN.  That is safe because diesel_fd_wait is level-triggered: if
 * data did arrive in between, the wait returns at the loop's next poll,
 * which costs no system call of its own since the loop polls anyway.  An
 * echo round trip is then read, send, and the loop's share of one poll.
 *
 * Sends are not buffered: diesel_conn_send is one send(2) for a message
 * that fits the socket buffer.  Writes never raise SIGPIPE: MSG_NOSIGNAL
 * where send(2) has it, SO_NOSIGPIPE on the socket where that exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "park.h"

#define CONN_BUF_INIT ((size_t)4096)        /* first allocation */
#define CONN_BUF_KEEP ((size_t)64 * 1024)   /* freed when empty above this */
#define CONN_HIGH_WATER ((size_t)64 * 1024) /* default output mark */
#define NOBLOCK 0                           /* deadline of a 0 timeout */
#define EMPTY ((char *)1)                   /* fill(): into an empty buffer */
/* The helpers between a receive and its park are folded into the call:
 * each frame of its own would be one more cache line of the green
 * thread's stack written and read back on every round trip. */
#define HOT static inline __attribute__((always_inline))

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* ---- Creating and closing ------------------------------------------------ */

static void
no_sigpipe(int fd)
{
#ifdef SO_NOSIGPIPE
    int one = 1;

    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#else
    (void)fd;
#endif
}

struct diesel_conn *
diesel__conn_wrap(int fd, const char *peer)
{
    size_t size = (sizeof(struct diesel_conn) + 63) / 64 * 64;
    struct diesel_conn *c = aligned_alloc(64, size);

    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->whigh = CONN_HIGH_WATER;
    c->wtimeout = -1;
    if (peer != NULL && (c->peer = strdup(peer)) == NULL) {
        free(c);
        return NULL;
    }
    no_sigpipe(fd);
    return c;
}

struct diesel_conn *
diesel_conn_create(int fd)
{
    int type, fl, fdfl;
    socklen_t len = sizeof(type);

    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return NULL;            /* EBADF, ENOTSOCK */
    if (type != SOCK_STREAM) {
        errno = EINVAL;
        return NULL;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || (fdfl = fcntl(fd, F_GETFD)) < 0)
        return NULL;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return NULL;
    if (!(fdfl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) != 0)
        return NULL;
    return diesel__conn_wrap(fd, NULL);
}

int
diesel_conn_fd(const struct diesel_conn *c)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    return c->fd;
}

static void
conn_free(struct diesel_conn *c)
{
    free(c->wbuf);
    free(c->buf);
    free(c->peer);
    free(c);
}

int
diesel_conn_close(struct diesel_conn *c)
{
    int r;

    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* What diesel_conn_write buffered goes out if the socket takes it
     * now; close never waits. */
    if (c->wlen > 0 && !c->writing)
        (void)!send(c->fd, c->wbuf, c->wlen, SEND_FLAGS);
    /* diesel_fd_close wakes a green thread parked in a call on c with
     * EBADF; c must outlive that call, which frees it on its way out. */
    r = diesel_fd_close(c->fd);
    c->fd = -1;
    if (c->reading || c->writing)
        c->closed = 1;
    else
        conn_free(c);
    return r;
}

int
diesel_conn_shutdown(struct diesel_conn *c, int how)
{
    if (c == NULL || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)) {
        errno = EINVAL;
        return -1;
    }
    return shutdown(c->fd, how);
}

int
diesel_conn_peer(const struct diesel_conn *c, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct diesel_conn *mc = (struct diesel_conn *)c;
    char tmp[DIESEL__ADDR_MAX];

    if (c == NULL || buf == NULL) {
        errno = EINVAL;
        return -1;
    }
    /* The peer is cached: it stays printable after a reset, for logs. */
    if (c->peer == NULL) {
        if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) != 0 ||
            diesel__addr_format(&ss, sl, c->fd, tmp, sizeof(tmp)) != 0)
            return -1;
        if ((mc->peer = strdup(tmp)) == NULL)
            return -1;
    }
    if (strlen(c->peer) >= len) {
        errno = ENOSPC;
        return -1;
    }
    strcpy(buf, c->peer);
    return 0;
}

/* ---- Entering and leaving a call ----------------------------------------- */

/* Check what every blocking call checks; the deadline to pass on. */
HOT int
enter(struct diesel_conn *c, const char *func, int64_t timeout_ms,
    int64_t *deadline)
{
    struct diesel__task *t = diesel__running(func);

    if (t == NULL)
        return -1;
    if (c == NULL || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    /* No timeout, the usual case, needs no call. */
    *deadline = timeout_ms < 0 ? -1 : diesel__conn_deadline(timeout_ms);
    return 0;
}

HOT int
enter_read(struct diesel_conn *c, const char *func, int64_t timeout_ms,
    int64_t *deadline)
{
    if (enter(c, func, timeout_ms, deadline) != 0)
        return -1;
    if (c->reading) {
        errno = EBUSY;      /* another green thread is receiving */
        return -1;
    }
    c->reading = 1;
    return 0;
}

/* -1 with errno err. */
static __attribute__((noinline, cold)) int
fail(int err)
{
    errno = err;
    return -1;
}

/* The receive buffer is empty: the next read starts at its front, and a
 * big one is given back.  Apart, so that diesel_conn_consume saves no
 * register for its call. */
static __attribute__((noinline)) void
emptied(struct diesel_conn *c)
{
    c->off = 0;
    if (c->cap > CONN_BUF_KEEP) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

/* End a receive call with result r (errno kept: only giving back a big
 * buffer calls anything that might change it). */
HOT ssize_t
leave_read(struct diesel_conn *c, ssize_t r)
{
    c->reading = 0;
    if (__builtin_expect(c->closed, 0)) {
        if (!c->writing)
            conn_free(c);
        errno = EBADF;
        return -1;
    }
    if (c->len == 0) {
        if (__builtin_expect(c->cap > CONN_BUF_KEEP, 0)) {
            int err = errno;

            emptied(c);
            errno = err;
        } else {
            c->off = 0;
        }
    }
    return r;
}

/* leave_read for a call that leaves bytes in the buffer. */
HOT ssize_t
leave_read_some(struct diesel_conn *c, ssize_t r)
{
    c->reading = 0;
    if (__builtin_expect(c->closed, 0)) {
        if (!c->writing)
            conn_free(c);
        errno = EBADF;
        return -1;
    }
    return r;
}

/* Park until fd is ready for events or the deadline passes.  Straight to
 * the park: enter() has checked the green thread, and the deadline is
 * the loop's kind already. */
HOT int
wait_fd(struct diesel_conn *c, int events, int64_t deadline)
{
    if (deadline == NOBLOCK ||
        (deadline > 0 && deadline <= diesel__now_ns())) {
        errno = ETIMEDOUT;
        return -1;
    }
    return diesel__fd_park_core(diesel__current, c->fd, events, deadline) <
        0 ? -1 : 0;
}

static int flush_out(struct diesel_conn *c, int64_t deadline);

/*
 * Park until there is something to read.  Output that diesel_conn_write
 * buffered goes out first: the peer may be waiting for it before it says
 * anything (a pipelined request's replies, say), and this is the moment
 * when the green thread has nothing better to do.
 */
HOT int
wait_readable(struct diesel_conn *c, int64_t deadline)
{
    if (deadline != NOBLOCK && c->wlen > 0 && !c->writing &&
        flush_out(c, deadline) != 0)
        return -1;
    return wait_fd(c, DIESEL_READ, deadline);
}

/* ---- Receiving ----------------------------------------------------------- */

/*
 * One read(2) of up to room bytes into dst, parking as needed; dst NULL
 * for the room after the buffered bytes, which the caller has reserved,
 * EMPTY for the whole buffer, which the caller knows is empty and at
 * least CONN_BUF_INIT long.
 * >0 bytes, 0 at end of stream, -1 on error (a connection error is kept
 * in rerr so that later calls report it too, rather than the end of
 * stream that the kernel reports after a reset).
 *
 * The buffer's room is worked out after the park, not before: kept
 * across the switch, it would be spilled to the green thread's stack and
 * read back from there, one more cache line on every round trip.
 */
HOT ssize_t
fill(struct diesel_conn *c, char *dst, size_t room, int64_t deadline)
{
    if (__builtin_expect(c->eof || c->failed, 0)) {
        if (c->failed) {
            errno = c->rerr;
            return -1;
        }
        return 0;
    }
    if (c->drained && deadline != NOBLOCK &&
        wait_readable(c, deadline) != 0)
        return -1;
    for (;;) {
        ssize_t n;

        if (dst == EMPTY) {
            n = read(c->fd, c->buf, room = c->cap);
        } else if (dst == NULL) {
            n = read(c->fd, c->buf + c->off + c->len,
                room = c->cap - c->off - c->len);
        } else {
            n = read(c->fd, dst, room);
        }
        DIESEL__HOT_ASSERT(room > 0);

        if (n > 0) {
            c->drained = (size_t)n < room;
            return n;
        }
        if (n == 0) {
            c->eof = 1;
            return 0;
        }
        switch (errno) {
        case EINTR:
            continue;
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            c->drained = 1;
            if (wait_readable(c, deadline) != 0)
                return -1;
            continue;
        case ENOMEM:
        case ENOBUFS:
        case EBADF:
            return -1;
        default:
            c->rerr = errno;
            c->failed = 1;
            return -1;
        }
    }
}

/*
 * Make room after the unread bytes for at least one more, so that want
 * unread bytes in all fit from the front.  Compacts if that is enough,
 * else grows by doubling (to want at least).
 */
static int
reserve(struct diesel_conn *c, size_t want)
{
    size_t cap;
    char *nb;

    if (want <= c->len)
        want = c->len + 1;
    if (c->off + want <= c->cap)
        return 0;
    if (want <= c->cap) {
        memmove(c->buf, c->buf + c->off, c->len);
        c->off = 0;
        return 0;
    }
    cap = c->cap ? c->cap : CONN_BUF_INIT;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    nb = malloc(cap);
    if (nb == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (c->len > 0)
        memcpy(nb, c->buf + c->off, c->len);
    free(c->buf);
    c->buf = nb;
    c->cap = cap;
    c->off = 0;
    return 0;
}

/* Read more into the buffer: >0, 0 at end of stream, -1. */
HOT ssize_t
fill_buffer(struct diesel_conn *c, size_t want, int64_t deadline)
{
    ssize_t n;

    if (c->off + (want > c->len ? want : c->len + 1) > c->cap &&
        reserve(c, want) != 0)
        return -1;
    n = fill(c, NULL, 0, deadline);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* Hand out n buffered bytes. */
static void
take(struct diesel_conn *c, void *buf, size_t n)
{
    memcpy(buf, c->buf + c->off, n);
    c->off += n;
    c->len -= n;
}

ssize_t
diesel_conn_recv(struct diesel_conn *c, void *buf, size_t len,
    int64_t timeout_ms)
{
    int64_t deadline;
    ssize_t n;

    if (enter_read(c, "diesel_conn_recv", timeout_ms, &deadline) != 0)
        return -1;
    if (buf == NULL || len == 0) {
        errno = EINVAL;
        return leave_read(c, -1);
    }
    if (c->len == 0) {
        /* A caller's buffer at least as large as ours is read into
         * directly: one copy fewer. */
        if (len >= (c->cap ? c->cap : CONN_BUF_INIT))
            return leave_read(c, fill(c, buf, len, deadline));
        n = fill_buffer(c, CONN_BUF_INIT, deadline);
        if (n <= 0)
            return leave_read(c, n);
    }
    n = (ssize_t)(len < c->len ? len : c->len);
    take(c, buf, (size_t)n);
    return leave_read(c, n);
}

/*
 * The buffered bytes themselves, read into the buffer first if it is
 * empty: a relay or an echo sends them straight from there and consumes
 * what went out, with no copy in between.
 */
HOT ssize_t
peek(struct diesel_conn *c, const void **data, int64_t timeout_ms)
{
    int64_t deadline;
    ssize_t n;

    if (enter_read(c, "diesel_conn_peek", timeout_ms, &deadline) != 0)
        return -1;
    if (data == NULL) {
        errno = EINVAL;
        return leave_read(c, -1);
    }
    if (c->len == 0) {
        /* Out of a receive call an empty buffer starts at its front
         * (leave_read, emptied), and no other call changes it while
         * this one has it (c->reading): nothing to add after the park. */
        DIESEL__HOT_ASSERT(c->off == 0);
        if (__builtin_expect(c->cap < CONN_BUF_INIT, 0) &&
            reserve(c, CONN_BUF_INIT) != 0)
            return leave_read(c, -1);
        if ((n = fill(c, EMPTY, 0, deadline)) <= 0)
            return leave_read(c, n);
        c->len = (size_t)n;
        *data = c->buf;
        return leave_read_some(c, n);
    }
    *data = c->buf + c->off;
    return leave_read_some(c, (ssize_t)c->len);
}

/* diesel_conn_peek with a timeout: apart, so that its frame (a timer
 * to insert, a clock to read) is not the usual case's. */
static __attribute__((noinline)) ssize_t
peek_timed(struct diesel_conn *c, const void **data, int64_t timeout_ms)
{
    return peek(c, data, timeout_ms);
}

ssize_t
diesel_conn_peek(struct diesel_conn *c, const void **data,
    int64_t timeout_ms)
{
    /* No timeout, the usual case, is a copy of its own in which the
     * deadline's tests fold away. */
    if (timeout_ms == -1)
        return peek(c, data, -1);
    return peek_timed(c, data, timeout_ms);
}

int
diesel_conn_consume(struct diesel_conn *c, size_t n)
{
    /* Every call here is a tail call, so that the usual case is a leaf
     * with no frame. */
    if (c == NULL || n > c->len)
        return fail(EINVAL);
    if (c->reading)
        return fail(EBUSY);     /* a receive call is using the buffer */
    c->off += n;
    c->len -= n;
    if (c->len == 0) {
        c->off = 0;
        if (__builtin_expect(c->cap > CONN_BUF_KEEP, 0))
            return emptied(c), 0;
    }
    return 0;
}

ssize_t
diesel_conn_recv_exactly(struct diesel_conn *c, void *buf, size_t len,
    int64_t timeout_ms)
{
    int64_t deadline;
    ssize_t n;

    if (enter_read(c, "diesel_conn_recv_exactly", timeout_ms,
        &deadline) != 0)
        return -1;
    if (buf == NULL || len == 0 || len > SSIZE_MAX) {
        errno = EINVAL;
        return leave_read(c, -1);
    }
    while (c->len < len) {
        n = fill_buffer(c, len, deadline);
        if (n <= 0)
            return leave_read(c, n);
    }
    take(c, buf, len);
    return leave_read(c, (ssize_t)len);
}

ssize_t
diesel_conn_recv_until(struct diesel_conn *c, const char *delim, void *buf,
    size_t max, int64_t timeout_ms)
{
    int64_t deadline;
    size_t dlen, scanned = 0;

    if (enter_read(c, "diesel_conn_recv_until", timeout_ms, &deadline) != 0)
        return -1;
    if (delim == NULL || buf == NULL || (dlen = strlen(delim)) == 0 ||
        dlen > max || max > SSIZE_MAX) {
        errno = EINVAL;
        return leave_read(c, -1);
    }
    for (;;) {
        size_t lim = c->len < max ? c->len : max;
        /* Bytes already searched need no second look, except for the
         * start of a delimiter split across two reads. */
        size_t from = scanned >= dlen - 1 ? scanned - (dlen - 1) : 0;
        ssize_t n;

        if (lim >= dlen && lim > from) {
            char *p = memmem(c->buf + c->off + from, lim - from, delim,
                dlen);
            if (p != NULL) {
                n = (ssize_t)(p - (c->buf + c->off) + (ptrdiff_t)dlen);
                take(c, buf, (size_t)n);
                return leave_read(c, n);
            }
        }
        scanned = lim;
        if (c->len >= max) {
            errno = EMSGSIZE;
            return leave_read(c, -1);
        }
        /* Grow in steps of at least a page, and never past max. */
        n = fill_buffer(c, max - c->len < CONN_BUF_INIT ? max :
            c->len + CONN_BUF_INIT, deadline);
        if (n <= 0)
            return leave_read(c, n);
    }
}

ssize_t
diesel_conn_readline(struct diesel_conn *c, char *buf, size_t max,
    int64_t timeout_ms)
{
    ssize_t n;

    if (diesel__running("diesel_conn_readline") == NULL)
        return -1;
    if (buf == NULL || max < 2) {
        errno = EINVAL;
        return -1;
    }
    n = diesel_conn_recv_until(c, "\n", buf, max - 1, timeout_ms);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* ---- Sending ------------------------------------------------------------- */

/* All of len bytes from p, parking as needed; 0 or -1.  The caller holds
 * c->writing. */
HOT int
send_all(struct diesel_conn *c, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, SEND_FLAGS);

        if (n >= 0) {
            p += n;
            len -= (size_t)n;
            /* A short write means the socket buffer is full: wait for
             * room rather than try again for EAGAIN. */
            if (len > 0 && wait_fd(c, DIESEL_WRITE, deadline) != 0)
                return -1;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (wait_fd(c, DIESEL_WRITE, deadline) != 0)
            return -1;
    }
    return 0;
}

/* Send what diesel_conn_write buffered.  On failure the unsent bytes stay
 * (a timeout may be retried). */
static int
flush_out(struct diesel_conn *c, int64_t deadline)
{
    size_t done = 0;
    int r = 0;

    c->writing = 1;
    while (done < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + done, c->wlen - done, SEND_FLAGS);

        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
            wait_fd(c, DIESEL_WRITE, deadline) != 0) {
            r = -1;
            break;
        }
    }
    /* Nothing written, nothing to move: wbuf may be NULL (a connection
     * never written to, flushed at its end), which memmove must not get
     * even for 0 bytes. */
    if (done > 0)
        memmove(c->wbuf, c->wbuf + done, c->wlen - done);
    c->wlen -= done;
    c->writing = 0;
    return r;
}

/* End a send call with result r (errno kept). */
HOT int
leave_write(struct diesel_conn *c, int r)
{
    c->writing = 0;
    if (__builtin_expect(c->closed, 0)) {
        if (!c->reading)
            conn_free(c);
        errno = EBADF;
        return -1;
    }
    return r;
}

HOT int
enter_write(struct diesel_conn *c, const char *func, const void *buf,
    size_t len, int64_t timeout_ms, int64_t *deadline)
{
    if (enter(c, func, timeout_ms, deadline) != 0)
        return -1;
    if (buf == NULL && len > 0) {
        errno = EINVAL;
        return -1;
    }
    if (c->writing) {
        errno = EBUSY;      /* another green thread is sending */
        return -1;
    }
    return 0;
}

/* diesel_conn_send but for its common case (below). */
static __attribute__((noinline)) int
send_slow(struct diesel_conn *c, const void *buf, size_t len,
    int64_t timeout_ms)
{
    int64_t deadline;
    int r;

    if (enter_write(c, "diesel_conn_send", buf, len, timeout_ms,
        &deadline) != 0)
        return -1;
    /* Bytes written earlier go first. */
    if (c->wlen > 0 && flush_out(c, deadline) != 0)
        return leave_write(c, -1);
    c->writing = 1;
    r = send_all(c, buf, len, deadline);
    return leave_write(c, r);
}

/*
 * The common case is tried first, in a frame of its own that is small: a
 * green thread sends on a connection with nothing buffered before, and
 * the socket takes it all at once.  That is one send(2) and nothing else:
 * no park can happen during it, so the call need not mark the connection
 * busy nor look for a close when it ends.  Anything else, a short write
 * included, goes the whole way round with what is left.
 */
struct send_args {
    struct diesel_conn *c;
    const void *buf;
    size_t len;
    int64_t timeout_ms;
};

/* The rest of diesel_conn_send after a send(2) that took n bytes of
 * a->len, not all. */
static __attribute__((noinline)) int
send_rest(const struct send_args *a, ssize_t n)
{
    if (n > 0) {
        return send_slow(a->c, (const char *)a->buf + n,
            a->len - (size_t)n, a->timeout_ms);
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    return send_slow(a->c, a->buf, a->len, a->timeout_ms);
}

int
diesel_conn_send(struct diesel_conn *c, const void *buf, size_t len,
    int64_t timeout_ms)
{
    if (__builtin_expect(diesel__current != NULL && c != NULL &&
        buf != NULL && len - 1 < (size_t)SSIZE_MAX && timeout_ms >= -1 &&
        c->wlen == 0 && !c->writing, 1)) {
        /* The arguments that the rest may need are stored in the frame
         * and read back only if it is needed, rather than kept in
         * callee-saved registers across the call, each then saved,
         * moved and restored whether needed or not. */
        struct send_args a = { c, buf, len, timeout_ms };
        ssize_t n;

        __asm__ volatile("" : "+m"(a));
        n = send(c->fd, buf, len, SEND_FLAGS);
        if (__builtin_expect(n == (ssize_t)a.len, 1))
            return 0;
        return send_rest(&a, n);
    }
    return send_slow(c, buf, len, timeout_ms);
}

/*
 * The part of diesel_conn_write that may wait: the bytes do not fit below
 * both the buffer's size and the high-water mark.  Past the mark, what is
 * buffered goes out first, parking until the peer has taken all of it;
 * then bytes that would pass the mark on their own are sent at once, the
 * rest buffered.  So the buffer never holds more than the mark.
 */
static int
write_past(struct diesel_conn *c, const void *buf, size_t len)
{
    int64_t deadline = diesel__conn_deadline(c->wtimeout);
    size_t cap;
    char *w;

    if (c->wlen > c->whigh || len > c->whigh - c->wlen) {
        if (c->wlen > 0 && flush_out(c, deadline) != 0)
            return leave_write(c, -1);
        if (len > c->whigh) {
            c->writing = 1;
            return leave_write(c, send_all(c, buf, len, deadline));
        }
    }
    if (c->wlen + len > c->wcap) {
        /* Doubling, but never past the mark: it bounds the memory. */
        cap = c->wcap ? c->wcap : CONN_BUF_INIT;
        while (cap < c->wlen + len)
            cap = cap > c->whigh / 2 ? c->whigh : cap * 2;
        if ((w = realloc(c->wbuf, cap)) == NULL) {
            errno = ENOMEM;
            return leave_write(c, -1);
        }
        c->wbuf = w;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    c->wroom = c->wcap < c->whigh ? c->wcap : c->whigh;
    return leave_write(c, 0);
}

int
diesel_conn_write(struct diesel_conn *c, const void *buf, size_t len)
{
    int64_t deadline;

    if (enter_write(c, "diesel_conn_write", buf, len, -1, &deadline) != 0)
        return -1;
    if (len == 0)
        return 0;
    /* The only test on the common path: wroom is the smaller of the
     * buffer's size and the mark, and never below wlen. */
    if (len > c->wroom - c->wlen)
        return write_past(c, buf, len);
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    return 0;
}

int
diesel_conn_set_output(struct diesel_conn *c, size_t high_water,
    int64_t timeout_ms)
{
    if (c == NULL || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    c->whigh = high_water;
    c->wtimeout = timeout_ms;
    c->wroom = c->wcap < high_water ? c->wcap : high_water;
    if (c->wroom < c->wlen)
        c->wroom = c->wlen;     /* the next write flushes */
    return 0;
}

int
diesel_conn_flush(struct diesel_conn *c, int64_t timeout_ms)
{
    int64_t deadline;
    int r;

    if (enter_write(c, "diesel_conn_flush", NULL, 0, timeout_ms,
        &deadline) != 0)
        return -1;
    r = flush_out(c, deadline);
    /* A big buffer that has gone out is given back. */
    if (c->wlen == 0 && c->wcap > CONN_BUF_KEEP) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
        c->wroom = 0;
    }
    return leave_write(c, r);
}
