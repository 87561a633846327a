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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "front/front.h"
#include "jobs/jobs.h"

#define FILE_CHUNK 65536
/* Bodies up to this size are copied into the head's buffer (one write, and
 * the caller's memory may be freed at once). */
#define INLINE_BODY_MAX 16384
#define MAX_LOCAL_REDIRECTS 5
#define PIPELINE_MAX_BYTES (64 * 1024)
/* A refused connection's answer is followed by a shutdown of writing and a
 * drain of what the client still sends, for at most this long and this
 * many bytes: closing a socket with unread bytes makes the kernel send a
 * reset, which can destroy the answer before the client has read it. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (256 * 1024)
/* A client that closes this soon after an unsolicited 102 has most likely
 * taken it as its answer (a script's library reads it, returns, exits). */
#define MISREAD_CLOSE_WINDOW_MS 500

static const char PROCESSING_102[] = "HTTP/1.1 102 Processing\r\n\r\n";

enum conn_phase { PH_HEAD, PH_BODY, PH_WAIT, PH_WRITE, PH_CLOSING };

struct listener {
	struct listener *next;
	struct http_server *srv;
	union front_stream h;
	int is_unix;
	char *name;
	char *unix_path;
	int held;   /* a connection libuv accepted that we have not taken (accepting paused) */
};

struct conn {
	struct conn *next, *prev;
	struct http_server *srv;
	union front_stream h;
	uv_timer_t timer;   /* head / body / idle deadline */
	uv_timer_t ptimer;  /* 102 Processing */
	int handles_open;
	enum conn_phase phase;
	int reading;
	int head_started;   /* a byte of the current request has arrived */
	int served;         /* requests answered on this connection */

	char peer[80];      /* for the record: "127.0.0.1:53211" */
	char tag[112];      /* for logs: "conn 17 127.0.0.1:53211" */
	int is_unix;
	char remote_addr[64];
	unsigned remote_port;
	char local_addr[64];
	unsigned local_port;

	struct http_req_parser *parser;
	struct buf in;

	/* the request being served */
	int is_head;
	int http10;
	int keep_alive;
	struct cgi_target target;
	int have_target;
	int has_body;
	struct buf body;
	int body_fd;
	uint64_t body_len;
	struct job *job;
	const struct job_script_rule *rule; /* its script's settings; NULL = the globals */
	int redirects;
	struct http_processing_decision pd;
	unsigned sent_102;
	uint64_t last_102_ms;    /* when the last 102 was queued */
	int close_after;
	int linger;              /* after the answer: shut down writing, drain what the client sends */
	int lingering;           /* doing so (LINGER_MS at most), then closed */
	size_t lingered_bytes;
	uv_shutdown_t shutdown_req;
	uint64_t started_ms;
	int final_status;
	uint64_t final_bytes;
	int api;                 /* a status monitor / result request; 2: an admin page */
	int refusal;             /* a job_refusal counted for this answer, -1 none */
	int async;               /* its job was accepted with respond-async */
	struct http_prefer prefer;
	struct job_stored_result stored; /* a kept result being sent */

	/* writing */
	unsigned writes_pending;
	int file_fd;
	uint64_t file_off, file_end;
	char *file_chunk;
	int writing_file_chunk;
};

struct http_server {
	uv_loop_t *loop;
	struct job_engine *engine;
	struct http_server_config cfg;
	struct listener *listeners;
	struct conn *conns;
	unsigned conn_count;
	unsigned refusing;   /* of those, refused over --max-connections and closing */
	int closing;
	int draining;        /* http_server_drain: no new connection, no keep-alive */
	unsigned handles_open;
	/* Out of descriptors: accepting pauses until some are free again. */
	uv_timer_t accept_timer;   /* retries while paused */
	int accept_paused;
	int nofile_limit;          /* RLIMIT_NOFILE (soft) at start */
	int nofile_headroom;       /* pause when fewer descriptors than this are left */
};

/* Connection ids in log lines; the loop thread is the only user. */
static uint64_t conn_seq;

struct wreq {
	uv_write_t req;
	struct conn *c;
	char *owned;
};

static void conn_close(struct conn *c);
static void conn_access_log(struct conn *c, int status);
static void conn_process(struct conn *c);
static void conn_send_error(struct conn *c, int status, int close_after);
static void conn_write_more_file(struct conn *c);
static void on_conn_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b);

/* ------------------------------------------------------------------ */
/* lifetime */

static void server_maybe_free(struct http_server *s)
{
	if (s->closing && s->handles_open == 0 && s->conns == NULL)
		free(s);
}

static void server_accept_resume(struct http_server *s);

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
		server_accept_resume(s); /* a descriptor came back */
	server_maybe_free(s);
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

static void on_linger_timeout(uv_timer_t *t) { conn_close(t->data); }

/* The answer is queued: send FIN after it, read and drop what comes until
 * the client closes, LINGER_MAX_BYTES or LINGER_MS. */
static void conn_linger(struct conn *c)
{
	c->lingering = 1;
	if (uv_shutdown(&c->shutdown_req, &c->h.stream, on_linger_shutdown) < 0) {
		conn_close(c);
		return;
	}
	if (!c->reading) {
		c->reading = 1;
		uv_read_start(&c->h.stream, job_loop_alloc_cb, on_conn_read);
	}
	uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
}

static void conn_close(struct conn *c)
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

static int conn_write(struct conn *c, const char *data, size_t len, char *owned)
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
		conn_close(c);
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
	conn_process(c);
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
		conn_close(c);
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
	size_t want = FILE_CHUNK;
	ssize_t n;

	if (c->file_end - c->file_off < want)
		want = (size_t)(c->file_end - c->file_off);
	if (c->file_chunk == NULL)
		c->file_chunk = util_xmalloc(FILE_CHUNK);
	do {
		n = pread(c->file_fd, c->file_chunk, want, (off_t)c->file_off);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* The header promised more bytes than we can send: the only honest
		 * thing left is to close the connection. */
		log_warn("%s: reading spooled output at offset %llu", c->tag,
		         (unsigned long long)c->file_off);
		conn_close(c);
		return;
	}
	c->file_off += (uint64_t)n;
	if (conn_write(c, c->file_chunk, (size_t)n, NULL) < 0)
		conn_close(c);
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
	if (conn_write(c, head.data, head.len, head.data) < 0) {
		free(body_owned);
		conn_close(c);
		return;
	}
	if (body_mem) {
		if (conn_write(c, body_mem, (size_t)body_len, body_owned) < 0)
			conn_close(c);
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

static void conn_send_error(struct conn *c, int status, int close_after)
{
	if (close_after)
		c->close_after = 1;
	conn_send_error_hdrs(c, status, NULL);
}

/* ------------------------------------------------------------------ */
/* 102 Processing */

/* Appends a draft-wright-http-progress value: 3/20 "rendering page 3". */
static void append_progress(struct buf *b, int64_t done, int64_t total, const char *text)
{
	buf_printf(b, "Progress: %lld/%lld", (long long)done, (long long)total);
	if (text && *text) {
		buf_append_str(b, " \"");
		for (const char *p = text; *p; p++) {
			unsigned char ch = (unsigned char)*p;
			if (ch == '"' || ch == '\\')
				buf_append(b, "\\", 1);
			if (ch >= 0x20 && ch != 0x7f)
				buf_append(b, p, 1);
		}
		buf_append_str(b, "\"");
	}
	buf_append_str(b, "\r\n");
}

/* One whole interim response, queued in order with everything else. */
static int conn_write_processing(struct conn *c)
{
	int64_t done, total;
	const char *text;
	int with_location = c->sent_102 == 0 && c->prefer.processing && c->job;
	int with_progress = c->job && job_progress(c->job, &done, &total, &text);
	struct buf b;

	if (!with_location && !with_progress)
		/* A static string: nothing to free, and the bytes are whole in the queue. */
		return conn_write(c, PROCESSING_102, sizeof(PROCESSING_102) - 1, NULL);
	buf_init(&b, SIZE_MAX / 2);
	buf_append_str(&b, "HTTP/1.1 102 Processing\r\n");
	if (with_location) {
		/* The status monitor: where to look if this connection is lost. */
		job_expose(c->job);
		buf_printf(&b, "Location: %s/%s\r\n", c->srv->cfg.jobs_prefix, job_id(c->job));
	}
	if (with_progress)
		append_progress(&b, done, total, text);
	buf_append_str(&b, "\r\n");
	return conn_write(c, b.data, b.len, b.data);
}

static void on_processing(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->phase != PH_WAIT)
		return;
	if (c->pd.max_count && c->sent_102 >= c->pd.max_count) {
		uv_timer_stop(&c->ptimer);
		return;
	}
	if (conn_write_processing(c) < 0) {
		conn_close(c);
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
		conn_send_error(c, r, 0);
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
		conn_send_error(c, 502, 0);
		return;
	}
	if (res->resp == NULL && res->state == STORE_INTERRUPTED) {
		/* cgiq is shutting down: the same request may be sent again soon */
		conn_send_error_hdrs(c, 503, "Retry-After: 5\r\n");
		return;
	}
	if (res->resp == NULL) {
		conn_send_error(c, res->http_status, 0);
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

static int on_body(void *ud, const char *data, size_t len)
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
	conn_send_error(c, 408, 1);
}

static void on_conn_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->phase == PH_HEAD && !c->head_started && c->served > 0) {
		log_debug("%s: idle keep-alive connection closed", c->tag);
		conn_close(c);
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
		conn_send_error(c, r, c->has_body && req->content_length != 0);
		return;
	}
	c->have_target = 1;
	/* RFC 9110 10.1.1: answer 100-continue only when the body is wanted. */
	if (req->expect_continue && req->http_minor >= 1 && c->has_body) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (conn_write(c, cont, sizeof(cont) - 1, NULL) < 0) {
			conn_close(c);
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
		conn_send_error(c, r, 0);
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

static void conn_process(struct conn *c)
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
			conn_send_error(c, r, 1);
			break;
		}
	}
	if (c->phase == PH_HEAD && !c->head_started)
		uv_timer_start(&c->timer, on_conn_timer,
		               c->served ? c->srv->cfg.idle_timeout_ms : c->srv->cfg.header_timeout_ms, 0);
	/* Pipelined bytes wait while a response is pending; stop reading at the cap. */
	if (!c->reading && c->in.len < PIPELINE_MAX_BYTES && c->phase != PH_CLOSING) {
		c->reading = 1;
		uv_read_start(&c->h.stream, job_loop_alloc_cb, on_conn_read);
	}
}


/* ------------------------------------------------------------------ */
/* misread guard */

/*
 * A client that got unsolicited 102s for a request whose final response it
 * has not read yet. If it now sends a new request, it has almost surely
 * taken a 102 as its answer: sending that final response would make it the
 * answer to the new request. If it closes right after a 102, it most likely
 * read it as its (empty) answer. Either way the connection is closed (the
 * job follows --on-disconnect) and its User-Agent gets no unsolicited 102s
 * for a while (http_evidence).
 */
static int conn_misread_risk(const struct conn *c)
{
	return c->sent_102 > 0 && !c->pd.solicited && (c->phase == PH_WAIT || c->phase == PH_WRITE);
}

/* RFC 9112 2.2: empty lines before a request line are ignored, so bytes
 * that are only CR and LF are no request. */
static int only_line_breaks(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

static void conn_misread(struct conn *c, enum job_misread kind)
{
	const struct http_request *req = http_req_parser_request(c->parser);
	const char *ua = req ? http_request_header(req, "User-Agent", 0) : NULL;
	struct http_evidence *ev = c->srv->cfg.processing_evidence;
	char esc[4 * HTTP_EVIDENCE_UA_MAX + 8], then[96] = "";
	time_t now = time(NULL);
	int saved = 0;

	/* Evidence steers auto only: always keeps its meaning (the README says
	 * whom it breaks), so nothing is learned there. */
	if (ev != NULL && ua != NULL && *ua != '\0' && strcmp(c->pd.rule, "mode-always") != 0 &&
	    !http_evidence_has(ev, ua, now)) {
		saved = http_evidence_add(ev, ua, now);
		snprintf(then, sizeof(then), "; no unsolicited 102s to this User-Agent for %llus",
		         (unsigned long long)http_evidence_ttl_s(ev));
	}
	log_escape(esc, sizeof(esc), ua ? ua : "", ua ? strlen(ua) : 0);
	if (kind == JOB_MISREAD_EARLY_REQUEST)
		log_warnx("%s: a new request arrived before the final response, after %u unsolicited 102s: "
		          "the client took a 102 as its answer (User-Agent \"%s\"); closing the connection, job %s %s%s",
		          c->tag, c->sent_102, esc, c->job ? job_id(c->job) : "-",
		          c->phase == PH_WRITE ? "answered, its response cut short" : "follows --on-disconnect", then);
	else
		log_warnx("%s: the client closed the connection right after a 102 (%u unsolicited): it most likely "
		          "took it as its answer (User-Agent \"%s\"); job %s follows --on-disconnect%s",
		          c->tag, c->sent_102, esc, c->job ? job_id(c->job) : "-", then);
	if (saved < 0)
		log_warnx("cannot save the 102 misread evidence: %s (kept in memory until a restart)", strerror(-saved));
	job_front_count_misread(c->srv->cfg.counters, kind);
}

static void on_conn_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = stream->data;

	if (c->lingering) {
		if (n < 0 || (c->lingered_bytes += (size_t)n) > LINGER_MAX_BYTES)
			conn_close(c);
		return; /* the answer is sent: what the client says now is dropped */
	}

	if (n == 0 || c->phase == PH_CLOSING)
		return;
	if (n < 0) {
		/* A checked client (the built-in table) that closes is most likely
		 * stopped by its user (Ctrl-C): only the others are suspected. */
		if (c->phase == PH_WAIT && conn_misread_risk(c) && !http_processing_rule_checked(c->pd.rule) &&
		    util_mono_ms() - c->last_102_ms <= MISREAD_CLOSE_WINDOW_MS)
			conn_misread(c, JOB_MISREAD_CLOSED_AFTER_102);
		else if (c->phase == PH_WAIT)
			log_info("%s: client went away while job %s ran", c->tag,
			         c->job ? job_id(c->job) : "-");
		else if (c->phase == PH_BODY)
			log_warnx("%s: connection closed in the middle of the request body", c->tag);
		conn_close(c);
		return;
	}
	if (conn_misread_risk(c) && !only_line_breaks(b->base, (size_t)n)) {
		conn_misread(c, JOB_MISREAD_EARLY_REQUEST);
		conn_close(c);
		return;
	}
	if (buf_append(&c->in, b->base, (size_t)n) < 0) {
		log_warnx("%s: too many pipelined bytes", c->tag);
		conn_close(c);
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
		conn_process(c);
	} else if (c->in.len >= PIPELINE_MAX_BYTES) {
		uv_read_stop(stream);
		c->reading = 0;
	}
}

/* ------------------------------------------------------------------ */
/* accepting */

/*
 * Out of descriptors. libuv's own answer to EMFILE (uv__emfile_trick in its
 * stream.c) is to close a spare descriptor, accept every pending connection
 * and close it at once, so clients are dropped without a word, and a
 * callback sees an error only when the spare is gone. cgiq stops before
 * that point: when fewer than nofile_headroom descriptors are left (room for
 * the pipes of running jobs, spool files, the database), it leaves the
 * connection libuv just accepted untaken: libuv then stops watching that
 * listener (the documented effect of not calling uv_accept in the
 * callback), and new connections wait in the kernel's backlog. Accepting
 * resumes, with the held connection first, when a connection closes or on
 * a timer, once descriptors are free again. Nothing spins and nothing is
 * dropped.
 */
#define ACCEPT_RETRY_MS 250

/* 1 when the lowest free descriptor is within the headroom of the limit
 * (descriptors are handed out lowest first, so this tracks how many are in
 * use); also when even that probe fails. */
static int server_fds_low(const struct http_server *s, int *lowest)
{
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* fd 2 may be closed */
	*lowest = fd;
	if (fd < 0)
		return 1;
	close(fd);
	return s->nofile_limit > 0 && fd >= s->nofile_limit - s->nofile_headroom;
}

static void on_accept_timer(uv_timer_t *t) { server_accept_resume(t->data); }

static void server_accept_pause(struct http_server *s, int lowest)
{
	if (s->accept_paused)
		return;
	s->accept_paused = 1;
	/* Once per episode, not once per connection. */
	log_warnx("descriptors running out (lowest free %d, limit %d, %u connections): "
	          "accepting paused", lowest, s->nofile_limit, s->conn_count);
	uv_timer_start(&s->accept_timer, on_accept_timer, ACCEPT_RETRY_MS, ACCEPT_RETRY_MS);
}

static void listener_take(struct listener *l);

static void server_accept_resume(struct http_server *s)
{
	int lowest;

	if (!s->accept_paused || s->closing || server_fds_low(s, &lowest))
		return;
	s->accept_paused = 0;
	uv_timer_stop(&s->accept_timer);
	log_info("descriptors available again (lowest free %d): accepting again", lowest);
	for (struct listener *l = s->listeners; l && !s->accept_paused; l = l->next) {
		if (l->held) {
			l->held = 0;
			listener_take(l); /* uv_accept restarts libuv's watching */
		}
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct http_server *s = l->srv;
	int lowest = -1;

	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			server_accept_pause(s, lowest);
		else
			log_warnx("accept on %s: %s", l->name, uv_strerror(status));
		return;
	}
	if (s->accept_paused || server_fds_low(s, &lowest)) {
		l->held = 1;
		server_accept_pause(s, lowest);
		return;
	}
	listener_take(l);
}

/* Takes the connection libuv accepted on l. */
static void listener_take(struct listener *l)
{
	uv_stream_t *server = &l->h.stream;
	struct http_server *s = l->srv;
	struct conn *c;
	int r;

	c = util_xcalloc(1, sizeof(*c));
	c->srv = s;
	c->body_fd = -1;
	c->file_fd = -1;
	c->stored.fd = -1;
	c->refusal = -1;
	c->is_unix = l->is_unix;
	if (l->is_unix)
		r = uv_pipe_init(s->loop, &c->h.pipe, 0);
	else
		r = uv_tcp_init(s->loop, &c->h.tcp);
	if (r < 0) {
		free(c);
		return;
	}
	c->h.handle.data = c;
	uv_timer_init(s->loop, &c->timer);
	uv_timer_init(s->loop, &c->ptimer);
	c->timer.data = c;
	c->ptimer.data = c;
	c->handles_open = 3;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->conn_count++;
	if (!s->cfg.admin)
		job_front_count_connection(s->cfg.counters, 1);
	buf_init(&c->in, PIPELINE_MAX_BYTES + JOB_LOOP_READ_BYTES);
	buf_init(&c->body, s->cfg.body_mem_bytes + 1);
	c->parser = http_req_parser_new(&s->cfg.limits, on_body, c);

	r = uv_accept(server, &c->h.stream);
	if (r < 0) {
		log_warnx("accept on %s: %s", l->name, uv_strerror(r));
		conn_close(c);
		return;
	}
	if (l->is_unix) {
		snprintf(c->peer, sizeof(c->peer), "unix");
		snprintf(c->remote_addr, sizeof(c->remote_addr), "127.0.0.1");
		snprintf(c->local_addr, sizeof(c->local_addr), "127.0.0.1");
	} else {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		uv_tcp_nodelay(&c->h.tcp, 1);
		if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
			front_sockaddr_text(&ss, c->remote_addr, sizeof(c->remote_addr), &c->remote_port);
		len = sizeof(ss);
		if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
			front_sockaddr_text(&ss, c->local_addr, sizeof(c->local_addr), &c->local_port);
		if (strchr(c->remote_addr, ':'))
			snprintf(c->peer, sizeof(c->peer), "[%s]:%u", c->remote_addr, c->remote_port);
		else
			snprintf(c->peer, sizeof(c->peer), "%s:%u", c->remote_addr, c->remote_port);
	}
	snprintf(c->tag, sizeof(c->tag), "%s %llu %s", s->cfg.admin ? "admin" : "conn",
	         (unsigned long long)++conn_seq, c->peer);
	if (s->cfg.max_connections && s->conn_count - s->refusing > s->cfg.max_connections) {
		c->refusal = JOB_REFUSED_MAX_CONNECTIONS;
		s->refusing++;
		log_warnx("%s: refused, %u connections open (--max-connections %u)%s", c->tag,
		          s->conn_count - s->refusing, s->cfg.max_connections,
		          s->refusing > 1 ? ", others being refused" : "");
		c->keep_alive = 0;
		c->linger = 1;
		conn_send_error(c, 503, 1);
		return;
	}
	c->reading = 1;
	uv_read_start(&c->h.stream, job_loop_alloc_cb, on_conn_read);
	conn_process(c);
}

/* ------------------------------------------------------------------ */
/* public */

int http_server_open(uv_loop_t *loop, struct job_engine *engine, const struct http_server_config *cfg,
                     struct http_server **out)
{
	struct http_server *s = util_xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->engine = engine;
	s->cfg = *cfg;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < INT_MAX)
		s->nofile_limit = (int)rl.rlim_cur;
	/* Room for what jobs and the store open besides connections. */
	s->nofile_headroom = s->nofile_limit / 8 < 16 ? 16 : s->nofile_limit / 8 > 256 ? 256 : s->nofile_limit / 8;
	uv_timer_init(loop, &s->accept_timer);
	s->accept_timer.data = s;
	s->handles_open++;
	*out = s;
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct http_server *s = l->srv;
	if (l->unix_path)
		unlink(l->unix_path);
	free(l->unix_path);
	free(l->name);
	free(l);
	s->handles_open--;
	server_maybe_free(s);
}

int http_server_listen(struct http_server *s, const char *addr)
{
	struct front_listen_opts o = {.unix_mode = s->cfg.unix_mode};
	struct front_socket fs;
	struct listener *l;
	int r = front_listen_open(addr, &o, &fs);

	if (r < 0)
		return r;
	l = util_xcalloc(1, sizeof(*l));
	l->srv = s;
	l->is_unix = fs.is_unix;
	r = front_socket_wrap(s->loop, &fs, &l->h);
	l->h.handle.data = l;
	s->handles_open++;
	if (r == 0)
		r = uv_listen(&l->h.stream, 1024, on_connection);
	l->name = util_xstrdup(r == 0 ? fs.shown : addr);
	l->unix_path = fs.unix_path; /* removed when the listener closes */
	fs.unix_path = NULL;
	front_socket_release(&fs);
	if (r < 0) {
		uv_close(&l->h.handle, on_listener_closed);
		return r;
	}
	l->next = s->listeners;
	s->listeners = l;
	log_info("%s on %s", s->cfg.admin ? "admin listener" : "listening", fs.shown);
	return 0;
}

void http_server_drain(struct http_server *s)
{
	struct conn *c, *next;

	if (s == NULL || s->closing || s->draining)
		return;
	s->draining = 1;
	for (struct listener *l = s->listeners; l; l = l->next)
		uv_close(&l->h.handle, on_listener_closed);
	s->listeners = NULL;
	/* Idle keep-alive connections: nothing is lost by closing them now.
	 * Those with a request under way are answered (a new job: 503) and
	 * closed after their response. */
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->phase == PH_HEAD && !c->head_started && c->writes_pending == 0 && c->in.len == 0)
			conn_close(c);
	}
}

unsigned http_server_connections(const struct http_server *s)
{
	return s ? s->conn_count : 0;
}

static void on_accept_timer_closed(uv_handle_t *h)
{
	struct http_server *s = h->data;
	s->handles_open--;
	server_maybe_free(s);
}

void http_server_close(struct http_server *s)
{
	if (s == NULL || s->closing)
		return;
	s->closing = 1;
	uv_close((uv_handle_t *)&s->accept_timer, on_accept_timer_closed);
	for (struct listener *l = s->listeners; l; l = l->next)
		uv_close(&l->h.handle, on_listener_closed);
	s->listeners = NULL;
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	server_maybe_free(s);
}
