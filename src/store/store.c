/*
 * store: the job record, behind an operations table (internal.h). This file
 * hands every operation to the backend that opened the store; what does not
 * depend on a backend (state names, a row's life) is in job.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void store__say(const char *name, char *why, size_t why_size, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (why == NULL)
		log_warnx("store %s: %s", name, msg);
	else if (why_size > 0 && why[0] == '\0')
		snprintf(why, why_size, "%s", msg);
}

/* The backends, by how the place is written: a PostgreSQL URL, else an
 * SQLite file. */
static void file_shown(const char *place, char *out, size_t size) { snprintf(out, size, "%s", place); }

static const struct backend {
	const char *prefix;
	int (*open)(const char *place, struct store **out, char *why, size_t why_size);
	void (*shown)(const char *place, char *out, size_t size);
	int (*check)(const char *place, char *msg, size_t size); /* NULL: any place will do */
	int server;
} backends[] = {
	{"postgresql://", store_pg_open, store_pg_shown, store_pg_check, 1},
	{"postgres://", store_pg_open, store_pg_shown, store_pg_check, 1},
	{"", store_sqlite_open, file_shown, NULL, 0},
};

static const struct backend *backend_of(const char *place)
{
	size_t i = 0;

	while (strncmp(place, backends[i].prefix, strlen(backends[i].prefix)) != 0)
		i++;
	return &backends[i];
}

int store_open_why(const char *path, struct store **out, char *why, size_t size)
{
	return backend_of(path)->open(path, out, why, size);
}

int store_place_is_server(const char *place) { return backend_of(place)->server; }

const char *store_place_normal(const char *place)
{
	return strncmp(place, "sqlite:", 7) == 0 && place[7] != '\0' ? place + 7 : place;
}
void store_place_shown(const char *place, char *out, size_t size) { backend_of(place)->shown(place, out, size); }

int store_place_check(const char *place, char *msg, size_t size)
{
	const struct backend *b = backend_of(place);

	return b->check ? b->check(place, msg, size) : 0;
}

int store_lock_writer(struct store *s, char *msg, size_t msg_size)
{
	return s->ops->lock_writer ? s->ops->lock_writer(s, msg, msg_size) : 0;
}

int store_open(const char *path, struct store **out) { return store_open_why(path, out, NULL, 0); }

void store_set_node(struct store *s, const char *node)
{
	snprintf(s->node, sizeof(s->node), "%s", node ? node : "");
}

void store_set_on_loop(struct store *s)
{
	if (s->ops->set_on_loop)
		s->ops->set_on_loop(s);
}

void store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

int store_begin(struct store *s) { return s->ops->begin(s); }
int store_commit(struct store *s) { return s->ops->commit(s); }
int store_rollback(struct store *s) { return s->ops->rollback(s); }
int store_probe_write(struct store *s) { return s->ops->probe_write(s); }
int store_set_durable(struct store *s, int on) { return s->ops->set_durable(s, on); }
int store_job_insert(struct store *s, const struct store_job *j) { return s->ops->job_insert(s, j); }

int store_job_started(struct store *s, const char *id, int64_t pid, int64_t started_at_us)
{
	return s->ops->job_started(s, id, pid, started_at_us);
}

int store_job_finished(struct store *s, const struct store_job *j) { return s->ops->job_finished(s, j); }

int store_job_progress(struct store *s, const char *id, int64_t done, int64_t total, const char *text)
{
	return s->ops->progress(s, id, done, total, text);
}

int store_job_expire_at(struct store *s, const char *id, int64_t expires_at_us)
{
	return s->ops->job_expire_at(s, id, expires_at_us);
}

int store_job_forget(struct store *s, const char *id) { return s->ops->job_forget(s, id); }

int store_job_requeue(struct store *s, const char *id, int max_attempts)
{
	return s->ops->job_requeue(s, id, max_attempts);
}

int store_job_request_cancel(struct store *s, const char *id) { return s->ops->job_request_cancel(s, id); }
int store_job_get(struct store *s, const char *id, struct store_job *out) { return s->ops->job_get(s, id, out); }

int store_jobs_list(struct store *s, const enum store_state *state, unsigned limit,
                    int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	return s->ops->jobs_list(s, state, limit, cb, ud);
}

int store_jobs_queued_async(struct store *s, int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	return s->ops->jobs_queued_async(s, cb, ud);
}

int store_jobs_cancel_requested(struct store *s, void (*cb)(const char *id, void *ud), void *ud)
{
	return s->ops->jobs_cancel_requested(s, cb, ud);
}

int store_recover(struct store *s, const char *reason, int64_t keep_us,
                  void (*cb)(const char *id, int64_t pid, int64_t started_at_us, void *ud), void *ud)
{
	return s->ops->recover(s, reason, keep_us, cb, ud);
}

int store_expire(struct store *s, int64_t now_us,
                 void (*cb)(const char *result_path, const char *body_path, void *ud), void *ud)
{
	return s->ops->expire(s, now_us, cb, ud);
}

int store_results_newest(struct store *s, int64_t now_us,
                         int (*cb)(const char *id, const char *result_path, int64_t bytes, void *ud), void *ud)
{
	return s->ops->results_newest(s, now_us, cb, ud);
}
