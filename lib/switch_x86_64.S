/*
 * switch_x86_64.S: the register switch for x86-64 (System V ABI).
 *
 * Save area, 2 words (DIESEL__CTX_WORDS):
 *   0 rsp, at the registers pushed on the suspended side's own stack:
 *     r15 r14 r13 r12 rbx rbp, then our return address (its pc)
 *   8 mxcsr (4 bytes)  12 x87 control word (2 bytes)
 *
 * The registers go on the stack, not in the save area, so that the save
 * area and what a park touches in the record are one cache line (see
 * struct diesel__task): the pushes land beside the parking frame, on the
 * stack lines a round trip touches anyway (task.c's make_entry places
 * them).  Resuming pops them and jumps to the pc: no ret, which keeps the
 * CPU's return stack buffer in step with the calls really made.  Signals
 * may arrive at any instruction: rsp always points into a valid stack,
 * and nothing below rsp (the red zone) is used.
 *
 * diesel__ctx_swap_asm's third argument (edx) is what the resumed side's
 * call returns (eax): the switcher tells it, before the jump, what it
 * would otherwise have to work out after it.  This is what lets
 * diesel_task_yield end in a tail call to the switch (task.c), so that
 * a green thread resumes straight into the caller of diesel_task_yield
 * with no return at all: a return right after a switch is predicted
 * from the other side's calls, and mispredicts every time.
 */
/* Save the caller's callee-saved registers on its own stack, below our
 * return address, and the stack pointer then into the save area at rdi,
 * with the FPU control words beside it. */
.macro SAVE_CALLER
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, 0(%rdi)
    stmxcsr 8(%rdi)
    fnstcw  12(%rdi)
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

    ldmxcsr 8(%rsi)
    fldcw   12(%rsi)
    movq    0(%rsi), %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    popq    %rcx
    jmpq    *%rcx
    .size   diesel__ctx_swap_asm, .-diesel__ctx_swap_asm

    .globl  diesel__ctx_enter_asm
    .hidden diesel__ctx_enter_asm
    .type   diesel__ctx_enter_asm, @function
    .p2align 4
diesel__ctx_enter_asm:          /* rdi: save area of from, rsi: ucontext_t */
    SAVE_CALLER
    /* A tail call: setcontext never returns.  Six pushes keep the
     * alignment of a normal call. */
    movq    %rsi, %rdi
    jmp     setcontext@PLT
    .size   diesel__ctx_enter_asm, .-diesel__ctx_enter_asm

    .section .note.GNU-stack, "", @progbits
