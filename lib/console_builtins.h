/*
 * console_builtins.h: the console's built-in inspection commands
 * (console_builtins.c, whose opening comment gives each output format).
 */
#ifndef DIESEL_CONSOLE_BUILTINS_H
#define DIESEL_CONSOLE_BUILTINS_H

#include "console.h"

/* Register pid, tasks, stacks, stats, mem, fds, log and cancel with the
 * console (builtin = 1), and load the unwinder.  Called once, by
 * diesel_console_install(). */
void diesel__console_builtins_register(void);

/* The commands themselves (diesel_console_fn), for the tests.  Each runs
 * inside the loop, on the green thread serving the console; tasks,
 * stacks, mem and fds let the loop turn while they walk. */
int diesel__cmd_pid(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_tasks(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_stacks(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_stats(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_mem(struct diesel_console_out *, int, char **, void *);
/* mem's two halves, for its reply beside several loops (console_loops.c):
 * the process's figures, once; one loop's, in its section. */
int diesel__cmd_mem_process(struct diesel_console_out *, int, char **,
    void *);
int diesel__cmd_mem_loop(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_fds(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_log(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_cancel(struct diesel_console_out *, int, char **, void *);
/* console_profile.c */
int diesel__cmd_profile(struct diesel_console_out *, int, char **, void *);

/* What the command families in files of their own (console_top.c) share
 * with these: the walks' pacing (n counts the items done in the slice:
 * past a slice, the loop turns; -1 once the session's green thread was
 * cancelled); a green thread id (0 if s is none). */
int diesel__console_pace(unsigned *n);
int64_t diesel__console_parse_id(const char *s);

/* console_top.c: top, hist and account. */
void diesel__console_top_register(void);
int diesel__cmd_top(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_hist(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_account(struct diesel_console_out *, int, char **, void *);

/* console_log.c: `log tail`, reached through `log` */
int diesel__cmd_log_tail(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_log_follow(struct diesel_console_out *, int, char **,
    void *);
/* console_sync.c */
int diesel__cmd_sync(struct diesel_console_out *, int, char **, void *);

#endif /* DIESEL_CONSOLE_BUILTINS_H */
