/*
 * chat: a line-based chat room.
 *
 * SYNOPSIS
 *     chat [[HOST:]PORT | PATH]          (default 127.0.0.1:7070)
 *
 * DESCRIPTION
 *     Every line a client sends goes to every other client, prefixed with
 *     the sender's name ("guest1: hello").  "/nick NAME" changes the name,
 *     "/who" lists who is here, "/quit" leaves.  Each client has two green
 *     threads: one reads its lines and hands them to every other member's
 *     outbox (a bounded diesel_queue), one writes its own outbox to the
 *     socket.  A member that does not read fills its socket, then its
 *     outbox of 256 lines; from then on the lines for it are dropped (and
 *     counted), so a slow reader never slows the room nor grows the
 *     server.  A member whose socket has taken nothing for 10 s is
 *     disconnected.  The live console is installed, with a `who` command
 *     and the `dropped` counter.  SIGINT and SIGTERM stop it cleanly.
 *
 * EXAMPLE
 *     $ examples/chat &
 *     $ nc 127.0.0.1 7070        (in two terminals, and talk)
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <diesel.h>

#define LINE_MAX_BYTES 1024
#define OUTBOX 256

struct member {
    struct member *next;
    char name[32];
    struct diesel_conn *conn;
    struct diesel_queue *outbox;    /* of malloc'd lines */
};

static struct member *members;
static int64_t nguests, dropped;

/* Queue a copy of text for m, or drop it (and count it) if m's outbox
 * is full: never wait for a slow reader. */
static void
give(struct member *m, const char *text)
{
    char *copy = strdup(text);

    if (copy == NULL || diesel_queue_put(m->outbox, copy, 0) != 0) {
        free(copy);
        dropped++;
    }
}

/* Give a copy of text to every member but from (NULL: to all). */
static void
broadcast(struct member *from, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
broadcast(struct member *from, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES + 64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (struct member *m = members; m != NULL; m = m->next) {
        if (m != from)
            give(m, line);
    }
}

/* The member's writer: its outbox to its socket, until the queue closes. */
static int
writer(void *arg)
{
    struct member *m = arg;
    void *item;

    while (diesel_queue_get(m->outbox, &item, -1) == 0) {
        int rc = diesel_conn_send(m->conn, item, strlen(item), 10000);
        free(item);
        if (rc != 0)
            break;
    }
    /* Wake the reader if the socket failed first. */
    diesel_conn_shutdown(m->conn, SHUT_RDWR);
    return 0;
}

static int
client(struct diesel_conn *c, void *arg)
{
    struct member me, **p;
    char line[LINE_MAX_BYTES];
    int64_t w;
    ssize_t n;
    void *item;

    (void)arg;
    memset(&me, 0, sizeof(me));
    snprintf(me.name, sizeof(me.name), "guest%lld", (long long)++nguests);
    me.conn = c;
    if ((me.outbox = diesel_queue_create(me.name, OUTBOX)) == NULL)
        return 1;
    w = diesel_task_spawn("chat writer", writer, &me, 0);
    me.next = members;
    members = &me;
    broadcast(&me, "* %s joined\n", me.name);
    give(&me, "* welcome; /nick NAME, /who, /quit\n");
    while ((n = diesel_conn_readline(c, line, sizeof(line), -1)) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "/nick ", 6) == 0 && line[6] != '\0') {
            broadcast(&me, "* %s is now %.31s\n", me.name, line + 6);
            snprintf(me.name, sizeof(me.name), "%.31s", line + 6);
        } else if (strcmp(line, "/who") == 0) {
            for (struct member *m = members; m != NULL; m = m->next) {
                char who[64];
                snprintf(who, sizeof(who), "* %s\n", m->name);
                give(&me, who);
            }
        } else if (strcmp(line, "/quit") == 0) {
            break;
        } else if (line[0] != '\0') {
            broadcast(&me, "%s: %s\n", me.name, line);
        }
    }
    if (n < 0 && errno == EMSGSIZE)
        diesel_log("chat", DIESEL_LOG_WARNING, "%s sent a line over %d "
            "bytes: disconnected", me.name, LINE_MAX_BYTES);
    for (p = &members; *p != &me; p = &(*p)->next)
        ;
    *p = me.next;
    broadcast(NULL, "* %s left\n", me.name);
    /* Let the writer send what is queued, then free what it left. */
    diesel_queue_close(me.outbox);
    diesel_task_join(w, NULL, 5000);
    diesel_task_cancel(w);
    diesel_task_join(w, NULL, -1);
    while (diesel_queue_get(me.outbox, &item, 0) == 0)
        free(item);
    diesel_queue_destroy(me.outbox);
    return 0;
}

static int
cmd_who(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)argc;
    (void)argv;
    (void)arg;
    for (struct member *m = members; m != NULL; m = m->next)
        diesel_console_printf(out, "%s (%zu queued)\n", m->name,
            diesel_queue_length(m->outbox));
    return 0;
}

static int
serve(void *arg)
{
    const char *addr = arg;
    int stop[] = { SIGINT, SIGTERM }, sig;
    struct diesel_server *s = diesel_server_listen(addr, client, NULL, 0);

    if (s == NULL) {
        diesel_log("chat", DIESEL_LOG_ERROR, "cannot listen on %s: %s", addr,
            strerror(errno));
        return 1;
    }
    diesel_log("chat", DIESEL_LOG_INFO, "listening on %s",
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
    diesel_log("chat", DIESEL_LOG_INFO, "stopping");
    diesel_server_close(s);
    return diesel_loop_stop(0);
}

int
main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: chat [[HOST:]PORT | PATH]   "
            "(default 127.0.0.1:7070)\n");
        return 2;
    }
    diesel_console_install(0);
    diesel_console_command("who", "list the members and their outboxes",
        cmd_who, NULL);
    diesel_console_var_int("dropped", &dropped, 0);
    return diesel_loop_run(serve, argc == 2 ? argv[1] : "127.0.0.1:7070");
}
