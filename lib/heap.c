/*
 * heap.c: the timer heap (see heap.h).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "heap.h"

static int
less(const struct diesel__heap_node *x, const struct diesel__heap_node *y)
{
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void
place(struct diesel__heap *h, size_t i, struct diesel__heap_node *n)
{
    h->a[i] = n;
    n->index = i;
}

static void
sift_up(struct diesel__heap *h, size_t i)
{
    struct diesel__heap_node *n = h->a[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!less(n, h->a[parent]))
            break;
        place(h, i, h->a[parent]);
        i = parent;
    }
    place(h, i, n);
}

static void
sift_down(struct diesel__heap *h, size_t i)
{
    struct diesel__heap_node *n = h->a[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && less(h->a[c + 1], h->a[c]))
            c++;
        if (!less(h->a[c], n))
            break;
        place(h, i, h->a[c]);
        i = c;
    }
    place(h, i, n);
}

void
diesel__heap_init(struct diesel__heap *h)
{
    h->a = NULL;
    h->n = h->cap = 0;
    h->seq = 0;
}

void
diesel__heap_fini(struct diesel__heap *h)
{
    free(h->a);
    diesel__heap_init(h);
}

int
diesel__heap_insert(struct diesel__heap *h, struct diesel__heap_node *n)
{
    assert(n->index == DIESEL__HEAP_OUT);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct diesel__heap_node **a = realloc(h->a, cap * sizeof(*a));
        if (a == NULL) {
            errno = ENOMEM;
            return -1;
        }
        h->a = a;
        h->cap = cap;
    }
    n->seq = h->seq++;
    h->a[h->n] = n;
    n->index = h->n++;
    sift_up(h, n->index);
    return 0;
}

void
diesel__heap_remove(struct diesel__heap *h, struct diesel__heap_node *n)
{
    size_t i = n->index;

    assert(i < h->n && h->a[i] == n);
    n->index = DIESEL__HEAP_OUT;
    if (--h->n == i)
        return;
    /* Move the last node into the hole and restore order both ways. */
    place(h, i, h->a[h->n]);
    if (i > 0 && less(h->a[i], h->a[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}
