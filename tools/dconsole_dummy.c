/*
 * dconsole_dummy.c: `dconsole dummy`, the seed's demo service.
 *
 *   $ dconsole dummy
 *   PID 28908
 *   [2013/03/20 04:26:38] {diesel} WARNING:Starting diesel <hand-rolled epoll>
 *   [2013/03/20 04:26:38] {dummy} INFO:sleeping
 *   [2013/03/20 04:26:43] {dummy} INFO:sleeping
 *
 * It installs the console, logs "sleeping" every `interval` seconds, and
 * gives the operator something to look at: commands of its own (greet,
 * nap, count, hog, spin, busy, deadlock) and a variable (interval).
 * `busy 30` starts a green thread named worker that computes in slices of
 * about 0.1 ms and yields between them: it leads `top` and `profile`.
 * `spin 10` starts a green thread named spinner that computes for 10 s
 * without yielding: meanwhile `dconsole PID` prints the loop's STUCK
 * report and exits 8.  `deadlock` has two green threads take two locks in
 * opposite order, for `sync` to show.
 * The functions that hold the loop are exported (and dconsole is linked
 * with -rdynamic) so that the report's backtrace names them.
 *
 * SIGINT and SIGTERM stop it cleanly: a green thread, stopper, waits for
 * them (diesel_signal_wait) and stops the loop.  Cancelled from the
 * console, it gives them back their default action, so that Ctrl-C and
 * kill still stop the dummy, if less cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diesel.h"
#include "dconsole.h"

static int64_t interval = 5;        /* seconds between "sleeping" lines */

/* Waits for SIGINT or SIGTERM, then stops the loop. */
static int
stopper(void *arg)
{
    int stop[] = { SIGINT, SIGTERM }, sig;

    (void)arg;
    /* The handlers are in before the PID is out: whoever signals the
     * PID finds them.  A first wait that never blocks installs them. */
    sig = diesel_signal_wait(stop, 2, 0);
    printf("PID %ld\n", (long)getpid());
    fflush(stdout);
    if (sig < 0)
        sig = diesel_signal_wait(stop, 2, -1);
    if (sig < 0)
        return 0;   /* cancelled: the signals have their defaults again */
    diesel_log("dummy", DIESEL_LOG_INFO, "%s: stopping",
        sig == SIGINT ? "SIGINT" : "SIGTERM");
    diesel_loop_stop(0);
    return 0;
}

/* Logs "sleeping" every interval seconds. */
static int
sleeper(void *arg)
{
    (void)arg;
    for (;;) {
        diesel_log("dummy", DIESEL_LOG_INFO, "sleeping");
        /* set keeps interval within 1 to 86400 (its range, below):
         * a new value counts once the sleep under way is over. */
        if (diesel_sleep(interval * 1000) != 0)
            return 0;
    }
}

/* A green thread that naps for a while, for tasks and stacks to show. */
static int
napper(void *arg)
{
    int64_t ms = (int64_t)(intptr_t)arg;

    diesel_sleep(ms);
    return 0;
}

static int
parse_count(struct diesel_console_out *out, const char *s, long max,
    long *n)
{
    char *end;

    errno = 0;
    *n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *n < 1 || *n > max) {
        diesel_console_error(out, "%s: not a number from 1 to %ld", s, max);
        return -1;
    }
    return 0;
}

static int
cmd_greet(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    if (argc > 2) {
        diesel_console_error(out, "usage: greet [NAME]");
        return -1;
    }
    diesel_console_printf(out, "Hello, %s! This is the dummy, PID %ld.",
        argc == 2 ? argv[1] : "operator", (long)getpid());
    diesel_log("dummy", DIESEL_LOG_INFO, "greeted %s",
        argc == 2 ? argv[1] : "the operator");
    return 0;
}

static int
cmd_nap(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long n = 1, secs = 60;

    (void)arg;
    if (argc > 3) {
        diesel_console_error(out, "usage: nap [COUNT [SECONDS]]");
        return -1;
    }
    if (argc >= 2 && parse_count(out, argv[1], 100000, &n) != 0)
        return -1;
    if (argc >= 3 && parse_count(out, argv[2], 86400, &secs) != 0)
        return -1;
    for (long i = 0; i < n; i++) {
        if (diesel_task_spawn("napper", napper,
            (void *)(intptr_t)(secs * 1000), 0) < 0) {
            diesel_console_error(out, "spawned %ld of %ld: %s", i, n,
                strerror(errno));
            return -1;
        }
    }
    diesel_console_printf(out, "%ld green thread%s napping for %ld s", n,
        n == 1 ? "" : "s", secs);
    return 0;
}

static int
cmd_count(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long n;

    (void)arg;
    if (argc != 2) {
        diesel_console_error(out, "usage: count N");
        return -1;
    }
    if (parse_count(out, argv[1], 10000000, &n) != 0)
        return -1;
    for (long i = 1; i <= n; i++)
        diesel_console_printf(out, "%ld\n", i);
    return 0;
}

/* Seen by the stuck report's backtrace_symbols_fd(3). */
#define VISIBLE __attribute__((visibility("default"), noinline))

int dc_dummy_hog(void *arg) VISIBLE;
int dc_dummy_spin(void *arg) VISIBLE;
int dc_dummy_busy(void *arg) VISIBLE;

/* A green thread that holds the loop without yielding. */
int
dc_dummy_hog(void *arg)
{
    int64_t until = diesel_now() + (int64_t)(intptr_t)arg;

    diesel_log("dummy", DIESEL_LOG_WARNING, "hogging the loop");
    while (diesel_now() < until)
        ;
    diesel_log("dummy", DIESEL_LOG_WARNING, "done hogging the loop");
    return 0;
}

static int
cmd_hog(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long secs;

    (void)arg;
    if (argc != 2) {
        diesel_console_error(out, "usage: hog SECONDS");
        return -1;
    }
    if (parse_count(out, argv[1], 3600, &secs) != 0)
        return -1;
    if (diesel_task_spawn("hog", dc_dummy_hog, (void *)(intptr_t)(secs * 1000),
        0) < 0) {
        diesel_console_error(out, "%s", strerror(errno));
        return -1;
    }
    diesel_console_printf(out, "the loop will be stuck for %ld s", secs);
    return 0;
}

/* The stuck loop's demo: computes without yielding until the time is up
 * (the clock is read every million rounds, not more). */
static volatile uint64_t spin_sink;

int
dc_dummy_spin(void *arg)
{
    int64_t until = diesel_now() + (int64_t)(intptr_t)arg;
    uint64_t x = 88172645463325252ull;

    diesel_log("dummy", DIESEL_LOG_WARNING, "spinning: the loop is stuck");
    do {
        for (int i = 0; i < 1000000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        spin_sink = x;
    } while (diesel_now() < until);
    diesel_log("dummy", DIESEL_LOG_WARNING, "done spinning");
    return 0;
}

static int
cmd_spin(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long secs;

    (void)arg;
    if (argc != 2) {
        diesel_console_error(out, "usage: spin SECONDS");
        return -1;
    }
    if (parse_count(out, argv[1], 3600, &secs) != 0)
        return -1;
    if (diesel_task_spawn("spinner", dc_dummy_spin,
        (void *)(intptr_t)(secs * 1000), 0) < 0) {
        diesel_console_error(out, "%s", strerror(errno));
        return -1;
    }
    diesel_console_printf(out, "a green thread named spinner will hold the "
        "loop for %ld s: `dconsole %ld` meanwhile shows who", secs,
        (long)getpid());
    return 0;
}

/* The busy demo: computes in slices (thirty thousand rounds, about 0.1
 * ms), yielding between them, until the time is up.  A lone ready green
 * thread reaches the loop every 128 yields (diesel_task_yield(3)): short
 * slices keep the console quick meanwhile. */
int
dc_dummy_busy(void *arg)
{
    int64_t until = diesel_now() + (int64_t)(intptr_t)arg;
    uint64_t x = 88172645463325252ull;

    do {
        for (int i = 0; i < 30000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        spin_sink = x;
        if (diesel_task_yield() != 0)
            break;               /* cancelled */
    } while (diesel_now() < until);
    return 0;
}

/* `deadlock`: left takes alpha then beta, right beta then alpha. */
static struct diesel_lock *alpha, *beta;
static int deadlockers;             /* left and right still running */

static int
deadlocker(void *arg)
{
    struct diesel_lock *first = arg == NULL ? alpha : beta;
    struct diesel_lock *second = arg == NULL ? beta : alpha;

    if (diesel_lock_acquire(first, -1) == 0) {
        /* Let the other take its first lock: now each waits for the
         * other's, for ever (or until cancelled from the console). */
        diesel_task_yield();
        if (diesel_lock_acquire(second, -1) == 0)
            diesel_lock_release(second);
        diesel_lock_release(first);
    }
    deadlockers--;
    return 0;
}

static int
cmd_busy(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long secs;

    (void)arg;
    if (argc != 2) {
        diesel_console_error(out, "usage: busy SECONDS");
        return -1;
    }
    if (parse_count(out, argv[1], 3600, &secs) != 0)
        return -1;
    if (diesel_task_spawn("worker", dc_dummy_busy,
        (void *)(intptr_t)(secs * 1000), 0) < 0) {
        diesel_console_error(out, "%s", strerror(errno));
        return -1;
    }
    diesel_console_printf(out, "a green thread named worker computes for "
        "%ld s in slices, yielding between them: `top` shows it", secs);
    return 0;
}

static int
cmd_deadlock(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    (void)arg;
    (void)argv;
    if (argc > 1)
        return diesel_console_error(out, "usage: deadlock");
    if (deadlockers > 0)
        return diesel_console_error(out, "left and right are still "
            "running: cancel them first");
    if ((alpha == NULL && (alpha = diesel_lock_create("alpha")) == NULL) ||
        (beta == NULL && (beta = diesel_lock_create("beta")) == NULL))
        return diesel_console_error(out, "cannot create the locks: %s",
            strerror(errno));
    if (diesel_task_spawn("left", deadlocker, NULL, 0) < 0)
        return diesel_console_error(out, "cannot spawn: %s",
            strerror(errno));
    deadlockers++;
    if (diesel_task_spawn("right", deadlocker, &beta, 0) < 0)
        return diesel_console_error(out, "cannot spawn: %s",
            strerror(errno));
    deadlockers++;
    diesel_console_printf(out, "left takes alpha then beta, right beta "
        "then alpha: see sync");
    return 0;
}

static int
dummy_main(void *arg)
{
    int signo = *(int *)arg;

    if (diesel_console_install(signo) != 0) {
        diesel_log("dummy", DIESEL_LOG_CRITICAL,
            "cannot install the console: %s", strerror(errno));
        return 1;
    }
    /* Help as the built-ins write it: "name ARGS: what it does". */
    diesel_console_command("greet", "greet [NAME]: say hello (and log it)",
        cmd_greet, NULL);
    diesel_console_command("nap", "nap [COUNT [SECONDS]]: start green "
        "threads that sleep (1, 60 s), for tasks and stacks to show",
        cmd_nap, NULL);
    diesel_console_command("count", "count N: print the numbers 1 to N, a "
        "long reply", cmd_count, NULL);
    diesel_console_command("hog", "hog SECONDS: a green thread holds the "
        "loop without yielding, as a bug would", cmd_hog, NULL);
    diesel_console_command("spin", "spin SECONDS: a green thread named "
        "spinner computes without yielding (the stuck loop's demo)",
        cmd_spin, NULL);
    diesel_console_command("busy", "busy SECONDS: a green thread named "
        "worker computes in slices and yields between them (leads top)",
        cmd_busy, NULL);
    diesel_console_command("deadlock", "deadlock: green threads left and "
        "right take locks alpha and beta in opposite order and wait for "
        "each other (sync shows the cycle)", cmd_deadlock, NULL);
    diesel_console_var_int_range("interval", &interval, 1, 86400);
    if (diesel_task_spawn("stopper", stopper, NULL, 0) < 0 ||
        diesel_task_spawn("sleeper", sleeper, NULL, 0) < 0) {
        diesel_log("dummy", DIESEL_LOG_CRITICAL, "cannot spawn: %s",
            strerror(errno));
        diesel_loop_stop(1);
        return 1;
    }
    return 0;
}

int
dc_dummy_main(int signo)
{
    int st = diesel_loop_run(dummy_main, &signo);
    diesel_console_uninstall();
    return st < 0 ? 1 : st;
}
