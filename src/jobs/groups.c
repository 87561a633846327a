/*
 * The process groups of running programs, in a small file in the spool that
 * is mapped shared: a slot per running job holds its pid (= its process
 * group), set when the program starts and cleared when its job ends. A write
 * to the mapping is in the page cache at once, so it survives a kill -9 of
 * cgiq, while the job's row reaches the database only with the recorder's
 * next batch, a few milliseconds later.
 *
 * At the next start every group still named in the file is killed before
 * recovery: a program that cgiq started just before it died (its row not yet
 * written with the pid) cannot leave grandchildren running. Programs
 * themselves die with cgiq (PDEATHSIG); what they started stays in their
 * group. A group id stays reserved while any member lives, so the kill
 * cannot reach an unrelated group unless all of ours died and the id was
 * reused since (the same bound as the recovery from the database).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define GROUPS_FILE ".cgiq-groups"

/* Kills the groups a previous run left in the file at fd. Returns how many. */
static int groups_kill_left(int fd)
{
	int32_t pids[1024];
	ssize_t n;
	int killed = 0;

	while ((n = read(fd, pids, sizeof(pids))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(pids[0]); i++) {
			if (pids[i] > 1 && kill(-(pid_t)pids[i], SIGKILL) == 0) {
				log_warnx("killed process group %d of a program a previous cgiq started", (int)pids[i]);
				killed++;
			}
		}
	}
	return killed;
}

int jobs__groups_open(struct job_engine *e)
{
	char path[4096];
	size_t size = (size_t)e->cfg.max_jobs * sizeof(int32_t);
	void *map;
	int fd;

	e->group_slots = NULL;
	e->group_slot_count = 0;
	if (e->cfg.spool_dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/" GROUPS_FILE, e->cfg.spool_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_warn("%s: cannot track the programs' process groups there", path);
		return 0; /* the database's record still covers most of it */
	}
	groups_kill_left(fd);
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0) {
		log_warn("%s: cannot size it", path);
		close(fd);
		return 0;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); /* the mapping keeps the file */
	if (map == MAP_FAILED) {
		log_warn("%s: cannot map it", path);
		return 0;
	}
	e->group_slots = map;
	e->group_slot_count = e->cfg.max_jobs;
	return 0;
}

void jobs__groups_add(struct job_engine *e, struct job *j)
{
	j->group_slot = -1;
	for (unsigned i = 0; i < e->group_slot_count; i++) {
		if (e->group_slots[i] == 0) {
			e->group_slots[i] = (int32_t)j->pid;
			j->group_slot = (int)i;
			return;
		}
	}
}

void jobs__groups_remove(struct job_engine *e, struct job *j)
{
	if (j->group_slot >= 0 && (unsigned)j->group_slot < e->group_slot_count)
		e->group_slots[j->group_slot] = 0;
	j->group_slot = -1;
}

void jobs__groups_close(struct job_engine *e)
{
	if (e->group_slots != NULL)
		munmap(e->group_slots, e->group_slot_count * sizeof(int32_t));
	e->group_slots = NULL;
	e->group_slot_count = 0;
}
