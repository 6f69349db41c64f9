/*
 * proc.c: running a program from a test (proc.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "proc.h"

int64_t
t_slow(int64_t ms)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    long k = m != NULL ? strtol(m, NULL, 10) : 1;

    return ms * (k > 1 ? k : 1);
}

int
t_console_signo(void)
{
    return t_under_valgrind() ? SIGUSR2 : SIGTRAP;
}

int
t_under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");

    return p != NULL && strstr(p, "valgrind") != NULL;
}

const char *
t_tool_path(const char *name)
{
    static char path[1024];
    const char *d = getenv("DIESEL_TOOLS_DIR");

    if (d != NULL)
        snprintf(path, sizeof(path), "%s/%s", d, name);
    else
        snprintf(path, sizeof(path), "%s/../tools/%s", t_dir(), name);
    return path;
}

void
t_proc_start(struct t_proc *p, const char *path, char *const argv[],
    const struct t_proc_how *how)
{
    static const struct t_proc_how plain = { -1, NULL, NULL };
    int i[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2];

    if (how == NULL)
        how = &plain;
    memset(p, 0, sizeof(*p));
    p->in = p->out = p->err = -1;
    if (how->stdin_fd == T_PROC_PIPE)
        ck_assert_int_eq(pipe(i), 0);
    if (how->pty_name == NULL)
        ck_assert_int_eq(pipe(o), 0);
    ck_assert_int_eq(pipe(e), 0);
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        if (how->pty_name != NULL) {
            int s;

            setsid();
            s = open(how->pty_name, O_RDWR);
            if (s < 0)
                _exit(125);
            dup2(s, 0);
            dup2(s, 1);
        } else {
            int in = how->stdin_fd == T_PROC_PIPE ? i[0] :
                how->stdin_fd >= 0 ? how->stdin_fd :
                open("/dev/null", O_RDONLY);

            dup2(in, 0);
            dup2(o[1], 1);
        }
        dup2(e[1], 2);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        if (how->in_child != NULL)
            how->in_child();
        execv(path, argv);
        _exit(127);
    }
    if (how->stdin_fd == T_PROC_PIPE) {
        close(i[0]);
        p->in = i[1];
    } else if (how->stdin_fd >= 0) {
        close(how->stdin_fd);
    }
    if (how->pty_name == NULL) {
        close(o[1]);
        p->out = o[0];
    }
    close(e[1]);
    p->err = e[0];
}

void
t_proc_pump(struct t_proc *p, int ms)
{
    struct pollfd pf[2];
    int n = 0;

    if (p->out >= 0) {
        pf[n].fd = p->out;
        pf[n++].events = POLLIN;
    }
    if (p->err >= 0) {
        pf[n].fd = p->err;
        pf[n++].events = POLLIN;
    }
    if (n == 0) {
        usleep((useconds_t)ms * 1000);
        return;
    }
    if (poll(pf, (nfds_t)n, ms) <= 0)
        return;
    for (int k = 0; k < n; k++) {
        int is_out = pf[k].fd == p->out;
        char *buf = is_out ? p->obuf : p->ebuf;
        size_t *len = is_out ? &p->on : &p->en;
        ssize_t r;

        if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        r = read(pf[k].fd, buf + *len, T_PROC_BUF - 1 - *len);
        if (r > 0) {
            *len += (size_t)r;
            buf[*len] = '\0';
        } else {
            close(pf[k].fd);
            if (is_out)
                p->out = -1;
            else
                p->err = -1;
        }
    }
}

int
t_proc_expect(struct t_proc *p, int err, const char *needle, int64_t ms)
{
    int64_t end = t_now_ms() + t_slow(ms);

    for (;;) {
        if (strstr(err ? p->ebuf : p->obuf, needle) != NULL)
            return 1;
        if (t_now_ms() >= end || (err ? p->err : p->out) < 0)
            return strstr(err ? p->ebuf : p->obuf, needle) != NULL;
        t_proc_pump(p, 20);
    }
}

int
t_proc_wait(struct t_proc *p, int64_t ms)
{
    int64_t end = t_now_ms() + t_slow(ms);
    int killed = 0;

    while (!p->reaped) {
        if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
            p->reaped = 1;
            break;
        }
        if (t_now_ms() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &p->status, 0);
            p->reaped = 1;
            killed = 1;
            break;
        }
        t_proc_pump(p, 10);
    }
    /* What it wrote before it ended (a grandchild may hold the pipes:
     * give up after a second). */
    for (int i = 0; i < 100 && (p->out >= 0 || p->err >= 0); i++)
        t_proc_pump(p, 10);
    if (p->out >= 0)
        close(p->out);
    if (p->err >= 0)
        close(p->err);
    if (p->in >= 0)
        close(p->in);
    p->out = p->err = p->in = -1;
    return killed ? -1 : p->status;
}

unsigned long long
t_proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: count from its last ')'. */
    p = strrchr(buf, ')');
    for (int field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %llu", &v) != 1)
        return 0;
    return v;
}

/* One line of /proc/PID/task/T/status, "Key:\tvalue", appended to out. */
static size_t
status_field(const char *status, const char *key, char *out, size_t n,
    size_t size)
{
    const char *p = strstr(status, key);
    size_t k;

    if (p == NULL || n >= size)
        return n;
    p += strlen(key);
    p += strspn(p, " \t");
    k = strcspn(p, "\n");
    n += (size_t)snprintf(out + n, size - n, " %s%.*s", key, (int)k, p);
    return n < size ? n : size - 1;
}

size_t
t_proc_threads(pid_t pid, char *out, size_t size)
{
    char path[128], buf[4096];
    struct dirent *e;
    size_t n = 0;
    DIR *d;

    if (size == 0)
        return 0;
    out[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    if ((d = opendir(path)) == NULL)
        return (size_t)snprintf(out, size, "(no %s)", path);
    while ((e = readdir(d)) != NULL && n < size - 1) {
        ssize_t r;
        int fd;

        if (e->d_name[0] == '.')
            continue;
        n += (size_t)snprintf(out + n, size - n, "%sthread %s:",
            n > 0 ? "\n" : "", e->d_name);
        n = n < size ? n : size - 1;
        snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/status",
            (long)pid, e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
            r = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            buf[r > 0 ? r : 0] = '\0';
            n = status_field(buf, "State:", out, n, size);
            n = status_field(buf, "SigPnd:", out, n, size);
            n = status_field(buf, "ShdPnd:", out, n, size);
            n = status_field(buf, "SigBlk:", out, n, size);
        }
        snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/wchan",
            (long)pid, e->d_name);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0 && n < size - 1) {
            r = read(fd, buf, sizeof(buf) - 1);
            close(fd);
            buf[r > 0 ? r : 0] = '\0';
            n += (size_t)snprintf(out + n, size - n, " wchan:%s", buf);
            n = n < size ? n : size - 1;
        }
    }
    closedir(d);
    return n;
}

static char *swap_asan_old;

void
t_swap_set(const char *dir, const char *to)
{
    char shim[1024], asan[1024];
    const char *old = getenv("ASAN_OPTIONS");

    snprintf(shim, sizeof(shim), "%s/swap_shim.so", t_dir());
    setenv("LD_PRELOAD", shim, 1);
    setenv("DIESEL_TEST_SWAP_DIR", dir, 1);
    setenv("DIESEL_TEST_SWAP_TO", to, 1);
    /* A gcc ASan build links its runtime dynamically, and it wants to be
     * first: the shim comes before it. */
    free(swap_asan_old);
    swap_asan_old = old != NULL ? strdup(old) : NULL;
    snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
        old != NULL ? old : "", old != NULL && old[0] != '\0' ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
}

void
t_swap_clear(void)
{
    unsetenv("LD_PRELOAD");
    unsetenv("DIESEL_TEST_SWAP_DIR");
    unsetenv("DIESEL_TEST_SWAP_TO");
    if (swap_asan_old != NULL)
        setenv("ASAN_OPTIONS", swap_asan_old, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(swap_asan_old);
    swap_asan_old = NULL;
}

void
t_console_dir_make(char *dir, const char *tag)
{
    snprintf(dir, 64, "/tmp/diesel-%s-XXXXXX", tag);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(chmod(dir, 0700), 0);
    setenv("DIESEL_CONSOLE_DIR", dir, 1);
}

void
t_console_dir_remove(const char *dir, struct t_proc *p)
{
    char cmd[128];

    if (p->pid > 0 && !p->reaped) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->reaped = 1;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    unsetenv("DIESEL_CONSOLE_DIR");
}
