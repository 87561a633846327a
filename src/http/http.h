/*
 * http: the HTTP/1.x front.
 *  - request parser (pure; parser.c is the only file that includes http_parser.h)
 *  - 102 Processing policy: which clients get interim responses (pure, policy.c)
 *  - the server: libuv listeners and connections (server.c)
 */
#ifndef CGIQ_HTTP_H
#define CGIQ_HTTP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

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

/* r in one allocation (free() it): its strings and fields, nothing of the
 * parser. Never NULL. */
struct http_request *http_request_copy(const struct http_request *r);

/* Finds the n-th (0-based) header named name (case-insensitive). NULL if absent. */
const char *http_request_header(const struct http_request *r, const char *name, size_t n);

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

/* A row's max: no limit of the client's own. */
#define HTTP_PROCESSING_UNLIMITED UINT_MAX

/* One client known to handle unsolicited 102s (the table in policy.c), or an
 * operator's row (--processing-client). */
struct http_processing_client {
	const char *user_agent;   /* glob on the User-Agent ('*': any run), case-insensitive */
	const char *with_header;  /* and this header is present; NULL = no such condition */
	unsigned max;             /* 102s it tolerates: 0 = none, HTTP_PROCESSING_UNLIMITED */
	const char *name;         /* rule name, as in decision.rule */
	const char *version;      /* the versions checked */
	const char *evidence;     /* the test (or the recorded check) that showed it */
};

/* Sets *out (NULL allowed) to the built-in allow-list; returns its length. */
size_t http_processing_clients(const struct http_processing_client **out);
/* 1 when a decision's rule is a row of the built-in table: a client checked
 * to handle 102s (one that closes right after a 102 was most likely stopped
 * by its user, not confused). */
int http_processing_rule_checked(const char *rule);
/* The header names that mark a request relayed by a proxy. */
size_t http_processing_proxy_markers(const char *const **out);
/* "PATTERN MAX" (MAX: a number, none or unlimited) into *out, the pattern
 * copied into pattern[pattern_size] (out->user_agent points there). 0, or
 * -EINVAL with *why. */
int http_processing_client_parse(const char *spec, struct http_processing_client *out, char *pattern,
                                 size_t pattern_size, const char **why);
/* The port a Host header value names: its own, 80 when it has none (cgiq
 * speaks plain HTTP), 0 when host is NULL, empty or malformed. */
unsigned http_host_port(const char *host);
/* 1 when s matches pattern: '*' is any run of bytes, ASCII case folded. */
int http_glob_match(const char *pattern, const char *s);

/* A peer declared to relay 102s faithfully (--processing-relay): an address
 * with a prefix length, or any unix-socket peer. */
struct http_relay {
	int family;               /* AF_INET, AF_INET6, AF_UNIX */
	unsigned char addr[16];
	unsigned bits;
};
/* "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8" or "unix". 0 or -EINVAL. */
int http_relay_parse(const char *s, struct http_relay *out);
/* 1 when the peer (numeric address text, or a unix-socket peer) is one of relays. */
int http_relay_match(const struct http_relay *relays, size_t n, const char *peer, int is_unix);

/* What the decision needs beyond the request (NULL = none of it). */
struct http_processing_context {
	const struct http_processing_client *extra; /* operator rows, looked at before the table */
	size_t extra_count;
	int from_relay;      /* the peer is a declared relay: proxy signs do not count */
	int local_port;      /* port the request arrived on, 0 for a unix socket,
	                        -1: unknown (the Host check is skipped) */
	int misread;         /* this User-Agent was seen misreading a 102 (evidence) */
};

/*
 * Decides whether a request gets 102s. Never for HTTP/1.0 (RFC 9110 15.2).
 * configured_max (0 = no cap) is the operator's --processing-max; the result
 * is the smaller of it and the client's own limit. In auto mode only a
 * request with Prefer: processing, or from a client on the allow-list (the
 * operator's rows first, then the table in policy.c; the first match
 * decides), gets them, and none when the request looks relayed by a proxy
 * (a proxy header, a Host naming another port, Connection: close; unless
 * from a declared relay), has no User-Agent, or its User-Agent was seen
 * misreading one.
 */
void http_processing_decide(enum http_processing_mode mode, unsigned configured_max,
                            const struct http_request *r, const struct http_prefer *prefer,
                            const struct http_processing_context *ctx,
                            struct http_processing_decision *out);

/*
 * Evidence that a User-Agent misread a 102 (evidence.c): it got unsolicited
 * 102s, then sent a new request before the final response, or closed right
 * after one. Such a User-Agent gets no unsolicited 102s until its entry
 * expires. Kept in a small text file (one "UNTIL-EPOCH<TAB>USER-AGENT" line
 * each), rewritten whole through a temporary file and rename; at most
 * HTTP_EVIDENCE_MAX entries, the one expiring first makes room. Used by the
 * loop thread only.
 */
#define HTTP_EVIDENCE_MAX 256
#define HTTP_EVIDENCE_UA_MAX 255
struct http_evidence;
/* path NULL: in memory only. A missing file is an empty table; unreadable
 * lines are skipped with one warning. */
struct http_evidence *http_evidence_open(const char *path, uint64_t ttl_s);
void http_evidence_free(struct http_evidence *ev);
/* 1 when ua has an entry that has not expired at now. */
int http_evidence_has(const struct http_evidence *ev, const char *ua, time_t now);
/* Records ua until now + ttl and rewrites the file; 0 or a negative errno
 * (the table in memory is updated either way). */
int http_evidence_add(struct http_evidence *ev, const char *ua, time_t now);
/* Entries that have not expired at now. */
size_t http_evidence_count(const struct http_evidence *ev, time_t now);
uint64_t http_evidence_ttl_s(const struct http_evidence *ev);
/* Forgets the table and reads the file again (SIGHUP): deleting the file
 * and sending SIGHUP resets the evidence. NULL allowed. */
void http_evidence_reload(struct http_evidence *ev);

/*
 * Details of http_req_parser_feed the server relies on (parser.c):
 *  - HEADERS: *consumed is the exact head length (blank line included). For a
 *    request without body (no Content-Length or 0, not chunked) the message is
 *    already complete: the next feed returns COMPLETE with *consumed = 0, also
 *    when it is given no bytes. So after HEADERS always feed "the rest", even
 *    an empty rest: a len 0 feed right after HEADERS is not an EOF (it returns
 *    COMPLETE or NEED_MORE); any later len 0 feed is.
 *  - COMPLETE: *consumed ends exactly at the message end; the request stays
 *    readable and further feeds return COMPLETE with *consumed = 0 until
 *    http_req_parser_reset.
 *  - An error status is sticky (*consumed = 0) until the reset.
 *  - http_req_parser_request is NULL until HEADERS.
 *  - Also answered: 400 for more than one Host, an invalid Host, "*" but with
 *    OPTIONS, a fragment or whitespace/CTL in the target, a field name that is
 *    not a token, a CTL in a value, Transfer-Encoding in HTTP/1.0 or twice;
 *    501 for CONNECT; 505 for HTTP/0.9. Expect: 100-continue from HTTP/1.0 is
 *    ignored (RFC 9110 10.1.1). Trailers of chunked bodies are dropped.
 *  - Methods are those http-parser knows (others: 400).
 */

/* ---------------- server (server.c) ---------------- */

struct job_engine;
struct front_counters;
struct front_access_log;

struct http_server_config {
	unsigned unix_mode;              /* permissions of unix: listeners, e.g. 0660; 0 = as bound */
	const char *cgi_root;            /* canonical absolute path */
	const char *cgi_prefix;          /* "/" or "/cgi-bin" */
	const char *cgi_user;            /* cgiq's user, for log lines; NULL: its uid */
	/* which interpreter runs a file (struct cgi_map); NULL: none */
	const char *(*interpreter)(void *ctx, const char *script_filename);
	void *interpreter_ctx;
	const char *const *index;        /* --index names (NULL-terminated); NULL: none */
	const char *const *static_patterns; /* --static (NULL-terminated); NULL: none */
	const struct front_mime *mime;   /* their types (front_mime_load) */
	const char *const *env;          /* --env entries (NULL-terminated); NULL: none */
	struct http_limits limits;
	enum http_processing_mode processing_mode;
	uint64_t processing_after_ms;
	uint64_t processing_interval_ms;
	unsigned processing_max;         /* 0 = no cap */
	const struct http_processing_client *processing_clients; /* --processing-client rows */
	size_t processing_client_count;
	const struct http_relay *processing_relays;   /* --processing-relay peers */
	size_t processing_relay_count;
	struct http_evidence *processing_evidence;    /* misread evidence; NULL = none kept */
	uint64_t header_timeout_ms;      /* whole head must arrive within this: 408 */
	uint64_t body_timeout_ms;        /* no body byte for this long: 408 */
	uint64_t body_min_rate;          /* bytes/s a body must average once it took body_timeout_ms; 0 = any */
	uint64_t idle_timeout_ms;        /* keep-alive connection with no request: closed */
	size_t body_mem_bytes;           /* request bodies beyond this are spooled to a file */
	const char *spool_dir;
	int pass_authorization;
	unsigned max_connections;        /* beyond: accepted and closed at once (503) */
	const char *jobs_prefix;         /* "/_cgiq/jobs": status monitor and results */
	uint64_t max_wait_ms;            /* Prefer: wait=N is clamped to this */
	int detach_on_disconnect;        /* client gone: the job goes on, result kept */
	/* observability (NULL / 0 = off) */
	struct front_access_log *access_log;       /* one line per request */
	struct front_counters *counters;      /* this front's counters */
	int admin;                                /* an admin listener: /metrics, /health, /jobs only */
	const struct front_counters *fronts;  /* admin: every front's counters, FRONT_COUNT */
};

struct http_server;

/* Creates the front on loop; jobs go to engine. Config strings must outlive it. */
int http_server_open(uv_loop_t *loop, struct job_engine *engine, const struct http_server_config *cfg,
                     struct http_server **out);
/*
 * Listens on "127.0.0.1:8080", "[::1]:8080" or "unix:/path" (port 0 picks a
 * free port), or on "fd:N", a listening socket passed by systemd (-ENOTSOCK
 * when fd N is not one). Logs "listening on ADDR" with the real address. Returns 0 or a
 * negative errno / libuv code (-EINVAL for an address it cannot read).
 */
int http_server_listen(struct http_server *s, const char *addr);
/*
 * Graceful shutdown: stops listening, closes idle keep-alive connections; a
 * request already under way is answered (one that needs a new job gets 503,
 * the engine is draining too) and every connection is closed after its
 * current response. Safe twice. Then http_server_close.
 */
void http_server_drain(struct http_server *s);
/* Connections open now (0 for NULL): the drain waits for 0. */
unsigned http_server_connections(const struct http_server *s);
/* Stops listening and closes every connection (cancelling their jobs); the
 * server frees itself once all handles are closed. */
void http_server_close(struct http_server *s);

#endif
