/*
 * echo_event.c: a libevent echo server with bufferevents, as libevent's
 * documentation writes one.
 *
 *   echo_event PORT
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

static void
on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev),
        bufferevent_get_input(bev));
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
    struct event_base *base = arg;
    struct bufferevent *bev;
    int one = 1;

    (void)l;
    (void)sa;
    (void)len;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
main(int argc, char **argv)
{
    struct event_base *base;
    struct evconnlistener *l;
    struct sockaddr_in sin;

    if (argc != 2) {
        fprintf(stderr, "usage: echo_event PORT\n");
        return 2;
    }
    base = event_base_new();
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = evconnlistener_new_bind(base, on_accept, base,
        LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 1024,
        (struct sockaddr *)&sin, sizeof(sin));
    if (l == NULL) {
        fprintf(stderr, "echo_event: cannot listen\n");
        return 1;
    }
    return event_base_dispatch(base);
}
