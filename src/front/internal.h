/*
 * front/'s own: a front and a request's state, shared by request.c (the
 * request's life) and static.c (static files).
 */
#ifndef CGIQ_FRONT_INTERNAL_H
#define CGIQ_FRONT_INTERNAL_H

#include "front.h"
#include "jobs/jobs.h"

/* RFC 3875 6.2.2 local redirects followed for one request. */
#define MAX_LOCAL_REDIRECTS 5

struct front {
	uv_loop_t *loop;
	struct front_config cfg;
	unsigned conns;     /* request objects (connections) */
	unsigned refusing;  /* of those, over --max-connections */
	int store_down;     /* synchronous jobs are refused: the job store cannot be written */
};

struct front_req {
	struct front *f;
	void *wire;
	const char *tag;
	uv_timer_t wait_timer;   /* Prefer: wait */
	int refused;             /* over --max-connections */
	void (*closed)(void *wire);

	/* the request */
	struct front_req_info info;
	int begun;
	uint64_t started_ms;
	struct buf body;
	int body_fd;
	uint64_t body_len;
	int body_status;
	int api;
	char api_id[UTIL_ID_LEN + 1];
	struct job_stored_result stored;

	/* its job */
	struct job *job;
	const struct job_script_rule *rule;
	int async;
	int waiting;             /* a job runs and the answer waits for it */
	int redirects;
	unsigned processing_sent;
	int refusal;             /* an enum front_refusal for the counters, -1: from the status */

	/* a streamed answer (--stream): its head went out, its body comes as
	 * the program writes it; paused: the program waits for the client;
	 * stream_end: FRONT_STREAM_END or _CUT handed to the wire, -1 before */
	int streaming, stream_paused, stream_end;

	/* its answer */
	int answering;
	int status;
	uint64_t bytes;
	unsigned exit_status;
	int file_fd;             /* a body streamed from [file_off, file_end) */
	int static_fd;           /* a static file's, closed at the reset */
	uint64_t file_off, file_end;
	char *chunk;
};

#endif
