/*
 * store: the job record. Backends sit behind an operations table
 * (internal.h): SQLite (sqlite.c, the only file that includes sqlite3.h)
 * and PostgreSQL (postgres.c, the only one that includes libpq-fe.h),
 * chosen by how the place is written; nothing above the store changes.
 *
 * All calls are synchronous and must come from one thread at a time per
 * struct store (the jobs recorder thread in the daemon, the CLI elsewhere).
 * Writers batch: store_begin() ... store_commit() around any number of
 * writes.
 */
#ifndef CGIQ_STORE_H
#define CGIQ_STORE_H

#include <stdint.h>

#include "util/util.h"

#define STORE_SCHEMA_VERSION 5

enum store_state {
	STORE_QUEUED = 0,
	STORE_RUNNING,
	STORE_SUCCEEDED,
	STORE_FAILED,
	STORE_TIMED_OUT,
	STORE_CANCELLED,
	STORE_INTERRUPTED,
};
#define STORE_STATE_COUNT 7

/* "queued", "running", ... ; store_state_parse returns -EINVAL for unknown names. */
const char *store_state_name(enum store_state s);
int store_state_parse(const char *name, enum store_state *out);

/*
 * One job row. Strings are owned by whoever filled the struct: callers of
 * store_job_get / store_jobs_list get strings that store_job_clear frees.
 * Times are microseconds since the epoch, 0 = not yet. Integers that are not
 * known yet are -1 (pid, exit_code, term_signal, http_status).
 */
struct store_job {
	char id[UTIL_ID_LEN + 1];
	enum store_state state;
	char *script;        /* absolute path of the program */
	char *method;
	char *uri;           /* request-target as received */
	char *peer;          /* "127.0.0.1:53211", "[::1]:4000", "unix" */
	int64_t created_at_us;
	int64_t started_at_us;
	int64_t finished_at_us;
	int64_t pid;         /* also the process group id */
	int64_t exit_code;
	int64_t term_signal;
	int64_t http_status;
	int64_t bytes_in;
	int64_t bytes_out;   /* body bytes of the final response */
	int64_t processing_sent;
	char *stderr_tail;   /* last few KiB of the program's stderr (may hold any bytes except NUL) */
	char *reason;        /* why it failed, timed out, was cancelled or interrupted */

	/* schema 2: asynchronous jobs, kept results, progress */
	int async;           /* the client does not wait on its connection (202, or detached) */
	char *env;           /* environment: "NAME=value" entries each ended by NUL, env_len bytes */
	size_t env_len;
	char *cwd;           /* the program's working directory */
	char *body_path;     /* durable spool file with the request body, NULL when none */
	char *result_path;   /* spool file with the response body kept until expires_at */
	char *result_head;   /* reason phrase line, then the program's header lines, CRLF each */
	int64_t expires_at_us; /* the row and its files are deleted after this (0 = never) */
	int64_t progress_done;  /* latest progress reported by the program, -1 = none */
	int64_t progress_total;
	char *progress_text;
	int64_t queue_position; /* 1-based among queued rows (read only), -1 when not queued */

	/* schema 5: the node (--node-name) that accepted the job, then the one
	 * that ran it; read only (a store writes its own, store_set_node) */
	char *node;
};

/* Sets every field to its "unknown" value (strings NULL, times 0, others -1). */
void store_job_init(struct store_job *j);
/* Frees the strings of a struct filled by store_job_get / store_jobs_list. */
void store_job_clear(struct store_job *j);

struct store;

/*
 * Opens (creating if missing) the database at path (":memory:" allowed),
 * sets WAL mode, busy timeout, and creates or migrates the schema to
 * STORE_SCHEMA_VERSION. Returns 0 and *out, or a negative errno-style code
 * with one log line. A database from a newer cgiq is refused (-EPROTO), and
 * one this process may only read (-EROFS).
 */
int store_open(const char *path, struct store **out);

/* store_open, the cause of a failure written to why instead of the log
 * ("setting WAL mode: file is not a database"), for a caller that says it
 * on one line of its own. */
int store_open_why(const char *path, struct store **out, char *why, size_t size);
/* Whether place names a PostgreSQL database (a postgresql:// or
 * postgres:// URL) rather than an SQLite file. */
int store_place_is_server(const char *place);
/* A place as the stores name it: "sqlite:FILE" is FILE (an SQLite file is
 * named by its path everywhere else); any other is itself. */
const char *store_place_normal(const char *place);
/* place as it may be shown in a log or a message: a URL without its
 * password (a file name as it is). */
void store_place_shown(const char *place, char *out, size_t size);
/* Whether place can name a store, read without reaching it (a connection
 * string libpq can parse): 0, or -EINVAL with why in msg, which never
 * holds a part of place (it may be a password). */
int store_place_check(const char *place, char *msg, size_t size);

/* The store is this process's alone to write: an SQLite file is locked by
 * its owner beside it (app_lock_db); a PostgreSQL database by an advisory
 * lock this connection takes now and holds until it closes, once it has
 * seen that the database takes writes. Returns 0, or -EBUSY when another
 * process holds it, -EROFS when the database only reads (a standby), or
 * -EIO (one line in msg each). */
int store_lock_writer(struct store *s, char *msg, size_t msg_size);

/* The store is read from an event loop, which must not wait for a server
 * that does not answer: a lost connection is then made again a step at a
 * time, each call going as far as it can without waiting (-EIO until it is
 * made), and given up after 5 s (tried again after the backoff). Nothing
 * to do for an SQLite file. */
void store_set_on_loop(struct store *s);

/* The node this process is (--node-name, at most STORE_NODE_MAX bytes):
 * written into the rows it inserts and into those of the jobs it starts.
 * Unset, rows name none. */
#define STORE_NODE_MAX 63
void store_set_node(struct store *s, const char *node);

/* Closes; NULL and double close are fine (the pointer is the caller's). */
void store_close(struct store *s);

/* Batching. Returns 0, -EAGAIN when the database cannot take writes now
 * (a server gone, shutting down, read-only or out of space: the same batch
 * may be tried again later), or -EIO. A failed commit rolls the batch
 * back. store_rollback abandons the batch (no-op outside one).
 * On PostgreSQL a batch's writes go out together (one round trip): each
 * write returns 0 when sent, or -EIO once the batch is known to have
 * failed; what it would have returned (-ENOENT, -EEXIST, a failure) is
 * logged when the commit reads it, and one failed write fails the batch. */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);
/* Whether the database takes a write now: a one-page write transaction that
 * changes nothing. Returns 0 or -EIO; logs nothing. Not inside a batch. */
int store_probe_write(struct store *s);

/* Inserts a new row from j: every column store_job_finished() writes too, so
 * a job that has already ended is one INSERT (unknown values are NULL, as
 * store_job_init() leaves them). Returns 0, -EEXIST for a duplicate id, or -EIO. */
int store_job_insert(struct store *s, const struct store_job *j);
/* queued -> running: sets state running, started_at and pid. Returns 0,
 * -ENOENT when no queued job has that id (e.g. it already ended), or -EIO. */
int store_job_started(struct store *s, const char *id, int64_t pid, int64_t started_at_us);
/* Writes the final fields: state, finished_at, exit_code, term_signal,
 * http_status, bytes_out, processing_sent, stderr_tail, reason.
 * Returns 0, -ENOENT for an unknown id, or -EIO. */
int store_job_finished(struct store *s, const struct store_job *j);

/* Latest progress of a running job. */
int store_job_progress(struct store *s, const char *id, int64_t done, int64_t total, const char *text);

/* Deletes a job's row if it is still queued: that of an asynchronous job
 * refused (503, never run) after the commit of its insert went unanswered,
 * which may have reached the database or not. Returns 0 (a row deleted or
 * none) or -EIO. */
int store_job_forget(struct store *s, const char *id);

/* Moves a job's expiry (e.g. to now, when its result is deleted on request). */
int store_job_expire_at(struct store *s, const char *id, int64_t expires_at_us);

/*
 * Deletes every row whose expires_at has passed; for each, cb(result_path,
 * body_path, ud) is called first (either may be NULL) so the caller can
 * remove the files. Returns the number of rows deleted or a negative code.
 */
int store_expire(struct store *s, int64_t now_us,
                 void (*cb)(const char *result_path, const char *body_path, void *ud), void *ud);

/*
 * Queued asynchronous jobs in the order they were accepted (created_at,
 * then insertion order), for re-running after a restart. cb as in
 * store_jobs_list.
 */
int store_jobs_queued_async(struct store *s, int (*cb)(const struct store_job *j, void *ud), void *ud);

/*
 * Operators' cancel (`cgiq jobs --cancel ID`): marks a queued or running job;
 * the daemon polls the marks and stops those jobs. Returns 0, or -ENOENT
 * when no such job is queued or running.
 */
int store_job_request_cancel(struct store *s, const char *id);
/* Ids of queued or running jobs marked for cancellation. */
int store_jobs_cancel_requested(struct store *s, void (*cb)(const char *id, void *ud), void *ud);

/* Durable commits: with on, every commit is fsync'ed before it returns
 * (PRAGMA synchronous = FULL); off is the default (NORMAL: a power loss may
 * lose the last commits, never corrupt the file). Outside a transaction only. */
int store_set_durable(struct store *s, int on);

/* Reads one job. Returns 0, -ENOENT, or -EIO. */
int store_job_get(struct store *s, const char *id, struct store_job *out);

/* Appends j as one JSON object and a newline (json.c): id, state, script,
 * method, uri, peer, status, exit_code, signal, created_at, started_at,
 * finished_at (ISO 8601 or null), pid, bytes_in, bytes_out, processing_sent,
 * reason, queue_position; with_tail adds stderr_tail. Unknown numbers are null. */
void store_job_json(struct buf *b, const struct store_job *j, int with_tail);

/*
 * Lists jobs newest first (created_at descending), optionally only those in
 * state (NULL = all), at most limit (0 = no limit). Calls cb for each; cb may
 * not keep the strings past its return; a non-zero return from cb stops the
 * walk and is returned.
 */
int store_jobs_list(struct store *s, const enum store_state *state, unsigned limit,
                    int (*cb)(const struct store_job *j, void *ud), void *ud);

/*
 * Start-up recovery: every row left running, or queued by a synchronous
 * request (whose client is gone with the old process), becomes interrupted with the given reason and finished_at = now. For each
 * such row that had a pid, cb(id, pid, started_at_us, ud) is called first so
 * the caller can kill a process group, or processes, left behind. Returns the number of rows
 * changed or a negative code.
 */
int store_recover(struct store *s, const char *reason, int64_t keep_us,
                  void (*cb)(const char *id, int64_t pid, int64_t started_at_us, void *ud), void *ud);

/*
 * Start-up, before store_recover: an asynchronous job a previous cgiq left
 * running goes back to the queue (a script configured as safe to retry), at
 * most max_attempts times over its life (the row counts them in attempts).
 * Its pid stays, so store_recover still kills what that run left behind.
 * Returns 0, or -ENOENT (no such running asynchronous job, or it was re-queued
 * max_attempts times already: store_recover then marks it interrupted).
 */
int store_job_requeue(struct store *s, const char *id, int max_attempts);

/*
 * Kept results (rows with a result_path that has not expired at now_us),
 * newest finished first: cb(id, result_path, bytes_out, ud) for each until
 * it returns non-zero. For the cap on kept results (--max-results-bytes).
 * Returns 0, what cb returned, or a negative code.
 */
int store_results_newest(struct store *s, int64_t now_us,
                         int (*cb)(const char *id, const char *result_path, int64_t bytes, void *ud),
                         void *ud);

#endif
