/*
 * deep_stack.h: take the running green thread down to a few hundred bytes
 * from the end of its stack, for the test programs (*_child.c) that check
 * that a signal arriving there is handled on the alternate stack
 * (TESTPLAN 20).  Header-only: each child is one file.
 *
 *   stack_lo                                                     stack_hi
 *   | guard page | ~400 bytes | deep_descend frames...  | deep_run | ...
 *                ^ DEEP_ROOM  ^ the deepest frame calls fn() here
 *
 * A signal frame takes more than is left there: 1 KiB and more on x86-64
 * (with AVX-512 state, 3 KiB), 4.5 KiB on aarch64, the least being
 * sysconf(_SC_MINSIGSTKSZ).  So a handler that is not on the alternate
 * stack runs the kernel (or valgrind) into the guard page.
 */
#ifndef DIESEL_DEEP_STACK_H
#define DIESEL_DEEP_STACK_H

#include <signal.h>
#include <stddef.h>
#include <unistd.h>

#include "internal.h"

/* The stack to spawn the deep green thread with: small, so that the
 * descent is quick. */
#define DEEP_STACK ((size_t)32 * 1024)
/* About what the deepest frame leaves below itself. */
#define DEEP_ROOM 384

/* Called by the deepest frame: it must use next to no stack (a system
 * call, a spin on a volatile flag), and sets deep_room to DEEP_LEFT(). */
typedef void (*deep_fn)(void);

static char *deep_lo;                  /* the green thread's stack_lo */
static volatile size_t deep_index;     /* 0, but no compiler can know */
static volatile size_t deep_room;      /* room at the deepest frame */
static volatile int deep_there;        /* 1 while down there */
static volatile int deep_release;      /* deep_spin's way back up */

/* Bytes between the calling function's frame and the end of the stack. */
#define DEEP_LEFT() \
    ((size_t)((char *)__builtin_frame_address(0) - deep_lo))

/* Each frame writes a byte of its own and checks it on the way back: the
 * depth reached if every frame came back intact, else -1. */
static __attribute__((noinline)) long
deep_descend(deep_fn fn, long n)
{
    volatile char pad[64];
    size_t i = (deep_index + (size_t)n) % sizeof(pad);
    long r;

    pad[i] = (char)n;
    if (DEEP_LEFT() > DEEP_ROOM + 256) {
        r = deep_descend(fn, n + 1);
    } else {
        fn();
        r = n;
    }
    return r < 0 || pad[i] != (char)n ? -1 : r;
}

/* Go down in the running green thread, call fn there, come back up. */
static long
deep_run(deep_fn fn)
{
    deep_lo = diesel__current->stack_lo;
    return deep_descend(fn, 0);
}

/* A deep_fn: stay down there until deep_release is set. */
static __attribute__((noinline)) void
deep_spin(void)
{
    deep_room = DEEP_LEFT();
    deep_there = 1;
    while (!deep_release)
        ;
    deep_there = 0;
}

/* The least stack a signal frame needs here. */
static long
deep_min_frame(void)
{
#ifdef _SC_MINSIGSTKSZ
    long n = sysconf(_SC_MINSIGSTKSZ);

    if (n > 0)
        return n;
#endif
    return (long)MINSIGSTKSZ;
}

#endif
