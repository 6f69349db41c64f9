/*
 * console_profile.c: `profile SECONDS [--hz N] [--folded]`, a sampling
 * profiler of the loop's thread (issue 11, item 5).
 *
 * For the window, a timer signals the loop's thread HZ times a second
 * (SIGPROF; diesel__platform_prof_start: on Linux a CLOCK_MONOTONIC timer
 * aimed at that thread, so that the time the loop sleeps in poll is
 * sampled as well).  The handler, on the loop's thread, writes one
 * sample into a ring allocated before the timer starts: the running
 * green thread's id and name (or "the loop waits in poll", or "the
 * loop's own code") and its backtrace (backtrace(3), warmed up when the
 * console was installed, as hog.c and console_stuck.c use it: see
 * diesel_console(3) for why that is acceptable in a handler).  A full
 * ring drops samples and counts them.  Meanwhile the session's green
 * thread sleeps: the loop serves as before.  Then the timer is deleted,
 * the previous disposition of SIGPROF put back, and the samples are
 * symbolized (frame.c's tables, as `stacks` does) and aggregated by
 * green-thread name, in slices that let the loop turn.
 *
 * Text (the shares are of all samples; up to TOP functions a group, the
 * hottest by self first):
 *
 *   profile: 2.00 s at 99 Hz, 198 samples (0 dropped)
 *   green thread 'worker': 150 samples (75.8%)
 *          SELF    TOTAL  FUNCTION
 *         70.2%   75.8%  prof_spin
 *          5.6%   75.8%  worker
 *   poll: 40 samples (20.2%)
 *   the loop's own code: 8 samples (4.0%)
 *       ...
 *
 * --folded: one line per distinct stack, "GROUP;outer;...;inner COUNT",
 * GROUP being the green thread's name, "(poll)" or "(loop)": what
 * flamegraph.pl, inferno and speedscope read.  A function is its symbol
 * name, "MODULE+0xOFF" when unknown, or "0xPC" outside any module.  Names
 * from the application have control bytes, ';' and spaces made '_'.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backtrace.h"
#include "console.h"
#include "console_builtins.h"
#include "frame.h"
#include "internal.h"

#define PROF_SIG SIGPROF
#define FRAMES 48                /* per sample, the handler's own included */
#define SAMPLES_MAX 30000        /* the ring's most: about 13 MiB */
#define HZ_DEFAULT 99
#define HZ_MAX 1000
#define SECONDS_MAX 300
#define TOP 15                   /* functions shown per group */

enum { K_TASK, K_POLL, K_LOOP };

struct sample {
    int kind;
    int n;                       /* frames in pc */
    uintptr_t exact;             /* the pc the signal interrupted, or 0 */
    char name[DIESEL__NAME_MAX];
    void *pc[FRAMES];
};

/* The profile running, for the handler; NULL when none. */
struct prof {
    struct diesel_loop *loop;
    struct sample *s;
    size_t cap;
    size_t taken;                /* samples written (by the handler, with
                                    relaxed atomics: it interrupts the
                                    thread that reads them after) */
    size_t dropped;              /* samples the full ring lost (same) */
};

static struct prof *active;
static int busy;                 /* a profile runs in this process: one
                                    SIGPROF, one timer (atomic) */

static void
handler(int sig, siginfo_t *si, void *uctx)
{
    struct prof *p = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    struct diesel_loop *lp = diesel__loop;
    struct diesel__task *t;
    struct sample *s;
    size_t k;
    int saved = errno;

    (void)sig;
    (void)si;
    /* Another thread (ITIMER_PROF picks any), or a stray signal. */
    if (p == NULL || lp == NULL || lp != p->loop)
        goto out;
    k = __atomic_load_n(&p->taken, __ATOMIC_RELAXED);
    if (k == p->cap) {
        __atomic_add_fetch(&p->dropped, 1, __ATOMIC_RELAXED);
        goto out;
    }
    s = &p->s[k];
    s->n = 0;
    s->exact = 0;
    if (__atomic_load_n(&lp->in_poll, __ATOMIC_RELAXED)) {
        s->kind = K_POLL;
    } else {
        t = diesel__current;
        s->kind = t != NULL ? K_TASK : K_LOOP;
        if (t != NULL)
            memcpy(s->name, t->name, sizeof(s->name));
        s->exact = diesel__platform_uc_pc(uctx);
        s->n = backtrace(s->pc, FRAMES);
    }
    __atomic_store_n(&p->taken, k + 1, __ATOMIC_RELAXED);
out:
    errno = saved;
}

/* ---- Aggregating ----------------------------------------------------------- */

/* One function of one group: hashed by (group, name). */
struct fn {
    struct fn *next;
    int group;
    char *name;
    size_t self, total;
    size_t seen;                 /* the last sample that counted it, + 1 */
};

/* One group: a green thread's name, poll, or the loop's own code. */
struct group {
    char name[DIESEL__NAME_MAX + 16];
    size_t samples;
};

struct agg {
    struct group *g;
    size_t ng, capg;
    struct fn **tab;
    size_t ntab;
    char **folded;               /* "GROUP;...;inner", one per sample */
    size_t nfolded;
};

/* Application text made safe for both outputs. */
static void
clean(char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || c == ';' || c == ' ')
            *s = '_';
    }
}

static int
group_of(struct agg *a, const struct sample *s)
{
    char name[sizeof(a->g[0].name)];

    if (s->kind == K_POLL) {
        snprintf(name, sizeof(name), "(poll)");
    } else if (s->kind == K_LOOP) {
        snprintf(name, sizeof(name), "(loop)");
    } else {
        memcpy(name, s->name, sizeof(s->name));
        name[sizeof(s->name) - 1] = '\0';
        clean(name);
    }
    for (size_t i = 0; i < a->ng; i++) {
        if (strcmp(a->g[i].name, name) == 0)
            return (int)i;
    }
    if (a->ng == a->capg) {
        size_t cap = a->capg ? a->capg * 2 : 16;
        struct group *g = realloc(a->g, cap * sizeof(*g));

        if (g == NULL)
            return -1;
        a->g = g;
        a->capg = cap;
    }
    memcpy(a->g[a->ng].name, name, sizeof(name));
    a->g[a->ng].samples = 0;
    return (int)a->ng++;
}

static size_t
hash(int group, const char *s)
{
    size_t h = (size_t)group * 31 + 5381;

    while (*s != '\0')
        h = h * 33 + (unsigned char)*s++;
    return h;
}

/* Count name in group for sample k (self if innermost). */
static int
count_fn(struct agg *a, int group, const char *name, size_t k, int self)
{
    size_t h = hash(group, name) % a->ntab;
    struct fn *f;

    for (f = a->tab[h]; f != NULL; f = f->next) {
        if (f->group == group && strcmp(f->name, name) == 0)
            break;
    }
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        if (f == NULL || (f->name = strdup(name)) == NULL) {
            free(f);
            return -1;
        }
        f->group = group;
        f->next = a->tab[h];
        a->tab[h] = f;
    }
    if (self)
        f->self++;
    if (f->seen != k + 1) {      /* once per sample: recursion */
        f->seen = k + 1;
        f->total++;
    }
    return 0;
}

/* A frame's function, as --folded shows it, into buf. */
static void
fn_name(struct diesel__symtab *tab, const void *pc, int exact, char *buf,
    size_t size)
{
    struct diesel__sym sym;

    if (diesel__sym_lookup_at(tab, pc, exact, &sym) != 0)
        snprintf(buf, size, "0x%lx", (unsigned long)(uintptr_t)pc);
    else if (sym.func != NULL)
        snprintf(buf, size, "%s", sym.func);
    else
        snprintf(buf, size, "%s+0x%lx", sym.module_base != NULL ?
            sym.module_base : "??", (unsigned long)sym.module_off);
    clean(buf);
}

/* Sample k into a: its group, its functions, its folded line. */
static int
add_sample(struct agg *a, struct diesel__symtab *tab, const struct sample *s,
    size_t k)
{
    char names[FRAMES][128], *line;
    int group = group_of(a, s), first = 0, n = s->n, nn = 0;
    size_t len;

    if (group < 0)
        return -1;
    a->g[group].samples++;
    if (s->kind != K_POLL) {
        /* From the interrupted pc: the frames before are the handler's
         * and the kernel's signal trampoline. */
        for (int i = 0; s->exact != 0 && i < n; i++) {
            if ((uintptr_t)s->pc[i] == s->exact) {
                first = i;
                break;
            }
        }
        if (first == 0 && n > 1)
            first = 1;           /* at least not the handler */
        n = first + diesel__frames_cut(tab, s->pc + first, n - first);
        /* Not the trampoline itself: below the green thread's function. */
        if (n > first && diesel__frame_entry(tab, s->pc[n - 1]))
            n--;
        for (int i = first; i < n; i++)
            fn_name(tab, s->pc[i], (uintptr_t)s->pc[i] == s->exact,
                names[nn++], sizeof(names[0]));
    }
    for (int i = 0; i < nn; i++) {
        if (count_fn(a, group, names[i], k, i == 0) != 0)
            return -1;
    }
    len = strlen(a->g[group].name) + 1;
    for (int i = 0; i < nn; i++)
        len += strlen(names[i]) + 1;
    if ((line = malloc(len)) == NULL)
        return -1;
    strcpy(line, a->g[group].name);
    for (int i = nn - 1; i >= 0; i--) {      /* outermost first */
        strcat(line, ";");
        strcat(line, names[i]);
    }
    a->folded[a->nfolded++] = line;
    return 0;
}

static void
agg_free(struct agg *a)
{
    for (size_t i = 0; a->tab != NULL && i < a->ntab; i++) {
        struct fn *f = a->tab[i], *next;

        for (; f != NULL; f = next) {
            next = f->next;
            free(f->name);
            free(f);
        }
    }
    for (size_t i = 0; i < a->nfolded; i++)
        free(a->folded[i]);
    free(a->folded);
    free(a->tab);
    free(a->g);
}

static int
cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
cmp_fn(const void *x, const void *y)
{
    const struct fn *a = *(struct fn *const *)x, *b = *(struct fn *const *)y;

    if (a->self != b->self)
        return a->self < b->self ? 1 : -1;
    if (a->total != b->total)
        return a->total < b->total ? 1 : -1;
    return strcmp(a->name, b->name);
}

static int
cmp_group(const void *x, const void *y)
{
    const struct group *a = x, *b = y;

    if (a->samples != b->samples)
        return a->samples < b->samples ? 1 : -1;
    return strcmp(a->name, b->name);
}

static double
pct(size_t n, size_t of)
{
    return of > 0 ? 100.0 * (double)n / (double)of : 0.0;
}

static int
print_folded(struct diesel_console_out *out, struct agg *a)
{
    qsort(a->folded, a->nfolded, sizeof(a->folded[0]), cmp_str);
    for (size_t i = 0; i < a->nfolded; ) {
        size_t j = i;

        while (j < a->nfolded && strcmp(a->folded[j], a->folded[i]) == 0)
            j++;
        if (diesel_console_printf(out, "%s %zu\n", a->folded[i], j - i) < 0)
            return -1;
        i = j;
    }
    return 0;
}

static int
print_table(struct diesel_console_out *out, struct agg *a, size_t all)
{
    size_t nf = 0, k = 0;
    struct fn **fs;
    struct group *sorted;

    for (size_t i = 0; i < a->ntab; i++) {
        for (struct fn *f = a->tab[i]; f != NULL; f = f->next)
            nf++;
    }
    fs = malloc((nf + 1) * sizeof(*fs));
    sorted = malloc((a->ng + 1) * sizeof(*sorted));
    if (fs == NULL || sorted == NULL) {
        free(fs);
        free(sorted);
        return -1;
    }
    for (size_t i = 0; i < a->ntab; i++) {
        for (struct fn *f = a->tab[i]; f != NULL; f = f->next)
            fs[k++] = f;
    }
    qsort(fs, nf, sizeof(*fs), cmp_fn);
    if (a->ng > 0)                /* a->g is NULL without samples */
        memcpy(sorted, a->g, a->ng * sizeof(*sorted));
    qsort(sorted, a->ng, sizeof(*sorted), cmp_group);
    for (size_t g = 0; g < a->ng; g++) {
        const char *name = sorted[g].name;
        int shown = 0, idx = -1;

        for (size_t i = 0; i < a->ng; i++) {
            if (strcmp(a->g[i].name, name) == 0)
                idx = (int)i;
        }
        if (strcmp(name, "(poll)") == 0) {
            diesel_console_printf(out, "poll: %zu samples (%.1f%%)\n",
                sorted[g].samples, pct(sorted[g].samples, all));
            continue;
        }
        if (strcmp(name, "(loop)") == 0)
            diesel_console_printf(out, "the loop's own code: %zu samples "
                "(%.1f%%)\n", sorted[g].samples,
                pct(sorted[g].samples, all));
        else
            diesel_console_printf(out, "green thread '%s': %zu samples "
                "(%.1f%%)\n", name, sorted[g].samples,
                pct(sorted[g].samples, all));
        diesel_console_printf(out, "       SELF    TOTAL  FUNCTION\n");
        for (size_t i = 0; i < nf && shown < TOP; i++) {
            if (fs[i]->group != idx)
                continue;
            diesel_console_printf(out, "    %6.1f%% %6.1f%%  %s\n",
                pct(fs[i]->self, all), pct(fs[i]->total, all), fs[i]->name);
            shown++;
        }
    }
    free(fs);
    free(sorted);
    return 0;
}

/* ---- The command ---------------------------------------------------------- */

static int
parse_num(const char *s, double lo, double hi, double *v)
{
    char *end;

    errno = 0;
    *v = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && *v >= lo && *v <= hi ?
        0 : -1;
}

/* Sample for ms; the samples are in p.  0, or -1 with the error set. */
static int
sample(struct diesel_console_out *out, struct prof *p, int hz, int64_t ms)
{
    struct sigaction sa, old;
    int err = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = handler;
    /* On the alternate stack that crash.c gives the loop's thread: the
     * green thread's own may be nearly full. */
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(PROF_SIG, NULL, &old) != 0)
        return diesel_console_error(out, "profile: sigaction: %s",
            strerror(errno));
    if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL :
        old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
        return diesel_console_error(out, "profile: the program handles "
            "SIGPROF itself (another profiler?): not sampling");
    __atomic_store_n(&active, p, __ATOMIC_RELEASE);
    if (sigaction(PROF_SIG, &sa, NULL) != 0) {
        err = errno;
        __atomic_store_n(&active, NULL, __ATOMIC_RELEASE);
        return diesel_console_error(out, "profile: sigaction: %s",
            strerror(err));
    }
    if (diesel__platform_prof_start(PROF_SIG, hz) != 0) {
        err = errno;
        diesel_console_error(out, "profile: cannot start the timer: %s",
            strerror(err));
    } else {
        if (diesel_sleep(ms) != 0)
            err = errno;
        diesel__platform_prof_stop();
    }
    /* A signal the timer sent is delivered by now, unless the thread
     * blocks it (or, with ITIMER_PROF, every thread does): then it is
     * pending, and would meet the old disposition (SIGPROF's default ends
     * the process).  Ignoring a signal discards it when pending (POSIX
     * sigaction), so ignore it before putting the old one back. */
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(PROF_SIG, &sa, NULL);
    sigaction(PROF_SIG, &old, NULL);
    __atomic_store_n(&active, NULL, __ATOMIC_RELEASE);
    if (err == ECANCELED)
        return diesel_console_error(out, "interrupted: the green thread "
            "running the command was cancelled");
    errno = err;
    return err != 0 ? -1 : 0;
}

int
diesel__cmd_profile(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "profile SECONDS [--hz N] [--folded]";
    struct diesel_loop *l = diesel__loop;
    struct diesel__symtab *tab = NULL;
    struct prof p;
    struct agg a;
    const char *secs = NULL;
    double seconds, hzd = HZ_DEFAULT;
    int folded = 0, hz, rc = -1;
    size_t want;

    (void)arg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--folded") == 0) {
            folded = 1;
        } else if (strcmp(argv[i], "--hz") == 0) {
            if (i + 1 == argc || parse_num(argv[++i], 1, HZ_MAX, &hzd) != 0 ||
                hzd != (int)hzd)
                return diesel_console_error(out, "--hz: a whole number of "
                    "samples a second from 1 to %d; usage: %s", HZ_MAX,
                    usage);
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return diesel_console_error(out, "unknown option '%.64s'; "
                "usage: %s", argv[i], usage);
        } else if (secs == NULL) {
            secs = argv[i];
        } else {
            return diesel_console_error(out, "usage: %s", usage);
        }
    }
    if (secs == NULL)
        return diesel_console_error(out, "usage: %s", usage);
    if (parse_num(secs, 0.01, SECONDS_MAX, &seconds) != 0)
        return diesel_console_error(out, "bad SECONDS '%.64s': a number "
            "from 0.01 to %d; usage: %s", secs, SECONDS_MAX, usage);
    if (l == NULL || diesel__current == NULL)
        return diesel_console_error(out, "no loop runs on this thread");
    hz = (int)hzd;
    want = (size_t)(seconds * hz + 0.5) + 16;
    if (want > SAMPLES_MAX)
        return diesel_console_error(out, "profile: %g s at %d Hz is over "
            "%d samples: lower SECONDS or --hz", seconds, hz, SAMPLES_MAX);
    if (__atomic_exchange_n(&busy, 1, __ATOMIC_ACQ_REL))
        return diesel_console_error(out, "profile: another profile is "
            "running in this process");
    memset(&p, 0, sizeof(p));
    memset(&a, 0, sizeof(a));
    p.loop = l;
    p.cap = want;
    /* Every page touched now, not by the handler at its first samples. */
    p.s = malloc(want * sizeof(*p.s));
    if (p.s != NULL)
        memset(p.s, 0, want * sizeof(*p.s));
    if (p.s == NULL) {
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        return diesel_console_error(out, "profile: no memory for %zu "
            "samples", want);
    }
    /* Symbols of modules loaded since the console started, before the
     * window: reading them afterwards would not be in it. */
    diesel__sym_prepare();
    if (sample(out, &p, hz, (int64_t)(seconds * 1000 + 0.5)) != 0) {
        __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
        free(p.s);
        return -1;
    }
    __atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
    a.ntab = 1021;
    a.tab = calloc(a.ntab, sizeof(*a.tab));
    a.folded = calloc(p.taken + 1, sizeof(*a.folded));
    if (a.tab == NULL || a.folded == NULL ||
        (tab = diesel__sym_open()) == NULL) {
        diesel_console_error(out, "profile: no memory to aggregate");
        goto end;
    }
    for (size_t k = 0; k < p.taken; k++) {
        if (add_sample(&a, tab, &p.s[k], k) != 0) {
            diesel_console_error(out, "profile: no memory to aggregate");
            goto end;
        }
        /* Let the loop turn once the slice has lasted: symbolizing
         * thousands of samples takes a while. */
        if (k % 64 == 63 &&
            diesel__now_ns() - l->now >= DIESEL__CONSOLE_SLICE_NS &&
            diesel__task_yield_loop() != 0) {
            diesel_console_error(out, "interrupted: the green thread "
                "running the command was cancelled");
            goto end;
        }
    }
    if (folded) {
        rc = print_folded(out, &a);
    } else {
        diesel_console_printf(out, "profile: %.2f s at %d Hz, %zu samples "
            "(%zu dropped)\n", seconds, hz, p.taken, p.dropped);
        if (p.taken == 0)
            diesel_console_printf(out, "no samples: does the loop's thread "
                "block SIGPROF?\n");
        rc = print_table(out, &a, p.taken);
    }
    if (rc != 0)
        diesel_console_error(out, "reply too long (over the console's "
            "output limit)");
end:
    if (tab != NULL)
        diesel__sym_close(tab);
    agg_free(&a);
    free(p.s);
    return rc;
}
