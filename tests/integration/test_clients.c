/*
 * Real HTTP clients against the 102 policy (README, "102 Processing policy"):
 * Python's http.client, urllib, requests, urllib3, httpx and aiohttp, Node's
 * http and fetch, curl and wget, each with its own User-Agent and with a
 * custom one. Under the default policy every one of them gets 200 and the
 * exact bytes for each request of a keep-alive sequence, and exactly the
 * allow-listed ones get 102s. Under --processing always, the clients that
 * take a 102 as their answer never get another request's answer (the
 * misread guard). A raw client that behaves like a confused one is closed
 * on, logged, counted, and its User-Agent goes without 102s, across a
 * restart, until the evidence file is deleted and cgiq gets SIGHUP.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"
#include "util/util.h"

#define CLIENTS_DIR CGIQ_FIXTURES "/../clients"
#define PYTHON "/usr/bin/python3"
#define JAVA "java " CLIENTS_DIR "/Client.java"
#define CLIENT_DEADLINE_MS 60000

static const char PROCESSING_102[] = "HTTP/1.1 102 Processing\r\n\r\n";

/* "200 LENGTH SHA256" of the PDF and of /hello, as the program writes them. */
static char pdf_line[128], hello_line[128];

/* The program's body run directly (header block cut off), as the line a client prints. */
static int expected_line(const char *script, const char *query, char *out, size_t size)
{
	char cmd[1024], sum[256] = "", hex[80] = "";
	long len = 0;

	snprintf(cmd, sizeof(cmd),
	         "f=$(mktemp) && cd %s/cgi-bin && QUERY_STRING='%s' REQUEST_METHOD=GET ./%s "
	         "| perl -0777 -pe 's/\\A.*?\\r?\\n\\r?\\n//s' >\"$f\" && wc -c <\"$f\" && sha256sum <\"$f\"; rm -f \"$f\"",
	         CGIQ_EXAMPLES, query, script);
	if (t_run(cmd, sum, sizeof(sum)) != 0 || sscanf(sum, "%ld %64s", &len, hex) != 2 || strlen(hex) != 64)
		return -1;
	snprintf(out, size, "200 %ld %s", len, hex);
	return 0;
}

/* ---------------- clients run in parallel ---------------- */

struct client {
	const char *name;    /* marker in the URLs (c=NAME) and file names */
	const char *cmd;     /* program and library, before the User-Agent */
	const char *ua;      /* "-": its own */
	int gets_102;        /* on the allow-list with this User-Agent */
	pid_t pid;
	char out[512];
};

static void spawn(struct client *c, const struct tdaemon *d)
{
	char cmd[2048];
	int port = d->port;

	snprintf(c->out, sizeof(c->out), "%s/client-%s.out", d->dir, c->name);
	snprintf(cmd, sizeof(cmd),
	         "exec %s '%s' 'http://127.0.0.1:%d/sample.pdf?seconds=3&c=%s' 'http://127.0.0.1:%d/hello?c=%s' "
	         "'http://127.0.0.1:%d/sample.pdf?seconds=3&c=%s' >%s 2>%s.err",
	         c->cmd, c->ua, port, c->name, port, c->name, port, c->name, c->out, c->out);
	c->pid = fork();
	if (c->pid == 0) {
		setpgid(0, 0);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
}

/* Waits for every client until the deadline; one still running is killed
 * (its group) and reported. */
static void wait_all(struct client *cs, size_t n, int deadline_ms)
{
	uint64_t end = t_now_ms() + (uint64_t)deadline_ms;
	size_t left = n;

	while (left > 0) {
		left = 0;
		for (size_t i = 0; i < n; i++) {
			if (cs[i].pid <= 0)
				continue;
			if (waitpid(cs[i].pid, NULL, WNOHANG) == cs[i].pid)
				cs[i].pid = 0;
			else
				left++;
		}
		if (left == 0)
			break;
		if (t_now_ms() >= end) {
			for (size_t i = 0; i < n; i++) {
				if (cs[i].pid <= 0)
					continue;
				fprintf(stderr, "client %s still running at the deadline: killed\n", cs[i].name);
				kill(-cs[i].pid, SIGKILL);
				waitpid(cs[i].pid, NULL, 0);
				cs[i].pid = 0;
			}
			break;
		}
		usleep(20000);
	}
}

/* Sum of the 102s sent for the client's jobs. */
static long sent_102(const struct tdaemon *d, const char *name)
{
	char cmd[1024], out[64] = "";

	snprintf(cmd, sizeof(cmd),
	         "sqlite3 '%s' \"SELECT coalesce(sum(processing_sent), -1) FROM jobs WHERE uri LIKE '%%c=%s'\"", d->db,
	         name);
	t_run(cmd, out, sizeof(out));
	return strtol(out, NULL, 10);
}

/* Waits until the client's three rows have ended (rows lag by up to 25 ms). */
struct rows_wait {
	const struct tdaemon *d;
	const char *name;
};

static int rows_done(void *ud)
{
	struct rows_wait *w = ud;
	char cmd[1024], out[64] = "";

	snprintf(cmd, sizeof(cmd),
	         "sqlite3 '%s' \"SELECT count(*) FROM jobs WHERE uri LIKE '%%c=%s' AND state='succeeded'\"", w->d->db,
	         w->name);
	t_run(cmd, out, sizeof(out));
	return atoi(out) == 3;
}

static void check_answers(const struct client *c)
{
	char *got = t_slurp(c->out), want[512];

	snprintf(want, sizeof(want), "%s\n%s\n%s\n", pdf_line, hello_line, pdf_line);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	if (strcmp(got, want) != 0) {
		char *err;
		char errpath[600];
		snprintf(errpath, sizeof(errpath), "%s.err", c->out);
		err = t_slurp(errpath);
		fprintf(stderr, "\n  client %s (%s, User-Agent %s) printed:\n%s  want:\n%s  stderr:\n%s\n", c->name, c->cmd,
		        c->ua, got, want, err ? err : "");
		free(err);
	}
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_default_policy(void)
{
	static const char *const extra[] = { "--processing-after", "1s", "--processing-interval", "1s",
	                                     "--max-jobs", "40", NULL };
	static const char custom[] = "report-fetcher/1.0";
	struct client cs[] = {
		{ "httpclient", PYTHON " " CLIENTS_DIR "/client.py http.client", "-", 0, 0, "" },
		{ "httpclient-ua", PYTHON " " CLIENTS_DIR "/client.py http.client", custom, 0, 0, "" },
		{ "urllib", PYTHON " " CLIENTS_DIR "/client.py urllib", "-", 0, 0, "" },
		{ "urllib-ua", PYTHON " " CLIENTS_DIR "/client.py urllib", custom, 0, 0, "" },
		{ "requests", PYTHON " " CLIENTS_DIR "/client.py requests", "-", 0, 0, "" },
		{ "requests-ua", PYTHON " " CLIENTS_DIR "/client.py requests", custom, 0, 0, "" },
		{ "requests-browser", PYTHON " " CLIENTS_DIR "/client.py requests",
		  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", 0,
		  0, "" },
		{ "urllib3", PYTHON " " CLIENTS_DIR "/client.py urllib3", "-", 0, 0, "" },
		{ "urllib3-ua", PYTHON " " CLIENTS_DIR "/client.py urllib3", custom, 0, 0, "" },
		{ "httpx", PYTHON " " CLIENTS_DIR "/client.py httpx", "-", 1, 0, "" },
		{ "httpx-ua", PYTHON " " CLIENTS_DIR "/client.py httpx", custom, 0, 0, "" },
		{ "aiohttp", PYTHON " " CLIENTS_DIR "/client.py aiohttp", "-", 1, 0, "" },
		{ "aiohttp-ua", PYTHON " " CLIENTS_DIR "/client.py aiohttp", custom, 0, 0, "" },
		{ "nodehttp", "node " CLIENTS_DIR "/client.mjs http", "-", 0, 0, "" },
		{ "nodehttp-ua", "node " CLIENTS_DIR "/client.mjs http", custom, 0, 0, "" },
		{ "nodefetch", "node " CLIENTS_DIR "/client.mjs fetch", "-", 1, 0, "" },
		{ "nodefetch-ua", "node " CLIENTS_DIR "/client.mjs fetch", custom, 0, 0, "" },
		{ "curl", CLIENTS_DIR "/client.sh curl", "-", 1, 0, "" },
		{ "curl-ua", CLIENTS_DIR "/client.sh curl", custom, 0, 0, "" },
		{ "wget", CLIENTS_DIR "/client.sh wget", "-", 1, 0, "" },
		{ "wget-ua", CLIENTS_DIR "/client.sh wget", custom, 0, 0, "" },
		{ "javahttpclient", JAVA " httpclient", "-", 1, 0, "" },
		{ "javahttpclient-ua", JAVA " httpclient", custom, 0, 0, "" },
		{ "javaurlconnection", JAVA " urlconnection", "-", 0, 0, "" },
		{ "javaurlconnection-ua", JAVA " urlconnection", custom, 0, 0, "" },
	};
	struct tdaemon d;

	/* Node's fetch says "node" from Node.js 20 on (the listed row); Node 18's
	 * says "undici", which is not listed: it then waits without 102s. */
	{
		char v[32] = "";
		t_run("node -e 'process.stdout.write(process.versions.node)'", v, sizeof(v));
		if (atoi(v) < 20)
			for (size_t i = 0; i < UTIL_ARRAY_LEN(cs); i++)
				if (strcmp(cs[i].name, "nodefetch") == 0)
					cs[i].gets_102 = 0;
	}
	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cs); i++)
		spawn(&cs[i], &d);
	wait_all(cs, UTIL_ARRAY_LEN(cs), CLIENT_DEADLINE_MS);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cs); i++) {
		struct rows_wait w = { &d, cs[i].name };
		long n;

		check_answers(&cs[i]);
		CU_ASSERT(t_wait_for(rows_done, &w, 5000));
		n = sent_102(&d, cs[i].name);
		/* two PDFs of 3 s, a 102 after 1 s and every second: 2 or 3 each */
		if (cs[i].gets_102 ? n < 4 : n != 0)
			fprintf(stderr, "\n  client %s: %ld 102s sent\n", cs[i].name, n);
		if (cs[i].gets_102) {
			CU_ASSERT(n >= 4 && n <= 6);
		} else {
			CU_ASSERT_EQUAL(n, 0);
		}
	}
	/* nobody misread anything */
	CU_ASSERT(!td_log_has(&d, "as its answer"));
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* --processing always: clients known to take a 102 as their answer get a
 * wrong (empty) answer for that request, as the README says, but never the
 * answer of another request. */
static void test_always_guard(void)
{
	static const char *const extra[] = { "--processing", "always", "--processing-after", "1s",
	                                     "--processing-interval", "1s", NULL };
	struct client cs[] = {
		{ "httpclient", PYTHON " " CLIENTS_DIR "/client.py http.client", "-", 0, 0, "" },
		{ "requests", PYTHON " " CLIENTS_DIR "/client.py requests", "-", 0, 0, "" },
		{ "urllib3", PYTHON " " CLIENTS_DIR "/client.py urllib3", "-", 0, 0, "" },
		{ "urllib3-ua", PYTHON " " CLIENTS_DIR "/client.py urllib3", "report-fetcher/1.0", 0, 0, "" },
		{ "urllib", PYTHON " " CLIENTS_DIR "/client.py urllib", "-", 0, 0, "" },
		{ "javaurlconnection", JAVA " urlconnection", "-", 0, 0, "" },
	};
	struct tdaemon d;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cs); i++)
		spawn(&cs[i], &d);
	wait_all(cs, UTIL_ARRAY_LEN(cs), CLIENT_DEADLINE_MS);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(cs); i++) {
		char *got = t_slurp(cs[i].out), *line, *save = NULL;
		int k = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		for (line = strtok_r(got, "\n", &save); line; line = strtok_r(NULL, "\n", &save), k++) {
			/* each answer is its own request's, or an error, or the 102 taken as final */
			int ok = strcmp(line, k == 1 ? hello_line : pdf_line) == 0 || strncmp(line, "ERROR ", 6) == 0 ||
			         strncmp(line, "102 ", 4) == 0;
			if (!ok)
				fprintf(stderr, "\n  client %s, request %d: wrong answer %s\n", cs[i].name, k + 1, line);
			CU_ASSERT(ok);
			CU_ASSERT(k != 1 || strcmp(line, pdf_line) != 0);
		}
		CU_ASSERT_EQUAL(k, 3);
		free(got);
		/* what the README says always does to them: the first answer is the 102 */
		got = t_slurp(cs[i].out);
		CU_ASSERT(got != NULL && strncmp(got, "102 ", 4) == 0);
		if (got && i < 5)
			CU_ASSERT(strncmp(got, "102 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", 71) == 0);
		free(got);
	}
	/* the keep-alive clients sent /hello early: the guard closed on them */
	CU_ASSERT(td_wait_log(&d, "(User-Agent \"python-urllib3/1.26", 5000) ||
	          td_wait_log(&d, "(User-Agent \"python-urllib3/", 5000));
	CU_ASSERT(td_log_has(&d, "a new request arrived before the final response"));
	/* always learns nothing */
	CU_ASSERT(!td_log_has(&d, "no unsolicited 102s to this User-Agent"));
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* Java's HttpClient fails on a 9th 102 (ProtocolException): the row's cap
 * of 8 is exactly its limit, and auto keeps to it. */
static void test_java_httpclient_cap(void)
{
	static const char *const runs[][9] = {
		{ "--processing", "always", "--processing-max", "8", NULL },
		{ "--processing", "always", "--processing-max", "9", NULL },
		{ "--processing", "auto", NULL },
	};
	for (size_t i = 0; i < UTIL_ARRAY_LEN(runs); i++) {
		const char *extra[12] = { "--processing-after", "200ms", "--processing-interval", "200ms" };
		struct client c = { "java", JAVA " httpclient", "-", 1, 0, "" };
		struct rows_wait w;
		struct tdaemon d;
		char *got;
		size_t k = 4;

		for (size_t j = 0; runs[i][j]; j++)
			extra[k++] = runs[i][j];
		extra[k] = NULL;
		CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
		w = (struct rows_wait){ &d, "java" };
		spawn(&c, &d);
		wait_all(&c, 1, CLIENT_DEADLINE_MS);
		if (i == 1) {
			/* 9 x 102 in 3 s: the first answer is an error */
			got = t_slurp(c.out);
			CU_ASSERT(got != NULL && strncmp(got, "ERROR ProtocolException\n", 24) == 0);
			free(got);
		} else {
			check_answers(&c);
			CU_ASSERT(t_wait_for(rows_done, &w, 5000));
			CU_ASSERT_EQUAL(sent_102(&d, "java"), 16);
		}
		CU_ASSERT_EQUAL(td_stop(&d), 0);
		td_cleanup(&d);
	}
}

/* Headless Chromium: a page that takes 2 s, then its script fetches the
 * PDF, /hello and the PDF on the page's connections; every answer is right
 * and each slow one came with 102s. */
static void test_chromium(void)
{
	static const char *const extra[] = { "--processing-after", "500ms", "--processing-interval", "500ms", NULL };
	struct tdaemon d;
	struct rows_wait w;
	char cmd[2048], *dom = malloc(65536), want[256], page[64] = "";
	long pdf_len = strtol(strchr(pdf_line, ' ') + 1, NULL, 10);

	CU_ASSERT_PTR_NOT_NULL_FATAL(dom);
	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	w = (struct rows_wait){ &d, "chromium" };
	/* the flags keep it off the network (this machine has none) and out of
	 * any profile; timeout stops it by its pid */
	snprintf(cmd, sizeof(cmd),
	         "timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
	         "--disable-background-networking --disable-component-update --disable-sync --user-data-dir=%s/chromium "
	         "--virtual-time-budget=30000 --dump-dom 'http://127.0.0.1:%d/slow-html?2' 2>%s/chromium.err",
	         d.dir, d.port, d.dir);
	t_run(cmd, dom, 65536);
	snprintf(want, sizeof(want), "<pre id=\"out\">200 %ld %%PDF-\n200 14 Hello\n200 %ld %%PDF-</pre>", pdf_len, pdf_len);
	if (strstr(dom, want) == NULL)
		fprintf(stderr, "\n  chromium's DOM:\n%s\n  want %s\n", dom, want);
	CU_ASSERT(strstr(dom, "<title>done</title>") != NULL);
	CU_ASSERT(strstr(dom, want) != NULL);
	CU_ASSERT(t_wait_for(rows_done, &w, 5000));
	/* two PDFs of 2 s with a 102 every 500 ms; the page's own 2 s too */
	CU_ASSERT(sent_102(&d, "chromium") >= 6);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT processing_sent FROM jobs WHERE uri = '/slow-html?2'\"", d.db);
	t_run(cmd, page, sizeof(page));
	CU_ASSERT(atoi(page) >= 3);
	free(dom);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* ---------------- a confused raw client ---------------- */

static int admin_port;

/* 1 when the /metrics sample line (name and labels, then its value) is there. */
static int metric(const char *line)
{
	char sample[256];
	const char *sp = strrchr(line, ' ');

	snprintf(sample, sizeof(sample), "%.*s", (int)(sp - line + 1), line);
	return t_metric(admin_port, sample) == strtoll(sp + 1, NULL, 10);
}

static int daemon_port;

static const char *req(const char *path, const char *ua, char *out, size_t size)
{
	snprintf(out, size, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: %s\r\n\r\n", path, daemon_port,
	         ua);
	return out;
}

/* Reads exactly one 102 (the bytes, nothing more). */
static int read_one_102(int fd)
{
	char b[sizeof(PROCESSING_102)];
	size_t got = 0, want = sizeof(PROCESSING_102) - 1;

	while (got < want) {
		ssize_t n = read(fd, b + got, want - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return memcmp(b, PROCESSING_102, want) == 0 ? 0 : -1;
}

/* Everything until the server closes (at most 10 s), NUL-terminated. */
static size_t read_to_close(int fd, char *out, size_t size)
{
	size_t got = 0;
	uint64_t end = t_now_ms() + 10000;

	while (got + 1 < size && t_now_ms() < end) {
		ssize_t n = read(fd, out + got, size - 1 - got);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		got += (size_t)n;
	}
	out[got] = '\0';
	return got;
}

/* A request for the PDF by ua on a new connection: how many 102s came before its 200. */
static int interims_for(const struct tdaemon *d, const char *ua)
{
	char raw[512];
	struct tresp r;
	int fd = t_connect(d->port), n = -1;

	if (fd < 0)
		return -1;
	if (t_send_str(fd, req("/sample.pdf?seconds=2", ua, raw, sizeof(raw))) == 0 &&
	    t_read_response(fd, &r, 0, 10000) == 0) {
		n = r.status == 200 && r.body_len == strtoul(strchr(pdf_line, ' ') + 1, NULL, 10) ? r.interim_count : -2;
		t_resp_free(&r);
	}
	close(fd);
	return n;
}

static void test_confused_client(void)
{
	char admin[48], raw[512], evidence[600], *got, *file;
	const char *extra[] = { "--processing-after", "500ms", "--processing-interval", "500ms", "--processing-client",
	                        "confused/* unlimited", "--admin-listen", admin,
	                        "--processing-relay", "127.0.0.0/8", NULL };
	struct tdaemon d;
	int fd;

	admin_port = t_free_port();
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	daemon_port = d.port;
	snprintf(evidence, sizeof(evidence), "%s/spool/.cgiq-102-misread", d.dir);
	CU_ASSERT_EQUAL(metric("cgiq_processing_misread_total{front=\"http\",kind=\"early-request\"} 0\n"), 1);

	/* the operator's row lets it have 102s; the declared relay's proxy
	 * headers do not stop them */
	CU_ASSERT(interims_for(&d, "confused/2") >= 2);
	CU_ASSERT(interims_for(&d, "confused/2\r\nX-Forwarded-For: 192.0.2.7\r\nVia: 1.1 haproxy") >= 2);

	/* it takes the first 102 as its answer and sends its next request */
	fd = t_connect(d.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(t_send_str(fd, req("/sample.pdf?seconds=2", "confused/1", raw, sizeof(raw))), 0);
	CU_ASSERT_EQUAL_FATAL(read_one_102(fd), 0);
	CU_ASSERT_EQUAL(t_send_str(fd, req("/hello", "confused/1", raw, sizeof(raw))), 0);
	got = malloc(65536);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	read_to_close(fd, got, 65536);
	close(fd);
	/* what follows is at most more 102s: never the PDF, never /hello's answer */
	for (const char *p = got; *p; p += sizeof(PROCESSING_102) - 1) {
		if (strncmp(p, PROCESSING_102, sizeof(PROCESSING_102) - 1) != 0) {
			fprintf(stderr, "\n  after the early request: %.80s\n", p);
			CU_FAIL("bytes other than 102s after the early request");
			break;
		}
	}
	free(got);
	CU_ASSERT(td_wait_log(&d, "a new request arrived before the final response", 5000));
	CU_ASSERT(td_log_has(&d, "(User-Agent \"confused/1\")"));
	CU_ASSERT(td_log_has(&d, "no unsolicited 102s to this User-Agent for 604800s"));
	CU_ASSERT_EQUAL(metric("cgiq_processing_misread_total{front=\"http\",kind=\"early-request\"} 1\n"), 1);
	CU_ASSERT(t_file_has(evidence, "\tconfused/1\n"));

	/* from now on it waits without 102s, and gets its answer; others still get them */
	CU_ASSERT_EQUAL(interims_for(&d, "confused/1"), 0);
	CU_ASSERT(interims_for(&d, "confused/2") >= 2);

	/* kept across a restart */
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	CU_ASSERT_FATAL(td_restart(&d, extra) == 0);
	daemon_port = d.port;
	CU_ASSERT_EQUAL(interims_for(&d, "confused/1"), 0);

	/* forgotten: delete the file, SIGHUP */
	CU_ASSERT_EQUAL(unlink(evidence), 0);
	CU_ASSERT_EQUAL(kill(d.pid, SIGHUP), 0);
	CU_ASSERT(td_wait_log(&d, "102 misread evidence reread, 0 User-Agent(s)", 5000));
	CU_ASSERT(interims_for(&d, "confused/1") >= 2);

	/* one that closes right after a 102 (a script that read it and exited) */
	fd = t_connect(d.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(t_send_str(fd, req("/sample.pdf?seconds=2", "confused/3", raw, sizeof(raw))), 0);
	CU_ASSERT_EQUAL_FATAL(read_one_102(fd), 0);
	close(fd);
	CU_ASSERT(td_wait_log(&d, "the client closed the connection right after a 102 (1 unsolicited): it most likely "
	                          "took it as its answer (User-Agent \"confused/3\")", 5000));
	CU_ASSERT_EQUAL(metric("cgiq_processing_misread_total{front=\"http\",kind=\"closed-after-102\"} 1\n"), 1);
	file = t_slurp(evidence);
	CU_ASSERT(file != NULL && strstr(file, "\tconfused/3\n") != NULL && strstr(file, "confused/1") == NULL);
	free(file);
	CU_ASSERT_EQUAL(interims_for(&d, "confused/3"), 0);

	/* curl, a checked client, closing right after a 102 was stopped by its
	 * user: not suspected, nothing learned */
	fd = t_connect(d.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(t_send_str(fd, req("/sample.pdf?seconds=2", "curl/7.88.1", raw, sizeof(raw))), 0);
	CU_ASSERT_EQUAL_FATAL(read_one_102(fd), 0);
	close(fd);
	CU_ASSERT(td_wait_log(&d, "client went away while job", 5000));
	CU_ASSERT_EQUAL(metric("cgiq_processing_misread_total{front=\"http\",kind=\"closed-after-102\"} 1\n"), 1);
	CU_ASSERT(interims_for(&d, "curl/7.88.1") >= 2);

	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* ---------------- nginx proxy_pass in front ---------------- */

/*
 * The configurations people use, each on its own nginx port: the README's
 * (keepalive upstream, proxy headers), the keepalive example of nginx's own
 * documentation (no proxy headers: Host is the upstream's name), HTTP/1.1 to
 * an address (nginx then sends Connection: close), and nginx's default
 * (HTTP/1.0 upstream). curl through each gets its own answers, nginx logs
 * 200, and cgiq sent no 102. The last server asks for 102s on purpose
 * (Prefer: processing) to show what nginx makes of one: the check can fail.
 */
static void test_nginx_proxy_pass(void)
{
	static const char *const names[] = { "readme", "docs", "address", "default", "asks" };
	static const char *const extra[] = { "--processing-after", "1s", "--processing-interval", "1s", NULL };
	struct tdaemon d;
	struct tserver ng;
	struct client cs[UTIL_ARRAY_LEN(names)];
	char body[6000], dir[400], logpath[600];
	int ports[UTIL_ARRAY_LEN(names)];

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	snprintf(dir, sizeof(dir), "%s/nginx-front", d.dir);
	CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
	for (size_t i = 0; i < UTIL_ARRAY_LEN(names); i++)
		CU_ASSERT_FATAL((ports[i] = t_free_port()) > 0);
	snprintf(body, sizeof(body),
	         "\tupstream cgiq_backend { server 127.0.0.1:%d; keepalive 8; }\n"
	         /* the README's */
	         "\tserver {\n\t\tlisten 127.0.0.1:%%PORT%%;\n\t\taccess_log %s/access-readme.log;\n"
	         "\t\tlocation / {\n"
	         "\t\t\tproxy_pass http://cgiq_backend;\n"
	         "\t\t\tproxy_http_version 1.1;\n"
	         "\t\t\tproxy_set_header Connection \"\";\n"
	         "\t\t\tproxy_set_header Host $host;\n"
	         "\t\t\tproxy_set_header X-Real-IP $remote_addr;\n"
	         "\t\t\tproxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
	         "\t\t\tproxy_set_header X-Forwarded-Proto $scheme;\n"
	         "\t\t\tproxy_read_timeout 300s;\n"
	         "\t\t}\n\t}\n"
	         /* nginx's documentation of upstream keepalive */
	         "\tserver {\n\t\tlisten 127.0.0.1:%d;\n\t\taccess_log %s/access-docs.log;\n"
	         "\t\tlocation / { proxy_pass http://cgiq_backend; proxy_http_version 1.1; "
	         "proxy_set_header Connection \"\"; }\n\t}\n"
	         "\tserver {\n\t\tlisten 127.0.0.1:%d;\n\t\taccess_log %s/access-address.log;\n"
	         "\t\tlocation / { proxy_pass http://127.0.0.1:%d; proxy_http_version 1.1; }\n\t}\n"
	         "\tserver {\n\t\tlisten 127.0.0.1:%d;\n\t\taccess_log %s/access-default.log;\n"
	         "\t\tlocation / { proxy_pass http://127.0.0.1:%d; }\n\t}\n"
	         "\tserver {\n\t\tlisten 127.0.0.1:%d;\n\t\taccess_log %s/access-asks.log;\n"
	         "\t\tlocation / { proxy_pass http://cgiq_backend; proxy_http_version 1.1; "
	         "proxy_set_header Connection \"\"; proxy_set_header Prefer processing; "
	         "proxy_read_timeout 2s; }\n\t}\n",
	         d.port, dir, ports[1], dir, ports[2], dir, d.port, ports[3], dir, d.port, ports[4], dir);
	CU_ASSERT_FATAL(tn_start(&ng, dir, ports[0], body) == 0);

	/* curl through each, three requests on one connection to nginx */
	for (size_t i = 0; i + 1 < UTIL_ARRAY_LEN(names); i++) {
		struct tdaemon via = d;
		memset(&cs[i], 0, sizeof(cs[i]));
		cs[i].name = names[i];
		cs[i].cmd = CLIENTS_DIR "/client.sh curl";
		cs[i].ua = "-";
		via.port = ports[i];
		spawn(&cs[i], &via);
	}
	wait_all(cs, UTIL_ARRAY_LEN(cs) - 1, CLIENT_DEADLINE_MS);
	for (size_t i = 0; i + 1 < UTIL_ARRAY_LEN(names); i++) {
		char *log;
		struct rows_wait w = { &d, names[i] };

		check_answers(&cs[i]);
		CU_ASSERT(t_wait_for(rows_done, &w, 5000));
		CU_ASSERT_EQUAL(sent_102(&d, names[i]), 0);
		/* nginx's access log: 200 for each, the PDF's length */
		snprintf(logpath, sizeof(logpath), "%s/access-%s.log", dir, names[i]);
		CU_ASSERT(t_wait_file_has(logpath, "\"GET /hello?c=", 5000));
		log = t_slurp(logpath);
		CU_ASSERT_PTR_NOT_NULL_FATAL(log);
		{
			/* "... HTTP/1.1" 200 LENGTH "-" twice, never another status */
			char needle[160];
			const char *p = log;
			int n = 0;
			snprintf(needle, sizeof(needle), "HTTP/1.1\" 200 %ld ", strtol(strchr(pdf_line, ' ') + 1, NULL, 10));
			while ((p = strstr(p, needle)) != NULL) {
				n++;
				p++;
			}
			if (n != 2)
				fprintf(stderr, "\n  nginx %s access log:\n%s\n", names[i], log);
			CU_ASSERT_EQUAL(n, 2);
			CU_ASSERT(strstr(log, "\" 102 ") == NULL);
		}
		free(log);
	}
	/* the control: a 102 that nginx gets is taken as the final response
	 * (nginx then waits for the connection's end: its 2 s read timeout) */
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "curl -s --max-time 10 -o /dev/null 'http://127.0.0.1:%d/sample.pdf?seconds=2'",
		         ports[4]);
		t_run(cmd, NULL, 0);
		snprintf(logpath, sizeof(logpath), "%s/access-asks.log", dir);
		CU_ASSERT(t_wait_file_has(logpath, "HTTP/1.1\" 102 ", 10000));
	}

	ts_stop(&ng);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (expected_line("sample.pdf", "seconds=0", pdf_line, sizeof(pdf_line)) < 0 ||
	    expected_line("hello", "", hello_line, sizeof(hello_line)) < 0) {
		fprintf(stderr, "cannot run the example programs for the expected bodies\n");
		return 1;
	}
	s = CU_add_suite("real clients and 102", NULL, NULL);
	CU_add_test(s, "default policy: every client gets its own answers", test_default_policy);
	CU_add_test(s, "always: a misreading client never gets another request's answer", test_always_guard);
	CU_add_test(s, "Java HttpClient: 8 x 102 and no more", test_java_httpclient_cap);
	CU_add_test(s, "headless Chromium: a page and its fetches", test_chromium);
	CU_add_test(s, "a confused client: closed, logged, counted, remembered", test_confused_client);
	CU_add_test(s, "nginx proxy_pass in front: 200 and the exact bytes", test_nginx_proxy_pass);
	return t_cunit_run();
}
