/*
 * The job engine: spawns programs, pumps their pipes, enforces deadlines and
 * output limits, and decides each job's final state.
 *
 * Lifetime: a job has up to two references, the submitter's (dropped by
 * job_release) and the engine's (dropped when the job has ended and its libuv
 * handles are closed). It is freed when both are gone, never inside one of
 * its own handle callbacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"


static void job_start(struct job *j);
static void job_progress_bytes(struct job *j, const char *data, size_t len);
static void job_exited(struct job *j, int status);
static void job_maybe_end(struct job *j);
static void job_kill_sequence(struct job *j);

/* ------------------------------------------------------------------ */

static void job_free(struct job *j)
{
	cgi_env_free(&j->env);
	if (j->body_fd >= 0)
		close(j->body_fd);
	if (j->spool_fd >= 0)
		close(j->spool_fd);
	if (j->prog_fd >= 0)
		close(j->prog_fd);
	free(j->body_mem);
	free(j->script);
	free(j->cwd);
	free(j->method);
	free(j->uri);
	free(j->peer);
	free(j->reason);
	free(j->body_path);
	free(j->result_path);
	free(j->result_head);
	free(j->progress_text);
	free(j->coalesce_key);
	cgi_response_free(&j->resp);
	buf_free(&j->out_mem);
	buf_free(&j->err_line);
	buf_free(&j->err_tail);
	buf_free(&j->prog_line);
	free(j);
}

void jobs__job_unref(struct job *j)
{
	if (--j->refs == 0)
		job_free(j);
}

static void job_set_reason(struct job *j, const char *reason)
{
	if (j->reason == NULL && reason != NULL)
		j->reason = util_xstrdup(reason);
}

void jobs__record_base(const struct job *j, struct store_job *r)
{
	store_job_init(r);
	memcpy(r->id, j->id, sizeof(r->id));
	r->state = j->state;
}

static void on_flush(uv_timer_t *h)
{
	struct job_engine *e = h->data;
	jobs__recorder_flush(e->rec);
}

/* Rows reach the recorder thread at most every RECORD_FLUSH_MS: under load
 * one wake-up and one transaction carry many jobs, and the loop thread and
 * the programs keep the CPU. */
void jobs__record_schedule_flush(struct job_engine *e)
{
	if (!uv_is_active((uv_handle_t *)&e->flush) && !e->closed_flush)
		uv_timer_start(&e->flush, on_flush, RECORD_FLUSH_MS, 0);
}

void jobs__record_put(struct job_engine *e, int kind, const struct store_job *r)
{
	jobs__recorder_put(e->rec, kind, r, 0, NULL);
	jobs__record_schedule_flush(e);
}

/* ------------------------------------------------------------------ */
/* handles */

static void on_handle_closed(uv_handle_t *h)
{
	struct job *j = h->data;
	if (--j->handles_open == 0)
		jobs__job_unref(j); /* the engine's reference */
}

static void close_pipe(struct job *j, int which)
{
	if (!j->pipe_open[which])
		return;
	j->pipe_open[which] = 0;
	uv_close((uv_handle_t *)&j->pipes[which], on_handle_closed);
}

static int open_pipe(struct job *j, int which, int fd)
{
	int r = uv_pipe_init(j->e->loop, &j->pipes[which], 0);
	if (r < 0) {
		close(fd);
		return r;
	}
	j->pipes[which].data = j;
	j->handles_open++;
	j->pipe_open[which] = 1;
	r = uv_pipe_open(&j->pipes[which], fd);
	if (r < 0) {
		close(fd);
		close_pipe(j, which);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* output */

static int spool_write(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

static int spool_open(struct job *j)
{
	/* Unnamed until linked: a crash leaves nothing behind in the spool. */
	int fd = open(j->e->cfg.spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	j->spool_fd = fd;
	return spool_write(fd, j->out_mem.data ? j->out_mem.data : "", j->out_mem.len);
}

static void job_body_bytes(struct job *j, const char *data, size_t len)
{
	int r;

	if (j->output_over || j->spool_failed || len == 0)
		return;
	if (j->body_bytes + len > j->policy.max_output_bytes) {
		j->output_over = 1;
		log_warnx("job %s: output exceeds %llu bytes, stopping the program", j->id,
		          (unsigned long long)j->policy.max_output_bytes);
		job_set_reason(j, "output limit exceeded");
		job_kill_sequence(j);
		return;
	}
	j->body_bytes += len;
	if (j->spool_fd < 0 && j->out_mem.len + len <= j->e->cfg.output_mem_bytes) {
		buf_append(&j->out_mem, data, len);
		return;
	}
	size_t from_mem = j->spool_fd < 0 ? j->out_mem.len : 0;
	r = j->spool_fd < 0 ? spool_open(j) : 0;
	if (r == 0) {
		buf_free(&j->out_mem);
		r = spool_write(j->spool_fd, data, len);
	}
	if (r == 0)
		j->e->metrics.spool_written_bytes += from_mem + len;
	if (r < 0) {
		j->spool_failed = 1;
		errno = -r;
		log_warn("job %s: cannot spool output in %s", j->id, j->e->cfg.spool_dir);
		job_set_reason(j, "cannot spool output (disk full?)");
		job_kill_sequence(j);
	}
}

static void job_stdout(struct job *j, const char *data, size_t len)
{
	size_t used;
	int r;

	if (j->header_error)
		return; /* drained and dropped: the answer is 502 anyway */
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
			return;
		if (r < 0) {
			char esc[256];
			j->header_error = 1;
			log_warnx("job %s: malformed CGI header block (%s), first bytes \"%s\"", j->id,
			          r == -E2BIG ? "too large" : "syntax",
			          log_escape(esc, sizeof(esc), j->header_sample, j->header_sample_len));
			job_set_reason(j, r == -E2BIG ? "CGI header block too large"
			                              : "malformed CGI header block");
			return;
		}
		j->headers_done = 1;
		data += used;
		len -= used;
	}
	job_body_bytes(j, data, len);
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

static void job_stderr_line(struct job *j, const char *line, size_t len)
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
static void job_stderr_dropped_note(const struct job *j)
{
	if (j->err_dropped_lines == 0)
		return;
	log_warnx("job %s: %llu stderr line(s), %llu bytes, not logged (over --stderr-log-bytes %llu or "
	          "--stderr-log-rate %u/s); the last %zu bytes are in its row", j->id,
	          (unsigned long long)j->err_dropped_lines, (unsigned long long)j->err_dropped_bytes,
	          (unsigned long long)j->e->cfg.stderr_log_bytes, j->e->cfg.stderr_log_rate,
	          j->e->cfg.stderr_tail_bytes);
}

static void job_stderr(struct job *j, const char *data, size_t len)
{
	size_t tail = j->e->cfg.stderr_tail_bytes;
	uint64_t max = j->e->cfg.max_stderr_bytes;

	j->err_bytes += len;
	if (max && j->err_bytes > max && !j->stderr_over) {
		j->stderr_over = 1;
		log_warnx("job %s: stderr exceeds %llu bytes (--max-stderr-bytes), stopping the program", j->id,
		          (unsigned long long)max);
		job_set_reason(j, "stderr limit exceeded");
		job_kill_sequence(j);
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
			job_stderr_line(j, j->err_line.data ? j->err_line.data : "", j->err_line.len);
			buf_reset(&j->err_line);
		} else if (j->err_line.len < STDERR_LINE_MAX) {
			buf_append(&j->err_line, data + i, 1);
		}
	}
}

static void progress_save(struct job *j)
{
	struct store_job r;

	jobs__record_base(j, &r);
	r.progress_done = j->progress_done;
	r.progress_total = j->progress_total;
	r.progress_text = j->progress_text;
	jobs__record_put(j->e, JOBS__REC_PROGRESS, &r);
	j->progress_saved_ms = util_mono_ms();
	j->progress_unsaved = 0;
}

static void job_progress_line(struct job *j, const char *line, size_t len)
{
	struct cgi_progress p;

	if (cgi_progress_parse(line, len, &p) < 0 || p.done < j->progress_done) {
		/* Malformed, or going backwards: ignored, counted. */
		j->progress_bad++;
		log_debug("job %s: progress line ignored (%u so far)", j->id, j->progress_bad);
		return;
	}
	j->progress_done = p.done;
	j->progress_total = p.total;
	free(j->progress_text);
	j->progress_text = util_xstrdup(p.text);
	/* At most one row write a second per job; the last one is written at the end. */
	if (util_mono_ms() - j->progress_saved_ms >= 1000)
		progress_save(j);
	else
		j->progress_unsaved = 1;
}

void jobs__progress_drain(struct job *j)
{
	char chunk[4096];
	ssize_t n;

	while (j->prog_fd >= 0) {
		n = read(j->prog_fd, chunk, sizeof(chunk));
		if (n > 0) {
			job_progress_bytes(j, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			/* EOF: nobody will write again. */
			close(j->prog_fd);
			j->prog_fd = -1;
		}
		break;
	}
}

static void job_progress_bytes(struct job *j, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			job_progress_line(j, j->prog_line.data ? j->prog_line.data : "", j->prog_line.len);
			buf_reset(&j->prog_line);
		} else if (buf_append(&j->prog_line, data + i, 1) < 0) {
			/* A line longer than any valid one: drop it whole. */
			j->progress_bad++;
			buf_reset(&j->prog_line);
		}
	}
}

void job_loop_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	/* One loop thread, and every read callback consumes its bytes before
	 * returning: one buffer serves every stream of the loop. */
	static char chunk[JOB_LOOP_READ_BYTES];
	(void)h;
	(void)suggested;
	b->base = chunk;
	b->len = sizeof(chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct job *j = s->data;
	int which = (uv_pipe_t *)s == &j->pipes[PIPE_OUT] ? PIPE_OUT : PIPE_ERR;

	if (n > 0) {
		if (which == PIPE_OUT)
			job_stdout(j, b->base, (size_t)n);
		else
			job_stderr(j, b->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	if (n != UV_EOF)
		log_warnx("job %s: reading %s: %s", j->id,
		          which == PIPE_OUT ? "stdout" : "stderr",
		          uv_strerror((int)n));
	close_pipe(j, which);
	job_maybe_end(j);
}

static void on_stdin_written(uv_write_t *req, int status)
{
	struct job *j = req->data;
	/* EPIPE: the program did not read its body; that is its right. */
	if (status < 0 && status != UV_EPIPE && status != UV_ECANCELED)
		log_warnx("job %s: writing the request body: %s", j->id, uv_strerror(status));
	close_pipe(j, PIPE_IN);
	free(j->body_mem);
	j->body_mem = NULL;
	job_maybe_end(j);
}

/* ------------------------------------------------------------------ */
/* kill sequence and deadline */

static void on_timer(uv_timer_t *t)
{
	struct job *j = t->data;

	if (j->kill_phase == 0 && j->lingering) {
		log_warnx("job %s: pid %d exited but its pipes are still open after %llu ms; "
		          "stopping what it left behind", j->id, (int)j->pid,
		          (unsigned long long)j->policy.kill_grace_ms);
		job_kill_sequence(j);
		return;
	}
	if (j->kill_phase == 0) {
		/* the job deadline */
		j->timed_out = 1;
		log_warnx("job %s: deadline of %llu ms reached, stopping pid %d", j->id,
		          (unsigned long long)j->policy.job_timeout_ms, (int)j->pid);
		job_set_reason(j, "job timeout");
		job_kill_sequence(j);
		return;
	}
	if (j->kill_phase == 1) {
		j->kill_phase = 2;
		kill(-j->pid, SIGKILL);
		log_info("job %s: SIGKILL sent to process group %d", j->id, (int)j->pid);
		/* Give the kernel a moment to tear the group down, then stop waiting
		 * for pipes that something outside the group may still hold. */
		uv_timer_start(&j->timer, on_timer, 1000, 0);
		return;
	}
	close_pipe(j, PIPE_IN);
	close_pipe(j, PIPE_OUT);
	close_pipe(j, PIPE_ERR);
	job_maybe_end(j);
}

static void job_kill_sequence(struct job *j)
{
	if (j->kill_phase != 0 || j->pid <= 0)
		return;
	j->kill_phase = 1;
	/* The whole group: a script's children and grandchildren go too. */
	if (kill(-j->pid, SIGTERM) < 0 && errno != ESRCH)
		log_warn("job %s: kill(-%d, SIGTERM)", j->id, (int)j->pid);
	/* And what left the group and was orphaned already (setsid, double fork). */
	jobs__leftovers_stop_job(j->e, j);
	uv_timer_start(&j->timer, on_timer, j->policy.kill_grace_ms, 0);
}

/* ------------------------------------------------------------------ */
/* ending */

/* The reason for a program ended by sig: the limit it hit when the signal
 * says so (the kernel sends SIGXCPU at the soft CPU limit, SIGKILL at the hard
 * one, SIGXFSZ for a too large file), else the signal. cgiq's own SIGKILLs
 * (timeout, cancel, output limit) are recorded before this is reached. */
static void job_signal_reason(const struct job *j, int sig, const char *when, char *why, size_t size)
{
	const struct cgi_limits *l = &j->policy.limits;

	if (sig == SIGXCPU && l && l->cpu_s)
		snprintf(why, size, "CPU time limit (--rlimit-cpu %llus) exceeded%s",
		         (unsigned long long)l->cpu_s, when);
	else if (sig == SIGKILL && l && l->cpu_s && j->kill_phase < 2)
		snprintf(why, size, "killed by signal 9%s (CPU time hard limit --rlimit-cpu %llus + 1s, "
		         "or killed from outside cgiq)", when, (unsigned long long)l->cpu_s);
	else if (sig == SIGXFSZ && l && l->fsize_bytes)
		snprintf(why, size, "file size limit (--rlimit-fsize %llu bytes) exceeded%s",
		         (unsigned long long)l->fsize_bytes, when);
	else
		snprintf(why, size, "killed by signal %d%s", sig, when);
}

static void job_decide(struct job *j)
{
	struct job_result *res = &j->result;
	int exit_ok = j->exited && WIFEXITED(j->wait_status) && WEXITSTATUS(j->wait_status) == 0;
	char why[160];

	res->resp = NULL;
	if (j->interrupted) {
		j->state = STORE_INTERRUPTED;
		res->http_status = 503;
	} else if (j->cancelled) {
		/* Only a client still waiting (its job deleted by id) sees this. */
		j->state = STORE_CANCELLED;
		res->http_status = 503;
	} else if (j->timed_out) {
		j->state = STORE_TIMED_OUT;
		res->http_status = 504; /* nothing of the response has been sent yet */
	} else if (j->spool_failed) {
		j->state = STORE_FAILED;
		res->http_status = 507;
	} else if (j->output_over || j->stderr_over) {
		j->state = STORE_FAILED;
		res->http_status = 502;
	} else if (!j->headers_done) {
		j->state = STORE_FAILED;
		res->http_status = 502;
		if (j->reason == NULL) {
			if (j->exited && WIFSIGNALED(j->wait_status))
				job_signal_reason(j, WTERMSIG(j->wait_status), " before its headers ended", why,
				                  sizeof(why));
			else
				snprintf(why, sizeof(why), "exited with status %d before its headers ended",
				         j->exited ? WEXITSTATUS(j->wait_status) : -1);
			job_set_reason(j, why);
		}
		if (!j->header_error) {
			char esc[256];
			log_warnx("job %s: %s; first bytes \"%s\"", j->id, j->reason,
			          log_escape(esc, sizeof(esc), j->header_sample, j->header_sample_len));
		}
	} else if (j->exited && WIFSIGNALED(j->wait_status)) {
		/* The output may be cut anywhere: do not pass it off as complete. */
		j->state = STORE_FAILED;
		res->http_status = 502;
		job_signal_reason(j, WTERMSIG(j->wait_status), "", why, sizeof(why));
		job_set_reason(j, why);
	} else {
		/* A complete header block: the program chose its answer. A non-zero
		 * exit still marks the job failed in the record. */
		res->resp = &j->resp;
		res->http_status = j->resp.status;
		if (exit_ok) {
			j->state = STORE_SUCCEEDED;
		} else {
			j->state = STORE_FAILED;
			snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(j->wait_status));
			job_set_reason(j, why);
		}
	}
	res->state = j->state;
	res->reason = j->reason;
	res->exit_code = j->exited && WIFEXITED(j->wait_status) ? WEXITSTATUS(j->wait_status) : -1;
	res->term_signal = j->exited && WIFSIGNALED(j->wait_status) ? WTERMSIG(j->wait_status) : -1;
	res->body_bytes = res->resp ? j->body_bytes : 0;
	if (res->resp == NULL) {
		/* None of the output is served (an error status): its unnamed spool
		 * file goes now, not with the job, which a status monitor may keep
		 * in memory until --result-ttl. A spool the job filled is free for
		 * the next one at once. */
		if (j->spool_fd >= 0) {
			close(j->spool_fd);
			j->spool_fd = -1;
		}
		buf_free(&j->out_mem);
	}
	res->body_fd = res->resp ? j->spool_fd : -1;
	res->body_mem = res->resp && j->spool_fd < 0 ? (j->out_mem.data ? j->out_mem.data : "") : NULL;
}

static void job_record_end(struct job *j)
{
	struct store_job r;
	jobs__record_base(j, &r);
	r.finished_at_us = util_now_us();
	if (j->exited && WIFEXITED(j->wait_status))
		r.exit_code = WEXITSTATUS(j->wait_status);
	if (j->exited && WIFSIGNALED(j->wait_status))
		r.term_signal = WTERMSIG(j->wait_status);
	if (j->result.http_status > 0 && j->result.http_status < 600 && !j->cancelled && !j->interrupted)
		r.http_status = j->result.http_status;
	r.pid = j->pid > 0 ? j->pid : -1;
	r.bytes_out = (int64_t)j->result.body_bytes;
	r.processing_sent = j->processing_sent;
	if (j->err_tail.len > 0) {
		size_t tail = j->e->cfg.stderr_tail_bytes;
		if (j->err_tail.len > tail)
			buf_consume(&j->err_tail, j->err_tail.len - tail);
		r.stderr_tail = j->err_tail.data;
	}
	jobs__progress_drain(j);
	if (j->prog_fd >= 0) {
		close(j->prog_fd);
		j->prog_fd = -1;
	}
	if (j->progress_unsaved)
		progress_save(j);
	r.reason = j->reason;
	r.expires_at_us = r.finished_at_us + (int64_t)j->e->cfg.result_ttl_ms * 1000;
	j->finished_at_us = r.finished_at_us;
	j->expires_at_us = r.expires_at_us;
	if (j->keep_result)
		j->e->keep_result(j, &r);
	if (j->body_path) {
		unlink(j->body_path); /* ran, or never will: its body is not needed again */
		free(j->body_path);
		j->body_path = NULL;
	}
	if (jobs__recorder_amend(j->e->rec, &j->rec_mark, &r) == 0)
		jobs__record_schedule_flush(j->e);
	else
		jobs__record_put(j->e, JOBS__REC_FINISHED, &r);
	/* Copied into the record: not needed by a job kept in memory by id. */
	buf_free(&j->err_tail);
	buf_free(&j->err_line);
	buf_free(&j->prog_line);
}

static void engine_maybe_closed(struct job_engine *e);

/* No later request joins j (it ended, or is ending). */
static void coalesce_close(struct job *j)
{
	struct job_engine *e = j->e;

	if (j->coalesce_key == NULL)
		return;
	if (j->co_prev)
		j->co_prev->co_next = j->co_next;
	else if (e->coalescing == j)
		e->coalescing = j->co_next;
	if (j->co_next)
		j->co_next->co_prev = j->co_prev;
	j->co_next = j->co_prev = NULL;
	free(j->coalesce_key);
	j->coalesce_key = NULL;
}

/* Done callbacks of every request waiting for j, in the order they came. */
static void job_notify(struct job *j)
{
	j->refs++; /* a callback may release the last other reference */
	if (j->done) {
		job_done_cb cb = j->done;
		j->done = NULL;
		cb(j, j->ud);
	}
	while (j->waiters) {
		struct job_waiter *w = j->waiters;
		j->waiters = w->next;
		w->done(j, w->ud);
		free(w);
	}
	jobs__job_unref(j);
}

/* The row says that the job left processes running (they are being stopped). */
static void job_note_leftovers(struct job *j, unsigned n)
{
	char note[160];

	if (n == 0)
		return;
	snprintf(note, sizeof(note), "%s%u process%s outlived the job: %s", j->reason ? "; " : "", n, n == 1 ? "" : "es",
	         j->e->cfg.keep_leftovers ? "left running (--leftovers keep)" : "killed");
	if (j->reason == NULL) {
		j->reason = util_xstrdup(note);
	} else {
		size_t len = strlen(j->reason) + strlen(note) + 1;
		char *r = util_xmalloc(len);
		snprintf(r, len, "%s%s", j->reason, note);
		free(j->reason);
		j->reason = r;
	}
}

static void job_end(struct job *j)
{
	struct job_engine *e = j->e;

	if (j->ended)
		return;
	j->ended = 1;
	coalesce_close(j);
	jobs__groups_remove(e, j);
	job_decide(j);
	job_stderr_dropped_note(j);
	job_note_leftovers(j, jobs__leftovers_job_end(e, j));
	job_record_end(j);
	e->finished++;
	e->metrics.finished[j->state]++;
	if (j->started_at_us > 0)
		job_histogram_observe(&e->metrics.duration, j->finished_at_us - j->started_at_us);
	log_info("job %s: %s, status %d, %llu bytes, %u x 102%s%s", j->id, store_state_name(j->state),
	         j->result.http_status, (unsigned long long)j->result.body_bytes, j->processing_sent,
	         j->reason ? ", " : "", j->reason ? j->reason : "");
	job_notify(j);
}

static void job_close_handles(struct job *j)
{
	close_pipe(j, PIPE_IN);
	close_pipe(j, PIPE_OUT);
	close_pipe(j, PIPE_ERR);
	if (j->timer_open) {
		j->timer_open = 0;
		uv_close((uv_handle_t *)&j->timer, on_handle_closed);
	}
}

static void running_remove(struct job *j)
{
	struct job_engine *e = j->e;
	if (j->prev)
		j->prev->next = j->next;
	else
		e->running = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
	e->running_count--;
	if (j->rule >= 0)
		e->rule_running[j->rule]--;
}

/* A free slot overall, and below its script rule's max-running. */
static int job_may_start(const struct job_engine *e, int rule)
{
	if (e->running_count >= e->cfg.max_jobs)
		return 0;
	return rule < 0 || e->cfg.rules[rule].policy.max_running == 0 ||
	       e->rule_running[rule] < e->cfg.rules[rule].policy.max_running;
}

/* Starts queued jobs in FIFO order while slots are free. A job whose script
 * rule is at its max-running stays queued without holding up those behind it. */
static void engine_start_queued(struct job_engine *e)
{
	struct job **pp = &e->queue_head, *prev = NULL;

	/* Draining: a queued asynchronous job stays queued (its row too) for the
	 * next start rather than starting now and being killed at the deadline. */
	while (!e->closing && !e->draining && *pp && e->running_count < e->cfg.max_jobs) {
		struct job *j = *pp;
		if (!job_may_start(e, j->rule)) {
			prev = j;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (e->queue_tail == j)
			e->queue_tail = prev;
		j->next = NULL;
		e->queued_count--;
		job_start(j);
	}
}

static void job_maybe_end(struct job *j)
{
	struct job_engine *e = j->e;

	if (j->ended || !j->exited)
		return;
	if (j->pipe_open[PIPE_OUT] || j->pipe_open[PIPE_ERR] || j->pipe_open[PIPE_IN])
		return;
	uv_timer_stop(&j->timer);
	running_remove(j);
	job_end(j);
	job_close_handles(j);
	engine_start_queued(e);
	engine_maybe_closed(e);
}

/* SIGCHLD: signals coalesce, so reap every child that has exited. */
static void on_sigchld(uv_signal_t *h, int signum)
{
	struct job_engine *e = h->data;
	int status;
	pid_t pid;

	(void)signum;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct job *j;
		for (j = e->running; j; j = j->next)
			if (j->pid == pid)
				break;
		if (j == NULL) {
			/* An orphan cgiq adopted (leftovers.c), or a program whose start
			 * the loop has not heard of yet: only possible while one is
			 * being started. */
			if (e->spawning_count == 0)
				continue;
			e->unclaimed[e->unclaimed_next].pid = pid;
			e->unclaimed[e->unclaimed_next].status = status;
			e->unclaimed_next = (e->unclaimed_next + 1) % UTIL_ARRAY_LEN(e->unclaimed);
			continue;
		}
		job_exited(j, status);
	}
}

static void job_exited(struct job *j, int status)
{
	j->exited = 1;
	j->wait_status = status;
	/* Usually the pipes' EOF is simply still to be read. If something the
	 * program left in its group holds them, it gets a grace period, then
	 * the kill sequence: the job's deadline no longer applies to it. */
	if ((j->pipe_open[PIPE_OUT] || j->pipe_open[PIPE_ERR]) && j->kill_phase == 0) {
		j->lingering = 1;
		uv_timer_start(&j->timer, on_timer, j->policy.kill_grace_ms, 0);
	}
	job_maybe_end(j);
}

/* ------------------------------------------------------------------ */
/* starting */

static void job_fail_to_start(struct job *j, int err)
{
	char why[160];
	snprintf(why, sizeof(why), "cannot execute %s: %s", j->script, strerror(-err));
	log_warnx("job %s: %s", j->id, why);
	job_set_reason(j, why);
	j->exited = 1;
	j->wait_status = 127 << 8;
	job_maybe_end(j);
}

/* The row is written when the job is accepted: queued, or already running
 * when it starts at once. */
void jobs__insert_fields(const struct job *j, struct store_job *r)
{
	jobs__record_base(j, r);
	r->script = j->script;
	r->method = j->method;
	r->uri = j->uri;
	r->peer = j->peer;
	r->created_at_us = j->created_at_us;
	r->bytes_in = j->bytes_in;
}

static void job_record_insert(struct job *j, int64_t pid, int64_t started_at_us)
{
	struct store_job r;

	jobs__insert_fields(j, &r);
	r.pid = pid;
	r.started_at_us = started_at_us;
	if (started_at_us > 0) {
		/* Started at once: if it ends soon, its end goes into this INSERT. */
		jobs__recorder_put_marked(j->e->rec, &r, &j->rec_mark);
		jobs__record_schedule_flush(j->e);
	} else {
		jobs__record_put(j->e, JOBS__REC_INSERT, &r);
	}
	j->inserted = 1;
}

static void job_start(struct job *j)
{
	struct job_engine *e = j->e;
	struct cgi_spawn *sp = &j->sreq.opts;

	j->state = STORE_RUNNING;
	/* Taken off the queue now: with two spawner threads, the later of two
	 * jobs may be the first to finish its exec. */
	j->started_at_us = util_now_us();
	j->prev = NULL;
	j->next = e->running;
	if (e->running)
		e->running->prev = j;
	e->running = j;
	e->running_count++;
	if (j->rule >= 0)
		e->rule_running[j->rule]++;

	j->argv[0] = j->script;
	j->argv[1] = NULL;
	memset(&j->sreq, 0, sizeof(j->sreq));
	sp->path = j->script;
	sp->argv = j->argv;
	sp->envp = j->env.vars;
	sp->cwd = j->cwd;
	sp->stdin_fd = j->body_fd >= 0 ? j->body_fd : (j->body_len > 0 ? -1 : e->devnull_fd);
	sp->progress_fd = 1;
	sp->limits = &j->policy.limits;
	sp->signals_blocked = 1; /* the spawner threads block them all */
	sp->as = e->cfg.program_user;
	j->sreq.ud = j;
	j->spawning = 1;
	j->start_ticks = jobs__boot_ticks();
	e->spawning_count++;
	jobs__spawner_submit(e->spawner, &j->sreq);
}

/* The spawner's answer, on the loop thread. */
static void on_spawned(struct jobs__spawn_req *req, void *ctx)
{
	struct job_engine *e = ctx;
	struct job *j = req->ud;
	struct store_job r;
	int err = req->err;

	j->spawning = 0;
	e->spawning_count--;
	cgi_env_free(&j->env); /* the child has its copy; jobs kept by id stay small */
	if (j->body_fd >= 0) {
		close(j->body_fd);
		j->body_fd = -1;
	}
	if (err >= 0) {
		j->pid = req->proc.pid;
		jobs__groups_add(e, j);
	}
	job_histogram_observe(&e->metrics.queue_wait, j->started_at_us - j->created_at_us);
	if (j->inserted) {
		if (err >= 0) {
			jobs__record_base(j, &r);
			r.pid = j->pid;
			r.started_at_us = j->started_at_us;
			jobs__record_put(e, JOBS__REC_STARTED, &r);
		}
	} else {
		/* Started at once: one row write instead of insert + update. */
		job_record_insert(j, err >= 0 ? j->pid : -1, j->started_at_us);
	}
	if (err < 0) {
		job_fail_to_start(j, err);
		return;
	}

	if (open_pipe(j, PIPE_OUT, req->proc.stdout_fd) == 0)
		uv_read_start((uv_stream_t *)&j->pipes[PIPE_OUT], job_loop_alloc_cb, on_read);
	if (open_pipe(j, PIPE_ERR, req->proc.stderr_fd) == 0)
		uv_read_start((uv_stream_t *)&j->pipes[PIPE_ERR], job_loop_alloc_cb, on_read);
	/* Progress lines are few and small: the pipe is read when someone asks
	 * (a 102, the status monitor), once a second, and at the end, rather
	 * than watched, which would cost every job an epoll registration. */
	j->prog_fd = req->proc.progress_fd;
	if (j->prog_fd >= 0 && fcntl(j->prog_fd, F_SETFL, O_NONBLOCK) < 0) {
		close(j->prog_fd);
		j->prog_fd = -1;
	}
	if (req->proc.stdin_fd >= 0 && open_pipe(j, PIPE_IN, req->proc.stdin_fd) == 0) {
		uv_buf_t b = uv_buf_init(j->body_mem, (unsigned)j->body_len);
		j->in_req.data = j;
		if (uv_write(&j->in_req, (uv_stream_t *)&j->pipes[PIPE_IN], &b, 1, on_stdin_written) < 0)
			close_pipe(j, PIPE_IN);
	}
	log_debug("job %s: started %s as pid %d", j->id, j->script, (int)j->pid);

	if (j->cancelled || j->interrupted) {
		/* Stopped while it was being started. */
		job_kill_sequence(j);
	} else if (j->policy.job_timeout_ms > 0) {
		uv_timer_start(&j->timer, on_timer, j->policy.job_timeout_ms, 0);
	}
	/* It may have exited before we got here. */
	for (unsigned k = 0; k < UTIL_ARRAY_LEN(e->unclaimed); k++) {
		if (e->unclaimed[k].pid == j->pid) {
			e->unclaimed[k].pid = 0;
			job_exited(j, e->unclaimed[k].status);
			break;
		}
	}
	/* With no start in flight, what is left there were orphans reaped while
	 * one was: their pids could come back as a later program's. */
	if (e->spawning_count == 0)
		memset(e->unclaimed, 0, sizeof(e->unclaimed));
}

/* ------------------------------------------------------------------ */
/* public */

int jobs__engine_core_open(struct job_engine *e)
{
	int r = jobs__spawner_open(e->loop, on_spawned, e, &e->spawner);
	if (r < 0)
		return r;
	uv_timer_init(e->loop, &e->flush);
	e->flush.data = e;
	uv_signal_init(e->loop, &e->sigchld);
	e->sigchld.data = e;
	uv_signal_start(&e->sigchld, on_sigchld, SIGCHLD);
	jobs__leftovers_open(e);
	return 0;
}

void jobs__job_set_rule(struct job *j, const struct job_script_rule *rule)
{
	const struct job_config *c = &j->e->cfg;

	if (rule != NULL) {
		j->rule = (int)(rule - c->rules);
		j->policy = rule->policy;
		return;
	}
	j->rule = -1;
	memset(&j->policy, 0, sizeof(j->policy));
	j->policy.job_timeout_ms = c->job_timeout_ms;
	j->policy.kill_grace_ms = c->kill_grace_ms;
	j->policy.max_output_bytes = c->max_output_bytes;
	if (c->limits)
		j->policy.limits = *c->limits;
}

/* What script patterns (script blocks, --coalesce) are matched against: "/"
 * + the path below the root. The root "/srv/cgi" gives "/a/b.pl" for
 * "/srv/cgi/a/b.pl"; a root of "/" leaves the path as it is. NULL when the
 * program is not under the root (or there is no root). */
static const char *script_rel(const struct job_config *c, const char *script_filename)
{
	size_t root_len;

	if (c->cgi_root == NULL || script_filename == NULL)
		return NULL;
	root_len = strlen(c->cgi_root);
	if (root_len == 1 && c->cgi_root[0] == '/')
		root_len = 0;
	if (strncmp(script_filename, c->cgi_root, root_len) != 0 || script_filename[root_len] != '/')
		return NULL;
	return script_filename + root_len;
}

const struct job_script_rule *job_rule_lookup(const struct job_engine *e, const char *script_filename)
{
	const struct job_config *c = &e->cfg;
	const char *rel = c->rule_count ? script_rel(c, script_filename) : NULL;

	if (rel == NULL)
		return NULL;
	for (unsigned i = 0; i < c->rule_count; i++)
		if (fnmatch(c->rules[i].pattern, rel, FNM_PATHNAME) == 0)
			return &c->rules[i];
	return NULL;
}

struct job *jobs__job_new(struct job_engine *e)
{
	struct job *j = util_xcalloc(1, sizeof(*j));

	j->e = e;
	j->refs = 1; /* the engine's, dropped when its handles are closed */
	j->state = STORE_QUEUED;
	j->body_fd = -1;
	j->spool_fd = -1;
	j->group_slot = -1;
	j->pid = -1;
	j->progress_done = j->progress_total = -1;
	cgi_response_init(&j->resp);
	buf_init(&j->out_mem, SIZE_MAX / 2);
	buf_init(&j->err_line, STDERR_LINE_MAX + 1);
	buf_init(&j->err_tail, SIZE_MAX / 2);
	buf_init(&j->prog_line, 512);
	j->prog_fd = -1;
	jobs__job_set_rule(j, NULL);
	/* Cannot fail for a timer on a live loop. */
	uv_timer_init(e->loop, &j->timer);
	j->timer.data = j;
	j->timer_open = 1;
	j->handles_open = 1;
	return j;
}

/* Starts j now, or queues it behind the running ones (FIFO). */
void jobs__enqueue(struct job *j)
{
	struct job_engine *e = j->e;

	e->submitted++;
	/* Draining: an asynchronous job whose row became durable just now waits
	 * in the queue (and in its row) for the next start. */
	if (job_may_start(e, j->rule) && !e->draining) {
		job_start(j);
		return;
	}
	if (!j->inserted)
		job_record_insert(j, -1, 0);
	if (e->queue_tail)
		e->queue_tail->next = j;
	else
		e->queue_head = j;
	e->queue_tail = j;
	e->queued_count++;
	log_debug("job %s: queued behind %u running job(s)", j->id, e->running_count);
}

/* A new job from a request; NULL with -EAGAIN in *err when the queue is full. */
static struct job *job_from_request(struct job_engine *e, struct job_request *req, int *err)
{
	struct job *j;

	int rule = req->rule ? (int)(req->rule - e->cfg.rules) : -1;

	if (e->draining || e->closing) {
		*err = -ESHUTDOWN;
		return NULL;
	}
	if (!job_may_start(e, rule) && e->queued_count >= e->cfg.queue_max) {
		e->refused++;
		/* The front logs the refusal with its connection id. */
		log_debug("queue full (%u waiting, %u running): refusing %s", e->queued_count,
		          e->running_count, req->script);
		*err = -EAGAIN;
		return NULL;
	}
	j = jobs__job_new(e);
	util_random_id(j->id);
	jobs__job_set_rule(j, req->rule);
	j->script = util_xstrdup(req->script);
	j->cwd = util_xstrdup(req->cwd);
	j->env = *req->env;
	req->env->vars = NULL;
	req->env->count = 0;
	/* Where the program may report progress ("DONE/TOTAL text" lines), and
	 * its job id (a program that must act once per job, such as appending to
	 * a ledger, can tell a retry from a new job). */
	j->env.vars = util_xrealloc(j->env.vars, (j->env.count + 3) * sizeof(char *));
	j->env.vars[j->env.count++] = util_xstrdup("CGIQ_PROGRESS_FD=3");
	{
		char var[sizeof("CGIQ_JOB_ID=") + UTIL_ID_LEN];
		snprintf(var, sizeof(var), "CGIQ_JOB_ID=%s", j->id);
		j->env.vars[j->env.count++] = util_xstrdup(var);
	}
	j->env.vars[j->env.count] = NULL;
	j->body_fd = req->body_fd;
	req->body_fd = -1;
	if (j->body_fd < 0 && req->body_mem && req->body_len > 0) {
		j->body_mem = util_xmalloc(req->body_len);
		memcpy(j->body_mem, req->body_mem, req->body_len);
		j->body_len = req->body_len;
	}
	j->method = util_xstrdup(req->method ? req->method : "GET");
	j->uri = util_xstrdup(req->uri ? req->uri : "");
	j->peer = util_xstrdup(req->peer ? req->peer : "");
	j->bytes_in = req->bytes_in;
	j->created_at_us = util_now_us();
	*err = 0;
	return j;
}

static const char *script_rel(const struct job_config *c, const char *script_filename);

/*
 * The key under which a request may share a job (--coalesce), or NULL: a
 * GET or HEAD without a body, for a program whose path below the root
 * matches a pattern (as script blocks match), and without anything that
 * makes its output the client's own (cookies, REMOTE_USER, an Authorization
 * header passed on).
 */
static char *coalesce_key(const struct job_engine *e, const struct job_request *req)
{
	static const char *const personal[] = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "REMOTE_USER"};
	const char *rel;
	const char *const *p;
	struct buf key;

	if (req->body_fd >= 0 || req->body_len > 0 || req->method == NULL ||
	    (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
		return NULL;
	if (!(req->rule && req->rule->policy.coalesce)) {
		rel = e->cfg.coalesce ? script_rel(&e->cfg, req->script) : NULL;
		if (rel == NULL)
			return NULL;
		for (p = e->cfg.coalesce; *p && fnmatch(*p, rel, FNM_PATHNAME) != 0; p++)
			;
		if (*p == NULL)
			return NULL;
	}
	for (size_t i = 0; i < sizeof(personal) / sizeof(personal[0]); i++)
		if (cgi_env_get(req->env, personal[i]) != NULL)
			return NULL;
	/* The program, PATH_INFO and the query, each with its length: two
	 * requests share a key only when all three are equal. */
	buf_init(&key, SIZE_MAX / 2);
	for (size_t i = 0; i < 3; i++) {
		const char *v = i == 0 ? req->script : cgi_env_get(req->env, i == 1 ? "PATH_INFO" : "QUERY_STRING");
		buf_printf(&key, "%zu:%s;", v ? strlen(v) : 0, v ? v : "");
	}
	return key.data;
}

/* Joins a job others may join; 1 when it did (req consumed as job_submit would). */
static int coalesce_join(struct job_engine *e, struct job_request *req, const char *key, job_done_cb done,
                         void *ud, struct job **out)
{
	struct job *j;
	struct job_waiter *w, **tail;

	for (j = e->coalescing; j; j = j->co_next)
		if (!j->cancelled && strcmp(j->coalesce_key, key) == 0)
			break;
	if (j == NULL)
		return 0;
	w = util_xcalloc(1, sizeof(*w));
	w->done = done;
	w->ud = ud;
	for (tail = &j->waiters; *tail; tail = &(*tail)->next)
		;
	*tail = w;
	j->refs++; /* this submitter's */
	cgi_env_free(req->env);
	e->coalesced++;
	log_info("job %s: %s from %s joins it (--coalesce)", j->id, req->uri ? req->uri : "-",
	         req->peer ? req->peer : "-");
	*out = j;
	return 1;
}

int job_submit(struct job_engine *e, struct job_request *req, job_done_cb done, void *ud,
               struct job **out)
{
	int err;
	char *key = coalesce_key(e, req);
	struct job *j;

	if (key && coalesce_join(e, req, key, done, ud, out)) {
		free(key);
		return 0;
	}
	j = job_from_request(e, req, &err);
	if (j == NULL) {
		free(key);
		return err;
	}
	j->refs++; /* the submitter's */
	j->done = done;
	j->ud = ud;
	if (key) {
		j->coalesce_key = key;
		j->co_next = e->coalescing;
		if (e->coalescing)
			e->coalescing->co_prev = j;
		e->coalescing = j;
	}
	*out = j;
	jobs__enqueue(j);
	return 0;
}

int jobs__submit_prepared(struct job_engine *e, struct job_request *req, struct job **out)
{
	int err;
	struct job *j = job_from_request(e, req, &err);

	if (j == NULL)
		return err;
	j->refs++; /* the submitter's */
	*out = j;
	return 0;
}

const char *job_id(const struct job *j) { return j->id; }
const struct job_result *job_result(const struct job *j) { return &j->result; }
enum store_state job_state(const struct job *j) { return j->state; }
void job_note_processing(struct job *j)
{
	j->processing_sent++;
	j->e->metrics.processing_sent++;
}

int64_t job_duration_ms(const struct job *j)
{
	if (!j->ended || j->started_at_us <= 0 || j->finished_at_us < j->started_at_us)
		return -1;
	return (j->finished_at_us - j->started_at_us) / 1000;
}

static void queue_remove(struct job *j)
{
	struct job_engine *e = j->e;
	struct job **pp = &e->queue_head, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == NULL)
		return;
	*pp = j->next;
	if (e->queue_tail == j)
		e->queue_tail = prev;
	j->next = NULL;
	e->queued_count--;
}

static void job_stop(struct job *j, const char *reason)
{
	job_set_reason(j, reason);
	if (j->state == STORE_QUEUED) {
		queue_remove(j);
		job_end(j);
		job_close_handles(j);
		return;
	}
	job_kill_sequence(j);
}

void jobs__job_discard(struct job *j)
{
	j->ended = 1;
	job_close_handles(j);
}

/* Cancels but still tells a waiting submitter (DELETE of an exposed job). */
void jobs__job_kill(struct job *j, const char *reason)
{
	if (j->ended)
		return;
	j->cancelled = 1;
	log_info("job %s: cancelled (%s)", j->id, reason);
	job_stop(j, reason);
}

void job_cancel(struct job *j, const char *reason)
{
	j->done = NULL;
	j->ud = NULL;
	j->accepted = NULL;
	j->accepted_ud = NULL;
	if (j->ended)
		return;
	j->cancelled = 1;
	log_info("job %s: cancelled (%s)", j->id, reason);
	job_stop(j, reason);
}

void job_release(struct job *j)
{
	if (j)
		jobs__job_unref(j);
}

void job_engine_stats(const struct job_engine *e, struct job_stats *out)
{
	out->running = e->running_count;
	out->queued = e->queued_count;
	out->submitted = e->submitted;
	out->finished = e->finished;
	out->refused = e->refused;
}

static void on_spawner_closed(void *ctx)
{
	struct job_engine *e = ctx;
	e->core_closed(e);
}

/* Called by async.c once its handles are closed: the last step of closing. */
void jobs__engine_free(struct job_engine *e)
{
	jobs__recorder_stop(e->rec); /* writes what is still queued */
	close(e->devnull_fd);
	jobs__groups_close(e);
	free(e->close_reason);
	free(e->rule_running);
	free(e);
}

static void on_flush_closed(uv_handle_t *h)
{
	struct job_engine *e = h->data;
	jobs__spawner_close(e->spawner, on_spawner_closed);
}

static void on_engine_closed(uv_handle_t *h)
{
	struct job_engine *e = h->data;
	e->closed_flush = 1;
	uv_close((uv_handle_t *)&e->flush, on_flush_closed);
}

static void engine_maybe_closed(struct job_engine *e)
{
	if (!e->closing || e->running_count > 0 || uv_is_closing((uv_handle_t *)&e->sigchld))
		return;
	jobs__leftovers_close(e);
	uv_close((uv_handle_t *)&e->sigchld, on_engine_closed);
}

void job_engine_drain(struct job_engine *e, const char *reason)
{
	struct job *j, *next;

	if (e == NULL || e->draining || e->closing)
		return;
	e->draining = 1;
	/* Queued synchronous jobs never start: their clients are answered now
	 * (done callback, 503) rather than at the end of the drain. */
	for (j = e->queue_head; j; j = next) {
		next = j->next;
		if (j->async)
			continue;
		j->interrupted = 1;
		job_stop(j, reason);
	}
}

unsigned job_engine_running(const struct job_engine *e)
{
	return e->running_count;
}

void job_engine_close(struct job_engine *e, const char *reason)
{
	if (e == NULL || e->closing)
		return;
	e->closing = 1;
	e->close_reason = util_xstrdup(reason);
	while (e->queue_head) {
		struct job *j = e->queue_head;
		j->done = NULL;
		if (j->async) {
			/* Accepted with 202: its row stays queued, the next start runs it. */
			queue_remove(j);
			j->ended = 1;
			job_close_handles(j);
			continue;
		}
		j->interrupted = 1;
		job_stop(j, reason);
	}
	for (struct job *j = e->running; j; j = j->next) {
		if (!j->cancelled)
			j->interrupted = 1;
		j->done = NULL;
		job_set_reason(j, reason);
		job_kill_sequence(j);
	}
	engine_maybe_closed(e);
}
