/*
 * platform_linux.c: what only Linux can tell or do.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* Field 22 of /proc/self/stat: the start time in clock ticks since boot.
 * The command name (field 2) may hold spaces and parentheses: count from
 * its last ')'.  dconsole reads the same field of /proc/PID/stat. */
static int
stat_start(unsigned long long *start)
{
    char buf[1024], *p;
    size_t n;
    FILE *f;
    int field;

    f = fopen("/proc/self/stat", "re");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL)
        goto bad;
    for (field = 2; field < 22 && *p != '\0'; p++) {
        if (*p == ' ')
            field++;
    }
    if (field != 22 || sscanf(p, "%llu", start) != 1)
        goto bad;
    return 0;
bad:
    errno = EIO;
    return -1;
}

int
diesel__platform_start_time(uint64_t *t)
{
    unsigned long long start;

    if (stat_start(&start) != 0)
        return -1;
    *t = (uint64_t)start;
    return 0;
}

int
diesel__platform_connect_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;
    struct diesel__sline path = { "", 0 };

    /* /proc/self/fd/N is the directory that was opened, whatever its
     * path names now: no symlink swapped in there is followed, and the
     * socket path stays short however deep the directory is. */
    (void)dir;
    diesel__sline_put(&path, "/proc/self/fd/");
    diesel__sline_u64(&path, (uint64_t)dirfd);
    diesel__sline_put(&path, "/");
    diesel__sline_put(&path, name);
    if (path.n >= sizeof(sa.sun_path) || path.n >= sizeof(path.b) - 2) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path.b, path.n + 1);
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
}

/* ---- For the console's built-in commands ------------------------------ */

static int
read_link(const char *link, char *buf, size_t size)
{
    ssize_t n;

    if (size == 0) {
        errno = EINVAL;
        return -1;
    }
    n = readlink(link, buf, size - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';    /* cut, if the target was longer */
    return 0;
}

int
diesel__platform_exe_path(char *buf, size_t size)
{
    return read_link("/proc/self/exe", buf, size);
}

int
diesel__platform_fd_path(int fd, char *buf, size_t size)
{
    char link[64];

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    return read_link(link, buf, size);
}

static int
cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;

    return (x > y) - (x < y);
}

/* /proc/self/fd lists exactly the open descriptors: no sweep of the whole
 * descriptor range (which RLIMIT_NOFILE can make a million long). */
int
diesel__platform_fd_list(int **fds, size_t *n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int *a = NULL, self, err;
    size_t len = 0, cap = 0;

    if (d == NULL)
        return -1;
    self = dirfd(d);
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end != '\0' ||
            fd == self || fd < 0 || fd > 0x7fffffff)
            continue;
        if (len == cap) {
            size_t c = cap ? cap * 2 : 64;
            int *b = realloc(a, c * sizeof(*a));
            if (b == NULL) {
                err = ENOMEM;
                free(a);
                closedir(d);
                errno = err;
                return -1;
            }
            a = b;
            cap = c;
        }
        a[len++] = (int)fd;
    }
    closedir(d);
    qsort(a, len, sizeof(*a), cmp_int);
    *fds = a;
    *n = len;
    return 0;
}

double
diesel__platform_process_age(void)
{
    unsigned long long start = 0;
    double up = -1;
    long tick = sysconf(_SC_CLK_TCK);
    FILE *f;

    /* The start time in clock ticks since boot, against /proc/uptime, the
     * time since boot. */
    if (stat_start(&start) != 0)
        return -1;
    if (tick <= 0)
        goto bad;
    f = fopen("/proc/uptime", "re");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lf", &up) != 1)
        up = -1;
    fclose(f);
    if (up < 0)
        goto bad;
    up -= (double)start / (double)tick;
    return up < 0 ? 0 : up;
bad:
    errno = EIO;
    return -1;
}

int
diesel__platform_rss(int64_t *rss, int64_t *peak)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long long kb;

    *rss = *peak = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            *rss = kb * 1024;
        else if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
            *peak = kb * 1024;
    }
    fclose(f);
    return 0;
}

int64_t
diesel__platform_resident(void *addr, size_t len)
{
    unsigned char vec[256];
    size_t page = diesel__stack_page(), pages, done = 0;
    int64_t bytes = 0;

    pages = (len + page - 1) / page;
    while (done < pages) {
        size_t k = pages - done < sizeof(vec) ? pages - done : sizeof(vec);

        if (mincore((char *)addr + done * page, k * page, vec) != 0)
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
#if defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();

    m->source = "glibc mallinfo2";
    m->arena = (int64_t)mi.arena;
    m->mmapped = (int64_t)mi.hblkhd;
    m->in_use = (int64_t)(mi.uordblks + mi.hblkhd);
    m->free = (int64_t)mi.fordblks;
    m->releasable = (int64_t)mi.keepcost;
    return 0;
#else
    /* mallinfo() (int fields) wraps past 2 GiB; musl has neither. */
    m->source = "none";
    m->arena = m->mmapped = m->in_use = m->free = m->releasable = -1;
    errno = ENOSYS;
    return -1;
#endif
}

uintptr_t
diesel__platform_uc_sp(const void *uctx)
{
    const ucontext_t *uc = uctx;

    if (uc == NULL)
        return 0;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
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
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    return 0;
#endif
}

int
diesel__platform_uc_regs(const ucontext_t *uc, struct diesel__regs *r)
{
#if defined(__x86_64__)
    const greg_t *g = uc->uc_mcontext.gregs;

    r->sp = (uintptr_t)g[REG_RSP];
    r->pc = (uintptr_t)g[REG_RIP];
    r->callee[0] = (uintptr_t)g[REG_RBP];
    r->callee[1] = (uintptr_t)g[REG_RBX];
    r->callee[2] = (uintptr_t)g[REG_R12];
    r->callee[3] = (uintptr_t)g[REG_R13];
    r->callee[4] = (uintptr_t)g[REG_R14];
    r->callee[5] = (uintptr_t)g[REG_R15];
    for (int i = 6; i < DIESEL__REGS_CALLEE; i++)
        r->callee[i] = 0;
    return 0;
#elif defined(__aarch64__)
    const mcontext_t *m = &uc->uc_mcontext;
    Dl_info di;

    r->sp = (uintptr_t)m->sp;
    r->pc = (uintptr_t)m->pc;
    r->callee[0] = (uintptr_t)m->regs[29];
    for (int i = 0; i < 10; i++)
        r->callee[1 + i] = (uintptr_t)m->regs[19 + i];
    /* glibc's aarch64 swapcontext saves as pc a label inside itself
     * ("mov x30, x1; ret") and its caller's return address as x1: the
     * caller resumes there, with sp and x19-x29 as saved.  (getcontext
     * saves the return address as pc, like x86-64's both.) */
    if (dladdr((void *)r->pc, &di) != 0 && di.dli_sname != NULL &&
        strcmp(di.dli_sname, "swapcontext") == 0)
        r->pc = (uintptr_t)m->regs[1];
    return 0;
#else
    (void)uc;
    (void)r;
    errno = ENOSYS;
    return -1;
#endif
}

static timer_t prof_timer;
static int prof_armed;

int
diesel__platform_prof_start(int signo, int hz)
{
    struct sigevent sev;
    struct itimerspec its;
    long ns;
    int err;

    if (hz <= 0 || prof_armed) {
        errno = hz <= 0 ? EINVAL : EBUSY;
        return -1;
    }
    ns = 1000000000L / hz;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
#ifdef sigev_notify_thread_id
    sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
#else
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
#endif
    /* The monotonic clock, not the thread's CPU clock: a loop waiting in
     * poll uses no CPU, and the operator wants to see that time too. */
    if (timer_create(CLOCK_MONOTONIC, &sev, &prof_timer) != 0)
        return -1;
    its.it_interval.tv_sec = ns / 1000000000L;
    its.it_interval.tv_nsec = ns % 1000000000L;
    its.it_value = its.it_interval;
    if (timer_settime(prof_timer, 0, &its, NULL) != 0) {
        err = errno;
        timer_delete(prof_timer);
        errno = err;
        return -1;
    }
    prof_armed = 1;
    return 0;
}

void
diesel__platform_prof_stop(void)
{
    if (!prof_armed)
        return;
    timer_delete(prof_timer);
    prof_armed = 0;
}
