/*
 * store internals: the operations a backend implements. store.c checks and
 * dispatches; a backend is one file (sqlite.c) that fills a struct store_ops
 * and returns a struct store whose first member is the base below. A second
 * backend (PostgreSQL) is one more such file and a line in store.c; nothing
 * above the store changes.
 */
#ifndef CGIQ_STORE_INTERNAL_H
#define CGIQ_STORE_INTERNAL_H

#include "store.h"

/* Each as the public function of the same name in store.h. */
struct store_ops {
	void (*close)(struct store *s);
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	int (*rollback)(struct store *s);
	int (*probe_write)(struct store *s);
	int (*set_durable)(struct store *s, int on);
	int (*job_insert)(struct store *s, const struct store_job *j);
	int (*job_started)(struct store *s, const char *id, int64_t pid, int64_t started_at_us);
	int (*job_finished)(struct store *s, const struct store_job *j);
	int (*progress)(struct store *s, const char *id, int64_t done, int64_t total, const char *text);
	int (*job_expire_at)(struct store *s, const char *id, int64_t expires_at_us);
	int (*job_forget)(struct store *s, const char *id);
	int (*job_requeue)(struct store *s, const char *id, int max_attempts);
	int (*job_request_cancel)(struct store *s, const char *id);
	int (*job_get)(struct store *s, const char *id, struct store_job *out);
	int (*jobs_list)(struct store *s, const enum store_state *state, unsigned limit,
	                 int (*cb)(const struct store_job *j, void *ud), void *ud);
	int (*jobs_queued_async)(struct store *s, int (*cb)(const struct store_job *j, void *ud), void *ud);
	int (*jobs_cancel_requested)(struct store *s, void (*cb)(const char *id, void *ud), void *ud);
	int (*recover)(struct store *s, const char *reason, int64_t keep_us,
	               void (*cb)(const char *id, int64_t pid, int64_t started_at_us, void *ud), void *ud);
	int (*expire)(struct store *s, int64_t now_us,
	              void (*cb)(const char *result_path, const char *body_path, void *ud), void *ud);
	int (*results_newest)(struct store *s, int64_t now_us,
	                      int (*cb)(const char *id, const char *result_path, int64_t bytes, void *ud), void *ud);
	int (*lock_writer)(struct store *s, char *msg, size_t msg_size); /* NULL: nothing to do */
	void (*set_on_loop)(struct store *s);                             /* NULL: nothing to do */
};

/* What every backend's store starts with. */
struct store {
	const struct store_ops *ops;
	char node[STORE_NODE_MAX + 1]; /* store_set_node; "" = none (NULL in a row) */
};

/* A backend's failure: while it opens for store_open_why (why not NULL),
 * the first one goes to why (what follows is its consequence); else one
 * log line, "store NAME: ...". */
void store__say(const char *name, char *why, size_t why_size, const char *fmt, ...) UTIL_PRINTF(4, 5);

/* The SQLite backend (sqlite.c): path is a file, or ":memory:". */
int store_sqlite_open(const char *path, struct store **out, char *why, size_t why_size);
/* The PostgreSQL backend (postgres.c): conninfo is libpq's. */
int store_pg_open(const char *conninfo, struct store **out, char *why, size_t why_size);
/* conninfo without its password, as "postgresql://user@host:port/db". */
void store_pg_shown(const char *conninfo, char *out, size_t size);
/* Whether libpq can parse conninfo (store_place_check). */
int store_pg_check(const char *conninfo, char *msg, size_t size);

#endif
