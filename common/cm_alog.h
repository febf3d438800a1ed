/*
 * cm_alog.h - an append-only line log (the JSON access log) that event loops write without ever
 * waiting on a disk, and the JSON string escaping its lines need.
 *
 * cm_alog_line copies a line into a bounded buffer (capacity given at open) under a mutex held
 * only for that memcpy; a thread of the log's own drains it to the file with write(2). When the
 * buffer is full the line is dropped and counted (cm_alog_stats): memory never grows past the
 * bound and a slow disk never stalls a request. cm_alog_reopen opens the path again (after
 * logrotate renamed the file): it matches cm_reload_fn, so SIGHUP's hook list can call it.
 *
 * Targets: a file path (opened O_APPEND|O_CREAT, mode 0640), or "stdout" / "stderr".
 */
#ifndef CM_ALOG_H
#define CM_ALOG_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

typedef struct cm_alog cm_alog;

/* Open target and start the drain thread. cap: buffer bytes (0 = 1 MiB). CM_ERR_IO (errno kept)
 * when the file cannot be opened, CM_ERR_NOMEM. */
cm_err cm_alog_open(const char *target, size_t cap, cm_alog **out);
/* Write what is buffered, stop the thread, close the file. NULL is a no-op. */
void cm_alog_close(cm_alog *l);
/* Queue one line (len bytes, the newline included by the caller); never blocks on I/O. Returns 0,
 * or -1 when the buffer had no room and the line was dropped. Any thread. */
int cm_alog_line(cm_alog *l, const char *line, size_t len);
/* Open the target again; the drain thread switches to the new file before its next write. A
 * cm_reload_fn: 0, or -1 with the reason in why when it cannot be opened (the old file stays). */
int cm_alog_reopen(void *l, char *why, size_t cap);
/* Lines written to the file, and dropped (buffer full, or a failed write). Any thread. */
void cm_alog_stats(cm_alog *l, uint64_t *written, uint64_t *dropped);
/* Block until every line queued before the call reached the file (tests, shutdown). */
void cm_alog_flush(cm_alog *l);

/*
 * Write s[0..n) as the body of a JSON string (no quotes) into out (cap bytes, NUL-terminated):
 * '"' and '\\' escaped, control bytes and DEL as \u00XX (\n, \r, \t as such), valid UTF-8 kept,
 * every byte of an invalid UTF-8 sequence as \ufffd, so any input yields one valid JSON string on
 * one line. Stops before an escape that would not fit; returns the length written.
 */
size_t cm_json_escape(const char *s, size_t n, char *out, size_t cap);

#endif
