/*
 * cores.h: `-t N` for the example servers: N loops on N OS threads, each
 * running the same connection handler, shared by echo, httphello and
 * redisping (included once by each; everything here is static).
 *
 * Every loop accepts on a socket of its own on the same port
 * (DIESEL_SERVER_REUSEPORT), and the kernel spreads the connections.
 * Where it would not spread them (diesel_server_listen_flags fails with
 * ENOTSUP: macOS, OpenBSD, NetBSD; or a UNIX socket, EINVAL), the main
 * loop accepts alone and hands every connection but its own share to the
 * other loops, round robin, through a channel per loop.  The same channel
 * stops a loop: the main loop, which alone receives SIGINT and SIGTERM
 * (the other threads block them), closes it.  The console's signal is
 * not blocked: an attach that lands on another loop's thread is handed
 * to the console's loop, and a stuck core-K can be asked for its report
 * (its own thread's handler writes it).
 *
 *   main thread: loop 0        thread k: loop k
 *   listen (REUSEPORT) ------> listen on the port loop 0 got
 *   <------------------------- "ready" (the ready channel)
 *   "listening on ADDR"
 *   SIGTERM: close its server,
 *   close channel k ---------> EPIPE: close its server, stop
 *   join thread k              log "loop K of N: C connections"
 *
 * The console is installed on the main loop, and sees every loop: its
 * per-loop commands (tasks, stats...) answer one section per loop, each
 * loop's green threads as LOOP:ID, and `loops` lists them.  Loop 0 keeps
 * the default name, main; loop k is named core-K (K = k + 1, as in the
 * log's "loop K of N").
 */
#ifndef EXAMPLES_CORES_H
#define EXAMPLES_CORES_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <diesel.h>

#define CORES_MAX 64

/* Each loop's on cache lines of its own: its thread counts its
 * connections here, and a neighbour's count would otherwise share the
 * line (false sharing between loops on two cores). */
struct cores_loop {
    _Alignas(64) int index;     /* 0 for the main loop */
    pthread_t th;               /* its thread (not for loop 0) */
    struct diesel_chan *ch;     /* connections handed to it; closed: stop */
    long conns;                 /* connections it served (its thread's) */
    int status;                 /* what its diesel_loop_run returned */
};

static struct {
    const char *name;           /* the logger: "echo" */
    const char *addr;           /* as given */
    diesel_conn_fn handler;
    int n;                      /* loops */
    int shared;                 /* each loop has a SO_REUSEPORT socket */
    char bound[128];            /* where loop 0 listens (its port) */
    struct diesel_chan *ready;  /* each other loop: 1 listening, 2 not */
    unsigned next;              /* round robin, loop 0's only */
    struct cores_loop loop[CORES_MAX];
} cores;

static __thread struct cores_loop *cores_self;

/* "-t N" at (*argv)[1], taken off: 1, 0 if it is not there, -1 if N is
 * not 1 to CORES_MAX. */
static int
cores_option(int *argc, char ***argv, int *loops)
{
    char *end;
    long n;

    if (*argc < 3 || strcmp((*argv)[1], "-t") != 0)
        return 0;
    n = strtol((*argv)[2], &end, 10);
    if (*end != '\0' || end == (*argv)[2] || n < 1 || n > CORES_MAX)
        return -1;
    *loops = (int)n;
    *argc -= 2;
    *argv += 2;
    return 1;
}

/* Every connection, on whichever loop: counted, then served. */
static int
cores_conn(struct diesel_conn *c, void *arg)
{
    cores_self->conns++;
    return cores.handler(c, arg);
}

/* The fallback's acceptor, on loop 0: one connection in n stays here,
 * the others go to loop k as a descriptor of their own (the server closes
 * this one when we return). */
static int
cores_hand(struct diesel_conn *c, void *arg)
{
    int k = (int)(cores.next++ % (unsigned)cores.n), fd;

    if (k == 0 || (fd = dup(diesel_conn_fd(c))) < 0)
        return cores_conn(c, arg);
    if (diesel_chan_send(cores.loop[k].ch, (void *)(intptr_t)fd, -1) != 0)
        close(fd);
    return 0;
}

/* A connection handed over, in a green thread of the receiving loop. */
static int
cores_adopt(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct diesel_conn *c = diesel_conn_create(fd);

    if (c == NULL) {
        close(fd);
        return 1;
    }
    diesel_task_rename("conn handed over");
    cores_conn(c, NULL);
    diesel_conn_close(c);
    return 0;
}

/* Loop k's first green thread: listen (or take handed connections) until
 * its channel is closed. */
static int
cores_worker(void *arg)
{
    struct cores_loop *l = arg;
    struct diesel_server *s = NULL;
    char name[32];
    void *item;

    cores_self = l;
    snprintf(name, sizeof(name), "core-%d", l->index + 1);
    if (diesel_loop_name(name) != 0)
        diesel_log(cores.name, DIESEL_LOG_ERROR, "loop %d: cannot be named "
            "%s: %s", l->index + 1, name, strerror(errno));
    if (cores.shared) {
        s = diesel_server_listen_flags(cores.bound, cores_conn, NULL, 0,
            DIESEL_SERVER_REUSEPORT);
        if (s == NULL)
            diesel_log(cores.name, DIESEL_LOG_ERROR, "loop %d: cannot "
                "listen on %s: %s", l->index + 1, cores.bound,
                strerror(errno));
    }
    diesel_chan_send(cores.ready, (void *)(intptr_t)(s != NULL ||
        !cores.shared ? 1 : 2), -1);
    while (diesel_chan_recv(l->ch, &item, -1) == 0) {
        if (diesel_task_spawn("conn", cores_adopt, item, 0) < 0)
            close((int)(intptr_t)item);
    }
    if (s != NULL)
        diesel_server_close(s);
    return diesel_loop_stop(0);
}

static void *
cores_thread(void *arg)
{
    struct cores_loop *l = arg;

    l->status = diesel_loop_run(cores_worker, l);
    diesel_log(cores.name, DIESEL_LOG_INFO, "loop %d of %d: %ld connection%s",
        l->index + 1, cores.n, l->conns, l->conns == 1 ? "" : "s");
    return NULL;
}

/* Start loops 1..n-1, their threads blocking the signals loop 0 waits
 * for; wait until each listens.  0, or -1 when one could not (then every
 * thread started is stopped and joined). */
static int
cores_start(void)
{
    sigset_t block, old;
    int started = 1, ok = 1;
    void *item;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (; started < cores.n; started++) {
        struct cores_loop *l = &cores.loop[started];

        if (pthread_create(&l->th, NULL, cores_thread, l) != 0) {
            diesel_log(cores.name, DIESEL_LOG_ERROR, "cannot start loop %d: "
                "%s", started + 1, strerror(errno));
            ok = 0;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (int i = 1; i < started; i++) {
        if (diesel_chan_recv(cores.ready, &item, -1) != 0 ||
            (intptr_t)item != 1)
            ok = 0;
    }
    if (ok)
        return 0;
    for (int i = 1; i < started; i++)
        diesel_chan_close(cores.loop[i].ch);
    for (int i = 1; i < started; i++)
        pthread_join(cores.loop[i].th, NULL);
    cores.n = 1;
    return -1;
}

/* Loop 0's first green thread: listen, start the others, serve until
 * SIGINT or SIGTERM, stop them. */
static int
cores_main(void *arg)
{
    int stop[] = { SIGINT, SIGTERM }, sig;
    int flags = cores.n > 1 ? DIESEL_SERVER_REUSEPORT : 0;
    struct diesel_server *s;

    (void)arg;
    cores_self = &cores.loop[0];
    cores.shared = flags != 0;
    s = diesel_server_listen_flags(cores.addr, cores_conn, NULL, 0, flags);
    if (s == NULL && flags && (errno == ENOTSUP || errno == EINVAL)) {
        diesel_log(cores.name, DIESEL_LOG_INFO, "%s cannot be shared by "
            "%d loops (%s): one acceptor hands connections to the others",
            cores.addr, cores.n, strerror(errno));
        cores.shared = 0;
        s = diesel_server_listen(cores.addr, cores_hand, NULL, 0);
    }
    if (s == NULL) {
        diesel_log(cores.name, DIESEL_LOG_ERROR, "cannot listen on %s: %s",
            cores.addr, strerror(errno));
        cores.n = 1;
        return 1;
    }
    snprintf(cores.bound, sizeof(cores.bound), "%s",
        diesel_server_address(s));
    if (cores.n > 1 && cores_start() != 0) {
        diesel_server_close(s);
        return 1;
    }
    if (cores.n > 1)
        diesel_log(cores.name, DIESEL_LOG_INFO, "%d loops on %d threads, %s",
            cores.n, cores.n, cores.shared ? "each accepting on its own "
            "socket" : "one acceptor");
    diesel_log(cores.name, DIESEL_LOG_INFO, "listening on %s",
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
    diesel_log(cores.name, DIESEL_LOG_INFO, "stopping");
    diesel_server_close(s);
    for (int i = 1; i < cores.n; i++)
        diesel_chan_close(cores.loop[i].ch);
    return diesel_loop_stop(0);
}

/* Run the server on loops loops (the console, if wanted, is installed
 * before); the exit status for main(). */
static int
cores_run(const char *name, const char *addr, diesel_conn_fn handler,
    int loops)
{
    int status;

    cores.name = name;
    cores.addr = addr;
    cores.handler = handler;
    cores.n = loops;
    for (int i = 0; i < loops; i++) {
        cores.loop[i].index = i;
        if (i > 0 && (cores.loop[i].ch = diesel_chan_create("conns",
            64)) == NULL) {
            perror(name);
            return 1;
        }
    }
    if (loops > 1 && (cores.ready = diesel_chan_create("ready",
        CORES_MAX)) == NULL) {
        perror(name);
        return 1;
    }
    status = diesel_loop_run(cores_main, NULL);
    if (loops > 1)
        diesel_log(name, DIESEL_LOG_INFO, "loop 1 of %d: %ld connection%s",
            loops, cores.loop[0].conns, cores.loop[0].conns == 1 ? "" : "s");
    for (int i = 1; i < cores.n; i++) {
        pthread_join(cores.loop[i].th, NULL);
        if (cores.loop[i].status != 0)
            status = cores.loop[i].status;
    }
    for (int i = 1; i < loops; i++)
        diesel_chan_destroy(cores.loop[i].ch);
    diesel_chan_destroy(cores.ready);
    return status;
}

#endif
