/*
 * check_deps.c: test/deps.sh, which make check and .ci/run run first.
 *
 * The script is run for real with the list of what to look for in
 * DIESEL_DEPS (names that exist nowhere, so nothing real is missing or
 * installed), and a fake apt-get (and sudo) first on PATH that records
 * how it was called and "installs" by creating the missing command.  The
 * path where it cannot install is run as `nobody` without sudo, as a
 * user on a fresh machine would be; those tests need root to become
 * nobody (CI runs as root) and are skipped otherwise, and under valgrind
 * (a process that becomes nobody cannot make valgrind's FIFOs).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"

static char fake[64];           /* the fake tools' directory */
static const char *deps_env;    /* DIESEL_DEPS for the script */
static int no_install;          /* DIESEL_DEPS_NO_INSTALL=1 */
static int as_nobody;
static uid_t nobody_uid;
static gid_t nobody_gid;

/* The fake apt-get: logs its arguments; "install" creates each missing
 * command named diesel-fake-*, unless $fake/fail exists. */
static const char apt_get[] =
    "#!/bin/sh\n"
    "d=$(dirname \"$0\")\n"
    "echo \"$(id -u) $*\" >> \"$d/log\"\n"
    "[ \"$1\" = install ] || exit 0\n"
    "[ -e \"$d/fail\" ] && exit 100\n"
    "printf '#!/bin/sh\\n' > \"$d/diesel-fake-tool\"\n"
    "chmod 755 \"$d/diesel-fake-tool\"\n";

/* The fake sudo that needs no password: runs its command. */
static const char sudo[] =
    "#!/bin/sh\n"
    "[ \"$1\" = -n ] && shift\n"
    "echo \"sudo $*\" >> \"$(dirname \"$0\")/log\"\n"
    "exec \"$@\"\n";

static void
write_file(const char *name, const char *text, mode_t mode)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", fake, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

/* What the fake tools logged ("" when nothing: they were not run). */
static const char *
fake_log(void)
{
    static char buf[4096];
    char path[128];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/log", fake);
    buf[0] = '\0';
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

static void
setup(void)
{
    strcpy(fake, "/tmp/diesel-deps.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(fake));
    chmod(fake, 0755);
    write_file("apt-get", apt_get, 0755);
    no_install = as_nobody = 0;
}

static void
teardown(void)
{
    const char *names[] = { "apt-get", "sudo", "log", "fail",
        "diesel-fake-tool" };
    char path[128];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fake, names[i]);
        unlink(path);
    }
    rmdir(fake);
}

static int
have_nobody(void)
{
    struct passwd *pw = getpwnam("nobody");

    if (geteuid() != 0 || pw == NULL || t_under_valgrind())
        return 0;
    nobody_uid = pw->pw_uid;
    nobody_gid = pw->pw_gid;
    return 1;
}

static void
in_child(void)
{
    char path[4096];

    /* The fake tools first; no real sudo or apt-get is ever reached when
     * a fake one exists, and the real list is replaced. */
    snprintf(path, sizeof(path), "%s:/usr/bin:/bin", fake);
    setenv("PATH", path, 1);
    setenv("DIESEL_DEPS", deps_env, 1);
    if (no_install)
        setenv("DIESEL_DEPS_NO_INSTALL", "1", 1);
    else
        unsetenv("DIESEL_DEPS_NO_INSTALL");
    if (as_nobody && (setgroups(0, NULL) != 0 ||
        setgid(nobody_gid) != 0 || setuid(nobody_uid) != 0))
        _exit(126);
}

/* Run test/deps.sh check with the settings above: its exit code. */
static int
run_deps(struct t_proc *p)
{
    char script[4096];
    char *argv[] = { "sh", script, "check", NULL };
    struct t_proc_how how = { -1, NULL, in_child };
    int st;

    snprintf(script, sizeof(script), "%s/deps.sh", t_dir());
    t_proc_start(p, "/bin/sh", argv, &how);
    st = t_proc_wait(p, 30000);
    ck_assert_msg(st != -1, "deps.sh did not end; stderr: %s", p->ebuf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Everything there: silent, exit 0, nothing installed. */
START_TEST(deps_all_present_is_silent)
{
    struct t_proc *p = malloc(sizeof(*p));

    deps_env = "cmd:sh:dash hdr:stdio.h:libc6-dev cmd:apt-get:apt";
    ck_assert_int_eq(run_deps(p), 0);
    ck_assert_str_eq(p->obuf, "");
    ck_assert_str_eq(p->ebuf, "");
    ck_assert_str_eq(fake_log(), "");
    free(p);
}
END_TEST

/* A user who is not root and has no sudo: before anything is built,
 * what is missing and the one command that installs it (each package
 * once), exit 1, and apt-get never run. */
START_TEST(deps_missing_without_root_or_sudo_names_apt_get_install)
{
    struct t_proc *p = malloc(sizeof(*p));

    if (!have_nobody()) {
        free(p);
        return;
    }
    as_nobody = 1;
    deps_env = "cmd:diesel-fake-tool:diesel-fake-a "
        "hdr:diesel_fake.h:diesel-fake-b cmd:diesel-fake-2:diesel-fake-a "
        "cmd:sh:dash";
    ck_assert_int_eq(run_deps(p), 1);
    ck_assert_str_eq(p->ebuf,
        "test/deps.sh: the tests need what is missing here:\n"
        "  the command diesel-fake-tool (Debian package diesel-fake-a)\n"
        "  the header <diesel_fake.h> (Debian package diesel-fake-b)\n"
        "  the command diesel-fake-2 (Debian package diesel-fake-a)\n"
        "Install it with:\n"
        "  sudo apt-get install diesel-fake-a diesel-fake-b\n");
    ck_assert_str_eq(p->obuf, "");
    ck_assert_str_eq(fake_log(), "");
    free(p);
}
END_TEST

/* Root: apt-get update and install, then the probe again, exit 0. */
START_TEST(deps_root_installs_what_is_missing)
{
    struct t_proc *p = malloc(sizeof(*p));

    if (geteuid() != 0) {
        free(p);
        return;
    }
    deps_env = "cmd:diesel-fake-tool:diesel-fake-pkg cmd:sh:dash";
    ck_assert_int_eq(run_deps(p), 0);
    ck_assert_str_eq(fake_log(), "0 update -q\n"
        "0 install -y -q --no-install-recommends diesel-fake-pkg\n");
    ck_assert_ptr_nonnull(strstr(p->obuf, "test/deps.sh: installing what "
        "the tests need: diesel-fake-pkg\n"));
    free(p);
}
END_TEST

/* Not root, but sudo without a password: installed through sudo. */
START_TEST(deps_sudo_without_password_installs_what_is_missing)
{
    struct t_proc *p = malloc(sizeof(*p));
    char log[256];

    if (!have_nobody()) {
        free(p);
        return;
    }
    write_file("sudo", sudo, 0755);
    ck_assert_int_eq(chown(fake, nobody_uid, nobody_gid), 0);
    as_nobody = 1;
    deps_env = "cmd:diesel-fake-tool:diesel-fake-pkg";
    ck_assert_int_eq(run_deps(p), 0);
    snprintf(log, sizeof(log), "sudo true\n"
        "sudo apt-get update -q\n%u update -q\n"
        "sudo apt-get install -y -q --no-install-recommends "
        "diesel-fake-pkg\n"
        "%u install -y -q --no-install-recommends diesel-fake-pkg\n",
        (unsigned)nobody_uid, (unsigned)nobody_uid);
    ck_assert_str_eq(fake_log(), log);
    free(p);
}
END_TEST

/* apt-get fails: it says so, and names the command, exit 1. */
START_TEST(deps_failed_install_names_apt_get_install)
{
    struct t_proc *p = malloc(sizeof(*p));

    if (geteuid() != 0) {
        free(p);
        return;
    }
    write_file("fail", "", 0644);
    deps_env = "cmd:diesel-fake-tool:diesel-fake-pkg";
    ck_assert_int_eq(run_deps(p), 1);
    ck_assert_ptr_nonnull(strstr(p->ebuf, "test/deps.sh: apt-get did not "
        "install all of it\n"));
    ck_assert_ptr_nonnull(strstr(p->ebuf, "\nInstall it with:\n"
        "  apt-get install diesel-fake-pkg\n"));
    free(p);
}
END_TEST

/* DIESEL_DEPS_NO_INSTALL=1: root too only gets the command. */
START_TEST(deps_no_install_only_names_the_command)
{
    struct t_proc *p = malloc(sizeof(*p));

    no_install = 1;
    deps_env = "cmd:diesel-fake-tool:diesel-fake-pkg";
    ck_assert_int_eq(run_deps(p), 1);
    ck_assert_ptr_nonnull(strstr(p->ebuf, "apt-get install "
        "diesel-fake-pkg\n"));
    ck_assert_str_eq(fake_log(), "");
    free(p);
}
END_TEST

Suite *
diesel_deps_suite(void)
{
    Suite *s = suite_create("deps");
    TCase *tc = tcase_create("deps");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, deps_all_present_is_silent);
    tcase_add_test(tc, deps_missing_without_root_or_sudo_names_apt_get_install);
    tcase_add_test(tc, deps_root_installs_what_is_missing);
    tcase_add_test(tc, deps_sudo_without_password_installs_what_is_missing);
    tcase_add_test(tc, deps_failed_install_names_apt_get_install);
    tcase_add_test(tc, deps_no_install_only_names_the_command);
    suite_add_tcase(s, tc);
    return s;
}
