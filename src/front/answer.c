/*
 * Answers, whatever the wire protocol: reason phrases, error pages, the
 * status a refused submission gets, the 202 document, and the job API
 * (status monitor, DELETE, kept results with Range). The HTTP front writes
 * an answer as "HTTP/1.1 200 OK" and the FastCGI front as "Status: 200 OK";
 * everything else about it is decided here, once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "jobs/jobs.h"

const char *front_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 102: return "Processing";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 305: return "Use Proxy";
	case 306: return "Unused";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 451: return "Unavailable For Legal Reasons";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 506: return "Variant Also Negotiates";
	case 507: return "Insufficient Storage";
	case 508: return "Loop Detected";
	default: return "Unknown";
	}
}

int front_status_has_body(int status) { return !(status < 200 || status == 204 || status == 304); }

void front_answer_init(struct front_answer *a, int status)
{
	memset(a, 0, sizeof(*a));
	a->status = status;
	a->fd = -1;
	buf_init(&a->headers, SIZE_MAX / 2);
	buf_init(&a->body, SIZE_MAX / 2);
}

void front_answer_free(struct front_answer *a)
{
	buf_free(&a->headers);
	buf_free(&a->body);
}

const char *front_answer_reason(const struct front_answer *a)
{
	return a->reason[0] ? a->reason : front_reason(a->status);
}

uint64_t front_answer_body_len(const struct front_answer *a)
{
	return a->fd >= 0 || a->mem ? a->len : a->body.len;
}

const char *front_answer_mem(const struct front_answer *a)
{
	if (a->fd >= 0)
		return NULL;
	return a->mem ? a->mem : a->body.len ? a->body.data : NULL;
}

/* RFC 9110 10.2.3: when to come back. 503: the queue, a drain or the job
 * database; 425 (RFC 8470): a result asked before its job ended. */
static const char *retry_after(int status)
{
	return status == 503 ? "Retry-After: 5\r\n" : status == 425 ? "Retry-After: 1\r\n" : "";
}

void front_answer_error(struct front_answer *a, int status, const char *extra)
{
	front_answer_free(a);
	front_answer_init(a, status);
	buf_append_str(&a->headers, "Content-Type: text/plain; charset=utf-8\r\n");
	if (extra)
		buf_append_str(&a->headers, extra);
	if (extra == NULL || strstr(extra, "Retry-After:") == NULL)
		buf_append_str(&a->headers, retry_after(status));
	buf_printf(&a->body, "%d %s\n", status, front_reason(status));
}

int front_submit_status(int err)
{
	if (err == -EAGAIN || err == -ESHUTDOWN)
		return 503; /* queue full, or draining (SIGTERM) */
	return err == -ENOSPC ? 507 : 500;
}

int64_t front_wait_ms(int64_t wait_s, uint64_t max_wait_ms)
{
	/* RFC 7240 4.3: do not keep the client longer than it asked; a wait
	 * beyond the configured maximum is clamped. */
	if (wait_s < 0)
		return -1;
	return (uint64_t)wait_s * 1000 > max_wait_ms ? (int64_t)max_wait_ms : wait_s * 1000;
}

void front_answer_accepted(struct front_answer *a, struct job_engine *e, const char *jobs_prefix, const char *id,
                           const char *applied)
{
	unsigned retry = 0;

	front_answer_free(a);
	front_answer_init(a, 202);
	if (job_status_json(e, id, &a->body, &retry) < 0)
		buf_printf(&a->body, "{\"id\":\"%s\"}\n", id);
	buf_printf(&a->headers, "Location: %s/%s\r\nContent-Type: application/json\r\nRetry-After: 1\r\n", jobs_prefix,
	           id);
	if (applied)
		buf_printf(&a->headers, "Preference-Applied: %s\r\n", applied);
}

int front_api_route(const char *jobs_prefix, const char *path, const char *method, char id[UTIL_ID_LEN + 1],
                    enum front_api *kind, struct front_answer *a)
{
	int get = method && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0), is_result = 0;

	if (util_job_path_parse(path + strlen(jobs_prefix), id, &is_result) < 0) {
		id[0] = '\0';
		front_answer_error(a, 404, NULL);
		return 404;
	}
	if (is_result) {
		*kind = FRONT_API_RESULT;
		if (get)
			return 0;
		front_answer_error(a, 405, "Allow: GET, HEAD\r\n");
		return 405;
	}
	if (method && strcmp(method, "DELETE") == 0) {
		*kind = FRONT_API_DELETE;
		return 0;
	}
	*kind = FRONT_API_STATUS;
	if (get)
		return 0;
	front_answer_error(a, 405, "Allow: GET, HEAD, DELETE\r\n");
	return 405;
}

int front_api_answer(struct job_engine *e, enum front_api kind, const char *id, const char *tag,
                     struct front_answer *a)
{
	unsigned retry = 0;

	front_answer_free(a);
	if (kind == FRONT_API_DELETE) {
		if (job_delete(e, id) < 0) {
			front_answer_error(a, 404, NULL);
			return 404;
		}
		log_info("%s: job %s deleted", tag, id);
		front_answer_init(a, 204);
		return 204;
	}
	front_answer_init(a, 200);
	if (job_status_json(e, id, &a->body, &retry) < 0) {
		front_answer_error(a, 404, NULL);
		return 404;
	}
	buf_append_str(&a->headers, "Content-Type: application/json\r\nCache-Control: no-store\r\n");
	if (retry)
		buf_printf(&a->headers, "Retry-After: %u\r\n", retry);
	return 200;
}

int front_api_result_open(struct job_engine *e, const char *id, struct job_stored_result *st, struct front_answer *a)
{
	int r = job_stored_result_open(e, id, st);

	if (r == 0)
		return 0;
	/* RFC 8470: too early; the status monitor says when. */
	front_answer_error(a, r == -EAGAIN ? 425 : 404, NULL);
	return a->status;
}

int front_answer_range(struct front_answer *a, const char *range, uint64_t size, uint64_t *off, uint64_t *len)
{
	int r;

	*off = 0;
	*len = size;
	buf_append_str(&a->headers, "Accept-Ranges: bytes\r\n");
	r = range ? util_byte_range(range, size, off, len) : 200;
	if (r == 416) {
		char extra[96];
		snprintf(extra, sizeof(extra), "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
		front_answer_error(a, 416, extra);
	} else if (r == 206) {
		buf_printf(&a->headers, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)*off,
		           (unsigned long long)(*off + *len - 1), (unsigned long long)size);
		a->status = 206;
		a->reason[0] = '\0';
	}
	return a->status;
}

int front_answer_stored(struct front_answer *a, const struct job_stored_result *st, const char *range)
{
	const char *lines = "", *nl;
	uint64_t off = 0, len = st->size;

	if (st->fd < 0) {
		/* The program produced no usable response: its status only. */
		front_answer_error(a, st->http_status, NULL);
		return a->status;
	}
	front_answer_free(a);
	front_answer_init(a, st->http_status);
	if (st->head && (nl = strstr(st->head, "\r\n")) != NULL) {
		size_t n = (size_t)(nl - st->head) < sizeof(a->reason) ? (size_t)(nl - st->head) : sizeof(a->reason) - 1;
		memcpy(a->reason, st->head, n);
		a->reason[n] = '\0';
		lines = nl + 2;
	}
	buf_append_str(&a->headers, lines);
	/* Ranges only over a complete 200: a part of an error is no use. */
	if (st->http_status == 200 && front_answer_range(a, range, st->size, &off, &len) == 416)
		return 416;
	a->fd = st->fd;
	a->off = off;
	a->len = len;
	return a->status;
}

ssize_t front_file_chunk(int fd, uint64_t off, uint64_t end, char *buf, size_t size)
{
	size_t want = end - off < size ? (size_t)(end - off) : size;
	ssize_t n;

	do
		n = pread(fd, buf, want, (off_t)off);
	while (n < 0 && errno == EINTR);
	return n;
}
