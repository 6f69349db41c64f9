/*
 * console_builtins.c: the console's built-in inspection commands.
 *
 * Each runs inside the loop, on the green thread that serves the console
 * session, and only reads what the loop recorded (struct diesel_loop,
 * struct diesel__task): no command yields, so nothing changes under it.
 * Costs: one pass over the green threads (tasks, stacks), one backtrace
 * per green thread (stacks: no system call, see backtrace.c), one
 * mincore(2) per stack (mem), one getpeername(2) per green thread waiting
 * on a descriptor (tasks), a few system calls per descriptor (fds).  man/diesel-console.7 refers to this
 * comment for the formats, which are these (text form, then --json).
 *
 * The samples below are exact output, so some lines are wider than 80
 * columns.
 *
 * Every command takes --json anywhere among its arguments (or the
 * console's own --json flag, diesel_console_json()): its reply is then
 * one JSON document (RFC 8259), possibly over several lines; strings are
 * escaped so that the reply is printable ASCII plus valid UTF-8 (control
 * bytes as \uXXXX; a byte that is not valid UTF-8 as \u00XX).  Durations
 * are seconds ("_s", a number with 3 decimals), sizes are bytes; null
 * means unknown.  Unknown options are an ERR.
 *
 * pid
 *     pid         4242
 *     ppid        4200
 *     user        alice (uid 1000)         [, effective bob (uid 1001)]
 *     executable  /usr/local/bin/app       (or: unknown)
 *     uptime      loop 12.345s, process 13.456s   (- when unknown)
 *   {"pid":4242,"ppid":4200,"user":"alice","uid":1000,"euid":1000,
 *    "executable":"/usr/local/bin/app","loop_uptime_s":12.345,
 *    "process_uptime_s":13.456}
 *
 * tasks
 *   One header line, one line per green thread by id, one summary line:
 *     ID      NAME             STATE    FOR       SWITCHES  STACK       WAITS ON                     SPAWNED AT
 *     1       main             waiting  2.001s    3         1.2K/131K   join 4 (worker)              -
 *     2       sleeper          sleeping 2.000s    1         0.1K/131K   sleep, timer 8.000s          test/check_builtins.c:88
 *     3       reader           waiting  1.999s    1         0.2K/131K   fd 7 read, peer 127.0.0.1:5000, timer 1.500s   handler+0x1f (app)
 *     3 green threads: 0 running, 0 ready, 2 waiting, 1 sleeping
 *   STATE is running, ready, waiting or sleeping.  FOR is how long it has
 *   waited (- unless waiting or sleeping).  STACK is the stack in use now
 *   (from the saved stack pointer) over its size, in KiB (the size is
 *   what the green thread can use: the size asked for, plus what is left
 *   of the page that holds its record).  WAITS ON is one
 *   of: "sleep", "fd N read|write|read+write" with ", peer ADDR" for a
 *   connected socket, "join ID" with " (NAME)" while that one lives, or
 *   the waiter's own description (struct diesel__wait.what); then
 *   ", timer S" when the wait has a timeout, S being the time left.
 *   SPAWNED AT is the file:line of the diesel_task_spawn() call, else the
 *   symbolized caller of diesel_task_spawn, else -.  Columns are padded,
 *   never cut: split on two or more spaces.
 *   {"now_s":12.3,"count":3,"tasks":[
 *    {"id":2,"name":"sleeper","state":"sleeping",
 *     "waits_on":"sleep, timer 8.000s",
 *     "wait":{"kind":"sleep","timer_s":8.000},
 *     "for_s":2.000,"switches":1,"stack_used":112,"stack_size":131072,
 *     "spawned_at":"test/check_builtins.c:88","age_s":2.001,
 *     "cancelled":false},
 *    ...]}
 *   wait is null when not waiting; else kind is "sleep", "fd" (with "fd",
 *   "events": "read"|"write"|"read+write", and "peer" when known), "join"
 *   (with "target"), or "other" (with "what"); "timer_s" only with a
 *   timeout.
 *
 * stacks [ID]
 *   diesel's print_greenlet_stacks: the backtrace of every green thread
 *   (or of green thread ID), identical ones grouped, the largest group
 *   first (then by lowest id).  Per group:
 *     [50] === sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, ... ===
 *         ids: 3-52
 *         diesel__task_park+0x14c (app)
 *         diesel_sleep+0x4e (app)
 *         sleeper+0x12 (app)
 *         trampoline+0x31 (app)
 *         ??+0x519c0 (libc.so.6)
 *   The header names at most 8 green threads, then "...".  "ids:" lists
 *   them all as ranges, cut with "..." past 200 bytes.  A frame is
 *   "FUNC+0xOFF (MODULE)" (MODULE: the file's last path component), or
 *   "??+0xOFF (MODULE)" when the function is unknown, OFF then being the
 *   offset in the module (addr2line -e MODULE 0xOFF), or "0xPC" outside
 *   any module.  The innermost frame is first: where the green thread
 *   resumes; it is compared by function when grouping (where in the
 *   library's parking code a green thread parked says nothing about it),
 *   and shown as the first member's.  A group whose stack was not
 *   unwound has one line instead of (or before) its frames:
 *         (not started)
 *         (running: this green thread serves the console)
 *         (frame-pointer walk: unwinding failed, may be incomplete)
 *         (no backtraces on this CPU)
 *         (saved registers damaged: stack pointer outside the stack or resume pc outside the program)
 *   Last: "N green threads, G distinct stacks".
 *   {"count":53,"groups":[
 *    {"count":50,"how":"unwound","ids":[3,4,...],"names":["sleeper",...],
 *     "frames":[{"pc":"0x55d0c0a0b15c","func":"diesel__task_park",
 *                "offset":332,"module":"/path/app","module_offset":"0x515c"},
 *               ...]},
 *    ...]}
 *   how: "unwound", "frame pointers", "running", "not started",
 *   "unsupported", "damaged".  func and offset are null when unknown,
 *   module and module_offset when outside any module.
 *
 * stats
 *     uptime            12.345s
 *     iterations        1234
 *     switches          5678
 *     polls             910
 *     fds watched       3
 *     fd waiters        2
 *     timers pending    50
 *     green threads     53 (60 spawned, 2 ready, 12 pooled stacks)
 *     console sessions  1
 *     dropped signals   0
 *     backend           epoll
 *     switch            x86_64
 *   {"uptime_s":12.345,"iterations":1234,"switches":5678,"polls":910,
 *    "fds_watched":3,"fd_waiters":2,"timers_pending":50,
 *    "green_threads":53,"spawned":60,"ready":2,"pooled_stacks":12,
 *    "console_sessions":1,"dropped_signals":0,"backend":"epoll",
 *    "switch":"x86_64"}
 *   dropped signals: console requests lost (self-pipe full).
 *
 * mem
 *     rss               12.3 MiB (peak 14.0 MiB)
 *     malloc            1.2 MiB in use, 300.0 KiB free, 0 B mmapped, 1.5 MiB arena (glibc mallinfo2)
 *     stacks reserved   10001 stacks, 1.3 GiB (all loops of the process)
 *     stacks committed  40.0 MiB: 39.1 MiB in 10001 green threads, 900.0 KiB in 12 pooled stacks
 *     mappings          10050 of 65530 (vm.max_map_count)
 *     guard pages       madvise (MADV_GUARD_INSTALL: no extra mapping per stack)
 *   Sizes: B, KiB, MiB, GiB with one decimal; "unknown" where the system
 *   cannot tell.  Committed is resident (mincore), record page included;
 *   reserved is address space (stack_stats).  The guard is "madvise" or
 *   "mprotect (one more mapping per stack)".
 *   {"rss":12902400,"rss_peak":14680064,
 *    "malloc":{"source":"glibc mallinfo2","in_use":..,"free":..,
 *              "mmapped":..,"arena":..,"releasable":..},
 *    "stacks":{"mapped":10001,"reserved":..,"committed":..,
 *              "green_threads":10001,"committed_green_threads":..,
 *              "pooled":12,"committed_pooled":..},
 *    "mappings":10050,"max_map_count":65530,"guard":"madvise"}
 *
 * fds
 *     FD     TYPE     WHAT                                   WAITER
 *     0      tty      /dev/pts/0
 *     3      socket   tcp 127.0.0.1:5000 -> 127.0.0.1:43222  read: 12 (conn)
 *     4      socket   tcp listening 0.0.0.0:8080             read: 2 (acceptor)
 *     5      socket   unix unix:/run/app.sock -> unix:
 *     6      pipe     pipe:[123456]
 *     7      file     /var/log/app.log
 *     8      other    anon_inode:[eventpoll]
 *     9 descriptors open
 *   TYPE: socket, pipe, file, dir, tty, char, block, other.  For a
 *   socket WHAT is PROTO [listening] LOCAL [-> PEER]: PROTO tcp, udp,
 *   raw, unix, unix-dgram, unix-seqpacket (or "family N"); addresses
 *   127.0.0.1:5000, [::1]:5000, unix:/path, unix:@abstract, unix: when
 *   unnamed.  Otherwise WHAT is what the descriptor refers to, where the
 *   system tells (/proc/self/fd), else -.  WAITER: the green threads
 *   parked on it in the loop, "read: ID (NAME)" and/or "write: ...".
 *   {"count":9,"fds":[{"fd":3,"type":"socket","proto":"tcp",
 *    "listening":false,"local":"127.0.0.1:5000","peer":"127.0.0.1:43222",
 *    "path":null,"reader":{"id":12,"name":"conn"},"writer":null},...]}
 *
 * log [LOGGER LEVEL]
 *   Without arguments, the levels: the default first, as "*", then each
 *   logger that has a level of its own:
 *     *          INFO      (the default)
 *     diesel     WARNING
 *   With LOGGER LEVEL, set it (LOGGER "*" sets the default; LEVEL is
 *   DEBUG, INFO, WARNING, ERROR or CRITICAL, any case), and reply
 *     dummy DEBUG (was INFO)
 *   {"default":"INFO","loggers":{"diesel":"WARNING"}}
 *   {"logger":"dummy","level":"DEBUG","was":"INFO"}
 *
 * cancel ID
 *     cancelled green thread 12 (sleeper)
 *   {"cancelled":12,"name":"sleeper"}
 *   ERR "no green thread 12" when there is none; ERR for an ID that is
 *   not a positive decimal number, and for the green thread serving this
 *   console session (use quit).
 *
 * Errors are one line, e.g. "usage: stacks [--json] [ID]".  When the
 * reply does not fit the console's output limit, the command stops and
 * fails with "reply too long (over the console's output limit)".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include "backtrace.h"
#include "console_builtins.h"
#include "internal.h"

/* ---- Writing the reply --------------------------------------------------- */

/* A reply under construction: the first failed write sticks. */
struct w {
    struct diesel_console_out *out;
    int json;
    int full;            /* the output limit was reached */
};

static void DIESEL_PRINTF(2, 3)
put(struct w *w, const char *fmt, ...)
{
    char small[512], *big = NULL, *p = small;
    va_list ap;
    int n;

    if (w->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(small)) {
        big = malloc((size_t)n + 1);
        if (big == NULL) {
            w->full = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        p = big;
    }
    if (diesel_console_printf(w->out, "%s", p) < 0)
        w->full = 1;
    free(big);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned c = s[0];

    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
            (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JSON string, quoted; null for NULL. */
static void
jstr(struct w *w, const char *s)
{
    char buf[256 + 16];
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL) {
        put(w, "null");
        return;
    }
    buf[n++] = '"';
    while (*p != '\0') {
        size_t k;

        if (n > 256) {
            put(w, "%.*s", (int)n, buf);
            n = 0;
        }
        if (*p == '"' || *p == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)*p++;
        } else if (*p == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
            p++;
        } else if (*p == '\t') {
            buf[n++] = '\\';
            buf[n++] = 't';
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            n += (size_t)snprintf(buf + n, 8, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            buf[n++] = (char)*p++;
        } else if ((k = utf8_len(p)) != 0) {
            memcpy(buf + n, p, k);
            n += k;
            p += k;
        } else {
            n += (size_t)snprintf(buf + n, 8, "\\u%04x", *p++);
        }
    }
    buf[n++] = '"';
    put(w, "%.*s", (int)n, buf);
}

/* Finish a command: 0, or -1 with the error for a reply over the limit. */
static int
done(struct w *w)
{
    if (w->full) {
        diesel_console_error(w->out,
            "reply too long (over the console's output limit)");
        return -1;
    }
    return 0;
}

static int DIESEL_PRINTF(2, 3)
fail(struct diesel_console_out *out, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diesel_console_error(out, "%s", msg);
    return -1;
}

/*
 * Take --json out of argv (anywhere), and reject other options.  The
 * other arguments are left in pos (at most max); returns their count, or
 * -1 after setting the error to usage.
 */
static int
args(struct diesel_console_out *out, struct w *w, int argc, char **argv,
    char **pos, int max, const char *usage)
{
    int n = 0;

    w->out = out;
    w->json = diesel_console_json(out);
    w->full = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            w->json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return fail(out, "unknown option '%.64s'; usage: %s", argv[i],
                usage);
        } else if (n == max) {
            return fail(out, "usage: %s", usage);
        } else {
            pos[n++] = argv[i];
        }
    }
    return n;
}

/* A green thread id: a positive decimal number; 0 if s is not one. */
static int64_t
parse_id(const char *s)
{
    char *end;
    long long v;

    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0)
        return 0;
    return (int64_t)v;
}

static struct diesel_loop *
loop_or_fail(struct diesel_console_out *out)
{
    if (diesel__loop == NULL)
        fail(out, "no loop runs on this thread");
    return diesel__loop;
}

/* ---- Formatting helpers -------------------------------------------------- */

static double
secs(int64_t ns)
{
    return (double)ns / 1e9;
}

static void
fmt_bytes(char *buf, size_t size, int64_t b)
{
    static const char *unit[] = { "KiB", "MiB", "GiB", "TiB" };
    double v = (double)b;
    int u = -1;

    if (b < 0) {
        snprintf(buf, size, "unknown");
        return;
    }
    if (b < 1024) {
        snprintf(buf, size, "%lld B", (long long)b);
        return;
    }
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, unit[u]);
}

/* A JSON number or null for a negative (unknown) figure. */
static void
jnum(struct w *w, int64_t v)
{
    if (v < 0)
        put(w, "null");
    else
        put(w, "%lld", (long long)v);
}

static void
fmt_sockaddr(char *buf, size_t size, const struct sockaddr_storage *ss,
    socklen_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? (size_t)len - off : 0;

        if (n > sizeof(un->sun_path))
            n = sizeof(un->sun_path);
        if (n == 0) {
            snprintf(buf, size, "unix:");
        } else if (un->sun_path[0] == '\0') {
            /* Abstract (Linux): the name is bytes, not a string. */
            size_t k = 0;
            k += (size_t)snprintf(buf, size, "unix:@");
            for (size_t i = 1; i < n && k + 5 < size; i++) {
                unsigned char c = (unsigned char)un->sun_path[i];
                if (c >= 0x20 && c < 0x7f)
                    buf[k++] = (char)c;
                else
                    k += (size_t)snprintf(buf + k, size - k, "\\x%02x", c);
            }
            buf[k < size ? k : size - 1] = '\0';
        } else {
            snprintf(buf, size, "unix:%.*s", (int)strnlen(un->sun_path, n),
                un->sun_path);
        }
    } else {
        snprintf(buf, size, "family %d", ss->ss_family);
    }
}

/* The peer of a connected socket, or -1. */
static int
peer_of(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    fmt_sockaddr(buf, size, &ss, len);
    return 0;
}

static const char *
events_name(int ev)
{
    switch (ev & (DIESEL_READ | DIESEL_WRITE)) {
    case DIESEL_READ: return "read";
    case DIESEL_WRITE: return "write";
    case DIESEL_READ | DIESEL_WRITE: return "read+write";
    }
    return "none";
}

/* Function+offset (module) for a code address, into buf. */
static void
fmt_frame(struct diesel__symtab *tab, const void *pc, char *buf,
    size_t size)
{
    struct diesel__sym s;

    if (diesel__sym_lookup(tab, pc, &s) != 0)
        snprintf(buf, size, "0x%llx", (unsigned long long)(uintptr_t)pc);
    else if (s.func != NULL)
        snprintf(buf, size, "%s+0x%llx (%s)", s.func,
            (unsigned long long)s.func_off, s.module_base);
    else
        snprintf(buf, size, "??+0x%llx (%s)",
            (unsigned long long)s.module_off, s.module_base);
}

/* Live green threads of l, sorted by id, in a malloc'd array. */
struct tasklist {
    struct diesel__task **t;
    size_t n, cap;
};

static void
collect(struct diesel__task *t, void *arg)
{
    struct tasklist *tl = arg;

    if (tl->n < tl->cap)
        tl->t[tl->n++] = t;
}

static int
cmp_task_id(const void *a, const void *b)
{
    const struct diesel__task *x = *(struct diesel__task *const *)a;
    const struct diesel__task *y = *(struct diesel__task *const *)b;

    return (x->id > y->id) - (x->id < y->id);
}

static int
tasks_sorted(struct diesel_loop *l, struct tasklist *tl)
{
    tl->cap = (size_t)l->ntasks;
    tl->n = 0;
    tl->t = malloc((tl->cap ? tl->cap : 1) * sizeof(*tl->t));
    if (tl->t == NULL)
        return -1;
    diesel__task_foreach(l, collect, tl);
    qsort(tl->t, tl->n, sizeof(*tl->t), cmp_task_id);
    return 0;
}

/* ---- pid ----------------------------------------------------------------- */

static void
user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    size_t len = 16384;
    char *tmp = malloc(len);

    snprintf(buf, size, "?");
    if (tmp != NULL && getpwuid_r(uid, &pw, tmp, len, &res) == 0 &&
        res != NULL)
        snprintf(buf, size, "%s", pw.pw_name);
    free(tmp);
}

int
diesel__cmd_pid(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct w w;
    char user[256], euser[256], exe[4096];
    uid_t uid = getuid(), euid = geteuid();
    double age = diesel__platform_process_age();
    int64_t up = diesel__loop ? diesel__now_ns() - diesel__loop->started :
        -1;
    int have_exe;

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0, "pid [--json]") < 0)
        return -1;
    /* The process's start time comes in clock ticks (10 ms): it may seem
     * younger than its loop by that much, which it cannot be. */
    if (age >= 0 && up >= 0 && age < secs(up))
        age = secs(up);
    user_name(uid, user, sizeof(user));
    if (euid != uid)
        user_name(euid, euser, sizeof(euser));
    have_exe = diesel__platform_exe_path(exe, sizeof(exe)) == 0;
    if (w.json) {
        put(&w, "{\"pid\":%ld,\"ppid\":%ld,\"user\":", (long)getpid(),
            (long)getppid());
        jstr(&w, user);
        put(&w, ",\"uid\":%lu,\"euid\":%lu,\"executable\":",
            (unsigned long)uid, (unsigned long)euid);
        jstr(&w, have_exe ? exe : NULL);
        if (up >= 0)
            put(&w, ",\"loop_uptime_s\":%.3f", secs(up));
        else
            put(&w, ",\"loop_uptime_s\":null");
        if (age >= 0)
            put(&w, ",\"process_uptime_s\":%.3f}\n", age);
        else
            put(&w, ",\"process_uptime_s\":null}\n");
        return done(&w);
    }
    put(&w, "pid         %ld\n", (long)getpid());
    put(&w, "ppid        %ld\n", (long)getppid());
    put(&w, "user        %s (uid %lu)", user, (unsigned long)uid);
    if (euid != uid)
        put(&w, ", effective %s (uid %lu)", euser, (unsigned long)euid);
    put(&w, "\nexecutable  %s\n", have_exe ? exe : "unknown");
    put(&w, "uptime      loop ");
    if (up >= 0)
        put(&w, "%.3fs", secs(up));
    else
        put(&w, "-");
    if (age >= 0)
        put(&w, ", process %.3fs\n", age);
    else
        put(&w, ", process -\n");
    return done(&w);
}

/* ---- tasks --------------------------------------------------------------- */

/* What t waits on, in words (see the format above); "-" if nothing. */
static void
describe_wait(struct diesel_loop *l, const struct diesel__task *t,
    int64_t now, char *buf, size_t size)
{
    const struct diesel__wait *wt = &t->wait;
    size_t n = 0;
    char peer[160];

    buf[0] = '\0';
    if (t->state != DIESEL__WAITING && t->state != DIESEL__SLEEPING) {
        snprintf(buf, size, "-");
        return;
    }
    switch (wt->kind) {
    case DIESEL__WAIT_SLEEP:
        n = (size_t)snprintf(buf, size, "sleep");
        break;
    case DIESEL__WAIT_FD:
        n = (size_t)snprintf(buf, size, "fd %d %s", wt->fd,
            events_name(wt->events));
        if (peer_of(wt->fd, peer, sizeof(peer)) == 0 && n < size)
            n += (size_t)snprintf(buf + n, size - n, ", peer %s", peer);
        break;
    case DIESEL__WAIT_JOIN: {
        struct diesel__task *target = diesel__task_find(l, wt->target);

        n = (size_t)snprintf(buf, size, "join %lld",
            (long long)wt->target);
        if (target != NULL && n < size)
            n += (size_t)snprintf(buf + n, size - n, " (%s)", target->name);
        break;
    }
    case DIESEL__WAIT_OTHER:
        n = (size_t)snprintf(buf, size, "%s", wt->what ? wt->what : "other");
        break;
    case DIESEL__WAIT_NONE:
        n = (size_t)snprintf(buf, size, "-");
        break;
    }
    if (wt->deadline >= 0 && n < size) {
        int64_t left = wt->deadline - now;
        snprintf(buf + n, size - n, ", timer %.3fs", secs(left > 0 ? left :
            0));
    }
}

static void
spawned_at(struct diesel__symtab **tab, const struct diesel__task *t,
    char *buf, size_t size)
{
    if (t->where != NULL) {
        snprintf(buf, size, "%s", t->where);
    } else if (t->spawn_caller != NULL) {
        if (*tab == NULL)
            *tab = diesel__sym_open();
        fmt_frame(*tab, t->spawn_caller, buf, size);
    } else {
        snprintf(buf, size, "-");
    }
}

static void
task_json(struct w *w, struct diesel_loop *l, struct diesel__task *t,
    int64_t now, const char *waits, const char *spawned)
{
    const struct diesel__wait *wt = &t->wait;
    int waiting = t->state == DIESEL__WAITING ||
        t->state == DIESEL__SLEEPING;
    char peer[160];

    (void)l;
    put(w, "{\"id\":%lld,\"name\":", (long long)t->id);
    jstr(w, t->name);
    put(w, ",\"state\":\"%s\",\"waits_on\":",
        diesel__task_state_name(t->state));
    jstr(w, waiting ? waits : NULL);
    put(w, ",\"wait\":");
    if (!waiting) {
        put(w, "null");
    } else {
        switch (wt->kind) {
        case DIESEL__WAIT_SLEEP:
            put(w, "{\"kind\":\"sleep\"");
            break;
        case DIESEL__WAIT_FD:
            put(w, "{\"kind\":\"fd\",\"fd\":%d,\"events\":\"%s\"", wt->fd,
                events_name(wt->events));
            if (peer_of(wt->fd, peer, sizeof(peer)) == 0) {
                put(w, ",\"peer\":");
                jstr(w, peer);
            }
            break;
        case DIESEL__WAIT_JOIN:
            put(w, "{\"kind\":\"join\",\"target\":%lld",
                (long long)wt->target);
            break;
        default:
            put(w, "{\"kind\":\"other\",\"what\":");
            jstr(w, wt->what ? wt->what : "other");
            break;
        }
        if (wt->deadline >= 0) {
            int64_t left = wt->deadline - now;
            put(w, ",\"timer_s\":%.3f", secs(left > 0 ? left : 0));
        }
        put(w, "}");
    }
    if (waiting)
        put(w, ",\"for_s\":%.3f", secs(now - wt->since));
    else
        put(w, ",\"for_s\":null");
    put(w, ",\"switches\":%llu,\"stack_used\":%zu,\"stack_size\":%zu,"
        "\"spawned_at\":", (unsigned long long)t->switches,
        diesel__bt_stack_used(t), (size_t)(t->stack_hi - t->stack_lo));
    jstr(w, strcmp(spawned, "-") == 0 ? NULL : spawned);
    put(w, ",\"age_s\":%.3f,\"cancelled\":%s}", secs(now - t->spawned_at),
        t->cancelled ? "true" : "false");
}

int
diesel__cmd_tasks(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct tasklist tl;
    struct diesel__symtab *tab = NULL;
    struct w w;
    int64_t now;
    size_t count[DIESEL__DONE + 1] = { 0 };

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0, "tasks [--json]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    if (tasks_sorted(l, &tl) != 0)
        return fail(out, "%s", strerror(ENOMEM));
    now = diesel__now_ns();
    if (w.json)
        put(&w, "{\"now_s\":%.3f,\"count\":%zu,\"tasks\":[\n",
            secs(now - l->started), tl.n);
    else
        put(&w, "%-7s %-16s %-8s %-9s %-9s %-11s %-28s %s\n", "ID", "NAME",
            "STATE", "FOR", "SWITCHES", "STACK", "WAITS ON", "SPAWNED AT");
    for (size_t i = 0; i < tl.n && !w.full; i++) {
        struct diesel__task *t = tl.t[i];
        char waits[512], spawned[512], forbuf[32], stack[32];

        describe_wait(l, t, now, waits, sizeof(waits));
        spawned_at(&tab, t, spawned, sizeof(spawned));
        if (t->state <= DIESEL__DONE)
            count[t->state]++;
        if (w.json) {
            task_json(&w, l, t, now, waits, spawned);
            put(&w, i + 1 < tl.n ? ",\n" : "\n");
            continue;
        }
        if (t->state == DIESEL__WAITING || t->state == DIESEL__SLEEPING)
            snprintf(forbuf, sizeof(forbuf), "%.3fs",
                secs(now - t->wait.since));
        else
            snprintf(forbuf, sizeof(forbuf), "-");
        snprintf(stack, sizeof(stack), "%.1fK/%.0fK",
            (double)diesel__bt_stack_used(t) / 1024,
            (double)(t->stack_hi - t->stack_lo) / 1024);
        put(&w, "%-7lld %-16s %-8s %-9s %-9llu %-11s %-28s %s\n",
            (long long)t->id, t->name, diesel__task_state_name(t->state),
            forbuf, (unsigned long long)t->switches, stack, waits, spawned);
    }
    if (w.json)
        put(&w, "]}\n");
    else
        put(&w, "%zu green threads: %zu running, %zu ready, %zu waiting, "
            "%zu sleeping\n", tl.n, count[DIESEL__RUNNING],
            count[DIESEL__READY], count[DIESEL__WAITING],
            count[DIESEL__SLEEPING]);
    diesel__sym_close(tab);
    free(tl.t);
    return done(&w);
}

/* ---- stacks -------------------------------------------------------------- */

#define NAMES_SHOWN 8        /* names in a group's header */
#define IDS_LINE_MAX 200     /* bytes of the "ids:" line */

/*
 * One green thread's stack.  Stacks are the same when their frames are,
 * except the innermost, the resume pc, which is compared by function:
 * it is always in the library's own parking code (diesel__task_park,
 * diesel_task_yield...), which reaches the switch from more than one
 * place (a direct hand-off to the next green thread, or back to the loop
 * every 128 switches), and where in it a green thread parked says
 * nothing about the green thread.
 */
struct dumped {
    int64_t id;
    const char *name;    /* the record's: no one runs during the command */
    enum diesel__bt_how how;
    int n;
    uintptr_t key0;      /* frame 0's function (its pc if unknown) */
    void **pc;           /* n frames, malloc'd */
};

static int
cmp_frames(const struct dumped *x, const struct dumped *y)
{
    if (x->how != y->how)
        return x->how < y->how ? -1 : 1;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    if (x->n > 0 && x->key0 != y->key0)
        return x->key0 < y->key0 ? -1 : 1;
    for (int i = 1; i < x->n; i++) {
        if (x->pc[i] != y->pc[i])
            return (uintptr_t)x->pc[i] < (uintptr_t)y->pc[i] ? -1 : 1;
    }
    return 0;
}

static int
cmp_dumped(const void *a, const void *b)
{
    const struct dumped *x = a, *y = b;
    int c = cmp_frames(x, y);

    if (c != 0)
        return c;
    return (x->id > y->id) - (x->id < y->id);
}

static int
same_stack(const struct dumped *x, const struct dumped *y)
{
    return cmp_frames(x, y) == 0;
}

struct group {
    size_t first, count;     /* a run of the sorted array */
    int64_t min_id;
};

static int
cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->min_id > y->min_id) - (x->min_id < y->min_id);
}

static const char *
how_name(enum diesel__bt_how how)
{
    switch (how) {
    case DIESEL__BT_UNWOUND: return "unwound";
    case DIESEL__BT_FRAMEPTR: return "frame pointers";
    case DIESEL__BT_RUNNING: return "running";
    case DIESEL__BT_NOT_STARTED: return "not started";
    case DIESEL__BT_UNSUPPORTED: return "unsupported";
    case DIESEL__BT_BAD: return "damaged";
    }
    return "?";
}

static const char *
how_note(enum diesel__bt_how how)
{
    switch (how) {
    case DIESEL__BT_UNWOUND: return NULL;
    case DIESEL__BT_FRAMEPTR:
        return "(frame-pointer walk: unwinding failed, may be incomplete)";
    case DIESEL__BT_RUNNING:
        return "(running: this green thread serves the console)";
    case DIESEL__BT_NOT_STARTED: return "(not started)";
    case DIESEL__BT_UNSUPPORTED: return "(no backtraces on this CPU)";
    case DIESEL__BT_BAD:
        return "(saved registers damaged: stack pointer outside the stack "
            "or resume pc outside the program)";
    }
    return NULL;
}

/* "ids: 3-52, 60" for a group (its members are sorted by id). */
static void
put_ids(struct w *w, const struct dumped *d, size_t n)
{
    char line[IDS_LINE_MAX + 64];
    size_t k = 0;

    k += (size_t)snprintf(line, sizeof(line), "    ids: ");
    for (size_t i = 0; i < n; ) {
        size_t j = i;

        while (j + 1 < n && d[j + 1].id == d[j].id + 1)
            j++;
        if (k > IDS_LINE_MAX) {
            k += (size_t)snprintf(line + k, sizeof(line) - k, ", ...");
            break;
        }
        k += (size_t)snprintf(line + k, sizeof(line) - k, "%s%lld",
            i ? ", " : "", (long long)d[i].id);
        if (j > i)
            k += (size_t)snprintf(line + k, sizeof(line) - k, "-%lld",
                (long long)d[j].id);
        i = j + 1;
    }
    put(w, "%s\n", line);
}

static void
put_group_text(struct w *w, struct diesel__symtab *tab,
    const struct dumped *d, size_t n)
{
    const char *note = how_note(d[0].how);

    put(w, "[%zu] === ", n);
    for (size_t i = 0; i < n && i < NAMES_SHOWN; i++)
        put(w, "%s%s", i ? ", " : "", d[i].name);
    put(w, "%s ===\n", n > NAMES_SHOWN ? ", ..." : "");
    put_ids(w, d, n);
    if (note != NULL)
        put(w, "    %s\n", note);
    for (int f = 0; f < d[0].n && !w->full; f++) {
        char frame[512];

        fmt_frame(tab, d[0].pc[f], frame, sizeof(frame));
        put(w, "    %s\n", frame);
    }
}

static void
put_group_json(struct w *w, struct diesel__symtab *tab,
    const struct dumped *d, size_t n)
{
    put(w, "{\"count\":%zu,\"how\":\"%s\",\"ids\":[", n, how_name(d[0].how));
    for (size_t i = 0; i < n && !w->full; i++)
        put(w, "%s%lld", i ? "," : "", (long long)d[i].id);
    put(w, "],\"names\":[");
    for (size_t i = 0; i < n && !w->full; i++) {
        if (i)
            put(w, ",");
        jstr(w, d[i].name);
    }
    put(w, "],\"frames\":[");
    for (int f = 0; f < d[0].n && !w->full; f++) {
        struct diesel__sym s;
        int in = diesel__sym_lookup(tab, d[0].pc[f], &s) == 0;

        put(w, "%s{\"pc\":\"0x%llx\",\"func\":", f ? "," : "",
            (unsigned long long)(uintptr_t)d[0].pc[f]);
        jstr(w, in ? s.func : NULL);
        if (in && s.func != NULL)
            put(w, ",\"offset\":%llu", (unsigned long long)s.func_off);
        else
            put(w, ",\"offset\":null");
        put(w, ",\"module\":");
        jstr(w, in ? s.module : NULL);
        if (in)
            put(w, ",\"module_offset\":\"0x%llx\"}",
                (unsigned long long)s.module_off);
        else
            put(w, ",\"module_offset\":null}");
    }
    put(w, "]}");
}

int
diesel__cmd_stacks(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "stacks [--json] [ID]";
    struct diesel_loop *l;
    struct tasklist tl;
    struct dumped *d = NULL;
    struct group *g = NULL;
    struct diesel__symtab *tab = NULL;
    struct diesel__bt *bt = NULL;
    size_t ng = 0, nd = 0;
    char *pos[1];
    struct w w;
    int npos, rc = -1;

    (void)arg;
    if ((npos = args(out, &w, argc, argv, pos, 1, usage)) < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    if (npos == 1) {
        int64_t id = parse_id(pos[0]);
        struct diesel__task *t;

        if (id == 0)
            return fail(out, "bad green thread id '%.64s'; usage: %s",
                pos[0], usage);
        if ((t = diesel__task_find(l, id)) == NULL)
            return fail(out, "no green thread %lld", (long long)id);
        tl.t = malloc(sizeof(*tl.t));
        if (tl.t == NULL)
            return fail(out, "%s", strerror(ENOMEM));
        tl.t[0] = t;
        tl.n = 1;
    } else if (tasks_sorted(l, &tl) != 0) {
        return fail(out, "%s", strerror(ENOMEM));
    }
    diesel__bt_init();
    d = calloc(tl.n ? tl.n : 1, sizeof(*d));
    g = calloc(tl.n ? tl.n : 1, sizeof(*g));
    bt = malloc(sizeof(*bt));
    tab = diesel__sym_open();
    if (d == NULL || g == NULL || bt == NULL || tab == NULL) {
        fail(out, "%s", strerror(ENOMEM));
        goto out;
    }
    for (nd = 0; nd < tl.n; nd++) {
        struct diesel__task *t = tl.t[nd];

        diesel__bt_task(t, bt);
        d[nd].id = t->id;
        d[nd].name = t->name;
        d[nd].how = bt->how;
        d[nd].n = bt->n;
        d[nd].pc = malloc((bt->n ? (size_t)bt->n : 1) * sizeof(void *));
        if (d[nd].pc == NULL) {
            fail(out, "%s", strerror(ENOMEM));
            goto out;
        }
        memcpy(d[nd].pc, bt->pc, (size_t)bt->n * sizeof(void *));
        if (bt->n > 0) {
            struct diesel__sym sym;

            d[nd].key0 = (uintptr_t)bt->pc[0];
            if (diesel__sym_lookup(tab, bt->pc[0], &sym) == 0 &&
                sym.func != NULL)
                d[nd].key0 -= sym.func_off;
        }
    }
    /* Sort so that identical stacks are adjacent (by id within), cut the
     * runs into groups, and order the groups by size. */
    qsort(d, nd, sizeof(*d), cmp_dumped);
    for (size_t i = 0; i < nd; i++) {
        if (i == 0 || !same_stack(&d[i - 1], &d[i])) {
            g[ng].first = i;
            g[ng].min_id = d[i].id;
            ng++;
        }
        g[ng - 1].count++;
    }
    qsort(g, ng, sizeof(*g), cmp_group);
    if (w.json)
        put(&w, "{\"count\":%zu,\"groups\":[\n", nd);
    for (size_t i = 0; i < ng && !w.full; i++) {
        if (w.json) {
            put_group_json(&w, tab, d + g[i].first, g[i].count);
            put(&w, i + 1 < ng ? ",\n" : "\n");
        } else {
            put_group_text(&w, tab, d + g[i].first, g[i].count);
        }
    }
    if (w.json)
        put(&w, "]}\n");
    else
        put(&w, "%zu green threads, %zu distinct stacks\n", nd, ng);
    rc = done(&w);
out:
    for (size_t i = 0; d != NULL && i < nd; i++)
        free(d[i].pc);
    free(d);
    free(g);
    free(bt);
    free(tl.t);
    diesel__sym_close(tab);
    return rc;
}

/* ---- stats --------------------------------------------------------------- */

int
diesel__cmd_stats(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct w w;
    uint64_t ready = 0;
    int64_t up;

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0, "stats [--json]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    for (struct diesel__task *t = l->ready_head; t != NULL; t = t->next)
        ready++;
    up = diesel__now_ns() - l->started;
    if (w.json) {
        put(&w, "{\"uptime_s\":%.3f,\"iterations\":%llu,\"switches\":%llu,"
            "\"polls\":%llu,\"fds_watched\":%d,\"fd_waiters\":%d,"
            "\"timers_pending\":%zu,\"green_threads\":%llu,\"spawned\":%llu,"
            "\"ready\":%llu,\"pooled_stacks\":%u,\"console_sessions\":%d,"
            "\"dropped_signals\":%lu,\"backend\":",
            secs(up), (unsigned long long)l->iterations,
            (unsigned long long)l->switches, (unsigned long long)l->polls,
            l->watched, l->fd_waiters, l->timers.n,
            (unsigned long long)l->ntasks, (unsigned long long)l->spawned,
            (unsigned long long)ready, l->npool, diesel__console_sessions(),
            diesel__console_dropped());
        jstr(&w, diesel_loop_backend());
        put(&w, ",\"switch\":");
        jstr(&w, diesel__switch_name());
        put(&w, "}\n");
        return done(&w);
    }
    put(&w, "uptime            %.3fs\n", secs(up));
    put(&w, "iterations        %llu\n", (unsigned long long)l->iterations);
    put(&w, "switches          %llu\n", (unsigned long long)l->switches);
    put(&w, "polls             %llu\n", (unsigned long long)l->polls);
    put(&w, "fds watched       %d\n", l->watched);
    put(&w, "fd waiters        %d\n", l->fd_waiters);
    put(&w, "timers pending    %zu\n", l->timers.n);
    put(&w, "green threads     %llu (%llu spawned, %llu ready, %u pooled "
        "stacks)\n", (unsigned long long)l->ntasks,
        (unsigned long long)l->spawned, (unsigned long long)ready, l->npool);
    put(&w, "console sessions  %d\n", diesel__console_sessions());
    put(&w, "dropped signals   %lu\n", diesel__console_dropped());
    put(&w, "backend           %s\n", diesel_loop_backend());
    put(&w, "switch            %s\n", diesel__switch_name());
    return done(&w);
}

/* ---- mem ----------------------------------------------------------------- */

struct committed {
    int64_t bytes;
    uint64_t stacks;
    int unknown;
};

/* Resident bytes of t's mapping but the guard page: stack and record. */
static void
add_resident(struct diesel__task *t, struct committed *c)
{
    int64_t r = diesel__platform_resident(t->stack_lo,
        (size_t)((char *)t->map_base + t->map_size - t->stack_lo));

    c->stacks++;
    if (r < 0)
        c->unknown = 1;
    else
        c->bytes += r;
}

static void
add_resident_cb(struct diesel__task *t, void *arg)
{
    add_resident(t, arg);
}

int
diesel__cmd_mem(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct w w;
    struct diesel__stack_stats ss;
    struct diesel__malloc_info mi;
    struct committed live = { 0, 0, 0 }, pooled = { 0, 0, 0 };
    int64_t rss, peak, committed;
    long maps, limit;
    char a[32], b[32], c[32], e[32];

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0, "mem [--json]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    diesel__platform_rss(&rss, &peak);
    if (diesel__platform_malloc_info(&mi) != 0)
        mi.source = NULL;
    diesel__stack_stats(&ss);
    diesel__task_foreach(l, add_resident_cb, &live);
    for (struct diesel__task *t = l->pool; t != NULL; t = t->next)
        add_resident(t, &pooled);
    committed = live.unknown || pooled.unknown ? -1 :
        live.bytes + pooled.bytes;
    maps = diesel__platform_map_count();
    limit = diesel__platform_map_limit();
    if (w.json) {
        put(&w, "{\"rss\":");
        jnum(&w, rss);
        put(&w, ",\"rss_peak\":");
        jnum(&w, peak);
        put(&w, ",\"malloc\":");
        if (mi.source == NULL) {
            put(&w, "null");
        } else {
            put(&w, "{\"source\":");
            jstr(&w, mi.source);
            put(&w, ",\"in_use\":");
            jnum(&w, mi.in_use);
            put(&w, ",\"free\":");
            jnum(&w, mi.free);
            put(&w, ",\"mmapped\":");
            jnum(&w, mi.mmapped);
            put(&w, ",\"arena\":");
            jnum(&w, mi.arena);
            put(&w, ",\"releasable\":");
            jnum(&w, mi.releasable);
            put(&w, "}");
        }
        put(&w, ",\"stacks\":{\"mapped\":%llu,\"reserved\":%llu,"
            "\"committed\":", (unsigned long long)ss.mapped,
            (unsigned long long)ss.bytes);
        jnum(&w, committed);
        put(&w, ",\"green_threads\":%llu,\"committed_green_threads\":",
            (unsigned long long)live.stacks);
        jnum(&w, live.unknown ? -1 : live.bytes);
        put(&w, ",\"pooled\":%llu,\"committed_pooled\":",
            (unsigned long long)pooled.stacks);
        jnum(&w, pooled.unknown ? -1 : pooled.bytes);
        put(&w, "},\"mappings\":");
        jnum(&w, maps);
        put(&w, ",\"max_map_count\":");
        jnum(&w, limit);
        put(&w, ",\"guard\":\"%s\"}\n", ss.guard_madvise ? "madvise" :
            "mprotect");
        return done(&w);
    }
    fmt_bytes(a, sizeof(a), rss);
    fmt_bytes(b, sizeof(b), peak);
    put(&w, "rss               %s (peak %s)\n", a, b);
    if (mi.source == NULL) {
        put(&w, "malloc            unknown (no figures from this "
            "allocator)\n");
    } else {
        fmt_bytes(a, sizeof(a), mi.in_use);
        fmt_bytes(b, sizeof(b), mi.free);
        fmt_bytes(c, sizeof(c), mi.mmapped);
        fmt_bytes(e, sizeof(e), mi.arena);
        put(&w, "malloc            %s in use, %s free, %s mmapped, %s arena "
            "(%s)\n", a, b, c, e, mi.source);
    }
    fmt_bytes(a, sizeof(a), (int64_t)ss.bytes);
    put(&w, "stacks reserved   %llu stacks, %s (all loops of the process)\n",
        (unsigned long long)ss.mapped, a);
    fmt_bytes(a, sizeof(a), committed);
    fmt_bytes(b, sizeof(b), live.unknown ? -1 : live.bytes);
    fmt_bytes(c, sizeof(c), pooled.unknown ? -1 : pooled.bytes);
    put(&w, "stacks committed  %s: %s in %llu green threads, %s in %llu "
        "pooled stacks\n", a, b, (unsigned long long)live.stacks, c,
        (unsigned long long)pooled.stacks);
    if (maps >= 0 && limit > 0)
        put(&w, "mappings          %ld of %ld (vm.max_map_count)\n", maps,
            limit);
    else if (maps >= 0)
        put(&w, "mappings          %ld (no limit known)\n", maps);
    else
        put(&w, "mappings          unknown\n");
    put(&w, "guard pages       %s\n", ss.guard_madvise ?
        "madvise (MADV_GUARD_INSTALL: no extra mapping per stack)" :
        "mprotect (one more mapping per stack)");
    return done(&w);
}

/* ---- fds ----------------------------------------------------------------- */

struct fdinfo {
    const char *type;
    char proto[32];
    int listening;
    int is_socket;
    char local[160];
    char peer[160];
    char path[512];      /* "" when unknown */
};

static void
fd_describe(int fd, struct fdinfo *fi)
{
    struct stat st;

    memset(fi, 0, sizeof(*fi));
    fi->type = "other";
    if (fstat(fd, &st) == 0) {
        switch (st.st_mode & S_IFMT) {
        case S_IFSOCK: fi->type = "socket"; break;
        case S_IFIFO: fi->type = "pipe"; break;
        case S_IFREG: fi->type = "file"; break;
        case S_IFDIR: fi->type = "dir"; break;
        case S_IFBLK: fi->type = "block"; break;
        case S_IFCHR: fi->type = isatty(fd) ? "tty" : "char"; break;
        default: break;
        }
    }
    if (strcmp(fi->type, "socket") == 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int type = 0, acc = 0;
        socklen_t tl = sizeof(type), al = sizeof(acc);

        fi->is_socket = 1;
        memset(&ss, 0, sizeof(ss));
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0)
            fi->listening = acc != 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
            fmt_sockaddr(fi->local, sizeof(fi->local), &ss, len);
            if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
                snprintf(fi->proto, sizeof(fi->proto), "%s",
                    type == SOCK_STREAM ? "tcp" : type == SOCK_DGRAM ?
                    "udp" : type == SOCK_RAW ? "raw" : "inet");
            else if (ss.ss_family == AF_UNIX)
                snprintf(fi->proto, sizeof(fi->proto), "%s",
                    type == SOCK_STREAM ? "unix" : type == SOCK_DGRAM ?
                    "unix-dgram" : type == SOCK_SEQPACKET ?
                    "unix-seqpacket" : "unix");
            else
                snprintf(fi->proto, sizeof(fi->proto), "family %d",
                    ss.ss_family);
        } else {
            snprintf(fi->proto, sizeof(fi->proto), "?");
        }
        if (peer_of(fd, fi->peer, sizeof(fi->peer)) != 0)
            fi->peer[0] = '\0';
    } else if (diesel__platform_fd_path(fd, fi->path, sizeof(fi->path)) !=
        0) {
        fi->path[0] = '\0';
    }
}

static void
put_waiter_json(struct w *w, const struct diesel__task *t)
{
    if (t == NULL) {
        put(w, "null");
        return;
    }
    put(w, "{\"id\":%lld,\"name\":", (long long)t->id);
    jstr(w, t->name);
    put(w, "}");
}

int
diesel__cmd_fds(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct w w;
    int *fds = NULL;
    size_t n = 0;

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0, "fds [--json]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    if (diesel__platform_fd_list(&fds, &n) != 0) {
        /* No list from the system: sweep the descriptor range, bounded
         * (a million fcntl calls would stall the loop). */
        struct rlimit rl;
        long max = 65536;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
            max = (long)rl.rlim_cur;
        if (l->nfds > max)
            max = l->nfds;
        fds = malloc((size_t)max * sizeof(*fds));
        if (fds == NULL)
            return fail(out, "%s", strerror(ENOMEM));
        for (int fd = 0; fd < max; fd++) {
            if (fcntl(fd, F_GETFD) != -1)
                fds[n++] = fd;
        }
    }
    if (w.json)
        put(&w, "{\"count\":%zu,\"fds\":[\n", n);
    else
        put(&w, "%-6s %-8s %-44s %s\n", "FD", "TYPE", "WHAT", "WAITER");
    for (size_t i = 0; i < n && !w.full; i++) {
        int fd = fds[i];
        struct diesel__task *rd = NULL, *wr = NULL;
        struct fdinfo fi;
        char what[512], waiter[160];
        size_t k = 0;

        if (fd < l->nfds) {
            rd = l->fds[fd].reader;
            wr = l->fds[fd].writer;
        }
        fd_describe(fd, &fi);
        if (w.json) {
            put(&w, "{\"fd\":%d,\"type\":\"%s\"", fd, fi.type);
            if (fi.is_socket) {
                put(&w, ",\"proto\":");
                jstr(&w, fi.proto);
                put(&w, ",\"listening\":%s,\"local\":",
                    fi.listening ? "true" : "false");
                jstr(&w, fi.local[0] ? fi.local : NULL);
                put(&w, ",\"peer\":");
                jstr(&w, fi.peer[0] ? fi.peer : NULL);
            }
            put(&w, ",\"path\":");
            jstr(&w, fi.path[0] ? fi.path : NULL);
            put(&w, ",\"reader\":");
            put_waiter_json(&w, rd);
            put(&w, ",\"writer\":");
            put_waiter_json(&w, wr);
            put(&w, i + 1 < n ? "},\n" : "}\n");
            continue;
        }
        if (fi.is_socket)
            snprintf(what, sizeof(what), "%s%s %s%s%s", fi.proto,
                fi.listening ? " listening" : "", fi.local,
                fi.peer[0] ? " -> " : "", fi.peer);
        else
            snprintf(what, sizeof(what), "%s", fi.path[0] ? fi.path : "-");
        waiter[0] = '\0';
        if (rd != NULL)
            k += (size_t)snprintf(waiter, sizeof(waiter), "read: %lld (%s)",
                (long long)rd->id, rd->name);
        if (wr != NULL && k < sizeof(waiter))
            snprintf(waiter + k, sizeof(waiter) - k, "%swrite: %lld (%s)",
                k ? ", " : "", (long long)wr->id, wr->name);
        if (waiter[0] != '\0')
            put(&w, "%-6d %-8s %-44s %s\n", fd, fi.type, what, waiter);
        else
            put(&w, "%-6d %-8s %s\n", fd, fi.type, what);
    }
    if (w.json)
        put(&w, "]}\n");
    else
        put(&w, "%zu descriptors open\n", n);
    free(fds);
    return done(&w);
}

/* ---- log ----------------------------------------------------------------- */

static void
log_line(const char *name, int level, void *arg)
{
    struct w *w = arg;

    if (name == NULL)
        put(w, "%-10s %-9s (the default)\n", "*", diesel_log_level_name(level));
    else
        put(w, "%-10s %s\n", name, diesel_log_level_name(level));
}

struct log_json {
    struct w *w;
    int first;
};

static void
log_json_entry(const char *name, int level, void *arg)
{
    struct log_json *lj = arg;

    if (name == NULL) {
        put(lj->w, "{\"default\":\"%s\",\"loggers\":{",
            diesel_log_level_name(level));
        return;
    }
    if (!lj->first)
        put(lj->w, ",");
    lj->first = 0;
    jstr(lj->w, name);
    put(lj->w, ":\"%s\"", diesel_log_level_name(level));
}

int
diesel__cmd_log(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "log [--json] [LOGGER LEVEL]";
    char *pos[2];
    struct w w;
    int npos, level, was;
    const char *logger;

    (void)arg;
    if ((npos = args(out, &w, argc, argv, pos, 2, usage)) < 0)
        return -1;
    if (npos == 0) {
        if (w.json) {
            struct log_json lj = { &w, 1 };

            diesel__log_foreach(log_json_entry, &lj);
            put(&w, "}}\n");
        } else {
            diesel__log_foreach(log_line, &w);
        }
        return done(&w);
    }
    if (npos != 2)
        return fail(out, "usage: %s", usage);
    level = diesel_log_level_parse(pos[1]);
    if (level < 0)
        return fail(out, "unknown level '%.64s': use DEBUG, INFO, WARNING, "
            "ERROR or CRITICAL", pos[1]);
    logger = strcmp(pos[0], "*") == 0 ? NULL : pos[0];
    was = diesel_log_level(logger);
    if (diesel_log_level_set(logger, level) != 0)
        return fail(out, errno == EINVAL ? "bad logger name '%.64s'" :
            "cannot set the level of '%.64s'", pos[0]);
    diesel_log("diesel", DIESEL_LOG_INFO, "console: log level of %s set to "
        "%s (was %s)", logger ? logger : "* (the default)",
        diesel_log_level_name(level), diesel_log_level_name(was));
    if (w.json) {
        put(&w, "{\"logger\":");
        jstr(&w, pos[0]);
        put(&w, ",\"level\":\"%s\",\"was\":\"%s\"}\n",
            diesel_log_level_name(level), diesel_log_level_name(was));
    } else {
        put(&w, "%s %s (was %s)\n", pos[0], diesel_log_level_name(level),
            diesel_log_level_name(was));
    }
    return done(&w);
}

/* ---- cancel -------------------------------------------------------------- */

int
diesel__cmd_cancel(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "cancel [--json] ID";
    struct diesel_loop *l;
    struct diesel__task *t;
    char *pos[1], name[DIESEL__NAME_MAX];
    struct w w;
    int64_t id;
    int npos;

    (void)arg;
    if ((npos = args(out, &w, argc, argv, pos, 1, usage)) < 0)
        return -1;
    if (npos != 1)
        return fail(out, "usage: %s", usage);
    if ((l = loop_or_fail(out)) == NULL)
        return -1;
    if ((id = parse_id(pos[0])) == 0)
        return fail(out, "bad green thread id '%.64s'; usage: %s", pos[0],
            usage);
    t = diesel__task_find(l, id);
    if (t == NULL)
        return fail(out, "no green thread %lld", (long long)id);
    if (t == diesel__current)
        return fail(out, "green thread %lld (%s) serves this console "
            "session: use quit", (long long)id, t->name);
    memcpy(name, t->name, sizeof(name));
    if (diesel_task_cancel(id) != 0)
        return fail(out, errno == ESRCH ? "no green thread %lld" :
            "cannot cancel green thread %lld", (long long)id);
    diesel_log("diesel", DIESEL_LOG_WARNING, "console: cancelled green "
        "thread %lld (%s)", (long long)id, name);
    if (w.json) {
        put(&w, "{\"cancelled\":%lld,\"name\":", (long long)id);
        jstr(&w, name);
        put(&w, "}\n");
    } else {
        put(&w, "cancelled green thread %lld (%s)\n", (long long)id, name);
    }
    return done(&w);
}

/* ---- Registration -------------------------------------------------------- */

static const struct {
    const char *name;
    const char *help;
    diesel_console_fn fn;
} builtins[] = {
    { "pid", "pid [--json]: process id, parent, user, executable, uptime",
      diesel__cmd_pid },
    { "tasks", "tasks [--json]: every green thread: id, name, state, what it "
      "waits on and for how long, switches, stack, where spawned",
      diesel__cmd_tasks },
    { "stacks", "stacks [--json] [ID]: backtraces of the green threads, identical "
      "ones grouped", diesel__cmd_stacks },
    { "stats", "stats [--json]: loop figures: uptime, iterations, switches, "
      "polls, fds, timers, green threads, console", diesel__cmd_stats },
    { "mem", "mem [--json]: RSS, malloc, stack memory reserved and committed, "
      "mappings against vm.max_map_count", diesel__cmd_mem },
    { "fds", "fds [--json]: open descriptors: type, address or path, green "
      "thread waiting on it", diesel__cmd_fds },
    { "log", "log [LOGGER LEVEL]: show the log levels, or set one (* is the "
      "default)", diesel__cmd_log },
    { "cancel", "cancel ID: make green thread ID's blocking calls fail with "
      "ECANCELED", diesel__cmd_cancel },
};

void
diesel__console_builtins_register(void)
{
    diesel__bt_init();
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (diesel__console_register(builtins[i].name, builtins[i].help,
            builtins[i].fn, NULL, 1) != 0)
            diesel_log("diesel", DIESEL_LOG_ERROR, "console: cannot "
                "register the built-in command '%s': %s", builtins[i].name,
                strerror(errno));
    }
}
