/*
 * check_net.c: buffered connections, servers and clients, over real
 * sockets, with real peer processes where a peer must behave badly.
 *
 * Assertions inside green threads go through EXPECT, which records the
 * first failure and stops the loop, and the test asserts once the loop has
 * returned: Check's own assertions would leave a green thread's stack in
 * CK_FORK=no mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "tests.h"
#include "proc.h"
#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- Helpers ------------------------------------------------------------- */

static char failure[512];

#define EXPECT(cond) do {                                                   \
        if (!(cond)) {                                                      \
            int e_ = errno;                                                 \
            if (failure[0] == '\0')                                         \
                snprintf(failure, sizeof(failure), "line %d: %s (errno %d: " \
                    "%s)", __LINE__, #cond, e_, strerror(e_));              \
            diesel_loop_stop(1);                                            \
            return 1;                                                       \
        }                                                                   \
    } while (0)

#define CHECK_RUN(fn, arg) do {                                             \
        failure[0] = '\0';                                                  \
        int st_ = t_run((fn), (arg));                                       \
        ck_assert_msg(failure[0] == '\0', "%s", failure);                   \
        ck_assert_int_eq(st_, 0);                                           \
    } while (0)

static void
setup(void)
{
    /* A write to a dead peer must not kill the test: it must not even
     * raise the signal. */
    signal(SIGPIPE, SIG_DFL);
    failure[0] = '\0';
}

/* CPU time (user + system) of this process, in ms. */
static int64_t
cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
        (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Descriptors open, up to the soft limit. */
static int
count_fds(void)
{
    struct rlimit rl;
    int n = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    for (int fd = 0; fd < (int)rl.rlim_cur && fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    }
    return n;
}

/* A connected pair of plain (blocking) TCP sockets over loopback. */
static void
tcp_pair(int sv[2])
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(l, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
    sv[1] = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(sv[1], (struct sockaddr *)&a, sizeof(a)), 0);
    sv[0] = accept(l, NULL, NULL);
    ck_assert_int_ge(sv[0], 0);
    close(l);
}

/* A blocking client socket connected to a diesel address. */
static int
plain_connect(const char *kind, int port, const char *path)
{
    int fd;

    if (strcmp(kind, "unix") == 0) {
        struct sockaddr_un u;
        memset(&u, 0, sizeof(u));
        u.sun_family = AF_UNIX;
        snprintf(u.sun_path, sizeof(u.sun_path), "%s", path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&u, sizeof(u)) != 0)
            return -1;
    } else if (strcmp(kind, "v6") == 0) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof(a));
        a.sin6_family = AF_INET6;
        a.sin6_addr = in6addr_loopback;
        a.sin6_port = htons((uint16_t)port);
        fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            return -1;
    } else {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            return -1;
    }
    return fd;
}

/* Read one line ending in '\n' with plain blocking reads, at most
 * timeout_ms in all. */
static ssize_t
plain_readline(int fd, char *buf, size_t max, int timeout_ms)
{
    size_t n = 0;
    int64_t end = t_now_ms() + timeout_ms;

    while (n + 1 < max) {
        struct pollfd p = { fd, POLLIN, 0 };
        int64_t left = end - t_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return -1;
        r = read(fd, buf + n, 1);
        if (r <= 0)
            return r;
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

/*
 * Run fn(arg) in a child process; *done gets a pipe that reaches EOF when
 * the child exits, for wait_child to park on.
 */
static pid_t
fork_child(int (*fn)(void *), void *arg, int *done)
{
    int p[2];
    pid_t pid;

    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(fn(arg));
    }
    close(p[1]);
    *done = p[0];
    return pid;
}

/* Park until the child exits; its exit status, or -1. */
static int
wait_child(pid_t pid, int done, int64_t timeout_ms)
{
    char c;
    int status;

    if (diesel_fd_wait(done, DIESEL_READ, timeout_ms) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        diesel_fd_close(done);
        return -1;
    }
    while (read(done, &c, 1) > 0)
        ;
    diesel_fd_close(done);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* Park until *counter reaches target; 0, or -1 after timeout_ms. */
static int
wait_count(const int *counter, int target, int64_t timeout_ms)
{
    int64_t end = t_now_ms() + timeout_ms;

    while (*counter < target) {
        if (t_now_ms() >= end || diesel_sleep(2) != 0)
            return -1;
    }
    return 0;
}

static char unix_dir[64];

static const char *
unix_path(const char *name)
{
    static char path[128];

    if (unix_dir[0] == '\0') {
        snprintf(unix_dir, sizeof(unix_dir), "/tmp/diesel-net-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(unix_dir));
    }
    snprintf(path, sizeof(path), "%s/%s", unix_dir, name);
    return path;
}

static void
unix_cleanup(void)
{
    if (unix_dir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", unix_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", unix_dir);
        unix_dir[0] = '\0';
    }
}

/* Echo lines back until the peer ends the stream. */
static int
echo_handler(struct diesel_conn *c, void *arg)
{
    char line[256];
    ssize_t n;

    (void)arg;
    while ((n = diesel_conn_readline(c, line, sizeof(line), 10000)) > 0) {
        if (diesel_conn_send(c, line, (size_t)n, 10000) != 0)
            return 1;
    }
    return n == 0 ? 0 : 1;
}

/* ---- Echo over TCP v4, v6 and a UNIX socket ------------------------------ */

struct echo {
    const char *kind;        /* "v4", "v6", "unix" */
    const char *listen;      /* address to listen on */
    char connect[160];       /* address to connect to */
    char path[128];          /* the UNIX socket */
    int port;
    int forked;              /* the client is a child process */
    int served;
};

static int
echo_child(void *arg)
{
    struct echo *e = arg;
    char buf[256], want[64];
    int fd = plain_connect(e->kind, e->port, e->path);

    if (fd < 0)
        return 10;
    for (int i = 0; i < 10; i++) {
        int n = snprintf(want, sizeof(want), "child line %d\n", i);
        if (write(fd, want, (size_t)n) != n)
            return 11;
        if (plain_readline(fd, buf, sizeof(buf), 5000) != n ||
            strcmp(buf, want) != 0)
            return 12;
    }
    close(fd);
    return 0;
}

static int
echo_client(void *arg)
{
    struct echo *e = arg;
    struct diesel_conn *c = diesel_conn_connect(e->connect, 5000);
    char buf[256], want[64];

    EXPECT(c != NULL);
    for (int i = 0; i < 10; i++) {
        int n = snprintf(want, sizeof(want), "green line %d\n", i);
        EXPECT(diesel_conn_send(c, want, (size_t)n, 5000) == 0);
        EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == n);
        EXPECT(strcmp(buf, want) == 0);
    }
    EXPECT(diesel_conn_shutdown(c, SHUT_WR) == 0);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 5000) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    e->served++;
    return 0;
}

static int
echo_main(void *arg)
{
    struct echo *e = arg;
    struct diesel_server *s = diesel_server_listen(e->listen, echo_handler,
        NULL, 0);
    int64_t id;
    int status;

    EXPECT(s != NULL);
    e->port = diesel_server_port(s);
    if (strcmp(e->kind, "unix") == 0) {
        EXPECT(e->port == 0);
        snprintf(e->connect, sizeof(e->connect), "%s", e->path);
    } else {
        EXPECT(e->port > 0);
        snprintf(e->connect, sizeof(e->connect), "%s:%d",
            strcmp(e->kind, "v6") == 0 ? "[::1]" : "127.0.0.1", e->port);
    }
    if (e->forked) {
        int done;
        pid_t pid = fork_child(echo_child, e, &done);
        EXPECT(pid > 0);
        status = wait_child(pid, done, 10000);
        EXPECT(status == 0);
        e->served++;
    } else {
        id = diesel_task_spawn("client", echo_client, e, 0);
        EXPECT(id > 0);
        EXPECT(diesel_task_join(id, &status, 10000) == 0);
        EXPECT(status == 0);
    }
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

static void
run_echo(const char *kind, int forked)
{
    struct echo e;

    memset(&e, 0, sizeof(e));
    e.kind = kind;
    e.forked = forked;
    if (strcmp(kind, "unix") == 0) {
        snprintf(e.path, sizeof(e.path), "%s", unix_path("echo.sock"));
        e.listen = e.path;
    } else {
        e.listen = strcmp(kind, "v6") == 0 ? "[::1]:0" : "127.0.0.1:0";
    }
    CHECK_RUN(echo_main, &e);
    ck_assert_int_eq(e.served, 1);
    if (strcmp(kind, "unix") == 0) {
        struct stat st;
        /* diesel_server_close unlinked it. */
        ck_assert_int_ne(lstat(e.path, &st), 0);
        unix_cleanup();
    }
}

START_TEST(net_echo_v4_with_green_client)
{
    run_echo("v4", 0);
}
END_TEST

START_TEST(net_echo_v6_with_green_client)
{
    run_echo("v6", 0);
}
END_TEST

START_TEST(net_echo_unix_with_green_client)
{
    run_echo("unix", 0);
}
END_TEST

START_TEST(net_echo_v4_with_child_process_client)
{
    run_echo("v4", 1);
}
END_TEST

START_TEST(net_echo_v6_with_child_process_client)
{
    run_echo("v6", 1);
}
END_TEST

START_TEST(net_echo_unix_with_child_process_client)
{
    run_echo("unix", 1);
}
END_TEST

/* ---- Framing across arbitrary chunking ----------------------------------- */

static const char trickle_text[] =
    "HELLO 5\r\nworld" "GET /a\r\n\r\n" "tail";

/* Write trickle_text one byte at a time, with small pauses. */
static int
trickle_child(void *arg)
{
    int fd = *(int *)arg;

    for (size_t i = 0; i < sizeof(trickle_text) - 1; i++) {
        struct timespec ts = { 0, 2000000 };
        if (write(fd, trickle_text + i, 1) != 1)
            return 1;
        nanosleep(&ts, NULL);
    }
    close(fd);
    return 0;
}

static int
trickle_main(void *arg)
{
    int *sv = arg, done;
    struct diesel_conn *c;
    char buf[64];
    pid_t pid = fork_child(trickle_child, &sv[1], &done);

    EXPECT(pid > 0);
    close(sv[1]);
    c = diesel_conn_create(sv[0]);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_recv_until(c, "\r\n", buf, sizeof(buf), 5000) == 9);
    EXPECT(memcmp(buf, "HELLO 5\r\n", 9) == 0);
    EXPECT(diesel_conn_recv_exactly(c, buf, 5, 5000) == 5);
    EXPECT(memcmp(buf, "world", 5) == 0);
    /* A four-byte delimiter arriving one byte per read. */
    EXPECT(diesel_conn_recv_until(c, "\r\n\r\n", buf, sizeof(buf), 5000) ==
        10);
    EXPECT(memcmp(buf, "GET /a\r\n\r\n", 10) == 0);
    /* The stream ends inside a message: 0, and the bytes stay. */
    EXPECT(diesel_conn_recv_exactly(c, buf, 10, 5000) == 0);
    EXPECT(diesel_conn_recv_until(c, "\n", buf, sizeof(buf), 5000) == 0);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 5000) == 4);
    EXPECT(memcmp(buf, "tail", 4) == 0);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 5000) == 0);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 5000) == 0);
    EXPECT(wait_child(pid, done, 5000) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_recv_exactly_and_until_survive_one_byte_chunks)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(trickle_main, sv);
}
END_TEST

static int
overlong_main(void *arg)
{
    int *sv = arg;
    struct diesel_conn *c = diesel_conn_create(sv[0]);
    char line[101], buf[256];

    EXPECT(c != NULL);
    memset(line, 'x', 100);
    line[100] = '\n';
    EXPECT(write(sv[1], line, sizeof(line)) == (ssize_t)sizeof(line));
    EXPECT(write(sv[1], "next\n", 5) == 5);
    /* Too long for the buffer: EMSGSIZE, and nothing is lost. */
    EXPECT(diesel_conn_readline(c, buf, 16, 1000) == -1);
    EXPECT(errno == EMSGSIZE);
    EXPECT(buf[0] == '\0');
    EXPECT(diesel_conn_recv_until(c, "\n", buf, 50, 1000) == -1);
    EXPECT(errno == EMSGSIZE);
    /* max bytes holding the delimiter at its very end is enough. */
    EXPECT(diesel_conn_recv_until(c, "\n", buf, 101, 1000) == 101);
    EXPECT(memcmp(buf, line, 101) == 0);
    EXPECT(diesel_conn_readline(c, buf, 5, 1000) == -1);
    EXPECT(errno == EMSGSIZE);
    EXPECT(diesel_conn_readline(c, buf, 6, 1000) == 5);
    EXPECT(strcmp(buf, "next\n") == 0);

    /* A long line that is never ended: the buffer stops at max. */
    EXPECT(write(sv[1], "ab", 2) == 2);
    EXPECT(diesel_conn_recv(c, buf, 1, 1000) == 1);
    memset(buf, 'y', sizeof(buf));
    for (int i = 0; i < 40; i++)
        EXPECT(write(sv[1], buf, sizeof(buf)) == (ssize_t)sizeof(buf));
    EXPECT(diesel_conn_recv_until(c, "\n", buf, 200, 1000) == -1);
    EXPECT(errno == EMSGSIZE);
    EXPECT(c->cap <= 4096);
    EXPECT(diesel_conn_recv_until(c, "\n", buf, 200, 0) == -1);
    EXPECT(errno == EMSGSIZE);
    EXPECT(diesel_conn_recv(c, buf, 1, 1000) == 1);
    EXPECT(buf[0] == 'b');
    EXPECT(diesel_conn_close(c) == 0);
    close(sv[1]);
    return 0;
}

START_TEST(net_overlong_line_is_emsgsize_and_stays_buffered)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(overlong_main, sv);
}
END_TEST

static int
bulk_writer_child(void *arg)
{
    int fd = *(int *)arg;
    enum { BIG = 300 * 1024 };
    char *out = malloc(BIG);

    for (int i = 0; i < BIG; i++)
        out[i] = (char)(i * 13);
    /* Chunks of odd sizes. */
    for (size_t off = 0, k = 1; off < BIG; k = k * 3 % 1009 + 1) {
        size_t n = k < BIG - off ? k : BIG - off;
        if (write(fd, out + off, n) != (ssize_t)n)
            return 1;
        off += n;
    }
    free(out);
    close(fd);
    return 0;
}

static int
bulk_main(void *arg)
{
    int *sv = arg, done;
    enum { BIG = 300 * 1024 };
    struct diesel_conn *c;
    char *in = malloc(BIG);
    pid_t pid = fork_child(bulk_writer_child, &sv[1], &done);

    EXPECT(pid > 0 && in != NULL);
    close(sv[1]);
    c = diesel_conn_create(sv[0]);
    EXPECT(c != NULL);
    /* Messages of growing sizes, then one larger than any buffer. */
    size_t off = 0;
    for (size_t n = 1; off + n <= BIG / 2; n = n * 2 + 1) {
        EXPECT(diesel_conn_recv_exactly(c, in + off, n, 5000) ==
            (ssize_t)n);
        off += n;
    }
    EXPECT(diesel_conn_recv_exactly(c, in + off, BIG - off, 5000) ==
        (ssize_t)(BIG - off));
    for (int i = 0; i < BIG; i++)
        EXPECT(in[i] == (char)(i * 13));
    EXPECT(diesel_conn_recv(c, in, 1, 5000) == 0);
    free(in);
    EXPECT(wait_child(pid, done, 5000) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_recv_exactly_reassembles_large_messages)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(bulk_main, sv);
}
END_TEST

/* ---- End of stream and errors -------------------------------------------- */

static int
eof_reset_main(void *arg)
{
    int *sv = arg;      /* two TCP pairs: [0],[1] closed; [2],[3] reset */
    struct diesel_conn *a = diesel_conn_create(sv[0]);
    struct diesel_conn *b = diesel_conn_create(sv[2]);
    struct linger lg = { 1, 0 };
    char buf[16];

    EXPECT(a != NULL && b != NULL);
    EXPECT(write(sv[1], "bye", 3) == 3);
    close(sv[1]);
    EXPECT(diesel_conn_recv(a, buf, sizeof(buf), 1000) == 3);
    EXPECT(diesel_conn_recv(a, buf, sizeof(buf), 1000) == 0);
    EXPECT(diesel_conn_recv(a, buf, sizeof(buf), 0) == 0);
    EXPECT(diesel_conn_readline(a, buf, sizeof(buf), 1000) == 0);

    EXPECT(setsockopt(sv[3], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
    close(sv[3]);
    errno = 0;
    EXPECT(diesel_conn_recv(b, buf, sizeof(buf), 1000) == -1);
    EXPECT(errno == ECONNRESET);
    /* Still an error, not the end of stream the kernel reports next. */
    EXPECT(diesel_conn_recv(b, buf, sizeof(buf), 1000) == -1);
    EXPECT(errno == ECONNRESET);
    EXPECT(diesel_conn_close(a) == 0);
    EXPECT(diesel_conn_close(b) == 0);
    return 0;
}

START_TEST(net_eof_is_zero_and_reset_is_an_error)
{
    int sv[4];

    tcp_pair(sv);
    tcp_pair(sv + 2);
    CHECK_RUN(eof_reset_main, sv);
}
END_TEST

/* The peer reads a little, then resets; the app keeps writing. */
static int
reset_child(void *arg)
{
    int fd = *(int *)arg;
    struct linger lg = { 1, 0 };
    char buf[4096];
    size_t got = 0;

    while (got < 64 * 1024) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            return 1;
        got += (size_t)n;
    }
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    return 0;
}

struct busy {
    int sv[2];
    int err;
    uint64_t iterations;
    int64_t cpu;
};

static int
reset_main(void *arg)
{
    struct busy *b = arg;
    char chunk[8192];
    int done, r = 0;
    pid_t pid = fork_child(reset_child, &b->sv[1], &done);
    struct diesel_conn *c;
    uint64_t it;
    int64_t cpu;

    EXPECT(pid > 0);
    close(b->sv[1]);
    c = diesel_conn_create(b->sv[0]);
    EXPECT(c != NULL);
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 100000 && r == 0; i++)
        r = diesel_conn_send(c, chunk, sizeof(chunk), 5000);
    EXPECT(r == -1);
    b->err = errno;
    EXPECT(wait_child(pid, done, 5000) == 0);
    /* The dead socket stays in the poll set until it is closed: the loop
     * must not spin on it meanwhile. */
    it = diesel__loop->iterations;
    cpu = cpu_ms();
    EXPECT(diesel_sleep(300) == 0);
    b->iterations = diesel__loop->iterations - it;
    b->cpu = cpu_ms() - cpu;
    EXPECT(diesel_conn_send(c, chunk, 1, 1000) == -1);
    EXPECT(errno == EPIPE || errno == ECONNRESET);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_peer_reset_while_writing_is_econnreset_or_epipe_not_sigpipe)
{
    struct busy b;

    memset(&b, 0, sizeof(b));
    tcp_pair(b.sv);
    CHECK_RUN(reset_main, &b);
    ck_assert_msg(b.err == ECONNRESET || b.err == EPIPE, "errno %d", b.err);
    ck_assert_uint_lt(b.iterations, 10);
    ck_assert_int_lt(b.cpu, 100);
}
END_TEST

static int
half_close_child(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];

    if (write(fd, "last words\n", 11) != 11 || shutdown(fd, SHUT_WR) != 0)
        return 1;
    /* The app can still talk to us. */
    if (plain_readline(fd, buf, sizeof(buf), 5000) != 6 ||
        strcmp(buf, "heard\n") != 0)
        return 2;
    close(fd);
    return 0;
}

static int
half_close_main(void *arg)
{
    struct busy *b = arg;
    char buf[64];
    int done;
    pid_t pid = fork_child(half_close_child, &b->sv[1], &done);
    struct diesel_conn *c;
    uint64_t it;
    int64_t cpu;

    EXPECT(pid > 0);
    close(b->sv[1]);
    c = diesel_conn_create(b->sv[0]);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == 11);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == 0);
    /* End of stream stays readable in the poll set: no spinning. */
    it = diesel__loop->iterations;
    cpu = cpu_ms();
    EXPECT(diesel_sleep(300) == 0);
    b->iterations = diesel__loop->iterations - it;
    b->cpu = cpu_ms() - cpu;
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 5000) == 0);
    EXPECT(diesel_conn_send(c, "heard\n", 6, 5000) == 0);
    EXPECT(wait_child(pid, done, 5000) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_half_close_gives_eof_and_the_conn_can_still_send)
{
    struct busy b;

    memset(&b, 0, sizeof(b));
    tcp_pair(b.sv);
    CHECK_RUN(half_close_main, &b);
    ck_assert_uint_lt(b.iterations, 10);
    ck_assert_int_lt(b.cpu, 100);
}
END_TEST

/* ---- Timeouts ------------------------------------------------------------ */

static int
recv_timeout_main(void *arg)
{
    int *sv = arg;
    struct diesel_conn *c = diesel_conn_create(sv[0]);
    char buf[16];
    int64_t t0;

    EXPECT(c != NULL);
    t0 = t_now_ms();
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 100) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 95 && t_now_ms() - t0 < 1000);
    /* The whole call has the one timeout, however many reads it takes. */
    EXPECT(write(sv[1], "ab", 2) == 2);
    t0 = t_now_ms();
    EXPECT(diesel_conn_recv_exactly(c, buf, 4, 100) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 95 && t_now_ms() - t0 < 1000);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 0) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(diesel_conn_recv_exactly(c, buf, 2, 0) == 2);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 0) == -1);
    EXPECT(errno == ETIMEDOUT);
    /* A timeout too large to be a deadline in ns is no timeout. */
    EXPECT(write(sv[1], "z", 1) == 1);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), INT64_MAX) == 1);
    EXPECT(diesel_conn_close(c) == 0);
    close(sv[1]);
    return 0;
}

START_TEST(net_recv_times_out)
{
    int sv[2];

    tcp_pair(sv);
    CHECK_RUN(recv_timeout_main, sv);
}
END_TEST

static int
send_timeout_main(void *arg)
{
    int *sv = arg, small = 4096;
    struct diesel_conn *c;
    size_t big = 32 * 1024 * 1024;
    char *data = calloc(1, big);
    int64_t t0;

    EXPECT(data != NULL);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    c = diesel_conn_create(sv[0]);
    EXPECT(c != NULL);
    t0 = t_now_ms();
    EXPECT(diesel_conn_send(c, data, big, 200) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 195 && t_now_ms() - t0 < 2000);
    EXPECT(diesel_conn_send(c, data, big, 0) == -1);
    EXPECT(errno == ETIMEDOUT);
    free(data);
    EXPECT(diesel_conn_close(c) == 0);
    close(sv[1]);
    return 0;
}

START_TEST(net_send_times_out_when_the_peer_never_reads)
{
    int sv[2];

    tcp_pair(sv);
    CHECK_RUN(send_timeout_main, sv);
}
END_TEST

/*
 * A listener whose accept queue is full and never drained: Linux drops
 * the SYNs of further connections (the client retransmits them), so a
 * connect to it never completes.
 */
struct backlog {
    int lfd;
    int port;
    int fillers[16];
    int nfill;
};

static int
connect_timeout_main(void *arg)
{
    struct backlog *b = arg;
    struct diesel_conn *c;
    char addr[64];
    int64_t t0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", b->port);
    t0 = t_now_ms();
    c = diesel_conn_connect(addr, 300);
    EXPECT(c == NULL);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 295 && t_now_ms() - t0 < 3000);
    EXPECT(diesel_conn_connect(addr, 0) == NULL);
    EXPECT(errno == ETIMEDOUT);
    return 0;
}

static int
unix_backlog_main(void *arg)
{
    const char *path = arg;
    int64_t t0 = t_now_ms();

    /* The connect does not even start: it is retried until the end. */
    EXPECT(diesel_conn_connect(path, 200) == NULL);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 195 && t_now_ms() - t0 < 2000);
    return 0;
}

START_TEST(net_unix_connect_times_out_on_a_full_backlog)
{
    struct sockaddr_un u;
    int l = socket(AF_UNIX, SOCK_STREAM, 0), fds[16], n = 0;
    char path[sizeof(u.sun_path)];

    memset(&u, 0, sizeof(u));
    u.sun_family = AF_UNIX;
    snprintf(path, sizeof(path), "%.100s", unix_path("full.sock"));
    memcpy(u.sun_path, path, sizeof(path));
    ck_assert_int_eq(bind(l, (struct sockaddr *)&u, sizeof(u)), 0);
    ck_assert_int_eq(listen(l, 0), 0);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(fd, (struct sockaddr *)&u, sizeof(u)) != 0) {
            ck_assert_int_eq(errno, EAGAIN);
            close(fd);
            break;
        }
        ck_assert_int_lt(n, 16);
        fds[n++] = fd;
    }
    CHECK_RUN(unix_backlog_main, path);
    while (n > 0)
        close(fds[--n]);
    close(l);
    unix_cleanup();
}
END_TEST

START_TEST(net_connect_times_out_on_a_full_backlog)
{
    struct backlog b;
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    memset(&b, 0, sizeof(b));
    b.lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(b.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(b.lfd, 0), 0);
    ck_assert_int_eq(getsockname(b.lfd, (struct sockaddr *)&a, &al), 0);
    b.port = ntohs(a.sin_port);
    /* Fill the queue until a connect no longer completes. */
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct pollfd p = { fd, POLLOUT, 0 };
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));

        ck_assert(r == 0 || errno == EINPROGRESS);
        ck_assert_int_lt(b.nfill, 16);
        b.fillers[b.nfill++] = fd;
        if (r != 0 && poll(&p, 1, 200) == 0)
            break;
    }
    CHECK_RUN(connect_timeout_main, &b);
    for (int i = 0; i < b.nfill; i++)
        close(b.fillers[i]);
    close(b.lfd);
}
END_TEST

static int
refused_main(void *arg)
{
    int port = *(int *)arg;
    char addr[64];

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    EXPECT(diesel_conn_connect(addr, 1000) == NULL);
    EXPECT(errno == ECONNREFUSED);
    EXPECT(diesel_conn_connect(addr, INT64_MAX) == NULL);
    EXPECT(errno == ECONNREFUSED);
    EXPECT(diesel_conn_connect(unix_path("nobody.sock"), 1000) == NULL);
    EXPECT(errno == ENOENT);
    return 0;
}

START_TEST(net_connect_to_nothing_is_refused)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    /* A port that was just free. */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    port = ntohs(a.sin_port);
    close(fd);
    CHECK_RUN(refused_main, &port);
    unix_cleanup();
}
END_TEST

/* ---- Cancellation and closing -------------------------------------------- */

struct parked {
    struct diesel_conn *c;
    ssize_t r;
    int err;
};

static int
parked_reader(void *arg)
{
    struct parked *p = arg;
    char buf[16];

    p->r = diesel_conn_recv(p->c, buf, sizeof(buf), -1);
    p->err = errno;
    return 0;
}

static int
cancel_main(void *arg)
{
    int *sv = arg;
    struct parked p = { NULL, 0, 0 };
    int64_t id;
    int status;

    p.c = diesel_conn_create(sv[0]);
    EXPECT(p.c != NULL);
    id = diesel_task_spawn("reader", parked_reader, &p, 0);
    EXPECT(id > 0);
    EXPECT(diesel_sleep(50) == 0);
    EXPECT(diesel_task_cancel(id) == 0);
    EXPECT(diesel_task_join(id, &status, 1000) == 0);
    EXPECT(p.r == -1);
    EXPECT(p.err == ECANCELED);
    /* The conn is still usable by others. */
    EXPECT(write(sv[1], "x", 1) == 1);
    EXPECT(diesel_conn_recv(p.c, &status, 1, 1000) == 1);

    /* Closed under a parked reader: it gets EBADF, nothing is touched
     * after the free (ASan, valgrind). */
    id = diesel_task_spawn("reader", parked_reader, &p, 0);
    EXPECT(id > 0);
    EXPECT(diesel_sleep(20) == 0);
    EXPECT(diesel_conn_close(p.c) == 0);
    EXPECT(diesel_task_join(id, &status, 1000) == 0);
    EXPECT(p.r == -1);
    EXPECT(p.err == EBADF);
    close(sv[1]);
    return 0;
}

START_TEST(net_cancel_while_parked_in_recv_is_ecanceled)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(cancel_main, sv);
}
END_TEST

static int
busy_reader_main(void *arg)
{
    int *sv = arg;
    struct parked p = { NULL, 0, 0 };
    char buf[4];
    int64_t id;
    int status;

    p.c = diesel_conn_create(sv[0]);
    EXPECT(p.c != NULL);
    id = diesel_task_spawn("reader", parked_reader, &p, 0);
    EXPECT(diesel_task_yield() == 0);
    /* Two receivers at once would tear messages apart. */
    EXPECT(diesel_conn_recv(p.c, buf, sizeof(buf), 100) == -1);
    EXPECT(errno == EBUSY);
    /* A sender beside the receiver is fine. */
    EXPECT(diesel_conn_send(p.c, "ok", 2, 1000) == 0);
    EXPECT(read(sv[1], buf, 2) == 2);
    EXPECT(write(sv[1], "x", 1) == 1);
    EXPECT(diesel_task_join(id, &status, 1000) == 0);
    EXPECT(p.r == 1);
    EXPECT(diesel_conn_close(p.c) == 0);
    close(sv[1]);
    return 0;
}

START_TEST(net_one_receiver_at_a_time_but_a_sender_beside_it)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(busy_reader_main, sv);
}
END_TEST

/* ---- Peek and consume ---------------------------------------------------- */

static int
peek_main(void *arg)
{
    int *sv = arg;
    struct parked p = { NULL, 0, 0 };
    const void *d, *d2;
    char buf[8], big[10000];
    size_t got = 0;
    int64_t id, t0;
    int status;
    ssize_t n;

    p.c = diesel_conn_create(sv[0]);
    EXPECT(p.c != NULL);
    EXPECT(write(sv[1], "hello world", 11) == 11);
    /* The bytes in place, and still there for a second look. */
    EXPECT(diesel_conn_peek(p.c, &d, 1000) == 11);
    EXPECT(memcmp(d, "hello world", 11) == 0);
    EXPECT(diesel_conn_peek(p.c, &d2, 1000) == 11);
    EXPECT(d2 == d);
    EXPECT(diesel_conn_consume(p.c, 6) == 0);
    EXPECT(diesel_conn_peek(p.c, &d, 1000) == 5);
    EXPECT(memcmp(d, "world", 5) == 0);
    /* The receive calls see what consume left. */
    EXPECT(diesel_conn_recv(p.c, buf, 2, 1000) == 2);
    EXPECT(memcmp(buf, "wo", 2) == 0);
    EXPECT(diesel_conn_peek(p.c, &d, 1000) == 3);
    EXPECT(memcmp(d, "rld", 3) == 0);
    /* More than is buffered, or nowhere to put the pointer. */
    EXPECT(diesel_conn_consume(p.c, 4) == -1);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_consume(NULL, 0) == -1);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_peek(p.c, NULL, 1000) == -1);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_peek(NULL, &d, 1000) == -1);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_consume(p.c, 3) == 0);
    EXPECT(p.c->len == 0 && p.c->off == 0);
    /* Nothing buffered and nothing arriving: a timeout. */
    EXPECT(diesel_conn_peek(p.c, &d, 0) == -1);
    EXPECT(errno == ETIMEDOUT);
    t0 = t_now_ms();
    EXPECT(diesel_conn_peek(p.c, &d, 100) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 95);
    /* A receiver parked on the connection owns its buffer. */
    id = diesel_task_spawn("reader", parked_reader, &p, 0);
    EXPECT(diesel_task_yield() == 0);
    EXPECT(diesel_conn_peek(p.c, &d, 100) == -1);
    EXPECT(errno == EBUSY);
    EXPECT(diesel_conn_consume(p.c, 0) == -1);
    EXPECT(errno == EBUSY);
    EXPECT(write(sv[1], "x", 1) == 1);
    EXPECT(diesel_task_join(id, &status, 5000) == 0);
    EXPECT(p.r == 1);
    /* More than one buffer's worth, relayed piece by piece. */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i * 7);
    EXPECT(write(sv[1], big, sizeof(big)) == (ssize_t)sizeof(big));
    shutdown(sv[1], SHUT_WR);
    while ((n = diesel_conn_peek(p.c, &d, 5000)) > 0) {
        EXPECT(got + (size_t)n <= sizeof(big));
        EXPECT(memcmp(d, big + got, (size_t)n) == 0);
        got += (size_t)n;
        EXPECT(diesel_conn_consume(p.c, (size_t)n) == 0);
    }
    EXPECT(n == 0);
    EXPECT(got == sizeof(big));
    EXPECT(diesel_conn_close(p.c) == 0);
    close(sv[1]);
    return 0;
}

START_TEST(net_peek_shows_buffered_bytes_in_place_until_consumed)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(peek_main, sv);
}
END_TEST

/* Writes 4 bytes to the descriptor at arg once the reader has parked. */
static int
late_writer(void *arg)
{
    int fd = *(int *)arg;

    EXPECT(diesel_sleep(20) == 0);
    EXPECT(write(fd, "late", 4) == 4);
    return 0;
}

static int
conn_closer(void *arg)
{
    EXPECT(diesel_conn_close(arg) == 0);
    return 0;
}

/* diesel_conn_peek with no timeout is a copy of its own (conn.c): the
 * same checks, the park, the end of stream and a close meanwhile. */
static int
peek_forever_main(void *arg)
{
    int *sv = arg, status;
    struct diesel_conn *c = diesel_conn_create(sv[0]), *c2;
    const void *d;
    int64_t id;

    EXPECT(c != NULL);
    EXPECT(diesel_conn_peek(c, NULL, -1) == -1);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_peek(NULL, &d, -1) == -1);
    EXPECT(errno == EINVAL);
    /* Nothing there yet: it parks until the bytes come. */
    id = diesel_task_spawn("late writer", late_writer, &sv[1], 0);
    EXPECT(id > 0);
    EXPECT(diesel_conn_peek(c, &d, -1) == 4);
    EXPECT(memcmp(d, "late", 4) == 0);
    EXPECT(diesel_task_join(id, &status, 5000) == 0);
    EXPECT(diesel_conn_consume(c, 4) == 0);
    shutdown(sv[1], SHUT_WR);
    EXPECT(diesel_conn_peek(c, &d, -1) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    /* Closed by another green thread while parked: EBADF, and the call
     * frees the connection on its way out. */
    c2 = diesel_conn_create(sv[2]);
    EXPECT(c2 != NULL);
    id = diesel_task_spawn("closer", conn_closer, c2, 0);
    EXPECT(id > 0);
    EXPECT(diesel_conn_peek(c2, &d, -1) == -1);
    EXPECT(errno == EBADF);
    EXPECT(diesel_task_join(id, &status, 5000) == 0);
    close(sv[1]);
    close(sv[3]);
    return 0;
}

START_TEST(net_peek_without_a_timeout_parks_until_bytes_or_a_close)
{
    int sv[4];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv + 2), 0);
    CHECK_RUN(peek_forever_main, sv);
}
END_TEST

/* ---- Servers ------------------------------------------------------------- */

struct limit {
    int port;
    int running, most, served, clients;
    char name[64];
};

static int
limit_handler(struct diesel_conn *c, void *arg)
{
    struct limit *l = arg;
    char buf[16];

    if (++l->running > l->most)
        l->most = l->running;
    snprintf(l->name, sizeof(l->name), "%s", diesel_task_name());
    diesel_sleep(50);
    l->running--;
    if (diesel_conn_readline(c, buf, sizeof(buf), 5000) <= 0 ||
        diesel_conn_send(c, buf, strlen(buf), 5000) != 0)
        return 1;
    l->served++;
    return 0;
}

static int
limit_client(void *arg)
{
    struct limit *l = arg;
    char addr[64], buf[16];
    struct diesel_conn *c;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", l->port);
    c = diesel_conn_connect(addr, 5000);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_send(c, "hi\n", 3, 5000) == 0);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == 3);
    EXPECT(diesel_conn_close(c) == 0);
    l->clients++;
    return 0;
}

static int
limit_main(void *arg)
{
    struct limit *l = arg;
    struct diesel_server *s = diesel_server_listen("127.0.0.1:0",
        limit_handler, l, 2);

    EXPECT(s != NULL);
    l->port = diesel_server_port(s);
    for (int i = 0; i < 6; i++)
        EXPECT(diesel_task_spawn("client", limit_client, l, 0) > 0);
    EXPECT(wait_count(&l->clients, 6, 10000) == 0);
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

START_TEST(net_max_conns_is_honoured)
{
    struct limit l;

    memset(&l, 0, sizeof(l));
    CHECK_RUN(limit_main, &l);
    ck_assert_int_eq(l.most, 2);
    ck_assert_int_eq(l.served, 6);
    ck_assert_msg(strncmp(l.name, "conn 127.0.0.1:", 15) == 0, "%s",
        l.name);
}
END_TEST

struct peers {
    const char *listen;
    char server_side[160];
    char client_side[160];
    char address[160];
};

static int
peer_handler(struct diesel_conn *c, void *arg)
{
    struct peers *p = arg;
    char small[4];

    if (diesel_conn_peer(c, p->server_side, sizeof(p->server_side)) != 0)
        return 1;
    if (diesel_conn_peer(c, small, sizeof(small)) != -1 || errno != ENOSPC)
        return 2;
    return diesel_conn_send(c, "x", 1, 1000);
}

static int
peers_main(void *arg)
{
    struct peers *p = arg;
    struct diesel_server *s = diesel_server_listen(p->listen, peer_handler,
        p, 0);
    struct diesel_conn *c;
    char x;

    EXPECT(s != NULL);
    snprintf(p->address, sizeof(p->address), "%s",
        diesel_server_address(s));
    /* What the server prints is an address to connect to. */
    c = diesel_conn_connect(p->address, 5000);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_recv(c, &x, 1, 5000) == 1);
    EXPECT(diesel_conn_peer(c, p->client_side, sizeof(p->client_side)) ==
        0);
    EXPECT(diesel_conn_close(c) == 0);
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

START_TEST(net_peer_strings_name_v4_v6_and_unix)
{
    struct peers p;
    char want[160];

    memset(&p, 0, sizeof(p));
    p.listen = "127.0.0.1:0";
    CHECK_RUN(peers_main, &p);
    ck_assert_str_eq(p.client_side, p.address);
    ck_assert_msg(strncmp(p.address, "127.0.0.1:", 10) == 0 &&
        strcmp(p.address, "127.0.0.1:0") != 0, "%s", p.address);
    ck_assert_msg(strncmp(p.server_side, "127.0.0.1:", 10) == 0, "%s",
        p.server_side);

    memset(&p, 0, sizeof(p));
    p.listen = "[::1]:0";
    CHECK_RUN(peers_main, &p);
    ck_assert_str_eq(p.client_side, p.address);
    ck_assert_msg(strncmp(p.address, "[::1]:", 6) == 0, "%s", p.address);
    ck_assert_msg(strncmp(p.server_side, "[::1]:", 6) == 0, "%s",
        p.server_side);

    memset(&p, 0, sizeof(p));
    p.listen = unix_path("peer.sock");
    snprintf(want, sizeof(want), "unix:%s", p.listen);
    CHECK_RUN(peers_main, &p);
    ck_assert_str_eq(p.address, want);
    ck_assert_str_eq(p.client_side, want);
    ck_assert_str_eq(p.server_side, want);
    unix_cleanup();
}
END_TEST

static int
bad_addr_main(void *arg)
{
    static const char *bad[] = {
        "", "abc:def", "127.0.0.1:65536", "127.0.0.1:99999999999", "99999",
        "abc", ":", "127.0.0.1:", "127.0.0.1:-1", "127.0.0.1: 80",
        "[::1]", "[::1]80", "::1:80", "[127.0.0.1]:80", "[::1:80",
        "[nothost]:80", "unix:",
    };
    char longpath[300];

    (void)arg;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        EXPECT(diesel_conn_connect(bad[i], 1000) == NULL);
        EXPECT(errno == EINVAL);
        errno = 0;
        EXPECT(diesel_server_listen(bad[i], echo_handler, NULL, 0) == NULL);
        EXPECT(errno == EINVAL);
    }
    EXPECT(diesel_conn_connect(NULL, 1000) == NULL);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_connect("127.0.0.1:0", 1000) == NULL);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_conn_connect("127.0.0.1:80", -2) == NULL);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_server_listen("127.0.0.1:0", NULL, NULL, 0) == NULL);
    EXPECT(errno == EINVAL);
    EXPECT(diesel_server_listen("127.0.0.1:0", echo_handler, NULL, -1) ==
        NULL);
    EXPECT(errno == EINVAL);
    memset(longpath, 'p', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    EXPECT(diesel_conn_connect(longpath, 1000) == NULL);
    EXPECT(errno == ENAMETOOLONG);
    return 0;
}

START_TEST(net_bad_addresses_are_einval)
{
    CHECK_RUN(bad_addr_main, NULL);
}
END_TEST

START_TEST(net_calls_outside_a_green_thread_fail_with_eperm)
{
    int sv[2];
    struct diesel_conn *c;
    const void *peeked;
    char buf[8];
    const char *log;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    c = diesel_conn_create(sv[0]);
    ck_assert_ptr_nonnull(c);
    t_log_capture_start();
    ck_assert_int_eq(diesel_conn_recv(c, buf, sizeof(buf), 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_conn_recv_exactly(c, buf, 2, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_conn_recv_until(c, "\n", buf, 8, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_conn_readline(c, buf, sizeof(buf), 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_conn_send(c, "x", 1, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(diesel_conn_peek(c, &peeked, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_ptr_null(diesel_conn_connect("127.0.0.1:1", 0));
    ck_assert_int_eq(errno, EPERM);
    ck_assert_ptr_null(diesel_server_listen("127.0.0.1:0", echo_handler,
        NULL, 0));
    ck_assert_int_eq(errno, EPERM);
    log = t_log_capture_end();
    ck_assert_ptr_nonnull(strstr(log, "diesel_conn_recv() called outside"));
    ck_assert_ptr_nonnull(strstr(log, "diesel_conn_readline() called"));
    ck_assert_ptr_nonnull(strstr(log, "diesel_conn_send() called"));
    ck_assert_ptr_nonnull(strstr(log, "diesel_conn_peek() called"));
    ck_assert_ptr_nonnull(strstr(log, "diesel_conn_connect() called"));
    ck_assert_ptr_nonnull(strstr(log, "diesel_server_listen() called"));
    /* Calls that never block work anywhere. */
    ck_assert_int_eq(diesel_conn_fd(c), sv[0]);
    ck_assert_int_eq(diesel_conn_consume(c, 0), 0);
    ck_assert_int_eq(diesel_conn_shutdown(c, SHUT_WR), 0);
    ck_assert_int_eq(diesel_conn_shutdown(c, 42), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_conn_close(c), 0);
    close(sv[1]);
}
END_TEST

START_TEST(net_conn_create_takes_stream_sockets_only)
{
    int p[2], u, s[2], fl;
    struct diesel_conn *c;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_ptr_null(diesel_conn_create(p[0]));
    ck_assert_int_eq(errno, ENOTSOCK);
    u = socket(AF_INET, SOCK_DGRAM, 0);
    ck_assert_ptr_null(diesel_conn_create(u));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(diesel_conn_create(-1));
    ck_assert_int_eq(errno, EBADF);
    /* The caller still owns what was refused. */
    ck_assert_int_ne(fcntl(p[0], F_GETFD), -1);
    ck_assert_int_ne(fcntl(u, F_GETFD), -1);
    close(p[0]);
    close(p[1]);
    close(u);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    c = diesel_conn_create(s[0]);
    ck_assert_ptr_nonnull(c);
    fl = fcntl(s[0], F_GETFL);
    ck_assert(fl & O_NONBLOCK);
    ck_assert(fcntl(s[0], F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(diesel_conn_close(c), 0);
    ck_assert_int_eq(fcntl(s[0], F_GETFD), -1);
    close(s[1]);
}
END_TEST

struct stale {
    const char *path;
    int second_err;
};

static int
stale_main(void *arg)
{
    struct stale *st = arg;
    struct diesel_server *s, *s2;

    s = diesel_server_listen(st->path, echo_handler, NULL, 0);
    EXPECT(s != NULL);
    /* A live socket is not taken over. */
    s2 = diesel_server_listen(st->path, echo_handler, NULL, 0);
    EXPECT(s2 == NULL);
    st->second_err = errno;
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

START_TEST(net_unix_listen_replaces_a_stale_socket_only)
{
    struct sockaddr_un u;
    struct stale st;
    struct stat sb;
    int fd;

    st.path = unix_path("stale.sock");
    /* A socket file left behind by a process that died. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&u, 0, sizeof(u));
    u.sun_family = AF_UNIX;
    snprintf(u.sun_path, sizeof(u.sun_path), "%s", st.path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&u, sizeof(u)), 0);
    close(fd);
    ck_assert_int_eq(lstat(st.path, &sb), 0);
    CHECK_RUN(stale_main, &st);
    ck_assert_int_eq(st.second_err, EADDRINUSE);
    ck_assert_int_ne(lstat(st.path, &sb), 0);
    /* A regular file is never removed. */
    fd = open(st.path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    failure[0] = '\0';
    ck_assert_int_eq(t_run(stale_main, &st), 1);
    ck_assert_int_eq(lstat(st.path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    unix_cleanup();
}
END_TEST

struct closing {
    int port;
    int in_handler;
    int finished;
};

static int
closing_handler(struct diesel_conn *c, void *arg)
{
    struct closing *cl = arg;
    char buf[16];

    cl->in_handler++;
    /* Goes on after the server is closed. */
    if (diesel_conn_readline(c, buf, sizeof(buf), 5000) != 3 ||
        diesel_conn_send(c, buf, 3, 5000) != 0)
        return 1;
    cl->finished++;
    return 0;
}

static int
closing_main(void *arg)
{
    struct closing *cl = arg;
    struct diesel_server *s = diesel_server_listen("127.0.0.1:0",
        closing_handler, cl, 0);
    struct diesel_conn *c;
    char addr[64], buf[16];

    EXPECT(s != NULL);
    cl->port = diesel_server_port(s);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", cl->port);
    c = diesel_conn_connect(addr, 5000);
    EXPECT(c != NULL);
    while (cl->in_handler == 0)
        EXPECT(diesel_sleep(1) == 0);
    EXPECT(diesel_server_close(s) == 0);
    EXPECT(diesel_conn_connect(addr, 1000) == NULL);
    EXPECT(errno == ECONNREFUSED);
    EXPECT(diesel_conn_send(c, "ab\n", 3, 5000) == 0);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == 3);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_server_close_stops_accepting_but_connections_go_on)
{
    struct closing cl;

    memset(&cl, 0, sizeof(cl));
    CHECK_RUN(closing_main, &cl);
    ck_assert_int_eq(cl.finished, 1);
}
END_TEST

static int
close_early_main(void *arg)
{
    struct diesel_server *s = diesel_server_listen("127.0.0.1:0",
        echo_handler, NULL, 0);

    (void)arg;
    /* Before the acceptor has even run. */
    EXPECT(s != NULL);
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

START_TEST(net_server_closed_before_its_acceptor_runs)
{
    int before = t_count_fds();

    CHECK_RUN(close_early_main, NULL);
    ck_assert_int_eq(t_count_fds(), before);
}
END_TEST

/* ---- Descriptor reuse and signals ---------------------------------------- */

static int
reuse_main(void *arg)
{
    int *sv = arg, fresh[2];
    struct diesel_conn *a = diesel_conn_create(sv[0]), *b;
    char buf[8];
    uint64_t it;
    int64_t t0;

    EXPECT(a != NULL);
    EXPECT(write(sv[1], "1", 1) == 1);
    EXPECT(diesel_conn_recv(a, buf, 1, 1000) == 1);
    /* a's descriptor is in the poll set and readable when closed. */
    EXPECT(write(sv[1], "2", 1) == 1);
    EXPECT(diesel_fd_wait(sv[0], DIESEL_READ, 1000) == DIESEL_READ);
    EXPECT(diesel_conn_close(a) == 0);
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, fresh) == 0);
    EXPECT(fresh[0] == sv[0]);          /* the number, reused at once */
    b = diesel_conn_create(fresh[0]);
    EXPECT(b != NULL);
    it = diesel__loop->iterations;
    t0 = t_now_ms();
    EXPECT(diesel_conn_recv(b, buf, sizeof(buf), 100) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 95);
    EXPECT(diesel__loop->iterations - it < 5);
    EXPECT(write(fresh[1], "3", 1) == 1);
    EXPECT(diesel_conn_recv(b, buf, sizeof(buf), 1000) == 1);
    EXPECT(buf[0] == '3');
    EXPECT(diesel_conn_close(b) == 0);
    close(fresh[1]);
    close(sv[1]);
    return 0;
}

START_TEST(net_closed_descriptor_reused_at_once_gets_no_stale_event)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_RUN(reuse_main, sv);
}
END_TEST

static volatile sig_atomic_t ticks;

static void
on_tick(int sig)
{
    (void)sig;
    ticks++;
}

struct ticking {
    int sv[2];
    int trips;
};

static int
tick_echo(void *arg)
{
    struct diesel_conn *c = diesel_conn_create(*(int *)arg);

    if (c == NULL)
        return 1;
    echo_handler(c, NULL);
    return diesel_conn_close(c);
}

static int
ticking_main(void *arg)
{
    struct ticking *tk = arg;
    struct diesel_conn *c = diesel_conn_create(tk->sv[1]);
    char want[64], buf[64];
    int64_t t0;
    int status;
    int64_t id = diesel_task_spawn("echo", tick_echo, &tk->sv[0], 0);

    EXPECT(c != NULL && id > 0);
    t0 = t_now_ms();
    while (t_now_ms() - t0 < 300) {
        int n = snprintf(want, sizeof(want), "tick %d\n", tk->trips);
        EXPECT(diesel_conn_send(c, want, (size_t)n, 1000) == 0);
        EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 1000) == n);
        tk->trips++;
        /* Parked long enough for signals to land in the poll. */
        if (tk->trips % 50 == 0)
            EXPECT(diesel_sleep(5) == 0);
    }
    t0 = t_now_ms();
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 100) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= 95 && t_now_ms() - t0 < 300);
    EXPECT(diesel_conn_shutdown(c, SHUT_WR) == 0);
    EXPECT(diesel_task_join(id, &status, 1000) == 0);
    EXPECT(status == 0);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_signals_every_millisecond_are_absorbed)
{
    struct sigaction sa;
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } }, off;
    struct ticking tk;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_tick;        /* no SA_RESTART: calls see EINTR */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    memset(&tk, 0, sizeof(tk));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, tk.sv), 0);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    CHECK_RUN(ticking_main, &tk);
    memset(&off, 0, sizeof(off));
    setitimer(ITIMER_REAL, &off, NULL);
    /*
     * Not SIG_DFL: a tick may still be pending (valgrind holds signals
     * back and delivers them later), and under SIG_DFL it would kill
     * the test after it passed.  SIG_IGN discards it.
     */
    signal(SIGALRM, SIG_IGN);
    ck_assert_int_gt(ticks, 100);
    ck_assert_int_gt(tk.trips, 100);
}
END_TEST

/* ---- Names --------------------------------------------------------------- */

/* A name in /etc/hosts for 127.0.0.1 other than "localhost" itself (which
 * never reaches the resolver), else a spelling of it that does. */
static void
loopback_name(char *name, size_t len)
{
    FILE *f = fopen("/etc/hosts", "r");
    char line[512];

    snprintf(name, len, "LocalHost");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *save, *tok = strtok_r(line, " \t\n", &save);
        if (tok == NULL || strcmp(tok, "127.0.0.1") != 0)
            continue;
        while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL) {
            if (tok[0] != '#' && strcmp(tok, "localhost") != 0) {
                snprintf(name, len, "%s", tok);
                fclose(f);
                return;
            }
        }
    }
    fclose(f);
}

struct names {
    char name[256];
    int port;
    int ok;
};

static int
name_client(void *arg)
{
    struct names *n = arg;
    char addr[300], buf[16];
    struct diesel_conn *c;

    snprintf(addr, sizeof(addr), "%s:%d", n->name, n->port);
    c = diesel_conn_connect(addr, 10000);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_send(c, "n\n", 2, 5000) == 0);
    EXPECT(diesel_conn_readline(c, buf, sizeof(buf), 5000) == 2);
    EXPECT(diesel_conn_close(c) == 0);
    n->ok++;
    return 0;
}

static int
names_main(void *arg)
{
    struct names *n = arg;
    struct diesel_server *s;
    struct diesel_conn *c;
    char addr[300];

    /* Listening on a name goes through the resolver too. */
    snprintf(addr, sizeof(addr), "%s:0", n->name);
    s = diesel_server_listen(addr, echo_handler, NULL, 0);
    EXPECT(s != NULL);
    n->port = diesel_server_port(s);
    EXPECT(strncmp(diesel_server_address(s), "127.0.0.1:", 10) == 0);
    for (int i = 0; i < 16; i++)
        EXPECT(diesel_task_spawn("resolve", name_client, n, 0) > 0);
    EXPECT(wait_count(&n->ok, 16, 15000) == 0);
    snprintf(addr, sizeof(addr), "localhost:%d", n->port);
    c = diesel_conn_connect(addr, 5000);
    EXPECT(c != NULL);
    EXPECT(diesel_conn_close(c) == 0);
    /* A name that does not exist (or no answer in time: no DNS here). */
    c = diesel_conn_connect("no-such-host.invalid:80", 3000);
    EXPECT(c == NULL);
    EXPECT(errno == EADDRNOTAVAIL || errno == ETIMEDOUT || errno == EAGAIN);
    /* Gave up at once: the helper's answer goes nowhere, harmlessly. */
    snprintf(addr, sizeof(addr), "%s:%d", n->name, n->port);
    EXPECT(diesel_conn_connect(addr, 0) == NULL);
    EXPECT(errno == ETIMEDOUT);
    for (int i = 0; i < 4; i++) {
        c = diesel_conn_connect(addr, 1);
        if (c != NULL)
            diesel_conn_close(c);
        else
            EXPECT(errno == ETIMEDOUT);
    }
    EXPECT(diesel_server_close(s) == 0);
    /* Let the helpers finish with the abandoned lookups. */
    EXPECT(diesel_sleep(100) == 0);
    return 0;
}

START_TEST(net_names_resolve_on_a_helper_thread)
{
    struct names n;
    int before = t_count_fds();

    memset(&n, 0, sizeof(n));
    loopback_name(n.name, sizeof(n.name));
    CHECK_RUN(names_main, &n);
    ck_assert_int_eq(n.ok, 16);
    ck_assert_int_eq(t_count_fds(), before);
}
END_TEST

/* diesel_resolve: the addresses diesel_conn_connect would try. */
static int
resolve_main(void *arg)
{
    const char *name = arg;
    struct sockaddr_storage ss[8];
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss[0];
    int n, loop4 = 0;

    EXPECT(diesel_resolve("localhost", ss, 8, 5000) == 2);
    EXPECT(ss[0].ss_family == AF_INET && ss[1].ss_family == AF_INET6);
    EXPECT(in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
        in->sin_port == 0);
    EXPECT(diesel_resolve("localhost", ss, 1, 5000) == 1);
    /* Numeric: no lookup, so even a timeout of 0 gets it. */
    EXPECT(diesel_resolve("10.1.2.3", ss, 8, 0) == 1);
    EXPECT(ss[0].ss_family == AF_INET &&
        in->sin_addr.s_addr == htonl(0x0a010203));
    EXPECT(diesel_resolve("[::1]", ss, 8, 0) == 1);
    EXPECT(ss[0].ss_family == AF_INET6);
    EXPECT(diesel_resolve("::1", ss, 8, 0) == 1);
    /* A name goes to a helper thread: never answered with 0. */
    EXPECT(diesel_resolve(name, ss, 8, 0) == -1 && errno == ETIMEDOUT);
    n = diesel_resolve(name, ss, 8, 10000);
    EXPECT(n >= 1);
    for (int i = 0; i < n; i++) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss[i];

        loop4 |= ss[i].ss_family == AF_INET &&
            a->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    }
    EXPECT(loop4);
    /* No such name (or no answer: no DNS here). */
    EXPECT(diesel_resolve("no-such-host.invalid", ss, 8, 3000) == -1);
    EXPECT(errno == EADDRNOTAVAIL || errno == ETIMEDOUT || errno == EAGAIN);
    EXPECT(diesel_resolve("", ss, 8, 1000) == -1 && errno == EINVAL);
    EXPECT(diesel_resolve("[]", ss, 8, 1000) == -1 && errno == EINVAL);
    EXPECT(diesel_resolve("a/b", ss, 8, 1000) == -1 && errno == EINVAL);
    EXPECT(diesel_resolve("localhost", ss, 0, 1000) == -1 &&
        errno == EINVAL);
    EXPECT(diesel_resolve("localhost", NULL, 8, 1000) == -1 &&
        errno == EINVAL);
    EXPECT(diesel_resolve("localhost", ss, 8, -2) == -1 && errno == EINVAL);
    /* Let the helpers finish with the abandoned lookup. */
    EXPECT(diesel_sleep(100) == 0);
    return 0;
}

START_TEST(net_resolve_gives_the_addresses_connect_would_try)
{
    struct sockaddr_storage ss[2];
    char name[256];

    loopback_name(name, sizeof(name));
    CHECK_RUN(resolve_main, name);
    ck_assert_int_eq(diesel_resolve("localhost", ss, 2, 1000), -1);
    ck_assert_int_eq(errno, EPERM);
}
END_TEST

/* ---- Out of descriptors -------------------------------------------------- */

struct emfile {
    int port_w;              /* child -> parent: the port */
    int go_r;                /* parent -> child: clients are queued, done */
    int64_t cpu;             /* CPU ms over the second out of fds */
    int filled;
};

static int
emfile_main(void *arg)
{
    struct emfile *e = arg;
    struct diesel_server *s = diesel_server_listen("127.0.0.1:0",
        echo_handler, NULL, 0);
    int fill[1024], n = 0, fd;
    char c;
    int64_t cpu;

    EXPECT(s != NULL);
    int port = diesel_server_port(s);
    EXPECT(write(e->port_w, &port, sizeof(port)) == sizeof(port));
    while (n < 1024 && (fd = dup(e->go_r)) >= 0)
        fill[n++] = fd;
    EXPECT(n < 1024 && errno == EMFILE);
    e->filled = n;
    /* The parent connects its clients now; they queue. */
    EXPECT(diesel_fd_wait(e->go_r, DIESEL_READ, 10000) > 0);
    EXPECT(read(e->go_r, &c, 1) == 1);
    cpu = cpu_ms();
    EXPECT(diesel_sleep(1000) == 0);
    e->cpu = cpu_ms() - cpu;
    while (n > 0)
        close(fill[--n]);
    /* Now the queued clients are served; the parent says when done. */
    EXPECT(diesel_fd_wait(e->go_r, DIESEL_READ, 10000) > 0);
    EXPECT(read(e->go_r, &c, 1) == 1);
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

static int
emfile_child(void *arg)
{
    struct emfile *e = arg;
    struct rlimit rl;
    const char *log;
    int st, warnings = 0;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 20;
    t_log_capture_start();
    st = t_run(emfile_main, e);
    log = t_log_capture_end();
    for (const char *p = log; (p = strstr(p, "WARNING:accept on")) != NULL;
        p++)
        warnings++;
    if (st != 0 || failure[0] != '\0') {
        fprintf(stderr, "emfile child: %s\n%s", failure, log);
        return 21;
    }
    if (e->cpu > 100) {
        fprintf(stderr, "emfile child: %lld ms of CPU in 1 s\n",
            (long long)e->cpu);
        return 22;
    }
    if (warnings != 1 || strstr(log, "Too many open files") == NULL) {
        fprintf(stderr, "emfile child: %d warnings\n%s", warnings, log);
        return 23;
    }
    return 0;
}

START_TEST(net_accept_waits_out_emfile_without_spinning)
{
    int portp[2], gop[2], port = 0, fds[5], status;
    struct emfile e;
    struct pollfd p;
    pid_t pid;
    char buf[64], want[64];

    /* valgrind keeps descriptors above the limit for itself: the kernel
     * accepts into one of those, valgrind closes it and says EMFILE, so
     * the queued clients are dropped rather than kept waiting. */
    if (RUNNING_ON_VALGRIND) {
        fprintf(stderr, "%s: skipped under valgrind\n", __func__);
        return;
    }
    ck_assert_int_eq(pipe(portp), 0);
    ck_assert_int_eq(pipe(gop), 0);
    memset(&e, 0, sizeof(e));
    e.port_w = portp[1];
    e.go_r = gop[0];
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(portp[0]);
        close(gop[1]);
        _exit(emfile_child(&e));
    }
    close(portp[1]);
    close(gop[0]);
    p.fd = portp[0];
    p.events = POLLIN;
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    ck_assert_int_eq(read(portp[0], &port, sizeof(port)), sizeof(port));
    /* The child fills its table after it sent the port: give it time. */
    usleep(100000);
    for (int i = 0; i < 5; i++) {
        fds[i] = plain_connect("v4", port, NULL);
        ck_assert_int_ge(fds[i], 0);
        snprintf(want, sizeof(want), "queued %d\n", i);
        ck_assert_int_eq(write(fds[i], want, strlen(want)),
            (ssize_t)strlen(want));
    }
    ck_assert_int_eq(write(gop[1], "g", 1), 1);
    for (int i = 0; i < 5; i++) {
        snprintf(want, sizeof(want), "queued %d\n", i);
        ck_assert_int_eq(plain_readline(fds[i], buf, sizeof(buf), 10000),
            (ssize_t)strlen(want));
        ck_assert_str_eq(buf, want);
        close(fds[i]);
    }
    ck_assert_int_eq(write(gop[1], "d", 1), 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(portp[0]);
    close(gop[1]);
}
END_TEST

/* ---- Load ---------------------------------------------------------------- */

#ifndef LOAD_CONNS
#define LOAD_CONNS 2000
#endif
#define LOAD_TRIPS 10

struct load {
    int port;
    int conns;
    int clients_done;
    int errors;
    int handlers;        /* server-side handlers running */
    char first_error[128];
};

static int
load_handler(struct diesel_conn *c, void *arg)
{
    struct load *l = arg;
    int r;

    l->handlers++;
    r = echo_handler(c, NULL);
    l->handlers--;
    return r;
}

static int
load_client(void *arg)
{
    struct load *l = arg;
    char addr[64], buf[64], want[64];
    struct diesel_conn *c;
    int err = 0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", l->port);
    c = diesel_conn_connect(addr, 30000);
    if (c == NULL) {
        err = errno;
        goto out;
    }
    for (int i = 0; i < LOAD_TRIPS && err == 0; i++) {
        int n = snprintf(want, sizeof(want), "%lld says %d\n",
            (long long)diesel_task_self(), i);
        if (diesel_conn_send(c, want, (size_t)n, 30000) != 0 ||
            diesel_conn_readline(c, buf, sizeof(buf), 30000) != n ||
            strcmp(buf, want) != 0)
            err = errno ? errno : EPROTO;
    }
    diesel_conn_close(c);
out:
    if (err != 0 && l->errors++ == 0)
        snprintf(l->first_error, sizeof(l->first_error), "%s",
            strerror(err));
    l->clients_done++;
    return 0;
}

static int
load_main(void *arg)
{
    struct load *l = arg;
    struct diesel_server *s = diesel_server_listen("127.0.0.1:0",
        load_handler, l, 0);
    int64_t end = t_now_ms() + 100000;

    EXPECT(s != NULL);
    l->port = diesel_server_port(s);
    for (int i = 0; i < l->conns; i++)
        EXPECT(diesel_task_spawn("client", load_client, l, 0) > 0);
    while ((l->clients_done < l->conns || l->handlers > 0) &&
        t_now_ms() < end)
        EXPECT(diesel_sleep(10) == 0);
    EXPECT(diesel_server_close(s) == 0);
    return 0;
}

START_TEST(net_2000_concurrent_echo_connections)
{
    struct load l;
    struct rlimit rl;
    int before;

    memset(&l, 0, sizeof(l));
    l.conns = LOAD_CONNS;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * LOAD_CONNS + 100) {
        rl.rlim_cur = rl.rlim_max < 2 * LOAD_CONNS + 100 ? rl.rlim_max :
            2 * LOAD_CONNS + 100;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < 2 * LOAD_CONNS + 100) {
        l.conns = ((int)rl.rlim_cur - 100) / 2;
        fprintf(stderr, "RLIMIT_NOFILE hard limit %llu: %d connections\n",
            (unsigned long long)rl.rlim_max, l.conns);
    }
    before = count_fds();
    CHECK_RUN(load_main, &l);
    ck_assert_msg(l.errors == 0, "%d errors, first: %s", l.errors,
        l.first_error);
    ck_assert_int_eq(l.clients_done, l.conns);
    ck_assert_int_eq(l.handlers, 0);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* ---- Buffered writes ----------------------------------------------------- */

static int wsv[2];

/* Bytes the plain peer can read within ms (0 if none). */
static ssize_t
peer_read(char *buf, size_t max, int ms)
{
    struct pollfd p = { wsv[1], POLLIN, 0 };

    if (poll(&p, 1, ms) != 1)
        return 0;
    return read(wsv[1], buf, max);
}

static int
write_flush_main(void *arg)
{
    struct diesel_conn *c;
    char buf[256];

    (void)arg;
    tcp_pair(wsv);
    c = diesel_conn_create(wsv[0]);
    EXPECT(c != NULL);
    /* Written bytes wait in the buffer... */
    EXPECT(diesel_conn_write(c, "one ", 4) == 0);
    EXPECT(diesel_conn_write(c, "two ", 4) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 50) == 0);
    /* ...until a flush, */
    EXPECT(diesel_conn_flush(c, 1000) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 8);
    EXPECT(memcmp(buf, "one two ", 8) == 0);
    /* or a send, which keeps the order, */
    EXPECT(diesel_conn_write(c, "three ", 6) == 0);
    EXPECT(diesel_conn_send(c, "four", 4, 1000) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 10);
    EXPECT(memcmp(buf, "three four", 10) == 0);
    /* or a receive that would wait: the peer answers what it got. */
    EXPECT(diesel_conn_write(c, "ping\n", 5) == 0);
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 0) == -1 &&
        errno == ETIMEDOUT);
    EXPECT(peer_read(buf, sizeof(buf), 50) == 0);   /* 0 never waits */
    EXPECT(diesel_conn_recv(c, buf, sizeof(buf), 100) == -1 &&
        errno == ETIMEDOUT);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 5);
    EXPECT(memcmp(buf, "ping\n", 5) == 0);
    /* Arguments. */
    EXPECT(diesel_conn_write(c, NULL, 3) == -1 && errno == EINVAL);
    EXPECT(diesel_conn_write(NULL, "x", 1) == -1 && errno == EINVAL);
    EXPECT(diesel_conn_write(c, NULL, 0) == 0);
    /* What is left at close goes out if the socket takes it. */
    EXPECT(diesel_conn_write(c, "bye", 3) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 3);
    EXPECT(memcmp(buf, "bye", 3) == 0);
    close(wsv[1]);
    return 0;
}

START_TEST(net_write_buffers_until_flush_send_or_a_waiting_receive)
{
    CHECK_RUN(write_flush_main, NULL);
}
END_TEST

/* A pipelined peer: 100 requests in one write, each answered with
 * diesel_conn_write; the replies come back in order, in few packets. */
static int
pipelined_child(void *arg)
{
    int fd = *(int *)arg;
    char req[100 * 8 + 1], got[100 * 8 + 1];
    size_t n = 0, reads = 0;

    for (int i = 0; i < 100; i++)
        snprintf(req + i * 8, 9, "req%04d\n", i + 1000);
    if (write(fd, req, 800) != 800)
        return 1;
    while (n < 800) {
        ssize_t r = read(fd, got + n, 800 - n);
        if (r <= 0)
            return 2;
        n += (size_t)r;
        reads++;
    }
    for (int i = 0; i < 100; i++) {
        char want[9];
        snprintf(want, sizeof(want), "rep%04d\n", i + 1000);
        if (memcmp(got + i * 8, want, 8) != 0)
            return 3;
    }
    /* Replies went out per batch, not per request. */
    return reads <= 10 ? 0 : 4;
}

static int
pipelined_main(void *arg)
{
    int sv[2], done = 0, i;
    struct diesel_conn *c;
    char line[32];
    pid_t pid;

    (void)arg;
    tcp_pair(sv);
    pid = fork_child(pipelined_child, &sv[1], &done);
    close(sv[1]);
    c = diesel_conn_create(sv[0]);
    EXPECT(c != NULL);
    for (i = 0; i < 100; i++) {
        EXPECT(diesel_conn_readline(c, line, sizeof(line), 5000) == 8);
        line[0] = 'r';
        line[1] = 'e';
        line[2] = 'p';
        EXPECT(diesel_conn_write(c, line, 8) == 0);
    }
    EXPECT(diesel_conn_flush(c, 5000) == 0);
    EXPECT(wait_child(pid, done, 5000) == 0);
    diesel_conn_close(c);
    return 0;
}

START_TEST(net_pipelined_replies_go_out_in_batches)
{
    CHECK_RUN(pipelined_main, NULL);
}
END_TEST

/* ---- The output high-water mark --------------------------------------- */

#define MARK 16384

struct hw {
    struct diesel_conn *c;      /* the writer's connection */
    int peer;                   /* its plain peer */
    int echo[2];                /* another connection on the same loop */
    int rounds;                 /* round trips made while the writer was
                                   parked */
    size_t max_wlen;            /* the most the writer's buffer held */
    size_t got;                 /* bytes the reading peer received */
    int err;                    /* the writer's errno at the end */
    int done;                   /* the writer has returned */
};

/* Shrink the kernel's buffers so that a peer that never reads fills them
 * with a few kilobytes, not megabytes. */
static void
small_buffers(int sv[2])
{
    int small = 4096;

    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

/* Write chunks until a write fails (or 64 MiB went in: the mark failed),
 * noting the most that was ever buffered. */
static int
hw_writer(void *arg)
{
    struct hw *h = arg;
    char chunk[1000];

    memset(chunk, 'w', sizeof(chunk));
    for (size_t total = 0; total < (size_t)64 << 20; total += sizeof(chunk)) {
        if (diesel_conn_write(h->c, chunk, sizeof(chunk)) != 0) {
            h->err = errno;     /* (after EBADF, h->c is gone) */
            break;
        }
        if (h->c->wlen > h->max_wlen)
            h->max_wlen = h->c->wlen;
    }
    h->done = 1;
    return 0;
}

/* Echo one connection on the same loop, until its peer closes. */
static int
hw_echo(void *arg)
{
    struct diesel_conn *c = diesel_conn_create(*(int *)arg);
    char buf[64];
    ssize_t n;

    EXPECT(c != NULL);
    while ((n = diesel_conn_recv(c, buf, sizeof(buf), -1)) > 0)
        EXPECT(diesel_conn_send(c, buf, (size_t)n, -1) == 0);
    diesel_conn_close(c);
    return 0;
}

/* Once the writer is parked (sending), make round trips on the other
 * connection, each checked to finish while it still is. */
static int
hw_pinger(void *arg)
{
    struct hw *h = arg;
    struct diesel_conn *c = diesel_conn_create(h->echo[1]);
    char buf[8];

    EXPECT(c != NULL);
    while (!h->c->writing && !h->done)
        diesel_sleep(1);
    EXPECT(!h->done);
    for (int i = 0; i < 10; i++) {
        EXPECT(diesel_conn_send(c, "ping", 4, 5000) == 0);
        EXPECT(diesel_conn_recv_exactly(c, buf, 4, 5000) == 4);
        EXPECT(memcmp(buf, "ping", 4) == 0);
        if (h->c->writing)
            h->rounds++;
    }
    diesel_conn_close(c);
    return 0;
}

static int
hw_timeout_main(void *arg)
{
    struct hw *h = arg;
    char chunk[1000] = { 0 };
    int64_t w, e, p, t0;
    size_t wlen;

    EXPECT(diesel_conn_set_output(h->c, MARK, t_slow(1000)) == 0);
    t0 = t_now_ms();
    w = diesel_task_spawn("writer", hw_writer, h, 0);
    e = diesel_task_spawn("echo", hw_echo, &h->echo[0], 0);
    p = diesel_task_spawn("pinger", hw_pinger, h, 0);
    EXPECT(w > 0 && e > 0 && p > 0);
    EXPECT(diesel_task_join(w, NULL, t_slow(10000)) == 0);
    EXPECT(diesel_task_join(p, NULL, t_slow(10000)) == 0);
    /* The writer parked for its whole timeout, then gave up. */
    EXPECT(h->err == ETIMEDOUT);
    EXPECT(t_now_ms() - t0 >= t_slow(1000) - 5);
    EXPECT(diesel_task_join(e, NULL, 5000) == 0);
    /* What was not sent stays; a write that fails takes none of its
     * bytes; with a timeout of 0 it fails at once. */
    wlen = h->c->wlen;
    EXPECT(wlen > 0 && wlen <= MARK);
    EXPECT(diesel_conn_set_output(h->c, MARK, 0) == 0);
    t0 = t_now_ms();
    EXPECT(diesel_conn_write(h->c, chunk, sizeof(chunk)) == -1);
    EXPECT(errno == ETIMEDOUT);
    EXPECT(h->c->wlen == wlen);
    EXPECT(t_now_ms() - t0 < t_slow(500));
    /* A writer parked past the mark wakes with EBADF when another green
     * thread closes the connection (and frees it on its way out). */
    EXPECT(diesel_conn_set_output(h->c, MARK, -1) == 0);
    h->done = 0;
    w = diesel_task_spawn("writer", hw_writer, h, 0);
    EXPECT(w > 0);
    while (!h->c->writing && !h->done)
        diesel_sleep(1);
    EXPECT(!h->done);
    EXPECT(diesel_conn_close(h->c) == 0);
    EXPECT(diesel_task_join(w, NULL, 5000) == 0);
    EXPECT(h->err == EBADF);
    return 0;
}

START_TEST(net_write_past_the_mark_parks_then_times_out)
{
    struct hw h;
    int sv[2];

    memset(&h, 0, sizeof(h));
    tcp_pair(sv);
    small_buffers(sv);
    tcp_pair(h.echo);
    h.peer = sv[1];
    h.c = diesel_conn_create(sv[0]);
    ck_assert_ptr_nonnull(h.c);
    CHECK_RUN(hw_timeout_main, &h);
    close(h.peer);
    /* Memory stayed bounded: never more than the mark was buffered. */
    ck_assert_uint_gt(h.max_wlen, MARK / 2);
    ck_assert_uint_le(h.max_wlen, MARK);
    /* The other connection was served while the writer waited. */
    ck_assert_int_eq(h.rounds, 10);
}
END_TEST

/* The peer starts reading only once the writer is parked. */
static int
hw_reader(void *arg)
{
    struct hw *h = arg;
    char buf[65536];
    ssize_t n;

    while (!h->c->writing && !h->done)
        diesel_sleep(1);
    EXPECT(!h->done);
    for (;;) {
        EXPECT(diesel_fd_wait(h->peer, DIESEL_READ, 10000) > 0);
        if ((n = read(h->peer, buf, sizeof(buf))) <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            EXPECT(buf[i] == (char)('a' + (h->got + (size_t)i) % 26));
        h->got += (size_t)n;
    }
    EXPECT(n == 0);
    return 0;
}

static int
hw_resume_main(void *arg)
{
    struct hw *h = arg;
    enum { TOTAL = 4 << 20 };
    char *data = malloc(TOTAL);
    size_t off = 0, step = 0;
    int64_t r;

    EXPECT(data != NULL);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (char)('a' + i % 26);
    /* Forever: the writer resumes when the peer reads. */
    EXPECT(diesel_conn_set_output(h->c, MARK, -1) == 0);
    fcntl(h->peer, F_SETFL, O_NONBLOCK);
    r = diesel_task_spawn("reader", hw_reader, h, 0);
    EXPECT(r > 0);
    /* Small writes, and now and then one larger than the mark. */
    while (off < TOTAL) {
        size_t n = ++step % 50 == 0 ? 3 * MARK : 1 + step % 2000;

        if (n > TOTAL - off)
            n = TOTAL - off;
        if (diesel_conn_write(h->c, data + off, n) != 0 ||
            h->c->wlen > MARK)
            h->done = 1;
        EXPECT(!h->done);
        off += n;
    }
    EXPECT(diesel_conn_flush(h->c, 10000) == 0);
    EXPECT(diesel_conn_shutdown(h->c, SHUT_WR) == 0);
    EXPECT(diesel_task_join(r, NULL, 10000) == 0);
    EXPECT(h->got == TOTAL);
    EXPECT(diesel_conn_close(h->c) == 0);
    free(data);
    return 0;
}

START_TEST(net_write_past_the_mark_resumes_when_the_peer_reads)
{
    struct hw h;
    int sv[2];

    memset(&h, 0, sizeof(h));
    /* A UNIX pair: TCP over buffers this small crawls (its window
     * updates wait for delayed acknowledgements). */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    small_buffers(sv);
    h.peer = sv[1];
    h.c = diesel_conn_create(sv[0]);
    ck_assert_ptr_nonnull(h.c);
    CHECK_RUN(hw_resume_main, &h);
    close(h.peer);
}
END_TEST

static int
hw_settings_main(void *arg)
{
    struct diesel_conn *c = arg;
    char buf[16];

    /* The default mark is 64 KiB, and a write never waits below it. */
    EXPECT(c->whigh == 65536 && c->wtimeout == -1);
    EXPECT(diesel_conn_set_output(NULL, 10, 10) == -1 && errno == EINVAL);
    EXPECT(diesel_conn_set_output(c, 10, -2) == -1 && errno == EINVAL);
    EXPECT(diesel_conn_write(c, "held", 4) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 50) == 0);
    /* Lowering the mark below what is buffered: the next write sends
     * that, and buffers its own bytes if they fit below the mark. */
    EXPECT(diesel_conn_set_output(c, 2, 1000) == 0);
    EXPECT(diesel_conn_write(c, "!", 1) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 4);
    EXPECT(memcmp(buf, "held", 4) == 0);
    EXPECT(c->wlen == 1);
    EXPECT(diesel_conn_write(c, "?!", 2) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 1);
    EXPECT(c->wlen == 2);
    EXPECT(diesel_conn_flush(c, 1000) == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 2);
    /* A mark of 0 buffers nothing: every write goes out at once. */
    EXPECT(diesel_conn_set_output(c, 0, 1000) == 0);
    EXPECT(diesel_conn_write(c, "now", 3) == 0);
    EXPECT(c->wlen == 0);
    EXPECT(peer_read(buf, sizeof(buf), 1000) == 3);
    EXPECT(memcmp(buf, "now", 3) == 0);
    EXPECT(diesel_conn_close(c) == 0);
    return 0;
}

START_TEST(net_output_mark_defaults_and_settings)
{
    struct diesel_conn *c;

    tcp_pair(wsv);
    c = diesel_conn_create(wsv[0]);
    ck_assert_ptr_nonnull(c);
    CHECK_RUN(hw_settings_main, c);
    close(wsv[1]);
}
END_TEST

Suite *
diesel_net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc;

    tc = tcase_create("echo");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, net_echo_v4_with_green_client);
    tcase_add_test(tc, net_echo_v6_with_green_client);
    tcase_add_test(tc, net_echo_unix_with_green_client);
    tcase_add_test(tc, net_echo_v4_with_child_process_client);
    tcase_add_test(tc, net_echo_v6_with_child_process_client);
    tcase_add_test(tc, net_echo_unix_with_child_process_client);
    suite_add_tcase(s, tc);

    tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, net_recv_exactly_and_until_survive_one_byte_chunks);
    tcase_add_test(tc, net_overlong_line_is_emsgsize_and_stays_buffered);
    tcase_add_test(tc, net_recv_exactly_reassembles_large_messages);
    tcase_add_test(tc, net_eof_is_zero_and_reset_is_an_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc,
        net_peer_reset_while_writing_is_econnreset_or_epipe_not_sigpipe);
    tcase_add_test(tc, net_half_close_gives_eof_and_the_conn_can_still_send);
    tcase_add_test(tc, net_recv_times_out);
    tcase_add_test(tc, net_send_times_out_when_the_peer_never_reads);
    tcase_add_test(tc, net_connect_times_out_on_a_full_backlog);
    tcase_add_test(tc, net_unix_connect_times_out_on_a_full_backlog);
    tcase_add_test(tc, net_connect_to_nothing_is_refused);
    tcase_add_test(tc, net_cancel_while_parked_in_recv_is_ecanceled);
    tcase_add_test(tc, net_one_receiver_at_a_time_but_a_sender_beside_it);
    tcase_add_test(tc, net_peek_shows_buffered_bytes_in_place_until_consumed);
    tcase_add_test(tc, net_peek_without_a_timeout_parks_until_bytes_or_a_close);
    tcase_add_test(tc, net_calls_outside_a_green_thread_fail_with_eperm);
    tcase_add_test(tc, net_conn_create_takes_stream_sockets_only);
    tcase_add_test(tc, net_bad_addresses_are_einval);
    tcase_add_test(tc,
        net_closed_descriptor_reused_at_once_gets_no_stale_event);
    tcase_add_test(tc, net_signals_every_millisecond_are_absorbed);
    suite_add_tcase(s, tc);

    tc = tcase_create("servers");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, net_max_conns_is_honoured);
    tcase_add_test(tc, net_peer_strings_name_v4_v6_and_unix);
    tcase_add_test(tc, net_unix_listen_replaces_a_stale_socket_only);
    tcase_add_test(tc, net_server_close_stops_accepting_but_connections_go_on);
    tcase_add_test(tc, net_server_closed_before_its_acceptor_runs);
    tcase_add_test(tc, net_names_resolve_on_a_helper_thread);
    tcase_add_test(tc, net_resolve_gives_the_addresses_connect_would_try);
    tcase_add_test(tc, net_accept_waits_out_emfile_without_spinning);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, net_2000_concurrent_echo_connections);
    tcase_add_test(tc, net_write_buffers_until_flush_send_or_a_waiting_receive);
    tcase_add_test(tc, net_pipelined_replies_go_out_in_batches);
    suite_add_tcase(s, tc);

    tc = tcase_create("output");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, net_write_past_the_mark_parks_then_times_out);
    tcase_add_test(tc, net_write_past_the_mark_resumes_when_the_peer_reads);
    tcase_add_test(tc, net_output_mark_defaults_and_settings);
    suite_add_tcase(s, tc);
    return s;
}
