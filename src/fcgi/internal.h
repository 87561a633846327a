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
#include "jobs/jobs.h"

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
	uv_timer_t wait_timer;       /* Prefer: wait */
	int handles;                 /* open libuv handles; freed at 0 */
	int closing;
	struct fcgi_reader rd;
	enum fphase phase;
	uint64_t id;
	char tag[112];               /* "conn 12 203.0.113.5" */
	int writes;                  /* uv_write requests in flight */
	int counted;                 /* in the front's connection count */
	int refusing;                /* beyond --max-connections: its request gets 503 */

	/* the request */
	unsigned req_id;
	int role, keep_conn;
	struct buf params;
	uint64_t params_total;       /* parameter bytes received, kept or not */
	struct buf body;
	int body_fd;
	uint64_t body_len;
	int body_over;               /* beyond --max-body-bytes: 413 */
	char **envp;
	struct fcgi_mapped m;
	int mapped;
	uint64_t t0;
	struct job *job;
	const struct job_script_rule *rule; /* its script's settings, looked up once */
	int waiting, async;
	int64_t wait_ms, job_ms;
	int queue_full;
	char job_id[UTIL_ID_LEN + 1];
	char api_id[UTIL_ID_LEN + 1];
	struct job_stored_result stored;

	/* the answer */
	int status;                  /* HTTP status, for the log line and the counters */
	uint64_t body_bytes;
	uint32_t app_status;
	int file_fd;                 /* streamed a chunk at a time: [file_off, file_end) */
	uint64_t file_off, file_end;
	int end_written;
	int failed;                  /* a write failed: the answer did not arrive */
};

struct fcgi_front {
	uv_loop_t *loop;
	struct job_engine *engine;
	struct fcgi_config cfg;
	union front_stream lh;
	int listening;               /* lh is open */
	struct front_socket sock;    /* until start: the listening descriptor */
	struct fconn *conns;
	unsigned conn_count, busy, refusing;
	uint64_t conn_seq;
	int draining, closing, freed;
};

/* server.c */
/* The listener's connection callback (data: the front). */
void fcgi__on_connection(uv_stream_t *server, int status);
/* Closes a connection (its job cancelled or detached); freed once its
 * handles are. */
void fcgi__conn_close(struct fconn *c);
/* Frees the front once it is closing and nothing of it is left open. */
void fcgi__front_maybe_free(struct fcgi_front *f);

#endif
