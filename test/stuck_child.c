/*
 * stuck_child.c: a service whose loop gets stuck, for check_stuck.c.
 *
 *   stuck_child MODE [MS [STUCK_AFTER_MS]]
 *     spin     a green thread named spinner computes for MS without
 *              yielding (in stuck_spin)
 *     read     a green thread named reader sits in a plain blocking
 *              read(2) on a pipe (in stuck_read) that another OS thread
 *              writes to after MS
 *     thread   as spin, but the loop's OS thread blocks the console signal
 *              and a second OS thread does not, so that the kernel
 *              delivers the request there; the spinner lets the signal in
 *              once the library has handed it over (pthread_kill)
 *     hostile  as spin, but the spinner and a sleeping green thread
 *              have the name of test/hostile.h
 *     mainspin the main green thread (which the library spawned: no
 *              spawn site) computes for MS without yielding, beside 40
 *              sleeping green threads named sleeper
 *     idle     nothing holds the loop
 *     hold     nothing holds the loop until a session runs the console
 *              command `hold`, which spins in the session's green thread
 *              (in stuck_spin) for MS, or until let go, then replies
 *              "held"
 *     hold2    as hold, with a second loop, worker, that turns (with
 *              napper, as in mainstuck)
 *              Both also have `nap`, which parks the session's green
 *              thread for MS (the loop turns), then replies "napped"
 *     loop2    the console's loop (main) is idle; a second loop, named
 *              worker, on an OS thread of its own, is held by a green
 *              thread named reader in stuck_read until the main loop
 *              ends (MS is not used)
 *     mainstuck    two loops: the console's (main) held by reader in
 *              stuck_read as in read mode; worker turns, with a green
 *              thread napper that sleeps (it prints "napper ID" once it
 *              runs, "napper cancelled" when it is cancelled)
 *     allstuck     as mainstuck, and worker is held too, by a green thread
 *              named wreader in stuck_read on a pipe of its own (released
 *              with main's)
 *     allstuckmask as allstuck, but worker's OS thread blocks the console
 *              signal
 *     forkstuck    as mainstuck, but once worker runs, main forks: the
 *              child (one thread, one loop) installs the console afresh,
 *              prints "forked PID" and "holding", and holds its loop in
 *              stuck_read until the parent reads a line on its standard
 *              input, then exits
 *   STUCK_AFTER_MS: diesel_console_stuck_after() (default: not called)
 *
 * It prints "ready PID" once the loop runs, "holding" when the loop is
 * about to be held, "released" once it has turned again, and runs until
 * its standard input reaches EOF; anything written to its standard input
 * ends the hold before MS is up.  It logs to standard error.  The functions a
 * backtrace should show have default visibility (and the Makefile links
 * the child with -rdynamic).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diesel.h"
#include "hostile.h"

#define VISIBLE __attribute__((visibility("default"), noinline))

/* The console signal: SIGTRAP, the default, unless STUCK_CHILD_SIGNAL
 * names another (check_stuck.c does under valgrind: see t_console_signo
 * in test/proc.h). */
static int console_sig = SIGTRAP;
static const char *mode = "idle";
static int64_t hold_ms = 3000;
static int pipefd[2] = { -1, -1 };
static int pipe2fd[2] = { -1, -1 };  /* allstuck: the worker's */
static int stopfd[2] = { -1, -1 };   /* mainstuck, allstuck: ends worker */
static int forkfd[2] = { -1, -1 };   /* forkstuck: releases the child */
static int napping;                  /* napper runs */
static volatile uint64_t sink;

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
say(const char *what)
{
    printf("%s\n", what);
    fflush(stdout);
}

/* The test lets go early by writing to our standard input (or closing
 * it): the hold ends within ms, or at once when ms is 0. */
static int
let_go(int ms)
{
    struct pollfd p = { 0, POLLIN, 0 };

    return poll(&p, 1, ms) > 0;
}

/* In thread mode: the console signal was handed to this OS thread. */
static int
handed_over(void)
{
    sigset_t set;

    return sigpending(&set) == 0 && sigismember(&set, console_sig);
}

VISIBLE void
stuck_spin(int64_t ms, int unblock_when_handed)
{
    int64_t until = now_ms() + ms;
    uint64_t x = 88172645463325252ull;

    while (now_ms() < until && !let_go(0)) {
        for (int i = 0; i < 100000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        sink = x;
        if (unblock_when_handed && handed_over()) {
            sigset_t set;

            sigemptyset(&set);
            sigaddset(&set, console_sig);
            /* The handler runs here, on the loop's thread. */
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
            unblock_when_handed = 0;
        }
    }
}

VISIBLE ssize_t
stuck_read(int fd, char *buf, size_t n)
{
    ssize_t r = read(fd, buf, n);   /* line: read */

    /* Not a tail call: this frame stays in the backtrace.  Atomic: two
     * loops' threads may be here at once (allstuck). */
    __atomic_add_fetch(&sink, 1, __ATOMIC_RELAXED);
    return r;
}

static int
sleeper(void *arg)
{
    (void)arg;
    return diesel_sleep(3600 * 1000);
}

static int
spinner(void *arg)
{
    (void)arg;
    say("holding");
    stuck_spin(hold_ms, strcmp(mode, "thread") == 0); /* line: spin */
    /* Let the loop turn before saying so: a request that follows
     * "released" must find a fresh turn. */
    diesel_sleep(1);
    say("released");
    return 0;
}

static int
reader(void *arg)
{
    char c;
    ssize_t r;

    (void)arg;
    say("holding");
    r = stuck_read(pipefd[0], &c, 1);  /* line: stuck_read */
    diesel_sleep(1);    /* as in spinner */
    say(r == 1 ? "released" : "read failed");
    return 0;
}

static void *
writer(void *arg)
{
    int64_t until = now_ms() + hold_ms;

    (void)arg;
    while (now_ms() < until && !let_go(10))
        ;
    if (write(pipefd[1], "x", 1) != 1)
        perror("write");
    if (pipe2fd[1] >= 0 && write(pipe2fd[1], "x", 1) != 1)
        perror("write");
    return NULL;
}

/* allstuck or allstuckmask. */
static int
all_stuck(void)
{
    return strncmp(mode, "allstuck", 8) == 0;
}

/* mainstuck, allstuck: the worker loop's green threads. */
static int
wreader(void *arg)
{
    char c;
    ssize_t r;

    (void)arg;
    say("worker holding");
    r = stuck_read(pipe2fd[0], &c, 1);  /* line: worker stuck_read */
    diesel_sleep(1);
    say(r == 1 ? "worker released" : "worker read failed");
    return 0;
}

static int
napper(void *arg)
{
    char line[64];

    (void)arg;
    snprintf(line, sizeof(line), "napper %lld",
        (long long)diesel_task_self());
    say(line);
    __atomic_store_n(&napping, 1, __ATOMIC_RELEASE);
    if (diesel_sleep(3600 * 1000) != 0 && errno == ECANCELED)
        say("napper cancelled");
    return 0;
}

/* hold, hold2: the command that holds the session's loop. */
static int
cmd_hold(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    say("holding");
    stuck_spin(hold_ms, 0);
    say("released");
    diesel_console_printf(out, "held\n");
    return 0;
}

static int
cmd_nap(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    if (diesel_sleep(hold_ms) != 0)
        return diesel_console_error(out, "nap: %s", strerror(errno));
    diesel_console_printf(out, "napped\n");
    return 0;
}

static int
stopper(void *arg)
{
    (void)arg;
    diesel_fd_wait(stopfd[0], DIESEL_READ, -1);
    diesel_loop_stop(0);
    return 0;
}

static int
worker2_main(void *arg)
{
    (void)arg;
    if (diesel_loop_name("worker") != 0)
        perror("diesel_loop_name");
    diesel_task_spawn("stopper", stopper, NULL, 0);
    if (all_stuck())
        diesel_task_spawn("wreader", wreader, NULL, 0);
    else
        diesel_task_spawn("napper", napper, NULL, 0);
    return 0;
}

static void *
worker2_thread(void *arg)
{
    (void)arg;
    if (strcmp(mode, "allstuckmask") == 0) {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, console_sig);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    return (void *)(intptr_t)diesel_loop_run(worker2_main, NULL);
}

/* loop2: the second loop's first green thread, and its thread. */
static pthread_t worker;
static int worker_started;

static int
worker_main(void *arg)
{
    (void)arg;
    if (diesel_loop_name("worker") != 0)
        perror("diesel_loop_name");
    diesel_task_spawn("reader", reader, NULL, 0);
    return 0;
}

static void *
worker_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)diesel_loop_run(worker_main, NULL);
}

static void *
bystander(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static pid_t child;                  /* forkstuck */

static int
app_main(void *arg)
{
    char buf[256];

    (void)arg;
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    if (strcmp(mode, "spin") == 0 || strcmp(mode, "thread") == 0) {
        diesel_task_spawn("spinner", spinner, NULL, 0);
    } else if (strcmp(mode, "hostile") == 0) {
        /* Names a service may take from its clients: the report and its
         * table must keep their framing. */
        diesel_task_spawn(T_HOSTILE_NAME, sleeper, NULL, 0);
        diesel_task_spawn(T_HOSTILE_NAME, spinner, NULL, 0);
    } else if (strcmp(mode, "mainspin") == 0) {
        for (int i = 0; i < 40; i++)
            diesel_task_spawn("sleeper", sleeper, NULL, 0);
        diesel_task_yield();         /* they all park */
        say("holding");
        stuck_spin(hold_ms, 0);
        say("released");
    } else if (strcmp(mode, "loop2") == 0) {
        /* Started from the main loop, which is thus the first: main. */
        if (pipe(pipefd) != 0 ||
            pthread_create(&worker, NULL, worker_thread, NULL) != 0)
            return 1;
        worker_started = 1;
    } else if (strcmp(mode, "forkstuck") == 0) {
        char c;

        if (pthread_create(&worker, NULL, worker2_thread, NULL) != 0)
            return 1;
        worker_started = 1;
        while (!__atomic_load_n(&napping, __ATOMIC_ACQUIRE))
            diesel_sleep(10);
        fflush(stdout);
        if ((child = fork()) < 0)
            return 1;
        if (child == 0) {
            /* Its own console, advertised under its own pid. */
            if (diesel_console_uninstall() != 0 ||
                diesel_console_install(console_sig) != 0) {
                perror("console in the child");
                _exit(1);
            }
            ssize_t r;

            printf("forked %ld\n", (long)getpid());
            say("holding");
            /* Valgrind may end the read with EINTR at the signal. */
            while ((r = stuck_read(forkfd[0], &c, 1)) < 0 && errno == EINTR)
                ;
            if (r != 1)
                perror("child read");
            _exit(r == 1 ? 0 : 1);
        }
    } else if (strcmp(mode, "hold2") == 0) {
        if (pthread_create(&worker, NULL, worker2_thread, NULL) != 0)
            return 1;
        worker_started = 1;
    } else if (strcmp(mode, "mainstuck") == 0 || all_stuck()) {
        pthread_t t;

        /* Started from the main loop, which is thus the first: main. */
        if (pthread_create(&worker, NULL, worker2_thread, NULL) != 0)
            return 1;
        worker_started = 1;
        if (pthread_create(&t, NULL, writer, NULL) != 0)
            return 1;
        pthread_detach(t);
        diesel_task_spawn("reader", reader, NULL, 0);
    } else if (strcmp(mode, "read") == 0) {
        pthread_t t;

        if (pipe(pipefd) != 0 || pthread_create(&t, NULL, writer, NULL) != 0)
            return 1;
        pthread_detach(t);
        diesel_task_spawn("reader", reader, NULL, 0);
    }
    /* Until the test closes our standard input. */
    for (;;) {
        ssize_t n;

        if (diesel_fd_wait(0, DIESEL_READ, -1) < 0)
            break;
        n = read(0, buf, sizeof(buf));
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        if (n > 0 && child > 0 && write(forkfd[1], "x", 1) != 1)
            perror("write");
    }
    if (child > 0) {
        int st;

        pid_t w;

        while ((w = waitpid(child, &st, 0)) < 0 && errno == EINTR)
            ;
        if (w != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "the forked child: waitpid %ld, status %#x\n",
                (long)w, w == child ? st : 0);
            return 1;
        }
    }
    diesel_loop_stop(0);
    return 0;
}

int
main(int argc, char **argv)
{
    if (getenv("STUCK_CHILD_SIGNAL") != NULL)
        console_sig = atoi(getenv("STUCK_CHILD_SIGNAL"));
    if (argc > 1)
        mode = argv[1];
    if (argc > 2)
        hold_ms = atoll(argv[2]);
    if (argc > 3 && diesel_console_stuck_after(atoll(argv[3])) != 0) {
        perror("diesel_console_stuck_after");
        return 1;
    }
    if (diesel_console_install(console_sig) != 0) {
        perror("diesel_console_install");
        return 1;
    }
    if (strncmp(mode, "hold", 4) == 0 &&
        (diesel_console_command("hold", "hold: spin in this session's green "
            "thread (stuck_child)", cmd_hold, NULL) != 0 ||
        diesel_console_command("nap", "nap: park this session's green "
            "thread (stuck_child)", cmd_nap, NULL) != 0)) {
        perror("diesel_console_command");
        return 1;
    }
    if (strcmp(mode, "mainstuck") == 0 || strcmp(mode, "forkstuck") == 0 ||
        strcmp(mode, "hold2") == 0 || all_stuck()) {
        void *st;
        int rc;

        if (pipe(pipefd) != 0 || pipe(stopfd) != 0 || pipe(forkfd) != 0 ||
            (all_stuck() && pipe(pipe2fd) != 0))
            return 1;
        rc = diesel_loop_run(app_main, NULL);
        if (!worker_started || write(stopfd[1], "x", 1) != 1 ||
            pthread_join(worker, &st) != 0 || st != NULL)
            return 1;
        return rc == 0 ? 0 : 1;
    }
    if (strcmp(mode, "loop2") == 0) {
        void *st;
        int rc;

        rc = diesel_loop_run(app_main, NULL);
        /* The worker's reader lets go, and its loop ends. */
        if (!worker_started || write(pipefd[1], "x", 1) != 1 ||
            pthread_join(worker, &st) != 0 || st != NULL)
            return 1;
        return rc == 0 ? 0 : 1;
    }
    if (strcmp(mode, "thread") == 0) {
        pthread_t t;
        sigset_t set;

        /* The other thread is made first, so that it keeps the signal
         * unblocked; then this one (the loop's) blocks it. */
        if (pthread_create(&t, NULL, bystander, NULL) != 0)
            return 1;
        pthread_detach(t);
        sigemptyset(&set);
        sigaddset(&set, console_sig);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    return diesel_loop_run(app_main, NULL) == 0 ? 0 : 1;
}
