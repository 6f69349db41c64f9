/*
 * diesel.h: the whole public interface of libdiesel.
 *
 * libdiesel runs many green threads (coroutines with stacks of their own) on
 * one event loop per OS thread.  Calls that look blocking (sleep, wait for a
 * descriptor, join) park only the calling green thread.  See libdiesel(3).
 *
 * Conventions, for every call below:
 *   - failure is -1 (or NULL) with errno set; success is 0 or a count;
 *   - a timeout is in milliseconds: -1 waits forever, 0 never blocks;
 *   - errno belongs to the green thread: another green thread running in
 *     between never changes it.
 */
#ifndef DIESEL_H
#define DIESEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DIESEL_API __attribute__((visibility("default")))
#define DIESEL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DIESEL_NORETURN __attribute__((noreturn))
#else
#define DIESEL_API
#define DIESEL_PRINTF(f, a)
#define DIESEL_NORETURN
#endif

#define DIESEL_VERSION_MAJOR 0
#define DIESEL_VERSION_MINOR 1
#define DIESEL_VERSION_PATCH 0
#define DIESEL_VERSION_STRING "0.1.0"

/* A green thread's body.  Its return value is its exit status. */
typedef int (*diesel_task_fn)(void *arg);

/* ---- The loop: diesel_loop(3) ------------------------------------------ */

/*
 * Run an event loop on the calling OS thread with fn as its first green
 * thread, until every green thread has returned.  Returns fn's exit status,
 * or the status given to diesel_loop_stop().
 */
DIESEL_API int diesel_loop_run(diesel_task_fn fn, void *arg);

/*
 * Cancel every green thread of the current loop and make diesel_loop_run()
 * return status once they have all returned.
 */
DIESEL_API int diesel_loop_stop(int status);

/*
 * Name the current loop, for the console (its `loops` command, its
 * sections per loop and LOOP:ID): one word of up to 31 printable bytes,
 * without ':'.  A loop that is not named is "main" if no running loop is
 * so named, else "loop-2", "loop-3"...  0, or -1 with errno EPERM (no
 * loop runs on this thread), EINVAL (a bad name) or EEXIST (another
 * running loop has it).
 */
DIESEL_API int diesel_loop_name(const char *name);

/* The name of the poll backend compiled in: "epoll", "kqueue" or "poll". */
DIESEL_API const char *diesel_loop_backend(void);

/*
 * Log a warning, with its backtrace, when one green thread has run for
 * threshold_ms or more without yielding (0 turns the warnings off).  Sets
 * the current loop's threshold, if called in one, and that of the loops
 * started afterwards; until it is called, the environment variable
 * DIESEL_HOG_MS gives it at each loop start.  A watchdog thread runs while
 * the warnings are on.  0, or -1 with errno EINVAL (threshold_ms < 0),
 * EBUSY (the program handles the signal used) or EAGAIN (no thread).
 */
DIESEL_API int diesel_loop_hog_warn(int64_t threshold_ms);

/*
 * Time accounting: per green thread the time it ran, the time it waited
 * for its turn once ready, its runs and wakes; per loop the time waited
 * in poll.  The console's top and hist show them.  enable 1 switches it
 * on in the current loop, if called in one, and in the loops started
 * afterwards; 0 switches it off (the console's top still switches it on
 * for its window).  Until it is called, DIESEL_ACCOUNT=1 switches it on
 * at each loop start.  Off, it costs nothing measurable.  0, or -1 with
 * errno ENOMEM.
 */
DIESEL_API int diesel_loop_account(int enable);

/* ---- Green threads: diesel_task(3) ------------------------------------- */

/* 0 as a stack size means this default (128 KiB, plus a guard page). */
#define DIESEL_STACK_DEFAULT ((size_t)128 * 1024)

/*
 * Spawn a green thread that runs fn(arg) on a stack of stack_size bytes.
 * It runs once the caller blocks or yields.  Returns its id (> 0): ids
 * count 1, 2, 3... in each loop and are never reused within it.  The macro records the file and line of the
 * call, which the console shows; (diesel_task_spawn)(...) skips it.
 */
DIESEL_API int64_t diesel_task_spawn(const char *name, diesel_task_fn fn,
    void *arg, size_t stack_size);
DIESEL_API int64_t diesel_task_spawn_at(const char *where, const char *name,
    diesel_task_fn fn, void *arg, size_t stack_size);
#define DIESEL_STR_(x) #x
#define DIESEL_STR(x) DIESEL_STR_(x)
#define diesel_task_spawn(name, fn, arg, stack_size) \
    diesel_task_spawn_at(__FILE__ ":" DIESEL_STR(__LINE__), (name), (fn), \
        (arg), (stack_size))

/* Let every other ready green thread run once, then come back. */
DIESEL_API int diesel_task_yield(void);

/* The current green thread's id, or -1 outside one. */
DIESEL_API int64_t diesel_task_self(void);

/* The current green thread's name, or NULL outside one. */
DIESEL_API const char *diesel_task_name(void);

/* Rename the current green thread (names longer than 31 bytes are cut). */
DIESEL_API int diesel_task_rename(const char *name);

/*
 * Wait until green thread id returns and store its exit status.  The
 * statuses of the last 4096 green threads to return are kept, so a join
 * that comes late still gets one; ESRCH when id is unknown or older.
 */
DIESEL_API int diesel_task_join(int64_t id, int *status, int64_t timeout_ms);

/*
 * Cancel green thread id: its current blocking call, and every later call
 * that would have to wait, fails with ECANCELED until it returns.  Calls
 * that need not wait still work, so that its clean-up code can run.
 */
DIESEL_API int diesel_task_cancel(int64_t id);

/* End the current green thread with the given status. */
DIESEL_API DIESEL_NORETURN void diesel_task_exit(int status);

/* ---- Time: diesel_sleep(3) --------------------------------------------- */

/* Park the current green thread for ms milliseconds (-1: until cancelled). */
DIESEL_API int diesel_sleep(int64_t ms);

/* Milliseconds on the monotonic clock, read at each call and rounded
 * down to a whole millisecond. */
DIESEL_API int64_t diesel_now(void);

/* ---- Descriptors: diesel_fd(3) ----------------------------------------- */

#define DIESEL_READ 1
#define DIESEL_WRITE 2

/*
 * Park until fd is readable and/or writable (events: DIESEL_READ,
 * DIESEL_WRITE or both).  Returns the events that are ready.  An error or
 * hangup on fd counts as both, so that the next read or write reports it.
 */
DIESEL_API int diesel_fd_wait(int fd, int events, int64_t timeout_ms);

/*
 * Close fd after telling the loop to forget it; green threads waiting on
 * it fail with EBADF.  Use it instead of close(2) for any descriptor a
 * green thread has waited on.
 */
DIESEL_API int diesel_fd_close(int fd);

/* ---- Synchronisation: diesel_event(3), diesel_queue(3), diesel_lock(3) - */

/*
 * Objects that green threads of one loop wait on.  Each has a name (cut at
 * 31 bytes) that the console shows as what a parked green thread waits on.
 * Waiters are served in the order they arrived.  A waiter that times out or
 * is cancelled leaves without taking anything.  Destroying an object while
 * a green thread is parked on it is undefined (an assertion in debug
 * builds).  See diesel_sync(3).
 */
struct diesel_event;
struct diesel_queue;
struct diesel_lock;

/* An event: green threads wait for its next fire. */
DIESEL_API struct diesel_event *diesel_event_create(const char *name);
DIESEL_API void diesel_event_destroy(struct diesel_event *);
DIESEL_API int diesel_event_wait(struct diesel_event *, int64_t timeout_ms);
/* Wake every green thread waiting now; returns how many. */
DIESEL_API int diesel_event_fire(struct diesel_event *);

/*
 * A FIFO of at most capacity (>= 1) pointers: put parks while it is full,
 * get while it is empty.  Once closed, puts fail with EPIPE and gets drain
 * what is left, then fail with EPIPE.
 */
DIESEL_API struct diesel_queue *diesel_queue_create(const char *name,
    size_t capacity);
DIESEL_API int diesel_queue_put(struct diesel_queue *, void *item,
    int64_t timeout_ms);
DIESEL_API int diesel_queue_get(struct diesel_queue *, void **item,
    int64_t timeout_ms);
DIESEL_API size_t diesel_queue_length(const struct diesel_queue *);
DIESEL_API int diesel_queue_close(struct diesel_queue *);
DIESEL_API void diesel_queue_destroy(struct diesel_queue *);

/*
 * A lock held by one green thread at a time.  Release hands it straight to
 * the first waiter; only the holder may release it.
 */
DIESEL_API struct diesel_lock *diesel_lock_create(const char *name);
DIESEL_API int diesel_lock_acquire(struct diesel_lock *, int64_t timeout_ms);
DIESEL_API int diesel_lock_release(struct diesel_lock *);
DIESEL_API void diesel_lock_destroy(struct diesel_lock *);

/* ---- Channels between loops: diesel_chan(3) --------------------------- */

/*
 * A FIFO of at most capacity (>= 1) pointers that green threads of
 * different loops (different OS threads) send to and receive from, with
 * the queue's rules: send parks while it is full, recv while it is empty;
 * once closed, sends fail with EPIPE and receives drain what is left, then
 * fail with EPIPE.  A parked green thread is woken through a descriptor,
 * written once for a burst.  With a timeout of 0 any thread may call
 * them.  One green thread per loop may wait on each side at a time
 * (EBUSY).  See diesel_chan(3).
 */
struct diesel_chan;

DIESEL_API struct diesel_chan *diesel_chan_create(const char *name,
    size_t capacity);
DIESEL_API int diesel_chan_send(struct diesel_chan *, void *item,
    int64_t timeout_ms);
DIESEL_API int diesel_chan_recv(struct diesel_chan *, void **item,
    int64_t timeout_ms);
DIESEL_API size_t diesel_chan_length(struct diesel_chan *);
DIESEL_API int diesel_chan_close(struct diesel_chan *);
DIESEL_API void diesel_chan_destroy(struct diesel_chan *);

/* ---- Crashes: diesel_crash(3) ------------------------------------------ */

/*
 * When the process dies of SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT in a
 * green thread, the log gets the signal, the green thread, its backtrace
 * and the table of all green threads, and then the signal's default action
 * (a core dump) goes on unchanged.  On by default; diesel_crash_report(0)
 * turns the report off (a stack overflow is still named).  Returns the
 * previous setting.
 */
DIESEL_API int diesel_crash_report(int enable);

/* ---- Signals: diesel_signal(3) ---------------------------------------- */

/*
 * Park until one of the n signals in signals[] arrives, and return its
 * number.  The first call for a signal installs a handler for it that
 * stays: signals that arrive while no one waits are kept (one of each) for
 * the next wait.  One green thread waits at a time (EBUSY otherwise).
 */
DIESEL_API int diesel_signal_wait(const int *signals, int n,
    int64_t timeout_ms);

/* ---- Connections and servers: diesel_conn(3), diesel_server(3) --------- */

/*
 * A buffered stream connection, used by one green thread at a time (one
 * may receive while another sends).  Each call below that can block takes
 * a timeout and fails with ETIMEDOUT, ECANCELED when the green thread is
 * cancelled, ECONNRESET or EPIPE when the peer is gone; none raises
 * SIGPIPE.  Outside a green thread they fail with EPERM.
 *
 * Addresses: "[HOST:]PORT" with HOST a numeric IPv4 address, "[IPv6]",
 * "localhost" or a name to resolve (no HOST: every address to listen on,
 * the loopback to connect to), or the path of a UNIX socket (anything with
 * a '/', or "unix:PATH").
 */
struct diesel_conn;

/* Wrap a connected stream socket (made non-blocking, close-on-exec) and
 * take ownership of it; on failure the caller keeps fd. */
DIESEL_API struct diesel_conn *diesel_conn_create(int fd);
DIESEL_API struct diesel_conn *diesel_conn_connect(const char *addr,
    int64_t timeout_ms);
DIESEL_API int diesel_conn_fd(const struct diesel_conn *);

/* At least one byte; 0 at end of stream. */
DIESEL_API ssize_t diesel_conn_recv(struct diesel_conn *, void *buf,
    size_t len, int64_t timeout_ms);
/* Exactly len bytes; 0 at end of stream (a partial message stays
 * buffered for diesel_conn_recv). */
DIESEL_API ssize_t diesel_conn_recv_exactly(struct diesel_conn *, void *buf,
    size_t len, int64_t timeout_ms);
/* The bytes up to and including delim; EMSGSIZE when max bytes hold no
 * delim (they stay buffered); 0 at end of stream. */
DIESEL_API ssize_t diesel_conn_recv_until(struct diesel_conn *,
    const char *delim, void *buf, size_t max, int64_t timeout_ms);
/* diesel_conn_recv_until(c, "\n", buf, max - 1, ...), NUL-terminated. */
DIESEL_API ssize_t diesel_conn_readline(struct diesel_conn *, char *buf,
    size_t max, int64_t timeout_ms);
/* The bytes buffered for receiving (read first if there are none), in
 * place: *data until the next receive, consume or close.  >0, 0 at end
 * of stream, -1. */
DIESEL_API ssize_t diesel_conn_peek(struct diesel_conn *, const void **data,
    int64_t timeout_ms);
/* Take n of the bytes diesel_conn_peek showed off the stream. */
DIESEL_API int diesel_conn_consume(struct diesel_conn *, size_t n);
/* All len bytes, or -1 (and then some of them may have been sent). */
DIESEL_API int diesel_conn_send(struct diesel_conn *, const void *buf,
    size_t len, int64_t timeout_ms);
/*
 * Buffer len bytes to send later.  They go out with diesel_conn_flush,
 * before the next diesel_conn_send, and by themselves when a receive on
 * the connection would wait: so a server that answers pipelined requests
 * with diesel_conn_write sends one packet per batch.  A write that would
 * take the buffer past its high-water mark sends it first, parking while
 * the peer does not read (see diesel_conn_set_output).
 */
DIESEL_API int diesel_conn_write(struct diesel_conn *, const void *buf,
    size_t len);
/*
 * The output buffer's high-water mark in bytes (64 KiB by default) and
 * how long a diesel_conn_write that would pass it may wait for the peer
 * (-1 by default: as long as it takes), after which it fails ETIMEDOUT.
 */
DIESEL_API int diesel_conn_set_output(struct diesel_conn *,
    size_t high_water, int64_t timeout_ms);
/* Send what diesel_conn_write buffered; on failure the rest stays. */
DIESEL_API int diesel_conn_flush(struct diesel_conn *, int64_t timeout_ms);
/* how: SHUT_RD, SHUT_WR or SHUT_RDWR. */
DIESEL_API int diesel_conn_shutdown(struct diesel_conn *, int how);
/* Close (as diesel_fd_close does) and free. */
DIESEL_API int diesel_conn_close(struct diesel_conn *);
/* "127.0.0.1:5000", "[::1]:5000" or "unix:/path". */
DIESEL_API int diesel_conn_peer(const struct diesel_conn *, char *buf,
    size_t len);

/*
 * The addresses a host name stands for, as diesel_conn_connect finds them
 * (a numeric address, "localhost", else getaddrinfo(3) on a helper thread
 * while the caller parks): at most n into addrs (port 0).  Returns how
 * many; -1 with EADDRNOTAVAIL (no such name), EAGAIN (the name server did
 * not answer), ETIMEDOUT, ECANCELED, EINVAL.
 */
struct sockaddr_storage;
DIESEL_API int diesel_resolve(const char *name, struct sockaddr_storage *addrs,
    int n, int64_t timeout_ms);

/* A connection's green thread; the connection is closed when it returns. */
typedef int (*diesel_conn_fn)(struct diesel_conn *, void *arg);
struct diesel_server;

/*
 * Listen on addr (port 0 picks one) and spawn a green thread "accept ADDR"
 * that runs handler(conn, arg) in a green thread "conn PEER" per
 * connection.  max_conns (0: no limit) caps the connections running at
 * once: beyond it, new ones wait in the listen queue.
 */
DIESEL_API struct diesel_server *diesel_server_listen(const char *addr,
    diesel_conn_fn handler, void *arg, int max_conns);
/*
 * diesel_server_listen with flags: DIESEL_SERVER_REUSEPORT lets each loop
 * listen on the same TCP port, the kernel spreading the connections
 * between their sockets (ENOTSUP where it would not spread them).
 */
#define DIESEL_SERVER_REUSEPORT 1
DIESEL_API struct diesel_server *diesel_server_listen_flags(const char *addr,
    diesel_conn_fn handler, void *arg, int max_conns, int flags);
/* The bound TCP port, or 0. */
DIESEL_API int diesel_server_port(const struct diesel_server *);
/* Where it listens, as diesel_conn_peer prints addresses. */
DIESEL_API const char *diesel_server_address(const struct diesel_server *);
/* Stop accepting and free the server; running connections go on. */
DIESEL_API int diesel_server_close(struct diesel_server *);

/* ---- Logging: diesel_log(3) -------------------------------------------- */

#define DIESEL_LOG_DEBUG 10
#define DIESEL_LOG_INFO 20
#define DIESEL_LOG_WARNING 30
#define DIESEL_LOG_ERROR 40
#define DIESEL_LOG_CRITICAL 50

/*
 * Log one line in diesel's format, if level is at or above the logger's:
 *   [2013/03/20 04:26:38] {dummy} INFO:sleeping
 */
DIESEL_API void diesel_log(const char *logger, int level, const char *fmt,
    ...) DIESEL_PRINTF(3, 4);
DIESEL_API void diesel_vlog(const char *logger, int level, const char *fmt,
    va_list ap) DIESEL_PRINTF(3, 0);

/* A logger's level (its own, else the default). */
DIESEL_API int diesel_log_level(const char *logger);

/* Set a logger's level; a NULL logger sets the default for all others. */
DIESEL_API int diesel_log_level_set(const char *logger, int level);

/* Send log lines to fd (2, standard error, by default). */
DIESEL_API int diesel_log_fd_set(int fd);
/* Keep the last lines logged for the console's `log tail` (default 1000;
 * 0 keeps none; changing it forgets those kept).  EINVAL past 1000000. */
DIESEL_API int diesel_log_keep(size_t lines);

/* "DEBUG" ... "CRITICAL" for a level, and back (-1 and EINVAL if none). */
DIESEL_API const char *diesel_log_level_name(int level);
DIESEL_API int diesel_log_level_parse(const char *name);

/* ---- Console: diesel_console(3) --------------------------------------- */

/*
 * The live console: `dconsole PID` attaches to a running service (see
 * diesel-console(7) for the attach steps and the wire protocol).
 */

/* Where a command writes its reply (opaque). */
struct diesel_console_out;

/*
 * A console command.  argv[0] is the command's name; the words of the
 * line follow ("--json" is taken out: see diesel_console_json()).  Return
 * 0 for OK, -1 for ERR: the message is what the command gave to
 * diesel_console_error(), else strerror(errno).
 */
typedef int (*diesel_console_fn)(struct diesel_console_out *out, int argc,
    char **argv, void *arg);

/*
 * Catch signo (0: SIGTRAP) as the console's attach request.  The loop
 * running on the calling thread, or the next one started on it, serves
 * the requests.  Nothing but a self-pipe exists while no one is attached.
 */
DIESEL_API int diesel_console_install(int signo);

/* Give the signal its old action back and close the self-pipe. */
DIESEL_API int diesel_console_uninstall(void);

/*
 * When a console request arrives while one green thread has held the loop
 * (computing, or blocked in a system call) for longer than ms, the signal
 * handler answers it itself: it reports which green thread holds the loop,
 * for how long, its backtrace and the other green threads, and dconsole
 * exits 8 (diesel-console(7), "STUCK").  The default is 1000 ms; 0 turns
 * the report off (requests wait for the loop).  0, or -1 EINVAL (ms < 0).
 */
DIESEL_API int diesel_console_stuck_after(int64_t ms);

/* Add a command (names: [a-z0-9_-]+, at most 63 bytes; EEXIST if a
 * command or a variable has it: they share one namespace). */
DIESEL_API int diesel_console_command(const char *name, const char *help,
    diesel_console_fn fn, void *arg);

/*
 * Like diesel_console_command, for a command that speaks JSON: given
 * --json (diesel_console_json() is then 1) it replies with one JSON
 * document.  A command added with diesel_console_command is never run
 * with --json: the console refuses the line with an ERR instead.
 */
DIESEL_API int diesel_console_command_json(const char *name,
    const char *help, diesel_console_fn fn, void *arg);

/* Append to the reply; it may contain newlines.  Returns bytes added. */
DIESEL_API int diesel_console_printf(struct diesel_console_out *out,
    const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* Set the one-line ERR message.  Returns -1, so that a command can end
 * with `return diesel_console_error(out, ...);`. */
DIESEL_API int diesel_console_error(struct diesel_console_out *out,
    const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* 1 if the client asked for machine-readable output (--json), else 0. */
DIESEL_API int diesel_console_json(const struct diesel_console_out *out);

/*
 * A table whose columns are as wide as their widest cell (capped, the cut
 * cell ending in "..."), two spaces apart: add cells left to right (each
 * one escaped as the console escapes all text), end each row, print it
 * into a reply once every row is in.  The first row is usually the
 * header.  create: NULL and errno (EINVAL: ncols not 1 to 64; ENOMEM).
 */
struct diesel_console_table;
DIESEL_API struct diesel_console_table *diesel_console_table_create(
    int ncols);
DIESEL_API int diesel_console_table_cell(struct diesel_console_table *t,
    const char *fmt, ...) DIESEL_PRINTF(2, 3);
DIESEL_API int diesel_console_table_row(struct diesel_console_table *t);
DIESEL_API int diesel_console_table_print(struct diesel_console_table *t,
    struct diesel_console_out *out);
DIESEL_API void diesel_console_table_destroy(struct diesel_console_table *t);

/* Expose a variable to `get NAME` and (if writable) `set NAME VALUE`
 * (EEXIST if a command or a variable has the name). */
DIESEL_API int diesel_console_var_int(const char *name, int64_t *p,
    int writable);
/* A writable integer that set stores only from min to max inclusive
 * (EINVAL if min > max): a value outside is refused, and says the range. */
DIESEL_API int diesel_console_var_int_range(const char *name, int64_t *p,
    int64_t min, int64_t max);
DIESEL_API int diesel_console_var_double(const char *name, double *p,
    int writable);
DIESEL_API int diesel_console_var_string(const char *name, char *buf,
    size_t size, int writable);

/*
 * The local console (diesel's dpython): serve commands read from in and
 * answer on out, inside the running loop, until EOF or quit.  With a
 * ">>> " prompt and plain replies when in is a terminal, else the wire
 * protocol.  Must be called from a green thread.
 */
DIESEL_API int diesel_console_serve_fds(int in, int out);

/* ---- Modules: your own code in a running service, diesel_console(3) --- */

/*
 * The console's `load PATH [ARGS]` opens a shared object in the running
 * service and calls its entry point with this structure: everything a
 * module may call in the library, so that a service needs no -rdynamic
 * for its modules (a module uses no diesel_ symbol of its own).  The
 * version changes when a field changes meaning; new fields go at the end
 * and only make size larger: a module checks size before it uses one.
 */
#define DIESEL_MODULE_VERSION 1

struct diesel_module;   /* a loaded module (opaque) */

struct diesel_module_api {
    uint32_t version;   /* DIESEL_MODULE_VERSION of the service */
    uint32_t size;      /* sizeof(struct diesel_module_api) there */
    struct diesel_module *module; /* the module being loaded */
    /* As diesel_console_command and _command_json, but owned by the
     * module: `unload` removes them.  0, or -1 and errno. */
    int (*command)(struct diesel_module *, const char *name,
        const char *help, diesel_console_fn fn, void *arg);
    int (*command_json)(struct diesel_module *, const char *name,
        const char *help, diesel_console_fn fn, void *arg);
    /* As diesel_console_var_int, _double and _string, owned likewise. */
    int (*var_int)(struct diesel_module *, const char *name, int64_t *p,
        int writable);
    int (*var_double)(struct diesel_module *, const char *name, double *p,
        int writable);
    int (*var_string)(struct diesel_module *, const char *name, char *buf,
        size_t size, int writable);
    /* diesel_console_printf, diesel_console_error, diesel_console_json
     * and diesel_log, under names no libc macro takes. */
    int (*console_printf)(struct diesel_console_out *, const char *fmt,
        ...)
        DIESEL_PRINTF(2, 3);
    int (*console_error)(struct diesel_console_out *, const char *fmt,
        ...)
        DIESEL_PRINTF(2, 3);
    int (*console_json)(const struct diesel_console_out *);
    void (*log_write)(const char *logger, int level, const char *fmt,
        ...)
        DIESEL_PRINTF(3, 4);
    /* The diesel_console_table calls. */
    struct diesel_console_table *(*table_create)(int ncols);
    int (*table_cell)(struct diesel_console_table *, const char *fmt, ...)
        DIESEL_PRINTF(2, 3);
    int (*table_row)(struct diesel_console_table *);
    int (*table_print)(struct diesel_console_table *,
        struct diesel_console_out *);
    void (*table_destroy)(struct diesel_console_table *);
    /* The address of the service's symbol name (a global or a static
     * variable or function, from the executable's symbol table, so that
     * no -rdynamic is needed), or NULL and errno ENOENT. */
    void *(*symbol)(const char *name);
    /* Bytes a connection holds received and not yet read, and written
     * and not yet sent. */
    int (*conn_buffered)(const struct diesel_conn *, size_t *in,
        size_t *out);
    /* As diesel_console_var_int_range, owned like var_int.  Added after
     * the first release of version 1: use it only if size is larger than
     * offsetof(struct diesel_module_api, var_int_range). */
    int (*var_int_range)(struct diesel_module *, const char *name,
        int64_t *p, int64_t min, int64_t max);
};

/*
 * What a module exports, under the name "diesel_module" (DIESEL_MODULE
 * defines it).  init gets the words after the path in `load PATH ARGS`
 * (argv[0] is the path) and out for what `load` prints; it returns 0,
 * or -1 with api->console_error(out, ...) said why, and
 * the load is undone.  fini (may be NULL) runs at `unload`, after the
 * module's commands and variables are gone and before dlclose.
 */
struct diesel_module_info {
    uint32_t version;   /* DIESEL_MODULE_VERSION the module was built for */
    const char *name;   /* [a-z0-9_-]+, the name `unload` takes */
    int (*init)(const struct diesel_module_api *api, int argc, char **argv,
        struct diesel_console_out *out);
    void (*fini)(void);
};

#define DIESEL_MODULE(name, init, fini) \
    DIESEL_API \
    const struct diesel_module_info diesel_module = \
    { DIESEL_MODULE_VERSION, name, init, fini }

/* ---- The attaching side: diesel_console_client(3) ---------------------- */

/* A session with a service's console, attached to from outside (opaque). */
struct diesel_console_client;

/* What an attach tells its caller while it runs (the notice callback). */
enum {
    DIESEL_CONSOLE_REFUSED = 1,  /* a connection was refused: whose, why */
    DIESEL_CONSOLE_REPORT = 2,   /* a line of the stuck report */
};

/* How to attach; all zero is the default (SIGTRAP, the default
 * directory, no callback) but for timeout_ms. */
struct diesel_console_attach_opts {
    int signo;              /* the console signal; 0: SIGTRAP */
    const char *dir;        /* rendezvous directory; NULL: as the service
                               finds it (DIESEL_CONSOLE_DIR...) */
    int64_t timeout_ms;     /* for the service to answer; -1: forever */
    void (*notice)(void *arg, int kind, const char *text, size_t len);
    void *arg;              /* notice's first argument */
    /* Hints for the user's own words, each NULL for none: */
    const char *list_hint;  /* a command that lists the services that can
                               be attached to ("dconsole -l"): for a
                               process not proven */
    const char *signal_hint;    /* how to name another signal ("-s"):
                               "use HINT N" for a console on signal N */
    const char *dir_hint;   /* how to name another directory ("-d"): for a
                               socket path too long */
};

/* What a line from the service is: diesel_console_client_parse. */
enum {
    DIESEL_CONSOLE_LINE_BAD = 0,    /* not a line of the protocol */
    DIESEL_CONSOLE_LINE_OUTPUT = 1, /* "| text": a line of a reply */
    DIESEL_CONSOLE_LINE_OK = 2,     /* "OK": the command succeeded */
    DIESEL_CONSOLE_LINE_ERR = 3,    /* "ERR message": it failed */
    DIESEL_CONSOLE_LINE_BUSY = 4,   /* "BUSY n": no session, n are open */
    DIESEL_CONSOLE_LINE_STUCK = 5,  /* "STUCK ms": the stuck report ended */
};

/* What diesel_console_client_list finds: a proven service. */
struct diesel_console_service {
    pid_t pid;
    uid_t uid;              /* its effective uid */
    long uptime;            /* seconds since it started, -1 if unknown */
    char comm[64];          /* its command name, as the system keeps it
                               (unescaped: escape it before printing) */
    int signo;              /* the signal its console listens on */
};

/*
 * Attach to the console of pid, with every check of diesel-console(7):
 * NULL with errno (ESRCH, EPERM, ENOTSUP, ETIMEDOUT, EBUSY, EPROTO,
 * EDEADLK, ECANCELED...) and a sentence in why.  Parks only the calling
 * green thread.
 */
DIESEL_API struct diesel_console_client *diesel_console_client_attach(
    pid_t pid, const struct diesel_console_attach_opts *opts, char *why,
    size_t size);
/*
 * A session over fd, a connected stream socket whose other end is served
 * by diesel_console_serve_fds() (in this process, say, over a
 * socketpair): the calls below work on it as on an attached one.  It
 * takes fd (closed by diesel_console_client_close); NULL with errno
 * (EBADF, ENOMEM), and then the caller keeps fd.
 */
DIESEL_API struct diesel_console_client *diesel_console_client_open(int fd);
/* Send one command line (no newline in it). */
DIESEL_API int diesel_console_client_send(struct diesel_console_client *c,
    const char *line, size_t len);
/* The next line from the service, NUL-terminated in place of its newline,
 * valid until the next call: 1, 0 at end of file, -1 with errno. */
DIESEL_API int diesel_console_client_line(struct diesel_console_client *c,
    char **line, size_t *len, int64_t timeout_ms);
/* Whether a whole line is read already: the next
 * diesel_console_client_line returns without waiting.  1 or 0. */
DIESEL_API int diesel_console_client_pending(
    const struct diesel_console_client *c);
/* The kind of a line from the service (DIESEL_CONSOLE_LINE_*), its text
 * (output, ERR's message, BUSY's or STUCK's number) in *text, *tlen. */
DIESEL_API int diesel_console_client_parse(const char *line, size_t len,
    const char **text, size_t *tlen);
/* The sentence for a line of pid that is not the reply awaited (BUSY,
 * STUCK, ERR when no reply was due, a line not of the protocol) into
 * buf; returns its errno class: EBUSY, EDEADLK, ECONNRESET, EPROTO. */
DIESEL_API int diesel_console_client_explain(pid_t pid, const char *line,
    size_t len, char *buf, size_t size);
/* Run one command: 0 for OK, 1 for ERR, -1 with errno.  *reply (malloc'd,
 * NUL-terminated, the caller frees it) holds its output lines, then for
 * ERR the message on a line of its own. */
DIESEL_API int diesel_console_client_run(struct diesel_console_client *c,
    const char *line, char **reply, size_t *len, int64_t timeout_ms);
/* 1 once the attached process has exited (waiting up to timeout_ms for
 * it to go), else 0. */
DIESEL_API int diesel_console_client_gone(struct diesel_console_client *c,
    int64_t timeout_ms);
/* The connection's descriptor, to wait on (read through the calls). */
DIESEL_API int diesel_console_client_fd(const struct diesel_console_client *c);
DIESEL_API void diesel_console_client_close(struct diesel_console_client *c);
/*
 * Call fn for every process that is proven to have its console on signo
 * (0: SIGTRAP; -1: on any signal, each its own in signo), as an attach
 * would prove it, and that the caller may attach to; stop when fn returns
 * non-zero.  dir as for an attach.
 */
DIESEL_API int diesel_console_client_list(int signo, const char *dir,
    int (*fn)(const struct diesel_console_service *, void *), void *arg);

/* src[0..n) escaped as the console escapes text from elsewhere
 * (diesel-console(7)), appended to dst at *at (size bytes, left
 * NUL-terminated; *at moves on): the input bytes consumed, fewer than n
 * once dst is full (write it out, set *at to 0, go on: 9 bytes hold any
 * one escape). */
DIESEL_API size_t diesel_console_escape(char *dst, size_t size, size_t *at,
    const char *src, size_t n);
/* "SIGTRAP" for SIGTRAP, "signal 40" for others, in buf. */
DIESEL_API const char *diesel_signal_name(int signo, char *buf,
    size_t size);
/* A signal by name ("TRAP", "SIGTRAP", any case) or number; -1 EINVAL. */
DIESEL_API int diesel_signal_parse(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* DIESEL_H */
