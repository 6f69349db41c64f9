/*
 * dconsole_fetch.c: `fetch URL` in `dconsole local`, a plain HTTP/1.1 GET
 * on the library's connections, as dpython's HTTP client showed a
 * response: <Response 44174 bytes [200 OK]>, then the status line and the
 * headers, and with --body the body.
 *
 * http:// only: libc has no TLS, and https:// is refused saying so.  The
 * request asks the server to close the connection after the response, so
 * the body ends by Content-Length, by chunked encoding, or by the end of
 * the stream; one deadline (the command's timeout) covers the connect
 * and every read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diesel.h"
#include "dconsole_local.h"

#define HTTP_HEAD_MAX 8192          /* a status or header line */
#define HTTP_HEADERS_MAX 200        /* header lines in a response */
#define BODY_SHOWN_MAX (1 << 20)    /* fetch --body shows this much */

struct url {
    char addr[300];                 /* for diesel_conn_connect */
    char host[280];                 /* for Host: */
    const char *path;               /* "/..." */
};

/* http://HOST[:PORT][/PATH]: 0, or -1 with the sentence in j->err. */
static int
parse_url(struct job *j, const char *u, struct url *p)
{
    const char *h, *end, *port = NULL;
    size_t hl;

    if (strncasecmp(u, "https://", 8) == 0)
        return dc_job_error(j, "fetch %.200s: TLS is not supported: libc has "
            "none (only http:// URLs)", u);
    if (strncasecmp(u, "http://", 7) != 0)
        return dc_job_error(j, "fetch %.200s: not an http:// URL (give "
            "http://HOST[:PORT][/PATH])", u);
    h = u + 7;
    end = h + strcspn(h, "/?#");
    p->path = *end == '/' ? end : "/";
    if (*end == '?' || *end == '#')
        return dc_job_error(j, "fetch %.200s: the path must start with / "
            "(http://HOST[:PORT]/PATH?QUERY)", u);
    if (memchr(h, '@', (size_t)(end - h)) != NULL)
        return dc_job_error(j, "fetch %.200s: user names in URLs are not "
            "supported", u);
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL)
            return dc_job_error(j, "fetch %.200s: bad URL: an IPv6 address "
                "needs its closing ]", u);
        hl = (size_t)(rb + 1 - h);
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return dc_job_error(j, "fetch %.200s: bad URL: after ] comes "
                    ":PORT or the path", u);
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));

        hl = (size_t)((colon != NULL ? colon : end) - h);
        if (colon != NULL)
            port = colon + 1;
    }
    if (hl == 0 || (*h == '[' && hl <= 2))
        return dc_job_error(j, "fetch %.200s: bad URL: no host", u);
    if (hl >= 256)
        return dc_job_error(j, "fetch %.200s: bad URL: the host name is too "
            "long", u);
    if (port != NULL) {
        long v = 0;

        if (port == end)
            return dc_job_error(j, "fetch %.200s: bad URL: an empty port", u);
        for (const char *c = port; c < end; c++) {
            if (*c < '0' || *c > '9' || (v = v * 10 + (*c - '0')) > 65535)
                return dc_job_error(j, "fetch %.200s: bad URL: the port must "
                    "be a number from 1 to 65535", u);
        }
        if (v == 0)
            return dc_job_error(j, "fetch %.200s: bad URL: the port must be a "
                "number from 1 to 65535", u);
        snprintf(p->addr, sizeof(p->addr), "%.*s:%ld", (int)hl, h, v);
        snprintf(p->host, sizeof(p->host), "%.*s:%ld", (int)hl, h, v);
    } else {
        snprintf(p->addr, sizeof(p->addr), "%.*s:80", (int)hl, h);
        snprintf(p->host, sizeof(p->host), "%.*s", (int)hl, h);
    }
    for (const char *c = p->path; *c != '\0'; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return dc_job_error(j, "fetch %.200s: bad URL: a space or control "
                "byte in the path (write it as %%20...)", u);
    }
    return 0;
}

struct fetch {
    struct job *j;
    struct diesel_conn *c;
    int64_t deadline;
    size_t size;                    /* body bytes received */
    char *body;                     /* --body: what is shown */
    size_t shown;
    int cut;                        /* more came than is shown */
};

static int64_t
left(struct fetch *f)
{
    int64_t ms;

    if (f->deadline < 0)
        return -1;
    ms = f->deadline - diesel_now();
    return ms > 0 ? ms : 0;
}

/* A line of the head, its CR LF (or LF) cut off: its length, or -1 with
 * the sentence set. */
static ssize_t
head_line(struct fetch *f, char *buf, const char *what)
{
    ssize_t n = diesel_conn_readline(f->c, buf, HTTP_HEAD_MAX, left(f));

    if (n == 0)
        return dc_job_error(f->j, "fetch: the server closed the connection "
            "before the end of the %s", what);
    if (n < 0 && errno == EMSGSIZE)
        return dc_job_error(f->j, "fetch: a %s line longer than %d bytes",
            what, HTTP_HEAD_MAX);
    if (n < 0)
        return dc_job_wait_error(f->j, "fetch", errno);
    if (buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return n;
}

static void
body_keep(struct fetch *f, const char *s, size_t n)
{
    f->size += n;
    if (f->body == NULL)
        return;
    if (f->shown + n > BODY_SHOWN_MAX) {
        n = BODY_SHOWN_MAX - f->shown;
        f->cut = 1;
    }
    memcpy(f->body + f->shown, s, n);
    f->shown += n;
}

/* want bytes of body, or (want < 0) up to the end of the stream. */
static int
body_read(struct fetch *f, long long want)
{
    char buf[16384];

    while (want != 0) {
        size_t k = want < 0 || want > (long long)sizeof(buf) ? sizeof(buf) :
            (size_t)want;
        ssize_t n = diesel_conn_recv(f->c, buf, k, left(f));

        if (n == 0 && want < 0)
            return 0;
        if (n == 0)
            return dc_job_error(f->j, "fetch: the server closed the connection "
                "%lld bytes before the end of the body", want);
        if (n < 0)
            return dc_job_wait_error(f->j, "fetch", errno);
        body_keep(f, buf, (size_t)n);
        if (want > 0)
            want -= n;
    }
    return 0;
}

static int
body_chunked(struct fetch *f)
{
    char line[HTTP_HEAD_MAX];

    for (;;) {
        char *end;
        unsigned long long size;

        if (head_line(f, line, "chunked body") < 0)
            return -1;
        errno = 0;
        size = strtoull(line, &end, 16);
        if (end == line || errno != 0 || (*end != '\0' && *end != ';') ||
            size > (1ull << 40))
            return dc_job_error(f->j, "fetch: a bad chunk size line: \"%.40s\"",
                line);
        if (size == 0)
            break;
        if (body_read(f, (long long)size) != 0)
            return -1;
        if (head_line(f, line, "chunked body") < 0)
            return -1;
        if (line[0] != '\0')
            return dc_job_error(f->j, "fetch: a chunk did not end where its "
                "size said");
    }
    /* Trailers, up to the empty line. */
    for (;;) {
        ssize_t n = head_line(f, line, "chunked body");

        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
    }
}

/* Transfer-Encoding's last coding is chunked. */
static int
ends_chunked(const char *v)
{
    size_t n = strlen(v);

    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n >= 7 && strncasecmp(v + n - 7, "chunked", 7) == 0 &&
        (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ' || v[n - 8] == '\t');
}

static int
fetch_job(struct job *j)
{
    const char *u = j->argv[j->argc - 1];
    struct fetch f;
    struct url p;
    char line[HTTP_HEAD_MAX], status[HTTP_HEAD_MAX];
    char *req = NULL;
    long long length = -1;
    int chunked = 0, code, nh = 0, rc = -1, reqn;

    memset(&f, 0, sizeof(f));
    f.j = j;
    if (parse_url(j, u, &p) != 0)
        return -1;
    f.deadline = j->timeout_ms < 0 ? -1 : diesel_now() + j->timeout_ms;
    f.c = diesel_conn_connect(p.addr, left(&f));
    if (f.c == NULL) {
        int err = errno;

        if (err == ECONNREFUSED)
            return dc_job_error(j, "fetch %.200s: connection refused (nothing "
                "listens on %s)", u, p.addr);
        if (err == EADDRNOTAVAIL)
            return dc_job_error(j, "fetch %.200s: no such host", u);
        if (err == EINVAL)
            return dc_job_error(j, "fetch %.200s: bad URL: not a host", u);
        return dc_job_wait_error(j, "fetch", err);
    }
    reqn = (int)(strlen(p.path) + strlen(p.host) + 128);
    req = malloc((size_t)reqn);
    if (req != NULL)
        reqn = snprintf(req, (size_t)reqn, "GET %s HTTP/1.1\r\nHost: %s\r\n"
            "User-Agent: dconsole/%s\r\nAccept: */*\r\nConnection: "
            "close\r\n\r\n", p.path, p.host, DIESEL_VERSION_STRING);
    if (req == NULL) {
        dc_job_error(j, "fetch: out of memory");
        goto out;
    }
    if (diesel_conn_send(f.c, req, (size_t)reqn, left(&f)) != 0) {
        dc_job_wait_error(j, "fetch", errno);
        goto out;
    }
    if (head_line(&f, status, "status line") < 0)
        goto out;
    if (strncmp(status, "HTTP/1.", 7) != 0 || status[7] < '0' ||
        status[7] > '9' || status[8] != ' ' || status[9] < '1' ||
        status[9] > '5' || status[10] < '0' || status[10] > '9' ||
        status[11] < '0' || status[11] > '9' ||
        (status[12] != ' ' && status[12] != '\0')) {
        dc_job_error(j, "fetch: not an HTTP/1.x response: \"%.60s\"", status);
        goto out;
    }
    code = atoi(status + 9);
    for (;;) {
        ssize_t n = head_line(&f, line, "headers");
        char *v;

        if (n < 0)
            goto out;
        if (n == 0)
            break;
        if (++nh > HTTP_HEADERS_MAX) {
            dc_job_error(j, "fetch: more than %d header lines",
                HTTP_HEADERS_MAX);
            goto out;
        }
        /* Kept for the reply after the status; told apart as they come. */
        dc_job_printf(j, "%s\n", line);
        v = strchr(line, ':');
        if (v == NULL)
            continue;
        *v++ = '\0';
        v += strspn(v, " \t");
        if (strcasecmp(line, "Content-Length") == 0)
            length = strtoll(v, NULL, 10);
        else if (strcasecmp(line, "Transfer-Encoding") == 0)
            chunked = ends_chunked(v);
    }
    if (j->body && (f.body = malloc(BODY_SHOWN_MAX)) == NULL) {
        dc_job_error(j, "fetch: out of memory");
        goto out;
    }
    if (code == 204 || code == 304 || code < 200)
        rc = 0;
    else if (chunked)
        rc = body_chunked(&f);
    else
        rc = body_read(&f, length >= 0 ? length : -1);
    if (rc != 0)
        goto out;
    {
        /* The seed's repr first, then the headers the job holds. */
        char *headers = j->text;
        size_t hn = j->len;

        j->text = NULL;
        j->len = j->cap = 0;
        dc_job_printf(j, "<Response %zu bytes [%s]>\n", f.size, status + 9);
        dc_job_printf(j, "%s\n", status);
        if (hn > 0)
            dc_job_put(j, headers, hn);
        free(headers);
    }
    if (f.body != NULL) {
        dc_job_put(j, "\n", 1);
        /* The body as text lines; CR LF ends a line as LF does. */
        for (size_t i = 0; i < f.shown; i++) {
            if (f.body[i] == '\r' && i + 1 < f.shown &&
                f.body[i + 1] == '\n')
                continue;
            if (f.body[i] == '\0')
                dc_job_put(j, "\\x00", 4);
            else
                dc_job_put(j, f.body + i, 1);
        }
        if (f.shown > 0 && f.body[f.shown - 1] != '\n')
            dc_job_put(j, "\n", 1);
        if (f.cut)
            dc_job_printf(j, "(the body is cut at %d bytes of %zu)\n",
                BODY_SHOWN_MAX, f.size);
    }
out:
    /* A response cut short shows only why: no headers without a status. */
    if (rc != 0)
        j->len = 0;
    free(req);
    free(f.body);
    diesel_conn_close(f.c);
    return rc;
}

int
dc_local_fetch(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct job *j;
    int body = 0, k = 1;

    (void)arg;
    if (argc >= 2 && strcmp(argv[1], "--body") == 0) {
        body = 1;
        k = 2;
    }
    if (argc - k < 1 || argc - k > 2)
        return diesel_console_error(out, "usage: fetch [--body] URL "
            "[TIMEOUT]");
    if ((j = dc_job_create(fetch_job, k + 1, argv)) == NULL)
        return diesel_console_error(out, "out of memory");
    j->body = body;
    return dc_job_run(j, out, argc - k == 2 ? argv[k + 1] : NULL);
}
