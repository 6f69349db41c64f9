/*
 * platform_linux.c: what only Linux can tell or do.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>

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

int
diesel__platform_peer_cred(int fd, pid_t *pid, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    /* The credentials the peer had when it called listen(2) or
     * connect(2): they cannot be changed by passing the socket on. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    return 0;
}

ssize_t
diesel__platform_send(int fd, const void *buf, size_t len)
{
    return send(fd, buf, len, MSG_NOSIGNAL);
}

const char *
diesel__platform_progname(void)
{
    return program_invocation_short_name;
}
