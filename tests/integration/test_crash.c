/*
 * Crash safety: cgiq is killed with SIGKILL at random moments while clients
 * keep sending synchronous requests and asynchronous submissions, then
 * restarted, several times. Afterwards every job that was answered 202 has
 * run to success exactly once (the program appends its CGIQ_JOB_ID to a
 * ledger), no row is left queued or running, no process of the programs is
 * left, and the database passes PRAGMA integrity_check.
 *
 * The delays come from a PRNG whose seed is printed; CGIQ_CRASH_SEED=N
 * replays a run.
 *
 * With CGIQ_TEST_STORE=postgresql (integration_crash_pg) the same on the
 * PostgreSQL store: the suite's own server (support/pg.c), the rows read
 * there.
 */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/pg.h"
#include "support/support.h"

#define CYCLES 6
#define LOADERS 3
#define MAX_IDS 20000

static uint64_t prng_state;

/* The PostgreSQL store, when the suite runs on it. */
static struct tpg PG;
static int on_pg;
static char store_url[400];

/* The answer to sql from the daemon's store (psql's or sqlite3's rows, one
 * a line, columns split by '|'): 0, or non-zero. */
static int query(const struct tdaemon *d, const char *sql, char *out, size_t size)
{
	char cmd[1200];

	if (on_pg)
		return tpg_psql(&PG, sql, out, size);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"%s\"", d->db, sql);
	return t_run(cmd, out, size);
}

/* query's rows into the file at path. */
static int query_to_file(const struct tdaemon *d, const char *sql, const char *path)
{
	static char rows[MAX_IDS * 66];
	FILE *f;
	int r = query(d, sql, rows, sizeof(rows));

	if (r != 0 || (f = fopen(path, "w")) == NULL)
		return -1;
	fputs(rows, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* xorshift64*: small, and the same sequence for the same seed everywhere. */
static uint64_t prng(void)
{
	prng_state ^= prng_state >> 12;
	prng_state ^= prng_state << 25;
	prng_state ^= prng_state >> 27;
	return prng_state * 2685821657736338717ull;
}

static unsigned prng_below(unsigned n) { return (unsigned)(prng() % n); }

/* A client process: requests until killed or until_ms, each on its own
 * connection; the ids of 202 answers go to accepted_path, one line each. */
static void loader(int port, const char *accepted_path, uint64_t seed, uint64_t until_ms)
{
	int afd = open(accepted_path, O_WRONLY | O_APPEND | O_CREAT, 0644);

	prng_state = seed;
	while (t_now_ms() < until_ms && getppid() != 1) {
		char req[256], loc[256];
		struct tresp r;
		int async = prng_below(3) != 0; /* two async submissions for one synchronous request */
		int fd = t_connect(port);

		if (fd < 0) {
			usleep(10000); /* cgiq is down: it is being restarted */
			continue;
		}
		snprintf(req, sizeof(req), "GET /ledger?0.%03u HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
		         prng_below(200), async ? "Prefer: respond-async\r\n" : "");
		if (t_send_str(fd, req) == 0 && t_read_response(fd, &r, 0, 5000) == 0) {
			if (async && r.status == 202 && t_header(&r, "Location", loc, sizeof(loc))) {
				char line[80];
				int n = snprintf(line, sizeof(line), "%s\n", strrchr(loc, '/') + 1);
				/* one O_APPEND write per line: loaders never interleave */
				if (write(afd, line, (size_t)n) != n)
					_exit(3);
			}
			t_resp_free(&r);
		}
		close(fd);
	}
	_exit(0);
}

/* Lines of a file, each at most 64 bytes; returns the count. */
static unsigned read_lines(const char *path, char (*out)[65], unsigned max)
{
	FILE *f = fopen(path, "r");
	char line[256];
	unsigned n = 0;

	if (f == NULL)
		return 0;
	while (n < max && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		snprintf(out[n++], 65, "%s", line);
	}
	fclose(f);
	return n;
}

static unsigned count_of(char (*ids)[65], unsigned n, const char *id)
{
	unsigned c = 0;
	for (unsigned i = 0; i < n; i++)
		c += strcmp(ids[i], id) == 0;
	return c;
}

struct settle {
	const struct tdaemon *d;
	char out[256];
};

/* No row queued or running any more. */
static int settled(void *ud)
{
	struct settle *s = ud;
	return query(s->d, "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')", s->out, sizeof(s->out)) == 0 &&
	       strcmp(s->out, "0\n") == 0;
}

struct groups {
	pid_t pids[MAX_IDS];
	unsigned n;
};

static int groups_gone(void *ud)
{
	struct groups *g = ud;
	for (unsigned i = 0; i < g->n; i++)
		if (t_group_alive(g->pids[i]) > 0)
			return 0;
	return 1;
}

static void test_kill9_under_load(void)
{
	static char accepted[MAX_IDS][65], ledger[MAX_IDS][65], rows[MAX_IDS][65];
	static struct groups groups;
	struct tdaemon d;
	char listen_arg[64], script[600], ledger_path[400], accepted_path[400], cmd[1200], out[256];
	const char *env_seed = getenv("CGIQ_CRASH_SEED");
	uint64_t seed = env_seed ? strtoull(env_seed, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	pid_t loaders[LOADERS];
	unsigned n_acc, n_led, n_rows, reruns = 0;
	int port = t_free_port();
	FILE *f;

	printf("\n    crash test seed %llu (CGIQ_CRASH_SEED=%llu replays it)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	fflush(stdout);
	prng_state = seed ? seed : 1;
	CU_ASSERT_FATAL(port > 0);
	snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
	const char *const args[] = {"--listen",  listen_arg, "--max-jobs",             "4",
	                            "--rerun-interrupted", "--kill-grace", "300ms", on_pg ? "--store" : NULL,
	                            store_url, NULL};
	CU_ASSERT_FATAL(td_start(&d, NULL, args) == 0);

	/* The program: appends its job id to the ledger unless a run of the
	 * same job before a crash already did (CGIQ_JOB_ID tells a re-run). */
	snprintf(ledger_path, sizeof(ledger_path), "%s/ledger", d.dir);
	snprintf(accepted_path, sizeof(accepted_path), "%s/accepted", d.dir);
	snprintf(script, sizeof(script), "%s/ledger", d.cgi_root);
	f = fopen(script, "w");
	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "#!/bin/sh\n"
	           "case $QUERY_STRING in 0.[0-9][0-9][0-9]) sleep \"$QUERY_STRING\" ;; esac\n"
	           "grep -qx \"$CGIQ_JOB_ID\" '%s' 2>/dev/null || echo \"$CGIQ_JOB_ID\" >> '%s'\n"
	           "echo \"$CGIQ_JOB_ID\" >> '%s.runs'\n"
	           "printf 'Content-Type: text/plain\\r\\n\\r\\n%%s\\n' \"$CGIQ_JOB_ID\"\n",
	        ledger_path, ledger_path, ledger_path);
	fclose(f);
	chmod(script, 0755);

	for (int i = 0; i < LOADERS; i++) {
		uint64_t s = prng();
		loaders[i] = fork();
		CU_ASSERT_FATAL(loaders[i] >= 0);
		if (loaders[i] == 0)
			loader(port, accepted_path, s, t_now_ms() + 45000);
	}

	for (int cycle = 0; cycle < CYCLES; cycle++) {
		unsigned delay_ms = 200 + prng_below(1300);
		usleep(delay_ms * 1000);
		td_kill9(&d);
		printf("    cycle %d: killed after %u ms\n", cycle + 1, delay_ms);
		fflush(stdout);
		CU_ASSERT_FATAL(td_restart(&d, args) == 0);
	}
	/* a last stretch of load on the surviving daemon, then the clients stop */
	usleep(500000);
	for (int i = 0; i < LOADERS; i++) {
		kill(loaders[i], SIGKILL);
		waitpid(loaders[i], NULL, 0);
	}

	{
		struct settle s = {&d, ""};
		CU_ASSERT(t_wait_for(settled, &s, 20000));
	}
	CU_ASSERT_EQUAL(td_stop(&d), 0);

	n_acc = read_lines(accepted_path, accepted, MAX_IDS);
	n_led = read_lines(ledger_path, ledger, MAX_IDS);
	CU_ASSERT(n_acc > 20); /* the load really ran */
	/* every job answered 202 ran to success once, and nothing ran twice */
	snprintf(cmd, sizeof(cmd), "%s/rows", d.dir);
	CU_ASSERT_EQUAL(query_to_file(&d, on_pg ? "SELECT id FROM jobs WHERE async AND state = 'succeeded'"
	                                        : "SELECT id FROM jobs WHERE async = 1 AND state = 'succeeded'",
	                              cmd),
	                0);
	n_rows = read_lines(cmd, rows, MAX_IDS);
	for (unsigned i = 0; i < n_acc; i++) {
		unsigned in_ledger = count_of(ledger, n_led, accepted[i]);
		unsigned in_rows = count_of(rows, n_rows, accepted[i]);
		if (in_ledger != 1 || in_rows != 1)
			fprintf(stderr, "job %s: %u time(s) in the ledger, %u succeeded row(s)\n", accepted[i],
			        in_ledger, in_rows);
		CU_ASSERT_EQUAL(in_ledger, 1);
		CU_ASSERT_EQUAL(in_rows, 1);
		CU_ASSERT_EQUAL(count_of(accepted, n_acc, accepted[i]), 1);
	}
	for (unsigned i = 0; i < n_led; i++)
		CU_ASSERT_EQUAL(count_of(ledger, n_led, ledger[i]), 1);
	{
		char cmd2[600];
		snprintf(cmd2, sizeof(cmd2), "sort '%s.runs' | uniq -d | wc -l", ledger_path);
		t_run(cmd2, out, sizeof(out));
		reruns = (unsigned)atoi(out);
	}
	printf("    %u accepted, %u in the ledger, %u job(s) ran again after a crash\n", n_acc, n_led, reruns);

	/* nothing left running or queued, the file is sound */
	CU_ASSERT_EQUAL(query(&d, "SELECT count(*) FROM jobs WHERE state IN ('running', 'queued')", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	if (!on_pg) {
		snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'PRAGMA integrity_check'", d.db);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
		CU_ASSERT_STRING_EQUAL(out, "ok\n");
	}

	/* no process of any job is left (programs die with cgiq; what they
	 * started is killed at the next start, or ends on its own) */
	snprintf(cmd, sizeof(cmd), "%s/pids", d.dir);
	CU_ASSERT_EQUAL(query_to_file(&d, "SELECT DISTINCT pid FROM jobs WHERE pid > 1", cmd), 0);
	f = fopen(cmd, "r");
	CU_ASSERT_FATAL(f != NULL);
	while (groups.n < MAX_IDS && fscanf(f, "%d", &groups.pids[groups.n]) == 1)
		groups.n++;
	fclose(f);
	CU_ASSERT(groups.n > 0);
	CU_ASSERT(t_wait_for(groups_gone, &groups, 5000));
	/* "ledge[r]": the shell running pgrep has the pattern, not the path */
	snprintf(cmd, sizeof(cmd), "pgrep -f '%.*s[r]' | wc -l", (int)strlen(script) - 1, script);
	t_run(cmd, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "0\n");
	td_cleanup(&d);
}

static int pg_init(void)
{
	if (tpg_start(&PG) < 0)
		return -1;
	snprintf(store_url, sizeof(store_url), "%s", PG.url);
	return 0;
}

static int pg_clean(void)
{
	tpg_stop(&PG);
	return 0;
}

int main(void)
{
	const char *store = getenv("CGIQ_TEST_STORE");
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	on_pg = store && strcmp(store, "postgresql") == 0;
	s = on_pg ? CU_add_suite("crash, on PostgreSQL", pg_init, pg_clean) : CU_add_suite("crash", NULL, NULL);
	CU_add_test(s, "kill -9 under load, restart, every 202 job once", test_kill9_under_load);

	return t_cunit_run();
}
