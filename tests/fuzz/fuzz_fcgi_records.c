/*
 * libFuzzer target: the FastCGI record reader (src/fcgi/codec.c). The
 * payload is a byte stream from a web server, fed once whole and once cut
 * where the fuzzer says (fuzz.h): the events, the streams' bytes and the
 * verdict must be the same however the stream is cut; no event may point
 * outside the bytes given; a parameters stream decodes or is refused, never
 * worse.
 */
#include <errno.h>
#include <string.h>

#include "fcgi/fcgi.h"
#include "fuzz.h"
#include "util/util.h"

#define FUZZ_FCGI_MAX_INPUT (256 * 1024)

struct outcome {
	struct buf log, params, body;
	int error;
};

static void feed(struct fcgi_reader *r, struct outcome *o, const char *data, size_t len)
{
	struct fcgi_event ev;

	while (o->error == 0) {
		ssize_t n = fcgi_read(r, data, len, &ev);
		if (n < 0) {
			FUZZ_CHECK(n == -EPROTO);
			o->error = (int)n;
			return;
		}
		FUZZ_CHECK((size_t)n <= len);
		if (ev.data && (ev.kind == FCGI_EV_PARAMS || ev.kind == FCGI_EV_STDIN))
			FUZZ_CHECK(ev.data >= data && ev.data + ev.len <= data + n);
		switch (ev.kind) {
		case FCGI_EV_NONE: break;
		case FCGI_EV_PARAMS: buf_append(&o->params, ev.data, ev.len); break;
		case FCGI_EV_STDIN: buf_append(&o->body, ev.data, ev.len); break;
		default:
			FUZZ_CHECK(ev.kind == FCGI_EV_GET_VALUES || ev.data == NULL);
			FUZZ_CHECK(ev.len <= sizeof(r->small));
			buf_printf(&o->log, "%d %u %u %d %u %zu;", (int)ev.kind, ev.request_id, ev.role, ev.keep_conn,
			           ev.type, ev.len);
		}
		data += n;
		len -= (size_t)n;
		if (n == 0 && ev.kind == FCGI_EV_NONE)
			return;
		FUZZ_CHECK(n > 0 || ev.kind != FCGI_EV_NONE);
	}
}

static void run(const struct fuzz_split *s, int cut, struct outcome *o)
{
	struct fcgi_reader r;
	size_t at = 0;

	buf_init(&o->log, SIZE_MAX / 2);
	buf_init(&o->params, SIZE_MAX / 2);
	buf_init(&o->body, SIZE_MAX / 2);
	o->error = 0;
	fcgi_reader_init(&r);
	for (size_t i = 0; cut && i < s->ncuts; i++) {
		feed(&r, o, (const char *)s->payload + at, s->cuts[i] - at);
		at = s->cuts[i];
	}
	feed(&r, o, (const char *)s->payload + at, s->len - at);
}

static void outcome_free(struct outcome *o)
{
	buf_free(&o->log);
	buf_free(&o->params);
	buf_free(&o->body);
}

static int same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_split s;
	struct outcome whole, cut;
	char **params = NULL;
	int r;

	if (size > FUZZ_FCGI_MAX_INPUT)
		return 0;
	fuzz_split_init(&s, data, size);
	run(&s, 0, &whole);
	run(&s, 1, &cut);
	FUZZ_CHECK(whole.error == cut.error);
	FUZZ_CHECK(same(&whole.log, &cut.log));
	FUZZ_CHECK(same(&whole.params, &cut.params));
	FUZZ_CHECK(same(&whole.body, &cut.body));
	FUZZ_CHECK(whole.params.len + whole.body.len <= s.len);
	r = fcgi_params_decode(whole.params.data ? whole.params.data : "", whole.params.len, &params);
	FUZZ_CHECK(r == 0 || r == -EBADMSG);
	for (size_t i = 0; r == 0 && params[i]; i++) {
		const char *eq = strchr(params[i], '=');
		FUZZ_CHECK(eq != NULL && eq > params[i]);
	}
	if (r == 0)
		fcgi_params_free(params);
	outcome_free(&whole);
	outcome_free(&cut);
	return 0;
}
