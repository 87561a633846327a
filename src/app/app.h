/*
 * app: the cgiq command line. main.c dispatches to the daemon or to the
 * operator subcommands that read the job database.
 */
#ifndef CGIQ_APP_H
#define CGIQ_APP_H

/* `cgiq jobs --db FILE [--state STATE] [--limit N] [--json]`: lists jobs newest
 * first. argv[0] is "jobs". Returns the process exit status (0, 1 on a
 * database error, 2 on a usage error with a message naming the option). */
int app_jobs_cmd(int argc, char **argv);

/* `cgiq job ID --db FILE [--json]`: shows one job in full. argv[0] is "job".
 * Exit status 0, 1 (database error or no such job), 2 (usage). */
int app_job_cmd(int argc, char **argv);

/* The daemon: parses options, runs until SIGTERM/SIGINT. Returns exit status. */
int app_daemon_main(int argc, char **argv);

/* ---- privileges (privs.c), internal to the app module ---- */

#include <sys/types.h>

struct app__privs {
	int active;       /* --user given */
	uid_t uid;
	gid_t gid;        /* --group, else the user's primary group */
	int only_group;   /* --group given: that group alone, not the user's groups */
	char user[64];    /* name, for initgroups and messages */
};

/* Resolves --user/--group (names or numbers). user NULL: *out inactive.
 * Returns 0 or -ENOENT after printing a message naming the option. */
int app__privs_resolve(const char *user, const char *group, struct app__privs *out);

/* Gives path to the target user, when cgiq created it (created != 0) or root
 * owns it, so the daemon can still write it after the drop. Never follows a
 * symlink, never takes a sticky or world-writable directory it did not
 * create. A missing path is fine. Returns 0 or -errno (message printed). */
int app__privs_own(const struct app__privs *p, const char *path, int created);

/* setgroups (the user's groups, or just --group), setgid, setuid, then
 * checks that real and effective ids are the target and setuid(0) fails.
 * No-op when inactive. Returns 0 or -errno (message printed). */
int app__privs_drop(const struct app__privs *p);

#endif
