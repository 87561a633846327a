/*
 * http: the request parser (parser.c) and the Prefer / 102 policy (policy.c),
 * through http.h only.
 */
#include <CUnit/Basic.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "util/util.h"

/* ---------------- helpers ---------------- */

struct sink {
	struct buf body;
	int calls;
	int fail_status; /* returned once body holds at least fail_after bytes */
	size_t fail_after;
};

static int sink_cb(void *ud, const char *data, size_t len)
{
	struct sink *s = ud;

	s->calls++;
	CU_ASSERT_FATAL(buf_append(&s->body, data, len) == 0);
	if (s->fail_status && s->body.len >= s->fail_after)
		return s->fail_status;
	return 0;
}

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->body, 1 << 20);
}

static struct http_limits limits(void)
{
	return (struct http_limits){
		.max_header_bytes = 8192,
		.max_uri_bytes = 1024,
		.max_headers = 50,
		.max_body_bytes = 1 << 16,
	};
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* Feeds a whole buffer the way a connection does: after HEADERS feed the
 * rest; stops at COMPLETE, NEED_MORE with nothing left, or an error. *used
 * gets the bytes consumed in total. */
static int drive(struct http_req_parser *p, const char *d, size_t len, size_t *used)
{
	size_t off = 0, c;
	int r;

	for (;;) {
		c = 12345;
		r = http_req_parser_feed(p, d + off, len - off, &c);
		if (r == HTTP_PARSE_HEADERS || r == HTTP_PARSE_NEED_MORE || r == HTTP_PARSE_COMPLETE) {
			CU_ASSERT(c <= len - off);
		} else {
			c = 0;
		}
		off += c;
		if (r == HTTP_PARSE_HEADERS)
			continue;
		if (r == HTTP_PARSE_NEED_MORE && off < len)
			continue;
		break;
	}
	if (used)
		*used = off;
	return r;
}

/* Parses one message with default limits; returns the final result. */
static int parse_status(const char *d, size_t len)
{
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	int r = drive(p, d, len, NULL);
	http_req_parser_free(p);
	return r;
}

static int parse_status_limits(const struct http_limits *l, const char *d, size_t len)
{
	struct http_req_parser *p = http_req_parser_new(l, NULL, NULL);
	int r = drive(p, d, len, NULL);
	http_req_parser_free(p);
	return r;
}

/* ---------------- parser ---------------- */

/* A request kept while its job runs: the copy holds everything, the parser
 * can go (and its bytes be overwritten). */
static void test_request_copy(void)
{
	static const char req[] = "POST /cgi/x.pl/a?q=1 HTTP/1.1\r\nHost: example.com\r\n"
	                          "User-Agent: curl/8.5.0\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n";
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	struct http_request *c;
	size_t used;

	CU_ASSERT_EQUAL_FATAL(http_req_parser_feed(p, S(req), &used), HTTP_PARSE_HEADERS);
	c = http_request_copy(http_req_parser_request(p));
	http_req_parser_reset(p);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("GET /other HTTP/1.1\r\nHost: zz\r\n\r\n"), &used),
	                HTTP_PARSE_HEADERS);
	http_req_parser_free(p);
	CU_ASSERT_STRING_EQUAL(c->method, "POST");
	CU_ASSERT_STRING_EQUAL(c->target, "/cgi/x.pl/a?q=1");
	CU_ASSERT_STRING_EQUAL(c->path, "/cgi/x.pl/a");
	CU_ASSERT_STRING_EQUAL(c->query, "q=1");
	CU_ASSERT_EQUAL(c->http_minor, 1);
	CU_ASSERT_EQUAL(c->content_length, 0);
	CU_ASSERT_EQUAL_FATAL(c->header_count, 4);
	CU_ASSERT_STRING_EQUAL(http_request_header(c, "user-agent", 0), "curl/8.5.0");
	CU_ASSERT_STRING_EQUAL(http_request_header(c, "X-Empty", 0), "");
	CU_ASSERT_EQUAL(c->headers[0].name_len, 4);
	CU_ASSERT_EQUAL(c->headers[0].value_len, 11);
	free(c);
}

static void test_simple_get(void)
{
	static const char req[] = "GET /cgi/x.pl/a%20b?x=1&y=%2F HTTP/1.1\r\n"
	                          "Host: example.com\r\n"
	                          "User-Agent: \t curl/8.5.0 \t\r\n"
	                          "Accept:*/*\r\n"
	                          "X-Empty:\r\n"
	                          "\r\n";
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	const struct http_request *r;
	size_t c = 99;

	CU_ASSERT(http_req_parser_idle(p));
	CU_ASSERT_PTR_NULL(http_req_parser_request(p));
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S(req), &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, sizeof(req) - 1);
	CU_ASSERT(!http_req_parser_idle(p));
	r = http_req_parser_request(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->method, "GET");
	CU_ASSERT_STRING_EQUAL(r->target, "/cgi/x.pl/a%20b?x=1&y=%2F");
	CU_ASSERT_STRING_EQUAL(r->path, "/cgi/x.pl/a%20b");
	CU_ASSERT_STRING_EQUAL(r->query, "x=1&y=%2F");
	CU_ASSERT_EQUAL(r->http_major, 1);
	CU_ASSERT_EQUAL(r->http_minor, 1);
	CU_ASSERT_EQUAL_FATAL(r->header_count, 4);
	CU_ASSERT_STRING_EQUAL(r->headers[0].name, "Host");
	CU_ASSERT_EQUAL(r->headers[0].name_len, 4);
	CU_ASSERT_STRING_EQUAL(r->headers[0].value, "example.com");
	CU_ASSERT_EQUAL(r->headers[0].value_len, 11);
	CU_ASSERT_STRING_EQUAL(r->headers[1].name, "User-Agent");
	CU_ASSERT_STRING_EQUAL(r->headers[1].value, "curl/8.5.0");
	CU_ASSERT_EQUAL(r->headers[1].value_len, 10);
	CU_ASSERT_STRING_EQUAL(r->headers[2].name, "Accept");
	CU_ASSERT_STRING_EQUAL(r->headers[2].value, "*/*");
	CU_ASSERT_STRING_EQUAL(r->headers[3].name, "X-Empty");
	CU_ASSERT_STRING_EQUAL(r->headers[3].value, "");
	CU_ASSERT_EQUAL(r->headers[3].value_len, 0);
	CU_ASSERT_EQUAL(r->content_length, -1);
	CU_ASSERT_EQUAL(r->chunked, 0);
	CU_ASSERT_EQUAL(r->keep_alive, 1);
	CU_ASSERT_EQUAL(r->expect_continue, 0);
	CU_ASSERT_STRING_EQUAL(http_request_header(r, "user-agent", 0), "curl/8.5.0");
	CU_ASSERT_PTR_NULL(http_request_header(r, "Host", 1));
	CU_ASSERT_PTR_NULL(http_request_header(r, "Cookie", 0));

	/* no body: the next feed (even of nothing) completes it, consuming nothing */
	c = 99;
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 0);
	/* the request stays readable until the reset; feeding again changes nothing */
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("GET"), &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 0);
	CU_ASSERT_PTR_EQUAL(http_req_parser_request(p), r);
	CU_ASSERT_STRING_EQUAL(r->path, "/cgi/x.pl/a%20b");
	http_req_parser_reset(p);
	CU_ASSERT(http_req_parser_idle(p));
	CU_ASSERT_PTR_NULL(http_req_parser_request(p));
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 0); /* clean EOF */
	http_req_parser_free(p);
	http_req_parser_free(NULL);
}

static void test_pipelined(void)
{
	static const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"          /* 28 */
	                          "POST /b?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz" /* 50 + 3 */
	                          "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";          /* 28 */
	struct sink s;
	struct http_limits l = limits();
	struct http_req_parser *p;
	size_t off = 0, c;

	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, sizeof(two) - 1 - off, &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, 28);
	off += c;
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->path, "/a");
	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, sizeof(two) - 1 - off, &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 0);
	http_req_parser_reset(p);

	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, sizeof(two) - 1 - off, &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, 50);
	off += c;
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->method, "POST");
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->query, "q");
	CU_ASSERT_EQUAL(http_req_parser_request(p)->content_length, 3);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, sizeof(two) - 1 - off, &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 3);
	off += c;
	CU_ASSERT_EQUAL(s.body.len, 3);
	CU_ASSERT_STRING_EQUAL(s.body.data, "xyz");
	http_req_parser_reset(p);

	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, sizeof(two) - 1 - off, &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, 28);
	off += c;
	CU_ASSERT_EQUAL(off, sizeof(two) - 1);
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->path, "/c");
	CU_ASSERT_EQUAL(http_req_parser_feed(p, two + off, 0, &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 0);
	http_req_parser_reset(p);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 0);
	http_req_parser_free(p);
	buf_free(&s.body);
}

/* Leading empty lines before a request are ignored (RFC 9112 2.2). */
static void test_leading_crlf(void)
{
	static const char req[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	size_t c;

	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("\r\n"), &c), HTTP_PARSE_NEED_MORE);
	CU_ASSERT(http_req_parser_idle(p));
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 0);
	http_req_parser_reset(p);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S(req), &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, sizeof(req) - 1);
	http_req_parser_free(p);
}

static void test_byte_by_byte(void)
{
	static const char req[] = "POST /up?a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"
	                          "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t head_len = strstr(req, "\r\n\r\n") + 4 - req;
	size_t end1 = head_len + 5;
	struct sink s;
	struct http_limits l = limits();
	struct http_req_parser *p;
	size_t i, c;
	int r, saw_headers = 0;

	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	for (i = 0; i < end1; i++) {
		r = http_req_parser_feed(p, req + i, 1, &c);
		CU_ASSERT_EQUAL(c, 1);
		if (i + 1 == head_len) {
			CU_ASSERT_EQUAL(r, HTTP_PARSE_HEADERS);
			saw_headers = 1;
		} else if (i + 1 == end1) {
			CU_ASSERT_EQUAL(r, HTTP_PARSE_COMPLETE);
		} else {
			CU_ASSERT_EQUAL(r, HTTP_PARSE_NEED_MORE);
		}
	}
	CU_ASSERT(saw_headers);
	CU_ASSERT_EQUAL(s.body.len, 5);
	CU_ASSERT_STRING_EQUAL(s.body.data, "hello");
	CU_ASSERT_EQUAL(s.calls, 5);
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->path, "/up");
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->query, "a=b");
	CU_ASSERT_STRING_EQUAL(http_request_header(http_req_parser_request(p), "X-A", 0), "1");
	http_req_parser_reset(p);

	/* the second request, byte by byte: HEADERS on the last byte, then COMPLETE on nothing */
	for (; i < sizeof(req) - 1; i++) {
		r = http_req_parser_feed(p, req + i, 1, &c);
		CU_ASSERT_EQUAL(c, 1);
		CU_ASSERT_EQUAL(r, i + 2 == sizeof(req) ? HTTP_PARSE_HEADERS : HTTP_PARSE_NEED_MORE);
	}
	CU_ASSERT_STRING_EQUAL(http_req_parser_request(p)->path, "/next");
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), HTTP_PARSE_COMPLETE);
	http_req_parser_free(p);
	buf_free(&s.body);
}

static void test_post_body(void)
{
	static const char req[] = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789EXTRA";
	size_t head_len = sizeof(req) - 1 - 15;
	struct sink s;
	struct http_limits l = limits();
	struct http_req_parser *p;
	size_t c;

	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, req, head_len + 4, &c), HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(c, head_len);
	CU_ASSERT_EQUAL(http_req_parser_request(p)->content_length, 10);
	CU_ASSERT_EQUAL(s.calls, 0);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, req + head_len, 4, &c), HTTP_PARSE_NEED_MORE);
	CU_ASSERT_EQUAL(c, 4);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, req + head_len + 4, 11, &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, 6);
	CU_ASSERT_EQUAL(s.body.len, 10);
	CU_ASSERT_EQUAL(memcmp(s.body.data, "0123456789", 10), 0);
	http_req_parser_free(p);
	buf_free(&s.body);

	/* Content-Length: 0 completes at once */
	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(drive(p, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), &c),
	                HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(http_req_parser_request(p)->content_length, 0);
	CU_ASSERT_EQUAL(s.calls, 0);
	http_req_parser_free(p);
	buf_free(&s.body);
}

static void test_body_callback_abort(void)
{
	static const char req[] = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
	struct sink s;
	struct http_limits l = limits();
	struct http_req_parser *p;
	size_t c;

	sink_init(&s);
	s.fail_status = 507;
	s.fail_after = 1;
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(drive(p, S(req), &c), 507);
	/* the error is sticky until a reset */
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("x"), &c), 507);
	CU_ASSERT_EQUAL(c, 0);
	http_req_parser_reset(p);
	s.fail_status = 0;
	buf_reset(&s.body);
	CU_ASSERT_EQUAL(drive(p, S(req), &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, sizeof(req) - 1);
	CU_ASSERT_EQUAL(s.body.len, 10);
	http_req_parser_free(p);
	buf_free(&s.body);

	/* a return outside 400..599 becomes 500 */
	sink_init(&s);
	s.fail_status = -1;
	s.fail_after = 1;
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(drive(p, S(req), &c), 500);
	http_req_parser_free(p);
	buf_free(&s.body);
}

static void test_chunked(void)
{
	static const char req[] = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  Chunked \r\n\r\n"
	                          "4;name=value\r\nWiki\r\n"
	                          "5 ; a ; b=\"x;y\"\r\npedia\r\n"
	                          "E\r\n in\r\n\r\nchunks.\r\n"
	                          "0;last\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n"
	                          "NEXT";
	struct sink s;
	struct http_limits l = limits();
	struct http_req_parser *p;
	const struct http_request *r;
	size_t c;

	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	CU_ASSERT_EQUAL(drive(p, S(req), &c), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(c, sizeof(req) - 1 - 4);
	CU_ASSERT_EQUAL(s.body.len, 23);
	CU_ASSERT_STRING_EQUAL(s.body.data, "Wikipedia in\r\n\r\nchunks.");
	r = http_req_parser_request(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->chunked, 1);
	CU_ASSERT_EQUAL(r->content_length, -1);
	CU_ASSERT_EQUAL(r->header_count, 2);
	CU_ASSERT_PTR_NULL(http_request_header(r, "Trailer-A", 0));
	http_req_parser_free(p);
	buf_free(&s.body);

	/* byte by byte gives the same bytes */
	sink_init(&s);
	p = http_req_parser_new(&l, sink_cb, &s);
	{
		size_t end = sizeof(req) - 1 - 4, i;
		int last = -1;
		for (i = 0; i < end; i++) {
			last = http_req_parser_feed(p, req + i, 1, &c);
			CU_ASSERT(last == HTTP_PARSE_NEED_MORE || last == HTTP_PARSE_HEADERS ||
			          (last == HTTP_PARSE_COMPLETE && i + 1 == end));
			CU_ASSERT_EQUAL(c, 1);
		}
		CU_ASSERT_EQUAL(last, HTTP_PARSE_COMPLETE);
	}
	CU_ASSERT_STRING_EQUAL(s.body.data, "Wikipedia in\r\n\r\nchunks.");
	http_req_parser_free(p);
	buf_free(&s.body);
}

static void expect_status(const char *what, const char *req, size_t len, int want)
{
	int got = parse_status(req, len);
	if (got != want)
		fprintf(stderr, "\n  %s: got %d, want %d\n", what, got, want);
	CU_ASSERT_EQUAL(got, want);
}

#define EXPECT(what, lit, want) expect_status(what, S(lit), want)

static void test_errors_400(void)
{
	EXPECT("garbage", "\x01\x02garbage\r\n\r\n", 400);
	EXPECT("garbage text", "hello world\r\n\r\n", 400);
	EXPECT("CL+TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 400);
	EXPECT("TE+CL", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400);
	EXPECT("dup CL", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400);
	EXPECT("dup CL differing", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
	EXPECT("CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400);
	EXPECT("CL sign", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", 400);
	EXPECT("CL hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", 400);
	EXPECT("CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\nabc", 400);
	EXPECT("bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400);
	EXPECT("chunk size overflow",
	       "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400);
	EXPECT("chunk missing CRLF", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400);
	EXPECT("obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n", 400);
	EXPECT("obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\tc\r\n\r\n", 400);
	EXPECT("space before first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
	EXPECT("no Host in 1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
	EXPECT("two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	EXPECT("Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
	EXPECT("Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
	EXPECT("Host in 1.0 with slash", "GET / HTTP/1.0\r\nHost: a/b\r\n\r\n", 400);
	EXPECT("space in field name", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
	EXPECT("NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", 400);
	EXPECT("CTL in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400);
	EXPECT("NUL in URL", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	EXPECT("TAB in URL", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	EXPECT("fragment", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	EXPECT("asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	EXPECT("odd scheme", "GET ftp://h/a HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	EXPECT("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	EXPECT("two TE", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	EXPECT("bare CR", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400);
	EXPECT("lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

static void test_errors_other(void)
{
	struct http_limits l = limits();
	char big[4096];

	EXPECT("TE gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
	EXPECT("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
	EXPECT("CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501);
	EXPECT("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	EXPECT("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
	EXPECT("HTTP/0.9", "GET /\r\n\r\n", 505);
	/* no blank line to wait for: the request line alone is refused */
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("GET /\r\n")), 505);
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("GET /index.html\n")), 505);
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("GET / HTTP/0.9\r\n")), 505);
	EXPECT("Expect other", "POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx", 417);
	EXPECT("Expect second other", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nExpect: x\r\n\r\n", 417);

	/* 413 at headers time: no body byte is read */
	l.max_body_bytes = 100;
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n")), 413);
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n")),
	                400); /* beyond 2^64: the library refuses it as malformed */
	{
		char req[256];
		int n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n%0100d", 0);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), HTTP_PARSE_COMPLETE);
	}
	/* 413 chunked: running total beyond the limit, and one chunk announced too big */
	{
		struct buf b;
		buf_init(&b, 1 << 16);
		buf_append_str(&b, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int i = 0; i < 3; i++)
			buf_append_str(&b, "28\r\n0123456789012345678901234567890123456789\r\n"); /* 3 x 40 */
		buf_append_str(&b, "0\r\n\r\n");
		CU_ASSERT_EQUAL(parse_status_limits(&l, b.data, b.len), 413);
		l.max_body_bytes = 120;
		CU_ASSERT_EQUAL(parse_status_limits(&l, b.data, b.len), HTTP_PARSE_COMPLETE);
		l.max_body_bytes = 100;
		buf_free(&b);
	}
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n")),
	                413);

	/* 414: the URI alone beyond max_uri_bytes */
	l = limits();
	memset(big, 'a', sizeof(big));
	{
		char req[2048];
		int n = snprintf(req, sizeof(req), "GET /%.*s HTTP/1.1\r\nHost: h\r\n\r\n", 1023, big);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), HTTP_PARSE_COMPLETE); /* 1024 */
		n = snprintf(req, sizeof(req), "GET /%.*s HTTP/1.1\r\nHost: h\r\n\r\n", 1024, big);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), 414);
		/* a URI that overflows the whole head is a 414 too */
		l.max_uri_bytes = 4096;
		l.max_header_bytes = 512;
		n = snprintf(req, sizeof(req), "GET /%.*s HTTP/1.1\r\nHost: h\r\n\r\n", 1000, big);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), 414);
	}

	/* 431: the head beyond max_header_bytes (exactly at the limit passes) */
	l = limits();
	l.max_header_bytes = 100;
	{
		char req[256];
#define PAD_FMT "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: %.*s\r\n\r\n"
		int base = snprintf(NULL, 0, PAD_FMT, 0, big);
		int n = snprintf(req, sizeof(req), PAD_FMT, 100 - base, big);
		CU_ASSERT_EQUAL(n, 100);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), HTTP_PARSE_COMPLETE);
		n = snprintf(req, sizeof(req), PAD_FMT, 101 - base, big);
#undef PAD_FMT
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), 431);
	}
	/* 431: too many fields (exactly max passes) */
	l = limits();
	l.max_headers = 3;
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n")), HTTP_PARSE_COMPLETE);
	CU_ASSERT_EQUAL(parse_status_limits(&l, S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")), 431);
	/* 431: the library's own 80 KB ceiling maps to 431 as well */
	l = limits();
	l.max_header_bytes = 200 * 1024;
	{
		struct buf b;
		buf_init(&b, 1 << 20);
		buf_append_str(&b, "GET / HTTP/1.1\r\nHost: h\r\n");
		for (int i = 0; i < 100; i++)
			buf_printf(&b, "X-%d: %.1000s\r\n", i, big);
		buf_append_str(&b, "\r\n");
		CU_ASSERT_EQUAL(parse_status_limits(&l, b.data, b.len), 431);
		buf_free(&b);
	}
	/* 431: chunked trailers count against max_header_bytes */
	l = limits();
	l.max_header_bytes = 100;
	{
		char req[512];
		int n = snprintf(req, sizeof(req),
		                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: %.*s\r\n\r\n",
		                 200, big);
		CU_ASSERT_EQUAL(parse_status_limits(&l, req, (size_t)n), 431);
	}
}

static void test_expect_continue(void)
{
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	size_t c;

	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("PUT / HTTP/1.1\r\nHost: h\r\nExpect:  100-Continue \r\nContent-Length: 1\r\n\r\n"), &c),
	                HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(http_req_parser_request(p)->expect_continue, 1);
	http_req_parser_reset(p);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n"), &c),
	                HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(http_req_parser_request(p)->expect_continue, 0);
	http_req_parser_reset(p);
	/* RFC 9110 10.1.1: ignored from HTTP/1.0 */
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"), &c),
	                HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(http_req_parser_request(p)->expect_continue, 0);
	http_req_parser_reset(p);
	/* too large with 100-continue: 413 (the client is waiting for exactly that) */
	l.max_body_bytes = 10;
	http_req_parser_free(p);
	p = http_req_parser_new(&l, NULL, NULL);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n"), &c),
	                413);
	http_req_parser_free(p);
}

static int keep_alive_of(const char *req, size_t len)
{
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	size_t c;
	int ka = -1;

	if (http_req_parser_feed(p, req, len, &c) == HTTP_PARSE_HEADERS)
		ka = http_req_parser_request(p)->keep_alive;
	http_req_parser_free(p);
	return ka;
}

static void test_keep_alive(void)
{
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.0\r\n\r\n")), 0);
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")), 1);
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")), 1);
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.1\r\nHost: h\r\n\r\n")), 1);
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")), 0);
	CU_ASSERT_EQUAL(keep_alive_of(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n")), 0);
}

static const struct http_request *head_of(struct http_req_parser **pp, const char *req, size_t len)
{
	struct http_limits l = limits();
	size_t c;

	*pp = http_req_parser_new(&l, NULL, NULL);
	if (http_req_parser_feed(*pp, req, len, &c) != HTTP_PARSE_HEADERS || c != len)
		return NULL;
	return http_req_parser_request(*pp);
}

static void test_targets(void)
{
	struct http_req_parser *p;
	const struct http_request *r;

	r = head_of(&p, S("HEAD /doc.pdf HTTP/1.1\r\nHost: h\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->method, "HEAD");
	CU_ASSERT_STRING_EQUAL(r->path, "/doc.pdf");
	CU_ASSERT_STRING_EQUAL(r->query, "");
	http_req_parser_free(p);

	r = head_of(&p, S("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->path, "/a");
	CU_ASSERT_STRING_EQUAL(r->query, "");
	CU_ASSERT_STRING_EQUAL(r->target, "/a?");
	http_req_parser_free(p);

	r = head_of(&p, S("GET /a/b?x=1?y=2&z HTTP/1.1\r\nHost: h\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->path, "/a/b");
	CU_ASSERT_STRING_EQUAL(r->query, "x=1?y=2&z");
	http_req_parser_free(p);

	r = head_of(&p, S("GET http://example.com:8080/p/q?a=b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->target, "http://example.com:8080/p/q?a=b");
	CU_ASSERT_STRING_EQUAL(r->path, "/p/q");
	CU_ASSERT_STRING_EQUAL(r->query, "a=b");
	http_req_parser_free(p);

	r = head_of(&p, S("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->path, "/");
	CU_ASSERT_STRING_EQUAL(r->query, "");
	http_req_parser_free(p);

	r = head_of(&p, S("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->path, "/");
	CU_ASSERT_STRING_EQUAL(r->query, "x=1");
	http_req_parser_free(p);

	r = head_of(&p, S("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL(r);
	http_req_parser_free(p);
	r = head_of(&p, S("GET / HTTP/1.1\r\nHost:\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL(r);
	http_req_parser_free(p);

	r = head_of(&p, S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->method, "OPTIONS");
	CU_ASSERT_STRING_EQUAL(r->path, "*");
	CU_ASSERT_STRING_EQUAL(r->query, "");
	http_req_parser_free(p);

	/* HTTP/1.0 needs no Host; raw UTF-8 in the target passes through */
	r = head_of(&p, S("DELETE /caf\xc3\xa9 HTTP/1.0\r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->method, "DELETE");
	CU_ASSERT_STRING_EQUAL(r->path, "/caf\xc3\xa9");
	CU_ASSERT_EQUAL(r->http_minor, 0);
	http_req_parser_free(p);
}

static void test_eof(void)
{
	struct http_limits l = limits();
	struct http_req_parser *p = http_req_parser_new(&l, NULL, NULL);
	size_t c;

	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 0);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("GET / HT"), &c), HTTP_PARSE_NEED_MORE);
	CU_ASSERT_EQUAL(c, 8);
	CU_ASSERT(!http_req_parser_idle(p));
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 400);
	http_req_parser_reset(p);

	/* mid-body */
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab"), &c),
	                HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("ab"), &c), HTTP_PARSE_NEED_MORE);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 400);
	http_req_parser_reset(p);

	/* right after the head of a request with a body: the first len 0 feed
	 * only finishes the head (a connection loop feeds "the rest", maybe
	 * nothing); the next one is the EOF */
	CU_ASSERT_EQUAL(http_req_parser_feed(p, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"), &c),
	                HTTP_PARSE_HEADERS);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), HTTP_PARSE_NEED_MORE);
	CU_ASSERT_EQUAL(c, 0);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 400);
	http_req_parser_reset(p);

	/* mid-chunked */
	CU_ASSERT_EQUAL(drive(p, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), &c),
	                HTTP_PARSE_NEED_MORE);
	CU_ASSERT_EQUAL(http_req_parser_feed(p, "", 0, &c), 400);
	http_req_parser_free(p);
}

/* ---------------- Prefer ---------------- */

/* A request built by hand: up to 8 headers given as name, value pairs. */
struct fake {
	struct cgi_header h[8];
	struct http_request r;
};

static const struct http_request *fake_req(struct fake *f, int major, int minor, const char *const *kv)
{
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	for (; kv && kv[0] && n < UTIL_ARRAY_LEN(f->h); kv += 2, n++)
		f->h[n] = (struct cgi_header){ kv[0], strlen(kv[0]), kv[1], strlen(kv[1]) };
	f->r.method = "GET";
	f->r.target = f->r.path = "/";
	f->r.query = "";
	f->r.http_major = major;
	f->r.http_minor = minor;
	f->r.headers = f->h;
	f->r.header_count = n;
	f->r.content_length = -1;
	f->r.keep_alive = 1;
	return &f->r;
}

#define KV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct http_prefer prefer_of(const char *const *kv)
{
	struct fake f;
	struct http_prefer pr;
	http_prefer_parse(fake_req(&f, 1, 1, kv), &pr);
	return pr;
}

static void test_prefer(void)
{
	struct http_prefer pr;

	pr = prefer_of(KV("Host", "h"));
	CU_ASSERT(pr.respond_async == 0 && pr.processing == 0 && pr.wait_s == -1);
	http_prefer_parse(NULL, &pr);
	CU_ASSERT(pr.respond_async == 0 && pr.processing == 0 && pr.wait_s == -1);

	pr = prefer_of(KV("Prefer", "respond-async, wait=10", "Prefer", "processing"));
	CU_ASSERT_EQUAL(pr.respond_async, 1);
	CU_ASSERT_EQUAL(pr.processing, 1);
	CU_ASSERT_EQUAL(pr.wait_s, 10);

	/* tokens are case-insensitive; BWS around '='; parameters ignored */
	pr = prefer_of(KV("prefer", "Respond-Async; foo=bar;baz ; ;q=\"a,b;c\" , WAIT = 7 ;x"));
	CU_ASSERT_EQUAL(pr.respond_async, 1);
	CU_ASSERT_EQUAL(pr.processing, 0);
	CU_ASSERT_EQUAL(pr.wait_s, 7);

	/* first well-formed instance wins (RFC 7240 2) */
	pr = prefer_of(KV("Prefer", "wait=5, wait=10", "Prefer", "wait=1"));
	CU_ASSERT_EQUAL(pr.wait_s, 5);
	pr = prefer_of(KV("Prefer", "wait=abc, wait=-3, wait=, wait=1.5, wait=7"));
	CU_ASSERT_EQUAL(pr.wait_s, 7);
	pr = prefer_of(KV("Prefer", "wait=\"12\""));
	CU_ASSERT_EQUAL(pr.wait_s, 12);
	pr = prefer_of(KV("Prefer", "wait=0"));
	CU_ASSERT_EQUAL(pr.wait_s, 0);
	pr = prefer_of(KV("Prefer", "wait=99999999999999999999999999"));
	CU_ASSERT_EQUAL(pr.wait_s, INT32_MAX);
	pr = prefer_of(KV("Prefer", "wait=2147483648"));
	CU_ASSERT_EQUAL(pr.wait_s, INT32_MAX);
	pr = prefer_of(KV("Prefer", "wait=2147483647"));
	CU_ASSERT_EQUAL(pr.wait_s, INT32_MAX);
	pr = prefer_of(KV("Prefer", "wait=abc"));
	CU_ASSERT_EQUAL(pr.wait_s, -1);

	/* malformed elements are skipped, the rest still counts */
	pr = prefer_of(KV("Prefer", "=5, respond-async garbage, , processing,, \"x\", wait 3"));
	CU_ASSERT_EQUAL(pr.respond_async, 0);
	CU_ASSERT_EQUAL(pr.processing, 1);
	CU_ASSERT_EQUAL(pr.wait_s, -1);
	pr = prefer_of(KV("Prefer", "x=\"a, respond-async\", processing"));
	CU_ASSERT_EQUAL(pr.respond_async, 0);
	CU_ASSERT_EQUAL(pr.processing, 1);
	pr = prefer_of(KV("Prefer", "processing, x=\"unterminated, respond-async", "Prefer", "wait=4"));
	CU_ASSERT_EQUAL(pr.processing, 1);
	CU_ASSERT_EQUAL(pr.respond_async, 0);
	CU_ASSERT_EQUAL(pr.wait_s, 4);
	pr = prefer_of(KV("Prefer", "respond-asyncx, processing-now, xwait=3"));
	CU_ASSERT(pr.respond_async == 0 && pr.processing == 0 && pr.wait_s == -1);
	pr = prefer_of(KV("Prefer", ""));
	CU_ASSERT(pr.respond_async == 0 && pr.processing == 0 && pr.wait_s == -1);
}

/* Prefer through the real parser: several header lines. */
static void test_prefer_parsed(void)
{
	struct http_req_parser *p;
	const struct http_request *r;
	struct http_prefer pr;

	r = head_of(&p, S("GET / HTTP/1.1\r\nHost: h\r\nPrefer: wait=3\r\nPrefer:  respond-async \r\n\r\n"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	http_prefer_parse(r, &pr);
	CU_ASSERT_EQUAL(pr.wait_s, 3);
	CU_ASSERT_EQUAL(pr.respond_async, 1);
	CU_ASSERT_EQUAL(pr.processing, 0);
	http_req_parser_free(p);
}

/* ---------------- 102 policy ---------------- */

static void test_mode_parse(void)
{
	enum http_processing_mode m = HTTP_PROCESSING_NEVER;

	CU_ASSERT_EQUAL(http_processing_mode_parse("auto", &m), 0);
	CU_ASSERT_EQUAL(m, HTTP_PROCESSING_AUTO);
	CU_ASSERT_EQUAL(http_processing_mode_parse("always", &m), 0);
	CU_ASSERT_EQUAL(m, HTTP_PROCESSING_ALWAYS);
	CU_ASSERT_EQUAL(http_processing_mode_parse("opt-in", &m), 0);
	CU_ASSERT_EQUAL(m, HTTP_PROCESSING_OPT_IN);
	CU_ASSERT_EQUAL(http_processing_mode_parse("never", &m), 0);
	CU_ASSERT_EQUAL(m, HTTP_PROCESSING_NEVER);
	CU_ASSERT_EQUAL(http_processing_mode_parse("sometimes", &m), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_mode_parse("", &m), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_mode_parse("optin", &m), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_mode_parse(NULL, &m), -EINVAL);
	CU_ASSERT_EQUAL(m, HTTP_PROCESSING_NEVER); /* untouched on error */
}

static struct http_processing_decision decide_ctx(enum http_processing_mode mode, unsigned max, int minor,
                                                  const char *const *kv,
                                                  const struct http_processing_context *ctx)
{
	struct fake f;
	struct http_prefer pr;
	struct http_processing_decision d;
	const struct http_request *r = fake_req(&f, 1, minor, kv);

	http_prefer_parse(r, &pr);
	memset(&d, 0x5a, sizeof(d));
	http_processing_decide(mode, max, r, &pr, ctx, &d);
	return d;
}

static struct http_processing_decision decide(enum http_processing_mode mode, unsigned max, int minor,
                                              const char *const *kv)
{
	return decide_ctx(mode, max, minor, kv, NULL);
}

#define CHECK_DECISION(d, want_send, want_max, want_rule)                      \
	do {                                                                   \
		CU_ASSERT_EQUAL((d).send, (want_send));                        \
		CU_ASSERT_EQUAL((d).max_count, (want_max));                    \
		CU_ASSERT_PTR_NOT_NULL_FATAL((d).rule);                        \
		if (strcmp((d).rule, (want_rule)) != 0)                        \
			fprintf(stderr, "\n  rule %s, want %s\n", (d).rule, (want_rule)); \
		CU_ASSERT_STRING_EQUAL((d).rule, (want_rule));                 \
	} while (0)

static void test_policy_modes(void)
{
	struct http_processing_decision d;
	const enum http_processing_mode all[] = { HTTP_PROCESSING_AUTO, HTTP_PROCESSING_ALWAYS,
	                                          HTTP_PROCESSING_OPT_IN, HTTP_PROCESSING_NEVER };

	/* HTTP/1.0: never, in every mode, even when asked (RFC 9110 15.2) */
	for (size_t i = 0; i < UTIL_ARRAY_LEN(all); i++) {
		d = decide(all[i], 10, 0, KV("User-Agent", "curl/8.5.0", "Prefer", "processing"));
		CHECK_DECISION(d, 0, 0u, "http-1.0");
	}
	{
		struct fake f;
		struct http_processing_decision dd;
		http_processing_decide(HTTP_PROCESSING_ALWAYS, 0, fake_req(&f, 0, 9, NULL), NULL, NULL, &dd);
		CHECK_DECISION(dd, 0, 0u, "http-1.0");
	}

	d = decide(HTTP_PROCESSING_NEVER, 10, 1, KV("User-Agent", "curl/8.5.0", "Prefer", "processing"));
	CHECK_DECISION(d, 0, 0u, "mode-never");

	d = decide(HTTP_PROCESSING_ALWAYS, 10, 1, KV("User-Agent", "python-requests/2.31.0"));
	CHECK_DECISION(d, 1, 10u, "mode-always");
	CU_ASSERT_EQUAL(d.solicited, 0);
	d = decide(HTTP_PROCESSING_ALWAYS, 0, 1, KV("Prefer", "processing"));
	CHECK_DECISION(d, 1, 0u, "mode-always");
	CU_ASSERT_EQUAL(d.solicited, 1);

	d = decide(HTTP_PROCESSING_OPT_IN, 10, 1, KV("User-Agent", "curl/8.5.0"));
	CHECK_DECISION(d, 0, 0u, "opt-in");
	d = decide(HTTP_PROCESSING_OPT_IN, 10, 1, KV("User-Agent", "curl/8.5.0", "Prefer", "respond-async, processing"));
	CHECK_DECISION(d, 1, 10u, "prefer-processing");
	CU_ASSERT_EQUAL(d.solicited, 1);

	/* auto: asking always wins, even for an unknown client behind a proxy */
	d = decide(HTTP_PROCESSING_AUTO, 7, 1, KV("User-Agent", "python-requests/2.31.0", "Prefer", "processing"));
	CHECK_DECISION(d, 1, 7u, "prefer-processing");
	CU_ASSERT_EQUAL(d.solicited, 1);
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("Prefer", "processing", "Via", "1.1 nginx"));
	CHECK_DECISION(d, 1, 0u, "prefer-processing");
}

/* auto is an allow-list: every client not on it waits without 102s. */
static void test_policy_allow_list(void)
{
	const struct http_processing_client *t = NULL;
	size_t n = http_processing_clients(&t);
	struct http_processing_decision d;

	CU_ASSERT_EQUAL(http_processing_clients(NULL), n);
	CU_ASSERT_FATAL(n >= 6 && t != NULL);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_PTR_NOT_NULL(t[i].version);
		CU_ASSERT_PTR_NOT_NULL(t[i].evidence);
		CU_ASSERT(t[i].max > 0);
	}

	/* the listed clients, as they really send themselves */
	d = decide(HTTP_PROCESSING_AUTO, 12, 1, KV("User-Agent", "curl/7.88.1"));
	CHECK_DECISION(d, 1, 12u, "curl");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0"));
	CHECK_DECISION(d, 1, 0u, "curl");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "Wget/1.21.3"));
	CHECK_DECISION(d, 1, 0u, "wget");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "node"));
	CHECK_DECISION(d, 1, 0u, "node-fetch");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "python-httpx/0.23.3"));
	CHECK_DECISION(d, 1, 0u, "httpx");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "Python/3.11 aiohttp/3.8.4"));
	CHECK_DECISION(d, 1, 0u, "aiohttp");
	/* a client's own cap, and the operator's when lower */
	d = decide(HTTP_PROCESSING_AUTO, 10, 1, KV("User-Agent", "Java-http-client/17.0.9"));
	CHECK_DECISION(d, 1, 8u, "java-httpclient");
	d = decide(HTTP_PROCESSING_AUTO, 4, 1, KV("User-Agent", "Java-http-client/21.0.1"));
	CHECK_DECISION(d, 1, 4u, "java-httpclient");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "Java-http-client/21.0.1"));
	CHECK_DECISION(d, 1, 8u, "java-httpclient");
	/* Chromium: its User-Agent and a header only a browser's fetch sends */
	d = decide(HTTP_PROCESSING_AUTO, 0, 1,
	           KV("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
	                            "Chrome/120.0.0.0 Safari/537.36", "Sec-Fetch-Mode", "navigate"));
	CHECK_DECISION(d, 1, 0u, "chromium");
	/* a script that borrows a browser's User-Agent is not a browser */
	d = decide(HTTP_PROCESSING_AUTO, 0, 1,
	           KV("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36"));
	CHECK_DECISION(d, 0, 0u, "unknown-client");

	/* unknown clients, and those known to break: none */
	static const char *const unknown[] = {
		"python-requests/2.31.0", "Python-urllib/3.11", "python-urllib3/1.26.12", "report-fetcher/1.0",
		"Java/17.0.9", "okhttp/4.12.0", "Go-http-client/1.1", "libwww-perl/6.72", "Microsoft .NET",
		"undici", "undici-like", "xcurl/8.0", "Mozilla/5.0 (compatible; MSIE 6.0)",
	};
	for (size_t i = 0; i < UTIL_ARRAY_LEN(unknown); i++) {
		d = decide(HTTP_PROCESSING_AUTO, 12, 1, KV("User-Agent", unknown[i]));
		CHECK_DECISION(d, 0, 0u, "unknown-client");
		CU_ASSERT_EQUAL(d.solicited, 0);
	}
	d = decide(HTTP_PROCESSING_AUTO, 10, 1, KV("Host", "h"));
	CHECK_DECISION(d, 0, 0u, "no-user-agent");

	/* the rows of the table are checked clients; other rules are not */
	CU_ASSERT_EQUAL(http_processing_rule_checked("curl"), 1);
	CU_ASSERT_EQUAL(http_processing_rule_checked("chromium"), 1);
	CU_ASSERT_EQUAL(http_processing_rule_checked("operator"), 0);
	CU_ASSERT_EQUAL(http_processing_rule_checked("mode-always"), 0);
	CU_ASSERT_EQUAL(http_processing_rule_checked("prefer-processing"), 0);
	CU_ASSERT_EQUAL(http_processing_rule_checked(NULL), 0);
	d = decide(HTTP_PROCESSING_AUTO, 10, 1, KV("User-Agent", ""));
	CHECK_DECISION(d, 0, 0u, "no-user-agent");
}

static void test_policy_proxies(void)
{
	const char *const *m = NULL;
	size_t n = http_processing_proxy_markers(&m);
	struct http_processing_decision d;
	struct http_processing_context relay = { .from_relay = 1, .local_port = 8080 };

	CU_ASSERT_FATAL(n >= 6 && m != NULL);
	CU_ASSERT_EQUAL(http_processing_proxy_markers(NULL), n);
	/* every marker, on its own, stops them for a listed client */
	for (size_t i = 0; i < n; i++) {
		d = decide(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", m[i], "x"));
		CHECK_DECISION(d, 0, 0u, "proxy");
		/* ... unless it comes from a declared relay */
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", m[i], "x"), &relay);
		CHECK_DECISION(d, 1, 0u, "curl");
	}
	/* the headers of the README's nginx proxy_pass example, in any case */
	d = decide(HTTP_PROCESSING_AUTO, 0, 1,
	           KV("User-Agent", "curl/8.5.0", "x-real-ip", "127.0.0.1", "Host", "h"));
	CHECK_DECISION(d, 0, 0u, "proxy");
	d = decide(HTTP_PROCESSING_AUTO, 0, 1,
	           KV("User-Agent", "curl/8.5.0", "X-FORWARDED-FOR", "127.0.0.1"));
	CHECK_DECISION(d, 0, 0u, "proxy");
	/* nginx proxy_http_version 1.1 without proxy_set_header Connection "" */
	{
		struct fake f;
		struct http_prefer pr;
		struct http_request *rq = (struct http_request *)fake_req(&f, 1, 1, KV("User-Agent", "curl/8.5.0",
		                                                                       "Connection", "close"));
		rq->keep_alive = 0;
		http_prefer_parse(rq, &pr);
		http_processing_decide(HTTP_PROCESSING_AUTO, 0, rq, &pr, NULL, &d);
		CHECK_DECISION(d, 0, 0u, "connection-close");
		http_processing_decide(HTTP_PROCESSING_AUTO, 0, rq, &pr, &relay, &d);
		CHECK_DECISION(d, 1, 0u, "curl");
	}
	/* the Host names the port the request arrived on, or it was meant for
	 * another server (nginx: Host: UPSTREAM-NAME) */
	{
		struct http_processing_context at = { .local_port = 8080 };
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "example.org:8080"), &at);
		CHECK_DECISION(d, 1, 0u, "curl");
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "[::1]:8080"), &at);
		CHECK_DECISION(d, 1, 0u, "curl");
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "cgiq_backend"), &at);
		CHECK_DECISION(d, 0, 0u, "host-port");
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "example.org:9000"), &at);
		CHECK_DECISION(d, 0, 0u, "host-port");
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0"), &at);
		CHECK_DECISION(d, 0, 0u, "host-port");
		at.local_port = 80;
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "example.org"), &at);
		CHECK_DECISION(d, 1, 0u, "curl");
		at.local_port = 0; /* a unix socket: what a client's Host never names */
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "localhost"), &at);
		CHECK_DECISION(d, 0, 0u, "host-port");
		at.from_relay = 1;
		d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Host", "localhost"), &at);
		CHECK_DECISION(d, 1, 0u, "curl");
	}
	CU_ASSERT_EQUAL(http_host_port("example.org"), 80u);
	CU_ASSERT_EQUAL(http_host_port("example.org:"), 80u);
	CU_ASSERT_EQUAL(http_host_port("example.org:8080"), 8080u);
	CU_ASSERT_EQUAL(http_host_port("127.0.0.1:65535"), 65535u);
	CU_ASSERT_EQUAL(http_host_port("[::1]"), 80u);
	CU_ASSERT_EQUAL(http_host_port("[::1]:81"), 81u);
	CU_ASSERT_EQUAL(http_host_port("::1:81"), 0u);
	CU_ASSERT_EQUAL(http_host_port("[::1]x"), 0u);
	CU_ASSERT_EQUAL(http_host_port("[::1"), 0u);
	CU_ASSERT_EQUAL(http_host_port("h:0"), 0u);
	CU_ASSERT_EQUAL(http_host_port("h:65536"), 0u);
	CU_ASSERT_EQUAL(http_host_port("h:99999999999999999999"), 0u);
	CU_ASSERT_EQUAL(http_host_port("h:80x"), 0u);
	CU_ASSERT_EQUAL(http_host_port(""), 0u);
	CU_ASSERT_EQUAL(http_host_port(NULL), 0u);
	/* a relay does not make an unknown client known */
	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "python-requests/2.28.1", "Via", "1.1 haproxy"),
	               &relay);
	CHECK_DECISION(d, 0, 0u, "unknown-client");
	/* a proxy is no reason to refuse what was asked for */
	d = decide(HTTP_PROCESSING_AUTO, 3, 1, KV("User-Agent", "curl/8.5.0", "Via", "1.1 x", "Prefer", "processing"));
	CHECK_DECISION(d, 1, 3u, "prefer-processing");
}

static void test_policy_operator_rows(void)
{
	struct http_processing_client rows[3];
	char pat[3][64];
	const char *why = NULL;
	struct http_processing_context ctx = { .extra = rows, .extra_count = 3, .local_port = -1 };
	struct http_processing_decision d;

	CU_ASSERT_EQUAL(http_processing_client_parse("report-fetcher/* unlimited", &rows[0], pat[0], 64, &why), 0);
	CU_ASSERT_STRING_EQUAL(rows[0].user_agent, "report-fetcher/*");
	CU_ASSERT_EQUAL(rows[0].max, HTTP_PROCESSING_UNLIMITED);
	CU_ASSERT_EQUAL(http_processing_client_parse("  Go-http-client/*   5", &rows[1], pat[1], 64, &why), 0);
	CU_ASSERT_STRING_EQUAL(rows[1].user_agent, "Go-http-client/*");
	CU_ASSERT_EQUAL(rows[1].max, 5u);
	/* an operator's row overrides the table: curl gets none here */
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/* none", &rows[2], pat[2], 64, &why), 0);
	CU_ASSERT_EQUAL(rows[2].max, 0u);

	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "Report-Fetcher/1.0"), &ctx);
	CHECK_DECISION(d, 1, 0u, "operator");
	d = decide_ctx(HTTP_PROCESSING_AUTO, 9, 1, KV("User-Agent", "Go-http-client/1.1"), &ctx);
	CHECK_DECISION(d, 1, 5u, "operator");
	d = decide_ctx(HTTP_PROCESSING_AUTO, 3, 1, KV("User-Agent", "Go-http-client/1.1"), &ctx);
	CHECK_DECISION(d, 1, 3u, "operator");
	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0"), &ctx);
	CHECK_DECISION(d, 0, 0u, "operator");
	/* proxy markers still count for an operator's client */
	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "report-fetcher/2", "Forwarded", "for=x"), &ctx);
	CHECK_DECISION(d, 0, 0u, "proxy");

	/* bad rows */
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/*", &rows[0], pat[0], 64, &why), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(why);
	CU_ASSERT_EQUAL(http_processing_client_parse(" 5", &rows[0], pat[0], 64, &why), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/* many", &rows[0], pat[0], 64, &why), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/* -1", &rows[0], pat[0], 64, &why), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/* 99999999999999999999", &rows[0], pat[0], 64, &why),
	                -EINVAL);
	CU_ASSERT_EQUAL(http_processing_client_parse("curl/* ", &rows[0], pat[0], 64, &why), -EINVAL);
	CU_ASSERT_EQUAL(http_processing_client_parse("a-pattern-far-too-long-for-the-buffer-given-here-"
	                                             "0123456789abcdef 1", &rows[0], pat[0], 64, &why), -EINVAL);
}

static void test_policy_misread(void)
{
	struct http_processing_context ctx = { .misread = 1, .local_port = -1 };
	struct http_processing_decision d;
	struct http_evidence *ev = http_evidence_open(NULL, 60);

	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0"), &ctx);
	CHECK_DECISION(d, 0, 0u, "misread-evidence");
	/* asking still wins; always still means always */
	d = decide_ctx(HTTP_PROCESSING_AUTO, 0, 1, KV("User-Agent", "curl/8.5.0", "Prefer", "processing"), &ctx);
	CHECK_DECISION(d, 1, 0u, "prefer-processing");
	d = decide_ctx(HTTP_PROCESSING_ALWAYS, 0, 1, KV("User-Agent", "curl/8.5.0"), &ctx);
	CHECK_DECISION(d, 1, 0u, "mode-always");

	/* the table in memory: an entry lives ttl seconds */
	CU_ASSERT_EQUAL(http_evidence_has(ev, "curl/8.5.0", 1000), 0);
	CU_ASSERT_EQUAL(http_evidence_add(ev, "curl/8.5.0", 1000), 0);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "curl/8.5.0", 1059), 1);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "curl/8.5.1", 1001), 0);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "curl/8.5.0", 1060), 0);
	CU_ASSERT_EQUAL(http_evidence_count(ev, 1000), 1u);
	CU_ASSERT_EQUAL(http_evidence_count(ev, 1060), 0u);
	CU_ASSERT_EQUAL(http_evidence_has(NULL, "curl/8.5.0", 1000), 0);
	CU_ASSERT_EQUAL(http_evidence_has(ev, NULL, 1000), 0);
	/* full: the entry that expires first makes room */
	for (int i = 0; i < HTTP_EVIDENCE_MAX + 5; i++) {
		char ua[32];
		snprintf(ua, sizeof(ua), "ua-%d", i);
		CU_ASSERT_EQUAL(http_evidence_add(ev, ua, 2000 + i), 0);
	}
	CU_ASSERT_EQUAL(http_evidence_count(ev, 2000), (size_t)HTTP_EVIDENCE_MAX);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "ua-0", 2001), 0);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "ua-260", 2300), 1);
	http_evidence_free(ev);
}

/* The file: kept across an open, bad lines skipped, reread on reload. */
static void test_policy_misread_file(void)
{
	char dir[] = "/tmp/cgiq-evidence-XXXXXX", path[128];
	time_t now = time(NULL);
	struct http_evidence *ev;
	FILE *f;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ev", dir);
	ev = http_evidence_open(path, 3600);
	CU_ASSERT_EQUAL(http_evidence_count(ev, now), 0u);
	CU_ASSERT_EQUAL(http_evidence_add(ev, "python-urllib3/1.26.12", now), 0);
	CU_ASSERT_EQUAL(http_evidence_add(ev, "weird\nagent", now), 0);
	http_evidence_free(ev);

	ev = http_evidence_open(path, 3600);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "python-urllib3/1.26.12", now + 10), 1);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "weird\nagent", now + 10), 1);
	CU_ASSERT_EQUAL(http_evidence_count(ev, now), 2u);

	/* an operator's edit: expired, garbled and good lines; then SIGHUP */
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "# comment\n%lld\tkept/1\n%lld\texpired/1\nnot a line\n12x\tbad/1\n",
	        (long long)now + 100, (long long)now - 1);
	fclose(f);
	http_evidence_reload(ev);
	CU_ASSERT_EQUAL(http_evidence_count(ev, now), 1u);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "kept/1", now), 1);
	CU_ASSERT_EQUAL(http_evidence_has(ev, "python-urllib3/1.26.12", now), 0);
	/* deleted: forgotten */
	CU_ASSERT_EQUAL(unlink(path), 0);
	http_evidence_reload(ev);
	CU_ASSERT_EQUAL(http_evidence_count(ev, now), 0u);
	http_evidence_free(ev);
	rmdir(dir);
}

static void test_glob_and_relays(void)
{
	struct http_relay r[4];

	CU_ASSERT_EQUAL(http_glob_match("curl/*", "curl/8.5.0"), 1);
	CU_ASSERT_EQUAL(http_glob_match("curl/*", "CURL/8"), 1);
	CU_ASSERT_EQUAL(http_glob_match("curl/*", "curl"), 0);
	CU_ASSERT_EQUAL(http_glob_match("curl/*", "xcurl/8"), 0);
	CU_ASSERT_EQUAL(http_glob_match("node", "node"), 1);
	CU_ASSERT_EQUAL(http_glob_match("node", "nodes"), 0);
	CU_ASSERT_EQUAL(http_glob_match("*a*b*", "xxaxxbxx"), 1);
	CU_ASSERT_EQUAL(http_glob_match("*a*b", "xxaxxbxxc"), 0);
	CU_ASSERT_EQUAL(http_glob_match("*", ""), 1);

	CU_ASSERT_EQUAL(http_relay_parse("127.0.0.1", &r[0]), 0);
	CU_ASSERT_EQUAL(http_relay_parse("10.0.0.0/8", &r[1]), 0);
	CU_ASSERT_EQUAL(http_relay_parse("fd00::/8", &r[2]), 0);
	CU_ASSERT_EQUAL(http_relay_parse("unix", &r[3]), 0);
	CU_ASSERT_EQUAL(http_relay_match(r, 2, "127.0.0.1", 0), 1);
	CU_ASSERT_EQUAL(http_relay_match(r, 2, "127.0.0.2", 0), 0);
	CU_ASSERT_EQUAL(http_relay_match(r, 2, "10.200.3.4", 0), 1);
	CU_ASSERT_EQUAL(http_relay_match(r, 2, "11.0.0.1", 0), 0);
	CU_ASSERT_EQUAL(http_relay_match(r, 3, "fdab::1", 0), 1);
	CU_ASSERT_EQUAL(http_relay_match(r, 3, "fe80::1", 0), 0);
	CU_ASSERT_EQUAL(http_relay_match(r, 3, NULL, 1), 0);
	CU_ASSERT_EQUAL(http_relay_match(r, 4, NULL, 1), 1);
	CU_ASSERT_EQUAL(http_relay_match(r, 4, "garbage", 0), 0);
	CU_ASSERT_EQUAL(http_relay_parse("10.0.0.0/33", &r[0]), -EINVAL);
	CU_ASSERT_EQUAL(http_relay_parse("10.0.0.0/", &r[0]), -EINVAL);
	CU_ASSERT_EQUAL(http_relay_parse("10.0.0.0/8x", &r[0]), -EINVAL);
	CU_ASSERT_EQUAL(http_relay_parse("example.com", &r[0]), -EINVAL);
	CU_ASSERT_EQUAL(http_relay_parse("", &r[0]), -EINVAL);
	CU_ASSERT_EQUAL(http_relay_parse("/8", &r[0]), -EINVAL);
}

int main(void)
{
	CU_pSuite parser, policy;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	parser = CU_add_suite("http parser", NULL, NULL);
	policy = CU_add_suite("http policy", NULL, NULL);
	if (parser == NULL || policy == NULL) {
		CU_cleanup_registry();
		return 1;
	}
	CU_add_test(parser, "simple GET", test_simple_get);
	CU_add_test(parser, "a request kept apart from its parser", test_request_copy);
	CU_add_test(parser, "pipelined requests", test_pipelined);
	CU_add_test(parser, "leading empty lines", test_leading_crlf);
	CU_add_test(parser, "byte by byte", test_byte_by_byte);
	CU_add_test(parser, "POST with Content-Length", test_post_body);
	CU_add_test(parser, "body callback aborts", test_body_callback_abort);
	CU_add_test(parser, "chunked body", test_chunked);
	CU_add_test(parser, "400 errors", test_errors_400);
	CU_add_test(parser, "413 414 417 431 501 505", test_errors_other);
	CU_add_test(parser, "Expect: 100-continue", test_expect_continue);
	CU_add_test(parser, "keep-alive", test_keep_alive);
	CU_add_test(parser, "targets, HEAD, query", test_targets);
	CU_add_test(parser, "EOF", test_eof);
	CU_add_test(policy, "Prefer", test_prefer);
	CU_add_test(policy, "Prefer through the parser", test_prefer_parsed);
	CU_add_test(policy, "mode names", test_mode_parse);
	CU_add_test(policy, "modes", test_policy_modes);
	CU_add_test(policy, "allow-list", test_policy_allow_list);
	CU_add_test(policy, "proxy markers and relays", test_policy_proxies);
	CU_add_test(policy, "operator rows", test_policy_operator_rows);
	CU_add_test(policy, "misread evidence", test_policy_misread);
	CU_add_test(policy, "misread evidence file", test_policy_misread_file);
	CU_add_test(policy, "globs and relay addresses", test_glob_and_relays);

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return (int)failed;
}
