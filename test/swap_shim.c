/*
 * swap_shim.c: an LD_PRELOAD shim for TESTPLAN 9d, the rendezvous
 * directory swapped for a symlink between its check and its use.
 *
 * With DIESEL_TEST_SWAP_DIR and DIESEL_TEST_SWAP_TO set, the first bind(2)
 * or connect(2) of a UNIX socket to a console socket ("console-" in its
 * path) first renames the directory to DIR.moved and puts a symlink to
 * TO in its place: exactly what the directory's owner could do after
 * dconsole or the service checked it.  Then the real call runs.  The
 * caller is right if its socket still lands in (or reaches) DIR.moved,
 * the directory it checked, and never TO.
 *
 * Built without sanitizers (it loads before their runtime) and never
 * linked into anything: the tests set LD_PRELOAD for one child.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int swapped;

static void
maybe_swap(const struct sockaddr *sa, socklen_t len)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    const char *dir = getenv("DIESEL_TEST_SWAP_DIR");
    const char *to = getenv("DIESEL_TEST_SWAP_TO");
    char moved[4096];

    if (swapped || dir == NULL || to == NULL || sa == NULL ||
        len <= (socklen_t)sizeof(sa_family_t) || sa->sa_family != AF_UNIX ||
        strstr(un->sun_path, "console-") == NULL)
        return;
    swapped = 1;
    snprintf(moved, sizeof(moved), "%s.moved", dir);
    if (rename(dir, moved) != 0 || symlink(to, dir) != 0)
        fprintf(stderr, "swap_shim: could not swap %s\n", dir);
}

int
bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int (*real)(int, const struct sockaddr *, socklen_t);

    maybe_swap(sa, len);
    *(void **)&real = dlsym(RTLD_NEXT, "bind");
    return real(fd, sa, len);
}

int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int (*real)(int, const struct sockaddr *, socklen_t);

    maybe_swap(sa, len);
    *(void **)&real = dlsym(RTLD_NEXT, "connect");
    return real(fd, sa, len);
}
