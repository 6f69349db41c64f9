/*
 * redisping: enough of the Redis protocol (RESP) for redis-benchmark's
 * PING_INLINE, PING_MBULK, SET and GET, with the keys in memory.
 *
 * SYNOPSIS
 *     redisping [-t N] [[HOST:]PORT | PATH]   (default 127.0.0.1:6380,
 *                                             1 loop)
 *
 * DESCRIPTION
 *     Commands: PING [message], ECHO message, SET key value, GET key,
 *     DEL key..., DBSIZE, CONFIG GET (answers an empty list, which
 *     redis-benchmark accepts), QUIT.  Both inline commands ("PING\r\n")
 *     and RESP arrays ("*1\r\n$4\r\nPING\r\n") are understood.  Pipelined
 *     commands are answered in one write: replies are buffered with
 *     diesel_conn_write and go out when the connection would wait for
 *     more input, or when 64 KiB are waiting (the buffer's high-water
 *     mark): then the connection waits for the client to read, up to
 *     10 s, so a client that sends requests and never reads the replies
 *     costs at most that much memory, and is dropped.
 *
 *     It keeps a list of its clients (rp_clients, redisping.h) for
 *     examples/redisping_conns.c, a module that the console's `load`
 *     puts into the running service: `conns` lists the clients and the
 *     bytes buffered for each.
 *
 *     Protocol errors get "-ERR Protocol error: ..." and the connection
 *     is closed, as redis-server does: a bulk string not followed by CRLF,
 *     a bad length, more than 64 arguments.  An unknown command is
 *     answered with an error that names it, its bytes other than
 *     printable ASCII escaped ("\r", "\x01"), so that one request always
 *     gets exactly one reply line.  The live console is installed, with a
 *     `keys` command and a `commands` counter.  SIGINT and SIGTERM stop it
 *     cleanly.  -t N runs N loops on N OS threads, each accepting on its
 *     own socket on the same port (cores.h), sharing the keys under a
 *     lock; the console sees every loop (tasks shows each one's green
 *     threads, `loops` lists them).
 *
 * EXAMPLE
 *     $ examples/redisping &
 *     $ redis-cli -p 6380 set greeting hello
 *     OK
 *     $ redis-benchmark -p 6380 -t ping_inline,set,get -P 16 -q
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include <diesel.h>

#include "redisping.h"
#include "cores.h"

#define LINE_MAX_BYTES (64 * 1024)
#define ARGS_MAX 64
#define BULK_MAX (512 * 1024 * 1024)

/* ---- The keys: a chained hash table that doubles ---------------------- */

struct entry {
    struct entry *next;
    char *key, *val;
    size_t klen, vlen;
};

static struct entry **table;
static size_t nbuckets, nkeys;
static int64_t ncommands;     /* exposed on the console */
/* With -t N the loops share the keys: the table is theirs under this
 * lock, never held across a call that may park. */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

/* The clients (redisping.h), for examples/redisping_conns.c.  Newer ones
 * are added at the end: the list is as old as its head. */
struct rp_client *rp_clients;
pthread_mutex_t rp_clients_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rp_client **rp_tail = &rp_clients;

static size_t
hash(const char *s, size_t n)
{
    size_t h = 1469598103934665603ull;

    while (n--)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static struct entry **
slot(const char *k, size_t n)
{
    struct entry **e = &table[hash(k, n) & (nbuckets - 1)];

    while (*e != NULL && ((*e)->klen != n || memcmp((*e)->key, k, n) != 0))
        e = &(*e)->next;
    return e;
}

static void
grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : 1024;
    struct entry **t = calloc(n, sizeof(*t));

    if (t == NULL)
        return;
    for (size_t i = 0; i < nbuckets; i++) {
        for (struct entry *e = table[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = t[hash(e->key, e->klen) & (n - 1)];
            t[hash(e->key, e->klen) & (n - 1)] = e;
        }
    }
    free(table);
    table = t;
    nbuckets = n;
}

static int
set(const char *k, size_t kn, const char *v, size_t vn)
{
    struct entry **p, *e;
    char *val = malloc(vn + 1);

    if (val == NULL)
        return -1;
    memcpy(val, v, vn);
    if (nkeys >= nbuckets)
        grow();
    p = slot(k, kn);
    if ((e = *p) == NULL) {
        if ((e = calloc(1, sizeof(*e))) == NULL ||
            (e->key = malloc(kn + 1)) == NULL) {
            free(e);
            free(val);
            return -1;
        }
        memcpy(e->key, k, kn);
        e->klen = kn;
        *p = e;
        nkeys++;
    }
    free(e->val);
    e->val = val;
    e->vlen = vn;
    return 0;
}

/* ---- The protocol --------------------------------------------------- */

struct req {
    int argc;
    char *argv[ARGS_MAX];
    size_t len[ARGS_MAX];
    int owned;            /* argv[] were allocated (a RESP array) */
};

static int
reply(struct diesel_conn *c, const char *s)
{
    return diesel_conn_write(c, s, strlen(s));
}

static int
reply_bulk(struct diesel_conn *c, const char *s, size_t n)
{
    char head[32];

    snprintf(head, sizeof(head), "$%zu\r\n", n);
    if (reply(c, head) != 0 || diesel_conn_write(c, s, n) != 0)
        return -1;
    return reply(c, "\r\n");
}

static const char too_many[] =
    "-ERR Protocol error: too many arguments (at most 64)\r\n";

/* Read one request: 1 ok, 0 end of stream, -1 error (a reply was sent
 * for protocol errors, which end the connection as redis does). */
static int
read_req(struct diesel_conn *c, struct req *r, char *line)
{
    ssize_t n = diesel_conn_readline(c, line, LINE_MAX_BYTES, -1);
    char *end;
    long count;

    r->argc = 0;
    r->owned = 0;
    if (n <= 0) {
        if (n < 0 && errno == EMSGSIZE)
            reply(c, "-ERR Protocol error: too big inline request\r\n");
        return n == 0 ? 0 : -1;
    }
    if (n >= 2 && line[n - 2] == '\r')
        line[n - 2] = '\0';
    else
        line[n - 1] = '\0';
    if (line[0] != '*') {
        /* Inline: words separated by spaces.  strtok_r: strtok keeps its
         * place in one static for the whole process, which the loops of
         * -t N share (ThreadSanitizer caught two loops' clients in it). */
        char *save = NULL;

        for (char *p = strtok_r(line, " \t", &save); p != NULL;
            p = strtok_r(NULL, " \t", &save)) {
            if (r->argc == ARGS_MAX) {
                reply(c, too_many);
                return -1;
            }
            r->argv[r->argc] = p;
            r->len[r->argc++] = strlen(p);
        }
        return 1;
    }
    count = strtol(line + 1, &end, 10);
    if (*end != '\0' || end == line + 1 || count < 0) {
        reply(c, "-ERR Protocol error: invalid multibulk length\r\n");
        return -1;
    }
    if (count > ARGS_MAX) {
        reply(c, too_many);
        return -1;
    }
    for (long i = 0; i < count; i++) {
        long len;

        n = diesel_conn_readline(c, line, LINE_MAX_BYTES, -1);
        if (n <= 0 || line[0] != '$')
            goto bad;
        len = strtol(line + 1, &end, 10);
        if ((*end != '\r' && *end != '\n') || end == line + 1 || len < 0 ||
            len > BULK_MAX)
            goto bad;
        r->argv[i] = malloc((size_t)len + 2);
        if (r->argv[i] == NULL)
            goto bad;
        r->argc = (int)i + 1;
        if (diesel_conn_recv_exactly(c, r->argv[i], (size_t)len + 2, -1) <= 0)
            goto bad;
        if (r->argv[i][len] != '\r' || r->argv[i][len + 1] != '\n') {
            reply(c, "-ERR Protocol error: no CRLF after a bulk string\r\n");
            goto out;
        }
        r->argv[i][len] = '\0';
        r->len[i] = (size_t)len;
    }
    r->owned = 1;
    return 1;
bad:
    reply(c, "-ERR Protocol error: bad bulk string\r\n");
out:
    for (int i = 0; i < r->argc; i++)
        free(r->argv[i]);
    r->argc = 0;
    return -1;
}

static void
req_free(struct req *r)
{
    if (r->owned) {
        for (int i = 0; i < r->argc; i++)
            free(r->argv[i]);
    }
}

/*
 * The first 40 bytes of s (n long) for an error line, in out (4 * 40 + 4
 * bytes): bytes other than printable ASCII are escaped, so that a client
 * cannot end the line early and split one reply into two.
 */
static const char *
escape(char *out, const char *s, size_t n)
{
    char *o = out;

    for (size_t i = 0; i < n && i < 40; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '\\' || ch == '\'')
            o += sprintf(o, "\\%c", ch);
        else if (ch == '\r' || ch == '\n')
            o += sprintf(o, "\\%c", ch == '\r' ? 'r' : 'n');
        else if (ch < 0x20 || ch > 0x7e)
            o += sprintf(o, "\\x%02x", ch);
        else
            *o++ = (char)ch;
    }
    strcpy(o, n > 40 ? "..." : "");
    return out;
}

/* Run one command; -1 ends the connection. */
static int
run(struct diesel_conn *c, struct req *r)
{
    const char *cmd = r->argv[0];

    __atomic_fetch_add(&ncommands, 1, __ATOMIC_RELAXED);
    if (strcasecmp(cmd, "PING") == 0) {
        if (r->argc == 1)
            return reply(c, "+PONG\r\n");
        return reply_bulk(c, r->argv[1], r->len[1]);
    }
    if (strcasecmp(cmd, "ECHO") == 0 && r->argc == 2)
        return reply_bulk(c, r->argv[1], r->len[1]);
    if (strcasecmp(cmd, "SET") == 0 && r->argc >= 3) {
        int rc;
        pthread_mutex_lock(&keys_lock);
        rc = set(r->argv[1], r->len[1], r->argv[2], r->len[2]);
        pthread_mutex_unlock(&keys_lock);
        if (rc != 0)
            return reply(c, "-ERR out of memory\r\n");
        return reply(c, "+OK\r\n");
    }
    if (strcasecmp(cmd, "GET") == 0 && r->argc == 2) {
        struct entry *e;
        char small[256], *val = NULL;
        size_t n = 0;
        int rc, found;
        /* The value is copied out under the lock: the reply may park. */
        pthread_mutex_lock(&keys_lock);
        e = nbuckets ? *slot(r->argv[1], r->len[1]) : NULL;
        if ((found = e != NULL)) {
            n = e->vlen;
            val = n <= sizeof(small) ? small : malloc(n);
            if (val != NULL)
                memcpy(val, e->val, n);
        }
        pthread_mutex_unlock(&keys_lock);
        if (!found)
            return reply(c, "$-1\r\n");
        if (val == NULL)
            return reply(c, "-ERR out of memory\r\n");
        rc = reply_bulk(c, val, n);
        if (val != small)
            free(val);
        return rc;
    }
    if (strcasecmp(cmd, "DEL") == 0 && r->argc >= 2) {
        char num[32];
        long gone = 0;
        pthread_mutex_lock(&keys_lock);
        for (int i = 1; i < r->argc && nbuckets; i++) {
            struct entry **p = slot(r->argv[i], r->len[i]), *e = *p;
            if (e != NULL) {
                *p = e->next;
                free(e->key);
                free(e->val);
                free(e);
                nkeys--;
                gone++;
            }
        }
        pthread_mutex_unlock(&keys_lock);
        snprintf(num, sizeof(num), ":%ld\r\n", gone);
        return reply(c, num);
    }
    if (strcasecmp(cmd, "DBSIZE") == 0) {
        char num[32];
        pthread_mutex_lock(&keys_lock);
        snprintf(num, sizeof(num), ":%zu\r\n", nkeys);
        pthread_mutex_unlock(&keys_lock);
        return reply(c, num);
    }
    if (strcasecmp(cmd, "CONFIG") == 0)
        return reply(c, "*0\r\n");
    if (strcasecmp(cmd, "QUIT") == 0) {
        reply(c, "+OK\r\n");
        return -1;
    }
    {
        char err[256], name[4 * 40 + 4];
        snprintf(err, sizeof(err), "-ERR unknown command or wrong number "
            "of arguments for '%s'\r\n", escape(name, cmd, r->len[0]));
        return reply(c, err);
    }
}

static int
client(struct diesel_conn *c, void *arg)
{
    char *line = malloc(LINE_MAX_BYTES);
    struct rp_client me;
    struct req r;
    int rc;

    (void)arg;
    if (line == NULL)
        return 1;
    memset(&me, 0, sizeof(me));
    me.conn = c;
    if (diesel_conn_peer(c, me.peer, sizeof(me.peer)) != 0)
        strcpy(me.peer, "?");
    pthread_mutex_lock(&rp_clients_lock);
    me.prevp = rp_tail;
    *rp_tail = &me;
    rp_tail = &me.next;
    pthread_mutex_unlock(&rp_clients_lock);
    /* The default mark, and 10 s for a client to take the replies. */
    diesel_conn_set_output(c, 64 * 1024, 10000);
    while ((rc = read_req(c, &r, line)) > 0) {
        int stop = r.argc > 0 && run(c, &r) != 0;
        if (r.argc > 0)
            __atomic_fetch_add(&me.commands, 1, __ATOMIC_RELAXED);
        req_free(&r);
        if (stop)
            break;
    }
    diesel_conn_flush(c, 5000);
    free(line);
    pthread_mutex_lock(&rp_clients_lock);
    *me.prevp = me.next;
    if (me.next != NULL)
        me.next->prevp = me.prevp;
    else
        rp_tail = me.prevp;
    pthread_mutex_unlock(&rp_clients_lock);
    return 0;
}

/* ---- Console: `keys [PATTERN-PREFIX]` ------------------------------------- */

static int
cmd_keys(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    size_t shown = 0, plen = argc > 1 ? strlen(argv[1]) : 0;

    (void)arg;
    pthread_mutex_lock(&keys_lock);
    for (size_t i = 0; i < nbuckets && shown < 100; i++) {
        for (struct entry *e = table[i]; e != NULL && shown < 100;
            e = e->next) {
            if (plen == 0 || (e->klen >= plen &&
                memcmp(e->key, argv[1], plen) == 0)) {
                diesel_console_printf(out, "%.*s\n", (int)e->klen, e->key);
                shown++;
            }
        }
    }
    diesel_console_printf(out, "(%zu shown of %zu keys)\n", shown, nkeys);
    pthread_mutex_unlock(&keys_lock);
    return 0;
}

int
main(int argc, char **argv)
{
    int loops = 1;

    if (cores_option(&argc, &argv, &loops) < 0 || argc > 2 ||
        (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: redisping [-t N] [[HOST:]PORT | PATH]   "
            "(default 127.0.0.1:6380, 1 loop)\n");
        return 2;
    }
    diesel_console_install(0);
    diesel_console_command("keys", "list keys (optionally with a prefix)",
        cmd_keys, NULL);
    diesel_console_var_int("commands", &ncommands, 0);
    return cores_run("redisping", argc == 2 ? argv[1] : "127.0.0.1:6380",
        client, loops);
}
