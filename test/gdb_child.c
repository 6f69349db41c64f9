/*
 * gdb_child.c: a service whose green threads gdb looks at, for
 * check_gdb.c.
 *
 *   gdb_child park     green threads parked in every way: sleeper
 *                      (diesel_sleep), reader (a pipe, diesel_fd_wait),
 *                      waiter (an event named "go"), joiner (joins
 *                      sleeper), and main waiting on its standard input.  Prints "ready PID"
 *                      once they are all parked; exits at EOF on stdin.
 *   gdb_child threads  the park mode's loop, after a second OS thread
 *                      has started a loop of its own whose one green
 *                      thread (its main) sleeps in gdb_other.
 *   gdb_child crash    the park mode's green threads, then a green thread named crasher
 *                      writes to a PROT_NONE page (SIGSEGV) in
 *                      gdb_crash_here, while one named fresh was spawned
 *                      and has not run yet.
 *
 * Each parking call sits on a line marked for t_source_line.  The
 * functions have default visibility and are not inlined, so that a
 * backtrace names them with or without debug info (-rdynamic).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "diesel.h"

#define VISIBLE __attribute__((visibility("default"), noinline))

static int pipefd[2] = { -1, -1 };
static struct diesel_event *go;
static int64_t sleeper_id;
static volatile int *volatile nowhere;   /* a page no one may touch */

VISIBLE int
gdb_sleeper(void *arg)
{
    (void)arg;
    diesel_sleep(600000);   /* line: sleep */
    return 0;
}

VISIBLE int
gdb_reader(void *arg)
{
    (void)arg;
    diesel_fd_wait(pipefd[0], DIESEL_READ, -1);   /* line: fd */
    return 0;
}

VISIBLE int
gdb_waiter(void *arg)
{
    (void)arg;
    diesel_event_wait(go, -1);   /* line: event */
    return 0;
}

VISIBLE int
gdb_joiner(void *arg)
{
    (void)arg;
    diesel_task_join(sleeper_id, NULL, -1);   /* line: join */
    return 0;
}

VISIBLE int
gdb_fresh(void *arg)
{
    (void)arg;
    return 0;
}

VISIBLE void
gdb_crash_here(void)
{
    *nowhere = 1;   /* line: crash */
}

VISIBLE int
gdb_crasher(void *arg)
{
    (void)arg;
    gdb_crash_here();
    return 0;
}

static int started[2] = { -1, -1 };   /* the second loop runs */

VISIBLE int
gdb_other(void *arg)
{
    (void)arg;
    if (write(started[1], "x", 1) != 1)
        return 1;
    diesel_sleep(600000);   /* line: other */
    return 0;
}

static void *
other_thread(void *arg)
{
    (void)arg;
    diesel_loop_run(gdb_other, NULL);
    return NULL;
}

static int
service(void *arg)
{
    int crash = *(int *)arg;
    char buf[64];

    if (pipe(pipefd) != 0 || (go = diesel_event_create("go")) == NULL)
        return 1;
    sleeper_id = diesel_task_spawn("sleeper", gdb_sleeper, NULL, 0);
    diesel_task_spawn("reader", gdb_reader, NULL, 0);
    diesel_task_spawn("waiter", gdb_waiter, NULL, 0);
    diesel_task_spawn("joiner", gdb_joiner, NULL, 0);
    /* Every green thread spawned so far runs until it parks before main
     * runs again. */
    diesel_task_yield();
    if (crash) {
        /* A real fault, not a null pointer that UBSan would catch
         * first. */
        nowhere = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
            -1, 0);
        if (nowhere == MAP_FAILED)
            return 1;
        /* fresh never runs: crasher runs first. */
        diesel_task_spawn("crasher", gdb_crasher, NULL, 0);
        diesel_task_spawn("fresh", gdb_fresh, NULL, 0);
        diesel_task_yield();
        return 1;   /* not reached */
    }
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    for (;;) {
        ssize_t n;

        if (diesel_fd_wait(0, DIESEL_READ, -1) < 0)   /* line: stdin */
            break;
        n = read(0, buf, sizeof(buf));
        if (n <= 0)
            break;
    }
    diesel_loop_stop(0);
    return 0;
}

int
main(int argc, char **argv)
{
    int crash;

    if (argc != 2 || (strcmp(argv[1], "park") != 0 &&
        strcmp(argv[1], "crash") != 0 && strcmp(argv[1], "threads") != 0)) {
        fprintf(stderr, "usage: gdb_child park | threads | crash\n");
        return 2;
    }
    crash = strcmp(argv[1], "crash") == 0;
    if (strcmp(argv[1], "threads") == 0) {
        pthread_t th;
        char c;

        if (pipe(started) != 0 ||
            pthread_create(&th, NULL, other_thread, NULL) != 0 ||
            read(started[0], &c, 1) != 1)
            return 1;
    }
    return diesel_loop_run(service, &crash) == 0 ? 0 : 1;
}
