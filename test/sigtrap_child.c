/*
 * sigtrap_child.c: a process that catches SIGTRAP and never answers, for
 * check_dconsole.c: dconsole must see a handler, signal it, and give up
 * after its timeout.  With a directory as its first argument it
 * advertises itself there as a service does (diesel__console_advertise:
 * a fake service, which dconsole then signals); without, it is a mere
 * process that catches SIGTRAP, which dconsole must never signal.  Prints
 * "ready" once the handler (and advertisement) is in place, then a line
 * for each signal:
 *
 *   TRAP pid=<sender> uid=<sender uid> code=<si_code> value=<sival_int>
 *
 * A mode may follow the directory:
 *
 *   block     SIGTRAP is blocked: signals stay pending and it never
 *             answers, as a service whose every thread blocks the
 *             console signal
 *   greet     a hostile app (test/hostile.h): on each signal it connects
 *             back to DIR/console-<sender>.sock as the library would, and
 *             sends a right greeting whose program name holds escapes,
 *             followed by a line that is no reply, with escapes too
 *   badgreet  the same, but the greeting does not answer the request
 *             (its nonce is off by one)
 *   serve     the greeting is followed by a session: `help` lists a
 *             command named with an escape sequence and one named zap,
 *             `quit` ends the session, anything else gets OK
 *   retry     first a greeting that does not answer the request; once
 *             dconsole has closed that connection, a right one and a
 *             session as with serve (dconsole's next accept then reuses
 *             the descriptor number it closed)
 *
 * Stops at SIGTERM or after 60 s.  It runs no loop and no console.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"
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

/* Connect back to dconsole pid from in dir and send text. */
static int
greet(const char *dir, long from, const char *text)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/console-%ld.sock", dir,
        from);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        (void)!write(fd, text, strlen(text));
    /* Held open: dconsole is the one to close. */
    return fd;
}

/* serve: answer commands on fd until quit or the end. */
static void
serve(int fd)
{
    char line[4096];
    size_t n = 0;

    while (!term) {
        ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
        char *nl;

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        line[n] = '\0';
        while ((nl = strchr(line, '\n')) != NULL) {
            const char *reply = "OK\n";

            *nl = '\0';
            if (strcmp(line, "help") == 0)
                reply = "| " T_HOSTILE_TEXT "evil  a hostile name\n"
                    "| zap  a plain one\nOK\n";
            (void)!write(fd, reply, strlen(reply));
            if (strcmp(line, "quit") == 0) {
                close(fd);
                return;
            }
            n -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, n + 1);
        }
    }
    close(fd);
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[2] : "";
    int greets = strcmp(mode, "greet") == 0 ||
        strcmp(mode, "badgreet") == 0 || strcmp(mode, "serve") == 0 ||
        strcmp(mode, "retry") == 0;
    const char *dir = argc > 1 && greets ? argv[1] : NULL;
    int bad = strcmp(mode, "badgreet") == 0;
    int retry = strcmp(mode, "retry") == 0;
    int session = strcmp(mode, "serve") == 0 || retry;
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
    if (strcmp(mode, "block") == 0) {
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
            if (dir != NULL) {
                char text[512];
                int fd;

                snprintf(text, sizeof(text), "DIESEL-CONSOLE 1 pid=%ld "
                    "program=" T_HOSTILE_TEXT " nonce=%ld\n%s",
                    (long)getpid(), (long)value + bad,
                    bad || session ? "" : T_HOSTILE_TEXT "\n");
                if (retry) {
                    char wrong[512], c;

                    snprintf(wrong, sizeof(wrong), "DIESEL-CONSOLE 1 pid=%ld "
                        "program=retry nonce=%ld\n", (long)getpid(),
                        (long)value + 1);
                    fd = greet(dir, (long)from, wrong);
                    /* Until dconsole has refused it and closed. */
                    while (fd >= 0 && read(fd, &c, 1) > 0)
                        ;
                    if (fd >= 0)
                        close(fd);
                }
                fd = greet(dir, (long)from, text);
                if (session && fd >= 0)
                    serve(fd);
            }
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
