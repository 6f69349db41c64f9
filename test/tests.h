/*
 * tests.h: what the Check suites share.
 *
 * Each test/check_NAME.c defines Suite *diesel_NAME_suite(void); the
 * Makefile lists them in test/suites.h and test/main.c runs them (all, or
 * the ones named on the command line).  Check forks each test, so a test
 * that crashes or hangs fails alone; anything that waits has a timeout.
 */
#ifndef DIESEL_TESTS_H
#define DIESEL_TESTS_H

#include <check.h>
#include <stdint.h>
#include <sys/types.h>

#include "diesel.h"

/* Run fn(arg) as the first green thread of a new loop; its status. */
int t_run(diesel_task_fn fn, void *arg);

/* Monotonic milliseconds (outside any loop, too). */
int64_t t_now_ms(void);

/* Open descriptors of this process (0..4095). */
int t_count_fds(void);

/* The directory of the test helper programs (DIESEL_TEST_DIR or "test"). */
const char *t_dir(void);

/*
 * Run a helper program of t_dir() with the given argv (argv[0] is the
 * name in t_dir()), capture its standard error in buf (NUL-terminated,
 * cut at size-1) and return its wait status, or -1.  timeout_ms kills it.
 */
int t_spawn_capture(char *const argv[], char *buf, size_t size,
    int timeout_ms);

/* Redirect the library's log to a pipe and read what it wrote. */
void t_log_capture_start(void);
/* What was logged since start (static buffer, NUL-terminated). */
const char *t_log_capture_end(void);

/*
 * The line of source file file (as the compiler was given it, e.g.
 * "test/stuck_child.c": read from t_dir()) that carries the marker
 * comment "/" "* line: NAME *" "/"; fails the test if there is not exactly
 * one.  Tests compare it with the file:line that backtraces print.
 */
int t_source_line(const char *file, const char *name);

#endif
