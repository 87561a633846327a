/*
 * Integration tests of the configuration file: the daemon started with
 * --config serves; per-script blocks change one script's job-timeout, 102
 * policy and concurrency (max-running) and nothing else; --check-config; a
 * bad file exits 2 naming FILE:LINE.
 */
#include <CUnit/Basic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

static struct tdaemon D;
static char conf_path[64];

/* The globals say: no 102 at all, 30 s per job. The blocks make exceptions. */
static const char CONF[] =
	"# integration_config\n"
	"processing = never\n"
	"job-timeout = 30s\n"
	"kill-grace = 300ms\n"
	"queue-max = 50\n"
	"\n"
	"script /timeout-* {          # short deadline for these only\n"
	"    job-timeout = 1s\n"
	"}\n"
	"script /limited {\n"
	"    max-running = 2\n"
	"}\n"
	"script /retry-me {\n"
	"    retry-interrupted = yes\n"
	"}\n"
	"script /shared {\n"
	"    coalesce = yes\n"
	"}\n"
	"script /cpu-burn {\n"
	"    rlimit-cpu = 1s\n"
	"}\n"
	"script /chatty {\n"
	"    processing = always\n"
	"    processing-after = 200ms\n"
	"    processing-interval = 300ms\n"
	"}\n";

static int write_file(char *path, size_t size, const char *text)
{
	int fd;

	snprintf(path, size, "/tmp/cgiq-conf-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static const char *const ARGS[] = { "--config", conf_path, "--max-jobs", "8", NULL };

static int suite_init(void)
{
	char cmd[1024];

	if (write_file(conf_path, sizeof(conf_path), CONF) < 0 || td_start(&D, NULL, ARGS) < 0)
		return -1;
	/* The same slow program under the names the blocks match (and one they don't). */
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && cp -p slow timeout-me && cp -p slow limited && cp -p slow chatty && "
	         "cp -p slow plain && cp -p slow retry-me && cp -p slow shared",
	         D.cgi_root);
	return t_run(cmd, NULL, 0) == 0 ? 0 : -1;
}

static int suite_clean(void)
{
	int st = td_stop(&D);
	td_cleanup(&D);
	return st == 0 ? 0 : -1;
}

static int get(const char *path, const char *extra, struct tresp *r)
{
	char req[1024];
	int fd = t_connect(D.port), n;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra ? extra : "");
	if (t_send(fd, req, (size_t)n) < 0 || t_read_response(fd, r, 0, 20000) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void test_serves(void)
{
	struct tresp r;

	CU_ASSERT_EQUAL_FATAL(get("/hello", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.interim_count, 0);
	t_resp_free(&r);
}

/* The block's 1 s deadline applies to /timeout-me only; /plain, the same
 * program, keeps the global 30 s. */
static void test_script_timeout(void)
{
	struct tresp r;
	char id[64];
	uint64_t t0 = t_now_ms();
	int64_t since = t_wall_us();

	CU_ASSERT_EQUAL_FATAL(get("/timeout-me?5", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 504);
	CU_ASSERT(t_now_ms() - t0 < 4000);
	t_resp_free(&r);
	t_wait_new_job(&D, since, id, 5000);
	CU_ASSERT(t_wait_job_state(&D, id, "timed_out", 5000));

	t0 = t_now_ms();
	since = t_wall_us();
	CU_ASSERT_EQUAL_FATAL(get("/plain?2", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 6);
	CU_ASSERT(r.body && memcmp(r.body, "hello\n", 6) == 0);
	CU_ASSERT(t_now_ms() - t0 >= 2000);
	t_resp_free(&r);
	t_wait_new_job(&D, since, id, 5000);
	CU_ASSERT(t_wait_job_state(&D, id, "succeeded", 5000));
}

/* 102s are off globally, on for /chatty. */
static void test_script_processing(void)
{
	struct tresp r;

	CU_ASSERT_EQUAL_FATAL(get("/chatty?1", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.interim_count >= 2);
	for (int i = 0; i < r.interim_count; i++)
		CU_ASSERT_EQUAL(r.interim[i], 102);
	t_resp_free(&r);

	CU_ASSERT_EQUAL_FATAL(get("/plain?1", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.interim_count, 0);
	t_resp_free(&r);
}

/* max-running = 2: a third /limited job waits in the queue while two run,
 * and does not hold up another script's job behind it. */
static void test_max_running(void)
{
	char id[3][64], v[64], w[64], x[64];
	struct tresp r;
	uint64_t t0;

	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(t_submit_async(D.port, "/limited?2", id[i], sizeof(id[i])), 0);
	CU_ASSERT(t_wait_job_state(&D, id[0], "running", 5000));
	CU_ASSERT(t_wait_job_state(&D, id[1], "running", 5000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id[2], "state", v, sizeof(v)), "queued");

	/* Another script runs at once although a job queued before it waits. */
	t0 = t_now_ms();
	CU_ASSERT_EQUAL_FATAL(get("/hello", NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(t_now_ms() - t0 < 1500);
	t_resp_free(&r);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id[2], "state", v, sizeof(v)), "queued");

	/* The third starts when one of the first two ends. */
	CU_ASSERT(t_wait_job_state(&D, id[2], "succeeded", 15000));
	CU_ASSERT(t_wait_job_state(&D, id[0], "succeeded", 5000));
	CU_ASSERT(t_wait_job_state(&D, id[1], "succeeded", 5000));
	t_job_field(&D, id[0], "finished_at", v, sizeof(v));
	t_job_field(&D, id[1], "finished_at", w, sizeof(w));
	t_job_field(&D, id[2], "started_at", x, sizeof(x));
	{
		long long f0 = atoll(v), f1 = atoll(w), s2 = atoll(x);
		CU_ASSERT(s2 >= (f0 < f1 ? f0 : f1));
		if (!(s2 >= (f0 < f1 ? f0 : f1)))
			fprintf(stderr, "\n  finished %lld %lld, third started %lld\n", f0, f1, s2);
	}
}

/* coalesce = yes in a block: three concurrent GETs of /shared share one job
 * (two join it, one row); /plain with the same query does not. */
static void test_script_coalesce(void)
{
	static const char req[] = "GET /shared?2 HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char plain[] = "GET /plain?2 HTTP/1.1\r\nHost: x\r\n\r\n";
	int fds[5];
	char id[64], cmd[1024], out[64];
	int64_t t0 = t_wall_us();

	fds[0] = t_connect(D.port);
	CU_ASSERT_FATAL(fds[0] >= 0 && t_send(fds[0], req, sizeof(req) - 1) == 0);
	CU_ASSERT_FATAL(t_wait_new_job(&D, t0, id, 5000)[0] != '\0');
	CU_ASSERT_FATAL(t_wait_job_state(&D, id, "running", 5000));
	for (int i = 1; i < 5; i++) {
		fds[i] = t_connect(D.port);
		CU_ASSERT_FATAL(fds[i] >= 0);
		const char *q = i < 3 ? req : plain;
		CU_ASSERT_FATAL(t_send(fds[i], q, strlen(q)) == 0);
	}
	for (int i = 0; i < 5; i++) {
		struct tresp r;
		CU_ASSERT_FATAL(t_read_response(fds[i], &r, 0, 20000) == 0);
		CU_ASSERT_EQUAL(r.status, 200);
		CU_ASSERT_STRING_EQUAL(r.body, "hello\n");
		t_resp_free(&r);
		close(fds[i]);
	}
	snprintf(cmd, sizeof(cmd), "grep -c -F 'joins it (--coalesce)' '%s'", D.log);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(atoi(out), 2);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"SELECT count(*) FROM jobs WHERE script LIKE '%%/shared'\"", D.db);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(atoi(out), 1);
}

/* rlimit-cpu in a block: the spinning program is stopped by SIGXCPU after
 * 1 s of CPU, with the reason in its row (no global limit is set). */
static void test_script_rlimit(void)
{
	struct tresp r;
	char id[64], v[256];
	int64_t t0 = t_wall_us();

	CU_ASSERT_FATAL(get("/cpu-burn", NULL, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&D, t0, id, 5000)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&D, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "reason", v, sizeof(v)), "CPU time limit (--rlimit-cpu 1s) exceeded");
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "term_signal", v, sizeof(v)), "24"); /* SIGXCPU */
}

/* What --check-config says about the programs' user without --user, and
 * about processes programs leave behind, here. */
#define MECHANISM                                                                                            \
	"cgiq: programs run as cgiq's own user: they can signal cgiq and open its files\n"                       \
	"cgiq: processes programs leave behind: child subreaper (PR_SET_CHILD_SUBREAPER); cgroup v2 per job: not " \
	"used; --leftovers kill\n"

static void test_check_config(void)
{
	char cmd[1024], out[1024], want[512];

	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --config '%s' --cgi-root '%s' --check-config 2>&1", CGIQ_BIN,
	         conf_path, D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%scgiq: configuration file %s ok\n", MECHANISM, conf_path);
	CU_ASSERT_STRING_EQUAL(out, want);
	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --config '%s' --cgi-root '%s' --test 2>&1", CGIQ_BIN, conf_path,
	         D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, want);
	/* The cgi-root is checked too. */
	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --config '%s' --cgi-root /nonexistent --test 2>&1", CGIQ_BIN,
	         conf_path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --cgi-root: '/nonexistent': no such directory\n");
	/* from a file, with its line */
	{
		char path[64];
		CU_ASSERT_FATAL(write_file(path, sizeof(path), "listen = 127.0.0.1:0\ncgi-root = /nonexistent\n") == 0);
		snprintf(cmd, sizeof(cmd), "'%s' --allow-root --config '%s' --check-config 2>&1", CGIQ_BIN, path);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		snprintf(want, sizeof(want), "%s:2: cgi-root: '/nonexistent': no such directory\n", path);
		CU_ASSERT_STRING_EQUAL(out, want);
		unlink(path);
	}
	/* A file a start could not open, the check names as the start would. */
	snprintf(cmd, sizeof(cmd),
	         "'%s' --allow-root --cgi-root '%s' --log-file /nonexistent/cgiq.log --check-config 2>&1", CGIQ_BIN,
	         D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --log-file /nonexistent/cgiq.log: No such file or directory\n");
	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --cgi-root '%s' --spool /etc/passwd/spool --check-config 2>&1",
	         CGIQ_BIN, D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --spool /etc/passwd/spool: Not a directory\n");
	/* An address a start would refuse, the check refuses (one parser). */
	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --cgi-root '%s' --listen 127.0.0.1:80800 --check-config 2>&1",
	         CGIQ_BIN, D.cgi_root);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: --listen: invalid value '127.0.0.1:80800' (HOST:PORT (numeric, port "
	                            "0-65535), [V6]:PORT, PORT, unix:PATH or fd:N)\n");
}

/* -h is --help, and no line of it is wider than 100 columns. */
static void test_help(void)
{
	static char h[65536], longh[65536];
	char cmd[1024], *line, *save = NULL;

	snprintf(cmd, sizeof(cmd), "'%s' -h 2>&1", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, h, sizeof(h)), 0);
	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, longh, sizeof(longh)), 0);
	CU_ASSERT(strlen(longh) > 1000);
	CU_ASSERT_STRING_EQUAL(h, longh);
	for (line = strtok_r(longh, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		CU_ASSERT(strlen(line) <= 100);
		if (strlen(line) > 100)
			fprintf(stderr, "--help line of %zu columns: %s\n", strlen(line), line);
	}
}

/* The check reports what a start would find, not who runs the check: root
 * checking a file without `user` (a service started as another user) gets
 * a note and exit 0, as does a check of the shipped example as shown. */
static void test_check_config_privileges(void)
{
	char path[64], text[1024], cmd[1024], out[1024], want[1024];

	if (geteuid() != 0) {
		fprintf(stderr, "(not root: the root half of this test cannot run) ");
		CU_FAIL("the test suite runs as root");
		return;
	}
	snprintf(text, sizeof(text), "cgi-root = %s\nlisten = 127.0.0.1:8080\njob-timeout = 5m\n", D.cgi_root);
	CU_ASSERT_FATAL(write_file(path, sizeof(path), text) == 0);
	snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --check-config 2>&1", CGIQ_BIN, path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	snprintf(want, sizeof(want),
	         "cgiq: note: started as root, cgiq would refuse to run CGI programs as root: add user = NAME (or "
	         "--user), or start it as another user (systemd User=)\n%scgiq: configuration file %s ok\n",
	         MECHANISM, path);
	CU_ASSERT_STRING_EQUAL(out, want);
	/* a start as root with it still refuses */
	snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --listen 127.0.0.1:0 2>&1", CGIQ_BIN, path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: would run CGI programs as root; use --user or --allow-root\n");
	unlink(path);

	/* the shipped example, as its comment and the README show it: with a
	 * user, programs run apart from cgiq */
	struct passwd *pw = getpwnam("cgiq-run");
	char ex[64] = "/tmp/cgiq-test-ex-XXXXXX";
	CU_ASSERT_FATAL(pw != NULL); /* made by scripts/setup.sh */
	/* The programs copied where www-data and cgiq-run can reach them, as
	 * under /srv: a checkout may lie in a home directory they cannot enter,
	 * which the check would rightly refuse. */
	CU_ASSERT_FATAL(mkdtemp(ex) != NULL);
	snprintf(cmd, sizeof(cmd), "cp -a '%s/cgi-bin' '%s/' && chmod 755 '%s' '%s/cgi-bin'", CGIQ_EXAMPLES, ex, ex,
	         ex);
	CU_ASSERT_FATAL(t_run(cmd, out, sizeof(out)) == 0);
	snprintf(cmd, sizeof(cmd), "'%s' --config '%s/cgiq.conf' --cgi-root '%s/cgi-bin' --test 2>&1", CGIQ_BIN,
	         CGIQ_EXAMPLES, ex);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	snprintf(want, sizeof(want),
	         "cgiq: programs run as user cgiq-run (uid %u), apart from cgiq's user www-data: they cannot signal "
	         "cgiq nor open its files\n%scgiq: configuration file %s/cgiq.conf ok\n",
	         (unsigned)pw->pw_uid, strchr(MECHANISM, '\n') + 1, CGIQ_EXAMPLES);
	CU_ASSERT_STRING_EQUAL(out, want);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ex);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
}

/* A CGI root cgiq's user cannot enter: refused by the check and the start,
 * naming the user and the directory; programs below it that cgiq's or the
 * programs' user cannot run: a warning each. */
static void test_root_permissions(void)
{
	char base[64] = "/tmp/cgiq-test-perm-XXXXXX", cmd[1536], out[4096], want[1024], path[640];
	struct passwd *run = getpwnam("cgiq-run");
	static const struct {
		const char *name;
		mode_t mode;
	} files[] = {{"ok.sh", 0755}, {"a.sh", 0700}, {"b.sh", 0711}, {"c.php", 0600}, {"d.php", 0644}};

	CU_ASSERT_FATAL(run != NULL); /* made by scripts/setup.sh */
	CU_ASSERT_FATAL(mkdtemp(base) != NULL); /* 0700, root's */
	snprintf(path, sizeof(path), "%s/cgi", base);
	CU_ASSERT_FATAL(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/cgi/priv", base);
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f;
		snprintf(path, sizeof(path), "%s/cgi/%s", base, files[i].name);
		CU_ASSERT_FATAL((f = fopen(path, "w")) != NULL);
		fputs("#!/bin/sh\necho\n", f);
		fclose(f);
		CU_ASSERT_FATAL(chmod(path, files[i].mode) == 0);
	}
	snprintf(want, sizeof(want),
	         "cgiq: --cgi-root %s/cgi: cgiq's user nobody cannot enter %s (drwx------ root:root): every "
	         "request would get 403\n", base, base);
	snprintf(cmd, sizeof(cmd), "'%s' --user nobody --cgi-root '%s/cgi' --check-config 2>&1", CGIQ_BIN, base);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, want);
	snprintf(cmd, sizeof(cmd), "'%s' --user nobody --cgi-root '%s/cgi' --db '%s/j.db' --listen 127.0.0.1:0 2>&1",
	         CGIQ_BIN, base, base);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
	CU_ASSERT_STRING_EQUAL(out, want);

	/* The root can be entered: what is below it is warned about, in the
	 * order readdir gives (so each line is looked for), and the check is ok. */
	CU_ASSERT_FATAL(chmod(base, 0755) == 0);
	snprintf(cmd, sizeof(cmd),
	         "'%s' --user nobody --cgi-root '%s/cgi' --interpreter .php=/bin/cat --check-config 2>&1", CGIQ_BIN,
	         base);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
	{
		/* each: the words before the path below base, the path, the rest */
		static const char *const lines[][3] = {
		    {"cgiq: warning: cgiq's user nobody cannot enter ", "/cgi/priv",
		     " (drwx------ root:root): its programs get 403\n"},
		    {"cgiq: warning: cgiq's user nobody cannot execute ", "/cgi/a.sh",
		     " (-rwx------ root:root): it gets 403\n"},
		    {"cgiq: warning: the programs' user cgiq-run cannot enter ", "/cgi/priv",
		     " (drwx------ root:root): its programs get 403\n"},
		    {"cgiq: warning: the programs' user cgiq-run cannot execute ", "/cgi/a.sh",
		     " (-rwx------ root:root): it would fail to start\n"},
		    {"cgiq: warning: the programs' user cgiq-run cannot read ", "/cgi/b.sh",
		     " (-rwx--x--x root:root): as a script (#!) it cannot run; a compiled program can\n"},
		    /* a file an interpreter runs: read, not executed */
		    {"cgiq: warning: cgiq's user nobody cannot read ", "/cgi/c.php", " (-rw------- root:root): it gets 403\n"},
		    {"cgiq: warning: the programs' user cgiq-run cannot read ", "/cgi/c.php",
		     " (-rw------- root:root): its interpreter could not read it\n"},
		};
		int n = 0;
		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			snprintf(want, sizeof(want), "%s%s%s%s", lines[i][0], base, lines[i][1], lines[i][2]);
			if (strstr(out, want) == NULL)
				fprintf(stderr, "missing: %s", want);
			CU_ASSERT(strstr(out, want) != NULL);
		}
		for (const char *p = out; (p = strstr(p, "warning:")) != NULL; p++)
			n++;
		CU_ASSERT_EQUAL(n, 7);
		CU_ASSERT(strstr(out, "configuration ok\n") != NULL);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 0);
}

/* A database that is not one: the start says so, with SQLite's cause, on
 * one line. */
static void test_corrupt_db(void)
{
	char path[64], cmd[1024], out[1024], want[512];
	char text[4097];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	CU_ASSERT_FATAL(write_file(path, sizeof(path), text) == 0);
	snprintf(cmd, sizeof(cmd), "'%s' --allow-root --cgi-root '%s' --db '%s' --listen 127.0.0.1:0 2>&1", CGIQ_BIN,
	         D.cgi_root, path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "cgiq: cannot open the job database %s: setting WAL mode: file is not a database\n",
	         path);
	CU_ASSERT_STRING_EQUAL(out, want);
	snprintf(cmd, sizeof(cmd), "'%s' jobs --db '%s' 2>&1", CGIQ_BIN, path);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "cgiq: cannot read job database %s: setting WAL mode: file is not a database\n",
	         path);
	CU_ASSERT_STRING_EQUAL(out, want);
	unlink(path);
	snprintf(cmd, sizeof(cmd), "%s.lock", path);
	unlink(cmd);
	/* cgiq jobs run where there is no ./var: the default names nothing, and
	 * it says which option names the database */
	snprintf(cmd, sizeof(cmd), "cd / && '%s' jobs 2>&1", CGIQ_BIN);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1);
	CU_ASSERT_STRING_EQUAL(out, "cgiq: cannot open ./var/cgiq.db: No such file or directory (--db FILE: the "
	                            "database the daemon was started with)\n");
}

/* A bad file: exit 2, one message naming FILE:LINE, nothing started. */
static void test_bad_file(void)
{
	static const struct {
		const char *text;
		const char *message; /* after "FILE:" */
	} cases[] = {
		{ "job-timeout = 5m\n# two\nmax-jobs = lots\n",
		  "3: max-jobs: invalid value 'lots' (a whole number)\n" },
		{ "job-timeout = 5m\nlisten-on = 127.0.0.1:1\n",
		  "2: unknown key 'listen-on' (keys are the long options of cgiq --help)\n" },
		{ "script /a {\n  job-timeout = 1s\n", "1: script block '/a' is not closed (a line with `}` is missing)\n" },
		{ "db = a\ndb = b\n", "2: 'db' given again (first at line 1)\n" },
		/* an owner is looked up as the start looks it up */
		{ "fastcgi-owner = no-such-user-here\n",
		  "1: fastcgi-owner: invalid value 'no-such-user-here' (no such user)\n" },
		/* an address is read as a start reads it, so a check refuses it too */
		{ "# the FastCGI socket\nfastcgi = 127.0.0.1:80800\n",
		  "2: fastcgi: invalid value '127.0.0.1:80800' (HOST:PORT (numeric, port 0-65535), [V6]:PORT, PORT, "
		  "unix:PATH or fd:N)\n" },
	};
	char path[64], cmd[1024], out[1024], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(write_file(path, sizeof(path), cases[i].text), 0);
		snprintf(cmd, sizeof(cmd), "'%s' --config '%s' --cgi-root '%s' --listen 127.0.0.1:0 2>&1",
		         CGIQ_BIN, path, D.cgi_root);
		CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 2);
		snprintf(want, sizeof(want), "%s:%s", path, cases[i].message);
		CU_ASSERT_STRING_EQUAL(out, want);
		unlink(path);
	}
}

/* retry-interrupted: after kill -9, the /retry-me job that was running runs
 * again and completes; the /plain one that was running ends interrupted. */
static void test_retry_interrupted(void)
{
	char a[64], b[64], v[64];
	struct tresp r;
	char path[160];

	CU_ASSERT_EQUAL_FATAL(t_submit_async(D.port, "/retry-me?2", a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(t_submit_async(D.port, "/plain?2", b, sizeof(b)), 0);
	CU_ASSERT_FATAL(t_wait_job_state(&D, a, "running", 5000));
	CU_ASSERT_FATAL(t_wait_job_state(&D, b, "running", 5000));
	td_kill9(&D);
	CU_ASSERT_FATAL(td_restart(&D, ARGS) == 0);

	CU_ASSERT(t_wait_job_state(&D, b, "interrupted", 5000));
	CU_ASSERT(t_wait_job_state(&D, a, "succeeded", 15000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, a, "http_status", v, sizeof(v)), "200");
	CU_ASSERT(td_log_has(&D, "queued again (retry-interrupted)"));
	snprintf(path, sizeof(path), "/_cgiq/jobs/%s/result", a);
	CU_ASSERT_EQUAL_FATAL(get(path, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 6);
	CU_ASSERT(r.body && memcmp(r.body, "hello\n", 6) == 0);
	t_resp_free(&r);
}

/* A job that is running at every crash is run again at most 3 times, then
 * it ends interrupted: a job that takes cgiq down must not do so forever. */
static void test_retry_cap(void)
{
	char a[64], v[64];

	CU_ASSERT_EQUAL_FATAL(t_submit_async(D.port, "/retry-me?30", a, sizeof(a)), 0);
	for (int run = 0; run < 4; run++) {
		CU_ASSERT_FATAL(t_wait_job_state(&D, a, "running", 5000));
		td_kill9(&D);
		CU_ASSERT_FATAL(td_restart(&D, ARGS) == 0);
	}
	CU_ASSERT(t_wait_job_state(&D, a, "interrupted", 5000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, a, "attempts", v, sizeof(v)), "3");
	CU_ASSERT(td_wait_log(&D, "was run again 3 times already; it ends interrupted", 5000));
}

/* ---- the FastCGI front takes the same per-script settings (behind nginx) ---- */

static struct tdaemon F;
static struct tserver NG;
static char fdir[64];
static int ng_port;

static int fcgi_init(void)
{
	char sock[128], addr[160], body[2048], cmd[1024];
	const char *args[] = { "--config", conf_path, "--fastcgi", addr, "--fastcgi-threads", "4", NULL };

	snprintf(fdir, sizeof(fdir), "/tmp/cgiq-conf-fcgi-XXXXXX");
	if (mkdtemp(fdir) == NULL)
		return -1;
	snprintf(sock, sizeof(sock), "%s/cgiq.sock", fdir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	if (td_start(&F, NULL, args) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "cd '%s' && cp -p slow timeout-me && cp -p slow plain", F.cgi_root);
	if (t_run(cmd, NULL, 0) != 0)
		return -1;
	for (uint64_t end = t_now_ms() + 10000; !td_log_has(&F, "fastcgi on ");) {
		if (t_now_ms() >= end)
			return -1;
		usleep(20000);
	}
	ng_port = t_free_port();
	snprintf(body, sizeof(body),
	         "\tserver {\n"
	         "\t\tlisten 127.0.0.1:%d;\n"
	         "\t\troot %s;\n"
	         "\t\tlocation / {\n"
	         "\t\t\tinclude /etc/nginx/fastcgi_params;\n"
	         "\t\t\tfastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
	         "\t\t\tfastcgi_pass unix:%s;\n"
	         "\t\t\tfastcgi_read_timeout 1m;\n"
	         "\t\t}\n"
	         "\t}\n",
	         ng_port, F.cgi_root, sock);
	return tn_start(&NG, fdir, ng_port, body);
}

static int fcgi_clean(void)
{
	char cmd[128];
	int st;

	ts_stop(&NG);
	st = td_stop(&F);
	td_cleanup(&F);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fdir);
	t_run(cmd, NULL, 0);
	return st == 0 ? 0 : -1;
}

static int ng_get(const char *path, struct tresp *r)
{
	char req[512];
	int fd = t_connect(ng_port), n;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	if (t_send(fd, req, (size_t)n) < 0 || t_read_response(fd, r, 0, 20000) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void test_fcgi_script_timeout(void)
{
	struct tresp r;
	char id[64];
	uint64_t t0 = t_now_ms();
	int64_t since = t_wall_us();

	CU_ASSERT_EQUAL_FATAL(ng_get("/timeout-me?5", &r), 0);
	CU_ASSERT_EQUAL(r.status, 504);
	CU_ASSERT(t_now_ms() - t0 < 4000);
	t_resp_free(&r);
	t_wait_new_job(&F, since, id, 5000);
	CU_ASSERT(t_wait_job_state(&F, id, "timed_out", 5000));

	t0 = t_now_ms();
	CU_ASSERT_EQUAL_FATAL(ng_get("/plain?2", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body_len == 6 && r.body && memcmp(r.body, "hello\n", 6) == 0);
	CU_ASSERT(t_now_ms() - t0 >= 2000);
	t_resp_free(&r);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("config", suite_init, suite_clean);
	if (s == NULL ||
	    !CU_add_test(s, "daemon with --config serves", test_serves) ||
	    !CU_add_test(s, "per-script job-timeout", test_script_timeout) ||
	    !CU_add_test(s, "per-script 102 policy", test_script_processing) ||
	    !CU_add_test(s, "per-script max-running", test_max_running) ||
	    !CU_add_test(s, "per-script coalesce = yes", test_script_coalesce) ||
	    !CU_add_test(s, "per-script rlimit-cpu", test_script_rlimit) ||
	    !CU_add_test(s, "--check-config / --test", test_check_config) ||
	    !CU_add_test(s, "-h and --help, 100 columns", test_help) ||
	    !CU_add_test(s, "--check-config as root: a note, not a refusal", test_check_config_privileges) ||
	    !CU_add_test(s, "bad file: exit 2 with FILE:LINE", test_bad_file) ||
	    !CU_add_test(s, "a CGI root the users cannot enter", test_root_permissions) ||
	    !CU_add_test(s, "a corrupt database: its cause on one line", test_corrupt_db) ||
	    !CU_add_test(s, "per-script retry-interrupted after kill -9", test_retry_interrupted) ||
	    !CU_add_test(s, "retry-interrupted: at most 3 runs again", test_retry_cap)) {
		CU_cleanup_registry();
		return 1;
	}
	s = CU_add_suite("config, FastCGI front", fcgi_init, fcgi_clean);
	if (s == NULL || !CU_add_test(s, "per-script job-timeout over FastCGI", test_fcgi_script_timeout)) {
		CU_cleanup_registry();
		return 1;
	}
	int failed = t_cunit_run();
	unlink(conf_path); /* both suites' daemons read it */
	return failed;
}
