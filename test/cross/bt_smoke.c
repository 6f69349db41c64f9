/*
 * bt_smoke.c: backtraces of suspended green threads (lib/backtrace.c) on
 * the CPU it is built for; make check-cross-aarch64 runs it under qemu
 * with the register switch and with DIESEL_SWITCH=ucontext.  The library
 * is built with -fomit-frame-pointer there, so only the DWARF unwind
 * through diesel__bt_unwind_as can pass: the frame-pointer fallback
 * counts as a failure.  Exit status 0 when every stack is right.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "backtrace.h"

static int failures;

static __attribute__((noinline)) int
parked_here(void *arg)
{
    (void)arg;
    /* Not a tail call: the frame stays. */
    return diesel_sleep(10000) == 0 ? 0 : 1;
}

static volatile int depth = 2;

/* 0, or -1 once cancelled; a frame per level (no loop made of it). */
static __attribute__((noinline)) int
deeper(int d)
{
    volatile int keep = d;
    int r;

    if (d > 0) {
        r = deeper(d - 1);
        return r < 0 ? r : r + keep - d;
    }
    return diesel_task_yield() + keep;   /* not a tail call */
}

static __attribute__((noinline)) int
yields_deep(void *arg)
{
    (void)arg;
    while (deeper(depth) == 0)
        ;
    return 0;
}

/* want: function names expected in order, innermost first. */
static void
check(struct diesel__task *t, const char *const *want, int nwant)
{
    struct diesel__bt bt;
    struct diesel__symtab *tab;
    int w = 0;

    if (t == NULL) {
        printf("FAIL: the green thread is gone\n");
        failures++;
        return;
    }
    tab = diesel__sym_open();
    diesel__bt_task(t, &bt);
    printf("%s (id %lld): %d frames, how %d:", t->name, (long long)t->id,
        bt.n, (int)bt.how);
    for (int i = 0; i < bt.n; i++) {
        struct diesel__sym s;

        diesel__sym_lookup(tab, bt.pc[i], &s);
        printf(" %s", s.func ? s.func : "??");
        if (w < nwant && s.func != NULL &&
            strncmp(s.func, want[w], strlen(want[w])) == 0)
            w++;
    }
    printf("\n");
    if (bt.how != DIESEL__BT_UNWOUND || w != nwant) {
        printf("  FAIL: expected %s ... in order, by unwinding\n", want[0]);
        failures++;
    }
    diesel__sym_close(tab);
}

static int
smoke_main(void *arg)
{
    static const char *const sleeper[] = { "diesel__task_park",
        "diesel_sleep", "parked_here", "trampoline" };
    static const char *const yielder[] = { "diesel_task_yield", "deeper",
        "deeper", "deeper", "yields_deep", "trampoline" };
    int64_t a, b;

    (void)arg;
    diesel__bt_init();
    a = diesel_task_spawn("sleeper", parked_here, NULL, 0);
    b = diesel_task_spawn("yielder", yields_deep, NULL, 0);
    diesel_sleep(10);
    printf("switch: %s\n", diesel__switch_name());
    check(diesel__task_find(diesel__loop, a), sleeper, 4);
    check(diesel__task_find(diesel__loop, b), yielder, 6);
    diesel_loop_stop(0);
    return 0;
}

int
main(void)
{
    diesel_loop_run(smoke_main, NULL);
    printf("bt_smoke: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
