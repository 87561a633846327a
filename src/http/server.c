/*
 * The HTTP/1.x front: one libuv loop thread. Each connection reads a request
 * head, maps the path to a program, collects the body (spooled to a file
 * beyond a threshold), submits a job, keeps the client informed with 102
 * Processing on a timer, and writes the final response with an exact
 * Content-Length, from memory or from the job's spool file in chunks.
 *
 * One writer per connection: every byte goes through uv_write on the one
 * stream, in order, so a 102 is never interleaved with the final response,
 * and the 102 timer is stopped before the first byte of the final response
 * is queued.
 *
 * Here: a request's life on its connection. Listening and accepting are in
 * accept.c, the 102s and the misread guard in processing.c; internal.h
 * holds what they share.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static void conn_access_log(struct conn *c, int status);
static void conn_write_more_file(struct conn *c);

/* ------------------------------------------------------------------ */
/* lifetime */

void http__server_maybe_free(struct http_server *s)
{
	if (s->closing && s->handles_open == 0 && s->conns == NULL)
		free(s);
}

static void conn_free(struct conn *c)
{
	struct http_server *s = c->srv;

	if (c->job) {
		job_release(c->job);
		c->job = NULL;
	}
	if (c->have_target)
		cgi_target_free(&c->target);
	if (c->body_fd >= 0)
		close(c->body_fd);
	job_stored_result_close(&c->stored);
	http_req_parser_free(c->parser);
	buf_free(&c->in);
	buf_free(&c->body);
	free(c->file_chunk);
	if (!s->cfg.admin)
		job_front_count_connection(s->cfg.counters, -1);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->conn_count--;
	if (c->linger)
		s->refusing--;
	free(c);
	if (s->accept_paused)
		s->on_conn_freed(s); /* a descriptor came back */
	http__server_maybe_free(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles_open == 0)
		conn_free(c);
}

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status; /* the close follows from the drain or its timer */
}

static void on_linger_timeout(uv_timer_t *t) { http__conn_close(t->data); }

/* The answer is queued: send FIN after it, read and drop what comes until
 * the client closes, LINGER_MAX_BYTES or LINGER_MS. */
static void conn_linger(struct conn *c)
{
	c->lingering = 1;
	if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_linger_shutdown) < 0) {
		http__conn_close(c);
		return;
	}
	if (!c->reading) {
		c->reading = 1;
		uv_read_start(&c->h.stream, job_loop_alloc_cb, http__on_conn_read);
	}
	uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

void http__conn_close(struct conn *c)
{
	if (c->phase == PH_CLOSING)
		return;
	enum conn_phase was = c->phase;

	c->phase = PH_CLOSING;
	int detach = c->rule ? c->rule->policy.detach_on_disconnect : c->srv->cfg.detach_on_disconnect;

	if (was == PH_WAIT && !c->api)
		conn_access_log(c, 499); /* nginx's "client closed request" */
	if (c->job && (c->async || (was == PH_WAIT && detach))) {
		/* Accepted asynchronously, or --on-disconnect detach: it goes on,
		 * and its result stays retrievable by id. */
		if (!c->async)
			log_info("%s: client went away; job %s goes on (detached)", c->tag, job_id(c->job));
		job_leave(c->job, c, 1, NULL);
	} else if (c->job) {
		job_leave(c->job, c, 0, "client closed the connection");
	}
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->ptimer, on_conn_handle_closed);
	uv_close(&c->h.handle, on_conn_handle_closed);
}

/* ------------------------------------------------------------------ */
/* access log */

/* One access-log line for the current request (admin pages are not logged:
 * a scraper every few seconds would drown the clients' lines). */
static void conn_access_log(struct conn *c, int status)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct front_access_entry e;
	char protocol[16];

	if (c->srv->cfg.access_log == NULL || c->api == 2)
		return;
	memset(&e, 0, sizeof(e));
	e.host = c->is_unix ? "unix" : c->remote_addr;
	e.time_us = util_now_us();
	if (req) {
		snprintf(protocol, sizeof(protocol), "HTTP/%d.%d", req->http_major, req->http_minor);
		e.method = req->method;
		e.target = req->target;
		e.protocol = protocol;
		e.referer = http_request_header(req, "Referer", 0);
		e.user_agent = http_request_header(req, "User-Agent", 0);
	}
	e.status = status;
	e.bytes = status == 499 || c->is_head ? 0 : c->final_bytes;
	e.job_id = c->job ? job_id(c->job) : NULL;
	e.processing_sent = c->sent_102;
	e.job_ms = c->job ? job_duration_ms(c->job) : -1;
	e.request_ms = c->started_ms ? util_mono_ms() - c->started_ms : 0;
	front_access_log_write(c->srv->cfg.access_log, &e);
}

/* ------------------------------------------------------------------ */
/* writing */

static void on_written(uv_write_t *req, int status);

int http__conn_write(struct conn *c, const char *data, size_t len, char *owned)
{
	struct wreq *w = util_xmalloc(sizeof(*w));
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int r;

	w->c = c;
	w->owned = owned;
	w->req.data = w;
	r = uv_write(&w->req, &c->h.stream, &b, 1, on_written);
	if (r < 0) {
		free(owned);
		free(w);
		return r;
	}
	c->writes_pending++;
	return 0;
}

static void conn_response_done(struct conn *c)
{
	char esc[256];
	const struct http_request *req = http_req_parser_request(c->parser);

	const char *method = req ? req->method : "-", *target = req ? req->target : "-";

	log_info("%s \"%s %s\" %d %llu job=%s 102s=%u %llums", c->tag, method,
	         log_escape(esc, sizeof(esc), target, strlen(target)), c->final_status,
	         (unsigned long long)c->final_bytes, c->job ? job_id(c->job) : "-", c->sent_102,
	         (unsigned long long)(util_mono_ms() - c->started_ms));
	if (c->api != 2) {
		conn_access_log(c, c->final_status);
		job_front_count_response(c->srv->cfg.counters, c->final_status);
		if (c->refusal >= 0)
			job_front_count_refusal(c->srv->cfg.counters, (enum job_refusal)c->refusal);
		else if (c->job == NULL && !c->api && c->final_status >= 400)
			/* Answered before any job ran: a refused request. */
			job_front_count_refusal(c->srv->cfg.counters, job_refusal_of_status(c->final_status));
	}
	if (c->linger && !c->srv->closing) {
		conn_linger(c);
		return;
	}
	if (c->close_after || c->srv->closing || c->srv->draining) {
		http__conn_close(c);
		return;
	}
	/* Ready for the next request on this connection. */
	if (c->job) {
		job_release(c->job);
		c->job = NULL;
	}
	if (c->have_target) {
		cgi_target_free(&c->target);
		c->have_target = 0;
	}
	if (c->body_fd >= 0) {
		close(c->body_fd);
		c->body_fd = -1;
	}
	c->file_fd = -1; /* owned by the job or by c->stored */
	job_stored_result_close(&c->stored);
	c->api = 0;
	c->refusal = -1;
	c->rule = NULL;
	c->async = 0;
	buf_reset(&c->body);
	c->body_len = 0;
	c->served++;
	c->head_started = 0;
	c->sent_102 = 0;
	memset(&c->pd, 0, sizeof(c->pd));
	c->redirects = 0;
	c->is_head = 0;
	c->http10 = 0;
	http_req_parser_reset(c->parser);
	c->phase = PH_HEAD;
	http__conn_process(c);
}

static void on_written(uv_write_t *req, int status)
{
	struct wreq *w = req->data;
	struct conn *c = w->c;

	free(w->owned);
	free(w);
	c->writes_pending--;
	if (c->phase == PH_CLOSING)
		return;
	if (status < 0) {
		log_debug("%s: write failed: %s", c->tag, uv_strerror(status));
		http__conn_close(c);
		return;
	}
	if (c->phase != PH_WRITE)
		return; /* a 102 or 100 Continue went out */
	if (c->file_fd >= 0 && c->file_off < c->file_end) {
		if (c->writes_pending == 0)
			conn_write_more_file(c);
		return;
	}
	if (c->writes_pending == 0)
		conn_response_done(c);
}

static void conn_write_more_file(struct conn *c)
{
	ssize_t n;

	if (c->file_chunk == NULL)
		c->file_chunk = util_xmalloc(FRONT_FILE_CHUNK);
	n = front_file_chunk(c->file_fd, c->file_off, c->file_end, c->file_chunk, FRONT_FILE_CHUNK);
	if (n <= 0) {
		/* The header promised more bytes than we can send: the only honest
		 * thing left is to close the connection. */
		log_warn("%s: reading spooled output at offset %llu", c->tag,
		         (unsigned long long)c->file_off);
		http__conn_close(c);
		return;
	}
	c->file_off += (uint64_t)n;
	if (http__conn_write(c, c->file_chunk, (size_t)n, NULL) < 0)
		http__conn_close(c);
}

/* Writes a whole final response. extra_headers: "Name: value\r\n" lines or NULL.
 * Exactly one of body_mem / body_fd describes body_len bytes; body_owned:
 * body_mem is the connection's to free (after the write), else it must
 * outlive the write. */
static void conn_send_final(struct conn *c, int status, const char *reason, const char *extra_headers,
                            const char *body_mem, char *body_owned, int body_fd, uint64_t body_off,
                            uint64_t body_len)
{
	struct buf head;
	char date[40];
	int send_body = front_status_has_body(status) && !c->is_head;

	uv_timer_stop(&c->ptimer); /* no 102 after this point */
	uv_timer_stop(&c->timer);
	c->phase = PH_WRITE;
	c->final_status = status;
	c->final_bytes = front_status_has_body(status) ? body_len : 0;
	/* RFC 9110 15.2 / DESIGN: a client that did not ask for 102s and got some
	 * may have misread one as the answer; never let it read another answer
	 * on this connection. */
	if (c->sent_102 > 0 && !c->pd.solicited)
		c->close_after = 1;
	if (!c->keep_alive || c->srv->closing || c->srv->draining)
		c->close_after = 1;

	buf_init(&head, SIZE_MAX / 2);
	util_http_date(time(NULL), date, sizeof(date));
	buf_printf(&head, "HTTP/1.1 %d %s\r\n", status, reason ? reason : front_reason(status));
	if (extra_headers)
		buf_append_str(&head, extra_headers);
	buf_printf(&head, "Date: %s\r\nServer: cgiq/%s\r\n", date, CGIQ_VERSION);
	if (front_status_has_body(status))
		buf_printf(&head, "Content-Length: %llu\r\n", (unsigned long long)body_len);
	if (c->close_after)
		buf_append_str(&head, "Connection: close\r\n");
	else if (c->http10)
		buf_append_str(&head, "Connection: keep-alive\r\n");
	buf_append_str(&head, "\r\n");

	c->file_fd = -1;
	if (!send_body || body_len == 0 || body_mem == NULL) {
		free(body_owned);
		body_owned = NULL;
		body_mem = NULL;
	} else if (body_len <= INLINE_BODY_MAX) {
		/* Small: head and body in one write. */
		buf_append(&head, body_mem, (size_t)body_len);
		free(body_owned);
		body_owned = NULL;
		body_mem = NULL;
	}
	if (http__conn_write(c, head.data, head.len, head.data) < 0) {
		free(body_owned);
		http__conn_close(c);
		return;
	}
	if (body_mem) {
		if (http__conn_write(c, body_mem, (size_t)body_len, body_owned) < 0)
			http__conn_close(c);
	} else if (send_body && body_len > 0 && body_fd >= 0) {
		c->file_fd = body_fd;
		c->file_off = body_off;
		c->file_end = body_off + body_len;
	}
}

/* An answer of the front layer; its body memory goes with the write. */
static void conn_send_answer(struct conn *c, struct front_answer *a)
{
	char *mem = a->fd < 0 && a->body.len > 0 ? a->body.data : NULL;
	uint64_t len = front_answer_body_len(a);

	if (mem)
		buf_init(&a->body, SIZE_MAX / 2); /* the write's now */
	conn_send_final(c, a->status, a->reason[0] ? a->reason : NULL, a->headers.data, mem, mem, a->fd, a->off,
	                len);
	front_answer_free(a);
}

/* A short text/plain answer; extra: more header lines or NULL. */
static void conn_send_error_hdrs(struct conn *c, int status, const char *extra)
{
	struct front_answer a;

	front_answer_init(&a, status);
	front_answer_error(&a, status, extra);
	if (c->job == NULL && c->started_ms == 0)
		c->started_ms = util_mono_ms();
	conn_send_answer(c, &a);
}

void http__conn_send_error(struct conn *c, int status, int close_after)
{
	if (close_after)
		c->close_after = 1;
	conn_send_error_hdrs(c, status, NULL);
}

/* ------------------------------------------------------------------ */
/* 102 Processing, on a timer (the bytes: processing.c) */

static void on_processing(uv_timer_t *t)
{
	struct conn *c = t->data;
	const char *data;
	size_t len;
	char *owned;

	if (c->phase != PH_WAIT)
		return;
	if (c->pd.max_count && c->sent_102 >= c->pd.max_count) {
		uv_timer_stop(&c->ptimer);
		return;
	}
	http__processing_message(c, &data, &len, &owned);
	if (http__conn_write(c, data, len, owned) < 0) {
		http__conn_close(c);
		return;
	}
	c->sent_102++;
	c->last_102_ms = util_mono_ms();
	if (c->job)
		job_note_processing(c->job);
}

/* ------------------------------------------------------------------ */
/* jobs */

static void on_job_done(struct job *job, void *ud);
static void on_job_accepted(struct job *job, int result, void *ud);
static void conn_send_accepted(struct conn *c, const char *applied);

static const char *host_name(const struct http_request *req, char *out, size_t out_size)
{
	const char *host = http_request_header(req, "Host", 0);
	size_t n;

	if (host == NULL || *host == '\0')
		return NULL;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		n = end ? (size_t)(end - host) + 1 : strlen(host);
	} else {
		const char *colon = strchr(host, ':');
		n = colon ? (size_t)(colon - host) : strlen(host);
	}
	if (n >= out_size)
		n = out_size - 1;
	memcpy(out, host, n);
	out[n] = '\0';
	return out;
}

/* Builds the environment and submits a job for c->target. method/uri/query
 * override the request's (local redirects). Returns 0 or an HTTP status. */
static int conn_submit(struct conn *c, const char *method, const char *uri, const char *query,
                       int with_body)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct http_server *s = c->srv;
	struct cgi_request cr;
	struct cgi_env env = {0};
	struct job_request jr;
	char protocol[16], name[256];
	const char *bad = NULL;
	int r;

	snprintf(protocol, sizeof(protocol), "HTTP/%d.%d", req->http_major, req->http_minor);
	memset(&cr, 0, sizeof(cr));
	cr.method = method;
	cr.request_uri = uri;
	cr.query_string = query;
	cr.protocol = protocol;
	cr.target = &c->target;
	cr.document_root = s->cfg.cgi_root;
	cr.headers = req->headers;
	cr.header_count = req->header_count;
	cr.content_length = with_body && c->has_body ? (int64_t)c->body_len : -1;
	cr.remote_addr = c->remote_addr;
	cr.remote_port = c->remote_port;
	cr.server_addr = c->local_addr;
	cr.server_port = c->local_port;
	cr.server_name = host_name(req, name, sizeof(name));
	if (cr.server_name == NULL)
		cr.server_name = c->local_addr;
	cr.pass_authorization = s->cfg.pass_authorization;

	r = cgi_env_build(&cr, &env, &bad);
	if (r != 0) {
		char esc[128];
		log_warnx("%s: refused: headers map to the same CGI variable (%s)", c->tag,
		          log_escape(esc, sizeof(esc), bad ? bad : "?", bad ? strlen(bad) : 1));
		return r;
	}
	memset(&jr, 0, sizeof(jr));
	jr.script = c->target.script_filename;
	jr.cwd = c->target.dir;
	jr.env = &env;
	jr.body_fd = -1;
	if (with_body && c->body_fd >= 0) {
		lseek(c->body_fd, 0, SEEK_SET);
		jr.body_fd = c->body_fd;
		c->body_fd = -1;
	} else if (with_body) {
		jr.body_mem = c->body.data;
		jr.body_len = c->body.len;
	}
	jr.method = method;
	jr.uri = uri;
	jr.peer = c->peer;
	jr.bytes_in = with_body ? (int64_t)c->body_len : 0;
	/* Its script's settings, resolved once here and carried by the job. */
	c->rule = job_rule_lookup(s->engine, jr.script);
	jr.rule = c->rule;
	if (c->async)
		r = job_submit_async(s->engine, &jr, on_job_accepted, c, &c->job);
	else
		r = job_submit(s->engine, &jr, on_job_done, c, &c->job);
	cgi_env_free(&env);
	if (jr.body_fd >= 0)
		close(jr.body_fd);
	if (r == -EAGAIN) {
		struct job_stats st;
		job_engine_stats(s->engine, &st);
		log_warnx("%s: queue full (%u waiting, %u running), 503", c->tag, st.queued, st.running);
	} else if (r < 0 && r != -ESHUTDOWN) {
		log_warnx("%s: cannot submit job: %s", c->tag, strerror(-r));
	}
	return r < 0 ? front_submit_status(r) : 0;
}

/* RFC 3875 6.2.2: a local redirect is re-dispatched as a GET for that path. */
static void conn_local_redirect(struct conn *c, const char *location)
{
	const char *q = strchr(location, '?');
	char *path = util_xstrndup(location, q ? (size_t)(q - location) : strlen(location));
	int r;

	job_release(c->job);
	c->job = NULL;
	if (c->have_target) {
		cgi_target_free(&c->target);
		c->have_target = 0;
	}
	c->redirects++;
	r = cgi_map_path(c->srv->cfg.cgi_root, c->srv->cfg.cgi_prefix, path, &c->target);
	free(path);
	if (r == 0) {
		c->have_target = 1;
		r = conn_submit(c, "GET", location, q ? q + 1 : "", 0);
	}
	if (r != 0)
		http__conn_send_error(c, r, 0);
}

static void on_job_done(struct job *job, void *ud)
{
	struct conn *c = ud;
	const struct job_result *res = job_result(job);

	if (c->phase != PH_WAIT)
		return;
	if (res->resp && res->resp->status == 0) {
		if (c->redirects < MAX_LOCAL_REDIRECTS) {
			conn_local_redirect(c, res->resp->location);
			return;
		}
		log_warnx("job %s: more than %d local redirects", job_id(job), MAX_LOCAL_REDIRECTS);
		http__conn_send_error(c, 502, 0);
		return;
	}
	if (res->resp == NULL && res->state == STORE_INTERRUPTED) {
		/* cgiq is shutting down: the same request may be sent again soon */
		conn_send_error_hdrs(c, 503, "Retry-After: 5\r\n");
		return;
	}
	if (res->resp == NULL) {
		http__conn_send_error(c, res->http_status, 0);
		return;
	}
	conn_send_final(c, res->http_status, res->resp->reason, res->resp->headers.data, res->body_mem, NULL,
	                res->body_fd, 0, res->body_bytes);
}

/* ------------------------------------------------------------------ */
/* asynchronous jobs: 202, status monitor, results (RFC 7240) */

/* 202 Accepted with the status monitor; applied: the Preference-Applied value or NULL. */
static void conn_send_accepted(struct conn *c, const char *applied)
{
	struct front_answer a;

	front_answer_init(&a, 202);
	front_answer_accepted(&a, c->srv->engine, c->srv->cfg.jobs_prefix, job_id(c->job), applied);
	conn_send_answer(c, &a);
}

static void on_job_accepted(struct job *job, int result, void *ud)
{
	struct conn *c = ud;

	if (c->phase != PH_WAIT)
		return;
	if (result < 0) {
		/* Not on disk: the job must not be promised. */
		log_warnx("%s: job %s could not be recorded durably; 503", c->tag, job_id(job));
		job_cancel(job, "could not be recorded durably");
		conn_send_error_hdrs(c, 503, "Retry-After: 5\r\n");
		return;
	}
	conn_send_accepted(c, "respond-async");
}

/* The job API (front/answer.c), answered on this connection. */
static void conn_api(struct conn *c)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct http_server *s = c->srv;
	char id[UTIL_ID_LEN + 1];
	enum front_api kind;
	struct front_answer a;

	front_answer_init(&a, 0);
	if (front_api_route(s->cfg.jobs_prefix, req->path, c->is_head ? "HEAD" : req->method, id, &kind, &a) == 0) {
		if (kind != FRONT_API_RESULT)
			front_api_answer(s->engine, kind, id, c->tag, &a);
		else if (front_api_result_open(s->engine, id, &c->stored, &a) == 0)
			front_answer_stored(&a, &c->stored, http_request_header(req, "Range", 0));
	}
	conn_send_answer(c, &a);
}

/* ------------------------------------------------------------------ */
/* admin listener */

static void conn_admin(struct conn *c)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct http_admin_response ar;
	char hdrs[256];

	http_admin_handle(c->srv->engine, c->srv->cfg.fronts, req->method, req->path, req->query, &ar);
	snprintf(hdrs, sizeof(hdrs), "Content-Type: %s\r\nCache-Control: no-store\r\n%s%s%s",
	         ar.content_type ? ar.content_type : "text/plain; charset=utf-8", ar.allow ? "Allow: " : "",
	         ar.allow ? ar.allow : "", ar.allow ? "\r\n" : "");
	/* The page goes with the write. */
	conn_send_final(c, ar.status, NULL, hdrs, ar.body.data, ar.body.data, -1, 0, ar.body.len);
}

/* ------------------------------------------------------------------ */
/* request handling */

int http__on_body(void *ud, const char *data, size_t len)
{
	struct conn *c = ud;
	struct http_server *s = c->srv;

	c->body_len += len;
	if (c->body_fd < 0 && c->body.len + len <= s->cfg.body_mem_bytes)
		return buf_append(&c->body, data, len) == 0 ? 0 : 413;
	if (c->body_fd < 0) {
		c->body_fd = open(s->cfg.spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (c->body_fd < 0) {
			log_warn("%s: cannot spool the request body in %s", c->tag, s->cfg.spool_dir);
			return 507;
		}
		if (c->body.len > 0 && write(c->body_fd, c->body.data, c->body.len) != (ssize_t)c->body.len) {
			log_warn("%s: cannot spool the request body", c->tag);
			return 507;
		}
		buf_free(&c->body);
	}
	while (len > 0) {
		ssize_t w = write(c->body_fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			log_warn("%s: cannot spool the request body", c->tag);
			return 507;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

/* 408: reading stops, the connection closes after the answer. */
static void conn_request_timeout(struct conn *c)
{
	uv_read_stop(&c->h.stream);
	c->reading = 0;
	c->keep_alive = 0;
	http__conn_send_error(c, 408, 1);
}

static void on_conn_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->phase == PH_HEAD && !c->head_started && c->served > 0) {
		log_debug("%s: idle keep-alive connection closed", c->tag);
		http__conn_close(c);
		return;
	}
	if (c->phase == PH_HEAD || c->phase == PH_BODY) {
		if (c->phase == PH_HEAD)
			log_warnx("%s: request head not complete in time, 408", c->tag);
		else
			log_warnx("%s: no request body byte for %llu ms, 408", c->tag,
			          (unsigned long long)c->srv->cfg.body_timeout_ms);
		conn_request_timeout(c);
	}
}

/* A body that keeps coming, but too slowly to be anything but a way to hold
 * a connection (one byte every few seconds): after --body-timeout, it must
 * average --body-min-rate (Apache's mod_reqtimeout does the same). */
static int conn_body_too_slow(struct conn *c)
{
	const struct http_server_config *cfg = &c->srv->cfg;
	uint64_t elapsed_ms = util_mono_ms() - c->started_ms;

	if (cfg->body_min_rate == 0 || elapsed_ms <= cfg->body_timeout_ms || elapsed_ms == 0)
		return 0;
	if (c->body_len * 1000 / elapsed_ms >= cfg->body_min_rate)
		return 0;
	log_warnx("%s: request body at %llu bytes/s after %llu ms, below --body-min-rate %llu; 408", c->tag,
	          (unsigned long long)(c->body_len * 1000 / elapsed_ms), (unsigned long long)elapsed_ms,
	          (unsigned long long)cfg->body_min_rate);
	return 1;
}

static int is_api_path(const struct http_server *s, const char *path)
{
	size_t n = strlen(s->cfg.jobs_prefix);
	return strncmp(path, s->cfg.jobs_prefix, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void conn_headers(struct conn *c)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct http_server *s = c->srv;
	int r;

	c->is_head = strcmp(req->method, "HEAD") == 0;
	c->keep_alive = req->keep_alive;
	c->http10 = req->http_minor == 0;
	c->has_body = req->chunked || req->content_length >= 0;
	c->started_ms = util_mono_ms();
	if (s->cfg.admin) {
		/* Admin pages only: never a program, never the job API. The body,
		 * if any, is read (within the limits) and ignored. */
		c->api = 2;
		c->phase = PH_BODY;
		uv_timer_start(&c->timer, on_conn_timer, s->cfg.body_timeout_ms, 0);
		return;
	}
	if (is_api_path(s, req->path)) {
		c->api = 1;
		c->phase = PH_BODY;
		uv_timer_start(&c->timer, on_conn_timer, s->cfg.body_timeout_ms, 0);
		return;
	}
	r = cgi_map_path(s->cfg.cgi_root, s->cfg.cgi_prefix, req->path, &c->target);
	if (r != 0) {
		char esc[256];
		log_info("%s: \"%s %s\" %d: no program for this path", c->tag, req->method,
		         log_escape(esc, sizeof(esc), req->target, strlen(req->target)), r);
		/* Its body was not read: the connection cannot carry another request. */
		http__conn_send_error(c, r, c->has_body && req->content_length != 0);
		return;
	}
	c->have_target = 1;
	/* RFC 9110 10.1.1: answer 100-continue only when the body is wanted. */
	if (req->expect_continue && req->http_minor >= 1 && c->has_body) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (http__conn_write(c, cont, sizeof(cont) - 1, NULL) < 0) {
			http__conn_close(c);
			return;
		}
	}
	c->phase = PH_BODY;
	uv_timer_start(&c->timer, on_conn_timer, s->cfg.body_timeout_ms, 0);
}

static void on_wait_expired(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->phase != PH_WAIT || c->job == NULL)
		return;
	log_info("%s: job %s still running after Prefer: wait; answering 202", c->tag, job_id(c->job));
	job_leave(c->job, c, 1, NULL);
	conn_send_accepted(c, NULL);
}

static void conn_complete(struct conn *c)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	struct http_server *s = c->srv;
	struct http_prefer prefer;
	struct http_processing_context pctx;
	uint64_t after_ms = s->cfg.processing_after_ms, interval_ms = s->cfg.processing_interval_ms;
	int r;

	uv_timer_stop(&c->timer);
	c->phase = PH_WAIT;
	c->close_after = 0;
	if (c->api == 2) {
		conn_admin(c);
		return;
	}
	if (c->api) {
		conn_api(c);
		return;
	}
	http_prefer_parse(req, &c->prefer);
	prefer = c->prefer;
	c->async = prefer.respond_async;
	r = conn_submit(c, req->method, req->target, req->query, 1);
	if (r == 503) {
		c->refusal = JOB_REFUSED_QUEUE_FULL;
		conn_send_error_hdrs(c, 503, "Retry-After: 5\r\n");
		return;
	}
	if (r != 0) {
		http__conn_send_error(c, r, 0);
		return;
	}
	if (c->async)
		return; /* 202 once the job is on disk: on_job_accepted */
	int64_t wait_ms = front_wait_ms(prefer.wait_s, s->cfg.max_wait_ms);
	if (wait_ms >= 0)
		uv_timer_start(&c->timer, on_wait_expired, (uint64_t)wait_ms, 0);
	pctx.extra = s->cfg.processing_clients;
	pctx.extra_count = s->cfg.processing_client_count;
	pctx.local_port = c->is_unix ? 0 : (int)c->local_port;
	pctx.from_relay = http_relay_match(s->cfg.processing_relays, s->cfg.processing_relay_count,
	                                   c->remote_addr, c->is_unix);
	pctx.misread = http_evidence_has(s->cfg.processing_evidence, http_request_header(req, "User-Agent", 0),
	                                 time(NULL));
	if (c->rule) {
		/* Its script block's 102 settings. */
		const struct job_policy *p = &c->rule->policy;
		http_processing_decide((enum http_processing_mode)p->processing_mode, p->processing_max, req,
		                       &prefer, &pctx, &c->pd);
		after_ms = p->processing_after_ms;
		interval_ms = p->processing_interval_ms;
	} else {
		http_processing_decide(s->cfg.processing_mode, s->cfg.processing_max, req, &prefer, &pctx, &c->pd);
	}
	if (c->pd.send)
		uv_timer_start(&c->ptimer, on_processing, after_ms, interval_ms);
	else
		log_debug("job %s: no 102 for this client (%s)", job_id(c->job), c->pd.rule);
}

void http__conn_process(struct conn *c)
{
	int after_head = 0;

	/* Right after the head, feed once more even with no bytes left: a request
	 * without a body completes on that call. */
	while ((c->phase == PH_HEAD || c->phase == PH_BODY) && (c->in.len > 0 || after_head)) {
		size_t used = 0;
		int r;

		after_head = 0;

		if (c->phase == PH_HEAD && !c->head_started) {
			c->head_started = 1;
			uv_timer_start(&c->timer, on_conn_timer, c->srv->cfg.header_timeout_ms, 0);
		}
		r = http_req_parser_feed(c->parser, c->in.data ? c->in.data : "", c->in.len, &used);
		buf_consume(&c->in, used);
		if (r == HTTP_PARSE_NEED_MORE)
			break;
		if (r == HTTP_PARSE_HEADERS) {
			conn_headers(c);
			after_head = 1;
			continue;
		}
		if (r == HTTP_PARSE_COMPLETE) {
			if (c->phase == PH_BODY)
				conn_complete(c);
			break;
		}
		if (r >= 400) {
			/* The bytes the parser refused (escaped), so a log reader can
			 * tell a NUL in a path from an oversized header. */
			char esc[160];
			log_warnx("%s: bad request, %d %s, in \"%s\"", c->tag, r, front_reason(r),
			          log_escape(esc, sizeof(esc), c->in.data ? c->in.data : "", c->in.len < 96 ? c->in.len : 96));
			if (c->phase == PH_HEAD)
				c->started_ms = util_mono_ms();
			c->keep_alive = 0;
			http__conn_send_error(c, r, 1);
			break;
		}
	}
	if (c->phase == PH_HEAD && !c->head_started)
		uv_timer_start(&c->timer, on_conn_timer,
		               c->served ? c->srv->cfg.idle_timeout_ms : c->srv->cfg.header_timeout_ms, 0);
	/* Pipelined bytes wait while a response is pending; stop reading at the cap. */
	if (!c->reading && c->in.len < PIPELINE_MAX_BYTES && c->phase != PH_CLOSING) {
		c->reading = 1;
		uv_read_start(&c->h.stream, job_loop_alloc_cb, http__on_conn_read);
	}
}


void http__on_conn_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = stream->data;

	if (c->lingering) {
		if (n < 0 || (c->lingered_bytes += (size_t)n) > LINGER_MAX_BYTES)
			http__conn_close(c);
		return; /* the answer is sent: what the client says now is dropped */
	}

	if (n == 0 || c->phase == PH_CLOSING)
		return;
	if (n < 0) {
		/* A checked client (the built-in table) that closes is most likely
		 * stopped by its user (Ctrl-C): only the others are suspected. */
		if (c->phase == PH_WAIT && http__misread_risk(c) && !http_processing_rule_checked(c->pd.rule) &&
		    util_mono_ms() - c->last_102_ms <= MISREAD_CLOSE_WINDOW_MS)
			http__conn_misread(c, JOB_MISREAD_CLOSED_AFTER_102);
		else if (c->phase == PH_WAIT)
			log_info("%s: client went away while job %s ran", c->tag,
			         c->job ? job_id(c->job) : "-");
		else if (c->phase == PH_BODY)
			log_warnx("%s: connection closed in the middle of the request body", c->tag);
		http__conn_close(c);
		return;
	}
	if (http__misread_risk(c) && !http__only_line_breaks(b->base, (size_t)n)) {
		http__conn_misread(c, JOB_MISREAD_EARLY_REQUEST);
		http__conn_close(c);
		return;
	}
	if (buf_append(&c->in, b->base, (size_t)n) < 0) {
		log_warnx("%s: too many pipelined bytes", c->tag);
		http__conn_close(c);
		return;
	}
	if (c->phase == PH_BODY) {
		/* --body-timeout is a gap between reads: every byte restarts it. */
		uv_timer_start(&c->timer, on_conn_timer, c->srv->cfg.body_timeout_ms, 0);
		if (conn_body_too_slow(c)) {
			conn_request_timeout(c);
			return;
		}
	}
	if (c->phase == PH_HEAD || c->phase == PH_BODY) {
		http__conn_process(c);
	} else if (c->in.len >= PIPELINE_MAX_BYTES) {
		uv_read_stop(stream);
		c->reading = 0;
	}
}

