/*
 * The recorder: a thread that owns the store while the daemon runs. The event
 * loop queues row changes and never waits for SQLite; the thread applies
 * whatever has accumulated in one transaction, so under load many jobs share
 * one commit (and one WAL append).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs.h"

enum { REC_INSERT = 0, REC_STARTED = 1, REC_FINISHED = 2 };

struct rec_op {
	struct rec_op *next;
	int kind;
	struct store_job job;
};

struct jobs__recorder {
	struct store *store;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct rec_op *head, *tail;       /* handed over, under lock */
	struct rec_op *pending, *pending_tail; /* loop thread only, not yet handed over */
	int stopping;
};

static char *dup_or_null(const char *s) { return s ? util_xstrdup(s) : NULL; }

static void op_free(struct rec_op *op)
{
	store_job_clear(&op->job);
	free(op);
}

static void apply(struct store *store, struct rec_op *op)
{
	switch (op->kind) {
	case REC_INSERT:
		store_job_insert(store, &op->job);
		break;
	case REC_STARTED:
		store_job_started(store, op->job.id, op->job.pid, op->job.started_at_us);
		break;
	default:
		store_job_finished(store, &op->job);
		break;
	}
}

static void *recorder_main(void *arg)
{
	struct jobs__recorder *r = arg;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (r->head == NULL && !r->stopping)
			pthread_cond_wait(&r->wake, &r->lock);
		struct rec_op *batch = r->head;
		r->head = r->tail = NULL;
		int stop = r->stopping;
		pthread_mutex_unlock(&r->lock);

		if (batch != NULL) {
			/* Errors are logged by the store; a failed batch must not stop the daemon. */
			int began = store_begin(r->store) == 0;
			while (batch) {
				struct rec_op *next = batch->next;
				apply(r->store, batch);
				op_free(batch);
				batch = next;
			}
			if (began)
				store_commit(r->store);
		}
		pthread_mutex_lock(&r->lock);
		if (stop && r->head == NULL)
			break;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int jobs__recorder_start(struct store *store, struct jobs__recorder **out)
{
	struct jobs__recorder *r = util_xcalloc(1, sizeof(*r));
	int err;

	r->store = store;
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

void jobs__recorder_put(struct jobs__recorder *r, int kind, const struct store_job *j)
{
	struct rec_op *op = util_xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->job = *j;
	op->job.script = dup_or_null(j->script);
	op->job.method = dup_or_null(j->method);
	op->job.uri = dup_or_null(j->uri);
	op->job.peer = dup_or_null(j->peer);
	op->job.stderr_tail = dup_or_null(j->stderr_tail);
	op->job.reason = dup_or_null(j->reason);

	if (r->pending_tail)
		r->pending_tail->next = op;
	else
		r->pending = op;
	r->pending_tail = op;
}

void jobs__recorder_flush(struct jobs__recorder *r)
{
	if (r->pending == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = r->pending;
	else
		r->head = r->pending;
	r->tail = r->pending_tail;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	r->pending = r->pending_tail = NULL;
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
