/*
 * No process outlives its job: programs that leave their process group
 * (tests/fixtures/escape: setsid; a double fork that keeps the response
 * pipe; setsid ignoring SIGTERM), each under a normal end, a timeout, a
 * client that goes away and a SIGTERM to cgiq. Afterwards none of their
 * processes is alive (checked by pid, and by the name in their command
 * line), cgiq has no zombie child, and the job's row says what happened.
 * Also under --user nobody, and with --leftovers keep.
 */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/support.h"

#define DEADLINE_MS 10000

static const char *const MODES[] = { "setsid", "holdout", "ignoreterm" };
static int mark_seq;

struct leftover {
	int mark;
	pid_t pids[2];
	int npids;
};

static void mark_path(int mark, char *out, size_t size)
{
	snprintf(out, size, "/tmp/cgiq-leftover-%d.pid", mark);
}

/* A mark no earlier run of the test left behind. */
static int new_mark(void)
{
	char path[64];

	mark_path(getpid() % 10000 * 100 + ++mark_seq, path, sizeof(path));
	unlink(path);
	return getpid() % 10000 * 100 + mark_seq;
}

/* Waits for the leftover's two pids (it writes them once it runs). */
static int read_pids(struct leftover *l)
{
	char path[64], *text = NULL;
	uint64_t end = t_now_ms() + DEADLINE_MS;

	mark_path(l->mark, path, sizeof(path));
	for (;;) {
		free(text);
		text = t_slurp(path);
		l->npids = text ? sscanf(text, "%d %d", &l->pids[0], &l->pids[1]) : 0;
		if (l->npids == 2 || t_now_ms() >= end)
			break;
		usleep(20000);
	}
	free(text);
	return l->npids == 2 ? 0 : -1;
}

/* Counts the processes for which match(the start of /proc/PID/FILE, ud) holds. */
static int count_procs(const char *file, int (*match)(const char *buf, void *ud), void *ud)
{
	char path[300], buf[512];
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)) != NULL) {
		FILE *f;
		size_t got;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/%s", de->d_name, file);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[got] = '\0';
		n += match(buf, ud);
	}
	if (d)
		closedir(d);
	return n;
}

/* A command line that is the leftover's name, or its child's. */
static int is_named(const char *cmdline, void *ud)
{
	const char *name = ud;
	size_t n = strlen(name);
	return strncmp(cmdline, name, n) == 0 && (cmdline[n] == '\0' || cmdline[n] == '-');
}

static int named_alive(int mark)
{
	char name[64];
	snprintf(name, sizeof(name), "cgiq-leftover-%d", mark);
	return count_procs("cmdline", is_named, name);
}

/* A stat line of a zombie whose parent is *ud. */
static int is_zombie_of(const char *stat, void *ud)
{
	const char *p = strrchr(stat, ')');
	char state;
	int ppid;
	return p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' && ppid == *(pid_t *)ud;
}

static int zombies_of(pid_t parent)
{
	return count_procs("stat", is_zombie_of, &parent);
}

static int pid_exists(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

struct gone_wait {
	const struct leftover *l;
	pid_t daemon;
};

static int all_gone(void *ud)
{
	struct gone_wait *w = ud;
	for (int i = 0; i < w->l->npids; i++)
		if (pid_exists(w->l->pids[i]))
			return 0;
	return named_alive(w->l->mark) == 0 && (w->daemon <= 0 || zombies_of(w->daemon) == 0);
}

/* Its pid file removed, and its pids killed when kill_them (a test that
 * failed leaves nothing behind; one that passed must not signal pids that
 * may have been reused since). */
static void leftover_forget(const struct leftover *l, int kill_them)
{
	char path[64];

	for (int i = 0; kill_them && i < l->npids; i++)
		kill(l->pids[i], SIGKILL);
	mark_path(l->mark, path, sizeof(path));
	unlink(path);
}

/* None of the leftover's processes is alive (not even a zombie), and the
 * daemon (when running) has no zombie child. */
static void check_gone(const struct leftover *l, pid_t daemon)
{
	struct gone_wait w = { l, daemon };
	int ok = t_wait_for(all_gone, &w, DEADLINE_MS);

	if (!ok)
		fprintf(stderr, "\n  leftover %d: pids %d %d alive %d %d, named %d, zombies %d\n", l->mark, (int)l->pids[0],
		        (int)l->pids[1], pid_exists(l->pids[0]), pid_exists(l->pids[1]), named_alive(l->mark),
		        daemon > 0 ? zombies_of(daemon) : -1);
	CU_ASSERT(ok);
	leftover_forget(l, !ok);
}

static int connect_send(const struct tdaemon *d, const char *mode, int mark, int wait_s)
{
	char req[256];
	int fd = t_connect(d->port);

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET /escape?%s-%d-%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", mode, mark,
	         wait_s);
	if (t_send_str(fd, req) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Runs the escape program in mode, which then waits wait_s seconds: the
 * connection once its leftover's pids are known (in l), or -1. */
static int escape(const struct tdaemon *d, const char *mode, int wait_s, struct leftover *l)
{
	int fd;

	memset(l, 0, sizeof(*l));
	l->mark = new_mark();
	fd = connect_send(d, mode, l->mark, wait_s);
	if (fd >= 0 && read_pids(l) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The row of the newest job whose uri names mark: state and reason. */
static void row_of(const struct tdaemon *d, int mark, const char *want_state)
{
	char cmd[512], out[512] = "", want[64];
	uint64_t end = t_now_ms() + 5000;

	snprintf(want, sizeof(want), "%s|", want_state);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT state, reason FROM jobs WHERE uri LIKE '%%-%d-%%'\"", d->db,
	         mark);
	do {
		t_run(cmd, out, sizeof(out));
		if (strncmp(out, want, strlen(want)) == 0 && strstr(out, "outlived the job") != NULL)
			break;
		usleep(20000);
	} while (t_now_ms() < end);
	if (strncmp(out, want, strlen(want)) != 0 || strstr(out, "outlived the job: killed") == NULL)
		fprintf(stderr, "\n  row of %d: %s  want %s... outlived the job: killed\n", mark, out, want_state);
	CU_ASSERT(strncmp(out, want, strlen(want)) == 0);
	CU_ASSERT(strstr(out, "process outlived the job: killed") != NULL ||
	          strstr(out, "processes outlived the job: killed") != NULL);
}

/* Normal end, timeout, client gone, for each way of escaping. */
static void run_ends(const struct td_options *opts)
{
	static const char *const extra[] = { "--kill-grace", "1s", "--job-timeout", "3s", NULL };
	struct tdaemon d;

	CU_ASSERT_FATAL(td_start_opts(&d, NULL, extra, opts) == 0);
	for (size_t m = 0; m < 3; m++) {
		struct leftover l;
		struct tresp r;
		int fd;

		/* it answers and exits; what it left is stopped */
		fd = escape(&d, MODES[m], 0, &l);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(t_read_response(fd, &r, 0, DEADLINE_MS) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT(r.body != NULL && strcmp(r.body, "escaped\n") == 0);
		t_resp_free(&r);
		close(fd);
		check_gone(&l, d.pid);
		row_of(&d, l.mark, "succeeded");

		/* it escapes, then runs past --job-timeout */
		fd = escape(&d, MODES[m], 60, &l);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT(t_read_response(fd, &r, 0, DEADLINE_MS) == 0);
		CU_ASSERT_EQUAL(r.status, 504);
		t_resp_free(&r);
		close(fd);
		check_gone(&l, d.pid);
		row_of(&d, l.mark, "timed_out");

		/* it escapes, then its client goes away (--on-disconnect cancel) */
		fd = escape(&d, MODES[m], 60, &l);
		CU_ASSERT_FATAL(fd >= 0);
		close(fd);
		check_gone(&l, d.pid);
		row_of(&d, l.mark, "cancelled");
	}
	CU_ASSERT(td_log_has(&d, "outlived its job: SIGTERM, SIGKILL after 1000 ms"));
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* cgiq stops (SIGTERM, no drain) while the programs that escaped still run. */
static void run_stop(const struct td_options *opts)
{
	static const char *const extra[] = { "--kill-grace", "1s", "--drain-timeout", "0", NULL };
	struct leftover ls[3];
	int fds[3];
	struct tdaemon d;

	CU_ASSERT_FATAL(td_start_opts(&d, NULL, extra, opts) == 0);
	for (size_t m = 0; m < 3; m++) {
		fds[m] = escape(&d, MODES[m], 60, &ls[m]);
		CU_ASSERT_FATAL(fds[m] >= 0);
	}
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	for (size_t m = 0; m < 3; m++) {
		close(fds[m]);
		check_gone(&ls[m], 0);
	}
	td_cleanup(&d);
}

/* Alive: there, and not a zombie (what init has yet to reap is dead). */
static int pid_running(pid_t pid)
{
	char path[64], stat[512];
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(stat, 1, sizeof(stat) - 1, f); /* /proc files say they are empty: read, not stat */
	fclose(f);
	stat[n] = '\0';
	p = strrchr(stat, ')');
	return p != NULL && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static int none_running(void *ud)
{
	const struct leftover *l = ud;
	for (int i = 0; i < l->npids; i++)
		if (pid_running(l->pids[i]))
			return 0;
	return 1;
}

/* cgiq killed with -9 while the program's escapee runs: the escapee goes to
 * init; the next start finds it by the CGIQ_JOB_ID in its environment and
 * kills it. */
static void test_kill9_then_start(void)
{
	static const char *const extra[] = { "--kill-grace", "1s", NULL };
	struct leftover l;
	struct tdaemon d;
	int fd, gone;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	fd = escape(&d, "env", 60, &l);
	CU_ASSERT_FATAL(fd >= 0);
	/* its row names it (written within 25 ms of the start): what a
	 * restart recovers from */
	{
		char id[64];
		CU_ASSERT_FATAL(t_wait_new_job(&d, 0, id, DEADLINE_MS)[0] != '\0');
		CU_ASSERT_FATAL(t_wait_job_state(&d, id, "running", DEADLINE_MS));
	}
	td_kill9(&d);
	close(fd);
	CU_ASSERT(pid_running(l.pids[0]) && pid_running(l.pids[1])); /* survived the kill -9 */
	CU_ASSERT_FATAL(td_restart(&d, extra) == 0);
	gone = t_wait_for(none_running, &l, DEADLINE_MS);
	CU_ASSERT(gone);
	CU_ASSERT(td_log_has(&d, "left by a previous cgiq"));

	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
	leftover_forget(&l, !gone);
}

static void test_ends(void) { run_ends(NULL); }
static void test_stop(void) { run_stop(NULL); }

static const struct td_options nobody = { .user = "nobody" };
static void test_ends_nobody(void) { run_ends(&nobody); }
static void test_stop_nobody(void) { run_stop(&nobody); }

/* --leftovers keep: logged and counted, left running (the test stops it). */
static void test_keep(void)
{
	static const char *const extra[] = { "--leftovers", "keep", NULL };
	struct leftover l;
	struct tdaemon d;
	struct tresp r;
	int fd;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	fd = escape(&d, "setsid", 0, &l);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(t_read_response(fd, &r, 0, DEADLINE_MS) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	close(fd);
	CU_ASSERT(td_wait_log(&d, "outlived its job; left running (--leftovers keep)", DEADLINE_MS));
	CU_ASSERT(pid_exists(l.pids[0]) && pid_exists(l.pids[1]));
	CU_ASSERT_EQUAL(named_alive(l.mark), 2);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
	leftover_forget(&l, 1); /* kept running on purpose */
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("leftovers", NULL, NULL);
	CU_add_test(s, "normal end, timeout, client gone", test_ends);
	CU_add_test(s, "cgiq stops", test_stop);
	CU_add_test(s, "normal end, timeout, client gone (--user nobody)", test_ends_nobody);
	CU_add_test(s, "cgiq stops (--user nobody)", test_stop_nobody);
	CU_add_test(s, "--leftovers keep", test_keep);
	CU_add_test(s, "kill -9 of cgiq, then a start", test_kill9_then_start);
	return t_cunit_run();
}
