/*
 * profile_child.c: a service to profile, for check_profile.c.
 *
 *   profile_child [MODE]
 *     spin      (default) a green thread named worker computes in slices
 *               in prof_spin and yields between them
 *     idle      nothing runs: the loop waits in poll
 *     handler   as spin, and the program handles SIGPROF itself
 *     ignore    as spin, and the program ignores SIGPROF
 *     block     as spin, and the loop's thread blocks SIGPROF
 *
 * It prints "ready PID" once the loop runs and serves the console until
 * its standard input reaches EOF.  Its console has `sigprof`, which says
 * what SIGPROF's disposition is now: default, ignored or handled (the
 * profiler must put it back as it found it).  prof_spin has default
 * visibility, and the Makefile links the child with -rdynamic.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diesel.h"

#define VISIBLE __attribute__((visibility("default"), noinline))

static const char *mode = "spin";
static volatile uint64_t sink;

VISIBLE void
prof_spin(void)
{
    uint64_t x = sink | 1;

    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    sink = x;
}

static int
worker(void *arg)
{
    (void)arg;
    for (;;) {
        prof_spin();        /* line: spin */
        if (diesel_task_yield() != 0)
            return 0;
    }
}

static void
on_prof(int sig)
{
    (void)sig;
}

static int
cmd_sigprof(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct sigaction sa;

    (void)argc;
    (void)argv;
    (void)arg;
    sigset_t set;

    if (sigaction(SIGPROF, NULL, &sa) != 0 || sigpending(&set) != 0)
        return -1;
    return diesel_console_printf(out, "%s%s\n",
        sa.sa_handler == SIG_DFL ? "default" :
        sa.sa_handler == SIG_IGN ? "ignored" : "handled",
        sigismember(&set, SIGPROF) ? ", pending" : "") < 0 ? -1 : 0;
}

static int
app_main(void *arg)
{
    char buf[256];

    (void)arg;
    if (strcmp(mode, "idle") != 0)
        diesel_task_spawn("worker", worker, NULL, 0);
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    for (;;) {
        ssize_t n;

        if (diesel_fd_wait(0, DIESEL_READ, -1) < 0)
            break;
        n = read(0, buf, sizeof(buf));
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
    diesel_loop_stop(0);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        mode = argv[1];
    if (strcmp(mode, "handler") == 0)
        signal(SIGPROF, on_prof);
    else if (strcmp(mode, "ignore") == 0)
        signal(SIGPROF, SIG_IGN);
    else if (strcmp(mode, "block") == 0) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, SIGPROF);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
    if (diesel_console_install(0) != 0 ||
        diesel_console_command("sigprof", "sigprof: SIGPROF's disposition",
        cmd_sigprof, NULL) != 0) {
        perror("diesel_console_install");
        return 1;
    }
    return diesel_loop_run(app_main, NULL) == 0 ? 0 : 1;
}
