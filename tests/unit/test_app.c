/*
 * app: the configuration file parser (conffile.c) and how options.c applies
 * a file with the command line on top (app__parse_args, whose result is
 * inspected directly).
 */
#include <CUnit/Basic.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "app/conffile.h"
#include "app/options.h"
#include "front/front.h"
#include "app/opttab.h"
#include "jobs/internal.h"

/* ---------------- the parser ---------------- */

static char *text;  /* the buffer of the last parse (values point into it) */
static struct app_conf conf;
static struct app_conf_error perr;

static int parse(const char *s, size_t len)
{
	app_conf_free(&conf);
	free(text);
	text = malloc(len + 1);
	memcpy(text, s, len);
	return app_conf_parse(text, len, &conf, &perr);
}

static int parse_str(const char *s)
{
	return parse(s, strlen(s));
}

static void check_entry(size_t i, const char *key, const char *value, unsigned line, int block)
{
	CU_ASSERT_FATAL(i < conf.entry_count);
	CU_ASSERT_STRING_EQUAL(conf.entries[i].key, key);
	CU_ASSERT_STRING_EQUAL(conf.entries[i].value, value);
	CU_ASSERT_EQUAL(conf.entries[i].line, line);
	CU_ASSERT_EQUAL(conf.entries[i].block, block);
}

static void test_parse_good(void)
{
	static const char f[] =
		"# cgiq\n"
		"\n"
		"listen = 127.0.0.1:8080\n"
		"  listen=unix:/run/cgiq/http.sock   \n"
		"job-timeout = 5m   # five minutes\n"
		"cgi-root = /srv/cgi#bin\r\n"
		"\tpass-authorization =\tyes\n"
		"script /reports/*.pl {   # heavy ones\n"
		"    job-timeout = 1h\n"
		"    max-running = 2\n"
		"}\n"
		"script /x {\n"
		"}\n"
		"log-level = a b";
	CU_ASSERT_EQUAL_FATAL(parse_str(f), 0);
	CU_ASSERT_EQUAL(conf.entry_count, 8);
	check_entry(0, "listen", "127.0.0.1:8080", 3, -1);
	check_entry(1, "listen", "unix:/run/cgiq/http.sock", 4, -1);
	check_entry(2, "job-timeout", "5m", 5, -1);
	check_entry(3, "cgi-root", "/srv/cgi#bin", 6, -1); /* '#' inside a word is not a comment */
	check_entry(4, "pass-authorization", "yes", 7, -1);
	check_entry(5, "job-timeout", "1h", 9, 0);
	check_entry(6, "max-running", "2", 10, 0);
	check_entry(7, "log-level", "a b", 14, -1); /* no LF at the end, inner blank kept */
	CU_ASSERT_EQUAL_FATAL(conf.block_count, 2);
	CU_ASSERT_STRING_EQUAL(conf.blocks[0].pattern, "/reports/*.pl");
	CU_ASSERT_EQUAL(conf.blocks[0].line, 8);
	CU_ASSERT_STRING_EQUAL(conf.blocks[1].pattern, "/x");
	CU_ASSERT_EQUAL(conf.blocks[1].line, 12);

	/* Empty input, only comments: nothing. */
	CU_ASSERT_EQUAL(parse_str(""), 0);
	CU_ASSERT_EQUAL(conf.entry_count, 0);
	CU_ASSERT_EQUAL(parse_str("# x\n   \n\t# y"), 0);
	CU_ASSERT_EQUAL(conf.entry_count, 0);
	/* `script = x` is an entry (whose key config.c will not know). */
	CU_ASSERT_EQUAL_FATAL(parse_str("script = x\n"), 0);
	check_entry(0, "script", "x", 1, -1);
}

static void check_error(const char *s, size_t len, unsigned line, const char *message)
{
	int r = parse(s, len);
	CU_ASSERT_EQUAL(r, -EINVAL);
	CU_ASSERT_EQUAL(perr.line, line);
	CU_ASSERT_STRING_EQUAL(perr.message, message);
	CU_ASSERT_EQUAL(conf.entry_count, 0);
	CU_ASSERT_PTR_NULL(conf.entries);
	if (r != -EINVAL || perr.line != line || strcmp(perr.message, message) != 0)
		fprintf(stderr, "\n  %u: %s\n", perr.line, perr.message);
}

static void check_error_str(const char *s, unsigned line, const char *message)
{
	check_error(s, strlen(s), line, message);
}

static void test_parse_errors(void)
{
	char *long_line;

	check_error_str("a = 1\nlisten\n", 2, "expected `=` after 'listen' (keys are lower-case letters, digits and -)");
	check_error_str("a = 1\nb =   # nothing\n", 2, "'b' has no value");
	check_error_str("Listen = x\n", 1, "expected `key = value`, found 'Listen = x'");
	check_error_str("max_jobs = 2\n", 1,
	                "expected `=` after 'max_' (keys are lower-case letters, digits and -)");
	check_error_str("= 2\n", 1, "expected `key = value`, found '= 2'");
	check_error_str("a = 1\n\n}\n", 3, "`}` without an open script block");
	check_error_str("script /a {\nscript /b {\n}\n}\n", 2,
	                "a script block cannot hold another (the block of line 1 is not closed)");
	check_error_str("x = 1\nscript /a {\n  job-timeout = 1s\n", 2,
	                "script block '/a' is not closed (a line with `}` is missing)");
	check_error_str("script {\n}\n", 1, "script block without a pattern: write `script PATTERN {`");
	check_error_str("script\n", 1, "script block without a pattern: write `script PATTERN {`");
	check_error_str("script /a\n}\n", 1, "`script /a` must end with `{` on the same line");
	check_error_str("script /a { x\n}\n", 1, "`script /a` must end with `{` on the same line");
	check_error_str("script /a b {\n}\n", 1, "`script /a` must end with `{` on the same line");
	check_error_str("script /a {\n}\n\nscript /a {\n}\n", 4,
	                "a block for '/a' already exists at line 1 (it would never match)");
	check_error_str("a = 1\nb = x\x01y\n", 2, "control byte 0x01 (only text lines are allowed)");
	check_error_str("a = 1\rb = 2\n", 1, "control byte 0x0d (only text lines are allowed)");
	check_error_str("a = \x7f\n", 1, "control byte 0x7f (only text lines are allowed)");
	check_error("a = 1\nb = 2\0\n", 12, 2, "NUL byte (only text lines are allowed)");

	long_line = malloc(APP_CONF_LINE_MAX + 16);
	memset(long_line, 'a', APP_CONF_LINE_MAX + 10);
	memcpy(long_line, "x = 1\nk = ", 10);
	long_line[APP_CONF_LINE_MAX + 10] = '\0';
	check_error_str(long_line, 2, "line longer than 4096 bytes");
	/* Exactly the limit is fine. */
	long_line[APP_CONF_LINE_MAX + 6] = '\0';
	CU_ASSERT_EQUAL(parse_str(long_line), 0);
	CU_ASSERT_EQUAL(conf.entry_count, 2);
	free(long_line);
}

/* ---------------- options.c: file + command line ---------------- */

static char conf_path[64];
static char errors[4096];

/* Runs parse_args on `cgiq --config FILE args...` with FILE holding
 * file_text (NULL: no --config), stderr captured in errors. */
static int run(const char *file_text, const char *const *args, struct daemon_config *c)
{
	char *argv[32];
	int argc = 0, saved, fd, r;
	ssize_t n;

	argv[argc++] = "cgiq";
	if (file_text) {
		snprintf(conf_path, sizeof(conf_path), "/tmp/cgiq-test-app-XXXXXX");
		fd = mkstemp(conf_path);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_FATAL(write(fd, file_text, strlen(file_text)) == (ssize_t)strlen(file_text));
		close(fd);
		argv[argc++] = "--config";
		argv[argc++] = conf_path;
	}
	for (; args && *args && argc < 31; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;

	fflush(stderr);
	saved = dup(2);
	fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	dup2(fd, 2);
	r = app__parse_args(argc, argv, c);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, errors, sizeof(errors) - 1, 0);
	errors[n > 0 ? n : 0] = '\0';
	close(fd);
	if (file_text)
		unlink(conf_path);
	return r;
}

/* The message expected for the file: "PATH:" + rest. */
static void check_file_error(const char *file_text, const char *const *args, const char *rest)
{
	struct daemon_config c;
	char want[512];
	int r = run(file_text, args, &c);

	snprintf(want, sizeof(want), "%s:%s\n", conf_path, rest);
	CU_ASSERT_EQUAL(r, 2);
	CU_ASSERT_STRING_EQUAL(errors, want);
	if (r != 2 || strcmp(errors, want) != 0)
		fprintf(stderr, "\n  got %d: %s  want: %s", r, errors, want);
}

static void test_file_applied(void)
{
	struct daemon_config c;
	static const char f[] =
		"cgi-root = /srv/cgi\n"
		"listen = 127.0.0.1:1\n"
		"listen = unix:/tmp/x.sock\n"
		"job-timeout = 90s\n"
		"max-jobs = 3\n"
		"pass-authorization = yes\n"
		"processing = never\n"
		"on-disconnect = detach\n"
		"max-body-bytes = 1k\n";

	CU_ASSERT_EQUAL_FATAL(run(f, NULL, &c), -1);
	CU_ASSERT_STRING_EQUAL(errors, "");
	CU_ASSERT_STRING_EQUAL(c.cgi_root, "/srv/cgi");
	CU_ASSERT_EQUAL_FATAL(c.listen_count, 2);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:1");
	CU_ASSERT_STRING_EQUAL(c.listen[1], "unix:/tmp/x.sock");
	CU_ASSERT_EQUAL(c.jobs.job_timeout_ms, 90000);
	CU_ASSERT_EQUAL(c.jobs.max_jobs, 3);
	CU_ASSERT_EQUAL(c.http.pass_authorization, 1);
	CU_ASSERT_EQUAL(c.http.processing_mode, HTTP_PROCESSING_NEVER);
	CU_ASSERT_EQUAL(c.http.detach_on_disconnect, 1);
	CU_ASSERT_EQUAL(c.http.limits.max_body_bytes, 1024);
	CU_ASSERT_EQUAL(c.jobs.rule_count, 0);
	CU_ASSERT_PTR_NULL(c.jobs.rules);
	/* untouched: the defaults */
	CU_ASSERT_EQUAL(c.jobs.kill_grace_ms, 5000);
	CU_ASSERT_STRING_EQUAL(c.db, "./var/cgiq.db");

	/* A flag set to no is off. */
	CU_ASSERT_EQUAL_FATAL(run("cgi-root = /x\npass-authorization = no\n", NULL, &c), -1);
	CU_ASSERT_EQUAL(c.http.pass_authorization, 0);
}

static void test_command_line_overrides(void)
{
	struct daemon_config c;
	static const char f[] =
		"cgi-root = /srv/cgi\n"
		"listen = 127.0.0.1:1\n"
		"listen = 127.0.0.1:2\n"
		"job-timeout = 90s\n"
		"fastcgi = unix:/tmp/f.sock\n"
		"fastcgi-allow = 10.0.0.1\n";
	const char *args1[] = { "--job-timeout", "3s", "--listen", "127.0.0.1:9", "--fastcgi",
	                        "127.0.0.1:9000", NULL };
	const char *args2[] = { "--cgi-root", "/other", "--fastcgi-allow", "10.0.0.2", "--fastcgi-allow",
	                        "10.0.0.3", NULL };

	CU_ASSERT_EQUAL_FATAL(run(f, args1, &c), -1);
	CU_ASSERT_STRING_EQUAL(errors, "");
	CU_ASSERT_EQUAL(c.jobs.job_timeout_ms, 3000);
	/* a list on the command line replaces the file's */
	CU_ASSERT_EQUAL_FATAL(c.listen_count, 1);
	CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:9");
	/* single-valued: the command line's, no "given twice" error */
	CU_ASSERT_STRING_EQUAL(c.fastcgi, "127.0.0.1:9000");
	CU_ASSERT_EQUAL_FATAL(c.fastcgi_allow_count, 1);
	CU_ASSERT_STRING_EQUAL(c.fastcgi_allow[0], "10.0.0.1");
	CU_ASSERT_STRING_EQUAL(c.cgi_root, "/srv/cgi");

	CU_ASSERT_EQUAL_FATAL(run(f, args2, &c), -1);
	CU_ASSERT_STRING_EQUAL(c.cgi_root, "/other");
	CU_ASSERT_EQUAL(c.listen_count, 2);
	CU_ASSERT_EQUAL(c.jobs.job_timeout_ms, 90000);
	CU_ASSERT_EQUAL_FATAL(c.fastcgi_allow_count, 2);
	CU_ASSERT_STRING_EQUAL(c.fastcgi_allow[0], "10.0.0.2");
	CU_ASSERT_STRING_EQUAL(c.fastcgi_allow[1], "10.0.0.3");

	/* --check-config / --test */
	{
		const char *a[] = { "--check-config", NULL };
		const char *b[] = { "--test", NULL };
		CU_ASSERT_EQUAL(run(f, a, &c), -1);
		CU_ASSERT_EQUAL(c.check_only, 1);
		CU_ASSERT_EQUAL(run(f, b, &c), -1);
		CU_ASSERT_EQUAL(c.check_only, 1);
		CU_ASSERT_EQUAL(run(f, NULL, &c), -1);
		CU_ASSERT_EQUAL(c.check_only, 0);
	}
	/* Without a file, as before. */
	{
		const char *a[] = { "--cgi-root", "/r", NULL };
		CU_ASSERT_EQUAL(run(NULL, a, &c), -1);
		CU_ASSERT_EQUAL(c.listen_count, 1);
		CU_ASSERT_STRING_EQUAL(c.listen[0], "127.0.0.1:8080");
	}
}

static void test_script_rules(void)
{
	struct daemon_config c;
	static const char f[] =
		"cgi-root = /srv/cgi\n"
		"job-timeout = 90s\n"
		"processing-after = 2s\n"
		"script /reports/*.pl {\n"
		"  job-timeout = 1h\n"
		"  max-running = 2\n"
		"  processing = always\n"
		"  on-disconnect = detach\n"
		"  max-output-bytes = 10M\n"
		"  retry-interrupted = yes\n"
		"}\n"
		"script /quick/* {\n"
		"  kill-grace = 250ms\n"
		"  processing-interval = 3s\n"
		"  processing-max = 4\n"
		"}\n";
	const char *args[] = { "--job-timeout", "7s", "--kill-grace", "1s", NULL };
	const struct job_policy *p;
	const struct front_policy *fp;

	CU_ASSERT_EQUAL_FATAL(run(f, args, &c), -1);
	CU_ASSERT_STRING_EQUAL(errors, "");
	CU_ASSERT_EQUAL_FATAL(c.jobs.rule_count, 2);
	CU_ASSERT_STRING_EQUAL(c.jobs.rules[0].pattern, "/reports/*.pl");
	p = &c.jobs.rules[0].policy;
	fp = c.jobs.rules[0].front;
	CU_ASSERT_FATAL(fp != NULL);
	CU_ASSERT_EQUAL(p->job_timeout_ms, 3600000);
	CU_ASSERT_EQUAL(p->max_running, 2);
	CU_ASSERT_EQUAL(fp->processing_mode, HTTP_PROCESSING_ALWAYS);
	CU_ASSERT_EQUAL(fp->detach_on_disconnect, 1);
	CU_ASSERT_EQUAL(p->max_output_bytes, 10 * 1024 * 1024);
	CU_ASSERT_EQUAL(p->retry_interrupted, 1);
	CU_ASSERT_EQUAL(p->kill_grace_ms, 1000);           /* the global (command line) */
	CU_ASSERT_EQUAL(fp->processing_after_ms, 2000);    /* the global (file) */
	CU_ASSERT_EQUAL(fp->processing_interval_ms, 10000); /* the default */
	CU_ASSERT_STRING_EQUAL(c.jobs.rules[1].pattern, "/quick/*");
	p = &c.jobs.rules[1].policy;
	fp = c.jobs.rules[1].front;
	CU_ASSERT_FATAL(fp != NULL);
	CU_ASSERT_EQUAL(p->job_timeout_ms, 7000);         /* the command line beats the file's 90s */
	CU_ASSERT_EQUAL(p->kill_grace_ms, 250);
	CU_ASSERT_EQUAL(fp->processing_interval_ms, 3000);
	CU_ASSERT_EQUAL(fp->processing_max, 4);
	CU_ASSERT_EQUAL(p->max_running, 0);
	CU_ASSERT_EQUAL(p->retry_interrupted, 0);
	CU_ASSERT_EQUAL(fp->processing_mode, HTTP_PROCESSING_AUTO);
	CU_ASSERT_EQUAL(fp->detach_on_disconnect, 0);
	/* the globals themselves */
	CU_ASSERT_EQUAL(c.jobs.job_timeout_ms, 7000);
	CU_ASSERT_EQUAL(c.max_running, 0);

	/* Lookup: first match wins, FNM_PATHNAME, relative to the root. */
	{
		struct job_engine e;
		static const struct job_script_rule rules[] = {
			{ "/reports/*.pl", { .job_timeout_ms = 1 }, NULL },
			{ "/reports/*", { .job_timeout_ms = 2 }, NULL },
			{ "/*", { .job_timeout_ms = 3 }, NULL },
		};
		memset(&e, 0, sizeof(e));
		e.cfg.cgi_root = "/srv/cgi";
		e.cfg.rules = rules;
		e.cfg.rule_count = 3;
		CU_ASSERT_PTR_EQUAL(job_rule_lookup(&e, "/srv/cgi/reports/q3.pl"), &rules[0]);
		CU_ASSERT_PTR_EQUAL(job_rule_lookup(&e, "/srv/cgi/reports/q3.sh"), &rules[1]);
		CU_ASSERT_PTR_EQUAL(job_rule_lookup(&e, "/srv/cgi/hello"), &rules[2]);
		CU_ASSERT_PTR_NULL(job_rule_lookup(&e, "/srv/cgi/reports/2024/q3.pl"));
		CU_ASSERT_PTR_NULL(job_rule_lookup(&e, "/srv/cgi2/hello"));
		CU_ASSERT_PTR_NULL(job_rule_lookup(&e, "/srv/cgi"));
		CU_ASSERT_PTR_NULL(job_rule_lookup(&e, NULL));
		e.cfg.cgi_root = "/";
		CU_ASSERT_PTR_EQUAL(job_rule_lookup(&e, "/reports/a.pl"), &rules[0]);
		e.cfg.rule_count = 0;
		CU_ASSERT_PTR_NULL(job_rule_lookup(&e, "/reports/a.pl"));
	}
}

static void test_file_errors(void)
{
	const char *none[] = { NULL };
	const char *over[] = { "--job-timeout", "3s", NULL };
	struct daemon_config c;

	check_file_error("cgi-root = /x\nfoo = 1\n", none,
	                 "2: unknown key 'foo' (keys are the long options of cgiq --help)");
	check_file_error("cgi-root = /x\nscript = /a\n", none,
	                 "2: unknown key 'script' (keys are the long options of cgiq --help)");
	check_file_error("cgi-root = /x\n\njob-timeout = soon\n", none,
	                 "3: job-timeout: invalid value 'soon' (a duration: 250ms, 2s, 5m, 1h)");
	/* a bad value is rejected even when the command line overrides it */
	check_file_error("job-timeout = soon\n", over,
	                 "1: job-timeout: invalid value 'soon' (a duration: 250ms, 2s, 5m, 1h)");
	check_file_error("max-jobs = 0\n", none, "1: max-jobs: invalid value '0' (at least 1)");
	check_file_error("pass-authorization = on\n", none, "1: pass-authorization: invalid value 'on' (yes or no)");
	check_file_error("job-timeout = 1s\nmax-jobs = 2\njob-timeout = 2s\n", none,
	                 "3: 'job-timeout' given again (first at line 1)");
	check_file_error("script /a {\n  job-timeout = 1s\n  job-timeout = 2s\n}\n", none,
	                 "3: 'job-timeout' given again (first at line 2)");
	check_file_error("config = /etc/x\n", none, "1: 'config' cannot be set in a configuration file");
	check_file_error("help = yes\n", none, "1: 'help' cannot be set in a configuration file");
	check_file_error("check-config = yes\n", none, "1: 'check-config' cannot be set in a configuration file");
	check_file_error("max-running = 2\n", none, "1: 'max-running' is only allowed inside a script block");
	check_file_error("retry-interrupted = yes\n", none,
	                 "1: 'retry-interrupted' is only allowed inside a script block");
	check_file_error("script /a {\n  retry-interrupted = maybe\n}\n", none,
	                 "2: retry-interrupted: invalid value 'maybe' (yes or no)");
	check_file_error("script /a {\n  listen = 127.0.0.1:1\n}\n", none,
	                 "2: 'listen' cannot be set per script (a script block takes job-timeout, kill-grace, "
	                 "max-output-bytes, processing, processing-after, processing-interval, processing-max, "
	                 "on-disconnect, max-running, retry-interrupted, coalesce, stream, interpreter, rlimit-*, nice)");
	check_file_error("script /a {\n  max-running = many\n}\n", none,
	                 "2: max-running: invalid value 'many' (a whole number)");
	check_file_error("script /a {\n  processing-interval = 0\n}\n", none,
	                 "2: processing-interval: invalid value '0' (more than 0)");
	check_file_error("script a/*.pl {\n}\n", none,
	                 "1: script pattern 'a/*.pl' must start with / (it is matched against the script's "
	                 "path below --cgi-root, such as /reports/q3.pl)");
	check_file_error("x = 1\n\nscript /a {\n", none, "3: script block '/a' is not closed (a line with `}` is missing)");
	check_file_error("listen\n", none, "1: expected `=` after 'listen' (keys are lower-case letters, digits and -)");

	/* Not readable at all. */
	{
		const char *a[] = { "--config", "/nonexistent/cgiq.conf", NULL };
		CU_ASSERT_EQUAL(run(NULL, a, &c), 2);
		CU_ASSERT_STRING_EQUAL(errors, "cgiq: --config /nonexistent/cgiq.conf: No such file or directory\n");
		const char *b[] = { "--config", "/tmp", NULL };
		CU_ASSERT_EQUAL(run(NULL, b, &c), 2);
		CU_ASSERT_STRING_EQUAL(errors, "cgiq: --config /tmp: not a regular file of at most 1048576 bytes\n");
	}
	/* A command-line error still reads as before. */
	{
		const char *a[] = { "--job-timeout", "x", NULL };
		CU_ASSERT_EQUAL(run("cgi-root = /x\n", a, &c), 2);
		CU_ASSERT_STRING_EQUAL(errors, "cgiq: --job-timeout: invalid value 'x' (a duration: 250ms, 2s, 5m, 1h)\n");
	}
}

/* --interpreter: the global ones, then a block's after them in its rule;
 * --index: the names in order, index.cgi by default, off for none. */
static void test_interpreter_and_index(void)
{
	struct daemon_config c;
	static const char f[] =
		"cgi-root = /srv/cgi\n"
		"interpreter = .php=/usr/bin/php-cgi\n"
		"index = index.php,index.cgi\n"
		"script /legacy/* {\n"
		"  interpreter = .cgi=/usr/bin/perl\n"
		"}\n";
	const struct job_policy *p;

	CU_ASSERT_EQUAL_FATAL(run(f, NULL, &c), -1);
	CU_ASSERT_EQUAL_FATAL(c.interpreter_count, 1);
	CU_ASSERT_STRING_EQUAL(c.interpreters[0].ext, ".php");
	CU_ASSERT_STRING_EQUAL(c.interpreters[0].path, "/usr/bin/php-cgi");
	CU_ASSERT_EQUAL_FATAL(c.jobs.rule_count, 1);
	p = &c.jobs.rules[0].policy;
	CU_ASSERT_EQUAL_FATAL(p->interpreter_count, 2);
	CU_ASSERT_STRING_EQUAL(p->interpreters[0].ext, ".php");
	CU_ASSERT_STRING_EQUAL(p->interpreters[1].ext, ".cgi");
	CU_ASSERT_STRING_EQUAL(p->interpreters[1].path, "/usr/bin/perl");
	CU_ASSERT_STRING_EQUAL(c.index[0], "index.php");
	CU_ASSERT_STRING_EQUAL(c.index[1], "index.cgi");
	CU_ASSERT_PTR_NULL(c.index[2]);
	/* the default, and off */
	CU_ASSERT_EQUAL_FATAL(run("cgi-root = /srv/cgi\n", NULL, &c), -1);
	CU_ASSERT_STRING_EQUAL(c.index[0], "index.cgi");
	CU_ASSERT_PTR_NULL(c.index[1]);
	{
		const char *a[] = {"--index", "off", NULL};
		CU_ASSERT_EQUAL_FATAL(run("cgi-root = /srv/cgi\n", a, &c), -1);
		CU_ASSERT_PTR_NULL(c.index[0]);
	}
	/* what is not a list of file names */
	{
		static const char *const bad[] = {"a/b", ".hidden", "a,,b", ",a", "a,", "a b"};
		char want[256];
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *a[] = {"--index", bad[i], NULL};
			CU_ASSERT_EQUAL(run("cgi-root = /srv/cgi\n", a, &c), 2);
			snprintf(want, sizeof(want),
			         "cgiq: --index: invalid value '%s' (file names separated by commas (index.cgi,index.php), "
			         "or off)\n", bad[i]);
			CU_ASSERT_STRING_EQUAL(errors, want);
		}
	}
}

/* ---------------- the options table ---------------- */

static void test_table_rows(void)
{
	struct daemon_config c;

	/* every default reads (app_opt_defaults aborts otherwise) and lands */
	app_opt_defaults(&c);
	CU_ASSERT_EQUAL(c.jobs.max_jobs, 16);
	CU_ASSERT_EQUAL(c.jobs.max_output_bytes, 1024ull * 1024 * 1024);
	CU_ASSERT_EQUAL(c.http.limits.max_header_bytes, 32 * 1024);
	CU_ASSERT_EQUAL(c.http.processing_interval_ms, 10000);
	CU_ASSERT_EQUAL(c.processing_misread_ttl_ms, 7ull * 24 * 3600 * 1000);
	CU_ASSERT_EQUAL(c.fcgi.socket_mode, 0660);
	CU_ASSERT_STRING_EQUAL(c.http.jobs_prefix, "/_cgiq/jobs");
	CU_ASSERT_STRING_EQUAL(c.cgi_prefix, "/");
	CU_ASSERT_PTR_NULL(c.access_log);
	CU_ASSERT_EQUAL(c.http.processing_mode, HTTP_PROCESSING_AUTO);

	for (size_t i = 0; i < app_opt_count; i++) {
		const struct opt_def *d = &app_opts[i];
		if (d->kind == OPT_SECTION)
			continue;
		/* the field fits the kind */
		switch (d->kind) {
		case OPT_FLAG:
		case OPT_CHOICE:
			CU_ASSERT_EQUAL(d->size, sizeof(int));
			break;
		case OPT_TEXT:
			CU_ASSERT_EQUAL(d->size, sizeof(const char *));
			break;
		case OPT_DURATION:
		case OPT_SIZE:
		case OPT_COUNT:
		case OPT_MODE:
			CU_ASSERT(d->size == 4 || d->size == 8);
			CU_ASSERT(d->max == 0 || d->size == 8 || d->max <= UINT32_MAX);
			break;
		default:
			CU_ASSERT_PTR_NOT_NULL(d->call);
			break;
		}
		CU_ASSERT((d->arg == NULL) == (d->kind == OPT_FLAG || (d->kind == OPT_CALL && (d->flags & OPT_CLI_ONLY))) ||
		          (d->flags & OPT_SCRIPT_ONLY));
		/* an alias names the same field as its option */
		if (d->flags & OPT_ALIAS) {
			CU_ASSERT(app_opt_canonical(d)->off == d->off && app_opt_canonical(d)->kind == d->kind);
		} else {
			CU_ASSERT_PTR_NOT_NULL(d->help);
		}
		/* one row per name (script-only keys apart) */
		CU_ASSERT_PTR_EQUAL(app_opt_find(d->name, (d->flags & OPT_SCRIPT_ONLY) != 0), d);
		/* the script-block message names every key a block takes */
		if (d->flags & OPT_SCRIPT) {
			const char *name = strncmp(d->name, "rlimit-", 7) == 0 ? "rlimit-*" : d->name;
			if (strcmp(name, "max-output") != 0)
				CU_ASSERT(strstr(APP_SCRIPT_KEYS, name) != NULL);
		}
	}
	/* and nothing else */
	{
		char keys[] = APP_SCRIPT_KEYS, *save = NULL;
		for (char *k = strtok_r(keys, ", ", &save); k; k = strtok_r(NULL, ", ", &save)) {
			const struct opt_def *d = app_opt_find(strcmp(k, "rlimit-*") == 0 ? "rlimit-as" : k, 1);
			CU_ASSERT(d != NULL && (d->flags & OPT_SCRIPT));
		}
	}
}

/* The man page's text with its escapes and font changes taken out. */
static void man_plain(const char *line, char *out, size_t size)
{
	size_t n = 0;
	const char *p = line;

	if (*p == '.') /* the macro name: .B, .BI, .BR, .I */
		p += strcspn(p, " ") + (p[strcspn(p, " ")] == ' ');
	for (; *p && n + 1 < size; p++) {
		if (p[0] == '\\' && p[1] == '-') {
			out[n++] = '-';
			p++;
		} else if (p[0] == '\\' && p[1] == 'f' && p[2]) {
			p += 2;
		} else if (*p != '"') {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/* cgiq(8) against the table: each option's item in OPTIONS, with the same
 * value and the same default; no item for an option that is not a row; the
 * script-only keys in CONFIGURATION FILE. */
static void test_man_page(void)
{
	const char *path = CGIQ_FIXTURES "/../../src/app/cgiq.8";
	int fd = open(path, O_RDONLY);
	struct stat st;
	char *man, *line, *save = NULL, head[512], body[8192], plain[512];
	char section[64] = "";
	int seen[256] = {0}, after_tp = 0;
	const struct opt_def *item = NULL;

	CU_ASSERT_FATAL(fd >= 0 && fstat(fd, &st) == 0);
	man = calloc(1, (size_t)st.st_size + 1);
	CU_ASSERT_FATAL(read(fd, man, (size_t)st.st_size) == st.st_size);
	close(fd);
	CU_ASSERT_FATAL(app_opt_count <= 256);
	body[0] = '\0';
	/* one pass; an item ends at the next .TP, .SS, .SH or .PP */
	for (line = strtok_r(man, "\n", &save);; line = strtok_r(NULL, "\n", &save)) {
		int ends = line == NULL || strncmp(line, ".TP", 3) == 0 || strncmp(line, ".SS", 3) == 0 ||
		           strncmp(line, ".SH", 3) == 0 || strncmp(line, ".PP", 3) == 0;
		if (ends && item) {
			/* the default --help shows is the man page's too */
			if (item->def && !(item->flags & OPT_DEF_IN_HELP) && strstr(body, item->def) == NULL) {
				fprintf(stderr, "cgiq.8: --%s does not say its default %s\n", item->name, item->def);
				CU_FAIL("a default differs from the table");
			}
			item = NULL;
		}
		if (line == NULL)
			break;
		if (strncmp(line, ".SH ", 4) == 0)
			snprintf(section, sizeof(section), "%s", line + 4);
		if (after_tp && strcmp(section, "OPTIONS") == 0) {
			/* an item's head: its options and their values */
			man_plain(line, head, sizeof(head));
			for (char *q = strstr(head, "--"); q; q = strstr(q + 2, "--")) {
				char name[64];
				size_t k = strspn(q + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
				const struct opt_def *d;
				snprintf(name, sizeof(name), "%.*s", (int)k, q + 2);
				d = app_opt_find(name, 0);
				if (d == NULL || (d->flags & OPT_SCRIPT_ONLY)) {
					fprintf(stderr, "cgiq.8: --%s is not an option of cgiq\n", name);
					CU_FAIL("the man page has an option the table has not");
					continue;
				}
				seen[d - app_opts] = 1;
				const char *v = q + 2 + k + strspn(q + 2 + k, " ");
				if (d->arg && v > q + 2 + k && strncmp(v, d->arg, strlen(d->arg)) == 0) {
					/* the same value as --help shows */
				} else if (d->arg) {
					fprintf(stderr, "cgiq.8: --%s without its %s\n", name, d->arg);
					CU_FAIL("an option's value is missing in the man page");
				}
				if (item == NULL)
					item = app_opt_canonical(d);
			}
			body[0] = '\0';
		} else if (after_tp && strcmp(section, "CONFIGURATION FILE") == 0) {
			man_plain(line, head, sizeof(head));
			for (size_t i = 0; i < app_opt_count; i++)
				if ((app_opts[i].flags & OPT_SCRIPT_ONLY) && strncmp(head, app_opts[i].name, strlen(app_opts[i].name)) == 0)
					seen[i] = 1;
		} else if (item) {
			man_plain(line, plain, sizeof(plain));
			if (strlen(body) + strlen(plain) + 2 < sizeof(body)) {
				strcat(body, plain);
				strcat(body, " ");
			}
		}
		after_tp = strncmp(line, ".TP", 3) == 0;
	}
	for (size_t i = 0; i < app_opt_count; i++) {
		if (app_opts[i].kind != OPT_SECTION && !seen[i]) {
			fprintf(stderr, "cgiq.8: no item for %s\n", app_opts[i].name);
			CU_FAIL("an option of the table is not in the man page");
		}
	}
	free(man);
}

int main(void)
{
	CU_pSuite suite;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("app", NULL, NULL);
	if (suite == NULL ||
	    !CU_add_test(suite, "parse a good file", test_parse_good) ||
	    !CU_add_test(suite, "parse errors with their line", test_parse_errors) ||
	    !CU_add_test(suite, "file applied", test_file_applied) ||
	    !CU_add_test(suite, "command line overrides the file", test_command_line_overrides) ||
	    !CU_add_test(suite, "script rules and lookup", test_script_rules) ||
	    !CU_add_test(suite, "file errors name FILE:LINE", test_file_errors) ||
	    !CU_add_test(suite, "--interpreter and --index", test_interpreter_and_index) ||
	    !CU_add_test(suite, "the options table", test_table_rows) ||
	    !CU_add_test(suite, "cgiq(8) follows the options table", test_man_page)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	app_conf_free(&conf);
	free(text);
	return (int)failed;
}
