/*
 * The daemon's options (options.c): the command line and the configuration
 * file into one struct daemon_config. Internal to the app module.
 */
#ifndef CGIQ_APP_OPTIONS_H
#define CGIQ_APP_OPTIONS_H

#include <limits.h>

#include "app.h"
#include "fcgi/fcgi.h"
#include "http/http.h"
#include "jobs/jobs.h"

#define MAX_LISTEN 16
#define MAX_PATTERNS 64 /* --coalesce, --stream */
#define MAX_INTERPRETERS 32
#define MAX_INDEX 8
#define MAX_STATIC 32
#define MAX_ENV 32
#define MAX_PROCESSING_CLIENTS 64
#define PROCESSING_PATTERN_MAX 256

struct daemon_config {
	const char *listen[MAX_LISTEN];
	unsigned listen_count;
	const char *cgi_root;
	char cgi_root_where[PATH_MAX + 16]; /* "FILE:LINE" when a file set it, else "" */
	const char *cgi_prefix;
	const char *db;
	const char *spool;
	const char *node_name; /* --node-name; NULL: the host name */
	struct http_server_config http;
	/* --processing-client rows (patterns copied here), --processing-relay */
	struct http_processing_client processing_clients[MAX_PROCESSING_CLIENTS];
	char processing_patterns[MAX_PROCESSING_CLIENTS][PROCESSING_PATTERN_MAX];
	struct http_relay processing_relays[MAX_LISTEN];
	const char *processing_misread_file;       /* NULL: SPOOL/.cgiq-102-misread */
	uint64_t processing_misread_ttl_ms;        /* 0: no evidence kept */
	const char *fastcgi;                       /* --fastcgi ADDR or NULL */
	const char *fastcgi_allow[MAX_LISTEN + 1]; /* NULL-terminated */
	const char *coalesce[MAX_PATTERNS + 1];    /* NULL-terminated */
	const char *stream[MAX_PATTERNS + 1];      /* NULL-terminated */
	/* --interpreter, in the order given (a script block's after the global
	 * ones, in its own copy of the struct) */
	struct cgi_interpreter interpreters[MAX_INTERPRETERS];
	unsigned interpreter_count;
	/* --index: the names, split out of index_buf; NULL-terminated */
	const char *index[MAX_INDEX + 1];
	/* --static patterns; NULL-terminated */
	const char *static_patterns[MAX_STATIC + 1];
	unsigned static_count;
	/* --env NAME=VALUE entries; NULL-terminated */
	const char *env[MAX_ENV + 1];
	unsigned env_count;
	char index_buf[256];
	unsigned coalesce_count;
	unsigned stream_count;
	unsigned fastcgi_allow_count;
	struct fcgi_config fcgi;
	struct job_config jobs;
	/* Observability */
	const char *access_log;                    /* --access-log FILE, "-", NULL = off */
	const char *admin_listen;                  /* --admin-listen ADDR or NULL */
	int admin_allow_public;
	uint64_t drain_timeout_ms;                 /* SIGTERM: running jobs get this long */
	const char *log_file;                      /* --log-file or NULL (stderr) */
	struct app_inherited inherited;            /* sockets from systemd */
	/* Isolation */
	const char *user;          /* --user, NULL = stay who we are */
	const char *group;         /* --group */
	const char *program_user;  /* --program-user, NULL = the default (see check_root) */
	int allow_root;            /* --allow-root: programs may run as root */
	struct cgi_limits limits;  /* --rlimit-*, --nice */
	/* --config FILE: its script blocks become jobs.rules */
	const char *config_file;
	int check_only;                            /* --check-config / --test */
	unsigned max_running;                      /* a script block's max-running */
	int retry_interrupted;                     /* a script block's retry-interrupted */
	int coalesce_rule;                         /* a script block's coalesce = yes */
	int stream_rule;                           /* a script block's stream = yes */
};

/* The command line (and the file --config names) into c: returns -1 to go
 * on, else the exit status (0 after --help or --version, 2 after a message
 * naming the bad option or FILE:LINE). */
int app__parse_args(int argc, char **argv, struct daemon_config *c);

#endif
