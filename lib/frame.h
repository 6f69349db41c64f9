/*
 * frame.h: how a frame of a backtrace reads (see frame.c).
 */
#ifndef DIESEL_FRAME_H
#define DIESEL_FRAME_H

#include <stddef.h>

#include "backtrace.h"
#include "internal.h"

/* "func (file:line)", "func+0xOFF (module)", "??+0xOFF (module)" or
 * "0xPC" for pc, a return address unless exact, into buf. */
void diesel__frame_fmt(struct diesel__symtab *, const void *pc, int exact,
    char *buf, size_t size);
/* How many of the n frames pc[] (innermost first) to keep: up to and
 * including the green thread's entry, the library's trampoline. */
int diesel__frames_cut(struct diesel__symtab *, void *const *pc, int n);
/* How many of the innermost frames are the library's; *parked_in is the
 * outermost of them that is not the trampoline (-1 if none). */
int diesel__frames_lib(struct diesel__symtab *, void *const *pc, int n,
    int *parked_in);
/* pc is in the green thread's entry, the library's trampoline. */
int diesel__frame_entry(struct diesel__symtab *, const void *pc);
/* diesel__frame_fmt's text appended to l, from the table that
 * diesel__sym_prepare built; *entry says if pc is in the trampoline.
 * -1 (nothing appended) if there is no table yet, or pc is in no module
 * it has.  Signal-safe. */
int diesel__frame_sline(const void *pc, int exact, struct diesel__sline *l,
    int *entry);

/* The n frames of a backtrace taken in a signal handler (innermost
 * first), one line each, to fd: from exact, the pc the signal
 * interrupted, if it is among them (0: from the first), up to the green
 * thread's entry.  backtrace_symbols_fd's lines while there is no table.
 * Signal-safe. */
void diesel__frames_write(int fd, void *const *frames, int n,
    uintptr_t exact);

#endif /* DIESEL_FRAME_H */
