/*
 * console_builtins.c: the console's built-in inspection commands.
 *
 * Each runs inside the loop, on the green thread that serves the console
 * session, and only reads what the loop recorded (struct diesel_loop,
 * struct diesel__task).  Costs: one pass over the green threads (tasks,
 * stacks, mem), one backtrace per green thread (stacks: no system call,
 * see backtrace.c), one mincore(2) per stack (tasks, mem), one
 * getpeername(2) per green thread waiting on a descriptor (tasks), a few
 * system calls per descriptor (fds).  The passes over every green thread
 * or descriptor are done in slices of about 2 ms, between which the loop
 * turns and the green threads run (see "Walking the green threads"
 * below): a reply says of each green thread what it was when the walk
 * got to it; those that ended before are left out, those spawned after
 * the command began are not listed.  man/diesel-console.7 refers to this
 * comment for the formats, which are these (text form, then --json).
 *
 * The samples below are exact output, so some lines are wider than 80
 * columns.
 *
 * Every command takes --json anywhere among its arguments (or the
 * console's own --json flag, diesel_console_json()): its reply is then
 * one JSON document (RFC 8259), possibly over several lines; strings are
 * escaped so that the reply is printable ASCII plus valid UTF-8 (control
 * bytes and C1 controls as \uXXXX; a byte that is not valid UTF-8 as
 * \u00XX: escape.c).  In the text form, every string from the program
 * or its clients goes through the same escaping (tx()).  Durations
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
 *     ID  NAME     STATE     FOR     SWITCHES  STACK      HIGH    WAITS ON                                   SPAWNED AT
 *     1   main     waiting   2.001s  3         1.2K/131K  4.6K    join 4 (worker)                            -
 *     2   sleeper  sleeping  2.000s  1         0.1K/131K  4.6K*   sleep, timer 8.000s                        test/check_builtins.c:88
 *     3   reader   waiting   1.999s  1         0.2K/131K  100.6K  fd 7 read, peer 127.0.0.1:5000, timer 1.500s  handler+0x1f (app)
 *     3 green threads: 0 running, 0 ready, 2 waiting, 1 sleeping
 *     * a stack from the pool, used before: the mark may be an earlier green thread's
 *     WARNING: green thread 'reader' (id 3) has used 100.6K of 131K (76%): over 75% of its stack
 *   STATE is running, ready, waiting or sleeping.  FOR is how long it has
 *   waited (- unless waiting or sleeping).  STACK is the stack in use now
 *   (from the saved stack pointer) over its size, in KiB (the size is
 *   what the green thread can use: the size asked for, plus what is left
 *   of the page that holds its record).  HIGH is the stack's high-water
 *   mark: the deepest it has been used, to a page, from the pages the
 *   kernel made resident (mincore; see stack.c), "-" when unknown; a "*"
 *   marks a stack taken from the pool before it was purged (the line
 *   after the summary says so), whose mark may be an earlier green
 *   thread's.  tasks and mem purge the pool's stacks first (the loop also
 *   does when idle).  Each green thread over 75% of its stack gets a
 *   "WARNING: ..." line at the end, and, once per green thread, a WARNING
 *   log line.  WAITS ON is one
 *   of: "sleep", "fd N read|write|read+write" with ", peer ADDR" for a
 *   connected socket, "join ID" with " (NAME)" while that one lives, or
 *   the waiter's own description (struct diesel__wait.what); then
 *   ", timer S" when the wait has a timeout, S being the time left.
 *   SPAWNED AT is the file:line of the diesel_task_spawn() call, else the
 *   symbolized caller of diesel_task_spawn, else - (so for the library's
 *   own: main, a server's green threads, console sessions).  Columns are
 *   as wide as their widest cell, two spaces apart (console_table.c; a
 *   cell over 60 columns is cut with "...", but the last): split on two
 *   or more spaces.  The rows go into the table as the walk goes, and are
 *   printed in slices too.
 *   {"now_s":12.3,"count":3,"tasks":[
 *    {"id":2,"name":"sleeper","state":"sleeping",
 *     "waits_on":"sleep, timer 8.000s",
 *     "wait":{"kind":"sleep","timer_s":8.000},
 *     "for_s":2.000,"switches":1,"stack_used":112,"stack_size":131072,
 *     "high_water":4704,"high_water_inherited":true,"longest_run_s":null,
 *     "spawned_at":"test/check_builtins.c:88","age_s":2.001,
 *     "cancelled":false},
 *    ...],"deep":[3]}
 *   high_water is null when unknown; longest_run_s is the longest run
 *   without yielding that a hog warning recorded (see stats), else null;
 *   deep lists the ids of the green threads over 75% of their stack.
 *   wait is null when not waiting; else kind is "sleep", "fd" (with "fd",
 *   "events": "read"|"write"|"read+write", and "peer" when known), "join"
 *   (with "target"), or "other" (with "what"); "timer_s" only with a
 *   timeout.
 *
 * stacks [--all] [ID]
 *   diesel's print_greenlet_stacks: the backtrace of every green thread
 *   (or of green thread ID), identical ones grouped, the largest group
 *   first (then by lowest id).  Per group:
 *     [50] === sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, sleeper, ... ===
 *         ids: 3-52
 *         (parked in diesel_sleep: 2 library frames)
 *         sleeper (app.c:42)
 *   The header names at most 8 green threads, then "...".  "ids:" lists
 *   them all as ranges, cut with "..." past 200 bytes.  A frame is
 *   "FUNC (FILE:LINE)" where the module has a line table (built with -g),
 *   else "FUNC+0xOFF (MODULE)" (MODULE: the file's last path component),
 *   or "??+0xOFF (MODULE)" when the function is unknown, OFF then being
 *   the offset in the module (addr2line -e MODULE 0xOFF), or "0xPC"
 *   outside any module (frame.c).  The innermost frame is first: where
 *   the green thread resumes; it is compared by function when grouping
 *   (where in the library's parking code a green thread parked says
 *   nothing about it), and shown as the first member's.  The library's
 *   frames at the top are folded into one line naming the outermost of
 *   them, the call the service made ("(in ...)" for the running green
 *   thread), and the stack ends at the green thread's function; --all
 *   shows every frame down to the library's trampoline, which called it.
 *   A group whose stack was not unwound has one line instead of (or
 *   before) its frames:
 *         (not started)
 *         (running: this green thread serves the console)
 *         (frame-pointer walk: unwinding failed, may be incomplete)
 *         (no backtraces on this CPU)
 *         (saved registers damaged: stack pointer outside the stack or resume pc outside the program)
 *   Last: "N green threads, G distinct stacks".
 *   {"count":53,"groups":[
 *    {"count":50,"how":"unwound","ids":[3,4,...],"names":["sleeper",...],
 *     "frames":[{"pc":"0x55d0c0a0b15c","func":"diesel__task_park",
 *                "offset":332,"module":"/path/app","module_offset":"0x515c",
 *                "file":"lib/task.c","line":310,"library":true},
 *               ...]},
 *    ...]}
 *   how: "unwound", "frame pointers", "running", "not started",
 *   "unsupported", "damaged".  func and offset are null when unknown,
 *   module and module_offset when outside any module, file and line
 *   without a line table.  The JSON has every frame down to the
 *   trampoline, with or without --all.
 *
 * stats
 *     uptime            12.345s
 *     iterations        1234
 *     switches          5678
 *     polls             910
 *     events            2048        (descriptors the polls reported)
 *     fds watched       3
 *     fd waiters        2
 *     timers pending    50
 *     green threads     53 (60 spawned, 2 ready, 12 pooled stacks)
 *     console sessions  1
 *     dropped signals   0
 *     backend           epoll
 *     switch            x86_64
 *     hog warnings      over 100 ms        (or: off)
 *     longest runs      412 ms  spinner (id 7)
 *       (or: none over 100 ms; or, hog warnings off: not recorded: ...)
 *                       260 ms  parser (id 12)
 *   {"uptime_s":12.345,"iterations":1234,"switches":5678,"polls":910,
 *    "events":2048,
 *    "fds_watched":3,"fd_waiters":2,"timers_pending":50,
 *    "green_threads":53,"spawned":60,"ready":2,"pooled_stacks":12,
 *    "console_sessions":1,"dropped_signals":0,"backend":"epoll",
 *    "switch":"x86_64","hog_warn_ms":100,
 *    "longest_runs":[{"id":7,"name":"spinner","ms":412},...]}
 *   dropped signals: console requests lost (self-pipe full).  hog
 *   warnings: the threshold of diesel_loop_hog_warn(3) (hog_warn_ms 0
 *   when off).  longest runs: the five longest runs without yielding that
 *   the hog watchdog saw (only those over the threshold, each green thread
 *   once, longest first; finished green threads included), estimated
 *   within half the threshold (see hog.c).
 *
 * mem
 *     rss               12.3 MiB (peak 14.0 MiB)
 *     malloc            1.2 MiB in use, 300.0 KiB free, 0 B mmapped, 1.5 MiB arena (glibc mallinfo2)
 *     stacks reserved   10001 stacks, 1.3 GiB (all loops of the process)
 *     stacks committed  40.0 MiB: 39.1 MiB in 10001 green threads, 900.0 KiB in 12 pooled stacks
 *     stack high water  1.2 MiB in 53 green threads, 23.2 KiB each on average; deepest 100.6 KiB of 131.0 KiB (76%) in 'reader' (id 3)
 *     mappings          10050 of 65530 (vm.max_map_count)
 *     guard pages       madvise (MADV_GUARD_INSTALL: no extra mapping per stack)
 *     WARNING: green thread 'reader' (id 3) has used 100.6K of 131K (76%): over 75% of its stack
 *   Sizes: B, KiB, MiB, GiB with one decimal; "unknown" where the system
 *   cannot tell.  Committed is resident (mincore), record page included;
 *   reserved is address space (stack_stats).  Stack high water sums the
 *   live green threads' marks (as in tasks; "unknown" when none is
 *   known); the WARNING lines are those of tasks.  The guard is "madvise" or
 *   "mprotect (one more mapping per stack)".
 *   {"rss":12902400,"rss_peak":14680064,
 *    "malloc":{"source":"glibc mallinfo2","in_use":..,"free":..,
 *              "mmapped":..,"arena":..,"releasable":..},
 *    "stacks":{"mapped":10001,"reserved":..,"committed":..,
 *              "green_threads":10001,"committed_green_threads":..,
 *              "pooled":12,"committed_pooled":..,
 *              "high_water":..,"high_water_known":53,"high_water_max":..,
 *              "high_water_max_id":3,"high_water_max_name":"reader",
 *              "high_water_max_stack_size":..,"deep":[3]},
 *    "mappings":10050,"max_map_count":65530,"guard":"madvise"}
 *
 * fds
 *     FD  TYPE    WHAT                                  WAITER
 *     0   tty     /dev/pts/0
 *     3   socket  tcp 127.0.0.1:5000 -> 127.0.0.1:43222  read: 12 (conn)
 *     4   socket  tcp listening 0.0.0.0:8080             read: 2 (acceptor)
 *     5   socket  unix /run/app.sock -> (unnamed)
 *     6   pipe    pipe:[123456]
 *     7   file    /var/log/app.log
 *     8   other   anon_inode:[eventpoll]
 *     9 descriptors open
 *   TYPE: socket, pipe, file, dir, tty, char, block, other.  For a
 *   socket WHAT is PROTO [listening] LOCAL [-> PEER]: PROTO tcp, udp,
 *   raw, unix, unix-dgram, unix-seqpacket (or "family N"); addresses
 *   127.0.0.1:5000, [::1]:5000, /path, @abstract, (unnamed) (the JSON
 *   keeps unix: in front: unix:/path, unix:@abstract, unix:).  Otherwise WHAT is what the descriptor refers to, where the
 *   system tells (/proc/self/fd), else -.  WAITER: the green threads
 *   parked on it in the loop, "read: ID (NAME)" and/or "write: ...".
 *   {"count":9,"fds":[{"fd":3,"type":"socket","proto":"tcp",
 *    "listening":false,"local":"127.0.0.1:5000","peer":"127.0.0.1:43222",
 *    "path":null,"reader":{"id":12,"name":"conn"},"writer":null},...]}
 *
 * log [[--new] LOGGER LEVEL]
 *   Without arguments, the levels: the default first, as "*", then each
 *   logger in use (given a level, or logged to), with its effective level:
 *     LOGGER  LEVEL    WHENCE
 *     *       INFO     the default
 *     diesel  WARNING  set
 *     dummy   INFO     the default's
 *   With LOGGER LEVEL, set it (LOGGER "*" sets the default; LEVEL is
 *   DEBUG, INFO, WARNING, ERROR or CRITICAL, any case), and reply
 *     dummy DEBUG (was INFO)
 *   A LOGGER no code has logged to is an ERR naming those there are,
 *   unless --new says it is one yet to log:
 *     nosuch DEBUG (a new logger; was INFO)
 *   {"default":"INFO","loggers":{"diesel":"WARNING","dummy":"INFO"},
 *    "inherited":["dummy"]}
 *   {"logger":"dummy","level":"DEBUG","was":"INFO","new":false}
 *
 * cancel ID
 *     cancelled green thread 12 (sleeper)
 *   {"cancelled":12,"name":"sleeper"}
 *   ERR "no green thread 12" when there is none; ERR for an ID that is
 *   not a positive decimal number, and for the green thread serving this
 *   console session (use quit).
 *
 * Errors are one line, e.g. "usage: cancel [--json] [LOOP:]ID".  When the
 * reply does not fit the console's output limit, the command stops and
 * fails with "reply too long (over the console's output limit)".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
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
#include "frame.h"
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

/* A JSON string, quoted; null for NULL. */
static void
jstr(struct w *w, const char *s)
{
    char buf[256 + 16];
    size_t n = strlen(s != NULL ? s : "");

    if (s == NULL) {
        put(w, "null");
        return;
    }
    put(w, "\"");
    while (n > 0) {
        size_t at = 0, used = diesel__escape(buf, sizeof(buf), &at, s, n,
            DIESEL__ESC_JSON);

        put(w, "%s", buf);
        s += used;
        n -= used;
    }
    put(w, "\"");
}

/* A string from the application or a client, as a text reply shows it:
 * escaped as everywhere (escape.c), so that a newline in a green thread's
 * name cannot start a forged row.  Returns buf. */
#define TX_NAME (DIESEL__NAME_MAX * 4)
static const char *
tx(char *buf, size_t size, const char *s)
{
    size_t at = 0;

    (void)diesel__escape(buf, size, &at, s, strlen(s), DIESEL__ESC_TEXT);
    return buf;
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
            size_t k = (size_t)snprintf(buf, size, "unix:@");

            if (k < size)
                (void)diesel__escape(buf, size, &k, un->sun_path + 1, n - 1,
                    DIESEL__ESC_TEXT);
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

/* A return address as a frame reads (frame.c), into buf. */
static void
fmt_frame(struct diesel__symtab *tab, const void *pc, char *buf,
    size_t size)
{
    diesel__frame_fmt(tab, pc, 0, buf, size);
}

/* ---- Walking the green threads ------------------------------------------ */

/*
 * A command that looks at every green thread (100,000 of them take 0.4 s
 * to unwind) must not hold the loop that long: it does its work in
 * slices and lets the loop turn between them (pace()), so that timers,
 * I/O, the other green threads and the other console sessions go on
 * while it walks.  Green threads end, start and change state between two
 * slices, and their records (at the top of pooled stacks) are reused, so
 * no pointer to a record is kept across a slice.  The walk takes the ids
 * of the green threads alive when it starts, sorted, in one go, and
 * looks each one up by id (diesel__task_find) when its turn comes.  Ids
 * are never reused: the lookup finds that green thread or none (it has
 * ended: skipped), never another one that took over its record; green
 * threads spawned during the walk have larger ids and are not in it.
 * What the reply says of a green thread is what it was when the walk got
 * to it: a dump is a walk, not an atomic snapshot.
 *
 * A slice ends once the loop has not turned for DIESEL__CONSOLE_SLICE_NS
 * (2 ms: counted from the start of the loop's turn, so that what other
 * green threads did in it counts too), or after SLICE_MAX items, and not
 * before SLICE_MIN items.  So a dump of a few dozen green threads is
 * taken at once; a slice costs about 2 ms whatever an item costs (an
 * unwind, a mincore(2), a few system calls for an fd); and even a walk
 * whose items are cheap lets the loop turn every SLICE_MAX items, on any
 * machine.
 */
#define SLICE_MIN 64
#define SLICE_MAX 1024
#define SLICE_CLOCK 16           /* items between two looks at the clock */

struct pace {
    struct diesel_loop *loop;
    unsigned n;          /* items done in this slice */
    int can;             /* called on a green thread: it may yield */
};

static void
pace_init(struct pace *p, struct diesel_loop *l)
{
    p->loop = l;
    p->n = 0;
    p->can = diesel__current != NULL;
}

/*
 * One more item done: at the end of a slice, let the loop turn.  Returns
 * 0, or -1 once the green thread running the command was cancelled (its
 * session ends): the command then stops with interrupted().
 */
static int
pace(struct pace *p)
{
    if (++p->n < SLICE_MIN)
        return 0;
    if (p->n < SLICE_MAX && (p->n % SLICE_CLOCK != 0 ||
        diesel__now_ns() - p->loop->now < DIESEL__CONSOLE_SLICE_NS))
        return 0;
    p->n = 0;
    return p->can ? diesel__task_yield_loop() : 0;
}

/* pace() as the table's printing calls it (console_table.c). */
static int
pace_cb(void *p)
{
    return pace(p);
}

/* A row of n cells (strings, escaped by the table); -1 out of memory. */
static int
table_cells(struct diesel_console_table *t, int n, ...)
{
    va_list ap;
    int rc = 0;

    va_start(ap, n);
    for (int i = 0; i < n && rc == 0; i++)
        rc = diesel_console_table_cell(t, "%s", va_arg(ap, const char *));
    va_end(ap);
    return rc == 0 ? diesel_console_table_row(t) : -1;
}

static int
interrupted(struct diesel_console_out *out)
{
    return fail(out, "interrupted: the green thread running the command "
        "was cancelled");
}

/* The ids of l's live green threads when a walk begins. */
struct idlist {
    int64_t *id;         /* ascending; malloc'd */
    size_t n;
};

/*
 * Sort ids (all > 0, at most max) ascending: a radix sort, 11 bits a
 * pass, as many passes as max needs (two below 4 million).  qsort takes
 * about 10 ms for 100,000 ids, in one piece, which is what the slices are
 * there to avoid.
 */
static int
sort_ids(int64_t *a, size_t n, int64_t max)
{
    int64_t *tmp, *src = a, *dst;
    size_t pos[2048];

    if (n < 2)
        return 0;
    if ((tmp = malloc(n * sizeof(*tmp))) == NULL)
        return -1;
    dst = tmp;
    for (unsigned shift = 0; shift < 64 && ((uint64_t)max >> shift) != 0;
        shift += 11) {
        size_t sum = 0;

        memset(pos, 0, sizeof(pos));
        for (size_t i = 0; i < n; i++)
            pos[((uint64_t)src[i] >> shift) & 2047]++;
        for (size_t k = 0; k < 2048; k++) {
            size_t c = pos[k];

            pos[k] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[pos[((uint64_t)src[i] >> shift) & 2047]++] = src[i];
        dst = src;
        src = src == a ? tmp : a;
    }
    if (src != a)
        memcpy(a, src, n * sizeof(*a));
    free(tmp);
    return 0;
}

static int
ids_sorted(struct diesel_loop *l, struct idlist *il)
{
    il->id = malloc((l->ntasks ? (size_t)l->ntasks : 1) * sizeof(*il->id));
    if (il->id == NULL)
        return -1;
    il->n = diesel__task_ids(l, il->id);
    if (sort_ids(il->id, il->n, l->last_id) != 0) {
        free(il->id);
        il->id = NULL;
        return -1;
    }
    return 0;
}

/*
 * Let the kernel take back the pooled stacks' stale pages (see stack.c)
 * before a walk that reads high-water marks: one madvise(2) each, so in
 * slices too.  Only as many as were dirty when it began, however many
 * more green threads end meanwhile.
 */
#define PURGE_SLICE 16
static int
purge_pool(struct diesel_loop *l, struct pace *p)
{
    unsigned todo = l->npool_dirty;

    while (todo > 0 && l->npool_dirty > 0) {
        unsigned k = todo < PURGE_SLICE ? todo : PURGE_SLICE;

        diesel__task_purge_pool(l, k);
        todo -= k;
        for (unsigned i = 0; i < k; i++) {
            if (pace(p) != 0)
                return -1;
        }
    }
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
    char user[256], euser[256], exe[4096], ebuf[4 * 4096];
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
    put(&w, "user        %s (uid %lu)", tx(ebuf, sizeof(ebuf), user),
        (unsigned long)uid);
    if (euid != uid)
        put(&w, ", effective %s (uid %lu)", tx(ebuf, sizeof(ebuf), euser),
            (unsigned long)euid);
    put(&w, "\nexecutable  %s\n", have_exe ? tx(ebuf, sizeof(ebuf), exe) :
        "unknown");
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

    enum diesel__state st = diesel__task_state(l, t);

    buf[0] = '\0';
    if (st != DIESEL__WAITING && st != DIESEL__SLEEPING) {
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
    if (t->timed && n < size) {
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

/*
 * The high-water mark of t's stack (bytes, -1 unknown; see stack.c), and
 * whether it is over DEEP_PCT of the stack: then a WARNING log line, once
 * per green thread.
 */
#define DEEP_PCT 75
#define INHERITED " (or an earlier green thread on the same pooled stack)"
static int64_t
high_water(struct diesel__task *t, int *deep)
{
    int64_t hw = diesel__stack_high_water(t);
    size_t size = (size_t)(t->stack_hi - t->stack_lo);

    *deep = hw >= 0 && (uint64_t)hw * 100 > (uint64_t)size * DEEP_PCT;
    if (*deep && !t->deep_warned) {
        t->deep_warned = 1;
        diesel_log("diesel", DIESEL_LOG_WARNING,
            "green thread '%s' (id %lld) has used %lld of its %zu-byte "
            "stack: over %d%% of its stack%s", t->name, (long long)t->id,
            (long long)hw, size, DEEP_PCT, t->dirty ? INHERITED : "");
    }
    return hw;
}

/* The green threads over DEEP_PCT, as the walk saw them (copies: the
 * WARNING lines come after the walk, when the records may be gone). */
struct deep {
    int64_t id;
    char name[DIESEL__NAME_MAX];
    int64_t hw;          /* its high-water mark, bytes */
    size_t size;         /* its stack's size */
    int dirty;           /* the mark may be inherited (t->dirty) */
};

struct deeplist {
    struct deep *d;      /* by id; malloc'd */
    size_t n, cap;
};

static int
deep_add(struct deeplist *dl, const struct diesel__task *t, int64_t hw)
{
    struct deep *d;

    if (dl->n == dl->cap) {
        size_t cap = dl->cap ? dl->cap * 2 : 8;

        if ((d = realloc(dl->d, cap * sizeof(*d))) == NULL)
            return -1;
        dl->d = d;
        dl->cap = cap;
    }
    d = &dl->d[dl->n++];
    d->id = t->id;
    memcpy(d->name, t->name, sizeof(d->name));
    d->hw = hw;
    d->size = (size_t)(t->stack_hi - t->stack_lo);
    d->dirty = t->dirty;
    return 0;
}

/* The ids of the green threads over DEEP_PCT (a JSON list's items). */
static void
put_deep_ids(struct w *w, const struct deeplist *dl)
{
    for (size_t i = 0; i < dl->n; i++)
        put(w, "%s%lld", i ? "," : "", (long long)dl->d[i].id);
}

/* One "WARNING: ..." line per green thread over DEEP_PCT. */
static void
put_deep_lines(struct w *w, const struct deeplist *dl)
{
    for (size_t i = 0; i < dl->n; i++) {
        const struct deep *d = &dl->d[i];
        char name[TX_NAME];

        put(w, "WARNING: green thread '%s' (id %lld) has used %.1fK of "
            "%.0fK (%lld%%): over %d%% of its stack%s\n",
            tx(name, sizeof(name), d->name),
            (long long)d->id, (double)d->hw / 1024, (double)d->size / 1024,
            (long long)(d->hw * 100 / (int64_t)d->size), DEEP_PCT,
            d->dirty ? INHERITED : "");
    }
}

static void
task_json(struct w *w, struct diesel_loop *l, struct diesel__task *t,
    int64_t now, const char *waits, const char *spawned, int64_t hw)
{
    const struct diesel__wait *wt = &t->wait;
    enum diesel__state st = diesel__task_state(l, t);
    int waiting = st == DIESEL__WAITING || st == DIESEL__SLEEPING;
    char peer[160];

    put(w, "{\"id\":%lld,\"name\":", (long long)t->id);
    jstr(w, t->name);
    put(w, ",\"state\":\"%s\",\"waits_on\":",
        diesel__task_state_name(st));
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
        if (t->timed) {
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
        "\"high_water\":", (unsigned long long)t->switches,
        diesel__bt_stack_used(t), (size_t)(t->stack_hi - t->stack_lo));
    jnum(w, hw);
    put(w, ",\"high_water_inherited\":%s,\"longest_run_s\":",
        t->dirty ? "true" : "false");
    if (t->longest_run > 0)
        put(w, "%.3f", secs(t->longest_run));
    else
        put(w, "null");
    put(w, ",\"spawned_at\":");
    jstr(w, strcmp(spawned, "-") == 0 ? NULL : spawned);
    put(w, ",\"age_s\":%.3f,\"cancelled\":%s}", secs(now - t->spawned_at),
        t->cancelled ? "true" : "false");
}

/*
 * Put text in front of what the reply holds from offset at on: a header
 * whose figures the walk had to finish first.  One memmove of the reply
 * (16 MiB at most: a few milliseconds).
 */
static void
put_before(struct w *w, size_t at, const char *fmt, ...)
{
    struct diesel_console_out *o = w->out;
    char head[256];
    va_list ap;
    int n;

    if (w->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(head) || at > o->len) {
        w->full = 1;
        return;
    }
    /* Append it (the buffer grows, the limit is checked), then turn it
     * to the front of the tail. */
    if (diesel_console_printf(o, "%s", head) < 0) {
        w->full = 1;
        return;
    }
    memmove(o->buf + at + n, o->buf + at, o->len - (size_t)n - at);
    memcpy(o->buf + at, head, (size_t)n);
}

int
diesel__cmd_tasks(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct idlist il;
    struct deeplist dl = { NULL, 0, 0 };
    struct diesel__symtab *tab = NULL;
    struct pace p;
    struct w w;
    int64_t start;
    size_t count[DIESEL__DONE + 1] = { 0 }, listed = 0, ninherited = 0;
    enum diesel__state st;
    size_t head = 0;
    struct diesel_console_table *tb = NULL;
    int rc = -1;

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0,
        "tasks [--json] [--loop NAME]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    pace_init(&p, l);
    /* So that later green threads get clean stacks (see stack.c). */
    if (purge_pool(l, &p) != 0)
        return interrupted(out);
    if (ids_sorted(l, &il) != 0)
        return fail(out, "%s", strerror(ENOMEM));
    start = diesel__now_ns();
    if (w.json) {
        /* The header, with the count, goes in front once it is known. */
        head = out->len;
        put(&w, "\n");
    } else if ((tb = diesel_console_table_create(9)) == NULL ||
        table_cells(tb, 9, "ID", "NAME", "STATE", "FOR", "SWITCHES",
        "STACK", "HIGH", "WAITS ON", "SPAWNED AT") != 0) {
        fail(out, "%s", strerror(ENOMEM));
        goto out;
    }
    for (size_t i = 0; i < il.n && !w.full; i++) {
        struct diesel__task *t = diesel__task_find(l, il.id[i]);
        char waits[512], spawned[512], forbuf[32], stack[32], high[32];
        char id[64], sw[24];
        int deep;
        int64_t hw, now;

        if (t != NULL) {
            now = diesel__now_ns();
            hw = high_water(t, &deep);
            if (deep && deep_add(&dl, t, hw) != 0) {
                fail(out, "%s", strerror(ENOMEM));
                goto out;
            }
            describe_wait(l, t, now, waits, sizeof(waits));
            spawned_at(&tab, t, spawned, sizeof(spawned));
            st = diesel__task_state(l, t);
            if (st <= DIESEL__DONE)
                count[st]++;
            ninherited += t->dirty;
            if (w.json) {
                if (listed > 0)
                    put(&w, ",\n");
                task_json(&w, l, t, now, waits, spawned, hw);
            } else {
                if (st == DIESEL__WAITING || st == DIESEL__SLEEPING)
                    snprintf(forbuf, sizeof(forbuf), "%.3fs",
                        secs(now - t->wait.since));
                else
                    snprintf(forbuf, sizeof(forbuf), "-");
                snprintf(stack, sizeof(stack), "%.1fK/%.0fK",
                    (double)diesel__bt_stack_used(t) / 1024,
                    (double)(t->stack_hi - t->stack_lo) / 1024);
                if (hw >= 0)
                    snprintf(high, sizeof(high), "%.1fK%s",
                        (double)hw / 1024, t->dirty ? "*" : "");
                else
                    snprintf(high, sizeof(high), "-");
                if (out->loop != NULL)
                    snprintf(id, sizeof(id), "%s:%lld", out->loop,
                        (long long)t->id);
                else
                    snprintf(id, sizeof(id), "%lld", (long long)t->id);
                snprintf(sw, sizeof(sw), "%llu",
                    (unsigned long long)t->switches);
                if (table_cells(tb, 9, id, t->name,
                    diesel__task_state_name(st), forbuf, sw, stack,
                    high, waits, spawned) != 0) {
                    fail(out, "%s", strerror(ENOMEM));
                    goto out;
                }
                if (diesel__console_table_bytes(tb) > out->limit)
                    w.full = 1;
            }
            listed++;
        }
        if (pace(&p) != 0) {
            interrupted(out);
            goto out;
        }
    }
    if (w.json) {
        if (listed > 0)
            put(&w, "\n");
        put(&w, "],\"deep\":[");
        put_deep_ids(&w, &dl);
        put(&w, "]}\n");
        put_before(&w, head, "{\"now_s\":%.3f,\"count\":%zu,\"tasks\":[",
            secs(start - l->started), listed);
    } else {
        /* The rows, now that the widths are known, in slices too. */
        if (!w.full) {
            int r = diesel__console_table_print_paced(tb, out, pace_cb, &p);

            if (r > 0) {
                interrupted(out);
                goto out;
            }
            if (r < 0)
                w.full = 1;
        }
        put(&w, "%zu green threads: %zu running, %zu ready, %zu waiting, "
            "%zu sleeping\n", listed, count[DIESEL__RUNNING],
            count[DIESEL__READY], count[DIESEL__WAITING],
            count[DIESEL__SLEEPING]);
        if (ninherited > 0)
            put(&w, "* a stack from the pool, used before: the mark may be "
                "an earlier green thread's\n");
        put_deep_lines(&w, &dl);
    }
    rc = done(&w);
out:
    diesel_console_table_destroy(tb);
    diesel__sym_close(tab);
    free(il.id);
    free(dl.d);
    return rc;
}

/* ---- stacks -------------------------------------------------------------- */

#define NAMES_SHOWN 8        /* names in a group's header */
#define IDS_LINE_MAX 200     /* bytes of the "ids:" line */

/*
 * Groups of identical stacks, built as the walk goes (a hash table of the
 * distinct stacks), so that nothing is left to sort but the groups.
 * Stacks are the same when their frames are, except the innermost, the
 * resume pc, which is compared by function: it is always in the library's
 * own parking code (diesel__task_park, diesel_task_yield...), which
 * reaches the switch from more than one place (a direct hand-off to the
 * next green thread, or back to the loop every 128 switches), and where
 * in it a green thread parked says nothing about the green thread.
 */
struct member {
    int64_t id;
    char name[DIESEL__NAME_MAX]; /* a copy: the record may be gone by the
                                    time the reply is written */
};

struct group {
    enum diesel__bt_how how;
    int n;                       /* frames */
    uintptr_t key0;              /* frame 0's function (its pc if
                                    unknown), 0 without frames */
    void **pc;                   /* the frames of its first member, the
                                    lowest id; malloc'd */
    uint64_t hash;
    struct member *m;            /* ascending ids; malloc'd */
    size_t count, cap;
};

struct groups {
    struct group *g;
    size_t n, cap;
    size_t *slot;                /* hash table: index in g + 1, 0 empty */
    size_t nslot;                /* a power of two, over 2n */
};

static uint64_t
stack_hash(enum diesel__bt_how how, int n, uintptr_t key0, void *const *pc)
{
    uint64_t h = ((uint64_t)how << 32 | (uint32_t)n) * 0x9E3779B97F4A7C15ull;

    h = (h ^ key0) * 0x9E3779B97F4A7C15ull;
    for (int i = 1; i < n; i++)
        h = (h ^ (h >> 29) ^ (uintptr_t)pc[i]) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

static int
same_stack(const struct group *g, enum diesel__bt_how how, int n,
    uintptr_t key0, void *const *pc)
{
    return g->how == how && g->n == n && g->key0 == key0 &&
        (n < 2 || memcmp(g->pc + 1, pc + 1, (size_t)(n - 1) *
        sizeof(*pc)) == 0);
}

static int
groups_rehash(struct groups *gs)
{
    size_t nslot = gs->nslot ? gs->nslot * 2 : 64;
    size_t *slot = calloc(nslot, sizeof(*slot));

    if (slot == NULL)
        return -1;
    for (size_t i = 0; i < gs->n; i++) {
        size_t j = (size_t)gs->g[i].hash & (nslot - 1);

        while (slot[j] != 0)
            j = (j + 1) & (nslot - 1);
        slot[j] = i + 1;
    }
    free(gs->slot);
    gs->slot = slot;
    gs->nslot = nslot;
    return 0;
}

/* Add green thread t, whose backtrace is bt, to its group. */
static int
groups_add(struct groups *gs, struct diesel__symtab *tab,
    const struct diesel__task *t, const struct diesel__bt *bt)
{
    uintptr_t key0 = 0;
    uint64_t h;
    size_t j;
    struct group *g = NULL;
    struct member *m;

    if (bt->n > 0) {
        struct diesel__sym sym;

        key0 = (uintptr_t)bt->pc[0];
        if (diesel__sym_lookup(tab, bt->pc[0], &sym) == 0 &&
            sym.func != NULL)
            key0 -= sym.func_off;
    }
    h = stack_hash(bt->how, bt->n, key0, bt->pc);
    if ((gs->n + 1) * 2 > gs->nslot && groups_rehash(gs) != 0)
        return -1;
    for (j = (size_t)h & (gs->nslot - 1); gs->slot[j] != 0;
        j = (j + 1) & (gs->nslot - 1)) {
        struct group *c = &gs->g[gs->slot[j] - 1];

        if (c->hash == h && same_stack(c, bt->how, bt->n, key0, bt->pc)) {
            g = c;
            break;
        }
    }
    if (g == NULL) {
        if (gs->n == gs->cap) {
            size_t cap = gs->cap ? gs->cap * 2 : 16;
            struct group *a = realloc(gs->g, cap * sizeof(*a));

            if (a == NULL)
                return -1;
            gs->g = a;
            gs->cap = cap;
        }
        g = &gs->g[gs->n];
        memset(g, 0, sizeof(*g));
        g->pc = malloc((bt->n ? (size_t)bt->n : 1) * sizeof(void *));
        if (g->pc == NULL)
            return -1;
        memcpy(g->pc, bt->pc, (size_t)bt->n * sizeof(void *));
        g->how = bt->how;
        g->n = bt->n;
        g->key0 = key0;
        g->hash = h;
        gs->slot[j] = ++gs->n;
    }
    if (g->count == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;

        if ((m = realloc(g->m, cap * sizeof(*m))) == NULL)
            return -1;
        g->m = m;
        g->cap = cap;
    }
    m = &g->m[g->count++];
    m->id = t->id;
    memcpy(m->name, t->name, sizeof(m->name));
    return 0;
}

static void
groups_free(struct groups *gs)
{
    for (size_t i = 0; i < gs->n; i++) {
        free(gs->g[i].pc);
        free(gs->g[i].m);
    }
    free(gs->g);
    free(gs->slot);
}

/* The largest group first, then by lowest id. */
static int
cmp_group(const void *a, const void *b)
{
    const struct group *x = a, *y = b;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->m[0].id > y->m[0].id) - (x->m[0].id < y->m[0].id);
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
put_ids(struct w *w, const struct group *g)
{
    char line[IDS_LINE_MAX + 128];  /* room for LOOP:ID-ID, ", ..." */
    const struct member *m = g->m;
    size_t k = 0, n = g->count;

    k += (size_t)snprintf(line, sizeof(line), "    ids: ");
    for (size_t i = 0; i < n; ) {
        size_t j = i;

        while (j + 1 < n && m[j + 1].id == m[j].id + 1)
            j++;
        if (k > IDS_LINE_MAX) {
            k += (size_t)snprintf(line + k, sizeof(line) - k, ", ...");
            break;
        }
        /* Beside other loops, ids read LOOP:ID, as tasks shows them. */
        k += (size_t)snprintf(line + k, sizeof(line) - k, "%s%s%s%lld",
            i ? ", " : "", w->out->loop != NULL ? w->out->loop : "",
            w->out->loop != NULL ? ":" : "", (long long)m[i].id);
        if (j > i)
            k += (size_t)snprintf(line + k, sizeof(line) - k, "-%lld",
                (long long)m[j].id);
        i = j + 1;
    }
    put(w, "%s\n", line);
}

static void
put_group_text(struct w *w, struct diesel__symtab *tab,
    const struct group *g, int all)
{
    const char *note = how_note(g->how);
    int first = 0, in = -1, n = diesel__frames_cut(tab, g->pc, g->n);

    put(w, "[%zu] === ", g->count);
    for (size_t i = 0; i < g->count && i < NAMES_SHOWN; i++) {
        char name[TX_NAME];

        put(w, "%s%s", i ? ", " : "", tx(name, sizeof(name), g->m[i].name));
    }
    put(w, "%s ===\n", g->count > NAMES_SHOWN ? ", ..." : "");
    put_ids(w, g);
    if (note != NULL)
        put(w, "    %s\n", note);
    /* The library's frames at the top, folded into the call they are
     * (the service's first), unless --all. */
    if (!all && (first = diesel__frames_lib(tab, g->pc, n, &in)) > 0) {
        struct diesel__sym s;
        char func[1024];

        if (in >= 0 && diesel__sym_lookup(tab, g->pc[in], &s) == 0)
            put(w, "    (%s %s: %d library frame%s)\n",
                g->how == DIESEL__BT_RUNNING ? "in" : "parked in",
                tx(func, sizeof(func), s.func), first, first > 1 ? "s" : "");
    }
    for (int f = first; f < n && !w->full; f++) {
        char frame[512], eframe[4 * sizeof(frame)];

        if (!all && f == n - 1 && diesel__frame_entry(tab, g->pc[f]))
            break;
        fmt_frame(tab, g->pc[f], frame, sizeof(frame));
        put(w, "    %s\n", tx(eframe, sizeof(eframe), frame));
    }
}

/* A group in JSON; its ids and names count as items of the walk. */
static int
put_group_json(struct w *w, struct diesel__symtab *tab,
    const struct group *g, struct pace *p)
{
    int n;

    put(w, "{\"count\":%zu,\"how\":\"%s\",\"ids\":[", g->count,
        how_name(g->how));
    for (size_t i = 0; i < g->count && !w->full; i++) {
        put(w, "%s%lld", i ? "," : "", (long long)g->m[i].id);
        if (pace(p) != 0)
            return -1;
    }
    put(w, "],\"names\":[");
    for (size_t i = 0; i < g->count && !w->full; i++) {
        if (i)
            put(w, ",");
        jstr(w, g->m[i].name);
        if (pace(p) != 0)
            return -1;
    }
    put(w, "],\"frames\":[");
    /* Down to the green thread's entry: what is under it is noise. */
    n = diesel__frames_cut(tab, g->pc, g->n);
    for (int f = 0; f < n && !w->full; f++) {
        struct diesel__sym s;
        int in = diesel__sym_lookup(tab, g->pc[f], &s) == 0;

        put(w, "%s{\"pc\":\"0x%llx\",\"func\":", f ? "," : "",
            (unsigned long long)(uintptr_t)g->pc[f]);
        jstr(w, in ? s.func : NULL);
        if (in && s.func != NULL)
            put(w, ",\"offset\":%llu", (unsigned long long)s.func_off);
        else
            put(w, ",\"offset\":null");
        put(w, ",\"module\":");
        jstr(w, in ? s.module : NULL);
        if (in)
            put(w, ",\"module_offset\":\"0x%llx\"",
                (unsigned long long)s.module_off);
        else
            put(w, ",\"module_offset\":null");
        put(w, ",\"file\":");
        jstr(w, in ? s.file : NULL);
        if (in && s.file != NULL)
            put(w, ",\"line\":%u", s.line);
        else
            put(w, ",\"line\":null");
        put(w, ",\"library\":%s}", in && s.lib ? "true" : "false");
    }
    put(w, "]}");
    return 0;
}

int
diesel__cmd_stacks(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] =
        "stacks [--all] [--json] [--loop NAME] [[LOOP:]ID]";
    struct diesel_loop *l;
    struct idlist il = { NULL, 0 };
    struct groups gs = { NULL, 0, 0, NULL, 0 };
    struct diesel__symtab *tab = NULL;
    struct diesel__bt *bt = NULL;
    struct pace p;
    size_t nd = 0;
    char *pos[1];
    struct w w;
    int npos, rc = -1, all = 0, k = 0;

    (void)arg;
    /* --all: the library's frames too; the other options are args'. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--all") == 0)
            all = 1;
        else
            argv[k++] = argv[i];
    }
    argc = k;
    if ((npos = args(out, &w, argc, argv, pos, 1, usage)) < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    pace_init(&p, l);
    if (npos == 1) {
        int64_t id = parse_id(pos[0]);

        if (id == 0)
            return fail(out, "bad green thread id '%.64s'; usage: %s",
                pos[0], usage);
        if (diesel__task_find(l, id) == NULL)
            return fail(out, "no green thread %lld", (long long)id);
        il.id = malloc(sizeof(*il.id));
        if (il.id == NULL)
            return fail(out, "%s", strerror(ENOMEM));
        il.id[0] = id;
        il.n = 1;
    } else if (ids_sorted(l, &il) != 0) {
        return fail(out, "%s", strerror(ENOMEM));
    }
    diesel__bt_init();
    /* The signal handlers' table, brought up to date if modules were
     * loaded since (the reports then name their frames too). */
    diesel__sym_prepare();
    bt = malloc(sizeof(*bt));
    tab = diesel__sym_open();
    if (bt == NULL || tab == NULL) {
        fail(out, "%s", strerror(ENOMEM));
        goto out;
    }
    /* The walk: each green thread's backtrace into its group, in order
     * of id, so that each group's members are sorted and its first one
     * has the lowest id. */
    for (size_t i = 0; i < il.n; i++) {
        struct diesel__task *t = diesel__task_find(l, il.id[i]);

        if (t != NULL) {
            diesel__bt_task(t, bt);
            if (groups_add(&gs, tab, t, bt) != 0) {
                fail(out, "%s", strerror(ENOMEM));
                goto out;
            }
            nd++;
        }
        if (pace(&p) != 0) {
            interrupted(out);
            goto out;
        }
    }
    if (gs.n > 1)
        qsort(gs.g, gs.n, sizeof(*gs.g), cmp_group);
    if (w.json)
        put(&w, "{\"count\":%zu,\"groups\":[\n", nd);
    for (size_t i = 0; i < gs.n && !w.full; i++) {
        if (w.json) {
            if (put_group_json(&w, tab, &gs.g[i], &p) != 0) {
                interrupted(out);
                goto out;
            }
            put(&w, i + 1 < gs.n ? ",\n" : "\n");
        } else {
            put_group_text(&w, tab, &gs.g[i], all);
        }
        if (pace(&p) != 0) {
            interrupted(out);
            goto out;
        }
    }
    if (w.json)
        put(&w, "]}\n");
    else
        put(&w, "%zu green thread%s, %zu distinct stack%s\n", nd,
            nd == 1 ? "" : "s", gs.n, gs.n == 1 ? "" : "s");
    rc = done(&w);
out:
    groups_free(&gs);
    free(bt);
    free(il.id);
    diesel__sym_close(tab);
    return rc;
}

/* ---- stats --------------------------------------------------------------- */

/* A row of a two-column table: a key and its value (out of memory makes
 * the table fail when printed: console_table.c). */
static void DIESEL_PRINTF(3, 4)
kv(struct diesel_console_table *t, const char *key, const char *fmt, ...)
{
    char val[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    (void)(table_cells(t, 2, key, val) != 0);
}

int
diesel__cmd_stats(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct w w;
    struct diesel_console_table *tb;
    uint64_t ready = 0;
    int64_t up;

    (void)arg;
    if (args(out, &w, argc, argv, NULL, 0,
        "stats [--json] [--loop NAME]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    ready = diesel__nready(l);
    up = diesel__now_ns() - l->started;
    if (w.json) {
        put(&w, "{\"uptime_s\":%.3f,\"iterations\":%llu,\"switches\":%llu,"
            "\"polls\":%llu,\"events\":%llu,\"fds_watched\":%d,"
            "\"fd_waiters\":%d,"
            "\"timers_pending\":%zu,\"green_threads\":%llu,\"spawned\":%llu,"
            "\"ready\":%llu,\"pooled_stacks\":%u,\"console_sessions\":%d,"
            "\"dropped_signals\":%lu,\"backend\":",
            secs(up), (unsigned long long)l->iterations,
            (unsigned long long)l->switches, (unsigned long long)l->polls,
            (unsigned long long)l->events, l->watched, l->fd_waiters, l->timers.n,
            (unsigned long long)l->ntasks, (unsigned long long)l->spawned,
            (unsigned long long)ready, l->npool, diesel__console_sessions(),
            diesel__console_dropped());
        jstr(&w, diesel_loop_backend());
        put(&w, ",\"switch\":");
        jstr(&w, diesel__switch_name());
        put(&w, ",\"hog_warn_ms\":%lld,\"longest_runs\":[",
            (long long)diesel__hog_threshold(l));
        for (size_t i = 0; i < DIESEL__RUNS_TOP && l->runs[i].len > 0; i++) {
            put(&w, "%s{\"id\":%lld,\"name\":", i > 0 ? "," : "",
                (long long)l->runs[i].id);
            jstr(&w, l->runs[i].name);
            put(&w, ",\"ms\":%lld}", (long long)(l->runs[i].len / 1000000));
        }
        put(&w, "]}\n");
        return done(&w);
    }
    if ((tb = diesel_console_table_create(2)) == NULL)
        return fail(out, "%s", strerror(ENOMEM));
    kv(tb, "uptime", "%.3fs", secs(up));
    kv(tb, "iterations", "%llu", (unsigned long long)l->iterations);
    kv(tb, "switches", "%llu", (unsigned long long)l->switches);
    kv(tb, "polls", "%llu", (unsigned long long)l->polls);
    kv(tb, "events", "%llu", (unsigned long long)l->events);
    kv(tb, "fds watched", "%d", l->watched);
    kv(tb, "fd waiters", "%d", l->fd_waiters);
    kv(tb, "timers pending", "%zu", l->timers.n);
    kv(tb, "green threads", "%llu (%llu spawned, %llu ready, %u pooled "
        "stacks)", (unsigned long long)l->ntasks,
        (unsigned long long)l->spawned, (unsigned long long)ready, l->npool);
    kv(tb, "console sessions", "%d", diesel__console_sessions());
    kv(tb, "dropped signals", "%lu", diesel__console_dropped());
    kv(tb, "backend", "%s", diesel_loop_backend());
    kv(tb, "switch", "%s", diesel__switch_name());
    if (diesel__hog_threshold(l) > 0)
        kv(tb, "hog warnings", "over %lld ms",
            (long long)diesel__hog_threshold(l));
    else
        kv(tb, "hog warnings", "off");
    /* Runs are measured where the hog watchdog looks, so as to cost the
     * switch nothing (hog.c): with the watchdog off there are none, and
     * the reply says why rather than "none seen". */
    if (l->runs[0].len == 0 && diesel__hog_threshold(l) > 0)
        kv(tb, "longest runs", "none over %lld ms",
            (long long)diesel__hog_threshold(l));
    else if (l->runs[0].len == 0)
        kv(tb, "longest runs", "not recorded: hog warnings are off (turn "
            "them on with diesel_loop_hog_warn)");
    for (size_t i = 0; i < DIESEL__RUNS_TOP && l->runs[i].len > 0; i++)
        kv(tb, i == 0 ? "longest runs" : "", "%lld ms  %s (id %lld)",
            (long long)(l->runs[i].len / 1000000), l->runs[i].name,
            (long long)l->runs[i].id);
    if (diesel_console_table_print(tb, out) != 0)
        w.full = 1;
    diesel_console_table_destroy(tb);
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

/* High-water marks over the live green threads. */
struct highs {
    int64_t total;       /* bytes, sum of the known marks */
    uint64_t known;      /* green threads whose mark is known */
    int64_t max;         /* the deepest mark, -1 none */
    int64_t max_size;    /* its stack's size */
    int64_t max_id;
    char max_name[DIESEL__NAME_MAX];
    struct deeplist deep; /* green threads over DEEP_PCT */
};

static int
add_high(struct diesel__task *t, struct highs *h)
{
    int deep;
    int64_t hw = high_water(t, &deep);

    if (hw < 0)
        return 0;
    h->known++;
    h->total += hw;
    if (hw > h->max) {
        h->max = hw;
        h->max_size = (int64_t)(t->stack_hi - t->stack_lo);
        h->max_id = t->id;
        memcpy(h->max_name, t->name, sizeof(h->max_name));
    }
    return deep ? deep_add(&h->deep, t, hw) : 0;
}

/* mem's figures of the whole process, the same whichever loop asks. */
struct mem_proc {
    int64_t rss, peak;
    struct diesel__malloc_info mi;   /* source NULL: no figures */
    struct diesel__stack_stats ss;   /* every loop's stacks */
    long maps, limit;
};

/* ... and those of one loop: its green threads' stacks and its pool. */
struct mem_loop {
    struct committed live, pooled;
    int64_t committed;               /* -1 unknown */
    struct highs hi;
};

static void
mem_proc_get(struct mem_proc *m)
{
    diesel__platform_rss(&m->rss, &m->peak);
    if (diesel__platform_malloc_info(&m->mi) != 0)
        m->mi.source = NULL;
    diesel__stack_stats(&m->ss);
    m->maps = diesel__platform_map_count();
    m->limit = diesel__platform_map_limit();
}

/* Walk l's green threads and pool: 0, 1 interrupted, -1 out of memory;
 * the caller frees m->hi.deep.d. */
static int
mem_loop_get(struct diesel_loop *l, struct mem_loop *m)
{
    struct idlist il;
    struct pace p;

    memset(m, 0, sizeof(*m));
    m->hi.max = -1;
    pace_init(&p, l);
    if (purge_pool(l, &p) != 0)
        return 1;
    if (ids_sorted(l, &il) != 0)
        return -1;
    for (size_t i = 0; i < il.n; i++) {
        struct diesel__task *t = diesel__task_find(l, il.id[i]);

        if (t != NULL) {
            add_resident(t, &m->live);
            if (add_high(t, &m->hi) != 0) {
                free(il.id);
                return -1;
            }
        }
        if (pace(&p) != 0) {
            free(il.id);
            return 1;
        }
    }
    free(il.id);
    /* The pool, at most POOL_MAX stacks (a mincore(2) each), in one go:
     * it is a list that changes whenever the loop turns. */
    for (struct diesel__task *t = l->pool; t != NULL; t = t->next)
        add_resident(t, &m->pooled);
    m->committed = m->live.unknown || m->pooled.unknown ? -1 :
        m->live.bytes + m->pooled.bytes;
    return 0;
}

/* "rss":...,"malloc":{...} */
static void
mem_proc_json_head(struct w *w, const struct mem_proc *m)
{
    put(w, "\"rss\":");
    jnum(w, m->rss);
    put(w, ",\"rss_peak\":");
    jnum(w, m->peak);
    put(w, ",\"malloc\":");
    if (m->mi.source == NULL) {
        put(w, "null");
    } else {
        put(w, "{\"source\":");
        jstr(w, m->mi.source);
        put(w, ",\"in_use\":");
        jnum(w, m->mi.in_use);
        put(w, ",\"free\":");
        jnum(w, m->mi.free);
        put(w, ",\"mmapped\":");
        jnum(w, m->mi.mmapped);
        put(w, ",\"arena\":");
        jnum(w, m->mi.arena);
        put(w, ",\"releasable\":");
        jnum(w, m->mi.releasable);
        put(w, "}");
    }
}

/* "committed":...,"deep":[...] inside "stacks" */
static void
mem_loop_json(struct w *w, const struct mem_loop *m)
{
    const struct highs *hi = &m->hi;

    put(w, "\"committed\":");
    jnum(w, m->committed);
    put(w, ",\"green_threads\":%llu,\"committed_green_threads\":",
        (unsigned long long)m->live.stacks);
    jnum(w, m->live.unknown ? -1 : m->live.bytes);
    put(w, ",\"pooled\":%llu,\"committed_pooled\":",
        (unsigned long long)m->pooled.stacks);
    jnum(w, m->pooled.unknown ? -1 : m->pooled.bytes);
    put(w, ",\"high_water\":%lld,\"high_water_known\":%llu,"
        "\"high_water_max\":", (long long)hi->total,
        (unsigned long long)hi->known);
    jnum(w, hi->max);
    if (hi->max >= 0) {
        put(w, ",\"high_water_max_id\":%lld,\"high_water_max_name\":",
            (long long)hi->max_id);
        jstr(w, hi->max_name);
        put(w, ",\"high_water_max_stack_size\":%lld",
            (long long)hi->max_size);
    } else {
        put(w, ",\"high_water_max_id\":null,"
            "\"high_water_max_name\":null,"
            "\"high_water_max_stack_size\":null");
    }
    put(w, ",\"deep\":[");
    put_deep_ids(w, &hi->deep);
    put(w, "]");
}

/* ,"mappings":...,"guard":"..." */
static void
mem_proc_json_tail(struct w *w, const struct mem_proc *m)
{
    put(w, ",\"mappings\":");
    jnum(w, m->maps);
    put(w, ",\"max_map_count\":");
    jnum(w, m->limit);
    put(w, ",\"guard\":\"%s\"", m->ss.guard_madvise ? "madvise" :
        "mprotect");
}

static void
mem_proc_text_head(struct w *w, const struct mem_proc *m)
{
    char a[32], b[32], c[32], e[32];

    fmt_bytes(a, sizeof(a), m->rss);
    fmt_bytes(b, sizeof(b), m->peak);
    put(w, "rss               %s (peak %s)\n", a, b);
    if (m->mi.source == NULL) {
        put(w, "malloc            unknown (no figures from this "
            "allocator)\n");
    } else {
        fmt_bytes(a, sizeof(a), m->mi.in_use);
        fmt_bytes(b, sizeof(b), m->mi.free);
        fmt_bytes(c, sizeof(c), m->mi.mmapped);
        fmt_bytes(e, sizeof(e), m->mi.arena);
        put(w, "malloc            %s in use, %s free, %s mmapped, %s arena "
            "(%s)\n", a, b, c, e, m->mi.source);
    }
    fmt_bytes(a, sizeof(a), (int64_t)m->ss.bytes);
    put(w, "stacks reserved   %llu stacks, %s (all loops of the process)\n",
        (unsigned long long)m->ss.mapped, a);
}

static void
mem_loop_text(struct w *w, const struct mem_loop *m)
{
    const struct highs *hi = &m->hi;
    char a[32], b[32], c[32], e[32];

    fmt_bytes(a, sizeof(a), m->committed);
    fmt_bytes(b, sizeof(b), m->live.unknown ? -1 : m->live.bytes);
    fmt_bytes(c, sizeof(c), m->pooled.unknown ? -1 : m->pooled.bytes);
    put(w, "stacks committed  %s: %s in %llu green threads, %s in %llu "
        "pooled stacks\n", a, b, (unsigned long long)m->live.stacks, c,
        (unsigned long long)m->pooled.stacks);
    if (hi->known == 0) {
        put(w, "stack high water  unknown\n");
    } else {
        char ename[TX_NAME];

        fmt_bytes(a, sizeof(a), hi->total);
        fmt_bytes(b, sizeof(b), hi->total / (int64_t)hi->known);
        fmt_bytes(c, sizeof(c), hi->max);
        fmt_bytes(e, sizeof(e), hi->max_size);
        put(w, "stack high water  %s in %llu green threads, %s each on "
            "average; deepest %s of %s (%lld%%) in '%s' (id %lld)\n", a,
            (unsigned long long)hi->known, b, c, e,
            (long long)(hi->max * 100 / hi->max_size),
            tx(ename, sizeof(ename), hi->max_name),
            (long long)hi->max_id);
    }
}

static void
mem_proc_text_tail(struct w *w, const struct mem_proc *m)
{
    if (m->maps >= 0 && m->limit > 0)
        put(w, "mappings          %ld of %ld (vm.max_map_count)\n", m->maps,
            m->limit);
    else if (m->maps >= 0)
        put(w, "mappings          %ld (no limit known)\n", m->maps);
    else
        put(w, "mappings          unknown\n");
    put(w, "guard pages       %s\n", m->ss.guard_madvise ?
        "madvise (MADV_GUARD_INSTALL: no extra mapping per stack)" :
        "mprotect (one more mapping per stack)");
}

/*
 * mem, whole (one loop: the process's figures and the loop's, as they
 * always were), or the part of the process alone or of the loop alone
 * (several loops: console_loops.c prints the process's once, then each
 * loop's in its section).
 */
enum { MEM_ALL, MEM_PROCESS, MEM_LOOP };

static int
mem(struct diesel_console_out *out, int argc, char **argv, int part)
{
    struct diesel_loop *l;
    struct w w;
    struct mem_proc mp;
    struct mem_loop ml;
    int r = 0;

    if (args(out, &w, argc, argv, NULL, 0,
        "mem [--json] [--loop NAME]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    memset(&ml, 0, sizeof(ml));
    if (part != MEM_PROCESS && (r = mem_loop_get(l, &ml)) != 0) {
        free(ml.hi.deep.d);
        return r > 0 ? interrupted(out) : fail(out, "%s", strerror(ENOMEM));
    }
    /* After the walk, whose purge of the pool may have given stacks
     * back. */
    if (part != MEM_LOOP)
        mem_proc_get(&mp);
    if (w.json) {
        put(&w, "{");
        if (part != MEM_LOOP) {
            mem_proc_json_head(&w, &mp);
            put(&w, ",");
        }
        put(&w, "\"stacks\":{");
        if (part != MEM_LOOP)
            put(&w, "\"mapped\":%llu,\"reserved\":%llu",
                (unsigned long long)mp.ss.mapped,
                (unsigned long long)mp.ss.bytes);
        if (part == MEM_ALL)
            put(&w, ",");
        if (part != MEM_PROCESS)
            mem_loop_json(&w, &ml);
        put(&w, "}");
        if (part != MEM_LOOP)
            mem_proc_json_tail(&w, &mp);
        put(&w, "}\n");
    } else {
        if (part != MEM_LOOP)
            mem_proc_text_head(&w, &mp);
        if (part != MEM_PROCESS)
            mem_loop_text(&w, &ml);
        if (part != MEM_LOOP)
            mem_proc_text_tail(&w, &mp);
        put_deep_lines(&w, &ml.hi.deep);
    }
    free(ml.hi.deep.d);
    return done(&w);
}

int
diesel__cmd_mem(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    (void)arg;
    return mem(out, argc, argv, MEM_ALL);
}

int
diesel__cmd_mem_process(struct diesel_console_out *out, int argc,
    char **argv, void *arg)
{
    (void)arg;
    return mem(out, argc, argv, MEM_PROCESS);
}

int
diesel__cmd_mem_loop(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    (void)arg;
    return mem(out, argc, argv, MEM_LOOP);
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

/*
 * A unix socket's address in the text form of fds: its PROTO already
 * says unix, so the "unix:" prefix of the JSON's addresses is left out
 * ("unix unix:/run/app.sock" said the word twice), and an unnamed end
 * reads "(unnamed)".
 */
static const char *
unix_addr(const char *a)
{
    if (strncmp(a, "unix:", 5) != 0)
        return a;
    return a[5] != '\0' ? a + 5 : "(unnamed)";
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

/*
 * With several loops, `fds` lists the process's descriptors once, on the
 * session's loop, and asks every loop (each on its own thread, through
 * its mailbox: loops.c) for the descriptors its green threads wait on,
 * one line each: "FD r|w ID LEN NAME" (NAME is LEN bytes).  So no loop
 * reads another's table, and no two walks run at once: a walk holds a
 * descriptor of its own (the /proc/self/fd directory), which another
 * walk would find and describe while it is closed.
 */
struct fdw {
    int fd;
    int dir;                            /* DIESEL_READ or DIESEL_WRITE */
    long long id;
    char loop[DIESEL__NAME_MAX];
    char name[DIESEL__NAME_MAX];
};

static int
fd_waiters(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_loop *l = diesel__loop;

    (void)argc;
    (void)argv;
    (void)arg;
    for (int fd = 0; fd < l->nfds; fd++) {
        for (int d = DIESEL_READ; d <= DIESEL_WRITE; d++) {
            struct diesel__task *t = d == DIESEL_READ ?
                diesel__fd_reader(&l->fds[fd]) :
                diesel__fd_writer(&l->fds[fd]);

            if (t != NULL && diesel_console_printf(out, "%d %c %lld %zu %s\n",
                fd, d == DIESEL_READ ? 'r' : 'w', (long long)t->id,
                strlen(t->name), t->name) < 0)
                return diesel_console_error(out, "%s", strerror(ENOMEM));
        }
    }
    return 0;
}

/* Every loop's waiters (only's, if not NULL) into *ws, sorted by fd; the
 * loops that did not answer are named in *stuck (malloc'd), ", " between
 * names (a loop's name has no space), "" when all did.  0, or -1 with
 * out's error set. */
static int
fd_waiters_all(struct diesel_console_out *out, const char *only,
    struct fdw **ws, size_t *nws, char **stuck)
{
    struct diesel__loops_target *ts;
    char *av[] = { "fds", NULL };
    size_t n, cap = 0, k = 0, u = 0;
    struct fdw *v = NULL;

    *stuck = NULL;
    if (diesel__loops_snapshot(&ts, &n, only) != 0)
        return fail(out, "%s", strerror(errno));
    if (n == 0) {
        diesel__loops_free(ts, n);
        return fail(out, "no loop is named \"%.40s\" (loops lists them)",
            only);
    }
    /* Room for every name, whatever the count of loops. */
    if ((*stuck = malloc(n * (sizeof(ts[0].name) + 2) + 1)) == NULL) {
        diesel__loops_free(ts, n);
        return fail(out, "%s", strerror(ENOMEM));
    }
    (*stuck)[0] = '\0';
    diesel__loops_run(ts, n, out, fd_waiters, NULL, 1, av, 0);
    for (size_t i = 0; i < n; i++) {
        const char *b = ts[i].out.buf, *e = b + ts[i].out.len;

        if (ts[i].stuck || ts[i].status != 0) {
            u += (size_t)sprintf(*stuck + u, "%s%s", u ? ", " : "",
                ts[i].name);
            continue;
        }
        while (b != NULL && b < e) {
            struct fdw f;
            char d;
            size_t len;
            int used = 0;
            const char *nl = memchr(b, '\n', (size_t)(e - b));
            char line[64];
            size_t ll = nl == NULL ? (size_t)(e - b) : (size_t)(nl - b);

            memset(&f, 0, sizeof(f));
            snprintf(line, sizeof(line), "%.*s", (int)(ll < 63 ? ll : 63),
                b);
            if (sscanf(line, "%d %c %lld %zu%n", &f.fd, &d, &f.id, &len,
                &used) != 4 || used == 0 || b[used] != ' ' ||
                len >= sizeof(f.name) || len > (size_t)(e - b) - used - 1)
                break;
            /* The name is len bytes and may hold anything, '\n' too. */
            nl = b + used + 1 + len;
            snprintf(f.name, sizeof(f.name), "%.*s", (int)len,
                b + used + 1);
            snprintf(f.loop, sizeof(f.loop), "%s", ts[i].name);
            f.dir = d == 'r' ? DIESEL_READ : DIESEL_WRITE;
            if (k == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct fdw *nv = realloc(v, nc * sizeof(*nv));

                if (nv == NULL) {
                    free(v);
                    free(*stuck);
                    *stuck = NULL;
                    diesel__loops_free(ts, n);
                    return fail(out, "%s", strerror(ENOMEM));
                }
                v = nv;
                cap = nc;
            }
            v[k++] = f;
            b = nl < e ? nl + 1 : e;
        }
    }
    diesel__loops_free(ts, n);
    for (size_t i = 1; i < k; i++) {      /* by fd: few, mostly in order */
        struct fdw f = v[i];
        size_t j = i;

        for (; j > 0 && v[j - 1].fd > f.fd; j--)
            v[j] = v[j - 1];
        v[j] = f;
    }
    *ws = v;
    *nws = k;
    return 0;
}

/* fd's waiters in ws (sorted by fd). */
static void
fd_waiters_of(const struct fdw *ws, size_t nws, int fd,
    const struct fdw **rd, const struct fdw **wr)
{
    size_t lo = 0, hi = nws;

    *rd = *wr = NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (ws[mid].fd < fd)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < nws && ws[i].fd == fd; i++) {
        if (ws[i].dir == DIESEL_READ)
            *rd = &ws[i];
        else
            *wr = &ws[i];
    }
}

/* names, ", " between them (fd_waiters_all: no name has a space, a comma
 * may be in one), as a JSON array of strings. */
static void
put_names_json(struct w *w, const char *names)
{
    put(w, "[");
    for (const char *p = names; *p != '\0';) {
        const char *sep = strstr(p, ", ");
        size_t k = sep != NULL ? (size_t)(sep - p) : strlen(p);
        char name[DIESEL__NAME_MAX];

        snprintf(name, sizeof(name), "%.*s", (int)k, p);
        if (p != names)
            put(w, ",");
        jstr(w, name);
        p += k + (sep != NULL ? 2 : 0);
    }
    put(w, "]");
}

static void
put_fdw_json(struct w *w, const struct fdw *f)
{
    if (f == NULL) {
        put(w, "null");
        return;
    }
    put(w, "{\"id\":%lld,\"name\":", f->id);
    jstr(w, f->name);
    put(w, ",\"loop\":");
    jstr(w, f->loop);
    put(w, "}");
}

int
diesel__cmd_fds(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    struct diesel_loop *l;
    struct w w;
    struct pace p;
    struct diesel_console_table *tb = NULL;
    int *fds = NULL;
    size_t n = 0, listed = 0, head = 0, nws = 0;
    struct fdw *ws = NULL;
    const char *only = NULL;
    char *av[4], *stuck = NULL;
    int ac = 0, multi;

    (void)arg;
    /* --loop NAME: the descriptors that loop's green threads wait on. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--loop") == 0) {
            if (i + 1 >= argc)
                return fail(out, "--loop needs a loop's name (loops lists "
                    "them)");
            only = argv[++i];
        } else if (ac < 3) {
            av[ac++] = argv[i];
        } else {
            return fail(out, "usage: fds [--json] [--loop NAME]");
        }
    }
    av[ac] = NULL;
    if (args(out, &w, ac, av, NULL, 0, "fds [--json] [--loop NAME]") < 0 ||
        (l = loop_or_fail(out)) == NULL)
        return -1;
    multi = only != NULL || diesel__loops_count() > 1;
    if (multi && fd_waiters_all(out, only, &ws, &nws, &stuck) != 0)
        return -1;
    pace_init(&p, l);
    if (diesel__platform_fd_list(&fds, &n) != 0) {
        /* No list from the system: sweep the descriptor range, bounded
         * (a million fcntl calls would take long), in slices. */
        struct rlimit rl;
        long max = 65536;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
            rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur < max)
            max = (long)rl.rlim_cur;
        if (l->nfds > max)
            max = l->nfds;
        fds = malloc((size_t)max * sizeof(*fds));
        if (fds == NULL) {
            free(ws);
            free(stuck);
            return fail(out, "%s", strerror(ENOMEM));
        }
        for (int fd = 0; fd < max; fd++) {
            if (fcntl(fd, F_GETFD) != -1)
                fds[n++] = fd;
            if (pace(&p) != 0) {
                free(fds);
                free(ws);
                free(stuck);
                return interrupted(out);
            }
        }
    }
    /* The descriptors open when the command began, each described when
     * the walk gets to it; one closed meanwhile is left out.  The JSON
     * header, with the count, goes in front once it is known. */
    if (w.json) {
        head = out->len;
        put(&w, "\n");
    } else if ((tb = diesel_console_table_create(4)) == NULL ||
        table_cells(tb, 4, "FD", "TYPE", "WHAT", "WAITER") != 0) {
        diesel_console_table_destroy(tb);
        free(fds);
        free(ws);
        free(stuck);
        return fail(out, "%s", strerror(ENOMEM));
    }
    for (size_t i = 0; i < n && !w.full; i++) {
        int fd = fds[i];
        struct diesel__task *rd = NULL, *wr = NULL;
        const struct fdw *frd = NULL, *fwr = NULL;
        struct fdinfo fi;
        char what[2048], waiter[160 + 2 * DIESEL__NAME_MAX], num[16];
        size_t k = 0;

        if (i > 0 && pace(&p) != 0) {
            diesel_console_table_destroy(tb);
            free(fds);
            free(ws);
            free(stuck);
            return interrupted(out);
        }
        if (fcntl(fd, F_GETFD) == -1)
            continue;
        if (multi) {
            fd_waiters_of(ws, nws, fd, &frd, &fwr);
            if (only != NULL && frd == NULL && fwr == NULL)
                continue;
        } else if (fd < l->nfds) {
            rd = diesel__fd_reader(&l->fds[fd]);
            wr = diesel__fd_writer(&l->fds[fd]);
        }
        fd_describe(fd, &fi);
        if (w.json) {
            put(&w, "%s{\"fd\":%d,\"type\":\"%s\"", listed ? ",\n" : "",
                fd, fi.type);
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
            if (multi)
                put_fdw_json(&w, frd);
            else
                put_waiter_json(&w, rd);
            put(&w, ",\"writer\":");
            if (multi)
                put_fdw_json(&w, fwr);
            else
                put_waiter_json(&w, wr);
            put(&w, "}");
            listed++;
            continue;
        }
        listed++;
        if (fi.is_socket)
            snprintf(what, sizeof(what), "%s%s %s%s%s", fi.proto,
                fi.listening ? " listening" : "", unix_addr(fi.local),
                fi.peer[0] ? " -> " : "", unix_addr(fi.peer));
        else
            snprintf(what, sizeof(what), "%s", fi.path[0] ? fi.path : "-");
        waiter[0] = '\0';
        if (frd != NULL)
            k += (size_t)snprintf(waiter, sizeof(waiter), "read: %s:%lld "
                "(%s)", frd->loop, frd->id, frd->name);
        if (fwr != NULL && k < sizeof(waiter))
            k += (size_t)snprintf(waiter + k, sizeof(waiter) - k, "%swrite: "
                "%s:%lld (%s)", k ? ", " : "", fwr->loop, fwr->id, fwr->name);
        if (rd != NULL)
            k += (size_t)snprintf(waiter, sizeof(waiter), "read: %lld (%s)",
                (long long)rd->id, rd->name);
        if (wr != NULL && k < sizeof(waiter))
            snprintf(waiter + k, sizeof(waiter) - k, "%swrite: %lld (%s)",
                k ? ", " : "", (long long)wr->id, wr->name);
        snprintf(num, sizeof(num), "%d", fd);
        if (table_cells(tb, 4, num, fi.type, what, waiter) != 0) {
            diesel_console_table_destroy(tb);
            free(fds);
            free(ws);
            free(stuck);
            return fail(out, "%s", strerror(ENOMEM));
        }
    }
    if (w.json) {
        put(&w, "%s]", listed ? "\n" : "");
        if (multi) {
            /* The loops that did not answer, whose waiters are missing. */
            put(&w, ",\"unanswered\":");
            put_names_json(&w, stuck);
        }
        put(&w, "}\n");
        put_before(&w, head, "{\"count\":%zu,\"fds\":[", listed);
    } else {
        int r = diesel__console_table_print_paced(tb, out, pace_cb, &p);

        diesel_console_table_destroy(tb);
        if (r > 0) {
            free(fds);
            free(ws);
            free(stuck);
            return interrupted(out);
        }
        if (r < 0)
            w.full = 1;
        if (only != NULL)
            put(&w, "%zu descriptors that loop %s's green threads wait on\n",
                listed, only);
        else
            put(&w, "%zu descriptors open\n", listed);
        if (multi && stuck[0] != '\0')
            put(&w, "(no answer from loop %s: the descriptors its green "
                "threads wait on are not shown)\n", stuck);
    }
    free(fds);
    free(ws);
    free(stuck);
    return done(&w);
}

/* ---- log ----------------------------------------------------------------- */

/* A row of log's table: LOGGER  LEVEL  WHENCE. */
static void
log_line(const char *name, int level, int own, void *arg)
{
    struct diesel_console_table *t = arg;

    (void)(table_cells(t, 3, name != NULL ? name : "*",
        diesel_log_level_name(level), name == NULL ? "the default" :
        own ? "set" : "the default's") != 0);
}

struct log_json {
    struct w *w;
    int first;
};

static void
log_json_entry(const char *name, int level, int own, void *arg)
{
    struct log_json *lj = arg;

    (void)own;
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

/* The loggers that take the default's level, for the JSON's list. */
static void
log_json_inherited(const char *name, int level, int own, void *arg)
{
    struct log_json *lj = arg;

    (void)level;
    if (name == NULL || own)
        return;
    if (!lj->first)
        put(lj->w, ",");
    lj->first = 0;
    jstr(lj->w, name);
}

/*
 * Whether a logger is known (it was given a level, or something logged
 * to it), and the names of those that are, for the error of one that is
 * not: "*, diesel, dummy", cut with ", ..." where the line would not fit.
 */
struct log_known {
    const char *name;            /* the one looked for */
    int found;
    int full;                    /* list ends with ", ..." */
    char list[112];              /* the names, escaped */
    size_t len;
};

static void
log_known_entry(const char *name, int level, int own, void *arg)
{
    struct log_known *k = arg;
    char buf[TX_NAME];
    size_t n;

    (void)level;
    (void)own;
    if (name != NULL && strcmp(name, k->name) == 0)
        k->found = 1;
    if (k->full)
        return;
    tx(buf, sizeof(buf), name != NULL ? name : "*");
    n = strlen(buf);
    /* Room is kept for ", ..." after every name. */
    if (k->len + 2 + n + sizeof(", ...") > sizeof(k->list)) {
        memcpy(k->list + k->len, ", ...", sizeof(", ..."));
        k->full = 1;
        return;
    }
    k->len += (size_t)snprintf(k->list + k->len, sizeof(k->list) - k->len,
        "%s%s", k->len ? ", " : "", buf);
}

int
diesel__cmd_log(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "log [--json] [[--new] LOGGER LEVEL]";
    char *pos[2], *av[8];
    struct w w;
    int npos, level, was, isnew = 0, ac = 0;
    const char *logger;

    /* `log tail N` (console_log.c); `log tail LEVEL` still sets the
     * level of a logger named tail. */
    if (argc >= 2 && strcmp(argv[1], "tail") == 0 &&
        (argc == 2 || diesel_log_level_parse(argv[2]) < 0))
        return diesel__cmd_log_tail(out, argc - 1, argv + 1, arg);
    if (argc >= 2 && strcmp(argv[1], "follow") == 0 &&
        (argc == 2 || diesel_log_level_parse(argv[2]) < 0))
        return diesel__cmd_log_follow(out, argc - 1, argv + 1, arg);
    (void)arg;
    /* --new: LOGGER may be one that has not logged yet. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--new") == 0)
            isnew = 1;
        else if (ac < (int)(sizeof(av) / sizeof(av[0])))
            av[ac++] = argv[i];
        else
            return fail(out, "usage: %s", usage);
    }
    if ((npos = args(out, &w, ac, av, pos, 2, usage)) < 0)
        return -1;
    if (npos == 0 && !isnew) {
        if (w.json) {
            struct log_json lj = { &w, 1 };

            diesel__log_foreach(log_json_entry, &lj);
            put(&w, "},\"inherited\":[");
            lj.first = 1;
            diesel__log_foreach(log_json_inherited, &lj);
            put(&w, "]}\n");
        } else {
            struct diesel_console_table *t = diesel_console_table_create(3);

            if (t == NULL || table_cells(t, 3, "LOGGER", "LEVEL", "WHENCE")
                != 0) {
                diesel_console_table_destroy(t);
                return fail(out, "%s", strerror(ENOMEM));
            }
            diesel__log_foreach(log_line, t);
            if (diesel_console_table_print(t, out) != 0)
                w.full = 1;
            diesel_console_table_destroy(t);
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
    if (logger != NULL) {
        /* A name no code has logged to is most likely a typo: setting it
         * would make a logger nothing uses.  --new says it is meant, for
         * a logger whose first line is yet to come. */
        struct log_known k = { logger, 0, 0, "", 0 };

        diesel__log_foreach(log_known_entry, &k);
        if (k.found)
            isnew = 0;
        else if (!isnew)
            return fail(out, "unknown logger '%.64s': the loggers are %s; "
                "--new sets one yet to log", pos[0], k.list);
    } else {
        isnew = 0;
    }
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
        put(&w, ",\"level\":\"%s\",\"was\":\"%s\",\"new\":%s}\n",
            diesel_log_level_name(level), diesel_log_level_name(was),
            isnew ? "true" : "false");
    } else {
        put(&w, "%s %s (%swas %s)\n", pos[0], diesel_log_level_name(level),
            isnew ? "a new logger; " : "", diesel_log_level_name(was));
    }
    return done(&w);
}

/* ---- cancel -------------------------------------------------------------- */

int
diesel__cmd_cancel(struct diesel_console_out *out, int argc, char **argv,
    void *arg)
{
    static const char usage[] = "cancel [--json] [LOOP:]ID";
    struct diesel_loop *l;
    struct diesel__task *t;
    char *pos[1], name[DIESEL__NAME_MAX], ename[TX_NAME];
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
            "session: use quit", (long long)id, tx(ename, sizeof(ename),
            t->name));
    memcpy(name, t->name, sizeof(name));
    if (diesel_task_cancel(id) != 0)
        return fail(out, errno == ESRCH ? "no green thread %lld" :
            "cannot cancel green thread %lld", (long long)id);
    /* Who asked, as the attach's line names the peer: the log of a
     * service whose work was cut short says by whom. */
    if (out->peer_pid < 0)
        diesel_log("diesel", DIESEL_LOG_WARNING, "console: cancelled green "
            "thread %lld (%s) for a session whose peer is not known",
            (long long)id, name);
    else if (out->peer_uid < 0)
        diesel_log("diesel", DIESEL_LOG_WARNING, "console: cancelled green "
            "thread %lld (%s) for the session of pid %ld", (long long)id,
            name, out->peer_pid);
    else
        diesel_log("diesel", DIESEL_LOG_WARNING, "console: cancelled green "
            "thread %lld (%s) for the session of pid %ld, uid %ld",
            (long long)id, name, out->peer_pid, out->peer_uid);
    if (w.json) {
        put(&w, "{\"cancelled\":%lld,\"name\":", (long long)id);
        jstr(&w, name);
        put(&w, "}\n");
    } else {
        char ename[TX_NAME];

        put(&w, "cancelled green thread %lld (%s)\n", (long long)id,
            tx(ename, sizeof(ename), name));
    }
    return done(&w);
}

/* ---- Registration -------------------------------------------------------- */

static const struct {
    const char *name;
    const char *help;
    diesel_console_fn fn;
    int no_json;        /* it has no JSON form: --json is refused */
    int loops;          /* DIESEL__CMD_LOOPS or _LOOPID (console.h) */
} builtins[] = {
    { "pid", "pid [--json]: process id, parent, user, executable, uptime",
      diesel__cmd_pid, 0, 0 },
    { "tasks", "tasks [--json] [--loop NAME]: "
      "every green thread: id, name, state, what it "
      "waits on and for how long, switches, stack now and high-water mark, "
      "where spawned",
      diesel__cmd_tasks, 0,
      DIESEL__CMD_LOOPS },
    { "stacks", "stacks [--all] [--json] [--loop NAME] [[LOOP:]ID]: "
      "backtraces of the green "
      "threads, identical ones grouped; --all: the library's frames too",
      diesel__cmd_stacks, 0,
      DIESEL__CMD_LOOPS },
    { "stats", "stats [--json] [--loop NAME]: "
      "loop figures: uptime, iterations, switches, "
      "polls, fds, timers, green threads, console, hog warnings and the "
      "longest runs", diesel__cmd_stats, 0,
      DIESEL__CMD_LOOPS },
    { "mem", "mem [--json] [--loop NAME]: "
      "RSS, malloc, stack memory reserved and committed, "
      "stack high-water marks, mappings against vm.max_map_count",
      diesel__cmd_mem, 0,
      DIESEL__CMD_LOOPS },
    { "fds", "fds [--json] [--loop NAME]: "
      "open descriptors: type, address or path, green "
      "thread waiting on it (LOOP:ID with several loops; --loop: those "
      "NAME's wait on)", diesel__cmd_fds, 0, 0 },
    { "log", "log [--json] [[--new] LOGGER LEVEL | tail [N] | follow]: show "
      "the log levels, or set one (* is the default; --new: a logger yet to "
      "log); tail: the last N lines logged "
      "(all those kept); follow: stream new lines until a line is sent",
      diesel__cmd_log, 0, 0 },
    { "cancel", "cancel [--json] [LOOP:]ID: "
      "make green thread ID's blocking calls "
      "fail with ECANCELED", diesel__cmd_cancel, 0,
      DIESEL__CMD_LOOPID },
    { "loops", "loops [--json]: the running loops: name, OS thread, green "
      "threads, utilization while accounting is on, turning or stuck",
      diesel__cmd_loops, 0, 0 },
    { "profile", "profile SECONDS [--hz N] [--folded]: sample the loop's "
      "thread (99 Hz): the hottest functions per green thread, or folded "
      "stacks for a flame graph", diesel__cmd_profile, 1, 0 },
    { "sync", "sync [--json] [--loop NAME]: "
      "events, queues and locks: holders, waiters "
      "and for how long, queue lengths, cycles of green threads waiting for "
      "each other", diesel__cmd_sync, 0,
      DIESEL__CMD_LOOPS },
};

void
diesel__console_builtins_register(void)
{
    diesel__bt_init();
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (diesel__console_register(builtins[i].name, builtins[i].help,
            builtins[i].fn, NULL, DIESEL__CMD_BUILTIN | builtins[i].loops |
            (builtins[i].no_json ? DIESEL__CMD_NO_JSON : 0)) != 0)
            diesel_log("diesel", DIESEL_LOG_ERROR, "console: cannot "
                "register the built-in command '%s': %s", builtins[i].name,
                strerror(errno));
    }
    diesel__console_top_register();
    diesel__console_module_register();
    diesel__console_mem_register();
}

/* ---- For the command families in files of their own ---------------------- */

void
diesel__console_builtins_add(const struct diesel__builtin *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (diesel__console_register(b[i].name, b[i].help, b[i].fn, NULL,
            DIESEL__CMD_BUILTIN | b[i].flags) != 0)
            diesel_log("diesel", DIESEL_LOG_ERROR, "console: cannot "
                "register the built-in command '%s': %s", b[i].name,
                strerror(errno));
}

int
diesel__console_pace(unsigned *n)
{
    struct pace p;

    pace_init(&p, diesel__loop);
    p.n = *n;
    if (pace(&p) != 0)
        return -1;
    *n = p.n;
    return 0;
}

int64_t
diesel__console_parse_id(const char *s)
{
    return parse_id(s);
}
