/*
 * collect: every libdiesel service's `stats --json`, once per interval,
 * for a fleet's monitoring, with no service listening on a port.
 *
 * SYNOPSIS
 *     collect [-i SECONDS] [-t SECONDS] [-n ROUNDS] [-s SIGNAL] [-p FILE]
 *
 * DESCRIPTION
 *     Each round attaches to every service of the user (of every user,
 *     for root) that can be attached to, through the library's own
 *     attaching side (diesel_console_client(3), every check dconsole
 *     makes), runs `stats --json`, and writes one JSON line per service
 *     on standard output, for a log shipper:
 *
 *         {"pid":123,"name":"echo","stats":{"uptime_s":1.5,...}}
 *
 *     A service that does not answer within -t (default 2 s) is reported,
 *     not waited for: {"pid":123,"name":"echo","error":"..."}.  The
 *     services are asked all at once, a green thread each, so that a
 *     round lasts at most -t however many of them are silent; the lines
 *     come in the order of the services listed.
 *
 *     -p FILE writes the round instead in Prometheus's text exposition
 *     format, each top-level number of the stats as diesel_<name> with
 *     pid and name labels, and diesel_up 1 or 0, into FILE (through a
 *     temporary file and rename(2), as node_exporter's textfile collector
 *     asks).  A service of several loops (diesel_loop(3)) answers
 *     {"loops":[{"loop":"main","thread":N,"reply":{...}},...]}: each
 *     loop's numbers are written with a loop="NAME" label as well,
 *
 *         diesel_switches{pid="123",name="echo",loop="core-2"} 4021
 *
 *     and a loop that did not answer has none; a service of one loop is
 *     written as ever, no loop label.  -i is the interval (default 60 s),
 *     -n the rounds (default 0: until SIGINT or SIGTERM).
 *
 * EXAMPLE
 *     $ examples/echo & examples/collect -n 1
 *     {"pid":4242,"name":"echo","stats":{"uptime_s":0.815,...}}
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <diesel.h>

struct opts {
    int64_t interval_ms;
    int64_t timeout_ms;
    long rounds;
    int signo;
    const char *prom;       /* -p FILE, or NULL */
};

/* s as a JSON string's contents: control bytes, quotes, backslashes and
 * bytes past ASCII escaped (a process name is any bytes). */
static void
put_json(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/* s as a Prometheus label value: backslash, quote and newline escaped,
 * and, as above, any byte that is not printable ASCII. */
static void
put_label(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\\\x%02x", c);
        else
            fputc(c, f);
    }
}

/* Past the JSON value at p (an object, array, string or scalar): where
 * it ends, or at the string's end if it is cut short. */
static const char *
skip_value(const char *p)
{
    int depth = 0;

    do {
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; )
                p += *p == '\\' && p[1] != '\0' ? 2 : 1;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (depth == 0) {
            while (*p != '\0' && *p != ',' && *p != '}' && *p != ']')
                p++;
            return p;
        }
        if (*p != '\0')
            p++;
    } while (*p != '\0' && depth > 0);
    return p;
}

/* The top-level "key":number pairs of the flat JSON object json..end, as
 * metrics, labelled with the loop's name if loop is not NULL. */
static void
put_metrics(FILE *f, const struct diesel_console_service *sv,
    const char *loop, const char *json, const char *end_of)
{
    const char *p = json;
    int depth = 0;

    while (p < end_of && *p != '\0') {
        if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (*p == '"') {
            const char *key = ++p, *end;

            while (*p != '\0' && *p != '"')
                p += *p == '\\' && p[1] != '\0' ? 2 : 1;
            end = p;
            if (*p == '"')
                p++;
            if (depth == 1 && *p == ':' &&
                (p[1] == '-' || (p[1] >= '0' && p[1] <= '9'))) {
                char *num_end;
                double v = strtod(p + 1, &num_end);

                fputs("diesel_", f);
                for (const char *k = key; k < end; k++)
                    fputc((*k >= 'a' && *k <= 'z') || (*k >= '0' &&
                        *k <= '9') ? *k : '_', f);
                fprintf(f, "{pid=\"%ld\",name=\"", (long)sv->pid);
                put_label(f, sv->comm);
                if (loop != NULL) {
                    fputs("\",loop=\"", f);
                    put_label(f, loop);
                }
                fprintf(f, "\"} %.15g\n", v);
                p = num_end;
            }
        } else {
            p++;
        }
    }
}

/*
 * A service of several loops answers {"loops":[{"loop":"main",
 * "thread":N,"reply":{...}},...]}: each loop's figures with a loop
 * label (a loop that did not answer has an "error", no "reply", and no
 * figures).  A service of one loop answers its figures alone, exported
 * as ever.
 */
static void
put_stats(FILE *f, const struct diesel_console_service *sv, const char *json)
{
    static const char head[] = "{\"loops\":[";
    const char *p = json + sizeof(head) - 1;

    if (strncmp(json, head, sizeof(head) - 1) != 0) {
        put_metrics(f, sv, NULL, json, json + strlen(json));
        return;
    }
    while (*p == '{') {
        const char *end = skip_value(p), *q = p + 1, *reply = NULL;
        const char *reply_end = NULL;
        char loop[128] = "";

        /* The element's "key":value pairs, one level down. */
        while (q < end && *q == '"') {
            const char *key = q + 1, *val;
            size_t klen;

            q = skip_value(q);
            klen = (size_t)(q - 1 - key);
            if (*q != ':')
                break;
            val = ++q;
            q = skip_value(q);
            if (klen == 4 && memcmp(key, "loop", 4) == 0 && *val == '"') {
                size_t k = 0;

                /* Names are plain (diesel_loop_name(3)); an escape is
                 * kept as the byte it stands for, \uXXXX as '?'. */
                for (const char *c = val + 1; c < q - 1 &&
                    k < sizeof(loop) - 1; c++) {
                    if (*c == '\\' && c + 1 < q - 1) {
                        c++;
                        loop[k++] = *c == 'u' ? '?' : *c;
                        if (*c == 'u')
                            c += 4 < q - 1 - c ? 4 : 0;
                    } else {
                        loop[k++] = *c;
                    }
                }
                loop[k] = '\0';
            } else if (klen == 5 && memcmp(key, "reply", 5) == 0 &&
                *val == '{') {
                reply = val;
                reply_end = q;
            }
            if (*q == ',')
                q++;
        }
        if (reply != NULL && loop[0] != '\0')
            put_metrics(f, sv, loop, reply, reply_end);
        p = end;
        if (*p != ',')
            break;
        p++;
    }
}

/* One service's answer this round. */
struct answer {
    const struct opts *o;
    struct diesel_console_service sv;
    int64_t task;           /* the green thread that asks it */
    int st;                 /* 0: stats in reply; else why says */
    char *reply;
    char why[1024];
};

/* A green thread per service: a silent one costs its own wait, not the
 * others' (the library's attaches of one process run at once). */
static int
ask(void *arg)
{
    struct answer *a = arg;
    struct diesel_console_attach_opts ao;
    struct diesel_console_client *c;
    int64_t end = diesel_now() + a->o->timeout_ms, left;
    size_t len;

    memset(&ao, 0, sizeof(ao));
    ao.signo = a->o->signo;
    ao.timeout_ms = a->o->timeout_ms;
    a->st = -1;
    c = diesel_console_client_attach(a->sv.pid, &ao, a->why, sizeof(a->why));
    if (c == NULL)
        return errno == ECANCELED;
    /* -t is for the whole: the attach and the answer. */
    left = end - diesel_now();
    a->st = diesel_console_client_run(c, "stats --json", &a->reply, &len,
        left > 1 ? left : 1);
    if (a->st < 0)
        snprintf(a->why, sizeof(a->why), "stats: %s", strerror(errno));
    else if (a->st > 0)
        snprintf(a->why, sizeof(a->why), "stats: %s", a->reply);
    diesel_console_client_close(c);
    if (a->reply != NULL)
        a->reply[strcspn(a->reply, "\n")] = '\0';
    return 0;
}

static void
put_answer(FILE *out, const struct opts *o, const struct answer *a)
{
    if (o->prom != NULL) {
        fprintf(out, "diesel_up{pid=\"%ld\",name=\"", (long)a->sv.pid);
        put_label(out, a->sv.comm);
        fprintf(out, "\"} %d\n", a->st == 0);
        if (a->st == 0)
            put_stats(out, &a->sv, a->reply);
        return;
    }
    fprintf(out, "{\"pid\":%ld,\"name\":\"", (long)a->sv.pid);
    put_json(out, a->sv.comm);
    if (a->st == 0) {
        fprintf(out, "\",\"stats\":%s}\n", a->reply);
    } else {
        fputs("\",\"error\":\"", out);
        put_json(out, a->why);
        fputs("\"}\n", out);
    }
}

struct round {
    const struct opts *o;
    struct answer *v;       /* the services listed */
    size_t n, cap;
};

static int
found(const struct diesel_console_service *sv, void *arg)
{
    struct round *r = arg;

    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct answer *v = realloc(r->v, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
    r->v[r->n].o = r->o;
    r->v[r->n].sv = *sv;
    r->n++;
    return 0;
}

/* Every service at once: the round lasts as long as the slowest answer,
 * or the timeout.  Written in the order listed.  0, or -1 if stopping. */
static int
ask_all(struct round *r, FILE *out)
{
    int stopping = 0;

    if (diesel_console_client_list(r->o->signo, NULL, found, r) != 0)
        fprintf(stderr, "collect: cannot list processes: %s\n",
            strerror(errno));
    for (size_t i = 0; i < r->n; i++) {
        r->v[i].task = diesel_task_spawn("ask", ask, &r->v[i], 0);
        if (r->v[i].task < 0) {
            r->v[i].st = -1;
            snprintf(r->v[i].why, sizeof(r->v[i].why),
                "cannot start a green thread: %s", strerror(errno));
        }
    }
    for (size_t i = 0; i < r->n; i++) {
        int cancelled = 0;

        if (r->v[i].task > 0 &&
            diesel_task_join(r->v[i].task, &cancelled, -1) != 0) {
            /* We are cancelled: stopping; so is it. */
            diesel_task_cancel(r->v[i].task);
            diesel_task_join(r->v[i].task, NULL, -1);
            cancelled = 1;
        }
        stopping |= cancelled;
        if (!stopping) {
            put_answer(out, r->o, &r->v[i]);
            if (r->o->prom == NULL)
                fflush(out);
        }
        free(r->v[i].reply);
    }
    free(r->v);
    return stopping ? -1 : 0;
}

static int
collect_round(const struct opts *o)
{
    struct round r = { o, NULL, 0, 0 };
    FILE *out = stdout;
    char tmp[4096];
    int st;

    if (o->prom != NULL) {
        snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", o->prom, (long)getpid());
        out = fopen(tmp, "w");
        if (out == NULL) {
            fprintf(stderr, "collect: %s: %s\n", tmp, strerror(errno));
            return -1;
        }
        fputs("# TYPE diesel_up gauge\n", out);
    }
    st = ask_all(&r, out);
    if (o->prom != NULL &&
        (fclose(out) != 0 || st != 0 || rename(tmp, o->prom) != 0)) {
        if (st != 0) {
            unlink(tmp);    /* stopping: the last round stays */
            return 0;
        }
        fprintf(stderr, "collect: %s: %s\n", o->prom, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int
stopper(void *arg)
{
    static const int sigs[] = { SIGINT, SIGTERM };

    (void)arg;
    if (diesel_signal_wait(sigs, 2, -1) > 0)
        diesel_loop_stop(0);
    return 0;
}

static int
collect_main(void *arg)
{
    const struct opts *o = arg;
    int st = 0;

    if (diesel_task_spawn("stopper", stopper, NULL, 0) < 0)
        return 1;
    for (long n = 0; o->rounds == 0 || n < o->rounds; n++) {
        if (n > 0 && diesel_sleep(o->interval_ms) != 0)
            break;
        if (collect_round(o) != 0)
            st = 1;
    }
    diesel_loop_stop(st);
    return st;
}

static int
usage(void)
{
    fputs("usage: collect [-i SECONDS] [-t SECONDS] [-n ROUNDS] "
        "[-s SIGNAL] [-p FILE]\n", stderr);
    return 2;
}

static int
seconds(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !(v > 0) || v > 86400)
        return -1;
    *ms = (int64_t)(v * 1000.0 + 0.5);
    return 0;
}

int
main(int argc, char **argv)
{
    struct opts o = { 60000, 2000, 0, 0, NULL };
    int c, st;

    while ((c = getopt(argc, argv, "i:t:n:s:p:h")) != -1) {
        char *end;

        switch (c) {
        case 'i':
            if (seconds(optarg, &o.interval_ms) != 0)
                return usage();
            break;
        case 't':
            if (seconds(optarg, &o.timeout_ms) != 0)
                return usage();
            break;
        case 'n':
            o.rounds = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || o.rounds < 0)
                return usage();
            break;
        case 's':
            o.signo = diesel_signal_parse(optarg);
            if (o.signo < 0)
                return usage();
            break;
        case 'p':
            o.prom = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();
    /* The loop of a tool need not announce itself. */
    diesel_log_level_set("diesel", DIESEL_LOG_ERROR);
    st = diesel_loop_run(collect_main, &o);
    return st < 0 ? 1 : st;
}
