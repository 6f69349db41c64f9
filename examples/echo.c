/*
 * echo: an echo server, one green thread per connection.
 *
 * SYNOPSIS
 *     echo [[HOST:]PORT | PATH]          (default 127.0.0.1:7000)
 *
 * DESCRIPTION
 *     Sends back every byte it receives, on TCP (IPv4 or IPv6: "[::1]:7000")
 *     or on a UNIX socket (an argument with a '/').  The handler is plain
 *     sequential code: receive, send, repeat; diesel parks the green thread
 *     while the socket has nothing to say.  The live console is installed:
 *     `dconsole <pid>` shows a green thread per connection.  It prints
 *     "PID <pid>, serving <address>" once it listens.  SIGINT and
 *     SIGTERM stop it cleanly.
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

static int
serve(void *arg)
{
    const char *addr = arg;
    int stop[] = { SIGINT, SIGTERM }, sig;
    struct diesel_server *s = diesel_server_listen(addr, echo, NULL, 0);

    if (s == NULL) {
        diesel_log("echo", DIESEL_LOG_ERROR, "cannot listen on %s: %s", addr,
            strerror(errno));
        return 1;
    }
    diesel_log("echo", DIESEL_LOG_INFO, "listening on %s",
        diesel_server_address(s));
    /* The PID, so that `dconsole PID` needs no pgrep; the handlers are in
     * before it is out (a wait that never blocks installs them), so that
     * whoever signals the PID finds them. */
    sig = diesel_signal_wait(stop, 2, 0);
    printf("PID %ld, serving %s\n", (long)getpid(),
        diesel_server_address(s));
    fflush(stdout);
    if (sig < 0)
        diesel_signal_wait(stop, 2, -1);
    diesel_log("echo", DIESEL_LOG_INFO, "stopping");
    diesel_server_close(s);
    return diesel_loop_stop(0);
}

int
main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: echo [[HOST:]PORT | PATH]   "
            "(default 127.0.0.1:7000)\n");
        return 2;
    }
    diesel_console_install(0);
    return diesel_loop_run(serve, argc == 2 ? argv[1] : "127.0.0.1:7000");
}
