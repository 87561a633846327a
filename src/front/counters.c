/*
 * The fronts' counters: what each front answered and refused, and how
 * clients misread 102s, named as /metrics labels them.
 */
#include "front.h"

static const char *const refusal_names[FRONT_REFUSAL_COUNT] = {
	[FRONT_REFUSED_QUEUE_FULL] = "queue_full",
	[FRONT_REFUSED_MAX_CONNECTIONS] = "max_connections",
	[FRONT_REFUSED_BAD_REQUEST] = "bad_request",
	[FRONT_REFUSED_TIMEOUT] = "timeout",
	[FRONT_REFUSED_TOO_LARGE] = "too_large",
	[FRONT_REFUSED_NOT_IMPLEMENTED] = "not_implemented",
	[FRONT_REFUSED_FORBIDDEN] = "forbidden",
	[FRONT_REFUSED_NOT_FOUND] = "not_found",
	[FRONT_REFUSED_STORE_DOWN] = "store_unavailable",
	[FRONT_REFUSED_OTHER] = "other",
};

const char *front_refusal_name(enum front_refusal r)
{
	return (unsigned)r < FRONT_REFUSAL_COUNT ? refusal_names[r] : "other";
}

enum front_refusal front_refusal_of_status(int status)
{
	switch (status) {
	case 400: return FRONT_REFUSED_BAD_REQUEST;
	case 403: return FRONT_REFUSED_FORBIDDEN;
	case 404: return FRONT_REFUSED_NOT_FOUND;
	case 408: return FRONT_REFUSED_TIMEOUT;
	case 413: case 414: case 431: return FRONT_REFUSED_TOO_LARGE;
	case 501: case 505: return FRONT_REFUSED_NOT_IMPLEMENTED;
	default: return FRONT_REFUSED_OTHER;
	}
}

void front_count_response(struct front_counters *c, int status)
{
	if (c != NULL && status >= 100 && status < 600)
		atomic_fetch_add_explicit(&c->responses[status / 100], 1, memory_order_relaxed);
}

void front_count_refusal(struct front_counters *c, enum front_refusal r)
{
	if (c != NULL && (unsigned)r < FRONT_REFUSAL_COUNT)
		atomic_fetch_add_explicit(&c->refused[r], 1, memory_order_relaxed);
}

void front_count_static(struct front_counters *c)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->static_files, 1, memory_order_relaxed);
}

void front_count_stream(struct front_counters *c, int cut)
{
	if (c != NULL)
		atomic_fetch_add_explicit(cut ? &c->streams_cut : &c->streamed, 1, memory_order_relaxed);
}

void front_count_connection(struct front_counters *c, int delta)
{
	if (c == NULL)
		return;
	if (delta > 0)
		atomic_fetch_add_explicit(&c->connections_total, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->connections_open, delta, memory_order_relaxed);
}

void front_count_misread(struct front_counters *c, enum front_misread m)
{
	if (c != NULL && (unsigned)m < FRONT_MISREAD_COUNT)
		atomic_fetch_add_explicit(&c->misread[m], 1, memory_order_relaxed);
}

const char *front_misread_name(enum front_misread m)
{
	switch (m) {
	case FRONT_MISREAD_EARLY_REQUEST: return "early-request";
	case FRONT_MISREAD_CLOSED_AFTER_102: return "closed-after-102";
	default: return "unknown";
	}
}
