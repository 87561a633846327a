/*
 * Integration tests of the PostgreSQL job store (--store postgresql://...)
 * on the suite's own server (support/pg.c): synchronous and asynchronous
 * jobs recorded there, the status monitor and the result, `cgiq jobs
 * --store`, one daemon per database, and a password that never reaches the
 * log or a message.
 */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/pg.h"
#include "support/support.h"

static struct tdaemon D;
static struct tpg PG;
/* The store as a user gives it, with a password (the server trusts its
 * socket, so any will do): it must never be seen again. */
static char url[512];
static int admin_port;
static char admin[64];
/* one job at a time: a second one waits in the queue (kill -9 below) */
static const char *const args[] = {"--store", url, "--admin-listen", admin, "--max-jobs", "1", "--node-name", "pg-node-1",
                                   NULL};

static int suite_init(void)
{
	admin_port = t_free_port();
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	if (tpg_start(&PG) < 0)
		return -1;
	snprintf(url, sizeof(url), "postgresql://cgiq:pw-SECRET-42@/cgiq?host=%s", PG.dir);
	return td_start(&D, NULL, args);
}

static int suite_clean(void)
{
	int st = td_stop(&D);

	td_cleanup(&D);
	tpg_stop(&PG);
	return st == 0 ? 0 : -1;
}

/* psql's answer for sql, waited for (ms at most) until it is want: rows
 * are written a moment after the answer. */
static int pg_wait_ms(const char *sql, const char *want, char *out, size_t size, int ms)
{
	for (int i = 0; i < ms / 50; i++) {
		if (tpg_psql(&PG, sql, out, size) == 0 && strcmp(out, want) == 0)
			return 1;
		usleep(50000);
	}
	return 0;
}

static int pg_wait(const char *sql, const char *want, char *out, size_t size)
{
	return pg_wait_ms(sql, want, out, size, 5000);
}

static void test_sync(void)
{
	struct tresp r;
	char out[256];

	CU_ASSERT_FATAL(t_get(D.port, "/hello?pg", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "Hello"));
	t_resp_free(&r);
	CU_ASSERT(pg_wait("SELECT state, http_status, bytes_out > 0, finished_at >= started_at, node FROM jobs"
	                  " WHERE uri = '/hello?pg'",
	                  "succeeded|200|t|t|pg-node-1\n", out, sizeof(out)));
	CU_ASSERT_STRING_EQUAL(out, "succeeded|200|t|t|pg-node-1\n");
}

/* 202, the job runs, its monitor and its result come back (the row from
 * PostgreSQL once it has ended). */
static void test_async(void)
{
	struct tresp r;
	char loc[256], path[320], out[256], sql[256];
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /slow?1 HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\nConnection: close\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	close(fd);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	snprintf(sql, sizeof(sql), "SELECT state, async FROM jobs WHERE id = '%s'", strrchr(loc, '/') + 1);
	CU_ASSERT(pg_wait(sql, "succeeded|t\n", out, sizeof(out)));
	CU_ASSERT_FATAL(t_get(D.port, loc, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"state\":\"succeeded\",\"node\":\"pg-node-1\""));
	t_resp_free(&r);
	snprintf(path, sizeof(path), "%s/result", loc);
	CU_ASSERT_FATAL(t_get(D.port, path, &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
	t_resp_free(&r);
}

/* `cgiq jobs --store` reads the same rows; a second daemon is refused. */
static void test_cli_and_one_writer(void)
{
	char cmd[1400], out[4096];

	snprintf(cmd, sizeof(cmd), "%s jobs --store '%s' --limit 5 2>&1; echo rc=$?", CGIQ_BIN, url);
	t_run(cmd, out, sizeof(out));
	/* the two jobs above, newest first, and nothing but the table */
	CU_ASSERT(strncmp(out, "ID ", 3) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  succeeded     200     0  GET     slow "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  succeeded     200     0  GET     hello "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  102S  NODE\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "  pg-node-1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=0"));
	/* a name that is not one */
	snprintf(cmd, sizeof(cmd), "%s --check-config --cgi-root '%s' --node-name 'web 1' 2>&1; echo rc=$?", CGIQ_BIN,
	         D.cgi_root);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --node-name: 'web 1': only letters, digits, '.', '-' and '_'\nrc=2\n");
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && timeout 20 %s --listen 127.0.0.1:0 --cgi-root '%s' --store '%s' --spool spool2 "
	         "--allow-root 2>&1; echo rc=$?",
	         D.dir, CGIQ_BIN, D.cgi_root, url);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "is in use by another cgiq (a session holds its writer lock)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=1"));
	CU_ASSERT_PTR_NULL(strstr(out, "pw-SECRET"));
}

/* The password: not in the log, not in --check-config's words, not in a
 * failure's; the log names the store without it. */
static void test_no_password(void)
{
	char cmd[1400], out[4096], want[600];

	CU_ASSERT_FALSE(td_log_has(&D, "pw-SECRET"));
	snprintf(want, sizeof(want), "jobs in postgresql://cgiq@/cgiq?host=%s", PG.dir);
	CU_ASSERT(td_log_has(&D, want));
	snprintf(cmd, sizeof(cmd),
	         "%s jobs --store 'postgresql://cgiq:pw-SECRET-42@/nosuchdb?host=%s' 2>&1; echo rc=$?", CGIQ_BIN,
	         PG.dir);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "cannot read job database postgresql://cgiq@/nosuchdb?host="));
	CU_ASSERT_PTR_NULL(strstr(out, "pw-SECRET"));
	snprintf(cmd, sizeof(cmd), "%s --help 2>&1 | grep -c -- '--store PLACE'", CGIQ_BIN);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "1\n");
	snprintf(cmd, sizeof(cmd), "%s --check-config --cgi-root '%s' --store '%s' 2>&1; echo rc=$?", CGIQ_BIN,
	         D.cgi_root, url);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=0"));
	CU_ASSERT_PTR_NULL(strstr(out, "pw-SECRET"));
	/* a URL libpq cannot read, whose message would quote the password: the
	 * check, the start and cgiq jobs say what is wrong, not what it was */
	snprintf(cmd, sizeof(cmd),
	         "%s --check-config --cgi-root '%s' --store 'postgresql://cgiq:pw-SECRET%%zz@/cgiq' 2>&1 | grep -- --store;"
	         " %s --check-config --cgi-root '%s' --store 'postgresql://cgiq:pw-SECRET%%zz@/cgiq' >/dev/null 2>&1;"
	         " echo rc=$?",
	         CGIQ_BIN, D.cgi_root, CGIQ_BIN, D.cgi_root);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --store: not a connection string libpq can read (invalid percent-encoded token)\n"
	                            "rc=2\n");
	snprintf(cmd, sizeof(cmd),
	         "timeout 20 %s --listen 127.0.0.1:0 --cgi-root '%s' --store 'postgresql://cgiq:pw-SECRET%%zz@/cgiq'"
	         " --allow-root 2>&1; echo rc=$?; %s jobs --store 'postgresql://cgiq:pw-SECRET%%zz@/cgiq' 2>&1; echo rc=$?",
	         CGIQ_BIN, D.cgi_root, CGIQ_BIN);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "cgiq: cannot open the job database postgresql: not a connection string libpq can "
	                            "read (invalid percent-encoded token)\nrc=1\n"
	                            "cgiq: cannot read job database postgresql: not a connection string libpq can read "
	                            "(invalid percent-encoded token)\nrc=1\n");
}

/* The rest of the store's operations on PostgreSQL: a program's progress
 * in its row; `cgiq jobs --cancel` (the mark in the row, which the daemon
 * reads and acts on); a kept result's expiry moved by DELETE. */
static void test_progress_cancel_expire(void)
{
	char cmd[1400], out[512], sql[256], loc[256], id[64];
	struct tresp r;
	int fd;

	/* progress: 3/3 "done" is the last report */
	CU_ASSERT_FATAL(t_get(D.port, "/progress?0.2", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(pg_wait("SELECT state, progress_done, progress_total FROM jobs WHERE uri = '/progress?0.2'",
	                  "succeeded|3|3\n", out, sizeof(out)));
	CU_ASSERT_STRING_EQUAL(out, "succeeded|3|3\n");

	/* cancel by an operator: the row marked, the job stopped within seconds */
	fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /slow?20 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CU_ASSERT_FATAL(pg_wait("SELECT state FROM jobs WHERE uri = '/slow?20'", "running\n", out, sizeof(out)));
	CU_ASSERT_FATAL(tpg_psql(&PG, "SELECT id FROM jobs WHERE uri = '/slow?20'", out, sizeof(out)) == 0);
	snprintf(id, sizeof(id), "%.*s", (int)strcspn(out, "\n"), out);
	snprintf(cmd, sizeof(cmd), "%s jobs --store '%s' --cancel %s 2>&1; echo rc=$?", CGIQ_BIN, url, id);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "rc=0"));
	snprintf(sql, sizeof(sql), "SELECT state FROM jobs WHERE id = '%s'", id);
	CU_ASSERT(pg_wait(sql, "cancelled\n", out, sizeof(out)));
	close(fd);

	/* an asynchronous job's result, deleted: the row's expiry moves to now */
	fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /hello?kept HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n"
	                               "Connection: close\r\n\r\n") == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	close(fd);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	snprintf(sql, sizeof(sql), "SELECT state, expires_at > now() + interval '1 hour' FROM jobs WHERE id = '%s'",
	         strrchr(loc, '/') + 1);
	CU_ASSERT(pg_wait(sql, "succeeded|t\n", out, sizeof(out)));
	fd = t_connect(D.port);
	CU_ASSERT_FATAL(fd >= 0);
	snprintf(cmd, sizeof(cmd), "DELETE %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", loc);
	CU_ASSERT_FATAL(t_send_str(fd, cmd) == 0);
	CU_ASSERT_FATAL(t_read_response(fd, &r, 0, 10000) == 0);
	close(fd);
	CU_ASSERT(r.status == 200 || r.status == 204);
	t_resp_free(&r);
	/* moved to now (or the sweep deleted the row already) */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = '%s' AND (expires_at IS NULL OR expires_at > now())",
	         strrchr(loc, '/') + 1);
	CU_ASSERT(pg_wait(sql, "0\n", out, sizeof(out)));
}

/* `cgiq store migrate`: a new database made ready by hand, then current. */
static void test_migrate_cmd(void)
{
	char cmd[1400], out[1024], want[600];
	struct tpg other = PG;

	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "CREATE DATABASE other", out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd), "%s store migrate --store 'postgresql://cgiq:pw-SECRET-42@/other?host=%s' 2>&1; echo rc=$?",
	         CGIQ_BIN, PG.dir);
	t_run(cmd, out, sizeof(out));
	snprintf(want, sizeof(want), "cgiq store: the schema of postgresql://cgiq@/other?host=%s is up to date\nrc=0\n",
	         PG.dir);
	CU_ASSERT_STRING_EQUAL(out, want);
	snprintf(other.conninfo, sizeof(other.conninfo), "host=%s dbname=other user=cgiq", PG.dir);
	CU_ASSERT_EQUAL(tpg_psql(&other, "SELECT version FROM cgiq_schema", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "3\n");
	snprintf(cmd, sizeof(cmd), "%s store 2>&1; echo rc=$?", CGIQ_BIN);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "cgiq store: say what to do: cgiq store migrate [--store PLACE]\nrc=2\n");
}

static int health_status(void)
{
	struct tresp r;
	int st = t_get(admin_port, "/health", &r, 5000) == 0 ? r.status : -1;

	t_resp_free(&r);
	return st;
}

static int healthy(void *ud)
{
	(void)ud;
	return health_status() == 200;
}

static int unhealthy(void *ud)
{
	(void)ud;
	return health_status() == 503;
}

/* The server stops and comes back: a request before the loss is known is
 * answered (its row is kept, and written when the server is back), then
 * /health says 503 and requests for jobs get 503 with Retry-After at once; the loss is said once per
 * connection, and cgiq connects again by itself and runs and records the
 * next job. */
static void test_server_restart(void)
{
	struct tresp r;
	char out[256], cmd[600];

	CU_ASSERT_EQUAL_FATAL(health_status(), 200);
	CU_ASSERT_FATAL(tpg_halt(&PG) == 0);
	CU_ASSERT_FATAL(t_get(D.port, "/hello?during", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(t_wait_for(unhealthy, NULL, 10000));
	CU_ASSERT(td_wait_log(&D, "lost the connection", 5000));
	/* from then on a synchronous job would lose its row: refused, soon */
	{
		uint64_t t0 = t_now_ms();
		char v[32];
		CU_ASSERT_FATAL(t_get(D.port, "/hello?refused", &r, 10000) == 0);
		CU_ASSERT_EQUAL(r.status, 503);
		CU_ASSERT_STRING_EQUAL(t_header(&r, "Retry-After", v, sizeof(v)) ? v : "", "5");
		CU_ASSERT(t_now_ms() - t0 < 2000);
		t_resp_free(&r);
		CU_ASSERT(td_wait_log(&D, "the job store cannot be written: requests for jobs are answered 503", 5000));
	}
	CU_ASSERT_FATAL(tpg_resume(&PG) == 0);
	/* the recorder tries again every 10 s while it has nothing to write */
	CU_ASSERT(t_wait_for(healthy, NULL, 30000));
	CU_ASSERT(td_wait_log(&D, "connected again", 5000));
	CU_ASSERT_FATAL(t_get(D.port, "/hello?after", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(pg_wait("SELECT state FROM jobs WHERE uri = '/hello?after'", "succeeded\n", out, sizeof(out)));
	CU_ASSERT(td_wait_log(&D, "the job store takes writes again", 5000));
	/* the one answered while the loss was not known yet */
	CU_ASSERT(pg_wait("SELECT state, http_status FROM jobs WHERE uri = '/hello?during'", "succeeded|200\n", out,
	                  sizeof(out)));
	CU_ASSERT(td_log_has(&D, "row change(s) kept to be written when it can"));
	CU_ASSERT(td_log_has(&D, "wrote the 1 row change(s) kept while the job database could not take writes") ||
	          td_log_has(&D, "wrote the 2 row change(s) kept while the job database could not take writes"));
	/* the refused one never ran */
	CU_ASSERT_EQUAL(tpg_psql(&PG, "SELECT count(*) FROM jobs WHERE uri = '/hello?refused'", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	/* once per connection (the recorder's, the monitors' reader), not per write */
	snprintf(cmd, sizeof(cmd), "grep -c 'lost the connection' '%s'", D.log);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT(atoi(out) >= 1 && atoi(out) <= 2);
}

/* The database turns read-only under cgiq (a failover to a standby, here
 * default_transaction_read_only and its sessions ended): the next write
 * fails, cgiq connects again but finds it does not take writes (said
 * once), /health says 503, requests for jobs get 503 with Retry-After; the
 * job answered meanwhile keeps its row, written once the database takes
 * writes again, when cgiq serves again by itself. */
static void test_read_only(void)
{
	struct tresp r;
	char out[256], cmd[600], v[32];

	CU_ASSERT_EQUAL_FATAL(health_status(), 200);
	CU_ASSERT_FATAL(tpg_psql(&PG,
	                         "ALTER DATABASE cgiq SET default_transaction_read_only = on;"
	                         " SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity"
	                         " WHERE datname = 'cgiq' AND pid <> pg_backend_pid()",
	                         out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "t\n");
	CU_ASSERT_FATAL(t_get(D.port, "/hello?ro-first", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(t_wait_for(unhealthy, NULL, 15000));
	CU_ASSERT(td_wait_log(&D, "connected again, but the job database", 15000));
	CU_ASSERT(td_log_has(&D, "does not take writes: ERROR:  cannot execute UPDATE in a read-only transaction"));
	CU_ASSERT_FATAL(t_get(D.port, "/hello?ro-refused", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT_STRING_EQUAL(t_header(&r, "Retry-After", v, sizeof(v)) ? v : "", "5");
	t_resp_free(&r);
	CU_ASSERT_FATAL(tpg_psql(&PG, "BEGIN READ WRITE; ALTER DATABASE cgiq RESET default_transaction_read_only; COMMIT",
	                         out, sizeof(out)) == 0);
	CU_ASSERT(t_wait_for(healthy, NULL, 30000));
	CU_ASSERT(pg_wait("SELECT state, http_status FROM jobs WHERE uri = '/hello?ro-first'", "succeeded|200\n", out,
	                  sizeof(out)));
	CU_ASSERT_EQUAL(tpg_psql(&PG, "SELECT count(*) FROM jobs WHERE uri = '/hello?ro-refused'", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	CU_ASSERT_FATAL(t_get(D.port, "/hello?ro-after", &r, 10000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT(pg_wait("SELECT state FROM jobs WHERE uri = '/hello?ro-after'", "succeeded\n", out, sizeof(out)));
	/* said once while it lasted, not at every try */
	snprintf(cmd, sizeof(cmd), "grep -c 'connected again, but the job database' '%s'", D.log);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "1\n");
}

/* ---------------- stopped under load ---------------- */

#define LOAD_THREADS 4
#define LOAD_MAX 4000 /* requests per thread at most */

/* What each request was answered; sync and async, one URI each. */
struct load {
	pthread_t thread;
	int t, n;
	short status[LOAD_MAX];
	char retry_after_ok[LOAD_MAX]; /* a 503 carried Retry-After: 5 */
};

static struct load loads[LOAD_THREADS];
static volatile int load_stop;
static int load_count(int status, int from_each[LOAD_THREADS]);

static void *load_main(void *arg)
{
	struct load *l = arg;
	char req[256], v[16];

	for (l->n = 0; l->n < LOAD_MAX && !load_stop; l->n++) {
		struct tresp r;
		int i = l->n, fd = t_connect(D.port);
		/* one in three asynchronous: a 202 is a promise too */
		snprintf(req, sizeof(req), "GET /hello?load-%d-%d HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", l->t,
		         i, i % 3 == 2 ? "Prefer: respond-async\r\n" : "");
		l->status[i] = -1;
		if (fd < 0)
			continue;
		if (t_send_str(fd, req) == 0 && t_read_response(fd, &r, 0, 10000) == 0) {
			l->status[i] = (short)r.status;
			l->retry_after_ok[i] = t_header(&r, "Retry-After", v, sizeof(v)) && strcmp(v, "5") == 0;
			t_resp_free(&r);
		}
		close(fd);
	}
	return NULL;
}

/* Answers with status so far, those after from_each[t] (NULL: all). */
static int load_count(int status, int from_each[LOAD_THREADS])
{
	int n = 0;

	for (int t = 0; t < LOAD_THREADS; t++)
		for (int i = from_each ? from_each[t] : 0; i < loads[t].n; i++)
			n += loads[t].status[i] == status || (status == 0 && (loads[t].status[i] == 200 || loads[t].status[i] == 202));
	return n;
}

static int refused_some(void *ud)
{
	(void)ud;
	return load_count(503, NULL) >= 20;
}

static int *answered_from;
static int answered_again(void *ud)
{
	(void)ud;
	return load_count(0, answered_from) >= 20;
}

static int started_load(void *ud)
{
	(void)ud;
	return load_count(0, NULL) >= 40;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * PostgreSQL stopped under load (four clients, synchronous and
 * asynchronous requests), then started: while it is down, 503 with
 * Retry-After; every request answered 200 or 202 has its row, succeeded
 * (those that ran while the loss was not known yet included: cgiq kept
 * them), no request answered 503 has one, and cgiq serves again by itself.
 */
static void test_stopped_under_load(void)
{
	static char out[128 * 1024], want[128 * 1024];
	static char *lines[LOAD_THREADS * LOAD_MAX];
	int from[LOAD_THREADS], nlines = 0, bad_503 = 0;
	size_t w = 0;

	load_stop = 0;
	for (int t = 0; t < LOAD_THREADS; t++) {
		loads[t].t = t;
		loads[t].n = 0;
		CU_ASSERT_FATAL(pthread_create(&loads[t].thread, NULL, load_main, &loads[t]) == 0);
	}
	CU_ASSERT(t_wait_for(started_load, NULL, 20000));
	CU_ASSERT(tpg_halt(&PG) == 0);
	CU_ASSERT(t_wait_for(refused_some, NULL, 20000));
	CU_ASSERT(tpg_resume(&PG) == 0);
	for (int t = 0; t < LOAD_THREADS; t++)
		from[t] = loads[t].n;
	answered_from = from;
	CU_ASSERT(t_wait_for(answered_again, NULL, 40000));
	load_stop = 1;
	for (int t = 0; t < LOAD_THREADS; t++)
		pthread_join(loads[t].thread, NULL);
	/* every request was answered: 200, 202 or 503 */
	CU_ASSERT_EQUAL(load_count(-1, NULL), 0);
	CU_ASSERT_EQUAL(load_count(0, NULL) + load_count(503, NULL),
	                loads[0].n + loads[1].n + loads[2].n + loads[3].n);
	/* the asynchronous ones have run */
	CU_ASSERT(pg_wait("SELECT count(*) FROM jobs WHERE uri LIKE '/hello?load-%' AND state IN ('queued', 'running')",
	                  "0\n", out, sizeof(out)));
	/* the rows, exactly: one for each 200 and 202, none for a 503 */
	for (int t = 0; t < LOAD_THREADS; t++)
		for (int i = 0; i < loads[t].n; i++) {
			char line[64];
			if (loads[t].status[i] == 503) {
				bad_503 += !loads[t].retry_after_ok[i];
				continue;
			}
			snprintf(line, sizeof(line), "/hello?load-%d-%d|succeeded|200", t, i);
			lines[nlines++] = strdup(line);
		}
	qsort(lines, (size_t)nlines, sizeof(lines[0]), cmp_str);
	for (int i = 0; i < nlines; i++) {
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%s\n", lines[i]);
		free(lines[i]);
	}
	CU_ASSERT_EQUAL(bad_503, 0);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG,
	                               "SELECT uri, state, http_status FROM jobs WHERE uri LIKE '/hello?load-%'"
	                               " ORDER BY concat_ws('|', uri, state, http_status) COLLATE \"C\"",
	                               out, sizeof(out)),
	                      0);
	CU_ASSERT_STRING_EQUAL(out, want);
	CU_ASSERT(load_count(503, NULL) >= 20);
	/* rows were kept while it was down (the first was in the restart test) */
	{
		char cmd[600], n[32];
		snprintf(cmd, sizeof(cmd), "grep -c 'row change(s) kept to be written when it can' '%s'", D.log);
		t_run(cmd, n, sizeof(n));
		CU_ASSERT(atoi(n) >= 2);
	}
	/* serving again by itself */
	CU_ASSERT(td_wait_log(&D, "the job store takes writes again", 10000));
	CU_ASSERT_EQUAL(health_status(), 200);
}

static pid_t group_of_slow;

static int group_gone(void *ud)
{
	(void)ud;
	return t_group_alive(group_of_slow) == 0;
}

/* kill -9 of cgiq with a job running and an asynchronous one queued, then
 * a start: the running one's row interrupted and its process group killed,
 * the queued one run, as on SQLite. */
static void test_kill9(void)
{
	char out[256];
	int fd = t_connect(D.port);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(t_send_str(fd, "GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CU_ASSERT_FATAL(pg_wait("SELECT state FROM jobs WHERE uri = '/slow?30'", "running\n", out, sizeof(out)));
	CU_ASSERT_FATAL(tpg_psql(&PG, "SELECT pid FROM jobs WHERE uri = '/slow?30'", out, sizeof(out)) == 0);
	group_of_slow = (pid_t)atol(out);
	CU_ASSERT_FATAL(group_of_slow > 0 && t_group_alive(group_of_slow) > 0);
	/* an asynchronous job accepted behind it (202: its row is committed) */
	{
		struct tresp r;
		int fd2 = t_connect(D.port);
		CU_ASSERT_FATAL(fd2 >= 0);
		CU_ASSERT_FATAL(t_send_str(fd2, "GET /hello?queued HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n"
		                                "Connection: close\r\n\r\n") == 0);
		CU_ASSERT_FATAL(t_read_response(fd2, &r, 0, 10000) == 0);
		CU_ASSERT_EQUAL(r.status, 202);
		t_resp_free(&r);
		close(fd2);
	}
	CU_ASSERT(pg_wait("SELECT state FROM jobs WHERE uri = '/hello?queued'", "queued\n", out, sizeof(out)));
	td_kill9(&D);
	close(fd);
	CU_ASSERT_FATAL(td_restart(&D, args) == 0);
	CU_ASSERT(pg_wait("SELECT state FROM jobs WHERE uri = '/slow?30'", "interrupted\n", out, sizeof(out)));
	CU_ASSERT(t_wait_for(group_gone, NULL, 10000));
	/* the queue was the database's: the accepted job runs after the start */
	CU_ASSERT(pg_wait("SELECT state, http_status FROM jobs WHERE uri = '/hello?queued'", "succeeded|200\n", out,
	                  sizeof(out)));
}

/* --rerun-interrupted on PostgreSQL: an asynchronous job running when cgiq
 * was killed goes back to the queue in its row (attempts 1) and runs again
 * at the start, to success, under a new pid. */
static void test_rerun_interrupted(void)
{
	static const char *const rerun[] = {"--store", url, "--admin-listen", admin, "--rerun-interrupted", NULL};
	char id[64], sql[256], out[256], first_pid[32];

	CU_ASSERT_EQUAL_FATAL(td_stop(&D), 0);
	CU_ASSERT_FATAL(td_restart(&D, rerun) == 0);
	CU_ASSERT_FATAL(t_submit_async(D.port, "/slow?2", id, sizeof(id)) == 0);
	snprintf(sql, sizeof(sql), "SELECT state, attempts FROM jobs WHERE id = '%s'", id);
	CU_ASSERT_FATAL(pg_wait(sql, "running|0\n", out, sizeof(out)));
	snprintf(sql, sizeof(sql), "SELECT pid FROM jobs WHERE id = '%s'", id);
	CU_ASSERT_FATAL(tpg_psql(&PG, sql, first_pid, sizeof(first_pid)) == 0);
	group_of_slow = (pid_t)atol(first_pid);
	td_kill9(&D);
	CU_ASSERT_FATAL(td_restart(&D, rerun) == 0);
	CU_ASSERT(t_wait_for(group_gone, NULL, 10000));
	snprintf(sql, sizeof(sql), "SELECT state, attempts, http_status, pid <> %ld FROM jobs WHERE id = '%s'",
	         atol(first_pid), id);
	/* the second run takes its 2 s */
	CU_ASSERT(pg_wait_ms(sql, "succeeded|1|200|t\n", out, sizeof(out), 10000));
	CU_ASSERT_STRING_EQUAL(out, "succeeded|1|200|t\n");
}

/* Kept results on PostgreSQL: three 100 kB results under a 250 kB cap (the
 * newest first, from the rows): the oldest is deleted at the next sweep
 * (TTL/4 = 1 s), the two newer stay whole; after the TTL the sweep deletes
 * all three rows from the table, and their files. */
static void test_results_cap_and_expiry(void)
{
	static const char *const capped[] = {"--store", url, "--admin-listen", admin, "--max-results-bytes", "250k",
	                                     "--result-ttl", "4s", NULL};
	char ids[3][64], sql[512], out[256], path[400];
	struct tresp r;
	struct stat st;
	int status = 0;

	CU_ASSERT_EQUAL_FATAL(td_stop(&D), 0);
	CU_ASSERT_FATAL(td_restart(&D, capped) == 0);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_FATAL(t_submit_async(D.port, "/big-output?100000", ids[i], sizeof(ids[i])) == 0);
		snprintf(sql, sizeof(sql), "SELECT state, bytes_out FROM jobs WHERE id = '%s'", ids[i]);
		CU_ASSERT_FATAL(pg_wait(sql, "succeeded|100000\n", out, sizeof(out)));
	}
	snprintf(path, sizeof(path), "/_cgiq/jobs/%s/result", ids[0]);
	for (uint64_t end = t_now_ms() + 8000; t_now_ms() < end && status != 404;) {
		CU_ASSERT_FATAL(t_get(D.port, path, &r, 10000) == 0);
		status = r.status;
		t_resp_free(&r);
		if (status != 404)
			usleep(100000);
	}
	CU_ASSERT_EQUAL(status, 404);
	CU_ASSERT(td_wait_log(&D, "kept results over --max-results-bytes", 5000));
	for (int i = 1; i < 3; i++) {
		snprintf(path, sizeof(path), "/_cgiq/jobs/%s/result", ids[i]);
		CU_ASSERT_FATAL(t_get(D.port, path, &r, 10000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT(r.body_len == 100000 && r.body[99999] == 'a' + 99999 % 26);
		t_resp_free(&r);
	}
	/* the TTL: every row gone from the table, every file from the spool */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id IN ('%s', '%s', '%s')", ids[0], ids[1], ids[2]);
	CU_ASSERT(pg_wait_ms(sql, "0\n", out, sizeof(out), 15000));
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/spool/%s.out", D.dir, ids[i]);
		CU_ASSERT(stat(path, &st) < 0);
	}
	CU_ASSERT(td_wait_log(&D, "expired job(s) and their files", 5000));
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("the job store on PostgreSQL", suite_init, suite_clean);
	if (s == NULL || !CU_add_test(s, "a synchronous job, recorded", test_sync) ||
	    !CU_add_test(s, "an asynchronous job: 202, monitor, result", test_async) ||
	    !CU_add_test(s, "cgiq jobs --store; one daemon per database", test_cli_and_one_writer) ||
	    !CU_add_test(s, "the password is never said", test_no_password) ||
	    !CU_add_test(s, "cgiq store migrate", test_migrate_cmd) ||
	    !CU_add_test(s, "progress, an operator's cancel, a result's expiry", test_progress_cancel_expire) ||
	    !CU_add_test(s, "the server stops and comes back", test_server_restart) ||
	    !CU_add_test(s, "the server stops under load and comes back", test_stopped_under_load) ||
	    !CU_add_test(s, "the database turns read-only, then takes writes again", test_read_only) ||
	    !CU_add_test(s, "kill -9 of cgiq, then a start", test_kill9) ||
	    !CU_add_test(s, "--rerun-interrupted: re-queued in the row, run again", test_rerun_interrupted) ||
	    !CU_add_test(s, "--max-results-bytes and the expiry sweep", test_results_cap_and_expiry)) {
		CU_cleanup_registry();
		return 1;
	}
	return t_cunit_run();
}
