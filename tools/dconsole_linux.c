/*
 * dconsole_linux.c: processes and peers, as Linux tells them: /proc,
 * SO_PEERCRED, pidfds.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dconsole.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

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

/* From /proc/PID/stat: the start time (field 22), in clock ticks. */
static int
stat_of(pid_t pid, unsigned long long *start)
{
    char path[64], buf[1024], *p;
    unsigned long long f[23];
    FILE *f_;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f_ = fopen(path, "re");
    if (f_ == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f_);
    fclose(f_);
    buf[n] = '\0';
    /* The command name is in parentheses and may hold anything: skip to
     * the last ')'.  Field 3 (the state, a letter) follows it. */
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -1;
    p += 3;
    for (int i = 4; i <= 22; i++) {
        char *end;

        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        f[i] = strtoull(++p, &end, 10);
        if (end == p)
            f[i] = 0;   /* a negative field (priority): not one we use */
    }
    *start = f[22];
    return 0;
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
times_of(struct dc_proc *p)
{
    unsigned long long start;
    long hz = sysconf(_SC_CLK_TCK);
    long long bt;
    double up;
    FILE *f;

    if (hz <= 0 || stat_of(p->pid, &start) != 0)
        return;
    p->start = start;
    bt = boot_time();
    if (bt >= 0)
        p->born = (double)bt + (double)start / (double)hz;
    f = fopen("/proc/uptime", "re");
    if (f == NULL)
        return;
    if (fscanf(f, "%lf", &up) == 1) {
        up -= (double)start / (double)hz;
        p->uptime = up < 0 ? 0 : (long)up;
    }
    fclose(f);
}

int
dc_proc_get(pid_t pid, int signo, struct dc_proc *p)
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
dc_proc_each(int signo, int (*fn)(const struct dc_proc *, void *), void *arg)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int r = 0;

    if (d == NULL)
        return -1;
    while (r == 0 && (de = readdir(d)) != NULL) {
        struct dc_proc p;
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        if (*end != '\0' || pid <= 0)
            continue;
        if (dc_proc_get((pid_t)pid, signo, &p) != 0 || !p.catches)
            continue;
        r = fn(&p, arg);
    }
    closedir(d);
    return 0;
}

int
dc_peer_cred(int fd, pid_t *pid, uid_t *uid)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return -1;
    *pid = cr.pid;
    *uid = cr.uid;
    return 0;
}

int
dc_pid_open(pid_t pid)
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
dc_signal_send(pid_t pid, int pidfd, int signo, int32_t *value)
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

int
dc_bind_at(int fd, int dirfd, const char *dir, const char *name)
{
    struct sockaddr_un sa;
    int n;

    /* /proc/self/fd/N is the directory that was opened and checked,
     * whatever its path names now. */
    (void)dir;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s",
        dirfd, name);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
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
dc_diagnose(pid_t pid, int signo, char *buf, size_t size)
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
dc_random31(void)
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
