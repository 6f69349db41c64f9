/*
 * check_stack.c: stack overflow reports, the mapping limit, guard pages.
 * The crashes happen in child processes (the test/..._child programs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"
#include "sanitize.h"
#include "hostile.h"

#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static char out[16384];

static int
crash2(const char *how, const char *opt)
{
    char *argv[] = { "overflow_child", (char *)how, (char *)opt, NULL };

    return t_spawn_capture(argv, out, sizeof(out), 20000);
}

static int
crash(const char *how)
{
    return crash2(how, NULL);
}

/* The report's common part: the backtrace names the crashing function
 * (frame: the start of its line) at the line of marker at, then its
 * caller at its line, and ends there; the table lists every green
 * thread. */
static void
assert_report(const char *frame, const char *at)
{
    static const char file[] = "test/overflow_child.c";
    char want[256];
    const char *p;

    ck_assert_msg(strstr(out, "{diesel} CRITICAL:backtrace of green thread "
        "'recurser' (id 3):\n") != NULL, "stderr: %s", out);
    if (frame != NULL) {
        p = strstr(out, frame);
        ck_assert_msg(p != NULL, "no frame %s in: %s", frame, out);
        /* crash_here, or its cold part: crash_here.cold */
        snprintf(want, sizeof(want), " (%s:%d)\ncrasher (%s:%d)\n[", file,
            t_source_line(file, at), file, t_source_line(file, "crash_here"));
        p = strchr(p + 1, '(');
        ck_assert_msg(p != NULL && strncmp(p - 1, want, strlen(want)) == 0,
            "want %s in: %s", want, out);
    }
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:green threads (3):\n") !=
        NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "CRITICAL:  2 bystander sleeping\n") != NULL,
        "stderr: %s", out);
    ck_assert_msg(strstr(out, "CRITICAL:  3 recurser running (crashed)\n") !=
        NULL, "stderr: %s", out);
    ck_assert_msg(strstr(out, "CRITICAL:  1 main waiting on join 3") !=
        NULL || strstr(out, "CRITICAL:  1 main sleeping") != NULL,
        "stderr: %s", out);
}

START_TEST(stack_overflow_names_the_green_thread_and_aborts)
{
    int st = crash("recurse");

    ck_assert_msg(WIFSIGNALED(st), "child status %#x, stderr: %s", st, out);
    ck_assert_int_eq(WTERMSIG(st), SIGABRT);
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:stack overflow in green "
        "thread 'recurser' (id 3)") != NULL, "stderr: %s", out);
    /* The first 64 frames are all the (static) recursing function. */
    assert_report(NULL, NULL);
    /* Reported once, not again for the abort that follows. */
    ck_assert_ptr_null(strstr(out, "fatal signal SIGABRT"));
}
END_TEST

START_TEST(frame_larger_than_the_guard_page_is_caught_too)
{
    int st = crash("bigframe");

    ck_assert_msg(WIFSIGNALED(st), "child status %#x, stderr: %s", st, out);
    ck_assert_int_eq(WTERMSIG(st), SIGABRT);
    ck_assert_msg(strstr(out, "stack overflow in green thread 'recurser' "
        "(id 3)") != NULL, "stderr: %s", out);
}
END_TEST

START_TEST(other_segfaults_keep_their_signal)
{
    int st = crash("null");

    ck_assert_ptr_null(strstr(out, "stack overflow"));
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:fatal signal SIGSEGV (fault "
        "at 0x40) in green thread 'recurser' (id 3)\n") != NULL, "stderr: %s",
        out);
    assert_report("\ncrash_here (test/overflow_child.c:", "store");
#ifdef DIESEL__ASAN
    /* The fault is handed on to ASan's handler, which reports and exits. */
    ck_assert_msg(strstr(out, "AddressSanitizer: SEGV") != NULL,
        "child status %#x, stderr: %s", st, out);
#else
    ck_assert_msg(WIFSIGNALED(st), "child status %#x, stderr: %s", st, out);
    ck_assert_int_eq(WTERMSIG(st), SIGSEGV);
#endif
}
END_TEST

START_TEST(abort_in_a_green_thread_is_reported_and_still_aborts)
{
    int st = crash("abort");

    ck_assert_msg(WIFSIGNALED(st), "child status %#x, stderr: %s", st, out);
    ck_assert_int_eq(WTERMSIG(st), SIGABRT);
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:fatal signal SIGABRT in "
        "green thread 'recurser' (id 3)\n") != NULL, "stderr: %s", out);
    /* The C library has no line table: its frames read func+offset. */
    ck_assert_msg(strstr(out, "\nabort+0x") != NULL, "stderr: %s", out);
    assert_report("\ncrash_here", "abort");
}
END_TEST

START_TEST(crash_report_can_be_turned_off)
{
    int st = crash2("null", "quiet");

    ck_assert_msg(strstr(out, "fatal signal SIGSEGV") != NULL, "stderr: %s",
        out);
    ck_assert_ptr_null(strstr(out, "backtrace of"));
    ck_assert_ptr_null(strstr(out, "green threads ("));
#ifndef DIESEL__ASAN
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
        "child status %#x, stderr: %s", st, out);
#else
    (void)st;
#endif
}
END_TEST

/*
 * Green threads named from client data (test/hostile.h): the crash
 * report names them escaped, its table has one row per green thread, and
 * nothing in it could drive the terminal that shows the log.
 */
START_TEST(crash_report_escapes_hostile_names)
{
    const char *table;
    long bad;
    int rows = 0;

    (void)crash2("null", "hostile");
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:fatal signal SIGSEGV (fault "
        "at 0x40) in green thread '" T_HOSTILE_ESCAPED "' (id 3)\n") != NULL,
        "stderr: %s", out);
    table = strstr(out, "{diesel} CRITICAL:green threads (3):\n");
    ck_assert_msg(table != NULL, "stderr: %s", out);
    for (const char *p = table; (p = strstr(p, "CRITICAL:  ")) != NULL; p++)
        rows++;
    ck_assert_msg(rows == 3, "%d rows in: %s", rows, table);
    ck_assert_msg(strstr(out, "\n| ") == NULL, "a forged row in: %s", out);
    ck_assert_msg(strstr(table, "CRITICAL:  2 " T_HOSTILE_ESCAPED
        " sleeping\n") != NULL, "stderr: %s", out);
    ck_assert_msg(strstr(table, "CRITICAL:  3 " T_HOSTILE_ESCAPED
        " running (crashed)\n") != NULL, "stderr: %s", out);
    bad = t_forbidden_at(out, strlen(out));
    ck_assert_msg(bad < 0, "raw byte %#x at %ld of: %s",
        bad < 0 ? 0 : (unsigned char)out[bad], bad, out);
}
END_TEST

/*
 * The program's own handler, without SA_ONSTACK, for a signal that comes
 * a few hundred bytes from the end of a green thread's stack: the kernel
 * cannot push the frame and sends SIGSEGV instead (no address, and it
 * does not come again on return).  Named a stack overflow, and aborts,
 * rather than go on with the signal lost.
 */
START_TEST(signal_frame_that_does_not_fit_is_a_stack_overflow)
{
    char *argv[] = { "deep_signal_child", "own", NULL };
    int st;

    /* valgrind pushes the frame itself and, finding no room, kills the
     * process with SIGSEGV without calling any handler. */
    if (RUNNING_ON_VALGRIND) {
        fprintf(stderr, "%s: skipped under valgrind\n", __func__);
        return;
    }
    st = t_spawn_capture(argv, out, sizeof(out), 20000);
    ck_assert_msg(WIFSIGNALED(st), "child status %#x, stderr: %s", st, out);
    ck_assert_int_eq(WTERMSIG(st), SIGABRT);
    ck_assert_msg(strstr(out, "{diesel} CRITICAL:stack overflow in green "
        "thread 'deep' (id 2): no room for a signal frame at 0x") != NULL,
        "stderr: %s", out);
    ck_assert_ptr_null(strstr(out, "fatal signal"));
    ck_assert_ptr_null(strstr(out, "own handler"));
}
END_TEST

START_TEST(spawn_past_the_mapping_limit_fails_cleanly)
{
    char *argv[] = { "mapfill_child", NULL };
    int st = t_spawn_capture(argv, out, sizeof(out), 60000);

    ck_assert_msg(WIFEXITED(st), "child status %#x, stderr: %s", st, out);
    if (WEXITSTATUS(st) == 77)
        return;   /* under a sanitizer or valgrind: cannot run */
    ck_assert_msg(WEXITSTATUS(st) == 0, "exit %d, stderr: %s",
        WEXITSTATUS(st), out);
    ck_assert_msg(strstr(out, "{diesel} ERROR:cannot map a ") != NULL &&
        strstr(out, "for green thread 'one-too-many'") != NULL &&
        strstr(out, "vm.max_map_count is") != NULL, "stderr: %s", out);
}
END_TEST

/*
 * Records, and the stack tops under them, at one offset in their pages
 * would share one D1 set and a few LL sets between all green threads:
 * the wake-run-park lines of a thousand connections would evict one
 * another however much cache is free.  Consecutive stacks are coloured
 * a line and, every 28, a page apart.
 */
START_TEST(stacks_are_cache_coloured)
{
    enum { N = 256 };
    struct diesel__task *t[N];
    unsigned char d1[64] = { 0 }, ll[1024] = { 0 };
    int nd1 = 0, nll = 0;

    for (int i = 0; i < N; i++) {
        uintptr_t line;

        t[i] = diesel__stack_create(DIESEL_STACK_DEFAULT);
        ck_assert_ptr_nonnull(t[i]);
        /* Colouring takes nothing from the stack asked for. */
        ck_assert_uint_ge((size_t)(t[i]->stack_hi - t[i]->stack_lo),
            DIESEL_STACK_DEFAULT);
        ck_assert((char *)(t[i] + 1) <= (char *)t[i]->map_base +
            t[i]->map_size);
        ck_assert_uint_eq((uintptr_t)t[i] % 64, 0);
        line = (uintptr_t)t[i] / 64;
        nd1 += !d1[line % 64]++;      /* 32 KiB, 8 ways: 64 sets */
        nll += !ll[line % 1024]++;    /* 1 MiB, 16 ways: 1024 sets */
    }
    ck_assert_int_ge(nd1, 16);
    ck_assert_int_ge(nll, 128);
    for (int i = 0; i < N; i++)
        diesel__stack_destroy(t[i]);
}
END_TEST

Suite *
diesel_stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *tc = tcase_create("stack");

    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, stack_overflow_names_the_green_thread_and_aborts);
    tcase_add_test(tc, frame_larger_than_the_guard_page_is_caught_too);
    tcase_add_test(tc, other_segfaults_keep_their_signal);
    tcase_add_test(tc, abort_in_a_green_thread_is_reported_and_still_aborts);
    tcase_add_test(tc, crash_report_can_be_turned_off);
    tcase_add_test(tc, crash_report_escapes_hostile_names);
    tcase_add_test(tc, signal_frame_that_does_not_fit_is_a_stack_overflow);
    tcase_add_test(tc, spawn_past_the_mapping_limit_fails_cleanly);
    tcase_add_test(tc, stacks_are_cache_coloured);
    suite_add_tcase(s, tc);
    return s;
}
