/*
 * bench_console.c: what the console costs.
 *
 *   bench_console [N_BIG [walks]]   (N_BIG: default 100000; walks: only
 *                                    the walks, below)
 *
 * A service process (this program, forked) runs a loop with the console
 * installed, a "ticker" green thread that sleeps 1 ms at a time and
 * records the longest gap between two of its turns (the loop's longest
 * stall), and as many sleeping green threads as asked.  The parent
 * attaches the way dconsole does (test/console_client.c) and measures:
 *
 *   - attach latency: from the signal to the greeting, median and 90th
 *     percentile over 100 attaches;
 *   - the walks over every green thread (stacks, tasks, their --json
 *     forms, mem, top over half a second: its two walks) with 10,000 and N_BIG sleeping green threads: each
 *     reply's time, the loop's longest stall meanwhile (the ticker's
 *     longest gap) and how many times the ticker ran, against the peer
 *     of the same ticker's longest gap while the service is idle;
 *   - the loop's system calls per iteration, idle but for the ticker,
 *     with the console installed and without (strace -c on the service).
 *
 * Figures are printed, never asserted.
 */
#include <errno.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diesel.h"
#include "../console_client.h"

static int64_t max_gap_us;      /* the ticker's longest gap, in the service */
static int64_t ticks;
#define TURNS 8192              /* the ticker's last turns (8 s at 1 ms) */
static int64_t turn_us[TURNS];  /* when each ran, CLOCK_MONOTONIC (the
                                   parent's clock too) */
static int64_t nturns;

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
ticker(void *arg)
{
    int64_t last = now_us();

    (void)arg;
    while (diesel_sleep(1) == 0) {
        int64_t t = now_us();
        ticks++;
        turn_us[nturns++ % TURNS] = t;
        if (t - last > max_gap_us)
            max_gap_us = t - last;
        last = t;
    }
    return 0;
}

static int
sleeper(void *arg)
{
    (void)arg;
    return diesel_sleep(-1);
}

/* `gap`: the longest stall since the last `gap`, in microseconds, and the
 * ticker's turns since then (both reset). */
static int
cmd_gap(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    diesel_console_printf(out, "%lld %lld\n", (long long)max_gap_us,
        (long long)ticks);
    max_gap_us = 0;
    ticks = 0;
    return 0;
}

/* `turns T0 T1`: how many times the ticker ran between T0 and T1 (us). */
static int
cmd_turns(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long long t0, t1, n = 0;

    (void)arg;
    if (argc != 3)
        return diesel_console_error(out, "usage: turns T0 T1");
    t0 = atoll(argv[1]);
    t1 = atoll(argv[2]);
    for (int64_t i = nturns > TURNS ? nturns - TURNS : 0; i < nturns; i++)
        n += turn_us[i % TURNS] > t0 && turn_us[i % TURNS] < t1;
    diesel_console_printf(out, "%lld\n", n);
    return 0;
}

static int
service_main(void *arg)
{
    int stop[] = { SIGTERM };
    long sleepers = (long)(intptr_t)arg;

    /* In slices, so that the loop turns (and answers an attach) while
     * 100,000 are spawned; a failure is said, not left to an empty
     * table. */
    for (long i = 0; i < sleepers; i++) {
        if (diesel_task_spawn("sleeper", sleeper, NULL, 16 * 1024) < 0) {
            fprintf(stderr, "bench_console: spawned %ld of %ld sleepers: "
                "%s\n", i, sleepers, strerror(errno));
            break;
        }
        if (i % 1000 == 999)
            diesel_task_yield();
    }
    diesel_task_spawn("ticker", ticker, NULL, 0);
    diesel_signal_wait(stop, 1, -1);
    return diesel_loop_stop(0);
}

static pid_t
service(int console, long sleepers)
{
    pid_t pid = fork();

    if (pid == 0) {
        diesel_log_level_set(NULL, DIESEL_LOG_ERROR);
        if (console) {
            diesel_console_install(0);
            diesel_console_command("gap", "gap: longest stall, us",
                cmd_gap, NULL);
            diesel_console_command("turns", "turns T0 T1: the ticker's "
                "turns between T0 and T1, us", cmd_turns, NULL);
        }
        _exit(diesel_loop_run(service_main, (void *)(intptr_t)sleepers));
    }
    usleep(200000 + (useconds_t)sleepers * 5);
    return pid;
}

static int
cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/*
 * The walks over every green thread, in one service with total sleepers:
 * each command's reply time (the client's, send to OK), the loop's
 * longest stall meanwhile (the ticker's longest gap, reset by `gap` just
 * before the command and read by `gap` once the session has parked
 * again), and how many times the ticker ran while the reply was awaited
 * (`turns`).  The peer: the same ticker's longest gap over an idle half
 * second of the same service, which is what this machine's noise alone
 * gives.
 */
static void
walks_over(long total)
{
    static const char *cmds[] = { "stacks", "stacks --json", "tasks",
        "tasks --json", "mem", "top 0.5", "top 0.5 --json" };
    static char reply[64 << 20];
    pid_t pid = service(1, total);
    struct dcc c;
    char gap[256] = "", line[64];
    long long idle_us = -1, g, t;

    if (dcc_attach(&c, pid, geteuid(), 0, 30000) != 0) {
        printf("  attach failed: %s\n", strerror(errno));
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return;
    }
    /* Let the spawning settle, then the idle peer. */
    usleep(200000);
    if (dcc_command(&c, "gap", gap, sizeof(gap), 30000) == 0) {
        usleep(500000);
        if (dcc_command(&c, "gap", gap, sizeof(gap), 30000) == 0 &&
            sscanf(gap, "| %lld", &idle_us) != 1)
            idle_us = -1;
    }
    if (idle_us < 0) {
        printf("  %ld green threads: the service did not answer `gap`: %s\n",
            total, gap);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return;
    }
    printf("  %ld green threads (and the ticker); idle peer: longest "
        "ticker gap over 0.5 s %.1f ms\n", total, idle_us / 1000.0);
    printf("    %-14s %10s %14s %12s %11s %12s\n", "command", "total ms",
        "longest stall", "stall/total", "ticker ran", "reply bytes");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int64_t t0, t1;
        int st;

        if (dcc_command(&c, "gap", gap, sizeof(gap), 30000) != 0)
            break;
        t0 = now_us();
        st = dcc_command(&c, cmds[i], reply, sizeof(reply), 120000);
        t1 = now_us();
        if (st < 0) {
            printf("    %-14s failed\n", cmds[i]);
            break;
        }
        /* Let the session park and the loop turn, so that the ticker
         * records the stall before `gap` reads it. */
        usleep(20000);
        if (dcc_command(&c, "gap", gap, sizeof(gap), 30000) != 0 ||
            sscanf(gap, "| %lld", &g) != 1)
            g = -1;
        snprintf(line, sizeof(line), "turns %lld %lld", (long long)t0,
            (long long)t1);
        if (dcc_command(&c, line, gap, sizeof(gap), 30000) != 0 ||
            sscanf(gap, "| %lld", &t) != 1)
            t = -1;
        printf("    %-14s %10.1f %11.1f ms %12.2f %11lld %12zu%s\n",
            cmds[i], (t1 - t0) / 1000.0, g / 1000.0,
            t1 > t0 ? (double)g / (double)(t1 - t0) : 0.0, t,
            strlen(reply), st == 1 ? " (ERR: over the reply limit)" : "");
    }
    dcc_close(&c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* System calls per loop iteration, from strace -c on the service. */
static void
loop_cost(int console)
{
    char cmd[512], out[4096];
    pid_t pid = service(console, 0);
    FILE *f;
    long calls = -1, waits = -1;

    snprintf(cmd, sizeof(cmd), "timeout -s INT 2 strace -c -f -p %d 2>&1",
        (int)pid);
    f = popen(cmd, "r");
    if (f != NULL) {
        while (fgets(out, sizeof(out), f) != NULL) {
            char name[64];
            long n;
            if (sscanf(out, "%*f %*f %*d %ld %*d %63s", &n, name) == 2 ||
                sscanf(out, "%*f %*f %*d %ld %63s", &n, name) == 2) {
                if (strcmp(name, "total") == 0)
                    calls = n;
                else if (strcmp(name, "epoll_wait") == 0 ||
                    strcmp(name, "poll") == 0)
                    waits = n;
            }
        }
        pclose(f);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (calls < 0 || waits <= 0)
        printf("  console %-3s  (strace unavailable)\n", console ? "on" :
            "off");
    else
        printf("  console %-3s  %ld system calls in %ld loop iterations: "
            "%.3f per iteration\n", console ? "on" : "off", calls, waits,
            (double)calls / waits);
}

int
main(int argc, char **argv)
{
    long big = argc > 1 ? atol(argv[1]) : 100000;
    int walks_only = argc > 2 && strcmp(argv[2], "walks") == 0;
    int64_t lat[100];
    pid_t pid;

    diesel_log_level_set(NULL, DIESEL_LOG_ERROR);
    printf("== bench_console: attach latency, walks over green threads, "
        "loop cost\n");
    printf("method: a forked service with the console installed and a 1 ms "
        "ticker; attaches as dconsole does (test/console_client.c)\n");
    if (!walks_only) {
        pid = service(1, 0);
        for (int i = 0; i < 100; i++) {
            struct dcc c;
            int64_t t0 = now_us();
            if (dcc_attach(&c, pid, geteuid(), 0, 10000) != 0) {
                printf("  attach %d failed: %s\n", i, strerror(errno));
                lat[i] = -1;
                continue;
            }
            lat[i] = now_us() - t0;
            dcc_close(&c);
        }
        qsort(lat, 100, sizeof(lat[0]), cmp64);
        printf("  attach latency (signal to greeting), 100 attaches: median "
            "%.2f ms, 90th %.2f ms, max %.2f ms (goal: under 5 ms)\n",
            lat[50] / 1000.0, lat[90] / 1000.0, lat[99] / 1000.0);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    printf("walks over every green thread (stacks, tasks, mem): the "
        "reply's time and the loop's longest stall meanwhile\n");
    walks_over(10000);
    walks_over(big);
    printf("  (goal: longest stall under 50 ms; stall/total near 1 means "
        "the loop was held the whole time)\n");
    if (walks_only)
        return 0;
    printf("loop cost, idle but for a 1 ms ticker, strace -c for 2 s:\n");
    loop_cost(0);
    loop_cost(1);
    printf("  (goal: no system call added by the console)\n");
    return 0;
}
