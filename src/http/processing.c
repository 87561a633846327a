/*
 * 102 Processing on a waiting connection: the interim response it is due
 * (with the status monitor's Location and the program's progress), and the
 * guard against a client that took one as its answer. The connection's own
 * code (server.c) writes them on their timer.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char PROCESSING_102[] = "HTTP/1.1 102 Processing\r\n\r\n";

/* ------------------------------------------------------------------ */
/* 102 Processing */

/* Appends a draft-wright-http-progress value: 3/20 "rendering page 3". */
static void append_progress(struct buf *b, int64_t done, int64_t total, const char *text)
{
	buf_printf(b, "Progress: %lld/%lld", (long long)done, (long long)total);
	if (text && *text) {
		buf_append_str(b, " \"");
		for (const char *p = text; *p; p++) {
			unsigned char ch = (unsigned char)*p;
			if (ch == '"' || ch == '\\')
				buf_append(b, "\\", 1);
			if (ch >= 0x20 && ch != 0x7f)
				buf_append(b, p, 1);
		}
		buf_append_str(b, "\"");
	}
	buf_append_str(b, "\r\n");
}

/* The 102 the connection is due: *owned NULL (a static string) or the bytes
 * to free once written. */
void http__processing_message(struct conn *c, const char **data, size_t *len, char **owned)
{
	int64_t done, total;
	const char *text;
	int with_location = c->sent_102 == 0 && c->prefer.processing && front_req_job_id(c->req);
	int with_progress = front_req_progress(c->req, &done, &total, &text);
	struct buf b;

	if (!with_location && !with_progress) {
		/* A static string: nothing to free, and the bytes are whole in the queue. */
		*data = PROCESSING_102;
		*len = sizeof(PROCESSING_102) - 1;
		*owned = NULL;
		return;
	}
	buf_init(&b, SIZE_MAX / 2);
	buf_append_str(&b, "HTTP/1.1 102 Processing\r\n");
	if (with_location) {
		/* The status monitor: where to look if this connection is lost. */
		buf_printf(&b, "Location: %s/%s\r\n", c->srv->cfg.jobs_prefix, front_req_expose(c->req));
	}
	if (with_progress)
		append_progress(&b, done, total, text);
	buf_append_str(&b, "\r\n");
	*data = *owned = b.data;
	*len = b.len;
}

/* ------------------------------------------------------------------ */
/* misread guard */

/*
 * A client that got unsolicited 102s for a request whose final response it
 * has not read yet. If it now sends a new request, it has almost surely
 * taken a 102 as its answer: sending that final response would make it the
 * answer to the new request. If it closes right after a 102, it most likely
 * read it as its (empty) answer. Either way the connection is closed (the
 * job follows --on-disconnect) and its User-Agent gets no unsolicited 102s
 * for a while (http_evidence).
 */
int http__misread_risk(const struct conn *c)
{
	return c->sent_102 > 0 && !c->pd.solicited && (c->phase == PH_WAIT || c->phase == PH_WRITE);
}

/* RFC 9112 2.2: empty lines before a request line are ignored, so bytes
 * that are only CR and LF are no request. */
int http__only_line_breaks(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

void http__conn_misread(struct conn *c, enum front_misread kind)
{
	const struct http_request *req = http__conn_request(c);
	const char *ua = req ? http_request_header(req, "User-Agent", 0) : NULL;
	struct http_evidence *ev = c->srv->cfg.processing_evidence;
	char esc[4 * HTTP_EVIDENCE_UA_MAX + 8], then[96] = "";
	time_t now = time(NULL);
	const char *job = front_req_job_id(c->req);
	int saved = 0;

	/* Evidence steers auto only: always keeps its meaning (the README says
	 * whom it breaks), so nothing is learned there. */
	if (ev != NULL && ua != NULL && *ua != '\0' && strcmp(c->pd.rule, "mode-always") != 0 &&
	    !http_evidence_has(ev, ua, now)) {
		saved = http_evidence_add(ev, ua, now);
		snprintf(then, sizeof(then), "; no unsolicited 102s to this User-Agent for %llus",
		         (unsigned long long)http_evidence_ttl_s(ev));
	}
	log_escape(esc, sizeof(esc), ua ? ua : "", ua ? strlen(ua) : 0);
	if (kind == FRONT_MISREAD_EARLY_REQUEST)
		log_warnx("%s: a new request arrived before the final response, after %u unsolicited 102s: "
		          "the client took a 102 as its answer (User-Agent \"%s\"); closing the connection, job %s %s%s",
		          c->tag, c->sent_102, esc, job ? job : "-",
		          c->phase == PH_WRITE ? "answered, its response cut short" : "follows --on-disconnect", then);
	else
		log_warnx("%s: the client closed the connection right after a 102 (%u unsolicited): it most likely "
		          "took it as its answer (User-Agent \"%s\"); job %s follows --on-disconnect%s",
		          c->tag, c->sent_102, esc, job ? job : "-", then);
	if (saved < 0)
		log_warnx("cannot save the 102 misread evidence: %s (kept in memory until a restart)", strerror(-saved));
	front_req_misread(c->req, kind);
}

