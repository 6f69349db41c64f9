/*
 * backtrace.c: backtraces of suspended green threads, and their symbols.
 *
 * glibc's backtrace(3) walks only the stack it is called on.  A green
 * thread that is not running is just a stack and a few saved registers:
 * its stack pointer once its switching call (diesel__ctx_swap_asm or
 * swapcontext) returns, the pc it resumes at (that call's return
 * address), and the callee-saved registers.  That is exactly the state of
 * a function that has just called another one, so we make the DWARF
 * unwinder believe that the green thread called us:
 *
 *   caller's stack (console session)             green thread's stack
 *   +-------------------------------+            +----------------------+
 *   | dump_fn: backtrace(pc, max)   |            | ...                  |
 *   +-------------------------------+            | its frames, as they  |
 *   | diesel__bt_unwind_as frame:   |   CFI:     | were when it parked  |
 *   |   0(sp) = &link  -------------+--> link:   +----------------------+
 *   +-------------------------------+    sp ---> | <- saved sp (CFA)    |
 *   | our real callers (never seen  |    pc      |   resume pc =        |
 *   | by this unwind)               |    fp,     |   diesel__task_park+N|
 *   +-------------------------------+    rbx...  +----------------------+
 *
 * diesel__bt_unwind_as (assembly below) pushes a pointer to a struct
 * diesel__regs (the "link") and calls fn(arg).  Its call site carries
 * hand-written CFI (DW_CFA_def_cfa_expression, DW_CFA_expression) that
 * says: "my caller's CFA is link->sp, my return address is link->pc, and
 * my caller's rbp/rbx/r12-r15 (x29, x19-x28) are in link->callee".  The
 * unwinder started in fn (glibc's backtrace()) thus steps from fn into
 * diesel__bt_unwind_as and from there into the green thread's resume pc
 * with the green thread's registers, and on through its real frames, up
 * to the makecontext entry (__start_context marks the end of the stack).
 * This is how glibc's own signal trampolines describe a frame whose
 * caller lives elsewhere.
 *
 * Nothing runs on the green thread's stack and nothing is written to it:
 * the unwinder only reads its frames.  So there is no stack switch (no
 * ASan fiber annotations, no valgrind stack registration), no page of the
 * green thread's stack is committed by the dump (dumping 100,000 sleeping
 * green threads does not grow the RSS), a green thread whose stack is
 * nearly full is dumped like any other, and there is no system call per
 * green thread.  The same code serves both switches: the saved registers
 * are read from the register switch's save area or, under
 * DIESEL_SWITCH=ucontext / make SWITCH=ucontext, from the ucontext_t
 * that swapcontext filled (diesel__platform_uc_regs, which knows that
 * glibc's aarch64 swapcontext resumes through a label of its own, with
 * the caller's return address in x1).
 *
 * Limits:
 *   - x86-64 and aarch64 only (the trampoline and the register layouts);
 *     elsewhere the dump says "unsupported".
 *   - The frames must have unwind tables (.eh_frame): gcc and clang emit
 *     them by default on these targets, so no -fno-omit-frame-pointer is
 *     needed.  Code built with -fno-asynchronous-unwind-tables and
 *     -fno-unwind-tables stops the unwind; we then fall back to a
 *     frame-pointer walk from the saved rbp/x29, bounded by the green
 *     thread's stack, which gives whole stacks only for code built with
 *     -fno-omit-frame-pointer.  The dump says which way it went.
 *   - A green thread that never ran has no frames ("not started").  One
 *     taken from the stack pool is recognised by its switch count.
 *   - The running green thread (the caller) is walked directly.
 *   - Frames are return addresses: symbols are looked up at pc - 1.
 *   - The unwinder trusts the stack: a green thread whose stack was
 *     smashed may give a short or odd backtrace, or, if a return address
 *     on it points to unmapped memory, make the unwinder fault (libgcc
 *     reads the code at a pc it has no unwind table for).  The resume pc
 *     itself is checked first (it must be in a loaded module), so a
 *     damaged record is reported, not followed.
 *
 * Symbols come from each module's own symbol table read from disk once
 * (.symtab, so static functions and the library's hidden ones have names;
 * .dynsym for stripped files), with dladdr(3) as the fallback, and never
 * from a file whose GNU build-id differs from the loaded module's (it was
 * replaced on disk).  Unknown symbols print as "??+0xOFF (module)" with
 * OFF relative to the module's load bias, for addr2line -e.  So no
 * -rdynamic is needed.  Reading a large .symtab the first time blocks the
 * loop for that long (about 10 ms for a 10 MB table).  The file's DWARF
 * line table is read with it (dwarf.c: about 30 ms per MB of .debug_line),
 * and the frames of the library's own functions are marked (the STT_FILE
 * symbols say which static functions are its).  diesel__sym_prepare
 * reads every module's tables up front, when the first loop starts, for
 * the signal handlers, which can read nothing themselves.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backtrace.h"
#include "dwarf.h"
#include "internal.h"

/* ---- The trampoline ----------------------------------------------------- */

/*
 * void diesel__bt_unwind_as(const struct diesel__regs *link,
 *                           void (*fn)(void *), void *arg);
 *
 * struct diesel__regs: 0 sp, 8 pc, 16 callee[0] (the frame pointer),
 * 24 callee[1], ... (see internal.h for which register is where).
 *
 * The CFI bytes (DWARF 4, section 6.4.2):
 *   0x0f L expr      DW_CFA_def_cfa_expression: CFA = value of expr
 *   0x10 R L expr    DW_CFA_expression: register R is saved at expr
 *   0x70+n k         DW_OP_breg<n> k: register n + k (rsp is 7, sp 31)
 *   0x06             DW_OP_deref
 *   0x23 k           DW_OP_plus_uconst k
 * The link pointer is at 0(%rsp) (x86-64) or 16(sp) (aarch64) from the
 * push to the end of the call, so each expression is "load the link from
 * the stack, then the field": CFA = *(*(sp + o) + 0), and register R at
 * *(sp + o) + offset.  DWARF numbers: x86-64 rbx 3, rbp 6, r12-r15 12-15,
 * return address 16; aarch64 x19-x28 19-28, x29 29, x30 (return) 30.
 */
#if defined(__x86_64__)
#define DIESEL__BT_TRAMPOLINE 1
__asm__(
    "    .text\n"
    "    .globl  diesel__bt_unwind_as\n"
    "    .hidden diesel__bt_unwind_as\n"
    "    .type   diesel__bt_unwind_as, @function\n"
    "    .p2align 4\n"
    "diesel__bt_unwind_as:\n"
    "    .cfi_startproc\n"
    "    pushq   %rdi\n"                   /* link at 0(%rsp); aligned */
    "    .cfi_adjust_cfa_offset 8\n"
    "    .cfi_remember_state\n"
    "    .cfi_escape 0x0f, 4, 0x77, 0, 0x06, 0x06\n"        /* CFA */
    "    .cfi_escape 0x10, 16, 5, 0x77, 0, 0x06, 0x23, 8\n" /* rip */
    "    .cfi_escape 0x10, 6, 5, 0x77, 0, 0x06, 0x23, 16\n" /* rbp */
    "    .cfi_escape 0x10, 3, 5, 0x77, 0, 0x06, 0x23, 24\n" /* rbx */
    "    .cfi_escape 0x10, 12, 5, 0x77, 0, 0x06, 0x23, 32\n" /* r12 */
    "    .cfi_escape 0x10, 13, 5, 0x77, 0, 0x06, 0x23, 40\n" /* r13 */
    "    .cfi_escape 0x10, 14, 5, 0x77, 0, 0x06, 0x23, 48\n" /* r14 */
    "    .cfi_escape 0x10, 15, 5, 0x77, 0, 0x06, 0x23, 56\n" /* r15 */
    "    movq    %rsi, %rax\n"
    "    movq    %rdx, %rdi\n"
    "    call    *%rax\n"
    "    .globl  diesel__bt_unwind_as_ret\n"
    "    .hidden diesel__bt_unwind_as_ret\n"
    "diesel__bt_unwind_as_ret:\n"
    "    popq    %rdi\n"
    "    .cfi_restore_state\n"
    "    .cfi_adjust_cfa_offset -8\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size   diesel__bt_unwind_as, .-diesel__bt_unwind_as\n");
#elif defined(__aarch64__)
#define DIESEL__BT_TRAMPOLINE 1
__asm__(
    "    .text\n"
    "    .globl  diesel__bt_unwind_as\n"
    "    .hidden diesel__bt_unwind_as\n"
    "    .type   diesel__bt_unwind_as, %function\n"
    "    .p2align 2\n"
    "diesel__bt_unwind_as:\n"
    "    .cfi_startproc\n"
    "    stp     x29, x30, [sp, #-32]!\n"
    "    .cfi_def_cfa_offset 32\n"
    "    .cfi_offset 29, -32\n"
    "    .cfi_offset 30, -24\n"
    "    str     x0, [sp, #16]\n"           /* link at 16(sp) */
    "    .cfi_remember_state\n"
    "    .cfi_escape 0x0f, 4, 0x8f, 16, 0x06, 0x06\n"        /* CFA */
    "    .cfi_escape 0x10, 30, 5, 0x8f, 16, 0x06, 0x23, 8\n" /* x30 */
    "    .cfi_escape 0x10, 29, 5, 0x8f, 16, 0x06, 0x23, 16\n" /* x29 */
    "    .cfi_escape 0x10, 19, 5, 0x8f, 16, 0x06, 0x23, 24\n"
    "    .cfi_escape 0x10, 20, 5, 0x8f, 16, 0x06, 0x23, 32\n"
    "    .cfi_escape 0x10, 21, 5, 0x8f, 16, 0x06, 0x23, 40\n"
    "    .cfi_escape 0x10, 22, 5, 0x8f, 16, 0x06, 0x23, 48\n"
    "    .cfi_escape 0x10, 23, 5, 0x8f, 16, 0x06, 0x23, 56\n"
    "    .cfi_escape 0x10, 24, 5, 0x8f, 16, 0x06, 0x23, 64\n"
    "    .cfi_escape 0x10, 25, 5, 0x8f, 16, 0x06, 0x23, 72\n"
    "    .cfi_escape 0x10, 26, 5, 0x8f, 16, 0x06, 0x23, 80\n"
    "    .cfi_escape 0x10, 27, 5, 0x8f, 16, 0x06, 0x23, 88\n"
    "    .cfi_escape 0x10, 28, 5, 0x8f, 16, 0x06, 0x23, 96\n"
    "    mov     x9, x1\n"
    "    mov     x0, x2\n"
    "    blr     x9\n"
    "    .globl  diesel__bt_unwind_as_ret\n"
    "    .hidden diesel__bt_unwind_as_ret\n"
    "diesel__bt_unwind_as_ret:\n"
    "    .cfi_restore_state\n"
    "    ldp     x29, x30, [sp], #32\n"
    "    .cfi_restore 29\n"
    "    .cfi_restore 30\n"
    "    .cfi_def_cfa_offset 0\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size   diesel__bt_unwind_as, .-diesel__bt_unwind_as\n");
#endif

#ifdef DIESEL__BT_TRAMPOLINE
void diesel__bt_unwind_as(const struct diesel__regs *link,
    void (*fn)(void *), void *arg);
extern const char diesel__bt_unwind_as_ret[];
#endif

/* The link's layout is what the CFI above reads. */
_Static_assert(offsetof(struct diesel__regs, sp) == 0, "link layout");
_Static_assert(offsetof(struct diesel__regs, pc) == 8, "link layout");
_Static_assert(offsetof(struct diesel__regs, callee) == 16, "link layout");

#if defined(__GNUC__) || defined(__clang__)
#define NO_ASAN __attribute__((no_sanitize("address")))
#else
#define NO_ASAN
#endif

/* ---- Taking a backtrace ------------------------------------------------- */

void
diesel__bt_init(void)
{
    static int done;
    void *pc[2];

    if (!__atomic_exchange_n(&done, 1, __ATOMIC_ACQ_REL))
        backtrace(pc, 2);
}

int
diesel__bt_regs(const struct diesel__task *t, struct diesel__regs *r)
{
    if (t->fresh || t->switches == 0 || t->state == DIESEL__RUNNING ||
        t->state == DIESEL__DONE) {
        errno = ESRCH;
        return -1;
    }
#ifdef DIESEL__SWITCH_ASM
    if (diesel__switch_fast) {
        const uintptr_t *g = t->ctx.regs;

        memset(r, 0, sizeof(*r));
#if defined(__x86_64__)
        /* rsp at r15 r14 r13 r12 rbx rbp, then the pc
         * (switch_x86_64.S) */
        const uintptr_t *s = (const uintptr_t *)g[0];

        r->sp = g[0] + 7 * sizeof(uintptr_t);
        /* Read only inside the stack: damaged, the stack pointer is
         * reported as it is, with no pc (see the dump's checks). */
        if (g[0] < (uintptr_t)t->stack_lo || r->sp > (uintptr_t)t->stack_hi)
            return 0;
        r->pc = s[6];
        r->callee[0] = s[5];
        r->callee[1] = s[4];
        for (int i = 2; i < 6; i++)
            r->callee[i] = s[5 - i];
#else
        /* x19-x28, x29, x30 (the resume pc), sp (switch_aarch64.S) */
        r->sp = g[12];
        r->pc = g[11];
        r->callee[0] = g[10];
        for (int i = 0; i < 10; i++)
            r->callee[1 + i] = g[i];
#endif
        return 0;
    }
#endif
    return diesel__platform_uc_regs(t->uc, r);
}

size_t
diesel__bt_stack_used(const struct diesel__task *t)
{
    struct diesel__regs r;
    uintptr_t sp;

    if (t == diesel__current) {
        char here;

        sp = (uintptr_t)&here;
    } else if (diesel__bt_regs(t, &r) == 0) {
        sp = r.sp;
    } else {
        return 0;
    }
    if (sp < (uintptr_t)t->stack_lo || sp > (uintptr_t)t->stack_hi)
        return 0;
    return (size_t)((uintptr_t)t->stack_hi - sp);
}

#ifdef DIESEL__BT_TRAMPOLINE
struct dump {
    void **pc;
    int max;
    int n;
};

static void
dump_fn(void *arg)
{
    struct dump *d = arg;

    d->n = backtrace(d->pc, d->max);
}
#endif

/*
 * Follow the frame-pointer chain from the saved rbp/x29: [fp] is the
 * caller's fp and [fp + 8] the return address, on both CPUs.  Every step
 * must stay inside the green thread's stack, above its stack pointer,
 * and go up.  Not instrumented: a wrong fp may point into a redzone.
 */
static NO_ASAN int
fp_walk(const struct diesel__task *t, const struct diesel__regs *r,
    void **pc, int max)
{
    uintptr_t fp = r->callee[0], lo = r->sp, hi = (uintptr_t)t->stack_hi;
    int n = 0;

    pc[n++] = (void *)r->pc;
    while (n < max && fp >= lo && fp + 2 * sizeof(uintptr_t) <= hi &&
        fp % sizeof(uintptr_t) == 0) {
        const uintptr_t *f = (const uintptr_t *)fp;

        if (f[1] == 0)
            break;
        pc[n++] = (void *)f[1];
        if (f[0] <= fp)
            break;
        fp = f[0];
    }
    return n;
}

static void
bt_task(struct diesel__task *t, struct diesel__bt *bt)
{
    struct diesel__regs r;
    Dl_info di;

    bt->n = 0;
    if (t == diesel__current) {
        void *pc[DIESEL__BT_MAX + 1];
        int n = backtrace(pc, DIESEL__BT_MAX + 1);

        /* pc[0] is in this function. */
        bt->how = DIESEL__BT_RUNNING;
        bt->n = n > 1 ? n - 1 : 0;
        memcpy(bt->pc, pc + 1, (size_t)bt->n * sizeof(pc[0]));
        return;
    }
    if (t->fresh || t->switches == 0) {
        bt->how = DIESEL__BT_NOT_STARTED;
        return;
    }
    if (diesel__bt_regs(t, &r) != 0) {
        bt->how = DIESEL__BT_UNSUPPORTED;
        return;
    }
    /* The unwinder reads the code at a pc it has no unwind table for (to
     * spot a signal trampoline): a resume pc outside every loaded module
     * would make it fault.  Frames further up come from the stack as the
     * CFI describes it, and go wrong only if that stack was smashed. */
    if (r.sp < (uintptr_t)t->stack_lo || r.sp >= (uintptr_t)t->stack_hi ||
        r.pc == 0 || dladdr((void *)r.pc, &di) == 0) {
        bt->how = DIESEL__BT_BAD;
        return;
    }
#ifdef DIESEL__BT_TRAMPOLINE
    {
        /* Room for our own two frames (dump_fn, the trampoline) and the
         * backtrace(3) frame that it skips itself. */
        void *pc[DIESEL__BT_MAX + 4];
        struct dump d = { pc, DIESEL__BT_MAX + 4, 0 };
        int i;

        diesel__bt_unwind_as(&r, dump_fn, &d);
        for (i = 0; i < d.n; i++) {
            if ((const void *)pc[i] == (const void *)diesel__bt_unwind_as_ret)
                break;
        }
        /* The frame after the trampoline's must be the resume pc, and
         * the unwind must have gone at least that far. */
        if (i + 1 < d.n && pc[i + 1] == (void *)r.pc) {
            bt->how = DIESEL__BT_UNWOUND;
            bt->n = d.n - (i + 1);
            if (bt->n > DIESEL__BT_MAX)
                bt->n = DIESEL__BT_MAX;
            memcpy(bt->pc, pc + i + 1, (size_t)bt->n * sizeof(pc[0]));
            /* Only the resume pc: the unwind stopped right there (no
             * unwind table for it); a frame-pointer walk may do better. */
            if (bt->n > 1)
                return;
        }
    }
#endif
    bt->how = DIESEL__BT_FRAMEPTR;
    bt->n = fp_walk(t, &r, bt->pc, DIESEL__BT_MAX);
}

/* A green thread suspended by diesel_task_yield's tail switch (task.c)
 * resumes in its caller: the frame it would have had in
 * diesel_task_yield is put back on top, as a pc just inside it. */
static void
yield_frame(const struct diesel__task *t, struct diesel__bt *bt)
{
    if (!t->yielded || bt->n == 0)
        return;
    if (bt->n == DIESEL__BT_MAX)
        bt->n--;
    memmove(bt->pc + 1, bt->pc, (size_t)bt->n * sizeof(bt->pc[0]));
    bt->pc[0] = (void *)((uintptr_t)diesel_task_yield + 1);
    bt->n++;
}

void
diesel__bt_task(struct diesel__task *t, struct diesel__bt *bt)
{
    bt_task(t, bt);
    if (bt->how == DIESEL__BT_UNWOUND || bt->how == DIESEL__BT_FRAMEPTR)
        yield_frame(t, bt);
}

/* ---- Symbols: one table per module file, read once ---------------------- */

#if UINTPTR_MAX > 0xffffffffu
#define ELFCLASS_NATIVE ELFCLASS64
#else
#define ELFCLASS_NATIVE ELFCLASS32
#endif
#define ST_TYPE(info) ((info) & 0xf)
#define ST_BIND(info) ((info) >> 4)
#ifndef STT_GNU_IFUNC
#define STT_GNU_IFUNC 10
#endif
#define BUILD_ID_MAX 64

struct fsym {
    uintptr_t value;     /* address relative to the load bias */
    uintptr_t size;
    uint32_t name;       /* offset in strtab */
    uint32_t lib;        /* 1: named diesel_*; 2: a static function of a
                            file named as one of the library's */
};

/* The functions of one module file.  Kept for the life of the process. */
struct elfsyms {
    struct elfsyms *next;
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    time_t mtime;
    struct fsym *syms;   /* sorted by value */
    size_t n;
    struct fsym *objs;   /* the variables (STT_OBJECT), for `sym`; lib
                            is 1 for a global or weak one */
    size_t nobjs;
    struct diesel__lines *lines; /* file:line, NULL without (dwarf.c) */
    char *strtab;
    size_t strsz;
    unsigned char build_id[BUILD_ID_MAX];
    size_t build_id_len; /* 0: the file has none */
};

static pthread_mutex_t syms_lock = PTHREAD_MUTEX_INITIALIZER;
static struct elfsyms *syms_cache;

static int
pread_all(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;

    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* Find an NT_GNU_BUILD_ID note in [p, p + len). */
static size_t
find_build_id(const unsigned char *p, size_t len, unsigned char *out)
{
    size_t off = 0;

    while (off + sizeof(ElfW(Nhdr)) <= len) {
        ElfW(Nhdr) nh;
        size_t name, desc;

        memcpy(&nh, p + off, sizeof(nh));
        off += sizeof(nh);
        name = (nh.n_namesz + 3) & ~(size_t)3;
        desc = (nh.n_descsz + 3) & ~(size_t)3;
        if (name > len - off || desc > len - off - name)
            break;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(p + off, "GNU", 4) == 0 && nh.n_descsz > 0 &&
            nh.n_descsz <= BUILD_ID_MAX) {
            memcpy(out, p + off + name, nh.n_descsz);
            return nh.n_descsz;
        }
        off += name + desc;
    }
    return 0;
}

static int
cmp_fsym(const void *a, const void *b)
{
    const struct fsym *x = a, *y = b;

    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    /* Equal addresses: the one with a size first. */
    return (x->size == 0) - (y->size == 0);
}

/*
 * The library's source files, by last path component: a static function
 * of one of them (its STT_FILE symbol says which) in the module that
 * holds the library is one of the library's frames.  The Makefile passes
 * the list; a build without it knows the library's frames by their
 * diesel_ names only.
 */
#ifndef DIESEL__LIB_FILES
#define DIESEL__LIB_FILES ""
#endif

static const char lib_files[] = DIESEL__LIB_FILES;

static int
lib_file(const char *path)
{
    const char *base = strrchr(path, '/'), *p = lib_files;
    size_t n;

    base = base ? base + 1 : path;
    n = strlen(base);
    while (n > 0 && (p = strstr(p, base)) != NULL) {
        if ((p == lib_files || p[-1] == ' ') &&
            (p[n] == ' ' || p[n] == '\0'))
            return 1;
        p += n;
    }
    return 0;
}

/* Read the function symbols of the ELF file at path; NULL if none. */
static struct elfsyms *
elf_load(const char *path)
{
    struct elfsyms *e = NULL;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    ElfW(Sym) *raw = NULL;
    struct stat st;
    size_t nraw, i;
    int fd, tab = -1, dyn = -1, use, str, in_lib = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        pread_all(fd, &eh, sizeof(eh), 0) != 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS_NATIVE ||
        eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 ||
        eh.e_shoff == 0 || (off_t)eh.e_shoff >= st.st_size)
        goto fail;
    sh = calloc(eh.e_shnum, sizeof(*sh));
    e = calloc(1, sizeof(*e));
    if (sh == NULL || e == NULL ||
        pread_all(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) != 0)
        goto fail;
    for (i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_offset > (uint64_t)st.st_size ||
            sh[i].sh_size > (uint64_t)st.st_size - sh[i].sh_offset)
            continue;
        if (sh[i].sh_type == SHT_SYMTAB && tab < 0)
            tab = (int)i;
        else if (sh[i].sh_type == SHT_DYNSYM && dyn < 0)
            dyn = (int)i;
        else if (sh[i].sh_type == SHT_NOTE && e->build_id_len == 0 &&
            sh[i].sh_size <= 4096) {
            unsigned char note[4096];

            if (pread_all(fd, note, sh[i].sh_size,
                (off_t)sh[i].sh_offset) == 0)
                e->build_id_len = find_build_id(note, sh[i].sh_size,
                    e->build_id);
        }
    }
    use = tab >= 0 ? tab : dyn;
    if (use < 0)
        goto fail;
    str = (int)sh[use].sh_link;
    if (str <= 0 || str >= eh.e_shnum || sh[str].sh_type != SHT_STRTAB ||
        sh[str].sh_offset > (uint64_t)st.st_size ||
        sh[str].sh_size > (uint64_t)st.st_size - sh[str].sh_offset ||
        sh[str].sh_size == 0 ||
        sh[use].sh_entsize != sizeof(ElfW(Sym)))
        goto fail;
    nraw = sh[use].sh_size / sizeof(ElfW(Sym));
    raw = malloc(nraw ? nraw * sizeof(*raw) : 1);
    e->strsz = sh[str].sh_size;
    e->strtab = malloc(e->strsz + 1);
    if (raw == NULL || e->strtab == NULL ||
        pread_all(fd, raw, nraw * sizeof(*raw),
        (off_t)sh[use].sh_offset) != 0 ||
        pread_all(fd, e->strtab, e->strsz, (off_t)sh[str].sh_offset) != 0)
        goto fail;
    e->strtab[e->strsz] = '\0';
    e->syms = malloc(nraw ? nraw * sizeof(*e->syms) : 1);
    e->objs = malloc(nraw ? nraw * sizeof(*e->objs) : 1);
    if (e->syms == NULL || e->objs == NULL)
        goto fail;
    for (i = 0; i < nraw; i++) {
        unsigned type = ST_TYPE(raw[i].st_info);

        /* The local symbols that follow an STT_FILE are that file's. */
        if (type == STT_FILE) {
            in_lib = raw[i].st_name < e->strsz &&
                lib_file(e->strtab + raw[i].st_name);
            continue;
        }
        if (type == STT_OBJECT && raw[i].st_shndx != SHN_UNDEF &&
            raw[i].st_shndx < SHN_LORESERVE && raw[i].st_name != 0 &&
            raw[i].st_name < e->strsz) {
            e->objs[e->nobjs].value = (uintptr_t)raw[i].st_value;
            e->objs[e->nobjs].size = (uintptr_t)raw[i].st_size;
            e->objs[e->nobjs].name = raw[i].st_name;
            e->objs[e->nobjs].lib = ST_BIND(raw[i].st_info) != STB_LOCAL;
            e->nobjs++;
            continue;
        }
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
            raw[i].st_shndx == SHN_UNDEF || raw[i].st_value == 0 ||
            raw[i].st_name == 0 || raw[i].st_name >= e->strsz)
            continue;
        e->syms[e->n].value = (uintptr_t)raw[i].st_value;
        e->syms[e->n].size = (uintptr_t)raw[i].st_size;
        e->syms[e->n].name = raw[i].st_name;
        e->syms[e->n].lib =
            strncmp(e->strtab + raw[i].st_name, "diesel_", 7) == 0 ? 1 :
            ST_BIND(raw[i].st_info) == STB_LOCAL && in_lib ? 2 : 0;
        e->n++;
    }
    e->lines = diesel__lines_read(fd, &eh, sh, st.st_size);
    qsort(e->syms, e->n, sizeof(*e->syms), cmp_fsym);
    e->path = strdup(path);
    if (e->path == NULL)
        goto fail;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtime;
    free(raw);
    free(sh);
    close(fd);
    return e;
fail:
    if (e != NULL) {
        free(e->syms);
        free(e->objs);
        free(e->strtab);
        free(e);
    }
    free(raw);
    free(sh);
    close(fd);
    return NULL;
}

/* The cached table for path, read now if it is new or changed. */
static struct elfsyms *
elf_get(const char *path)
{
    struct elfsyms *e;
    struct stat st;

    if (stat(path, &st) != 0)
        return NULL;
    pthread_mutex_lock(&syms_lock);
    for (e = syms_cache; e != NULL; e = e->next) {
        if (strcmp(e->path, path) == 0 && e->dev == st.st_dev &&
            e->ino == st.st_ino && e->size == st.st_size &&
            e->mtime == st.st_mtime)
            break;
    }
    if (e == NULL && (e = elf_load(path)) != NULL) {
        e->next = syms_cache;
        syms_cache = e;
    }
    pthread_mutex_unlock(&syms_lock);
    return e;
}

static const struct fsym *
elf_find(const struct elfsyms *e, uintptr_t rel)
{
    size_t lo = 0, hi = e->n;
    const struct fsym *s;

    /* The last symbol at or below rel. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (e->syms[mid].value <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    s = &e->syms[lo - 1];
    /* Several symbols may share the address; cmp_fsym put the sized
     * ones first. */
    while (s > e->syms && s[-1].value == s->value && s[-1].size != 0)
        s--;
    if (s->size != 0 && rel - s->value >= s->size)
        return NULL;
    /* A symbol without a size (hand-written assembly) covers up to the
     * next one; allow that only for a short distance. */
    if (s->size == 0 && rel - s->value >= 65536)
        return NULL;
    return s;
}

/* ---- Symbols: the modules of this process, per command ------------------ */

struct mod {
    uintptr_t bias;      /* dlpi_addr */
    uintptr_t lo, hi;    /* span of its PT_LOAD segments */
    char *path;
    const char *base;    /* last component of path */
    unsigned char build_id[BUILD_ID_MAX];
    size_t build_id_len;
    struct elfsyms *syms;
    int looked;          /* syms was looked for */
};

struct diesel__symtab {
    struct mod *m;
    size_t n, cap;
    uintptr_t sig[2];    /* the modules then: their count, and a sum
                            of their addresses (see count_modules) */
    int frozen;          /* every module looked up: read-only, for the
                            signal handlers (diesel__sym_prepare) */
    struct diesel__symtab *older; /* the one it replaced, kept (a handler
                            may still read it) and reachable */
};

/* The table the signal handlers use, or NULL; replaced (never freed: a
 * handler may be reading it) when modules come or go. */
static struct diesel__symtab *safe_tab;

static int
add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct diesel__symtab *tab = arg;
    struct mod *m;
    char exe[4096];
    const char *path = info->dlpi_name;
    const char *slash;

    (void)size;
    tab->sig[0]++;
    tab->sig[1] += (uintptr_t)info->dlpi_addr * 31 +
        (uintptr_t)info->dlpi_phdr;
    if (tab->n == tab->cap) {
        size_t cap = tab->cap ? tab->cap * 2 : 16;
        struct mod *a = realloc(tab->m, cap * sizeof(*a));

        if (a == NULL)
            return 1;
        tab->m = a;
        tab->cap = cap;
    }
    m = &tab->m[tab->n];
    memset(m, 0, sizeof(*m));
    m->bias = (uintptr_t)info->dlpi_addr;
    m->lo = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = m->bias + (uintptr_t)ph->p_vaddr;

        if (ph->p_type == PT_LOAD) {
            if (a < m->lo)
                m->lo = a;
            if (a + ph->p_memsz > m->hi)
                m->hi = a + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && m->build_id_len == 0) {
            m->build_id_len = find_build_id((const unsigned char *)a,
                ph->p_memsz, m->build_id);
        }
    }
    if (m->lo >= m->hi)
        return 0;
    /* The main program has an empty name. */
    if (path == NULL || path[0] == '\0')
        path = diesel__platform_exe_path(exe, sizeof(exe)) == 0 ? exe :
            "(main program)";
    m->path = strdup(path);
    if (m->path == NULL)
        return 1;
    slash = strrchr(m->path, '/');
    m->base = slash ? slash + 1 : m->path;
    tab->n++;
    return 0;
}

struct diesel__symtab *
diesel__sym_open(void)
{
    struct diesel__symtab *tab = calloc(1, sizeof(*tab));

    if (tab != NULL)
        dl_iterate_phdr(add_module, tab);
    return tab;
}

void
diesel__sym_close(struct diesel__symtab *tab)
{
    if (tab == NULL)
        return;
    for (size_t i = 0; i < tab->n; i++)
        free(tab->m[i].path);
    free(tab->m);
    free(tab);
}

/* Read m's symbols and line table, once. */
static void
mod_look(struct mod *m)
{
    if (m->looked)
        return;
    m->looked = 1;
    m->syms = elf_get(m->path);
    /* A file replaced on disk since it was loaded tells lies. */
    if (m->syms != NULL && m->build_id_len != 0 &&
        m->syms->build_id_len != 0 &&
        (m->build_id_len != m->syms->build_id_len ||
        memcmp(m->build_id, m->syms->build_id, m->build_id_len) != 0))
        m->syms = NULL;
}

int
diesel__sym_lookup_at(struct diesel__symtab *tab, const void *pc,
    int exact, struct diesel__sym *s)
{
    uintptr_t a = (uintptr_t)pc, at = a && !exact ? a - 1 : a;
    struct mod *m = NULL;
    const struct fsym *f;
    Dl_info di;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; tab != NULL && i < tab->n; i++) {
        if (at >= tab->m[i].lo && at < tab->m[i].hi) {
            m = &tab->m[i];
            break;
        }
    }
    if (m == NULL) {
        errno = ENOENT;
        return -1;
    }
    s->module = m->path;
    s->module_base = m->base;
    s->module_off = a - m->bias;
    if (!tab->frozen)
        mod_look(m);
    if (m->syms != NULL &&
        diesel__lines_find(m->syms->lines, at - m->bias, &s->file,
        &s->line) != 0)
        s->file = NULL;
    if (m->syms != NULL && (f = elf_find(m->syms, at - m->bias)) != NULL) {
        uintptr_t here = (uintptr_t)diesel__sym_lookup_at;

        s->func = m->syms->strtab + f->name;
        s->func_off = a - (m->bias + f->value);
        /* A static function is the library's only in the library's
         * module (another may have a file of the same name). */
        s->lib = f->lib == 1 || (f->lib == 2 && here >= m->lo &&
            here < m->hi);
        return 0;
    }
    /* The dynamic symbols the loader knows, for files we could not read
     * (the vDSO...); dladdr picks the nearest exported symbol below, which
     * may be the wrong function, so not where our own table has none.
     * Not in a signal handler. */
    if (!tab->frozen && m->syms == NULL && dladdr((void *)at, &di) != 0 &&
        di.dli_sname != NULL &&
        di.dli_saddr != NULL && (uintptr_t)di.dli_saddr <= at) {
        s->func = di.dli_sname;
        s->func_off = a - (uintptr_t)di.dli_saddr;
        s->lib = strncmp(s->func, "diesel_", 7) == 0;
    }
    return 0;
}

int
diesel__sym_lookup(struct diesel__symtab *tab, const void *pc,
    struct diesel__sym *s)
{
    return diesel__sym_lookup_at(tab, pc, 0, s);
}

/* The modules' signature, as add_module sums it: a module loaded or
 * unloaded changes it (dlpi_adds would say so too, but not every BSD
 * has it). */
static int
count_modules(struct dl_phdr_info *info, size_t size, void *arg)
{
    uintptr_t *c = arg;

    (void)size;
    c[0]++;
    c[1] += (uintptr_t)info->dlpi_addr * 31 + (uintptr_t)info->dlpi_phdr;
    return 0;
}

void
diesel__sym_prepare(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct diesel__symtab *cur, *tab;
    uintptr_t c[2] = { 0, 0 };

    pthread_mutex_lock(&lock);
    cur = __atomic_load_n(&safe_tab, __ATOMIC_ACQUIRE);
    dl_iterate_phdr(count_modules, c);
    if (cur != NULL && cur->sig[0] == c[0] && cur->sig[1] == c[1]) {
        pthread_mutex_unlock(&lock);
        return;
    }
    if ((tab = diesel__sym_open()) != NULL) {
        for (size_t i = 0; i < tab->n; i++)
            mod_look(&tab->m[i]);
        tab->frozen = 1;
        tab->older = cur;
        __atomic_store_n(&safe_tab, tab, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&lock);
}

struct diesel__symtab *
diesel__sym_safe(void)
{
    return __atomic_load_n(&safe_tab, __ATOMIC_ACQUIRE);
}

/* ---- Symbols by name, for `sym` and a module's api->symbol -------------- */

/* One module's candidates for name: a global beats a local, the first
 * found of a kind is kept; *count counts them all. */
static void
find_in(const struct mod *m, const struct fsym *a, size_t n, int object,
    const char *name, struct diesel__sym_named *best)
{
    const char *strtab = m->syms->strtab;

    for (size_t i = 0; i < n; i++) {
        int global;

        if (strcmp(strtab + a[i].name, name) != 0)
            continue;
        best->count++;
        /* For functions lib says whose they are, not their binding:
         * count them as global. */
        global = object ? a[i].lib == 1 : 1;
        if (best->module != NULL && (best->global || !global))
            continue;
        best->addr = m->bias + a[i].value;
        best->size = a[i].size;
        best->module = m->path;
        best->object = object;
        best->global = global;
    }
}

int
diesel__sym_named(struct diesel__symtab *tab, const char *name,
    struct diesel__sym_named *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; tab != NULL && i < tab->n; i++) {
        struct mod *m = &tab->m[i];

        if (!tab->frozen)
            mod_look(m);
        if (m->syms == NULL)
            continue;
        /* The executable's own (first) wins over a library's. */
        if (out->module != NULL && out->global)
            break;
        find_in(m, m->syms->objs, m->syms->nobjs, 1, name, out);
        find_in(m, m->syms->syms, m->syms->n, 0, name, out);
    }
    if (out->module == NULL) {
        errno = ENOENT;
        return -1;
    }
    return 0;
}
