/*
 * hostile.h: a green-thread name (and process name, greeting) that tries
 * everything the escaping (lib/escape.c, diesel-console(7)) must stop:
 * ESC and a colour sequence, BEL, CR, LF followed by a forged "| " row,
 * DEL, a raw 0x9b (C1 CSI) and U+009B in UTF-8.  Shared by the children
 * that set it and the suites that look for it in what dconsole or the
 * crash report wrote.
 */
#ifndef DIESEL_TEST_HOSTILE_H
#define DIESEL_TEST_HOSTILE_H

#include <stddef.h>

#define T_HOSTILE_NAME "h\x1b[31m\a\r\n| x\x7f\x9b\xc2\x9b"
/* Hostile text for a one-line field (a greeting, a protocol line): no
 * newline, the rest as above, and an OSC that would retitle the window. */
#define T_HOSTILE_TEXT "\x1b]0;owned\a\x1b[2J\r\x7f\x9b\xc2\x9b"
/* A process name (at most 15 bytes, no '/'). */
#define T_HOSTILE_COMM "\x1b]0;x\a\r\n\x7f\x9b\xc2\x9b"

/* The same as every path of the library writes it. */
#define T_HOSTILE_ESCAPED \
    "h\\x1b[31m\\x07\\x0d\\x0a| x\\x7f\\x9b\\xc2\\x9b"

/* The offset of the first byte that must never reach a terminal raw (a
 * control but newline and tab, DEL, a C1 byte, alone or as the second
 * byte of its UTF-8 form), or -1.  Strict: no test output here holds
 * other UTF-8 whose continuation bytes would fall in 0x80..0x9f. */
static inline long
t_forbidden_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ||
            (c >= 0x80 && c <= 0x9f))
            return (long)i;
    }
    return -1;
}

#endif
