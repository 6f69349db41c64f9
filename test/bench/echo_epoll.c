/*
 * echo_epoll.c: the reference echo server: one thread, plain epoll, no
 * library.  Level-triggered; read what is there, write it back, and go
 * back to epoll_wait.  Unwritten bytes (the peer not reading) are dropped
 * with the connection: the load generator never lets that happen.
 *
 *   echo_epoll PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct sockaddr_in sin;
    struct epoll_event ev, evs[1024];
    int lfd, ep, one = 1;
    char buf[65536];

    if (argc != 2) {
        fprintf(stderr, "usage: echo_epoll PORT\n");
        return 2;
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(lfd, SOMAXCONN) != 0) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);

        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;

            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one,
                        sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.fd = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r > 0 && write(fd, buf, (size_t)r) == r)
                continue;
            if (r < 0 && errno == EAGAIN)
                continue;
            close(fd);
        }
    }
}
