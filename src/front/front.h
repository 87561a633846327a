/*
 * front: what both fronts (HTTP in http/, FastCGI in fcgi/) share, whatever
 * their wire protocol: answers (reason phrases, error pages, the 202
 * document, the job API) and the access log. The fronts are adapters of
 * their wire protocols onto it.
 */
#ifndef CGIQ_FRONT_H
#define CGIQ_FRONT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <uv.h>

#include "util/util.h"

struct front_access_log;
struct job_engine;
struct job_stored_result;

/* ---------------- answers (answer.c) ---------------- */

/* Reason phrase for a status ("Not Found"), "Unknown" when not known. */
const char *front_reason(int status);
/* Whether an answer with this status has a body (not 1xx, 204, 304). */
int front_status_has_body(int status);

/*
 * An answer. A front writes its status line its own way ("HTTP/1.1 200 OK",
 * "Status: 200 OK"), then headers, then Content-Length (front_answer_body_len)
 * when front_status_has_body, then the body: body in memory, or len bytes of
 * fd from off (fd borrowed; -1 = none).
 */
struct front_answer {
	int status;
	char reason[128];      /* "": front_reason(status) */
	struct buf headers;    /* "Name: value\r\n" lines */
	struct buf body;
	int fd;
	uint64_t off, len;
};
void front_answer_init(struct front_answer *a, int status);
void front_answer_free(struct front_answer *a);
const char *front_answer_reason(const struct front_answer *a);
uint64_t front_answer_body_len(const struct front_answer *a);
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

#endif
