/*
 * debug.c: what a debugger reads to show the green threads of a live
 * process or of a core file, when no console can answer (a crash, a hang,
 * gcore).  tools/diesel-gdb.py is the reader (`info green-threads`,
 * `green-thread ID bt`); Go's runtime-gdb.py and CPython's python-gdb.py
 * are the models.
 *
 * A debugger cannot count on the DWARF types of the library's structs (a
 * build without -g, a stripped one, a sanitizer's), so the library
 * describes them itself: one const root with a well-known name,
 * diesel_debug_root, that holds a magic, a layout version, and the offset
 * of every field the reader needs, each taken with offsetof() so that a
 * field moved elsewhere (the task record is ordered for cache lines) is
 * followed without a word here.  What needs the version bumped: a field
 * the reader uses changing its type or meaning, or this root changing.
 *
 * Version 1, all integers in the process's byte order (byte_order reads
 * 0x01020304 in it), offsets and sizes as uint32 unless said:
 *
 *   root                               the list of running loops
 *   +-------------------+
 *   | magic "diesel-debug-root"        (24 bytes, NUL-padded)
 *   | version, byte_order, size, ptr_size
 *   | loops -------------------------> struct diesel_loop *head
 *   | switch_fast (int *)                  |
 *   | asm_regs, uc_regs (regs tables)      v  loop.debug_next -> ...
 *   | state_names (char *[n_states])   loop.tasks: slot[tasks_cap]
 *   | offsets...                           slot.t -> task record
 *   +-------------------+
 *
 * Fields read in a loop: debug_next (pointer), debug_lwp (int64), tasks
 * (pointer to slots), tasks_cap (size_t), now (int64, monotonic ns of its
 * last turn), ntasks (uint64).  In a slot: t (pointer, NULL when empty).
 * In a task: id (int64), name (char[name_size]), state (int, an index of
 * state_names), switches (uint64: 0 means it never ran), timer_index
 * (size_t: its deadline's place in the loop's timer heap, all ones when
 * its park has none; wait.deadline is stale then), ctx (the register switch's save area, described by asm_regs), ctx_uc
 * (pointer to the ucontext_t that swapcontext filled, described by
 * uc_regs), stack_lo and stack_hi (pointers), where (char *, "file.c:42"
 * or NULL), spawn_caller (the spawn call's return address), spawned_at
 * (int64 ns) and wait, in which: kind (int: the wait_* values), fd and
 * events (int: ev_read, ev_write bits), since, deadline (int64 ns, -1 for
 * none) and target (int64 id), what and object (char *, or NULL).
 *
 * The saved registers are those of the register switch while *switch_fast
 * is non-zero, else those in the ucontext.  A table's entries are byte
 * offsets from the save area; where its indirect word is 1 (version 3:
 * x86-64's switch pushes the registers on the green thread's stack),
 * from the address in the save area's first word instead, and an offset
 * with its top bit set names no word but that address plus the rest (the
 * stack pointer).  Either way their sp is the
 * stack pointer after the switching call returned and their pc its return
 * address, so the caller of the switch is the first frame to show.
 *
 * Loops join the list when they start and leave it when they end, under a
 * lock (a debugger stops the whole process, so it never sees the list in
 * the middle of a change unless a thread was stopped inside one: the
 * reader bounds its walks).  The loop's hot path does not touch it.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define DEBUG_VERSION 3

static const char *const state_names[] = {
    [DIESEL__READY] = "ready",
    [DIESEL__RUNNING] = "running",
    [DIESEL__WAITING] = "waiting",
    [DIESEL__SLEEPING] = "sleeping",
    [DIESEL__DONE] = "done",
};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

#ifdef DIESEL__SWITCH_ASM
#define CTX_REG(name, word) { name, (uint64_t)(word) * sizeof(uintptr_t) }
#if defined(__x86_64__)
/* switch_x86_64.S: the save area's first word points at r15 r14 r13 r12
 * rbx rbp rip, pushed on the stack; rsp is that address plus 7 words. */
static const struct diesel__debug_regs asm_regs = { 8, 1, {
    CTX_REG("r15", 0), CTX_REG("r14", 1), CTX_REG("r13", 2),
    CTX_REG("r12", 3), CTX_REG("rbx", 4), CTX_REG("rbp", 5),
    CTX_REG("rip", 6),
    { "rsp", DIESEL__DEBUG_REGS_ADDR | 7 * sizeof(uintptr_t) } } };
#else
/* switch_aarch64.S: x19-x28, x29 (fp), x30 (lr, the resume pc), sp. */
static const struct diesel__debug_regs asm_regs = { 14, 0, {
    CTX_REG("x19", 0), CTX_REG("x20", 1), CTX_REG("x21", 2),
    CTX_REG("x22", 3), CTX_REG("x23", 4), CTX_REG("x24", 5),
    CTX_REG("x25", 6), CTX_REG("x26", 7), CTX_REG("x27", 8),
    CTX_REG("x28", 9), CTX_REG("x29", 10), CTX_REG("x30", 11),
    CTX_REG("pc", 11), CTX_REG("sp", 12) } };
#endif
#define ASM_REGS (&asm_regs)
#else
#define ASM_REGS NULL
#endif

/* The layout above, as a C struct (the reader decodes it field by field,
 * in this order). */
struct diesel_debug_root {
    char magic[24];
    uint32_t version;
    uint32_t byte_order;
    uint32_t size;
    uint32_t ptr_size;
    struct diesel_loop *const *loops;
    const int *switch_fast;
    const struct diesel__debug_regs *asm_regs;
    const struct diesel__debug_regs *uc_regs;
    const char *const *state_names;
    uint32_t n_states;
    uint32_t loop_debug_next, loop_debug_lwp, loop_tasks, loop_tasks_cap,
        loop_now, loop_ntasks;
    uint32_t slot_size, slot_t;
    uint32_t task_id, task_name, name_size, task_state, task_switches,
        task_timer_index, task_ctx, task_ctx_uc, task_stack_lo, task_stack_hi,
        task_where, task_spawn_caller, task_spawned_at;
    uint32_t wait_kind, wait_fd, wait_events, wait_since, wait_deadline,
        wait_target, wait_what, wait_object;
    uint32_t wait_sleep, wait_fd_kind, wait_join, wait_other;
    uint32_t ev_read, ev_write;
};

/* The types the reader assumes: change one and bump DEBUG_VERSION. */
#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)
_Static_assert(FIELD_SIZE(struct diesel__task, id) == 8 &&
    FIELD_SIZE(struct diesel__task, state) == 4 &&
    FIELD_SIZE(struct diesel__task, switches) == 8 &&
    FIELD_SIZE(struct diesel__heap_node, index) == sizeof(void *) &&
    FIELD_SIZE(struct diesel__task, spawned_at) == 8 &&
    FIELD_SIZE(struct diesel__wait, kind) == 4 &&
    FIELD_SIZE(struct diesel__wait, fd) == 4 &&
    FIELD_SIZE(struct diesel__wait, events) == 4 &&
    FIELD_SIZE(struct diesel__wait, since) == 8 &&
    FIELD_SIZE(struct diesel__wait, deadline) == 8 &&
    FIELD_SIZE(struct diesel__wait, target) == 8 &&
    FIELD_SIZE(struct diesel_loop, debug_lwp) == 8 &&
    FIELD_SIZE(struct diesel_loop, tasks_cap) == sizeof(void *) &&
    FIELD_SIZE(struct diesel_loop, now) == 8 &&
    FIELD_SIZE(struct diesel_loop, ntasks) == 8,
    "diesel_debug_root: a field changed type: bump DEBUG_VERSION and "
    "tools/diesel-gdb.py");

/* The running loops, newest first. */
static struct diesel_loop *loops;
static pthread_mutex_t loops_lock = PTHREAD_MUTEX_INITIALIZER;

#define TASK(f) offsetof(struct diesel__task, f)
#define WAIT(f) (offsetof(struct diesel__task, wait) + \
    offsetof(struct diesel__wait, f))
#define LOOP(f) offsetof(struct diesel_loop, f)

DIESEL_API __attribute__((used))
const struct diesel_debug_root diesel_debug_root = {
    .magic = "diesel-debug-root",
    .version = DEBUG_VERSION,
    .byte_order = 0x01020304,
    .size = sizeof(struct diesel_debug_root),
    .ptr_size = sizeof(void *),
    .loops = &loops,
    .switch_fast = &diesel__switch_fast,
    .asm_regs = ASM_REGS,
    .uc_regs = &diesel__platform_uc_layout,
    .state_names = state_names,
    .n_states = N_STATES,
    .loop_debug_next = LOOP(debug_next),
    .loop_debug_lwp = LOOP(debug_lwp),
    .loop_tasks = LOOP(tasks),
    .loop_tasks_cap = LOOP(tasks_cap),
    .loop_now = LOOP(now),
    .loop_ntasks = LOOP(ntasks),
    .slot_size = sizeof(struct diesel__task_slot),
    .slot_t = offsetof(struct diesel__task_slot, t),
    .task_id = TASK(id),
    .task_name = TASK(name),
    .name_size = FIELD_SIZE(struct diesel__task, name),
    .task_state = TASK(state),
    .task_switches = TASK(switches),
    .task_timer_index = TASK(timer) + offsetof(struct diesel__heap_node, index),
    .task_ctx = TASK(ctx),
    .task_ctx_uc = TASK(uc),
    .task_stack_lo = TASK(stack_lo),
    .task_stack_hi = TASK(stack_hi),
    .task_where = TASK(where),
    .task_spawn_caller = TASK(spawn_caller),
    .task_spawned_at = TASK(spawned_at),
    .wait_kind = WAIT(kind),
    .wait_fd = WAIT(fd),
    .wait_events = WAIT(events),
    .wait_since = WAIT(since),
    .wait_deadline = WAIT(deadline),
    .wait_target = WAIT(target),
    .wait_what = WAIT(what),
    .wait_object = WAIT(object),
    .wait_sleep = DIESEL__WAIT_SLEEP,
    .wait_fd_kind = DIESEL__WAIT_FD,
    .wait_join = DIESEL__WAIT_JOIN,
    .wait_other = DIESEL__WAIT_OTHER,
    .ev_read = DIESEL_READ,
    .ev_write = DIESEL_WRITE,
};

int
diesel__debug_loop_start(struct diesel_loop *l)
{
    /* A reference from code that every loop runs: a static link pulls
     * this file in with the loop, and --gc-sections keeps the root. */
    __asm__ volatile("" : : "r"(&diesel_debug_root));
    l->debug_lwp = diesel__platform_thread_id();
    pthread_mutex_lock(&loops_lock);
    l->debug_next = loops;
    loops = l;
    pthread_mutex_unlock(&loops_lock);
    return 0;
}

void
diesel__debug_loop_end(struct diesel_loop *l)
{
    pthread_mutex_lock(&loops_lock);
    for (struct diesel_loop **p = &loops; *p != NULL; p = &(*p)->debug_next) {
        if (*p == l) {
            *p = l->debug_next;
            break;
        }
    }
    pthread_mutex_unlock(&loops_lock);
    l->debug_next = NULL;
}
