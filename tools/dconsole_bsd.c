/*
 * dconsole_bsd.c: processes and peers on the BSDs and macOS: sysctl
 * KERN_PROC for a process's credentials and caught signals, the local
 * socket options for a peer's.  Not built or run on the Linux machines
 * the project is tested on: keep it to calls documented in each system's
 * manual, and compare with dconsole_linux.c when changing either.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#include <sys/un.h>
#if defined(__FreeBSD__) || defined(__DragonFly__)
#include <sys/user.h>
#include <sys/ucred.h>
#elif defined(__APPLE__)
#include <sys/proc.h>
#include <sys/ucred.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dconsole.h"

static long
since(time_t start_sec)
{
    struct timeval now;

    gettimeofday(&now, NULL);
    return now.tv_sec >= start_sec ? (long)(now.tv_sec - start_sec) : 0;
}

#if defined(__FreeBSD__)

static int
fill(const struct kinfo_proc *kp, int signo, struct dc_proc *p)
{
    p->pid = kp->ki_pid;
    p->uid = kp->ki_uid;
    p->state = kp->ki_stat == SZOMB ? 'Z' : kp->ki_stat == SSTOP ? 'T' :
        kp->ki_stat == SRUN ? 'R' : 'S';
    p->catches = sigismember(&kp->ki_sigcatch, signo) == 1;
    p->ignores = sigismember(&kp->ki_sigignore, signo) == 1;
    snprintf(p->comm, sizeof(p->comm), "%s", kp->ki_comm);
    p->uptime = since(kp->ki_start.tv_sec);
    p->start = (uint64_t)kp->ki_start.tv_sec * 1000000 +
        (uint64_t)kp->ki_start.tv_usec;
    p->born = (double)kp->ki_start.tv_sec;
    return 0;
}

#define KP struct kinfo_proc
#define KP_MIB(mib, pid) int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (pid) }
#define KP_ALL_MIB(mib) int mib[3] = { CTL_KERN, KERN_PROC, KERN_PROC_PROC }

#elif defined(__APPLE__)

static int
fill(const struct kinfo_proc *kp, int signo, struct dc_proc *p)
{
    p->pid = kp->kp_proc.p_pid;
    p->uid = kp->kp_eproc.e_ucred.cr_uid;
    p->state = kp->kp_proc.p_stat == SZOMB ? 'Z' :
        kp->kp_proc.p_stat == SSTOP ? 'T' : 'S';
    p->catches = (kp->kp_proc.p_sigcatch & sigmask(signo)) != 0;
    p->ignores = (kp->kp_proc.p_sigignore & sigmask(signo)) != 0;
    snprintf(p->comm, sizeof(p->comm), "%s", kp->kp_proc.p_comm);
    p->uptime = since(kp->kp_proc.p_starttime.tv_sec);
    p->start = (uint64_t)kp->kp_proc.p_starttime.tv_sec * 1000000 +
        (uint64_t)kp->kp_proc.p_starttime.tv_usec;
    p->born = (double)kp->kp_proc.p_starttime.tv_sec;
    return 0;
}

#define KP struct kinfo_proc
#define KP_MIB(mib, pid) int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (pid) }
#define KP_ALL_MIB(mib) int mib[3] = { CTL_KERN, KERN_PROC, KERN_PROC_ALL }

#elif defined(__OpenBSD__) || defined(__NetBSD__)

#if defined(__NetBSD__)
#define KP struct kinfo_proc2
#define KERN_PROC_X KERN_PROC2
#define CAUGHT(kp, s) (((kp)->p_sigcatch.__bits[((s) - 1) / 32] >> (((s) - 1) % 32)) & 1)
#define IGNORED(kp, s) (((kp)->p_sigignore.__bits[((s) - 1) / 32] >> (((s) - 1) % 32)) & 1)
#else
#define KP struct kinfo_proc
#define KERN_PROC_X KERN_PROC
#define CAUGHT(kp, s) (((kp)->p_sigcatch >> ((s) - 1)) & 1)
#define IGNORED(kp, s) (((kp)->p_sigignore >> ((s) - 1)) & 1)
#endif

static int
fill(const KP *kp, int signo, struct dc_proc *p)
{
    p->pid = kp->p_pid;
    p->uid = kp->p_uid;
    p->state = kp->p_stat == SZOMB || kp->p_stat == SDEAD ? 'Z' :
        kp->p_stat == SSTOP ? 'T' : 'S';
    p->catches = CAUGHT(kp, signo) != 0;
    p->ignores = IGNORED(kp, signo) != 0;
    snprintf(p->comm, sizeof(p->comm), "%s", kp->p_comm);
    p->uptime = since((time_t)kp->p_ustart_sec);
    p->start = (uint64_t)kp->p_ustart_sec * 1000000 +
        (uint64_t)kp->p_ustart_usec;
    p->born = (double)kp->p_ustart_sec;
    return 0;
}

#define KP_MIB(mib, pid) int mib[6] = { CTL_KERN, KERN_PROC_X, KERN_PROC_PID, \
    (pid), sizeof(KP), 1 }
#define KP_ALL_MIB(mib) int mib[6] = { CTL_KERN, KERN_PROC_X, KERN_PROC_ALL, \
    0, sizeof(KP), 0 }
#define KP_ALL_SIZED 1

#endif

#ifdef KP

int
dc_proc_get(pid_t pid, int signo, struct dc_proc *p)
{
    KP kp;
    size_t len = sizeof(kp);
    KP_MIB(mib, pid);

    memset(p, 0, sizeof(*p));
    p->uptime = -1;
    p->born = -1;
    if (sysctl(mib, sizeof(mib) / sizeof(mib[0]), &kp, &len, NULL, 0) != 0)
        return -1;
    if (len == 0) {
        errno = ESRCH;
        return -1;
    }
    fill(&kp, signo, p);
    if (p->state == 'Z') {
        errno = ESRCH;
        return -1;
    }
    return 0;
}

int
dc_proc_each(int signo, int (*fn)(const struct dc_proc *, void *), void *arg)
{
    KP *all = NULL;
    size_t len = 0, n;
    KP_ALL_MIB(mib);
    u_int nmib = sizeof(mib) / sizeof(mib[0]);

    /* The table grows between the two calls: ask for room to spare. */
    for (int tries = 0; tries < 8; tries++) {
        if (sysctl(mib, nmib, NULL, &len, NULL, 0) != 0)
            return -1;
        len += len / 4 + sizeof(KP) * 16;
        free(all);
        all = malloc(len);
        if (all == NULL)
            return -1;
#ifdef KP_ALL_SIZED
        mib[5] = (int)(len / sizeof(KP));
#endif
        if (sysctl(mib, nmib, all, &len, NULL, 0) == 0)
            break;
        if (errno != ENOMEM) {
            free(all);
            return -1;
        }
    }
    n = len / sizeof(KP);
    for (size_t i = 0; i < n; i++) {
        struct dc_proc p;

        memset(&p, 0, sizeof(p));
        fill(&all[i], signo, &p);
        if (p.state == 'Z' || !p.catches)
            continue;
        if (fn(&p, arg) != 0)
            break;
    }
    free(all);
    return 0;
}

#else

int
dc_proc_get(pid_t pid, int signo, struct dc_proc *p)
{
    (void)pid;
    (void)signo;
    (void)p;
    errno = ENOSYS;
    return -1;
}

int
dc_proc_each(int signo, int (*fn)(const struct dc_proc *, void *), void *arg)
{
    (void)signo;
    (void)fn;
    (void)arg;
    errno = ENOSYS;
    return -1;
}

#endif

int
dc_peer_cred(int fd, pid_t *pid, uid_t *uid)
{
#if defined(__OpenBSD__)
    struct sockpeercred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return -1;
    *pid = cr.pid;
    *uid = cr.uid;
    return 0;
#elif defined(__NetBSD__)
    struct unpcbid id;
    socklen_t len = sizeof(id);

    if (getsockopt(fd, 0, LOCAL_PEEREID, &id, &len) != 0)
        return -1;
    *pid = id.unp_pid;
    *uid = id.unp_euid;
    return 0;
#elif defined(__APPLE__)
    socklen_t len = sizeof(*pid);
    gid_t gid;

    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, pid, &len) != 0)
        return -1;
    return getpeereid(fd, uid, &gid);
#elif defined(__FreeBSD__) && defined(LOCAL_PEERCRED)
    struct xucred cr;
    socklen_t len = sizeof(cr);

    /* cr_pid: FreeBSD 13 and later. */
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cr, &len) != 0)
        return -1;
    *pid = cr.cr_pid;
    *uid = cr.cr_uid;
    return 0;
#else
    /* No way to learn the peer's pid: refuse rather than guess. */
    (void)fd;
    (void)pid;
    (void)uid;
    errno = ENOSYS;
    return -1;
#endif
}

int
dc_pid_open(pid_t pid)
{
    /* No process handle here (FreeBSD's pdfork makes one only for a
     * child): the signal goes by pid, right after the checks. */
    (void)pid;
    errno = ENOSYS;
    return -1;
}

int
dc_signal_send(pid_t pid, int pidfd, int signo, int32_t *value)
{
    (void)pidfd;
#if defined(__APPLE__) || defined(__OpenBSD__)
    /* No sigqueue: the app sees SI_USER and a nonce of 0. */
    *value = 0;
    return kill(pid, signo);
#else
    union sigval v;

    v.sival_int = *value;
    return sigqueue(pid, signo, v);
#endif
}

int
dc_bind_at(int fd, int dirfd, const char *dir, const char *name)
{
    struct sockaddr_un sa;
    size_t d = strlen(dir), n = strlen(name);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
#if defined(__FreeBSD__) && defined(AT_FDCWD)
    /* bindat(2) (FreeBSD 10): relative to the directory checked. */
    (void)d;
    if (n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, name, n + 1);
    return bindat(dirfd, fd, (struct sockaddr *)&sa, sizeof(sa));
#else
    /* No bindat, and fchdir(2) would move every thread: the path, after
     * checking that it still names the directory checked.  A swap between
     * this check and bind(2) is not excluded (dconsole(1) says so). */
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
    return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
#endif
}

int
dc_diagnose(pid_t pid, int signo, char *buf, size_t size)
{
    /* The descriptor count and signal masks of another process are not
     * told here: the cause is unknown from outside. */
    (void)pid;
    (void)signo;
    snprintf(buf, size, "unknown");
    return 0;
}

int32_t
dc_random31(void)
{
    uint32_t r = arc4random() & 0x7fffffff;

    return r != 0 ? (int32_t)r : 1;
}
