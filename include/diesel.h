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

/* The name of the poll backend compiled in: "epoll", "kqueue" or "poll". */
DIESEL_API const char *diesel_loop_backend(void);

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
 * Cancel green thread id: its current blocking call, and every later one,
 * fails with ECANCELED until it returns.
 */
DIESEL_API int diesel_task_cancel(int64_t id);

/* End the current green thread with the given status. */
DIESEL_API DIESEL_NORETURN void diesel_task_exit(int status);

/* ---- Time: diesel_sleep(3) --------------------------------------------- */

/* Park the current green thread for ms milliseconds (-1: until cancelled). */
DIESEL_API int diesel_sleep(int64_t ms);

/* Milliseconds on the monotonic clock. */
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

/* Add a command (names: [a-z0-9_-]+, at most 63 bytes; EEXIST if taken). */
DIESEL_API int diesel_console_command(const char *name, const char *help,
    diesel_console_fn fn, void *arg);

/* Append to the reply; it may contain newlines.  Returns bytes added. */
DIESEL_API int diesel_console_printf(struct diesel_console_out *out,
    const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* Set the one-line ERR message.  Returns -1, so that a command can end
 * with `return diesel_console_error(out, ...);`. */
DIESEL_API int diesel_console_error(struct diesel_console_out *out,
    const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* 1 if the client asked for machine-readable output (--json), else 0. */
DIESEL_API int diesel_console_json(const struct diesel_console_out *out);

/* Expose a variable to `get NAME` and (if writable) `set NAME VALUE`. */
DIESEL_API int diesel_console_var_int(const char *name, int64_t *p,
    int writable);
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

#ifdef __cplusplus
}
#endif

#endif /* DIESEL_H */
