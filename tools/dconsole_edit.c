/*
 * dconsole_edit.c: a small line editor for dconsole's >>> prompt.
 *
 * The approach is linenoise's: put the terminal in raw mode, keep the line
 * in a buffer, and after each key redraw the whole line with a handful of
 * VT100 sequences every terminal emulator knows (carriage return, erase to
 * end of line, cursor forward).  A line wider than the terminal scrolls
 * sideways instead of wrapping, which keeps the redraw to one row.
 *
 * Columns are counted with wcwidth(3) in a UTF-8 locale of the editor's
 * own (C.UTF-8, made with newlocale and used only around each call), so
 * that wide characters take two columns and combining marks none whatever
 * the user's locale says; the terminal is taken to be UTF-8.  The cursor
 * never stops inside a character, nor before a combining mark.
 *
 * Keys come through the loop: diesel_fd_wait(), then read(2) what is
 * there.  An escape sequence split across reads is reassembled with a
 * short timeout, so a lone Esc does not hang the editor.  Every key that
 * is ready is handled before the line is drawn again, so a paste costs a
 * redraw per read, not per byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "diesel.h"
#include "dconsole_edit.h"

/* How long the rest of an escape sequence or of a UTF-8 character may
 * take to arrive after its first byte. */
#define SEQ_TIMEOUT_MS 100

/* What getbyte() returns besides a byte. */
#define IN_EOF (-1)
#define IN_ERR (-2)
#define IN_TIMEOUT (-3)

/* Keys that arrive as escape sequences. */
enum {
    K_NONE = 256,       /* an unknown or incomplete sequence: ignored */
    K_LEFT,
    K_RIGHT,
    K_UP,
    K_DOWN,
    K_HOME,
    K_END,
    K_DELETE,
    K_WORD_LEFT,
    K_WORD_RIGHT,
    K_WORD_RUBOUT,
    K_WORD_DELETE,
};

struct lines {
    char **v;           /* malloc'd lines, oldest first */
    size_t n;           /* how many */
    size_t cap;         /* room in v */
};

struct dc_edit {
    int in;                         /* terminal we read keys from */
    int out;                        /* terminal we draw on */
    struct termios cooked;          /* its settings outside readline */
    int raw;                        /* raw mode is on */
    char buf[DC_EDIT_LINE_MAX + 1]; /* the line, NUL-terminated */
    size_t len;                     /* its length in bytes */
    size_t pos;                     /* the cursor, a byte offset */
    size_t scroll;                  /* the first byte shown */
    const char *prompt;             /* printed before the line */
    size_t prompt_cols;             /* its width */
    struct lines hist;              /* the history, oldest first */
    struct lines fresh;             /* lines added since the load */
    size_t hidx;                    /* the line shown: hist.n is the new one */
    char *scratch;                  /* the new line, while browsing */
    struct lines words;             /* what Tab completes */
    int tabs;                       /* Tabs pressed in a row */
    size_t cut;                     /* bytes dropped past the limit */
    int dirty;                      /* the line changed since drawn */
    locale_t utf8;                  /* for wcwidth, or (locale_t)0 */
    unsigned char q[4096];          /* bytes read but not handled yet */
    size_t qoff;                    /* next byte in q */
    size_t qlen;                    /* bytes left in q */
};

/* The editor whose terminal is raw, for the exit handler. */
static struct dc_edit *raw_editor;
static int atexit_done;

/* ---- Lists of lines ------------------------------------------------------- */

static int
lines_push(struct lines *l, const char *s, size_t max)
{
    char *copy = strdup(s);

    if (copy == NULL)
        return -1;
    if (l->n == max && max > 0) {
        free(l->v[0]);
        memmove(l->v, l->v + 1, (l->n - 1) * sizeof(*l->v));
        l->n--;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            free(copy);
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = copy;
    return 0;
}

static void
lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- The terminal --------------------------------------------------------- */

static void
restore_at_exit(void)
{
    if (raw_editor != NULL)
        tcsetattr(raw_editor->in, TCSADRAIN, &raw_editor->cooked);
}

static int
raw_on(struct dc_edit *e)
{
    struct termios raw;
    int r;

    if (tcgetattr(e->in, &e->cooked) != 0)
        return -1;
    raw = e->cooked;
    /* No break signal, no CR to NL, no parity check, no stripping of the
     * eighth bit, no flow control; no output processing; eight-bit chars;
     * no echo, no line buffering, no Ctrl-V, no signals from keys. */
    raw.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    raw.c_oflag &= ~(tcflag_t)OPOST;
    raw.c_cflag |= CS8;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (!atexit_done) {
        atexit(restore_at_exit);
        atexit_done = 1;
    }
    /* TCSADRAIN, not TCSAFLUSH: keys typed ahead while a reply printed
     * are kept, and handled as if typed now. */
    do
        r = tcsetattr(e->in, TCSADRAIN, &raw);
    while (r != 0 && errno == EINTR);
    if (r != 0)
        return -1;
    e->raw = 1;
    raw_editor = e;
    return 0;
}

static void
raw_off(struct dc_edit *e)
{
    int saved = errno;

    if (e->raw) {
        while (tcsetattr(e->in, TCSADRAIN, &e->cooked) != 0 &&
            errno == EINTR)
            ;
        e->raw = 0;
    }
    if (raw_editor == e)
        raw_editor = NULL;
    errno = saved;
}

static size_t
term_cols(const struct dc_edit *e)
{
    struct winsize ws;

    if (ioctl(e->out, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

static void
put(struct dc_edit *e, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(e->out, s, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN &&
                diesel_fd_wait(e->out, DIESEL_WRITE, -1) >= 0)
                continue;
            return;     /* the terminal is gone: reading will say so */
        }
        s += w;
        n -= (size_t)w;
    }
}

static void
puts_(struct dc_edit *e, const char *s)
{
    put(e, s, strlen(s));
}

static void
beep(struct dc_edit *e)
{
    put(e, "\a", 1);
}

/* ---- Input ---------------------------------------------------------------- */

static int
getbyte(struct dc_edit *e, int64_t timeout_ms)
{
    while (e->qlen == 0) {
        ssize_t n;

        if (diesel_fd_wait(e->in, DIESEL_READ, timeout_ms) < 0)
            return errno == ETIMEDOUT ? IN_TIMEOUT : IN_ERR;
        n = read(e->in, e->q, sizeof(e->q));
        if (n == 0)
            return IN_EOF;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            /* EIO: the terminal hung up. */
            return errno == EIO ? IN_EOF : IN_ERR;
        }
        e->qoff = 0;
        e->qlen = (size_t)n;
    }
    e->qlen--;
    return e->q[e->qoff++];
}

/* More input is ready: in the queue, or on the terminal now. */
static int
pending(const struct dc_edit *e)
{
    struct pollfd pf = { e->in, POLLIN, 0 };

    return e->qlen > 0 || (poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN));
}

/*
 * After an Esc: CSI sequences (Esc [ params final), SS3 ones (Esc O x),
 * and Meta keys (Esc x).  What is not known is swallowed whole.
 */
static int
read_escape(struct dc_edit *e)
{
    char params[16];
    size_t np = 0;
    int c = getbyte(e, SEQ_TIMEOUT_MS);

    if (c < 0)
        return c == IN_TIMEOUT ? K_NONE : c;
    switch (c) {
    case 'b': case 'B': return K_WORD_LEFT;
    case 'f': case 'F': return K_WORD_RIGHT;
    case 'd': case 'D': return K_WORD_DELETE;
    case 0x7f: case 8: return K_WORD_RUBOUT;
    case 'O':
        c = getbyte(e, SEQ_TIMEOUT_MS);
        switch (c) {
        case 'A': return K_UP;
        case 'B': return K_DOWN;
        case 'C': return K_RIGHT;
        case 'D': return K_LEFT;
        case 'H': return K_HOME;
        case 'F': return K_END;
        }
        return c < 0 && c != IN_TIMEOUT ? c : K_NONE;
    case '[':
        break;
    default:
        return K_NONE;
    }
    /* CSI: parameter bytes 0x30-0x3f, intermediates 0x20-0x2f, then a
     * final byte 0x40-0x7e. */
    for (;;) {
        c = getbyte(e, SEQ_TIMEOUT_MS);
        if (c < 0)
            return c == IN_TIMEOUT ? K_NONE : c;
        if (c >= 0x40 && c <= 0x7e)
            break;
        if (c < 0x20 || c > 0x3f)
            return K_NONE;
        if (np < sizeof(params) - 1)
            params[np++] = (char)c;
    }
    params[np] = '\0';
    /* Modified arrows: Esc [ 1 ; 5 D is Ctrl-Left, ; 3 is Alt-Left. */
    if (strcmp(params, "1;5") == 0 || strcmp(params, "1;3") == 0) {
        if (c == 'C')
            return K_WORD_RIGHT;
        if (c == 'D')
            return K_WORD_LEFT;
    }
    switch (c) {
    case 'A': return K_UP;
    case 'B': return K_DOWN;
    case 'C': return K_RIGHT;
    case 'D': return K_LEFT;
    case 'H': return K_HOME;
    case 'F': return K_END;
    case '~':
        if (strcmp(params, "1") == 0 || strcmp(params, "7") == 0)
            return K_HOME;
        if (strcmp(params, "4") == 0 || strcmp(params, "8") == 0)
            return K_END;
        if (strcmp(params, "3") == 0)
            return K_DELETE;
        break;
    }
    return K_NONE;
}

/* ---- The line ------------------------------------------------------------- */

static int
is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* The columns of the character that starts at s[i] (s ends at len): the
 * line holds printable ASCII and UTF-8 only.  What wcwidth does not know
 * (an invalid sequence, a code point it calls unprintable) is taken as
 * one column, as terminals draw a replacement character. */
static size_t
char_cols(const struct dc_edit *e, const char *s, size_t i, size_t len)
{
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    size_t need, k;
    locale_t old;
    int w;

    if (c < 0x80)
        return 1;
    if (is_cont(c) || e->utf8 == (locale_t)0)
        return is_cont(c) ? 0 : 1;
    need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    cp = c & (0x3fu >> (need - 1));
    for (k = 1; k < need; k++) {
        if (i + k >= len || !is_cont((unsigned char)s[i + k]))
            return 1;
        cp = cp << 6 | ((unsigned char)s[i + k] & 0x3f);
    }
    /* Only around the call: other green threads run on this OS thread
     * while the editor waits, with the program's own locale. */
    old = uselocale(e->utf8);
    w = wcwidth((wchar_t)cp);
    uselocale(old);
    return w < 0 ? 1 : (size_t)w;
}

/* The character at p takes no column (a combining mark). */
static int
zero_width(const struct dc_edit *e, size_t p)
{
    return p < e->len && !is_cont((unsigned char)e->buf[p]) &&
        char_cols(e, e->buf, p, e->len) == 0;
}

static size_t
prev_char(const struct dc_edit *e, size_t p)
{
    do {
        if (p == 0)
            return 0;
        p--;
        while (p > 0 && is_cont((unsigned char)e->buf[p]))
            p--;
    } while (zero_width(e, p));
    return p;
}

static size_t
next_char(const struct dc_edit *e, size_t p)
{
    if (p >= e->len)
        return e->len;
    do {
        p++;
        while (p < e->len && is_cont((unsigned char)e->buf[p]))
            p++;
    } while (zero_width(e, p));
    return p;
}

/* Columns taken by bytes [from, to) of s, counted no further than past
 * limit (SIZE_MAX: all). */
static size_t
cols_upto(const struct dc_edit *e, const char *s, size_t from, size_t to,
    size_t limit)
{
    size_t n = 0;

    for (size_t i = from; i < to && n <= limit; i++)
        n += char_cols(e, s, i, to);
    return n;
}

static size_t
cols(const struct dc_edit *e, const char *s, size_t from, size_t to)
{
    return cols_upto(e, s, from, to, SIZE_MAX);
}

/* Text goes in the columns between the prompt and the last one, which
 * stays free so that the terminal never wraps; the cursor may sit in it.
 * How many that is. */
static size_t
text_cols(const struct dc_edit *e)
{
    size_t width = term_cols(e);

    if (width < e->prompt_cols + 2)
        width = e->prompt_cols + 2;
    return width - e->prompt_cols - 1;
}

/*
 * Where the view starts.  It stays where it was while the cursor is
 * inside it; when the cursor leaves on the left the view starts at the
 * cursor, on the right it scrolls so that the cursor is at the right
 * edge.  Kept after every key, drawn or not, so that the view does not
 * depend on how the keys were split into reads.
 */
static void
scroll_to_cursor(struct dc_edit *e, size_t avail)
{
    size_t start = e->scroll < e->pos ? e->scroll : e->pos, n;

    while (start > 0 && is_cont((unsigned char)e->buf[start]))
        start--;
    if (cols_upto(e, e->buf, start, e->pos, avail) > avail) {
        start = e->pos;
        n = 0;
        while (start > 0) {
            size_t p = prev_char(e, start);
            size_t w = cols(e, e->buf, p, start);

            if (n + w > avail)
                break;
            n += w;
            start = p;
        }
    }
    e->scroll = start;
}

static void
refresh(struct dc_edit *e)
{
    char seq[DC_EDIT_LINE_MAX * 2 + 256];
    size_t start, end, n, col, used = 0, avail = text_cols(e);
    size_t plen = e->prompt_cols;
    size_t plen_bytes = strlen(e->prompt);

    scroll_to_cursor(e, avail);
    start = e->scroll;
    col = plen + cols(e, e->buf, start, e->pos);
    end = start;
    for (n = 0; end < e->len;) {
        size_t next = next_char(e, end);
        size_t w = cols(e, e->buf, end, next);

        if (n + w > avail)
            break;
        n += w;
        end = next;
    }
    seq[used++] = '\r';
    if (plen_bytes > sizeof(seq) / 4)
        plen_bytes = sizeof(seq) / 4;
    memcpy(seq + used, e->prompt, plen_bytes);
    used += plen_bytes;
    memcpy(seq + used, e->buf + start, end - start);
    used += end - start;
    used += (size_t)snprintf(seq + used, sizeof(seq) - used, "\x1b[0K\r");
    if (col > 0)
        used += (size_t)snprintf(seq + used, sizeof(seq) - used, "\x1b[%zuC",
            col);
    put(e, seq, used);
    e->dirty = 0;
}

/* Draw the line if keys changed it since it was last drawn. */
static void
draw_pending(struct dc_edit *e)
{
    if (e->dirty)
        refresh(e);
}

/* Insert at the cursor, or -1 when the line would pass the limit. */
static int
insert(struct dc_edit *e, const char *s, size_t n)
{
    if (e->len + n > DC_EDIT_LINE_MAX)
        return -1;
    memmove(e->buf + e->pos + n, e->buf + e->pos, e->len - e->pos);
    memcpy(e->buf + e->pos, s, n);
    e->len += n;
    e->pos += n;
    e->buf[e->len] = '\0';
    return 0;
}

/* Remove bytes [from, to). */
static void
erase(struct dc_edit *e, size_t from, size_t to)
{
    memmove(e->buf + from, e->buf + to, e->len - to);
    e->len -= to - from;
    e->buf[e->len] = '\0';
    if (e->pos >= to)
        e->pos -= to - from;
    else if (e->pos > from)
        e->pos = from;
}

/*
 * Insert a typed (or pasted) character.  Past the limit the rest of the
 * line is dropped: the terminal rings once and says so, and Enter will
 * refuse the line (see cut_refuse), since running the first 4095 bytes
 * of a longer command may do something else than it says.
 */
static int
insert_typed(struct dc_edit *e, const char *s, size_t n)
{
    char msg[160];

    if (insert(e, s, n) == 0)
        return 0;
    if (e->cut == 0) {
        draw_pending(e);
        beep(e);
        snprintf(msg, sizeof(msg), "\r\n(the line is longer than %d bytes:"
            " the rest is dropped, and Enter will not run it)\r\n",
            DC_EDIT_LINE_MAX);
        puts_(e, msg);
        e->dirty = 1;
    }
    e->cut += n;
    return -1;
}

/* Enter on a line that was cut: say so, run nothing, start afresh. */
static void
cut_refuse(struct dc_edit *e)
{
    char msg[200];

    draw_pending(e);
    snprintf(msg, sizeof(msg), "\r\nline not run: %zu bytes, longer than"
        " the limit of %d\r\n", e->len + e->cut, DC_EDIT_LINE_MAX);
    puts_(e, msg);
    e->len = e->pos = e->scroll = e->cut = 0;
    e->buf[0] = '\0';
    e->hidx = e->hist.n;
}

static void
set_line(struct dc_edit *e, const char *s)
{
    size_t n = strlen(s);

    if (n > DC_EDIT_LINE_MAX)
        n = DC_EDIT_LINE_MAX;
    memcpy(e->buf, s, n);
    e->buf[n] = '\0';
    e->len = e->pos = n;
    e->scroll = 0;
    e->cut = 0;     /* a line from the history is whole */
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The start of the word before the cursor (after skipping spaces). */
static size_t
word_start(const struct dc_edit *e)
{
    size_t p = e->pos;

    while (p > 0 && is_space(e->buf[p - 1]))
        p--;
    while (p > 0 && !is_space(e->buf[p - 1]))
        p--;
    return p;
}

/* The end of the word after the cursor. */
static size_t
word_end(const struct dc_edit *e)
{
    size_t p = e->pos;

    while (p < e->len && is_space(e->buf[p]))
        p++;
    while (p < e->len && !is_space(e->buf[p]))
        p++;
    return p;
}

static void
history_move(struct dc_edit *e, int up)
{
    if (up) {
        if (e->hidx == 0) {
            beep(e);
            return;
        }
        if (e->hidx == e->hist.n) {
            free(e->scratch);
            e->scratch = strdup(e->buf);
        }
        e->hidx--;
        set_line(e, e->hist.v[e->hidx]);
    } else {
        if (e->hidx >= e->hist.n) {
            beep(e);
            return;
        }
        e->hidx++;
        set_line(e, e->hidx == e->hist.n ?
            (e->scratch != NULL ? e->scratch : "") : e->hist.v[e->hidx]);
    }
}

/* ---- Completion ------------------------------------------------------------ */

static void
list_matches(struct dc_edit *e, const char *prefix, size_t plen)
{
    size_t width = term_cols(e), col = 0;

    draw_pending(e);
    puts_(e, "\r\n");
    for (size_t i = 0; i < e->words.n; i++) {
        const char *w = e->words.v[i];
        size_t wl = strlen(w);

        if (strncmp(w, prefix, plen) != 0)
            continue;
        if (col > 0 && col + 2 + wl >= width) {
            puts_(e, "\r\n");
            col = 0;
        }
        if (col > 0) {
            puts_(e, "  ");
            col += 2;
        }
        put(e, w, wl);
        col += wl;
    }
    puts_(e, "\r\n");
}

/* Tab: complete the first word of the line from e->words. */
static void
complete(struct dc_edit *e)
{
    size_t ws = 0, plen, lcp = 0, nmatch = 0;
    const char *prefix, *first = NULL;

    while (ws < e->pos && is_space(e->buf[ws]))
        ws++;
    for (size_t i = ws; i < e->pos; i++) {
        if (is_space(e->buf[i])) {
            beep(e);    /* only command names complete */
            return;
        }
    }
    prefix = e->buf + ws;
    plen = e->pos - ws;
    for (size_t i = 0; i < e->words.n; i++) {
        const char *w = e->words.v[i];

        if (strncmp(w, prefix, plen) != 0)
            continue;
        if (nmatch++ == 0) {
            first = w;
            lcp = strlen(w);
        } else {
            size_t k = plen;
            while (k < lcp && w[k] == first[k])
                k++;
            lcp = k;
        }
    }
    if (nmatch == 0) {
        beep(e);
        return;
    }
    if (nmatch == 1) {
        char tail[DC_EDIT_LINE_MAX + 2];
        size_t n = strlen(first) - plen;

        if (n > DC_EDIT_LINE_MAX)
            n = DC_EDIT_LINE_MAX;
        memcpy(tail, first + plen, n);
        if (e->pos == e->len || !is_space(e->buf[e->pos]))
            tail[n++] = ' ';
        if (insert(e, tail, n) != 0)
            beep(e);
        return;
    }
    if (lcp > plen) {
        if (insert(e, first + plen, lcp - plen) != 0)
            beep(e);
        return;
    }
    if (e->tabs >= 2) {
        char pre[DC_EDIT_LINE_MAX + 1];

        /* Copy: listing does not change the line, but keep it simple. */
        memcpy(pre, prefix, plen);
        pre[plen] = '\0';
        list_matches(e, pre, plen);
    } else {
        beep(e);
    }
}

/* ---- Reading a line --------------------------------------------------------- */

static int
finish(struct dc_edit *e, int ret, int newline)
{
    draw_pending(e);
    if (newline)
        puts_(e, "\r\n");
    raw_off(e);
    return ret;
}

int
dc_edit_readline(struct dc_edit *e, const char *prompt, char **line)
{
    free(e->scratch);
    e->scratch = NULL;
    e->len = e->pos = e->scroll = e->cut = 0;
    e->dirty = 0;
    e->buf[0] = '\0';
    e->hidx = e->hist.n;
    e->tabs = 0;
    e->prompt = prompt;
    e->prompt_cols = cols(e, prompt, 0, strlen(prompt));
    if (raw_on(e) != 0)
        return -1;
    refresh(e);
    for (;;) {
        int c = getbyte(e, -1);
        int saved;

        if (c == 27)
            c = read_escape(e);
        if (c == IN_EOF)
            return finish(e, 0, 1);
        if (c < 0) {
            saved = errno;
            finish(e, -1, 1);
            errno = c == IN_ERR ? saved : EIO;
            return -1;
        }
        e->tabs = c == '\t' ? e->tabs + 1 : 0;
        switch (c) {
        case '\r':
        case '\n':
            if (e->cut > 0) {
                cut_refuse(e);
                break;
            }
            *line = e->buf;
            return finish(e, 1, 1);
        case 3:     /* Ctrl-C: drop the line, start a fresh one */
            draw_pending(e);
            puts_(e, "^C\r\n");
            e->len = e->pos = e->cut = 0;
            e->buf[0] = '\0';
            e->hidx = e->hist.n;
            break;
        case 4:     /* Ctrl-D: end of input on an empty line */
            if (e->len == 0)
                return finish(e, 0, 1);
            erase(e, e->pos, next_char(e, e->pos));
            break;
        case K_DELETE:
            erase(e, e->pos, next_char(e, e->pos));
            break;
        case 0x7f:
        case 8:     /* Backspace, Ctrl-H */
            erase(e, prev_char(e, e->pos), e->pos);
            break;
        case 1:     /* Ctrl-A */
        case K_HOME:
            e->pos = 0;
            break;
        case 5:     /* Ctrl-E */
        case K_END:
            e->pos = e->len;
            break;
        case 2:     /* Ctrl-B */
        case K_LEFT:
            e->pos = prev_char(e, e->pos);
            break;
        case 6:     /* Ctrl-F */
        case K_RIGHT:
            e->pos = next_char(e, e->pos);
            break;
        case K_WORD_LEFT:
            e->pos = word_start(e);
            break;
        case K_WORD_RIGHT:
            e->pos = word_end(e);
            break;
        case 11:    /* Ctrl-K: kill to the end */
            erase(e, e->pos, e->len);
            break;
        case 21:    /* Ctrl-U: kill to the start */
            erase(e, 0, e->pos);
            break;
        case 23:    /* Ctrl-W */
        case K_WORD_RUBOUT:
            erase(e, word_start(e), e->pos);
            break;
        case K_WORD_DELETE:
            erase(e, e->pos, word_end(e));
            break;
        case 16:    /* Ctrl-P */
        case K_UP:
            history_move(e, 1);
            break;
        case 14:    /* Ctrl-N */
        case K_DOWN:
            history_move(e, 0);
            break;
        case 12:    /* Ctrl-L: clear the screen */
            draw_pending(e);
            puts_(e, "\x1b[H\x1b[2J");
            break;
        case 26:    /* Ctrl-Z: suspend, as the shell would */
            draw_pending(e);
            raw_off(e);
            puts_(e, "\r\n");
            raise(SIGTSTP);
            if (raw_on(e) != 0)
                return finish(e, -1, 0);
            break;
        case '\t':
            complete(e);
            break;
        case K_NONE:
            break;
        default:
            if (c >= 0xc0 && c < 0xf8) {
                /* A UTF-8 lead byte: take the whole character. */
                char ch[4];
                size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2, n = 1;

                ch[0] = (char)c;
                while (n < need) {
                    int d = getbyte(e, SEQ_TIMEOUT_MS);
                    if (d < 0 || !is_cont((unsigned char)d)) {
                        if (d >= 0) {
                            /* Not a continuation: keep it for later. */
                            e->qoff--;
                            e->qlen++;
                        }
                        break;
                    }
                    ch[n++] = (char)d;
                }
                if (n == need)
                    insert_typed(e, ch, n);
            } else if (c >= 0x20 && c != 0x7f && c < 0x80) {
                char ch = (char)c;
                int at_end = e->pos == e->len;

                /* Typing at the end of a line that fits, with nothing
                 * else to draw: just echo. */
                if (insert_typed(e, &ch, 1) == 0 && at_end && !e->dirty &&
                    !pending(e) &&
                    cols_upto(e, e->buf, e->scroll, e->len, text_cols(e)) <
                    text_cols(e)) {
                    put(e, &ch, 1);
                    continue;
                }
            }
            /* Other control keys and stray bytes: ignored. */
            break;
        }
        if (e->len == 0)
            e->cut = 0;     /* nothing left of a cut line */
        /* Keep the view up to date, but draw only once every key that is
         * ready has been handled. */
        scroll_to_cursor(e, text_cols(e));
        e->dirty = 1;
        if (!pending(e))
            refresh(e);
    }
}

/* ---- History and words ----------------------------------------------------- */

static void
history_push(struct dc_edit *e, const char *line, int fresh)
{
    if (line[0] == '\0' || strchr(line, '\n') != NULL)
        return;
    if (e->hist.n > 0 && strcmp(e->hist.v[e->hist.n - 1], line) == 0)
        return;
    lines_push(&e->hist, line, DC_EDIT_HISTORY_MAX);
    if (fresh)
        lines_push(&e->fresh, line, DC_EDIT_HISTORY_MAX);
}

void
dc_edit_history_add(struct dc_edit *e, const char *line)
{
    history_push(e, line, 1);
}

size_t
dc_edit_history_len(const struct dc_edit *e)
{
    return e->hist.n;
}

const char *
dc_edit_history_get(const struct dc_edit *e, size_t i)
{
    return i < e->hist.n ? e->hist.v[i] : NULL;
}

static int
read_lines(const char *path, struct lines *l)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0 || (size_t)n > DC_EDIT_LINE_MAX)
            continue;
        if (l->n > 0 && strcmp(l->v[l->n - 1], line) == 0)
            continue;
        lines_push(l, line, DC_EDIT_HISTORY_MAX);
    }
    free(line);
    fclose(f);
    return 0;
}

int
dc_edit_history_load(struct dc_edit *e, const char *path)
{
    struct lines l = { 0 };

    if (read_lines(path, &l) != 0)
        return -1;
    for (size_t i = 0; i < l.n; i++)
        history_push(e, l.v[i], 0);
    lines_free(&l);
    return 0;
}

int
dc_edit_history_save(struct dc_edit *e, const char *path)
{
    struct lines l = { 0 };
    char tmp[4096];
    FILE *f;
    int fd, err;

    /* Start again from the file, so that lines another session saved
     * since our load are kept, then add ours. */
    if (read_lines(path, &l) != 0)
        return -1;
    for (size_t i = 0; i < e->fresh.n; i++) {
        if (l.n > 0 && strcmp(l.v[l.n - 1], e->fresh.v[i]) == 0)
            continue;
        if (lines_push(&l, e->fresh.v[i], DC_EDIT_HISTORY_MAX) != 0)
            goto fail;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path,
        (long)getpid()) >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
        0600);
    if (fd < 0)
        goto fail;
    f = fdopen(fd, "w");
    if (f == NULL) {
        err = errno;
        close(fd);
        unlink(tmp);
        errno = err;
        goto fail;
    }
    for (size_t i = 0; i < l.n; i++)
        fprintf(f, "%s\n", l.v[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        errno = err;
        goto fail;
    }
    lines_free(&l);
    lines_free(&e->fresh);
    return 0;
fail:
    err = errno;
    lines_free(&l);
    errno = err;
    return -1;
}

int
dc_edit_set_words(struct dc_edit *e, char *const *words, size_t n)
{
    lines_free(&e->words);
    for (size_t i = 0; i < n; i++) {
        if (lines_push(&e->words, words[i], 0) != 0)
            return -1;
    }
    return 0;
}

/* ---- Life ------------------------------------------------------------------- */

struct dc_edit *
dc_edit_create(int in, int out)
{
    struct dc_edit *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->in = in;
    e->out = out;
    /* Any UTF-8 locale gives wcwidth the same table; the first is in
     * glibc itself (2.35 and later) and in the BSDs. */
    e->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (e->utf8 == (locale_t)0)
        e->utf8 = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
    return e;
}

void
dc_edit_destroy(struct dc_edit *e)
{
    if (e == NULL)
        return;
    raw_off(e);
    lines_free(&e->hist);
    lines_free(&e->fresh);
    lines_free(&e->words);
    free(e->scratch);
    if (e->utf8 != (locale_t)0)
        freelocale(e->utf8);
    free(e);
}
