/*
 * Request path -> program under the CGI root + PATH_INFO (RFC 3875 3.3, 4.1.5,
 * 4.1.13). The path is decoded once, split into segments, and walked
 * segment by segment with stat(2); the first regular file is the program.
 */
#include "cgi.h"

#include <errno.h>
#include <fnmatch.h>
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

/* Appends a segment that is not in the request (an index name). */
static void path_push(struct path_segs *segs, char *seg)
{
	segs->v = util_xrealloc(segs->v, (segs->n + 1) * sizeof(*segs->v));
	segs->v[segs->n++] = seg;
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

/* One mapping in progress: the request path's segments, the file found,
 * and what each step leaves for the next. */
struct path_walk {
	struct path_segs segs;   /* decoded, split request path */
	struct path_segs psegs;  /* the prefix, split */
	char *decoded, *pcopy;
	struct buf acc;          /* root + segments up to the file found */
	size_t root_len;         /* of the root in acc: acc.data + root_len is the path below it */
	struct stat st;          /* of that file */
	size_t first;            /* the first segment below the prefix */
	size_t prog;             /* the file's segment */
	int has_link;            /* a symlink on the way */
	char *canon;             /* the file's canonical path */
};

/* Decodes and splits the path, refuses dot segments (after decoding, so
 * %2e%2e and %2f cannot smuggle a ".."), and matches the prefix segment-wise
 * ("/cgi-bin" does not match "/cgi-binx"). Returns 0 or a status. */
static int path_parse(struct path_walk *w, const char *prefix, const char *raw_path, struct cgi_target *out)
{
	size_t i;
	int status;

	/* Origin-form only (RFC 9112 3.2.1); anything else maps to no program. */
	if (raw_path == NULL || raw_path[0] != '/') {
		out->why = "not a path";
		return 404;
	}
	status = path_decode(raw_path, &w->decoded);
	if (status != 0) {
		out->why = "bad percent-encoding, or %00, in the path";
		return status;
	}
	path_split(w->decoded, &w->segs);
	/* No traversal, no dot-files (.htaccess, .git) anywhere in the path. */
	for (i = 0; i < w->segs.n; i++) {
		if (w->segs.v[i][0] == '.') {
			out->why = "a segment of the path starts with '.'";
			return 403;
		}
	}
	w->pcopy = util_xstrdup(prefix ? prefix : "/");
	path_split(w->pcopy, &w->psegs);
	if (w->psegs.n > w->segs.n) {
		out->why = "outside the CGI prefix";
		return 404;
	}
	for (i = 0; i < w->psegs.n; i++) {
		if (strcmp(w->psegs.v[i], w->segs.v[i]) != 0) {
			out->why = "outside the CGI prefix";
			return 404;
		}
	}
	w->first = w->psegs.n;
	return 0;
}

/* stat of w->acc into w->st, lstat first: only a path through a symlink
 * needs realpath later (w->has_link). Returns 0 or -1 (errno set). */
static int path_stat(struct path_walk *w)
{
	if (lstat(w->acc.data, &w->st) < 0)
		return -1;
	if (S_ISLNK(w->st.st_mode)) {
		w->has_link = 1;
		return stat(w->acc.data, &w->st);
	}
	return 0;
}

/* The path named a directory (w->acc): its first index program that is a
 * regular file becomes the file found, as if the request had named it.
 * slash: the request path ended in '/'; without it, 301 to that form when
 * there is an index. Returns 0 or a status. */
static int path_find_index(struct path_walk *w, const struct cgi_map *m, int slash, struct cgi_target *out)
{
	size_t dir_len = w->acc.len;

	for (size_t i = 0; m->index != NULL && m->index[i] != NULL; i++) {
		w->acc.len = dir_len;
		w->acc.data[dir_len] = '\0';
		if (buf_append(&w->acc, "/", 1) < 0 || buf_append_str(&w->acc, m->index[i]) < 0)
			break;
		if (path_stat(w) < 0 || !S_ISREG(w->st.st_mode))
			continue;
		if (!slash) {
			out->why = "a directory: redirected to its form with a slash";
			return 301;
		}
		path_push(&w->segs, (char *)m->index[i]);
		w->prog = w->segs.n - 1;
		out->index = m->index[i];
		return 0;
	}
	out->why = m->index != NULL && m->index[0] != NULL ? "a directory without an index program" :
	                                                     "a directory, not a program";
	return 404;
}

/* Walks from the root segment by segment with lstat(2) (stat only through
 * a symlink) to the first regular file. Returns 0 or a status. */
static int path_find_file(struct path_walk *w, const char *root, struct cgi_target *out)
{
	size_t root_len = strlen(root);

	while (root_len > 0 && root[root_len - 1] == '/')
		root_len--;
	w->root_len = root_len;
	if (buf_append(&w->acc, root, root_len) < 0) {
		out->why = "too long";
		return 404;
	}
	for (size_t i = w->first; i < w->segs.n; i++) {
		if (buf_append(&w->acc, "/", 1) < 0 || buf_append_str(&w->acc, w->segs.v[i]) < 0) {
			out->why = "too long";
			return 404;
		}
		if (path_stat(w) < 0)
			return path_stat_status(errno, out);
		if (S_ISDIR(w->st.st_mode))
			continue;
		if (!S_ISREG(w->st.st_mode)) {
			/* fifos, sockets, devices are never programs */
			out->why = "not a regular file";
			return 404;
		}
		w->prog = i;
		return 0;
	}
	return 1; /* a directory: path_find_index */
}

/* A symlink may point anywhere; only what resolves inside the root runs.
 * Without one, the path built from a canonical root is canonical. Returns
 * 0 with w->canon, or a status. */
static int path_contain(struct path_walk *w, const char *root, struct cgi_target *out)
{
	char *canon_root;

	if (!w->has_link) {
		w->canon = util_xstrdup(w->acc.data);
		return 0;
	}
	w->canon = realpath(w->acc.data, NULL);
	if (w->canon == NULL)
		return path_stat_status(errno, out);
	canon_root = realpath(root, NULL);
	if (canon_root == NULL) {
		out->why = "cannot be examined";
		return 404;
	}
	if (!path_is_under(w->canon, canon_root)) {
		free(canon_root);
		out->why = "a symlink leads outside the CGI root";
		return 403;
	}
	free(canon_root);
	if (stat(w->canon, &w->st) < 0)
		return path_stat_status(errno, out);
	return 0;
}

/* The built-in asset types of --static assets: what an application's pages
 * load beside its programs. Never a program's own kind of file. */
static const char *const static_assets[] = {
	"*.css", "*.js", "*.mjs", "*.map", "*.png", "*.jpg", "*.jpeg", "*.gif", "*.svg", "*.ico", "*.webp",
	"*.avif", "*.bmp", "*.woff", "*.woff2", "*.ttf", "*.otf", "*.eot", "*.html", "*.htm", "*.txt", NULL,
};

int cgi_static_match(const char *const *patterns, const char *rel)
{
	const char *base = strrchr(rel, '/');

	base = base ? base + 1 : rel;
	for (size_t i = 0; patterns != NULL && patterns[i] != NULL; i++) {
		const char *p = patterns[i];
		if (strcmp(p, "assets") == 0) {
			if (cgi_static_match(static_assets, rel))
				return 1;
		} else if (p[0] == '/') {
			if (fnmatch(p, rel, FNM_PATHNAME) == 0)
				return 1;
		} else if (fnmatch(p, base, 0) == 0) {
			return 1;
		}
	}
	return 0;
}

/* A file that is not a program: static when a pattern says so, matched
 * against the path below the root as the request named it. Returns 0 or a
 * status. */
static int path_static(struct path_walk *w, const struct cgi_map *m, struct cgi_target *out)
{
	if (!cgi_static_match(m->static_patterns, w->acc.data + w->root_len)) {
		out->why = "not executable (no x bit in its mode)";
		return 403;
	}
	if (w->prog + 1 < w->segs.n) {
		out->why = "a static file takes no path after its name";
		return 404;
	}
	/* Whether cgiq may read it, the open that sends it says (403). */
	out->is_static = 1;
	return 0;
}

/* Whether the file may run: read by its interpreter, else executed; or is
 * a static file. Returns 0 or a status. */
static int path_runnable(struct path_walk *w, const struct cgi_map *m, struct cgi_target *out)
{
	out->interpreter = m->interpreter ? m->interpreter(m->ctx, w->canon) : NULL;
	if (!S_ISREG(w->st.st_mode)) {
		out->why = "not a regular file";
		return 403;
	}
	if (out->interpreter != NULL) {
		if (access(w->canon, R_OK) < 0) {
			out->why = "not readable (its interpreter reads it)";
			out->why_access = 1;
			return 403;
		}
		return 0;
	}
	/* access(2) alone is true for root whenever any x bit is set; also
	 * require one of the bits so a 0644 file is never run. An executable
	 * is a program, whatever the static patterns say: its source is never
	 * sent. */
	if ((w->st.st_mode & 0111) == 0)
		return path_static(w, m, out);
	if (access(w->canon, X_OK) < 0) {
		out->why = "not executable";
		out->why_access = 1;
		return 403;
	}
	return 0;
}

/* RFC 3875 4.1.13: SCRIPT_NAME is the mount point plus the program's
 * segments; 4.1.5: PATH_INFO is the decoded rest. */
static void path_fill(struct path_walk *w, struct cgi_target *out)
{
	const char *slash = strrchr(w->canon, '/');
	size_t dlen = (size_t)(slash - w->canon);
	struct buf tmp;

	buf_init(&tmp, (size_t)-1 / 2);
	out->script_filename = w->canon;
	w->canon = NULL;
	out->dir = dlen == 0 ? util_xstrdup("/") : util_xstrndup(out->script_filename, dlen);
	path_join(&tmp, &w->segs, 0, w->prog + 1);
	out->script_name = util_xstrdup(tmp.data);
	buf_reset(&tmp);
	path_join(&tmp, &w->segs, w->prog + 1, w->segs.n);
	out->path_info = util_xstrdup(tmp.data ? tmp.data : "");
	buf_free(&tmp);
}

int cgi_map(const struct cgi_map *m, const char *raw_path, struct cgi_target *out)
{
	struct path_walk w;
	int status;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	buf_init(&w.acc, PATH_MAX);
	status = path_parse(&w, m->prefix, raw_path, out);
	if (status == 0)
		status = path_find_file(&w, m->root, out);
	if (status == 1)
		status = path_find_index(&w, m, raw_path[strlen(raw_path) - 1] == '/', out);
	if (status == 0)
		status = path_contain(&w, m->root, out);
	if (status == 0)
		status = path_runnable(&w, m, out);
	if (status == 0) {
		path_fill(&w, out);
	} else {
		out->interpreter = NULL;
		out->index = NULL;
		out->is_static = 0;
	}
	free(w.canon);
	free(w.segs.v);
	free(w.psegs.v);
	free(w.decoded);
	free(w.pcopy);
	buf_free(&w.acc);
	return status;
}

int cgi_map_path(const char *root, const char *prefix, const char *raw_path, struct cgi_target *out)
{
	const struct cgi_map m = {.root = root, .prefix = prefix};

	return cgi_map(&m, raw_path, out);
}

const char *cgi_interpreter_for(const struct cgi_interpreter *v, size_t n, const char *file)
{
	const char *base = strrchr(file, '/');
	size_t blen;

	base = base ? base + 1 : file;
	blen = strlen(base);
	for (size_t i = n; i-- > 0;) {
		size_t elen = strlen(v[i].ext);
		/* ".php" runs x.php, not a file named ".php" (a dot-file) */
		if (elen > 0 && blen > elen && strcmp(base + blen - elen, v[i].ext) == 0)
			return v[i].path;
	}
	return NULL;
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
