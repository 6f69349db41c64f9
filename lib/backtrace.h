/*
 * backtrace.h: backtraces of green threads that are not running, and the
 * symbols of the addresses in them (see backtrace.c for how).
 */
#ifndef DIESEL_BACKTRACE_H
#define DIESEL_BACKTRACE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define DIESEL__BT_MAX 64        /* frames kept per stack */

/* How a backtrace was taken, or why there is none. */
enum diesel__bt_how {
    DIESEL__BT_UNWOUND,          /* DWARF unwinding (backtrace(3)) */
    DIESEL__BT_FRAMEPTR,         /* unwinding failed: frame-pointer walk */
    DIESEL__BT_RUNNING,          /* the calling green thread's own stack */
    DIESEL__BT_NOT_STARTED,      /* never ran: it has no frames yet */
    DIESEL__BT_UNSUPPORTED,      /* its registers cannot be read here */
    DIESEL__BT_BAD               /* its saved stack pointer is not in its
                                    stack: the record is damaged */
};

struct diesel__bt {
    enum diesel__bt_how how;
    int n;                       /* frames in pc */
    void *pc[DIESEL__BT_MAX];    /* innermost first: the resume point,
                                    then return addresses */
};

/* Load the unwinder now (backtrace(3) dlopens libgcc_s on first use),
 * so that the first stack dump does not do it inside the loop. */
void diesel__bt_init(void);

/* The backtrace of green thread t of the current loop, whatever its state. */
void diesel__bt_task(struct diesel__task *t, struct diesel__bt *bt);

/* The registers t resumes with; -1 if it never ran or they are unknown. */
int diesel__bt_regs(const struct diesel__task *t, struct diesel__regs *r);

/* Bytes of t's stack in use now (0 if it never ran). */
size_t diesel__bt_stack_used(const struct diesel__task *t);

/*
 * Symbols.  A table is a snapshot of the loaded modules (dl_iterate_phdr)
 * for one command; the symbols of each module file are read once per
 * process from its .symtab (static functions included), else .dynsym,
 * and kept.
 */
struct diesel__sym {
    const char *func;            /* NULL when unknown */
    uintptr_t func_off;          /* pc - the function's address */
    const char *module;          /* the module's path, or NULL */
    const char *module_base;     /* its last path component */
    uintptr_t module_off;        /* pc - the module's load bias: what
                                    addr2line -e MODULE wants */
    const char *file;            /* source file, from the module's DWARF
                                    line table (dwarf.c); NULL without */
    unsigned line;               /* its line, with file */
    int lib;                     /* one of the library's own functions */
};

struct diesel__symtab;
struct diesel__symtab *diesel__sym_open(void);
/* Fill s for pc, a return address (looked up as pc - 1); 0, or -1 if
 * no module holds pc. */
int diesel__sym_lookup(struct diesel__symtab *, const void *pc,
    struct diesel__sym *s);
/* The same; pc is looked up as it is if exact (the pc a signal
 * interrupted), else as pc - 1. */
int diesel__sym_lookup_at(struct diesel__symtab *, const void *pc,
    int exact, struct diesel__sym *s);
void diesel__sym_close(struct diesel__symtab *);

/*
 * The symbol called name, a variable (STT_OBJECT) or a function, from the
 * same tables: the executable's first, a global one before a local
 * (static) one.  0, or -1 ENOENT.
 */
struct diesel__sym_named {
    uintptr_t addr;              /* where it is in this process */
    size_t size;                 /* its st_size (0: not known) */
    const char *module;          /* the module's path (the table's) */
    int object;                  /* a variable, not a function */
    int global;                  /* not a static one */
    unsigned count;              /* symbols of that name seen */
};
int diesel__sym_named(struct diesel__symtab *, const char *name,
    struct diesel__sym_named *out);

/*
 * The signal handlers (stuck report, crash report, hog warning) cannot
 * read files or allocate: they look symbols up in a table built before,
 * by diesel__sym_prepare (every module's symbols and line table read
 * now; a no-op while no module has been loaded or unloaded since).
 * diesel__sym_safe returns it, or NULL if there is none yet; lookups in
 * it are signal-safe.
 */
void diesel__sym_prepare(void);
struct diesel__symtab *diesel__sym_safe(void);

#endif /* DIESEL_BACKTRACE_H */
