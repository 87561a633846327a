/*
 * Observability pieces that need no daemon: access-log escaping and line
 * format, the access-log file (buffering, reopen), the Prometheus rendering,
 * histogram buckets, the admin pages' refusals, admin address checks.
 */
#include <CUnit/Basic.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front/front.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "util/util.h"

static char *escaped(const char *s, size_t len)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	front_access_escape(&b, s, len);
	return b.data ? b.data : util_xstrdup("");
}

static void test_escape(void)
{
	char *e;

	e = escaped("plain /a?b=c&d", 14);
	CU_ASSERT_STRING_EQUAL(e, "plain /a?b=c&d");
	free(e);
	/* quote, backslash, controls, DEL, non-ASCII, NUL */
	e = escaped("a\"b\\c\n\r\t\x01\x7f\xc3\xa9\0z", 14);
	CU_ASSERT_STRING_EQUAL(e, "a\\x22b\\x5Cc\\x0A\\x0D\\x09\\x01\\x7F\\xC3\\xA9\\x00z");
	free(e);
	e = escaped("", 0);
	CU_ASSERT_STRING_EQUAL(e, "");
	free(e);
	/* a field longer than 8 KiB is cut and marked */
	char *big = malloc(10000);
	memset(big, 'x', 10000);
	big[0] = '"';
	e = escaped(big, 10000);
	CU_ASSERT_EQUAL(strlen(e), 8191 + 4 + 3);
	CU_ASSERT(strncmp(e, "\\x22xxx", 7) == 0);
	CU_ASSERT(strcmp(e + strlen(e) - 4, "x...") == 0);
	free(e);
	free(big);
}

/* 2023-11-14T22:13:20Z */
#define T0_US (1700000000ll * 1000000)

static void test_format(void)
{
	struct front_access_entry e;
	struct buf b;

	memset(&e, 0, sizeof(e));
	e.host = "127.0.0.1";
	e.time_us = T0_US + 999999;
	e.method = "GET";
	e.target = "/hello?x=1";
	e.protocol = "HTTP/1.1";
	e.status = 200;
	e.bytes = 14;
	e.referer = "http://ref.example/";
	e.user_agent = "curl \"x\"";
	e.job_id = "0123456789abcdef0123456789abcdef";
	e.processing_sent = 3;
	e.job_ms = 1234;
	e.request_ms = 1240;
	buf_init(&b, 1 << 16);
	front_access_format(&b, &e);
	CU_ASSERT_STRING_EQUAL(b.data, "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /hello?x=1 HTTP/1.1\" 200 14 "
	                               "\"http://ref.example/\" \"curl \\x22x\\x22\" "
	                               "0123456789abcdef0123456789abcdef 3 1234 1240\n");

	/* nothing known: every field "-" */
	memset(&e, 0, sizeof(e));
	e.time_us = T0_US;
	e.status = 400;
	e.job_ms = -1;
	buf_reset(&b);
	front_access_format(&b, &e);
	CU_ASSERT_STRING_EQUAL(b.data, "- - - [14/Nov/2023:22:13:20 +0000] \"-\" 400 0 \"-\" \"-\" - 0 - 0\n");

	/* a user and a hostile target cannot break the line */
	e.host = "10.0.0.1";
	e.user = "bob\n";
	e.method = "GET";
	e.target = "/a\"b c";
	e.protocol = NULL;
	e.job_ms = 0;
	buf_reset(&b);
	front_access_format(&b, &e);
	CU_ASSERT_STRING_EQUAL(b.data,
	                       "10.0.0.1 - bob\\x0A [14/Nov/2023:22:13:20 +0000] \"GET /a\\x22b c\" 400 0 \"-\" \"-\" - 0 0 0\n");
	buf_free(&b);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

static void test_log_file(void)
{
	char dir[] = "/tmp/cgiq-metrics-XXXXXX", path[256], rotated[256];
	struct front_access_log *l = NULL;
	struct front_access_entry e;
	struct stat st;
	char *s;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/access.log.1", dir);
	CU_ASSERT_FATAL(front_access_log_open(NULL, path, &l) == 0);
	CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);

	memset(&e, 0, sizeof(e));
	e.time_us = T0_US;
	e.status = 200;
	e.job_ms = -1;
	e.method = "GET";
	e.target = "/one";
	front_access_log_write(l, &e);
	/* buffered: nothing on disk before a flush */
	s = slurp(path);
	CU_ASSERT(s != NULL && *s == '\0');
	free(s);
	front_access_log_flush(l);
	s = slurp(path);
	CU_ASSERT(s && strstr(s, "\"GET /one\" 200") != NULL);
	free(s);

	/* rotation: rename, then reopen; the new line goes to a new file */
	e.target = "/two";
	front_access_log_write(l, &e);
	CU_ASSERT(rename(path, rotated) == 0);
	CU_ASSERT(front_access_log_reopen(l) == 0);
	e.target = "/three";
	front_access_log_write(l, &e);
	front_access_log_free(l);
	s = slurp(rotated);
	CU_ASSERT(s && strstr(s, "/one") && strstr(s, "/two") && !strstr(s, "/three"));
	free(s);
	s = slurp(path);
	CU_ASSERT(s && !strstr(s, "/two") && strstr(s, "/three"));
	free(s);

	/* an unwritable path is refused at open */
	CU_ASSERT(front_access_log_open(NULL, "/nonexistent-dir/x/access.log", &l) == -ENOENT);
	unlink(path);
	unlink(rotated);
	rmdir(dir);
}

static void test_histogram(void)
{
	struct job_histogram h;

	memset(&h, 0, sizeof(h));
	job_histogram_observe(&h, 5000);        /* exactly 5 ms: le="0.005" */
	job_histogram_observe(&h, 5001);        /* le="0.01" */
	job_histogram_observe(&h, -7);          /* a clock step: counted as 0 */
	job_histogram_observe(&h, 400000000);   /* 400 s: only +Inf */
	CU_ASSERT_EQUAL(h.bucket[0], 2);
	CU_ASSERT_EQUAL(h.bucket[1], 1);
	CU_ASSERT_EQUAL(h.bucket[JOB_HIST_BOUNDS], 1);
	CU_ASSERT_EQUAL(h.count, 4);
	CU_ASSERT_EQUAL(h.sum_us, 5000 + 5001 + 400000000);
	CU_ASSERT(job_hist_bounds_s[0] == 0.005 && job_hist_bounds_s[JOB_HIST_BOUNDS - 1] == 300);
}

/* Every sample line belongs to a family declared by # TYPE before it, and
 * every family has # HELP. */
static int well_formed(const char *text)
{
	char types[64][64];
	int ntypes = 0;
	const char *p = text;

	while (*p) {
		const char *nl = strchr(p, '\n');
		char line[512], name[64];
		size_t n;

		if (nl == NULL)
			return 0; /* 0.0.4: every line ends in \n */
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			return 0;
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			if (sscanf(line + 7, "%63s", types[ntypes]) != 1 || ntypes == 63)
				return 0;
			ntypes++;
			continue;
		}
		if (sscanf(line, "%63[a-z_]", name) != 1)
			return 0;
		int found = 0;
		for (int i = 0; i < ntypes && !found; i++) {
			size_t tl = strlen(types[i]);
			if (strncmp(name, types[i], tl) == 0 &&
			    (name[tl] == '\0' || !strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
			     !strcmp(name + tl, "_count")))
				found = 1;
		}
		if (!found)
			return 0;
	}
	return ntypes > 0;
}

static void test_render(void)
{
	struct job_metrics m;
	static struct front_counters fronts[FRONT_COUNT];
	struct buf b;

	memset(&m, 0, sizeof(m));
	m.finished[STORE_SUCCEEDED] = 3;
	m.finished[STORE_FAILED] = 2;
	m.finished[STORE_TIMED_OUT] = 1;
	m.running = 4;
	m.queued = 7;
	m.submitted = 13;
	m.processing_sent = 9;
	m.coalesced = 4;
	m.results_kept_bytes = 123456;
	m.spool_written_bytes = 1048576;
	job_histogram_observe(&m.duration, 3000);      /* 0.003 s */
	job_histogram_observe(&m.duration, 1500000);   /* 1.5 s */
	job_histogram_observe(&m.queue_wait, 20000);   /* 0.02 s */
	atomic_store(&fronts[FRONT_HTTP].responses[2], 5);
	atomic_store(&fronts[FRONT_HTTP].responses[5], 2);
	atomic_store(&fronts[FRONT_HTTP].refused[FRONT_REFUSED_QUEUE_FULL], 6);
	atomic_store(&fronts[FRONT_FASTCGI].refused[FRONT_REFUSED_TOO_LARGE], 1);
	atomic_store(&fronts[FRONT_HTTP].connections_open, 11);
	atomic_store(&fronts[FRONT_HTTP].connections_total, 40);

	buf_init(&b, 1 << 20);
	front_metrics_render(&b, &m, fronts);
	const char *t = b.data;
	CU_ASSERT_FATAL(t != NULL);
	CU_ASSERT(well_formed(t));
	CU_ASSERT(strstr(t, "# TYPE cgiq_jobs_finished_total counter\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_finished_total{state=\"succeeded\"} 3\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_finished_total{state=\"failed\"} 2\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_finished_total{state=\"timed_out\"} 1\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_finished_total{state=\"cancelled\"} 0\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_finished_total{state=\"interrupted\"} 0\n") != NULL);
	/* not final states */
	CU_ASSERT(strstr(t, "state=\"running\"") == NULL && strstr(t, "state=\"queued\"") == NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_jobs_running gauge\ncgiq_jobs_running 4\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_jobs_queued gauge\ncgiq_jobs_queued 7\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_jobs_submitted_total 13\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_job_duration_seconds histogram\n"
	                    "cgiq_job_duration_seconds_bucket{le=\"0.005\"} 1\n"
	                    "cgiq_job_duration_seconds_bucket{le=\"0.01\"} 1\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_job_duration_seconds_bucket{le=\"1\"} 1\n"
	                    "cgiq_job_duration_seconds_bucket{le=\"2.5\"} 2\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_job_duration_seconds_bucket{le=\"300\"} 2\n"
	                    "cgiq_job_duration_seconds_bucket{le=\"+Inf\"} 2\n"
	                    "cgiq_job_duration_seconds_sum 1.503000\n"
	                    "cgiq_job_duration_seconds_count 2\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_job_queue_wait_seconds_bucket{le=\"0.01\"} 0\n"
	                    "cgiq_job_queue_wait_seconds_bucket{le=\"0.025\"} 1\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_job_queue_wait_seconds_sum 0.020000\ncgiq_job_queue_wait_seconds_count 1\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_processing_sent_total counter\ncgiq_processing_sent_total 9\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_coalesced_total counter\ncgiq_coalesced_total 4\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_results_kept_bytes gauge\ncgiq_results_kept_bytes 123456\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_spool_written_bytes_total 1048576\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_responses_total{front=\"http\",code=\"2xx\"} 5\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_responses_total{front=\"http\",code=\"5xx\"} 2\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_responses_total{front=\"fastcgi\",code=\"2xx\"} 0\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_refusals_total{front=\"http\",reason=\"queue_full\"} 6\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_refusals_total{front=\"http\",reason=\"max_connections\"} 0\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_refusals_total{front=\"fastcgi\",reason=\"too_large\"} 1\n") != NULL);
	CU_ASSERT(strstr(t, "# TYPE cgiq_connections_open gauge\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_connections_open{front=\"http\"} 11\n") != NULL);
	CU_ASSERT(strstr(t, "\ncgiq_connections_total{front=\"http\"} 40\n") != NULL);
	/* every counter family ends in _total */
	for (const char *p = t; (p = strstr(p, "# TYPE ")) != NULL; p++) {
		char name[64], type[16];
		CU_ASSERT_FATAL(sscanf(p + 7, "%63s %15s", name, type) == 2);
		if (strcmp(type, "counter") == 0)
			CU_ASSERT(strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0);
		CU_ASSERT(strncmp(name, "cgiq_", 5) == 0);
	}
	buf_free(&b);

	/* without fronts: the engine's families only */
	buf_init(&b, 1 << 20);
	front_metrics_render(&b, &m, NULL);
	CU_ASSERT(well_formed(b.data));
	CU_ASSERT(strstr(b.data, "cgiq_responses_total") == NULL);
	buf_free(&b);
}

static void test_refusal_names(void)
{
	CU_ASSERT_EQUAL(front_refusal_of_status(400), FRONT_REFUSED_BAD_REQUEST);
	CU_ASSERT_EQUAL(front_refusal_of_status(408), FRONT_REFUSED_TIMEOUT);
	CU_ASSERT_EQUAL(front_refusal_of_status(414), FRONT_REFUSED_TOO_LARGE);
	CU_ASSERT_EQUAL(front_refusal_of_status(431), FRONT_REFUSED_TOO_LARGE);
	CU_ASSERT_EQUAL(front_refusal_of_status(505), FRONT_REFUSED_NOT_IMPLEMENTED);
	CU_ASSERT_EQUAL(front_refusal_of_status(403), FRONT_REFUSED_FORBIDDEN);
	CU_ASSERT_EQUAL(front_refusal_of_status(507), FRONT_REFUSED_OTHER);
	CU_ASSERT_STRING_EQUAL(front_refusal_name(FRONT_REFUSED_QUEUE_FULL), "queue_full");
	CU_ASSERT_STRING_EQUAL(front_refusal_name(FRONT_REFUSED_MAX_CONNECTIONS), "max_connections");
	CU_ASSERT_STRING_EQUAL(front_refusal_name((enum front_refusal)99), "other");
}

/* Answers that never reach the engine (NULL engine is not touched). */
static int admin_status(const char *method, const char *path, const char *query, char *body, size_t size)
{
	struct front_admin_response ar;
	int status;

	front_admin_handle(NULL, NULL, method, path, query, &ar);
	status = ar.status;
	if (body)
		snprintf(body, size, "%s", ar.body.data ? ar.body.data : "");
	if (status == 405)
		CU_ASSERT(ar.allow && strcmp(ar.allow, "GET, HEAD") == 0);
	buf_free(&ar.body);
	return status;
}

static void test_admin_refusals(void)
{
	char body[256];

	CU_ASSERT_EQUAL(admin_status("GET", "/", "", NULL, 0), 404);
	CU_ASSERT_EQUAL(admin_status("GET", "/metrics/", "", NULL, 0), 404);
	CU_ASSERT_EQUAL(admin_status("GET", "/_cgiq/jobs", "", NULL, 0), 404);
	CU_ASSERT_EQUAL(admin_status("POST", "/nope", "", NULL, 0), 404);
	CU_ASSERT_EQUAL(admin_status("POST", "/metrics", "", body, sizeof(body)), 405);
	CU_ASSERT_STRING_EQUAL(body, "405 Method Not Allowed\n");
	CU_ASSERT_EQUAL(admin_status("DELETE", "/jobs", "", NULL, 0), 405);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "state=bogus", body, sizeof(body)), 400);
	CU_ASSERT(strncmp(body, "400 Bad Request: state is one of", 32) == 0);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "limit=0", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "limit=1001", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "limit=1x", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "limit=", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "state=failed&state=failed", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "state", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "sort=id", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "state=%66ailed", NULL, 0), 400);
	CU_ASSERT_EQUAL(admin_status("GET", "/jobs", "limit=99999999999999999999999", NULL, 0), 400);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("observability", NULL, NULL);
	if (s == NULL) {
		CU_cleanup_registry();
		return 1;
	}
	CU_add_test(s, "access-log escaping", test_escape);
	CU_add_test(s, "access-log line", test_format);
	CU_add_test(s, "access-log file, flush, reopen", test_log_file);
	CU_add_test(s, "histogram buckets", test_histogram);
	CU_add_test(s, "metrics text", test_render);
	CU_add_test(s, "refusal reasons", test_refusal_names);
	CU_add_test(s, "admin pages: 404, 405, 400", test_admin_refusals);

	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return (int)failed;
}
