/*
 * The engine's life: open (recovery of what a previous run left, then the
 * layers from the core up), start (threads, after the daemon's drop of
 * privileges), and the hand-over from the core to async.c when it closes.
 * The one file that knows every layer of the module: engine.c (the core)
 * reaches async.c only through the hooks set here, so no two files of the
 * module depend on each other.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "internal.h"

/* The ids of the jobs a previous run left unfinished (recovery). */
struct recovered_ids {
	char (*ids)[UTIL_ID_LEN + 1];
	size_t count, cap;
};

static void kill_leftover_group(const char *id, int64_t pid, int64_t started_at_us, void *ud)
{
	struct recovered_ids *r = ud;

	(void)started_at_us;
	if (strlen(id) == UTIL_ID_LEN) {
		if (r->count == r->cap) {
			r->cap = r->cap ? 2 * r->cap : 16;
			r->ids = util_xrealloc(r->ids, r->cap * sizeof(*r->ids));
		}
		memcpy(r->ids[r->count++], id, UTIL_ID_LEN + 1);
	}
	/* Children of a cgiq that was killed die with it (PDEATHSIG); what they
	 * forked is still in their process group. A group id stays reserved while
	 * any member lives, so this cannot hit an unrelated group unless all died
	 * and the id was reused since. */
	if (pid > 1 && kill(-(pid_t)pid, SIGKILL) == 0)
		log_warnx("killed process group %lld left by a previous cgiq", (long long)pid);
}

int job_engine_open(uv_loop_t *loop, struct store *store, const struct job_config *cfg,
                    struct job_engine **out)
{
	struct job_engine *e = util_xcalloc(1, sizeof(*e));
	int r;

	e->loop = loop;
	e->cfg = *cfg;
	e->store_is_server = cfg->db_path != NULL && store_place_is_server(cfg->db_path);
	e->rule_running = util_xcalloc(cfg->rule_count + 1, sizeof(*e->rule_running));
	if (e->cfg.max_jobs == 0)
		e->cfg.max_jobs = 1;
	e->devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (e->devnull_fd < 0) {
		r = -errno;
		goto fail;
	}
	jobs__groups_open(e);
	/* --rerun-interrupted or a block's retry-interrupted: promised with a
	 * 202, so at least once; the program tells a second run by CGIQ_JOB_ID.
	 * The row keeps its pid, so store_recover kills what the old run left. */
	r = jobs__retry_interrupted(e, store);
	if (r > 0)
		log_warnx("re-queued %d asynchronous job(s) that were running when the previous cgiq stopped", r);
	{
		struct recovered_ids rec = { NULL, 0, 0 };
		r = store_recover(store, "cgiq stopped while the job was queued or running",
		                  (int64_t)e->cfg.result_ttl_ms * 1000, kill_leftover_group, &rec);
		if (r > 0)
			log_warnx("marked %d job(s) of a previous run interrupted", r);
		/* What those jobs left outside their groups (setsid) went to init
		 * when that cgiq died: found by the CGIQ_JOB_ID they carry. */
		jobs__leftovers_recover(rec.ids, rec.count);
		free(rec.ids);
	}
	r = jobs__async_open(e);
	if (r < 0)
		goto fail;
	r = jobs__engine_core_open(e);
	if (r < 0)
		goto fail;
	e->keep_result = jobs__keep_result;
	e->core_closed = jobs__async_close;
	/* The threads and the old queue are started by job_engine_start, after
	 * the daemon dropped its privileges and before anything new is accepted. */
	*out = e;
	return 0;
fail:
	if (e->devnull_fd >= 0)
		close(e->devnull_fd);
	jobs__groups_close(e);
	free(e->rule_running);
	free(e);
	return r;
}

int job_engine_start(struct job_engine *e, struct store *store)
{
	int r = jobs__recorder_start(store, jobs__on_durable, e, &e->rec);
	if (r == 0)
		r = jobs__spawner_run(e->spawner);
	if (r < 0)
		return r;
	r = jobs__requeue(e, store);
	if (r > 0)
		log_info("re-queued %d asynchronous job(s) accepted by a previous run", r);
	else if (r < 0)
		log_warnx("cannot re-queue the asynchronous jobs of a previous run: %s", strerror(-r));
	return 0;
}
