/*
 * Unit tests of the job engine (src/jobs/), driven directly on a loop of its
 * own with a real store and real programs: an answer, a timeout with its
 * process group killed, a full queue, a cancel, a program that cannot start,
 * and the rows each leaves.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs/jobs.h"
#include "store/store.h"
#include "util/util.h"

#include "engine_fixture.h"

static char dir[64], spool[96], db[96];
static uv_loop_t loop;
static struct store *store;
static struct job_engine *engine;

/* One finished job, as its done callback saw it. */
struct outcome {
	int done;
	enum store_state state;
	int http_status, exit_code;
	char body[256];
	char id[UTIL_ID_LEN + 1];
};

static void on_done(struct job *j, void *ud)
{
	struct outcome *o = ud;
	const struct job_result *r = job_result(j);

	o->done = 1;
	o->state = r->state;
	o->http_status = r->http_status;
	o->exit_code = r->exit_code;
	snprintf(o->body, sizeof(o->body), "%.*s", r->body_mem ? (int)r->body_bytes : 0, r->body_mem ? r->body_mem : "");
	snprintf(o->id, sizeof(o->id), "%s", job_id(j));
	job_release(j);
}

static int open_engine(unsigned max_jobs, unsigned queue_max, uint64_t timeout_ms)
{
	struct job_config c;

	fixture_job_config(&c, spool, db);
	c.max_jobs = max_jobs;
	c.queue_max = queue_max;
	c.job_timeout_ms = timeout_ms;
	if (uv_loop_init(&loop) < 0 || store_open(db, &store) < 0)
		return -1;
	if (job_engine_open(&loop, store, &c, &engine) < 0)
		return -1;
	return job_engine_start(engine, store);
}

static void close_engine(void)
{
	job_engine_close(engine, "test over");
	uv_run(&loop, UV_RUN_DEFAULT);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	engine = NULL;
}

/* Submits dir/name with a minimal environment. */
static int submit(const char *name, struct outcome *o, struct job **out)
{
	char path[160];
	struct cgi_env env;
	struct job_request r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	env.vars = util_xcalloc(2, sizeof(char *));
	env.vars[0] = util_xstrdup("PATH=/usr/bin:/bin");
	env.count = 1;
	memset(&r, 0, sizeof(r));
	r.script = path;
	r.cwd = dir;
	r.env = &env;
	r.body_fd = -1;
	r.method = "GET";
	r.uri = name;
	r.peer = "test";
	memset(o, 0, sizeof(*o));
	int rc = job_submit(engine, &r, on_done, o, out);
	cgi_env_free(&env);
	return rc;
}

/* Runs the loop until o is done, at most ms. */
static int wait_done(struct outcome *o, int64_t ms)
{
	uint64_t until = util_mono_ms() + (uint64_t)ms;

	while (!o->done && util_mono_ms() < until)
		uv_run(&loop, UV_RUN_ONCE);
	return o->done;
}

/* Waits until no process of group pgid is left, reaping what comes back
 * to this process; at most ms. */
static int group_gone(pid_t pgid, int64_t ms)
{
	uint64_t until = util_mono_ms() + (uint64_t)ms;

	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (kill(-pgid, 0) < 0 && errno == ESRCH)
			return 1;
		if (util_mono_ms() >= until)
			return 0;
		usleep(10000);
	}
}

static const char *row(const char *id, const char *column, char *out, size_t size)
{
	struct store_job j;

	out[0] = '\0';
	if (store_job_get(store, id, &j) < 0)
		return out;
	if (strcmp(column, "state") == 0)
		snprintf(out, size, "%s", store_state_name(j.state));
	else if (strcmp(column, "pid") == 0)
		snprintf(out, size, "%lld", (long long)j.pid);
	else if (strcmp(column, "reason") == 0)
		snprintf(out, size, "%s", j.reason ? j.reason : "");
	store_job_clear(&j);
	return out;
}

static int suite_init(void) { return fixture_dirs("jobs", dir, NULL, spool, db); }

static int suite_clean(void) { return fixture_dirs_remove(dir); }

static void test_answer(void)
{
	struct outcome o;
	struct job *j;
	char v[128];

	fixture_program(dir, "hi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi\\n'\n");
	CU_ASSERT_FATAL(open_engine(2, 4, 5000) == 0);
	CU_ASSERT_EQUAL_FATAL(submit("hi", &o, &j), 0);
	CU_ASSERT_FATAL(wait_done(&o, 10000));
	CU_ASSERT_EQUAL(o.state, STORE_SUCCEEDED);
	CU_ASSERT_EQUAL(o.http_status, 200);
	CU_ASSERT_EQUAL(o.exit_code, 0);
	CU_ASSERT_STRING_EQUAL(o.body, "hi\n");
	close_engine();
	/* the close wrote every row */
	CU_ASSERT_STRING_EQUAL(row(o.id, "state", v, sizeof(v)), "succeeded");
	store_close(store);
}

static void test_timeout_kills_group(void)
{
	struct outcome o;
	struct job *j;
	char v[128];
	pid_t pid;

	fixture_program(dir, "slow", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nsleep 30 &\nwait\n");
	CU_ASSERT_FATAL(open_engine(2, 4, 300) == 0);
	CU_ASSERT_EQUAL_FATAL(submit("slow", &o, &j), 0);
	CU_ASSERT_FATAL(wait_done(&o, 10000));
	CU_ASSERT_EQUAL(o.state, STORE_TIMED_OUT);
	CU_ASSERT_EQUAL(o.http_status, 504);
	close_engine();
	CU_ASSERT_STRING_EQUAL(row(o.id, "state", v, sizeof(v)), "timed_out");
	pid = (pid_t)atoi(row(o.id, "pid", v, sizeof(v)));
	CU_ASSERT(pid > 1);
	/* the group, the sleep in it too, is gone (a member the engine's loop
	 * had no turn to reap comes to this process, its subreaper) */
	CU_ASSERT(group_gone(pid, 5000));
	store_close(store);
}

static void test_queue_full_and_cancel(void)
{
	struct outcome o[3];
	struct job *j[3];
	char v[128];

	fixture_program(dir, "slow", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec sleep 30\n");
	CU_ASSERT_FATAL(open_engine(1, 1, 0) == 0);
	CU_ASSERT_EQUAL_FATAL(submit("slow", &o[0], &j[0]), 0); /* runs */
	CU_ASSERT_EQUAL_FATAL(submit("slow", &o[1], &j[1]), 0); /* waits */
	CU_ASSERT_EQUAL(submit("slow", &o[2], &j[2]), -EAGAIN); /* no room */
	CU_ASSERT_EQUAL(job_engine_running(engine), 1);
	snprintf(o[0].id, sizeof(o[0].id), "%s", job_id(j[0]));
	snprintf(o[1].id, sizeof(o[1].id), "%s", job_id(j[1]));
	/* A cancel drops the done callback: the engine's own count says when
	 * the running one has ended. */
	job_cancel(j[1], "test: queued one");
	job_cancel(j[0], "test: running one");
	CU_ASSERT(fixture_wait_idle(&loop, engine, 10000));
	CU_ASSERT_EQUAL(job_state(j[0]), STORE_CANCELLED);
	CU_ASSERT_EQUAL(job_state(j[1]), STORE_CANCELLED);
	job_release(j[0]);
	job_release(j[1]);
	close_engine();
	CU_ASSERT_STRING_EQUAL(row(o[0].id, "state", v, sizeof(v)), "cancelled");
	CU_ASSERT_STRING_EQUAL(row(o[0].id, "reason", v, sizeof(v)), "test: running one");
	CU_ASSERT_STRING_EQUAL(row(o[1].id, "state", v, sizeof(v)), "cancelled");
	store_close(store);
}

static void test_cannot_start(void)
{
	struct outcome o;
	struct job *j;
	char v[128];

	fixture_program(dir, "noexec", "not a program\n");
	{
		char path[160];
		snprintf(path, sizeof(path), "%s/noexec", dir);
		CU_ASSERT_FATAL(chmod(path, 0644) == 0);
	}
	CU_ASSERT_FATAL(open_engine(2, 4, 5000) == 0);
	CU_ASSERT_EQUAL_FATAL(submit("noexec", &o, &j), 0);
	CU_ASSERT_FATAL(wait_done(&o, 10000));
	CU_ASSERT_EQUAL(o.state, STORE_FAILED);
	CU_ASSERT_EQUAL(o.http_status, 502);
	close_engine();
	CU_ASSERT_STRING_EQUAL(row(o.id, "state", v, sizeof(v)), "failed");
	store_close(store);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("engine", suite_init, suite_clean);
	CU_add_test(s, "a program's answer and its row", test_answer);
	CU_add_test(s, "timeout: 504, its process group killed", test_timeout_kills_group);
	CU_add_test(s, "queue full, cancel queued and running", test_queue_full_and_cancel);
	CU_add_test(s, "a program that cannot start", test_cannot_start);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
