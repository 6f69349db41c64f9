/*
 * console_out.c: a command's reply text, a buffer that grows up to a cap.
 *
 * A command that prints without end (a loop gone wrong, a table of a
 * million green threads) must not take the process's memory with it: past
 * limit bytes the text is cut and a note at its end says so.  The cut is
 * final for this reply, and printf then fails with ENOBUFS, so that a
 * command can stop early.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "internal.h"

#define OUT_INITIAL 1024
#define OUT_KEEP (64 * 1024)   /* buffers larger than this are freed
                                   between replies */
#define CUT_NOTE_ROOM 128      /* kept free below the limit for the note */

void
diesel__console_out_init(struct diesel_console_out *o)
{
    memset(o, 0, sizeof(*o));
    o->limit = DIESEL__CONSOLE_OUT_LIMIT;
    o->peer_pid = -1;
    o->peer_uid = -1;
}

void
diesel__console_out_reset(struct diesel_console_out *o)
{
    if (o->cap > OUT_KEEP) {
        free(o->buf);
        o->buf = NULL;
        o->cap = 0;
    }
    o->len = 0;
    o->json = 0;
    o->has_err = 0;
    o->err[0] = '\0';
}

void
diesel__console_out_fini(struct diesel_console_out *o)
{
    free(o->buf);
    o->buf = NULL;
    o->len = o->cap = 0;
}

/* The usable room: the limit less what the note needs. */
static size_t
room(const struct diesel_console_out *o)
{
    return o->limit > CUT_NOTE_ROOM ? o->limit - CUT_NOTE_ROOM : 0;
}

static int
reserve(struct diesel_console_out *o, size_t need)
{
    size_t cap;
    char *b;

    if (need <= o->cap)
        return 0;
    cap = o->cap ? o->cap : OUT_INITIAL;
    while (cap < need)
        cap *= 2;
    if (cap > o->limit)
        cap = o->limit;
    b = realloc(o->buf, cap);
    if (b == NULL) {
        errno = ENOMEM;
        return -1;
    }
    o->buf = b;
    o->cap = cap;
    return 0;
}

/* Past room(): fill up to it, then the note; len > room() from then on,
 * which is how a cut reply is told apart. */
static int
cut(struct diesel_console_out *o, const char *buf, size_t len)
{
    char note[CUT_NOTE_ROOM];
    size_t r = room(o), take = r - o->len;
    int n;

    if (take > len)
        take = len;
    if (reserve(o, o->limit) != 0)
        return -1;
    if (take > 0)
        memcpy(o->buf + o->len, buf, take);
    o->len += take;
    n = snprintf(note, sizeof(note), "%s[output cut at %zu bytes]\n",
        o->len > 0 && o->buf[o->len - 1] != '\n' ? "\n" : "", r);
    if (n > 0 && (size_t)n <= o->limit - o->len) {
        memcpy(o->buf + o->len, note, (size_t)n);
        o->len += (size_t)n;
    }
    if (o->len <= r)
        o->len = r + 1;   /* not reached with the note in: a marker */
    errno = ENOBUFS;
    return -1;
}

int
diesel__console_out_cut(const struct diesel_console_out *o)
{
    return o->len > room(o);
}

int
diesel__console_out_write(struct diesel_console_out *o, const char *buf,
    size_t len)
{
    if (o == NULL || (buf == NULL && len > 0)) {
        errno = EINVAL;
        return -1;
    }
    if (o->len > room(o)) {
        errno = ENOBUFS;
        return -1;
    }
    if (len > room(o) - o->len)
        return cut(o, buf, len);
    if (reserve(o, o->len + len) != 0)
        return -1;
    if (len > 0)
        memcpy(o->buf + o->len, buf, len);
    o->len += len;
    return len > INT32_MAX ? INT32_MAX : (int)len;
}

static int
vprint(struct diesel_console_out *o, const char *fmt, va_list ap)
{
    char small[512];
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return diesel__console_out_write(o, small, (size_t)n);
    /* Long: format straight into the buffer (or a temporary, near the
     * limit, so that the cut lands where it should). */
    if (o->len <= room(o) && (size_t)n <= room(o) - o->len) {
        if (reserve(o, o->len + (size_t)n + 1) != 0)
            return -1;
        vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
        o->len += (size_t)n;
        return n;
    } else {
        char *tmp = malloc((size_t)n + 1);
        int r;

        if (tmp == NULL)
            return -1;
        vsnprintf(tmp, (size_t)n + 1, fmt, ap);
        r = diesel__console_out_write(o, tmp, (size_t)n);
        free(tmp);
        return r;
    }
}

int
diesel_console_printf(struct diesel_console_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o == NULL || fmt == NULL) {
        errno = EINVAL;
        return -1;
    }
    va_start(ap, fmt);
    n = vprint(o, fmt, ap);
    va_end(ap);
    return n;
}

int
diesel_console_error(struct diesel_console_out *o, const char *fmt, ...)
{
    va_list ap;

    if (o == NULL || fmt == NULL) {
        errno = EINVAL;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof(o->err), fmt, ap);
    va_end(ap);
    /* One line: the status line must stay one line. */
    for (char *p = o->err; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    o->has_err = 1;
    return -1;
}

int
diesel_console_json(const struct diesel_console_out *o)
{
    return o != NULL && o->json;
}

int
diesel__console_out_json_string(struct diesel_console_out *o, const char *s)
{
    char buf[256];
    size_t n = strlen(s);
    int total = 2;

    if (diesel__console_out_write(o, "\"", 1) < 0)
        return -1;
    while (n > 0) {
        size_t at = 0, used = diesel__escape(buf, sizeof(buf), &at, s, n,
            DIESEL__ESC_JSON);

        if (diesel__console_out_write(o, buf, at) < 0)
            return -1;
        total += (int)at;
        s += used;
        n -= used;
    }
    if (diesel__console_out_write(o, "\"", 1) < 0)
        return -1;
    return total;
}

int
diesel__console_out_text(struct diesel_console_out *o, const char *s,
    size_t n)
{
    char buf[256];
    int total = 0;

    while (n > 0) {
        size_t at = 0, used = diesel__escape(buf, sizeof(buf), &at, s, n,
            DIESEL__ESC_TEXT);

        if (diesel__console_out_write(o, buf, at) < 0)
            return -1;
        total += (int)at;
        s += used;
        n -= used;
    }
    return total;
}
