/*
 * redisping_conns: a module for redisping, loaded into the running
 * service with the console's `load`: `conns` lists its clients, the
 * commands each sent, and the bytes buffered for each (received and not
 * yet read, written and not yet sent).
 *
 * SYNOPSIS
 *     cc -shared -fPIC -o redisping_conns.so redisping_conns.c \
 *         $(pkg-config --cflags libdiesel)
 *     dconsole PID load /abs/path/redisping_conns.so
 *     dconsole PID conns [--json]
 *
 * DESCRIPTION
 *     A module calls the library only through the structure its init is
 *     given (struct diesel_module_api, diesel_console(3)), so redisping
 *     needs no -rdynamic: the client list is found by its symbol name
 *     (api->symbol), its layout from redisping.h.  `unload conns` takes
 *     the command away again.
 *
 * EXAMPLE
 *     >>> load /opt/mods/redisping_conns.so
 *     loaded module conns from /opt/mods/redisping_conns.so: 1 command,
 *     0 variables
 *     >>> conns
 *     PEER             COMMANDS  IN  OUT
 *     127.0.0.1:40312  3         5   0
 *     1 client
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <diesel.h>

#include "redisping.h"

static const struct diesel_module_api *api;
static struct rp_client **clients;    /* redisping's rp_clients */
static pthread_mutex_t *clients_lock; /* and rp_clients_lock */

struct row {
    char peer[64];
    long long commands;
    size_t in, pending;
};

/*
 * The rows, copied under the list's lock (with -t N the other loops'
 * clients come and go meanwhile) and printed after it, since printing
 * may park this green thread and a lock held across a park would stop
 * this loop's own clients from leaving.  The other loops' counters and
 * buffers are read as they change: a glimpse, not a snapshot.
 */
static struct row *
snapshot(int *n)
{
    const struct rp_client *c;
    struct row *rows = NULL, *r;
    int cap = 0;

    *n = 0;
    pthread_mutex_lock(clients_lock);
    for (c = *clients; c != NULL; c = c->next) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            r = realloc(rows, (size_t)cap * sizeof(*rows));
            if (r == NULL) {
                free(rows);
                pthread_mutex_unlock(clients_lock);
                *n = -1;
                return NULL;
            }
            rows = r;
        }
        r = &rows[(*n)++];
        memcpy(r->peer, c->peer, sizeof(r->peer));
        r->peer[sizeof(r->peer) - 1] = '\0';
        r->commands = (long long)__atomic_load_n(&c->commands,
            __ATOMIC_RELAXED);
        r->in = r->pending = 0;
        api->conn_buffered(c->conn, &r->in, &r->pending);
    }
    pthread_mutex_unlock(clients_lock);
    return rows;
}

static int
cmd_conns(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_console_table *t;
    struct row *rows;
    int n, json = api->console_json(out);

    (void)argv;
    (void)arg;
    if (argc != 1)
        return api->console_error(out, "usage: conns [--json]");
    rows = snapshot(&n);
    if (n < 0)
        return api->console_error(out, "conns: out of memory");
    if (json) {
        api->console_printf(out, "[");
        for (int i = 0; i < n; i++)
            /* A peer address has no quote or backslash in it. */
            api->console_printf(out, "%s{\"peer\":\"%s\",\"commands\":%lld,"
                "\"in\":%zu,\"out\":%zu}", i ? "," : "", rows[i].peer,
                rows[i].commands, rows[i].in, rows[i].pending);
        api->console_printf(out, "]\n");
        free(rows);
        return 0;
    }
    if ((t = api->table_create(4)) == NULL) {
        free(rows);
        return -1;
    }
    api->table_cell(t, "PEER");
    api->table_cell(t, "COMMANDS");
    api->table_cell(t, "IN");
    api->table_cell(t, "OUT");
    api->table_row(t);
    for (int i = 0; i < n; i++) {
        api->table_cell(t, "%s", rows[i].peer);
        api->table_cell(t, "%lld", rows[i].commands);
        api->table_cell(t, "%zu", rows[i].in);
        api->table_cell(t, "%zu", rows[i].pending);
        api->table_row(t);
    }
    free(rows);
    api->table_print(t, out);
    api->table_destroy(t);
    api->console_printf(out, "%d client%s\n", n, n == 1 ? "" : "s");
    return 0;
}

static int
init(const struct diesel_module_api *a, int argc, char **argv,
    struct diesel_console_out *out)
{
    (void)argv;
    /* A service of another interface version is refused before init;
     * a longer structure is a newer service, which is fine. */
    if (a->size < offsetof(struct diesel_module_api, conn_buffered) +
        sizeof(a->conn_buffered))
        return a->console_error(out, "conns: this service's library is "
            "too old");
    if (argc != 1)
        return a->console_error(out, "conns: takes no arguments");
    api = a;
    clients = a->symbol("rp_clients");
    clients_lock = a->symbol("rp_clients_lock");
    if (clients == NULL || clients_lock == NULL)
        return a->console_error(out, "conns: no rp_clients in this "
            "service: it is not redisping (or it was stripped)");
    return a->command_json(a->module, "conns", "conns [--json]: redisping's "
        "clients, the commands each sent and the bytes buffered for it",
        cmd_conns, NULL);
}

DIESEL_MODULE("conns", init, NULL);
