/*
 * echo_load.c: the echo benchmark's load generator.
 *
 *   echo_load [-c CONNS] [-d SECONDS] [-w WARMUP] [-s SIZE] HOST:PORT
 *
 * CONNS connections; each sends a SIZE-byte message (64 by default) and
 * waits for the whole echo before sending the next.  Round trips are
 * counted over SECONDS after WARMUP seconds, and printed as one line,
 * with the round trips made since the first send (warm-up included: the
 * counted bench divides a whole server run's counts by it):
 *
 *   conns=100 rtt_per_sec=123456 errors=0 rtt_total=493824
 *
 * One thread, plain epoll: the generator must not be what is measured, so
 * run it on another core than the server (the bench script pins both).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t got;          /* bytes of the current echo received */
};

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    int conns = 100, opt, ep;
    double secs = 3, warm = 1, t0, start, end;
    size_t size = 64;
    char *host, *port, msg[65536], buf[65536];
    struct sockaddr_in sin;
    struct conn *c;
    struct epoll_event *evs;
    unsigned long long rtt = 0, all = 0, errors = 0;
    struct rlimit rl;

    while ((opt = getopt(argc, argv, "c:d:w:s:")) != -1) {
        switch (opt) {
        case 'c': conns = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || conns < 1 || size < 1 || size > sizeof(msg))
        goto usage;
    host = argv[optind];
    port = strrchr(host, ':');
    if (port == NULL)
        goto usage;
    *port++ = '\0';
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        goto usage;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(msg, 'x', size);
    c = calloc((size_t)conns, sizeof(*c));
    evs = calloc((size_t)conns, sizeof(*evs));
    ep = epoll_create1(0);
    for (int i = 0; i < conns; i++) {
        struct epoll_event ev;
        int one = 1;

        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c[i].fd < 0 || connect(c[i].fd, (struct sockaddr *)&sin,
            sizeof(sin)) != 0) {
            perror("connect");
            return 1;
        }
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
        if (write(c[i].fd, msg, size) != (ssize_t)size)
            errors++;
    }
    t0 = now();
    start = t0 + warm;
    end = start + secs;
    for (;;) {
        double t = now();
        int n;

        if (t >= end)
            break;
        n = epoll_wait(ep, evs, conns, 100);
        for (int k = 0; k < n; k++) {
            struct conn *cc = &c[evs[k].data.u32];
            ssize_t r = read(cc->fd, buf, sizeof(buf));

            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, cc->fd, NULL);
                continue;
            }
            cc->got += (size_t)r;
            if (cc->got < size)
                continue;
            if (cc->got > size)
                errors++;
            cc->got = 0;
            all++;
            if (t >= start)
                rtt++;
            if (write(cc->fd, msg, size) != (ssize_t)size)
                errors++;
        }
    }
    printf("conns=%d rtt_per_sec=%.0f errors=%llu rtt_total=%llu\n", conns,
        rtt / secs, errors, all);
    return errors != 0;
usage:
    fprintf(stderr, "usage: echo_load [-c CONNS] [-d SECONDS] [-w WARMUP] "
        "[-s SIZE] HOST:PORT\n");
    return 2;
}
