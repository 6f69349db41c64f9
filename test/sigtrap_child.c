/*
 * sigtrap_child.c: a process that catches SIGTRAP and never answers, for
 * check_dconsole.c: dconsole must see a handler, signal it, and give up
 * after its timeout.  With a directory as its argument it advertises
 * itself there as a service does (diesel__console_advertise: a fake
 * service, which dconsole then signals); without, it is a mere process
 * that catches SIGTRAP, which dconsole must never signal.  Prints "ready"
 * once the handler (and advertisement) is in place, then a line for each
 * signal:
 *
 *   TRAP pid=<sender> uid=<sender uid> code=<si_code> value=<sival_int>
 *
 * With "block" after the directory, it blocks SIGTRAP: signals stay
 * pending and it never answers, as a service whose every thread blocks
 * the console signal.  Stops at SIGTERM or after 60 s.  It runs no loop
 * and no console.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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
main(int argc, char **argv)
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
    if (argc > 2 && strcmp(argv[2], "block") == 0) {
        sigset_t trap;

        /* Blocked: a handler that can never run. */
        sigemptyset(&trap);
        sigaddset(&trap, SIGTRAP);
        sigprocmask(SIG_BLOCK, &trap, NULL);
    }
    if (argc > 1) {
        char why[512];

        if (diesel__console_advertise(argv[1], SIGTRAP, why,
            sizeof(why)) != 0) {
            fprintf(stderr, "sigtrap_child: %s\n", why);
            return 1;
        }
    }
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
    if (argc > 1) {
        char path[1024];

        snprintf(path, sizeof(path), "%s/service-%ld", argv[1],
            (long)getpid());
        unlink(path);
    }
    return 0;
}
