/*
 * observers.c: the loop's observers, in one table.  The loop calls them
 * through the hooks of struct diesel__loop_hooks (libuv's prepare and
 * check handles are the model) and names none of them; this file is the
 * only one that knows them all, so that adding one touches no other.
 */
#include "internal.h"

/* The alternate signal stack that every handler of the library runs on
 * (crash.c): no loop runs on a thread without one, so it comes first. */
static int
crash_start(struct diesel_loop *l)
{
    (void)l;
    return diesel__crash_init();
}

static void
crash_end(struct diesel_loop *l)
{
    (void)l;
    diesel__crash_fini();
}

/* The console's self-pipe, if it was installed on this thread. */
static int
console_start(struct diesel_loop *l)
{
    diesel__console_loop_start(l);
    return 0;
}

/* After the crash report: the hog handler runs on its alternate stack. */
static int
hog_start(struct diesel_loop *l)
{
    diesel__hog_loop_start(l);
    return 0;
}

const struct diesel__loop_hooks diesel__loop_observers[] = {
    { "crash", crash_start, crash_end, NULL, NULL },
    /* Debuggers find the loop (debug.c) from its start to its end. */
    { "debug", diesel__debug_loop_start, diesel__debug_loop_end, NULL, NULL },
    /* Named, and reachable from the other loops' consoles (loops.c). */
    { "loops", diesel__loops_start, diesel__loops_end, NULL, NULL },
    { "console", console_start, diesel__console_loop_end, NULL, NULL },
    { "hog", hog_start, diesel__hog_loop_end, NULL, diesel__hog_turn },
    { "acct", diesel__acct_loop_start, diesel__acct_loop_end,
      diesel__acct_before_poll, diesel__acct_after_poll },
    { NULL, NULL, NULL, NULL, NULL }
};
