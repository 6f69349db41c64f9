/*
 * platform_bsd.c: the BSDs and macOS.  Not run here: kept compiling in
 * our heads, and built on Linux only as far as the calls are POSIX.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
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
#include <time.h>
#include <unistd.h>
#if defined(__FreeBSD__) || defined(__DragonFly__) || defined(__APPLE__)
#include <sys/ucred.h>
#endif
#include <sys/sysctl.h>
#if defined(__FreeBSD__) || defined(__DragonFly__)
#include <sys/user.h>
#endif
#if defined(__APPLE__)
#include <mach-o/dyld.h>
#include <sys/proc.h>
#endif
#if defined(__FreeBSD__) || defined(__DragonFly__)
#include <pthread_np.h>     /* pthread_getthreadid_np */
#endif
#if defined(__NetBSD__)
#include <lwp.h>            /* _lwp_self */
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

/* The start time from sysctl KERN_PROC, as diesel__platform_proc_get
 * reads it for any process: microseconds since the epoch.  DragonFly and
 * the rest: unknown, so no advertisement is written, the log says so, and
 * an attach (which knows no process there either) is refused. */
int
diesel__platform_start_time(uint64_t *t)
{
    struct diesel__proc p;

    if (diesel__platform_proc_get(getpid(), SIGTRAP, &p) != 0)
        return -1;
    if (p.start == 0) {
        errno = ENOSYS;
        return -1;
    }
    *t = p.start;
    return 0;
}

/*
 * The address of name inside the directory open as dirfd, for
 * connectat(2)/bindat(2) where they exist (*at set), else the path, after
 * checking that it still names the directory that was checked: no
 * connectat, and fchdir(2) would move every thread of the program.  A
 * swap between this check and the call is not excluded there
 * (diesel-console(7) says so); the peer's credentials are still checked
 * after it.
 */
static int
addr_at(struct sockaddr_un *sa, int dirfd, const char *dir,
    const char *name, int *at)
{
    size_t d = strlen(dir), n = strlen(name);

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
#if defined(__FreeBSD__) && defined(AT_FDCWD)
    (void)d;
    (void)dirfd;
    if (n >= sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa->sun_path, name, n + 1);
    *at = 1;
    return 0;
#else
    struct stat a, b;

    if (d + 1 + n >= sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (fstat(dirfd, &a) != 0 || lstat(dir, &b) != 0 ||
        a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        errno = ELOOP;
        return -1;
    }
    memcpy(sa->sun_path, dir, d);
    sa->sun_path[d] = '/';
    memcpy(sa->sun_path + d + 1, name, n + 1);
    *at = 0;
    return 0;
#endif
}

int
diesel__platform_connect_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;
    int at;

    if (addr_at(&sa, dirfd, dir, name, &at) != 0)
        return -1;
#if defined(__FreeBSD__) && defined(AT_FDCWD)
    if (at)
        return connectat(dirfd, fd, (struct sockaddr *)&sa, sizeof(sa));
#endif
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
}

int
diesel__platform_bind_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;
    int at;

    if (addr_at(&sa, dirfd, dir, name, &at) != 0)
        return -1;
#if defined(__FreeBSD__) && defined(AT_FDCWD)
    if (at)
        return bindat(dirfd, fd, (struct sockaddr *)&sa, sizeof(sa));
#endif
    return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
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

/* Where swapcontext(3) leaves the registers (FreeBSD's mcontext_t, as
 * diesel__platform_uc_regs above reads it); unknown elsewhere. */
#if defined(__FreeBSD__) && defined(__x86_64__)
#define UC_REG(name, field) { name, offsetof(ucontext_t, uc_mcontext) + \
    offsetof(mcontext_t, field) }
const struct diesel__debug_regs diesel__platform_uc_layout = { 8, 0, {
    UC_REG("rbx", mc_rbx), UC_REG("rbp", mc_rbp), UC_REG("r12", mc_r12),
    UC_REG("r13", mc_r13), UC_REG("r14", mc_r14), UC_REG("r15", mc_r15),
    UC_REG("rsp", mc_rsp), UC_REG("rip", mc_rip) } };
#elif defined(__FreeBSD__) && defined(__aarch64__)
#define UC_X(name, i) { name, offsetof(ucontext_t, uc_mcontext) + \
    offsetof(mcontext_t, mc_gpregs.gp_x) + (uint64_t)(i) * 8 }
const struct diesel__debug_regs diesel__platform_uc_layout = { 13, 0, {
    UC_X("x19", 19), UC_X("x20", 20), UC_X("x21", 21), UC_X("x22", 22),
    UC_X("x23", 23), UC_X("x24", 24), UC_X("x25", 25), UC_X("x26", 26),
    UC_X("x27", 27), UC_X("x28", 28), UC_X("x29", 29),
    { "sp", offsetof(ucontext_t, uc_mcontext) +
        offsetof(mcontext_t, mc_gpregs.gp_sp) },
    { "pc", offsetof(ucontext_t, uc_mcontext) +
        offsetof(mcontext_t, mc_gpregs.gp_elr) } } };
#else
const struct diesel__debug_regs diesel__platform_uc_layout = { 0, 0, {
    { NULL, 0 } } };
#endif

int64_t
diesel__platform_thread_id(void)
{
#if defined(__FreeBSD__) || defined(__DragonFly__)
    return (int64_t)pthread_getthreadid_np();
#elif defined(__OpenBSD__)
    return (int64_t)getthrid();
#elif defined(__NetBSD__)
    return (int64_t)_lwp_self();
#elif defined(__APPLE__)
    uint64_t id;

    return pthread_threadid_np(NULL, &id) == 0 ? (int64_t)id : -1;
#else
    return -1;
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

/* ---- Other processes, for the attaching side (console_client.c) ---- */

static long
since(time_t start_sec)
{
    struct timeval now;

    gettimeofday(&now, NULL);
    return now.tv_sec >= start_sec ? (long)(now.tv_sec - start_sec) : 0;
}

#if defined(__FreeBSD__)

static int
fill(const struct kinfo_proc *kp, int signo, struct diesel__proc *p)
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
fill(const struct kinfo_proc *kp, int signo, struct diesel__proc *p)
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
fill(const KP *kp, int signo, struct diesel__proc *p)
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
diesel__platform_proc_get(pid_t pid, int signo, struct diesel__proc *p)
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
diesel__platform_proc_each(int signo,
    int (*fn)(const struct diesel__proc *, void *), void *arg)
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
        struct diesel__proc p;

        memset(&p, 0, sizeof(p));
        fill(&all[i], signo != 0 ? signo : SIGTRAP, &p);
        if (p.state == 'Z' || (signo != 0 && !p.catches))
            continue;
        if (fn(&p, arg) != 0)
            break;
    }
    free(all);
    return 0;
}

#else

int
diesel__platform_proc_get(pid_t pid, int signo, struct diesel__proc *p)
{
    (void)pid;
    (void)signo;
    (void)p;
    errno = ENOSYS;
    return -1;
}

int
diesel__platform_proc_each(int signo,
    int (*fn)(const struct diesel__proc *, void *), void *arg)
{
    (void)signo;
    (void)fn;
    (void)arg;
    errno = ENOSYS;
    return -1;
}

#endif

int
diesel__platform_pid_open(pid_t pid)
{
    /* No process handle here (FreeBSD's pdfork makes one only for a
     * child): the signal goes by pid, right after the checks. */
    (void)pid;
    errno = ENOSYS;
    return -1;
}

int
diesel__platform_signal_send(pid_t pid, int pidfd, int signo, int32_t *value)
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
diesel__platform_diagnose(pid_t pid, int signo, char *buf, size_t size)
{
    /* The descriptor count and signal masks of another process are not
     * told here: the cause is unknown from outside. */
    (void)pid;
    (void)signo;
    snprintf(buf, size, "unknown");
    return 0;
}

int32_t
diesel__platform_random31(void)
{
    uint32_t r = arc4random() & 0x7fffffff;

    return r != 0 ? (int32_t)r : 1;
}

/* ---- Modules and memory (console_module.c, console_mem.c) ---------------- */

/*
 * No process_vm_readv here: write(2) into a pipe copies from our address
 * space in the kernel, which answers EFAULT for a page that is not mapped
 * or not readable instead of faulting the process.  A page at a time, so
 * that a range crossing into a bad page reads short.
 */
ssize_t
diesel__platform_mem_read(const void *addr, void *buf, size_t len)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t done = 0;
    int p[2];

    if (pg <= 0)
        pg = 4096;
    if (pipe(p) != 0)
        return -1;
    while (done < len) {
        uintptr_t a = (uintptr_t)addr + done;
        size_t n = (size_t)pg - (size_t)(a % (size_t)pg);
        ssize_t w, r;

        if (n > len - done)
            n = len - done;
        w = write(p[1], (const void *)a, n);
        if (w <= 0)
            break;
        r = read(p[0], (char *)buf + done, (size_t)w);
        if (r != w)
            break;
        done += (size_t)w;
    }
    close(p[0]);
    close(p[1]);
    if (done == 0 && len > 0) {
        errno = EFAULT;
        return -1;
    }
    return (ssize_t)done;
}

/*
 * dlopen the checked file name of directory dirfd.  FreeBSD loads the very
 * file opened (fdlopen); elsewhere the path is opened again, which only
 * root or the service's user could have changed (the directories were
 * checked not writable by anyone else).
 */
void *
diesel__platform_dlopen_at(int dirfd, const char *name, const char *path,
    char *why, size_t size)
{
    void *h;
    const char *e;

#if defined(__FreeBSD__)
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        snprintf(why, size, "%s", strerror(errno));
        return NULL;
    }
    h = fdlopen(fd, RTLD_NOW | RTLD_LOCAL);
    close(fd);
#else
    (void)dirfd;
    (void)name;
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
#endif
    if (h == NULL) {
        e = dlerror();
        snprintf(why, size, "%s", e != NULL ? e : "dlopen failed");
    }
    return h;
}

/* No eventfd: a pipe, written and read 8 bytes at a time, as an eventfd
 * is.  pipe2 is not everywhere yet (macOS has none). */
int
diesel__platform_wakefd(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK)
            != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            int err = errno;
            close(fds[0]);
            close(fds[1]);
            errno = err;
            return -1;
        }
    }
    return 0;
}

/* FreeBSD 12+ balances with SO_REUSEPORT_LB; its plain SO_REUSEPORT, as
 * macOS's, OpenBSD's and NetBSD's, gives every connection to one socket
 * (the last bound, or the first), which would leave the other loops
 * idle: refused, so that the caller falls back on one acceptor. */
int
diesel__platform_reuseport(int fd)
{
#ifdef SO_REUSEPORT_LB
    int one = 1;

    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT_LB, &one, sizeof(one));
#else
    (void)fd;
    errno = ENOTSUP;
    return -1;
#endif
}
