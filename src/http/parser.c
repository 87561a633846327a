/*
 * HTTP/1.x request parser: an adapter around nodejs/http-parser 2.9.
 * This is the only file that includes http_parser.h. Pure: bytes in, results
 * out, no I/O, no globals (the settings table is constant).
 *
 * Notes on the library as Debian ships it (libhttp_parser.so, 2.9.4):
 *  - it is built with HTTP_PARSER_STRICT=0: spaces in header names, TAB/FF in
 *    the request-target, '#' fragments, "*" with any method and any
 *    HTTP/d.d version all pass. Everything that decides framing or names a
 *    resource is therefore checked again here, on the raw bytes.
 *  - pausing in on_headers_complete makes http_parser_execute return the
 *    offset of the final LF (head length - 1): the LF is not consumed and
 *    must be fed again. We report the whole head as consumed and replay the
 *    LF from a constant on the next feed.
 *  - pausing in on_message_complete returns the offset just past the last
 *    byte of the message.
 *  - without HTTP_PARSER_STRICT the two bytes after a chunk's data are not
 *    checked (any two bytes pass for CRLF), a chunked body may end in a bare
 *    LF, chunk extensions are skipped without a length limit, and a byte
 *    over 0x7f in a chunk-size reads as the digit 0 (found by
 *    tests/fuzz/fuzz_http_request.c). A chunked body is therefore read
 *    here first (struct chunk_check) and handed to the library only when
 *    its framing is valid; both readings must then agree.
 */
#include "http.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum phase {
	PHASE_HEAD = 0, /* request line and header fields */
	PHASE_BODY,     /* head delivered; body (or nothing) to come */
	PHASE_COMPLETE, /* message complete; waiting for a reset */
	PHASE_ERROR,    /* status holds the answer; waiting for a reset */
};

/* Where one header field sits in the field storage (offsets: it may move). */
struct span {
	size_t name_off, name_len;
	size_t value_off, value_len;
};

enum field_state { FIELD_NONE = 0, FIELD_NAME, FIELD_VALUE };

/* RFC 9112 7.1: chunked-body = *chunk last-chunk trailer-section CRLF, read
 * ahead of the library, strictly (CRLF only, hex digits only). */
enum chunk_state {
	CK_SIZE_START = 0, /* first hex digit of a chunk-size */
	CK_SIZE,           /* more digits, chunk-ext or CR */
	CK_EXT,            /* chunk-ext up to CR */
	CK_SIZE_LF,        /* LF ending the chunk-size line */
	CK_DATA,           /* chunk data: counted, not looked at */
	CK_DATA_CR,        /* CRLF after the data */
	CK_DATA_LF,
	CK_TRAILER_START,  /* a trailer field line, or the final CRLF */
	CK_TRAILER,
	CK_TRAILER_LF,
	CK_END_LF,
	CK_DONE,
};

/* A chunk-size line (with its extensions) longer than this is refused
 * (RFC 9112 7.1.1: limit chunk extensions like other parts of a message). */
#define CHUNK_LINE_MAX_BYTES 4096

struct chunk_check {
	enum chunk_state state;
	uint64_t size;       /* chunk-size being read, then data bytes left */
	size_t line_bytes;   /* of the current chunk-size line */
	uint64_t data_bytes; /* chunk data seen, to compare with the library's */
};

struct http_req_parser {
	http_parser hp;
	struct http_limits limits;
	http_body_cb on_body;
	void *ud;

	enum phase phase;
	int status;              /* error status set by a callback or a check */
	int started;             /* on_message_begin seen */
	int line_began, line_done; /* the request line's first byte, its line end (raw bytes) */
	int head_done;           /* on_headers_complete seen (this feed) */
	int message_done;        /* on_message_complete seen */
	int pending_lf;          /* the head's final LF must be replayed */
	size_t head_bytes;       /* raw bytes of the head seen so far */
	unsigned char prev_byte; /* last raw head byte, for obs-fold detection */
	uint64_t body_bytes;     /* de-chunked body bytes delivered */
	size_t trailer_bytes;    /* chunked trailer field bytes (discarded) */
	struct chunk_check ck;

	struct buf url;          /* request-target, capped at max_uri_bytes */
	struct buf fields;       /* "name\0value\0" per header field */
	struct span *spans;
	size_t nspans, spans_cap;
	enum field_state fstate;

	struct buf strs;         /* target\0path\0query\0 */
	struct cgi_header *hdrs;
	size_t hdrs_cap;
	struct http_request req;
};

static struct http_req_parser *owner(http_parser *hp) { return hp->data; }

/* Records the first error a callback finds; the callback then returns 1. */
static int cb_fail(struct http_req_parser *p, int status)
{
	if (p->status == 0)
		p->status = status;
	return 1;
}

static int on_message_begin(http_parser *hp)
{
	owner(hp)->started = 1;
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct http_req_parser *p = owner(hp);

	if (buf_append(&p->url, at, len) < 0)
		return cb_fail(p, 414);
	return 0;
}

/* Terminates the current field's name and starts its (possibly empty) value. */
static int field_start_value(struct http_req_parser *p)
{
	if (buf_append(&p->fields, "", 1) < 0)
		return -1;
	p->spans[p->nspans - 1].value_off = p->fields.len;
	p->fstate = FIELD_VALUE;
	return 0;
}

static int field_end(struct http_req_parser *p)
{
	if (p->fstate == FIELD_NAME && field_start_value(p) < 0)
		return -1;
	if (p->fstate == FIELD_VALUE && buf_append(&p->fields, "", 1) < 0)
		return -1;
	p->fstate = FIELD_NONE;
	return 0;
}

/* Chunked trailers arrive through the field callbacks; they are counted
 * against max_header_bytes and dropped (nothing downstream reads them). */
static int trailer_bytes(struct http_req_parser *p, size_t len)
{
	if (len > p->limits.max_header_bytes - p->trailer_bytes)
		return cb_fail(p, 431);
	p->trailer_bytes += len;
	return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct http_req_parser *p = owner(hp);

	if (p->head_done || p->phase != PHASE_HEAD)
		return trailer_bytes(p, len);
	if (p->fstate != FIELD_NAME) {
		if (field_end(p) < 0)
			return cb_fail(p, 431);
		if (p->nspans >= p->limits.max_headers)
			return cb_fail(p, 431);
		if (p->nspans == p->spans_cap) {
			p->spans_cap = p->spans_cap ? p->spans_cap * 2 : 16;
			p->spans = util_xrealloc(p->spans, p->spans_cap * sizeof(*p->spans));
		}
		p->spans[p->nspans++] = (struct span){ .name_off = p->fields.len };
		p->fstate = FIELD_NAME;
	}
	if (buf_append(&p->fields, at, len) < 0)
		return cb_fail(p, 431);
	p->spans[p->nspans - 1].name_len += len;
	return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct http_req_parser *p = owner(hp);

	if (p->head_done || p->phase != PHASE_HEAD)
		return trailer_bytes(p, len);
	if (p->nspans == 0)
		return cb_fail(p, 400);
	if (p->fstate == FIELD_NAME && field_start_value(p) < 0)
		return cb_fail(p, 431);
	if (memchr(at, '\0', len) != NULL)
		return cb_fail(p, 400);
	if (buf_append(&p->fields, at, len) < 0)
		return cb_fail(p, 431);
	p->spans[p->nspans - 1].value_len += len;
	return 0;
}

static int on_headers_complete(http_parser *hp)
{
	struct http_req_parser *p = owner(hp);

	if (field_end(p) < 0) {
		cb_fail(p, 431);
		return -1; /* here 1 would mean "skip the body", not an error */
	}
	p->head_done = 1;
	/* The head is checked after http_parser_execute returns. */
	http_parser_pause(hp, 1);
	return 0;
}

static int on_chunk_header(http_parser *hp)
{
	struct http_req_parser *p = owner(hp);

	/* hp->content_length is the size of the chunk about to be read:
	 * refuse it before reading it. */
	if (hp->content_length > p->limits.max_body_bytes - p->body_bytes)
		return cb_fail(p, 413);
	return 0;
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex_value(unsigned char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* One framing byte of a chunked body. Returns 0 or -1 (malformed: a bare LF
 * or CR, a missing CRLF after data, a bad or overflowing chunk-size, a
 * chunk-size line over CHUNK_LINE_MAX_BYTES). */
static int chunk_byte(struct chunk_check *ck, unsigned char c)
{
	switch (ck->state) {
	case CK_SIZE_START:
		if (!is_hex(c))
			return -1;
		ck->size = hex_value(c);
		ck->line_bytes = 1;
		ck->state = CK_SIZE;
		return 0;
	case CK_SIZE:
	case CK_EXT:
		if (++ck->line_bytes > CHUNK_LINE_MAX_BYTES)
			return -1;
		if (c == '\r') {
			ck->state = CK_SIZE_LF;
		} else if (ck->state == CK_SIZE && is_hex(c)) {
			if (ck->size > (UINT64_MAX >> 4))
				return -1;
			ck->size = ck->size << 4 | hex_value(c);
		} else if (ck->state == CK_SIZE && c != ';' && c != ' ' && c != '\t') {
			return -1;
		} else if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return -1; /* RFC 9112 2.2: no bare CR or LF, no other CTL */
		} else {
			ck->state = CK_EXT;
		}
		return 0;
	case CK_SIZE_LF:
		if (c != '\n')
			return -1;
		ck->state = ck->size == 0 ? CK_TRAILER_START : CK_DATA;
		return 0;
	case CK_DATA_CR:
	case CK_TRAILER:
		if (c == '\r')
			ck->state = ck->state == CK_DATA_CR ? CK_DATA_LF : CK_TRAILER_LF;
		else if (ck->state == CK_DATA_CR || c == '\n')
			return -1;
		return 0;
	case CK_DATA_LF:
	case CK_TRAILER_LF:
	case CK_END_LF:
		if (c != '\n')
			return -1;
		ck->state = ck->state == CK_DATA_LF ? CK_SIZE_START
		          : ck->state == CK_TRAILER_LF ? CK_TRAILER_START : CK_DONE;
		return 0;
	case CK_TRAILER_START:
		if (c == '\n')
			return -1;
		ck->state = c == '\r' ? CK_END_LF : CK_TRAILER;
		return 0;
	case CK_DATA:
	case CK_DONE:
	default:
		return -1; /* chunk_scan never hands these a byte */
	}
}

/*
 * Reads a chunked body's bytes ahead of the library: framing bytes through
 * chunk_byte, data bytes counted against their chunk-size. Stops after the
 * final CRLF (*scanned = bytes up to there) or at len. Returns 0 or -1.
 */
static int chunk_scan(struct chunk_check *ck, const char *data, size_t len, size_t *scanned)
{
	size_t i = 0;

	while (i < len && ck->state != CK_DONE) {
		if (ck->state == CK_DATA) {
			size_t n = len - i < ck->size ? len - i : (size_t)ck->size;
			ck->size -= n;
			ck->data_bytes += n;
			i += n;
			if (ck->size == 0)
				ck->state = CK_DATA_CR;
			continue;
		}
		if (chunk_byte(ck, (unsigned char)data[i]) < 0)
			return -1;
		i++;
	}
	*scanned = i;
	return 0;
}

static int cb_body(http_parser *hp, const char *at, size_t len)
{
	struct http_req_parser *p = owner(hp);
	int r;

	if (len > p->limits.max_body_bytes - p->body_bytes)
		return cb_fail(p, 413);
	p->body_bytes += len;
	if (p->on_body == NULL)
		return 0;
	r = p->on_body(p->ud, at, len);
	if (r != 0)
		return cb_fail(p, r >= 400 && r <= 599 ? r : 500);
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	owner(hp)->message_done = 1;
	http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = cb_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
};

/* ---------------- checks on the complete head ---------------- */

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Trims OWS around a header value in place (RFC 9110 5.5) and checks the
 * name is a token and the value has no CTL but HTAB. Returns 0 or 400. */
static int check_field(struct http_req_parser *p, struct span *s)
{
	char *name = p->fields.data + s->name_off;
	char *value = p->fields.data + s->value_off;

	if (s->name_len == 0)
		return 400;
	for (size_t i = 0; i < s->name_len; i++)
		if (!is_tchar((unsigned char)name[i]))
			return 400; /* RFC 9112 5.1: no whitespace before the colon */
	while (s->value_len > 0 && is_ows(value[0])) {
		value++;
		s->value_off++;
		s->value_len--;
	}
	while (s->value_len > 0 && is_ows(value[s->value_len - 1]))
		s->value_len--;
	value[s->value_len] = '\0';
	for (size_t i = 0; i < s->value_len; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 400; /* RFC 9110 5.5: NUL, CR, LF and other CTLs */
	}
	return 0;
}

/* Fills req.target, req.path and req.query from the raw target. Returns 0 or 400. */
static int split_target(struct http_req_parser *p)
{
	const char *t = p->url.data;
	size_t len = p->url.len;
	const char *path, *q, *end = t + len;
	size_t path_len, target_off, path_off, query_off;

	if (len == 0)
		return 400;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		/* RFC 9112 3.2: no whitespace, CTL or fragment in a request-target;
		 * the lenient library build lets TAB, FF and '#' through. */
		if (c <= 0x20 || c == 0x7f || c == '#')
			return 400;
	}
	if (len == 1 && t[0] == '*') {
		/* RFC 9112 3.2.4: asterisk-form is only for OPTIONS */
		if (p->hp.method != HTTP_OPTIONS)
			return 400;
		path = t;
		path_len = 1;
		q = NULL;
	} else if (t[0] == '/') {
		path = t;
		q = memchr(t, '?', len);
		path_len = (size_t)((q ? q : end) - t);
	} else {
		/* RFC 9112 3.2.2 absolute-form: scheme "://" authority path-abempty */
		const char *auth;
		if (len > 7 && strncasecmp(t, "http://", 7) == 0)
			auth = t + 7;
		else if (len > 8 && strncasecmp(t, "https://", 8) == 0)
			auth = t + 8;
		else
			return 400;
		path = auth;
		while (path < end && *path != '/' && *path != '?')
			path++;
		if (path == auth)
			return 400; /* no authority */
		q = memchr(path, '?', (size_t)(end - path));
		path_len = (size_t)((q ? q : end) - path);
	}

	buf_reset(&p->strs);
	target_off = p->strs.len;
	buf_append(&p->strs, t, len);
	buf_append(&p->strs, "", 1);
	path_off = p->strs.len;
	if (path_len == 0)
		buf_append(&p->strs, "/", 1);
	else
		buf_append(&p->strs, path, path_len);
	buf_append(&p->strs, "", 1);
	query_off = p->strs.len;
	if (q != NULL)
		buf_append(&p->strs, q + 1, (size_t)(end - q - 1));
	buf_append(&p->strs, "", 1);
	p->req.target = p->strs.data + target_off;
	p->req.path = p->strs.data + path_off;
	p->req.query = p->strs.data + query_off;
	return 0;
}

/* Parses a Content-Length value: 1*DIGIT (RFC 9110 8.6), nothing else; a list
 * such as "5, 5" is refused rather than reduced. Saturates at UINT64_MAX. */
static int parse_content_length(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		uint64_t d = (uint64_t)(*s - '0');
		v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Framing: Content-Length and Transfer-Encoding. Returns 0 or a status. */
static int check_framing(struct http_req_parser *p, uint64_t *cl, int *has_cl)
{
	const struct http_request *r = &p->req;
	const char *v, *te = http_request_header(r, "Transfer-Encoding", 0);
	int lib_chunked = (p->hp.flags & F_CHUNKED) != 0;

	*has_cl = 0;
	if ((v = http_request_header(r, "Content-Length", 0)) != NULL) {
		/* RFC 9112 6.3: several or invalid values are unrecoverable framing errors */
		if (http_request_header(r, "Content-Length", 1) != NULL)
			return 400;
		if (parse_content_length(v, cl) < 0)
			return 400;
		*has_cl = 1;
	}
	if (te != NULL) {
		/* RFC 9112 6.1: a request with both is a smuggling attempt */
		if (*has_cl)
			return 400;
		if (http_request_header(r, "Transfer-Encoding", 1) != NULL)
			return 400;
		if (strcasecmp(te, "chunked") != 0)
			return 501;
		/* RFC 9112 6.1: HTTP/1.0 has no chunked coding; the framing is faulty */
		if (r->http_minor == 0)
			return 400;
		p->req.chunked = 1;
	}
	/* The library must have read the framing exactly as we did. */
	if (lib_chunked != p->req.chunked)
		return 400;
	if (((p->hp.flags & F_CONTENTLENGTH) != 0) != *has_cl)
		return 400;
	if (*has_cl && *cl != UINT64_MAX && p->hp.content_length != *cl)
		return 400;
	return 0;
}

static int check_expect(struct http_req_parser *p)
{
	const char *v;

	for (size_t i = 0; (v = http_request_header(&p->req, "Expect", i)) != NULL; i++) {
		if (strcasecmp(v, "100-continue") != 0)
			return 417; /* RFC 9110 10.1.1 */
		/* RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client */
		if (p->req.http_minor >= 1)
			p->req.expect_continue = 1;
	}
	return 0;
}

/* RFC 9110 7.2 / RFC 3986 3.2.2: Host = uri-host [ ":" port ]. Only the
 * character set is checked (it ends up in SERVER_NAME); empty is allowed. */
static int host_valid(const char *v)
{
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("-._~!$&'()*+,;=:[]%", c) != NULL))
			return 0;
	}
	return 1;
}

/* Validates the head and fills p->req. Returns 0 or an HTTP status. */
static int finish_head(struct http_req_parser *p)
{
	struct http_request *r = &p->req;
	const char *v;
	uint64_t cl = 0;
	int has_cl, status;

	memset(r, 0, sizeof(*r));
	r->http_major = p->hp.http_major;
	r->http_minor = p->hp.http_minor;
	r->content_length = -1;
	if (r->http_major != 1 || r->http_minor > 1)
		return 505;
	if (p->hp.method == HTTP_CONNECT)
		return 501; /* an origin server, not a tunnel */
	r->method = http_method_str((enum http_method)p->hp.method);
	if ((status = split_target(p)) != 0)
		return status;

	if (p->nspans > p->hdrs_cap) {
		p->hdrs_cap = p->nspans;
		p->hdrs = util_xrealloc(p->hdrs, p->hdrs_cap * sizeof(*p->hdrs));
	}
	for (size_t i = 0; i < p->nspans; i++) {
		struct span *s = &p->spans[i];
		if ((status = check_field(p, s)) != 0)
			return status;
		p->hdrs[i] = (struct cgi_header){
			.name = p->fields.data + s->name_off,
			.name_len = s->name_len,
			.value = p->fields.data + s->value_off,
			.value_len = s->value_len,
		};
	}
	r->headers = p->hdrs;
	r->header_count = p->nspans;

	/* RFC 9112 3.2: exactly one valid Host in HTTP/1.1, at most one in 1.0 */
	if (http_request_header(r, "Host", 1) != NULL)
		return 400;
	v = http_request_header(r, "Host", 0);
	if (r->http_minor == 1 && v == NULL)
		return 400;
	if (v != NULL && !host_valid(v))
		return 400;
	if ((status = check_framing(p, &cl, &has_cl)) != 0)
		return status;
	if ((status = check_expect(p)) != 0)
		return status;
	if (has_cl) {
		if (cl > p->limits.max_body_bytes)
			return 413;
		r->content_length = (int64_t)cl;
	}
	r->keep_alive = http_should_keep_alive(&p->hp) != 0;
	return 0;
}

/* ---------------- feeding ---------------- */

static int fail(struct http_req_parser *p, int status)
{
	p->phase = PHASE_ERROR;
	p->status = status;
	return status;
}

static int lib_error_status(enum http_errno e)
{
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_TRANSFER_ENCODING:
		return 501;
	default:
		return 400;
	}
}

/* RFC 9112 5.2: obs-fold (a line starting with SP or HTAB) is refused. The
 * library accepts it silently, so the raw bytes of the head are scanned. */
static int scan_head(struct http_req_parser *p, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (p->prev_byte == '\n' && (c == ' ' || c == '\t'))
			return 400;
		if (c == '\0')
			return 400;
		p->prev_byte = c;
	}
	return 0;
}

/* The head overflowed max_header_bytes: blame the URI while no field began. */
static int head_overflow(struct http_req_parser *p)
{
	return fail(p, p->nspans == 0 && p->url.len > 0 ? 414 : 431);
}

static int feed_head_part(struct http_req_parser *p, const char *data, size_t len, size_t *consumed);

/* Where in data the request line ends (the index past its LF), or len: the
 * empty lines before it (RFC 9112 2.2) do not count. */
static size_t request_line_end(struct http_req_parser *p, const char *data, size_t len)
{
	for (size_t i = 0; i < len && !p->line_done; i++) {
		if (!p->line_began) {
			p->line_began = data[i] != '\r' && data[i] != '\n';
		} else if (data[i] == '\n') {
			p->line_done = 1;
			return i + 1;
		}
	}
	return len;
}

/* The library is fed up to the request line's end first, then the rest: so
 * a request line without a version is answered 505 whatever follows it in
 * the same read, and whatever the reads' cuts. */
static int feed_head(struct http_req_parser *p, const char *data, size_t len, size_t *consumed)
{
	int was_done = p->line_done;
	size_t first = was_done ? len : request_line_end(p, data, len), c1 = 0, c2 = 0;
	int r;

	r = feed_head_part(p, data, first, &c1);
	if (r != HTTP_PARSE_NEED_MORE) {
		*consumed = c1;
		return r;
	}
	/* The request line is whole and has no version (HTTP/0.9, "GET /" and
	 * its line end): the library would go on to read fields that will
	 * never come. It gets its answer now, not after the header timeout
	 * (RFC 9112 2.3). */
	if (!was_done && p->line_done && p->hp.http_major == 0 && p->hp.http_minor == 9) {
		*consumed = 0;
		return fail(p, 505);
	}
	if (first == len) {
		*consumed = c1;
		return r;
	}
	r = feed_head_part(p, data + first, len - first, &c2);
	*consumed = r >= 400 ? 0 : c1 + c2; /* an error consumes nothing */
	return r;
}

static int feed_head_part(struct http_req_parser *p, const char *data, size_t len, size_t *consumed)
{
	size_t room = p->limits.max_header_bytes - p->head_bytes;
	size_t n = len < room ? len : room, r;
	enum http_errno e;
	int status;

	if (n == 0)
		return head_overflow(p);
	r = http_parser_execute(&p->hp, &settings, data, n);
	e = HTTP_PARSER_ERRNO(&p->hp);
	if (p->status != 0)
		return fail(p, p->status);
	if (e == HPE_PAUSED && p->head_done) {
		size_t used = r + 1; /* the library leaves the final LF unconsumed */
		if ((status = scan_head(p, data, used)) != 0)
			return fail(p, status);
		p->head_bytes += used;
		p->pending_lf = 1;
		if ((status = finish_head(p)) != 0)
			return fail(p, status);
		p->phase = PHASE_BODY;
		*consumed = used;
		return HTTP_PARSE_HEADERS;
	}
	if (e != HPE_OK)
		return fail(p, lib_error_status(e));
	if ((status = scan_head(p, data, n)) != 0)
		return fail(p, status);
	p->head_bytes += n;
	if (n < len)
		return head_overflow(p);
	*consumed = n;
	return HTTP_PARSE_NEED_MORE;
}

/* replay: data is the head's final LF fed again, not a body byte. */
static int feed_body(struct http_req_parser *p, const char *data, size_t len, size_t *consumed, int replay)
{
	int check = p->req.chunked && !replay;
	size_t r;
	enum http_errno e;

	/* The framing is checked before the library sees (and delivers) any
	 * byte of it; the library then reads only up to the message end. */
	if (check && chunk_scan(&p->ck, data, len, &len) < 0)
		return fail(p, 400);
	r = http_parser_execute(&p->hp, &settings, data, len);
	e = HTTP_PARSER_ERRNO(&p->hp);
	if (p->status != 0)
		return fail(p, p->status);
	if (e != HPE_OK && !(e == HPE_PAUSED && p->message_done))
		return fail(p, lib_error_status(e));
	/* Both readings of the chunked body must agree, byte for byte. */
	if (check && (r != len || p->body_bytes != p->ck.data_bytes ||
	              (p->ck.state == CK_DONE) != (p->message_done != 0)))
		return fail(p, 400);
	if (p->message_done) {
		p->phase = PHASE_COMPLETE;
		*consumed = r;
		return HTTP_PARSE_COMPLETE;
	}
	*consumed = r;
	return HTTP_PARSE_NEED_MORE;
}

int http_req_parser_feed(struct http_req_parser *p, const char *data, size_t len, size_t *consumed)
{
	size_t dummy;
	int r;

	*consumed = 0;
	if (p->phase == PHASE_ERROR)
		return p->status;
	if (p->phase == PHASE_COMPLETE)
		return HTTP_PARSE_COMPLETE;
	if (p->pending_lf) {
		/* Replay the head's final LF: it may complete a message without body. */
		p->pending_lf = 0;
		http_parser_pause(&p->hp, 0);
		r = feed_body(p, "\n", 1, &dummy, 1);
		if (r != HTTP_PARSE_NEED_MORE || len == 0)
			return r; /* a len 0 feed right after HEADERS is not an EOF */
	}
	if (len == 0) {
		/* EOF */
		if (p->phase == PHASE_HEAD && !p->started)
			return 0;
		return fail(p, 400);
	}
	if (p->phase == PHASE_HEAD)
		return feed_head(p, data, len, consumed);
	return feed_body(p, data, len, consumed, 0);
}

/* ---------------- lifetime and accessors ---------------- */

struct http_req_parser *http_req_parser_new(const struct http_limits *limits, http_body_cb on_body, void *ud)
{
	struct http_req_parser *p = util_xcalloc(1, sizeof(*p));
	size_t field_max;

	p->limits = *limits;
	p->on_body = on_body;
	p->ud = ud;
	/* Names and values plus two NULs per field fit in the raw head (each
	 * field line has at least ':' and a line end). */
	field_max = limits->max_header_bytes > SIZE_MAX - 16 ? SIZE_MAX : limits->max_header_bytes + 16;
	buf_init(&p->url, limits->max_uri_bytes);
	buf_init(&p->fields, field_max);
	buf_init(&p->strs, SIZE_MAX);
	http_req_parser_reset(p);
	return p;
}

void http_req_parser_free(struct http_req_parser *p)
{
	if (p == NULL)
		return;
	buf_free(&p->url);
	buf_free(&p->fields);
	buf_free(&p->strs);
	free(p->spans);
	free(p->hdrs);
	free(p);
}

void http_req_parser_reset(struct http_req_parser *p)
{
	http_parser_init(&p->hp, HTTP_REQUEST);
	p->hp.data = p;
	p->phase = PHASE_HEAD;
	p->status = 0;
	p->started = 0;
	p->line_began = 0;
	p->line_done = 0;
	p->head_done = 0;
	p->message_done = 0;
	p->pending_lf = 0;
	p->head_bytes = 0;
	p->prev_byte = 0;
	p->body_bytes = 0;
	p->trailer_bytes = 0;
	memset(&p->ck, 0, sizeof(p->ck));
	buf_reset(&p->url);
	buf_reset(&p->fields);
	buf_reset(&p->strs);
	p->nspans = 0;
	p->fstate = FIELD_NONE;
	memset(&p->req, 0, sizeof(p->req));
}

const struct http_request *http_req_parser_request(const struct http_req_parser *p)
{
	if (p->phase != PHASE_BODY && p->phase != PHASE_COMPLETE)
		return NULL;
	return &p->req;
}

int http_req_parser_idle(const struct http_req_parser *p)
{
	return p->phase == PHASE_HEAD && !p->started;
}

const char *http_request_header(const struct http_request *r, const char *name, size_t n)
{
	if (r == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < r->header_count; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0 && n-- == 0)
			return r->headers[i].value;
	}
	return NULL;
}

/* Appends s (NUL included) at *at, returns where it landed. */
static const char *copy_str(char **at, const char *s, size_t len)
{
	char *d = *at;

	memcpy(d, s, len);
	d[len] = '\0';
	*at += len + 1;
	return d;
}

struct http_request *http_request_copy(const struct http_request *r)
{
	size_t size = sizeof(*r) + r->header_count * sizeof(struct cgi_header);
	struct http_request *c;
	struct cgi_header *h;
	char *at;

	size += strlen(r->method) + strlen(r->target) + strlen(r->path) + strlen(r->query) + 4;
	for (size_t i = 0; i < r->header_count; i++)
		size += r->headers[i].name_len + r->headers[i].value_len + 2;
	c = util_xmalloc(size);
	*c = *r;
	h = (struct cgi_header *)(c + 1);
	at = (char *)(h + r->header_count);
	c->method = copy_str(&at, r->method, strlen(r->method));
	c->target = copy_str(&at, r->target, strlen(r->target));
	c->path = copy_str(&at, r->path, strlen(r->path));
	c->query = copy_str(&at, r->query, strlen(r->query));
	for (size_t i = 0; i < r->header_count; i++) {
		h[i] = r->headers[i];
		h[i].name = copy_str(&at, r->headers[i].name, r->headers[i].name_len);
		h[i].value = copy_str(&at, r->headers[i].value, r->headers[i].value_len);
	}
	c->headers = r->header_count ? h : NULL;
	return c;
}
