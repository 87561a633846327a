/*
 * The program's environment, built from scratch (never inherited from cgiq):
 * RFC 3875 4.1 meta-variables, common extras, and HTTP_* from request headers
 * (RFC 3875 4.1.18).
 */
#include "cgi.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENV_PATH "/usr/local/bin:/usr/bin:/bin"

struct env_list {
	char **v; /* always room for the NULL terminator */
	size_t n;
	size_t cap;
};

/* One variable derived from request headers, before it is emitted. */
struct env_hvar {
	char *var;            /* "HTTP_X_FOO" or "CONTENT_TYPE" */
	const char *name;     /* first header that produced it (borrowed) */
	size_t name_len;
	char *value;
	size_t value_len;
};

static void env_push(struct env_list *l, char *entry)
{
	if (l->n + 1 >= l->cap) {
		l->cap = l->cap ? l->cap * 2 : 32;
		l->v = util_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = entry;
	l->v[l->n] = NULL;
}

static void env_addf(struct env_list *l, const char *fmt, ...) UTIL_PRINTF(2, 3);
static void env_addf(struct env_list *l, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	s = util_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	env_push(l, s);
}

static void env_add(struct env_list *l, const char *name, const char *value)
{
	if (value != NULL)
		env_addf(l, "%s=%s", name, value);
}

/* Adds "NAME=value", replacing an earlier entry with the same NAME so the
 * program never sees a name twice (getenv and shells disagree on which wins). */
static void env_set_entry(struct env_list *l, const char *entry)
{
	size_t nlen = (size_t)(strchr(entry, '=') - entry);
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (strncmp(l->v[i], entry, nlen) == 0 && l->v[i][nlen] == '=') {
			free(l->v[i]);
			l->v[i] = util_xstrdup(entry);
			return;
		}
	}
	env_push(l, util_xstrdup(entry));
}

/* RFC 9110 5.6.2 tchar */
static int env_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int env_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!env_is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

static int env_name_is(const struct cgi_header *h, const char *name)
{
	return strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0;
}

/* RFC 3875 4.1.18: upper-case, '-' -> '_'. Other tchars ('.', '!', ...) also
 * become '_': they are not valid in shell variable names, and mapping them
 * lets the collision check catch "X.A" vs "X-A" too. */
static char *env_header_var(const struct cgi_header *h)
{
	char *var = util_xmalloc(5 + h->name_len + 1);
	size_t i;

	memcpy(var, "HTTP_", 5);
	for (i = 0; i < h->name_len; i++) {
		char c = h->name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			c = '_';
		var[5 + i] = c;
	}
	var[5 + h->name_len] = '\0';
	return var;
}

/* Fields defined as a single value: a repeat cannot be joined meaningfully
 * (RFC 9110 5.3), and a second Host is a 400 (RFC 9112 3.2). */
static int env_is_singleton(const struct cgi_header *h)
{
	return env_name_is(h, "Host") || env_name_is(h, "Content-Type") ||
	       env_name_is(h, "Authorization") || env_name_is(h, "Proxy-Authorization");
}

static void env_hvar_append(struct env_hvar *hv, const char *sep, const char *v, size_t vlen)
{
	size_t slen = strlen(sep);

	hv->value = util_xrealloc(hv->value, hv->value_len + slen + vlen + 1);
	memcpy(hv->value + hv->value_len, sep, slen);
	memcpy(hv->value + hv->value_len + slen, v, vlen);
	hv->value_len += slen + vlen;
	hv->value[hv->value_len] = '\0';
}

/* Collects the header-derived variables into hv (n entries). Returns 0 or 400. */
static int env_collect_headers(const struct cgi_request *req, struct env_hvar *hv, size_t *n,
                               const char **bad_header)
{
	size_t i, j;

	*n = 0;
	for (i = 0; i < req->header_count; i++) {
		const struct cgi_header *h = &req->headers[i];
		char *var;

		if (!env_is_token(h->name, h->name_len))
			continue;
		/* httpoxy (CVE-2016-5385): HTTP_PROXY would be read as the
		 * program's outgoing proxy. */
		if (env_name_is(h, "Proxy"))
			continue;
		/* RFC 3875 4.1.2: CONTENT_LENGTH comes from the body actually
		 * delivered, never from the client's claim. */
		if (env_name_is(h, "Content-Length"))
			continue;
		/* RFC 3875 4.1.18: credentials are not passed by default. */
		if (!req->pass_authorization &&
		    (env_name_is(h, "Authorization") || env_name_is(h, "Proxy-Authorization")))
			continue;

		if (env_name_is(h, "Content-Type"))
			var = util_xstrdup("CONTENT_TYPE"); /* RFC 3875 4.1.3 */
		else
			var = env_header_var(h);

		for (j = 0; j < *n; j++)
			if (strcmp(hv[j].var, var) == 0)
				break;
		if (j == *n) {
			hv[j].var = var;
			hv[j].name = h->name;
			hv[j].name_len = h->name_len;
			hv[j].value = util_xstrndup(h->value ? h->value : "", h->value_len);
			hv[j].value_len = strlen(hv[j].value);
			(*n)++;
			continue;
		}
		free(var);
		/* Same variable from a differently spelled name ("X-A" vs "X_A")
		 * is ambiguous and a known smuggling trick: refuse. */
		if (hv[j].name_len != h->name_len ||
		    strncasecmp(hv[j].name, h->name, h->name_len) != 0 || env_is_singleton(h)) {
			if (bad_header != NULL)
				*bad_header = h->name;
			return 400;
		}
		/* RFC 9110 5.3: a repeated list field equals its values joined with
		 * ", ". Cookie is the exception: RFC 6265 5.4 joins pairs with "; ". */
		env_hvar_append(&hv[j], env_name_is(h, "Cookie") ? "; " : ", ", h->value ? h->value : "",
		                h->value_len);
	}
	return 0;
}

/* RFC 3875 4.1.1: AUTH_TYPE is the auth-scheme token of Authorization. */
static void env_add_auth_type(struct env_list *l, const struct cgi_request *req)
{
	size_t i, start, end;

	for (i = 0; i < req->header_count; i++) {
		const struct cgi_header *h = &req->headers[i];
		if (!env_name_is(h, "Authorization") || h->value == NULL)
			continue;
		start = 0;
		while (start < h->value_len && (h->value[start] == ' ' || h->value[start] == '\t'))
			start++;
		end = start;
		while (end < h->value_len && env_is_tchar((unsigned char)h->value[end]))
			end++;
		if (end > start)
			env_addf(l, "AUTH_TYPE=%.*s", (int)(end - start), h->value + start);
		return;
	}
}

/* The meta-variables of RFC 3875 4.1, in its order, then those most
 * programs expect beyond it; CONTENT_TYPE from the request's headers hv. */
static void env_add_meta(struct env_list *l, const struct cgi_request *req, const struct env_hvar *hv, size_t nh)
{
	const struct cgi_target *t = req->target;
	const char *server_name;

	if (req->pass_authorization)
		env_add_auth_type(l, req);
	if (req->content_length >= 0)
		env_addf(l, "CONTENT_LENGTH=%" PRId64, req->content_length);
	for (size_t i = 0; i < nh; i++)
		if (strcmp(hv[i].var, "CONTENT_TYPE") == 0)
			env_add(l, "CONTENT_TYPE", hv[i].value);
	env_add(l, "GATEWAY_INTERFACE", "CGI/1.1");
	if (t != NULL) {
		env_add(l, "PATH_INFO", t->path_info ? t->path_info : "");
		/* RFC 3875 4.1.6: PATH_INFO mapped onto the document tree; only
		 * meaningful when there is a PATH_INFO. */
		if (t->path_info != NULL && t->path_info[0] != '\0' && req->document_root != NULL)
			env_addf(l, "PATH_TRANSLATED=%s%s", req->document_root, t->path_info);
	}
	/* RFC 3875 4.1.7: always set, empty when there is no query. */
	env_add(l, "QUERY_STRING", req->query_string ? req->query_string : "");
	env_add(l, "REMOTE_ADDR", req->remote_addr);
	/* RFC 3875 4.1.9: REMOTE_ADDR stands in when the name is not looked up. */
	env_add(l, "REMOTE_HOST", req->remote_addr);
	env_add(l, "REQUEST_METHOD", req->method);
	if (t != NULL)
		env_add(l, "SCRIPT_NAME", t->script_name);
	server_name = req->server_name ? req->server_name : req->server_addr;
	env_add(l, "SERVER_NAME", server_name);
	env_addf(l, "SERVER_PORT=%u", req->server_port);
	env_add(l, "SERVER_PROTOCOL", req->protocol);
	env_add(l, "SERVER_SOFTWARE", "cgiq/" CGIQ_VERSION);

	/* Not in RFC 3875 but expected by most programs (Apache, nginx set them). */
	env_add(l, "REQUEST_URI", req->request_uri);
	if (t != NULL)
		env_add(l, "SCRIPT_FILENAME", t->script_filename);
	env_add(l, "DOCUMENT_ROOT", req->document_root);
	if (req->remote_addr != NULL)
		env_addf(l, "REMOTE_PORT=%u", req->remote_port);
	env_add(l, "SERVER_ADDR", req->server_addr);
	if (req->https)
		env_add(l, "HTTPS", "on");
	env_add(l, "PATH", ENV_PATH);
	/* As Apache, lighttpd and nginx's fastcgi_params set it: php-cgi (with
	 * cgi.force_redirect, its default) refuses to run without it. A web
	 * server's own value, passed by the FastCGI front, replaces it. */
	env_add(l, "REDIRECT_STATUS", "200");
}

int cgi_env_build(const struct cgi_request *req, struct cgi_env *out, const char **bad_header)
{
	struct env_list l = {NULL, 0, 0};
	struct env_hvar *hv;
	size_t nh = 0, i;
	int status;

	out->vars = NULL;
	out->count = 0;
	hv = util_xcalloc(req->header_count ? req->header_count : 1, sizeof(*hv));
	status = env_collect_headers(req, hv, &nh, bad_header);
	if (status != 0)
		goto out;

	env_add_meta(&l, req, hv, nh);

	/* RFC 3875 4.1.18. They all start with "HTTP_", which no meta-variable
	 * above does, so a header cannot override one. */
	for (i = 0; i < nh; i++)
		if (strcmp(hv[i].var, "CONTENT_TYPE") != 0)
			env_addf(&l, "%s=%s", hv[i].var, hv[i].value);

	/* Operator-configured entries come last and win. */
	if (req->extra != NULL) {
		for (i = 0; req->extra[i] != NULL; i++) {
			const char *eq = strchr(req->extra[i], '=');
			if (eq == NULL || eq == req->extra[i])
				continue;
			env_set_entry(&l, req->extra[i]);
		}
	}
	/* --env: the operator's own, over anything else */
	for (i = 0; req->env != NULL && req->env[i] != NULL; i++)
		if (strchr(req->env[i], '=') != NULL && req->env[i][0] != '=')
			env_set_entry(&l, req->env[i]);
	out->vars = l.v;
	out->count = l.n;
	l.v = NULL;
	l.n = 0;

out:
	for (i = 0; i < nh; i++) {
		free(hv[i].var);
		free(hv[i].value);
	}
	free(hv);
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return status;
}

const char *cgi_env_get(const struct cgi_env *env, const char *name)
{
	size_t nlen = strlen(name);
	size_t i;

	if (env == NULL || env->vars == NULL)
		return NULL;
	for (i = 0; i < env->count; i++)
		if (strncmp(env->vars[i], name, nlen) == 0 && env->vars[i][nlen] == '=')
			return env->vars[i] + nlen + 1;
	return NULL;
}

void cgi_env_free(struct cgi_env *env)
{
	size_t i;

	if (env == NULL || env->vars == NULL)
		return;
	for (i = 0; i < env->count; i++)
		free(env->vars[i]);
	free(env->vars);
	env->vars = NULL;
	env->count = 0;
}
