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
 *     redis-benchmark accepts), QUIT.  Another count of arguments is
 *     answered as redis-server answers it: "-ERR wrong number of
 *     arguments for 'ping' command" (SET's beyond the value, its
 *     options there, are ignored).  Both inline commands ("PING\r\n")
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
 *     own socket on the same port (cores.h), sharing the keys (16
 *     tables by hash, each under a lock of its own); the console sees
 *     every loop (tasks shows each one's green threads, `loops` lists
 *     them).
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

/* ---- The keys: chained hash tables that double ------------------------ */

struct entry {
    struct entry *next;
    char *key, *val;
    size_t klen, vlen;
};

/*
 * With -t N the loops share the keys.  They are split over SHARDS tables
 * by their hash, each under a lock of its own that is never held across a
 * call that may park, and each on cache lines of its own: loops on cores
 * of their own then seldom meet on one lock, and a SET on one loop does
 * not take the line that another loop's GET of another key reads.
 */
#define SHARDS 16

static struct shard {
    _Alignas(64) pthread_mutex_t lock;
    struct entry **table;
    size_t nbuckets, nkeys;
} shards[SHARDS];

static int64_t ncommands;     /* exposed on the console */

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

/* The shard of a key's hash: its top bits (a bucket takes the low ones),
 * locked. */
static struct shard *
shard_lock(size_t h)
{
    struct shard *sh = &shards[(h >> (sizeof(h) * 8 - 4)) % SHARDS];

    pthread_mutex_lock(&sh->lock);
    return sh;
}

static struct entry **
slot(struct shard *sh, size_t h, const char *k, size_t n)
{
    struct entry **e = &sh->table[h & (sh->nbuckets - 1)];

    while (*e != NULL && ((*e)->klen != n || memcmp((*e)->key, k, n) != 0))
        e = &(*e)->next;
    return e;
}

static void
grow(struct shard *sh)
{
    size_t n = sh->nbuckets ? sh->nbuckets * 2 : 64;
    struct entry **t = calloc(n, sizeof(*t));

    if (t == NULL)
        return;
    for (size_t i = 0; i < sh->nbuckets; i++) {
        for (struct entry *e = sh->table[i], *next; e != NULL; e = next) {
            size_t b = hash(e->key, e->klen) & (n - 1);

            next = e->next;
            e->next = t[b];
            t[b] = e;
        }
    }
    free(sh->table);
    sh->table = t;
    sh->nbuckets = n;
}

/* Under sh's lock. */
static int
set(struct shard *sh, size_t h, const char *k, size_t kn, const char *v,
    size_t vn)
{
    struct entry **p, *e;
    char *val = malloc(vn + 1);

    if (val == NULL)
        return -1;
    memcpy(val, v, vn);
    if (sh->nkeys >= sh->nbuckets)
        grow(sh);
    if (sh->nbuckets == 0) {
        free(val);
        return -1;
    }
    p = slot(sh, h, k, kn);
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
        sh->nkeys++;
    }
    free(e->val);
    e->val = val;
    e->vlen = vn;
    return 0;
}

/* Every shard's keys, each counted under its lock. */
static size_t
nkeys_all(void)
{
    size_t n = 0;

    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        n += shards[i].nkeys;
        pthread_mutex_unlock(&shards[i].lock);
    }
    return n;
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

/*
 * The arguments each command takes, the command's name counted, as
 * redis-server's command table has them (-N: at least N): a known command
 * given another count is answered as redis-server answers it, "-ERR wrong
 * number of arguments for 'ping' command", not run on part of them.
 */
static const struct {
    const char *name;            /* lower case, as the error names it */
    int min, max;
} arity[] = {
    { "ping", 1, 2 }, { "echo", 2, 2 }, { "set", 3, ARGS_MAX },
    { "get", 2, 2 }, { "del", 2, ARGS_MAX }, { "dbsize", 1, 1 },
};

/* Run one command; -1 ends the connection. */
static int
run(struct diesel_conn *c, struct req *r)
{
    const char *cmd = r->argv[0];

    __atomic_fetch_add(&ncommands, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < sizeof(arity) / sizeof(arity[0]); i++) {
        char err[96];

        if (strcasecmp(cmd, arity[i].name) != 0)
            continue;
        if (r->argc >= arity[i].min && r->argc <= arity[i].max)
            break;
        snprintf(err, sizeof(err), "-ERR wrong number of arguments for "
            "'%s' command\r\n", arity[i].name);
        return reply(c, err);
    }
    if (strcasecmp(cmd, "PING") == 0) {
        if (r->argc == 1)
            return reply(c, "+PONG\r\n");
        return reply_bulk(c, r->argv[1], r->len[1]);
    }
    if (strcasecmp(cmd, "ECHO") == 0 && r->argc == 2)
        return reply_bulk(c, r->argv[1], r->len[1]);
    if (strcasecmp(cmd, "SET") == 0 && r->argc >= 3) {
        size_t h = hash(r->argv[1], r->len[1]);
        struct shard *sh = shard_lock(h);
        int rc = set(sh, h, r->argv[1], r->len[1], r->argv[2], r->len[2]);

        pthread_mutex_unlock(&sh->lock);
        if (rc != 0)
            return reply(c, "-ERR out of memory\r\n");
        return reply(c, "+OK\r\n");
    }
    if (strcasecmp(cmd, "GET") == 0 && r->argc == 2) {
        size_t h = hash(r->argv[1], r->len[1]), n = 0;
        struct shard *sh = shard_lock(h);
        struct entry *e;
        char small[256], *val = NULL;
        int rc, found;

        /* The value is copied out under the lock: the reply may park. */
        e = sh->nbuckets ? *slot(sh, h, r->argv[1], r->len[1]) : NULL;
        if ((found = e != NULL)) {
            n = e->vlen;
            val = n <= sizeof(small) ? small : malloc(n);
            if (val != NULL)
                memcpy(val, e->val, n);
        }
        pthread_mutex_unlock(&sh->lock);
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
        for (int i = 1; i < r->argc; i++) {
            size_t h = hash(r->argv[i], r->len[i]);
            struct shard *sh = shard_lock(h);
            struct entry **p, *e;

            p = sh->nbuckets ? slot(sh, h, r->argv[i], r->len[i]) : NULL;
            if (p != NULL && (e = *p) != NULL) {
                *p = e->next;
                free(e->key);
                free(e->val);
                free(e);
                sh->nkeys--;
                gone++;
            }
            pthread_mutex_unlock(&sh->lock);
        }
        snprintf(num, sizeof(num), ":%ld\r\n", gone);
        return reply(c, num);
    }
    if (strcasecmp(cmd, "DBSIZE") == 0) {
        char num[32];
        snprintf(num, sizeof(num), ":%zu\r\n", nkeys_all());
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
        snprintf(err, sizeof(err), "-ERR unknown command '%s'\r\n",
            escape(name, cmd, r->len[0]));
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
            /* Only this green thread writes it: a relaxed store, not
             * a locked add, and the module's reads see a whole value. */
            __atomic_store_n(&me.commands, me.commands + 1,
                __ATOMIC_RELAXED);
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
    size_t shown = 0, total = 0, plen = argc > 1 ? strlen(argv[1]) : 0;

    (void)arg;
    /* A print only buffers (it never parks): it may be under a lock. */
    for (int s = 0; s < SHARDS; s++) {
        struct shard *sh = &shards[s];

        pthread_mutex_lock(&sh->lock);
        total += sh->nkeys;
        for (size_t i = 0; i < sh->nbuckets && shown < 100; i++) {
            for (struct entry *e = sh->table[i]; e != NULL && shown < 100;
                e = e->next) {
                if (plen == 0 || (e->klen >= plen &&
                    memcmp(e->key, argv[1], plen) == 0)) {
                    diesel_console_printf(out, "%.*s\n", (int)e->klen,
                        e->key);
                    shown++;
                }
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    diesel_console_printf(out, "(%zu shown of %zu keys)\n", shown, total);
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
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shards[i].lock, NULL);
    diesel_console_install(0);
    diesel_console_command("keys", "list keys (optionally with a prefix)",
        cmd_keys, NULL);
    diesel_console_var_int("commands", &ncommands, 0);
    return cores_run("redisping", argc == 2 ? argv[1] : "127.0.0.1:6380",
        client, loops);
}
