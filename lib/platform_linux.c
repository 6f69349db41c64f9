/*
 * platform_linux.c: what only Linux can tell or do.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>

#include "internal.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102   /* Linux 6.13 */
#endif

int
diesel__platform_guard(void *addr, size_t len)
{
    /* A guard region inside the mapping: faults like PROT_NONE, but
     * does not split the mapping in two. */
    return madvise(addr, len, MADV_GUARD_INSTALL);
}

long
diesel__platform_map_limit(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    long v = -1;

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

long
diesel__platform_map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    long n = 0;
    int c;

    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF) {
        if (c == '\n')
            n++;
    }
    fclose(f);
    return n;
}
