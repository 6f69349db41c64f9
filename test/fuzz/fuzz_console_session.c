/*
 * fuzz_console_session.c: libFuzzer target that feeds bytes through a
 * socketpair into a real console session running in a loop (TESTPLAN 10,
 * the second target): random chunking, then EOF or a reset.
 *
 * Input: byte 0 picks the ending (even: EOF, odd: reset) and seeds the
 * chunk sizes; the rest is what the client sends.  The session must end
 * on its own once the input ends, and every byte it wrote must be framed
 * replies.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console.h"
#include "internal.h"

struct run {
    const uint8_t *data;
    size_t size;
    unsigned seed;
    int reset;
    int sv[2];
    size_t got;
};

static int
cmd_echo(struct diesel_console_out *out, int argc, char **argv, void *arg)
{
    (void)arg;
    for (int i = 1; i < argc; i++)
        diesel_console_printf(out, "%s%s", i > 1 ? " " : "", argv[i]);
    diesel_console_printf(out, "\n");
    return 0;
}

static int
writer(void *arg)
{
    struct run *r = arg;
    size_t off = 0;

    while (off < r->size) {
        size_t n = 1 + (r->seed = r->seed * 1103515245u + 12345u) % 509;
        ssize_t w;

        if (n > r->size - off)
            n = r->size - off;
        w = send(r->sv[1], r->data + off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            if (diesel_fd_wait(r->sv[1], DIESEL_WRITE, 5000) < 0)
                break;
        } else {
            break;      /* the session ended (quit): fine */
        }
        if (r->seed & 0x100)
            diesel_task_yield();
    }
    /* EOF, or the client gone both ways at once (its replies: EPIPE). */
    shutdown(r->sv[1], r->reset ? SHUT_RDWR : SHUT_WR);
    return 0;
}

static int
reader(void *arg)
{
    struct run *r = arg;
    char buf[8192];

    for (;;) {
        ssize_t n = recv(r->sv[1], buf, sizeof(buf), MSG_DONTWAIT);

        if (n > 0) {
            for (ssize_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)buf[i];
                if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
                    abort();
            }
            r->got += (size_t)n;
            continue;
        }
        if (n == 0 || errno != EAGAIN)
            return 0;
        if (diesel_fd_wait(r->sv[1], DIESEL_READ, 10000) < 0) {
            /* The input may cancel us: `cancel ID` is a built-in, and
             * ours are 1 (the session), 2 (writer) and 3 (reader). */
            if (errno == ECANCELED)
                return 0;
            abort();    /* the session neither answered nor ended */
        }
    }
}

static int
run_main(void *arg)
{
    struct run *r = arg;
    int64_t w, rd;

    w = diesel_task_spawn("writer", writer, r, 0);
    rd = diesel_task_spawn("reader", reader, r, 0);
    if (diesel__console_serve(r->sv[0], r->sv[0], NULL, 0, 5000) != 0 &&
        errno != ECONNRESET && errno != EPIPE && errno != ECANCELED)
        abort();
    /* The session is over: so is the client's reading. */
    shutdown(r->sv[0], SHUT_RDWR);
    diesel_task_join(w, NULL, -1);
    diesel_task_join(rd, NULL, -1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct run r;

    if (size == 0)
        return 0;
    if (!ready) {
        diesel_log_level_set(NULL, DIESEL_LOG_CRITICAL);
        diesel_console_command("echo", "echo WORDS", cmd_echo, NULL);
        ready = 1;
    }
    memset(&r, 0, sizeof(r));
    r.seed = data[0];
    r.reset = data[0] & 1;
    r.data = data + 1;
    r.size = size - 1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, r.sv) != 0)
        abort();
    if (diesel_loop_run(run_main, &r) != 0)
        abort();
    close(r.sv[0]);
    close(r.sv[1]);
    return 0;
}
