/*
 * Unit tests of the FastCGI record codec (src/fcgi/codec.c): the records
 * nginx sends, read whole and a byte at a time; malformed records; the
 * records cgiq writes back, byte for byte.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/fcgi.h"
#include "util/util.h"

#include "fcgi_records.h"

/* What a run of the reader saw, as text: one line per event, stream
 * content gathered per stream. */
struct seen {
	struct buf log, params, body;
	int error;
};

static void seen_init(struct seen *s)
{
	buf_init(&s->log, 1 << 20);
	buf_init(&s->params, 1 << 20);
	buf_init(&s->body, 1 << 20);
	s->error = 0;
}

static void seen_free(struct seen *s)
{
	buf_free(&s->log);
	buf_free(&s->params);
	buf_free(&s->body);
}

static void note(struct seen *s, const struct fcgi_event *ev)
{
	switch (ev->kind) {
	case FCGI_EV_NONE: break;
	case FCGI_EV_BEGIN: buf_printf(&s->log, "begin %u role %u keep %d\n", ev->request_id, ev->role, ev->keep_conn); break;
	case FCGI_EV_ABORT: buf_printf(&s->log, "abort %u\n", ev->request_id); break;
	case FCGI_EV_PARAMS: buf_append(&s->params, ev->data, ev->len); break;
	case FCGI_EV_PARAMS_END: buf_printf(&s->log, "params end %u\n", ev->request_id); break;
	case FCGI_EV_STDIN: buf_append(&s->body, ev->data, ev->len); break;
	case FCGI_EV_STDIN_END: buf_printf(&s->log, "stdin end %u\n", ev->request_id); break;
	case FCGI_EV_GET_VALUES: buf_printf(&s->log, "get values %zu\n", ev->len); break;
	case FCGI_EV_UNKNOWN_TYPE: buf_printf(&s->log, "unknown type %u\n", ev->type); break;
	}
}

/* Feeds data in pieces of step bytes (0: whole). */
static void run(const char *data, size_t len, size_t step, struct seen *s)
{
	struct fcgi_reader r;
	struct fcgi_event ev;

	seen_init(s);
	fcgi_reader_init(&r);
	for (size_t at = 0; at < len;) {
		size_t piece = step == 0 || len - at < step ? len - at : step;
		while (piece > 0) {
			ssize_t n = fcgi_read(&r, data + at, piece, &ev);
			if (n < 0) {
				s->error = (int)n;
				return;
			}
			CU_ASSERT((size_t)n <= piece);
			note(s, &ev);
			if (n == 0 && ev.kind == FCGI_EV_NONE)
				break;
			at += (size_t)n;
			piece -= (size_t)n;
		}
	}
}

/* nginx's request: BEGIN (keep the connection), parameters over two records
 * with padding, their end, a body over two records, its end. */
static void nginx_request(struct buf *b)
{
	static const unsigned char begin[8] = {0, 1, 1, 0, 0, 0, 0, 0};
	struct buf p;

	buf_init(&p, 1 << 20);
	nv(&p, "SCRIPT_FILENAME", "/srv/cgi-bin/report.sh");
	nv(&p, "REQUEST_METHOD", "POST");
	record(b, 1, 1, begin, 8, 0);
	record(b, 4, 1, p.data, 20, 4);
	record(b, 4, 1, p.data + 20, p.len - 20, 7);
	record(b, 4, 1, NULL, 0, 0);
	record(b, 5, 1, "hel", 3, 5);
	record(b, 5, 1, "lo", 2, 0);
	record(b, 5, 1, NULL, 0, 0);
	buf_free(&p);
}

static void test_request_whole_and_cut(void)
{
	struct buf b;
	struct seen whole, cut;
	char **params = NULL;

	buf_init(&b, 1 << 20);
	nginx_request(&b);
	run(b.data, b.len, 0, &whole);
	CU_ASSERT_EQUAL(whole.error, 0);
	CU_ASSERT_STRING_EQUAL(whole.log.data, "begin 1 role 1 keep 1\nparams end 1\nstdin end 1\n");
	CU_ASSERT_EQUAL(whole.body.len, 5);
	CU_ASSERT(memcmp(whole.body.data, "hello", 5) == 0);
	CU_ASSERT_EQUAL_FATAL(fcgi_params_decode(whole.params.data, whole.params.len, &params), 0);
	CU_ASSERT_STRING_EQUAL(params[0], "SCRIPT_FILENAME=/srv/cgi-bin/report.sh");
	CU_ASSERT_STRING_EQUAL(params[1], "REQUEST_METHOD=POST");
	CU_ASSERT_PTR_NULL(params[2]);
	fcgi_params_free(params);
	/* a byte at a time, and in pieces of 3 and 9: the same */
	for (size_t step = 1; step <= 9; step += 4) {
		run(b.data, b.len, step, &cut);
		CU_ASSERT_EQUAL(cut.error, 0);
		CU_ASSERT_STRING_EQUAL(cut.log.data, whole.log.data);
		CU_ASSERT(cut.params.len == whole.params.len &&
		          memcmp(cut.params.data, whole.params.data, cut.params.len) == 0);
		CU_ASSERT(cut.body.len == 5 && memcmp(cut.body.data, "hello", 5) == 0);
		seen_free(&cut);
	}
	seen_free(&whole);
	buf_free(&b);
}

static void test_abort_and_management(void)
{
	static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
	struct buf b, q;
	struct seen s;

	buf_init(&b, 1 << 20);
	buf_init(&q, 1 << 20);
	nv(&q, "FCGI_MPXS_CONNS", "");
	record(&b, 9, 0, q.data, q.len, 0);
	record(&b, 20, 0, "xy", 2, 6);
	record(&b, 1, 7, begin, 8, 0);
	record(&b, 2, 7, NULL, 0, 0);
	run(b.data, b.len, 0, &s);
	CU_ASSERT_EQUAL(s.error, 0);
	CU_ASSERT_STRING_EQUAL(s.log.data, "get values 17\nunknown type 20\nbegin 7 role 1 keep 0\nabort 7\n");
	seen_free(&s);
	buf_free(&b);
	buf_free(&q);
}

/* Records no web server may send: refused, and the reader stays refusing. */
static void test_malformed(void)
{
	static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
	static const unsigned char v2[8] = {2, 1, 0, 1, 0, 8, 0, 0};
	struct buf b;
	struct seen s;
	struct fcgi_reader r;
	struct fcgi_event ev;
	char big[1100];

	/* version 2 */
	run((const char *)v2, 8, 0, &s);
	CU_ASSERT_EQUAL(s.error, -EPROTO);
	seen_free(&s);
	/* a BEGIN body of 7 bytes */
	buf_init(&b, 1 << 20);
	record(&b, 1, 1, begin, 7, 0);
	run(b.data, b.len, 0, &s);
	CU_ASSERT_EQUAL(s.error, -EPROTO);
	seen_free(&s);
	/* a request record with id 0; an application's record (STDOUT) */
	buf_reset(&b);
	record(&b, 5, 0, "x", 1, 0);
	run(b.data, b.len, 0, &s);
	CU_ASSERT_EQUAL(s.error, -EPROTO);
	seen_free(&s);
	buf_reset(&b);
	record(&b, 6, 1, "x", 1, 0);
	run(b.data, b.len, 0, &s);
	CU_ASSERT_EQUAL(s.error, -EPROTO);
	seen_free(&s);
	/* a management record of 1,100 bytes */
	memset(big, 'a', sizeof(big));
	buf_reset(&b);
	record(&b, 9, 0, big, sizeof(big), 0);
	run(b.data, b.len, 0, &s);
	CU_ASSERT_EQUAL(s.error, -EPROTO);
	seen_free(&s);
	/* sticky */
	fcgi_reader_init(&r);
	CU_ASSERT_EQUAL(fcgi_read(&r, (const char *)v2, 8, &ev), -EPROTO);
	buf_reset(&b);
	record(&b, 1, 1, begin, 8, 0);
	CU_ASSERT_EQUAL(fcgi_read(&r, b.data, b.len, &ev), -EPROTO);
	buf_free(&b);
}

static void test_name_value(void)
{
	struct buf b;
	char **params = NULL, value[300];
	struct fcgi_nv pair;
	size_t pos = 0;

	buf_init(&b, 1 << 20);
	memset(value, 'v', 299);
	value[299] = '\0';
	nv(&b, "HTTP_X_LONG", value); /* a 4-byte value length */
	nv(&b, "EMPTY", "");
	CU_ASSERT_EQUAL(fcgi_nv_next(b.data, b.len, &pos, &pair), 1);
	CU_ASSERT(pair.name_len == 11 && pair.value_len == 299);
	CU_ASSERT_EQUAL(fcgi_nv_next(b.data, b.len, &pos, &pair), 1);
	CU_ASSERT(pair.name_len == 5 && pair.value_len == 0);
	CU_ASSERT_EQUAL(fcgi_nv_next(b.data, b.len, &pos, &pair), 0);
	CU_ASSERT_EQUAL_FATAL(fcgi_params_decode(b.data, b.len, &params), 0);
	CU_ASSERT_EQUAL(strlen(params[0]), 11 + 1 + 299);
	CU_ASSERT_STRING_EQUAL(params[1], "EMPTY=");
	fcgi_params_free(params);
	/* cut inside a pair */
	pos = 0;
	CU_ASSERT_EQUAL(fcgi_nv_next(b.data, 20, &pos, &pair), -EBADMSG);
	CU_ASSERT_EQUAL(fcgi_params_decode(b.data, 20, &params), -EBADMSG);
	/* names that cannot be environment strings */
	buf_reset(&b);
	nv(&b, "A=B", "c");
	CU_ASSERT_EQUAL(fcgi_params_decode(b.data, b.len, &params), -EBADMSG);
	buf_reset(&b);
	nv(&b, "", "c");
	CU_ASSERT_EQUAL(fcgi_params_decode(b.data, b.len, &params), -EBADMSG);
	buf_free(&b);
}

/* A pair's extent from its lengths alone, while the stream arrives. */
static void test_nv_extent(void)
{
	static const unsigned char s1[] = {4, 3, 'P', 'A', 'T', 'H', '/', 'b', 'i'};
	static const unsigned char s4[] = {0x80, 0, 0, 4, 0x80, 0x0f, 0x42, 0x40};
	const char *d1 = (const char *)s1, *d4 = (const char *)s4;
	uint64_t end = 0;

	CU_ASSERT_EQUAL(fcgi_nv_extent(d1, 0, 0, &end), 0);
	CU_ASSERT_EQUAL(fcgi_nv_extent(d1, 1, 0, &end), 0);   /* the value's length not yet */
	CU_ASSERT_EQUAL(fcgi_nv_extent(d1, 2, 0, &end), 1);
	CU_ASSERT_EQUAL(end, 9);                               /* 2 + 4 + 3, beyond the 2 bytes */
	CU_ASSERT_EQUAL(fcgi_nv_extent(d1, sizeof(s1), 9, &end), 0);
	CU_ASSERT_EQUAL(fcgi_nv_extent(d4, 7, 0, &end), 0);   /* a four-byte length cut */
	CU_ASSERT_EQUAL(fcgi_nv_extent(d4, 8, 0, &end), 1);
	CU_ASSERT_EQUAL(end, 8 + 4 + 1000000);
}

static void test_writers(void)
{
	static const unsigned char end[] = {1, 6, 0, 3, 0, 0, 0, 0,                  /* empty STDOUT */
	                                    1, 3, 0, 3, 0, 8, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0}; /* END 258 */
	static const unsigned char mpx[] = {1, 3, 0, 4, 0, 8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
	static const unsigned char unknown[] = {1, 11, 0, 0, 0, 8, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0};
	struct buf b, q;
	char *data = malloc(70000);

	buf_init(&b, 1 << 20);
	fcgi_put_end(&b, 3, 258, 0);
	CU_ASSERT(b.len == sizeof(end) && memcmp(b.data, end, sizeof(end)) == 0);
	buf_reset(&b);
	fcgi_put_end(&b, 4, 0, 1); /* FCGI_CANT_MPX_CONN: no output stream to end */
	CU_ASSERT(b.len == sizeof(mpx) && memcmp(b.data, mpx, sizeof(mpx)) == 0);
	buf_reset(&b);
	fcgi_put_unknown_type(&b, 20);
	CU_ASSERT(b.len == sizeof(unknown) && memcmp(b.data, unknown, sizeof(unknown)) == 0);
	/* 70,000 bytes: a full record of 65,535 and one of 4,465 */
	buf_reset(&b);
	memset(data, 'd', 70000);
	fcgi_put_stdout(&b, 1, data, 70000);
	CU_ASSERT_EQUAL_FATAL(b.len, 8 + 65535 + 8 + 4465);
	CU_ASSERT(memcmp(b.data, "\x01\x06\x00\x01\xff\xff\x00\x00", 8) == 0);
	CU_ASSERT(memcmp(b.data + 8 + 65535, "\x01\x06\x00\x01\x11\x71\x00\x00", 8) == 0);
	/* GET_VALUES: what is known is answered, the rest left out */
	buf_init(&q, 1 << 20);
	nv(&q, "FCGI_MAX_CONNS", "");
	nv(&q, "FCGI_MPXS_CONNS", "");
	nv(&q, "OTHER", "");
	buf_reset(&b);
	fcgi_put_values(&b, q.data, q.len, 1000);
	CU_ASSERT_EQUAL_FATAL(b.len, 8 + 2 + 14 + 4 + 2 + 15 + 1);
	CU_ASSERT(memcmp(b.data, "\x01\x0a\x00\x00\x00\x26\x00\x00", 8) == 0);
	CU_ASSERT(memcmp(b.data + 8, "\x0e\x04" "FCGI_MAX_CONNS1000\x0f\x01" "FCGI_MPXS_CONNS0", 38) == 0);
	buf_free(&q);
	buf_free(&b);
	free(data);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("codec", NULL, NULL);
	CU_add_test(s, "a request, whole and cut", test_request_whole_and_cut);
	CU_add_test(s, "abort and management records", test_abort_and_management);
	CU_add_test(s, "malformed records", test_malformed);
	CU_add_test(s, "name-value pairs", test_name_value);
	CU_add_test(s, "a pair's extent from its lengths", test_nv_extent);
	CU_add_test(s, "records written", test_writers);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
