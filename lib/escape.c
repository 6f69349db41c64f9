/*
 * escape.c: the one way text from elsewhere is made safe to print.
 *
 * Green-thread names, logger names, peer addresses, fd paths and the
 * output of registered commands come from the application or its
 * clients: any of them may hold a newline (which would forge a reply
 * line or a report row), an escape sequence (which would drive the
 * operator's terminal) or bytes that are not text.  Every path of the
 * library that writes such a string, the signal handlers' included,
 * passes it through diesel__escape, so that one rule holds everywhere
 * (diesel-console(7), "Escaping"):
 *
 *   bytes below 0x20 but tab, 0x7f, the C1 controls U+0080..U+009F
 *   (C2 80..C2 9F in UTF-8) and every byte that is not part of a valid
 *   UTF-8 sequence are written as \xHH (JSON: \u00HH, C1 as \u0080..);
 *   anything else passes as it is.
 *
 * It is async-signal-safe: no malloc, no locale, no stdio; it appends to
 * a caller's buffer.
 */
#include <string.h>

#include "internal.h"

size_t
diesel__utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c, lo = 0x80, hi = 0xbf;
    size_t need;

    if (n == 0)
        return 0;
    c = s[0];
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;  /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f;  /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;  /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return need;
}

/* The escaped form of the byte or character at s: written to e, its
 * length returned; *used says how many input bytes it stands for.  0
 * when the bytes pass as they are (*used of them). */
static size_t
escape_one(const unsigned char *s, size_t n, int mode, char e[8],
    size_t *used)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    size_t k;

    *used = 1;
    if (mode & DIESEL__ESC_JSON) {
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            return 2;
        }
        if (c == '\n' || c == '\t') {
            e[0] = '\\';
            e[1] = c == '\n' ? 'n' : 't';
            return 2;
        }
    } else if (((mode & DIESEL__ESC_QUOTED) && (c == '"' || c == '\\')) ||
        ((mode & DIESEL__ESC_WORD) && (c == ' ' || c == '\t'))) {
        goto hex_byte;
    }
    if (c == '\t' || (c >= 0x20 && c < 0x7f))
        return 0;
    if (c >= 0x80 && (k = diesel__utf8_len(s, n)) != 0) {
        if (c != 0xc2 || s[1] >= 0xa0) {
            *used = k;
            return 0;
        }
        /* A C1 control, as one escape for its code point in JSON, as
         * the two bytes of its UTF-8 form in text. */
        if (mode & DIESEL__ESC_JSON) {
            c = s[1];
            *used = 2;
        } else {
            e[0] = '\\';
            e[1] = 'x';
            e[2] = 'c';
            e[3] = '2';
            e[4] = '\\';
            e[5] = 'x';
            e[6] = hex[s[1] >> 4];
            e[7] = hex[s[1] & 15];
            *used = 2;
            return 8;
        }
    }
    if (mode & DIESEL__ESC_JSON) {
        /* An invalid byte becomes the code point of the same number:
         * the document stays valid UTF-8, the byte is still told. */
        memcpy(e, "\\u00", 4);
        e[4] = hex[c >> 4];
        e[5] = hex[c & 15];
        return 6;
    }
hex_byte:
    e[0] = '\\';
    e[1] = 'x';
    e[2] = hex[c >> 4];
    e[3] = hex[c & 15];
    return 4;
}

size_t
diesel__escape(char *dst, size_t size, size_t *at, const char *src,
    size_t n, int mode)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0, o = *at;

    if (size == 0)
        return 0;
    if (o >= size)
        o = size - 1;
    while (i < n) {
        char e[8];
        size_t used, k = escape_one(s + i, n - i, mode, e, &used);

        if (k == 0) {
            if (o + used >= size)
                break;
            memcpy(dst + o, s + i, used);
            o += used;
        } else {
            if (o + k >= size)
                break;
            memcpy(dst + o, e, k);
            o += k;
        }
        i += used;
    }
    dst[o] = '\0';
    *at = o;
    return i;
}

size_t
diesel_console_escape(char *dst, size_t size, size_t *at, const char *src,
    size_t n)
{
    return diesel__escape(dst, size, at, src, n, DIESEL__ESC_TEXT);
}

void
diesel__sline_esc(struct diesel__sline *l, const char *s)
{
    /* Room for the newline emit() and say_to() add. */
    (void)diesel__escape(l->b, sizeof(l->b) - 1, &l->n, s, strlen(s),
        DIESEL__ESC_TEXT);
}
