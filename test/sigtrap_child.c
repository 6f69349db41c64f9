/*
 * sigtrap_child.c: a process that catches SIGTRAP and never answers, for
 * check_dconsole.c: dconsole must see a handler, signal it, and give up
 * after its timeout.  Prints "ready" once the handler is in place, then a
 * line for each signal:
 *
 *   TRAP pid=<sender> uid=<sender uid> code=<si_code> value=<sival_int>
 *
 * Stops at SIGTERM or after 60 s.  It does not use libdiesel.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got, code, value, from, from_uid, term;

static void
on_trap(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    code = si->si_code;
    value = si->si_value.sival_int;
    from = si->si_pid;
    from_uid = (sig_atomic_t)si->si_uid;
    got++;
}

static void
on_term(int sig)
{
    (void)sig;
    term = 1;
}

int
main(void)
{
    struct sigaction sa;
    int seen = 0;
    time_t end = time(NULL) + 60;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTRAP, &sa, NULL);
    sa.sa_handler = on_term;
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    while (!term && time(NULL) < end) {
        usleep(10000);
        if (got != seen) {
            seen = got;
            printf("TRAP pid=%ld uid=%ld code=%ld value=%ld\n", (long)from,
                (long)from_uid, (long)code, (long)value);
            fflush(stdout);
        }
    }
    return 0;
}
