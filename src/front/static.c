/*
 * Static files (--static): an application's style sheets, scripts and
 * images beside its programs, sent as they are, on the HTTP front. Not a
 * job: no row, no 102; the log line, the access log and the counters see
 * them. GET and HEAD; Content-Type from the system's MIME table; ETag and
 * Last-Modified with conditional requests (RFC 9110 13); one byte range
 * (RFC 9110 14); the body read in chunks as the wire writes them, never
 * whole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"
#include "internal.h"

/* ---------------- the MIME table ---------------- */

struct front_mime_entry {
	char ext[24];
	char type[104];
};

struct front_mime {
	struct front_mime_entry *v; /* sorted by ext (lower case) */
	size_t n;
};

/* What a page needs typed right when the system's table is missing. */
static const struct front_mime_entry builtin_types[] = {
	{"css", "text/css"}, {"gif", "image/gif"}, {"htm", "text/html"}, {"html", "text/html"},
	{"ico", "image/vnd.microsoft.icon"}, {"jpeg", "image/jpeg"}, {"jpg", "image/jpeg"},
	{"js", "text/javascript"}, {"json", "application/json"}, {"mjs", "text/javascript"},
	{"png", "image/png"}, {"svg", "image/svg+xml"}, {"txt", "text/plain"}, {"webp", "image/webp"},
	{"woff", "font/woff"}, {"woff2", "font/woff2"},
};

static int mime_cmp(const void *a, const void *b)
{
	return strcmp(((const struct front_mime_entry *)a)->ext, ((const struct front_mime_entry *)b)->ext);
}

static void mime_add(struct front_mime *m, size_t *cap, const char *ext, const char *type)
{
	struct front_mime_entry *e;

	if (strlen(ext) >= sizeof(e->ext) || strlen(type) >= sizeof(e->type))
		return;
	if (m->n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		m->v = util_xrealloc(m->v, *cap * sizeof(*m->v));
	}
	e = &m->v[m->n++];
	for (size_t i = 0; ext[i]; i++)
		e->ext[i] = (char)(ext[i] >= 'A' && ext[i] <= 'Z' ? ext[i] - 'A' + 'a' : ext[i]);
	e->ext[strlen(ext)] = '\0';
	snprintf(e->type, sizeof(e->type), "%s", type);
}

int front_mime_load(const char *path, struct front_mime **out)
{
	struct front_mime *m = util_xcalloc(1, sizeof(*m));
	FILE *f = fopen(path, "re");
	char line[1024];
	size_t cap = 0;
	int r = 0;

	if (f != NULL) {
		/* "type ext ext ...", # comments (mime.types(5)) */
		while (fgets(line, sizeof(line), f) != NULL) {
			char *save = NULL, *type = strtok_r(line, " \t\r\n", &save), *ext;
			if (type == NULL || type[0] == '#')
				continue;
			while ((ext = strtok_r(NULL, " \t\r\n", &save)) != NULL)
				mime_add(m, &cap, ext, type);
		}
		fclose(f);
	} else {
		r = -errno;
	}
	/* The built-in types go in too: the system's win for the same
	 * extension (a stable sort keeps the first of equals). */
	for (size_t i = 0; i < UTIL_ARRAY_LEN(builtin_types); i++)
		mime_add(m, &cap, builtin_types[i].ext, builtin_types[i].type);
	if (m->n > 0)
		qsort(m->v, m->n, sizeof(*m->v), mime_cmp);
	*out = m;
	return r;
}

void front_mime_free(struct front_mime *m)
{
	if (m == NULL)
		return;
	free(m->v);
	free(m);
}

const char *front_mime_type(const struct front_mime *m, const char *file)
{
	const char *dot = strrchr(file, '/');
	struct front_mime_entry key;
	size_t lo = 0, hi;

	dot = strrchr(dot ? dot : file, '.');
	if (m == NULL || dot == NULL || strlen(dot + 1) >= sizeof(key.ext))
		return "application/octet-stream";
	for (size_t i = 0;; i++) {
		char ch = dot[1 + i];
		key.ext[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		if (ch == '\0')
			break;
	}
	/* the first of equal keys: the system's entry */
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(m->v[mid].ext, key.ext) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && strcmp(m->v[lo].ext, key.ext) == 0 ? m->v[lo].type : "application/octet-stream";
}

/* ---------------- conditional requests ---------------- */

/* Whether an If-None-Match list names etag: "*", or an entity-tag equal to
 * it by the weak comparison (RFC 9110 8.8.3.2: W/ ignored). */
static int etag_listed(const char *list, const char *etag)
{
	const char *p = list;
	size_t elen = strlen(etag);

	while (*p) {
		const char *start;
		p += strspn(p, " \t,");
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return 0; /* not a list of entity-tags: no match */
		start = p;
		p = strchr(p + 1, '"');
		if (p == NULL)
			return 0;
		p++;
		if ((size_t)(p - start) == elen && memcmp(start, etag, elen) == 0)
			return 1;
	}
	return 0;
}

/* RFC 9110 13.2.2: If-None-Match, else If-Modified-Since (GET and HEAD). */
static int not_modified(const struct front_req_info *in, const char *etag, time_t mtime)
{
	time_t since;

	if (in->if_none_match != NULL)
		return etag_listed(in->if_none_match, etag);
	return in->if_modified_since != NULL && util_http_date_parse(in->if_modified_since, &since) == 0 &&
	       mtime <= since;
}

/* RFC 9110 13.1.5: a range only while the representation is the one the
 * client has (a strong entity-tag, or the Last-Modified date exactly). */
static int if_range_holds(const char *if_range, const char *etag, const char *last_modified)
{
	if (if_range == NULL)
		return 1;
	if (if_range[0] == '"')
		return strcmp(if_range, etag) == 0;
	return strcmp(if_range, last_modified) == 0;
}

/* ---------------- the answer ---------------- */

/* "ETag: ...", "Last-Modified: ..." */
static void append_validators(struct buf *h, const char *etag, const char *lm)
{
	buf_append_str(h, "ETag: ");
	buf_append_str(h, etag);
	buf_append_str(h, "\r\nLast-Modified: ");
	buf_append_str(h, lm);
	buf_append_str(h, "\r\n");
}

/* The inode, size and modification time to the nanosecond: a file
 * replaced or rewritten gets another tag. out: 64 bytes at least. */
static void make_etag(char *out, const struct stat *st)
{
	char *p = out;

	*p++ = '"';
	p = util_put_uint(p, (uint64_t)st->st_ino, 16);
	*p++ = '-';
	p = util_put_uint(p, (uint64_t)st->st_size, 16);
	*p++ = '-';
	p = util_put_uint(p, (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec, 16);
	*p++ = '"';
	*p = '\0';
}

int front_req_static(struct front_req *r, const char *file)
{
	const struct front_req_info *in = &r->info;
	/* a program's local redirect is run again as a GET (RFC 3875 6.2.2) */
	const char *method = r->redirects > 0 ? "GET" : in->method;
	char etag[80], lm[40];
	struct front_answer a;
	uint64_t off, len;
	struct stat st;
	int fd;

	if (method == NULL || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		front_answer_init(&a, 405);
		front_answer_error(&a, 405, "Allow: GET, HEAD\r\n");
		front_req_answer(r, &a);
		return 405;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int status = fd < 0 && errno == EACCES ? 403 : 404;
		log_info("%s: static %s: %s; %d", r->tag, file, fd < 0 ? strerror(errno) : "not a regular file", status);
		if (fd >= 0)
			close(fd);
		front_req_error(r, status);
		return status;
	}
	make_etag(etag, &st);
	util_http_date(st.st_mtime, lm, sizeof(lm));
	front_answer_init(&a, 200);
	front_count_static(r->f->cfg.counters);
	if (not_modified(in, etag, st.st_mtime)) {
		/* RFC 9110 15.4.5: the validators, not the representation's
		 * metadata (as nginx answers) */
		a.status = 304;
		append_validators(&a.headers, etag, lm);
	} else {
		buf_append_str(&a.headers, "Content-Type: ");
		buf_append_str(&a.headers, front_mime_type(r->f->cfg.mime, file));
		buf_append_str(&a.headers, "\r\n");
		append_validators(&a.headers, etag, lm);
		buf_append_str(&a.headers, "X-Content-Type-Options: nosniff\r\n");
		front_answer_range(&a, if_range_holds(in->if_range, etag, lm) ? in->range : NULL, (uint64_t)st.st_size,
		                   &off, &len);
	}
	if (a.status == 304 || a.status == 416) {
		close(fd);
		front_req_answer(r, &a);
		return a.status;
	}
	/* A body of one chunk at most goes with the head, in one write (as a
	 * chunk of a larger one would be held, no more); a larger one is held
	 * by the request until it is reset, and read a chunk at a time. */
	if (len <= FRONT_FILE_CHUNK && !in->head_only && len > 0 && buf_reserve(&a.body, (size_t)len) == 0 &&
	    front_file_chunk(fd, off, off + len, a.body.data, (size_t)len) == (ssize_t)len) {
		a.body.len = (size_t)len;
		a.body.data[len] = '\0';
		close(fd);
	} else {
		r->static_fd = fd;
		a.fd = fd;
		a.off = off;
		a.len = len;
	}
	front_req_answer(r, &a);
	return a.status;
}
