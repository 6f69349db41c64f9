/*
 * bench_switch.c: the cost of one switch between two green threads.
 *
 * Two green threads yield to each other through the scheduler
 * (diesel_task_yield), and beside them, in the same run, the peers that
 * say what that costs over the bare switch:
 *
 *   - the library's yield ping-pong once more with DIESEL_SWITCH=ucontext,
 *     the run-time fallback.  The choice is made once per process, so a
 *     second copy of this program runs with the variable set and measures
 *     one repetition each time it is asked to, over a pipe;
 *   - the same ping-pong with hog warnings on (diesel_loop_hog_warn(3),
 *     threshold HOG_MS: a watchdog thread wakes every HOG_MS/2), its
 *     repetitions alternating with the plain ones (which goes first
 *     alternates too), so that the two rows differ only by the watchdog;
 *   - the same with time accounting on (diesel_loop_account(3)), which
 *     reads a clock at every switch: the CPU's counter, or clock_gettime
 *     with DIESEL_ACCOUNT_CLOCK=clock_gettime;
 *   - raw swapcontext(3) between two ucontexts (glibc's makes a
 *     sigprocmask system call on every switch);
 *   - the library's register switch, diesel__ctx_swap_asm, called
 *     straight from a loop, and called from a small function that
 *     returns, as diesel_task_yield does (see raw_asm_rep).
 *
 * The repetitions are interleaved (one of each, then again), so that
 * the machine's noise falls on all of them alike.
 *
 * diesel__ctx_swap_asm is a hidden symbol of lib/libdiesel.a.  Hidden
 * visibility only keeps a symbol out of a shared object's dynamic table;
 * a static link resolves it like any other global, so it is declared
 * here and linked from the archive.
 *
 *   bench_switch             the table
 *   bench_switch --serve N   per byte read on stdin, one repetition of N
 *                            switches; prints "way ns/switch" (the peer)
 *   bench_switch --count N   N switches, then prints the switch's name
 *                            and the ms they took (run under strace)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "diesel.h"
#include "bench.h"

#define REPS 9                      /* measured repetitions, after 1 warm-up */
#define FAST_SWITCHES 2000000L      /* per repetition, no system call */
#define SLOW_SWITCHES 200000L       /* per repetition, a syscall each */
#define CO_STACK (64 * 1024)        /* the raw peers' second stack */
#define HOG_MS 100                  /* hog warning threshold of the row */

/* The library's, hidden in the archive: see the comment at the top. */
const char *diesel__switch_name(void);
const char *diesel__acct_clock_name(void);
#if !defined(DIESEL_SWITCH_UCONTEXT) && \
    (defined(__x86_64__) || defined(__aarch64__))
#define HAVE_ASM_SWITCH 1
void diesel__ctx_swap_asm(uintptr_t *from, uintptr_t *to);
void diesel__ctx_enter_asm(uintptr_t *from, ucontext_t *to);
#endif

/* ---- Yield ping-pong through the scheduler ------------------------------ */

static volatile int pong_stop;

static int
pong(void *arg)
{
    (void)arg;
    while (!pong_stop)
        diesel_task_yield();
    return 0;
}

/*
 * Called in a green thread while pong is ready.  Each diesel_task_yield
 * switches straight to the other green thread (both are always ready), so
 * n round trips are 2n switches.  Every 128 switches the scheduler goes
 * through the loop's own context to poll (with no system call when
 * nothing is watched); that is part of the cost measured.  ns/switch.
 */
static double
yield_rep(long switches)
{
    long trips = switches / 2;
    int64_t t0 = bench_now();

    for (long i = 0; i < trips; i++)
        diesel_task_yield();
    return trips > 0 ? (double)(bench_now() - t0) / (double)(2 * trips) : 0;
}

/* The same with hog warnings on: the watchdog thread runs meanwhile.
 * Started and stopped outside the timed part, with an untimed warm-up
 * after the start; -1 if it cannot start. */
static double
hog_rep(long switches)
{
    double ns;

    if (diesel_loop_hog_warn(HOG_MS) != 0)
        return -1;
    yield_rep(switches / 8);   /* settle after the thread's start */
    ns = yield_rep(switches);
    diesel_loop_hog_warn(0);
    return ns;
}

/* The same with time accounting on: a clock read at every switch. */
static double
acct_rep(long switches)
{
    double ns;

    if (diesel_loop_account(1) != 0)
        return -1;
    yield_rep(switches / 8);
    ns = yield_rep(switches);
    diesel_loop_account(0);
    return ns;
}

/* ---- The same with DIESEL_SWITCH=ucontext, in a second process ---------- */

struct peer {
    pid_t pid;
    FILE *to;               /* a byte asks for one repetition */
    FILE *from;             /* ... which answers "way ns" */
    char way[32];           /* the switch it uses */
};

/* Start argv0 --serve switches with DIESEL_SWITCH=ucontext. */
static int
peer_start(struct peer *p, const char *argv0, long switches)
{
    int in[2], out[2];
    char n[32];

    snprintf(n, sizeof(n), "%ld", switches);
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    fflush(stdout);
    p->pid = fork();
    if (p->pid < 0)
        return -1;
    if (p->pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        setenv("DIESEL_SWITCH", "ucontext", 1);
        execlp(argv0, argv0, "--serve", n, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    return p->to != NULL && p->from != NULL ? 0 : -1;
}

/* One repetition in the peer; ns/switch, or -1. */
static double
peer_rep(struct peer *p)
{
    double ns;

    if (p->pid <= 0 || fputc('r', p->to) == EOF || fflush(p->to) != 0 ||
        fscanf(p->from, "%31s %lf", p->way, &ns) != 2)
        return -1;
    return ns;
}

static int
peer_stop(struct peer *p)
{
    int status;

    if (p->pid <= 0)
        return -1;
    fclose(p->to);
    fclose(p->from);
    return waitpid(p->pid, &status, 0) == p->pid && WIFEXITED(status) &&
        WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- Raw swapcontext ----------------------------------------------------- */

static ucontext_t uc_main, uc_co;

static void
uc_co_body(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static int
raw_uc_init(void)
{
    void *stack = malloc(CO_STACK);

    if (stack == NULL || getcontext(&uc_co) != 0)
        return -1;
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = CO_STACK;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_co_body, 0);
    return 0;
}

static double
raw_uc_rep(long switches)
{
    long trips = switches / 2;
    int64_t t0 = bench_now();

    for (long i = 0; i < trips; i++)
        swapcontext(&uc_main, &uc_co);
    return (double)(bench_now() - t0) / (double)(2 * trips);
}

/* ---- Raw register switch ------------------------------------------------- */

#ifdef HAVE_ASM_SWITCH
/* Save areas: 9 words on x86-64, 22 on aarch64 (switch.h); room for both. */
static uintptr_t asm_main[32], asm_co[32];
static int asm_via_call;

/*
 * The switch made from a function that then returns, as in
 * diesel_task_yield.  After a switch the CPU's return stack still holds
 * the other side's return addresses, so that first return mispredicts;
 * the difference between the two raw rows is that cost, which a stackful
 * switch pays whenever it sits in a function that returns.
 */
static __attribute__((noinline)) void
asm_switch_call(uintptr_t *from, uintptr_t *to)
{
    diesel__ctx_swap_asm(from, to);
    __asm__ volatile("" ::: "memory");  /* a return, not a tail call */
}

static void
asm_co_body(void)
{
    for (;;) {
        if (asm_via_call)
            asm_switch_call(asm_co, asm_main);
        else
            diesel__ctx_swap_asm(asm_co, asm_main);
    }
}

static int
raw_asm_init(void)
{
    void *stack = malloc(CO_STACK);
    ucontext_t uc;

    if (stack == NULL || getcontext(&uc) != 0)
        return -1;
    uc.uc_stack.ss_sp = stack;
    uc.uc_stack.ss_size = CO_STACK;
    uc.uc_link = NULL;
    makecontext(&uc, asm_co_body, 0);
    /* Enter the stack as the library does, through setcontext; the body
     * switches straight back, and from then on it is registers only. */
    diesel__ctx_enter_asm(asm_main, &uc);
    return 0;
}

static double
raw_asm_rep(long switches, int via_call)
{
    long trips = switches / 2;
    int64_t t0;

    /* The body reads this after each switch back to it. */
    asm_via_call = via_call;
    t0 = bench_now();
    if (via_call) {
        for (long i = 0; i < trips; i++)
            asm_switch_call(asm_main, asm_co);
    } else {
        for (long i = 0; i < trips; i++)
            diesel__ctx_swap_asm(asm_main, asm_co);
    }
    return (double)(bench_now() - t0) / (double)(2 * trips);
}
#endif

/* ---- The runs ------------------------------------------------------------ */

enum mode { TABLE, SERVE, COUNT };

struct run {
    enum mode mode;
    long switches;              /* SERVE, COUNT: per repetition */
    const char *argv0;          /* TABLE: to start the peer */
    const char *way;            /* the switch the library chose */
    struct bench_reps yield, hog, acct, peer, uc, rawasm, rawcall;
    char peer_way[32];
    int peer_ok, raw_ok;
};

/* TABLE: every measure, one repetition of each in turn. */
static int
table(struct run *r)
{
    struct peer p;

    memset(&p, 0, sizeof(p));
    r->peer_ok = peer_start(&p, r->argv0, SLOW_SWITCHES) == 0;
    r->raw_ok = raw_uc_init() == 0;
#ifdef HAVE_ASM_SWITCH
    r->raw_ok = r->raw_ok && raw_asm_init() == 0;
#endif
    if (!r->raw_ok)
        return -1;
    for (int i = -1; i < REPS; i++) {
        double y, h, t;

        if (i & 1) {
            y = yield_rep(FAST_SWITCHES);
            h = hog_rep(FAST_SWITCHES);
        } else {
            h = hog_rep(FAST_SWITCHES);
            y = yield_rep(FAST_SWITCHES);
        }
        if (h < 0)
            return -1;
        if ((t = acct_rep(FAST_SWITCHES)) < 0)
            return -1;
        double f = r->peer_ok ? peer_rep(&p) : -1;
        double u = raw_uc_rep(SLOW_SWITCHES);
#ifdef HAVE_ASM_SWITCH
        double a = raw_asm_rep(FAST_SWITCHES, 0);
        double c = raw_asm_rep(FAST_SWITCHES, 1);
#endif

        if (f < 0)
            r->peer_ok = 0;
        if (i < 0)
            continue;
        bench_reps_add(&r->yield, y);
        bench_reps_add(&r->hog, h);
        bench_reps_add(&r->acct, t);
        bench_reps_add(&r->peer, f);
        bench_reps_add(&r->uc, u);
#ifdef HAVE_ASM_SWITCH
        bench_reps_add(&r->rawasm, a);
        bench_reps_add(&r->rawcall, c);
#endif
    }
    if (r->peer_ok) {
        snprintf(r->peer_way, sizeof(r->peer_way), "%s", p.way);
        r->peer_ok = peer_stop(&p) == 0;
    } else if (p.pid > 0) {
        peer_stop(&p);
    }
    return 0;
}

/* The first green thread: pong beside it, then the mode's work. */
static int
ping(void *arg)
{
    struct run *r = arg;
    int64_t id;
    int ret = 0, c;
    double ns;

    r->way = diesel__switch_name();
    pong_stop = 0;
    id = diesel_task_spawn("pong", pong, NULL, 0);
    if (id < 0)
        return 1;
    switch (r->mode) {
    case TABLE:
        ret = table(r);
        break;
    case SERVE:
        yield_rep(r->switches);     /* warm-up */
        while ((c = getchar()) != EOF && c != 'q') {
            printf("%s %.3f\n", r->way, yield_rep(r->switches));
            fflush(stdout);
        }
        break;
    case COUNT:
        ns = yield_rep(r->switches);
        printf("%s %.3f\n", r->way, ns * (double)r->switches / 1e6);
        break;
    }
    pong_stop = 1;
    if (diesel_task_join(id, NULL, -1) != 0)
        ret = -1;
    return ret == 0 ? 0 : 1;
}

static void
row(const char *what, long switches, const struct bench_reps *r, double y)
{
    double best = bench_best(r);

    printf("  %-46s %8ld %8.1f %8.1f %7.2f\n", what, switches, best,
        bench_median(r), y / best);
}

int
main(int argc, char **argv)
{
    static struct run r;
    char label[80];
    double y;

    /* The library says "Starting diesel" at each loop: keep errors only. */
    diesel_log_level_set("diesel", DIESEL_LOG_ERROR);
    r.argv0 = argv[0];
    if (argc == 3 && strcmp(argv[1], "--serve") == 0)
        r.mode = SERVE;
    else if (argc == 3 && strcmp(argv[1], "--count") == 0)
        r.mode = COUNT;
    else if (argc != 1) {
        fprintf(stderr, "usage: bench_switch [--serve N | --count N]\n");
        return 2;
    }
    if (argc == 3)
        r.switches = atol(argv[2]);
    if (diesel_loop_run(ping, &r) != 0) {
        fprintf(stderr, "bench_switch: %s\n", strerror(errno));
        return 1;
    }
    if (r.mode != TABLE)
        return 0;

    y = bench_best(&r.yield);
    printf("== bench_switch: one switch between two green threads "
        "(library switch: %s)\n", r.way);
    printf("method: CLOCK_MONOTONIC around N switches (N/2 round trips), "
        "1 warm-up + %d repetitions interleaved across rows, ns/switch "
        "best and median; ratio = yield best / row best\n", REPS);
    printf("  %-46s %8s %8s %8s %7s\n", "what", "N", "best", "median",
        "ratio");
    snprintf(label, sizeof(label), "diesel_task_yield ping-pong (%s)", r.way);
    row(label, FAST_SWITCHES, &r.yield, y);
    snprintf(label, sizeof(label), "same, hog warnings on (%d ms)", HOG_MS);
    row(label, FAST_SWITCHES, &r.hog, y);
    snprintf(label, sizeof(label), "same, time accounting on (%s)",
        diesel__acct_clock_name());
    row(label, FAST_SWITCHES, &r.acct, y);
    if (r.peer_ok) {
        snprintf(label, sizeof(label), "same, DIESEL_SWITCH=ucontext (%s)",
            r.peer_way);
        row(label, SLOW_SWITCHES, &r.peer, y);
    } else {
        printf("  %-46s (the second process failed)\n",
            "same, DIESEL_SWITCH=ucontext");
    }
    row("raw swapcontext, glibc (sigprocmask each)", SLOW_SWITCHES, &r.uc, y);
#ifdef HAVE_ASM_SWITCH
    row("raw diesel__ctx_swap_asm", FAST_SWITCHES, &r.rawasm, y);
    row("raw diesel__ctx_swap_asm in a returning call", FAST_SWITCHES,
        &r.rawcall, y);
#else
    printf("  %-46s (not built: SWITCH=ucontext or no assembly switch)\n",
        "raw diesel__ctx_swap_asm");
#endif
    printf("goal: <= 10 ns/switch (libdill 18, libaco 9.5, Boost.Context "
        "5.5 ns on this machine): %.1f ns, %s\n", y,
        y <= 10.0 ? "met" : "NOT met");
    printf("hog warnings: off %.1f ns/switch (best), on %.1f ns/switch "
        "(best), on/off %.3f (medians %.1f, %.1f: %.3f); goal <= 1.05: %s\n",
        y, bench_best(&r.hog), bench_best(&r.hog) / y,
        bench_median(&r.yield), bench_median(&r.hog),
        bench_median(&r.hog) / bench_median(&r.yield),
        bench_best(&r.hog) / y <= 1.05 ? "met" : "NOT met");
    printf("yield ping-pong: %.1f ns/switch; raw swapcontext %.1f ns "
        "(ratio %.2f)", y, bench_best(&r.uc), y / bench_best(&r.uc));
#ifdef HAVE_ASM_SWITCH
    printf("; raw asm %.1f ns (ratio %.2f); raw asm in a returning call "
        "%.1f ns (ratio %.2f)", bench_best(&r.rawasm),
        y / bench_best(&r.rawasm), bench_best(&r.rawcall),
        y / bench_best(&r.rawcall));
#endif
    if (r.peer_ok)
        printf("; DIESEL_SWITCH=ucontext %.1f ns (ratio %.2f)",
            bench_best(&r.peer), y / bench_best(&r.peer));
    printf("\n");
    return 0;
}
