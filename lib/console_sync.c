/*
 * console_sync.c: the console's `sync` command, who waits on whom.
 *
 * Every event, queue and lock created on the loop's OS thread (struct
 * diesel__sync in internal.h), newest first, then the cycles of green
 * threads waiting for each other (locks and joins):
 *
 *   lock a: held by 3 (left) for 1.234s
 *     waiting: 4 (right) 1.230s
 *   queue jobs: 2/8 items
 *     getters: -
 *     putters: -
 *   event ready:
 *     waiting: 5 (x) 0.500s, 6 (y) 0.500s
 *   cycle: 3 left -> lock b -> 4 right -> lock a -> 3 left
 *   3 objects, 1 cycle
 *
 * A queue that was closed says so after its length.  With --json:
 *
 *   {"objects":[{"kind":"lock","name":"a","holder":3,"holder_name":"left",
 *     "held_s":1.234,"waiters":[{"id":4,"name":"right","waited_s":1.230}]},
 *    {"kind":"queue","name":"jobs","length":2,"capacity":8,
 *     "closed":false,"getters":[],"putters":[]},
 *    {"kind":"event","name":"ready","waiters":[...]}],
 *   "cycles":[[{"id":3,"name":"left","waits_on":"lock","object":"b"},
 *     {"id":4,"name":"right","waits_on":"lock","object":"a"}]]}
 *
 * Only green threads still parked are listed as waiters (one woken by a
 * deadline or a cancel stays linked until it runs).  The objects are few
 * in the services this is for, so the command walks them in one go.
 */
#include <stdint.h>
#include <string.h>

#include "console.h"
#include "internal.h"

/* Durations are seconds with 3 decimals (console_builtins.c). */
static double
secs(int64_t ns)
{
    return (double)(ns > 0 ? ns : 0) / 1e9;
}

static void
jname(struct diesel_console_out *out, const char *s)
{
    diesel__console_out_json_string(out, s);
}

static void
waiters(struct diesel_console_out *out, struct diesel_loop *l,
    const char *label, const struct diesel__waitlist *w, int json)
{
    const struct diesel__task *t;
    int n = 0;

    if (json)
        diesel_console_printf(out, "\"%s\":[", strcmp(label, "waiting") == 0 ?
            "waiters" : label);
    else
        diesel_console_printf(out, "  %s:", label);
    for (t = w->head; t != NULL; t = t->wait_next) {
        if (t->state != DIESEL__WAITING)
            continue;
        if (json) {
            diesel_console_printf(out, "%s{\"id\":%lld,\"name\":",
                n > 0 ? "," : "", (long long)t->id);
            jname(out, t->name);
            diesel_console_printf(out, ",\"waited_s\":%.3f}",
                secs(l->now - t->wait.since));
        } else {
            diesel_console_printf(out, "%s %lld (%s) %.3fs",
                n > 0 ? "," : "", (long long)t->id, t->name,
                secs(l->now - t->wait.since));
        }
        n++;
    }
    if (json)
        diesel_console_printf(out, "]");
    else
        diesel_console_printf(out, "%s\n", n == 0 ? " -" : "");
}

static void
object(struct diesel_console_out *out, struct diesel_loop *l,
    const struct diesel__sync *s, int json)
{
    struct diesel__sync_info i;
    struct diesel__task *h;

    diesel__sync_info(s, &i);
    h = i.holder != 0 ? diesel__task_find(l, i.holder) : NULL;
    if (json) {
        diesel_console_printf(out, "{\"kind\":\"%s\",\"name\":", i.kind);
        jname(out, s->name);
        diesel_console_printf(out, ",");
    } else {
        diesel_console_printf(out, "%s %s:", i.kind, s->name);
    }
    switch (s->kind) {
    case DIESEL__SYNC_LOCK:
        if (json && i.holder == 0) {
            diesel_console_printf(out, "\"holder\":null,\"holder_name\":"
                "null,\"held_s\":null,");
        } else if (json) {
            diesel_console_printf(out, "\"holder\":%lld,\"holder_name\":",
                (long long)i.holder);
            jname(out, h != NULL ? h->name : NULL);
            diesel_console_printf(out, ",\"held_s\":%.3f,",
                secs(l->now - i.held_since));
        } else if (i.holder == 0) {
            diesel_console_printf(out, " free\n");
        } else {
            diesel_console_printf(out, " held by %lld (%s) for %.3fs\n",
                (long long)i.holder, h != NULL ? h->name : "gone",
                secs(l->now - i.held_since));
        }
        waiters(out, l, "waiting", i.waiters, json);
        if (json)
            diesel_console_printf(out, "}");
        break;
    case DIESEL__SYNC_QUEUE:
        if (json)
            diesel_console_printf(out, "\"length\":%zu,\"capacity\":%zu,"
                "\"closed\":%s,", i.length, i.capacity,
                i.closed ? "true" : "false");
        else
            diesel_console_printf(out, " %zu/%zu items%s\n", i.length,
                i.capacity, i.closed ? ", closed" : "");
        waiters(out, l, "getters", i.waiters, json);
        if (json)
            diesel_console_printf(out, ",");
        waiters(out, l, "putters", i.putters, json);
        if (json)
            diesel_console_printf(out, "}");
        break;
    case DIESEL__SYNC_EVENT:
        if (!json)
            diesel_console_printf(out, "\n");
        waiters(out, l, "waiting", i.waiters, json);
        if (json)
            diesel_console_printf(out, "}");
        break;
    }
}

struct cycles {
    struct diesel_console_out *out;
    int json;
    int n;
};

static void
cycle(struct diesel__task *const *ts, size_t n, void *arg)
{
    struct cycles *c = arg;
    struct diesel_console_out *out = c->out;

    if (c->json)
        diesel_console_printf(out, "%s[", c->n > 0 ? "," : "");
    else
        diesel_console_printf(out, "cycle:");
    for (size_t i = 0; i <= n; i++) {
        const struct diesel__task *t = ts[i % n];
        const char *what, *obj;

        diesel__sync_waits_for(t, &what, &obj);
        if (c->json && i == n)
            break;
        if (c->json) {
            diesel_console_printf(out, "%s{\"id\":%lld,\"name\":",
                i > 0 ? "," : "", (long long)t->id);
            jname(out, t->name);
            diesel_console_printf(out, ",\"waits_on\":\"%s\",\"object\":",
                what);
            jname(out, obj);
            diesel_console_printf(out, "}");
        } else if (i < n) {
            diesel_console_printf(out, " %lld %s -> %s%s%s ->",
                (long long)t->id, t->name, what, obj != NULL ? " " : "",
                obj != NULL ? obj : "");
        } else {
            diesel_console_printf(out, " %lld %s\n", (long long)t->id,
                t->name);
        }
    }
    if (c->json)
        diesel_console_printf(out, "]");
    c->n++;
}

int
diesel__cmd_sync(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l = diesel__loop;
    struct cycles c = { out, diesel_console_json(out), 0 };
    int nobj = 0;

    (void)arg;
    (void)argv;
    if (argc > 1)
        return diesel_console_error(out,
            "usage: sync [--json] [--loop NAME]");
    if (l == NULL)
        return diesel_console_error(out, "no loop runs on this thread");
    if (c.json)
        diesel_console_printf(out, "{\"objects\":[");
    for (const struct diesel__sync *s = diesel__syncs; s != NULL;
        s = s->next) {
        if (c.json && nobj > 0)
            diesel_console_printf(out, ",");
        object(out, l, s, c.json);
        nobj++;
    }
    if (c.json)
        diesel_console_printf(out, "],\"cycles\":[");
    if (diesel__sync_cycles(l, cycle, &c) < 0)
        return diesel_console_error(out, "cannot look for cycles: out of "
            "memory");
    if (c.json)
        diesel_console_printf(out, "]}\n");
    else
        diesel_console_printf(out, "%d object%s, %d cycle%s\n", nobj,
            nobj == 1 ? "" : "s", c.n, c.n == 1 ? "" : "s");
    return 0;
}
