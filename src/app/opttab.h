/*
 * The table of the daemon's options (opttab.c): one row per option with its
 * name, kind, default, help and the field of struct daemon_config it sets.
 * The row drives the command line, the configuration file, --help, the
 * defaults and the man page check. Internal to the app module.
 */
#ifndef CGIQ_APP_OPTTAB_H
#define CGIQ_APP_OPTTAB_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"

enum opt_kind {
	OPT_SECTION,  /* not an option: a heading of --help (name) */
	OPT_FLAG,     /* no value; sets an int to 1 */
	OPT_TEXT,     /* a string, kept by pointer */
	OPT_DURATION, /* "250ms", "2s", "5m": milliseconds into a uint64_t */
	OPT_SIZE,     /* "512", "64k", "1G": bytes into a uint64_t or size_t */
	OPT_COUNT,    /* a whole number into an unsigned */
	OPT_MODE,     /* an octal file mode other than 0 into an unsigned */
	OPT_CHOICE,   /* one of choices: its index into an int */
	OPT_CALL,     /* its own function reads and stores it */
};

#define OPT_REPEAT      0x01u /* each use adds to a list */
#define OPT_CLI_ONLY    0x02u /* means nothing in a configuration file */
#define OPT_SCRIPT      0x04u /* may be set in a script block too */
#define OPT_SCRIPT_ONLY 0x08u /* only in a script block */
#define OPT_ALIAS       0x10u /* another name of the row above it; not in --help */
#define OPT_ONCE        0x20u /* a second use is an error */
#define OPT_DEF_SHOWN   0x40u /* the default is worked out later: shown, not applied */
#define OPT_DEF_IN_HELP 0x80u /* the help text says the default itself */

struct opt_def {
	const char *name;   /* --name and the file's key; a section's heading */
	enum opt_kind kind;
	const char *arg;    /* the value as --help shows it ("DUR"); NULL for a flag */
	size_t off, size;   /* the field of struct daemon_config it sets */
	uint64_t min, max;  /* numbers: the range accepted (max 0: the type's) */
	const char *expect; /* the message's "(...)" for a number out of range */
	const char *def;    /* the default, as the command line would write it */
	const char *note;   /* said after the default in --help ("0 = none") */
	const char *help;   /* one paragraph; --help wraps it */
	const char *const *choices; /* OPT_CHOICE: the names, NULL-terminated */
	/* OPT_CALL: 0, -1 with *expect set (a bad value), 1: done, exit 0 */
	int (*call)(struct daemon_config *c, const char *value, const char **expect);
	unsigned flags;
};

/* What a script block may set, as its error message lists it; the unit test
 * holds it to the rows flagged OPT_SCRIPT. */
#define APP_SCRIPT_KEYS                                                                                       \
	"job-timeout, kill-grace, max-output-bytes, processing, processing-after, processing-interval, "        \
	"processing-max, on-disconnect, max-running, retry-interrupted, coalesce, stream, interpreter, rlimit-*, nice"

/* The rows, in --help order; app_opt_count of them. */
extern const struct opt_def app_opts[];
extern const size_t app_opt_count;

/* The row of a name (an alias's own row), or NULL. in_block: a script
 * block's own keys first ("coalesce" is a flag there). Never a section. */
const struct opt_def *app_opt_find(const char *name, int in_block);
/* The option an alias names; any other row itself. */
const struct opt_def *app_opt_canonical(const struct opt_def *d);
/* The getopt_long table of the command line; val is the row's index + 256
 * (an alias: its option's). Built once, static. */
const struct option *app_opt_getopt(void);
/* Applies one value (NULL for a flag) to c. Values are kept by pointer.
 * where: "FILE:LINE" for a message, NULL on the command line. Returns 0, 2
 * after one message naming the option, or -1 (--help, --version: exit 0). */
int app_opt_apply(struct daemon_config *c, const struct opt_def *d, const char *value, const char *where);
/* c zeroed, then every row's default (and the settings no option sets). */
void app_opt_defaults(struct daemon_config *c);
/* cgiq --help, from the table. */
void app_opt_usage(FILE *out);

#endif
