/*
 * fuzz_console.c: libFuzzer target for the console's line assembler,
 * word splitter, dispatch and framing (TESTPLAN 10), without a loop.
 *
 * The input is what a client would send.  Every complete line or line
 * past the limit must get exactly one reply; every reply must be "| "
 * lines then one OK or ERR line, with no control byte but tab inside a
 * line.  ASan and UBSan watch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

static int64_t v_int;
static double v_double;
static char v_string[16];

static int
cmd_echo(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s%s", i > 1 ? " " : "", argv[i]);
    diesel_console_printf(out, "\n");
    return 0;
}

static int
cmd_raw(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    /* Arguments as they are, without newlines between: controls and
     * all, to exercise the escaping. */
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s\001\n\177", argv[i]);
    if (argc > 2)
        return diesel_console_error(out, "%s", argv[2]);
    return 0;
}

struct reply {
    char *buf;
    size_t len, cap;
};

static int
sink_write(void *ctx, const char *buf, size_t len)
{
    struct reply *r = ctx;

    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + len)
            cap *= 2;
        r->buf = realloc(r->buf, cap);
        if (r->buf == NULL)
            abort();
        r->cap = cap;
    }
    memcpy(r->buf + r->len, buf, len);
    r->len += len;
    return 0;
}

/* One framed reply: "| ..." lines, then OK or ERR, nothing after. */
static void
check_reply(const struct reply *r)
{
    const char *p = r->buf, *end = r->buf + r->len;
    int done = 0;

    if (r->len == 0 || r->buf[r->len - 1] != '\n')
        abort();
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);

        if (done)
            abort();        /* something after the status line */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                abort();
        }
        if (n >= 2 && p[0] == '|' && p[1] == ' ')
            ;
        else if (n == 2 && memcmp(p, "OK", 2) == 0)
            done = 1;
        else if (n >= 4 && memcmp(p, "ERR ", 4) == 0)
            done = 1;
        else
            abort();
        p = nl + 1;
    }
    if (!done)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct diesel__console_lines lb;
    static int ready;
    struct diesel__console_sink sink;
    struct diesel_console_out out;
    struct reply r = { NULL, 0, 0 };
    size_t off = 0;

    if (!ready) {
        diesel_console_command("echo", "echo WORDS", cmd_echo, NULL);
        diesel_console_command("raw", "raw WORDS", cmd_raw, NULL);
        diesel_console_var_int("i", &v_int, 1);
        diesel_console_var_int("ro", &v_int, 0);
        diesel_console_var_double("d", &v_double, 1);
        diesel_console_var_string("s", v_string, sizeof(v_string), 1);
        ready = 1;
    }
    diesel__console_lines_init(&lb);
    diesel__console_out_init(&out);
    sink.write = sink_write;
    sink.ctx = &r;
    sink.human = 0;
    while (off < size) {
        enum diesel__console_line_event ev;
        size_t used;
        int quit = 0, st;

        ev = diesel__console_lines_next(&lb, (const char *)data + off,
            size - off, &used);
        if (used == 0 || used > size - off)
            abort();
        off += used;
        if (ev == DIESEL__CONSOLE_MORE)
            continue;
        r.len = 0;
        if (ev == DIESEL__CONSOLE_TOO_LONG) {
            diesel__console_frame_error(&sink, "line too long");
        } else {
            if (lb.len >= DIESEL__CONSOLE_LINE_MAX)
                abort();
            st = diesel__console_execute(&out, lb.buf, lb.len, &quit);
            diesel__console_frame(&sink, &out, st);
            diesel__console_out_reset(&out);
        }
        check_reply(&r);
        if (quit)
            break;
    }
    /* A string variable always stays terminated. */
    if (memchr(v_string, '\0', sizeof(v_string)) == NULL)
        abort();
    diesel__console_out_fini(&out);
    free(r.buf);
    return 0;
}
