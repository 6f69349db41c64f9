/*
 * httphello: the smallest useful HTTP/1.1 server, for wrk and curl.
 *
 * SYNOPSIS
 *     httphello [-t N] [-d MS] [[HOST:]PORT | PATH]
 *                                     (default 127.0.0.1:8080, 1 loop)
 *
 * DESCRIPTION
 *     Answers every request with "200 OK" and the body "Hello, World!\n".
 *     Connections are kept alive (HTTP/1.1) unless the client says
 *     "Connection: close" or speaks HTTP/1.0 without "keep-alive".
 *     Request heads longer than 8 KiB get "431" and the connection is
 *     closed; bodies (Content-Length) are read and ignored.  A
 *     Content-Length that is not a decimal number of bytes gets "400".
 *     Each request, head and body, must arrive within one deadline, 30 s
 *     after the server starts waiting for it (-d MS sets it, up to a
 *     day): a client that sends a byte now and then gets "408" when it
 *     passes, and the connection is closed.  The live console is
 *     installed; SIGINT and SIGTERM stop it cleanly.  -t N runs N loops
 *     on N OS threads, each accepting on its own socket on the same port
 *     (cores.h); the console sees every loop's green threads (the
 *     other loops are core-2, core-3...).
 *
 * EXAMPLE
 *     $ examples/httphello &
 *     $ curl -s http://127.0.0.1:8080/
 *     Hello, World!
 *     $ wrk -c 100 -d 10 http://127.0.0.1:8080/
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include <diesel.h>

#include "cores.h"

#define HEAD_MAX 8192

static const char ok[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "Hello, World!\n";
static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";
static const char bad[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";
static const char too_slow[] =
    "HTTP/1.1 408 Request Timeout\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";

static int64_t deadline_ms = 30000;     /* -t: for each request */

/* The value of header name in head (NUL-terminated), or NULL. */
static const char *
header(const char *head, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p != NULL;
        p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            p += 3 + n;
            while (*p == ' ' || *p == '\t')
                p++;
            return p;
        }
    }
    return NULL;
}

/* A Content-Length value: digits, then the end of the line; else -1. */
static long long
length(const char *v)
{
    long long n = 0;

    if (*v < '0' || *v > '9')
        return -1;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (LLONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (*v - '0');
    }
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\r' ? n : -1;
}

/* Milliseconds left before the deadline (0 once passed: never waits). */
static int64_t
left(int64_t deadline)
{
    int64_t now = diesel_now();

    return now < deadline ? deadline - now : 0;
}

static int
http(struct diesel_conn *c, void *arg)
{
    char head[HEAD_MAX + 1], skip[4096];
    ssize_t n;

    (void)arg;
    for (;;) {
        const char *v;
        long long body = 0;
        int64_t deadline = diesel_now() + deadline_ms;
        int keep;

        n = diesel_conn_recv_until(c, "\r\n\r\n", head, HEAD_MAX,
            deadline_ms);
        if (n <= 0) {
            if (n < 0 && errno == EMSGSIZE)
                diesel_conn_send(c, too_large, sizeof(too_large) - 1, 5000);
            else if (n < 0 && errno == ETIMEDOUT)
                diesel_conn_send(c, too_slow, sizeof(too_slow) - 1, 5000);
            return 0;
        }
        head[n] = '\0';
        if (strstr(head, " HTTP/1.") == NULL) {
            diesel_conn_send(c, bad, sizeof(bad) - 1, 5000);
            return 0;
        }
        keep = strstr(head, " HTTP/1.1\r\n") != NULL;
        if ((v = header(head, "Connection")) != NULL) {
            if (strncasecmp(v, "close", 5) == 0)
                keep = 0;
            else if (strncasecmp(v, "keep-alive", 10) == 0)
                keep = 1;
        }
        if ((v = header(head, "Content-Length")) != NULL &&
            (body = length(v)) < 0) {
            diesel_conn_send(c, bad, sizeof(bad) - 1, 5000);
            return 0;
        }
        while (body > 0) {
            size_t want = body < (long long)sizeof(skip) ? (size_t)body :
                sizeof(skip);
            n = diesel_conn_recv(c, skip, want, left(deadline));
            if (n <= 0) {
                if (n < 0 && errno == ETIMEDOUT)
                    diesel_conn_send(c, too_slow, sizeof(too_slow) - 1,
                        5000);
                return 0;
            }
            body -= n;
        }
        if (diesel_conn_send(c, ok, sizeof(ok) - 1, 30000) != 0 || !keep)
            return 0;
    }
}

int
main(int argc, char **argv)
{
    int loops = 1, r;
    char *end;

    for (;;) {
        if ((r = cores_option(&argc, &argv, &loops)) < 0)
            deadline_ms = -1;
        else if (r == 0 && argc > 2 && strcmp(argv[1], "-d") == 0) {
            deadline_ms = strtoll(argv[2], &end, 10);
            if (*end != '\0' || end == argv[2] || deadline_ms > 86400000)
                deadline_ms = -1;   /* a day at most: no overflow */
            argc -= 2;
            argv += 2;
        } else
            break;
        if (deadline_ms <= 0)
            break;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-') || deadline_ms <= 0) {
        fprintf(stderr, "usage: httphello [-t N] [-d MS] [[HOST:]PORT | PATH]"
            "   (default 127.0.0.1:8080, 1 loop, 30000 ms a request)\n");
        return 2;
    }
    diesel_console_install(0);
    return cores_run("httphello", argc == 2 ? argv[1] : "127.0.0.1:8080",
        http, loops);
}
