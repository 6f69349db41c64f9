/*
 * helpers.c: see tests.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"
#include "internal.h"
#include "console.h"

int
t_run(diesel_task_fn fn, void *arg)
{
    return diesel_loop_run(fn, arg);
}

int64_t
t_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
t_count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    }
    return n;
}

const char *
t_dir(void)
{
    const char *d = getenv("DIESEL_TEST_DIR");

    return d != NULL ? d : "test";
}

int
t_spawn_capture(char *const argv[], char *buf, size_t size, int timeout_ms)
{
    char path[512];
    int p[2], status;
    size_t n = 0;
    pid_t pid;
    int64_t end = t_now_ms() + timeout_ms;

    snprintf(path, sizeof(path), "%s/%s", t_dir(), argv[0]);
    if (pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pf = { p[0], POLLIN, 0 };
        int64_t left = end - t_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&pf, 1, (int)left) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        r = read(p[0], buf + n, n + 1 < size ? size - n - 1 : 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(p[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

static int cap_pipe[2] = { -1, -1 };
static int cap_saved_fd = 2;
static char cap_buf[65536];

void
t_log_capture_start(void)
{
    cap_saved_fd = diesel__log_fd();
    if (pipe(cap_pipe) != 0)
        abort();
    fcntl(cap_pipe[0], F_SETFL, O_NONBLOCK);
    diesel_log_fd_set(cap_pipe[1]);
}

const char *
t_log_capture_end(void)
{
    size_t n = 0;
    ssize_t r;

    diesel_log_fd_set(cap_saved_fd);
    close(cap_pipe[1]);
    while (n < sizeof(cap_buf) - 1 &&
        (r = read(cap_pipe[0], cap_buf + n, sizeof(cap_buf) - 1 - n)) > 0)
        n += (size_t)r;
    cap_buf[n] = '\0';
    close(cap_pipe[0]);
    cap_pipe[0] = cap_pipe[1] = -1;
    return cap_buf;
}

int
t_source_line(const char *file, const char *name)
{
    const char *base = strrchr(file, '/');
    char path[512], marker[128], buf[4096];
    int line = 0, found = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", t_dir(), base ? base + 1 : file);
    snprintf(marker, sizeof(marker), "/* line: %s */", name);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    for (int n = 1; fgets(buf, sizeof(buf), f) != NULL; n++) {
        if (strstr(buf, marker) != NULL) {
            line = n;
            found++;
        }
    }
    fclose(f);
    ck_assert_msg(found == 1, "%s: %d lines carry %s", path, found, marker);
    return line;
}

void
t_add_test(TCase *tc, const TTest *tt, int sig, int exit_value, int start,
    int end)
{
    const char *only = getenv("DIESEL_TEST_ONLY");
    size_t len = strlen(tt->name);

    if (only != NULL && *only != '\0') {
        const char *p = only;

        for (;;) {
            const char *comma = strchr(p, ',');
            size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);

            if (n == len && strncmp(p, tt->name, n) == 0)
                break;
            if (comma == NULL)
                return;
            p = comma + 1;
        }
    }
    /* The function itself: tests.h's macro of that name is this one. */
    (_tcase_add_test)(tc, tt, sig, exit_value, start, end);
}

/* ---- Console commands, run in process ------------------------------------ */

int
t_count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* out's reply, copied, and out finished. */
static struct t_reply
reply_of(struct diesel_console_out *out, int rc)
{
    struct t_reply r;

    r.rc = rc;
    r.len = out->len;
    r.out = malloc(out->len + 1);
    ck_assert_ptr_nonnull(r.out);
    if (out->len > 0)
        memcpy(r.out, out->buf, out->len);
    r.out[out->len] = '\0';
    snprintf(r.err, sizeof(r.err), "%s", out->has_err ? out->err : "");
    diesel__console_out_fini(out);
    return r;
}

struct t_reply
t_console(const char *line)
{
    struct diesel_console_out o;
    char buf[1024];
    int quit, rc;

    diesel__console_out_init(&o);
    snprintf(buf, sizeof(buf), "%s", line);
    rc = diesel__console_execute(&o, buf, strlen(buf), &quit);
    return reply_of(&o, rc);
}

struct t_reply
t_console_fn(diesel_console_fn fn, const char *line, size_t limit, int json)
{
    struct diesel_console_out out;
    char copy[1024], *argv[16], *save = NULL, *word;
    int argc = 0, rc;

    diesel__console_out_init(&out);
    if (limit != 0)
        out.limit = limit;
    out.json = json;
    snprintf(copy, sizeof(copy), "%s", line);
    for (word = strtok_r(copy, " ", &save); word != NULL && argc < 15;
        word = strtok_r(NULL, " ", &save))
        argv[argc++] = word;
    argv[argc] = NULL;
    ck_assert_int_gt(argc, 0);
    rc = fn(&out, argc, argv, NULL);
    if (rc == 0)
        ck_assert_msg(!out.has_err, "%s: OK with an error: %s", line,
            out.err);
    else
        ck_assert_msg(out.has_err, "%s: failed without a message", line);
    return reply_of(&out, rc);
}

void
t_reply_ok(const struct t_reply *r, const char *line)
{
    ck_assert_msg(r->rc == 0, "%s: ERR %s", line, r->err);
}

void
t_reply_err(struct t_reply *r, const char *line, const char *want,
    int exact)
{
    ck_assert_msg(r->rc == -1, "%s: OK, not ERR:\n%s", line, r->out);
    if (exact)
        ck_assert_msg(strcmp(r->err, want) == 0, "%s: ERR '%s', not '%s'",
            line, r->err, want);
    else
        ck_assert_msg(strstr(r->err, want) != NULL, "%s: ERR '%s' lacks "
            "'%s'", line, r->err, want);
    free(r->out);
    r->out = NULL;
}

char *
t_console_ok(const char *line)
{
    struct t_reply r = t_console(line);

    t_reply_ok(&r, line);
    return r.out;
}

void
t_console_err(const char *line, const char *want)
{
    struct t_reply r = t_console(line);

    t_reply_err(&r, line, want, 0);
}

/* ---- A small JSON checker: one value, strict syntax, valid UTF-8 ------ */

static const char *jv(const char *p, int depth);

static const char *
jws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *
jstring(const char *p)
{
    const unsigned char *s = (const unsigned char *)p;

    if (*s++ != '"')
        return NULL;
    while (*s != '"') {
        if (*s < 0x20)
            return NULL;
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i])
                        return NULL;
                }
                s += 5;
            } else if (*s && strchr("\"\\/bfnrt", *s)) {
                s++;
            } else {
                return NULL;
            }
        } else if (*s < 0x80) {
            s++;
        } else {
            int k = *s >= 0xf0 ? 3 : *s >= 0xe0 ? 2 : *s >= 0xc2 ? 1 : -1;
            if (k < 0 || *s > 0xf4)
                return NULL;
            for (int i = 1; i <= k; i++) {
                if ((s[i] & 0xc0) != 0x80)
                    return NULL;
            }
            s += k + 1;
        }
    }
    return (const char *)s + 1;
}

static const char *
jnumber(const char *p)
{
    const char *s = p;

    if (*s == '-')
        s++;
    if (*s < '0' || *s > '9')
        return NULL;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return NULL;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return s;
}

static const char *
jv(const char *p, int depth)
{
    if (depth > 64 || p == NULL)
        return NULL;
    p = jws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int obj = *p == '{';

        p = jws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (obj) {
                p = jstring(jws(p));
                if (p == NULL || *(p = jws(p)) != ':')
                    return NULL;
                p++;
            }
            p = jv(p, depth + 1);
            if (p == NULL)
                return NULL;
            p = jws(p);
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    if (*p == '"')
        return jstring(p);
    if (strncmp(p, "true", 4) == 0)
        return p + 4;
    if (strncmp(p, "false", 5) == 0)
        return p + 5;
    if (strncmp(p, "null", 4) == 0)
        return p + 4;
    return jnumber(p);
}

int
t_json_valid(const char *text)
{
    const char *end = jv(text, 0);

    return end != NULL && *jws(end) == '\0';
}

double
t_json_num(const char *text, const char *key)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(text, pat);
    if (p == NULL || p[strlen(pat)] == 'n')
        return -1;
    return strtod(p + strlen(pat), NULL);
}

int
t_json_value(const char *text, const char *key, char *buf, size_t size)
{
    char pat[64];
    const char *p, *end;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(text, pat);
    if (p == NULL)
        return -1;
    p = jws(p + strlen(pat));
    end = jv(p, 0);
    if (end == NULL || (size_t)(end - p) >= size)
        return -1;
    memcpy(buf, p, (size_t)(end - p));
    buf[end - p] = '\0';
    return 0;
}

