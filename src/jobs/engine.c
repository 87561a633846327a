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
		/* 1: over a limit, the program is stopped */
		if (which == PIPE_OUT ? jobs__output_stdout(j, b->base, (size_t)n)
		                      : jobs__output_stderr(j, b->base, (size_t)n))
			job_kill_sequence(j);
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

/* ------------------------------------------------------------------ */
/* streaming */

void job_stream_pause(struct job *j)
{
	if (j->stream_paused)
		return;
	j->stream_paused = 1;
	if (j->pipe_open[PIPE_OUT])
		uv_read_stop((uv_stream_t *)&j->pipes[PIPE_OUT]);
}

void job_stream_resume(struct job *j)
{
	if (!j->stream_paused)
		return;
	j->stream_paused = 0;
	if (j->pipe_open[PIPE_OUT])
		uv_read_start((uv_stream_t *)&j->pipes[PIPE_OUT], job_loop_alloc_cb, on_read);
}

void jobs__stream_stop(struct job *j)
{
	j->stream = NULL;
	j->stream_ud = NULL;
	job_stream_resume(j);
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

	if (j->lingering && j->stream_paused && !j->timed_out) {
		/* Its pipe is full because the client reads slowly, not because
		 * something the program left holds it: wait for the client (the
		 * job's own deadline, if any, still applies). */
		uv_timer_start(&j->timer, on_timer, j->policy.kill_grace_ms, 0);
		return;
	}
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
		jobs__set_reason(j, "job timeout");
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
			jobs__set_reason(j, why);
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
		jobs__set_reason(j, why);
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
			jobs__set_reason(j, why);
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
	if (j->streamed) {
		/* Its head and body_bytes went to the client as they came: the row
		 * says what the client got, and where it was cut. */
		res->http_status = j->resp.status;
		res->body_bytes = j->body_bytes;
		if (j->state != STORE_SUCCEEDED) {
			snprintf(why, sizeof(why), "%s; the stream was cut after %llu bytes",
			         j->reason ? j->reason : "failed", (unsigned long long)j->body_bytes);
			free(j->reason);
			j->reason = util_xstrdup(why);
			res->reason = j->reason;
		}
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
	if (j->accepted_result < 0)
		; /* its row was never committed (503, not run): none to finish */
	else if (jobs__recorder_amend(j->e->rec, &j->rec_mark, &r) == 0)
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
	jobs__stderr_dropped_note(j);
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
int jobs__may_start(const struct job_engine *e, int rule)
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
		if (!jobs__may_start(e, j->rule)) {
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
	jobs__set_reason(j, why);
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

	/* A file an interpreter runs is its argument (as lighttpd's cgi.assign
	 * and Apache's Action have it); the environment names it too. */
	j->argv[0] = (char *)cgi_interpreter_for(j->policy.interpreters, j->policy.interpreter_count, j->script);
	j->argv[1] = j->argv[0] ? j->script : NULL;
	j->argv[2] = NULL;
	if (j->argv[0] == NULL)
		j->argv[0] = j->script;
	memset(&j->sreq, 0, sizeof(j->sreq));
	sp->path = j->argv[0];
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
	j->policy.interpreters = c->interpreters;
	j->policy.interpreter_count = c->interpreter_count;
	if (c->limits)
		j->policy.limits = *c->limits;
}

/* Starts j now, or queues it behind the running ones (FIFO). */
void jobs__enqueue(struct job *j)
{
	struct job_engine *e = j->e;

	e->submitted++;
	/* Draining: an asynchronous job whose row became durable just now waits
	 * in the queue (and in its row) for the next start. */
	if (jobs__may_start(e, j->rule) && !e->draining) {
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

void jobs__job_stop(struct job *j, const char *reason)
{
	jobs__set_reason(j, reason);
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
		jobs__job_stop(j, reason);
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
		jobs__job_stop(j, reason);
	}
	for (struct job *j = e->running; j; j = j->next) {
		if (!j->cancelled)
			j->interrupted = 1;
		j->done = NULL;
		jobs__set_reason(j, reason);
		job_kill_sequence(j);
	}
	engine_maybe_closed(e);
}
