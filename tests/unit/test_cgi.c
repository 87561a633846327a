/*
 * cgi module: path mapping against a temp tree, environment builder, response
 * header parser, and spawn against real programs (tests/fixtures).
 */
#include "cgi/cgi.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ASSERT_STR(a, b)                                                                   \
	do {                                                                               \
		const char *a_ = (a), *b_ = (b);                                           \
		int ok_ = a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0;                 \
		if (!ok_)                                                                  \
			fprintf(stderr, "\n  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
			        a_ ? a_ : "(null)", b_ ? b_ : "(null)");                   \
		CU_ASSERT(ok_);                                                            \
	} while (0)

/* ------------------------------------------------------------------ */
/* path mapping                                                         */

static char tree_root[PATH_MAX];    /* canonical CGI root */
static char tree_outside[PATH_MAX]; /* a sibling directory outside the root */

static void write_file(const char *dir, const char *name, const char *content, mode_t mode)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f == NULL) {
		perror(p);
		abort();
	}
	fputs(content, f);
	fclose(f);
	if (chmod(p, mode) < 0)
		abort();
}

static void make_dir(const char *dir, const char *name)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (mkdir(p, 0755) < 0)
		abort();
}

static void make_link(const char *dir, const char *name, const char *target)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (symlink(target, p) < 0)
		abort();
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void rm_tree(const char *p)
{
	if (p[0] != '\0')
		nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int path_suite_init(void)
{
	char tmpl[] = "/tmp/cgiq-test-cgi-XXXXXX";
	char tmpl2[] = "/tmp/cgiq-test-out-XXXXXX";
	char p[PATH_MAX];

	if (mkdtemp(tmpl) == NULL || mkdtemp(tmpl2) == NULL)
		return -1;
	if (realpath(tmpl, tree_root) == NULL || realpath(tmpl2, tree_outside) == NULL)
		return -1;
	write_file(tree_root, "hello.sh", "#!/bin/sh\necho hi\n", 0755);
	write_file(tree_root, "noexec.sh", "#!/bin/sh\n", 0644);
	write_file(tree_root, "noexec.php", "<?php echo 1;\n", 0644);
	make_dir(tree_root, "withindex");
	make_dir(tree_root, "badindex");
	snprintf(p, sizeof(p), "%s/withindex", tree_root);
	write_file(p, "index.sh", "#!/bin/sh\n", 0755);
	snprintf(p, sizeof(p), "%s/badindex", tree_root);
	write_file(p, "index.cgi", "#!/bin/sh\n", 0644);
	write_file(tree_root, ".hidden", "#!/bin/sh\n", 0755);
	write_file(tree_root, "sp ace.sh", "#!/bin/sh\n", 0755);
	make_dir(tree_root, "sub");
	snprintf(p, sizeof(p), "%s/sub", tree_root);
	write_file(p, "nested.sh", "#!/bin/sh\n", 0755);
	make_dir(p, "deeper");
	make_dir(tree_root, "cgi-bin");
	write_file(tree_outside, "evil.sh", "#!/bin/sh\n", 0755);
	make_link(tree_root, "link-in", "hello.sh");
	snprintf(p, sizeof(p), "%s/evil.sh", tree_outside);
	make_link(tree_root, "link-out", p);
	make_link(tree_root, "dirlink-out", tree_outside);
	return 0;
}

static int path_suite_clean(void)
{
	rm_tree(tree_root);
	rm_tree(tree_outside);
	return 0;
}

static char *in_root(const char *rel)
{
	static char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s%s", tree_root, rel);
	return p;
}

static int map(const char *prefix, const char *raw)
{
	struct cgi_target t;
	int r = cgi_map_path(tree_root, prefix, raw, &t);

	if (r == 0)
		cgi_target_free(&t);
	return r;
}

/* The reason a refused mapping gives for its log line. */
static const char *why(const char *prefix, const char *raw)
{
	static char buf[160];
	struct cgi_target t;

	if (cgi_map_path(tree_root, prefix, raw, &t) == 0) {
		cgi_target_free(&t);
		return "mapped";
	}
	return cgi_target_why(&t, "nobody", buf, sizeof(buf));
}

static void test_path_why(void)
{
	CU_ASSERT_STRING_EQUAL(why("/", "/missing.sh"), "no such file");
	CU_ASSERT_STRING_EQUAL(why("/", "/sub"), "a directory, not a program");
	CU_ASSERT_STRING_EQUAL(why("/", "/noexec.sh"), "not executable (no x bit in its mode)");
	CU_ASSERT_STRING_EQUAL(why("/", "/.hidden"), "a segment of the path starts with '.'");
	CU_ASSERT_STRING_EQUAL(why("/", "/link-out"), "a symlink leads outside the CGI root");
	CU_ASSERT_STRING_EQUAL(why("/cgi-bin", "/hello.sh"), "outside the CGI prefix");
	CU_ASSERT_STRING_EQUAL(why("/", "/a%zz"), "bad percent-encoding, or %00, in the path");
	CU_ASSERT_STRING_EQUAL(why("/", "hello.sh"), "not a path");
	CU_ASSERT_STRING_EQUAL(why("/", "/hello.sh"), "mapped");
	/* a missing permission names the user (the integration tests make
	 * one happen, as nobody) */
	{
		struct cgi_target t = {.why = "not executable", .why_access = 1};
		char buf[80];
		CU_ASSERT_STRING_EQUAL(cgi_target_why(&t, "nobody", buf, sizeof(buf)),
		                       "not executable by cgiq's user nobody");
	}
}

static const struct cgi_interpreter INTERPS[] = {
	{".php", "/usr/bin/php-cgi"},
	{".pl", "/usr/bin/perl"},
	{".php", "/opt/php8/bin/php-cgi"}, /* later: wins */
};

static const char *interp_of(void *ctx, const char *file)
{
	return cgi_interpreter_for(INTERPS, 3, file);
}

/* The last entry for an extension wins; a match is a suffix of the name,
 * case as given, and never the whole name (".php" is a dot-file). */
static void test_interpreter_for(void)
{
	CU_ASSERT_STRING_EQUAL(cgi_interpreter_for(INTERPS, 3, "/srv/a/index.php"), "/opt/php8/bin/php-cgi");
	CU_ASSERT_STRING_EQUAL(cgi_interpreter_for(INTERPS, 2, "/srv/a/index.php"), "/usr/bin/php-cgi");
	CU_ASSERT_STRING_EQUAL(cgi_interpreter_for(INTERPS, 3, "/srv/x.pl"), "/usr/bin/perl");
	CU_ASSERT_PTR_NULL(cgi_interpreter_for(INTERPS, 3, "/srv/x.PHP"));
	CU_ASSERT_PTR_NULL(cgi_interpreter_for(INTERPS, 3, "/srv/x.php.bak"));
	CU_ASSERT_PTR_NULL(cgi_interpreter_for(INTERPS, 3, "/srv/.php"));
	CU_ASSERT_PTR_NULL(cgi_interpreter_for(INTERPS, 3, "/srv/php"));
	CU_ASSERT_PTR_NULL(cgi_interpreter_for(INTERPS, 0, "/srv/x.php"));
}

/* A mapped file needs no x bit: noexec.php (0644) runs by its interpreter,
 * with PATH_INFO past it; without the mapping it is refused. */
static void test_path_interpreter(void)
{
	const struct cgi_map m = {.root = tree_root, .prefix = "/", .interpreter = interp_of};
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map(&m, "/noexec.php/a/b", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.script_filename, in_root("/noexec.php"));
	CU_ASSERT_STRING_EQUAL(t.script_name, "/noexec.php");
	CU_ASSERT_STRING_EQUAL(t.path_info, "/a/b");
	CU_ASSERT_STRING_EQUAL(t.interpreter, "/opt/php8/bin/php-cgi");
	cgi_target_free(&t);
	/* an executable the map does not name runs as itself */
	CU_ASSERT_EQUAL_FATAL(cgi_map(&m, "/hello.sh", &t), 0);
	CU_ASSERT_PTR_NULL(t.interpreter);
	cgi_target_free(&t);
	/* without the interpreters: not executable */
	CU_ASSERT_EQUAL(cgi_map_path(tree_root, "/", "/noexec.php", &t), 403);
	CU_ASSERT_STRING_EQUAL(t.why, "not executable (no x bit in its mode)");
	CU_ASSERT_PTR_NULL(t.interpreter);
	/* the checks before it still hold */
	CU_ASSERT_EQUAL(cgi_map(&m, "/.hidden.php", &t), 403);
	CU_ASSERT_EQUAL(cgi_map(&m, "/missing.php", &t), 404);
	CU_ASSERT_PTR_NULL(t.interpreter);
}

/* A directory's path runs its first index program; without its slash,
 * 301 when it has one; the checks on the file found hold for an index too. */
static void test_path_index(void)
{
	static const char *const names[] = {"index.cgi", "index.sh", NULL};
	const struct cgi_map m = {.root = tree_root, .prefix = "/", .index = names};
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map(&m, "/withindex/", &t), 0);
	CU_ASSERT_STRING_EQUAL(t.script_filename, in_root("/withindex/index.sh"));
	CU_ASSERT_STRING_EQUAL(t.script_name, "/withindex/index.sh");
	CU_ASSERT_STRING_EQUAL(t.path_info, "");
	CU_ASSERT_STRING_EQUAL(t.index, "index.sh");
	cgi_target_free(&t);
	CU_ASSERT_EQUAL(cgi_map(&m, "/withindex", &t), 301);
	CU_ASSERT_STRING_EQUAL(t.why, "a directory: redirected to its form with a slash");
	CU_ASSERT_PTR_NULL(t.index);
	CU_ASSERT_EQUAL(cgi_map(&m, "//withindex//", &t), 0);
	cgi_target_free(&t);
	/* no index in it: 404, with or without the slash */
	CU_ASSERT_EQUAL(cgi_map(&m, "/sub/", &t), 404);
	CU_ASSERT_STRING_EQUAL(t.why, "a directory without an index program");
	CU_ASSERT_EQUAL(cgi_map(&m, "/sub", &t), 404);
	/* an index that is not executable is refused as any file */
	CU_ASSERT_EQUAL(cgi_map(&m, "/badindex/", &t), 403);
	CU_ASSERT_STRING_EQUAL(t.why, "not executable (no x bit in its mode)");
	/* the root itself */
	CU_ASSERT_EQUAL(cgi_map(&m, "/", &t), 404);
	/* without --index: a directory is not a program */
	CU_ASSERT_EQUAL(cgi_map_path(tree_root, "/", "/withindex/", &t), 404);
	CU_ASSERT_STRING_EQUAL(t.why, "a directory, not a program");
}

/* Static patterns: assets by extension, name patterns against the name,
 * path patterns against the path below the root. */
static void test_static_match(void)
{
	static const char *const assets[] = {"assets", NULL};
	static const char *const mine[] = {"*.pdf", "/static/*", NULL};

	CU_ASSERT(cgi_static_match(assets, "/app/style.css"));
	CU_ASSERT(cgi_static_match(assets, "/img/logo.png"));
	CU_ASSERT(cgi_static_match(assets, "/fonts/a.woff2"));
	CU_ASSERT(!cgi_static_match(assets, "/app/index.php"));
	CU_ASSERT(!cgi_static_match(assets, "/app/run.cgi"));
	CU_ASSERT(!cgi_static_match(assets, "/app/data.db"));
	CU_ASSERT(cgi_static_match(mine, "/docs/a.pdf"));
	CU_ASSERT(cgi_static_match(mine, "/static/a.bin"));
	CU_ASSERT(!cgi_static_match(mine, "/static/sub/a.bin")); /* FNM_PATHNAME */
	CU_ASSERT(!cgi_static_match(mine, "/app/a.bin"));
	CU_ASSERT(!cgi_static_match(NULL, "/a.css"));
}

static void test_path_program(void)
{
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/hello.sh", &t), 0);
	ASSERT_STR(t.script_filename, in_root("/hello.sh"));
	ASSERT_STR(t.script_name, "/hello.sh");
	ASSERT_STR(t.path_info, "");
	ASSERT_STR(t.dir, tree_root);
	cgi_target_free(&t);
	cgi_target_free(&t); /* safe twice */
}

static void test_path_info(void)
{
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/hello.sh/2024/q3", &t), 0);
	ASSERT_STR(t.script_name, "/hello.sh");
	ASSERT_STR(t.path_info, "/2024/q3");
	cgi_target_free(&t);

	/* decoded, empty segments collapsed */
	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "//hello.sh//a%20b//c/", &t), 0);
	ASSERT_STR(t.script_name, "/hello.sh");
	ASSERT_STR(t.path_info, "/a b/c");
	cgi_target_free(&t);

	/* a name that needs decoding */
	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/sp%20ace.sh/x", &t), 0);
	ASSERT_STR(t.script_name, "/sp ace.sh");
	ASSERT_STR(t.script_filename, in_root("/sp ace.sh"));
	ASSERT_STR(t.path_info, "/x");
	cgi_target_free(&t);
}

static void test_path_nested(void)
{
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/sub/nested.sh/x", &t), 0);
	ASSERT_STR(t.script_filename, in_root("/sub/nested.sh"));
	ASSERT_STR(t.script_name, "/sub/nested.sh");
	ASSERT_STR(t.path_info, "/x");
	ASSERT_STR(t.dir, in_root("/sub"));
	cgi_target_free(&t);

	/* an encoded slash is a separator once decoded */
	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/sub%2Fnested.sh", &t), 0);
	ASSERT_STR(t.script_name, "/sub/nested.sh");
	cgi_target_free(&t);
}

static void test_path_not_found(void)
{
	CU_ASSERT_EQUAL(map("/", "/"), 404);
	CU_ASSERT_EQUAL(map("/", "/sub"), 404);
	CU_ASSERT_EQUAL(map("/", "/sub/"), 404);
	CU_ASSERT_EQUAL(map("/", "/sub/deeper"), 404);
	CU_ASSERT_EQUAL(map("/", "/missing.sh"), 404);
	CU_ASSERT_EQUAL(map("/", "/sub/missing/x"), 404);
	CU_ASSERT_EQUAL(map("/", "/hello.sh.bak"), 404);
	CU_ASSERT_EQUAL(map("/", "hello.sh"), 404);
	CU_ASSERT_EQUAL(map("/", ""), 404);
}

static void test_path_traversal(void)
{
	CU_ASSERT_EQUAL(map("/", "/../etc/passwd"), 403);
	CU_ASSERT_EQUAL(map("/", "/sub/../hello.sh"), 403);
	CU_ASSERT_EQUAL(map("/", "/./hello.sh"), 403);
	CU_ASSERT_EQUAL(map("/", "/%2e%2e/etc/passwd"), 403);
	CU_ASSERT_EQUAL(map("/", "/%2E%2e%2Fetc%2fpasswd"), 403);
	CU_ASSERT_EQUAL(map("/", "/sub/%2e%2e/hello.sh"), 403);
	CU_ASSERT_EQUAL(map("/", "/.hidden"), 403);
	CU_ASSERT_EQUAL(map("/", "/%2ehidden"), 403);
	CU_ASSERT_EQUAL(map("/", "/hello.sh/.git/config"), 403);
	CU_ASSERT_EQUAL(map("/", "/hello.sh/.."), 403);
	CU_ASSERT_EQUAL(map("/cgi-bin", "/cgi-bin/../hello.sh"), 403);
}

static void test_path_not_executable(void)
{
	CU_ASSERT_EQUAL(map("/", "/noexec.sh"), 403);
	CU_ASSERT_EQUAL(map("/", "/noexec.sh/info"), 403);
}

static void test_path_symlinks(void)
{
	struct cgi_target t;

	CU_ASSERT_EQUAL(map("/", "/link-out"), 403);
	CU_ASSERT_EQUAL(map("/", "/dirlink-out/evil.sh"), 403);
	/* a link inside the root is fine and resolves to its target */
	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/", "/link-in/a", &t), 0);
	ASSERT_STR(t.script_filename, in_root("/hello.sh"));
	ASSERT_STR(t.script_name, "/link-in");
	ASSERT_STR(t.path_info, "/a");
	cgi_target_free(&t);
}

static void test_path_prefix(void)
{
	struct cgi_target t;

	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/cgi-bin", "/cgi-bin/hello.sh/p", &t), 0);
	ASSERT_STR(t.script_filename, in_root("/hello.sh"));
	ASSERT_STR(t.script_name, "/cgi-bin/hello.sh");
	ASSERT_STR(t.path_info, "/p");
	cgi_target_free(&t);

	CU_ASSERT_EQUAL_FATAL(cgi_map_path(tree_root, "/cgi-bin", "/cgi-bin/sub/nested.sh", &t), 0);
	ASSERT_STR(t.script_name, "/cgi-bin/sub/nested.sh");
	cgi_target_free(&t);

	CU_ASSERT_EQUAL(map("/cgi-bin", "/cgi-binx/hello.sh"), 404);
	CU_ASSERT_EQUAL(map("/cgi-bin", "/hello.sh"), 404);
	CU_ASSERT_EQUAL(map("/cgi-bin", "/cgi-bin"), 404);
	CU_ASSERT_EQUAL(map("/cgi-bin", "/cgi-bin/"), 404);
	CU_ASSERT_EQUAL(map("/cgi-bin", "/"), 404);
	/* "cgi-bin" inside the root is a directory, not the prefix */
	CU_ASSERT_EQUAL(map("/", "/cgi-bin/hello.sh"), 404);
}

static void test_path_bad_percent(void)
{
	CU_ASSERT_EQUAL(map("/", "/hello%2"), 400);
	CU_ASSERT_EQUAL(map("/", "/hello.sh%"), 400);
	CU_ASSERT_EQUAL(map("/", "/%zzhello.sh"), 400);
	CU_ASSERT_EQUAL(map("/", "/%g0"), 400);
	CU_ASSERT_EQUAL(map("/", "/hello.sh/a%00b"), 400);
	CU_ASSERT_EQUAL(map("/", "/hello.sh%00.txt"), 400);
}

/* ------------------------------------------------------------------ */
/* environment                                                          */

#define HDR(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static const struct cgi_target env_target = {
	.script_filename = "/srv/cgi/x.sh",
	.script_name = "/cgi-bin/x.sh",
	.path_info = "/a b",
	.dir = "/srv/cgi",
};

static void env_base(struct cgi_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = "POST";
	req->request_uri = "/cgi-bin/x.sh/a%20b?q=1";
	req->query_string = "q=1";
	req->protocol = "HTTP/1.1";
	req->target = &env_target;
	req->document_root = "/srv/cgi";
	req->content_length = 5;
	req->remote_addr = "10.0.0.1";
	req->remote_port = 5555;
	req->server_addr = "127.0.0.1";
	req->server_port = 8080;
	req->server_name = "example.org";
	req->https = 1;
}

/* Each name at most once, and the array is NULL-terminated at count. */
static int env_names_unique(const struct cgi_env *env)
{
	size_t i, j;

	if (env->vars[env->count] != NULL)
		return 0;
	for (i = 0; i < env->count; i++) {
		size_t ni = strcspn(env->vars[i], "=");
		if (env->vars[i][ni] != '=')
			return 0;
		for (j = i + 1; j < env->count; j++)
			if (strncmp(env->vars[i], env->vars[j], ni + 1) == 0)
				return 0;
	}
	return 1;
}

static void test_env_all(void)
{
	static const struct cgi_header hdrs[] = {
		HDR("Host", "example.org:8080"),
		HDR("Content-Type", "text/plain"),
		HDR("Content-Length", "5"),
		HDR("Proxy", "http://evil.example:3128"),
		HDR("proxy", "http://evil2.example:3128"),
		HDR("Authorization", "Basic dXNlcjpwYXNz"),
		HDR("Proxy-Authorization", "Basic eHg6eXk="),
		HDR("User-Agent", "test/1.0"),
		HDR("Accept", "text/html"),
		HDR("accept", "*/*"),
		HDR("X Bad", "dropped"),
		HDR("X:Bad", "dropped"),
		HDR("Cookie", "a=1"),
		HDR("Cookie", "b=2"),
		HDR("X-Empty", ""),
	};
	static const char *const extra[] = {"FOO=bar", "junk-without-equals", "=x", NULL};
	struct cgi_request req;
	struct cgi_env env;
	const char *bad = NULL;

	env_base(&req);
	req.headers = hdrs;
	req.header_count = UTIL_ARRAY_LEN(hdrs);
	req.extra = extra;
	CU_ASSERT_EQUAL_FATAL(cgi_env_build(&req, &env, &bad), 0);
	CU_ASSERT_PTR_NULL(bad);

	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "AUTH_TYPE"));
	ASSERT_STR(cgi_env_get(&env, "CONTENT_LENGTH"), "5");
	ASSERT_STR(cgi_env_get(&env, "CONTENT_TYPE"), "text/plain");
	ASSERT_STR(cgi_env_get(&env, "GATEWAY_INTERFACE"), "CGI/1.1");
	ASSERT_STR(cgi_env_get(&env, "PATH_INFO"), "/a b");
	ASSERT_STR(cgi_env_get(&env, "PATH_TRANSLATED"), "/srv/cgi/a b");
	ASSERT_STR(cgi_env_get(&env, "QUERY_STRING"), "q=1");
	ASSERT_STR(cgi_env_get(&env, "REMOTE_ADDR"), "10.0.0.1");
	ASSERT_STR(cgi_env_get(&env, "REMOTE_HOST"), "10.0.0.1");
	ASSERT_STR(cgi_env_get(&env, "REQUEST_METHOD"), "POST");
	ASSERT_STR(cgi_env_get(&env, "SCRIPT_NAME"), "/cgi-bin/x.sh");
	ASSERT_STR(cgi_env_get(&env, "SERVER_NAME"), "example.org");
	ASSERT_STR(cgi_env_get(&env, "SERVER_PORT"), "8080");
	ASSERT_STR(cgi_env_get(&env, "SERVER_PROTOCOL"), "HTTP/1.1");
	ASSERT_STR(cgi_env_get(&env, "SERVER_SOFTWARE"), "cgiq/" CGIQ_VERSION);
	ASSERT_STR(cgi_env_get(&env, "REQUEST_URI"), "/cgi-bin/x.sh/a%20b?q=1");
	ASSERT_STR(cgi_env_get(&env, "SCRIPT_FILENAME"), "/srv/cgi/x.sh");
	ASSERT_STR(cgi_env_get(&env, "DOCUMENT_ROOT"), "/srv/cgi");
	ASSERT_STR(cgi_env_get(&env, "REMOTE_PORT"), "5555");
	ASSERT_STR(cgi_env_get(&env, "SERVER_ADDR"), "127.0.0.1");
	ASSERT_STR(cgi_env_get(&env, "HTTPS"), "on");
	ASSERT_STR(cgi_env_get(&env, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	ASSERT_STR(cgi_env_get(&env, "HTTP_HOST"), "example.org:8080");
	ASSERT_STR(cgi_env_get(&env, "HTTP_USER_AGENT"), "test/1.0");
	ASSERT_STR(cgi_env_get(&env, "HTTP_ACCEPT"), "text/html, */*");
	ASSERT_STR(cgi_env_get(&env, "HTTP_COOKIE"), "a=1; b=2");
	ASSERT_STR(cgi_env_get(&env, "HTTP_X_EMPTY"), "");
	ASSERT_STR(cgi_env_get(&env, "FOO"), "bar");
	/* as Apache, lighttpd and nginx's fastcgi_params: php-cgi needs it */
	ASSERT_STR(cgi_env_get(&env, "REDIRECT_STATUS"), "200");

	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_PROXY"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_AUTHORIZATION"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_PROXY_AUTHORIZATION"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_CONTENT_TYPE"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_CONTENT_LENGTH"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_X_BAD"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_X"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "junk-without-equals"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "NOPE"));

	/* 22 meta-variables and extras, 5 HTTP_*, FOO: nothing else */
	CU_ASSERT_EQUAL(env.count, 28);
	CU_ASSERT(env_names_unique(&env));
	cgi_env_free(&env);
	cgi_env_free(&env); /* safe twice */
	CU_ASSERT_PTR_NULL(env.vars);
}

static void test_env_authorization(void)
{
	static const struct cgi_header hdrs[] = {
		HDR("Authorization", "Bearer abc.def"),
		HDR("Proxy-Authorization", "Basic eHg6eXk="),
	};
	struct cgi_request req;
	struct cgi_env env;

	env_base(&req);
	req.headers = hdrs;
	req.header_count = UTIL_ARRAY_LEN(hdrs);
	req.pass_authorization = 1;
	CU_ASSERT_EQUAL_FATAL(cgi_env_build(&req, &env, NULL), 0);
	ASSERT_STR(cgi_env_get(&env, "AUTH_TYPE"), "Bearer");
	ASSERT_STR(cgi_env_get(&env, "HTTP_AUTHORIZATION"), "Bearer abc.def");
	ASSERT_STR(cgi_env_get(&env, "HTTP_PROXY_AUTHORIZATION"), "Basic eHg6eXk=");
	cgi_env_free(&env);

	/* enabled but no header: no AUTH_TYPE */
	req.header_count = 0;
	CU_ASSERT_EQUAL_FATAL(cgi_env_build(&req, &env, NULL), 0);
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "AUTH_TYPE"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTP_AUTHORIZATION"));
	cgi_env_free(&env);
}

static void test_env_collision(void)
{
	static const struct cgi_header hdrs[] = {
		HDR("X-Foo", "1"),
		HDR("X-Other", "2"),
		HDR("X_Foo", "3"),
	};
	static const struct cgi_header hosts[] = {
		HDR("Host", "a.example"),
		HDR("host", "b.example"),
	};
	static const struct cgi_header types[] = {
		HDR("Content-Type", "text/plain"),
		HDR("Content-Type", "text/html"),
	};
	struct cgi_request req;
	struct cgi_env env = {(char **)1, 7};
	const char *bad = NULL;

	env_base(&req);
	req.headers = hdrs;
	req.header_count = UTIL_ARRAY_LEN(hdrs);
	CU_ASSERT_EQUAL(cgi_env_build(&req, &env, &bad), 400);
	CU_ASSERT_PTR_EQUAL(bad, hdrs[2].name);
	CU_ASSERT_PTR_NULL(env.vars);
	CU_ASSERT_EQUAL(env.count, 0);
	cgi_env_free(&env);

	/* the same with bad_header NULL */
	CU_ASSERT_EQUAL(cgi_env_build(&req, &env, NULL), 400);

	req.headers = hosts;
	req.header_count = UTIL_ARRAY_LEN(hosts);
	bad = NULL;
	CU_ASSERT_EQUAL(cgi_env_build(&req, &env, &bad), 400);
	CU_ASSERT_PTR_EQUAL(bad, hosts[1].name);

	req.headers = types;
	req.header_count = UTIL_ARRAY_LEN(types);
	bad = NULL;
	CU_ASSERT_EQUAL(cgi_env_build(&req, &env, &bad), 400);
	CU_ASSERT_PTR_EQUAL(bad, types[1].name);
}

static void test_env_no_body(void)
{
	static const struct cgi_target t = {.script_filename = "/srv/cgi/x.sh", .script_name = "/x.sh", .path_info = "", .dir = "/srv/cgi"};
	static const char *const extra[] = {"PATH=/opt/bin", NULL};
	struct cgi_request req;
	struct cgi_env env;

	env_base(&req);
	req.method = "GET";
	req.content_length = -1;
	req.query_string = "";
	req.target = &t;
	req.https = 0;
	req.server_name = NULL;
	req.extra = extra;
	CU_ASSERT_EQUAL_FATAL(cgi_env_build(&req, &env, NULL), 0);
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "CONTENT_LENGTH"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "CONTENT_TYPE"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "PATH_TRANSLATED"));
	CU_ASSERT_PTR_NULL(cgi_env_get(&env, "HTTPS"));
	ASSERT_STR(cgi_env_get(&env, "PATH_INFO"), "");
	ASSERT_STR(cgi_env_get(&env, "QUERY_STRING"), "");
	ASSERT_STR(cgi_env_get(&env, "SERVER_NAME"), "127.0.0.1");
	ASSERT_STR(cgi_env_get(&env, "PATH"), "/opt/bin");
	CU_ASSERT(env_names_unique(&env));
	cgi_env_free(&env);

	/* a body of length 0 is still a body */
	req.content_length = 0;
	req.query_string = NULL;
	CU_ASSERT_EQUAL_FATAL(cgi_env_build(&req, &env, NULL), 0);
	ASSERT_STR(cgi_env_get(&env, "CONTENT_LENGTH"), "0");
	ASSERT_STR(cgi_env_get(&env, "QUERY_STRING"), "");
	cgi_env_free(&env);
}

/* ------------------------------------------------------------------ */
/* response parser                                                      */

/* Feeds s whole; returns the result and the bytes of the header block. */
static int resp_whole(struct cgi_response *r, const char *s, size_t len, size_t *consumed)
{
	cgi_response_init(r);
	*consumed = (size_t)-1;
	return cgi_response_feed(r, s, len, consumed);
}

/* Feeds s in chunks of `step` bytes; *consumed is relative to s. */
static int resp_chunked(struct cgi_response *r, const char *s, size_t len, size_t step,
                        size_t *consumed)
{
	size_t off = 0, c = 0;
	int rc = 0;

	cgi_response_init(r);
	*consumed = (size_t)-1;
	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		rc = cgi_response_feed(r, s + off, n, &c);
		if (rc != 0)
			break;
		off += n;
	}
	if (rc == 1)
		*consumed = off + c;
	return rc;
}

static void test_resp_plain(void)
{
	const char *s = "Content-Type: text/html\n\n<p>hi</p>";
	struct cgi_response r;
	size_t consumed;

	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen("Content-Type: text/html\n\n"));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NULL(r.reason);
	CU_ASSERT_PTR_NULL(r.location);
	CU_ASSERT(r.has_content_type);
	CU_ASSERT_EQUAL(r.header_count, 1);
	ASSERT_STR(r.headers.data, "Content-Type: text/html\r\n");
	/* done: no more feeding */
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "x", 1, &consumed), -EINVAL);
	cgi_response_free(&r);
	cgi_response_free(&r); /* safe twice */
}

static void test_resp_status(void)
{
	const char *s = "Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A:  v \t\r\n\r\nnope";
	struct cgi_response r;
	size_t consumed;

	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen(s) - 4);
	CU_ASSERT_EQUAL(r.status, 404);
	ASSERT_STR(r.reason, "Not Found");
	ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nX-A: v\r\n");
	CU_ASSERT_EQUAL(r.header_count, 2);
	cgi_response_free(&r);

	/* no reason phrase; case-insensitive names */
	s = "status: 503\ncontent-type: text/plain\n\n";
	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT_PTR_NULL(r.reason);
	ASSERT_STR(r.headers.data, "content-type: text/plain\r\n");
	cgi_response_free(&r);
}

static void test_resp_redirects(void)
{
	const char *s = "Location: https://example.org/x?y=1\r\n\r\n";
	struct cgi_response r;
	size_t consumed;

	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen(s));
	CU_ASSERT_EQUAL(r.status, 302);
	ASSERT_STR(r.location, "https://example.org/x?y=1");
	CU_ASSERT(!r.has_content_type);
	ASSERT_STR(r.headers.data, "Location: https://example.org/x?y=1\r\n");
	cgi_response_free(&r);

	s = "Location: /hello?a=b\r\n\r\n";
	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(r.status, 0);
	ASSERT_STR(r.location, "/hello?a=b");
	cgi_response_free(&r);

	/* an explicit Status wins */
	s = "Status: 301 Moved Permanently\nLocation: /new\nContent-Type: text/html\n\n";
	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	CU_ASSERT_EQUAL(r.status, 301);
	ASSERT_STR(r.reason, "Moved Permanently");
	ASSERT_STR(r.location, "/new");
	ASSERT_STR(r.headers.data, "Location: /new\r\nContent-Type: text/html\r\n");
	cgi_response_free(&r);
}

static void test_resp_line_endings(void)
{
	const char *lf = "Content-Type: text/plain\nX-A: 1\n\nbody";
	const char *crlf = "Content-Type: text/plain\r\nX-A: 1\r\n\r\nbody";
	const char *mixed = "Content-Type: text/plain\r\nX-A: 1\n\r\nbody";
	struct cgi_response r;
	size_t consumed;

	CU_ASSERT_EQUAL(resp_whole(&r, lf, strlen(lf), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen(lf) - 4);
	ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nX-A: 1\r\n");
	cgi_response_free(&r);
	CU_ASSERT_EQUAL(resp_whole(&r, crlf, strlen(crlf), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen(crlf) - 4);
	ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nX-A: 1\r\n");
	cgi_response_free(&r);
	CU_ASSERT_EQUAL(resp_whole(&r, mixed, strlen(mixed), &consumed), 1);
	CU_ASSERT_EQUAL(consumed, strlen(mixed) - 4);
	ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nX-A: 1\r\n");
	cgi_response_free(&r);
}

static void test_resp_dropped(void)
{
	const char *s = "Content-Type: text/plain\nConnection: close\ncontent-length: 3\n"
	                "Transfer-Encoding: chunked\nKeep-Alive: 5\nDate: x\nServer: evil\n"
	                "Set-Cookie: a=1\nSet-Cookie: b=2\n\n";
	struct cgi_response r;
	size_t consumed;

	CU_ASSERT_EQUAL(resp_whole(&r, s, strlen(s), &consumed), 1);
	ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n");
	CU_ASSERT_EQUAL(r.header_count, 3);
	cgi_response_free(&r);
}

/* Every split, down to one byte at a time, gives the same result. */
static void test_resp_chunking(void)
{
	static const char *const inputs[] = {
		"Content-Type: text/plain\r\nX-A: 1\r\n\r\nbody bytes",
		"Status: 201 Created\nContent-Type: a/b\nLocation: /x\n\n",
		"Location: http://e.example/\r\n\r\n\r\n",
		"X-A: 1\n\n",
		"Content-Type text/plain\n\n",
		"Status: 600 Nope\nContent-Type: a/b\n\n",
	};
	size_t i, step;

	for (i = 0; i < UTIL_ARRAY_LEN(inputs); i++) {
		struct cgi_response w, c;
		size_t len = strlen(inputs[i]), cw, cc;
		int rw = resp_whole(&w, inputs[i], len, &cw);

		for (step = 1; step <= len; step++) {
			int rc = resp_chunked(&c, inputs[i], len, step, &cc);
			CU_ASSERT_EQUAL(rc, rw);
			if (rc == 1 && rw == 1) {
				CU_ASSERT_EQUAL(cc, cw);
				CU_ASSERT_EQUAL(c.status, w.status);
				CU_ASSERT_EQUAL(c.header_count, w.header_count);
				ASSERT_STR(c.headers.data, w.headers.data);
			}
			cgi_response_free(&c);
		}
		cgi_response_free(&w);
	}
}

static void test_resp_need_more(void)
{
	struct cgi_response r;
	size_t consumed = 99;

	cgi_response_init(&r);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "", 0, &consumed), 0);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "Content-Type: a", 15, &consumed), 0);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "/b\r", 3, &consumed), 0);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "\n\r", 2, &consumed), 0);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "\nrest", 5, &consumed), 1);
	CU_ASSERT_EQUAL(consumed, 1);
	ASSERT_STR(r.headers.data, "Content-Type: a/b\r\n");
	cgi_response_free(&r);
}

static int resp_result(const char *s)
{
	struct cgi_response r;
	size_t consumed;
	int rc = resp_whole(&r, s, strlen(s), &consumed);

	cgi_response_free(&r);
	return rc;
}

static void test_resp_malformed(void)
{
	CU_ASSERT_EQUAL(resp_result("Content-Type text/html\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("just a body\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type : text/html\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result(": x\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Bad Name: x\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type: a/b\n folded\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type: a/b\nX-A: a\rb\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type: a/b\nX-A: a\x01" "b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type: a/b\nContent-Type: c/d\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Content-Type:\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Location: /a\nLocation: /b\n\n"), -EBADMSG);
	/* a NUL inside a line */
	{
		static const char nul[] = "Content-Type: a/b\nX-A: a\0b\n\n";
		struct cgi_response r;
		size_t consumed;
		CU_ASSERT_EQUAL(resp_whole(&r, nul, sizeof(nul) - 1, &consumed), -EBADMSG);
		CU_ASSERT_EQUAL(cgi_response_feed(&r, "\n", 1, &consumed), -EINVAL);
		cgi_response_free(&r);
	}
}

static void test_resp_bad_status(void)
{
	CU_ASSERT_EQUAL(resp_result("Status: 99 Low\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 099 Low\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 600 High\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 2000 OK\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 200OK\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: abc\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status:\nContent-Type: a/b\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 200 OK\nStatus: 201 OK\nContent-Type: a/b\n\n"),
	                -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 100 Continue\nContent-Type: a/b\n\n"), 1);
	CU_ASSERT_EQUAL(resp_result("Status: 599 Edge\nContent-Type: a/b\n\n"), 1);
}

/* An NPH program's head (RFC 3875 5): fed whole, or a byte at a time. */
static int nph_result(const char *s, size_t step, struct cgi_response *r)
{
	size_t consumed, off = 0;
	int rc = 0;

	cgi_response_init(r);
	r->nph = 1;
	while (off < strlen(s) && rc == 0) {
		size_t n = strlen(s) - off < step ? strlen(s) - off : step;
		rc = cgi_response_feed(r, s + off, n, &consumed);
		off += n;
	}
	return rc;
}

static void test_resp_nph(void)
{
	static const char head[] = "HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\nX-A: 1\r\n"
	                           "Content-Length: 5\r\nDate: x\r\nServer: y\r\nConnection: keep-alive\r\n\r\n";
	static const char *const bad[] = {
		"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",        /* a bare CR in a field */
		"HTTP/1.1 200 OK\r\nStatus: 404 No\r\n\r\n",    /* the status is the line's */
		"HTTP/1.1 200 OK\r\nStatus: 2000\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", /* continuation */
		"HTTP/1.1 100 Continue\r\n\r\n",                  /* interim */
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"Content-Type: text/plain\r\n\r\n",               /* a parsed-header program's */
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\n\r\n",
		"\r\n",
	};
	struct cgi_response r;

	for (size_t step = 1; step <= sizeof(head); step += sizeof(head) - 1) {
		CU_ASSERT_EQUAL(nph_result(head, step, &r), 1);
		CU_ASSERT_EQUAL(r.status, 206);
		ASSERT_STR(r.reason, "Partial Content");
		/* the gateway frames the body and owns the connection */
		ASSERT_STR(r.headers.data, "Content-Type: text/plain\r\nX-A: 1\r\n");
		cgi_response_free(&r);
	}
	/* CGI.pm's -nph: the status line and a Status field that agrees (dropped) */
	CU_ASSERT_EQUAL(nph_result("HTTP/1.0 201 Created\r\nStatus: 201 Created\r\nContent-Type: a/b\r\n\r\n", 64, &r),
	                1);
	CU_ASSERT_EQUAL(r.status, 201);
	ASSERT_STR(r.headers.data, "Content-Type: a/b\r\n");
	cgi_response_free(&r);
	/* HTTP/1.0, no reason, no Content-Type (a 204 has none) */
	CU_ASSERT_EQUAL(nph_result("HTTP/1.0 204\n\n", 64, &r), 1);
	CU_ASSERT_EQUAL(r.status, 204);
	CU_ASSERT_PTR_NULL(r.reason);
	cgi_response_free(&r);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
		CU_ASSERT_EQUAL(nph_result(bad[i], 64, &r), -EBADMSG);
		if (r.done != -1)
			fprintf(stderr, "\n  accepted: %s", bad[i]);
		cgi_response_free(&r);
	}
	/* the body's framing is the gateway's: refused, and said apart */
	CU_ASSERT_EQUAL(nph_result("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 64, &r), -EPROTO);
	cgi_response_free(&r);
}

static void test_resp_missing_content_type(void)
{
	CU_ASSERT_EQUAL(resp_result("X-A: 1\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("Status: 200 OK\n\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("\n"), -EBADMSG);
	CU_ASSERT_EQUAL(resp_result("\r\nbody"), -EBADMSG);
}

static void test_resp_too_large(void)
{
	struct cgi_response r;
	size_t consumed, i;
	char *big = util_xmalloc(CGI_MAX_HEADER_BYTES + 2);
	struct buf many;

	/* one endless line, fed in pieces */
	memset(big, 'a', CGI_MAX_HEADER_BYTES + 1);
	memcpy(big, "X-A: ", 5);
	cgi_response_init(&r);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, big, CGI_MAX_HEADER_BYTES, &consumed), 0);
	CU_ASSERT_EQUAL(cgi_response_feed(&r, "a", 1, &consumed), -E2BIG);
	cgi_response_free(&r);

	/* exactly at the limit is fine */
	memcpy(big, "Content-Type: ", 14);
	big[CGI_MAX_HEADER_BYTES - 2] = '\n';
	big[CGI_MAX_HEADER_BYTES - 1] = '\n';
	CU_ASSERT_EQUAL(resp_whole(&r, big, CGI_MAX_HEADER_BYTES, &consumed), 1);
	CU_ASSERT_EQUAL(consumed, CGI_MAX_HEADER_BYTES);
	cgi_response_free(&r);
	free(big);

	/* too many lines */
	buf_init(&many, 1 << 20);
	buf_append_str(&many, "Content-Type: a/b\n");
	for (i = 0; i < CGI_MAX_HEADERS; i++)
		buf_printf(&many, "X-H%zu: v\n", i);
	buf_append_str(&many, "\n");
	CU_ASSERT_EQUAL(resp_result(many.data), -E2BIG);
	buf_free(&many);
}

/* ------------------------------------------------------------------ */
/* spawn                                                                */

/* Writes `in` to the child's stdin while collecting stdout and stderr, until
 * both reach EOF. Returns 0, or -1 after 20 s. */
static int pump(struct cgi_proc *p, const char *in, size_t in_len, struct buf *o, struct buf *e)
{
	size_t off = 0;
	int open_out = 1, open_err = 1;
	char tmp[65536];

	if (p->stdin_fd >= 0 && in_len == 0) {
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
	while (open_out || open_err) {
		struct pollfd fds[3] = {
			{open_out ? p->stdout_fd : -1, POLLIN, 0},
			{open_err ? p->stderr_fd : -1, POLLIN, 0},
			{p->stdin_fd, POLLOUT, 0},
		};
		int r = poll(fds, p->stdin_fd >= 0 ? 3 : 2, 20000);
		if (r <= 0)
			return -1;
		if (p->stdin_fd >= 0 && fds[2].revents) {
			ssize_t n = write(p->stdin_fd, in + off, in_len - off);
			if (n > 0)
				off += (size_t)n;
			if ((n < 0 && errno != EAGAIN) || off == in_len) {
				close(p->stdin_fd);
				p->stdin_fd = -1;
			}
		}
		for (int i = 0; i < 2; i++) {
			int *open = i == 0 ? &open_out : &open_err;
			ssize_t n;
			if (!*open || fds[i].revents == 0)
				continue;
			n = read(fds[i].fd, tmp, sizeof(tmp));
			if (n > 0)
				buf_append(i == 0 ? o : e, tmp, (size_t)n);
			else if (n == 0 || errno != EAGAIN)
				*open = 0;
		}
	}
	if (p->stdin_fd >= 0) {
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
	close(p->stdout_fd);
	close(p->stderr_fd);
	p->stdout_fd = p->stderr_fd = -1;
	return 0;
}

static int reap(pid_t pid)
{
	int status = -1;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static void test_spawn_pipes(void)
{
	char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; cat; echo \"$A\"; exit 7", NULL};
	char *envp[] = {"A=from-env", NULL};
	struct cgi_spawn opts = {"/bin/sh", argv, envp, "/", -1, 0, NULL, 0, NULL};
	struct cgi_proc p;
	struct buf o, e;
	int status;

	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT(p.pid > 0);
	CU_ASSERT(p.stdin_fd >= 0 && p.stdout_fd >= 0 && p.stderr_fd >= 0);
	CU_ASSERT_EQUAL(getpgid(p.pid), p.pid);
	CU_ASSERT(fcntl(p.stdout_fd, F_GETFL) & O_NONBLOCK);
	CU_ASSERT(fcntl(p.stdin_fd, F_GETFL) & O_NONBLOCK);
	CU_ASSERT(fcntl(p.stderr_fd, F_GETFD) & FD_CLOEXEC);
	CU_ASSERT_EQUAL(pump(&p, "hello\n", 6, &o, &e), 0);
	ASSERT_STR(o.data, "out\nhello\nfrom-env\n");
	ASSERT_STR(e.data, "err\n");
	status = reap(p.pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	buf_free(&o);
	buf_free(&e);
}

/* The limits hold in the program from its start: what the shell reports
 * (ulimit -t/-v/-n/-p/-f in dash: seconds, KiB, count, count, 512-byte
 * blocks) and its niceness (field 19 of /proc/self/stat) are what was asked. */
static void test_spawn_limits(void)
{
	char *argv[] = {"/bin/sh", "-c",
	                "echo $(ulimit -t) $(ulimit -H -t) $(ulimit -v) $(ulimit -n) $(ulimit -H -n) "
	                "$(ulimit -p) $(ulimit -f) $(ulimit -c) $(cut -d' ' -f19 /proc/self/stat)",
	                NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct cgi_limits l = {.cpu_s = 7, .as_bytes = 512ull << 20, .nofile = 50, .nproc = 300,
	                       .fsize_bytes = 1 << 20, .core_set = 1, .core_bytes = 0, .nice_set = 1, .nice = 5};
	struct cgi_spawn opts = {"/bin/sh", argv, envp, "/", -1, 0, &l, 0, NULL};
	struct cgi_proc p;
	struct buf o, e;
	int status, nice_before = getpriority(PRIO_PROCESS, 0);

	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT_EQUAL(pump(&p, "", 0, &o, &e), 0);
	ASSERT_STR(o.data, "7 8 524288 50 50 300 2048 0 5\n");
	status = reap(p.pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Only the program: cgiq's own niceness and limits are untouched. */
	CU_ASSERT_EQUAL(getpriority(PRIO_PROCESS, 0), nice_before);
	buf_free(&o);
	buf_free(&e);
}

/* As root, a program given an identity has all three of each id, and only
 * the groups given; the process that started it keeps its own. */
static void test_spawn_identity(void)
{
	char *argv[] = {"/bin/sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status", NULL};
	char *envp[] = {"PATH=/usr/bin:/bin", NULL};
	struct cgi_identity as = {.uid = 65534, .gid = 65533, .set_groups = 1, .ngroups = 2, .groups = {65533, 65532}};
	struct cgi_spawn opts = {"/bin/sh", argv, envp, "/", -1, 0, NULL, 0, &as};
	struct cgi_proc p;
	struct buf o, e;
	int status;

	if (geteuid() != 0) {
		fprintf(stderr, "(not root: identity not tested)\n");
		return;
	}
	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT_EQUAL(pump(&p, "", 0, &o, &e), 0);
	ASSERT_STR(o.data, "Uid:\t65534\t65534\t65534\t65534\nGid:\t65533\t65533\t65533\t65533\n"
	                   "Groups:\t65532 65533 \n");
	status = reap(p.pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT_EQUAL(geteuid(), 0);
	CU_ASSERT_EQUAL(getegid(), 0);
	buf_free(&o);
	buf_free(&e);
}

static void test_spawn_exec_errors(void)
{
	char *argv[] = {"x", NULL};
	char *envp[] = {NULL};
	struct cgi_spawn opts = {"/nonexistent/program", argv, envp, "/", -1, 0, NULL, 0, NULL};
	struct cgi_proc p;

	CU_ASSERT_EQUAL(cgi_spawn_start(&opts, &p), -ENOENT);
	CU_ASSERT_EQUAL(p.stdin_fd, -1);
	CU_ASSERT_EQUAL(p.stdout_fd, -1);
	CU_ASSERT_EQUAL(p.stderr_fd, -1);

	opts.path = CGIQ_FIXTURES "/nonexec";
	CU_ASSERT_EQUAL(cgi_spawn_start(&opts, &p), -EACCES);

	opts.path = "/bin/true";
	opts.cwd = "/nonexistent-dir";
	CU_ASSERT_EQUAL(cgi_spawn_start(&opts, &p), -ENOENT);

	/* the failed children were reaped */
	CU_ASSERT_EQUAL(waitpid(-1, NULL, WNOHANG), -1);
	CU_ASSERT_EQUAL(errno, ECHILD);
}

/* A parent that ignores and blocks signals must not pass that on. */
static void test_spawn_signals_reset(void)
{
	char *argv[] = {"cat", "/proc/self/status", NULL};
	char *envp[] = {NULL};
	struct cgi_spawn opts = {"/bin/cat", argv, envp, "/", -1, 0, NULL, 0, NULL};
	struct sigaction ign, old_term;
	sigset_t block, old_mask;
	struct cgi_proc p;
	struct buf o, e;

	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &ign, &old_term);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old_mask);

	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	sigaction(SIGTERM, &old_term, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	CU_ASSERT_EQUAL(pump(&p, NULL, 0, &o, &e), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.data);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "\nSigBlk:\t0000000000000000\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "\nSigIgn:\t0000000000000000\n"));
	CU_ASSERT_EQUAL(reap(p.pid), 0);
	buf_free(&o);
	buf_free(&e);

	/* The spawner's way: the calling thread blocks everything itself. */
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old_mask);
	opts.signals_blocked = 1;
	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	CU_ASSERT_EQUAL(pump(&p, NULL, 0, &o, &e), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.data);
	CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "\nSigBlk:\t0000000000000000\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o.data, "\nSigIgn:\t0000000000000000\n"));
	CU_ASSERT_EQUAL(reap(p.pid), 0);
	buf_free(&o);
	buf_free(&e);
}

static void test_spawn_cwd_and_fds(void)
{
	char script[128];
	char *argv[] = {"sh", "-c", script, NULL};
	char *envp[] = {NULL};
	struct cgi_spawn opts = {"/bin/sh", argv, envp, "/usr", -1, 0, NULL, 0, NULL};
	struct cgi_proc p;
	struct buf o, e;
	/* deliberately not close-on-exec */
	int leak = open("/dev/null", O_RDONLY);

	CU_ASSERT_FATAL(leak >= 3);
	snprintf(script, sizeof(script),
	         "pwd; if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo clean; fi", leak);
	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT_EQUAL(pump(&p, NULL, 0, &o, &e), 0);
	ASSERT_STR(o.data, "/usr\nclean\n");
	CU_ASSERT_EQUAL(reap(p.pid), 0);
	close(leak);
	buf_free(&o);
	buf_free(&e);
}

static void test_spawn_stdin_fd(void)
{
	char *argv[] = {"cat", NULL};
	char *envp[] = {NULL};
	struct cgi_spawn opts = {"/bin/cat", argv, envp, "/", -1, 0, NULL, 0, NULL};
	char tmpl[] = "/tmp/cgiq-test-spool-XXXXXX";
	struct cgi_proc p;
	struct buf o, e;
	int fd = mkstemp(tmpl);

	CU_ASSERT_FATAL(fd >= 0);
	unlink(tmpl);
	CU_ASSERT_EQUAL(write(fd, "from a file\n", 12), 12);
	lseek(fd, 0, SEEK_SET);
	opts.stdin_fd = fd;
	buf_init(&o, 1 << 20);
	buf_init(&e, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT_EQUAL(p.stdin_fd, -1);
	CU_ASSERT_EQUAL(pump(&p, NULL, 0, &o, &e), 0);
	ASSERT_STR(o.data, "from a file\n");
	CU_ASSERT_EQUAL(reap(p.pid), 0);
	/* still ours */
	CU_ASSERT_EQUAL(fcntl(fd, F_GETFD) >= 0, 1);
	close(fd);
	buf_free(&o);
	buf_free(&e);
}

/* ------------------------------------------------------------------ */
/* fixtures: spawn + response parser against the real scripts          */

struct fixture_run {
	struct buf out, err;
	struct cgi_response resp;
	int parse; /* cgi_response_feed result over all of stdout */
	size_t body_off;
	int status; /* waitpid status */
};

static void fixture_run(const char *name, const char *query, const char *in, size_t in_len,
                        struct fixture_run *fr)
{
	char path[PATH_MAX], qs[256];
	char *argv[] = {path, NULL};
	char *envp[] = {qs, "PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	struct cgi_spawn opts = {path, argv, envp, CGIQ_FIXTURES, -1, 0, NULL, 0, NULL};
	struct cgi_proc p;

	snprintf(path, sizeof(path), "%s/%s", CGIQ_FIXTURES, name);
	snprintf(qs, sizeof(qs), "QUERY_STRING=%s", query ? query : "");
	buf_init(&fr->out, 256u << 20);
	buf_init(&fr->err, 1 << 20);
	cgi_response_init(&fr->resp);
	fr->parse = -1;
	fr->status = -1;
	fr->body_off = 0;
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	CU_ASSERT_EQUAL(pump(&p, in, in_len, &fr->out, &fr->err), 0);
	fr->status = reap(p.pid);
	fr->parse = cgi_response_feed(&fr->resp, fr->out.data ? fr->out.data : "", fr->out.len,
	                              &fr->body_off);
}

static void fixture_free(struct fixture_run *fr)
{
	buf_free(&fr->out);
	buf_free(&fr->err);
	cgi_response_free(&fr->resp);
}

static void test_fixture_stderr_lines(void)
{
	struct fixture_run fr;

	fixture_run("stderr-lines", NULL, NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	CU_ASSERT_EQUAL(fr.resp.status, 200);
	ASSERT_STR(fr.out.data + fr.body_off, "ok\n");
	ASSERT_STR(fr.err.data, "line 1\nline 2\nline 3\n");
	CU_ASSERT_EQUAL(fr.status, 0);
	fixture_free(&fr);
}

static void test_fixture_local_redirect(void)
{
	struct fixture_run fr;

	fixture_run("local-redirect", NULL, NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	CU_ASSERT_EQUAL(fr.resp.status, 0);
	ASSERT_STR(fr.resp.location, "/hello");
	CU_ASSERT_EQUAL(fr.body_off, fr.out.len);
	fixture_free(&fr);
}

static void test_fixture_bad_programs(void)
{
	struct fixture_run fr;

	fixture_run("no-headers", NULL, NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, -EBADMSG);
	CU_ASSERT(WIFEXITED(fr.status) && WEXITSTATUS(fr.status) == 0);
	fixture_free(&fr);

	fixture_run("die-early", NULL, NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 0); /* still waiting for the blank line at EOF */
	CU_ASSERT(WIFEXITED(fr.status) && WEXITSTATUS(fr.status) == 3);
	fixture_free(&fr);

	fixture_run("exit-signal", NULL, NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	ASSERT_STR(fr.out.data + fr.body_off, "partial\n");
	CU_ASSERT(WIFSIGNALED(fr.status) && WTERMSIG(fr.status) == SIGKILL);
	fixture_free(&fr);
}

static int pattern_ok(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (char)('a' + i % 26))
			return 0;
	return 1;
}

static void test_fixture_output(void)
{
	struct fixture_run fr;
	char *in = util_xcalloc(1, 300000);

	/* pump() writes stdin and reads stdout together, as the engine must */
	fixture_run("writes-before-reading", "bytes=1000003", in, 300000, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	ASSERT_STR(fr.resp.headers.data, "Content-Type: application/octet-stream\r\n");
	CU_ASSERT_EQUAL(fr.out.len - fr.body_off, 1000003);
	CU_ASSERT(pattern_ok(fr.out.data + fr.body_off, fr.out.len - fr.body_off));
	CU_ASSERT_EQUAL(fr.status, 0);
	fixture_free(&fr);
	free(in);

	fixture_run("big-output", "70001", NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	CU_ASSERT_EQUAL(fr.out.len - fr.body_off, 70001);
	CU_ASSERT(pattern_ok(fr.out.data + fr.body_off, fr.out.len - fr.body_off));
	fixture_free(&fr);

	fixture_run("slow", "0", NULL, 0, &fr);
	CU_ASSERT_EQUAL(fr.parse, 1);
	ASSERT_STR(fr.out.data + fr.body_off, "hello\n");
	fixture_free(&fr);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Whether pid's SigIgn mask (/proc/PID/status) has SIGTERM. */
static int ignores_sigterm(pid_t pid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigIgn: %llx", &mask) == 1)
			break;
	fclose(f);
	return (mask >> (SIGTERM - 1)) & 1;
}

/* SIGTERM does nothing; SIGKILL to the group takes the grandchild too. */
static void test_fixture_hostile(void)
{
	char path[] = CGIQ_FIXTURES "/hostile-trap-term";
	char *argv[] = {path, NULL};
	char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
	struct cgi_spawn opts = {path, argv, envp, "/", -1, 0, NULL, 0, NULL};
	struct cgi_proc p;
	struct buf o;
	char tmp[4096];
	int status, reaped = 0, waited;
	pid_t w;

	/* orphaned grandchildren come to us, so they can be counted */
	CU_ASSERT_EQUAL_FATAL(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	buf_init(&o, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(cgi_spawn_start(&opts, &p), 0);
	close(p.stdin_fd);
	for (waited = 0; waited < 10000 && (o.data == NULL || strstr(o.data, "started\n") == NULL);
	     waited += 10) {
		ssize_t n = read(p.stdout_fd, tmp, sizeof(tmp));
		if (n > 0)
			buf_append(&o, tmp, (size_t)n);
		else
			sleep_ms(10);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(o.data, "started\n"));

	/* It ignores SIGTERM (its mask of ignored signals says so, which no
	 * delay could show), so the group's SIGTERM leaves it running. */
	CU_ASSERT_TRUE(ignores_sigterm(p.pid));
	CU_ASSERT_EQUAL(kill(-p.pid, SIGTERM), 0);
	CU_ASSERT_EQUAL(waitpid(p.pid, &status, WNOHANG), 0);

	CU_ASSERT_EQUAL(kill(-p.pid, SIGKILL), 0);
	while ((w = waitpid(-p.pid, &status, 0)) > 0 || (w < 0 && errno == EINTR))
		if (w > 0)
			reaped++;
	CU_ASSERT_EQUAL(errno, ECHILD);
	CU_ASSERT(reaped >= 2); /* the script and its sleep 600 */
	CU_ASSERT_EQUAL(kill(-p.pid, 0), -1);
	close(p.stdout_fd);
	close(p.stderr_fd);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	buf_free(&o);
}

/* ------------------------------------------------------------------ */

struct test_def {
	const char *name;
	CU_TestFunc fn;
};

/* ------------------------------------------------------------------ */
/* progress lines                                                       */

static void test_progress_valid(void)
{
	struct cgi_progress p;
	static const char line[] = "3/20 rendering page 3";

	CU_ASSERT_EQUAL(cgi_progress_parse(line, strlen(line), &p), 0);
	CU_ASSERT_EQUAL(p.done, 3);
	CU_ASSERT_EQUAL(p.total, 20);
	CU_ASSERT_STRING_EQUAL(p.text, "rendering page 3");
	CU_ASSERT_EQUAL(cgi_progress_parse("20/20\r", 6, &p), 0);
	CU_ASSERT_EQUAL(p.done, 20);
	CU_ASSERT_STRING_EQUAL(p.text, "");
	CU_ASSERT_EQUAL(cgi_progress_parse("0/1 a\001b\377", 8, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.text, "a?b?");
}

static void test_progress_invalid(void)
{
	static const char *const bad[] = {
		"", "3", "3/", "/3", "4/3", "1/0", "-1/3", "1/3x", "a/b", "1 /3",
		"1234567890123456789/12345678901234567890",
	};
	struct cgi_progress p;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++)
		CU_ASSERT_EQUAL(cgi_progress_parse(bad[i], strlen(bad[i]), &p), -EINVAL);
}

static void test_progress_text_cut(void)
{
	char line[400];
	struct cgi_progress p;

	memset(line, 'x', sizeof(line));
	memcpy(line, "1/2 ", 4);
	CU_ASSERT_EQUAL(cgi_progress_parse(line, sizeof(line), &p), 0);
	CU_ASSERT_EQUAL(strlen(p.text), CGI_PROGRESS_TEXT_MAX);
}

static int add_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                     const struct test_def *tests, size_t n)
{
	CU_pSuite s = CU_add_suite(name, init, clean);
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
			return -1;
	return 0;
}

int main(void)
{
	static const struct test_def path_tests[] = {
		{"program", test_path_program},
		{"path_info", test_path_info},
		{"nested", test_path_nested},
		{"not_found", test_path_not_found},
		{"traversal", test_path_traversal},
		{"why", test_path_why},
		{"interpreter_for", test_interpreter_for},
		{"interpreter", test_path_interpreter},
		{"index", test_path_index},
		{"static_match", test_static_match},
		{"not_executable", test_path_not_executable},
		{"symlinks", test_path_symlinks},
		{"prefix", test_path_prefix},
		{"bad_percent", test_path_bad_percent},
	};
	static const struct test_def env_tests[] = {
		{"all_variables", test_env_all},
		{"authorization", test_env_authorization},
		{"collision", test_env_collision},
		{"no_body", test_env_no_body},
	};
	static const struct test_def resp_tests[] = {
		{"plain", test_resp_plain},
		{"status", test_resp_status},
		{"redirects", test_resp_redirects},
		{"line_endings", test_resp_line_endings},
		{"dropped", test_resp_dropped},
		{"chunking", test_resp_chunking},
		{"need_more", test_resp_need_more},
		{"malformed", test_resp_malformed},
		{"bad_status", test_resp_bad_status},
		{"missing_content_type", test_resp_missing_content_type},
		{"too_large", test_resp_too_large},
		{"nph", test_resp_nph},
	};
	static const struct test_def progress_tests[] = {
		{"valid", test_progress_valid},
		{"invalid", test_progress_invalid},
		{"text_cut", test_progress_text_cut},
	};
	static const struct test_def spawn_tests[] = {
		{"pipes", test_spawn_pipes},
		{"limits", test_spawn_limits},
		{"identity", test_spawn_identity},
		{"exec_errors", test_spawn_exec_errors},
		{"signals_reset", test_spawn_signals_reset},
		{"cwd_and_fds", test_spawn_cwd_and_fds},
		{"stdin_fd", test_spawn_stdin_fd},
		{"fixture_stderr_lines", test_fixture_stderr_lines},
		{"fixture_local_redirect", test_fixture_local_redirect},
		{"fixture_bad_programs", test_fixture_bad_programs},
		{"fixture_output", test_fixture_output},
		{"fixture_hostile", test_fixture_hostile},
	};

	/* a child that exits early must not kill the test through SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	/* Ignored before the first spawn, as by a parent shell: no program may
	 * inherit it (signals_reset checks), although cgiq never sets it. */
	signal(SIGTTOU, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (add_suite("cgi_path", path_suite_init, path_suite_clean, path_tests,
	              UTIL_ARRAY_LEN(path_tests)) < 0 ||
	    add_suite("cgi_env", NULL, NULL, env_tests, UTIL_ARRAY_LEN(env_tests)) < 0 ||
	    add_suite("cgi_response", NULL, NULL, resp_tests, UTIL_ARRAY_LEN(resp_tests)) < 0 ||
	    add_suite("cgi_progress", NULL, NULL, progress_tests, UTIL_ARRAY_LEN(progress_tests)) < 0 ||
	    add_suite("cgi_spawn", NULL, NULL, spawn_tests, UTIL_ARRAY_LEN(spawn_tests)) < 0) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return (int)failed;
}
