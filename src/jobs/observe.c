/*
 * What the admin listener shows about the engine: counter snapshots, health,
 * the job list. The counting itself happens where the events do (engine.c);
 * this file only reads and names.
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

int job_engine_store_down(struct job_engine *e)
{
	const char *why;

	return e->store_is_server && e->rec != NULL && jobs__recorder_health(e->rec, RECORDER_STUCK_MS, &why) < 0;
}

int job_list(struct job_engine *e, const enum store_state *state, unsigned limit,
             int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	if (e->reader == NULL)
		return -ENOENT;
	return store_jobs_list(e->reader, state, limit, cb, ud);
}
