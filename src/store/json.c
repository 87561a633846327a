/*
 * One job row as one line of JSON: what `cgiq jobs --json`, `cgiq job --json`
 * and the admin listener's /jobs print, so all three agree.
 */
#include "store.h"

static void json_key(struct buf *b, const char *key)
{
	/* Every object starts with "id", written by store_job_json itself. */
	buf_printf(b, ",\"%s\":", key);
}

static void json_int(struct buf *b, const char *key, int64_t v)
{
	json_key(b, key);
	if (v < 0)
		buf_append_str(b, "null");
	else
		buf_printf(b, "%lld", (long long)v);
}

static void json_time(struct buf *b, const char *key, int64_t us)
{
	char when[32];

	json_key(b, key);
	if (us <= 0) {
		buf_append_str(b, "null");
		return;
	}
	util_iso_time(us, when, sizeof(when));
	util_json_string(b, when);
}

static void json_str(struct buf *b, const char *key, const char *s)
{
	json_key(b, key);
	util_json_string(b, s);
}

void store_job_json(struct buf *b, const struct store_job *j, int with_tail)
{
	buf_append_str(b, "{\"id\":");
	util_json_string(b, j->id);
	json_str(b, "state", store_state_name(j->state));
	json_str(b, "script", j->script);
	json_str(b, "method", j->method);
	json_str(b, "uri", j->uri);
	json_str(b, "peer", j->peer);
	json_str(b, "node", j->node);
	json_int(b, "status", j->http_status);
	json_int(b, "exit_code", j->exit_code);
	json_int(b, "signal", j->term_signal);
	json_time(b, "created_at", j->created_at_us);
	json_time(b, "started_at", j->started_at_us);
	json_time(b, "finished_at", j->finished_at_us);
	json_int(b, "pid", j->pid);
	json_int(b, "bytes_in", j->bytes_in);
	json_int(b, "bytes_out", j->bytes_out);
	json_int(b, "processing_sent", j->processing_sent);
	json_str(b, "reason", j->reason);
	json_int(b, "queue_position", j->queue_position);
	if (with_tail)
		json_str(b, "stderr_tail", j->stderr_tail);
	buf_append_str(b, "}\n");
}
