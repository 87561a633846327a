/*
 * The PostgreSQL backend of the job record (libpq), the only file that
 * includes libpq-fe.h. One connection per struct store; every statement is
 * prepared once per connection. The table is the SQLite backend's, with
 * PostgreSQL's types: timestamptz for times (microseconds both ways, exact),
 * bigint for counts, bytea for what need not be text (stderr, headers, the
 * environment), a sequence for the order rows were inserted in.
 *
 * The schema is versioned in cgiq_schema and brought up to date at open,
 * under an advisory lock, so that several processes starting at once
 * migrate it once. A connection string is libpq's (a URL or key=value
 * pairs; PG* environment variables apply); the log names the server by its
 * user, host and database, never with a password.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "internal.h"

/* A µs count as a parameter, and a timestamptz as a µs count, exactly. */
#define TS(p) "(timestamptz 'epoch' + (" p ")::bigint * interval '1 microsecond')"
#define US(c) "(extract(epoch from " c ") * 1000000)::bigint"

/* The advisory lock the schema is migrated under: "cgiq" as a number; the
 * one a daemon holds while it writes the database: "cgqw". */
#define PG_SCHEMA_LOCK "1667721585"
#define PG_WRITER_LOCK "1667723639"

/*
 * pg_migrations[v] takes the schema from version v to v + 1: append, never
 * edit a shipped entry. Each runs in one transaction with the version's
 * update.
 */
static const char *const pg_migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE jobs ("
	" id text PRIMARY KEY,"
	" seq bigserial NOT NULL,"
	" state text NOT NULL,"
	" script text, method text, uri text, peer text,"
	" created_at timestamptz, started_at timestamptz, finished_at timestamptz,"
	" pid bigint, exit_code bigint, term_signal bigint, http_status bigint,"
	" bytes_in bigint, bytes_out bigint, processing_sent bigint,"
	" stderr_tail bytea, reason text,"
	" async boolean NOT NULL DEFAULT false,"
	" env bytea, cwd text, body_path text, result_path text, result_head bytea,"
	" expires_at timestamptz,"
	" progress_done bigint, progress_total bigint, progress_text text,"
	" cancel_requested boolean NOT NULL DEFAULT false,"
	" attempts integer NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_created_at ON jobs (created_at, seq);"
	"CREATE INDEX jobs_state ON jobs (state);"
	"CREATE INDEX jobs_queued ON jobs (created_at, seq) WHERE state = 'queued';"
	"CREATE INDEX jobs_expires_at ON jobs (expires_at);"
	"CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested;"
	"CREATE INDEX jobs_results ON jobs (finished_at) WHERE result_path IS NOT NULL;",
	/* 1 -> 2: an UPDATE or DELETE "WHERE id = $1 AND state = 'queued'"
	 * (a start, a forget) was planned on jobs_queued, whose predicate it
	 * implies, scanning every queued row for one id (an index that looks
	 * small before the table has statistics): a predicate those statements
	 * do not imply (and BY_ID below) leaves them the primary key. */
	("DROP INDEX jobs_queued;"
	 "CREATE INDEX jobs_queued ON jobs (created_at, seq) WHERE state = 'queued' AND async;"),
	/* 2 -> 3: the node that accepted, then ran, the job (--node-name) */
	"ALTER TABLE jobs ADD COLUMN node text;",
};
#define PG_SCHEMA_VERSION ((int)UTIL_ARRAY_LEN(pg_migrations))

/* A statement on one job, "WHERE id = $1 AND BY_ID(state = ...)": the
 * condition on the state is not one an index on state can serve, so the
 * row is found by its primary key. Else a generic plan made while the
 * table had no statistics could scan every queued row through jobs_state
 * for each start (measured: 1,600 index entries a start, half of
 * PostgreSQL's CPU under load). */
#define BY_ID(cond) "(" cond ") IS TRUE"

/* The columns every row reader expects, in read_row's order. */
#define PG_COLUMNS                                                                                         \
	"id, state, script, method, uri, peer, " US("created_at") ", " US("started_at") ", "                 \
	US("finished_at") ", pid, exit_code, term_signal, http_status, bytes_in, bytes_out, processing_sent," \
	" stderr_tail, reason, async::int, env, cwd, body_path, result_path, result_head, " US("expires_at")  \
	", progress_done, progress_total, progress_text,"                                                     \
	" CASE WHEN state = 'queued' THEN (SELECT count(*) FROM jobs q WHERE q.state = 'queued'"            \
	" AND (q.created_at < jobs.created_at OR (q.created_at = jobs.created_at AND q.seq <= jobs.seq))) END, node"

enum pg_stmt {
	PG_INSERT,
	PG_STARTED,
	PG_FINISHED,
	PG_GET,
	PG_LIST,
	PG_LIST_STATE,
	PG_RECOVER_PIDS,
	PG_RECOVER,
	PG_PROGRESS,
	PG_EXPIRE_AT,
	PG_FORGET,
	PG_EXPIRED,
	PG_QUEUED_ASYNC,
	PG_REQUEUE,
	PG_RESULTS_NEWEST,
	PG_REQUEST_CANCEL,
	PG_CANCEL_REQUESTED,
	PG_STMT_COUNT,
};

/* How a job ended: 11 parameters from $first (as outcome_params fills them). */
#define PG_OUTCOME(a, b, c, d, e, f, g, h, i, j, k)                                                        \
	TS("$" #a) ", $" #b ", $" #c ", $" #d ", $" #e ", $" #f ", $" #g ", $" #h ", $" #i ", $" #j ", " TS("$" #k)

static const char *const pg_sql[PG_STMT_COUNT] = {
	[PG_INSERT] = "INSERT INTO jobs (id, state, script, method, uri, peer, created_at, bytes_in, pid,"
	              " started_at, async, env, cwd, body_path, finished_at, exit_code, term_signal,"
	              " http_status, bytes_out, processing_sent, stderr_tail, reason, result_path,"
	              " result_head, expires_at, node)"
	              " VALUES ($1, $2, $3, $4, $5, $6, " TS("$7") ", $8, $9, " TS("$10") ", $11::int::boolean,"
	              " $12, $13, $14, " PG_OUTCOME(15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25) ", $26)"
	              /* a duplicate ends no transaction: the rest of a batch is written */
	              " ON CONFLICT (id) DO NOTHING",
	/* Only from queued: a start that comes after the end must not undo it. */
	[PG_STARTED] = "UPDATE jobs SET state = 'running', pid = $2, started_at = " TS("$3") ", node = $4"
	               " WHERE id = $1 AND " BY_ID("state = 'queued'"),
	[PG_FINISHED] = "UPDATE jobs SET state = $2, finished_at = " TS("$3") ", exit_code = $4, term_signal = $5,"
	                " http_status = $6, bytes_out = $7, processing_sent = $8, stderr_tail = $9, reason = $10,"
	                " result_path = $11, result_head = $12, expires_at = " TS("$13") ","
	                " body_path = NULL, env = NULL WHERE id = $1",
	[PG_GET] = "SELECT " PG_COLUMNS " FROM jobs WHERE id = $1",
	[PG_LIST] = "SELECT " PG_COLUMNS " FROM jobs ORDER BY created_at DESC NULLS LAST, seq DESC LIMIT $1",
	[PG_LIST_STATE] = "SELECT " PG_COLUMNS " FROM jobs WHERE state = $2"
	                  " ORDER BY created_at DESC NULLS LAST, seq DESC LIMIT $1",
	[PG_RECOVER_PIDS] = "SELECT pid, " US("started_at") ", id FROM jobs"
	                    " WHERE state IN ('queued', 'running') AND pid IS NOT NULL",
	/* A queued asynchronous job was promised to run: it stays queued. */
	[PG_RECOVER] = "UPDATE jobs SET state = 'interrupted', reason = $1, finished_at = " TS("$2") ","
	               " expires_at = " TS("$2::bigint + $3::bigint")
	               " WHERE state = 'running' OR (state = 'queued' AND NOT async)",
	[PG_PROGRESS] = "UPDATE jobs SET progress_done = $2, progress_total = $3, progress_text = $4 WHERE id = $1",
	[PG_EXPIRE_AT] = "UPDATE jobs SET expires_at = " TS("$2") " WHERE id = $1",
	[PG_FORGET] = "DELETE FROM jobs WHERE id = $1 AND " BY_ID("state = 'queued'"),
	/* The rows and their files in one statement: what was deleted is listed. */
	[PG_EXPIRED] = "DELETE FROM jobs WHERE expires_at <= " TS("$1") " RETURNING result_path, body_path",
	[PG_QUEUED_ASYNC] = "SELECT " PG_COLUMNS " FROM jobs WHERE state = 'queued' AND async ORDER BY created_at, seq",
	[PG_REQUEUE] = "UPDATE jobs SET state = 'queued', started_at = NULL, attempts = attempts + 1"
	               " WHERE id = $1 AND " BY_ID("state = 'running' AND async AND attempts < $2"),
	[PG_RESULTS_NEWEST] = "SELECT id, result_path, bytes_out FROM jobs WHERE result_path IS NOT NULL"
	                      " AND (expires_at IS NULL OR expires_at > " TS("$1") ") ORDER BY finished_at DESC",
	[PG_REQUEST_CANCEL] = "UPDATE jobs SET cancel_requested = true WHERE id = $1 AND "
	                      BY_ID("state IN ('queued', 'running')"),
	[PG_CANCEL_REQUESTED] = "SELECT id FROM jobs WHERE cancel_requested AND state IN ('queued', 'running')",
};

/* What an UPDATE or INSERT that touched no row means, where it means
 * something: -EEXIST for the insert, -ENOENT for the others. */
static const char *const pg_none[PG_STMT_COUNT] = {
	[PG_INSERT] = "duplicate id",
	[PG_STARTED] = "no such job (not queued)",
	[PG_FINISHED] = "no such job",
};

struct pg_store {
	struct store base;
	PGconn *conn;
	char shown[256]; /* "postgresql://user@host/db", for log lines: never a password */
	char *why;       /* while opening: the first failure goes here (store_open_why) */
	size_t why_size;
	/* The server gone: said once (down), then tried again after backoff_ms
	 * (doubling to PG_RETRY_MAX_MS) until a new connection has its session
	 * set up again (and the writer lock, when this store held it). */
	int down, writer, in_batch;
	int refused_said; /* "connected again, but": once until connected */
	uint64_t next_try_ms, backoff_ms;
	/* A statement of the batch failed: the server ended the transaction,
	 * so the rest are not sent (one line for the batch, not one a row). */
	int batch_failed;
	/* The last failure may pass by itself (the server gone, shutting
	 * down, read-only, out of space): the batch can be tried again. */
	int unavailable;
	/* A batch's writes go out in one pipeline (libpq's pipeline mode):
	 * their answers are read at the commit, or before a statement whose
	 * answer is needed at once, or every PG_PIPE_MAX statements. */
	int piped, durable;
	int committed; /* the batch's COMMIT was answered COMMIT */
	/* Read from the event loop: a connection is made again without
	 * waiting (store_set_on_loop); resetting since reset_started_ms. */
	int on_loop, resetting;
	uint64_t reset_started_ms;
	struct pg_sent *sent;
	size_t n_sent;
};

/* A statement in the pipeline whose answer is not read yet. */
struct pg_sent {
	int st;           /* an enum pg_stmt, or PG_STMT_COUNT for BEGIN, SET, COMMIT */
	const char *what; /* for its line */
	char id[UTIL_ID_LEN + 1];
};
/* Bounds what both sides hold before the answers are read. */
#define PG_PIPE_MAX 256

#define PG_RETRY_MIN_MS 500
#define PG_RETRY_MAX_MS 10000

static struct pg_store *pg(struct store *base) { return (struct pg_store *)base; }

/* A failure: logged, or while opening for store_open_why, its cause kept. */
#define say(s, ...) store__say((s)->shown, (s)->why, (s)->why_size, __VA_ARGS__)

/* The server's message, on one line. */
static const char *pg_error(struct pg_store *s, const PGresult *res)
{
	static __thread char line[256];
	const char *m = res ? PQresultErrorMessage(res) : NULL;
	size_t n;

	if (m == NULL || *m == '\0')
		m = PQerrorMessage(s->conn);
	snprintf(line, sizeof(line), "%s", m && *m ? m : "unknown error");
	n = strcspn(line, "\n");
	line[n] = '\0';
	return line;
}

/* The connection is gone: said once, and tried again after a backoff. */
static void gone(struct pg_store *s, const PGresult *res)
{
	if (s->down)
		return;
	say(s, "lost the connection (%s); the writes until it is back fail", pg_error(s, res));
	s->down = 1;
	s->backoff_ms = PG_RETRY_MIN_MS;
	s->next_try_ms = util_mono_ms() + s->backoff_ms;
}

/* Whether the connection is gone (said once). A server that ends the
 * session (57P0x: shut down, terminated; 08: connection) has, though libpq
 * may not have read the end of it yet (a pipeline's answer). */
static int lost(struct pg_store *s, const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (PQstatus(s->conn) == CONNECTION_OK &&
	    !(st && (strncmp(st, "57P0", 4) == 0 || strncmp(st, "08", 2) == 0)))
		return 0;
	gone(s, res);
	return 1;
}

/* Whether a failure may pass by itself (SQLSTATE classes 08 connection,
 * 53 resources, 57P0x shutting down, 25006 read-only, 40 a conflict): the
 * same writes can be tried again later. */
static int passing(const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (st == NULL)
		return 1; /* no answer from the server at all */
	return strncmp(st, "08", 2) == 0 || strncmp(st, "53", 2) == 0 || strncmp(st, "57P0", 4) == 0 ||
	       strcmp(st, "25006") == 0 || strncmp(st, "40", 2) == 0;
}

/* A statement failed: the batch with it, and whether it may pass. Returns
 * whether the connection is gone (lost() said so once). */
static int failed(struct pg_store *s, const PGresult *res)
{
	int gone = lost(s, res);

	if (s->in_batch)
		s->batch_failed = 1;
	s->unavailable = gone || passing(res);
	return gone;
}

/* A statement without parameters or rows (schema, transactions). */
static int exec(struct pg_store *s, const char *sql, const char *what)
{
	PGresult *res = PQexec(s->conn, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok && !failed(s, res) && what)
		say(s, "%s: %s", what, pg_error(s, res));
	PQclear(res);
	return ok ? 0 : -EIO;
}

static int session(struct pg_store *s);
static int take_writer_lock(struct pg_store *s, char *msg, size_t msg_size);

/* How long a connection made again without waiting may take. */
#define PG_RESET_MAX_MS 5000

/*
 * For a store read from the event loop: the connection made again as far
 * as it goes without waiting (PQresetStart, then PQresetPoll while its
 * socket is ready at once). 1 when it is made, 0 while under way, -1 when
 * it failed or took more than PG_RESET_MAX_MS.
 */
static int reset_step(struct pg_store *s)
{
	if (!s->resetting) {
		if (!PQresetStart(s->conn))
			return -1;
		s->resetting = 1;
		s->reset_started_ms = util_mono_ms();
	}
	for (;;) {
		PostgresPollingStatusType st = PQresetPoll(s->conn);
		struct pollfd p = {.fd = PQsocket(s->conn)};

		if (st == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED) {
			s->resetting = 0;
			return st == PGRES_POLLING_OK ? 1 : -1;
		}
		p.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if (p.fd < 0 || poll(&p, 1, 0) <= 0) {
			if (util_mono_ms() - s->reset_started_ms <= PG_RESET_MAX_MS)
				return 0;
			s->resetting = 0;
			return -1;
		}
	}
}

/* Outside a batch: a lost connection is made again, once its backoff has
 * passed. 0 when the store can be used now, else -EIO (nothing said: the
 * loss was). */
static int ensure(struct pg_store *s)
{
	char msg[1024];
	int made = 1;

	if (PQstatus(s->conn) == CONNECTION_OK && !s->down)
		return 0;
	gone(s, NULL); /* unless said already */
	s->unavailable = 1;
	if (s->in_batch || (!s->resetting && util_mono_ms() < s->next_try_ms))
		return -EIO;
	if (s->on_loop)
		made = reset_step(s);
	else
		PQreset(s->conn);
	if (made == 0)
		return -EIO; /* under way: the next call goes on */
	/* A pipeline cut short by the loss is not the new connection's. */
	if (PQpipelineStatus(s->conn) == PQ_PIPELINE_OFF || PQexitPipelineMode(s->conn))
		s->piped = 0;
	s->n_sent = 0;
	msg[0] = '\0';
	if (made < 0 || PQstatus(s->conn) != CONNECTION_OK || session(s) < 0 ||
	    (s->writer && take_writer_lock(s, msg, sizeof(msg)) < 0)) {
		/* connected, but another cgiq writes the database now, or it
		 * only reads: said once, not at every try */
		if (msg[0] != '\0' && !s->refused_said)
			log_warnx("store %s: connected again, but %s", s->shown, msg);
		s->refused_said |= msg[0] != '\0';
		if (s->backoff_ms < PG_RETRY_MAX_MS)
			s->backoff_ms *= 2;
		s->next_try_ms = util_mono_ms() + s->backoff_ms;
		return -EIO;
	}
	s->down = 0;
	s->refused_said = 0;
	log_info("store %s: connected again", s->shown);
	return 0;
}

/* ---------------- parameters ---------------- */

/* Up to 26 parameters, as text (bytea ones as binary), NULL for unknown. */
#define PG_PARAMS_MAX 26
struct params {
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	char num[PG_PARAMS_MAX][24];
	char *fixed[PG_PARAMS_MAX]; /* copies made valid UTF-8, freed by run() */
	int n;
};

/* Text as the server takes it: a database's text is UTF-8, and one byte
 * that is not (a raw request-target, a program's progress line) would fail
 * the statement and the batch with it. Such a byte is U+FFFD, as in the
 * JSON cgiq serves. */
static void p_text(struct params *p, const char *v)
{
	p->fixed[p->n] = v ? util_utf8_fixed(v) : NULL;
	p->v[p->n] = p->fixed[p->n] ? p->fixed[p->n] : v;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

/* An integer; negative (unknown) is NULL. */
static void p_int(struct params *p, int64_t v)
{
	if (v < 0) {
		p_text(p, NULL);
		return;
	}
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
	p->fixed[p->n] = NULL;
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

/* A time in µs; 0 (not yet) is NULL. */
static void p_time(struct params *p, int64_t us) { p_int(p, us > 0 ? us : -1); }

static void p_bytes(struct params *p, const char *v, size_t len)
{
	p->fixed[p->n] = NULL;
	p->v[p->n] = v;
	p->len[p->n] = (int)len;
	p->fmt[p->n++] = 1;
}

/* The copies p_text made, once the parameters are sent (p may be NULL). */
static void p_release(struct params *p)
{
	for (int i = 0; p && i < p->n; i++)
		free(p->fixed[i]);
}

/* How a job ended: finished_at, exit_code, term_signal, http_status,
 * bytes_out, processing_sent, stderr_tail, reason, result_path,
 * result_head, expires_at. */
static void p_outcome(struct params *p, const struct store_job *j)
{
	p_time(p, j->finished_at_us);
	p_int(p, j->exit_code);
	p_int(p, j->term_signal);
	p_int(p, j->http_status);
	p_int(p, j->bytes_out);
	p_int(p, j->processing_sent);
	p_bytes(p, j->stderr_tail, j->stderr_tail ? strlen(j->stderr_tail) : 0);
	p_text(p, j->reason);
	p_text(p, j->result_path);
	p_bytes(p, j->result_head, j->result_head ? strlen(j->result_head) : 0);
	p_time(p, j->expires_at_us);
}

/* A statement failed: one line, unless it was the connection's loss
 * (said once). */
static void failure(struct pg_store *s, const PGresult *res, const char *what, const char *id)
{
	if (failed(s, res))
		return;
	if (id)
		say(s, "%s: %s (job %s)", what, pg_error(s, res), id);
	else
		say(s, "%s: %s", what, pg_error(s, res));
}

/* A write's answer: 0; -EEXIST or -ENOENT (a line) when it had to touch a
 * row and touched none (pg_none); -EIO after a failure (a line, but for
 * the statements after a pipeline's first failure: the server did not run
 * them). */
static int answer(struct pg_store *s, int st, const char *what, const char *id, PGresult *res)
{
	ExecStatusType t = PQresultStatus(res);

	if (t == PGRES_PIPELINE_ABORTED) {
		s->batch_failed = 1;
		return -EIO;
	}
	if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
		failure(s, res, what, id);
		return -EIO;
	}
	if (st < PG_STMT_COUNT && pg_none[st] && strcmp(PQcmdTuples(res), "0") == 0) {
		log_warnx("store %s: %s: %s (job %s)", s->shown, what, pg_none[st], id ? id : "-");
		return st == PG_INSERT ? -EEXIST : -ENOENT;
	}
	return 0;
}

/* Reads the answers to what the pipeline holds, up to a sync sent now;
 * the pipeline stays open. A failure fails the batch. */
static void pipe_sync(struct pg_store *s)
{
	PGresult *res;
	size_t i = 0;

	if (!s->piped || s->n_sent == 0)
		return;
	if (PQpipelineSync(s->conn)) {
		for (; i < s->n_sent; i++) {
			struct pg_sent *q = &s->sent[i];
			if ((res = PQgetResult(s->conn)) == NULL)
				break; /* the connection is gone */
			answer(s, q->st, q->what, q->id[0] ? q->id : NULL, res);
			/* A COMMIT of a failed transaction is answered ROLLBACK,
			 * without an error: not written. Answered COMMIT, the
			 * batch is written, whatever comes after (the server may
			 * end the session before the sync's answer). */
			if (q->st == PG_STMT_COUNT && strcmp(q->what, "COMMIT") == 0 &&
			    PQresultStatus(res) == PGRES_COMMAND_OK) {
				if (strcmp(PQcmdStatus(res), "COMMIT") == 0)
					s->committed = 1;
				else
					s->batch_failed = 1;
			}
			PQclear(res);
			while ((res = PQgetResult(s->conn)) != NULL) /* the end of its answer */
				PQclear(res);
		}
		if (i == s->n_sent && (res = PQgetResult(s->conn)) != NULL)
			PQclear(res); /* the sync's */
	}
	if (i < s->n_sent) {
		failure(s, NULL, "a batch's answers", NULL);
		s->batch_failed = 1;
	}
	s->n_sent = 0;
}

/* The pipeline's answers read, and the connection out of pipeline mode:
 * for a statement whose answer is needed at once. */
static void unpipe(struct pg_store *s)
{
	PGresult *res;

	if (!s->piped)
		return;
	pipe_sync(s);
	/* What is left after a failure (the end of a session the server cut
	 * short) is read away; a connection that still cannot leave pipeline
	 * mode is as good as lost: a new one (ensure) starts without. */
	for (int i = 0; i < 16 && !PQexitPipelineMode(s->conn) && (res = PQgetResult(s->conn)) != NULL; i++)
		PQclear(res);
	if (PQexitPipelineMode(s->conn))
		s->piped = 0;
	else
		gone(s, NULL);
}

/* Sends a statement of the batch down the pipeline (st, with p; or sql
 * without parameters when st is PG_STMT_COUNT): 0, or -EIO when the batch
 * has failed already or it cannot be sent. Its answer is read later. */
static int pipe_send(struct pg_store *s, int st, struct params *p, const char *sql, const char *what, const char *id)
{
	char name[16];
	int ok = 0;

	if (!s->batch_failed && !s->piped && PQenterPipelineMode(s->conn))
		s->piped = 1;
	if (!s->batch_failed && s->piped) {
		snprintf(name, sizeof(name), "cgiq%d", st);
		ok = st < PG_STMT_COUNT
		         ? PQsendQueryPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 0)
		         : PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
		if (!ok)
			failure(s, NULL, what, id);
	}
	p_release(p);
	if (!ok) {
		s->batch_failed = 1;
		return -EIO;
	}
	if (s->sent == NULL) /* never more: answers are read at PG_PIPE_MAX */
		s->sent = util_xcalloc(PG_PIPE_MAX, sizeof(*s->sent));
	s->sent[s->n_sent].st = st;
	s->sent[s->n_sent].what = what;
	snprintf(s->sent[s->n_sent].id, sizeof(s->sent[0].id), "%s", id ? id : "");
	if (++s->n_sent == PG_PIPE_MAX)
		pipe_sync(s);
	return 0;
}

/* Runs prepared statement st with p and waits for its answer: the result,
 * or NULL after a line. */
static PGresult *run(struct pg_store *s, enum pg_stmt st, struct params *p, const char *what, const char *id)
{
	char name[16];
	PGresult *res = NULL;
	/* The server ended the transaction at its first failure; a server
	 * that is gone was said when it went. */
	int skip;

	unpipe(s);
	skip = (s->in_batch && s->batch_failed) || ensure(s) < 0;
	if (skip) {
		s->batch_failed = s->in_batch;
	} else {
		snprintf(name, sizeof(name), "cgiq%d", (int)st);
		res = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
		                     p ? p->fmt : NULL, 0);
	}
	p_release(p);
	if (skip)
		return NULL;
	if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	failure(s, res, what, id);
	PQclear(res);
	return NULL;
}

/* A statement that returns no rows: 0, or -EIO; *changed: rows it touched. */
static int run_changed(struct pg_store *s, enum pg_stmt st, struct params *p, const char *what, const char *id,
                       long *changed)
{
	PGresult *res = run(s, st, p, what, id);

	if (res == NULL)
		return -EIO;
	if (changed)
		*changed = atol(PQcmdTuples(res));
	PQclear(res);
	return 0;
}

/* A write: in a batch down its pipeline (0 now, its answer at the commit,
 * where a failure fails the batch), else at once (its answer). */
static int write_row(struct pg_store *s, enum pg_stmt st, struct params *p, const char *what, const char *id)
{
	PGresult *res;
	int r;

	if (s->in_batch)
		return pipe_send(s, (int)st, p, NULL, what, id);
	res = run(s, st, p, what, id);
	if (res == NULL)
		return -EIO;
	r = answer(s, (int)st, what, id, res);
	PQclear(res);
	return r;
}

/* ---------------- rows ---------------- */

static char *col_str(const PGresult *res, int row, int c)
{
	return PQgetisnull(res, row, c) ? NULL : util_xstrdup(PQgetvalue(res, row, c));
}

/* A bytea column (text format, hex), NUL-terminated; *len its length. */
static char *col_bytes(const PGresult *res, int row, int c, size_t *len)
{
	unsigned char *raw;
	size_t n = 0;
	char *p;

	if (PQgetisnull(res, row, c)) {
		if (len)
			*len = 0;
		return NULL;
	}
	raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, c), &n);
	p = util_xmalloc(n + 1);
	if (raw && n)
		memcpy(p, raw, n);
	p[n] = '\0';
	PQfreemem(raw);
	if (len)
		*len = n;
	return p;
}

static int64_t col_int(const PGresult *res, int row, int c, int64_t unknown)
{
	return PQgetisnull(res, row, c) ? unknown : strtoll(PQgetvalue(res, row, c), NULL, 10);
}

static int read_row(struct pg_store *s, const PGresult *res, int row, struct store_job *j)
{
	const char *state = PQgetvalue(res, row, 1);

	store_job_init(j);
	snprintf(j->id, sizeof(j->id), "%s", PQgetvalue(res, row, 0));
	if (store_state_parse(state, &j->state) < 0) {
		say(s, "unknown state \"%s\" (job %s)", state, j->id);
		return -EIO;
	}
	j->script = col_str(res, row, 2);
	j->method = col_str(res, row, 3);
	j->uri = col_str(res, row, 4);
	j->peer = col_str(res, row, 5);
	j->created_at_us = col_int(res, row, 6, 0);
	j->started_at_us = col_int(res, row, 7, 0);
	j->finished_at_us = col_int(res, row, 8, 0);
	j->pid = col_int(res, row, 9, -1);
	j->exit_code = col_int(res, row, 10, -1);
	j->term_signal = col_int(res, row, 11, -1);
	j->http_status = col_int(res, row, 12, -1);
	j->bytes_in = col_int(res, row, 13, -1);
	j->bytes_out = col_int(res, row, 14, -1);
	j->processing_sent = col_int(res, row, 15, -1);
	j->stderr_tail = col_bytes(res, row, 16, NULL);
	j->reason = col_str(res, row, 17);
	j->async = (int)col_int(res, row, 18, 0);
	j->env = col_bytes(res, row, 19, &j->env_len);
	j->cwd = col_str(res, row, 20);
	j->body_path = col_str(res, row, 21);
	j->result_path = col_str(res, row, 22);
	j->result_head = col_bytes(res, row, 23, NULL);
	j->expires_at_us = col_int(res, row, 24, 0);
	j->progress_done = col_int(res, row, 25, -1);
	j->progress_total = col_int(res, row, 26, -1);
	j->progress_text = col_str(res, row, 27);
	j->queue_position = col_int(res, row, 28, -1);
	j->node = col_str(res, row, 29);
	return 0;
}

/* cb for each row of res until it returns non-zero. */
static int each_row(struct pg_store *s, PGresult *res, int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	struct store_job j;
	int r = 0;

	for (int i = 0; i < PQntuples(res) && r == 0; i++) {
		r = read_row(s, res, i, &j);
		if (r == 0)
			r = cb(&j, ud);
		store_job_clear(&j);
	}
	PQclear(res);
	return r;
}

/* ---------------- opening ---------------- */

/* "postgresql://user@host/db" from the connection's own settings. */
static void show(struct pg_store *s)
{
	const char *host = PQhost(s->conn), *user = PQuser(s->conn), *db = PQdb(s->conn);

	snprintf(s->shown, sizeof(s->shown), "postgresql://%s@%s/%s", user ? user : "", host && *host != '/' ? host : "",
	         db ? db : "");
	if (host && *host == '/')
		snprintf(s->shown + strlen(s->shown), sizeof(s->shown) - strlen(s->shown), "?host=%s", host);
}

/* The schema's version (a read, which a read-only database, a standby,
 * allows), or -1 when it cannot be read (said when loud: the table is
 * expected). */
static int schema_version(struct pg_store *s, int loud)
{
	PGresult *res = PQexec(s->conn, "SELECT version FROM cgiq_schema");
	int v = -1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		v = atoi(PQgetvalue(res, 0, 0));
	else if (loud)
		say(s, "reading the schema version: %s", pg_error(s, res));
	PQclear(res);
	return v;
}

/* The schema to PG_SCHEMA_VERSION, under the advisory lock: a second
 * process starting at the same time waits, then finds it current. */
static int migrate(struct pg_store *s)
{
	char sql[96];
	int version = schema_version(s, 0), r;

	/* Current already (the usual case): nothing to write, no lock. */
	if (version == PG_SCHEMA_VERSION)
		return 0;
	if (exec(s, "SELECT pg_advisory_lock(" PG_SCHEMA_LOCK ")", "taking the schema lock") < 0)
		return -EIO;
	r = exec(s, "CREATE TABLE IF NOT EXISTS cgiq_schema (version integer NOT NULL);"
	            "INSERT INTO cgiq_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM cgiq_schema)",
	         "creating the schema table");
	if (r == 0 && (version = schema_version(s, 1)) < 0)
		r = -EIO;
	if (r == 0 && version > PG_SCHEMA_VERSION) {
		say(s, "schema version %d is not supported (newest known: %d): a newer cgiq made it", version,
		    PG_SCHEMA_VERSION);
		r = -EPROTO;
	}
	for (; r == 0 && version < PG_SCHEMA_VERSION; version++) {
		r = exec(s, "BEGIN", "migrating");
		if (r == 0)
			r = exec(s, pg_migrations[version], "migrating");
		snprintf(sql, sizeof(sql), "UPDATE cgiq_schema SET version = %d", version + 1);
		if (r == 0)
			r = exec(s, sql, "migrating");
		if (r == 0)
			r = exec(s, "COMMIT", "migrating");
		if (r < 0)
			exec(s, "ROLLBACK", NULL);
	}
	exec(s, "SELECT pg_advisory_unlock(" PG_SCHEMA_LOCK ")", NULL);
	return r;
}

static const struct store_ops pg_ops;

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void pg_close(struct store *base)
{
	struct pg_store *s = pg(base);

	PQfinish(s->conn);
	free(s->sent);
	free(s);
}

/* What a connection needs, at the open and after a reconnection: times in
 * UTC, every statement prepared. */
static int session(struct pg_store *s)
{
	/* Times are read and written in µs since the epoch, whatever the
	 * session's zone; a row's text says what it is. */
	int r = exec(s, s->on_loop ? "SET TIME ZONE 'UTC'; SET client_encoding TO 'UTF8'; SET statement_timeout = '5s'"
	                           : "SET TIME ZONE 'UTC'; SET client_encoding TO 'UTF8'",
	             "setting the session");

	for (int i = 0; r == 0 && i < PG_STMT_COUNT; i++) {
		char name[16];
		PGresult *res;
		snprintf(name, sizeof(name), "cgiq%d", i);
		res = PQprepare(s->conn, name, pg_sql[i], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (!lost(s, res))
				say(s, "preparing %s: %s", pg_sql[i], pg_error(s, res));
			r = -EIO;
		}
		PQclear(res);
	}
	return r;
}

int store_pg_open(const char *conninfo, struct store **out, char *why, size_t why_size)
{
	struct pg_store *s = util_xcalloc(1, sizeof(*s));
	int r = 0;

	s->base.ops = &pg_ops;
	snprintf(s->shown, sizeof(s->shown), "postgresql");
	if (why != NULL && why_size > 0) {
		why[0] = '\0';
		s->why = why;
		s->why_size = why_size;
	}
	{
		/* libpq's messages on a string it cannot parse quote it */
		char msg[256];
		if (store_pg_check(conninfo, msg, sizeof(msg)) < 0) {
			say(s, "%s", msg);
			s->conn = NULL;
			r = -EINVAL;
			goto out;
		}
	}
	{
		/* A server that does not answer must not hold the caller: 5 s to
		 * connect, 5 s for what is sent to be acknowledged (TCP), a
		 * silent peer found by keepalives within a minute; unless the
		 * connection string says otherwise (it comes later, and wins). */
		const char *const keys[] = {"connect_timeout", "tcp_user_timeout", "keepalives_idle", "keepalives_interval",
		                            "keepalives_count", "dbname", NULL};
		const char *const values[] = {"5", "5000", "30", "10", "3", conninfo, NULL};
		s->conn = PQconnectdbParams(keys, values, 1);
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		say(s, "connecting: %s", pg_error(s, NULL));
		r = -EIO;
		goto out;
	}
	show(s);
	/* The server's notices ("already exists, skipping") are not news. */
	PQsetNoticeProcessor(s->conn, quiet, NULL);
	r = migrate(s);
	if (r == 0)
		r = session(s);
out:
	s->why = NULL;
	if (r < 0) {
		pg_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

/* ---------------- the operations ---------------- */

static int pg_in_transaction(struct pg_store *s) { return PQtransactionStatus(s->conn) != PQTRANS_IDLE; }

/* -EAGAIN for a failure that may pass (the batch can be tried again: the
 * server refused it for now, or the connection went), else -EIO. */
static int why_failed(struct pg_store *s)
{
	return s->unavailable || s->down || PQstatus(s->conn) != CONNECTION_OK ? -EAGAIN : -EIO;
}

static int pg_begin(struct store *base)
{
	struct pg_store *s = pg(base);

	s->unavailable = 0;
	if (ensure(s) < 0)
		return why_failed(s);
	s->in_batch = 1;
	s->batch_failed = 0;
	s->committed = 0;
	/* Durable or not, for this transaction only. */
	if (pipe_send(s, PG_STMT_COUNT, NULL, "BEGIN", "BEGIN", NULL) < 0 ||
	    pipe_send(s, PG_STMT_COUNT, NULL,
	              s->durable ? "SET LOCAL synchronous_commit TO on" : "SET LOCAL synchronous_commit TO off",
	              "setting synchronous_commit", NULL) < 0) {
		unpipe(s);
		s->in_batch = 0;
		return why_failed(s);
	}
	return 0;
}

static int pg_rollback(struct store *base)
{
	struct pg_store *s = pg(base);

	unpipe(s);
	s->in_batch = 0;
	return pg_in_transaction(s) && PQstatus(s->conn) == CONNECTION_OK ? exec(s, "ROLLBACK", "ROLLBACK") : 0;
}

/* The batch's pipeline ends with its COMMIT: one round trip for the batch
 * (PG_PIPE_MAX statements a round trip, for a big one). */
static int pg_commit(struct store *base)
{
	struct pg_store *s = pg(base);
	int r;

	if (!s->in_batch)
		return -EIO;
	pipe_send(s, PG_STMT_COUNT, NULL, "COMMIT", "COMMIT", NULL);
	unpipe(s);
	s->in_batch = 0;
	if (s->committed)
		return 0;
	r = s->batch_failed ? why_failed(s) : -EIO;
	pg_rollback(base);
	return r;
}

static int pg_probe_write(struct store *base)
{
	struct pg_store *s = pg(base);
	PGresult *res;
	int ok;

	if (ensure(s) < 0)
		return -EIO;
	res = PQexec(s->conn, "BEGIN; UPDATE cgiq_schema SET version = version; COMMIT");
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	if (!ok && pg_in_transaction(s))
		exec(s, "ROLLBACK", NULL);
	return ok ? 0 : -EIO;
}

/* Said at the next store_begin, for its transaction (SET LOCAL). */
static int pg_set_durable(struct store *base, int on)
{
	pg(base)->durable = on;
	return 0;
}

static int pg_job_insert(struct store *base, const struct store_job *j)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};

	p_text(&p, j->id);
	p_text(&p, store_state_name(j->state));
	p_text(&p, j->script);
	p_text(&p, j->method);
	p_text(&p, j->uri);
	p_text(&p, j->peer);
	p_time(&p, j->created_at_us);
	p_int(&p, j->bytes_in);
	p_int(&p, j->pid);
	p_time(&p, j->started_at_us);
	p_text(&p, j->async ? "1" : "0");
	p_bytes(&p, j->env, j->env_len);
	p_text(&p, j->cwd);
	p_text(&p, j->body_path);
	p_outcome(&p, j);
	p_text(&p, s->base.node[0] ? s->base.node : NULL);
	return write_row(s, PG_INSERT, &p, "inserting", j->id);
}

static int pg_job_started(struct store *base, const char *id, int64_t pid, int64_t started_at_us)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};

	p_text(&p, id);
	p_int(&p, pid);
	p_time(&p, started_at_us);
	p_text(&p, s->base.node[0] ? s->base.node : NULL);
	return write_row(s, PG_STARTED, &p, "marking started", id);
}

static int pg_job_finished(struct store *base, const struct store_job *j)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};

	p_text(&p, j->id);
	p_text(&p, store_state_name(j->state));
	p_outcome(&p, j);
	return write_row(s, PG_FINISHED, &p, "marking finished", j->id);
}

static int pg_job_get(struct store *base, const char *id, struct store_job *out)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};
	PGresult *res;
	int r;

	p_text(&p, id);
	res = run(s, PG_GET, &p, "reading", id);
	if (res == NULL)
		return -EIO;
	r = PQntuples(res) == 1 ? read_row(s, res, 0, out) : -ENOENT;
	PQclear(res);
	return r;
}

static int pg_jobs_list(struct store *base, const enum store_state *state, unsigned limit,
                        int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};
	PGresult *res;

	if (limit)
		p_int(&p, (int64_t)limit);
	else
		p_text(&p, NULL); /* LIMIT NULL: no limit */
	if (state)
		p_text(&p, store_state_name(*state));
	res = run(s, state ? PG_LIST_STATE : PG_LIST, &p, "listing", NULL);
	return res ? each_row(s, res, cb, ud) : -EIO;
}

static int pg_jobs_queued_async(struct store *base, int (*cb)(const struct store_job *j, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	PGresult *res = run(s, PG_QUEUED_ASYNC, NULL, "listing queued jobs", NULL);

	return res ? each_row(s, res, cb, ud) : -EIO;
}

static int pg_recover(struct store *base, const char *reason, int64_t keep_us,
                      void (*cb)(const char *id, int64_t pid, int64_t started_at_us, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	int own = !s->in_batch; /* else the caller's batch */
	struct params p = {.n = 0};
	PGresult *res;
	long changed = 0;
	int r = 0;

	if (own && (r = pg_begin(base)) < 0)
		return r;
	res = run(s, PG_RECOVER_PIDS, NULL, "recovery: listing unfinished jobs", NULL);
	if (res == NULL) {
		r = -EIO;
		goto out;
	}
	for (int i = 0; cb != NULL && i < PQntuples(res); i++)
		cb(PQgetvalue(res, i, 2), col_int(res, i, 0, -1), col_int(res, i, 1, 0), ud);
	PQclear(res);
	p_text(&p, reason);
	p_int(&p, util_now_us());
	p_int(&p, keep_us);
	r = run_changed(s, PG_RECOVER, &p, "recovery: marking jobs interrupted", NULL, &changed);
	if (r == 0)
		r = (int)changed;
	if (r >= 0 && own) {
		int c = pg_commit(base);
		if (c < 0)
			r = c;
	}
out:
	if (r < 0 && own)
		pg_rollback(base);
	return r;
}

static int pg_job_requeue(struct store *base, const char *id, int max_attempts)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};
	long changed = 0;
	int r;

	p_text(&p, id);
	p_int(&p, max_attempts);
	r = run_changed(s, PG_REQUEUE, &p, "re-queueing an interrupted job", id, &changed);
	return r == 0 && changed == 0 ? -ENOENT : r;
}

static int pg_job_progress(struct store *base, const char *id, int64_t done, int64_t total, const char *text)
{
	struct params p = {.n = 0};

	p_text(&p, id);
	p_int(&p, done);
	p_int(&p, total);
	p_text(&p, text);
	return write_row(pg(base), PG_PROGRESS, &p, "recording progress", id);
}

static int pg_job_expire_at(struct store *base, const char *id, int64_t expires_at_us)
{
	struct params p = {.n = 0};

	p_text(&p, id);
	p_time(&p, expires_at_us);
	return write_row(pg(base), PG_EXPIRE_AT, &p, "setting expiry", id);
}

static int pg_job_forget(struct store *base, const char *id)
{
	struct params p = {.n = 0};

	p_text(&p, id);
	return write_row(pg(base), PG_FORGET, &p, "forgetting a refused job", id);
}

static int pg_expire(struct store *base, int64_t now_us,
                     void (*cb)(const char *result_path, const char *body_path, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};
	PGresult *res;
	int n;

	p_time(&p, now_us);
	res = run(s, PG_EXPIRED, &p, "deleting expired jobs", NULL);
	if (res == NULL)
		return -EIO;
	n = PQntuples(res);
	for (int i = 0; cb != NULL && i < n; i++)
		cb(PQgetisnull(res, i, 0) ? NULL : PQgetvalue(res, i, 0), PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1),
		   ud);
	PQclear(res);
	return n;
}

static int pg_results_newest(struct store *base, int64_t now_us,
                             int (*cb)(const char *id, const char *result_path, int64_t bytes, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	struct params p = {.n = 0};
	PGresult *res;
	int r = 0;

	p_time(&p, now_us);
	res = run(s, PG_RESULTS_NEWEST, &p, "listing kept results", NULL);
	if (res == NULL)
		return -EIO;
	for (int i = 0; i < PQntuples(res) && r == 0; i++)
		r = cb(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), col_int(res, i, 2, 0), ud);
	PQclear(res);
	return r;
}

static int pg_job_request_cancel(struct store *base, const char *id)
{
	struct params p = {.n = 0};
	long changed = 0;
	int r;

	p_text(&p, id);
	r = run_changed(pg(base), PG_REQUEST_CANCEL, &p, "requesting cancellation", id, &changed);
	return r == 0 && changed == 0 ? -ENOENT : r;
}

static int pg_jobs_cancel_requested(struct store *base, void (*cb)(const char *id, void *ud), void *ud)
{
	struct pg_store *s = pg(base);
	PGresult *res = run(s, PG_CANCEL_REQUESTED, NULL, "listing cancellation requests", NULL);

	if (res == NULL)
		return -EIO;
	for (int i = 0; i < PQntuples(res); i++)
		cb(PQgetvalue(res, i, 0), ud);
	PQclear(res);
	return 0;
}

/* On the loop, no statement waits long on the server either (a lock held
 * by a migration, say): 5 s at most, for this session and the next. */
static void pg_set_on_loop(struct store *base)
{
	struct pg_store *s = pg(base);

	s->on_loop = 1;
	exec(s, "SET statement_timeout = '5s'", "setting statement_timeout");
}

static int pg_lock_writer(struct store *base, char *msg, size_t msg_size)
{
	struct pg_store *s = pg(base);
	int r = take_writer_lock(s, msg, msg_size);

	s->writer = r == 0;
	return r;
}

/* The writer lock, for this session (a new connection takes it again). */
static int take_writer_lock(struct pg_store *s, char *msg, size_t msg_size)
{
	PGresult *res = PQexec(s->conn, "SELECT pg_try_advisory_lock(" PG_WRITER_LOCK ")");
	int r = -EIO;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		snprintf(msg, msg_size, "taking the writer lock of %s: %s", s->shown, pg_error(s, res));
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		snprintf(msg, msg_size,
		         "the job database %s is in use by another cgiq (a session holds its writer lock); "
		         "two daemons never write one database",
		         s->shown);
	else
		r = 0;
	if (r == -EIO && PQresultStatus(res) == PGRES_TUPLES_OK)
		r = -EBUSY;
	PQclear(res);
	/* A database that only reads (a standby, default_transaction_read_only)
	 * would lose every row: refused at the start, as an SQLite file cgiq
	 * may not write is. */
	if (r == 0) {
		res = PQexec(s->conn, "BEGIN; UPDATE cgiq_schema SET version = version; COMMIT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			snprintf(msg, msg_size, "the job database %s does not take writes: %s", s->shown, pg_error(s, res));
			r = -EROFS;
			if (pg_in_transaction(s))
				exec(s, "ROLLBACK", NULL);
		}
		PQclear(res);
	}
	return r;
}

/* libpq's word on a connection string it cannot parse, without what it
 * quotes of it ("invalid percent-encoded token: "pass%zz"" may quote a
 * password): up to its first colon or quote. */
static void parse_failure(const char *err, char *out, size_t size)
{
	size_t n = err ? strcspn(err, ":\"\n") : 0;

	while (n > 0 && err[n - 1] == ' ')
		n--;
	snprintf(out, size, "%.*s", (int)n, n ? err : "not a connection string");
}

int store_pg_check(const char *conninfo, char *msg, size_t size)
{
	char *err = NULL, reason[128];
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	int r = 0;

	if (opts == NULL) {
		parse_failure(err, reason, sizeof(reason));
		snprintf(msg, size, "not a connection string libpq can read (%s)", reason);
		r = -EINVAL;
	}
	for (PQconninfoOption *o = opts; o && o->keyword && r == 0; o++)
		if (o->val && strcmp(o->keyword, "port") == 0 && strspn(o->val, "0123456789,") != strlen(o->val)) {
			snprintf(msg, size, "not a connection string libpq can read (port \"%s\" is not a number)", o->val);
			r = -EINVAL;
		}
	PQconninfoFree(opts);
	PQfreemem(err);
	return r;
}

void store_pg_shown(const char *conninfo, char *out, size_t size)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	const char *user = "", *host = "", *port = "", *db = "";

	PQfreemem(err);
	if (opts == NULL) {
		/* Not parsable: nothing of it is shown, it may hold a password
		 * (store_pg_check says what is wrong). */
		snprintf(out, size, "postgresql");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(out, size, "postgresql://%s%s%s%s%s/%s%s%s", user, *user ? "@" : "", *host == '/' ? "" : host,
	         *port ? ":" : "", port, db, *host == '/' ? "?host=" : "", *host == '/' ? host : "");
	PQconninfoFree(opts);
}

static const struct store_ops pg_ops = {
	.lock_writer = pg_lock_writer,
	.set_on_loop = pg_set_on_loop,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.probe_write = pg_probe_write,
	.set_durable = pg_set_durable,
	.job_insert = pg_job_insert,
	.job_started = pg_job_started,
	.job_finished = pg_job_finished,
	.progress = pg_job_progress,
	.job_expire_at = pg_job_expire_at,
	.job_forget = pg_job_forget,
	.job_requeue = pg_job_requeue,
	.job_request_cancel = pg_job_request_cancel,
	.job_get = pg_job_get,
	.jobs_list = pg_jobs_list,
	.jobs_queued_async = pg_jobs_queued_async,
	.jobs_cancel_requested = pg_jobs_cancel_requested,
	.recover = pg_recover,
	.expire = pg_expire,
	.results_newest = pg_results_newest,
};
