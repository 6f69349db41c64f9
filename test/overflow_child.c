/*
 * overflow_child.c: a process that crashes a green thread on purpose, for
 * check_stack.c.  argv[1]: "recurse" (unbounded recursion), "bigframe" (one
 * frame far larger than the guard page), "null" (a store to an unmapped
 * page, not an overflow), "abort"; argv[2] "quiet" turns the crash report
 * off, "hostile" names both green threads with test/hostile.h's name.
 * The functions are not static, and the Makefile links the children with
 * -rdynamic, so that backtraces name them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diesel.h"
#include "hostile.h"

static volatile int sink;
/* Never set: the compilers cannot know, so the recursion has no end but
 * the guard page, and indexes through `at` keep whole arrays (a compiler
 * may shrink a volatile array to the elements constant indexes touch). */
static volatile int stop;
static volatile size_t at;

static __attribute__((noinline)) int
recurse(int n)
{
    volatile char pad[256];

    pad[(at + (size_t)n) % sizeof(pad)] = (char)n;
    sink += pad[at];
    if (stop)
        return 0;
    return recurse(n + 1) + pad[at];
}

static __attribute__((noinline)) int
bigframe(void)
{
    /* 1 MiB on a 128 KiB stack: -fstack-clash-protection probes each
     * page, so the first probe past the stack hits the guard page. */
    volatile char big[1 << 20];

    big[at] = 1;
    big[sizeof(big) - 1 - at] = 1;
    return big[at] + big[sizeof(big) - 1 - at];
}

int crash_here(const char *how);

__attribute__((noinline, visibility("default"))) int
crash_here(const char *how)
{
    volatile int *bad;

    if (strcmp(how, "recurse") == 0)
        return recurse(0);
    if (strcmp(how, "bigframe") == 0)
        return bigframe();
    if (strcmp(how, "abort") == 0)
        abort();                /* line: abort */
    /* An unmapped address that is not NULL, so that UBSan lets the
     * store through to the MMU. */
    bad = (volatile int *)(sink ? (uintptr_t)&sink : (uintptr_t)64);
    *bad = 1;                   /* line: store */
    return 0;
}

static int
crasher(void *arg)
{
    return crash_here(arg) + sink;  /* line: crash_here */
}

static int
idle(void *arg)
{
    (void)arg;
    return diesel_sleep(1000);
}

static int hostile;

static int
main_task(void *arg)
{
    diesel_task_spawn(hostile ? T_HOSTILE_NAME : "bystander", idle, NULL,
        0);
    diesel_task_spawn(hostile ? T_HOSTILE_NAME : "recurser", crasher, arg,
        0);
    return diesel_sleep(1000);
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[2], "quiet") == 0)
        diesel_crash_report(0);
    hostile = argc > 2 && strcmp(argv[2], "hostile") == 0;
    return diesel_loop_run(main_task, argv[1]);
}
