/*
 * dconsole.h: what dconsole's files share.
 *
 *   dconsole.c          options, the session around the attach
 *   dconsole_edit.c     the line editor (dconsole_edit.h)
 *   dconsole_dummy.c    `dconsole dummy`, the demo service
 *
 * The attach itself, and what only the system can tell, are the
 * library's: diesel_console_client(3), lib/console_client.c.
 */
#ifndef DCONSOLE_H
#define DCONSOLE_H

/* `dconsole dummy`: runs until SIGINT or SIGTERM, returns the exit status. */
int dc_dummy_main(int signo);

#endif
