/*
 * dconsole.h: what dconsole's files share.
 *
 *   dconsole.c          options, the attach, the session
 *   dconsole_edit.c     the line editor (dconsole_edit.h)
 *   dconsole_dummy.c    `dconsole dummy`, the demo service
 *   dconsole_linux.c    what only the system can tell: a process's
 *   dconsole_bsd.c      credentials and signal mask, a socket peer's,
 *                       sigqueue; the Makefile picks one from uname
 */
#ifndef DCONSOLE_H
#define DCONSOLE_H

#include <stdint.h>
#include <sys/types.h>

/* What dconsole needs to know about a process. */
struct dc_proc {
    pid_t pid;
    uid_t uid;          /* effective uid: what its connect(2) carries */
    char state;         /* 'Z' zombie, 'T' stopped, 'R' running or
                           runnable, 'S'... '?' */
    int catches;        /* it has a handler for the signal asked about */
    int ignores;        /* it ignores that signal */
    char comm[64];      /* command name, as the system keeps it */
    long uptime;        /* seconds since it started, -1 if unknown */
    uint64_t start;     /* its start time as the system keeps it, the
                           figure its console advertisement holds (Linux:
                           clock ticks since boot; the BSDs: microseconds
                           since the epoch); 0 if unknown */
    double born;        /* when it started, seconds since the epoch; -1 */
};

/*
 * Fill *p for pid, with catches/ignores for signo.  -1 with errno ESRCH
 * when there is no such process (zombies count as gone), EACCES when the
 * system will not say.
 */
int dc_proc_get(pid_t pid, int signo, struct dc_proc *p);

/* Call fn for every process that catches signo and that we may see;
 * stop early when fn returns non-zero. */
int dc_proc_each(int signo, int (*fn)(const struct dc_proc *, void *),
    void *arg);

/* The pid and effective uid of the process at the other end of a
 * connected UNIX socket. */
int dc_peer_cred(int fd, pid_t *pid, uid_t *uid);

/*
 * A handle on pid taken before it is checked (a pidfd on Linux), so that
 * the process checked is the process signalled, or -1 where the system
 * has none (errno ENOSYS); -1 with errno ESRCH when there is no such
 * process.
 */
int dc_pid_open(pid_t pid);

/*
 * Send signo to pid carrying *value, through pidfd when it is not -1
 * (pidfd_send_signal with an SI_QUEUE siginfo; ESRCH if that process has
 * gone, even if its pid is someone else's now), else sigqueue.  Where
 * sigqueue does not exist a plain kill(2) is sent and *value is set to 0,
 * which is what the other side then sees.
 */
int dc_signal_send(pid_t pid, int pidfd, int signo, int32_t *value);

/*
 * Bind the UNIX socket fd to name inside the directory open as dirfd (dir
 * is its path, for systems that can only bind by path), so that a path
 * swapped for a symlink after the directory was checked is not followed.
 */
int dc_bind_at(int fd, int dirfd, const char *dir, const char *name);

/*
 * Why pid may not answer a console request, as far as can be seen from
 * outside: its descriptor table is full, or it blocks signo in every
 * thread.  A sentence in buf and 1, or 0 when nothing is seen (always
 * where the system does not tell).
 */
int dc_diagnose(pid_t pid, int signo, char *buf, size_t size);

/* A random positive 31-bit number. */
int32_t dc_random31(void);

/* `dconsole dummy`: runs until SIGINT or SIGTERM, returns the exit status. */
int dc_dummy_main(int signo);

#endif
