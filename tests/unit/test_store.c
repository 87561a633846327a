/*
 * store: the SQLite job record, against ":memory:" and a file in a temp dir.
 * The tests reach the file format only through store.h and, for the schema
 * version, the documented database header (sqlite.org/fileformat.html 1.3).
 */
#include <CUnit/Basic.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "support/pg.h"
#include "util/util.h"

static char tmp_dir[64];
static char db_path[128];

/* Removes the database and its WAL companions. */
static void remove_db(void)
{
	char p[160];

	unlink(db_path);
	snprintf(p, sizeof(p), "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db_path);
	unlink(p);
}

static int suite_init(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/cgiq-test-store-XXXXXX");
	if (mkdtemp(tmp_dir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/jobs.db", tmp_dir);
	return 0;
}

static int suite_clean(void)
{
	remove_db();
	return rmdir(tmp_dir);
}

/* PRAGMA user_version is the big-endian 32-bit integer at offset 60 of the
 * database header. */
static long read_user_version(const char *path)
{
	unsigned char b[4];
	int fd = open(path, O_RDONLY);
	long v = -1;

	if (fd < 0)
		return -1;
	if (pread(fd, b, 4, 60) == 4)
		v = ((long)b[0] << 24) | ((long)b[1] << 16) | ((long)b[2] << 8) | b[3];
	close(fd);
	return v;
}

static int write_user_version(const char *path, unsigned v)
{
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	int fd = open(path, O_WRONLY);
	int r = -1;

	if (fd < 0)
		return -1;
	if (pwrite(fd, b, 4, 60) == 4)
		r = 0;
	close(fd);
	return r;
}

/* A queued job as the engine would insert it; id from n so tests can predict it. */
static void make_job(struct store_job *j, unsigned n, int64_t created_at_us)
{
	store_job_init(j);
	snprintf(j->id, sizeof(j->id), "%032x", n);
	j->script = "/srv/cgi-bin/report.sh";
	j->method = "POST";
	j->uri = "/cgi-bin/report.sh?x=1";
	j->peer = "127.0.0.1:53211";
	j->created_at_us = created_at_us;
	j->bytes_in = 17;
}

/* The second suite's PostgreSQL server; on_pg: the shared tests run on it. */
static struct tpg PG;
static int on_pg;

/* An empty store: SQLite in memory, or the PostgreSQL table emptied. */
static struct store *open_memory(void)
{
	struct store *s = NULL;
	char out[256];

	if (on_pg) {
		CU_ASSERT_EQUAL_FATAL(store_open(PG.url, &s), 0);
		CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "TRUNCATE jobs", out, sizeof(out)), 0);
	} else {
		CU_ASSERT_EQUAL_FATAL(store_open(":memory:", &s), 0);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static void insert(struct store *s, unsigned n, int64_t created_at_us)
{
	struct store_job j;
	make_job(&j, n, created_at_us);
	CU_ASSERT_EQUAL(store_job_insert(s, &j), 0);
}

/* ---- state names ---- */

static void test_state_names(void)
{
	static const char *const names[STORE_STATE_COUNT] = {
		"queued", "running", "succeeded", "failed", "timed_out", "cancelled", "interrupted",
	};
	enum store_state st;

	for (int i = 0; i < STORE_STATE_COUNT; i++) {
		CU_ASSERT_STRING_EQUAL(store_state_name((enum store_state)i), names[i]);
		st = STORE_STATE_COUNT;
		CU_ASSERT_EQUAL(store_state_parse(names[i], &st), 0);
		CU_ASSERT_EQUAL(st, i);
	}
	CU_ASSERT_EQUAL(store_state_parse("bogus", &st), -EINVAL);
	CU_ASSERT_EQUAL(store_state_parse("", &st), -EINVAL);
	CU_ASSERT_EQUAL(store_state_parse("Queued", &st), -EINVAL);
	CU_ASSERT_EQUAL(store_state_parse("queued ", &st), -EINVAL);
	CU_ASSERT_EQUAL(store_state_parse(NULL, &st), -EINVAL);
}

static void test_job_init(void)
{
	struct store_job j;

	memset(&j, 0x5a, sizeof(j));
	store_job_init(&j);
	CU_ASSERT_STRING_EQUAL(j.id, "");
	CU_ASSERT_PTR_NULL(j.script);
	CU_ASSERT_PTR_NULL(j.stderr_tail);
	CU_ASSERT_PTR_NULL(j.reason);
	CU_ASSERT_EQUAL(j.created_at_us, 0);
	CU_ASSERT_EQUAL(j.started_at_us, 0);
	CU_ASSERT_EQUAL(j.finished_at_us, 0);
	CU_ASSERT_EQUAL(j.pid, -1);
	CU_ASSERT_EQUAL(j.exit_code, -1);
	CU_ASSERT_EQUAL(j.term_signal, -1);
	CU_ASSERT_EQUAL(j.http_status, -1);
	CU_ASSERT_EQUAL(j.bytes_in, -1);
	CU_ASSERT_EQUAL(j.bytes_out, -1);
	CU_ASSERT_EQUAL(j.processing_sent, -1);
	store_job_clear(&j);
	store_job_clear(&j);
}

/* ---- open, schema ---- */

/* An in-memory database takes the schema and writes; closing NULL or
 * twice-NULL is fine. */
static void test_open_memory(void)
{
	struct store *s = open_memory();
	struct store_job j;

	CU_ASSERT_EQUAL(store_probe_write(s), 0);
	insert(s, 1, 1000);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &j), 0);
	CU_ASSERT_STRING_EQUAL(j.script, "/srv/cgi-bin/report.sh");
	CU_ASSERT_EQUAL(j.created_at_us, 1000);
	store_job_clear(&j);
	store_close(s);
	store_close(NULL);
}

static void test_open_file_and_reopen(void)
{
	struct store *s = NULL;
	struct store_job j;

	remove_db();
	CU_ASSERT_EQUAL_FATAL(store_open(db_path, &s), 0);
	CU_ASSERT_EQUAL(access(db_path, F_OK), 0);
	insert(s, 1, 1000);
	store_close(s);
	CU_ASSERT_EQUAL(read_user_version(db_path), STORE_SCHEMA_VERSION);

	/* The migration steps are plain CREATE statements: repeating one
	 * would fail, so a second open succeeding means none ran. */
	s = NULL;
	CU_ASSERT_EQUAL_FATAL(store_open(db_path, &s), 0);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &j), 0);
	CU_ASSERT_STRING_EQUAL(j.script, "/srv/cgi-bin/report.sh");
	store_job_clear(&j);
	store_close(s);
	CU_ASSERT_EQUAL(read_user_version(db_path), STORE_SCHEMA_VERSION);
	remove_db();
}

static void test_newer_schema_refused(void)
{
	struct store *s = NULL;

	remove_db();
	CU_ASSERT_EQUAL_FATAL(store_open(db_path, &s), 0);
	store_close(s);
	CU_ASSERT_EQUAL_FATAL(write_user_version(db_path, 99), 0);
	CU_ASSERT_EQUAL(read_user_version(db_path), 99);

	s = NULL;
	CU_ASSERT_EQUAL(store_open(db_path, &s), -EPROTO);
	CU_ASSERT_PTR_NULL(s);
	/* Refusing must not have touched the file. */
	CU_ASSERT_EQUAL(read_user_version(db_path), 99);
	remove_db();
}

static void test_not_a_database(void)
{
	struct store *s = NULL;
	int fd;

	remove_db();
	fd = open(db_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "this is not sqlite, just some text padding it out\n", 50), 50);
	close(fd);
	CU_ASSERT_EQUAL(store_open(db_path, &s), -EIO);
	CU_ASSERT_PTR_NULL(s);
	remove_db();
}

/* ---- rows ---- */

static void test_insert_get_round_trip(void)
{
	struct store *s = open_memory();
	struct store_job j, got, fin;
	const char *id = "0123456789abcdef0123456789abcdef";

	store_job_init(&j);
	snprintf(j.id, sizeof(j.id), "%s", id);
	j.script = "/srv/cgi-bin/a b.sh";
	j.method = "PUT";
	j.uri = "/x?q=\"1\"";
	j.peer = "[::1]:4000";
	j.created_at_us = 1764000000123456;
	j.bytes_in = 4096;
	CU_ASSERT_EQUAL_FATAL(store_job_insert(s, &j), 0);

	/* Fresh row: only the insert fields are known. */
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, id, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.id, id);
	CU_ASSERT_EQUAL(got.state, STORE_QUEUED);
	CU_ASSERT_STRING_EQUAL(got.script, "/srv/cgi-bin/a b.sh");
	CU_ASSERT_STRING_EQUAL(got.method, "PUT");
	CU_ASSERT_STRING_EQUAL(got.uri, "/x?q=\"1\"");
	CU_ASSERT_STRING_EQUAL(got.peer, "[::1]:4000");
	CU_ASSERT_EQUAL(got.created_at_us, 1764000000123456);
	CU_ASSERT_EQUAL(got.started_at_us, 0);
	CU_ASSERT_EQUAL(got.finished_at_us, 0);
	CU_ASSERT_EQUAL(got.pid, -1);
	CU_ASSERT_EQUAL(got.exit_code, -1);
	CU_ASSERT_EQUAL(got.term_signal, -1);
	CU_ASSERT_EQUAL(got.http_status, -1);
	CU_ASSERT_EQUAL(got.bytes_in, 4096);
	CU_ASSERT_EQUAL(got.bytes_out, -1);
	CU_ASSERT_EQUAL(got.processing_sent, -1);
	CU_ASSERT_PTR_NULL(got.stderr_tail);
	CU_ASSERT_PTR_NULL(got.reason);
	store_job_clear(&got);

	CU_ASSERT_EQUAL(store_job_started(s, id, 31337, 1764000000223456), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, id, &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_RUNNING);
	CU_ASSERT_EQUAL(got.pid, 31337);
	CU_ASSERT_EQUAL(got.started_at_us, 1764000000223456);
	CU_ASSERT_EQUAL(got.finished_at_us, 0);
	store_job_clear(&got);

	store_job_init(&fin);
	snprintf(fin.id, sizeof(fin.id), "%s", id);
	fin.state = STORE_FAILED;
	fin.finished_at_us = 1764000001223456;
	fin.exit_code = 3;
	fin.term_signal = -1;
	fin.http_status = 502;
	fin.bytes_out = 123456789012;
	fin.processing_sent = 2;
	/* Not UTF-8, a tab, an escape sequence: stored byte for byte. */
	fin.stderr_tail = "line 1\n\xff\xfe\t\x1b[31mred\nlast";
	fin.reason = "exit status 3";
	CU_ASSERT_EQUAL(store_job_finished(s, &fin), 0);

	CU_ASSERT_EQUAL_FATAL(store_job_get(s, id, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.id, id);
	CU_ASSERT_EQUAL(got.state, STORE_FAILED);
	CU_ASSERT_STRING_EQUAL(got.script, "/srv/cgi-bin/a b.sh");
	CU_ASSERT_STRING_EQUAL(got.method, "PUT");
	CU_ASSERT_STRING_EQUAL(got.uri, "/x?q=\"1\"");
	CU_ASSERT_STRING_EQUAL(got.peer, "[::1]:4000");
	CU_ASSERT_EQUAL(got.created_at_us, 1764000000123456);
	CU_ASSERT_EQUAL(got.started_at_us, 1764000000223456);
	CU_ASSERT_EQUAL(got.finished_at_us, 1764000001223456);
	CU_ASSERT_EQUAL(got.pid, 31337);
	CU_ASSERT_EQUAL(got.exit_code, 3);
	CU_ASSERT_EQUAL(got.term_signal, -1);
	CU_ASSERT_EQUAL(got.http_status, 502);
	CU_ASSERT_EQUAL(got.bytes_in, 4096);
	CU_ASSERT_EQUAL(got.bytes_out, 123456789012);
	CU_ASSERT_EQUAL(got.processing_sent, 2);
	CU_ASSERT_STRING_EQUAL(got.stderr_tail, "line 1\n\xff\xfe\t\x1b[31mred\nlast");
	CU_ASSERT_STRING_EQUAL(got.reason, "exit status 3");
	store_job_clear(&got);
	CU_ASSERT_PTR_NULL(got.script);

	/* A signal death: exit code unknown, signal known. */
	fin.state = STORE_TIMED_OUT;
	fin.exit_code = -1;
	fin.term_signal = 9;
	fin.http_status = 504;
	fin.processing_sent = 0;
	fin.stderr_tail = NULL;
	fin.reason = NULL;
	CU_ASSERT_EQUAL(store_job_finished(s, &fin), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, id, &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_TIMED_OUT);
	CU_ASSERT_EQUAL(got.exit_code, -1);
	CU_ASSERT_EQUAL(got.term_signal, 9);
	CU_ASSERT_EQUAL(got.http_status, 504);
	CU_ASSERT_EQUAL(got.processing_sent, 0);
	CU_ASSERT_PTR_NULL(got.stderr_tail);
	CU_ASSERT_PTR_NULL(got.reason);
	store_job_clear(&got);
	store_close(s);
}

/* A short job ends before its row is written: one INSERT carries it all. */
static void test_insert_finished(void)
{
	struct store *s = open_memory();
	struct store_job j, got;
	const char *id = "fedcba9876543210fedcba9876543210";

	store_job_init(&j);
	snprintf(j.id, sizeof(j.id), "%s", id);
	j.state = STORE_SUCCEEDED;
	j.script = "/srv/cgi-bin/hello";
	j.method = "GET";
	j.uri = "/hello";
	j.peer = "127.0.0.1:4000";
	j.created_at_us = 1764000000000100;
	j.started_at_us = 1764000000000200;
	j.finished_at_us = 1764000000000900;
	j.pid = 4242;
	j.exit_code = 0;
	j.http_status = 200;
	j.bytes_in = 0;
	j.bytes_out = 14;
	j.processing_sent = 0;
	j.stderr_tail = "warn\n\xff";
	j.reason = "a reason";
	j.result_path = "/spool/r1";
	j.result_head = "Content-Type: text/plain\r\n";
	j.expires_at_us = 1764086400000900;
	CU_ASSERT_EQUAL_FATAL(store_job_insert(s, &j), 0);

	CU_ASSERT_EQUAL_FATAL(store_job_get(s, id, &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_SUCCEEDED);
	CU_ASSERT_STRING_EQUAL(got.script, "/srv/cgi-bin/hello");
	CU_ASSERT_EQUAL(got.created_at_us, 1764000000000100);
	CU_ASSERT_EQUAL(got.started_at_us, 1764000000000200);
	CU_ASSERT_EQUAL(got.finished_at_us, 1764000000000900);
	CU_ASSERT_EQUAL(got.pid, 4242);
	CU_ASSERT_EQUAL(got.exit_code, 0);
	CU_ASSERT_EQUAL(got.term_signal, -1);
	CU_ASSERT_EQUAL(got.http_status, 200);
	CU_ASSERT_EQUAL(got.bytes_in, 0);
	CU_ASSERT_EQUAL(got.bytes_out, 14);
	CU_ASSERT_EQUAL(got.processing_sent, 0);
	CU_ASSERT_STRING_EQUAL(got.stderr_tail, "warn\n\xff");
	CU_ASSERT_STRING_EQUAL(got.reason, "a reason");
	CU_ASSERT_STRING_EQUAL(got.result_path, "/spool/r1");
	CU_ASSERT_STRING_EQUAL(got.result_head, "Content-Type: text/plain\r\n");
	CU_ASSERT_EQUAL(got.expires_at_us, 1764086400000900);
	store_job_clear(&got);
	store_close(s);
}

static void test_null_strings(void)
{
	struct store *s = open_memory();
	struct store_job j, got;

	store_job_init(&j);
	snprintf(j.id, sizeof(j.id), "%032x", 5u);
	CU_ASSERT_EQUAL_FATAL(store_job_insert(s, &j), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_PTR_NULL(got.script);
	CU_ASSERT_PTR_NULL(got.method);
	CU_ASSERT_PTR_NULL(got.uri);
	CU_ASSERT_PTR_NULL(got.peer);
	CU_ASSERT_EQUAL(got.created_at_us, 0);
	CU_ASSERT_EQUAL(got.bytes_in, -1);
	store_job_clear(&got);

	/* An empty stderr tail is not the same as none. */
	j.state = STORE_SUCCEEDED;
	j.stderr_tail = "";
	j.reason = "";
	CU_ASSERT_EQUAL(store_job_finished(s, &j), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_PTR_NOT_NULL(got.stderr_tail);
	CU_ASSERT_STRING_EQUAL(got.stderr_tail, "");
	CU_ASSERT_PTR_NOT_NULL(got.reason);
	CU_ASSERT_STRING_EQUAL(got.reason, "");
	store_job_clear(&got);
	store_close(s);
}

static void test_duplicate_and_unknown(void)
{
	struct store *s = open_memory();
	struct store_job j, got;
	const char *unknown = "ffffffffffffffffffffffffffffffff";

	make_job(&j, 7, 100);
	CU_ASSERT_EQUAL(store_job_insert(s, &j), 0);
	j.method = "GET";
	CU_ASSERT_EQUAL(store_job_insert(s, &j), -EEXIST);
	/* The first row is intact. */
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.method, "POST");
	store_job_clear(&got);

	CU_ASSERT_EQUAL(store_job_get(s, unknown, &got), -ENOENT);
	CU_ASSERT_EQUAL(store_job_get(s, "not an id", &got), -ENOENT);
	CU_ASSERT_EQUAL(store_job_started(s, unknown, 1, 1), -ENOENT);
	make_job(&j, 0xffffffff, 1);
	snprintf(j.id, sizeof(j.id), "%s", unknown);
	j.state = STORE_SUCCEEDED;
	CU_ASSERT_EQUAL(store_job_finished(s, &j), -ENOENT);
	store_close(s);
}


/* Bytes that are not UTF-8 (a raw request-target, a program's progress
 * line): on SQLite kept as they are; on PostgreSQL, whose text is UTF-8,
 * each such byte is U+FFFD, and the batch with that row is written whole. */
static void test_not_utf8(void)
{
	struct store *s = open_memory();
	struct store_job j, got;

	CU_ASSERT_EQUAL(store_begin(s), 0);
	make_job(&j, 1, 100);
	j.uri = "/r?name=\xff\xfe-\xc3\xa9";
	CU_ASSERT_EQUAL(store_job_insert(s, &j), 0);
	CU_ASSERT_EQUAL(store_job_progress(s, j.id, 1, 2, "half \xe2\x28 done"), 0);
	insert(s, 2, 200);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	if (on_pg) {
		CU_ASSERT_STRING_EQUAL(got.uri, "/r?name=\xef\xbf\xbd\xef\xbf\xbd-\xc3\xa9");
		CU_ASSERT_STRING_EQUAL(got.progress_text, "half \xef\xbf\xbd( done");
	} else {
		CU_ASSERT_STRING_EQUAL(got.uri, j.uri);
		CU_ASSERT_STRING_EQUAL(got.progress_text, "half \xe2\x28 done");
	}
	store_job_clear(&got);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000002", &got), 0);
	store_job_clear(&got);
	store_close(s);
}

/* The node a store is written by: in the row it inserts, then in the row
 * of a job it starts; none when unset. */
static void test_node(void)
{
	struct store *s = open_memory();
	struct store_job j, got;

	insert(s, 1, 100);
	store_set_node(s, "web1");
	insert(s, 2, 200);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, "00000000000000000000000000000001", &got), 0);
	CU_ASSERT_PTR_NULL(got.node);
	store_job_clear(&got);
	make_job(&j, 2, 200);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.node, "web1");
	store_job_clear(&got);
	store_set_node(s, "web-2.internal");
	CU_ASSERT_EQUAL(store_job_started(s, j.id, 42, 300), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_STRING_EQUAL(got.node, "web-2.internal");
	store_job_clear(&got);
	store_close(s);
}

/* A refused job's row is deleted while it is queued, never once it runs. */
static void test_forget(void)
{
	struct store *s = open_memory();
	struct store_job j, got;

	insert(s, 1, 100);
	insert(s, 2, 200);
	make_job(&j, 2, 200);
	CU_ASSERT_EQUAL(store_job_started(s, j.id, 42, 300), 0);
	CU_ASSERT_EQUAL(store_job_forget(s, "00000000000000000000000000000001"), 0);
	CU_ASSERT_EQUAL(store_job_forget(s, j.id), 0);
	CU_ASSERT_EQUAL(store_job_forget(s, "ffffffffffffffffffffffffffffffff"), 0);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &got), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_RUNNING);
	store_job_clear(&got);
	store_close(s);
}

static void test_started_only_from_queued(void)
{
	struct store *s = open_memory();
	struct store_job j, got;

	make_job(&j, 8, 100);
	CU_ASSERT_EQUAL(store_job_insert(s, &j), 0);
	j.state = STORE_CANCELLED;
	j.finished_at_us = 200;
	j.reason = "client went away";
	CU_ASSERT_EQUAL(store_job_finished(s, &j), 0);
	/* A late started event must not resurrect an ended job. */
	CU_ASSERT_EQUAL(store_job_started(s, j.id, 99, 150), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, j.id, &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_CANCELLED);
	CU_ASSERT_EQUAL(got.pid, -1);
	CU_ASSERT_EQUAL(got.started_at_us, 0);
	store_job_clear(&got);
	store_close(s);
}

static void test_transactions(void)
{
	struct store *s = NULL;
	struct store_job got;

	remove_db();
	CU_ASSERT_EQUAL_FATAL(store_open(db_path, &s), 0);
	CU_ASSERT_EQUAL(store_begin(s), 0);
	insert(s, 1, 1);
	insert(s, 2, 2);
	CU_ASSERT_EQUAL(store_commit(s), 0);

	CU_ASSERT_EQUAL(store_begin(s), 0);
	insert(s, 3, 3);
	CU_ASSERT_EQUAL(store_rollback(s), 0);
	CU_ASSERT_EQUAL(store_rollback(s), 0);
	/* Nested begin is an error, and does not break the open batch. */
	CU_ASSERT_EQUAL(store_begin(s), 0);
	CU_ASSERT_EQUAL(store_begin(s), -EIO);
	insert(s, 4, 4);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	CU_ASSERT_EQUAL(store_commit(s), -EIO);
	store_close(s);

	s = NULL;
	CU_ASSERT_EQUAL_FATAL(store_open(db_path, &s), 0);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &got), 0);
	store_job_clear(&got);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000002", &got), 0);
	store_job_clear(&got);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000003", &got), -ENOENT);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000004", &got), 0);
	store_job_clear(&got);
	store_close(s);
	remove_db();
}

/* ---- listing ---- */

struct collect {
	char ids[16][UTIL_ID_LEN + 1];
	int n;
	int stop_after; /* 0 = never */
};

static int collect_cb(const struct store_job *j, void *ud)
{
	struct collect *c = ud;

	if (c->n < 16)
		memcpy(c->ids[c->n], j->id, sizeof(c->ids[0]));
	c->n++;
	if (c->stop_after && c->n == c->stop_after)
		return 42;
	return 0;
}

/* ids as "%032x" of n: compare by the number. */
static unsigned idnum(const char *id) { return (unsigned)strtoul(id, NULL, 16); }

static void test_list(void)
{
	struct store *s = open_memory();
	struct collect c;
	struct store_job j;
	enum store_state st;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL(c.n, 0);

	insert(s, 1, 100);
	insert(s, 2, 300);
	insert(s, 3, 200);
	insert(s, 4, 300); /* same time as 2, inserted later: listed first */
	insert(s, 5, 50);
	CU_ASSERT_EQUAL(store_job_started(s, "00000000000000000000000000000003", 1, 250), 0);
	make_job(&j, 5, 50);
	j.state = STORE_SUCCEEDED;
	CU_ASSERT_EQUAL(store_job_finished(s, &j), 0);

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.n, 5);
	CU_ASSERT_EQUAL(idnum(c.ids[0]), 4);
	CU_ASSERT_EQUAL(idnum(c.ids[1]), 2);
	CU_ASSERT_EQUAL(idnum(c.ids[2]), 3);
	CU_ASSERT_EQUAL(idnum(c.ids[3]), 1);
	CU_ASSERT_EQUAL(idnum(c.ids[4]), 5);

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 2, collect_cb, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.n, 2);
	CU_ASSERT_EQUAL(idnum(c.ids[0]), 4);
	CU_ASSERT_EQUAL(idnum(c.ids[1]), 2);

	st = STORE_QUEUED;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, &st, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.n, 3);
	CU_ASSERT_EQUAL(idnum(c.ids[0]), 4);
	CU_ASSERT_EQUAL(idnum(c.ids[1]), 2);
	CU_ASSERT_EQUAL(idnum(c.ids[2]), 1);

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, &st, 1, collect_cb, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.n, 1);
	CU_ASSERT_EQUAL(idnum(c.ids[0]), 4);

	st = STORE_RUNNING;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, &st, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c.n, 1);
	CU_ASSERT_EQUAL(idnum(c.ids[0]), 3);

	st = STORE_FAILED;
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, &st, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL(c.n, 0);

	/* A non-zero callback return stops the walk and comes back. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 0, collect_cb, &c), 42);
	CU_ASSERT_EQUAL(c.n, 3);

	/* And the statement is usable again afterwards. */
	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 0, collect_cb, &c), 0);
	CU_ASSERT_EQUAL(c.n, 5);
	store_close(s);
}

/* ---- recovery ---- */

struct recovered {
	int calls;
	int64_t pid;
	int64_t started_at_us;
};

static void recover_cb(const char *id, int64_t pid, int64_t started_at_us, void *ud)
{
	struct recovered *r = ud;
	CU_ASSERT_PTR_NOT_NULL_FATAL(id);
	CU_ASSERT_EQUAL(strlen(id), 32u);
	r->calls++;
	r->pid = pid;
	r->started_at_us = started_at_us;
}

static void test_recover(void)
{
	struct store *s = open_memory();
	struct recovered rec = {0};
	struct store_job j, got;
	int64_t before, after;

	insert(s, 1, 100); /* stays queued: no pid */
	insert(s, 2, 200); /* running with a pid */
	CU_ASSERT_EQUAL(store_job_started(s, "00000000000000000000000000000002", 4242, 250), 0);
	insert(s, 3, 300); /* ended: untouched */
	CU_ASSERT_EQUAL(store_job_started(s, "00000000000000000000000000000003", 77, 350), 0);
	make_job(&j, 3, 300);
	j.state = STORE_SUCCEEDED;
	j.finished_at_us = 400;
	j.exit_code = 0;
	j.http_status = 200;
	CU_ASSERT_EQUAL(store_job_finished(s, &j), 0);

	before = util_now_us();
	CU_ASSERT_EQUAL(store_recover(s, "cgiq restarted", 1000, recover_cb, &rec), 2);
	after = util_now_us();
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(rec.pid, 4242);
	CU_ASSERT_EQUAL(rec.started_at_us, 250);

	CU_ASSERT_EQUAL_FATAL(store_job_get(s, "00000000000000000000000000000001", &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_INTERRUPTED);
	CU_ASSERT_STRING_EQUAL(got.reason, "cgiq restarted");
	CU_ASSERT(got.finished_at_us >= before && got.finished_at_us <= after);
	CU_ASSERT_EQUAL(got.pid, -1);
	store_job_clear(&got);

	CU_ASSERT_EQUAL_FATAL(store_job_get(s, "00000000000000000000000000000002", &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_INTERRUPTED);
	CU_ASSERT_STRING_EQUAL(got.reason, "cgiq restarted");
	CU_ASSERT(got.finished_at_us >= before && got.finished_at_us <= after);
	CU_ASSERT_EQUAL(got.pid, 4242);
	CU_ASSERT_EQUAL(got.started_at_us, 250);
	store_job_clear(&got);

	CU_ASSERT_EQUAL_FATAL(store_job_get(s, "00000000000000000000000000000003", &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_SUCCEEDED);
	CU_ASSERT_PTR_NULL(got.reason);
	CU_ASSERT_EQUAL(got.finished_at_us, 400);
	CU_ASSERT_EQUAL(got.exit_code, 0);
	store_job_clear(&got);

	/* Nothing left to recover; a NULL callback is allowed. */
	memset(&rec, 0, sizeof(rec));
	CU_ASSERT_EQUAL(store_recover(s, "again", 1000, recover_cb, &rec), 0);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(store_recover(s, "again", 1000, NULL, NULL), 0);

	/* Inside a caller's batch it joins the batch instead of nesting. */
	insert(s, 4, 500);
	CU_ASSERT_EQUAL(store_begin(s), 0);
	CU_ASSERT_EQUAL(store_recover(s, "batched", 1000, NULL, NULL), 1);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	CU_ASSERT_EQUAL_FATAL(store_job_get(s, "00000000000000000000000000000004", &got), 0);
	CU_ASSERT_EQUAL(got.state, STORE_INTERRUPTED);
	CU_ASSERT_STRING_EQUAL(got.reason, "batched");
	store_job_clear(&got);
	store_close(s);
}

/* ---- the suite's own PostgreSQL server ---- */

/* It starts, answers as user cgiq on its socket only, and stops by its PID
 * with its directory gone. */
static void test_pg_server(void)
{
	struct tpg pg;
	char out[256], sock[128];
	pid_t pid;

	CU_ASSERT_FATAL(tpg_start(&pg) == 0);
	CU_ASSERT_EQUAL(tpg_psql(&pg, "SELECT current_user, current_database(), current_setting('listen_addresses')",
	                         out, sizeof(out)),
	                0);
	CU_ASSERT_STRING_EQUAL(out, "cgiq|cgiq|\n");
	snprintf(sock, sizeof(sock), "%s/.s.PGSQL.5432", pg.dir);
	CU_ASSERT_EQUAL(access(sock, F_OK), 0);
	pid = pg.pid;
	CU_ASSERT(pid > 0 && kill(pid, 0) == 0);
	tpg_stop(&pg);
	CU_ASSERT(kill(pid, 0) < 0 && errno == ESRCH);
	CU_ASSERT(access(sock, F_OK) < 0);
}

/* The schema: versioned in cgiq_schema, made once when four processes open
 * a new database at the same moment (the advisory lock), a newer version
 * refused; a password never in what a failure says. */
static void test_pg_schema(void)
{
	char url[400], out[256], why[512];
	struct store *s = NULL;
	pid_t kids[4];
	int ok = 0;

	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "CREATE DATABASE fresh", out, sizeof(out)), 0);
	snprintf(url, sizeof(url), "postgresql://cgiq@/fresh?host=%s", PG.dir);
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct store *k = NULL;
			int r = store_open(url, &k);
			store_close(k);
			_exit(r == 0 ? 0 : 1);
		}
	}
	for (int i = 0; i < 4; i++) {
		int st = 0;
		if (kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			ok++;
	}
	CU_ASSERT_EQUAL(ok, 4);
	CU_ASSERT_EQUAL_FATAL(store_open(url, &s), 0);
	store_close(s);
	{
		char conn[400];
		snprintf(conn, sizeof(conn), "host=%s dbname=fresh user=cgiq", PG.dir);
		/* psql on that database: through a second struct tpg naming it */
		struct tpg fresh = PG;
		snprintf(fresh.conninfo, sizeof(fresh.conninfo), "%s", conn);
		CU_ASSERT_EQUAL(tpg_psql(&fresh, "SELECT version FROM cgiq_schema", out, sizeof(out)), 0);
		CU_ASSERT_STRING_EQUAL(out, "3\n");
		CU_ASSERT_EQUAL(tpg_psql(&fresh, "UPDATE cgiq_schema SET version = 99", out, sizeof(out)), 0);
		CU_ASSERT_EQUAL(store_open_why(url, &s, why, sizeof(why)), -EPROTO);
		CU_ASSERT_STRING_EQUAL(why, "schema version 99 is not supported (newest known: 3): a newer cgiq made it");
	}
	snprintf(url, sizeof(url), "postgresql://cgiq:s3cret-pw@/nosuchdb?host=%s", PG.dir);
	CU_ASSERT_EQUAL(store_open_why(url, &s, why, sizeof(why)), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "nosuchdb"));
	CU_ASSERT_PTR_NULL(strstr(why, "s3cret"));
}

static int count_row(const struct store_job *j, void *ud)
{
	(void)j;
	++*(int *)ud;
	return 0;
}

/* A database that only reads (a standby; here default_transaction_read_only):
 * read (cgiq jobs against a replica), but refused to a daemon, which would
 * lose every row. */
static void test_pg_read_only(void)
{
	char url[400], out[256], msg[512];
	struct store *s = NULL;
	int n = 0;

	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "CREATE DATABASE ro", out, sizeof(out)), 0);
	snprintf(url, sizeof(url), "postgresql://cgiq@/ro?host=%s", PG.dir);
	CU_ASSERT_EQUAL_FATAL(store_open(url, &s), 0);
	insert(s, 1, 1000);
	store_close(s);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "ALTER DATABASE ro SET default_transaction_read_only = on", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL_FATAL(store_open(url, &s), 0);
	CU_ASSERT_EQUAL(store_jobs_list(s, NULL, 0, count_row, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(store_lock_writer(s, msg, sizeof(msg)), -EROFS);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does not take writes: ERROR:  cannot execute UPDATE in a read-only transaction"));
	store_close(s);
}


/* store_begin until it answers other than -EAGAIN (the store waits out its
 * backoff before it connects again), 10 s at most. */
static int begin_when_back(struct store *s)
{
	int r = -EAGAIN;

	for (int i = 0; i < 200 && r == -EAGAIN; i++) {
		r = store_begin(s);
		if (r == -EAGAIN)
			usleep(50000);
	}
	return r;
}

/* The server ends the store's session, then only reads, then writes again:
 * a batch's writes go out together (each answers 0 when sent; the commit
 * reads their answers), and the commit is -EAGAIN each time (the same
 * batch can be tried again), then 0 once the database takes writes. */
static void test_pg_unavailable(void)
{
	char out[256];
	struct store *s = open_memory();
	struct store_job got;
	static const char kill_sessions[] =
	    "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity WHERE datname = 'cgiq' AND pid <> pg_backend_pid()";

	/* the session ends under an open batch */
	CU_ASSERT_EQUAL(store_begin(s), 0);
	insert(s, 1, 100);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, kill_sessions, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "t\n");
	insert(s, 2, 200);
	CU_ASSERT_EQUAL(store_commit(s), -EAGAIN);
	/* a database that only reads: connected again, but the batch fails */
	CU_ASSERT_EQUAL_FATAL(
	    tpg_psql(&PG, "ALTER DATABASE cgiq SET default_transaction_read_only = on", out, sizeof(out)), 0);
	CU_ASSERT_EQUAL_FATAL(begin_when_back(s), 0);
	insert(s, 1, 100);
	insert(s, 2, 200);
	CU_ASSERT_EQUAL(store_commit(s), -EAGAIN);
	/* writes again (a new session sees it; psql's own only reads) */
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "BEGIN READ WRITE; ALTER DATABASE cgiq RESET default_transaction_read_only; COMMIT",
	                               out, sizeof(out)),
	                      0);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, kill_sessions, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(store_begin(s), 0);
	insert(s, 1, 100);
	CU_ASSERT_EQUAL(store_commit(s), -EAGAIN);
	CU_ASSERT_EQUAL_FATAL(begin_when_back(s), 0);
	insert(s, 1, 100);
	insert(s, 2, 200);
	/* an answer read before the commit (a read in the batch) */
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &got), 0);
	store_job_clear(&got);
	CU_ASSERT_EQUAL(store_job_progress(s, "00000000000000000000000000000002", 1, 2, "half"), 0);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "SELECT count(*), max(progress_text) FROM jobs", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "2|half\n");
	store_close(s);
}

/* A batch bigger than one pipeline's worth (PG_PIPE_MAX is 256), with a
 * write that fails in its middle: nothing of it is written, and one line
 * says why; a batch of the same size without it is written whole. */
static void test_pg_big_batch(void)
{
	char out[256];
	struct store *s = open_memory();
	struct store_job j;
	unsigned failed_from = 0;

	CU_ASSERT_EQUAL(store_begin(s), 0);
	for (unsigned i = 1; i <= 600; i++)
		insert(s, i, i);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	CU_ASSERT_EQUAL(store_begin(s), 0);
	for (unsigned i = 601; i <= 1200; i++) {
		int r;
		make_job(&j, i, i);
		/* a time PostgreSQL cannot hold fails the statement */
		if (i == 900)
			j.created_at_us = INT64_MAX;
		/* 0 when sent; -EIO once the batch is known to have failed (at
		 * the end of the pipeline that held the failure) */
		r = store_job_insert(s, &j);
		CU_ASSERT(r == 0 || r == -EIO);
		CU_ASSERT(!(failed_from && r == 0));
		if (r < 0 && !failed_from)
			failed_from = i;
	}
	CU_ASSERT(failed_from > 900 && failed_from <= 900 + 256);
	CU_ASSERT_EQUAL(store_commit(s), -EIO);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG, "SELECT count(*) FROM jobs", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "600\n");
	/* the store goes on */
	CU_ASSERT_EQUAL(store_begin(s), 0);
	insert(s, 1201, 1201);
	CU_ASSERT_EQUAL(store_commit(s), 0);
	store_close(s);
}

/* A database at schema version 1 is brought to 3 at the open: the queued
 * jobs' index no longer serves a statement on one job. */
static void test_pg_migrate_1(void)
{
	char out[512];
	struct store *s = open_memory();

	store_close(s);
	/* what version 1 did not have: the node column (schema 3) */
	CU_ASSERT_EQUAL_FATAL(
	    tpg_psql(&PG, "UPDATE cgiq_schema SET version = 1; ALTER TABLE jobs DROP COLUMN node", out, sizeof(out)), 0);
	s = NULL;
	CU_ASSERT_EQUAL_FATAL(store_open(PG.url, &s), 0);
	CU_ASSERT_EQUAL(tpg_psql(&PG, "SELECT version FROM cgiq_schema", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "3\n");
	CU_ASSERT_EQUAL(tpg_psql(&PG, "SELECT indexdef FROM pg_indexes WHERE indexname = 'jobs_queued'", out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "CREATE INDEX jobs_queued ON public.jobs USING btree (created_at, seq) WHERE ((state = "
	                            "'queued'::text) AND async)\n");
	store_close(s);
}

/* A store read from an event loop never waits for a server that does not
 * answer: its session ended and the postmaster stopped (SIGSTOP: a
 * connection is accepted by the kernel, then nothing), each call returns
 * -EIO at once (a blocking reconnection would wait its 5 s connect_timeout
 * at least); once the server runs again, the store reads again by itself. */
static void test_pg_on_loop(void)
{
	char out[256];
	struct store *s = open_memory();
	struct store_job got;
	uint64_t slowest = 0, end;
	int r = -EIO;

	insert(s, 1, 100);
	store_set_on_loop(s);
	CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &got), 0);
	store_job_clear(&got);
	CU_ASSERT_EQUAL_FATAL(tpg_psql(&PG,
	                               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
	                               "'cgiq' AND pid <> pg_backend_pid()",
	                               out, sizeof(out)),
	                      0);
	CU_ASSERT_EQUAL_FATAL(kill(PG.pid, SIGSTOP), 0);
	/* past the first backoff (0.5 s), so that reconnections are tried */
	for (end = util_mono_ms() + 3000; util_mono_ms() < end;) {
		uint64_t t0 = util_mono_ms(), took;
		CU_ASSERT_EQUAL(store_job_get(s, "00000000000000000000000000000001", &got), -EIO);
		took = util_mono_ms() - t0;
		slowest = took > slowest ? took : slowest;
		usleep(20000);
	}
	kill(PG.pid, SIGCONT);
	CU_ASSERT(slowest < 1000);
	for (end = util_mono_ms() + 20000; r != 0 && util_mono_ms() < end;) {
		r = store_job_get(s, "00000000000000000000000000000001", &got);
		if (r == 0)
			store_job_clear(&got);
		else
			usleep(50000);
	}
	CU_ASSERT_EQUAL(r, 0);
	store_close(s);
}

static int pg_suite_init(void)
{
	if (tpg_start(&PG) < 0)
		return -1;
	on_pg = 1;
	return 0;
}

static int pg_suite_clean(void)
{
	on_pg = 0;
	tpg_stop(&PG);
	return 0;
}

/* The operations every backend has: run on SQLite and on PostgreSQL. */
static const struct {
	const char *name;
	CU_TestFunc fn;
} shared_tests[] = {
	{"open, probe, insert, get", test_open_memory},
	{"insert/get round trip", test_insert_get_round_trip},
	{"insert of a finished job", test_insert_finished},
	{"NULL strings", test_null_strings},
	{"duplicate and unknown ids", test_duplicate_and_unknown},
	{"started only from queued", test_started_only_from_queued},
	{"text that is not UTF-8", test_not_utf8},
	{"a refused job forgotten", test_forget},
	{"the node in the row", test_node},
	{"list", test_list},
	{"recover", test_recover},
};

/* The shared tests into s; 0, or -1 when CUnit could not add one. */
static int add_shared(CU_pSuite s)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(shared_tests); i++)
		if (!CU_add_test(s, shared_tests[i].name, shared_tests[i].fn))
			return -1;
	return 0;
}

int main(void)
{
	CU_pSuite suite, pgs;

	/* Expected failures log a warning each; keep the report readable. */
	log_set_level(LOG_LEVEL_ERROR);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("store", suite_init, suite_clean);
	if (suite == NULL || add_shared(suite) < 0 ||
	    !CU_add_test(suite, "state names", test_state_names) ||
	    !CU_add_test(suite, "job init", test_job_init) ||
	    !CU_add_test(suite, "open file, reopen", test_open_file_and_reopen) ||
	    !CU_add_test(suite, "newer schema refused", test_newer_schema_refused) ||
	    !CU_add_test(suite, "not a database", test_not_a_database) ||
	    !CU_add_test(suite, "transactions", test_transactions) ||
	    !CU_add_test(suite, "the suite's own PostgreSQL server", test_pg_server)) {
		CU_cleanup_registry();
		return 1;
	}
	/* The same operations on PostgreSQL (the file-format tests are SQLite's),
	 * and what only a server does. */
	pgs = CU_add_suite("store on PostgreSQL", pg_suite_init, pg_suite_clean);
	if (pgs == NULL || add_shared(pgs) < 0 ||
	    !CU_add_test(pgs, "a server that goes, then only reads: -EAGAIN, then written", test_pg_unavailable) ||
	    !CU_add_test(pgs, "a batch of several pipelines, one write failing", test_pg_big_batch) ||
	    !CU_add_test(pgs, "schema version 1 migrated to the newest", test_pg_migrate_1) ||
	    !CU_add_test(pgs, "read from an event loop: never waits for the server", test_pg_on_loop) ||
	    !CU_add_test(pgs, "schema: once under the lock, newer refused, no password said", test_pg_schema) ||
	    !CU_add_test(pgs, "a read-only database: read, not written", test_pg_read_only)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	/* A suite whose setup failed ran no assertions; count it too. */
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (int)failed;
}
