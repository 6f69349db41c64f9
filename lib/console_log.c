/*
 * console_log.c: the console's `log tail [N]`, the last lines logged.
 *
 * log.c keeps the last lines written (diesel_log_keep, 1000 by default)
 * in a ring; this prints the last N of them, or all, oldest first, as
 * they were written:
 *
 *   [2026/12/07 00:42:46] {dummy} INFO:sleeping
 *   [2026/12/07 00:42:51] {dummy} INFO:sleeping
 *
 * With --json:
 *
 *   {"lines":["[2026/12/07 00:42:46] {dummy} INFO:sleeping",...],
 *    "capacity":1000,"kept":2,"total":2}
 *
 * total counts every line kept since the start: total - kept were
 * pushed out of the ring.  The ring is read under the log's lock, in one
 * go: 1000 lines take well under a millisecond.
 *
 * `log follow` streams the lines logged from then on into the session,
 * as reply lines, until the client sends anything (a line) or goes away,
 * or the session is cancelled; then the reply ends (OK).  It looks at the
 * ring every FOLLOW_MS, a timer that exists only while someone follows,
 * and sends without ever waiting for the client (console.c, streaming):
 * lines the client is not ready for, or that the ring lost before they
 * were read, are dropped and counted, and the count is said in the
 * stream as soon as the client takes lines again, and at the end:
 *
 *   following the log: Ctrl-C in dconsole stops it (a raw client sends a line)
 *   [2026/12/07 00:42:46] {dummy} INFO:sleeping
 *   (1523 lines dropped: the console did not take them in time)
 *   ...
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "console_builtins.h"
#include "internal.h"

#define FOLLOW_MS 100            /* how often log follow looks */
#define FOLLOW_CHUNK 2048        /* bytes of text per send, at most: a
                                    chunk, escaped, fits the session's
                                    buffer */

struct tail {
    struct diesel_console_out *out;
    int json;
    size_t n;            /* lines written so far */
};

static void
line(const char *text, void *arg)
{
    struct tail *t = arg;

    if (t->json) {
        diesel_console_printf(t->out, "%s", t->n > 0 ? "," : "");
        diesel__console_out_json_string(t->out, text);
    } else {
        diesel_console_printf(t->out, "%s\n", text);
    }
    t->n++;
}

int
diesel__cmd_log_tail(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "log tail [--json] [N]";
    struct tail t = { out, diesel_console_json(out), 0 };
    struct diesel__log_kept info;
    size_t n = (size_t)-1;
    char *end;

    (void)arg;
    if (argc > 2)
        return diesel_console_error(out, "usage: %s", usage);
    if (argc == 2) {
        unsigned long long v;

        errno = 0;
        v = strtoull(argv[1], &end, 10);
        if (argv[1][0] < '0' || argv[1][0] > '9' || *end != '\0' ||
            errno != 0 || v == 0)
            return diesel_console_error(out, "bad line count '%.64s': "
                "want a number of lines, 1 or more; usage: %s", argv[1],
                usage);
        if (v < (size_t)-1)
            n = (size_t)v;
    }
    if (t.json)
        diesel_console_printf(out, "{\"lines\":[");
    diesel__log_tail(n, line, &t, &info);
    if (t.json)
        diesel_console_printf(out, "],\"capacity\":%zu,\"kept\":%zu,"
            "\"total\":%llu}\n", info.capacity, info.kept,
            (unsigned long long)info.total);
    else if (info.capacity == 0)
        diesel_console_printf(out, "no lines are kept "
            "(diesel_log_keep(0))\n");
    return 0;
}

/* ---- log follow ---------------------------------------------------------- */

struct follow {
    struct diesel_console_out lines; /* copied from the ring, '\n' each */
    uint64_t dropped;                /* not sent yet said */
};

static void
copy_line(const char *text, void *arg)
{
    struct follow *f = arg;

    if (diesel_console_printf(&f->lines, "%s\n", text) < 0)
        f->dropped++;
}

/* Send f's lines in chunks cut at newlines; count what is not sent.  -1
 * once the session is over. */
static int
follow_send(struct diesel_console_out *out, struct follow *f)
{
    const char *p = f->lines.buf, *end = p + f->lines.len;

    while (p < end) {
        struct diesel_console_out part = *out;
        const char *q = p, *nl;
        uint64_t n = 0;
        int r;

        while (q < end && (q == p || (size_t)(q - p) < FOLLOW_CHUNK) &&
            (nl = memchr(q, '\n', (size_t)(end - q))) != NULL &&
            (q == p || (size_t)(nl + 1 - p) <= FOLLOW_CHUNK)) {
            q = nl + 1;
            n++;
        }
        if (q == p) {
            q = end;
            n = 1;
        }
        if (f->dropped > 0) {
            /* Said first, sent with the lines or dropped with them. */
            diesel__console_out_reset(out);
            diesel_console_printf(out, "(%llu lines dropped: the console "
                "did not take them in time)\n",
                (unsigned long long)f->dropped);
            r = out->stream->send(out->stream, out);
            diesel__console_out_reset(out);
            if (r < 0)
                return -1;
            if (r > 0)
                f->dropped = 0;
        }
        part.buf = (char *)p;
        part.len = (size_t)(q - p);
        r = f->dropped > 0 ? 0 : out->stream->send(out->stream, &part);
        if (r < 0)
            return -1;
        if (r == 0)
            f->dropped += n;
        p = q;
    }
    diesel__console_out_reset(&f->lines);
    return 0;
}

int
diesel__cmd_log_follow(struct diesel_console_out *out, int argc,
    char **argv, void *arg)
{
    struct diesel__console_stream *st = out->stream;
    struct follow f;
    uint64_t seq, lost;
    int rc = 0;

    (void)arg;
    (void)argv;
    if (argc > 1)
        return diesel_console_error(out, "usage: log follow");
    if (diesel_console_json(out))
        return diesel_console_error(out, "log follow has no JSON form: "
            "use log tail --json");
    if (st == NULL || diesel__current == NULL)
        return diesel_console_error(out, "log follow streams into a console "
            "session: run it from dconsole");
    memset(&f, 0, sizeof(f));
    diesel__console_out_init(&f.lines);
    seq = diesel__log_since((uint64_t)-1, copy_line, &f, &lost);
    diesel_console_printf(out, "following the log: Ctrl-C in dconsole "
        "stops it (a raw client sends a line)\n");
    if (st->send(st, out) < 0)
        rc = -1;
    diesel__console_out_reset(out);
    while (rc == 0 && !st->input(st) && diesel_sleep(FOLLOW_MS) == 0) {
        seq = diesel__log_since(seq, copy_line, &f, &lost);
        f.dropped += lost;
        if (f.lines.len > 0 || f.dropped > 0)
            rc = follow_send(out, &f);
    }
    diesel__console_out_fini(&f.lines);
    if (rc < 0)
        return diesel_console_error(out, "the session ended");
    diesel__console_out_reset(out);
    if (f.dropped > 0)
        diesel_console_printf(out, "(%llu lines dropped: the console did "
            "not take them in time)\n", (unsigned long long)f.dropped);
    diesel_console_printf(out, "stopped following the log\n");
    return 0;
}
