/*
 * console_top.c: where the time goes (acct.c's figures): top, hist and
 * account.  Durations are printed as 12ns, 3.4us, 5.6ms or 1.23s.  The
 * samples are output as it is, so some lines are wider than 80 columns.
 *
 * top [SECONDS] [--json] [--loop NAME]
 *   The green threads ranked by busy time over a window (default 1 s,
 *   at most 3600), like top(1) and recon's proc_window; accounting is
 *   switched on for the window if it was off, and off again after.
 *     top: 1.00s window, clock rdtsc: loop 12.3% busy, 1001 turns/s, 40023 switches/s, 7 green threads
 *     ID      NAME    BUSY%   BUSY      SCHED            RUNS     WAKES    STATE
 *     3       worker  91.2%   912.0ms   2.1ms/80.0us     1000     0        ready
 *     ...
 *     (4 more green threads, less busy)
 *     (99990 green threads neither ran nor were woken)
 *   The 20 busiest of those that ran or were woken in the window are
 *   listed.  BUSY is the time it ran in the window,
 *   BUSY% that over the window; SCHED is the time it waited to run once
 *   ready (woken, spawned or yielded), in all and the longest once;
 *   RUNS the times it was switched in, WAKES the times a wake made it
 *   ready; STATE its state at the window's end.  NAME is as wide as the
 *   widest name listed (escaped; cut at 32 columns with "..."), two
 *   blanks after it.  The head line's busy
 *   share is the loop's time outside poll.
 *   {"window_s":1.000,"clock":"rdtsc","utilization":0.123,
 *    "turns_per_s":1001,"switches_per_s":40023,"count":7,"tasks":[
 *    {"id":3,"name":"worker","state":"ready","busy_pct":91.2,
 *     "busy_ns":912000000,"sched_ns":2100000,"sched_max_ns":80000,
 *     "runs":1000,"wakes":0},...]}
 *   tasks has every green thread that ran or was woken in the window,
 *   busiest first; count is every green thread.  The window ends when the
 *   walk over the green threads that follows the wait is over.
 *
 * hist [[LOOP:]ID] [--json] [--loop NAME]
 *   Log-scale histograms of run lengths (switched in to switched out)
 *   and of scheduling delays (ready to running), for the loop (every
 *   green thread) or for green thread ID, since accounting was switched
 *   on (an ERR while it is off).  Quantiles are the upper bound of their
 *   bucket, a power of two of the clock's ticks.
 *     run lengths, loop, since 12.30s: 1234 runs
 *       min 1.1us  median 2.0us  p90 4.1us  p99 65.5us  max 1.0ms
 *       < 2.0us          620  ########################################
 *       ...
 *     scheduling delays, loop, since 12.30s: 1230 delays
 *       ...
 *   {"id":null,"since_s":12.300,"clock":"rdtsc",
 *    "run":{"count":1234,"min_ns":1100,"median_ns":2000,"p90_ns":4100,
 *     "p99_ns":65500,"max_ns":1000000,"buckets":[{"lt_ns":2000,
 *     "count":620},...]},"sched":{...}}
 *   With an ID: "id" and "name" of that green thread.
 *
 * account [on|off] [--json] [--loop NAME]
 *   Says whether accounting is on, or switches it on or off for good
 *   (top still switches it on for its window).
 *     time accounting is on (clock rdtsc) since 12.30s
 *   {"on":true,"clock":"rdtsc","since_s":12.300}
 *
 * Beside other loops (console_loops.c), top's IDs and hist's green
 * thread read LOOP:ID, as tasks shows them; with one loop, as above.
 *
 * Both walks of top visit the green threads in slices, between which the
 * loop turns (console_builtins.c's pacing), so that 100,000 of them never
 * hold the loop for long.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_builtins.h"
#include "internal.h"

#define TOP_ROWS 20
#define TOP_NAME_MAX 32   /* columns of NAME at most; longer names end
                             in "..." (the JSON has them whole) */
#define TOP_MAX_S 3600.0

/* A reply under construction: the first failed write sticks. */
struct out {
    struct diesel_console_out *out;
    int json;
    int full;
};

static void DIESEL_PRINTF(2, 3)
say(struct out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (o->full)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (diesel_console_printf(o->out, "%s", buf) < 0)
        o->full = 1;
}

static int
finish(struct out *o)
{
    if (o->full)
        return diesel_console_error(o->out,
            "reply too long (over the console's output limit)");
    return 0;
}

/* Take --json out; the other words (at most max) go to pos.  Their count,
 * or -1 with the error set. */
static int
words(struct out *o, struct diesel_console_out *out, int argc, char **argv,
    char **pos, int max, const char *usage)
{
    int n = 0;

    o->out = out;
    o->json = diesel_console_json(out);
    o->full = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o->json = 1;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return diesel_console_error(out, "unknown option '%.64s'; "
                "usage: %s", argv[i], usage);
        else if (n == max)
            return diesel_console_error(out, "usage: %s", usage);
        else
            pos[n++] = argv[i];
    }
    return n;
}

static void
fmt_dur(char *buf, size_t size, uint64_t ns)
{
    if (ns < 1000)
        snprintf(buf, size, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, size, "%.1fms", (double)ns / 1e6);
    else
        snprintf(buf, size, "%.2fs", (double)ns / 1e9);
}

static int
interrupted(struct diesel_console_out *out)
{
    return diesel_console_error(out, "interrupted: the green thread running "
        "the command was cancelled");
}

/* ---- top ----------------------------------------------------------------- */

/* A green thread's figures over the window. */
struct row {
    int64_t id;
    uint64_t busy, sched, smax, runs, wakes;   /* ns, ns, ns, counts */
    const char *state;
    char name[DIESEL__NAME_MAX];
};

static int
cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->busy != y->busy)
        return x->busy < y->busy ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/*
 * The window's figures of the green threads that ran or were woken in it
 * (acct.c keeps each one's figures at its first touch in the window, so
 * no walk is needed at the start), busiest first; *walked counts every
 * live green thread.  Only those rows are sorted: with 100,000 idle green
 * threads, the sort is of a handful.
 */
static int
take_rows(struct diesel_loop *l, struct row **out, size_t *count,
    size_t *walked)
{
    size_t n, k = 0, cap = 64;
    unsigned paced = 0;
    int64_t *ids = malloc((l->ntasks ? (size_t)l->ntasks : 1) *
        sizeof(*ids));
    struct row *r = malloc(cap * sizeof(*r));

    if (ids == NULL || r == NULL) {
        free(ids);
        free(r);
        return -1;
    }
    n = diesel__task_ids(l, ids);
    *walked = 0;
    for (size_t i = 0; i < n; i++) {
        struct diesel__task *t = diesel__task_find(l, ids[i]);

        if (t != NULL)
            ++*walked;
        if (t != NULL && diesel__acct_fresh(l, t) &&
            t->acct_window == l->acct->window) {
            const struct diesel__acct *a = &t->acct;

            if (k == cap) {
                struct row *bigger = realloc(r, 2 * cap * sizeof(*r));

                if (bigger == NULL) {
                    free(ids);
                    free(r);
                    return -1;
                }
                r = bigger;
                cap *= 2;
            }
            r[k].id = t->id;
            r[k].state = diesel__task_state_name(diesel__task_state(l, t));
            memcpy(r[k].name, t->name, sizeof(r[k].name));
            r[k].busy = diesel__acct_ns(a->busy - a->base_busy);
            r[k].sched = diesel__acct_ns(a->sched - a->base_sched);
            r[k].smax = diesel__acct_ns(a->win_max);
            r[k].runs = a->runs - a->base_runs;
            r[k].wakes = a->wakes - a->base_wakes;
            k++;
        }
        if (diesel__console_pace(&paced) != 0) {
            free(ids);
            free(r);
            errno = ECANCELED;
            return -1;
        }
    }
    free(ids);
    qsort(r, k, sizeof(*r), cmp_row);
    *out = r;
    *count = k;
    return 0;
}

static void
top_text(struct out *o, const struct row *r, size_t n, size_t walked,
    int64_t wall)
{
    size_t shown = n < TOP_ROWS ? n : TOP_ROWS;
    const char *loop = o->out->loop;
    /* Beside other loops, ids read LOOP:ID, as tasks shows them. */
    int idw = loop != NULL ? (int)strlen(loop) + 8 : 7;
    /* NAME is as wide as the widest name shown (escaped, as tasks shows
     * it), up to TOP_NAME_MAX columns: a fixed field cut long names
     * and let wide ones push the later columns out of line.  Two blanks
     * follow it, as a name may hold one. */
    char ename[4 * DIESEL__NAME_MAX], cell[4 * DIESEL__NAME_MAX +
        TOP_NAME_MAX + 1];
    unsigned namew = 4;

    for (size_t i = 0; i < shown; i++) {
        size_t at = 0, w;

        (void)diesel__escape(ename, sizeof(ename), &at, r[i].name,
            strlen(r[i].name), DIESEL__ESC_TEXT);
        w = diesel__console_text_width(ename);
        if (w > namew)
            namew = w > TOP_NAME_MAX ? TOP_NAME_MAX : (unsigned)w;
    }
    diesel__console_text_fit(cell, sizeof(cell), "NAME", namew);
    say(o, "%-*s %s  %-7s %-9s %-16s %-8s %-8s %s\n", idw, "ID", cell,
        "BUSY%", "BUSY", "SCHED", "RUNS", "WAKES", "STATE");
    for (size_t i = 0; i < shown; i++) {
        char busy[16], sched[16], smax[16], both[40], pct[16], id[64];
        size_t at = 0;

        if (loop != NULL)
            snprintf(id, sizeof(id), "%s:%lld", loop, (long long)r[i].id);
        else
            snprintf(id, sizeof(id), "%lld", (long long)r[i].id);

        fmt_dur(busy, sizeof(busy), r[i].busy);
        fmt_dur(sched, sizeof(sched), r[i].sched);
        fmt_dur(smax, sizeof(smax), r[i].smax);
        snprintf(both, sizeof(both), "%s/%s", sched, smax);
        snprintf(pct, sizeof(pct), "%.1f%%", wall > 0 ?
            100.0 * (double)r[i].busy / (double)wall : 0.0);
        (void)diesel__escape(ename, sizeof(ename), &at, r[i].name,
            strlen(r[i].name), DIESEL__ESC_TEXT);
        diesel__console_text_fit(cell, sizeof(cell), ename, namew);
        say(o, "%-*s %s  %-7s %-9s %-16s %-8llu %-8llu %s\n",
            idw, id, cell, pct, busy, both,
            (unsigned long long)r[i].runs, (unsigned long long)r[i].wakes,
            r[i].state);
    }
    if (n > shown)
        say(o, "(%zu more green thread%s, less busy)\n", n - shown,
            n - shown == 1 ? "" : "s");
    if (walked > n)
        say(o, "(%zu green thread%s neither ran nor %s woken)\n",
            walked - n, walked - n == 1 ? "" : "s",
            walked - n == 1 ? "was" : "were");
}

int
diesel__cmd_top(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "top [SECONDS] [--json] [--loop NAME]";
    struct diesel_loop *l = diesel__loop;
    struct out o;
    char *pos[1], *end;
    double secs = 1.0;
    struct row *r = NULL;
    size_t nr = 0, walked = 0;
    int64_t t0, wall;
    uint64_t poll0, turns0, sw0, poll, turns, sw;
    double util;
    int n, err;

    (void)arg;
    if ((n = words(&o, out, argc, argv, pos, 1, usage)) < 0)
        return -1;
    if (n == 1) {
        errno = 0;
        secs = strtod(pos[0], &end);
        if (errno != 0 || end == pos[0] || *end != '\0' || !(secs > 0) ||
            secs > TOP_MAX_S)
            return diesel_console_error(out, "'%.64s' is not a number of "
                "seconds greater than 0 and at most %.0f; usage: %s", pos[0],
                TOP_MAX_S, usage);
    }
    if (l == NULL)
        return diesel_console_error(out, "no loop runs on this thread");
    if (diesel__acct_hold(l) != 0)
        return diesel_console_error(out, "cannot switch time accounting on: "
            "%s", strerror(errno));
    /* The window begins: each green thread's figures are kept as it is
     * first touched in it (acct.c). */
    l->acct->window++;
    t0 = diesel__now_ns();
    poll0 = l->acct->poll;
    turns0 = l->acct->turns;
    sw0 = l->switches;
    if (diesel_sleep((int64_t)(secs * 1000)) != 0 ||
        take_rows(l, &r, &nr, &walked) != 0)
        goto fail;
    /* It ends once the walk is over: what the green threads did while it
     * went on is in their figures. */
    wall = diesel__now_ns() - t0;
    poll = diesel__acct_ns(l->acct->poll - poll0);
    turns = l->acct->turns - turns0;
    sw = l->switches - sw0;
    diesel__acct_release(l);
    util = wall > 0 ? 1.0 - (double)poll / (double)wall : 0;
    if (util < 0)
        util = 0;
    if (o.json) {
        int first = 1;

        say(&o, "{\"window_s\":%.3f,\"clock\":\"%s\",\"utilization\":%.3f,"
            "\"turns_per_s\":%.0f,\"switches_per_s\":%.0f,\"count\":%zu,"
            "\"tasks\":[", (double)wall / 1e9, diesel__acct_clock_name(),
            util, (double)turns * 1e9 / (double)wall,
            (double)sw * 1e9 / (double)wall, walked);
        for (size_t i = 0; i < nr; i++) {
            say(&o, "%s\n{\"id\":%lld,\"name\":", first ? "" : ",",
                (long long)r[i].id);
            first = 0;
            diesel__console_out_json_string(out, r[i].name);
            say(&o, ",\"state\":\"%s\",\"busy_pct\":%.1f,\"busy_ns\":%llu,"
                "\"sched_ns\":%llu,\"sched_max_ns\":%llu,\"runs\":%llu,"
                "\"wakes\":%llu}", r[i].state,
                100.0 * (double)r[i].busy / (double)wall,
                (unsigned long long)r[i].busy,
                (unsigned long long)r[i].sched,
                (unsigned long long)r[i].smax,
                (unsigned long long)r[i].runs,
                (unsigned long long)r[i].wakes);
        }
        say(&o, "]}\n");
    } else {
        say(&o, "top: %.2fs window, clock %s: loop %.1f%% busy, %.0f "
            "turns/s, %.0f switches/s, %zu green threads\n",
            (double)wall / 1e9, diesel__acct_clock_name(), 100 * util,
            (double)turns * 1e9 / (double)wall,
            (double)sw * 1e9 / (double)wall, walked);
        top_text(&o, r, nr, walked, wall);
    }
    free(r);
    return finish(&o);
fail:
    err = errno;
    diesel__acct_release(l);
    if (err == ECANCELED)
        return interrupted(out);
    return diesel_console_error(out, "top: %s", strerror(err));
}

/* ---- hist ---------------------------------------------------------------- */

static void
hist_text(struct out *o, const char *what, const char *unit,
    const char *whose, double since, const struct diesel__hist *h)
{
    uint64_t n = diesel__hist_count(h), top = 0;
    char a[16], b[16], c[16], d[16], e[16];
    int lo = -1, hi = -1;

    say(o, "%s, %s, since %.2fs: %llu %s\n", what, whose, since,
        (unsigned long long)n, unit);
    if (n == 0)
        return;
    fmt_dur(a, sizeof(a), diesel__acct_ns(h->min));
    fmt_dur(b, sizeof(b), diesel__acct_ns(diesel__hist_quantile(h, 0.5)));
    fmt_dur(c, sizeof(c), diesel__acct_ns(diesel__hist_quantile(h, 0.9)));
    fmt_dur(d, sizeof(d), diesel__acct_ns(diesel__hist_quantile(h, 0.99)));
    fmt_dur(e, sizeof(e), diesel__acct_ns(h->max));
    say(o, "  min %s  median %s  p90 %s  p99 %s  max %s\n", a, b, c, d, e);
    for (int k = 0; k < DIESEL__HIST_N; k++) {
        if (h->b[k] == 0)
            continue;
        if (lo < 0)
            lo = k;
        hi = k;
        if (h->b[k] > top)
            top = h->b[k];
    }
    for (int k = lo; k <= hi; k++) {
        char lt[16], bar[41];
        int w = (int)((double)h->b[k] * 40 / (double)top + 0.5);

        memset(bar, '#', (size_t)w);
        bar[w] = '\0';
        if (k == DIESEL__HIST_N - 1)
            snprintf(lt, sizeof(lt), "longer");
        else
            fmt_dur(lt, sizeof(lt), diesel__acct_ns((uint64_t)2 << k));
        say(o, "  < %-10s %10lu  %s\n", lt, (unsigned long)h->b[k], bar);
    }
}

static void
hist_json(struct out *o, const char *key, const struct diesel__hist *h)
{
    uint64_t n = diesel__hist_count(h);
    int first = 1;

    say(o, "\"%s\":{\"count\":%llu,\"min_ns\":%llu,\"median_ns\":%llu,"
        "\"p90_ns\":%llu,\"p99_ns\":%llu,\"max_ns\":%llu,\"buckets\":[", key,
        (unsigned long long)n,
        (unsigned long long)diesel__acct_ns(h->min),
        (unsigned long long)diesel__acct_ns(diesel__hist_quantile(h, 0.5)),
        (unsigned long long)diesel__acct_ns(diesel__hist_quantile(h, 0.9)),
        (unsigned long long)diesel__acct_ns(diesel__hist_quantile(h, 0.99)),
        (unsigned long long)diesel__acct_ns(h->max));
    for (int k = 0; k < DIESEL__HIST_N; k++) {
        if (h->b[k] == 0)
            continue;
        if (k == DIESEL__HIST_N - 1)
            say(o, "%s{\"lt_ns\":null,\"count\":%lu}", first ? "" : ",",
                (unsigned long)h->b[k]);
        else
            say(o, "%s{\"lt_ns\":%llu,\"count\":%lu}", first ? "" : ",",
                (unsigned long long)diesel__acct_ns((uint64_t)2 << k),
                (unsigned long)h->b[k]);
        first = 0;
    }
    say(o, "]}");
}

int
diesel__cmd_hist(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] =
        "hist [[LOOP:]ID] [--json] [--loop NAME]";
    static const struct diesel__hist empty;
    struct diesel_loop *l = diesel__loop;
    const struct diesel__hist *run, *wait;
    struct diesel__task *t = NULL;
    struct out o;
    char *pos[1], whose[4 * DIESEL__NAME_MAX + 96];
    double since;
    int64_t id = 0;
    int n;

    (void)arg;
    if ((n = words(&o, out, argc, argv, pos, 1, usage)) < 0)
        return -1;
    if (n == 1 && (id = diesel__console_parse_id(pos[0])) == 0)
        return diesel_console_error(out, "'%.64s' is not a green thread id; "
            "usage: %s", pos[0], usage);
    if (l == NULL)
        return diesel_console_error(out, "no loop runs on this thread");
    if (l->acct == NULL)
        return diesel_console_error(out, "time accounting is off: `account "
            "on` switches it on (top does, for its window only)");
    if (id != 0 && (t = diesel__task_find(l, id)) == NULL)
        return diesel_console_error(out, "no green thread with id %lld",
            (long long)id);
    since = (double)(diesel__now_ns() - l->acct->since) / 1e9;
    if (t == NULL) {
        run = &l->acct->run;
        wait = &l->acct->wait;
        snprintf(whose, sizeof(whose), "loop");
    } else {
        char ename[4 * DIESEL__NAME_MAX];
        size_t at = 0;

        run = diesel__acct_fresh(l, t) ? &t->acct.run : &empty;
        wait = diesel__acct_fresh(l, t) ? &t->acct.wait : &empty;
        /* Escaped as tasks and top show it: a name is the program's
         * bytes, and a newline or an escape sequence in it would reach
         * the operator's terminal as one. */
        (void)diesel__escape(ename, sizeof(ename), &at, t->name,
            strlen(t->name), DIESEL__ESC_TEXT);
        snprintf(whose, sizeof(whose), "green thread %s%s%lld (%s)",
            out->loop != NULL ? out->loop : "", out->loop != NULL ? ":" : "",
            (long long)t->id, ename);
    }
    if (o.json) {
        if (t == NULL) {
            say(&o, "{\"id\":null,\"name\":null");
        } else {
            say(&o, "{\"id\":%lld,\"name\":", (long long)t->id);
            diesel__console_out_json_string(out, t->name);
        }
        say(&o, ",\"since_s\":%.3f,\"clock\":\"%s\",\n", since,
            diesel__acct_clock_name());
        hist_json(&o, "run", run);
        say(&o, ",\n");
        hist_json(&o, "sched", wait);
        say(&o, "}\n");
    } else {
        hist_text(&o, "run lengths", "runs", whose, since, run);
        hist_text(&o, "scheduling delays", "delays", whose, since, wait);
    }
    return finish(&o);
}

/* ---- account ------------------------------------------------------------- */

int
diesel__cmd_account(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] =
        "account [on|off] [--json] [--loop NAME]";
    struct diesel_loop *l = diesel__loop;
    struct out o;
    char *pos[1];
    int n;

    (void)arg;
    if ((n = words(&o, out, argc, argv, pos, 1, usage)) < 0)
        return -1;
    if (n == 1 && strcmp(pos[0], "on") != 0 && strcmp(pos[0], "off") != 0)
        return diesel_console_error(out, "'%.64s' is neither on nor off; "
            "usage: %s", pos[0], usage);
    if (l == NULL)
        return diesel_console_error(out, "no loop runs on this thread");
    if (n == 1 && diesel__acct_set(l, strcmp(pos[0], "on") == 0) != 0)
        return diesel_console_error(out, "cannot switch time accounting on: "
            "%s", strerror(errno));
    if (l->acct == NULL) {
        if (o.json)
            say(&o, "{\"on\":false,\"clock\":null,\"since_s\":null}\n");
        else
            say(&o, "time accounting is off\n");
    } else {
        double since = (double)(diesel__now_ns() - l->acct->since) / 1e9;

        if (o.json)
            say(&o, "{\"on\":true,\"clock\":\"%s\",\"since_s\":%.3f}\n",
                diesel__acct_clock_name(), since);
        else
            say(&o, "time accounting is on (clock %s) since %.2fs\n",
                diesel__acct_clock_name(), since);
    }
    return finish(&o);
}

void
diesel__console_top_register(void)
{
    static const struct diesel__builtin cmds[] = {
        { "top", "top [SECONDS] [--json] [--loop NAME]: "
          "the green threads ranked by busy "
          "time over a window (1 s), with their wake-to-run delays, runs "
          "and wakes, and the loop's utilization", diesel__cmd_top,
          DIESEL__CMD_LOOPS | DIESEL__CMD_WINDOW },
        { "hist", "hist [[LOOP:]ID] [--json] [--loop NAME]: "
          "histograms of run lengths and "
          "scheduling delays, for the loop or green thread ID, since "
          "accounting was switched on", diesel__cmd_hist, DIESEL__CMD_LOOPS },
        { "account", "account [on|off] [--json] [--loop NAME]: "
          "whether time accounting "
          "is on; switch it on or off", diesel__cmd_account,
          DIESEL__CMD_LOOPS },
    };

    diesel__console_builtins_add(cmds, sizeof(cmds) / sizeof(cmds[0]));
}
