/*
 * echo_uv.c: a libuv echo server, the way libuv's own benchmarks write
 * one: uv_try_write first, uv_write for what is left.
 *
 *   echo_uv PORT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;

struct wreq {
    uv_write_t req;
    uv_buf_t buf;
};

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];

    (void)h;
    (void)suggested;
    buf->base = slab;
    buf->len = sizeof(slab);
}

static void
on_close(uv_handle_t *h)
{
    free(h);
}

static void
on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;

    (void)status;
    free(w->buf.base);
    free(w);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    uv_buf_t b;
    int w;

    if (n < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (n == 0)
        return;
    b = uv_buf_init(buf->base, (unsigned)n);
    w = uv_try_write(s, &b, 1);
    if (w < 0)
        w = 0;
    if (w < n) {
        struct wreq *r = malloc(sizeof(*r));
        r->buf = uv_buf_init(malloc((size_t)(n - w)), (unsigned)(n - w));
        memcpy(r->buf.base, buf->base + w, (size_t)(n - w));
        uv_write(&r->req, s, &r->buf, 1, on_written);
    }
}

static void
on_conn(uv_stream_t *server, int status)
{
    uv_tcp_t *c;

    if (status < 0)
        return;
    c = malloc(sizeof(*c));
    uv_tcp_init(loop, c);
    if (uv_accept(server, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)c, on_close);
    }
}

int
main(int argc, char **argv)
{
    uv_tcp_t server;
    struct sockaddr_in addr;

    if (argc != 2) {
        fprintf(stderr, "usage: echo_uv PORT\n");
        return 2;
    }
    loop = uv_default_loop();
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 1024, on_conn) != 0) {
        fprintf(stderr, "echo_uv: cannot listen\n");
        return 1;
    }
    return uv_run(loop, UV_RUN_DEFAULT);
}
