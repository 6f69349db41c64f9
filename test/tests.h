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

/*
 * DIESEL_TEST_ONLY=NAME[,NAME...]: the suites add only the tests of those
 * names (CK_RUN_CASE picks a whole tcase), so that one test can be run
 * again and again, several copies at once, to catch a race under load.
 */
void t_add_test(TCase *tc, const TTest *tt, int sig, int exit_value,
    int start, int end);
#undef _tcase_add_test
#define _tcase_add_test(tc, tt, sig, exit_value, start, end) \
    t_add_test((tc), (tt), (sig), (exit_value), (start), (end))

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

/* How many times needle occurs in hay (overlapping ones too). */
int t_count(const char *hay, const char *needle);

/*
 * Console commands run in this process, as a session runs them.  A reply:
 * the command's status (0, or -1 with err set), its text (malloc'd,
 * NUL-terminated, "" when it printed nothing: the caller frees out) and
 * its length, its ERR message ("" when none).
 */
struct t_reply {
    int rc;
    char *out;
    size_t len;
    char err[256];
};

/* line through the command table (diesel__console_execute), as a session
 * or dconsole -e sends it. */
struct t_reply t_console(const char *line);
/* line given to fn itself, its words split on spaces; limit: the reply's
 * cap (0: the console's own); json: as if the session had asked for it.
 * The test fails if the status and the ERR message disagree. */
struct t_reply t_console_fn(diesel_console_fn fn, const char *line,
    size_t limit, int json);
/* The reply succeeded (else the test fails, naming line and the ERR). */
void t_reply_ok(const struct t_reply *r, const char *line);
/* The reply is an ERR whose message contains want (exact: is want); its
 * text is freed. */
void t_reply_err(struct t_reply *r, const char *line, const char *want,
    int exact);
/* t_console's text, the command having succeeded; its ERR, containing
 * want. */
char *t_console_ok(const char *line);
void t_console_err(const char *line, const char *want);

/* text is one JSON value, strict syntax, valid UTF-8. */
int t_json_valid(const char *text);
#define ck_assert_json(text) \
    ck_assert_msg(t_json_valid(text), "not valid JSON:\n%s", (text))
/* The number after "key": in a JSON text (the first occurrence), or -1. */
double t_json_num(const char *text, const char *key);
/* The value after "key": (the first occurrence), as its JSON text in buf
 * (NUL-terminated): 0, or -1 if there is no such key, its value is not
 * valid JSON, or it does not fit. */
int t_json_value(const char *text, const char *key, char *buf, size_t size);

#endif
