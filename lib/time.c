/*
 * time.c: sleeping and the monotonic clock.
 */
#include <errno.h>

#include "internal.h"

int64_t
diesel_now(void)
{
    return diesel__now_ns() / 1000000;
}

int
diesel_sleep(int64_t ms)
{
    struct diesel__task *t = diesel__running("diesel_sleep");
    int err;

    if (t == NULL)
        return -1;
    if (ms < -1) {
        errno = EINVAL;
        return -1;
    }
    if (ms == 0)
        return diesel_task_yield();
    t->wait.kind = DIESEL__WAIT_SLEEP;
    err = diesel__task_park(t, diesel__deadline(ms));
    if (err == ETIMEDOUT)
        return 0;
    errno = err;
    return -1;
}
