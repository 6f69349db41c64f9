/*
 * console_mem.c: the console's sym and peek, live memory without a
 * debugger.
 *
 *   >>> sym answer
 *   answer  0x55f1c0a4b010  8 bytes  variable, static  /srv/bin/service
 *   0x55f1c0a4b010  2a 00 00 00 00 00 00 00                          *.......
 *   >>> peek 0x10 16
 *   ERR peek: 16 bytes at 0x10 are not readable (not mapped, or not
 *   readable): Bad address
 *
 * sym looks the name up in the symbol tables of the executable and of
 * every loaded object (backtrace.c reads them: .symtab, so static
 * variables are found too, else .dynsym); the executable's own symbol
 * wins, a global one before a static one.  Memory is never read directly:
 * the kernel copies it (diesel__platform_mem_read: process_vm_readv on
 * ourselves, or a pipe elsewhere) and says EFAULT for a page that is not
 * mapped or not readable, so a wrong address is an error reply, not a
 * crash of the service.  Both read at most MEM_MAX bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backtrace.h"
#include "console.h"
#include "internal.h"

#define MEM_MAX 4096      /* bytes sym and peek show at most */
#define SYM_DEFAULT 64    /* bytes sym shows of a symbol without a size,
                             or a larger one, unless told LEN */

/* LEN: a decimal count from 1 to MEM_MAX; 0 if it is not. */
static size_t
parse_len(const char *s)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v == 0 || v > MEM_MAX)
        return 0;
    return (size_t)v;
}

/* ADDR: hexadecimal, with or without 0x. */
static int
parse_addr(const char *s, uintptr_t *a)
{
    char *end;
    unsigned long long v;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    if (!((s[0] >= '0' && s[0] <= '9') || (s[0] >= 'a' && s[0] <= 'f') ||
        (s[0] >= 'A' && s[0] <= 'F')))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 16);
    if (*end != '\0' || errno != 0 || v > UINTPTR_MAX)
        return -1;
    *a = (uintptr_t)v;
    return 0;
}

/* Read len bytes at a, all or nothing: 0, or -1 with the ERR set. */
static int
mem_read(struct diesel_console_out *out, const char *what, uintptr_t a,
    unsigned char *buf, size_t len)
{
    ssize_t n;

    if (a + len < a)
        return diesel_console_error(out, "%s: 0x%jx + %zu passes the end "
            "of the address space", what, (uintmax_t)a, len);
    n = diesel__platform_mem_read((const void *)a, buf, len);
    if (n < 0)
        return diesel_console_error(out, "%s: %zu bytes at 0x%jx are not "
            "readable (not mapped, or not readable): %s", what, len,
            (uintmax_t)a, strerror(errno));
    if ((size_t)n < len)
        return diesel_console_error(out, "%s: only %zd of the %zu bytes at "
            "0x%jx are readable (the next page is not mapped, or not "
            "readable)", what, n, len, (uintmax_t)a);
    return 0;
}

/* Rows of 16 bytes: address, hex, and the printable ASCII ("." else). */
static void
dump(struct diesel_console_out *out, uintptr_t a, const unsigned char *b,
    size_t len)
{
    for (size_t off = 0; off < len; off += 16) {
        char hex[16 * 3 + 1], asc[17];
        size_t i, n = len - off < 16 ? len - off : 16;

        for (i = 0; i < 16; i++) {
            if (i < n)
                snprintf(hex + i * 3, 4, "%02x ", b[off + i]);
            else
                memcpy(hex + i * 3, "   ", 4);
            if (i < n)
                asc[i] = b[off + i] >= 0x20 && b[off + i] < 0x7f ?
                    (char)b[off + i] : '.';
        }
        asc[n] = '\0';
        diesel_console_printf(out, "0x%0*jx  %s %s\n",
            (int)(sizeof(uintptr_t) * 2), (uintmax_t)(a + off), hex, asc);
    }
}

static void
hex_json(struct diesel_console_out *out, const unsigned char *b, size_t len)
{
    diesel_console_printf(out, "\"");
    for (size_t i = 0; i < len; i++)
        diesel_console_printf(out, "%02x", b[i]);
    diesel_console_printf(out, "\"");
}

static int
cmd_sym(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    static const char usage[] = "usage: sym [--json] NAME [LEN]";
    struct diesel__symtab *tab;
    struct diesel__sym_named s;
    unsigned char *buf;
    size_t len;
    int rc;

    (void)arg;
    if (argc < 2 || argc > 3)
        return diesel_console_error(out, "%s", usage);
    if (argc == 3 && (len = parse_len(argv[2])) == 0)
        return diesel_console_error(out, "sym: LEN must be a number of "
            "bytes from 1 to %d", MEM_MAX);
    if (diesel__console_peer_trusted(out, "sym") != 0)
        return -1;
    if ((tab = diesel__sym_open()) == NULL)
        return -1;
    if (diesel__sym_named(tab, argv[1], &s) != 0) {
        diesel__sym_close(tab);
        return diesel_console_error(out, "sym: no symbol %.64s in the "
            "executable or its loaded objects", argv[1]);
    }
    if (argc != 3)
        len = s.size > 0 && s.size < SYM_DEFAULT ? s.size : SYM_DEFAULT;
    if ((buf = malloc(len)) == NULL) {
        diesel__sym_close(tab);
        return -1;
    }
    rc = mem_read(out, "sym", s.addr, buf, len);
    if (rc == 0 && diesel_console_json(out)) {
        diesel_console_printf(out, "{\"name\":");
        diesel__console_out_json_string(out, argv[1]);
        diesel_console_printf(out, ",\"address\":\"0x%jx\",\"size\":%zu,"
            "\"kind\":\"%s\",\"global\":%s,\"module\":", (uintmax_t)s.addr,
            s.size, s.object ? "variable" : "function",
            s.global ? "true" : "false");
        diesel__console_out_json_string(out, s.module);
        diesel_console_printf(out, ",\"same_name\":%u,\"bytes\":", s.count);
        hex_json(out, buf, len);
        diesel_console_printf(out, "}\n");
    } else if (rc == 0) {
        diesel_console_printf(out, "%s  0x%jx  %zu bytes  %s, %s  ",
            argv[1], (uintmax_t)s.addr, s.size,
            s.object ? "variable" : "function",
            s.global ? "global" : "static");
        diesel__console_out_text(out, s.module, strlen(s.module));
        diesel_console_printf(out, "\n");
        if (s.count > 1)
            diesel_console_printf(out, "(%u symbols have that name: this "
                "is the executable's, or the first global one)\n", s.count);
        dump(out, s.addr, buf, len);
    }
    free(buf);
    diesel__sym_close(tab);
    return rc;
}

static int
cmd_peek(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    unsigned char buf[MEM_MAX];
    uintptr_t a;
    size_t len;

    (void)arg;
    if (argc != 3)
        return diesel_console_error(out, "usage: peek [--json] ADDR LEN");
    if (parse_addr(argv[1], &a) != 0)
        return diesel_console_error(out, "peek: bad address %.64s "
            "(hexadecimal, 0x optional)", argv[1]);
    if ((len = parse_len(argv[2])) == 0)
        return diesel_console_error(out, "peek: LEN must be a number of "
            "bytes from 1 to %d", MEM_MAX);
    if (diesel__console_peer_trusted(out, "peek") != 0)
        return -1;
    if (mem_read(out, "peek", a, buf, len) != 0)
        return -1;
    if (diesel_console_json(out)) {
        diesel_console_printf(out, "{\"address\":\"0x%jx\",\"length\":%zu,"
            "\"bytes\":", (uintmax_t)a, len);
        hex_json(out, buf, len);
        diesel_console_printf(out, "}\n");
    } else {
        dump(out, a, buf, len);
    }
    return 0;
}

void
diesel__console_mem_register(void)
{
    static const struct diesel__builtin cmds[] = {
        { "sym", "sym [--json] NAME [LEN]: a symbol's address, size and "
          "first bytes (64, at most 4096), hex and ASCII, from the symbol "
          "tables of the executable and the loaded objects", cmd_sym, 0 },
        { "peek", "peek [--json] ADDR LEN: LEN bytes (at most 4096) at "
          "hexadecimal ADDR; an address not mapped or not readable is an "
          "error, not a crash", cmd_peek, 0 },
    };

    diesel__console_builtins_add(cmds, sizeof(cmds) / sizeof(cmds[0]));
}
