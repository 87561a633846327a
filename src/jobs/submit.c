/*
 * The jobs API the fronts call on the loop thread: which script rule a
 * program falls under, submitting a job (or joining a running one with
 * --coalesce), cancelling and releasing it, and what it is. The engine
 * (engine.c) runs what is submitted here.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

/* RFC 3875 5: a program whose file name starts with the NPH prefix
 * ("nph-") writes its own status line. */
static int script_is_nph(const struct job_engine *e, const char *script)
{
	const char *name = script ? strrchr(script, '/') : NULL;
	const char *prefix = e->cfg.nph_prefix;

	name = name ? name + 1 : script;
	return prefix && *prefix && name && strncmp(name, prefix, strlen(prefix)) == 0;
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

const char *job_interpreter_for(const struct job_engine *e, const char *script_filename)
{
	const struct job_script_rule *rule = job_rule_lookup(e, script_filename);

	if (rule != NULL)
		return cgi_interpreter_for(rule->policy.interpreters, rule->policy.interpreter_count, script_filename);
	return cgi_interpreter_for(e->cfg.interpreters, e->cfg.interpreter_count, script_filename);
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

/* A new job from a request; NULL with -EAGAIN in *err when the queue is full. */
static struct job *job_from_request(struct job_engine *e, struct job_request *req, int *err)
{
	struct job *j;

	int rule = req->rule ? (int)(req->rule - e->cfg.rules) : -1;

	if (e->draining || e->closing) {
		*err = -ESHUTDOWN;
		return NULL;
	}
	if (!jobs__may_start(e, rule) && e->queued_count >= e->cfg.queue_max) {
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
	j->resp.nph = script_is_nph(e, req->script);
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

/* Whether rel (a program's path below the root, from "/") matches one of
 * the NULL-terminated patterns (NULL: none). */
static int pattern_listed(const char *const *patterns, const char *rel)
{
	const char *const *p;

	if (patterns == NULL || rel == NULL)
		return 0;
	for (p = patterns; *p && fnmatch(*p, rel, FNM_PATHNAME) != 0; p++)
		;
	return *p != NULL;
}

int job_request_streams(const struct job_engine *e, const struct job_request *req)
{
	if (req->method != NULL && strcmp(req->method, "HEAD") == 0)
		return 0;
	return script_is_nph(e, req->script) || (req->rule && req->rule->policy.stream) ||
	       pattern_listed(e->cfg.stream, script_rel(&e->cfg, req->script));
}

/*
 * The key under which a request may share a job (--coalesce), or NULL: a
 * GET or HEAD without a body, for a program whose path below the root
 * matches a pattern (as script blocks match), and without anything that
 * makes its output the client's own (cookies, REMOTE_USER, an Authorization
 * header passed on).
 */
static char *coalesce_key(const struct job_engine *e, const struct job_request *req, int streams)
{
	static const char *const personal[] = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "REMOTE_USER"};
	struct buf key;

	if (req->body_fd >= 0 || req->body_len > 0 || req->method == NULL ||
	    (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0))
		return NULL;
	if (!(req->rule && req->rule->policy.coalesce) &&
	    !pattern_listed(e->cfg.coalesce, e->cfg.coalesce ? script_rel(&e->cfg, req->script) : NULL))
		return NULL;
	/* A streamed body goes to one client as it is written: one job each
	 * (a HEAD, never streamed, may still share one). */
	if (streams)
		return NULL;
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
	struct job_waiter *w;

	for (j = e->coalescing; j; j = j->co_next)
		if (!j->cancelled && strcmp(j->coalesce_key, key) == 0)
			break;
	if (j == NULL)
		return 0;
	w = util_xcalloc(1, sizeof(*w));
	w->done = done;
	w->ud = ud;
	if (j->waiters == NULL)
		j->waiters_tail = &j->waiters;
	*j->waiters_tail = w;
	j->waiters_tail = &w->next;
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
	int err, streams = job_request_streams(e, req);
	char *key = coalesce_key(e, req, streams);
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
	if (req->stream && streams) {
		j->stream = req->stream;
		j->stream_ud = ud;
	}
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
const struct cgi_response *job_response(const struct job *j) { return j->headers_done ? &j->resp : NULL; }
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

/* Cancels but still tells a waiting submitter (DELETE of an exposed job). */
void jobs__job_kill(struct job *j, const char *reason)
{
	if (j->ended)
		return;
	j->cancelled = 1;
	log_info("job %s: cancelled (%s)", j->id, reason);
	jobs__job_stop(j, reason);
}

void job_cancel(struct job *j, const char *reason)
{
	j->done = NULL;
	j->ud = NULL;
	jobs__stream_stop(j);
	j->accepted = NULL;
	j->accepted_ud = NULL;
	if (j->ended)
		return;
	j->cancelled = 1;
	log_info("job %s: cancelled (%s)", j->id, reason);
	jobs__job_stop(j, reason);
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

