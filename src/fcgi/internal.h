/*
 * The FastCGI front's own header: a connection and the front, shared by
 * server.c (connections, requests and answers) and listen.c (the listening
 * socket and the front's life).
 */
#ifndef CGIQ_FCGI_INTERNAL_H
#define CGIQ_FCGI_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "fcgi.h"
#include "front/front.h"

enum fphase {
	FP_IDLE,     /* between requests (or before the first) */
	FP_READING,  /* a request's records are arriving */
	FP_WAITING,  /* its job runs */
	FP_WRITING,  /* its answer is being written */
};

struct fconn {
	struct fcgi_front *f;
	struct fconn *prev, *next;
	union front_stream h;
	uv_timer_t timer;            /* read, idle and write timeouts */
	int handles_open;            /* open libuv handles and the request object; freed at 0 */
	int closing;
	struct fcgi_reader rd;
	enum fphase phase;
	uint64_t id;
	char tag[112];               /* "fastcgi conn 12 203.0.113.5" */
	int writes;                  /* uv_write requests in flight */
	struct front_req *req;       /* the request's life after its records (front/) */

	/* the request */
	unsigned req_id;
	uint64_t begun_ms;           /* its BEGIN_REQUEST arrived (the access log's request time) */
	int role, keep_conn;
	struct buf params;
	uint64_t params_total;       /* parameter bytes received, kept or not */
	size_t params_scan;          /* where the next pair whose end is not yet known starts */
	int params_done;             /* the parameters' stream ended */
	char **envp;
	struct fcgi_mapped m;
	int mapped;
	char *path;                  /* the URI's path (owned), for the job API */

	/* the answer */
	int end_written;
	int stream_body;             /* a streamed answer's body follows (fcgi_stream) */
	int failed;                  /* a write failed: the answer did not arrive */
};

struct fcgi_front {
	uv_loop_t *loop;
	struct job_engine *engine;
	struct fcgi_config cfg;
	struct front *front;         /* its requests' life (front/) */
	union front_stream lh;
	int listening;               /* lh is open */
	struct front_socket sock;    /* until start: the listening descriptor */
	struct fconn *conns;
	unsigned conn_count, busy;
	uint64_t conn_seq;
	int draining, closing, freed;
};

/* server.c */
/* What the connections do for front/ (head, body, finish, close). */
extern const struct front_wire_ops fcgi__wire_ops;
/* The listener's connection callback (data: the front). */
void fcgi__on_connection(uv_stream_t *server, int status);
/* Closes a connection (its job cancelled or detached); freed once its
 * handles are. */
void fcgi__conn_close(struct fconn *c);
/* Frees the front once it is closing and nothing of it is left open. */
void fcgi__front_maybe_free(struct fcgi_front *f);

#endif
