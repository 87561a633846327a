/*
 * Integration tests of whole applications: PHP programs run by Debian's
 * php-cgi through --interpreter, on the HTTP front and behind nginx on the
 * FastCGI front; a script block's own interpreter; the start refusing an
 * interpreter that cannot run.
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
static int ng_port;

/* The interpreter for .php everywhere; under /plain/ a block's own, cat,
 * for .txt files that are whole CGI responses. A directory's program is its
 * index.cgi, else its index.php. */
static const char CONF[] =
	"interpreter = .php=" PHP_CGI "\n"
	"index = index.cgi,index.php\n"
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
	char sock[128], addr[160], body[2048], cmd[1024];
	const char *args[] = {"--config", conf_path, "--fastcgi", addr, "--processing", "never", NULL};
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
	if (td_start(&D, NULL, args) < 0)
		return -1;
	/* Readable, not executable: an interpreter reads them. */
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && mkdir -p plain app noindex badindex .git && "
	         "printf '<?php echo \"SECRET outside\";\\n' > '%s/outside.php' && ln -s '%s/outside.php' app/link.php",
	         D.cgi_root, dir, dir);
	if (t_run(cmd, NULL, 0) != 0 || put("app/info.php", INFO_PHP, 0644) < 0 ||
	    put("app/index.php", INDEX_PHP, 0644) < 0 || put("noindex/readme.txt", "text\n", 0644) < 0 ||
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
 * run by cat, the same file at the top is not a program (no x bit). */
static void test_block_interpreter(void)
{
	struct tresp r;

	CU_ASSERT_FATAL(t_get(D.port, "/plain/page.txt", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, "hello from cat\n") == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_get(D.port, "/page.txt", &r, 20000) == 0);
	CU_ASSERT_EQUAL(r.status, 403);
	t_resp_free(&r);
	CU_ASSERT(td_log_has(&D, "\"GET /page.txt\" 403: no program for this path: not executable (no x bit in "
	                         "its mode)"));
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
		{"/noindex/readme.txt", 403, 0},
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
	    !CU_add_test(s, "an interpreter that cannot run is refused", test_refused)) {
		CU_cleanup_registry();
		return 1;
	}
	return t_cunit_run();
}
