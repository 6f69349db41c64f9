/*
 * dconsole_linux.c: processes and peers, as Linux tells them: /proc, and
 * SO_PEERCRED.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dconsole.h"

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

/* Seconds since boot when pid started, from field 22 of /proc/PID/stat. */
static long
uptime_of(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long start;
    double up;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n;
    int field;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name is in parentheses and may hold anything: skip to
     * the last ')'.  Field 3 follows it. */
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    for (field = 3; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p, " %llu", &start) != 1 || hz <= 0)
        return -1;
    f = fopen("/proc/uptime", "re");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lf", &up) != 1) {
        fclose(f);
        return -1;
    }
    fclose(f);
    up -= (double)start / (double)hz;
    return up < 0 ? 0 : (long)up;
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
    p->uptime = uptime_of(pid);
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
dc_signal_send(pid_t pid, int signo, int32_t *value)
{
    union sigval v;

    v.sival_int = *value;
    return sigqueue(pid, signo, v);
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
