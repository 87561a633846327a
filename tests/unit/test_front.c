/*
 * Unit tests of the front layer's answers (src/front/answer.c): what both
 * fronts send, byte for byte, whatever their wire protocol.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front/front.h"
#include "jobs/jobs.h"
#include "util/util.h"

static const char *body_of(const struct front_answer *a)
{
	return a->body.data ? a->body.data : "";
}

static const char *headers_of(const struct front_answer *a)
{
	return a->headers.data ? a->headers.data : "";
}

static void test_reason(void)
{
	CU_ASSERT_STRING_EQUAL(front_reason(102), "Processing");
	CU_ASSERT_STRING_EQUAL(front_reason(200), "OK");
	CU_ASSERT_STRING_EQUAL(front_reason(202), "Accepted");
	CU_ASSERT_STRING_EQUAL(front_reason(308), "Permanent Redirect");
	CU_ASSERT_STRING_EQUAL(front_reason(404), "Not Found");
	CU_ASSERT_STRING_EQUAL(front_reason(413), "Content Too Large");
	CU_ASSERT_STRING_EQUAL(front_reason(417), "Expectation Failed");
	CU_ASSERT_STRING_EQUAL(front_reason(431), "Request Header Fields Too Large");
	CU_ASSERT_STRING_EQUAL(front_reason(505), "HTTP Version Not Supported");
	CU_ASSERT_STRING_EQUAL(front_reason(508), "Loop Detected");
	CU_ASSERT_STRING_EQUAL(front_reason(299), "Unknown");
	CU_ASSERT_STRING_EQUAL(front_reason(-1), "Unknown");
	static const int known[] = { 100, 101, 102, 200, 201, 202, 203, 204, 205, 206, 300, 301, 302,
	                             303, 304, 305, 306, 307, 308, 400, 401, 402, 403, 404, 405, 406,
	                             407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422,
	                             425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506,
	                             507, 508 };
	for (size_t i = 0; i < UTIL_ARRAY_LEN(known); i++)
		CU_ASSERT(strcmp(front_reason(known[i]), "Unknown") != 0);
}

static void test_error_pages(void)
{
	struct front_answer a;

	front_answer_init(&a, 0);
	front_answer_error(&a, 404, NULL);
	CU_ASSERT_EQUAL(a.status, 404);
	CU_ASSERT_STRING_EQUAL(front_answer_reason(&a), "Not Found");
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\n");
	CU_ASSERT_STRING_EQUAL(body_of(&a), "404 Not Found\n");
	CU_ASSERT_EQUAL(front_answer_body_len(&a), 14);
	CU_ASSERT_EQUAL(a.fd, -1);
	/* when to come back: 503 and 425 say so */
	front_answer_error(&a, 503, NULL);
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n");
	CU_ASSERT_STRING_EQUAL(body_of(&a), "503 Service Unavailable\n");
	front_answer_error(&a, 425, NULL);
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n");
	/* an extra Retry-After is not doubled; other extras come before */
	front_answer_error(&a, 503, "Retry-After: 30\r\n");
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\nRetry-After: 30\r\n");
	front_answer_error(&a, 405, "Allow: GET, HEAD\r\n");
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\nAllow: GET, HEAD\r\n");
	CU_ASSERT_STRING_EQUAL(body_of(&a), "405 Method Not Allowed\n");
	front_answer_free(&a);
	front_answer_free(&a); /* twice is fine */
	CU_ASSERT(front_status_has_body(200) && front_status_has_body(404) && !front_status_has_body(204) &&
	          !front_status_has_body(304) && !front_status_has_body(102));
}

static void test_submit_status_and_wait(void)
{
	CU_ASSERT_EQUAL(front_submit_status(-EAGAIN), 503);
	CU_ASSERT_EQUAL(front_submit_status(-ESHUTDOWN), 503);
	CU_ASSERT_EQUAL(front_submit_status(-ENOSPC), 507);
	CU_ASSERT_EQUAL(front_submit_status(-EIO), 500);
	CU_ASSERT_EQUAL(front_wait_ms(-1, 60000), -1);
	CU_ASSERT_EQUAL(front_wait_ms(0, 60000), 0);
	CU_ASSERT_EQUAL(front_wait_ms(5, 60000), 5000);
	CU_ASSERT_EQUAL(front_wait_ms(3600, 60000), 60000);
}

static void test_api_route(void)
{
	static const char id32[] = "0123456789abcdef0123456789abcdef";
	char path[128], id[UTIL_ID_LEN + 1];
	enum front_api kind;
	struct front_answer a;

	front_answer_init(&a, 0);
	snprintf(path, sizeof(path), "/_cgiq/jobs/%s", id32);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "GET", id, &kind, &a), 0);
	CU_ASSERT_EQUAL(kind, FRONT_API_STATUS);
	CU_ASSERT_STRING_EQUAL(id, id32);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "HEAD", id, &kind, &a), 0);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "DELETE", id, &kind, &a), 0);
	CU_ASSERT_EQUAL(kind, FRONT_API_DELETE);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "POST", id, &kind, &a), 405);
	CU_ASSERT_STRING_EQUAL(headers_of(&a),
	                       "Content-Type: text/plain; charset=utf-8\r\nAllow: GET, HEAD, DELETE\r\n");
	snprintf(path, sizeof(path), "/_cgiq/jobs/%s/result", id32);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "GET", id, &kind, &a), 0);
	CU_ASSERT_EQUAL(kind, FRONT_API_RESULT);
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", path, "DELETE", id, &kind, &a), 405);
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain; charset=utf-8\r\nAllow: GET, HEAD\r\n");
	/* an id of the wrong shape: 404 without a look at the database */
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", "/_cgiq/jobs/../etc", "GET", id, &kind, &a), 404);
	CU_ASSERT_STRING_EQUAL(id, "");
	CU_ASSERT_STRING_EQUAL(body_of(&a), "404 Not Found\n");
	CU_ASSERT_EQUAL(front_api_route("/_cgiq/jobs", "/_cgiq/jobs", "GET", id, &kind, &a), 404);
	front_answer_free(&a);
}

/* A kept result: its stored status line and headers, Range over a 200. */
static void test_answer_stored(void)
{
	char tmpl[] = "/tmp/cgiq-front-XXXXXX";
	int fd = mkstemp(tmpl);
	struct job_stored_result st = {200, NULL, fd, 10, NULL};
	char head[] = "Fine\r\nContent-Type: text/plain\r\n";
	struct front_answer a;

	CU_ASSERT_FATAL(fd >= 0);
	unlink(tmpl);
	CU_ASSERT_FATAL(write(fd, "0123456789", 10) == 10);
	st.head = head;
	front_answer_init(&a, 0);
	CU_ASSERT_EQUAL(front_answer_stored(&a, &st, NULL), 200);
	CU_ASSERT_STRING_EQUAL(front_answer_reason(&a), "Fine");
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\n");
	CU_ASSERT(a.fd == fd && a.off == 0 && a.len == 10 && front_answer_body_len(&a) == 10);
	CU_ASSERT_EQUAL(front_answer_stored(&a, &st, "bytes=2-4"), 206);
	CU_ASSERT_STRING_EQUAL(front_answer_reason(&a), "Partial Content");
	CU_ASSERT_STRING_EQUAL(headers_of(&a),
	                       "Content-Type: text/plain\r\nAccept-Ranges: bytes\r\nContent-Range: bytes 2-4/10\r\n");
	CU_ASSERT(a.off == 2 && a.len == 3);
	CU_ASSERT_EQUAL(front_answer_stored(&a, &st, "bytes=20-"), 416);
	CU_ASSERT_STRING_EQUAL(headers_of(&a),
	                       "Content-Type: text/plain; charset=utf-8\r\nContent-Range: bytes */10\r\n");
	CU_ASSERT_STRING_EQUAL(body_of(&a), "416 Range Not Satisfiable\n");
	CU_ASSERT_EQUAL(a.fd, -1);
	/* a Range over anything but a 200 is ignored */
	st.http_status = 404;
	CU_ASSERT_EQUAL(front_answer_stored(&a, &st, "bytes=2-4"), 404);
	CU_ASSERT_STRING_EQUAL(headers_of(&a), "Content-Type: text/plain\r\n");
	CU_ASSERT(a.off == 0 && a.len == 10);
	/* no body kept: the status's own page */
	st.fd = -1;
	st.http_status = 502;
	CU_ASSERT_EQUAL(front_answer_stored(&a, &st, NULL), 502);
	CU_ASSERT_STRING_EQUAL(body_of(&a), "502 Bad Gateway\n");
	front_answer_free(&a);
	close(fd);
}

static void test_addresses(void)
{
	CU_ASSERT(front_addr_is_local("127.0.0.1:9100"));
	CU_ASSERT(front_addr_is_local("127.1.2.3:0"));
	CU_ASSERT(front_addr_is_local("[::1]:9100"));
	CU_ASSERT(front_addr_is_local("unix:/run/cgiq-admin.sock"));
	CU_ASSERT(!front_addr_is_local("unix:"));
	CU_ASSERT(!front_addr_is_local("0.0.0.0:9100"));
	CU_ASSERT(!front_addr_is_local("192.168.1.5:9100"));
	CU_ASSERT(!front_addr_is_local("[::]:9100"));
	CU_ASSERT(!front_addr_is_local("localhost:9100")); /* names are not resolved */
	CU_ASSERT(!front_addr_is_local("garbage"));

	CU_ASSERT(front_addr_same("127.0.0.1:8080", "127.0.0.1:8080"));
	CU_ASSERT(front_addr_same("0.0.0.0:8080", "127.0.0.1:8080"));
	CU_ASSERT(front_addr_same("127.0.0.1:8080", "0.0.0.0:8080"));
	CU_ASSERT(front_addr_same("[::1]:8080", "[::]:8080"));
	CU_ASSERT(front_addr_same("unix:/a", "unix:/a"));
	CU_ASSERT(!front_addr_same("unix:/a", "unix:/b"));
	CU_ASSERT(!front_addr_same("127.0.0.1:8080", "127.0.0.1:8081"));
	CU_ASSERT(!front_addr_same("127.0.0.1:8080", "127.0.0.2:8080"));
	CU_ASSERT(!front_addr_same("127.0.0.1:0", "127.0.0.1:0")); /* two free ports */
	CU_ASSERT(!front_addr_same("127.0.0.1:8080", "[::1]:8080"));
	CU_ASSERT(!front_addr_same("127.0.0.1:8080", "unix:/a"));
}

static void test_parse_inet(void)
{
	struct sockaddr_storage ss;
	char host[64];
	unsigned port;

	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.1:8080", &ss), 0);
	front_sockaddr_text(&ss, host, sizeof(host), &port);
	CU_ASSERT(ss.ss_family == AF_INET && strcmp(host, "127.0.0.1") == 0 && port == 8080);
	CU_ASSERT_EQUAL(front_parse_inet("[::1]:9000", &ss), 0);
	front_sockaddr_text(&ss, host, sizeof(host), &port);
	CU_ASSERT(ss.ss_family == AF_INET6 && strcmp(host, "::1") == 0 && port == 9000);
	/* a bare port is loopback (fcgiwrap's and spawn-fcgi's habit) */
	CU_ASSERT_EQUAL(front_parse_inet("9000", &ss), 0);
	front_sockaddr_text(&ss, host, sizeof(host), &port);
	CU_ASSERT(ss.ss_family == AF_INET && strcmp(host, "127.0.0.1") == 0 && port == 9000);
	CU_ASSERT(front_addr_same("9000", "127.0.0.1:9000"));
	CU_ASSERT(front_addr_is_local("9000"));
	/* refused: no port, a port out of range, names, v6 without brackets */
	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.1", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.1:", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.1:65536", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet(":8080", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("localhost:8080", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("::1:8080", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("[::1]8080", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("[127.0.0.1]:8080", &ss), -EINVAL);
	CU_ASSERT_EQUAL(front_parse_inet("", &ss), -EINVAL);
}

/* The MIME table: the system's entries, the built-in ones where it has
 * none or cannot be read, extensions case-insensitive. */
static void test_mime(void)
{
	char path[] = "/tmp/cgiq-test-mime-XXXXXX";
	struct front_mime *m;
	int fd = mkstemp(path);
	static const char table[] = "# comment\ntext/x-mine\tmine MIN2\napplication/javascript js\n\n";

	CU_ASSERT_FATAL(fd >= 0 && write(fd, table, sizeof(table) - 1) == (ssize_t)sizeof(table) - 1);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(front_mime_load(path, &m), 0);
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/b.mine"), "text/x-mine");
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/b.MIN2"), "text/x-mine");
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/app.js"), "application/javascript"); /* the system's */
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/site.CSS"), "text/css");             /* built in */
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/noext"), "application/octet-stream");
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a.d/noext"), "application/octet-stream");
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "/a/x.unknown"), "application/octet-stream");
	front_mime_free(m);
	unlink(path);
	CU_ASSERT_EQUAL(front_mime_load("/nonexistent/mime.types", &m), -ENOENT);
	CU_ASSERT_STRING_EQUAL(front_mime_type(m, "x.png"), "image/png");
	front_mime_free(m);
}

static void test_file_chunk(void)
{
	char path[] = "/tmp/cgiq-chunk-XXXXXX";
	static char data[100000], buf[FRONT_FILE_CHUNK];
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	CU_ASSERT_FATAL(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	/* a whole chunk, then the rest, then a range past the end of the file */
	CU_ASSERT_EQUAL(front_file_chunk(fd, 0, sizeof(data), buf, sizeof(buf)), FRONT_FILE_CHUNK);
	CU_ASSERT(memcmp(buf, data, FRONT_FILE_CHUNK) == 0);
	CU_ASSERT_EQUAL(front_file_chunk(fd, FRONT_FILE_CHUNK, sizeof(data), buf, sizeof(buf)), sizeof(data) - FRONT_FILE_CHUNK);
	CU_ASSERT(memcmp(buf, data + FRONT_FILE_CHUNK, sizeof(data) - FRONT_FILE_CHUNK) == 0);
	CU_ASSERT_EQUAL(front_file_chunk(fd, 10, 13, buf, sizeof(buf)), 3);
	CU_ASSERT(memcmp(buf, "klm", 3) == 0);
	CU_ASSERT_EQUAL(front_file_chunk(fd, 12, sizeof(data), buf, 2), 2); /* at most size */
	CU_ASSERT(memcmp(buf, "mn", 2) == 0);
	CU_ASSERT_EQUAL(front_file_chunk(fd, sizeof(data), sizeof(data) + 500, buf, sizeof(buf)), 0);
	close(fd);
	CU_ASSERT_EQUAL(front_file_chunk(fd, 0, 10, buf, sizeof(buf)), -1);
}

static void test_peer_allowed(void)
{
	static const char *const allow[] = {"192.0.2.7", "2001:db8::5", NULL};
	static const char *const none[] = {NULL};
	struct sockaddr_storage ss;
	char text[64];

	/* no list: loopback only, v4-mapped loopback too */
	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.2:1", &ss), 0);
	CU_ASSERT(front_peer_allowed(NULL, &ss, text, sizeof(text)) && strcmp(text, "127.0.0.2") == 0);
	CU_ASSERT(front_peer_allowed(none, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("[::ffff:127.0.0.1]:1", &ss), 0);
	CU_ASSERT(front_peer_allowed(NULL, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("192.0.2.7:1", &ss), 0);
	CU_ASSERT(!front_peer_allowed(NULL, &ss, text, sizeof(text)) && strcmp(text, "192.0.2.7") == 0);
	/* a list: only its addresses, loopback no longer implied */
	CU_ASSERT(front_peer_allowed(allow, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("[::ffff:192.0.2.7]:1", &ss), 0);
	CU_ASSERT(front_peer_allowed(allow, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("[2001:db8::5]:1", &ss), 0);
	CU_ASSERT(front_peer_allowed(allow, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("[2001:db8::6]:1", &ss), 0);
	CU_ASSERT(!front_peer_allowed(allow, &ss, text, sizeof(text)));
	CU_ASSERT_EQUAL(front_parse_inet("127.0.0.1:1", &ss), 0);
	CU_ASSERT(!front_peer_allowed(allow, &ss, text, sizeof(text)));
	/* a unix socket: always */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	CU_ASSERT(front_peer_allowed(allow, &ss, text, sizeof(text)) && strcmp(text, "unix") == 0);
}

static void test_listen_open(void)
{
	char dir[] = "/tmp/cgiq-front-XXXXXX", path[128], addr[160];
	struct front_listen_opts o = {.unix_mode = 0600};
	struct front_socket s, again;
	struct stat st;
	int fd;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	/* port 0: the port the kernel chose is shown */
	CU_ASSERT_EQUAL(front_listen_open("127.0.0.1:0", NULL, &s), 0);
	CU_ASSERT(s.fd >= 0 && !s.is_unix && s.unix_path == NULL);
	CU_ASSERT(strncmp(s.shown, "127.0.0.1:", 10) == 0 && strcmp(s.shown, "127.0.0.1:0") != 0);
	/* the same port again: bind's own error */
	CU_ASSERT_EQUAL(front_listen_open(s.shown, NULL, &again), -EADDRINUSE);
	CU_ASSERT_EQUAL(again.fd, -1);
	/* fd:N adopts a listening socket and shows what it is */
	snprintf(addr, sizeof(addr), "fd:%d", s.fd);
	CU_ASSERT_EQUAL(front_listen_open(addr, NULL, &again), 0);
	CU_ASSERT_EQUAL(again.fd, s.fd);
	CU_ASSERT(strncmp(again.shown, addr, strlen(addr)) == 0 && strstr(again.shown, " (127.0.0.1:") != NULL);
	front_socket_release(&s);
	CU_ASSERT_EQUAL(front_listen_open("fd:2", NULL, &again), -EINVAL);
	fd = open("/dev/null", O_RDONLY);
	snprintf(addr, sizeof(addr), "fd:%d", fd);
	CU_ASSERT_EQUAL(front_listen_open(addr, NULL, &again), -ENOTSOCK);
	close(fd);

	/* unix: a left-over socket file is replaced, the mode applied, the
	 * file removed at release; a regular file in the way is not touched */
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	CU_ASSERT_EQUAL(front_listen_open(addr, &o, &s), 0);
	CU_ASSERT(s.is_unix && strcmp(s.shown, addr) == 0 && strcmp(s.unix_path, path) == 0);
	close(s.fd); /* as a crashed run leaves it: the file stays */
	s.fd = -1;
	free(s.unix_path);
	CU_ASSERT_EQUAL(front_listen_open(addr, &o, &s), 0);
	CU_ASSERT(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
	front_socket_release(&s);
	CU_ASSERT(stat(path, &st) < 0 && errno == ENOENT);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	CU_ASSERT_EQUAL(front_listen_open(addr, &o, &s), -EADDRINUSE);
	CU_ASSERT(stat(path, &st) == 0 && S_ISREG(st.st_mode));
	unlink(path);
	o.unix_owner = "no-such-user-of-cgiq";
	CU_ASSERT_EQUAL(front_listen_open(addr, &o, &s), -ENOENT);
	CU_ASSERT(stat(path, &st) < 0 && errno == ENOENT);
	CU_ASSERT_EQUAL(front_listen_open("unix:", NULL, &s), -EINVAL);
	memset(path, 'x', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(addr, sizeof(addr), "unix:/%s", path);
	CU_ASSERT_EQUAL(front_listen_open(addr, NULL, &s), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(front_listen_open("nonsense", NULL, &s), -EINVAL);
	rmdir(dir);
}


int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("answers", NULL, NULL);
	CU_add_test(s, "reason phrases", test_reason);
	CU_add_test(s, "error pages", test_error_pages);
	CU_add_test(s, "submit errors and Prefer: wait", test_submit_status_and_wait);
	CU_add_test(s, "job API routes", test_api_route);
	CU_add_test(s, "kept results and Range", test_answer_stored);
	CU_add_test(s, "bodies from files, a chunk at a time", test_file_chunk);
	CU_add_test(s, "the MIME table", test_mime);
	s = CU_add_suite("listening", NULL, NULL);
	CU_add_test(s, "admin addresses", test_addresses);
	CU_add_test(s, "inet addresses", test_parse_inet);
	CU_add_test(s, "opening sockets", test_listen_open);
	CU_add_test(s, "TCP peers allowed", test_peer_allowed);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
