/*
 * sanitize.h: telling AddressSanitizer, ThreadSanitizer and valgrind that
 * green threads switch stacks.  Each macro costs nothing in a build
 * without the tool.
 */
#ifndef DIESEL_SANITIZE_H
#define DIESEL_SANITIZE_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIESEL__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define DIESEL__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DIESEL__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define DIESEL__TSAN 1
#endif

#ifdef DIESEL__ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save,
    const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
    const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define DIESEL__ASAN_START(save, bottom, size) \
    __sanitizer_start_switch_fiber((save), (bottom), (size))
#define DIESEL__ASAN_FINISH(save) \
    __sanitizer_finish_switch_fiber((save), NULL, NULL)
#define DIESEL__ASAN_UNPOISON(addr, size) \
    __asan_unpoison_memory_region((addr), (size))
#else
#define DIESEL__ASAN_START(save, bottom, size) ((void)0)
#define DIESEL__ASAN_FINISH(save) ((void)0)
#define DIESEL__ASAN_UNPOISON(addr, size) ((void)0)
#endif

#ifdef DIESEL__TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#define DIESEL__TSAN_CURRENT() __tsan_get_current_fiber()
#define DIESEL__TSAN_CREATE() __tsan_create_fiber(0)
#define DIESEL__TSAN_DESTROY(f) \
    do { if ((f) != NULL) __tsan_destroy_fiber(f); } while (0)
#define DIESEL__TSAN_SWITCH(f) __tsan_switch_to_fiber((f), 0)
#else
#define DIESEL__TSAN_CURRENT() NULL
#define DIESEL__TSAN_CREATE() NULL
#define DIESEL__TSAN_DESTROY(f) ((void)(f))
#define DIESEL__TSAN_SWITCH(f) ((void)(f))
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>) && !defined(DIESEL_NO_VALGRIND)
#include <valgrind/valgrind.h>
#define DIESEL__VALGRIND_STACK_REGISTER(lo, hi) \
    ((unsigned)VALGRIND_STACK_REGISTER((lo), (hi)))
#define DIESEL__VALGRIND_STACK_DEREGISTER(id) VALGRIND_STACK_DEREGISTER(id)
#endif
#endif
#ifndef DIESEL__VALGRIND_STACK_REGISTER
#define DIESEL__VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define DIESEL__VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#endif /* DIESEL_SANITIZE_H */
