/*
 * The HTTP/1.x front's connections: one libuv loop thread. Each connection
 * reads a request head (parser.c), maps the path to a program, and hands the
 * rest of the request's life to front/ (the body, the job, the answer, the
 * logs); it writes what front/ gives it (http__wire_ops: the head with an
 * exact Content-Length, body chunks, the end) and keeps the client informed
 * with 102 Processing on a timer while a job runs.
 *
 * One writer per connection: every byte goes through uv_write on the one
 * stream, in order, so a 102 is never interleaved with the final response,
 * and the 102 timer is stopped before the first byte of the final response
 * is queued.
 *
 * Listening and accepting are in accept.c, the 102s and the misread guard
 * in processing.c; internal.h holds what they share.
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


/* ------------------------------------------------------------------ */
/* lifetime */

void http__server_maybe_free(struct http_server *s)
{
	if (s->closing && s->handles_open == 0 && s->conns == NULL) {
		front_free(s->front);
		free(s);
	}
}

static void conn_free(struct conn *c)
{
	struct http_server *s = c->srv;

	if (c->have_target)
		cgi_target_free(&c->target);
	http_req_parser_free(c->parser);
	free(c->kept);
	free(c->names);
	buf_free(&c->in);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->conn_count--;
	free(c);
	if (s->accept_paused)
		s->on_conn_freed(s); /* a descriptor came back */
	http__server_maybe_free(s);
}

static void conn_handle_closed(struct conn *c)
{
	if (--c->handles_open == 0)
		conn_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h) { conn_handle_closed(h->data); }
static void on_req_closed(void *wire) { conn_handle_closed(wire); }

static void on_linger_shutdown(uv_shutdown_t *req, int status)
{
	(void)status; /* the close follows from the drain or its timer */
	free(req);
}

static void on_linger_timeout(uv_timer_t *t) { http__conn_close(t->data); }

/* The answer is queued: send FIN after it, read and drop what comes until
 * the client closes, LINGER_MAX_BYTES or LINGER_MS. */
static void conn_linger(struct conn *c)
{
	uv_shutdown_t *req = util_xmalloc(sizeof(*req));

	c->lingering = 1;
	if (uv_shutdown(req, &c->h.stream, on_linger_shutdown) < 0) {
		free(req);
		http__conn_close(c);
		return;
	}
	if (!c->reading) {
		c->reading = 1;
		uv_read_start(&c->h.stream, front_alloc_cb, http__on_conn_read);
	}
	uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

void http__conn_close(struct conn *c)
{
	if (c->phase == PH_CLOSING)
		return;
	c->phase = PH_CLOSING;
	/* The stream first: a write still queued may borrow the job's output,
	 * which the request's close releases. */
	uv_close(&c->h.handle, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	/* A job still waited for is cancelled or detached (--on-disconnect). */
	if (c->req)
		front_req_close(c->req, on_req_closed);
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

/* The answer is written and logged (front_req_written): linger, close, or
 * the next request on this connection. */
static void http_finish(struct front_req *r)
{
	struct conn *c = front_req_wire(r);

	if (c->linger && !c->srv->closing) {
		conn_linger(c);
		return;
	}
	if (c->close_after || c->srv->closing || c->srv->draining) {
		http__conn_close(c);
		return;
	}
	front_req_reset(c->req);
	if (c->have_target) {
		cgi_target_free(&c->target);
		c->have_target = 0;
	}
	free(c->kept);
	c->kept = NULL;
	c->served++;
	c->head_started = 0;
	c->sent_102 = 0;
	memset(&c->pd, 0, sizeof(c->pd));
	c->is_head = 0;
	c->http10 = 0;
	c->chunked = 0;
	if (c->parser)
		http_req_parser_reset(c->parser);
	else
		c->parser = http_req_parser_new(&c->srv->cfg.limits, http__on_body, c);
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
	/* A 102 or 100 Continue went out before; the answer's writes are done. */
	if (c->phase == PH_WRITE && c->writes_pending == 0)
		front_req_written(c->req);
}

/* The Date header's value (RFC 9110 6.6.1), formatted once a second. */
static const char *server_date(struct http_server *s)
{
	time_t now = time(NULL);

	if (now != s->date_sec || s->date[0] == '\0') {
		util_http_date(now, s->date, sizeof(s->date));
		s->date_sec = now;
	}
	return s->date;
}

/* A piece of an answer: len bytes at data; owned (or NULL) is freed once
 * they are written. */
struct piece {
	const char *data;
	size_t len;
	char *owned;
};

/* All of an answer's bytes are out (written at once by conn_send): front
 * hears of it here, at the next turn of the loop, as it would from a
 * write's callback, never from inside the call that wrote them. */
static void on_sent(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->phase == PH_WRITE && c->writes_pending == 0)
		front_req_written(c->req);
}

#define MAX_PIECES 3

/* The pieces in order: when nothing is queued before them they go at once,
 * in one writev (no write request, no callback, and no change of the
 * descriptor's events, which libuv makes after each queued write); what
 * the socket does not take is queued, copied into one buffer when the
 * pieces are transient (a streamed body's, valid during the call only).
 * An answer's bytes (PH_WRITE: http_head stopped the 102 timer) are then
 * reported written by the connection's timer; a 102's are not. */
static int conn_send(struct conn *c, struct piece *p, unsigned n, int transient)
{
	size_t sent = 0, total = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		total += p[i].len;
	if (c->writes_pending == 0 && total > 0) {
		uv_buf_t b[MAX_PIECES];
		unsigned nb = 0;
		int w;
		for (i = 0; i < n && nb < MAX_PIECES; i++)
			if (p[i].len > 0)
				b[nb++] = uv_buf_init((char *)p[i].data, (unsigned)p[i].len);
		w = uv_try_write(&c->h.stream, b, nb);
		if (w < 0 && w != UV_EAGAIN) {
			for (i = 0; i < n; i++)
				free(p[i].owned);
			return w;
		}
		sent = w > 0 ? (size_t)w : 0;
	}
	if (transient && sent < total) {
		char *copy = util_xmalloc(total - sent), *at = copy;
		for (i = 0; i < n; i++) {
			size_t skip = sent < p[i].len ? sent : p[i].len;
			sent -= skip;
			memcpy(at, p[i].data + skip, p[i].len - skip);
			at += p[i].len - skip;
			free(p[i].owned);
		}
		return http__conn_write(c, copy, (size_t)(at - copy), copy);
	}
	for (i = 0; i < n; i++) {
		size_t skip = sent < p[i].len ? sent : p[i].len;
		sent -= skip;
		if (skip == p[i].len) {
			free(p[i].owned);
		} else if (http__conn_write(c, p[i].data + skip, p[i].len - skip, p[i].owned) < 0) {
			while (++i < n)
				free(p[i].owned);
			return -1;
		}
	}
	if (c->writes_pending == 0 && c->phase == PH_WRITE)
		uv_timer_start(&c->timer, on_sent, 0, 0);
	return 0;
}

/* front's head: the status line, a's headers, Date, Server,
 * Content-Length, Connection; a body in memory goes with it. */
static int http_head(struct front_req *r, struct front_answer *a, int last)
{
	struct conn *c = front_req_wire(r);
	struct buf head;
	int status = a->status;
	uint64_t body_len = front_answer_body_len(a);
	const char *mem = front_answer_mem(a);
	struct piece p[2];

	/* last: unused, Content-Length says where the answer ends */
	uv_timer_stop(&c->timer); /* no 102 after this point */
	c->phase = PH_WRITE;
	/* RFC 9110 15.2 / DESIGN: a client that did not ask for 102s and got some
	 * may have misread one as the answer; never let it read another answer
	 * on this connection. */
	if (c->sent_102 > 0 && !c->pd.solicited)
		c->close_after = 1;
	if (!c->keep_alive || c->srv->closing || c->srv->draining)
		c->close_after = 1;

	buf_init(&head, SIZE_MAX / 2);
	buf_append_str(&head, "HTTP/1.1 ");
	buf_append_uint(&head, (uint64_t)status, 10);
	buf_append_str(&head, " ");
	buf_append_str(&head, front_answer_reason(a));
	buf_append_str(&head, "\r\n");
	if (a->headers.len)
		buf_append(&head, a->headers.data, a->headers.len);
	buf_append_str(&head, "Date: ");
	buf_append_str(&head, server_date(c->srv));
	buf_append_str(&head, "\r\nServer: cgiq/" CGIQ_VERSION "\r\n");
	if (a->streamed && front_status_has_body(status) && !c->is_head) {
		/* RFC 9112 6.1, 6.3: chunked to HTTP/1.1, else the close ends it */
		if (c->http10)
			c->close_after = 1;
		else
			c->chunked = 1;
		if (c->chunked)
			buf_append_str(&head, "Transfer-Encoding: chunked\r\n");
	} else if (front_status_has_body(status)) {
		buf_append_str(&head, "Content-Length: ");
		buf_append_uint(&head, body_len, 10);
		buf_append_str(&head, "\r\n");
	}
	if (c->close_after)
		buf_append_str(&head, "Connection: close\r\n");
	else if (c->http10)
		buf_append_str(&head, "Connection: keep-alive\r\n");
	buf_append_str(&head, "\r\n");

	p[0] = (struct piece){head.data, head.len, head.data};
	p[1] = (struct piece){NULL, 0, NULL};
	if (front_status_has_body(status) && !c->is_head && body_len > 0 && mem != NULL) {
		p[1].data = mem;
		p[1].len = (size_t)body_len;
		if (mem == a->body.data) {
			p[1].owned = a->body.data; /* the write's now */
			buf_init(&a->body, SIZE_MAX / 2);
		} /* else borrowed from the job, which lives until the request is reset */
	}
	if (conn_send(c, p, 2, 0) < 0) {
		http__conn_close(c);
		return -1;
	}
	return 0;
}

/* front's body: a chunk of a file, valid until front_req_written. */
static int http_body(struct front_req *r, const char *data, size_t len, int last)
{
	struct conn *c = front_req_wire(r);
	struct piece p = {data, len, NULL};

	(void)last;
	if (conn_send(c, &p, 1, 0) < 0) {
		http__conn_close(c);
		return -1;
	}
	return 0;
}

/* front's streamed body: a chunk each (RFC 9112 7.1) to HTTP/1.1, the
 * bytes as they are to HTTP/1.0; the last chunk at the end; nothing at a
 * cut (front/ then closes). A status without a body takes nothing. */
static int http_stream(struct front_req *r, const char *data, size_t len, int how)
{
	struct conn *c = front_req_wire(r);
	char size[24];
	struct piece p[MAX_PIECES];
	unsigned n = 0;

	if (how == FRONT_STREAM_DATA) {
		if (len == 0 || (!c->chunked && !c->close_after))
			return 0; /* nothing, or a body the answer does not have */
		if (c->chunked) {
			int k = snprintf(size, sizeof(size), "%zx\r\n", len);
			p[n++] = (struct piece){size, (size_t)k, NULL};
		}
		p[n++] = (struct piece){data, len, NULL};
		if (c->chunked)
			p[n++] = (struct piece){"\r\n", 2, NULL};
	} else if (how == FRONT_STREAM_END && c->chunked) {
		p[n++] = (struct piece){"0\r\n\r\n", 5, NULL};
	}
	if (conn_send(c, p, n, 1) < 0) {
		http__conn_close(c);
		return -1;
	}
	return uv_stream_get_write_queue_size(&c->h.stream) > FRONT_STREAM_QUEUE_MAX;
}

static void http_close(struct front_req *r) { http__conn_close(front_req_wire(r)); }

static int http_redirect(struct front_req *r, const char *location);

const struct front_wire_ops http__wire_ops = {
	.head = http_head,
	.body = http_body,
	.finish = http_finish,
	.close = http_close,
	.redirect = http_redirect,
	.stream = http_stream,
	.chunk_bytes = FRONT_FILE_CHUNK,
};

void http__conn_send_error(struct conn *c, int status, int close_after)
{
	if (close_after)
		c->close_after = 1;
	front_req_error(c->req, status);
}

/* ------------------------------------------------------------------ */
/* 102 Processing, on a timer (the bytes: processing.c) */

static void on_processing(uv_timer_t *t)
{
	struct conn *c = t->data;
	const char *data;
	size_t len;
	char *owned;
	uint64_t now;

	if (c->phase != PH_WAIT)
		return;
	if (c->pd.max_count && c->sent_102 >= c->pd.max_count)
		return;
	http__processing_message(c, &data, &len, &owned);
	if (conn_send(c, &(struct piece){data, len, owned}, 1, 0) < 0) {
		http__conn_close(c);
		return;
	}
	c->sent_102++;
	c->last_102_ms = util_mono_ms();
	front_req_note_processing(c->req);
	if (c->interval_102_ms == 0)
		return;
	/* The next one on the schedule, not this one's time plus the interval:
	 * a late 102 (a loop busy with thousands of others) does not make every
	 * later one later too. One missed entirely is skipped. */
	now = uv_now(c->srv->loop);
	do
		c->next_102_ms += c->interval_102_ms;
	while (c->next_102_ms <= now);
	uv_timer_start(&c->timer, on_processing, c->next_102_ms - now, 0);
}

/* ------------------------------------------------------------------ */
/* jobs */

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

/* Builds the environment and runs a job for c->target. method/uri/query
 * override the request's (local redirects). Returns 0 (a synchronous job
 * runs), -1 (answered, or answered once the job is durable), or an HTTP
 * status to answer. */
static int conn_submit(struct conn *c, const char *method, const char *uri, const char *query,
                       int with_body)
{
	const struct http_request *req = http__conn_request(c);
	struct http_server *s = c->srv;
	struct cgi_request cr;
	struct cgi_env env = {0};
	struct front_job j;
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
	cr.content_length = with_body && c->has_body ? (int64_t)front_req_body_len(c->req) : -1;
	cr.remote_addr = c->remote_addr;
	cr.remote_port = c->remote_port;
	cr.server_addr = c->local_addr;
	cr.server_port = c->local_port;
	cr.server_name = host_name(req, name, sizeof(name));
	if (cr.server_name == NULL)
		cr.server_name = c->local_addr;
	cr.pass_authorization = s->cfg.pass_authorization;
	cr.env = s->cfg.env;

	r = cgi_env_build(&cr, &env, &bad);
	if (r != 0) {
		char esc[128];
		log_warnx("%s: refused: headers map to the same CGI variable (%s)", c->tag,
		          log_escape(esc, sizeof(esc), bad ? bad : "?", bad ? strlen(bad) : 1));
		return r;
	}
	memset(&j, 0, sizeof(j));
	j.script = c->target.script_filename;
	j.cwd = c->target.dir;
	j.env = &env;
	j.method = method;
	j.uri = uri;
	j.peer = c->peer;
	j.with_body = with_body;
	j.respond_async = c->prefer.respond_async;
	j.wait_s = c->prefer.wait_s;
	r = front_req_run(c->req, &j);
	cgi_env_free(&env);
	/* The job has its copies: a connection that waits for it keeps none
	 * (a local redirect maps its path again). */
	cgi_target_free(&c->target);
	c->have_target = 0;
	return r == 0 ? 0 : -1;
}

/* The program a request path names (cgi_map, with the interpreters). */
static int http_map(const struct http_server *s, const char *path, struct cgi_target *t)
{
	const struct cgi_map m = {.root = s->cfg.cgi_root, .prefix = s->cfg.cgi_prefix,
	                          .interpreter = s->cfg.interpreter, .ctx = s->cfg.interpreter_ctx,
	                          .index = s->cfg.index, .static_patterns = s->cfg.static_patterns};

	return cgi_map(&m, path, t);
}

/* A path mapped to st and c->target that is answered without a job: a
 * directory without its slash (301 to it), a static file. Returns 1 when
 * answered. */
static int conn_answer_now(struct conn *c, int st, const char *path, const char *query)
{
	if (st == 301) {
		front_req_moved(c->req, path, query);
		return 1;
	}
	if (st == 0 && c->target.is_static) {
		front_req_static(c->req, c->target.script_filename);
		cgi_target_free(&c->target);
		return 1;
	}
	return 0;
}

/* RFC 3875 6.2.2: a local redirect is run again as a GET for that path
 * (front's redirect; the job of the request is released), as a request
 * for it would be: a directory's 301, a static file, or a job. */
static int http_redirect(struct front_req *r, const char *location)
{
	struct conn *c = front_req_wire(r);
	const char *q = strchr(location, '?');
	char *path = util_xstrndup(location, q ? (size_t)(q - location) : strlen(location));
	int st;

	if (c->have_target) {
		cgi_target_free(&c->target);
		c->have_target = 0;
	}
	st = http_map(c->srv, path, &c->target);
	if (conn_answer_now(c, st, path, q ? q + 1 : "")) {
		free(path);
		return 0;
	}
	free(path);
	if (st != 0)
		return st;
	c->have_target = 1;
	st = conn_submit(c, "GET", location, q ? q + 1 : "", 0);
	return st > 0 ? st : 0;
}

/* ------------------------------------------------------------------ */
/* admin listener */

static void conn_admin(struct conn *c)
{
	const struct http_request *req = http__conn_request(c);
	struct front_admin_response ar;
	struct front_answer a;

	front_admin_handle(c->srv->engine, c->srv->cfg.fronts, req->method, req->path, req->query, &ar);
	front_answer_init(&a, ar.status);
	buf_printf(&a.headers, "Content-Type: %s\r\nCache-Control: no-store\r\n",
	           ar.content_type ? ar.content_type : "text/plain; charset=utf-8");
	if (ar.allow)
		buf_printf(&a.headers, "Allow: %s\r\n", ar.allow);
	buf_free(&a.body);
	a.body = ar.body; /* the page goes with the answer */
	front_req_answer(c->req, &a);
}

/* ------------------------------------------------------------------ */
/* request handling */

int http__on_body(void *ud, const char *data, size_t len)
{
	struct conn *c = ud;

	return front_req_body(c->req, data, len);
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
	uint64_t body_len = front_req_body_len(c->req);

	if (body_len * 1000 / elapsed_ms >= cfg->body_min_rate)
		return 0;
	log_warnx("%s: request body at %llu bytes/s after %llu ms, below --body-min-rate %llu; 408", c->tag,
	          (unsigned long long)(body_len * 1000 / elapsed_ms), (unsigned long long)elapsed_ms,
	          (unsigned long long)cfg->body_min_rate);
	return 1;
}

/* What front/ reads of the request (its strings borrowed from it). */
static void conn_request_info(const struct conn *c, struct front_req_info *info)
{
	const struct http_request *req = http__conn_request(c);

	memset(info, 0, sizeof(*info));
	info->method = req->method;
	info->target = req->target;
	info->protocol = c->protocol;
	info->path = req->path;
	info->host = c->is_unix ? "unix" : c->remote_addr;
	info->referer = http_request_header(req, "Referer", 0);
	info->user_agent = http_request_header(req, "User-Agent", 0);
	info->range = http_request_header(req, "Range", 0);
	info->if_none_match = http_request_header(req, "If-None-Match", 0);
	info->if_modified_since = http_request_header(req, "If-Modified-Since", 0);
	info->if_range = http_request_header(req, "If-Range", 0);
	info->head_only = c->is_head;
	/* Admin pages only: never a program, never the job API. The body, if
	 * any, is read (within the limits) and ignored. */
	info->quiet = c->srv->cfg.admin;
}

static void conn_headers(struct conn *c)
{
	const struct http_request *req = http__conn_request(c);
	struct http_server *s = c->srv;
	struct front_req_info info;
	int r;

	c->is_head = strcmp(req->method, "HEAD") == 0;
	c->keep_alive = req->keep_alive;
	c->http10 = req->http_minor == 0;
	c->has_body = req->chunked || req->content_length >= 0;
	c->started_ms = util_mono_ms();
	snprintf(c->protocol, sizeof(c->protocol), "HTTP/%d.%d", req->http_major, req->http_minor);
	conn_request_info(c, &info);
	front_req_begin(c->req, &info);
	if (s->cfg.admin || front_req_is_api(c->req)) {
		c->phase = PH_BODY;
		uv_timer_start(&c->timer, on_conn_timer, s->cfg.body_timeout_ms, 0);
		return;
	}
	r = http_map(s, req->path, &c->target);
	if (r == 301 || (r == 0 && c->target.is_static)) {
		/* Not a job (a directory without its slash, a static file):
		 * answered now, its body (if any) not read. */
		if (c->has_body && req->content_length != 0)
			c->close_after = 1;
		conn_answer_now(c, r, req->path, req->query);
		return;
	}
	if (r != 0) {
		char esc[256], why[160];
		log_info("%s: \"%s %s\" %d: no program for this path: %s", c->tag, req->method,
		         log_escape(esc, sizeof(esc), req->target, strlen(req->target)), r,
		         cgi_target_why(&c->target, s->cfg.cgi_user, why, sizeof(why)));
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

const struct http_request *http__conn_request(const struct conn *c)
{
	if (c->kept)
		return c->kept;
	return c->parser ? http_req_parser_request(c->parser) : NULL;
}

/*
 * The request's job runs, for seconds or minutes: the connection keeps only
 * what the rest of the request needs (a compact copy of the request, for
 * the log lines, a local redirect and the misread guard), and gives back
 * the parser with its buffers and the input buffer's room (made again at
 * the next request).
 */
static void conn_keep_request(struct conn *c)
{
	struct front_req_info info;

	c->kept = http_request_copy(http_req_parser_request(c->parser));
	http_req_parser_free(c->parser);
	c->parser = NULL;
	conn_request_info(c, &info);
	front_req_rebase(c->req, &info);
	if (c->in.len == 0)
		buf_free(&c->in);
}

static void conn_complete(struct conn *c)
{
	const struct http_request *req = http__conn_request(c);
	struct http_server *s = c->srv;
	struct http_prefer prefer;
	struct http_processing_context pctx;
	uint64_t after_ms = s->cfg.processing_after_ms, interval_ms = s->cfg.processing_interval_ms;
	const struct front_policy *p;
	int r;

	uv_timer_stop(&c->timer);
	c->phase = PH_WAIT;
	c->close_after = 0;
	if (s->cfg.admin) {
		conn_admin(c);
		return;
	}
	if (front_req_serve(c->req))
		return; /* the job API */
	http_prefer_parse(req, &c->prefer);
	prefer = c->prefer;
	r = conn_submit(c, req->method, req->target, req->query, 1);
	if (r > 0)
		http__conn_send_error(c, r, 0);
	if (r != 0)
		return;
	pctx.extra = s->cfg.processing_clients;
	pctx.extra_count = s->cfg.processing_client_count;
	pctx.local_port = c->is_unix ? 0 : (int)c->local_port;
	pctx.from_relay = http_relay_match(s->cfg.processing_relays, s->cfg.processing_relay_count,
	                                   c->remote_addr, c->is_unix);
	pctx.misread = http_evidence_has(s->cfg.processing_evidence, http_request_header(req, "User-Agent", 0),
	                                 time(NULL));
	if ((p = front_req_policy(c->req)) != NULL) {
		/* Its script block's 102 settings. */
		http_processing_decide((enum http_processing_mode)p->processing_mode, p->processing_max, req,
		                       &prefer, &pctx, &c->pd);
		after_ms = p->processing_after_ms;
		interval_ms = p->processing_interval_ms;
	} else {
		http_processing_decide(s->cfg.processing_mode, s->cfg.processing_max, req, &prefer, &pctx, &c->pd);
	}
	if (c->pd.send) {
		c->next_102_ms = uv_now(s->loop) + after_ms;
		c->interval_102_ms = interval_ms;
		uv_timer_start(&c->timer, on_processing, after_ms, 0);
	} else {
		log_debug("job %s: no 102 for this client (%s)", front_req_job_id(c->req), c->pd.rule);
	}
	conn_keep_request(c);
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
			if (front_req_body_status(c->req) != r) /* else logged with its cause */
				log_warnx("%s: bad request, %d %s, in \"%s\"", c->tag, r, front_reason(r),
				          log_escape(esc, sizeof(esc), c->in.data ? c->in.data : "",
				                     c->in.len < 96 ? c->in.len : 96));
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
		uv_read_start(&c->h.stream, front_alloc_cb, http__on_conn_read);
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
			http__conn_misread(c, FRONT_MISREAD_CLOSED_AFTER_102);
		else if (c->phase == PH_WAIT)
			log_info("%s: client went away while job %s ran", c->tag,
			         front_req_job_id(c->req) ? front_req_job_id(c->req) : "-");
		else if (c->phase == PH_BODY)
			log_warnx("%s: connection closed in the middle of the request body", c->tag);
		http__conn_close(c);
		return;
	}
	if (http__misread_risk(c) && !http__only_line_breaks(b->base, (size_t)n)) {
		http__conn_misread(c, FRONT_MISREAD_EARLY_REQUEST);
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

