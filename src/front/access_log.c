/*
 * The access log: one line per request, from both fronts, in the Combined Log
 * Format followed by the job id, the 102s sent, the job's and the request's
 * durations.
 *
 * Lines are appended to a memory buffer under a mutex (any thread may log
 * or flush) and written with one write(2) when the buffer passes
 * ACCESS_FLUSH_BYTES, on a timer every ACCESS_FLUSH_MS on the loop thread,
 * and at shutdown. So the loop never waits on the disk for one line; a crash
 * (or SIGKILL) loses at most the last ACCESS_FLUSH_MS of lines. A clean stop
 * (SIGTERM) loses none.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"

#define ACCESS_FLUSH_MS 500
#define ACCESS_FLUSH_BYTES (32 * 1024)
/* Beyond this (the file cannot be written and keeps failing), new lines are
 * dropped and counted instead of growing memory without bound. */
#define ACCESS_PENDING_MAX (1024 * 1024)
/* Longest client-supplied field logged, before escaping; longer ones end "...". */
#define ACCESS_FIELD_MAX 8192

struct front_access_log {
	pthread_mutex_t mu;
	char *path;          /* NULL for stdout */
	int fd;
	int write_failed;    /* under mu: logged once until a write succeeds */
	uint64_t dropped;    /* under mu: lines lost since the last report */
	struct buf pending;  /* under mu */
	uv_timer_t timer;
	int timer_open;
};

void front_access_escape(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char tmp[4 * 64];
	size_t n = 0, max = len > ACCESS_FIELD_MAX ? ACCESS_FIELD_MAX : len;

	for (size_t i = 0; i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		/* As nginx does for its log: '"', '\\', controls and non-ASCII as \xHH,
		 * so a line can neither be split nor have its quoted fields forged. */
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
			tmp[n++] = '\\';
			tmp[n++] = 'x';
			tmp[n++] = hex[ch >> 4];
			tmp[n++] = hex[ch & 15];
		} else {
			tmp[n++] = (char)ch;
		}
		if (n > sizeof(tmp) - 4) {
			buf_append(out, tmp, n);
			n = 0;
		}
	}
	if (n > 0)
		buf_append(out, tmp, n);
	if (max < len)
		buf_append_str(out, "...");
}

static void append_quoted(struct buf *out, const char *s)
{
	buf_append_str(out, "\"");
	if (s == NULL || *s == '\0')
		buf_append_str(out, "-");
	else
		front_access_escape(out, s, strlen(s));
	buf_append_str(out, "\"");
}

static void append_field(struct buf *out, const char *s)
{
	if (s == NULL || *s == '\0')
		buf_append_str(out, "-");
	else
		front_access_escape(out, s, strlen(s));
}

void front_access_format(struct buf *out, const struct front_access_entry *e)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(e->time_us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	append_field(out, e->host);
	buf_append_str(out, " - ");
	append_field(out, e->user);
	buf_printf(out, " [%02d/%s/%04d:%02d:%02d:%02d +0000] ", tm.tm_mday, months[tm.tm_mon % 12],
	           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	/* The request line as nginx logs $request: method, target, protocol. */
	buf_append_str(out, "\"");
	if (e->method == NULL || e->target == NULL) {
		buf_append_str(out, "-");
	} else {
		front_access_escape(out, e->method, strlen(e->method));
		buf_append_str(out, " ");
		front_access_escape(out, e->target, strlen(e->target));
		if (e->protocol) {
			buf_append_str(out, " ");
			front_access_escape(out, e->protocol, strlen(e->protocol));
		}
	}
	buf_printf(out, "\" %d %llu ", e->status, (unsigned long long)e->bytes);
	append_quoted(out, e->referer);
	buf_append_str(out, " ");
	append_quoted(out, e->user_agent);
	buf_printf(out, " %s %u ", e->job_id && *e->job_id ? e->job_id : "-", e->processing_sent);
	if (e->job_ms < 0)
		buf_append_str(out, "-");
	else
		buf_printf(out, "%lld", (long long)e->job_ms);
	buf_printf(out, " %llu\n", (unsigned long long)e->request_ms);
}

/* Under mu. */
static void flush_locked(struct front_access_log *l)
{
	size_t off = 0;

	if (l->dropped > 0) {
		log_warnx("access log: %llu line(s) dropped (the log could not be written)",
		          (unsigned long long)l->dropped);
		l->dropped = 0;
	}
	while (off < l->pending.len) {
		ssize_t n = write(l->fd, l->pending.data + off, l->pending.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!l->write_failed)
				log_warn("access log %s: write", l->path ? l->path : "(stdout)");
			l->write_failed = 1;
			/* Kept for the next try, within ACCESS_PENDING_MAX. */
			buf_consume(&l->pending, off);
			return;
		}
		off += (size_t)n;
	}
	l->write_failed = 0;
	buf_reset(&l->pending);
}

void front_access_log_flush(struct front_access_log *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	flush_locked(l);
	pthread_mutex_unlock(&l->mu);
}

static void on_flush_timer(uv_timer_t *t)
{
	front_access_log_flush(t->data);
}

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

int front_access_log_open(uv_loop_t *loop, const char *path, struct front_access_log **out)
{
	struct front_access_log *l;
	int fd = STDOUT_FILENO;

	if (strcmp(path, "-") != 0) {
		fd = open_file(path);
		if (fd < 0)
			return fd;
	}
	l = util_xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	l->fd = fd;
	l->path = strcmp(path, "-") != 0 ? util_xstrdup(path) : NULL;
	buf_init(&l->pending, ACCESS_PENDING_MAX);
	if (loop) {
		uv_timer_init(loop, &l->timer);
		l->timer.data = l;
		l->timer_open = 1;
		uv_timer_start(&l->timer, on_flush_timer, ACCESS_FLUSH_MS, ACCESS_FLUSH_MS);
		/* The timer alone never keeps the daemon running. */
		uv_unref((uv_handle_t *)&l->timer);
	}
	*out = l;
	return 0;
}

void front_access_log_write(struct front_access_log *l, const struct front_access_entry *e)
{
	struct buf line;

	if (l == NULL)
		return;
	buf_init(&line, ACCESS_PENDING_MAX);
	front_access_format(&line, e);
	pthread_mutex_lock(&l->mu);
	if (buf_append(&l->pending, line.data, line.len) < 0)
		l->dropped++;
	if (l->pending.len >= ACCESS_FLUSH_BYTES && !l->write_failed)
		flush_locked(l);
	pthread_mutex_unlock(&l->mu);
	buf_free(&line);
}

int front_access_log_reopen(struct front_access_log *l)
{
	int fd, r = 0;

	if (l == NULL || l->path == NULL)
		return 0;
	pthread_mutex_lock(&l->mu);
	flush_locked(l); /* the old file gets what was logged before the rotation */
	fd = open_file(l->path);
	if (fd < 0) {
		r = fd;
		errno = -fd;
		log_warn("access log %s: reopen (still writing to the old file)", l->path);
	} else {
		close(l->fd);
		l->fd = fd;
		l->write_failed = 0;
	}
	pthread_mutex_unlock(&l->mu);
	return r;
}

void front_access_log_stop(struct front_access_log *l)
{
	if (l == NULL)
		return;
	if (l->timer_open) {
		l->timer_open = 0;
		uv_close((uv_handle_t *)&l->timer, NULL);
	}
	front_access_log_flush(l);
}

void front_access_log_free(struct front_access_log *l)
{
	if (l == NULL)
		return;
	front_access_log_flush(l);
	if (l->path)
		close(l->fd);
	pthread_mutex_destroy(&l->mu);
	buf_free(&l->pending);
	free(l->path);
	free(l);
}
