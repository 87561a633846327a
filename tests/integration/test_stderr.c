/*
 * A program's stderr is bounded (tests/fixtures/stderr-flood): what reaches
 * the log is capped per job in bytes (--stderr-log-bytes) and lines a second
 * (--stderr-log-rate), the rest is counted in one line at the job's end and
 * in /metrics, the row keeps the tail, and a program past
 * --max-stderr-bytes is killed like one past --max-output-bytes.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/support.h"

/* 20 MiB of 99 characters and a newline: 211,833 lines, then 53 bytes without one. */
#define FLOOD_MIB 20
#define FLOOD_LINES 211833ull

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* How many "job ID stderr: " lines the log holds for id. */
static unsigned long logged_lines(const struct tdaemon *d, const char *id)
{
	char needle[128], *log = t_slurp(d->log);
	unsigned long n = 0;

	snprintf(needle, sizeof(needle), "job %s stderr: ", id);
	for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(log);
	return n;
}

/* The count in the job's "N stderr line(s), M bytes, not logged" line, -1 when absent or twice. */
static long long dropped_note(const struct tdaemon *d, const char *id)
{
	char needle[128], *log = t_slurp(d->log);
	const char *p, *again;
	long long n = -1;

	snprintf(needle, sizeof(needle), "job %s: ", id);
	for (p = log; p && (p = strstr(p, needle)) != NULL; p++) {
		if (strstr(p, " stderr line(s), ") == NULL ||
		    strstr(p, " stderr line(s), ") > strchr(p, '\n'))
			continue;
		n = strtoll(p + strlen(needle), NULL, 10);
		again = strstr(p + 1, needle);
		while (again && (strstr(again, " stderr line(s), ") == NULL ||
		                 strstr(again, " stderr line(s), ") > strchr(again, '\n')))
			again = strstr(again + 1, needle);
		if (again)
			n = -1; /* said twice */
		break;
	}
	free(log);
	return n;
}

static int admin_port;

/* `yes >&2` stand-in: 20 MiB of lines. The log grows by at most the cap. */
static void test_flood_bounded(void)
{
	char admin[48], id[64], v[64];
	const char *extra[] = { "--admin-listen", admin, NULL };
	struct tdaemon d;
	struct tresp r;
	long before, after;
	unsigned long logged;
	long long dropped;
	int64_t since;

	admin_port = t_free_port();
	snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	before = file_size(d.log);
	since = t_wall_us();
	CU_ASSERT_FATAL(t_get(d.port, "/stderr-flood?20", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.body != NULL && strcmp(r.body, "ok\n") == 0);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&d, since, id, 5000)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&d, id, "succeeded", 5000));
	CU_ASSERT(td_wait_log(&d, " stderr line(s), ", 5000));
	after = file_size(d.log);
	/* 64 KiB of lines, each with its prefix (date, pid, job id: ~90 bytes),
	 * and the lines about the job: far below the 20 MiB written */
	if (after - before > 200 * 1024)
		fprintf(stderr, "\n  the log grew by %ld bytes\n", after - before);
	CU_ASSERT(after - before < 200 * 1024);
	logged = logged_lines(&d, id);
	dropped = dropped_note(&d, id);
	CU_ASSERT(logged >= 100 && logged <= 655); /* the burst, at most 64 KiB of lines */
	CU_ASSERT(dropped > 0);
	/* every line is either logged or counted (the last 53 bytes have no newline) */
	if ((unsigned long long)dropped + logged != FLOOD_LINES && (unsigned long long)dropped + logged != FLOOD_LINES + 1)
		fprintf(stderr, "\n  logged %lu + dropped %lld, want %llu\n", logged, dropped, FLOOD_LINES);
	CU_ASSERT((unsigned long long)dropped + logged == FLOOD_LINES ||
	          (unsigned long long)dropped + logged == FLOOD_LINES + 1);
	CU_ASSERT_EQUAL(t_metric(admin_port, "cgiq_stderr_dropped_lines_total "), dropped);
	/* the row keeps the last 4 KiB */
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "length(stderr_tail)", v, sizeof(v)), "4096");
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* The rate: 5 lines a second, no volume cap. */
static void test_rate(void)
{
	static const char *const extra[] = { "--stderr-log-rate", "5", "--stderr-log-bytes", "0", NULL };
	struct tdaemon d;
	struct tresp r;
	char id[64];
	int64_t since;
	unsigned long logged;
	uint64_t t0;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	since = t_wall_us();
	t0 = t_now_ms();
	CU_ASSERT_FATAL(t_get(d.port, "/stderr-flood?1", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 200);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&d, since, id, 5000)[0] != '\0');
	CU_ASSERT(td_wait_log(&d, "(over --stderr-log-bytes 0 or --stderr-log-rate 5/s)", 5000));
	logged = logged_lines(&d, id);
	/* a burst of 5, then 5 a second for as long as it ran */
	CU_ASSERT(logged >= 5 && logged <= 5 + 5 * (t_now_ms() - t0) / 1000 + 1);
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

/* --max-stderr-bytes: a program that writes stderr forever is killed. */
static void test_max_stderr(void)
{
	static const char *const extra[] = { "--max-stderr-bytes", "1M", "--kill-grace", "1s", NULL };
	struct tdaemon d;
	struct tresp r;
	char id[64], v[256];
	int64_t since;

	CU_ASSERT_FATAL(td_start(&d, NULL, extra) == 0);
	since = t_wall_us();
	CU_ASSERT_FATAL(t_get(d.port, "/stderr-flood?forever", &r, 30000) == 0);
	CU_ASSERT_EQUAL(r.status, 502);
	t_resp_free(&r);
	CU_ASSERT_FATAL(t_wait_new_job(&d, since, id, 5000)[0] != '\0');
	CU_ASSERT(t_wait_job_state(&d, id, "failed", 5000));
	CU_ASSERT_STRING_EQUAL(t_job_field(&d, id, "reason", v, sizeof(v)), "stderr limit exceeded");
	CU_ASSERT(td_log_has(&d, "stderr exceeds 1048576 bytes (--max-stderr-bytes), stopping the program"));
	CU_ASSERT_EQUAL(td_stop(&d), 0);
	td_cleanup(&d);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("stderr", NULL, NULL);
	CU_add_test(s, "a 20 MiB flood: the log grows by the cap", test_flood_bounded);
	CU_add_test(s, "--stderr-log-rate", test_rate);
	CU_add_test(s, "--max-stderr-bytes", test_max_stderr);
	return t_cunit_run();
}
