/*
 * The daemon's options: one table of long options, their defaults and
 * checks (apply_option), the configuration file with its script blocks, and
 * the command line on top (app__parse_args).
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"
#include "options.h"
#include "front/front.h"

static const char USAGE[] =
	"Usage: cgiq [OPTIONS]                 run the gateway\n"
	"       cgiq jobs [--db FILE] [--state STATE] [--limit N] [--json]\n"
	"       cgiq job ID [--db FILE] [--json]\n"
	"\n"
	"Runs CGI programs (RFC 3875) as jobs recorded in SQLite, and keeps HTTP\n"
	"clients waiting with 102 Processing while a job runs.\n"
	"\n"
	"Listening and programs:\n"
	"  --listen ADDR              127.0.0.1:8080, [::1]:8080, 8080 (loopback) or unix:/path/sock;\n"
	"                             repeatable (default 127.0.0.1:8080; port 0 = any free port)\n"
	"  --listen-mode MODE         permissions of unix: listeners, octal (default 0660)\n"
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
	"  --processing MODE          auto (default): only to clients known to handle them\n"
	"                             and not behind a proxy; always; opt-in: only with\n"
	"                             Prefer: processing; never\n"
	"  --processing-after DUR     first 102 after this long (default 1s)\n"
	"  --processing-interval DUR  then one every DUR (default 10s)\n"
	"  --processing-max N         at most N per request, 0 = no cap (default 0)\n"
	"  --processing-client 'PATTERN MAX'\n"
	"                             auto: clients whose User-Agent matches PATTERN ('*' is any\n"
	"                             run) get at most MAX 102s (a number, none or unlimited);\n"
	"                             looked at before the built-in list; repeatable\n"
	"  --processing-relay ADDR    a proxy at ADDR (10.0.0.0/8, ::1, unix) relays 102s\n"
	"                             (HAProxy does): its requests are not refused them; repeatable\n"
	"  --processing-misread-file FILE\n"
	"                             User-Agents seen taking a 102 as their answer, kept across\n"
	"                             restarts (default SPOOL/.cgiq-102-misread; SIGHUP rereads it)\n"
	"  --processing-misread-ttl DUR\n"
	"                             such a User-Agent gets no unsolicited 102s for DUR\n"
	"                             (default 7d; 0 = keep no evidence)\n"
	"\n"
	"Jobs:\n"
	"  --max-jobs N               programs running at once; more wait in FIFO order (default 16)\n"
	"  --job-timeout DUR          a job running longer is killed, 504 (default 5m, 0 = none)\n"
	"  --kill-grace DUR           SIGTERM to the process group, then SIGKILL after DUR (default 5s)\n"
	"  --stderr-log-bytes SIZE    stderr of one job that reaches the log; beyond, lines are counted,\n"
	"                             one line at its end says how many (default 64k, 0 = no limit)\n"
	"  --stderr-log-rate N        stderr lines of one job logged per second (default 100, 0 = any)\n"
	"  --max-stderr-bytes SIZE    stderr a program may write; beyond: killed, 502 (default 1G, 0 = any)\n"
	"  --leftovers POLICY         processes a program leaves running when it exits, also outside\n"
	"                             its group (setsid, double fork): kill (default: SIGTERM at the\n"
	"                             job's end, SIGKILL after --kill-grace) or keep (logged, counted)\n"
	"  --max-output SIZE          body bytes a program may write; beyond: killed, 502 (default 1G;\n"
	"                             --max-output-bytes is the same option)\n"
	"  --queue-max N              jobs waiting for a slot; beyond: 503 + Retry-After (default 1000)\n"
	"\n"
	"Asynchronous jobs and results:\n"
	"  --jobs-prefix PATH         status monitor URLs: PATH/{id}, PATH/{id}/result (default /_cgiq/jobs)\n"
	"  --result-ttl DUR           rows and kept results are deleted this long after the end (default 24h)\n"
	"  --max-results-bytes SIZE   kept results in all; beyond, the oldest are deleted early\n"
	"                             (default 10G, 0 = no cap)\n"
	"  --max-wait DUR             Prefer: wait=N is clamped to this (default 5m)\n"
	"  --on-disconnect POLICY     client gone while its job runs: cancel (default) or detach\n"
	"  --coalesce PATTERN         concurrent GET/HEAD requests for a program whose path below\n"
	"                             --cgi-root matches (as script blocks, e.g. /reports/*.pl) and\n"
	"                             the same query share one job; repeatable (default: never)\n"
	"\n"
	"Requests:\n"
	"  --max-header-bytes SIZE    request line + headers, beyond: 431 (default 32k)\n"
	"  --max-uri-bytes SIZE       request-target, beyond: 414 (default 8k)\n"
	"  --max-body-bytes SIZE      request body, beyond: 413 (default 64M)\n"
	"  --header-timeout DUR       whole request head within DUR, else 408 (default 10s)\n"
	"  --body-timeout DUR         a gap this long in the body: 408 (default 30s)\n"
	"  --body-min-rate SIZE       bytes/s a body must average once it took --body-timeout:\n"
	"                             else 408 (default 500, 0 = any rate)\n"
	"  --idle-timeout DUR         idle keep-alive connections are closed (default 60s)\n"
	"  --max-connections N        beyond: 503 and close (default 4096)\n"
	"\n"
	"FastCGI (behind nginx, like fcgiwrap):\n"
	"  --fastcgi ADDR             unix:/run/cgiq.sock, 127.0.0.1:9000 or inherit (a socket from\n"
	"                             systemd or spawn-fcgi, also used when found without this option)\n"
	"  --fastcgi-threads N        ignored (the FastCGI front has no threads); kept for old command lines\n"
	"  --fastcgi-mode MODE        unix socket permissions, octal (default 0660)\n"
	"  --fastcgi-owner USER[:GROUP]  unix socket owner (default: cgiq's user)\n"
	"  --fastcgi-allow ADDR       TCP peer allowed to connect; repeatable (default: loopback only)\n"
	"  --fastcgi-max-params SIZE  parameters of one request (default 64k); a request that\n"
	"                             declares more is closed before they are read (up to 64k;\n"
	"                             a larger cap is checked once they are read: 431)\n"
	"  --fastcgi-accel-redirect PREFIX  kept results (GET {jobs-prefix}/ID/result) are answered\n"
	"                             with X-Accel-Redirect: PREFIX/FILE for nginx to serve from an\n"
	"                             internal location aliased to --spool (default off)\n"
	"  --fastcgi-read-timeout DUR a read or write on a FastCGI connection waits at most DUR, then\n"
	"                             the connection is closed (default 30s, 0 = forever)\n"
	"  --fastcgi-idle-timeout DUR a kept FastCGI connection waits this long for its next\n"
	"                             request (default 60s, 0 = forever)\n"
	"\n"
	"Observability:\n"
	"  --access-log FILE|-|off    one line per request, Combined Log Format + job id, 102s,\n"
	"                             job and request ms; - = stdout (default off)\n"
	"  --admin-listen ADDR        /metrics, /health, /jobs on their own address (default off);\n"
	"                             loopback or unix: only, never a --listen address\n"
	"  --admin-allow-public       let --admin-listen use a non-loopback address\n"
	"Lifecycle:\n"
	"  --drain-timeout DUR        SIGTERM/SIGINT: running jobs may finish for DUR, then are killed\n"
	"                             (default 30s, 0 = kill at once); a second signal ends the drain\n"
	"  --log-file FILE            log here instead of stderr; SIGHUP reopens it (log rotation)\n"
	"  --rerun-interrupted        asynchronous jobs running when cgiq died run again at the next\n"
	"                             start (default: they end interrupted; programs see CGIQ_JOB_ID)\n"
	"Privileges and limits (started as root, cgiq drops privileges once its sockets are bound):\n"
	"  --user USER                run as USER (name or uid); as root, needed unless --allow-root\n"
	"  --group GROUP              run with GROUP alone (default: USER's primary group and groups)\n"
	"  --program-user USER        run programs as USER, which cannot signal cgiq nor open its\n"
	"                             files (default with --user: " APP_PROGRAM_USER_DEFAULT "; --user's own\n"
	"                             name runs them as cgiq's user)\n"
	"  --allow-root               allow running programs as root (no --user, or --user root)\n"
	"  --rlimit-cpu DUR           CPU time of each program, whole seconds (SIGXCPU, then SIGKILL 1s later)\n"
	"  --rlimit-as SIZE           address space of each program\n"
	"  --rlimit-nofile N          open files of each program\n"
	"  --rlimit-nproc N           processes of the programs' user (not enforced for root)\n"
	"  --rlimit-fsize SIZE        largest file a program may write (SIGXFSZ)\n"
	"  --rlimit-core SIZE         core file size of each program; 0 = none (a program killed\n"
	"                             by SIGXCPU or SIGXFSZ would dump core in its directory)\n"
	"  --nice N                   niceness of each program, -20..19 (default: cgiq's)\n"
	"                             (unset limits are inherited from cgiq)\n"
	"Configuration file:\n"
	"  --config FILE              read options from FILE (key = value lines, script blocks;\n"
	"                             see cgiq(8)); the command line overrides it\n"
	"  --check-config, --test     check the configuration and exit (0 when valid)\n"
	"\n"
	"Other:\n"
	"  --log-level LEVEL          error, warn, info (default), debug\n"
	"  --help, --version\n"
	"\n"
	"DUR: 250ms, 2s, 5m, 1h, 7d (a bare number is seconds). SIZE: 512, 64k, 10M, 1G.\n";

enum {
	OPT_LISTEN = 256, OPT_CGI_ROOT, OPT_CGI_PREFIX, OPT_DB, OPT_SPOOL, OPT_PROCESSING,
	OPT_PROCESSING_AFTER, OPT_PROCESSING_INTERVAL, OPT_PROCESSING_MAX, OPT_MAX_JOBS,
	OPT_JOB_TIMEOUT, OPT_KILL_GRACE, OPT_MAX_OUTPUT, OPT_MAX_HEADER, OPT_MAX_URI, OPT_MAX_BODY,
	OPT_HEADER_TIMEOUT, OPT_BODY_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_MAX_CONN, OPT_PASS_AUTH,
	OPT_LOG_LEVEL, OPT_HELP, OPT_VERSION, OPT_QUEUE_MAX, OPT_JOBS_PREFIX, OPT_RESULT_TTL,
	OPT_MAX_WAIT, OPT_ON_DISCONNECT, OPT_COALESCE, OPT_MAX_RESULTS, OPT_LISTEN_MODE, OPT_BODY_MIN_RATE,
	OPT_FASTCGI, OPT_FASTCGI_THREADS, OPT_FASTCGI_MODE, OPT_FASTCGI_OWNER, OPT_FASTCGI_ALLOW,
	OPT_FASTCGI_MAX_PARAMS, OPT_FASTCGI_ACCEL,
	OPT_ACCESS_LOG, OPT_ADMIN_LISTEN, OPT_ADMIN_ALLOW_PUBLIC,
	OPT_DRAIN_TIMEOUT, OPT_LOG_FILE, OPT_RERUN_INTERRUPTED,
	OPT_USER, OPT_GROUP, OPT_PROGRAM_USER, OPT_ALLOW_ROOT, OPT_RLIMIT_CPU, OPT_RLIMIT_AS, OPT_RLIMIT_NOFILE,
	OPT_RLIMIT_NPROC, OPT_RLIMIT_FSIZE, OPT_NICE, OPT_RLIMIT_CORE,
	OPT_CONFIG, OPT_CHECK_CONFIG, OPT_TEST, OPT_MAX_RUNNING, OPT_RETRY_INTERRUPTED, OPT_COALESCE_RULE,
	OPT_PROCESSING_CLIENT, OPT_PROCESSING_RELAY, OPT_PROCESSING_MISREAD_FILE, OPT_PROCESSING_MISREAD_TTL,
	OPT_LEFTOVERS, OPT_STDERR_LOG_BYTES, OPT_STDERR_LOG_RATE, OPT_MAX_STDERR,
	OPT_FASTCGI_READ_TIMEOUT, OPT_FASTCGI_IDLE_TIMEOUT,
};

static const struct option LONG_OPTS[] = {
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"listen-mode", required_argument, NULL, OPT_LISTEN_MODE},
	{"cgi-root", required_argument, NULL, OPT_CGI_ROOT},
	{"cgi-prefix", required_argument, NULL, OPT_CGI_PREFIX},
	{"db", required_argument, NULL, OPT_DB},
	{"spool", required_argument, NULL, OPT_SPOOL},
	{"processing", required_argument, NULL, OPT_PROCESSING},
	{"processing-after", required_argument, NULL, OPT_PROCESSING_AFTER},
	{"processing-interval", required_argument, NULL, OPT_PROCESSING_INTERVAL},
	{"processing-max", required_argument, NULL, OPT_PROCESSING_MAX},
	{"processing-client", required_argument, NULL, OPT_PROCESSING_CLIENT},
	{"processing-relay", required_argument, NULL, OPT_PROCESSING_RELAY},
	{"processing-misread-file", required_argument, NULL, OPT_PROCESSING_MISREAD_FILE},
	{"processing-misread-ttl", required_argument, NULL, OPT_PROCESSING_MISREAD_TTL},
	{"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
	{"job-timeout", required_argument, NULL, OPT_JOB_TIMEOUT},
	{"kill-grace", required_argument, NULL, OPT_KILL_GRACE},
	{"leftovers", required_argument, NULL, OPT_LEFTOVERS},
	{"stderr-log-bytes", required_argument, NULL, OPT_STDERR_LOG_BYTES},
	{"stderr-log-rate", required_argument, NULL, OPT_STDERR_LOG_RATE},
	{"max-stderr-bytes", required_argument, NULL, OPT_MAX_STDERR},
	{"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
	{"max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT},
	{"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
	{"max-uri-bytes", required_argument, NULL, OPT_MAX_URI},
	{"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
	{"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
	{"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
	{"body-min-rate", required_argument, NULL, OPT_BODY_MIN_RATE},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"max-connections", required_argument, NULL, OPT_MAX_CONN},
	{"pass-authorization", no_argument, NULL, OPT_PASS_AUTH},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"queue-max", required_argument, NULL, OPT_QUEUE_MAX},
	{"jobs-prefix", required_argument, NULL, OPT_JOBS_PREFIX},
	{"result-ttl", required_argument, NULL, OPT_RESULT_TTL},
	{"max-wait", required_argument, NULL, OPT_MAX_WAIT},
	{"on-disconnect", required_argument, NULL, OPT_ON_DISCONNECT},
	{"coalesce", required_argument, NULL, OPT_COALESCE},
	{"max-results-bytes", required_argument, NULL, OPT_MAX_RESULTS},
	{"fastcgi", required_argument, NULL, OPT_FASTCGI},
	{"fastcgi-threads", required_argument, NULL, OPT_FASTCGI_THREADS},
	{"fastcgi-mode", required_argument, NULL, OPT_FASTCGI_MODE},
	{"fastcgi-owner", required_argument, NULL, OPT_FASTCGI_OWNER},
	{"fastcgi-allow", required_argument, NULL, OPT_FASTCGI_ALLOW},
	{"fastcgi-max-params", required_argument, NULL, OPT_FASTCGI_MAX_PARAMS},
	{"fastcgi-accel-redirect", required_argument, NULL, OPT_FASTCGI_ACCEL},
	{"fastcgi-read-timeout", required_argument, NULL, OPT_FASTCGI_READ_TIMEOUT},
	{"fastcgi-idle-timeout", required_argument, NULL, OPT_FASTCGI_IDLE_TIMEOUT},
	{"access-log", required_argument, NULL, OPT_ACCESS_LOG},
	{"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
	{"admin-allow-public", no_argument, NULL, OPT_ADMIN_ALLOW_PUBLIC},
	{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
	{"log-file", required_argument, NULL, OPT_LOG_FILE},
	{"rerun-interrupted", no_argument, NULL, OPT_RERUN_INTERRUPTED},
	{"user", required_argument, NULL, OPT_USER},
	{"group", required_argument, NULL, OPT_GROUP},
	{"program-user", required_argument, NULL, OPT_PROGRAM_USER},
	{"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
	{"rlimit-cpu", required_argument, NULL, OPT_RLIMIT_CPU},
	{"rlimit-as", required_argument, NULL, OPT_RLIMIT_AS},
	{"rlimit-nofile", required_argument, NULL, OPT_RLIMIT_NOFILE},
	{"rlimit-nproc", required_argument, NULL, OPT_RLIMIT_NPROC},
	{"rlimit-fsize", required_argument, NULL, OPT_RLIMIT_FSIZE},
	{"rlimit-core", required_argument, NULL, OPT_RLIMIT_CORE},
	{"nice", required_argument, NULL, OPT_NICE},
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
	/* In a block, "coalesce = yes" is that block's --coalesce PATTERN. */
	{"coalesce", no_argument, NULL, OPT_COALESCE_RULE},
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
	c->processing_misread_ttl_ms = 7ull * 24 * 3600 * 1000;
	c->http.limits.max_header_bytes = 32 * 1024;
	c->http.limits.max_uri_bytes = 8 * 1024;
	c->http.limits.max_headers = 100;
	c->http.limits.max_body_bytes = 64ull * 1024 * 1024;
	c->http.header_timeout_ms = 10000;
	c->http.body_timeout_ms = 30000;
	c->http.body_min_rate = 500;
	c->http.idle_timeout_ms = 60000;
	c->http.body_mem_bytes = 64 * 1024;
	c->http.max_connections = 4096;
	c->jobs.max_jobs = 16;
	c->jobs.job_timeout_ms = 5 * 60 * 1000;
	c->jobs.kill_grace_ms = 5000;
	c->jobs.max_output_bytes = 1024ull * 1024 * 1024;
	c->jobs.output_mem_bytes = 256 * 1024;
	c->jobs.stderr_tail_bytes = 4096;
	c->jobs.stderr_log_bytes = 64 * 1024;
	c->jobs.stderr_log_rate = 100;
	c->jobs.max_stderr_bytes = 1024ull * 1024 * 1024;
	c->jobs.queue_max = 1000;
	c->jobs.result_ttl_ms = 24ull * 3600 * 1000;
	c->jobs.max_results_bytes = 10ull * 1024 * 1024 * 1024;
	c->http.jobs_prefix = "/_cgiq/jobs";
	c->http.max_wait_ms = 5 * 60 * 1000;
	c->http.detach_on_disconnect = 0;
	c->fcgi.threads = 16;
	c->fcgi.socket_mode = 0660;
	c->http.unix_mode = 0660;
	c->fcgi.max_params_bytes = 64 * 1024;
	c->fcgi.read_timeout_ms = 30000;
	c->fcgi.idle_timeout_ms = 60000;
	c->drain_timeout_ms = 30000;
}

/* Applies one option (from the command line or, later, a file) to *c. Values
 * are kept by pointer: the caller keeps them alive for the daemon's life.
 * Returns 0, or an exit status after printing a message naming the option;
 * -1 asks the caller to stop with status 0 (--help, --version).
 * Longer than 80 lines: one short case per option, the whole list in one
 * place (a table of names, kinds, defaults and help that drives this, --help
 * and the man page check is not built yet). */
static int apply_option(struct daemon_config *c, int opt, const char *a)
{
	uint64_t v = 0;
	unsigned n = 0;
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
	case OPT_PROCESSING_CLIENT: {
		size_t i = c->http.processing_client_count;
		const char *why = NULL;
		if (i == MAX_PROCESSING_CLIENTS)
			return bad_value(opt, a, "at most 64 rows");
		if (http_processing_client_parse(a, &c->processing_clients[i], c->processing_patterns[i],
		                                 PROCESSING_PATTERN_MAX, &why) < 0)
			return bad_value(opt, a, why);
		c->http.processing_clients = c->processing_clients;
		c->http.processing_client_count = i + 1;
		break;
	}
	case OPT_PROCESSING_RELAY: {
		size_t i = c->http.processing_relay_count;
		if (i == MAX_LISTEN)
			return bad_value(opt, a, "at most 16 relays");
		if (http_relay_parse(a, &c->processing_relays[i]) < 0)
			return bad_value(opt, a, "an address, an address/prefix-length, or unix");
		c->http.processing_relays = c->processing_relays;
		c->http.processing_relay_count = i + 1;
		break;
	}
	case OPT_PROCESSING_MISREAD_FILE: c->processing_misread_file = a; break;
	case OPT_PROCESSING_MISREAD_TTL: r = parse_ms(opt, a, &c->processing_misread_ttl_ms); break;
	case OPT_MAX_JOBS:
		r = parse_count(opt, a, 100000, &c->jobs.max_jobs);
		if (r == 0 && c->jobs.max_jobs == 0)
			r = bad_value(opt, a, "at least 1");
		break;
	case OPT_JOB_TIMEOUT: r = parse_ms(opt, a, &c->jobs.job_timeout_ms); break;
	case OPT_KILL_GRACE: r = parse_ms(opt, a, &c->jobs.kill_grace_ms); break;
	case OPT_STDERR_LOG_BYTES: r = parse_bytes(opt, a, &c->jobs.stderr_log_bytes); break;
	case OPT_STDERR_LOG_RATE: r = parse_count(opt, a, 1000000, &c->jobs.stderr_log_rate); break;
	case OPT_MAX_STDERR: r = parse_bytes(opt, a, &c->jobs.max_stderr_bytes); break;
	case OPT_LEFTOVERS:
		if (strcmp(a, "kill") == 0)
			c->jobs.keep_leftovers = 0;
		else if (strcmp(a, "keep") == 0)
			c->jobs.keep_leftovers = 1;
		else
			return bad_value(opt, a, "kill or keep");
		break;
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
	case OPT_BODY_MIN_RATE: r = parse_bytes(opt, a, &c->http.body_min_rate); break;
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
	case OPT_MAX_RESULTS: r = parse_bytes(opt, a, &c->jobs.max_results_bytes); break;
	case OPT_COALESCE:
		if (a[0] != '/')
			return bad_value(opt, a, "a pattern starting with /, e.g. /reports/*.pl");
		if (c->coalesce_count == MAX_COALESCE)
			return bad_value(opt, a, "at most 64 patterns");
		c->coalesce[c->coalesce_count++] = a;
		c->jobs.coalesce = c->coalesce;
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
	case OPT_FASTCGI_MODE:
	case OPT_LISTEN_MODE: {
		char *end;
		unsigned long m = strtoul(a, &end, 8);
		if (*a == '\0' || *end != '\0' || m > 0777 || m == 0)
			return bad_value(opt, a, "an octal mode such as 0660");
		if (opt == OPT_LISTEN_MODE)
			c->http.unix_mode = (unsigned)m;
		else
			c->fcgi.socket_mode = (unsigned)m;
		break;
	}
	case OPT_FASTCGI_OWNER: c->fcgi.socket_owner = a; break;
	case OPT_FASTCGI_READ_TIMEOUT: r = parse_ms(opt, a, &c->fcgi.read_timeout_ms); break;
	case OPT_FASTCGI_IDLE_TIMEOUT: r = parse_ms(opt, a, &c->fcgi.idle_timeout_ms); break;
	case OPT_FASTCGI_ALLOW: {
		unsigned char ip[16];
		if (inet_pton(AF_INET, a, ip) != 1 && inet_pton(AF_INET6, a, ip) != 1)
			return bad_value(opt, a, "an IP address");
		if (c->fastcgi_allow_count == MAX_LISTEN)
			return bad_value(opt, a, "at most 16 addresses");
		c->fastcgi_allow[c->fastcgi_allow_count++] = a;
		break;
	}
	case OPT_FASTCGI_ACCEL:
		if (a[0] != '/' || a[strlen(a) - 1] == '/' || strpbrk(a, " \t\r\n") != NULL)
			return bad_value(opt, a, "a URI path like /_cgiq_spool, no trailing /");
		c->fcgi.accel_prefix = a;
		break;
	case OPT_FASTCGI_MAX_PARAMS:
		r = parse_bytes(opt, a, &v);
		c->fcgi.max_params_bytes = (size_t)v;
		if (r == 0 && (v < 1024 || v > 16 * 1024 * 1024))
			r = bad_value(opt, a, "between 1k and 16M");
		break;
	case OPT_USER: c->user = a; break;
	case OPT_GROUP: c->group = a; break;
	case OPT_PROGRAM_USER: c->program_user = a; break;
	case OPT_ALLOW_ROOT: c->allow_root = 1; break;
	case OPT_RLIMIT_CPU:
		r = parse_ms(opt, a, &v);
		if (r == 0 && v < 1000)
			r = bad_value(opt, a, "at least 1s");
		c->limits.cpu_s = (v + 999) / 1000; /* the kernel counts whole seconds */
		break;
	case OPT_RLIMIT_AS:
		r = parse_bytes(opt, a, &c->limits.as_bytes);
		if (r == 0 && c->limits.as_bytes < 1024 * 1024)
			r = bad_value(opt, a, "at least 1M");
		break;
	case OPT_RLIMIT_NOFILE:
		r = parse_count(opt, a, 1 << 30, &n);
		if (r == 0 && n < 4)
			r = bad_value(opt, a, "at least 4 (stdin, stdout, stderr and the progress pipe)");
		c->limits.nofile = n;
		break;
	case OPT_RLIMIT_NPROC:
		r = parse_count(opt, a, 1 << 30, &n);
		if (r == 0 && n < 1)
			r = bad_value(opt, a, "at least 1");
		c->limits.nproc = n;
		break;
	case OPT_RLIMIT_CORE:
		r = parse_bytes(opt, a, &c->limits.core_bytes);
		c->limits.core_set = 1;
		break;
	case OPT_RLIMIT_FSIZE:
		r = parse_bytes(opt, a, &c->limits.fsize_bytes);
		if (r == 0 && c->limits.fsize_bytes == 0)
			r = bad_value(opt, a, "at least 1");
		break;
	case OPT_NICE: {
		char *end;
		long nv;
		errno = 0;
		nv = strtol(a, &end, 10);
		if (*a == '\0' || *end != '\0' || errno != 0 || nv < -20 || nv > 19)
			return bad_value(opt, a, "a whole number from -20 to 19");
		c->limits.nice = (int)nv;
		c->limits.nice_set = 1;
		break;
	}
	case OPT_LOG_LEVEL:
		if (strcmp(a, "error") == 0) log_set_level(LOG_LEVEL_ERROR);
		else if (strcmp(a, "warn") == 0) log_set_level(LOG_LEVEL_WARN);
		else if (strcmp(a, "info") == 0) log_set_level(LOG_LEVEL_INFO);
		else if (strcmp(a, "debug") == 0) log_set_level(LOG_LEVEL_DEBUG);
		else return bad_value(opt, a, "error, warn, info or debug");
		break;
	case OPT_ACCESS_LOG:
		if (*a == '\0')
			return bad_value(opt, a, "a file, - for stdout, or off");
		c->access_log = strcmp(a, "off") == 0 ? NULL : a;
		break;
	case OPT_ADMIN_LISTEN:
		if (c->admin_listen != NULL)
			return bad_value(opt, a, "given once");
		c->admin_listen = a;
		break;
	case OPT_ADMIN_ALLOW_PUBLIC: c->admin_allow_public = 1; break;
	case OPT_DRAIN_TIMEOUT: r = parse_ms(opt, a, &c->drain_timeout_ms); break;
	case OPT_LOG_FILE:
		if (a[0] == '\0')
			return bad_value(opt, a, "a file name");
		c->log_file = a;
		break;
	case OPT_RERUN_INTERRUPTED: c->jobs.rerun_interrupted = 1; break;
	case OPT_CONFIG: c->config_file = a; break;
	case OPT_CHECK_CONFIG: c->check_only = 1; break;
	case OPT_TEST: c->check_only = 1; break;
	case OPT_MAX_RUNNING: r = parse_count(opt, a, 100000, &c->max_running); break;
	case OPT_RETRY_INTERRUPTED: c->retry_interrupted = 1; break;
	case OPT_COALESCE_RULE: c->coalesce_rule = 1; break;
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
static const int REPEATABLE_OPTS[] = { OPT_LISTEN, OPT_FASTCGI_ALLOW, OPT_COALESCE, OPT_PROCESSING_CLIENT,
                                       OPT_PROCESSING_RELAY };
/* Options that mean nothing inside a file. */
static const int NOT_IN_FILE_OPTS[] = { OPT_CONFIG, OPT_CHECK_CONFIG, OPT_TEST, OPT_HELP, OPT_VERSION };
/* What a script block may set: the settings resolved per job (struct job_policy). */
static const int SCRIPT_BLOCK_OPTS[] = {
	OPT_JOB_TIMEOUT, OPT_KILL_GRACE, OPT_MAX_OUTPUT, OPT_PROCESSING, OPT_PROCESSING_AFTER,
	OPT_PROCESSING_INTERVAL, OPT_PROCESSING_MAX, OPT_ON_DISCONNECT, OPT_MAX_RUNNING,
	OPT_RETRY_INTERRUPTED, OPT_COALESCE_RULE, OPT_RLIMIT_CPU, OPT_RLIMIT_AS, OPT_RLIMIT_NOFILE,
	OPT_RLIMIT_NPROC, OPT_RLIMIT_FSIZE, OPT_NICE, OPT_RLIMIT_CORE,
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

	/* In a block its own keys come first ("coalesce" is a flag there). */
	for (const struct option *q = SCRIPT_ONLY_OPTS; en->block >= 0 && q->name && o == NULL; q++)
		if (strcmp(q->name, en->key) == 0)
			o = q;
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
		        "on-disconnect, max-running, retry-interrupted, coalesce, rlimit-*, nice)\n",
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
	p->coalesce = c->coalesce_rule;
	p->limits = c->limits;
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
		tmp.coalesce_rule = 0;
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

/* After the options: the CGI root given, sockets from systemd or
 * spawn-fcgi taken, the default listener, and the admin listener kept off
 * the public ones. Returns -1 to go on, or 2 after a message. */
static int listeners_check(struct daemon_config *c)
{
	if (c->cgi_root == NULL) {
		fprintf(stderr, "cgiq: --cgi-root DIR is required (see cgiq --help)\n");
		return 2;
	}
	/* Sockets from systemd, picked by name: "http" ones are HTTP listeners,
	 * "fastcgi" (or a single unnamed one) the FastCGI socket. */
	{
		char msg[256];
		if (app_socket_activation(&c->inherited, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "cgiq: socket activation: %s\n", msg);
			return 2;
		}
	}
	if (c->inherited.active) {
		for (unsigned i = 0; i < c->inherited.http_count; i++) {
			if (c->listen_count == MAX_LISTEN) {
				fprintf(stderr, "cgiq: more than %d listeners\n", MAX_LISTEN);
				return 2;
			}
			c->listen[c->listen_count++] = c->inherited.http[i];
		}
		/* "--fastcgi inherit" means this socket too */
		if (c->inherited.fastcgi && (c->fastcgi == NULL || strcmp(c->fastcgi, "inherit") == 0))
			c->fastcgi = c->inherited.fastcgi;
	} else if (c->fastcgi == NULL && fcgi_inherited_socket()) {
		/* A socket handed over by spawn-fcgi (fd 0) is for FastCGI. */
		c->fastcgi = "inherit";
	}
	if (c->listen_count == 0 && c->fastcgi == NULL)
		c->listen[c->listen_count++] = "127.0.0.1:8080";
	/* The admin pages list jobs (their URIs and peers): never on the public
	 * listener, and off the loopback only when the operator says so. */
	if (c->admin_listen) {
		for (unsigned i = 0; i < c->listen_count; i++)
			if (front_addr_same(c->admin_listen, c->listen[i])) {
				fprintf(stderr, "cgiq: --admin-listen %s: the same address as --listen %s; the admin "
				        "pages must not be public\n", c->admin_listen, c->listen[i]);
				return 2;
			}
		if (c->fastcgi && front_addr_same(c->admin_listen, c->fastcgi)) {
			fprintf(stderr, "cgiq: --admin-listen %s: the same address as --fastcgi\n", c->admin_listen);
			return 2;
		}
		if (!c->admin_allow_public && !front_addr_is_local(c->admin_listen)) {
			fprintf(stderr, "cgiq: --admin-listen %s: not a loopback or unix: address (it would expose "
			        "/metrics and /jobs; add --admin-allow-public to mean it)\n", c->admin_listen);
			return 2;
		}
	}
	return -1;
}

/* The command line after the configuration file: returns -1 to go on, else
 * an exit status. */
int app__parse_args(int argc, char **argv, struct daemon_config *c)
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
	r = listeners_check(c);
out:
	free(cli);
	free(cli_opts);
	return r < 0 ? -1 : r;
}

