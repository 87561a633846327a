/*
 * Integration tests of the HTTP front: the real daemon on a random loopback
 * port, driven with raw sockets (exact bytes) and curl.
 */
#include <CUnit/Basic.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;

static const char *const MAIN_ARGS[] = {
	"--processing-after", "200ms", "--processing-interval", "300ms",
	"--job-timeout", "3s", "--kill-grace", "500ms",
	"--header-timeout", "1s", "--body-timeout", "1s",
	"--max-header-bytes", "8k", "--max-uri-bytes", "1k", "--max-body-bytes", "16M",
	"--max-output-bytes", "64M",
	NULL,
};

static int suite_init(void) { return td_start(&D, NULL, MAIN_ARGS); }

static int suite_clean(void)
{
	int st = td_stop(&D);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	td_cleanup(&D);
	return st == 0 ? 0 : -1;
}

/* The newest job id before the last request was sent. */
/* Wall clock (us) just before the last request was sent: its job is the
 * newest row created since. */
static int64_t sent_us;

/* Sends req on a new connection and reads one response. Returns the fd (open). */
static int roundtrip(const char *req, size_t req_len, struct tresp *r, int is_head, int timeout_ms)
{
	sent_us = t_wall_us();
	int fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, req, req_len) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, r, is_head, timeout_ms) == 0);
	return fd;
}

/* The job the last request made, and waiting for its state (see support.h). */
static const char *last_id(char *out, size_t n)
{
	char id[64];
	t_wait_new_job(&D, sent_us, id, 5000);
	snprintf(out, n, "%s", id);
	return out;
}

static int wait_state(const char *id, const char *want) { return t_wait_job_state(&D, id, want, 5000); }

/* ------------------------------------------------------------------ */

static void test_sample_pdf_reference_case(void)
{
	/* The Host names the port cgiq listens on, as a client's does (one that
	 * names another port came through a proxy or a port forward: no 102s). */
	char req[256];
	struct tresp r;
	char v[128], id[64], col[64];
	int fd;

	snprintf(req, sizeof(req), "GET /sample.pdf?seconds=1 HTTP/1.1\r\nHost: www.example.re:%d\r\n"
	         "User-Agent: curl/7.88.1\r\n\r\n", D.port);
	fd = roundtrip(req, strlen(req), &r, 0, 10000);

	CU_ASSERT(r.interim_count >= 2);
	for (int i = 0; i < r.interim_count; i++) {
		CU_ASSERT_EQUAL(r.interim[i], 102);
		CU_ASSERT_STRING_EQUAL(r.interim_raw[i], "HTTP/1.1 102 Processing\r\n\r\n");
	}
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/pdf");
	CU_ASSERT(t_header(&r, "Content-Length", v, sizeof(v)) != NULL);
	CU_ASSERT_EQUAL(strtoull(v, NULL, 10), r.body_len);
	CU_ASSERT(r.body_len > 5000 && r.body_len < 20000);
	CU_ASSERT(memcmp(r.body, "%PDF-1.", 7) == 0);
	CU_ASSERT(t_header(&r, "Date", v, sizeof(v)) != NULL);
	CU_ASSERT(strncmp(t_header(&r, "Server", v, sizeof(v)) ? v : "", "cgiq/", 5) == 0);
	/* Unsolicited 102s: the connection is closed after the answer. */
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Connection", v, sizeof(v)) ? v : "", "close");
	CU_ASSERT(t_wait_closed(fd, 3000));
	close(fd);

	CU_ASSERT(t_pdfinfo_ok(D.dir, "sample.pdf", r.body, r.body_len)); /* pdfinfo accepts it */

	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "http_status", col, sizeof(col)), "200");
	snprintf(v, sizeof(v), "%zu", r.body_len);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "bytes_out", col, sizeof(col)), v);
	snprintf(v, sizeof(v), "%d", r.interim_count);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "processing_sent", col, sizeof(col)), v);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "exit_code", col, sizeof(col)), "0");
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "method", col, sizeof(col)), "GET");
	t_resp_free(&r);
}

static void test_sample_pdf_with_curl(void)
{
	char cmd[1024], out[8192], path[400];
	snprintf(path, sizeof(path), "%s/curl.pdf", D.dir);
	snprintf(cmd, sizeof(cmd),
	         "curl -sv -o '%s' 'http://127.0.0.1:%d/sample.pdf?seconds=1' 2>&1 | grep '^< HTTP'; "
	         "pdfinfo '%s' >/dev/null 2>&1 && echo PDF-OK; stat -c %%s '%s'",
	         path, D.port, path, path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(strstr(out, "< HTTP/1.1 102 Processing\r\n< HTTP/1.1 102 Processing\r\n") != NULL);
	CU_ASSERT(strstr(out, "< HTTP/1.1 200 OK") != NULL);
	CU_ASSERT(strstr(out, "PDF-OK") != NULL);
}

static void test_http10_gets_no_102(void)
{
	static const char req[] = "GET /sample.pdf?seconds=1 HTTP/1.0\r\nUser-Agent: curl/8\r\n\r\n";
	struct tresp r;
	char id[64], col[32];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 10000);

	CU_ASSERT_EQUAL(r.interim_count, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
	close(fd);
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "processing_sent", col, sizeof(col)), "0");
	t_resp_free(&r);
}

static void test_auto_leaves_out_python_requests(void)
{
	static const char req[] = "GET /sample.pdf?seconds=1 HTTP/1.1\r\nHost: x\r\n"
	                          "User-Agent: python-requests/2.31.0\r\n\r\n";
	struct tresp r;
	char v[64];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 10000);

	CU_ASSERT_EQUAL(r.interim_count, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	/* No 102 was sent: the connection stays usable. */
	CU_ASSERT(t_header(&r, "Connection", v, sizeof(v)) == NULL);
	t_resp_free(&r);
	static const char again[] = "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: python-requests/2.31.0\r\n\r\n";
	CU_ASSERT(t_send(fd, again, sizeof(again) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
	close(fd);
}

static void test_no_user_agent_gets_no_102(void)
{
	static const char req[] = "GET /sample.pdf?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 10000);
	CU_ASSERT_EQUAL(r.interim_count, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	close(fd);
	t_resp_free(&r);
}

static void test_prefer_processing_keeps_connection(void)
{
	static const char req[] = "GET /sample.pdf?seconds=1 HTTP/1.1\r\nHost: x\r\n"
	                          "User-Agent: python-requests/2.31.0\r\nPrefer: processing\r\n\r\n";
	struct tresp r;
	char v[64];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 10000);

	CU_ASSERT(r.interim_count >= 2);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(t_header(&r, "Connection", v, sizeof(v)) == NULL);
	t_resp_free(&r);
	static const char again[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	CU_ASSERT(t_send(fd, again, sizeof(again) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	close(fd);
}

static void test_head(void)
{
	static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char head[] = "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r1, r2;
	char a[32], b[32];
	int fd = roundtrip(get, sizeof(get) - 1, &r1, 0, 5000);

	CU_ASSERT(t_send(fd, head, sizeof(head) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r2, 1, 5000) == 0);
	CU_ASSERT_EQUAL(r2.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r1, "Content-Length", a, sizeof(a)), "14");
	CU_ASSERT_STRING_EQUAL(t_header(&r2, "Content-Length", b, sizeof(b)) ? b : "", "14");
	/* Nothing follows the HEAD answer: the next request's answer comes next. */
	CU_ASSERT(t_send(fd, get, sizeof(get) - 1) == 0);
	t_resp_free(&r1);
	CU_ASSERT_FATAL(t_read_response(fd, &r1, 0, 5000) == 0);
	CU_ASSERT_STRING_EQUAL(r1.body, "Hello, world!\n");
	t_resp_free(&r1);
	t_resp_free(&r2);
	close(fd);
}

static void test_post_1mib_echo(void)
{
	size_t n = 1024 * 1024;
	char *body = t_pattern(n);
	char head[256], id[64], col[32];
	struct tresp r;
	int len = snprintf(head, sizeof(head),
	                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-test\r\n"
	                   "Content-Length: %zu\r\n\r\n", n);
	sent_us = t_wall_us();
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, head, (size_t)len) == 0);
	CU_ASSERT(t_send(fd, body, n) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, n);
	CU_ASSERT(r.body_len == n && memcmp(r.body, body, n) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", head, sizeof(head)) ? head : "", "application/x-test");
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "bytes_in", col, sizeof(col)), "1048576");
	t_resp_free(&r);
	free(body);
	close(fd);
}

static void test_chunked_upload(void)
{
	static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\n\r\n";
	static const char env_req[] = "POST /env HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	                              "3\r\nabc\r\n0\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);

	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello, world!");
	t_resp_free(&r);
	close(fd);
	fd = roundtrip(env_req, sizeof(env_req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.body, "CONTENT_LENGTH=3\n") != NULL);
	t_resp_free(&r);
	close(fd);
}

static void test_writes_before_reading_no_deadlock(void)
{
	size_t n = 10 * 1024 * 1024;
	char *body = t_pattern(n);
	char head[256];
	struct tresp r;
	int len = snprintf(head, sizeof(head),
	                   "POST /writes-before-reading?bytes=10485760 HTTP/1.1\r\nHost: x\r\n"
	                   "Content-Length: %zu\r\n\r\n", n);
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, head, (size_t)len) == 0);
	CU_ASSERT(t_send(fd, body, n) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 10485760);
	t_resp_free(&r);
	free(body);
	close(fd);
}

static void test_timeout_kills_group(void)
{
	static const char req[] = "GET /hostile-trap-term HTTP/1.1\r\nHost: x\r\nUser-Agent: python-requests/2\r\n\r\n";
	struct tresp r;
	char id[64], col[64];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 15000);

	CU_ASSERT_EQUAL(r.status, 504);
	CU_ASSERT_STRING_EQUAL(r.body, "504 Gateway Timeout\n");
	close(fd);
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "timed_out"));
	t_job_field(&D, id, "pid", col, sizeof(col));
	CU_ASSERT(atoi(col) > 1);
	CU_ASSERT_EQUAL(t_group_alive(atoi(col)), 0);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "http_status", col, sizeof(col)), "504");
	t_resp_free(&r);
}

struct group_wait {
	pid_t pgid;
};
static int group_gone(void *ud) { return t_group_alive(((struct group_wait *)ud)->pgid) == 0; }

/* The process pgid itself has exited (gone, or a zombie nobody reaps). */
static int leader_gone(void *ud)
{
	char path[64], stat[256];
	FILE *f;
	size_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)((struct group_wait *)ud)->pgid);
	f = fopen(path, "r");
	if (f == NULL)
		return 1;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	p = strrchr(stat, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

static void test_client_disconnect_cancels(void)
{
	static const char req[] = "GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n";
	char id[64], col[64];
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	sent_us = t_wall_us();
	CU_ASSERT(t_send(fd, req, sizeof(req) - 1) == 0);
	last_id(id, sizeof(id));
	CU_ASSERT_FATAL(id[0] != '\0');
	CU_ASSERT_FATAL(wait_state(id, "running"));
	t_job_field(&D, id, "pid", col, sizeof(col));
	close(fd);
	CU_ASSERT(wait_state(id, "cancelled"));
	struct group_wait g = {atoi(col)};
	CU_ASSERT(t_wait_for(group_gone, &g, 5000));
}

/* A row newer than the id ud names is there. */
static int new_row(void *ud)
{
	char last[64];
	return strcmp(t_last_job_id(&D, last, sizeof(last)), (const char *)ud) != 0;
}

static void test_traversal_and_dotfiles(void)
{
	static const char *const paths[][2] = {
		{"/../etc/passwd", "403"}, {"/%2e%2e/%2e%2e/bin/sh", "403"}, {"/.hidden", "403"},
		{"/nonexec", "403"}, {"/no-such-program", "404"}, {"/%zz", "400"},
	};
	char before[64], cmd[512], out[64];
	t_last_job_id(&D, before, sizeof(before));
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char req[256];
		struct tresp r;
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i][0]);
		int fd = roundtrip(req, (size_t)n, &r, 0, 5000);
		CU_ASSERT_EQUAL(r.status, atoi(paths[i][1]));
		if (r.status != atoi(paths[i][1]))
			fprintf(stderr, "%s -> %d\n", paths[i][0], r.status);
		t_resp_free(&r);
		close(fd);
	}
	/* Nothing ran: the next job's row is the only new one. Rows are written
	 * in the order jobs were made, so once its row is there, a refused
	 * request's would be too. */
	{
		char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
		struct tresp r;
		int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
		CU_ASSERT_EQUAL(r.status, 200);
		t_resp_free(&r);
		close(fd);
	}
	CU_ASSERT(t_wait_for(new_row, before, 5000));
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"select count(*), max(script like '%%/hello') from jobs where "
	         "rowid > coalesce((select rowid from jobs where id = '%s'), 0)\"", D.db, before);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "1|1\n");
}

static void test_symlink_outside_root(void)
{
	char cmd[1024];
	struct tresp r;
	static const char req[] = "GET /escape HTTP/1.1\r\nHost: x\r\n\r\n";
	snprintf(cmd, sizeof(cmd), "ln -sf /bin/echo '%s/escape'", D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, NULL, 0), 0);
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 403);
	t_resp_free(&r);
	close(fd);
}

static void test_httpoxy_and_env(void)
{
	static const char req[] = "GET /env/extra/path?a=1&b=2 HTTP/1.1\r\nHost: example.test:8080\r\n"
	                          "Proxy: http://evil.example:1/\r\nX-Custom: yes\r\n"
	                          "Authorization: Basic Zm9vOmJhcg==\r\n\r\n";
	struct tresp r;
	char line[256];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);

	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.body, "HTTP_PROXY=") == NULL);
	CU_ASSERT(strstr(r.body, "HTTP_AUTHORIZATION") == NULL);
	CU_ASSERT(strstr(r.body, "HTTP_X_CUSTOM=yes\n") != NULL);
	CU_ASSERT(strstr(r.body, "GATEWAY_INTERFACE=CGI/1.1\n") != NULL);
	CU_ASSERT(strstr(r.body, "PATH_INFO=/extra/path\n") != NULL);
	CU_ASSERT(strstr(r.body, "QUERY_STRING=a=1&b=2\n") != NULL);
	CU_ASSERT(strstr(r.body, "REQUEST_METHOD=GET\n") != NULL);
	CU_ASSERT(strstr(r.body, "REQUEST_URI=/env/extra/path?a=1&b=2\n") != NULL);
	CU_ASSERT(strstr(r.body, "SCRIPT_NAME=/env\n") != NULL);
	CU_ASSERT(strstr(r.body, "SERVER_NAME=example.test\n") != NULL);
	CU_ASSERT(strstr(r.body, "SERVER_PROTOCOL=HTTP/1.1\n") != NULL);
	CU_ASSERT(strstr(r.body, "REMOTE_ADDR=127.0.0.1\n") != NULL);
	snprintf(line, sizeof(line), "SERVER_PORT=%d\n", D.port);
	CU_ASSERT(strstr(r.body, line) != NULL);
	snprintf(line, sizeof(line), "SCRIPT_FILENAME=%s/env\n", D.cgi_root);
	CU_ASSERT(strstr(r.body, line) != NULL);
	CU_ASSERT(strstr(r.body, "CONTENT_LENGTH") == NULL);
	t_resp_free(&r);
	close(fd);
}

static void test_duplicate_variable_400(void)
{
	static const char req[] = "GET /env HTTP/1.1\r\nHost: x\r\nX-Foo: 1\r\nX_Foo: 2\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 400);
	t_resp_free(&r);
	close(fd);
}

static void expect_status(const char *req, size_t len, int status, int closes)
{
	struct tresp r;
	char v[32];
	int fd = roundtrip(req, len, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, status);
	if (r.status != status)
		fprintf(stderr, "expected %d got %d for %.60s\n", status, r.status, req);
	if (closes) {
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Connection", v, sizeof(v)) ? v : "", "close");
		CU_ASSERT(t_wait_closed(fd, 3000));
	}
	t_resp_free(&r);
	close(fd);
}

static void test_bad_input_statuses(void)
{
	char big[12000];
	static const char garbage[] = "GARBAGE\r\n\r\n";
	static const char clte[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	                           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	static const char te[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n";
	static const char toolarge[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n";

	expect_status(garbage, sizeof(garbage) - 1, 400, 1);
	expect_status(clte, sizeof(clte) - 1, 400, 1);
	expect_status(te, sizeof(te) - 1, 501, 1);
	expect_status(toolarge, sizeof(toolarge) - 1, 413, 1);

	int n = snprintf(big, sizeof(big), "GET /");
	memset(big + n, 'a', 2000);
	n += 2000;
	n += snprintf(big + n, sizeof(big) - (size_t)n, " HTTP/1.1\r\nHost: x\r\n\r\n");
	expect_status(big, (size_t)n, 414, 1);

	n = snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(big + n, 'b', 9000);
	n += 9000;
	n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
	expect_status(big, (size_t)n, 431, 1);
}

static void test_header_timeout_408(void)
{
	static const char partial[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
	struct tresp r;
	uint64_t t0 = t_now_ms();
	int fd = roundtrip(partial, sizeof(partial) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 408);
	CU_ASSERT(t_now_ms() - t0 >= 900);
	CU_ASSERT(t_wait_closed(fd, 3000));
	t_resp_free(&r);
	close(fd);
}

static void test_bad_programs_502(void)
{
	static const char *const progs[] = {"/no-headers", "/die-early", "/fail", "/exit-signal"};
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		char req[256], id[64], col[128];
		struct tresp r;
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", progs[i]);
		int fd = roundtrip(req, (size_t)n, &r, 0, 5000);
		CU_ASSERT_EQUAL(r.status, 502);
		CU_ASSERT_STRING_EQUAL(r.body, "502 Bad Gateway\n");
		last_id(id, sizeof(id));
		if (!wait_state(id, "failed")) {
			char st[64];
			fprintf(stderr, "%s: job '%s' state '%s'\n", progs[i], id,
			        t_job_field(&D, id, "state", st, sizeof(st)));
			CU_FAIL("job did not end failed");
		}
		CU_ASSERT(t_job_field(&D, id, "reason", col, sizeof(col))[0] != '\0');
		t_resp_free(&r);
		close(fd);
	}
}

static void test_stderr_tail_recorded(void)
{
	static const char req[] = "GET /stderr-lines HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r;
	char id[64], col[256];
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	t_job_field(&D, id, "replace(stderr_tail, char(10), '|')", col, sizeof(col));
	CU_ASSERT_STRING_EQUAL(col, "line 1|line 2|line 3|");
	CU_ASSERT(td_wait_log(&D, "stderr: line 2", 5000));
	t_resp_free(&r);
	close(fd);
}

static void test_local_redirect(void)
{
	static const char req[] = "GET /local-redirect HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
	close(fd);
}

static void test_expect_continue(void)
{
	static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	                           "Content-Length: 5\r\n\r\n";
	char buf[64];
	int fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, head, sizeof(head) - 1) == 0);
	ssize_t n = recv(fd, buf, 25, MSG_WAITALL);
	CU_ASSERT_EQUAL(n, 25);
	CU_ASSERT(n == 25 && memcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
	CU_ASSERT(t_send(fd, "abcde", 5) == 0);
	struct tresp r;
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "abcde");
	t_resp_free(&r);
	close(fd);
}

static void test_pipelined_requests(void)
{
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello-c HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
	close(fd);
}

static void test_large_output_spooled(void)
{
	static const char req[] = "GET /big-output?20000000 HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tresp r;
	int fd = roundtrip(req, sizeof(req) - 1, &r, 0, 20000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 20000000);
	t_resp_free(&r);
	close(fd);
}

static void test_jobs_cli(void)
{
	char cmd[1024], out[8192];
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' --json --limit 1", CGIQ_BIN, D.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(strncmp(out, "{\"id\":\"", 7) == 0);
	CU_ASSERT(strstr(out, "\"state\":") != NULL);
	CU_ASSERT(strstr(out, "\"processing_sent\":") != NULL);
	CU_ASSERT(strchr(out, '\n') == out + strlen(out) - 1);
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' --state bogus 2>&1", CGIQ_BIN, D.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT(strstr(out, "--state") != NULL);
}

static void test_cli_errors(void)
{
	char cmd[1024], out[4096];
	snprintf(cmd, sizeof(cmd), "'%s' --cgi-root /tmp --job-timeout 5parsecs 2>&1", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT(strstr(out, "--job-timeout") != NULL);
	snprintf(cmd, sizeof(cmd), "'%s' --version", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(strncmp(out, "cgiq ", 5) == 0);
	snprintf(cmd, sizeof(cmd), "'%s' --help", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(strstr(out, "--processing-interval") != NULL);
}

/* kill -9 of cgiq: its programs die with it, restart marks the rows interrupted. */
static void test_kill9_and_restart(void)
{
	struct tdaemon k;
	static const char *const args[] = {"--log-level", "debug", NULL};
	static const char req[] = "GET /slow?60 HTTP/1.1\r\nHost: x\r\n\r\n";
	char id[64], col[64];

	CU_ASSERT_FATAL(td_start(&k, NULL, args) == 0);
	int fd = t_connect(k.port);
	CU_ASSERT(t_send(fd, req, sizeof(req) - 1) == 0);
	uint64_t end = t_now_ms() + 5000;
	int running = 0;
	while (!running && t_now_ms() < end) {
		t_last_job_id(&k, id, sizeof(id));
		t_job_field(&k, id, "state", col, sizeof(col));
		running = strcmp(col, "running") == 0;
		if (!running)
			usleep(20000);
	}
	CU_ASSERT_FATAL(running);
	t_job_field(&k, id, "pid", col, sizeof(col));
	pid_t pgid = atoi(col);
	CU_ASSERT(pgid > 1);
	td_kill9(&k);
	close(fd);
	/* The program itself dies with cgiq (PDEATHSIG); what it started is
	 * left to the next start. */
	CU_ASSERT(t_wait_for(leader_gone, &(struct group_wait){pgid}, 5000));
	CU_ASSERT_FATAL(td_restart(&k, args) == 0);
	t_job_field(&k, id, "state", col, sizeof(col));
	CU_ASSERT_STRING_EQUAL(col, "interrupted");
	CU_ASSERT(t_wait_for(group_gone, &(struct group_wait){pgid}, 5000));
	t_job_field(&k, id, "reason", col, sizeof(col));
	CU_ASSERT(col[0] != '\0');
	CU_ASSERT_EQUAL(td_stop(&k), 0);
	td_cleanup(&k);
}

/* cgiq killed before the recorder wrote the program's pid (simulated by
 * erasing it from the row): the groups file still names the group, and the
 * next start kills what the program left. */
static void test_kill9_before_the_pid_is_recorded(void)
{
	struct tdaemon k;
	static const char req[] = "GET /slow?60 HTTP/1.1\r\nHost: x\r\n\r\n";
	char id[64], col[64], cmd[1024];
	int64_t t0 = t_wall_us();
	pid_t pgid;
	int fd;

	CU_ASSERT_FATAL(td_start(&k, NULL, NULL) == 0);
	fd = t_connect(k.port);
	CU_ASSERT(t_send(fd, req, sizeof(req) - 1) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&k, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&k, id, "running", 5000));
	pgid = atoi(t_job_field(&k, id, "pid", col, sizeof(col)));
	CU_ASSERT_FATAL(pgid > 1);
	td_kill9(&k);
	close(fd);
	CU_ASSERT(t_wait_for(leader_gone, &(struct group_wait){pgid}, 5000));
	CU_ASSERT(t_group_alive(pgid)); /* the sleep the program started */
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"UPDATE jobs SET pid = NULL WHERE id = '%s'\"", k.db, id);
	CU_ASSERT_FATAL(t_run(cmd, NULL, 0) == 0);
	CU_ASSERT_FATAL(td_restart(&k, NULL) == 0);
	CU_ASSERT(t_wait_for(group_gone, &(struct group_wait){pgid}, 5000));
	snprintf(col, sizeof(col), "killed process group %d of a program", (int)pgid);
	CU_ASSERT(td_log_has(&k, col));
	CU_ASSERT_STRING_EQUAL(t_job_field(&k, id, "state", col, sizeof(col)), "interrupted");
	CU_ASSERT_EQUAL(td_stop(&k), 0);
	td_cleanup(&k);
}

/* Sends a 10-byte body one byte every 300 ms on fd; stops at the first
 * failed send (the server answered and closed). */
static void trickle_body(int fd)
{
	for (int i = 0; i < 10; i++) {
		usleep(300000);
		if (send(fd, "a", 1, MSG_NOSIGNAL) != 1)
			return;
	}
}

static const char TRICKLE_HEAD[] =
	"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";

/* A daemon with --body-timeout 1s and min_rate, and one POST whose 10-byte
 * body trickles in a byte every 300 ms; its response in *r. 0 or -1. */
static int trickled_post(struct tdaemon *b, const char *min_rate, struct tresp *r)
{
	const char *args[] = {"--body-timeout", "1s", "--body-min-rate", min_rate, NULL};
	int fd, rc = -1;

	if (td_start(b, NULL, args) != 0)
		return -1;
	fd = t_connect(b->port);
	if (fd >= 0 && t_send_str(fd, TRICKLE_HEAD) == 0) {
		trickle_body(fd);
		rc = t_read_response(fd, r, 0, 10000);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* --body-timeout is a gap: a body whose bytes come every 300 ms is read
 * whole although it takes three times the 1 s timeout. */
static void test_body_timeout_is_a_gap(void)
{
	struct tdaemon b;
	struct tresp r;

	CU_ASSERT_FATAL(trickled_post(&b, "0", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "aaaaaaaaaa");
	t_resp_free(&r);
	CU_ASSERT_EQUAL(td_stop(&b), 0);
	td_cleanup(&b);
}

/* --body-min-rate: the same trickle (about 3 bytes/s) is 408 once it has
 * taken longer than --body-timeout, with one log line; nothing runs. */
static void test_body_min_rate(void)
{
	struct tdaemon b;
	struct tresp r;
	char last[64];

	CU_ASSERT_FATAL(trickled_post(&b, "100", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 408);
	t_resp_free(&r);
	CU_ASSERT(td_wait_log(&b, "below --body-min-rate 100; 408", 5000));
	CU_ASSERT_STRING_EQUAL(t_last_job_id(&b, last, sizeof(last)), "");
	CU_ASSERT_EQUAL(td_stop(&b), 0);
	td_cleanup(&b);
}

/* --listen unix:PATH: served like TCP; the socket gets --listen-mode
 * (default 0660: a web server in cgiq's group may connect, others not). */
static void test_unix_listener(void)
{
	struct tdaemon u;
	char dir[] = "/tmp/cgiq-unix-XXXXXX", sock[300], listen_arg[320], mode_sock[300], mode_arg[320], cmd[400];
	const char *args[] = {"--listen", listen_arg, "--listen", mode_arg, "--listen-mode", "0600", NULL};
	const char *dflt[] = {"--listen", listen_arg, NULL};
	struct sockaddr_un sa;
	struct stat st;
	struct tresp r;
	int fd;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/http.sock", dir);
	snprintf(listen_arg, sizeof(listen_arg), "unix:%s", sock);
	snprintf(mode_sock, sizeof(mode_sock), "%s/private.sock", dir);
	snprintf(mode_arg, sizeof(mode_arg), "unix:%s", mode_sock);

	CU_ASSERT_FATAL(td_start(&u, NULL, dflt) == 0);
	CU_ASSERT(td_wait_log(&u, "listening on unix:", 5000));
	CU_ASSERT_FATAL(stat(sock, &st) == 0);
	CU_ASSERT(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
	close(fd);
	CU_ASSERT_EQUAL(td_stop(&u), 0);
	CU_ASSERT(stat(sock, &st) < 0); /* removed at stop */
	td_cleanup(&u);

	CU_ASSERT_FATAL(td_start(&u, NULL, args) == 0);
	CU_ASSERT(td_wait_log(&u, "private.sock", 5000));
	CU_ASSERT(stat(mode_sock, &st) == 0 && (st.st_mode & 07777) == 0600);
	CU_ASSERT(stat(sock, &st) == 0 && (st.st_mode & 07777) == 0600);
	CU_ASSERT_EQUAL(td_stop(&u), 0);
	td_cleanup(&u);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("gateway", suite_init, suite_clean);
	CU_add_test(s, "sample.pdf reference case (raw bytes)", test_sample_pdf_reference_case);
	CU_add_test(s, "sample.pdf with curl and pdfinfo", test_sample_pdf_with_curl);
	CU_add_test(s, "HTTP/1.0 gets no 102", test_http10_gets_no_102);
	CU_add_test(s, "auto leaves out python-requests", test_auto_leaves_out_python_requests);
	CU_add_test(s, "no User-Agent gets no 102", test_no_user_agent_gets_no_102);
	CU_add_test(s, "Prefer: processing keeps the connection", test_prefer_processing_keeps_connection);
	CU_add_test(s, "HEAD", test_head);
	CU_add_test(s, "1 MiB POST echoed", test_post_1mib_echo);
	CU_add_test(s, "chunked upload", test_chunked_upload);
	CU_add_test(s, "writes 10 MiB before reading 10 MiB", test_writes_before_reading_no_deadlock);
	CU_add_test(s, "timeout kills the process group", test_timeout_kills_group);
	CU_add_test(s, "client disconnect cancels", test_client_disconnect_cancels);
	CU_add_test(s, "traversal and dot-files", test_traversal_and_dotfiles);
	CU_add_test(s, "symlink outside the root", test_symlink_outside_root);
	CU_add_test(s, "httpoxy and environment", test_httpoxy_and_env);
	CU_add_test(s, "duplicate variable 400", test_duplicate_variable_400);
	CU_add_test(s, "bad input statuses", test_bad_input_statuses);
	CU_add_test(s, "header timeout 408", test_header_timeout_408);
	CU_add_test(s, "bad programs 502", test_bad_programs_502);
	CU_add_test(s, "stderr tail recorded", test_stderr_tail_recorded);
	CU_add_test(s, "local redirect", test_local_redirect);
	CU_add_test(s, "Expect: 100-continue", test_expect_continue);
	CU_add_test(s, "pipelined requests", test_pipelined_requests);
	CU_add_test(s, "20 MB output spooled", test_large_output_spooled);
	CU_add_test(s, "cgiq jobs", test_jobs_cli);
	CU_add_test(s, "command line errors", test_cli_errors);
	CU_add_test(s, "kill -9 and restart", test_kill9_and_restart);
	CU_add_test(s, "kill -9 before the pid is in the row", test_kill9_before_the_pid_is_recorded);
	CU_add_test(s, "unix: listener and --listen-mode", test_unix_listener);
	CU_add_test(s, "--body-timeout is a gap between bytes", test_body_timeout_is_a_gap);
	CU_add_test(s, "--body-min-rate", test_body_min_rate);

	return t_cunit_run();
}
