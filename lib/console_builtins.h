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
int diesel__cmd_fds(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_log(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_cancel(struct diesel_console_out *, int, char **, void *);
/* console_log.c: `log tail`, reached through `log` */
int diesel__cmd_log_tail(struct diesel_console_out *, int, char **, void *);
int diesel__cmd_log_follow(struct diesel_console_out *, int, char **,
    void *);
/* console_sync.c */
int diesel__cmd_sync(struct diesel_console_out *, int, char **, void *);

#endif /* DIESEL_CONSOLE_BUILTINS_H */
