/*
 * What the admin listener shows about the engine: counter snapshots, health,
 * the job list, and the fronts' atomic counters. The counting itself happens
 * where the events do (engine.c, the fronts); this file only reads and names.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* From 5 ms (a trivial program) to 5 min (the default --job-timeout). */
const double job_hist_bounds_s[JOB_HIST_BOUNDS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};

/* A stuck recorder is reported after this long: batches are handed over
 * every few milliseconds and a commit takes far less than this. */
#define RECORDER_STUCK_MS 10000

void job_histogram_observe(struct job_histogram *h, int64_t value_us)
{
	size_t i;

	if (value_us < 0)
		value_us = 0;
	for (i = 0; i < JOB_HIST_BOUNDS; i++)
		if ((double)value_us <= job_hist_bounds_s[i] * 1e6)
			break;
	h->bucket[i]++;
	h->count++;
	h->sum_us += (uint64_t)value_us;
}

void job_engine_metrics(const struct job_engine *e, struct job_metrics *out)
{
	*out = e->metrics;
	out->running = e->running_count;
	out->queued = e->queued_count;
	out->submitted = e->submitted;
	out->refused_queue_full = e->refused;
	out->coalesced = e->coalesced;
	out->results_kept_bytes = e->results_kept_bytes;
}

int job_engine_health(struct job_engine *e, const char **why)
{
	/* Draining counts as down: a load balancer polling /health moves the
	 * traffic away while running jobs finish. */
	if (e->closing || e->draining) {
		*why = e->closing ? "shutting down" : "draining: no new jobs are taken";
		return -1;
	}
	return jobs__recorder_health(e->rec, RECORDER_STUCK_MS, why);
}

int job_list(struct job_engine *e, const enum store_state *state, unsigned limit,
             int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	if (e->reader == NULL)
		return -ENOENT;
	return store_jobs_list(e->reader, state, limit, cb, ud);
}

static const char *const refusal_names[JOB_REFUSAL_COUNT] = {
	[JOB_REFUSED_QUEUE_FULL] = "queue_full",
	[JOB_REFUSED_MAX_CONNECTIONS] = "max_connections",
	[JOB_REFUSED_BAD_REQUEST] = "bad_request",
	[JOB_REFUSED_TIMEOUT] = "timeout",
	[JOB_REFUSED_TOO_LARGE] = "too_large",
	[JOB_REFUSED_NOT_IMPLEMENTED] = "not_implemented",
	[JOB_REFUSED_FORBIDDEN] = "forbidden",
	[JOB_REFUSED_NOT_FOUND] = "not_found",
	[JOB_REFUSED_OTHER] = "other",
};

const char *job_refusal_name(enum job_refusal r)
{
	return (unsigned)r < JOB_REFUSAL_COUNT ? refusal_names[r] : "other";
}

enum job_refusal job_refusal_of_status(int status)
{
	switch (status) {
	case 400: return JOB_REFUSED_BAD_REQUEST;
	case 403: return JOB_REFUSED_FORBIDDEN;
	case 404: return JOB_REFUSED_NOT_FOUND;
	case 408: return JOB_REFUSED_TIMEOUT;
	case 413: case 414: case 431: return JOB_REFUSED_TOO_LARGE;
	case 501: case 505: return JOB_REFUSED_NOT_IMPLEMENTED;
	default: return JOB_REFUSED_OTHER;
	}
}

void job_front_count_response(struct job_front_counters *c, int status)
{
	if (c != NULL && status >= 100 && status < 600)
		atomic_fetch_add_explicit(&c->responses[status / 100], 1, memory_order_relaxed);
}

void job_front_count_refusal(struct job_front_counters *c, enum job_refusal r)
{
	if (c != NULL && (unsigned)r < JOB_REFUSAL_COUNT)
		atomic_fetch_add_explicit(&c->refused[r], 1, memory_order_relaxed);
}

void job_front_count_connection(struct job_front_counters *c, int delta)
{
	if (c == NULL)
		return;
	if (delta > 0)
		atomic_fetch_add_explicit(&c->connections_total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->connections_open, delta, memory_order_relaxed);
}

void job_front_count_misread(struct job_front_counters *c, enum job_misread m)
{
	if (c != NULL && (unsigned)m < JOB_MISREAD_COUNT)
		atomic_fetch_add_explicit(&c->misread[m], 1, memory_order_relaxed);
}

const char *job_misread_name(enum job_misread m)
{
	switch (m) {
	case JOB_MISREAD_EARLY_REQUEST: return "early-request";
	case JOB_MISREAD_CLOSED_AFTER_102: return "closed-after-102";
	default: return "unknown";
	}
}
