/*
 * Values of HTTP fields that both fronts read (the HTTP front from its
 * parser, the FastCGI front from HTTP_* parameters): Prefer (RFC 7240) and
 * Range (RFC 9110 14.2). Pure: no I/O, no state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static size_t token_len(const char *s)
{
	size_t n = 0;
	while (is_tchar((unsigned char)s[n]))
		n++;
	return n;
}

/* s points at '"'. Returns the byte after the closing quote, NULL when unterminated. */
static const char *skip_quoted(const char *s)
{
	for (s++; *s; s++) {
		if (*s == '\\') {
			if (s[1] == '\0')
				return NULL;
			s++;
		} else if (*s == '"') {
			return s + 1;
		}
	}
	return NULL;
}

/* Skips to the next top-level ',' (or the end), stepping over quoted strings. */
static const char *next_element(const char *s)
{
	while (*s && *s != ',') {
		if (*s == '"') {
			const char *e = skip_quoted(s);
			if (e == NULL)
				return s + strlen(s);
			s = e;
		} else {
			s++;
		}
	}
	return s;
}

/* Reads BWS "=" BWS word at s (s at '='). Sets *val and *vlen (the content of a
 * quoted-string, escapes left in). Returns the byte after, NULL if malformed. */
static const char *read_value(const char *s, const char **val, size_t *vlen)
{
	s = skip_ows(s + 1);
	if (*s == '"') {
		const char *e = skip_quoted(s);
		if (e == NULL)
			return NULL;
		*val = s + 1;
		*vlen = (size_t)(e - 1 - (s + 1));
		return e;
	}
	*val = s;
	*vlen = token_len(s);
	if (*vlen == 0)
		return NULL;
	return s + *vlen;
}

static int token_is(const char *t, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(t, name, len) == 0;
}

/* wait=N: delta-seconds, clamped to INT32_MAX. Returns -1 when not 1*DIGIT. */
static int64_t parse_wait(const char *v, size_t len)
{
	int64_t n = 0;

	if (v == NULL || len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
		if (n > INT32_MAX)
			n = INT32_MAX;
	}
	return n;
}

/*
 * One Prefer field value:
 *   #( token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] ) )
 * A malformed element is skipped up to the next top-level comma.
 */
void util_prefer_parse(const char *s, struct util_prefer *out, int *seen_wait)
{
	while (*s) {
		const char *name, *val = NULL;
		size_t nlen, vlen = 0;

		s = skip_ows(s);
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == '\0')
			break;
		name = s;
		nlen = token_len(s);
		s = skip_ows(s + nlen);
		if (nlen == 0)
			goto malformed;
		if (*s == '=') {
			const char *e = read_value(s, &val, &vlen);
			if (e == NULL)
				goto malformed_value;
			s = skip_ows(e);
		}
		while (*s == ';') {
			const char *pval;
			size_t plen, pvlen;
			s = skip_ows(s + 1);
			plen = token_len(s);
			s = skip_ows(s + plen);
			if (plen > 0 && *s == '=') {
				const char *e = read_value(s, &pval, &pvlen);
				if (e == NULL)
					goto malformed_value;
				s = skip_ows(e);
			}
		}
		if (*s != ',' && *s != '\0')
			goto malformed;

		if (token_is(name, nlen, "respond-async")) {
			out->respond_async = 1;
		} else if (token_is(name, nlen, "processing")) {
			out->processing = 1;
		} else if (token_is(name, nlen, "wait") && !*seen_wait) {
			/* RFC 7240 2: only the first (well-formed) instance counts */
			int64_t w = parse_wait(val, vlen);
			if (w >= 0) {
				out->wait_s = w;
				*seen_wait = 1;
			}
		}
		continue;
malformed_value:
		/* s is at the '=' of a value that is empty or an unterminated
		 * quoted-string (which swallows the rest of the field) */
		s = skip_ows(s + 1);
		if (*s == '"')
			break;
malformed:
		s = next_element(s);
	}
}

/* Range (RFC 9110 14.1.2): one range of bytes; see util.h. */
int util_byte_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	uint64_t a = 0, b = 0;
	const char *p;
	char *end;

	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return 200;
	p = h + 6;
	if (*p == '-') {
		uint64_t n = strtoull(p + 1, &end, 10);
		if (end == p + 1 || *end != '\0' || n == 0)
			return 416;
		if (size == 0)
			return 416;
		if (n > size)
			n = size;
		*off = size - n;
		*len = n;
		return 206;
	}
	if (*p < '0' || *p > '9')
		return 200;
	a = strtoull(p, &end, 10);
	if (*end != '-')
		return 200;
	p = end + 1;
	if (*p == '\0') {
		b = size ? size - 1 : 0;
	} else {
		b = strtoull(p, &end, 10);
		if (*end != '\0' || b < a)
			return 200;
		if (b >= size)
			b = size - 1;
	}
	if (a >= size)
		return 416;
	*off = a;
	*len = b - a + 1;
	return 206;
}
