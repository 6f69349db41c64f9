/*
 * switch.c: choosing the context switch at run time (see switch.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "switch.h"

int diesel__switch_fast;
static pthread_once_t decided = PTHREAD_ONCE_INIT;

#if !defined(DIESEL__SWITCH_ASM)
/* Only swapcontext is built in: there is nothing to choose. */
#elif defined(__x86_64__)
/*
 * rdsspq reads the shadow stack pointer.  Without CET enabled for the
 * process (or on a CPU without it) it is a no-op that leaves 0, so this
 * needs no OS interface and no -mshstk.
 */
static int
shadow_stack_on(void)
{
    unsigned long long ssp = 0;

    __asm__ volatile(".byte 0xf3, 0x48, 0x0f, 0x1e, 0xc8" /* rdsspq %rax */
        : "+a"(ssp));
    return ssp != 0;
}
#else /* aarch64 */
static int
shadow_stack_on(void)
{
    /* aarch64's Guarded Control Stack would need the same care; no
     * kernel or libc here enables it for user space yet. */
    return 0;
}
#endif

static void
decide(void)
{
    const char *env;

#ifdef DIESEL__SWITCH_ASM
    env = getenv("DIESEL_SWITCH");
    diesel__switch_fast = !shadow_stack_on() &&
        !(env != NULL && strcmp(env, "ucontext") == 0);
#else
    (void)env;
    diesel__switch_fast = 0;
#endif
}

/* Once in the process, whichever loop starts first: loops on other OS
 * threads read the choice after this returns. */
void
diesel__switch_init(void)
{
    pthread_once(&decided, decide);
}

const char *
diesel__switch_name(void)
{
    if (!diesel__switch_fast)
        return "ucontext";
#if defined(__aarch64__)
    return "aarch64";
#else
    return "x86_64";
#endif
}
