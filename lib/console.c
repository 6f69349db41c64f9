/*
 * console.c: the console's commands and sessions.
 *
 * The command table is process-wide (a service registers its commands
 * once, whatever thread runs the loop) and small: a sorted array of
 * pointers under a mutex, searched by bisection.  Only a module's
 * entries are ever removed (`unload`, console_module.c), and never while
 * one of its commands runs: a command is called after the lock is
 * released with its module marked busy (diesel__module_enter).
 *
 * A session reads bytes, cuts them into lines (at most
 * DIESEL__CONSOLE_LINE_MAX bytes are ever kept, whatever the peer sends),
 * splits each line into words, runs the command, and frames its reply:
 *
 *   | output line        each line of the command's text, "| " first;
 *   | \x1b[2J            control bytes escaped (escape.c), so output
 *   OK                   cannot end a reply or move the terminal; then
 *                        OK or ERR.
 *
 * Replies are written in the order the lines came (one command at a
 * time), through a small buffer that is flushed whenever the session is
 * about to wait for input, so that 10,000 pipelined commands cost a few
 * hundred writes, not 10,000.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "internal.h"

/* ---- The table ------------------------------------------------------------ */

struct command {
    char name[DIESEL__CONSOLE_NAME_MAX];
    char *help;                 /* one line, malloc'd */
    diesel_console_fn fn;
    void *arg;
    int builtin;
    int json;                   /* speaks JSON (see console.h) */
    int loops;                  /* DIESEL__CMD_LOOPS, _LOOPID (console.h) */
    struct diesel_module *owner; /* the module that added it, or NULL */
};

enum var_type { VAR_INT, VAR_DOUBLE, VAR_STRING };

struct var {
    char name[DIESEL__CONSOLE_NAME_MAX];
    enum var_type type;
    void *p;                    /* int64_t *, double * or char[size] */
    size_t size;                /* VAR_STRING: the buffer's size */
    int writable;
    int64_t min, max;           /* VAR_INT: the values set may store */
    struct diesel_module *owner; /* the module that added it, or NULL */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct command **commands;
static size_t ncommands, cap_commands;
static struct var **vars;
static size_t nvars, cap_vars;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int nsessions;           /* atomically */

static int cmd_help(struct diesel_console_out *, int, char **, void *);
static int cmd_get(struct diesel_console_out *, int, char **, void *);
static int cmd_set(struct diesel_console_out *, int, char **, void *);
static int cmd_quit(struct diesel_console_out *, int, char **, void *);

static void
init(void)
{
    diesel__console_register("help", "help [--json] [COMMAND]: list the "
        "commands, or show one", cmd_help, NULL, 1);
    diesel__console_register("get", "get [--json] [NAME]: show a variable, "
        "or all of them", cmd_get, NULL, 1);
    diesel__console_register("set", "set NAME VALUE: change a writable "
        "variable", cmd_set, NULL, DIESEL__CMD_BUILTIN | DIESEL__CMD_NO_JSON);
    diesel__console_register("quit", "quit: end this console session",
        cmd_quit, NULL, DIESEL__CMD_BUILTIN | DIESEL__CMD_NO_JSON);
    diesel__console_builtins_register();
}

void
diesel__console_init(void)
{
    pthread_once(&init_once, init);
}

int
diesel__console_sessions(void)
{
    return __atomic_load_n(&nsessions, __ATOMIC_RELAXED);
}

/* Commands: [a-z0-9_-]+.  Variables may use dots too ("http.timeout"). */
static int
valid_name(const char *name, int dots)
{
    size_t n = 0;

    if (name == NULL)
        return 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || (dots && c == '.')))
            return 0;
    }
    return n > 0 && n < DIESEL__CONSOLE_NAME_MAX;
}

/* Where name is, or would be inserted, in a sorted array of records that
 * start with their name. */
static size_t
bisect(void *const *a, size_t n, const char *name, int *found)
{
    size_t lo = 0, hi = n;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp((const char *)a[mid], name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
insert_at(void ***a, size_t *n, size_t *cap, size_t at, void *item)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        void **b = realloc(*a, c * sizeof(*b));
        if (b == NULL) {
            errno = ENOMEM;
            return -1;
        }
        *a = b;
        *cap = c;
    }
    memmove(*a + at + 1, *a + at, (*n - at) * sizeof(**a));
    (*a)[at] = item;
    (*n)++;
    return 0;
}

/* The first line of help, at most 200 bytes. */
static char *
one_line(const char *help)
{
    size_t n = 0;
    char *s;

    if (help == NULL)
        help = "";
    while (help[n] != '\0' && help[n] != '\n' && help[n] != '\r' && n < 200)
        n++;
    s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, help, n);
        s[n] = '\0';
    }
    return s;
}

int
diesel__console_register(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int flags)
{
    return diesel__console_register_owned(name, help, fn, arg, flags, NULL);
}

int
diesel__console_register_owned(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int flags, struct diesel_module *owner)
{
    int builtin = flags & DIESEL__CMD_BUILTIN;
    int json = (flags & DIESEL__CMD_JSON) ||
        (builtin && !(flags & DIESEL__CMD_NO_JSON));

    struct command *c;
    size_t at;
    int found, rc = -1;
    char *h;

    if (!valid_name(name, 0) || fn == NULL) {
        errno = EINVAL;
        return -1;
    }
    if ((h = one_line(help)) == NULL)
        return -1;
    pthread_mutex_lock(&table_lock);
    at = bisect((void *const *)commands, ncommands, name, &found);
    if (found) {
        c = commands[at];
        if (builtin && c->builtin) {
            free(c->help);
            c->help = h;
            c->fn = fn;
            c->arg = arg;
            c->json = json;
            c->loops = flags & (DIESEL__CMD_LOOPS | DIESEL__CMD_LOOPID |
                DIESEL__CMD_WINDOW);
            h = NULL;
            rc = 0;
        } else {
            errno = EEXIST;
        }
        goto out;
    }
    /* One namespace for commands and variables, so that a name means one
     * thing in help and in get. */
    bisect((void *const *)vars, nvars, name, &found);
    if (found) {
        errno = EEXIST;
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        errno = ENOMEM;
        goto out;
    }
    strcpy(c->name, name);
    c->help = h;
    c->fn = fn;
    c->arg = arg;
    c->builtin = builtin != 0;
    c->json = json;
    c->loops = flags & (DIESEL__CMD_LOOPS | DIESEL__CMD_LOOPID |
        DIESEL__CMD_WINDOW);
    c->owner = owner;
    if (insert_at((void ***)&commands, &ncommands, &cap_commands, at,
        c) != 0) {
        free(c);
        goto out;
    }
    h = NULL;
    rc = 0;
out:
    pthread_mutex_unlock(&table_lock);
    free(h);
    return rc;
}

int
diesel_console_command(const char *name, const char *help,
    diesel_console_fn fn, void *arg)
{
    diesel__console_init();
    return diesel__console_register(name, help, fn, arg, 0);
}

int
diesel_console_command_json(const char *name, const char *help,
    diesel_console_fn fn, void *arg)
{
    diesel__console_init();
    return diesel__console_register(name, help, fn, arg, DIESEL__CMD_JSON);
}

static int
var_add(const char *name, enum var_type type, void *p, size_t size,
    int writable, int64_t min, int64_t max, struct diesel_module *owner)
{
    struct var *v;
    size_t at;
    int found, rc = -1;

    if (!valid_name(name, 1) || p == NULL ||
        (type == VAR_STRING && size == 0)) {
        errno = EINVAL;
        return -1;
    }
    diesel__console_init();
    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        errno = ENOMEM;
        return -1;
    }
    strcpy(v->name, name);
    v->type = type;
    v->p = p;
    v->size = size;
    v->writable = writable != 0;
    v->min = min;
    v->max = max;
    v->owner = owner;
    pthread_mutex_lock(&table_lock);
    /* A command's name is taken too (one namespace). */
    bisect((void *const *)commands, ncommands, name, &found);
    if (!found)
        at = bisect((void *const *)vars, nvars, name, &found);
    if (found)
        errno = EEXIST;
    else if (insert_at((void ***)&vars, &nvars, &cap_vars, at, v) == 0)
        rc = 0;
    pthread_mutex_unlock(&table_lock);
    if (rc != 0)
        free(v);
    return rc;
}

int
diesel_console_var_int(const char *name, int64_t *p, int writable)
{
    return var_add(name, VAR_INT, p, sizeof(*p), writable, INT64_MIN,
        INT64_MAX, NULL);
}

int
diesel_console_var_int_range(const char *name, int64_t *p, int64_t min,
    int64_t max)
{
    if (min > max) {
        errno = EINVAL;
        return -1;
    }
    return var_add(name, VAR_INT, p, sizeof(*p), 1, min, max, NULL);
}

int
diesel_console_var_double(const char *name, double *p, int writable)
{
    return var_add(name, VAR_DOUBLE, p, sizeof(*p), writable, INT64_MIN,
        INT64_MAX, NULL);
}

int
diesel_console_var_string(const char *name, char *buf, size_t size,
    int writable)
{
    return var_add(name, VAR_STRING, buf, size, writable, INT64_MIN,
        INT64_MAX, NULL);
}

int
diesel__console_var_owned(const char *name, int type, void *p, size_t size,
    int writable, int64_t min, int64_t max, struct diesel_module *owner)
{
    static const enum var_type types[] = { VAR_INT, VAR_DOUBLE, VAR_STRING };

    if (type < 0 || type > 2 || min > max) {
        errno = EINVAL;
        return -1;
    }
    return var_add(name, types[type], p, size, writable, min, max, owner);
}

/* Take out the entries of one array whose owner is owner; their count. */
static size_t
drop_owned(void **a, size_t *n, struct diesel_module *owner, int is_cmd)
{
    size_t i, j, gone = 0;

    for (i = j = 0; i < *n; i++) {
        struct diesel_module *o = is_cmd ?
            ((struct command *)a[i])->owner : ((struct var *)a[i])->owner;

        if (o == owner) {
            if (is_cmd)
                free(((struct command *)a[i])->help);
            free(a[i]);
            gone++;
        } else {
            a[j++] = a[i];
        }
    }
    *n = j;
    return gone;
}

/* A command is looked up and its module entered under the lock, and the
 * module's entries go under it too: so either the command runs (and the
 * module is busy), or it is no longer found. */
ssize_t
diesel__console_unregister_owned(struct diesel_module *owner)
{
    ssize_t gone = -1;

    assert(owner != NULL);
    pthread_mutex_lock(&table_lock);
    if (diesel__module_busy(owner))
        errno = EBUSY;
    else
        gone = (ssize_t)(drop_owned((void **)commands, &ncommands, owner,
            1) + drop_owned((void **)vars, &nvars, owner, 0));
    pthread_mutex_unlock(&table_lock);
    return gone;
}

/* ---- help, get, set, quit ------------------------------------------------- */

/*
 * A command's help line, "USAGE: what it does" by convention, split for
 * help's two columns: usage (the name when the line does not start with
 * it) and what it does.  The usage says "[--json]" exactly when the
 * command speaks JSON: put in after the name when the line forgot it,
 * taken out when the console would refuse it.
 */
static void
help_split(const struct command *c, char *usage, size_t size,
    const char **desc)
{
    size_t n = strlen(c->name), u = 0;
    const char *h = c->help, *colon = NULL;

    *desc = h;
    if (strncmp(h, c->name, n) == 0 && (h[n] == ' ' || h[n] == ':' ||
        h[n] == '\0')) {
        colon = strstr(h, ": ");
        if (colon == NULL && h[strlen(h) - 1] == ':')
            colon = h + strlen(h) - 1;
    }
    if (colon != NULL) {
        u = (size_t)(colon - h);
        *desc = colon[1] != '\0' ? colon + 2 : colon + 1;
    } else {
        u = n;
        h = c->name;
    }
    if (u >= size)
        u = size - 1;
    memcpy(usage, h, u);
    usage[u] = '\0';
    {
        char *j = strstr(usage, " [--json]");

        if (j != NULL && !c->json)
            memmove(j, j + 9, strlen(j + 9) + 1);
        else if (j == NULL && c->json && strlen(usage) + 10 < size) {
            memmove(usage + n + 9, usage + n, strlen(usage + n) + 1);
            memcpy(usage + n, " [--json]", 9);
        }
    }
}

static void
help_json(struct diesel_console_out *out, const struct command *c)
{
    char usage[256];
    const char *desc;

    help_split(c, usage, sizeof(usage), &desc);
    diesel_console_printf(out, "{\"name\":");
    diesel__console_out_json_string(out, c->name);
    diesel_console_printf(out, ",\"help\":");
    diesel__console_out_json_string(out, c->help);
    diesel_console_printf(out, ",\"usage\":");
    diesel__console_out_json_string(out, usage);
    diesel_console_printf(out, ",\"description\":");
    diesel__console_out_json_string(out, desc);
    diesel_console_printf(out, ",\"builtin\":%s,\"json\":%s}",
        c->builtin ? "true" : "false", c->json ? "true" : "false");
}

/* The commands with builtin == b, as a table; -1 when out of memory. */
static int
help_table(struct diesel_console_out *out, int b, const char *title)
{
    struct diesel_console_table *t = diesel_console_table_create(2);
    int rc = 0, any = 0;

    if (t == NULL)
        return -1;
    for (size_t i = 0; i < ncommands && rc == 0; i++) {
        char usage[256];
        const char *desc;

        if (commands[i]->builtin != b)
            continue;
        help_split(commands[i], usage, sizeof(usage), &desc);
        if (diesel_console_table_cell(t, "  %s", usage) < 0 ||
            diesel_console_table_cell(t, "%s", desc) < 0 ||
            diesel_console_table_row(t) < 0)
            rc = -1;
        any = 1;
    }
    if (rc == 0 && any) {
        diesel_console_printf(out, "%s\n", title);
        rc = diesel_console_table_print(t, out);
    }
    diesel_console_table_destroy(t);
    return rc;
}

static int
cmd_help(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    int rc = 0, found;
    size_t at;

    (void)arg;
    if (argc > 2)
        return diesel_console_error(out, "usage: help [--json] [COMMAND]");
    pthread_mutex_lock(&table_lock);
    if (argc == 2) {
        at = bisect((void *const *)commands, ncommands, argv[1], &found);
        if (!found) {
            rc = diesel_console_error(out, "no such command: %.64s",
                argv[1]);
        } else if (diesel_console_json(out)) {
            help_json(out, commands[at]);
            diesel_console_printf(out, "\n");
        } else {
            char usage[256];
            const char *desc;

            help_split(commands[at], usage, sizeof(usage), &desc);
            diesel__console_out_text(out, usage, strlen(usage));
            diesel_console_printf(out, "  ");
            diesel__console_out_text(out, desc, strlen(desc));
            diesel_console_printf(out, "\n");
        }
    } else if (diesel_console_json(out)) {
        diesel_console_printf(out, "[");
        for (size_t i = 0; i < ncommands; i++) {
            diesel_console_printf(out, "%s", i ? "," : "");
            help_json(out, commands[i]);
        }
        diesel_console_printf(out, "]\n");
    } else if (help_table(out, 1, "Built-in commands:") != 0 ||
        help_table(out, 0, "This service's commands:") != 0) {
        rc = diesel_console_error(out, "%s", strerror(errno));
    } else {
        diesel_console_printf(out, "[--json]: the reply is one JSON "
            "document; the others refuse --json.\n");
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

static const char *
type_name(enum var_type t)
{
    return t == VAR_INT ? "int" : t == VAR_DOUBLE ? "double" : "string";
}

static void
print_value(struct diesel_console_out *out, const struct var *v, int json)
{
    double d = 0;

    switch (v->type) {
    case VAR_INT:
        diesel_console_printf(out, "%lld",
            (long long)*(const int64_t *)v->p);
        break;
    case VAR_DOUBLE:
        d = *(const double *)v->p;
        if (json && !isfinite(d))
            diesel_console_printf(out, "null");
        else
            diesel_console_printf(out, "%.17g", d);
        break;
    case VAR_STRING: {
        /* The program may have filled all of it: never read past. */
        const char *s = v->p;
        size_t n = strnlen(s, v->size);
        char *tmp = malloc(n + 1);

        if (tmp == NULL)
            break;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        if (json)
            diesel__console_out_json_string(out, tmp);
        else
            diesel__console_out_text(out, tmp, n);
        free(tmp);
        break;
    }
    }
}

static void
print_var_json(struct diesel_console_out *out, const struct var *v)
{
    diesel_console_printf(out, "{\"name\":");
    diesel__console_out_json_string(out, v->name);
    diesel_console_printf(out, ",\"type\":\"%s\",\"writable\":%s,\"value\":",
        type_name(v->type), v->writable ? "true" : "false");
    print_value(out, v, 1);
    diesel_console_printf(out, "}");
}

/* A row of get's table: the value as print_value writes it. */
static int
var_cells(struct diesel_console_table *t, const struct var *v)
{
    int rc = diesel_console_table_cell(t, "%s", v->name) |
        diesel_console_table_cell(t, "%s", type_name(v->type)) |
        diesel_console_table_cell(t, "%s", v->writable ? "rw" : "ro");

    switch (v->type) {
    case VAR_INT:
        rc |= diesel_console_table_cell(t, "%lld",
            (long long)*(const int64_t *)v->p);
        break;
    case VAR_DOUBLE:
        rc |= diesel_console_table_cell(t, "%.17g", *(const double *)v->p);
        break;
    case VAR_STRING: {
        const char *s = v->p;

        rc |= diesel_console_table_cell(t, "%.*s", (int)strnlen(s, v->size),
            s);
        break;
    }
    }
    return rc | diesel_console_table_row(t);
}

static int
cmd_get(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    int json = diesel_console_json(out), rc = 0, found;
    size_t at;

    (void)arg;
    if (argc > 2)
        return diesel_console_error(out, "usage: get [--json] [NAME]");
    pthread_mutex_lock(&table_lock);
    if (argc == 2) {
        at = bisect((void *const *)vars, nvars, argv[1], &found);
        if (!found) {
            rc = diesel_console_error(out, "no such variable: %.64s",
                argv[1]);
        } else if (json) {
            print_var_json(out, vars[at]);
            diesel_console_printf(out, "\n");
        } else {
            print_value(out, vars[at], 0);
            diesel_console_printf(out, "\n");
        }
    } else {
        /* Every variable: NAME  TYPE  rw|ro  VALUE, aligned. */
        struct diesel_console_table *t = NULL;

        if (json)
            diesel_console_printf(out, "[");
        else if ((t = diesel_console_table_create(4)) == NULL)
            rc = diesel_console_error(out, "%s", strerror(errno));
        for (size_t i = 0; i < nvars && rc == 0; i++) {
            if (json) {
                diesel_console_printf(out, "%s", i ? "," : "");
                print_var_json(out, vars[i]);
                continue;
            }
            if (var_cells(t, vars[i]) != 0)
                rc = diesel_console_error(out, "%s", strerror(ENOMEM));
        }
        if (json)
            diesel_console_printf(out, "]\n");
        else if (rc == 0)
            diesel_console_table_print(t, out);
        diesel_console_table_destroy(t);
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

/* Parse value for v into *num or leave it to the caller (strings). */
static int
parse_int(struct diesel_console_out *out, const char *s, int64_t *v)
{
    char *end;
    long long x;

    /* strtoll would skip leading blanks and take "0x..." with base 0:
     * accept exactly an optional sign and decimal digits. */
    if (*s == '\0' || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
        return diesel_console_error(out, "not an integer: %.64s", s);
    errno = 0;
    x = strtoll(s, &end, 10);
    if (*end != '\0' || end == s)
        return diesel_console_error(out, "not an integer: %.64s", s);
    if (errno == ERANGE)
        return diesel_console_error(out, "out of range: %.64s (an integer "
            "from %lld to %lld)", s, (long long)INT64_MIN,
            (long long)INT64_MAX);
    *v = (int64_t)x;
    return 0;
}

static int
parse_double(struct diesel_console_out *out, const char *s, double *v)
{
    char *end;
    double x;

    if (*s == '\0' || *s == ' ' || *s == '\t')
        return diesel_console_error(out, "not a number: %.64s", s);
    errno = 0;
    x = strtod(s, &end);
    if (*end != '\0' || end == s)
        return diesel_console_error(out, "not a number: %.64s", s);
    if (!isfinite(x))
        return diesel_console_error(out, "not a finite number: %.64s", s);
    if (errno == ERANGE)
        return diesel_console_error(out, "out of range: %.64s", s);
    *v = x;
    return 0;
}

/* "greater than 0 and at most 86400", as the other range errors read. */
static void
range_words(char *buf, size_t size, int64_t min, int64_t max)
{
    int n;

    if (min == INT64_MIN)
        n = snprintf(buf, size, "at most %lld", (long long)max);
    else if (min == 1)
        n = snprintf(buf, size, "greater than 0");
    else
        n = snprintf(buf, size, "at least %lld", (long long)min);
    if (min != INT64_MIN && max != INT64_MAX && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " and at most %lld",
            (long long)max);
}

/*
 * set NAME VALUE stores the value and says what it set and what was
 * there, "interval: 5 (was 1)", so that a typo shows and an operator's
 * log of the session holds the value to go back to.
 */
static int
cmd_set(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct var *v;
    int64_t i = 0, oi;
    double d = 0, od;
    char *old = NULL, words[96];
    size_t at, n;
    int found, rc = 0;

    (void)arg;
    if (argc != 3)
        return diesel_console_error(out, "usage: set NAME VALUE");
    pthread_mutex_lock(&table_lock);
    at = bisect((void *const *)vars, nvars, argv[1], &found);
    if (!found) {
        rc = diesel_console_error(out, "no such variable: %.64s", argv[1]);
        goto out;
    }
    v = vars[at];
    if (!v->writable) {
        rc = diesel_console_error(out, "%s is read-only", v->name);
        goto out;
    }
    switch (v->type) {
    case VAR_INT:
        if ((rc = parse_int(out, argv[2], &i)) != 0)
            break;
        if (i < v->min || i > v->max) {
            range_words(words, sizeof(words), v->min, v->max);
            rc = diesel_console_error(out, "bad value '%.64s' for %s: want "
                "an integer %s", argv[2], v->name, words);
            break;
        }
        oi = *(int64_t *)v->p;
        *(int64_t *)v->p = i;
        diesel_console_printf(out, "%s: %lld (was %lld)\n", v->name,
            (long long)i, (long long)oi);
        break;
    case VAR_DOUBLE:
        if ((rc = parse_double(out, argv[2], &d)) != 0)
            break;
        od = *(double *)v->p;
        *(double *)v->p = d;
        diesel_console_printf(out, "%s: %.17g (was %.17g)\n", v->name, d,
            od);
        break;
    case VAR_STRING:
        n = strlen(argv[2]);
        if (n >= v->size) {
            rc = diesel_console_error(out, "too long: %s holds at most %zu "
                "bytes", v->name, v->size - 1);
            break;
        }
        /* The old value is shown escaped, as get shows it; without
         * memory for its copy, only the new one is. */
        old = strndup(v->p, v->size);
        memcpy(v->p, argv[2], n + 1);
        diesel_console_printf(out, "%s: ", v->name);
        diesel__console_out_text(out, argv[2], n);
        if (old != NULL) {
            diesel_console_printf(out, " (was ");
            diesel__console_out_text(out, old, strlen(old));
            diesel_console_printf(out, ")");
        }
        diesel_console_printf(out, "\n");
        free(old);
        break;
    }
out:
    pthread_mutex_unlock(&table_lock);
    return rc;
}

static int
cmd_quit(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argv;
    (void)arg;
    if (argc != 1)
        return diesel_console_error(out, "usage: quit");
    return 0;    /* the session sees the command was quit and closes */
}

/* ---- Lines and words ------------------------------------------------------ */

void
diesel__console_lines_init(struct diesel__console_lines *lb)
{
    lb->len = 0;
    lb->skipping = 0;
    lb->done = 0;
}

enum diesel__console_line_event
diesel__console_lines_next(struct diesel__console_lines *lb,
    const char *data, size_t n, size_t *used)
{
    const char *nl;
    size_t take, room;

    if (lb->done) {
        lb->len = 0;
        lb->done = 0;
    }
    nl = memchr(data, '\n', n);
    take = nl != NULL ? (size_t)(nl - data) : n;
    if (lb->skipping) {
        /* The rest of a line that was too long: drop it unseen. */
        if (nl == NULL) {
            *used = n;
            return DIESEL__CONSOLE_MORE;
        }
        lb->skipping = 0;
        *used = take + 1;
        return DIESEL__CONSOLE_MORE;
    }
    /* The line and its newline must fit in LINE_MAX bytes. */
    room = DIESEL__CONSOLE_LINE_MAX - 1 - lb->len;
    if (take > room) {
        lb->skipping = 1;
        lb->len = 0;
        *used = room + 1;
        return DIESEL__CONSOLE_TOO_LONG;
    }
    memcpy(lb->buf + lb->len, data, take);
    lb->len += take;
    if (nl == NULL) {
        *used = n;
        return DIESEL__CONSOLE_MORE;
    }
    lb->done = 1;
    *used = take + 1;
    return DIESEL__CONSOLE_LINE;
}

/*
 * The words are written over the line: a word never takes more bytes
 * than it was given (quotes and backslashes go), and each ends with a
 * NUL where its separator was, or at line[len], so line must have room
 * for len + 1 bytes.
 */
int
diesel__console_split(char *line, size_t len, char **argv, int max,
    const char **why)
{
    size_t i = 0;
    char *w = line;
    int argc = 0;

    for (;;) {
        char *start;

        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i >= len)
            break;
        if (argc == max) {
            *why = "too many words";
            return -1;
        }
        start = w;
        while (i < len && line[i] != ' ' && line[i] != '\t') {
            if (line[i] != '"') {
                *w++ = line[i++];
                continue;
            }
            for (i++;; ) {
                if (i >= len) {
                    *why = "unterminated quote";
                    return -1;
                }
                if (line[i] == '"') {
                    i++;
                    break;
                }
                if (line[i] == '\\' && i + 1 < len &&
                    (line[i + 1] == '"' || line[i + 1] == '\\'))
                    i++;
                *w++ = line[i++];
            }
        }
        /* The NUL may land on the separator: step over it first. */
        if (i < len)
            i++;
        *w++ = '\0';
        argv[argc++] = start;
    }
    return argc;
}

/* name, made safe for a one-line message: at most 40 bytes of it,
 * escaped (escape.c) with its quotes, so that it cannot close the quotes
 * the message puts around it. */
static void
safe_name(char *dst, size_t size, const char *name)
{
    size_t n = strlen(name), at = 0;

    if (diesel__escape(dst, size - 3, &at, name, n < 40 ? n : 40,
        DIESEL__ESC_QUOTED) < n)
        memcpy(dst + at, "...", 4);
}

int
diesel__console_execute(struct diesel_console_out *out, char *line,
    size_t len, int *quit)
{
    char *argv[DIESEL__CONSOLE_ARGS_MAX + 1];
    const char *why = NULL;
    struct command *c = NULL;
    diesel_console_fn fn = NULL;
    void *arg = NULL;
    struct diesel_module *owner = NULL;
    int json = 0, get_url = 0, loops = 0;
    size_t at;
    int argc, found, rc, j;

    *quit = 0;
    /* Arguments are C strings: a NUL would cut one short, silently. */
    if (memchr(line, '\0', len) != NULL)
        return diesel_console_error(out, "NUL byte in the line");
    argc = diesel__console_split(line, len, argv, DIESEL__CONSOLE_ARGS_MAX,
        &why);
    if (argc < 0) {
        if (strcmp(why, "too many words") == 0)
            return diesel_console_error(out, "too many words (limit %d)",
                DIESEL__CONSOLE_ARGS_MAX);
        return diesel_console_error(out, "%s", why);
    }
    if (argc == 0)
        return 0;
    /* --json asks for the machine-readable form, wherever it stands. */
    for (int i = j = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            out->json = 1;
        else
            argv[j++] = argv[i];
    }
    argc = j;
    argv[argc] = NULL;
    /* `get URL`, as diesel's dpython said it: no variable's name has
     * "://" in it (valid_name), so it is the program's HTTP client, where
     * it registered one as `fetch` (dconsole local does). */
    if (argc >= 2 && strcmp(argv[0], "get") == 0 &&
        strstr(argv[1], "://") != NULL)
        get_url = 1;
    pthread_mutex_lock(&table_lock);
    at = bisect((void *const *)commands, ncommands,
        get_url ? "fetch" : argv[0], &found);
    if (found) {
        c = commands[at];
        fn = c->fn;
        arg = c->arg;
        json = c->json;
        loops = c->builtin ? c->loops : 0;
        /* Its module cannot be unloaded until the command returns. */
        if ((owner = c->owner) != NULL)
            diesel__module_hold(owner);
    }
    pthread_mutex_unlock(&table_lock);
    if (fn == NULL && get_url)
        return diesel_console_error(out, "get of a URL needs an HTTP "
            "client, which this program has not registered (a `fetch` "
            "command: dconsole local has one); get NAME shows a variable");
    if (fn == NULL) {
        char name[DIESEL__CONSOLE_NAME_MAX * 4];

        safe_name(name, sizeof(name), argv[0]);
        return diesel_console_error(out, "unknown command \"%s\" (try help)",
            name);
    }
    /* A script that asks for JSON must not get text and success. */
    if (out->json && !json) {
        if (owner != NULL)
            diesel__module_release(owner);
        return diesel_console_error(out, "%s does not speak JSON: run it "
            "without --json (help marks the commands that take it)",
            argv[0]);
    }
    /* Beside other loops, or asked for one by name: each loop runs it on
     * its own (loops.c); alone, nothing changes. */
    if (loops != 0 && owner == NULL) {
        rc = diesel__console_loops(out, fn, arg, &argc, argv, loops);
        if (rc != 1)
            return rc;
    }
    errno = 0;
    if (owner != NULL) {
        /* The crash report names the module whose command crashed. */
        const struct diesel_module *was = diesel__module_enter_run(owner);

        rc = fn(out, argc, argv, arg);
        diesel__module_leave(owner, was);
    } else {
        rc = fn(out, argc, argv, arg);
    }
    if (rc != 0) {
        if (!out->has_err)
            diesel_console_error(out, "%s", errno != 0 ? strerror(errno) :
                "failed");
        return -1;
    }
    if (fn == cmd_quit)
        *quit = 1;
    return 0;
}

/* ---- Framing -------------------------------------------------------------- */

struct framer {
    struct diesel__console_sink *sink;
    char buf[4096];
    size_t n;
    int failed;
};

static void
fr_flush(struct framer *f)
{
    if (f->n > 0 && !f->failed && f->sink->write(f->sink->ctx, f->buf,
        f->n) != 0)
        f->failed = 1;
    f->n = 0;
}

static void
fr_put(struct framer *f, const char *s, size_t n)
{
    while (n > 0) {
        size_t k = sizeof(f->buf) - f->n;
        if (k > n)
            k = n;
        memcpy(f->buf + f->n, s, k);
        f->n += k;
        s += k;
        n -= k;
        if (f->n == sizeof(f->buf))
            fr_flush(f);
    }
}

/* Text as a reply carries it: escaped (escape.c), so that nothing a
 * command prints can end a reply or move the terminal. */
static void
fr_text(struct framer *f, const char *s, size_t n, int stop_at_nl)
{
    const char *nl = stop_at_nl ? memchr(s, '\n', n) : NULL;

    if (nl != NULL)
        n = (size_t)(nl - s);
    while (n > 0) {
        size_t used;

        /* Room for the longest escape and the NUL it leaves. */
        if (sizeof(f->buf) - f->n < 16)
            fr_flush(f);
        used = diesel__escape(f->buf, sizeof(f->buf), &f->n, s, n,
            DIESEL__ESC_TEXT);
        s += used;
        n -= used;
    }
}

static int
frame_status(struct framer *f, int status, const char *err)
{
    if (status == 0) {
        if (!f->sink->human)
            fr_put(f, "OK\n", 3);
    } else {
        fr_put(f, "ERR ", 4);
        fr_text(f, err, strlen(err), 1);
        fr_put(f, "\n", 1);
    }
    fr_flush(f);
    return f->failed ? -1 : 0;
}

/* out's text as reply lines ("| " and the text, escaped), no status. */
static void
frame_text(struct framer *f, const struct diesel_console_out *out)
{
    const char *p = out->buf, *end = out->len ? out->buf + out->len : p;

    while (p < end && !f->failed) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl != NULL ? nl : end;

        if (!f->sink->human)
            fr_put(f, "| ", 2);
        fr_text(f, p, (size_t)(stop - p), 0);
        fr_put(f, "\n", 1);
        p = nl != NULL ? nl + 1 : end;
    }
}

int
diesel__console_frame(struct diesel__console_sink *sink,
    const struct diesel_console_out *out, int status)
{
    struct framer f;

    f.sink = sink;
    f.n = 0;
    f.failed = 0;
    frame_text(&f, out);
    /* A reply cut at the limit did not get to its client whole: ERR, as
     * the built-ins say it, whatever the command returned, so that a
     * script does not take the cut text for all of it (dconsole exits
     * 1).  The note at its end says where. */
    if (status == 0 && diesel__console_out_cut(out))
        return frame_status(&f, -1, "reply too long (over the console's "
            "output limit, 16 MiB): its text was cut");
    return frame_status(&f, status, out->has_err ? out->err : "failed");
}


int
diesel__console_frame_error(struct diesel__console_sink *sink,
    const char *msg)
{
    struct framer f;

    f.sink = sink;
    f.n = 0;
    f.failed = 0;
    return frame_status(&f, -1, msg);
}

/* ---- Sessions ------------------------------------------------------------- */

struct session {
    int in, out;
    unsigned in_sock : 1;       /* recv/send rather than read/write */
    unsigned out_sock : 1;
    unsigned in_block : 1;      /* blocking descriptor: wait, then read */
    unsigned out_block : 1;
    int human;
    int64_t write_timeout_ms;
    int werr;                   /* why writing failed, once it did */
    struct diesel__console_lines lines;
    struct diesel_console_out reply;
    struct diesel__console_stream stream; /* reply.stream: log follow */
    size_t wlen;
    char wbuf[16384];
    char rbuf[4096];
};

/* write(2) to a pipe or terminal without dying of SIGPIPE: block it for
 * the call, and take back the one our write raised. */
static ssize_t
write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    int was_pending, err, sig;
    ssize_t w;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    w = write(fd, buf, n);
    err = errno;
    if (w < 0 && err == EPIPE && !was_pending) {
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE))
            sigwait(&pipe_set, &sig);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return w;
}

static int
s_flush(struct session *s)
{
    size_t off = 0;

    if (s->werr != 0)
        return -1;
    while (off < s->wlen) {
        size_t n = s->wlen - off;
        ssize_t w;

        if (s->out_sock) {
            w = diesel__platform_send(s->out, s->wbuf + off, n);
        } else if (s->out_block) {
            /* Ready for writing means room for PIPE_BUF bytes at least:
             * never more, so that the write cannot block the loop. */
            if (diesel_fd_wait(s->out, DIESEL_WRITE,
                s->write_timeout_ms) < 0)
                goto fail;
            w = write_nosigpipe(s->out, s->wbuf + off,
                n < PIPE_BUF ? n : PIPE_BUF);
        } else {
            w = write_nosigpipe(s->out, s->wbuf + off, n);
        }
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The peer does not read: wait, but not for ever. */
            if (diesel_fd_wait(s->out, DIESEL_WRITE,
                s->write_timeout_ms) < 0)
                goto fail;
            continue;
        }
        if (w == 0)
            errno = EPIPE;
        goto fail;
    }
    s->wlen = 0;
    return 0;
fail:
    s->werr = errno != 0 ? errno : EIO;
    s->wlen = 0;
    return -1;
}

static int
s_put(void *ctx, const char *buf, size_t n)
{
    struct session *s = ctx;

    while (n > 0) {
        size_t k = sizeof(s->wbuf) - s->wlen;
        if (k > n)
            k = n;
        memcpy(s->wbuf + s->wlen, buf, k);
        s->wlen += k;
        buf += k;
        n -= k;
        if (s->wlen == sizeof(s->wbuf)) {
            if (s_flush(s) != 0)
                return -1;
            /* A long reply (13 MB for the tasks of 100,000 green threads)
             * is framed in slices too, for a peer that reads it as fast
             * as it comes never makes the send wait.  Cancelled, it goes
             * on: the next wait fails. */
            if (diesel__current != NULL && diesel__now_ns() -
                diesel__loop->now >= DIESEL__CONSOLE_SLICE_NS)
                diesel__task_yield_loop();
        }
    }
    return s->werr != 0 ? -1 : 0;
}

/*
 * Streaming, for a command that sends its reply as it goes (log follow):
 * the lines so far go out now, framed as reply lines, and never make the
 * loop or the command wait for the peer.  Bytes left over from a send
 * the peer did not take go first next time; while some are left, or when
 * the new lines would not fit in the buffer, the new lines are not sent
 * (0) and the command counts them as dropped.
 */
static int
s_send_nowait(struct session *s)
{
    size_t off = 0;

    while (off < s->wlen) {
        struct pollfd pf = { s->out, POLLOUT, 0 };
        size_t n = s->wlen - off;
        ssize_t w;

        /* A descriptor left blocking takes PIPE_BUF bytes without
         * blocking once it polls writable; a non-blocking one, all it
         * can. */
        if (s->out_block) {
            if (poll(&pf, 1, 0) != 1)
                break;
            if (n > PIPE_BUF)
                n = PIPE_BUF;
        }
        if (s->out_sock)
            w = diesel__platform_send(s->out, s->wbuf + off, n);
        else
            w = write_nosigpipe(s->out, s->wbuf + off, n);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        s->werr = w == 0 || errno == 0 ? EPIPE : errno;
        s->wlen = 0;
        return -1;
    }
    memmove(s->wbuf, s->wbuf + off, s->wlen - off);
    s->wlen -= off;
    return 0;
}

/* Append to wbuf, never flushing: -1 if it does not fit. */
static int
s_put_nowait(void *ctx, const char *buf, size_t n)
{
    struct session *s = ctx;

    if (n > sizeof(s->wbuf) - s->wlen)
        return -1;
    memcpy(s->wbuf + s->wlen, buf, n);
    s->wlen += n;
    return 0;
}

static int
s_stream_send(struct diesel__console_stream *st,
    struct diesel_console_out *out)
{
    struct session *s = st->ctx;
    struct diesel__console_sink sink = { s_put_nowait, s, s->human };
    struct framer f;
    size_t mark;

    if (s->werr != 0 || s_send_nowait(s) != 0)
        return -1;
    /* Escaped, a byte takes 4 at most, and each line 3 more. */
    if (s->wlen > 0 || out->len * 4 + 3 * (out->len + 1) >
        sizeof(s->wbuf) - sizeof(f.buf))
        return 0;
    mark = s->wlen;
    f.sink = &sink;
    f.n = 0;
    f.failed = 0;
    frame_text(&f, out);
    fr_flush(&f);
    if (f.failed) {
        s->wlen = mark;
        return 0;
    }
    return s_send_nowait(s) != 0 ? -1 : 1;
}

static int
s_stream_input(struct diesel__console_stream *st)
{
    struct session *s = st->ctx;
    struct pollfd pf = { s->in, POLLIN, 0 };

    return s->werr != 0 || (poll(&pf, 1, 0) == 1 && pf.revents != 0);
}

/* Some bytes of input: > 0, 0 at EOF, -1 with errno. */
static ssize_t
s_read(struct session *s)
{
    for (;;) {
        ssize_t n;

        if (s->in_sock) {
            n = recv(s->in, s->rbuf, sizeof(s->rbuf), MSG_DONTWAIT);
        } else {
            if (s->in_block && diesel_fd_wait(s->in, DIESEL_READ, -1) < 0)
                return -1;
            n = read(s->in, s->rbuf, sizeof(s->rbuf));
        }
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        if (diesel_fd_wait(s->in, DIESEL_READ, -1) < 0)
            return -1;
    }
}

static void
kind_of(int fd, unsigned *sock, unsigned *block)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);

    *sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    *block = fl < 0 || !(fl & O_NONBLOCK);
}

/*
 * Who is at the other end of in, for `load` (console_module.c): a UNIX
 * socket's peer as the kernel says; for a terminal or a pipe, this
 * process (the program's own terminal, dconsole's local console); for
 * anything else (a TCP socket a program serves the console on) nobody
 * known.
 */
static void
peer_of(int in, long *pid, long *uid)
{
    struct stat st;
    pid_t p;
    uid_t u;

    *pid = *uid = -1;
    if (fstat(in, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (getsockname(in, (struct sockaddr *)&ss, &len) == 0 &&
            ss.ss_family == AF_UNIX &&
            diesel__platform_peer_cred(in, &p, &u) == 0) {
            *pid = (long)p;
            *uid = (long)u;
        }
    } else if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        *pid = (long)getpid();
        *uid = (long)getuid();
    }
}

int
diesel__console_serve(int in, int out, const char *greeting, int human,
    int64_t write_timeout_ms)
{
    long pid, uid;

    peer_of(in, &pid, &uid);
    return diesel__console_serve_peer(in, out, greeting, human,
        write_timeout_ms, pid, uid);
}

int
diesel__console_serve_peer(int in, int out, const char *greeting,
    int human, int64_t write_timeout_ms, long peer_pid, long peer_uid)
{
    struct diesel__console_sink sink;
    struct session *s;
    unsigned a, b;
    int rc = -1, err = 0, quit = 0;

    s = malloc(sizeof(*s));
    if (s == NULL)
        return -1;
    s->in = in;
    s->out = out;
    kind_of(in, &a, &b);
    s->in_sock = a;
    s->in_block = b;
    kind_of(out, &a, &b);
    s->out_sock = a;
    s->out_block = b;
    s->human = human;
    s->write_timeout_ms = write_timeout_ms;
    s->werr = 0;
    s->wlen = 0;
    diesel__console_lines_init(&s->lines);
    diesel__console_out_init(&s->reply);
    s->reply.peer_pid = peer_pid;
    s->reply.peer_uid = peer_uid;
    s->stream.send = s_stream_send;
    s->stream.input = s_stream_input;
    s->stream.ctx = s;
    s->reply.stream = &s->stream;
    sink.write = s_put;
    sink.ctx = s;
    sink.human = human;
    diesel__console_init();
    __atomic_add_fetch(&nsessions, 1, __ATOMIC_RELAXED);

    if (greeting != NULL)
        s_put(s, greeting, strlen(greeting));
    for (;;) {
        ssize_t n;
        const char *p;

        /* A prompt when no line is begun (a whole one was handled). */
        if (human && (s->lines.len == 0 || s->lines.done) &&
            !s->lines.skipping)
            s_put(s, ">>> ", 4);
        if (s_flush(s) != 0)
            break;
        n = s_read(s);
        if (n <= 0) {
            if (n == 0)
                rc = 0;
            else
                err = errno;
            break;
        }
        for (p = s->rbuf; n > 0 && !quit && s->werr == 0; ) {
            enum diesel__console_line_event ev;
            size_t used;

            ev = diesel__console_lines_next(&s->lines, p, (size_t)n, &used);
            p += used;
            n -= (ssize_t)used;
            if (ev == DIESEL__CONSOLE_TOO_LONG) {
                char msg[64];

                snprintf(msg, sizeof(msg), "line too long (limit %d bytes)",
                    DIESEL__CONSOLE_LINE_MAX);
                diesel__console_frame_error(&sink, msg);
            } else if (ev == DIESEL__CONSOLE_LINE) {
                int st = diesel__console_execute(&s->reply, s->lines.buf,
                    s->lines.len, &quit);
                diesel__console_frame(&sink, &s->reply, st);
                diesel__console_out_reset(&s->reply);
                /* Commands sent back to back run in slices too, as the
                 * walks do: once a slice has gone by, the replies so far
                 * go out (a command may have started something that
                 * will hold the loop) and the loop turns before the
                 * next.  A failed send ends the session (werr);
                 * cancelled, it goes on to its next wait, which fails. */
                if (diesel__current != NULL && diesel__now_ns() -
                    diesel__loop->now >= DIESEL__CONSOLE_SLICE_NS &&
                    s_flush(s) == 0)
                    (void)diesel__task_yield_loop();
            }
        }
        if (quit) {
            rc = s_flush(s);
            break;
        }
    }
    if (rc != 0 && err == 0)
        err = s->werr != 0 ? s->werr : EIO;
    diesel__console_out_fini(&s->reply);
    free(s);
    __atomic_sub_fetch(&nsessions, 1, __ATOMIC_RELAXED);
    if (rc != 0)
        errno = err;
    return rc;
}

int
diesel_console_serve_fds(int in, int out)
{
    if (diesel__running("diesel_console_serve_fds") == NULL)
        return -1;
    if (in < 0 || out < 0) {
        errno = EBADF;
        return -1;
    }
    return diesel__console_serve(in, out, NULL, isatty(in),
        DIESEL__CONSOLE_WRITE_TIMEOUT_MS);
}
