/*
 * console_table.c: columns sized from the rows, as ps, docker ps and
 * kubectl print them (diesel_console_table(3), in diesel_console.3).
 *
 * A fixed field width breaks every later column as soon as one cell is
 * longer than its field (a peer address, a long green thread name).  So
 * a table keeps its rows until it is printed: each column is as wide as
 * its widest cell, up to TABLE_CAP columns, where a longer cell is cut
 * and ends in "..." (the last column is never cut: nothing comes after
 * it).  Columns are two spaces apart, so that a reader can split a line
 * on two or more spaces; a row's last non-empty cell is not padded.
 *
 * Cells are escaped as every text from elsewhere (escape.c), and widths
 * are counted on the escaped text, as the terminal shows it: escaped
 * text is valid UTF-8, and a character is one column, but those of the
 * East Asian wide blocks and the emoji blocks (see wide() below), which
 * are two.  Combining characters count one: a simple rule, wrong by a
 * column for them, and they are rare in names.
 *
 * Memory: the cells' text in one growing buffer, plus two words a cell;
 * the widths are kept as the rows come, so printing is one pass.  A
 * caller that walks many rows in slices (tasks: console_builtins.c) adds
 * them as it goes and prints them in slices too
 * (diesel__console_table_print_paced).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "internal.h"

#define TABLE_CAP 60             /* columns a cell may take, but the last */
#define ELLIPSIS "..."

struct diesel_console_table {
    int ncols;
    char *text;                  /* the cells, each NUL-terminated */
    size_t len, cap;
    size_t *off;                 /* per cell: its offset in text */
    unsigned *width;             /* per cell: its columns, uncut */
    size_t ncells, capcells;     /* ncells: rows * ncols, while filling */
    int col;                     /* cells added to the current row */
    unsigned *colw;              /* per column: the widest cell, capped */
    int failed;                  /* out of memory: printing fails */
};

/* Two columns for U+1100..U+115F, the CJK and Hangul blocks, full-width
 * forms and the emoji blocks; one for the rest. */
static int
wide(unsigned long c)
{
    return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
        (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd);
}

/* The character at s (valid UTF-8): its length in bytes, its columns. */
static size_t
char_at(const char *s, unsigned *cols)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned long c;
    size_t n;

    if (u[0] < 0x80) {
        *cols = 1;
        return 1;
    }
    if (u[0] >= 0xf0) {
        c = u[0] & 0x07;
        n = 4;
    } else if (u[0] >= 0xe0) {
        c = u[0] & 0x0f;
        n = 3;
    } else {
        c = u[0] & 0x1f;
        n = 2;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) {    /* not UTF-8 after all: a byte */
            *cols = 1;
            return i;
        }
        c = c << 6 | (u[i] & 0x3f);
    }
    *cols = wide(c) ? 2 : 1;
    return n;
}

size_t
diesel__console_text_width(const char *s)
{
    size_t w = 0;
    unsigned cols;

    while (*s != '\0') {
        s += char_at(s, &cols);
        w += cols;
    }
    return w;
}

void
diesel__console_text_fit(char *dst, size_t size, const char *s,
    unsigned field)
{
    size_t n = 0, at;
    unsigned used = 0, cols;
    int cut = diesel__console_text_width(s) > field;
    unsigned room = !cut ? field : field > sizeof(ELLIPSIS) - 1 ?
        field - (unsigned)(sizeof(ELLIPSIS) - 1) : 0;

    assert(size > 0);
    while (s[n] != '\0') {
        size_t k = char_at(s + n, &cols);

        if (used + cols > room || n + k + sizeof(ELLIPSIS) > size)
            break;
        used += cols;
        n += k;
    }
    memcpy(dst, s, n);
    at = n;
    if (cut) {
        memcpy(dst + at, ELLIPSIS, sizeof(ELLIPSIS) - 1);
        at += sizeof(ELLIPSIS) - 1;
        used += (unsigned)(sizeof(ELLIPSIS) - 1);
    }
    for (; used < field && at + 1 < size; used++)
        dst[at++] = ' ';
    dst[at] = '\0';
}

struct diesel_console_table *
diesel_console_table_create(int ncols)
{
    struct diesel_console_table *t;

    if (ncols < 1 || ncols > 64) {
        errno = EINVAL;
        return NULL;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if ((t->colw = calloc((size_t)ncols, sizeof(*t->colw))) == NULL) {
        free(t);
        return NULL;
    }
    t->ncols = ncols;
    return t;
}

void
diesel_console_table_destroy(struct diesel_console_table *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->off);
    free(t->width);
    free(t->colw);
    free(t);
}

/* Room for n more bytes of text and one more cell. */
static int
grow(struct diesel_console_table *t, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        char *p;

        while (cap < t->len + n)
            cap *= 2;
        if ((p = realloc(t->text, cap)) == NULL)
            return -1;
        t->text = p;
        t->cap = cap;
    }
    if (t->ncells == t->capcells) {
        size_t cap = t->capcells ? t->capcells * 2 : 64;
        size_t *o = realloc(t->off, cap * sizeof(*o));
        unsigned *w;

        if (o == NULL)
            return -1;
        t->off = o;
        if ((w = realloc(t->width, cap * sizeof(*w))) == NULL)
            return -1;
        t->width = w;
        t->capcells = cap;
    }
    return 0;
}

/* Add s, escaped, as the next cell of the current row. */
static int
add_cell(struct diesel_console_table *t, const char *s)
{
    size_t n = strlen(s), at, w;
    unsigned capped;

    if (t->failed)
        return -1;
    if (t->col == t->ncols) {
        errno = EINVAL;         /* more cells than columns */
        return -1;
    }
    /* Escaping makes a byte four at most (\xHH). */
    if (grow(t, 4 * n + 1) != 0) {
        t->failed = 1;
        errno = ENOMEM;
        return -1;
    }
    at = t->len;
    (void)diesel__escape(t->text, t->cap, &at, s, n, DIESEL__ESC_TEXT);
    t->text[at] = '\0';
    w = diesel__console_text_width(t->text + t->len);
    t->off[t->ncells] = t->len;
    t->width[t->ncells] = w > 0xffff ? 0xffff : (unsigned)w;
    t->ncells++;
    t->len = at + 1;
    capped = w > TABLE_CAP ? TABLE_CAP : (unsigned)w;
    if (capped > t->colw[t->col])
        t->colw[t->col] = capped;
    t->col++;
    return 0;
}

int
diesel_console_table_cell(struct diesel_console_table *t, const char *fmt,
    ...)
{
    char small[256], *big = NULL;
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(small)) {
        if ((big = malloc((size_t)n + 1)) == NULL) {
            t->failed = 1;
            return -1;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    rc = add_cell(t, big != NULL ? big : small);
    free(big);
    return rc;
}

int
diesel_console_table_row(struct diesel_console_table *t)
{
    while (t->col < t->ncols) {
        if (add_cell(t, "") != 0)
            return -1;
    }
    t->col = 0;
    return 0;
}

size_t
diesel__console_table_bytes(const struct diesel_console_table *t)
{
    return t->len;
}

size_t
diesel__console_table_rows(const struct diesel_console_table *t)
{
    return t->ncells / (size_t)t->ncols;
}

/* Print one cell of w columns (uncut) in a field of field columns. */
static int
put_cell(struct diesel_console_out *out, const char *s, unsigned w,
    unsigned field, int pad, int cut)
{
    char sp[TABLE_CAP + 1];

    if (cut && w > field) {
        /* Characters up to field - 3 columns, then the ellipsis. */
        size_t n = 0;
        unsigned used = 0, cols;

        while (s[n] != '\0') {
            size_t k = char_at(s + n, &cols);

            if (used + cols > field - (sizeof(ELLIPSIS) - 1))
                break;
            used += cols;
            n += k;
        }
        if (diesel_console_printf(out, "%.*s%s", (int)n, s, ELLIPSIS) < 0)
            return -1;
        w = used + (unsigned)(sizeof(ELLIPSIS) - 1);
    } else if (diesel_console_printf(out, "%s", s) < 0) {
        return -1;
    }
    if (pad && field > w) {
        memset(sp, ' ', field - w);
        sp[field - w] = '\0';
        if (diesel_console_printf(out, "%s", sp) < 0)
            return -1;
    }
    return 0;
}

int
diesel__console_table_print_paced(struct diesel_console_table *t,
    struct diesel_console_out *out, int (*pace)(void *), void *arg)
{
    size_t rows;

    if (t->failed) {
        errno = ENOMEM;
        return -1;
    }
    if (t->col != 0 && diesel_console_table_row(t) != 0)
        return -1;
    rows = t->ncells / (size_t)t->ncols;
    for (size_t r = 0; r < rows; r++) {
        size_t base = r * (size_t)t->ncols;
        int last = 0;

        for (int c = 0; c < t->ncols; c++) {
            if (t->text[t->off[base + (size_t)c]] != '\0')
                last = c;
        }
        for (int c = 0; c <= last; c++) {
            size_t i = base + (size_t)c;

            if (c > 0 && diesel_console_printf(out, "  ") < 0)
                return -1;
            if (put_cell(out, t->text + t->off[i], t->width[i],
                c == t->ncols - 1 ? t->width[i] : t->colw[c], c < last,
                c < t->ncols - 1) != 0)
                return -1;
        }
        if (diesel_console_printf(out, "\n") < 0)
            return -1;
        if (pace != NULL && pace(arg) != 0)
            return 1;
    }
    return 0;
}

int
diesel_console_table_print(struct diesel_console_table *t,
    struct diesel_console_out *out)
{
    return diesel__console_table_print_paced(t, out, NULL, NULL);
}
