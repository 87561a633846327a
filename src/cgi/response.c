/*
 * The program's header block (RFC 3875 6.2, 6.3): pure, incremental, fed in
 * chunks of any size. No I/O; the caller owns the pipes.
 */
#include "cgi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Framing and connection handling belong to the gateway (RFC 3875 6.3.4,
 * RFC 9110 7.6.1); a program's idea of them would corrupt the response. */
static const char *const resp_dropped[] = {
	"Connection", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Date", "Server",
};

void cgi_response_init(struct cgi_response *r)
{
	memset(r, 0, sizeof(*r));
	/* A forwarded line is at most 2 bytes longer than its input line
	 * (": " and "\r\n"), and the input is capped, so this never binds. */
	buf_init(&r->headers, 2 * CGI_MAX_HEADER_BYTES);
	buf_init(&r->line, CGI_MAX_HEADER_BYTES);
}

void cgi_response_free(struct cgi_response *r)
{
	if (r == NULL)
		return;
	free(r->reason);
	r->reason = NULL;
	free(r->location);
	r->location = NULL;
	buf_free(&r->headers);
	buf_free(&r->line);
}

/* RFC 9110 5.6.2 tchar */
static int resp_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int resp_name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* RFC 3875 6.3.3: Status = status-code SP reason-phrase. */
static int resp_status(struct cgi_response *r, const char *v, size_t len)
{
	size_t i;
	int code = 0;

	if (r->status != 0 || len < 3)
		return -EBADMSG;
	for (i = 0; i < 3; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EBADMSG;
		code = code * 10 + (v[i] - '0');
	}
	if (code < 100 || code > 599)
		return -EBADMSG;
	if (len > 3 && v[3] != ' ' && v[3] != '\t')
		return -EBADMSG;
	for (i = 3; i < len && (v[i] == ' ' || v[i] == '\t'); i++)
		;
	r->status = code;
	if (i < len)
		r->reason = util_xstrndup(v + i, len - i);
	return 0;
}

/* RFC 3875 5.1, RFC 9112 4: an NPH program's status line, "HTTP/1.x"
 * SP status-code [SP reason-phrase]; 1xx is refused (an interim answer,
 * or a switch of protocol, is not the program's to make). */
static int resp_status_line(struct cgi_response *r, const char *line, size_t len)
{
	static const char version[] = "HTTP/1.";

	if (len < sizeof(version) + 4 || memcmp(line, version, sizeof(version) - 1) != 0 ||
	    (line[7] != '0' && line[7] != '1') || line[8] != ' ')
		return -EBADMSG;
	for (size_t i = 9; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EBADMSG;
	}
	if (resp_status(r, line + 9, len - 9) < 0 || r->status < 200)
		return -EBADMSG;
	return 0;
}

/* A Status field after an NPH status line (CGI.pm's -nph writes both):
 * dropped when it says the same code, else the head contradicts itself. */
static int resp_status_again(struct cgi_response *r, const char *v, size_t len)
{
	struct cgi_response again;
	int rc;

	memset(&again, 0, sizeof(again));
	rc = resp_status(&again, v, len);
	free(again.reason);
	return rc == 0 && again.status == r->status ? 0 : -EBADMSG;
}

static int resp_forward(struct cgi_response *r, const char *name, size_t nlen, const char *v,
                        size_t vlen)
{
	if (buf_append(&r->headers, name, nlen) < 0 || buf_append(&r->headers, ": ", 2) < 0 ||
	    buf_append(&r->headers, v, vlen) < 0 || buf_append(&r->headers, "\r\n", 2) < 0)
		return -E2BIG;
	r->header_count++;
	return 0;
}

/* One header line without its line terminator. Returns 0, or 1 for the empty
 * line ending the block, or a negative errno. */
static int resp_line(struct cgi_response *r, const char *line, size_t len)
{
	const char *colon, *v;
	size_t nlen, vlen, i;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return 1;
	if (++r->line_count > CGI_MAX_HEADERS)
		return -E2BIG;
	if (r->nph && r->line_count == 1)
		return resp_status_line(r, line, len);

	/* RFC 3875 6.3: no whitespace between name and ':', and no
	 * continuation lines (a leading SP/HTAB is not a tchar). */
	colon = memchr(line, ':', len);
	if (colon == NULL || colon == line)
		return -EBADMSG;
	nlen = (size_t)(colon - line);
	for (i = 0; i < nlen; i++)
		if (!resp_is_tchar((unsigned char)line[i]))
			return -EBADMSG;

	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (v[0] == ' ' || v[0] == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	/* RFC 9110 5.5: field-vchar, SP, HTAB, obs-text. A stray CR or NUL
	 * would let the program split the response it hands the client. */
	for (i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EBADMSG;
	}

	if (resp_name_is(line, nlen, "Status"))
		return r->nph ? resp_status_again(r, v, vlen) : resp_status(r, v, vlen);
	if (r->nph && resp_name_is(line, nlen, "Transfer-Encoding"))
		return -EPROTO;
	if (resp_name_is(line, nlen, "Location")) {
		if (r->location != NULL || vlen == 0)
			return -EBADMSG;
		r->location = util_xstrndup(v, vlen);
	} else if (resp_name_is(line, nlen, "Content-Type")) {
		if (r->has_content_type || vlen == 0)
			return -EBADMSG;
		r->has_content_type = 1;
	} else {
		for (i = 0; i < UTIL_ARRAY_LEN(resp_dropped); i++)
			if (resp_name_is(line, nlen, resp_dropped[i]))
				return 0;
	}
	return resp_forward(r, line, nlen, v, vlen);
}

/* RFC 3875 6.2: which of the three response kinds this is. */
static int resp_finish(struct cgi_response *r)
{
	if (r->nph)
		return r->status != 0 ? 0 : -EBADMSG; /* no status line */
	/* RFC 3875 6.2: a response carries Content-Type, or is a redirect. */
	if (!r->has_content_type && r->location == NULL)
		return -EBADMSG;
	if (r->status != 0)
		return 0;
	if (r->location == NULL)
		r->status = 200;
	else if (r->location[0] == '/')
		r->status = 0; /* RFC 3875 6.2.2 local redirect: the gateway re-dispatches */
	else
		/* RFC 3875 6.2.3 client redirect. A relative reference is not a
		 * CGI local-pathquery, but RFC 9110 10.2.2 lets clients resolve it. */
		r->status = 302;
	return 0;
}

int cgi_response_feed(struct cgi_response *r, const char *data, size_t len, size_t *consumed)
{
	size_t pos = 0;
	int rc;

	if (r->done != 0)
		return -EINVAL;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t chunk = nl ? (size_t)(nl - (data + pos)) + 1 : len - pos;

		/* Counted per byte, so the limit trips the same however the
		 * output is chunked. */
		if (chunk > CGI_MAX_HEADER_BYTES - r->header_bytes) {
			rc = -E2BIG;
			goto fail;
		}
		r->header_bytes += chunk;
		if (nl == NULL) {
			if (buf_append(&r->line, data + pos, chunk) < 0) {
				rc = -E2BIG;
				goto fail;
			}
			return 0;
		}
		if (buf_append(&r->line, data + pos, chunk - 1) < 0) {
			rc = -E2BIG;
			goto fail;
		}
		pos += chunk;
		rc = resp_line(r, r->line.data ? r->line.data : "", r->line.len);
		buf_reset(&r->line);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			rc = resp_finish(r);
			if (rc < 0)
				goto fail;
			r->done = 1;
			*consumed = pos;
			return 1;
		}
	}
	return 0;

fail:
	r->done = -1;
	return rc;
}
