/*
 * dconsole_local.h: what the files of `dconsole local` share
 * (dconsole_local.c: the session, the jobs and the connection commands;
 * dconsole_fetch.c: fetch, the HTTP GET).
 *
 * A command that waits hands the wait to a job: dc_job_run runs it in a
 * worker green thread, which Ctrl-C cancels (dc_local_interrupt), and puts
 * what the job printed, or its error, into the reply.
 */
#ifndef DCONSOLE_LOCAL_H
#define DCONSOLE_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "diesel.h"

struct lconn;

/* A command's wait, run by a worker green thread. */
struct job {
    int (*fn)(struct job *);
    int argc;
    char **argv;                    /* copies, in the job's own block */
    struct lconn *conn;             /* the CONN named, if any */
    int64_t timeout_ms;
    size_t n;                       /* recv's N */
    int body;                       /* fetch --body */
    char *text;                     /* what the reply says */
    size_t len, cap;
    int oom;                        /* text is cut short */
    char err[600];                  /* the ERR message, "" if none */
    int orphan;                     /* the command gave up: free it */
};

/* A job for fn with copies of argv, timeout_ms the default (dconsole -t);
 * NULL when out of memory. */
struct job *dc_job_create(int (*fn)(struct job *), int argc, char **argv);
void dc_job_free(struct job *);

/* Run it in a worker, join it, and put its text and error into out; the
 * job is freed.  timeout, if not NULL, is the command's TIMEOUT word
 * (refused when it is not one).  The command's return value. */
int dc_job_run(struct job *, struct diesel_console_out *out,
    const char *timeout);

/* Append to what the reply says. */
void dc_job_put(struct job *, const char *s, size_t n);
void dc_job_printf(struct job *, const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* Set the ERR message; returns -1. */
int dc_job_error(struct job *, const char *fmt, ...) DIESEL_PRINTF(2, 3);

/* "WHAT: nothing within N ms", "WHAT: interrupted"... for a wait that
 * failed with err; returns -1. */
int dc_job_wait_error(struct job *, const char *what, int err);

/* The fetch command (dconsole_fetch.c). */
int dc_local_fetch(struct diesel_console_out *out, int argc, char **argv,
    void *arg);

#endif
