/*
 * console.h: PLACEHOLDER owned by the console branch.
 *
 * The console branch writes the real lib/console.h (and the public
 * diesel_console_fn in include/diesel.h); on merge, theirs wins and this
 * file goes.  It is copied here, from the agreed interface only, so that
 * the built-in commands (console_builtins.c) compile and are tested
 * before the console lands (test/builtins_standin.c implements these
 * calls for the test binary meanwhile).
 */
#ifndef DIESEL_CONSOLE_H
#define DIESEL_CONSOLE_H

#include <stddef.h>

#include "diesel.h"

/* Where a command writes its reply. */
struct diesel_console_out {
    char *buf;           /* the output so far */
    size_t len, cap, limit;
    int json;            /* the client asked for --json */
    char err[256];       /* the ERR message */
    int has_err;
};

typedef int (*diesel_console_fn)(struct diesel_console_out *out, int argc,
    char **argv, void *arg);

int diesel_console_printf(struct diesel_console_out *, const char *fmt, ...)
    DIESEL_PRINTF(2, 3);
int diesel_console_error(struct diesel_console_out *, const char *fmt, ...)
    DIESEL_PRINTF(2, 3);
int diesel_console_json(const struct diesel_console_out *);
int diesel__console_register(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int builtin);
int diesel__console_sessions(void);
unsigned long diesel__console_dropped(void);

#endif /* DIESEL_CONSOLE_H */
