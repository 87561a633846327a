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

#endif
