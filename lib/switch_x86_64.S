/*
 * switch_x86_64.S: the register switch for x86-64 (System V ABI).
 *
 * Save area, 9 words:
 *   0 rbx  8 rbp  16 r12  24 r13  32 r14  40 r15  48 rsp  56 rip
 *   64 mxcsr (4 bytes)  68 x87 control word (2 bytes)
 *
 * rsp is saved as it will be after our return, and rip is our return
 * address, so resuming is "load rsp, jump to rip": no ret, which keeps
 * the CPU's return stack buffer in step with the calls really made.
 * Signals may arrive at any instruction: rsp always points into a valid
 * stack, and nothing below rsp (the red zone) is used.
 *
 * diesel__ctx_swap_asm's third argument (edx) is what the resumed side's
 * call returns (eax): the switcher tells it, before the jump, what it
 * would otherwise have to work out after it.  This is what lets
 * diesel_task_yield end in a tail call to the switch (task.c), so that
 * a green thread resumes straight into the caller of diesel_task_yield
 * with no return at all: a return right after a switch is predicted
 * from the other side's calls, and mispredicts every time.
 */
/* Save the caller's callee-saved registers, rsp as after our return, and
 * our return address as its pc, into the save area at rdi. */
.macro SAVE_CALLER
    movq    (%rsp), %rdx
    leaq    8(%rsp), %rcx
    movq    %rbx, 0(%rdi)
    movq    %rbp, 8(%rdi)
    movq    %r12, 16(%rdi)
    movq    %r13, 24(%rdi)
    movq    %r14, 32(%rdi)
    movq    %r15, 40(%rdi)
    movq    %rcx, 48(%rdi)
    movq    %rdx, 56(%rdi)
    stmxcsr 64(%rdi)
    fnstcw  68(%rdi)
.endm

    .text

    .globl  diesel__ctx_swap_asm
    .hidden diesel__ctx_swap_asm
    .type   diesel__ctx_swap_asm, @function
    .p2align 4
diesel__ctx_swap_asm:           /* rdi: save area of from, rsi: of to,
                                   edx: what the resumed call returns */
    movl    %edx, %eax
    SAVE_CALLER

    movq    0(%rsi), %rbx
    movq    8(%rsi), %rbp
    movq    16(%rsi), %r12
    movq    24(%rsi), %r13
    movq    32(%rsi), %r14
    movq    40(%rsi), %r15
    ldmxcsr 64(%rsi)
    fldcw   68(%rsi)
    movq    48(%rsi), %rsp
    jmpq    *56(%rsi)
    .size   diesel__ctx_swap_asm, .-diesel__ctx_swap_asm

    .globl  diesel__ctx_enter_asm
    .hidden diesel__ctx_enter_asm
    .type   diesel__ctx_enter_asm, @function
    .p2align 4
diesel__ctx_enter_asm:          /* rdi: save area of from, rsi: ucontext_t */
    SAVE_CALLER
    /* A tail call: setcontext never returns, and the stack is as our
     * caller left it, so alignment is that of a normal call. */
    movq    %rsi, %rdi
    jmp     setcontext@PLT
    .size   diesel__ctx_enter_asm, .-diesel__ctx_enter_asm

    .section .note.GNU-stack, "", @progbits
