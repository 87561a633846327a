/*
 * A job's row as a struct, whatever the backend: the state names (the exact
 * strings databases hold) and a struct store_job's life.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Indexed by enum store_state; these exact strings are in existing databases. */
static const char *const store_state_names[STORE_STATE_COUNT] = {
	"queued", "running", "succeeded", "failed", "timed_out", "cancelled", "interrupted",
};

const char *store_state_name(enum store_state s)
{
	if ((unsigned)s >= STORE_STATE_COUNT)
		return "unknown";
	return store_state_names[s];
}

int store_state_parse(const char *name, enum store_state *out)
{
	if (name == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < STORE_STATE_COUNT; i++) {
		if (strcmp(name, store_state_names[i]) == 0) {
			*out = (enum store_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

void store_job_init(struct store_job *j)
{
	memset(j, 0, sizeof(*j));
	j->state = STORE_QUEUED;
	j->pid = -1;
	j->exit_code = -1;
	j->term_signal = -1;
	j->http_status = -1;
	j->bytes_in = -1;
	j->bytes_out = -1;
	j->processing_sent = -1;
	j->progress_done = -1;
	j->progress_total = -1;
	j->queue_position = -1;
}

void store_job_clear(struct store_job *j)
{
	free(j->script);
	free(j->method);
	free(j->uri);
	free(j->peer);
	free(j->stderr_tail);
	free(j->reason);
	free(j->env);
	free(j->cwd);
	free(j->body_path);
	free(j->result_path);
	free(j->result_head);
	free(j->progress_text);
	free(j->node);
	j->script = j->method = j->uri = j->peer = j->stderr_tail = j->reason = NULL;
	j->env = j->cwd = j->body_path = j->result_path = j->result_head = j->progress_text = NULL;
	j->node = NULL;
}

