/*
 * Integration tests of the job queue: asynchronous jobs (RFC 7240), status
 * monitor, results with Range, queue limits, durability across kill -9,
 * expiry, DELETE, Prefer: wait, and --on-disconnect detach.
 */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;

static const char *const MAIN_ARGS[] = {
	"--max-jobs", "2", "--queue-max", "50", "--processing-after", "200ms",
	"--processing-interval", "300ms", "--result-ttl", "1h", "--kill-grace", "500ms", NULL,
};

static int suite_init(void) { return td_start(&D, NULL, MAIN_ARGS); }

static int suite_clean(void)
{
	int st = td_stop(&D);
	td_cleanup(&D);
	return st == 0 ? 0 : -1;
}

/* One request on a new connection; the response in r. */
static int request(const struct tdaemon *d, const char *req, size_t len, struct tresp *r, int is_head)
{
	int fd = t_connect(d->port);
	if (fd < 0 || t_send(fd, req, len) < 0 || t_read_response(fd, r, is_head, 15000) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int get(const struct tdaemon *d, const char *path, const char *extra, struct tresp *r)
{
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra ? extra : "");
	return request(d, req, (size_t)n, r, 0);
}

/* Submits GET path with respond-async; copies the status monitor path to loc. */
static int submit_async(const struct tdaemon *d, const char *path, char *loc, size_t loc_size)
{
	struct tresp r;
	char v[256];
	int ok;

	if (get(d, path, "Prefer: respond-async\r\n", &r) < 0)
		return -1;
	ok = r.status == 202 && t_header(&r, "Location", v, sizeof(v)) &&
	     t_header(&r, "Preference-Applied", v + 200, 56) && strcmp(v + 200, "respond-async") == 0;
	if (ok)
		t_header(&r, "Location", loc, loc_size);
	else
		fprintf(stderr, "submit %s: status %d\n%s\n", path, r.status, r.head);
	t_resp_free(&r);
	return ok ? 0 : -1;
}

struct state_wait {
	const struct tdaemon *d;
	const char *loc;
	const char *state;
};

static int has_state(void *ud)
{
	struct state_wait *w = ud;
	struct tresp r;
	char want[64];
	int ok;

	if (get(w->d, w->loc, NULL, &r) < 0)
		return 0;
	snprintf(want, sizeof(want), "\"state\":\"%s\"", w->state);
	ok = r.status == 200 && strstr(r.body, want) != NULL;
	t_resp_free(&r);
	return ok;
}

static int wait_state(const struct tdaemon *d, const char *loc, const char *state, int ms)
{
	struct state_wait w = {d, loc, state};
	return t_wait_for(has_state, &w, ms);
}

/* ------------------------------------------------------------------ */

static void test_accepted_then_result(void)
{
	char loc[256], path[300], v[64];
	struct tresp r;

	CU_ASSERT_FATAL(submit_async(&D, "/sample.pdf?seconds=1", loc, sizeof(loc)) == 0);
	CU_ASSERT(strncmp(loc, "/_cgiq/jobs/", 12) == 0 && strlen(loc) == 12 + 32);
	/* Not finished: 425 with Retry-After; the monitor says so too. */
	snprintf(path, sizeof(path), "%s/result", loc);
	CU_ASSERT_FATAL(get(&D, path, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 425);
	CU_ASSERT(t_header(&r, "Retry-After", v, sizeof(v)) != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get(&D, loc, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/json");
	CU_ASSERT(t_header(&r, "Retry-After", v, sizeof(v)) != NULL);
	CU_ASSERT(strstr(r.body, "\"finished_at\":null") != NULL);
	t_resp_free(&r);

	CU_ASSERT_FATAL(wait_state(&D, loc, "succeeded", 10000));
	CU_ASSERT_FATAL(get(&D, loc, NULL, &r) == 0);
	CU_ASSERT(strstr(r.body, "\"status\":200") != NULL);
	CU_ASSERT(t_header(&r, "Retry-After", v, sizeof(v)) == NULL);
	{
		/* the node: without --node-name, the host name */
		char host[256], want[300];
		CU_ASSERT_FATAL(gethostname(host, sizeof(host)) == 0);
		snprintf(want, sizeof(want), "\"state\":\"succeeded\",\"node\":\"%s\"", host);
		CU_ASSERT_PTR_NOT_NULL(strstr(r.body, want));
	}
	t_resp_free(&r);

	CU_ASSERT_FATAL(get(&D, path, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/pdf");
	CU_ASSERT(r.body_len > 5000 && memcmp(r.body, "%PDF-1.", 7) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Accept-Ranges", v, sizeof(v)) ? v : "", "bytes");
	t_resp_free(&r);
}

static void test_range_resumes_exactly(void)
{
	char loc[256], path[300], v[128];
	struct tresp full, part;
	size_t n = 3000000;

	CU_ASSERT_FATAL(submit_async(&D, "/big-output?3000000", loc, sizeof(loc)) == 0);
	CU_ASSERT_FATAL(wait_state(&D, loc, "succeeded", 15000));
	snprintf(path, sizeof(path), "%s/result", loc);
	CU_ASSERT_FATAL(get(&D, path, NULL, &full) == 0);
	CU_ASSERT_EQUAL_FATAL(full.body_len, n);
	CU_ASSERT_FATAL(get(&D, path, "Range: bytes=1234567-\r\n", &part) == 0);
	CU_ASSERT_EQUAL(part.status, 206);
	CU_ASSERT_STRING_EQUAL(t_header(&part, "Content-Range", v, sizeof(v)) ? v : "",
	                       "bytes 1234567-2999999/3000000");
	CU_ASSERT_EQUAL(part.body_len, n - 1234567);
	CU_ASSERT(part.body_len == n - 1234567 && memcmp(part.body, full.body + 1234567, part.body_len) == 0);
	t_resp_free(&part);
	CU_ASSERT_FATAL(get(&D, path, "Range: bytes=-10\r\n", &part) == 0);
	CU_ASSERT_EQUAL(part.status, 206);
	CU_ASSERT(part.body_len == 10 && memcmp(part.body, full.body + n - 10, 10) == 0);
	t_resp_free(&part);
	CU_ASSERT_FATAL(get(&D, path, "Range: bytes=5000000-\r\n", &part) == 0);
	CU_ASSERT_EQUAL(part.status, 416);
	CU_ASSERT_STRING_EQUAL(t_header(&part, "Content-Range", v, sizeof(v)) ? v : "", "bytes */3000000");
	t_resp_free(&part);
	/* HEAD: the headers, no body */
	char req[400];
	int len = snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
	CU_ASSERT_FATAL(request(&D, req, (size_t)len, &part, 1) == 0);
	CU_ASSERT_EQUAL(part.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&part, "Content-Length", v, sizeof(v)) ? v : "", "3000000");
	t_resp_free(&part);
	t_resp_free(&full);
}

static void test_fifo_order(void)
{
	char locs[20][256];
	char cmd[1024], out[8192], expect[8192] = "";

	for (int i = 0; i < 20; i++)
		CU_ASSERT_FATAL(submit_async(&D, "/slow?0.1", locs[i], sizeof(locs[i])) == 0);
	for (int i = 0; i < 20; i++)
		CU_ASSERT_FATAL(wait_state(&D, locs[i], "succeeded", 20000));
	/* Started in the order they were accepted. */
	for (int i = 0; i < 20; i++) {
		strcat(expect, locs[i] + 12);
		strcat(expect, "\n");
	}
	snprintf(cmd, sizeof(cmd),
	         "sqlite3 '%s' \"SELECT id FROM jobs WHERE uri = '/slow?0.1' ORDER BY started_at, rowid\"",
	         D.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, expect);
}

static void test_bad_ids_and_methods(void)
{
	struct tresp r;
	CU_ASSERT_FATAL(get(&D, "/_cgiq/jobs/xyz", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get(&D, "/_cgiq/jobs/0123456789abcdef0123456789abcdef", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get(&D, "/_cgiq/jobs/0123456789ABCDEF0123456789abcdef/result", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	static const char post[] = "POST /_cgiq/jobs/0123456789abcdef0123456789abcdef HTTP/1.1\r\n"
	                           "Host: x\r\nContent-Length: 0\r\n\r\n";
	CU_ASSERT_FATAL(request(&D, post, sizeof(post) - 1, &r, 0) == 0);
	CU_ASSERT_EQUAL(r.status, 405);
	t_resp_free(&r);
}

static void test_delete_cancels(void)
{
	char loc[256], pid[32], cmd[512];
	struct tresp r;
	int len;

	CU_ASSERT_FATAL(submit_async(&D, "/slow?30", loc, sizeof(loc)) == 0);
	CU_ASSERT_FATAL(wait_state(&D, loc, "running", 5000));
	/* The row is written a few milliseconds after the fact. */
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT pid FROM jobs WHERE id = '%s'\"", D.db, loc + 12);
	uint64_t until = t_now_ms() + 5000;
	do {
		t_run(cmd, pid, sizeof(pid));
	} while (atoi(pid) <= 1 && t_now_ms() < until && usleep(20000) == 0);
	CU_ASSERT_FATAL(atoi(pid) > 1);
	char req[400];
	len = snprintf(req, sizeof(req), "DELETE %s HTTP/1.1\r\nHost: x\r\n\r\n", loc);
	CU_ASSERT_FATAL(request(&D, req, (size_t)len, &r, 0) == 0);
	CU_ASSERT_EQUAL(r.status, 204);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get(&D, loc, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	uint64_t end = t_now_ms() + 5000;
	while (t_group_alive(atoi(pid)) > 0 && t_now_ms() < end)
		usleep(20000);
	CU_ASSERT_EQUAL(t_group_alive(atoi(pid)), 0);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT state FROM jobs WHERE id = '%s'\"", D.db, loc + 12);
	char st[64] = "";
	end = t_now_ms() + 5000;
	do {
		t_run(cmd, st, sizeof(st));
	} while (strcmp(st, "cancelled\n") != 0 && t_now_ms() < end && usleep(20000) == 0);
	CU_ASSERT_STRING_EQUAL(st, "cancelled\n");
}

static void test_prefer_wait(void)
{
	struct tresp r;
	char v[256];
	uint64_t t0 = t_now_ms();

	CU_ASSERT_FATAL(get(&D, "/slow?2", "Prefer: wait=1\r\nUser-Agent: python-requests/2\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT(t_now_ms() - t0 >= 900 && t_now_ms() - t0 < 1900);
	CU_ASSERT(t_header(&r, "Location", v, sizeof(v)) != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(wait_state(&D, v, "succeeded", 5000));
	strcat(v, "/result");
	CU_ASSERT_FATAL(get(&D, v, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	t_resp_free(&r);
	/* Done within the wait: the ordinary answer. */
	CU_ASSERT_FATAL(get(&D, "/hello", "Prefer: wait=5\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
}

static void test_first_102_has_location(void)
{
	struct tresp r;
	CU_ASSERT_FATAL(get(&D, "/slow?1", "Prefer: processing\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_FATAL(r.interim_count >= 2);
	CU_ASSERT(strncmp(r.interim_raw[0], "HTTP/1.1 102 Processing\r\nLocation: /_cgiq/jobs/", 47) == 0);
	CU_ASSERT_STRING_EQUAL(r.interim_raw[1], "HTTP/1.1 102 Processing\r\n\r\n");
	t_resp_free(&r);
}

static void test_progress(void)
{
	struct tresp r;
	char loc[256];
	int seen = 0;

	/* In the 102s, in the draft-wright-http-progress syntax; never backwards. */
	CU_ASSERT_FATAL(get(&D, "/progress?0.5", "Prefer: processing\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "done\n");
	for (int i = 0; i < r.interim_count; i++) {
		if (strstr(r.interim_raw[i], "Progress: 1/3 \"rendering page 1\"\r\n"))
			seen |= 1;
		if (strstr(r.interim_raw[i], "Progress: 2/3 \"rendering \\\"page\\\" 2\"\r\n"))
			seen |= 2;
		CU_ASSERT(strstr(r.interim_raw[i], "backwards") == NULL);
	}
	CU_ASSERT_EQUAL(seen, 3);
	t_resp_free(&r);

	/* In the status monitor, and the last one in the row. */
	CU_ASSERT_FATAL(submit_async(&D, "/progress?0.5", loc, sizeof(loc)) == 0);
	CU_ASSERT(wait_state(&D, loc, "succeeded", 10000));
	CU_ASSERT_FATAL(get(&D, loc, NULL, &r) == 0);
	CU_ASSERT(strstr(r.body, "\"progress\":{\"done\":3,\"total\":3,\"text\":\"\"}") != NULL);
	t_resp_free(&r);
	char cmd[512], out[128];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT progress_done || '/' || progress_total FROM jobs WHERE id = '%s'\"",
	         D.db, loc + 12);
	uint64_t end = t_now_ms() + 5000;
	do {
		t_run(cmd, out, sizeof(out));
	} while (strcmp(out, "3/3\n") != 0 && t_now_ms() < end && usleep(20000) == 0);
	CU_ASSERT_STRING_EQUAL(out, "3/3\n");
}

/* cgiq jobs shows queue positions and cancels through the database. */
static void test_cli_queue_and_cancel(void)
{
	struct tdaemon q;
	static const char *const args[] = {"--max-jobs", "1", "--kill-grace", "300ms", NULL};
	char run[256], q1[256], q2[256], cmd[1024], out[8192];

	CU_ASSERT_FATAL(td_start(&q, NULL, args) == 0);
	CU_ASSERT_FATAL(submit_async(&q, "/slow?30", run, sizeof(run)) == 0);
	CU_ASSERT_FATAL(wait_state(&q, run, "running", 5000));
	CU_ASSERT_FATAL(submit_async(&q, "/slow?0", q1, sizeof(q1)) == 0);
	CU_ASSERT_FATAL(submit_async(&q, "/slow?0", q2, sizeof(q2)) == 0);
	/* The CLI reads the database: the running job's row must say so there
	 * too (the monitor answers from memory, the row follows). */
	CU_ASSERT_FATAL(t_wait_job_state(&q, run + 12, "running", 5000));
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' --state queued --json | grep -o '\"queue_position\":[0-9]*'",
	         CGIQ_BIN, q.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "\"queue_position\":2\n\"queue_position\":1\n");
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' --cancel %s", CGIQ_BIN, q.db, run + 12);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(wait_state(&q, run, "cancelled", 5000));
	CU_ASSERT(wait_state(&q, q2, "succeeded", 5000));
	/* not active any more (once its row says so): refused */
	CU_ASSERT(t_wait_job_state(&q, run + 12, "cancelled", 5000));
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' --cancel nonsense 2>&1", CGIQ_BIN, q.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_EQUAL(td_stop(&q), 0);
	td_cleanup(&q);
}

static void test_queue_full_503(void)
{
	struct tdaemon q;
	static const char *const args[] = {"--max-jobs", "1", "--queue-max", "2", NULL};
	char loc[256], v[32];
	struct tresp r;

	CU_ASSERT_FATAL(td_start(&q, NULL, args) == 0);
	CU_ASSERT(submit_async(&q, "/slow?2", loc, sizeof(loc)) == 0); /* runs */
	CU_ASSERT(wait_state(&q, loc, "running", 5000));
	CU_ASSERT(submit_async(&q, "/slow?0", loc, sizeof(loc)) == 0); /* queued */
	CU_ASSERT(submit_async(&q, "/slow?0", loc, sizeof(loc)) == 0); /* queued */
	CU_ASSERT_FATAL(get(&q, "/hello", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Retry-After", v, sizeof(v)) ? v : "", "5");
	t_resp_free(&r);
	CU_ASSERT(td_wait_log(&q, "queue full", 5000));
	CU_ASSERT(wait_state(&q, loc, "succeeded", 10000));
	CU_ASSERT_EQUAL(td_stop(&q), 0);
	td_cleanup(&q);
}

/* kill -9 with queued asynchronous jobs: after a restart every one runs, in
 * order, with its own request body; the one that was running is interrupted. */
static void test_kill9_keeps_queued_jobs(void)
{
	struct tdaemon k;
	static const char *const args[] = {"--max-jobs", "1", NULL};
	char locs[6][256], blocker[256];
	struct tresp r;
	char v[256];

	CU_ASSERT_FATAL(td_start(&k, NULL, args) == 0);
	CU_ASSERT_FATAL(submit_async(&k, "/slow?60", blocker, sizeof(blocker)) == 0);
	CU_ASSERT_FATAL(wait_state(&k, blocker, "running", 5000));
	for (int i = 0; i < 6; i++) {
		char req[512], body[64];
		int bl = snprintf(body, sizeof(body), "body of job %d", i);
		int n = snprintf(req, sizeof(req),
		                 "POST /echo HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n"
		                 "Content-Type: text/x-test\r\nContent-Length: %d\r\n\r\n%s", bl, body);
		CU_ASSERT_FATAL(request(&k, req, (size_t)n, &r, 0) == 0);
		CU_ASSERT_EQUAL_FATAL(r.status, 202);
		t_header(&r, "Location", locs[i], sizeof(locs[i]));
		t_resp_free(&r);
	}
	td_kill9(&k);
	CU_ASSERT_FATAL(td_restart(&k, args) == 0);
	CU_ASSERT(wait_state(&k, blocker, "interrupted", 5000));
	for (int i = 0; i < 6; i++) {
		char want[64];
		CU_ASSERT_FATAL(wait_state(&k, locs[i], "succeeded", 15000));
		snprintf(v, sizeof(v), "%s/result", locs[i]);
		CU_ASSERT_FATAL(get(&k, v, NULL, &r) == 0);
		snprintf(want, sizeof(want), "body of job %d", i);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(r.body, want);
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "text/x-test");
		t_resp_free(&r);
	}
	/* consistent database, no row left running, request bodies gone */
	char cmd[600], out[256];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'PRAGMA integrity_check' \"SELECT count(*) FROM jobs WHERE state IN ('running', 'queued')\"", k.db);
	/* The monitor answers from memory; the rows follow within milliseconds. */
	uint64_t until = t_now_ms() + 5000;
	do {
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	} while (strcmp(out, "ok\n0\n") != 0 && t_now_ms() < until && usleep(20000) == 0);
	CU_ASSERT_STRING_EQUAL(out, "ok\n0\n");
	snprintf(cmd, sizeof(cmd), "ls '%s/spool' | grep -c '\\.in$'", k.dir);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	CU_ASSERT_EQUAL(td_stop(&k), 0);
	td_cleanup(&k);
}

static void test_ttl_expiry(void)
{
	struct tdaemon x;
	static const char *const args[] = {"--result-ttl", "1s", NULL};
	char loc[256], path[300], file[600];
	struct tresp r;
	struct stat st;

	CU_ASSERT_FATAL(td_start(&x, NULL, args) == 0);
	CU_ASSERT_FATAL(submit_async(&x, "/hello", loc, sizeof(loc)) == 0);
	CU_ASSERT_FATAL(wait_state(&x, loc, "succeeded", 5000));
	snprintf(file, sizeof(file), "%s/spool/%s.out", x.dir, loc + 12);
	CU_ASSERT(stat(file, &st) == 0);
	snprintf(path, sizeof(path), "%s/result", loc);
	uint64_t end = t_now_ms() + 8000;
	int status = 0;
	while (t_now_ms() < end) {
		CU_ASSERT_FATAL(get(&x, path, NULL, &r) == 0);
		status = r.status;
		t_resp_free(&r);
		if (status == 404)
			break;
		usleep(100000);
	}
	CU_ASSERT_EQUAL(status, 404);
	CU_ASSERT(stat(file, &st) < 0);
	CU_ASSERT_FATAL(get(&x, loc, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

/* --max-results-bytes: three 100 kB results under a 250 kB cap; the sweep
 * deletes the oldest (404, file gone) long before its TTL, the two newer ones
 * stay byte-exact. */
static void test_results_cap(void)
{
	struct tdaemon x;
	static const char *const args[] = {"--max-results-bytes", "250k", "--result-ttl", "20s", NULL};
	char locs[3][256], path[300], file[600];
	struct tresp r;
	struct stat st;
	int status = 0;

	CU_ASSERT_FATAL(td_start(&x, NULL, args) == 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(submit_async(&x, "/big-output?100000", locs[i], sizeof(locs[i])) == 0);
		CU_ASSERT_FATAL(wait_state(&x, locs[i], "succeeded", 10000));
	}
	snprintf(file, sizeof(file), "%s/spool/%s.out", x.dir, locs[0] + 12);
	snprintf(path, sizeof(path), "%s/result", locs[0]);
	/* The sweep runs every TTL/4 = 5 s. */
	for (uint64_t end = t_now_ms() + 12000; t_now_ms() < end;) {
		CU_ASSERT_FATAL(get(&x, path, NULL, &r) == 0);
		status = r.status;
		t_resp_free(&r);
		if (status == 404)
			break;
		usleep(100000);
	}
	CU_ASSERT_EQUAL(status, 404);
	CU_ASSERT(stat(file, &st) < 0);
	CU_ASSERT(td_wait_log(&x, "kept results over --max-results-bytes", 5000));
	for (int i = 1; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/result", locs[i]);
		CU_ASSERT_FATAL(get(&x, path, NULL, &r) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_EQUAL(r.body_len, 100000);
		CU_ASSERT(r.body_len == 100000 && r.body[99999] == 'a' + 99999 % 26);
		t_resp_free(&r);
	}
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

static void test_detach_on_disconnect(void)
{
	struct tdaemon x;
	/* The first 102 well before the program ends, so the client leaves first. */
	static const char *const args[] = {"--on-disconnect", "detach", "--processing-after", "100ms", NULL};
	static const char req[] = "GET /slow?2 HTTP/1.1\r\nHost: x\r\nPrefer: processing\r\n\r\n";
	char line[512], loc[256];
	struct tresp r;

	CU_ASSERT_FATAL(td_start(&x, NULL, args) == 0);
	int fd = t_connect(x.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, req, sizeof(req) - 1) == 0);
	/* The first 102 names the status monitor; then the client goes away. */
	ssize_t n = recv(fd, line, sizeof(line) - 1, 0);
	CU_ASSERT_FATAL(n > 0);
	line[n] = '\0';
	char *p = strstr(line, "Location: ");
	CU_ASSERT_FATAL(p != NULL);
	sscanf(p + 10, "%255[^\r]", loc);
	close(fd);
	CU_ASSERT(wait_state(&x, loc, "succeeded", 5000));
	strcat(loc, "/result");
	CU_ASSERT_FATAL(get(&x, loc, NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	t_resp_free(&r);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

/* How many times s occurs in the daemon's log. */
static int log_count(const struct tdaemon *d, const char *s)
{
	char cmd[1024], out[64];
	snprintf(cmd, sizeof(cmd), "grep -c -F -- '%s' '%s'", s, d->log);
	t_run(cmd, out, sizeof(out));
	return atoi(out);
}

struct count_wait {
	const struct tdaemon *d;
	const char *s;
	int want;
};
static int log_count_reached(void *ud)
{
	const struct count_wait *w = ud;
	return log_count(w->d, w->s) >= w->want;
}

/* --coalesce: concurrent GET/HEAD requests for the same program and query
 * share one job; a cookie, another query or another method get their own.
 * The client that started the job may leave: the others still get it. */
static void test_coalesce(void)
{
	struct tdaemon q;
	static const char *const args[] = {"--coalesce", "/slow", "--max-jobs", "4", NULL};
	static const char *const reqs[] = {
		"GET /slow?3 HTTP/1.1\r\nHost: x\r\n\r\n",            /* starts the job */
		"GET /slow?3 HTTP/1.1\r\nHost: x\r\n\r\n",            /* joins */
		"GET /slow?3 HTTP/1.1\r\nHost: y\r\nAccept: */*\r\n\r\n", /* joins */
		"HEAD /slow?3 HTTP/1.1\r\nHost: x\r\n\r\n",           /* joins */
		"GET /slow?3 HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\n\r\n", /* its own */
		"GET /slow?2 HTTP/1.1\r\nHost: x\r\n\r\n",            /* its own */
		"POST /slow?3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", /* its own */
	};
	enum { N = sizeof(reqs) / sizeof(reqs[0]) };
	int fds[N];
	char id[64], cmd[1024], out[64];
	struct count_wait joined = {&q, "joins it (--coalesce)", 3};
	int64_t t0;

	CU_ASSERT_FATAL(td_start(&q, NULL, args) == 0);
	t0 = t_wall_us();
	fds[0] = t_connect(q.port);
	CU_ASSERT_FATAL(fds[0] >= 0 && t_send(fds[0], reqs[0], strlen(reqs[0])) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&q, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&q, id, "running", 5000));
	for (int i = 1; i < N; i++) {
		fds[i] = t_connect(q.port);
		CU_ASSERT_FATAL(fds[i] >= 0 && t_send(fds[i], reqs[i], strlen(reqs[i])) == 0);
	}
	CU_ASSERT_FATAL(t_wait_for(log_count_reached, &joined, 5000));
	close(fds[0]); /* the first client leaves; the job goes on for the others */
	for (int i = 1; i < N; i++) {
		struct tresp r;
		char v[32];
		int head = strncmp(reqs[i], "HEAD", 4) == 0;
		CU_ASSERT_FATAL(t_read_response(fds[i], &r, head, 15000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "", "6");
		CU_ASSERT_STRING_EQUAL(head ? "hello\n" : r.body, "hello\n");
		t_resp_free(&r);
		close(fds[i]);
	}
	CU_ASSERT(t_wait_job_state(&q, id, "succeeded", 5000));
	CU_ASSERT_EQUAL(log_count(&q, "joins it (--coalesce)"), 3);
	/* one shared job, the cookie's, /slow?2's and the POST's */
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT count(*) FROM jobs WHERE script LIKE '%%/slow'\"", q.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(atoi(out), 4);
	CU_ASSERT_EQUAL(td_stop(&q), 0);
	td_cleanup(&q);
}

static int health_ok(void *ud)
{
	struct tresp r;
	int ok = get(ud, "/health", NULL, &r) == 0 && r.status == 200;
	if (r.body)
		t_resp_free(&r);
	return ok;
}

/*
 * The database is held by another process (BEGIN EXCLUSIVE for 8 s, beyond
 * the store's 5 s busy timeout): an asynchronous job cannot be committed,
 * so it is not promised (503 + Retry-After, no Location) and its program
 * never runs. Once the lock is gone, the same request is accepted and runs.
 */
static void test_uncommitted_never_runs(void)
{
	char dir[300], path[64], holder_cmd[600], loc[256], v[64], admin[48];
	char *argv[] = { "/bin/sh", "-c", holder_cmd, NULL };
	const char *extra[] = { "--admin-listen", admin, NULL };
	struct tserver holder;
	struct tdaemon q;
	struct tresp r;
	int mark = getpid() % 100000, admin_port = t_free_port();
	uint64_t t0;

	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	CU_ASSERT_FATAL(td_start(&q, NULL, extra) == 0);
	snprintf(path, sizeof(path), "/tmp/cgiq-ran-%d", mark);
	unlink(path);
	snprintf(dir, sizeof(dir), "%s", q.dir);
	snprintf(holder_cmd, sizeof(holder_cmd),
	         "exec sqlite3 -cmd '.timeout 5000' '%s' 'BEGIN EXCLUSIVE;' 'CREATE TABLE IF NOT EXISTS held(x);' "
	         "'.shell touch %s/held; sleep 8' 'COMMIT;'", q.db, dir);
	CU_ASSERT_FATAL(ts_start(&holder, dir, "holder", argv, NULL) == 0);
	{
		char held[400];
		snprintf(held, sizeof(held), "%s/held", dir);
		CU_ASSERT_FATAL(t_wait_file_has(held, "", 10000) || access(held, F_OK) == 0);
	}
	t0 = t_now_ms();
	snprintf(v, sizeof(v), "/mark-run?%d", mark);
	CU_ASSERT_FATAL(get(&q, v, "Prefer: respond-async\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT(t_header(&r, "Retry-After", loc, sizeof(loc)) != NULL);
	CU_ASSERT(t_header(&r, "Location", loc, sizeof(loc)) == NULL);
	t_resp_free(&r);
	/* it waited for the busy timeout, and its program did not run meanwhile */
	CU_ASSERT(t_now_ms() - t0 >= 4500);
	CU_ASSERT(access(path, F_OK) != 0);
	ts_stop(&holder);
	CU_ASSERT(td_log_has(&q, "could not be recorded durably; 503"));
	/* /health says the store is failing */
	{
		struct tdaemon a = q;
		a.port = admin_port;
		CU_ASSERT_FATAL(get(&a, "/health", NULL, &r) == 0);
		CU_ASSERT_EQUAL(r.status, 503);
		CU_ASSERT(r.body != NULL && strstr(r.body, "the last write to the job database failed") != NULL);
		t_resp_free(&r);
		/* with no request, it recovers by itself (the next write, or a probe
		 * every 10 s) */
		CU_ASSERT(t_wait_for(health_ok, &a, 15000));
	}

	/* The lock gone, the next request is promised and runs; had the first
	 * been queued, it would have run before it (FIFO), so its trace would
	 * be there by now. */
	snprintf(v, sizeof(v), "/mark-run?%d", mark + 1);
	CU_ASSERT_FATAL(submit_async(&q, v, loc, sizeof(loc)) == 0);
	CU_ASSERT(wait_state(&q, loc, "succeeded", 10000));
	CU_ASSERT(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "/tmp/cgiq-ran-%d", mark + 1);
	CU_ASSERT(access(path, F_OK) == 0);
	unlink(path);
	CU_ASSERT_EQUAL(td_stop(&q), 0);
	td_cleanup(&q);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("async", suite_init, suite_clean);
	CU_add_test(s, "202, status monitor, 425, result", test_accepted_then_result);
	CU_add_test(s, "Range resumes a result exactly", test_range_resumes_exactly);
	CU_add_test(s, "20 jobs, --max-jobs 2, FIFO", test_fifo_order);
	CU_add_test(s, "bad ids and methods", test_bad_ids_and_methods);
	CU_add_test(s, "DELETE cancels a running job", test_delete_cancels);
	CU_add_test(s, "Prefer: wait", test_prefer_wait);
	CU_add_test(s, "first 102 carries Location", test_first_102_has_location);
	CU_add_test(s, "progress in 102s, monitor and row", test_progress);
	CU_add_test(s, "queue full: 503 + Retry-After", test_queue_full_503);
	CU_add_test(s, "cgiq jobs: queue position, --cancel", test_cli_queue_and_cancel);
	CU_add_test(s, "kill -9 keeps queued jobs", test_kill9_keeps_queued_jobs);
	CU_add_test(s, "result past its TTL", test_ttl_expiry);
	CU_add_test(s, "--max-results-bytes deletes the oldest", test_results_cap);
	CU_add_test(s, "--on-disconnect detach", test_detach_on_disconnect);
	CU_add_test(s, "--coalesce shares one job", test_coalesce);
	CU_add_test(s, "not committed: 503, never run", test_uncommitted_never_runs);

	return t_cunit_run();
}
