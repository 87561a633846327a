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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "util/util.h"

/* A suite's temp dir, /tmp/cgiq-NAME-XXXXXX (into dir, 64 bytes), with
 * spool/ (spool, 96 bytes) made and jobs.db (db, 96 bytes) named; and,
 * when root is not NULL, cgi/ made and its real path in root (PATH_MAX).
 * 0, or -1 (a suite's init: no assertion here). */
static int fixture_dirs(const char *name, char *dir, char *root, char *spool, char *db)
{
	char made[128];

	snprintf(dir, 64, "/tmp/cgiq-%s-XXXXXX", name);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(spool, 96, "%s/spool", dir);
	snprintf(db, 96, "%s/jobs.db", dir);
	if (mkdir(spool, 0700) < 0)
		return -1;
	snprintf(made, sizeof(made), "%s/cgi", dir);
	return root == NULL || (mkdir(made, 0755) == 0 && realpath(made, root) != NULL) ? 0 : -1;
}

/* Removes what fixture_dirs made (a suite's clean-up). 0 or -1. */
static int fixture_dirs_remove(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

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
