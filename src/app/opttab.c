/*
 * The daemon's options as one table. A row says what an option is called,
 * what kind of value it takes, its default, its help and the field it sets;
 * the command line, the configuration file, --help and the defaults are all
 * read from it, and the unit test holds the man page to it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opttab.h"
#include "store/store.h"
#include "front/front.h"

#define AT(m) .off = offsetof(struct daemon_config, m), .size = sizeof(((struct daemon_config *)0)->m)
#define NOWHERE .off = 0, .size = 0

static const char USAGE_HEAD[] =
	"Usage: cgiq [OPTIONS]                 run the gateway\n"
	"       cgiq jobs [--db FILE] [--state STATE] [--limit N] [--json]\n"
	"       cgiq job ID [--db FILE] [--json]\n"
	"\n"
	"Runs CGI programs (RFC 3875) as jobs recorded in SQLite, and keeps HTTP\n"
	"clients waiting with 102 Processing while a job runs.\n";
static const char USAGE_TAIL[] =
	"\nDUR: 250ms, 2s, 5m, 1h, 7d (a bare number is seconds). SIZE: 512, 64k, 10M, 1G.\n";

/* ---------------- options with their own reading ---------------- */

/* An address the listeners read as a start does (front_listen_check). */
static int address_ok(const char *a, const char **expect)
{
	int r = front_listen_check(a);

	if (r == -ENAMETOOLONG)
		*expect = "a unix socket path of at most 107 bytes";
	else if (r < 0)
		*expect = "HOST:PORT (numeric, port 0-65535), [V6]:PORT, PORT, unix:PATH or fd:N";
	return r < 0 ? -1 : 0;
}

static int add_listen(struct daemon_config *c, const char *a, const char **expect)
{
	if (c->listen_count == MAX_LISTEN) {
		*expect = "at most 16 listeners";
		return -1;
	}
	if (address_ok(a, expect) < 0)
		return -1;
	c->listen[c->listen_count++] = a;
	return 0;
}

static int set_fastcgi(struct daemon_config *c, const char *a, const char **expect)
{
	if (strcmp(a, "inherit") != 0 && address_ok(a, expect) < 0)
		return -1;
	c->fastcgi = a;
	return 0;
}

/* The FastCGI socket's owner, looked up as the start will (a name that
 * names nobody would otherwise pass --check-config and fail the start). */
static int set_fastcgi_owner(struct daemon_config *c, const char *a, const char **expect)
{
	uid_t uid;
	gid_t gid;

	if (front_owner_resolve(a, &uid, &gid, expect) < 0)
		return -1;
	c->fcgi.socket_owner = a;
	return 0;
}

static int set_admin_listen(struct daemon_config *c, const char *a, const char **expect)
{
	if (address_ok(a, expect) < 0)
		return -1;
	c->admin_listen = a;
	return 0;
}

/* .EXT=PATH: the path is checked at the start (it must exist then, not
 * when a file is read), the form here. */
static int add_interpreter(struct daemon_config *c, const char *a, const char **expect)
{
	const char *eq = strchr(a, '=');
	size_t elen = eq ? (size_t)(eq - a) : 0;
	struct cgi_interpreter *in;

	if (eq == NULL || a[0] != '.' || elen < 2 || elen >= sizeof(in->ext) || memchr(a, '/', elen) ||
	    eq[1] != '/') {
		*expect = ".EXT=/absolute/path, e.g. .php=/usr/bin/php-cgi";
		return -1;
	}
	if (c->interpreter_count == MAX_INTERPRETERS) {
		*expect = "at most 32 interpreters";
		return -1;
	}
	in = &c->interpreters[c->interpreter_count++];
	memcpy(in->ext, a, elen);
	in->ext[elen] = '\0';
	in->path = eq + 1;
	return 0;
}

/* NAME[,NAME...], or off. Names are file names: no '/', no leading dot. */
static int set_index(struct daemon_config *c, const char *a, const char **expect)
{
	char *rest = c->index_buf, *p;
	unsigned n = 0;

	memset(c->index, 0, sizeof(c->index));
	if (strcmp(a, "off") == 0)
		return 0;
	if (strlen(a) >= sizeof(c->index_buf)) {
		*expect = "names of 255 bytes at most in all";
		return -1;
	}
	snprintf(c->index_buf, sizeof(c->index_buf), "%s", a);
	/* strsep keeps empty names (",a", "a,,b"), which are refused */
	while ((p = strsep(&rest, ",")) != NULL) {
		if (n == MAX_INDEX || p[0] == '\0' || p[0] == '.' || strpbrk(p, "/ ") != NULL) {
			memset(c->index, 0, sizeof(c->index));
			*expect = n == MAX_INDEX ? "at most 8 names" :
			                           "file names separated by commas (index.cgi,index.php), or off";
			return -1;
		}
		c->index[n++] = p;
	}
	return 0;
}

/* NAME=VALUE for every program; NAME as a shell's, never HTTP_* (those are
 * the request's headers). */
static int add_env(struct daemon_config *c, const char *a, const char **expect)
{
	size_t n = strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");

	if (n == 0 || a[n] != '=' || (a[0] >= '0' && a[0] <= '9') || strncmp(a, "HTTP_", 5) == 0) {
		*expect = "NAME=VALUE, NAME of letters, digits and _ (not HTTP_*, the request's headers)";
		return -1;
	}
	if (c->env_count == MAX_ENV) {
		*expect = "at most 32 variables";
		return -1;
	}
	c->env[c->env_count++] = a;
	return 0;
}

/* assets, *.EXT-like names, or /patterns below the root. */
static int add_static(struct daemon_config *c, const char *a, const char **expect)
{
	if (a[0] == '\0' || strpbrk(a, " \t") != NULL || (a[0] != '/' && strchr(a, '/') != NULL)) {
		*expect = "assets, a name pattern such as *.css, or a path pattern such as /static/*";
		return -1;
	}
	if (c->static_count == MAX_STATIC) {
		*expect = "at most 32 patterns";
		return -1;
	}
	c->static_patterns[c->static_count++] = a;
	return 0;
}

static int set_cgi_prefix(struct daemon_config *c, const char *a, const char **expect)
{
	if (a[0] != '/') {
		*expect = "a path starting with /";
		return -1;
	}
	c->cgi_prefix = a;
	return 0;
}

static int set_processing(struct daemon_config *c, const char *a, const char **expect)
{
	*expect = "auto, always, opt-in or never";
	return http_processing_mode_parse(a, &c->http.processing_mode) < 0 ? -1 : 0;
}

static int add_processing_client(struct daemon_config *c, const char *a, const char **expect)
{
	size_t i = c->http.processing_client_count;

	if (i == MAX_PROCESSING_CLIENTS) {
		*expect = "at most 64 rows";
		return -1;
	}
	if (http_processing_client_parse(a, &c->processing_clients[i], c->processing_patterns[i],
	                                 PROCESSING_PATTERN_MAX, expect) < 0)
		return -1;
	c->http.processing_clients = c->processing_clients;
	c->http.processing_client_count = i + 1;
	return 0;
}

static int add_processing_relay(struct daemon_config *c, const char *a, const char **expect)
{
	size_t i = c->http.processing_relay_count;

	if (i == MAX_LISTEN) {
		*expect = "at most 16 relays";
		return -1;
	}
	if (http_relay_parse(a, &c->processing_relays[i]) < 0) {
		*expect = "an address, an address/prefix-length, or unix";
		return -1;
	}
	c->http.processing_relays = c->processing_relays;
	c->http.processing_relay_count = i + 1;
	return 0;
}

static int set_jobs_prefix(struct daemon_config *c, const char *a, const char **expect)
{
	if (a[0] != '/' || strlen(a) < 2 || a[strlen(a) - 1] == '/') {
		*expect = "a path like /_cgiq/jobs";
		return -1;
	}
	c->http.jobs_prefix = a;
	return 0;
}

static int set_store(struct daemon_config *c, const char *a, const char **expect)
{
	/* a file only with its prefix: --db names one without */
	if (store_place_normal(a) == a && !store_place_is_server(a)) {
		*expect = "postgresql://USER@HOST/DB or sqlite:FILE";
		return -1;
	}
	c->db = store_place_normal(a);
	return 0;
}

static int set_nph_prefix(struct daemon_config *c, const char *a, const char **expect)
{
	if (strcmp(a, "off") == 0) {
		c->jobs.nph_prefix = NULL;
		return 0;
	}
	if (*a == '\0' || strchr(a, '/') != NULL) {
		*expect = "a file name prefix such as nph-, or off";
		return -1;
	}
	c->jobs.nph_prefix = a;
	return 0;
}

/* A program pattern (as script blocks have them) onto a NULL-terminated
 * list of MAX_PATTERNS at most. */
static int add_pattern(const char **list, unsigned *count, const char *a, const char **expect)
{
	if (a[0] != '/') {
		*expect = "a pattern starting with /, e.g. /reports/*.pl";
		return -1;
	}
	if (*count == MAX_PATTERNS) {
		*expect = "at most 64 patterns";
		return -1;
	}
	list[(*count)++] = a;
	return 0;
}

static int add_coalesce(struct daemon_config *c, const char *a, const char **expect)
{
	if (add_pattern(c->coalesce, &c->coalesce_count, a, expect) < 0)
		return -1;
	c->jobs.coalesce = c->coalesce;
	return 0;
}

static int add_stream(struct daemon_config *c, const char *a, const char **expect)
{
	if (add_pattern(c->stream, &c->stream_count, a, expect) < 0)
		return -1;
	c->jobs.stream = c->stream;
	return 0;
}

static int add_fastcgi_allow(struct daemon_config *c, const char *a, const char **expect)
{
	unsigned char ip[16];

	if (inet_pton(AF_INET, a, ip) != 1 && inet_pton(AF_INET6, a, ip) != 1) {
		*expect = "an IP address";
		return -1;
	}
	if (c->fastcgi_allow_count == MAX_LISTEN) {
		*expect = "at most 16 addresses";
		return -1;
	}
	c->fastcgi_allow[c->fastcgi_allow_count++] = a;
	return 0;
}

static int set_accel_redirect(struct daemon_config *c, const char *a, const char **expect)
{
	if (a[0] != '/' || a[strlen(a) - 1] == '/' || strpbrk(a, " \t\r\n") != NULL) {
		*expect = "a URI path like /_cgiq_spool, no trailing /";
		return -1;
	}
	c->fcgi.accel_prefix = a;
	return 0;
}

static int set_access_log(struct daemon_config *c, const char *a, const char **expect)
{
	if (*a == '\0') {
		*expect = "a file, - for stdout, or off";
		return -1;
	}
	c->access_log = strcmp(a, "off") == 0 ? NULL : a;
	return 0;
}

static int set_log_file(struct daemon_config *c, const char *a, const char **expect)
{
	if (a[0] == '\0') {
		*expect = "a file name";
		return -1;
	}
	c->log_file = a;
	return 0;
}

static int set_rlimit_cpu(struct daemon_config *c, const char *a, const char **expect)
{
	uint64_t ms;

	if (util_parse_duration_ms(a, &ms) < 0) {
		*expect = "a duration: 250ms, 2s, 5m, 1h";
		return -1;
	}
	if (ms < 1000) {
		*expect = "at least 1s";
		return -1;
	}
	c->limits.cpu_s = (ms + 999) / 1000; /* the kernel counts whole seconds */
	return 0;
}

static int set_rlimit_core(struct daemon_config *c, const char *a, const char **expect)
{
	if (util_parse_size(a, &c->limits.core_bytes) < 0) {
		*expect = "a size: 512, 64k, 10M, 1G";
		return -1;
	}
	c->limits.core_set = 1;
	return 0;
}

static int set_nice(struct daemon_config *c, const char *a, const char **expect)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(a, &end, 10);
	if (*a == '\0' || *end != '\0' || errno != 0 || n < -20 || n > 19) {
		*expect = "a whole number from -20 to 19";
		return -1;
	}
	c->limits.nice = (int)n;
	c->limits.nice_set = 1;
	return 0;
}

static int set_log_level(struct daemon_config *c, const char *a, const char **expect)
{
	static const struct { const char *name; enum log_level level; } levels[] = {
		{"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN}, {"info", LOG_LEVEL_INFO},
		{"debug", LOG_LEVEL_DEBUG},
	};
	(void)c;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(levels); i++) {
		if (strcmp(a, levels[i].name) == 0) {
			log_set_level(levels[i].level);
			return 0;
		}
	}
	*expect = "error, warn, info or debug";
	return -1;
}

static int show_help(struct daemon_config *c, const char *a, const char **expect)
{
	(void)c, (void)a, (void)expect;
	app_opt_usage(stdout);
	return 1;
}

static int show_version(struct daemon_config *c, const char *a, const char **expect)
{
	(void)c, (void)a, (void)expect;
	printf("cgiq %s\n", CGIQ_VERSION);
	return 1;
}

static const char *const ON_DISCONNECT[] = {"cancel", "detach", NULL};
static const char *const LEFTOVERS[] = {"kill", "keep", NULL};

#define SECTION(title) {.name = title, .kind = OPT_SECTION}
#define KB 1024ull
#define MB (1024ull * 1024)

/* In --help order. Longer than the usual function: it is one table. */
const struct opt_def app_opts[] = {
	SECTION("Listening and programs"),
	{.name = "listen", .kind = OPT_CALL, .arg = "ADDR", .call = add_listen, .flags = OPT_REPEAT | OPT_DEF_SHOWN,
	 .def = "127.0.0.1:8080", .note = "port 0 = any free port",
	 .help = "127.0.0.1:8080, [::1]:8080, 8080 (loopback) or unix:/path/sock; repeatable"},
	{.name = "listen-mode", .kind = OPT_MODE, .arg = "MODE", AT(http.unix_mode), .def = "0660",
	 .help = "permissions of unix: listeners, octal"},
	{.name = "cgi-root", .kind = OPT_TEXT, .arg = "DIR", AT(cgi_root),
	 .help = "directory holding the programs (required)"},
	{.name = "cgi-prefix", .kind = OPT_CALL, .arg = "PATH", .call = set_cgi_prefix, .def = "/",
	 .help = "URL prefix mapped to --cgi-root"},
	{.name = "index", .kind = OPT_CALL, .arg = "NAME[,NAME...]", .call = set_index, .def = "index.cgi",
	 .help = "a request for a directory runs its first program of these names (and a directory asked for "
	         "without its slash gets 301 to it); off: none"},
	{.name = "static", .kind = OPT_CALL, .arg = "PATTERN", .call = add_static, .flags = OPT_REPEAT,
	 .help = "send the files that match as they are, on the HTTP front (GET and HEAD, with ETag and Range): "
	         "assets (style sheets, scripts, images, fonts, HTML, text), *.EXT, or /path/* below --cgi-root; "
	         "never an executable nor an interpreter's file; repeatable (default: none)"},
	{.name = "interpreter", .kind = OPT_CALL, .arg = ".EXT=PATH", .call = add_interpreter,
	 .flags = OPT_REPEAT | OPT_SCRIPT,
	 .help = "run files ending in .EXT with the program PATH (the file its argument, which needs to be "
	         "readable, not executable), e.g. .php=/usr/bin/php-cgi; repeatable (default: none)"},
	{.name = "env", .kind = OPT_CALL, .arg = "NAME=VALUE", .call = add_env, .flags = OPT_REPEAT,
	 .help = "set NAME to VALUE in every program's environment, over what cgiq sets (as Apache's SetEnv), "
	         "e.g. GITWEB_CONFIG=/srv/gitweb/gitweb_config.perl; repeatable (default: none)"},
	{.name = "pass-authorization", .kind = OPT_FLAG, AT(http.pass_authorization),
	 .help = "give programs the Authorization header (HTTP_AUTHORIZATION)"},

	SECTION("Records"),
	{.name = "db", .kind = OPT_TEXT, .arg = "FILE", AT(db), .def = "./var/cgiq.db", .help = "SQLite job database"},
	{.name = "store", .kind = OPT_CALL, .arg = "PLACE", .call = set_store,
	 .help = "the job store: postgresql://USER@HOST/DB (libpq's URL; PG* variables apply), or sqlite:FILE "
	         "(as --db FILE; the default is --db's)"},
	{.name = "spool", .kind = OPT_TEXT, .arg = "DIR", AT(spool), .def = "./var/spool",
	 .help = "request bodies and outputs beyond memory limits"},
	{.name = "node-name", .kind = OPT_TEXT, .arg = "NAME", AT(node_name),
	 .help = "this node's name in the job store's rows (letters, digits, '.', '-', '_'; at most 63; "
	         "the default is the host name)"},

	SECTION("102 Processing"),
	{.name = "processing", .kind = OPT_CALL, .arg = "MODE", .call = set_processing, .def = "auto",
	 .flags = OPT_SCRIPT | OPT_DEF_IN_HELP,
	 .help = "auto (default): only to clients known to handle them and not behind a proxy; always; "
	         "opt-in: only with Prefer: processing; never"},
	{.name = "processing-after", .kind = OPT_DURATION, .arg = "DUR", AT(http.processing_after_ms), .def = "1s",
	 .flags = OPT_SCRIPT, .help = "first 102 after this long"},
	{.name = "processing-interval", .kind = OPT_DURATION, .arg = "DUR", AT(http.processing_interval_ms),
	 .min = 1, .expect = "more than 0", .def = "10s", .flags = OPT_SCRIPT, .help = "then one every DUR"},
	{.name = "processing-max", .kind = OPT_COUNT, .arg = "N", AT(http.processing_max), .max = UINT_MAX,
	 .def = "0", .flags = OPT_SCRIPT, .help = "at most N per request, 0 = no cap"},
	{.name = "processing-client", .kind = OPT_CALL, .arg = "'PATTERN MAX'", .call = add_processing_client,
	 .flags = OPT_REPEAT,
	 .help = "auto: clients whose User-Agent matches PATTERN ('*' is any run) get at most MAX 102s (a "
	         "number, none or unlimited); looked at before the built-in list; repeatable"},
	{.name = "processing-relay", .kind = OPT_CALL, .arg = "ADDR", .call = add_processing_relay,
	 .flags = OPT_REPEAT,
	 .help = "a proxy at ADDR (10.0.0.0/8, ::1, unix) relays 102s (HAProxy does): its requests are not "
	         "refused them; repeatable"},
	{.name = "processing-misread-file", .kind = OPT_TEXT, .arg = "FILE", AT(processing_misread_file),
	 .def = "SPOOL/.cgiq-102-misread", .note = "SIGHUP rereads it", .flags = OPT_DEF_SHOWN,
	 .help = "User-Agents seen taking a 102 as their answer, kept across restarts"},
	{.name = "processing-misread-ttl", .kind = OPT_DURATION, .arg = "DUR", AT(processing_misread_ttl_ms),
	 .def = "7d", .note = "0 = keep no evidence", .help = "such a User-Agent gets no unsolicited 102s for DUR"},

	SECTION("Jobs"),
	{.name = "max-jobs", .kind = OPT_COUNT, .arg = "N", AT(jobs.max_jobs), .min = 1, .max = 100000, .def = "16",
	 .help = "programs running at once; more wait in FIFO order"},
	{.name = "job-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(jobs.job_timeout_ms), .def = "5m",
	 .note = "0 = none", .flags = OPT_SCRIPT, .help = "a job running longer is killed, 504"},
	{.name = "kill-grace", .kind = OPT_DURATION, .arg = "DUR", AT(jobs.kill_grace_ms), .def = "5s",
	 .flags = OPT_SCRIPT, .help = "SIGTERM to the process group, then SIGKILL after DUR"},
	{.name = "stderr-log-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(jobs.stderr_log_bytes), .def = "64k",
	 .note = "0 = no limit",
	 .help = "stderr of one job that reaches the log; beyond, lines are counted, one line at its end says "
	         "how many"},
	{.name = "stderr-log-rate", .kind = OPT_COUNT, .arg = "N", AT(jobs.stderr_log_rate), .max = 1000000,
	 .def = "100", .note = "0 = any", .help = "stderr lines of one job logged per second"},
	{.name = "max-stderr-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(jobs.max_stderr_bytes), .def = "1G",
	 .note = "0 = any", .help = "stderr a program may write; beyond: killed, 502"},
	{.name = "leftovers", .kind = OPT_CHOICE, .arg = "POLICY", AT(jobs.keep_leftovers), .choices = LEFTOVERS,
	 .def = "kill", .flags = OPT_DEF_IN_HELP,
	 .help = "processes a program leaves running when it exits, also outside its group (setsid, double "
	         "fork): kill (default: SIGTERM at the job's end, SIGKILL after --kill-grace) or keep (logged, "
	         "counted)"},
	{.name = "max-output", .kind = OPT_SIZE, .arg = "SIZE", AT(jobs.max_output_bytes), .def = "1G",
	 .note = "--max-output-bytes is the same option", .flags = OPT_SCRIPT,
	 .help = "body bytes a program may write; beyond: killed, 502"},
	{.name = "max-output-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(jobs.max_output_bytes),
	 .flags = OPT_SCRIPT | OPT_ALIAS},
	{.name = "queue-max", .kind = OPT_COUNT, .arg = "N", AT(jobs.queue_max), .max = 10000000, .def = "1000",
	 .help = "jobs waiting for a slot; beyond: 503 + Retry-After"},

	SECTION("Asynchronous jobs and results"),
	{.name = "jobs-prefix", .kind = OPT_CALL, .arg = "PATH", .call = set_jobs_prefix, .def = "/_cgiq/jobs",
	 .help = "status monitor URLs: PATH/{id}, PATH/{id}/result"},
	{.name = "result-ttl", .kind = OPT_DURATION, .arg = "DUR", AT(jobs.result_ttl_ms), .min = 1000,
	 .expect = "at least 1s", .def = "24h",
	 .help = "rows and kept results are deleted this long after the end"},
	{.name = "max-results-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(jobs.max_results_bytes), .def = "10G",
	 .note = "0 = no cap", .help = "kept results in all; beyond, the oldest are deleted early"},
	{.name = "max-wait", .kind = OPT_DURATION, .arg = "DUR", AT(http.max_wait_ms), .def = "5m",
	 .help = "Prefer: wait=N is clamped to this"},
	{.name = "on-disconnect", .kind = OPT_CHOICE, .arg = "POLICY", AT(http.detach_on_disconnect),
	 .choices = ON_DISCONNECT, .def = "cancel", .flags = OPT_SCRIPT,
	 .help = "client gone while its job runs: cancel or detach"},
	{.name = "coalesce", .kind = OPT_CALL, .arg = "PATTERN", .call = add_coalesce, .flags = OPT_REPEAT,
	 .help = "concurrent GET/HEAD requests for a program whose path below --cgi-root matches (as script "
	         "blocks, e.g. /reports/*.pl) and the same query share one job; repeatable (default: never)"},

	{.name = "stream", .kind = OPT_CALL, .arg = "PATTERN", .call = add_stream, .flags = OPT_REPEAT,
	 .help = "a program whose path below --cgi-root matches (as --coalesce) sends its body as it writes "
	         "it: 102s until its header block, then chunked (HTTP/1.0: until the close); never coalesced; "
	         "repeatable (default: never, the whole body with its length)"},

	{.name = "nph-prefix", .kind = OPT_CALL, .arg = "PREFIX", .call = set_nph_prefix, .def = "nph-",
	 .note = "off = none",
	 .help = "a program whose file name starts with PREFIX writes its own status line (RFC 3875 "
	         "non-parsed header): cgiq checks its head, then streams it as --stream does"},

	SECTION("Requests"),
	{.name = "max-header-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(http.limits.max_header_bytes), .min = 256,
	 .max = MB, .expect = "between 256 and 1M", .def = "32k", .help = "request line + headers, beyond: 431"},
	{.name = "max-uri-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(http.limits.max_uri_bytes), .min = 16,
	 .max = MB, .expect = "between 16 and 1M", .def = "8k", .help = "request-target, beyond: 414"},
	{.name = "max-body-bytes", .kind = OPT_SIZE, .arg = "SIZE", AT(http.limits.max_body_bytes), .def = "64M",
	 .help = "request body, beyond: 413"},
	{.name = "header-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(http.header_timeout_ms), .def = "10s",
	 .help = "whole request head within DUR, else 408"},
	{.name = "body-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(http.body_timeout_ms), .def = "30s",
	 .help = "a gap this long in the body: 408"},
	{.name = "body-min-rate", .kind = OPT_SIZE, .arg = "SIZE", AT(http.body_min_rate), .def = "500",
	 .note = "0 = any rate", .help = "bytes/s a body must average once it took --body-timeout: else 408"},
	{.name = "idle-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(http.idle_timeout_ms), .def = "60s",
	 .help = "idle keep-alive connections are closed"},
	{.name = "max-connections", .kind = OPT_COUNT, .arg = "N", AT(http.max_connections), .max = 1000000,
	 .def = "4096", .note = "0 = no cap", .help = "beyond: 503 and close, on both fronts"},

	SECTION("FastCGI (behind nginx, like fcgiwrap)"),
	{.name = "fastcgi", .kind = OPT_CALL, .arg = "ADDR", .call = set_fastcgi, .flags = OPT_ONCE,
	 .help = "unix:/run/cgiq.sock, 127.0.0.1:9000 or inherit (a socket from systemd or spawn-fcgi, also "
	         "used when found without this option)"},
	{.name = "fastcgi-threads", .kind = OPT_COUNT, .arg = "N", AT(fcgi.threads), .min = 1, .max = 4096,
	 .help = "ignored (the FastCGI front has no threads); kept for old command lines"},
	{.name = "fastcgi-mode", .kind = OPT_MODE, .arg = "MODE", AT(fcgi.socket_mode), .def = "0660",
	 .help = "unix socket permissions, octal"},
	{.name = "fastcgi-owner", .kind = OPT_CALL, .arg = "USER[:GROUP]", .call = set_fastcgi_owner,
	 .help = "unix socket owner (default: cgiq's user)", .flags = OPT_DEF_IN_HELP},
	{.name = "fastcgi-allow", .kind = OPT_CALL, .arg = "ADDR", .call = add_fastcgi_allow,
	 .flags = OPT_REPEAT | OPT_DEF_IN_HELP,
	 .help = "TCP peer allowed to connect; repeatable (default: loopback only)"},
	{.name = "fastcgi-max-params", .kind = OPT_SIZE, .arg = "SIZE", AT(fcgi.max_params_bytes), .min = KB,
	 .max = 16 * MB, .expect = "between 1k and 16M", .def = "64k",
	 .help = "parameters of one request; a request that declares more is closed before they are read, up "
	         "to 64k (a larger cap is checked once they are read: 431)"},
	{.name = "fastcgi-accel-redirect", .kind = OPT_CALL, .arg = "PREFIX", .call = set_accel_redirect,
	 .flags = OPT_DEF_IN_HELP,
	 .help = "kept results (GET {jobs-prefix}/ID/result) are answered with X-Accel-Redirect: PREFIX/FILE "
	         "for nginx to serve from an internal location aliased to --spool (default off)"},
	{.name = "fastcgi-read-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(fcgi.read_timeout_ms), .def = "30s",
	 .note = "0 = forever",
	 .help = "a read or write on a FastCGI connection waits at most DUR, then the connection is closed"},
	{.name = "fastcgi-idle-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(fcgi.idle_timeout_ms), .def = "60s",
	 .note = "0 = forever", .help = "a kept FastCGI connection waits this long for its next request"},

	SECTION("Observability"),
	{.name = "access-log", .kind = OPT_CALL, .arg = "FILE|-|off", .call = set_access_log, .def = "off",
	 .help = "one line per request, Combined Log Format + job id, 102s, job and request ms; - = stdout"},
	{.name = "admin-listen", .kind = OPT_CALL, .arg = "ADDR", .call = set_admin_listen,
	 .flags = OPT_ONCE | OPT_DEF_IN_HELP,
	 .help = "/metrics, /health, /jobs on their own address (default off); loopback or unix: only, never "
	         "a --listen address"},
	{.name = "admin-allow-public", .kind = OPT_FLAG, AT(admin_allow_public),
	 .help = "let --admin-listen use a non-loopback address"},

	SECTION("Lifecycle"),
	{.name = "drain-timeout", .kind = OPT_DURATION, .arg = "DUR", AT(drain_timeout_ms), .def = "30s",
	 .note = "0 = kill at once",
	 .help = "SIGTERM/SIGINT: running jobs may finish for DUR, then are killed; a second signal ends the "
	         "drain"},
	{.name = "log-file", .kind = OPT_CALL, .arg = "FILE", .call = set_log_file,
	 .help = "log here instead of stderr; SIGHUP reopens it (log rotation)"},
	{.name = "rerun-interrupted", .kind = OPT_FLAG, AT(jobs.rerun_interrupted), .flags = OPT_DEF_IN_HELP,
	 .help = "asynchronous jobs running when cgiq died run again at the next start (default: they end "
	         "interrupted; programs see CGIQ_JOB_ID)"},

	SECTION("Privileges and limits (as root: dropped once the sockets are bound; unset limits: cgiq's)"),
	{.name = "user", .kind = OPT_TEXT, .arg = "USER", AT(user),
	 .help = "run as USER (name or uid); as root, needed unless --allow-root"},
	{.name = "group", .kind = OPT_TEXT, .arg = "GROUP", AT(group), .flags = OPT_DEF_IN_HELP,
	 .help = "run with GROUP alone (default: USER's primary group and groups)"},
	{.name = "program-user", .kind = OPT_TEXT, .arg = "USER", AT(program_user), .flags = OPT_DEF_IN_HELP,
	 .help = "run programs as USER, which cannot signal cgiq nor open its files (default with --user: "
	         APP_PROGRAM_USER_DEFAULT "; --user's own name runs them as cgiq's user)"},
	{.name = "allow-root", .kind = OPT_FLAG, AT(allow_root),
	 .help = "allow running programs as root (no --user, or --user root)"},
	{.name = "rlimit-cpu", .kind = OPT_CALL, .arg = "DUR", .call = set_rlimit_cpu, .flags = OPT_SCRIPT,
	 .help = "CPU time of each program, whole seconds (SIGXCPU, then SIGKILL 1s later)"},
	{.name = "rlimit-as", .kind = OPT_SIZE, .arg = "SIZE", AT(limits.as_bytes), .min = MB,
	 .expect = "at least 1M", .flags = OPT_SCRIPT, .help = "address space of each program"},
	{.name = "rlimit-nofile", .kind = OPT_COUNT, .arg = "N", AT(limits.nofile), .min = 4, .max = 1u << 30,
	 .expect = "at least 4 (stdin, stdout, stderr and the progress pipe)", .flags = OPT_SCRIPT,
	 .help = "open files of each program"},
	{.name = "rlimit-nproc", .kind = OPT_COUNT, .arg = "N", AT(limits.nproc), .min = 1, .max = 1u << 30,
	 .flags = OPT_SCRIPT, .help = "processes of the programs' user (not enforced for root)"},
	{.name = "rlimit-fsize", .kind = OPT_SIZE, .arg = "SIZE", AT(limits.fsize_bytes), .min = 1,
	 .expect = "at least 1", .flags = OPT_SCRIPT, .help = "largest file a program may write (SIGXFSZ)"},
	{.name = "rlimit-core", .kind = OPT_CALL, .arg = "SIZE", .call = set_rlimit_core, .flags = OPT_SCRIPT,
	 .help = "core file size of each program; 0 = none (a program killed by SIGXCPU or SIGXFSZ would "
	         "dump core in its directory)"},
	{.name = "nice", .kind = OPT_CALL, .arg = "N", .call = set_nice, .flags = OPT_SCRIPT | OPT_DEF_IN_HELP,
	 .help = "niceness of each program, -20..19 (default: cgiq's)"},

	SECTION("Configuration file"),
	{.name = "config", .kind = OPT_TEXT, .arg = "FILE", AT(config_file), .flags = OPT_CLI_ONLY,
	 .help = "read options from FILE (key = value lines, script blocks; see cgiq(8)); the command line "
	         "overrides it"},
	{.name = "check-config", .kind = OPT_FLAG, AT(check_only), .flags = OPT_CLI_ONLY,
	 .help = "check the configuration and exit (0 when valid); --test is the same"},
	{.name = "test", .kind = OPT_FLAG, AT(check_only), .flags = OPT_CLI_ONLY | OPT_ALIAS},

	SECTION("Other"),
	{.name = "log-level", .kind = OPT_CALL, .arg = "LEVEL", .call = set_log_level, .def = "info",
	 .flags = OPT_DEF_SHOWN, .help = "error, warn, info, debug"},
	{.name = "help", .kind = OPT_CALL, .call = show_help, .flags = OPT_CLI_ONLY, .help = "this text"},
	{.name = "version", .kind = OPT_CALL, .call = show_version, .flags = OPT_CLI_ONLY,
	 .help = "cgiq's version"},

	/* Keys of a script block only; not options of the command line. */
	{.name = "max-running", .kind = OPT_COUNT, .arg = "N", AT(max_running), .max = 100000,
	 .flags = OPT_SCRIPT | OPT_SCRIPT_ONLY, .help = "jobs of the block's programs running at once"},
	{.name = "retry-interrupted", .kind = OPT_FLAG, AT(retry_interrupted), .flags = OPT_SCRIPT | OPT_SCRIPT_ONLY,
	 .help = "the block's jobs interrupted by a crash run again"},
	/* In a block, "coalesce = yes" is that block's --coalesce PATTERN. */
	{.name = "coalesce", .kind = OPT_FLAG, AT(coalesce_rule), .flags = OPT_SCRIPT | OPT_SCRIPT_ONLY,
	 .help = "the block's concurrent identical requests share one job"},
	/* In a block, "stream = yes" is that block's --stream PATTERN. */
	{.name = "stream", .kind = OPT_FLAG, AT(stream_rule), .flags = OPT_SCRIPT | OPT_SCRIPT_ONLY,
	 .help = "the block's programs send their body as they write it"},
};
const size_t app_opt_count = UTIL_ARRAY_LEN(app_opts);

/* ---------------- lookups ---------------- */

const struct opt_def *app_opt_find(const char *name, int in_block)
{
	const struct opt_def *found = NULL;

	for (size_t i = 0; i < app_opt_count; i++) {
		const struct opt_def *d = &app_opts[i];
		if (d->kind == OPT_SECTION || strcmp(d->name, name) != 0)
			continue;
		/* In a block its own keys come first ("coalesce" is a flag there);
		 * elsewhere an option comes before a block's key of that name. */
		if (in_block && (d->flags & OPT_SCRIPT_ONLY))
			return d;
		if (found == NULL || (found->flags & OPT_SCRIPT_ONLY))
			found = d;
	}
	return found;
}

const struct opt_def *app_opt_canonical(const struct opt_def *d)
{
	while (d->flags & OPT_ALIAS)
		d--;
	return d;
}

const struct option *app_opt_getopt(void)
{
	static struct option opts[UTIL_ARRAY_LEN(app_opts) + 1];

	if (opts[0].name == NULL) {
		size_t n = 0;
		for (size_t i = 0; i < app_opt_count; i++) {
			const struct opt_def *d = &app_opts[i];
			if (d->kind == OPT_SECTION || (d->flags & OPT_SCRIPT_ONLY))
				continue;
			opts[n].name = d->name;
			opts[n].has_arg = d->arg ? required_argument : no_argument;
			opts[n].val = 256 + (int)(app_opt_canonical(d) - app_opts);
			n++;
		}
	}
	return opts;
}

/* ---------------- applying a value ---------------- */

static int bad_value(const struct opt_def *d, const char *value, const char *expect, const char *where)
{
	const char *name = app_opt_canonical(d)->name;

	if (where)
		fprintf(stderr, "%s: %s: invalid value '%s' (%s)\n", where, name, value, expect);
	else
		fprintf(stderr, "cgiq: --%s: invalid value '%s' (%s)\n", name, value, expect);
	return 2;
}

/* A number into its field, whose width the row knows. */
static void store_uint(struct daemon_config *c, const struct opt_def *d, uint64_t v)
{
	char *field = (char *)c + d->off;

	if (d->size == sizeof(uint32_t)) {
		uint32_t v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof(v32));
	} else {
		memcpy(field, &v, sizeof(v));
	}
}

static int apply_number(struct daemon_config *c, const struct opt_def *d, const char *a, const char *where)
{
	uint64_t max = d->max ? d->max : d->size == sizeof(uint32_t) ? UINT32_MAX : UINT64_MAX;
	uint64_t v;

	switch (d->kind) {
	case OPT_DURATION:
		if (util_parse_duration_ms(a, &v) < 0)
			return bad_value(d, a, "a duration: 250ms, 2s, 5m, 1h", where);
		break;
	case OPT_SIZE:
		if (util_parse_size(a, &v) < 0)
			return bad_value(d, a, "a size: 512, 64k, 10M, 1G", where);
		break;
	default: /* OPT_COUNT */
		if (util_parse_uint(a, max, &v) < 0)
			return bad_value(d, a, "a whole number", where);
		break;
	}
	if (v < d->min || v > max) {
		char at_least[64];
		snprintf(at_least, sizeof(at_least), "at least %llu", (unsigned long long)d->min);
		return bad_value(d, a, d->expect ? d->expect : at_least, where);
	}
	store_uint(c, d, v);
	return 0;
}

/* "kill or keep", "a, b or c" */
static const char *choices_text(const struct opt_def *d, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	while (d->choices[n])
		n++;
	for (size_t i = 0, len = 0; i < n && len < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
		len += (size_t)snprintf(out + len, size - len, "%s%s", sep, d->choices[i]);
	}
	return out;
}

int app_opt_apply(struct daemon_config *c, const struct opt_def *d, const char *a, const char *where)
{
	char *field = (char *)c + d->off, text[128];
	const char *expect = NULL;
	int r;

	switch (d->kind) {
	case OPT_FLAG: {
		int one = 1;
		memcpy(field, &one, sizeof(one));
		return 0;
	}
	case OPT_TEXT: {
		const char *old;
		memcpy(&old, field, sizeof(old));
		if ((d->flags & OPT_ONCE) && old != NULL)
			return bad_value(d, a, "given once", where);
		memcpy(field, &a, sizeof(a));
		/* The start checks the CGI root (it must exist then, not when a
		 * file is read): its message names the line. */
		if (d->off == offsetof(struct daemon_config, cgi_root))
			snprintf(c->cgi_root_where, sizeof(c->cgi_root_where), "%s", where ? where : "");
		return 0;
	}
	case OPT_DURATION:
	case OPT_SIZE:
	case OPT_COUNT:
		return apply_number(c, d, a, where);
	case OPT_MODE: {
		char *end;
		unsigned long m = strtoul(a, &end, 8);
		if (*a == '\0' || *end != '\0' || m > 0777 || m == 0)
			return bad_value(d, a, "an octal mode such as 0660", where);
		store_uint(c, d, m);
		return 0;
	}
	case OPT_CHOICE:
		for (int i = 0; d->choices[i]; i++) {
			if (strcmp(a, d->choices[i]) == 0) {
				memcpy(field, &i, sizeof(i));
				return 0;
			}
		}
		return bad_value(d, a, choices_text(d, text, sizeof(text)), where);
	case OPT_CALL:
		r = d->call(c, a, &expect);
		if (r < 0)
			return bad_value(d, a, expect, where);
		return r > 0 ? -1 : 0;
	case OPT_SECTION:
		break;
	}
	return 2;
}

void app_opt_defaults(struct daemon_config *c)
{
	memset(c, 0, sizeof(*c));
	/* Settings no option sets. */
	c->http.limits.max_headers = 100;
	c->http.body_mem_bytes = 64 * 1024;
	c->jobs.output_mem_bytes = 256 * 1024;
	c->jobs.stderr_tail_bytes = 4096;
	c->fcgi.threads = 16;
	for (size_t i = 0; i < app_opt_count; i++) {
		const struct opt_def *d = &app_opts[i];
		if (d->kind == OPT_SECTION || d->def == NULL || (d->flags & OPT_DEF_SHOWN))
			continue;
		/* The unit test applies every default: one that does not read is a bug. */
		if (app_opt_apply(c, d, d->def, "the built-in default") != 0)
			abort();
	}
}

/* ---------------- --help ---------------- */

#define HELP_COLUMN 29
#define HELP_WIDTH 100

/* Words of text from column col on, wrapped at HELP_WIDTH and indented to
 * HELP_COLUMN, ending the line. */
static void wrap(FILE *out, size_t col, const char *text)
{
	const char *p = text;

	while (*p) {
		size_t word = strcspn(p, " ");
		if (col > HELP_COLUMN && col + 1 + word > HELP_WIDTH) {
			fprintf(out, "\n%*s", HELP_COLUMN, "");
			col = HELP_COLUMN;
		} else if (col > HELP_COLUMN) {
			fputc(' ', out);
			col++;
		}
		fwrite(p, 1, word, out);
		col += word;
		p += word;
		while (*p == ' ')
			p++;
	}
	fputc('\n', out);
}

void app_opt_usage(FILE *out)
{
	fputs(USAGE_HEAD, out);
	for (size_t i = 0; i < app_opt_count; i++) {
		const struct opt_def *d = &app_opts[i];
		char label[64], text[512];
		int n;

		if (d->flags & (OPT_ALIAS | OPT_SCRIPT_ONLY))
			continue;
		if (d->kind == OPT_SECTION) {
			fprintf(out, "\n%s:\n", d->name);
			continue;
		}
		n = snprintf(label, sizeof(label), "  --%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
		if (d->def && !(d->flags & OPT_DEF_IN_HELP))
			snprintf(text, sizeof(text), "%s (default %s%s%s)", d->help, d->def, d->note ? "; " : "",
			         d->note ? d->note : "");
		else if (d->note)
			snprintf(text, sizeof(text), "%s (%s)", d->help, d->note);
		else
			snprintf(text, sizeof(text), "%s", d->help);
		/* a label too long for its column gets a line of its own */
		if (n + 1 >= HELP_COLUMN)
			fprintf(out, "%s\n%*s", label, HELP_COLUMN, "");
		else
			fprintf(out, "%-*s", HELP_COLUMN, label);
		wrap(out, HELP_COLUMN, text);
	}
	fputs(USAGE_TAIL, out);
}
