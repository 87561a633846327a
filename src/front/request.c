/*
 * A request's life after its head, whatever the wire: the body, the job, the
 * answer and its accounting. The wires (http/, fcgi/) parse their protocol,
 * fill a struct front_req_info and a struct front_job, and write what this
 * file hands them through their struct front_wire_ops.
 *
 * A request goes: begin -> body bytes -> serve -> (run: waiting for its job)
 * -> answer -> written ... written -> finish (logged, counted) -> reset. The
 * client may go away at any point (front_req_gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(FRONT_READ_BYTES == JOB_LOOP_READ_BYTES, "one read buffer for the loop");

void front_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) { job_loop_alloc_cb(h, suggested, b); }

int front_open(uv_loop_t *loop, const struct front_config *cfg, struct front **out)
{
	struct front *f = util_xcalloc(1, sizeof(*f));

	f->loop = loop;
	f->cfg = *cfg;
	*out = f;
	return 0;
}

void front_free(struct front *f) { free(f); }

unsigned front_connections(const struct front *f) { return f ? f->conns : 0; }

void front_refused(struct front *f, enum front_refusal why) { front_count_refusal(f->cfg.counters, why); }

/* ------------------------------------------------------------------ */
/* the request object */

struct front_req *front_req_new(struct front *f, void *wire, const char *tag)
{
	struct front_req *r = util_xcalloc(1, sizeof(*r));

	r->f = f;
	r->wire = wire;
	r->tag = tag;
	r->body_fd = -1;
	r->file_fd = -1;
	r->stored.fd = -1;
	r->static_fd = -1;
	r->stream_end = -1;
	r->refusal = -1;
	buf_init(&r->body, f->cfg.body_mem_bytes + 1);
	uv_timer_init(f->loop, &r->wait_timer);
	r->wait_timer.data = r;
	f->conns++;
	front_count_connection(f->cfg.counters, 1);
	if (f->cfg.max_connections && f->conns - f->refusing > f->cfg.max_connections) {
		r->refused = 1;
		f->refusing++;
		log_warnx("%s: refused, %u connections open (--max-connections %u)%s", tag, f->conns - f->refusing,
		          f->cfg.max_connections, f->refusing > 1 ? ", others being refused" : "");
	}
	return r;
}

void *front_req_wire(const struct front_req *r) { return r->wire; }
int front_req_refused(const struct front_req *r) { return r->refused; }
int front_req_waiting(const struct front_req *r) { return r->waiting; }
int front_req_answering(const struct front_req *r) { return r->answering; }
const char *front_req_job_id(const struct front_req *r) { return r->job ? job_id(r->job) : NULL; }
unsigned front_req_exit_status(const struct front_req *r) { return r->exit_status; }
uint64_t front_req_body_len(const struct front_req *r) { return r->body_len; }
int front_req_body_status(const struct front_req *r) { return r->body_status; }

const struct front_policy *front_req_policy(const struct front_req *r)
{
	return r->rule ? r->rule->front : NULL;
}

void front_req_begin(struct front_req *r, const struct front_req_info *info)
{
	r->info = *info;
	r->begun = 1;
	r->started_ms = info->started_ms ? info->started_ms : util_mono_ms();
}

void front_req_rebase(struct front_req *r, const struct front_req_info *info) { r->info = *info; }

int front_req_is_api(const struct front_req *r)
{
	const char *p = r->info.path, *prefix = r->f->cfg.jobs_prefix;
	size_t n = prefix ? strlen(prefix) : 0;

	return p && n && strncmp(p, prefix, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* ------------------------------------------------------------------ */
/* the body */

int front_req_body(struct front_req *r, const char *data, size_t len)
{
	const struct front_config *cfg = &r->f->cfg;
	int e;

	if (r->body_status)
		return r->body_status;
	if (cfg->max_body_bytes && r->body_len + len > cfg->max_body_bytes) {
		log_warnx("%s: request body larger than %llu bytes (--max-body-bytes); 413", r->tag,
		          (unsigned long long)cfg->max_body_bytes);
		return r->body_status = 413;
	}
	r->body_len += len;
	if (r->body_fd < 0 && r->body.len + len <= cfg->body_mem_bytes)
		return buf_append(&r->body, data, len) == 0 ? 0 : (r->body_status = 413);
	if (r->body_fd < 0) {
		r->body_fd = open(cfg->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		e = r->body_fd < 0 ? -errno : util_write_all(r->body_fd, r->body.data ? r->body.data : "", r->body.len);
		buf_free(&r->body);
		if (e < 0)
			goto full;
	}
	if ((e = util_write_all(r->body_fd, data, len)) < 0)
		goto full;
	return 0;
full:
	/* RFC 4918 11.5: the server cannot store what the request needs, a
	 * condition of the server (a full or unwritable spool), not of the
	 * request's size: 507, not 413. */
	log_warnx("%s: cannot spool the request body in %s: %s; 507", r->tag, cfg->spool_dir, strerror(-e));
	return r->body_status = 507;
}

/* ------------------------------------------------------------------ */
/* answers */

void front_req_answer(struct front_req *r, struct front_answer *a)
{
	const struct front_config *cfg = &r->f->cfg;
	int has_body = front_status_has_body(a->status);

	uv_timer_stop(&r->wait_timer);
	r->waiting = a->streamed; /* a streamed body's job still runs */
	r->answering = 1;
	r->status = a->status;
	r->bytes = has_body && !a->delegated ? front_answer_body_len(a) : 0;
	if (r->job == NULL)
		r->exit_status = a->status < 400 ? 0 : 1;
	r->file_fd = -1;
	if (has_body && a->fd >= 0 && a->len > 0 && !r->info.head_only) {
		r->file_fd = a->fd;
		r->file_off = a->off;
		r->file_end = a->off + a->len;
	}
	if (cfg->ops->head(r, a, r->file_fd < 0 && !a->streamed) < 0)
		r->file_fd = -1;
	front_answer_free(a);
}

void front_req_error(struct front_req *r, int status)
{
	struct front_answer a;

	front_answer_init(&a, status);
	front_answer_error(&a, status, NULL);
	if (!r->begun) {
		/* Refused before its head was whole: its clock starts now. */
		r->begun = 1;
		r->started_ms = util_mono_ms();
	}
	front_req_answer(r, &a);
}

void front_req_moved(struct front_req *r, const char *path, const char *query)
{
	struct buf loc;
	size_t n = strspn(path, "/");

	if (path[n] == '\0') {
		/* no name to add a slash to ("/" has one) */
		front_req_error(r, 404);
		return;
	}
	buf_init(&loc, 16384);
	/* One leading slash, whatever the request had: "//host/" would send
	 * the client to another site (a scheme-relative reference). */
	(void)buf_append_str(&loc, "Location: /");
	(void)buf_append_str(&loc, path + n);
	(void)buf_append_str(&loc, "/");
	if (query != NULL && *query != '\0') {
		(void)buf_append_str(&loc, "?");
		(void)buf_append_str(&loc, query);
	}
	(void)buf_append_str(&loc, "\r\n");
	if (loc.data == NULL || loc.len > 8192 || strpbrk(loc.data + 10, "\r\n") != loc.data + loc.len - 2) {
		/* too long, or bytes a header cannot carry: no redirect */
		buf_free(&loc);
		front_req_error(r, 404);
		return;
	}
	{
		struct front_answer a;
		front_answer_init(&a, 301);
		front_answer_error(&a, 301, loc.data);
		buf_free(&loc);
		front_req_answer(r, &a);
	}
}

/* The log line, the access-log line and the counters of a request, once. */
static void req_account(struct front_req *r, int status)
{
	const struct front_config *cfg = &r->f->cfg;
	const char *method = r->info.method ? r->info.method : "-", *target = r->info.target ? r->info.target : "-";
	const char *jid = r->job ? job_id(r->job) : r->api_id[0] ? r->api_id : NULL;
	uint64_t ms = util_mono_ms() - r->started_ms;
	struct front_access_entry e;
	char esc[256];

	if (!r->begun || r->info.quiet)
		return;
	r->begun = 0;
	if (status != 499) {
		log_info("%s \"%s %s\" %d %llu job=%s 102s=%u %llums", r->tag, method,
		         log_escape(esc, sizeof(esc), target, strlen(target)), status,
		         (unsigned long long)r->bytes, jid ? jid : "-", r->processing_sent, (unsigned long long)ms);
		front_count_response(cfg->counters, status);
		if (r->refusal >= 0)
			front_count_refusal(cfg->counters, (enum front_refusal)r->refusal);
		else if (r->job == NULL && !r->api && status >= 400)
			/* Answered before any job ran: a refused request. */
			front_count_refusal(cfg->counters, front_refusal_of_status(status));
	}
	if (cfg->access_log == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.host = r->info.host;
	e.user = r->info.user;
	e.time_us = util_now_us();
	e.method = r->info.method;
	e.target = r->info.target;
	e.protocol = r->info.protocol;
	e.referer = r->info.referer;
	e.user_agent = r->info.user_agent;
	e.status = status;
	e.bytes = status == 499 || r->info.head_only ? 0 : r->bytes;
	e.job_id = r->job ? job_id(r->job) : NULL;
	e.processing_sent = r->processing_sent;
	e.job_ms = r->job ? job_duration_ms(r->job) : -1;
	e.request_ms = ms;
	front_access_log_write(cfg->access_log, &e);
}

static void stream_written(struct front_req *r);

void front_req_written(struct front_req *r)
{
	const struct front_wire_ops *ops = r->f->cfg.ops;
	ssize_t n;

	if (!r->answering)
		return;
	if (r->streaming) {
		stream_written(r);
		return;
	}
	if (r->file_fd >= 0 && r->file_off < r->file_end) {
		if (r->chunk == NULL)
			r->chunk = util_xmalloc(ops->chunk_bytes);
		n = front_file_chunk(r->file_fd, r->file_off, r->file_end, r->chunk, ops->chunk_bytes);
		if (n <= 0) {
			/* The head promised more bytes than can be sent. */
			log_warn("%s: reading the answer's body at offset %llu", r->tag, (unsigned long long)r->file_off);
			r->answering = 0;
			req_account(r, 499);
			ops->close(r);
			return;
		}
		r->file_off += (uint64_t)n;
		if (ops->body(r, r->chunk, (size_t)n, r->file_off >= r->file_end) < 0)
			r->file_off = r->file_end;
		return;
	}
	r->answering = 0;
	req_account(r, r->status);
	ops->finish(r);
}

/* ------------------------------------------------------------------ */
/* jobs */

static void req_accepted(struct front_req *r, const char *applied)
{
	struct front_answer a;

	front_answer_init(&a, 202);
	front_answer_accepted(&a, r->f->cfg.engine, r->f->cfg.jobs_prefix, job_id(r->job), applied);
	front_req_answer(r, &a);
}

/* The 202 with the status monitor, once the job is durable (RFC 7240 4.1). */
static void on_job_accepted(struct job *job, int result, void *ud)
{
	struct front_req *r = ud;

	if (!r->waiting)
		return;
	r->waiting = 0;
	if (result < 0) {
		/* Not on disk: the job must not be promised. */
		log_warnx("%s: job %s could not be recorded durably; 503", r->tag, job_id(job));
		job_cancel(job, "could not be recorded durably");
		front_req_error(r, 503);
		return;
	}
	req_accepted(r, "respond-async");
}

/* Prefer: wait ran out (RFC 7240 4.3) before the job ended: it goes on,
 * detached with its result kept, and the client gets the status monitor. */
static void on_wait_expired(uv_timer_t *t)
{
	struct front_req *r = t->data;

	if (!r->waiting || r->async)
		return;
	r->waiting = 0;
	log_info("%s: job %s still running after Prefer: wait; answering 202", r->tag, job_id(r->job));
	job_leave(r->job, r, 1, NULL);
	req_accepted(r, NULL);
}

/* What FastCGI's END_REQUEST carries for a job's answer. */
static unsigned result_exit_status(const struct job_result *res)
{
	if (res->exit_code >= 0)
		return (unsigned)res->exit_code;
	if (res->term_signal > 0)
		return 128u + (unsigned)res->term_signal;
	return res->state == STORE_SUCCEEDED ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* streamed answers (--stream) */

/* The answer's head from the program's header block, as on_job_done makes
 * it for a whole body. */
static void answer_from_response(struct front_answer *a, const struct cgi_response *resp, int status)
{
	front_answer_init(a, status);
	if (resp->reason)
		snprintf(a->reason, sizeof(a->reason), "%s", resp->reason);
	a->local_redirect = resp->status == 0;
	if (resp->headers.len)
		buf_append(&a->headers, resp->headers.data, resp->headers.len);
}

/* The program's header block is complete: the head goes out now, without
 * a length; no 102 after it, and Prefer: wait no longer applies. */
static void on_stream_head(struct job *job, void *ud)
{
	struct front_req *r = ud;
	const struct cgi_response *resp = job_response(job);
	struct front_answer a;

	if (!r->waiting || resp == NULL)
		return;
	answer_from_response(&a, resp, resp->status);
	a.streamed = 1;
	r->streaming = 1;
	r->stream_end = -1;
	front_count_stream(r->f->cfg.counters, 0);
	front_req_answer(r, &a);
}

static void on_stream_data(struct job *job, const char *data, size_t len, void *ud)
{
	struct front_req *r = ud;
	int st;

	if (!r->streaming || r->stream_end >= 0)
		return;
	r->bytes += len;
	st = r->f->cfg.ops->stream(r, data, len, FRONT_STREAM_DATA);
	if (st > 0 && !r->stream_paused) {
		r->stream_paused = 1;
		job_stream_pause(job);
	}
}

static const struct job_stream_ops stream_ops = {.head = on_stream_head, .data = on_stream_data};

/* The streamed job ended: the last chunk when it succeeded; else the body
 * is cut (no last chunk, then the connection closes, so the client can
 * tell), and the job's row and log line say where. */
static void stream_done(struct front_req *r, const struct job_result *res)
{
	r->waiting = 0;
	r->exit_status = result_exit_status(res);
	r->stream_end = res->state == STORE_SUCCEEDED ? FRONT_STREAM_END : FRONT_STREAM_CUT;
	if (r->stream_end == FRONT_STREAM_CUT)
		front_count_stream(r->f->cfg.counters, 1);
	r->f->cfg.ops->stream(r, NULL, 0, r->stream_end);
}

/* The wire wrote what it held: the program may go on; after the end, the
 * answer is done (logged, then the next request), after a cut, closed. */
static void stream_written(struct front_req *r)
{
	const struct front_wire_ops *ops = r->f->cfg.ops;

	if (r->stream_end < 0) {
		if (r->stream_paused && r->job) {
			r->stream_paused = 0;
			job_stream_resume(r->job);
		}
		return;
	}
	r->streaming = 0;
	r->answering = 0;
	req_account(r, r->status);
	if (r->stream_end == FRONT_STREAM_CUT)
		ops->close(r);
	else
		ops->finish(r);
}

static void on_job_done(struct job *job, void *ud)
{
	struct front_req *r = ud;
	const struct front_wire_ops *ops = r->f->cfg.ops;
	const struct job_result *res = job_result(job);
	struct front_answer a;
	int st;

	if (!r->waiting)
		return;
	if (r->streaming) {
		stream_done(r, res);
		return;
	}
	r->waiting = 0;
	if (res->resp && res->resp->status == 0 && ops->redirect) {
		/* RFC 3875 6.2.2: a local redirect is the wire's to run again. */
		if (r->redirects >= MAX_LOCAL_REDIRECTS) {
			log_warnx("job %s: more than %d local redirects", job_id(job), MAX_LOCAL_REDIRECTS);
			front_req_error(r, 502);
			return;
		}
		r->redirects++;
		r->job = NULL;
		r->rule = NULL;
		st = ops->redirect(r, res->resp->location);
		job_release(job);
		if (st != 0)
			front_req_error(r, st);
		return;
	}
	if (res->resp == NULL) {
		/* Interrupted (cgiq is stopping): the same request may be sent
		 * again soon; 503 carries Retry-After. */
		front_answer_init(&a, res->http_status);
		front_answer_error(&a, res->state == STORE_INTERRUPTED ? 503 : res->http_status, NULL);
	} else {
		/* A local redirect left to the web server is its 302 (nginx's). */
		answer_from_response(&a, res->resp, res->resp->status == 0 ? 302 : res->http_status);
		a.len = res->body_bytes;
		if (res->body_mem)
			a.mem = res->body_mem;
		else
			a.fd = res->body_fd;
	}
	r->exit_status = result_exit_status(res);
	front_req_answer(r, &a);
}

/* A job whose row cannot be written (the store, a server, is gone or
 * read-only) is not run: 503 with Retry-After, and one line when that
 * starts and one when it ends, not one per request. An asynchronous job's
 * row would not commit either: it is refused before it is made. */
static int store_refuses(struct front_req *r)
{
	struct front *f = r->f;
	int down = job_engine_store_down(f->cfg.engine);

	if (down != f->store_down) {
		f->store_down = down;
		if (down)
			log_warnx("the job store cannot be written: requests for jobs are answered 503 until it can");
		else
			log_info("the job store takes writes again: requests for jobs run again");
	}
	if (!down)
		return 0;
	r->refusal = FRONT_REFUSED_STORE_DOWN;
	front_req_error(r, 503);
	return 1;
}

int front_req_run(struct front_req *r, struct front_job *j)
{
	struct front *f = r->f;
	struct job_request jr;
	int e;

	if (store_refuses(r))
		return 1;

	memset(&jr, 0, sizeof(jr));
	jr.script = j->script;
	jr.cwd = j->cwd;
	jr.env = j->env;
	jr.body_fd = -1;
	if (j->with_body && r->body_fd >= 0) {
		lseek(r->body_fd, 0, SEEK_SET);
		jr.body_fd = r->body_fd;
		r->body_fd = -1;
	} else if (j->with_body) {
		jr.body_mem = r->body.data;
		jr.body_len = r->body.len;
	}
	jr.method = j->method;
	jr.uri = j->uri;
	jr.peer = j->peer;
	jr.bytes_in = j->with_body ? (int64_t)r->body_len : 0;
	/* Its script's settings, resolved once here and carried by the job. */
	jr.rule = r->rule = job_rule_lookup(f->cfg.engine, jr.script);
	jr.stream = f->cfg.ops->stream ? &stream_ops : NULL;
	r->async = j->respond_async;
	if (r->async)
		e = job_submit_async(f->cfg.engine, &jr, on_job_accepted, r, &r->job);
	else
		e = job_submit(f->cfg.engine, &jr, on_job_done, r, &r->job);
	if (jr.body_fd >= 0) /* not taken by the engine */
		close(jr.body_fd);
	if (e < 0) {
		if (e == -EAGAIN) {
			struct job_stats st;
			job_engine_stats(f->cfg.engine, &st);
			log_warnx("%s: queue full (%u waiting, %u running), 503", r->tag, st.queued, st.running);
			r->refusal = FRONT_REFUSED_QUEUE_FULL;
		} else if (e != -ESHUTDOWN) {
			log_warnx("%s: cannot submit job: %s", r->tag, strerror(-e));
		}
		r->job = NULL;
		front_req_error(r, front_submit_status(e));
		return 1;
	}
	r->waiting = 1;
	if (r->async)
		return 1; /* the 202 once the job is on disk: on_job_accepted */
	int64_t wait_ms = front_wait_ms(j->wait_s, f->cfg.max_wait_ms);
	if (wait_ms >= 0)
		uv_timer_start(&r->wait_timer, on_wait_expired, (uint64_t)wait_ms, 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the job API */

/* A kept result that nginx sends itself (Range, HEAD, sendfile): only the
 * headers go through cgiq; nginx keeps Content-Type, Content-Disposition,
 * Cache-Control and a few more of them. */
static void answer_accel(struct front_req *r)
{
	const struct job_stored_result *st = &r->stored;
	const char *nl = st->head ? strstr(st->head, "\r\n") : NULL;
	struct front_answer a;

	front_answer_init(&a, 200);
	if (nl && nl > st->head)
		snprintf(a.reason, sizeof(a.reason), "%.*s", (int)(nl - st->head), st->head);
	if (nl)
		buf_append_str(&a.headers, nl + 2);
	buf_printf(&a.headers, "X-Accel-Redirect: %s/%s\r\n", r->f->cfg.accel_prefix, st->file_name);
	a.delegated = 1; /* no body of cgiq's: nginx sends the file */
	front_req_answer(r, &a);
}

static void req_api(struct front_req *r)
{
	struct front *f = r->f;
	enum front_api kind;
	struct front_answer a;

	r->api = 1;
	front_answer_init(&a, 0);
	if (front_api_route(f->cfg.jobs_prefix, r->info.path, r->info.head_only ? "HEAD" : r->info.method, r->api_id,
	                    &kind, &a) == 0) {
		if (kind != FRONT_API_RESULT) {
			front_api_answer(f->cfg.engine, kind, r->api_id, r->tag, &a);
		} else if (front_api_result_open(f->cfg.engine, r->api_id, &r->stored, &a) == 0) {
			if (f->cfg.accel_prefix && r->stored.http_status == 200 && r->stored.fd >= 0 && r->stored.file_name) {
				front_answer_free(&a);
				answer_accel(r);
				return;
			}
			front_answer_stored(&a, &r->stored, r->info.range);
		}
	}
	front_req_answer(r, &a);
}

int front_req_serve(struct front_req *r)
{
	if (r->refused) {
		/* Read, then answered 503 with Retry-After; the wire closes. */
		r->refusal = FRONT_REFUSED_MAX_CONNECTIONS;
		front_req_error(r, 503);
		return 1;
	}
	if (r->body_status) {
		front_req_error(r, r->body_status);
		return 1;
	}
	if (front_req_is_api(r)) {
		req_api(r);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* 102s (the HTTP front) */

void front_req_note_processing(struct front_req *r)
{
	r->processing_sent++;
	if (r->job)
		job_note_processing(r->job);
}

int front_req_progress(struct front_req *r, int64_t *done, int64_t *total, const char **text)
{
	return r->job ? job_progress(r->job, done, total, text) : 0;
}

const char *front_req_expose(struct front_req *r)
{
	if (r->job == NULL)
		return NULL;
	job_expose(r->job);
	return job_id(r->job);
}

void front_req_misread(struct front_req *r, enum front_misread kind)
{
	front_count_misread(r->f->cfg.counters, kind);
}

/* ------------------------------------------------------------------ */
/* the end */

void front_req_gone(struct front_req *r)
{
	const struct front_policy *p = front_req_policy(r);
	int detach = p ? p->detach_on_disconnect : r->f->cfg.detach_on_disconnect;

	uv_timer_stop(&r->wait_timer);
	if (r->waiting && r->job) {
		r->waiting = 0;
		if (r->async) {
			/* Accepted asynchronously: it goes on, found by its id. */
			job_leave(r->job, r, 1, NULL);
		} else if (detach) {
			log_info("%s: client went away; job %s goes on (detached)", r->tag, job_id(r->job));
			job_leave(r->job, r, 1, NULL);
		} else {
			job_leave(r->job, r, 0, "client closed the connection");
		}
		req_account(r, 499); /* nginx's "client closed request" */
	} else if (r->answering) {
		r->answering = 0;
		req_account(r, 499);
	}
}

void front_req_reset(struct front_req *r)
{
	uv_timer_stop(&r->wait_timer);
	if (r->job) {
		job_release(r->job);
		r->job = NULL;
	}
	if (r->body_fd >= 0)
		close(r->body_fd);
	r->body_fd = -1;
	job_stored_result_close(&r->stored);
	if (r->static_fd >= 0)
		close(r->static_fd);
	r->static_fd = -1;
	buf_free(&r->body);
	free(r->chunk);
	r->chunk = NULL;
	memset(&r->info, 0, sizeof(r->info));
	r->begun = r->api = r->async = r->waiting = r->answering = 0;
	r->streaming = r->stream_paused = 0;
	r->stream_end = -1;
	r->redirects = 0;
	r->body_len = 0;
	r->body_status = 0;
	r->api_id[0] = '\0';
	r->rule = NULL;
	r->processing_sent = 0;
	r->refusal = -1;
	r->status = 0;
	r->bytes = 0;
	r->exit_status = 0;
	r->file_fd = -1;
}

static void on_req_closed(uv_handle_t *h)
{
	struct front_req *r = h->data;
	void (*closed)(void *) = r->closed;
	void *wire = r->wire;

	free(r);
	if (closed)
		closed(wire);
}

void front_req_close(struct front_req *r, void (*closed)(void *wire))
{
	struct front *f = r->f;

	front_req_gone(r);
	front_req_reset(r);
	f->conns--;
	if (r->refused)
		f->refusing--;
	front_count_connection(f->cfg.counters, -1);
	r->closed = closed;
	uv_close((uv_handle_t *)&r->wait_timer, on_req_closed);
}
