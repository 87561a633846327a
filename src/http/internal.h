/*
 * The HTTP front's own header: its connection, listener and server, shared by
 * server.c (a request's life on a connection), accept.c (listening and
 * accepting) and processing.c (102 Processing and the misread guard).
 */
#ifndef CGIQ_HTTP_INTERNAL_H
#define CGIQ_HTTP_INTERNAL_H

#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "http.h"
#include "front/front.h"

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
	uv_timer_t timer;   /* head / body / idle deadline; the 102s while a job runs; the linger */
	int handles_open;
	enum conn_phase phase;
	int reading;
	int head_started;   /* a byte of the current request has arrived */
	int served;         /* requests answered on this connection */

	/* Its names, in one allocation (names) sized to them: */
	const char *tag;         /* for logs: "conn 17 127.0.0.1:53211" */
	const char *peer;        /* for the record: "127.0.0.1:53211" */
	const char *remote_addr; /* numeric */
	const char *local_addr;
	char *names;
	unsigned remote_port, local_port;
	int is_unix;

	/* The request: parsed by parser, or, while its job runs, kept (a
	 * compact copy; the parser and the input buffer's room are given back
	 * until the next request). */
	struct http_req_parser *parser;
	struct http_request *kept;
	struct buf in;
	struct front_req *req;   /* the request's life after its head (front/) */

	/* the request being served */
	int is_head;
	int http10;
	int keep_alive;
	char protocol[16];       /* "HTTP/1.1", for the access log */
	struct cgi_target target;
	int have_target;
	int has_body;
	struct http_processing_decision pd;
	struct http_prefer prefer;
	unsigned sent_102;
	uint64_t last_102_ms;    /* when the last 102 was queued */
	uint64_t next_102_ms;    /* the loop time the next one is due */
	uint64_t interval_102_ms;
	int close_after;
	int chunked;             /* the answer's body goes in chunks (a streamed one, to HTTP/1.1) */
	int linger;              /* after the answer: shut down writing, drain what the client sends */
	int lingering;           /* doing so (LINGER_MS at most), then closed */
	size_t lingered_bytes;
	uint64_t started_ms;     /* the head arrived: --body-min-rate counts from here */

	unsigned writes_pending;
};

struct http_server {
	uv_loop_t *loop;
	struct job_engine *engine;
	struct http_server_config cfg;
	struct front *front;       /* its requests' life (front/) */
	struct listener *listeners;
	struct conn *conns;
	unsigned conn_count;
	int closing;
	int draining;        /* http_server_drain: no new connection, no keep-alive */
	unsigned handles_open;
	/* Out of descriptors: accepting pauses until some are free again. */
	uv_timer_t accept_timer;   /* retries while paused */
	int accept_paused;
	int nofile_limit;          /* RLIMIT_NOFILE (soft) at start */
	int nofile_headroom;       /* pause when fewer descriptors than this are left */
	/* The Date header of the second date_sec (server.c, loop thread). */
	time_t date_sec;
	char date[40];
	/* A connection was freed (accept.c: accepting again after a pause). */
	void (*on_conn_freed)(struct http_server *s);
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	char *owned;
};

/* server.c */
/* The request being served (parsed, or kept while its job runs); NULL
 * before a head. */
const struct http_request *http__conn_request(const struct conn *c);
/* What the connections do for front/ (head, body, finish, close, redirect). */
extern const struct front_wire_ops http__wire_ops;
void http__conn_close(struct conn *c);
/* Reads and serves what the connection has buffered; loop thread. */
void http__conn_process(struct conn *c);
/* The short error page of status; close_after: then the connection closes. */
void http__conn_send_error(struct conn *c, int status, int close_after);
void http__on_conn_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b);
/* Queues len bytes in order; owned (or NULL) is freed once written. */
int http__conn_write(struct conn *c, const char *data, size_t len, char *owned);
/* The request parser's body callback (ud: the connection). */
int http__on_body(void *ud, const char *data, size_t len);

/* Frees the server once it is closing and nothing of it is left open. */
void http__server_maybe_free(struct http_server *s);

/* processing.c */
/* The 102 the connection is due: *owned NULL (static bytes) or the bytes to
 * free once written. */
void http__processing_message(struct conn *c, const char **data, size_t *len, char **owned);
/* Whether the client has had unsolicited 102s before its final response. */
int http__misread_risk(const struct conn *c);
/* Bytes that are only CR and LF (no request, RFC 9112 2.2). */
int http__only_line_breaks(const char *p, size_t n);
/* The client took a 102 as its answer: logged, counted, its User-Agent remembered. */
void http__conn_misread(struct conn *c, enum front_misread kind);

#endif
