/*
 * console_client.c: see console_client.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "console_client.h"
#include "internal.h"    /* the library's steps that tests take alone */

#define RESIGNAL_MS 1000    /* dcc_attach signals again this often */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What is left until deadline (ms, monotonic, not -1), 0 once past. */
static int64_t
left_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();

    return left > 0 ? left : 0;
}

/* Wait for events on fd until deadline (ms, monotonic; -1 forever). */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = { fd, events, 0 };
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        int n;

        if (deadline >= 0 && left < 0)
            left = 0;
        n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        /* EAGAIN: seen from poll(2) under valgrind, amid signals. */
        if (errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

int
dcc_dir_name(uid_t uid, char *buf, size_t size)
{
    return diesel__console_rendezvous(uid, NULL, buf, size);
}

int
dcc_dir_prepare(const char *dir, uid_t uid)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0) {
        if (geteuid() == 0 && uid != 0 && chown(dir, uid, (gid_t)-1) != 0)
            return -1;
    } else if (errno != EEXIST) {
        return -1;
    }
    if (lstat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    if (st.st_uid != uid || (st.st_mode & 077) != 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int
dcc_listen(struct dcc *c, pid_t target, uid_t uid, int check)
{
    struct sockaddr_un sa;
    int n;

    memset(c, 0, sizeof(*c));
    c->lfd = c->fd = -1;
    c->target = target;
    c->uid = uid;
    if (dcc_dir_name(uid, c->dir, sizeof(c->dir)) != 0)
        return -1;
    if (check && dcc_dir_prepare(c->dir, uid) != 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/console-%ld.sock",
        c->dir, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(c->path, sa.sun_path);
    unlink(c->path);    /* a stale one of ours */
    c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->lfd < 0)
        return -1;
    if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto fail;
    /* The target must be able to connect: write permission on the
     * socket for its user, and for no one else (the directory is 0700
     * anyway). */
    if (chmod(c->path, 0600) != 0)
        goto fail;
    if (geteuid() == 0 && uid != 0 && chown(c->path, uid, (gid_t)-1) != 0)
        goto fail;
    if (listen(c->lfd, 8) != 0)
        goto fail;
    return 0;
fail:
    n = errno;
    close(c->lfd);
    c->lfd = -1;
    unlink(c->path);
    errno = n;
    return -1;
}

/* The signal as the library sends it (sigqueue: no pidfd here). */
int
dcc_signal_again(struct dcc *c, int signo)
{
    int32_t v = c->nonce;

    return diesel__platform_signal_send(c->target, -1,
        signo != 0 ? signo : SIGTRAP, &v);
}

int
dcc_signal(struct dcc *c, int signo)
{
    c->nonce = diesel__platform_random31();
    return dcc_signal_again(c, signo);
}

static void
stop_listening(struct dcc *c)
{
    if (c->lfd >= 0) {
        close(c->lfd);
        c->lfd = -1;
        unlink(c->path);
    }
}

/* "DIESEL-CONSOLE 1 pid=P program=NAME nonce=N", read by the library. */
static int
greeting_ok(const struct dcc *c)
{
    long version, pid;
    long long nonce;

    return diesel__console_greeting_parse(c->greeting, &version, &pid,
        &nonce) == 0 && version == 1 && pid == (long)c->target &&
        nonce == (long long)c->nonce;
}

/*
 * Accept the target, waiting for a connection until wait_end and for its
 * greeting until deadline (ms, monotonic; -1 forever); the socket stays
 * open on a timeout.
 */
static int
accept_until(struct dcc *c, int64_t wait_end, int64_t deadline)
{
    while (c->fd < 0) {
        pid_t pid;
        uid_t uid;
        int fd;

        if (wait_fd(c->lfd, POLLIN, wait_end) != 0)
            return -1;
        fd = accept(c->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return -1;
        }
        /* Anyone but the target is closed without a byte written. */
        if (diesel__platform_peer_cred(fd, &pid, &uid) != 0 ||
            pid != c->target || uid != c->uid) {
            close(fd);
            c->foreign++;
            continue;
        }
        c->fd = fd;
        if (dcc_read_line(c, c->greeting, sizeof(c->greeting),
            deadline < 0 ? -1 : (int)left_ms(deadline)) != 0 ||
            !greeting_ok(c)) {
            close(c->fd);
            c->fd = -1;
            c->len = 0;
            c->foreign++;
            continue;
        }
    }
    return 0;
}

int
dcc_accept(struct dcc *c, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int rc = accept_until(c, deadline, deadline);
    int err = errno;

    stop_listening(c);
    errno = err;
    return rc;
}

int
dcc_attach(struct dcc *c, pid_t target, uid_t uid, int signo,
    int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int err;

    if (dcc_listen(c, target, uid, 1) != 0)
        return -1;
    if (dcc_signal(c, signo) != 0)
        goto fail;
    /*
     * Signal again, with the same nonce, every second until the target
     * connects, as dconsole does: a signal can be held back (valgrind
     * has been seen to keep one from the app until the next arrived, for
     * over 20 s) and the app attaches once per nonce.
     */
    for (;;) {
        int64_t slice = now_ms() + RESIGNAL_MS;

        if (deadline >= 0 && slice > deadline)
            slice = deadline;
        if (accept_until(c, slice, deadline) == 0)
            break;
        if (errno != ETIMEDOUT || (deadline >= 0 && now_ms() >= deadline))
            goto fail;
        if (dcc_signal_again(c, signo) != 0)
            goto fail;
    }
    stop_listening(c);
    return 0;
fail:
    err = errno;
    dcc_close(c);
    errno = err;
    return -1;
}

int
dcc_send(struct dcc *c, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Read more into c->buf; 0, or -1 (EOF: errno ECONNRESET). */
static int
fill(struct dcc *c, int64_t deadline)
{
    ssize_t n;

    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        char *b = realloc(c->buf, cap);
        if (b == NULL)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    if (wait_fd(c->fd, POLLIN, deadline) != 0)
        return -1;
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n == 0) {
        errno = ECONNRESET;
        return -1;
    }
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    c->len += (size_t)n;
    return 0;
}

int
dcc_read_line(struct dcc *c, char *out, size_t size, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

        if (nl != NULL) {
            size_t n = (size_t)(nl - c->buf), k = n < size - 1 ? n : size - 1;

            memcpy(out, c->buf, k);
            out[k] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return 0;
        }
        if (fill(c, deadline) != 0)
            return -1;
    }
}

int
dcc_reply(struct dcc *c, char *out, size_t size, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    size_t used = 0;

    if (size > 0)
        out[0] = '\0';
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        const char *text;
        size_t n, tn;
        int status = -1;

        if (nl == NULL) {
            if (fill(c, deadline) != 0)
                return -1;
            continue;
        }
        n = (size_t)(nl - c->buf) + 1;
        switch (diesel_console_client_parse(c->buf, n - 1, &text, &tn)) {
        case DIESEL_CONSOLE_LINE_OUTPUT:
            status = -1;
            break;
        case DIESEL_CONSOLE_LINE_OK:
            status = 0;
            break;
        case DIESEL_CONSOLE_LINE_ERR:
            status = 1;
            break;
        default:
            errno = EPROTO;
            return -1;
        }
        if (size > 0 && used < size - 1) {
            size_t k = n < size - 1 - used ? n : size - 1 - used;
            memcpy(out + used, c->buf, k);
            used += k;
            out[used] = '\0';
        }
        memmove(c->buf, c->buf + n, c->len - n);
        c->len -= n;
        if (status >= 0)
            return status;
    }
}

int
dcc_command(struct dcc *c, const char *line, char *out, size_t size,
    int timeout_ms)
{
    if (dcc_send(c, line, strlen(line)) != 0 || dcc_send(c, "\n", 1) != 0)
        return -1;
    return dcc_reply(c, out, size, timeout_ms);
}

void
dcc_close(struct dcc *c)
{
    stop_listening(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}
