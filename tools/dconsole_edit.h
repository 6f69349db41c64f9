/*
 * dconsole_edit.h: dconsole's line editor (diesel's idpython, without
 * readline or libedit).
 *
 * A single-line editor for a terminal in raw mode: cursor moves, kills,
 * history and completion of the first word.  It reads its input through
 * the running loop (diesel_fd_wait), so it must be called from a green
 * thread; other green threads keep running while it waits for a key.
 * The terminal is in raw mode only inside dc_edit_readline(), which
 * restores it before it returns, whatever the reason.
 */
#ifndef DCONSOLE_EDIT_H
#define DCONSOLE_EDIT_H

#include <stddef.h>

/* The longest line the editor takes, in bytes (the protocol's limit is
 * 4096 with the newline). */
#define DC_EDIT_LINE_MAX 4095

/* The history is cut to this many lines, oldest first. */
#define DC_EDIT_HISTORY_MAX 1000

struct dc_edit;

/* An editor reading keys from terminal `in` and drawing on `out`. */
struct dc_edit *dc_edit_create(int in, int out);
void dc_edit_destroy(struct dc_edit *);

/*
 * Read one line with `prompt`.  Returns 1 and sets *line (the editor's
 * storage, valid until the next call) when Enter is pressed, 0 at end of
 * input (Ctrl-D on an empty line, or the terminal closed), -1 on error
 * with errno set: ECANCELED when the green thread was cancelled.
 */
int dc_edit_readline(struct dc_edit *, const char *prompt, char **line);

/* Add a line to the history (empty lines and repeats of the last one are
 * skipped); the oldest lines go beyond DC_EDIT_HISTORY_MAX. */
void dc_edit_history_add(struct dc_edit *, const char *line);

/* Lines in the history, and line i (0 is the oldest). */
size_t dc_edit_history_len(const struct dc_edit *);
const char *dc_edit_history_get(const struct dc_edit *, size_t i);

/*
 * Load the history from path (a missing file is no error), and save it:
 * the lines already in the file, then those added since the load, cut to
 * the last DC_EDIT_HISTORY_MAX, written to a temporary file of mode 0600
 * that replaces path.  Another session's lines saved in between are kept.
 */
int dc_edit_history_load(struct dc_edit *, const char *path);
int dc_edit_history_save(struct dc_edit *, const char *path);

/* The words Tab completes at the start of a line (copied). */
int dc_edit_set_words(struct dc_edit *, char *const *words, size_t n);

#endif
