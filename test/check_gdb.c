/*
 * check_gdb.c: green threads after death (tools/diesel-gdb.py), with the
 * real gdb in batch mode: on a core taken with gcore from test/gdb_child
 * while its green threads sleep, wait on a pipe, an event and a join; on
 * the live process (gdb -p); and on the core of a child whose green
 * thread crashed.
 *
 * gdb is optional: where it is missing (test/deps.sh ci and .ci/run
 * install it) each test says so on standard error and passes.
 *
 * gdb, gcore and the child are started through /bin/sh, which CI's
 * valgrind run does not trace (--trace-children-skip='*' '/sh'): gdb
 * cannot look at a process that runs inside valgrind, and gdb under
 * valgrind would take minutes.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "sanitize.h"

static char dir[64];
static struct t_proc child;
static struct t_proc gdbp;

/*
 * A core of a process under ASan holds what it maps for its shadow
 * memory: gcore wrote 11 GB for gdb_child, and the crash test filled the
 * disk.  Under ASan only the live process is looked at.
 */
static int
cores_ok(const char *test)
{
#ifdef DIESEL__ASAN
    fprintf(stderr, "%s: skipped under ASan: a core of the child would "
        "hold ASan's shadow memory (gigabytes)\n", test);
    return 0;
#else
    (void)test;
    return 1;
#endif
}

static int
have_gdb(const char *test)
{
    if (system("command -v gdb >/dev/null 2>&1 && "
        "command -v gcore >/dev/null 2>&1") == 0)
        return 1;
    fprintf(stderr, "%s: skipped: gdb is not installed (Debian package "
        "gdb; test/deps.sh ci and .ci/run install it)\n", test);
    return 0;
}

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/diesel-gdb-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    memset(&child, 0, sizeof(child));
    child.reaped = 1;
}

static void
teardown(void)
{
    char cmd[128];

    if (child.pid > 0 && !child.reaped) {
        kill(child.pid, SIGKILL);
        t_proc_wait(&child, 5000);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Start test/gdb_child MODE through sh, its standard input on a pipe;
 * guard "mprotect" sets DIESEL_STACK_GUARD (see start_parked). */
static void
child_start(const char *mode, const char *guard, const struct t_proc_how
    *how)
{
    static char path[4096];
    char *argv[] = { "sh", "-c", NULL, path, (char *)mode, NULL };
    char script[128];

    char *abs = realpath(t_dir(), NULL);

    /* Absolute: the crash's child runs in dir. */
    ck_assert_ptr_nonnull(abs);
    snprintf(path, sizeof(path), "%s/gdb_child", abs);
    free(abs);
    snprintf(script, sizeof(script), "exec \"$0\" \"$1\"");
    if (guard != NULL)
        snprintf(script, sizeof(script), "DIESEL_STACK_GUARD=%s; export "
            "DIESEL_STACK_GUARD; exec \"$0\" \"$1\"", guard);
    argv[2] = script;
    t_proc_start(&child, "/bin/sh", argv, how);
}

/*
 * The child with its green threads parked.  gcore reads each mapping of
 * the process whole and leaves out one it cannot (gdb 13: "Memory read
 * failed for corefile section"): a stack with a Linux guard region
 * (MADV_GUARD_INSTALL) is one, so the cores taken here have mprotect'd
 * guard pages, which are mappings of their own that gcore skips.
 */
static void
start_parked(const char *guard)
{
    static const struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };

    child_start("park", guard, &how);
    ck_assert_msg(t_proc_expect(&child, 0, "ready", 30000),
        "gdb_child did not get ready: %s", child.ebuf);
}

/* Run the shell command cmd (gdb or gcore), all its output in
 * gdbp.obuf; its wait status. */
static int
run(const char *cmd)
{
    char *argv[] = { "sh", "-c", NULL, NULL };
    char script[2048];

    snprintf(script, sizeof(script), "exec 2>&1; %s", cmd);
    argv[2] = script;
    t_proc_start(&gdbp, "/bin/sh", argv, NULL);
    return t_proc_wait(&gdbp, 120000);
}

/* gdb in batch mode on target ("-p PID" or "PROGRAM CORE"), the
 * extension sourced, then each command; its output. */
static const char *
gdb_batch(const char *target, const char *const *cmds)
{
    char cmd[2048];
    size_t n;

    n = (size_t)snprintf(cmd, sizeof(cmd), "exec gdb -batch -nx "
        "-iex 'set debuginfod enabled off' -ex 'source %s' ",
        t_tool_path("diesel-gdb.py"));
    for (; *cmds != NULL; cmds++)
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "-ex '%s' ", *cmds);
    snprintf(cmd + n, sizeof(cmd) - n, "%s", target);
    run(cmd);
    return gdbp.obuf;
}

/* The table row of the green thread named name, as one string. */
static const char *
row(const char *out, const char *name)
{
    static char line[512];
    const char *p = out;
    char key[64];

    snprintf(key, sizeof(key), "  %s  ", name);
    while ((p = strstr(p, key)) != NULL) {
        const char *b = p, *e = strchr(p, '\n');

        while (b > out && b[-1] != '\n')
            b--;
        if (e == NULL)
            e = p + strlen(p);
        snprintf(line, sizeof(line), "%.*s", (int)(e - b), b);
        return line;
    }
    return "";
}

#define HAS(out, needle) \
    ck_assert_msg(strstr((out), (needle)) != NULL, \
        "no \"%s\" in gdb's output:\n%s", (needle), (out))

/* A marked line of gdb_child.c as file:line. */
static const char *
at(const char *mark)
{
    static char buf[8][64];
    static int k;
    char *b = buf[k++ % 8];

    snprintf(b, 64, "gdb_child.c:%d", t_source_line("test/gdb_child.c",
        mark));
    return b;
}

/* The green threads of the park mode, as info green-threads and their
 * backtraces show them. */
static void
check_parked(const char *target)
{
    static const char *const cmds[] = { "info green-threads",
        "green-thread 2 bt", "green-thread 3 bt", "green-thread 4 bt",
        "green-thread 5 bt", "green-thread 1 bt", NULL };
    const char *out = gdb_batch(target, cmds);
    const char *bt;

    HAS(out, "loop 1 on thread 1 (LWP");
    HAS(out, ": 5 green threads\n");
    HAS(row(out, "main"), "waiting   fd 0 read");
    HAS(row(out, "sleeper"), "sleeping  sleep, timer 6");
    HAS(row(out, "reader"), "waiting   fd ");
    HAS(row(out, "waiter"), "waiting   event 'go'");
    HAS(row(out, "joiner"), "waiting   join 2 (sleeper)");
    HAS(row(out, "joiner"), "test/gdb_child.c:");
    /* Each backtrace names the function that parked, at its line. */
    bt = strstr(out, "green thread 2 'sleeper' (sleeping), loop 1:");
    ck_assert_msg(bt != NULL, "no backtrace of sleeper:\n%s", out);
    HAS(bt, "in diesel_sleep (");
    HAS(bt, "in gdb_sleeper (");
    HAS(bt, at("sleep"));
    HAS(bt, "in diesel_fd_wait (");
    HAS(bt, at("fd"));
    HAS(bt, "in diesel_event_wait (");
    HAS(bt, at("event"));
    HAS(bt, "in diesel_task_join (");
    HAS(bt, at("join"));
    HAS(bt, "in service (");
    HAS(bt, at("stdin"));
    ck_assert_msg(strstr(out, "Python Exception") == NULL &&
        strstr(out, "Backtrace stopped") == NULL, "%s", out);
}

START_TEST(gdb_core_from_gcore_shows_parked_green_threads)
{
    char cmd[256], target[512];

    if (!have_gdb(__func__) || !cores_ok(__func__))
        return;
    start_parked("mprotect");
    snprintf(cmd, sizeof(cmd), "exec gcore -o %s/gc %ld", dir,
        (long)child.pid);
    ck_assert_msg(run(cmd) == 0, "gcore failed:\n%s", gdbp.obuf);
    snprintf(target, sizeof(target), "%s/gdb_child %s/gc.%ld", t_dir(), dir,
        (long)child.pid);
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(t_proc_wait(&child, 30000), 0);
    check_parked(target);
}
END_TEST

START_TEST(gdb_live_process_shows_parked_green_threads)
{
    char target[64];

    if (!have_gdb(__func__))
        return;
    start_parked(NULL);
    snprintf(target, sizeof(target), "-p %ld", (long)child.pid);
    if (getuid() != 0) {
        static const char *const cmds[] = { "info green-threads", NULL };
        const char *out = gdb_batch(target, cmds);

        if (strstr(out, "ptrace: Operation not permitted") != NULL) {
            fprintf(stderr, "%s: skipped: ptrace is not permitted here "
                "(kernel.yama.ptrace_scope; CI runs as root)\n", __func__);
            return;
        }
    }
    check_parked(target);
    /* gdb let go of it: it still serves, and ends at EOF. */
    close(child.in);
    child.in = -1;
    ck_assert_int_eq(t_proc_wait(&child, 30000), 0);
}
END_TEST

/*
 * Without debug information (objcopy --strip-debug: the symbol table and
 * the unwind tables stay) the extension reads the same layout, and the
 * backtrace names the functions from the symbol table.
 */
START_TEST(gdb_without_debug_info_reads_the_layout)
{
    static const struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    static const char *const cmds[] = { "info green-threads",
        "green-thread 4 bt", NULL };
    char cmd[4096], *abs, *argv[] = { "sh", "-c", "exec \"$0\" park",
        cmd, NULL };
    char target[64];
    const char *out, *bt;

    if (!have_gdb(__func__))
        return;
    if (system("command -v objcopy >/dev/null 2>&1") != 0) {
        fprintf(stderr, "%s: skipped: objcopy (binutils) is missing\n",
            __func__);
        return;
    }
    abs = realpath(t_dir(), NULL);
    ck_assert_ptr_nonnull(abs);
    snprintf(cmd, sizeof(cmd), "exec objcopy --strip-debug %s/gdb_child "
        "%s/gdb_child", abs, dir);
    free(abs);
    ck_assert_msg(run(cmd) == 0, "objcopy failed:\n%s", gdbp.obuf);
    snprintf(cmd, sizeof(cmd), "%s/gdb_child", dir);
    t_proc_start(&child, "/bin/sh", argv, &how);
    ck_assert_msg(t_proc_expect(&child, 0, "ready", 30000),
        "gdb_child did not get ready: %s", child.ebuf);
    snprintf(target, sizeof(target), "-p %ld", (long)child.pid);
    out = gdb_batch(target, cmds);
    if (strstr(out, "ptrace: Operation not permitted") != NULL) {
        fprintf(stderr, "%s: skipped: ptrace is not permitted here\n",
            __func__);
        return;
    }
    HAS(out, ": 5 green threads\n");
    HAS(row(out, "waiter"), "waiting   event 'go'");
    bt = strstr(out, "green thread 4 'waiter' (waiting), loop 1:");
    ck_assert_msg(bt != NULL, "no backtrace of waiter:\n%s", out);
    HAS(bt, " in diesel_event_wait ()");
    HAS(bt, " in gdb_waiter ()");
    HAS(bt, " in trampoline ()");
    ck_assert_msg(strstr(out, "Backtrace stopped") == NULL &&
        strstr(out, "Python Exception") == NULL, "%s", out);
}
END_TEST

/* Every loop is listed, each with its OS thread; ids repeat across
 * loops, so LOOP.ID picks one and a bare ID is refused. */
START_TEST(gdb_lists_every_loop_and_picks_one_by_loop_id)
{
    static const struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    static const char *const cmds[] = { "info green-threads",
        "green-thread 1 bt", "green-thread 1.1 bt", NULL };
    char target[64];
    const char *out, *bt;

    if (!have_gdb(__func__))
        return;
    child_start("threads", NULL, &how);
    ck_assert_msg(t_proc_expect(&child, 0, "ready", 30000),
        "gdb_child did not get ready: %s", child.ebuf);
    snprintf(target, sizeof(target), "-p %ld", (long)child.pid);
    out = gdb_batch(target, cmds);
    if (strstr(out, "ptrace: Operation not permitted") != NULL) {
        fprintf(stderr, "%s: skipped: ptrace is not permitted here\n",
            __func__);
        return;
    }
    /* Oldest first: the second thread's loop started before main's. */
    HAS(out, "loop 1 on thread 2 (LWP ");
    HAS(out, "): 1 green thread\n");
    HAS(out, "loop 2 on thread 1 (LWP ");
    HAS(out, "): 5 green threads\n");
    /* (The first row named main is loop 1's.) */
    HAS(row(out, "main"), "sleeping  sleep, timer 6");
    HAS(out, "green thread 1 is in loops 1, 2: say which, as "
        "green-thread LOOP.1 bt");
    bt = strstr(out, "green thread 1 'main' (sleeping), loop 1:");
    ck_assert_msg(bt != NULL, "no backtrace of loop 1's main:\n%s", out);
    HAS(bt, "in gdb_other (");
    HAS(bt, at("other"));
}
END_TEST

/* Does this kernel have guard regions (Linux 6.13+)? */
static int
guard_regions(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok;

    ck_assert_ptr_ne(p, MAP_FAILED);
    ok = madvise(p, page, 102 /* MADV_GUARD_INSTALL */) == 0;
    munmap(p, 2 * page);
    return ok;
}

/* Where gcore loses the stacks, the extension says why and what to do. */
START_TEST(gdb_gcore_without_stacks_says_why)
{
    static const char *const cmds[] = { "info green-threads", NULL };
    char cmd[256], target[512];
    const char *out;

    if (!have_gdb(__func__) || !cores_ok(__func__))
        return;
    if (!guard_regions()) {
        fprintf(stderr, "%s: skipped: this kernel has no guard regions "
            "(MADV_GUARD_INSTALL), so gcore keeps every stack\n", __func__);
        return;
    }
    start_parked(NULL);
    snprintf(cmd, sizeof(cmd), "exec gcore -o %s/gc %ld", dir,
        (long)child.pid);
    ck_assert_msg(run(cmd) == 0, "gcore failed:\n%s", gdbp.obuf);
    snprintf(target, sizeof(target), "%s/gdb_child %s/gc.%ld", t_dir(), dir,
        (long)child.pid);
    out = gdb_batch(target, cmds);
    HAS(out, "is not in this core file (it reads as zeros): gcore (gdb) "
        "drops a mapping it cannot read whole");
    HAS(out, "DIESEL_STACK_GUARD=mprotect");
}
END_TEST

static void
core_limit(void)
{
    /* 256 MiB: the child's core is a few MiB; a larger one is cut. */
    struct rlimit rl = { 256 << 20, 256 << 20 };

    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        getrlimit(RLIMIT_CORE, &rl);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (256 << 20)) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_CORE, &rl);
        }
    }
    if (chdir(dir) != 0)
        _exit(126);
}

/* The first file in dir whose name starts with prefix, into path. */
static int
find_file(const char *prefix, char *path, size_t size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;

    ck_assert_ptr_nonnull(d);
    while (!found && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            snprintf(path, size, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/*
 * A real crash's core.  The kernel writes it where core_pattern says,
 * which this test must not change (it is system-wide): a plain name is
 * taken relative to the crashing process's directory, so the child runs
 * in dir with RLIMIT_CORE raised.  Where core_pattern is a pipe
 * (systemd-coredump, apport) or a path elsewhere, or no core came, the
 * child runs under gdb instead, which stops it at the fault (SIGSEGV
 * stops by default) and writes the core there: the same state.
 */
START_TEST(gdb_core_of_a_crash_shows_the_crashed_green_thread)
{
    static const char *const cmds[] = { "info green-threads",
        "green-thread 6 bt", "green-thread 7 bt", "green-thread 5 bt",
        NULL };
    static const struct t_proc_how how = { -1, NULL, core_limit };
    char pattern[256] = "", core[512], target[1024], cmd[1024];
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    const char *out, *bt;
    int st, kernel = 0;

    if (!have_gdb(__func__) || !cores_ok(__func__))
        return;
    if (f != NULL) {
        if (fgets(pattern, sizeof(pattern), f) == NULL)
            pattern[0] = '\0';
        fclose(f);
    }
    if (pattern[0] != '\0' && pattern[0] != '|' &&
        strchr(pattern, '/') == NULL) {
        child_start("crash", NULL, &how);
        st = t_proc_wait(&child, 60000);
        HAS(child.ebuf, "fatal signal SIGSEGV (fault at 0x");
        HAS(child.ebuf, ") in green thread 'crasher' (id 6)");
        /* (ASan's handler, which ours hands the fault on to, exits
         * without a core.) */
        kernel = WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV &&
            WCOREDUMP(st) && find_file("core", core, sizeof(core));
    }
    if (!kernel) {
        fprintf(stderr, "%s: no core from the kernel here (core_pattern "
            "'%.*s'): taken by gdb at the fault\n", __func__,
            (int)strcspn(pattern, "\n"), pattern);
        snprintf(core, sizeof(core), "%s/crash.core", dir);
        snprintf(cmd, sizeof(cmd), "DIESEL_STACK_GUARD=mprotect; export "
            "DIESEL_STACK_GUARD; exec gdb -batch -nx "
            "-iex 'set debuginfod enabled off' -ex run "
            "-ex 'generate-core-file %s' --args %s/gdb_child crash", core,
            t_dir());
        run(cmd);
        ck_assert_msg(access(core, R_OK) == 0, "no core:\n%s", gdbp.obuf);
    }
    snprintf(target, sizeof(target), "%s/gdb_child %s", t_dir(), core);
    out = gdb_batch(target, cmds);
    HAS(out, ": 7 green threads\n");
    HAS(row(out, "crasher"), "*  6");
    HAS(row(out, "crasher"), "running");
    HAS(row(out, "fresh"), "ready");
    HAS(row(out, "joiner"), "waiting   join 2 (sleeper)");
    bt = strstr(out, "green thread 6 'crasher' (running), loop 1:");
    ck_assert_msg(bt != NULL, "no backtrace of crasher:\n%s", out);
    HAS(bt, "(running on thread 1 (LWP");
    HAS(bt, "in gdb_crash_here (");
    HAS(bt, at("crash"));
    HAS(bt, "in gdb_crasher (");
    HAS(bt, "green thread 7 'fresh' (ready), loop 1:\n"
        "(it has not run yet: no frames)");
    HAS(bt, "in gdb_joiner (");
    HAS(bt, at("join"));
}
END_TEST

/* What the operator gets wrong is refused with a reason. */
START_TEST(gdb_refusals_name_the_mistake)
{
    static const char *const cmds[] = { "green-thread 99 bt",
        "green-thread x bt", "green-thread 2", "green-thread 2.1 bt",
        "info green-threads now", NULL };
    static const char *const none[] = { "info green-threads", NULL };
    char target[64];
    const char *out;

    if (!have_gdb(__func__))
        return;
    start_parked(NULL);
    snprintf(target, sizeof(target), "-p %ld", (long)child.pid);
    out = gdb_batch(target, cmds);
    if (strstr(out, "ptrace: Operation not permitted") != NULL) {
        fprintf(stderr, "%s: skipped: ptrace is not permitted here\n",
            __func__);
        return;
    }
    HAS(out, "no green thread 99 (info green-threads lists them)");
    HAS(out, "green-thread: 'x' is not an id (ID or LOOP.ID, numbers)");
    HAS(out, "usage: green-thread ID bt  (or LOOP.ID bt)");
    HAS(out, "no loop 2 (info green-threads lists them)");
    HAS(out, "usage: info green-threads");
    /* A program without libdiesel. */
    out = gdb_batch("/bin/sh", none);
    HAS(out, "no libdiesel here: the program has no symbol "
        "diesel_debug_root");
}
END_TEST

Suite *
diesel_gdb_suite(void)
{
    Suite *s = suite_create("gdb");
    TCase *tc = tcase_create("gdb");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, gdb_core_from_gcore_shows_parked_green_threads);
    tcase_add_test(tc, gdb_live_process_shows_parked_green_threads);
    tcase_add_test(tc, gdb_without_debug_info_reads_the_layout);
    tcase_add_test(tc, gdb_lists_every_loop_and_picks_one_by_loop_id);
    tcase_add_test(tc, gdb_gcore_without_stacks_says_why);
    tcase_add_test(tc, gdb_core_of_a_crash_shows_the_crashed_green_thread);
    tcase_add_test(tc, gdb_refusals_name_the_mistake);
    suite_add_tcase(s, tc);
    return s;
}
