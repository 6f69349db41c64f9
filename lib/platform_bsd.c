/*
 * platform_bsd.c: the BSDs and macOS.  Not run here: kept compiling in
 * our heads, and built on Linux only as far as the calls are POSIX.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/param.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__FreeBSD__) || defined(__DragonFly__) || defined(__APPLE__)
#include <sys/ucred.h>
#endif

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

int
diesel__platform_peer_cred(int fd, pid_t *pid, uid_t *uid)
{
    gid_t gid;

    *pid = -1;
#if defined(__OpenBSD__)
    {
        struct sockpeercred pc;
        socklen_t len = sizeof(pc);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &pc, &len) != 0)
            return -1;
        *pid = pc.pid;
        *uid = pc.uid;
        return 0;
    }
#elif defined(__NetBSD__)
    {
        struct unpcbid id;
        socklen_t len = sizeof(id);

        if (getsockopt(fd, 0, LOCAL_PEEREID, &id, &len) != 0)
            return -1;
        *pid = id.unp_pid;
        *uid = id.unp_euid;
        return 0;
    }
#else
    if (getpeereid(fd, uid, &gid) != 0)
        return -1;
#if defined(__APPLE__) && defined(LOCAL_PEERPID)
    {
        pid_t p;
        socklen_t len = sizeof(p);

        if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &p, &len) == 0)
            *pid = p;
    }
#elif defined(LOCAL_PEERCRED) && defined(XUCRED_VERSION) && \
    (defined(__FreeBSD__) && __FreeBSD_version >= 1300000)
    {
        struct xucred xu;
        socklen_t len = sizeof(xu);

        /* cr_pid is there since FreeBSD 13. */
        if (getsockopt(fd, 0, LOCAL_PEERCRED, &xu, &len) == 0 &&
            xu.cr_version == XUCRED_VERSION)
            *pid = xu.cr_pid;
    }
#endif
    (void)gid;
    return 0;
#endif
}

ssize_t
diesel__platform_send(int fd, const void *buf, size_t len)
{
#if defined(MSG_NOSIGNAL)
    return send(fd, buf, len, MSG_NOSIGNAL);
#else
    /* macOS: no MSG_NOSIGNAL, but a per-socket option does the same. */
    int on = 1;

    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
    return send(fd, buf, len, 0);
#endif
}

const char *
diesel__platform_progname(void)
{
    return getprogname();
}
