/*
 * util: value parsing, the capped buffer, escaping for logs and JSON, ids
 * and dates.
 */
#include <CUnit/Basic.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

/* ---- parsing ---- */

static void check_duration(const char *s, uint64_t want)
{
	uint64_t v = 12345;
	int r = util_parse_duration_ms(s, &v);
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_EQUAL(v, want);
	if (r != 0 || v != want)
		fprintf(stderr, "duration \"%s\": r=%d v=%llu\n", s, r, (unsigned long long)v);
}

static void check_duration_bad(const char *s)
{
	uint64_t v = 12345;
	CU_ASSERT_EQUAL(util_parse_duration_ms(s, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 12345);
}

static void test_parse_duration(void)
{
	check_duration("250ms", 250);
	check_duration("2s", 2000);
	check_duration("5m", 300000);
	check_duration("1h", 3600000);
	check_duration("7", 7000);
	check_duration("0", 0);
	check_duration("0ms", 0);
	check_duration("18446744073709551615ms", UINT64_MAX);

	check_duration_bad("");
	check_duration_bad("1x");
	check_duration_bad("-1");
	check_duration_bad("ms");
	check_duration_bad("99999999999999999999h");
	check_duration_bad("18446744073709551616ms");
	check_duration_bad("18446744073709551615s"); /* overflows when scaled */
	check_duration_bad("1 s");
	check_duration_bad(" 1s");
	check_duration_bad("1s ");
	check_duration_bad("1.5s");
	check_duration_bad("1S");
	check_duration_bad("1msx");
	check_duration_bad("+1");
	CU_ASSERT_EQUAL(util_parse_duration_ms(NULL, &(uint64_t){0}), -EINVAL);
}

static void check_size(const char *s, uint64_t want)
{
	uint64_t v = 12345;
	CU_ASSERT_EQUAL(util_parse_size(s, &v), 0);
	CU_ASSERT_EQUAL(v, want);
}

static void check_size_bad(const char *s)
{
	uint64_t v = 12345;
	CU_ASSERT_EQUAL(util_parse_size(s, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 12345);
}

static void test_parse_size(void)
{
	check_size("0", 0);
	check_size("512", 512);
	check_size("64k", 65536);
	check_size("64K", 65536);
	check_size("10M", 10485760);
	check_size("10m", 10485760);
	check_size("1G", 1073741824);
	check_size("2kB", 2048);
	check_size("2KiB", 2048);
	check_size("3MB", 3145728);
	check_size("17179869183G", 17179869183ull * 1073741824ull);
	check_size("18446744073709551615", UINT64_MAX);

	check_size_bad("");
	check_size_bad("k");
	check_size_bad("-1");
	check_size_bad("1T");
	check_size_bad("1.5k");
	check_size_bad("1kk");
	check_size_bad("1kb");
	check_size_bad("1B");
	check_size_bad("1 k");
	check_size_bad("17179869184G"); /* 2^64 */
	check_size_bad("18446744073709551616");
}

static void test_byte_range(void)
{
	uint64_t off = 99, len = 99;

	CU_ASSERT_EQUAL(util_byte_range("bytes=0-4", 14, &off, &len), 206);
	CU_ASSERT(off == 0 && len == 5);
	CU_ASSERT_EQUAL(util_byte_range("bytes=7-", 14, &off, &len), 206);
	CU_ASSERT(off == 7 && len == 7);
	CU_ASSERT_EQUAL(util_byte_range("bytes=-3", 14, &off, &len), 206);
	CU_ASSERT(off == 11 && len == 3);
	CU_ASSERT_EQUAL(util_byte_range("bytes=-100", 14, &off, &len), 206);
	CU_ASSERT(off == 0 && len == 14);
	CU_ASSERT_EQUAL(util_byte_range("bytes=10-200", 14, &off, &len), 206);
	CU_ASSERT(off == 10 && len == 4);
	CU_ASSERT_EQUAL(util_byte_range("bytes=14-", 14, &off, &len), 416);
	CU_ASSERT_EQUAL(util_byte_range("bytes=-0", 14, &off, &len), 416);
	CU_ASSERT_EQUAL(util_byte_range("bytes=-1", 0, &off, &len), 416);
	/* ignored: other units, several ranges, malformed (RFC 9110 14.2) */
	CU_ASSERT_EQUAL(util_byte_range("items=0-1", 14, &off, &len), 200);
	CU_ASSERT_EQUAL(util_byte_range("bytes=0-1,3-4", 14, &off, &len), 200);
	CU_ASSERT_EQUAL(util_byte_range("bytes=5-2", 14, &off, &len), 200);
	CU_ASSERT_EQUAL(util_byte_range("bytes=x-2", 14, &off, &len), 200);
	CU_ASSERT_EQUAL(util_byte_range("bytes=1-2x", 14, &off, &len), 200);
}

static void test_job_path_parse(void)
{
	char id[UTIL_ID_LEN + 1];
	int res = -1;
	const char *ok = "0123456789abcdef0123456789abcdef";
	char buf[128];

	snprintf(buf, sizeof(buf), "/%s", ok);
	CU_ASSERT_EQUAL(util_job_path_parse(buf, id, &res), 0);
	CU_ASSERT_STRING_EQUAL(id, ok);
	CU_ASSERT_EQUAL(res, 0);
	snprintf(buf, sizeof(buf), "/%s/result", ok);
	CU_ASSERT_EQUAL(util_job_path_parse(buf, id, &res), 0);
	CU_ASSERT_EQUAL(res, 1);
	CU_ASSERT_EQUAL(util_job_path_parse(ok, id, &res), 0); /* "/" optional */
	snprintf(buf, sizeof(buf), "/%s/results", ok);
	CU_ASSERT_EQUAL(util_job_path_parse(buf, id, &res), -1);
	snprintf(buf, sizeof(buf), "/%s/", ok);
	CU_ASSERT_EQUAL(util_job_path_parse(buf, id, &res), -1);
	CU_ASSERT_EQUAL(util_job_path_parse("/0123456789ABCDEF0123456789abcdef", id, &res), -1);
	CU_ASSERT_EQUAL(util_job_path_parse("/short", id, &res), -1);
	CU_ASSERT_EQUAL(util_job_path_parse("", id, &res), -1);
}

static void test_prefer_value(void)
{
	struct util_prefer p = {0, 0, -1};
	int seen = 0;

	util_prefer_parse("respond-async, wait=10", &p, &seen);
	CU_ASSERT(p.respond_async == 1 && p.processing == 0 && p.wait_s == 10);
	util_prefer_parse("wait=3, processing", &p, &seen);
	CU_ASSERT(p.processing == 1 && p.wait_s == 10); /* only the first wait counts */
	p = (struct util_prefer){0, 0, -1};
	seen = 0;
	util_prefer_parse("respond-asyncx, \"respond-async\", wait=", &p, &seen);
	CU_ASSERT(p.respond_async == 0 && p.wait_s == -1);
}

static void test_parse_uint(void)
{
	uint64_t v = 0;

	CU_ASSERT_EQUAL(util_parse_uint("0", 10, &v), 0);
	CU_ASSERT_EQUAL(v, 0);
	CU_ASSERT_EQUAL(util_parse_uint("42", 100, &v), 0);
	CU_ASSERT_EQUAL(v, 42);
	CU_ASSERT_EQUAL(util_parse_uint("007", 100, &v), 0);
	CU_ASSERT_EQUAL(v, 7);
	CU_ASSERT_EQUAL(util_parse_uint("10", 10, &v), 0);
	CU_ASSERT_EQUAL(v, 10);
	/* The largest value is accepted, one more is overflow. */
	CU_ASSERT_EQUAL(util_parse_uint("18446744073709551615", UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX);
	CU_ASSERT_EQUAL(util_parse_uint("18446744073709551609", UINT64_MAX, &v), 0);
	CU_ASSERT_EQUAL(v, UINT64_MAX - 6);

	v = 99;
	CU_ASSERT_EQUAL(util_parse_uint("18446744073709551616", UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("99999999999999999999", UINT64_MAX, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("11", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint(NULL, 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("-1", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("+1", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint(" 1", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("1 ", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(util_parse_uint("0x1", 10, &v), -EINVAL);
	CU_ASSERT_EQUAL(v, 99);
}

/* ---- buf ---- */

static void test_buf_append(void)
{
	struct buf b;

	buf_init(&b, 1024);
	CU_ASSERT_PTR_NULL(b.data);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_EQUAL(buf_append(&b, "hello", 5), 0);
	CU_ASSERT_EQUAL(buf_append_str(&b, ", world"), 0);
	CU_ASSERT_EQUAL(b.len, 12);
	CU_ASSERT_STRING_EQUAL(b.data, "hello, world");
	/* Binary data, and growth past the first allocation. */
	char big[300];
	memset(big, 'x', sizeof(big));
	big[10] = '\0';
	CU_ASSERT_EQUAL(buf_append(&b, big, sizeof(big)), 0);
	CU_ASSERT_EQUAL(b.len, 312);
	CU_ASSERT_EQUAL(b.data[12 + 10], '\0');
	CU_ASSERT_EQUAL(b.data[12 + 299], 'x');
	CU_ASSERT_EQUAL(b.data[312], '\0');
	CU_ASSERT(b.cap >= 313);
	buf_reset(&b);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_STRING_EQUAL(b.data, "");
	buf_free(&b);
	CU_ASSERT_PTR_NULL(b.data);
	buf_free(&b);

	/* An empty append still leaves a NUL-terminated string. */
	buf_init(&b, 16);
	CU_ASSERT_EQUAL(buf_append(&b, "", 0), 0);
	CU_ASSERT_PTR_NOT_NULL(b.data);
	CU_ASSERT_STRING_EQUAL(b.data, "");
	buf_free(&b);
}

static void test_buf_cap(void)
{
	struct buf b;
	char *data;
	size_t cap;

	buf_init(&b, 10);
	CU_ASSERT_EQUAL(buf_append(&b, "12345678", 8), 0);
	data = b.data;
	cap = b.cap;
	CU_ASSERT_EQUAL(buf_append(&b, "abc", 3), -ENOBUFS);
	CU_ASSERT_EQUAL(b.len, 8);
	CU_ASSERT_PTR_EQUAL(b.data, data);
	CU_ASSERT_EQUAL(b.cap, cap);
	CU_ASSERT_STRING_EQUAL(b.data, "12345678");
	CU_ASSERT_EQUAL(buf_append_str(&b, "abc"), -ENOBUFS);
	CU_ASSERT_EQUAL(buf_printf(&b, "%s", "abc"), -ENOBUFS);
	CU_ASSERT_EQUAL(b.len, 8);
	CU_ASSERT_STRING_EQUAL(b.data, "12345678");
	/* Exactly up to the cap is fine. */
	CU_ASSERT_EQUAL(buf_append(&b, "ab", 2), 0);
	CU_ASSERT_EQUAL(b.len, 10);
	CU_ASSERT_STRING_EQUAL(b.data, "12345678ab");
	CU_ASSERT_EQUAL(buf_append(&b, "c", 1), -ENOBUFS);
	CU_ASSERT_EQUAL(buf_append(&b, "", 0), 0);
	CU_ASSERT_EQUAL(b.len, 10);
	/* A huge length cannot wrap the check around. */
	CU_ASSERT_EQUAL(buf_append(&b, "x", (size_t)-1), -ENOBUFS);
	CU_ASSERT_EQUAL(b.len, 10);
	buf_free(&b);

	buf_init(&b, 0);
	CU_ASSERT_EQUAL(buf_append(&b, "x", 1), -ENOBUFS);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
}

static void test_buf_consume(void)
{
	struct buf b;

	buf_init(&b, 100);
	CU_ASSERT_EQUAL(buf_append_str(&b, "abcdef"), 0);
	buf_consume(&b, 2);
	CU_ASSERT_EQUAL(b.len, 4);
	CU_ASSERT_STRING_EQUAL(b.data, "cdef");
	buf_consume(&b, 0);
	CU_ASSERT_STRING_EQUAL(b.data, "cdef");
	buf_consume(&b, 4);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_STRING_EQUAL(b.data, "");
	CU_ASSERT_EQUAL(buf_append_str(&b, "gh"), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "gh");
	buf_free(&b);

	/* Consuming nothing from an unallocated buffer is harmless. */
	buf_init(&b, 100);
	buf_consume(&b, 0);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
}

static void test_buf_printf(void)
{
	struct buf b;

	buf_init(&b, 100);
	CU_ASSERT_EQUAL(buf_printf(&b, "%d-%s", 42, "x"), 0);
	CU_ASSERT_EQUAL(buf_printf(&b, "|%05.1f|", 3.14159), 0);
	CU_ASSERT_EQUAL(buf_printf(&b, "%s", ""), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "42-x|003.1|");
	CU_ASSERT_EQUAL(b.len, 11);
	buf_free(&b);

	/* Longer than the first allocation. */
	buf_init(&b, 1000);
	CU_ASSERT_EQUAL(buf_printf(&b, "%200s", "end"), 0);
	CU_ASSERT_EQUAL(b.len, 200);
	CU_ASSERT_STRING_EQUAL(b.data + 197, "end");
	buf_free(&b);
}

static void test_buf_uint(void)
{
	struct buf b;

	buf_init(&b, 100);
	CU_ASSERT_EQUAL(buf_append_uint(&b, 0, 10), 0);
	CU_ASSERT_EQUAL(buf_append_str(&b, " "), 0);
	CU_ASSERT_EQUAL(buf_append_uint(&b, 18446744073709551615ull, 10), 0);
	CU_ASSERT_EQUAL(buf_append_str(&b, " "), 0);
	CU_ASSERT_EQUAL(buf_append_uint(&b, 0xa7217aull, 16), 0);
	CU_ASSERT_EQUAL(buf_append_str(&b, " "), 0);
	CU_ASSERT_EQUAL(buf_append_uint(&b, 18446744073709551615ull, 16), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "0 18446744073709551615 a7217a ffffffffffffffff");
	buf_free(&b);
	/* over the cap: refused, nothing appended */
	buf_init(&b, 4);
	CU_ASSERT(buf_append_uint(&b, 12345, 10) < 0);
	CU_ASSERT_EQUAL(b.len, 0);
	buf_free(&b);
}

/* ---- escaping ---- */

static void test_log_escape(void)
{
	char out[64];
	char small[8];
	char ten[10];

	CU_ASSERT_PTR_EQUAL(log_escape(out, sizeof(out), "plain text", 10), out);
	CU_ASSERT_STRING_EQUAL(out, "plain text");
	log_escape(out, sizeof(out), "a\x01\"\\\n\r\t\x7f\xff" "b", 10);
	CU_ASSERT_STRING_EQUAL(out, "a\\x01\\x22\\x5c\\x0a\\x0d\\x09\\x7f\\xffb");
	/* src_len bounds the read, NUL included. */
	log_escape(out, sizeof(out), "ab\0cd", 5);
	CU_ASSERT_STRING_EQUAL(out, "ab\\x00cd");
	log_escape(out, sizeof(out), "abcdef", 3);
	CU_ASSERT_STRING_EQUAL(out, "abc");
	log_escape(out, sizeof(out), "", 0);
	CU_ASSERT_STRING_EQUAL(out, "");

	/* Truncation keeps room for "..." and the NUL. */
	log_escape(small, sizeof(small), "abcdefghij", 10);
	CU_ASSERT_STRING_EQUAL(small, "abcd...");
	/* What fits exactly is not cut. */
	log_escape(small, sizeof(small), "abcdefg", 7);
	CU_ASSERT_STRING_EQUAL(small, "abcdefg");
	log_escape(small, sizeof(small), "abcdefgh", 8);
	CU_ASSERT_STRING_EQUAL(small, "abcd...");
	/* An escape is never split. */
	log_escape(ten, sizeof(ten), "\x01\x02\x03", 3);
	CU_ASSERT_STRING_EQUAL(ten, "\\x01...");
	log_escape(ten, sizeof(ten), "ab\x01\x02", 4);
	CU_ASSERT_STRING_EQUAL(ten, "ab\\x01...");
	log_escape(ten, sizeof(ten), "abcd\x01", 5);
	CU_ASSERT_STRING_EQUAL(ten, "abcd\\x01");
}

static void check_json(const char *in, const char *want)
{
	struct buf b;

	buf_init(&b, 1024);
	CU_ASSERT_EQUAL(util_json_string(&b, in), 0);
	CU_ASSERT_STRING_EQUAL(b.data, want);
	if (strcmp(b.data, want) != 0)
		fprintf(stderr, "json: got %s want %s\n", b.data, want);
	buf_free(&b);
}

static void test_json_string(void)
{
	struct buf b;

	check_json(NULL, "null");
	check_json("", "\"\"");
	check_json("plain", "\"plain\"");
	check_json("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_json("C:\\dir", "\"C:\\\\dir\"");
	check_json("a\nb\tc\x01\x1f\x7f", "\"a\\u000ab\\u0009c\\u0001\\u001f\\u007f\"");
	check_json("/path/ok", "\"/path/ok\"");
	/* Well-formed UTF-8 passes through. */
	check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* Anything else becomes U+FFFD per byte, so the document stays valid. */
	check_json("a\xff" "b", "\"a\\ufffdb\"");
	check_json("\xc3", "\"\\ufffd\"");                 /* truncated sequence */
	check_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");      /* overlong '/' */
	check_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	check_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */

	/* Appends after what is there. */
	buf_init(&b, 1024);
	CU_ASSERT_EQUAL(buf_append_str(&b, "{\"k\":"), 0);
	CU_ASSERT_EQUAL(util_json_string(&b, "v"), 0);
	CU_ASSERT_STRING_EQUAL(b.data, "{\"k\":\"v\"");
	buf_free(&b);

	/* The cap applies. */
	buf_init(&b, 4);
	CU_ASSERT_EQUAL(util_json_string(&b, "abcdef"), -ENOBUFS);
	buf_free(&b);
}

/* ---- ids and time ---- */

static void test_random_id(void)
{
	char a[UTIL_ID_LEN + 1], b[UTIL_ID_LEN + 1];

	util_random_id(a);
	util_random_id(b);
	CU_ASSERT_EQUAL(strlen(a), 32);
	CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), 32);
	CU_ASSERT_EQUAL(strspn(b, "0123456789abcdef"), 32);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(util_id_valid(a), 1);
}

static void test_id_valid(void)
{
	CU_ASSERT_EQUAL(util_id_valid("0123456789abcdef0123456789abcdef"), 1);
	CU_ASSERT_EQUAL(util_id_valid("00000000000000000000000000000000"), 1);
	CU_ASSERT_EQUAL(util_id_valid("0123456789ABCDEF0123456789abcdef"), 0);
	CU_ASSERT_EQUAL(util_id_valid("0123456789abcdef0123456789abcde"), 0);
	CU_ASSERT_EQUAL(util_id_valid("0123456789abcdef0123456789abcdef0"), 0);
	CU_ASSERT_EQUAL(util_id_valid("0123456789abcdeg0123456789abcdef"), 0);
	CU_ASSERT_EQUAL(util_id_valid("../../../../../../etc/passwd0000"), 0);
	CU_ASSERT_EQUAL(util_id_valid(""), 0);
	CU_ASSERT_EQUAL(util_id_valid(NULL), 0);
}

static void test_http_date(void)
{
	char out[32];

	util_http_date(784111777, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	util_http_date(0, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "Thu, 01 Jan 1970 00:00:00 GMT");
	util_http_date(1709251199, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "Thu, 29 Feb 2024 23:59:59 GMT");
}

/* The IMF-fixdate back; anything else is no date (-1). */
static void test_http_date_parse(void)
{
	static const char *const bad[] = {
		"Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850, obsolete */
		"Sun Nov  6 08:49:37 1994",       /* asctime, obsolete */
		"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Xyz 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 6 Nov 1994 08:49:37 GMT",
		"", "yesterday",
	};
	time_t t = 0;

	CU_ASSERT_EQUAL(util_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	CU_ASSERT_EQUAL(t, 784111777);
	CU_ASSERT_EQUAL(util_http_date_parse("Thu, 29 Feb 2024 23:59:59 GMT", &t), 0);
	CU_ASSERT_EQUAL(t, 1709251199);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (util_http_date_parse(bad[i], &t) != -1)
			fprintf(stderr, "\nread as a date: '%s'\n", bad[i]);
		CU_ASSERT_EQUAL(util_http_date_parse(bad[i], &t), -1);
	}
	CU_ASSERT_EQUAL(util_http_date_parse(NULL, &t), -1);
}

static void test_iso_time(void)
{
	char out[32];

	util_iso_time(784111777123456, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "1994-11-06T08:49:37.123Z");
	util_iso_time(0, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00.000Z");
	util_iso_time(1709251199999999, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "2024-02-29T23:59:59.999Z");
}

static void test_mkdirs_empty(void)
{
	CU_ASSERT_EQUAL(util_mkdirs(""), -ENOENT);
}

int main(void)
{
	CU_pSuite suite;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("util", NULL, NULL);
	if (suite == NULL ||
	    !CU_add_test(suite, "parse duration", test_parse_duration) ||
	    !CU_add_test(suite, "parse size", test_parse_size) ||
	    !CU_add_test(suite, "parse uint", test_parse_uint) ||
	    !CU_add_test(suite, "buf append", test_buf_append) ||
	    !CU_add_test(suite, "buf cap", test_buf_cap) ||
	    !CU_add_test(suite, "buf consume", test_buf_consume) ||
	    !CU_add_test(suite, "buf printf", test_buf_printf) ||
	    !CU_add_test(suite, "buf_append_uint", test_buf_uint) ||
	    !CU_add_test(suite, "log_escape", test_log_escape) ||
	    !CU_add_test(suite, "json string", test_json_string) ||
	    !CU_add_test(suite, "random id", test_random_id) ||
	    !CU_add_test(suite, "id valid", test_id_valid) ||
	    !CU_add_test(suite, "http date", test_http_date) ||
	    !CU_add_test(suite, "http date parsed", test_http_date_parse) ||
	    !CU_add_test(suite, "iso time", test_iso_time) ||
	    !CU_add_test(suite, "mkdirs empty path", test_mkdirs_empty) ||
	    !CU_add_test(suite, "byte range", test_byte_range) ||
	    !CU_add_test(suite, "prefer value", test_prefer_value) ||
	    !CU_add_test(suite, "job API path", test_job_path_parse)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (int)failed;
}
