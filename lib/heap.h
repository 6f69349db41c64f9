/*
 * heap.h: an intrusive binary min-heap of deadlines.
 *
 * Each node is embedded in the structure it times (a green thread's
 * record) and remembers its index in the array, so that removing a node
 * whose wait ended early is O(log n).  Ties are broken by a sequence
 * number taken at insertion, so equal deadlines come out in FIFO order
 * (as libuv's timers do).
 */
#ifndef DIESEL_HEAP_H
#define DIESEL_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct diesel__heap_node {
    int64_t key;         /* deadline, monotonic ns */
    uint64_t seq;        /* insertion order, for FIFO ties */
    size_t index;        /* position in the array; SIZE_MAX when out */
};

struct diesel__heap {
    struct diesel__heap_node **a;   /* a[0] is the minimum */
    size_t n;                       /* nodes in the heap */
    size_t cap;                     /* size of a */
    uint64_t seq;                   /* next sequence number */
};

#define DIESEL__HEAP_OUT SIZE_MAX

void diesel__heap_init(struct diesel__heap *);
void diesel__heap_fini(struct diesel__heap *);
/* Insert node with its key set; -1 (ENOMEM) if the array cannot grow. */
int diesel__heap_insert(struct diesel__heap *, struct diesel__heap_node *);
void diesel__heap_remove(struct diesel__heap *, struct diesel__heap_node *);
/* The minimum node, or NULL when empty. */
static inline struct diesel__heap_node *
diesel__heap_min(const struct diesel__heap *h)
{
    return h->n ? h->a[0] : NULL;
}

#endif /* DIESEL_HEAP_H */
