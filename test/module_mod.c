/*
 * module_mod.c: a module for check_module.c, loaded into
 * test/console_app_child with the console's `load`.
 *
 * Commands: modhello (prints "hello from modtest" and the load's
 * arguments), modcrash (dereferences NULL), modnap MS (parks in
 * diesel_sleep, which the child exports with -rdynamic: a module that
 * uses the service's own symbols, so that `unload` can be tried while
 * one of its commands runs).  Variables: modvar (int, writable, 5) and,
 * where the service's api is large enough, modrange (int, 2, which set
 * takes from 2 to 12 only).
 * `load PATH fail` makes init fail after registering modhello.  fini
 * logs "modtest fini".  Built with -DMODULE_VERSION=99 it claims another
 * interface version.
 */
#include <stddef.h>
#include <stdint.h>

#include <diesel.h>

#ifndef MODULE_VERSION
#define MODULE_VERSION DIESEL_MODULE_VERSION
#endif

/* Weak: present in a service linked with -rdynamic only. */
extern int diesel_sleep(int64_t ms) __attribute__((weak));

static const struct diesel_module_api *api;
static int64_t modvar = 5, modrange = 2;
static volatile int *volatile nowhere;   /* NULL: modcrash writes there */
static char args[256];

static int
cmd_hello(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    api->console_printf(out, "hello from modtest%s%s\n", args[0] ? " " : "",
        args);
    return 0;
}

static int
cmd_crash(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)out;
    (void)argc;
    (void)argv;
    (void)arg;
    *nowhere = 1;
    return 0;
}

static int
cmd_nap(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    int64_t ms = 0;

    (void)arg;
    if (argc != 2 || diesel_sleep == NULL)
        return api->console_error(out, "usage: modnap MS");
    for (const char *p = argv[1]; *p >= '0' && *p <= '9'; p++)
        ms = ms * 10 + (*p - '0');
    diesel_sleep(ms);
    api->console_printf(out, "napped\n");
    return 0;
}

static int
init(const struct diesel_module_api *a, int argc, char **argv,
    struct diesel_console_out *out)
{
    size_t n = 0;

    api = a;
    for (int i = 1; i < argc; i++) {
        for (const char *p = argv[i]; *p && n + 2 < sizeof(args); p++)
            args[n++] = *p;
        if (i + 1 < argc && n + 2 < sizeof(args))
            args[n++] = ' ';
    }
    args[n] = '\0';
    if (a->command(a->module, "modhello", "modhello: say hello", cmd_hello,
        NULL) != 0)
        return a->console_error(out, "cannot add modhello");
    if (argc > 1 && argv[1][0] == 'f')
        return a->console_error(out, "told to fail");
    if (a->command(a->module, "modcrash", "modcrash: crash", cmd_crash,
        NULL) != 0 || a->command(a->module, "modnap", "modnap MS: sleep",
        cmd_nap, NULL) != 0 || a->var_int(a->module, "modvar", &modvar,
        1) != 0)
        return a->console_error(out, "cannot register");
    /* A later field: checked against the service's size before use. */
    if (a->size > offsetof(struct diesel_module_api, var_int_range)) {
        if (a->var_int_range(a->module, "modbad", &modrange, 3, 2) == 0)
            return a->console_error(out, "modbad: min > max accepted");
        if (a->var_int_range(a->module, "modrange", &modrange, 2, 12) != 0)
            return a->console_error(out, "cannot register modrange");
    }
    return 0;
}

static void
fini(void)
{
    api->log_write("modtest", DIESEL_LOG_WARNING, "modtest fini");
}

__attribute__((visibility("default")))
const struct diesel_module_info diesel_module = {
    MODULE_VERSION, "modtest", init, fini
};
