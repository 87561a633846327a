/*
 * What programs leave behind. cgiq is a child subreaper
 * (PR_SET_CHILD_SUBREAPER): a process whose parent dies is reparented to
 * cgiq rather than to init, whatever it did to leave its process group
 * (setsid, double fork). So when a job's program exits, everything it
 * started and left running becomes a child of cgiq, where it can be found,
 * named and stopped.
 *
 * Orphans are reparented to the subreaper's first live thread, the thread
 * group leader, which runs the event loop: they are listed in
 * /proc/self/task/PID/children, while the programs themselves are children
 * of the spawner threads. That file is read (one open, read, close) when a
 * job ends, once a second, and more often while something is being killed;
 * a /proc scan happens only for an orphan actually found.
 *
 * Whose is an orphan: its environment (/proc/PID/environ, as it was when it
 * exec'd) carries CGIQ_JOB_ID, which every program gets and its children
 * inherit. A process that rewrites its command line (perl's $0,
 * setproctitle) may overwrite that memory, and one may clear its
 * environment: then it belongs to some job that started before it did (the
 * start times are compared in clock ticks since boot, as /proc gives them).
 * An orphan of a job still running is its own business (a double fork
 * within a job that goes on); an orphan whose job ended, or one with no
 * name when every job that started before it has ended, outlived its job:
 * SIGTERM, logged once with its command line and counted, then SIGKILL
 * after --kill-grace. What it started follows it: its process group when it
 * leads one, and its children, which become orphans in turn.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SWEEP_IDLE_MS 1000
#define SWEEP_BUSY_MS 200
#define CHILDREN_MAX 512
#define ENVIRON_MAX (128 * 1024)

/* Reads a small /proc file into buf (NUL-terminated); its length or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got + 1 < size && (n = read(fd, buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

/* State, process group and start time of pid from /proc/PID/stat. */
static int proc_stat(pid_t pid, char *state, pid_t *pgrp, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	int ppid, pg;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_proc(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* the command may hold spaces and parentheses: fields follow the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
	                        state, &ppid, &pg, start) != 4)
		return -1;
	*pgrp = pg;
	return 0;
}

/* The job id in pid's environment into id (UTIL_ID_LEN + 1); "" when none or unreadable. */
static void proc_job_id(pid_t pid, char *id)
{
	static const char key[] = "CGIQ_JOB_ID=";
	char path[64], *env = util_xmalloc(ENVIRON_MAX);
	ssize_t n;

	id[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	/* Read with cgiq's effective ids: when programs run under their own
	 * user, those are the programs' (app/privs.c), and only they may read a
	 * program's environment. This thread's file ids alone change. */
	uid_t fsuid = (uid_t)setfsuid(geteuid());
	gid_t fsgid = (gid_t)setfsgid(getegid());
	n = read_proc(path, env, ENVIRON_MAX);
	setfsgid(fsgid);
	setfsuid(fsuid);
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(env + i) + 1) {
		if (strncmp(env + i, key, sizeof(key) - 1) == 0 && strlen(env + i + sizeof(key) - 1) == UTIL_ID_LEN) {
			memcpy(id, env + i + sizeof(key) - 1, UTIL_ID_LEN + 1);
			break;
		}
	}
	free(env);
}

/* Its command line, arguments joined by blanks and escaped for the log. */
static void proc_cmdline(pid_t pid, char *out, size_t size)
{
	char path[64], raw[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = read_proc(path, raw, sizeof(raw));
	if (n <= 0) {
		snprintf(out, size, "?");
		return;
	}
	for (ssize_t i = 0; i < n - 1; i++)
		if (raw[i] == '\0')
			raw[i] = ' ';
	log_escape(out, size, raw, strlen(raw));
}

unsigned long long jobs__boot_ticks(void)
{
	static long hz;
	struct timespec ts;

	if (hz <= 0)
		hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		return 0;
	return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
	       (unsigned long long)ts.tv_nsec / (1000000000ull / (unsigned long long)hz);
}

/* A running job other than ending that started no later than start: the
 * possible owner of a nameless orphan. */
static int older_job_runs(const struct job_engine *e, const struct job *ending, unsigned long long start)
{
	for (const struct job *j = e->running; j; j = j->next)
		if (j != ending && !j->ended && j->start_ticks <= start)
			return 1;
	return 0;
}

static const struct job *running_job(const struct job_engine *e, const char *id)
{
	for (const struct job *j = e->running; j; j = j->next)
		if (!j->ended && strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static int running_pid(const struct job_engine *e, pid_t pid)
{
	for (const struct job *j = e->running; j; j = j->next)
		if (j->pid == pid)
			return 1;
	return 0;
}

static struct jobs__leftover *entry_of(struct job_engine *e, pid_t pid, unsigned long long start)
{
	for (unsigned i = 0; i < e->leftover_count; i++)
		if (e->leftovers[i].pid == pid && e->leftovers[i].start == start)
			return &e->leftovers[i];
	return NULL;
}

/* The process and what it leads. Its own group only: one it merely belongs
 * to may be a running job's. */
static void signal_leftover(const struct jobs__leftover *l, int sig)
{
	if (l->leads_group)
		kill(-l->pid, sig);
	kill(l->pid, sig);
}

/* The children of the loop thread: orphans cgiq adopted. Count, or -1. */
static int adopted(pid_t *out, int max)
{
	char path[64], buf[8192], *p, *end;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	if (read_proc(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; n < max; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 1)
			out[n++] = (pid_t)v;
	}
	return n;
}

/*
 * One pass over the orphans: new ones that outlived their job get SIGTERM
 * (or, with keep_leftovers, are only logged and counted), those past the
 * grace SIGKILL. ending: a job that is ending (its orphans are its own even
 * though it is still on the running list); all: cgiq is stopping, every
 * orphan goes.
 */
static void sweep(struct job_engine *e, const struct job *ending, int all)
{
	pid_t pids[CHILDREN_MAX];
	int n = adopted(pids, CHILDREN_MAX);
	uint64_t now = util_mono_ms();

	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		char state, id[UTIL_ID_LEN + 1], cmd[600];
		pid_t pgrp;
		unsigned long long start;
		struct jobs__leftover *l;
		const struct job *owner;

		if (running_pid(e, pids[i]) || proc_stat(pids[i], &state, &pgrp, &start) < 0 || state == 'Z')
			continue; /* a program itself, gone, or a zombie SIGCHLD reaps */
		l = entry_of(e, pids[i], start);
		if (l != NULL) {
			l->seen = 1;
			if (!l->kept && now - l->term_at_ms >= e->cfg.kill_grace_ms && !l->killed) {
				l->killed = 1;
				signal_leftover(l, SIGKILL);
			}
			continue;
		}
		proc_job_id(pids[i], id);
		owner = id[0] ? running_job(e, id) : NULL;
		if (owner != NULL && owner != ending && !all)
			continue; /* its job goes on */
		if (id[0] == '\0' && !all && older_job_runs(e, ending, start))
			continue; /* nameless, and maybe of a job that goes on */
		if (e->leftover_count == UTIL_ARRAY_LEN(e->leftovers)) {
			kill(pids[i], SIGKILL); /* no room to give it a grace */
			continue;
		}
		l = &e->leftovers[e->leftover_count++];
		memset(l, 0, sizeof(*l));
		l->pid = pids[i];
		l->start = start;
		l->leads_group = pgrp == pids[i];
		l->term_at_ms = now;
		l->seen = 1;
		if (ending != NULL && ending->kill_phase > 0 && pgrp == ending->pid)
			continue; /* its group is being stopped (timeout, cancel): SIGTERM had, SIGKILL due */
		l->kept = e->cfg.keep_leftovers;
		e->metrics.leftovers++;
		if (id[0] == '\0' && ending != NULL && ending->start_ticks <= start)
			memcpy(id, ending->id, sizeof(id)); /* the only candidate */
		memcpy(l->job, id, sizeof(l->job));
		proc_cmdline(pids[i], cmd, sizeof(cmd));
		if (l->kept) {
			log_warnx("job %s: process %d (%s) outlived its job; left running (--leftovers keep)",
			          id[0] ? id : "?", (int)pids[i], cmd);
			continue;
		}
		log_warnx("job %s: process %d (%s) outlived its job%s: SIGTERM, SIGKILL after %llu ms", id[0] ? id : "?",
		          (int)pids[i], cmd, all ? " (cgiq is stopping)" : "", (unsigned long long)e->cfg.kill_grace_ms);
		signal_leftover(l, SIGTERM);
	}
}

/* Entries whose process is gone are dropped; the rest were marked seen by
 * the sweep that preceded this. */
static void forget_gone(struct job_engine *e)
{
	unsigned k = 0;

	for (unsigned i = 0; i < e->leftover_count; i++) {
		if (!e->leftovers[i].seen)
			continue;
		e->leftovers[i].seen = 0;
		e->leftovers[k++] = e->leftovers[i];
	}
	e->leftover_count = k;
}

static void on_sweep(uv_timer_t *t)
{
	struct job_engine *e = t->data;
	uint64_t next;

	sweep(e, NULL, e->closing);
	forget_gone(e);
	next = SWEEP_IDLE_MS;
	for (unsigned i = 0; i < e->leftover_count; i++)
		if (!e->leftovers[i].kept)
			next = SWEEP_BUSY_MS; /* a SIGKILL due, or a death to see */
	uv_timer_start(&e->leftover_timer, on_sweep, next, 0);
}

const char *job_leftover_mechanism(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return "none: PR_SET_CHILD_SUBREAPER failed, only the program's process group is stopped";
	return "child subreaper (PR_SET_CHILD_SUBREAPER); cgroup v2 per job: not used";
}

int jobs__leftovers_open(struct job_engine *e)
{
	e->subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
	if (!e->subreaper)
		log_warn("PR_SET_CHILD_SUBREAPER: processes that leave their job's group cannot be followed");
	else
		log_info("what programs leave behind comes back to cgiq (child subreaper): stopped at their job's "
		         "end%s", e->cfg.keep_leftovers ? " unless --leftovers keep" : "");
	uv_timer_init(e->loop, &e->leftover_timer);
	e->leftover_timer.data = e;
	uv_unref((uv_handle_t *)&e->leftover_timer);
	uv_timer_start(&e->leftover_timer, on_sweep, SWEEP_IDLE_MS, 0);
	return 0;
}

void jobs__leftovers_stop_job(struct job_engine *e, const struct job *j)
{
	if (!e->subreaper)
		return;
	/* The table gives them their SIGKILL after the grace, as the group gets. */
	sweep(e, j, e->closing);
	if (e->leftover_count > 0)
		uv_timer_start(&e->leftover_timer, on_sweep, SWEEP_BUSY_MS, 0);
}

unsigned jobs__leftovers_job_end(struct job_engine *e, struct job *j)
{
	unsigned mine = 0;

	jobs__leftovers_stop_job(e, j);
	for (unsigned i = 0; i < e->leftover_count; i++)
		mine += strcmp(e->leftovers[i].job, j->id) == 0;
	return mine;
}

void jobs__leftovers_recover(const char (*ids)[UTIL_ID_LEN + 1], size_t count)
{
	DIR *d;
	struct dirent *de;
	pid_t self = getpid();

	if (count == 0 || (d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char id[UTIL_ID_LEN + 1], state, cmd[600];
		unsigned long long start;
		pid_t pid, pgrp;
		size_t i;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (pid == self)
			continue;
		proc_job_id(pid, id);
		if (id[0] == '\0')
			continue;
		for (i = 0; i < count && strcmp(ids[i], id) != 0; i++)
			;
		if (i == count || proc_stat(pid, &state, &pgrp, &start) < 0 || state == 'Z')
			continue;
		proc_cmdline(pid, cmd, sizeof(cmd));
		if (pgrp == pid)
			kill(-pid, SIGKILL);
		if (kill(pid, SIGKILL) == 0)
			log_warnx("job %s: killed process %d (%s), left by a previous cgiq", id, (int)pid, cmd);
	}
	closedir(d);
}

void jobs__leftovers_close(struct job_engine *e)
{
	if (e->subreaper) {
		/* Last call: what is left goes now. */
		sweep(e, NULL, 1);
		for (unsigned i = 0; i < e->leftover_count; i++)
			if (!e->leftovers[i].kept)
				signal_leftover(&e->leftovers[i], SIGKILL);
		e->leftover_count = 0;
	}
	uv_close((uv_handle_t *)&e->leftover_timer, NULL);
}
