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

struct job_config {
	unsigned max_jobs;          /* programs running at once; more wait in FIFO order */
	uint64_t job_timeout_ms;    /* 0 = none */
	uint64_t kill_grace_ms;     /* between SIGTERM and SIGKILL */
	uint64_t max_output_bytes;  /* body bytes a program may write; beyond: killed, 502 */
	size_t output_mem_bytes;    /* output kept in memory up to this, then spooled to a file */
	size_t stderr_tail_bytes;   /* last bytes of stderr kept in the record */
	const char *spool_dir;      /* where output spool files go (exists) */
};

struct job_engine;
struct job;

/*
 * Creates the engine on loop, using store for the record (the engine's
 * recorder thread becomes the store's only user until job_engine_close).
 * Before anything runs, jobs a previous cgiq left queued or running are
 * marked interrupted and their process groups killed.
 * Returns 0 or a negative errno.
 */
int job_engine_open(uv_loop_t *loop, struct store *store, const struct job_config *cfg,
                    struct job_engine **out);

/*
 * Shutdown: kills every job still running (state interrupted, reason given),
 * drops queued ones (interrupted), writes the record, stops the recorder.
 * The engine's handles are closed; run the loop until it returns before
 * freeing the loop. The engine frees itself once every job is released.
 */
void job_engine_close(struct job_engine *e, const char *reason);

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
};

/* Called on the loop thread when the job has ended (any final state) unless
 * it was cancelled with job_cancel. The job stays valid until job_release. */
typedef void (*job_done_cb)(struct job *job, void *ud);

/*
 * Accepts a job: writes its record (queued), starts it now or when a slot
 * frees. Returns 0 and *out (one reference, released with job_release).
 */
int job_submit(struct job_engine *e, struct job_request *req, job_done_cb done, void *ud,
               struct job **out);

/* The result of an ended job. Pointers valid until job_release. */
struct job_result {
	enum store_state state;
	int http_status;                 /* what the client should get: the program's, 502, 504 */
	const struct cgi_response *resp; /* program's header block; NULL when it failed before one */
	const char *body_mem;            /* body in memory, or NULL when spooled */
	uint64_t body_bytes;             /* body size either way */
	int body_fd;                     /* spool file (read with pread), -1 when in memory */
	const char *reason;              /* why it did not succeed, or NULL */
};

const char *job_id(const struct job *j);
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
};
void job_engine_stats(const struct job_engine *e, struct job_stats *out);

/* ---------- recorder (internal to the module, used by engine.c) ---------- */
struct jobs__recorder;
int jobs__recorder_start(struct store *store, struct jobs__recorder **out);
/* Queue a copy of j (strings copied). kind: 0 insert, 1 started, 2 finished.
 * Loop thread only; nothing reaches the thread before jobs__recorder_flush. */
void jobs__recorder_put(struct jobs__recorder *r, int kind, const struct store_job *j);
/* Hands what was put since the last flush to the thread (one lock, one wake-up
 * per loop iteration rather than per row). Loop thread only. */
void jobs__recorder_flush(struct jobs__recorder *r);
/* Writes everything queued, stops the thread, frees. */
void jobs__recorder_stop(struct jobs__recorder *r);

/* ---------- spawner (internal): programs are started off the loop thread ---------- */
struct jobs__spawn_req {
	struct jobs__spawn_req *next;
	struct cgi_spawn opts;   /* strings owned by the submitter until done */
	struct cgi_proc proc;    /* result */
	int err;                 /* result: 0 or negative errno */
	void *ud;
};
struct jobs__spawner;
/* on_done runs on the loop thread for each finished request. */
int jobs__spawner_start(uv_loop_t *loop, void (*on_done)(struct jobs__spawn_req *req, void *ctx),
                        void *ctx, struct jobs__spawner **out);
void jobs__spawner_submit(struct jobs__spawner *s, struct jobs__spawn_req *req);
/* Finishes what was submitted (on_done still runs for it), stops the thread,
 * closes the async handle, then calls on_closed(ctx) and frees itself. */
void jobs__spawner_close(struct jobs__spawner *s, void (*on_closed)(void *ctx));

#endif
