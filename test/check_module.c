/*
 * check_module.c: the console's load, unload and modules
 * (console_module.c), and sym and peek (console_mem.c), against a real
 * service: test/console_app_child attached to as dconsole does, with the
 * tests' module (test/module_mod.c, built by the Makefile) copied into a
 * directory of the test's own whose every ancestor passes the checks;
 * and examples/redisping with examples/redisping_conns.so and real
 * clients.  The service's log (its standard error) must say every load,
 * refusal and unload.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"
#include "console_client.h"
#include "console.h"
#include "sanitize.h"

#include <check.h>

#define T(ms) ((int)t_slow(ms))

/* snprintf, for paths whose sum gcc thinks may be cut (they are short:
 * the test's own directory). */
static void fmt(char *buf, size_t size, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void
fmt(char *buf, size_t size, const char *f, ...)
{
    va_list ap;

    va_start(ap, f);
    vsnprintf(buf, size, f, ap);
    va_end(ap);
}

static struct t_proc app;
static char rdv[64];
static char base[PATH_MAX];     /* the test's directory for modules */
static char mod[PATH_MAX];      /* base/mod.so, the tests' module */
static char reply[1 << 16];

/* Owned by root or by us and writable by the owner only, up to /. */
static int
chain_safe(const char *dir)
{
    char p[PATH_MAX];
    struct stat st;
    char *slash;

    fmt(p, sizeof(p), "%s", dir);
    for (;;) {
        if (lstat(p[0] ? p : "/", &st) != 0 || S_ISLNK(st.st_mode) ||
            (st.st_uid != 0 && st.st_uid != geteuid()) ||
            (st.st_mode & 022))
            return 0;
        if (p[0] == '\0' || strcmp(p, "/") == 0)
            return 1;
        slash = strrchr(p, '/');
        *slash = '\0';
    }
}

static void rm_rf(const char *path);
static pid_t base_owner;

/* A test that fails leaves through exit: its directory goes too. */
static void
base_remove(void)
{
    if (getpid() == base_owner)
        rm_rf(base);
}

/* A private directory for modules under the first candidate whose path
 * passes the checks: the test directory, else $HOME. */
static void
base_make(void)
{
    char real[PATH_MAX];
    const char *cand[2] = { t_dir(), getenv("HOME") };

    base[0] = '\0';
    for (int i = 0; i < 2 && base[0] == '\0'; i++) {
        if (cand[i] == NULL || realpath(cand[i], real) == NULL ||
            !chain_safe(real))
            continue;
        fmt(base, sizeof(base), "%s/modtest-XXXXXX", real);
        ck_assert_ptr_nonnull(mkdtemp(base));
    }
    ck_assert_msg(base[0] != '\0', "no directory whose every ancestor is "
        "owned by root or uid %u and writable by its owner only: the test "
        "directory %s and $HOME are not", (unsigned)geteuid(), t_dir());
    ck_assert_int_eq(chmod(base, 0755), 0);
    base_owner = getpid();
    atexit(base_remove);
}

static void
copy(const char *from, const char *to, mode_t mode)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out;
    ssize_t n;

    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
    ck_assert_int_eq(chmod(to, mode), 0);
}

static void
rm_rf(const char *path)
{
    char cmd[PATH_MAX + 32];

    if (path[0] == '\0')
        return;
    fmt(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        /* Left behind: harmless. */
    }
}

static void
app_up(const char *opt)
{
    char path[512];
    char *argv[] = { "console_app_child", (char *)opt, NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };

    t_console_dir_make(rdv, "module");
    base_make();
    fmt(mod, sizeof(mod), "%s/mod.so", base);
    fmt(path, sizeof(path), "%s/module_mod.so", t_dir());
    copy(path, mod, 0644);
    fmt(path, sizeof(path), "%s/console_app_child", t_dir());
    t_proc_start(&app, path, argv, &how);
    ck_assert_msg(t_proc_expect(&app, 0, "ready ", 10000), "%s", app.ebuf);
}

static void
app_down(void)
{
    close(app.in);
    app.in = -1;
    t_proc_wait(&app, 10000);
    t_console_dir_remove(rdv, &app);
    rm_rf(base);
}

static void
attach(struct dcc *c)
{
    ck_assert_msg(dcc_attach(c, app.pid, geteuid(), 0, T(5000)) == 0,
        "attach: %s; log: %s", strerror(errno), app.ebuf);
}

/* Run line: its status (0 OK, 1 ERR); the reply in reply. */
static int
run(struct dcc *c, const char *line)
{
    int st = dcc_command(c, line, reply, sizeof(reply), T(10000));

    if (st < 0)
        t_proc_pump(&app, 1000);
    ck_assert_msg(st >= 0, "%s: no reply (%s); log: %s", line,
        strerror(errno), app.ebuf);
    return st;
}

static void
ok(struct dcc *c, const char *line, const char *has)
{
    ck_assert_msg(run(c, line) == 0, "%s: %s", line, reply);
    if (has != NULL)
        ck_assert_msg(strstr(reply, has) != NULL, "%s: [%s] has no [%s]",
            line, reply, has);
}

/* line fails with exactly ERR want. */
static void
err(struct dcc *c, const char *line, const char *want)
{
    char full[4096];

    ck_assert_msg(run(c, line) == 1, "%s: OK: %s", line, reply);
    fmt(full, sizeof(full), "ERR %s\n", want);
    ck_assert_msg(strcmp(reply, full) == 0, "%s: [%s], wanted [%s]", line,
        reply, full);
}

static void
logged(const char *needle)
{
    ck_assert_msg(t_proc_expect(&app, 1, needle, 5000), "the log has no "
        "[%s]: %s", needle, app.ebuf);
}

/* ---- load, unload, modules ----------------------------------------------- */

START_TEST(load_runs_a_module_and_unload_removes_it)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 256];

    app_up(NULL);
    attach(&c);
    ok(&c, "modules", "no module loaded");
    fmt(line, sizeof(line), "load %s one two", mod);
    fmt(want, sizeof(want), "| loaded module modtest from %s: 3 "
        "commands, 2 variables\nOK\n", mod);
    ok(&c, line, NULL);
    ck_assert_str_eq(reply, want);
    /* The log names the path, the module, and the peer (us). */
    fmt(want, sizeof(want), "console: loaded module modtest from %s "
        "(peer pid %ld, uid %u): 3 commands, 2 variables", mod,
        (long)getpid(), (unsigned)geteuid());
    logged(want);
    ok(&c, "modhello", "| hello from modtest one two\n");
    ok(&c, "get modvar", "| 5\n");
    ok(&c, "set modvar 9", NULL);
    ok(&c, "get modvar", "| 9\n");
    /* A module's range-checked integer: refused outside, as the
     * service's own are, and the value kept. */
    ok(&c, "get modrange", "| 2\n");
    err(&c, "set modrange 13", "bad value '13' for modrange: want an "
        "integer at least 2 and at most 12");
    err(&c, "set modrange 1", "bad value '1' for modrange: want an "
        "integer at least 2 and at most 12");
    ok(&c, "get modrange", "| 2\n");
    ok(&c, "set modrange 12", "| modrange: 12 (was 2)\n");
    err(&c, "get modbad", "no such variable: modbad");
    ok(&c, "help", "modhello");
    ok(&c, "modules", "modtest");
    ck_assert_msg(strstr(reply, mod) != NULL, "%s", reply);
    ok(&c, "modules --json", "\"name\":\"modtest\"");
    fmt(want, sizeof(want), "\"by_pid\":%ld", (long)getpid());
    ck_assert_msg(strstr(reply, want) != NULL, "%s", reply);
    /* Loaded twice: refused by name. */
    fmt(line, sizeof(line), "load %s", mod);
    err(&c, line, "load: a module named modtest is already loaded: unload "
        "modtest first");
    ok(&c, "unload modtest", "| unloaded module modtest: 3 commands and 2 "
        "variables removed\n");
    fmt(want, sizeof(want), "console: unloaded module modtest from %s "
        "(peer pid %ld, uid %u)", mod, (long)getpid(), (unsigned)geteuid());
    logged(want);
    /* Its commands and variables went before its fini ran. */
    logged("{modtest} WARNING:modtest fini");
    err(&c, "modhello", "unknown command \"modhello\" (try help)");
    err(&c, "get modvar", "no such variable: modvar");
    err(&c, "get modrange", "no such variable: modrange");
    ok(&c, "modules", "no module loaded");
    err(&c, "unload modtest", "unload: no module named modtest (modules "
        "lists them)");
    err(&c, "unload", "usage: unload NAME");
    err(&c, "load", "usage: load PATH [ARGS]");
    /* And again: the same file loads once more. */
    fmt(line, sizeof(line), "load %s", mod);
    ok(&c, line, "loaded module modtest");
    ok(&c, "modhello", "| hello from modtest\n");
    dcc_close(&c);
    app_down();
}
END_TEST

START_TEST(load_refuses_unsafe_paths)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 256], p[PATH_MAX],
        q[PATH_MAX];

    app_up(NULL);
    attach(&c);
    /* Relative. */
    err(&c, "load mod.so", "load: mod.so is not an absolute path");
    logged("console: load of mod.so refused (peer pid");
    /* A . or .. component. */
    fmt(line, sizeof(line), "load %s/../%s", base, strrchr(base, '/')
        + 1);
    run(&c, line);
    ck_assert_msg(strstr(reply, "empty, . or .. component") != NULL, "%s",
        reply);
    /* A group-writable directory. */
    fmt(p, sizeof(p), "%s/gw", base);
    ck_assert_int_eq(mkdir(p, 0775), 0);
    ck_assert_int_eq(chmod(p, 0775), 0);
    fmt(q, sizeof(q), "%s/mod.so", p);
    copy(mod, q, 0644);
    fmt(line, sizeof(line), "load %s", q);
    fmt(want, sizeof(want), "load: directory %s is writable by its "
        "group or others (mode 0775): a module and every directory above "
        "it must be writable by their owner only", p);
    err(&c, line, want);
    /* A file writable by others. */
    ck_assert_int_eq(chmod(p, 0755), 0);
    ck_assert_int_eq(chmod(q, 0646), 0);
    fmt(want, sizeof(want), "load: file %s is writable by its group "
        "or others (mode 0646): a module and every directory above it must "
        "be writable by their owner only", q);
    err(&c, line, want);
    ck_assert_int_eq(chmod(q, 0644), 0);
    /* A file of another user (root can give it away). */
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");

        ck_assert_ptr_nonnull(pw);
        ck_assert_int_eq(chown(q, pw->pw_uid, pw->pw_gid), 0);
        fmt(want, sizeof(want), "load: file %s belongs to uid %u, "
            "neither root nor this service's user (uid 0)", q,
            (unsigned)pw->pw_uid);
        err(&c, line, want);
        /* A directory of another user. */
        ck_assert_int_eq(chown(q, 0, 0), 0);
        ck_assert_int_eq(chown(p, pw->pw_uid, pw->pw_gid), 0);
        fmt(want, sizeof(want), "load: directory %s belongs to uid "
            "%u, neither root nor this service's user (uid 0)", p,
            (unsigned)pw->pw_uid);
        err(&c, line, want);
        ck_assert_int_eq(chown(p, 0, 0), 0);
    } else {
        fprintf(stderr, "load_refuses_unsafe_paths: not root: the file of "
            "another user is not tried\n");
    }
    /* Safe now: it loads (so the refusals above were for their reason). */
    ok(&c, line, "loaded module modtest");
    ok(&c, "unload modtest", NULL);
    /* A symbolic link to the file. */
    fmt(q, sizeof(q), "%s/link.so", base);
    ck_assert_int_eq(symlink(mod, q), 0);
    fmt(line, sizeof(line), "load %s", q);
    fmt(want, sizeof(want), "load: %s is a symbolic link: give the "
        "path of the file itself", q);
    err(&c, line, want);
    /* Missing. */
    fmt(line, sizeof(line), "load %s/none.so", base);
    fmt(want, sizeof(want), "load: %s/none.so: No such file or "
        "directory", base);
    err(&c, line, want);
    /* Not a regular file. */
    fmt(line, sizeof(line), "load %s/gw", base);
    fmt(want, sizeof(want), "load: %s/gw is not a regular file", base);
    err(&c, line, want);
    fmt(want, sizeof(want), "console: load of %s/gw refused (peer pid "
        "%ld, uid %u): %s/gw is not a regular file", base, (long)getpid(),
        (unsigned)geteuid(), base);
    logged(want);
    ok(&c, "modules", "no module loaded");
    dcc_close(&c);
    app_down();
}
END_TEST

/* A directory of the path swapped for a symbolic link to a directory that
 * passes every check: refused, as a link; the real path loads. */
START_TEST(load_refuses_a_symlink_swapped_under_it)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 256], d[PATH_MAX],
        e[PATH_MAX], f[PATH_MAX];

    app_up(NULL);
    attach(&c);
    fmt(d, sizeof(d), "%s/d", base);
    fmt(e, sizeof(e), "%s/elsewhere", base);
    ck_assert_int_eq(mkdir(d, 0755), 0);
    ck_assert_int_eq(mkdir(e, 0755), 0);
    fmt(f, sizeof(f), "%s/mod.so", d);
    copy(mod, f, 0644);
    fmt(f, sizeof(f), "%s/mod.so", e);
    copy(mod, f, 0644);
    fmt(line, sizeof(line), "load %s/mod.so", d);
    ok(&c, line, "loaded module modtest");
    ok(&c, "unload modtest", NULL);
    /* Swap d for a link to elsewhere. */
    rm_rf(d);
    ck_assert_int_eq(symlink(e, d), 0);
    fmt(want, sizeof(want), "load: %s is a symbolic link: give the "
        "path of the file itself", d);
    err(&c, line, want);
    fmt(line, sizeof(line), "load %s/mod.so", e);
    ok(&c, line, "loaded module modtest");
    dcc_close(&c);
    app_down();
}
END_TEST

START_TEST(load_refuses_a_foreign_version_and_a_failed_init)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 256], p[PATH_MAX],
        q[PATH_MAX];

    app_up(NULL);
    attach(&c);
    /* Built for interface version 99. */
    fmt(p, sizeof(p), "%s/module_v99_mod.so", t_dir());
    fmt(q, sizeof(q), "%s/v99.so", base);
    copy(p, q, 0644);
    fmt(line, sizeof(line), "load %s", q);
    fmt(want, sizeof(want), "load: %s was built for module interface "
        "version 99; this service speaks version %d: rebuild it with this "
        "service's diesel.h", q, DIESEL_MODULE_VERSION);
    err(&c, line, want);
    /* A shared object that is no module. */
    fmt(p, sizeof(p), "%s/swap_shim.so", t_dir());
    fmt(q, sizeof(q), "%s/plain.so", base);
    copy(p, q, 0644);
    fmt(line, sizeof(line), "load %s", q);
    fmt(want, sizeof(want), "load: %s exports no diesel_module: define "
        "it with DIESEL_MODULE (see diesel_console(3))", q);
    err(&c, line, want);
    /* Not a shared object at all: dlopen's own word. */
    fmt(q, sizeof(q), "%s/text.so", base);
    copy("/etc/hostname", q, 0644);
    fmt(line, sizeof(line), "load %s", q);
    ck_assert_int_eq(run(&c, line), 1);
    ck_assert_msg(strncmp(reply, "ERR load: ", 10) == 0, "%s", reply);
    /* Its init fails: what it registered is gone, nothing is loaded. */
    fmt(line, sizeof(line), "load %s fail", mod);
    err(&c, line, "load: module modtest's init failed: told to fail");
    err(&c, "modhello", "unknown command \"modhello\" (try help)");
    ok(&c, "modules", "no module loaded");
    fmt(line, sizeof(line), "load %s", mod);
    ok(&c, line, "loaded module modtest");
    dcc_close(&c);
    app_down();
}
END_TEST

/* unload while one of the module's commands runs (parked) in another
 * session: refused, and the command comes back whole. */
START_TEST(unload_refuses_a_busy_module)
{
    struct dcc c, d;
    char line[PATH_MAX + 64];

    app_up(NULL);
    attach(&c);
    fmt(line, sizeof(line), "load %s", mod);
    ok(&c, line, "loaded module modtest");
    ck_assert_int_eq(dcc_send(&c, "modnap 1500\n", 12), 0);
    attach(&d);
    err(&d, "unload modtest", "unload: module modtest is busy: one of its "
        "commands is running; try again once it has returned");
    ck_assert_int_eq(dcc_reply(&c, reply, sizeof(reply), T(10000)), 0);
    ck_assert_str_eq(reply, "| napped\nOK\n");
    ok(&d, "unload modtest", "unloaded module modtest");
    dcc_close(&d);
    dcc_close(&c);
    app_down();
}
END_TEST

START_TEST(crash_in_a_module_command_names_the_module)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 128];
    int st;

    app_up(NULL);
    attach(&c);
    fmt(line, sizeof(line), "load %s", mod);
    ok(&c, line, "loaded module modtest");
    ck_assert_int_eq(dcc_send(&c, "modcrash\n", 9), 0);
    fmt(want, sizeof(want), ", running a command of module 'modtest' "
        "(%s)", mod);
    logged(want);
    logged("fatal signal SIGSEGV");
    dcc_close(&c);
    st = t_proc_wait(&app, 10000);
#ifdef DIESEL__ASAN
    /* The fault is handed on to ASan's handler, which reports and exits. */
    ck_assert_msg(strstr(app.ebuf, "AddressSanitizer: SEGV") != NULL,
        "status %#x: %s", st, app.ebuf);
#else
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "status %#x",
        st);
#endif
    t_console_dir_remove(rdv, &app);
    rm_rf(base);
}
END_TEST

/* A session whose peer is not known, or is another user: refused.  Run
 * in-process, where the session's peer can be set. */
static void
untrusted(long uid, const char *line, const char *want)
{
    struct diesel_console_out out;
    char buf[256];
    int quit;

    diesel__console_init();
    diesel__console_out_init(&out);
    out.peer_uid = uid;
    fmt(buf, sizeof(buf), "%s", line);
    ck_assert_int_eq(diesel__console_execute(&out, buf, strlen(buf), &quit),
        -1);
    ck_assert_msg(strcmp(out.err, want) == 0, "%s: [%s], wanted [%s]",
        line, out.err, want);
    diesel__console_out_fini(&out);
}

START_TEST(load_sym_and_peek_refuse_a_peer_not_known_or_foreign)
{
    untrusted(-1, "load /x.so", "load: refused: this session's peer is not "
        "known (only an attach, the program's terminal or a pipe may load)");
    untrusted(-1, "unload x", "unload: refused: this session's peer is not "
        "known (only an attach, the program's terminal or a pipe may "
        "unload)");
    untrusted(-1, "peek 1000 8", "peek: refused: this session's peer is not "
        "known (only an attach, the program's terminal or a pipe may "
        "peek)");
    untrusted(-1, "sym main", "sym: refused: this session's peer is not "
        "known (only an attach, the program's terminal or a pipe may sym)");
}
END_TEST

START_TEST(load_refuses_a_peer_of_another_uid)
{
    char want[256];
    long other = geteuid() == 12345 ? 12346 : 12345;

    fmt(want, sizeof(want), "load: refused: this session's peer (uid "
        "%ld) is neither root nor this service's user (uid %u)", other,
        (unsigned)geteuid());
    untrusted(other, "load /x.so", want);
    fmt(want, sizeof(want), "peek: refused: this session's peer (uid "
        "%ld) is neither root nor this service's user (uid %u)", other,
        (unsigned)geteuid());
    untrusted(other, "peek 1000 8", want);
}
END_TEST

/* ---- sym and peek -------------------------------------------------------- */

/* The address in a sym --json reply. */
static unsigned long long
sym_addr(struct dcc *c, const char *name)
{
    char line[128];
    const char *p;

    fmt(line, sizeof(line), "sym %s --json", name);
    ok(c, line, "\"address\":\"0x");
    p = strstr(reply, "\"address\":\"0x") + strlen("\"address\":\"0x");
    return strtoull(p, NULL, 16);
}

START_TEST(sym_of_a_known_global_matches_its_value)
{
    struct dcc c;
    char line[128], want[256];
    unsigned long long a;

    app_up(NULL);
    attach(&c);
    /* answer: a static int64_t of the child, 42. */
    ok(&c, "sym answer", "  8 bytes  variable, static  ");
    ck_assert_msg(strstr(reply, "  2a 00 00 00 00 00 00 00  ") != NULL,
        "%s", reply);
    ck_assert_msg(strstr(reply, "*.......\n") != NULL, "%s", reply);
    ok(&c, "set answer 4660", NULL);
    ok(&c, "sym answer --json", "\"size\":8,\"kind\":\"variable\","
        "\"global\":false");
    ck_assert_msg(strstr(reply, "\"bytes\":\"3412000000000000\"") != NULL,
        "%s", reply);
    /* name: char[16] "diesel", the ASCII column shows it. */
    ok(&c, "sym name", "diesel..........\n");
    /* LEN, and the same bytes through peek at its address. */
    a = sym_addr(&c, "answer");
    fmt(line, sizeof(line), "peek %llx 2", a);
    fmt(want, sizeof(want), "  34 12 ");
    ok(&c, line, want);
    fmt(line, sizeof(line), "peek 0x%llx 8 --json", a);
    fmt(want, sizeof(want), "{\"address\":\"0x%llx\",\"length\":8,"
        "\"bytes\":\"3412000000000000\"}", a);
    ok(&c, line, want);
    ok(&c, "sym answer 2 --json", "\"bytes\":\"3412\"");
    /* A function: main, global. */
    ok(&c, "sym main", "function, global");
    err(&c, "sym no_such_symbol_here", "sym: no symbol no_such_symbol_here "
        "in the executable or its loaded objects");
    err(&c, "sym answer 0", "sym: LEN must be a number of bytes from 1 to "
        "4096");
    err(&c, "sym answer 4097", "sym: LEN must be a number of bytes from 1 "
        "to 4096");
    err(&c, "sym", "usage: sym [--json] NAME [LEN]");
    dcc_close(&c);
    app_down();
}
END_TEST

/* The end of a mapping of pid whose next page is not mapped. */
static unsigned long long
mapping_end(pid_t pid)
{
    char path[64], l[512];
    unsigned long long lo, hi, prev_hi = 0, found = 0;
    FILE *f;

    fmt(path, sizeof(path), "/proc/%ld/maps", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(l, sizeof(l), f) != NULL && found == 0) {
        if (sscanf(l, "%llx-%llx", &lo, &hi) != 2)
            continue;
        if (prev_hi != 0 && lo > prev_hi && strstr(l, "[vsyscall]") == NULL)
            found = prev_hi;
        /* Only readable mappings count as the one before the gap. */
        prev_hi = strchr(l, ' ') != NULL && strchr(l, ' ')[1] == 'r' ? hi :
            0;
    }
    fclose(f);
    return found;
}

START_TEST(peek_of_an_unmapped_address_is_an_error_and_the_service_lives)
{
    struct dcc c;
    char line[128], want[256];
    unsigned long long end;

    app_up(NULL);
    attach(&c);
    err(&c, "peek 0x10 16", "peek: 16 bytes at 0x10 are not readable (not "
        "mapped, or not readable): Bad address");
    err(&c, "peek 0 1", "peek: 1 bytes at 0x0 are not readable (not "
        "mapped, or not readable): Bad address");
    err(&c, "peek ffffffffffffffff 16", "peek: 0xffffffffffffffff + 16 "
        "passes the end of the address space");
    end = mapping_end(app.pid);
    if (end != 0) {
        fmt(line, sizeof(line), "peek %llx 16", end - 8);
        fmt(want, sizeof(want), "peek: only 8 of the 16 bytes at "
            "0x%llx are readable (the next page is not mapped, or not "
            "readable)", end - 8);
        err(&c, line, want);
    }
    err(&c, "peek zz 4", "peek: bad address zz (hexadecimal, 0x optional)");
    err(&c, "peek 0x 4", "peek: bad address 0x (hexadecimal, 0x optional)");
    err(&c, "peek 1000 0", "peek: LEN must be a number of bytes from 1 to "
        "4096");
    err(&c, "peek 1000 4097", "peek: LEN must be a number of bytes from 1 "
        "to 4096");
    err(&c, "peek 1000", "usage: peek [--json] ADDR LEN");
    /* Alive and well. */
    ok(&c, "echo still here", "| still here\n");
    ok(&c, "pid", NULL);
    dcc_close(&c);
    app_down();
}
END_TEST

/* ---- The example module: conns in a real redisping ----------------------- */

static int
unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    fmt(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
        "connect %s: %s", path, strerror(errno));
    return fd;
}

START_TEST(redisping_conns_module_lists_real_clients)
{
    struct dcc c;
    char sock[PATH_MAX], path[PATH_MAX], line[PATH_MAX + 64], buf[64],
        so[PATH_MAX];
    char *argv[] = { "redisping", sock, NULL };
    struct t_proc_how how = { T_PROC_PIPE, NULL, NULL };
    int a, b;
    ssize_t n;
    size_t got = 0;

    t_console_dir_make(rdv, "conns");
    base_make();
    fmt(sock, sizeof(sock), "%s/redis.sock", rdv);
    fmt(path, sizeof(path), "%s/../examples/redisping_conns.so",
        t_dir());
    fmt(so, sizeof(so), "%s/redisping_conns.so", base);
    copy(path, so, 0644);
    fmt(path, sizeof(path), "%s/../examples/redisping", t_dir());
    t_proc_start(&app, path, argv, &how);
    ck_assert_msg(t_proc_expect(&app, 0, "PID ", 10000), "%s", app.ebuf);
    a = unix_connect(sock);
    b = unix_connect(sock);
    /* a: two whole commands; b: half of one, left in its buffer. */
    ck_assert_int_eq(write(a, "PING\r\nPING\r\n", 12), 12);
    while (got < 14 && (n = read(a, buf + got, sizeof(buf) - got)) > 0)
        got += (size_t)n;
    ck_assert_int_eq(got, 14);
    ck_assert_int_eq(write(b, "SET k", 5), 5);
    attach(&c);
    err(&c, "conns", "unknown command \"conns\" (try help)");
    fmt(line, sizeof(line), "load %s", so);
    ok(&c, line, "| loaded module conns from ");
    /* b's bytes arrive when they do: ask until they are in. */
    for (int64_t end = t_now_ms() + T(5000); ; ) {
        ok(&c, "conns --json", NULL);
        if (strstr(reply, "\"commands\":0,\"in\":5,\"out\":0}") != NULL ||
            t_now_ms() > end)
            break;
        usleep(20000);
    }
    ck_assert_msg(strstr(reply, "\"commands\":2,\"in\":0,\"out\":0},") !=
        NULL, "%s", reply);
    ck_assert_msg(strstr(reply, "\"commands\":0,\"in\":5,\"out\":0}]") !=
        NULL, "%s", reply);
    ok(&c, "conns", "| PEER ");
    ck_assert_msg(strstr(reply, "| 2 clients\n") != NULL, "%s", reply);
    close(a);
    close(b);
    for (int64_t end = t_now_ms() + T(5000); ; ) {
        ok(&c, "conns", NULL);
        if (strstr(reply, "| 0 clients\n") != NULL || t_now_ms() > end)
            break;
        usleep(20000);
    }
    ck_assert_msg(strstr(reply, "| 0 clients\n") != NULL, "%s", reply);
    /* Into a service that is not redisping: its init says so. */
    ok(&c, "unload conns", "unloaded module conns: 1 command and 0 "
        "variables removed");
    err(&c, "conns", "unknown command \"conns\" (try help)");
    dcc_close(&c);
    kill(app.pid, SIGTERM);
    ck_assert_int_eq(t_proc_wait(&app, 30000), 0);
    t_console_dir_remove(rdv, &app);
    rm_rf(base);
}
END_TEST

START_TEST(redisping_conns_module_refuses_another_service)
{
    struct dcc c;
    char path[PATH_MAX], so[PATH_MAX], line[PATH_MAX + 64];

    app_up(NULL);
    fmt(path, sizeof(path), "%s/../examples/redisping_conns.so",
        t_dir());
    fmt(so, sizeof(so), "%s/conns.so", base);
    copy(path, so, 0644);
    attach(&c);
    fmt(line, sizeof(line), "load %s", so);
    err(&c, line, "load: module conns's init failed: conns: no rp_clients "
        "in this service: it is not redisping (or it was stripped)");
    fmt(line, sizeof(line), "load %s extra", so);
    err(&c, line, "load: module conns's init failed: conns: takes no "
        "arguments");
    dcc_close(&c);
    app_down();
}
END_TEST

/* A file the loader refuses (not ELF): the message names the path the
 * operator typed, not the /proc/self/fd/N/NAME it was loaded through. */
START_TEST(load_error_names_the_path_typed)
{
    struct dcc c;
    char line[PATH_MAX + 64], want[PATH_MAX + 256], f[PATH_MAX];
    FILE *fp;

    app_up(NULL);
    attach(&c);
    fmt(f, sizeof(f), "%s/passwd", base);
    fp = fopen(f, "w");
    ck_assert_ptr_nonnull(fp);
    for (int i = 0; i < 8; i++)
        fputs("root:x:0:0:root:/root:/bin/sh\n", fp);
    ck_assert_int_eq(fclose(fp), 0);
    ck_assert_int_eq(chmod(f, 0644), 0);
    fmt(line, sizeof(line), "load %s", f);
    ck_assert_int_eq(run(&c, line), 1);
    fmt(want, sizeof(want), "ERR load: %s: ", f);
    ck_assert_msg(strncmp(reply, want, strlen(want)) == 0, "[%s], wanted "
        "[%s...]", reply, want);
    ck_assert_msg(strstr(reply, "ELF") != NULL, "%s", reply);
    ck_assert_msg(strstr(reply, "/proc/self/fd") == NULL, "%s", reply);
    fmt(want, sizeof(want), "refused (peer pid %ld, uid %u): %s: ",
        (long)getpid(), (unsigned)geteuid(), f);
    logged(want);
    ck_assert_msg(strstr(app.ebuf, "/proc/self/fd") == NULL, "%s",
        app.ebuf);
    ok(&c, "modules", "no module loaded");
    dcc_close(&c);
    app_down();
}
END_TEST

Suite *
diesel_module_suite(void)
{
    Suite *s = suite_create("module");
    TCase *tc = tcase_create("module");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, load_runs_a_module_and_unload_removes_it);
    tcase_add_test(tc, load_refuses_unsafe_paths);
    tcase_add_test(tc, load_refuses_a_symlink_swapped_under_it);
    tcase_add_test(tc, load_refuses_a_foreign_version_and_a_failed_init);
    tcase_add_test(tc, unload_refuses_a_busy_module);
    tcase_add_test(tc, crash_in_a_module_command_names_the_module);
    tcase_add_test(tc, load_sym_and_peek_refuse_a_peer_not_known_or_foreign);
    tcase_add_test(tc, load_refuses_a_peer_of_another_uid);
    tcase_add_test(tc, sym_of_a_known_global_matches_its_value);
    tcase_add_test(tc,
        peek_of_an_unmapped_address_is_an_error_and_the_service_lives);
    tcase_add_test(tc, redisping_conns_module_lists_real_clients);
    tcase_add_test(tc, redisping_conns_module_refuses_another_service);
    tcase_add_test(tc, load_error_names_the_path_typed);
    suite_add_tcase(s, tc);
    return s;
}
