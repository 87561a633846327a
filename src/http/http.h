/*
 * http: the HTTP/1.x front.
 *  - request parser (pure; parser.c is the only file that includes http_parser.h)
 *  - 102 Processing policy: which clients get interim responses (pure, policy.c)
 *  - the server: libuv listeners and connections (server.c)
 */
#ifndef CGIQ_HTTP_H
#define CGIQ_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cgi/cgi.h"
#include "util/util.h"

/* ---------------- request parser ---------------- */

struct http_limits {
	size_t max_header_bytes; /* request line + header block; beyond: 431 */
	size_t max_uri_bytes;    /* request-target; beyond: 414 */
	size_t max_headers;      /* header fields; beyond: 431 */
	uint64_t max_body_bytes; /* declared or (chunked) received body; beyond: 413 */
};

/* The parsed head of one request. Valid from HTTP_PARSE_HEADERS until the
 * next http_req_parser_reset. All strings NUL-terminated, owned by the parser. */
struct http_request {
	const char *method;         /* "GET", "POST", any token */
	const char *target;         /* request-target as received */
	const char *path;           /* path part of target, still percent-encoded */
	const char *query;          /* after '?', "" when none */
	int http_major, http_minor;
	const struct cgi_header *headers; /* in order received; values trimmed */
	size_t header_count;
	int64_t content_length;     /* -1 when none (and not chunked) */
	int chunked;                /* Transfer-Encoding: chunked */
	int keep_alive;             /* per version and Connection header */
	int expect_continue;        /* Expect: 100-continue */
};

struct http_req_parser;

/* Receives body bytes (de-chunked) as they are parsed. Returns 0, or an HTTP
 * status (e.g. 413, 507) that aborts the parse with that status. */
typedef int (*http_body_cb)(void *ud, const char *data, size_t len);

/* Allocates a parser; limits are copied. Never NULL. */
struct http_req_parser *http_req_parser_new(const struct http_limits *limits, http_body_cb on_body, void *ud);
void http_req_parser_free(struct http_req_parser *p);
/* Ready for the next request on the same connection. */
void http_req_parser_reset(struct http_req_parser *p);

enum {
	HTTP_PARSE_NEED_MORE = 0, /* all len bytes consumed, message not complete */
	HTTP_PARSE_HEADERS = 1,   /* head complete; *consumed = bytes up to and including
	                             the blank line; the request is readable. Feed the rest
	                             again to parse the body. */
	HTTP_PARSE_COMPLETE = 2,  /* message complete (body delivered through the callback);
	                             *consumed = bytes up to its end (the rest is the next
	                             request: reset, then feed) */
};

/*
 * Feeds bytes. Returns one of HTTP_PARSE_* or an HTTP error status:
 *  400 malformed (syntax, bad chunk size, Content-Length with Transfer-Encoding,
 *      conflicting Content-Length values, obs-fold, missing Host in HTTP/1.1),
 *  413 body larger than max_body_bytes, 414 URI too long,
 *  431 header block too large or too many headers,
 *  501 Transfer-Encoding other than chunked,
 *  505 HTTP version other than 1.0 / 1.1,
 *  or what the body callback returned.
 * After an error the parser must be reset before reuse. eof: feed with len 0
 * to signal the peer closed (returns 400 if a message was half-read, else 0).
 */
int http_req_parser_feed(struct http_req_parser *p, const char *data, size_t len, size_t *consumed);
const struct http_request *http_req_parser_request(const struct http_req_parser *p);
/* 1 when nothing of a request has been seen since the last reset. */
int http_req_parser_idle(const struct http_req_parser *p);

/* Finds the n-th (0-based) header named name (case-insensitive). NULL if absent. */
const char *http_request_header(const struct http_request *r, const char *name, size_t n);

/* Reason phrase for a status ("Not Found"), "Unknown" when not known. */
const char *http_reason(int status);

/* ---------------- Prefer (RFC 7240) and 102 policy ---------------- */

struct http_prefer {
	int respond_async;
	int processing;       /* draft-wright-http-progress */
	int64_t wait_s;       /* wait=N, -1 when absent */
};
/* Parses all Prefer headers of a request; malformed parts are ignored (RFC 7240 2). */
void http_prefer_parse(const struct http_request *r, struct http_prefer *out);

enum http_processing_mode {
	HTTP_PROCESSING_AUTO = 0,
	HTTP_PROCESSING_ALWAYS,
	HTTP_PROCESSING_OPT_IN,
	HTTP_PROCESSING_NEVER,
};
int http_processing_mode_parse(const char *s, enum http_processing_mode *out);

struct http_processing_decision {
	int send;            /* send 102s at all */
	unsigned max_count;  /* at most this many (0 = no cap) */
	int solicited;       /* the client asked (Prefer: processing) */
	const char *rule;    /* name of the rule that decided, for the log */
};

/*
 * Decides whether a request gets 102s. Never for HTTP/1.0 (RFC 9110 15.2).
 * configured_max (0 = no cap) is the operator's --processing-max; the result
 * is the smaller of it and the client's own limit. In auto mode, clients known
 * to mishandle 1xx (the table in policy.c, documented in the README) get none
 * or a capped number.
 */
void http_processing_decide(enum http_processing_mode mode, unsigned configured_max,
                            const struct http_request *r, const struct http_prefer *prefer,
                            struct http_processing_decision *out);

#endif
