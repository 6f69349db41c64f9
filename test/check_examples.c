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
#include "proc.h"
#include "sanitize.h"

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

/* Start examples/NAME [OPT VAL] on addr and wait for its "listening on"
 * line. */
static void
start_opt(struct service *s, const char *name, const char *opt,
    const char *val, const char *addr)
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
#ifdef DIESEL__ASAN
        /* The examples are built as this is.  ASan holds freed memory in
         * quarantine, 256 MiB of it, which the RSS checks would take for
         * growth. */
        const char *o = getenv("ASAN_OPTIONS");
        char opts[1024];

        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0",
            o != NULL ? o : "", o != NULL && *o != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
#endif
        /* Its "PID n" line is for an operator, not the test's output. */
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        if (opt != NULL)
            execl(path, name, opt, val, addr, (char *)NULL);
        else
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

static void
start(struct service *s, const char *name, const char *addr)
{
    start_opt(s, name, NULL, NULL, addr);
}

/* Stop it with sig; it must exit 0, within 30 s (a server ending 10,000
 * connections took over 5 s on a machine busy with other builds).
 * Returns its log. */
static const char *
stop(struct service *s, int sig)
{
    int st = 0;
    int64_t end = t_now_ms() + 30000;

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

/* Read until text has arrived (ms at most); the bytes read. */
static char *
expect_within(int fd, const char *text, int64_t ms)
{
    static char buf[65536];
    size_t n = 0;
    int64_t end = t_now_ms() + ms;

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

/* A wait for an answer that comes at once on a quiet machine: generous,
 * since a loaded one (ASan beside other suites) took over 5 s. */
static char *
expect(int fd, const char *text)
{
    return expect_within(fd, text, t_slow(20000));
}

static void
say(int fd, const char *text)
{
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* Read into out (NUL-terminated) until the end of the stream, or until
 * ms have passed. */
static void
read_all(int fd, char *out, size_t size, int64_t ms)
{
    size_t n = 0;
    int64_t end = t_now_ms() + ms;

    while (n < size - 1 && t_now_ms() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t r;

        if (poll(&p, 1, 100) != 1)
            continue;
        if ((r = read(fd, out + n, size - 1 - n)) <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
}

/* What the server answers to request (sent whole, then the write side
 * shut): the exact bytes, up to the end of the stream. */
static void
answer(int port, const char *request, char *out, size_t size)
{
    int fd = dial(port);

    say(fd, request);
    shutdown(fd, SHUT_WR);
    read_all(fd, out, size, t_slow(5000));
    close(fd);
}

/*
 * A client that pipelines count copies of req and never reads what comes
 * back: the server's RSS stays within limit_kb of where it began, while
 * other(port) is served again and again.  The requests go in writes of up
 * to 64 KiB, as a pipelining client sends them (one request a write lets
 * the server flush its output each time it waits for the next); sending
 * stops when the server has taken nothing for a second (it has stopped
 * reading: its handler waits for this client to read).  Then other() runs
 * for a second more, five times at least, to give a server that buffers
 * without bound the time to show it.
 */
static void
never_reads(struct service *s, const char *req, size_t count, long limit_kb,
    void (*other)(int port))
{
    size_t reqlen = strlen(req), per = 65536 / reqlen, total = count * reqlen;
    char *block = malloc(per * reqlen);
    long rss0 = rss_kb(s->pid), max = rss0;
    int fd = dial(s->port), served = 0;
    size_t sent = 0;
    int64_t idle_since = t_now_ms(), end;

    ck_assert_ptr_nonnull(block);
    ck_assert_int_gt(rss0, 0);
    for (size_t i = 0; i < per; i++)
        memcpy(block + i * reqlen, req, reqlen);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (sent < total && t_now_ms() - idle_since < 1000) {
        struct pollfd p = { fd, POLLOUT, 0 };
        size_t off = sent % (per * reqlen), len = per * reqlen - off;
        ssize_t n;

        if (len > total - sent)
            len = total - sent;
        if (poll(&p, 1, 100) == 1 && (n = write(fd, block + off, len)) > 0) {
            sent += (size_t)n;
            idle_since = t_now_ms();
        }
        if (rss_kb(s->pid) > max)
            max = rss_kb(s->pid);
    }
    end = t_now_ms() + 1000;
    while (served < 5 || t_now_ms() < end) {
        other(s->port);
        served++;
        if (rss_kb(s->pid) > max)
            max = rss_kb(s->pid);
    }
    ck_assert_msg(max - rss0 <= limit_kb, "RSS grew from %ld to %ld kB "
        "(%zu bytes sent)", rss0, max, sent);
    close(fd);
    free(block);
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
    ck_assert_ptr_nonnull(strstr(out,
        "usage: echo [-t N] [[HOST:]PORT | PATH]"));
    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/echo "
        "999.1.1.1:80 2>&1", t_dir()), 1);
    ck_assert_ptr_nonnull(strstr(out, "{echo} ERROR:cannot listen on "
        "999.1.1.1:80"));
}
END_TEST

static void
echo_other(int port)
{
    int fd = dial(port);

    say(fd, "still here\n");
    expect(fd, "still here\n");
    close(fd);
}

/* 256 MiB to echo from a client that never reads: echo stops reading
 * once its send waits, so the kernel's buffers hold the rest. */
START_TEST(echo_stays_bounded_under_a_client_that_never_reads)
{
    struct service s;

    start(&s, "echo", "127.0.0.1:0");
    never_reads(&s, "0123456789abcdef", (size_t)16 << 20, 16384,
        echo_other);
    stop(&s, SIGTERM);
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

static void
http_other(int port)
{
    int fd = dial(port);

    say(fd, "GET / HTTP/1.0\r\n\r\n");
    expect(fd, "Hello, World!\n");
    close(fd);
}

START_TEST(httphello_stays_bounded_under_a_client_that_never_reads)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct service s;

    start(&s, "httphello", "127.0.0.1:0");
    never_reads(&s, req, 1000000, 16384, http_other);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(httphello_answers_a_bad_content_length_with_400)
{
    static const char *const lengths[] = {
        "-5", "abc", "", "12abc", "0x10", "99999999999999999999999", "+3",
    };
    struct service s;
    char req[256], out[1024];

    start(&s, "httphello", "127.0.0.1:0");
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: %s\r\n\r\nabc", lengths[i]);
        answer(s.port, req, out, sizeof(out));
        ck_assert_msg(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0,
            "Content-Length '%s': %s", lengths[i], out);
    }
    /* A good one, with spaces after it, is still read and ignored. */
    answer(s.port, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Length: 3 \r\n\r\nabc", out, sizeof(out));
    ck_assert_msg(strstr(out, "200 OK") != NULL &&
        strstr(out, "Hello, World!\n") != NULL, "%s", out);
    stop(&s, SIGTERM);
}
END_TEST

/*
 * A body that comes one byte every 100 ms would never trip a timeout per
 * receive; the request's deadline (-d, 1 s here) ends it with 408.  So
 * does a head that stops half way.
 */
START_TEST(httphello_request_deadline_ends_a_slow_body_with_408)
{
    struct service s;
    char out[1024];
    int fd;
    size_t n = 0;
    int64_t t0, end;

    start_opt(&s, "httphello", "-d", "1000", "127.0.0.1:0");
    fd = dial(s.port);
    t0 = t_now_ms();
    say(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    end = t0 + t_slow(10000);
    out[0] = '\0';
    while (t_now_ms() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t r;

        if (poll(&p, 1, 100) == 1) {
            if ((r = read(fd, out + n, sizeof(out) - 1 - n)) <= 0)
                break;
            n += (size_t)r;
            out[n] = '\0';
        } else if (write(fd, "b", 1) != 1) {
            break;
        }
    }
    close(fd);
    ck_assert_msg(strncmp(out, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0,
        "got '%s'", out);
    /* Not before the deadline: the bytes kept coming. */
    ck_assert_int_ge(t_now_ms() - t0, 990);
    /* A head cut short gets the same. */
    fd = dial(s.port);
    say(fd, "GET / HT");
    read_all(fd, out, sizeof(out), t_slow(10000));
    close(fd);
    ck_assert_msg(strncmp(out, "HTTP/1.1 408 ", 13) == 0, "got '%s'", out);
    /* And the option is checked. */
    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/httphello -d 0 "
        "2>&1", t_dir()), 2);
    ck_assert_ptr_nonnull(strstr(out, "usage: httphello [-t N] [-d MS]"));
    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/httphello -d "
        "86400001 2>&1", t_dir()), 2);
    ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/httphello -d 5x "
        "2>&1", t_dir()), 2);
    stop(&s, SIGTERM);
}
END_TEST

/* ---- redisping -------------------------------------------------------- */

/* redis-cli's answer to a command given the wrong count of arguments:
 * redis-server's words (redis-cli 7 adds an empty line after an error
 * when not on a terminal). */
static void
wrong_args(const char *out, const char *cmd)
{
    char want[128];

    snprintf(want, sizeof(want), "ERR wrong number of arguments for '%s' "
        "command\n", cmd);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0 &&
        strspn(out + strlen(want), "\n") == strlen(out + strlen(want)),
        "'%s', not '%s'", out, want);
}

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
    /* A known command given another count of arguments is refused as
     * redis-server refuses it, not run on part of them (PING a b
     * answered a). */
    ck_assert_int_eq(sh(out, sizeof(out), CLI "ping a b", s.port), 0);
    wrong_args(out, "ping");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "ping hello", s.port), 0);
    ck_assert_str_eq(out, "hello\n");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "echo", s.port), 0);
    wrong_args(out, "echo");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "get a b", s.port), 0);
    wrong_args(out, "get");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "set onlykey", s.port), 0);
    wrong_args(out, "set");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "del", s.port), 0);
    wrong_args(out, "del");
    ck_assert_int_eq(sh(out, sizeof(out), CLI "DBSIZE x", s.port), 0);
    wrong_args(out, "dbsize");
    /* Inline, the same answer, and the connection goes on. */
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'PING a b\\r\\nPING\\r\\n' "
        "| timeout 10 nc -N 127.0.0.1 %d", s.port), 0);
    ck_assert_str_eq(out, "-ERR wrong number of arguments for 'ping' "
        "command\r\n+PONG\r\n");
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

static void
redis_other(int port)
{
    int fd = dial(port);

    say(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    close(fd);
}

/* The case: a 1 MiB value, then 1,500 GETs of it (10.5 KB of
 * requests) from a client that never reads; it took the server from 495
 * MiB to 1.5 GiB in 4 s. */
START_TEST(redisping_stays_bounded_under_a_client_that_never_reads)
{
    static const char req[] = "GET k\r\n";
    enum { MIB = 1 << 20 };
    struct service s;
    char *set = malloc(MIB + 64);
    int fd, n;

    ck_assert_ptr_nonnull(set);
    start(&s, "redisping", "127.0.0.1:0");
    n = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", MIB);
    memset(set + n, 'v', MIB);
    memcpy(set + n + MIB, "\r\n", 2);
    fd = dial(s.port);
    for (size_t off = 0; off < (size_t)n + MIB + 2; ) {
        ssize_t w = write(fd, set + off, (size_t)n + MIB + 2 - off);
        ck_assert_int_gt(w, 0);
        off += (size_t)w;
    }
    expect(fd, "+OK\r\n");
    close(fd);
    free(set);
    never_reads(&s, req, 1500, 32768, redis_other);
    stop(&s, SIGTERM);
}
END_TEST

START_TEST(redisping_protocol_errors_are_answered_and_close)
{
    struct service s;
    char out[4096], req[1024];
    int n;

    start(&s, "redisping", "127.0.0.1:0");
    /* A bulk string not followed by CRLF: the error, then the end (the
     * PING after it is not run). */
    answer(s.port, "*1\r\n$3\r\nabcXYPING\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "-ERR Protocol error: no CRLF after a bulk "
        "string\r\n");
    answer(s.port, "*1\r\n$\r\nPING\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "-ERR Protocol error: bad bulk string\r\n");
    answer(s.port, "*\r\nPING\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "-ERR Protocol error: invalid multibulk "
        "length\r\n");
    /* 64 arguments are served; 65 are refused, never cut. */
    n = snprintf(req, sizeof(req), "SET k1 v\r\nDEL");
    for (int i = 1; i <= 63; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, " k%d", i);
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    answer(s.port, req, out, sizeof(out));
    ck_assert_str_eq(out, "+OK\r\n:1\r\n");
    snprintf(req + n, sizeof(req) - (size_t)n, " k64\r\nPING\r\n");
    answer(s.port, req, out, sizeof(out));
    ck_assert_str_eq(out, "+OK\r\n-ERR Protocol error: too many arguments "
        "(at most 64)\r\n");
    n = snprintf(req, sizeof(req), "*65\r\n");
    for (int i = 0; i < 65; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "$3\r\nDEL\r\n");
    snprintf(req + n, sizeof(req) - (size_t)n, "PING\r\n");
    answer(s.port, req, out, sizeof(out));
    ck_assert_str_eq(out, "-ERR Protocol error: too many arguments "
        "(at most 64)\r\n");
    /* A command name with CR, LF and a control byte: one error line,
     * escaped, and the next request is answered in frame. */
    answer(s.port, "*1\r\n$11\r\nfoo\r\nbar\x01'\\\r\nPING\r\n", out,
        sizeof(out));
    ck_assert_str_eq(out, "-ERR unknown command "
        "'foo\\r\\nbar\\x01\\'\\\\'\r\n+PONG\r\n");
    /* A long one is cut, and says so. */
    answer(s.port, "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeee\r\n"
        "PING\r\n", out, sizeof(out));
    ck_assert_str_eq(out, "-ERR unknown command "
        "'aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd...'\r\n+PONG\r\n");
    /* The server goes on. */
    redis_other(s.port);
    stop(&s, SIGTERM);
}
END_TEST

/* ---- chat ------------------------------------------------------------- */

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

/*
 * The case: 1 MB of "/who" from one client that never reads, with
 * 20 members that do not read either.  Its outbox fills at once, and each
 * line that does not fit used to leak (RSS from 2 to 71 MiB, kept after
 * all had left); now it is dropped and counted.
 */
START_TEST(chat_who_flood_leaks_nothing)
{
    enum { IDLE = 20, FLOOD = 5 * 200000 };
    struct service s;
    int watcher, idle[IDLE], flooder;
    char *who = malloc(FLOOD), name[64];
    long rss0, rss1;
    size_t sent = 0;

    ck_assert_ptr_nonnull(who);
    for (size_t i = 0; i < FLOOD; i += 5)
        memcpy(who + i, "/who\n", 5);
    start(&s, "chat", "127.0.0.1:0");
    watcher = dial(s.port);
    expect(watcher, "welcome");
    for (int i = 0; i < IDLE; i++) {
        idle[i] = dial(s.port);
        snprintf(name, sizeof(name), "* guest%d joined", i + 2);
        expect(watcher, name);
    }
    flooder = dial(s.port);
    expect(watcher, "joined");
    rss0 = rss_kb(s.pid);
    while (sent < FLOOD) {
        ssize_t w = write(flooder, who + sent, FLOOD - sent);
        ck_assert_int_gt(w, 0);
        sent += (size_t)w;
    }
    /* Lines are handled in order: once this one is out, the flood is
     * done. */
    say(flooder, "/nick flooder\n");
    expect_within(watcher, "is now flooder", t_slow(20000));
    rss1 = rss_kb(s.pid);
    ck_assert_msg(rss1 - rss0 < 8192, "RSS grew from %ld to %ld kB", rss0,
        rss1);
    close(flooder);
    for (int i = 0; i < IDLE; i++)
        close(idle[i]);
    close(watcher);
    free(who);
    stop(&s, SIGTERM);
}
END_TEST

/*
 * A member that never reads: once its socket is full, the line being sent
 * to it waits 10 s and the member is disconnected; the others see it
 * leave.
 */
START_TEST(chat_disconnects_a_member_that_never_reads)
{
    struct service s;
    int a, slow, small = 4096;
    char line[1000];
    int64_t t0;

    memset(line, 'x', sizeof(line));
    line[sizeof(line) - 1] = '\n';
    start(&s, "chat", "127.0.0.1:0");
    a = dial(s.port);
    expect(a, "welcome");
    slow = dial(s.port);
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    expect(a, "* guest2 joined");
    /* Lines for it, under chat's 1 KiB limit, until it is dropped: more
     * than the kernel's buffers on both sides hold.  Not a fixed amount:
     * chat drops a line that the member's outbox has no room for, and on
     * a loaded machine, where its writer runs seldom, a fixed 8 MB could
     * all but go into the outbox's drops and never fill the buffers. */
    t0 = t_now_ms();
    {
        char got[4096];
        size_t n = 0;
        int64_t end = t0 + t_slow(60000);

        got[0] = '\0';
        while (strstr(got, "* guest2 left") == NULL && t_now_ms() < end) {
            struct pollfd pf = { a, POLLIN, 0 };

            for (int i = 0; i < 100; i++)
                ck_assert_int_eq(write(a, line, sizeof(line)),
                    (ssize_t)sizeof(line));
            if (poll(&pf, 1, 10) == 1) {
                ssize_t r;

                if (n == sizeof(got) - 1) {
                    /* Keep the last part: the line may straddle. */
                    memmove(got, got + n / 2, n - n / 2);
                    n -= n / 2;
                }
                r = read(a, got + n, sizeof(got) - 1 - n);
                ck_assert_int_gt(r, 0);
                n += (size_t)r;
                got[n] = '\0';
            }
        }
        ck_assert_msg(strstr(got, "* guest2 left") != NULL,
            "guest2 was never dropped; a got '%s'", got);
    }
    /* Not before the 10 s that a line has to go. */
    ck_assert_int_ge(t_now_ms() - t0, 9900);
    close(slow);
    close(a);
    stop(&s, SIGTERM);
}
END_TEST

/*
 * Each example prints "PID n, serving ADDR" on its standard output once
 * it listens (and can be signalled), so that `dconsole n` needs no pgrep.
 */
START_TEST(examples_print_their_pid_and_address)
{
    static const char *const names[] = { "echo", "httphello", "redisping",
        "chat" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256], buf[512], want[128];
        size_t len = 0;
        int p[2], st = 0;
        int64_t end = t_now_ms() + t_slow(10000);
        pid_t pid;

        snprintf(path, sizeof(path), "%s/../examples/%s", t_dir(),
            names[i]);
        ck_assert_int_eq(pipe(p), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);

            dup2(p[1], 1);
            dup2(null, 2);
            close(p[0]);
            close(p[1]);
            execl(path, names[i], "127.0.0.1:0", (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        while (memchr(buf, '\n', len) == NULL && t_now_ms() < end &&
            len < sizeof(buf) - 1) {
            struct pollfd pf = { p[0], POLLIN, 0 };
            ssize_t n;

            if (poll(&pf, 1, 100) != 1)
                continue;
            if ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) <= 0)
                break;
            len += (size_t)n;
        }
        buf[len] = '\0';
        snprintf(want, sizeof(want), "PID %ld, serving 127.0.0.1:",
            (long)pid);
        ck_assert_msg(strncmp(buf, want, strlen(want)) == 0 &&
            atoi(buf + strlen(want)) > 0, "%s printed [%s], wanted "
            "[%sPORT]", names[i], buf, want);
        kill(pid, SIGTERM);
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %#x",
            names[i], st);
        close(p[0]);
    }
}
END_TEST

/* collect: one JSON line of stats per service; a stopped one is reported
 * within the timeout, not waited for; -p the Prometheus text format. */
START_TEST(collect_reports_each_service_and_a_silent_one_in_time)
{
    char dir[64], rdv[96], prom[128], want[256], *out = malloc(1 << 16);
    struct service a, b;
    int64_t t0;
    FILE *f;
    size_t n;

    ck_assert_ptr_nonnull(out);
    strcpy(dir, "/tmp/diesel-collect-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rdv, sizeof(rdv), "%s/r", dir);
    snprintf(prom, sizeof(prom), "%s/diesel.prom", dir);
    setenv("DIESEL_CONSOLE_DIR", rdv, 1);
    start(&a, "echo", "127.0.0.1:0");
    start(&b, "echo", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, 1 << 16, "%s/../examples/collect -n 1 -t 5",
        t_dir()), 0);
    snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\",\"stats\":"
        "{\"uptime_s\":", (long)a.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\",\"stats\":"
        "{\"uptime_s\":", (long)b.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    ck_assert_int_eq(kill(b.pid, SIGSTOP), 0);
    t0 = t_now_ms();
    ck_assert_int_eq(sh(out, 1 << 16, "%s/../examples/collect -n 1 -t 0.5",
        t_dir()), 0);
    ck_assert_int_lt(t_now_ms() - t0, 10000);
    snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\",\"error\":"
        "\"PID %ld did not answer within 0.5 s: it is stopped", (long)b.pid,
        (long)b.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\",\"stats\":",
        (long)a.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    ck_assert_int_eq(sh(out, 1 << 16, "%s/../examples/collect -n 1 -t 0.5 "
        "-p %s", t_dir(), prom), 0);
    ck_assert_str_eq(out, "");
    f = fopen(prom, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, (1 << 16) - 1, f);
    out[n] = '\0';
    fclose(f);
    snprintf(want, sizeof(want), "diesel_up{pid=\"%ld\",name=\"echo\"} 1\n",
        (long)a.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    snprintf(want, sizeof(want), "diesel_up{pid=\"%ld\",name=\"echo\"} 0\n",
        (long)b.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    snprintf(want, sizeof(want), "diesel_green_threads{pid=\"%ld\","
        "name=\"echo\"} ", (long)a.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    ck_assert_int_eq(kill(b.pid, SIGCONT), 0);
    stop(&a, SIGTERM);
    stop(&b, SIGTERM);
    ck_assert_int_eq(sh(out, 1 << 16, "rm -rf %s", dir), 0);
    free(out);
}
END_TEST

/* ---- -t N: many loops (examples/cores.h) ------------------------------ */

/* C of the "loop K of N: C connections" line in log, -1 if none. */
static long
loop_conns(const char *log, int k, int n)
{
    char want[64];
    const char *at;

    snprintf(want, sizeof(want), "loop %d of %d: ", k, n);
    at = strstr(log, want);
    return at != NULL ? atol(at + strlen(want)) : -1;
}

/* count connections, one at a time, each echoing its own line. */
static void
echo_many(int port, int count)
{
    char line[64];

    for (int i = 0; i < count; i++) {
        int fd = dial(port);

        snprintf(line, sizeof(line), "line %d of %d\n", i, count);
        say(fd, line);
        expect_within(fd, line, t_slow(5000));
        close(fd);
    }
}

/* The loops' counts add up to total, and each loop had at least min. */
static void
spread(const char *log, int n, long total, long min)
{
    long sum = 0;

    for (int k = 1; k <= n; k++) {
        long c = loop_conns(log, k, n);

        ck_assert_msg(c >= min, "loop %d of %d served %ld: %s", k, n, c,
            log);
        sum += c;
    }
    ck_assert_msg(sum == total, "%ld connections of %ld: %s", sum, total,
        log);
}

START_TEST(echo_with_two_loops_spreads_connections_over_both_losing_none)
{
    struct service s;
    const char *log;

    start_opt(&s, "echo", "-t", "2", "127.0.0.1:0");
    ck_assert_ptr_nonnull(strstr(s.log,
        "2 loops on 2 threads, each accepting on its own socket"));
    /* The kernel hashes each connection's address and port: 200 of them
     * all on one socket would be a 2^-199 chance. */
    echo_many(s.port, 200);
    log = stop(&s, SIGTERM);
    spread(log, 2, 200, 1);
}
END_TEST

/* The console sees both loops of echo -t 2: `dconsole PID tasks` shows
 * each loop's section, with the green threads of the clients it serves
 * (connected, each one echoed once, so that each has its green thread),
 * as LOOP:ID; `loops` lists both, turning. */
START_TEST(echo_with_two_loops_console_shows_both_loops_green_threads)
{
    enum { CLIENTS = 40 };
    struct service s;
    char out[65536], line[64], *core2;
    int fd[CLIENTS], mains = 0, cores = 0;

    start_opt(&s, "echo", "-t", "2", "127.0.0.1:0");
    for (int i = 0; i < CLIENTS; i++) {
        fd[i] = dial(s.port);
        snprintf(line, sizeof(line), "client %d\n", i);
        say(fd[i], line);
        expect_within(fd[i], line, t_slow(5000));
    }
    ck_assert_int_eq(sh(out, sizeof(out), "%s %d tasks 2>&1",
        t_tool_path("dconsole"), (int)s.pid), 0);
    ck_assert_msg(strncmp(out, "loop main (thread ", 18) == 0, "%s", out);
    core2 = strstr(out, "\nloop core-2 (thread ");
    ck_assert_msg(core2 != NULL, "%s", out);
    for (const char *p = out; (p = strstr(p, "\nmain:")) != NULL; p++)
        mains += strncmp(strchr(p, ' ') + strspn(strchr(p, ' '), " "),
            "conn 127.0.0.1:", 15) == 0 && p < core2;
    for (const char *p = core2; (p = strstr(p, "\ncore-2:")) != NULL; p++)
        cores += strncmp(strchr(p, ' ') + strspn(strchr(p, ' '), " "),
            "conn 127.0.0.1:", 15) == 0;
    /* The kernel spreads 40 connections: all on one socket would be a
     * 2^-39 chance. */
    ck_assert_msg(mains > 0 && cores > 0 && mains + cores == CLIENTS,
        "main %d, core-2 %d:\n%s", mains, cores, out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s %d loops 2>&1",
        t_tool_path("dconsole"), (int)s.pid), 0);
    ck_assert_msg(strstr(out, "main *") != NULL &&
        strstr(out, "core-2 ") != NULL, "%s", out);
    ck_assert_msg(strstr(strstr(out, "core-2 "), "turning") != NULL, "%s",
        out);
    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    spread(stop(&s, SIGTERM), 2, CLIENTS, 1);
}
END_TEST

START_TEST(echo_with_three_loops_falls_back_to_one_acceptor_round_robin)
{
    struct service s;
    const char *log;

    /* As on a system whose SO_REUSEPORT does not balance. */
    setenv("DIESEL_REUSEPORT", "0", 1);
    start_opt(&s, "echo", "-t", "3", "127.0.0.1:0");
    unsetenv("DIESEL_REUSEPORT");
    ck_assert_ptr_nonnull(strstr(s.log, "127.0.0.1:0 cannot be shared by 3 "
        "loops (Operation not supported): one acceptor hands connections "
        "to the others"));
    ck_assert_ptr_nonnull(strstr(s.log, "3 loops on 3 threads, one "
        "acceptor"));
    echo_many(s.port, 90);
    log = stop(&s, SIGTERM);
    spread(log, 3, 90, 30);
}
END_TEST

START_TEST(examples_refuse_a_bad_loop_count)
{
    static const char *const names[] = { "echo", "httphello", "redisping" };
    char out[1024];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/%s -t 0 "
            "2>&1", t_dir(), names[i]), 2);
        ck_assert_msg(strstr(out, "[-t N]") != NULL, "%s", out);
        ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/%s -t 65 "
            "2>&1", t_dir(), names[i]), 2);
        ck_assert_int_eq(sh(out, sizeof(out), "%s/../examples/%s -t x "
            "2>&1", t_dir(), names[i]), 2);
    }
}
END_TEST

START_TEST(httphello_with_two_loops_answers_every_request_on_both)
{
    struct service s;
    char out[4096];
    const char *log;

    start_opt(&s, "httphello", "-t", "2", "127.0.0.1:0");
    for (int i = 0; i < 100; i++) {
        answer(s.port, "GET / HTTP/1.0\r\n\r\n", out, sizeof(out));
        ck_assert_msg(strstr(out, "Hello, World!\n") != NULL, "%s", out);
    }
    /* And wrk's keep-alive connections, with no error. */
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 20 wrk -t 1 -c 20 -d 1 "
        "http://127.0.0.1:%d/ 2>&1", s.port), 0);
    ck_assert_msg(strstr(out, "Socket errors") == NULL &&
        strstr(out, "Non-2xx") == NULL, "wrk: %s", out);
    log = stop(&s, SIGTERM);
    ck_assert_int_gt(loop_conns(log, 1, 2), 0);
    ck_assert_int_gt(loop_conns(log, 2, 2), 0);
    ck_assert_int_ge(loop_conns(log, 1, 2) + loop_conns(log, 2, 2), 120);
}
END_TEST

START_TEST(redisping_with_two_loops_shares_its_keys_and_survives_benchmark)
{
    struct service s;
    char out[8192];
    const char *log;

    start_opt(&s, "redisping", "-t", "2", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 10 redis-cli -p %d set "
        "shared yes", s.port), 0);
    ck_assert_str_eq(out, "OK\n");
    /* Forty connections, over both loops: each finds the key. */
    for (int i = 0; i < 40; i++) {
        int fd = dial(s.port);

        say(fd, "GET shared\r\n");
        expect(fd, "$3\r\nyes\r\n");
        close(fd);
    }
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 60 redis-benchmark "
        "-p %d -c 20 -n 5000 -P 16 -t ping_inline,set,get -q 2>&1",
        s.port), 0);
    ck_assert_msg(strstr(out, "SET: ") != NULL && strstr(out, "GET: ") !=
        NULL && strstr(out, "rror") == NULL, "redis-benchmark: %s", out);
    log = stop(&s, SIGTERM);
    ck_assert_int_gt(loop_conns(log, 1, 2), 0);
    ck_assert_int_gt(loop_conns(log, 2, 2), 0);
}
END_TEST

/* Many keys, spread over redisping's tables (16, by hash) and written
 * from connections that the kernel spreads over both loops: each is found
 * with its own value, counted once, and deleted once. */
START_TEST(redisping_with_two_loops_keeps_every_one_of_many_keys)
{
    enum { KEYS = 320, PER = 64 };
    struct service s;
    char *req = malloc(64 * KEYS), *want = malloc(64 * KEYS);
    char *out = malloc(64 * KEYS);
    size_t rn, wn;

    ck_assert_ptr_nonnull(req);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(out);
    start_opt(&s, "redisping", "-t", "2", "127.0.0.1:0");
    /* Five connections of 64 SETs each, pipelined. */
    for (int c = 0; c < KEYS / PER; c++) {
        rn = wn = 0;
        for (int i = c * PER; i < (c + 1) * PER; i++) {
            rn += (size_t)sprintf(req + rn, "SET key:%d value-of-%d\r\n", i,
                i * 7);
            wn += (size_t)sprintf(want + wn, "+OK\r\n");
        }
        answer(s.port, req, out, 64 * KEYS);
        ck_assert_str_eq(out, want);
    }
    answer(s.port, "DBSIZE\r\n", out, 64 * KEYS);
    ck_assert_str_eq(out, ":320\r\n");
    /* Every value, from one connection, and a key never set. */
    rn = wn = 0;
    for (int i = KEYS - 1; i >= 0; i--) {
        char val[32];
        int n = snprintf(val, sizeof(val), "value-of-%d", i * 7);

        rn += (size_t)sprintf(req + rn, "GET key:%d\r\n", i);
        wn += (size_t)sprintf(want + wn, "$%d\r\n%s\r\n", n, val);
    }
    rn += (size_t)sprintf(req + rn, "GET key:%d\r\n", KEYS);
    wn += (size_t)sprintf(want + wn, "$-1\r\n");
    answer(s.port, req, out, 64 * KEYS);
    ck_assert_str_eq(out, want);
    /* Deleted in DELs of 63 keys (the 64th argument is DEL), each once:
     * the second DEL of a key finds nothing. */
    for (int c = 0; c < KEYS; c += 63) {
        int n = 0;
        char num[32];

        rn = (size_t)sprintf(req, "DEL");
        for (int i = c; i < c + 63 && i < KEYS; i++, n++)
            rn += (size_t)sprintf(req + rn, " key:%d", i);
        rn += (size_t)sprintf(req + rn, "\r\nDEL key:%d\r\n", c);
        snprintf(num, sizeof(num), ":%d\r\n:0\r\n", n);
        answer(s.port, req, out, 64 * KEYS);
        ck_assert_str_eq(out, num);
    }
    answer(s.port, "DBSIZE\r\n", out, 64 * KEYS);
    ck_assert_str_eq(out, ":0\r\n");
    stop(&s, SIGTERM);
    free(req);
    free(want);
    free(out);
}
END_TEST

/* collect asks every service at once: a round with three silent services
 * lasts one timeout, not three (it took 3 x -t when it asked them one
 * after another, as one process could attach only once at a time). */
START_TEST(collect_asks_every_service_at_once)
{
    char dir[64], rdv[96], want[256], *out = malloc(1 << 16);
    struct service sv[4];
    int64_t t0, took;

    ck_assert_ptr_nonnull(out);
    strcpy(dir, "/tmp/diesel-collect-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rdv, sizeof(rdv), "%s/r", dir);
    setenv("DIESEL_CONSOLE_DIR", rdv, 1);
    for (int i = 0; i < 4; i++)
        start(&sv[i], "echo", "127.0.0.1:0");
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(kill(sv[i].pid, SIGSTOP), 0);
    t0 = t_now_ms();
    ck_assert_int_eq(sh(out, 1 << 16, "%s/../examples/collect -n 1 -t 3",
        t_dir()), 0);
    took = t_now_ms() - t0;
    snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\",\"stats\":"
        "{\"uptime_s\":", (long)sv[0].pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    for (int i = 1; i < 4; i++) {
        snprintf(want, sizeof(want), "{\"pid\":%ld,\"name\":\"echo\","
            "\"error\":\"PID %ld did not answer within 3 s: it is stopped",
            (long)sv[i].pid, (long)sv[i].pid);
        ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    }
    ck_assert_msg(took < 6000, "a round took %lld ms", (long long)took);
    for (int i = 0; i < 4; i++) {
        int64_t end = t_now_ms() + 10000;

        /* Resumed, it answers the signal it holds (collect is gone by
         * then): stopped only once that is done. */
        if (i > 0) {
            ck_assert_int_eq(kill(sv[i].pid, SIGCONT), 0);
            while (strstr(sv[i].log, "refused") == NULL &&
                t_now_ms() < end)
                drain(&sv[i], 100);
        }
        stop(&sv[i], SIGTERM);
    }
    ck_assert_int_eq(sh(out, 1 << 16, "rm -rf %s", dir), 0);
    free(out);
}
END_TEST

/* collect -p of a service of two loops: each loop's figures, labelled
 * with its name (stats --json nests them under "loops"). */
START_TEST(collect_exports_each_loop_of_a_service_of_two)
{
    char dir[64], rdv[96], prom[128], want[256], *out = malloc(1 << 16);
    static const char *const loops[] = { "main", "core-2" };
    struct service s;
    FILE *f;
    size_t n;

    ck_assert_ptr_nonnull(out);
    strcpy(dir, "/tmp/diesel-collect-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(rdv, sizeof(rdv), "%s/r", dir);
    snprintf(prom, sizeof(prom), "%s/diesel.prom", dir);
    setenv("DIESEL_CONSOLE_DIR", rdv, 1);
    start_opt(&s, "echo", "-t", "2", "127.0.0.1:0");
    ck_assert_int_eq(sh(out, 1 << 16, "%s/../examples/collect -n 1 -t 5 "
        "-p %s", t_dir(), prom), 0);
    f = fopen(prom, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, (1 << 16) - 1, f);
    out[n] = '\0';
    fclose(f);
    snprintf(want, sizeof(want), "diesel_up{pid=\"%ld\",name=\"echo\"} 1\n",
        (long)s.pid);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    for (size_t i = 0; i < 2; i++) {
        static const char *const metrics[] = { "uptime_s", "switches",
            "green_threads", "console_sessions" };

        for (size_t k = 0; k < 4; k++) {
            snprintf(want, sizeof(want), "\ndiesel_%s{pid=\"%ld\","
                "name=\"echo\",loop=\"%s\"} ", metrics[k], (long)s.pid,
                loops[i]);
            ck_assert_msg(t_count(out, want) == 1, "%s in:\n%s", want, out);
        }
    }
    /* None without the loop's name, nor of the loops' wrapping. */
    snprintf(want, sizeof(want), "{pid=\"%ld\",name=\"echo\"} ",
        (long)s.pid);
    ck_assert_msg(t_count(out, want) == 1 && !strstr(out, "diesel_thread"),
        "%s", out);
    stop(&s, SIGTERM);
    ck_assert_int_eq(sh(out, 1 << 16, "rm -rf %s", dir), 0);
    free(out);
}
END_TEST

Suite *
diesel_examples_suite(void)
{
    Suite *s = suite_create("examples");
    TCase *tc = tcase_create("examples");

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, echo_answers_nc_over_tcp4_tcp6_and_unix);
    tcase_add_test(tc, examples_print_their_pid_and_address);
    tcase_add_test(tc, echo_usage_and_listen_errors_are_clear);
    tcase_add_test(tc, echo_serves_ten_thousand_connections_with_flat_memory);
    tcase_add_test(tc, httphello_answers_curl_and_wrk);
    tcase_add_test(tc, redisping_answers_redis_cli);
    tcase_add_test(tc, redisping_survives_redis_benchmark_pipelined);
    tcase_add_test(tc, chat_relays_lines_and_survives_a_reader_that_stops);
    suite_add_tcase(s, tc);

    /* -t N: many loops (issue 13). */
    tc = tcase_create("cores");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc,
        echo_with_two_loops_spreads_connections_over_both_losing_none);
    tcase_add_test(tc,
        echo_with_two_loops_console_shows_both_loops_green_threads);
    tcase_add_test(tc,
        echo_with_three_loops_falls_back_to_one_acceptor_round_robin);
    tcase_add_test(tc, examples_refuse_a_bad_loop_count);
    tcase_add_test(tc, httphello_with_two_loops_answers_every_request_on_both);
    tcase_add_test(tc,
        redisping_with_two_loops_shares_its_keys_and_survives_benchmark);
    tcase_add_test(tc, redisping_with_two_loops_keeps_every_one_of_many_keys);
    suite_add_tcase(s, tc);

    /* The fleet's collector: a case of its own, to run it alone. */
    tc = tcase_create("collect");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, collect_reports_each_service_and_a_silent_one_in_time);
    tcase_add_test(tc, collect_asks_every_service_at_once);
    tcase_add_test(tc, collect_exports_each_loop_of_a_service_of_two);
    suite_add_tcase(s, tc);

    /* Clients that misbehave (issue 9, items 8 and 9). */
    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, echo_stays_bounded_under_a_client_that_never_reads);
    tcase_add_test(tc, httphello_stays_bounded_under_a_client_that_never_reads);
    tcase_add_test(tc, httphello_answers_a_bad_content_length_with_400);
    tcase_add_test(tc, httphello_request_deadline_ends_a_slow_body_with_408);
    tcase_add_test(tc, redisping_stays_bounded_under_a_client_that_never_reads);
    tcase_add_test(tc, redisping_protocol_errors_are_answered_and_close);
    tcase_add_test(tc, chat_who_flood_leaks_nothing);
    tcase_add_test(tc, chat_disconnects_a_member_that_never_reads);
    suite_add_tcase(s, tc);
    return s;
}
