/*
 * The operator subcommands `cgiq jobs` and `cgiq job`: read-only views of the
 * job database, as aligned text or as one JSON object per line.
 */
#include "app.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util/util.h"

#define APP_DEFAULT_DB "./var/cgiq.db"
#define APP_DEFAULT_LIMIT 50

/* Exit statuses (app.h). */
#define APP_EXIT_OK 0
#define APP_EXIT_FAIL 1
#define APP_EXIT_USAGE 2

/* No cap: this is the operator's own terminal, fed from our own database. */
#define APP_BUF_MAX ((size_t)-1)

/* Reports a getopt_long failure naming the option; returns the usage status.
 * With opterr = 0 the word that failed is argv[optind - 1]; for a bad short
 * option (possibly inside a cluster like -xj) optopt says which letter. */
static int app_bad_option(const char *cmd, int c, char **argv)
{
	const char *word = optind > 0 ? argv[optind - 1] : "?";

	if (strncmp(word, "--", 2) == 0) {
		if (c == ':')
			fprintf(stderr, "cgiq %s: option %s needs an argument\n", cmd, word);
		else
			fprintf(stderr, "cgiq %s: unknown or malformed option %s\n", cmd, word);
	} else if (c == ':') {
		fprintf(stderr, "cgiq %s: option -%c needs an argument\n", cmd, optopt);
	} else {
		fprintf(stderr, "cgiq %s: unknown option -%c\n", cmd, optopt);
	}
	fprintf(stderr, "Try 'cgiq %s --help'.\n", cmd);
	return APP_EXIT_USAGE;
}

/* The database as a message may name it: a URL without its password. */
static const char *app_db_shown(const char *place)
{
	static char shown[512];

	store_place_shown(place, shown, sizeof(shown));
	return shown;
}

/*
 * Opens an existing database. stat first: store_open creates a missing file,
 * and a typo in --db must not leave an empty database behind.
 */
static int app_open_db(const char *path, struct store **out)
{
	struct stat st;
	char why[512];

	path = store_place_normal(path);
	if (store_place_is_server(path)) {
		if (store_open_why(path, out, why, sizeof(why)) < 0) {
			fprintf(stderr, "cgiq: cannot read job database %s: %s\n", app_db_shown(path), why);
			return -1;
		}
		return 0;
	}
	if (stat(path, &st) < 0) {
		int err = errno;
		/* The default is relative: run elsewhere, it names no database. */
		fprintf(stderr, "cgiq: cannot open %s: %s%s\n", path, strerror(err),
		        err == ENOENT ? " (--db FILE: the database the daemon was started with)" : "");
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "cgiq: cannot open %s: not a regular file\n", path);
		return -1;
	}
	if (store_open_why(path, out, why, sizeof(why)) < 0) {
		fprintf(stderr, "cgiq: cannot read job database %s: %s\n", path, why);
		return -1;
	}
	return 0;
}

/* Ends the command: output that did not reach its destination (full disk,
 * closed pipe) is a failure the caller's script should see. */
static int app_finish_output(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "cgiq: writing output: %s\n", strerror(errno));
		return APP_EXIT_FAIL;
	}
	return status;
}

/*
 * Appends s for a terminal: job fields hold client and program bytes, and
 * control bytes in them could drive the operator's terminal. Printable ASCII
 * stays, '\\' and everything else becomes \xHH (like log_escape), except
 * newlines when keep_newline (stderr is read as lines).
 */
static void app_escape(struct buf *b, const char *s, int keep_newline)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 0x20 && c < 0x7f && c != '\\') || (c == '\n' && keep_newline)) {
			buf_append(b, s, 1);
		} else {
			char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			buf_append(b, e, sizeof(e));
		}
	}
}

static const char *app_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Text for an integer that may be unknown (-1). */
static void app_put_int(struct buf *b, int64_t v)
{
	if (v < 0)
		buf_append_str(b, "-");
	else
		buf_printf(b, "%lld", (long long)v);
}

static void app_put_time(struct buf *b, int64_t us)
{
	char when[32];

	if (us <= 0) {
		buf_append_str(b, "-");
		return;
	}
	util_iso_time(us, when, sizeof(when));
	buf_append_str(b, when);
}

static void app_put_str(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_append_str(b, "-");
	else
		app_escape(b, s, 0);
}

/* Run time in ms, -1 while unknown. */
static int64_t app_duration_ms(const struct store_job *j)
{
	if (j->started_at_us <= 0 || j->finished_at_us < j->started_at_us)
		return -1;
	return (j->finished_at_us - j->started_at_us) / 1000;
}

/* ---- cgiq jobs ---- */

enum {
	APP_COL_ID,
	APP_COL_STATE,
	APP_COL_STATUS,
	APP_COL_EXIT,
	APP_COL_METHOD,
	APP_COL_SCRIPT,
	APP_COL_CREATED,
	APP_COL_DURATION,
	APP_COL_BYTES_OUT,
	APP_COL_102S,
	APP_COL_NODE,
	APP_COL_COUNT,
};

static const char *const app_col_names[APP_COL_COUNT] = {
	"ID", "STATE", "STATUS", "EXIT", "METHOD", "SCRIPT", "CREATED", "DURATION_MS",
	"BYTES_OUT", "102S", "NODE",
};

/* Numbers are right-aligned so that their digits line up. */
static const int app_col_right[APP_COL_COUNT] = {
	[APP_COL_STATUS] = 1, [APP_COL_EXIT] = 1, [APP_COL_DURATION] = 1,
	[APP_COL_BYTES_OUT] = 1, [APP_COL_102S] = 1,
};

/* The rows are kept until the end because the widths depend on all of them. */
struct app_table {
	char **cells; /* rows * APP_COL_COUNT strings */
	size_t rows;
	size_t cap;
	int json;
};

static int app_list_cb(const struct store_job *j, void *ud)
{
	struct app_table *t = ud;
	struct buf b;
	char **row;

	buf_init(&b, APP_BUF_MAX);
	if (t->json) {
		store_job_json(&b, j, 0);
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
		return 0;
	}

	if (t->rows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = util_xrealloc(t->cells, t->cap * APP_COL_COUNT * sizeof(*t->cells));
	}
	row = t->cells + t->rows * APP_COL_COUNT;
	for (int c = 0; c < APP_COL_COUNT; c++) {
		buf_reset(&b);
		switch (c) {
		case APP_COL_ID: app_put_str(&b, j->id); break;
		case APP_COL_STATE: buf_append_str(&b, store_state_name(j->state)); break;
		case APP_COL_STATUS: app_put_int(&b, j->http_status); break;
		case APP_COL_EXIT:
			/* A program killed by a signal has no exit code; show which. */
			if (j->exit_code < 0 && j->term_signal >= 0)
				buf_printf(&b, "sig%lld", (long long)j->term_signal);
			else
				app_put_int(&b, j->exit_code);
			break;
		case APP_COL_METHOD: app_put_str(&b, j->method); break;
		case APP_COL_SCRIPT: app_put_str(&b, j->script ? app_basename(j->script) : NULL); break;
		case APP_COL_CREATED: app_put_time(&b, j->created_at_us); break;
		case APP_COL_DURATION: app_put_int(&b, app_duration_ms(j)); break;
		case APP_COL_BYTES_OUT: app_put_int(&b, j->bytes_out); break;
		case APP_COL_102S: app_put_int(&b, j->processing_sent); break;
		case APP_COL_NODE: app_put_str(&b, j->node); break;
		}
		row[c] = util_xstrdup(b.data);
	}
	t->rows++;
	buf_free(&b);
	return 0;
}

static void app_print_row(const char *const *cells, const size_t *width)
{
	for (int c = 0; c < APP_COL_COUNT; c++) {
		int w = (int)width[c];
		/* No padding after the last column: no trailing blanks. */
		if (c == APP_COL_COUNT - 1 && !app_col_right[c])
			w = 0;
		if (app_col_right[c])
			printf("%*s", w, cells[c]);
		else
			printf("%-*s", w, cells[c]);
		fputs(c == APP_COL_COUNT - 1 ? "\n" : "  ", stdout);
	}
}

static void app_print_table(const struct app_table *t)
{
	size_t width[APP_COL_COUNT];

	for (int c = 0; c < APP_COL_COUNT; c++) {
		width[c] = strlen(app_col_names[c]);
		for (size_t r = 0; r < t->rows; r++) {
			size_t n = strlen(t->cells[r * APP_COL_COUNT + c]);
			if (n > width[c])
				width[c] = n;
		}
	}
	app_print_row(app_col_names, width);
	for (size_t r = 0; r < t->rows; r++)
		app_print_row((const char *const *)(t->cells + r * APP_COL_COUNT), width);
}

static void app_table_free(struct app_table *t)
{
	for (size_t i = 0; i < t->rows * APP_COL_COUNT; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->rows = t->cap = 0;
}

static void app_jobs_usage(FILE *f)
{
	fprintf(f, "usage: cgiq jobs [--db FILE | --store PLACE] [--state STATE] [--limit N] [--json]\n"
	           "       cgiq jobs [--db FILE | --store PLACE] --cancel ID\n"
	           "  --cancel ID    stop a queued or running job (the daemon acts within a second)\n"
	           "  --db FILE      job database (default %s)\n"
	           "  --store PLACE  the daemon's --store: postgresql://USER@HOST/DB or sqlite:FILE\n"
	           "  --state STATE  only jobs in STATE: queued, running, succeeded, failed,\n"
	           "                 timed_out, cancelled, interrupted\n"
	           "  --limit N      at most N jobs, newest first (default %d, 0 = all)\n"
	           "  --json         one JSON object per line\n",
	        APP_DEFAULT_DB, APP_DEFAULT_LIMIT);
}

int app_jobs_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"store", required_argument, NULL, 'd'},
		{"state", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"cancel", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = APP_DEFAULT_DB, *cancel = NULL;
	enum store_state state = STORE_QUEUED;
	int have_state = 0;
	uint64_t limit = APP_DEFAULT_LIMIT;
	struct app_table t = {0};
	struct store *s = NULL;
	int c, r, status = APP_EXIT_FAIL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 's':
			if (store_state_parse(optarg, &state) < 0) {
				fprintf(stderr,
				        "cgiq jobs: --state: unknown state '%s' (queued, running, "
				        "succeeded, failed, timed_out, cancelled, interrupted)\n",
				        optarg);
				return APP_EXIT_USAGE;
			}
			have_state = 1;
			break;
		case 'l':
			if (util_parse_uint(optarg, UINT32_MAX, &limit) < 0) {
				fprintf(stderr, "cgiq jobs: --limit: not a count: '%s'\n", optarg);
				return APP_EXIT_USAGE;
			}
			break;
		case 'j': t.json = 1; break;
		case 'c':
			if (!util_id_valid(optarg)) {
				fprintf(stderr, "cgiq jobs: --cancel: not a job id: '%s'\n", optarg);
				return APP_EXIT_USAGE;
			}
			cancel = optarg;
			break;
		case 'h': app_jobs_usage(stdout); return app_finish_output(APP_EXIT_OK);
		default: return app_bad_option("jobs", c, argv);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cgiq jobs: unexpected argument '%s'\n", argv[optind]);
		return APP_EXIT_USAGE;
	}

	if (app_open_db(db, &s) < 0)
		goto out;
	if (cancel != NULL) {
		r = store_job_request_cancel(s, cancel);
		if (r == -ENOENT)
			fprintf(stderr, "cgiq jobs: no queued or running job %s in %s\n", cancel, app_db_shown(db));
		else if (r == 0)
			printf("cancel requested for job %s; the daemon stops it within a second\n", cancel);
		status = r == 0 ? APP_EXIT_OK : APP_EXIT_FAIL;
		goto out;
	}
	r = store_jobs_list(s, have_state ? &state : NULL, (unsigned)limit, app_list_cb, &t);
	if (r < 0) {
		fprintf(stderr, "cgiq: cannot list jobs in %s\n", app_db_shown(db));
		goto out;
	}
	if (!t.json)
		app_print_table(&t);
	status = APP_EXIT_OK;
out:
	app_table_free(&t);
	store_close(s);
	return app_finish_output(status);
}

/* ---- cgiq job ---- */

static void app_print_job(const struct store_job *j)
{
	struct buf b;

	buf_init(&b, APP_BUF_MAX);
	buf_printf(&b, "id: ");
	app_put_str(&b, j->id);
	buf_printf(&b, "\nstate: %s\nscript: ", store_state_name(j->state));
	app_put_str(&b, j->script);
	buf_append_str(&b, "\nmethod: ");
	app_put_str(&b, j->method);
	buf_append_str(&b, "\nuri: ");
	app_put_str(&b, j->uri);
	buf_append_str(&b, "\npeer: ");
	app_put_str(&b, j->peer);
	buf_append_str(&b, "\nnode: ");
	app_put_str(&b, j->node);
	buf_append_str(&b, "\nstatus: ");
	app_put_int(&b, j->http_status);
	buf_append_str(&b, "\nexit_code: ");
	app_put_int(&b, j->exit_code);
	buf_append_str(&b, "\nsignal: ");
	app_put_int(&b, j->term_signal);
	buf_append_str(&b, "\ncreated_at: ");
	app_put_time(&b, j->created_at_us);
	buf_append_str(&b, "\nstarted_at: ");
	app_put_time(&b, j->started_at_us);
	buf_append_str(&b, "\nfinished_at: ");
	app_put_time(&b, j->finished_at_us);
	buf_append_str(&b, "\nduration_ms: ");
	app_put_int(&b, app_duration_ms(j));
	buf_append_str(&b, "\npid: ");
	app_put_int(&b, j->pid);
	buf_append_str(&b, "\nbytes_in: ");
	app_put_int(&b, j->bytes_in);
	buf_append_str(&b, "\nbytes_out: ");
	app_put_int(&b, j->bytes_out);
	buf_append_str(&b, "\nprocessing_sent: ");
	app_put_int(&b, j->processing_sent);
	buf_append_str(&b, "\nreason: ");
	app_put_str(&b, j->reason);
	/* Last, because it spans lines. */
	if (j->stderr_tail == NULL) {
		buf_append_str(&b, "\nstderr_tail: -\n");
	} else {
		buf_append_str(&b, "\nstderr_tail:\n");
		app_escape(&b, j->stderr_tail, 1);
		if (b.data[b.len - 1] != '\n')
			buf_append_str(&b, "\n");
	}
	fwrite(b.data, 1, b.len, stdout);
	buf_free(&b);
}

static void app_job_usage(FILE *f)
{
	fprintf(f, "usage: cgiq job ID [--db FILE | --store PLACE] [--json]\n"
	           "  --db FILE      job database (default %s)\n"
	           "  --store PLACE  the daemon's --store: postgresql://USER@HOST/DB or sqlite:FILE\n"
	           "  --json         one JSON object\n",
	        APP_DEFAULT_DB);
}

int app_job_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"store", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = APP_DEFAULT_DB, *id;
	int json = 0, c, r, status = APP_EXIT_FAIL;
	struct store *s = NULL;
	struct store_job j;

	store_job_init(&j);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'j': json = 1; break;
		case 'h': app_job_usage(stdout); return app_finish_output(APP_EXIT_OK);
		default: return app_bad_option("job", c, argv);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "cgiq job: missing job ID\n");
		app_job_usage(stderr);
		return APP_EXIT_USAGE;
	}
	id = argv[optind];
	if (optind + 1 < argc) {
		fprintf(stderr, "cgiq job: unexpected argument '%s'\n", argv[optind + 1]);
		return APP_EXIT_USAGE;
	}

	if (app_open_db(db, &s) < 0)
		goto out;
	r = store_job_get(s, id, &j);
	if (r == -ENOENT) {
		fprintf(stderr, "cgiq: no job %s in %s\n", id, app_db_shown(db));
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "cgiq: cannot read job %s in %s\n", id, app_db_shown(db));
		goto out;
	}
	if (json) {
		struct buf b;
		buf_init(&b, APP_BUF_MAX);
		store_job_json(&b, &j, 1);
		fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
	} else {
		app_print_job(&j);
	}
	status = APP_EXIT_OK;
out:
	store_job_clear(&j);
	store_close(s);
	return app_finish_output(status);
}

static void app_store_usage(FILE *f)
{
	fprintf(f, "usage: cgiq store migrate [--db FILE | --store PLACE]\n"
	           "  makes the job store's schema, or brings it up to date, as a start of the daemon would\n"
	           "  --db FILE      job database (default %s)\n"
	           "  --store PLACE  postgresql://USER@HOST/DB or sqlite:FILE\n",
	        APP_DEFAULT_DB);
}

int app_store_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"store", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = APP_DEFAULT_DB;
	struct store *s = NULL;
	char why[512];
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': db = optarg; break;
		case 'h': app_store_usage(stdout); return app_finish_output(APP_EXIT_OK);
		default: return app_bad_option("store", c, argv);
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "migrate") != 0) {
		fprintf(stderr, "cgiq store: say what to do: cgiq store migrate [--store PLACE]\n");
		return APP_EXIT_USAGE;
	}
	db = store_place_normal(db);
	/* Opening migrates (under the server's advisory lock, or the file's
	 * write transaction), which is the whole of the command. */
	if (store_open_why(db, &s, why, sizeof(why)) < 0) {
		fprintf(stderr, "cgiq store: cannot migrate %s: %s\n", app_db_shown(db), why);
		return APP_EXIT_FAIL;
	}
	store_close(s);
	printf("cgiq store: the schema of %s is up to date\n", app_db_shown(db));
	return app_finish_output(APP_EXIT_OK);
}
