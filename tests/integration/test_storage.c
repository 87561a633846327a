/*
 * Integration: a full spool disk. The spool lives on a small tmpfs mounted
 * by the test (root, as in CI): request bodies (on both fronts), outputs and
 * asynchronous jobs that do not fit get 507 Insufficient Storage with one
 * log line, the daemon goes on serving, and once there is room again jobs
 * are accepted.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

#define SPOOL_BYTES (512 * 1024)

static struct tdaemon D;
static char mnt[256], filler[320], fsock[300];
static int mounted;

static int suite_init(void)
{
	char opts[64];
	static const char *args[] = {"--spool", NULL, "--fastcgi", NULL, NULL};

	snprintf(mnt, sizeof(mnt), "/tmp/cgiq-spool-XXXXXX");
	if (mkdtemp(mnt) == NULL)
		return -1;
	snprintf(opts, sizeof(opts), "size=%d,mode=0700", SPOOL_BYTES);
	if (mount("tmpfs", mnt, "tmpfs", 0, opts) < 0) {
		fprintf(stderr, "cannot mount a tmpfs at %s: %s (this suite needs root)\n", mnt, strerror(errno));
		rmdir(mnt);
		return -1;
	}
	mounted = 1;
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	args[1] = mnt;
	snprintf(fsock, sizeof(fsock), "unix:%s.sock", mnt); /* beside the tmpfs, not in it */
	args[3] = fsock;
	return td_start(&D, NULL, args);
}

static int suite_clean(void)
{
	int r = td_stop(&D) == 0 ? 0 : -1;
	td_cleanup(&D);
	if (mounted && umount(mnt) < 0)
		r = -1;
	rmdir(mnt);
	return r;
}

/* One request on a new connection. */
static int roundtrip(const char *head, size_t body_len, struct tresp *r)
{
	char *body = malloc(body_len + 1);
	int fd = t_connect(D.port), rc = -1;

	memset(body, 'x', body_len);
	if (fd >= 0 && t_send(fd, head, strlen(head)) == 0 && (body_len == 0 || t_send(fd, body, body_len) == 0))
		rc = t_read_response(fd, r, 0, 15000);
	if (fd >= 0)
		close(fd);
	free(body);
	return rc;
}

static void expect_hello(void)
{
	struct tresp r;
	CU_ASSERT_FATAL(roundtrip("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "Hello, world!\n");
	t_resp_free(&r);
}

/* Fills the spool so that only about left bytes stay free (0: none). */
static void fill(size_t left)
{
	static char block[4096];
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct stat st;

	CU_ASSERT_FATAL(fd >= 0);
	for (;;) {
		ssize_t w = write(fd, block, sizeof(block));
		if (w <= 0)
			break;
	}
	if (left > 0) {
		CU_ASSERT_FATAL(fstat(fd, &st) == 0);
		CU_ASSERT_FATAL(ftruncate(fd, st.st_size > (off_t)left ? st.st_size - (off_t)left : 0) == 0);
	}
	close(fd);
}

/* A request body larger than the free spool space: 507, then all is well. */
static void test_body_507(void)
{
	char head[256];
	struct tresp r;

	snprintf(head, sizeof(head),
	         "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", 2 * SPOOL_BYTES);
	CU_ASSERT_FATAL(roundtrip(head, 2 * SPOOL_BYTES, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 507);
	t_resp_free(&r);
	CU_ASSERT(td_wait_log(&D, "cannot spool the request body", 5000));
	expect_hello();
}

/* The log lines that say a request body could not be spooled, with their
 * cause: "cannot spool the request body in DIR: No space left on device; 507". */
static unsigned spool_full_lines(void)
{
	char want[400], *log = t_slurp(D.log), *p;
	unsigned n = 0;

	snprintf(want, sizeof(want), ": cannot spool the request body in %s: No space left on device; 507\n", mnt);
	for (p = log; p && (p = strstr(p, want)) != NULL; p += strlen(want))
		n++;
	free(log);
	return n;
}

/* The same body over FastCGI (libfcgi's cgi-fcgi as the web server): the
 * same status, the same log line as on HTTP. */
static void test_body_507_fastcgi(void)
{
	char cmd[1024], out[4096];
	unsigned before = spool_full_lines();

	CU_ASSERT(before >= 1); /* test_body_507's, on HTTP */
	snprintf(cmd, sizeof(cmd),
	         "head -c %d /dev/zero | env -i REQUEST_METHOD=POST SCRIPT_FILENAME='%s/echo' REQUEST_URI=/echo "
	         "REMOTE_ADDR=127.0.0.1 CONTENT_LENGTH=%d CONTENT_TYPE=text/plain cgi-fcgi -bind -connect '%s'",
	         2 * SPOOL_BYTES, D.cgi_root, 2 * SPOOL_BYTES, fsock + 5);
	CU_ASSERT_EQUAL(t_run(cmd, out, sizeof(out)), 1); /* the END_REQUEST's status: an error */
	CU_ASSERT_STRING_EQUAL(out, "Status: 507 Insufficient Storage\r\nContent-Type: text/plain; charset=utf-8\r\n"
	                            "Content-Length: 25\r\n\r\n507 Insufficient Storage\n");
	CU_ASSERT_EQUAL(spool_full_lines(), before + 1);
	expect_hello();
}

/* A program's output that does not fit: 507 and the job failed with a reason. */
static void test_output_507(void)
{
	struct tresp r;
	char id[64], v[256];
	int64_t t0 = t_wall_us();

	CU_ASSERT_FATAL(
	    roundtrip("GET /big-output?2000000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 507);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&D, t0, id, 5000)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&D, id, "failed", 5000));
	CU_ASSERT(strstr(t_job_field(&D, id, "reason", v, sizeof(v)), "spool") != NULL);
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, id, "http_status", v, sizeof(v)), "507");
	expect_hello();
}

/* An asynchronous job whose body cannot be made durable is refused with 507
 * (never a 202 for a job that could be lost); with room again it is accepted. */
static void test_async_507_then_accepted(void)
{
	static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n"
	                           "Content-Length: 100000\r\nConnection: close\r\n\r\n";
	struct tresp r;
	char loc[256], v[320];

	fill(0);
	CU_ASSERT_FATAL(roundtrip(head, 100000, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 507);
	CU_ASSERT(t_header(&r, "Location", loc, sizeof(loc)) == NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(unlink(filler) == 0);

	CU_ASSERT_FATAL(roundtrip(head, 100000, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	CU_ASSERT(t_wait_job_state(&D, loc + strlen("/_cgiq/jobs/"), "succeeded", 10000));
	snprintf(v, sizeof(v), "%s/result", loc);
	{
		char req[512];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", v);
		CU_ASSERT_FATAL(roundtrip(req, 0, &r) == 0);
	}
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 100000);
	t_resp_free(&r);
}

/* An asynchronous job whose output fills the spool fails (507 kept as its
 * result) and gives the space back at once, not when its result expires
 * (--result-ttl): the next output that needs the spool fits. */
static void test_async_failed_output_frees_spool(void)
{
	struct tresp r;
	char loc[256], v[64];

	CU_ASSERT_FATAL(roundtrip("GET /big-output?2000000 HTTP/1.1\r\nHost: x\r\nPrefer: respond-async\r\n"
	                          "Connection: close\r\n\r\n", 0, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 202);
	CU_ASSERT_FATAL(t_header(&r, "Location", loc, sizeof(loc)) != NULL);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_job_state(&D, loc + strlen("/_cgiq/jobs/"), "failed", 10000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&D, loc + strlen("/_cgiq/jobs/"), "http_status", v, sizeof(v)), "507");
	/* 300 kB is spooled (beyond the 256 KiB kept in memory): it fits only
	 * if the failed job's 512 KiB were given back */
	CU_ASSERT_FATAL(
	    roundtrip("GET /big-output?300000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0, &r) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.body_len, 300000);
	t_resp_free(&r);
}

static int health_status(int admin_port)
{
	struct tresp r;
	int st = t_get(admin_port, "/health", &r, 5000) == 0 ? r.status : -1;

	t_resp_free(&r);
	return st;
}

static int health_ok(void *ud) { return health_status(*(int *)ud) == 200; }

/*
 * The job database's disk full (its own 2 MiB tmpfs): synchronous jobs are
 * still answered (the documented rule), /health says 503 while rows cannot
 * be written, and once there is room again it says 200 by itself, with no
 * request to write a row (the recorder's probe).
 */
static void test_db_disk_full_health(void)
{
	char dbmnt[256], db[320], dbfill[320], admin[48];
	const char *args[] = { "--db", db, "--admin-listen", admin, NULL };
	struct tdaemon e;
	int admin_port = t_free_port(), fd, unhealthy = 0, answered = 0;
	static char block[4096];

	snprintf(dbmnt, sizeof(dbmnt), "/tmp/cgiq-db-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(dbmnt) != NULL);
	CU_ASSERT_FATAL(mount("tmpfs", dbmnt, "tmpfs", 0, "size=2m,mode=0700") == 0);
	snprintf(db, sizeof(db), "%s/cgiq.db", dbmnt);
	snprintf(dbfill, sizeof(dbfill), "%s/filler", dbmnt);
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	CU_ASSERT_FATAL(td_start(&e, NULL, args) == 0);
	CU_ASSERT_EQUAL(health_status(admin_port), 200);

	fd = open(dbfill, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	close(fd);
	for (int i = 0; i < 300 && !unhealthy; i++) {
		struct tresp r;
		if (t_get(e.port, "/hello", &r, 10000) == 0)
			answered += r.status == 200;
		t_resp_free(&r);
		if (i % 10 == 9) {
			usleep(50000); /* rows reach the recorder every 25 ms */
			unhealthy = health_status(admin_port) == 503;
		}
	}
	CU_ASSERT(unhealthy);
	CU_ASSERT(answered >= 10);
	CU_ASSERT(td_log_has(&e, "full"));

	/* room again: /health recovers with no further request */
	CU_ASSERT_EQUAL(unlink(dbfill), 0);
	CU_ASSERT(t_wait_for(health_ok, &admin_port, 15000));
	CU_ASSERT_EQUAL(td_stop(&e), 0);
	td_cleanup(&e);
	umount(dbmnt);
	rmdir(dbmnt);
}

int main(void)
{
	CU_pSuite s;

	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0) {
		fprintf(stderr, "integration_storage mounts a tmpfs: run it as root (as CI does)\n");
		return 1;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		/* A container that may not mount at all: say so, and count it as
		 * a failure only where mounting is expected to work. */
		fprintf(stderr, "integration_storage: no mount namespace (%s): skipped\n", strerror(errno));
		return 77; /* SKIP_RETURN_CODE: ctest reports it skipped, not passed */
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("storage", suite_init, suite_clean);
	CU_add_test(s, "request body beyond the free spool: 507", test_body_507);
	CU_add_test(s, "the same over FastCGI: 507, the same log line", test_body_507_fastcgi);
	CU_add_test(s, "output beyond the free spool: 507, failed", test_output_507);
	CU_add_test(s, "async job on a full spool: 507, then 202", test_async_507_then_accepted);
	CU_add_test(s, "a failed async output frees the spool at once", test_async_failed_output_frees_spool);
	CU_add_test(s, "database disk full: /health 503, then 200 by itself", test_db_disk_full_health);

	return t_cunit_run();
}
