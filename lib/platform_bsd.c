/*
 * platform_bsd.c: the BSDs and macOS.  Not run here: kept compiling in
 * our heads, and built on Linux only as far as the calls are POSIX.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/param.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
#if defined(__FreeBSD__) || defined(__DragonFly__) || defined(__APPLE__)
#include <sys/ucred.h>
#endif
#include <sys/sysctl.h>
#if defined(__FreeBSD__)
#include <sys/user.h>
#endif
#if defined(__APPLE__)
#include <mach-o/dyld.h>
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

/* The start time from sysctl KERN_PROC, as dconsole_bsd.c reads it from
 * outside: microseconds since the epoch. */
int
diesel__platform_start_time(uint64_t *t)
{
#if defined(__FreeBSD__)
    struct kinfo_proc kp;
    size_t len = sizeof(kp);
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid() };

    if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0)
        return -1;
    *t = (uint64_t)kp.ki_start.tv_sec * 1000000 +
        (uint64_t)kp.ki_start.tv_usec;
    return 0;
#elif defined(__APPLE__)
    struct kinfo_proc kp;
    size_t len = sizeof(kp);
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid() };

    if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0)
        return -1;
    *t = (uint64_t)kp.kp_proc.p_starttime.tv_sec * 1000000 +
        (uint64_t)kp.kp_proc.p_starttime.tv_usec;
    return 0;
#elif defined(__OpenBSD__) || defined(__NetBSD__)
#if defined(__NetBSD__)
    struct kinfo_proc2 kp;
    int mib[6] = { CTL_KERN, KERN_PROC2, KERN_PROC_PID, (int)getpid(),
        sizeof(kp), 1 };
#else
    struct kinfo_proc kp;
    int mib[6] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)getpid(),
        sizeof(kp), 1 };
#endif
    size_t len = sizeof(kp);

    if (sysctl(mib, 6, &kp, &len, NULL, 0) != 0)
        return -1;
    *t = (uint64_t)kp.p_ustart_sec * 1000000 + (uint64_t)kp.p_ustart_usec;
    return 0;
#else
    /* DragonFly and the rest: unknown, so no advertisement is written,
     * the log says so, and dconsole (whose dconsole_bsd.c knows no
     * process there either) refuses to attach. */
    (void)t;
    errno = ENOSYS;
    return -1;
#endif
}

int
diesel__platform_connect_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;
    size_t d = strlen(dir), n = strlen(name);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
#if defined(__FreeBSD__) && defined(AT_FDCWD)
    /* connectat(2) (FreeBSD 10): relative to the directory checked. */
    (void)d;
    if (n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, name, n + 1);
    return connectat(dirfd, fd, (struct sockaddr *)&sa, sizeof(sa));
#else
    /* No connectat, and fchdir(2) would move every thread of the program:
     * the path, after checking that it still names the directory that was
     * checked.  A swap between this check and connect(2) is not excluded
     * here (diesel-console(7) says so); the peer's credentials are still
     * checked after it. */
    struct stat a, b;

    if (d + 1 + n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (fstat(dirfd, &a) != 0 || lstat(dir, &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        errno = ELOOP;
        return -1;
    }
    memcpy(sa.sun_path, dir, d);
    sa.sun_path[d] = '/';
    memcpy(sa.sun_path + d + 1, name, n + 1);
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
#endif
}

/* ---- For the console's built-in commands ------------------------------ */

int
diesel__platform_exe_path(char *buf, size_t size)
{
#if defined(__FreeBSD__) || defined(__DragonFly__)
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
    size_t len = size;

    if (sysctl(mib, 4, buf, &len, NULL, 0) != 0)
        return -1;
    return 0;
#elif defined(__APPLE__)
    uint32_t len = (uint32_t)size;

    if (_NSGetExecutablePath(buf, &len) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
#else
    (void)buf;
    (void)size;
    errno = ENOSYS;
    return -1;
#endif
}

int
diesel__platform_fd_path(int fd, char *buf, size_t size)
{
#if defined(__APPLE__)
    char path[MAXPATHLEN];

    if (fcntl(fd, F_GETPATH, path) != 0)
        return -1;
    snprintf(buf, size, "%s", path);
    return 0;
#else
    (void)fd;
    (void)buf;
    (void)size;
    errno = ENOSYS;
    return -1;
#endif
}

int
diesel__platform_fd_list(int **fds, size_t *n)
{
    /* No /proc: the caller sweeps the descriptor range. */
    (void)fds;
    (void)n;
    errno = ENOSYS;
    return -1;
}

double
diesel__platform_process_age(void)
{
    errno = ENOSYS;
    return -1;
}

int
diesel__platform_rss(int64_t *rss, int64_t *peak)
{
    struct rusage ru;

    *rss = -1;
    *peak = -1;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
#if defined(__APPLE__)
    *peak = (int64_t)ru.ru_maxrss;            /* bytes */
#else
    *peak = (int64_t)ru.ru_maxrss * 1024;     /* kilobytes */
#endif
    return 0;
}

int64_t
diesel__platform_resident(void *addr, size_t len)
{
    char vec[256];
    size_t page = diesel__stack_page(), pages, done = 0;
    int64_t bytes = 0;

    pages = (len + page - 1) / page;
    while (done < pages) {
        size_t k = pages - done < sizeof(vec) ? pages - done : sizeof(vec);

        if (mincore((char *)addr + done * page, k * page, (void *)vec) != 0)
            return -1;
        for (size_t i = 0; i < k; i++)
            bytes += (vec[i] & 1) ? (int64_t)page : 0;
        done += k;
    }
    return bytes;
}

int
diesel__platform_malloc_info(struct diesel__malloc_info *m)
{
    m->source = "none";
    m->arena = m->mmapped = m->in_use = m->free = m->releasable = -1;
    errno = ENOSYS;
    return -1;
}

uintptr_t
diesel__platform_uc_sp(const void *uctx)
{
    const ucontext_t *uc = uctx;

    if (uc == NULL)
        return 0;
#if defined(__FreeBSD__) && defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.mc_rsp;
#elif defined(__FreeBSD__) && defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.mc_gpregs.gp_sp;
#else
    return 0;
#endif
}

uintptr_t
diesel__platform_uc_pc(const void *uctx)
{
    const ucontext_t *uc = uctx;

    if (uc == NULL)
        return 0;
#if defined(__FreeBSD__) && defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.mc_rip;
#elif defined(__FreeBSD__) && defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.mc_gpregs.gp_elr;
#else
    return 0;
#endif
}

int
diesel__platform_uc_regs(const ucontext_t *uc, struct diesel__regs *r)
{
#if defined(__FreeBSD__) && defined(__x86_64__)
    const mcontext_t *m = &uc->uc_mcontext;

    r->sp = (uintptr_t)m->mc_rsp;
    r->pc = (uintptr_t)m->mc_rip;
    r->callee[0] = (uintptr_t)m->mc_rbp;
    r->callee[1] = (uintptr_t)m->mc_rbx;
    r->callee[2] = (uintptr_t)m->mc_r12;
    r->callee[3] = (uintptr_t)m->mc_r13;
    r->callee[4] = (uintptr_t)m->mc_r14;
    r->callee[5] = (uintptr_t)m->mc_r15;
    for (int i = 6; i < DIESEL__REGS_CALLEE; i++)
        r->callee[i] = 0;
    return 0;
#elif defined(__FreeBSD__) && defined(__aarch64__)
    const mcontext_t *m = &uc->uc_mcontext;

    r->sp = (uintptr_t)m->mc_gpregs.gp_sp;
    r->pc = (uintptr_t)m->mc_gpregs.gp_elr;
    r->callee[0] = (uintptr_t)m->mc_gpregs.gp_x[29];
    for (int i = 0; i < 10; i++)
        r->callee[1 + i] = (uintptr_t)m->mc_gpregs.gp_x[19 + i];
    return 0;
#else
    (void)uc;
    (void)r;
    errno = ENOSYS;
    return -1;
#endif
}

/* No timer aimed at one thread here: ITIMER_PROF, whose SIGPROF counts the
 * process's CPU time (a loop asleep in poll is not sampled) and goes to a
 * thread of the kernel's choosing (the handler ignores the others). */
static int prof_armed;

int
diesel__platform_prof_start(int signo, int hz)
{
    struct itimerval it;
    long us;

    if (signo != SIGPROF) {
        errno = ENOTSUP;
        return -1;
    }
    if (hz <= 0 || prof_armed) {
        errno = hz <= 0 ? EINVAL : EBUSY;
        return -1;
    }
    us = 1000000L / hz;
    it.it_interval.tv_sec = us / 1000000L;
    it.it_interval.tv_usec = us % 1000000L;
    it.it_value = it.it_interval;
    if (setitimer(ITIMER_PROF, &it, NULL) != 0)
        return -1;
    prof_armed = 1;
    return 0;
}

void
diesel__platform_prof_stop(void)
{
    struct itimerval it;

    if (!prof_armed)
        return;
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_PROF, &it, NULL);
    prof_armed = 0;
}
