/*
 * console_loops.c: the console beside several loops (issue 13).  A
 * built-in that shows one loop's state (tasks, stacks, stats, mem, fds,
 * sync) runs on every loop, each on its own thread through its mailbox
 * (loops.c), and the replies are put together one section per loop:
 *
 *   loop main (thread 4242):
 *   ID  NAME ...                  <- main's own reply, ids as main:ID
 *
 *   loop loop-2 (thread 4243):
 *   ...
 *
 * or, with --json, one document: {"loops":[{"loop":"main","thread":4242,
 * "reply":{...}}, ...]}.  --loop NAME narrows it to one loop (its reply
 * alone, as that loop gives it), and so does an argument LOOP:ID, which
 * the loop gets as ID (cancel main:5 runs cancel 5 on main); a LOOP:ID
 * of a loop that does not run is refused as --loop's name is, even with
 * one loop (whose own name may stand in front of an id).  A loop that
 * does not answer within the stuck threshold is named as stuck.  The
 * arguments are checked before any loop is asked (check_args), so that a
 * usage error is one ERR, with help's usage, not one per loop.  With one
 * loop, and neither --loop nor LOOP:ID, nothing here runs and every reply
 * is what it always was.
 *
 * top takes its window on every loop at once, each loop given that much
 * longer to answer; hist and account, like the others, per loop.  mem
 * prints the figures of the whole process once, "process (pid N):" in
 * front of the loops' sections ({"process":{...},"loops":[...]}), and
 * each loop's section has its own stacks only.
 *
 * The `loops` command lists the running loops: name, OS thread, green
 * threads, utilization while accounting is on, turning or stuck.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "console_builtins.h"
#include "internal.h"

/*
 * A command whose reply holds figures of the whole process beside the
 * loop's own (mem: RSS, malloc, mappings; a loop's stacks): with several
 * loops' sections, the process's part is printed once, in front, and
 * each loop runs its own part only.  --loop NAME still gets the whole.
 */
static const struct {
    diesel_console_fn whole, process, loop;
} split[] = {
    { diesel__cmd_mem, diesel__cmd_mem_process, diesel__cmd_mem_loop },
};

/* "NAME:ID" where NAME is a running loop's: 1 and the split, else 0. */
static int
loop_id(const char *w, const struct diesel__loops_target *ts, size_t n,
    char *name, size_t size, const char **id)
{
    const char *colon = strchr(w, ':');
    size_t k;

    if (colon == NULL || colon == w || colon[1] == '\0' ||
        (k = (size_t)(colon - w)) >= size)
        return 0;
    for (const char *p = colon + 1; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(ts[i].name) == k && memcmp(ts[i].name, w, k) == 0) {
            memcpy(name, w, k);
            name[k] = '\0';
            *id = colon + 1;
            return 1;
        }
    }
    return 0;
}

/* "NAME:DIGITS", a loop's name or not: the form of LOOP:ID. */
static int
looks_loop_id(const char *w)
{
    const char *colon = strchr(w, ':');

    return colon != NULL && colon != w && colon[1] != '\0' &&
        strspn(colon + 1, "0123456789") == strlen(colon + 1);
}

/*
 * The arguments of the commands run on several loops, checked here
 * before any loop is asked: a usage error is the command's, once, not
 * each loop's, in the words the command has for it alone (keep the two
 * alike).
 */
enum { ARG_NONE, ARG_ID, ARG_SECS, ARG_ONOFF, ARG_ONE_ID };

static const struct {
    diesel_console_fn fn;
    const char *usage;
    const char *flag;       /* an option besides --json, or NULL */
    int arg;                /* its one word, if any */
} forms[] = {
    { diesel__cmd_tasks, "tasks [--json] [--loop NAME]", NULL, ARG_NONE },
    { diesel__cmd_stacks, "stacks [--all] [--json] [--loop NAME] "
      "[[LOOP:]ID]", "--all", ARG_ID },
    { diesel__cmd_stats, "stats [--json] [--loop NAME]", NULL, ARG_NONE },
    { diesel__cmd_mem, "mem [--json] [--loop NAME]", NULL, ARG_NONE },
    { diesel__cmd_sync, "sync [--json] [--loop NAME]", NULL, ARG_NONE },
    { diesel__cmd_top, "top [SECONDS] [--json] [--loop NAME]", NULL,
      ARG_SECS },
    { diesel__cmd_hist, "hist [[LOOP:]ID] [--json] [--loop NAME]", NULL,
      ARG_ID },
    { diesel__cmd_account, "account [on|off] [--json] [--loop NAME]", NULL,
      ARG_ONOFF },
    { diesel__cmd_cancel, "cancel [--json] [LOOP:]ID", NULL, ARG_ONE_ID },
};

/* 0, or -1 with the usage error set. */
static int
check_args(struct diesel_console_out *out, diesel_console_fn fn, int argc,
    char **argv)
{
    const char *word = NULL, *usage;
    size_t f;
    int n = 0;

    for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
        if (forms[f].fn == fn)
            break;
    if (f == sizeof(forms) / sizeof(forms[0]))
        return 0;       /* not one of these: it checks its own */
    usage = forms[f].usage;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 || (forms[f].flag != NULL &&
            strcmp(argv[i], forms[f].flag) == 0))
            continue;
        if (argv[i][0] == '-' && argv[i][1] == '-')
            return diesel_console_error(out, "unknown option '%.64s'; "
                "usage: %s", argv[i], usage);
        if (n++ > 0 || forms[f].arg == ARG_NONE)
            return diesel_console_error(out, "usage: %s", usage);
        word = argv[i];
    }
    if (word == NULL)
        return forms[f].arg == ARG_ONE_ID ? diesel_console_error(out,
            "usage: %s", usage) : 0;
    switch (forms[f].arg) {
    case ARG_ID:
    case ARG_ONE_ID:
        if (diesel__console_parse_id(word) != 0)
            break;
        if (fn == diesel__cmd_hist)
            return diesel_console_error(out, "'%.64s' is not a green "
                "thread id; usage: %s", word, usage);
        return diesel_console_error(out, "bad green thread id '%.64s'; "
            "usage: %s", word, usage);
        break;
    case ARG_SECS: {
        char *end;
        double secs;

        errno = 0;
        secs = strtod(word, &end);
        if (errno != 0 || end == word || *end != '\0' || !(secs > 0) ||
            secs > 3600)
            return diesel_console_error(out, "'%.64s' is not a number of "
                "seconds greater than 0 and at most 3600; usage: %s", word,
                usage);
        break;
    }
    case ARG_ONOFF:
        if (strcmp(word, "on") != 0 && strcmp(word, "off") != 0)
            return diesel_console_error(out, "'%.64s' is neither on nor "
                "off; usage: %s", word, usage);
        break;
    }
    return 0;
}

static void
trim(struct diesel_console_out *o)
{
    while (o->len > 0 && (o->buf[o->len - 1] == '\n' ||
        o->buf[o->len - 1] == ' '))
        o->len--;
}

static double
stuck_secs(void)
{
    return (double)diesel__stuck_after_ns() / 1e9;
}

/* One section per loop, after the process's part if proc is not NULL. */
static int
sections(struct diesel_console_out *out, struct diesel__loops_target *ts,
    size_t n, struct diesel_console_out *proc)
{
    int answered = 0;

    if (proc != NULL) {
        trim(proc);
        if (out->json) {
            diesel_console_printf(out, "{\"process\":");
            diesel__console_out_write(out, proc->buf, proc->len);
            diesel_console_printf(out, ",");
        } else {
            diesel_console_printf(out, "process (pid %ld):\n",
                (long)getpid());
            diesel__console_out_write(out, proc->buf, proc->len);
            diesel_console_printf(out, "\n\n");
        }
    }
    if (out->json)
        diesel_console_printf(out, "%s\"loops\":[", proc == NULL ? "{" : "");
    for (size_t i = 0; i < n; i++) {
        struct diesel__loops_target *t = &ts[i];

        answered += !t->stuck && t->status == 0;
        trim(&t->out);
        if (out->json) {
            diesel_console_printf(out, "%s{\"loop\":", i > 0 ? "," : "");
            diesel__console_out_json_string(out, t->name);
            diesel_console_printf(out, ",\"thread\":%lld", (long long)t->tid);
            if (t->stuck) {
                diesel_console_printf(out, ",\"stuck\":true,\"error\":");
                diesel__console_out_json_string(out, "no answer in time");
                if (t->report != NULL) {
                    diesel_console_printf(out, ",\"report\":");
                    diesel__console_out_json_string(out, t->report);
                }
            } else if (t->status != 0) {
                diesel_console_printf(out, ",\"error\":");
                diesel__console_out_json_string(out, t->out.err);
            } else {
                diesel_console_printf(out, ",\"reply\":");
                if (t->out.len > 0)
                    diesel__console_out_write(out, t->out.buf, t->out.len);
                else
                    diesel_console_printf(out, "null");
            }
            diesel_console_printf(out, "}");
            continue;
        }
        diesel_console_printf(out, "%sloop %s (thread %lld):", i > 0 ?
            "\n" : "", t->name, (long long)t->tid);
        if (t->stuck) {
            diesel_console_printf(out, " stuck: no answer in %.1f s\n",
                stuck_secs());
            if (t->report != NULL)
                diesel__console_out_write(out, t->report,
                    strlen(t->report));
        } else if (t->status != 0) {
            diesel_console_printf(out, " ERR %s\n", t->out.err);
        } else {
            diesel_console_printf(out, "\n");
            if (t->out.len > 0) {
                diesel__console_out_write(out, t->out.buf, t->out.len);
                diesel_console_printf(out, "\n");
            }
        }
    }
    if (out->json)
        diesel_console_printf(out, "]}\n");
    if (answered == 0 && n > 0) {
        /* Not one loop answered: the command failed, and says where. */
        if (ts[0].stuck)
            return diesel_console_error(out, "loop %s (thread %lld) is "
                "stuck: no answer in %.1f s", ts[0].name,
                (long long)ts[0].tid, stuck_secs());
        return diesel_console_error(out, "%s", ts[0].out.err);
    }
    return 0;
}

int
diesel__console_loops(struct diesel_console_out *out, diesel_console_fn fn,
    void *arg, int *argcp, char **argv, int how)
{
    int argc = *argcp;
    struct diesel__loops_target *ts = NULL;
    struct diesel_console_out proc;
    diesel_console_fn process = NULL;
    char want[32] = "", byid[32];
    const char *id;
    size_t n = 0;
    unsigned count;
    int64_t extra = 0;
    int j = 1, named = 0, rc;

    if (diesel__loops_snapshot(&ts, &n, NULL) != 0)
        return diesel_console_error(out, "%s", strerror(errno));
    count = (unsigned)n;
    /* --loop NAME, wherever it stands; LOOP:ID in place of an id. */
    for (int i = 1; i < argc; i++) {
        if ((how & DIESEL__CMD_LOOPS) && strcmp(argv[i], "--loop") == 0) {
            if (i + 1 >= argc) {
                diesel__loops_free(ts, n);
                return diesel_console_error(out, "--loop needs a loop's "
                    "name (loops lists them)");
            }
            snprintf(want, sizeof(want), "%s", argv[++i]);
            if (strlen(argv[i]) >= sizeof(want))
                want[0] = '?', want[1] = '\0';
            named = 1;
            continue;
        }
        if (loop_id(argv[i], ts, n, byid, sizeof(byid), &id)) {
            if (named && strcmp(want, byid) != 0) {
                diesel__loops_free(ts, n);
                return diesel_console_error(out, "%s is not on loop %s",
                    argv[i], want);
            }
            snprintf(want, sizeof(want), "%s", byid);
            named = 1;
            argv[j++] = (char *)id;
            continue;
        }
        if (looks_loop_id(argv[i])) {
            /* LOOP:ID of a loop that does not run: that, not a bad id. */
            int k = (int)(strchr(argv[i], ':') - argv[i]);

            diesel__loops_free(ts, n);
            return diesel_console_error(out, "no loop is named \"%.*s\" "
                "(loops lists them)", k < 40 ? k : 40, argv[i]);
        }
        argv[j++] = argv[i];
    }
    argc = *argcp = j;
    argv[argc] = NULL;
    if (named) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
            if (strcmp(ts[i].name, want) == 0)
                ts[k++] = ts[i];
        for (size_t i = k; i < n; i++)
            diesel__console_out_fini(&ts[i].out);
        n = k;
        if (n == 0) {
            diesel__loops_free(ts, n);
            return diesel_console_error(out, "no loop is named \"%.40s\" "
                "(loops lists them)", want);
        }
    }
    /* Alone, and for this loop: the command as it always ran. */
    if (count <= 1 && (n == 0 || ts[0].self)) {
        diesel__loops_free(ts, n);
        return 1;
    }
    if ((how & DIESEL__CMD_LOOPID) && !named && argc >= 2) {
        /* The hint in the operator's own words: this loop's name and
         * the id given, where it is one. */
        const char *self = "main", *id = argv[argc - 1];
        char name[sizeof(ts[0].name)];

        for (size_t i = 0; i < n; i++)
            if (ts[i].self)
                self = ts[i].name;
        snprintf(name, sizeof(name), "%s", self);
        if (id[0] == '\0' || strspn(id, "0123456789") != strlen(id) ||
            strlen(id) > 19)
            id = "ID";
        diesel__loops_free(ts, n);
        return diesel_console_error(out, "%u loops run: say which loop the "
            "green thread is on, LOOP:ID as tasks shows it (%s %s on "
            "this session's loop is %s %s:%s)", count, argv[0], id,
            argv[0], name, id);
    }
    if ((how & DIESEL__CMD_LOOPID) && !named) {
        /* Its usage error, as on one loop. */
        diesel__loops_free(ts, n);
        return 1;
    }
    if (check_args(out, fn, argc, argv) != 0) {
        diesel__loops_free(ts, n);
        return -1;
    }
    if (how & DIESEL__CMD_WINDOW) {
        /* top SECONDS: every loop watches its own window at once. */
        double secs = 1.0;

        for (int i = 1; i < argc; i++) {
            if (argv[i][0] != '-') {
                char *end;

                secs = strtod(argv[i], &end);
                if (*end != '\0' || !(secs > 0) || secs > 3600)
                    secs = 0;   /* not so: check_args refused it */
                break;
            }
        }
        extra = (int64_t)(secs * 1e9);
    }
    if (!named) {
        for (size_t i = 0; i < sizeof(split) / sizeof(split[0]); i++) {
            if (fn == split[i].whole) {
                fn = split[i].loop;
                process = split[i].process;
            }
        }
    }
    diesel__loops_run(ts, n, out, fn, arg, argc, argv, extra);
    if (process != NULL) {
        /* The process's figures, on this session's loop, once the loops
         * have answered: its usage error is the command's. */
        diesel__console_out_init(&proc);
        proc.json = out->json;
        proc.limit = out->limit;
        proc.peer_pid = out->peer_pid;
        proc.peer_uid = out->peer_uid;
        errno = 0;
        if (process(&proc, argc, argv, arg) != 0) {
            rc = diesel_console_error(out, "%s", proc.has_err ? proc.err :
                errno != 0 ? strerror(errno) : "failed");
            diesel__console_out_fini(&proc);
            diesel__loops_free(ts, n);
            return rc;
        }
    }
    if (count <= 1) {
        for (size_t i = 0; i < n; i++)
            ts[i].out.loop = NULL;
    }
    if (named) {
        /* One loop's reply, as it gave it. */
        struct diesel__loops_target *t = &ts[0];

        if (t->stuck) {
            rc = diesel_console_error(out, "loop %s (thread %lld) is stuck: "
                "no answer in %.1f s", t->name, (long long)t->tid,
                stuck_secs());
        } else {
            if (t->out.len > 0)
                diesel__console_out_write(out, t->out.buf, t->out.len);
            rc = t->status;
            if (rc != 0)
                diesel_console_error(out, "%s", t->out.err);
        }
    } else {
        rc = sections(out, ts, n, process != NULL ? &proc : NULL);
    }
    if (process != NULL)
        diesel__console_out_fini(&proc);
    diesel__loops_free(ts, n);
    return rc;
}

/* ---- loops ---------------------------------------------------------------- */

/* On each loop: its green threads and utilization, for `loops`. */
static int
loop_row(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_loop *l = diesel__loop;
    double util = -1;

    (void)argc;
    (void)argv;
    (void)arg;
    if (l->acct != NULL) {
        int64_t span = diesel__now_ns() - l->acct->since;

        if (span > 0)
            util = 100.0 * (double)diesel__acct_ns(l->acct->busy) /
                (double)span;
    }
    return diesel_console_printf(out, "%llu %.1f",
        (unsigned long long)(l->ntasks - l->ndaemons), util) < 0 ? -1 : 0;
}

int
diesel__cmd_loops(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel__loops_target *ts;
    struct diesel_console_table *tb = NULL;
    char *no[] = { "loops", NULL };
    size_t n;
    int rc = 0;

    (void)arg;
    if (argc > 1)
        return diesel_console_error(out, "usage: loops [--json] (not %.40s)",
            argv[1]);
    if (diesel__loops_snapshot(&ts, &n, NULL) != 0)
        return diesel_console_error(out, "%s", strerror(errno));
    diesel__loops_run(ts, n, out, loop_row, NULL, 1, no, 0);
    if (out->json) {
        diesel_console_printf(out, "{\"loops\":[");
    } else if ((tb = diesel_console_table_create(5)) == NULL ||
        diesel_console_table_cell(tb, "LOOP") < 0 ||
        diesel_console_table_cell(tb, "THREAD") < 0 ||
        diesel_console_table_cell(tb, "TASKS") < 0 ||
        diesel_console_table_cell(tb, "UTIL") < 0 ||
        diesel_console_table_cell(tb, "STATE") < 0 ||
        diesel_console_table_row(tb) < 0) {
        rc = diesel_console_error(out, "%s", strerror(ENOMEM));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned long long tasks = 0;
        double util = -1;
        int ok = !ts[i].stuck && ts[i].status == 0;
        const char *state = ts[i].stuck ? "stuck" : ok ? "turning" : "error";
        char ubuf[32], tbuf[32];

        if (ok) {
            char row[64];
            size_t k = ts[i].out.len < sizeof(row) - 1 ? ts[i].out.len :
                sizeof(row) - 1;

            if (k > 0)
                memcpy(row, ts[i].out.buf, k);
            row[k] = '\0';
            if (sscanf(row, "%llu %lf", &tasks, &util) != 2)
                state = "error";
        }
        if (util >= 0)
            snprintf(ubuf, sizeof(ubuf), "%.1f%%", util);
        else
            snprintf(ubuf, sizeof(ubuf), "-");
        if (ok)
            snprintf(tbuf, sizeof(tbuf), "%llu", tasks);
        else
            snprintf(tbuf, sizeof(tbuf), "-");
        if (out->json) {
            diesel_console_printf(out, "%s{\"name\":", i > 0 ? "," : "");
            diesel__console_out_json_string(out, ts[i].name);
            diesel_console_printf(out, ",\"thread\":%lld,\"tasks\":%s,"
                "\"utilization\":", (long long)ts[i].tid, ok ? tbuf : "null");
            if (util >= 0)
                diesel_console_printf(out, "%.1f", util);
            else
                diesel_console_printf(out, "null");
            diesel_console_printf(out, ",\"state\":\"%s\",\"session\":%s}",
                state, ts[i].self ? "true" : "false");
        } else if (diesel_console_table_cell(tb, "%s%s", ts[i].name,
            ts[i].self ? " *" : "") < 0 ||
            diesel_console_table_cell(tb, "%lld", (long long)ts[i].tid) < 0 ||
            diesel_console_table_cell(tb, "%s", tbuf) < 0 ||
            diesel_console_table_cell(tb, "%s", ubuf) < 0 ||
            diesel_console_table_cell(tb, "%s", state) < 0 ||
            diesel_console_table_row(tb) < 0) {
            rc = diesel_console_error(out, "%s", strerror(ENOMEM));
            goto out;
        }
    }
    if (out->json)
        diesel_console_printf(out, "]}\n");
    else if (diesel_console_table_print(tb, out) < 0)
        rc = diesel_console_error(out, "%s", strerror(ENOMEM));
    else
        diesel_console_printf(out, "(* the loop this session runs on)\n");
out:
    if (tb != NULL)
        diesel_console_table_destroy(tb);
    diesel__loops_free(ts, n);
    return rc;
}
