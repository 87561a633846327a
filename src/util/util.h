/*
 * util: allocation, logging, growable buffers, value parsing, time and ids.
 * Every other module may use it; it uses nothing of cgiq.
 */
#ifndef CGIQ_UTIL_H
#define CGIQ_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef CGIQ_TESTING
#define CGIQ_STATIC
#else
#define CGIQ_STATIC static
#endif

#define UTIL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define UTIL_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Allocation: these abort the process (one log line) when memory runs out,
 * so callers never check for NULL. util_xstrndup copies at most n bytes. */
void *util_xmalloc(size_t n);
void *util_xcalloc(size_t count, size_t n);
void *util_xrealloc(void *p, size_t n);
char *util_xstrdup(const char *s);
char *util_xstrndup(const char *s, size_t n);

/* ---- logging ----
 * One line per event on stderr: "2026-11-24T18:30:15.123Z cgiq[pid] LEVEL message".
 * log_warn appends ": strerror(errno)" (errno read at entry); log_warnx does not.
 * Thread-safe (one write(2) per line). */
enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_error(const char *fmt, ...) UTIL_PRINTF(1, 2);
void log_warn(const char *fmt, ...) UTIL_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) UTIL_PRINTF(1, 2);
void log_info(const char *fmt, ...) UTIL_PRINTF(1, 2);
void log_debug(const char *fmt, ...) UTIL_PRINTF(1, 2);

/* --log-file: from now on lines are appended to path (created 0640) instead
 * of stderr. Call once, at start-up, before other threads exist. Returns 0,
 * -EBUSY (already called) or a negative errno from open(2). */
int log_open_file(const char *path);
/* SIGHUP: opens the log file's path again (after logrotate renamed it) and
 * switches every thread to it atomically. No effect when logging to stderr.
 * Returns 0 or a negative errno (the old file is kept). Any thread. */
int log_reopen(void);
/* The --log-file path, or NULL when logging to stderr. */
const char *log_file_path(void);

/* Escapes untrusted bytes for a log line: printable ASCII except '\\' and '"'
 * is kept, everything else becomes \xHH. At most src_len bytes are read; the
 * output is NUL-terminated and truncated (ending in "...") to fit dst_size.
 * Returns dst. dst_size must be at least 8. */
char *log_escape(char *dst, size_t dst_size, const char *src, size_t src_len);

/* ---- growable byte buffer with a hard cap (curl's dynbuf "toobig") ----
 * Embeddable. data is always NUL-terminated when non-NULL. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max_bytes; /* appends that would exceed this fail with -ENOBUFS */
};
void buf_init(struct buf *b, size_t max_bytes);
/* Returns 0 or -ENOBUFS (the buffer is unchanged on failure). */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
/* v in base 10 or 16 (lower case), without printf: for the fields of
 * every answer. util_put_uint writes the digits at p (20 at most, no NUL)
 * and returns their end. */
char *util_put_uint(char *p, uint64_t v, unsigned base);
int buf_append_uint(struct buf *b, uint64_t v, unsigned base);
int buf_printf(struct buf *b, const char *fmt, ...) UTIL_PRINTF(2, 3);
/* Room for extra more bytes after len (and the NUL), to be filled in place
 * and then counted in len. Returns 0 or -ENOBUFS. */
int buf_reserve(struct buf *b, size_t extra);
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Frees the storage; safe to call twice. */
void buf_free(struct buf *b);

/* ---- parsing of operator-supplied values ----
 * Durations: "250ms", "2s", "5m", "1h", a bare number is seconds. Sizes: "512",
 * "64k", "10M", "1G" (powers of 1024). Counts: a decimal integer.
 * Each returns 0 or -EINVAL (empty, junk, overflow, negative). */
int util_parse_duration_ms(const char *s, uint64_t *out_ms);
int util_parse_size(const char *s, uint64_t *out_bytes);
int util_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* ---- HTTP field values both fronts read (fields.c) ---- */

/* Prefer (RFC 7240). Start from {0, 0, -1} and feed each field value. */
struct util_prefer {
	int respond_async;
	int processing;       /* draft-wright-http-progress */
	int64_t wait_s;       /* wait=N, -1 when absent */
};
/* One Prefer field value into *out. Malformed elements are ignored (RFC 7240
 * 2); *seen_wait (start at 0) keeps only the first wait. */
void util_prefer_parse(const char *value, struct util_prefer *out, int *seen_wait);

/* A Range field value ("bytes=a-b", "bytes=a-", "bytes=-n") against a body
 * of size bytes. Returns 206 with *off and *len set, 200 to ignore the field
 * (RFC 9110 14.2: unknown unit, several ranges), or 416. */
int util_byte_range(const char *value, uint64_t size, uint64_t *off, uint64_t *len);

/* ---- time ---- */
/* Wall clock in microseconds since the epoch. */
int64_t util_now_us(void);
/* Monotonic clock in milliseconds. */
uint64_t util_mono_ms(void);
/* RFC 9110 5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"; out >= 30 bytes. */
void util_http_date(time_t t, char *out, size_t out_size);
/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7, the form
 * util_http_date writes and every current client sends) into *out. Returns
 * 0, or -1 for anything else (the field is then ignored, as RFC 9110 13.1.3
 * says for an invalid date). */
int util_http_date_parse(const char *s, time_t *out);
/* ISO 8601 UTC with milliseconds, e.g. "2026-11-24T18:30:15.123Z"; out >= 32 bytes. */
void util_iso_time(int64_t us, char *out, size_t out_size);

/* ---- ids ---- */
#define UTIL_ID_LEN 32
/* 128 bits from getrandom(2) as 32 lowercase hex digits plus NUL. */
void util_random_id(char out[UTIL_ID_LEN + 1]);
/* 1 when s is exactly 32 lowercase hex digits. */
int util_id_valid(const char *s);
/* The rest of a job API path after its prefix: "/ID" or "/ID/result" (the
 * leading "/" optional). Copies ID into id and sets *is_result; returns 0,
 * or -1 when it is neither (a 404, decided without touching the database). */
int util_job_path_parse(const char *rest, char id[UTIL_ID_LEN + 1], int *is_result);

/* ---- JSON ---- */
/* Appends s as a JSON string literal (with quotes); NULL appends null.
 * Bytes that are not well-formed UTF-8 become \ufffd, so the output is
 * always valid JSON. Returns 0 or -ENOBUFS (the buffer may hold part). */
int util_json_string(struct buf *b, const char *s);

/* ---- UTF-8 ---- */
/* Length of the well-formed UTF-8 sequence of two to four bytes at s (RFC
 * 3629 4: no overlong forms, no surrogates, nothing above U+10FFFF), or 0
 * (an ASCII byte is not one). s is NUL-terminated. */
size_t util_utf8_len(const unsigned char *s);
/* NULL when s is well-formed UTF-8; else a copy (free it) in which each byte
 * that is not is U+FFFD, as util_json_string shows it. */
char *util_utf8_fixed(const char *s);

/* ---- files ---- */
/* mkdir -p with mode 0750 for missing components. Returns 0 or -errno. */
int util_mkdirs(const char *path);
/* Writes all len bytes of data to fd (a file: no partial writes but on
 * EINTR or a full disk). Returns 0 or a negative errno (-ENOSPC when the
 * disk took no byte). */
int util_write_all(int fd, const char *data, size_t len);

#endif
