/*
 * libFuzzer target: the HTTP/1.x request parser (src/http/parser.c), driven
 * the way src/http/server.c drives it: bytes accumulate in a connection
 * buffer, after HEADERS the rest is fed again (even when empty), COMPLETE
 * resets the parser for the next pipelined request, an error ends the
 * connection. The payload is fed once whole and once cut at fuzzer-chosen
 * points; both runs must see the same requests, bodies and statuses.
 */
#include <string.h>

#include "fuzz.h"
#include "http/http.h"
#include "util/util.h"

#define FUZZ_HTTP_MAX_INPUT (64 * 1024)
#define FUZZ_HTTP_MAX_EVENTS 256

static const struct http_limits fuzz_http_limits = {
	.max_header_bytes = 4096,
	.max_uri_bytes = 1024,
	.max_headers = 32,
	.max_body_bytes = 8192,
};

struct fuzz_http_run {
	struct http_req_parser *p;
	struct buf in;
	int stopped;
	uint64_t body_bytes;   /* of the current message */
	uint64_t body_hash;
	uint64_t events[FUZZ_HTTP_MAX_EVENTS];
	size_t nevents;
};

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }

static void event(struct fuzz_http_run *run, uint64_t kind, uint64_t value)
{
	/* FUZZ_TRACE=1 replay_http_request FILE: what each run saw, to debug a diff. */
	static int trace = -1;
	if (trace < 0)
		trace = getenv("FUZZ_TRACE") != NULL;
	if (trace)
		fprintf(stderr, "  event %c %llu\n", (int)kind, (unsigned long long)value);
	if (run->nevents < FUZZ_HTTP_MAX_EVENTS)
		run->events[run->nevents++] = fnv(kind * 0x9e3779b97f4a7c15ull, &value, sizeof(value));
}

static int on_body(void *ud, const char *data, size_t len)
{
	struct fuzz_http_run *run = ud;

	FUZZ_CHECK(len > 0);
	run->body_bytes += len;
	FUZZ_CHECK(run->body_bytes <= fuzz_http_limits.max_body_bytes);
	run->body_hash = fnv(run->body_hash, data, len);
	return 0;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* What the rest of cgiq relies on once HEADERS was returned; returns a hash
 * of the request so that the whole and the split run can be compared. */
static uint64_t check_request(const struct http_request *r)
{
	uint64_t h = 0xcbf29ce484222325ull;

	FUZZ_CHECK(r != NULL);
	FUZZ_CHECK(r->http_major == 1 && (r->http_minor == 0 || r->http_minor == 1));
	FUZZ_CHECK(r->method != NULL && r->target != NULL && r->path != NULL && r->query != NULL);
	FUZZ_CHECK(strlen(r->target) > 0 && strlen(r->target) <= fuzz_http_limits.max_uri_bytes);
	FUZZ_CHECK(r->path[0] == '/' || strcmp(r->path, "*") == 0);
	/* RFC 9112 3.2: what reaches the path mapping has no CTL or space. */
	for (const char *c = r->target; *c; c++)
		FUZZ_CHECK((unsigned char)*c > 0x20 && *c != 0x7f);
	FUZZ_CHECK(r->content_length >= -1 && r->content_length <= (int64_t)fuzz_http_limits.max_body_bytes);
	FUZZ_CHECK(!(r->chunked && r->content_length >= 0));
	FUZZ_CHECK(r->header_count <= fuzz_http_limits.max_headers);
	h = fnv_str(h, r->method);
	h = fnv_str(h, r->target);
	h = fnv_str(h, r->path);
	h = fnv_str(h, r->query);
	for (size_t i = 0; i < r->header_count; i++) {
		const struct cgi_header *f = &r->headers[i];
		FUZZ_CHECK(f->name_len > 0 && strlen(f->name) == f->name_len);
		FUZZ_CHECK(strlen(f->value) == f->value_len);
		for (size_t j = 0; j < f->name_len; j++)
			FUZZ_CHECK(is_tchar((unsigned char)f->name[j]));
		for (size_t j = 0; j < f->value_len; j++) {
			unsigned char c = (unsigned char)f->value[j];
			FUZZ_CHECK(c >= 0x20 || c == '\t');
			FUZZ_CHECK(c != 0x7f);
		}
		h = fnv_str(h, f->name);
		h = fnv_str(h, f->value);
	}
	int64_t nums[] = { r->http_minor, r->content_length, r->chunked, r->keep_alive, r->expect_continue };
	return fnv(h, nums, sizeof(nums));
}

/* server.c's conn_process: feed what is buffered until the parser wants more. */
static void process(struct fuzz_http_run *run)
{
	int after_head = 0;

	while (!run->stopped && (run->in.len > 0 || after_head)) {
		size_t used = 0, had = run->in.len;
		int r;

		after_head = 0;
		r = http_req_parser_feed(run->p, run->in.data ? run->in.data : "", run->in.len, &used);
		FUZZ_CHECK(used <= had);
		buf_consume(&run->in, used);
		if (r == HTTP_PARSE_NEED_MORE) {
			/* http.h: NEED_MORE consumed every byte it was given. */
			FUZZ_CHECK(used == had);
			break;
		}
		if (r == HTTP_PARSE_HEADERS) {
			FUZZ_CHECK(used > 0);
			FUZZ_CHECK(used <= fuzz_http_limits.max_header_bytes);
			event(run, 'H', check_request(http_req_parser_request(run->p)));
			after_head = 1;
			continue;
		}
		if (r == HTTP_PARSE_COMPLETE) {
			const struct http_request *req = http_req_parser_request(run->p);
			FUZZ_CHECK(req != NULL);
			if (req->content_length >= 0)
				FUZZ_CHECK(run->body_bytes == (uint64_t)req->content_length);
			/* Sticky until the reset. */
			FUZZ_CHECK(http_req_parser_feed(run->p, "x", 1, &used) == HTTP_PARSE_COMPLETE && used == 0);
			event(run, 'C', run->body_hash ^ run->body_bytes);
			run->body_bytes = 0;
			run->body_hash = 0;
			http_req_parser_reset(run->p);
			FUZZ_CHECK(http_req_parser_idle(run->p));
			FUZZ_CHECK(http_req_parser_request(run->p) == NULL);
			continue;
		}
		FUZZ_CHECK(r >= 400 && r <= 599);
		FUZZ_CHECK(used == 0);
		/* Sticky until the reset, and the server closes the connection. */
		FUZZ_CHECK(http_req_parser_feed(run->p, "GET", 3, &used) == r && used == 0);
		/* A head that is both malformed and too long may be refused for
		 * either fault first: http-parser reports the URI and field bytes
		 * it has read at the end of each buffer, so where a read ended
		 * decides whether the cap (414, 431) or the bad byte (400) is seen
		 * first. Either way the client gets a 4xx and the connection is
		 * closed; every other status must not depend on the cuts. */
		event(run, 'E', r == 400 || r == 414 || r == 431 ? 0 : (uint64_t)r);
		run->stopped = 1;
	}
}

static void run_stream(struct fuzz_http_run *run, const uint8_t *data, size_t len,
                       const size_t *cuts, size_t ncuts)
{
	size_t start = 0;

	memset(run, 0, sizeof(*run));
	run->p = http_req_parser_new(&fuzz_http_limits, on_body, run);
	buf_init(&run->in, SIZE_MAX / 2);
	for (size_t i = 0; i <= ncuts && !run->stopped; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		FUZZ_CHECK(buf_append(&run->in, data + start, end - start) == 0);
		process(run);
		start = end;
	}
	if (!run->stopped) {
		/* The peer closed: 0 when between requests, 400 when half-read. */
		size_t used;
		int r = http_req_parser_feed(run->p, "", 0, &used);
		FUZZ_CHECK(r == 0 || r == 400 || r == HTTP_PARSE_COMPLETE);
		event(run, 'F', (uint64_t)r);
	}
	buf_free(&run->in);
	http_req_parser_free(run->p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_http_run whole, split;
	struct fuzz_split s;

	if (size > FUZZ_HTTP_MAX_INPUT)
		return 0;
	fuzz_split_init(&s, data, size);
	if (getenv("FUZZ_TRACE") != NULL) {
		fprintf(stderr, "cuts:");
		for (size_t i = 0; i < s.ncuts; i++)
			fprintf(stderr, " %zu", s.cuts[i]);
		fprintf(stderr, " (of %zu)\n", s.len);
	}
	run_stream(&whole, s.payload, s.len, NULL, 0);
	run_stream(&split, s.payload, s.len, s.cuts, s.ncuts);
	FUZZ_CHECK(whole.nevents == split.nevents);
	FUZZ_CHECK(memcmp(whole.events, split.events, whole.nevents * sizeof(whole.events[0])) == 0);
	return 0;
}
