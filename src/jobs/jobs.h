/*
 * jobs: the job engine. It owns every job's state machine
 * (queued -> running -> succeeded | failed | timed_out | cancelled), the
 * concurrency limit and FIFO queue, per-job deadlines, the kill sequence
 * (SIGTERM to the process group, grace, SIGKILL), output spooling, and the
 * job record (written by a recorder thread so the loop never waits on SQLite).
 * It is the only writer of job state.
 *
 * Everything here runs on the event-loop thread, except where noted.
 */
#ifndef CGIQ_JOBS_H
#define CGIQ_JOBS_H

#include <stdint.h>
#include <uv.h>

#include "cgi/cgi.h"
#include "store/store.h"
#include "util/util.h"

/*
 * Settings that may differ per script (a `script PATTERN { }` block of the
 * configuration file). A rule's policy is complete: the global values with
 * the block's keys applied.
 */
struct job_policy {
	uint64_t job_timeout_ms;         /* 0 = none */
	uint64_t kill_grace_ms;
	uint64_t max_output_bytes;
	unsigned max_running;            /* jobs of this rule running at once; 0 = only --max-jobs */
	int retry_interrupted;           /* an async job running when cgiq died is queued again */
	int coalesce;                    /* concurrent GET/HEAD requests share a job, as --coalesce */
	int stream;                      /* its output goes to the client as it is written, as --stream */
	struct cgi_limits limits;        /* rlimits and nice of its programs */
	/* --interpreter: files run by an interpreter (the global ones, then a
	 * block's own; the last for an extension wins) */
	const struct cgi_interpreter *interpreters;
	unsigned interpreter_count;
};

/* One script block: the first rule whose pattern matches wins. */
struct job_script_rule {
	const char *pattern;   /* fnmatch(3), FNM_PATHNAME, against "/" + the path below the cgi root */
	struct job_policy policy;
	const void *front;     /* the fronts' settings of the block (front/'s struct front_policy),
	                          carried for them and never read by the engine */
};

struct job_config {
	unsigned max_jobs;          /* programs running at once; more wait in FIFO order */
	uint64_t job_timeout_ms;    /* 0 = none */
	uint64_t kill_grace_ms;     /* between SIGTERM and SIGKILL */
	uint64_t max_output_bytes;  /* body bytes a program may write; beyond: killed, 502 */
	size_t output_mem_bytes;    /* output kept in memory up to this, then spooled to a file */
	size_t stderr_tail_bytes;   /* last bytes of stderr kept in the record */
	uint64_t stderr_log_bytes;  /* stderr bytes of one job that reach the log; beyond: counted only */
	unsigned stderr_log_rate;   /* stderr lines of one job logged per second (burst as many); 0 = any */
	uint64_t max_stderr_bytes;  /* stderr bytes a program may write; beyond: killed, 502; 0 = any */
	const char *spool_dir;      /* where output spool files go (exists) */
	unsigned queue_max;         /* jobs waiting for a slot; beyond: job_submit fails -EAGAIN */
	uint64_t result_ttl_ms;     /* rows and kept results are deleted this long after the end */
	uint64_t max_results_bytes; /* kept results beyond this in all: the oldest are deleted; 0 = no cap */
	const char *db_path;        /* the database, for read-only look-ups on the loop thread */
	const char *node_name;      /* this node (--node-name), named in status documents; NULL: none */
	/* --coalesce: patterns (fnmatch, FNM_PATHNAME, on "/" + the program's path
	 * below cgi_root, as script rules) whose concurrent GET/HEAD requests for
	 * the same PATH_INFO and query share one job; NULL-terminated, NULL = none. */
	const char *const *coalesce;
	/* --stream: patterns (as --coalesce) of programs whose output goes to
	 * the client as they write it; NULL-terminated, NULL = none. */
	const char *const *stream;
	/* RFC 3875 5: programs whose file name starts with this write their
	 * own status line (non-parsed header), and are always streamed (but
	 * for HEAD); NULL or "" = none */
	const char *nph_prefix;
	int rerun_interrupted;      /* 202-accepted jobs running when cgiq died run again at start */
	int keep_leftovers;         /* --leftovers keep: processes that outlive their job are only
	                               logged and counted, not killed */
	const struct cgi_limits *limits; /* per-job rlimits and nice (borrowed, lives as long as the
	                                    engine); NULL = programs inherit cgiq's */
	const struct cgi_identity *program_user; /* --program-user (borrowed); NULL = cgiq's own */
	/* --interpreter (borrowed, lives as long as the engine): for programs
	 * no rule matches */
	const struct cgi_interpreter *interpreters;
	unsigned interpreter_count;
	/* per-script rules (NULL/0 = none); the array must outlive the engine */
	const char *cgi_root;       /* canonical, no trailing slash: what patterns are relative to */
	const struct job_script_rule *rules;
	unsigned rule_count;
};

struct job_engine;
struct job;

/* How processes a program leaves behind are found on this host, for
 * --check-config: a static string. Makes the calling process a child
 * subreaper as a side effect (the test of it). */
const char *job_leftover_mechanism(void);

/*
 * Creates the engine on loop, using store for the record (the engine's
 * recorder thread becomes the store's only user until job_engine_close).
 * Before anything runs, jobs a previous cgiq left queued or running are
 * marked interrupted and their process groups killed, except asynchronous
 * ones: queued ones run again in their order, and so do running ones of a
 * script whose rule has retry_interrupted (when their body is still on disk).
 * Returns 0 or a negative errno.
 */
int job_engine_open(uv_loop_t *loop, struct store *store, const struct job_config *cfg,
                    struct job_engine **out);

/*
 * Starts the engine's threads (the recorder, the spawners), then the
 * asynchronous jobs a previous cgiq left queued. Separate from
 * job_engine_open so that the daemon can bind its sockets and drop its
 * privileges in between: nothing runs before this call, and no thread exists
 * that the drop could miss. Call it once, before the loop runs. Returns 0,
 * or a negative errno when a thread cannot start (then close the engine).
 */
int job_engine_start(struct job_engine *e, struct store *store);

/*
 * Shutdown: kills every job still running (state interrupted, reason given),
 * drops queued ones (interrupted), writes the record, stops the recorder.
 * The engine's handles are closed; run the loop until it returns before
 * freeing the loop. The engine frees itself once every job is released.
 */
void job_engine_close(struct job_engine *e, const char *reason);

/*
 * Graceful shutdown, first step: from now on job_submit and job_submit_async
 * fail with -ESHUTDOWN, queued synchronous jobs end interrupted with reason
 * (their done callbacks run: the client gets 503), queued asynchronous jobs
 * stay queued (in memory and in their rows) and are not started, running jobs
 * go on and end normally. job_engine_close ends the rest. Safe twice.
 */
void job_engine_drain(struct job_engine *e, const char *reason);
/* Jobs running now (spawning included): the drain is over at 0. */
unsigned job_engine_running(const struct job_engine *e);

/*
 * A streamed job's submitter (--stream): head once the program's header
 * block is complete (job_result's resp is then set, its body not kept),
 * data for each piece of the body as the program writes it (valid during
 * the call only). A slow reader calls job_stream_pause, and
 * job_stream_resume once it has room: the program then waits on its pipe.
 * The done callback still ends it: succeeded, or cut (any other state).
 * A local redirect (RFC 3875 6.2.2) is not streamed.
 */
struct job_stream_ops {
	void (*head)(struct job *j, void *ud);
	void (*data)(struct job *j, const char *data, size_t len, void *ud);
};

/* What to run, and what to record. Strings are copied; env is moved. */
struct job_request {
	const char *script;       /* absolute path of the program */
	const char *cwd;          /* its directory */
	struct cgi_env *env;      /* moved into the job (left empty) */
	/* the request body, one of: */
	int body_fd;              /* >= 0: a file positioned at 0, moved into the job */
	const char *body_mem;     /* else this many bytes (copied), NULL/0 = no body */
	size_t body_len;
	/* for the record */
	const char *method;
	const char *uri;
	const char *peer;
	int64_t bytes_in;
	/* from job_rule_lookup for script; NULL = the engine's global settings */
	const struct job_script_rule *rule;
	/* for job_submit: used when the program streams (job_request_streams),
	 * with the done callback's ud; NULL = never streamed */
	const struct job_stream_ops *stream;
};

/* Whether req's program streams: an NPH program (cfg.nph_prefix), or its
 * rule or a --stream pattern says so; and the request is not a HEAD (its
 * answer has no body to stream). Then it is never shared with another
 * request (--coalesce). Any thread. */
int job_request_streams(const struct job_engine *e, const struct job_request *req);
/* The submitter has no room for more of a streamed body / has again. */
void job_stream_pause(struct job *j);
void job_stream_resume(struct job *j);

/*
 * The first rule of the engine's configuration matching script_filename (an
 * absolute path below cfg->cgi_root), or NULL when none does (or the path is
 * not below the root). The rules never change once the engine is open, so
 * any thread may call this.
 */
const struct job_script_rule *job_rule_lookup(const struct job_engine *e, const char *script_filename);

/* The interpreter that runs script_filename (--interpreter, of its rule or
 * the global ones), or NULL when the file is the program. Any thread. The
 * path mapping asks this (a file an interpreter runs need not be
 * executable), and the engine starts the job with it. */
const char *job_interpreter_for(const struct job_engine *e, const char *script_filename);

/* Called on the loop thread when the job has ended (any final state) unless
 * it was cancelled with job_cancel. The job stays valid until job_release. */
typedef void (*job_done_cb)(struct job *job, void *ud);
/* Called on the loop thread once an asynchronous job's row and request body
 * are on disk (result 0) or could not be made durable (negative errno). */
typedef void (*job_accepted_cb)(struct job *job, int result, void *ud);

/*
 * Accepts a job: writes its record (queued), starts it now or when a slot
 * frees. Returns 0 and *out (one reference, released with job_release).
 */
int job_submit(struct job_engine *e, struct job_request *req, job_done_cb done, void *ud,
               struct job **out);
/* (Both submit calls fail with -ESHUTDOWN once the engine drains or closes.) */

/*
 * An asynchronous job (RFC 7240 respond-async): like job_submit, but the
 * request body is written to a named spool file and fsync'ed, the row is
 * committed with fsync, and only then accepted(job, 0, ud) runs. The job can
 * be found by id, runs even after a restart if it was still queued, and its
 * output is kept for result_ttl_ms. No done callback. Returns 0, -EAGAIN
 * (queue full), or a negative errno (body could not be spooled).
 */
int job_submit_async(struct job_engine *e, struct job_request *req, job_accepted_cb accepted, void *ud,
                     struct job **out);

/* The submitter stops waiting (client gone with --on-disconnect detach, or
 * Prefer: wait ran out): the job goes on, can be found by id, keeps its
 * result. The done callback is not called after this. */
void job_detach(struct job *j);

/*
 * The submitter that registered ud stops waiting for a job it may share with
 * other requests (--coalesce). While others wait, the job goes on for them
 * (detach: its result is also kept, as job_detach); when ud was the last one,
 * this is job_detach (detach) or job_cancel (reason). ud's done callback is
 * not called after this. Use it instead of job_cancel/job_detach for jobs
 * from job_submit.
 */
void job_leave(struct job *j, void *ud, int detach, const char *reason);

/* Makes a running synchronous job findable by id (its status monitor was
 * announced in a 102). */
void job_expose(struct job *j);

/* Latest progress the program reported (reads its progress pipe first):
 * 1 and the values, or 0 when none. */
int job_progress(struct job *j, int64_t *done, int64_t *total, const char **text);

/*
 * Status monitor document (JSON, one object) of a job found by id: in memory
 * or in the database. *retry_after_s is set while it is not finished.
 * Returns 0 or -ENOENT (unknown, expired, or never exposed).
 */
int job_status_json(struct job_engine *e, const char *id, struct buf *out, unsigned *retry_after_s);

/* A kept result, for GET /_cgiq/jobs/{id}/result. */
struct job_stored_result {
	int http_status;
	char *head;      /* reason phrase line, then header lines (CRLF each); may be NULL */
	int fd;          /* the body (pread from 0), -1 when none was kept */
	uint64_t size;   /* body bytes */
	char *file_name; /* the body's file name in the spool directory, or NULL */
};
/* Returns 0, -EAGAIN (not finished yet), or -ENOENT (unknown or expired). */
int job_stored_result_open(struct job_engine *e, const char *id, struct job_stored_result *out);
void job_stored_result_close(struct job_stored_result *r);

/* DELETE: cancels a queued or running job (process group killed) and frees
 * its result. Returns 0 or -ENOENT. */
int job_delete(struct job_engine *e, const char *id);

/* The result of an ended job. Pointers valid until job_release. */
struct job_result {
	enum store_state state;
	int http_status;                 /* what the client should get: the program's, 502, 504 */
	const struct cgi_response *resp; /* program's header block; NULL when it failed before one */
	const char *body_mem;            /* body in memory, or NULL when spooled */
	uint64_t body_bytes;             /* body size either way */
	int body_fd;                     /* spool file (read with pread), -1 when in memory */
	const char *reason;              /* why it did not succeed, or NULL */
	int exit_code;                   /* the program's exit status, -1 when none */
	int term_signal;                 /* the signal that ended it, -1 when none */
};

const char *job_id(const struct job *j);
/* The program's header block once it is complete (a streamed job's head
 * callback reads it), else NULL. Valid until job_release. */
const struct cgi_response *job_response(const struct job *j);
const struct job_result *job_result(const struct job *j);
enum store_state job_state(const struct job *j);

/* Counts one 102 Processing sent for this job (goes into the record). */
void job_note_processing(struct job *j);

/*
 * The client went away: a queued job is dropped, a running one killed with
 * the kill sequence; the job ends cancelled with reason. The done callback is
 * not called after this. Safe on an ended job (no effect but detaching).
 */
void job_cancel(struct job *j, const char *reason);

/* Drops the caller's reference; the job is freed once the engine is done with it too. */
void job_release(struct job *j);

/* A uv_alloc_cb for streams on the loop thread whose read callbacks consume
 * the bytes before returning (all of cgiq's): one shared 64 KiB buffer. */
#define JOB_LOOP_READ_BYTES 65536
void job_loop_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);

/* Counters for logs and tests. */
struct job_stats {
	unsigned running;
	unsigned queued;
	uint64_t submitted;
	uint64_t finished;
	uint64_t refused;   /* queue full */
};
void job_engine_stats(const struct job_engine *e, struct job_stats *out);

/* ---------------- metrics (observe.c; counted in engine.c) ----------------
 * Written and read on the loop thread only. */

/* Upper bounds of the histogram buckets, in seconds (the +Inf bucket is extra). */
#define JOB_HIST_BOUNDS 14
extern const double job_hist_bounds_s[JOB_HIST_BOUNDS];

struct job_histogram {
	uint64_t bucket[JOB_HIST_BOUNDS + 1]; /* NOT cumulative: [i] counts values in (bound[i-1], bound[i]], the last +Inf */
	uint64_t count;
	uint64_t sum_us;
};
/* Counts one observation of value_us (negative counts as 0). */
void job_histogram_observe(struct job_histogram *h, int64_t value_us);

struct job_metrics {
	uint64_t finished[STORE_STATE_COUNT];  /* jobs ended, by final state */
	unsigned running;
	unsigned queued;
	uint64_t submitted;
	uint64_t refused_queue_full;           /* job_submit* returned -EAGAIN */
	uint64_t processing_sent;              /* 102s counted with job_note_processing */
	uint64_t coalesced;                    /* requests that joined another's job (--coalesce) */
	uint64_t spool_written_bytes;          /* program output written to spool files */
	uint64_t results_kept_bytes;           /* kept results on disk, as of the last sweep */
	uint64_t leftovers;                    /* processes that outlived their job */
	uint64_t stderr_dropped_lines;         /* stderr lines not logged (rate or volume limit) */
	struct job_histogram duration;         /* started -> ended, jobs that ran */
	struct job_histogram queue_wait;       /* created -> started */
};
/* A snapshot of the engine's counters. Loop thread. */
void job_engine_metrics(const struct job_engine *e, struct job_metrics *out);

/*
 * 0 when the engine accepts jobs and its recorder thread keeps up (rows handed
 * to it are taken within a few seconds, the last commit succeeded); else -1
 * and *why says what is wrong (a static string). Loop thread.
 */
int job_engine_health(struct job_engine *e, const char **why);

/* Whether the job store is a server (PostgreSQL) whose last write failed:
 * a synchronous job now would be run and its row lost, so it is refused
 * (503) until a write succeeds again. An SQLite store never is: a full
 * disk does not stop the answers. Loop thread. */
int job_engine_store_down(struct job_engine *e);

/*
 * Lists recorded jobs newest first through the engine's read-only database
 * handle (the one status monitors use), at most limit (capped by the caller),
 * optionally only in *state. The callback is as for store_jobs_list. Returns
 * 0, what the callback returned, -ENOENT when no reader is open, or -EIO.
 * Loop thread: one indexed query, bounded by limit.
 */
int job_list(struct job_engine *e, const enum store_state *state, unsigned limit,
             int (*cb)(const struct store_job *j, void *ud), void *ud);

/* How long the program ran, in ms; -1 when it never started (or has not ended). */
int64_t job_duration_ms(const struct job *j);

#endif
