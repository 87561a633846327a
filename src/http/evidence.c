/*
 * User-Agents seen misreading a 102 (format and rules in http.h). Rare
 * events: the whole file is rewritten on each new entry, small enough
 * (HTTP_EVIDENCE_MAX lines) to do on the loop thread.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct evidence_entry {
	time_t until;
	char ua[HTTP_EVIDENCE_UA_MAX + 1];
};

struct http_evidence {
	char *path;          /* NULL: memory only */
	uint64_t ttl_s;
	size_t count;
	struct evidence_entry entries[HTTP_EVIDENCE_MAX];
};

/* The stored form of a User-Agent: at most HTTP_EVIDENCE_UA_MAX bytes, no
 * line break (the parser refuses CR and LF in values; this keeps the file
 * sound whatever it is given). */
static void ua_key(char *dst, const char *ua)
{
	size_t n = 0;

	for (; ua[n] && n < HTTP_EVIDENCE_UA_MAX; n++)
		dst[n] = ua[n] == '\n' || ua[n] == '\r' ? ' ' : ua[n];
	dst[n] = '\0';
}

static struct evidence_entry *find(const struct http_evidence *ev, const char *key)
{
	for (size_t i = 0; i < ev->count; i++)
		if (strcmp(ev->entries[i].ua, key) == 0)
			return (struct evidence_entry *)&ev->entries[i];
	return NULL;
}

/* A slot for a new entry: a free one, else the one that expires first. */
static struct evidence_entry *slot(struct http_evidence *ev)
{
	struct evidence_entry *oldest;

	if (ev->count < HTTP_EVIDENCE_MAX)
		return &ev->entries[ev->count++];
	oldest = &ev->entries[0];
	for (size_t i = 1; i < ev->count; i++)
		if (ev->entries[i].until < oldest->until)
			oldest = &ev->entries[i];
	return oldest;
}

static void load(struct http_evidence *ev, FILE *f)
{
	char line[HTTP_EVIDENCE_UA_MAX + 64], key[HTTP_EVIDENCE_UA_MAX + 1];
	struct evidence_entry *e;
	unsigned bad = 0;
	time_t now = time(NULL);

	while (fgets(line, sizeof(line), f) != NULL) {
		char *tab, *end;
		size_t n = strlen(line);
		long long until;

		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		tab = strchr(line, '\t');
		errno = 0;
		until = tab ? strtoll(line, &end, 10) : 0;
		if (tab == NULL || end != tab || errno != 0 || until <= 0 || tab[1] == '\0') {
			bad++;
			continue;
		}
		ua_key(key, tab + 1);
		if ((time_t)until <= now || find(ev, key) != NULL)
			continue;
		e = slot(ev);
		e->until = (time_t)until;
		memcpy(e->ua, key, sizeof(key));
	}
	if (bad)
		log_warnx("%s: %u unreadable line(s) skipped", ev->path, bad);
}

/* Reads ev->path into an empty table. */
static void read_file(struct http_evidence *ev)
{
	FILE *f = fopen(ev->path, "r");

	if (f == NULL) {
		if (errno != ENOENT)
			log_warn("%s: cannot read the 102 misread evidence, starting empty", ev->path);
		return;
	}
	load(ev, f);
	fclose(f);
	if (ev->count)
		log_info("%s: %zu User-Agent(s) get no unsolicited 102s (misread evidence)", ev->path,
		         ev->count);
}

struct http_evidence *http_evidence_open(const char *path, uint64_t ttl_s)
{
	struct http_evidence *ev = util_xcalloc(1, sizeof(*ev));

	ev->ttl_s = ttl_s;
	if (path == NULL)
		return ev;
	ev->path = util_xstrdup(path);
	read_file(ev);
	return ev;
}

void http_evidence_reload(struct http_evidence *ev)
{
	if (ev == NULL || ev->path == NULL)
		return;
	ev->count = 0;
	read_file(ev);
	log_info("%s: 102 misread evidence reread, %zu User-Agent(s) get no unsolicited 102s", ev->path,
	         ev->count);
}

void http_evidence_free(struct http_evidence *ev)
{
	if (ev == NULL)
		return;
	free(ev->path);
	free(ev);
}

int http_evidence_has(const struct http_evidence *ev, const char *ua, time_t now)
{
	char key[HTTP_EVIDENCE_UA_MAX + 1];
	const struct evidence_entry *e;

	if (ev == NULL || ua == NULL)
		return 0;
	ua_key(key, ua);
	e = find(ev, key);
	return e != NULL && e->until > now;
}

size_t http_evidence_count(const struct http_evidence *ev, time_t now)
{
	size_t n = 0;

	for (size_t i = 0; ev && i < ev->count; i++)
		n += ev->entries[i].until > now;
	return n;
}

uint64_t http_evidence_ttl_s(const struct http_evidence *ev)
{
	return ev ? ev->ttl_s : 0;
}

/* Writes the live entries to path.tmp, then renames it over path. */
static int save(const struct http_evidence *ev, time_t now)
{
	size_t n = strlen(ev->path) + 8;
	char *tmp = util_xmalloc(n);
	FILE *f;
	int r = 0;

	snprintf(tmp, n, "%s.tmp", ev->path);
	f = fopen(tmp, "w");
	if (f == NULL) {
		r = -errno;
		free(tmp);
		return r;
	}
	fprintf(f, "# cgiq: User-Agents seen misreading a 102 Processing; they get none until\n"
	           "# the time (Unix seconds) before the tab. Delete this file and restart\n"
	           "# cgiq to forget them all.\n");
	for (size_t i = 0; i < ev->count; i++)
		if (ev->entries[i].until > now)
			fprintf(f, "%lld\t%s\n", (long long)ev->entries[i].until, ev->entries[i].ua);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -errno;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, ev->path) != 0)
		r = -errno;
	if (r != 0)
		unlink(tmp);
	free(tmp);
	return r;
}

int http_evidence_add(struct http_evidence *ev, const char *ua, time_t now)
{
	char key[HTTP_EVIDENCE_UA_MAX + 1];
	struct evidence_entry *e;

	if (ev == NULL || ua == NULL || *ua == '\0')
		return 0;
	ua_key(key, ua);
	e = find(ev, key);
	if (e == NULL) {
		e = slot(ev);
		memcpy(e->ua, key, sizeof(key));
	}
	e->until = now + (time_t)ev->ttl_s;
	return ev->path ? save(ev, now) : 0;
}
