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
#include <stddef.h>
#include <stdint.h>

#include <diesel.h>

#include "redisping.h"

static const struct diesel_module_api *api;
static struct rp_client **clients;    /* redisping's rp_clients */

static int
cmd_conns(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_console_table *t;
    const struct rp_client *c;
    int n = 0, json = api->console_json(out);

    (void)argv;
    (void)arg;
    if (argc != 1)
        return api->console_error(out, "usage: conns [--json]");
    if (json) {
        api->console_printf(out, "[");
        for (c = *clients; c != NULL; c = c->next, n++) {
            size_t in = 0, pending = 0;

            api->conn_buffered(c->conn, &in, &pending);
            /* A peer address has no quote or backslash in it. */
            api->console_printf(out, "%s{\"peer\":\"%s\",\"commands\":%lld,"
                "\"in\":%zu,\"out\":%zu}", n ? "," : "", c->peer,
                (long long)c->commands, in, pending);
        }
        api->console_printf(out, "]\n");
        return 0;
    }
    if ((t = api->table_create(4)) == NULL)
        return -1;
    api->table_cell(t, "PEER");
    api->table_cell(t, "COMMANDS");
    api->table_cell(t, "IN");
    api->table_cell(t, "OUT");
    api->table_row(t);
    for (c = *clients; c != NULL; c = c->next, n++) {
        size_t in = 0, pending = 0;

        api->conn_buffered(c->conn, &in, &pending);
        api->table_cell(t, "%s", c->peer);
        api->table_cell(t, "%lld", (long long)c->commands);
        api->table_cell(t, "%zu", in);
        api->table_cell(t, "%zu", pending);
        api->table_row(t);
    }
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
    if (clients == NULL)
        return a->console_error(out, "conns: no rp_clients in this "
            "service: it is not redisping (or it was stripped)");
    return a->command_json(a->module, "conns", "conns [--json]: redisping's "
        "clients, the commands each sent and the bytes buffered for it",
        cmd_conns, NULL);
}

DIESEL_MODULE("conns", init, NULL);
