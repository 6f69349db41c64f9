/*
 * echo: an echo server, one green thread per connection.
 *
 * SYNOPSIS
 *     echo [-t N] [[HOST:]PORT | PATH]   (default 127.0.0.1:7000, 1 loop)
 *
 * DESCRIPTION
 *     Sends back every byte it receives, on TCP (IPv4 or IPv6: "[::1]:7000")
 *     or on a UNIX socket (an argument with a '/').  The handler is plain
 *     sequential code: receive, send, repeat; diesel parks the green thread
 *     while the socket has nothing to say.  The live console is installed:
 *     `dconsole <pid>` shows a green thread per connection.  It prints
 *     "PID <pid>, serving <address>" once it listens.  SIGINT and
 *     SIGTERM stop it cleanly.  -t N runs N loops on N OS threads, each
 *     accepting on its own socket on the same port (cores.h); the console
 *     sees every loop (the others are core-2, core-3...), and each loop
 *     logs how many connections it served when it stops.
 *
 * EXAMPLE
 *     $ examples/echo 127.0.0.1:7000 &
 *     $ echo hello | nc -q1 127.0.0.1 7000
 *     hello
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <diesel.h>

#include "cores.h"

/* What arrived is sent back from the connection's own buffer, with no
 * copy, and taken off the stream once it has gone. */
static int
echo(struct diesel_conn *c, void *arg)
{
    const void *data;
    ssize_t n;

    (void)arg;
    while ((n = diesel_conn_peek(c, &data, -1)) > 0) {
        if (diesel_conn_send(c, data, (size_t)n, -1) != 0 ||
            diesel_conn_consume(c, (size_t)n) != 0)
            break;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int loops = 1;

    if (cores_option(&argc, &argv, &loops) < 0 || argc > 2 ||
        (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: echo [-t N] [[HOST:]PORT | PATH]   "
            "(default 127.0.0.1:7000, 1 loop)\n");
        return 2;
    }
    diesel_console_install(0);
    return cores_run("echo", argc == 2 ? argv[1] : "127.0.0.1:7000", echo,
        loops);
}
