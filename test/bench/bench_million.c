/*
 * bench_million.c: what N sleeping green threads cost (N = 1000000 unless
 * given as the argument).
 *
 * Each green thread runs a little (fills a 512-byte buffer on its stack)
 * and then sleeps for an hour in diesel_sleep, so that it holds a timer
 * and a default-size stack with its guard page.  With all of them asleep
 * the main green thread reads VmRSS, VmPTE and VmSize from
 * /proc/self/status and counts /proc/self/maps; it then cancels them all
 * and waits until all have returned.
 *
 * Guard pages are checked on a sample of the stacks: /proc/self/pagemap
 * marks a page turned into a guard with MADV_GUARD_INSTALL (bit 58,
 * PM_GUARD_REGION); a guard made with mprotect instead is a PROT_NONE
 * mapping of its own, one more mapping per stack.
 *
 * The figures are one run, not the best of several: the run is the
 * measure.  A spawn that fails is reported with errno and the mapping
 * figures at that moment, and the rest runs with those that were spawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diesel.h"
#include "bench.h"

#define SLEEP_MS ((int64_t)3600 * 1000)
#define TOUCH 512                   /* bytes each fills on its stack */
#define SAMPLE_EVERY 1024           /* stacks checked for a guard page */
#define PM_GUARD_REGION (1ULL << 58)

struct million {
    long n;                 /* green threads asked for */
    long spawned;           /* ... spawned */
    int spawn_err;          /* errno of the failed spawn, or 0 */
    long maps_at_err;       /* mappings when it failed */
    int64_t *ids;
    uintptr_t *samples;     /* a stack address of every SAMPLE_EVERY-th */
    long nsamples;
    long touched;           /* have run their little work */
    long cancelled;         /* returned from diesel_sleep with ECANCELED */
    long returned;
    long rss0, rss1, rss2;  /* VmRSS kB: before, all asleep, all returned */
    long pte0, pte1;        /* VmPTE kB */
    long vm0, vm1;          /* VmSize kB */
    long maps0, maps1, maps2;
    int64_t t_spawn, t_run, t_cancel, t_wake;   /* ns */
    int64_t t_end;          /* when the main green thread returned */
    long sampled;           /* samples taken (spawned and run) */
    long guards_madvise;    /* sampled stacks with a guard region below */
    long guards_mprotect;   /* ... with a PROT_NONE mapping below */
    long guard_min_kb, guard_max_kb;    /* from the sample to its guard */
};

static struct million M;

static int
sleeper(void *arg)
{
    volatile char buf[TOUCH];
    long k = (long)(intptr_t)arg;

    for (int i = 0; i < TOUCH; i++)
        buf[i] = (char)i;
    if (k % SAMPLE_EVERY == 0 && k / SAMPLE_EVERY < M.nsamples)
        M.samples[k / SAMPLE_EVERY] = (uintptr_t)buf;
    M.touched++;
    if (diesel_sleep(SLEEP_MS) != 0 && errno == ECANCELED)
        M.cancelled++;
    M.returned++;
    return 0;
}

/*
 * The PROT_NONE mappings of this process, in address order, as pairs of
 * start and end; their count is stored in *n.  NULL if none or on error.
 */
static uintptr_t *
prot_none_maps(long *n)
{
    FILE *f = fopen("/proc/self/maps", "re");
    uintptr_t *v = NULL, lo, hi;
    long cap = 0;
    char perms[8], line[512];

    *n = 0;
    if (f == NULL)
        return NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi,
            perms) != 3 || strcmp(perms, "---p") != 0)
            continue;
        if (*n == cap) {
            uintptr_t *nv;
            cap = cap ? cap * 2 : 1024;
            nv = realloc(v, (size_t)cap * 2 * sizeof(*v));
            if (nv == NULL)
                break;
            v = nv;
        }
        v[2 * *n] = lo;
        v[2 * *n + 1] = hi;
        (*n)++;
    }
    fclose(f);
    return v;
}

static void
guard_found(uintptr_t sample, uintptr_t guard_top, long *count)
{
    long kb = (long)((sample - guard_top) / 1024);
    long seen = M.guards_madvise + M.guards_mprotect;

    if (seen == 0 || kb < M.guard_min_kb)
        M.guard_min_kb = kb;
    if (seen == 0 || kb > M.guard_max_kb)
        M.guard_max_kb = kb;
    (*count)++;
}

/*
 * Look below each sampled stack address, within a default stack and a
 * bit, for its guard page: one that pagemap marks as a guard region
 * (MADV_GUARD_INSTALL), else a PROT_NONE mapping (mprotect).
 */
static void
check_guards(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (DIESEL_STACK_DEFAULT + 64 * 1024) / page;
    uint64_t *e = malloc(span * sizeof(*e));
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    long nnone;
    uintptr_t *none = prot_none_maps(&nnone);

    for (long s = 0; s < M.nsamples; s++) {
        uintptr_t top = M.samples[s] / page;
        uintptr_t lo = top - (span - 1);
        long a = 0, b = nnone;
        int found = 0;

        if (M.samples[s] == 0)
            continue;
        M.sampled++;
        if (fd >= 0 && e != NULL && pread(fd, e, span * sizeof(*e),
            (off_t)(lo * sizeof(*e))) == (ssize_t)(span * sizeof(*e))) {
            for (size_t i = span; i-- > 0 && !found;) {
                if (e[i] & PM_GUARD_REGION) {
                    guard_found(M.samples[s], (lo + i + 1) * page,
                        &M.guards_madvise);
                    found = 1;
                }
            }
        }
        /* The last PROT_NONE mapping that starts below the sample. */
        while (!found && a < b) {
            long mid = (a + b) / 2;
            if (none[2 * mid] <= M.samples[s])
                a = mid + 1;
            else
                b = mid;
        }
        if (!found && a > 0 && none[2 * (a - 1) + 1] <= M.samples[s] &&
            M.samples[s] - none[2 * (a - 1) + 1] < span * page)
            guard_found(M.samples[s], none[2 * (a - 1) + 1],
                &M.guards_mprotect);
    }
    if (fd >= 0)
        close(fd);
    free(none);
    free(e);
}

static int
main_task(void *arg)
{
    int64_t t0, t1, t2, t3, t4;

    (void)arg;
    M.rss0 = bench_status_kb("VmRSS");
    M.pte0 = bench_status_kb("VmPTE");
    M.vm0 = bench_status_kb("VmSize");
    M.maps0 = bench_map_count();

    t0 = bench_now();
    for (M.spawned = 0; M.spawned < M.n; M.spawned++) {
        int64_t id = diesel_task_spawn("sleeper", sleeper,
            (void *)(intptr_t)M.spawned, 0);
        if (id < 0) {
            M.spawn_err = errno;
            M.maps_at_err = bench_map_count();
            break;
        }
        M.ids[M.spawned] = id;
    }
    t1 = bench_now();
    /* We go to the back of the run queue: each runs, then parks. */
    while (M.touched < M.spawned)
        diesel_task_yield();
    t2 = bench_now();

    M.rss1 = bench_status_kb("VmRSS");
    M.pte1 = bench_status_kb("VmPTE");
    M.vm1 = bench_status_kb("VmSize");
    M.maps1 = bench_map_count();
    check_guards();

    /* In spawn order, which is deadline order: each cancel takes the
     * earliest deadline out of the loop's timer heap. */
    t3 = bench_now();
    for (long i = 0; i < M.spawned; i++)
        diesel_task_cancel(M.ids[i]);
    t4 = bench_now();
    while (M.returned < M.spawned)
        diesel_task_yield();
    M.t_wake = bench_now() - t4;
    /* One more turn of the loop, which unmaps what ended. */
    diesel_sleep(1);
    M.rss2 = bench_status_kb("VmRSS");
    M.maps2 = bench_map_count();

    M.t_spawn = t1 - t0;
    M.t_run = t2 - t1;
    M.t_cancel = t4 - t3;
    M.t_end = bench_now();
    return 0;
}

static double
per(int64_t ns, long n)
{
    return n > 0 ? (double)ns / (double)n : 0;
}

int
main(int argc, char **argv)
{
    long max_maps = bench_read_long("/proc/sys/vm/max_map_count");
    double rss_each, pte_each;
    int64_t t_teardown;
    long guards;
    int status;

    M.n = argc > 1 ? atol(argv[1]) : 1000000;
    if (argc > 2 || M.n < 1) {
        fprintf(stderr, "usage: bench_million [N]\n");
        return 2;
    }
    /* Our own bookkeeping, touched now so that it is not counted. */
    M.nsamples = (M.n + SAMPLE_EVERY - 1) / SAMPLE_EVERY;
    M.ids = malloc((size_t)M.n * sizeof(*M.ids));
    M.samples = calloc((size_t)M.nsamples, sizeof(*M.samples));
    if (M.ids == NULL || M.samples == NULL) {
        fprintf(stderr, "bench_million: out of memory\n");
        return 1;
    }
    memset(M.ids, 0, (size_t)M.n * sizeof(*M.ids));

    diesel_log_level_set("diesel", DIESEL_LOG_ERROR);
    status = diesel_loop_run(main_task, NULL);
    t_teardown = bench_now() - M.t_end;
    if (status != 0) {
        fprintf(stderr, "bench_million: diesel_loop_run: %s\n",
            strerror(errno));
        return 1;
    }

    guards = M.guards_madvise + M.guards_mprotect;
    rss_each = M.spawned ? (double)(M.rss1 - M.rss0) * 1024 / M.spawned : 0;
    pte_each = M.spawned ? (double)(M.pte1 - M.pte0) * 1024 / M.spawned : 0;
    printf("== bench_million: %ld green threads that ran a little and now "
        "sleep\n", M.n);
    printf("method: one run; CLOCK_MONOTONIC; spawn all (default %zu KiB "
        "stacks), yield until each has filled %d bytes of its stack and "
        "parked in diesel_sleep(1 h), read /proc/self/status and maps, "
        "cancel all, yield until all returned\n",
        DIESEL_STACK_DEFAULT / 1024, TOUCH);
    printf("  %-36s %ld of %ld", "green threads spawned", M.spawned, M.n);
    if (M.spawn_err != 0)
        printf("  (spawn %ld failed: %s, %ld mappings in use, "
            "vm.max_map_count %ld)", M.spawned + 1, strerror(M.spawn_err),
            M.maps_at_err, max_maps);
    printf("\n");
    printf("  %-36s %.3f s, %.0f ns each\n", "spawn (diesel_task_spawn)",
        (double)M.t_spawn / 1e9, per(M.t_spawn, M.spawned));
    printf("  %-36s %.3f s, %.0f ns each\n", "first run until all asleep",
        (double)M.t_run / 1e9, per(M.t_run, M.spawned));
    printf("  %-36s %ld -> %ld kB: %.2f KiB each\n", "VmRSS before -> asleep",
        M.rss0, M.rss1, rss_each / 1024);
    printf("  %-36s %ld -> %ld kB: %.2f KiB each\n",
        "VmPTE (page tables, not in VmRSS)", M.pte0, M.pte1, pte_each / 1024);
    printf("  %-36s %ld -> %ld MiB: %.1f KiB each\n", "VmSize (reserved)",
        M.vm0 / 1024, M.vm1 / 1024,
        M.spawned ? (double)(M.vm1 - M.vm0) / M.spawned : 0);
    printf("  %-36s %ld -> %ld (vm.max_map_count %ld)\n",
        "memory mappings before -> asleep", M.maps0, M.maps1, max_maps);
    printf("  %-36s %ld of %ld sampled stacks (MADV_GUARD_INSTALL %ld, "
        "mprotect %ld), %ld-%ld KiB below a 512-byte frame\n",
        "guard pages found", guards, M.sampled, M.guards_madvise,
        M.guards_mprotect, M.guard_min_kb, M.guard_max_kb);
    printf("  %-36s %.3f s, %.0f ns each\n",
        "cancel all, earliest deadline 1st", (double)M.t_cancel / 1e9,
        per(M.t_cancel, M.spawned));
    printf("  %-36s %.3f s, %.0f ns each (%ld saw ECANCELED)\n",
        "wake all until returned", (double)M.t_wake / 1e9,
        per(M.t_wake, M.spawned), M.cancelled);
    printf("  %-36s %ld kB, %ld mappings\n", "after all returned",
        M.rss2, M.maps2);
    printf("  %-36s %.3f s\n", "loop teardown (stacks unmapped)",
        (double)t_teardown / 1e9);
    printf("goal: <= 5 KiB RSS per green thread with guard pages on: "
        "%.2f KiB, %s\n", rss_each / 1024,
        M.spawned == M.n && rss_each <= 5 * 1024 &&
        M.sampled > 0 && guards == M.sampled ? "met" : "NOT met");
    printf("million: %ld of %ld green threads asleep; spawn %.0f ns each "
        "(%.2f s), first run %.0f ns each; RSS %.2f KiB each (+%.2f KiB "
        "page tables); mappings %ld -> %ld (max %ld); guard pages on %ld/%ld "
        "sampled; cancel+wake all %.2f s (%.0f ns each)\n", M.spawned, M.n,
        per(M.t_spawn, M.spawned), (double)M.t_spawn / 1e9,
        per(M.t_run, M.spawned), rss_each / 1024, pte_each / 1024, M.maps0,
        M.maps1, max_maps, guards, M.sampled,
        (double)(M.t_cancel + M.t_wake) / 1e9,
        per(M.t_cancel + M.t_wake, M.spawned));
    return 0;
}
