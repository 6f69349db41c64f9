/*
 * platform_linux.c: what only Linux can tell or do.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

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

/* Field 22 of /proc/PID/stat (pid 0: self): the start time in clock
 * ticks since boot.  The command name (field 2) may hold spaces and
 * parentheses: count from its last ')'.  The advertisement holds it for
 * this process, and the attaching side reads it for another. */
static int
stat_start(pid_t pid, unsigned long long *start)
{
    char path[64], buf[1024], *p;
    size_t n;
    FILE *f;
    int field;

    if (pid == 0)
        snprintf(path, sizeof(path), "/proc/self/stat");
    else
        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
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

    if (stat_start(0, &start) != 0)
        return -1;
    *t = (uint64_t)start;
    return 0;
}

/* The address of name inside the directory open as dirfd:
 * /proc/self/fd/N is the directory that was opened, whatever its path
 * names now, so no symlink swapped in there is followed, and the socket
 * path stays short however deep the directory is.  Async-signal-safe. */
static int
addr_at(struct sockaddr_un *sa, int dirfd, const char *name)
{
    struct diesel__sline path = { "", 0 };

    diesel__sline_put(&path, "/proc/self/fd/");
    diesel__sline_u64(&path, (uint64_t)dirfd);
    diesel__sline_put(&path, "/");
    diesel__sline_put(&path, name);
    if (path.n >= sizeof(sa->sun_path) || path.n >= sizeof(path.b) - 2) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path.b, path.n + 1);
    return 0;
}

int
diesel__platform_connect_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;

    (void)dir;
    if (addr_at(&sa, dirfd, name) != 0)
        return -1;
    return connect(fd, (struct sockaddr *)&sa, sizeof(sa));
}

int
diesel__platform_bind_at(int fd, int dirfd, const char *dir,
    const char *name)
{
    struct sockaddr_un sa;

    (void)dir;
    if (addr_at(&sa, dirfd, name) != 0)
        return -1;
    return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
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

/* Seconds from a start time in clock ticks since boot to now, against
 * /proc/uptime, the time since boot; -1 if unknown. */
static double
age_of(unsigned long long start)
{
    double up = -1;
    long tick = sysconf(_SC_CLK_TCK);
    FILE *f;

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

double
diesel__platform_process_age(void)
{
    unsigned long long start = 0;

    if (stat_start(0, &start) != 0)
        return -1;
    return age_of(start);
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

/*
 * One mallinfo2() at a time: with several loops, `mem` runs on each at
 * once, and where glibc's malloc is not the one in use (ASan's replaces
 * it) the first call sets glibc's arenas up, which is not safe to race:
 * another caller walked the arena list half made and crashed.
 */
static pthread_mutex_t malloc_info_lock = PTHREAD_MUTEX_INITIALIZER;

int
diesel__platform_malloc_info(struct diesel__malloc_info *m)
{
#if defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi;

    pthread_mutex_lock(&malloc_info_lock);
    mi = mallinfo2();
    pthread_mutex_unlock(&malloc_info_lock);

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

/* Where glibc's swapcontext(3) leaves the registers (see
 * diesel__platform_uc_regs above for what each means). */
#if defined(__x86_64__)
#define UC_GREG(name, reg) { name, offsetof(ucontext_t, uc_mcontext.gregs) + \
    (uint64_t)(reg) * sizeof(greg_t) }
const struct diesel__debug_regs diesel__platform_uc_layout = { 8, 0, {
    UC_GREG("rbx", REG_RBX), UC_GREG("rbp", REG_RBP),
    UC_GREG("r12", REG_R12), UC_GREG("r13", REG_R13),
    UC_GREG("r14", REG_R14), UC_GREG("r15", REG_R15),
    UC_GREG("rsp", REG_RSP), UC_GREG("rip", REG_RIP) } };
#elif defined(__aarch64__)
/* x1 too: a pc inside swapcontext itself resumes at x1 (above). */
#define UC_X(name, i) { name, offsetof(ucontext_t, uc_mcontext.regs) + \
    (uint64_t)(i) * sizeof(uint64_t) }
const struct diesel__debug_regs diesel__platform_uc_layout = { 15, 0, {
    UC_X("x19", 19), UC_X("x20", 20), UC_X("x21", 21), UC_X("x22", 22),
    UC_X("x23", 23), UC_X("x24", 24), UC_X("x25", 25), UC_X("x26", 26),
    UC_X("x27", 27), UC_X("x28", 28), UC_X("x29", 29), UC_X("x30", 30),
    UC_X("x1", 1),
    { "sp", offsetof(ucontext_t, uc_mcontext.sp) },
    { "pc", offsetof(ucontext_t, uc_mcontext.pc) } } };
#else
const struct diesel__debug_regs diesel__platform_uc_layout = { 0, 0, {
    { NULL, 0 } } };
#endif

int64_t
diesel__platform_thread_id(void)
{
    return (int64_t)syscall(SYS_gettid);
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

/* ---- Other processes, for the attaching side (console_client.c) ---- */

/* Bit signo of a /proc mask ("SigCgt:\t0000000000004002"). */
static int
mask_has(const char *hex, int signo)
{
    size_t len = strlen(hex);
    size_t digit = (size_t)(signo - 1) / 4;
    int v;
    char c;

    if (signo < 1 || digit >= len)
        return 0;
    c = hex[len - 1 - digit];
    if (!isxdigit((unsigned char)c))
        return 0;
    v = isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
    return (v >> ((signo - 1) % 4)) & 1;
}

/* Seconds since the epoch at boot, from /proc/stat. */
static long long
boot_time(void)
{
    char line[256];
    long long bt = -1;
    FILE *f = fopen("/proc/stat", "re");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    }
    fclose(f);
    return bt;
}

/* start, uptime and born for p. */
static void
times_of(struct diesel__proc *p)
{
    unsigned long long start;
    long hz = sysconf(_SC_CLK_TCK);
    long long bt;
    double up;

    if (hz <= 0 || stat_start(p->pid, &start) != 0)
        return;
    p->start = start;
    bt = boot_time();
    if (bt >= 0)
        p->born = (double)bt + (double)start / (double)hz;
    up = age_of(start);
    if (up >= 0)
        p->uptime = (long)up;
}

int
diesel__platform_proc_get(pid_t pid, int signo, struct diesel__proc *p)
{
    char path[64], line[512];
    int have_uid = 0;
    FILE *f;

    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->state = '?';
    p->uptime = -1;
    p->born = -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            errno = ESRCH;
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *v = strchr(line, ':');
        unsigned long r, e;

        if (v == NULL)
            continue;
        *v++ = '\0';
        v += strspn(v, " \t");
        v[strcspn(v, "\n")] = '\0';
        if (strcmp(line, "Name") == 0)
            snprintf(p->comm, sizeof(p->comm), "%s", v);
        else if (strcmp(line, "State") == 0)
            p->state = v[0];
        else if (strcmp(line, "Uid") == 0 &&
            sscanf(v, "%lu %lu", &r, &e) == 2) {
            p->uid = (uid_t)e;
            have_uid = 1;
        } else if (strcmp(line, "SigCgt") == 0)
            p->catches = mask_has(v, signo);
        else if (strcmp(line, "SigIgn") == 0)
            p->ignores = mask_has(v, signo);
    }
    fclose(f);
    if (p->state == 'Z' || p->state == 'X') {
        errno = ESRCH;
        return -1;
    }
    if (!have_uid) {
        errno = EACCES;
        return -1;
    }
    times_of(p);
    return 0;
}

int
diesel__platform_proc_each(int signo,
    int (*fn)(const struct diesel__proc *, void *), void *arg)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int r = 0;

    if (d == NULL)
        return -1;
    while (r == 0 && (de = readdir(d)) != NULL) {
        struct diesel__proc p;
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 0)
            continue;
        if (diesel__platform_proc_get((pid_t)pid, signo != 0 ? signo :
            SIGTRAP, &p) != 0 || (signo != 0 && !p.catches))
            continue;
        r = fn(&p, arg);
    }
    closedir(d);
    return 0;
}

int
diesel__platform_pid_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd;

#ifdef RUNNING_ON_VALGRIND
    /* valgrind before 3.20 knows no pidfd_open, and says so on our
     * standard error: under it, signal by pid. */
    if (RUNNING_ON_VALGRIND) {
        errno = ENOSYS;
        return -1;
    }
#endif
    fd = (int)syscall(SYS_pidfd_open, pid, 0);

    if (fd >= 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    if (errno == ESRCH)
        return -1;
    /* Linux before 5.3, or a seccomp filter: no handle, signal by pid. */
#endif
    errno = ENOSYS;
    return -1;
}

int
diesel__platform_signal_send(pid_t pid, int pidfd, int signo, int32_t *value)
{
    union sigval v;

    v.sival_int = *value;
#ifdef SYS_pidfd_send_signal
    if (pidfd >= 0) {
        siginfo_t si;

        /* What sigqueue(3) would have sent: the kernel takes si_pid,
         * si_uid and si_value as given, for si_code SI_QUEUE. */
        memset(&si, 0, sizeof(si));
        si.si_signo = signo;
        si.si_code = SI_QUEUE;
        si.si_pid = getpid();
        si.si_uid = getuid();
        si.si_value = v;
        if (syscall(SYS_pidfd_send_signal, pidfd, signo, &si, 0) == 0)
            return 0;
        /* ESRCH: the process checked has gone, and the pid may be
         * someone else's now: never fall back to it. */
        if (errno != ENOSYS && errno != EINVAL)
            return -1;
    }
#else
    (void)pidfd;
#endif
    return sigqueue(pid, signo, v);
}

/* "Max open files" soft limit from /proc/PID/limits; -1 if unknown. */
static long
fd_limit(pid_t pid)
{
    char path[64], line[256];
    long soft = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/limits", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Max open files", 14) == 0) {
            if (sscanf(line + 14, "%ld", &soft) != 1)
                soft = -1;  /* "unlimited" */
            break;
        }
    }
    fclose(f);
    return soft;
}

/* Entries in /proc/PID/<sub>; -1 if it cannot be read. */
static long
count_dir(pid_t pid, const char *sub)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, sub);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

/* Every thread of pid blocks signo (SigBlk of /proc/PID/task/T/status). */
static int
blocked_everywhere(pid_t pid, int signo)
{
    char path[128], line[256];
    struct dirent *e;
    int threads = 0, blocking = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/status",
            (long)pid, e->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;
        threads++;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "SigBlk:", 7) == 0) {
                char *v = line + 7;

                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                blocking += mask_has(v, signo);
                break;
            }
        }
        fclose(f);
    }
    closedir(d);
    return threads > 0 && blocking == threads;
}

int
diesel__platform_diagnose(pid_t pid, int signo, char *buf, size_t size)
{
    long open_fds = count_dir(pid, "fd"), limit = fd_limit(pid);

    /* Answering takes one descriptor (the connection back to us): with
     * the table full, the app can only log EMFILE. */
    if (open_fds >= 0 && limit > 0 && open_fds >= limit) {
        snprintf(buf, size, "it has %ld file descriptors open, its limit "
            "(ulimit -n %ld): it cannot open the connection back (its log "
            "says \"Too many open files\")", open_fds, limit);
        return 1;
    }
    if (blocked_everywhere(pid, signo)) {
        snprintf(buf, size, "every thread of it blocks the console signal, "
            "so its handler cannot run");
        return 1;
    }
    return 0;
}

int32_t
diesel__platform_random31(void)
{
    uint32_t r = 0;
    ssize_t n;

    while ((n = getrandom(&r, sizeof(r), 0)) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(r)) {
        /* Kernels before 3.17: the device. */
        FILE *f = fopen("/dev/urandom", "re");

        if (f == NULL || fread(&r, sizeof(r), 1, f) != 1)
            r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
        if (f != NULL)
            fclose(f);
    }
    r &= 0x7fffffff;
    return r != 0 ? (int32_t)r : 1;
}

/* ---- Modules and memory (console_module.c, console_mem.c) ---------------- */

/*
 * The kernel copies from our own address space and says EFAULT where a
 * page is not mapped or not readable, rather than the process faulting;
 * a read that crosses into such a page stops short.
 */
ssize_t
diesel__platform_mem_read(const void *addr, void *buf, size_t len)
{
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };

    return (ssize_t)syscall(SYS_process_vm_readv, (long)getpid(), &local,
        1L, &remote, 1L, 0L);
}

/*
 * dlopen the file name of the directory dirfd, which the caller checked:
 * through /proc/self/fd, so that the directory opened is the one checked
 * whatever happened to the path's components since.  The link map then
 * names the module /proc/self/fd/N/NAME, which stays valid (for the
 * backtraces' symbol reader) while the caller keeps dirfd open.
 */
void *
diesel__platform_dlopen_at(int dirfd, const char *name, const char *path,
    char *why, size_t size)
{
    char p[64 + 256];
    void *h;
    const char *e;

    if ((size_t)snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dirfd,
        name) >= sizeof(p)) {
        snprintf(why, size, "file name too long");
        return NULL;
    }
    h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *at;

        e = dlerror();
        if (e == NULL)
            e = "dlopen failed";
        /* The loader names the file by the name it was given: say the
         * path the operator typed instead of /proc/self/fd/N/NAME. */
        at = strstr(e, p);
        if (at != NULL && path != NULL)
            snprintf(why, size, "%.*s%s%s", (int)(at - e), e, path,
                at + strlen(p));
        else
            snprintf(why, size, "%s", e);
    }
    return h;
}

/* An eventfd: one descriptor, whose counter a write adds to and a read
 * empties, so that any number of wakes costs one read. */
int
diesel__platform_wakefd(int fds[2])
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (fd < 0)
        return -1;
    fds[0] = fds[1] = fd;
    return 0;
}

/* Linux spreads connections between SO_REUSEPORT sockets (by a hash of
 * the peer's address and port) since 3.9. */
int
diesel__platform_reuseport(int fd)
{
    int one = 1;

    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
}
