/*
 * proc.h: running a program from a test and reading what it writes, for
 * the suites that drive real tools (check_dconsole.c, check_stuck.c).
 *
 * Every wait is stretched as Check's own timeouts are, by
 * CK_TIMEOUT_MULTIPLIER (CI runs the suites under valgrind with 10).
 */
#ifndef DIESEL_TEST_PROC_H
#define DIESEL_TEST_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define T_PROC_BUF (256 * 1024)
#define T_PROC_PIPE (-2)     /* t_proc_how.stdin_fd: a pipe, p->in */

struct t_proc {
    pid_t pid;
    int in;                 /* its standard input, when a pipe; else -1 */
    int out;                /* its standard output, -1 with a pty */
    int err;                /* its standard error */
    char obuf[T_PROC_BUF];  /* what it wrote there, NUL-terminated */
    size_t on;
    char ebuf[T_PROC_BUF];
    size_t en;
    int status;             /* its wait status, once reaped */
    int reaped;
};

struct t_proc_how {
    int stdin_fd;           /* -1: /dev/null; T_PROC_PIPE; else this fd,
                               which the parent's side then closes */
    const char *pty_name;   /* not NULL: standard input and output on
                               this terminal, its controlling terminal */
    void (*in_child)(void); /* not NULL: called before exec (may _exit) */
};

/* ms times CK_TIMEOUT_MULTIPLIER. */
int64_t t_slow(int64_t ms);

/* This test runs under valgrind (and so does whatever it starts). */
int t_under_valgrind(void);

/*
 * The console signal for the tests whose service is busy when signalled
 * (the stuck suite, the client's stuck report): SIGTRAP, the default,
 * except under valgrind, where SIGUSR2.  Valgrind 3.19 never blocks
 * SIGTRAP in the host (to it a "synchronous" signal, like SIGSEGV), and
 * one sent by another process while a thread is taking valgrind's lock
 * back after a blocking system call is handled as if the thread were
 * still in that call: the handler takes the lock again and waits for it
 * forever (seen: the thread in VgTs_WaitSys, asleep on the lock's futex,
 * no thread running, SIGTRAP pending).  A stuck loop makes many system
 * calls (its handler writes the report) while dconsole signals again
 * once a second, so there it hung one run in ten or so.
 */
int t_console_signo(void);

/* DIESEL_TOOLS_DIR/name, else t_dir()/../tools/name (a static buffer). */
const char *t_tool_path(const char *name);

/* Start path with argv; how may be NULL (input from /dev/null). */
void t_proc_start(struct t_proc *p, const char *path, char *const argv[],
    const struct t_proc_how *how);

/* Read what it wrote, waiting up to ms for something. */
void t_proc_pump(struct t_proc *p, int ms);

/* Wait up to t_slow(ms) for needle in its output (err: error output). */
int t_proc_expect(struct t_proc *p, int err, const char *needle,
    int64_t ms);

/* The next programs started swap dir for a symlink to to at their first
 * console bind(2) or connect(2) (test/swap_shim.so, preloaded: TESTPLAN
 * 9d); t_swap_clear() ends that. */
void t_swap_set(const char *dir, const char *to);
void t_swap_clear(void);

/* Field 22 of /proc/PID/stat, its start time in clock ticks since boot
 * (what a console advertisement names); 0 if it cannot be read. */
unsigned long long t_proc_start_ticks(pid_t pid);

/* Each thread of pid, a line each: its state, pending and blocked
 * signals, wait channel (what a test that timed out waiting on it
 * prints).  The length written to out. */
size_t t_proc_threads(pid_t pid, char *out, size_t size);

/* Reap it within t_slow(ms), else kill it (-1); read all it wrote and
 * close our ends.  Its wait status. */
int t_proc_wait(struct t_proc *p, int64_t ms);

/* A fresh private (0700) console rendezvous directory, /tmp/diesel-TAG-...,
 * into dir (64 bytes), set as DIESEL_CONSOLE_DIR: a test's fixture. */
void t_console_dir_make(char *dir, const char *tag);
/* The fixture's end: kill p (if started and not reaped), remove dir,
 * unset DIESEL_CONSOLE_DIR. */
void t_console_dir_remove(const char *dir, struct t_proc *p);

#endif
