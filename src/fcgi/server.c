/*
 * The FastCGI front's connections, on the libuv loop like the HTTP front:
 * their bytes go through the record codec (codec.c), and each request, once
 * its records are read, is handed to front/ on the same thread, which runs
 * it and writes its answer through fcgi__wire_ops. One request per
 * connection at a time (FCGI_MPXS_CONNS 0): a second BEGIN on a busy
 * connection is answered FCGI_CANT_MPX_CONN.
 *
 * A request: BEGIN (the responder role; the other roles are refused), the
 * parameters (at most --fastcgi-max-params: beyond, the connection is closed
 * before they are read, as soon as a record header declares them), the body
 * (front/: in memory, then spooled; at most --max-body-bytes), then the
 * answer: a CGI response on FCGI_STDOUT records (a body streamed from a file
 * a record at a time, as the web server takes it; a streamed program's body
 * as it writes it), the end (FCGI_END_REQUEST with the program's exit
 * status) in the same write as its last bytes.
 * FCGI_ABORT_REQUEST, or the connection closing, while a job runs is the
 * web server going away: the job is cancelled or, with --on-disconnect
 * detach, goes on with its result kept.
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
		const char *id = c->req ? front_req_job_id(c->req) : NULL;
		log_info("%s: the web server went away before the answer to job %s was written", c->tag, id ? id : "-");
		fcgi__conn_close(c);
		return;
	}
	conn_pump(c);
}

/* Queues b's bytes (b is emptied: the write owns them). 0, or -EPIPE when
 * the connection is closed (or closes now: the write failed). */
static int conn_write(struct fconn *c, struct buf *b)
{
	struct fwrite *w;
	uv_buf_t ub;

	if (c->closing)
		return -EPIPE;
	if (b->len == 0)
		return 0;
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
		return -EPIPE;
	}
	c->writes++;
	if (c->f->cfg.read_timeout_ms)
		uv_timer_again(&c->timer);
	return 0;
}

/* After each write: front/ goes on with the answer (its next chunk, or its
 * end), then the next request once the end is written. */
static void conn_pump(struct fconn *c)
{
	if (c->writes > 0 || c->closing || c->phase != FP_WRITING)
		return;
	if (front_req_answering(c->req))
		front_req_written(c->req);
	else if (c->end_written)
		conn_next(c);
}

/* The request's end, appended to out: the empty FCGI_STDOUT, then
 * FCGI_END_REQUEST with the program's exit status. */
static void put_end(struct fconn *c, struct buf *out)
{
	c->end_written = 1;
	fcgi_put_end(out, c->req_id, front_req_exit_status(c->req), FCGI_REQUEST_COMPLETE);
}

/* Ends a request without (the rest of) its answer. */
static void conn_end(struct fconn *c)
{
	struct buf out;

	buf_init(&out, SIZE_MAX / 2);
	c->phase = FP_WRITING;
	put_end(c, &out);
	conn_write(c, &out);
}

/* front's head: a CGI response head ("Status:" unless the program's local
 * redirect is left to the web server), then a body in memory, on
 * FCGI_STDOUT records. */
static int fcgi_head(struct front_req *r, struct front_answer *a, int last)
{
	struct fconn *c = front_req_wire(r);
	const char *mem = front_answer_mem(a);
	uint64_t len = front_answer_body_len(a);
	int has_body = front_status_has_body(a->status);
	struct buf head, out;

	c->phase = FP_WRITING;
	c->stream_body = a->streamed && has_body;
	buf_init(&head, SIZE_MAX / 2);
	buf_init(&out, SIZE_MAX / 2);
	if (!a->local_redirect)
		buf_printf(&head, "Status: %d %s\r\n", a->status, front_answer_reason(a));
	if (a->headers.len)
		buf_append(&head, a->headers.data, a->headers.len);
	if (has_body && !a->local_redirect && !a->delegated && !a->streamed)
		buf_printf(&head, "Content-Length: %llu\r\n", (unsigned long long)len);
	buf_append_str(&head, "\r\n");
	fcgi_put_stdout(&out, c->req_id, head.data, head.len);
	if (has_body && mem && len)
		fcgi_put_stdout(&out, c->req_id, mem, (size_t)len);
	/* The end in the same write: nginx keeps a connection for its next
	 * request only once END_REQUEST has come, and sent apart it was seen to
	 * close the connection between the two (README, FastCGI front). */
	if (last)
		put_end(c, &out);
	buf_free(&head);
	conn_arm(c);
	return conn_write(c, &out);
}

/* front's body: one chunk, one FCGI_STDOUT record (copied). */
static int fcgi_body(struct front_req *r, const char *data, size_t len, int last)
{
	struct fconn *c = front_req_wire(r);
	struct buf out;

	buf_init(&out, SIZE_MAX / 2);
	fcgi_put_stdout(&out, c->req_id, data, len);
	if (last)
		put_end(c, &out);
	return conn_write(c, &out);
}

/* front's streamed body: each piece on FCGI_STDOUT records (copied); the
 * end as for any answer (the empty FCGI_STDOUT and END_REQUEST). A cut
 * must reach the client as one: closing the connection without
 * END_REQUEST is not enough, as nginx takes that for the end of a body
 * without a length (and sends its last chunk). So a record it refuses
 * goes first (a management record, FCGI_UNKNOWN_TYPE, which no web server
 * expects on a request's connection): nginx then closes its client's
 * connection without the last chunk. front/ closes ours once it is
 * written. */
static int fcgi_stream(struct front_req *r, const char *data, size_t len, int how)
{
	struct fconn *c = front_req_wire(r);
	struct buf out;
	int e = 0;

	buf_init(&out, SIZE_MAX / 2);
	if (how == FRONT_STREAM_DATA && len > 0 && c->stream_body)
		fcgi_put_stdout(&out, c->req_id, data, len);
	else if (how == FRONT_STREAM_END)
		put_end(c, &out);
	else if (how == FRONT_STREAM_CUT)
		fcgi_put_unknown_type(&out, 0);
	e = conn_write(c, &out);
	buf_free(&out);
	if (e < 0)
		return e;
	return uv_stream_get_write_queue_size(&c->h.stream) > FRONT_STREAM_QUEUE_MAX;
}

/* The answer is written with its end (head or body with last), or is cut
 * short: the end follows alone. */
static void fcgi_finish(struct front_req *r)
{
	struct fconn *c = front_req_wire(r);

	if (c->end_written)
		conn_next(c);
	else
		conn_end(c);
}

static void fcgi_close(struct front_req *r)
{
	struct fconn *c = front_req_wire(r);

	c->failed = 1;
	fcgi__conn_close(c);
}

const struct front_wire_ops fcgi__wire_ops = {
	.head = fcgi_head,
	.body = fcgi_body,
	.finish = fcgi_finish,
	.close = fcgi_close,
	.redirect = NULL, /* nginx follows a program's local redirect, as behind fcgiwrap */
	.stream = fcgi_stream,
	/* One record's content: each chunk goes out as one FCGI_STDOUT record. */
	.chunk_bytes = FCGI_MAX_LENGTH,
};

/* ------------------------------------------------------------------ */
/* one request */

/* The path of the request's URI (DOCUMENT_URI, else REQUEST_URI without its
 * query), for the job API. */
static const char *request_path(struct fconn *c)
{
	const char *p = fcgi_param(c->envp, "DOCUMENT_URI");

	if (p == NULL || *p == '\0')
		p = fcgi_param(c->envp, "REQUEST_URI");
	if (p == NULL)
		return NULL;
	free(c->path);
	c->path = util_xstrndup(p, strcspn(p, "?"));
	return c->path;
}

/* The mapped request becomes a job (or is refused: queue full, draining). */
static void submit_job(struct fconn *c)
{
	struct front_job j;
	struct util_prefer pref = {0, 0, -1};
	int seen_wait = 0;
	const char *pv = fcgi_param(c->envp, "HTTP_PREFER");

	if (pv != NULL)
		util_prefer_parse(pv, &pref, &seen_wait);
	memset(&j, 0, sizeof(j));
	j.script = c->m.target.script_filename;
	j.cwd = c->m.target.dir;
	j.env = &c->m.env;
	j.method = c->m.method;
	j.uri = c->m.uri;
	j.peer = c->m.peer;
	j.with_body = 1;
	j.respond_async = pref.respond_async;
	j.wait_s = pref.wait_s;
	/* This front sends no 102: the request waits, or its answer is under way. */
	front_req_run(c->req, &j);
}

/* The request is whole (the body's end arrived): answer it, or run its job. */
static void serve(struct fconn *c)
{
	struct fcgi_front *f = c->f;
	struct front_req_info info;
	const char *why = NULL, *ra;
	char esc[256];
	int r;

	uv_timer_stop(&c->timer);
	c->phase = FP_WAITING;
	if (front_req_refused(c->req)) {
		/* The same rule as the HTTP front: the request is read, then
		 * answered 503 with Retry-After, and the connection closed. */
		c->keep_conn = 0;
		front_req_serve(c->req);
		return;
	}
	if (c->role != FCGI_RESPONDER) {
		log_warnx("%s: role %d is not supported (only the responder role); 500", c->tag, c->role);
		front_req_error(c->req, 500);
		return;
	}
	if (fcgi_params_decode(c->params.data ? c->params.data : "", c->params.len, &c->envp) < 0) {
		c->envp = NULL;
		log_warnx("%s: malformed parameters; 400", c->tag);
		front_req_error(c->req, 400);
		return;
	}
	buf_free(&c->params); /* decoded: while the job runs, only envp is kept */
	/* "fastcgi conn 12 203.0.113.5": the web server connection and the client */
	ra = fcgi_param(c->envp, "REMOTE_ADDR");
	snprintf(c->tag, sizeof(c->tag), "fastcgi conn %llu %s", (unsigned long long)c->id, ra && *ra ? ra : "-");
	memset(&info, 0, sizeof(info));
	info.method = fcgi_param(c->envp, "REQUEST_METHOD");
	info.target = fcgi_param(c->envp, "REQUEST_URI");
	info.protocol = fcgi_param(c->envp, "SERVER_PROTOCOL");
	info.path = request_path(c);
	info.host = ra;
	info.user = fcgi_param(c->envp, "REMOTE_USER");
	info.referer = fcgi_param(c->envp, "HTTP_REFERER");
	info.user_agent = fcgi_param(c->envp, "HTTP_USER_AGENT");
	info.range = fcgi_param(c->envp, "HTTP_RANGE");
	info.head_only = info.method && strcmp(info.method, "HEAD") == 0;
	info.started_ms = c->begun_ms;
	front_req_begin(c->req, &info);
	if (front_req_serve(c->req))
		return; /* a body refused, or the job API */
	{
		const char *cl = fcgi_param(c->envp, "CONTENT_LENGTH");
		uint64_t n = front_req_body_len(c->req);
		int64_t blen = n > 0 || (cl && *cl) ? (int64_t)n : -1;
		r = fcgi_params_map(&f->cfg.params, c->envp, blen, &c->m, &why);
	}
	if (r == 301) {
		/* A directory without its slash: the client's own path (REQUEST_URI,
		 * still encoded) with one. */
		const char *uri = info.target ? info.target : "";
		char *path = util_xstrndup(uri, strcspn(uri, "?"));
		front_req_moved(c->req, path, fcgi_param(c->envp, "QUERY_STRING"));
		free(path);
		return;
	}
	if (r != 0) {
		const char *sf = fcgi_param(c->envp, "SCRIPT_FILENAME"), *uri = info.target;
		char whyb[160];
		if (c->m.target.why_access)
			why = cgi_target_why(&c->m.target, f->cfg.params.cgi_user, whyb, sizeof(whyb));
		log_warnx("%s: \"%s\" %d: %s (SCRIPT_FILENAME %s)", c->tag,
		          uri ? log_escape(esc, sizeof(esc), uri, strlen(uri)) : "-", r, why ? why : "refused",
		          sf ? sf : "missing");
		front_req_error(c->req, r);
		return;
	}
	c->mapped = 1;
	submit_job(c);
}

/* What a request holds here: its parameters and mapping (front/ holds the
 * rest, released by front_req_reset). */
static void request_free(struct fconn *c)
{
	if (c->mapped)
		fcgi_mapped_free(&c->m);
	c->mapped = 0;
	fcgi_params_free(c->envp);
	c->envp = NULL;
	buf_free(&c->params);
	c->params_total = 0;
	c->params_scan = 0;
	c->params_done = 0;
	free(c->path);
	c->path = NULL;
}

/* The request is over (answered, or abandoned): back to waiting for the
 * next one on a kept connection, else closed. */
static void conn_next(struct fconn *c)
{
	struct fcgi_front *f = c->f;

	front_req_reset(c->req);
	request_free(c);
	c->end_written = 0;
	c->stream_body = 0;
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

	if (c->phase == FP_WRITING && c->writes == 0) {
		return; /* a streamed answer's program is quiet: not the web server's doing */
	} else if (c->phase == FP_WRITING) {
		log_info("%s: the web server did not take the answer within --fastcgi-read-timeout %llu ms",
		         c->tag, (unsigned long long)c->f->cfg.read_timeout_ms);
		c->failed = 1;
	} else if (c->phase == FP_READING || c->rd.hdr_have > 0) {
		log_warnx("%s: no whole request within --fastcgi-read-timeout %llu ms; connection closed", c->tag,
		          (unsigned long long)c->f->cfg.read_timeout_ms);
	} else if (c->phase == FP_IDLE) {
		log_debug("%s: idle past --fastcgi-idle-timeout; closed", c->tag);
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
	/* A pair declares its size with its two lengths, before its name and
	 * value arrive: one beyond the cap is refused then. */
	for (uint64_t end; declared <= cap &&
	                   fcgi_nv_extent(c->params.data, c->params.len, c->params_scan, &end) == 1;) {
		if (end > declared)
			declared = end;
		if (end > c->params.len)
			break;
		c->params_scan = (size_t)end;
	}
	if (declared <= cap)
		return 0;
	log_warnx("%s: the parameters of a request take more than %llu bytes (--fastcgi-max-params %zu); "
	          "connection closed before reading them", c->tag, (unsigned long long)declared, cap);
	front_refused(c->f->front, FRONT_REFUSED_TOO_LARGE);
	return 1;
}

static void conn_reply(struct fconn *c, struct buf *b)
{
	conn_write(c, b);
	buf_free(b);
}

/* FastCGI 3.3, 6.2: the parameters stream ends before the body's starts. A
 * body first would run the program with half an environment (no method, no
 * URI): the request is malformed, answered 400, and the connection closed,
 * its remaining records unread. */
static void refuse_early_stdin(struct fconn *c)
{
	log_warnx("%s: FCGI_STDIN before the end of FCGI_PARAMS: a malformed request; 400", c->tag);
	uv_timer_stop(&c->timer);
	c->phase = FP_WAITING;
	c->keep_conn = 0;
	uv_read_stop(&c->h.stream);
	front_req_error(c->req, 400);
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
		log_warnx("%s: unknown role %u; refused", c->tag, ev->role);
		fcgi_put_end(out, ev->request_id, 0, FCGI_UNKNOWN_ROLE);
		conn_reply(c, out);
		/* FastCGI 5.5: without FCGI_KEEP_CONN the application closes the
		 * connection after its reply (once it is written). */
		if (!ev->keep_conn)
			fcgi__conn_close(c);
		return;
	}
	c->phase = FP_READING;
	c->f->busy++;
	c->req_id = ev->request_id;
	c->begun_ms = util_mono_ms();
	c->role = (int)ev->role;
}

static void conn_events(struct fconn *c, const char *data, size_t len)
{
	struct fcgi_event ev;
	struct buf out;

	while (!c->closing) {
		ssize_t n = fcgi_read(&c->rd, data, len, &ev);
		if (n < 0) {
			log_warnx("%s: malformed or truncated records; connection closed", c->tag);
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
			if (c->phase == FP_READING && ev.request_id == c->req_id && !c->params_done) {
				c->params_total += ev.len;
				buf_append(&c->params, ev.data, ev.len);
			}
			break;
		case FCGI_EV_STDIN:
		case FCGI_EV_STDIN_END:
			if (c->phase != FP_READING || ev.request_id != c->req_id)
				break;
			if (!c->params_done)
				refuse_early_stdin(c);
			else if (ev.kind == FCGI_EV_STDIN)
				front_req_body(c->req, ev.data, ev.len); /* a refusal is answered at the end */
			else
				serve(c);
			break;
		case FCGI_EV_PARAMS_END:
			if (c->phase == FP_READING && ev.request_id == c->req_id)
				c->params_done = 1;
			break;
		case FCGI_EV_ABORT:
			if (c->phase == FP_IDLE || ev.request_id != c->req_id)
				break;
			if (c->phase == FP_WRITING)
				break; /* its answer is under way: the end follows it */
			/* The web server went away: its job cancelled or detached. */
			front_req_gone(c->req);
			c->failed = c->phase == FP_WAITING;
			conn_end(c);
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
		log_warnx("%s: malformed or truncated records (closed mid-request)", c->tag);
	c->failed = 1;
	fcgi__conn_close(c); /* a job waited for: cancelled or detached */
}

/* ------------------------------------------------------------------ */
/* connections */

static void conn_handle_closed(struct fconn *c)
{
	struct fcgi_front *f = c->f;

	if (--c->handles_open > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	f->conn_count--;
	free(c);
	fcgi__front_maybe_free(f);
}

static void on_conn_handle_closed(uv_handle_t *h) { conn_handle_closed(h->data); }
static void on_req_closed(void *wire) { conn_handle_closed(wire); }

void fcgi__conn_close(struct fconn *c)
{
	if (c->closing) {
		if (c->writes == 0 && !uv_is_closing(&c->h.handle)) {
			uv_close(&c->h.handle, on_conn_handle_closed);
			uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
		}
		return;
	}
	c->closing = 1;
	if (c->phase != FP_IDLE) {
		c->f->busy--;
		c->phase = FP_IDLE;
	}
	/* A job still waited for is cancelled or detached (--on-disconnect);
	 * the writes queued hold copies of what they send. */
	if (c->req)
		front_req_close(c->req, on_req_closed);
	c->req = NULL;
	request_free(c);
	uv_read_stop(&c->h.stream);
	uv_timer_stop(&c->timer);
	if (c->writes == 0) {
		uv_close(&c->h.handle, on_conn_handle_closed);
		uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
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
	if (!f->sock.is_unix)
		uv_tcp_init(f->loop, &c->h.tcp);
	else
		uv_pipe_init(f->loop, &c->h.pipe, 0);
	uv_timer_init(f->loop, &c->timer);
	c->h.handle.data = c->timer.data = c;
	c->handles_open = 2;
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
		front_refused(f->front, FRONT_REFUSED_FORBIDDEN);
		c->closing = 1;
		fcgi__conn_close(c);
		return;
	}
	snprintf(c->tag, sizeof(c->tag), "fastcgi conn %llu %s", (unsigned long long)c->id, peer);
	if (f->draining || f->closing) {
		c->closing = 1;
		fcgi__conn_close(c);
		return;
	}
	c->req = front_req_new(f->front, c, c->tag);
	c->handles_open++;
	fcgi_reader_init(&c->rd);
	buf_init(&c->params, f->cfg.max_params_bytes + 1);
	uv_read_start(&c->h.stream, front_alloc_cb, on_read);
	conn_arm(c);
}

/* ------------------------------------------------------------------ */
/* the front's end */

void fcgi__front_maybe_free(struct fcgi_front *f)
{
	if (!f->closing || f->conns != NULL || f->listening || f->freed)
		return;
	f->freed = 1;
	front_socket_release(&f->sock);
	front_free(f->front);
	free(f);
}
