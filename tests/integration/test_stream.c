/*
 * Integration tests of streamed output (--stream) on the HTTP front: each
 * line a program writes reaches the client within 100 ms, chunked to
 * HTTP/1.1 and until the close to HTTP/1.0; a stream that cannot finish
 * well (the program killed, its deadline, --max-output) ends without its
 * last chunk and the connection closes; the row says what went out; the
 * connection carries the next request after a complete stream; HEAD is
 * answered whole; a slow reader holds the program, not cgiq's memory.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;
static struct tserver NG;
static char dir[64];
/* where the tests send their requests: cgiq's HTTP port, or nginx's in
 * front of cgiq's FastCGI socket */
static int port;
static int admin_port;

/* A stream counter of /metrics for the front the tests talk to now. */
static long long stream_metric(const char *name)
{
	char sample[128];

	snprintf(sample, sizeof(sample), "%s{front=\"%s\"} ", name, port == D.port ? "http" : "fastcgi");
	return t_metric(admin_port, sample);
}

/* ---------------- the wire, read as it comes ---------------- */

/* What a connection delivered: the bytes, and when each arrived. */
struct got {
	char *data;
	size_t len, cap;
	int64_t *at_us; /* wall clock of the recv that brought byte i */
	int closed;     /* the server closed the connection */
};

static void got_free(struct got *g)
{
	free(g->data);
	free(g->at_us);
	memset(g, 0, sizeof(*g));
}

/* Reads what comes until stop(g) is true, the peer closes, or timeout_ms. */
static void got_read(int fd, struct got *g, int (*stop)(const struct got *g), int timeout_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)timeout_ms;
	char buf[65536];

	while (!(stop && stop(g)) && !g->closed && t_now_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, (int)(end - t_now_ms())) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			g->closed = 1;
			break;
		}
		if (g->len + (size_t)n + 1 > g->cap) {
			g->cap = (g->len + (size_t)n + 1) * 2;
			g->data = realloc(g->data, g->cap);
			g->at_us = realloc(g->at_us, g->cap * sizeof(*g->at_us));
		}
		memcpy(g->data + g->len, buf, (size_t)n);
		for (ssize_t i = 0; i < n; i++)
			g->at_us[g->len + (size_t)i] = t_wall_us();
		g->len += (size_t)n;
		g->data[g->len] = '\0';
	}
}

/* Where the final answer's head ends (after any 102s), or NULL. */
static const char *final_body(const struct got *g)
{
	const char *p = g->data;

	while (p && strncmp(p, "HTTP/1.1 1", 10) == 0) {
		p = strstr(p, "\r\n\r\n");
		p = p ? p + 4 : NULL;
	}
	if (p == NULL || (p = strstr(p, "\r\n\r\n")) == NULL)
		return NULL;
	return p + 4;
}

/* A chunked body (RFC 9112 7.1) from at: the data into *out (malloc'd),
 * its arrival per byte into *at (when not NULL). 1 when the last chunk
 * came, 0 when the bytes end before it, -1 when malformed. *used: bytes
 * of the encoding read. */
static int dechunk(const struct got *g, const char *at, char **out, size_t *out_len, int64_t **when,
                   size_t *used)
{
	size_t pos = (size_t)(at - g->data), n = 0;

	*out = malloc(g->len + 1);
	if (when)
		*when = malloc((g->len + 1) * sizeof(**when));
	*out_len = 0;
	for (;;) {
		char *end;
		unsigned long size;
		const char *crlf = pos < g->len ? strstr(g->data + pos, "\r\n") : NULL;
		if (crlf == NULL)
			return 0;
		size = strtoul(g->data + pos, &end, 16);
		if (end != crlf || end == g->data + pos)
			return -1;
		pos = (size_t)(crlf - g->data) + 2;
		if (size == 0) {
			if (g->len < pos + 2)
				return 0;
			if (memcmp(g->data + pos, "\r\n", 2) != 0)
				return -1;
			*used = pos + 2 - (size_t)(at - g->data);
			return 1;
		}
		if (g->len < pos + size + 2)
			return 0;
		memcpy(*out + n, g->data + pos, size);
		if (when)
			for (size_t i = 0; i < size; i++)
				(*when)[n + i] = g->at_us[pos + i];
		n += size;
		*out_len = n;
		(*out)[n] = '\0';
		pos += size;
		if (memcmp(g->data + pos, "\r\n", 2) != 0)
			return -1;
		pos += 2;
	}
}

static int got_last_chunk(const struct got *g)
{
	const char *b = g->data ? final_body(g) : NULL;
	char *out;
	size_t len, used;
	int r = b ? dechunk(g, b, &out, &len, NULL, &used) : 0;

	if (b)
		free(out);
	return r != 0;
}

/* stream-stalls' one line has come. */
static int got_started(const struct got *g) { return g->data && strstr(g->data, "started\n") != NULL; }

/* The head of the final answer (status line and fields), copied. */
static void final_head(const struct got *g, char *out, size_t size)
{
	const char *b = final_body(g), *h = b;

	out[0] = '\0';
	if (b == NULL)
		return;
	h = g->data;
	while (strncmp(h, "HTTP/1.1 1", 10) == 0)
		h = strstr(h, "\r\n\r\n") + 4;
	snprintf(out, size, "%.*s", (int)(b - h), h);
}

/* "state http_status bytes_out reason" of the newest job for uri, waited
 * for (up to 5 s) until it starts with want: rows are written a moment
 * after the answer. */
static const char *row_of(const char *uri, const char *want, char *out, size_t size)
{
	char q[512];

	snprintf(q, sizeof(q),
	         "sqlite3 '%s' \"SELECT state || ' ' || coalesce(http_status, '-') || ' ' || coalesce(bytes_out, '-') "
	         "|| ' ' || coalesce(reason, '-') FROM jobs WHERE uri = '%s' ORDER BY rowid DESC LIMIT 1\"",
	         D.db, uri);
	for (int i = 0; i < 100; i++) {
		if (t_run(q, out, size) == 0 && strncmp(out, want, strlen(want)) == 0)
			break;
		usleep(50000);
	}
	return out;
}

static int send_req(const char *req)
{
	int fd = t_connect(port);

	if (fd >= 0 && t_send_str(fd, req) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* req on a new connection, everything until the server closes it (15 s
 * at most), and the final answer's head. */
static void exchange(const char *req, struct got *g, char *head, size_t head_size)
{
	int fd = send_req(req);

	CU_ASSERT_FATAL(fd >= 0);
	got_read(fd, g, NULL, 15000);
	close(fd);
	CU_ASSERT(g->closed);
	final_head(g, head, head_size);
}

/* ---------------- the suite ---------------- */

/* One cgiq, its HTTP port and its FastCGI socket, and nginx in front of
 * that socket as a streaming site has it: fastcgi_buffering off. */
static int suite_init(void)
{
	char sock[128], addr[160], body[2048], admin[64];
	const char *args[] = {"--stream", "/stream-*", "--stream", "/big-output", "--job-timeout", "3s",
	                      "--max-output", "1M", "--kill-grace", "1s", "--fastcgi", addr,
	                      "--admin-listen", admin, NULL};
	int ng_port;

	admin_port = t_free_port();
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);

	snprintf(dir, sizeof(dir), "/tmp/cgiq-stream-XXXXXX");
	if (mkdtemp(dir) == NULL || chmod(dir, 0755) < 0)
		return -1;
	snprintf(sock, sizeof(sock), "%s/cgiq.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	if (td_start(&D, NULL, args) < 0 || !td_wait_log(&D, "fastcgi on ", 10000))
		return -1;
	ng_port = t_free_port();
	/* as examples/nginx/cgiq.conf has it: kept connections, no buffering */
	snprintf(body, sizeof(body),
	         "\tupstream cgiq { server unix:%s; keepalive 4; }\n"
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%d;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation / {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_keep_conn on;\n"
	         "\t\t\tfastcgi_buffering off;\n"
	         "\t\t\tfastcgi_pass cgiq;\n"
	         "\t\t}\n"
	         "\t}\n",
	         sock, ng_port, D.cgi_root);
	return tn_start(&NG, dir, ng_port, body);
}

static int suite_clean(void)
{
	char cmd[128];

	ts_stop(&NG);
	td_stop(&D);
	td_cleanup(&D);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
	return 0;
}

static void on_http(void) { port = D.port; }
static void on_nginx(void) { port = NG.port; }

/* Each line within 100 ms of being written, chunked; the row; then the
 * next request on the same connection. */
static void lines_case(const char *target, const char *x_stream)
{
	char req[256], head[4096], v[128], id[64], *body, *line;
	struct got g = {0};
	size_t len, used;
	int64_t *when;
	int fd, lines = 0;
	struct tresp r;

	long long streamed0 = stream_metric("cgiq_streamed_responses_total");
	long long cut0 = stream_metric("cgiq_streams_cut_total");

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
	fd = send_req(req);
	CU_ASSERT_FATAL(fd >= 0);
	got_read(fd, &g, got_last_chunk, 10000);
	CU_ASSERT_EQUAL(stream_metric("cgiq_streamed_responses_total") - streamed0, 1);
	CU_ASSERT_EQUAL(stream_metric("cgiq_streams_cut_total") - cut0, 0);
	final_head(&g, head, sizeof(head));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "HTTP/1.1 200 OK\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nTransfer-Encoding: chunked\r\n"));
	snprintf(v, sizeof(v), "\r\nX-Stream: %s\r\n", x_stream);
	CU_ASSERT_PTR_NOT_NULL(strstr(head, v));
	CU_ASSERT_PTR_NULL(strstr(head, "Content-Length"));
	CU_ASSERT_PTR_NULL(strstr(head, "Connection: close"));
	CU_ASSERT_FATAL(final_body(&g) != NULL);
	CU_ASSERT_EQUAL_FATAL(dechunk(&g, final_body(&g), &body, &len, &when, &used), 1);
	/* nothing after the last chunk */
	CU_ASSERT_EQUAL((size_t)(final_body(&g) - g.data) + used, g.len);
	for (line = body; line < body + len; lines++) {
		char *nl = strchr(line, '\n');
		int i;
		long long written;
		CU_ASSERT_FATAL(nl != NULL);
		CU_ASSERT_EQUAL_FATAL(sscanf(line, "line %d %lld", &i, &written), 2);
		CU_ASSERT_EQUAL(i, lines);
		/* the line's last byte arrived within 100 ms of the program writing it */
		CU_ASSERT(when[nl - body] - written < 100000);
		if (when[nl - body] - written >= 100000)
			fprintf(stderr, "\n  line %d arrived %lld us after it was written\n", i,
			        (long long)(when[nl - body] - written));
		line = nl + 1;
	}
	CU_ASSERT_EQUAL(lines, 5);
	/* the lines came over a second, not at once at the end */
	CU_ASSERT(when[len - 1] - when[0] >= 700000);

	/* the same connection carries the next request */
	CU_ASSERT_FATAL(t_send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Hello"));
	t_resp_free(&r);
	close(fd);

	snprintf(v, sizeof(v), "succeeded 200 %zu -\n", len);
	CU_ASSERT_STRING_EQUAL(row_of(target, v, id, sizeof(id)), v);
	free(body);
	free(when);
	got_free(&g);
}

static void test_lines_http(void)
{
	on_http();
	lines_case("/stream-lines?5", "yes");
}

static void test_lines_nginx(void)
{
	on_nginx();
	lines_case("/stream-lines?5", "yes");
}

/* A non-parsed-header program: its status line and fields checked, then
 * the same stream; its Content-Length and Connection are not passed on. */
static void test_nph_http(void)
{
	on_http();
	lines_case("/nph-lines?5", "nph");
}

static void test_nph_nginx(void)
{
	on_nginx();
	lines_case("/nph-lines?5", "nph");
}

/* A head that is not an NPH program's, or frames its own body: 502, with
 * none of its bytes; the log says why. */
static void nph_refused_case(const char *target, const char *log_has)
{
	struct tresp r;

	CU_ASSERT_FATAL(t_get(port, target, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	CU_ASSERT_PTR_NULL(strstr(r.body, "SECRET"));
	CU_ASSERT(td_wait_log(&D, log_has, 5000));
	t_resp_free(&r);
}

static void test_nph_refused(void)
{
	on_http();
	nph_refused_case("/nph-not-a-status-line", "malformed NPH head, first bytes \"Content-Type: text/plain");
	nph_refused_case("/nph-chunked", "NPH head with Transfer-Encoding (cgiq frames the body itself)");
	on_nginx();
	nph_refused_case("/nph-chunked", "NPH head with Transfer-Encoding");
}

/* Perl's CGI.pm: -nph => 1 (its status line, its Server and Date), and
 * its usual header block streamed: three lines, as they are written. */
static void cgipm_case(const char *target, const char *status_line)
{
	char req[256], head[4096], *body;
	struct got g = {0};
	size_t len, used;
	int64_t *when;

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target);
	exchange(req, &g, head, sizeof(head));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, status_line));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nX-made-by: CGI.pm\r\n")); /* as CGI.pm spells it */
	CU_ASSERT_PTR_NULL(strstr(head, "cmdline")); /* CGI.pm's Server field: the gateway's own goes */
	CU_ASSERT_FATAL(final_body(&g) != NULL);
	CU_ASSERT_EQUAL_FATAL(dechunk(&g, final_body(&g), &body, &len, &when, &used), 1);
	CU_ASSERT_STRING_EQUAL(body, "cgi.pm line 0\ncgi.pm line 1\ncgi.pm line 2\n");
	/* as written: 400 ms between the first line and the last */
	CU_ASSERT(len > 0 && when[len - 1] - when[0] >= 300000);
	free(body);
	free(when);
	got_free(&g);
}

static void test_cgipm_http(void)
{
	on_http();
	cgipm_case("/nph-cgipm", "HTTP/1.1 201 Created\r\n");
	cgipm_case("/stream-cgipm", "HTTP/1.1 200 OK\r\n");
}

static void test_cgipm_nginx(void)
{
	on_nginx();
	cgipm_case("/nph-cgipm", "HTTP/1.1 201 Created\r\n");
	cgipm_case("/stream-cgipm", "HTTP/1.1 200 OK\r\n");
}

/* HTTP/1.0: no chunks, the body until the close. */
static void test_http10(void)
{
	struct got g = {0};
	char head[4096];
	const char *b;
	int i = 0;

	on_http();
	exchange("GET /stream-lines?3 HTTP/1.0\r\n\r\n", &g, head, sizeof(head));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "HTTP/1.1 200 OK\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nConnection: close\r\n"));
	CU_ASSERT_PTR_NULL(strstr(head, "Transfer-Encoding"));
	CU_ASSERT_PTR_NULL(strstr(head, "Content-Length"));
	b = final_body(&g);
	CU_ASSERT_FATAL(b != NULL);
	for (; *b; i++) {
		int k;
		long long t;
		CU_ASSERT_EQUAL_FATAL(sscanf(b, "line %d %lld\n", &k, &t), 2);
		CU_ASSERT_EQUAL(k, i);
		b = strchr(b, '\n') + 1;
	}
	CU_ASSERT_EQUAL(i, 3);
	got_free(&g);
}

/* A cut: what was written, no last chunk, the connection closed; the row. */
static void cut_case(const char *target, const char *want_body, const char *state, const char *reason_has)
{
	char req[256], head[4096], out[512], *body;
	struct got g = {0};
	size_t len, used;

	long long cut0 = stream_metric("cgiq_streams_cut_total");

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
	exchange(req, &g, head, sizeof(head));
	CU_ASSERT_EQUAL(stream_metric("cgiq_streams_cut_total") - cut0, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "HTTP/1.1 200 OK\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nTransfer-Encoding: chunked\r\n"));
	CU_ASSERT_FATAL(final_body(&g) != NULL);
	/* the bytes end before the last chunk */
	CU_ASSERT_EQUAL(dechunk(&g, final_body(&g), &body, &len, NULL, &used), 0);
	if (want_body)
		CU_ASSERT_STRING_EQUAL(body, want_body);
	row_of(target, state, out, sizeof(out));
	CU_ASSERT_EQUAL(strncmp(out, state, strlen(state)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, reason_has));
	{
		char bytes[64];
		snprintf(bytes, sizeof(bytes), " 200 %zu ", len);
		if (want_body)
			CU_ASSERT_PTR_NOT_NULL(strstr(out, bytes));
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "the stream was cut after"));
	free(body);
	got_free(&g);
}

static void test_killed(void)
{
	char cmd[512], out[256];

	cut_case("/stream-dies", "first\nsecond\n", "failed", "killed by signal 9");
	/* as real clients see it: curl's "transfer closed with outstanding
	 * read data remaining" (exit status 18), Python's IncompleteRead */
	snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null http://127.0.0.1:%d/stream-dies; echo $?", port);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "18\n");
	snprintf(cmd, sizeof(cmd),
	         "python3 -c 'import http.client as h\nc = h.HTTPConnection(\"127.0.0.1\", %d, timeout=10)\n"
	         "c.request(\"GET\", \"/stream-dies\")\nr = c.getresponse()\ntry:\n    r.read()\n    print(\"complete\")\n"
	         "except h.IncompleteRead as e:\n    print(\"IncompleteRead\", e.partial)'",
	         port);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "IncompleteRead b'first\\nsecond\\n'\n");
}

static void test_deadline(void) { cut_case("/stream-stalls", "started\n", "timed_out", "job timeout"); }

static void test_killed_http(void) { on_http(); test_killed(); }
static void test_killed_nginx(void) { on_nginx(); test_killed(); }
static void test_deadline_http(void) { on_http(); test_deadline(); }
static void test_deadline_nginx(void) { on_nginx(); test_deadline(); }

static void test_max_output(void)
{
	on_http();
	/* 2 MB against --max-output 1M: cut after at most 1 MiB */
	cut_case("/big-output?2000000", NULL, "failed", "output limit exceeded");
}

/* The client leaves mid-stream: the job is cancelled (--on-disconnect's
 * default), its process group killed, the row says so. */
static void test_client_gone(void)
{
	struct got g = {0};
	char out[512];
	int fd;

	on_http();
	fd = send_req("GET /stream-stalls HTTP/1.1\r\nHost: x\r\n\r\n");
	CU_ASSERT_FATAL(fd >= 0);
	got_read(fd, &g, got_started, 10000);
	CU_ASSERT_PTR_NOT_NULL(strstr(g.data ? g.data : "", "started\n"));
	close(fd);
	row_of("/stream-stalls", "cancelled", out, sizeof(out));
	CU_ASSERT_EQUAL(strncmp(out, "cancelled", 9), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "client closed the connection"));
	if (strncmp(out, "cancelled", 9) != 0)
		fprintf(stderr, "\n  row: %s", out);
	got_free(&g);
}

/* Prefer: respond-async: the 202 at once, the output kept whole as for
 * any program, and fetched with its length. */
static void test_async(void)
{
	struct tresp r;
	char loc[256], path[320], id[64];
	int fd;

	on_http();
	fd = send_req("GET /stream-lines?3 HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\nConnection: close\r\n\r\n");
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	close(fd);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	snprintf(id, sizeof(id), "%s", strrchr(loc, '/') + 1);
	CU_ASSERT_FATAL(t_wait_job_state(&D, id, "succeeded", 10000));
	snprintf(path, sizeof(path), "%s/result", loc);
	CU_ASSERT_FATAL(t_get(D.port, path, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(t_header(&r, "Content-Length", loc, sizeof(loc)));
	CU_ASSERT_PTR_NULL(t_header(&r, "Transfer-Encoding", loc, sizeof(loc)));
	CU_ASSERT(strncmp(r.body, "line 0 ", 7) == 0 && strstr(r.body, "\nline 2 ") != NULL);
	t_resp_free(&r);
}

/* HEAD: no body to stream; answered whole, with its length. */
static void test_head(void)
{
	struct tresp r;
	char v[64];
	int fd;

	on_http();
	fd = send_req("HEAD /stream-lines?2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 1, 10000) == 0);
	close(fd);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NULL(t_header(&r, "Transfer-Encoding", v, sizeof(v)));
	CU_ASSERT_PTR_NOT_NULL(t_header(&r, "Content-Length", v, sizeof(v)));
	t_resp_free(&r);
}

/* ---------------- a slow reader ---------------- */

#define BIG_BYTES (100u * 1024 * 1024)
/* cgiq's resident memory while the client does not read: FRONT_STREAM_QUEUE_MAX
 * queued and one pipe read more (128 KiB) is the design; the rest is
 * allowance for the sanitizers' allocator. */
#define SLOW_RSS_GROWTH_MAX_KB 1024

/* A chunked body read as it comes, checked against big-output's pattern
 * (byte i is 'a' + i % 26) without keeping it. */
struct dechunker {
	int state;          /* 0 size line, 1 data, 2 CRLF after data, 3 CRLF after the last chunk, 4 done, -1 bad */
	unsigned long left; /* data bytes left in the chunk */
	char line[32];
	size_t line_len;
	uint64_t total;     /* data bytes so far */
};

static void dechunker_feed(struct dechunker *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n && d->state >= 0 && d->state < 4; i++) {
		char ch = p[i];
		switch (d->state) {
		case 0:
			if (ch == '\n') {
				char *end;
				d->line[d->line_len] = '\0';
				d->left = strtoul(d->line, &end, 16);
				if (d->line_len < 2 || end != d->line + d->line_len - 1 || *end != '\r')
					d->state = -1;
				else
					d->state = d->left ? 1 : 3;
				d->line_len = 0;
			} else if (d->line_len + 1 < sizeof(d->line)) {
				d->line[d->line_len++] = ch;
			} else {
				d->state = -1;
			}
			break;
		case 1:
			if (ch != (char)('a' + d->total % 26))
				d->state = -1;
			d->total++;
			if (--d->left == 0 && d->state == 1)
				d->state = 2;
			break;
		case 2:
		case 3:
			if (ch == '\n')
				d->state = d->state == 2 ? 0 : 4;
			else if (ch != '\r')
				d->state = -1;
			break;
		}
	}
}

/* 100 MiB from a program that writes as fast as it can, to a client that
 * reads nothing for two seconds: cgiq holds the program (it waits on its
 * pipe), not the output; then every byte arrives, in order. */
static void test_slow_reader(void)
{
	const char *args[] = {"--stream", "/big-output", NULL};
	static const char req[] = "GET /big-output?104857600 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct tdaemon b;
	struct dechunker dc = {0};
	char buf[65536], *body;
	long rss0, rss_max;
	size_t head_len = 0;
	int fd;
	uint64_t t0;

	CU_ASSERT_FATAL(td_start(&b, NULL, args) == 0);
	/* warm up: one small streamed answer */
	fd = t_connect(b.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /big-output?300000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 0);
	CU_ASSERT(t_wait_closed(fd, 10000));
	close(fd);
	rss0 = rss_max = t_proc_kb(b.pid, "VmRSS");
	CU_ASSERT_FATAL(rss0 > 0);

	fd = t_connect(b.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, req) == 0);
	/* Two seconds of not reading: the socket buffers fill, then the pipe,
	 * then the program waits. (Pacing of the client, not a wait for an
	 * event: the samples are what is checked.) */
	t0 = t_now_ms();
	while (t_now_ms() - t0 < 2000) {
		long rss = t_proc_kb(b.pid, "VmRSS");
		if (rss > rss_max)
			rss_max = rss;
		usleep(50000);
	}
	/* then everything, as fast as it comes */
	t0 = t_now_ms();
	while (t_now_ms() - t0 < 120000) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (head_len == 0 && (body = memmem(buf, (size_t)n, "\r\n\r\n", 4)) != NULL) {
			head_len = (size_t)(body - buf) + 4;
			CU_ASSERT(memmem(buf, head_len, "Transfer-Encoding: chunked\r\n", 28) != NULL);
			dechunker_feed(&dc, body + 4, (size_t)n - head_len);
		} else if (head_len) {
			dechunker_feed(&dc, buf, (size_t)n);
		}
	}
	close(fd);
	printf("\n  slow reader: %u bytes streamed; cgiq RSS %ld kB -> at most %ld kB while the client did not read "
	       "(bound +%d kB)\n",
	       (unsigned)dc.total, rss0, rss_max, SLOW_RSS_GROWTH_MAX_KB);
	CU_ASSERT(rss_max - rss0 <= SLOW_RSS_GROWTH_MAX_KB);
	CU_ASSERT_EQUAL(dc.state, 4);
	CU_ASSERT_EQUAL(dc.total, BIG_BYTES);
	td_stop(&b);
	td_cleanup(&b);
}

/* --stream and --coalesce on one pattern, or one block with both: refused. */
static void test_conflict(void)
{
	char cmd[1024], out[1024];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
	         "%s --check-config --cgi-root %s --stream '/r/*' --coalesce '/r/*' --db %s/x.db 2>&1; echo rc=$?",
	         CGIQ_BIN, D.cgi_root, D.dir);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "--stream /r/* and --coalesce /r/*: a streamed program's body goes to one "
	                                   "client as it is written, its requests cannot share a job\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=2"));
	snprintf(cmd, sizeof(cmd), "%s/both.conf", D.dir);
	f = fopen(cmd, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("script /r/* {\n    stream = yes\n    coalesce = yes\n}\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s --check-config --cgi-root %s --config %s/both.conf --db %s/x.db 2>&1; echo rc=$?",
	         CGIQ_BIN, D.cgi_root, D.dir, D.dir);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "both.conf: script /r/*: stream and coalesce: a streamed program's body"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=2"));
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("streaming, HTTP front and FastCGI behind nginx", suite_init, suite_clean);
	if (s == NULL || !CU_add_test(s, "HTTP: lines as they are written, then keep-alive", test_lines_http) ||
	    !CU_add_test(s, "nginx: lines as they are written, then keep-alive", test_lines_nginx) ||
	    !CU_add_test(s, "HTTP: an NPH program, then keep-alive", test_nph_http) ||
	    !CU_add_test(s, "nginx: an NPH program, then keep-alive", test_nph_nginx) ||
	    !CU_add_test(s, "NPH heads refused: 502, none of their bytes", test_nph_refused) ||
	    !CU_add_test(s, "HTTP: CGI.pm, -nph and streamed", test_cgipm_http) ||
	    !CU_add_test(s, "nginx: CGI.pm, -nph and streamed", test_cgipm_nginx) ||
	    !CU_add_test(s, "HTTP/1.0: until the close", test_http10) ||
	    !CU_add_test(s, "HTTP: killed mid-stream: cut, the row", test_killed_http) ||
	    !CU_add_test(s, "nginx: killed mid-stream: cut, the row", test_killed_nginx) ||
	    !CU_add_test(s, "HTTP: the deadline mid-stream: cut, timed_out", test_deadline_http) ||
	    !CU_add_test(s, "nginx: the deadline mid-stream: cut, timed_out", test_deadline_nginx) ||
	    !CU_add_test(s, "--max-output mid-stream: cut", test_max_output) ||
	    !CU_add_test(s, "HEAD is answered whole", test_head) ||
	    !CU_add_test(s, "Prefer: respond-async keeps the output whole", test_async) ||
	    !CU_add_test(s, "the client leaves mid-stream: cancelled", test_client_gone) ||
	    !CU_add_test(s, "a slow reader holds the program, not the output", test_slow_reader) ||
	    !CU_add_test(s, "--stream with --coalesce is refused", test_conflict)) {
		CU_cleanup_registry();
		return 1;
	}
	return t_cunit_run();
}
