/*
 * switch.h: saving one context and resuming another.
 *
 * Two ways, chosen at build time and then at run time:
 *
 *   - a register switch in assembly (switch_x86_64.S, switch_aarch64.S)
 *     that saves only what the ABI says a callee keeps (the callee-saved
 *     registers, the stack pointer, the FPU control words) and resumes
 *     with a jump.  No system call.
 *   - swapcontext(3), the reference, which every POSIX system has.  glibc's
 *     makes a sigprocmask system call on every switch.  It is used under
 *     `make SWITCH=ucontext`, on other CPUs, when the process runs with
 *     shadow stacks (CET), whose return-address stack a plain register
 *     switch would corrupt, and when DIESEL_SWITCH=ucontext is set in the
 *     environment.
 *
 * Either way a stack is entered for the first time through the ucontext
 * that makecontext(3) prepared (one system call per stack, not per spawn).
 */
#ifndef DIESEL_SWITCH_H
#define DIESEL_SWITCH_H

#include <stdint.h>
#include <ucontext.h>

#if !defined(DIESEL_SWITCH_UCONTEXT) && \
    (defined(__x86_64__) || defined(__aarch64__))
#define DIESEL__SWITCH_ASM 1
#endif

#if defined(__aarch64__)
#define DIESEL__CTX_WORDS 22    /* x19-x30, sp, d8-d15, fpcr+fpsr */
#else
#define DIESEL__CTX_WORDS 2     /* rsp (below: the pushed registers,
                                   then the pc), mxcsr+fpucw */
#endif

/* The register switch's save area.  The ucontext of the other way is
 * kept apart (the owner's uc, passed beside it): the save area starts a
 * green thread's record, and what every switch and park reads and writes
 * follows it, with no room to spare (on x86-64 all in one line: the
 * registers are pushed on the stack, and only the stack pointer and the
 * FPU control words are saved here). */
struct diesel__ctx {
#ifdef DIESEL__SWITCH_ASM
    uintptr_t regs[DIESEL__CTX_WORDS];
#else
    char unused;                        /* ISO C has no empty struct */
#endif
};

/* 1 when the register switch is in use (set by diesel__switch_init). */
extern int diesel__switch_fast;

/* Decide between the two ways for this process; idempotent. */
void diesel__switch_init(void);
/* The way in use: "x86_64", "aarch64" or "ucontext". */
const char *diesel__switch_name(void);

#ifdef DIESEL__SWITCH_ASM
/* Save the callee-saved registers in from, load to's, jump to its pc;
 * the call that suspended to returns value there.  Returns the value
 * that whoever resumes from passes. */
int diesel__ctx_swap_asm(uintptr_t *from, uintptr_t *to, int value);
/* Save into from like the above, then setcontext(to). */
void diesel__ctx_enter_asm(uintptr_t *from, ucontext_t *to);
#endif

/* Whether the register switch is in use (else swapcontext, and the
 * ucontexts diesel__ctx_switch is given are the ones it uses). */
static inline int
diesel__ctx_fast(void)
{
#ifdef DIESEL__SWITCH_ASM
    return diesel__switch_fast;
#else
    return 0;
#endif
}

/*
 * Suspend the caller in from (from_uc, for swapcontext) and resume to
 * (to_uc).  fresh means to has never run: enter it through to_uc.  value
 * is what to's own switching call returns, if it was suspended by
 * diesel__ctx_swap_asm (task.c's tail switch); other ways of suspending
 * ignore it.  Returns when something resumes from.  The ucontexts are
 * read only by swapcontext and the entry of a fresh to: a caller on the
 * register switch passes NULL for those it need not load.
 */
static inline void
diesel__ctx_switch(struct diesel__ctx *from, ucontext_t *from_uc,
    struct diesel__ctx *to, ucontext_t *to_uc, int fresh, int value)
{
#ifdef DIESEL__SWITCH_ASM
    if (diesel__switch_fast) {
        if (fresh)
            diesel__ctx_enter_asm(from->regs, to_uc);
        else
            diesel__ctx_swap_asm(from->regs, to->regs, value);
        return;
    }
#else
    (void)from;
    (void)to;
#endif
    (void)fresh;
    (void)value;
    swapcontext(from_uc, to_uc);
}

#endif /* DIESEL_SWITCH_H */
