/*
 * dwarf.c: file and line of a code address, from a module's DWARF line
 * table (.debug_line, versions 2 to 5), so that a frame reads
 * "handle_request (server.c:123)" and nobody has to run addr2line.
 *
 * The line-number program of each compilation unit (DWARF 5, section
 * 6.2) is run once, when the module's symbols are first read
 * (backtrace.c), into one array of rows sorted by address:
 *
 *   addr (less the load bias, as st_value)   file   line
 *   0x1180                                    f0     12
 *   0x118c                                    f0     13
 *   0x11a0                                    --     0    (sequence ends)
 *
 * An address belongs to the last row at or below it; a row with line 0
 * ends a sequence, so an address past the end of one has no line.  Rows
 * that repeat the line of the row before are dropped, and a row at the
 * address of the one before replaces it (the state machine's last row
 * for an address is the one that counts).  File names are interned in one
 * blob, only those that a row uses, as "dir/name" with the compilation
 * directory left out ("test/stuck_child.c", what the compiler was given).
 *
 * Lookups are a binary search over memory that is never freed or
 * changed once published, so the signal handlers (stuck report, crash
 * report, hog warning) may use a table that was built before.
 *
 * Bounds: a .debug_line over LINE_SECTION_MAX, or compressed (.zdebug_*,
 * SHF_COMPRESSED: inflating would need zlib), is not read, and the table
 * stops at ROWS_MAX rows (16 bytes each); the frames it does not cover
 * fall back to func+offset.  Split debug info (.gnu_debuglink, .dwo) is
 * not followed.
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dwarf.h"

#define LINE_SECTION_MAX (256u << 20)   /* bytes of .debug_line read */
#define STR_SECTION_MAX (256u << 20)    /* of .debug_str, .debug_line_str */
#define ROWS_MAX (4u << 20)             /* 64 MiB of rows at most */
#define FILES_MAX 65536                 /* file entries of one unit */

#ifndef SHF_COMPRESSED
#define SHF_COMPRESSED (1u << 11)
#endif

/* DWARF constants (DWARF 5, section 7.22 and 7.5.6). */
enum {
    LNS_copy = 1, LNS_advance_pc, LNS_advance_line, LNS_set_file,
    LNS_set_column, LNS_negate_stmt, LNS_set_basic_block, LNS_const_add_pc,
    LNS_fixed_advance_pc, LNS_set_prologue_end, LNS_set_epilogue_begin,
    LNS_set_isa
};
enum { LNE_end_sequence = 1, LNE_set_address, LNE_define_file };
enum { LNCT_path = 1, LNCT_directory_index = 2 };
enum {
    FORM_block2 = 0x03, FORM_block4 = 0x04, FORM_data2 = 0x05,
    FORM_data4 = 0x06, FORM_data8 = 0x07, FORM_string = 0x08,
    FORM_block = 0x09, FORM_block1 = 0x0a, FORM_data1 = 0x0b,
    FORM_flag = 0x0c, FORM_sdata = 0x0d, FORM_strp = 0x0e,
    FORM_udata = 0x0f, FORM_strx = 0x1a, FORM_data16 = 0x1e,
    FORM_line_strp = 0x1f, FORM_strx1 = 0x25, FORM_strx2 = 0x26,
    FORM_strx3 = 0x27, FORM_strx4 = 0x28
};

struct row {
    uintptr_t addr;      /* relative to the module's load bias */
    uint32_t file;       /* offset of its name in names */
    uint32_t line;       /* 0: the end of a sequence */
};

struct diesel__lines {
    struct row *row;     /* sorted by addr */
    size_t n, cap;
    char *names;         /* NUL-terminated file names */
    size_t names_len, names_cap;
};

/* A bounded reader over one buffer: past the end, every read gives 0
 * and sets bad, so a damaged table ends the unit instead of running off. */
struct rd {
    const unsigned char *p, *end;
    int bad;
};

static uint64_t
rd_uint(struct rd *r, size_t n)
{
    uint64_t v = 0;

    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        r->p = r->end;
        return 0;
    }
    for (size_t i = 0; i < n; i++)     /* little-endian targets only */
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static uint64_t
rd_uleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;

    while (r->p < r->end) {
        unsigned char b = *r->p++;

        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return v;
}

static int64_t
rd_sleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    unsigned char b = 0;

    while (r->p < r->end) {
        b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
            return (int64_t)v;
        }
    }
    r->bad = 1;
    return 0;
}

static const char *
rd_str(struct rd *r)
{
    const unsigned char *s = r->p;
    const unsigned char *z = memchr(s, '\0', (size_t)(r->end - s));

    if (z == NULL) {
        r->bad = 1;
        r->p = r->end;
        return NULL;
    }
    r->p = z + 1;
    return (const char *)s;
}

static void
rd_skip(struct rd *r, uint64_t n)
{
    if ((uint64_t)(r->end - r->p) < n) {
        r->bad = 1;
        r->p = r->end;
    } else {
        r->p += n;
    }
}

/* The sections the line tables need. */
struct secs {
    struct rd line, str, line_str;
};

/* A string in a string section at off; NULL if out of it. */
static const char *
sec_str(const struct rd *s, uint64_t off)
{
    if (s->p == NULL || off >= (uint64_t)(s->end - s->p) ||
        memchr(s->p + off, '\0', (size_t)(s->end - s->p - off)) == NULL)
        return NULL;
    return (const char *)s->p + off;
}

/* Read an attribute of form form; a string is put in *str, a number in
 * *num.  0, or -1 for a form a line table header cannot have. */
static int
rd_form(struct rd *r, const struct secs *s, uint64_t form, int off8,
    const char **str, uint64_t *num)
{
    *str = NULL;
    *num = 0;
    switch (form) {
    case FORM_string: *str = rd_str(r); break;
    case FORM_strp: *str = sec_str(&s->str, rd_uint(r, off8 ? 8 : 4)); break;
    case FORM_line_strp:
        *str = sec_str(&s->line_str, rd_uint(r, off8 ? 8 : 4));
        break;
    /* Indexes into .debug_str_offsets need the unit's base: unnamed. */
    case FORM_strx: case FORM_udata: *num = rd_uleb(r); break;
    case FORM_sdata: *num = (uint64_t)rd_sleb(r); break;
    case FORM_strx1: case FORM_data1: case FORM_flag:
        *num = rd_uint(r, 1);
        break;
    case FORM_strx2: case FORM_data2: *num = rd_uint(r, 2); break;
    case FORM_strx3: *num = rd_uint(r, 3); break;
    case FORM_strx4: case FORM_data4: *num = rd_uint(r, 4); break;
    case FORM_data8: *num = rd_uint(r, 8); break;
    case FORM_data16: rd_skip(r, 16); break;
    case FORM_block1: rd_skip(r, rd_uint(r, 1)); break;
    case FORM_block2: rd_skip(r, rd_uint(r, 2)); break;
    case FORM_block4: rd_skip(r, rd_uint(r, 4)); break;
    case FORM_block: rd_skip(r, rd_uleb(r)); break;
    default: return -1;
    }
    return r->bad ? -1 : 0;
}

/* One unit's file table, before its names are interned. */
struct file {
    const char *name;
    uint64_t dir;
    int64_t interned;    /* offset in names, -1 not yet */
};

struct unit {
    const char **dir;
    size_t ndir;
    struct file *file;
    size_t nfile, cap;
    int v5;              /* file indexes start at 0, not 1 */
};

static int
unit_add_file(struct unit *u, const char *name, uint64_t dir)
{
    if (u->nfile == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 32;
        struct file *f;

        if (cap > FILES_MAX ||
            (f = realloc(u->file, cap * sizeof(*f))) == NULL)
            return -1;
        u->file = f;
        u->cap = cap;
    }
    u->file[u->nfile].name = name;
    u->file[u->nfile].dir = dir;
    u->file[u->nfile].interned = -1;
    u->nfile++;
    return 0;
}

static int
names_add(struct diesel__lines *t, const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), need = na + (na ? 1 : 0) + nb + 1;

    if (t->names_len + need > UINT32_MAX)
        return -1;
    if (t->names_len + need > t->names_cap) {
        size_t cap = t->names_cap ? t->names_cap : 4096;
        char *p;

        while (cap < t->names_len + need)
            cap *= 2;
        if ((p = realloc(t->names, cap)) == NULL)
            return -1;
        t->names = p;
        t->names_cap = cap;
    }
    if (na) {
        memcpy(t->names + t->names_len, a, na);
        t->names[t->names_len + na] = '/';
    }
    memcpy(t->names + t->names_len + na + (na ? 1 : 0), b, nb + 1);
    return 0;
}

/* The offset in t->names of the unit's file idx, interned now if need
 * be; -1 if there is no such file. */
static int64_t
unit_file(struct diesel__lines *t, struct unit *u, uint64_t idx)
{
    struct file *f;
    const char *dir = NULL;
    int64_t off;

    if (!u->v5) {
        if (idx == 0)
            return -1;
        idx--;
    }
    if (idx >= u->nfile)
        return -1;
    f = &u->file[idx];
    if (f->interned >= 0)
        return f->interned;
    if (f->name == NULL)
        return -1;
    /* Directory 0 is the compilation directory: left out, so that the
     * name reads as the compiler was given it. */
    if (f->name[0] != '/' && f->dir != 0 && f->dir < u->ndir)
        dir = u->dir[f->dir];
    off = (int64_t)t->names_len;
    if (names_add(t, dir, dir ? strlen(dir) : 0, f->name) != 0)
        return -1;
    t->names_len += strlen(t->names + off) + 1;
    f->interned = off;
    return off;
}

/* DWARF 5's directory or file entry list (6.2.4.1). */
static int
read_entries(struct rd *r, const struct secs *s, int off8, struct unit *u,
    int dirs)
{
    uint64_t fmt[16][2], count;
    unsigned nfmt = (unsigned)rd_uint(r, 1);

    if (nfmt > 16)
        return -1;
    for (unsigned i = 0; i < nfmt; i++) {
        fmt[i][0] = rd_uleb(r);
        fmt[i][1] = rd_uleb(r);
    }
    count = rd_uleb(r);
    if (r->bad || count > FILES_MAX)
        return -1;
    if (dirs) {
        u->dir = calloc(count ? count : 1, sizeof(*u->dir));
        if (u->dir == NULL)
            return -1;
        u->ndir = count;
    }
    for (uint64_t k = 0; k < count; k++) {
        const char *name = NULL;
        uint64_t dir = 0;

        for (unsigned i = 0; i < nfmt; i++) {
            const char *str;
            uint64_t num;

            if (rd_form(r, s, fmt[i][1], off8, &str, &num) != 0)
                return -1;
            if (fmt[i][0] == LNCT_path)
                name = str;
            else if (fmt[i][0] == LNCT_directory_index)
                dir = num;
        }
        if (dirs)
            u->dir[k] = name;
        else if (unit_add_file(u, name, dir) != 0)
            return -1;
    }
    return 0;
}

static int
add_row(struct diesel__lines *t, uintptr_t addr, int64_t file,
    uint32_t line)
{
    struct row *last = t->n ? &t->row[t->n - 1] : NULL;

    if (last != NULL && last->line != 0) {
        /* The state machine's last row at an address is the one that
         * counts; a row that repeats the line adds nothing. */
        if (last->addr == addr) {
            t->n--;
            last = t->n ? &t->row[t->n - 1] : NULL;
        }
        if (line != 0 && last != NULL && last->line == line &&
            last->file == (uint32_t)file)
            return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        struct row *p;

        if (t->cap >= ROWS_MAX || (p = realloc(t->row,
            cap * sizeof(*p))) == NULL)
            return -1;
        t->row = p;
        t->cap = cap;
    }
    t->row[t->n].addr = addr;
    t->row[t->n].file = (uint32_t)file;
    t->row[t->n].line = line;
    t->n++;
    return 0;
}

/* Run one unit's line program, from r (which covers just the unit). */
static int
read_unit(struct diesel__lines *t, struct rd *r, const struct secs *s,
    int off8)
{
    struct unit u = { NULL, 0, NULL, 0, 0, 0 };
    unsigned version, min_len, line_range, op_base, lens[256];
    int line_base, rc = -1;
    uint64_t hlen, addr = 0, file = 1, line = 1;
    const unsigned char *prog;
    size_t start = t->n;         /* the current sequence's first row */
    int addr_size = (int)sizeof(void *);

    version = (unsigned)rd_uint(r, 2);
    if (version < 2 || version > 5)
        return 0;                /* unknown: skipped, not an error */
    if (version >= 5) {
        addr_size = (int)rd_uint(r, 1);
        rd_uint(r, 1);           /* segment selector size */
    }
    hlen = rd_uint(r, off8 ? 8 : 4);
    if (r->bad || hlen > (uint64_t)(r->end - r->p))
        return -1;
    prog = r->p + hlen;
    min_len = (unsigned)rd_uint(r, 1);
    if (version >= 4)
        rd_uint(r, 1);           /* maximum operations per instruction */
    rd_uint(r, 1);               /* default_is_stmt */
    line_base = (int)(signed char)rd_uint(r, 1);
    line_range = (unsigned)rd_uint(r, 1);
    op_base = (unsigned)rd_uint(r, 1);
    if (line_range == 0 || op_base == 0)
        return -1;
    memset(lens, 0, sizeof(lens));
    for (unsigned i = 1; i < op_base; i++)
        lens[i] = (unsigned)rd_uint(r, 1);
    u.v5 = version >= 5;
    if (version >= 5) {
        if (read_entries(r, s, off8, &u, 1) != 0 ||
            read_entries(r, s, off8, &u, 0) != 0)
            goto out;
    } else {
        const char *d;
        size_t n = 1;            /* entry 0: the compilation directory */
        const unsigned char *save = r->p;

        while ((d = rd_str(r)) != NULL && d[0] != '\0')
            n++;
        u.dir = calloc(n, sizeof(*u.dir));
        if (u.dir == NULL)
            goto out;
        r->p = save;
        u.ndir = n;
        for (size_t i = 1; i < n; i++)
            u.dir[i] = rd_str(r);
        rd_str(r);
        for (;;) {
            const char *name = rd_str(r);
            uint64_t dir;

            if (name == NULL || name[0] == '\0')
                break;
            dir = rd_uleb(r);
            rd_uleb(r);          /* mtime */
            rd_uleb(r);          /* length */
            if (unit_add_file(&u, name, dir) != 0)
                goto out;
        }
    }
    if (r->bad)
        goto out;
    r->p = prog;
    while (r->p < r->end && !r->bad) {
        unsigned op = (unsigned)rd_uint(r, 1);
        int emit = 0, end = 0;

        if (op >= op_base) {
            unsigned adj = op - op_base;

            addr += (uint64_t)(adj / line_range) * min_len;
            line += (uint64_t)(int64_t)(line_base + (int)(adj % line_range));
            emit = 1;
        } else if (op == 0) {
            uint64_t len = rd_uleb(r);
            const unsigned char *next = r->p + (len <= (uint64_t)(r->end -
                r->p) ? len : 0);
            unsigned sub;

            if (len == 0 || len > (uint64_t)(r->end - r->p))
                break;
            sub = (unsigned)rd_uint(r, 1);
            if (sub == LNE_end_sequence) {
                emit = end = 1;
            } else if (sub == LNE_set_address) {
                addr = rd_uint(r, len - 1 <= 8 ? (size_t)len - 1 :
                    (size_t)addr_size);
            } else if (sub == LNE_define_file && !u.v5) {
                const char *name = rd_str(r);
                uint64_t dir = rd_uleb(r);

                if (unit_add_file(&u, name, dir) != 0)
                    goto out;
            }
            r->p = next;
        } else {
            switch (op) {
            case LNS_copy: emit = 1; break;
            case LNS_advance_pc: addr += rd_uleb(r) * min_len; break;
            case LNS_advance_line: line += (uint64_t)rd_sleb(r); break;
            case LNS_set_file: file = rd_uleb(r); break;
            case LNS_const_add_pc:
                addr += (uint64_t)((255 - op_base) / line_range) * min_len;
                break;
            case LNS_fixed_advance_pc: addr += rd_uint(r, 2); break;
            default:
                /* Known or not, its operands are ULEB128s. */
                for (unsigned i = 0; i < lens[op]; i++)
                    rd_uleb(r);
                break;
            }
        }
        if (!emit)
            continue;
        if (end) {
            /* A sequence at address 0 is code the linker dropped. */
            if (start < t->n && t->row[start].addr == 0)
                t->n = start;
            else if (start < t->n &&
                add_row(t, (uintptr_t)addr, 0, 0) != 0)
                goto full;
            start = t->n;
            addr = 0;
            file = 1;
            line = 1;
        } else if (line != 0 && line <= UINT32_MAX) {
            int64_t f = unit_file(t, &u, file);

            if (f >= 0 && add_row(t, (uintptr_t)addr, f,
                (uint32_t)line) != 0)
                goto full;
        }
    }
    rc = 0;
    goto out;
full:
    /* Out of rows or memory: keep what the finished sequences gave. */
    t->n = start;
    rc = -1;
out:
    free(u.dir);
    free(u.file);
    return rc;
}

static int
cmp_row(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* A sequence that ends where another begins: the end first. */
    return (x->line != 0) - (y->line != 0);
}

/* Read section i of the file into a malloc'd buffer (r->p NULL if it is
 * absent, compressed or too large). */
static void
read_section(int fd, const ElfW(Shdr) *sh, off_t fsize, size_t max,
    struct rd *r)
{
    unsigned char *p;
    size_t n = (size_t)sh->sh_size, done = 0;

    r->p = r->end = NULL;
    r->bad = 0;
    if ((sh->sh_flags & SHF_COMPRESSED) || sh->sh_type == SHT_NOBITS ||
        n == 0 || n > max || sh->sh_offset > (uint64_t)fsize ||
        n > (uint64_t)fsize - sh->sh_offset || (p = malloc(n)) == NULL)
        return;
    while (done < n) {
        ssize_t k = pread(fd, p + done, n - done,
            (off_t)(sh->sh_offset + done));

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            free(p);
            return;
        }
        done += (size_t)k;
    }
    r->p = p;
    r->end = p + n;
}

struct diesel__lines *
diesel__lines_read(int fd, const void *ehdr, const void *shdrs,
    off_t fsize)
{
    const ElfW(Ehdr) *eh = ehdr;
    const ElfW(Shdr) *sh = shdrs;
    struct diesel__lines *t = NULL;
    struct secs s;
    struct rd names;
    const ElfW(Shdr) *want[3] = { NULL, NULL, NULL };
    static const char *const secname[3] = {
        ".debug_line", ".debug_str", ".debug_line_str"
    };

    memset(&s, 0, sizeof(s));
    if (eh->e_shstrndx == SHN_UNDEF || eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    read_section(fd, &sh[eh->e_shstrndx], fsize, 1u << 20, &names);
    if (names.p == NULL)
        return NULL;
    for (size_t i = 0; i < eh->e_shnum; i++) {
        const char *n = sec_str(&names, sh[i].sh_name);

        for (int k = 0; n != NULL && k < 3; k++) {
            if (strcmp(n, secname[k]) == 0 && want[k] == NULL)
                want[k] = &sh[i];
        }
    }
    free((void *)names.p);
    if (want[0] == NULL)
        return NULL;
    read_section(fd, want[0], fsize, LINE_SECTION_MAX, &s.line);
    if (s.line.p == NULL)
        return NULL;
    if (want[1] != NULL)
        read_section(fd, want[1], fsize, STR_SECTION_MAX, &s.str);
    if (want[2] != NULL)
        read_section(fd, want[2], fsize, STR_SECTION_MAX, &s.line_str);
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto out;
    {
        struct rd r = s.line;

        while (r.p < r.end && !r.bad) {
            uint64_t len = rd_uint(&r, 4);
            int off8 = 0;
            struct rd unit;

            if (len == 0xffffffffu) {
                len = rd_uint(&r, 8);
                off8 = 1;
            }
            if (r.bad || len > (uint64_t)(r.end - r.p))
                break;
            unit.p = r.p;
            unit.end = r.p + len;
            unit.bad = 0;
            r.p += len;
            if (read_unit(t, &unit, &s, off8) != 0 && t->n >= ROWS_MAX / 2)
                break;           /* full */
        }
    }
    if (t->n == 0) {
        diesel__lines_free(t);
        t = NULL;
        goto out;
    }
    qsort(t->row, t->n, sizeof(*t->row), cmp_row);
out:
    free((void *)s.line.p);
    free((void *)s.str.p);
    free((void *)s.line_str.p);
    return t;
}

int
diesel__lines_find(const struct diesel__lines *t, uintptr_t rel,
    const char **file, unsigned *line)
{
    size_t lo = 0, hi;

    if (t == NULL)
        return -1;
    hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (t->row[mid].addr <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || t->row[lo - 1].line == 0)
        return -1;
    *file = t->names + t->row[lo - 1].file;
    *line = t->row[lo - 1].line;
    return 0;
}

void
diesel__lines_free(struct diesel__lines *t)
{
    if (t == NULL)
        return;
    free(t->row);
    free(t->names);
    free(t);
}
