/*
 * console_app_child.c: a service with the console installed, for
 * check_console.c.  It runs until its standard input reaches EOF (so it
 * never outlives the test that started it), logs to standard error, and
 * prints "ready PID" on standard output once the console is installed and
 * the loop runs.
 *
 *   console_app_child [-s SIGNO] [-S MS] [-n] [-t] [-d] [-y]
 *     -s SIGNO   the console signal (default: 0, SIGTRAP)
 *     -S MS      the console's stuck threshold (0: no stuck report)
 *     -n         do not install the console
 *     -t         once ready, hit a breakpoint (int3, brk) after 200 ms
 *     -d         deadlock: green threads left and right take locks a and
 *                b in opposite order, and main joins left, without the
 *                ticker; once left returns (cancelled from the console),
 *                "left returned N" is logged and main goes on as usual
 *     -y         busy: no green thread waits on a descriptor.  main and
 *                a green thread named yielder yield for ever, without
 *                the ticker; an OS thread reads standard input instead,
 *                and ends the process (status 0) at its EOF
 *
 * Commands: echo, spew N, fail [MSG], fail-errno, ctrl, hog MS, sleep MS,
 * fdfill, fdfree, cstats, uninstall, deep [MS], logs N.  Variables:
 * answer (int), fixed (int, read-only), ratio (double), name
 * (string[16]), ticks (int, read-only: a green thread counts every 10
 * ms).  hog logs "hogging the loop for MS ms" as it begins.
 *
 * deep [MS] (TESTPLAN 20): a green thread 'deep' goes down to a few
 * hundred bytes from the end of its stack and spins there, holding the
 * loop (see deep_stack.h); "deep ROOM MIN" on standard output says it is
 * there, with the bytes left and the least a signal frame needs; the
 * first byte on standard input (or its EOF) lets it come back up, and
 * "deep returned DEPTH" says it did.  With MS, the console's stuck
 * threshold is MS while 'deep' is down there (diesel_console_stuck_after)
 * and never before nor after: on a loaded machine any turn may outlast a
 * short threshold, which then answers the attaches around 'deep' with
 * stuck reports as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "diesel.h"
#include "console.h"
#include "deep_stack.h"

static int64_t answer = 42, fixed = 7, ticks, window = 10, offset = 0;
static double ratio = 0.5;
static char name[16] = "diesel";
static int trap, deadlock, busy;
static struct diesel_lock *locks[2];
static int *filled;
static int nfilled;

static int
cmd_echo(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s%s", i > 1 ? " " : "", argv[i]);
    diesel_console_printf(out, "\n");
    return 0;
}

/* echo that speaks JSON (diesel_console_command_json). */
static int
cmd_jecho(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    if (!diesel_console_json(out))
        return cmd_echo(out, argc, argv, arg);
    diesel_console_printf(out, "[");
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s\"%s\"", i > 1 ? "," : "", argv[i]);
    diesel_console_printf(out, "]\n");
    return 0;
}

static int
cmd_spew(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    static const char line[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxx\n";       /* 64 bytes */
    long long n = argc == 2 ? atoll(argv[1]) : 0;

    (void)arg;
    for (long long i = 0; i < n; i += 64) {
        if (diesel_console_printf(out, "%s", line) < 0)
            break;    /* cut at the limit */
    }
    return 0;
}

static int
cmd_fail(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    diesel_console_printf(out, "some output first\n");
    return diesel_console_error(out, "%s", argc > 1 ? argv[1] : "it failed");
}

static int
cmd_fail_errno(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    (void)out;
    (void)argc;
    (void)argv;
    (void)arg;
    errno = ENOENT;
    return -1;
}

static int
cmd_ctrl(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    /* Everything a reply must not let through raw. */
    diesel_console_printf(out, "a\001b\033[2Jc\177d\te\rf");
    diesel_console_printf(out, "\nOK\nERR fake\n| fake");
    return 0;
}

static int
cmd_hog(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long long ms = argc == 2 ? atoll(argv[1]) : 0;
    int64_t end = diesel_now() + ms;

    (void)out;
    (void)arg;
    /* Said when the loop is held already, for a test that waits for it
     * before it attaches (a request that comes earlier gets a session). */
    diesel_log("app", DIESEL_LOG_INFO, "hogging the loop for %lld ms", ms);
    /* Hold the loop: no yield, no system call the loop sees. */
    while (diesel_now() < end)
        ;
    return 0;
}

static int
cmd_sleep(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    if (argc != 2)
        return diesel_console_error(out, "usage: sleep MS");
    if (diesel_sleep(atoll(argv[1])) != 0)
        return -1;
    diesel_console_printf(out, "slept\n");
    return 0;
}

static int
cmd_fdfill(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct rlimit rl;
    int fd;

    (void)argc;
    (void)argv;
    (void)arg;
    /* A low limit first, so that filling the table is quick. */
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    filled = calloc(64, sizeof(*filled));
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        filled[nfilled++] = fd;
    diesel_console_printf(out, "filled %d (%s)\n", nfilled, strerror(errno));
    return 0;
}

static int
cmd_fdfree(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    for (int i = 0; i < nfilled; i++)
        close(filled[i]);
    diesel_console_printf(out, "freed %d\n", nfilled);
    nfilled = 0;
    free(filled);
    filled = NULL;
    return 0;
}

static int
cmd_cstats(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    diesel_console_printf(out, "sessions=%d dropped=%lu ticks=%lld\n",
        diesel__console_sessions(), diesel__console_dropped(),
        (long long)ticks);
    return 0;
}

static int
cmd_uninstall(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    if (diesel_console_uninstall() != 0)
        return -1;
    diesel_console_printf(out, "uninstalled\n");
    return 0;
}

/* deep: say when 'deep' is down there; let it up at the first byte on
 * standard input.  Every signal is blocked here, so that the console's
 * reaches the loop's thread, and the deep green thread. */
static void *
deep_keeper(void *arg)
{
    sigset_t all;
    char c;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    while (!deep_there)
        usleep(1000);
    printf("deep %zu %ld\n", (size_t)deep_room, deep_min_frame());
    fflush(stdout);
    (void)!read(0, &c, 1);
    deep_release = 1;
    return NULL;
}

static int
deep_main(void *arg)
{
    long depth = deep_run(deep_spin);

    (void)arg;
    diesel_console_stuck_after(0);     /* never, as before 'deep MS' */
    printf("deep returned %ld\n", depth);
    fflush(stdout);
    return depth < 0;
}

static int
cmd_deep(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    pthread_t t;
    char *end = NULL;
    long long ms = 0;

    (void)arg;
    if (argc > 2 || (argc == 2 && ((ms = strtoll(argv[1], &end, 10)) <= 0 ||
        *end != '\0')))
        return diesel_console_error(out, "usage: deep [MS]");
    if (pthread_create(&t, NULL, deep_keeper, NULL) != 0)
        return diesel_console_error(out, "cannot start a thread");
    pthread_detach(t);
    if (diesel_task_spawn("deep", deep_main, NULL, DEEP_STACK) < 0)
        return -1;
    if (argc == 2)
        diesel_console_stuck_after(ms);
    diesel_console_printf(out, "going down\n");
    return 0;
}

static int
cmd_logs(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    long long n = argc == 2 ? atoll(argv[1]) : 0;
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    (void)arg;
    /* Kept in the ring, written to /dev/null: the test reads our
     * standard error only now and then, and a full pipe would block. */
    if (null < 0)
        return diesel_console_error(out, "/dev/null: %s", strerror(errno));
    diesel_log_fd_set(null);
    /* 200 lines every 20 ms: a follower gets them over many turns. */
    for (long long i = 1; i <= n; i++) {
        diesel_log("app", DIESEL_LOG_INFO, "log line %lld of %lld", i, n);
        if (i % 200 == 0 && diesel_sleep(20) != 0)
            break;
    }
    diesel_log_fd_set(2);
    close(null);
    diesel_console_printf(out, "%lld lines logged\n", n);
    return 0;
}

static int
ticker(void *arg)
{
    (void)arg;
    while (diesel_sleep(10) == 0)
        ticks++;
    return 0;
}

static void
breakpoint(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("int3");
#elif defined(__aarch64__)
    __asm__ volatile("brk #0");
#else
    raise(SIGTRAP);
#endif
}

/* Takes locks[i] then locks[1 - i]; releases what it took. */
static int
locker(void *arg)
{
    int i = arg != NULL;

    if (diesel_lock_acquire(locks[i], -1) != 0)
        return 1;
    diesel_task_yield();
    if (diesel_lock_acquire(locks[1 - i], -1) == 0)
        diesel_lock_release(locks[1 - i]);
    diesel_lock_release(locks[i]);
    return 2;
}

/* -y: the OS thread that stands in for app_main's read of stdin. */
static void *
stdin_watch(void *arg)
{
    char buf[256];
    ssize_t n;

    (void)arg;
    while ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        ;
    _exit(0);
}

static int
yielder(void *arg)
{
    (void)arg;
    while (diesel_task_yield() == 0)
        ;
    return 0;
}

static int
app_main(void *arg)
{
    char buf[256];

    (void)arg;
    if (busy) {
        pthread_t th;

        if (pthread_create(&th, NULL, stdin_watch, NULL) != 0 ||
            diesel_task_spawn("yielder", yielder, NULL, 0) < 0)
            return 1;
        printf("ready %ld\n", (long)getpid());
        fflush(stdout);
        return yielder(NULL);
    }
    if (deadlock) {
        int64_t left;
        int st = -1;

        locks[0] = diesel_lock_create("a");
        locks[1] = diesel_lock_create("b");
        left = diesel_task_spawn("left", locker, NULL, 0);
        diesel_task_spawn("right", locker, &locks[1], 0);
        printf("ready %ld\n", (long)getpid());
        fflush(stdout);
        diesel_task_join(left, &st, -1);
        diesel_log("app", DIESEL_LOG_INFO, "left returned %d", st);
    } else {
        diesel_task_spawn("ticker", ticker, NULL, 0);
        printf("ready %ld\n", (long)getpid());
        fflush(stdout);
    }
    if (trap) {
        diesel_sleep(200);
        breakpoint();
    }
    /* Until the test closes our standard input. */
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
    int opt, signo = 0, install = 1;

    while ((opt = getopt(argc, argv, "s:S:ntdy")) != -1) {
        switch (opt) {
        case 's':
            signo = atoi(optarg);
            break;
        case 'S':
            /* The stuck threshold, ms (0: never report). */
            diesel_console_stuck_after(atoll(optarg));
            break;
        case 'n':
            install = 0;
            break;
        case 't':
            trap = 1;
            break;
        case 'd':
            deadlock = 1;
            break;
        case 'y':
            busy = 1;
            break;
        default:
            return 2;
        }
    }
    diesel_console_command("echo", "echo WORDS: print them back", cmd_echo,
        NULL);
    diesel_console_command("spew", "spew N: print N bytes", cmd_spew, NULL);
    diesel_console_command_json("jecho", "jecho WORDS: print them back, "
        "or a JSON list of them", cmd_jecho, NULL);
    diesel_console_command("fail", "fail [MSG]: fail with MSG", cmd_fail,
        NULL);
    diesel_console_command("fail-errno", "fail-errno: fail with ENOENT",
        cmd_fail_errno, NULL);
    diesel_console_command("ctrl", "ctrl: print control bytes", cmd_ctrl,
        NULL);
    diesel_console_command("hog", "hog MS: hold the loop", cmd_hog, NULL);
    diesel_console_command("sleep", "sleep MS: sleep, then answer",
        cmd_sleep, NULL);
    diesel_console_command("fdfill", "fdfill: fill the descriptor table",
        cmd_fdfill, NULL);
    diesel_console_command("fdfree", "fdfree: free what fdfill took",
        cmd_fdfree, NULL);
    diesel_console_command("cstats", "cstats: sessions, dropped, ticks",
        cmd_cstats, NULL);
    diesel_console_command("uninstall", "uninstall: remove the console",
        cmd_uninstall, NULL);
    diesel_console_command("deep", "deep [MS]: hold the loop deep in a stack",
        cmd_deep, NULL);
    diesel_console_command("logs", "logs N: log N lines (to /dev/null, and "
        "the ring), 200 every 20 ms", cmd_logs, NULL);
    diesel_console_var_int("answer", &answer, 1);
    diesel_console_var_int("fixed", &fixed, 0);
    diesel_console_var_double("ratio", &ratio, 1);
    diesel_console_var_string("name", name, sizeof(name), 1);
    diesel_console_var_int("ticks", &ticks, 0);
    diesel_console_var_int_range("window", &window, 1, 3600);
    diesel_console_var_int_range("offset", &offset, -5, 5);
    if (install && diesel_console_install(signo) != 0) {
        perror("diesel_console_install");
        return 1;
    }
    return diesel_loop_run(app_main, NULL) == 0 ? 0 : 1;
}
