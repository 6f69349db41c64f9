/*
 * redisping.h: what redisping keeps about its clients, for code that
 * reads its state from inside the running service: the `conns` module
 * (examples/redisping_conns.c), loaded with the console's `load`, finds
 * the list by its symbol name, rp_clients.
 */
#ifndef REDISPING_H
#define REDISPING_H

#include <pthread.h>
#include <stdint.h>

struct diesel_conn;

/* One connected client; on its green thread's stack while it is served. */
struct rp_client {
    struct rp_client *next;       /* the next newer client, or NULL */
    struct rp_client **prevp;     /* the pointer that points at this one */
    struct diesel_conn *conn;
    char peer[64];                /* its address, as diesel_conn_peer says */
    int64_t commands;             /* commands it sent */
};

/* The head of the list: the oldest client first.  With -t N the loops'
 * clients share it: it is changed and walked under rp_clients_lock, and a
 * client's counter is read as it is being counted (__atomic, relaxed). */
extern struct rp_client *rp_clients;
extern pthread_mutex_t rp_clients_lock;

#endif /* REDISPING_H */
