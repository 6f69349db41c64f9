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
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "console_builtins.h"
#include "internal.h"

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
