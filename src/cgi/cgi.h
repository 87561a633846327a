/*
 * cgi: the RFC 3875 parts that do not need an event loop.
 *  - path mapping: request path -> program under the CGI root + PATH_INFO
 *  - environment builder: request -> "NAME=value" array built from scratch
 *  - response parser: the program's header block -> status and headers (pure)
 *  - spawn: fork/exec the program in its own process group with pipes
 */
#ifndef CGIQ_CGI_H
#define CGIQ_CGI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* ---------------- path mapping ---------------- */

struct cgi_target {
	char *script_filename; /* absolute path of the program, e.g. /srv/cgi-bin/report.pl */
	char *script_name;     /* URL path of the program, e.g. /cgi/report.pl (decoded) */
	char *path_info;       /* rest of the decoded path, "" when none, e.g. /2024/q3 */
	char *dir;             /* directory of the program (its cwd) */
	/* the program that runs script_filename (--interpreter, borrowed from
	 * the configuration), or NULL when the file is the program itself */
	const char *interpreter;
	const char *index;     /* the index name added to a directory's path, or NULL (borrowed) */
	int is_static;         /* a static file (--static) to send as it is, not a program */
	/* when the mapping failed: why, for the log line ("no such file"), and
	 * whether it is cgiq's user's permission that is missing */
	const char *why;
	int why_access;
};

/*
 * Maps a request path to a program.
 * root: absolute, canonical path of the CGI root (no trailing slash).
 * prefix: URL prefix the root is mounted at ("/" or "/cgi-bin", no trailing slash
 *         except for "/").
 * raw_path: the path part of the request-target, still percent-encoded, no query.
 *
 * The path is percent-decoded; the longest existing leading sequence of
 * segments that names a regular file is the program, the rest is PATH_INFO.
 * Returns 0 and fills *out (free with cgi_target_free), or an HTTP status:
 *  400 bad percent-encoding or a NUL byte,
 *  403 a ".." or "." segment, a segment starting with '.', a path escaping the
 *      root through a symlink, a program that is not executable,
 *  404 outside the prefix, nothing found, or only directories.
 */
int cgi_map_path(const char *root, const char *prefix, const char *raw_path,
                 struct cgi_target *out);

/* A file run by an interpreter rather than executed (--interpreter
 * .php=/usr/bin/php-cgi): ext includes its dot, matched case-sensitively
 * against the end of the file's name. */
struct cgi_interpreter {
	char ext[16];
	const char *path;  /* absolute; borrowed */
};
/* The interpreter of file among v[0..n) (the last entry for its extension
 * wins, so a script block's come after the global ones), or NULL. */
const char *cgi_interpreter_for(const struct cgi_interpreter *v, size_t n, const char *file);

/* Where programs are, and which files an interpreter runs. */
struct cgi_map {
	const char *root;    /* as for cgi_map_path */
	const char *prefix;
	/* the interpreter of a file found under the root (its canonical path),
	 * NULL when it must be an executable; NULL: no interpreters */
	const char *(*interpreter)(void *ctx, const char *script_filename);
	void *ctx;
	/* --index: the names a directory's program is looked for under, in
	 * order (NULL-terminated; NULL: none) */
	const char *const *index;
	/* --static: patterns of the files sent as they are (cgi_static_match);
	 * NULL-terminated, NULL: none */
	const char *const *static_patterns;
};

/* Whether the file at rel ("/" + its path below the root) is static under
 * patterns: "assets" (the built-in set of asset types: style sheets,
 * scripts, images, fonts, HTML and text), "*.EXT"-like patterns without a
 * '/' (matched against the file's name), or "/..." patterns (fnmatch(3),
 * FNM_PATHNAME, against rel, as script blocks). */
int cgi_static_match(const char *const *patterns, const char *rel);
/* cgi_map_path with interpreters and index programs: a file an interpreter
 * runs needs to be readable, not executable, and the target names the
 * interpreter. A path naming a directory (ending in '/') runs its first
 * index program that exists; the same path without its slash returns 301
 * (the caller redirects to the path with '/' added) when the directory has
 * one, else 404. A file that is neither an interpreter's nor executable,
 * and matches a static pattern, is static (target->is_static; its reader
 * finds whether it may read it), and takes no PATH_INFO (404). */
int cgi_map(const struct cgi_map *m, const char *raw_path, struct cgi_target *out);
void cgi_target_free(struct cgi_target *t);

/* Why a mapping failed, for a log line: t->why, with the user whose
 * permission is missing when it is one ("not executable by cgiq's user
 * nobody"; user NULL: its uid). Returns a static string or buf. */
const char *cgi_target_why(const struct cgi_target *t, const char *user, char *buf, size_t size);

/* ---------------- environment ---------------- */

struct cgi_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* What the environment is built from. Strings are borrowed. NULL = unknown. */
struct cgi_request {
	const char *method;          /* "GET" */
	const char *request_uri;     /* request-target as received, "/x.pl/a?b=1" */
	const char *query_string;    /* after '?', without it; "" when none */
	const char *protocol;        /* "HTTP/1.1" */
	const struct cgi_target *target;
	const char *document_root;   /* the CGI root */
	const struct cgi_header *headers;
	size_t header_count;
	int64_t content_length;      /* -1 when there is no body */
	const char *remote_addr;     /* "127.0.0.1" */
	unsigned remote_port;
	const char *server_addr;
	unsigned server_port;
	const char *server_name;     /* from Host (without port), else server_addr */
	int https;
	int pass_authorization;      /* pass Authorization as HTTP_AUTHORIZATION */
	const char *const *extra;    /* more "NAME=value" entries (NULL-terminated) or NULL */
	const char *const *env;      /* the operator's (--env), set last: NULL-terminated, or NULL */
};

struct cgi_env {
	char **vars;  /* NULL-terminated "NAME=value" strings, owned */
	size_t count;
};

/*
 * Builds the environment from scratch: RFC 3875 4.1 meta-variables, the usual
 * extras (REQUEST_URI, SCRIPT_FILENAME, DOCUMENT_ROOT, REMOTE_PORT,
 * SERVER_ADDR, HTTPS=on when https, PATH=/usr/local/bin:/usr/bin:/bin) and
 * HTTP_* for request headers (name upper-cased, '-' -> '_'). Never emits
 * HTTP_PROXY (httpoxy); Content-Type and Content-Length become CONTENT_TYPE /
 * CONTENT_LENGTH, not HTTP_*; Authorization only when pass_authorization
 * (AUTH_TYPE is then the scheme). Header names that are not tokens are dropped.
 * Returns 0, or 400 when two headers map to the same variable (e.g. "X-A" and
 * "X_A", or a repeated header other than ones that may be combined: repeated
 * headers with the same name are joined with ", "), with *bad_header set to the
 * offending header name (borrowed from req) when not NULL.
 */
int cgi_env_build(const struct cgi_request *req, struct cgi_env *out, const char **bad_header);
/* Looks a variable up ("NAME" -> value or NULL). */
const char *cgi_env_get(const struct cgi_env *env, const char *name);
void cgi_env_free(struct cgi_env *env);

/* ---------------- response header parser (pure) ---------------- */

struct cgi_response {
	int status;          /* from Status:, or 302 with an absolute Location, or 200; 0 = local redirect */
	char *reason;        /* reason phrase from Status: or NULL */
	char *location;      /* Location value or NULL */
	int has_content_type;
	struct buf headers;  /* header lines to forward, "Name: value\r\n" each; excludes Status,
	                        and hop-by-hop/framing headers the gateway owns (Connection,
	                        Content-Length, Transfer-Encoding, Keep-Alive, Date, Server) */
	size_t header_count;
	/* Set before the first feed: a non-parsed-header program's output (RFC
	 * 3875 5): its first line is an HTTP status line ("HTTP/1.1 200 OK",
	 * 200 to 599), which gives status and reason; then header lines as for
	 * any program, with the same ones dropped, a Status only with the same
	 * code (dropped), no Transfer-Encoding (the gateway frames the body),
	 * no Content-Type required. */
	int nph;
	/* internal parse state */
	struct buf line;
	int done;
	size_t header_bytes; /* bytes of the block seen so far, for CGI_MAX_HEADER_BYTES */
	size_t line_count;   /* header lines seen so far, for CGI_MAX_HEADERS */
};

#define CGI_MAX_HEADER_BYTES (64 * 1024)
#define CGI_MAX_HEADERS 200

void cgi_response_init(struct cgi_response *r);
void cgi_response_free(struct cgi_response *r);

/*
 * Feeds program output. Lines end in "\n" or "\r\n"; an empty line ends the
 * block. Returns:
 *   0   need more (all len bytes consumed into the parser),
 *   1   header block complete; *consumed = bytes of data that belonged to it
 *       (the rest is body),
 *  <0   malformed: -EBADMSG (a line without ':', a bad Status, no Content-Type
 *       and no Location (RFC 3875 6.2), invalid characters; with nph, a bad
 *       status line or a Status of another code), -EPROTO (nph: Transfer-Encoding),
 *       -E2BIG (more than CGI_MAX_HEADER_BYTES or CGI_MAX_HEADERS).
 *       *consumed unspecified.
 * Must not be called again after 1 or an error.
 */
int cgi_response_feed(struct cgi_response *r, const char *data, size_t len, size_t *consumed);

/* ---------------- spawn ---------------- */

/*
 * Per-job resource limits (setrlimit) and niceness, set in the child between
 * fork and exec, so they hold from the program's first instruction. A value
 * of 0 leaves the limit as cgiq has it (inherit). Each limit is set as both
 * soft and hard, so the program cannot raise it again; the CPU limit's hard
 * value is one second above the soft one, so that SIGXCPU (catchable) comes
 * first and SIGKILL one CPU second later for a program that ignores it.
 */
struct cgi_limits {
	uint64_t cpu_s;        /* RLIMIT_CPU, seconds */
	uint64_t as_bytes;     /* RLIMIT_AS */
	uint64_t nofile;       /* RLIMIT_NOFILE */
	uint64_t nproc;        /* RLIMIT_NPROC: processes of the program's user (not enforced for root) */
	uint64_t fsize_bytes;  /* RLIMIT_FSIZE */
	int core_set;          /* 1: RLIMIT_CORE = core_bytes (0 is the usual: no core files) */
	uint64_t core_bytes;
	int nice_set;          /* 1: setpriority(nice) */
	int nice;              /* -20..19 */
};

/* Who a program runs as, when not cgiq's own identity. The calling process
 * must be able to take these ids: root, or a daemon whose effective ids are
 * the program's (see app/privs.c). set_groups: replace the supplementary
 * groups too (needs root; otherwise the child keeps cgiq's, which the
 * daemon made the program user's groups when it dropped its privileges). */
#define CGI_MAX_GROUPS 64
struct cgi_identity {
	uid_t uid;
	gid_t gid;
	int set_groups;
	int ngroups;
	gid_t groups[CGI_MAX_GROUPS];
};

struct cgi_spawn {
	const char *path;            /* program to exec */
	char *const *argv;           /* NULL-terminated */
	char *const *envp;           /* NULL-terminated */
	const char *cwd;
	int stdin_fd;                /* >= 0: use this fd as the child's stdin (e.g. a spool file);
	                                -1: make a pipe and return its write end */
	int progress_fd;             /* 1: a pipe on the child's fd 3 for progress lines */
	const struct cgi_limits *limits; /* applied in the child before exec; NULL = inherit all */
	int signals_blocked;         /* 1: the calling thread already blocks every signal */
	const struct cgi_identity *as; /* NULL: cgiq's own uid and gids */
};

struct cgi_proc {
	pid_t pid;        /* also the process group id */
	int stdin_fd;     /* parent's write end, -1 when stdin_fd was given */
	int stdout_fd;    /* parent's read end */
	int stderr_fd;    /* parent's read end */
	int progress_fd;  /* parent's read end of fd 3, -1 when not asked for */
};

/* ---------------- progress lines (pure) ---------------- */

#define CGI_PROGRESS_FD 3
#define CGI_PROGRESS_TEXT_MAX 200

struct cgi_progress {
	int64_t done;
	int64_t total;
	char text[CGI_PROGRESS_TEXT_MAX + 1]; /* printable ASCII, may be empty */
};

/*
 * Parses one line a program wrote on CGIQ_PROGRESS_FD, without its newline:
 * "DONE/TOTAL optional text", 0 <= DONE <= TOTAL, TOTAL > 0, decimal. The text
 * is cut at CGI_PROGRESS_TEXT_MAX bytes; bytes outside printable ASCII become
 * '?'. Returns 0 or -EINVAL.
 */
int cgi_progress_parse(const char *line, size_t len, struct cgi_progress *out);

/*
 * Starts the program in a new process group (pgid = pid), with
 * PR_SET_PDEATHSIG SIGKILL (it dies with cgiq), default signal dispositions
 * and an empty signal mask, cwd set, and no fds but 0, 1, 2 (all parent fds
 * are close-on-exec). Dispositions reset in the child: those that were not
 * SIG_DFL at the first call (inherited SIG_IGN, a sanitizer's handlers), and
 * always HUP INT QUIT TERM CHLD PIPE USR1 USR2 ALRM, the ones cgiq itself
 * sets; a process that sets another one later must not rely on this. The
 * parent's ends are non-blocking and close-on-exec.
 * Returns 0 or a negative errno (from pipe, fork, or exec: an exec failure is
 * reported through a CLOEXEC pipe, so -ENOENT / -EACCES come back here; the
 * failed child is already reaped then). opts->stdin_fd stays the caller's to
 * close; the fds in *out are the caller's on success.
 */
int cgi_spawn_start(const struct cgi_spawn *opts, struct cgi_proc *out);

#endif
