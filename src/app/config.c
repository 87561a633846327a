/*
 * The daemon: command line, start-up, signals, shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/conffile.h"
#include "fcgi/fcgi.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "store/store.h"

#define MAX_LISTEN 16

struct daemon_config {
	const char *listen[MAX_LISTEN];
	unsigned listen_count;
	const char *cgi_root;
	const char *cgi_prefix;
	const char *db;
	const char *spool;
	struct http_server_config http;
	const char *fastcgi;                       /* --fastcgi ADDR or NULL */
	const char *fastcgi_allow[MAX_LISTEN + 1]; /* NULL-terminated */
	unsigned fastcgi_allow_count;
	struct fcgi_config fcgi;
	struct job_config jobs;
	/* --config FILE: its script blocks become jobs.rules */
	const char *config_file;
	int check_only;                            /* --check-config / --test */
	unsigned max_running;                      /* a script block's max-running */
	int retry_interrupted;                     /* a script block's retry-interrupted */
};

static const char USAGE[] =
	"Usage: cgiq [OPTIONS]                 run the gateway\n"
	"       cgiq jobs [--db FILE] [--state STATE] [--limit N] [--json]\n"
	"       cgiq job ID [--db FILE] [--json]\n"
	"\n"
	"Runs CGI programs (RFC 3875) as jobs recorded in SQLite, and keeps HTTP\n"
	"clients waiting with 102 Processing while a job runs.\n"
	"\n"
	"Listening and programs:\n"
	"  --listen ADDR              127.0.0.1:8080, [::1]:8080 or unix:/path/sock;\n"
	"                             repeatable (default 127.0.0.1:8080; port 0 = any free port)\n"
	"  --cgi-root DIR             directory holding the programs (required)\n"
	"  --cgi-prefix PATH          URL prefix mapped to --cgi-root (default /)\n"
	"  --pass-authorization       give programs the Authorization header (HTTP_AUTHORIZATION)\n"
	"\n"
	"Records:\n"
	"  --db FILE                  SQLite job database (default ./var/cgiq.db)\n"
	"  --spool DIR                request bodies and outputs beyond memory limits\n"
	"                             (default ./var/spool)\n"
	"\n"
	"102 Processing:\n"
	"  --processing MODE          auto (default): to clients that handle it; always;\n"
	"                             opt-in: only with Prefer: processing; never\n"
	"  --processing-after DUR     first 102 after this long (default 1s)\n"
	"  --processing-interval DUR  then one every DUR (default 10s)\n"
	"  --processing-max N         at most N per request, 0 = no cap (default 0)\n"
	"\n"
	"Jobs:\n"
	"  --max-jobs N               programs running at once; more wait in FIFO order (default 16)\n"
	"  --job-timeout DUR          a job running longer is killed, 504 (default 5m, 0 = none)\n"
	"  --kill-grace DUR           SIGTERM to the process group, then SIGKILL after DUR (default 5s)\n"
	"  --max-output-bytes SIZE    body bytes a program may write (default 1G)\n"
	"  --queue-max N              jobs waiting for a slot; beyond: 503 + Retry-After (default 1000)\n"
	"\n"
	"Asynchronous jobs and results:\n"
	"  --jobs-prefix PATH         status monitor URLs: PATH/{id}, PATH/{id}/result (default /_cgiq/jobs)\n"
	"  --result-ttl DUR           rows and kept results are deleted this long after the end (default 24h)\n"
	"  --max-wait DUR             Prefer: wait=N is clamped to this (default 5m)\n"
	"  --on-disconnect POLICY     client gone while its job runs: cancel (default) or detach\n"
	"\n"
	"Requests:\n"
	"  --max-header-bytes SIZE    request line + headers, beyond: 431 (default 32k)\n"
	"  --max-uri-bytes SIZE       request-target, beyond: 414 (default 8k)\n"
	"  --max-body-bytes SIZE      request body, beyond: 413 (default 64M)\n"
	"  --header-timeout DUR       whole request head within DUR, else 408 (default 10s)\n"
	"  --body-timeout DUR         a gap this long in the body: 408 (default 30s)\n"
	"  --idle-timeout DUR         idle keep-alive connections are closed (default 60s)\n"
	"  --max-connections N        beyond: 503 and close (default 4096)\n"
	"\n"
	"FastCGI (behind nginx, like fcgiwrap):\n"
	"  --fastcgi ADDR             unix:/run/cgiq.sock, 127.0.0.1:9000 or inherit (a socket from\n"
	"                             systemd or spawn-fcgi, also used when found without this option)\n"
	"  --fastcgi-threads N        requests served at once over FastCGI (default 16)\n"
	"  --fastcgi-mode MODE        unix socket permissions, octal (default 0660)\n"
	"  --fastcgi-owner USER[:GROUP]  unix socket owner (default: cgiq's user)\n"
	"  --fastcgi-allow ADDR       TCP peer allowed to connect; repeatable (default: loopback only)\n"
	"  --fastcgi-max-params SIZE  parameters of one request, beyond: 431 (default 64k)\n"
	"\n"
	"Configuration file:\n"
	"  --config FILE              read options from FILE (key = value lines, script blocks;\n"
	"                             see cgiq(8)); the command line overrides it\n"
	"  --check-config, --test     check the configuration and exit (0 when valid)\n"
	"\n"
	"Other:\n"
	"  --log-level LEVEL          error, warn, info (default), debug\n"
	"  --help, --version\n"
	"\n"
	"DUR: 250ms, 2s, 5m, 1h (a bare number is seconds). SIZE: 512, 64k, 10M, 1G.\n";

enum {
	OPT_LISTEN = 256, OPT_CGI_ROOT, OPT_CGI_PREFIX, OPT_DB, OPT_SPOOL, OPT_PROCESSING,
	OPT_PROCESSING_AFTER, OPT_PROCESSING_INTERVAL, OPT_PROCESSING_MAX, OPT_MAX_JOBS,
	OPT_JOB_TIMEOUT, OPT_KILL_GRACE, OPT_MAX_OUTPUT, OPT_MAX_HEADER, OPT_MAX_URI, OPT_MAX_BODY,
	OPT_HEADER_TIMEOUT, OPT_BODY_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_MAX_CONN, OPT_PASS_AUTH,
	OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION, OPT_QUEUE_MAX, OPT_JOBS_PREFIX, OPT_RESULT_TTL,
	OPT_MAX_WAIT, OPT_ON_DISCONNECT,
	OPT_FASTCGI, OPT_FASTCGI_THREADS, OPT_FASTCGI_MODE, OPT_FASTCGI_OWNER, OPT_FASTCGI_ALLOW,
	OPT_FASTCGI_MAX_PARAMS,
	OPT_CONFIG, OPT_CHECK_CONFIG, OPT_TEST, OPT_MAX_RUNNING, OPT_RETRY_INTERRUPTED,
};

static const struct option LONG_OPTS[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"cgi-root", required_argument, NULL, OPT_CGI_ROOT},
	{"cgi-prefix", required_argument, NULL, OPT_CGI_PREFIX},
	{"db", required_argument, NULL, OPT_DB},
	{"spool", required_argument, NULL, OPT_SPOOL},
	{"processing", required_argument, NULL, OPT_PROCESSING},
	{"processing-after", required_argument, NULL, OPT_PROCESSING_AFTER},
	{"processing-interval", required_argument, NULL, OPT_PROCESSING_INTERVAL},
	{"processing-max", required_argument, NULL, OPT_PROCESSING_MAX},
	{"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
	{"job-timeout", required_argument, NULL, OPT_JOB_TIMEOUT},
	{"kill-grace", required_argument, NULL, OPT_KILL_GRACE},
	{"max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT},
	{"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
	{"max-uri-bytes", required_argument, NULL, OPT_MAX_URI},
	{"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
	{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
	{"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"max-connections", required_argument, NULL, OPT_MAX_CONN},
	{"pass-authorization", no_argument, NULL, OPT_PASS_AUTH},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
	{"jobs-prefix", required_argument, NULL, OPT_JOBS_PREFIX},
	{"result-ttl", required_argument, NULL, OPT_RESULT_TTL},
	{"max-wait", required_argument, NULL, OPT_MAX_WAIT},
	{"on-disconnect", required_argument, NULL, OPT_ON_DISCONNECT},
	{"fastcgi", required_argument, NULL, OPT_FASTCGI},
	{"fastcgi-threads", required_argument, NULL, OPT_FASTCGI_THREADS},
	{"fastcgi-mode", required_argument, NULL, OPT_FASTCGI_MODE},
	{"fastcgi-owner", required_argument, NULL, OPT_FASTCGI_OWNER},
	{"fastcgi-allow", required_argument, NULL, OPT_FASTCGI_ALLOW},
	{"fastcgi-max-params", required_argument, NULL, OPT_FASTCGI_MAX_PARAMS},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	{"test", no_argument, NULL, OPT_TEST},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

/* Keys of the configuration file that are not command-line options: they
 * only make sense inside a script block. */
static const struct option SCRIPT_ONLY_OPTS[] = {
	{"max-running", required_argument, NULL, OPT_MAX_RUNNING},
	{"retry-interrupted", no_argument, NULL, OPT_RETRY_INTERRUPTED},
	{NULL, 0, NULL, 0},
};

static const char *opt_name(int id)
{
	for (const struct option *o = LONG_OPTS; o->name; o++)
		if (o->val == id)
			return o->name;
	for (const struct option *o = SCRIPT_ONLY_OPTS; o->name; o++)
		if (o->val == id)
			return o->name;
	return "?";
}

/* "FILE:LINE" while entries of the configuration file are applied, so that
 * every message of apply_option names the line; NULL for the command line. */
static const char *option_where;

static int bad_value(int id, const char *value, const char *expected)
{
	if (option_where)
		fprintf(stderr, "%s: %s: invalid value '%s' (%s)\n", option_where, opt_name(id), value,
		        expected);
	else
		fprintf(stderr, "cgiq: --%s: invalid value '%s' (%s)\n", opt_name(id), value, expected);
	return 2;
}

static int parse_ms(int id, const char *v, uint64_t *out)
{
	return util_parse_duration_ms(v, out) < 0 ? bad_value(id, v, "a duration: 250ms, 2s, 5m, 1h") : 0;
}

static int parse_bytes(int id, const char *v, uint64_t *out)
{
	return util_parse_size(v, out) < 0 ? bad_value(id, v, "a size: 512, 64k, 10M, 1G") : 0;
}

static int parse_count(int id, const char *v, uint64_t max, unsigned *out)
{
	uint64_t n;
	if (util_parse_uint(v, max, &n) < 0)
		return bad_value(id, v, "a whole number");
	*out = (unsigned)n;
	return 0;
}

static void defaults(struct daemon_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cgi_prefix = "/";
	c->db = "./var/cgiq.db";
	c->spool = "./var/spool";
	c->http.processing_mode = HTTP_PROCESSING_AUTO;
	c->http.processing_after_ms = 1000;
	c->http.processing_interval_ms = 10000;
	c->http.limits.max_header_bytes = 32 * 1024;
	c->http.limits.max_uri_bytes = 8 * 1024;
	c->http.limits.max_headers = 100;
	c->http.limits.max_body_bytes = 64ull * 1024 * 1024;
	c->http.header_timeout_ms = 10000;
	c->http.body_timeout_ms = 30000;
	c->http.idle_timeout_ms = 60000;
	c->http.body_mem_bytes = 64 * 1024;
	c->http.max_connections = 4096;
	c->jobs.max_jobs = 16;
	c->jobs.job_timeout_ms = 5 * 60 * 1000;
	c->jobs.kill_grace_ms = 5000;
	c->jobs.max_output_bytes = 1024ull * 1024 * 1024;
	c->jobs.output_mem_bytes = 256 * 1024;
	c->jobs.stderr_tail_bytes = 4096;
	c->jobs.queue_max = 1000;
	c->jobs.result_ttl_ms = 24ull * 3600 * 1000;
	c->http.jobs_prefix = "/_cgiq/jobs";
	c->http.max_wait_ms = 5 * 60 * 1000;
	c->http.detach_on_disconnect = 0;
	c->fcgi.threads = 16;
	c->fcgi.socket_mode = 0660;
	c->fcgi.max_params_bytes = 64 * 1024;
}

/* Applies one option (from the command line or, later, a file) to *c. Values
 * are kept by pointer: the caller keeps them alive for the daemon's life.
 * Returns 0, or an exit status after printing a message naming the option;
 * -1 asks the caller to stop with status 0 (--help, --version). */
static int apply_option(struct daemon_config *c, int opt, const char *a)
{
	uint64_t v;
	int r = 0;

	switch (opt) {
	case OPT_LISTEN:
		if (c->listen_count == MAX_LISTEN)
			return bad_value(opt, a, "at most 16 listeners");
		c->listen[c->listen_count++] = a;
		break;
	case OPT_CGI_ROOT: c->cgi_root = a; break;
	case OPT_CGI_PREFIX:
		if (a[0] != '/')
			return bad_value(opt, a, "a path starting with /");
		c->cgi_prefix = a;
		break;
	case OPT_DB: c->db = a; break;
	case OPT_SPOOL: c->spool = a; break;
	case OPT_PROCESSING:
		if (http_processing_mode_parse(a, &c->http.processing_mode) < 0)
			return bad_value(opt, a, "auto, always, opt-in or never");
		break;
	case OPT_PROCESSING_AFTER: r = parse_ms(opt, a, &c->http.processing_after_ms); break;
	case OPT_PROCESSING_INTERVAL:
		r = parse_ms(opt, a, &c->http.processing_interval_ms);
		if (r == 0 && c->http.processing_interval_ms == 0)
			r = bad_value(opt, a, "more than 0");
		break;
	case OPT_PROCESSING_MAX: r = parse_count(opt, a, UINT_MAX, &c->http.processing_max); break;
	case OPT_MAX_JOBS:
		r = parse_count(opt, a, 100000, &c->jobs.max_jobs);
		if (r == 0 && c->jobs.max_jobs == 0)
			r = bad_value(opt, a, "at least 1");
		break;
	case OPT_JOB_TIMEOUT: r = parse_ms(opt, a, &c->jobs.job_timeout_ms); break;
	case OPT_KILL_GRACE: r = parse_ms(opt, a, &c->jobs.kill_grace_ms); break;
	case OPT_MAX_OUTPUT: r = parse_bytes(opt, a, &c->jobs.max_output_bytes); break;
	case OPT_MAX_HEADER:
		r = parse_bytes(opt, a, &v);
		c->http.limits.max_header_bytes = (size_t)v;
		if (r == 0 && (v < 256 || v > 1024 * 1024))
			r = bad_value(opt, a, "between 256 and 1M");
		break;
	case OPT_MAX_URI:
		r = parse_bytes(opt, a, &v);
		c->http.limits.max_uri_bytes = (size_t)v;
		if (r == 0 && (v < 16 || v > 1024 * 1024))
			r = bad_value(opt, a, "between 16 and 1M");
		break;
	case OPT_MAX_BODY: r = parse_bytes(opt, a, &c->http.limits.max_body_bytes); break;
	case OPT_HEADER_TIMEOUT: r = parse_ms(opt, a, &c->http.header_timeout_ms); break;
	case OPT_BODY_TIMEOUT: r = parse_ms(opt, a, &c->http.body_timeout_ms); break;
	case OPT_IDLE_TIMEOUT: r = parse_ms(opt, a, &c->http.idle_timeout_ms); break;
	case OPT_MAX_CONN: r = parse_count(opt, a, 1000000, &c->http.max_connections); break;
	case OPT_PASS_AUTH: c->http.pass_authorization = 1; break;
	case OPT_QUEUE_MAX: r = parse_count(opt, a, 10000000, &c->jobs.queue_max); break;
	case OPT_JOBS_PREFIX:
		if (a[0] != '/' || strlen(a) < 2 || a[strlen(a) - 1] == '/')
			return bad_value(opt, a, "a path like /_cgiq/jobs");
		c->http.jobs_prefix = a;
		break;
	case OPT_RESULT_TTL:
		r = parse_ms(opt, a, &c->jobs.result_ttl_ms);
		if (r == 0 && c->jobs.result_ttl_ms < 1000)
			r = bad_value(opt, a, "at least 1s");
		break;
	case OPT_MAX_WAIT: r = parse_ms(opt, a, &c->http.max_wait_ms); break;
	case OPT_ON_DISCONNECT:
		if (strcmp(a, "cancel") == 0)
			c->http.detach_on_disconnect = 0;
		else if (strcmp(a, "detach") == 0)
			c->http.detach_on_disconnect = 1;
		else
			return bad_value(opt, a, "cancel or detach");
		break;
	case OPT_FASTCGI:
		if (c->fastcgi != NULL)
			return bad_value(opt, a, "given once");
		c->fastcgi = a;
		break;
	case OPT_FASTCGI_THREADS:
		r = parse_count(opt, a, 4096, &c->fcgi.threads);
		if (r == 0 && c->fcgi.threads == 0)
			r = bad_value(opt, a, "at least 1");
		break;
	case OPT_FASTCGI_MODE: {
		char *end;
		unsigned long m = strtoul(a, &end, 8);
		if (*a == '\0' || *end != '\0' || m > 0777)
			return bad_value(opt, a, "an octal mode such as 0660");
		c->fcgi.socket_mode = (unsigned)m;
		break;
	}
	case OPT_FASTCGI_OWNER: c->fcgi.socket_owner = a; break;
	case OPT_FASTCGI_ALLOW: {
		unsigned char ip[16];
		if (inet_pton(AF_INET, a, ip) != 1 && inet_pton(AF_INET6, a, ip) != 1)
			return bad_value(opt, a, "an IP address");
		if (c->fastcgi_allow_count == MAX_LISTEN)
			return bad_value(opt, a, "at most 16 addresses");
		c->fastcgi_allow[c->fastcgi_allow_count++] = a;
		break;
	}
	case OPT_FASTCGI_MAX_PARAMS:
		r = parse_bytes(opt, a, &v);
		c->fcgi.max_params_bytes = (size_t)v;
		if (r == 0 && (v < 1024 || v > 16 * 1024 * 1024))
			r = bad_value(opt, a, "between 1k and 16M");
		break;
	case OPT_LOG_LEVEL:
		if (strcmp(a, "error") == 0) log_set_level(LOG_LEVEL_ERROR);
		else if (strcmp(a, "warn") == 0) log_set_level(LOG_LEVEL_WARN);
		else if (strcmp(a, "info") == 0) log_set_level(LOG_LEVEL_INFO);
		else if (strcmp(a, "debug") == 0) log_set_level(LOG_LEVEL_DEBUG);
		else return bad_value(opt, a, "error, warn, info or debug");
		break;
	case OPT_CONFIG: c->config_file = a; break;
	case OPT_CHECK_CONFIG: c->check_only = 1; break;
	case OPT_TEST: c->check_only = 1; break;
	case OPT_MAX_RUNNING: r = parse_count(opt, a, 100000, &c->max_running); break;
	case OPT_RETRY_INTERRUPTED: c->retry_interrupted = 1; break;
	case OPT_HELP: fputs(USAGE, stdout); return -1;
	case OPT_VERSION: printf("cgiq %s\n", CGIQ_VERSION); return -1;
	default:
		fprintf(stderr, "cgiq: unknown option --%s\n", opt_name(opt));
		return 2;
	}
	return r;
}

/* ---------------- configuration file ---------------- */

#define CONF_FILE_MAX_BYTES (1024 * 1024)

/* Options that add to a list each time they are given. */
static const int REPEATABLE_OPTS[] = { OPT_LISTEN, OPT_FASTCGI_ALLOW };
/* Options that mean nothing inside a file. */
static const int NOT_IN_FILE_OPTS[] = { OPT_CONFIG, OPT_CHECK_CONFIG, OPT_TEST, OPT_HELP, OPT_VERSION };
/* What a script block may set: the settings resolved per job (struct job_policy). */
static const int SCRIPT_BLOCK_OPTS[] = {
	OPT_JOB_TIMEOUT, OPT_KILL_GRACE, OPT_MAX_OUTPUT, OPT_PROCESSING, OPT_PROCESSING_AFTER,
	OPT_PROCESSING_INTERVAL, OPT_PROCESSING_MAX, OPT_ON_DISCONNECT, OPT_MAX_RUNNING,
	OPT_RETRY_INTERRUPTED,
};

static int opt_in(int opt, const int *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == opt)
			return 1;
	return 0;
}

/* One entry of the file, resolved to an option. */
struct conf_item {
	int opt;
	const char *value; /* NULL for a flag */
	int skip;          /* a flag set to "no": nothing to apply */
};

/* What the last parse_args owns: the file's bytes (option values point into
 * them for the daemon's life), its entries and the script rules. Freed by the
 * next parse_args or at exit, so the leak checker stays quiet. */
static struct {
	char *text;
	struct app_conf conf;
	struct conf_item *items;
	struct job_script_rule *rules;
	int atexit_done;
} conf_owned;

static void conf_owned_free(void)
{
	free(conf_owned.text);
	app_conf_free(&conf_owned.conf);
	free(conf_owned.items);
	free(conf_owned.rules);
	conf_owned.text = NULL;
	conf_owned.items = NULL;
	conf_owned.rules = NULL;
}

static char option_where_buf[PATH_MAX + 32];

static const char *where(const char *file, unsigned line)
{
	snprintf(option_where_buf, sizeof(option_where_buf), "%s:%u", file, line);
	return option_where_buf;
}

/* Maps an entry to its option and checks it may appear where it is.
 * Returns 0 or 2 after a message naming FILE:LINE. */
static int conf_resolve(const char *file, const struct app_conf_entry *en, struct conf_item *it)
{
	const struct option *o = NULL;

	for (const struct option *q = LONG_OPTS; q->name && o == NULL; q++)
		if (strcmp(q->name, en->key) == 0)
			o = q;
	for (const struct option *q = SCRIPT_ONLY_OPTS; q->name && o == NULL; q++) {
		if (strcmp(q->name, en->key) == 0) {
			o = q;
			if (en->block < 0) {
				fprintf(stderr, "%s:%u: '%s' is only allowed inside a script block\n", file,
				        en->line, en->key);
				return 2;
			}
		}
	}
	if (o == NULL) {
		fprintf(stderr, "%s:%u: unknown key '%s' (keys are the long options of cgiq --help)\n", file,
		        en->line, en->key);
		return 2;
	}
	if (opt_in(o->val, NOT_IN_FILE_OPTS, UTIL_ARRAY_LEN(NOT_IN_FILE_OPTS))) {
		fprintf(stderr, "%s:%u: '%s' cannot be set in a configuration file\n", file, en->line, en->key);
		return 2;
	}
	if (en->block >= 0 && !opt_in(o->val, SCRIPT_BLOCK_OPTS, UTIL_ARRAY_LEN(SCRIPT_BLOCK_OPTS))) {
		fprintf(stderr,
		        "%s:%u: '%s' cannot be set per script (a script block takes job-timeout, kill-grace, "
		        "max-output-bytes, processing, processing-after, processing-interval, processing-max, "
		        "on-disconnect, max-running, retry-interrupted)\n",
		        file, en->line, en->key);
		return 2;
	}
	it->opt = o->val;
	it->value = en->value;
	it->skip = 0;
	if (o->has_arg == no_argument) {
		it->value = NULL;
		if (strcmp(en->value, "no") == 0) {
			it->skip = 1;
		} else if (strcmp(en->value, "yes") != 0) {
			fprintf(stderr, "%s:%u: %s: invalid value '%s' (yes or no)\n", file, en->line, en->key,
			        en->value);
			return 2;
		}
	}
	return 0;
}

/* Applies the items of block (-1: the top level) to c, naming their lines in
 * messages. skip_opts: options left out (given on the command line). */
static int conf_apply(struct daemon_config *c, const char *file, int block, const int *skip_opts,
                      size_t skip_count)
{
	const struct app_conf *cf = &conf_owned.conf;
	int r = 0;

	for (size_t i = 0; i < cf->entry_count && r == 0; i++) {
		const struct conf_item *it = &conf_owned.items[i];
		if (cf->entries[i].block != block || it->skip || opt_in(it->opt, skip_opts, skip_count))
			continue;
		option_where = where(file, cf->entries[i].line);
		r = apply_option(c, it->opt, it->value);
	}
	option_where = NULL;
	return r;
}

/* Reads and checks FILE: syntax, keys, places, duplicates and every value
 * (on a scratch configuration). Returns 0 or an exit status after a message. */
static int conf_load(const char *file)
{
	struct app_conf *cf = &conf_owned.conf;
	struct app_conf_error err;
	struct daemon_config scratch;
	struct stat st;
	size_t len = 0;
	int fd, r;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cgiq: --config %s: %s\n", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONF_FILE_MAX_BYTES) {
		fprintf(stderr, "cgiq: --config %s: not a regular file of at most %d bytes\n", file,
		        CONF_FILE_MAX_BYTES);
		close(fd);
		return 2;
	}
	conf_owned.text = util_xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, conf_owned.text + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank while read: parse what there is */
		len += (size_t)n;
	}
	close(fd);
	if (app_conf_parse(conf_owned.text, len, cf, &err) < 0) {
		fprintf(stderr, "%s:%u: %s\n", file, err.line, err.message);
		return 2;
	}
	conf_owned.items = util_xcalloc(cf->entry_count + 1, sizeof(*conf_owned.items));
	for (size_t i = 0; i < cf->entry_count; i++) {
		const struct app_conf_entry *en = &cf->entries[i];
		r = conf_resolve(file, en, &conf_owned.items[i]);
		if (r != 0)
			return r;
		if (opt_in(conf_owned.items[i].opt, REPEATABLE_OPTS, UTIL_ARRAY_LEN(REPEATABLE_OPTS)))
			continue;
		for (size_t k = 0; k < i; k++) {
			if (cf->entries[k].block == en->block && conf_owned.items[k].opt == conf_owned.items[i].opt) {
				fprintf(stderr, "%s:%u: '%s' given again (first at line %u)\n", file, en->line,
				        en->key, cf->entries[k].line);
				return 2;
			}
		}
	}
	for (size_t b = 0; b < cf->block_count; b++) {
		if (cf->blocks[b].pattern[0] != '/') {
			fprintf(stderr, "%s:%u: script pattern '%s' must start with / (it is matched against "
			        "the script's path below --cgi-root, such as /reports/q3.pl)\n",
			        file, cf->blocks[b].line, cf->blocks[b].pattern);
			return 2;
		}
	}
	/* Every value is checked, even one the command line overrides. */
	defaults(&scratch);
	r = conf_apply(&scratch, file, -1, NULL, 0);
	for (size_t b = 0; b < cf->block_count && r == 0; b++) {
		defaults(&scratch);
		r = conf_apply(&scratch, file, (int)b, NULL, 0);
	}
	return r < 0 ? 2 : r;
}

static void policy_of(const struct daemon_config *c, struct job_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->job_timeout_ms = c->jobs.job_timeout_ms;
	p->kill_grace_ms = c->jobs.kill_grace_ms;
	p->max_output_bytes = c->jobs.max_output_bytes;
	p->processing_mode = (int)c->http.processing_mode;
	p->processing_after_ms = c->http.processing_after_ms;
	p->processing_interval_ms = c->http.processing_interval_ms;
	p->processing_max = c->http.processing_max;
	p->detach_on_disconnect = c->http.detach_on_disconnect;
	p->max_running = c->max_running;
	p->retry_interrupted = c->retry_interrupted;
}

/* Each script block on top of the final global settings: a key the block
 * leaves out takes the global value. Into c->jobs.rules. */
static int conf_build_rules(struct daemon_config *c, const char *file)
{
	const struct app_conf *cf = &conf_owned.conf;

	if (cf->block_count == 0)
		return 0;
	conf_owned.rules = util_xcalloc(cf->block_count, sizeof(*conf_owned.rules));
	for (size_t b = 0; b < cf->block_count; b++) {
		struct daemon_config tmp = *c;
		int r;

		tmp.max_running = 0;
		tmp.retry_interrupted = 0;
		r = conf_apply(&tmp, file, (int)b, NULL, 0);
		if (r != 0)
			return r < 0 ? 2 : r;
		conf_owned.rules[b].pattern = cf->blocks[b].pattern;
		policy_of(&tmp, &conf_owned.rules[b].policy);
	}
	c->jobs.rules = conf_owned.rules;
	c->jobs.rule_count = (unsigned)cf->block_count;
	return 0;
}

/* The command line after the configuration file: returns -1 to go on, else
 * an exit status. */
static int parse_args(int argc, char **argv, struct daemon_config *c)
{
	struct conf_item *cli;
	int *cli_opts;
	size_t cli_count = 0;
	const char *file = NULL;
	int opt, r = -1;

	conf_owned_free();
	if (!conf_owned.atexit_done) {
		conf_owned.atexit_done = 1;
		atexit(conf_owned_free);
	}
	defaults(c);
	cli = util_xcalloc((size_t)argc + 1, sizeof(*cli));
	cli_opts = util_xcalloc((size_t)argc + 1, sizeof(*cli_opts));
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", LONG_OPTS, NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			if (optopt)
				fprintf(stderr, "cgiq: option --%s needs a value\n", opt_name(optopt));
			else
				fprintf(stderr, "cgiq: unknown option '%s' (see cgiq --help)\n", argv[optind - 1]);
			r = 2;
			goto out;
		}
		if (opt == OPT_HELP || opt == OPT_VERSION) {
			apply_option(c, opt, optarg);
			r = 0;
			goto out;
		}
		if (opt == OPT_CONFIG)
			file = optarg;
		cli[cli_count].opt = opt;
		cli[cli_count].value = optarg;
		cli_opts[cli_count++] = opt;
	}
	if (optind < argc) {
		fprintf(stderr, "cgiq: unexpected argument '%s' (see cgiq --help)\n", argv[optind]);
		r = 2;
		goto out;
	}
	if (file) {
		r = conf_load(file);
		if (r != 0)
			goto out;
		/* The file first, without the options the command line gives: a
		 * value is replaced, and a list (--listen) on the command line
		 * replaces the file's list rather than adding to it. */
		r = conf_apply(c, file, -1, cli_opts, cli_count);
		if (r != 0)
			goto out;
	}
	for (size_t i = 0; i < cli_count; i++) {
		r = apply_option(c, cli[i].opt, cli[i].value);
		if (r != 0)
			goto out;
	}
	if (file) {
		r = conf_build_rules(c, file);
		if (r != 0)
			goto out;
	}
	r = -1;
	if (c->cgi_root == NULL) {
		fprintf(stderr, "cgiq: --cgi-root DIR is required (see cgiq --help)\n");
		r = 2;
		goto out;
	}
	/* A socket handed over by systemd or spawn-fcgi is for FastCGI. */
	if (c->fastcgi == NULL && fcgi_inherited_socket())
		c->fastcgi = "inherit";
	if (c->listen_count == 0 && c->fastcgi == NULL)
		c->listen[c->listen_count++] = "127.0.0.1:8080";
out:
	free(cli);
	free(cli_opts);
	return r < 0 ? -1 : r;
}

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

static uv_signal_t sig_term, sig_int;
static struct http_server *the_server;
static struct fcgi_front *the_fcgi;
static struct job_engine *the_engine;

static void on_stop_signal(uv_signal_t *h, int signum)
{
	log_info("signal %d: shutting down", signum);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	(void)h;
	job_engine_close(the_engine, "cgiq shut down while the job ran");
	http_server_close(the_server);
	fcgi_front_close(the_fcgi);
}

int app_daemon_main(int argc, char **argv)
{
	struct daemon_config c;
	struct store *store = NULL;
	char root[PATH_MAX], prefix[PATH_MAX];
	uv_loop_t *loop = uv_default_loop();
	struct stat st;
	int r;

	r = parse_args(argc, argv, &c);
	if (r >= 0)
		return r;
	if (realpath(c.cgi_root, root) == NULL || stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cgiq: --cgi-root: '%s' is not a directory\n", c.cgi_root);
		return 2;
	}
	/* "/cgi-bin/" and "/cgi-bin" mean the same mount point. */
	snprintf(prefix, sizeof(prefix), "%s", c.cgi_prefix);
	for (size_t n = strlen(prefix); n > 1 && prefix[n - 1] == '/'; n--)
		prefix[n - 1] = '\0';
	c.http.cgi_root = root;
	c.http.cgi_prefix = prefix;
	c.jobs.cgi_root = root;
	if (c.check_only) {
		fprintf(stderr, "cgiq: configuration%s%s ok\n", c.config_file ? " file " : "",
		        c.config_file ? c.config_file : "");
		return 0;
	}

	if (util_mkdirs(c.spool) < 0 || ensure_parent_dir(c.db) < 0) {
		fprintf(stderr, "cgiq: cannot create %s or the directory of %s: %s\n", c.spool, c.db,
		        strerror(errno));
		return 1;
	}
	c.http.spool_dir = c.spool;
	c.jobs.spool_dir = c.spool;
	c.jobs.db_path = c.db;

	signal(SIGPIPE, SIG_IGN);
	r = store_open(c.db, &store);
	if (r < 0) {
		fprintf(stderr, "cgiq: cannot open the job database %s\n", c.db);
		return 1;
	}
	r = job_engine_open(loop, store, &c.jobs, &the_engine);
	if (r < 0) {
		fprintf(stderr, "cgiq: cannot start the job engine: %s\n", strerror(-r));
		store_close(store);
		return 1;
	}
	http_server_open(loop, the_engine, &c.http, &the_server);
	for (unsigned i = 0; i < c.listen_count; i++) {
		r = http_server_listen(the_server, c.listen[i]);
		if (r < 0) {
			fprintf(stderr, "cgiq: --listen %s: %s\n", c.listen[i],
			        r == -EINVAL ? "not an address (127.0.0.1:8080, [::1]:8080, unix:/path)"
			                     : uv_strerror(r));
			job_engine_close(the_engine, "start-up failed");
			http_server_close(the_server);
			uv_run(loop, UV_RUN_DEFAULT);
			store_close(store);
			return r == -EINVAL ? 2 : 1;
		}
	}
	if (c.fastcgi) {
		c.fcgi.params.cgi_root = root;
		c.fcgi.params.pass_authorization = c.http.pass_authorization;
		c.fcgi.allow = c.fastcgi_allow;
		c.fcgi.max_body_bytes = c.http.limits.max_body_bytes;
		c.fcgi.body_mem_bytes = c.http.body_mem_bytes;
		c.fcgi.spool_dir = c.spool;
		r = fcgi_front_open(loop, the_engine, &c.fcgi, &the_fcgi);
		if (r == 0)
			r = fcgi_front_listen(the_fcgi, c.fastcgi);
		if (r < 0) {
			fprintf(stderr, "cgiq: --fastcgi %s: %s\n", c.fastcgi,
			        r == -EINVAL ? "not an address (unix:/path, 127.0.0.1:9000, [::1]:9000, inherit)"
			                     : strerror(-r));
			job_engine_close(the_engine, "start-up failed");
			http_server_close(the_server);
			fcgi_front_close(the_fcgi);
			uv_run(loop, UV_RUN_DEFAULT);
			store_close(store);
			return r == -EINVAL ? 2 : 1;
		}
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&sig_int, on_stop_signal, SIGINT);
	log_info("cgiq %s: programs from %s at %s, jobs in %s", CGIQ_VERSION, root, prefix, c.db);

	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	store_close(store);
	log_info("stopped");
	return 0;
}
