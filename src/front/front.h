/*
 * front: what both fronts (HTTP in http/, FastCGI in fcgi/) share, whatever
 * their wire protocol: so far the access log, one line per request.
 */
#ifndef CGIQ_FRONT_H
#define CGIQ_FRONT_H

#include <stdint.h>
#include <uv.h>

#include "util/util.h"

struct front_access_log;

/* ---------------- access log (access_log.c) ---------------- */

/* One request as the access log shows it. NULL strings print as "-". */
struct front_access_entry {
	const char *host;         /* client address, no port ("unix" for a unix socket) */
	const char *user;         /* authenticated user (FastCGI REMOTE_USER), usually NULL */
	int64_t time_us;          /* wall clock of the line */
	const char *method;       /* NULL when the request line could not be read */
	const char *target;
	const char *protocol;     /* "HTTP/1.1"; NULL leaves it out */
	int status;
	uint64_t bytes;           /* response body bytes */
	const char *referer;
	const char *user_agent;
	const char *job_id;       /* NULL when no job ran */
	unsigned processing_sent; /* 102s */
	int64_t job_ms;           /* how long the program ran; -1 prints "-" */
	uint64_t request_ms;      /* head received to response written */
};

/* Appends s as nginx escapes its log fields: '"', '\\', bytes below 0x20 and
 * from 0x7f as \xHH (uppercase hex). At most 8 KiB of s are used; a longer
 * s ends in "...". */
void front_access_escape(struct buf *out, const char *s, size_t len);
/*
 * Appends one line (newline included):
 *   host - user [dd/Mon/yyyy:hh:mm:ss +0000] "METHOD target PROTO" status bytes
 *   "referer" "user-agent" job_id 102s job_ms request_ms
 * (Combined Log Format, UTC, then cgiq's four fields).
 */
void front_access_format(struct buf *out, const struct front_access_entry *e);

/*
 * Opens the access log: path "-" is stdout, else the file is created or
 * appended to (mode 0640). With a loop, a timer flushes the buffered lines
 * every 500 ms. Returns 0 or a negative errno.
 */
int front_access_log_open(uv_loop_t *loop, const char *path, struct front_access_log **out);
/* Logs one line. Any thread; never waits on the disk except when 32 KiB are
 * buffered. NULL log: nothing. */
void front_access_log_write(struct front_access_log *l, const struct front_access_entry *e);
/* Writes the buffered lines now. Any thread. */
void front_access_log_flush(struct front_access_log *l);
/* For SIGHUP after a rotation: flushes to the old file and opens the path
 * again. Stdout: nothing to do. Returns 0 or a negative errno (the old file is
 * kept). Any thread. */
int front_access_log_reopen(struct front_access_log *l);
/* Shutdown on the loop thread: closes the timer, flushes. Lines still logged
 * after this are written by front_access_log_free. */
void front_access_log_stop(struct front_access_log *l);
/* After the loop has ended: flushes, closes the file, frees. NULL allowed. */
void front_access_log_free(struct front_access_log *l);

#endif
