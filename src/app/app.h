/*
 * app: the cgiq command line. main.c dispatches to the daemon or to the
 * operator subcommands that read the job database.
 */
#ifndef CGIQ_APP_H
#define CGIQ_APP_H

#include <stddef.h>
#include <sys/types.h>

#include "cgi/cgi.h"

/* `cgiq jobs --db FILE [--state STATE] [--limit N] [--json]`: lists jobs newest
 * first. argv[0] is "jobs". Returns the process exit status (0, 1 on a
 * database error, 2 on a usage error with a message naming the option). */
int app_jobs_cmd(int argc, char **argv);

/* `cgiq job ID --db FILE [--json]`: shows one job in full. argv[0] is "job".
 * Exit status 0, 1 (database error or no such job), 2 (usage). */
int app_job_cmd(int argc, char **argv);

/* `cgiq store migrate --store PLACE` (or --db FILE): makes the store's
 * schema, or brings it up to date, as a daemon's start would (for operators
 * who run migrations by hand). argv[0] is "store". Exit status 0, 1 (it
 * cannot be opened or migrated), 2 (usage). */
int app_store_cmd(int argc, char **argv);

/* The daemon: parses options, runs until SIGTERM/SIGINT. Returns exit status. */
int app_daemon_main(int argc, char **argv);

/* ---- running as a service (service.c) ---- */

/*
 * Takes the exclusive lock of database db: an flock on "db.lock" (created
 * next to it, close-on-exec, pid written in it), held until the process
 * ends through the descriptor put in *out_fd. Returns 0, or a negative errno
 * with msg set to one line for the operator (when another process holds it:
 * the database and that process's pid).
 */
int app_lock_db(const char *db, int *out_fd, char *msg, size_t msg_size);

/*
 * systemd readiness (sd_notify(3) protocol, without libsystemd): sends state
 * ("READY=1", "STOPPING=1") as one datagram to $NOTIFY_SOCKET (a path, or
 * "@name" for the abstract namespace). Returns 0 (also when the variable is
 * not set) or a negative errno (logged).
 */
int app_notify(const char *state);

/* Sockets passed by systemd (socket activation). Addresses are "fd:N". */
struct app_inherited {
	int active;               /* LISTEN_PID was this process */
	const char *http[16];     /* FileDescriptorName=http */
	unsigned http_count;
	const char *fastcgi;      /* FileDescriptorName=fastcgi, or a single unnamed socket */
};
/*
 * Reads LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES (when LISTEN_PID is this
 * process), marks the sockets close-on-exec and unsets the variables.
 * Returns 0 (out->active 0 when nothing was passed) or -EINVAL with msg set
 * (a socket with another name, two FastCGI sockets, a bad count).
 */
int app_socket_activation(struct app_inherited *out, char *msg, size_t msg_size);
/* ---- privileges (privs.c), internal to the app module ---- */

struct app__privs {
	int active;       /* --user given */
	uid_t uid;
	gid_t gid;        /* --group, else the user's primary group */
	int only_group;   /* --group given: that group alone, not the user's groups */
	char user[64];    /* name, for initgroups and messages */
	/* --program-user: programs run apart from cgiq, as this user, its
	 * primary group and its groups (program.set_groups stays 0: the drop
	 * gives cgiq the programs' groups, and children keep them) */
	int program_active;
	char program_user[64];
	struct cgi_identity program;
};

/* The system's MIME table (Debian: media-types), for static files. */
#define APP_MIME_TYPES "/etc/mime.types"

/* The user programs run as when --user is given and --program-user is not. */
#define APP_PROGRAM_USER_DEFAULT "cgiq-run"

/* Resolves --user/--group (names or numbers). user NULL: *out inactive.
 * Returns 0 or -ENOENT after printing a message naming the option. */
int app__privs_resolve(const char *user, const char *group, struct app__privs *out);

/* Gives path to the target user, when cgiq created it (created != 0) or root
 * owns it, so the daemon can still write it after the drop. Never follows a
 * symlink, never takes a sticky or world-writable directory it did not
 * create. A missing path is fine. Returns 0 or -errno (message printed). */
int app__privs_own(const struct app__privs *p, const char *path, int created);

/* Resolves the programs' user (a name or a uid) and its groups into p
 * (program_active set when it is not p's own user). Returns 0 or -ENOENT,
 * -E2BIG (too many groups) after printing a message; as_default: the name
 * was not given, and the message says how to create it or name another. */
int app__privs_resolve_program(const char *name, int as_default, struct app__privs *p);

/* setgroups (the user's groups, or just --group), setgid, setuid, then
 * checks that real and effective ids are the target and setuid(0) fails.
 * No-op when inactive. Returns 0 or -errno (message printed).
 *
 * With a program user, the real and saved ids become the user's and the
 * effective ids the programs': cgiq may then signal its programs, while they
 * (all three ids theirs) can neither signal nor trace cgiq. Files are
 * accessed with the file-system ids, set back to the user's; these are per
 * thread, so the process must have no other thread yet (refused if it has),
 * and threads started later inherit them. Supplementary groups become the
 * programs'. */
int app__privs_drop(const struct app__privs *p);

/* Whether cgiq's user and the programs' can enter the CGI root and run the
 * programs below it (rootcheck.c), each checked in a child that becomes
 * that user; a file one of interps runs needs to be readable rather than
 * executable. Prints what they cannot. Returns 0, 1 (warnings printed: some
 * programs will be refused) or 2 (the root itself cannot be entered). */
int app__check_cgi_root(const struct app__privs *p, const char *root, const struct cgi_interpreter *interps,
                        size_t interp_count);

/* With a program user: whether it could read one of the n paths (NULL
 * entries skipped; a directory: enter it). Returns 0, or -EACCES after a
 * message naming the path. Call after the drop. */
int app__privs_check_private(const struct app__privs *p, const char *const *paths, size_t n);

/* At the very end: the effective ids back to the user's, so that all of the
 * process's ids are one again (LeakSanitizer's check at exit traces the
 * process from a sibling, which needs that). No-op without a program user. */
void app__privs_settle(const struct app__privs *p);

#endif
