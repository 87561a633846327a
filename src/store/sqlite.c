/*
 * The SQLite backend of the store (store.h, the operations table in
 * internal.h): the only file that includes sqlite3.h.
 *
 * One table, jobs, with the state as text so that an operator can query the
 * file with the sqlite3 shell. Unknown integers are NULL in the table and -1
 * in struct store_job; unknown times are NULL in the table and 0 in the struct.
 * The schema version lives in PRAGMA user_version.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/*
 * store_migrations[v] takes a database from user_version v to v + 1. Append
 * to this array (never edit a shipped entry) and bump STORE_SCHEMA_VERSION.
 * The statements are plain CREATE (no IF NOT EXISTS) so that running a step
 * twice fails loudly instead of hiding a version bookkeeping bug.
 */
static const char *const store_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE jobs ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" state TEXT NOT NULL,"
	" script TEXT,"
	" method TEXT,"
	" uri TEXT,"
	" peer TEXT,"
	" created_at INTEGER,"
	" started_at INTEGER,"
	" finished_at INTEGER,"
	" pid INTEGER,"
	" exit_code INTEGER,"
	" term_signal INTEGER,"
	" http_status INTEGER,"
	" bytes_in INTEGER,"
	" bytes_out INTEGER,"
	" processing_sent INTEGER,"
	" stderr_tail BLOB,"
	" reason TEXT"
	");"
	"CREATE INDEX jobs_created_at ON jobs (created_at);"
	"CREATE INDEX jobs_state ON jobs (state);",
	/* 1 -> 2: asynchronous jobs (enough to run them again after a restart),
	 * results kept for a while, progress reported by programs. */
	"ALTER TABLE jobs ADD COLUMN async INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE jobs ADD COLUMN env BLOB;"
	"ALTER TABLE jobs ADD COLUMN cwd TEXT;"
	"ALTER TABLE jobs ADD COLUMN body_path TEXT;"
	"ALTER TABLE jobs ADD COLUMN result_path TEXT;"
	"ALTER TABLE jobs ADD COLUMN result_head BLOB;"
	"ALTER TABLE jobs ADD COLUMN expires_at INTEGER;"
	"ALTER TABLE jobs ADD COLUMN progress_done INTEGER;"
	"ALTER TABLE jobs ADD COLUMN progress_total INTEGER;"
	"ALTER TABLE jobs ADD COLUMN progress_text TEXT;"
	"ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_expires_at ON jobs (expires_at);"
	"CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested = 1;",
	/* 2 -> 3: kept results newest first, for --max-results-bytes */
	"CREATE INDEX jobs_results ON jobs (finished_at) WHERE result_path IS NOT NULL;",
	/* 3 -> 4: how often a job was re-queued after a crash (retry-interrupted) */
	"ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;",
	/* 4 -> 5: the node that accepted, then ran, the job (--node-name) */
	"ALTER TABLE jobs ADD COLUMN node TEXT;",
};

_Static_assert(UTIL_ARRAY_LEN(store_migrations) == STORE_SCHEMA_VERSION,
               "one migration step per schema version");

/* The column list every row reader expects, in store_read_row's order. */
#define STORE_COLUMNS                                                           \
	"id, state, script, method, uri, peer, created_at, started_at, finished_at," \
	" pid, exit_code, term_signal, http_status, bytes_in, bytes_out,"           \
	" processing_sent, stderr_tail, reason, async, env, cwd, body_path, result_path,"  \
	" result_head, expires_at, progress_done, progress_total, progress_text,"           \
	" CASE WHEN state = 'queued' THEN (SELECT count(*) FROM jobs q WHERE q.state = 'queued'" \
	" AND (q.created_at < jobs.created_at OR (q.created_at = jobs.created_at"           \
	" AND q.rowid <= jobs.rowid))) END, node"

enum store_stmt_id {
	STORE_STMT_BEGIN,
	STORE_STMT_COMMIT,
	STORE_STMT_ROLLBACK,
	STORE_STMT_INSERT,
	STORE_STMT_STARTED,
	STORE_STMT_FINISHED,
	STORE_STMT_GET,
	STORE_STMT_LIST,
	STORE_STMT_LIST_STATE,
	STORE_STMT_RECOVER_PIDS,
	STORE_STMT_RECOVER,
	STORE_STMT_PROGRESS,
	STORE_STMT_EXPIRE_AT,
	STORE_STMT_FORGET,
	STORE_STMT_EXPIRED,
	STORE_STMT_DELETE_EXPIRED,
	STORE_STMT_QUEUED_ASYNC,
	STORE_STMT_REQUEUE,
	STORE_STMT_RESULTS_NEWEST,
	STORE_STMT_REQUEST_CANCEL,
	STORE_STMT_CANCEL_REQUESTED,
	STORE_STMT_COUNT,
};

static const char *const store_stmt_sql[STORE_STMT_COUNT] = {
	[STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STORE_STMT_COMMIT] = "COMMIT",
	[STORE_STMT_ROLLBACK] = "ROLLBACK",
	[STORE_STMT_INSERT] =
		"INSERT INTO jobs (id, state, script, method, uri, peer, created_at, bytes_in,"
		" pid, started_at, async, env, cwd, body_path, finished_at, exit_code, term_signal,"
		" http_status, bytes_out, processing_sent, stderr_tail, reason, result_path,"
		" result_head, expires_at, node)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
		" ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
	/* Only from queued: a started event that arrives after the job already
	 * ended must not move it back to running. */
	[STORE_STMT_STARTED] =
		"UPDATE jobs SET state = 'running', pid = ?2, started_at = ?3, node = ?4"
		" WHERE id = ?1 AND state = 'queued'",
	[STORE_STMT_FINISHED] =
		"UPDATE jobs SET state = ?2, finished_at = ?3, exit_code = ?4, term_signal = ?5,"
		" http_status = ?6, bytes_out = ?7, processing_sent = ?8, stderr_tail = ?9,"
		" reason = ?10, result_path = ?11, result_head = ?12, expires_at = ?13,"
		" body_path = NULL, env = NULL WHERE id = ?1",
	[STORE_STMT_GET] = "SELECT " STORE_COLUMNS " FROM jobs WHERE id = ?1",
	/* LIMIT -1 means no limit in SQLite. */
	[STORE_STMT_LIST] =
		"SELECT " STORE_COLUMNS " FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?1",
	[STORE_STMT_LIST_STATE] =
		"SELECT " STORE_COLUMNS " FROM jobs WHERE state = ?2"
		" ORDER BY created_at DESC, rowid DESC LIMIT ?1",
	[STORE_STMT_RECOVER_PIDS] =
		"SELECT pid, started_at, id FROM jobs"
		" WHERE state IN ('queued', 'running') AND pid IS NOT NULL",
	/* A queued asynchronous job was promised to run: it stays queued. A
	 * running one is never silently run again (it may not be idempotent). */
	[STORE_STMT_RECOVER] =
		"UPDATE jobs SET state = 'interrupted', reason = ?1, finished_at = ?2,"
		" expires_at = ?2 + ?3"
		" WHERE state = 'running' OR (state = 'queued' AND async = 0)",
	[STORE_STMT_PROGRESS] =
		"UPDATE jobs SET progress_done = ?2, progress_total = ?3, progress_text = ?4"
		" WHERE id = ?1",
	[STORE_STMT_EXPIRE_AT] = "UPDATE jobs SET expires_at = ?2 WHERE id = ?1",
	[STORE_STMT_FORGET] = "DELETE FROM jobs WHERE id = ?1 AND state = 'queued'",
	[STORE_STMT_EXPIRED] =
		"SELECT result_path, body_path FROM jobs WHERE expires_at <= ?1",
	[STORE_STMT_DELETE_EXPIRED] = "DELETE FROM jobs WHERE expires_at <= ?1",
	[STORE_STMT_RESULTS_NEWEST] =
		"SELECT id, result_path, bytes_out FROM jobs WHERE result_path IS NOT NULL"
		" AND (expires_at IS NULL OR expires_at > ?1) ORDER BY finished_at DESC",
	[STORE_STMT_REQUEST_CANCEL] =
		"UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state IN ('queued', 'running')",
	[STORE_STMT_CANCEL_REQUESTED] =
		"SELECT id FROM jobs WHERE cancel_requested = 1 AND state IN ('queued', 'running')",
	/* Running asynchronous jobs that can run again: accepted with 202, so
	 * their environment and request body are on disk (detached ones are not). */
	[STORE_STMT_QUEUED_ASYNC] =
		"SELECT " STORE_COLUMNS " FROM jobs WHERE state = 'queued' AND async = 1"
		" ORDER BY created_at, rowid",
	[STORE_STMT_REQUEUE] =
		"UPDATE jobs SET state = 'queued', started_at = NULL, attempts = attempts + 1"
		" WHERE id = ?1 AND state = 'running' AND async = 1 AND attempts < ?2",
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	char *path; /* for log lines */
	sqlite3_stmt *stmt[STORE_STMT_COUNT];
	/* While store_open_why opens: the first failure goes here, not to the
	 * log, so that the caller says it on one line. */
	char *why;
	size_t why_size;
};

static struct sqlite_store *sq(struct store *base) { return (struct sqlite_store *)base; }

static const struct store_ops sqlite_ops;
static void sq_close(struct store *base);
static int sq_rollback(struct store *base);

/* A failure: logged, or while opening for store_open_why, its cause kept. */
#define store_say(s, ...) store__say((s)->path, (s)->why, (s)->why_size, __VA_ARGS__)

/* Logs the connection's last error and returns -EIO. Call before resetting
 * the statement: the message belongs to the failed step. */
static int store_fail(struct sqlite_store *s, const char *what, const char *id)
{
	if (id != NULL)
		store_say(s, "%s: %s (job %s)", what, sqlite3_errmsg(s->db), id);
	else
		store_say(s, "%s: %s", what, sqlite3_errmsg(s->db));
	return -EIO;
}

/* Runs SQL without results (schema, pragmas). */
static int store_exec(struct sqlite_store *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		store_say(s, "%s: %s", sql, err ? err : sqlite3_errmsg(s->db));
		sqlite3_free(err);
		return -EIO;
	}
	return 0;
}

static int store_user_version(struct sqlite_store *s, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		r = store_fail(s, "reading schema version", NULL);
		goto out;
	}
	*out = sqlite3_column_int64(st, 0);
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

static int store_check_version(struct sqlite_store *s, int64_t version)
{
	if (version > STORE_SCHEMA_VERSION || version < 0) {
		store_say(s, "schema version %lld is not supported (newest known: %d): a newer cgiq made it",
		          (long long)version, STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	return 0;
}

/*
 * Brings the schema to STORE_SCHEMA_VERSION. The common case (already
 * current) reads the version without a write lock, so that the CLI can open
 * the file while the daemon writes. Otherwise the version is read again under
 * BEGIN IMMEDIATE because another process may be migrating at the same time.
 */
static int store_migrate(struct sqlite_store *s)
{
	char sql[64];
	int64_t version;
	int r;

	r = store_user_version(s, &version);
	if (r < 0)
		return r;
	r = store_check_version(s, version);
	if (r < 0 || version == STORE_SCHEMA_VERSION)
		return r;

	r = store_exec(s, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = store_user_version(s, &version);
	if (r < 0)
		goto out;
	r = store_check_version(s, version);
	if (r < 0)
		goto out;
	for (; version < STORE_SCHEMA_VERSION; version++) {
		r = store_exec(s, store_migrations[version]);
		if (r < 0)
			goto out;
	}
	/* PRAGMA takes no bound parameters. */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	r = store_exec(s, sql);
	if (r < 0)
		goto out;
	r = store_exec(s, "COMMIT");
out:
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		store_exec(s, "ROLLBACK");
	return r;
}

static int store_setup(struct sqlite_store *s)
{
	sqlite3_stmt *st = NULL;
	int r;

	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_busy_timeout(s->db, 5000) != SQLITE_OK)
		return store_fail(s, "setting busy timeout", NULL);

	/* journal_mode answers with the mode in effect; ":memory:" stays "memory",
	 * and some file systems cannot do WAL, which is worth a line but not fatal. */
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		r = store_fail(s, "setting WAL mode", NULL);
		sqlite3_finalize(st);
		return r;
	}
	const unsigned char *mode = sqlite3_column_text(st, 0);
	if (mode != NULL && strcmp((const char *)mode, "wal") != 0 &&
	    strcmp((const char *)mode, "memory") != 0)
		log_warnx("store %s: journal mode is %s, not wal", s->path, (const char *)mode);
	sqlite3_finalize(st);

	/* NORMAL is safe in WAL mode: a power loss can lose the last commits,
	 * never corrupt the file. */
	r = store_exec(s, "PRAGMA synchronous = NORMAL");
	if (r == 0)
		r = store_exec(s, "PRAGMA foreign_keys = ON");
	if (r == 0)
		r = store_migrate(s);
	if (r < 0)
		return r;

	for (int i = 0; i < STORE_STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, store_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &s->stmt[i], NULL) != SQLITE_OK)
			return store_fail(s, store_stmt_sql[i], NULL);
	}
	return 0;
}

int store_sqlite_open(const char *path, struct store **out, char *why, size_t why_size)
{
	struct sqlite_store *s = util_xcalloc(1, sizeof(*s));

	s->base.ops = &sqlite_ops;
	int r;

	s->path = util_xstrdup(path);
	if (why != NULL && why_size > 0) {
		why[0] = '\0';
		s->why = why;
		s->why_size = why_size;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		/* db is NULL only when SQLite could not allocate it; errmsg copes. */
		r = store_fail(s, "opening", NULL);
		goto out;
	}
	/* SQLite falls back to reading when it may not write (the file's mode
	 * or owner, a read-only file system): every job would go unrecorded. */
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		store_say(s, "opened read-only: this process may not write it");
		r = -EROFS;
		goto out;
	}
	r = store_setup(s);
out:
	s->why = NULL; /* from now on, failures are logged */
	if (r < 0) {
		sq_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

static void sq_close(struct store *base)
{
	struct sqlite_store *s = sq(base);

	for (int i = 0; i < STORE_STMT_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	/* Every statement is finalized above, so close cannot be busy. */
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("store %s: closing: %s", s->path, sqlite3_errmsg(s->db));
	free(s->path);
	free(s);
}

/* Steps a statement that returns no rows and resets it. */
static int store_run(struct sqlite_store *s, sqlite3_stmt *st, const char *what, const char *id)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
			log_warnx("store %s: %s: duplicate id (job %s)", s->path, what,
			          id ? id : "-");
			r = -EEXIST;
		} else {
			r = store_fail(s, what, id);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_probe_write(struct store *base)
{
	struct sqlite_store *s = sq(base);
	char sql[96];

	/* The schema version rewritten as it is: one page written and
	 * committed, nothing changed. Quiet: the caller says what it means. */
	snprintf(sql, sizeof(sql), "BEGIN IMMEDIATE; PRAGMA user_version = %d; COMMIT", STORE_SCHEMA_VERSION);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static int sq_begin(struct store *base) { return store_run(sq(base), sq(base)->stmt[STORE_STMT_BEGIN], "BEGIN", NULL); }

static int sq_commit(struct store *base)
{
	struct sqlite_store *s = sq(base);
	int r = store_run(s, s->stmt[STORE_STMT_COMMIT], "COMMIT", NULL);

	/* A failed COMMIT can leave the transaction open, and then every later
	 * store_begin would fail too. */
	if (r < 0 && !sqlite3_get_autocommit(s->db))
		sq_rollback(&s->base);
	return r;
}

static int sq_rollback(struct store *base)
{
	struct sqlite_store *s = sq(base);
	if (sqlite3_get_autocommit(s->db))
		return 0;
	return store_run(s, s->stmt[STORE_STMT_ROLLBACK], "ROLLBACK", NULL);
}

/* Binding helpers: unknown values become NULL. Bind errors show up at step
 * (SQLITE_RANGE cannot happen with these fixed statements), so they are not
 * checked one by one. */
static void store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Bytes that need not be text (stderr, headers, environments); NULL binds NULL. */
static void store_bind_blob(sqlite3_stmt *st, int i, const char *p, size_t len)
{
	if (p == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_blob(st, i, p, (int)len, SQLITE_STATIC);
}

static void store_bind_int(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

static void store_bind_time(sqlite3_stmt *st, int i, int64_t us)
{
	if (us <= 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, us);
}

/* How a job ended, as parameters first .. first + 10 of STORE_STMT_INSERT and
 * STORE_STMT_FINISHED: finished_at, exit_code, term_signal, http_status,
 * bytes_out, processing_sent, stderr_tail, reason, result_path, result_head,
 * expires_at. */
static void store_bind_outcome(sqlite3_stmt *st, int first, const struct store_job *j)
{
	store_bind_time(st, first, j->finished_at_us);
	store_bind_int(st, first + 1, j->exit_code);
	store_bind_int(st, first + 2, j->term_signal);
	store_bind_int(st, first + 3, j->http_status);
	store_bind_int(st, first + 4, j->bytes_out);
	store_bind_int(st, first + 5, j->processing_sent);
	/* A blob: the program's stderr need not be UTF-8. */
	store_bind_blob(st, first + 6, j->stderr_tail, j->stderr_tail ? strlen(j->stderr_tail) : 0);
	store_bind_text(st, first + 7, j->reason);
	store_bind_text(st, first + 8, j->result_path);
	store_bind_blob(st, first + 9, j->result_head, j->result_head ? strlen(j->result_head) : 0);
	store_bind_time(st, first + 10, j->expires_at_us);
}

static int sq_job_insert(struct store *base, const struct store_job *j)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_INSERT];

	store_bind_text(st, 1, j->id);
	store_bind_text(st, 2, store_state_name(j->state));
	store_bind_text(st, 3, j->script);
	store_bind_text(st, 4, j->method);
	store_bind_text(st, 5, j->uri);
	store_bind_text(st, 6, j->peer);
	store_bind_time(st, 7, j->created_at_us);
	store_bind_int(st, 8, j->bytes_in);
	store_bind_int(st, 9, j->pid);
	store_bind_time(st, 10, j->started_at_us);
	sqlite3_bind_int(st, 11, j->async ? 1 : 0);
	store_bind_blob(st, 12, j->env, j->env_len);
	store_bind_text(st, 13, j->cwd);
	store_bind_text(st, 14, j->body_path);
	/* A job that ended before its row was written is written once, whole. */
	store_bind_outcome(st, 15, j);
	store_bind_text(st, 26, s->base.node[0] ? s->base.node : NULL);
	return store_run(s, st, "inserting", j->id);
}

/* Returns -ENOENT (with a line) when the last UPDATE touched no row. */
static int store_changed_one(struct sqlite_store *s, int r, const char *what, const char *id)
{
	if (r == 0 && sqlite3_changes(s->db) == 0) {
		log_warnx("store %s: %s: no such job (job %s)", s->path, what, id);
		return -ENOENT;
	}
	return r;
}

static int sq_job_started(struct store *base, const char *id, int64_t pid, int64_t started_at_us)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_STARTED];
	int r;

	store_bind_text(st, 1, id);
	store_bind_int(st, 2, pid);
	store_bind_time(st, 3, started_at_us);
	store_bind_text(st, 4, s->base.node[0] ? s->base.node : NULL);
	r = store_run(s, st, "marking started", id);
	return store_changed_one(s, r, "marking started (not queued)", id);
}

static int sq_job_finished(struct store *base, const struct store_job *j)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_FINISHED];
	int r;

	store_bind_text(st, 1, j->id);
	store_bind_text(st, 2, store_state_name(j->state));
	store_bind_outcome(st, 3, j);
	r = store_run(s, st, "marking finished", j->id);
	return store_changed_one(s, r, "marking finished", j->id);
}

static char *store_col_str(sqlite3_stmt *st, int i)
{
	const void *v;
	int n;
	char *p;

	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	/* Blob access works for text columns too and gives the bytes as stored. */
	v = sqlite3_column_blob(st, i);
	n = sqlite3_column_bytes(st, i);
	p = util_xmalloc((size_t)n + 1);
	if (n > 0)
		memcpy(p, v, (size_t)n);
	p[n] = '\0';
	return p;
}

static int64_t store_col_int(sqlite3_stmt *st, int i, int64_t unknown)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return unknown;
	return sqlite3_column_int64(st, i);
}

/* Fills j (initialized here) from the current row of a STORE_COLUMNS select. */
static int store_read_row(struct sqlite_store *s, sqlite3_stmt *st, struct store_job *j)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);
	const char *state = (const char *)sqlite3_column_text(st, 1);

	store_job_init(j);
	snprintf(j->id, sizeof(j->id), "%s", id ? id : "");
	if (store_state_parse(state, &j->state) < 0) {
		/* Someone wrote the table by hand, or a newer cgiq added a state. */
		log_warnx("store %s: unknown state \"%s\" (job %s)", s->path,
		          state ? state : "NULL", j->id);
		return -EIO;
	}
	j->script = store_col_str(st, 2);
	j->method = store_col_str(st, 3);
	j->uri = store_col_str(st, 4);
	j->peer = store_col_str(st, 5);
	j->created_at_us = store_col_int(st, 6, 0);
	j->started_at_us = store_col_int(st, 7, 0);
	j->finished_at_us = store_col_int(st, 8, 0);
	j->pid = store_col_int(st, 9, -1);
	j->exit_code = store_col_int(st, 10, -1);
	j->term_signal = store_col_int(st, 11, -1);
	j->http_status = store_col_int(st, 12, -1);
	j->bytes_in = store_col_int(st, 13, -1);
	j->bytes_out = store_col_int(st, 14, -1);
	j->processing_sent = store_col_int(st, 15, -1);
	j->stderr_tail = store_col_str(st, 16);
	j->reason = store_col_str(st, 17);
	j->async = (int)store_col_int(st, 18, 0);
	j->env = store_col_str(st, 19);
	j->env_len = j->env ? (size_t)sqlite3_column_bytes(st, 19) : 0;
	j->cwd = store_col_str(st, 20);
	j->body_path = store_col_str(st, 21);
	j->result_path = store_col_str(st, 22);
	j->result_head = store_col_str(st, 23);
	j->expires_at_us = store_col_int(st, 24, 0);
	j->progress_done = store_col_int(st, 25, -1);
	j->progress_total = store_col_int(st, 26, -1);
	j->progress_text = store_col_str(st, 27);
	j->queue_position = store_col_int(st, 28, -1);
	j->node = store_col_str(st, 29);
	return 0;
}

static int sq_job_get(struct store *base, const char *id, struct store_job *out)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_GET];
	int rc, r;

	store_bind_text(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = store_read_row(s, st, out);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, "reading", id);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/* Steps st (bound), cb for each job row until cb returns non-zero, then
 * resets it. Returns 0, what cb returned, or -EIO (what: for the log line). */
static int each_job(struct sqlite_store *s, sqlite3_stmt *st, int (*cb)(const struct store_job *j, void *ud),
                    void *ud, const char *what)
{
	struct store_job j;
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = store_read_row(s, st, &j);
		if (r == 0)
			r = cb(&j, ud);
		store_job_clear(&j);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, what, NULL);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_jobs_list(struct store *base, const enum store_state *state, unsigned limit,
                        int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[state ? STORE_STMT_LIST_STATE : STORE_STMT_LIST];

	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	if (state != NULL)
		store_bind_text(st, 2, store_state_name(*state));
	return each_job(s, st, cb, ud, "listing");
}

static int sq_recover(struct store *base, const char *reason, int64_t keep_us,
                      void (*cb)(const char *id, int64_t pid, int64_t started_at_us, void *ud), void *ud)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_RECOVER_PIDS];
	/* Join the caller's transaction if there is one. */
	int own = sqlite3_get_autocommit(s->db);
	int rc, r = 0;

	if (own) {
		r = sq_begin(&s->base);
		if (r < 0)
			return r;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cb != NULL) {
			const unsigned char *id = sqlite3_column_text(st, 2);
			cb(id ? (const char *)id : "", sqlite3_column_int64(st, 0), store_col_int(st, 1, 0), ud);
		}
	}
	if (rc != SQLITE_DONE)
		r = store_fail(s, "recovery: listing unfinished jobs", NULL);
	sqlite3_reset(st);
	if (r < 0)
		goto out;

	st = s->stmt[STORE_STMT_RECOVER];
	store_bind_text(st, 1, reason);
	sqlite3_bind_int64(st, 2, util_now_us());
	sqlite3_bind_int64(st, 3, keep_us);
	r = store_run(s, st, "recovery: marking jobs interrupted", NULL);
	if (r < 0)
		goto out;
	r = (int)sqlite3_changes(s->db);
	if (own) {
		int c = sq_commit(&s->base);
		if (c < 0)
			r = c;
	}
out:
	if (r < 0 && own)
		sq_rollback(&s->base);
	return r;
}

static int sq_job_requeue(struct store *base, const char *id, int max_attempts)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_REQUEUE];
	int r;

	store_bind_text(st, 1, id);
	sqlite3_bind_int(st, 2, max_attempts);
	r = store_run(s, st, "re-queueing an interrupted job", id);
	if (r == 0 && sqlite3_changes(s->db) == 0)
		r = -ENOENT;
	return r;
}

static int sq_job_progress(struct store *base, const char *id, int64_t done, int64_t total, const char *text)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_PROGRESS];

	store_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, done);
	sqlite3_bind_int64(st, 3, total);
	store_bind_text(st, 4, text);
	return store_run(s, st, "recording progress", id);
}

static int sq_job_expire_at(struct store *base, const char *id, int64_t expires_at_us)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_EXPIRE_AT];

	store_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, expires_at_us);
	return store_run(s, st, "setting expiry", id);
}

static int sq_job_forget(struct store *base, const char *id)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_FORGET];

	store_bind_text(st, 1, id);
	return store_run(s, st, "forgetting a refused job", id);
}

static int sq_expire(struct store *base, int64_t now_us,
                     void (*cb)(const char *result_path, const char *body_path, void *ud), void *ud)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_EXPIRED];
	int rc, r = 0;

	sqlite3_bind_int64(st, 1, now_us);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cb != NULL)
			cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), ud);
	}
	if (rc != SQLITE_DONE)
		r = store_fail(s, "listing expired jobs", NULL);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0)
		return r;
	st = s->stmt[STORE_STMT_DELETE_EXPIRED];
	sqlite3_bind_int64(st, 1, now_us);
	r = store_run(s, st, "deleting expired jobs", NULL);
	return r < 0 ? r : (int)sqlite3_changes(s->db);
}

static int sq_results_newest(struct store *base, int64_t now_us,
                             int (*cb)(const char *id, const char *result_path, int64_t bytes, void *ud),
                             void *ud)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_RESULTS_NEWEST];
	int rc, r = 0;

	sqlite3_bind_int64(st, 1, now_us);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
		       sqlite3_column_int64(st, 2), ud);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_fail(s, "listing kept results", NULL);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_jobs_queued_async(struct store *base, int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	struct sqlite_store *s = sq(base);
	return each_job(s, s->stmt[STORE_STMT_QUEUED_ASYNC], cb, ud, "listing queued jobs");
}

static int sq_set_durable(struct store *base, int on)
{
	struct sqlite_store *s = sq(base);
	return store_exec(s, on ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

static int sq_job_request_cancel(struct store *base, const char *id)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_REQUEST_CANCEL];
	int r;

	store_bind_text(st, 1, id);
	r = store_run(s, st, "requesting cancellation", id);
	if (r < 0)
		return r;
	return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int sq_jobs_cancel_requested(struct store *base, void (*cb)(const char *id, void *ud), void *ud)
{
	struct sqlite_store *s = sq(base);
	sqlite3_stmt *st = s->stmt[STORE_STMT_CANCEL_REQUESTED];
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		cb((const char *)sqlite3_column_text(st, 0), ud);
	if (rc != SQLITE_DONE)
		r = store_fail(s, "listing cancellation requests", NULL);
	sqlite3_reset(st);
	return r;
}

static const struct store_ops sqlite_ops = {
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.probe_write = sq_probe_write,
	.set_durable = sq_set_durable,
	.job_insert = sq_job_insert,
	.job_started = sq_job_started,
	.job_finished = sq_job_finished,
	.progress = sq_job_progress,
	.job_expire_at = sq_job_expire_at,
	.job_forget = sq_job_forget,
	.job_requeue = sq_job_requeue,
	.job_request_cancel = sq_job_request_cancel,
	.job_get = sq_job_get,
	.jobs_list = sq_jobs_list,
	.jobs_queued_async = sq_jobs_queued_async,
	.jobs_cancel_requested = sq_jobs_cancel_requested,
	.recover = sq_recover,
	.expire = sq_expire,
	.results_newest = sq_results_newest,
};
