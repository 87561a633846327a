/*
 * Asynchronous jobs (RFC 7240 respond-async) and everything that outlives a
 * request: the registry of jobs findable by id, durable acceptance, kept
 * results, the status monitor document, expiry, and re-queueing after a
 * restart. Loop thread only, except jobs__on_durable (recorder thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SWEEP_MAX_MS 60000
#define SWEEP_MIN_MS 1000
#define CANCEL_POLL_MS 1000
#define PROGRESS_POLL_MS 1000

/* ------------------------------------------------------------------ */
/* registry: id -> job, for jobs whose status may be asked for */

static unsigned bucket_of(const char *id)
{
	unsigned h = 0;
	/* The id is random: its first hex digits are as good as any hash. */
	for (int i = 0; i < 8 && id[i]; i++)
		h = h * 16 + (unsigned)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
	return h % REGISTRY_BUCKETS;
}

void jobs__registry_add(struct job_engine *e, struct job *j)
{
	unsigned b;

	if (j->registered)
		return;
	b = bucket_of(j->id);
	j->reg_next = e->registry[b];
	e->registry[b] = j;
	j->registered = 1;
	j->refs++; /* the registry's */
}

static struct job *registry_lookup(struct job_engine *e, const char *id)
{
	for (struct job *j = e->registry[bucket_of(id)]; j; j = j->reg_next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

struct job *jobs__registry_find(struct job_engine *e, const char *id)
{
	struct job *j = registry_lookup(e, id);
	return j && !j->deleted ? j : NULL;
}

/* A row read from the database that a client may still see. */
static int row_visible(const struct store_job *r)
{
	return r->expires_at_us == 0 || r->expires_at_us > util_now_us();
}

void jobs__registry_remove(struct job_engine *e, struct job *j)
{
	struct job **pp;

	if (!j->registered)
		return;
	for (pp = &e->registry[bucket_of(j->id)]; *pp; pp = &(*pp)->reg_next) {
		if (*pp == j) {
			*pp = j->reg_next;
			break;
		}
	}
	j->registered = 0;
	jobs__job_unref(j);
}

/* ------------------------------------------------------------------ */
/* files */

static char *spool_path(struct job_engine *e, const char *id, const char *suffix)
{
	size_t n = strlen(e->cfg.spool_dir) + UTIL_ID_LEN + strlen(suffix) + 3;
	char *p = util_xmalloc(n);
	snprintf(p, n, "%s/%s%s", e->cfg.spool_dir, id, suffix);
	return p;
}

/* Gives an unnamed (O_TMPFILE) file a name in the spool. */
static int link_tmpfile(int fd, const char *path)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

/* Writes data (or links fd) to path, fsync'ed when durable. */
static int save_file(struct job_engine *e, int fd, const char *data, size_t len, const char *path,
                     int durable)
{
	int r = 0;

	if (fd >= 0) {
		if (durable && fsync(fd) < 0)
			return -errno;
		r = link_tmpfile(fd, path);
	} else {
		int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0)
			return -errno;
		r = util_write_all(out, data ? data : "", len);
		if (r == 0 && durable && fsync(out) < 0)
			r = -errno;
		close(out);
		if (r < 0)
			unlink(path);
	}
	/* The name itself must survive a power cut too. */
	if (r == 0 && durable && fsync(e->spool_dir_fd) < 0)
		r = -errno;
	return r;
}

/* ------------------------------------------------------------------ */
/* kept results */

void jobs__keep_result(struct job *j, struct store_job *r)
{
	struct job_engine *e = j->e;
	const struct job_result *res = &j->result;
	struct buf head;
	char *path;
	int err;

	buf_init(&head, SIZE_MAX / 2);
	buf_printf(&head, "%s\r\n", res->resp && res->resp->reason ? res->resp->reason : "");
	if (res->resp && res->resp->headers.data)
		buf_append_str(&head, res->resp->headers.data);
	free(j->result_head);
	j->result_head = head.data ? head.data : util_xstrdup("\r\n");
	r->result_head = j->result_head;

	if (res->resp == NULL)
		return; /* an error status: nothing of the program's to keep */
	path = spool_path(e, j->id, ".out");
	/* Left by an earlier run of this job that ended just before a crash
	 * (--rerun-interrupted): this run's output replaces it. */
	unlink(path);
	err = save_file(e, j->spool_fd, j->out_mem.data, j->out_mem.len, path, 0);
	if (err < 0) {
		errno = -err;
		log_warn("job %s: cannot keep its result in %s", j->id, path);
		free(path);
		return;
	}
	j->result_path = path;
	r->result_path = path;
	/* The memory copy is no longer needed: results are served from the file. */
	buf_free(&j->out_mem);
}

/* ------------------------------------------------------------------ */
/* durable acceptance */

void jobs__on_durable(void *token, int result, void *ctx)
{
	struct job_engine *e = ctx;
	struct job *j = token;

	if (j == NULL)
		return;
	pthread_mutex_lock(&e->accepted_lock);
	j->accepted_result = result;
	j->accepted_next = e->accepted_head;
	e->accepted_head = j;
	pthread_mutex_unlock(&e->accepted_lock);
	uv_async_send(&e->accepted_async);
}

/*
 * An asynchronous job runs only once its row is committed: a job whose
 * commit failed was answered 503 (nothing promised), and had it run, the
 * run would be recorded nowhere and the client's retry would run it again.
 * So it is dropped unrun, with its body file. At close a committed job is
 * left queued in its row, for the next start.
 */
static void committed(struct job_engine *e, struct job *j)
{
	if (!j->awaiting_commit)
		return;
	j->awaiting_commit = 0;
	if (j->accepted_result >= 0 && !j->ended && !e->closing) {
		jobs__enqueue(j);
		return;
	}
	if (j->accepted_result < 0) {
		log_warnx("job %s: its row could not be committed: not run", j->id);
		if (j->body_path)
			unlink(j->body_path);
	}
	jobs__registry_remove(e, j);
	if (!j->ended)
		jobs__job_discard(j);
}

static void on_accepted(uv_async_t *h)
{
	struct job_engine *e = h->data;
	struct job *list, *rev = NULL;

	pthread_mutex_lock(&e->accepted_lock);
	list = e->accepted_head;
	e->accepted_head = NULL;
	pthread_mutex_unlock(&e->accepted_lock);
	while (list) { /* back into submission order */
		struct job *next = list->accepted_next;
		list->accepted_next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct job *j = rev, *next = rev->accepted_next;
		job_accepted_cb cb = j->accepted;
		j->accepted = NULL;
		if (cb)
			cb(j, j->accepted_result, j->accepted_ud);
		committed(e, j);
		jobs__job_unref(j); /* the reference the pending commit held */
		rev = next;
	}
}

int job_submit_async(struct job_engine *e, struct job_request *req, job_accepted_cb accepted, void *ud,
                     struct job **out)
{
	struct job *j;
	struct store_job r;
	struct buf env;
	int err;

	err = jobs__submit_prepared(e, req, &j);
	if (err < 0)
		return err;
	j->async = 1;
	j->keep_result = 1;

	/* The body must outlive this process: a named file, fsync'ed. */
	if (j->body_fd >= 0 || j->body_len > 0) {
		j->body_path = spool_path(e, j->id, ".in");
		err = save_file(e, j->body_fd, j->body_mem, j->body_len, j->body_path, 1);
		if (err == 0 && j->body_fd < 0) {
			j->body_fd = open(j->body_path, O_RDONLY | O_CLOEXEC);
			if (j->body_fd < 0)
				err = -errno;
			free(j->body_mem);
			j->body_mem = NULL;
			j->body_len = 0;
		}
		if (err < 0) {
			errno = -err;
			log_warn("job %s: cannot spool the request body in %s", j->id, e->cfg.spool_dir);
			unlink(j->body_path);
			job_release(j);
			jobs__job_discard(j);
			return err;
		}
	}

	/* Everything needed to run it again after a restart. */
	buf_init(&env, SIZE_MAX / 2);
	for (size_t i = 0; i < j->env.count; i++)
		buf_append(&env, j->env.vars[i], strlen(j->env.vars[i]) + 1);
	jobs__insert_fields(j, &r);
	r.async = 1;
	r.env = env.data;
	r.env_len = env.len;
	r.cwd = j->cwd;
	r.body_path = j->body_path;
	j->accepted = accepted;
	j->accepted_ud = ud;
	j->refs++; /* held until the commit is reported */
	jobs__recorder_put(e->rec, JOBS__REC_INSERT, &r, 1, j);
	buf_free(&env);
	j->inserted = 1;
	jobs__registry_add(e, j);
	/* Do not wait for the flush timer: the client is waiting for its 202. */
	jobs__recorder_flush(e->rec);

	*out = j;
	j->awaiting_commit = 1; /* queued by committed() */
	return 0;
}

void job_detach(struct job *j)
{
	j->done = NULL;
	j->ud = NULL;
	j->accepted = NULL;
	j->accepted_ud = NULL;
	jobs__stream_stop(j);
	if (j->streamed) {
		/* Part of its body went to the client that left: the rest is
		 * dropped, and there is no result to fetch, only its row. */
		jobs__registry_add(j->e, j);
		return;
	}
	jobs__keep(j);
}

void jobs__keep(struct job *j)
{
	j->keep_result = 1;
	jobs__registry_add(j->e, j);
	if (j->ended && j->result_path == NULL) {
		/* It ended in this same turn, before the front let go: keep it now. */
		struct store_job r;
		jobs__record_base(j, &r);
		r.expires_at_us = j->expires_at_us;
		jobs__keep_result(j, &r);
	}
}

void job_expose(struct job *j) { jobs__registry_add(j->e, j); }

void job_leave(struct job *j, void *ud, int detach, const char *reason)
{
	struct job_waiter **pp = &j->waiters, *w;

	if (j->done && j->ud == ud) {
		j->done = NULL;
		j->ud = NULL;
	} else {
		while (*pp && (*pp)->ud != ud)
			pp = &(*pp)->next;
		if (*pp) {
			w = *pp;
			*pp = w->next;
			if (w->next == NULL)
				j->waiters_tail = pp; /* it was the last */
			free(w);
		}
	}
	if (j->done == NULL && j->waiters) {
		/* Others still wait: the first of them becomes the primary. */
		w = j->waiters;
		j->waiters = w->next;
		j->done = w->done;
		j->ud = w->ud;
		free(w);
	}
	if (j->done) {
		if (detach)
			jobs__keep(j);
		return;
	}
	if (detach)
		job_detach(j);
	else
		job_cancel(j, reason);
}

int job_progress(struct job *j, int64_t *done, int64_t *total, const char **text)
{
	/* Once per turn of the loop: the 102s of thousands of clients sharing
	 * one job (--coalesce) fall due together, and need one read. */
	uint64_t now = uv_now(j->e->loop);

	if (j->progress_read_at != now) {
		j->progress_read_at = now;
		jobs__progress_drain(j);
	}
	if (j->progress_done < 0)
		return 0;
	*done = j->progress_done;
	*total = j->progress_total;
	*text = j->progress_text;
	return 1;
}

/* ------------------------------------------------------------------ */
/* status monitor */

static void json_time(struct buf *b, const char *key, int64_t us)
{
	char t[40];
	if (us <= 0) {
		buf_printf(b, ",\"%s\":null", key);
		return;
	}
	util_iso_time(us, t, sizeof(t));
	buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

static unsigned position_in_queue(struct job_engine *e, const struct job *j)
{
	unsigned n = 1;
	for (const struct job *q = e->queue_head; q; q = q->next, n++)
		if (q == j)
			return n;
	return 0;
}

static void status_doc(struct buf *b, const char *id, enum store_state state, const char *node, int64_t created,
                       int64_t started, int64_t finished, unsigned position, int64_t p_done,
                       int64_t p_total, const char *p_text, int http_status, int64_t size,
                       const char *reason, int64_t expires)
{
	buf_printf(b, "{\"id\":\"%s\",\"state\":\"%s\",\"node\":", id, store_state_name(state));
	util_json_string(b, node);
	json_time(b, "created_at", created);
	json_time(b, "started_at", started);
	json_time(b, "finished_at", finished);
	if (position)
		buf_printf(b, ",\"queue_position\":%u", position);
	else
		buf_append_str(b, ",\"queue_position\":null");
	if (p_done >= 0) {
		buf_printf(b, ",\"progress\":{\"done\":%lld,\"total\":%lld,\"text\":", (long long)p_done,
		           (long long)p_total);
		util_json_string(b, p_text ? p_text : "");
		buf_append_str(b, "}");
	} else {
		buf_append_str(b, ",\"progress\":null");
	}
	if (finished > 0) {
		buf_printf(b, ",\"status\":%d,\"size\":%lld", http_status, (long long)(size < 0 ? 0 : size));
	} else {
		buf_append_str(b, ",\"status\":null,\"size\":null");
	}
	buf_append_str(b, ",\"reason\":");
	util_json_string(b, reason);
	json_time(b, "expires_at", expires);
	buf_printf(b, ",\"result\":\"%s/result\"}\n", id);
}

int job_status_json(struct job_engine *e, const char *id, struct buf *out, unsigned *retry_after_s)
{
	struct job *j = jobs__registry_find(e, id);
	struct store_job r;

	*retry_after_s = 0;
	if (j != NULL) {
		int finished = j->ended;
		jobs__progress_drain(j);
		status_doc(out, j->id, j->state, e->cfg.node_name, j->created_at_us, j->started_at_us,
		           finished ? j->finished_at_us : 0, j->state == STORE_QUEUED ? position_in_queue(e, j) : 0,
		           j->progress_done, j->progress_total, j->progress_text, j->result.http_status,
		           (int64_t)j->result.body_bytes, j->reason, finished ? j->expires_at_us : 0);
		if (!finished)
			*retry_after_s = 1;
		return 0;
	}
	/* Ended before this process started, or evicted from memory. A job
	 * deleted in this run stays deleted even before its row is. */
	if (registry_lookup(e, id) != NULL || e->reader == NULL || store_job_get(e->reader, id, &r) < 0)
		return -ENOENT;
	if (!row_visible(&r)) {
		store_job_clear(&r);
		return -ENOENT;
	}
	if (!r.async && r.result_path == NULL && r.state != STORE_QUEUED && r.state != STORE_RUNNING) {
		/* A synchronous job that was answered: not a job to be monitored. */
		store_job_clear(&r);
		return -ENOENT;
	}
	status_doc(out, r.id, r.state, r.node, r.created_at_us, r.started_at_us, r.finished_at_us, 0,
	           r.progress_done, r.progress_total, r.progress_text, (int)r.http_status, r.bytes_out,
	           r.reason, r.expires_at_us);
	if (r.finished_at_us == 0)
		*retry_after_s = 1;
	store_job_clear(&r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* results */

int job_stored_result_open(struct job_engine *e, const char *id, struct job_stored_result *out)
{
	struct job *j = jobs__registry_find(e, id);
	struct store_job r;
	const char *path, *head;
	int status;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	store_job_init(&r);
	if (j != NULL) {
		if (!j->ended)
			return -EAGAIN;
		if (!j->keep_result)
			return -ENOENT;
		path = j->result_path;
		head = j->result_head;
		status = j->result.http_status;
	} else {
		if (registry_lookup(e, id) != NULL || e->reader == NULL ||
		    store_job_get(e->reader, id, &r) < 0)
			return -ENOENT;
		if (!row_visible(&r)) {
			store_job_clear(&r);
			return -ENOENT;
		}
		if (r.finished_at_us == 0) {
			store_job_clear(&r);
			return -EAGAIN;
		}
		if (!r.async && r.result_path == NULL) {
			store_job_clear(&r);
			return -ENOENT;
		}
		path = r.result_path;
		head = r.result_head;
		status = (int)r.http_status;
	}
	out->http_status = status > 0 ? status : 502;
	out->head = head ? util_xstrdup(head) : NULL;
	if (path != NULL)
		out->file_name = util_xstrdup(strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	if (path != NULL) {
		struct stat st;
		out->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (out->fd < 0 || fstat(out->fd, &st) < 0) {
			/* Expired between the look-up and now. */
			store_job_clear(&r);
			job_stored_result_close(out);
			return -ENOENT;
		}
		out->size = (uint64_t)st.st_size;
	}
	store_job_clear(&r);
	return 0;
}

void job_stored_result_close(struct job_stored_result *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->head);
	r->head = NULL;
	free(r->file_name);
	r->file_name = NULL;
}

/* ------------------------------------------------------------------ */
/* deletion and expiry */

static void expire_now(struct job_engine *e, const char *id)
{
	struct store_job r;
	store_job_init(&r);
	memcpy(r.id, id, sizeof(r.id));
	r.expires_at_us = util_now_us();
	jobs__record_put(e, JOBS__REC_EXPIRE_AT, &r);
}

int job_delete(struct job_engine *e, const char *id)
{
	struct job *j = jobs__registry_find(e, id);
	struct store_job r;

	if (j != NULL) {
		if (!j->ended) {
			j->keep_result = 0;
			jobs__job_kill(j, "deleted by its client");
			/* The row stays (cancelled) for the usual time; no result is kept. */
		} else {
			if (j->result_path)
				unlink(j->result_path);
			expire_now(e, id);
		}
		/* Stays in the registry, invisible, until the sweep: the row in the
		 * database may outlive this answer by a few milliseconds. */
		j->deleted = 1;
		j->expires_at_us = util_now_us();
		return 0;
	}
	if (registry_lookup(e, id) != NULL || e->reader == NULL || store_job_get(e->reader, id, &r) < 0)
		return -ENOENT;
	if (!row_visible(&r)) {
		store_job_clear(&r);
		return -ENOENT;
	}
	if (!r.async && r.result_path == NULL) {
		store_job_clear(&r);
		return -ENOENT;
	}
	if (r.result_path)
		unlink(r.result_path);
	expire_now(e, id);
	store_job_clear(&r);
	return 0;
}

struct results_cap {
	struct job_engine *e;
	uint64_t kept_bytes;  /* newer results, kept */
	unsigned evicted;
};

/* Newest first: once the kept results pass the cap, this one and every older
 * one are deleted as DELETE does (a download under way keeps its open file). */
static int results_cap_one(const char *id, const char *result_path, int64_t bytes, void *ud)
{
	struct results_cap *c = ud;
	struct job *j;

	c->kept_bytes += bytes > 0 ? (uint64_t)bytes : 0;
	if (c->e->cfg.max_results_bytes == 0 || c->kept_bytes <= c->e->cfg.max_results_bytes) {
		c->e->results_kept_bytes = c->kept_bytes;
		return 0;
	}
	j = jobs__registry_find(c->e, id);
	if (j != NULL) {
		if (!j->ended)
			return 0;
		j->deleted = 1;
		j->expires_at_us = util_now_us();
	}
	if (result_path)
		unlink(result_path);
	expire_now(c->e, id);
	log_info("job %s: result deleted (%lld bytes): kept results over --max-results-bytes %llu", id,
	         (long long)bytes, (unsigned long long)c->e->cfg.max_results_bytes);
	c->evicted++;
	return 0;
}

/* --max-results-bytes, and the kept-results gauge of /metrics: one indexed
 * query through the read-only handle. */
static void results_cap_enforce(struct job_engine *e)
{
	struct results_cap c = {e, 0, 0};

	if (e->reader == NULL)
		return;
	e->results_kept_bytes = 0;
	if (store_results_newest(e->reader, util_now_us(), results_cap_one, &c) < 0)
		return; /* logged by the store; the next sweep tries again */
	if (c.evicted > 0)
		log_warnx("deleted %u kept result(s), oldest first: they passed --max-results-bytes %llu", c.evicted,
		          (unsigned long long)e->cfg.max_results_bytes);
}

static void on_sweep(uv_timer_t *t)
{
	struct job_engine *e = t->data;
	int64_t now = util_now_us();
	struct store_job r;

	results_cap_enforce(e);

	for (unsigned b = 0; b < REGISTRY_BUCKETS; b++) {
		struct job *j = e->registry[b];
		while (j) {
			struct job *next = j->reg_next;
			if (j->ended && j->expires_at_us <= now) {
				/* (a job deleted while it ran ends cancelled, then goes here) */
				if (j->result_path)
					unlink(j->result_path);
				jobs__registry_remove(e, j);
			}
			j = next;
		}
	}
	store_job_init(&r);
	r.expires_at_us = now;
	jobs__record_put(e, JOBS__REC_EXPIRE, &r);
}

/* ------------------------------------------------------------------ */
/* cancellation requested by an operator (cgiq jobs --cancel) */

static struct job *find_active(struct job_engine *e, const char *id)
{
	for (struct job *j = e->running; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	for (struct job *j = e->queue_head; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void cancel_one(const char *id, void *ud)
{
	struct job_engine *e = ud;
	struct job *j = id ? find_active(e, id) : NULL;

	if (j != NULL && !j->cancelled)
		jobs__job_kill(j, "cancelled by an operator (cgiq jobs --cancel)");
}

/* Keeps progress pipes from filling up and the rows' progress fresh when
 * nobody asks. */
static void on_progress_poll(uv_timer_t *t)
{
	struct job_engine *e = t->data;
	for (struct job *j = e->running; j; j = j->next)
		jobs__progress_drain(j);
}

static void on_cancel_poll(uv_timer_t *t)
{
	struct job_engine *e = t->data;
	if (e->reader && (e->running || e->queue_head))
		store_jobs_cancel_requested(e->reader, cancel_one, e);
}

/* ------------------------------------------------------------------ */
/* start-up and shutdown */

static int requeue_one(const struct store_job *row, void *ud)
{
	struct job_engine *e = ud;
	struct job *j = jobs__job_new(e);
	size_t n = 0;

	memcpy(j->id, row->id, sizeof(j->id));
	j->script = util_xstrdup(row->script ? row->script : "");
	j->cwd = util_xstrdup(row->cwd ? row->cwd : "/");
	j->method = util_xstrdup(row->method ? row->method : "GET");
	j->uri = util_xstrdup(row->uri ? row->uri : "");
	j->peer = util_xstrdup(row->peer ? row->peer : "");
	j->bytes_in = row->bytes_in;
	j->created_at_us = row->created_at_us;
	for (size_t i = 0; i < row->env_len; i++)
		n += row->env[i] == '\0';
	j->env.vars = util_xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0, start = 0; i < row->env_len; i++) {
		if (row->env[i] == '\0') {
			j->env.vars[j->env.count++] = util_xstrdup(row->env + start);
			start = i + 1;
		}
	}
	if (row->body_path) {
		j->body_path = util_xstrdup(row->body_path);
		j->body_fd = open(row->body_path, O_RDONLY | O_CLOEXEC);
		if (j->body_fd < 0)
			log_warn("job %s: its spooled request body %s is gone; running it without", j->id,
			         row->body_path);
	}
	j->async = 1;
	j->keep_result = 1;
	j->inserted = 1;
	/* This run's configuration decides its script's settings. */
	jobs__job_set_rule(j, job_rule_lookup(e, j->script));
	jobs__registry_add(e, j);
	jobs__enqueue(j);
	return 0;
}

struct retry_list {
	struct job_engine *e;
	char (*ids)[UTIL_ID_LEN + 1];
	size_t count, cap;
};

static int retry_collect(const struct store_job *row, void *ud)
{
	struct retry_list *l = ud;
	const struct job_script_rule *rule;

	if (!row->async || row->env == NULL)
		return 0;
	rule = job_rule_lookup(l->e, row->script);
	if (!l->e->cfg.rerun_interrupted && (rule == NULL || !rule->policy.retry_interrupted))
		return 0;
	/* Run again only as it was accepted: a body it had must still be there. */
	if (row->body_path ? access(row->body_path, R_OK) != 0 : row->bytes_in > 0) {
		log_warnx("job %s: its request body is gone; not retried, it ends interrupted", row->id);
		return 0;
	}
	if (l->count == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->ids = util_xrealloc(l->ids, l->cap * sizeof(*l->ids));
	}
	memcpy(l->ids[l->count++], row->id, UTIL_ID_LEN + 1);
	return 0;
}

int jobs__retry_interrupted(struct job_engine *e, struct store *store)
{
	enum store_state running = STORE_RUNNING;
	struct retry_list l = { e, NULL, 0, 0 };
	int r, n = 0;

	if (e->cfg.rule_count == 0 && !e->cfg.rerun_interrupted)
		return 0;
	/* Ids first, updates after: no writes while the listing is stepped. */
	r = store_jobs_list(store, &running, 0, retry_collect, &l);
	for (size_t i = 0; r == 0 && i < l.count; i++) {
		if (store_job_requeue(store, l.ids[i], JOBS__RETRY_MAX) == 0) {
			log_info("job %s: was running when the previous cgiq stopped; queued again "
			         "(%s)", l.ids[i], e->cfg.rerun_interrupted ? "--rerun-interrupted" : "retry-interrupted");
			n++;
		} else {
			/* A job that takes cgiq down each time must not do so forever. */
			log_warnx("job %s: was running when the previous cgiq stopped, and was run again %d "
			          "times already; it ends interrupted", l.ids[i], JOBS__RETRY_MAX);
		}
	}
	free(l.ids);
	return r < 0 ? r : n;
}

int jobs__requeue(struct job_engine *e, struct store *store)
{
	unsigned before = (unsigned)e->submitted;
	int r = store_jobs_queued_async(store, requeue_one, e);
	return r < 0 ? r : (int)((unsigned)e->submitted - before);
}

int jobs__async_open(struct job_engine *e)
{
	uint64_t sweep_ms = e->cfg.result_ttl_ms / 4;
	int r;

	e->spool_dir_fd = open(e->cfg.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->spool_dir_fd < 0)
		return -errno;
	if (e->cfg.db_path != NULL && store_open(e->cfg.db_path, &e->reader) < 0)
		e->reader = NULL; /* status of old jobs unavailable; logged by the store */
	if (e->reader != NULL)
		store_set_on_loop(e->reader); /* read on the loop: never wait for a server */
	pthread_mutex_init(&e->accepted_lock, NULL);
	r = uv_async_init(e->loop, &e->accepted_async, on_accepted);
	if (r < 0)
		return r;
	e->accepted_async.data = e;
	uv_timer_init(e->loop, &e->sweep);
	e->sweep.data = e;
	if (sweep_ms < SWEEP_MIN_MS)
		sweep_ms = SWEEP_MIN_MS;
	if (sweep_ms > SWEEP_MAX_MS)
		sweep_ms = SWEEP_MAX_MS;
	uv_timer_start(&e->sweep, on_sweep, sweep_ms, sweep_ms);
	uv_unref((uv_handle_t *)&e->sweep);
	uv_timer_init(e->loop, &e->cancel_poll);
	e->cancel_poll.data = e;
	uv_timer_start(&e->cancel_poll, on_cancel_poll, CANCEL_POLL_MS, CANCEL_POLL_MS);
	uv_unref((uv_handle_t *)&e->cancel_poll);
	uv_timer_init(e->loop, &e->progress_poll);
	e->progress_poll.data = e;
	uv_timer_start(&e->progress_poll, on_progress_poll, PROGRESS_POLL_MS, PROGRESS_POLL_MS);
	uv_unref((uv_handle_t *)&e->progress_poll);
	return 0;
}

static void on_async_handle_closed(uv_handle_t *h)
{
	struct job_engine *e = h->data;
	if (h == (uv_handle_t *)&e->accepted_async) {
		uv_close((uv_handle_t *)&e->sweep, on_async_handle_closed);
		return;
	}
	if (h == (uv_handle_t *)&e->sweep) {
		uv_close((uv_handle_t *)&e->cancel_poll, on_async_handle_closed);
		return;
	}
	if (h == (uv_handle_t *)&e->cancel_poll) {
		uv_close((uv_handle_t *)&e->progress_poll, on_async_handle_closed);
		return;
	}
	/* No commit can be reported after this; then drop the references the
	 * ones reported since the handle closed still hold. */
	jobs__recorder_stop(e->rec);
	e->rec = NULL;
	on_accepted(&e->accepted_async);
	for (unsigned b = 0; b < REGISTRY_BUCKETS; b++)
		while (e->registry[b])
			jobs__registry_remove(e, e->registry[b]);
	pthread_mutex_destroy(&e->accepted_lock);
	store_close(e->reader);
	close(e->spool_dir_fd);
	jobs__engine_free(e);
}

void jobs__async_close(struct job_engine *e)
{
	uv_close((uv_handle_t *)&e->accepted_async, on_async_handle_closed);
}
