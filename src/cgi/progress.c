/*
 * Progress lines a program writes on CGIQ_PROGRESS_FD: "DONE/TOTAL text".
 * Pure: bytes in, values out.
 */
#include <errno.h>
#include <string.h>

#include "cgi.h"

/* Reads a decimal at *p (at most 18 digits, so no overflow). */
static int read_count(const char **p, const char *end, int64_t *out)
{
	int64_t v = 0;
	int n = 0;

	while (*p < end && **p >= '0' && **p <= '9') {
		if (++n > 18)
			return -EINVAL;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	if (n == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int cgi_progress_parse(const char *line, size_t len, struct cgi_progress *out)
{
	const char *p = line, *end = line + len;
	size_t n = 0;

	if (len > 0 && line[len - 1] == '\r')
		end--;
	if (read_count(&p, end, &out->done) < 0 || p == end || *p != '/')
		return -EINVAL;
	p++;
	if (read_count(&p, end, &out->total) < 0 || out->total == 0 || out->done > out->total)
		return -EINVAL;
	if (p < end && *p != ' ' && *p != '\t')
		return -EINVAL;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	for (; p < end && n < CGI_PROGRESS_TEXT_MAX; p++) {
		unsigned char c = (unsigned char)*p;
		out->text[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	while (n > 0 && out->text[n - 1] == ' ')
		n--;
	out->text[n] = '\0';
	return 0;
}
