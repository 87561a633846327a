/*
 * The test suite's own PostgreSQL server: a cluster made with initdb in a
 * temporary directory, run by pg_ctl as the unprivileged postgres user
 * (cgiq's tests run as root), listening only on a unix socket in that
 * directory, and stopped by its postmaster's PID. No other server is
 * touched; nothing listens on TCP.
 */
#ifndef CGIQ_TEST_PG_H
#define CGIQ_TEST_PG_H

#include <sys/types.h>

struct tpg {
	pid_t pid;          /* the postmaster */
	char dir[64];       /* the temporary directory: data/, the socket, the log */
	char conninfo[256]; /* libpq's: host=DIR dbname=cgiq user=cgiq */
	char url[320];      /* the same as a URL: postgresql://cgiq@/cgiq?host=DIR */
};

/* Makes the cluster (user and database cgiq, trust over the socket only)
 * and starts it; waits until it accepts connections (30 s at most).
 * Returns 0, or -1 with what went wrong on stderr. */
int tpg_start(struct tpg *pg);
/* SIGINT to the postmaster (a fast shutdown: its sessions are ended), then
 * SIGQUIT after 10 s and SIGKILL after 20; waits for it to be gone;
 * removes the directory. */
void tpg_stop(struct tpg *pg);
/* Stops the server as tpg_stop does, its directory kept; tpg_resume starts
 * it again (the same socket and data). 0, or -1 with a line. */
int tpg_halt(struct tpg *pg);
int tpg_resume(struct tpg *pg);
/* Runs sql with psql on the cluster; its output (unaligned, tuples only)
 * into out. Returns psql's exit status. */
int tpg_psql(const struct tpg *pg, const char *sql, char *out, size_t out_size);

#endif
