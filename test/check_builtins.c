/*
 * check_builtins.c: the console's built-in commands (pid, tasks, stacks,
 * stats, mem, fds, log, cancel), called directly inside a real loop with
 * real green threads, and the backtraces of suspended green threads.
 *
 * The commands write into a struct diesel_console_out; until the console
 * branch lands, test/builtins_standin.c provides the calls they use, and
 * its extras (t_standin_*) are declared weak here so that this file works
 * with the real console too.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <netinet/in.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "internal.h"
#include "backtrace.h"
#include "frame.h"
#include "dwarf.h"
#include "console_builtins.h"
#include "sanitize.h"
#include "hostile.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>) && !defined(DIESEL_NO_VALGRIND)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_UNDEFINED
#define VALGRIND_MAKE_MEM_UNDEFINED(a, n) ((void)(a), (void)(n))
#define VALGRIND_MAKE_MEM_NOACCESS(a, n) ((void)(a), (void)(n))
#endif

/* The stand-in's extras; NULL once the real console is linked. */
diesel_console_fn t_standin_command(const char *name, int *builtin)
    __attribute__((weak));
void t_standin_figures(int sessions, unsigned long dropped)
    __attribute__((weak));

/* ---- Running a command --------------------------------------------------- */

static const struct {
    const char *name;
    diesel_console_fn fn;
} cmds[] = {
    { "pid", diesel__cmd_pid },
    { "tasks", diesel__cmd_tasks },
    { "stacks", diesel__cmd_stacks },
    { "stats", diesel__cmd_stats },
    { "mem", diesel__cmd_mem },
    { "fds", diesel__cmd_fds },
    { "log", diesel__cmd_log },
    { "cancel", diesel__cmd_cancel },
};

/* Run a command line (words split on spaces); output limit 0 means the
 * console's own. */
static struct t_reply
cmd_limit(const char *line, size_t limit, int json_flag)
{
    char name[32];
    diesel_console_fn fn = NULL;

    snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, " "), line);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmds[i].name, name) == 0)
            fn = cmds[i].fn;
    }
    ck_assert_msg(fn != NULL, "no command %s", name);
    return t_console_fn(fn, line, limit, json_flag);
}

static struct t_reply
cmd(const char *line)
{
    return cmd_limit(line, 0, 0);
}

static struct t_reply
cmd_ok(const char *line)
{
    struct t_reply r = cmd(line);

    t_reply_ok(&r, line);
    return r;
}

/* The command fails, and its message contains want. */
static void
cmd_err(const char *line, const char *want)
{
    struct t_reply r = cmd(line);

    t_reply_err(&r, line, want, 0);
}

static int
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The line of text that starts with prefix, copied into buf; NULL if none. */
static char *
line_starting(const char *text, const char *prefix, char *buf, size_t size)
{
    const char *p = text;
    size_t n = strlen(prefix);

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len >= n && strncmp(p, prefix, n) == 0) {
            snprintf(buf, size, "%.*s", (int)len, p);
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* line (up to its newline) with each run of two or more spaces, which
 * is what separates a table's columns, as " | ". */
static char *
cells(const char *line, char *buf, size_t size)
{
    size_t n = 0;

    for (const char *p = line; *p != '\0' && *p != '\n' && n + 4 < size;
        p++) {
        if (p[0] == ' ' && p[1] == ' ') {
            while (p[1] == ' ')
                p++;
            memcpy(buf + n, " | ", 3);
            n += 3;
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    return buf;
}

/* The first row of text whose cells, as cells() writes them, begin with
 * want; its cells in buf. */
static char *
row_starting(const char *text, const char *want, char *buf, size_t size)
{
    for (const char *p = text; p != NULL && *p != '\0'; ) {
        if (strncmp(cells(p, buf, size), want, strlen(want)) == 0)
            return buf;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return NULL;
}

/* The terminal column (UTF-8 characters, East Asian wide ones two, as
 * console_table.c counts) where each cell of line starts; their count. */
static int
cell_columns(const char *line, int *col, int max)
{
    int n = 0, c = 0;
    const unsigned char *p = (const unsigned char *)line;

    while (*p != '\0' && *p != '\n' && n < max) {
        if (p == (const unsigned char *)line || (p[-1] == ' ' &&
            p[-2] == ' ' && *p != ' '))
            col[n++] = c;
        if ((*p & 0xc0) != 0x80)
            c += *p >= 0xe3 && *p <= 0xe9 ? 2 : 1;
        p++;
    }
    return n;
}

/* Every row from the header (the line starting with header) to the line
 * that holds end (or the end of text) has its cells where the header has its columns. */
static void
ck_table_aligned(const char *text, const char *header, const char *end)
{
    int hcol[16], col[16], nh, n, rows = 0;
    const char *p = strstr(text, header);

    ck_assert_msg(p != NULL, "no header '%s' in:\n%s", header, text);
    nh = cell_columns(p, hcol, 16);
    for (p = strchr(p, '\n') + 1; *p != '\0' && (end == NULL ||
        strstr(p, end) == NULL || strstr(p, end) > strchr(p, '\n'));
        p = strchr(p, '\n') + 1) {
        n = cell_columns(p, col, 16);
        ck_assert_msg(n <= nh, "more cells than columns: %.*s",
            (int)strcspn(p, "\n"), p);
        for (int i = 0; i < n; i++)
            ck_assert_msg(col[i] == hcol[i], "cell %d at column %d, its "
                "header at %d:\n%s", i, col[i], hcol[i], text);
        rows++;
    }
    ck_assert_int_gt(rows, 0);
}

/*
 * p points at a group's "\n    ids: ..." line; if the next line is the
 * fold of the library's frames, "    (WHAT: N library frame[s])", the
 * line after it; else NULL.
 */
static const char *
after_fold(const char *p, const char *what)
{
    char head[128];
    int n = 0, end = 0;

    if (p == NULL || (p = strchr(p + 1, '\n')) == NULL)
        return NULL;
    p++;
    snprintf(head, sizeof(head), "    (%s: ", what);
    if (!starts_with(p, head))
        return NULL;
    p += strlen(head);
    if (sscanf(p, "%d library frame%n", &n, &end) != 1 || end == 0 || n < 1)
        return NULL;
    p += end;
    if (starts_with(p, n > 1 ? "s)\n" : ")\n"))
        return p + (n > 1 ? 3 : 2);
    return NULL;
}

/* The line for green thread id in tasks' text output. */
static char *
task_line(const char *text, int64_t id, char *buf, size_t size)
{
    char prefix[32];

    snprintf(prefix, sizeof(prefix), "%lld  ", (long long)id);
    return line_starting(text, prefix, buf, size);
}

/* ---- Green threads to look at -------------------------------------------- */

static __attribute__((noinline)) int
sleeper_a(void *arg)
{
    int64_t ms = arg ? *(int64_t *)arg : 10000;

    /* Not a tail call, so that the frame stays for the backtrace. */
    return diesel_sleep(ms) == 0 ? 0 : errno + 1000; /* line: sleeper_a */
}

static __attribute__((noinline)) int
sleeper_b(void *arg)
{
    (void)arg;
    return diesel_sleep(10000) == 0 ? 1 : 2;
}

static volatile int c_depth = 3;

static __attribute__((noinline)) int
sleeper_c_inner(int depth)
{
    volatile int keep = depth;   /* a frame per level: no loop made of it */

    if (depth > 0)
        return sleeper_c_inner(depth - 1) + keep;
    return diesel_sleep(10000) == 0 ? keep : 1;
}

static __attribute__((noinline)) int
sleeper_c(void *arg)
{
    (void)arg;
    return sleeper_c_inner(c_depth) + 1;
}

static int read_fd = -1;

static __attribute__((noinline)) int
fd_reader(void *arg)
{
    int fd = *(int *)arg;
    int r = diesel_fd_wait(fd, DIESEL_READ, 5000); /* line: fd_reader */

    return r < 0 ? errno + 1000 : 0;
}

static __attribute__((noinline)) int
joiner(void *arg)
{
    int64_t id = *(int64_t *)arg;
    int st;

    return diesel_task_join(id, &st, -1) == 0 ? 0 : errno + 1000;
}

static __attribute__((noinline)) int
yielder(void *arg)
{
    (void)arg;
    while (diesel_task_yield() == 0)
        ;
    return 0;
}

static int
nothing(void *arg)
{
    (void)arg;
    return 0;
}

/* ---- Registration -------------------------------------------------------- */

START_TEST(register_adds_every_builtin_once)
{
    static const char *names[] = { "pid", "tasks", "stacks", "stats", "mem",
        "fds", "log", "cancel" };

    if (t_standin_command == NULL)
        return;     /* the real console: its own suite checks this */
    diesel__console_builtins_register();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int builtin = 0;
        diesel_console_fn fn = t_standin_command(names[i], &builtin);

        ck_assert_msg(fn != NULL, "%s not registered", names[i]);
        ck_assert_int_eq(builtin, 1);
        ck_assert_ptr_eq(fn, cmds[i].fn);
    }
}
END_TEST

/* ---- tasks --------------------------------------------------------------- */

static int sv[2] = { -1, -1 };

static int
tasks_main(void *arg)
{
    int64_t s[3], rd, jn, y, fresh, target;
    struct t_reply r;
    char line[1024], want[128];
    int64_t self = diesel_task_self();

    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    read_fd = sv[0];
    for (int i = 0; i < 3; i++)
        s[i] = diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    rd = diesel_task_spawn("reader", fd_reader, &read_fd, 0);
    target = s[0];
    jn = diesel_task_spawn("joiner", joiner, &target, 0);
    y = diesel_task_spawn("yielder", yielder, NULL, 0);
    ck_assert_int_eq(diesel_sleep(100), 0);
    fresh = diesel_task_spawn("fresh", nothing, NULL, 0);

    r = cmd_ok("tasks");
    ck_assert_ptr_nonnull(line_starting(r.out, "ID  NAME", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, "WAITS ON"));
    ck_assert_ptr_nonnull(strstr(line, "SPAWNED AT"));

    /* Exact counts: main runs; yielder and fresh are ready. */
    ck_assert_ptr_nonnull(line_starting(r.out, "8 green threads: 1 running, "
        "2 ready, 2 waiting, 3 sleeping", line, sizeof(line)));

    ck_assert_ptr_nonnull(task_line(r.out, self, line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, " main "));
    ck_assert_ptr_nonnull(strstr(line, " running "));

    for (int i = 0; i < 3; i++) {
        double forv, timer;
        char *p;

        ck_assert_ptr_nonnull(task_line(r.out, s[i], line, sizeof(line)));
        ck_assert_ptr_nonnull(strstr(line, " sleeper "));
        ck_assert_ptr_nonnull(strstr(line, " sleeping "));
        p = strstr(line, "sleep, timer ");
        ck_assert_ptr_nonnull(p);
        timer = strtod(p + 13, NULL);
        ck_assert_msg(timer > 9.0 && timer <= 10.0, "timer %f", timer);
        /* FOR: the 4th column. */
        p = strstr(line, " sleeping ");
        forv = strtod(p + 10, NULL);
        ck_assert_msg(forv >= 0.09 && forv < 5.0, "for %f: %s", forv, line);
        /* Spawned at: this file and a line number. */
        ck_assert_ptr_nonnull(strstr(line, "check_builtins.c:"));
    }
    ck_assert_ptr_nonnull(task_line(r.out, rd, line, sizeof(line)));
    snprintf(want, sizeof(want), "fd %d read, peer unix:, timer 4.", sv[0]);
    ck_assert_msg(strstr(line, want) != NULL, "%s", line);
    ck_assert_ptr_nonnull(strstr(line, " waiting "));
    ck_assert_ptr_nonnull(task_line(r.out, jn, line, sizeof(line)));
    snprintf(want, sizeof(want), "join %lld (sleeper)", (long long)s[0]);
    ck_assert_msg(strstr(line, want) != NULL, "%s", line);
    ck_assert_ptr_nonnull(task_line(r.out, y, line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, " ready "));
    ck_assert_ptr_nonnull(task_line(r.out, fresh, line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, " ready "));
    /* Never ran: no switches, no stack in use. */
    ck_assert_msg(strstr(line, " 0         0.0K/1") != NULL, "%s", line);
    free(r.out);

    /* The same facts in JSON. */
    r = cmd_ok("tasks --json");
    ck_assert_json(r.out);
    ck_assert_int_eq((int)t_json_num(r.out, "count"), 8);
    snprintf(want, sizeof(want), "{\"id\":%lld,\"name\":\"reader\","
        "\"state\":\"waiting\"", (long long)rd);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    snprintf(want, sizeof(want), "\"wait\":{\"kind\":\"fd\",\"fd\":%d,"
        "\"events\":\"read\",\"peer\":\"unix:\",\"timer_s\":4.", sv[0]);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    snprintf(want, sizeof(want), "\"wait\":{\"kind\":\"join\","
        "\"target\":%lld}", (long long)s[0]);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    ck_assert_ptr_nonnull(strstr(r.out, "\"wait\":{\"kind\":\"sleep\","
        "\"timer_s\":9."));
    ck_assert_ptr_nonnull(strstr(r.out, "\"state\":\"running\",\"waits_on\":"
        "null,\"wait\":null,\"for_s\":null"));
    /* The size asked for, and the rest of the record's page. */
    ck_assert_double_ge(t_json_num(r.out, "stack_size"), 131072);
    ck_assert_double_lt(t_json_num(r.out, "stack_size"), 131072 + 8192);
    free(r.out);

    /* The console's own --json flag works as well as the word. */
    r = cmd_limit("tasks", 0, 1);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_json(r.out);
    free(r.out);

    cmd_err("tasks extra", "usage: tasks [--json]");
    cmd_err("tasks --bogus", "unknown option '--bogus'");

    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(tasks_lists_ids_names_states_waits_and_durations)
{
    ck_assert_int_eq(t_run(tasks_main, NULL), 0);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

static int
spawned_by_call_main(void *arg)
{
    struct t_reply r;
    char line[1024], want[256];
    int64_t id;

    (void)arg;
    /* The function form skips the file:line macro: the console names the
     * caller of diesel_task_spawn instead, with the call's file and line
     * from this file's line table (it is built with -g). */
    id = (diesel_task_spawn)("plain", sleeper_b, NULL, 0); /* line: spawn */
    ck_assert_int_eq(diesel_sleep(20), 0);
    r = cmd_ok("tasks");
    ck_assert_ptr_nonnull(task_line(r.out, id, line, sizeof(line)));
    snprintf(want, sizeof(want), "spawned_by_call_main (%s:%d)", __FILE__,
        t_source_line(__FILE__, "spawn"));
    ck_assert_msg(strstr(line, want) != NULL, "%s", line);
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(tasks_names_the_spawning_call_without_the_macro)
{
    ck_assert_int_eq(t_run(spawned_by_call_main, NULL), 0);
}
END_TEST

/*
 * Columns are sized from the rows: a name, a wait and a spawn site longer
 * than any fixed field (a peer address, a UTF-8 name with wide
 * characters, a name of the longest kind) leave every later column where
 * the header has it.
 */
static int
aligned_main(void *arg)
{
    struct t_reply r;
    char line[1024];
    int64_t a, b;

    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    read_fd = sv[0];
    a = diesel_task_spawn("a-name-of-thirty-one-bytes-long", fd_reader,
        &read_fd, 0);
    b = diesel_task_spawn("\xe5\x90\x8d\xe5\x89\x8d-na\xc3\xafve", sleeper_a,
        NULL, 0);
    diesel_task_spawn("x", sleeper_b, NULL, 0);
    ck_assert_int_eq(diesel_sleep(20), 0);
    r = cmd_ok("tasks");
    ck_table_aligned(r.out, "ID  ", "green threads:");
    ck_assert_ptr_nonnull(task_line(r.out, a, line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, "a-name-of-thirty-one-bytes-long  "));
    ck_assert_ptr_nonnull(task_line(r.out, b, line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, "\xe5\x90\x8d\xe5\x89\x8d-na\xc3\xafve  "));
    free(r.out);
    close(sv[0]);
    close(sv[1]);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(tasks_long_cells_keep_later_columns_aligned)
{
    ck_assert_int_eq(t_run(aligned_main, NULL), 0);
}
END_TEST

/* The table helper itself: widths on the escaped text (a control byte
 * takes four columns as \xHH), wide characters two columns, a cell over
 * the cap cut with "...", the last column never cut nor padded. */
START_TEST(table_sizes_columns_from_escaped_cells_and_caps_them)
{
    struct diesel_console_out o;
    struct diesel_console_table *t = diesel_console_table_create(3);
    char big[200];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_ptr_nonnull(t);
    diesel__console_out_init(&o);
    ck_assert_int_eq(diesel_console_table_cell(t, "A"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "B"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "C"), 0);
    ck_assert_int_eq(diesel_console_table_row(t), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "a\033b"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "\xe5\x90\x8d"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "%s", big), 0);
    ck_assert_int_eq(diesel_console_table_row(t), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "%s", big), 0);
    ck_assert_int_eq(diesel_console_table_row(t), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "1"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "2"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "3"), 0);
    ck_assert_int_eq(diesel_console_table_cell(t, "4"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_console_table_row(t), 0);
    ck_assert_int_eq(diesel_console_table_print(t, &o), 0);
    ck_assert_ptr_nonnull(o.buf);
    o.buf[o.len] = '\0';
    {
        char want[1024], cut[64];

        memset(cut, 'x', 57);
        strcpy(cut + 57, "...");
        snprintf(want, sizeof(want),
            "A%*s  B   C\n"
            "a\\x1bb%*s  \xe5\x90\x8d  %s\n"
            "%s\n"
            "1%*s  2   3\n", 59, "", 54, "", big, cut, 59, "");
        ck_assert_str_eq(o.buf, want);
    }
    diesel__console_out_fini(&o);
    diesel_console_table_destroy(t);
    errno = 0;
    ck_assert_ptr_null(diesel_console_table_create(0));
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- stacks -------------------------------------------------------------- */

static int
stacks_main(void *arg)
{
    int64_t b, c, rd, ids[50];
    struct t_reply r;
    char line[1024], want[128];
    const char *p;
    int pfd[2];

    (void)arg;
    ck_assert_int_eq(pipe(pfd), 0);
    read_fd = pfd[0];
    for (int i = 0; i < 50; i++)
        ids[i] = diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    b = diesel_task_spawn("sleeper-b", sleeper_b, NULL, 0);
    c = diesel_task_spawn("sleeper-c", sleeper_c, NULL, 0);
    rd = diesel_task_spawn("reader", fd_reader, &read_fd, 0);
    ck_assert_int_eq(diesel_sleep(20), 0);

    r = cmd_ok("stacks");
    /* The big group comes first, with a capped list of names and its
     * ids as one range. */
    ck_assert_msg(starts_with(r.out, "[50] === sleeper, sleeper, sleeper, "
        "sleeper, sleeper, sleeper, sleeper, sleeper, ... ===\n"), "%s",
        r.out);
    snprintf(want, sizeof(want), "    ids: %lld-%lld\n", (long long)ids[0],
        (long long)ids[49]);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    /* Its frames: the library's folded into one line that names the call
     * it is parked in, then the sleeper's function with the file and line
     * of that call, and nothing under it: the green thread's entry ends
     * the stack. */
    p = after_fold(strstr(r.out, "\n    ids: "), "parked in diesel_sleep");
    snprintf(want, sizeof(want), "    sleeper_a (%s:%d)\n[1] === ", __FILE__,
        t_source_line(__FILE__, "sleeper_a"));
    ck_assert_msg(p != NULL && starts_with(p, want), "want %s in %s", want,
        r.out);
    p = after_fold(strstr(strstr(r.out, "[1] === reader ===\n"),
        "\n    ids: "), "parked in diesel_fd_wait");
    snprintf(want, sizeof(want), "    fd_reader (%s:%d)\n", __FILE__,
        t_source_line(__FILE__, "fd_reader"));
    ck_assert_msg(p != NULL && starts_with(p, want), "want %s in %s", want,
        r.out);
    /* No frame without a name: makecontext's entry is cut. */
    ck_assert_msg(strstr(r.out, "??") == NULL, "%s", r.out);
    ck_assert_ptr_null(strstr(r.out, "trampoline"));
    /* The three others (and main, running) alone. */
    ck_assert_ptr_nonnull(strstr(r.out, "[1] === sleeper-b ===\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "[1] === sleeper-c ===\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "[1] === reader ===\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "[1] === main ===\n"));
    ck_assert_ptr_nonnull(strstr(r.out,
        "(running: this green thread serves the console)"));
    ck_assert_ptr_nonnull(strstr(strstr(r.out, "[1] === sleeper-b ==="),
        "    sleeper_b (test/check_"));
    /* sleeper_c recursed 3 times below itself. */
    p = strstr(r.out, "[1] === sleeper-c ===");
    for (int i = 0; i < 4; i++) {
        p = strstr(p, "    sleeper_c_inner");
        ck_assert_msg(p != NULL, "%s", r.out);
        p++;
    }
    ck_assert_ptr_null(strstr(r.out, "diesel__task_park"));
    ck_assert_ptr_nonnull(line_starting(r.out, "54 green threads, 5 distinct "
        "stacks", line, sizeof(line)));
    free(r.out);

    /* --all: the library's frames, innermost first, down to the green
     * thread's entry (the library's trampoline) and no further. */
    r = cmd_ok("stacks --all");
    p = strstr(r.out, "[50] === ");
    ck_assert_msg(p != NULL && (p = strstr(p, "\n    ids: ")) != NULL &&
        (p = strchr(p + 1, '\n')) != NULL &&
        starts_with(p, "\n    diesel__task_park (") &&
        (p = strstr(p, "\n    diesel_sleep (")) != NULL, "%s", r.out);
    snprintf(want, sizeof(want), "\n    sleeper_a (%s:%d)\n    trampoline (",
        __FILE__, t_source_line(__FILE__, "sleeper_a"));
    ck_assert_msg(starts_with(strchr(p + 1, '\n'), want), "%s", r.out);
    p = strchr(strchr(p + 1, '\n') + strlen(want), '\n');
    ck_assert_msg(starts_with(p, "\n[1] === "), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(strstr(r.out, "[1] === reader ==="),
        "\n    diesel_fd_wait ("));
    ck_assert_msg(strstr(r.out, "??") == NULL, "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "54 green threads, 5 distinct "));
    free(r.out);

    r = cmd_ok("stacks --json");
    ck_assert_json(r.out);
    ck_assert_int_eq((int)t_json_num(r.out, "count"), 54);
    ck_assert_ptr_nonnull(strstr(r.out, "{\"count\":50,\"how\":\"unwound\","
        "\"ids\":["));
    ck_assert_ptr_nonnull(strstr(r.out, "\"func\":\"sleeper_a\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"how\":\"running\""));
    /* Every frame, with its file and line, the library's marked. */
    snprintf(want, sizeof(want), "\"file\":\"%s\",\"line\":%d,"
        "\"library\":false}", __FILE__, t_source_line(__FILE__, "sleeper_a"));
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    p = strstr(r.out, "\"func\":\"diesel_sleep\"");
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(strstr(p, "\"library\":true}") < strchr(p, '}') + 2,
        "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "\"func\":\"trampoline\""));
    ck_assert_ptr_null(strstr(r.out, "\"func\":null"));
    free(r.out);

    /* One green thread. */
    snprintf(want, sizeof(want), "stacks %lld", (long long)c);
    r = cmd_ok(want);
    ck_assert_msg(starts_with(r.out, "[1] === sleeper-c ===\n"), "%s",
        r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_c (test/check_"));
    ck_assert_ptr_nonnull(strstr(r.out, "1 green thread, 1 distinct stack\n"));
    free(r.out);
    snprintf(want, sizeof(want), "stacks --json %lld", (long long)b);
    r = cmd_ok(want);
    ck_assert_json(r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "\"names\":[\"sleeper-b\"]"));
    free(r.out);

    cmd_err("stacks 999999", "no green thread 999999");
    cmd_err("stacks abc", "bad green thread id 'abc'");
    cmd_err("stacks 0", "bad green thread id '0'");
    cmd_err("stacks -5", "bad green thread id '-5'");
    cmd_err("stacks 99999999999999999999999", "bad green thread id");
    cmd_err("stacks 1 2", "usage: stacks [--all] [--json] [--loop NAME] "
        "[[LOOP:]ID]");
    cmd_err("stacks --bogus", "unknown option");

    (void)rd;
    close(pfd[1]);
    diesel_loop_stop(0);
    close(pfd[0]);
    return 0;
}

START_TEST(stacks_groups_identical_stacks_and_names_functions)
{
    ck_assert_int_eq(t_run(stacks_main, NULL), 0);
}
END_TEST

static int
not_started_main(void *arg)
{
    struct t_reply r;
    int64_t id;
    char line[64];

    (void)arg;
    id = diesel_task_spawn("later", nothing, NULL, 0);
    snprintf(line, sizeof(line), "stacks %lld", (long long)id);
    r = cmd_ok(line);
    ck_assert_str_eq(r.out, "[1] === later ===\n    ids: 2\n"
        "    (not started)\n1 green thread, 1 distinct stack\n");
    free(r.out);
    r = cmd_ok("stacks --json 2");
    ck_assert_json(r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "\"how\":\"not started\","));
    ck_assert_ptr_nonnull(strstr(r.out, "\"frames\":[]"));
    free(r.out);
    /* Once it has run and ended, its pooled stack is reused by the next
     * spawn: that one has not started either, whatever the stack holds. */
    ck_assert_int_eq(diesel_task_join(id, NULL, -1), 0);
    id = diesel_task_spawn("reused", nothing, NULL, 0);
    snprintf(line, sizeof(line), "stacks %lld", (long long)id);
    r = cmd_ok(line);
    ck_assert_ptr_nonnull(strstr(r.out, "    (not started)\n"));
    free(r.out);
    return 0;
}

/* A comparison that parks, called by lfind(3): the C library's frame
 * between it and the green thread's function has no line table (lfind,
 * unlike qsort, has no sanitizer interceptor, whose library may have
 * one). */
static int
sleepy_cmp(const void *a, const void *b)
{
    diesel_sleep(10000);                /* line: sleepy_cmp */
    return (*(const int *)a > *(const int *)b) -
        (*(const int *)a < *(const int *)b);
}

static __attribute__((noinline)) int
sorter(void *arg)
{
    int v[2] = { 2, 1 }, key = 1;
    size_t n = 2;
    int *found;

    (void)arg;
    found = lfind(&key, v, &n, sizeof(v[0]), sleepy_cmp);  /* line: lfind */
    return found != NULL ? *found : -1;
}

static int
no_lines_main(void *arg)
{
    struct t_reply r;
    char want[256];
    const char *p, *end;
    int64_t id;

    (void)arg;
    id = diesel_task_spawn("sorter", sorter, NULL, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    snprintf(want, sizeof(want), "stacks %lld", (long long)id);
    r = cmd_ok(want);
    p = after_fold(strstr(r.out, "\n    ids: "), "parked in diesel_sleep");
    snprintf(want, sizeof(want), "    sleepy_cmp (%s:%d)\n", __FILE__,
        t_source_line(__FILE__, "sleepy_cmp"));
    ck_assert_msg(p != NULL && starts_with(p, want), "%s", r.out);
    /* Then lfind's frame: FUNC+0xOFF (MODULE), or ??+0xOFF (MODULE)
     * where the module has no symbol for it either. */
    p += strlen(want);
    snprintf(want, sizeof(want), "    sorter (%s:%d)\n", __FILE__,
        t_source_line(__FILE__, "lfind"));
    end = strstr(p, want);
    ck_assert_msg(end != NULL && end > p, "%s", r.out);
    for (; p < end; p = strchr(p, '\n') + 1) {
        const char *nl = strchr(p, '\n');
        const char *off = strstr(p, "+0x"), *mod = strstr(p, " (");

        ck_assert_msg(starts_with(p, "    ") && off != NULL && off < nl &&
            mod != NULL && mod < nl && nl[-1] == ')' &&
            memchr(mod, ':', (size_t)(nl - mod)) == NULL, "%s", r.out);
    }
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(stacks_say_func_offset_where_a_module_has_no_line_table)
{
    ck_assert_int_eq(t_run(no_lines_main, NULL), 0);
}
END_TEST

/* What the signal handlers write: frames from the tables built before,
 * ending at the green thread's entry; a pc in no module they know (one
 * loaded later, say) as backtrace_symbols_fd(3) writes it. */
static int
written_main(void *arg)
{
    struct diesel__bt bt;
    void *f[DIESEL__BT_MAX + 1];
    char buf[2048], want[256];
    int pfd[2];
    ssize_t n;
    int64_t id;

    (void)arg;
    diesel__sym_prepare();
    ck_assert_ptr_nonnull(diesel__sym_safe());
    id = diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    diesel__bt_task(diesel__task_find(diesel__loop, id), &bt);
    ck_assert_int_gt(bt.n, 3);
    f[0] = (void *)0x10;
    memcpy(f + 1, bt.pc, (size_t)bt.n * sizeof(bt.pc[0]));
    ck_assert_int_eq(pipe(pfd), 0);
    diesel__frames_write(pfd[1], f, bt.n + 1, 0);
    close(pfd[1]);
    n = read(pfd[0], buf, sizeof(buf) - 1);
    close(pfd[0]);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(starts_with(buf, "[0x10]\ndiesel__task_park ("), "%s", buf);
    /* Down to the green thread's function; nothing from its entry on. */
    snprintf(want, sizeof(want), "\nsleeper_a (%s:%d)\n", __FILE__,
        t_source_line(__FILE__, "sleeper_a"));
    ck_assert_msg(strstr(buf, want) != NULL &&
        strstr(buf, want)[strlen(want)] == '\0', "%s", buf);
    diesel_loop_stop(0);
    return 0;
}

/* What the signal handlers write: frames from the tables built before,
 * ending at the green thread's function; a pc in no module they know (in
 * one loaded later, say) as backtrace_symbols_fd(3) writes it. */
START_TEST(signal_handlers_write_frames_from_the_tables_built_before)
{
    ck_assert_int_eq(t_run(written_main, NULL), 0);
}
END_TEST

/* The line table of the ELF file at path, as backtrace.c reads it. */
static struct diesel__lines *
lines_of(const char *path)
{
    struct diesel__lines *t;
    struct stat st;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(pread(fd, &eh, sizeof(eh), 0), (ssize_t)sizeof(eh));
    sh = calloc(eh.e_shnum, sizeof(*sh));
    ck_assert_ptr_nonnull(sh);
    ck_assert_int_eq(pread(fd, sh, eh.e_shnum * sizeof(*sh),
        (off_t)eh.e_shoff), (ssize_t)(eh.e_shnum * sizeof(*sh)));
    t = diesel__lines_read(fd, &eh, sh, st.st_size);
    free(sh);
    close(fd);
    return t;
}

/* Compressed debug sections (-gz, objcopy --compress-debug-sections)
 * would need zlib: not read, so frames fall back to func+offset. */
START_TEST(line_tables_are_not_read_from_compressed_sections)
{
    struct diesel__symtab *tab = diesel__sym_open();
    struct diesel__lines *t;
    struct diesel__sym s;
    char cmd[1024], path[] = "/tmp/diesel-gz-XXXXXX";
    const char *file;
    unsigned line;
    int fd, st;

    ck_assert_int_eq(diesel__sym_lookup(tab, (void *)((uintptr_t)sleepy_cmp
        + 1), &s), 0);
    /* This very program first, as it is. */
    t = lines_of(s.module);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(diesel__lines_find(t, s.module_off - 1, &file, &line),
        0);
    ck_assert_str_eq(file, __FILE__);
    diesel__lines_free(t);
    /* Its copy with zlib-compressed debug sections (SHF_COMPRESSED). */
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof(cmd), "objcopy --compress-debug-sections=zlib "
        "'%s' '%s'", s.module, path);
    st = system(cmd);
    ck_assert_msg(st == 0, "%s: status %d (binutils' objcopy is needed)",
        cmd, st);
    t = lines_of(path);
    unlink(path);
    ck_assert_ptr_null(t);
    diesel__sym_close(tab);
}
END_TEST

START_TEST(stacks_of_a_green_thread_that_never_ran_say_so)
{
    ck_assert_int_eq(t_run(not_started_main, NULL), 0);
}
END_TEST

static int
ucontext_main(void *arg)
{
    struct t_reply r;

    (void)arg;
    for (int i = 0; i < 5; i++)
        diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    diesel_task_spawn("sleeper-c", sleeper_c, NULL, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    r = cmd_ok("stacks");
    ck_assert_msg(starts_with(r.out, "[5] === sleeper, sleeper, sleeper, "
        "sleeper, sleeper ===\n"), "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_a (test/check_"));
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_c_inner"));
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_c (test/check_"));
    ck_assert_ptr_null(strstr(r.out, "frame-pointer walk"));
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(stacks_work_with_the_ucontext_switch)
{
    /* Each test runs in a process of its own (Check's fork mode), so the
     * switch is chosen anew; with CK_FORK=no this runs on whichever. */
    setenv("DIESEL_SWITCH", "ucontext", 1);
    ck_assert_int_eq(t_run(ucontext_main, NULL), 0);
    if (getenv("CK_FORK") == NULL || strcmp(getenv("CK_FORK"), "no") != 0)
        ck_assert_str_eq(diesel__switch_name(), "ucontext");
    unsetenv("DIESEL_SWITCH");
}
END_TEST

#if defined(__x86_64__)
/*
 * The fallbacks, on a green thread whose saved registers we doctor for
 * the length of one command (and restore): a resume pc that no unwind
 * table covers, with a frame-pointer chain laid out in the dead part of
 * its stack below its stack pointer; then a stack pointer outside its
 * stack.
 */
static uintptr_t *
uc_word(struct diesel__task *t, int which)   /* 0 rsp, 1 rip, 2 rbp */
{
    static const int uc_slot[] = { REG_RSP, REG_RIP, REG_RBP };

    return (uintptr_t *)&t->uc->uc_mcontext.gregs[uc_slot[which]];
}

/* The saved rsp, rip and rbp into v.  The register switch keeps a
 * pointer to r15 r14 r13 r12 rbx rbp rip, pushed on the stack, whose
 * rsp is 7 words above (switch_x86_64.S). */
static void
get_saved(struct diesel__task *t, uintptr_t v[3])
{
#ifdef DIESEL__SWITCH_ASM
    if (diesel__switch_fast) {
        const uintptr_t *s = (const uintptr_t *)t->ctx.regs[0];

        v[0] = t->ctx.regs[0] + 7 * sizeof(uintptr_t);
        v[1] = s[6];
        v[2] = s[5];
        return;
    }
#endif
    for (int i = 0; i < 3; i++)
        v[i] = *uc_word(t, i);
}

/* Make them v: for the register switch, rip and rbp are written below
 * the stack pointer, unless that is outside the stack. */
static void
set_saved(struct diesel__task *t, const uintptr_t v[3])
{
#ifdef DIESEL__SWITCH_ASM
    if (diesel__switch_fast) {
        uintptr_t *s = (uintptr_t *)(v[0] - 7 * sizeof(uintptr_t));

        t->ctx.regs[0] = (uintptr_t)s;
        if ((char *)s >= t->stack_lo && v[0] <= (uintptr_t)t->stack_hi) {
            s[6] = v[1];
            s[5] = v[2];
        }
        return;
    }
#endif
    for (int i = 0; i < 3; i++)
        *uc_word(t, i) = v[i];
}

static int
doctored_main(void *arg)
{
    Dl_info di;
    uintptr_t no_cfi;
    struct diesel__task *t;
    uintptr_t save[3], v[3], *frames, lo;
    struct t_reply r;
    int64_t id;
    char line[64];

    (void)arg;
    id = diesel_task_spawn("victim", sleeper_b, NULL, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    t = diesel__task_find(diesel__loop, id);
    ck_assert_ptr_nonnull(t);
    get_saved(t, save);
    /* Two frames 512 bytes below its stack pointer, in memory that no
     * live frame uses: [fp] = next fp, [fp + 8] = return address (and
     * the 64 bytes below, where the register switch's pushed registers
     * go: set_saved). */
    lo = (save[0] - 512) & ~(uintptr_t)15;
    frames = (uintptr_t *)lo;
    VALGRIND_MAKE_MEM_UNDEFINED(frames - 8, 128);
    DIESEL__ASAN_UNPOISON(frames - 8, 128);
    frames[0] = lo + 32;
    frames[1] = (uintptr_t)sleeper_c + 5;
    frames[4] = 0;
    frames[5] = (uintptr_t)fd_reader + 5;
    /* A resume pc in this program that no unwind table covers: its ELF
     * header. */
    ck_assert_int_ne(dladdr((void *)sleeper_b, &di), 0);
    no_cfi = (uintptr_t)di.dli_fbase + 0x41;
    v[0] = lo;
    v[1] = no_cfi;
    v[2] = lo;
    set_saved(t, v);
    snprintf(line, sizeof(line), "stacks %lld", (long long)id);
    r = cmd_ok(line);
    ck_assert_msg(strstr(r.out, "(frame-pointer walk: unwinding failed, may "
        "be incomplete)\n    ??+0x41 (check_diesel_") != NULL, "%s", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_c (test/check_"));
    ck_assert_ptr_nonnull(strstr(r.out, "    fd_reader (test/check_"));
    free(r.out);

    /* A resume pc outside the program is not followed (the unwinder would
     * fault reading the code there). */
    v[1] = 0x10;
    set_saved(t, v);
    r = cmd_ok(line);
    ck_assert_ptr_nonnull(strstr(r.out, "(saved registers damaged: "));
    free(r.out);
    v[1] = no_cfi;
    set_saved(t, v);

    /* A stack pointer outside the stack. */
    v[0] = (uintptr_t)t->stack_hi + 4096;
    set_saved(t, v);
    r = cmd_ok(line);
    ck_assert_ptr_nonnull(strstr(r.out, "(saved registers damaged: stack "
        "pointer outside the stack or resume pc outside the program)"));
    free(r.out);

    set_saved(t, save);
    VALGRIND_MAKE_MEM_NOACCESS(frames - 8, 128);
    r = cmd_ok(line);
    ck_assert_ptr_nonnull(strstr(r.out, "    sleeper_b (test/check_"));
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(stacks_fall_back_to_frame_pointers_and_spot_damage)
{
    ck_assert_int_eq(t_run(doctored_main, NULL), 0);
}
END_TEST
#endif

/* ---- stats, mem, pid ----------------------------------------------------- */

static int
stats_main(void *arg)
{
    struct t_reply r;
    char line[256];

    (void)arg;
    for (int i = 0; i < 7; i++)
        diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    diesel_task_spawn("yielder", yielder, NULL, 0);
    ck_assert_int_eq(diesel_sleep(20), 0);
    if (t_standin_figures != NULL)
        t_standin_figures(2, 17);
    r = cmd_ok("stats");
    ck_assert_ptr_nonnull(line_starting(r.out, "green threads     9 (9 "
        "spawned, 1 ready, ", line, sizeof(line)));
    ck_assert_ptr_nonnull(strstr(r.out, "timers pending    7\n"));
    snprintf(line, sizeof(line), "backend           %s\n",
        diesel_loop_backend());
    ck_assert_ptr_nonnull(strstr(r.out, line));
    snprintf(line, sizeof(line), "switch            %s\n",
        diesel__switch_name());
    ck_assert_ptr_nonnull(strstr(r.out, line));
    if (t_standin_figures != NULL) {
        ck_assert_ptr_nonnull(strstr(r.out, "console sessions  2\n"));
        ck_assert_ptr_nonnull(strstr(r.out, "dropped signals   17\n"));
    }
    {
        /* The loop started moments ago (longer under valgrind). */
        const char *u = strstr(r.out, "uptime            ");
        double secs = -1;
        ck_assert_ptr_nonnull(u);
        ck_assert_int_eq(sscanf(u, "uptime %lfs", &secs), 1);
        ck_assert(secs >= 0 && secs < 60);
    }
    free(r.out);

    r = cmd_ok("stats --json");
    ck_assert_json(r.out);
    ck_assert_int_eq((int)t_json_num(r.out, "green_threads"), 9);
    ck_assert_int_eq((int)t_json_num(r.out, "spawned"), 9);
    ck_assert_int_eq((int)t_json_num(r.out, "timers_pending"), 7);
    ck_assert_int_eq((int)t_json_num(r.out, "ready"), 1);
    ck_assert_int_ge((int)t_json_num(r.out, "switches"), 9);
    ck_assert_int_ge((int)t_json_num(r.out, "iterations"), 1);
    ck_assert_double_eq(t_json_num(r.out, "polls"),
        (double)diesel__loop->polls);
    ck_assert_double_eq(t_json_num(r.out, "events"),
        (double)diesel__loop->events);
    ck_assert_double_ge(t_json_num(r.out, "uptime_s"), 0.019);
    free(r.out);
    /* No runs: the reply says why. */
    diesel_loop_hog_warn(0);
    r = cmd_ok("stats");
    ck_assert_msg(strstr(r.out, "longest runs      not recorded: hog "
        "warnings are off (turn them on with diesel_loop_hog_warn)\n") !=
        NULL, "%s", r.out);
    free(r.out);
    diesel_loop_hog_warn(60000);
    r = cmd_ok("stats");
    ck_assert_msg(strstr(r.out, "longest runs      none over 60000 ms\n")
        != NULL, "%s", r.out);
    free(r.out);
    diesel_loop_hog_warn(0);
    cmd_err("stats now", "usage: stats [--json]");
    diesel_loop_stop(0);
    return 0;
}

START_TEST(stats_counts_are_exact)
{
    ck_assert_int_eq(t_run(stats_main, NULL), 0);
}
END_TEST

/*
 * diesel-console(7) describes every figure of stats: each label of the
 * text form and each key of the JSON form is one of the page's ".It Li"
 * words in "The figures of stats" (the page had none of them).
 */
static int
stats_doc_main(void *arg)
{
    const char *page = arg;
    struct t_reply r;
    char word[64];

    r = cmd_ok("stats");
    for (const char *l = r.out; *l != '\0'; l = strchr(l, '\n') + 1) {
        size_t n = strcspn(l, "\n");

        /* "label   value": the label ends at two spaces; the lines of
         * the longest runs after the first have none. */
        if (l[0] != ' ' && strstr(l, "  ") != NULL) {
            n = (size_t)(strstr(l, "  ") - l);
            snprintf(word, sizeof(word), "Li %.*s\n", (int)n, l);
            if (strstr(page, word) == NULL)
                word[strlen(word) - 1] = ' ';
            ck_assert_msg(strstr(page, word) != NULL, "stats prints '%.*s',"
                " which diesel-console(7) does not describe", (int)n, l);
        }
        if (strchr(l, '\n') == NULL)
            break;
    }
    free(r.out);
    r = cmd_ok("stats --json");
    /* The top level's keys: "key": outside any nested value. */
    for (const char *p = r.out + 1; *p != '\0'; p++) {
        const char *e;
        int depth = 0;

        if (*p != '"')
            continue;
        e = strchr(p + 1, '"');
        ck_assert_ptr_nonnull(e);
        if (e[1] == ':') {
            snprintf(word, sizeof(word), "Li %.*s\n", (int)(e - p - 1),
                p + 1);
            if (strstr(page, word) == NULL) {
                word[strlen(word) - 1] = ' ';
                ck_assert_msg(strstr(page, word) != NULL, "stats --json "
                    "has '%.*s', which diesel-console(7) does not "
                    "describe", (int)(e - p - 1), p + 1);
            }
        }
        p = e + 1;
        /* Skip a nested value whole. */
        while (*p == ':' || *p == ' ')
            p++;
        if (*p == '[' || *p == '{') {
            for (; *p != '\0'; p++) {
                depth += *p == '[' || *p == '{';
                depth -= *p == ']' || *p == '}';
                if (depth == 0)
                    break;
            }
        }
        if (*p == '"')
            p = strchr(p + 1, '"');
    }
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(stats_figures_are_each_in_the_page)
{
    char path[4096], *page = malloc(1 << 16), line[512];
    size_t n = 0;
    int in = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/../man/diesel-console.7", t_dir());
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    /* The subsection's .It lines, each word after "Li" kept as
     * "Li word " or "Li word\n". */
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, ".Ss ", 4) == 0 || strncmp(line, ".Sh ", 4) == 0)
            in = strcmp(line, ".Ss The figures of stats\n") == 0;
        else if (in && strncmp(line, ".It ", 4) == 0 &&
            n + strlen(line) + 2 < (1 << 16)) {
            /* ".It Li a b , Li c\n" -> "Li a b Li c\n", commas out. */
            for (const char *s = line + 4; *s != '\0'; s++) {
                if (*s == ',' && s[1] == ' ')
                    s++;
                else
                    page[n++] = *s;
            }
        }
    }
    page[n] = '\0';
    fclose(f);
    ck_assert_msg(n > 0, "no \"The figures of stats\" in %s", path);
    ck_assert_int_eq(t_run(stats_doc_main, page), 0);
    free(page);
}
END_TEST

static int
mem_main(void *arg)
{
    struct t_reply r;
    char line[256];
    struct diesel__stack_stats ss;

    (void)arg;
    for (int i = 0; i < 20; i++)
        diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    for (int i = 0; i < 3; i++)
        diesel_task_spawn("quick", nothing, NULL, 0);
    ck_assert_int_eq(diesel_sleep(20), 0);
    r = cmd_ok("mem");
    ck_assert_ptr_nonnull(line_starting(r.out, "rss               ", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, "MiB (peak "));
    ck_assert_ptr_nonnull(line_starting(r.out, "malloc            ", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, "(glibc mallinfo2)"));
    ck_assert_ptr_nonnull(line_starting(r.out, "stacks committed  ", line,
        sizeof(line)));
    ck_assert_msg(strstr(line, " in 21 green threads, ") != NULL, "%s", line);
    ck_assert_msg(strstr(line, " in 3 pooled stacks") != NULL, "%s", line);
    ck_assert_ptr_nonnull(line_starting(r.out, "mappings          ", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, " (vm.max_map_count)"));
    ck_assert_ptr_nonnull(line_starting(r.out, "guard pages       m", line,
        sizeof(line)));
    free(r.out);

    r = cmd_ok("mem --json");
    ck_assert_json(r.out);
    diesel__stack_stats(&ss);
    ck_assert_int_eq((int)t_json_num(r.out, "mapped"), (int)ss.mapped);
    ck_assert_double_eq(t_json_num(r.out, "reserved"), (double)ss.bytes);
    ck_assert_int_eq((int)t_json_num(r.out, "green_threads"), 21);
    ck_assert_int_eq((int)t_json_num(r.out, "pooled"), 3);
    /* Each live stack has at least its record page resident, and
     * at most all of it. */
    ck_assert_double_ge(t_json_num(r.out, "committed_green_threads"),
        21.0 * (double)diesel__stack_page());
    ck_assert_double_le(t_json_num(r.out, "committed"), (double)ss.bytes);
    ck_assert_double_gt(t_json_num(r.out, "rss"), 0);
    ck_assert_double_ge(t_json_num(r.out, "rss_peak"), t_json_num(r.out, "rss"));
    ck_assert_double_gt(t_json_num(r.out, "mappings"), 20);
    ck_assert_double_gt(t_json_num(r.out, "max_map_count"), 0);
    ck_assert_ptr_nonnull(strstr(r.out, ss.guard_madvise ?
        "\"guard\":\"madvise\"" : "\"guard\":\"mprotect\""));
    free(r.out);
    cmd_err("mem all", "usage: mem [--json]");
    diesel_loop_stop(0);
    return 0;
}

START_TEST(mem_reports_stacks_reserved_committed_and_mappings)
{
    ck_assert_int_eq(t_run(mem_main, NULL), 0);
}
END_TEST

static int
pid_main(void *arg)
{
    struct t_reply r;
    char line[4200], want[4200], exe[4096];
    ssize_t n;
    double loop_up, proc_up;
    char *p;

    (void)arg;
    ck_assert_int_eq(diesel_sleep(50), 0);
    r = cmd_ok("pid");
    snprintf(want, sizeof(want), "pid         %ld\nppid        %ld\n",
        (long)getpid(), (long)getppid());
    ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "%s", r.out);
    snprintf(want, sizeof(want), " (uid %lu)", (unsigned long)getuid());
    ck_assert_ptr_nonnull(line_starting(r.out, "user        ", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(strstr(line, want));
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    snprintf(want, sizeof(want), "executable  %s\n", exe);
    ck_assert_ptr_nonnull(strstr(r.out, want));
    ck_assert_ptr_nonnull(line_starting(r.out, "uptime      loop ", line,
        sizeof(line)));
    loop_up = strtod(line + 17, &p);
    ck_assert_ptr_nonnull(strstr(p, ", process "));
    proc_up = strtod(strstr(p, ", process ") + 10, NULL);
    ck_assert_double_ge(loop_up, 0.049);
    ck_assert_double_lt(loop_up, 30);
    /* The process started before its loop (clock ticks: 10 ms). */
    ck_assert_double_ge(proc_up, loop_up - 0.02);
    free(r.out);
    r = cmd_ok("pid --json");
    ck_assert_json(r.out);
    ck_assert_int_eq((int)t_json_num(r.out, "pid"), (int)getpid());
    ck_assert_int_eq((int)t_json_num(r.out, "uid"), (int)getuid());
    ck_assert_double_ge(t_json_num(r.out, "loop_uptime_s"), 0.049);
    free(r.out);
    cmd_err("pid 1", "usage: pid [--json]");
    return 0;
}

START_TEST(pid_reports_the_process)
{
    ck_assert_int_eq(t_run(pid_main, NULL), 0);
}
END_TEST

/* ---- fds ----------------------------------------------------------------- */

/* How many lines of fds' text output list a descriptor below max
 * (at most 10000). */
static int
fds_listed_below(const char *text, int max)
{
    int n = 0;

    for (const char *p = text; p != NULL && *p != '\0'; ) {
        char *end;
        long fd = strtol(p, &end, 10);

        /* "%-6d " pads a number below 10000 with two spaces at least;
         * the summary line has one. */
        if (end != p && end[0] == ' ' && end[1] == ' ' && fd < max)
            n++;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return n;
}

static int
fds_main(void *arg)
{
    struct t_reply r;
    char line[1024], want[256], path[96];
    int pfd[2], lfd, cfd, afd, ufd, file, v6 = -1;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr_un sun;
    socklen_t len = sizeof(sin);
    int64_t rd;
    unsigned port, cport;

    (void)arg;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(pipe(pfd), 0);
    /* TCP on loopback: listening, and both ends of a connection. */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    port = ntohs(sin.sin_port);
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    afd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(afd, 0);
    len = sizeof(sin);
    ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&sin, &len), 0);
    cport = ntohs(sin.sin_port);
    /* IPv6 loopback, where the system has it. */
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    v6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (v6 >= 0 && (bind(v6, (struct sockaddr *)&sin6, sizeof(sin6)) != 0 ||
        listen(v6, 1) != 0)) {
        close(v6);
        v6 = -1;
    }
    /* A UNIX socket with a path; a regular file. */
    snprintf(path, sizeof(path), "/tmp/diesel-builtins-%ld.sock",
        (long)getpid());
    unlink(path);
    ufd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    ck_assert_int_eq(bind(ufd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(ufd, 1), 0);
    file = open("/proc/self/status", O_RDONLY);
    ck_assert_int_ge(file, 0);

    read_fd = sv[0];
    rd = diesel_task_spawn("reader", fd_reader, &read_fd, 0);
    ck_assert_int_eq(diesel_sleep(20), 0);

    r = cmd_ok("fds");
    ck_assert_ptr_nonnull(row_starting(r.out, "FD | TYPE | WHAT | WAITER",
        line, sizeof(line)));
    ck_table_aligned(r.out, "FD ", "descriptors open");
    /* A unix socket says unix once: no "unix:" after the protocol. */
    ck_assert_msg(strstr(r.out, "unix unix:") == NULL, "%s", r.out);
    snprintf(want, sizeof(want), "%d | socket | unix (unnamed) -> "
        "(unnamed) | ", sv[0]);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL,
        "%s", r.out);
    snprintf(want, sizeof(want), "read: %lld (reader)", (long long)rd);
    ck_assert_msg(strstr(line, want) != NULL, "%s", line);
    snprintf(want, sizeof(want), "%d | pipe | pipe:[", pfd[0]);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL,
        "%s", r.out);
    snprintf(want, sizeof(want), "%d | socket | tcp listening 127.0.0.1:%u",
        lfd, port);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL &&
        strcmp(line, want) == 0, "%s", r.out);
    snprintf(want, sizeof(want), "%d | socket | tcp 127.0.0.1:%u -> "
        "127.0.0.1:%u", cfd, cport, port);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL &&
        strcmp(line, want) == 0, "%s", r.out);
    snprintf(want, sizeof(want), "%d | socket | tcp 127.0.0.1:%u -> "
        "127.0.0.1:%u", afd, port, cport);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL &&
        strcmp(line, want) == 0, "%s", r.out);
    if (v6 >= 0) {
        snprintf(want, sizeof(want), "%d | socket | tcp listening [::1]:",
            v6);
        ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL,
            "%s", r.out);
    }
    snprintf(want, sizeof(want), "%d | socket | unix listening %s", ufd,
        path);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL &&
        strcmp(line, want) == 0, "%s", r.out);
    snprintf(want, sizeof(want), "%d | file | /proc/", file);
    ck_assert_msg(row_starting(r.out, want, line, sizeof(line)) != NULL,
        "%s", r.out);
    /* Every open descriptor, once (t_count_fds looks below 4096; valgrind
     * keeps its own further up, and they are listed too). */
    ck_assert_int_eq(fds_listed_below(r.out, 4096), t_count_fds());
    ck_assert_ptr_nonnull(strstr(r.out, " descriptors open\n"));
    free(r.out);

    r = cmd_ok("fds --json");
    ck_assert_json(r.out);
    ck_assert_int_ge((int)t_json_num(r.out, "count"), t_count_fds());
    snprintf(want, sizeof(want), "{\"fd\":%d,\"type\":\"socket\","
        "\"proto\":\"unix\",\"listening\":false,\"local\":\"unix:\","
        "\"peer\":\"unix:\",\"path\":null,\"reader\":{\"id\":%lld,"
        "\"name\":\"reader\"},\"writer\":null}", sv[0], (long long)rd);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    snprintf(want, sizeof(want), "{\"fd\":%d,\"type\":\"socket\","
        "\"proto\":\"tcp\",\"listening\":true,\"local\":\"127.0.0.1:%u\","
        "\"peer\":null", lfd, port);
    ck_assert_msg(strstr(r.out, want) != NULL, "%s", r.out);
    free(r.out);
    cmd_err("fds 3", "usage: fds [--json]");

    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(diesel_task_join(rd, NULL, -1), 0);
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
    close(lfd);
    close(cfd);
    close(afd);
    close(ufd);
    unlink(path);
    close(file);
    if (v6 >= 0)
        close(v6);
    return 0;
}

START_TEST(fds_shows_types_addresses_paths_and_waiters)
{
    ck_assert_int_eq(t_run(fds_main, NULL), 0);
}
END_TEST

/* ---- log ----------------------------------------------------------------- */

static int
log_main(void *arg)
{
    struct t_reply r;
    char line[256];

    (void)arg;
    r = cmd_ok("log --new alpha debug");
    ck_assert_str_eq(r.out, "alpha DEBUG (a new logger; was INFO)\n");
    free(r.out);
    ck_assert_int_eq(diesel_log_level("alpha"), DIESEL_LOG_DEBUG);
    r = cmd_ok("log --new beta WARN");
    free(r.out);
    r = cmd_ok("log");
    ck_assert_ptr_nonnull(row_starting(r.out, "LOGGER | LEVEL | WHENCE",
        line, sizeof(line)));
    ck_assert_ptr_nonnull(row_starting(r.out, "* | INFO | the default",
        line, sizeof(line)));
    ck_assert_ptr_nonnull(row_starting(r.out, "alpha | DEBUG | set", line,
        sizeof(line)));
    ck_assert_ptr_nonnull(row_starting(r.out, "beta | WARNING | set", line,
        sizeof(line)));
    ck_table_aligned(r.out, "LOGGER", NULL);
    free(r.out);
    /* A logger that only logged is listed, with the default's level. */
    diesel_log("onlylogged", DIESEL_LOG_DEBUG, "below the level");
    r = cmd_ok("log");
    ck_assert_msg(row_starting(r.out, "onlylogged | INFO | the default's",
        line, sizeof(line)) != NULL, "%s", r.out);
    ck_table_aligned(r.out, "LOGGER", NULL);
    free(r.out);
    r = cmd_ok("log --json");
    ck_assert_json(r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "\"onlylogged\":\"INFO\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"inherited\":["));
    ck_assert_ptr_nonnull(strstr(strstr(r.out, "\"inherited\":["),
        "\"onlylogged\""));
    free(r.out);
    r = cmd_ok("log * ERROR");
    ck_assert_str_eq(r.out, "* ERROR (was INFO)\n");
    free(r.out);
    ck_assert_int_eq(diesel_log_level("unlisted"), DIESEL_LOG_ERROR);
    r = cmd_ok("log --json");
    ck_assert_json(r.out);
    ck_assert_ptr_nonnull(strstr(r.out,
        "{\"default\":\"ERROR\",\"loggers\":{"));
    ck_assert_ptr_nonnull(strstr(r.out, "\"alpha\":\"DEBUG\""));
    ck_assert_ptr_nonnull(strstr(r.out, "\"beta\":\"WARNING\""));
    free(r.out);
    r = cmd_ok("log --json alpha INFO");
    ck_assert_json(r.out);
    ck_assert_str_eq(r.out, "{\"logger\":\"alpha\",\"level\":\"INFO\","
        "\"was\":\"DEBUG\",\"new\":false}\n");
    free(r.out);

    cmd_err("log alpha LOUD", "unknown level 'LOUD'");
    cmd_err("log alpha", "usage: log [--json] [[--new] LOGGER LEVEL]");
    cmd_err("log a b c", "usage: log");
    cmd_err("log --new 0123456789012345678901234567890123456789012345678901"
        "234567890123456789 INFO", "bad logger name");
    ck_assert_int_eq(diesel_log_level("alpha"), DIESEL_LOG_INFO);
    ck_assert_int_eq(diesel_log_level(NULL), DIESEL_LOG_ERROR);
    diesel_log_level_set(NULL, DIESEL_LOG_INFO);
    return 0;
}

START_TEST(log_shows_and_sets_levels)
{
    ck_assert_int_eq(t_run(log_main, NULL), 0);
}
END_TEST

static int
log_unknown_main(void *arg)
{
    struct t_reply r;
    char many[32];

    (void)arg;
    diesel_log("known", DIESEL_LOG_DEBUG, "below the level, still known");
    /* A typo is refused, naming the loggers there are (as log lists
     * them), and makes no logger. */
    r = cmd("log nosuch DEBUG");
    t_reply_err(&r, "log nosuch DEBUG", "unknown logger 'nosuch': the "
        "loggers are *, diesel, known; --new sets one yet to log", 1);
    r = cmd_ok("log");
    ck_assert_msg(strstr(r.out, "nosuch") == NULL, "%s", r.out);
    free(r.out);
    ck_assert_int_eq(diesel_log_level("nosuch"), DIESEL_LOG_INFO);
    /* The level is checked first: a bad one says so, whatever the name. */
    cmd_err("log nosuch LOUD", "unknown level 'LOUD'");
    /* A logger that only logged, below its level, is known. */
    r = cmd_ok("log known DEBUG");
    ck_assert_str_eq(r.out, "known DEBUG (was INFO)\n");
    free(r.out);
    /* --new (anywhere) sets the level of one yet to log, which its first
     * line then meets; on a known one it is only a set. */
    r = cmd_ok("log nosuch --new DEBUG");
    ck_assert_str_eq(r.out, "nosuch DEBUG (a new logger; was INFO)\n");
    free(r.out);
    ck_assert_int_eq(diesel_log_level("nosuch"), DIESEL_LOG_DEBUG);
    r = cmd_ok("log --new --json known INFO");
    ck_assert_str_eq(r.out, "{\"logger\":\"known\",\"level\":\"INFO\","
        "\"was\":\"DEBUG\",\"new\":false}\n");
    free(r.out);
    r = cmd_ok("log nosuch WARNING");
    ck_assert_str_eq(r.out, "nosuch WARNING (was DEBUG)\n");
    free(r.out);
    cmd_err("log --new", "usage: log [--json] [[--new] LOGGER LEVEL]");
    cmd_err("log --new x", "usage: log [--json] [[--new] LOGGER LEVEL]");
    cmd_err("log --old x INFO", "unknown option '--old'");
    /* With many loggers the list is cut, and the line still ends with
     * the way out. */
    for (int i = 0; i < 40; i++) {
        snprintf(many, sizeof(many), "many-logger-%02d", i);
        diesel_log(many, DIESEL_LOG_DEBUG, "below the level");
    }
    r = cmd("log nosuch2 INFO");
    t_reply_err(&r, "log nosuch2 INFO", ", ...; --new sets one yet to log",
        0);
    return 0;
}

START_TEST(log_refuses_an_unknown_logger_unless_new)
{
    ck_assert_int_eq(t_run(log_unknown_main, NULL), 0);
}
END_TEST

/* ---- cancel -------------------------------------------------------------- */

static int
cancel_main(void *arg)
{
    struct t_reply r;
    int64_t id, self = diesel_task_self();
    int st = 0;
    char line[128];

    (void)arg;
    id = diesel_task_spawn("victim", sleeper_a, NULL, 0);
    ck_assert_int_eq(diesel_sleep(10), 0);
    t_log_capture_start();
    snprintf(line, sizeof(line), "cancel %lld", (long long)id);
    r = cmd_ok(line);
    snprintf(line, sizeof(line), "cancelled green thread %lld (victim)\n",
        (long long)id);
    ck_assert_str_eq(r.out, line);
    free(r.out);
    /* This session was made without a peer: the log says so. */
    snprintf(line, sizeof(line), "{diesel} WARNING:console: cancelled green "
        "thread %lld (victim) for a session whose peer is not known\n",
        (long long)id);
    ck_assert_ptr_nonnull(strstr(t_log_capture_end(), line));
    /* Its sleep failed with ECANCELED. */
    ck_assert_int_eq(diesel_task_join(id, &st, 1000), 0);
    ck_assert_int_eq(st, ECANCELED + 1000);

    snprintf(line, sizeof(line), "cancel %lld", (long long)id);
    snprintf(line + 64, 64, "no green thread %lld", (long long)id);
    cmd_err(line, line + 64);
    cmd_err("cancel 999999", "no green thread 999999");
    cmd_err("cancel abc", "bad green thread id 'abc'");
    cmd_err("cancel 0", "bad green thread id");
    cmd_err("cancel -3", "bad green thread id");
    cmd_err("cancel 12x", "bad green thread id");
    cmd_err("cancel 99999999999999999999999", "bad green thread id");
    cmd_err("cancel", "usage: cancel [--json] [LOOP:]ID");
    cmd_err("cancel 1 2", "usage: cancel");
    snprintf(line, sizeof(line), "cancel %lld", (long long)self);
    cmd_err(line, "serves this console session");
    return 0;
}

START_TEST(cancel_makes_the_blocking_call_fail)
{
    ck_assert_int_eq(t_run(cancel_main, NULL), 0);
}
END_TEST

/* ---- Output: escaping, limits, no loop ----------------------------------- */

static int
escape_main(void *arg)
{
    struct t_reply r;

    (void)arg;
    ck_assert_int_eq(diesel_task_rename("q\"b\\c\x01\x7f\xff\xc3\xa9\t"), 0);
    r = cmd_ok("tasks --json");
    ck_assert_json(r.out);
    ck_assert_msg(strstr(r.out, "\"name\":\"q\\\"b\\\\c\\u0001\\u007f"
        "\\u00ff\xc3\xa9\\t\"") != NULL, "%s", r.out);
    free(r.out);
    r = cmd_ok("stacks --json");
    ck_assert_json(r.out);
    free(r.out);
    for (int i = 0; i < 50; i++)
        diesel_task_spawn("sleeper", sleeper_a, NULL, 0);
    r = cmd_limit("tasks", 300, 0);
    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err, "reply too long (over the console's output "
        "limit)");
    ck_assert_uint_le(r.len, 300);
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(json_is_escaped_and_replies_respect_the_limit)
{
    ck_assert_int_eq(t_run(escape_main, NULL), 0);
}
END_TEST

/* Lines of s that contain needle. */
static int
lines_with(const char *s, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(s, needle); p != NULL;
        p = strstr(p + 1, needle))
        n++;
    return n;
}

/* No line of a text reply is a forged "| " row, and nothing in it could
 * drive a terminal. */
static void
assert_clean_rows(const char *what, const char *out)
{
    long bad = t_forbidden_at(out, strlen(out));

    ck_assert_msg(strncmp(out, "| ", 2) != 0 && strstr(out, "\n| ") == NULL,
        "%s: a forged row in:\n%s", what, out);
    ck_assert_msg(bad < 0, "%s: raw byte %#x at %ld of:\n%s", what,
        bad < 0 ? 0 : (unsigned char)out[bad], bad, out);
}

/*
 * Issue 9, item 3: services name green threads from client data.  A name
 * with a newline, escapes and C1 controls (test/hostile.h) stays on its
 * row in the text of tasks, stacks, fds and cancel, escaped the one way
 * diesel-console(7) documents; --json escapes it too.
 */
static int
hostile_main(void *arg)
{
    int64_t ids[3];
    struct t_reply r;
    char line[64];

    (void)arg;
    for (int i = 0; i < 3; i++)
        ids[i] = diesel_task_spawn(T_HOSTILE_NAME, sleeper_b, NULL, 0);
    ck_assert_int_eq(diesel_sleep(5), 0);
    r = cmd_ok("tasks");
    assert_clean_rows("tasks", r.out);
    ck_assert_int_eq(lines_with(r.out, " " T_HOSTILE_ESCAPED " "), 3);
    free(r.out);
    r = cmd_ok("stacks");
    assert_clean_rows("stacks", r.out);
    ck_assert_msg(strstr(r.out, T_HOSTILE_ESCAPED ", " T_HOSTILE_ESCAPED
        ", " T_HOSTILE_ESCAPED) != NULL, "%s", r.out);
    free(r.out);
    r = cmd_ok("tasks --json");
    ck_assert_json(r.out);
    ck_assert_msg(strstr(r.out, "\"name\":\"h\\u001b[31m\\u0007\\u000d\\n| "
        "x\\u007f\\u009b\\u009b\"") != NULL, "%s", r.out);
    assert_clean_rows("tasks --json", r.out);
    free(r.out);
    snprintf(line, sizeof(line), "cancel %lld", (long long)ids[0]);
    r = cmd_ok(line);
    assert_clean_rows("cancel", r.out);
    ck_assert_ptr_nonnull(strstr(r.out, "(" T_HOSTILE_ESCAPED ")\n"));
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(hostile_green_thread_names_stay_on_their_rows)
{
    ck_assert_int_eq(t_run(hostile_main, NULL), 0);
}
END_TEST

START_TEST(commands_need_a_loop)
{
    struct t_reply r = cmd("tasks");

    ck_assert_int_eq(r.rc, -1);
    ck_assert_str_eq(r.err, "no loop runs on this thread");
    free(r.out);
    r = cmd("stacks");
    ck_assert_int_eq(r.rc, -1);
    free(r.out);
    r = cmd("cancel 3");
    ck_assert_int_eq(r.rc, -1);
    free(r.out);
    /* pid and log work anywhere. */
    r = cmd_ok("pid");
    ck_assert_ptr_nonnull(strstr(r.out, "uptime      loop -, process "));
    free(r.out);
    r = cmd_ok("log");
    free(r.out);
}
END_TEST

/* ---- 10,000 green threads ------------------------------------------------ */

#define MANY 10000

static double
ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
        (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int
many_main(void *arg)
{
    static const char *lines[] = { "tasks", "stacks", "fds", "mem", "stats",
        "tasks --json", "stacks --json" };
    double ms[sizeof(lines) / sizeof(lines[0])];
    struct timespec t0;
    struct t_reply r;
    char want[128];

    (void)arg;
    static int64_t long_ms = 600000;   /* outlives valgrind's pace */

    for (int i = 0; i < MANY; i++)
        ck_assert_int_gt(diesel_task_spawn("sleeper", sleeper_a, &long_ms,
            0), 0);
    ck_assert_int_eq(diesel_sleep(50), 0);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = cmd_ok(lines[i]);
        ms[i] = ms_since(&t0);
        if (strcmp(lines[i], "tasks") == 0) {
            snprintf(want, sizeof(want), "%d green threads: 1 running, "
                "0 ready, 0 waiting, %d sleeping", MANY + 1, MANY);
            ck_assert_ptr_nonnull(strstr(r.out, want));
        } else if (strcmp(lines[i], "stacks") == 0) {
            snprintf(want, sizeof(want), "[%d] === sleeper, ", MANY);
            ck_assert_msg(starts_with(r.out, want), "%.300s", r.out);
            snprintf(want, sizeof(want), "%d green threads, 2 distinct "
                "stacks", MANY + 1);
            ck_assert_ptr_nonnull(strstr(r.out, want));
        } else if (strstr(lines[i], "--json") != NULL) {
            ck_assert_json(r.out);
        }
        free(r.out);
    }
    fprintf(stderr, "builtins: %d green threads (%s switch):", MANY + 1,
        diesel__switch_name());
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        fprintf(stderr, " %s %.1f ms%s", lines[i], ms[i],
            i + 1 < sizeof(lines) / sizeof(lines[0]) ? "," : "\n");
    diesel_loop_stop(0);
    return 0;
}

START_TEST(ten_thousand_green_threads_are_listed_and_dumped)
{
    ck_assert_int_eq(t_run(many_main, NULL), 0);
}
END_TEST

/* ---- Walks that let the loop turn ----------------------------------------
 *
 * tasks, stacks, mem and fds walk in slices and let the loop turn between
 * them.  What shows it, with no clock: a green thread parked on a pipe
 * that is always readable is woken by every poll of the loop, so it
 * counts the loop's turns (and churns green threads when asked to); a
 * command that never yields lets it count none.
 */

/* Sleeping green threads under the walks: fewer under valgrind, where a
 * walk of 20,000 takes a minute and 4,000 still take many slices. */
#define WALKED_MAX 20000
#define WALKED (t_under_valgrind() ? 4000 : WALKED_MAX)
#define CHURNED 2000         /* green threads that come and go meanwhile */
#define CHURN_STEP 20        /* ... ended and spawned per turn */

static int turn_pipe[2] = { -1, -1 };
static int64_t turns;        /* polls the counter was woken by */
static int churning;         /* the counter churns green threads too: 1 on
                                the first turn of a walk, then 2 */
static int64_t churn_ids[CHURNED]; /* the ephemeral green threads alive */
static size_t nchurn;
static int64_t churn_ended, churn_turns, last_id;
static uint32_t churn_rand = 12345;

static __attribute__((noinline)) int
ephemeral(void *arg)
{
    (void)arg;
    /* Not a tail call, so that its stack differs from sleeper_a's. */
    return diesel_sleep(-1) == 0 ? 0 : errno + 1000;
}

static int64_t
churn_spawn(void)
{
    int64_t id = diesel_task_spawn("ephemeral", ephemeral, NULL, 0);

    ck_assert_int_gt(id, 0);
    last_id = id;
    return id;
}

static int
turn_counter(void *arg)
{
    (void)arg;
    while (diesel_fd_wait(turn_pipe[0], DIESEL_READ, -1) > 0) {
        turns++;
        if (!churning)
            continue;
        /* End CHURN_STEP ephemeral green threads and spawn as many: on a
         * walk's first turn the ones with the largest ids, which the walk
         * (by id) has not reached yet; then any. */
        churn_turns++;
        for (int i = 0; i < CHURN_STEP; i++) {
            size_t k;

            if (churning == 1) {
                k = nchurn - 1 - (size_t)i;
            } else {
                churn_rand = churn_rand * 1103515245u + 12345u;
                k = (churn_rand >> 8) % nchurn;
            }
            ck_assert_int_eq(diesel_task_cancel(churn_ids[k]), 0);
            churn_ended++;
            churn_ids[k] = churn_spawn();
        }
        churning = 2;
    }
    return 0;
}

static void
turns_start(void)
{
    ck_assert_int_eq(pipe(turn_pipe), 0);
    ck_assert_int_eq(write(turn_pipe[1], "x", 1), 1);
    ck_assert_int_gt(diesel_task_spawn("turns", turn_counter, NULL, 0), 0);
}

static int64_t walked_long_ms = 600000;   /* outlives valgrind's pace */

/* WALKED sleepers (sleeper_a), ids first..first+WALKED-1; with churn, an
 * ephemeral green thread after every tenth. */
static int64_t
spawn_walked(int with_churn, int64_t *stable, size_t *nstable)
{
    int64_t first = -1;

    *nstable = 0;
    for (int i = 0; i < WALKED; i++) {
        int64_t id = diesel_task_spawn("stable", sleeper_a,
            &walked_long_ms, 0);

        ck_assert_int_gt(id, 0);
        if (first < 0)
            first = id;
        last_id = id;
        if (stable != NULL)
            stable[(*nstable)++] = id;
        if (with_churn && i % (WALKED / CHURNED) == 0)
            churn_ids[nchurn++] = churn_spawn();
    }
    /* Let every one of them run up to its sleep. */
    ck_assert_int_eq(diesel_sleep(50), 0);
    return first;
}

static int
walks_turn_main(void *arg)
{
    static const char *lines[] = { "stacks", "stacks --json", "tasks",
        "tasks --json", "mem", "mem --json" };
    char want[128];

    (void)arg;
    turns_start();
    spawn_walked(0, NULL, &(size_t){ 0 });
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int64_t before = turns;
        struct t_reply r = cmd_ok(lines[i]);

        ck_assert_msg(turns > before, "%s over %d green threads: the loop "
            "did not turn while it ran", lines[i], WALKED);
        if (strcmp(lines[i], "stacks") == 0) {
            snprintf(want, sizeof(want), "[%d] === stable, ", WALKED);
            ck_assert_msg(starts_with(r.out, want), "%.300s", r.out);
            /* The sleepers, main (running) and the counter. */
            snprintf(want, sizeof(want), "\n%d green threads, 3 distinct "
                "stacks\n", WALKED + 2);
            ck_assert_ptr_nonnull(strstr(r.out, want));
        } else if (strcmp(lines[i], "tasks") == 0) {
            /* The counter may be waiting or, woken, ready. */
            snprintf(want, sizeof(want), "\n%d green threads: 1 running, ",
                WALKED + 2);
            ck_assert_msg(strstr(r.out, want) != NULL, "%s", want);
            snprintf(want, sizeof(want), " waiting, %d sleeping\n", WALKED);
            ck_assert_msg(strstr(r.out, want) != NULL, "%s", want);
        } else if (strstr(lines[i], "--json") != NULL) {
            ck_assert_json(r.out);
        }
        fprintf(stderr, "walks: %s over %d green threads: the loop turned "
            "%lld times meanwhile\n", lines[i], WALKED + 2,
            (long long)(turns - before));
        free(r.out);
    }
    diesel_loop_stop(0);
    return 0;
}

START_TEST(walks_let_the_loop_turn)
{
    ck_assert_int_eq(t_run(walks_turn_main, NULL), 0);
}
END_TEST

/* Two console sessions on socketpairs, served in this loop. */
static int sess_a[2] = { -1, -1 }, sess_b[2] = { -1, -1 };

static int
serve_one(void *arg)
{
    int fd = *(int *)arg;

    return diesel_console_serve_fds(fd, fd) == 0 ? 0 : errno + 1000;
}

static int
echo_cmd(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s%s", argv[i], i + 1 < argc ? " " :
            "\n");
    return 0;
}

/* Read a reply (its status line included) from a session, in the loop. */
static int
read_reply(int fd, char *buf, size_t size)
{
    size_t n = 0;

    for (;;) {
        ssize_t r;

        buf[n] = '\0';
        if (n > 0 && buf[n - 1] == '\n') {
            char *last = buf + n - 1;

            while (last > buf && last[-1] != '\n')
                last--;
            if (strcmp(last, "OK\n") == 0)
                return 0;
            if (strncmp(last, "ERR ", 4) == 0)
                return 1;
        }
        ck_assert_uint_lt(n, size - 1);
        if (diesel_fd_wait(fd, DIESEL_READ, 60000) < 0)
            return -1;
        r = recv(fd, buf + n, size - 1 - n, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
}

static int
has_input(int fd)
{
    char c;

    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static int
sessions_main(void *arg)
{
    static char reply[1 << 16];
    char want[128];
    int64_t before;
    int answered = 0, st;

    (void)arg;
    diesel_console_command("echo", "echo WORDS: the words", echo_cmd, NULL);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sess_a), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sess_b), 0);
    ck_assert_int_gt(diesel_task_spawn("session-a", serve_one, &sess_a[1],
        0), 0);
    ck_assert_int_gt(diesel_task_spawn("session-b", serve_one, &sess_b[1],
        0), 0);
    turns_start();
    spawn_walked(0, NULL, &(size_t){ 0 });

    /* Session A dumps the stacks; session B is asked to echo, again and
     * again, until A's reply comes.  A command that holds the loop has
     * replied before the first echo can be read. */
    before = turns;
    ck_assert_int_eq(send(sess_a[0], "stacks\n", 7, 0), 7);
    for (;;) {
        ck_assert_int_eq(send(sess_b[0], "echo still here\n", 16, 0), 16);
        ck_assert_int_eq(read_reply(sess_b[0], reply, sizeof(reply)), 0);
        ck_assert_str_eq(reply, "| still here\nOK\n");
        if (has_input(sess_a[0]))
            break;
        answered++;
        ck_assert_int_lt(answered, 1000000);
    }
    st = read_reply(sess_a[0], reply, sizeof(reply));
    ck_assert_msg(st == 0, "stacks: %s", reply);
    snprintf(want, sizeof(want), "| [%d] === stable, ", WALKED);
    ck_assert_msg(starts_with(reply, want), "%.300s", reply);
    /* The sleepers, the two sessions (one of them running), main and the
     * counter. */
    snprintf(want, sizeof(want), "| %d green threads, ", WALKED + 4);
    ck_assert_msg(strstr(reply, want) != NULL, "%s", reply);
    ck_assert_msg(answered > 0, "no echo was answered while stacks walked "
        "%d green threads", WALKED);
    ck_assert_int_gt(turns, before);
    fprintf(stderr, "walks: %d echoes answered by another session while "
        "stacks walked %d green threads\n", answered, WALKED + 4);
    close(sess_a[0]);
    close(sess_b[0]);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(another_session_is_answered_while_stacks_walks)
{
    ck_assert_int_eq(t_run(sessions_main, NULL), 0);
    close(sess_a[1]);
    close(sess_b[1]);
}
END_TEST

static int busy_runs;   /* busy commands run */

/* busy MS: computes for MS milliseconds without yielding. */
static int
busy_cmd(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct timespec ts;
    int64_t end;

    (void)out;
    (void)arg;
    if (argc != 2)
        return -1;
    busy_runs++;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    end = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
        (int64_t)atoi(argv[1]) * 1000000;
    do
        clock_gettime(CLOCK_MONOTONIC, &ts);
    while ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec < end);
    return 0;
}

#define PIPELINED 40    /* "busy 1" commands sent in one write */

static int
pipelined_main(void *arg)
{
    char batch[PIPELINED * 8], buf[4096];
    size_t len = 0;
    int oks = 0, carry = 0, ran_at_first = -1;
    int64_t before;

    (void)arg;
    diesel_console_command("busy", "busy MS: compute for MS ms",
        busy_cmd, NULL);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sess_a), 0);
    ck_assert_int_gt(diesel_task_spawn("session", serve_one, &sess_a[1],
        0), 0);
    turns_start();
    for (int i = 0; i < PIPELINED; i++)
        len += (size_t)snprintf(batch + len, sizeof(batch) - len,
            "busy 1\n");
    before = turns;
    ck_assert_int_eq(send(sess_a[0], batch, len, 0), (ssize_t)len);
    /* PIPELINED replies, each "OK\n" alone: 40 ms of commands. */
    while (oks < PIPELINED) {
        ssize_t r;

        ck_assert_int_gt(diesel_fd_wait(sess_a[0], DIESEL_READ, 60000), 0);
        r = recv(sess_a[0], buf, sizeof(buf), MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        ck_assert_int_gt(r, 0);
        if (ran_at_first < 0)
            ran_at_first = busy_runs;
        for (ssize_t i = 0; i < r; i++) {
            /* "OK\n" may straddle two reads: carry counts its bytes. */
            carry = buf[i] == "OK\n"[carry] ? carry + 1 :
                buf[i] == 'O' ? 1 : 0;
            if (carry == 3) {
                oks++;
                carry = 0;
            }
        }
    }
    /* Each slice is 2 ms: the loop turned between them, some twenty
     * times on an idle machine, where it used to turn not once before
     * the last reply.  Fewer on a busy one (a slice the process was
     * preempted in counts once), so a low bar. */
    ck_assert_msg(turns - before >= PIPELINED / 10, "%d pipelined 1 ms "
        "commands: the loop turned %lld times meanwhile", PIPELINED,
        (long long)(turns - before));
    /* And the replies went out slice by slice, not all at the end: the
     * first came while commands were still to run (a command may start
     * something that holds the loop: its reply is out by then). */
    ck_assert_msg(ran_at_first < PIPELINED, "the first reply came after "
        "all %d commands had run", PIPELINED);
    fprintf(stderr, "pipelined: %d back-to-back 1 ms commands: the loop "
        "turned %lld times meanwhile; the first reply came after %d "
        "had run\n", PIPELINED, (long long)(turns - before), ran_at_first);
    close(sess_a[0]);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(commands_sent_back_to_back_let_the_loop_turn)
{
    ck_assert_int_eq(t_run(pipelined_main, NULL), 0);
    close(sess_a[1]);
}
END_TEST

/* The integers of the JSON array after key at p (p at the key), into ids;
 * their count. */
static size_t
json_ids(const char *p, int64_t *ids, size_t max)
{
    size_t n = 0;

    p = strchr(p, '[');
    ck_assert_ptr_nonnull(p);
    for (p++; *p != ']'; ) {
        char *end;

        ck_assert_uint_lt(n, max);
        ids[n++] = strtoll(p, &end, 10);
        ck_assert_ptr_ne(end, p);
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int
churn_main(void *arg)
{
    static int64_t stable[WALKED_MAX], ids[WALKED_MAX * 4],
        all[WALKED_MAX * 4];
    size_t nstable, nall = 0, listed, stable_groups = 0;
    int64_t last, turns0, ended0, total;
    struct t_reply r;
    const char *p;
    char want[128];

    (void)arg;
    turns_start();
    spawn_walked(1, stable, &nstable);
    ck_assert_uint_eq(nstable, WALKED);
    ck_assert_uint_eq(nchurn, CHURNED);

    /* stacks --json while green threads come and go. */
    last = last_id;
    turns0 = churn_turns;
    ended0 = churn_ended;
    churning = 1;
    r = cmd_ok("stacks --json");
    churning = 0;
    ck_assert_msg(churn_turns > turns0, "no green thread came or went "
        "while stacks walked");
    ck_assert_int_gt(churn_ended, ended0);
    ck_assert_json(r.out);
    total = (int64_t)t_json_num(r.out, "count");
    /* Every group: its count and ids; no id twice, none spawned after the
     * command began; the stable ones all in one group, alone. */
    for (p = strstr(r.out, "{\"count\":"); (p = strstr(p + 1,
        "{\"count\":")) != NULL; ) {
        size_t n = json_ids(strstr(p, "\"ids\":"), ids,
            sizeof(ids) / sizeof(ids[0]));

        ck_assert_int_eq((int64_t)t_json_num(p, "count"), (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(ids[i] <= last, "green thread %lld, spawned "
                "during the walk, is listed", (long long)ids[i]);
            if (i > 0)
                ck_assert_int_lt(ids[i - 1], ids[i]);
            ck_assert_uint_lt(nall, sizeof(all) / sizeof(all[0]));
            all[nall++] = ids[i];
        }
        if (strncmp(strstr(p, "\"names\":[") + 9, "\"stable\"", 8) == 0) {
            stable_groups++;
            ck_assert_uint_eq(n, WALKED);
            ck_assert_mem_eq(ids, stable, sizeof(stable));
        }
    }
    ck_assert_uint_eq(stable_groups, 1);
    ck_assert_int_eq(total, (int64_t)nall);
    /* Those that ended before the walk got to them are not listed: the
     * sleepers, the ephemeral ones, main and the counter, less some. */
    ck_assert_int_lt(total, WALKED + CHURNED + 2);
    qsort(all, nall, sizeof(all[0]), cmp_i64);
    for (size_t i = 1; i < nall; i++)
        ck_assert_msg(all[i - 1] != all[i], "green thread %lld is listed "
            "twice", (long long)all[i]);
    fprintf(stderr, "walks: stacks --json over %d green threads while %lld "
        "ended and as many were spawned: %lld listed\n", WALKED + CHURNED +
        2, (long long)(churn_ended - ended0), (long long)total);
    free(r.out);

    /* The text form: the stable group first, the total its groups'. */
    turns0 = churn_turns;
    churning = 1;
    r = cmd_ok("stacks");
    churning = 0;
    ck_assert_int_gt(churn_turns, turns0);
    snprintf(want, sizeof(want), "[%d] === stable, ", WALKED);
    ck_assert_msg(starts_with(r.out, want), "%.300s", r.out);
    total = 0;
    for (p = r.out; p != NULL; p = strstr(p + 1, "\n[")) {
        if (*p == '\n')
            p++;
        total += strtoll(p + 1, NULL, 10);
    }
    p = strstr(r.out, " green threads, ");
    ck_assert_ptr_nonnull(p);
    while (p > r.out && p[-1] != '\n')
        p--;
    ck_assert_int_eq(strtoll(p, NULL, 10), total);
    free(r.out);

    /* tasks --json: ascending ids (so none twice), the count right, every
     * stable one there and sleeping. */
    last = last_id;
    turns0 = churn_turns;
    churning = 1;
    r = cmd_ok("tasks --json");
    churning = 0;
    ck_assert_int_gt(churn_turns, turns0);
    ck_assert_json(r.out);
    listed = 0;
    nall = 0;
    for (p = strstr(r.out, "{\"id\":"); p != NULL;
        p = strstr(p + 1, "{\"id\":")) {
        int64_t id = strtoll(p + 6, NULL, 10);

        ck_assert_int_le(id, last);
        if (listed > 0)
            ck_assert_int_lt(all[listed - 1], id);
        all[listed++] = id;
        if (nall < nstable && stable[nall] == id) {
            ck_assert_msg(strncmp(strstr(p, ",\"state\":"),
                ",\"state\":\"sleeping\"", 19) == 0, "%.200s", p);
            nall++;
        }
    }
    ck_assert_uint_eq(nall, nstable);
    ck_assert_int_eq((int64_t)t_json_num(r.out, "count"), (int64_t)listed);
    free(r.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(green_threads_that_come_and_go_during_a_walk_are_listed_once)
{
    ck_assert_int_eq(t_run(churn_main, NULL), 0);
}
END_TEST

/* A green thread running stacks, cancelled while it walks. */
static int dumper_started;
static struct t_reply dumper_res;

static int
dumper(void *arg)
{
    (void)arg;
    dumper_started = 1;
    dumper_res = cmd("stacks --json");
    return 0;
}

static int
cancel_walk_main(void *arg)
{
    int64_t id;

    (void)arg;
    spawn_walked(0, NULL, &(size_t){ 0 });
    id = diesel_task_spawn("dumper", dumper, NULL, 0);
    while (!dumper_started)
        ck_assert_int_eq(diesel_task_yield(), 0);
    /* It has begun, and yielded to the loop, or we would not run. */
    ck_assert_msg(diesel_task_cancel(id) == 0, "stacks over %d green "
        "threads was over before anything else could run", WALKED);
    ck_assert_int_eq(diesel_task_join(id, NULL, -1), 0);
    ck_assert_int_eq(dumper_res.rc, -1);
    ck_assert_msg(strstr(dumper_res.err, "interrupted") != NULL, "%s",
        dumper_res.err);
    free(dumper_res.out);
    diesel_loop_stop(0);
    return 0;
}

START_TEST(a_walk_stops_when_its_green_thread_is_cancelled)
{
    ck_assert_int_eq(t_run(cancel_walk_main, NULL), 0);
}
END_TEST

Suite *
diesel_builtins_suite(void)
{
    Suite *s = suite_create("builtins");
    TCase *tc = tcase_create("builtins");
    TCase *many = tcase_create("many");
    TCase *walks = tcase_create("walks");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, register_adds_every_builtin_once);
    tcase_add_test(tc, tasks_lists_ids_names_states_waits_and_durations);
    tcase_add_test(tc,
        tasks_names_the_spawning_call_without_the_macro);
    tcase_add_test(tc, tasks_long_cells_keep_later_columns_aligned);
    tcase_add_test(tc, table_sizes_columns_from_escaped_cells_and_caps_them);
    tcase_add_test(tc, stacks_groups_identical_stacks_and_names_functions);
    tcase_add_test(tc,
        stacks_say_func_offset_where_a_module_has_no_line_table);
    tcase_add_test(tc,
        signal_handlers_write_frames_from_the_tables_built_before);
    tcase_add_test(tc, line_tables_are_not_read_from_compressed_sections);
    tcase_add_test(tc, stacks_of_a_green_thread_that_never_ran_say_so);
    tcase_add_test(tc, stacks_work_with_the_ucontext_switch);
#if defined(__x86_64__)
    tcase_add_test(tc, stacks_fall_back_to_frame_pointers_and_spot_damage);
#endif
    tcase_add_test(tc, stats_counts_are_exact);
    tcase_add_test(tc, stats_figures_are_each_in_the_page);
    tcase_add_test(tc, mem_reports_stacks_reserved_committed_and_mappings);
    tcase_add_test(tc, pid_reports_the_process);
    tcase_add_test(tc, fds_shows_types_addresses_paths_and_waiters);
    tcase_add_test(tc, log_shows_and_sets_levels);
    tcase_add_test(tc, log_refuses_an_unknown_logger_unless_new);
    tcase_add_test(tc, cancel_makes_the_blocking_call_fail);
    tcase_add_test(tc, json_is_escaped_and_replies_respect_the_limit);
    tcase_add_test(tc, hostile_green_thread_names_stay_on_their_rows);
    tcase_add_test(tc, commands_need_a_loop);
    suite_add_tcase(s, tc);
    tcase_set_timeout(many, 120);
    tcase_add_test(many, ten_thousand_green_threads_are_listed_and_dumped);
    suite_add_tcase(s, many);
    tcase_set_timeout(walks, 240);
    tcase_add_test(walks, walks_let_the_loop_turn);
    tcase_add_test(walks, another_session_is_answered_while_stacks_walks);
    tcase_add_test(walks, commands_sent_back_to_back_let_the_loop_turn);
    tcase_add_test(walks,
        green_threads_that_come_and_go_during_a_walk_are_listed_once);
    tcase_add_test(walks, a_walk_stops_when_its_green_thread_is_cancelled);
    suite_add_tcase(s, walks);
    return s;
}
