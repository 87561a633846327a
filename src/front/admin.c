/*
 * The admin listener's pages: /metrics (Prometheus text format 0.0.4),
 * /health, /jobs. The HTTP front serves them on the admin listener (an
 * http_server opened with cfg.admin on its own address); the public
 * listeners never route here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "jobs/jobs.h"

#define ADMIN_JOBS_DEFAULT 100
#define ADMIN_JOBS_MAX 1000
/* 1000 rows of a few KiB each at most (uri and reason are bounded by the
 * request limits); a cap all the same. */
#define ADMIN_BODY_MAX (64u * 1024 * 1024)

static const char *const front_names[FRONT_COUNT] = {"http", "fastcgi"};

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct buf *out, const char *name, const char *help, const struct job_histogram *h)
{
	uint64_t cumulative = 0;

	family(out, name, "histogram", help);
	for (size_t i = 0; i < JOB_HIST_BOUNDS; i++) {
		cumulative += h->bucket[i];
		buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, job_hist_bounds_s[i],
		           (unsigned long long)cumulative);
	}
	cumulative += h->bucket[JOB_HIST_BOUNDS];
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
	buf_printf(out, "%s_sum %llu.%06llu\n", name, (unsigned long long)(h->sum_us / 1000000),
	           (unsigned long long)(h->sum_us % 1000000));
	buf_printf(out, "%s_count %llu\n", name, (unsigned long long)h->count);
}

static unsigned long long load(const atomic_uint_least64_t *v)
{
	return (unsigned long long)atomic_load_explicit((atomic_uint_least64_t *)v, memory_order_relaxed);
}

void front_metrics_render(struct buf *out, const struct job_metrics *m, const struct front_counters *fronts)
{
	family(out, "cgiq_jobs_finished_total", "counter", "Jobs ended, by final state.");
	for (int s = STORE_SUCCEEDED; s < STORE_STATE_COUNT; s++)
		buf_printf(out, "cgiq_jobs_finished_total{state=\"%s\"} %llu\n", store_state_name((enum store_state)s),
		           (unsigned long long)m->finished[s]);
	family(out, "cgiq_jobs_submitted_total", "counter", "Jobs accepted (started or queued).");
	buf_printf(out, "cgiq_jobs_submitted_total %llu\n", (unsigned long long)m->submitted);
	family(out, "cgiq_jobs_running", "gauge", "Programs running now.");
	buf_printf(out, "cgiq_jobs_running %u\n", m->running);
	family(out, "cgiq_jobs_queued", "gauge", "Jobs waiting for a slot (queue depth).");
	buf_printf(out, "cgiq_jobs_queued %u\n", m->queued);
	histogram(out, "cgiq_job_duration_seconds", "How long programs ran, start to end.", &m->duration);
	histogram(out, "cgiq_job_queue_wait_seconds", "How long jobs waited for a slot.", &m->queue_wait);
	family(out, "cgiq_processing_sent_total", "counter", "102 Processing interim responses sent.");
	buf_printf(out, "cgiq_processing_sent_total %llu\n", (unsigned long long)m->processing_sent);
	family(out, "cgiq_stderr_dropped_lines_total", "counter",
	       "Program stderr lines not logged (--stderr-log-bytes, --stderr-log-rate); the row keeps the tail.");
	buf_printf(out, "cgiq_stderr_dropped_lines_total %llu\n", (unsigned long long)m->stderr_dropped_lines);
	family(out, "cgiq_leftover_processes_total", "counter",
	       "Processes that outlived their job (setsid, double fork, background), killed unless --leftovers keep.");
	buf_printf(out, "cgiq_leftover_processes_total %llu\n", (unsigned long long)m->leftovers);
	family(out, "cgiq_coalesced_total", "counter", "Requests that shared another request's job (--coalesce).");
	buf_printf(out, "cgiq_coalesced_total %llu\n", (unsigned long long)m->coalesced);
	family(out, "cgiq_results_kept_bytes", "gauge", "Kept results (asynchronous and detached jobs) on disk, as of the last sweep.");
	buf_printf(out, "cgiq_results_kept_bytes %llu\n", (unsigned long long)m->results_kept_bytes);
	family(out, "cgiq_spool_written_bytes_total", "counter", "Program output bytes written to spool files.");
	buf_printf(out, "cgiq_spool_written_bytes_total %llu\n", (unsigned long long)m->spool_written_bytes);
	if (fronts == NULL)
		return;
	family(out, "cgiq_responses_total", "counter", "Final responses, by front and status class.");
	for (int f = 0; f < FRONT_COUNT; f++)
		for (int c = 1; c < 6; c++)
			buf_printf(out, "cgiq_responses_total{front=\"%s\",code=\"%dxx\"} %llu\n", front_names[f], c,
			           load(&fronts[f].responses[c]));
	family(out, "cgiq_refusals_total", "counter", "Requests refused before a job ran, by front and reason.");
	for (int f = 0; f < FRONT_COUNT; f++)
		for (int r = 0; r < FRONT_REFUSAL_COUNT; r++)
			buf_printf(out, "cgiq_refusals_total{front=\"%s\",reason=\"%s\"} %llu\n", front_names[f],
			           front_refusal_name((enum front_refusal)r), load(&fronts[f].refused[r]));
	family(out, "cgiq_processing_misread_total", "counter",
	       "Connections closed because the client took a 102 as its answer, by front and sign.");
	for (int f = 0; f < FRONT_COUNT; f++)
		for (int k = 0; k < FRONT_MISREAD_COUNT; k++)
			buf_printf(out, "cgiq_processing_misread_total{front=\"%s\",kind=\"%s\"} %llu\n", front_names[f],
			           front_misread_name((enum front_misread)k), load(&fronts[f].misread[k]));
	family(out, "cgiq_connections_open", "gauge", "Client connections open, by front.");
	for (int f = 0; f < FRONT_COUNT; f++)
		buf_printf(out, "cgiq_connections_open{front=\"%s\"} %lld\n", front_names[f],
		           (long long)atomic_load_explicit((atomic_int_least64_t *)&fronts[f].connections_open,
		                                           memory_order_relaxed));
	family(out, "cgiq_connections_total", "counter", "Client connections accepted, by front.");
	for (int f = 0; f < FRONT_COUNT; f++)
		buf_printf(out, "cgiq_connections_total{front=\"%s\"} %llu\n", front_names[f],
		           load(&fronts[f].connections_total));
	family(out, "cgiq_static_responses_total", "counter",
	       "Static files answered (--static, 304s included), not jobs, by front.");
	for (int f = 0; f < FRONT_COUNT; f++)
		buf_printf(out, "cgiq_static_responses_total{front=\"%s\"} %llu\n", front_names[f],
		           load(&fronts[f].static_files));
	family(out, "cgiq_streamed_responses_total", "counter",
	       "Answers whose body went to the client as the program wrote it (--stream, NPH), by front.");
	for (int f = 0; f < FRONT_COUNT; f++)
		buf_printf(out, "cgiq_streamed_responses_total{front=\"%s\"} %llu\n", front_names[f],
		           load(&fronts[f].streamed));
	family(out, "cgiq_streams_cut_total", "counter",
	       "Streamed answers cut short (no last chunk) because their job did not succeed, by front.");
	for (int f = 0; f < FRONT_COUNT; f++)
		buf_printf(out, "cgiq_streams_cut_total{front=\"%s\"} %llu\n", front_names[f],
		           load(&fronts[f].streams_cut));
}

/* ---- /jobs ---- */

struct jobs_query {
	int have_state;
	enum store_state state;
	unsigned limit;
};

/* state=NAME&limit=N, each at most once; anything else is refused. Returns
 * 0, or -EINVAL with *why. */
CGIQ_STATIC int admin_parse_jobs_query(const char *query, struct jobs_query *q, const char **why)
{
	int have_limit = 0;

	q->have_state = 0;
	q->limit = ADMIN_JOBS_DEFAULT;
	while (*query) {
		const char *amp = strchr(query, '&');
		size_t n = amp ? (size_t)(amp - query) : strlen(query);
		const char *eq = memchr(query, '=', n);
		char value[32];
		size_t vn;

		if (n == 0) {
			query++;
			continue;
		}
		if (eq == NULL) {
			*why = "parameters are state=STATE and limit=N";
			return -EINVAL;
		}
		vn = n - (size_t)(eq + 1 - query);
		if (vn >= sizeof(value)) {
			*why = "value too long";
			return -EINVAL;
		}
		memcpy(value, eq + 1, vn);
		value[vn] = '\0';
		if ((size_t)(eq - query) == 5 && memcmp(query, "state", 5) == 0 && !q->have_state) {
			if (store_state_parse(value, &q->state) < 0) {
				*why = "state is one of queued, running, succeeded, failed, timed_out, cancelled, interrupted";
				return -EINVAL;
			}
			q->have_state = 1;
		} else if ((size_t)(eq - query) == 5 && memcmp(query, "limit", 5) == 0 && !have_limit) {
			uint64_t v;
			if (util_parse_uint(value, ADMIN_JOBS_MAX, &v) < 0 || v == 0) {
				*why = "limit is a number from 1 to 1000";
				return -EINVAL;
			}
			q->limit = (unsigned)v;
			have_limit = 1;
		} else {
			*why = "parameters are state=STATE and limit=N, each at most once";
			return -EINVAL;
		}
		query += n;
	}
	return 0;
}

static int append_job(const struct store_job *j, void *ud)
{
	struct buf *b = ud;
	size_t before = b->len;

	store_job_json(b, j, 0);
	/* A row that did not fit whole is taken back: the output stays valid lines. */
	if (b->len > 0 && b->data[b->len - 1] != '\n') {
		b->len = before;
		b->data[before] = '\0';
		return -ENOBUFS;
	}
	return 0;
}

static void text_error(struct front_admin_response *out, int status, const char *why)
{
	out->status = status;
	out->content_type = "text/plain; charset=utf-8";
	buf_printf(&out->body, "%d %s%s%s\n", status, front_reason(status), why ? ": " : "", why ? why : "");
}

void front_admin_handle(struct job_engine *e, const struct front_counters *fronts, const char *method,
                       const char *path, const char *query, struct front_admin_response *out)
{
	int is_metrics = strcmp(path, "/metrics") == 0, is_health = strcmp(path, "/health") == 0;
	int is_jobs = strcmp(path, "/jobs") == 0;

	memset(out, 0, sizeof(*out));
	buf_init(&out->body, ADMIN_BODY_MAX);
	if (!is_metrics && !is_health && !is_jobs) {
		text_error(out, 404, NULL);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		text_error(out, 405, NULL);
		out->allow = "GET, HEAD";
		return;
	}
	if (is_metrics) {
		struct job_metrics m;
		job_engine_metrics(e, &m);
		front_metrics_render(&out->body, &m, fronts);
		out->status = 200;
		out->content_type = "text/plain; version=0.0.4; charset=utf-8";
		return;
	}
	if (is_health) {
		const char *why = NULL;
		struct job_metrics m;
		job_engine_metrics(e, &m);
		out->content_type = "application/json";
		if (job_engine_health(e, &why) == 0) {
			out->status = 200;
			buf_printf(&out->body, "{\"status\":\"ok\",\"running\":%u,\"queued\":%u}\n", m.running, m.queued);
		} else {
			out->status = 503;
			buf_append_str(&out->body, "{\"status\":\"unavailable\",\"reason\":");
			util_json_string(&out->body, why);
			buf_append_str(&out->body, "}\n");
		}
		return;
	}
	struct jobs_query q;
	const char *why = NULL;
	int r;
	if (admin_parse_jobs_query(query ? query : "", &q, &why) < 0) {
		text_error(out, 400, why);
		return;
	}
	r = job_list(e, q.have_state ? &q.state : NULL, q.limit, append_job, &out->body);
	if (r < 0 && r != -ENOBUFS) {
		buf_reset(&out->body);
		text_error(out, 503, "the job database cannot be read");
		return;
	}
	out->status = 200;
	out->content_type = "application/x-ndjson";
}
