/*
 * dconsole.h: what dconsole's files share.
 *
 *   dconsole.c          options, the session around the attach
 *   dconsole_edit.c     the line editor (dconsole_edit.h)
 *   dconsole_dummy.c    `dconsole dummy`, the demo service
 *   dconsole_local.c    `dconsole local`: the console on dconsole's own
 *                       loop, with commands to try the library by hand
 *   dconsole_fetch.c    ... and its HTTP GET (dconsole_local.h)
 *
 * The attach itself, and what only the system can tell, are the
 * library's: diesel_console_client(3), lib/console_client.c.
 */
#ifndef DCONSOLE_H
#define DCONSOLE_H

#include <stddef.h>
#include <stdint.h>

/* `dconsole dummy`: runs until SIGINT or SIGTERM, returns the exit status. */
int dc_dummy_main(int signo);

struct diesel_console_client;

/* `dconsole local`: a session with the console served in this loop (the
 * client commands added to it, their waits timeout_ms long unless given
 * a TIMEOUT), or NULL and a sentence in why. */
struct diesel_console_client *dc_local_open(int64_t timeout_ms, char *why,
    size_t size);

/* Is line one of the commands `dconsole local` adds (whose waits Ctrl-C
 * interrupts, dc_local_interrupt)? */
int dc_local_is_command(const char *line, size_t n);

/* Ctrl-C while the reply to a local command (local: dc_local_is_command)
 * is due: cancel the wait it runs, or, when it has not started one yet,
 * the wait it starts (1).  0: nothing of the local commands' to cancel.
 * dc_local_reply_done, once that reply has ended, drops what was not
 * used. */
int dc_local_interrupt(int local);
void dc_local_reply_done(void);

#endif
