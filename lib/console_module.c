/*
 * console_module.c: the console's load, unload and modules: the seed's
 * "import your own modules", as far as C goes.
 *
 *   >>> load /srv/mods/conns.so
 *   loaded module conns from /srv/mods/conns.so: 1 command, 0 variables
 *   >>> modules
 *   NAME   PATH                 COMMANDS  VARIABLES  BY
 *   conns  /srv/mods/conns.so   1         0          pid 4242, uid 0
 *   >>> unload conns
 *   unloaded module conns: 1 command and 0 variables removed
 *
 * A module is a shared object that exports a struct diesel_module_info
 * named diesel_module (DIESEL_MODULE in diesel.h): its interface version,
 * its name, and init and fini.  init is given a struct diesel_module_api,
 * every library call a module may make, so that the module needs no
 * symbol of the service (a service linked without -rdynamic exports
 * none) and the version says whether the two agree.
 *
 * Who may load what, before dlopen runs a byte of the file:
 *   - the session's peer is root or the service's user (an attach checks
 *     it already; a session on a socket of unknown peer is refused);
 *   - the path is absolute, with no . or .. component;
 *   - the file and every directory above it are owned by root or by the
 *     service's effective uid and writable by their owner only (sshd's
 *     StrictModes rule), and none of them is a symbolic link.  Each
 *     directory is opened relative to the one above it (O_NOFOLLOW), and
 *     the file is loaded through the last one's descriptor (Linux:
 *     /proc/self/fd/N/NAME), so no component can be swapped between the
 *     check and the load; and since only root and the service's user can
 *     write to any of them, only they could swap the file itself.
 * Every load, refusal and unload is logged at WARNING with the path, the
 * module's name and the peer's pid and uid.
 *
 * A module's commands run with the module held (console.c): `unload`
 * refuses a busy module, takes its commands and variables out of the
 * table, calls its fini, and only then dlclose()s it.  While its command
 * runs, the green thread's record names the module, so a crash report
 * says whose code crashed (crash.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backtrace.h"
#include "console.h"
#include "internal.h"

#define MODULE_NAME_MAX 64

struct diesel_module {
    struct diesel_module *next;   /* the next older module */
    char name[MODULE_NAME_MAX];   /* its diesel_module.name */
    char path[PATH_MAX];          /* as given to load */
    void *handle;                 /* dlopen's */
    int dirfd;                    /* the checked directory: the link map
                                     names the module through it (Linux),
                                     so it stays open while it is loaded */
    const struct diesel_module_info *info;
    struct diesel_module_api api; /* what its init was given: it may keep
                                     the pointer */
    int busy;                     /* its commands running now (atomic) */
    unsigned ncmds, nvars;        /* what it registered */
    long by_pid, by_uid;          /* the peer that loaded it */
};

/* The loaded modules, newest first.  Loads and unloads are console
 * commands, but sessions may run on loops of several OS threads. */
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static struct diesel_module *modules;

/* ---- For console.c and crash.c ------------------------------------------ */

void
diesel__module_hold(struct diesel_module *m)
{
    __atomic_add_fetch(&m->busy, 1, __ATOMIC_ACQ_REL);
}

void
diesel__module_release(struct diesel_module *m)
{
    __atomic_sub_fetch(&m->busy, 1, __ATOMIC_ACQ_REL);
}

int
diesel__module_busy(const struct diesel_module *m)
{
    return __atomic_load_n(&m->busy, __ATOMIC_ACQUIRE);
}

const struct diesel_module *
diesel__module_enter_run(struct diesel_module *m)
{
    struct diesel__task *t = diesel__current;
    const struct diesel_module *was = NULL;

    if (t != NULL) {
        was = t->module;
        t->module = m;
    }
    return was;
}

void
diesel__module_leave(struct diesel_module *m,
    const struct diesel_module *was)
{
    if (diesel__current != NULL)
        diesel__current->module = was;
    diesel__module_release(m);
}

const char *
diesel__module_name(const struct diesel_module *m, const char **path)
{
    *path = m->path;
    return m->name;
}

int
diesel__console_peer_trusted(struct diesel_console_out *out,
    const char *what)
{
    if (out->peer_uid < 0)
        return diesel_console_error(out, "%s: refused: this session's peer "
            "is not known (only an attach, the program's terminal or a "
            "pipe may %s)", what, what);
    if (out->peer_uid != 0 && out->peer_uid != (long)geteuid())
        return diesel_console_error(out, "%s: refused: this session's peer "
            "(uid %ld) is neither root nor this service's user (uid %u)",
            what, out->peer_uid, (unsigned)geteuid());
    return 0;
}

/* ---- What a module is given ---------------------------------------------- */

static int
m_command(struct diesel_module *m, const char *name, const char *help,
    diesel_console_fn fn, void *arg)
{
    if (diesel__console_register_owned(name, help, fn, arg, 0, m) != 0)
        return -1;
    m->ncmds++;
    return 0;
}

static int
m_command_json(struct diesel_module *m, const char *name, const char *help,
    diesel_console_fn fn, void *arg)
{
    if (diesel__console_register_owned(name, help, fn, arg,
        DIESEL__CMD_JSON, m) != 0)
        return -1;
    m->ncmds++;
    return 0;
}

static int
m_var(struct diesel_module *m, const char *name, int type, void *p,
    size_t size, int writable, int64_t min, int64_t max)
{
    if (diesel__console_var_owned(name, type, p, size, writable, min, max,
        m) != 0)
        return -1;
    m->nvars++;
    return 0;
}

static int
m_var_int(struct diesel_module *m, const char *name, int64_t *p,
    int writable)
{
    return m_var(m, name, 0, p, sizeof(*p), writable, INT64_MIN, INT64_MAX);
}

static int
m_var_int_range(struct diesel_module *m, const char *name, int64_t *p,
    int64_t min, int64_t max)
{
    return m_var(m, name, 0, p, sizeof(*p), 1, min, max);
}

static int
m_var_double(struct diesel_module *m, const char *name, double *p,
    int writable)
{
    return m_var(m, name, 1, p, sizeof(*p), writable, INT64_MIN, INT64_MAX);
}

static int
m_var_string(struct diesel_module *m, const char *name, char *buf,
    size_t size, int writable)
{
    return m_var(m, name, 2, buf, size, writable, INT64_MIN, INT64_MAX);
}

static void
m_log(const char *logger, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diesel_vlog(logger, level, fmt, ap);
    va_end(ap);
}

static void *
m_symbol(const char *name)
{
    struct diesel__symtab *tab = diesel__sym_open();
    struct diesel__sym_named s;
    void *p = NULL;

    if (tab == NULL)
        return NULL;
    if (diesel__sym_named(tab, name, &s) == 0)
        p = (void *)s.addr;
    diesel__sym_close(tab);
    if (p == NULL)
        errno = ENOENT;
    return p;
}

static int
m_conn_buffered(const struct diesel_conn *c, size_t *in, size_t *out)
{
    if (c == NULL) {
        errno = EINVAL;
        return -1;
    }
    *in = c->len;
    *out = c->wlen;
    return 0;
}

static void
api_init(struct diesel_module_api *a, struct diesel_module *m)
{
    memset(a, 0, sizeof(*a));
    a->version = DIESEL_MODULE_VERSION;
    a->size = sizeof(*a);
    a->module = m;
    a->command = m_command;
    a->command_json = m_command_json;
    a->var_int = m_var_int;
    a->var_double = m_var_double;
    a->var_string = m_var_string;
    a->console_printf = diesel_console_printf;
    a->console_error = diesel_console_error;
    a->console_json = diesel_console_json;
    a->log_write = m_log;
    a->table_create = diesel_console_table_create;
    a->table_cell = diesel_console_table_cell;
    a->table_row = diesel_console_table_row;
    a->table_print = diesel_console_table_print;
    a->table_destroy = diesel_console_table_destroy;
    a->symbol = m_symbol;
    a->conn_buffered = m_conn_buffered;
    a->var_int_range = m_var_int_range;
}

/* ---- The path checks ----------------------------------------------------- */

/* Owned by root or by us, writable by the owner only. */
static int
bad_owner_or_mode(const struct stat *st, const char *what, const char *at,
    char *why, size_t size)
{
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        snprintf(why, size, "%s %s belongs to uid %u, neither root nor this "
            "service's user (uid %u)", what, at, (unsigned)st->st_uid,
            (unsigned)geteuid());
        return 1;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, size, "%s %s is writable by its group or others "
            "(mode %04o): a module and every directory above it must be "
            "writable by their owner only", what, at,
            (unsigned)(st->st_mode & 07777));
        return 1;
    }
    return 0;
}

/* Why component at (of path, up to end) could not be opened. */
static void
open_failed(int dfd, const char *name, const char *at, char *why,
    size_t size)
{
    struct stat st;
    int err = errno;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        snprintf(why, size, "%s is a symbolic link: give the path of the "
            "file itself", at);
    else
        snprintf(why, size, "%s: %s", at, strerror(err));
}

/*
 * Walk path from / with the checks above.  Returns the last directory's
 * descriptor, with the file's name in path's own buffer (*leaf), or -1
 * and why.
 */
static int
open_checked(const char *path, const char **leaf, char *why, size_t size)
{
    char at[PATH_MAX];
    const char *p, *slash;
    struct stat st;
    int dfd, fd;

    if (path[0] != '/') {
        snprintf(why, size, "%s is not an absolute path", path);
        return -1;
    }
    if (strlen(path) >= sizeof(at)) {
        snprintf(why, size, "path too long");
        return -1;
    }
    dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &st) != 0) {
        snprintf(why, size, "/: %s", strerror(errno));
        goto fail;
    }
    if (bad_owner_or_mode(&st, "directory", "/", why, size))
        goto fail;
    for (p = path + 1; ; p = slash + 1) {
        char name[NAME_MAX + 1];
        size_t n;

        slash = strchr(p, '/');
        n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        memcpy(at, path, (size_t)(p - path) + n);
        at[(p - path) + n] = '\0';
        if (n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(why, size, "%s: empty, . or .. component in the path "
                "(give it as realpath(1) prints it)", path);
            goto fail;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (slash == NULL) {
            *leaf = p;
            break;
        }
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
            O_CLOEXEC);
        if (fd < 0) {
            open_failed(dfd, name, at, why, size);
            goto fail;
        }
        close(dfd);
        dfd = fd;
        if (fstat(dfd, &st) != 0) {
            snprintf(why, size, "%s: %s", at, strerror(errno));
            goto fail;
        }
        if (bad_owner_or_mode(&st, "directory", at, why, size))
            goto fail;
    }
    /* The file: a regular one, checked as the directories are.
     * O_NONBLOCK: a FIFO put there must not hang the loop. */
    fd = openat(dfd, *leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        open_failed(dfd, *leaf, path, why, size);
        goto fail;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, size, "%s is not a regular file", path);
        close(fd);
        goto fail;
    }
    if (bad_owner_or_mode(&st, "file", path, why, size)) {
        close(fd);
        goto fail;
    }
    close(fd);
    return dfd;
fail:
    if (dfd >= 0)
        close(dfd);
    return -1;
}

/* ---- load, unload, modules ----------------------------------------------- */

static int
valid_name(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
            s[n] == '_' || s[n] == '-'))
            return 0;
    return n > 0 && n < MODULE_NAME_MAX;
}

static struct diesel_module *
find(const char *name)
{
    struct diesel_module *m;

    for (m = modules; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            break;
    return m;
}

/* The ERR reply and the log line of a refused load. */
static int
refuse(struct diesel_console_out *out, const char *path, const char *why)
{
    char epath[256];
    size_t at = 0;

    if (diesel__escape(epath, sizeof(epath) - 4, &at, path, strlen(path),
        DIESEL__ESC_TEXT) < strlen(path))
        memcpy(epath + at, "...", 4);
    diesel_log("diesel", DIESEL_LOG_WARNING, "console: load of %s refused "
        "(peer pid %ld, uid %ld): %s", epath, out->peer_pid, out->peer_uid,
        why);
    return diesel_console_error(out, "load: %s", why);
}

static void
unload_now(struct diesel_module *m)
{
    if (m->info->fini != NULL) {
        const struct diesel_module *was = diesel__module_enter_run(m);

        m->info->fini();
        if (diesel__current != NULL)
            diesel__current->module = was;
    }
    dlclose(m->handle);
    close(m->dirfd);
    free(m);
    /* The signal handlers' symbol table follows the modules. */
    diesel__sym_prepare();
}

static int
cmd_load(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    const struct diesel_module_info *info;
    struct diesel_module *m = NULL;
    const struct diesel_module *was;
    const char *leaf = NULL;
    char why[PATH_MAX + 256];
    int rc;

    (void)arg;
    if (argc < 2)
        return diesel_console_error(out, "usage: load PATH [ARGS]");
    if (diesel__console_peer_trusted(out, "load") != 0) {
        /* The reply says why; the log says it too. */
        snprintf(why, sizeof(why), "%s", out->err + strlen("load: "));
        return refuse(out, argv[1], why);
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return diesel_console_error(out, "load: out of memory");
    m->dirfd = -1;
    if (strlen(argv[1]) >= sizeof(m->path)) {
        free(m);
        return refuse(out, argv[1], "path too long");
    }
    strcpy(m->path, argv[1]);
    if ((m->dirfd = open_checked(m->path, &leaf, why, sizeof(why))) < 0)
        goto refused;
    m->handle = diesel__platform_dlopen_at(m->dirfd, leaf, m->path, why,
        sizeof(why));
    if (m->handle == NULL)
        goto refused;
    info = dlsym(m->handle, "diesel_module");
    if (info == NULL) {
        snprintf(why, sizeof(why), "%s exports no diesel_module: define it "
            "with DIESEL_MODULE (see diesel_console(3))", m->path);
        goto refused;
    }
    if (info->version != DIESEL_MODULE_VERSION) {
        snprintf(why, sizeof(why), "%s was built for module interface "
            "version %u; this service speaks version %u: rebuild it with "
            "this service's diesel.h", m->path, (unsigned)info->version,
            (unsigned)DIESEL_MODULE_VERSION);
        goto refused;
    }
    if (!valid_name(info->name) || info->init == NULL) {
        snprintf(why, sizeof(why), "%s: its diesel_module has no valid "
            "name ([a-z0-9_-]+) or no init", m->path);
        goto refused;
    }
    pthread_mutex_lock(&mod_lock);
    if (find(info->name) != NULL) {
        pthread_mutex_unlock(&mod_lock);
        snprintf(why, sizeof(why), "a module named %s is already loaded: "
            "unload %s first", info->name, info->name);
        goto refused;
    }
    m->info = info;
    strcpy(m->name, info->name);
    m->by_pid = out->peer_pid;
    m->by_uid = out->peer_uid;
    api_init(&m->api, m);
    /* In the list before init runs: its name is taken, and a crash in
     * init is named. */
    m->next = modules;
    modules = m;
    pthread_mutex_unlock(&mod_lock);

    diesel__module_hold(m);
    was = diesel__module_enter_run(m);
    rc = info->init(&m->api, argc - 1, argv + 1, out);
    diesel__module_leave(m, was);
    if (rc != 0) {
        snprintf(why, sizeof(why), "module %s's init failed: %s", m->name,
            out->has_err ? out->err : "(it gave no reason)");
        pthread_mutex_lock(&mod_lock);
        for (struct diesel_module **p = &modules; *p != NULL;
            p = &(*p)->next)
            if (*p == m) {
                *p = m->next;
                break;
            }
        pthread_mutex_unlock(&mod_lock);
        (void)diesel__console_unregister_owned(m);
        dlclose(m->handle);
        close(m->dirfd);
        free(m);
        out->has_err = 0;
        return refuse(out, argv[1], why);
    }
    diesel__sym_prepare();
    diesel_log("diesel", DIESEL_LOG_WARNING, "console: loaded module %s "
        "from %s (peer pid %ld, uid %ld): %u command%s, %u variable%s",
        m->name, m->path, m->by_pid, m->by_uid, m->ncmds,
        m->ncmds == 1 ? "" : "s", m->nvars, m->nvars == 1 ? "" : "s");
    diesel_console_printf(out, "loaded module %s from %s: %u command%s, "
        "%u variable%s\n", m->name, m->path, m->ncmds,
        m->ncmds == 1 ? "" : "s", m->nvars, m->nvars == 1 ? "" : "s");
    return 0;
refused:
    if (m->handle != NULL)
        dlclose(m->handle);
    if (m->dirfd >= 0)
        close(m->dirfd);
    free(m);
    return refuse(out, argv[1], why);
}

static int
cmd_unload(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_module *m, **p;

    (void)arg;
    if (argc != 2)
        return diesel_console_error(out, "usage: unload NAME");
    if (diesel__console_peer_trusted(out, "unload") != 0)
        return -1;
    pthread_mutex_lock(&mod_lock);
    for (p = &modules; *p != NULL && strcmp((*p)->name, argv[1]) != 0;
        p = &(*p)->next)
        ;
    if ((m = *p) == NULL) {
        pthread_mutex_unlock(&mod_lock);
        return diesel_console_error(out, "unload: no module named %.64s "
            "(modules lists them)", argv[1]);
    }
    /* Its commands out of the table first: none can start after this. */
    if (diesel__console_unregister_owned(m) < 0) {
        pthread_mutex_unlock(&mod_lock);
        return diesel_console_error(out, "unload: module %s is busy: one "
            "of its commands is running; try again once it has returned",
            m->name);
    }
    *p = m->next;
    pthread_mutex_unlock(&mod_lock);
    diesel_log("diesel", DIESEL_LOG_WARNING, "console: unloaded module %s "
        "from %s (peer pid %ld, uid %ld): %u command%s and %u variable%s "
        "removed", m->name, m->path, out->peer_pid, out->peer_uid, m->ncmds,
        m->ncmds == 1 ? "" : "s", m->nvars, m->nvars == 1 ? "" : "s");
    diesel_console_printf(out, "unloaded module %s: %u command%s and %u "
        "variable%s removed\n", m->name, m->ncmds, m->ncmds == 1 ? "" : "s",
        m->nvars, m->nvars == 1 ? "" : "s");
    unload_now(m);
    return 0;
}

static int
cmd_modules(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    struct diesel_console_table *t = NULL;
    struct diesel_module *m;
    int json = diesel_console_json(out), n = 0, rc = 0;

    (void)argv;
    (void)arg;
    if (argc != 1)
        return diesel_console_error(out, "usage: modules [--json]");
    if (!json) {
        if ((t = diesel_console_table_create(5)) == NULL)
            return -1;
        diesel_console_table_cell(t, "NAME");
        diesel_console_table_cell(t, "PATH");
        diesel_console_table_cell(t, "COMMANDS");
        diesel_console_table_cell(t, "VARIABLES");
        diesel_console_table_cell(t, "LOADED BY");
        diesel_console_table_row(t);
    } else {
        diesel_console_printf(out, "[");
    }
    pthread_mutex_lock(&mod_lock);
    for (m = modules; m != NULL; m = m->next, n++) {
        if (json) {
            diesel_console_printf(out, "%s{\"name\":\"%s\",\"path\":",
                n ? "," : "", m->name);
            diesel__console_out_json_string(out, m->path);
            diesel_console_printf(out, ",\"commands\":%u,\"variables\":%u,"
                "\"by_pid\":%ld,\"by_uid\":%ld}", m->ncmds, m->nvars,
                m->by_pid, m->by_uid);
            continue;
        }
        if (diesel_console_table_cell(t, "%s", m->name) < 0 ||
            diesel_console_table_cell(t, "%s", m->path) < 0 ||
            diesel_console_table_cell(t, "%u", m->ncmds) < 0 ||
            diesel_console_table_cell(t, "%u", m->nvars) < 0 ||
            diesel_console_table_cell(t, "pid %ld, uid %ld", m->by_pid,
            m->by_uid) < 0 || diesel_console_table_row(t) < 0)
            rc = -1;
    }
    pthread_mutex_unlock(&mod_lock);
    if (json) {
        diesel_console_printf(out, "]\n");
    } else {
        if (rc == 0 && n == 0)
            diesel_console_printf(out, "no module loaded\n");
        else if (rc == 0)
            rc = diesel_console_table_print(t, out);
        diesel_console_table_destroy(t);
    }
    return rc;
}

void
diesel__console_module_register(void)
{
    static const struct diesel__builtin cmds[] = {
        { "load", "load PATH [ARGS]: load a module (a shared object) into "
          "this service; PATH absolute, the file and its directories "
          "writable by their owner (root or this service's user) only",
          cmd_load, DIESEL__CMD_NO_JSON },
        { "unload", "unload NAME: remove a module's commands and variables, "
          "then unload it", cmd_unload, DIESEL__CMD_NO_JSON },
        { "modules", "modules [--json]: the modules loaded, their commands "
          "and variables, who loaded them", cmd_modules, 0 },
    };

    diesel__console_builtins_add(cmds, sizeof(cmds) / sizeof(cmds[0]));
}
