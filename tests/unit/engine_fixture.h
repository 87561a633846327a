/*
 * What the unit tests that drive a real job engine on a loop of their own
 * share (test_jobs.c, test_fcgi_server.c): programs written into a temp
 * directory, the engine's settings, and waiting for its jobs to end.
 */
#ifndef CGIQ_TEST_ENGINE_FIXTURE_H
#define CGIQ_TEST_ENGINE_FIXTURE_H

#include <CUnit/Basic.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "util/util.h"

/* dir/name, executable, holding text. */
static void fixture_program(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
	chmod(path, 0755);
}

/* The settings the tests run the engine with (the caller sets max_jobs,
 * queue_max and job_timeout_ms): small limits, a short kill grace. */
static void fixture_job_config(struct job_config *c, const char *spool, const char *db)
{
	memset(c, 0, sizeof(*c));
	c->kill_grace_ms = 200;
	c->max_output_bytes = 1 << 20;
	c->output_mem_bytes = 64 * 1024;
	c->stderr_tail_bytes = 1024;
	c->stderr_log_bytes = 64 * 1024;
	c->spool_dir = spool;
	c->result_ttl_ms = 60000;
	c->db_path = db;
}

/* Runs loop until e runs no job, at most ms. */
static int fixture_wait_idle(uv_loop_t *loop, struct job_engine *e, int64_t ms)
{
	uint64_t until = util_mono_ms() + (uint64_t)ms;

	while (job_engine_running(e) > 0 && util_mono_ms() < until) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return job_engine_running(e) == 0;
}

#endif
