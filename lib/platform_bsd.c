/*
 * platform_bsd.c: the BSDs and macOS.  Not run here: kept compiling in
 * our heads, and built on Linux only as far as the calls are POSIX.
 */
#include <errno.h>

#include "internal.h"

int
diesel__platform_guard(void *addr, size_t len)
{
    /* No guard-region madvise: the caller mprotects the page. */
    (void)addr;
    (void)len;
    errno = ENOSYS;
    return -1;
}

long
diesel__platform_map_limit(void)
{
    /* No per-process mapping limit like vm.max_map_count. */
    return -1;
}

long
diesel__platform_map_count(void)
{
    return -1;
}
