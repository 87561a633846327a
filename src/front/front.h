/*
 * front: what a request is after its head, whatever the wire protocol. The
 * fronts (HTTP in http/, FastCGI in fcgi/) parse their wire and hand front/
 * the rest of a request's life (request.c): its body, its job, refusals,
 * Prefer: wait, the client going away, and the answer (answer.c: error
 * pages, the 202, the job API; admin.c: the admin pages), written back
 * through a front's few operations; then the access log (access_log.c) and
 * the counters (counters.c). Also the listening sockets of both (listen.c).
 */
#ifndef CGIQ_FRONT_H
#define CGIQ_FRONT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <uv.h>

#include "util/util.h"

struct cgi_env;
struct front_access_log;
struct job_engine;
struct job_metrics;
struct job_stored_result;

/* ---------------- answers (answer.c) ---------------- */

/* Reason phrase for a status ("Not Found"), "Unknown" when not known. */
const char *front_reason(int status);
/* Whether an answer with this status has a body (not 1xx, 204, 304). */
int front_status_has_body(int status);

/*
 * An answer. A front writes its status line its own way ("HTTP/1.1 200 OK",
 * "Status: 200 OK"), then headers, then Content-Length (front_answer_body_len)
 * when front_status_has_body, then the body: body in memory (owned, or mem:
 * len bytes borrowed from a job until its request ends), or len bytes of fd
 * from off (fd borrowed; -1 = none).
 */
struct front_answer {
	int status;
	char reason[128];      /* "": front_reason(status) */
	struct buf headers;    /* "Name: value\r\n" lines */
	struct buf body;
	const char *mem;
	int fd;
	uint64_t off, len;
	int local_redirect;    /* a program's local redirect left to the web server: no status line */
	int delegated;         /* the web server sends the body (X-Accel-Redirect): no Content-Length */
	int streamed;          /* the body follows as a program writes it (--stream): no Content-Length */
};
void front_answer_init(struct front_answer *a, int status);
void front_answer_free(struct front_answer *a);
const char *front_answer_reason(const struct front_answer *a);
uint64_t front_answer_body_len(const struct front_answer *a);
/* The body bytes held in memory (owned or borrowed), NULL when none. */
const char *front_answer_mem(const struct front_answer *a);
/* a becomes the short text/plain page of status ("404 Not Found\n");
 * extra: more header lines or NULL. 503 and 425 carry Retry-After (5 s,
 * 1 s) unless extra has one. */
void front_answer_error(struct front_answer *a, int status, const char *extra);

/* A body streamed from a file (a spooled output, a kept result) goes out in
 * chunks of this size, each written before the next is read. */
#define FRONT_FILE_CHUNK 65536
/* Reads the next chunk of [off, end) of fd into buf, at most size bytes:
 * the bytes read, or 0 or -1 (errno) when the file ends early or cannot be
 * read: the answer then cannot be completed. */
ssize_t front_file_chunk(int fd, uint64_t off, uint64_t end, char *buf, size_t size);

/* One byte range of a body of size bytes (RFC 9110 14), for a 200 answer:
 * Accept-Ranges; a satisfiable Range (util_byte_range) makes a 206 with
 * its Content-Range and *off, *len; an unsatisfiable one makes a the 416
 * page with Content-Range: bytes * / size. range NULL: the whole body.
 * Returns a's status. */
int front_answer_range(struct front_answer *a, const char *range, uint64_t size, uint64_t *off, uint64_t *len);

/* The status for a job_submit / job_submit_async error: 503 (queue full,
 * draining), 507 (spool full), else 500. */
int front_submit_status(int err);
/* How long a synchronous request may wait: Prefer's wait=N (wait_s, -1
 * when absent) clamped to max_wait_ms, or -1: as long as the job takes. */
int64_t front_wait_ms(int64_t wait_s, uint64_t max_wait_ms);
/* a becomes the 202 of an accepted job: Location of its status monitor, the
 * monitor document; applied: the Preference-Applied value or NULL. */
void front_answer_accepted(struct front_answer *a, struct job_engine *e, const char *jobs_prefix, const char *id,
                           const char *applied);

/* The job API under --jobs-prefix: {prefix}/{id} (GET, HEAD, DELETE) and
 * {prefix}/{id}/result (GET, HEAD). */
enum front_api { FRONT_API_STATUS, FRONT_API_DELETE, FRONT_API_RESULT };
/* path (under jobs_prefix) and method: 0 with *kind and id, or 404 (an id of
 * the wrong shape, without touching the database) or 405 with a set. */
int front_api_route(const char *jobs_prefix, const char *path, const char *method, char id[UTIL_ID_LEN + 1],
                    enum front_api *kind, struct front_answer *a);
/* A status monitor or DELETE, answered whole in a (tag: for the log line of
 * a delete). Returns the status. Loop thread. */
int front_api_answer(struct job_engine *e, enum front_api kind, const char *id, const char *tag,
                     struct front_answer *a);
/* A result: opens it into st (0), or sets a to 425 (not finished) or 404 and
 * returns that. Loop thread; close st with job_stored_result_close. */
int front_api_result_open(struct job_engine *e, const char *id, struct job_stored_result *st, struct front_answer *a);
/* a becomes the answer of an open result: its stored status and headers,
 * one range when range (a Range field value, or NULL) asks for it over a
 * 200 (206, or 416), the body from st->fd. Returns a->status. Any thread. */
int front_answer_stored(struct front_answer *a, const struct job_stored_result *st, const char *range);

/* ---------------- the loop's read buffer (request.c) ---------------- */

/* A uv_alloc_cb for the fronts' connections: the loop's one shared read
 * buffer (the job engine's, which its pipes use too), FRONT_READ_BYTES;
 * every read callback consumes its bytes before returning. */
#define FRONT_READ_BYTES 65536
void front_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b);

/* ---------------- listening sockets (listen.c) ---------------- */

/* A libuv stream of either kind a front serves: TCP or a unix socket. */
union front_stream {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

/* addr "HOST:PORT" (IPv4), "[V6]:PORT" or a bare "PORT" (127.0.0.1), hosts
 * numeric, into ss: 0 or -EINVAL. */
int front_parse_inet(const char *addr, struct sockaddr_storage *ss);
/* The numeric host and the port of ss; a unix socket shows as 127.0.0.1. */
void front_sockaddr_text(const struct sockaddr_storage *ss, char *addr, size_t addr_size, unsigned *port);
/* Whether addr listens on loopback only (127/8, ::1, a unix socket). */
int front_addr_is_local(const char *addr);
/* Whether listening on a and on b would collide (a wildcard covers its
 * family; port 0 never collides). */
int front_addr_same(const char *a, const char *b);

/* Whether a peer may connect: a unix socket always; over TCP, one of allow
 * (IP literals, NULL-terminated; an IPv4 one matches its v4-mapped IPv6
 * peer), or loopback when allow is NULL or empty. text: the peer's address. */
int front_peer_allowed(const char *const *allow, const struct sockaddr_storage *ss, char *text, size_t size);

struct front_listen_opts {
	unsigned unix_mode;     /* a unix socket's mode; 0: the umask's */
	const char *unix_owner; /* "user", "user:group" or ":group"; NULL: ours */
};
/* A listening socket, not yet on a loop. */
struct front_socket {
	int fd;
	int is_unix;
	char *unix_path; /* a socket file made here, removed by release */
	char shown[160]; /* for log lines: "127.0.0.1:8080", "unix:/run/x.sock" */
};
/* Whether addr reads as front_listen_open reads it, opening nothing (for
 * the option parser, so that --check-config and a start agree): 0, or
 * -EINVAL, -ENAMETOOLONG (a unix socket path too long). */
int front_listen_check(const char *addr);
/* A unix socket's owner as front_listen_open reads it ("user", "user:group",
 * ":group"; "user" alone: with the user's group): 0 with the ids ((uid_t)-1,
 * (gid_t)-1 for what is not named), or -ENOENT with *what the part that
 * names no user or group ("no such user", "no such group"). */
int front_owner_resolve(const char *owner, uid_t *uid, gid_t *gid, const char **what);
/*
 * Opens a listening socket (close-on-exec, non-blocking) for addr:
 * "unix:PATH" (an old socket file there is replaced, nothing else), "fd:N"
 * (a listening socket given by the parent, as systemd does), or an inet
 * address as front_parse_inet reads it; port 0 shows the port bound. Done
 * before the privilege drop. 0, or -EINVAL (the address), -ENAMETOOLONG,
 * -ENOTSOCK (fd:N does not listen), -ENOENT (unix_owner unknown), or what
 * socket, bind or listen said. o may be NULL.
 */
int front_listen_open(const char *addr, const struct front_listen_opts *o, struct front_socket *s);
/* s becomes the listening socket fd, shown as name (and what it is). */
void front_socket_adopt(int fd, const char *name, struct front_socket *s);
/* h is initialised on loop (close it with uv_close whatever this returns)
 * and owns s's descriptor when this returns 0. */
int front_socket_wrap(uv_loop_t *loop, struct front_socket *s, union front_stream *h);
/* Closes the descriptor if no handle owns it, and removes the socket file
 * made for it. */
void front_socket_release(struct front_socket *s);

/* ---------------- counters (counters.c) ----------------
 * Per front (HTTP, FastCGI): what the front answered and refused. Owned by
 * the daemon (they outlive the fronts and the engine); a front updates its
 * own on the loop thread, /metrics reads them; relaxed atomics, so that a
 * reader on another thread sees whole values. */
enum front_kind { FRONT_HTTP = 0, FRONT_FASTCGI, FRONT_COUNT };
enum front_refusal {
	FRONT_REFUSED_QUEUE_FULL = 0,   /* 503: --queue-max */
	FRONT_REFUSED_MAX_CONNECTIONS,  /* 503: --max-connections */
	FRONT_REFUSED_BAD_REQUEST,      /* 400 */
	FRONT_REFUSED_TIMEOUT,          /* 408 */
	FRONT_REFUSED_TOO_LARGE,        /* 413, 414, 431 */
	FRONT_REFUSED_NOT_IMPLEMENTED,  /* 501, 505 */
	FRONT_REFUSED_FORBIDDEN,        /* 403: a path or program refused */
	FRONT_REFUSED_NOT_FOUND,        /* 404: no program */
	FRONT_REFUSED_STORE_DOWN,       /* 503: the job store, a server, cannot be written */
	FRONT_REFUSED_OTHER,            /* any other error answered before a job ran */
	FRONT_REFUSAL_COUNT,
};
/* "queue_full", "max_connections", ... (the metric's reason label). */
const char *front_refusal_name(enum front_refusal r);
/* The refusal an error status stands for (400 -> bad_request, ...). */
enum front_refusal front_refusal_of_status(int status);

/* How a client showed it took a 102 Processing as its answer. */
enum front_misread {
	FRONT_MISREAD_EARLY_REQUEST = 0, /* a new request before the final response */
	FRONT_MISREAD_CLOSED_AFTER_102,  /* closed the connection right after a 102 */
	FRONT_MISREAD_COUNT
};
const char *front_misread_name(enum front_misread m);

struct front_counters {
	atomic_uint_least64_t responses[6];              /* by status class: [2] = 2xx ... [5] = 5xx */
	atomic_uint_least64_t refused[FRONT_REFUSAL_COUNT];
	atomic_uint_least64_t misread[FRONT_MISREAD_COUNT];
	atomic_uint_least64_t connections_total;
	atomic_int_least64_t connections_open;
	atomic_uint_least64_t static_files;              /* static answers (--static), 304s included */
	atomic_uint_least64_t streamed;                  /* answers whose body went as written (--stream, NPH) */
	atomic_uint_least64_t streams_cut;               /* of those, cut short: the job did not succeed */
};
/* Counting helpers (NULL counters allowed: nothing counted). */
void front_count_response(struct front_counters *c, int status);
void front_count_refusal(struct front_counters *c, enum front_refusal r);
void front_count_connection(struct front_counters *c, int delta);
void front_count_misread(struct front_counters *c, enum front_misread m);
void front_count_static(struct front_counters *c);
/* A streamed answer's head went out (cut 0), or its body was cut (cut 1). */
void front_count_stream(struct front_counters *c, int cut);

/* ---------------- admin pages (admin.c) ---------------- */

/* Prometheus text exposition format 0.0.4 of the engine snapshot m and the
 * fronts' counters (FRONT_COUNT of them; NULL = none). Metric names start
 * with cgiq_. */
void front_metrics_render(struct buf *out, const struct job_metrics *m, const struct front_counters *fronts);

/* An admin answer. */
struct front_admin_response {
	int status;
	const char *content_type;   /* NULL for the plain-text error page */
	const char *allow;          /* "GET, HEAD" for 405, else NULL */
	struct buf body;            /* initialised by front_admin_handle; free with buf_free */
};
/*
 * Answers GET (or HEAD) /metrics, /health, /jobs?state=S&limit=N (JSON lines,
 * newest first, limit 1-1000, default 100). Other paths 404, other methods
 * 405, an unknown parameter or bad value 400. path is the request path
 * (percent-encoded, as parsed), query what follows '?'. Loop thread.
 */
void front_admin_handle(struct job_engine *e, const struct front_counters *fronts, const char *method,
                        const char *path, const char *query, struct front_admin_response *out);

/* ---------------- access log (access_log.c) ---------------- */

/* One request as the access log shows it. NULL strings print as "-". */
struct front_access_entry {
	const char *host;         /* client address, no port ("unix" for a unix socket) */
	const char *user;         /* authenticated user (FastCGI REMOTE_USER), usually NULL */
	int64_t time_us;          /* wall clock of the line */
	const char *method;       /* NULL when the request line could not be read */
	const char *target;
	const char *protocol;     /* "HTTP/1.1"; NULL leaves it out */
	int status;
	uint64_t bytes;           /* response body bytes */
	const char *referer;
	const char *user_agent;
	const char *job_id;       /* NULL when no job ran */
	unsigned processing_sent; /* 102s */
	int64_t job_ms;           /* how long the program ran; -1 prints "-" */
	uint64_t request_ms;      /* head received to response written */
};

/* Appends s as nginx escapes its log fields: '"', '\\', bytes below 0x20 and
 * from 0x7f as \xHH (uppercase hex). At most 8 KiB of s are used; a longer
 * s ends in "...". */
void front_access_escape(struct buf *out, const char *s, size_t len);
/*
 * Appends one line (newline included):
 *   host - user [dd/Mon/yyyy:hh:mm:ss +0000] "METHOD target PROTO" status bytes
 *   "referer" "user-agent" job_id 102s job_ms request_ms
 * (Combined Log Format, UTC, then cgiq's four fields).
 */
void front_access_format(struct buf *out, const struct front_access_entry *e);

/*
 * Opens the access log: path "-" is stdout, else the file is created or
 * appended to (mode 0640). With a loop, a timer flushes the buffered lines
 * every 500 ms. Returns 0 or a negative errno.
 */
int front_access_log_open(uv_loop_t *loop, const char *path, struct front_access_log **out);
/* Logs one line. Any thread; never waits on the disk except when 32 KiB are
 * buffered. NULL log: nothing. */
void front_access_log_write(struct front_access_log *l, const struct front_access_entry *e);
/* Writes the buffered lines now. Any thread. */
void front_access_log_flush(struct front_access_log *l);
/* For SIGHUP after a rotation: flushes to the old file and opens the path
 * again. Stdout: nothing to do. Returns 0 or a negative errno (the old file is
 * kept). Any thread. */
int front_access_log_reopen(struct front_access_log *l);
/* Shutdown on the loop thread: closes the timer, flushes. Lines still logged
 * after this are written by front_access_log_free. */
void front_access_log_stop(struct front_access_log *l);
/* After the loop has ended: flushes, closes the file, frees. NULL allowed. */
void front_access_log_free(struct front_access_log *l);


/* ---------------- a request's life (request.c) ----------------
 *
 * A front parses its wire; front/ runs what follows, the same for both:
 * the body (memory, then a spool file), the job (synchronous or
 * asynchronous), refusals, Prefer: wait, the client going away, the answer
 * (a job's output, an error page, the 202, the job API) written through the
 * front's few operations, and the log line, the access-log line and the
 * counters once it is written. One struct front_req per connection, reused
 * for each of its requests. Everything here runs on the loop thread.
 */
struct front;
struct front_req;

/* The fronts' settings of a script block (with the global ones where the
 * block leaves a key out), carried by the engine's rule of the block. */
struct front_policy {
	int processing_mode;             /* the HTTP front's enum http_processing_mode */
	uint64_t processing_after_ms;
	uint64_t processing_interval_ms;
	unsigned processing_max;         /* 0 = no cap */
	int detach_on_disconnect;
};

/* What a wire does for front/. r's connection: front_req_wire(r). */
struct front_wire_ops {
	/*
	 * Writes the head of the final answer a (a status line or "Status:",
	 * a->headers, Content-Length when front_status_has_body) and its body in
	 * memory (front_answer_mem; the wire may take a->body, leaving it empty)
	 * unless the request is head-only. A body from a file follows through
	 * body() unless last. Returns 0, then the wire calls front_req_written
	 * once its writes are done; or a negative errno, and the wire has closed.
	 */
	int (*head)(struct front_req *r, struct front_answer *a, int last);
	/* len bytes (at most chunk_bytes) of a body read from a file, valid
	 * until front_req_written; last: the answer's last bytes. 0 or a
	 * negative errno, as head. (With last, a wire may end its answer in the
	 * same write: FastCGI's END_REQUEST.) */
	int (*body)(struct front_req *r, const char *data, size_t len, int last);
	/* The answer is written and logged: the wire ends it if it has not
	 * (FastCGI's END_REQUEST), then calls front_req_reset before its next
	 * request, or closes. */
	void (*finish)(struct front_req *r);
	/* The answer cannot be completed (its file cannot be read): the only
	 * honest thing left is to close the connection. */
	void (*close)(struct front_req *r);
	/* A program's local redirect (RFC 3875 6.2.2): the wire maps location
	 * and runs it with front_req_run (0), or returns an HTTP status. NULL:
	 * the answer goes to the web server, which follows it (FastCGI). */
	int (*redirect)(struct front_req *r, const char *location);
	/*
	 * A streamed body (a->streamed): len bytes as the program wrote them,
	 * valid during the call only (FRONT_STREAM_DATA); the end of a complete
	 * body (FRONT_STREAM_END: HTTP's last chunk); or a body cut short
	 * (FRONT_STREAM_CUT: nothing more is written). After END and CUT the
	 * wire calls front_req_written once what it holds has gone. Returns 0,
	 * 1 when it holds more than FRONT_STREAM_QUEUE_MAX bytes not yet
	 * written (front/ then stops reading the program until
	 * front_req_written), or a negative errno, and the wire has closed.
	 * NULL: this wire does not stream (the answer waits for the job).
	 */
	int (*stream)(struct front_req *r, const char *data, size_t len, int how);
	size_t chunk_bytes;     /* the most body() takes at once */
};
enum { FRONT_STREAM_DATA, FRONT_STREAM_END, FRONT_STREAM_CUT };
/* What a wire holds of a streamed body before the program waits: with the
 * one read of the program's pipe (FRONT_READ_BYTES) that may arrive while
 * it is full, a stream costs cgiq at most twice this. */
#define FRONT_STREAM_QUEUE_MAX 65536

struct front_config {
	struct job_engine *engine;
	const struct front_wire_ops *ops;
	const char *spool_dir;       /* request bodies beyond body_mem_bytes go there */
	size_t body_mem_bytes;
	uint64_t max_body_bytes;     /* beyond: 413; 0: the wire's parser enforces it */
	unsigned max_connections;    /* beyond: a connection's request gets 503, then it closes; 0 = no cap */
	const char *jobs_prefix;     /* the job API, e.g. "/_cgiq/jobs" */
	uint64_t max_wait_ms;        /* Prefer: wait=N is clamped to this */
	int detach_on_disconnect;    /* the client gone: the job goes on (else cancelled) */
	const char *accel_prefix;    /* kept results served by nginx through X-Accel-Redirect; NULL = off */
	struct front_access_log *access_log; /* NULL = off */
	struct front_counters *counters;     /* NULL = none */
	const struct front_mime *mime;       /* static files' types (front_mime_load); NULL = none */
};

/* A front's shared part (cfg copied; its strings and objects must outlive
 * it). Returns 0 or a negative errno. */
int front_open(uv_loop_t *loop, const struct front_config *cfg, struct front **out);
/* Once its requests are closed. NULL allowed. */
void front_free(struct front *f);
/* Connections with a request object now. */
unsigned front_connections(const struct front *f);

/* What front/ reads of a request: borrowed from the wire until
 * front_req_reset. NULL strings are unknown ("-" in the logs). */
struct front_req_info {
	const char *method, *target, *protocol;
	const char *path;       /* the target's path, percent-encoded, for the job API */
	const char *host;       /* client address for the access log ("unix") */
	const char *user;       /* REMOTE_USER (FastCGI) */
	const char *referer, *user_agent;
	const char *range;      /* for a kept result, a static file */
	const char *if_none_match, *if_modified_since, *if_range; /* for a static file */
	int head_only;          /* HEAD: no body bytes (file bodies, and memory ones where the wire says) */
	uint64_t started_ms;    /* when the request began on its wire (util_mono_ms); 0: now */
	int quiet;              /* admin pages: not logged, not counted */
};

/* A job to run: the wire maps the request to a program and builds its
 * environment. */
struct front_job {
	const char *script, *cwd;
	struct cgi_env *env;          /* moved into the job */
	const char *method, *uri, *peer;
	int with_body;                /* the request body goes to the program */
	int respond_async;            /* Prefer: respond-async */
	int64_t wait_s;               /* Prefer: wait=N, -1 when absent */
};

/*
 * A connection's request object: one connection counted; tag (the wire's,
 * stable while r lives) starts its log lines. When the front is over
 * --max-connections, front_req_refused says so: the wire reads the
 * request, then front_req_serve answers it 503 and the wire closes.
 */
struct front_req *front_req_new(struct front *f, void *wire, const char *tag);
void *front_req_wire(const struct front_req *r);
int front_req_refused(const struct front_req *r);
/* The head is read: the request's clock starts. info copied (its strings borrowed). */
void front_req_begin(struct front_req *r, const struct front_req_info *info);
/* The same request's strings, moved (its clock and state kept). */
void front_req_rebase(struct front_req *r, const struct front_req_info *info);
/* Whether the path is under the job API's prefix. */
int front_req_is_api(const struct front_req *r);
/* Body bytes as they come: memory up to body_mem_bytes, then an unnamed
 * spool file. 0, or the status the request gets (413 over max_body_bytes;
 * 507 when the spool cannot take it, logged with its cause); later bytes are
 * dropped. */
int front_req_body(struct front_req *r, const char *data, size_t len);
uint64_t front_req_body_len(const struct front_req *r);
/* The first status front_req_body returned, else 0. */
int front_req_body_status(const struct front_req *r);
/* The request is whole: answered at once (over --max-connections, a body
 * refused, the job API), or 0 returned: the wire builds its job and calls
 * front_req_run. */
int front_req_serve(struct front_req *r);
/* Submits j's job. 0: a synchronous job runs and the request waits for it
 * (the wire may send 102s); 1: answered (a refusal) or answered later (the
 * 202 once the job is durable). */
int front_req_run(struct front_req *r, struct front_job *j);
/* Answers a (its headers and owned body taken) / a short error page. */
void front_req_answer(struct front_req *r, struct front_answer *a);
void front_req_error(struct front_req *r, int status);
/* 301 to path (as the request had it, percent-encoded) with a slash added
 * and the query kept: a directory asked for without its slash (cgi_map).
 * A path a header cannot carry gets 404. */
void front_req_moved(struct front_req *r, const char *path, const char *query);
/* Answers the request with the static file at path (cgi_target.is_static):
 * GET and HEAD (else 405), its type, ETag and Last-Modified, 304 for a
 * matching If-None-Match or If-Modified-Since, one Range (206, 416), the
 * body read in chunks. Returns the status. */
int front_req_static(struct front_req *r, const char *path);

/* The MIME table of /etc/mime.types (mime.types(5)) and a few built-in
 * types of web assets; the built-in ones alone when path cannot be read
 * (-errno returned, *out still usable). */
struct front_mime;
int front_mime_load(const char *path, struct front_mime **out);
void front_mime_free(struct front_mime *m);
/* The type of file by its extension (case ignored), else
 * application/octet-stream. */
const char *front_mime_type(const struct front_mime *m, const char *file);
/* The wire's writes of the answer are done: the next chunk, or the end. */
void front_req_written(struct front_req *r);
/* The client went away: a waiting job is cancelled or detached (the
 * disconnect policy), the request logged 499 if it was under way. Safe when
 * nothing is under way. */
void front_req_gone(struct front_req *r);
/* Ready for the connection's next request (its job released). */
void front_req_reset(struct front_req *r);
/* Ends r (front_req_gone, then released); closed(wire) runs once its
 * timer is closed and r freed. */
void front_req_close(struct front_req *r, void (*closed)(void *wire));

/* The current request: */
int front_req_waiting(const struct front_req *r);   /* a synchronous job runs for it */
int front_req_answering(const struct front_req *r); /* its answer is being written */
const char *front_req_job_id(const struct front_req *r); /* NULL before a job */
/* The settings of its script's block, NULL: the global ones. */
const struct front_policy *front_req_policy(const struct front_req *r);
/* The exit status for FastCGI's END_REQUEST: the program's (128 + signal),
 * else 0 for a success and 1 for an error. */
unsigned front_req_exit_status(const struct front_req *r);
/* 102s: one more sent; the job's progress (1 and the values, or 0); the job
 * made findable by id (its id, for the Location of the first 102). */
void front_req_note_processing(struct front_req *r);
int front_req_progress(struct front_req *r, int64_t *done, int64_t *total, const char **text);
const char *front_req_expose(struct front_req *r);
/* The client took a 102 as its answer (counted). */
void front_req_misread(struct front_req *r, enum front_misread kind);
/* A connection refused before any request (counted). */
void front_refused(struct front *f, enum front_refusal why);

#endif
