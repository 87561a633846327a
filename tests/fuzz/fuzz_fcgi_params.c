/*
 * libFuzzer target: the FastCGI parameter mapping (src/fcgi/params.c).
 * The input is the content of FCGI_PARAMS records: name-value pairs encoded
 * per the FastCGI specification, section 3.4 (each length one byte when
 * below 128, else four bytes with the high bit set, 31 bits), read with the
 * codec's fcgi_nv_next into "NAME=value" strings (a NUL cuts one, the more
 * hostile input for the mapping), then mapped against a small CGI root made
 * for the run. A value starting with
 * "$ROOT" gets the root's path in its place, so the corpus can name real
 * programs. Whatever the parameters, the environment a program would get
 * must hold only well-formed, safe variables.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcgi/fcgi.h"
#include "fuzz.h"
#include "util/util.h"

#define FUZZ_FCGI_MAX_PARAMS 256
#define FUZZ_FCGI_MAX_INPUT (64 * 1024)

static char fuzz_root[64];

static void root_remove(void)
{
	static const char *const names[] = { "run", "plain", "dir/run", "dir", "out", ".hidden" };
	char path[128];

	for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", fuzz_root, names[i]);
		if (unlink(path) < 0)
			rmdir(path);
	}
	rmdir(fuzz_root);
}

static void root_file(const char *name, mode_t mode)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fuzz_root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, "#!/bin/sh\n", 10) == 10);
	close(fd);
	FUZZ_CHECK(chmod(path, mode) == 0);
}

/* A root with an executable, a plain file, a subdirectory, a dot-file and a
 * symlink out of the root: each branch of the path checks is reachable. */
static const char *root(void)
{
	char path[128];

	if (fuzz_root[0] != '\0')
		return fuzz_root;
	snprintf(fuzz_root, sizeof(fuzz_root), "/tmp/cgiq-fuzz-XXXXXX");
	FUZZ_CHECK(mkdtemp(fuzz_root) != NULL);
	root_file("run", 0755);
	root_file("plain", 0644);
	root_file(".hidden", 0755);
	snprintf(path, sizeof(path), "%s/dir", fuzz_root);
	FUZZ_CHECK(mkdir(path, 0755) == 0);
	root_file("dir/run", 0755);
	snprintf(path, sizeof(path), "%s/out", fuzz_root);
	FUZZ_CHECK(symlink("/bin/sh", path) == 0);
	atexit(root_remove);
	return fuzz_root;
}

/* "name=value", with "$ROOT" at the start of the value replaced. As in
 * libfcgi the result is a C string: a NUL inside cuts it there. */
static char *make_param(const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
	const char *r = root();
	size_t rlen = strlen(r), extra = 0;
	char *s;

	if (vlen >= 5 && memcmp(value, "$ROOT", 5) == 0) {
		value += 5;
		vlen -= 5;
		extra = rlen;
	}
	s = util_xmalloc(nlen + 1 + extra + vlen + 1);
	memcpy(s, name, nlen);
	s[nlen] = '=';
	memcpy(s + nlen + 1, r, extra);
	memcpy(s + nlen + 1 + extra, value, vlen);
	s[nlen + 1 + extra + vlen] = '\0';
	return s;
}

/* Variables no program may receive, whatever the web server sent. */
static void check_env(const struct cgi_env *env)
{
	size_t n = 0;

	FUZZ_CHECK(env->vars != NULL);
	for (char **v = env->vars; *v; v++, n++) {
		const char *eq = strchr(*v, '=');
		FUZZ_CHECK(eq != NULL && eq > *v);
		for (const char *c = *v; c < eq; c++)
			FUZZ_CHECK((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			           (*c >= '0' && *c <= '9') || *c == '_');
		FUZZ_CHECK(strncmp(*v, "HTTP_PROXY=", 11) != 0);
		FUZZ_CHECK(strncasecmp(*v, "LD_", 3) != 0);
		FUZZ_CHECK(strncmp(*v, "BASH_ENV=", 9) != 0);
		FUZZ_CHECK(strncmp(*v, "BASH_FUNC_", 10) != 0);
		FUZZ_CHECK(strncmp(*v, "PERL5OPT=", 9) != 0);
		FUZZ_CHECK(strncmp(*v, "HTTP_AUTHORIZATION=", 19) != 0); /* pass_authorization is off */
		/* Each name once: which value would the program see? */
		for (char **w = env->vars; w < v; w++)
			FUZZ_CHECK(strncmp(*w, *v, (size_t)(eq - *v) + 1) != 0);
	}
	FUZZ_CHECK(n == env->count);
	FUZZ_CHECK(strcmp(cgi_env_get(env, "PATH"), "/usr/local/bin:/usr/bin:/bin") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *params[FUZZ_FCGI_MAX_PARAMS + 1];
	size_t n = 0;
	struct fcgi_params_config cfg = { .cgi_root = root(), .pass_authorization = 0 };
	struct fcgi_mapped m;
	struct fcgi_nv nv;
	const char *why = NULL;
	int64_t body_len;
	int r;

	if (size > FUZZ_FCGI_MAX_INPUT || size < 1)
		return 0;
	/* The first byte picks the body size cgiq measured (none, empty, some). */
	body_len = data[0] % 3 == 0 ? -1 : (int64_t)(data[0] % 3 - 1) * 17;
	p++;
	/* The pairs as the front's codec reads them (fcgi_nv_next); a truncated
	 * pair ends the list. */
	for (size_t pos = 0; n < FUZZ_FCGI_MAX_PARAMS && fcgi_nv_next((const char *)p, (size_t)(end - p), &pos, &nv) == 1;)
		params[n++] = make_param((const uint8_t *)nv.name, nv.name_len, (const uint8_t *)nv.value, nv.value_len);
	params[n] = NULL;

	r = fcgi_params_map(&cfg, params, body_len, &m, &why);
	if (r == 0) {
		FUZZ_CHECK(why == NULL);
		FUZZ_CHECK(m.target.script_filename != NULL && m.method != NULL && m.uri != NULL && m.peer != NULL);
		/* Only programs under the root, never through the symlink out of it. */
		FUZZ_CHECK(strncmp(m.target.script_filename, cfg.cgi_root, strlen(cfg.cgi_root)) == 0);
		FUZZ_CHECK(m.target.script_filename[strlen(cfg.cgi_root)] == '/');
		FUZZ_CHECK(strstr(m.target.script_filename, "/out") == NULL);
		FUZZ_CHECK(strstr(m.target.script_filename, "/.") == NULL);
		check_env(&m.env);
		if (body_len >= 0) {
			char want[32];
			snprintf(want, sizeof(want), "%lld", (long long)body_len);
			FUZZ_CHECK(cgi_env_get(&m.env, "CONTENT_LENGTH") != NULL);
			FUZZ_CHECK(strcmp(cgi_env_get(&m.env, "CONTENT_LENGTH"), want) == 0);
		}
		fcgi_mapped_free(&m);
	} else {
		FUZZ_CHECK(r == 400 || r == 403 || r == 404 || r == 500);
		FUZZ_CHECK(why != NULL);
	}
	for (size_t i = 0; i < n; i++)
		free(params[i]);
	return 0;
}
