/*
 * builtins_standin.c: TEMPORARY stand-ins for the console calls that the
 * built-in commands use, until the console branch lands.
 *
 * The Makefile links this file into the test binary only while
 * lib/console_out.c (the console branch's real implementation) does not
 * exist, so it goes away by itself at the merge; then delete it.  It
 * implements exactly the agreed interface (lib/console.h), plus
 * t_standin_*() for test/check_builtins.c, which declares those weak.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

int
diesel_console_printf(struct diesel_console_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (o->limit != 0 && o->len + (size_t)n > o->limit) {
        errno = ENOBUFS;
        return -1;
    }
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        char *b;

        while (cap < o->len + (size_t)n + 1)
            cap *= 2;
        b = realloc(o->buf, cap);
        if (b == NULL)
            return -1;
        o->buf = b;
        o->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
    return n;
}

int
diesel_console_error(struct diesel_console_out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->err, sizeof(o->err), fmt, ap);
    va_end(ap);
    o->has_err = 1;
    return -1;
}

int
diesel_console_json(const struct diesel_console_out *o)
{
    return o->json;
}

#define MAX_COMMANDS 64

static struct {
    const char *name;
    diesel_console_fn fn;
    int builtin;
} commands[MAX_COMMANDS];
static int ncommands;

int
diesel__console_register(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int builtin)
{
    (void)help;
    (void)arg;
    for (int i = 0; i < ncommands; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            errno = EEXIST;
            return -1;
        }
    }
    if (ncommands == MAX_COMMANDS) {
        errno = ENOMEM;
        return -1;
    }
    commands[ncommands].name = name;
    commands[ncommands].fn = fn;
    commands[ncommands].builtin = builtin;
    ncommands++;
    return 0;
}

static int sessions;
static unsigned long dropped;

int
diesel__console_sessions(void)
{
    return sessions;
}

unsigned long
diesel__console_dropped(void)
{
    return dropped;
}

/* For the tests: what was registered, and the figures stats shows. */
diesel_console_fn
t_standin_command(const char *name, int *builtin)
{
    for (int i = 0; i < ncommands; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            *builtin = commands[i].builtin;
            return commands[i].fn;
        }
    }
    return NULL;
}

void
t_standin_figures(int s, unsigned long d)
{
    sessions = s;
    dropped = d;
}
