/*
 * Unit tests of the FastCGI front's connections (src/fcgi/server.c), on a
 * loop of their own with a real job engine, a real store and real programs:
 * the records a web server sends over a unix socket, and the exact records
 * that come back. One thread: the test writes, then turns the loop while it
 * reads what the front answered, with a deadline.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi/fcgi.h"
#include "jobs/jobs.h"
#include "store/store.h"
#include "util/util.h"

#include "engine_fixture.h"
#include "fcgi_records.h"

static char dir[64], root[PATH_MAX], spool[96], db[96], sock[96];
static uv_loop_t loop;
static struct store *store;
static struct job_engine *engine;
static struct fcgi_front *front;

/* The engine and the front, listening on sock. */
static int open_front(size_t max_params)
{
	struct job_config jc;
	struct fcgi_config fc;

	fixture_job_config(&jc, spool, db);
	jc.max_jobs = 4;
	jc.queue_max = 8;
	jc.job_timeout_ms = 10000;
	memset(&fc, 0, sizeof(fc));
	fc.params.cgi_root = root;
	fc.max_params_bytes = max_params;
	fc.read_timeout_ms = 5000;
	fc.idle_timeout_ms = 5000;
	fc.max_body_bytes = 1 << 20;
	fc.body_mem_bytes = 64 * 1024;
	fc.spool_dir = spool;
	fc.jobs_prefix = "/_cgiq/jobs";
	fc.max_wait_ms = 60000;
	fc.socket_mode = 0600;
	if (uv_loop_init(&loop) < 0 || store_open(db, &store) < 0 || job_engine_open(&loop, store, &jc, &engine) < 0 ||
	    job_engine_start(engine, store) < 0)
		return -1;
	if (fcgi_front_open(&loop, engine, &fc, &front) < 0 || fcgi_front_listen(front, sock) < 0)
		return -1;
	return fcgi_front_start(front);
}

static void close_front(void)
{
	uint64_t until = util_mono_ms() + 10000;

	fcgi_front_close(front);
	job_engine_close(engine, "test over");
	/* every handle closed within 10 s */
	while (uv_run(&loop, UV_RUN_NOWAIT) != 0 && util_mono_ms() < until)
		usleep(1000);
	CU_ASSERT_EQUAL_FATAL(uv_loop_close(&loop), 0);
	store_close(store);
	front = NULL;
	engine = NULL;
	store = NULL;
}

static int client(void)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock + 5);
	CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

/* What came back on a connection. */
struct got {
	struct buf bytes;
	int eof;
};

/* Turns the loop and reads fd until done(g) or the end of the stream, at
 * most ms. Returns done(g) (1 at the end of the stream when done is NULL). */
static int pump(int fd, struct got *g, int (*done)(const struct got *), int64_t ms)
{
	uint64_t until = util_mono_ms() + (uint64_t)ms;
	char b[4096];

	while (!(done && done(g)) && !g->eof && util_mono_ms() < until) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0)
			buf_append(&g->bytes, b, (size_t)n);
		else if (n == 0)
			g->eof = 1;
		else
			uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
	}
	return done ? done(g) : g->eof;
}

/* The records of g, in order: "TYPE/ID/content" joined by '|', with STDOUT
 * contents gathered as text and END_REQUEST as "app:protocol". */
static void records(const struct got *g, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)g->bytes.data;
	size_t pos = 0, n = 0;

	out[0] = '\0';
	while (p && pos + 8 <= g->bytes.len) {
		unsigned type = p[pos + 1], id = (unsigned)p[pos + 2] << 8 | p[pos + 3];
		size_t len = (size_t)p[pos + 4] << 8 | p[pos + 5], pad = p[pos + 6];
		const unsigned char *c = p + pos + 8;
		if (pos + 8 + len + pad > g->bytes.len)
			break;
		if (type == 3 && len == 8)
			n += (size_t)snprintf(out + n, size - n, "%sEND/%u/%u:%u", n ? "|" : "", id,
			                      (unsigned)c[0] << 24 | (unsigned)c[1] << 16 | (unsigned)c[2] << 8 | c[3], c[4]);
		else
			n += (size_t)snprintf(out + n, size - n, "%s%u/%u/%.*s", n ? "|" : "", type, id, (int)len,
			                      (const char *)c);
		if (n >= size)
			break;
		pos += 8 + len + pad;
	}
}

/* A connection with its request buffer and what came back. */
static int talk_open(struct buf *req, struct got *g)
{
	buf_init(req, 1 << 20);
	buf_init(&g->bytes, 1 << 20);
	g->eof = 0;
	return client();
}

static void talk_close(int fd, struct buf *req, struct got *g)
{
	close(fd);
	buf_free(req);
	buf_free(&g->bytes);
}

static int has_end(const struct got *g)
{
	char r[4096];
	records(g, r, sizeof(r));
	return strstr(r, "END/") != NULL;
}

static void begin(struct buf *b, unsigned id, unsigned role, int keep)
{
	unsigned char body[8] = {0, (unsigned char)role, (unsigned char)(keep ? 1 : 0), 0, 0, 0, 0, 0};
	record(b, 1, id, body, 8, 0);
}

/* BEGIN (responder), the parameters of a GET of name, no body. */
static void get(struct buf *b, unsigned id, const char *name, int keep)
{
	char path[PATH_MAX + 64];
	struct buf p;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	buf_init(&p, 1 << 20);
	nv(&p, "SCRIPT_FILENAME", path);
	nv(&p, "SCRIPT_NAME", "/x");
	nv(&p, "REQUEST_METHOD", "GET");
	nv(&p, "REQUEST_URI", "/x");
	nv(&p, "SERVER_PROTOCOL", "HTTP/1.1");
	nv(&p, "REMOTE_ADDR", "127.0.0.1");
	begin(b, id, 1, keep);
	record(b, 4, id, p.data, p.len, 3);
	record(b, 4, id, NULL, 0, 0);
	record(b, 5, id, NULL, 0, 0);
	buf_free(&p);
}

static void send_all(int fd, const struct buf *b)
{
	CU_ASSERT_FATAL(write(fd, b->data, b->len) == (ssize_t)b->len);
}

static void test_answer_and_close(void)
{
	struct buf req;
	struct got g;
	char r[4096];
	int fd;

	fixture_program(root, "hi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi\\n'\n");
	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	fd = talk_open(&req, &g);
	get(&req, 1, "hi", 0);
	send_all(fd, &req);
	/* the answer, then the connection closed (keep_conn 0) */
	CU_ASSERT(pump(fd, &g, NULL, 10000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "6/1/Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n"
	                          "|6/1/hi\n|6/1/|END/1/0:0");

	talk_close(fd, &req, &g);
	close_front();
}

/* The types and content lengths of g's records: "6:49 6:65535 ...". */
static void record_sizes(const struct got *g, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)g->bytes.data;
	size_t pos = 0, n = 0;

	out[0] = '\0';
	while (p && pos + 8 <= g->bytes.len && n < size) {
		size_t len = (size_t)p[pos + 4] << 8 | p[pos + 5];
		n += (size_t)snprintf(out + n, size - n, "%s%u:%zu", n ? " " : "", p[pos + 1], len);
		pos += 8 + len + p[pos + 6];
	}
}

/* An output beyond the engine's memory is streamed from its spool file,
 * each chunk one FCGI_STDOUT record of at most 65535 bytes. */
static void test_spooled_answer(void)
{
	struct buf req;
	struct got g;
	char r[256];
	int fd;

	fixture_program(root, "big", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
	                             "head -c 100000 /dev/zero\n");
	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	fd = talk_open(&req, &g);
	get(&req, 1, "big", 0);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, NULL, 10000));
	record_sizes(&g, r, sizeof(r));
	/* the head, the body in two records, the end of the stream, END_REQUEST */
	CU_ASSERT_STRING_EQUAL(r, "6:68 6:65535 6:34465 6:0 3:8");
	talk_close(fd, &req, &g);
	close_front();
}

static void test_kept_connection(void)
{
	struct buf req;
	struct got g;
	char r[4096];
	int fd;

	fixture_program(root, "hi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhi\\n'\n");
	fixture_program(root, "fail", "#!/bin/sh\nprintf 'Status: 404 Gone Away\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\nexit 3\n");
	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	fd = talk_open(&req, &g);
	/* two requests one after the other on one kept connection; the second's
	 * END carries the program's exit status */
	get(&req, 1, "hi", 1);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 10000));
	buf_reset(&req);
	buf_reset(&g.bytes);
	get(&req, 2, "fail", 1);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 10000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "6/2/Status: 404 Gone Away\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
	                          "|6/2/|END/2/3:0");
	CU_ASSERT_FALSE(g.eof);
	/* a management record between requests: GET_VALUES, then an unknown type */
	buf_reset(&req);
	buf_reset(&g.bytes);
	{
		struct buf q;
		buf_init(&q, 1024);
		nv(&q, "FCGI_MPXS_CONNS", "");
		nv(&q, "FCGI_NO_SUCH_VALUE", "");
		record(&req, 9, 0, q.data, q.len, 0);
		buf_free(&q);
	}
	record(&req, 99, 0, NULL, 0, 0);
	/* and the connection is still there for a third request */
	get(&req, 3, "hi", 1);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 10000));
	/* first GET_VALUES_RESULT with the one variable known, then
	 * UNKNOWN_TYPE naming type 99, then the answer */
	CU_ASSERT(g.bytes.len > 42 &&
	          memcmp(g.bytes.data, "\x01\x0a\x00\x00\x00\x12\x00\x00\x0f\x01" "FCGI_MPXS_CONNS0", 26) == 0 &&
	          memcmp(g.bytes.data + 26, "\x01\x0b\x00\x00\x00\x08\x00\x00\x63\x00\x00\x00\x00\x00\x00\x00", 16) == 0);
	records(&g, r, sizeof(r));
	CU_ASSERT(strstr(r, "|6/3/hi\n|6/3/|END/3/0:0") != NULL);
	CU_ASSERT_FALSE(g.eof);
	talk_close(fd, &req, &g);
	close_front();
}

struct rows {
	unsigned all, cancelled;
};

static int count_row(const struct store_job *j, void *ud)
{
	struct rows *n = ud;
	n->all++;
	n->cancelled += j->state == STORE_CANCELLED;
	return 0;
}

static void test_refusals(void)
{
	struct buf req;
	struct got g;
	char r[4096];
	int fd;

	fixture_program(root, "slow", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec sleep 30\n");
	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	buf_init(&req, 1 << 20);
	buf_init(&g.bytes, 1 << 20);

	/* an unknown role: FCGI_UNKNOWN_ROLE, nothing runs */
	fd = client();
	g.eof = 0;
	begin(&req, 7, 9, 1);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 5000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "END/7/0:3");
	close(fd);

	/* a second request while the first runs: FCGI_CANT_MPX_CONN for it;
	 * then FCGI_ABORT_REQUEST of the first ends it, its job cancelled */
	fd = client();
	buf_reset(&req);
	buf_reset(&g.bytes);
	g.eof = 0;
	get(&req, 1, "slow", 1);
	begin(&req, 2, 1, 1);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 5000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "END/2/0:1");
	buf_reset(&req);
	buf_reset(&g.bytes);
	record(&req, 2, 1, NULL, 0, 0);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, has_end, 5000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "6/1/|END/1/0:0");
	/* the row of the aborted job says cancelled, once its end is recorded */
	{
		struct rows n = {0, 0};
		for (uint64_t until = util_mono_ms() + 5000; n.cancelled == 0 && util_mono_ms() < until; usleep(10000)) {
			uv_run(&loop, UV_RUN_NOWAIT);
			n.all = n.cancelled = 0;
			store_jobs_list(store, NULL, 0, count_row, &n);
		}
		CU_ASSERT_EQUAL(n.cancelled, 1); /* the earlier tests' rows are not */
		CU_ASSERT(fixture_wait_idle(&loop, engine, 5000));
	}
	close(fd);

	/* a record of another version: the connection is closed, nothing said */
	fd = client();
	buf_reset(&req);
	buf_reset(&g.bytes);
	g.eof = 0;
	begin(&req, 1, 1, 0);
	req.data[0] = 2;
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, NULL, 5000));
	CU_ASSERT_EQUAL(g.bytes.len, 0);
	talk_close(fd, &req, &g);
	close_front();
}

static void test_params_cap(void)
{
	struct buf req;
	struct got g;
	unsigned char head[8] = {1, 4, 0, 1, 0x07, 0xd0, 0, 0}; /* PARAMS of 2000 bytes */
	int fd;

	CU_ASSERT_FATAL(open_front(1024) == 0);
	fd = talk_open(&req, &g);
	/* closed as soon as the record header declares more than the cap,
	 * before its content arrives */
	begin(&req, 1, 1, 0);
	buf_append(&req, head, sizeof(head));
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, NULL, 5000));
	CU_ASSERT_EQUAL(g.bytes.len, 0);
	talk_close(fd, &req, &g);
	close_front();
}

/* FastCGI 5.5: an unknown role on a connection without FCGI_KEEP_CONN gets
 * its END_REQUEST, then the connection is closed. */
static void test_unknown_role_closes(void)
{
	struct buf req;
	struct got g;
	char r[4096];
	int fd;

	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	fd = talk_open(&req, &g);
	begin(&req, 7, 9, 0);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, NULL, 5000)); /* to the end of the stream */
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "END/7/0:3");
	CU_ASSERT_EQUAL(g.eof, 1);
	talk_close(fd, &req, &g);
	close_front();
}

/* A pair whose declared value is beyond the cap is refused as soon as its
 * lengths arrive (its record is small, its name and value never come): the
 * connection is closed, nothing answered, well before the read timeout. */
static void test_params_pair_over_cap(void)
{
	static const unsigned char pair[] = {4, 0x80, 0x0f, 0x42, 0x40, 'P', 'A', 'T', 'H'}; /* value: 1,000,000 */
	struct buf req;
	struct got g;
	uint64_t t0;
	int fd;

	CU_ASSERT_FATAL(open_front(1024) == 0);
	fd = talk_open(&req, &g);
	begin(&req, 1, 1, 0);
	record(&req, 4, 1, pair, sizeof(pair), 0);
	send_all(fd, &req);
	t0 = util_mono_ms();
	CU_ASSERT(pump(fd, &g, NULL, 5000));
	CU_ASSERT(util_mono_ms() - t0 < 2000); /* the read timeout is 5 s */
	CU_ASSERT_EQUAL(g.bytes.len, 0);
	talk_close(fd, &req, &g);
	close_front();
}

/* FCGI_STDIN before the end of FCGI_PARAMS: 400, nothing runs, the
 * connection closed. */
static void test_stdin_before_params_end(void)
{
	char path[PATH_MAX + 64], r[4096];
	struct buf req, p;
	struct got g;
	int fd;

	fixture_program(root, "never", "#!/bin/sh\ntouch \"$0.ran\"\nprintf 'Content-Type: text/plain\\r\\n\\r\\nran'\n");
	CU_ASSERT_FATAL(open_front(64 * 1024) == 0);
	fd = talk_open(&req, &g);
	snprintf(path, sizeof(path), "%s/never", root);
	buf_init(&p, 1 << 20);
	nv(&p, "SCRIPT_FILENAME", path);
	nv(&p, "REQUEST_METHOD", "POST");
	begin(&req, 1, 1, 1);
	record(&req, 4, 1, p.data, p.len, 0);
	record(&req, 5, 1, "abc", 3, 0); /* STDIN, the PARAMS stream still open */
	record(&req, 4, 1, NULL, 0, 0);
	record(&req, 5, 1, NULL, 0, 0);
	send_all(fd, &req);
	CU_ASSERT(pump(fd, &g, NULL, 5000));
	records(&g, r, sizeof(r));
	CU_ASSERT_STRING_EQUAL(r, "6/1/Status: 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                          "Content-Length: 16\r\n\r\n|6/1/400 Bad Request\n|6/1/|END/1/1:0");
	CU_ASSERT_EQUAL(g.eof, 1);
	snprintf(path, sizeof(path), "%s/never.ran", root);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);
	buf_free(&p);
	talk_close(fd, &req, &g);
	close_front();
}

static int suite_init(void)
{
	if (fixture_dirs("fcgi", dir, root, spool, db) < 0)
		return -1;
	snprintf(sock, sizeof(sock), "unix:%s/f.sock", dir);
	return 0;
}

static int suite_clean(void) { return fixture_dirs_remove(dir); }

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("fastcgi connections", suite_init, suite_clean);
	CU_add_test(s, "an answer, then the connection closed", test_answer_and_close);
	CU_add_test(s, "a spooled answer, one record per chunk", test_spooled_answer);
	CU_add_test(s, "a kept connection and management records", test_kept_connection);
	CU_add_test(s, "unknown role, multiplexing, abort, bad version", test_refusals);
	CU_add_test(s, "parameters over the cap", test_params_cap);
	CU_add_test(s, "an unknown role without FCGI_KEEP_CONN: closed", test_unknown_role_closes);
	CU_add_test(s, "one pair declared over the cap: closed at once", test_params_pair_over_cap);
	CU_add_test(s, "STDIN before the end of PARAMS: 400", test_stdin_before_params_end);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
