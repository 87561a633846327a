/*
 * FastCGI parameters -> program + environment. The web server names the
 * program (SCRIPT_FILENAME); we only run it if the HTTP front would have run
 * the same file (cgi_map_path), and the environment goes through the same
 * builder (cgi_env_build): HTTP_* parameters are turned back into request
 * headers, the RFC 3875 variables into struct cgi_request fields.
 */
#include "fcgi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Parameters the environment builder computes itself from the fields below. */
static const char *const params_consumed[] = {
	"AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "DOCUMENT_ROOT", "FCGI_ROLE",
	"GATEWAY_INTERFACE", "HTTPS", "PATH", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING",
	"REMOTE_ADDR", "REMOTE_HOST", "REMOTE_PORT", "REQUEST_METHOD", "REQUEST_URI",
	"SCRIPT_FILENAME", "SCRIPT_NAME", "SERVER_ADDR", "SERVER_NAME", "SERVER_PORT",
	"SERVER_PROTOCOL",
};

/* Names a program's runtime reads as configuration: a fastcgi_param must not
 * be able to load code into it (LD_PRELOAD, BASH_ENV, PERL5OPT ...). */
static const char *const params_unsafe[] = {
	"IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "CDPATH", "GLOBIGNORE",
	"PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME",
	"PYTHONINSPECT", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "GCONV_PATH",
	"LOCPATH", "HOSTALIASES", "RESOLV_HOST_CONF", "NLSPATH", "TMPDIR", "PROXY",
};

const char *fcgi_param(char *const *params, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; params && params[i]; i++)
		if (strncmp(params[i], name, n) == 0 && params[i][n] == '=')
			return params[i] + n + 1;
	return NULL;
}

static int params_in(const char *name, size_t len, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(list[i]) == len && strncmp(list[i], name, len) == 0)
			return 1;
	return 0;
}

static int params_name_ok(const char *name, size_t len)
{
	if (len == 0 || (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int params_is_unsafe(const char *name, size_t len)
{
	static const char proxy[] = "_PROXY";

	if (len >= 3 && strncasecmp(name, "LD_", 3) == 0)
		return 1;
	if (len >= 10 && strncmp(name, "BASH_FUNC_", 10) == 0)
		return 1;
	/* httpoxy's relatives: http_proxy, HTTPS_PROXY, all_proxy ... */
	if (len >= sizeof(proxy) - 1 && strncasecmp(name + len - (sizeof(proxy) - 1), proxy, sizeof(proxy) - 1) == 0)
		return 1;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(params_unsafe); i++)
		if (strlen(params_unsafe[i]) == len && strncasecmp(params_unsafe[i], name, len) == 0)
			return 1;
	return 0;
}

/* A parameter other than HTTP_* given twice: which one would the program
 * see? Refused. Returns 1 when found. */
static int params_have_duplicate(char *const *params)
{
	for (size_t i = 0; params[i]; i++) {
		const char *eq = strchr(params[i], '=');
		size_t n = eq ? (size_t)(eq - params[i]) : strlen(params[i]);
		if (n >= 5 && strncasecmp(params[i], "HTTP_", 5) == 0)
			continue; /* repeated headers: cgi_env_build's rules */
		for (size_t j = i + 1; params[j]; j++)
			if (strncmp(params[j], params[i], n) == 0 && (params[j][n] == '=' || params[j][n] == '\0'))
				return 1;
	}
	return 0;
}

/* cgi_map_path takes a percent-encoded path; a file name is not one. */
static char *params_encode_path(const char *path)
{
	struct buf b;
	char *out;

	buf_init(&b, SIZE_MAX / 2);
	for (const char *p = path; *p; p++) {
		if (*p == '%')
			buf_append_str(&b, "%25");
		else
			buf_append(&b, p, 1);
	}
	out = util_xstrdup(b.data ? b.data : "");
	buf_free(&b);
	return out;
}

static unsigned params_port(const char *s)
{
	uint64_t v;
	return s && util_parse_uint(s, 65535, &v) == 0 ? (unsigned)v : 0;
}

/* Finds the program. Returns 0 or an HTTP status with *why set. */
static int params_map_program(const struct fcgi_params_config *cfg, char *const *params,
                              struct cgi_target *t, const char **why)
{
	const char *sf = fcgi_param(params, "SCRIPT_FILENAME");
	const char *root = cfg->cgi_root;
	size_t root_len = strlen(root);
	char *joined = NULL, *enc;
	int r;

	if (sf == NULL || *sf == '\0') {
		const char *dr = fcgi_param(params, "DOCUMENT_ROOT");
		const char *sn = fcgi_param(params, "SCRIPT_NAME");
		if (dr == NULL || *dr == '\0' || sn == NULL || *sn == '\0') {
			*why = "no SCRIPT_FILENAME (nor DOCUMENT_ROOT and SCRIPT_NAME): check the web server's fastcgi_param lines";
			return 500;
		}
		size_t dl = strlen(dr);
		while (dl > 1 && dr[dl - 1] == '/')
			dl--;
		joined = util_xmalloc(dl + strlen(sn) + 2);
		sprintf(joined, "%.*s%s%s", (int)dl, dr, sn[0] == '/' ? "" : "/", sn);
		sf = joined;
	}
	while (root_len > 1 && root[root_len - 1] == '/')
		root_len--;
	/* Only what lies under the root: a web server misconfiguration must not
	 * let a request run /bin/sh. */
	if (root_len == 1 && root[0] == '/')
		root_len = 0;
	if (strncmp(sf, root, root_len) != 0 || sf[root_len] != '/') {
		free(joined);
		*why = "SCRIPT_FILENAME is not under --cgi-root";
		return 403;
	}
	enc = params_encode_path(sf + root_len);
	{
		const struct cgi_map m = {.root = cfg->cgi_root, .prefix = "/", .interpreter = cfg->interpreter,
		                          .ctx = cfg->interpreter_ctx, .index = cfg->index};
		r = cgi_map(&m, enc, t);
	}
	free(enc);
	free(joined);
	/* The mapping's reason; cgi_target_why adds the user to a missing
	 * permission. */
	if (r != 0)
		*why = t->why ? t->why : "bad SCRIPT_FILENAME";
	return r;
}

/* SCRIPT_NAME and PATH_INFO as the web server sees them; the mapping's own
 * values (relative to the root) only stand in for missing ones. */
static void params_fix_names(char *const *params, struct cgi_target *t)
{
	const char *sn = fcgi_param(params, "SCRIPT_NAME");
	const char *pi = fcgi_param(params, "PATH_INFO");

	if (pi != NULL && *pi != '\0') {
		free(t->path_info);
		t->path_info = util_xstrdup(pi);
		pi = NULL;
	}
	if (sn != NULL && *sn != '\0') {
		size_t sl = strlen(sn), rl = strlen(t->path_info);
		/* Without fastcgi_split_path_info nginx's SCRIPT_NAME holds the
		 * PATH_INFO the mapping found beyond the file: cut it off. */
		if (pi == NULL && rl > 0 && sl > rl && strcmp(sn + sl - rl, t->path_info) == 0)
			sl -= rl;
		free(t->script_name);
		if (t->index != NULL && sn[sl - 1] == '/') {
			/* the directory the web server named, and the index cgiq
			 * found in it (as nginx's fastcgi_index would add it) */
			t->script_name = util_xmalloc(sl + strlen(t->index) + 1);
			memcpy(t->script_name, sn, sl);
			strcpy(t->script_name + sl, t->index);
		} else {
			t->script_name = util_xstrndup(sn, sl);
		}
	}
}

/* Longer than 80 lines on purpose: one pass over the parameters, sorting
 * each into request field, header or extra variable, then one mapping; the
 * refusals it logs are the ones fcgi.h lists, in that order. */
int fcgi_params_map(const struct fcgi_params_config *cfg, char *const *params, int64_t body_len,
                    struct fcgi_mapped *out, const char **why)
{
	struct cgi_request cr;
	struct cgi_header *hdrs = NULL;
	const char **extra = NULL;
	size_t n = 0, nh = 0, nx = 0;
	const char *bad = NULL, *v;
	char *uri = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	*why = NULL;
	if (params_have_duplicate(params)) {
		*why = "a parameter is given twice";
		return 400;
	}
	r = params_map_program(cfg, params, &out->target, why);
	if (r != 0)
		return r;
	params_fix_names(params, &out->target);

	while (params[n])
		n++;
	hdrs = util_xcalloc(n + 1, sizeof(*hdrs));
	extra = util_xcalloc(n + 1, sizeof(*extra));
	for (size_t i = 0; i < n; i++) {
		const char *p = params[i], *eq = strchr(p, '=');
		size_t nl;
		if (eq == NULL)
			continue;
		nl = (size_t)(eq - p);
		/* nginx sends the body's headers twice: CONTENT_TYPE from
		 * fastcgi_params and HTTP_CONTENT_TYPE from the request headers.
		 * CONTENT_TYPE wins; CONTENT_LENGTH is the body received. */
		if (nl == 19 && strncmp(p, "HTTP_CONTENT_LENGTH", 19) == 0)
			continue;
		if (nl == 17 && strncmp(p, "HTTP_CONTENT_TYPE", 17) == 0) {
			const char *ct = fcgi_param(params, "CONTENT_TYPE");
			if (ct != NULL && *ct != '\0')
				continue;
		}
		if (nl > 5 && strncasecmp(p, "HTTP_", 5) == 0) {
			/* Back to a header: HTTP_X_FOO -> X-FOO; cgi_env_build maps it
			 * again (and drops Proxy). Names that are no variable names
			 * cannot come from nginx: dropped. */
			if (!params_name_ok(p + 5, nl - 5))
				continue;
			char *name = util_xstrndup(p + 5, nl - 5);
			for (char *c = name; *c; c++)
				if (*c == '_')
					*c = '-';
			hdrs[nh].name = name;
			hdrs[nh].name_len = nl - 5;
			hdrs[nh].value = eq + 1;
			hdrs[nh].value_len = strlen(eq + 1);
			nh++;
			continue;
		}
		if (nl == 12 && strncmp(p, "CONTENT_TYPE", 12) == 0) {
			if (eq[1] != '\0') {
				hdrs[nh].name = util_xstrdup("Content-Type");
				hdrs[nh].name_len = 12;
				hdrs[nh].value = eq + 1;
				hdrs[nh].value_len = strlen(eq + 1);
				nh++;
			}
			continue;
		}
		if (params_in(p, nl, params_consumed, UTIL_ARRAY_LEN(params_consumed)))
			continue;
		if (!params_name_ok(p, nl) || params_is_unsafe(p, nl))
			continue;
		extra[nx++] = p;
	}

	memset(&cr, 0, sizeof(cr));
	v = fcgi_param(params, "REQUEST_METHOD");
	cr.method = v && *v ? v : "GET";
	cr.query_string = (v = fcgi_param(params, "QUERY_STRING")) ? v : "";
	v = fcgi_param(params, "REQUEST_URI");
	if (v == NULL || *v == '\0') {
		size_t ul = strlen(out->target.script_name) + strlen(out->target.path_info) + strlen(cr.query_string) + 2;
		uri = util_xmalloc(ul);
		snprintf(uri, ul, "%s%s%s%s", out->target.script_name, out->target.path_info,
		         *cr.query_string ? "?" : "", cr.query_string);
		v = uri;
	}
	cr.request_uri = v;
	v = fcgi_param(params, "SERVER_PROTOCOL");
	cr.protocol = v && *v ? v : "HTTP/1.1";
	cr.target = &out->target;
	v = fcgi_param(params, "DOCUMENT_ROOT");
	cr.document_root = v && *v ? v : cfg->cgi_root;
	cr.headers = hdrs;
	cr.header_count = nh;
	cr.content_length = body_len;
	cr.remote_addr = fcgi_param(params, "REMOTE_ADDR");
	cr.remote_port = params_port(fcgi_param(params, "REMOTE_PORT"));
	cr.server_addr = fcgi_param(params, "SERVER_ADDR");
	cr.server_port = params_port(fcgi_param(params, "SERVER_PORT"));
	cr.server_name = fcgi_param(params, "SERVER_NAME");
	v = fcgi_param(params, "HTTPS");
	cr.https = v && *v && strcasecmp(v, "off") != 0;
	cr.pass_authorization = cfg->pass_authorization;
	cr.extra = nx ? extra : NULL;
	cr.env = cfg->env;

	r = cgi_env_build(&cr, &out->env, &bad);
	if (r != 0) {
		*why = "request headers map to the same CGI variable";
	} else {
		out->method = util_xstrdup(cr.method);
		out->uri = util_xstrdup(cr.request_uri);
		if (cr.remote_addr && *cr.remote_addr) {
			size_t pl = strlen(cr.remote_addr) + 16;
			out->peer = util_xmalloc(pl);
			snprintf(out->peer, pl, strchr(cr.remote_addr, ':') ? "[%s]:%u" : "%s:%u", cr.remote_addr,
			         cr.remote_port);
		} else {
			out->peer = util_xstrdup("-");
		}
		v = fcgi_param(params, "CONTENT_LENGTH");
		uint64_t cl;
		if (v && *v && util_parse_uint(v, INT64_MAX, &cl) == 0)
			out->content_length = (int64_t)cl;
	}
	for (size_t i = 0; i < nh; i++)
		free((char *)hdrs[i].name);
	free(hdrs);
	free(extra);
	free(uri);
	if (r != 0)
		fcgi_mapped_free(out);
	return r;
}

void fcgi_mapped_free(struct fcgi_mapped *m)
{
	if (m == NULL)
		return;
	cgi_target_free(&m->target);
	cgi_env_free(&m->env);
	free(m->method);
	free(m->uri);
	free(m->peer);
	m->method = m->uri = m->peer = NULL;
}
