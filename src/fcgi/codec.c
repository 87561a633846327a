/*
 * The FastCGI record codec (FastCGI 1.0, with the record layouts and
 * constants of libfcgi's fastcgi.h): an incremental reader of the records a
 * web server sends, name-value pair decoding, and the writers of the records
 * cgiq sends back. Pure: bytes in, events or bytes out; no I/O, no state
 * beyond struct fcgi_reader, so it is unit-tested and fuzzed whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fastcgi.h>

#include "fcgi.h"

void fcgi_reader_init(struct fcgi_reader *r)
{
	memset(r, 0, sizeof(*r));
}

/* The header of the record starting in r->hdr is complete: check it. */
static int reader_header(struct fcgi_reader *r)
{
	const FCGI_Header *h = (const FCGI_Header *)r->hdr;

	if (h->version != FCGI_VERSION_1)
		return -EPROTO;
	r->type = h->type;
	r->id = (unsigned)h->requestIdB1 << 8 | h->requestIdB0;
	r->content_left = (unsigned)h->contentLengthB1 << 8 | h->contentLengthB0;
	r->padding_left = h->paddingLength;
	r->small_len = 0;
	switch (r->type) {
	case FCGI_BEGIN_REQUEST:
		/* FCGI_BeginRequestBody: exactly its 8 bytes */
		return r->content_left == sizeof(FCGI_BeginRequestBody) && r->id != FCGI_NULL_REQUEST_ID ? 0 : -EPROTO;
	case FCGI_ABORT_REQUEST:
	case FCGI_PARAMS:
	case FCGI_STDIN:
	case FCGI_DATA:
		return r->id != FCGI_NULL_REQUEST_ID ? 0 : -EPROTO;
	case FCGI_GET_VALUES:
		return r->id == FCGI_NULL_REQUEST_ID && r->content_left <= sizeof(r->small) ? 0 : -EPROTO;
	case FCGI_END_REQUEST:
	case FCGI_STDOUT:
	case FCGI_STDERR:
	case FCGI_GET_VALUES_RESULT:
		return -EPROTO; /* what an application sends, never a web server */
	default:
		/* an unknown type: a management record is answered
		 * FCGI_UNKNOWN_TYPE; one of a request is an error */
		return r->id == FCGI_NULL_REQUEST_ID && r->content_left <= sizeof(r->small) ? 0 : -EPROTO;
	}
}

/* The event a complete record (or a record's end) makes. */
static void record_done(struct fcgi_reader *r, struct fcgi_event *ev)
{
	const FCGI_BeginRequestBody *b = (const FCGI_BeginRequestBody *)r->small;

	ev->request_id = r->id;
	switch (r->type) {
	case FCGI_BEGIN_REQUEST:
		ev->kind = FCGI_EV_BEGIN;
		ev->role = (unsigned)b->roleB1 << 8 | b->roleB0;
		ev->keep_conn = (b->flags & FCGI_KEEP_CONN) != 0;
		break;
	case FCGI_ABORT_REQUEST:
		ev->kind = FCGI_EV_ABORT;
		break;
	case FCGI_PARAMS:
		ev->kind = FCGI_EV_PARAMS_END; /* an empty record ends the stream */
		break;
	case FCGI_STDIN:
		ev->kind = FCGI_EV_STDIN_END;
		break;
	case FCGI_DATA:
		ev->kind = FCGI_EV_NONE; /* the filter role's stream: not served, ignored */
		break;
	case FCGI_GET_VALUES:
		ev->kind = FCGI_EV_GET_VALUES;
		ev->data = (const char *)r->small;
		ev->len = r->small_len;
		break;
	default:
		ev->kind = FCGI_EV_UNKNOWN_TYPE;
		ev->type = r->type;
		break;
	}
}

ssize_t fcgi_read(struct fcgi_reader *r, const char *data, size_t len, struct fcgi_event *ev)
{
	size_t used = 0;

	memset(ev, 0, sizeof(*ev));
	if (r->failed)
		return -EPROTO;
	for (;;) {
		if (r->in_padding) {
			size_t n = len - used < r->padding_left ? len - used : r->padding_left;
			used += n;
			r->padding_left -= (unsigned)n;
			if (r->padding_left > 0)
				return (ssize_t)used;
			r->in_padding = 0;
			r->hdr_have = 0;
		}
		if (r->hdr_have < FCGI_HEADER_LEN) {
			size_t n = FCGI_HEADER_LEN - r->hdr_have;
			if (n > len - used)
				n = len - used;
			memcpy(r->hdr + r->hdr_have, data + used, n);
			r->hdr_have += (unsigned)n;
			used += n;
			if (r->hdr_have < FCGI_HEADER_LEN)
				return (ssize_t)used;
			if (reader_header(r) < 0) {
				r->failed = 1;
				return -EPROTO;
			}
			if (r->content_left == 0) {
				/* an empty record: its event now */
				record_done(r, ev);
				r->in_padding = 1;
				if (r->padding_left == 0) {
					r->in_padding = 0;
					r->hdr_have = 0;
				}
				return (ssize_t)used;
			}
		}
		/* content */
		if (used == len)
			return (ssize_t)used;
		size_t n = len - used < r->content_left ? len - used : r->content_left;
		if (r->type == FCGI_PARAMS || r->type == FCGI_STDIN) {
			/* stream content: handed on as it comes, no copy */
			ev->kind = r->type == FCGI_PARAMS ? FCGI_EV_PARAMS : FCGI_EV_STDIN;
			ev->request_id = r->id;
			ev->data = data + used;
			ev->len = n;
		} else if (r->type != FCGI_DATA && r->type != FCGI_ABORT_REQUEST) {
			memcpy(r->small + r->small_len, data + used, n); /* bounded by reader_header */
			r->small_len += (unsigned)n;
		}
		used += n;
		r->content_left -= (unsigned)n;
		if (r->content_left == 0) {
			if (ev->kind == FCGI_EV_NONE)
				record_done(r, ev);
			r->in_padding = 1;
			if (r->padding_left == 0) {
				r->in_padding = 0;
				r->hdr_have = 0;
			}
		}
		if (ev->kind != FCGI_EV_NONE)
			return (ssize_t)used;
	}
}

/* One length of a name-value pair: 1 byte below 128, else 4 with the high
 * bit set. Returns the bytes used, 0 when data ends first. */
static size_t nv_length(const unsigned char *p, size_t avail, uint32_t *out)
{
	if (avail < 1)
		return 0;
	if (p[0] < 0x80) {
		*out = p[0];
		return 1;
	}
	if (avail < 4)
		return 0;
	*out = ((uint32_t)(p[0] & 0x7f) << 24) | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 4;
}

int fcgi_nv_next(const char *data, size_t len, size_t *pos, struct fcgi_nv *out)
{
	const unsigned char *p = (const unsigned char *)data;
	uint32_t nlen, vlen;
	size_t at = *pos, n;

	if (at >= len)
		return 0;
	if ((n = nv_length(p + at, len - at, &nlen)) == 0)
		return -EBADMSG;
	at += n;
	if ((n = nv_length(p + at, len - at, &vlen)) == 0)
		return -EBADMSG;
	at += n;
	if (nlen > len - at || vlen > len - at - nlen)
		return -EBADMSG;
	out->name = data + at;
	out->name_len = nlen;
	out->value = data + at + nlen;
	out->value_len = vlen;
	*pos = at + nlen + vlen;
	return 1;
}

int fcgi_nv_extent(const char *data, size_t len, size_t pos, uint64_t *end)
{
	const unsigned char *p = (const unsigned char *)data;
	uint32_t nlen, vlen;
	size_t n, m;

	if (pos >= len || (n = nv_length(p + pos, len - pos, &nlen)) == 0 ||
	    (m = nv_length(p + pos + n, len - pos - n, &vlen)) == 0)
		return 0;
	*end = (uint64_t)pos + n + m + nlen + vlen;
	return 1;
}

int fcgi_params_decode(const char *data, size_t len, char ***out)
{
	struct fcgi_nv nv;
	size_t pos = 0, count = 0, cap = 16;
	char **v = util_xcalloc(cap + 1, sizeof(*v));
	int r;

	while ((r = fcgi_nv_next(data, len, &pos, &nv)) == 1) {
		/* A name with '=' or NUL, or a value with NUL, cannot be an
		 * environment string: the request is malformed. */
		if (nv.name_len == 0 || memchr(nv.name, '=', nv.name_len) || memchr(nv.name, '\0', nv.name_len) ||
		    memchr(nv.value, '\0', nv.value_len)) {
			r = -EBADMSG;
			break;
		}
		if (count == cap) {
			cap *= 2;
			v = util_xrealloc(v, (cap + 1) * sizeof(*v));
		}
		v[count] = util_xmalloc(nv.name_len + nv.value_len + 2);
		memcpy(v[count], nv.name, nv.name_len);
		v[count][nv.name_len] = '=';
		memcpy(v[count] + nv.name_len + 1, nv.value, nv.value_len);
		v[count][nv.name_len + 1 + nv.value_len] = '\0';
		v[++count] = NULL;
	}
	if (r < 0) {
		fcgi_params_free(v);
		return r;
	}
	*out = v;
	return 0;
}

void fcgi_params_free(char **params)
{
	for (size_t i = 0; params && params[i]; i++)
		free(params[i]);
	free(params);
}

/* A record header into out. */
static void put_header(struct buf *out, unsigned type, unsigned id, size_t content_len, unsigned padding)
{
	FCGI_Header h = {
		.version = FCGI_VERSION_1,
		.type = (unsigned char)type,
		.requestIdB1 = (unsigned char)(id >> 8),
		.requestIdB0 = (unsigned char)id,
		.contentLengthB1 = (unsigned char)(content_len >> 8),
		.contentLengthB0 = (unsigned char)content_len,
		.paddingLength = (unsigned char)padding,
	};
	buf_append(out, &h, sizeof(h));
}

void fcgi_put_stdout(struct buf *out, unsigned id, const char *data, size_t len)
{
	while (len > 0) {
		size_t n = len > FCGI_MAX_LENGTH ? FCGI_MAX_LENGTH : len;
		put_header(out, FCGI_STDOUT, id, n, 0);
		buf_append(out, data, n);
		data += n;
		len -= n;
	}
}

void fcgi_put_end(struct buf *out, unsigned id, uint32_t app_status, unsigned protocol_status)
{
	FCGI_EndRequestBody b = {
		.appStatusB3 = (unsigned char)(app_status >> 24),
		.appStatusB2 = (unsigned char)(app_status >> 16),
		.appStatusB1 = (unsigned char)(app_status >> 8),
		.appStatusB0 = (unsigned char)app_status,
		.protocolStatus = (unsigned char)protocol_status,
	};

	if (protocol_status == FCGI_REQUEST_COMPLETE)
		put_header(out, FCGI_STDOUT, id, 0, 0); /* the end of the output stream */
	put_header(out, FCGI_END_REQUEST, id, sizeof(b), 0);
	buf_append(out, &b, sizeof(b));
}

void fcgi_put_unknown_type(struct buf *out, unsigned type)
{
	FCGI_UnknownTypeBody b = {.type = (unsigned char)type};

	put_header(out, FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, sizeof(b), 0);
	buf_append(out, &b, sizeof(b));
}

/* One name-value pair, both shorter than 128 bytes. */
static void put_nv(struct buf *out, const char *name, const char *value)
{
	unsigned char lens[2] = {(unsigned char)strlen(name), (unsigned char)strlen(value)};

	buf_append(out, lens, 2);
	buf_append_str(out, name);
	buf_append_str(out, value);
}

void fcgi_put_values(struct buf *out, const char *query, size_t len, unsigned max_conns)
{
	struct buf body;
	struct fcgi_nv nv;
	size_t pos = 0;
	char n[16];

	buf_init(&body, FCGI_MAX_LENGTH);
	snprintf(n, sizeof(n), "%u", max_conns);
	/* FastCGI 4.1: answer the variables asked for that the application
	 * knows; one request per connection, no multiplexing. */
	while (fcgi_nv_next(query, len, &pos, &nv) == 1) {
		if (max_conns && nv.name_len == strlen(FCGI_MAX_CONNS) && memcmp(nv.name, FCGI_MAX_CONNS, nv.name_len) == 0)
			put_nv(&body, FCGI_MAX_CONNS, n);
		else if (max_conns && nv.name_len == strlen(FCGI_MAX_REQS) &&
		         memcmp(nv.name, FCGI_MAX_REQS, nv.name_len) == 0)
			put_nv(&body, FCGI_MAX_REQS, n);
		else if (nv.name_len == strlen(FCGI_MPXS_CONNS) && memcmp(nv.name, FCGI_MPXS_CONNS, nv.name_len) == 0)
			put_nv(&body, FCGI_MPXS_CONNS, "0");
	}
	put_header(out, FCGI_GET_VALUES_RESULT, FCGI_NULL_REQUEST_ID, body.len, 0);
	if (body.len)
		buf_append(out, body.data, body.len);
	buf_free(&body);
}
