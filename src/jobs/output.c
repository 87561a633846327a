/*
 * What a running program writes: its CGI header block, then the body (in
 * memory up to the engine's output_mem_bytes, then spooled to a file; at most
 * --max-output), and its stderr (a tail kept for the row, lines logged
 * within --stderr-log-bytes and --stderr-log-rate; at most
 * --max-stderr-bytes). A limit reached is said by the return value; the
 * engine stops the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static int spool_open(struct job *j)
{
	/* Unnamed until linked: a crash leaves nothing behind in the spool. */
	int fd = open(j->e->cfg.spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	j->spool_fd = fd;
	return util_write_all(fd, j->out_mem.data ? j->out_mem.data : "", j->out_mem.len);
}

/* Counts len more body bytes, or says (1) that they pass --max-output:
 * the program is then stopped. */
static int over_limit(struct job *j, size_t len)
{
	if (j->body_bytes + len > j->policy.max_output_bytes) {
		j->output_over = 1;
		log_warnx("job %s: output exceeds %llu bytes, stopping the program", j->id,
		          (unsigned long long)j->policy.max_output_bytes);
		jobs__set_reason(j, "output limit exceeded");
		return 1;
	}
	j->body_bytes += len;
	return 0;
}

static int body_bytes(struct job *j, const char *data, size_t len)
{
	int r;

	if (j->output_over || j->spool_failed || len == 0)
		return 0;
	if (over_limit(j, len))
		return 1;
	if (j->spool_fd < 0 && j->out_mem.len + len <= j->e->cfg.output_mem_bytes) {
		buf_append(&j->out_mem, data, len);
		return 0;
	}
	size_t from_mem = j->spool_fd < 0 ? j->out_mem.len : 0;
	r = j->spool_fd < 0 ? spool_open(j) : 0;
	if (r == 0) {
		buf_free(&j->out_mem);
		r = util_write_all(j->spool_fd, data, len);
	}
	if (r == 0)
		j->e->metrics.spool_written_bytes += from_mem + len;
	if (r < 0) {
		j->spool_failed = 1;
		errno = -r;
		log_warn("job %s: cannot spool output in %s", j->id, j->e->cfg.spool_dir);
		jobs__set_reason(j, "cannot spool output (disk full?)");
		return 1;
	}
	return 0;
}

/* A streamed body: counted against --max-output, then handed to the
 * submitter (or dropped once it has gone), never kept. */
static int stream_bytes(struct job *j, const char *data, size_t len)
{
	if (j->output_over || len == 0)
		return 0;
	if (over_limit(j, len))
		return 1;
	if (j->stream)
		j->stream->data(j, data, len, j->stream_ud);
	return 0;
}

int jobs__output_stdout(struct job *j, const char *data, size_t len)
{
	size_t used;
	int r;

	if (j->header_error)
		return 0; /* drained and dropped: the answer is 502 anyway */
	if (!j->headers_done) {
		if (j->header_sample_len < sizeof(j->header_sample)) {
			size_t n = sizeof(j->header_sample) - j->header_sample_len;
			if (n > len)
				n = len;
			memcpy(j->header_sample + j->header_sample_len, data, n);
			j->header_sample_len += n;
		}
		r = cgi_response_feed(&j->resp, data, len, &used);
		if (r == 0)
			return 0;
		if (r < 0) {
			char esc[256], why[96];
			j->header_error = 1;
			const char *kind = j->resp.nph ? "NPH head" : "CGI header block";
			if (r == -E2BIG)
				snprintf(why, sizeof(why), "%s too large", kind);
			else if (r == -EPROTO)
				snprintf(why, sizeof(why), "%s with Transfer-Encoding (cgiq frames the body itself)", kind);
			else
				snprintf(why, sizeof(why), "malformed %s", kind);
			log_warnx("job %s: %s, first bytes \"%s\"", j->id, why,
			          log_escape(esc, sizeof(esc), j->header_sample, j->header_sample_len));
			jobs__set_reason(j, why);
			return 0;
		}
		j->headers_done = 1;
		data += used;
		len -= used;
		if (j->stream && j->resp.status != 0) {
			/* the head goes out now; a local redirect is run again instead */
			j->streamed = 1;
			j->stream->head(j, j->stream_ud);
		}
	}
	return j->streamed ? stream_bytes(j, data, len) : body_bytes(j, data, len);
}

/* Whether one more stderr line of j may be logged: within the job's volume
 * (stderr_log_bytes) and rate (a bucket of stderr_log_rate lines, refilled
 * at that many a second). A program writing `yes >&2` must not fill the
 * log: what is not logged is counted, said once at the job's end, and still
 * in the stderr tail of its row. */
static int stderr_may_log(struct job *j, size_t len)
{
	const struct job_config *cfg = &j->e->cfg;
	uint64_t now, cap;

	if (cfg->stderr_log_bytes && j->err_logged_bytes + len + 1 > cfg->stderr_log_bytes)
		return 0;
	if (cfg->stderr_log_rate) {
		now = util_mono_ms();
		cap = (uint64_t)cfg->stderr_log_rate * 1000;
		if (j->err_refill_ms == 0)
			j->err_tokens_ms = cap;
		else
			j->err_tokens_ms += (now - j->err_refill_ms) * cfg->stderr_log_rate;
		if (j->err_tokens_ms > cap)
			j->err_tokens_ms = cap;
		j->err_refill_ms = now;
		if (j->err_tokens_ms < 1000)
			return 0;
		j->err_tokens_ms -= 1000;
	}
	j->err_logged_bytes += len + 1;
	return 1;
}

static void stderr_line(struct job *j, const char *line, size_t len)
{
	char esc[STDERR_LINE_MAX + 16];
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (!stderr_may_log(j, len)) {
		j->err_dropped_lines++;
		j->err_dropped_bytes += len + 1;
		j->e->metrics.stderr_dropped_lines++;
		return;
	}
	log_info("job %s stderr: %s", j->id, log_escape(esc, sizeof(esc), line, len));
}

/* The one line that says what of j's stderr did not reach the log. */
void jobs__stderr_dropped_note(const struct job *j)
{
	if (j->err_dropped_lines == 0)
		return;
	log_warnx("job %s: %llu stderr line(s), %llu bytes, not logged (over --stderr-log-bytes %llu or "
	          "--stderr-log-rate %u/s); the last %zu bytes are in its row", j->id,
	          (unsigned long long)j->err_dropped_lines, (unsigned long long)j->err_dropped_bytes,
	          (unsigned long long)j->e->cfg.stderr_log_bytes, j->e->cfg.stderr_log_rate,
	          j->e->cfg.stderr_tail_bytes);
}

int jobs__output_stderr(struct job *j, const char *data, size_t len)
{
	size_t tail = j->e->cfg.stderr_tail_bytes;
	uint64_t max = j->e->cfg.max_stderr_bytes;
	int stop = 0;

	j->err_bytes += len;
	if (max && j->err_bytes > max && !j->stderr_over) {
		j->stderr_over = 1;
		log_warnx("job %s: stderr exceeds %llu bytes (--max-stderr-bytes), stopping the program", j->id,
		          (unsigned long long)max);
		jobs__set_reason(j, "stderr limit exceeded");
		stop = 1;
	}

	/* Keep the last bytes: trim only when twice the size, so appends stay cheap.
	 * The record holds text: a NUL would cut it, so it becomes '?'. */
	size_t start = j->err_tail.len;
	buf_append(&j->err_tail, data, len);
	for (size_t i = start; i < j->err_tail.len; i++)
		if (j->err_tail.data[i] == '\0')
			j->err_tail.data[i] = '?';
	if (j->err_tail.len > 2 * tail)
		buf_consume(&j->err_tail, j->err_tail.len - tail);

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			stderr_line(j, j->err_line.data ? j->err_line.data : "", j->err_line.len);
			buf_reset(&j->err_line);
		} else if (j->err_line.len < STDERR_LINE_MAX) {
			buf_append(&j->err_line, data + i, 1);
		}
	}
	return stop;
}
