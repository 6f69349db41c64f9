/*
 * bench_spawn.c: the cost of a short-lived green thread: spawn it, let it
 * run a trivial body, and have it return.
 *
 *   - fresh stacks: the first BATCH spawns of a new loop, whose pool is
 *     empty: mmap, guard page, getcontext + makecontext, and a first
 *     entry through setcontext.  The stacks then go to the pool.
 *   - pooled, in batches: spawn BATCH green threads, then yield until all
 *     have run and returned.  BATCH stays under the library's pool of
 *     1024 default-size stacks, so every stack, with its record, comes
 *     from the pool.  The spawn calls and the run are timed apart.
 *   - pooled, one at a time: spawn one and join it (two switches each).
 *   - never pooled: the same batches with a 64 KiB stack, which is not the
 *     default size and so is mapped at spawn and unmapped after return.
 *   - pthread_create + pthread_join of a trivial body, for scale.
 *
 * Each repetition runs every measure once, in that order, in a new loop,
 * so that the machine's noise falls on all of them alike.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "diesel.h"
#include "bench.h"

#define REPS 7              /* measured repetitions, after 1 warm-up */
#define BATCH 1000          /* green threads per batch (pool: 1024) */
#define BATCHES 100         /* batches per repetition, pooled */
#define BATCHES_UNPOOLED 10 /* batches per repetition, never pooled */
#define JOINS 100000        /* spawn+join per repetition */
#define PTHREADS 2000       /* pthread_create+join per repetition */
#define SMALL_STACK ((size_t)64 * 1024)

/* What one measure gives, in ns per green thread, one per repetition. */
struct measure {
    struct bench_reps spawn;    /* the diesel_task_spawn calls */
    struct bench_reps run;      /* run, return, stack back to the pool */
    struct bench_reps total;
};

static long ran;                /* trivial bodies run so far */

static int
trivial(void *arg)
{
    (void)arg;
    ran++;
    return 0;
}

/*
 * Spawn batches of BATCH green threads with the given stack size and yield
 * until they have all returned; add ns per green thread to m, unless
 * warm-up.  Returns -1 if a spawn failed.
 */
static int
batches(int nbatches, size_t stack_size, struct measure *m, int warmup)
{
    int64_t spawn_ns = 0, run_ns = 0;
    double n = (double)nbatches * BATCH;

    for (int b = 0; b < nbatches; b++) {
        long want = ran + BATCH;
        int64_t t0 = bench_now();
        for (int i = 0; i < BATCH; i++) {
            if (diesel_task_spawn("trivial", trivial, NULL, stack_size) < 0)
                return -1;
        }
        int64_t t1 = bench_now();
        /* We go to the back of the run queue: they all run first. */
        while (ran < want)
            diesel_task_yield();
        int64_t t2 = bench_now();
        spawn_ns += t1 - t0;
        run_ns += t2 - t1;
    }
    if (!warmup) {
        bench_reps_add(&m->spawn, (double)spawn_ns / n);
        bench_reps_add(&m->run, (double)run_ns / n);
        bench_reps_add(&m->total, (double)(spawn_ns + run_ns) / n);
    }
    return 0;
}

struct results {
    struct measure fresh;       /* first batch of a new loop */
    struct measure pooled;      /* batches of default-size stacks */
    struct measure joined;      /* spawn one, join it */
    struct measure unpooled;    /* batches of 64 KiB stacks */
    struct bench_reps pthreads; /* pthread_create + join */
    int warmup;                 /* this repetition is not measured */
};

/*
 * One repetition of each green thread measure, in a loop of its own so
 * that its pool starts empty.
 */
static int
one_rep(void *arg)
{
    struct results *res = arg;
    int64_t t0, t1;

    if (batches(1, 0, &res->fresh, res->warmup) != 0 ||
        batches(BATCHES, 0, &res->pooled, res->warmup) != 0)
        return 1;
    t0 = bench_now();
    for (int i = 0; i < JOINS; i++) {
        int64_t id = diesel_task_spawn("trivial", trivial, NULL, 0);
        if (id < 0 || diesel_task_join(id, NULL, -1) != 0)
            return 1;
    }
    t1 = bench_now();
    if (!res->warmup)
        bench_reps_add(&res->joined.total, (double)(t1 - t0) / JOINS);
    return batches(BATCHES_UNPOOLED, SMALL_STACK, &res->unpooled,
        res->warmup) == 0 ? 0 : 1;
}

static void *
pthread_trivial(void *arg)
{
    return arg;
}

static int
pthreads_rep(struct bench_reps *out, int warmup)
{
    int64_t t0 = bench_now();

    for (int i = 0; i < PTHREADS; i++) {
        pthread_t th;
        int err = pthread_create(&th, NULL, pthread_trivial, NULL);
        if (err != 0) {
            errno = err;
            return -1;
        }
        pthread_join(th, NULL);
    }
    if (!warmup)
        bench_reps_add(out, (double)(bench_now() - t0) / PTHREADS);
    return 0;
}

static void
row(const char *what, long per_rep, const struct measure *m)
{
    printf("  %-46s %8ld", what, per_rep);
    if (m->spawn.n > 0)
        printf(" %9.1f %9.1f", bench_best(&m->spawn), bench_best(&m->run));
    else
        printf(" %9s %9s", "-", "-");
    printf(" %9.1f %9.1f\n", bench_best(&m->total), bench_median(&m->total));
}

int
main(void)
{
    static struct results res;
    struct measure pt;
    double pooled, joined, fr, unp, pth;

    diesel_log_level_set("diesel", DIESEL_LOG_ERROR);
    for (int r = -1; r < REPS; r++) {
        res.warmup = r < 0;
        if (diesel_loop_run(one_rep, &res) != 0) {
            fprintf(stderr, "bench_spawn: %s\n", strerror(errno));
            return 1;
        }
        if (pthreads_rep(&res.pthreads, res.warmup) != 0) {
            fprintf(stderr, "bench_spawn: pthread_create: %s\n",
                strerror(errno));
            return 1;
        }
    }

    printf("== bench_spawn: spawn + run + return of a trivial green thread\n");
    printf("method: CLOCK_MONOTONIC, 1 warm-up + %d repetitions interleaved "
        "across rows (a new loop each), ns per thread; spawn and run are "
        "best, run = yield until all have returned\n", REPS);
    printf("  %-46s %8s %9s %9s %9s %9s\n", "what", "per rep", "spawn",
        "run", "best", "median");
    row("pooled stacks, batches of 1000, then yield", (long)BATCHES * BATCH,
        &res.pooled);
    row("pooled stack, spawn one then join it", JOINS, &res.joined);
    row("fresh stacks: first 1000 spawns of a new loop", BATCH, &res.fresh);
    row("64 KiB stacks (never pooled), batches of 1000",
        (long)BATCHES_UNPOOLED * BATCH, &res.unpooled);
    memset(&pt, 0, sizeof(pt));
    pt.total = res.pthreads;
    row("pthread_create + pthread_join", PTHREADS, &pt);

    pooled = bench_best(&res.pooled.total);
    joined = bench_best(&res.joined.total);
    fr = bench_best(&res.fresh.total);
    unp = bench_best(&res.unpooled.total);
    pth = bench_best(&res.pthreads);
    printf("goal: <= 50 ns per spawn+run+return with pooled stacks "
        "(libdill go+hclose 58 ns here): %.1f ns, %s\n", pooled,
        pooled <= 50.0 ? "met" : "NOT met");
    printf("spawn+run+exit: %.1f ns each (pooled, batches of %d: spawn "
        "%.1f + run %.1f); spawn+join %.1f ns; fresh stack %.0f ns; "
        "64 KiB unpooled %.0f ns; pthread_create+join %.0f ns (ratio "
        "%.3f)\n", pooled, BATCH, bench_best(&res.pooled.spawn),
        bench_best(&res.pooled.run), joined, fr, unp, pth, pooled / pth);
    return 0;
}
