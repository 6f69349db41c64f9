/*
 * check_heap.c: the timer heap on its own.
 */
#include <stdlib.h>

#include "tests.h"
#include "heap.h"

START_TEST(heap_pops_in_key_order)
{
    enum { N = 2000 };
    struct diesel__heap h;
    struct diesel__heap_node *nodes = calloc(N, sizeof(*nodes));
    int64_t last = -1;

    diesel__heap_init(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        nodes[i].index = DIESEL__HEAP_OUT;
        nodes[i].key = rand() % 500;
        ck_assert_int_eq(diesel__heap_insert(&h, &nodes[i]), 0);
    }
    /* Remove every third node from the middle first. */
    for (int i = 0; i < N; i += 3)
        diesel__heap_remove(&h, &nodes[i]);
    while (diesel__heap_min(&h) != NULL) {
        struct diesel__heap_node *n = diesel__heap_min(&h);
        ck_assert_int_ge(n->key, last);
        ck_assert_int_ne((int)((n - nodes) % 3), 0);
        last = n->key;
        diesel__heap_remove(&h, n);
        ck_assert(n->index == DIESEL__HEAP_OUT);
    }
    diesel__heap_fini(&h);
    free(nodes);
}
END_TEST

START_TEST(heap_equal_keys_come_out_fifo)
{
    enum { N = 300 };
    struct diesel__heap h;
    struct diesel__heap_node nodes[N];

    diesel__heap_init(&h);
    for (int i = 0; i < N; i++) {
        nodes[i].index = DIESEL__HEAP_OUT;
        nodes[i].key = 42;
        ck_assert_int_eq(diesel__heap_insert(&h, &nodes[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_eq(diesel__heap_min(&h), &nodes[i]);
        diesel__heap_remove(&h, &nodes[i]);
    }
    ck_assert_ptr_null(diesel__heap_min(&h));
    diesel__heap_fini(&h);
}
END_TEST

Suite *
diesel_heap_suite(void)
{
    Suite *s = suite_create("heap");
    TCase *tc = tcase_create("heap");

    tcase_add_test(tc, heap_pops_in_key_order);
    tcase_add_test(tc, heap_equal_keys_come_out_fifo);
    suite_add_tcase(s, tc);
    return s;
}
