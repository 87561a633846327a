/*
 * The daemon's life: start-up (files, store, engine, fronts, the drop of
 * privileges), signals (stop, drain, reload) and shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front/front.h"
#include "options.h"
#include "store/store.h"

static int ensure_parent_dir(const char *file)
{
	char *dir = util_xstrdup(file);
	char *slash = strrchr(dir, '/');
	int r = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		r = util_mkdirs(dir);
	}
	free(dir);
	return r;
}

/* 1 when path is missing (so that creating it makes it cgiq's), else 0. */
static int path_missing(const char *path)
{
	struct stat st;
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/* The directory part of file ("." when none), in out. */
static void dir_of(const char *file, char *out, size_t size)
{
	const char *slash = strrchr(file, '/');
	if (slash == NULL)
		snprintf(out, size, ".");
	else if (slash == file)
		snprintf(out, size, "/");
	else
		snprintf(out, size, "%.*s", (int)(slash - file), file);
}

/* Programs run apart from cgiq, as --program-user, or by default as
 * APP_PROGRAM_USER_DEFAULT when cgiq starts as root and drops to --user;
 * naming --user's own user keeps them with cgiq. Not root, cgiq cannot run
 * them as anyone but itself. Returns 0 or the exit status. */
static int check_program_user(const struct daemon_config *c, struct app__privs *p)
{
	const char *name = c->program_user ? c->program_user : APP_PROGRAM_USER_DEFAULT;

	if (!p->active || (c->program_user == NULL && geteuid() != 0))
		return 0;
	if (app__privs_resolve_program(name, c->program_user == NULL, p) < 0)
		return 2;
	if (p->program_active && p->program.uid == 0 && !c->allow_root) {
		fprintf(stderr, "cgiq: --program-user %s: would run CGI programs as root; use --allow-root\n", name);
		return 2;
	}
	if (p->program_active && geteuid() != 0) {
		if (c->check_only) {
			fprintf(stderr, "cgiq: note: program user %s: a start by this user (uid %u) would fail: only "
			        "root can run programs as another user\n", name, (unsigned)geteuid());
			return 0;
		}
		fprintf(stderr, "cgiq: --program-user %s: only root can run programs as another user\n", name);
		return 2;
	}
	return 0;
}

/* Without --user, cgiq runs every program with its own identity: as root,
 * that is every program a root shell. --check-config reports what a start
 * by the same user would refuse as a note (exit 0) instead: it is often run
 * by root for a service that starts as another user. Returns 0 or the exit
 * status. */
static int check_root(const struct daemon_config *c, struct app__privs *p)
{
	if (c->group != NULL && c->user == NULL) {
		fprintf(stderr, "cgiq: --group needs --user\n");
		return 2;
	}
	if (c->program_user != NULL && c->user == NULL) {
		fprintf(stderr, "cgiq: --program-user needs --user\n");
		return 2;
	}
	if (p->active && geteuid() != 0 && (p->uid != geteuid() || p->gid != getegid())) {
		if (c->check_only) {
			fprintf(stderr, "cgiq: note: user %s: a start by this user (uid %u) would fail: only root can "
			        "change user (start cgiq as root, or as %s)\n", p->user, (unsigned)geteuid(), p->user);
			return 0;
		}
		fprintf(stderr, "cgiq: --user %s: only root can change user (start cgiq as root, or as %s)\n",
		        p->user, p->user);
		return 2;
	}
	if (!c->allow_root && ((!p->active && geteuid() == 0) || (p->active && p->uid == 0))) {
		if (c->check_only) {
			fprintf(stderr, "cgiq: note: started as root, cgiq would refuse to run CGI programs as root: "
			        "add user = NAME (or --user), or start it as another user (systemd User=)\n");
			return 0;
		}
		fprintf(stderr, "cgiq: would run CGI programs as root; use --user or --allow-root\n");
		return 2;
	}
	return check_program_user(c, p);
}

/* After the drop: a limit above the hard limit cgiq now has could not be set
 * in any child (every job would fail to start), so refuse it now. */
static int check_limits(const struct cgi_limits *l)
{
	static const struct {
		int resource;
		const char *name;
	} res[] = {
		{RLIMIT_CPU, "rlimit-cpu"}, {RLIMIT_AS, "rlimit-as"}, {RLIMIT_NOFILE, "rlimit-nofile"},
		{RLIMIT_NPROC, "rlimit-nproc"}, {RLIMIT_FSIZE, "rlimit-fsize"}, {RLIMIT_CORE, "rlimit-core"},
	};
	uint64_t want[] = {l->cpu_s ? l->cpu_s + 1 : 0, l->as_bytes, l->nofile, l->nproc, l->fsize_bytes,
	                   l->core_set ? l->core_bytes : 0};
	struct rlimit rl;

	if (geteuid() == 0)
		return 0; /* root may raise a hard limit */
	for (size_t i = 0; i < UTIL_ARRAY_LEN(res); i++) {
		if (want[i] == 0 || getrlimit(res[i].resource, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
		    want[i] <= (uint64_t)rl.rlim_max)
			continue;
		fprintf(stderr, "cgiq: --%s: above cgiq's own hard limit (%llu)\n", res[i].name,
		        (unsigned long long)rl.rlim_max);
		return 2;
	}
	if (l->nice_set && l->nice < getpriority(PRIO_PROCESS, 0)) {
		fprintf(stderr, "cgiq: --nice %d: below cgiq's own niceness, which only root may do\n", l->nice);
		return 2;
	}
	return 0;
}

/* Gives the database and its WAL files (and the directory SQLite creates
 * them in) to the user cgiq becomes. */
static int own_db(const struct app__privs *p, const char *db, int db_dir_created, int db_created)
{
	char path[PATH_MAX + 8];
	int r;

	dir_of(db, path, sizeof(path));
	if ((r = app__privs_own(p, path, db_dir_created)) < 0 || (r = app__privs_own(p, db, db_created)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s-wal", db);
	if ((r = app__privs_own(p, path, db_created)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s-shm", db);
	return app__privs_own(p, path, db_created);
}

/* Everything the daemon holds, from start-up to exit. */
struct daemon {
	struct daemon_config c;
	uv_loop_t *loop;
	struct app__privs privs;
	char root[PATH_MAX], prefix[PATH_MAX];
	char node[STORE_NODE_MAX + 1]; /* --node-name, or the host name */
	int lock_fd;
	int log_created, access_created;
	struct store *store;
	struct job_engine *engine;
	struct http_server *server, *admin;
	struct fcgi_front *fcgi;
	struct front_access_log *access_log;
	struct http_evidence *evidence;
	struct front_mime *mime;  /* static files' types, with --static */
	/* The fronts' counters outlive the fronts (FastCGI threads may count
	 * while the loop shuts down), so they live here. */
	struct front_counters front_counters[FRONT_COUNT];
	uv_signal_t sig_term, sig_int, sig_hup;
	sigset_t start_mask;     /* the signal mask before the start blocked the stop signals */
	uv_timer_t drain_timer;
	uint64_t drain_deadline_ms;
	int draining, stopping;
};

#define SHUTDOWN_REASON "cgiq shut down"
#define DRAIN_POLL_MS 10

/* The end of the drain: what still runs gets the kill sequence (state
 * interrupted, reason recorded), connections close, the record is flushed
 * by the engine's close, and uv_run returns once every handle is closed. */
static void stop_now(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	uv_close((uv_handle_t *)&d->drain_timer, NULL);
	job_engine_close(d->engine, SHUTDOWN_REASON);
	http_server_close(d->server);
	http_server_close(d->admin);
	fcgi_front_close(d->fcgi);
	front_access_log_stop(d->access_log);
}

/* Polled while draining: three fronts (the engine, HTTP connections still
 * writing an answer, FastCGI threads on another thread) end on their own
 * schedules, and a 10 ms poll for at most --drain-timeout costs nothing. */
static void on_drain_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	unsigned running = job_engine_running(d->engine);
	unsigned conns = http_server_connections(d->server);
	unsigned fcgi = fcgi_front_busy(d->fcgi);

	if (running == 0 && conns == 0 && fcgi == 0) {
		log_info("drain finished: every job ended and every client was answered");
		stop_now(d);
		return;
	}
	if (util_mono_ms() >= d->drain_deadline_ms) {
		log_warnx("drain timeout of %llu ms reached: stopping %u running job(s), closing %u "
		          "connection(s)", (unsigned long long)d->c.drain_timeout_ms, running, conns + fcgi);
		stop_now(d);
	}
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	if (d->draining) {
		log_info("signal %d during the drain: stopping now", signum);
		stop_now(d);
		return;
	}
	d->draining = 1;
	app_notify("STOPPING=1");
	log_info("signal %d: shutting down; %u running job(s) may finish within %llu ms "
	         "(a second signal stops them now)", signum, job_engine_running(d->engine),
	         (unsigned long long)d->c.drain_timeout_ms);
	http_server_drain(d->server);
	fcgi_front_drain(d->fcgi);
	job_engine_drain(d->engine, SHUTDOWN_REASON);
	if (d->c.drain_timeout_ms == 0) {
		stop_now(d);
		return;
	}
	d->drain_deadline_ms = util_mono_ms() + d->c.drain_timeout_ms;
	uv_timer_start(&d->drain_timer, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void on_hup(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	int r = log_reopen();

	(void)signum;
	if (r < 0)
		log_warnx("SIGHUP: cannot reopen the log file %s: %s (still writing to the old one)",
		          log_file_path(), strerror(-r));
	else if (log_file_path())
		log_info("SIGHUP: log file %s reopened", log_file_path());
	else
		log_info("SIGHUP: logging to stderr, nothing to reopen");
	/* Other files opened by path that log rotation renames: the access log. */
	if (front_access_log_reopen(d->access_log) < 0)
		log_warnx("SIGHUP: cannot reopen the access log (still writing to the old one)");
	/* An operator who deleted or edited the misread evidence. */
	http_evidence_reload(d->evidence);
}

/* The User-Agents seen misreading a 102, from --processing-misread-file
 * (default in the spool, which is the user's after the drop of privileges,
 * so the file can be rewritten). NULL when --processing-misread-ttl is 0. */
static struct http_evidence *open_evidence(const struct daemon_config *c)
{
	char path[PATH_MAX];

	if (c->processing_misread_ttl_ms == 0)
		return NULL;
	if (c->processing_misread_file)
		snprintf(path, sizeof(path), "%s", c->processing_misread_file);
	else
		snprintf(path, sizeof(path), "%s/.cgiq-102-misread", c->spool);
	return http_evidence_open(path, c->processing_misread_ttl_ms / 1000);
}

/* A start-up that failed once the engine was open: everything opened so far
 * is closed (the loop runs until the handles are), then exit_status. */
static int startup_failed(struct daemon *d, int exit_status)
{
	app__privs_settle(&d->privs);
	job_engine_close(d->engine, "start-up failed");
	http_server_close(d->server);
	http_server_close(d->admin);
	fcgi_front_close(d->fcgi);
	front_access_log_stop(d->access_log);
	uv_run(d->loop, UV_RUN_DEFAULT);
	store_close(d->store);
	front_access_log_free(d->access_log);
	return exit_status;
}

/* After a failed start-up: what is still open. With an engine,
 * startup_failed closed the store and the access log already. */
static void daemon_abandon(struct daemon *d)
{
	if (d->engine == NULL) {
		store_close(d->store);
		if (d->access_log) {
			front_access_log_stop(d->access_log);
			uv_run(d->loop, UV_RUN_DEFAULT);
			front_access_log_free(d->access_log);
		}
	}
	http_evidence_free(d->evidence);
}

/* What --check-config says beyond "ok": who programs run as, what happens
 * to what they leave behind. */
static void print_check(const struct daemon *d)
{
	const struct app__privs *p = &d->privs;

	if (p->program_active)
		fprintf(stderr, "cgiq: programs run as user %s (uid %u), apart from cgiq's user %s: they cannot "
		        "signal cgiq nor open its files\n", p->program_user, (unsigned)p->program.uid, p->user);
	else
		fprintf(stderr, "cgiq: programs run as cgiq's own user: they can signal cgiq and open its files\n");
	fprintf(stderr, "cgiq: processes programs leave behind: %s; --leftovers %s\n", job_leftover_mechanism(),
	        d->c.jobs.keep_leftovers ? "keep" : "kill");
	fprintf(stderr, "cgiq: configuration%s%s ok\n", d->c.config_file ? " file " : "",
	        d->c.config_file ? d->c.config_file : "");
}

/* Whether a start could make or open path (dir: a directory it creates
 * with its parents; else a file in an existing directory), creating
 * nothing: 0 or an errno. Permission is not judged: the check may be run
 * by another user than the start (root for a service of its own user). */
static int check_creatable(const char *path, int dir)
{
	char p[PATH_MAX];
	struct stat st;
	char *slash;

	if (stat(path, &st) == 0)
		return dir && !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
	if (errno != ENOENT)
		return errno == EACCES ? 0 : errno;
	if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return ENAMETOOLONG;
	/* The nearest existing ancestor must be a directory; only one made
	 * with its parents (the database's and the spool) may be further up. */
	for (;;) {
		slash = strrchr(p, '/');
		if (slash == NULL)
			snprintf(p, sizeof(p), ".");
		else if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
		if (stat(p, &st) == 0)
			return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
		if (errno != ENOENT)
			return errno == EACCES ? 0 : errno;
		if (!dir)
			return ENOENT;
	}
}

/* --check-config: the files a start opens, each as the start would name
 * it. Returns 0 or 2 after a message. */
static int check_files(const struct daemon_config *c)
{
	const struct {
		const char *what, *path;
		int dir;
	} files[] = {
		{"--log-file", c->log_file, 0},
		{"--access-log", c->access_log && strcmp(c->access_log, "-") != 0 ? c->access_log : NULL, 0},
		/* its directory is made with its parents; a server is reached at the start */
		{"--db", store_place_is_server(c->db) ? NULL : c->db, 1},
		{"--spool", c->spool, 1},
	};
	char msg[256];
	int r = 0, e;

	for (size_t i = 0; i < UTIL_ARRAY_LEN(files); i++) {
		if (files[i].path == NULL || (e = check_creatable(files[i].path, files[i].dir)) == 0)
			continue;
		fprintf(stderr, "cgiq: %s %s: %s\n", files[i].what, files[i].path, strerror(e));
		r = 2;
	}
	/* a server is not reached, but its connection string is read */
	if (c->db != NULL && store_place_check(c->db, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "cgiq: --store: %s\n", msg);
		r = 2;
	}
	return r;
}

/* Every --interpreter, global or a block's, is an executable file: a typo
 * would otherwise fail each of its requests. Returns 0 or 2 after a line. */
static int check_interpreters(const struct daemon_config *c)
{
	const struct cgi_interpreter *v = c->interpreters;
	unsigned n = c->interpreter_count;
	struct stat st;

	for (unsigned r = 0; r <= c->jobs.rule_count; r++) {
		if (r > 0) {
			v = c->jobs.rules[r - 1].policy.interpreters;
			n = c->jobs.rules[r - 1].policy.interpreter_count;
		}
		for (unsigned i = 0; i < n; i++) {
			const char *why = stat(v[i].path, &st) < 0 ? strerror(errno) :
			                  !S_ISREG(st.st_mode) ? "not a regular file" :
			                  access(v[i].path, X_OK) < 0 ? "not executable" : NULL;
			if (why == NULL)
				continue;
			fprintf(stderr, "cgiq: --interpreter %s=%s: %s\n", v[i].ext, v[i].path, why);
			return 2;
		}
	}
	return 0;
}

/* The path mapping's question (cgi_map): which interpreter runs a file. */
static const char *map_interpreter(void *ctx, const char *script_filename)
{
	return job_interpreter_for(ctx, script_filename);
}

static const char node_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";

/* The node's name: --node-name, or the host name (whole, as it tells hosts
 * apart; past 63 bytes only up to its first dot, then cut; a byte a name
 * may not hold becomes '-'). 0, or 2 after a line. */
static int node_name(struct daemon *d)
{
	const char *name = d->c.node_name;
	char host[256];
	size_t n;

	if (name == NULL) {
		if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "cgiq");
		host[sizeof(host) - 1] = '\0';
		if (strlen(host) > STORE_NODE_MAX)
			host[strcspn(host, ".")] = '\0';
		host[STORE_NODE_MAX] = '\0';
		for (char *p = host; *p; p++)
			if (strchr(node_chars, *p) == NULL)
				*p = '-';
		name = host;
	}
	n = strlen(name);
	if (n == 0 || n > STORE_NODE_MAX || strspn(name, node_chars) != n) {
		fprintf(stderr, "cgiq: --node-name: '%s': %s\n", name,
		        n == 0 ? "empty" : n > STORE_NODE_MAX ? "longer than 63 bytes" : "only letters, digits, '.', '-' and '_'");
		return 2;
	}
	memcpy(d->node, name, n + 1); /* n <= STORE_NODE_MAX */
	d->c.jobs.node_name = d->node;
	return 0;
}

/* Options, users and the CGI root. Returns -1 to go on, else the exit status. */
static int daemon_configure(struct daemon *d, int argc, char **argv)
{
	struct daemon_config *c = &d->c;
	const char *why;
	struct stat st;
	int r;

	r = app__parse_args(argc, argv, c);
	if (r >= 0)
		return r;
	if ((r = node_name(d)) != 0)
		return r;
	if (app__privs_resolve(c->user, c->group, &d->privs) < 0)
		return 2;
	if ((r = check_root(c, &d->privs)) != 0)
		return r;
	/* The FastCGI socket is for the web server to reach cgiq, which is now
	 * this user. */
	if (d->privs.active && c->fcgi.socket_owner == NULL)
		c->fcgi.socket_owner = d->privs.user; /* the name, also when --user was a uid */
	why = realpath(c->cgi_root, d->root) == NULL || stat(d->root, &st) < 0 ?
	      (errno == ENOENT ? "no such directory" : strerror(errno)) :
	      !S_ISDIR(st.st_mode) ? "not a directory" : NULL;
	if (why != NULL) {
		if (c->cgi_root_where[0] != '\0')
			fprintf(stderr, "%s: cgi-root: '%s': %s\n", c->cgi_root_where, c->cgi_root, why);
		else
			fprintf(stderr, "cgiq: --cgi-root: '%s': %s\n", c->cgi_root, why);
		return 2;
	}
	/* A root the dropped users cannot enter would start, and answer every
	 * request 403: refused. Programs they cannot run are warned about. */
	if (app__check_cgi_root(&d->privs, d->root, c->interpreters, c->interpreter_count) == 2)
		return 2;
	/* "/cgi-bin/" and "/cgi-bin" mean the same mount point. */
	snprintf(d->prefix, sizeof(d->prefix), "%s", c->cgi_prefix);
	for (size_t n = strlen(d->prefix); n > 1 && d->prefix[n - 1] == '/'; n--)
		d->prefix[n - 1] = '\0';
	c->http.cgi_root = d->root;
	c->http.cgi_prefix = d->prefix;
	c->http.cgi_user = c->fcgi.params.cgi_user = d->privs.active ? d->privs.user : NULL;
	c->jobs.cgi_root = d->root;
	c->jobs.interpreters = c->interpreters;
	c->jobs.interpreter_count = c->interpreter_count;
	if ((r = check_interpreters(c)) != 0)
		return r;
	if (d->privs.program_active)
		c->jobs.program_user = &d->privs.program;
	if (c->check_only) {
		if ((r = check_files(c)) != 0)
			return r;
		print_check(d);
		return 0;
	}
	return -1;
}

/* The log, the database's lock, the spool, the access log and the store, as
 * root when started so. Returns 0 or the exit status. */
static int daemon_open_files(struct daemon *d)
{
	struct daemon_config *c = &d->c;
	char db_dir[PATH_MAX], msg[512], shown[512];
	int spool_created, db_dir_created, db_created, r, server = store_place_is_server(c->db);

	store_place_shown(c->db, shown, sizeof(shown));
	dir_of(c->db, db_dir, sizeof(db_dir));
	spool_created = path_missing(c->spool);
	db_dir_created = !server && path_missing(db_dir);
	db_created = !server && path_missing(c->db);
	d->log_created = c->log_file && path_missing(c->log_file);
	d->access_created = c->access_log && path_missing(c->access_log);
	if (c->log_file && (r = log_open_file(c->log_file)) < 0) {
		fprintf(stderr, "cgiq: --log-file %s: %s\n", c->log_file, strerror(-r));
		return 1;
	}
	if (!server && ensure_parent_dir(c->db) < 0) {
		fprintf(stderr, "cgiq: cannot create the directory of %s: %s\n", c->db, strerror(errno));
		return 1;
	}
	/* Before anything else touches the database or the spool: a second
	 * daemon would mark the first one's running jobs interrupted and run
	 * its queued jobs twice. (A server's database: its writer lock, taken
	 * once the store is open.) */
	if (!server && app_lock_db(c->db, &d->lock_fd, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "cgiq: %s\n", msg);
		if (log_file_path())
			log_error("%s", msg);
		return 1;
	}
	if (util_mkdirs(c->spool) < 0) {
		fprintf(stderr, "cgiq: cannot create %s: %s\n", c->spool, strerror(errno));
		return 1;
	}
	if (app__privs_own(&d->privs, c->spool, spool_created) < 0)
		return 1;
	c->jobs.limits = &c->limits;
	c->http.spool_dir = c->spool;
	c->http.processing_evidence = d->evidence = open_evidence(c);
	c->jobs.spool_dir = c->spool;
	c->jobs.db_path = c->db;
	if (c->access_log && (r = front_access_log_open(d->loop, c->access_log, &d->access_log)) < 0) {
		fprintf(stderr, "cgiq: --access-log %s: %s\n", c->access_log, strerror(-r));
		return 1;
	}
	c->http.access_log = d->access_log;
	c->http.counters = &d->front_counters[FRONT_HTTP];
	r = store_open_why(c->db, &d->store, msg, sizeof(msg));
	if (r < 0) {
		const char *why = r == -EROFS ? "read-only for cgiq, which records every job in it" : msg;
		fprintf(stderr, "cgiq: cannot open the job database %s: %s\n", shown, why);
		if (log_file_path())
			log_error("cannot open the job database %s: %s", shown, why);
		return 1;
	}
	store_set_node(d->store, d->node);
	if (store_lock_writer(d->store, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "cgiq: %s\n", msg);
		if (log_file_path())
			log_error("%s", msg);
		return 1;
	}
	return server || own_db(&d->privs, c->db, db_dir_created, db_created) == 0 ? 0 : 1;
}

/* The engine and every listener (which may need root). Returns 0, or the
 * exit status after what was opened is closed again. */
static int daemon_open_fronts(struct daemon *d)
{
	struct daemon_config *c = &d->c;
	int r = job_engine_open(d->loop, d->store, &c->jobs, &d->engine);

	if (r < 0) {
		fprintf(stderr, "cgiq: cannot start the job engine: %s\n", strerror(-r));
		return 1;
	}
	c->http.interpreter = c->fcgi.params.interpreter = map_interpreter;
	c->http.interpreter_ctx = c->fcgi.params.interpreter_ctx = d->engine;
	c->http.index = c->fcgi.params.index = c->index;
	c->http.env = c->fcgi.params.env = c->env;
	c->http.static_patterns = c->static_patterns; /* nginx serves them on FastCGI */
	if (c->static_count > 0) {
		r = front_mime_load(APP_MIME_TYPES, &d->mime);
		if (r < 0)
			log_warnx("%s: %s: static files get the built-in types of web assets only", APP_MIME_TYPES,
			          strerror(-r));
		c->http.mime = d->mime;
	}
	http_server_open(d->loop, d->engine, &c->http, &d->server);
	for (unsigned i = 0; i < c->listen_count; i++) {
		r = http_server_listen(d->server, c->listen[i]);
		if (r < 0) {
			fprintf(stderr, "cgiq: --listen %s: %s\n", c->listen[i],
			        r == -EINVAL ? "not an address (127.0.0.1:8080, [::1]:8080, unix:/path)" : uv_strerror(r));
			return startup_failed(d, r == -EINVAL ? 2 : 1);
		}
	}
	if (c->admin_listen) {
		struct http_server_config admin = c->http;
		admin.admin = 1;
		admin.access_log = NULL;
		admin.counters = NULL;
		admin.fronts = d->front_counters;
		http_server_open(d->loop, d->engine, &admin, &d->admin);
		r = http_server_listen(d->admin, c->admin_listen);
		if (r < 0) {
			fprintf(stderr, "cgiq: --admin-listen %s: %s\n", c->admin_listen,
			        r == -EINVAL ? "not an address (127.0.0.1:9100, [::1]:9100, unix:/path)" : uv_strerror(r));
			return startup_failed(d, r == -EINVAL ? 2 : 1);
		}
	}
	if (c->fastcgi == NULL)
		return 0;
	c->fcgi.params.cgi_root = d->root;
	c->fcgi.params.pass_authorization = c->http.pass_authorization;
	c->fcgi.allow = c->fastcgi_allow;
	c->fcgi.max_body_bytes = c->http.limits.max_body_bytes;
	c->fcgi.body_mem_bytes = c->http.body_mem_bytes;
	c->fcgi.spool_dir = c->spool;
	c->fcgi.jobs_prefix = c->http.jobs_prefix;
	c->fcgi.detach_on_disconnect = c->http.detach_on_disconnect;
	c->fcgi.max_wait_ms = c->http.max_wait_ms;
	c->fcgi.max_connections = c->http.max_connections;
	c->fcgi.access_log = d->access_log;
	c->fcgi.counters = &d->front_counters[FRONT_FASTCGI];
	r = fcgi_front_open(d->loop, d->engine, &c->fcgi, &d->fcgi);
	if (r == 0)
		r = fcgi_front_listen(d->fcgi, c->fastcgi);
	if (r < 0) {
		fprintf(stderr, "cgiq: --fastcgi %s: %s\n", c->fastcgi,
		        r == -EINVAL ? "not an address (unix:/path, 127.0.0.1:9000, [::1]:9000, inherit)" : strerror(-r));
		return startup_failed(d, r == -EINVAL ? 2 : 1);
	}
	return 0;
}

/* A unix socket is removed at the stop by cgiq's user, which may not be able
 * to (a directory root keeps, a sticky one and a socket another user owns):
 * said at the start rather than found later. The next start replaces it. */
static void note_socket_stays(const struct daemon *d, const char *addr)
{
	char dir[PATH_MAX], real[PATH_MAX];
	struct stat ds, ss;
	uid_t me = getuid(); /* the real id is cgiq's user's, also with a program user */

	if (addr == NULL || strncmp(addr, "unix:", 5) != 0)
		return;
	dir_of(addr + 5, dir, sizeof(dir));
	if (stat(dir, &ds) < 0 || lstat(addr + 5, &ss) < 0)
		return;
	if (access(dir, W_OK | X_OK) == 0 && (!(ds.st_mode & S_ISVTX) || ss.st_uid == me || ds.st_uid == me))
		return;
	log_warnx("%s will stay after cgiq stops: user %s may not remove it from %s (a directory of the user's "
	          "own, such as systemd's RuntimeDirectory=, avoids that); the next start replaces it", addr,
	          d->privs.user, realpath(dir, real) ? real : dir);
}

/* Everything that needs root is done: the drop of privileges, the checks
 * only the dropped daemon can make, then the threads. Returns 0, or the
 * exit status after what was opened is closed again. */
static int daemon_drop(struct daemon *d)
{
	struct daemon_config *c = &d->c;
	const char *access_file = c->access_log && strcmp(c->access_log, "-") != 0 ? c->access_log : NULL;
	int r = 0;

	/* An HTTP unix socket cgiq just made becomes the user's like the rest. */
	for (unsigned i = 0; i < c->listen_count && r == 0; i++)
		if (strncmp(c->listen[i], "unix:", 5) == 0)
			r = app__privs_own(&d->privs, c->listen[i] + 5, 1);
	/* Log files are reopened by path on SIGHUP, as the user. */
	if (r == 0 && c->log_file)
		r = app__privs_own(&d->privs, c->log_file, d->log_created);
	if (r == 0 && access_file)
		r = app__privs_own(&d->privs, access_file, d->access_created);
	r = r == 0 && app__privs_drop(&d->privs) == 0 ? 0 : 1;
	if (r == 0)
		r = check_limits(&c->limits);
	for (unsigned i = 0; r == 0 && i < c->jobs.rule_count; i++)
		r = check_limits(&c->jobs.rules[i].policy.limits);
	if (r == 0) {
		const char *own[] = {store_place_is_server(c->db) ? NULL : c->db, c->spool, c->log_file, access_file};
		r = app__privs_check_private(&d->privs, own, UTIL_ARRAY_LEN(own)) < 0 ? 1 : 0;
	}
	/* Threads only now, after the drop, which changes the process's ids
	 * but the file-system ids of the calling thread only (privs.c). */
	if (r == 0 && job_engine_start(d->engine, d->store) < 0) {
		fprintf(stderr, "cgiq: cannot start the job engine's threads\n");
		r = 1;
	}
	if (r == 0 && d->fcgi != NULL && fcgi_front_start(d->fcgi) < 0)
		r = 1;
	if (r != 0)
		return startup_failed(d, r);
	if (d->privs.active) {
		for (unsigned i = 0; i < c->listen_count; i++)
			note_socket_stays(d, c->listen[i]);
		note_socket_stays(d, c->fastcgi);
		note_socket_stays(d, c->admin_listen);
		log_info("running as user %s (uid %u, gid %u)", d->privs.user, (unsigned)d->privs.uid,
		         (unsigned)d->privs.gid);
	}
	if (d->privs.program_active)
		log_info("programs run as user %s (uid %u, gid %u)", d->privs.program_user,
		         (unsigned)d->privs.program.uid, (unsigned)d->privs.program.gid);
	else if (d->privs.active && c->program_user != NULL)
		log_warnx("programs run as cgiq's own user %s: they can signal cgiq and open its files", d->privs.user);
	return 0;
}

/* Signals, readiness, the loop until the last handle closes, the end. */
static void daemon_run(struct daemon *d)
{
	uv_timer_init(d->loop, &d->drain_timer);
	d->drain_timer.data = d;
	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_hup, SIGHUP);
	/* Held since the start (app_daemon_main): one that came meanwhile is
	 * delivered now, to the handlers above. */
	pthread_sigmask(SIG_SETMASK, &d->start_mask, NULL);
	char shown[512];

	store_place_shown(d->c.db, shown, sizeof(shown));
	log_info("cgiq %s: programs from %s at %s, jobs in %s", CGIQ_VERSION, d->root, d->prefix, shown);
	app_notify("READY=1");

	uv_run(d->loop, UV_RUN_DEFAULT);
	uv_loop_close(d->loop);
	store_close(d->store);
	d->store = NULL;
	front_access_log_free(d->access_log); /* lines of the last moments */
	http_evidence_free(d->evidence);
	app__privs_settle(&d->privs);
	log_info("stopped");
}

int app_daemon_main(int argc, char **argv)
{
	struct daemon *d = util_xcalloc(1, sizeof(*d));
	int r;

	d->loop = uv_default_loop();
	d->lock_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	/* A stop signal before the handlers are in place (a service manager
	 * that stops cgiq as soon as it listens) would end the process at
	 * once, its socket file and database left as they were: it waits,
	 * blocked, until daemon_run. The threads started meanwhile inherit the
	 * block, so the signal comes to the loop's thread. */
	{
		sigset_t stop;
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &stop, &d->start_mask);
	}
	r = daemon_configure(d, argc, argv);
	if (r < 0) {
		r = daemon_open_files(d);
		if (r == 0)
			r = daemon_open_fronts(d);
		if (r == 0)
			r = daemon_drop(d);
		if (r == 0)
			daemon_run(d);
		else
			daemon_abandon(d);
	}
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* last: the database is complete and closed */
	front_mime_free(d->mime);
	free(d);
	return r;
}
