/*
 * console_client.h: the client side of a console attach, as dconsole does
 * it (DESIGN.md "The console", diesel-console(7)), in plain blocking C
 * with poll(2) timeouts.  The tests use it; dconsole may reuse it.
 *
 *   struct dcc c;
 *   if (dcc_attach(&c, pid, uid, 0, 2000) == 0) {
 *       char reply[4096];
 *       int st = dcc_command(&c, "help", reply, sizeof(reply), 2000);
 *       ...
 *       dcc_close(&c);
 *   }
 *
 * Why not the library's diesel_console_client(3): that one attaches only
 * from a green thread of a running loop, every step checked and none
 * skippable; these tests attach from plain test code, and do steps wrong
 * on purpose (no directory checks, a socket bound by path, a connection
 * read before its greeting is checked).  What they do right is the
 * library's: the directory's name (diesel__console_rendezvous), the nonce
 * and the signal (diesel__platform_random31, _signal_send), the peer's
 * credentials, the greeting (diesel__console_greeting_parse) and the
 * reply lines (diesel_console_client_parse).
 *
 * The steps, each its own call so that tests can do one wrong on purpose:
 * dcc_dir_prepare (create or check the rendezvous directory),
 * dcc_listen (bind console-<our pid>.sock), dcc_signal (sigqueue with a
 * random nonce), dcc_accept (the target must connect: its pid and uid
 * checked with the kernel's peer credentials, anyone else closed without
 * a byte written; then the greeting, its nonce checked).
 */
#ifndef DIESEL_CONSOLE_CLIENT_H
#define DIESEL_CONSOLE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dcc {
    pid_t target;          /* the process attached to */
    uid_t uid;             /* its effective uid */
    int lfd;               /* the listening socket while attaching, or -1 */
    int fd;                /* the session, or -1 */
    int32_t nonce;         /* sent with the signal */
    int foreign;           /* connectors closed for not being the target */
    char dir[108];         /* the rendezvous directory */
    char path[108];        /* our socket in it */
    char greeting[256];    /* the app's first line, without newline */
    char *buf;             /* bytes read and not yet consumed */
    size_t len, cap;
};

/* The rendezvous directory for a target of uid: DIESEL_CONSOLE_DIR, else
 * /run/user/UID/diesel when /run/user/UID is a directory of uid's, else
 * ${TMPDIR:-/tmp}/diesel-UID. */
int dcc_dir_name(uid_t uid, char *buf, size_t size);

/*
 * Create dir for uid if it does not exist (mode 0700; chown'd to uid when
 * we are root), then check it with lstat: a directory (not a symlink),
 * owned by uid, no group or other bits.  -1 and errno: ENOTDIR (not a
 * directory, or a symlink), EPERM (wrong owner or mode), or mkdir's.
 */
int dcc_dir_prepare(const char *dir, uid_t uid);

/* Bind and listen on <dir>/console-<getpid()>.sock for target.  check: 0
 * skips the directory checks (to test that the app makes them). */
int dcc_listen(struct dcc *c, pid_t target, uid_t uid, int check);

/* Send the console signal (0: SIGTRAP) with a fresh random nonce. */
int dcc_signal(struct dcc *c, int signo);

/* Send it again with the same nonce, as dconsole does every second. */
int dcc_signal_again(struct dcc *c, int signo);

/* Wait for the target to connect and greet; the listening socket is
 * closed and unlinked in any case.  -1 and ETIMEDOUT when it does not. */
int dcc_accept(struct dcc *c, int timeout_ms);

/* dir, listen, signal, accept; signalling again every second meanwhile. */
int dcc_attach(struct dcc *c, pid_t target, uid_t uid, int signo,
    int timeout_ms);

/* Write all of buf to the session. */
int dcc_send(struct dcc *c, const void *buf, size_t len);

/*
 * Read one reply: its lines, as sent, go to out (NUL-terminated, cut at
 * size - 1).  Returns 0 for OK, 1 for ERR, -1 on EOF, error or timeout.
 */
int dcc_reply(struct dcc *c, char *out, size_t size, int timeout_ms);

/* Send line and a newline, then read its reply as dcc_reply does. */
int dcc_command(struct dcc *c, const char *line, char *out, size_t size,
    int timeout_ms);

/* Read one line (without its newline) into out; 0, or -1. */
int dcc_read_line(struct dcc *c, char *out, size_t size, int timeout_ms);

/* Close the session (and the listener, if still open). */
void dcc_close(struct dcc *c);

#endif
