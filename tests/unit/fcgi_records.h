/*
 * FastCGI records as a web server writes them, for the unit tests of the
 * codec and of the front's connections.
 */
#ifndef CGIQ_TEST_FCGI_RECORDS_H
#define CGIQ_TEST_FCGI_RECORDS_H

#include <string.h>

#include "util/util.h"

/* A record: header (version 1), content, padding of pad zero bytes. */
static void record(struct buf *b, unsigned type, unsigned id, const void *content, size_t len, unsigned pad)
{
	unsigned char h[8] = {1, (unsigned char)type, (unsigned char)(id >> 8), (unsigned char)id,
	                      (unsigned char)(len >> 8), (unsigned char)len, (unsigned char)pad, 0};
	static const char zeros[256];

	buf_append(b, h, 8);
	if (len)
		buf_append(b, content, len);
	if (pad)
		buf_append(b, zeros, pad);
}

static void nv(struct buf *b, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	unsigned char l[8];
	size_t k = 0;

	if (n < 128) {
		l[k++] = (unsigned char)n;
	} else {
		l[k++] = (unsigned char)(0x80 | n >> 24);
		l[k++] = (unsigned char)(n >> 16);
		l[k++] = (unsigned char)(n >> 8);
		l[k++] = (unsigned char)n;
	}
	if (v < 128) {
		l[k++] = (unsigned char)v;
	} else {
		l[k++] = (unsigned char)(0x80 | v >> 24);
		l[k++] = (unsigned char)(v >> 16);
		l[k++] = (unsigned char)(v >> 8);
		l[k++] = (unsigned char)v;
	}
	buf_append(b, l, k);
	buf_append_str(b, name);
	buf_append_str(b, value);
}

#endif
