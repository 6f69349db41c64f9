/*
 * net.c: addresses, listening and accepting, connecting, and resolving
 * names without blocking the loop.
 *
 * Addresses are "[HOST:]PORT" or a UNIX socket path.  Numeric hosts and
 * "localhost" are turned into socket addresses on the spot.  Any other
 * name needs getaddrinfo(3), which may block for seconds: it runs on a
 * small pool of helper pthreads (RESOLVE_THREADS at most, started on
 * demand, gone after RESOLVE_IDLE_S idle), each lookup handing its answer
 * back through a socketpair that the asking green thread waits on.  A
 * socketpair rather than a pipe, so that a helper answering a lookup whose
 * asker gave up (timeout, cancel) and closed its end gets EPIPE from
 * send(MSG_NOSIGNAL) instead of a SIGPIPE.  The lookup record is shared by
 * the two sides and freed by whichever lets go of it last.
 *
 * The acceptor green thread never spins.  When the process is out of
 * descriptors (EMFILE, ENFILE) or memory, accept(2) fails at once for as
 * long as the connection waits in the queue, so it logs one WARNING and
 * parks with a backoff (10 ms, doubling to 1 s) before trying again; one
 * of its own connections ending frees a descriptor and wakes it early.
 * The connection meanwhile waits in the listen queue, which is kinder than
 * libuv's spare-descriptor trick (accept it and close it at once).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_ADDRS 8               /* addresses of a name tried in turn */
#define RESOLVE_THREADS 4         /* helper threads for getaddrinfo */
#define RESOLVE_IDLE_S 2          /* a helper with nothing to do leaves */
#define BACKOFF_MIN_MS 10         /* accept after EMFILE: first pause */
#define BACKOFF_MAX_MS 1000       /* ... doubling up to this */
#define WARN_EVERY_NS ((int64_t)60 * 1000000000)  /* one WARNING per minute */
#define ACCEPT_BATCH 64           /* accepts in a row before a yield */
#define NOBLOCK 0                 /* deadline of a 0 timeout */

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* What an address string names, before any lookup. */
struct parsed {
    int unix_path;                /* 1: path holds a UNIX socket path */
    int bracketed;                /* the host was "[...]": IPv6 only */
    char host[256];               /* "" when no host was given */
    int port;
    struct sockaddr_un sun;       /* unix_path */
};

/* Socket addresses to try, in order. */
struct addrs {
    int n;
    struct sockaddr_storage ss[MAX_ADDRS];
    socklen_t len[MAX_ADDRS];
};

/* ---- Small helpers ------------------------------------------------------- */

static int
set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    return 0;
}

/* A non-blocking, close-on-exec socket. */
static int
socket_nb(int family)
{
    int fd;

#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    fd = socket(family, SOCK_STREAM, 0);
    if (fd >= 0 && set_flags(fd) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
#endif
#ifdef SO_NOSIGPIPE
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
    }
#endif
    return fd;
}

static int
accept_nb(int lfd, struct sockaddr_storage *ss, socklen_t *sl)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    return accept4(lfd, (struct sockaddr *)ss, sl,
        SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = accept(lfd, (struct sockaddr *)ss, sl);

    if (fd >= 0 && set_flags(fd) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
#endif
}

/* Without it, a reply written in two sends waits for the delayed ACK of
 * the first (Nagle): 40 ms per round trip on Linux. */
static void
no_delay(int fd, int family)
{
    int one = 1;

    if (family == AF_INET || family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
close_keep_errno(int fd)
{
    int err = errno;

    diesel_fd_close(fd);
    errno = err;
}

int64_t
diesel__conn_deadline(int64_t timeout_ms)
{
    /* Past a century, a timeout is as good as none (and its deadline in
     * ns would overflow). */
    if (timeout_ms < 0 || timeout_ms > (int64_t)100 * 365 * 86400 * 1000)
        return -1;
    if (timeout_ms == 0)
        return NOBLOCK;
    return diesel__now_ns() + timeout_ms * 1000000;
}

/* Milliseconds left before deadline (-1: none), or -1 with ETIMEDOUT. */
static int
left_ms(int64_t deadline, int64_t *ms)
{
    int64_t left;

    if (deadline < 0) {
        *ms = -1;
        return 0;
    }
    if (deadline == NOBLOCK) {
        *ms = 0;
        return 0;
    }
    left = deadline - diesel__now_ns();
    if (left <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    *ms = (left + 999999) / 1000000;
    return 0;
}

int
diesel__addr_format(const void *sa, unsigned salen, int fd, char *buf,
    size_t len)
{
    const struct sockaddr *s = sa;
    char host[INET6_ADDRSTRLEN];
    int n = -1;

    switch (s->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        n = snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        if (in6->sin6_scope_id != 0)
            n = snprintf(buf, len, "[%s%%%u]:%u", host,
                (unsigned)in6->sin6_scope_id, ntohs(in6->sin6_port));
        else
            n = snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = sa;
        struct sockaddr_un self;
        size_t off = offsetof(struct sockaddr_un, sun_path), plen;
        socklen_t sl = sizeof(self);

        if (salen > off + 1 && un->sun_path[0] == '\0') {
            /* Linux's abstract namespace: "@name". */
            plen = salen - off - 1;
            n = snprintf(buf, len, "unix:@%.*s", (int)plen,
                un->sun_path + 1);
            break;
        }
        /* An accepted connection's peer has no name: the listener's path
         * (our own address) says more than nothing. */
        if (salen <= off || un->sun_path[0] == '\0') {
            if (fd < 0 || getsockname(fd, (struct sockaddr *)&self,
                &sl) != 0 || sl <= off || self.sun_path[0] == '\0') {
                n = snprintf(buf, len, "unix:");
                break;
            }
            un = &self;
            salen = sl;
        }
        plen = strnlen(un->sun_path, salen - off);
        n = snprintf(buf, len, "unix:%.*s", (int)plen, un->sun_path);
        break;
    }
    default:
        n = snprintf(buf, len, "family-%d", s->sa_family);
        break;
    }
    if (n < 0 || (size_t)n >= len) {
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

/* ---- Parsing ------------------------------------------------------------- */

static int
parse_port(const char *s, int *port)
{
    long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return -1;
    }
    *port = (int)v;
    return 0;
}

static int
parse(const char *addr, struct parsed *p)
{
    const char *colon, *port;
    size_t hlen;

    memset(p, 0, sizeof(*p));
    if (addr == NULL || *addr == '\0')
        goto bad;
    if (strncmp(addr, "unix:", 5) == 0 || strchr(addr, '/') != NULL) {
        const char *path = strncmp(addr, "unix:", 5) == 0 ? addr + 5 : addr;
        if (*path == '\0')
            goto bad;
        if (strlen(path) >= sizeof(p->sun.sun_path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        p->unix_path = 1;
        p->sun.sun_family = AF_UNIX;
        strcpy(p->sun.sun_path, path);
        return 0;
    }
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            goto bad;
        hlen = (size_t)(end - addr - 1);
        if (hlen == 0 || hlen >= sizeof(p->host))
            goto bad;
        memcpy(p->host, addr + 1, hlen);
        p->bracketed = 1;
        port = end + 2;
    } else if ((colon = strrchr(addr, ':')) != NULL) {
        /* An IPv6 address needs brackets to be told from its port. */
        if (memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            goto bad;
        hlen = (size_t)(colon - addr);
        if (hlen >= sizeof(p->host))
            goto bad;
        memcpy(p->host, addr, hlen);
        port = colon + 1;
    } else {
        port = addr;
    }
    if (parse_port(port, &p->port) != 0)
        goto bad;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* ---- Resolving ----------------------------------------------------------- */

/* One getaddrinfo call, shared by the asking green thread and a helper. */
struct lookup {
    struct lookup *next;          /* in the queue */
    atomic_int refs;              /* the asker's and the helper's */
    atomic_int abandoned;         /* the asker gave up: skip the work */
    atomic_int done;              /* gai, sys_errno and res are set */
    char *host;
    char port[8];
    int passive;                  /* for listening */
    int gai;                      /* getaddrinfo's result */
    int sys_errno;                /* errno when gai is EAI_SYSTEM */
    struct addrinfo *res;
    int wfd;                      /* the helper's end of the socketpair */
};

/* The helpers serve every loop of the process: this is not loop state. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lookup *head, *tail;   /* waiting for a helper */
    int threads;                  /* helpers alive */
    int idle;                     /* ... of which waiting for work */
} resolver = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL,
    NULL, 0, 0 };

static void
lookup_unref(struct lookup *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    if (q->res != NULL)
        freeaddrinfo(q->res);
    free(q->host);
    free(q);
}

static void *
resolver_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&resolver.lock);
    for (;;) {
        struct lookup *q;
        struct addrinfo hints;

        while ((q = resolver.head) == NULL) {
            struct timespec ts;
            int e;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += RESOLVE_IDLE_S;
            resolver.idle++;
            e = pthread_cond_timedwait(&resolver.cond, &resolver.lock, &ts);
            resolver.idle--;
            if (e == ETIMEDOUT && resolver.head == NULL) {
                resolver.threads--;
                pthread_mutex_unlock(&resolver.lock);
                return NULL;
            }
        }
        resolver.head = q->next;
        if (resolver.head == NULL)
            resolver.tail = NULL;
        pthread_mutex_unlock(&resolver.lock);

        if (!atomic_load(&q->abandoned)) {
            memset(&hints, 0, sizeof(hints));
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            /* Not AI_ADDRCONFIG: glibc ignores loopback addresses for
             * it, so a host with only loopback could resolve nothing. */
            hints.ai_flags = AI_NUMERICSERV | (q->passive ? AI_PASSIVE : 0);
            q->gai = getaddrinfo(q->host, q->port, &hints, &q->res);
            if (q->gai == EAI_SYSTEM)
                q->sys_errno = errno;
        }
        atomic_store_explicit(&q->done, 1, memory_order_release);
        /* Fails with EPIPE, harmlessly, if the asker is gone. */
        (void)send(q->wfd, "", 1, SEND_FLAGS);
        close(q->wfd);
        lookup_unref(q);
        pthread_mutex_lock(&resolver.lock);
    }
}

/* A child of fork(2) has none of its parent's helpers: forget them (and
 * the lookups they had, whose askers are not in the child either). */
static void
resolver_atfork_child(void)
{
    pthread_mutex_init(&resolver.lock, NULL);
    pthread_cond_init(&resolver.cond, NULL);
    resolver.head = resolver.tail = NULL;
    resolver.threads = resolver.idle = 0;
}

static void
resolver_atfork_once(void)
{
    pthread_atfork(NULL, NULL, resolver_atfork_child);
}

/* Start a helper with every signal blocked: signals are the loop
 * threads' business. */
static int
resolver_spawn(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_attr_t attr;
    pthread_t th;
    sigset_t all, old;
    int e;

    pthread_once(&once, resolver_atfork_once);
    if (pthread_attr_init(&attr) != 0)
        return EAGAIN;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&th, &attr, resolver_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return e;
}

static int
gai_errno(int gai, int sys_errno)
{
    switch (gai) {
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_SYSTEM:
        return sys_errno != 0 ? sys_errno : EIO;
    case EAI_FAMILY:
    case EAI_SERVICE:
    case EAI_SOCKTYPE:
    case EAI_BADFLAGS:
        return EINVAL;
    default:        /* EAI_NONAME, EAI_FAIL, EAI_NODATA... */
        return EADDRNOTAVAIL;
    }
}

/* Resolve host on a helper thread, parking until the answer or deadline. */
static int
resolve_name(const char *host, int port, int passive, int64_t deadline,
    struct addrs *out)
{
    struct lookup *q;
    int sv[2], err = 0, e = 0;
    int64_t ms;

    if (deadline == NOBLOCK) {
        errno = ETIMEDOUT;        /* a lookup always takes a while */
        return -1;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL || (q->host = strdup(host)) == NULL) {
        free(q);
        errno = ENOMEM;
        return -1;
    }
#ifdef SOCK_CLOEXEC
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
#else
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
#endif
        err = errno;
        goto fail;
    }
    if (set_flags(sv[0]) != 0 || set_flags(sv[1]) != 0) {
        err = errno;
        close(sv[0]);
        close(sv[1]);
        goto fail;
    }
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        setsockopt(sv[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
    }
#endif
    snprintf(q->port, sizeof(q->port), "%d", port);
    q->passive = passive;
    q->wfd = sv[1];
    atomic_init(&q->refs, 2);
    atomic_init(&q->abandoned, 0);
    atomic_init(&q->done, 0);

    pthread_mutex_lock(&resolver.lock);
    if (resolver.idle == 0 && resolver.threads < RESOLVE_THREADS) {
        e = resolver_spawn();
        if (e == 0)
            resolver.threads++;
        else if (resolver.threads > 0)
            e = 0;      /* the helpers there are will get to it */
    }
    if (e != 0) {
        pthread_mutex_unlock(&resolver.lock);
        close(sv[0]);
        close(sv[1]);
        err = e;
        goto fail;
    }
    q->next = NULL;
    if (resolver.tail != NULL)
        resolver.tail->next = q;
    else
        resolver.head = q;
    resolver.tail = q;
    pthread_cond_signal(&resolver.cond);
    pthread_mutex_unlock(&resolver.lock);

    if (left_ms(deadline, &ms) != 0 ||
        diesel_fd_wait(sv[0], DIESEL_READ, ms) < 0) {
        err = errno;
    } else if (!atomic_load_explicit(&q->done, memory_order_acquire)) {
        err = EIO;
    } else if (q->gai != 0) {
        err = gai_errno(q->gai, q->sys_errno);
    } else {
        out->n = 0;
        for (struct addrinfo *ai = q->res; ai != NULL && out->n < MAX_ADDRS;
            ai = ai->ai_next) {
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                ai->ai_addrlen > sizeof(out->ss[0]))
                continue;
            memcpy(&out->ss[out->n], ai->ai_addr, ai->ai_addrlen);
            out->len[out->n++] = (socklen_t)ai->ai_addrlen;
        }
        if (out->n == 0)
            err = EADDRNOTAVAIL;
    }
    if (err != 0)
        atomic_store(&q->abandoned, 1);
    diesel_fd_close(sv[0]);
    lookup_unref(q);
    errno = err;
    return err != 0 ? -1 : 0;
fail:
    free(q->host);
    free(q);
    errno = err;
    return -1;
}

static void
add_inet(struct addrs *a, int family, const void *host, int port)
{
    struct sockaddr_storage *ss = &a->ss[a->n];

    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        memcpy(&in->sin_addr, host, sizeof(in->sin_addr));
        a->len[a->n] = sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        memcpy(&in6->sin6_addr, host, sizeof(in6->sin6_addr));
        a->len[a->n] = sizeof(*in6);
    }
    a->n++;
}

/* The socket addresses p names, looking a name up if need be. */
static int
resolve(const struct parsed *p, int passive, int64_t deadline,
    struct addrs *out)
{
    struct addrinfo hints, *res;
    struct in_addr v4;
    int e;

    out->n = 0;
    if (p->unix_path) {
        memcpy(&out->ss[0], &p->sun, sizeof(p->sun));
        out->len[0] = sizeof(p->sun);
        out->n = 1;
        return 0;
    }
    if (p->host[0] == '\0') {
        v4.s_addr = htonl(passive ? INADDR_ANY : INADDR_LOOPBACK);
        add_inet(out, AF_INET, &v4, p->port);
        return 0;
    }
    if (strcmp(p->host, "localhost") == 0) {
        v4.s_addr = htonl(INADDR_LOOPBACK);
        add_inet(out, AF_INET, &v4, p->port);
        if (!passive)
            add_inet(out, AF_INET6, &in6addr_loopback, p->port);
        return 0;
    }
    /* Numeric: no lookup, so no blocking (this also parses a v6 scope). */
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = p->bracketed ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    e = getaddrinfo(p->host, NULL, &hints, &res);
    if (e == 0) {
        memcpy(&out->ss[0], res->ai_addr, res->ai_addrlen);
        out->len[0] = (socklen_t)res->ai_addrlen;
        out->n = 1;
        freeaddrinfo(res);
        if (out->ss[0].ss_family == AF_INET)
            ((struct sockaddr_in *)&out->ss[0])->sin_port =
                htons((uint16_t)p->port);
        else
            ((struct sockaddr_in6 *)&out->ss[0])->sin6_port =
                htons((uint16_t)p->port);
        return 0;
    }
    if (p->bracketed) {
        errno = EINVAL;         /* brackets hold a numeric IPv6 address */
        return -1;
    }
    return resolve_name(p->host, p->port, passive, deadline, out);
}

int
diesel_resolve(const char *name, struct sockaddr_storage *addrs, int n,
    int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running("diesel_resolve");
    struct parsed p;
    struct addrs a;
    size_t len;
    int i;

    if (t == NULL)
        return -1;
    if (name == NULL || addrs == NULL || n < 1 || timeout_ms < -1) {
        errno = EINVAL;
        return -1;
    }
    if (t->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    /* A host as diesel_conn_connect takes it, without the port: the
     * brackets around an IPv6 address may stay or go. */
    memset(&p, 0, sizeof(p));
    len = strlen(name);
    if (len > 0 && name[0] == '[') {
        if (len < 3 || name[len - 1] != ']') {
            errno = EINVAL;
            return -1;
        }
        p.bracketed = 1;
        name++;
        len -= 2;
    } else if (memchr(name, ':', len) != NULL) {
        p.bracketed = 1;        /* no name has a colon: an IPv6 address */
    }
    if (len == 0 || len >= sizeof(p.host) || memchr(name, '/', len) != NULL) {
        errno = EINVAL;
        return -1;
    }
    memcpy(p.host, name, len);
    if (resolve(&p, 0, diesel__conn_deadline(timeout_ms), &a) != 0)
        return -1;
    for (i = 0; i < a.n && i < n; i++) {
        memset(&addrs[i], 0, sizeof(addrs[i]));
        memcpy(&addrs[i], &a.ss[i], a.len[i]);
    }
    return i;
}

/* ---- Connecting ---------------------------------------------------------- */

static int
connect_one(const struct sockaddr_storage *ss, socklen_t len,
    int64_t deadline)
{
    int fd, err = 0, backoff = 1;
    socklen_t el = sizeof(err);
    int64_t ms;

    fd = socket_nb(ss->ss_family);
    if (fd < 0)
        return -1;
    for (;;) {
        if (connect(fd, (const struct sockaddr *)ss, len) == 0)
            return fd;
        if (errno == EINPROGRESS || errno == EINTR)
            break;
        if (errno != EAGAIN || ss->ss_family != AF_UNIX)
            goto fail;
        /* A UNIX listener with a full queue: the connect did not start
         * and nothing signals when to retry.  Poll it, gently. */
        if (left_ms(deadline, &ms) != 0)
            goto fail;
        if (ms == 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (diesel_sleep(ms < 0 || ms > backoff ? backoff : ms) != 0)
            goto fail;
        if (backoff < 100)
            backoff *= 2;
    }
    if (left_ms(deadline, &ms) != 0 ||
        diesel_fd_wait(fd, DIESEL_WRITE, ms) < 0)
        goto fail;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        goto fail;
    if (err != 0) {
        errno = err;
        goto fail;
    }
    return fd;
fail:
    close_keep_errno(fd);
    return -1;
}

struct diesel_conn *
diesel_conn_connect(const char *addr, int64_t timeout_ms)
{
    struct diesel__task *t = diesel__running("diesel_conn_connect");
    struct diesel_conn *c;
    struct parsed p;
    struct addrs a;
    int64_t deadline;
    int fd = -1, err = ECONNREFUSED, i;

    if (t == NULL)
        return NULL;
    if (timeout_ms < -1) {
        errno = EINVAL;
        return NULL;
    }
    if (t->cancelled) {
        errno = ECANCELED;
        return NULL;
    }
    deadline = diesel__conn_deadline(timeout_ms);
    if (parse(addr, &p) != 0)
        return NULL;
    if (!p.unix_path && p.port == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (resolve(&p, 0, deadline, &a) != 0)
        return NULL;
    /* Each address in turn, within the one deadline. */
    for (i = 0; i < a.n; i++) {
        fd = connect_one(&a.ss[i], a.len[i], deadline);
        if (fd >= 0)
            break;
        err = errno;
        if (err == ETIMEDOUT || err == ECANCELED)
            break;
    }
    if (fd < 0) {
        errno = err;
        return NULL;
    }
    no_delay(fd, a.ss[i].ss_family);
    c = diesel__conn_wrap(fd, NULL);
    if (c == NULL)
        close_keep_errno(fd);
    return c;
}

/* ---- Servers ------------------------------------------------------------- */

struct diesel_server {
    int fd;                       /* the listener, -1 once closed */
    diesel_conn_fn handler;
    void *arg;
    int max_conns;                /* 0: no limit */
    int active;                   /* connections running */
    int refs;                     /* the owner's, the acceptor's, and one
                                     per connection running */
    int port;                     /* bound TCP port, or 0 */
    int64_t acceptor_id;
    struct diesel__task *acceptor; /* while it runs */
    unsigned acceptor_parked : 1; /* pausing: a connection ending wakes it */
    unsigned closed : 1;          /* diesel_server_close was called */
    unsigned warned : 1;          /* this shortage was logged */
    int64_t warned_at;            /* monotonic ns of the last WARNING */
    char *path;                   /* UNIX socket to unlink, or NULL */
    char address[DIESEL__ADDR_MAX];
};

static void
server_unref(struct diesel_server *s)
{
    if (--s->refs > 0)
        return;
    free(s->path);
    free(s);
}

static int
conn_main(void *arg)
{
    struct diesel_conn *c = arg;
    struct diesel_server *s = c->server;
    int status = s->handler(c, s->arg);

    diesel_conn_close(c);
    s->active--;
    if (s->acceptor_parked)
        diesel__task_wake(s->acceptor, 0);
    server_unref(s);
    return status;
}

/* Spawn the green thread of a new connection; on failure fd is closed. */
static int
start_conn(struct diesel_server *s, int fd, struct sockaddr_storage *ss,
    socklen_t sl)
{
    char peer[DIESEL__ADDR_MAX], name[DIESEL__ADDR_MAX + 8];
    struct diesel_conn *c;
    int err;

    if (ss->ss_family == AF_UNIX)
        snprintf(peer, sizeof(peer), "%s", s->address);
    else if (diesel__addr_format(ss, sl, fd, peer, sizeof(peer)) != 0)
        strcpy(peer, "?");
    no_delay(fd, ss->ss_family);
    c = diesel__conn_wrap(fd, peer);
    if (c == NULL) {
        err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    c->server = s;
    snprintf(name, sizeof(name), "conn %s", peer);
    if (diesel__task_spawn(NULL, NULL, name, conn_main, c, 0) < 0) {
        err = errno;
        diesel_conn_close(c);
        errno = err;
        return -1;
    }
    s->active++;
    s->refs++;
    return 0;
}

/* Park the acceptor until a connection ends, or for ms (-1: no limit). */
static int
acceptor_pause(struct diesel_server *s, struct diesel__task *t,
    const char *what, int64_t ms)
{
    int err;

    t->wait.kind = DIESEL__WAIT_OTHER;
    t->wait.what = what;
    s->acceptor_parked = 1;
    err = diesel__task_park(t, ms < 0 ? -1 : diesel__now_ns() + ms * 1000000);
    s->acceptor_parked = 0;
    return err == ETIMEDOUT ? 0 : err;
}

/* Out of descriptors or memory: say so now and then, and pause. */
static int
acceptor_backoff(struct diesel_server *s, struct diesel__task *t,
    int64_t *backoff, int err)
{
    int64_t now = diesel__now_ns();

    if (*backoff == 0) {
        if (s->warned_at == 0 || now - s->warned_at >= WARN_EVERY_NS) {
            struct rlimit rl;
            char lim[32] = "?";

            if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
                rl.rlim_cur != RLIM_INFINITY)
                snprintf(lim, sizeof(lim), "%llu",
                    (unsigned long long)rl.rlim_cur);
            diesel_log("diesel", DIESEL_LOG_WARNING,
                "accept on %s: %s (%d connections open, RLIMIT_NOFILE %s): "
                "new connections wait in the listen queue; retrying in "
                "%d ms to %d ms", s->address, strerror(err), s->active, lim,
                BACKOFF_MIN_MS, BACKOFF_MAX_MS);
            s->warned_at = now;
            s->warned = 1;
        }
        *backoff = BACKOFF_MIN_MS;
    } else if ((*backoff *= 2) > BACKOFF_MAX_MS) {
        *backoff = BACKOFF_MAX_MS;
    }
    return acceptor_pause(s, t, "accept: out of resources", *backoff);
}

static int
accept_main(void *arg)
{
    struct diesel_server *s = arg;
    struct diesel__task *t = diesel__current;
    int64_t backoff = 0;          /* ms, while out of resources */
    unsigned batch = 0;

    s->acceptor = t;
    while (!s->closed && !t->cancelled) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd, err;

        if (s->max_conns > 0 && s->active >= s->max_conns) {
            if (acceptor_pause(s, t, "accept: max_conns", -1) != 0)
                break;
            continue;
        }
        fd = accept_nb(s->fd, &ss, &sl);
        if (fd >= 0) {
            if (start_conn(s, fd, &ss, sl) == 0) {
                if (s->warned)
                    diesel_log("diesel", DIESEL_LOG_INFO,
                        "accept on %s: accepting again", s->address);
                s->warned = 0;
                backoff = 0;
                /* A flood of connections must not starve the others. */
                if (++batch % ACCEPT_BATCH == 0 && diesel_task_yield() != 0)
                    goto out;
                continue;
            }
            err = errno;
            diesel_log("diesel", DIESEL_LOG_ERROR,
                "accept on %s: cannot start a green thread for a new "
                "connection, dropped it: %s", s->address, strerror(err));
            if (acceptor_backoff(s, t, &backoff, err) != 0)
                break;
            continue;
        }
        switch (err = errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            if (diesel_fd_wait(s->fd, DIESEL_READ, -1) < 0)
                goto out;       /* cancelled, or the listener closed */
            continue;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:             /* refused by a firewall rule */
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            if (acceptor_backoff(s, t, &backoff, err) != 0)
                goto out;
            continue;
        default:
            if (!s->closed)
                diesel_log("diesel", DIESEL_LOG_ERROR,
                    "accept on %s: %s: no longer accepting", s->address,
                    strerror(err));
            goto out;
        }
    }
out:
    s->acceptor = NULL;
    server_unref(s);
    return 0;
}

/* A UNIX socket at path that nothing listens on any more. */
static int
stale_socket(const struct sockaddr_un *sun)
{
    struct stat st;
    int fd, stale = 0, err = errno;

    if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        (fd = socket_nb(AF_UNIX)) >= 0) {
        stale = connect(fd, (const struct sockaddr *)sun,
            sizeof(*sun)) != 0 && errno == ECONNREFUSED;
        close(fd);
    }
    errno = err;
    return stale;
}

/* DIESEL_SERVER_REUSEPORT on fd: DIESEL_REUSEPORT=0 in the environment
 * refuses it as a system that does not balance would, so that a program's
 * fallback can be tried where it would not be needed. */
static int
reuseport(int fd)
{
    const char *env = getenv("DIESEL_REUSEPORT");

    if (env != NULL && strcmp(env, "0") == 0) {
        errno = ENOTSUP;
        return -1;
    }
    return diesel__platform_reuseport(fd);
}

static int
listen_one(struct diesel_server *s, const struct sockaddr_storage *ss,
    socklen_t len, int flags)
{
    int fd, one = 1;

    fd = socket_nb(ss->ss_family);
    if (fd < 0)
        return -1;
    if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
        if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
            if (errno != EADDRINUSE || !stale_socket(sun) ||
                unlink(sun->sun_path) != 0 ||
                bind(fd, (const struct sockaddr *)ss, len) != 0)
                goto fail;
        }
        if ((s->path = strdup(sun->sun_path)) == NULL)
            goto fail_unlink;
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* "[::]:80" means IPv6 only, so that "0.0.0.0:80" can be bound
         * beside it, the same on every system. */
        if (ss->ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if ((flags & DIESEL_SERVER_REUSEPORT) && reuseport(fd) != 0)
            goto fail;
        if (bind(fd, (const struct sockaddr *)ss, len) != 0)
            goto fail;
    }
    if (listen(fd, SOMAXCONN) != 0)
        goto fail_unlink;
    s->fd = fd;
    return 0;
fail_unlink:
    if (ss->ss_family == AF_UNIX) {
        int err = errno;
        unlink(((const struct sockaddr_un *)ss)->sun_path);
        free(s->path);
        s->path = NULL;
        errno = err;
    }
fail:
    close_keep_errno(fd);
    return -1;
}

struct diesel_server *
diesel_server_listen(const char *addr, diesel_conn_fn handler, void *arg,
    int max_conns)
{
    return diesel_server_listen_flags(addr, handler, arg, max_conns, 0);
}

struct diesel_server *
diesel_server_listen_flags(const char *addr, diesel_conn_fn handler,
    void *arg, int max_conns, int flags)
{
    struct diesel__task *t = diesel__running("diesel_server_listen");
    struct diesel_server *s;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct parsed p;
    struct addrs a;
    char name[DIESEL__ADDR_MAX + 8];  /* the spawn cuts it */
    int err = 0;

    if (t == NULL)
        return NULL;
    if (handler == NULL || max_conns < 0 ||
        (flags & ~DIESEL_SERVER_REUSEPORT) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (t->cancelled) {
        errno = ECANCELED;
        return NULL;
    }
    if (parse(addr, &p) != 0 || resolve(&p, 1, -1, &a) != 0)
        return NULL;
    /* A UNIX socket's path names one socket: there is no port to share. */
    if ((flags & DIESEL_SERVER_REUSEPORT) && a.n > 0 &&
        a.ss[0].ss_family == AF_UNIX) {
        errno = EINVAL;
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->fd = -1;
    for (int i = 0; i < a.n && s->fd < 0; i++) {
        if (listen_one(s, &a.ss[i], a.len[i], flags) != 0)
            err = errno;
    }
    if (s->fd < 0) {
        free(s);
        errno = err;
        return NULL;
    }
    if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (s->path != NULL)
        snprintf(s->address, sizeof(s->address), "unix:%s", s->path);
    else if (getsockname(s->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        diesel__addr_format(&ss, sl, -1, s->address,
        sizeof(s->address)) != 0)
        snprintf(s->address, sizeof(s->address), "%s", addr);
    s->handler = handler;
    s->arg = arg;
    s->max_conns = max_conns;
    s->refs = 2;                  /* the owner's and the acceptor's */
    snprintf(name, sizeof(name), "accept %s", s->address);
    s->acceptor_id = diesel__task_spawn(NULL, NULL, name, accept_main, s, 0);
    if (s->acceptor_id < 0) {
        err = errno;
        diesel_fd_close(s->fd);
        if (s->path != NULL)
            unlink(s->path);
        free(s->path);
        free(s);
        errno = err;
        return NULL;
    }
    return s;
}

int
diesel_server_port(const struct diesel_server *s)
{
    return s != NULL ? s->port : 0;
}

const char *
diesel_server_address(const struct diesel_server *s)
{
    return s != NULL ? s->address : NULL;
}

int
diesel_server_close(struct diesel_server *s)
{
    struct diesel__task *acceptor = s != NULL ? s->acceptor : NULL;
    int r;

    if (s == NULL || s->closed) {
        errno = EINVAL;
        return -1;
    }
    s->closed = 1;
    /* The acceptor may not have run yet: find it by id. */
    if (acceptor == NULL && diesel__loop != NULL)
        acceptor = diesel__task_find(diesel__loop, s->acceptor_id);
    if (acceptor != NULL)
        diesel__task_cancel(acceptor);
    r = diesel_fd_close(s->fd);
    s->fd = -1;
    if (s->path != NULL)
        unlink(s->path);
    server_unref(s);
    return r;
}
