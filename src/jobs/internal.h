/*
 * Internals of the jobs module, shared by engine.c (process lifecycle),
 * async.c (registry, asynchronous jobs, kept results, expiry), recorder.c
 * and spawner.c. Nothing outside src/jobs includes this.
 */
#ifndef CGIQ_JOBS_INTERNAL_H
#define CGIQ_JOBS_INTERNAL_H

#include <pthread.h>

#include "jobs.h"

#define STDERR_LINE_MAX 1024
/* Rows are handed to the recorder at most this long after they change: under
 * load one commit carries ~70 jobs (at 5 ms, the recorder used 20 us a job
 * rather than 12), and a job that ended within it is written once. */
#define RECORD_FLUSH_MS 25
#define REGISTRY_BUCKETS 4096
/* retry-interrupted / --rerun-interrupted: runs again after crashes, at most */
#define JOBS__RETRY_MAX 3

/* ---------- recorder (internal to the module, used by engine.c) ---------- */
struct jobs__recorder;
enum {
	JOBS__REC_INSERT, JOBS__REC_STARTED, JOBS__REC_FINISHED, JOBS__REC_PROGRESS,
	JOBS__REC_EXPIRE_AT, JOBS__REC_EXPIRE, /* expire: job.expires_at_us is "now" */
	JOBS__REC_FORGET, /* the recorder's own: see keep_ops */
};
/* on_durable(token, 0 or -errno, ctx) runs on the recorder thread after the
 * commit of each durable change. */
int jobs__recorder_start(struct store *store, void (*on_durable)(void *token, int result, void *ctx),
                         void *ctx, struct jobs__recorder **out);
/* Queue a copy of j (strings copied) for kind. durable: commit it with fsync
 * and report token to on_durable. Loop thread only; nothing reaches the
 * thread before jobs__recorder_flush. */
void jobs__recorder_put(struct jobs__recorder *r, int kind, const struct store_job *j, int durable,
                        void *token);
/* Where a put INSERT waits until the next flush; see jobs__recorder_amend. */
struct jobs__rec_mark {
	void *op;
	uint64_t flush;
};
/* As jobs__recorder_put of a non-durable INSERT, and sets *mark. */
void jobs__recorder_put_marked(struct jobs__recorder *r, const struct store_job *j,
                               struct jobs__rec_mark *mark);
/* A short job usually ends before its INSERT has left the loop thread: then
 * its final fields (those of a FINISHED change, fin) go into that INSERT and
 * the row is written once. Returns 0 when done so, -1 when the INSERT was
 * already handed over (the caller puts a FINISHED change instead). Changes
 * put after the INSERT still apply after it, so fin must be the job's last
 * word on the columns it sets. Clears *mark. Loop thread only. */
int jobs__recorder_amend(struct jobs__recorder *r, struct jobs__rec_mark *mark,
                         const struct store_job *fin);
/* Hands what was put since the last flush to the thread (one lock, one wake-up
 * per loop iteration rather than per row). Loop thread only. */
void jobs__recorder_flush(struct jobs__recorder *r);
/* 0 when the thread keeps up: rows handed over are taken within stuck_ms,
 * and the last commit succeeded; else -1 with *why. Loop thread. */
int jobs__recorder_health(struct jobs__recorder *r, uint64_t stuck_ms, const char **why);
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
/* on_done runs on the loop thread for each finished request. No thread is
 * started before jobs__spawner_run; requests submitted wait for it. */
int jobs__spawner_open(uv_loop_t *loop, void (*on_done)(struct jobs__spawn_req *req, void *ctx),
                       void *ctx, struct jobs__spawner **out);
/* Starts the threads. Returns 0 or a negative errno. */
int jobs__spawner_run(struct jobs__spawner *s);
void jobs__spawner_submit(struct jobs__spawner *s, struct jobs__spawn_req *req);
/* Finishes what was submitted (on_done still runs for it), stops the thread,
 * closes the async handle, then calls on_closed(ctx) and frees itself. */
void jobs__spawner_close(struct jobs__spawner *s, void (*on_closed)(void *ctx));



enum { PIPE_IN = 0, PIPE_OUT = 1, PIPE_ERR = 2, PIPE_COUNT = 3 };

struct job {
	struct job_engine *e;
	int refs;
	char id[UTIL_ID_LEN + 1];
	enum store_state state;
	int ended;

	/* request */
	char *script, *cwd;
	struct cgi_env env;
	int body_fd;
	char *body_mem;
	size_t body_len;
	char *method, *uri, *peer;
	int64_t bytes_in;

	job_done_cb done;
	void *ud;
	/* Coalesced requests (--coalesce) beyond the first, each with a
	 * reference, in the order they joined; waiters_tail is where the next
	 * one goes (valid while waiters is not NULL), so a join is O(1). */
	struct job_waiter {
		job_done_cb done;
		void *ud;
		struct job_waiter *next;
	} *waiters, **waiters_tail;
	char *coalesce_key;          /* script and query; NULL: not shared */
	struct job *co_next, *co_prev; /* e->coalescing, while it may still be joined */

	/* the settings of its script (a rule's, or the globals) */
	struct job_policy policy;
	int rule;       /* index in cfg.rules, -1 = none */

	/* FIFO queue and running list */
	struct job *next, *prev;

	/* process */
	pid_t pid;
	int group_slot;       /* its slot in the groups file (groups.c), -1 none */
	int exited;
	int wait_status;
	uv_pipe_t pipes[PIPE_COUNT];
	int pipe_open[PIPE_COUNT];
	uv_write_t in_req;
	uv_timer_t timer;
	int timer_open;
	int kill_phase; /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
	int lingering;  /* the program exited; something it left holds its pipes */
	int inserted;   /* its row has been queued for writing */
	struct jobs__rec_mark rec_mark; /* its INSERT, while it may still be amended */
	int spawning;   /* handed to the spawner thread, pid not known yet */
	unsigned long long start_ticks; /* clock ticks since boot before it was started, as /proc's */
	char *argv[3]; /* the program (or its interpreter, then the file) */
	struct jobs__spawn_req sreq;
	int handles_open;

	/* why it is ending, when not of its own accord */
	int timed_out, cancelled, interrupted, output_over, spool_failed;
	char *reason;

	/* streaming (--stream): stream set while a submitter takes the body as
	 * it comes; streamed once its head went out (the body is then never
	 * kept, and a submitter that leaves cuts it); paused while it has no
	 * room (stdout is not read) */
	const struct job_stream_ops *stream;
	void *stream_ud;
	int streamed, stream_paused;

	/* output */
	struct cgi_response resp;
	int headers_done;
	int header_error;
	char header_sample[64];
	size_t header_sample_len;
	struct buf out_mem;
	int spool_fd;
	uint64_t body_bytes;
	struct buf err_line;
	struct buf err_tail;
	uint64_t err_bytes;         /* stderr bytes read */
	uint64_t err_logged_bytes;  /* of which logged */
	uint64_t err_dropped_lines, err_dropped_bytes;
	uint64_t err_tokens_ms;     /* rate limit: lines allowed, in thousandths */
	uint64_t err_refill_ms;     /* when the tokens were last refilled */
	int stderr_over;            /* past max_stderr_bytes: being killed */

	unsigned processing_sent;
	int64_t created_at_us;
	int64_t started_at_us;
	int64_t finished_at_us;
	struct job_result result;

	/* asynchronous jobs and kept results (async.c) */
	int async;            /* accepted with 202: row and body durable, result kept */
	int keep_result;      /* the output outlives the request (async or detached) */
	int registered;       /* findable by id (status monitor) */
	int deleted;          /* DELETE'd: gone for clients, kept until the sweep */
	struct job *reg_next; /* registry chain */
	char *body_path;      /* durable request body of an async job */
	char *result_path;    /* kept output */
	char *result_head;    /* reason line + header lines of the kept output */
	int64_t expires_at_us;
	job_accepted_cb accepted;
	void *accepted_ud;
	struct job *accepted_next; /* list of durable inserts committed, under e->accepted_lock */
	int accepted_result;
	int awaiting_commit;  /* async: starts only once its row is committed */

	/* progress reported by the program */
	int64_t progress_done, progress_total;
	char *progress_text;
	struct buf prog_line;
	int prog_fd;                /* read end of the program's fd 3, non-blocking; -1 */
	uint64_t progress_read_at;  /* the loop time job_progress last read prog_fd */
	unsigned progress_bad;      /* malformed lines, ignored */
	uint64_t progress_saved_ms; /* last write to the record (rate limit) */
	int progress_unsaved;
};

/* A process that outlived its job, being stopped (leftovers.c). */
struct jobs__leftover {
	pid_t pid;
	unsigned long long start; /* with pid, tells it from a later process with its pid */
	uint64_t term_at_ms;      /* when it got SIGTERM */
	int leads_group;          /* its own process group goes with it */
	int killed;               /* SIGKILL sent */
	int kept;                 /* --leftovers keep: logged, counted, left alone */
	int seen;                 /* still there at the last sweep */
	char job[UTIL_ID_LEN + 1]; /* the job it is taken for, "" unknown */
};

struct job_engine {
	uv_loop_t *loop;
	struct job_config cfg;
	struct jobs__recorder *rec;
	int store_is_server;   /* the store is PostgreSQL (job_engine_store_down) */
	uv_timer_t flush;    /* hands accumulated rows to the recorder */
	uv_signal_t sigchld;
	struct jobs__spawner *spawner;
	/* exits reaped before the spawner's result reached the loop */
	struct {
		pid_t pid;
		int status;
	} unclaimed[64];
	unsigned unclaimed_next;
	unsigned spawning_count; /* jobs handed to the spawner, pid not known yet */
	/* leftovers.c */
	int subreaper;           /* PR_SET_CHILD_SUBREAPER is in force */
	uv_timer_t leftover_timer;
	struct jobs__leftover leftovers[256];
	unsigned leftover_count;
	int devnull_fd;
	struct job *queue_head, *queue_tail;
	struct job *running; /* doubly linked */
	struct job *coalescing; /* jobs others may join (--coalesce), doubly linked */
	uint64_t coalesced;     /* requests that joined a job */
	uint64_t results_kept_bytes; /* kept results, summed at the last sweep */
	int32_t *group_slots;        /* groups.c: the running programs' pids, mapped shared */
	unsigned group_slot_count;
	unsigned running_count, queued_count;
	unsigned *rule_running; /* jobs running per cfg.rules entry */
	uint64_t submitted, finished;
	int closing;
	int draining;        /* job_engine_drain: nothing new starts */
	int closed_flush;
	char *close_reason;
	uint64_t refused;
	struct job_metrics metrics; /* counted where the events happen; running/queued unused */

	/* hooks set by life.c: the layer above the core (async.c), which
	 * engine.c does not call by name */
	void (*keep_result)(struct job *j, struct store_job *r); /* a kept job ended */
	void (*core_closed)(struct job_engine *e); /* the core's handles are closed */

	/* async.c */
	struct job *registry[REGISTRY_BUCKETS];
	struct store *reader;        /* read-only look-ups of jobs not in memory */
	int spool_dir_fd;
	uv_async_t accepted_async;
	pthread_mutex_t accepted_lock;
	struct job *accepted_head;   /* under accepted_lock */
	uv_timer_t sweep;
	uv_timer_t cancel_poll;      /* operators' cancel requests in the database */
	uv_timer_t progress_poll;    /* drains running jobs' progress pipes */
};

/* leftovers.c: cgiq as child subreaper, and what programs leave behind */
/* Now in clock ticks since boot (the unit of /proc/PID/stat's start time). */
unsigned long long jobs__boot_ticks(void);
int jobs__leftovers_open(struct job_engine *e);
/* At j's end (j off the running list): stops the orphans that outlived it
 * and others found; returns how many were j's own. */
unsigned jobs__leftovers_job_end(struct job_engine *e, struct job *j);
/* j is being killed (timeout, cancel, stop) or ends: SIGTERM to its orphans
 * (and any others found), SIGKILL after --kill-grace. */
void jobs__leftovers_stop_job(struct job_engine *e, const struct job *j);
/* At start: kills every process whose environment names one of ids (jobs a
 * previous cgiq left unfinished; it died, so they went to init). One scan
 * of /proc. */
void jobs__leftovers_recover(const char (*ids)[UTIL_ID_LEN + 1], size_t count);
/* At the engine's close: every orphan left gets SIGKILL; the timer closes. */
void jobs__leftovers_close(struct job_engine *e);

/* engine.c */
void jobs__record_put(struct job_engine *e, int kind, const struct store_job *r);
/* After a change was put on e->rec directly: schedules its hand-over. */
void jobs__record_schedule_flush(struct job_engine *e);
void jobs__record_base(const struct job *j, struct store_job *r);
/* The fields of a job's first row: base, script, method, uri, peer, created_at, bytes_in. */
void jobs__insert_fields(const struct job *j, struct store_job *r);
void jobs__job_unref(struct job *j);
/* Keeps a job that nobody waits for any more: result kept, findable by id. */
void jobs__keep(struct job *j);
void jobs__enqueue(struct job *j);
struct job *jobs__job_new(struct job_engine *e);
/* Takes the policy of rule (NULL: the globals) for j; before it starts. */
void jobs__job_set_rule(struct job *j, const struct job_script_rule *rule);
/* A job from a request with the submitter's reference, not yet started or queued. */
int jobs__submit_prepared(struct job_engine *e, struct job_request *req, struct job **out);
/* Reads what the program wrote on its progress pipe so far (non-blocking). */
void jobs__progress_drain(struct job *j);
/* Cancels a job; unlike job_cancel, a waiting submitter still gets its done callback. */
void jobs__job_kill(struct job *j, const char *reason);
/* Drops a job that never started or queued (closes its timer). */
void jobs__job_discard(struct job *j);
/* output.c: bytes from the program's stdout and stderr. 1: a limit is
 * reached (the reason set), the program must be stopped. */
int jobs__output_stdout(struct job *j, const char *data, size_t len);
int jobs__output_stderr(struct job *j, const char *data, size_t len);
/* The one log line that says what of j's stderr did not reach the log. */
void jobs__stderr_dropped_note(const struct job *j);

/* The submitter of a streamed job lets go of it: no more callbacks, and
 * its stdout is read again (to be dropped) so the program is not blocked. */
void jobs__stream_stop(struct job *j);

/* The first reason given is the one the row keeps. */
static inline void jobs__set_reason(struct job *j, const char *reason)
{
	if (j->reason == NULL && reason != NULL)
		j->reason = util_xstrdup(reason);
}

/* A free slot overall, and below the script rule's max-running (rule -1: none). */
int jobs__may_start(const struct job_engine *e, int rule);
/* Ends j with reason: out of the queue, or its kill sequence. */
void jobs__job_stop(struct job *j, const char *reason);
/* The last step of job_engine_close, after async.c closed its handles. */
void jobs__engine_free(struct job_engine *e);
/* The core's handles and the spawner (no thread yet); called by life.c. */
int jobs__engine_core_open(struct job_engine *e);

/* groups.c: the running programs' process groups, kept where a kill -9 of
 * cgiq cannot lose them. open kills what a previous run left (before
 * recovery); add when a program started, remove when its job ended. */
int jobs__groups_open(struct job_engine *e);
void jobs__groups_add(struct job_engine *e, struct job *j);
void jobs__groups_remove(struct job_engine *e, struct job *j);
void jobs__groups_close(struct job_engine *e);

/* async.c */
void jobs__registry_add(struct job_engine *e, struct job *j);
struct job *jobs__registry_find(struct job_engine *e, const char *id);
void jobs__registry_remove(struct job_engine *e, struct job *j);
/* At the end of a job that keeps its result: moves the output into a named
 * spool file and fills the result fields of r (the finished row). */
void jobs__keep_result(struct job *j, struct store_job *r);
/* On the recorder thread: a durable insert was committed. */
void jobs__on_durable(void *token, int result, void *ctx);
int jobs__async_open(struct job_engine *e);
void jobs__async_close(struct job_engine *e);
/* Before store_recover: asynchronous jobs a previous run left running, of
 * scripts whose rule says retry_interrupted, go back to queued. Returns how
 * many, or a negative errno. */
int jobs__retry_interrupted(struct job_engine *e, struct store *store);
/* Re-queues the asynchronous jobs a previous run accepted. */
int jobs__requeue(struct job_engine *e, struct store *store);

#endif
