/*
 * The configuration file format of `cgiq --config FILE` (a pure parser: bytes
 * in, entries or one error out; no I/O, no globals, so it can be fuzzed).
 *
 *     # a comment: from '#' at the start of a line or after blanks, to the end
 *     listen = 127.0.0.1:8080          # key = value, one per line
 *     pass-authorization = yes
 *     script /reports/q[1-4].pl {        # a block: entries for matching scripts
 *         job-timeout = 1h
 *     }
 *
 * Keys are [a-z0-9-]+. A value is the rest of the line after '=', blanks
 * (space, tab) around it removed; it may not be empty. A block opens with
 * `script PATTERN {` on one line (PATTERN has no blanks) and closes with a
 * line holding only `}`; blocks do not nest. Lines end with LF (a CR right
 * before it is dropped). Any other control byte, a NUL, a line beyond
 * APP_CONF_LINE_MAX bytes: an error. Which keys exist and what their values
 * mean is not the parser's business (options.c decides).
 */
#ifndef CGIQ_APP_CONFFILE_H
#define CGIQ_APP_CONFFILE_H

#include <stddef.h>

#define APP_CONF_LINE_MAX 4096

struct app_conf_entry {
	const char *key;    /* NUL-terminated, inside the parsed buffer */
	const char *value;  /* NUL-terminated, inside the parsed buffer, never empty */
	unsigned line;      /* 1-based */
	int block;          /* index into blocks, -1 at the top level */
};

struct app_conf_block {
	const char *pattern; /* inside the parsed buffer */
	unsigned line;       /* of the `script PATTERN {` line */
};

struct app_conf {
	struct app_conf_entry *entries;
	size_t entry_count;
	struct app_conf_block *blocks;
	size_t block_count;
};

struct app_conf_error {
	unsigned line;      /* where it was found (1-based) */
	char message[160];
};

/*
 * Parses text[0..len) in place: keys, values and patterns are NUL-terminated
 * inside text, which must have room for len + 1 bytes (text[len] is written,
 * so the last line needs no LF) and stay alive and unchanged as long as *out
 * is used. Two blocks with the same pattern are an error (the second could
 * never match). Returns 0 and fills *out (free with app_conf_free), or -EINVAL with
 * *err filled and *out empty.
 */
int app_conf_parse(char *text, size_t len, struct app_conf *out, struct app_conf_error *err);

/* Frees the arrays of *c (not the text); safe to call twice. */
void app_conf_free(struct app_conf *c);

#endif
