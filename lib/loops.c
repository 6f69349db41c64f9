/*
 * loops.c: the process-wide registry of running loops, their names, and
 * the mailbox through which a console session on one loop has a command
 * run on another (issue 13: one console for every loop).
 *
 * Nothing here reads another loop's structures.  A session on loop A that
 * wants `tasks` of loop B posts a request to B's mailbox (a wake
 * descriptor that B's poll watches); B runs the very same built-in in a
 * green thread of its own, into a reply of its own, marks the request
 * done under the registry's lock and wakes A through A's reply
 * descriptor.  A waits with a deadline (the stuck threshold,
 * diesel_console_stuck_after): a loop that does not answer by then is
 * reported stuck, and the request is abandoned (B frees it if it ever
 * gets to it).  The only state shared between threads is the registry
 * and the requests, all under one mutex.
 *
 *   session on A                     loop B
 *   ------------                     ------
 *   post: lock, queue, wake B ---->  on_mail (handler): lock, take queue
 *   wait on reply fd                 spawn "console loop-request"
 *                                    fn(&req->out, argv)  (B's own state)
 *   <---- write reply fd ----------- lock, done, unlock
 *   lock: done? take reply : abandon
 *
 * A request abandoned before its loop took it is dropped, not run late.
 *
 * The mailbox also carries the console's attach requests while the loop
 * that installed the console is stuck: its signal handler, which can take
 * no lock, picks a turning loop from a signal-safe copy of the registry
 * (sig_slots), puts the request in a slot (att_slots) and writes that
 * loop's mailbox; on_mail attaches it there (console_attach.c).
 *
 * Every loop makes its mailbox at its start (one eventfd, or a pipe where
 * there is none), watched by its poll without counting as something
 * that can wake its green threads (the deadlock check ignores it).  Only
 * its own thread can add it to its poll, and a loop idle in poll could
 * not be told to do so later, when a second loop starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console.h"
#include "internal.h"

struct diesel__loopreq {
    struct diesel__loopreq *next;   /* in the target's queue */
    unsigned refs;                  /* the poster and the target */
    unsigned done : 1;              /* the reply is in out */
    unsigned abandoned : 1;         /* the poster gave up: no wake */
    int status;                     /* fn's: 0, or -1 (out->err) */
    int reply_w;                    /* the poster's wake descriptor */
    diesel_console_fn fn;
    void *arg;
    int argc;
    char **argv;                    /* one malloc'd block */
    char loop[DIESEL__NAME_MAX];    /* the target's name, for LOOP:ID */
    struct diesel_console_out out;  /* written by the target, read by the
                                       poster once done (under the lock) */
};

struct diesel__loopent {
    struct diesel__loopent *next;   /* the next started later */
    struct diesel_loop *loop;       /* dereferenced by its thread only */
    char name[DIESEL__NAME_MAX];
    int64_t tid;                    /* its OS thread, or -1 */
    pthread_t thread;               /* the same, for pthread_kill */
    uint64_t seq;                   /* start order */
    int mail[2];                    /* the mailbox: -1 until made */
    int mail_signalled;             /* a wake is in the descriptor */
    sigset_t mask;                  /* its thread's blocked signals when
                                       it started (set before it is in
                                       the registry) */
    struct diesel__loopreq *head, *tail; /* requests not taken yet */
    int sig;                        /* its slot in sig_slots, or -1 */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct diesel__loopent *reg_head;     /* in start order */
static unsigned reg_count;
static uint64_t reg_seq;

/*
 * The signal handler's view of the loops (console_stuck.c), which cannot
 * take reg_lock: a fixed array of slots, written under reg_lock by the
 * loops themselves, read with atomics.  A slot is in use while its loop
 * is not NULL (stored last at the start, first at the end); a loop that
 * ends waits for the handlers reading slots (sig_readers) before its
 * structure and mailbox can go.  The name is copied a byte at a time
 * between two counts (name_seq odd while it is rewritten), so that a
 * handler reads a whole name or says it could not.
 */
#define SIG_SLOTS 64

struct sigslot {
    struct diesel_loop *loop;       /* NULL: free */
    pthread_t thread;
    int64_t tid;
    sigset_t mask;                  /* its thread's blocked signals */
    int mail_w;                     /* its mailbox's write end, or -1 */
    unsigned name_seq;
    char name[DIESEL__NAME_MAX];
    int held;                       /* under reg_lock: taken, or freed
                                       while a handler may still read it */
};
static struct sigslot sig_slots[SIG_SLOTS];
static int sig_readers;             /* handlers reading the slots now */
static unsigned sig_hidden;         /* loops without a slot */

/*
 * Attach requests the handler routed to a turning loop (diesel__loops_route):
 * a few slots, filled by the handler, taken by the loop's on_mail.  A
 * loop that ends with one not taken puts it back on the console's
 * self-pipe, where it would have gone without the route.
 */
#define ATT_SLOTS 8
enum { ATT_FREE, ATT_FILLING, ATT_READY, ATT_TAKING };

struct attslot {
    int state;
    struct diesel_loop *to;
    int32_t pid, uid, code, nonce;
};
static struct attslot att_slots[ATT_SLOTS];

/* fork(2): the child has one thread, the forking one.  The slots of the
 * other threads' loops would route its requests to loops that no longer
 * run there (their mailboxes are the parent's): they go, and so do
 * routed requests and the count of handlers that were reading. */
static pthread_once_t sig_atfork_once = PTHREAD_ONCE_INIT;

static void
sig_atfork_child(void)
{
    struct diesel_loop *self = diesel__loop;

    for (int i = 0; i < SIG_SLOTS; i++) {
        if (__atomic_load_n(&sig_slots[i].loop, __ATOMIC_RELAXED) != self ||
            self == NULL) {
            __atomic_store_n(&sig_slots[i].loop, NULL, __ATOMIC_RELAXED);
            sig_slots[i].held = 0;
        }
    }
    for (int i = 0; i < ATT_SLOTS; i++)
        __atomic_store_n(&att_slots[i].state, ATT_FREE, __ATOMIC_RELAXED);
    __atomic_store_n(&sig_readers, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sig_hidden, 0, __ATOMIC_RELAXED);
}

static void
sig_atfork(void)
{
    pthread_atfork(NULL, NULL, sig_atfork_child);
}

/* reg_lock held, on e's thread: e's name into its slot. */
static void
sig_name_set(const struct diesel__loopent *e)
{
    struct sigslot *s;

    if (e->sig < 0)
        return;
    s = &sig_slots[e->sig];
    __atomic_add_fetch(&s->name_seq, 1, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < sizeof(s->name); i++)
        __atomic_store_n(&s->name[i], e->name[i], __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->name_seq, 1, __ATOMIC_SEQ_CST);
}

/* reg_lock held, on e's thread: a slot for e, if one is free. */
static void
sig_claim(struct diesel__loopent *e)
{
    struct sigslot *s;

    e->sig = -1;
    for (int i = 0; i < SIG_SLOTS; i++) {
        if (!sig_slots[i].held) {
            e->sig = i;
            break;
        }
    }
    if (e->sig < 0) {
        __atomic_add_fetch(&sig_hidden, 1, __ATOMIC_RELAXED);
        return;
    }
    s = &sig_slots[e->sig];
    s->held = 1;
    s->thread = e->thread;
    s->tid = e->tid;
    s->mask = e->mask;
    __atomic_store_n(&s->mail_w, -1, __ATOMIC_RELAXED);
    sig_name_set(e);
    __atomic_store_n(&s->loop, e->loop, __ATOMIC_RELEASE);
}

/* On e's thread, reg_lock not held: e's slot freed, once no handler reads
 * the slots any more. */
static void
sig_release(struct diesel__loopent *e)
{
    pthread_mutex_lock(&reg_lock);
    if (e->sig >= 0)
        __atomic_store_n(&sig_slots[e->sig].loop, NULL, __ATOMIC_SEQ_CST);
    else
        __atomic_sub_fetch(&sig_hidden, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&reg_lock);
    /* A handler on another thread may still look at it (never one on
     * this thread: it returned before we run again). */
    while (__atomic_load_n(&sig_readers, __ATOMIC_SEQ_CST) > 0)
        sched_yield();
    if (e->sig >= 0) {
        pthread_mutex_lock(&reg_lock);
        sig_slots[e->sig].held = 0;
        pthread_mutex_unlock(&reg_lock);
    }
}

/* The slot's name into name (DIESEL__NAME_MAX), or "?" if it was being
 * rewritten all along. */
static void
sig_name_get(struct sigslot *s, char *name)
{
    for (int tries = 0; tries < 8; tries++) {
        unsigned a = __atomic_load_n(&s->name_seq, __ATOMIC_SEQ_CST);

        for (size_t i = 0; i < sizeof(s->name); i++)
            name[i] = __atomic_load_n(&s->name[i], __ATOMIC_RELAXED);
        name[sizeof(s->name) - 1] = '\0';
        if ((a & 1) == 0 &&
            __atomic_load_n(&s->name_seq, __ATOMIC_SEQ_CST) == a)
            return;
    }
    name[0] = '?';
    name[1] = '\0';
}

int
diesel__loops_route(struct diesel_loop *stuck, int32_t pid, int32_t uid,
    int32_t code, int32_t nonce)
{
    struct diesel_loop *to = NULL;
    int w = -1, routed = 0;
    uint64_t v = 1;

    __atomic_add_fetch(&sig_readers, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < SIG_SLOTS && to == NULL; i++) {
        struct diesel_loop *l = __atomic_load_n(&sig_slots[i].loop,
            __ATOMIC_SEQ_CST);

        if (l == NULL || l == stuck ||
            (w = __atomic_load_n(&sig_slots[i].mail_w,
            __ATOMIC_ACQUIRE)) < 0 || diesel__stuck_for(l) >= 0)
            continue;
        to = l;
    }
    for (int i = 0; to != NULL && i < ATT_SLOTS && !routed; i++) {
        struct attslot *a = &att_slots[i];
        int free_slot = ATT_FREE;

        if (!__atomic_compare_exchange_n(&a->state, &free_slot, ATT_FILLING,
            0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&a->to, to, __ATOMIC_RELAXED);
        __atomic_store_n(&a->pid, pid, __ATOMIC_RELAXED);
        __atomic_store_n(&a->uid, uid, __ATOMIC_RELAXED);
        __atomic_store_n(&a->code, code, __ATOMIC_RELAXED);
        __atomic_store_n(&a->nonce, nonce, __ATOMIC_RELAXED);
        __atomic_store_n(&a->state, ATT_READY, __ATOMIC_RELEASE);
        /* An eventfd or a pipe with room: the loop wakes (a full pipe
         * holds wakes enough already). */
        if (write(w, &v, sizeof(v)) < 0) {
            /* See above. */
        }
        routed = 1;
    }
    __atomic_sub_fetch(&sig_readers, 1, __ATOMIC_SEQ_CST);
    return routed;
}

unsigned
diesel__loops_view(int signo, void (*fn)(void *,
    const struct diesel__loop_view *), void *arg, unsigned *hidden)
{
    unsigned n = 0;

    __atomic_add_fetch(&sig_readers, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < SIG_SLOTS; i++) {
        struct sigslot *s = &sig_slots[i];
        struct diesel__loop_view v;

        v.loop = __atomic_load_n(&s->loop, __ATOMIC_ACQUIRE);
        if (v.loop == NULL)
            continue;
        n++;
        if (fn == NULL)
            continue;
        v.thread = s->thread;
        v.tid = s->tid;
        v.blocks = signo > 0 && sigismember(&s->mask, signo) == 1;
        sig_name_get(s, v.name);
        fn(arg, &v);
    }
    if (hidden != NULL)
        *hidden = __atomic_load_n(&sig_hidden, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&sig_readers, 1, __ATOMIC_SEQ_CST);
    return n;
}

/* On l's thread: the attach requests routed to l, attached here. */
static void
att_take(struct diesel_loop *l)
{
    for (int i = 0; i < ATT_SLOTS; i++) {
        struct attslot *a = &att_slots[i];
        int ready = ATT_READY;
        int32_t pid, uid, code, nonce;

        if (__atomic_load_n(&a->state, __ATOMIC_ACQUIRE) != ATT_READY ||
            __atomic_load_n(&a->to, __ATOMIC_RELAXED) != l ||
            !__atomic_compare_exchange_n(&a->state, &ready, ATT_TAKING, 0,
            __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        pid = __atomic_load_n(&a->pid, __ATOMIC_RELAXED);
        uid = __atomic_load_n(&a->uid, __ATOMIC_RELAXED);
        code = __atomic_load_n(&a->code, __ATOMIC_RELAXED);
        nonce = __atomic_load_n(&a->nonce, __ATOMIC_RELAXED);
        __atomic_store_n(&a->state, ATT_FREE, __ATOMIC_RELEASE);
        if (l != NULL)
            diesel__console_attach_record(l, pid, uid, code, nonce);
        else
            diesel__console_requeue(pid, uid, code, nonce);
    }
}

/* ---- Requests ------------------------------------------------------------- */

/* reg_lock held. */
static void
req_unref(struct diesel__loopreq *r)
{
    if (--r->refs > 0)
        return;
    diesel__console_out_fini(&r->out);
    free(r->argv);
    free(r);
}

/* reg_lock held: the reply is in, wake the poster unless it left. */
static void
req_finish(struct diesel__loopreq *r)
{
    uint64_t v = 1;

    r->done = 1;
    if (!r->abandoned && write(r->reply_w, &v, sizeof(v)) < 0) {
        /* An eventfd or an empty pipe is never full: nothing to do. */
    }
    req_unref(r);
}

static int
req_main(void *arg)
{
    struct diesel__loopreq *r = arg;
    int rc;

    errno = 0;
    rc = r->fn(&r->out, r->argc, r->argv, r->arg);
    if (rc != 0 && !r->out.has_err)
        diesel_console_error(&r->out, "%s", errno != 0 ? strerror(errno) :
            "failed");
    pthread_mutex_lock(&reg_lock);
    r->status = rc != 0 ? -1 : 0;
    req_finish(r);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

/* The mailbox is readable: run what was posted, each in a green thread. */
static void
on_mail(struct diesel_loop *l, int fd, int events)
{
    struct diesel__loopent *e = l->loops;
    struct diesel__loopreq *q, *next;
    uint64_t v;
    int64_t id;

    (void)events;
    pthread_mutex_lock(&reg_lock);
    if (read(fd, &v, sizeof(v)) < 0) {
        /* Drained already: the queue says what there is. */
    }
    e->mail_signalled = 0;
    q = e->head;
    e->head = e->tail = NULL;
    pthread_mutex_unlock(&reg_lock);
    /* An attach the console's handler sent here, its loop being stuck. */
    att_take(l);
    for (; q != NULL; q = next) {
        next = q->next;
        pthread_mutex_lock(&reg_lock);
        if (q->abandoned) {
            /* The asker gave up (it reported this loop stuck): a command
             * run now would surprise the operator, a cancel above all. */
            q->status = -1;
            req_finish(q);
            pthread_mutex_unlock(&reg_lock);
            continue;
        }
        pthread_mutex_unlock(&reg_lock);
        id = diesel__task_spawn(NULL, NULL, "console loop-request", req_main,
            q, 0);
        if (id < 0) {
            pthread_mutex_lock(&reg_lock);
            diesel_console_error(&q->out, "loop %s cannot spawn a green "
                "thread for the command: %s", e->name, strerror(errno));
            q->status = -1;
            req_finish(q);
            pthread_mutex_unlock(&reg_lock);
            continue;
        }
        /* Like a session, it must not keep the loop alive. */
        diesel__task_set_daemon(diesel__task_find(l, id));
    }
}

/* On the loop's own thread, reg_lock not held: make and watch e's
 * mailbox.  0, or -1 with errno. */
static int
mail_open(struct diesel_loop *l, struct diesel__loopent *e)
{
    int fds[2];

    if (e->mail[0] >= 0)
        return 0;
    if (diesel__platform_wakefd(fds) != 0)
        return -1;
    if (diesel__loop_handler_add(l, fds[0], on_mail, 0) != 0) {
        int err = errno;

        close(fds[0]);
        if (fds[1] != fds[0])
            close(fds[1]);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&reg_lock);
    e->mail[0] = fds[0];
    e->mail[1] = fds[1];
    if (e->sig >= 0)
        __atomic_store_n(&sig_slots[e->sig].mail_w, fds[1],
            __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

/* ---- The registry ---------------------------------------------------------- */

static struct diesel__loopent *
find_name(const char *name)
{
    for (struct diesel__loopent *e = reg_head; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* reg_lock held: "main" if no running loop has it, else the first free
 * "loop-K", K from 2. */
static void
default_name(char *buf, size_t size)
{
    if (find_name("main") == NULL) {
        snprintf(buf, size, "main");
        return;
    }
    for (unsigned k = 2;; k++) {
        snprintf(buf, size, "loop-%u", k);
        if (find_name(buf) == NULL)
            return;
    }
}

int
diesel__loops_start(struct diesel_loop *l)
{
    struct diesel__loopent *e, **p;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return -1;
    pthread_once(&sig_atfork_once, sig_atfork);
    e->loop = l;
    e->tid = diesel__platform_thread_id();
    e->thread = pthread_self();
    e->mail[0] = e->mail[1] = -1;
    /* Another thread's mask cannot be read: the loop says its own, so
     * that a session knows at once that its report cannot come. */
    sigemptyset(&e->mask);
    pthread_sigmask(SIG_BLOCK, NULL, &e->mask);
    pthread_mutex_lock(&reg_lock);
    default_name(e->name, sizeof(e->name));
    e->seq = ++reg_seq;
    for (p = &reg_head; *p != NULL; p = &(*p)->next)
        ;
    *p = e;
    reg_count++;
    sig_claim(e);
    pthread_mutex_unlock(&reg_lock);
    l->loops = e;
    if (mail_open(l, e) != 0)
        diesel_log("diesel", DIESEL_LOG_ERROR, "loop %s has no mailbox "
            "(%s): the console cannot reach it from another loop", e->name,
            strerror(errno));
    return 0;
}

void
diesel__loops_end(struct diesel_loop *l)
{
    struct diesel__loopent *e = l->loops, **p;
    struct diesel__loopreq *q, *next;

    if (e == NULL)
        return;
    /* Out of the handler's sight first: no attach is routed here once
     * this returns; one routed before and not taken goes back to the
     * console's self-pipe. */
    sig_release(e);
    for (int i = 0; i < ATT_SLOTS; i++) {
        struct attslot *a = &att_slots[i];

        if (__atomic_load_n(&a->state, __ATOMIC_ACQUIRE) == ATT_READY &&
            __atomic_load_n(&a->to, __ATOMIC_RELAXED) == l)
            __atomic_store_n(&a->to, NULL, __ATOMIC_RELAXED);
    }
    att_take(NULL);
    if (e->mail[0] >= 0)
        diesel__loop_handler_del(l, e->mail[0]);
    pthread_mutex_lock(&reg_lock);
    for (p = &reg_head; *p != NULL; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            break;
        }
    }
    reg_count--;
    /* Requests that came too late: answered, not dropped. */
    for (q = e->head; q != NULL; q = next) {
        next = q->next;
        diesel_console_error(&q->out, "loop %s ended before it could run "
            "the command", e->name);
        q->status = -1;
        req_finish(q);
    }
    pthread_mutex_unlock(&reg_lock);
    if (e->mail[0] >= 0) {
        close(e->mail[0]);
        if (e->mail[1] != e->mail[0])
            close(e->mail[1]);
    }
    l->loops = NULL;
    free(e);
}

int
diesel_loop_name(const char *name)
{
    struct diesel_loop *l = diesel__loop;
    struct diesel__loopent *e, *other;
    size_t n;

    if (l == NULL || l->loops == NULL) {
        errno = EPERM;
        return -1;
    }
    n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n >= DIESEL__NAME_MAX) {
        errno = EINVAL;
        return -1;
    }
    /* One word, printable, without the ':' of LOOP:ID. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c <= ' ' || c >= 0x7f || c == ':' || c == '"' || c == '\\') {
            errno = EINVAL;
            return -1;
        }
    }
    e = l->loops;
    pthread_mutex_lock(&reg_lock);
    other = find_name(name);
    if (other != NULL && other != e) {
        pthread_mutex_unlock(&reg_lock);
        errno = EEXIST;
        return -1;
    }
    memcpy(e->name, name, n + 1);
    sig_name_set(e);
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

unsigned
diesel__loops_count(void)
{
    unsigned n;

    pthread_mutex_lock(&reg_lock);
    n = reg_count;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

void
diesel__loops_self(char *name, size_t size, int64_t *tid)
{
    struct diesel_loop *l = diesel__loop;

    pthread_mutex_lock(&reg_lock);
    snprintf(name, size, "%s", l != NULL && l->loops != NULL ?
        l->loops->name : "-");
    if (tid != NULL)
        *tid = l != NULL && l->loops != NULL ? l->loops->tid : -1;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- Running a command on every loop ------------------------------------ */

/* A copy of argv in one block. */
static char **
argv_copy(int argc, char **argv)
{
    size_t n = (size_t)(argc + 1) * sizeof(char *);
    char **v, *p;

    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    if ((v = malloc(n)) == NULL)
        return NULL;
    p = (char *)(v + argc + 1);
    for (int i = 0; i < argc; i++) {
        size_t k = strlen(argv[i]) + 1;

        memcpy(p, argv[i], k);
        v[i] = p;
        p += k;
    }
    v[argc] = NULL;
    return v;
}

int
diesel__loops_snapshot(struct diesel__loops_target **ts, size_t *n,
    const char *only)
{
    struct diesel__loops_target *t;
    size_t k = 0;

    *ts = NULL;
    *n = 0;
    pthread_mutex_lock(&reg_lock);
    t = calloc(reg_count > 0 ? reg_count : 1, sizeof(*t));
    if (t == NULL) {
        pthread_mutex_unlock(&reg_lock);
        errno = ENOMEM;
        return -1;
    }
    for (struct diesel__loopent *e = reg_head; e != NULL; e = e->next) {
        if (only != NULL && strcmp(only, e->name) != 0)
            continue;
        snprintf(t[k].name, sizeof(t[k].name), "%s", e->name);
        t[k].tid = e->tid;
        t[k].seq = e->seq;
        t[k].self = diesel__loop != NULL && e == diesel__loop->loops;
        t[k].reply[0] = t[k].reply[1] = -1;
        diesel__console_out_init(&t[k].out);
        k++;
    }
    pthread_mutex_unlock(&reg_lock);
    *ts = t;
    *n = k;
    return 0;
}

/* Post fn(argv) to the loop t names (by seq: a loop that ended and a new
 * one of the same name are told apart).  0, or -1 with t->out's error. */
static int
post(struct diesel__loops_target *t, const struct diesel_console_out *like,
    diesel_console_fn fn, void *arg, int argc, char **argv)
{
    struct diesel__loopreq *r;
    struct diesel__loopent *e;
    uint64_t v = 1;

    if ((r = calloc(1, sizeof(*r))) == NULL ||
        (r->argv = argv_copy(argc, argv)) == NULL) {
        free(r);
        diesel_console_error(&t->out, "%s", strerror(ENOMEM));
        return -1;
    }
    if (diesel__platform_wakefd(t->reply) != 0) {
        diesel_console_error(&t->out, "cannot make a reply descriptor: %s",
            strerror(errno));
        free(r->argv);
        free(r);
        t->reply[0] = t->reply[1] = -1;
        return -1;
    }
    r->refs = 2;
    r->reply_w = t->reply[1];
    r->fn = fn;
    r->arg = arg;
    r->argc = argc;
    diesel__console_out_init(&r->out);
    r->out.json = like->json;
    r->out.limit = like->limit;
    r->out.peer_pid = like->peer_pid;
    r->out.peer_uid = like->peer_uid;
    pthread_mutex_lock(&reg_lock);
    for (e = reg_head; e != NULL && e->seq != t->seq; e = e->next)
        ;
    if (e == NULL || e->mail[1] < 0) {
        r->refs = 1;
        req_unref(r);
        pthread_mutex_unlock(&reg_lock);
        diesel_console_error(&t->out, e == NULL ? "loop %s has ended" :
            "loop %s has no mailbox: it cannot be reached from another "
            "loop", t->name);
        diesel_fd_close(t->reply[0]);
        if (t->reply[1] != t->reply[0])
            close(t->reply[1]);
        t->reply[0] = t->reply[1] = -1;
        return -1;
    }
    memcpy(r->loop, t->name, sizeof(r->loop));
    r->out.loop = r->loop;
    if (e->tail != NULL)
        e->tail->next = r;
    else
        e->head = r;
    e->tail = r;
    if (!e->mail_signalled &&
        write(e->mail[1], &v, sizeof(v)) == (ssize_t)sizeof(v))
        e->mail_signalled = 1;
    pthread_mutex_unlock(&reg_lock);
    t->req = r;
    return 0;
}

/* Wait for t's reply until deadline (monotonic ns), and take it. */
static void
collect(struct diesel__loops_target *t, int64_t deadline)
{
    struct diesel__loopreq *r = t->req;
    int64_t left;
    int done;

    for (;;) {
        pthread_mutex_lock(&reg_lock);
        done = r->done;
        if (done) {
            /* The reply's buffer changes hands: the request keeps an
             * empty one to free. */
            t->status = r->status;
            free(t->out.buf);
            t->out.buf = r->out.buf;
            t->out.len = r->out.len;
            t->out.cap = r->out.cap;
            t->out.has_err = r->out.has_err;
            memcpy(t->out.err, r->out.err, sizeof(t->out.err));
            r->out.buf = NULL;
            r->out.len = r->out.cap = 0;
        } else if ((left = deadline - diesel__now_ns()) <= 0) {
            r->abandoned = 1;
            t->stuck = 1;
        }
        if (done || t->stuck) {
            req_unref(r);
            pthread_mutex_unlock(&reg_lock);
            break;
        }
        pthread_mutex_unlock(&reg_lock);
        left = deadline - diesel__now_ns();
        if (diesel_fd_wait(t->reply[0], DIESEL_READ,
            left > 0 ? (left + 999999) / 1000000 : 0) < 0 &&
            errno != ETIMEDOUT) {
            /* Cancelled: give up on this loop's answer. */
            pthread_mutex_lock(&reg_lock);
            if (!r->done) {
                r->abandoned = 1;
                req_unref(r);
                pthread_mutex_unlock(&reg_lock);
                diesel_console_error(&t->out, "cancelled while waiting for "
                    "loop %s", t->name);
                t->status = -1;
                break;
            }
            pthread_mutex_unlock(&reg_lock);
        }
    }
    t->req = NULL;
    diesel_fd_close(t->reply[0]);
    if (t->reply[1] != t->reply[0])
        close(t->reply[1]);
    t->reply[0] = t->reply[1] = -1;
}

#define REPORT_MAX 65536

/* t did not answer: its report, written by the console's signal handler
 * on its own thread (console_stuck.c), if the console is installed and
 * the thread takes the signal within the time given. */
static void
stuck_report(struct diesel__loops_target *t, int64_t wait_ns)
{
    struct diesel__loopent *e;
    int sv[2], signo = diesel__console_signo(), asked = -1;
    int64_t deadline = diesel__now_ns() + wait_ns, left;
    size_t len = 0;
    char *buf;

    if (signo == 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    fcntl(sv[1], F_SETFD, FD_CLOEXEC);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    /* Under the lock, the loop is still running: its thread exists. */
    pthread_mutex_lock(&reg_lock);
    for (e = reg_head; e != NULL && e->seq != t->seq; e = e->next)
        ;
    /* Only a loop that is stuck by the handler's own measure is
     * interrupted: one that is merely slow may be anywhere, in malloc
     * say, where the report's backtrace is no safe call. */
    if (e != NULL && sigismember(&e->mask, signo) == 1) {
        /* The signal would stay pending until the thread unblocks it:
         * said now, not after waiting for a report that cannot come. */
        char *why = malloc(128);

        pthread_mutex_unlock(&reg_lock);
        diesel_fd_close(sv[0]);
        close(sv[1]);
        if (why != NULL) {
            snprintf(why, 128, "  no report: loop %s blocks signal %d, "
                "the console's, on its thread\n", t->name, signo);
            t->report = why;
        }
        return;
    }
    if (e != NULL && diesel__stuck_for(e->loop) >= 0)
        asked = diesel__stuck_report_ask(e->thread, e->loop, sv[1], signo);
    pthread_mutex_unlock(&reg_lock);
    if (asked != 0 || (buf = malloc(REPORT_MAX)) == NULL) {
        if (asked == 0)
            diesel__stuck_report_done();
        diesel_fd_close(sv[0]);
        close(sv[1]);
        return;
    }
    for (;;) {
        ssize_t n = read(sv[0], buf + len, REPORT_MAX - 1 - len);

        if (n > 0) {
            len += (size_t)n;
            if (len < REPORT_MAX - 1)
                continue;
        }
        if (n == 0 || len >= REPORT_MAX - 1 ||
            (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
        left = deadline - diesel__now_ns();
        if (left <= 0 || (diesel_fd_wait(sv[0], DIESEL_READ,
            (left + 999999) / 1000000) < 0 && errno != ETIMEDOUT))
            break;
    }
    diesel__stuck_report_done();
    diesel_fd_close(sv[0]);
    close(sv[1]);
    if (len == 0) {
        free(buf);
        return;
    }
    buf[len] = '\0';
    t->report = buf;
}

void
diesel__loops_run(struct diesel__loops_target *ts, size_t n,
    const struct diesel_console_out *like, diesel_console_fn fn, void *arg,
    int argc, char **argv, int64_t extra_ns)
{
    int64_t deadline = diesel__now_ns() + diesel__stuck_after_ns() +
        extra_ns;

    for (size_t i = 0; i < n; i++) {
        ts[i].out.json = like->json;
        ts[i].out.limit = like->limit;
        ts[i].out.peer_pid = like->peer_pid;
        ts[i].out.peer_uid = like->peer_uid;
        ts[i].out.loop = ts[i].name;
        if (!ts[i].self && post(&ts[i], like, fn, arg, argc, argv) != 0)
            ts[i].status = -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ts[i].self) {
            errno = 0;
            ts[i].status = fn(&ts[i].out, argc, argv, arg) != 0 ? -1 : 0;
            if (ts[i].status != 0 && !ts[i].out.has_err)
                diesel_console_error(&ts[i].out, "%s", errno != 0 ?
                    strerror(errno) : "failed");
        }
    }
    for (size_t i = 0; i < n; i++)
        if (ts[i].req != NULL)
            collect(&ts[i], deadline);
    for (size_t i = 0; i < n; i++) {
        if (!ts[i].stuck)
            continue;
        stuck_report(&ts[i], diesel__stuck_after_ns() > 1000000000 ?
            diesel__stuck_after_ns() : 1000000000);
        /* In the log too, as a stuck console loop is: an operator
         * reading it afterwards learns that this loop stopped turning. */
        diesel_log("diesel", DIESEL_LOG_WARNING, "loop %s (thread %lld) "
            "is stuck: it did not answer the console of pid %ld%s",
            ts[i].name, (long long)ts[i].tid, like->peer_pid,
            ts[i].report != NULL && strncmp(ts[i].report, "  no report",
            11) != 0 ? "; its report went to that console" : "");
    }
}

void
diesel__loops_free(struct diesel__loops_target *ts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        diesel__console_out_fini(&ts[i].out);
        free(ts[i].report);
    }
    free(ts);
}
