/*
 * check_log.c: diesel's line format, byte for byte, and levels.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tests.h"
#include "console.h"
#include "internal.h"

static void
assert_matches(const char *text, const char *pattern)
{
    regex_t re;

    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0,
        "'%s' does not match /%s/", text, pattern);
    regfree(&re);
}

START_TEST(log_line_is_diesels_format_byte_for_byte)
{
    const char *out;
    char want[64];
    time_t now = time(NULL);
    struct tm tm;

    t_log_capture_start();
    diesel_log("dummy", DIESEL_LOG_INFO, "sleeping");
    out = t_log_capture_end();
    /* [2013/03/20 04:26:38] {dummy} INFO:sleeping */
    assert_matches(out, "^\\[[0-9]{4}/[0-9]{2}/[0-9]{2} "
        "[0-9]{2}:[0-9]{2}:[0-9]{2}\\] \\{dummy\\} INFO:sleeping\n$");
    /* The date is today's, in local time. */
    localtime_r(&now, &tm);
    strftime(want, sizeof(want), "[%Y/%m/%d ", &tm);
    ck_assert_int_eq(strncmp(out, want, strlen(want)), 0);
    ck_assert_int_eq(strlen(out), strlen("[2013/03/20 04:26:38] {dummy} "
        "INFO:sleeping\n"));
}
END_TEST

static int
starting(void *arg)
{
    (void)arg;
    return 0;
}

START_TEST(loop_start_logs_the_backend)
{
    char want[128];
    const char *out;

    t_log_capture_start();
    ck_assert_int_eq(t_run(starting, NULL), 0);
    out = t_log_capture_end();
    snprintf(want, sizeof(want), "] {diesel} WARNING:Starting diesel "
        "<hand-rolled %s>\n", diesel_loop_backend());
    ck_assert_ptr_nonnull(strstr(out, want));
}
END_TEST

START_TEST(levels_filter_per_logger)
{
    const char *out;

    ck_assert_int_eq(diesel_log_level("app"), DIESEL_LOG_INFO);
    ck_assert_int_eq(diesel_log_level_set("app", DIESEL_LOG_ERROR), 0);
    ck_assert_int_eq(diesel_log_level("app"), DIESEL_LOG_ERROR);
    ck_assert_int_eq(diesel_log_level("other"), DIESEL_LOG_INFO);
    t_log_capture_start();
    diesel_log("app", DIESEL_LOG_WARNING, "hidden");
    diesel_log("app", DIESEL_LOG_ERROR, "shown %d", 1);
    diesel_log("other", DIESEL_LOG_DEBUG, "hidden");
    diesel_log("other", DIESEL_LOG_INFO, "shown %s", "two");
    ck_assert_int_eq(diesel_log_level_set(NULL, DIESEL_LOG_DEBUG), 0);
    diesel_log("other", DIESEL_LOG_DEBUG, "shown three");
    diesel_log("app", DIESEL_LOG_DEBUG, "hidden");
    diesel_log("app", DIESEL_LOG_CRITICAL, "shown four");
    out = t_log_capture_end();
    ck_assert_ptr_null(strstr(out, "hidden"));
    ck_assert_ptr_nonnull(strstr(out, "{app} ERROR:shown 1\n"));
    ck_assert_ptr_nonnull(strstr(out, "{other} INFO:shown two\n"));
    ck_assert_ptr_nonnull(strstr(out, "{other} DEBUG:shown three\n"));
    ck_assert_ptr_nonnull(strstr(out, "{app} CRITICAL:shown four\n"));
}
END_TEST

START_TEST(bad_levels_and_names_are_einval)
{
    ck_assert_int_eq(diesel_log_level_set("x", 0), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_log_level_set("x", 99), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_log_level_set("", DIESEL_LOG_INFO), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_log_level_parse("warning"), DIESEL_LOG_WARNING);
    ck_assert_int_eq(diesel_log_level_parse("DEBUG"), DIESEL_LOG_DEBUG);
    ck_assert_int_eq(diesel_log_level_parse("loud"), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_log_level_parse(NULL), -1);
    ck_assert_str_eq(diesel_log_level_name(DIESEL_LOG_CRITICAL), "CRITICAL");
    ck_assert_int_eq(diesel_log_fd_set(-1), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(long_lines_are_cut_and_still_end_with_newline)
{
    static char big[10000];
    const char *out;
    size_t n;

    memset(big, 'x', sizeof(big) - 1);
    t_log_capture_start();
    diesel_log("big", DIESEL_LOG_ERROR, "%s", big);
    diesel_log("big", DIESEL_LOG_ERROR, "after");
    out = t_log_capture_end();
    n = strcspn(out, "\n");
    ck_assert_int_eq(n, 4094);
    ck_assert_ptr_nonnull(strstr(out + n + 1, "{big} ERROR:after\n"));
}
END_TEST

START_TEST(logging_keeps_errno)
{
    t_log_capture_start();
    errno = ENOSPC;
    diesel_log("x", DIESEL_LOG_ERROR, "e");
    ck_assert_int_eq(errno, ENOSPC);
    t_log_capture_end();
}
END_TEST

/* ---- log tail (issue 11, item 6) ---------------------------------------- */

/* Run a console command line; its reply, NUL-terminated (static). */
static const char *
run_line(const char *cmd, int want_rc)
{
    static char reply[1 << 16];
    struct diesel_console_out o;
    char line[256];
    int quit, rc;

    snprintf(line, sizeof(line), "%s", cmd);
    diesel__console_out_init(&o);
    rc = diesel__console_execute(&o, line, strlen(line), &quit);
    snprintf(reply, sizeof(reply), "%.*s%s", (int)o.len,
        o.buf != NULL ? o.buf : "", rc != 0 ? o.err : "");
    ck_assert_msg(rc == want_rc, "%s: rc %d: %s", cmd, rc, reply);
    diesel__console_out_fini(&o);
    return reply;
}

START_TEST(log_tail_prints_the_last_lines_kept)
{
    const char *r;

    diesel__console_init();
    t_log_capture_start();
    ck_assert_int_eq(diesel_log_keep(3), 0);
    diesel_log_level_set("tailtest", DIESEL_LOG_INFO);
    for (int i = 1; i <= 5; i++)
        diesel_log("tailtest", DIESEL_LOG_INFO, "line %d", i);
    /* Not written, so not kept either. */
    diesel_log("tailtest", DIESEL_LOG_DEBUG, "hidden");
    r = run_line("log tail", 0);
    assert_matches(r, "^\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 3\n"
        "\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 4\n"
        "\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 5\n$");
    r = run_line("log tail 1", 0);
    assert_matches(r, "^\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 5\n$");
    /* More than kept: what there is. */
    r = run_line("log tail 1000000000000", 0);
    ck_assert_ptr_nonnull(strstr(r, "INFO:line 3\n"));
    r = run_line("log tail 2 --json", 0);
    assert_matches(r, "^\\{\"lines\":\\[\"\\[[0-9/: ]+\\] \\{tailtest\\} "
        "INFO:line 4\",\"\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 5\"\\],"
        "\"capacity\":3,\"kept\":3,\"total\":5\\}\n$");
    /* A level after tail is still a logger named tail (one that
     * logged: a name no code has used is refused without --new). */
    diesel_log("tail", DIESEL_LOG_DEBUG, "below the level");
    run_line("log tail DEBUG", 0);
    ck_assert_int_eq(diesel_log_level("tail"), DIESEL_LOG_DEBUG);
    ck_assert_str_eq(run_line("log tail 0", -1), "bad line count '0': want "
        "a number of lines, 1 or more; usage: log tail [--json] [N]");
    ck_assert_str_eq(run_line("log tail -2", -1), "bad line count '-2': "
        "want a number of lines, 1 or more; usage: log tail [--json] [N]");
    ck_assert_str_eq(run_line("log tail 1 2", -1),
        "usage: log tail [--json] [N]");
    /* A new size forgets; 0 keeps nothing. */
    ck_assert_int_eq(diesel_log_keep(0), 0);
    diesel_log("tailtest", DIESEL_LOG_INFO, "line 6");
    ck_assert_str_eq(run_line("log tail", 0),
        "no lines are kept (diesel_log_keep(0))\n");
    ck_assert_int_eq(diesel_log_keep(1000001), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(diesel_log_keep(1000), 0);
    diesel_log("tailtest", DIESEL_LOG_INFO, "line 7");
    r = run_line("log tail", 0);
    assert_matches(r, "^\\[[0-9/: ]+\\] \\{tailtest\\} INFO:line 7\n$");
    t_log_capture_end();
}
END_TEST

Suite *
diesel_log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_test(tc, log_line_is_diesels_format_byte_for_byte);
    tcase_add_test(tc, loop_start_logs_the_backend);
    tcase_add_test(tc, levels_filter_per_logger);
    tcase_add_test(tc, bad_levels_and_names_are_einval);
    tcase_add_test(tc, long_lines_are_cut_and_still_end_with_newline);
    tcase_add_test(tc, logging_keeps_errno);
    tcase_add_test(tc, log_tail_prints_the_last_lines_kept);
    suite_add_tcase(s, tc);
    return s;
}
