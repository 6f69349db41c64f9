/*
 * dwarf.h: file and line of code addresses, from a module's DWARF line
 * table (see dwarf.c).
 */
#ifndef DIESEL_DWARF_H
#define DIESEL_DWARF_H

#include <stdint.h>
#include <sys/types.h>

struct diesel__lines;

/* The line table of the open ELF file fd (of size fsize), given its ELF
 * header and section headers (ElfW(Ehdr), ElfW(Shdr)); NULL if it has
 * none we can read.  Never changed once returned. */
struct diesel__lines *diesel__lines_read(int fd, const void *ehdr,
    const void *shdrs, off_t fsize);
/* The file and line of rel (an address relative to the load bias); 0, or
 * -1 if the table does not cover it.  Signal-safe. */
int diesel__lines_find(const struct diesel__lines *, uintptr_t rel,
    const char **file, unsigned *line);
void diesel__lines_free(struct diesel__lines *);

#endif /* DIESEL_DWARF_H */
