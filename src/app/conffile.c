/*
 * The configuration file parser (format in conffile.h). Pure: it only reads
 * and NUL-terminates inside the caller's buffer and allocates the arrays.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "util/util.h"

struct parse {
	char *text;
	size_t len;
	struct app_conf *out;
	struct app_conf_error *err;
	size_t entries_cap, blocks_cap;
	int open_block; /* index of the block being read, -1 at the top level */
};

UTIL_PRINTF(3, 4)
static int fail(struct parse *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	p->err->line = line;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Printable for an error message: the first bytes of a token, escaped. */
static const char *shown(char *dst, size_t size, const char *s, size_t n)
{
	return log_escape(dst, size, s, n > 40 ? 40 : n);
}

static void add_entry(struct parse *p, const char *key, const char *value, unsigned line)
{
	struct app_conf *c = p->out;

	if (c->entry_count == p->entries_cap) {
		p->entries_cap = p->entries_cap ? 2 * p->entries_cap : 16;
		c->entries = util_xrealloc(c->entries, p->entries_cap * sizeof(*c->entries));
	}
	c->entries[c->entry_count].key = key;
	c->entries[c->entry_count].value = value;
	c->entries[c->entry_count].line = line;
	c->entries[c->entry_count].block = p->open_block;
	c->entry_count++;
}

static int open_block(struct parse *p, char *s, char *end, unsigned line)
{
	struct app_conf *c = p->out;
	char esc[64];
	char *pat, *pat_end;

	/* s is after "script"; end is the line's end (comment and blanks cut). */
	if (p->open_block >= 0)
		return fail(p, line, "a script block cannot hold another (the block of line %u is not closed)",
		            c->blocks[p->open_block].line);
	while (s < end && is_blank(*s))
		s++;
	pat = s;
	while (s < end && !is_blank(*s))
		s++;
	pat_end = s;
	while (s < end && is_blank(*s))
		s++;
	if (pat == pat_end || (pat_end - pat == 1 && *pat == '{'))
		return fail(p, line, "script block without a pattern: write `script PATTERN {`");
	if (s == end || *s != '{' || s + 1 != end)
		return fail(p, line, "`script %s` must end with `{` on the same line",
		            shown(esc, sizeof(esc), pat, (size_t)(pat_end - pat)));
	*pat_end = '\0';
	for (size_t i = 0; i < c->block_count; i++)
		if (strcmp(c->blocks[i].pattern, pat) == 0)
			return fail(p, line, "a block for '%s' already exists at line %u (it would never match)",
			            shown(esc, sizeof(esc), pat, strlen(pat)), c->blocks[i].line);
	if (c->block_count == p->blocks_cap) {
		p->blocks_cap = p->blocks_cap ? 2 * p->blocks_cap : 8;
		c->blocks = util_xrealloc(c->blocks, p->blocks_cap * sizeof(*c->blocks));
	}
	c->blocks[c->block_count].pattern = pat;
	c->blocks[c->block_count].line = line;
	p->open_block = (int)c->block_count++;
	return 0;
}

/* One line: s..end, without its LF (and CR). */
static int parse_line(struct parse *p, char *s, char *end, unsigned line)
{
	char esc[64];
	char *key, *key_end, *value;

	for (char *q = s; q < end; q++) {
		unsigned char ch = (unsigned char)*q;
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail(p, line, "control byte 0x%02x (only text lines are allowed)", ch);
	}
	/* A comment runs from a '#' that starts a word to the end of the line. */
	for (char *q = s; q < end; q++) {
		if (*q == '#' && (q == s || is_blank(q[-1]))) {
			end = q;
			break;
		}
	}
	while (s < end && is_blank(*s))
		s++;
	while (end > s && is_blank(end[-1]))
		end--;
	if (s == end)
		return 0;

	if (end - s == 1 && *s == '}') {
		if (p->open_block < 0)
			return fail(p, line, "`}` without an open script block");
		p->open_block = -1;
		return 0;
	}
	key = s;
	while (s < end && is_key_char(*s))
		s++;
	key_end = s;
	if (key_end - key == 6 && memcmp(key, "script", 6) == 0 && (s == end || is_blank(*s))) {
		char *q = s;
		while (q < end && is_blank(*q))
			q++;
		if (q == end || *q != '=') /* else `script = x`: a key, unknown to options.c */
			return open_block(p, s, end, line);
	}
	if (key == key_end)
		return fail(p, line, "expected `key = value`, found '%s'",
		            shown(esc, sizeof(esc), key, (size_t)(end - key)));
	while (s < end && is_blank(*s))
		s++;
	if (s == end || *s != '=')
		return fail(p, line, "expected `=` after '%s' (keys are lower-case letters, digits and -)",
		            shown(esc, sizeof(esc), key, (size_t)(s == end ? key_end - key : s + 1 - key)));
	s++;
	while (s < end && is_blank(*s))
		s++;
	if (s == end)
		return fail(p, line, "'%s' has no value", shown(esc, sizeof(esc), key, (size_t)(key_end - key)));
	value = s;
	*key_end = '\0';
	*end = '\0';
	add_entry(p, key, value, line);
	return 0;
}

int app_conf_parse(char *text, size_t len, struct app_conf *out, struct app_conf_error *err)
{
	struct parse p = { text, len, out, err, 0, 0, -1 };
	size_t start = 0;
	unsigned line = 1;
	int r = 0;

	memset(out, 0, sizeof(*out));
	err->line = 0;
	err->message[0] = '\0';
	while (start < len) {
		char *nl = memchr(text + start, '\n', len - start);
		size_t stop = nl ? (size_t)(nl - text) : len;
		size_t eol = stop;

		if (stop - start > APP_CONF_LINE_MAX) {
			r = fail(&p, line, "line longer than %d bytes", APP_CONF_LINE_MAX);
			break;
		}
		if (memchr(text + start, '\0', stop - start) != NULL) {
			r = fail(&p, line, "NUL byte (only text lines are allowed)");
			break;
		}
		if (eol > start && text[eol - 1] == '\r')
			eol--;
		r = parse_line(&p, text + start, text + eol, line);
		if (r < 0)
			break;
		start = stop + 1;
		line++;
	}
	if (r == 0 && p.open_block >= 0)
		r = fail(&p, out->blocks[p.open_block].line,
		         "script block '%s' is not closed (a line with `}` is missing)",
		         out->blocks[p.open_block].pattern);
	if (r < 0)
		app_conf_free(out);
	return r;
}

void app_conf_free(struct app_conf *c)
{
	free(c->entries);
	free(c->blocks);
	c->entries = NULL;
	c->blocks = NULL;
	c->entry_count = c->block_count = 0;
}
