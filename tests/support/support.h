/*
 * Test support for integration tests: start the real daemon on a random
 * loopback port, talk to it with raw sockets (exact bytes), wait for events
 * with deadlines, and stop every process by its PID.
 */
#ifndef CGIQ_TEST_SUPPORT_H
#define CGIQ_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How td_start_opts starts the daemon; all zero = td_start's defaults. */
struct td_options {
	int no_allow_root;      /* do not add --allow-root (tests run as root in CI) */
	const char *user;       /* add --user USER and make the temp dir reachable by it */
	long rlimit_nofile;     /* > 0: RLIMIT_NOFILE (soft and hard) of the daemon itself */
};

struct tdaemon {
	pid_t pid;
	struct td_options opts; /* kept for td_restart */
	int port;
	char dir[256];      /* temp dir holding db, spool, log */
	char db[320];
	char log[320];
	char cgi_root[512];
	size_t log_start;   /* log size when the current run started */
};

/* Starts build/cgiq with --listen 127.0.0.1:0 --cgi-root cgi_root (NULL = a
 * fresh temp root populated from examples/cgi-bin and tests/fixtures), a
 * temp db/spool, --allow-root (the tests run as root; see td_options), and
 * the extra arguments (NULL-terminated, may be NULL).
 * Waits (20 s at most) for the "listening on" log line and the line that
 * ends the start ("cgiq VERSION: programs from ..."). Returns 0 or -1. */
int td_start(struct tdaemon *d, const char *cgi_root, const char *const *extra);
/* td_start with options (opts NULL = defaults). */
int td_start_opts(struct tdaemon *d, const char *cgi_root, const char *const *extra,
                  const struct td_options *opts);
/* Same directories and database as a previous td_start (for restarts). */
int td_restart(struct tdaemon *d, const char *const *extra);
/* SIGTERM, wait up to 15 s, then SIGKILL. Returns the exit status or -1. */
int td_stop(struct tdaemon *d);
/* SIGKILL and reap. */
void td_kill9(struct tdaemon *d);
/* Removes the temp dir. */
void td_cleanup(struct tdaemon *d);
/* 1 if the daemon's log contains s. */
int td_log_has(const struct tdaemon *d, const char *s);
/* A whole file, NUL-terminated (malloc'd), or NULL when it cannot be read. */
char *t_slurp(const char *path);
/* 1 when the file at path contains s. */
int t_file_has(const char *path, const char *s);
/* Waits up to timeout_ms for the file at path to contain s; 1 if it did. */
int t_wait_file_has(const char *path, const char *s, int timeout_ms);
/* Waits up to timeout_ms for s to appear in the daemon's log (lines are
 * written by other threads, maybe after the client saw the answer). */
int td_wait_log(const struct tdaemon *d, const char *s, int timeout_ms);

/* Runs the registered CUnit suites verbosely, cleans the registry up, and
 * returns the failure count (tests and suites) for main() to return. */
int t_cunit_run(void);

/* Writes body to DIR/NAME and runs pdfinfo on it: 1 when pdfinfo accepts
 * the file and reports its pages. */
int t_pdfinfo_ok(const char *dir, const char *name, const void *body, size_t len);

/* A connected TCP socket to 127.0.0.1:port (blocking, 10 s receive timeout), or -1. */
int t_connect(int port);
int t_send(int fd, const void *data, size_t len);
int t_send_str(int fd, const char *s);

/* One parsed HTTP response. */
#define T_MAX_INTERIM 64
struct tresp {
	int interim[T_MAX_INTERIM];  /* statuses of 1xx responses in order */
	int interim_count;
	char interim_raw[T_MAX_INTERIM][256]; /* each 1xx response's bytes */
	int status;
	char head[16384];            /* final status line + headers */
	char *body;                  /* malloc'd, body_len bytes (+NUL) */
	size_t body_len;
	int closed;                  /* the server closed the connection after it */
};
/* Reads one response (interims, then final by Content-Length, or until close
 * when there is none). is_head: no body follows. Waits at most timeout_ms.
 * Returns 0, or -1 on timeout / malformed. */
int t_read_response(int fd, struct tresp *r, int is_head, int timeout_ms);
/* Header value (case-insensitive name) from r->head, copied into out; NULL if absent. */
const char *t_header(const struct tresp *r, const char *name, char *out, size_t out_size);
void t_resp_free(struct tresp *r);
/* 1 when the peer has closed the connection within timeout_ms (reads and drops data). */
int t_wait_closed(int fd, int timeout_ms);

/* GET target on a new connection to 127.0.0.1:port (Connection: close),
 * the response in *r (free it with t_resp_free). 0, or -1 when no response
 * came within timeout_ms. */
int t_get(int port, const char *target, struct tresp *r, int timeout_ms);
/* GET target with Prefer: respond-async: 0 and the job's id (the last part
 * of its Location) in id when answered 202, else -1. */
int t_submit_async(int port, const char *target, char *id, size_t size);

/* The value of the /metrics sample line that starts with "\n" + sample (a
 * name with its labels and the blank before the value), read from the admin
 * listener on port; -1 when it cannot be read or is absent. */
long long t_metric(int admin_port, const char *sample);

/* Runs a shell command, captures stdout (NUL-terminated, truncated to size). Returns exit status. */
int t_run(const char *cmd, char *out, size_t out_size);

/* Monotonic ms. */
uint64_t t_now_ms(void);
/* Polls cond(ud) every 20 ms until true or timeout; returns 1 if true. */
int t_wait_for(int (*cond)(void *ud), void *ud, int timeout_ms);

/* Job state of id in the daemon's db via the sqlite3 CLI ("" when absent). */
const char *t_job_field(const struct tdaemon *d, const char *id, const char *column, char *out, size_t size);
/* Id of the newest job, "" when none. */
const char *t_last_job_id(const struct tdaemon *d, char *out, size_t size);
/* n bytes (malloc'd) of a pattern with every byte value and no short period,
 * for bodies that must come back byte for byte. */
char *t_pattern(size_t n);

/* Wall clock in microseconds (the unit of the jobs table's times). */
int64_t t_wall_us(void);
/* Waits (up to ms) for a job created at or after since_us (take it just
 * before sending a request): rows are written a few milliseconds after the
 * fact. Copies the newest such id to out (64 bytes); "" on timeout. */
const char *t_wait_new_job(const struct tdaemon *d, int64_t since_us, char *out, int ms);
/* Waits (up to ms) until job id's row has state; 1 if it has. */
int t_wait_job_state(const struct tdaemon *d, const char *id, const char *state, int ms);

/* A /proc/PID/status field in kB (VmRSS, VmHWM), -1 when unreadable. */
long t_proc_kb(pid_t pid, const char *field);

/* Number of live processes in process group pgid (scans /proc). */
int t_group_alive(pid_t pgid);

/* ---- nginx and other helper servers (FastCGI front tests) ---- */

/* A free loopback TCP port (bound and released; 0 on failure). */
int t_free_port(void);

struct tserver {
	pid_t pid;
	int port;           /* nginx: its HTTP port */
	char dir[256];      /* where its config, logs and temp paths live */
	char log[320];      /* its stderr */
};

/*
 * Starts nginx in the foreground ("daemon off", pid file, error log and
 * every temp path under dir, which must exist) on 127.0.0.1:port with
 * http_body placed inside the http {} block; "%PORT%" in http_body is
 * replaced by the port. Workers run as root when the tests run as root
 * (they must reach sockets in private temp dirs). Waits up to 10 s for the
 * port to answer. Returns 0 or -1 (config and log printed).
 */
int tn_start(struct tserver *n, const char *dir, int port, const char *http_body);
/* Runs argv (argv[0] a path) with stdout/stderr to dir/name.log; waits up to
 * 10 s for wait_path to exist when not NULL. Returns 0 or -1. */
int ts_start(struct tserver *s, const char *dir, const char *name, char *const argv[], const char *wait_path);
/* SIGTERM to the process (and SIGKILL after 10 s), then reaps it. */
void ts_stop(struct tserver *s);

#endif
