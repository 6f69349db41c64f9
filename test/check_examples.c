/*
 * check_examples.c: the example services, run as real processes and
 * driven by real clients: nc, curl, wrk, redis-cli, redis-benchmark (from
 * Debian's netcat-openbsd, curl, wrk and redis-tools, which .ci/run
 * installs), and, for 10,000 connections, a client in this file.
 *
 * Each example listens on port 0 and logs where it listens; the test
 * reads the port from that line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

struct service {
    pid_t pid;
    int err;             /* its standard error, non-blocking */
    char log[65536];     /* what it logged so far */
    size_t loglen;
    int port;
};

static void
drain(struct service *s, int timeout_ms)
{
    struct pollfd p = { s->err, POLLIN, 0 };

    while (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = read(s->err, s->log + s->loglen,
            sizeof(s->log) - 1 - s->loglen);
        if (n <= 0)
            break;
        s->loglen += (size_t)n;
        s->log[s->loglen] = '\0';
        timeout_ms = 0;
    }
}

/* Start examples/NAME on addr and wait for its "listening on" line. */
static void
start(struct service *s, const char *name, const char *addr)
{
    char path[256];
    int p[2];
    int64_t end = t_now_ms() + 10000;
    char *at;

    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "%s/../examples/%s", t_dir(), name);
    ck_assert_int_eq(pipe(p), 0);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execl(path, name, addr, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    s->err = p[0];
    fcntl(s->err, F_SETFL, O_NONBLOCK);
    while ((at = strstr(s->log, "listening on ")) == NULL &&
        t_now_ms() < end)
        drain(s, 100);
    ck_assert_msg(at != NULL, "%s did not start: %s", name, s->log);
    at = strchr(at, '\n') ? strrchr(at, ':') : NULL;
    s->port = at ? atoi(at + 1) : 0;
}

/* Stop it with sig; it must exit 0 within 5 s.  Returns its log. */
static const char *
stop(struct service *s, int sig)
{
    int st = 0;
    int64_t end = t_now_ms() + 5000;

    kill(s->pid, sig);
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (t_now_ms() > end) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            ck_abort_msg("did not stop on signal %d: %s", sig, s->log);
        }
        drain(s, 20);
    }
    drain(s, 0);
    close(s->err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
        "status %#x, log: %s", st, s->log);
    return s->log;
}

/* Run a shell command; its standard output in out.  Returns the exit
 * status of the command. */
static int
sh(char *out, size_t size, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *f;
    size_t n;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long
rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* ---- echo --------------------------------------------------------------- */

START_TEST(echo_answers_nc_over_tcp4_tcp6_and_unix)
{
    struct service s;
    char out[256], path[108];

    start(&s, "echo", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'hello\\nworld\\n' | "
        "timeout 10 nc -N 127.0.0.1 %d", s.port), 0);
    ck_assert_str_eq(out, "hello\nworld\n");
    ck_assert_ptr_nonnull(strstr(stop(&s, SIGTERM), "{echo} INFO:stopping"));

    start(&s, "echo", "[::1]:0");
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'six\\n' | "
        "timeout 10 nc -6 -N ::1 %d", s.port), 0);
    ck_assert_str_eq(out, "six\n");
    stop(&s, SIGINT);

    snprintf(path, sizeof(path), "/tmp/diesel-echo-%d.sock", (int)getpid());
    unlink(path);
    start(&s, "echo", path);
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'unix\\n' | "
        "timeout 10 nc -N -U %s", path), 0);
    ck_assert_str_eq(out, "unix\n");
    stop(&s, SIGTERM);
    /* The socket file goes with the server. */
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(echo_usage_and_listen_errors_are_clear)
{
    char out[512];

    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/echo -h 2>&1",
        t_dir()), 2);
    ck_assert_ptr_nonnull(strstr(out, "usage: echo [[HOST:]PORT | PATH]"));
    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/echo "
        "999.1.1.1:80 2>&1", t_dir()), 1);
    ck_assert_ptr_nonnull(strstr(out, "{echo} ERROR:cannot listen on "
        "999.1.1.1:80"));
}
END_TEST

/*
 * 10,000 connections at once, each doing 10 round trips of 64 bytes; or,
 * with DIESEL_SOAK_SECONDS=N (TESTPLAN 26: CI runs it for a minute), each
 * going round and round for N seconds, memory sampled every second.
 */
START_TEST(echo_serves_ten_thousand_connections_with_flat_memory)
{
    enum { CONNS = 10000, ROUNDS = 10, SIZE = 64 };
    const char *soak_env = getenv("DIESEL_SOAK_SECONDS");
    int64_t soak = soak_env != NULL ? atoll(soak_env) : 0;
    struct service s;
    struct rlimit rl;
    struct sockaddr_in sin;
    int *fd, ep, errors = 0, done = 0, warm = 0;
    int *got, *rounds;
    char msg[SIZE], buf[4096];
    long rss_mid = 0, rss_end, rss_max = 0;
    long long total = 0;
    struct epoll_event ev, evs[512];
    int64_t end, soak_end = 0, t0, next_sample = 0;

    /* This process and the server each hold CONNS descriptors; the
     * server inherits the limit.  root may raise the hard limit too. */
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < CONNS + 100) {
        if (rl.rlim_max < CONNS + 100)
            rl.rlim_max = CONNS + 100;
        rl.rlim_cur = rl.rlim_max;
        ck_assert_msg(setrlimit(RLIMIT_NOFILE, &rl) == 0, "need %d "
            "descriptors: %s", CONNS + 100, strerror(errno));
    }
    start(&s, "echo", "127.0.0.1:0");
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)s.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = calloc(CONNS, sizeof(*fd));
    got = calloc(CONNS, sizeof(*got));
    rounds = calloc(CONNS, sizeof(*rounds));
    memset(msg, 'e', sizeof(msg));
    ep = epoll_create1(0);
    for (int i = 0; i < CONNS; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd[i], 0);
        ck_assert_int_eq(connect(fd[i], (struct sockaddr *)&sin,
            sizeof(sin)), 0);
        fcntl(fd[i], F_SETFL, O_NONBLOCK);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd[i], &ev);
    }
    /* All connected: now every one talks at once. */
    for (int i = 0; i < CONNS; i++)
        ck_assert_int_eq(write(fd[i], msg, SIZE), SIZE);
    t0 = t_now_ms();
    if (soak > 0)
        soak_end = t0 + soak * 1000;
    end = t0 + soak * 1000 + 60000;
    while (done < CONNS && t_now_ms() < end) {
        int n = epoll_wait(ep, evs, 512, 1000);

        if (rss_mid > 0 && t_now_ms() >= next_sample) {
            long r = rss_kb(s.pid);

            rss_max = r > rss_max ? r : rss_max;
            next_sample = t_now_ms() + 1000;
        }
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r = read(fd[i], buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd[i], NULL);
                done++;
                continue;
            }
            for (ssize_t j = 0; j < r; j++)
                errors += buf[j] != 'e';
            got[i] += (int)r;
            if (got[i] < SIZE)
                continue;
            errors += got[i] != SIZE;
            got[i] = 0;
            total++;
            ++rounds[i];
            if (soak > 0 ? rounds[i] >= 2 && t_now_ms() >= soak_end :
                rounds[i] == ROUNDS) {
                done++;
                continue;
            }
            /* Once every connection has made two round trips, every
             * green thread has touched what its stack will touch: from
             * then on, memory must stay flat. */
            if (rounds[i] == 2 && ++warm == CONNS)
                rss_mid = rss_kb(s.pid);
            if (write(fd[i], msg, SIZE) != SIZE)
                errors++;
        }
    }
    rss_end = rss_kb(s.pid);
    rss_max = rss_end > rss_max ? rss_end : rss_max;
    if (soak > 0)
        fprintf(stderr, "echo soak: %d connections for %.1f s, %lld round "
            "trips, %d errors; server RSS %ld kB warm, %ld kB at most, %ld "
            "kB at the end\n", CONNS, (double)(t_now_ms() - t0) / 1000.0,
            total, errors, rss_mid, rss_max, rss_end);
    ck_assert_int_eq(done, CONNS);
    ck_assert_int_eq(errors, 0);
    for (int i = 0; i < CONNS; i++) {
        if (soak > 0)
            ck_assert_int_ge(rounds[i], 2);
        else
            ck_assert_int_eq(rounds[i], ROUNDS);
    }
    /* Memory stays flat once every connection is warm: within 10%. */
    ck_assert_int_gt(rss_mid, 0);
    ck_assert_msg(rss_max <= rss_mid + rss_mid / 10 + 1024,
        "RSS grew from %ld to %ld kB", rss_mid, rss_max);
    for (int i = 0; i < CONNS; i++)
        close(fd[i]);
    close(ep);
    stop(&s, SIGTERM);
    free(fd);
    free(got);
    free(rounds);
}
END_TEST

/* ---- httphello ------------------------------------------------------------ */

START_TEST(httphello_answers_curl_and_wrk)
{
    struct service s;
    char out[4096];

    start(&s, "httphello", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 curl -s "
        "http://127.0.0.1:%d/", s.port), 0);
    ck_assert_str_eq(out, "Hello, World!\n");
    /* Two requests on one kept-alive connection. */
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 curl -sv "
        "http://127.0.0.1:%d/a http://127.0.0.1:%d/b 2>&1", s.port, s.port),
        0);
    ck_assert_ptr_nonnull(strstr(out, "Re-using existing connection"));
    /* A POST body is read and ignored; the answer is the same. */
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 curl -s -d "
        "'some=body' http://127.0.0.1:%d/", s.port), 0);
    ck_assert_str_eq(out, "Hello, World!\n");
    /* An over-long head is refused, and the server goes on. */
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 curl -s -o /dev/null "
        "-w '%%{http_code}' -H \"X-Big: $(head -c 9000 /dev/zero | "
        "tr '\\0' a)\" http://127.0.0.1:%d/", s.port), 0);
    ck_assert_str_eq(out, "431");
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 20 wrk -t 1 -c 50 -d 2 "
        "http://127.0.0.1:%d/", s.port), 0);
    ck_assert_msg(strstr(out, "requests in") != NULL &&
        strstr(out, "Socket errors") == NULL &&
        strstr(out, "Non-2xx") == NULL, "wrk: %s", out);
    stop(&s, SIGINT);
}
END_TEST

/* ---- redisping -------------------------------------------------------- */

START_TEST(redisping_answers_redis_cli)
{
    struct service s;
    char out[4096];

    start(&s, "redisping", "127.0.0.1:0");
#define CLI "timeout 10 redis-cli -p %d "
    ck_assert_int_eq(sh(out, sizeof(out), CLI "ping", s.port), 0);
    ck_assert_str_eq(out, "PONG\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "set greeting 'hello world'",
        s.port), 0);
    ck_assert_str_eq(out, "OK\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "get greeting", s.port), 0);
    ck_assert_str_eq(out, "hello world\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "dbsize", s.port), 0);
    ck_assert_str_eq(out, "1\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "del greeting nothere",
        s.port), 0);
    ck_assert_str_eq(out, "1\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "get greeting", s.port), 0);
    ck_assert_str_eq(out, "\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "flyaway now", s.port), 0);
    ck_assert_ptr_nonnull(strstr(out, "ERR unknown command"));
    /* Inline commands, as PING_INLINE sends them, and a bad array. */
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'PING\\r\\nECHO hi\\r\\n' "
        "| timeout 10 nc -N 127.0.0.1 %d", s.port), 0);
    ck_assert_str_eq(out, "+PONG\r\n$2\r\nhi\r\n");
    ck_assert_int_eq(sh(out, sizeof(out), "printf '*x\\r\\n' "
        "| timeout 10 nc -N 127.0.0.1 %d", s.port), 0);
    ck_assert_ptr_nonnull(strstr(out, "-ERR Protocol error"));
    ck_assert_int_eq(sh(out, sizeof(out), CLI "ping", s.port), 0);
    ck_assert_str_eq(out, "PONG\n");
#undef CLI
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(redisping_survives_redis_benchmark_pipelined)
{
    struct service s;
    char out[8192];

    start(&s, "redisping", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 60 redis-benchmark "
        "-p %d -c 50 -n 20000 -P 16 -t ping_inline,ping_mbulk,set,get -q "
        "2>&1", s.port), 0);
    ck_assert_msg(strstr(out, "PING_INLINE: ") != NULL &&
        strstr(out, "PING_MBULK: ") != NULL && strstr(out, "SET: ") !=
        NULL && strstr(out, "GET: ") != NULL &&
        strstr(out, "rror") == NULL, "redis-benchmark: %s", out);
    /* What SET stored is there: its 3-byte payload (-d 3). */
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 redis-cli -p %d get "
        "key:__rand_int__ | tr -d '\\n' | wc -c", s.port), 0);
    ck_assert_str_eq(out, "3\n");
    stop(&s, SIGTERM);
}
END_TEST

/* ---- chat ------------------------------------------------------------- */

static int
dial(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* Read until text has arrived (5 s at most); the bytes read. */
static char *
expect(int fd, const char *text)
{
    static char buf[65536];
    size_t n = 0;
    int64_t end = t_now_ms() + 5000;

    buf[0] = '\0';
    while (strstr(buf, text) == NULL && t_now_ms() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t r;
        if (poll(&p, 1, 100) != 1)
            continue;
        r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
    }
    ck_assert_msg(strstr(buf, text) != NULL, "wanted '%s', got '%s'", text,
        buf);
    return buf;
}

static void
say(int fd, const char *text)
{
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

START_TEST(chat_relays_lines_and_survives_a_reader_that_stops)
{
    struct service s;
    int a, b, slow;

    start(&s, "chat", "127.0.0.1:0");
    a = dial(s.port);
    expect(a, "welcome");
    b = dial(s.port);
    expect(b, "welcome");
    expect(a, "* guest2 joined");
    say(a, "/nick alice\n");
    expect(b, "* guest1 is now alice");
    say(a, "hello there\n");
    expect(b, "alice: hello there\n");
    say(b, "/who\n");
    expect(b, "* alice");
    /* A member that never reads: the room goes on without waiting. */
    slow = dial(s.port);
    expect(a, "joined");
    for (int i = 0; i < 2000; i++) {
        char line[128];
        snprintf(line, sizeof(line), "message %d with some padding to fill "
            "buffers faster ..................................\n", i);
        say(a, line);
        if (i % 100 == 99)
            expect(b, line);
    }
    say(b, "/quit\n");
    expect(a, "left");
    close(a);
    close(b);
    close(slow);
    stop(&s, SIGTERM);
}
END_TEST

Suite *
diesel_examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_answers_nc_over_tcp4_tcp6_and_unix);
    tcase_add_test(tc, echo_usage_and_listen_errors_are_clear);
    tcase_add_test(tc, echo_serves_ten_thousand_connections_with_flat_memory);
    tcase_add_test(tc, httphello_answers_curl_and_wrk);
    tcase_add_test(tc, redisping_answers_redis_cli);
    tcase_add_test(tc, redisping_survives_redis_benchmark_pipelined);
    tcase_add_test(tc, chat_relays_lines_and_survives_a_reader_that_stops);
    suite_add_tcase(s, tc);
    return s;
}
