/*
 * Integration tests of observability: the access log, the admin listener
 * (/metrics, /health, /jobs) and what the public listener refuses to show.
 * The tests of the main suite run in order on one daemon: the counters they
 * check add up what the tests before them did.
 */
#include <CUnit/Basic.h>
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;
static int admin_port;
static char access_path[512];
static char admin_addr[64];

/* What the tests before have done, for exact counter values. */
static char hello_id[64], slow_id[64], fail_id[64];
static int slow_102s = -1;

static const char *main_args[16];

static int suite_init(void)
{
	int n = 0;

	admin_port = t_free_port();
	if (admin_port <= 0)
		return -1;
	snprintf(admin_addr, sizeof(admin_addr), "127.0.0.1:%d", admin_port);
	/* The daemon runs in its temp dir: a relative path lands there. */
	main_args[n++] = "--access-log";
	main_args[n++] = "access.log";
	main_args[n++] = "--admin-listen";
	main_args[n++] = admin_addr;
	main_args[n++] = "--processing-after";
	main_args[n++] = "200ms";
	main_args[n++] = "--processing-interval";
	main_args[n++] = "200ms";
	main_args[n] = NULL;
	if (td_start(&D, NULL, main_args) < 0)
		return -1;
	snprintf(access_path, sizeof(access_path), "%s/access.log", D.dir);
	return 0;
}

static int suite_clean(void)
{
	int st = td_stop(&D);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	td_cleanup(&D);
	return st == 0 ? 0 : -1;
}

/* One request on a new connection; the response is read whole. */
static int request(int port, const char *raw, struct tresp *r, int timeout_ms)
{
	int fd = t_connect(port);

	if (fd < 0)
		return -1;
	if (t_send_str(fd, raw) < 0 || t_read_response(fd, r, strncmp(raw, "HEAD ", 5) == 0, timeout_ms) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int admin_get(const char *target, struct tresp *r)
{
	char raw[512];
	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n", target);
	return request(admin_port, raw, r, 5000);
}

/* The access-log line containing needle (copied to out), waited for up to
 * 5 s: lines are flushed every 500 ms. */
struct line_wait {
	const char *needle;
	char *out;
	size_t size;
};

static int line_seen(void *ud)
{
	struct line_wait *w = ud;
	char *log = t_slurp(access_path), *p, *start, *end;
	int found = 0;

	if (log && (p = strstr(log, w->needle)) != NULL) {
		start = p;
		while (start > log && start[-1] != '\n')
			start--;
		end = strchr(p, '\n');
		if (end) {
			size_t n = (size_t)(end - start) + 1;
			if (n >= w->size)
				n = w->size - 1;
			memcpy(w->out, start, n);
			w->out[n] = '\0';
			found = 1;
		}
	}
	free(log);
	return found;
}

static int wait_line(const char *needle, char *out, size_t size)
{
	struct line_wait w = {needle, out, size};
	out[0] = '\0';
	return t_wait_for(line_seen, &w, 5000);
}

/* "[dd/Mon/yyyy:hh:mm:ss +0000] " at p; returns the length or 0. */
static size_t clf_date_len(const char *p)
{
	static const char shape[] = "[99/Aaa/9999:99:99:99 +0000] ";
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		char c = shape[i];
		if (c == '9' ? !isdigit((unsigned char)p[i]) : c == 'A' ? !isupper((unsigned char)p[i])
		               : c == 'a' ? !islower((unsigned char)p[i]) : p[i] != c)
			return 0;
	}
	return sizeof(shape) - 1;
}

/* Splits "... JOB 102S JOBMS REQMS\n" at the end of line: checks the fixed
 * part before it exactly, returns the two durations (-1 for "-"). */
static int check_line(const char *line, const char *before_date, const char *after_date, long *job_ms,
                      long *req_ms)
{
	size_t n = strlen(before_date), d, m;
	const char *p;
	char *end;

	if (strncmp(line, before_date, n) != 0)
		return 0;
	d = clf_date_len(line + n);
	if (d == 0)
		return 0;
	p = line + n + d;
	m = strlen(after_date);
	if (strncmp(p, after_date, m) != 0)
		return 0;
	p += m;
	if (*p == '-') {
		*job_ms = -1;
		p++;
	} else {
		*job_ms = strtol(p, &end, 10);
		if (end == p)
			return 0;
		p = end;
	}
	if (*p++ != ' ')
		return 0;
	*req_ms = strtol(p, &end, 10);
	return end != p && strcmp(end, "\n") == 0;
}

/* ------------------------------------------------------------------ */

static void test_access_log_line(void)
{
	/* A referer, and an agent with a quote, a backslash and UTF-8 bytes:
	 * escaped as nginx does. */
	static const char req[] = "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nReferer: http://ref.example/\r\n"
	                          "User-Agent: t\"q\\\xc3\xa9\r\n\r\n";
	struct tresp r;
	char line[2048], after[512];
	long job_ms, req_ms;
	int64_t since = t_wall_us();

	CU_ASSERT_FATAL(request(D.port, req, &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 14);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&D, since, hello_id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(wait_line("\"GET /hello?x=1 HTTP/1.1\"", line, sizeof(line)));
	snprintf(after, sizeof(after),
	         "\"GET /hello?x=1 HTTP/1.1\" 200 14 \"http://ref.example/\" \"t\\x22q\\x5C\\xC3\\xA9\" %s 0 ", hello_id);
	CU_ASSERT(check_line(line, "127.0.0.1 - - ", after, &job_ms, &req_ms));
	CU_ASSERT(job_ms >= 0 && job_ms < 5000);
	CU_ASSERT(req_ms >= job_ms && req_ms < 5000);
	if (!check_line(line, "127.0.0.1 - - ", after, &job_ms, &req_ms))
		fprintf(stderr, "\nline: %s\nwant: 127.0.0.1 - - [date] %s...\n", line, after);
}

static void test_access_log_102s(void)
{
	char req[128];
	struct tresp r;
	char line[2048], after[512];
	long job_ms, req_ms;
	int64_t since = t_wall_us();

	/* Host with the port cgiq listens on: a direct client, which gets 102s */
	snprintf(req, sizeof(req), "GET /slow?1 HTTP/1.1\r\nHost: t:%d\r\nUser-Agent: curl/7.88.1\r\n\r\n", D.port);

	CU_ASSERT_FATAL(request(D.port, req, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.interim_count >= 2);
	slow_102s = r.interim_count;
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&D, since, slow_id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(wait_line("\"GET /slow?1 HTTP/1.1\"", line, sizeof(line)));
	snprintf(after, sizeof(after), "\"GET /slow?1 HTTP/1.1\" 200 6 \"-\" \"curl/7.88.1\" %s %d ", slow_id,
	         slow_102s);
	CU_ASSERT(check_line(line, "127.0.0.1 - - ", after, &job_ms, &req_ms));
	/* the program sleeps 1 s */
	CU_ASSERT(job_ms >= 900 && job_ms < 5000);
	CU_ASSERT(req_ms >= job_ms && req_ms < 6000);
}

static void test_metrics_after_jobs(void)
{
	static const char req[] = "GET /fail HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/7.88.1\r\n\r\n";
	struct tresp r;
	char ct[128], want[160];
	int64_t since = t_wall_us();

	CU_ASSERT_FATAL(request(D.port, req, &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&D, since, fail_id, 5000)[0] != '\0');

	CU_ASSERT_FATAL(admin_get("/metrics", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", ct, sizeof(ct)), "text/plain; version=0.0.4; charset=utf-8");
	const char *m = r.body;
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_jobs_finished_total counter\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_jobs_finished_total{state=\"succeeded\"} 2\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_jobs_finished_total{state=\"failed\"} 1\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_jobs_finished_total{state=\"timed_out\"} 0\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_jobs_submitted_total 3\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_jobs_running 0\n") != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_jobs_queued gauge\ncgiq_jobs_queued 0\n") != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_job_duration_seconds histogram\n") != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_job_queue_wait_seconds histogram\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_job_duration_seconds_bucket{le=\"+Inf\"} 3\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_job_duration_seconds_count 3\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_job_queue_wait_seconds_count 3\n") != NULL);
	/* the 1 s job is in no bucket below 1 s, the other two are */
	CU_ASSERT(strstr(m, "\ncgiq_job_duration_seconds_bucket{le=\"0.5\"} 2\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_job_duration_seconds_bucket{le=\"2.5\"} 3\n") != NULL);
	/* buckets are cumulative: never decreasing */
	{
		unsigned long long prev = 0, v;
		int buckets = 0;
		for (const char *p = m; (p = strstr(p, "cgiq_job_duration_seconds_bucket{le=\"")) != NULL; p++) {
			const char *sp = strchr(p, ' ');
			CU_ASSERT_FATAL(sp != NULL);
			v = strtoull(sp + 1, NULL, 10);
			CU_ASSERT(v >= prev);
			prev = v;
			buckets++;
		}
		CU_ASSERT_EQUAL(buckets, 15);
		CU_ASSERT_EQUAL(prev, 3);
	}
	snprintf(want, sizeof(want), "# TYPE cgiq_processing_sent_total counter\ncgiq_processing_sent_total %d\n",
	         slow_102s);
	CU_ASSERT(strstr(m, want) != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_responses_total{front=\"http\",code=\"2xx\"} 2\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_responses_total{front=\"http\",code=\"5xx\"} 1\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_responses_total{front=\"http\",code=\"4xx\"} 0\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_refusals_total{front=\"http\",reason=\"queue_full\"} 0\n") != NULL);
	CU_ASSERT(strstr(m, "\ncgiq_connections_total{front=\"http\"} 3\n") != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_connections_open gauge\n") != NULL);
	CU_ASSERT(strstr(m, "# TYPE cgiq_spool_written_bytes_total counter\n") != NULL);
	t_resp_free(&r);
}

static void test_health(void)
{
	struct tresp r;
	char ct[64];

	CU_ASSERT_FATAL(admin_get("/health", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", ct, sizeof(ct)), "application/json");
	CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"ok\",\"running\":0,\"queued\":0}\n");
	t_resp_free(&r);
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

struct jobs_wait {
	const char *target;
	int lines;
	struct tresp r;
};

/* Rows are written a few ms after the fact: ask until they are all there. */
static int jobs_listed(void *ud)
{
	struct jobs_wait *w = ud;
	t_resp_free(&w->r);
	memset(&w->r, 0, sizeof(w->r));
	return admin_get(w->target, &w->r) == 0 && w->r.status == 200 && count_lines(w->r.body) == w->lines;
}

static void test_jobs_list(void)
{
	struct jobs_wait w = {.target = "/jobs?state=succeeded", .lines = 2};
	char needle[96], ct[64];

	CU_ASSERT_FATAL(t_wait_for(jobs_listed, &w, 5000));
	CU_ASSERT_STRING_EQUAL(t_header(&w.r, "Content-Type", ct, sizeof(ct)), "application/x-ndjson");
	/* newest first, one object per line */
	snprintf(needle, sizeof(needle), "{\"id\":\"%s\",\"state\":\"succeeded\",", slow_id);
	CU_ASSERT(strncmp(w.r.body, needle, strlen(needle)) == 0);
	snprintf(needle, sizeof(needle), "\n{\"id\":\"%s\",\"state\":\"succeeded\",", hello_id);
	CU_ASSERT(strstr(w.r.body, needle) != NULL);
	CU_ASSERT(strstr(w.r.body, fail_id) == NULL);
	CU_ASSERT(strstr(w.r.body, "\"uri\":\"/hello?x=1\"") != NULL);
	t_resp_free(&w.r);

	struct jobs_wait f = {.target = "/jobs?state=failed&limit=1", .lines = 1};
	CU_ASSERT_FATAL(t_wait_for(jobs_listed, &f, 5000));
	snprintf(needle, sizeof(needle), "{\"id\":\"%s\",\"state\":\"failed\",", fail_id);
	CU_ASSERT(strncmp(f.r.body, needle, strlen(needle)) == 0);
	CU_ASSERT(strstr(f.r.body, "\"status\":502") != NULL);
	t_resp_free(&f.r);

	struct jobs_wait all = {.target = "/jobs?limit=2", .lines = 2};
	CU_ASSERT(t_wait_for(jobs_listed, &all, 5000));
	t_resp_free(&all.r);
}

static void test_public_listener_refuses_admin_paths(void)
{
	static const char *const paths[] = {"/metrics", "/jobs?state=succeeded", "/health"};
	struct tresp r;
	char raw[256], line[1024], needle[128];

	for (size_t i = 0; i < 3; i++) {
		snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		CU_ASSERT_FATAL(request(D.port, raw, &r, 5000) == 0);
		CU_ASSERT_EQUAL(r.status, 404);
		CU_ASSERT(r.body && strstr(r.body, "succeeded") == NULL);
		t_resp_free(&r);
		/* logged like any request, with no job */
		snprintf(needle, sizeof(needle), "\"GET %s HTTP/1.1\" 404 14 \"-\" \"-\" - 0 - ", paths[i]);
		CU_ASSERT(wait_line(needle, line, sizeof(line)));
	}
	CU_ASSERT_FATAL(admin_get("/metrics", &r) == 0);
	CU_ASSERT(strstr(r.body, "\ncgiq_refusals_total{front=\"http\",reason=\"not_found\"} 3\n") != NULL);
	CU_ASSERT(strstr(r.body, "\ncgiq_responses_total{front=\"http\",code=\"4xx\"} 3\n") != NULL);
	t_resp_free(&r);
}

static void test_admin_refusals(void)
{
	struct tresp r;
	char allow[64], line[256];

	CU_ASSERT_FATAL(admin_get("/nope", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	CU_ASSERT_FATAL(admin_get("/jobs?limit=0", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_STRING_EQUAL(r.body, "400 Bad Request: limit is a number from 1 to 1000\n");
	t_resp_free(&r);
	/* a hello program on the public side is not reachable from the admin side */
	CU_ASSERT_FATAL(admin_get("/hello", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	CU_ASSERT_FATAL(request(admin_port, "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", &r,
	                        5000) == 0);
	CU_ASSERT_EQUAL(r.status, 405);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
	t_resp_free(&r);
	/* admin pages are not in the access log: once a later public request's
	 * line is there, the admin ones would be too */
	CU_ASSERT_FATAL(request(D.port, "GET /hello?after-admin HTTP/1.1\r\nHost: t\r\n\r\n", &r, 5000) == 0);
	t_resp_free(&r);
	CU_ASSERT(wait_line("/hello?after-admin", line, sizeof(line)));
	char *log = t_slurp(access_path);
	CU_ASSERT(log && strstr(log, "/nope") == NULL && strstr(log, "/jobs?limit=0") == NULL &&
	          strstr(log, "POST /metrics") == NULL);
	free(log);
}

static void test_admin_refuses_public_address(void)
{
	char cmd[1024], out[1024];
	int port = t_free_port(), st;

	snprintf(cmd, sizeof(cmd),
	         "%s --cgi-root %s --db /nonexistent/x.db --listen 127.0.0.1:%d --admin-listen 127.0.0.1:%d 2>&1",
	         CGIQ_BIN, D.cgi_root, port, port);
	st = t_run(cmd, out, sizeof(out));
	CU_ASSERT_EQUAL(st, 2);
	CU_ASSERT(strstr(out, "the same address as --listen") != NULL);

	snprintf(cmd, sizeof(cmd),
	         "%s --cgi-root %s --db /nonexistent/x.db --listen 127.0.0.1:%d --admin-listen 0.0.0.0:%d 2>&1",
	         CGIQ_BIN, D.cgi_root, port, port);
	st = t_run(cmd, out, sizeof(out));
	CU_ASSERT_EQUAL(st, 2);
	CU_ASSERT(strstr(out, "the same address as --listen") != NULL);

	snprintf(cmd, sizeof(cmd),
	         "%s --cgi-root %s --db /nonexistent/x.db --listen 127.0.0.1:%d --admin-listen 0.0.0.0:%d 2>&1",
	         CGIQ_BIN, D.cgi_root, port, port + 1);
	st = t_run(cmd, out, sizeof(out));
	CU_ASSERT_EQUAL(st, 2);
	CU_ASSERT(strstr(out, "not a loopback or unix: address") != NULL);
	CU_ASSERT(strstr(out, "--admin-allow-public") != NULL);
}

/* ------------------------------------------------------------------ */
/* other daemons */

static void test_access_log_off(void)
{
	struct tdaemon e;
	char dir[] = "/tmp/cgiq-observe-XXXXXX", path[128];
	static const char *args[8];
	struct tresp r;
	struct stat st;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/access.log", dir);
	/* the last one wins: off */
	args[0] = "--access-log";
	args[1] = path;
	args[2] = "--access-log";
	args[3] = "off";
	args[4] = NULL;
	CU_ASSERT_FATAL(td_start(&e, D.cgi_root, args) == 0);
	CU_ASSERT(request(e.port, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT_EQUAL(td_stop(&e), 0);
	CU_ASSERT(stat(path, &st) < 0);
	td_cleanup(&e);
	rmdir(dir);
}

static void test_access_log_flushed_at_stop(void)
{
	struct tdaemon e;
	static const char *const args[] = {"--access-log", "access.log", NULL};
	struct tresp r;
	char path[512], *log;

	CU_ASSERT_FATAL(td_start(&e, D.cgi_root, args) == 0);
	snprintf(path, sizeof(path), "%s/access.log", e.dir);
	CU_ASSERT(request(e.port, "GET /hello?last HTTP/1.1\r\nHost: t\r\n\r\n", &r, 5000) == 0);
	t_resp_free(&r);
	/* SIGTERM right away, well within the 500 ms flush period */
	CU_ASSERT_EQUAL(td_stop(&e), 0);
	log = t_slurp(path);
	CU_ASSERT(log && strstr(log, "\"GET /hello?last HTTP/1.1\" 200 14 \"-\" \"-\" ") != NULL);
	free(log);
	td_cleanup(&e);
}

/* --access-log -: the lines go to standard output, the log to standard error. */
static void test_access_log_stdout(void)
{
	char dir[] = "/tmp/cgiq-obs-XXXXXX", out[300], err[300], db[300], spool[300], cmd[400];
	struct tresp r;
	char *e, *o, *p;
	int status = -1, port = 0;
	pid_t pid;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(out, sizeof(out), "%s/stdout", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	snprintf(db, sizeof(db), "%s/cgiq.db", dir);
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		if (freopen(out, "w", stdout) == NULL || freopen(err, "w", stderr) == NULL)
			_exit(127);
		execl(CGIQ_BIN, CGIQ_BIN, "--allow-root", "--listen", "127.0.0.1:0", "--cgi-root", D.cgi_root,
		      "--db", db, "--spool", spool, "--access-log", "-", (char *)NULL);
		_exit(127);
	}
	CU_ASSERT(t_wait_file_has(err, "listening on 127.0.0.1:", 10000));
	e = t_slurp(err);
	if (e && (p = strstr(e, "listening on 127.0.0.1:")) != NULL)
		port = atoi(p + strlen("listening on 127.0.0.1:"));
	free(e);
	CU_ASSERT(port > 0);
	if (port > 0) {
		CU_ASSERT(request(port, "GET /hello?stdout HTTP/1.1\r\nHost: t\r\n\r\n", &r, 5000) == 0);
		t_resp_free(&r);
	}
	kill(pid, SIGTERM);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	o = t_slurp(out);
	CU_ASSERT(o && strncmp(o, "127.0.0.1 - - [", 15) == 0);
	CU_ASSERT(o && strstr(o, "\"GET /hello?stdout HTTP/1.1\" 200 14 \"-\" \"-\" ") != NULL);
	free(o);
	e = t_slurp(err);
	CU_ASSERT(e && strstr(e, "\" 200 14 \"-\" \"-\"") == NULL); /* no access-log line in the error log */
	free(e);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
}

static void test_client_gone_is_499(void)
{
	char line[2048], after[512], id[64];
	long job_ms, req_ms;
	int64_t since = t_wall_us();
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /slow?5 HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&D, since, id, 5000)[0] != '\0');
	close(fd);
	CU_ASSERT_FATAL(wait_line("\"GET /slow?5 HTTP/1.1\"", line, sizeof(line)));
	/* no 102 (no User-Agent), the job was cancelled before it ended: no job ms */
	snprintf(after, sizeof(after), "\"GET /slow?5 HTTP/1.1\" 499 0 \"-\" \"-\" %s 0 ", id);
	CU_ASSERT(check_line(line, "127.0.0.1 - - ", after, &job_ms, &req_ms));
	CU_ASSERT_EQUAL(job_ms, -1);
	CU_ASSERT(t_wait_job_state(&D, id, "cancelled", 5000));
}

static void test_spool_bytes(void)
{
	struct tresp r;

	/* Nothing spooled so far: every output fitted in memory. */
	CU_ASSERT_FATAL(admin_get("/metrics", &r) == 0);
	CU_ASSERT(strstr(r.body, "\ncgiq_spool_written_bytes_total 0\n") != NULL);
	t_resp_free(&r);
	/* 1 MB: beyond the 256 KiB kept in memory, so all of it goes to the spool */
	CU_ASSERT_FATAL(request(D.port, "GET /big-output?1000000 HTTP/1.1\r\nHost: t\r\n\r\n", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 1000000);
	t_resp_free(&r);
	CU_ASSERT_FATAL(admin_get("/metrics", &r) == 0);
	CU_ASSERT(strstr(r.body, "\ncgiq_spool_written_bytes_total 1000000\n") != NULL);
	t_resp_free(&r);
}

/* ---- a minimal FastCGI client: one request, the answer's stdout ---- */

static size_t fc_record(unsigned char *out, int type, const void *data, size_t len)
{
	unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0};
	memcpy(out, h, 8);
	if (len)
		memcpy(out + 8, data, len);
	return 8 + len;
}

static size_t fc_pair(unsigned char *out, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	out[0] = (unsigned char)n; /* all names and values here are below 128 bytes */
	out[1] = (unsigned char)v;
	memcpy(out + 2, name, n);
	memcpy(out + 2 + n, value, v);
	return 2 + n + v;
}

/* Sends one responder request with params (NULL-terminated name, value
 * list) and returns 1 once the end-request record arrived, its stdout in out. */
static int fc_call(const char *sock, const char *const *params, char *out, size_t out_size)
{
	static unsigned char req[8192], p[4096], in[65536];
	static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = 0, plen = 0, have = 0, used = 0;
	uint64_t end = t_now_ms() + 10000;
	int fd, done = 0;

	for (size_t i = 0; params[i]; i += 2)
		plen += fc_pair(p + plen, params[i], params[i + 1]);
	n += fc_record(req + n, 1, begin, 8);
	n += fc_record(req + n, 4, p, plen);
	n += fc_record(req + n, 4, NULL, 0);
	n += fc_record(req + n, 5, NULL, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || t_send(fd, req, n) < 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	out[0] = '\0';
	while (!done && t_now_ms() < end) {
		struct pollfd pf = {fd, POLLIN, 0};
		if (poll(&pf, 1, (int)(end - t_now_ms())) <= 0)
			break;
		ssize_t r = recv(fd, in + have, sizeof(in) - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		for (;;) {
			size_t clen, tot;
			if (have - used < 8)
				break;
			clen = ((size_t)in[used + 4] << 8) | in[used + 5];
			tot = 8 + clen + in[used + 6];
			if (have - used < tot)
				break;
			if (in[used + 1] == 6 && strlen(out) + clen < out_size)
				strncat(out, (const char *)in + used + 8, clen);
			if (in[used + 1] == 3)
				done = 1;
			used += tot;
		}
	}
	close(fd);
	return done;
}

static void test_fastcgi_access_log_and_counters(void)
{
	struct tdaemon e;
	char dir[] = "/tmp/cgiq-observe-XXXXXX", sock[128], fastcgi[140], script[600], path[600];
	char addr[64], out[4096], id[64], line[2048], after[512], *log = NULL;
	const char *args[12];
	struct tresp r;
	long job_ms, req_ms;
	int port = t_free_port();

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/cgiq.sock", dir);
	snprintf(fastcgi, sizeof(fastcgi), "unix:%s", sock);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	args[0] = "--fastcgi";
	args[1] = fastcgi;
	args[2] = "--fastcgi-threads";
	args[3] = "2";
	args[4] = "--access-log";
	args[5] = "access.log";
	args[6] = "--admin-listen";
	args[7] = addr;
	args[8] = NULL;
	CU_ASSERT_FATAL(td_start(&e, D.cgi_root, args) == 0);
	snprintf(path, sizeof(path), "%s/access.log", e.dir);
	for (uint64_t end = t_now_ms() + 10000; !td_log_has(&e, "fastcgi on ") && t_now_ms() < end;)
		usleep(20000);
	snprintf(script, sizeof(script), "%s/hello", D.cgi_root);
	const char *const params[] = {
		"REQUEST_METHOD", "GET", "SCRIPT_FILENAME", script, "REQUEST_URI", "/hello?fc",
		"QUERY_STRING", "fc", "SERVER_PROTOCOL", "HTTP/1.1", "REMOTE_ADDR", "203.0.113.9",
		"REMOTE_PORT", "5555", "REMOTE_USER", "alice", "HTTP_USER_AGENT", "fc\"agent",
		"HTTP_REFERER", "http://ref.example/x", NULL,
	};
	int64_t since = t_wall_us();
	CU_ASSERT_FATAL(fc_call(sock, params, out, sizeof(out)));
	CU_ASSERT(strstr(out, "\r\n\r\nHello, world!\n") != NULL);
	CU_ASSERT_FATAL(t_wait_new_job(&e, since, id, 5000)[0] != '\0');

	/* the line is flushed within 500 ms */
	for (uint64_t end = t_now_ms() + 5000; t_now_ms() < end; usleep(50000)) {
		free(log);
		log = t_slurp(path);
		if (log && strstr(log, "/hello?fc"))
			break;
	}
	CU_ASSERT_FATAL(log != NULL && strchr(log, '\n') != NULL);
	snprintf(line, sizeof(line), "%.*s", (int)(strchr(log, '\n') - log + 1), log);
	snprintf(after, sizeof(after),
	         "\"GET /hello?fc HTTP/1.1\" 200 14 \"http://ref.example/x\" \"fc\\x22agent\" %s 0 ", id);
	CU_ASSERT(check_line(line, "203.0.113.9 - alice ", after, &job_ms, &req_ms));
	if (!check_line(line, "203.0.113.9 - alice ", after, &job_ms, &req_ms))
		fprintf(stderr, "\nline: %s\nwant: 203.0.113.9 - alice [date] %s...\n", line, after);
	CU_ASSERT(job_ms >= 0 && req_ms >= job_ms && req_ms < 5000);
	free(log);

	CU_ASSERT_FATAL(request(port, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.body, "\ncgiq_responses_total{front=\"fastcgi\",code=\"2xx\"} 1\n") != NULL);
	CU_ASSERT(strstr(r.body, "\ncgiq_responses_total{front=\"http\",code=\"2xx\"} 0\n") != NULL);
	CU_ASSERT(strstr(r.body, "\ncgiq_connections_total{front=\"fastcgi\"} 1\n") != NULL);
	CU_ASSERT(strstr(r.body, "\ncgiq_jobs_finished_total{state=\"succeeded\"} 1\n") != NULL);
	t_resp_free(&r);
	CU_ASSERT_EQUAL(td_stop(&e), 0);
	CU_ASSERT(td_log_has(&e, "fastcgi conn 1 203.0.113.9 \"GET /hello?fc\" 200"));
	td_cleanup(&e);
	unlink(sock);
	rmdir(dir);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("observe", suite_init, suite_clean);
	CU_add_test(s, "access-log line", test_access_log_line);
	CU_add_test(s, "access-log 102s and job duration", test_access_log_102s);
	CU_add_test(s, "metrics after jobs", test_metrics_after_jobs);
	CU_add_test(s, "health", test_health);
	CU_add_test(s, "jobs list", test_jobs_list);
	CU_add_test(s, "public listener: no admin paths", test_public_listener_refuses_admin_paths);
	CU_add_test(s, "admin: 404, 400, 405", test_admin_refusals);
	CU_add_test(s, "admin refuses a public address", test_admin_refuses_public_address);
	/* their own daemons, on the first one's program directory */
	CU_add_test(s, "access log off", test_access_log_off);
	CU_add_test(s, "access log flushed at stop", test_access_log_flushed_at_stop);
	CU_add_test(s, "--access-log -: standard output", test_access_log_stdout);
	CU_add_test(s, "FastCGI: access log and counters", test_fastcgi_access_log_and_counters);
	CU_add_test(s, "client gone: 499", test_client_gone_is_499);
	CU_add_test(s, "spool bytes", test_spool_bytes);

	return t_cunit_run();
}
