/*
 * fcgi: the FastCGI front (a drop-in for fcgiwrap behind nginx).
 *  - params: FastCGI parameters from the web server -> program and CGI
 *    environment, through the same sanitizer as the HTTP front (params.c,
 *    pure: no I/O but the stat(2) calls of cgi_map_path)
 *  - the record codec: FastCGI records in and out (codec.c, pure, on
 *    libfcgi's fastcgi.h)
 *  - the front: connections on the libuv loop, each request handed to the
 *    job engine on the same thread (server.c)
 *
 * Threads: none of its own; everything runs on the loop thread.
 */
#ifndef CGIQ_FCGI_H
#define CGIQ_FCGI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "cgi/cgi.h"
#include "util/util.h"

/* ---------------- params (params.c) ---------------- */

/* Where the program and its environment come from. */
struct fcgi_params_config {
	const char *cgi_root;        /* canonical absolute path, no trailing slash */
	const char *cgi_user;        /* cgiq's user, for log lines; NULL: its uid */
	/* which interpreter runs a file (struct cgi_map); NULL: none */
	const char *(*interpreter)(void *ctx, const char *script_filename);
	void *interpreter_ctx;
	const char *const *index;    /* --index names (NULL-terminated); NULL: none */
	const char *const *env;      /* --env entries (NULL-terminated), over the web server's; NULL: none */
	int pass_authorization;      /* HTTP_AUTHORIZATION reaches the program */
};

/* One request's parameters, mapped. Owned; free with fcgi_mapped_free. */
struct fcgi_mapped {
	struct cgi_target target;    /* the program (under the root) */
	struct cgi_env env;          /* its environment, built by cgi_env_build */
	char *method;                /* for the record */
	char *uri;                   /* REQUEST_URI (or SCRIPT_NAME + PATH_INFO) */
	char *peer;                  /* "REMOTE_ADDR:REMOTE_PORT" or "-" */
	int64_t content_length;      /* CONTENT_LENGTH as declared, -1 when none */
};

/*
 * Maps the web server's parameters (NULL-terminated "NAME=value" strings, as
 * libfcgi gives them) to a program and an environment.
 * The program comes from SCRIPT_FILENAME, or DOCUMENT_ROOT + SCRIPT_NAME;
 * it must lie under cfg->cgi_root and pass the same checks as a request path
 * of the HTTP front (cgi_map_path: no dot segments, no symlink out of the
 * root, executable regular file). A path beyond the file becomes PATH_INFO
 * when the web server sent none. HTTP_* parameters become request headers
 * for cgi_env_build (so HTTP_PROXY is dropped and repeats follow the HTTP
 * front's rules); the RFC 3875 variables become cgi_request fields; other
 * parameters (fastcgi_param FOO bar) are passed on unless their names are
 * unsafe for a program (LD_*, PATH, IFS, BASH_ENV, ...).
 * body_len is the number of request body bytes actually received (it becomes
 * CONTENT_LENGTH; -1 = no body).
 * Returns 0 and fills *out, or an HTTP status with *why set to a static
 * string for the log line:
 *  400 a parameter other than HTTP_* twice, or two that map to the same
 *      variable; 403 the program is outside the root or refused by
 *      cgi_map_path; 404 no such program; 500 neither SCRIPT_FILENAME nor
 *      DOCUMENT_ROOT + SCRIPT_NAME (a web server configuration error).
 * A refusal by cgi_map_path leaves out->target.why and why_access set (for
 * cgi_target_why, which names the user whose permission is missing).
 */
int fcgi_params_map(const struct fcgi_params_config *cfg, char *const *params, int64_t body_len,
                    struct fcgi_mapped *out, const char **why);
void fcgi_mapped_free(struct fcgi_mapped *m);

/* Looks a parameter up ("NAME" -> value or NULL). */
const char *fcgi_param(char *const *params, const char *name);

/* ---------------- the record codec (codec.c, pure) ---------------- */

enum fcgi_event_kind {
	FCGI_EV_NONE,          /* more bytes needed */
	FCGI_EV_BEGIN,         /* FCGI_BEGIN_REQUEST: role, keep_conn */
	FCGI_EV_ABORT,         /* FCGI_ABORT_REQUEST */
	FCGI_EV_PARAMS,        /* part of the parameters stream: data, len */
	FCGI_EV_PARAMS_END,    /* the parameters are complete */
	FCGI_EV_STDIN,         /* part of the request body: data, len */
	FCGI_EV_STDIN_END,     /* the body is complete */
	FCGI_EV_GET_VALUES,    /* a management query: data, len (name-value pairs) */
	FCGI_EV_UNKNOWN_TYPE,  /* a management record of a type not known: type */
};

struct fcgi_event {
	enum fcgi_event_kind kind;
	unsigned request_id;
	unsigned role;         /* BEGIN */
	int keep_conn;         /* BEGIN: FCGI_KEEP_CONN */
	unsigned type;         /* UNKNOWN_TYPE */
	const char *data;      /* PARAMS, STDIN (into the bytes given), GET_VALUES */
	size_t len;
};

/* Reads the records a web server sends, incrementally. */
struct fcgi_reader {
	unsigned char hdr[8];
	unsigned hdr_have;
	unsigned type, id, content_left, padding_left;
	int in_padding;
	unsigned char small[1024]; /* a BEGIN body, a management record's content */
	unsigned small_len;
	int failed;
};
void fcgi_reader_init(struct fcgi_reader *r);
/*
 * Consumes bytes of data (len of them) up to the next event: returns how many
 * were used, with *ev set (FCGI_EV_NONE: all used, more needed), or -EPROTO
 * for a record no web server may send (a version other than 1, a BEGIN body
 * that is not 8 bytes, a request record with id 0 or a management record
 * with another, an application's record type, a management record over 1
 * KiB); the reader then refuses everything. Stream events point into data.
 * Call again with the rest until it returns 0 with FCGI_EV_NONE.
 */
ssize_t fcgi_read(struct fcgi_reader *r, const char *data, size_t len, struct fcgi_event *ev);

/* One name-value pair (FastCGI 3.4) of a stream or a management record. */
struct fcgi_nv {
	const char *name, *value;
	size_t name_len, value_len;
};
/* The pair at *pos of data: 1 (and *pos past it), 0 at the end, or -EBADMSG
 * (a length past the end). */
int fcgi_nv_next(const char *data, size_t len, size_t *pos, struct fcgi_nv *out);
/* Where the pair at pos of a stream still arriving (len bytes so far) ends,
 * from its two lengths alone: 1 and *end (which may lie beyond len), or 0
 * when its lengths have not all arrived. */
int fcgi_nv_extent(const char *data, size_t len, size_t pos, uint64_t *end);
/* A whole parameters stream into NULL-terminated "NAME=value" strings (as
 * libfcgi gives them; free with fcgi_params_free). Returns 0, or -EBADMSG
 * (a malformed pair, an empty name, '=' or NUL in a name, NUL in a value). */
int fcgi_params_decode(const char *data, size_t len, char ***out);
void fcgi_params_free(char **params);

/* Writers: the records cgiq sends, appended to out. */
/* data as FCGI_STDOUT records (65,535 bytes at most each). */
void fcgi_put_stdout(struct buf *out, unsigned id, const char *data, size_t len);
/* The end of a request: with FCGI_REQUEST_COMPLETE, the empty FCGI_STDOUT
 * that ends the output first; then FCGI_END_REQUEST. */
void fcgi_put_end(struct buf *out, unsigned id, uint32_t app_status, unsigned protocol_status);
/* FCGI_UNKNOWN_TYPE for a management record of type. */
void fcgi_put_unknown_type(struct buf *out, unsigned type);
/* FCGI_GET_VALUES_RESULT for query (the name-value pairs asked): the
 * connection limit max_conns for FCGI_MAX_CONNS and FCGI_MAX_REQS (left out
 * when 0: no limit), 0 for FCGI_MPXS_CONNS (no multiplexing), nothing for
 * names not known. */
void fcgi_put_values(struct buf *out, const char *query, size_t len, unsigned max_conns);

/* ---------------- the front (server.c) ---------------- */

struct job_engine;
struct front_access_log;
struct front_counters;

struct fcgi_config {
	struct fcgi_params_config params;
	unsigned threads;            /* --fastcgi-threads: accepted for old command lines, unused */
	unsigned socket_mode;        /* unix socket permissions, e.g. 0660 */
	const char *socket_owner;    /* "user", "user:group", ":group" or NULL */
	const char *const *allow;    /* TCP peers allowed (IP literals), NULL-terminated;
	                                NULL or empty = loopback only */
	size_t max_params_bytes;     /* names + values of one request; beyond: connection closed */
	unsigned max_connections;    /* --max-connections: beyond, a request is answered 503 (0 = no cap) */
	uint64_t read_timeout_ms;    /* a read or write on a connection waits at most this (0 = forever) */
	uint64_t idle_timeout_ms;    /* a kept connection waits this long for its next request (0 = forever) */
	uint64_t max_body_bytes;     /* request body; beyond: 413 */
	size_t body_mem_bytes;       /* bodies beyond this are spooled to a file */
	const char *spool_dir;
	const char *jobs_prefix;     /* the job API (status, result, DELETE), e.g. "/_cgiq/jobs" */
	int detach_on_disconnect;    /* the web server gone: the job goes on (else cancelled) */
	uint64_t max_wait_ms;        /* Prefer: wait=N is clamped to this */
	const char *accel_prefix;    /* X-Accel-Redirect: kept results are served by nginx from
	                                PREFIX/<file> (an internal location on the spool); NULL = off */
	struct front_access_log *access_log;  /* one line per request, NULL = off */
	struct front_counters *counters; /* this front's counters, NULL = none */
};

struct fcgi_front;

/* Creates the front on loop (not yet listening); jobs go to engine. Config
 * strings must outlive it. Returns 0 or a negative errno. */
int fcgi_front_open(uv_loop_t *loop, struct job_engine *engine, const struct fcgi_config *cfg,
                    struct fcgi_front **out);

/*
 * Listens on "unix:/path", "127.0.0.1:9000", "[::1]:9000" or "inherit" (a
 * socket passed by systemd, LISTEN_FDS/LISTEN_PID, or by spawn-fcgi as fd 0),
 * or "fd:N" (socket N passed by systemd, chosen by its name; -ENOTSOCK when
 * it is not a listening socket)
 * Once per front. Returns 0, -EINVAL (bad address, or "inherit" with nothing
 * inherited), or a negative errno from socket/bind/listen/chown.
 */
int fcgi_front_listen(struct fcgi_front *f, const char *addr);

/* Starts accepting on the loop; separate from fcgi_front_listen so that the
 * daemon drops its privileges in between. Once, after a listen. Logs
 * "fastcgi on ADDR". Returns 0 or a negative errno. */
int fcgi_front_start(struct fcgi_front *f);

/*
 * Graceful shutdown: no new connection is accepted and no new request is
 * started (a connection kept open by the web server is ended); requests
 * under way are served to their end (a new job among them gets 503, the
 * engine drains too). Safe twice and with NULL. Then fcgi_front_close.
 */
void fcgi_front_drain(struct fcgi_front *f);
/* Requests being read, run or written now (0 for NULL). */
unsigned fcgi_front_busy(struct fcgi_front *f);

/*
 * Stops: the listening socket is closed (a unix socket it created is
 * removed), every connection is closed (call right after job_engine_close,
 * which ended the running jobs), and the front frees itself once its handles
 * are closed. Safe twice and with NULL.
 */
void fcgi_front_close(struct fcgi_front *f);

/* 1 when this process was given a listening socket to serve FastCGI on
 * (systemd socket activation, or spawn-fcgi's fd 0), else 0. */
int fcgi_inherited_socket(void);

#endif
