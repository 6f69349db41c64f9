/*
 * console.h: what the console's files share (console.c, console_out.c,
 * console_attach.c and the built-in commands in console_builtins.c).
 * Nothing here is part of the public interface; diesel-console(7) is the
 * protocol, diesel_console(3) the API.
 *
 * How the pieces fit:
 *
 *   signal --> console_attach.c handler --> self-pipe --> loop (fd handler)
 *          --> checks, connect --> session green thread "console <pid>"
 *   session (console.c): bytes --> lines --> words --> command --> reply
 *          --> framing ("| " lines, then OK or ERR) --> socket
 */
#ifndef DIESEL_CONSOLE_H
#define DIESEL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "diesel.h"

#define DIESEL__CONSOLE_LINE_MAX 4096    /* bytes of a command line,
                                            newline included */
#define DIESEL__CONSOLE_ARGS_MAX 256     /* words of a command line */
#define DIESEL__CONSOLE_NAME_MAX 64      /* command and variable names,
                                            NUL included */
#define DIESEL__CONSOLE_OUT_LIMIT ((size_t)16 << 20) /* one reply's text */
#define DIESEL__CONSOLE_SESSIONS_MAX 4   /* attached sessions at once */
#define DIESEL__CONSOLE_WRITE_TIMEOUT_MS 10000 /* a reply that makes no
                                            progress for this long ends
                                            the session */
#define DIESEL__CONSOLE_SLICE_NS 2000000 /* a long command or reply lets
                                            the loop turn once it has not
                                            for this long */

/*
 * A command's reply while it is being built.  The text grows in buf up to
 * limit bytes; past that it is cut and a note says so.  The session frames
 * it once the command has returned.
 */
struct diesel__console_stream;
struct diesel_console_out {
    char *buf;           /* the text, not NUL-terminated; malloc'd */
    size_t len, cap, limit;
    int json;            /* the client asked for --json */
    char err[256];       /* the ERR message, NUL-terminated */
    int has_err;         /* err was set by diesel_console_error() */
    struct diesel__console_stream *stream; /* a session's, or NULL */
    long peer_pid;       /* who sent the command, as the kernel says (an
                            attach's checked peer; this process for a
                            terminal or a pipe); -1: not known */
    long peer_uid;       /* its uid; -1: not known */
    const char *loop;    /* the loop's name when the command runs on each
                            of several loops (loops.c): ids are shown as
                            LOOP:ID; NULL with one loop */
};

/*
 * A session lets a command send its reply as it goes (log follow), never
 * waiting for the peer.  send frames out's text as reply lines and sends
 * what it can now: 1 sent or queued whole, 0 not sent at all (the peer
 * is behind: the caller drops and counts the lines), -1 the session is
 * over; the caller resets out after.  input is 1 when the client sent
 * something (a line, or hung up): a streaming command ends then, and the
 * session reads it as usual.
 */
struct diesel__console_stream {
    int (*send)(struct diesel__console_stream *, struct diesel_console_out *);
    int (*input)(struct diesel__console_stream *);
    void *ctx;
};

/* ------------------------------------------------------------------------
 * console.c: the command table, the session. */

/*
 * Add a command.  flags: DIESEL__CMD_BUILTIN marks the library's own: a
 * built-in may replace another built-in of the same name (the last one
 * wins); a program's command never replaces anything (EEXIST).  A
 * command given --json is run only if it speaks JSON: a built-in does
 * unless DIESEL__CMD_NO_JSON, a program's command if DIESEL__CMD_JSON
 * (diesel_console_command_json).  (1 stays "built-in, speaks JSON", as
 * it was when the argument was a boolean.)
 */
#define DIESEL__CMD_BUILTIN 1
#define DIESEL__CMD_JSON    2
#define DIESEL__CMD_NO_JSON 4
/* A built-in that shows one loop's state (tasks, stats...): beside other
 * loops it runs on each, one section per loop, and takes --loop NAME and
 * LOOP:ID; one that takes a green thread's id only (cancel): LOOP:ID says
 * which loop runs it (console_loops.c). */
#define DIESEL__CMD_LOOPS   8
#define DIESEL__CMD_LOOPID  16
/* ... and it takes a window of SECONDS (top, 1 s by default), which each
 * loop's answer is given on top of the stuck threshold. */
#define DIESEL__CMD_WINDOW  32
int diesel__console_register(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int flags);
/* The same for a module's (console_module.c); `unload` takes them out. */
int diesel__console_register_owned(const char *name, const char *help,
    diesel_console_fn fn, void *arg, int flags, struct diesel_module *owner);
/* A variable of a module: type 0 int64_t, 1 double, 2 char[size]; an
 * int64_t that set stores only from min to max (EINVAL if min > max;
 * INT64_MIN and INT64_MAX for any). */
int diesel__console_var_owned(const char *name, int type, void *p,
    size_t size, int writable, int64_t min, int64_t max,
    struct diesel_module *owner);
/* Take out every command and variable of owner: their count, or -1 EBUSY
 * while one of its commands runs (then nothing is taken out). */
ssize_t diesel__console_unregister_owned(struct diesel_module *owner);

/*
 * console_module.c: what the table needs of a module.  hold (under the
 * table's lock, with the command found) keeps the module loaded, release
 * lets go; enter_run marks the calling green thread as running the
 * module's command (the crash report names it) and returns what it ran
 * before; leave puts that back and releases.  busy: held now.
 */
void diesel__module_hold(struct diesel_module *);
void diesel__module_release(struct diesel_module *);
const struct diesel_module *diesel__module_enter_run(struct diesel_module *);
void diesel__module_leave(struct diesel_module *,
    const struct diesel_module *was);
int diesel__module_busy(const struct diesel_module *);
/* 0 if the session's peer is root or this service's user (what an attach
 * checks, and what a terminal or a pipe of this process is); else -1 with
 * the ERR reply "WHAT: refused: ..." set. */
int diesel__console_peer_trusted(struct diesel_console_out *,
    const char *what);
/* The module records and the built-ins load, unload, modules; and sym and
 * peek (console_mem.c). */
void diesel__console_module_register(void);
void diesel__console_mem_register(void);

/*
 * Register the built-in commands of console_builtins.c (pid, tasks,
 * stacks, stats, mem, fds, log, cancel); console.c calls it once, before
 * the first command runs.
 */
void diesel__console_builtins_register(void);

/* A family of built-ins in a file of its own (console_top.c,
 * console_module.c...): registered as built-ins, flags as for
 * diesel__console_register besides; a failure is logged. */
struct diesel__builtin {
    const char *name;
    const char *help;
    diesel_console_fn fn;
    int flags;
};
void diesel__console_builtins_add(const struct diesel__builtin *b, size_t n);

/* Register help/get/set/quit and the built-ins (once; any thread). */
void diesel__console_init(void);

/* Sessions open now (attached and local), signals dropped because the
 * self-pipe was full. */
int diesel__console_sessions(void);
unsigned long diesel__console_dropped(void);

/*
 * Split a command line into words, in place: spaces and tabs separate
 * words; "double quotes" group them, with \" and \\ inside.  Returns the
 * count, or -1 with *why set (unterminated quote, too many words).
 */
int diesel__console_split(char *line, size_t len, char **argv, int max,
    const char **why);

/*
 * Run one command line (without its newline; it is modified): split,
 * look the command up, call it.  Returns 0 (OK) or -1 (ERR: out->err
 * holds the message).  *quit is set when the command was `quit`.
 */
int diesel__console_execute(struct diesel_console_out *out, char *line,
    size_t len, int *quit);

/*
 * The line assembler: bytes in, whole lines out, never more than
 * DIESEL__CONSOLE_LINE_MAX bytes kept.  A line that passes the limit is
 * reported once (TOO_LONG) and the rest of it, up to its newline, is
 * skipped.
 */
enum diesel__console_line_event {
    DIESEL__CONSOLE_MORE,       /* all bytes taken, no line complete */
    DIESEL__CONSOLE_LINE,       /* buf[0..len) is a line */
    DIESEL__CONSOLE_TOO_LONG    /* a line passed the limit */
};
struct diesel__console_lines {
    char buf[DIESEL__CONSOLE_LINE_MAX];
    size_t len;                 /* bytes of the line so far */
    int skipping;               /* inside a line that was too long */
    int done;                   /* buf holds a line handed out already */
};
void diesel__console_lines_init(struct diesel__console_lines *);
/* Take bytes from data[0..n) up to the next event; *used says how many. */
enum diesel__console_line_event diesel__console_lines_next(
    struct diesel__console_lines *, const char *data, size_t n,
    size_t *used);

/*
 * Framing: where a framed reply goes.  write is called with pieces of at
 * most a few KiB and returns 0, or -1 to give up.
 */
struct diesel__console_sink {
    int (*write)(void *ctx, const char *buf, size_t len);
    void *ctx;
    int human;          /* a terminal: no "| " and no OK line */
};
/* Frame out's text and the status line (status 0: OK, else ERR). */
int diesel__console_frame(struct diesel__console_sink *,
    const struct diesel_console_out *out, int status);
/* Frame a bare ERR reply with msg. */
int diesel__console_frame_error(struct diesel__console_sink *,
    const char *msg);

/*
 * Serve a session on in/out until EOF, quit, a write that cannot
 * progress for write_timeout_ms, or cancellation.  greeting (may be NULL)
 * is sent first.  human: a terminal, prompt and plain replies.  Returns
 * 0 at EOF or quit, else -1 with errno.
 */
int diesel__console_serve(int in, int out, const char *greeting, int human,
    int64_t write_timeout_ms);
/* The same for a peer the caller checked (an attach): pid and uid. */
int diesel__console_serve_peer(int in, int out, const char *greeting,
    int human, int64_t write_timeout_ms, long peer_pid, long peer_uid);

/* ------------------------------------------------------------------------
 * console_out.c */

void diesel__console_out_init(struct diesel_console_out *);
/* Forget the text and the error; keep a small buffer for the next one. */
void diesel__console_out_reset(struct diesel_console_out *);
void diesel__console_out_fini(struct diesel_console_out *);
/* Append len bytes (cut at the limit); -1 and ENOBUFS once cut. */
int diesel__console_out_write(struct diesel_console_out *, const char *buf,
    size_t len);
/* Whether the reply was cut at the limit (its note is in). */
int diesel__console_out_cut(const struct diesel_console_out *);
/* Append s as a JSON string, quotes included. */
int diesel__console_out_json_string(struct diesel_console_out *,
    const char *s);
/* console_table.c: diesel_console_table(3), and for the built-ins: */
/* Columns s takes on a terminal (valid UTF-8; see console_table.c). */
size_t diesel__console_text_width(const char *s);
/* s (escaped text) in a field of field columns, into dst: cut with "..."
 * when wider, padded with blanks when narrower (dst has room for s and
 * field more bytes). */
void diesel__console_text_fit(char *dst, size_t size, const char *s,
    unsigned field);
size_t diesel__console_table_rows(const struct diesel_console_table *);
/* Bytes of text the table holds (to stop at the reply's limit). */
size_t diesel__console_table_bytes(const struct diesel_console_table *);
/* Print with pace(arg) after each row: 0, -1 (reply over the limit, or
 * no memory), or 1 when pace returned non-zero (printing stopped). */
int diesel__console_table_print_paced(struct diesel_console_table *,
    struct diesel_console_out *, int (*pace)(void *), void *arg);

/* Append s[0..n) escaped as text (escape.c): a value from the program
 * that must stay on its line. */
int diesel__console_out_text(struct diesel_console_out *, const char *s,
    size_t n);

/* ------------------------------------------------------------------------
 * loops.c: a command run on several loops, each on its own thread. */

/* One loop a command runs on, and its reply. */
struct diesel__loopreq;
struct diesel__loops_target {
    char name[32];               /* DIESEL__NAME_MAX */
    int64_t tid;                 /* its OS thread, or -1 */
    uint64_t seq;                /* which start of a loop of that name */
    int self;                    /* the calling session's own loop */
    int stuck;                   /* no answer by the deadline */
    int status;                  /* the command's: 0, or -1 (out.err) */
    struct diesel_console_out out;
    struct diesel__loopreq *req; /* while posted */
    char *report;                /* stuck: its report (console_stuck.c),
                                    malloc'd, NUL-terminated, or NULL */
    int reply[2];                /* its wake descriptor while posted */
};
/* Running loops now. */
unsigned diesel__loops_count(void);
/* The calling loop's name and thread id. */
void diesel__loops_self(char *name, size_t size, int64_t *tid);
/* The running loops in start order (only: just the one of that name),
 * in a malloc'd array for diesel__loops_run.  0, or -1 (ENOMEM). */
int diesel__loops_snapshot(struct diesel__loops_target **ts, size_t *n,
    const char *only);
/* Run fn(argv) on each, on its own loop (the caller's directly), and
 * wait for the answers until the stuck threshold (and extra_ns more: a
 * window the command takes); each target's out,
 * status and stuck say how it went.  From a green thread. */
void diesel__loops_run(struct diesel__loops_target *ts, size_t n,
    const struct diesel_console_out *like, diesel_console_fn fn, void *arg,
    int argc, char **argv, int64_t extra_ns);
void diesel__loops_free(struct diesel__loops_target *ts, size_t n);
/* The `loops` built-in (console_loops.c). */
int diesel__cmd_loops(struct diesel_console_out *, int, char **, void *);
/* Run a command flagged DIESEL__CMD_LOOPS or _LOOPID (how) on the loops
 * it is for: 0 or -1 as the command's status, or 1 when it is for the
 * calling loop alone and the caller runs it as usual (one loop, no
 * --loop, no LOOP:ID).  argv and *argc may be changed (--loop taken out,
 * LOOP:ID made ID). */
int diesel__console_loops(struct diesel_console_out *out,
    diesel_console_fn fn, void *arg, int *argc, char **argv, int how);

#endif /* DIESEL_CONSOLE_H */
