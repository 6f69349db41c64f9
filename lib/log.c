/*
 * log.c: named loggers in diesel's line format,
 *
 *   [2013/03/20 04:26:38] {dummy} INFO:sleeping
 *
 * Each line goes out in one write(2), so lines from several threads or
 * processes sharing the descriptor do not mix.  Loggers are few and
 * their levels change rarely: a small array under a mutex will do.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOGGER_NAME_MAX 64
#define LINE_MAX_BYTES 4096

/*
 * A logger that was given a level, or that logged: the console's log
 * lists every logger in use, with its effective level.  One that only
 * logged takes the default (own 0).  At most USED_MAX of those are kept,
 * so that a program making up logger names cannot grow the array
 * without end.
 */
#define USED_MAX 256
struct logger {
    char name[LOGGER_NAME_MAX];
    int level;
    int own;             /* the level is its own, not the default */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct logger *loggers;
static size_t nloggers, cap_loggers, nused;
static int default_level = DIESEL_LOG_INFO;
static int log_fd = 2;
static long utc_offset;          /* seconds east of UTC, for signal-safe
                                    timestamps; set at each normal log */

/*
 * The last lines written, for the console's `log tail`: a ring of
 * keep_max slots, each a malloc'd copy of a line (without its newline),
 * reused in turn.  Slots are allocated as lines come, so a quiet program
 * pays for the lines it wrote only.  Under the lock, like the levels.
 * Lines logged from a signal handler are not kept (no locks, no malloc
 * there).
 */
struct kept {
    char *text;                  /* malloc'd, NUL-terminated, or NULL */
    size_t cap;                  /* its allocation */
};
static struct kept *kept;        /* keep_max slots, or NULL */
static size_t keep_max = DIESEL__LOG_KEEP_DEFAULT;
static uint64_t kept_total;      /* lines ever kept; the next goes to
                                    kept[kept_total % keep_max] */

static const struct {
    int level;
    const char *name;
} names[] = {
    { DIESEL_LOG_DEBUG, "DEBUG" },
    { DIESEL_LOG_INFO, "INFO" },
    { DIESEL_LOG_WARNING, "WARNING" },
    { DIESEL_LOG_ERROR, "ERROR" },
    { DIESEL_LOG_CRITICAL, "CRITICAL" },
};

const char *
diesel_log_level_name(int level)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].level == level)
            return names[i].name;
    }
    return "LEVEL";
}

int
diesel_log_level_parse(const char *name)
{
    if (name != NULL) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (strcasecmp(names[i].name, name) == 0)
                return names[i].level;
        }
        if (strcasecmp(name, "WARN") == 0)
            return DIESEL_LOG_WARNING;
    }
    errno = EINVAL;
    return -1;
}

static struct logger *
find(const char *name)
{
    for (size_t i = 0; i < nloggers; i++) {
        if (strcmp(loggers[i].name, name) == 0)
            return &loggers[i];
    }
    return NULL;
}

static int
level_of(const char *logger)
{
    struct logger *lg = logger ? find(logger) : NULL;

    return lg && lg->own ? lg->level : default_level;
}

/* A new entry at the end of the array (under lock), NULL and ENOMEM. */
static struct logger *
add(const char *logger)
{
    struct logger *lg;

    if (nloggers == cap_loggers) {
        size_t cap = cap_loggers ? cap_loggers * 2 : 8;
        struct logger *a = realloc(loggers, cap * sizeof(*a));

        if (a == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        loggers = a;
        cap_loggers = cap;
    }
    lg = &loggers[nloggers++];
    strcpy(lg->name, logger);
    lg->level = default_level;
    lg->own = 0;
    return lg;
}

int
diesel_log_level(const char *logger)
{
    int level;

    pthread_mutex_lock(&lock);
    level = level_of(logger);
    pthread_mutex_unlock(&lock);
    return level;
}

static int
valid_level(int level)
{
    return level >= DIESEL_LOG_DEBUG && level <= DIESEL_LOG_CRITICAL;
}

int
diesel_log_level_set(const char *logger, int level)
{
    struct logger *lg;
    int rc = 0;

    if (!valid_level(level) ||
        (logger != NULL && (logger[0] == '\0' ||
        strlen(logger) >= LOGGER_NAME_MAX))) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&lock);
    if (logger == NULL) {
        default_level = level;
    } else if ((lg = find(logger)) != NULL ||
        (lg = add(logger)) != NULL) {
        lg->level = level;
        lg->own = 1;
    } else {
        rc = -1;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void
diesel__log_foreach(void (*fn)(const char *name, int level, int own,
    void *), void *arg)
{
    struct logger *copy;
    size_t n;
    int def;

    /* Copy, so that fn runs without the lock (it may log, or set). */
    pthread_mutex_lock(&lock);
    def = default_level;
    n = nloggers;
    copy = n ? malloc(n * sizeof(*copy)) : NULL;
    if (copy != NULL)
        memcpy(copy, loggers, n * sizeof(*copy));
    else
        n = 0;
    pthread_mutex_unlock(&lock);
    fn(NULL, def, 1, arg);
    for (size_t i = 0; i < n; i++)
        fn(copy[i].name, copy[i].own ? copy[i].level : def, copy[i].own,
            arg);
    free(copy);
}

int
diesel_log_fd_set(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    __atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
    return 0;
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Copy a line into the ring; a line that finds no memory is not kept. */
static void
keep(const char *line, size_t len)
{
    struct kept *k;

    pthread_mutex_lock(&lock);
    if (keep_max == 0)
        goto out;
    if (kept == NULL && (kept = calloc(keep_max, sizeof(*kept))) == NULL)
        goto out;
    k = &kept[kept_total % keep_max];
    if (k->cap < len + 1) {
        char *t = realloc(k->text, len + 1);

        if (t == NULL)
            goto out;
        k->text = t;
        k->cap = len + 1;
    }
    memcpy(k->text, line, len);
    k->text[len] = '\0';
    kept_total++;
out:
    pthread_mutex_unlock(&lock);
}

static void
kept_free(void)
{
    for (size_t i = 0; kept != NULL && i < keep_max; i++)
        free(kept[i].text);
    free(kept);
    kept = NULL;
    kept_total = 0;
}

int
diesel_log_keep(size_t lines)
{
    if (lines > DIESEL__LOG_KEEP_MAX) {
        errno = EINVAL;
        return -1;
    }
    /* Changing the size forgets the lines kept: simpler than moving
     * them, and the size is set once, at start, in practice. */
    pthread_mutex_lock(&lock);
    if (lines != keep_max) {
        kept_free();
        keep_max = lines;
    }
    pthread_mutex_unlock(&lock);
    return 0;
}

size_t
diesel__log_tail(size_t n, void (*fn)(const char *line, void *), void *arg,
    struct diesel__log_kept *info)
{
    size_t have, i;

    pthread_mutex_lock(&lock);
    have = kept_total < keep_max ? (size_t)kept_total : keep_max;
    if (n > have)
        n = have;
    info->capacity = keep_max;
    info->kept = have;
    info->total = kept_total;
    for (i = 0; i < n; i++)
        fn(kept[(kept_total - n + i) % keep_max].text, arg);
    pthread_mutex_unlock(&lock);
    return n;
}

uint64_t
diesel__log_since(uint64_t seq, void (*fn)(const char *line, void *),
    void *arg, uint64_t *lost)
{
    uint64_t first, total;

    pthread_mutex_lock(&lock);
    total = kept_total;
    first = total > keep_max ? total - keep_max : 0;
    *lost = seq < first ? first - seq : 0;
    for (uint64_t i = seq > first ? seq : first; i < total; i++)
        fn(kept[i % keep_max].text, arg);
    pthread_mutex_unlock(&lock);
    return total;
}

void
diesel_vlog(const char *logger, int level, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES], msg[LINE_MAX_BYTES];
    struct logger *lg;
    struct timespec ts;
    struct tm tm;
    size_t n;
    int m, saved = errno;

    if (logger == NULL)
        logger = "diesel";
    pthread_mutex_lock(&lock);
    lg = find(logger);
    m = level < (lg != NULL && lg->own ? lg->level : default_level);
    /* Remember it for the console's log (a failure only leaves it out). */
    if (lg == NULL && nused < USED_MAX && logger[0] != '\0' &&
        strlen(logger) < LOGGER_NAME_MAX && add(logger) != NULL)
        nused++;
    pthread_mutex_unlock(&lock);
    if (m)
        goto out;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    __atomic_store_n(&utc_offset, (long)tm.tm_gmtoff, __ATOMIC_RELAXED);
    n = strftime(line, sizeof(line), "[%Y/%m/%d %H:%M:%S] ", &tm);
    /* The logger's name and the message are escaped (escape.c): one
     * record is one line whatever names and text it quotes. */
    line[n++] = '{';
    (void)diesel__escape(line, n + 4 * LOGGER_NAME_MAX, &n, logger,
        strlen(logger), DIESEL__ESC_TEXT);
    m = snprintf(line + n, sizeof(line) - n, "} %s:",
        diesel_log_level_name(level));
    if (m > 0)
        n += (size_t)m;
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m > 0)
        (void)diesel__escape(line, sizeof(line) - 1, &n, msg,
            (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1,
            DIESEL__ESC_TEXT);
    /* A line that did not fit is cut and still ends with a newline. */
    line[n++] = '\n';
    write_all(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, n);
    keep(line, n - 1);
out:
    errno = saved;
}

void
diesel_log(const char *logger, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diesel_vlog(logger, level, fmt, ap);
    va_end(ap);
}

int
diesel__log_fd(void)
{
    return __atomic_load_n(&log_fd, __ATOMIC_RELAXED);
}

/* ---- Signal-safe output ------------------------------------------------- */

size_t
diesel__fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t
diesel__fmt_hex(char *buf, uint64_t v)
{
    char tmp[16];
    size_t n = 0, i;

    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    for (i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static size_t
fmt_2(char *buf, unsigned v)
{
    buf[0] = (char)('0' + v / 10 % 10);
    buf[1] = (char)('0' + v % 10);
    return 2;
}

/*
 * The civil date of a day count since 1970-01-01 (Howard Hinnant's
 * days_from_civil, inverted), since localtime_r is not signal-safe.
 */
static void
civil(int64_t days, int *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

void
diesel__log_signal_safe(const char *logger, int level, const char *msg)
{
    char line[512];
    size_t n = 0, len;
    struct timespec ts;
    int64_t t, days, secs;
    int y;
    unsigned mo, d;
    const char *lv = diesel_log_level_name(level);

    clock_gettime(CLOCK_REALTIME, &ts);
    t = (int64_t)ts.tv_sec + __atomic_load_n(&utc_offset, __ATOMIC_RELAXED);
    days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    secs = t - days * 86400;
    civil(days, &y, &mo, &d);
    line[n++] = '[';
    n += diesel__fmt_u64(line + n, (uint64_t)y);
    line[n++] = '/';
    n += fmt_2(line + n, mo);
    line[n++] = '/';
    n += fmt_2(line + n, d);
    line[n++] = ' ';
    n += fmt_2(line + n, (unsigned)(secs / 3600));
    line[n++] = ':';
    n += fmt_2(line + n, (unsigned)(secs / 60 % 60));
    line[n++] = ':';
    n += fmt_2(line + n, (unsigned)(secs % 60));
    line[n++] = ']';
    line[n++] = ' ';
    line[n++] = '{';
    len = strlen(logger);
    (void)diesel__escape(line, 100, &n, logger, len, DIESEL__ESC_TEXT);
    line[n++] = '}';
    line[n++] = ' ';
    len = strlen(lv);
    memcpy(line + n, lv, len);
    n += len;
    line[n++] = ':';
    /* Escaped: the message quotes green threads' names. */
    (void)diesel__escape(line, sizeof(line) - 1, &n, msg, strlen(msg),
        DIESEL__ESC_TEXT);
    line[n++] = '\n';
    write_all(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, n);
}
