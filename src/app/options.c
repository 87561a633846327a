/*
 * The daemon's options read from the configuration file with its script
 * blocks, and the command line on top (app__parse_args). What each option
 * is, its default and its check are rows of the table in opttab.c.
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
#include "opttab.h"
#include "front/front.h"

/* ---------------- configuration file ---------------- */

#define CONF_FILE_MAX_BYTES (1024 * 1024)

/* One entry of the file, resolved to an option. */
struct conf_item {
	const struct opt_def *def; /* its row (in a file, an alias's own) */
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
	struct front_policy *front_policies; /* the rules' front parts */
	struct cgi_interpreter *interpreters; /* the rules' interpreters, MAX_INTERPRETERS each */
	int atexit_done;
} conf_owned;

static void conf_owned_free(void)
{
	free(conf_owned.text);
	app_conf_free(&conf_owned.conf);
	free(conf_owned.items);
	free(conf_owned.rules);
	free(conf_owned.front_policies);
	free(conf_owned.interpreters);
	conf_owned.interpreters = NULL;
	conf_owned.text = NULL;
	conf_owned.items = NULL;
	conf_owned.rules = NULL;
	conf_owned.front_policies = NULL;
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
	const struct opt_def *o = app_opt_find(en->key, en->block >= 0);

	if (o == NULL) {
		fprintf(stderr, "%s:%u: unknown key '%s' (keys are the long options of cgiq --help)\n", file,
		        en->line, en->key);
		return 2;
	}
	if ((o->flags & OPT_SCRIPT_ONLY) && en->block < 0) {
		fprintf(stderr, "%s:%u: '%s' is only allowed inside a script block\n", file, en->line, en->key);
		return 2;
	}
	if (o->flags & OPT_CLI_ONLY) {
		fprintf(stderr, "%s:%u: '%s' cannot be set in a configuration file\n", file, en->line, en->key);
		return 2;
	}
	if (en->block >= 0 && !(o->flags & OPT_SCRIPT)) {
		fprintf(stderr, "%s:%u: '%s' cannot be set per script (a script block takes %s)\n", file, en->line,
		        en->key, APP_SCRIPT_KEYS);
		return 2;
	}
	it->def = o;
	it->value = en->value;
	it->skip = 0;
	if (o->arg == NULL) {
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

/* Whether option d is among items (their options are canonical). */
static int given(const struct opt_def *d, const struct conf_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (items[i].def == d)
			return 1;
	return 0;
}

/* Applies the items of block (-1: the top level) to c, naming their lines in
 * messages. skip: options left out (given on the command line). */
static int conf_apply(struct daemon_config *c, const char *file, int block, const struct conf_item *skip,
                      size_t skip_count)
{
	const struct app_conf *cf = &conf_owned.conf;
	int r = 0;

	for (size_t i = 0; i < cf->entry_count && r == 0; i++) {
		const struct conf_item *it = &conf_owned.items[i];
		if (cf->entries[i].block != block || it->skip || given(app_opt_canonical(it->def), skip, skip_count))
			continue;
		r = app_opt_apply(c, it->def, it->value, where(file, cf->entries[i].line));
	}
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
		if (conf_owned.items[i].def->flags & OPT_REPEAT)
			continue;
		for (size_t k = 0; k < i; k++) {
			if (cf->entries[k].block == en->block &&
			    app_opt_canonical(conf_owned.items[k].def) == app_opt_canonical(conf_owned.items[i].def)) {
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
	app_opt_defaults(&scratch);
	r = conf_apply(&scratch, file, -1, NULL, 0);
	for (size_t b = 0; b < cf->block_count && r == 0; b++) {
		app_opt_defaults(&scratch);
		r = conf_apply(&scratch, file, (int)b, NULL, 0);
	}
	return r < 0 ? 2 : r;
}

static void policy_of(const struct daemon_config *c, struct job_policy *p, struct front_policy *fp)
{
	memset(p, 0, sizeof(*p));
	memset(fp, 0, sizeof(*fp));
	fp->processing_mode = (int)c->http.processing_mode;
	fp->processing_after_ms = c->http.processing_after_ms;
	fp->processing_interval_ms = c->http.processing_interval_ms;
	fp->processing_max = c->http.processing_max;
	fp->detach_on_disconnect = c->http.detach_on_disconnect;
	p->job_timeout_ms = c->jobs.job_timeout_ms;
	p->kill_grace_ms = c->jobs.kill_grace_ms;
	p->max_output_bytes = c->jobs.max_output_bytes;
	p->max_running = c->max_running;
	p->retry_interrupted = c->retry_interrupted;
	p->coalesce = c->coalesce_rule;
	p->stream = c->stream_rule;
	p->limits = c->limits;
	p->interpreters = c->interpreters;
	p->interpreter_count = c->interpreter_count;
}

/* Each script block on top of the final global settings: a key the block
 * leaves out takes the global value. Into c->jobs.rules. */
static int conf_build_rules(struct daemon_config *c, const char *file)
{
	const struct app_conf *cf = &conf_owned.conf;

	if (cf->block_count == 0)
		return 0;
	conf_owned.rules = util_xcalloc(cf->block_count, sizeof(*conf_owned.rules));
	conf_owned.front_policies = util_xcalloc(cf->block_count, sizeof(*conf_owned.front_policies));
	conf_owned.interpreters = util_xcalloc(cf->block_count * MAX_INTERPRETERS, sizeof(*conf_owned.interpreters));
	for (size_t b = 0; b < cf->block_count; b++) {
		struct daemon_config tmp = *c;
		int r;

		tmp.max_running = 0;
		tmp.retry_interrupted = 0;
		tmp.coalesce_rule = 0;
		tmp.stream_rule = 0;
		r = conf_apply(&tmp, file, (int)b, NULL, 0);
		if (r != 0)
			return r < 0 ? 2 : r;
		conf_owned.rules[b].pattern = cf->blocks[b].pattern;
		policy_of(&tmp, &conf_owned.rules[b].policy, &conf_owned.front_policies[b]);
		/* the global interpreters, then the block's (tmp is on the stack) */
		memcpy(&conf_owned.interpreters[b * MAX_INTERPRETERS], tmp.interpreters, sizeof(tmp.interpreters));
		conf_owned.rules[b].policy.interpreters = &conf_owned.interpreters[b * MAX_INTERPRETERS];
		conf_owned.rules[b].front = &conf_owned.front_policies[b];
	}
	c->jobs.rules = conf_owned.rules;
	c->jobs.rule_count = (unsigned)cf->block_count;
	return 0;
}

/* After the options: the CGI root given, sockets from systemd or
 * spawn-fcgi taken, the default listener, and the admin listener kept off
 * the public ones. Returns -1 to go on, or 2 after a message. */
/* A streamed body goes to one client as the program writes it: a client
 * that joined late would miss its start. So a pattern given to both
 * --stream and --coalesce, or a block with both keys, is refused; where
 * different patterns overlap, the program streams and is not coalesced. */
static int stream_check(const struct daemon_config *c, const char *file)
{
	for (unsigned i = 0; i < c->stream_count; i++)
		for (unsigned k = 0; k < c->coalesce_count; k++)
			if (strcmp(c->stream[i], c->coalesce[k]) == 0) {
				fprintf(stderr, "cgiq: --stream %s and --coalesce %s: a streamed program's body goes to "
				        "one client as it is written, its requests cannot share a job\n",
				        c->stream[i], c->coalesce[k]);
				return 2;
			}
	for (unsigned b = 0; b < c->jobs.rule_count; b++)
		if (c->jobs.rules[b].policy.stream && c->jobs.rules[b].policy.coalesce) {
			fprintf(stderr, "cgiq: %s: script %s: stream and coalesce: a streamed program's body goes to "
			        "one client as it is written, its requests cannot share a job\n",
			        file ? file : "-", c->jobs.rules[b].pattern);
			return 2;
		}
	return 0;
}

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
	const struct option *longopts = app_opt_getopt();
	struct conf_item *cli; /* the options given, each by its canonical row */
	size_t cli_count = 0;
	const char *file = NULL;
	int opt, r = -1;

	conf_owned_free();
	if (!conf_owned.atexit_done) {
		conf_owned.atexit_done = 1;
		atexit(conf_owned_free);
	}
	app_opt_defaults(c);
	cli = util_xcalloc((size_t)argc + 1, sizeof(*cli));
	opterr = 0;
	optind = 1;
	/* -h is --help, the one short option: what a newcomer types first. */
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const struct opt_def *d;
		if (opt == 'h') {
			r = app_opt_apply(c, app_opt_find("help", 0), NULL, NULL);
			r = r < 0 ? 0 : r;
			goto out;
		}
		if (opt == '?' || opt == ':') {
			if (optopt >= 256)
				fprintf(stderr, "cgiq: option --%s needs a value\n", app_opts[optopt - 256].name);
			else
				fprintf(stderr, "cgiq: unknown option '%s' (see cgiq --help)\n", argv[optind - 1]);
			r = 2;
			goto out;
		}
		d = &app_opts[opt - 256];
		if (d->flags & OPT_CLI_ONLY && d->kind == OPT_CALL) {
			/* --help, --version: at once, and nothing else */
			r = app_opt_apply(c, d, optarg, NULL);
			r = r < 0 ? 0 : r;
			goto out;
		}
		if (strcmp(d->name, "config") == 0)
			file = optarg;
		cli[cli_count].def = d;
		cli[cli_count++].value = optarg;
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
		r = conf_apply(c, file, -1, cli, cli_count);
		if (r != 0)
			goto out;
	}
	for (size_t i = 0; i < cli_count; i++) {
		r = app_opt_apply(c, cli[i].def, cli[i].value, NULL);
		if (r != 0)
			goto out;
	}
	if (file) {
		r = conf_build_rules(c, file);
		if (r != 0)
			goto out;
	}
	r = stream_check(c, file);
	if (r == 0)
		r = listeners_check(c);
out:
	free(cli);
	return r < 0 ? -1 : r;
}
