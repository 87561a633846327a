/*
 * The recorder: a thread that owns the store while the daemon runs. The event
 * loop queues row changes and never waits for SQLite; the thread applies
 * whatever has accumulated in one transaction, so under load many jobs share
 * one commit (and one WAL append).
 *
 * A change can be marked durable: its batch is committed with fsync
 * (synchronous = FULL), and only then is its token handed to the done hook,
 * which the engine uses to answer 202 Accepted for an asynchronous job.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Changes kept while the database cannot take writes: at most KEEP_MAX
 * (only jobs already running end while a server store is down; new ones
 * are refused), tried again every KEEP_RETRY_MS, and for at most
 * KEEP_AT_STOP_MS once the daemon stops. */
#define KEEP_MAX 20000
#define KEEP_RETRY_MS 500
#define KEEP_AT_STOP_MS 3000

struct rec_op {
	struct rec_op *next;
	int kind;
	int durable;
	int result;   /* of applying it */
	int kept;     /* tried before, when the database could not take it */
	void *token;
	struct store_job job;
};

struct jobs__recorder {
	struct store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct rec_op *head, *tail;             /* handed over, under lock */
	struct rec_op *pending, *pending_tail;  /* loop thread only, not yet handed over */
	uint64_t flushes;                        /* loop thread only: hand-overs so far */
	int stopping;
	uint64_t handed_at_ms;  /* under lock: when head became non-empty, 0 when empty */
	int last_failed;        /* under lock: the last batch did not commit */
	struct rec_op *kept;    /* recorder thread: changes waiting for the database, in order */
	size_t kept_n;
	void (*on_durable)(void *token, int result, void *ctx);
	void *ctx;
};

static char *dup_or_null(const char *s) { return s ? util_xstrdup(s) : NULL; }

static void op_free(struct rec_op *op)
{
	store_job_clear(&op->job);
	free(op);
}

static void unlink_files(const char *result_path, const char *body_path, void *ud)
{
	(void)ud;
	if (result_path)
		unlink(result_path);
	if (body_path)
		unlink(body_path);
}

static int apply(struct store *store, struct rec_op *op)
{
	switch (op->kind) {
	case JOBS__REC_INSERT:
		return store_job_insert(store, &op->job);
	case JOBS__REC_STARTED:
		return store_job_started(store, op->job.id, op->job.pid, op->job.started_at_us);
	case JOBS__REC_FINISHED:
		return store_job_finished(store, &op->job);
	case JOBS__REC_PROGRESS:
		return store_job_progress(store, op->job.id, op->job.progress_done, op->job.progress_total,
		                          op->job.progress_text);
	case JOBS__REC_EXPIRE_AT:
		return store_job_expire_at(store, op->job.id, op->job.expires_at_us);
	case JOBS__REC_FORGET:
		return store_job_forget(store, op->job.id);
	default: {
		int n = store_expire(store, op->job.expires_at_us, unlink_files, NULL);
		if (n > 0)
			log_info("deleted %d expired job(s) and their files", n);
		return n < 0 ? n : 0;
	}
	}
}

/* Writes ops in one transaction: 0 (each op's result set), -EAGAIN (the
 * database cannot take writes now: nothing written), or -EIO (*began: a
 * transaction was begun, so a row may be what failed it). *op_failed is
 * set when a row failed inside a transaction that wrote the rest. */
static int write_ops(struct jobs__recorder *r, struct rec_op *ops, int *op_failed, int *began)
{
	int durable = 0, c;

	for (struct rec_op *op = ops; op; op = op->next)
		durable |= op->durable;
	/* Errors are logged by the store; a failed batch must not stop the daemon. */
	if (durable)
		store_set_durable(r->store, 1);
	c = store_begin(r->store);
	*began = c == 0;
	if (c == 0) {
		for (struct rec_op *op = ops; op; op = op->next) {
			op->result = apply(r->store, op);
			/* -ENOENT: the row is gone (expired, never inserted), not a
			 * failed write; -EEXIST of a kept insert: an earlier try was
			 * committed after all, its answer lost with the connection */
			*op_failed |= op->result < 0 && op->result != -ENOENT && !(op->result == -EEXIST && op->kept);
		}
		c = store_commit(r->store);
	}
	if (durable)
		store_set_durable(r->store, 0);
	return c;
}

/* Ends ops: a durable change is only reported accepted once it is
 * committed (err: the transaction's failure, else 0). */
static void finish_ops(struct jobs__recorder *r, struct rec_op *ops, int err)
{
	while (ops) {
		struct rec_op *next = ops->next;
		if (ops->durable && r->on_durable)
			r->on_durable(ops->token, err < 0 ? -EIO : ops->result, r->ctx);
		op_free(ops);
		ops = next;
	}
}

/* Progress lines are only the latest word: the first dropped when too many
 * changes are kept. Then the oldest, said. */
static void trim_kept(struct jobs__recorder *r)
{
	struct rec_op **pp = &r->kept;
	size_t dropped = 0;

	while (*pp && r->kept_n > KEEP_MAX) {
		struct rec_op *op = *pp;
		if (op->kind != JOBS__REC_PROGRESS) {
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		op_free(op);
		r->kept_n--;
	}
	while (r->kept_n > KEEP_MAX) {
		struct rec_op *op = r->kept;
		r->kept = op->next;
		op_free(op);
		r->kept_n--;
		dropped++;
	}
	if (dropped)
		log_warnx("dropped the %zu oldest row change(s) kept for the job database: more than %d waited", dropped,
		          KEEP_MAX);
}

/*
 * The database cannot take writes now (a server gone or read-only): the
 * changes are kept, in order, and written before any later one when it
 * can. A durable one (an asynchronous job's insert) is answered failed at
 * once: its job is refused (503) and never runs. But a commit whose answer
 * the lost connection took may have been written all the same: what is
 * kept in its place deletes that row if it is there, so a refused job
 * leaves none (nor runs at the next start).
 */
static void keep_ops(struct jobs__recorder *r, struct rec_op *ops)
{
	struct rec_op **tail = &r->kept;
	size_t before = r->kept_n;

	r->kept = NULL; /* the batch began with what was kept */
	r->kept_n = 0;
	while (ops) {
		struct rec_op *next = ops->next;
		ops->next = NULL;
		if (ops->durable) {
			if (r->on_durable)
				r->on_durable(ops->token, -EIO, r->ctx);
			ops->durable = 0;
			ops->token = NULL;
			ops->kind = JOBS__REC_FORGET;
		}
		ops->kept = 1;
		*tail = ops;
		tail = &ops->next;
		r->kept_n++;
		ops = next;
	}
	if (r->kept_n > KEEP_MAX)
		trim_kept(r);
	if (before == 0 && r->kept_n > 0)
		log_warnx("the job database cannot take writes: %zu row change(s) kept to be written when it can",
		          r->kept_n);
}

static void write_batch(struct jobs__recorder *r, struct rec_op *batch)
{
	size_t kept = r->kept_n;
	int op_failed = 0, began;
	int c = write_ops(r, batch, &op_failed, &began);

	if (c == -EIO && began && batch->next) {
		/* One row the database refuses ends the whole transaction on
		 * PostgreSQL: each change on its own, so only that one is lost.
		 * (A transaction that could not even begin is lost whole.) */
		while (batch && c != -EAGAIN) {
			struct rec_op *op = batch;
			batch = op->next;
			op->next = NULL;
			c = write_ops(r, op, &op_failed, &began);
			if (c == -EAGAIN) {
				op->next = batch;
				batch = op;
			} else {
				op_failed |= c < 0;
				finish_ops(r, op, c);
			}
		}
	}
	if (c == -EAGAIN) {
		keep_ops(r, batch);
	} else {
		r->kept = NULL;
		r->kept_n = 0;
		if (kept > 0)
			log_info("wrote the %zu row change(s) kept while the job database could not take writes", kept);
		if (batch)
			finish_ops(r, batch, c);
	}
	pthread_mutex_lock(&r->lock);
	/* A row that failed (disk full, read-only) inside a transaction that
	 * committed the rest is a failed write too: /health says so. */
	r->last_failed = c < 0 || op_failed;
	pthread_mutex_unlock(&r->lock);
}

/* Waits on r->wake for ms at most, r->lock held: ETIMEDOUT or 0. */
static int wait_ms(struct jobs__recorder *r, long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += ms % 1000 * 1000000L;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	return pthread_cond_timedwait(&r->wake, &r->lock, &until);
}

/*
 * After a failed batch, /health says so until a write succeeds. With no
 * rows to write (an idle server) none would, so the database is probed
 * every PROBE_S seconds with a write that changes nothing (a lock held
 * elsewhere, a full disk or a file system gone read-only fails it; an empty
 * transaction would not even touch the disk), and /health recovers by
 * itself. Changes kept for a database that could not take them are tried
 * again every KEEP_RETRY_MS instead. Called with r->lock held; returns
 * with rows to write, kept ones, or stopping.
 */
#define PROBE_S 10
static void wait_for_rows(struct jobs__recorder *r)
{
	while (r->head == NULL && !r->stopping) {
		struct timespec until;
		int ok;

		if (!r->last_failed) {
			pthread_cond_wait(&r->wake, &r->lock);
			continue;
		}
		if (r->kept) {
			if (wait_ms(r, KEEP_RETRY_MS) == ETIMEDOUT)
				return;
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += PROBE_S;
		if (pthread_cond_timedwait(&r->wake, &r->lock, &until) != ETIMEDOUT || r->head || r->stopping)
			continue;
		pthread_mutex_unlock(&r->lock);
		ok = store_probe_write(r->store) == 0;
		if (ok)
			log_info("the job database accepts writes again");
		pthread_mutex_lock(&r->lock);
		if (ok)
			r->last_failed = 0;
	}
}

/* kept + batch, in that order: what waited goes first. */
static struct rec_op *after_kept(struct jobs__recorder *r, struct rec_op *batch)
{
	struct rec_op *op = r->kept;

	if (op == NULL)
		return batch;
	while (op->next)
		op = op->next;
	op->next = batch;
	return r->kept;
}

static void *recorder_main(void *arg)
{
	struct jobs__recorder *r = arg;
	uint64_t stop_at = 0;

	pthread_setname_np(pthread_self(), "cgiq-recorder"); /* for top -H and ps -L */
	pthread_mutex_lock(&r->lock);
	for (;;) {
		wait_for_rows(r);
		struct rec_op *batch = r->head;
		r->head = r->tail = NULL;
		r->handed_at_ms = 0;
		int stop = r->stopping;
		pthread_mutex_unlock(&r->lock);

		batch = after_kept(r, batch);
		if (batch != NULL)
			write_batch(r, batch);
		if (stop && r->kept && stop_at == 0)
			stop_at = util_mono_ms() + KEEP_AT_STOP_MS;
		if (stop && r->kept && util_mono_ms() >= stop_at) {
			log_warnx("lost %zu row change(s): the job database could not take them before the stop",
			          r->kept_n);
			finish_ops(r, r->kept, -EIO);
			r->kept = NULL;
			r->kept_n = 0;
		}
		pthread_mutex_lock(&r->lock);
		if (stop && r->head == NULL && r->kept == NULL)
			break;
		if (stop && r->kept) /* wait_for_rows does not wait once stopping */
			wait_ms(r, KEEP_RETRY_MS);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int jobs__recorder_start(struct store *store, void (*on_durable)(void *token, int result, void *ctx),
                         void *ctx, struct jobs__recorder **out)
{
	struct jobs__recorder *r = util_xcalloc(1, sizeof(*r));
	int err;

	r->store = store;
	r->on_durable = on_durable;
	r->ctx = ctx;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	err = pthread_create(&r->thread, NULL, recorder_main, r);
	if (err != 0) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		free(r);
		return -err;
	}
	*out = r;
	return 0;
}

static struct rec_op *put(struct jobs__recorder *r, int kind, const struct store_job *j, int durable,
                          void *token)
{
	struct rec_op *op = util_xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->durable = durable;
	op->token = token;
	op->job = *j;
	op->job.script = dup_or_null(j->script);
	op->job.method = dup_or_null(j->method);
	op->job.uri = dup_or_null(j->uri);
	op->job.peer = dup_or_null(j->peer);
	op->job.stderr_tail = dup_or_null(j->stderr_tail);
	op->job.reason = dup_or_null(j->reason);
	op->job.cwd = dup_or_null(j->cwd);
	op->job.body_path = dup_or_null(j->body_path);
	op->job.result_path = dup_or_null(j->result_path);
	op->job.result_head = dup_or_null(j->result_head);
	op->job.progress_text = dup_or_null(j->progress_text);
	if (j->env != NULL) {
		op->job.env = util_xmalloc(j->env_len + 1);
		memcpy(op->job.env, j->env, j->env_len);
		op->job.env[j->env_len] = '\0';
	}

	if (r->pending_tail)
		r->pending_tail->next = op;
	else
		r->pending = op;
	r->pending_tail = op;
	return op;
}

void jobs__recorder_put(struct jobs__recorder *r, int kind, const struct store_job *j, int durable,
                        void *token)
{
	put(r, kind, j, durable, token);
}

void jobs__recorder_put_marked(struct jobs__recorder *r, const struct store_job *j,
                               struct jobs__rec_mark *mark)
{
	mark->op = put(r, JOBS__REC_INSERT, j, 0, NULL);
	mark->flush = r->flushes;
}

static void replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = dup_or_null(src);
}

int jobs__recorder_amend(struct jobs__recorder *r, struct jobs__rec_mark *mark,
                         const struct store_job *fin)
{
	struct rec_op *op = mark->op;

	mark->op = NULL;
	if (op == NULL || mark->flush != r->flushes)
		return -1; /* handed over: the thread may be writing it now */
	op->job.state = fin->state;
	op->job.pid = fin->pid;
	op->job.finished_at_us = fin->finished_at_us;
	op->job.exit_code = fin->exit_code;
	op->job.term_signal = fin->term_signal;
	op->job.http_status = fin->http_status;
	op->job.bytes_out = fin->bytes_out;
	op->job.processing_sent = fin->processing_sent;
	op->job.expires_at_us = fin->expires_at_us;
	replace_str(&op->job.stderr_tail, fin->stderr_tail);
	replace_str(&op->job.reason, fin->reason);
	replace_str(&op->job.result_path, fin->result_path);
	replace_str(&op->job.result_head, fin->result_head);
	/* As store_job_finished: an ended job keeps neither. */
	replace_str(&op->job.body_path, NULL);
	free(op->job.env);
	op->job.env = NULL;
	op->job.env_len = 0;
	return 0;
}

void jobs__recorder_flush(struct jobs__recorder *r)
{
	if (r->pending == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->tail) {
		r->tail->next = r->pending;
	} else {
		r->head = r->pending;
		r->handed_at_ms = util_mono_ms();
	}
	r->tail = r->pending_tail;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	r->pending = r->pending_tail = NULL;
	r->flushes++;
}

int jobs__recorder_health(struct jobs__recorder *r, uint64_t stuck_ms, const char **why)
{
	int bad = 0;

	pthread_mutex_lock(&r->lock);
	if (r->handed_at_ms != 0 && util_mono_ms() - r->handed_at_ms > stuck_ms) {
		bad = 1;
		*why = "the recorder thread has not taken the rows handed to it";
	} else if (r->last_failed) {
		bad = 1;
		*why = "the last write to the job database failed";
	}
	pthread_mutex_unlock(&r->lock);
	return bad ? -1 : 0;
}

void jobs__recorder_stop(struct jobs__recorder *r)
{
	if (r == NULL)
		return;
	jobs__recorder_flush(r);
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	free(r);
}
