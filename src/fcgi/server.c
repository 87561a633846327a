/*
 * The FastCGI front on the libuv loop, like the HTTP front: connections are
 * libuv streams, their bytes go through the record codec (codec.c), and
 * each request is handed to the job engine on the same thread, with no
 * responder threads, no queue of operations and no second reading of the
 * records. One request per connection at a time (FCGI_MPXS_CONNS 0): a
 * second BEGIN on a busy connection is answered FCGI_CANT_MPX_CONN.
 *
 * A request: BEGIN (the responder role; the other roles are refused), the
 * parameters (at most --fastcgi-max-params: beyond, the connection is closed
 * before they are read, as soon as a record header declares them), the body
 * (in memory, then spooled; at most --max-body-bytes), then the answer: a
 * CGI response on FCGI_STDOUT records (the body from memory or streamed from
 * the spool a chunk at a time, as the web server takes it), FCGI_END_REQUEST
 * with the program's exit status. FCGI_ABORT_REQUEST, or the connection
 * closing, while a job runs is the web server going away: the job is
 * cancelled or, with --on-disconnect detach, goes on with its result kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fastcgi.h>

#include "internal.h"

static void conn_arm(struct fconn *c);
static void conn_next(struct fconn *c);
static void conn_pump(struct fconn *c);
static void conn_events(struct fconn *c, const char *data, size_t len);
static void format_head(struct buf *head, const struct job_result *res);
static int app_status(const struct job_result *res);
static int api_path(const struct fcgi_front *f, char *const *envp, char *out, size_t size);

/* ------------------------------------------------------------------ */
/* writing */

struct fwrite {
	uv_write_t req;
	struct fconn *c;
	char *owned;
};

static void on_written(uv_write_t *req, int status)
{
	struct fwrite *w = req->data;
	struct fconn *c = w->c;

	free(w->owned);
	free(w);
	c->writes--;
	if (status < 0)
		c->failed = 1;
	if (c->closing) {
		fcgi__conn_close(c);
		return;
	}
	if (status < 0) {
		log_info("fastcgi %s: the web server went away before the answer to job %s was written", c->tag,
		         c->job_id[0] ? c->job_id : "-");
		fcgi__conn_close(c);
		return;
	}
	conn_pump(c);
}

/* Queues b's bytes (b is emptied: the write owns them). */
static void conn_write(struct fconn *c, struct buf *b)
{
	struct fwrite *w;
	uv_buf_t ub;

	if (b->len == 0 || c->closing)
		return;
	w = util_xmalloc(sizeof(*w));
	w->c = c;
	w->owned = b->data;
	w->req.data = w;
	ub = uv_buf_init(b->data, (unsigned)b->len);
	b->data = NULL;
	b->len = b->cap = 0;
	if (uv_write(&w->req, &c->h.stream, &ub, 1, on_written) < 0) {
		free(w->owned);
		free(w);
		c->failed = 1;
		fcgi__conn_close(c);
		return;
	}
	c->writes++;
	if (c->f->cfg.read_timeout_ms)
		uv_timer_again(&c->timer);
}

/* The access-log line and the counters of one request. status -1 or an
 * answer that could not be written is 499, as nginx logs a client gone. */
static void conn_account(struct fconn *c)
{
	struct fcgi_front *f = c->f;
	struct front_access_entry e;
	int status = c->failed || c->status <= 0 ? 499 : c->status;
	int ran = c->job_id[0] != '\0';
	char esc[256];
	const char *uri = fcgi_param(c->envp, "REQUEST_URI"), *method = fcgi_param(c->envp, "REQUEST_METHOD");

	if (status != 499) {
		front_count_response(f->cfg.counters, status);
		log_info("fastcgi %s \"%s %s\" %d %llu job=%s %llums", c->tag, method ? method : "-",
		         uri ? log_escape(esc, sizeof(esc), uri, strlen(uri)) : "-", status,
		         (unsigned long long)c->body_bytes, ran ? c->job_id : c->api_id[0] ? c->api_id : "-",
		         (unsigned long long)(util_mono_ms() - c->t0));
	}
	if (!ran && status >= 400 && status != 499)
		front_count_refusal(f->cfg.counters, c->queue_full  ? FRONT_REFUSED_QUEUE_FULL
		                                         : c->refusing ? FRONT_REFUSED_MAX_CONNECTIONS
		                                                       : front_refusal_of_status(status));
	if (f->cfg.access_log == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.host = fcgi_param(c->envp, "REMOTE_ADDR");
	e.user = fcgi_param(c->envp, "REMOTE_USER");
	e.time_us = util_now_us();
	e.method = method;
	e.target = uri;
	e.protocol = fcgi_param(c->envp, "SERVER_PROTOCOL");
	e.referer = fcgi_param(c->envp, "HTTP_REFERER");
	e.user_agent = fcgi_param(c->envp, "HTTP_USER_AGENT");
	e.status = status;
	e.bytes = status == 499 || !front_status_has_body(status) ? 0 : c->body_bytes;
	e.job_id = ran ? c->job_id : NULL;
	e.job_ms = c->job_ms;
	e.request_ms = util_mono_ms() - c->t0;
	front_access_log_write(f->cfg.access_log, &e);
}

/* After each write: the next chunk of a streamed body, then the end of the
 * request, then the next request. */
static void conn_pump(struct fconn *c)
{
	struct buf out;

	if (c->writes > 0 || c->closing || c->phase != FP_WRITING)
		return;
	buf_init(&out, SIZE_MAX / 2);
	if (c->file_fd >= 0 && c->file_off < c->file_end) {
		/* One loop thread, and the bytes are copied into out at once: one
		 * buffer serves every connection. At most one record's content,
		 * so that each chunk goes out as one FCGI_STDOUT record. */
		static char chunk[FCGI_MAX_LENGTH];
		ssize_t n = front_file_chunk(c->file_fd, c->file_off, c->file_end, chunk, sizeof(chunk));
		if (n <= 0) {
			log_warn("job %s: reading spooled output at offset %llu", c->job_id[0] ? c->job_id : c->api_id,
			         (unsigned long long)c->file_off);
			c->failed = 1;
			fcgi__conn_close(c);
			return;
		}
		fcgi_put_stdout(&out, c->req_id, chunk, (size_t)n);
		c->file_off += (uint64_t)n;
		conn_write(c, &out);
		return;
	}
	if (!c->end_written) {
		c->end_written = 1;
		fcgi_put_end(&out, c->req_id, c->app_status, FCGI_REQUEST_COMPLETE);
		conn_write(c, &out);
		return;
	}
	conn_account(c);
	conn_next(c);
}

/* Starts writing an answer: head (a CGI response head), then the body from
 * mem (len bytes) or from fd [off, off + len), then the end of the request. */
static void conn_answer(struct fconn *c, struct buf *head, const char *mem, int fd, uint64_t off, uint64_t len)
{
	struct buf out;

	uv_timer_stop(&c->wait_timer);
	c->phase = FP_WRITING;
	c->body_bytes = len;
	buf_init(&out, SIZE_MAX / 2);
	fcgi_put_stdout(&out, c->req_id, head->data, head->len);
	if (mem && len)
		fcgi_put_stdout(&out, c->req_id, mem, (size_t)len);
	c->file_fd = mem ? -1 : fd;
	c->file_off = off;
	c->file_end = mem || fd < 0 ? off : off + len;
	conn_arm(c);
	conn_write(c, &out);
	buf_free(&out);
	conn_pump(c);
}

/* A front answer: "Status:" line, headers, Content-Length, body. */
static void conn_answer_front(struct fconn *c, struct front_answer *a)
{
	struct buf head;
	const char *method = fcgi_param(c->envp, "REQUEST_METHOD");
	int head_only = a->fd >= 0 && method && strcmp(method, "HEAD") == 0;

	buf_init(&head, SIZE_MAX / 2);
	buf_printf(&head, "Status: %d %s\r\n", a->status, front_answer_reason(a));
	if (a->headers.len)
		buf_append(&head, a->headers.data, a->headers.len);
	if (front_status_has_body(a->status))
		buf_printf(&head, "Content-Length: %llu\r\n", (unsigned long long)front_answer_body_len(a));
	buf_append_str(&head, "\r\n");
	c->status = a->status;
	c->app_status = a->status < 400 ? 0 : 1;
	if (!front_status_has_body(a->status) || head_only)
		conn_answer(c, &head, "", -1, 0, 0);
	else if (a->fd >= 0)
		conn_answer(c, &head, NULL, a->fd, a->off, a->len);
	else
		conn_answer(c, &head, a->body.data ? a->body.data : "", -1, 0, a->body.len);
	if (head_only)
		c->body_bytes = front_answer_body_len(a);
	buf_free(&head);
	front_answer_free(a);
}

static void conn_error(struct fconn *c, int status)
{
	struct front_answer a;

	front_answer_init(&a, status);
	front_answer_error(&a, status, NULL);
	conn_answer_front(c, &a);
}

/* ------------------------------------------------------------------ */
/* jobs */

static void on_job_done(struct job *job, void *ud)
{
	struct fconn *c = ud;
	const struct job_result *res = job_result(job);
	struct buf head;

	c->waiting = 0;
	c->job_ms = job_duration_ms(job);
	if (res->resp == NULL) {
		conn_error(c, res->http_status);
		c->app_status = (uint32_t)app_status(res);
		return;
	}
	buf_init(&head, SIZE_MAX / 2);
	format_head(&head, res);
	c->status = res->http_status;
	c->app_status = (uint32_t)app_status(res);
	if (!front_status_has_body(res->http_status))
		conn_answer(c, &head, "", -1, 0, 0);
	else if (res->body_mem)
		conn_answer(c, &head, res->body_mem, -1, 0, res->body_bytes);
	else
		conn_answer(c, &head, NULL, res->body_fd, 0, res->body_bytes);
	buf_free(&head);
}

static void conn_accepted(struct fconn *c, const char *applied)
{
	struct front_answer a;

	front_answer_init(&a, 202);
	front_answer_accepted(&a, c->f->engine, c->f->cfg.jobs_prefix, c->job_id, applied);
	conn_answer_front(c, &a);
}

/* The 202 with the status monitor, once the job is durable (RFC 7240 4.1). */
static void on_job_accepted(struct job *job, int result, void *ud)
{
	struct fconn *c = ud;

	c->waiting = 0;
	if (result < 0) {
		log_warnx("fastcgi %s: job %s could not be recorded durably; 503", c->tag, job_id(job));
		job_cancel(job, "could not be recorded durably");
		conn_error(c, 503);
		return;
	}
	conn_accepted(c, "respond-async");
}

/* Prefer: wait ran out (RFC 7240 4.3) before the job ended: it goes on,
 * detached with its result kept, and the web server gets the status
 * monitor, as on the HTTP front. */
static void on_wait_expired(uv_timer_t *t)
{
	struct fconn *c = t->data;

	if (!c->waiting || c->async)
		return;
	c->waiting = 0;
	log_info("fastcgi %s: job %s still running after Prefer: wait; answering 202", c->tag, c->job_id);
	job_leave(c->job, c, 1, NULL);
	conn_accepted(c, NULL);
}

/* The web server went away (the connection closed, or FCGI_ABORT_REQUEST)
 * while the job runs: cancelled, or detached with its result kept. */
static void conn_leave_job(struct fconn *c)
{
	int detach;

	if (!c->waiting)
		return;
	c->waiting = 0;
	detach = !c->async && (c->rule ? c->rule->policy.detach_on_disconnect : c->f->cfg.detach_on_disconnect);
	if (detach)
		log_info("fastcgi %s: the web server went away; job %s goes on (detached)", c->tag, c->job_id);
	job_leave(c->job, c, detach, "the web server closed the FastCGI connection");
}

/* ------------------------------------------------------------------ */
/* one request */

/* The job API under --jobs-prefix. */
static void serve_api(struct fconn *c, const char *path)
{
	struct fcgi_front *f = c->f;
	struct front_answer a;
	enum front_api kind;
	char tag[sizeof(c->tag) + 8];

	front_answer_init(&a, 0);
	if (front_api_route(f->cfg.jobs_prefix, path, fcgi_param(c->envp, "REQUEST_METHOD"), c->api_id, &kind, &a) != 0) {
		conn_answer_front(c, &a);
		return;
	}
	if (kind != FRONT_API_RESULT) {
		snprintf(tag, sizeof(tag), "fastcgi %s", c->tag);
		front_api_answer(f->engine, kind, c->api_id, tag, &a);
		conn_answer_front(c, &a);
		return;
	}
	if (front_api_result_open(f->engine, c->api_id, &c->stored, &a) != 0) {
		conn_answer_front(c, &a);
		return;
	}
	if (f->cfg.accel_prefix && c->stored.http_status == 200 && c->stored.fd >= 0 && c->stored.file_name) {
		/* nginx serves the file itself (Range, HEAD, sendfile): only the
		 * headers go through cgiq. nginx keeps Content-Type,
		 * Content-Disposition, Cache-Control and a few more of them. */
		const struct job_stored_result *st = &c->stored;
		const char *nl = st->head ? strstr(st->head, "\r\n") : NULL;
		int n = nl ? (int)(nl - st->head) : 0;
		struct buf head;
		buf_init(&head, SIZE_MAX / 2);
		buf_printf(&head, "Status: 200 %.*s\r\n%sX-Accel-Redirect: %s/%s\r\n\r\n", n ? n : 2, n ? st->head : "OK",
		           nl ? nl + 2 : "", f->cfg.accel_prefix, st->file_name);
		c->status = 200;
		conn_answer(c, &head, "", -1, 0, 0);
		buf_free(&head);
		front_answer_free(&a);
		return;
	}
	front_answer_stored(&a, &c->stored, fcgi_param(c->envp, "HTTP_RANGE"));
	conn_answer_front(c, &a);
}

/* The mapped request becomes a job (or is refused: queue full, draining). */
static void submit_job(struct fconn *c)
{
	struct fcgi_front *f = c->f;
	struct job_request jr;
	const char *pv;
	int r;

	memset(&jr, 0, sizeof(jr));
	jr.script = c->m.target.script_filename;
	jr.cwd = c->m.target.dir;
	jr.env = &c->m.env;
	jr.body_fd = -1;
	if (c->body_fd >= 0) {
		lseek(c->body_fd, 0, SEEK_SET);
		jr.body_fd = c->body_fd;
		c->body_fd = -1;
	} else {
		jr.body_mem = c->body.data;
		jr.body_len = c->body.len;
	}
	jr.method = c->m.method;
	jr.uri = c->m.uri;
	jr.peer = c->m.peer;
	jr.bytes_in = (int64_t)c->body_len;
	/* Its script's settings; this front sends no 102. */
	jr.rule = c->rule = job_rule_lookup(f->engine, jr.script);
	{
		struct util_prefer pref = {0, 0, -1};
		int seen_wait = 0;
		if ((pv = fcgi_param(c->envp, "HTTP_PREFER")) != NULL)
			util_prefer_parse(pv, &pref, &seen_wait);
		c->async = pref.respond_async;
		c->wait_ms = c->async ? -1 : front_wait_ms(pref.wait_s, f->cfg.max_wait_ms);
	}
	if (f->draining || f->closing)
		r = -ESHUTDOWN;
	else
		r = c->async ? job_submit_async(f->engine, &jr, on_job_accepted, c, &c->job)
		             : job_submit(f->engine, &jr, on_job_done, c, &c->job);
	if (jr.body_fd >= 0) /* not taken by the engine */
		close(jr.body_fd);
	if (r < 0) {
		if (r == -EAGAIN)
			log_warnx("fastcgi %s: queue full, 503", c->tag);
		else if (r != -ESHUTDOWN)
			log_warnx("fastcgi %s: cannot submit job: %s", c->tag, strerror(-r));
		c->queue_full = r == -EAGAIN;
		conn_error(c, front_submit_status(r));
		return;
	}
	snprintf(c->job_id, sizeof(c->job_id), "%s", job_id(c->job));
	c->waiting = 1;
	if (c->wait_ms >= 0)
		uv_timer_start(&c->wait_timer, on_wait_expired, (uint64_t)c->wait_ms, 0);
}

/* The request is whole (the body's end arrived): answer it, or run its job. */
static void serve(struct fconn *c)
{
	struct fcgi_front *f = c->f;
	const char *why = NULL;
	char path[512], esc[256];
	int r;

	uv_timer_stop(&c->timer);
	c->phase = FP_WAITING;
	if (c->refusing) {
		/* The same rule as the HTTP front: the request is read, then
		 * answered 503 with Retry-After, and the connection closed. */
		c->keep_conn = 0;
		conn_error(c, 503);
		return;
	}
	if (c->role != FCGI_RESPONDER) {
		log_warnx("fastcgi %s: role %d is not supported (only the responder role); 500", c->tag, c->role);
		conn_error(c, 500);
		return;
	}
	if (fcgi_params_decode(c->params.data ? c->params.data : "", c->params.len, &c->envp) < 0) {
		c->envp = NULL;
		log_warnx("fastcgi %s: malformed parameters; 400", c->tag);
		conn_error(c, 400);
		return;
	}
	{
		/* "conn 12 203.0.113.5": the web server connection and the client */
		const char *ra = fcgi_param(c->envp, "REMOTE_ADDR");
		snprintf(c->tag, sizeof(c->tag), "conn %llu %s", (unsigned long long)c->id, ra && *ra ? ra : "-");
	}
	if (c->body_over) {
		log_warnx("fastcgi %s: request body larger than %llu bytes; 413", c->tag,
		          (unsigned long long)f->cfg.max_body_bytes);
		conn_error(c, 413);
		return;
	}
	if (api_path(f, c->envp, path, sizeof(path))) {
		serve_api(c, path);
		return;
	}
	{
		const char *cl = fcgi_param(c->envp, "CONTENT_LENGTH");
		int64_t blen = c->body_len > 0 || (cl && *cl) ? (int64_t)c->body_len : -1;
		r = fcgi_params_map(&f->cfg.params, c->envp, blen, &c->m, &why);
	}
	if (r != 0) {
		const char *sf = fcgi_param(c->envp, "SCRIPT_FILENAME"), *uri = fcgi_param(c->envp, "REQUEST_URI");
		log_warnx("fastcgi %s: \"%s\" %d: %s (SCRIPT_FILENAME %s)", c->tag,
		          uri ? log_escape(esc, sizeof(esc), uri, strlen(uri)) : "-", r, why ? why : "refused",
		          sf ? sf : "missing");
		conn_error(c, r);
		return;
	}
	c->mapped = 1;
	submit_job(c);
}

/* Body bytes: memory up to --body-mem-bytes, then an unnamed spool file. */
static void conn_body(struct fconn *c, const char *data, size_t len)
{
	struct fcgi_front *f = c->f;

	if (c->body_over)
		return;
	if (c->body_len + len > f->cfg.max_body_bytes) {
		c->body_over = 1;
		return;
	}
	c->body_len += len;
	if (c->body_fd < 0 && c->body.len + len <= f->cfg.body_mem_bytes) {
		buf_append(&c->body, data, len);
		return;
	}
	if (c->body_fd < 0) {
		c->body_fd = open(f->cfg.spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (c->body_fd < 0 || (c->body.len && write(c->body_fd, c->body.data, c->body.len) != (ssize_t)c->body.len)) {
			log_warn("fastcgi %s: cannot spool the request body", c->tag);
			c->body_over = 1;
			return;
		}
		buf_reset(&c->body);
	}
	while (len > 0) {
		ssize_t w = write(c->body_fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_warn("fastcgi %s: cannot spool the request body", c->tag);
			c->body_over = 1;
			return;
		}
		data += w;
		len -= (size_t)w;
	}
}

/* What a request holds: its job, a kept result, parameters, body. */
static void request_free(struct fconn *c)
{
	if (c->job) {
		job_release(c->job);
		c->job = NULL;
	}
	job_stored_result_close(&c->stored);
	if (c->mapped)
		fcgi_mapped_free(&c->m);
	c->mapped = 0;
	fcgi_params_free(c->envp);
	c->envp = NULL;
	buf_free(&c->params);
	c->params_total = 0;
	buf_free(&c->body);
	if (c->body_fd >= 0)
		close(c->body_fd);
	c->body_fd = -1;
}

/* The request is over (answered, or abandoned): back to waiting for the
 * next one on a kept connection, else closed. */
static void conn_next(struct fconn *c)
{
	struct fcgi_front *f = c->f;

	request_free(c);
	c->body_len = 0;
	c->body_over = 0;
	c->job_id[0] = c->api_id[0] = '\0';
	c->status = 0;
	c->body_bytes = 0;
	c->file_fd = -1;
	c->end_written = 0;
	c->queue_full = 0;
	c->job_ms = -1;
	c->waiting = c->async = 0;
	if (c->phase != FP_IDLE)
		f->busy--;
	c->phase = FP_IDLE;
	if (!c->keep_conn || f->draining || f->closing || c->failed) {
		fcgi__conn_close(c);
		return;
	}
	conn_arm(c);
}

/* ------------------------------------------------------------------ */
/* reading */

static void on_timer(uv_timer_t *t)
{
	struct fconn *c = t->data;

	if (c->phase == FP_WRITING) {
		log_info("fastcgi %s: the web server did not take the answer within --fastcgi-read-timeout %llu ms",
		         c->tag, (unsigned long long)c->f->cfg.read_timeout_ms);
		c->failed = 1;
	} else if (c->phase == FP_READING || c->rd.hdr_have > 0) {
		log_warnx("fastcgi %s: no whole request within --fastcgi-read-timeout %llu ms; connection closed", c->tag,
		          (unsigned long long)c->f->cfg.read_timeout_ms);
	} else if (c->phase == FP_IDLE) {
		log_debug("fastcgi %s: idle past --fastcgi-idle-timeout; closed", c->tag);
	} else {
		return; /* a job runs: no timeout of ours */
	}
	fcgi__conn_close(c);
}

/* (Re)arms the timer for what the connection waits for now. */
static void conn_arm(struct fconn *c)
{
	const struct fcgi_config *cfg = &c->f->cfg;
	uint64_t ms;

	if (c->phase == FP_WAITING) {
		uv_timer_stop(&c->timer);
		return;
	}
	ms = c->phase == FP_IDLE && c->rd.hdr_have == 0 && c->id > 0 && c->req_id ? cfg->idle_timeout_ms
	                                                                           : cfg->read_timeout_ms;
	if (ms)
		uv_timer_start(&c->timer, on_timer, ms, ms);
	else
		uv_timer_stop(&c->timer);
}

/* Parameters: the decision needs only the record headers, so a request that
 * declares more than --fastcgi-max-params is refused before they arrive. */
static int params_too_large(struct fconn *c)
{
	size_t cap = c->f->cfg.max_params_bytes;
	uint64_t declared = c->params_total;

	if (c->rd.hdr_have == FCGI_HEADER_LEN && c->rd.type == FCGI_PARAMS)
		declared += c->rd.content_left;
	if (declared <= cap)
		return 0;
	log_warnx("fastcgi %s: the parameters of a request take more than %llu bytes (--fastcgi-max-params %zu); "
	          "connection closed before reading them", c->tag, (unsigned long long)declared, cap);
	front_count_refusal(c->f->cfg.counters, FRONT_REFUSED_TOO_LARGE);
	return 1;
}

static void conn_reply(struct fconn *c, struct buf *b)
{
	conn_write(c, b);
	buf_free(b);
}

/* FCGI_BEGIN_REQUEST: a request starts, unless one is under way (no
 * multiplexing) or its role is not one FastCGI knows; out: the reply. */
static void conn_begin(struct fconn *c, const struct fcgi_event *ev, struct buf *out)
{
	if (c->phase != FP_IDLE) {
		fcgi_put_end(out, ev->request_id, 0, FCGI_CANT_MPX_CONN);
		conn_reply(c, out);
		return;
	}
	c->keep_conn = ev->keep_conn;
	if (ev->role != FCGI_RESPONDER && ev->role != FCGI_AUTHORIZER && ev->role != FCGI_FILTER) {
		log_warnx("fastcgi %s: unknown role %u; refused", c->tag, ev->role);
		fcgi_put_end(out, ev->request_id, 0, FCGI_UNKNOWN_ROLE);
		conn_reply(c, out);
		return;
	}
	c->phase = FP_READING;
	c->f->busy++;
	c->req_id = ev->request_id;
	c->role = (int)ev->role;
	c->t0 = util_mono_ms();
}

static void conn_events(struct fconn *c, const char *data, size_t len)
{
	struct fcgi_event ev;
	struct buf out;

	while (!c->closing) {
		ssize_t n = fcgi_read(&c->rd, data, len, &ev);
		if (n < 0) {
			log_warnx("fastcgi %s: malformed or truncated records; connection closed", c->tag);
			fcgi__conn_close(c);
			return;
		}
		data += n;
		len -= (size_t)n;
		buf_init(&out, SIZE_MAX / 2);
		switch (ev.kind) {
		case FCGI_EV_NONE:
			break;
		case FCGI_EV_BEGIN:
			conn_begin(c, &ev, &out);
			break;
		case FCGI_EV_PARAMS:
			if (c->phase == FP_READING && ev.request_id == c->req_id) {
				c->params_total += ev.len;
				buf_append(&c->params, ev.data, ev.len);
			}
			break;
		case FCGI_EV_STDIN:
			if (c->phase == FP_READING && ev.request_id == c->req_id)
				conn_body(c, ev.data, ev.len);
			break;
		case FCGI_EV_STDIN_END:
			if (c->phase == FP_READING && ev.request_id == c->req_id)
				serve(c);
			break;
		case FCGI_EV_PARAMS_END:
			break;
		case FCGI_EV_ABORT:
			if (c->phase == FP_IDLE || ev.request_id != c->req_id)
				break;
			conn_leave_job(c);
			if (c->phase == FP_WRITING)
				break; /* its answer is under way: the end follows it */
			c->failed = c->phase == FP_WAITING;
			c->phase = FP_WRITING;
			c->end_written = 0;
			c->status = -1;
			conn_pump(c);
			break;
		case FCGI_EV_GET_VALUES:
			fcgi_put_values(&out, ev.data, ev.len, c->f->cfg.max_connections);
			conn_reply(c, &out);
			break;
		case FCGI_EV_UNKNOWN_TYPE:
			fcgi_put_unknown_type(&out, ev.type);
			conn_reply(c, &out);
			break;
		}
		buf_free(&out);
		if (c->phase == FP_READING && !c->closing && params_too_large(c)) {
			fcgi__conn_close(c);
			return;
		}
		if (n == 0 && ev.kind == FCGI_EV_NONE)
			break;
	}
	if (!c->closing)
		conn_arm(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fconn *c = s->data;

	if (n > 0) {
		conn_events(c, b->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* The web server closed, or the connection failed. */
	if (c->phase == FP_READING || (c->phase == FP_IDLE && c->rd.hdr_have > 0))
		log_warnx("fastcgi %s: malformed or truncated records (closed mid-request)", c->tag);
	if (c->phase == FP_WAITING)
		conn_leave_job(c);
	c->failed = 1;
	fcgi__conn_close(c);
}

/* ------------------------------------------------------------------ */
/* connections */

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct fconn *c = h->data;
	struct fcgi_front *f = c->f;

	if (--c->handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	f->conn_count--;
	if (c->refusing)
		f->refusing--;
	if (c->counted)
		front_count_connection(f->cfg.counters, -1);
	free(c);
	fcgi__front_maybe_free(f);
}

void fcgi__conn_close(struct fconn *c)
{
	if (c->closing) {
		if (c->writes == 0 && !uv_is_closing(&c->h.handle)) {
			uv_close(&c->h.handle, on_conn_handle_closed);
			uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
			uv_close((uv_handle_t *)&c->wait_timer, on_conn_handle_closed);
		}
		return;
	}
	c->closing = 1;
	if (c->phase == FP_WAITING)
		conn_leave_job(c);
	if (c->phase != FP_IDLE) {
		if (c->status != 0 || c->job_id[0])
			conn_account(c);
		c->f->busy--;
		c->phase = FP_IDLE;
	}
	request_free(c);
	uv_read_stop(&c->h.stream);
	uv_timer_stop(&c->timer);
	uv_timer_stop(&c->wait_timer);
	if (c->writes == 0) {
		uv_close(&c->h.handle, on_conn_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
		uv_close((uv_handle_t *)&c->wait_timer, on_conn_handle_closed);
	}
}

void fcgi__on_connection(uv_stream_t *server, int status)
{
	struct fcgi_front *f = server->data;
	struct fconn *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char peer[64] = "unix";

	if (status < 0) {
		log_warnx("fastcgi: accept on %s: %s", f->sock.shown, uv_strerror(status));
		return;
	}
	c = util_xcalloc(1, sizeof(*c));
	c->f = f;
	c->body_fd = -1;
	c->file_fd = -1;
	c->stored.fd = -1;
	c->job_ms = -1;
	if (!f->sock.is_unix)
		uv_tcp_init(f->loop, &c->h.tcp);
	else
		uv_pipe_init(f->loop, &c->h.pipe, 0);
	uv_timer_init(f->loop, &c->timer);
	uv_timer_init(f->loop, &c->wait_timer);
	c->h.handle.data = c->timer.data = c->wait_timer.data = c;
	c->handles = 3;
	c->next = f->conns;
	if (f->conns)
		f->conns->prev = c;
	f->conns = c;
	f->conn_count++;
	if (uv_accept(server, &c->h.stream) < 0) {
		c->closing = 1;
		fcgi__conn_close(c);
		return;
	}
	c->id = ++f->conn_seq;
	if (!f->sock.is_unix && uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    !front_peer_allowed(f->cfg.allow, &ss, peer, sizeof(peer))) {
		log_warnx("fastcgi: connection from %s refused (not loopback and not in --fastcgi-allow)", peer);
		front_count_refusal(f->cfg.counters, FRONT_REFUSED_FORBIDDEN);
		c->closing = 1;
		fcgi__conn_close(c);
		return;
	}
	snprintf(c->tag, sizeof(c->tag), "conn %llu %s", (unsigned long long)c->id, peer);
	if (f->draining || f->closing) {
		c->closing = 1;
		fcgi__conn_close(c);
		return;
	}
	c->counted = 1;
	front_count_connection(f->cfg.counters, 1);
	if (f->cfg.max_connections && f->conn_count - f->refusing > f->cfg.max_connections) {
		c->refusing = 1;
		f->refusing++;
		log_warnx("fastcgi %s: refused, %u connections open (--max-connections %u)", c->tag,
		          f->conn_count - f->refusing, f->cfg.max_connections);
	}
	fcgi_reader_init(&c->rd);
	buf_init(&c->params, f->cfg.max_params_bytes + 1);
	buf_init(&c->body, SIZE_MAX / 2);
	uv_read_start(&c->h.stream, job_loop_alloc_cb, on_read);
	conn_arm(c);
}

/* ------------------------------------------------------------------ */
/* answers */

static void format_head(struct buf *head, const struct job_result *res)
{
	const struct cgi_response *resp = res->resp;

	/* A local redirect (Location: /path, no Status) is left to the web
	 * server, as fcgiwrap does: nginx answers it with 302. */
	if (resp->status != 0)
		buf_printf(head, "Status: %d %s\r\n", res->http_status,
		           resp->reason ? resp->reason : front_reason(res->http_status));
	if (resp->headers.data)
		buf_append(head, resp->headers.data, resp->headers.len);
	if (front_status_has_body(res->http_status))
		buf_printf(head, "Content-Length: %llu\r\n", (unsigned long long)res->body_bytes);
	buf_append_str(head, "\r\n");
}

static int app_status(const struct job_result *res)
{
	if (res == NULL)
		return 1;
	if (res->exit_code >= 0)
		return res->exit_code;
	if (res->term_signal > 0)
		return 128 + res->term_signal;
	return res->state == STORE_SUCCEEDED ? 0 : 1;
}

static int api_path(const struct fcgi_front *f, char *const *envp, char *out, size_t size)
{
	const char *p = fcgi_param(envp, "DOCUMENT_URI");
	size_t n = strlen(f->cfg.jobs_prefix);

	if (p == NULL || *p == '\0')
		p = fcgi_param(envp, "REQUEST_URI");
	if (p == NULL)
		return 0;
	snprintf(out, size, "%.*s", (int)strcspn(p, "?"), p);
	return strncmp(out, f->cfg.jobs_prefix, n) == 0 && (out[n] == '/' || out[n] == '\0');
}

/* ------------------------------------------------------------------ */
/* the front's end */

void fcgi__front_maybe_free(struct fcgi_front *f)
{
	if (!f->closing || f->conns != NULL || f->listening || f->freed)
		return;
	f->freed = 1;
	front_socket_release(&f->sock);
	free(f);
}
