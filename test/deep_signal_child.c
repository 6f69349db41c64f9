/*
 * deep_signal_child.c: a signal arrives while a green thread is a few
 * hundred bytes from the end of its stack (TESTPLAN 20; see deep_stack.h),
 * for check_signal.c and check_hog.c.  A child, so that a crash is the
 * test's verdict rather than the end of the test runner.
 *
 *   deep_signal_child wait   the first green thread waits for SIGUSR1 and
 *       SIGUSR2 with diesel_signal_wait; the green thread 'deep' goes down
 *       and, from there, sends SIGUSR1 with kill(2), then SIGUSR2 with
 *       pthread_kill(3); either is handled before the call returns.
 *   deep_signal_child hog    hog warnings at 100 ms; 'deep' goes down and
 *       spins there until the warning (the watchdog's signal, handled on
 *       the loop's thread) is in the log.
 *   deep_signal_child own    the program's own handler for SIGUSR1, without
 *       SA_ONSTACK; 'deep' sends it from down there, where its frame does
 *       not fit: a stack overflow, which the library must report as such
 *       and abort on (it says "own handler ran" and exits 1 if not).
 *
 * It writes what happened to standard error, one fact a line:
 *   room N min M      bytes of stack left down there, and the least a
 *                     signal frame takes (sysconf(_SC_MINSIGSTKSZ))
 *   got SIGUSR1       diesel_signal_wait returned it (wait)
 *   warned            the hog warning was logged (hog)
 *   deep returned D   'deep' came back up D frames, each intact
 * and exits 0 if all of that happened; the library logs to standard error
 * too (hog: through a pipe that a second OS thread copies there).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diesel.h"
#include "deep_stack.h"

static long depth = -1;
static int logpipe[2] = { -1, -1 };
static volatile int warned;
static volatile sig_atomic_t own_ran;

/* deep_fn for wait. */
static __attribute__((noinline)) void
send_both(void)
{
    deep_room = DEEP_LEFT();
    kill(getpid(), SIGUSR1);
    pthread_kill(pthread_self(), SIGUSR2);
}

/* deep_fn for own. */
static __attribute__((noinline)) void
send_own(void)
{
    deep_room = DEEP_LEFT();
    kill(getpid(), SIGUSR1);
}

static void
own_handler(int sig)
{
    (void)sig;
    own_ran = 1;
}

static int
deep_main(void *arg)
{
    depth = deep_run((deep_fn)(uintptr_t)arg);
    fprintf(stderr, "room %zu min %ld\n", (size_t)deep_room,
        deep_min_frame());
    if (depth < 0)
        return 1;
    fprintf(stderr, "deep returned %ld\n", depth);
    return 0;
}

static int
spawn_deep(deep_fn fn, int64_t *id)
{
    *id = diesel_task_spawn("deep", deep_main, (void *)(uintptr_t)fn,
        DEEP_STACK);
    if (*id < 0) {
        perror("diesel_task_spawn");
        return -1;
    }
    return 0;
}

static int
join_deep(int64_t id)
{
    int st = -1;

    if (diesel_task_join(id, &st, 30000) != 0) {
        perror("diesel_task_join");
        return 1;
    }
    return st;
}

static int
wait_main(void *arg)
{
    int sigs[] = { SIGUSR1, SIGUSR2 }, got = 0;
    int64_t id;

    (void)arg;
    /* Bind kill and pthread_kill now: the first call through the PLT
     * runs the dynamic linker's resolver, which saves the vector
     * registers on the stack (a kilobyte or more) and would overflow
     * down there by itself. */
    kill(getpid(), 0);
    pthread_kill(pthread_self(), 0);
    if (spawn_deep(send_both, &id) != 0)
        return 1;
    /* The first wait installs the handlers, then parks: 'deep' runs. */
    for (int i = 0; i < 2; i++) {
        int sig = diesel_signal_wait(sigs, 2, 10000);

        if (sig < 0) {
            fprintf(stderr, "diesel_signal_wait: %s\n", strerror(errno));
            break;
        }
        fprintf(stderr, "got %s\n", sig == SIGUSR1 ? "SIGUSR1" :
            sig == SIGUSR2 ? "SIGUSR2" : "another signal");
        got |= sig == SIGUSR1 ? 1 : sig == SIGUSR2 ? 2 : 4;
    }
    return join_deep(id) != 0 || got != 3;
}

static int
own_main(void *arg)
{
    struct sigaction sa;
    int64_t id;

    (void)arg;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = own_handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 1;
    kill(getpid(), 0);      /* bound now: see wait_main */
    if (spawn_deep(send_own, &id) != 0)
        return 1;
    join_deep(id);
    fprintf(stderr, "own handler %s\n", own_ran ? "ran" : "did not run");
    return 1;
}

/* hog: copy the log to standard error; release 'deep' once the warning is
 * there (or after 20 s, so that a lost signal fails rather than hangs). */
static void *
log_copier(void *arg)
{
    char buf[4096], seen[8192] = "";
    size_t nseen = 0;
    time_t give_up = time(NULL) + 20;
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        struct pollfd p = { logpipe[0], POLLIN, 0 };
        ssize_t n;

        if (poll(&p, 1, 100) == 1) {
            n = read(logpipe[0], buf, sizeof(buf));
            if (n <= 0)
                break;
            (void)!write(2, buf, (size_t)n);
            if (nseen + (size_t)n >= sizeof(seen))
                nseen = 0;
            memcpy(seen + nseen, buf, (size_t)n);
            nseen += (size_t)n;
            seen[nseen] = '\0';
            if (strstr(seen, "has held the loop for") != NULL) {
                warned = 1;
                deep_release = 1;
            }
        }
        if (time(NULL) > give_up)
            deep_release = 1;
    }
    return NULL;
}

static int
hog_main(void *arg)
{
    int64_t id;
    int st;

    (void)arg;
    if (diesel_loop_hog_warn(100) != 0) {
        perror("diesel_loop_hog_warn");
        return 1;
    }
    if (spawn_deep(deep_spin, &id) != 0)
        return 1;
    st = join_deep(id);
    if (warned)
        fprintf(stderr, "warned\n");
    return st != 0 || !warned;
}

int
main(int argc, char **argv)
{
    pthread_t copier;
    int st;

    if (argc != 2)
        return 2;
    if (strcmp(argv[1], "wait") == 0)
        return diesel_loop_run(wait_main, NULL) == 0 ? 0 : 1;
    if (strcmp(argv[1], "own") == 0)
        return diesel_loop_run(own_main, NULL) == 0 ? 0 : 1;
    if (strcmp(argv[1], "hog") != 0)
        return 2;
    if (pipe(logpipe) != 0 ||
        pthread_create(&copier, NULL, log_copier, NULL) != 0)
        return 1;
    diesel_log_fd_set(logpipe[1]);
    st = diesel_loop_run(hog_main, NULL);
    diesel_log_fd_set(2);
    close(logpipe[1]);
    pthread_join(copier, NULL);
    return st == 0 ? 0 : 1;
}
