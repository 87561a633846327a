/*
 * Integration tests of whole applications: PHP programs run by Debian's
 * php-cgi through --interpreter, on the HTTP front and behind nginx on the
 * FastCGI front; a script block's own interpreter; the start refusing an
 * interpreter that cannot run; index programs; static files beside them.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

#define PHP_CGI "/usr/bin/php-cgi"

static struct tdaemon D;
static struct tserver NG;
static char dir[64], conf_path[128];
static int ng_port, admin_port;

/* The interpreter for .php everywhere; under /plain/ a block's own, cat,
 * for .txt files that are whole CGI responses. A directory's program is its
 * index.cgi, else its index.php. */
static const char CONF[] =
	"interpreter = .php=" PHP_CGI "\n"
	"index = index.cgi,index.php\n"
	"static = assets\n"
	"static = /app/*\n" /* the .php files below match too: they still run */
	"script /plain/* {\n"
	"    interpreter = .txt=/bin/cat\n"
	"}\n";

/* What the PHP programs say about their request, one line each. */
static const char INFO_PHP[] =
	"<?php\n"
	"header('X-App: info');\n"
	"foreach (['REQUEST_METHOD', 'REQUEST_URI', 'SCRIPT_NAME', 'PATH_INFO', 'PATH_TRANSLATED',\n"
	"          'SCRIPT_FILENAME', 'REDIRECT_STATUS'] as $k)\n"
	"    echo $k, '=', $_SERVER[$k] ?? '-', \"\\n\";\n"
	"echo 'GET=', json_encode($_GET), \"\\n\";\n"
	"echo 'POST=', json_encode($_POST), \"\\n\";\n"
	"echo 'cwd=', getcwd(), \"\\n\";\n";
static const char GONE_PHP[] =
	"<?php\n"
	"http_response_code(404);\n"
	"header('X-App: gone');\n"
	"echo \"no such page\\n\";\n";
static const char UPLOAD_PHP[] =
	"<?php\n"
	"$f = $_FILES['f'];\n"
	"echo $f['name'], ' ', $f['size'], ' ', md5_file($f['tmp_name']), ' ', $_POST['note'], \"\\n\";\n";
static const char PAGE_TXT[] = "Content-Type: text/plain\n\nhello from cat\n";
static const char STYLE_CSS[] = "body { color: #123456 }\n";
/* executable: a program, whatever --static says; its source never goes out */
static const char PROG_CSS[] = "#!/bin/sh\nprintf 'Content-Type: text/css\\n\\nmade by a program\\n'\n";

/* 300,000 bytes of JavaScript comments: more than a chunk of the wire. */
static const char *big_js(void)
{
	static char text[300001];
	for (size_t i = 0; i < 300000; i++)
		text[i] = i % 60 == 59 ? '\n' : i % 60 < 2 ? '/' : (char)('a' + i % 26);
	text[300000] = '\0';
	return text;
}

/* A local redirect (RFC 3875 6.2.2) to the path in its query. */
static const char REDIR_CGI[] = "#!/bin/sh\necho \"Location: $QUERY_STRING\"\necho\n";

static const char INDEX_PHP[] =
	"<?php\n"
	"echo 'index ', $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['REQUEST_URI'], \"\\n\";\n";

static int put(const char *rel, const char *text, mode_t mode)
{
	char path[640];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", D.cgi_root, rel);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 && chmod(path, mode) == 0 ? 0 : -1;
}

static int suite_init(void)
{
	char sock[128], addr[160], body[2048], cmd[1024], admin[64];
	const char *args[] = {"--config", conf_path, "--fastcgi", addr, "--processing", "never",
	                      "--admin-listen", admin, NULL};
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/cgiq-apps-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/cgiq.conf", dir);
	if ((f = fopen(conf_path, "w")) == NULL)
		return -1;
	fputs(CONF, f);
	fclose(f);
	snprintf(sock, sizeof(sock), "%s/cgiq.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	admin_port = t_free_port();
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	if (td_start(&D, NULL, args) < 0)
		return -1;
	/* Readable, not executable: an interpreter reads them. */
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && mkdir -p plain app noindex badindex .git && "
	         "printf '<?php echo \"SECRET outside\";\\n' > '%s/outside.php' && ln -s '%s/outside.php' app/link.php",
	         D.cgi_root, dir, dir);
	if (t_run(cmd, NULL, 0) != 0 || put("app/info.php", INFO_PHP, 0644) < 0 ||
	    put("app/index.php", INDEX_PHP, 0644) < 0 || put("noindex/data.bin", "data\n", 0644) < 0 ||
	    put("app/style.css", STYLE_CSS, 0644) < 0 || put("app/prog.css", PROG_CSS, 0755) < 0 ||
	    put("app/big.js", big_js(), 0644) < 0 || put("app/redir.cgi", REDIR_CGI, 0755) < 0 ||
	    put("badindex/index.cgi", "#!/bin/sh\n", 0644) < 0 ||
	    put(".htpasswd", "admin:SECRET-HASH\n", 0644) < 0 || put(".git/config", "[core] SECRET\n", 0644) < 0 ||
	    put("app/gone.php", GONE_PHP, 0644) < 0 || put("app/upload.php", UPLOAD_PHP, 0644) < 0 ||
	    put("plain/page.txt", PAGE_TXT, 0644) < 0 || put("page.txt", PAGE_TXT, 0644) < 0)
		return -1;
	if (!td_wait_log(&D, "fastcgi on ", 10000))
		return -1;
	/* nginx as a PHP site has it: the path split after .php, so that
	 * SCRIPT_FILENAME names the file and PATH_INFO the rest. */
	ng_port = t_free_port();
	snprintf(body, sizeof(body),
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%d;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation ~ [^/]\\.php(/|$) {\n"
	         "\t\t\tfastcgi_split_path_info ^(.+?\\.php)(/.*)$;\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_param PATH_INFO $fastcgi_path_info;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t\tlocation / {\n" /* the rest too, directories included: cgiq finds their index */
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t}\n"
	         "\t}\n",
	         ng_port, D.cgi_root, sock, sock);
	return tn_start(&NG, dir, ng_port, body);
}

static int suite_clean(void)
{
	char cmd[128];
	int st;

	ts_stop(&NG);
	st = td_stop(&D);
	td_cleanup(&D);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
	return st == 0 ? 0 : -1;
}

/* What info.php answers for path on port (a front), as one string. */
static void expect_info(int port, const char *target, const char *want_body, const char *front)
{
	struct tresp r;
	char v[64];

	CU_ASSERT_FATAL(t_get(port, target, &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "X-App", v, sizeof(v)) ? v : "-", "info");
	if (r.body == NULL || strcmp(r.body, want_body) != 0)
		fprintf(stderr, "\n%s: got:\n%s\nwant:\n%s\n", front, r.body ? r.body : "(none)", want_body);
	CU_ASSERT(r.body && strcmp(r.body, want_body) == 0);
	t_resp_free(&r);
}

/* What info.php says for /app/info.php/a/b?x=1&y=%C3%A9: the file is
 * SCRIPT_FILENAME (not the interpreter), PATH_INFO the rest, PATH_TRANSLATED
 * that rest under the root; it runs in its directory. */
static void want_info_ab(char *want, size_t size)
{
	snprintf(want, size,
	         "REQUEST_METHOD=GET\n"
	         "REQUEST_URI=/app/info.php/a/b?x=1&y=%%C3%%A9\n"
	         "SCRIPT_NAME=/app/info.php\n"
	         "PATH_INFO=/a/b\n"
	         "PATH_TRANSLATED=%s/a/b\n"
	         "SCRIPT_FILENAME=%s/app/info.php\n"
	         "REDIRECT_STATUS=200\n"
	         "GET={\"x\":\"1\",\"y\":\"\\u00e9\"}\n"
	         "POST=[]\n"
	         "cwd=%s/app\n",
	         D.cgi_root, D.cgi_root, D.cgi_root);
}

/* The RFC 3875 variables as PHP reads them, on the HTTP front. */
static void test_http_get(void)
{
	char want[2048];

	want_info_ab(want, sizeof(want));
	expect_info(D.port, "/app/info.php/a/b?x=1&y=%C3%A9", want, "HTTP");
	/* no PATH_INFO: set empty (RFC 3875 4.1.5), and none to translate */
	snprintf(want, sizeof(want),
	         "REQUEST_METHOD=GET\n"
	         "REQUEST_URI=/app/info.php\n"
	         "SCRIPT_NAME=/app/info.php\n"
	         "PATH_INFO=\n"
	         "PATH_TRANSLATED=-\n"
	         "SCRIPT_FILENAME=%s/app/info.php\n"
	         "REDIRECT_STATUS=200\n"
	         "GET=[]\n"
	         "POST=[]\n"
	         "cwd=%s/app\n",
	         D.cgi_root, D.cgi_root);
	expect_info(D.port, "/app/info.php", want, "HTTP");
}

/* The same program behind nginx, which sends its own SCRIPT_NAME and
 * PATH_INFO (split after .php) and REDIRECT_STATUS (fastcgi_params): the
 * same variables. */
static void test_fastcgi_get(void)
{
	char want[2048];

	want_info_ab(want, sizeof(want));
	expect_info(ng_port, "/app/info.php/a/b?x=1&y=%C3%A9", want, "FastCGI");
}

/* A form POST, on both fronts: $_POST from the body cgiq passes on stdin. */
static void test_post_form(void)
{
	const int ports[] = {D.port, ng_port};
	char cmd[512], out[2048];

	for (size_t i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
		         "curl -s -d 'name=Bob+Smith&n=2' 'http://127.0.0.1:%d/app/info.php' | grep -E '^(REQUEST_METHOD|POST)='",
		         ports[i]);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
		CU_ASSERT_STRING_EQUAL(out, "REQUEST_METHOD=POST\nPOST={\"name\":\"Bob Smith\",\"n\":\"2\"}\n");
	}
}

/* A file upload (multipart/form-data, 200,000 bytes): PHP gets the file
 * whole, on both fronts. */
static void test_upload(void)
{
	const int ports[] = {D.port, ng_port};
	char path[128], cmd[768], out[512], want[256], sum[64];
	char *data = t_pattern(200000);
	FILE *f;

	snprintf(path, sizeof(path), "%s/upload.bin", dir);
	CU_ASSERT_FATAL((f = fopen(path, "w")) != NULL);
	fwrite(data, 1, 200000, f);
	fclose(f);
	free(data);
	snprintf(cmd, sizeof(cmd), "md5sum '%s' | cut -c1-32", path);
	CU_ASSERT_FATAL(t_run(cmd, sum, sizeof(sum)) == 0);
	sum[32] = '\0';
	snprintf(want, sizeof(want), "upload.bin 200000 %s a note\n", sum);
	for (size_t i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "curl -s -F 'f=@%s' -F 'note=a note' 'http://127.0.0.1:%d/app/upload.php'",
		         path, ports[i]);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
		CU_ASSERT_STRING_EQUAL(out, want);
	}
}

/* http_response_code() and header() reach the client as the status and
 * headers, on both fronts; the source of a mapped file never does. */
static void test_status_and_headers(void)
{
	const int ports[] = {D.port, ng_port};
	struct tresp r;
	char v[64];

	for (size_t i = 0; i < 2; i++) {
		CU_ASSERT_FATAL(t_get(ports[i], "/app/gone.php", &r, 20000) == 0);
		CU_ASSERT_EQUAL(r.status, 404);
		CU_ASSERT_STRING_EQUAL(t_header(&r, "X-App", v, sizeof(v)) ? v : "-", "gone");
		CU_ASSERT(r.body && strcmp(r.body, "no such page\n") == 0);
		t_resp_free(&r);
	}
	CU_ASSERT_FATAL(t_get(D.port, "/app/gone.php", &r, 20000) == 0);
	CU_ASSERT(r.body && strstr(r.body, "<?php") == NULL);
	t_resp_free(&r);
}

/* A block's interpreter holds below its pattern only: /plain/page.txt is
 * run by cat; the same file at the top is no program, and static (assets
 * take *.txt): sent as it is. */
static void test_block_interpreter(void)
{
	struct tresp r;

	CU_ASSERT_FATAL(t_get(D.port, "/plain/page.txt", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, "hello from cat\n") == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_get(D.port, "/page.txt", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, PAGE_TXT) == 0);
	t_resp_free(&r);
}

/* A directory runs its index program, on both fronts; without its slash it
 * is redirected (301, the query kept), never to another site; a directory
 * without an index is 404, one whose index cannot run 403. */
static void test_index(void)
{
	const int ports[] = {D.port, ng_port};
	static const struct {
		const char *target;
		int status;
		const char *location; /* or the body */
	} cases[] = {
		{"/app/", 200, "index /app/index.php /app/\n"},
		{"/app/?x=1", 200, "index /app/index.php /app/?x=1\n"},
		{"/app?x=1&y=2", 301, "/app/?x=1&y=2"},
		{"/app", 301, "/app/"},
		{"/noindex/", 404, NULL},
		{"/noindex", 404, NULL},
		{"/badindex/", 403, NULL},
	};
	struct tresp r;
	char v[256];

	for (size_t f = 0; f < 2; f++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			CU_ASSERT_FATAL(t_get(ports[f], cases[i].target, &r, 20000) == 0);
			if (r.status != cases[i].status)
				fprintf(stderr, "\n%s on %s: %d, want %d\n", cases[i].target, f ? "FastCGI" : "HTTP",
				        r.status, cases[i].status);
			CU_ASSERT_EQUAL(r.status, cases[i].status);
			if (cases[i].status == 301) {
				CU_ASSERT_STRING_EQUAL(t_header(&r, "Location", v, sizeof(v)) ? v : "-", cases[i].location);
			} else if (cases[i].status == 200) {
				if (r.body == NULL || strcmp(r.body, cases[i].location) != 0)
					fprintf(stderr, "\n%s on %s: %s\n", cases[i].target, f ? "FastCGI" : "HTTP", r.body ? r.body : "-");
				CU_ASSERT(r.body && strcmp(r.body, cases[i].location) == 0);
			}
			t_resp_free(&r);
		}
	}
	/* "//app" is not a reference to a host named app */
	CU_ASSERT_FATAL(t_get(D.port, "//app", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 301);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Location", v, sizeof(v)) ? v : "-", "/app/");
	t_resp_free(&r);
	CU_ASSERT(td_log_has(&D, "\"GET /noindex/\" 404: no program for this path: a directory without an index "
	                         "program"));
}

/* Paths that must never run a program nor send a file's bytes: 403 or 404
 * on the HTTP front, exactly. Behind nginx, whichever nginx or cgiq gives,
 * never the bytes; nginx resolves a ".." inside the root itself (its
 * normalised URI names /app/info.php, which then runs: normalised). */
static void test_bad_paths(void)
{
	static const struct {
		const char *target;
		int status;
		int nginx_resolves; /* nginx makes it an ordinary path inside the root */
	} cases[] = {
		{"/app/../app/info.php", 403, 1},
		{"/app/%2e%2e/app/info.php", 403, 1},
		{"/app/%2E%2E%2Fapp/info.php", 403, 1},
		{"/.htpasswd", 403, 0},
		{"/%2ehtpasswd", 403, 0},
		{"/.git/config", 403, 0},
		{"/app/.%2e/.htpasswd", 403, 0},
		{"/app/info.php%00.txt", 400, 0},
		{"/app/link.php", 403, 0},
		{"/noindex/", 404, 0},
		{"/noindex/data.bin", 403, 0},
		{"/app/style.css/more", 404, 0},
	};
	struct tresp r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_FATAL(t_get(D.port, cases[i].target, &r, 20000) == 0);
		if (r.status != cases[i].status)
			fprintf(stderr, "\n%s: %d, want %d\n", cases[i].target, r.status, cases[i].status);
		CU_ASSERT_EQUAL(r.status, cases[i].status);
		CU_ASSERT(r.body == NULL || (strstr(r.body, "SECRET") == NULL && strstr(r.body, "<?php") == NULL));
		t_resp_free(&r);
		CU_ASSERT_FATAL(t_get(ng_port, cases[i].target, &r, 20000) == 0);
		if (!cases[i].nginx_resolves && !(r.status == 400 || r.status == 403 || r.status == 404))
			fprintf(stderr, "\nnginx: %s: %d %s\n", cases[i].target, r.status, r.body ? r.body : "");
		CU_ASSERT(cases[i].nginx_resolves || r.status == 400 || r.status == 403 || r.status == 404);
		CU_ASSERT(r.body == NULL || (strstr(r.body, "SECRET") == NULL && strstr(r.body, "<?php") == NULL));
		t_resp_free(&r);
	}
}

/* Sends a GET (or HEAD) with extra header lines to the HTTP front. */
static int get_with(const char *method, const char *target, const char *extra, struct tresp *r)
{
	char req[1024];
	int fd = t_connect(D.port), n, rc;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", method, target,
	             extra ? extra : "");
	rc = t_send(fd, req, (size_t)n) == 0 && t_read_response(fd, r, strcmp(method, "HEAD") == 0, 10000) == 0 ? 0 : -1;
	close(fd);
	return rc;
}

/* A static file: its bytes, type and validators; 304 for the conditional
 * requests that match; one range; HEAD; not a job; counted. */
static void test_static(void)
{
	struct tresp r;
	char etag[96], lm[64], v[256], hdr[256], before[64], after[64];
	long long served0 = t_metric(admin_port, "cgiq_static_responses_total{front=\"http\"} ");

	t_last_job_id(&D, before, sizeof(before));
	CU_ASSERT_FATAL(get_with("GET", "/app/style.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body_len == strlen(STYLE_CSS) && memcmp(r.body, STYLE_CSS, r.body_len) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", "text/css");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "-", "24");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Accept-Ranges", v, sizeof(v)) ? v : "-", "bytes");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "X-Content-Type-Options", v, sizeof(v)) ? v : "-", "nosniff");
	CU_ASSERT_FATAL(t_header(&r, "ETag", etag, sizeof(etag)) != NULL && etag[0] == '"');
	CU_ASSERT_FATAL(t_header(&r, "Last-Modified", lm, sizeof(lm)) != NULL && strlen(lm) == 29);
	t_resp_free(&r);

	/* conditional requests: 304 with the validators and no body */
	static const struct {
		const char *before; /* then the ETag (use 1), the date (2) or nothing (0) */
		int use;
		int status;
	} conds[] = {
		{"If-None-Match: ", 1, 304},
		{"If-None-Match: \"x\", W/", 1, 304},
		{"If-None-Match: *", 0, 304},
		{"If-None-Match: \"other\"", 0, 200},
		{"If-Modified-Since: ", 2, 304},
		{"If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT", 0, 200},
		{"If-Modified-Since: yesterday", 0, 200},
		/* If-None-Match decides when both are there */
		{"If-None-Match: \"other\"\r\nIf-Modified-Since: ", 2, 200},
	};
	for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
		snprintf(hdr, sizeof(hdr), "%s%s\r\n", conds[i].before,
		         conds[i].use == 1 ? etag : conds[i].use == 2 ? lm : "");
		CU_ASSERT_FATAL(get_with("GET", "/app/style.css", hdr, &r) == 0);
		if (r.status != conds[i].status)
			fprintf(stderr, "\n%s-> %d, want %d\n", hdr, r.status, conds[i].status);
		CU_ASSERT_EQUAL(r.status, conds[i].status);
		if (conds[i].status == 304) {
			CU_ASSERT_EQUAL(r.body_len, 0);
			CU_ASSERT_STRING_EQUAL(t_header(&r, "ETag", v, sizeof(v)) ? v : "-", etag);
			CU_ASSERT_PTR_NULL(t_header(&r, "Content-Length", v, sizeof(v)));
		}
		t_resp_free(&r);
	}

	/* ranges: one is served, several or a reversed one are ignored (200),
	 * one past the end is 416; If-Range keeps a range to the same file */
	static const struct {
		const char *hdr;
		int status;
		const char *body, *content_range;
	} ranges[] = {
		{"Range: bytes=7-11\r\n", 206, "color", "bytes 7-11/24"},
		{"Range: bytes=-7\r\n", 206, "3456 }\n", "bytes 17-23/24"},
		{"Range: bytes=20-\r\n", 206, "6 }\n", "bytes 20-23/24"},
		{"Range: bytes=0-1,3-4\r\n", 200, NULL, NULL},
		{"Range: bytes=9-5\r\n", 200, NULL, NULL},
		{"Range: bytes=24-\r\n", 416, NULL, "bytes */24"},
		{"Range: bytes=5-9\r\nIf-Range: \"not-it\"\r\n", 200, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		CU_ASSERT_FATAL(get_with("GET", "/app/style.css", ranges[i].hdr, &r) == 0);
		CU_ASSERT_EQUAL(r.status, ranges[i].status);
		if (ranges[i].body)
			CU_ASSERT(r.body_len == strlen(ranges[i].body) && memcmp(r.body, ranges[i].body, r.body_len) == 0);
		if (ranges[i].status == 200)
			CU_ASSERT(r.body_len == strlen(STYLE_CSS) && memcmp(r.body, STYLE_CSS, r.body_len) == 0);
		if (ranges[i].content_range)
			CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Range", v, sizeof(v)) ? v : "-", ranges[i].content_range);
		t_resp_free(&r);
	}
	snprintf(hdr, sizeof(hdr), "Range: bytes=5-9\r\nIf-Range: %s\r\n", etag);
	CU_ASSERT_FATAL(get_with("GET", "/app/style.css", hdr, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 206);
	t_resp_free(&r);

	/* HEAD: the head of the 200, no body; other methods: 405 */
	CU_ASSERT_FATAL(get_with("HEAD", "/app/style.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Length", v, sizeof(v)) ? v : "-", "24");
	CU_ASSERT_EQUAL(r.body_len, 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get_with("DELETE", "/app/style.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 405);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Allow", v, sizeof(v)) ? v : "-", "GET, HEAD");
	t_resp_free(&r);

	/* 300,000 bytes, whole, typed from the system's table */
	CU_ASSERT_FATAL(get_with("GET", "/app/big.js", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body_len == 300000 && memcmp(r.body, big_js(), 300000) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", "text/javascript");
	t_resp_free(&r);

	/* none of these was a job; each was counted and logged */
	t_last_job_id(&D, after, sizeof(after));
	CU_ASSERT_STRING_EQUAL(before, after);
	CU_ASSERT_EQUAL(t_metric(admin_port, "cgiq_static_responses_total{front=\"http\"} ") - served0, 19);
	CU_ASSERT(td_log_has(&D, "\"GET /app/style.css\" 200 24 job=- 102s=0"));
}

/* What matches --static but is a program runs: an executable .css, an
 * interpreter's .php (static = /app/ and all below); its source is never
 * sent. Behind nginx
 * (which serves static files there) a static file is not cgiq's: 403. */
static void test_static_never_a_program(void)
{
	struct tresp r;

	CU_ASSERT_FATAL(get_with("GET", "/app/prog.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, "made by a program\n") == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get_with("GET", "/app/gone.php", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT(r.body && strcmp(r.body, "no such page\n") == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get_with("GET", "/app/.style.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 403);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_get(ng_port, "/app/style.css", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 403);
	t_resp_free(&r);
}

/* A program's local redirect is answered as a request for its path would
 * be, as a GET: a static file, a directory's 301. */
static void test_redirect_to_static(void)
{
	struct tresp r;
	char v[64];

	CU_ASSERT_FATAL(get_with("GET", "/app/redir.cgi?/app/style.css", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body_len == strlen(STYLE_CSS) && memcmp(r.body, STYLE_CSS, r.body_len) == 0);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", "text/css");
	t_resp_free(&r);
	CU_ASSERT_FATAL(get_with("POST", "/app/redir.cgi?/app/style.css", "Content-Length: 0\r\n", &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body_len == strlen(STYLE_CSS) && memcmp(r.body, STYLE_CSS, r.body_len) == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(get_with("GET", "/app/redir.cgi?/app", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 301);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Location", v, sizeof(v)) ? v : "-", "/app/");
	t_resp_free(&r);
}

/* An interpreter that cannot run is refused by the start and the check,
 * one line; a malformed value names the form. */
static void test_refused(void)
{
	static const struct {
		const char *arg;
		const char *says;
	} cases[] = {
		{".php=/nonexistent/php-cgi", "cgiq: --interpreter .php=/nonexistent/php-cgi: No such file or directory\n"},
		{".php=/etc/passwd", "cgiq: --interpreter .php=/etc/passwd: not executable\n"},
		{".php=/etc", "cgiq: --interpreter .php=/etc: not a regular file\n"},
		{"php=/usr/bin/php-cgi", "cgiq: --interpreter: invalid value 'php=/usr/bin/php-cgi' (.EXT=/absolute/path, "
		                         "e.g. .php=/usr/bin/php-cgi)\n"},
		{".php=php-cgi", "cgiq: --interpreter: invalid value '.php=php-cgi' (.EXT=/absolute/path, e.g. "
		                 ".php=/usr/bin/php-cgi)\n"},
	};
	char cmd[1024], out[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(cmd, sizeof(cmd), "'%s' --allow-root --cgi-root '%s' --interpreter '%s' --check-config 2>&1",
		         CGIQ_BIN, D.cgi_root, cases[i].arg);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		CU_ASSERT_STRING_EQUAL(out, cases[i].says);
		snprintf(cmd, sizeof(cmd),
		         "'%s' --allow-root --cgi-root '%s' --interpreter '%s' --listen 127.0.0.1:0 --db '%s/x.db' 2>&1",
		         CGIQ_BIN, D.cgi_root, cases[i].arg, dir);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		CU_ASSERT_STRING_EQUAL(out, cases[i].says);
	}
}

/* ------------------------------------------------------------------ */
/* gitweb (Debian's git and gitweb) with examples/apps/gitweb/cgiq.conf,
 * and the PHP example with examples/apps/php/cgiq.conf */

static struct tdaemon G, P;
static char gdir[64];

/* Loads the probe page (static/probe.html, which opens gitweb's summary page
 * in a frame and writes the computed background of its header) in headless
 * Chromium; its DOM into out. */
static int chromium(const char *url, const char *what, char *out, size_t size)
{
	char cmd[1536];

	snprintf(cmd, sizeof(cmd),
	         "timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
	         "--disable-background-networking --disable-component-update --disable-sync "
	         "--user-data-dir=%s/chromium-%s --hide-scrollbars --window-size=1000,560 --virtual-time-budget=10000 "
	         "%s '%s' 2>%s/chromium-%s.err",
	         gdir, what, strcmp(what, "dom") == 0 ? "--dump-dom" : "--screenshot=shot.png", url, gdir, what);
	return t_run(cmd, out, size);
}

static const char PROBE_HTML[] =
	"<!DOCTYPE html><html><head><title>probe</title></head><body>\n"
	"<iframe id=\"f\" src=\"/?p=demo.git;a=summary\"></iframe><pre id=\"out\">waiting</pre>\n"
	"<script>\n"
	"document.getElementById('f').onload = function () {\n"
	"\tvar d = this.contentDocument, h = d.querySelector('div.page_header');\n"
	"\tdocument.getElementById('out').textContent = 'header-bg=' +\n"
	"\t\t(h ? getComputedStyle(h).backgroundColor : 'none') + ' sheets=' + d.styleSheets.length;\n"
	"};\n"
	"</script></body></html>\n";

static int gitweb_init(void)
{
	char cmd[2048], conf[160], env[200], app[128];
	const char *args[] = {"--config", conf, "--env", env, "--processing", "never", NULL};
	FILE *f;

	snprintf(gdir, sizeof(gdir), "/tmp/cgiq-gitweb-XXXXXX");
	if (mkdtemp(gdir) == NULL)
		return -1;
	/* As the example's comment says: a copy of /usr/share/gitweb with its
	 * configuration; a repository with one commit. */
	snprintf(app, sizeof(app), "%s/app", gdir);
	snprintf(cmd, sizeof(cmd),
	         "set -e; cd '%s'; chmod 755 .; mkdir -p app repos; cp -a /usr/share/gitweb/. app/; "
	         "sed 's|/srv/git|%s/repos|' '%s/apps/gitweb/gitweb_config.perl' > app/gitweb_config.perl; "
	         "git init -q -b main work; cd work; printf 'hello\\n' > README; git add README; "
	         "git -c user.name=T -c user.email=t@example.org commit -q -m 'first commit of the demo'; "
	         "git clone -q --bare . ../repos/demo.git",
	         gdir, gdir, CGIQ_EXAMPLES);
	if (t_run(cmd, NULL, 0) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s/static/probe.html", app);
	if ((f = fopen(cmd, "w")) == NULL)
		return -1;
	fputs(PROBE_HTML, f);
	fclose(f);
	snprintf(conf, sizeof(conf), "%s/apps/gitweb/cgiq.conf", CGIQ_EXAMPLES);
	snprintf(env, sizeof(env), "GITWEB_CONFIG=%s/gitweb_config.perl", app);
	if (td_start(&G, app, args) < 0)
		return -1;
	/* The PHP example as it is shipped, on a copy of its directory. */
	snprintf(cmd, sizeof(cmd), "cp -a '%s/apps/php' '%s/php' && chmod 755 '%s/php'", CGIQ_EXAMPLES, gdir, gdir);
	if (t_run(cmd, NULL, 0) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s/apps/php/cgiq.conf", CGIQ_EXAMPLES);
	snprintf(app, sizeof(app), "%s/php", gdir);
	{
		const char *pargs[] = {"--config", conf, NULL};
		return td_start(&P, app, pargs);
	}
}

static int gitweb_clean(void)
{
	char cmd[128];
	int st = td_stop(&G), sp = td_stop(&P);

	td_cleanup(&G);
	td_cleanup(&P);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gdir);
	t_run(cmd, NULL, 0);
	return st == 0 && sp == 0 ? 0 : -1;
}

/* gitweb's pages as jobs: the project list (GET /, its index program), a
 * log page, a snapshot; its style sheet, script and images as static files
 * with their types and exact bytes. */
static void test_gitweb_pages(void)
{
	static const struct {
		const char *path, *type;
	} statics[] = {
		{"/static/gitweb.css", "text/css"},
		{"/static/gitweb.js", "text/javascript"},
		{"/static/git-logo.png", "image/png"},
	};
	struct tresp r;
	struct stat st;
	char v[128], path[256], cmd[512];

	CU_ASSERT_FATAL(t_get(G.port, "/", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strstr(r.body, "demo.git") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "href=\"static/gitweb.css\"") != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_get(G.port, "/gitweb.cgi?p=demo.git;a=log", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strstr(r.body, "first commit of the demo") != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_get(G.port, "/gitweb.cgi?p=demo.git;a=snapshot;h=HEAD;sf=tgz", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(strncmp(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", "application/x-gzip", 18) == 0);
	snprintf(path, sizeof(path), "%s/snapshot.tgz", gdir);
	{
		FILE *f = fopen(path, "w");
		CU_ASSERT_FATAL(f != NULL);
		fwrite(r.body, 1, r.body_len, f);
		fclose(f);
	}
	t_resp_free(&r);
	snprintf(cmd, sizeof(cmd), "tar -tzf '%s'", path);
	CU_ASSERT_EQUAL(t_run(cmd, v, sizeof(v)), 0);
	CU_ASSERT(strstr(v, "README") != NULL);
	for (size_t i = 0; i < sizeof(statics) / sizeof(statics[0]); i++) {
		char *want;
		CU_ASSERT_FATAL(t_get(G.port, statics[i].path, &r, 30000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", statics[i].type);
		snprintf(path, sizeof(path), "/usr/share/gitweb%s", statics[i].path);
		want = t_slurp(path); /* binary: its length from stat */
		CU_ASSERT(want != NULL && stat(path, &st) == 0 && r.body_len == (size_t)st.st_size &&
		          memcmp(r.body, want, r.body_len) == 0);
		free(want);
		t_resp_free(&r);
	}
	/* its configuration is not served, nor run */
	CU_ASSERT_FATAL(t_get(G.port, "/gitweb_config.perl", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 403);
	t_resp_free(&r);
}

/* In headless Chromium the page has gitweb.css applied: the header's
 * computed background is the style sheet's #d9d8d1 (without it:
 * transparent). A screenshot can be taken of it. */
static void test_gitweb_chromium(void)
{
	static char dom[65536];
	char url[128];
	char *png;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/static/probe.html", G.port);
	chromium(url, "dom", dom, sizeof(dom));
	if (strstr(dom, "header-bg=rgb(217, 216, 209) sheets=1") == NULL)
		fprintf(stderr, "\n  chromium's DOM:\n%s\n", dom);
	CU_ASSERT(strstr(dom, "header-bg=rgb(217, 216, 209) sheets=1") != NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/?p=demo.git;a=summary", G.port);
	chromium(url, "shot", NULL, 0);
	/* chromium writes the screenshot in its working directory: the test's */
	png = t_slurp("shot.png");
	CU_ASSERT(png != NULL && memcmp(png, "\x89PNG", 4) == 0);
	free(png);
	unlink("shot.png");
}

/* The PHP example as shipped: GET / runs index.php, a POST comes back,
 * its style sheet is static. */
static void test_php_example(void)
{
	struct tresp r;
	char cmd[256], out[1024], v[64];

	CU_ASSERT_FATAL(t_get(P.port, "/", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strstr(r.body, "<h1>Hello</h1>") != NULL);
	CU_ASSERT(r.body && strstr(r.body, "action=\"/index.php\"") != NULL);
	t_resp_free(&r);
	snprintf(cmd, sizeof(cmd), "curl -s -d 'name=Ann <b>' 'http://127.0.0.1:%d/index.php' | grep '<h1>'", P.port);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "<h1>Hello, Ann &lt;b&gt;</h1>\n");
	CU_ASSERT_FATAL(t_get(P.port, "/style.css", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Content-Type", v, sizeof(v)) ? v : "-", "text/css");
	t_resp_free(&r);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (access(PHP_CGI, X_OK) != 0) {
		fprintf(stderr, "%s is missing: scripts/setup.sh installs php-cgi\n", PHP_CGI);
		return 1;
	}
	s = CU_add_suite("php-cgi", suite_init, suite_clean);
	if (s == NULL || !CU_add_test(s, "GET on HTTP: the RFC 3875 variables", test_http_get) ||
	    !CU_add_test(s, "GET behind nginx (FastCGI)", test_fastcgi_get) ||
	    !CU_add_test(s, "POST form, both fronts", test_post_form) ||
	    !CU_add_test(s, "file upload, both fronts", test_upload) ||
	    !CU_add_test(s, "http_response_code and header, both fronts", test_status_and_headers) ||
	    !CU_add_test(s, "a script block's interpreter", test_block_interpreter) ||
	    !CU_add_test(s, "index programs and the slash redirect, both fronts", test_index) ||
	    !CU_add_test(s, "bad paths: never a program, never the bytes", test_bad_paths) ||
	    !CU_add_test(s, "static files: types, validators, 304, Range, HEAD", test_static) ||
	    !CU_add_test(s, "static patterns never serve a program", test_static_never_a_program) ||
	    !CU_add_test(s, "a local redirect to a static file or a directory", test_redirect_to_static) ||
	    !CU_add_test(s, "an interpreter that cannot run is refused", test_refused)) {
		CU_cleanup_registry();
		return 1;
	}
	s = CU_add_suite("examples/apps: gitweb and PHP", gitweb_init, gitweb_clean);
	if (s == NULL || !CU_add_test(s, "gitweb: pages, snapshot, static files", test_gitweb_pages) ||
	    !CU_add_test(s, "gitweb in headless Chromium: styles applied", test_gitweb_chromium) ||
	    !CU_add_test(s, "the PHP example", test_php_example)) {
		CU_cleanup_registry();
		return 1;
	}
	return t_cunit_run();
}
