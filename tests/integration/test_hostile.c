/*
 * Hostile HTTP input against the real daemon: request smuggling attempts,
 * invalid chunked framing, NUL and invalid UTF-8 in paths and headers,
 * slowloris, and 10,000 idle connections. Every refusal is checked for its
 * exact status, for the connection being closed, and for its one log line.
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;

/* Header timeout of the main daemon: slowloris connections get 408 after it. */
#define HEADER_TIMEOUT_MS 3000

static const char *const MAIN_ARGS[] = {
	"--processing", "never",
	"--header-timeout", "3s", "--body-timeout", "3s",
	"--max-header-bytes", "8k", "--max-uri-bytes", "1k", "--max-body-bytes", "16M",
	"--max-connections", "1000",
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

/* ------------------------------------------------------------------ */
/* helpers */


/* Open descriptors of a process (entries of /proc/PID/fd). */
static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long log_size(const struct tdaemon *d)
{
	struct stat st;
	return stat(d->log, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines of the log written since offset that contain a and b (b may be NULL). */
static int log_lines(const struct tdaemon *d, long offset, const char *a, const char *b, char *last,
                     size_t last_size)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(d->log, "r");

	if (f == NULL)
		return -1;
	fseek(f, offset, SEEK_SET);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, a) && (b == NULL || strstr(line, b))) {
			n++;
			if (last)
				snprintf(last, last_size, "%s", line);
		}
	}
	fclose(f);
	return n;
}

/* "127.0.0.1:PORT:" of our end of fd: how the daemon names this peer. */
static void peer_name(int fd, char *out, size_t size)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	out[0] = '\0';
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		snprintf(out, size, "127.0.0.1:%u:", ntohs(sa.sin_port));
}

/* GET /hello on a new connection: the exact bytes of the program's answer. */
static void expect_hello(int port)
{
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/7.88.1\r\n\r\n";
	struct tresp r;
	char v[64];
	int fd = t_connect(port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, req, sizeof(req) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "", "text/plain");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "", "14");
	CU_ASSERT_EQUAL(r.body_len, 14);
	CU_ASSERT(r.body != NULL && memcmp(r.body, "Hello, world!\n", 14) == 0);
	t_resp_free(&r);
	close(fd);
}

/*
 * Sends req on a new connection; the answer must be status with the body
 * "<status> <reason>\n" and, when closes, "Connection: close" and the
 * connection closed after it. When log_has is not NULL, exactly one log line
 * names this connection and contains log_has.
 */
static void expect_status(const char *what, const char *req, size_t len, int status, int closes,
                          const char *log_has);

static void expect_refused(const char *what, const char *req, size_t len, int status, const char *log_has)
{
	expect_status(what, req, len, status, 1, log_has);
}

static void expect_status(const char *what, const char *req, size_t len, int status, int closes,
                          const char *log_has)
{
	struct tresp r;
	char v[64], peer[64], line[4096] = "";
	long off = log_size(&D);
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	peer_name(fd, peer, sizeof(peer));
	CU_ASSERT_FATAL(t_send(fd, req, len) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, status);
	if (r.status != status)
		fprintf(stderr, "%s: expected %d, got %d\n", what, status, r.status);
	snprintf(v, sizeof(v), "%d ", status);
	CU_ASSERT(r.body != NULL && strncmp(r.body, v, strlen(v)) == 0);
	if (closes) {
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Connection", v, sizeof(v)) ? v : "", "close");
		CU_ASSERT(t_wait_closed(fd, 5000));
	}
	if (log_has != NULL) {
		/* The line is written before the response: no wait needed. */
		int n = log_lines(&D, off, peer, log_has, line, sizeof(line));
		CU_ASSERT_EQUAL(n, 1);
		if (n != 1)
			fprintf(stderr, "%s: %d log lines with \"%s\" \"%s\"\n", what, n, peer, log_has);
	}
	t_resp_free(&r);
	close(fd);
}

#define REFUSED(what, lit, status) expect_refused(what, lit, sizeof(lit) - 1, status, "bad request")

/* ------------------------------------------------------------------ */
/* request smuggling (RFC 9112 6.1, 6.3) */

/* An HTTP/0.9 request line ("GET /" and its line end, no version) gets its
 * 505 at once, not when the header timeout (10 s) runs out; the connection
 * closes after it. */
static void test_http09_at_once(void)
{
	uint64_t t0 = t_now_ms();

	REFUSED("HTTP/0.9 request line", "GET /hello\r\n", 505);
	CU_ASSERT(t_now_ms() - t0 < 2000);
	t0 = t_now_ms();
	REFUSED("HTTP/0.9 request line, bare LF", "GET /hello\n", 505);
	CU_ASSERT(t_now_ms() - t0 < 2000);
}

static void test_smuggling_framing(void)
{
	REFUSED("CL+TE",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
	        "0\r\n\r\nGET /env HTTP/1.1\r\nHost: x\r\n\r\n", 400);
	REFUSED("TE+CL",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n"
	        "0\r\n\r\n", 400);
	REFUSED("duplicate CL, equal",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400);
	REFUSED("duplicate CL, different",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 3\r\n\r\nhello", 400);
	REFUSED("CL list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400);
	REFUSED("CL sign", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400);
	REFUSED("CL negative", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
	REFUSED("TE gzip", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
	REFUSED("TE gzip, chunked",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
	REFUSED("TE chunked, identity",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 501);
	REFUSED("TE twice",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
	        "0\r\n\r\n", 400);
	REFUSED("TE in HTTP/1.0",
	        "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	REFUSED("TE with space before the colon",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400);
	REFUSED("Host with space before the colon", "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400);
	REFUSED("CL with space before the colon",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400);
	/* RFC 9112 5.2: a server that does not unfold obs-fold rejects it with 400. */
	REFUSED("obs-fold (SP)", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400);
	REFUSED("obs-fold (HTAB) of TE",
	        "POST /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
	/* RFC 9112 2.2: a bare CR is invalid. */
	REFUSED("bare CR", "GET /hello HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", 400);
	REFUSED("NUL in a value", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400);
	REFUSED("NUL in a name", "GET /hello HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n", 400);
	REFUSED("two Hosts", "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400);
	/* Nothing was run for any of them, and the daemon still serves. */
	expect_hello(D.port);
}

/*
 * RFC 9112 2.2: a recipient MAY take a bare LF for the end of a line in the
 * start-line and the header fields. cgiq does (as nginx and Apache do): the
 * head is read the same whatever ends its lines, CR never counts as data,
 * and the answer is the normal one. Chunked framing stays strict (below).
 */
static void test_bare_lf_head_accepted(void)
{
	static const char req[] = "GET /hello HTTP/1.1\nHost: x\nUser-Agent: curl/7.88.1\n\n";
	struct tresp r;
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, req, sizeof(req) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CU_ASSERT_EQUAL(r.body_len, 14);
	CU_ASSERT(r.body != NULL && memcmp(r.body, "Hello, world!\n", 14) == 0);
	t_resp_free(&r);
	close(fd);
}

#define CHUNKED_HEAD "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"

static void test_invalid_chunks(void)
{
	REFUSED("chunk size hex overflow", CHUNKED_HEAD "1ffffffffffffffff\r\nx\r\n0\r\n\r\n", 400);
	REFUSED("chunk size negative", CHUNKED_HEAD "-1\r\nx\r\n0\r\n\r\n", 400);
	REFUSED("chunk size garbage", CHUNKED_HEAD "zz\r\nx\r\n0\r\n\r\n", 400);
	REFUSED("chunk size empty", CHUNKED_HEAD "\r\nx\r\n0\r\n\r\n", 400);
	REFUSED("chunk size 0x prefix", CHUNKED_HEAD "0x3\r\nabc\r\n0\r\n\r\n", 400);
	/* The library read a byte over 0x7f in a chunk-size as the digit 0. */
	REFUSED("chunk size with a byte over 0x7f", CHUNKED_HEAD "1\x80\r\nx\r\n0\r\n\r\n", 400);
	/* The library as Debian builds it took any two bytes for this CRLF. */
	REFUSED("no CRLF after chunk data", CHUNKED_HEAD "3\r\nabcXY0\r\n\r\n", 400);
	REFUSED("data longer than its chunk size", CHUNKED_HEAD "3\r\nabcd\r\n0\r\n\r\n", 400);
	REFUSED("chunk size line with a bare LF", CHUNKED_HEAD "3\nabc\r\n0\r\n\r\n", 400);
	REFUSED("chunked body ending in a bare LF", CHUNKED_HEAD "3\r\nabc\r\n0\r\n\n", 400);
	REFUSED("bare CR in a chunk extension", CHUNKED_HEAD "3;a\rb\r\nabc\r\n0\r\n\r\n", 400);
	/* Valid hex, beyond --max-body-bytes (16M): refused before it is read. */
	REFUSED("chunk larger than the body limit", CHUNKED_HEAD "1000001\r\nx", 413);
	expect_hello(D.port);
}

/* RFC 9112 7.1.1: chunk extensions are limited like other parts of a
 * message; the library skips them without any limit. */
static void test_chunk_extension_bomb(void)
{
	size_t head = strlen(CHUNKED_HEAD), n = head;
	char *req = malloc(head + 16384);

	CU_ASSERT_FATAL(req != NULL);
	memcpy(req, CHUNKED_HEAD, head);
	memcpy(req + n, "1", 1);
	n++;
	while (n < head + 12000) {
		memcpy(req + n, ";a=b", 4);
		n += 4;
	}
	memcpy(req + n, "\r\nx\r\n0\r\n\r\n", 10);
	n += 10;
	expect_refused("chunk extension bomb", req, n, 400, "bad request");
	free(req);

	/* A few extensions, well under the limit, are fine. */
	static const char ok[] = CHUNKED_HEAD "5;name=value;x\r\nhello\r\n0;last\r\n\r\n";
	struct tresp r;
	int fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, ok, sizeof(ok) - 1) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 5);
	CU_ASSERT(r.body != NULL && memcmp(r.body, "hello", 5) == 0);
	t_resp_free(&r);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* NUL and invalid UTF-8 in paths and headers */

static void test_nul_and_utf8(void)
{
	char peer[64], line[4096] = "";
	struct tresp r;
	long off;
	int fd;

	/* A raw NUL anywhere in the head: 400, and the log line shows it escaped. */
	expect_refused("raw NUL in the path", "GET /hel\0lo HTTP/1.1\r\nHost: x\r\n\r\n", 33, 400,
	               "\\x00");
	/* %00 decodes to NUL: no file name can hold it. */
	/* The request itself is well-formed: the connection stays usable. */
	expect_status("%00 in the path", "GET /hello%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", 39, 400, 0,
	              "/hello%00.txt");
	/* Invalid UTF-8, encoded or raw: no such program, 404, escaped in the log. */
	off = log_size(&D);
	fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	peer_name(fd, peer, sizeof(peer));
	CU_ASSERT_FATAL(t_send_str(fd, "GET /\xff\xfe\xc3(/x HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_EQUAL(log_lines(&D, off, peer, "/\\xff\\xfe\\xc3(/x", line, sizeof(line)), 1);
	/* A 404 keeps the connection: the next request on it is served. */
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /%ff%c3%28 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	t_resp_free(&r);
	close(fd);

	/* A header name is a token: a byte over 0x7f in it is 400. */
	expect_refused("invalid UTF-8 in a header name",
	               "GET /hello HTTP/1.1\r\nHost: x\r\nX-\xff\xfe: 1\r\n\r\n", 40, 400, "\\xff\\xfe");
	/* A value may carry obs-text (RFC 9110 5.5): it reaches the program
	 * byte for byte. */
	fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /env HTTP/1.1\r\nHost: x\r\nX-Utf8: a\xff\xfe\xc3(b%00\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body != NULL && strstr(r.body, "\nHTTP_X_UTF8=a\xff\xfe\xc3(b%00\n") != NULL);
	t_resp_free(&r);
	close(fd);
	expect_hello(D.port);
}

/* ------------------------------------------------------------------ */
/* slowloris */

#define SLOW_CONNS 200
/* The daemon's RSS may grow by at most this while the slow connections are
 * open (each holds a parser and a few bytes; ASan adds redzones). */
#define SLOW_RSS_GROWTH_MAX_KB (4 * 1024)

static void test_slowloris(void)
{
	static const char head[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
	int fds[SLOW_CONNS];
	long rss0 = t_proc_kb(D.pid, "VmRSS"), rss_max = rss0;
	long off = log_size(&D);
	uint64_t t0;
	int rounds = 0, got408 = 0, closed = 0;

	CU_ASSERT_FATAL(rss0 > 0);
	for (int i = 0; i < SLOW_CONNS; i++) {
		fds[i] = t_connect(D.port);
		CU_ASSERT_FATAL(fds[i] >= 0);
	}
	t0 = t_now_ms();
	/* One header byte per connection about every second, for a bit less
	 * than the header timeout; normal requests are served in between. */
	while (t_now_ms() - t0 < HEADER_TIMEOUT_MS - 600) {
		uint64_t round_start = t_now_ms();
		for (int i = 0; i < SLOW_CONNS; i++)
			CU_ASSERT(t_send(fds[i], head + rounds, 1) == 0);
		rounds++;
		expect_hello(D.port);
		expect_hello(D.port);
		long rss = t_proc_kb(D.pid, "VmRSS");
		if (rss > rss_max)
			rss_max = rss;
		/* Pacing of the attack itself (one byte a second), not a wait for
		 * an event. */
		while (t_now_ms() - round_start < 1000 && t_now_ms() - t0 < HEADER_TIMEOUT_MS - 600)
			usleep(20000);
	}
	CU_ASSERT(rounds >= 2);
	printf("\n  slowloris: %d connections, %d bytes each; RSS %ld kB -> at most %ld kB (bound +%d kB)\n",
	       SLOW_CONNS, rounds, rss0, rss_max, SLOW_RSS_GROWTH_MAX_KB);
	CU_ASSERT(rss_max - rss0 <= SLOW_RSS_GROWTH_MAX_KB);

	/* The header timeout runs from the first byte: 408, then closed. */
	for (int i = 0; i < SLOW_CONNS; i++) {
		struct tresp r;
		char v[32];
		if (t_read_response(fds[i], &r, 0, HEADER_TIMEOUT_MS + 5000) == 0) {
			if (r.status == 408 && t_header(&r, "Connection", v, sizeof(v)) && strcmp(v, "close") == 0)
				got408++;
			t_resp_free(&r);
		}
		if (t_wait_closed(fds[i], 5000))
			closed++;
		close(fds[i]);
	}
	CU_ASSERT(t_now_ms() - t0 >= HEADER_TIMEOUT_MS - 100);
	CU_ASSERT_EQUAL(got408, SLOW_CONNS);
	CU_ASSERT_EQUAL(closed, SLOW_CONNS);
	/* One line each, naming the slow part. */
	CU_ASSERT_EQUAL(log_lines(&D, off, "request head not complete in time, 408", NULL, NULL, 0), SLOW_CONNS);
	expect_hello(D.port);
}

/* ------------------------------------------------------------------ */
/* 10,000 idle connections (their own daemon: a long header timeout) */

#define IDLE_CONNS 10000
/* Per idle connection in the daemon (a struct conn, its parser, two timers,
 * a socket); an ASan build is measured, so the bound has room for its
 * redzones. */
#define IDLE_RSS_PER_CONN_MAX_BYTES (8 * 1024)

struct fd_wait {
	pid_t pid;
	int want;
	int above; /* 1: wait for count >= want; 0: for count <= want */
};

static int fds_reached(void *ud)
{
	struct fd_wait *w = ud;
	int n = fd_count(w->pid);
	return w->above ? n >= w->want : (n >= 0 && n <= w->want);
}

static void test_idle_connections(void)
{
	static const char *const args[] = {
		"--processing", "never", "--header-timeout", "2m", "--idle-timeout", "2m",
		"--max-connections", "10500", NULL,
	};
	struct tdaemon d;
	struct rlimit rl;
	int *fds = calloc(IDLE_CONNS, sizeof(int));
	int opened = 0, base;
	long rss0, rss1;
	uint64_t t0;

	CU_ASSERT_FATAL(fds != NULL);
	/* Both ends need 10,000 descriptors; the daemon inherits this limit. */
	CU_ASSERT_FATAL(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < IDLE_CONNS + 512)
		rl.rlim_max = IDLE_CONNS + 512; /* needs root (CI runs as root) */
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		fprintf(stderr, "cannot raise RLIMIT_NOFILE to %llu: %s\n", (unsigned long long)rl.rlim_max,
		        strerror(errno));
		CU_FAIL_FATAL("RLIMIT_NOFILE too low for 10,000 connections");
	}
	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	base = fd_count(d.pid);
	expect_hello(d.port);
	/* Settled: the daemon has seen that connection close too. */
	struct fd_wait w = { d.pid, base, 0 };
	CU_ASSERT(t_wait_for(fds_reached, &w, 5000));
	base = fd_count(d.pid);
	rss0 = t_proc_kb(d.pid, "VmRSS");
	CU_ASSERT_FATAL(base > 0 && rss0 > 0);

	t0 = t_now_ms();
	for (int i = 0; i < IDLE_CONNS; i++) {
		fds[i] = t_connect(d.port);
		if (fds[i] < 0) {
			fprintf(stderr, "connection %d: %s\n", i, strerror(errno));
			break;
		}
		opened++;
	}
	CU_ASSERT_EQUAL(opened, IDLE_CONNS);
	/* All accepted: the daemon holds one descriptor per connection. */
	w = (struct fd_wait){ d.pid, base + opened, 1 };
	CU_ASSERT(t_wait_for(fds_reached, &w, 30000));
	printf("\n  idle: %d connections open and accepted in %llu ms\n", opened,
	       (unsigned long long)(t_now_ms() - t0));
	expect_hello(d.port);
	rss1 = t_proc_kb(d.pid, "VmRSS");
	if (opened > 0) {
		long per = (rss1 - rss0) * 1024 / opened;
		printf("  idle: RSS %ld kB -> %ld kB: %ld bytes per idle connection (bound %d)\n", rss0, rss1, per,
		       IDLE_RSS_PER_CONN_MAX_BYTES);
		CU_ASSERT(per <= IDLE_RSS_PER_CONN_MAX_BYTES);
	}
	/* None was answered or closed by the daemon while idle. */
	int answered = 0;
	for (int i = 0; i < opened; i += 97) {
		char c;
		if (recv(fds[i], &c, 1, MSG_DONTWAIT) != -1 || (errno != EAGAIN && errno != EWOULDBLOCK))
			answered++;
	}
	CU_ASSERT_EQUAL(answered, 0);

	for (int i = 0; i < opened; i++)
		close(fds[i]);
	w = (struct fd_wait){ d.pid, base, 0 };
	CU_ASSERT(t_wait_for(fds_reached, &w, 30000));
	expect_hello(d.port);
	expect_hello(d.port);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
	free(fds);
}

/*
 * Beyond --max-connections, a client that already sent its request (and
 * more) gets the whole 503, not a reset: cgiq shuts down writing and drains
 * what the client sent before it closes. 30 probes, each with two requests
 * written at once; the log counts the connections served, not those being
 * refused.
 */
static void test_cap_503_whole(void)
{
	static const char *const extra[] = { "--max-connections", "2", NULL };
	static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tdaemon d;
	int held[2], whole = 0;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	/* two connections served and kept alive: the cap is reached */
	for (int i = 0; i < 2; i++) {
		struct tresp r;
		held[i] = t_connect(d.port);
		CU_ASSERT_FATAL(held[i] >= 0);
		CU_ASSERT_FATAL(t_send_str(held[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
		CU_ASSERT_FATAL(t_read_response(held[i], &r, 0, 5000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		t_resp_free(&r);
	}
	for (int i = 0; i < 30; i++) {
		struct tresp r;
		char v[32];
		int fd = t_connect(d.port);
		if (fd < 0)
			continue;
		if (t_send(fd, req, sizeof(req) - 1) == 0 && t_read_response(fd, &r, 0, 5000) == 0) {
			whole += r.status == 503 && t_header(&r, "Content-Length", v, sizeof(v)) != NULL &&
			         strtoul(v, NULL, 10) == r.body_len && r.body_len > 0;
			t_resp_free(&r);
		}
		close(fd);
	}
	CU_ASSERT_EQUAL(whole, 30);
	CU_ASSERT(td_log_has(&d, ": refused, 2 connections open (--max-connections 2)"));
	for (int i = 0; i < 2; i++)
		close(held[i]);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("hostile", suite_init, suite_clean);
	CU_add_test(s, "request smuggling attempts", test_smuggling_framing);
	CU_add_test(s, "an HTTP/0.9 request line: 505 at once", test_http09_at_once);
	CU_add_test(s, "bare LF line endings in the head", test_bare_lf_head_accepted);
	CU_add_test(s, "invalid chunked framing", test_invalid_chunks);
	CU_add_test(s, "chunk extension bomb", test_chunk_extension_bomb);
	CU_add_test(s, "NUL and invalid UTF-8 in paths and headers", test_nul_and_utf8);
	CU_add_test(s, "slowloris", test_slowloris);
	CU_add_test(s, "--max-connections: the 503 arrives whole", test_cap_503_whole);
	s = CU_add_suite("idle", NULL, NULL);
	CU_add_test(s, "10,000 idle connections", test_idle_connections);

	return t_cunit_run();
}
