/*
 * bench.h: what the benchmarks share: the clock, a set of repetitions
 * summed up as best and median, and a few /proc readers.
 *
 * The machines these run on are noisy (VMs, shared cores), so a single
 * figure means little: each benchmark repeats its measure after a
 * warm-up, reports the best and the median, and compares figures taken
 * side by side in the same run.  Benchmarks print figures; they never
 * assert a speed.
 */
#ifndef DIESEL_BENCH_H
#define DIESEL_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_REPS_MAX 64

/* Monotonic nanoseconds. */
static inline int64_t
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The figures of several repetitions of one measure (ns per operation). */
struct bench_reps {
    double v[BENCH_REPS_MAX];
    int n;
};

static inline void
bench_reps_add(struct bench_reps *r, double v)
{
    if (r->n < BENCH_REPS_MAX)
        r->v[r->n++] = v;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static inline double
bench_best(const struct bench_reps *r)
{
    double b = r->n > 0 ? r->v[0] : 0;

    for (int i = 1; i < r->n; i++)
        if (r->v[i] < b)
            b = r->v[i];
    return b;
}

static inline double
bench_median(const struct bench_reps *r)
{
    double s[BENCH_REPS_MAX];

    if (r->n == 0)
        return 0;
    memcpy(s, r->v, (size_t)r->n * sizeof(s[0]));
    qsort(s, (size_t)r->n, sizeof(s[0]), bench_cmp_double);
    return r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

/* A field of /proc/self/status in kB ("VmRSS", "VmPTE"...), or -1. */
static inline long
bench_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    size_t len = strlen(field);
    long v = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            v = strtol(line + len + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Lines in /proc/self/maps: the memory mappings of this process, or -1. */
static inline long
bench_map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    long n = 0;
    int c;

    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The first number in a file such as /proc/sys/vm/max_map_count, or -1. */
static inline long
bench_read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

#endif /* DIESEL_BENCH_H */
