/*
 * Request path -> program under the CGI root + PATH_INFO (RFC 3875 3.3, 4.1.5,
 * 4.1.13). The path is decoded once, split into segments, and walked
 * segment by segment with stat(2); the first regular file is the program.
 */
#include "cgi.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct path_segs {
	char **v;
	size_t n;
};

static int path_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* RFC 3986 2.1 percent-decoding into a new string. Returns 0 or 400. */
static int path_decode(const char *raw, char **out)
{
	size_t len = strlen(raw);
	char *dst = util_xmalloc(len + 1);
	size_t i, j = 0;

	for (i = 0; i < len; i++) {
		if (raw[i] != '%') {
			dst[j++] = raw[i];
			continue;
		}
		if (i + 2 >= len) {
			free(dst);
			return 400;
		}
		int hi = path_hexval(raw[i + 1]);
		int lo = hi < 0 ? -1 : path_hexval(raw[i + 2]);
		/* %00 would cut the path short at the first C string use. */
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(dst);
			return 400;
		}
		dst[j++] = (char)(hi * 16 + lo);
		i += 2;
	}
	dst[j] = '\0';
	*out = dst;
	return 0;
}

/* Splits s in place at '/'; empty segments are dropped ("a//b" == "a/b"). */
static void path_split(char *s, struct path_segs *segs)
{
	size_t cap = 8;
	char *p = s;

	segs->v = util_xmalloc(cap * sizeof(*segs->v));
	segs->n = 0;
	for (;;) {
		while (*p == '/')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (segs->n == cap) {
			cap *= 2;
			segs->v = util_xrealloc(segs->v, cap * sizeof(*segs->v));
		}
		segs->v[segs->n++] = p;
		while (*p != '\0' && *p != '/')
			p++;
	}
}

/* Joins segs[from, to) as "/a/b" (nothing when the range is empty). */
static void path_join(struct buf *b, const struct path_segs *segs, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++) {
		/* Bounded by the request path's length, so the cap cannot hit. */
		(void)buf_append(b, "/", 1);
		(void)buf_append_str(b, segs->v[i]);
	}
}

/* A failed stat on the way: a directory we may not search is forbidden,
 * not absent. */
static int path_stat_status(int err, struct cgi_target *out)
{
	if (err == EACCES) {
		out->why = "a directory on its path cannot be searched";
		out->why_access = 1;
		return 403;
	}
	out->why = err == ENOENT || err == ENOTDIR ? "no such file" : "cannot be examined";
	return 404;
}

/* 1 when path equals dir or lies below it; both canonical. */
static int path_is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Longer than 80 lines on purpose: the checks run in one pass over the
 * path (decode, split, walk to the program, canonical form, root
 * containment), in the order that makes each safe to do; pieces would pass
 * half a dozen intermediate buffers and the reader the order. */
int cgi_map_path(const char *root, const char *prefix, const char *raw_path,
                 struct cgi_target *out)
{
	struct path_segs segs = {NULL, 0}, psegs = {NULL, 0};
	char *decoded = NULL, *pcopy = NULL, *canon = NULL, *canon_root = NULL;
	struct buf acc, tmp;
	struct stat st;
	size_t i, first, prog = 0, root_len;
	int found = 0, has_link = 0, status;

	memset(out, 0, sizeof(*out));
	buf_init(&acc, PATH_MAX);
	buf_init(&tmp, (size_t)-1 / 2);

	/* Origin-form only (RFC 9112 3.2.1); anything else maps to no program. */
	if (raw_path == NULL || raw_path[0] != '/') {
		out->why = "not a path";
		status = 404;
		goto out;
	}
	status = path_decode(raw_path, &decoded);
	if (status != 0) {
		out->why = "bad percent-encoding, or %00, in the path";
		goto out;
	}
	path_split(decoded, &segs);

	/* Checked after decoding so %2e%2e and %2f cannot smuggle a "..":
	 * no traversal, no dot-files (.htaccess, .git) anywhere in the path. */
	for (i = 0; i < segs.n; i++) {
		if (segs.v[i][0] == '.') {
			out->why = "a segment of the path starts with '.'";
			status = 403;
			goto out;
		}
	}

	/* Segment-wise, so "/cgi-bin" does not match "/cgi-binx". */
	pcopy = util_xstrdup(prefix ? prefix : "/");
	path_split(pcopy, &psegs);
	if (psegs.n > segs.n) {
		out->why = "outside the CGI prefix";
		status = 404;
		goto out;
	}
	for (i = 0; i < psegs.n; i++) {
		if (strcmp(psegs.v[i], segs.v[i]) != 0) {
			out->why = "outside the CGI prefix";
			status = 404;
			goto out;
		}
	}
	first = psegs.n;

	root_len = strlen(root);
	while (root_len > 0 && root[root_len - 1] == '/')
		root_len--;
	if (buf_append(&acc, root, root_len) < 0) {
		out->why = "too long";
		status = 404;
		goto out;
	}
	for (i = first; i < segs.n; i++) {
		if (buf_append(&acc, "/", 1) < 0 || buf_append_str(&acc, segs.v[i]) < 0) {
			out->why = "too long";
			status = 404;
			goto out;
		}
		/* lstat first: only a path through a symlink needs realpath below. */
		if (lstat(acc.data, &st) < 0) {
			status = path_stat_status(errno, out);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			has_link = 1;
			if (stat(acc.data, &st) < 0) {
				status = path_stat_status(errno, out);
				goto out;
			}
		}
		if (S_ISDIR(st.st_mode))
			continue;
		if (!S_ISREG(st.st_mode)) {
			/* fifos, sockets, devices are never programs */
			out->why = "not a regular file";
			status = 404;
			goto out;
		}
		prog = i;
		found = 1;
		break;
	}
	if (!found) {
		out->why = "a directory, not a program";
		status = 404;
		goto out;
	}

	/* A symlink may point anywhere; only what resolves inside the root runs.
	 * Without one, the path built from a canonical root is canonical. */
	if (has_link) {
		canon = realpath(acc.data, NULL);
		canon_root = realpath(root, NULL);
		if (canon == NULL || canon_root == NULL) {
			status = canon == NULL ? path_stat_status(errno, out) : 404;
			goto out;
		}
		if (!path_is_under(canon, canon_root)) {
			out->why = "a symlink leads outside the CGI root";
			status = 403;
			goto out;
		}
		if (stat(canon, &st) < 0) {
			status = path_stat_status(errno, out);
			goto out;
		}
	} else {
		canon = util_xstrdup(acc.data);
	}
	/* access(2) alone is true for root whenever any x bit is set; also
	 * require one of the bits so a 0644 file is never run. */
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
		out->why = S_ISREG(st.st_mode) ? "not executable (no x bit in its mode)" : "not a regular file";
		status = 403;
		goto out;
	}
	if (access(canon, X_OK) < 0) {
		out->why = "not executable";
		out->why_access = 1;
		status = 403;
		goto out;
	}

	out->script_filename = util_xstrdup(canon);
	{
		const char *slash = strrchr(canon, '/');
		size_t dlen = (size_t)(slash - canon);
		out->dir = dlen == 0 ? util_xstrdup("/") : util_xstrndup(canon, dlen);
	}
	/* RFC 3875 4.1.13: SCRIPT_NAME is the mount point plus the program's
	 * segments; 4.1.5: PATH_INFO is the decoded rest. */
	path_join(&tmp, &segs, 0, prog + 1);
	out->script_name = util_xstrdup(tmp.data);
	buf_reset(&tmp);
	path_join(&tmp, &segs, prog + 1, segs.n);
	out->path_info = util_xstrdup(tmp.data ? tmp.data : "");
	status = 0;

out:
	free(canon);
	free(canon_root);
	free(segs.v);
	free(psegs.v);
	free(decoded);
	free(pcopy);
	buf_free(&acc);
	buf_free(&tmp);
	return status;
}

void cgi_target_free(struct cgi_target *t)
{
	if (t == NULL)
		return;
	free(t->script_filename);
	free(t->script_name);
	free(t->path_info);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}

const char *cgi_target_why(const struct cgi_target *t, const char *user, char *buf, size_t size)
{
	const char *why = t->why ? t->why : "refused";

	if (!t->why_access)
		return why;
	if (user != NULL)
		snprintf(buf, size, "%s by cgiq's user %s", why, user);
	else
		snprintf(buf, size, "%s by cgiq's user (uid %u)", why, (unsigned)getuid());
	return buf;
}
