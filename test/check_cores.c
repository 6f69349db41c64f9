/*
 * check_cores.c: many loops in one process accepting on one port
 * (DIESEL_SERVER_REUSEPORT), each on an OS thread of its own, and the
 * option's refusals.  The examples' -t N is driven by real clients in
 * check_examples.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"

#define LOOPS 2
#define CONNS 64

static atomic_int port;                 /* loop 0's, once it listens */
static atomic_int listening;            /* loops listening */
static atomic_long served[LOOPS];       /* connections per loop */
static struct diesel_chan *stop_ch[LOOPS];

/* Send back one byte, counted for the loop that accepted. */
static int
one_byte(struct diesel_conn *c, void *arg)
{
    char b;

    atomic_fetch_add(&served[(intptr_t)arg], 1);
    if (diesel_conn_recv(c, &b, 1, -1) == 1)
        diesel_conn_send(c, &b, 1, -1);
    return 0;
}

static int
listener(void *arg)
{
    intptr_t i = (intptr_t)arg;
    struct diesel_server *s;
    char addr[64];
    void *item;

    if (i > 0) {
        while (atomic_load(&port) == 0)
            diesel_sleep(1);
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", atomic_load(&port));
    s = diesel_server_listen_flags(addr, one_byte, (void *)i, 0,
        DIESEL_SERVER_REUSEPORT);
    ck_assert_msg(s != NULL, "loop %d: %s", (int)i, strerror(errno));
    if (i == 0)
        atomic_store(&port, diesel_server_port(s));
    atomic_fetch_add(&listening, 1);
    /* Until the test closes our channel. */
    ck_assert_int_eq(diesel_chan_recv(stop_ch[i], &item, -1), -1);
    ck_assert_int_eq(errno, EPIPE);
    diesel_server_close(s);
    return diesel_loop_stop(0);
}

static void *
listener_thread(void *arg)
{
    return (void *)(intptr_t)diesel_loop_run(listener, arg);
}

START_TEST(reuseport_spreads_connections_over_two_loops_on_one_port)
{
    pthread_t th[LOOPS];
    struct sockaddr_in sin;
    void *status;

    for (intptr_t i = 0; i < LOOPS; i++) {
        stop_ch[i] = diesel_chan_create("stop", 1);
        ck_assert_ptr_nonnull(stop_ch[i]);
        ck_assert_int_eq(pthread_create(&th[i], NULL, listener_thread,
            (void *)i), 0);
    }
    while (atomic_load(&listening) < LOOPS)
        usleep(1000);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)atomic_load(&port));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int n = 0; n < CONNS; n++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        char b = 'x';

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
            0);
        ck_assert_int_eq(write(fd, &b, 1), 1);
        b = 0;
        ck_assert_int_eq(read(fd, &b, 1), 1);
        ck_assert_int_eq(b, 'x');
        close(fd);
    }
    for (int i = 0; i < LOOPS; i++)
        ck_assert_int_eq(diesel_chan_close(stop_ch[i]), 0);
    for (int i = 0; i < LOOPS; i++) {
        ck_assert_int_eq(pthread_join(th[i], &status), 0);
        ck_assert_int_eq((intptr_t)status, 0);
        diesel_chan_destroy(stop_ch[i]);
    }
    /* Every connection served, by both loops (all 64 on one socket of
     * two would be a 2^-63 chance of the kernel's hash). */
    ck_assert_int_eq(atomic_load(&served[0]) + atomic_load(&served[1]),
        CONNS);
    ck_assert_int_gt(atomic_load(&served[0]), 0);
    ck_assert_int_gt(atomic_load(&served[1]), 0);
}
END_TEST

static int
refusals(void *arg)
{
    struct diesel_server *a, *b;
    char addr[64];

    (void)arg;
    /* Without the option a second socket cannot have the port. */
    a = diesel_server_listen("127.0.0.1:0", one_byte, NULL, 0);
    ck_assert_ptr_nonnull(a);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", diesel_server_port(a));
    b = diesel_server_listen_flags(addr, one_byte, NULL, 0,
        DIESEL_SERVER_REUSEPORT);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert_int_eq(diesel_server_close(a), 0);
    /* A flag it does not know. */
    ck_assert_ptr_null(diesel_server_listen_flags("127.0.0.1:0", one_byte,
        NULL, 0, 2));
    ck_assert_int_eq(errno, EINVAL);
    /* A UNIX socket has no port to share. */
    ck_assert_ptr_null(diesel_server_listen_flags("unix:/tmp/diesel-rp.sock",
        one_byte, NULL, 0, DIESEL_SERVER_REUSEPORT));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_ne(access("/tmp/diesel-rp.sock", F_OK), 0);
    /* As a system that would not spread connections refuses it. */
    setenv("DIESEL_REUSEPORT", "0", 1);
    ck_assert_ptr_null(diesel_server_listen_flags("127.0.0.1:0", one_byte,
        NULL, 0, DIESEL_SERVER_REUSEPORT));
    ck_assert_int_eq(errno, ENOTSUP);
    /* Only the option: a plain listen is not affected. */
    a = diesel_server_listen_flags("127.0.0.1:0", one_byte, NULL, 0, 0);
    ck_assert_ptr_nonnull(a);
    diesel_server_close(a);
    unsetenv("DIESEL_REUSEPORT");
    return 0;
}

START_TEST(reuseport_refusals_name_their_cause)
{
    ck_assert_int_eq(t_run(refusals, NULL), 0);
}
END_TEST

Suite *
diesel_cores_suite(void)
{
    Suite *s = suite_create("cores");
    TCase *tc = tcase_create("cores");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc,
        reuseport_spreads_connections_over_two_loops_on_one_port);
    tcase_add_test(tc, reuseport_refusals_name_their_cause);
    suite_add_tcase(s, tc);
    return s;
}
