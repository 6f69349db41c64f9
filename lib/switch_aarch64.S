/*
 * switch_aarch64.S: the register switch for aarch64 (AAPCS64).
 *
 * Save area, 22 words (DIESEL__CTX_WORDS):
 *     0 x19    8 x20   16 x21   24 x22   32 x23   40 x24   48 x25
 *    56 x26   64 x27   72 x28   80 x29 (fp)     88 x30 (lr: the pc)
 *    96 sp   104 d8   112 d9   120 d10  128 d11  136 d12  144 d13
 *   152 d14  160 d15  168 fpcr (4 bytes)  172 fpsr (4 bytes)
 *
 * Only the low 64 bits of v8-v15 (d8-d15) are callee-saved.  FPCR
 * (rounding, flush-to-zero, default NaN) is callee-saved control state,
 * like x86's MXCSR; FPSR holds the sticky exception flags, which the
 * x86 file keeps per context too (they live in MXCSR there), and so
 * does glibc's swapcontext here.  Both are 32-bit as used today (FPCR's
 * upper half is RES0); each is written back only when it differs,
 * since msr to them can be slow on some cores.
 *
 * x30 on entry is our return address and sp is what it will be after
 * our return (no push on aarch64), so resuming is "load sp, branch to
 * the saved x30".  That branch is br, not ret: the issue asks for a
 * jump, and a ret would be predicted from the return stack, whose top
 * is the call site of the side being suspended, so it would mispredict
 * every time; br goes through the indirect predictor, which learns the
 * few places where green threads resume.
 *
 * BTI: this object carries no GNU_PROPERTY_AARCH64_FEATURE_1_BTI note.
 * The linker marks its output BTI only when every input is marked, so
 * a binary linking this is not, and the kernel/ld.so do not map its
 * text with PROT_BTI (unless linked with -z force-bti, which warns).
 * Marking it would take more than a "bti c" at each entry: br to a
 * resume point (a return site after a bl, which has no landing pad)
 * would raise a Branch Target exception in guarded pages, so resuming
 * would have to be a ret, which BTI does not check.
 * PAC (pac-ret): callers sign their own lr in their frames, with sp as
 * the modifier; we restore sp exactly and never touch those frames, so
 * it keeps working.  The pc we store is unsigned, as in glibc's
 * ucontext; signing it (paciasp before the store, autiasp after the
 * load: NOPs on CPUs without PAC) would harden it, and is not done.
 * SME: switching with streaming mode or ZA live is not supported (no
 * libc here enables it behind our back).
 *
 * Signals may arrive at any instruction: sp is changed by the single
 * "mov sp" below, from one valid stack to the other, and nothing is
 * stored below sp.  x9-x11 are scratch (caller-saved).
 *
 * diesel__ctx_swap_asm's third argument (w2) is what the resumed side's
 * call returns (w0): see switch_x86_64.S for why.
 */
    .text

/* Save the caller's callee-saved state into the area at x0. */
    .macro  SAVE_CTX
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    str     x9, [x0, #96]
    stp     d8, d9, [x0, #104]
    stp     d10, d11, [x0, #120]
    stp     d12, d13, [x0, #136]
    stp     d14, d15, [x0, #152]
    mrs     x10, fpcr
    mrs     x11, fpsr
    str     w10, [x0, #168]
    str     w11, [x0, #172]
    .endm

    .globl  diesel__ctx_swap_asm
    .hidden diesel__ctx_swap_asm
    .type   diesel__ctx_swap_asm, %function
    .p2align 4
diesel__ctx_swap_asm:           /* x0: save area of from, x1: of to,
                                   w2: what the resumed call returns */
    SAVE_CTX                    /* leaves from's fpcr, fpsr in x10, x11 */

    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldp     d8, d9, [x1, #104]
    ldp     d10, d11, [x1, #120]
    ldp     d12, d13, [x1, #136]
    ldp     d14, d15, [x1, #152]
    ldr     w9, [x1, #168]
    cmp     w9, w10
    b.eq    1f
    msr     fpcr, x9
1:  ldr     w9, [x1, #172]
    cmp     w9, w11
    b.eq    2f
    msr     fpsr, x9
2:  ldr     x9, [x1, #96]
    mov     w0, w2
    mov     sp, x9
    br      x30
    .size   diesel__ctx_swap_asm, .-diesel__ctx_swap_asm

    .globl  diesel__ctx_enter_asm
    .hidden diesel__ctx_enter_asm
    .type   diesel__ctx_enter_asm, %function
    .p2align 4
diesel__ctx_enter_asm:          /* x0: save area of from, x1: ucontext_t */
    SAVE_CTX
    /* A tail call: setcontext never returns, and sp and lr are as our
     * caller left them.  "b" is R_AARCH64_JUMP26, which the linker
     * routes through the PLT (or a veneer on x16/x17) when setcontext
     * lives in libc.so: fine in a PIE or a shared object. */
    mov     x0, x1
    b       setcontext
    .size   diesel__ctx_enter_asm, .-diesel__ctx_enter_asm

    .section .note.GNU-stack, "", %progbits
