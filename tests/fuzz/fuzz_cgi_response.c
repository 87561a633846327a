/*
 * libFuzzer target: the CGI response header parser (src/cgi/response.c).
 * The program's output is fed once whole and once in fuzzer-chosen pieces
 * (pipe reads end anywhere); both must give the same result, and a block the
 * parser accepts must be safe to copy into an HTTP response: no CR, LF or
 * NUL inside a forwarded line (response splitting), a valid status.
 */
#include <errno.h>
#include <string.h>

#include "cgi/cgi.h"
#include "fuzz.h"

#define FUZZ_CGI_MAX_INPUT (256 * 1024)

struct fuzz_cgi_result {
	int rc;
	size_t consumed; /* bytes of the whole payload that were the header block */
};

static struct fuzz_cgi_result feed_all(struct cgi_response *r, const uint8_t *data, size_t len,
                                       const size_t *cuts, size_t ncuts)
{
	struct fuzz_cgi_result res = { 0, 0 };
	size_t start = 0;

	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len, used = 0;
		int rc = cgi_response_feed(r, (const char *)data + start, end - start, &used);
		if (rc == 1) {
			FUZZ_CHECK(used <= end - start);
			res.rc = 1;
			res.consumed = start + used;
			return res;
		}
		if (rc < 0) {
			FUZZ_CHECK(rc == -EBADMSG || rc == -E2BIG);
			/* http.h: not to be called again, but it must refuse, not crash. */
			FUZZ_CHECK(cgi_response_feed(r, "\n", 1, &used) < 0);
			res.rc = rc;
			return res;
		}
		FUZZ_CHECK(rc == 0);
		start = end;
	}
	return res;
}

static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Every forwarded line is "token: value\r\n" with a value free of CTLs. */
static void check_forwarded(const struct cgi_response *r)
{
	const char *p = r->headers.data ? r->headers.data : "";
	const char *end = p + r->headers.len;
	size_t lines = 0;

	FUZZ_CHECK(strlen(p) == r->headers.len);
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		const char *colon;
		FUZZ_CHECK(eol != NULL);
		colon = memchr(p, ':', (size_t)(eol - p));
		FUZZ_CHECK(colon != NULL && colon > p && colon + 1 < eol + 1);
		for (const char *c = p; c < colon; c++)
			FUZZ_CHECK(is_tchar((unsigned char)*c));
		for (const char *c = colon + 1; c < eol; c++) {
			unsigned char u = (unsigned char)*c;
			FUZZ_CHECK((u >= 0x20 || u == '\t') && u != 0x7f);
		}
		/* The gateway owns framing: these never reach the client from a program. */
		FUZZ_CHECK(strncasecmp(p, "Content-Length:", 15) != 0);
		FUZZ_CHECK(strncasecmp(p, "Transfer-Encoding:", 18) != 0);
		FUZZ_CHECK(strncasecmp(p, "Status:", 7) != 0);
		lines++;
		p = eol + 2;
	}
	FUZZ_CHECK(lines == r->header_count);
	FUZZ_CHECK(lines <= CGI_MAX_HEADERS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cgi_response whole, split;
	struct fuzz_cgi_result a, b;
	struct fuzz_split s;

	if (size > FUZZ_CGI_MAX_INPUT)
		return 0;
	fuzz_split_init(&s, data, size);
	cgi_response_init(&whole);
	cgi_response_init(&split);
	a = feed_all(&whole, s.payload, s.len, NULL, 0);
	b = feed_all(&split, s.payload, s.len, s.cuts, s.ncuts);
	FUZZ_CHECK(a.rc == b.rc);
	if (a.rc == 1) {
		FUZZ_CHECK(a.consumed == b.consumed);
		FUZZ_CHECK(a.consumed <= CGI_MAX_HEADER_BYTES);
		FUZZ_CHECK(whole.status == split.status);
		FUZZ_CHECK(whole.status == 0 || (whole.status >= 100 && whole.status <= 599));
		/* RFC 3875 6.2: a document or a redirect */
		FUZZ_CHECK(whole.has_content_type || whole.location != NULL);
		if (whole.status == 0)
			FUZZ_CHECK(whole.location != NULL && whole.location[0] == '/');
		FUZZ_CHECK(whole.headers.len == split.headers.len);
		FUZZ_CHECK(whole.headers.len == 0 ||
		           memcmp(whole.headers.data, split.headers.data, whole.headers.len) == 0);
		FUZZ_CHECK((whole.reason == NULL) == (split.reason == NULL));
		if (whole.reason != NULL) {
			FUZZ_CHECK(strcmp(whole.reason, split.reason) == 0);
			for (const char *c = whole.reason; *c; c++)
				FUZZ_CHECK((unsigned char)*c >= 0x20 || *c == '\t');
		}
		if (whole.location != NULL)
			for (const char *c = whole.location; *c; c++)
				FUZZ_CHECK((unsigned char)*c >= 0x20 || *c == '\t');
		check_forwarded(&whole);
	}
	cgi_response_free(&whole);
	cgi_response_free(&split);
	return 0;
}
