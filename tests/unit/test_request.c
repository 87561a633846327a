/*
 * Unit tests of a request's life in front/ (src/front/request.c) with a fake
 * wire: no socket, a real job engine, a real store and real programs on a
 * loop of the test's own. The fake wire records every operation front/ asks
 * of it as text ("head 200 OK [headers] mem 6", "body 65536", "finish"), and
 * each test asserts that exact sequence. A write "completes" when the test
 * says so (front_req_written), as a wire's write callback would.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front/front.h"
#include "jobs/jobs.h"
#include "store/store.h"
#include "util/util.h"

#include "engine_fixture.h"

static char dir[64], root[PATH_MAX], spool[96], db[96], alog[96];
static uv_loop_t loop;
static struct store *store;
static struct job_engine *engine;
static struct front_access_log *access_log;
static struct front_counters counters;

/* ------------------------------------------------------------------ */
/* the fake wire */

struct fake {
	struct front_req *r;
	char tag[32];
	struct buf ops;      /* what front/ asked, in order */
	int pending;         /* a write not yet "completed" */
	int finished, closed, freed;
	char redirect_to[64];
};

static void op(struct fake *w, const char *text)
{
	if (w->ops.len)
		buf_append_str(&w->ops, ";");
	buf_append_str(&w->ops, text);
}

/* Header lines shown with '|' for CRLF; Date-free, so exact. */
static int fake_head(struct front_req *r, struct front_answer *a, int last)
{
	struct fake *w = front_req_wire(r);
	const char *mem = front_answer_mem(a);
	char line[512];
	size_t n = 0;

	n += (size_t)snprintf(line + n, sizeof(line) - n, "head %d %s [", a->status, front_answer_reason(a));
	for (size_t i = 0; i < a->headers.len && n < sizeof(line) - 1; i++)
		if (a->headers.data[i] != '\r')
			line[n++] = a->headers.data[i] == '\n' ? '|' : a->headers.data[i];
	line[n] = '\0';
	if (a->fd >= 0)
		snprintf(line + n, sizeof(line) - n, "] file %llu", (unsigned long long)front_answer_body_len(a));
	else
		snprintf(line + n, sizeof(line) - n, "] mem %llu%s%s", (unsigned long long)front_answer_body_len(a),
		         a->local_redirect ? " local-redirect" : "", mem || front_answer_body_len(a) == 0 ? "" : " lost");
	if (last)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), " last");
	op(w, line);
	w->pending = 1;
	return 0;
}

static int fake_body(struct front_req *r, const char *data, size_t len, int last)
{
	struct fake *w = front_req_wire(r);
	char n[32];

	(void)data;
	snprintf(n, sizeof(n), "body %zu%s", len, last ? " last" : "");
	op(w, n);
	w->pending = 1;
	return 0;
}

static void fake_finish(struct front_req *r)
{
	struct fake *w = front_req_wire(r);
	op(w, "finish");
	w->finished = 1;
}

static void fake_close(struct front_req *r)
{
	struct fake *w = front_req_wire(r);
	op(w, "close");
	w->closed = 1;
}

static const struct front_wire_ops fake_ops = {
	.head = fake_head,
	.body = fake_body,
	.finish = fake_finish,
	.close = fake_close,
	.redirect = NULL,
	.chunk_bytes = 65536,
};

static void on_fake_freed(void *wire) { ((struct fake *)wire)->freed = 1; }

/* ------------------------------------------------------------------ */
/* the engine and the front */

static struct front *front;

static int open_all(unsigned max_jobs, unsigned queue_max, const char *spool_dir)
{
	static int written;
	struct job_config jc;
	struct front_config fc;

	if (!written) {
		/* In a test: fixture_program asserts. */
		fixture_program(root, "hello", "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhello\\n'\n");
		fixture_program(root, "big", "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\n"
		                             "head -c 200000 /dev/zero\n");
		fixture_program(root, "sleep", "#!/bin/sh\nsleep 3\nprintf 'Content-Type: text/plain\\n\\nslept\\n'\n");
		fixture_program(root, "quick", "#!/bin/sh\nsleep 0.3\nprintf 'Content-Type: text/plain\\n\\nok\\n'\n");
		fixture_program(root, "redirect", "#!/bin/sh\nprintf 'Location: /hello\\n\\n'\n");
		written = 1;
	}
	fixture_job_config(&jc, spool, db);
	jc.max_jobs = max_jobs;
	jc.queue_max = queue_max;
	jc.job_timeout_ms = 20000;
	memset(&fc, 0, sizeof(fc));
	memset(&counters, 0, sizeof(counters));
	if (uv_loop_init(&loop) < 0 || store_open(db, &store) < 0 || job_engine_open(&loop, store, &jc, &engine) < 0 ||
	    job_engine_start(engine, store) < 0 || front_access_log_open(NULL, alog, &access_log) < 0)
		return -1;
	fc.engine = engine;
	fc.ops = &fake_ops;
	fc.spool_dir = spool_dir;
	fc.body_mem_bytes = 16;
	fc.max_body_bytes = 1 << 20;
	fc.jobs_prefix = "/_cgiq/jobs";
	fc.max_wait_ms = 60000;
	fc.access_log = access_log;
	fc.counters = &counters;
	return front_open(&loop, &fc, &front);
}

static void close_all(void)
{
	uint64_t until = util_mono_ms() + 10000;

	fixture_wait_idle(&loop, engine, 10000);
	job_engine_close(engine, "test over");
	while (uv_run(&loop, UV_RUN_NOWAIT) != 0 && util_mono_ms() < until)
		usleep(1000);
	CU_ASSERT_EQUAL(uv_loop_close(&loop), 0);
	front_free(front);
	front_access_log_free(access_log);
	store_close(store);
	unlink(alog);
	front = NULL;
	engine = NULL;
	store = NULL;
}

static void fake_open(struct fake *w, const char *tag)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->tag, sizeof(w->tag), "%s", tag);
	buf_init(&w->ops, 1 << 16);
	w->r = front_req_new(front, w, w->tag);
}

/* Closes w's request and turns the loop until it is freed. */
static void fake_free(struct fake *w)
{
	uint64_t until = util_mono_ms() + 5000;

	front_req_close(w->r, on_fake_freed);
	while (!w->freed && util_mono_ms() < until)
		uv_run(&loop, UV_RUN_NOWAIT);
	CU_ASSERT(w->freed);
	buf_free(&w->ops);
}

static void fake_begin(struct fake *w, const char *method, const char *path)
{
	struct front_req_info info;

	memset(&info, 0, sizeof(info));
	info.method = method;
	info.target = path;
	info.path = path;
	info.protocol = "HTTP/1.1";
	info.host = "127.0.0.1";
	info.head_only = strcmp(method, "HEAD") == 0;
	front_req_begin(w->r, &info);
}

/* The job of program name, with an empty environment. */
static int fake_run(struct fake *w, const char *name, int async, int64_t wait_s)
{
	char script[PATH_MAX + 64];
	struct cgi_env env = {0};
	struct front_job j;

	snprintf(script, sizeof(script), "%s/%s", root, name);
	memset(&j, 0, sizeof(j));
	j.script = script;
	j.cwd = root;
	j.env = &env;
	j.method = "GET";
	j.uri = "/x";
	j.peer = "127.0.0.1:1";
	j.with_body = 1;
	j.respond_async = async;
	j.wait_s = wait_s;
	return front_req_run(w->r, &j);
}

/* Turns the loop, completing w's writes, until w finished or closed, at
 * most ms. */
static int settle(struct fake *w, int64_t ms)
{
	uint64_t until = util_mono_ms() + (uint64_t)ms;

	while (!w->finished && !w->closed && util_mono_ms() < until) {
		if (w->pending) {
			w->pending = 0;
			front_req_written(w->r);
			continue;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(500);
	}
	return w->finished || w->closed;
}

/* The access log's text, flushed. */
static void access_text(char *out, size_t size)
{
	FILE *f;
	size_t n;

	front_access_log_flush(access_log);
	f = fopen(alog, "r");
	n = f ? fread(out, 1, size - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
}

/* The state field of a job's status document. */
static void job_state_text(const char *id, char *out, size_t size)
{
	struct buf b;
	unsigned retry = 0;
	const char *p;

	buf_init(&b, 1 << 20);
	out[0] = '\0';
	if (job_status_json(engine, id, &b, &retry) == 0 && (p = strstr(b.data, "\"state\":\"")) != NULL)
		snprintf(out, size, "%.*s", (int)strcspn(p + 9, "\""), p + 9);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* tests */

static void test_sync_answer(void)
{
	struct fake w;
	char text[4096];

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req 1");
	fake_begin(&w, "GET", "/hello");
	CU_ASSERT_EQUAL(front_req_serve(w.r), 0);
	CU_ASSERT_EQUAL(fake_run(&w, "hello", 0, -1), 0);
	CU_ASSERT(front_req_waiting(w.r));
	CU_ASSERT_FATAL(settle(&w, 10000));
	CU_ASSERT_STRING_EQUAL(w.ops.data, "head 200 OK [Content-Type: text/plain|] mem 6 last;finish");
	CU_ASSERT_EQUAL(front_req_exit_status(w.r), 0);
	access_text(text, sizeof(text));
	CU_ASSERT(strstr(text, "\"GET /hello HTTP/1.1\" 200 6 ") != NULL);
	CU_ASSERT_EQUAL(atomic_load(&counters.responses[2]), 1);
	front_req_reset(w.r);
	fake_free(&w);
	CU_ASSERT_EQUAL(atomic_load(&counters.connections_open), 0);
	close_all();
}

static void test_spooled_answer(void)
{
	struct fake w;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req 2");
	fake_begin(&w, "GET", "/big");
	CU_ASSERT_EQUAL(fake_run(&w, "big", 0, -1), 0);
	CU_ASSERT_FATAL(settle(&w, 10000));
	/* 200,000 bytes (beyond the 64 KiB kept in memory): read from the
	 * spool a chunk at a time, each after the last was written. */
	CU_ASSERT_STRING_EQUAL(w.ops.data, "head 200 OK [Content-Type: application/octet-stream|] file 200000;"
	                                   "body 65536;body 65536;body 65536;body 3392 last;finish");
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

static void test_accepted_202(void)
{
	struct fake w;
	char expect[512], state[32];
	const char *id;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req 3");
	fake_begin(&w, "POST", "/hello");
	CU_ASSERT_EQUAL(fake_run(&w, "hello", 1, -1), 1);
	CU_ASSERT_FATAL(settle(&w, 10000));
	id = front_req_job_id(w.r);
	CU_ASSERT_FATAL(id != NULL);
	snprintf(expect, sizeof(expect),
	         "head 202 Accepted [Location: /_cgiq/jobs/%s|Content-Type: application/json|Retry-After: 1|"
	         "Preference-Applied: respond-async|] mem ",
	         id);
	CU_ASSERT_NSTRING_EQUAL(w.ops.data, expect, strlen(expect));
	CU_ASSERT(strstr(w.ops.data, ";finish") != NULL);
	fixture_wait_idle(&loop, engine, 10000);
	job_state_text(id, state, sizeof(state));
	CU_ASSERT_STRING_EQUAL(state, "succeeded");
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

/* The queue is full: 503 with Retry-After, counted as queue_full. */
static void test_refused_503(void)
{
	struct fake a, b, c;

	CU_ASSERT_FATAL(open_all(1, 1, spool) == 0);
	fake_open(&a, "req a");
	fake_open(&b, "req b");
	fake_open(&c, "req c");
	fake_begin(&a, "GET", "/sleep");
	fake_begin(&b, "GET", "/sleep");
	fake_begin(&c, "GET", "/sleep");
	CU_ASSERT_EQUAL(fake_run(&a, "sleep", 0, -1), 0); /* runs */
	CU_ASSERT_EQUAL(fake_run(&b, "sleep", 0, -1), 0); /* queued */
	CU_ASSERT_EQUAL(fake_run(&c, "sleep", 0, -1), 1); /* refused */
	CU_ASSERT_FATAL(settle(&c, 5000));
	CU_ASSERT_STRING_EQUAL(c.ops.data, "head 503 Service Unavailable [Content-Type: text/plain; charset=utf-8|"
	                                   "Retry-After: 5|] mem 24 last;finish");
	CU_ASSERT_EQUAL(front_req_exit_status(c.r), 1);
	CU_ASSERT_EQUAL(atomic_load(&counters.refused[FRONT_REFUSED_QUEUE_FULL]), 1);
	CU_ASSERT_EQUAL(atomic_load(&counters.responses[5]), 1);
	fake_free(&a); /* gone: their jobs cancelled */
	fake_free(&b);
	fake_free(&c);
	close_all();
}

/* The client goes away while its job runs: cancelled, or with --on-disconnect
 * detach, goes on; logged 499 either way; nothing written. */
static void test_client_gone(void)
{
	struct fake a, b;
	char ida[UTIL_ID_LEN + 1], idb[UTIL_ID_LEN + 1], state[32], text[4096];
	uint64_t until;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&a, "req a");
	fake_begin(&a, "GET", "/sleep");
	CU_ASSERT_EQUAL(fake_run(&a, "sleep", 0, -1), 0);
	snprintf(ida, sizeof(ida), "%s", front_req_expose(a.r)); /* findable by id, as after a 102 */
	front_req_gone(a.r);
	CU_ASSERT_STRING_EQUAL(a.ops.data ? a.ops.data : "", "");
	fake_free(&a);
	CU_ASSERT(fixture_wait_idle(&loop, engine, 10000));
	job_state_text(ida, state, sizeof(state));
	CU_ASSERT_STRING_EQUAL(state, "cancelled");
	access_text(text, sizeof(text));
	CU_ASSERT(strstr(text, "\"GET /sleep HTTP/1.1\" 499 0 ") != NULL);

	/* detach: the front's setting */
	front_free(front);
	{
		struct front_config fc;
		memset(&fc, 0, sizeof(fc));
		fc.engine = engine;
		fc.ops = &fake_ops;
		fc.spool_dir = spool;
		fc.body_mem_bytes = 16;
		fc.jobs_prefix = "/_cgiq/jobs";
		fc.max_wait_ms = 60000;
		fc.detach_on_disconnect = 1;
		CU_ASSERT_FATAL(front_open(&loop, &fc, &front) == 0);
	}
	fake_open(&b, "req b");
	fake_begin(&b, "GET", "/quick");
	CU_ASSERT_EQUAL(fake_run(&b, "quick", 0, -1), 0);
	snprintf(idb, sizeof(idb), "%s", front_req_job_id(b.r));
	front_req_gone(b.r);
	fake_free(&b);
	until = util_mono_ms() + 10000;
	do {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
		job_state_text(idb, state, sizeof(state));
	} while (strcmp(state, "succeeded") != 0 && util_mono_ms() < until);
	CU_ASSERT_STRING_EQUAL(state, "succeeded"); /* detached: it went on, findable by id */
	close_all();
}

/* Prefer: wait=1 on a 3 s job: after 1 s the 202 without
 * Preference-Applied, and the job goes on. */
static void test_wait_expires(void)
{
	struct fake w;
	char expect[256], state[32];
	char id[UTIL_ID_LEN + 1];
	uint64_t t0 = util_mono_ms();

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req w");
	fake_begin(&w, "GET", "/sleep");
	CU_ASSERT_EQUAL(fake_run(&w, "sleep", 0, 1), 0);
	snprintf(id, sizeof(id), "%s", front_req_job_id(w.r));
	CU_ASSERT_FATAL(settle(&w, 10000));
	CU_ASSERT(util_mono_ms() - t0 >= 1000);
	snprintf(expect, sizeof(expect),
	         "head 202 Accepted [Location: /_cgiq/jobs/%s|Content-Type: application/json|Retry-After: 1|] mem ", id);
	CU_ASSERT_NSTRING_EQUAL(w.ops.data, expect, strlen(expect));
	job_state_text(id, state, sizeof(state));
	CU_ASSERT_STRING_EQUAL(state, "running");
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

/* A body the spool cannot take (its directory is missing): 507 with the
 * cause logged, the program never run. */
static void test_spool_full(void)
{
	struct fake w;
	char missing[160], big[100];

	snprintf(missing, sizeof(missing), "%s/no-such-dir", dir);
	CU_ASSERT_FATAL(open_all(2, 4, missing) == 0);
	memset(big, 'x', sizeof(big));
	fake_open(&w, "req s");
	fake_begin(&w, "POST", "/hello");
	CU_ASSERT_EQUAL(front_req_body(w.r, big, 10), 0); /* in memory */
	CU_ASSERT_EQUAL(front_req_body(w.r, big, sizeof(big)), 507);
	CU_ASSERT_EQUAL(front_req_body(w.r, big, 1), 507);
	CU_ASSERT_EQUAL(front_req_body_status(w.r), 507);
	CU_ASSERT_EQUAL(front_req_serve(w.r), 1);
	CU_ASSERT_FATAL(settle(&w, 5000));
	CU_ASSERT_STRING_EQUAL(w.ops.data, "head 507 Insufficient Storage [Content-Type: text/plain; charset=utf-8|] "
	                                   "mem 25 last;finish");
	CU_ASSERT_EQUAL(atomic_load(&counters.refused[FRONT_REFUSED_OTHER]), 1);
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

/* A wire without local redirects (FastCGI) hands the program's own
 * Location on, without a status line. */
static void test_local_redirect_left(void)
{
	struct fake w;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req r");
	fake_begin(&w, "GET", "/redirect");
	CU_ASSERT_EQUAL(fake_run(&w, "redirect", 0, -1), 0);
	CU_ASSERT_FATAL(settle(&w, 10000));
	CU_ASSERT_STRING_EQUAL(w.ops.data, "head 302 Found [Location: /hello|] mem 0 local-redirect last;finish");
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

/* A wire's own start time (FastCGI: its BEGIN_REQUEST) is the access log's
 * request time, not when the head was described to front/. */
static void test_started_by_wire(void)
{
	struct fake w;
	struct front_req_info info;
	char text[4096], *line;
	unsigned long long ms = 0;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	fake_open(&w, "req t");
	memset(&info, 0, sizeof(info));
	info.method = "GET";
	info.target = "/t";
	info.path = "/t";
	info.started_ms = util_mono_ms() - 1500;
	front_req_begin(w.r, &info);
	front_req_error(w.r, 404);
	CU_ASSERT_FATAL(settle(&w, 5000));
	access_text(text, sizeof(text));
	line = strstr(text, "\"GET /t\" 404 ");
	CU_ASSERT_FATAL(line != NULL);
	/* the last field: request_ms */
	CU_ASSERT(sscanf(strrchr(line, ' ') + 1, "%llu", &ms) == 1);
	CU_ASSERT(ms >= 1500 && ms < 60000);
	front_req_reset(w.r);
	fake_free(&w);
	close_all();
}

/* Over --max-connections: the request is answered 503 and counted so. */
static void test_max_connections(void)
{
	struct fake a, b;
	struct front_config fc;

	CU_ASSERT_FATAL(open_all(2, 4, spool) == 0);
	front_free(front);
	memset(&fc, 0, sizeof(fc));
	fc.engine = engine;
	fc.ops = &fake_ops;
	fc.spool_dir = spool;
	fc.max_connections = 1;
	fc.jobs_prefix = "/_cgiq/jobs";
	fc.counters = &counters;
	CU_ASSERT_FATAL(front_open(&loop, &fc, &front) == 0);
	fake_open(&a, "req a");
	fake_open(&b, "req b");
	CU_ASSERT_EQUAL(front_req_refused(a.r), 0);
	CU_ASSERT_EQUAL(front_req_refused(b.r), 1);
	CU_ASSERT_EQUAL(front_connections(front), 2);
	fake_begin(&b, "GET", "/hello");
	CU_ASSERT_EQUAL(front_req_serve(b.r), 1);
	CU_ASSERT_FATAL(settle(&b, 5000));
	CU_ASSERT_STRING_EQUAL(b.ops.data, "head 503 Service Unavailable [Content-Type: text/plain; charset=utf-8|"
	                                   "Retry-After: 5|] mem 24 last;finish");
	CU_ASSERT_EQUAL(atomic_load(&counters.refused[FRONT_REFUSED_MAX_CONNECTIONS]), 1);
	fake_free(&b);
	fake_free(&a);
	CU_ASSERT_EQUAL(front_connections(front), 0);
	close_all();
}

static int suite_init(void)
{
	if (fixture_dirs("req", dir, root, spool, db) < 0)
		return -1;
	snprintf(alog, sizeof(alog), "%s/access.log", dir);
	return 0;
}

static int suite_clean(void) { return fixture_dirs_remove(dir); }

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("a request's life in front/", suite_init, suite_clean);
	CU_add_test(s, "a synchronous answer", test_sync_answer);
	CU_add_test(s, "a spooled answer, a chunk per write", test_spooled_answer);
	CU_add_test(s, "respond-async: the 202 once durable", test_accepted_202);
	CU_add_test(s, "queue full: 503 with Retry-After", test_refused_503);
	CU_add_test(s, "the client gone: cancel, detach", test_client_gone);
	CU_add_test(s, "Prefer: wait runs out: 202", test_wait_expires);
	CU_add_test(s, "a body the spool cannot take: 507", test_spool_full);
	CU_add_test(s, "a local redirect left to the web server", test_local_redirect_left);
	CU_add_test(s, "over --max-connections: 503", test_max_connections);
	CU_add_test(s, "the request time from the wire's start", test_started_by_wire);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
