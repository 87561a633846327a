/*
 * The FastCGI front: libfcgi responder threads feeding the job engine.
 *
 * Threads. Each responder thread accepts a connection itself (accept4 with
 * SOCK_CLOEXEC, so a web server connection can never leak into a CGI
 * program, and with the peer allow-list checked before a byte is read), lets
 * libfcgi read the records (FCGX_Accept_r on that connection), reads the
 * body, maps the parameters, and then hands the job to the loop thread: the
 * engine is not thread-safe, so every job_* call goes through one queue of
 * operations (mutex) and one uv_async_t. The thread then waits on its own
 * eventfd, polled together with the web server's connection so that a
 * connection closed by the web server (or an FCGI_ABORT_REQUEST record)
 * cancels the job at once. The loop thread's done callback wakes it; the
 * engine does not touch an ended job until job_release, so the thread then
 * reads the result (headers, body from memory or pread from the spool) and
 * streams it to the web server, and finally queues the job_release.
 *
 * libfcgi is driven with listen_sock -1: FCGX_Accept_r only reads from the
 * connection we accepted, and when it gives up on a malformed, truncated or
 * unsupported connection (which it would otherwise close and silently retry
 * on the listening socket) it returns an error to us, so it gets a log line.
 *
 * This file is the only one that includes fcgiapp.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi.h"
#include "front/front.h"
#include "jobs/jobs.h"

#define FILE_CHUNK 65536
#define ROLE_RESPONDER 1          /* FastCGI 1.0 spec, section 6 */
#define RECORD_BEGIN_REQUEST 1    /* FastCGI 1.0 spec, section 8 */
#define RECORD_ABORT_REQUEST 2    /* FastCGI 1.0 spec, section 5.4 */
#define RECORD_PARAMS 4
/* How far past --fastcgi-max-params the records of one request's parameters
 * may reach (headers, padding, the begin record) before the request counts
 * as too large: room for any sane split into records. */
#define PARAMS_PEEK_SLACK 65536
/* What a socket surely holds unread (a sender's default buffer is 208 KiB):
 * looking further could wait for bytes the web server cannot send until
 * something is read. With a larger cap the check gives up at this point and
 * libfcgi reads the parameters; the cap then applies after them (431). */
#define PARAMS_PEEK_MAX (128 * 1024)

enum op_kind { OP_SUBMIT, OP_API, OP_CANCEL, OP_WAITED, OP_RELEASE, OP_EXIT };

/* A request for the job API under --jobs-prefix (see serve_api). */

struct op {
	struct op *next;
	enum op_kind kind;
	struct worker *w;
	struct job *job;   /* OP_RELEASE */
};

enum worker_phase { WP_IDLE, WP_READING, WP_WAITING, WP_WRITING };

struct worker {
	struct fcgi_front *f;
	pthread_t thread;
	int started;
	unsigned index;
	int wake_fd;                 /* eventfd: the loop thread says "finished" */

	/* under f->mu */
	enum worker_phase phase;
	int conn_fd;                 /* the web server connection while READING, else -1 */
	int idle_kept;               /* READING: waiting for the next request on a kept connection */
	int finished;
	int status;                  /* 0: a job result; > 0: answer this status; -1: cancelled */

	/* loop thread only (read by the worker after "finished", under f->mu) */
	struct job *job;             /* released by the loop thread when "copied" */
	int waiting;                 /* submitted, no done callback yet */
	const struct job_result *res;
	char job_id[UTIL_ID_LEN + 1];
	/* A small result, copied out by the loop thread (see on_job_done): */
	int copied;                  /* the answer is in "answer" */
	struct buf answer;           /* head and body, as written to the web server */
	int answer_status;           /* HTTP status, for the log line */
	int answer_app_status;       /* for the end-request record */
	uint64_t answer_body_bytes;
	struct job_stored_result stored; /* FRONT_API_RESULT: opened by the loop thread, then the worker's */
	int64_t job_ms;              /* how long the program ran, -1 none */
	uint64_t conn_id;            /* worker only: the connection's id in log lines */
	char tag[112];               /* "conn 12 203.0.113.5", log lines about this request */
	int queue_full;              /* refused: --queue-max */

	/* worker only */
	int api;                     /* a job API request: api_kind set before OP_API */
	enum front_api api_kind;
	char api_id[UTIL_ID_LEN + 1];
	int async;                   /* Prefer: respond-async (RFC 7240) */
	int64_t wait_ms;             /* Prefer: wait=N (clamped to max_wait_ms), -1 none */
	struct job_request jr;
	struct fcgi_mapped m;
	struct buf body;
	int body_fd;
	char *chunk;
	unsigned char *peek;         /* params_too_large: what is waiting on the connection */
	int peek_ep;                 /* params_too_large: edge-triggered epoll, -1 until needed */
};

struct fcgi_front {
	uv_loop_t *loop;
	struct job_engine *engine;
	struct fcgi_config cfg;
	uv_async_t async;
	int async_open;
	pthread_mutex_t mu;
	/* Held by the one thread that waits on the listening socket; the others
	 * wait on this mutex. poll() on a shared socket wakes every poller for
	 * each connection (a thundering herd: 64 threads woken, one gets it). */
	pthread_mutex_t accept_mu;
	struct op *head, *tail;      /* under mu */
	int closing;                 /* under mu (written on the loop thread) */
	int draining;                /* under mu: no new connection or request */
	struct worker *workers;
	unsigned nworkers;
	unsigned exited;             /* loop thread */
	int listen_fd;
	int is_tcp;
	int fds_short;               /* accept failed for lack of descriptors (under accept_mu) */
	int stop_fd;                 /* eventfd, readable once closing */
	char *unix_path;             /* a socket we created, removed at close */
	char name[160];
};

/* ------------------------------------------------------------------ */
/* the hand-off */

static void post(struct fcgi_front *f, enum op_kind kind, struct worker *w, struct job *job)
{
	struct op *o = util_xcalloc(1, sizeof(*o));

	o->kind = kind;
	o->w = w;
	o->job = job;
	pthread_mutex_lock(&f->mu);
	if (f->tail)
		f->tail->next = o;
	else
		f->head = o;
	f->tail = o;
	pthread_mutex_unlock(&f->mu);
	uv_async_send(&f->async);
}

static void wake(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Loop thread: the worker may go on. */
static void worker_finish(struct worker *w, int status)
{
	pthread_mutex_lock(&w->f->mu);
	w->finished = 1;
	w->status = status;
	pthread_mutex_unlock(&w->f->mu);
	wake(w->wake_fd);
}

static int copy_answer(struct buf *out, const struct job_result *res);
static void answer_whole(struct worker *w, struct front_answer *a);
static int app_status(const struct job_result *res);

/* Loop thread: queues op to be run by on_async (no other thread involved). */
static void post_local(struct fcgi_front *f, enum op_kind kind, struct job *job)
{
	post(f, kind, NULL, job);
}

/* A result that fits in one chunk and is in memory is copied into the
 * worker's answer here, and the job is released by the loop thread itself
 * (deferred to on_async: not inside the engine's callback). The worker then
 * only writes; it does not queue a release (one loop wake-up less per
 * request). Spooled and larger results are streamed by the worker. */
static void on_job_done(struct job *job, void *ud)
{
	struct worker *w = ud;
	const struct job_result *res = job_result(job);

	w->waiting = 0;
	w->res = res;
	w->job_ms = job_duration_ms(job);
	if (res->body_fd < 0 && res->body_bytes <= FILE_CHUNK && copy_answer(&w->answer, res) == 0) {
		w->copied = 1;
		w->answer_status = res->http_status;
		w->answer_app_status = app_status(res);
		w->answer_body_bytes = res->body_bytes;
		w->res = NULL;
		post_local(w->f, OP_RELEASE, job);
	}
	worker_finish(w, 0);
}

/* Loop thread: an answer the loop thread wrote whole into w->answer. */
static void answer_copied(struct worker *w, int status, uint64_t body_bytes)
{
	w->copied = 1;
	w->answer_status = status;
	w->answer_app_status = 0;
	w->answer_body_bytes = body_bytes;
}

/* Loop thread: the 202 with the status monitor into w->answer, and the
 * worker's reference to the job released; applied: Preference-Applied or NULL. */
static void answer_accepted(struct worker *w, struct job *job, const char *applied)
{
	struct front_answer a;

	front_answer_init(&a, 202);
	front_answer_accepted(&a, w->f->engine, w->f->cfg.jobs_prefix, job_id(job), applied);
	answer_whole(w, &a);
	post_local(w->f, OP_RELEASE, job);
}

/* The 202 with the status monitor, once the job is durable (RFC 7240 4.1). */
static void on_job_accepted(struct job *job, int result, void *ud)
{
	struct worker *w = ud;

	/* A job cancelled before it was durable still reports here; the worker
	 * may be serving another request by then. */
	if (!w->waiting || w->job != job)
		return;
	w->waiting = 0;
	if (result < 0) {
		log_warnx("fastcgi %s: job %s could not be recorded durably; 503", w->tag, job_id(job));
		job_cancel(job, "could not be recorded durably");
		worker_finish(w, 503);
		return;
	}
	answer_accepted(w, job, "respond-async");
	worker_finish(w, 0);
}

/* Loop thread: the job API (the engine is not thread-safe). The status
 * document and DELETE are answered whole in w->answer; a result is opened
 * here and streamed by the worker. */
static void api_run(struct fcgi_front *f, struct worker *w)
{
	struct front_answer a;

	if (w->api_kind == FRONT_API_RESULT) {
		front_answer_init(&a, 0);
		worker_finish(w, front_api_result_open(f->engine, w->api_id, &w->stored, &a));
		front_answer_free(&a);
		return;
	}
	char tag[sizeof(w->tag) + 8];
	snprintf(tag, sizeof(tag), "fastcgi %s", w->tag);
	front_answer_init(&a, 0);
	front_api_answer(f->engine, w->api_kind, w->api_id, tag, &a);
	answer_whole(w, &a);
	worker_finish(w, 0);
}

static void front_maybe_closed(struct fcgi_front *f);

static void op_run(struct fcgi_front *f, struct op *o)
{
	struct worker *w = o->w;
	int r, closing;

	switch (o->kind) {
	case OP_SUBMIT:
		pthread_mutex_lock(&f->mu);
		closing = f->closing;
		pthread_mutex_unlock(&f->mu);
		if (closing) {
			worker_finish(w, 503);
			break;
		}
		r = w->async ? job_submit_async(f->engine, &w->jr, on_job_accepted, w, &w->job)
		             : job_submit(f->engine, &w->jr, on_job_done, w, &w->job);
		if (r < 0) {
			/* -ESHUTDOWN: the engine drains (SIGTERM) */
			if (r == -EAGAIN)
				log_warnx("fastcgi %s: queue full, 503", w->tag);
			else if (r != -ESHUTDOWN)
				log_warnx("fastcgi %s: cannot submit job: %s", w->tag, strerror(-r));
			w->queue_full = r == -EAGAIN;
			worker_finish(w, front_submit_status(r));
			break;
		}
		snprintf(w->job_id, sizeof(w->job_id), "%s", job_id(w->job));
		w->waiting = 1;
		break;
	case OP_API:
		api_run(f, w);
		break;
	case OP_CANCEL:
		if (w->waiting) {
			/* --on-disconnect (or the script's rule): detach lets a
			 * synchronous job go on with its result kept by id; an
			 * asynchronous one not yet accepted was never promised. */
			int detach = !w->async && (w->jr.rule ? w->jr.rule->policy.detach_on_disconnect
			                                      : f->cfg.detach_on_disconnect);
			w->waiting = 0;
			if (detach)
				log_info("fastcgi %s: the web server went away; job %s goes on (detached)", w->tag,
				         job_id(w->job));
			job_leave(w->job, w, detach, "the web server closed the FastCGI connection");
			worker_finish(w, -1);
		}
		break;
	case OP_WAITED:
		/* Prefer: wait ran out (RFC 7240 4.3) before the job ended: it goes
		 * on, detached with its result kept, and the web server gets the
		 * status monitor, as on the HTTP front. */
		if (w->waiting && !w->async) {
			w->waiting = 0;
			log_info("fastcgi %s: job %s still running after Prefer: wait; answering 202", w->tag,
			         job_id(w->job));
			job_leave(w->job, w, 1, NULL);
			answer_accepted(w, w->job, NULL);
			worker_finish(w, 0);
		}
		break;
	case OP_RELEASE:
		job_release(o->job);
		break;
	case OP_EXIT:
		f->exited++;
		front_maybe_closed(f);
		break;
	}
}

static void on_async(uv_async_t *a)
{
	struct fcgi_front *f = a->data;
	struct op *o, *next;

	pthread_mutex_lock(&f->mu);
	o = f->head;
	f->head = f->tail = NULL;
	pthread_mutex_unlock(&f->mu);
	for (; o; o = next) {
		next = o->next;
		op_run(f, o);
		free(o);
	}
}

/* ------------------------------------------------------------------ */
/* writing to the web server */

/* An answer's head as a CGI response for the web server: Status line,
 * headers, Content-Length when it has a body. */
static void format_answer_head(struct buf *out, const struct front_answer *a)
{
	buf_printf(out, "Status: %d %s\r\n", a->status, front_answer_reason(a));
	if (a->headers.len)
		buf_append(out, a->headers.data, a->headers.len);
	if (front_status_has_body(a->status))
		buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)front_answer_body_len(a));
	buf_append_str(out, "\r\n");
}

/* An answer with its body in memory, whole into out. */
static void format_answer(struct buf *out, const struct front_answer *a)
{
	format_answer_head(out, a);
	if (front_status_has_body(a->status) && a->body.len)
		buf_append(out, a->body.data, a->body.len);
}

/* Loop thread: a (body in memory) is the worker's answer, written by it. */
static void answer_whole(struct worker *w, struct front_answer *a)
{
	buf_reset(&w->answer);
	format_answer(&w->answer, a);
	answer_copied(w, a->status, front_status_has_body(a->status) ? a->body.len : 0);
	front_answer_free(a);
}

/* Writes a whole answer (body in memory). Returns 0 or -1 (the web server is gone). */
static int send_answer(FCGX_Request *req, struct front_answer *a)
{
	struct buf out;
	int ok;

	buf_init(&out, SIZE_MAX / 2);
	format_answer(&out, a);
	ok = FCGX_PutStr(out.data, (int)out.len, req->out) == (int)out.len;
	buf_free(&out);
	front_answer_free(a);
	return ok ? 0 : -1;
}

/* A short text/plain answer. Returns 0 or -1 (the web server is gone). */
static int send_error(FCGX_Request *req, int status)
{
	struct front_answer a;

	front_answer_init(&a, status);
	front_answer_error(&a, status, NULL);
	return send_answer(req, &a);
}

/* The header block of a program's response (resp not NULL). */
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

/* Loop thread: the whole answer to a result whose body is in memory, into
 * out (reset first), exactly as send_result would write it. 0 or -ENOBUFS. */
static int copy_answer(struct buf *out, const struct job_result *res)
{
	buf_reset(out);
	if (res->resp == NULL) {
		struct front_answer a;
		front_answer_init(&a, res->http_status);
		front_answer_error(&a, res->http_status, NULL);
		format_answer(out, &a);
		front_answer_free(&a);
		return 0;
	}
	format_head(out, res);
	if (res->body_bytes > 0 && buf_append(out, res->body_mem, (size_t)res->body_bytes) < 0)
		return -ENOBUFS;
	return 0;
}

/* len bytes of fd from off, in chunks: never held whole in memory. */
static int send_file(struct worker *w, FCGX_Request *req, int fd, uint64_t off, uint64_t len)
{
	if (w->chunk == NULL)
		w->chunk = util_xmalloc(FILE_CHUNK);
	for (uint64_t end = off + len; off < end;) {
		size_t want = end - off > FILE_CHUNK ? FILE_CHUNK : (size_t)(end - off);
		ssize_t n = pread(fd, w->chunk, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("job %s: reading spooled output at offset %llu", w->job_id[0] ? w->job_id : w->api_id,
			         (unsigned long long)off);
			return -1;
		}
		if (FCGX_PutStr(w->chunk, (int)n, req->out) != (int)n)
			return -1;
		off += (uint64_t)n;
	}
	return 0;
}

/* The program's response. Returns 0 or -1 (writing failed). */
static int send_result(struct worker *w, FCGX_Request *req, const struct job_result *res)
{
	struct buf head;
	int ok;

	if (res->resp == NULL)
		return send_error(req, res->http_status);
	buf_init(&head, SIZE_MAX / 2);
	format_head(&head, res);
	ok = FCGX_PutStr(head.data, (int)head.len, req->out) == (int)head.len;
	buf_free(&head);
	if (!ok)
		return -1;
	if (res->body_bytes == 0)
		return 0;
	if (res->body_mem) {
		uint64_t off = 0;
		while (off < res->body_bytes) {
			int n = res->body_bytes - off > FILE_CHUNK ? FILE_CHUNK : (int)(res->body_bytes - off);
			if (FCGX_PutStr(res->body_mem + off, n, req->out) != n)
				return -1;
			off += (uint64_t)n;
		}
		return 0;
	}
	return send_file(w, req, res->body_fd, 0, res->body_bytes);
}

/* A kept result (GET {prefix}/{id}/result): the stored status line and
 * headers, one range of the body when asked (HTTP_RANGE), streamed from the
 * spool. Returns the HTTP status sent, or -1 (writing failed). */
static int send_stored(struct worker *w, FCGX_Request *req)
{
	struct job_stored_result *st = &w->stored;
	const char *method = fcgi_param(req->envp, "REQUEST_METHOD");
	struct front_answer a;
	struct buf head;
	int status, r;

	buf_init(&head, SIZE_MAX / 2);
	if (w->f->cfg.accel_prefix && st->http_status == 200 && st->fd >= 0 && st->file_name) {
		/* nginx serves the file itself (Range, HEAD, sendfile): only the
		 * headers go through cgiq. nginx keeps Content-Type,
		 * Content-Disposition, Cache-Control and a few more of them. */
		const char *nl = st->head ? strstr(st->head, "\r\n") : NULL;
		int n = nl ? (int)(nl - st->head) : 0;
		buf_printf(&head, "Status: 200 %.*s\r\n%sX-Accel-Redirect: %s/%s\r\n\r\n", n ? n : 2,
		           n ? st->head : "OK", nl ? nl + 2 : "", w->f->cfg.accel_prefix, st->file_name);
		r = FCGX_PutStr(head.data, (int)head.len, req->out) == (int)head.len ? 0 : -1;
		buf_free(&head);
		return r == 0 ? 200 : -1;
	}
	front_answer_init(&a, 0);
	status = front_answer_stored(&a, st, fcgi_param(req->envp, "HTTP_RANGE"));
	if (a.fd < 0) {
		buf_free(&head);
		return send_answer(req, &a) == 0 ? status : -1;
	}
	format_answer_head(&head, &a);
	r = FCGX_PutStr(head.data, (int)head.len, req->out) == (int)head.len ? 0 : -1;
	buf_free(&head);
	if (r == 0 && !(method && strcmp(method, "HEAD") == 0))
		r = send_file(w, req, st->fd, a.off, a.len);
	front_answer_free(&a);
	return r == 0 ? status : -1;
}

/* ------------------------------------------------------------------ */
/* one request */

static void worker_set_phase(struct worker *w, enum worker_phase ph, int conn_fd)
{
	pthread_mutex_lock(&w->f->mu);
	w->phase = ph;
	w->conn_fd = conn_fd;
	w->idle_kept = 0;
	pthread_mutex_unlock(&w->f->mu);
}

/* READING on fd, idle on a kept connection when kept. Returns 1 when the
 * front is closing or draining: no request is to be started then. */
static int worker_start_reading(struct worker *w, int fd, int kept)
{
	int stop;

	pthread_mutex_lock(&w->f->mu);
	w->phase = WP_READING;
	w->conn_fd = fd;
	w->idle_kept = kept;
	stop = w->f->closing || w->f->draining;
	pthread_mutex_unlock(&w->f->mu);
	return stop;
}

/* Reads FCGI_STDIN to its end: memory, then a spool file. Returns 0, or an
 * HTTP status (413, 507), or -1 when the stream broke (logged). */
static int read_body(struct worker *w, FCGX_Request *req, const char *peer, uint64_t *total)
{
	struct fcgi_front *f = w->f;
	char tmp[16384];
	int n;

	*total = 0;
	while ((n = FCGX_GetStr(tmp, sizeof(tmp), req->in)) > 0) {
		*total += (uint64_t)n;
		if (*total > f->cfg.max_body_bytes)
			return 413;
		if (w->body_fd < 0 && w->body.len + (size_t)n <= f->cfg.body_mem_bytes) {
			if (buf_append(&w->body, tmp, (size_t)n) < 0)
				return 413;
			continue;
		}
		if (w->body_fd < 0) {
			w->body_fd = open(f->cfg.spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
			if (w->body_fd < 0) {
				log_warn("fastcgi %s: cannot spool the request body in %s", peer, f->cfg.spool_dir);
				return 507;
			}
			if (w->body.len > 0 && write(w->body_fd, w->body.data, w->body.len) != (ssize_t)w->body.len) {
				log_warn("fastcgi %s: cannot spool the request body", peer);
				return 507;
			}
			buf_reset(&w->body);
		}
		for (const char *p = tmp; n > 0;) {
			ssize_t wr = write(w->body_fd, p, (size_t)n);
			if (wr < 0 && errno == EINTR)
				continue;
			if (wr < 0) {
				log_warn("fastcgi %s: cannot spool the request body", peer);
				return 507;
			}
			p += wr;
			n -= (int)wr;
		}
	}
	if (FCGX_GetError(req->in) != 0) {
		log_warnx("fastcgi %s: request body stream broken (malformed or truncated records, error %d)", peer,
		          FCGX_GetError(req->in));
		return -1;
	}
	return 0;
}

/* The web server went away or sent FCGI_ABORT_REQUEST: 1. Once stdin has
 * been read to its end, nothing else is expected on a connection that is
 * not kept alive. *watch_in is cleared when other bytes arrive, so that a
 * pipelined record is not mistaken for an abort again and again. */
static int conn_aborted(int fd, short revents, int *watch_in)
{
	unsigned char h[8];
	ssize_t n;

	if (revents & (POLLRDHUP | POLLHUP | POLLERR))
		return 1;
	if (!(revents & POLLIN))
		return 0;
	n = recv(fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 1;
	if (n >= 2 && h[1] == RECORD_ABORT_REQUEST)
		return 1;
	*watch_in = 0;
	return 0;
}

/* Waits for the loop thread's "finished", cancelling the job when the web
 * server goes away meanwhile. */
static void wait_finished(struct worker *w, int conn_fd)
{
	int cancel_sent = 0, watch_in = 1, waited_sent = w->wait_ms < 0;
	uint64_t wait_until = util_mono_ms() + (uint64_t)(w->wait_ms < 0 ? 0 : w->wait_ms);

	for (;;) {
		struct pollfd p[2] = {{w->wake_fd, POLLIN, 0}, {conn_fd, POLLRDHUP, 0}};
		uint64_t v, now = util_mono_ms();
		int finished, timeout = -1, n;

		if (watch_in)
			p[1].events |= POLLIN;
		if (!waited_sent)
			timeout = now >= wait_until ? 0 : (int)(wait_until - now);
		n = poll(p, cancel_sent ? 1 : 2, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("fastcgi job %s: poll", w->job_id);
		}
		if (n == 0 && !waited_sent) {
			/* The loop thread answers 202 unless the job has just ended. */
			post(w->f, OP_WAITED, w, NULL);
			waited_sent = 1;
			continue;
		}
		if (p[0].revents & POLLIN) {
			while (read(w->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
				;
			pthread_mutex_lock(&w->f->mu);
			finished = w->finished;
			pthread_mutex_unlock(&w->f->mu);
			if (finished)
				return;
		}
		if (!cancel_sent && p[1].revents && conn_aborted(conn_fd, p[1].revents, &watch_in)) {
			log_info("fastcgi %s: the web server closed the connection while job %s ran", w->tag,
			         w->job_id[0] ? w->job_id : "-");
			post(w->f, OP_CANCEL, w, NULL);
			cancel_sent = 1;
		}
	}
}

/* Exit status for the end-request record. The engine's result does not
 * carry the program's exit code yet; 0 for success, 1 otherwise. */
/* The end-request record's appStatus: the program's exit status, or 128 +
 * the signal that ended it (as a shell reports it); 1 when it never ran. */
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

static void worker_reset(struct worker *w)
{
	fcgi_mapped_free(&w->m);
	buf_reset(&w->body);
	if (w->body_fd >= 0)
		close(w->body_fd);
	w->body_fd = -1;
	memset(&w->jr, 0, sizeof(w->jr));
	w->job_id[0] = '\0';
	w->api_id[0] = '\0';
	w->wait_ms = -1;
	w->api = 0;
	w->async = 0;
	w->copied = 0;
	w->job_ms = -1;
	w->queue_full = 0;
	if (w->answer.cap > 2 * FILE_CHUNK)
		buf_free(&w->answer); /* an error page's worth, not a large answer, stays allocated */
}

static size_t params_bytes(char *const *envp)
{
	size_t n = 0;
	for (size_t i = 0; envp && envp[i]; i++)
		n += strlen(envp[i]);
	return n;
}

/* The request's path, when it lies under --jobs-prefix: DOCUMENT_URI
 * (nginx's normalized $uri), else the path of REQUEST_URI. */
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

/* Hands the request to the loop thread (op OP_SUBMIT or OP_API) and waits
 * for its answer, cancelling when the web server goes away meanwhile. */
static void handoff(struct worker *w, enum op_kind op, int conn_fd)
{
	pthread_mutex_lock(&w->f->mu);
	w->phase = WP_WAITING;
	w->conn_fd = -1;
	w->finished = 0;
	w->status = 0;
	pthread_mutex_unlock(&w->f->mu);
	post(w->f, op, w, NULL);
	wait_finished(w, conn_fd);
}

/* The access-log line and the counters of one request (worker thread: the
 * log and the counters are thread-safe). status -1 or an answer that could
 * not be written is 499, as nginx logs a client gone. */
static void account(struct worker *w, FCGX_Request *req, int status, int written,
                    const struct job_result *res, uint64_t t0)
{
	struct fcgi_front *f = w->f;
	struct front_access_entry e;
	int ran = w->job_id[0] != '\0';

	if (written != 0)
		status = 499;
	else
		job_front_count_response(f->cfg.counters, status);
	if (!ran && status >= 400 && status != 499)
		job_front_count_refusal(f->cfg.counters, w->queue_full ? JOB_REFUSED_QUEUE_FULL
		                                                        : job_refusal_of_status(status));
	if (f->cfg.access_log == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.host = fcgi_param(req->envp, "REMOTE_ADDR");
	e.user = fcgi_param(req->envp, "REMOTE_USER");
	e.time_us = util_now_us();
	e.method = fcgi_param(req->envp, "REQUEST_METHOD");
	e.target = fcgi_param(req->envp, "REQUEST_URI");
	e.protocol = fcgi_param(req->envp, "SERVER_PROTOCOL");
	e.referer = fcgi_param(req->envp, "HTTP_REFERER");
	e.user_agent = fcgi_param(req->envp, "HTTP_USER_AGENT");
	e.status = status;
	if (status == 499 || !front_status_has_body(status))
		e.bytes = 0;
	else if (w->copied)
		e.bytes = w->answer_body_bytes;
	else if (res)
		e.bytes = res->body_bytes;
	else
		e.bytes = strlen(front_reason(status)) + 5; /* front_answer_error's page */
	e.job_id = ran ? w->job_id : NULL;
	e.job_ms = w->job_ms;
	e.request_ms = util_mono_ms() - t0;
	front_access_log_write(f->cfg.access_log, &e);
}

/* One request on a responder thread, from the parameters to the last byte
 * of the answer. Longer than 80 lines: the hand-offs to the loop thread sit
 * between its steps (moving this front onto the loop is the way out). */
static void serve(struct worker *w, FCGX_Request *req)
{
	struct fcgi_front *f = w->f;
	const char *why = NULL;
	char peer[112], esc[256];
	uint64_t body_len = 0, t0 = util_mono_ms();
	int status = 0, r, written = -1;
	const char *uri = fcgi_param(req->envp, "REQUEST_URI");
	const char *ra = fcgi_param(req->envp, "REMOTE_ADDR");
	const char *method = fcgi_param(req->envp, "REQUEST_METHOD");
	struct front_answer refused; /* a job API request refused before the loop thread saw it */
	char path[512];
	struct job *job = NULL;
	const struct job_result *res = NULL;

	/* "conn 12 203.0.113.5": the web server connection's id and the client */
	snprintf(peer, sizeof(peer), "conn %llu %s", (unsigned long long)w->conn_id, ra && *ra ? ra : "-");
	snprintf(w->tag, sizeof(w->tag), "%s", peer);
	front_answer_init(&refused, 0);
	if (uri == NULL)
		uri = "-";
	if (req->role != ROLE_RESPONDER) {
		log_warnx("fastcgi %s: role %d is not supported (only the responder role); 500", peer, req->role);
		status = 500;
		goto answer;
	}
	if (params_bytes(req->envp) > f->cfg.max_params_bytes) {
		log_warnx("fastcgi %s: parameters larger than %zu bytes; 431", peer, f->cfg.max_params_bytes);
		status = 431;
		goto answer;
	}
	r = read_body(w, req, peer, &body_len);
	if (r < 0)
		return; /* broken stream: libfcgi closes the connection */
	if (r > 0) {
		if (r == 413)
			log_warnx("fastcgi %s: request body larger than %llu bytes; 413", peer,
			          (unsigned long long)f->cfg.max_body_bytes);
		status = r;
		goto answer;
	}
	if (api_path(f, req->envp, path, sizeof(path))) {
		w->api = 1;
		status = front_api_route(f->cfg.jobs_prefix, path, method, w->api_id, &w->api_kind, &refused);
		if (status == 0) {
			handoff(w, OP_API, req->ipcFd);
			status = w->status;
		}
		goto answer;
	}
	{
		const char *cl = fcgi_param(req->envp, "CONTENT_LENGTH");
		int64_t blen = body_len > 0 || (cl && *cl) ? (int64_t)body_len : -1;
		r = fcgi_params_map(&f->cfg.params, req->envp, blen, &w->m, &why);
	}
	if (r != 0) {
		const char *sf = fcgi_param(req->envp, "SCRIPT_FILENAME");
		log_warnx("fastcgi %s: \"%s\" %d: %s (SCRIPT_FILENAME %s)", peer,
		          log_escape(esc, sizeof(esc), uri, strlen(uri)), r, why ? why : "refused",
		          sf ? sf : "missing");
		status = r;
		goto answer;
	}
	w->jr.script = w->m.target.script_filename;
	w->jr.cwd = w->m.target.dir;
	w->jr.env = &w->m.env;
	w->jr.body_fd = -1;
	if (w->body_fd >= 0) {
		lseek(w->body_fd, 0, SEEK_SET);
		w->jr.body_fd = w->body_fd;
		w->body_fd = -1;
	} else {
		w->jr.body_mem = w->body.data;
		w->jr.body_len = w->body.len;
	}
	w->jr.method = w->m.method;
	w->jr.uri = w->m.uri;
	w->jr.peer = w->m.peer;
	w->jr.bytes_in = (int64_t)body_len;
	/* Its script's settings (job-timeout, kill-grace, max-output-bytes,
	 * max-running, on-disconnect); this front sends no 102. */
	w->jr.rule = job_rule_lookup(f->engine, w->jr.script);
	{
		const char *pv = fcgi_param(req->envp, "HTTP_PREFER");
		struct util_prefer pref = {0, 0, -1};
		int seen_wait = 0;
		if (pv)
			util_prefer_parse(pv, &pref, &seen_wait);
		w->async = pref.respond_async;
		w->wait_ms = w->async ? -1 : front_wait_ms(pref.wait_s, f->cfg.max_wait_ms);
	}
	handoff(w, OP_SUBMIT, req->ipcFd);
	if (w->jr.body_fd >= 0) /* not taken by the engine */
		close(w->jr.body_fd);
	w->jr.body_fd = -1;
	/* "finished" was read under the mutex: these loop-thread fields are settled. */
	status = w->status;
	job = w->copied ? NULL : w->job; /* a copied answer's job is released by the loop thread */
	w->job = NULL;
	res = status == 0 ? w->res : NULL;

answer:
	worker_set_phase(w, WP_WRITING, -1);
	if (status == 0 && w->copied) {
		int n = (int)w->answer.len;
		written = FCGX_PutStr(w->answer.data, n, req->out) == n ? 0 : -1;
		status = w->answer_status;
		if (written == 0) {
			FCGX_SetExitStatus(w->answer_app_status, req->out);
			log_info("fastcgi %s \"%s %s\" %d %llu job=%s %llums", peer, method ? method : "-",
			         log_escape(esc, sizeof(esc), uri, strlen(uri)), status,
			         (unsigned long long)w->answer_body_bytes, w->job_id[0] ? w->job_id : w->api_id[0] ? w->api_id : "-",
			         (unsigned long long)(util_mono_ms() - t0));
		}
	} else if (status == -1) {
		written = -1; /* cancelled: nobody to answer */
	} else if (status == 0 && w->api && w->api_kind == FRONT_API_RESULT) {
		status = send_stored(w, req);
		written = status < 0 ? -1 : 0;
		job_stored_result_close(&w->stored);
	} else if (res) {
		written = send_result(w, req, res);
		status = res->http_status;
	} else {
		written = refused.status == status ? send_answer(req, &refused) : send_error(req, status);
	}
	if (w->copied) {
		if (written != 0)
			log_info("fastcgi %s: the web server went away before the answer to job %s was written", peer,
			         w->job_id[0] ? w->job_id : "-");
	} else if (written == 0) {
		FCGX_SetExitStatus(app_status(res), req->out);
		log_info("fastcgi %s \"%s %s\" %d %llu job=%s %llums", peer, method ? method : "-",
		         log_escape(esc, sizeof(esc), uri, strlen(uri)), status,
		         res ? (unsigned long long)res->body_bytes : 0ull, w->job_id[0] ? w->job_id : w->api_id[0] ? w->api_id : "-",
		         (unsigned long long)(util_mono_ms() - t0));
	} else if (status != -1) {
		log_info("fastcgi %s: the web server went away before the answer to job %s was written", peer,
		         w->job_id[0] ? w->job_id : "-");
	}
	account(w, req, status, written, res, t0);
	front_answer_free(&refused);
	if (job)
		post(f, OP_RELEASE, w, job);
}

/* ------------------------------------------------------------------ */
/* accepting */

static int peer_allowed(const struct fcgi_front *f, const struct sockaddr_storage *ss, char *text, size_t size)
{
	const void *addr;
	int loopback;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		addr = &in->sin_addr;
		loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		addr = &in6->sin6_addr;
		loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		           (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
	} else {
		snprintf(text, size, "unix");
		return 1;
	}
	if (inet_ntop(ss->ss_family, addr, text, (socklen_t)size) == NULL)
		snprintf(text, size, "?");
	if (f->cfg.allow == NULL || f->cfg.allow[0] == NULL)
		return loopback;
	for (size_t i = 0; f->cfg.allow[i]; i++) {
		unsigned char want[16];
		if (ss->ss_family == AF_INET && inet_pton(AF_INET, f->cfg.allow[i], want) == 1 &&
		    memcmp(want, addr, 4) == 0)
			return 1;
		if (ss->ss_family == AF_INET6 && inet_pton(AF_INET6, f->cfg.allow[i], want) == 1 &&
		    memcmp(want, addr, 16) == 0)
			return 1;
		/* an IPv4 entry matches a v4-mapped peer on a dual-stack socket */
		if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr) &&
		    inet_pton(AF_INET, f->cfg.allow[i], want) == 1 &&
		    memcmp(want, (const unsigned char *)addr + 12, 4) == 0)
			return 1;
	}
	return 0;
}

/* How long a blocking read (libfcgi's, and the parameters peek) or write on fd
 * may wait: a web server, or anything that connects, that stops sending
 * mid-record would otherwise hold a responder thread for good. */
static void set_timeout(int fd, int option, uint64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
	setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

/* ------------------------------------------------------------------ */
/* the parameters cap, before libfcgi reads them */

/*
 * libfcgi keeps a request's parameters in memory until the last one has
 * arrived, however many the peer sends; the cap checked afterwards (431)
 * would come only once that memory was spent. So before FCGX_Accept_r, the
 * records waiting on the connection are looked at without being consumed
 * (MSG_PEEK): when the PARAMS records of the request that begins there
 * declare more than the cap, or spread further than the cap and
 * PARAMS_PEEK_SLACK, the connection is closed unread (the web server
 * answers 502). Anything else, including records libfcgi will refuse, is
 * left to libfcgi. Caps above 64k are checked this way only as far as
 * PARAMS_PEEK_MAX.
 *
 * Waiting for more bytes when some are already there cannot use poll(),
 * which reports the bytes already seen again at once; an edge-triggered
 * epoll reports only new ones. A web server writes a request's head in
 * one go, so this is rarely needed: the usual cost is one recv().
 *
 * Returns 0 to go on, else the bytes of parameters declared so far (> cap)
 * or, for records spread too far, the bytes looked at.
 */
static uint64_t params_too_large(struct worker *w, int fd, uint64_t wait_ms)
{
	size_t cap = w->f->cfg.max_params_bytes, off = 0;
	size_t limit = cap + PARAMS_PEEK_SLACK < PARAMS_PEEK_MAX ? cap + PARAMS_PEEK_SLACK : PARAMS_PEEK_MAX;
	size_t want = limit < 4096 ? limit : 4096; /* bytes asked for: a request body need not be copied */
	uint64_t declared = 0, result = 0;
	int begun = 0, watched = 0;
	unsigned id = 0;

	if (w->peek == NULL)
		w->peek = util_xmalloc(limit);
	for (;;) {
		ssize_t n = recv(fd, w->peek, want, MSG_PEEK | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && !(n < 0 && errno == EAGAIN))
			break; /* end of stream or an error: libfcgi reports it */
		if (n < 0)
			n = 0;
		while (off + 8 <= (size_t)n) {
			const unsigned char *h = w->peek + off;
			unsigned rid = (unsigned)h[2] << 8 | h[3];
			size_t clen = (size_t)h[4] << 8 | h[5];

			if (h[0] != 1)
				goto done; /* not FastCGI 1: libfcgi refuses it */
			if (h[1] == RECORD_BEGIN_REQUEST && !begun) {
				begun = 1;
				id = rid;
			} else if (begun && rid == id) {
				if (h[1] != RECORD_PARAMS || clen == 0)
					goto done; /* the parameters ended within the cap */
				declared += clen;
				if (declared > cap) {
					result = declared;
					goto done;
				}
			}
			off += 8 + clen + h[6];
		}
		if ((size_t)n == want) {
			if (want == limit) {
				/* spread over more than cap + slack bytes, or too far to look */
				if (cap + PARAMS_PEEK_SLACK <= PARAMS_PEEK_MAX)
					result = limit;
				break;
			}
			want = want * 4 < limit ? want * 4 : limit;
			continue; /* more may be there already */
		}
		/* Wait for more than the n bytes already there. */
		if (w->peek_ep < 0 && (w->peek_ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			break;
		if (!watched) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = fd};
			if (epoll_ctl(w->peek_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
				break;
			watched = 1;
		}
		struct epoll_event got;
		int k = epoll_wait(w->peek_ep, &got, 1, wait_ms ? (int)(wait_ms > INT32_MAX ? INT32_MAX : wait_ms) : -1);
		if (k == 0 || (k < 0 && errno != EINTR))
			break; /* nothing came in time: libfcgi's read times out too */
		if (k > 0 && (got.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
			break; /* nothing more is coming: libfcgi reads what there is */
	}
done:
	if (watched)
		epoll_ctl(w->peek_ep, EPOLL_CTL_DEL, fd, NULL);
	return result;
}

/* A new connection, or -1 when the front is closing. Called with
 * f->accept_mu held. */
static int accept_locked(struct fcgi_front *f)
{
	for (;;) {
		struct pollfd p[2] = {{f->listen_fd, POLLIN, 0}, {f->stop_fd, POLLIN, 0}};
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		char text[INET6_ADDRSTRLEN + 8];
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			log_warn("fastcgi: poll on %s", f->name);
			return -1;
		}
		if (p[1].revents)
			return -1;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(f->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			int err = errno;
			if (err == EAGAIN || err == EINTR || err == ECONNABORTED)
				continue;
			if (err == EMFILE || err == ENFILE) {
				/* No busy loop while out of descriptors: the connection
				 * waits in the backlog; one line per shortage, not per try. */
				struct pollfd s = {f->stop_fd, POLLIN, 0};
				if (!f->fds_short)
					log_warnx("fastcgi: accept on %s: %s; retrying every 100 ms", f->name, strerror(err));
				f->fds_short = 1;
				poll(&s, 1, 100);
				continue;
			}
			log_warnx("fastcgi: accept on %s: %s", f->name, strerror(err));
			continue;
		}
		if (f->fds_short) {
			f->fds_short = 0;
			log_info("fastcgi: accepting on %s again", f->name);
		}
		if (f->is_tcp) {
			/* params_too_large looks up to cap + slack bytes ahead
			 * unread: the receive window must let them all in. */
			int rcv = 2 * PARAMS_PEEK_MAX;
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
		}
		if (!peer_allowed(f, &ss, text, sizeof(text))) {
			log_warnx("fastcgi: connection from %s refused (not loopback and not in --fastcgi-allow)", text);
			job_front_count_refusal(f->cfg.counters, JOB_REFUSED_FORBIDDEN);
			close(fd);
			continue;
		}
		return fd;
	}
}

/* A new connection, or -1 when the front is closing. One thread at a time
 * waits for connections (leader/followers): a mutex hands the turn to one
 * waiting thread, where a shared poll() would wake them all. Once closing,
 * stop_fd stays readable, so every thread sees it in its turn. */
static int accept_one(struct worker *w)
{
	struct fcgi_front *f = w->f;
	int fd;

	pthread_mutex_lock(&f->accept_mu);
	fd = accept_locked(f);
	pthread_mutex_unlock(&f->accept_mu);
	return fd;
}

/* Connection ids in log lines, shared by the responder threads. */
static atomic_uint_least64_t fcgi_conn_seq;

/* A responder thread: accept, serve requests until the connection ends,
 * again. Longer than 80 lines: the accept lock, the timeouts and the drain
 * meet here (see serve). */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	FCGX_Request req;
	int fresh, r;

	pthread_setname_np(pthread_self(), "cgiq-fastcgi");
	int counted = 0; /* the connection is in connections_open */

	FCGX_InitRequest(&req, -1, 0);
	for (;;) {
		if (counted && req.ipcFd < 0) {
			job_front_count_connection(w->f->cfg.counters, -1);
			counted = 0;
		}
		if (req.ipcFd < 0) {
			int fd = accept_one(w);
			if (fd < 0)
				break;
			job_front_count_connection(w->f->cfg.counters, 1);
			counted = 1;
			w->conn_id = atomic_fetch_add_explicit(&fcgi_conn_seq, 1, memory_order_relaxed) + 1;
			FCGX_InitRequest(&req, -1, 0);
			/* Serve the connection we accepted: libfcgi reads from ipcFd
			 * when it is open, and keepConnection stops FCGX_Accept_r's
			 * opening FCGX_Finish_r from closing it. The begin record then
			 * sets keepConnection from the web server's FCGI_KEEP_CONN. */
			req.ipcFd = fd;
			req.keepConnection = 1;
			fresh = 1;
		} else {
			fresh = 0;
		}
		if (worker_start_reading(w, req.ipcFd, !fresh)) {
			/* Closing or draining between accept and here (or on a kept
			 * connection): do not start a request. */
			worker_set_phase(w, WP_IDLE, -1);
			break;
		}
		/* A fresh connection has its request coming; a kept one may idle. */
		uint64_t wait_ms = fresh ? w->f->cfg.read_timeout_ms : w->f->cfg.idle_timeout_ms;
		set_timeout(req.ipcFd, SO_RCVTIMEO, wait_ms);
		if (fresh)
			set_timeout(req.ipcFd, SO_SNDTIMEO, w->f->cfg.read_timeout_ms);
		uint64_t too_large = params_too_large(w, req.ipcFd, wait_ms);
		if (too_large > 0) {
			log_warnx("fastcgi conn %llu: the parameters of a request take more than %llu bytes "
			          "(--fastcgi-max-params %zu); connection closed before reading them",
			          (unsigned long long)w->conn_id, (unsigned long long)too_large,
			          w->f->cfg.max_params_bytes);
			job_front_count_refusal(w->f->cfg.counters, JOB_REFUSED_TOO_LARGE);
			worker_set_phase(w, WP_IDLE, -1);
			close(req.ipcFd);
			req.ipcFd = -1;
			continue;
		}
		r = FCGX_Accept_r(&req);
		worker_set_phase(w, WP_READING, req.ipcFd); /* a request now, not idle */
		if (r < 0) {
			/* libfcgi has closed the connection (req.ipcFd is -1 again). */
			worker_set_phase(w, WP_IDLE, -1);
			if (fresh)
				log_warnx("fastcgi conn %llu: connection on %s closed: malformed or truncated records, "
				          "an unknown role, or no whole request within --fastcgi-read-timeout %llu ms",
				          (unsigned long long)w->conn_id, w->f->name,
				          (unsigned long long)w->f->cfg.read_timeout_ms);
			continue;
		}
		/* The body and the answer: read-timeout gaps. */
		if (!fresh)
			set_timeout(req.ipcFd, SO_RCVTIMEO, w->f->cfg.read_timeout_ms);
		serve(w, &req);
		worker_set_phase(w, WP_IDLE, -1);
		/* libfcgi closes a connection that is not kept by shutting down
		 * its write side and reading until the web server closes, so that
		 * unread request bytes cannot turn into a reset that destroys the
		 * answer. Once stdin was read to its end nothing more is coming
		 * (FastCGI 1.0 spec, section 3.5: without FCGI_KEEP_CONN the
		 * application ends the connection), and a plain close frees the
		 * thread a round trip earlier: libfcgi skips the lingering close
		 * for a detached request. */
		if (!req.keepConnection && FCGX_GetError(req.in) == 0 && FCGX_HasSeenEOF(req.in) == EOF)
			req.detached = 1;
		FCGX_Finish_r(&req);
		worker_reset(w);
	}
	if (req.ipcFd >= 0) {
		FCGX_Free(&req, 1);
	}
	if (counted)
		job_front_count_connection(w->f->cfg.counters, -1);
	post(w->f, OP_EXIT, w, NULL);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* lifetime */

static void on_async_closed(uv_handle_t *h)
{
	struct fcgi_front *f = h->data;

	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		buf_free(&w->body);
		buf_free(&w->answer);
		free(w->chunk);
		free(w->peek);
		if (w->peek_ep >= 0)
			close(w->peek_ep);
	}
	free(f->workers);
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	pthread_mutex_destroy(&f->accept_mu);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

static void front_maybe_closed(struct fcgi_front *f)
{
	unsigned started = 0;

	if (!f->closing || !f->async_open)
		return;
	for (unsigned i = 0; i < f->nworkers; i++)
		started += f->workers[i].started != 0;
	if (f->exited < started)
		return;
	for (unsigned i = 0; i < f->nworkers; i++)
		if (f->workers[i].started)
			pthread_join(f->workers[i].thread, NULL);
	on_async(&f->async); /* ops queued after the last run (none expected) */
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	f->listen_fd = -1;
	if (f->unix_path) {
		unlink(f->unix_path);
		free(f->unix_path);
		f->unix_path = NULL;
	}
	f->async_open = 0;
	uv_close((uv_handle_t *)&f->async, on_async_closed);
}

int fcgi_front_open(uv_loop_t *loop, struct job_engine *engine, const struct fcgi_config *cfg,
                    struct fcgi_front **out)
{
	struct fcgi_front *f = util_xcalloc(1, sizeof(*f));
	int r;

	if (FCGX_Init() != 0) {
		free(f);
		return -EIO;
	}
	f->loop = loop;
	f->engine = engine;
	f->cfg = *cfg;
	if (f->cfg.threads == 0)
		f->cfg.threads = 1;
	f->listen_fd = -1;
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (f->stop_fd < 0) {
		r = -errno;
		free(f);
		return r;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->accept_mu, NULL);
	r = uv_async_init(loop, &f->async, on_async);
	if (r < 0) {
		close(f->stop_fd);
		pthread_mutex_destroy(&f->accept_mu);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return r;
	}
	f->async.data = f;
	f->async_open = 1;
	*out = f;
	return 0;
}

static int inherited_fd(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int acc = 0;
	socklen_t len = sizeof(acc);

	if (pid && fds && strtol(pid, NULL, 10) == (long)getpid() && strtol(fds, NULL, 10) >= 1)
		return 3; /* systemd: SD_LISTEN_FDS_START */
	/* spawn-fcgi and the FastCGI convention: fd 0 is the listening socket. */
	if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
		return 0;
	return -1;
}

int fcgi_inherited_socket(void) { return inherited_fd() >= 0; }

static int set_owner(const char *path, const char *owner)
{
	char *copy = util_xstrdup(owner), *colon = strchr(copy, ':');
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	int r = 0;

	if (colon)
		*colon++ = '\0';
	if (copy[0]) {
		struct passwd *pw = getpwnam(copy);
		if (pw == NULL) {
			r = -ENOENT;
			goto out;
		}
		uid = pw->pw_uid;
		if (colon == NULL)
			gid = pw->pw_gid;
	}
	if (colon && colon[0]) {
		struct group *gr = getgrnam(colon);
		if (gr == NULL) {
			r = -ENOENT;
			goto out;
		}
		gid = gr->gr_gid;
	}
	if (chown(path, uid, gid) < 0)
		r = -errno;
out:
	free(copy);
	return r;
}

static int listen_unix(struct fcgi_front *f, const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	if (*path == '\0' || strlen(path) >= sizeof(sa.sun_path))
		return -EINVAL;
	/* A socket left by a previous run; never remove anything else. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	f->unix_path = util_xstrdup(path);
	/* Before listen(): nobody can connect while the mode is still umask's. */
	r = chmod(path, f->cfg.socket_mode) < 0 ? -errno : 0;
	if (r == 0 && f->cfg.socket_owner) {
		r = set_owner(path, f->cfg.socket_owner);
		if (r == -ENOENT)
			log_warnx("fastcgi: --fastcgi-owner %s: no such user or group", f->cfg.socket_owner);
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	if (listen(fd, 1024) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	f->listen_fd = fd;
	snprintf(f->name, sizeof(f->name), "unix:%s", path);
	return 0;
}

static int listen_tcp(struct fcgi_front *f, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	char host[128], shown[INET6_ADDRSTRLEN];
	const char *port_s;
	uint64_t port;
	int fd, r, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = '\0';
		port_s = end + 2;
	} else if (strchr(addr, ':')) {
		const char *colon = strrchr(addr, ':');
		if ((size_t)(colon - addr) >= sizeof(host) || colon == addr)
			return -EINVAL;
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port_s = colon + 1;
	} else {
		/* A bare port: loopback. */
		snprintf(host, sizeof(host), "127.0.0.1");
		port_s = addr;
	}
	if (util_parse_uint(port_s, 65535, &port) < 0)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		slen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		slen = sizeof(struct sockaddr_in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 1024) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	slen = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &slen);
	if (ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, shown, sizeof(shown));
		snprintf(f->name, sizeof(f->name), "%s:%u", shown, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, shown, sizeof(shown));
		snprintf(f->name, sizeof(f->name), "[%s]:%u", shown, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
	}
	f->listen_fd = fd;
	f->is_tcp = 1;
	return 0;
}

static int start_threads(struct fcgi_front *f)
{
	f->workers = util_xcalloc(f->cfg.threads, sizeof(*f->workers));
	f->nworkers = f->cfg.threads;
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		w->f = f;
		w->index = i;
		w->conn_fd = -1;
		w->body_fd = -1;
		w->wake_fd = -1;
		w->peek_ep = -1;
		w->stored.fd = -1;
		w->job_ms = -1;
		w->wait_ms = -1;
		buf_init(&w->body, f->cfg.body_mem_bytes + 1);
		buf_init(&w->answer, SIZE_MAX / 2);
	}
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		pthread_attr_t attr;
		int r;

		w->wake_fd = eventfd(0, EFD_CLOEXEC);
		if (w->wake_fd < 0)
			return -errno;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		r = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_attr_destroy(&attr);
		if (r != 0)
			return -r;
		w->started = 1;
	}
	return 0;
}

int fcgi_front_listen(struct fcgi_front *f, const char *addr)
{
	int r;

	if (f->listen_fd >= 0 || f->closing)
		return -EBUSY;
	if (strcmp(addr, "inherit") == 0 || strncmp(addr, "fd:", 3) == 0) {
		int fd = inherited_fd();
		if (addr[0] == 'f') {
			/* "fd:N": one of several sockets from systemd, picked by name */
			uint64_t n;
			int acc = 0;
			socklen_t alen = sizeof(acc);
			if (util_parse_uint(addr + 3, INT32_MAX, &n) < 0 || n < 3)
				return -EINVAL;
			if (getsockopt((int)n, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) < 0 || !acc)
				return -ENOTSOCK;
			fd = (int)n;
		}
		if (fd < 0)
			return -EINVAL;
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		f->listen_fd = fd;
		if (addr[0] == 'f')
			snprintf(f->name, sizeof(f->name), "%s", addr);
		else
			snprintf(f->name, sizeof(f->name), "inherited fd %d", fd);
		{
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			f->is_tcp = getsockname(fd, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family != AF_UNIX;
		}
	} else if (strncmp(addr, "unix:", 5) == 0) {
		r = listen_unix(f, addr + 5);
		if (r < 0)
			return r;
	} else {
		r = listen_tcp(f, addr);
		if (r < 0)
			return r;
	}
	return 0;
}

int fcgi_front_start(struct fcgi_front *f)
{
	int r;

	if (f->listen_fd < 0 || f->workers != NULL)
		return -EBUSY;
	r = start_threads(f);
	if (r < 0) {
		log_warnx("fastcgi: cannot start responder threads: %s", strerror(-r));
		return r;
	}
	log_info("fastcgi on %s (%u responder threads)", f->name, f->nworkers);
	return 0;
}

void fcgi_front_drain(struct fcgi_front *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	if (f->closing || f->draining) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	f->draining = 1;
	/* Threads waiting on a kept connection for its next request: it will
	 * not be served, so end it (the web server retries elsewhere). */
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		if (w->phase == WP_READING && w->conn_fd >= 0 && w->idle_kept)
			shutdown(w->conn_fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&f->mu);
	/* The thread in accept sees stop_fd and leaves; so does each next one.
	 * The listening socket itself is closed by fcgi_front_close: new
	 * connections wait in its backlog and are reset when it closes. */
	wake(f->stop_fd);
}

unsigned fcgi_front_busy(struct fcgi_front *f)
{
	unsigned n = 0;

	if (f == NULL)
		return 0;
	pthread_mutex_lock(&f->mu);
	for (unsigned i = 0; i < f->nworkers; i++)
		n += f->workers[i].phase != WP_IDLE && !f->workers[i].idle_kept;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fcgi_front_close(struct fcgi_front *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	if (f->closing) {
		pthread_mutex_unlock(&f->mu);
		return;
	}
	f->closing = 1;
	/* Threads reading a request (or idle on a kept connection) are woken by
	 * a shutdown of their connection; threads in accept by stop_fd. */
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		if (w->phase == WP_READING && w->conn_fd >= 0)
			shutdown(w->conn_fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&f->mu);
	FCGX_ShutdownPending();
	wake(f->stop_fd);
	/* The engine is closing too: running jobs end interrupted without a done
	 * callback, so their waiting threads are answered here. */
	for (unsigned i = 0; i < f->nworkers; i++) {
		struct worker *w = &f->workers[i];
		if (w->waiting) {
			w->waiting = 0;
			worker_finish(w, 503);
		}
	}
	if (f->nworkers == 0)
		f->exited = 0;
	front_maybe_closed(f);
}
