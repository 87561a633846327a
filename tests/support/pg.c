/*
 * The test suite's own PostgreSQL server (pg.h).
 */
#include "pg.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Runs cmd with sh; its stdout (and stderr, with 2>&1 in cmd) into out. */
static int run(const char *cmd, char *out, size_t out_size)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (p == NULL)
		return -1;
	if (out && out_size > 0) {
		n = fread(out, 1, out_size - 1, p);
		out[n] = '\0';
	} else {
		char sink[512];
		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* PostgreSQL's server programs (Debian keeps them off PATH). */
static int bindir(char *out, size_t size)
{
	size_t n;

	if (run("pg_config --bindir 2>/dev/null", out, size) != 0)
		return -1;
	n = strcspn(out, "\n");
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

static void show_file(const char *what, const char *path)
{
	char cmd[512];

	fprintf(stderr, "tpg: %s; %s:\n", what, path);
	snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", path);
	run(cmd, NULL, 0);
}

static int alive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

int tpg_start(struct tpg *pg)
{
	char bin[256], cmd[1536], out[256], path[128];
	struct passwd *pw = getpwnam("postgres");

	memset(pg, 0, sizeof(*pg));
	if (pw == NULL || bindir(bin, sizeof(bin)) < 0) {
		fprintf(stderr, "tpg: no postgres user or no pg_config: scripts/setup.sh installs postgresql and libpq-dev\n");
		return -1;
	}
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/cgiq-pg-XXXXXX");
	if (mkdtemp(pg->dir) == NULL)
		return -1;
	/* The server's (it runs as postgres); others may reach the socket. */
	if (chown(pg->dir, pw->pw_uid, pw->pw_gid) < 0 || chmod(pg->dir, 0755) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
	         "cd / && runuser -u postgres -- '%s/initdb' -D '%s/data' -U cgiq --auth=trust -E UTF8 --locale=C.UTF-8 "
	         "--no-sync >'%s/initdb.log' 2>&1",
	         bin, pg->dir, pg->dir);
	if (run(cmd, NULL, 0) != 0) {
		snprintf(path, sizeof(path), "%s/initdb.log", pg->dir);
		show_file("initdb failed", path);
		return -1;
	}
	if (tpg_resume(pg) < 0)
		return -1;
	snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s dbname=cgiq user=cgiq", pg->dir);
	snprintf(pg->url, sizeof(pg->url), "postgresql://cgiq@/cgiq?host=%s", pg->dir);
	snprintf(cmd, sizeof(cmd), "'%s/createdb' -h '%s' -U cgiq cgiq 2>&1", bin, pg->dir);
	if (run(cmd, out, sizeof(out)) != 0) {
		fprintf(stderr, "tpg: createdb: %s\n", out);
		tpg_stop(pg);
		return -1;
	}
	return 0;
}

int tpg_resume(struct tpg *pg)
{
	char bin[256], cmd[1536], out[256], path[128];
	FILE *f;

	if (bindir(bin, sizeof(bin)) < 0)
		return -1;
	/* Only the socket in the directory: no TCP at all. (From /: the
	 * postgres user may not enter the directory the tests run in.) */
	snprintf(cmd, sizeof(cmd),
	         "cd / && runuser -u postgres -- '%s/pg_ctl' -D '%s/data' -l '%s/server.log' -w -t 30 "
	         "-o \"-c listen_addresses='' -k '%s'\" start >/dev/null 2>&1",
	         bin, pg->dir, pg->dir, pg->dir);
	if (run(cmd, NULL, 0) != 0) {
		snprintf(path, sizeof(path), "%s/server.log", pg->dir);
		show_file("the server did not start", path);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/data/postmaster.pid", pg->dir);
	if ((f = fopen(path, "r")) == NULL || fgets(out, sizeof(out), f) == NULL) {
		if (f)
			fclose(f);
		fprintf(stderr, "tpg: no %s\n", path);
		return -1;
	}
	fclose(f);
	pg->pid = (pid_t)atol(out);
	return 0;
}

int tpg_halt(struct tpg *pg)
{
	static const struct {
		int sig;
		int after_ms;
	} steps[] = {{SIGINT, 0}, {SIGQUIT, 10000}, {SIGKILL, 20000}};
	struct timespec t0, now;
	size_t step = 0;

	if (pg->pid > 0) {
		/* Fast shutdown: clients are disconnected, then a clean stop. */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (alive(pg->pid)) {
			long ms;
			clock_gettime(CLOCK_MONOTONIC, &now);
			ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
			if (step < sizeof(steps) / sizeof(steps[0]) && ms >= steps[step].after_ms)
				kill(pg->pid, steps[step++].sig);
			if (ms > 30000)
				break;
			usleep(20000);
		}
		if (alive(pg->pid)) {
			fprintf(stderr, "tpg: the server (pid %d) is still running after 30 s\n", (int)pg->pid);
			return -1;
		}
		pg->pid = 0;
	}
	return 0;
}

void tpg_stop(struct tpg *pg)
{
	char cmd[128];

	tpg_halt(pg);
	if (pg->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg->dir);
		run(cmd, NULL, 0);
		pg->dir[0] = '\0';
	}
}

int tpg_psql(const struct tpg *pg, const char *sql, char *out, size_t out_size)
{
	char bin[256], cmd[4096], quoted[2048];
	size_t n = 0;

	if (bindir(bin, sizeof(bin)) < 0)
		return -1;
	/* sql in single quotes for sh: each ' becomes '\'' */
	for (const char *p = sql; *p && n + 5 < sizeof(quoted); p++) {
		if (*p == '\'') {
			memcpy(quoted + n, "'\\''", 4);
			n += 4;
		} else {
			quoted[n++] = *p;
		}
	}
	quoted[n] = '\0';
	snprintf(cmd, sizeof(cmd), "'%s/psql' -XAtq '%s' -c '%s' 2>&1", bin, pg->conninfo, quoted);
	return run(cmd, out, out_size);
}
