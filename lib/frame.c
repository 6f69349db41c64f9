/*
 * frame.c: how a frame of a backtrace reads, for the console's stacks
 * and tasks, the stuck report, the crash report and the hog warning.
 *
 *   handle_request (server.c:123)    the module has a line table (-g)
 *   handle_request+0x40 (service)    it has symbols only
 *   ??+0x1a2b (libfoo.so)            neither: the offset is the module's,
 *                                    for addr2line -e
 *   0x7f12a4c0                       outside every module
 *
 * A green thread's stack ends in the library's trampoline, which called
 * its function, under makecontext's entry (__start_context, an unnamed
 * "??" frame in a stripped libc): the frames below the trampoline are
 * cut, and the trampoline itself is one of the library's frames.  The
 * library's frames (diesel__task_park, diesel_fd_wait, the trampoline...:
 * functions named diesel_*, and the static functions of the library's
 * files, see backtrace.c) at the top of a stack are folded into one line
 * that names the call the green thread is parked in, the outermost of
 * them:
 *
 *   (parked in diesel_sleep: 2 library frames)
 *   sleeper (service.c:40)
 *
 * The signal handlers format with the table diesel__sym_prepare built
 * before (diesel__frame_sline).
 */
#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backtrace.h"
#include "frame.h"
#include "internal.h"

/* The green thread's entry: the library's trampoline (task.c). */
static int
is_entry(const struct diesel__sym *s)
{
    return s->lib && s->func != NULL && strcmp(s->func, "trampoline") == 0;
}

void
diesel__frame_fmt(struct diesel__symtab *tab, const void *pc, int exact,
    char *buf, size_t size)
{
    struct diesel__sym s;

    if (diesel__sym_lookup_at(tab, pc, exact, &s) != 0)
        snprintf(buf, size, "0x%llx", (unsigned long long)(uintptr_t)pc);
    else if (s.func != NULL && s.file != NULL)
        snprintf(buf, size, "%s (%s:%u)", s.func, s.file, s.line);
    else if (s.func != NULL)
        snprintf(buf, size, "%s+0x%llx (%s)", s.func,
            (unsigned long long)s.func_off, s.module_base);
    else
        snprintf(buf, size, "??+0x%llx (%s)",
            (unsigned long long)s.module_off, s.module_base);
}

int
diesel__frames_cut(struct diesel__symtab *tab, void *const *pc, int n)
{
    /* The trampoline is one or two frames from the bottom; look a few
     * further, for a libc that puts more under it. */
    for (int i = n - 1; i >= 0 && i >= n - 4; i--) {
        struct diesel__sym s;

        if (diesel__sym_lookup(tab, pc[i], &s) == 0 && is_entry(&s))
            return i + 1;
    }
    return n;
}

int
diesel__frames_lib(struct diesel__symtab *tab, void *const *pc, int n,
    int *parked_in)
{
    int k = 0;

    *parked_in = -1;
    for (; k < n; k++) {
        struct diesel__sym s;

        if (diesel__sym_lookup(tab, pc[k], &s) != 0 || !s.lib)
            break;
        if (!is_entry(&s))
            *parked_in = k;
    }
    return k;
}

int
diesel__frame_entry(struct diesel__symtab *tab, const void *pc)
{
    struct diesel__sym s;

    return diesel__sym_lookup(tab, pc, &s) == 0 && is_entry(&s);
}

int
diesel__frame_sline(const void *pc, int exact, struct diesel__sline *l,
    int *entry)
{
    struct diesel__symtab *tab = diesel__sym_safe();
    struct diesel__sym s;

    *entry = 0;
    /* No table, or a module loaded since it was built (dlopen). */
    if (tab == NULL || diesel__sym_lookup_at(tab, pc, exact, &s) != 0)
        return -1;
    *entry = is_entry(&s);
    if (s.func != NULL) {
        diesel__sline_put(l, s.func);
    } else {
        diesel__sline_put(l, "??+");
        diesel__sline_hex(l, (uint64_t)s.module_off);
    }
    if (s.func != NULL && s.file != NULL) {
        diesel__sline_put(l, " (");
        diesel__sline_put(l, s.file);
        diesel__sline_put(l, ":");
        diesel__sline_u64(l, s.line);
        diesel__sline_put(l, ")");
        return 0;
    }
    if (s.func != NULL) {
        diesel__sline_put(l, "+");
        diesel__sline_hex(l, (uint64_t)s.func_off);
    }
    diesel__sline_put(l, " (");
    diesel__sline_put(l, s.module_base);
    diesel__sline_put(l, ")");
    return 0;
}

void
diesel__frames_write(int fd, void *const *frames, int n, uintptr_t exact)
{
    int first = 0;

    /* From the interrupted pc on: the frames before it are the signal
     * handler's own. */
    for (int i = 0; exact != 0 && i < n; i++) {
        if ((uintptr_t)frames[i] == exact) {
            first = i;
            break;
        }
    }
    for (int i = first; i < n; i++) {
        struct diesel__sline l = { "", 0 };
        int entry;

        if (diesel__frame_sline(frames[i], (uintptr_t)frames[i] == exact,
            &l, &entry) != 0) {
            /* No table yet: what the C library can say. */
            backtrace_symbols_fd(frames + i, 1, fd);
            continue;
        }
        if (entry)
            break;      /* below it: makecontext's entry, noise */
        l.b[l.n++] = '\n';
        for (size_t off = 0; off < l.n; ) {
            ssize_t w = write(fd, l.b + off, l.n - off);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
}
