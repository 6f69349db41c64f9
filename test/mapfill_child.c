/*
 * mapfill_child.c: fill the process's memory mappings up to the limit
 * (vm.max_map_count), then spawn, for check_stack.c.  Prints one line per
 * fact to standard output and exits 0 when every fact held, 77 when it
 * cannot run here (sanitizers and valgrind need mappings of their own).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "diesel.h"
#include "sanitize.h"

static void **fill;
static size_t nfill;

static int
nothing(void *arg)
{
    (void)arg;
    return 0;
}

static int
main_task(void *arg)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int64_t id;
    int err;

    (void)arg;
    fill = malloc(sizeof(void *) * 200000);
    if (fill == NULL)
        return 3;
    /* Alternate protections so that neighbours never merge. */
    for (;;) {
        void *p = mmap(NULL, page, nfill % 2 ? PROT_READ : PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            break;
        fill[nfill++] = p;
        if (nfill == 200000)
            return 4;
    }
    id = diesel_task_spawn("one-too-many", nothing, NULL, 0);
    err = errno;
    if (id != -1 || err != ENOMEM) {
        printf("spawn at the limit: id %lld errno %d\n", (long long)id, err);
        return 1;
    }
    printf("spawn at the limit: ENOMEM\n");
    /* Free some room: spawning works again. */
    for (size_t i = 0; i < 64; i++)
        munmap(fill[--nfill], page);
    id = diesel_task_spawn("fits", nothing, NULL, 0);
    if (id <= 0 || diesel_task_join(id, NULL, -1) != 0) {
        printf("spawn after freeing: failed\n");
        return 1;
    }
    printf("spawn after freeing: ok\n");
    while (nfill > 0)
        munmap(fill[--nfill], page);
    free(fill);
    return 0;
}

int
main(void)
{
#if defined(DIESEL__ASAN) || defined(DIESEL__TSAN)
    (void)main_task;
    return 77;
#else
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 77;
#endif
    setvbuf(stdout, NULL, _IONBF, 0);
    return diesel_loop_run(main_task, NULL);
#endif
}
