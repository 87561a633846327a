/*
 * Integration tests of the FastCGI front: the real daemon with --fastcgi on a
 * unix socket in a private temp dir, behind a real nginx (Debian's) on a free
 * loopback port, beside nginx + fcgiwrap for a side-by-side comparison, and
 * a raw FastCGI client for malformed input.
 */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;
static struct tserver NG, FW;
static char sockdir[256], cgiq_sock[320], fw_sock[320];
static int port_cgiq, port_fw;

static int suite_init(void)
{
	char fastcgi[400], body[4096];

	snprintf(sockdir, sizeof(sockdir), "/tmp/cgiq-fcgi-XXXXXX");
	if (mkdtemp(sockdir) == NULL)
		return -1;
	snprintf(cgiq_sock, sizeof(cgiq_sock), "%s/cgiq.sock", sockdir);
	snprintf(fw_sock, sizeof(fw_sock), "%s/fcgiwrap.sock", sockdir);
	snprintf(fastcgi, sizeof(fastcgi), "unix:%s", cgiq_sock);
	/* Must not reach any program: the gateway's own environment. */
	setenv("CGIQ_TEST_LEAK_MARKER", "leaked", 1);
	const char *args[] = {"--fastcgi", fastcgi, "--fastcgi-threads", "4", "--job-timeout", "3s",
	                      "--kill-grace", "500ms", NULL};
	if (td_start(&D, NULL, args) < 0)
		return -1;
	unsetenv("CGIQ_TEST_LEAK_MARKER");
	if (!td_wait_log(&D, "fastcgi on ", 10000))
		return -1;
	char *fw_argv[] = {"/usr/sbin/fcgiwrap", "-c", "2", "-s", NULL, NULL};
	char fw_addr[400];
	snprintf(fw_addr, sizeof(fw_addr), "unix:%s", fw_sock);
	fw_argv[4] = fw_addr;
	if (ts_start(&FW, sockdir, "fcgiwrap", fw_argv, fw_sock) < 0)
		return -1;

	port_cgiq = t_free_port();
	port_fw = t_free_port();
	snprintf(body, sizeof(body),
	         /* kept connections, as examples/nginx/cgiq.conf recommends */
	         "\tupstream cgiq_kept { server unix:%s; keepalive 4; keepalive_timeout 50s; }\n"
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%d;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation /kept/ {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root/hello;\n"
	         "\t\t\tfastcgi_keep_conn on;\n"
	         "\t\t\tfastcgi_pass cgiq_kept;\n"
	         "\t\t}\n"
	         "\t\tlocation / {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t\tfastcgi_read_timeout 10m;\n" /* as examples/nginx/cgiq.conf */
	         "\t\t\tfastcgi_buffering off;\n"
	         "\t\t}\n"
	         "\t\tlocation /evil {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME /bin/sh;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t\tlocation /dotdot {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root/../../../../bin/sh;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t}\n"
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%d;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation / {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t}\n",
	         cgiq_sock, port_cgiq, D.cgi_root, cgiq_sock, cgiq_sock, cgiq_sock, port_fw, D.cgi_root, fw_sock);
	return tn_start(&NG, sockdir, port_cgiq, body);
}

static int suite_clean(void)
{
	char cmd[400];
	int st;

	ts_stop(&NG);
	ts_stop(&FW);
	st = td_stop(&D);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	/* the daemon removed its socket */
	struct stat sb;
	if (stat(cgiq_sock, &sb) == 0) {
		fprintf(stderr, "%s left behind\n", cgiq_sock);
		st = -1;
	}
	td_cleanup(&D);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sockdir);
	t_run(cmd, NULL, 0);
	return st == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* helpers */

/* Wall clock (us) just before the last request was sent: its job is the
 * newest row created since. */
static int64_t sent_us;

/* The job the last request made, and waiting for its state (see support.h). */
static const char *last_id(char *out, size_t n)
{
	char id[64];
	t_wait_new_job(&D, sent_us, id, 5000);
	snprintf(out, n, "%s", id);
	return out;
}

static int wait_state(const char *id, const char *want) { return t_wait_job_state(&D, id, want, 5000); }

struct group_wait {
	pid_t pgid;
};
static int group_gone(void *ud) { return t_group_alive(((struct group_wait *)ud)->pgid) == 0; }

/* One request through nginx (port) on a new connection; the fd is closed. */
static void roundtrip(int port, const char *req, size_t len, struct tresp *r, int timeout_ms)
{
	sent_us = t_wall_us();
	int fd = t_connect(port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, req, len) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, r, 0, timeout_ms) == 0);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* through nginx */

static void test_hello(void)
{
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char v[128], id[64];

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "", "14");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "text/plain");
	CU_ASSERT_EQUAL(r.interim_count, 0);
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "uri", v, sizeof(v)), "/hello");
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "http_status", v, sizeof(v)), "200");
	t_resp_free(&r);
}

static void test_env_and_proxy_header(void)
{
	static const char req[] = "GET /env/extra/path?a=1&b=2 HTTP/1.1\r\nHost: example.test\r\n"
	                          "Proxy: http://evil.example:1/\r\nX-Custom: yes\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char line[600];

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.body, "HTTP_PROXY") == NULL);
	CU_ASSERT(strstr(r.body, "CGIQ_TEST_LEAK_MARKER") == NULL);
	CU_ASSERT(strstr(r.body, "FCGI_ROLE") == NULL);
	CU_ASSERT(strstr(r.body, "HTTP_X_CUSTOM=yes\n") != NULL);
	CU_ASSERT(strstr(r.body, "HTTP_HOST=example.test\n") != NULL);
	CU_ASSERT(strstr(r.body, "GATEWAY_INTERFACE=CGI/1.1\n") != NULL);
	CU_ASSERT(strstr(r.body, "PATH_INFO=/extra/path\n") != NULL);
	CU_ASSERT(strstr(r.body, "SCRIPT_NAME=/env\n") != NULL);
	CU_ASSERT(strstr(r.body, "QUERY_STRING=a=1&b=2\n") != NULL);
	CU_ASSERT(strstr(r.body, "REQUEST_METHOD=GET\n") != NULL);
	CU_ASSERT(strstr(r.body, "REQUEST_URI=/env/extra/path?a=1&b=2\n") != NULL);
	CU_ASSERT(strstr(r.body, "REMOTE_ADDR=127.0.0.1\n") != NULL);
	CU_ASSERT(strstr(r.body, "CONTENT_LENGTH") == NULL);
	snprintf(line, sizeof(line), "SCRIPT_FILENAME=%s/env\n", D.cgi_root);
	CU_ASSERT(strstr(r.body, line) != NULL);
	snprintf(line, sizeof(line), "SERVER_PORT=%d\n", port_cgiq);
	CU_ASSERT(strstr(r.body, line) != NULL);
	if (strstr(r.body, "HTTP_X_CUSTOM=yes\n") == NULL)
		fprintf(stderr, "env:\n%s\n", r.body);
	t_resp_free(&r);
}

static void test_post_1mib_echo(void)
{
	size_t n = 1024 * 1024;
	char *body = t_pattern(n);
	char head[256], id[64], col[32];
	struct tresp r;
	int len = snprintf(head, sizeof(head),
	                   "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-test\r\n"
	                   "Content-Length: %zu\r\nConnection: close\r\n\r\n", n);
	sent_us = t_wall_us();
	int fd = t_connect(port_cgiq);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, head, (size_t)len) == 0);
	CU_ASSERT(t_send(fd, body, n) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 15000) == 0);
	close(fd);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, n);
	CU_ASSERT(r.body_len == n && memcmp(r.body, body, n) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", head, sizeof(head)) ? head : "", "application/x-test");
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "bytes_in", col, sizeof(col)), "1048576");
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "bytes_out", col, sizeof(col)), "1048576");
	t_resp_free(&r);
	free(body);
}

static void test_chunked_upload(void)
{
	static const char req[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	                          "5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\n\r\n";
	static const char env_req[] = "POST /env HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	                              "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	struct tresp r;

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello, world!");
	t_resp_free(&r);
	roundtrip(port_cgiq, env_req, sizeof(env_req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strstr(r.body, "CONTENT_LENGTH=3\n") != NULL);
	t_resp_free(&r);
}

static void test_sample_pdf(void)
{
	static const char req[] = "GET /sample.pdf?seconds=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n"
	                          "Prefer: processing\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char v[128], id[64];

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 15000);
	CU_ASSERT_EQUAL(r.interim_count, 0); /* FastCGI carries no 102 */
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/pdf");
	CU_ASSERT_FATAL(t_header(&r, "Content-Length", v, sizeof(v)) != NULL);
	CU_ASSERT_EQUAL(strtoull(v, NULL, 10), r.body_len);
	CU_ASSERT(t_header(&r, "Transfer-Encoding", v, sizeof(v)) == NULL);
	CU_ASSERT(r.body_len > 5000 && memcmp(r.body, "%PDF-1.", 7) == 0);
	CU_ASSERT(t_pdfinfo_ok(D.dir, "fcgi.pdf", r.body, r.body_len));
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "succeeded"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "processing_sent", v, sizeof(v)), "0");
	t_resp_free(&r);
}

static void test_large_output_streamed(void)
{
	static const char req[] = "GET /big-output?3000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char v[64];

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 20000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_FATAL(t_header(&r, "Content-Length", v, sizeof(v)) != NULL);
	CU_ASSERT_EQUAL(strtoull(v, NULL, 10), r.body_len);
	CU_ASSERT_EQUAL(r.body_len, 3000000);
	CU_ASSERT(r.body_len == 3000000 && r.body[2999999] == (char)('a' + 2999999 % 26));
	t_resp_free(&r);
}

static void test_timeout_504(void)
{
	static const char req[] = "GET /hostile-trap-term HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char id[64], col[64];

	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 15000);
	CU_ASSERT_EQUAL(r.status, 504);
	CU_ASSERT_STRING_EQUAL(r.body, "504 Gateway Timeout\n");
	last_id(id, sizeof(id));
	CU_ASSERT(wait_state(id, "timed_out"));
	t_job_field(&D, id, "pid", col, sizeof(col));
	CU_ASSERT(atoi(col) > 1);
	struct group_wait g = {atoi(col)};
	CU_ASSERT(t_wait_for(group_gone, &g, 5000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "http_status", col, sizeof(col)), "504");
	t_resp_free(&r);
}

static void test_nginx_abort_cancels(void)
{
	static const char req[] = "GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n";
	char id[64], col[64];
	int fd = t_connect(port_cgiq);

	CU_ASSERT_FATAL(fd >= 0);
	sent_us = t_wall_us();
	CU_ASSERT(t_send(fd, req, sizeof(req) - 1) == 0);
	last_id(id, sizeof(id));
	CU_ASSERT_FATAL(id[0] != '\0');
	CU_ASSERT_FATAL(wait_state(id, "running"));
	t_job_field(&D, id, "pid", col, sizeof(col));
	close(fd); /* the client goes; nginx closes its FastCGI connection */
	CU_ASSERT(wait_state(id, "cancelled"));
	struct group_wait g = {atoi(col)};
	CU_ASSERT(t_wait_for(group_gone, &g, 5000));
}

static int count_rows(void)
{
	char cmd[600], out[64];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'SELECT count(*) FROM jobs'", D.db);
	t_run(cmd, out, sizeof(out));
	return atoi(out);
}

struct rows_wait {
	int want;
};
static int rows_are(void *ud) { return count_rows() >= ((struct rows_wait *)ud)->want; }

static void test_script_outside_root(void)
{
	static const char *const reqs[] = {
		"GET /evil HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /dotdot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"GET /../../bin/sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	};
	static const char hello[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char id[64], v[64];
	int before = count_rows();

	for (size_t i = 0; i < 2; i++) {
		roundtrip(port_cgiq, reqs[i], strlen(reqs[i]), &r, 5000);
		CU_ASSERT_EQUAL(r.status, 403);
		t_resp_free(&r);
	}
	roundtrip(port_cgiq, "GET /no-such-program HTTP/1.0\r\n\r\n", 33, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	roundtrip(port_cgiq, reqs[2], strlen(reqs[2]), &r, 5000);
	CU_ASSERT(r.status == 400 || r.status == 403 || r.status == 404); /* nginx normalises or refuses */
	t_resp_free(&r);
	/* nothing ran: the next job is the hello that follows */
	roundtrip(port_cgiq, hello, sizeof(hello) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	struct rows_wait w = {before + 1};
	CU_ASSERT(t_wait_for(rows_are, &w, 5000));
	CU_ASSERT_EQUAL(count_rows(), before + 1);
	last_id(id, sizeof(id));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "uri", v, sizeof(v)), "/hello");
	CU_ASSERT(td_wait_log(&D, "SCRIPT_FILENAME is not under --cgi-root", 5000));
}

/* Status, headers (without Date, Server, and the framing nginx picks:
 * Content-Length, Transfer-Encoding, Connection) and body of one response. */
static void normalise(const struct tresp *r, char *out, size_t size)
{
	const char *p = strchr(r->head, '\n');
	size_t n = 0;

	n += (size_t)snprintf(out + n, size - n, "%d\n", r->status);
	while (p && *++p && n < size) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l > 1 && strncasecmp(p, "Date:", 5) && strncasecmp(p, "Server:", 7) &&
		    strncasecmp(p, "Content-Length:", 15) && strncasecmp(p, "Transfer-Encoding:", 18) &&
		    strncasecmp(p, "Connection:", 11))
			n += (size_t)snprintf(out + n, size - n, "%.*s\n", (int)l, p);
		p = e;
	}
}

static void test_side_by_side_with_fcgiwrap(void)
{
	static const char *const reqs[] = {
		"GET /hello HTTP/1.0\r\n\r\n",
		"GET /hello-c HTTP/1.0\r\n\r\n",
		"POST /echo HTTP/1.0\r\nContent-Type: text/x-a\r\nContent-Length: 11\r\n\r\nhello world",
		"GET /sample.pdf?seconds=0 HTTP/1.0\r\n\r\n",
		"HEAD /hello HTTP/1.0\r\n\r\n",
	};
	/* Differences by design (README, "Migrating from fcgiwrap"): a missing
	 * program is 404 here (fcgiwrap: 403), and every answer has an exact
	 * Content-Length (fcgiwrap's go out chunked or until close). */
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct tresp a, b;
		char na[8192], nb[8192];
		int head = strncmp(reqs[i], "HEAD", 4) == 0;
		int fd = t_connect(port_cgiq);
		CU_ASSERT_FATAL(fd >= 0);
		t_send_str(fd, reqs[i]);
		CU_ASSERT_FATAL(t_read_response(fd, &a, head, 10000) == 0);
		close(fd);
		fd = t_connect(port_fw);
		CU_ASSERT_FATAL(fd >= 0);
		t_send_str(fd, reqs[i]);
		CU_ASSERT_FATAL(t_read_response(fd, &b, head, 10000) == 0);
		close(fd);
		normalise(&a, na, sizeof(na));
		normalise(&b, nb, sizeof(nb));
		CU_ASSERT_STRING_EQUAL(na, nb);
		if (strcmp(na, nb) != 0)
			fprintf(stderr, "%.40s\ncgiq:\n%s\nfcgiwrap:\n%s\n", reqs[i], na, nb);
		CU_ASSERT_EQUAL(a.body_len, b.body_len);
		CU_ASSERT(a.body_len == b.body_len && memcmp(a.body, b.body, a.body_len) == 0);
		t_resp_free(&a);
		t_resp_free(&b);
	}
}

/* ------------------------------------------------------------------ */
/* a raw FastCGI client on cgiq's socket */

struct fbuf {
	unsigned char *d;
	size_t len;
};

static void fb_add(struct fbuf *b, const void *p, size_t n)
{
	b->d = realloc(b->d, b->len + n + 1);
	memcpy(b->d + b->len, p, n);
	b->len += n;
}

static void fb_record(struct fbuf *b, int type, const void *content, size_t len)
{
	do {
		size_t n = len > 65535 ? 65535 : len;
		unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(n >> 8), (unsigned char)n, 0, 0};
		fb_add(b, h, 8);
		if (n)
			fb_add(b, content, n);
		content = (const char *)content + n;
		len -= n;
	} while (len > 0);
}

static void fb_len(struct fbuf *b, size_t n)
{
	if (n < 128) {
		unsigned char c = (unsigned char)n;
		fb_add(b, &c, 1);
	} else {
		unsigned char c[4] = {(unsigned char)(0x80 | (n >> 24)), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
		                      (unsigned char)n};
		fb_add(b, c, 4);
	}
}

static void fb_param(struct fbuf *b, const char *name, const char *value)
{
	fb_len(b, strlen(name));
	fb_len(b, strlen(value));
	fb_add(b, name, strlen(name));
	fb_add(b, value, strlen(value));
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends a whole request (role, params, empty stdin) and reads stdout until
 * FCGI_END_REQUEST. Returns the stdout bytes (malloc'd) and *app_status, or
 * NULL when the connection closed first. */
/* One request on fd (closed): the stdout records' bytes, or NULL when the
 * connection ended without an end-request record. */
static char *fcgi_call_fd(int fd, int role, const struct fbuf *params, int *app_status)
{
	struct fbuf req = {0}, out = {0};
	unsigned char begin[8] = {0, (unsigned char)role, 0, 0, 0, 0, 0, 0};
	uint64_t end = t_now_ms() + 10000;
	unsigned char buf[65536 + 16];
	size_t have = 0;

	if (fd < 0)
		return NULL;
	fb_record(&req, 1, begin, 8);
	fb_record(&req, 4, params->d, params->len);
	fb_record(&req, 4, NULL, 0);
	fb_record(&req, 5, NULL, 0);
	t_send(fd, req.d, req.len);
	free(req.d);
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (t_now_ms() >= end || poll(&p, 1, (int)(end - t_now_ms())) <= 0)
			break;
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		while (have >= 8) {
			size_t clen = ((size_t)buf[4] << 8) | buf[5], tot = 8 + clen + buf[6];
			if (have < tot)
				break;
			if (buf[1] == 6)
				fb_add(&out, buf + 8, clen);
			if (buf[1] == 3) {
				*app_status = (buf[8] << 24) | (buf[9] << 16) | (buf[10] << 8) | buf[11];
				close(fd);
				if (out.d == NULL)
					fb_add(&out, "", 0);
				out.d[out.len] = '\0';
				return (char *)out.d;
			}
			memmove(buf, buf + tot, have - tot);
			have -= tot;
		}
	}
	close(fd);
	free(out.d);
	return NULL;
}

static char *fcgi_call(int role, const struct fbuf *params, int *app_status)
{
	return fcgi_call_fd(unix_connect(cgiq_sock), role, params, app_status);
}

static void base_params(struct fbuf *p, const char *script)
{
	char sf[600];
	snprintf(sf, sizeof(sf), "%s/%s", D.cgi_root, script);
	fb_param(p, "REQUEST_METHOD", "GET");
	fb_param(p, "SCRIPT_FILENAME", sf);
	fb_param(p, "REQUEST_URI", "/raw");
	fb_param(p, "REMOTE_ADDR", "127.0.0.1");
}

/*
 * Stalled connections, each with 3 bytes of a record header, hold nothing
 * (the front is on the event loop): a request beside them is served at
 * once, and after --fastcgi-read-timeout they are closed (one log line
 * each). A kept connection that idles past --fastcgi-idle-timeout is closed.
 */
static void test_read_and_idle_timeouts(void)
{
	char sock[400], arg[420];
	const char *extra[] = { "--fastcgi", arg, "--fastcgi-threads", "2", "--fastcgi-read-timeout", "1s",
	                        "--fastcgi-idle-timeout", "1s", NULL };
	struct tdaemon x;
	struct fbuf p = {0};
	int stalled[2], st = -1;
	uint64_t t0;
	char *out;

	snprintf(sock, sizeof(sock), "%s/timeouts.sock", sockdir);
	snprintf(arg, sizeof(arg), "unix:%s", sock);
	CU_ASSERT_FATAL(td_start(&x, NULL, extra) == 0);
	for (int i = 0; i < 2; i++) {
		stalled[i] = unix_connect(sock);
		CU_ASSERT_FATAL(stalled[i] >= 0);
		CU_ASSERT(t_send(stalled[i], "\x01\x01\x00", 3) == 0);
	}
	t0 = t_now_ms();
	{
		char sf[600];
		snprintf(sf, sizeof(sf), "%s/hello", x.cgi_root);
		fb_param(&p, "REQUEST_METHOD", "GET");
		fb_param(&p, "SCRIPT_FILENAME", sf);
		fb_param(&p, "REQUEST_URI", "/hello");
		fb_param(&p, "REMOTE_ADDR", "127.0.0.1");
	}
	out = fcgi_call_fd(unix_connect(sock), 1, &p, &st);
	CU_ASSERT(out != NULL && strstr(out, "Hello, world!") != NULL);
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT(t_now_ms() - t0 < 900); /* it did not wait for the stalled ones' timeout */
	free(out);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT(t_wait_closed(stalled[i], 5000));
		close(stalled[i]);
	}
	CU_ASSERT(td_wait_log(&x, "no whole request within --fastcgi-read-timeout 1000 ms", 5000));

	/* a kept connection (FCGI_KEEP_CONN) that idles after its answer is closed */
	{
		struct fbuf req = {0};
		unsigned char begin[8] = {0, 1, 1 /* FCGI_KEEP_CONN */, 0, 0, 0, 0, 0};
		int fd = unix_connect(sock);
		CU_ASSERT_FATAL(fd >= 0);
		fb_record(&req, 1, begin, 8);
		fb_record(&req, 4, p.d, p.len);
		fb_record(&req, 4, NULL, 0);
		fb_record(&req, 5, NULL, 0);
		CU_ASSERT(t_send(fd, req.d, req.len) == 0);
		free(req.d);
		t0 = t_now_ms();
		CU_ASSERT(t_wait_closed(fd, 5000)); /* reads the answer, then the close */
		CU_ASSERT(t_now_ms() - t0 >= 900);
		close(fd);
	}
	free(p.d);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

/* The connection number cgiq's log line of "GET target" names, 0 if none. */
static unsigned conn_of(const char *target)
{
	char want[128], *log = t_slurp(D.log), *at, *line;
	unsigned n = 0;

	snprintf(want, sizeof(want), "\"GET %s\"", target);
	if (log && (at = strstr(log, want)) != NULL) {
		for (line = at; line > log && line[-1] != '\n'; line--)
			;
		if ((line = strstr(line, "fastcgi conn ")) != NULL && line < at)
			n = (unsigned)strtoul(line + strlen("fastcgi conn "), NULL, 10);
	}
	free(log);
	return n;
}

/* nginx keeping its connections to cgiq (upstream keepalive with
 * fastcgi_keep_conn on): three requests from three clients are answered on
 * one FastCGI connection. */
static void test_kept_by_nginx(void)
{
	static const char *const targets[] = {"/kept/a", "/kept/b", "/kept/c"};
	struct tresp r;
	unsigned conn[3];
	char line[64];

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(t_get(port_cgiq, targets[i], &r, 10000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT(r.body_len == 14 && memcmp(r.body, "Hello, world!\n", 14) == 0);
		t_resp_free(&r);
		snprintf(line, sizeof(line), "\"GET %s\"", targets[i]);
		CU_ASSERT(td_wait_log(&D, line, 5000));
		conn[i] = conn_of(targets[i]);
	}
	CU_ASSERT(conn[0] > 0);
	CU_ASSERT_EQUAL(conn[1], conn[0]);
	CU_ASSERT_EQUAL(conn[2], conn[0]);
}

/* libfcgi's own client, cgi-fcgi (libfcgi-bin), as a second peer beside
 * nginx: its environment becomes the parameters, its stdin the body. A GET
 * and a POST get the exact CGI responses. */
static void test_cgi_fcgi_client(void)
{
	char cmd[2048], out[4096];

	snprintf(cmd, sizeof(cmd),
	         "env -i REQUEST_METHOD=GET SCRIPT_FILENAME='%s/hello' REQUEST_URI=/hello REMOTE_ADDR=127.0.0.1 "
	         "cgi-fcgi -bind -connect '%s' </dev/null",
	         D.cgi_root, cgiq_sock);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\n"
	                            "Hello, world!\n");
	snprintf(cmd, sizeof(cmd),
	         "printf 'hello' | env -i REQUEST_METHOD=POST SCRIPT_FILENAME='%s/echo' REQUEST_URI=/echo "
	         "REMOTE_ADDR=127.0.0.1 CONTENT_LENGTH=5 CONTENT_TYPE=text/plain cgi-fcgi -bind -connect '%s'",
	         D.cgi_root, cgiq_sock);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT(strncmp(out, "Status: 200 OK\r\n", 16) == 0);
	CU_ASSERT(strstr(out, "\r\nContent-Length: 5\r\n\r\nhello") != NULL);
}

/* Beyond --max-connections, the same rule as the HTTP front: the request
 * is read and answered 503 with Retry-After, one log line. */
static void test_max_connections(void)
{
	char sock[400], arg[420], sf[600];
	const char *extra[] = { "--fastcgi", arg, "--max-connections", "1", NULL };
	struct tdaemon x;
	struct fbuf p = {0};
	int held, st = -1;
	char *out;

	snprintf(sock, sizeof(sock), "%s/cap.sock", sockdir);
	snprintf(arg, sizeof(arg), "unix:%s", sock);
	CU_ASSERT_FATAL(td_start(&x, NULL, extra) == 0);
	held = unix_connect(sock);
	CU_ASSERT_FATAL(held >= 0);
	CU_ASSERT(t_send(held, "\x01\x01\x00", 3) == 0);
	snprintf(sf, sizeof(sf), "%s/hello", x.cgi_root);
	fb_param(&p, "REQUEST_METHOD", "GET");
	fb_param(&p, "SCRIPT_FILENAME", sf);
	fb_param(&p, "REQUEST_URI", "/hello");
	out = fcgi_call_fd(unix_connect(sock), 1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 503 Service Unavailable\r\n", 33) == 0);
	CU_ASSERT(strstr(out, "\r\nRetry-After: 5\r\n") != NULL);
	CU_ASSERT(td_wait_log(&x, "refused, 1 connections open (--max-connections 1)", 5000));
	free(out);
	/* once the first is gone, a request is served */
	close(held);
	for (int i = 0; i < 50; i++) {
		out = fcgi_call_fd(unix_connect(sock), 1, &p, &st);
		if (out && strstr(out, "Hello, world!"))
			break;
		free(out);
		out = NULL;
		usleep(20000);
	}
	CU_ASSERT(out != NULL && strstr(out, "Hello, world!") != NULL);
	free(out);
	free(p.d);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

static void test_app_status(void)
{
	struct fbuf p = {0};
	int st = -1;
	char *out;

	base_params(&p, "hello");
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 200 OK\r\n", 16) == 0);
	CU_ASSERT(strstr(out, "\r\n\r\nHello, world!\n") != NULL);
	CU_ASSERT_EQUAL(st, 0);
	free(out);
	free(p.d);
	p = (struct fbuf){0};
	base_params(&p, "fail");
	st = -1;
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 502 Bad Gateway\r\n", 25) == 0);
	CU_ASSERT_EQUAL(st, 1); /* examples/cgi-bin/fail exits 1 */
	free(out);
	free(p.d);
}

static void test_bad_input(void)
{
	struct fbuf p = {0};
	int st, fd;
	char *out;

	/* garbage: closed, one log line, the process stays up */
	fd = unix_connect(cgiq_sock);
	CU_ASSERT_FATAL(fd >= 0);
	t_send_str(fd, "GARBAGE GARBAGE GARBAGE\r\n\r\n");
	CU_ASSERT(t_wait_closed(fd, 5000));
	close(fd);
	/* truncated: a begin record cut short, then EOF */
	fd = unix_connect(cgiq_sock);
	CU_ASSERT_FATAL(fd >= 0);
	t_send(fd, "\x01\x01\x00\x01\x00\x08\x00", 7);
	shutdown(fd, SHUT_WR);
	CU_ASSERT(t_wait_closed(fd, 5000));
	close(fd);
	CU_ASSERT(td_wait_log(&D, "malformed or truncated records", 5000));

	/* unknown role 9: libfcgi refuses it, connection closed */
	base_params(&p, "hello");
	st = -1;
	out = fcgi_call(9, &p, &st);
	CU_ASSERT(out == NULL || strstr(out, "Hello") == NULL);
	free(out);
	/* a role libfcgi knows but cgiq does not serve: 500 */
	out = fcgi_call(2, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 500", 11) == 0);
	CU_ASSERT(td_wait_log(&D, "role 2 is not supported", 5000));
	free(out);
	free(p.d);

	/* no SCRIPT_FILENAME */
	p = (struct fbuf){0};
	fb_param(&p, "REQUEST_METHOD", "GET");
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 500", 11) == 0);
	CU_ASSERT(td_wait_log(&D, "no SCRIPT_FILENAME", 5000));
	free(out);
	free(p.d);

	/* params within the 64k cap are served */
	char *big = malloc(70000);
	p = (struct fbuf){0};
	base_params(&p, "hello");
	memset(big, 'a', 59999);
	big[59999] = '\0';
	fb_param(&p, "HTTP_X_BIG", big);
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 200", 11) == 0);
	free(out);
	free(p.d);
	/* beyond it: the connection is closed before libfcgi reads them */
	p = (struct fbuf){0};
	base_params(&p, "hello");
	memset(big, 'a', 69999);
	big[69999] = '\0';
	fb_param(&p, "HTTP_X_BIG", big);
	out = fcgi_call(1, &p, &st);
	CU_ASSERT(out == NULL);
	free(out);
	free(p.d);
	CU_ASSERT(td_wait_log(&D, "connection closed before reading them", 5000));
	/* The decision needs only the record headers: a peer that declares a
	 * second 65535-byte PARAMS record and never sends it is closed at once
	 * (libfcgi, reading, would wait for those bytes for ever). The first
	 * record is sent in two parts, so the check also waits for bytes; its
	 * content is empty pairs (two zero lengths each), so that no pair of it
	 * declares anything beyond the cap on its own. */
	fd = unix_connect(cgiq_sock);
	CU_ASSERT_FATAL(fd >= 0);
	{
		struct fbuf raw = {0};
		unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
		unsigned char second[8] = {1, 4, 0, 1, 0xff, 0xff, 0, 0};
		memset(big, 0, 65535);
		fb_record(&raw, 1, begin, 8);
		fb_record(&raw, 4, big, 65535);
		CU_ASSERT_FATAL(t_send(fd, raw.d, 1000) == 0);
		CU_ASSERT_FATAL(t_send(fd, raw.d + 1000, raw.len - 1000) == 0);
		CU_ASSERT_FATAL(t_send(fd, second, sizeof(second)) == 0);
		free(raw.d);
	}
	CU_ASSERT(t_wait_closed(fd, 5000));
	close(fd);
	CU_ASSERT(td_wait_log(&D, "take more than 131070 bytes", 5000));
	free(big);

	/* the same non-HTTP parameter twice: 400 */
	p = (struct fbuf){0};
	base_params(&p, "hello");
	fb_param(&p, "SCRIPT_FILENAME", "/bin/sh");
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 400", 11) == 0);
	free(out);
	free(p.d);

	/* and everything still works */
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	roundtrip(port_cgiq, req, sizeof(req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(kill(D.pid, 0) == 0);
}

/* GET path through nginx with extra header lines; the response in r. */
static void via_nginx(const char *method, const char *path, const char *extra, struct tresp *r)
{
	char req[1024];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", method, path,
	                 extra);
	sent_us = t_wall_us();
	int fd = t_connect(port_cgiq);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, req, (size_t)n) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, r, strcmp(method, "HEAD") == 0, 10000) == 0);
	close(fd);
}

/* Prefer: respond-async through nginx: 202 with the status monitor, which
 * nginx routes to cgiq like any other path, as the result and DELETE. */
static void test_async_through_nginx(void)
{
	struct tresp r;
	char loc[128], v[256], path[256], id[64];

	via_nginx("GET", "/hello", "Prefer: respond-async\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Preference-Applied", v, sizeof(v)) ? v : "", "respond-async");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/json");
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	CU_ASSERT_EQUAL(strlen(loc), strlen("/_cgiq/jobs/") + 32);
	CU_ASSERT_EQUAL_FATAL(strncmp(loc, "/_cgiq/jobs/", 12), 0);
	snprintf(id, sizeof(id), "%s", loc + 12);
	snprintf(v, sizeof(v), "{\"id\":\"%s\"", id);
	CU_ASSERT(strncmp(r.body, v, strlen(v)) == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(wait_state(id, "succeeded"));

	via_nginx("GET", loc, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/json");
	CU_ASSERT(strstr(r.body, "\"state\":\"succeeded\"") != NULL);
	CU_ASSERT(t_header(&r, "Retry-After", v, sizeof(v)) == NULL);
	t_resp_free(&r);

	snprintf(path, sizeof(path), "%s/result", loc);
	via_nginx("GET", path, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "", "14");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "text/plain");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Accept-Ranges", v, sizeof(v)) ? v : "", "bytes");
	t_resp_free(&r);

	via_nginx("GET", path, "Range: bytes=7-11\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 206);
	CU_ASSERT_STRING_EQUAL(r.body, "world");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Range", v, sizeof(v)) ? v : "", "bytes 7-11/14");
	t_resp_free(&r);

	via_nginx("GET", path, "Range: bytes=14-\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 416);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Range", v, sizeof(v)) ? v : "", "bytes */14");
	t_resp_free(&r);

	via_nginx("HEAD", path, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "", "14");
	CU_ASSERT_EQUAL(r.body_len, 0);
	t_resp_free(&r);

	via_nginx("POST", loc, "Content-Length: 0\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 405);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Allow", v, sizeof(v)) ? v : "", "GET, HEAD, DELETE");
	t_resp_free(&r);

	via_nginx("DELETE", loc, "", &r);
	CU_ASSERT_EQUAL(r.status, 204);
	t_resp_free(&r);
	via_nginx("GET", loc, "", &r);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	via_nginx("GET", "/_cgiq/jobs/not-an-id", "", &r);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
}

/* A result asked before the job ended: 425 with Retry-After (RFC 8470). */
static void test_async_result_too_early(void)
{
	struct tresp r;
	char loc[128], v[64], path[256];

	via_nginx("GET", "/slow?2", "Prefer: respond-async\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	snprintf(path, sizeof(path), "%s/result", loc);
	via_nginx("GET", path, "", &r);
	CU_ASSERT_EQUAL(r.status, 425);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Retry-After", v, sizeof(v)) ? v : "", "1");
	t_resp_free(&r);
	via_nginx("GET", loc, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(t_header(&r, "Retry-After", v, sizeof(v)) != NULL);
	t_resp_free(&r);
	CU_ASSERT(wait_state(loc + 12, "succeeded"));
}

/* Prefer: wait=N over FastCGI, as on the HTTP front (RFC 7240 4.3): a job
 * done in time is answered as usual; one still running after N seconds is
 * detached and the web server gets 202 with its status monitor, and the
 * result is kept by id. */
static void test_prefer_wait(void)
{
	struct tresp r;
	char loc[128], v[64], path[256];

	via_nginx("GET", "/hello", "Prefer: wait=10\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body ? r.body : "", "Hello, world!\n");
	t_resp_free(&r);

	/* (the suite's --job-timeout is 3 s) */
	via_nginx("GET", "/slow?2", "Prefer: wait=1\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT(t_header(&r, "Preference-Applied", v, sizeof(v)) == NULL);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/json");
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	CU_ASSERT_EQUAL_FATAL(strncmp(loc, "/_cgiq/jobs/", 12), 0);
	/* answered while the program still ran */
	CU_ASSERT(strstr(r.body ? r.body : "", "\"state\":\"running\"") != NULL);
	t_resp_free(&r);
	CU_ASSERT(td_wait_log(&D, "still running after Prefer: wait; answering 202", 5000));
	CU_ASSERT_FATAL(wait_state(loc + 12, "succeeded"));
	snprintf(path, sizeof(path), "%s/result", loc);
	via_nginx("GET", path, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body ? r.body : "", "hello\n");
	t_resp_free(&r);
}

/* With more than FD_SETSIZE descriptors open (idle HTTP connections), a
 * FastCGI connection gets a descriptor above 1024 and still works: a libfcgi
 * that used select() on it (FD_SET beyond 1024 aborts under glibc's fortify
 * checks) would kill cgiq here. Debian 12's libfcgi polls. */
static void test_many_fds(void)
{
	enum { IDLE = 1100 };
	static int fds[IDLE];
	struct fbuf p = {0};
	struct rlimit rl;
	int st = -1, n = 0;
	char *out;

	CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < IDLE + 200) {
		fprintf(stderr, "(RLIMIT_NOFILE %llu too low for this test)\n", (unsigned long long)rl.rlim_cur);
		CU_FAIL("RLIMIT_NOFILE too low");
		return;
	}
	for (; n < IDLE; n++) {
		fds[n] = t_connect(D.port);
		if (fds[n] < 0)
			break;
	}
	CU_ASSERT_EQUAL_FATAL(n, IDLE);
	/* The last connection is accepted: cgiq holds IDLE descriptors more. */
	CU_ASSERT(t_send_str(fds[IDLE - 1], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	{
		struct tresp r;
		CU_ASSERT(t_read_response(fds[IDLE - 1], &r, 0, 10000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		t_resp_free(&r);
	}
	base_params(&p, "hello");
	out = fcgi_call(1, &p, &st);
	CU_ASSERT_FATAL(out != NULL);
	CU_ASSERT(strncmp(out, "Status: 200 OK\r\n", 16) == 0);
	CU_ASSERT_EQUAL(st, 0);
	free(out);
	free(p.d);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	CU_ASSERT(kill(D.pid, 0) == 0);
}

/* A FastCGI request for script under root, on fd; 1 when "Hello" came back. */
static int hello_over(int fd, const char *root)
{
	struct fbuf p = {0};
	char sf[600], *out;
	int st = -1, ok;

	snprintf(sf, sizeof(sf), "%s/hello", root);
	fb_param(&p, "REQUEST_METHOD", "GET");
	fb_param(&p, "SCRIPT_FILENAME", sf);
	fb_param(&p, "REQUEST_URI", "/hello");
	out = fcgi_call_fd(fd, 1, &p, &st);
	ok = out != NULL && strncmp(out, "Status: 200 OK\r\n", 16) == 0 && strstr(out, "Hello, world!") && st == 0;
	free(out);
	free(p.d);
	return ok;
}

/* --fastcgi HOST:PORT: loopback peers by default; with --fastcgi-allow only
 * the listed ones, any other connection is closed before a byte is read,
 * with one log line. */
static void test_tcp_and_allow_list(void)
{
	struct tdaemon t, a;
	char addr[64], addr2[64];
	int port = t_free_port(), port2 = t_free_port(), fd;
	const char *args[] = {"--fastcgi", addr, NULL};
	const char *args2[] = {"--fastcgi", addr2, "--fastcgi-allow", "192.0.2.7", NULL};

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(addr2, sizeof(addr2), "127.0.0.1:%d", port2);
	CU_ASSERT_FATAL(td_start(&t, NULL, args) == 0);
	CU_ASSERT_FATAL(td_wait_log(&t, "fastcgi on ", 10000));
	CU_ASSERT(hello_over(t_connect(port), t.cgi_root));
	CU_ASSERT_EQUAL(td_stop(&t), 0);
	td_cleanup(&t);

	CU_ASSERT_FATAL(td_start(&a, NULL, args2) == 0);
	CU_ASSERT_FATAL(td_wait_log(&a, "fastcgi on ", 10000));
	fd = t_connect(port2);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(!hello_over(fd, a.cgi_root));
	CU_ASSERT(td_wait_log(&a, "fastcgi: connection from 127.0.0.1", 5000));
	CU_ASSERT(td_log_has(&a, "refused (not loopback and not in --fastcgi-allow)"));
	CU_ASSERT(t_last_job_id(&a, addr, sizeof(addr))[0] == '\0'); /* nothing ran */
	CU_ASSERT_EQUAL(td_stop(&a), 0);
	td_cleanup(&a);
}

/* spawn-fcgi -n binds the socket and execs cgiq with it as fd 0 (as for
 * fcgiwrap): cgiq serves it without --fastcgi and without an HTTP listener. */
static void test_spawn_fcgi_socket(void)
{
	char dir[] = "/tmp/cgiq-spawnfcgi-XXXXXX", sock[300], db[300], spool[300], logf[300], cmd[400];
	pid_t pid;
	int status = -1, fd = -1;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(db, sizeof(db), "%s/cgiq.db", dir);
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	snprintf(logf, sizeof(logf), "%s/log", dir);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		int lfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(lfd, 1);
		dup2(lfd, 2);
		execl("/usr/bin/spawn-fcgi", "spawn-fcgi", "-n", "-s", sock, "--", CGIQ_BIN, "--allow-root",
		      "--cgi-root", CGIQ_EXAMPLES "/cgi-bin", "--db", db, "--spool", spool, (char *)NULL);
		_exit(127);
	}
	for (uint64_t end = t_now_ms() + 10000; t_now_ms() < end && fd < 0;) {
		char out[64];
		snprintf(cmd, sizeof(cmd), "grep -c 'fastcgi on' '%s'", logf);
		if (t_run(cmd, out, sizeof(out)) == 0)
			fd = unix_connect(sock);
		else
			usleep(20000);
	}
	CU_ASSERT(fd >= 0);
	if (fd >= 0)
		CU_ASSERT(hello_over(fd, CGIQ_EXAMPLES "/cgi-bin"));
	snprintf(cmd, sizeof(cmd), "grep -c 'listening on' '%s'", logf);
	CU_ASSERT(t_run(cmd, NULL, 0) != 0); /* no HTTP listener of its own */
	kill(pid, SIGTERM);
	CU_ASSERT(waitpid(pid, &status, 0) == pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
}

/* --on-disconnect detach on the FastCGI front: the web server closing the
 * connection mid-job leaves the job running; it succeeds and its result is
 * kept by id (fetched here through the HTTP front of the same process). */
static void test_fcgi_detach_on_disconnect(void)
{
	struct tdaemon x;
	char sock[300], addr[320], sf[600], id[64], req[512];
	const char *args[] = {"--fastcgi", addr, "--on-disconnect", "detach", NULL};
	unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
	struct fbuf p = {0}, raw = {0};
	struct tresp r;
	int64_t t0;
	int fd, n;

	snprintf(sock, sizeof(sock), "%s/detach.sock", sockdir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	CU_ASSERT_FATAL(td_start(&x, NULL, args) == 0);
	CU_ASSERT_FATAL(td_wait_log(&x, "fastcgi on ", 10000));
	snprintf(sf, sizeof(sf), "%s/slow", x.cgi_root);
	fb_param(&p, "REQUEST_METHOD", "GET");
	fb_param(&p, "SCRIPT_FILENAME", sf);
	fb_param(&p, "QUERY_STRING", "1");
	fb_param(&p, "REQUEST_URI", "/slow?1");
	fb_record(&raw, 1, begin, 8);
	fb_record(&raw, 4, p.d, p.len);
	fb_record(&raw, 4, NULL, 0);
	fb_record(&raw, 5, NULL, 0);
	t0 = t_wall_us();
	fd = unix_connect(sock);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, raw.d, raw.len) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&x, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&x, id, "running", 5000));
	close(fd); /* the web server goes away */
	CU_ASSERT(td_wait_log(&x, "goes on (detached)", 5000));
	CU_ASSERT(t_wait_job_state(&x, id, "succeeded", 10000));
	n = snprintf(req, sizeof(req), "GET /_cgiq/jobs/%s/result HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", id);
	roundtrip(x.port, req, (size_t)n, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	t_resp_free(&r);
	free(p.d);
	free(raw.d);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

/* GET path on a new connection to port; the response in *r. */
static void get_on(int port, const char *path, const char *extra, struct tresp *r)
{
	char req[1024];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", path, extra);
	roundtrip(port, req, (size_t)n, r, 10000);
}

/* --fastcgi-accel-redirect: a kept result is answered with X-Accel-Redirect
 * and nginx serves the spool file itself (its ETag and Last-Modified show
 * it), Range included; the program's Content-Type comes through. */
static void test_accel_redirect(void)
{
	struct tdaemon x;
	struct tserver ng;
	char sock[300], addr[320], body[2048], dir[300], loc[128], path[300], v[128];
	const char *args[] = {"--fastcgi", addr, "--fastcgi-accel-redirect", "/_cgiq_spool", NULL};
	int port = t_free_port();
	struct tresp r;

	snprintf(sock, sizeof(sock), "%s/accel.sock", sockdir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	CU_ASSERT_FATAL(td_start(&x, NULL, args) == 0);
	CU_ASSERT_FATAL(td_wait_log(&x, "fastcgi on ", 10000));
	snprintf(dir, sizeof(dir), "%s/ng-accel", x.dir);
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	snprintf(body, sizeof(body),
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%%PORT%%;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation / {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t\tlocation /_cgiq_spool/ {\n"
	         "\t\t\tinternal;\n"
	         "\t\t\talias %s/spool/;\n"
	         "\t\t}\n"
	         "\t}\n",
	         x.cgi_root, sock, x.dir);
	CU_ASSERT_FATAL(tn_start(&ng, dir, port, body) == 0);

	get_on(port, "/big-output?100000", "Prefer: respond-async\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_job_state(&x, loc + 12, "succeeded", 10000));
	snprintf(path, sizeof(path), "%s/result", loc);

	get_on(port, path, "", &r);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 100000);
	CU_ASSERT(r.body_len == 100000 && r.body[99999] == 'a' + 99999 % 26);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "application/octet-stream");
	CU_ASSERT(t_header(&r, "ETag", v, sizeof(v)) != NULL);          /* nginx's static file module */
	CU_ASSERT(t_header(&r, "X-Accel-Redirect", v, sizeof(v)) == NULL); /* never shown to the client */
	t_resp_free(&r);

	get_on(port, path, "Range: bytes=26-51\r\n", &r);
	CU_ASSERT_EQUAL(r.status, 206);
	CU_ASSERT_STRING_EQUAL(r.body, "abcdefghijklmnopqrstuvwxyz");
	t_resp_free(&r);

	/* the spool is not reachable from outside */
	snprintf(path, sizeof(path), "/_cgiq_spool/%s.out", loc + 12);
	get_on(port, path, "", &r);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);

	ts_stop(&ng);
	CU_ASSERT_EQUAL(td_stop(&x), 0);
	td_cleanup(&x);
}

static void test_http_front_still_serves(void)
{
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tresp r;
	roundtrip(D.port, req, sizeof(req) - 1, &r, 5000);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	{
		/* test_many_fds: the daemon inherits the limit */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
			rl.rlim_cur = 4096;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (access("/usr/sbin/nginx", X_OK) != 0 || access("/usr/sbin/fcgiwrap", X_OK) != 0) {
		fprintf(stderr, "nginx or fcgiwrap missing (scripts/setup.sh installs them)\n");
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("fcgi", suite_init, suite_clean);
	CU_add_test(s, "hello through nginx", test_hello);
	CU_add_test(s, "environment, Proxy header, no leak", test_env_and_proxy_header);
	CU_add_test(s, "1 MiB POST echoed", test_post_1mib_echo);
	CU_add_test(s, "chunked upload through nginx", test_chunked_upload);
	CU_add_test(s, "sample.pdf through nginx", test_sample_pdf);
	CU_add_test(s, "large output streamed from the spool", test_large_output_streamed);
	CU_add_test(s, "timeout 504, process group gone", test_timeout_504);
	CU_add_test(s, "nginx closing the connection cancels the job", test_nginx_abort_cancels);
	CU_add_test(s, "SCRIPT_FILENAME outside the root: 403, nothing runs", test_script_outside_root);
	CU_add_test(s, "side by side with nginx + fcgiwrap", test_side_by_side_with_fcgiwrap);
	CU_add_test(s, "exit status in the end-request record", test_app_status);
	CU_add_test(s, "bad FastCGI input", test_bad_input);
	CU_add_test(s, "async job submitted and fetched through nginx", test_async_through_nginx);
	CU_add_test(s, "async result before the end: 425", test_async_result_too_early);
	CU_add_test(s, "Prefer: wait over FastCGI: 202 when it runs out", test_prefer_wait);
	CU_add_test(s, "the HTTP front serves at the same time", test_http_front_still_serves);
	CU_add_test(s, "FastCGI with more than 1024 descriptors open", test_many_fds);
	CU_add_test(s, "TCP socket, loopback default, --fastcgi-allow", test_tcp_and_allow_list);
	CU_add_test(s, "socket from spawn-fcgi (fd 0)", test_spawn_fcgi_socket);
	CU_add_test(s, "--on-disconnect detach over FastCGI", test_fcgi_detach_on_disconnect);
	CU_add_test(s, "--fastcgi-accel-redirect", test_accel_redirect);
	CU_add_test(s, "FastCGI read and idle timeouts", test_read_and_idle_timeouts);
	CU_add_test(s, "FastCGI beyond --max-connections: 503", test_max_connections);
	CU_add_test(s, "libfcgi's cgi-fcgi as the client", test_cgi_fcgi_client);
	CU_add_test(s, "nginx keeps its connections (fastcgi_keep_conn)", test_kept_by_nginx);

	return t_cunit_run();
}
