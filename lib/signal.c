/*
 * signal.c: waiting for signals from a green thread.
 *
 * The handler writes the signal's number into a non-blocking self-pipe;
 * the waiting green thread parks on the pipe.  Pending signals are kept
 * as one bit each (a second SIGINT before anyone looked is the same news
 * as the first), so the pipe carries only "something arrived".
 *
 * The handler runs on the alternate signal stack (SA_ONSTACK): the signal
 * may come while a green thread has a few hundred bytes of its stack
 * left, and the kernel's frame alone takes more.  It is installed from a
 * green thread, so its loop's thread has that stack already: crash.c
 * gives one to every thread that runs a loop (diesel_loop_run fails
 * without it).  Another thread that takes the signal and has none runs
 * the handler on its own stack, which is not a green thread's.
 *
 * The handler stays while waits come and go, so that a signal between
 * two waits is kept for the next.  But once the green thread that waits
 * is cancelled, nothing may ever read it (a console `cancel` of the
 * thread that waits for SIGTERM would leave the service deaf to Ctrl-C
 * and kill): a wait that ends without a signal, other than by its
 * timeout, gives its signals back the dispositions they had before, and
 * raises again one that came meanwhile and was not taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "internal.h"

#define NSIG_MAX 65

static int pipefd[2] = { -1, -1 };
static volatile sig_atomic_t pending[NSIG_MAX];
static unsigned char installed[NSIG_MAX];
static struct sigaction before[NSIG_MAX]; /* what installing replaced */
static int waiting;

static void
on_signal(int sig)
{
    int saved = errno;
    char c = 1;

    if (sig > 0 && sig < NSIG_MAX)
        pending[sig] = 1;
    /* Full pipe: a byte is there already, which is all that matters. */
    (void)!write(pipefd[1], &c, 1);
    errno = saved;
}

static int
setup(const int *signals, int n)
{
    if (pipefd[0] < 0) {
        if (pipe(pipefd) != 0)
            return -1;
        for (int i = 0; i < 2; i++) {
            fcntl(pipefd[i], F_SETFD, FD_CLOEXEC);
            fcntl(pipefd[i], F_SETFL, O_NONBLOCK);
        }
    }
    for (int i = 0; i < n; i++) {
        struct sigaction sa;
        int sig = signals[i];

        if (installed[sig])
            continue;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, &before[sig]) != 0)
            return -1;
        installed[sig] = 1;
    }
    return 0;
}

static int
take(const int *signals, int n)
{
    for (int i = 0; i < n; i++) {
        if (pending[signals[i]]) {
            pending[signals[i]] = 0;
            return signals[i];
        }
    }
    return 0;
}

/* No one will take these signals: the dispositions from before the first
 * wait come back, and a signal that came unclaimed meets its own. */
static void
give_back(const int *signals, int n)
{
    for (int i = 0; i < n; i++) {
        int sig = signals[i];

        if (!installed[sig])
            continue;
        /* First the old disposition, then the check: a signal that
         * lands in between is either pending here or goes to it. */
        if (sigaction(sig, &before[sig], NULL) != 0)
            continue;
        installed[sig] = 0;
        if (pending[sig]) {
            pending[sig] = 0;
            raise(sig);
        }
    }
}

int
diesel_signal_wait(const int *signals, int n, int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running("diesel_signal_wait");
    int64_t deadline;
    int sig;

    if (t == NULL)
        return -1;
    if (signals == NULL || n <= 0 || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (signals[i] <= 0 || signals[i] >= NSIG_MAX ||
            signals[i] == SIGKILL || signals[i] == SIGSTOP) {
            errno = EINVAL;
            return -1;
        }
    }
    if (waiting) {
        errno = EBUSY;
        return -1;
    }
    if (setup(signals, n) != 0)
        return -1;
    deadline = diesel__deadline(timeout_ms);
    waiting = 1;
    while ((sig = take(signals, n)) == 0) {
        char buf[64];
        int64_t left = -1;

        if (deadline >= 0) {
            left = (deadline - diesel__now_ns() + 999999) / 1000000;
            if (left < 0)
                left = 0;
        }
        if (diesel_fd_wait(pipefd[0], DIESEL_READ, left) < 0) {
            int err = errno;

            waiting = 0;
            if (err != ETIMEDOUT)
                give_back(signals, n);
            errno = err;
            return -1;
        }
        while (read(pipefd[0], buf, sizeof(buf)) > 0)
            ;
    }
    waiting = 0;
    return sig;
}

/* ---- Names ------------------------------------------------------------- */

static const struct {
    const char *name;
    int signo;
} signames[] = {
    { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT },
    { "ILL", SIGILL }, { "TRAP", SIGTRAP }, { "ABRT", SIGABRT },
    { "BUS", SIGBUS }, { "FPE", SIGFPE }, { "KILL", SIGKILL },
    { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
    { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
    { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
    { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
    { "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
    { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
    { "SYS", SIGSYS },
};

const char *
diesel_signal_name(int signo, char *buf, size_t size)
{
    for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++) {
        if (signames[i].signo == signo) {
            snprintf(buf, size, "SIG%s", signames[i].name);
            return buf;
        }
    }
    snprintf(buf, size, "signal %d", signo);
    return buf;
}

int
diesel_signal_parse(const char *s)
{
    char *end;
    long n;

    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++) {
        if (strcasecmp(signames[i].name, s) == 0)
            return signames[i].signo;
    }
    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < 1 || n >= NSIG) {
        errno = EINVAL;
        return -1;
    }
    return (int)n;
}
