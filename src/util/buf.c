#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max_bytes)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max_bytes = max_bytes;
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > b->max_bytes || b->len > b->max_bytes - extra)
		return -ENOBUFS;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = util_xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	int r = buf_reserve(b, len);
	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

char *util_put_uint(char *p, uint64_t v, unsigned base)
{
	char digits[24], *d = digits + sizeof(digits);
	size_t n;

	if (base != 16)
		base = 10;
	do {
		*--d = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	n = (size_t)(digits + sizeof(digits) - d);
	memcpy(p, d, n);
	return p + n;
}

int buf_append_uint(struct buf *b, uint64_t v, unsigned base)
{
	char digits[24];

	return buf_append(b, digits, (size_t)(util_put_uint(digits, v, base) - digits));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data)
		b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* NUL is never a continuation byte, so this stops at the end. */
size_t util_utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

char *util_utf8_fixed(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out, *o;
	size_t n;

	while (*p && (n = *p < 0x80 ? 1 : util_utf8_len(p)) > 0)
		p += n;
	if (*p == '\0')
		return NULL;
	/* each byte at most three: U+FFFD */
	o = out = util_xmalloc(strlen(s) * 3 + 1);
	for (p = (const unsigned char *)s; *p; p += n ? n : 1) {
		n = *p < 0x80 ? 1 : util_utf8_len(p);
		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			memcpy(o, p, n);
			o += n;
		}
	}
	*o = '\0';
	return out;
}

int util_json_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	int r = 0;

	if (s == NULL)
		return buf_append_str(b, "null");
	r = buf_append(b, "\"", 1);
	while (*p && r == 0) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			r = buf_append(b, e, 2);
			p++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			r = buf_append(b, e, 6);
			p++;
		} else if (c < 0x80) {
			r = buf_append(b, p, 1);
			p++;
		} else {
			/* RFC 8259 8.1: JSON text is UTF-8. Bytes that are not
			 * (a CGI program's stderr, a raw request-target) become
			 * U+FFFD one by one instead of making the document invalid. */
			size_t n = util_utf8_len(p);
			if (n == 0) {
				r = buf_append(b, "\\ufffd", 6);
				p++;
			} else {
				r = buf_append(b, p, n);
				p += n;
			}
		}
	}
	if (r == 0)
		r = buf_append(b, "\"", 1);
	return r ? -ENOBUFS : 0;
}
