/*
 * Integration tests of isolation: the privilege drop, per-job resource
 * limits, descriptor hygiene, running out of descriptors, and hostile
 * programs (writes forever, closes stdout, never reads its body, floods
 * headers, fork-bombs). The real daemon on a random loopback port.
 */
#include <CUnit/Basic.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

/* A daemon with limits (run as root with --allow-root, as all tests do). */
static struct tdaemon L;
/* One started as root with --user nobody. */
static struct tdaemon P;
/* One whose own RLIMIT_NOFILE is low. */
static struct tdaemon E;

static const char *const LIMIT_ARGS[] = {
	"--rlimit-cpu", "1s", "--rlimit-fsize", "1M", "--max-output", "1M",
	"--job-timeout", "8s", "--kill-grace", "500ms", "--processing", "never",
	"--fastcgi", "unix:fcgi.sock", "--max-jobs", "4",
	NULL,
};

/* ------------------------------------------------------------------ */
/* helpers */

static int64_t sent_us;

/* Sends req on a new connection, reads one response. Returns 0 or -1. */
static int roundtrip(const struct tdaemon *d, const char *req, size_t len, struct tresp *r, int timeout_ms)
{
	int fd, rc;

	sent_us = t_wall_us();
	fd = t_connect(d->port);
	if (fd < 0)
		return -1;
	rc = t_send(fd, req, len) == 0 && t_read_response(fd, r, 0, timeout_ms) == 0 ? 0 : -1;
	close(fd);
	return rc;
}

static int get(const struct tdaemon *d, const char *path, struct tresp *r, int timeout_ms)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	return roundtrip(d, req, (size_t)n, r, timeout_ms);
}

/* The row of the job the last request made: its id into id (64 bytes). */
static const char *last_id(const struct tdaemon *d, char *id)
{
	return t_wait_new_job(d, sent_us, id, 5000);
}

/* Waits for the row's final state, then copies column into out. */
static const char *field(const struct tdaemon *d, const char *id, const char *column, char *out, size_t n)
{
	return t_job_field(d, id, column, out, n);
}

static int count_in_log(const struct tdaemon *d, const char *needle)
{
	FILE *f = fopen(d->log, "r");
	char line[4096];
	int n = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* utime + stime of pid, in clock ticks; -1 when unreadable. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return -1;
	/* after ')': state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

/* A "Key:" line of /proc/pid/status, value copied (tabs kept). */
static const char *proc_status(pid_t pid, const char *key, char *out, size_t n)
{
	char path[64], line[512];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return out;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, strlen(key)) == 0) {
			snprintf(out, n, "%s", line + strlen(key));
			out[strcspn(out, "\n")] = '\0';
			break;
		}
	}
	fclose(f);
	return out;
}

struct group_gone {
	pid_t pgid;
};

static int group_gone(void *ud) { return t_group_alive(((struct group_gone *)ud)->pgid) == 0; }

/* ------------------------------------------------------------------ */
/* suite: limits and hostile programs */

static int limits_init(void) { return td_start(&L, NULL, LIMIT_ARGS); }

static int limits_clean(void)
{
	int st = td_stop(&L);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	td_cleanup(&L);
	return st == 0 ? 0 : -1;
}

/* A program sees only 0, 1, 2 and its progress pipe (3), even while another
 * job runs and both fronts (HTTP and FastCGI) are open. */
static void test_fd_listing(void)
{
	static const char slow[] = "GET /slow?2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct tresp r, rs;
	char id[64], state[32];
	int64_t since = t_wall_us();
	int fd = t_connect(L.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send(fd, slow, sizeof(slow) - 1) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&L, since, id, 5000)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "running", 5000));

	CU_ASSERT_FATAL(get(&L, "/list-fds", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_FATAL(r.body != NULL);
	if (strncmp(r.body, "0 1 2 3\n", 8) != 0)
		fprintf(stderr, "descriptors the program saw:\n%s\n", r.body);
	CU_ASSERT(strncmp(r.body, "0 1 2 3\n", 8) == 0);
	/* 0 is the request body (here /dev/null), 1 and 2 are pipes to cgiq. */
	CU_ASSERT(strstr(r.body, "0 -> /dev/null\n") != NULL);
	CU_ASSERT(strstr(r.body, "1 -> pipe:") != NULL);
	CU_ASSERT(strstr(r.body, "2 -> pipe:") != NULL);
	CU_ASSERT(strstr(r.body, "3 -> pipe:") != NULL);
	CU_ASSERT(strstr(r.body, "socket:") == NULL);
	t_resp_free(&r);

	CU_ASSERT(t_read_response(fd, &rs, 0, 10000) == 0);
	CU_ASSERT_EQUAL(rs.status, 200);
	t_resp_free(&rs);
	close(fd);
	CU_ASSERT(t_wait_job_state(&L, id, "succeeded", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "state", state, sizeof(state)), "succeeded");
}

static void test_cpu_limit(void)
{
	struct tresp r;
	char id[64], v[256];
	uint64_t t0 = t_now_ms();

	CU_ASSERT_FATAL(get(&L, "/cpu-burn", &r, 15000) == 0);
	/* Headers were complete, but a program killed by a signal may have cut
	 * its output anywhere: 502, never passed off as complete. */
	CU_ASSERT_EQUAL(r.status, 502);
	CU_ASSERT(t_now_ms() - t0 < 7900); /* the CPU limit, not the 8 s job timeout */
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)), "CPU time limit (--rlimit-cpu 1s) exceeded");
	CU_ASSERT_STRING_EQUAL(field(&L, id, "term_signal", v, sizeof(v)), "24"); /* SIGXCPU */
	CU_ASSERT_STRING_EQUAL(field(&L, id, "http_status", v, sizeof(v)), "502");
}

/* A program that ignores SIGXCPU runs into the hard limit one CPU second
 * later: SIGKILL from the kernel, which cgiq did not send. */
static void test_cpu_hard_limit(void)
{
	struct tresp r;
	char id[64], v[256];
	uint64_t t0 = t_now_ms();

	CU_ASSERT_FATAL(get(&L, "/cpu-burn-ignoring", &r, 15000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	CU_ASSERT(t_now_ms() - t0 < 7900);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)),
	                       "killed by signal 9 (CPU time hard limit --rlimit-cpu 1s + 1s, "
	                       "or killed from outside cgiq)");
	CU_ASSERT_STRING_EQUAL(field(&L, id, "term_signal", v, sizeof(v)), "9");
}

static void test_fsize_limit(void)
{
	struct tresp r;
	char id[64], v[256], path[600];
	struct stat st;

	CU_ASSERT_FATAL(get(&L, "/fsize-write", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)),
	                       "file size limit (--rlimit-fsize 1048576 bytes) exceeded");
	CU_ASSERT_STRING_EQUAL(field(&L, id, "term_signal", v, sizeof(v)), "25"); /* SIGXFSZ */
	/* The file stopped exactly at the limit. */
	snprintf(path, sizeof(path), "%s/fsize.out", L.cgi_root);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size == 1048576);
	unlink(path);
}

/* A program that writes without end is killed at --max-output; nothing had
 * been sent, so the client gets 502. */
static void test_writes_forever(void)
{
	struct tresp r;
	char id[64], v[256];
	struct group_gone g;

	CU_ASSERT_FATAL(get(&L, "/writes-forever", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)), "output limit exceeded");
	CU_ASSERT_STRING_EQUAL(field(&L, id, "http_status", v, sizeof(v)), "502");
	g.pgid = (pid_t)atoi(field(&L, id, "pid", v, sizeof(v)));
	CU_ASSERT(g.pgid > 1 && t_wait_for(group_gone, &g, 5000));
	CU_ASSERT(td_log_has(&L, "output exceeds 1048576 bytes, stopping the program"));
}

/*
 * A program that closes stdout without a word and keeps running. What an
 * operator expects: the job is the process, not its stdout, so it keeps its
 * slot until it exits or hits --job-timeout, which kills its group and
 * answers 504 (it never sent a header block).
 */
static void test_closes_stdout(void)
{
	struct tresp r;
	char id[64], v[256];
	struct group_gone g;
	uint64_t t0 = t_now_ms();

	CU_ASSERT_FATAL(get(&L, "/closes-stdout?60", &r, 15000) == 0);
	CU_ASSERT_EQUAL(r.status, 504);
	CU_ASSERT(t_now_ms() - t0 >= 7900);
	CU_ASSERT(t_now_ms() - t0 < 15000);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "timed_out", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)), "job timeout");
	g.pgid = (pid_t)atoi(field(&L, id, "pid", v, sizeof(v)));
	CU_ASSERT(g.pgid > 1 && t_wait_for(group_gone, &g, 5000));
}

/* 8 MiB of request body the program never reads: it answers, the client
 * gets that answer, nothing hangs, and the next request is served. */
static void test_never_reads_body(void)
{
	const size_t n = 8u << 20;
	char head[256], id[64], v[64];
	char *body = t_pattern(n);
	struct tresp r;
	int hl, fd;

	hl = snprintf(head, sizeof(head),
	              "POST /never-reads HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n"
	              "Content-Length: %zu\r\nConnection: close\r\n\r\n", n);
	sent_us = t_wall_us();
	fd = t_connect(L.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_send(fd, head, (size_t)hl) == 0);
	CU_ASSERT(t_send(fd, body, n) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 15000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, "ignored 8388608 bytes\n") == 0);
	t_resp_free(&r);
	close(fd);
	free(body);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "succeeded", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "bytes_in", v, sizeof(v)), "8388608");

	CU_ASSERT_FATAL(get(&L, "/hello", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
}

/* 100,000 header lines: refused at the parser's cap (502), one log line,
 * cgiq's memory does not grow with them, and it goes on serving. */
static void test_many_headers(void)
{
	struct tresp r;
	char id[64], v[256], hwm0[64], hwm1[64], needle[128];
	long kb0, kb1;

	proc_status(L.pid, "VmHWM:", hwm0, sizeof(hwm0));
	CU_ASSERT_FATAL(get(&L, "/many-headers", &r, 15000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&L, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&L, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(field(&L, id, "reason", v, sizeof(v)), "CGI header block too large");
	snprintf(needle, sizeof(needle), "job %s: CGI header block too large", id);
	CU_ASSERT_EQUAL(count_in_log(&L, needle), 1);
	proc_status(L.pid, "VmHWM:", hwm1, sizeof(hwm1));
	kb0 = atol(hwm0);
	kb1 = atol(hwm1);
	CU_ASSERT(kb0 > 0 && kb1 > 0);
	/* The block alone is 3.4 MB; cgiq keeps at most 64 KiB of it. */
	if (kb1 - kb0 >= 16 * 1024)
		fprintf(stderr, "peak RSS grew from %ld kB to %ld kB\n", kb0, kb1);
	CU_ASSERT(kb1 - kb0 < 16 * 1024);
	CU_ASSERT(kill(L.pid, 0) == 0);
	CU_ASSERT_FATAL(get(&L, "/hello", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* suite: privileges */

static const char *const PRIV_ARGS[] = {
	"--group", "nogroup", "--rlimit-nproc", "40", "--job-timeout", "4s", "--kill-grace", "500ms",
	"--processing", "never", "--fastcgi", "unix:fcgi.sock", "--fastcgi-threads", "4",
	NULL,
};

static int priv_init(void)
{
	struct td_options o = {.user = "nobody"};
	return td_start_opts(&P, NULL, PRIV_ARGS, &o);
}

static int priv_clean(void)
{
	int st = td_stop(&P);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	td_cleanup(&P);
	return st == 0 ? 0 : -1;
}

/* A file in a place cgiq writes (its root) as root, with a mode. */
static int put_file(const struct tdaemon *d, const char *name, const char *text, mode_t mode)
{
	char path[640];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->cgi_root, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 && chmod(path, mode) == 0 ? 0 : -1;
}

/* The 403 (and 404) log line says why the path has no program, naming the
 * user whose permission is missing. */
static void test_refusal_reasons(void)
{
	static const struct {
		const char *path;
		int status;
		const char *why;
	} cases[] = {
		{"/secret.sh", 403, "\"GET /secret.sh\" 403: no program for this path: not executable by cgiq's user nobody"},
		{"/plain.txt", 403, "\"GET /plain.txt\" 403: no program for this path: not executable (no x bit in its mode)"},
		{"/no-such", 404, "\"GET /no-such\" 404: no program for this path: no such file"},
		{"/.hidden", 403, "\"GET /.hidden\" 403: no program for this path: a segment of the path starts with '.'"},
	};
	struct tresp r;

	CU_ASSERT_FATAL(put_file(&P, "secret.sh", "#!/bin/sh\necho\n", 0700) == 0);
	CU_ASSERT_FATAL(put_file(&P, "plain.txt", "text\n", 0644) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_FATAL(get(&P, cases[i].path, &r, 5000) == 0);
		CU_ASSERT_EQUAL(r.status, cases[i].status);
		t_resp_free(&r);
		if (!td_log_has(&P, cases[i].why))
			fprintf(stderr, "log line missing: %s\n", cases[i].why);
		CU_ASSERT(td_log_has(&P, cases[i].why));
	}
}

static void test_runs_as_nobody(void)
{
	struct passwd nobody = *getpwnam("nobody"), *pw = &nobody, *run = getpwnam("cgiq-run");
	struct tresp r;
	char want[64], v[256], id[64];
	struct stat st;
	unsigned g;

	CU_ASSERT_FATAL(run != NULL); /* made by scripts/setup.sh */
	/* Programs: the default program user, its own group. */
	CU_ASSERT_FATAL(get(&P, "/show-ids", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	snprintf(want, sizeof(want), "%u %u\n", (unsigned)run->pw_uid, (unsigned)run->pw_gid);
	CU_ASSERT(r.body && strcmp(r.body, want) == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&P, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&P, id, "succeeded", 5000));

	/* The daemon itself: real, saved and file-system ids nobody (--group
	 * nogroup), effective ids the programs', so that it can signal them;
	 * its only supplementary group the programs'. */
	snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", (unsigned)pw->pw_uid, (unsigned)run->pw_uid,
	         (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
	CU_ASSERT_STRING_EQUAL(proc_status(P.pid, "Uid:", v, sizeof(v)), want);
	snprintf(want, sizeof(want), "\t65534\t%u\t65534\t65534", (unsigned)run->pw_gid);
	CU_ASSERT_STRING_EQUAL(proc_status(P.pid, "Gid:", v, sizeof(v)), want);
	/* Every thread, all started after the drop. */
	{
		char cmd[256], out[64];
		snprintf(want, sizeof(want), "\t%u\t%u\t%u\t%u", (unsigned)pw->pw_uid, (unsigned)run->pw_uid,
		         (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
		snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/status | grep -c '^Uid:'", (int)P.pid);
		t_run(cmd, out, sizeof(out));
		CU_ASSERT(atoi(out) >= 4); /* main, recorder, two spawners (FastCGI has no threads) */
		snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/status | grep '^Uid:' | grep -vc '%s'", (int)P.pid,
		         want + 1);
		t_run(cmd, out, sizeof(out));
		CU_ASSERT_STRING_EQUAL(out, "0\n");
	}
	proc_status(P.pid, "Groups:", v, sizeof(v));
	CU_ASSERT(sscanf(v, "%u", &g) == 1 && g == run->pw_gid && strchr(v + 1, ' ') == strrchr(v, ' '));
	/* What it must write was given to it, and is closed to others. */
	CU_ASSERT(stat(P.db, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0007) == 0);
	snprintf(want, sizeof(want), "%s/spool", P.dir);
	CU_ASSERT(stat(want, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0007) == 0);
	CU_ASSERT(td_log_has(&P, "running as user nobody"));
	/* Its FastCGI socket lies in a directory of root's: said at the start. */
	snprintf(v, sizeof(v), "unix:fcgi.sock will stay after cgiq stops: user nobody may not remove it from %s (",
	         P.dir);
	CU_ASSERT(td_log_has(&P, v));
	CU_ASSERT(td_log_has(&P, "programs run as user cgiq-run"));
	/* The FastCGI socket is the user's, for the web server to reach. */
	snprintf(want, sizeof(want), "%s/fcgi.sock", P.dir);
	CU_ASSERT(stat(want, &st) == 0 && st.st_uid == pw->pw_uid && (st.st_mode & 0777) == 0660);
}

/* A program that turns on cgiq can neither kill it, nor read or write its
 * database, nor list its spool, nor read its environment: it runs as
 * another user. cgiq lives on, with every row. */
static void test_program_cannot_touch_cgiq(void)
{
	struct tresp r;
	char path[512], id[64], v[64];

	snprintf(path, sizeof(path), "/turns-on-cgiq?%s", P.dir);
	CU_ASSERT_FATAL(get(&P, path, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body ? r.body : "",
	                       "kill: refused\ndb read: refused\ndb write: refused\nspool: refused\n"
	                       "environ: refused\n");
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&P, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&P, id, "succeeded", 5000));
	CU_ASSERT_EQUAL(kill(P.pid, 0), 0);
	/* the row of the job before it is still there */
	snprintf(path, sizeof(path), "sqlite3 '%s' \"select count(*) from jobs where state = 'succeeded'\"", P.db);
	CU_ASSERT_EQUAL(t_run(path, v, sizeof(v)), 0);
	CU_ASSERT(atoi(v) >= 2);
}

/* A fork bomb within --rlimit-nproc: fork fails at the limit, the job ends,
 * nothing of its process group is left, cgiq still serves. */
static void test_fork_bomb(void)
{
	struct tresp r;
	char id[64], v[256];
	struct group_gone g;

	CU_ASSERT_FATAL(get(&P, "/fork-bomb", &r, 15000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT_FATAL(last_id(&P, id)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&P, id, "failed", 10000));
	CU_ASSERT_STRING_EQUAL(field(&P, id, "reason", v, sizeof(v)), "exited with status 2");
	field(&P, id, "stderr_tail", v, sizeof(v));
	CU_ASSERT(strstr(v, "fork") != NULL);
	g.pgid = (pid_t)atoi(field(&P, id, "pid", v, sizeof(v)));
	CU_ASSERT(g.pgid > 1 && t_wait_for(group_gone, &g, 5000));

	CU_ASSERT_FATAL(get(&P, "/hello", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
}

/* ------------------------------------------------------------------ */
/* suite: refusals (no daemon kept running) */

static void test_refuses_root(void)
{
	char cmd[1024], out[512];

	if (geteuid() != 0) {
		fprintf(stderr, "(not root: root refusal not tested)\n");
		return;
	}
	/* Refused before anything starts: exit status 2 and one line. */
	static const struct {
		const char *args, *says;
	} refused[] = {
		{"--listen 127.0.0.1:0 --cgi-root /tmp --db /nonexistent/x.db",
		 "cgiq: would run CGI programs as root; use --user or --allow-root\n"},
		{"--listen 127.0.0.1:0 --cgi-root /tmp --user root",
		 "cgiq: would run CGI programs as root; use --user or --allow-root\n"},
		{"--cgi-root /tmp --user no-such-user-here", "cgiq: --user no-such-user-here: no such user\n"},
		{"--cgi-root /tmp --group nogroup --allow-root", "cgiq: --group needs --user\n"},
		{"--cgi-root /tmp --program-user daemon --allow-root", "cgiq: --program-user needs --user\n"},
		{"--cgi-root /tmp --user nobody --program-user no-such-user-here",
		 "cgiq: --program-user no-such-user-here: no such user\n"},
		{"--cgi-root /tmp --user nobody --program-user 0",
		 "cgiq: --program-user 0: would run CGI programs as root; use --allow-root\n"},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", CGIQ_BIN, refused[i].args);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		CU_ASSERT_STRING_EQUAL(out, refused[i].says);
	}
	/* A file of cgiq's that it does not own, and the programs could read:
	 * refused, not left open to them. */
	snprintf(cmd, sizeof(cmd),
	         "d=$(mktemp -d /tmp/cgiq-priv-XXXXXX) && chmod 755 $d && touch $d/log && chown daemon $d/log && "
	         "chmod 666 $d/log && timeout 10 '%s' --user nobody --listen 127.0.0.1:0 --cgi-root /tmp --db $d/x.db "
	         "--spool $d/spool --log-file $d/log 2>$d/err; rc=$?; tail -n 1 $d/err; rm -rf $d; exit $rc",
	         CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	CU_ASSERT(strncmp(out, "cgiq: the programs' user cgiq-run could read /tmp/cgiq-priv-", 60) == 0 &&
	          strstr(out, "/log: take it from others (chmod o-rwx)\n") != NULL);
	/* A database cgiq may only read: refused, not run unrecorded. (cgiq is
	 * copied where nobody may run it: the build may lie in a home directory
	 * nobody cannot enter.) */
	snprintf(cmd, sizeof(cmd),
	         "d=$(mktemp -d /tmp/cgiq-ro-XXXXXX) && chown nobody $d && chmod 755 $d && cp '%s' $d/cgiq && "
	         "sqlite3 $d/x.db 'create table t(x)' && chown nobody $d/x.db && chmod 440 $d/x.db && "
	         "timeout 10 runuser -u nobody -- $d/cgiq --listen 127.0.0.1:0 --cgi-root /tmp --db $d/x.db --spool $d/spool "
	         "2>$d/err; rc=$?; tail -n 1 $d/err | sed \"s|$d|D|\"; rm -rf $d; exit $rc", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: cannot open the job database D/x.db: read-only for cgiq, which records "
	                            "every job in it\n");
	/* After the drop, a lower niceness could not be set in any child. */
	snprintf(cmd, sizeof(cmd),
	         "d=$(mktemp -d /tmp/cgiq-nice-XXXXXX) && chmod 755 $d && "
	         "'%s' --user nobody --listen 127.0.0.1:0 --cgi-root /tmp --db $d/x.db --spool $d/spool "
	         "--nice -5 2>$d/err; rc=$?; tail -n 1 $d/err; rm -rf $d; exit $rc", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --nice -5: below cgiq's own niceness, which only root may do\n");
	/* Not root: --user can only name cgiq's own user. */
	snprintf(cmd, sizeof(cmd),
	         "d=$(mktemp -d /tmp/cgiq-user-XXXXXX) && chmod 755 $d && cp '%s' $d/cgiq && "
	         "runuser -u nobody -- $d/cgiq --cgi-root /tmp --user daemon 2>&1; rc=$?; rm -rf $d; exit $rc",
	         CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --user daemon: only root can change user (start cgiq as root, or as daemon)\n");
}

static void test_bad_limit_values(void)
{
	static const char *const bad[][3] = {
		{"--nice", "20", "cgiq: --nice: invalid value '20' (a whole number from -20 to 19)\n"},
		{"--rlimit-cpu", "500ms", "cgiq: --rlimit-cpu: invalid value '500ms' (at least 1s)\n"},
		{"--rlimit-nofile", "2", "cgiq: --rlimit-nofile: invalid value '2' (at least 4 (stdin, stdout, "
		                         "stderr and the progress pipe))\n"},
		{"--rlimit-as", "lots", "cgiq: --rlimit-as: invalid value 'lots' (a size: 512, 64k, 10M, 1G)\n"},
		{"--max-output", "1X", "cgiq: --max-output: invalid value '1X' (a size: 512, 64k, 10M, 1G)\n"},
	};
	char cmd[1024], out[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd), "'%s' --cgi-root /tmp --allow-root %s %s 2>&1", CGIQ_BIN, bad[i][0],
		         bad[i][1]);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		CU_ASSERT_STRING_EQUAL(out, bad[i][2]);
	}
}

/* ------------------------------------------------------------------ */
/* suite: out of descriptors */

#define E_CONNS 60

static int emfile_init(void)
{
	static const char *const args[] = {"--processing", "never", NULL};
	struct td_options o = {.rlimit_nofile = 64};
	return td_start_opts(&E, NULL, args, &o);
}

static int emfile_clean(void)
{
	int st = td_stop(&E);
	if (st != 0)
		fprintf(stderr, "cgiq exited with %d\n", st);
	td_cleanup(&E);
	return st == 0 ? 0 : -1;
}

static int paused(void *ud) { return td_log_has(ud, "accepting paused"); }

static void test_emfile_pause_resume(void)
{
	static const char hello[] = "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	int fds[E_CONNS];
	long t0, t1;
	uint64_t w0;
	struct tresp r;

	for (int i = 0; i < E_CONNS; i++) {
		fds[i] = t_connect(E.port);
		CU_ASSERT_FATAL(fds[i] >= 0);
	}
	CU_ASSERT_FATAL(t_wait_for(paused, &E, 5000));
	CU_ASSERT_EQUAL(count_in_log(&E, "accepting paused"), 1);
	/* The last connection waits in the kernel's backlog: it asks now. */
	CU_ASSERT(t_send(fds[E_CONNS - 1], hello, sizeof(hello) - 1) == 0);

	/* Paused means idle: no accept loop burning the CPU. */
	t0 = cpu_ticks(E.pid);
	w0 = t_now_ms();
	while (t_now_ms() - w0 < 1000)
		usleep(50000);
	t1 = cpu_ticks(E.pid);
	CU_ASSERT(t0 >= 0 && t1 >= 0);
	if (t1 - t0 > 10)
		fprintf(stderr, "cgiq used %ld ticks in 1 s while paused\n", t1 - t0);
	CU_ASSERT(t1 - t0 <= 10); /* at most 10% of a CPU */

	/* Free descriptors: every other connection goes away; the last one,
	 * held in the backlog all along, is then served: it was not dropped. */
	for (int i = 0; i < E_CONNS - 1; i++)
		close(fds[i]);
	CU_ASSERT_FATAL(t_read_response(fds[E_CONNS - 1], &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body && strcmp(r.body, "Hello, world!\n") == 0);
	t_resp_free(&r);
	CU_ASSERT(td_log_has(&E, "accepting again"));
	close(fds[E_CONNS - 1]);

	CU_ASSERT_FATAL(get(&E, "/hello", &r, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
}

/* ------------------------------------------------------------------ */

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("refusals", NULL, NULL);
	CU_add_test(s, "refuses to run programs as root", test_refuses_root);
	CU_add_test(s, "bad limit values", test_bad_limit_values);
	s = CU_add_suite("limits", limits_init, limits_clean);
	CU_add_test(s, "program sees only 0-3", test_fd_listing);
	CU_add_test(s, "--rlimit-cpu", test_cpu_limit);
	CU_add_test(s, "--rlimit-cpu hard limit", test_cpu_hard_limit);
	CU_add_test(s, "--rlimit-fsize", test_fsize_limit);
	CU_add_test(s, "writes forever: --max-output", test_writes_forever);
	CU_add_test(s, "closes stdout and keeps running", test_closes_stdout);
	CU_add_test(s, "never reads an 8 MiB body", test_never_reads_body);
	CU_add_test(s, "100,000 headers", test_many_headers);
	s = CU_add_suite("privileges", priv_init, priv_clean);
	CU_add_test(s, "runs as nobody", test_runs_as_nobody);
	CU_add_test(s, "403 and 404 log lines say why", test_refusal_reasons);
	CU_add_test(s, "a program cannot touch cgiq", test_program_cannot_touch_cgiq);
	CU_add_test(s, "fork bomb within --rlimit-nproc", test_fork_bomb);
	s = CU_add_suite("descriptors", emfile_init, emfile_clean);
	CU_add_test(s, "EMFILE: pause, then resume", test_emfile_pause_resume);

	return t_cunit_run();
}
