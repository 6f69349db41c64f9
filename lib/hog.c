/*
 * hog.c: warnings about a green thread that holds the loop too long.
 *
 *   [...] {diesel} WARNING:green thread 'spin' (id 2) has held the loop
 *       for 205 ms without yielding
 *   [...] {diesel} WARNING:backtrace of green thread 'spin' (id 2), still
 *       running:
 *   spin (app.c:31)
 *   ...
 *
 * Reading the clock at every switch would cost more than the switch, so
 * the switch path does nothing new: the loop already counts switches
 * (stored with relaxed atomic stores, plain stores on x86-64 and aarch64)
 * and says when it is in poll.  A watchdog thread, started only while the
 * warnings are on, wakes every threshold/2 (counted from its last check)
 * and looks at both.  When the counter has not moved for two checks in a
 * row and the loop is not in poll, one green thread (or the loop's own
 * code) has run for at least the threshold: the watchdog sends the loop's thread SIG_HOG, whose
 * handler, on that thread, names the green thread that runs and logs its
 * backtrace (async-signal-safe calls only; backtrace() is warmed up by
 * crash.c).  One warning per episode: the watchdog sends nothing more
 * until the counter moves again.
 *
 * Lengths are the watchdog's estimates, in multiples of its period: the
 * warning gives the time since the last check that saw the counter move
 * (at most one period less than the truth, never more), and the length
 * of a whole episode, recorded when the counter moves again as the green
 * thread's longest run (`stats`), is the time between the two checks
 * that saw it begin and end (within one period of the truth, either
 * way).  Only runs that were warned about are recorded.
 *
 * The watchdog never touches a green thread's record: it may be freed
 * under it.  The handler runs on the loop's thread and notes which green
 * thread it found; the loop picks the episode's length up at its next
 * turn (diesel__hog_settle).
 */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "internal.h"

#ifdef SIGRTMIN
#define SIG_HOG (SIGRTMIN + 5)
#else
#define SIG_HOG SIGURG   /* ignored by default where there is no SIGRTMIN */
#endif
#define BACKTRACE_MAX 64
#define EPISODES 8

/* Shared by the loop's thread (L), its signal handler (H) and the
 * watchdog (W); atomics unless said otherwise. */
struct diesel__hog {
    pthread_t watchdog;
    pthread_t loop_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                 /* under mu: L asks W to end */
    int64_t period;           /* ns, threshold / 2; set before W starts */
    int64_t threshold;        /* ns */
    /* W -> H: the episode W signalled about. */
    uint64_t stuck_at;        /* the counter's value */
    int64_t since;            /* monotonic ns, the last check it moved */
    int loud;                 /* the "diesel" logger shows warnings */
    unsigned slot;            /* W -> H: the episode's slot in ep[] */
    /* Episodes in a ring: several may end between two turns of the loop
     * (green threads that hog one after the other); past EPISODES, the
     * oldest unsettled ones are lost. */
    struct {
        int64_t id;           /* H -> L: green thread found, 0: none */
        char name[DIESEL__NAME_MAX];   /* H -> L */
        int64_t len;          /* W -> L: its length, once ended */
        int ended;            /* W -> L: release, acquire */
    } ep[EPISODES];
    unsigned next_slot;       /* W only */
    uint64_t nended;          /* W -> L: episodes ended (release) */
    uint64_t nsettled;        /* L only */
};

static int64_t threshold_ms = -1;   /* diesel_loop_hog_warn's, -1 unset */
static int handler_installed;
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- The handler (the loop's thread) ------------------------------------- */

struct line {
    char b[256];
    size_t n;
};

static void
put(struct line *l, const char *s)
{
    while (*s != '\0' && l->n < sizeof(l->b) - 1)
        l->b[l->n++] = *s++;
    l->b[l->n] = '\0';
}

static void
put_u64(struct line *l, uint64_t v)
{
    char tmp[24];

    tmp[diesel__fmt_u64(tmp, v)] = '\0';
    put(l, tmp);
}

static void
put_who(struct line *l, const struct diesel__task *t)
{
    if (t == NULL) {
        put(l, "the loop's own code (no green thread)");
        return;
    }
    put(l, "green thread '");
    put(l, t->name);
    put(l, "' (id ");
    put_u64(l, (uint64_t)t->id);
    put(l, ")");
}

static void
hog_handler(int sig, siginfo_t *si, void *uctx)
{
    struct diesel_loop *lp = diesel__loop;
    struct diesel__task *t = diesel__current;
    struct diesel__hog *h;
    struct line l = { "", 0 };
    void *frames[BACKTRACE_MAX];
    struct timespec ts;
    int64_t now;
    int saved = errno, n;
    unsigned k;

    (void)sig;
    if (lp == NULL || (h = lp->hog) == NULL || si->si_code != SI_TKILL ||
        si->si_pid != getpid())
        goto out;
    /* The episode may have ended between the watchdog's check and now:
     * then whoever runs is not the one that held the loop. */
    if (__atomic_load_n(&lp->switches, __ATOMIC_RELAXED) !=
        __atomic_load_n(&h->stuck_at, __ATOMIC_RELAXED) ||
        __atomic_load_n(&lp->in_poll, __ATOMIC_RELAXED))
        goto out;
    k = __atomic_load_n(&h->slot, __ATOMIC_RELAXED);
    __atomic_store_n(&h->ep[k].id, t != NULL ? t->id : 0, __ATOMIC_RELAXED);
    if (t != NULL)
        memcpy(h->ep[k].name, t->name, sizeof(h->ep[k].name));
    if (!__atomic_load_n(&h->loud, __ATOMIC_RELAXED))
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    put_who(&l, t);
    put(&l, " has held the loop for ");
    put_u64(&l, (uint64_t)(now - __atomic_load_n(&h->since,
        __ATOMIC_RELAXED)) / 1000000);
    put(&l, " ms without yielding");
    diesel__log_signal_safe("diesel", DIESEL_LOG_WARNING, l.b);
    l.n = 0;
    put(&l, "backtrace of ");
    put_who(&l, t);
    put(&l, ", still running:");
    diesel__log_signal_safe("diesel", DIESEL_LOG_WARNING, l.b);
    n = backtrace(frames, BACKTRACE_MAX);
    /* Frame 0 is this handler. */
    if (n > 1)
        diesel__frames_write(diesel__log_fd(), frames + 1, n - 1,
            diesel__platform_uc_pc(uctx));
out:
    errno = saved;
}

static int
install_handler(void)
{
    struct sigaction sa, old;
    int rc = 0;

    pthread_mutex_lock(&install_lock);
    if (!handler_installed) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = hog_handler;
        /* On the alternate stack that crash.c gives each loop's thread:
         * the green thread's own may be nearly full. */
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIG_HOG, NULL, &old) != 0 ||
            ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL :
            old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "hog warnings are off: the program handles signal %d "
                "itself", SIG_HOG);
            errno = EBUSY;
            rc = -1;
        } else if (sigaction(SIG_HOG, &sa, NULL) != 0) {
            rc = -1;
        } else {
            handler_installed = 1;
        }
    }
    pthread_mutex_unlock(&install_lock);
    return rc;
}

/* ---- The watchdog thread ------------------------------------------------- */

static int64_t
now_ns(void)
{
    return diesel__now_ns();
}

static void *
watchdog(void *arg)
{
    struct diesel_loop *lp = arg;
    struct diesel__hog *h = lp->hog;
    uint64_t last = __atomic_load_n(&lp->switches, __ATOMIC_RELAXED);
    int64_t next = now_ns(), moved_at = next;
    int warned = 0;
    sigset_t all;

    /* The signal is for the loop's thread only. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        uint64_t s;
        int64_t now;
        int poll;

        /* From the last check's time, not from a fixed tick: a check
         * that woke late must not shorten the next interval. */
        next += h->period;
        ts.tv_sec = (time_t)(next / 1000000000);
        ts.tv_nsec = (long)(next % 1000000000);
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
            continue;  /* woken to stop, or spuriously */
        /* The counter first, then the clock: a switch seen happened
         * before now, so that now - moved_at never overstates a stall. */
        s = __atomic_load_n(&lp->switches, __ATOMIC_RELAXED);
        poll = __atomic_load_n(&lp->in_poll, __ATOMIC_RELAXED);
        now = now_ns();
        next = now;
        if (s != last || poll) {
            if (warned) {
                /* The episode began within a period before moved_at and
                 * ended within a period before now. */
                unsigned k = h->next_slot;

                __atomic_store_n(&h->ep[k].len, now - moved_at,
                    __ATOMIC_RELAXED);
                __atomic_store_n(&h->ep[k].ended, 1, __ATOMIC_RELEASE);
                __atomic_add_fetch(&h->nended, 1, __ATOMIC_RELEASE);
                h->next_slot = (k + 1) % EPISODES;
            }
            last = s;
            moved_at = now;
            warned = 0;
            continue;
        }
        /* Not moved since moved_at, two checks in a row: stuck for at
         * least now - moved_at, which is two periods or more. */
        if (warned || now - moved_at < h->threshold)
            continue;
        warned = 1;
        __atomic_store_n(&h->loud,
            diesel_log_level("diesel") <= DIESEL_LOG_WARNING,
            __ATOMIC_RELAXED);
        __atomic_store_n(&h->stuck_at, s, __ATOMIC_RELAXED);
        __atomic_store_n(&h->since, moved_at, __ATOMIC_RELAXED);
        __atomic_store_n(&h->slot, h->next_slot, __ATOMIC_RELAXED);
        pthread_kill(h->loop_thread, SIG_HOG);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- Starting and stopping ----------------------------------------------- */

static int
start(struct diesel_loop *l, int64_t ms)
{
    struct diesel__hog *h;
    pthread_condattr_t ca;
    int err;

    if (install_handler() != 0)
        return -1;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -1;
    h->threshold = ms * 1000000;
    h->period = (h->threshold + 1) / 2;
    h->loop_thread = pthread_self();
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    l->hog = h;
    err = pthread_create(&h->watchdog, NULL, watchdog, l);
    if (err != 0) {
        l->hog = NULL;
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
        diesel_log("diesel", DIESEL_LOG_ERROR,
            "hog warnings are off: cannot start the watchdog thread: %s",
            strerror(err));
        errno = err;
        return -1;
    }
    return 0;
}

static void
stop(struct diesel_loop *l)
{
    struct diesel__hog *h = l->hog;

    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->watchdog, NULL);
    /* A signal it sent was delivered at the latest when the join's
     * system call returned; the handler finds l->hog NULL from now on. */
    diesel__hog_settle(l);
    __atomic_store_n(&l->hog, NULL, __ATOMIC_RELAXED);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void
diesel__hog_loop_start(struct diesel_loop *l)
{
    int64_t ms = __atomic_load_n(&threshold_ms, __ATOMIC_RELAXED);

    if (ms < 0) {
        const char *env = getenv("DIESEL_HOG_MS");
        char *end;
        long long v;

        if (env == NULL || *env == '\0')
            return;
        errno = 0;
        v = strtoll(env, &end, 10);
        if (errno != 0 || *end != '\0' || v < 0) {
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "DIESEL_HOG_MS=%s is not a number of milliseconds: hog "
                "warnings are off", env);
            return;
        }
        ms = v;
    }
    if (ms > 0)
        start(l, ms);
}

void
diesel__hog_loop_end(struct diesel_loop *l)
{
    stop(l);
}

int64_t
diesel__hog_threshold(struct diesel_loop *l)
{
    return l->hog != NULL ? l->hog->threshold / 1000000 : 0;
}

/* Keep the DIESEL__RUNS_TOP longest runs, one entry per green thread. */
static void
runs_add(struct diesel_loop *l, int64_t id, const char *name, int64_t len)
{
    struct diesel__run *r = l->runs;
    size_t i, n = DIESEL__RUNS_TOP;

    for (i = 0; i < n && r[i].len > 0 && r[i].id != id; i++)
        ;
    if (i < n && r[i].len > 0) {      /* its entry: grows only */
        if (r[i].len >= len)
            return;
    } else if (i == n) {              /* full: replace the shortest */
        i = n - 1;
        if (r[i].len >= len)
            return;
    }
    r[i].id = id;
    r[i].len = len;
    memcpy(r[i].name, name, sizeof(r[i].name));
    /* Bubble it up to keep the longest first. */
    for (; i > 0 && r[i - 1].len < r[i].len; i--) {
        struct diesel__run tmp = r[i - 1];
        r[i - 1] = r[i];
        r[i] = tmp;
    }
}

void
diesel__hog_settle(struct diesel_loop *l)
{
    struct diesel__hog *h = l->hog;

    if (__atomic_load_n(&h->nended, __ATOMIC_ACQUIRE) == h->nsettled)
        return;
    h->nsettled = __atomic_load_n(&h->nended, __ATOMIC_ACQUIRE);
    for (unsigned k = 0; k < EPISODES; k++) {
        struct diesel__task *t;
        int64_t id, len;

        if (!__atomic_load_n(&h->ep[k].ended, __ATOMIC_ACQUIRE))
            continue;
        len = __atomic_load_n(&h->ep[k].len, __ATOMIC_RELAXED);
        __atomic_store_n(&h->ep[k].ended, 0, __ATOMIC_RELAXED);
        id = __atomic_exchange_n(&h->ep[k].id, 0, __ATOMIC_RELAXED);
        if (id <= 0)
            continue;  /* the loop's own code, or ended before the signal */
        t = diesel__task_find(l, id);
        if (t != NULL && t->longest_run < len)
            t->longest_run = len;
        runs_add(l, id, h->ep[k].name, len);
    }
}

int
diesel_loop_hog_warn(int64_t ms)
{
    struct diesel_loop *l = diesel__loop;

    if (ms < 0 || ms > INT64_MAX / 1000000) {
        errno = EINVAL;
        return -1;
    }
    __atomic_store_n(&threshold_ms, ms, __ATOMIC_RELAXED);
    if (l == NULL)
        return 0;
    stop(l);
    return ms > 0 ? start(l, ms) : 0;
}
