/*
 * helpers.c: see tests.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"

int
t_run(diesel_task_fn fn, void *arg)
{
    return diesel_loop_run(fn, arg);
}

int64_t
t_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
t_count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    }
    return n;
}

const char *
t_dir(void)
{
    const char *d = getenv("DIESEL_TEST_DIR");

    return d != NULL ? d : "test";
}

int
t_spawn_capture(char *const argv[], char *buf, size_t size, int timeout_ms)
{
    char path[512];
    int p[2], status;
    size_t n = 0;
    pid_t pid;
    int64_t end = t_now_ms() + timeout_ms;

    snprintf(path, sizeof(path), "%s/%s", t_dir(), argv[0]);
    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pf = { p[0], POLLIN, 0 };
        int64_t left = end - t_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        r = read(p[0], buf + n, n + 1 < size ? size - n - 1 : 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(p[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

static int cap_pipe[2] = { -1, -1 };
static int cap_saved_fd = 2;
static char cap_buf[65536];

void
t_log_capture_start(void)
{
    cap_saved_fd = diesel__log_fd();
    if (pipe(cap_pipe) != 0)
        abort();
    fcntl(cap_pipe[0], F_SETFL, O_NONBLOCK);
    diesel_log_fd_set(cap_pipe[1]);
}

const char *
t_log_capture_end(void)
{
    size_t n = 0;
    ssize_t r;

    diesel_log_fd_set(cap_saved_fd);
    close(cap_pipe[1]);
    while (n < sizeof(cap_buf) - 1 &&
        (r = read(cap_pipe[0], cap_buf + n, sizeof(cap_buf) - 1 - n)) > 0)
        n += (size_t)r;
    cap_buf[n] = '\0';
    close(cap_pipe[0]);
    cap_pipe[0] = cap_pipe[1] = -1;
    return cap_buf;
}

int
t_source_line(const char *file, const char *name)
{
    const char *base = strrchr(file, '/');
    char path[512], marker[128], buf[4096];
    int line = 0, found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", t_dir(), base ? base + 1 : file);
    snprintf(marker, sizeof(marker), "/* line: %s */", name);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    for (int n = 1; fgets(buf, sizeof(buf), f) != NULL; n++) {
        if (strstr(buf, marker) != NULL) {
            line = n;
            found++;
        }
    }
    fclose(f);
    ck_assert_msg(found == 1, "%s: %d lines carry %s", path, found, marker);
    return line;
}
