/*
 * Integration tests of the daemon's lifecycle: the SIGTERM drain (and its
 * timeout), queued asynchronous jobs across a graceful stop, SIGHUP reopening
 * --log-file, the database lock, sd_notify readiness, and socket activation
 * of both fronts.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/support.h"

/* ------------------------------------------------------------------ */
/* helpers */

/* Waits up to ms for pid to exit; its exit status, 128 + signal, or -1 on
 * timeout (then it is killed). */
static int wait_exit(pid_t pid, int ms)
{
	uint64_t end = t_now_ms() + (uint64_t)ms;
	int st;

	while (t_now_ms() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* The daemon ends on its own after a SIGTERM (the drain); td_stop would
 * send a second one, which ends the drain at once. */
static int term_and_wait(struct tdaemon *d, int ms)
{
	int st;
	kill(d->pid, SIGTERM);
	st = wait_exit(d->pid, ms);
	d->pid = 0;
	return st;
}

static int send_get(int fd, const char *path, const char *extra)
{
	char req[512];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra ? extra : "");
	return t_send_str(fd, req);
}

/* GET on a new connection. */
static int get(int port, const char *path, const char *extra, struct tresp *r)
{
	int fd = t_connect(port), rc = -1;
	if (fd >= 0 && send_get(fd, path, extra) == 0)
		rc = t_read_response(fd, r, 0, 15000);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int refused(void *ud)
{
	int fd = t_connect(*(int *)ud);
	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}

/* Port from a "listening on ...127.0.0.1:PORT" line of a log, 0 if none. */
static int log_port(const char *path)
{
	char *data = t_slurp(path), *p;
	int port = 0;

	if (data && (p = strstr(data, "listening on ")) && (p = strstr(p, "127.0.0.1:")))
		port = atoi(p + strlen("127.0.0.1:"));
	free(data);
	return port;
}

/* ------------------------------------------------------------------ */
/* drain */

/* SIGTERM while a slow job runs: its client still gets the whole 200, the
 * idle keep-alive connection is closed, new connections are refused, the
 * row is succeeded, exit status 0. */
struct health_wait {
	int port;
	int want;
};

/* /health on the admin listener answers want (its status). */
static int health_is(void *ud)
{
	struct health_wait *w = ud;
	struct tresp r;
	int st;

	if (get(w->port, "/health", NULL, &r) != 0)
		return 0;
	st = r.status;
	t_resp_free(&r);
	return st == w->want;
}

static void test_drain_lets_jobs_finish(void)
{
	char admin[64];
	const char *args[] = {"--processing", "never", "--drain-timeout", "20s", "--admin-listen", admin, NULL};
	struct tdaemon d;
	struct tresp r;
	char id[64], v[256];
	int slow, idle;
	int64_t t0;
	struct health_wait up = {t_free_port(), 200}, down = {up.port, 503};

	snprintf(admin, sizeof(admin), "127.0.0.1:%d", up.port);
	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	CU_ASSERT(t_wait_for(health_is, &up, 5000));
	idle = t_connect(d.port);
	CU_ASSERT_FATAL(idle >= 0);
	CU_ASSERT_FATAL(send_get(idle, "/hello", NULL) == 0);
	CU_ASSERT_FATAL(t_read_response(idle, &r, 0, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);

	slow = t_connect(d.port);
	CU_ASSERT_FATAL(slow >= 0);
	t0 = t_wall_us();
	CU_ASSERT_FATAL(send_get(slow, "/slow?2", NULL) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&d, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&d, id, "running", 5000));

	kill(d.pid, SIGTERM);
	CU_ASSERT(t_wait_closed(idle, 3000));
	CU_ASSERT(t_wait_for(refused, &d.port, 3000));
	/* The admin listener stays up during the drain and says it is down. */
	CU_ASSERT(t_wait_for(health_is, &down, 3000));
	CU_ASSERT_FATAL(get(up.port, "/health", NULL, &r) == 0);
	CU_ASSERT_STRING_EQUAL(r.body, "{\"status\":\"unavailable\",\"reason\":\"draining: no new jobs are taken\"}\n");
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_read_response(slow, &r, 0, 15000) == 0);
	CU_ASSERT_EQUAL(r.interim_count, 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 6);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Connection", v, sizeof(v)) ? v : "", "close");
	t_resp_free(&r);
	CU_ASSERT(t_wait_closed(slow, 3000));
	close(slow);
	close(idle);

	CU_ASSERT_EQUAL(wait_exit(d.pid, 10000), 0);
	d.pid = 0;
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "state", v, sizeof(v)), "succeeded");
	CU_ASSERT(td_log_has(&d, "drain finished"));
	td_cleanup(&d);
}

/* The drain timeout: the running job is killed with its process group and
 * recorded interrupted ("cgiq shut down"); a queued synchronous job is never
 * started: its client gets 503 at once and its row is interrupted; exit 0. */
static void test_drain_timeout_kills(void)
{
	static const char *const args[] = {"--processing", "never", "--max-jobs", "1", "--drain-timeout",
	                                   "700ms", "--kill-grace", "500ms", NULL};
	struct tdaemon d;
	struct tresp r;
	char id[64], qid[64], v[256];
	int running, queued;
	int64_t t0;
	pid_t pgid;
	uint64_t sent;

	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	running = t_connect(d.port);
	t0 = t_wall_us();
	CU_ASSERT_FATAL(send_get(running, "/hostile-trap-term", NULL) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&d, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&d, id, "running", 5000));
	pgid = (pid_t)atoi(t_job_field(&d, id, "pid", v, sizeof(v)));
	CU_ASSERT_FATAL(pgid > 1);
	CU_ASSERT(t_group_alive(pgid) > 0);

	queued = t_connect(d.port);
	t0 = t_wall_us();
	CU_ASSERT_FATAL(send_get(queued, "/hello", NULL) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&d, t0, qid, 5000)[0] != '\0');
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, qid, "state", v, sizeof(v)), "queued");

	sent = t_now_ms();
	kill(d.pid, SIGTERM);
	CU_ASSERT_FATAL(t_read_response(queued, &r, 0, 5000) == 0);
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Retry-After", v, sizeof(v)) ? v : "", "5");
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Connection", v, sizeof(v)) ? v : "", "close");
	CU_ASSERT(t_now_ms() - sent < 600); /* at once, not at the end of the drain */
	t_resp_free(&r);
	close(queued);

	CU_ASSERT_EQUAL(wait_exit(d.pid, 10000), 0);
	d.pid = 0;
	/* the client of the killed job gets no answer, only the close */
	CU_ASSERT(t_wait_closed(running, 2000));
	close(running);
	CU_ASSERT_EQUAL(t_group_alive(pgid), 0);
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "state", v, sizeof(v)), "interrupted");
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "reason", v, sizeof(v)), "cgiq shut down");
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, qid, "state", v, sizeof(v)), "interrupted");
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, qid, "reason", v, sizeof(v)), "cgiq shut down");
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, qid, "pid", v, sizeof(v)), "");
	CU_ASSERT(td_log_has(&d, "drain timeout of 700 ms reached"));
	td_cleanup(&d);
}

/* A second SIGTERM ends the drain at once. */
static void test_second_signal_ends_drain(void)
{
	static const char *const args[] = {"--drain-timeout", "30s", "--kill-grace", "300ms", NULL};
	struct tdaemon d;
	char id[64], v[256];
	int c;
	int64_t t0;
	uint64_t sent;

	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	c = t_connect(d.port);
	t0 = t_wall_us();
	CU_ASSERT_FATAL(send_get(c, "/slow?30", NULL) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&d, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&d, id, "running", 5000));
	kill(d.pid, SIGTERM);
	CU_ASSERT_FATAL(t_wait_file_has(d.log, "signal 15: shutting down", 3000));
	sent = t_now_ms();
	kill(d.pid, SIGTERM);
	CU_ASSERT_EQUAL(wait_exit(d.pid, 10000), 0);
	d.pid = 0;
	CU_ASSERT(t_now_ms() - sent < 5000);
	CU_ASSERT(td_log_has(&d, "during the drain: stopping now"));
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "state", v, sizeof(v)), "interrupted");
	close(c);
	td_cleanup(&d);
}

/* A queued asynchronous job is not started by the drain, stays queued in its
 * row, and runs after the restart. */
static void test_queued_async_survives_stop(void)
{
	static const char *const args[] = {"--max-jobs", "1", "--drain-timeout", "20s", NULL};
	struct tdaemon d;
	struct tresp r;
	char id[64], aid[64], loc[256], v[256];
	int c;
	int64_t t0;

	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	c = t_connect(d.port);
	t0 = t_wall_us();
	CU_ASSERT_FATAL(send_get(c, "/slow?1", NULL) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&d, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&d, id, "running", 5000));
	CU_ASSERT_FATAL(get(d.port, "/hello", "Prefer: respond-async\r\n", &r) == 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	snprintf(aid, sizeof(aid), "%s", strrchr(loc, '/') + 1);
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, aid, "state", v, sizeof(v)), "queued");

	CU_ASSERT_EQUAL(term_and_wait(&d, 10000), 0);
	CU_ASSERT_FATAL(t_read_response(c, &r, 0, 1000) == 0); /* answered before the exit */
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	close(c);
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "state", v, sizeof(v)), "succeeded");
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, aid, "state", v, sizeof(v)), "queued");

	CU_ASSERT_FATAL(td_restart(&d, args) == 0);
	CU_ASSERT(t_wait_job_state(&d, aid, "succeeded", 10000));
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* ------------------------------------------------------------------ */
/* SIGHUP */

static void test_sighup_reopens_log(void)
{
	char dir[] = "/tmp/cgiq-life-XXXXXX", logf[300], rotated[320], errf[300], db[300], spool[300];
	char acc[300], acc_rotated[320];
	struct tresp r;
	pid_t pid;
	int port;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(acc, sizeof(acc), "%s/access.log", dir);
	snprintf(acc_rotated, sizeof(acc_rotated), "%s/access.log.1", dir);
	snprintf(logf, sizeof(logf), "%s/cgiq.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/cgiq.log.1", dir);
	snprintf(errf, sizeof(errf), "%s/stderr", dir);
	snprintf(db, sizeof(db), "%s/cgiq.db", dir);
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		execl(CGIQ_BIN, CGIQ_BIN, "--allow-root", "--listen", "127.0.0.1:0", "--cgi-root", CGIQ_EXAMPLES "/cgi-bin", "--db",
		      db, "--spool", spool, "--log-file", logf, "--access-log", acc, (char *)NULL);
		_exit(127);
	}
	CU_ASSERT_FATAL(t_wait_file_has(logf, "listening on 127.0.0.1:", 10000));
	port = log_port(logf);
	CU_ASSERT_FATAL(port > 0);
	CU_ASSERT_FATAL(get(port, "/env", NULL, &r) == 0);
	t_resp_free(&r);
	CU_ASSERT(t_wait_file_has(acc, "\"GET /env HTTP/1.1\" 200", 5000));
	CU_ASSERT_FATAL(rename(logf, rotated) == 0);
	CU_ASSERT_FATAL(rename(acc, acc_rotated) == 0);
	kill(pid, SIGHUP);
	CU_ASSERT(t_wait_file_has(logf, "SIGHUP: log file", 5000));
	CU_ASSERT_FATAL(get(port, "/hello", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(t_wait_file_has(logf, "\"GET /hello\" 200", 5000));
	/* the access log too: the new file gets the new lines */
	CU_ASSERT(t_wait_file_has(acc, "\"GET /hello HTTP/1.1\" 200", 5000));
	CU_ASSERT(!t_file_has(acc, "GET /env"));
	CU_ASSERT(!t_file_has(acc_rotated, "\"GET /hello HTTP/1.1\""));
	/* the old file has what came before, and nothing after */
	CU_ASSERT(t_file_has(rotated, "listening on 127.0.0.1:"));
	CU_ASSERT(!t_file_has(rotated, "GET /hello"));
	CU_ASSERT(!t_file_has(rotated, "SIGHUP"));
	kill(pid, SIGTERM);
	CU_ASSERT_EQUAL(wait_exit(pid, 10000), 0);
	CU_ASSERT(t_file_has(logf, "stopped"));
	/* nothing of the log went to stderr */
	{
		char *err = t_slurp(errf);
		CU_ASSERT_PTR_NOT_NULL(err);
		CU_ASSERT_STRING_EQUAL(err ? err : "?", "");
		free(err);
	}
	{
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		t_run(cmd, NULL, 0);
	}
}

/* ------------------------------------------------------------------ */
/* the database lock */

static void test_second_daemon_refused(void)
{
	static const char *const args[] = {"--max-jobs", "2", NULL};
	struct tdaemon d;
	struct tresp r;
	char cmd[2048], out[2048], want[256], loc[256], aid[64], v[256];

	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);
	CU_ASSERT_FATAL(get(d.port, "/slow?2", "Prefer: respond-async\r\n", &r) == 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 202);
	t_header(&r, "Location", loc, sizeof(loc));
	t_resp_free(&r);
	snprintf(aid, sizeof(aid), "%s", strrchr(loc, '/') + 1);
	CU_ASSERT_FATAL(t_wait_job_state(&d, aid, "running", 5000));

	snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' --allow-root --listen 127.0.0.1:0 --cgi-root '%s' --db '%s' --spool spool2 2>&1",
	         d.dir, CGIQ_BIN, d.cgi_root, d.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "cgiq: the job database %s is in use by another cgiq (pid %d, lock %s.lock)",
	         d.db, (int)d.pid, d.db);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
	if (strstr(out, want) == NULL)
		fprintf(stderr, "second start said: %s\n", out);
	/* it touched nothing: no spool made, the running job left alone */
	snprintf(cmd, sizeof(cmd), "%s/spool2", d.dir);
	CU_ASSERT(access(cmd, F_OK) < 0);
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, aid, "state", v, sizeof(v)), "running");

	/* the first one is unaffected, and readers work beside it */
	CU_ASSERT_FATAL(get(d.port, "/hello", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(t_wait_job_state(&d, aid, "succeeded", 10000));
	snprintf(cmd, sizeof(cmd), "'%s' job %s --db '%s'", CGIQ_BIN, aid, d.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "succeeded"));
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s'", CGIQ_BIN, d.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, aid));
	CU_ASSERT_EQUAL(td_stop(&d), 0);

	/* once it is gone, the database is free again */
	CU_ASSERT_FATAL(td_restart(&d, args) == 0);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* ------------------------------------------------------------------ */
/* systemd: readiness and socket activation */

static int dgram_recv(int fd, char *out, size_t size, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	out[0] = '\0';
	if (poll(&p, 1, ms) <= 0)
		return -1;
	n = recv(fd, out, size - 1, 0);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

static void test_sd_notify(void)
{
	struct tdaemon d;
	struct sockaddr_un sa;
	char name[64], msg[256];
	int fd;

	/* abstract namespace: "@name" in NOTIFY_SOCKET */
	snprintf(name, sizeof(name), "@cgiq-test-notify-%d", (int)getpid());
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa,
	                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name))) == 0);
	setenv("NOTIFY_SOCKET", name, 1);
	CU_ASSERT_FATAL(td_start(&d, NULL, NULL) == 0);
	unsetenv("NOTIFY_SOCKET");
	CU_ASSERT_EQUAL(dgram_recv(fd, msg, sizeof(msg), 10000), 0);
	CU_ASSERT_STRING_EQUAL(msg, "READY=1");
	kill(d.pid, SIGTERM);
	CU_ASSERT_EQUAL(dgram_recv(fd, msg, sizeof(msg), 10000), 0);
	CU_ASSERT_STRING_EQUAL(msg, "STOPPING=1");
	CU_ASSERT_EQUAL(wait_exit(d.pid, 10000), 0);
	d.pid = 0;
	close(fd);
	td_cleanup(&d);
}

/* A minimal FastCGI responder request on fd: GET script, empty body; returns
 * the stdout bytes (malloc'd) or NULL. */
static void put_record(char *b, size_t *len, int type, const void *data, size_t n)
{
	unsigned char h[8] = {1, (unsigned char)type, 0, 1, (unsigned char)(n >> 8), (unsigned char)n, 0, 0};
	memcpy(b + *len, h, 8);
	if (n)
		memcpy(b + *len + 8, data, n);
	*len += 8 + n;
}

static void put_param(char *b, size_t *len, const char *name, const char *value)
{
	b[(*len)++] = (char)strlen(name);
	b[(*len)++] = (char)strlen(value);
	memcpy(b + *len, name, strlen(name));
	*len += strlen(name);
	memcpy(b + *len, value, strlen(value));
	*len += strlen(value);
}

static int fastcgi_send(int fd, const char *script, const char *query)
{
	static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0}; /* responder, no keep-conn */
	char params[1024], req[2048];
	size_t plen = 0, rlen = 0;

	put_param(params, &plen, "REQUEST_METHOD", "GET");
	put_param(params, &plen, "SCRIPT_FILENAME", script);
	put_param(params, &plen, "REQUEST_URI", "/activated");
	put_param(params, &plen, "QUERY_STRING", query);
	put_record(req, &rlen, 1, begin, 8);
	put_record(req, &rlen, 4, params, plen);
	put_record(req, &rlen, 4, NULL, 0);
	put_record(req, &rlen, 5, NULL, 0);
	return t_send(fd, req, rlen);
}

/* Reads FCGI_STDOUT until FCGI_END_REQUEST (10 s at most): the bytes
 * (malloc'd) or NULL. */
static char *fastcgi_read(int fd)
{
	char *out = calloc(1, 65536);
	unsigned char in[70000];
	size_t have = 0, olen = 0;
	uint64_t end = t_now_ms() + 10000;

	while (t_now_ms() < end) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 200) <= 0)
			continue;
		n = recv(fd, in + have, sizeof(in) - have, 0);
		if (n <= 0)
			break;
		have += (size_t)n;
		while (have >= 8) {
			size_t clen = ((size_t)in[4] << 8) | in[5], rec = 8 + clen + in[6];
			if (have < rec)
				break;
			if (in[1] == 6 && olen + clen < 65535) { /* FCGI_STDOUT */
				memcpy(out + olen, in + 8, clen);
				olen += clen;
			}
			if (in[1] == 3) /* FCGI_END_REQUEST */
				return out;
			memmove(in, in + rec, have - rec);
			have -= rec;
		}
	}
	free(out);
	return NULL;
}

static void test_socket_activation(void)
{
	char dir[] = "/tmp/cgiq-life-XXXXXX", logf[300], db[300], spool[300], sock[300], script[600];
	struct sockaddr_in sin;
	struct sockaddr_un sun;
	socklen_t slen = sizeof(sin);
	struct tresp r;
	int hfd, ffd, port, c;
	pid_t pid;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(logf, sizeof(logf), "%s/cgiq.log", dir);
	snprintf(db, sizeof(db), "%s/cgiq.db", dir);
	snprintf(spool, sizeof(spool), "%s/spool", dir);
	snprintf(sock, sizeof(sock), "%s/fcgi.sock", dir);
	/* what systemd would make from cgiq.socket */
	hfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(bind(hfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CU_ASSERT_FATAL(listen(hfd, 16) == 0);
	getsockname(hfd, (struct sockaddr *)&sin, &slen);
	port = ntohs(sin.sin_port);
	ffd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	CU_ASSERT_FATAL(bind(ffd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CU_ASSERT_FATAL(listen(ffd, 16) == 0);

	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char pidbuf[32];
		int lf = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		/* above 4 first, so that dup2 to 3 cannot clobber the other one */
		int h = fcntl(hfd, F_DUPFD, 10), f = fcntl(ffd, F_DUPFD, 10);
		dup2(lf, 2);
		dup2(h, 3);
		dup2(f, 4);
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("LISTEN_PID", pidbuf, 1);
		setenv("LISTEN_FDS", "2", 1);
		setenv("LISTEN_FDNAMES", "http:fastcgi", 1);
		execl(CGIQ_BIN, CGIQ_BIN, "--allow-root", "--cgi-root", CGIQ_FIXTURES, "--db", db, "--spool", spool,
		      (char *)NULL);
		_exit(127);
	}
	close(hfd);
	close(ffd);
	CU_ASSERT_FATAL(t_wait_file_has(logf, "fastcgi on fd:4", 10000));
	CU_ASSERT(t_file_has(logf, "listening on fd:3 (127.0.0.1:"));
	/* no default listener of its own */
	CU_ASSERT(!t_file_has(logf, "listening on 127.0.0.1:8080"));

	CU_ASSERT_FATAL(get(port, "/slow?0", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	t_resp_free(&r);

	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(connect(c, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	snprintf(script, sizeof(script), "%s/slow", CGIQ_FIXTURES);
	CU_ASSERT_FATAL(fastcgi_send(c, script, "0") == 0);
	{
		char *out = fastcgi_read(c);
		CU_ASSERT_PTR_NOT_NULL(out);
		if (out) {
			CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Length: 6\r\n"));
			CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhello\n"));
		}
		free(out);
	}
	close(c);

	/* The drain covers FastCGI too: a slow request under way is answered. */
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(connect(c, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	{
		struct tdaemon t;
		char id[64];
		int64_t t0 = t_wall_us();
		memset(&t, 0, sizeof(t));
		snprintf(t.db, sizeof(t.db), "%s", db);
		CU_ASSERT_FATAL(fastcgi_send(c, script, "1") == 0);
		CU_ASSERT_FATAL(t_wait_new_job(&t, t0, id, 5000)[0] != '\0');
		CU_ASSERT_FATAL(t_wait_job_state(&t, id, "running", 5000));
	}
	kill(pid, SIGTERM);
	{
		char *out = fastcgi_read(c);
		CU_ASSERT_PTR_NOT_NULL(out);
		if (out)
			CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhello\n"));
		free(out);
	}
	close(c);
	CU_ASSERT_EQUAL(wait_exit(pid, 10000), 0);
	CU_ASSERT(t_file_has(logf, "drain finished"));
	/* the socket file belongs to systemd: left in place */
	CU_ASSERT(access(sock, F_OK) == 0);
	{
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		t_run(cmd, NULL, 0);
	}
}

/* A socket with a name cgiq does not know is refused at start (exit 2). */
static void test_socket_activation_bad_name(void)
{
	char out[1024];
	int st = t_run("cd /tmp && export LISTEN_PID=$$ LISTEN_FDS=2 LISTEN_FDNAMES=http:admin && "
	               "exec 3</dev/null 4</dev/null "
	               CGIQ_BIN " --allow-root --cgi-root " CGIQ_EXAMPLES "/cgi-bin --db /nonexistent/x.db 2>&1",
	               out, sizeof(out));
	CU_ASSERT_EQUAL(st, 2);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(out, "inherited socket fd 4 is named \"admin\": expected FileDescriptorName=http or fastcgi"));
}

/* The unit files pass systemd-analyze verify (ExecStart pointed at this
 * build's binary, which verify wants to exist). scripts/setup.sh installs
 * systemd for it: its absence is a failure, not a pass. */
static void test_systemd_units_verify(void)
{
	char dir[] = "/tmp/cgiq-life-XXXXXX", cmd[2048], out[4096];

	if (t_run("command -v systemd-analyze", out, sizeof(out)) != 0) {
		CU_FAIL("systemd-analyze is not installed (scripts/setup.sh installs the systemd package)");
		return;
	}
	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && for f in cgiq.service cgiq.socket cgiq-http.socket; do "
	         "sed 's|/usr/local/sbin/cgiq|%s|' '%s/systemd/'$f > $f || exit 9; done && "
	         "SYSTEMD_LOG_LEVEL=notice systemd-analyze verify ./cgiq.service ./cgiq.socket ./cgiq-http.socket 2>&1",
	         dir, CGIQ_BIN, CGIQ_EXAMPLES);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	if (out[0])
		fprintf(stderr, "systemd-analyze verify:\n%s\n", out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	t_run(cmd, NULL, 0);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("lifecycle", NULL, NULL);
	CU_add_test(s, "SIGTERM: running jobs finish, then exit 0", test_drain_lets_jobs_finish);
	CU_add_test(s, "drain timeout kills, queued sync 503", test_drain_timeout_kills);
	CU_add_test(s, "second SIGTERM ends the drain", test_second_signal_ends_drain);
	CU_add_test(s, "queued async job survives a graceful stop", test_queued_async_survives_stop);
	CU_add_test(s, "SIGHUP reopens --log-file", test_sighup_reopens_log);
	CU_add_test(s, "second daemon on one database refused", test_second_daemon_refused);
	CU_add_test(s, "sd_notify READY=1 / STOPPING=1", test_sd_notify);
	CU_add_test(s, "socket activation: http and fastcgi", test_socket_activation);
	CU_add_test(s, "socket activation: unknown name refused", test_socket_activation_bad_name);
	CU_add_test(s, "systemd units pass systemd-analyze verify", test_systemd_units_verify);

	return t_cunit_run();
}
