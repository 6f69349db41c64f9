/*
 * check_kqshim.c: the kqueue-over-epoll shim (test/kqshim) against the
 * kqueue(2) semantics it documents, with real pipes and socketpairs, so
 * that a failure of the kqueue backend's tests on Linux can be told apart
 * from a fault of the shim.  The shim exists on Linux only; elsewhere the
 * suite is empty.
 */
#include "tests.h"

#ifdef __linux__

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kqshim/sys/event.h"

static const struct timespec zero;

static void
pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

static int
new_kq(void)
{
    int kq = kqueue();

    ck_assert_int_ge(kq, 0);
    return kq;
}

/* Apply one change with room for one answer, without waiting. */
static int
change(int kq, int fd, short filter, unsigned short flags, void *udata,
    struct kevent *answer)
{
    struct kevent c;

    EV_SET(&c, (uintptr_t)fd, filter, flags, 0, 0, udata);
    return kevent(kq, &c, 1, answer, 1, &zero);
}

/* Apply one change that must succeed (no room for an answer, so an
 * error would fail the call). */
static void
set(int kq, int fd, short filter, unsigned short flags, void *udata)
{
    struct kevent c;

    EV_SET(&c, (uintptr_t)fd, filter, flags, 0, 0, udata);
    ck_assert_int_eq(kevent(kq, &c, 1, NULL, 0, NULL), 0);
}

static void
add(int kq, int fd, short filter)
{
    set(kq, fd, filter, EV_ADD, NULL);
}

/* Events ready now, sorted by filter (EVFILT_READ first). */
static int
ready(int kq, struct kevent *ev, int n)
{
    int r = kevent(kq, NULL, 0, ev, n, &zero);

    if (r == 2 && ev[0].filter < ev[1].filter) {
        struct kevent t = ev[0];
        ev[0] = ev[1];
        ev[1] = t;
    }
    return r;
}

START_TEST(kqshim_delete_missing_filter_is_enoent)
{
    int kq = new_kq(), sv[2];
    struct kevent ev, c;

    pair(sv);
    ck_assert_int_eq(change(kq, sv[0], EVFILT_READ, EV_DELETE, NULL, &ev),
        1);
    ck_assert(ev.flags & EV_ERROR);
    ck_assert_int_eq((int)ev.data, ENOENT);
    ck_assert_uint_eq(ev.ident, (uintptr_t)sv[0]);
    ck_assert_int_eq(ev.filter, EVFILT_READ);
    /* With no room for the answer, the call itself fails. */
    EV_SET(&c, (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, &c, 1, NULL, 0, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(kqshim_add_on_bad_fd_is_ebadf)
{
    int kq = new_kq(), sv[2];
    struct kevent ev, c;

    pair(sv);
    close(sv[0]);
    ck_assert_int_eq(change(kq, sv[0], EVFILT_READ, EV_ADD, NULL, &ev), 1);
    ck_assert(ev.flags & EV_ERROR);
    ck_assert_int_eq((int)ev.data, EBADF);
    EV_SET(&c, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, &c, 1, NULL, 0, NULL), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(kqshim_failed_change_does_not_stop_later_ones_when_answered)
{
    int kq = new_kq(), sv[2];
    struct kevent c[2], ev[2];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    EV_SET(&c[1], (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    /* The error comes back at once, without collecting events. */
    ck_assert_int_eq(kevent(kq, c, 2, ev, 2, NULL), 1);
    ck_assert(ev[0].flags & EV_ERROR);
    ck_assert_int_eq(ev[0].filter, EVFILT_WRITE);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
}
END_TEST

START_TEST(kqshim_failed_change_without_room_stops_the_changelist)
{
    int kq = new_kq(), sv[2];
    struct kevent c[2], ev[2];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    EV_SET(&c[1], (uintptr_t)sv[0], EVFILT_READ, EV_ADD, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, c, 2, NULL, 0, NULL), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
}
END_TEST

START_TEST(kqshim_receipt_answers_success_with_zero_and_no_events)
{
    int kq = new_kq(), sv[2];
    struct kevent c[2], ev[4];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    EV_SET(&c[0], (uintptr_t)sv[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0,
        NULL);
    EV_SET(&c[1], (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0,
        NULL);
    ck_assert_int_eq(kevent(kq, c, 2, ev, 4, NULL), 2);
    for (int i = 0; i < 2; i++) {
        ck_assert(ev[i].flags & EV_ERROR);
        ck_assert_int_eq((int)ev[i].data, 0);
    }
    ck_assert_int_eq(ready(kq, ev, 4), 2);
}
END_TEST

START_TEST(kqshim_read_filter_reports_bytes_available_and_udata)
{
    int kq = new_kq(), sv[2], tag;
    struct kevent ev[2];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "hello", 5), 5);
    set(kq, sv[0], EVFILT_READ, EV_ADD, &tag);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert_uint_eq(ev[0].ident, (uintptr_t)sv[0]);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    ck_assert_int_eq((int)ev[0].data, 5);
    ck_assert_ptr_eq(ev[0].udata, &tag);
    ck_assert(!(ev[0].flags & (EV_EOF | EV_ERROR)));
}
END_TEST

START_TEST(kqshim_each_filter_that_fires_is_one_event)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[4];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    add(kq, sv[0], EVFILT_READ);
    add(kq, sv[0], EVFILT_WRITE);
    ck_assert_int_eq(ready(kq, ev, 4), 2);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    ck_assert_int_eq(ev[1].filter, EVFILT_WRITE);
    ck_assert_uint_eq(ev[0].ident, ev[1].ident);
    /* Re-adding modifies: still one event per filter. */
    add(kq, sv[0], EVFILT_READ);
    ck_assert_int_eq(ready(kq, ev, 4), 2);
}
END_TEST

START_TEST(kqshim_filters_are_level_triggered)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[2];
    char c;

    pair(sv);
    add(kq, sv[0], EVFILT_READ);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert_int_eq(read(sv[0], &c, 1), 1);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
}
END_TEST

START_TEST(kqshim_peer_close_sets_eof_on_both_filters)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[2];

    pair(sv);
    add(kq, sv[0], EVFILT_READ);
    add(kq, sv[0], EVFILT_WRITE);
    close(sv[1]);
    ck_assert_int_eq(ready(kq, ev, 2), 2);
    ck_assert(ev[0].flags & EV_EOF);
    ck_assert(ev[1].flags & EV_EOF);
}
END_TEST

START_TEST(kqshim_half_close_sets_eof_on_read_filter_only)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[2];

    pair(sv);
    add(kq, sv[0], EVFILT_READ);
    add(kq, sv[0], EVFILT_WRITE);
    shutdown(sv[1], SHUT_WR);
    ck_assert_int_eq(ready(kq, ev, 2), 2);
    ck_assert_int_eq(ev[0].filter, EVFILT_READ);
    ck_assert(ev[0].flags & EV_EOF);
    ck_assert_int_eq((int)ev[0].data, 0);
    ck_assert(!(ev[1].flags & EV_EOF));
}
END_TEST

START_TEST(kqshim_pipe_write_filter_sets_eof_when_reader_closes)
{
    int kq = new_kq(), p[2];
    struct kevent ev[2];
    char buf[4096] = { 0 };

    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (write(p[1], buf, sizeof(buf)) > 0)
        ;
    add(kq, p[1], EVFILT_WRITE);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    close(p[0]);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert_int_eq(ev[0].filter, EVFILT_WRITE);
    ck_assert(ev[0].flags & EV_EOF);
}
END_TEST

START_TEST(kqshim_disabled_filter_is_kept_but_not_reported)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[2];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    set(kq, sv[0], EVFILT_READ, EV_ADD | EV_DISABLE, NULL);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    set(kq, sv[0], EVFILT_READ, EV_ENABLE, NULL);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    /* Re-adding keeps it enabled or disabled as it was. */
    set(kq, sv[0], EVFILT_READ, EV_DISABLE, NULL);
    set(kq, sv[0], EVFILT_READ, EV_ADD, NULL);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    set(kq, sv[0], EVFILT_READ, EV_DELETE, NULL);
}
END_TEST

START_TEST(kqshim_oneshot_filter_fires_once_then_is_gone)
{
    int kq = new_kq(), sv[2];
    struct kevent ev[2];

    pair(sv);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    set(kq, sv[0], EVFILT_READ, EV_ADD | EV_ONESHOT, NULL);
    ck_assert_int_eq(ready(kq, ev, 2), 1);
    ck_assert(ev[0].flags & EV_ONESHOT);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    ck_assert_int_eq(change(kq, sv[0], EVFILT_READ, EV_DELETE, NULL, ev), 1);
    ck_assert_int_eq((int)ev[0].data, ENOENT);
}
END_TEST

START_TEST(kqshim_clear_and_unknown_filters_are_einval)
{
    int kq = new_kq(), sv[2];
    struct kevent ev;

    pair(sv);
    ck_assert_int_eq(change(kq, sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, NULL,
        &ev), 1);
    ck_assert_int_eq((int)ev.data, EINVAL);
    ck_assert_int_eq(change(kq, sv[0], -5, EV_ADD, NULL, &ev), 1);
    ck_assert_int_eq((int)ev.data, EINVAL);
}
END_TEST

START_TEST(kqshim_timeout_expires_with_zero_events)
{
    int kq = new_kq(), sv[2];
    struct kevent ev;
    struct timespec ts = { 0, 100 * 1000000 };
    int64_t t0;

    pair(sv);
    add(kq, sv[0], EVFILT_READ);
    t0 = t_now_ms();
    ck_assert_int_eq(kevent(kq, NULL, 0, &ev, 1, &ts), 0);
    ck_assert_int_ge(t_now_ms() - t0, 99);
    ck_assert_int_lt(t_now_ms() - t0, 1000);
    ts.tv_nsec = 1000000000;
    ck_assert_int_eq(kevent(kq, NULL, 0, &ev, 1, &ts), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(kqshim_no_eventlist_applies_changes_without_waiting)
{
    int kq = new_kq(), sv[2];
    struct kevent c, ev;

    pair(sv);
    EV_SET(&c, (uintptr_t)sv[0], EVFILT_WRITE, EV_ADD, 0, 0, NULL);
    ck_assert_int_eq(kevent(kq, &c, 1, NULL, 0, NULL), 0);
    ck_assert_int_eq(ready(kq, &ev, 1), 1);
}
END_TEST

START_TEST(kqshim_close_drops_the_descriptors_filters)
{
    int kq = new_kq(), sv[2], old;
    struct kevent ev[2];

    pair(sv);
    old = sv[0];
    add(kq, sv[0], EVFILT_READ);
    close(sv[0]);
    close(sv[1]);
    pair(sv);
    ck_assert_int_eq(sv[0], old);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    ck_assert_int_eq(ready(kq, ev, 2), 0);
    ck_assert_int_eq(change(kq, sv[0], EVFILT_READ, EV_DELETE, NULL, ev), 1);
    ck_assert_int_eq((int)ev[0].data, ENOENT);
}
END_TEST

START_TEST(kqshim_closed_descriptor_whose_file_stays_open_is_not_reported)
{
    int kq = new_kq(), sv[2], keep;
    struct kevent ev[2];
    struct timespec ts = { 0, 100 * 1000000 };
    int64_t t0;

    pair(sv);
    add(kq, sv[0], EVFILT_READ);
    keep = dup(sv[0]);
    close(sv[0]);
    ck_assert_int_eq(write(sv[1], "x", 1), 1);
    /* epoll still sees the file under the old number; kqueue does not,
     * and the wait goes on to its timeout. */
    t0 = t_now_ms();
    ck_assert_int_eq(kevent(kq, NULL, 0, ev, 2, &ts), 0);
    ck_assert_int_ge(t_now_ms() - t0, 99);
    close(keep);
}
END_TEST

START_TEST(kqshim_regular_file_is_refused_with_eperm)
{
    int kq = new_kq();
    struct kevent ev;
    FILE *f = tmpfile();

    /* Not emulated: BSD accepts regular files, epoll refuses them. */
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(change(kq, fileno(f), EVFILT_READ, EV_ADD, NULL, &ev),
        1);
    ck_assert_int_eq((int)ev.data, EPERM);
    ck_assert_int_eq(change(kq, fileno(f), EVFILT_READ, EV_DELETE, NULL,
        &ev), 1);
    ck_assert_int_eq((int)ev.data, ENOENT);
    fclose(f);
}
END_TEST

START_TEST(kqshim_bad_queue_is_ebadf)
{
    int p[2];
    struct kevent ev;

    ck_assert_int_eq(kevent(-1, NULL, 0, &ev, 1, &zero), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(kevent(p[0], NULL, 0, &ev, 1, &zero), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

Suite *
diesel_kqshim_suite(void)
{
    Suite *s = suite_create("kqshim");
    TCase *tc = tcase_create("kqshim");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, kqshim_delete_missing_filter_is_enoent);
    tcase_add_test(tc, kqshim_add_on_bad_fd_is_ebadf);
    tcase_add_test(tc,
        kqshim_failed_change_does_not_stop_later_ones_when_answered);
    tcase_add_test(tc, kqshim_failed_change_without_room_stops_the_changelist);
    tcase_add_test(tc, kqshim_receipt_answers_success_with_zero_and_no_events);
    tcase_add_test(tc, kqshim_read_filter_reports_bytes_available_and_udata);
    tcase_add_test(tc, kqshim_each_filter_that_fires_is_one_event);
    tcase_add_test(tc, kqshim_filters_are_level_triggered);
    tcase_add_test(tc, kqshim_peer_close_sets_eof_on_both_filters);
    tcase_add_test(tc, kqshim_half_close_sets_eof_on_read_filter_only);
    tcase_add_test(tc, kqshim_pipe_write_filter_sets_eof_when_reader_closes);
    tcase_add_test(tc, kqshim_disabled_filter_is_kept_but_not_reported);
    tcase_add_test(tc, kqshim_oneshot_filter_fires_once_then_is_gone);
    tcase_add_test(tc, kqshim_clear_and_unknown_filters_are_einval);
    tcase_add_test(tc, kqshim_timeout_expires_with_zero_events);
    tcase_add_test(tc, kqshim_no_eventlist_applies_changes_without_waiting);
    tcase_add_test(tc, kqshim_close_drops_the_descriptors_filters);
    tcase_add_test(tc,
        kqshim_closed_descriptor_whose_file_stays_open_is_not_reported);
    tcase_add_test(tc, kqshim_regular_file_is_refused_with_eperm);
    tcase_add_test(tc, kqshim_bad_queue_is_ebadf);
    suite_add_tcase(s, tc);
    return s;
}

#else /* !__linux__ */

Suite *
diesel_kqshim_suite(void)
{
    return suite_create("kqshim");
}

#endif
