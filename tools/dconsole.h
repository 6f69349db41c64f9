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

/* Ctrl-C: cancel the wait of the local command running, if any (1). */
int dc_local_interrupt(void);

#endif
