#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void out_of_memory(size_t n)
{
	log_error("out of memory allocating %zu bytes", n);
	abort();
}

void *util_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *util_xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (p == NULL)
		out_of_memory(count * n);
	return p;
}

void *util_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		out_of_memory(n);
	return q;
}

char *util_xstrdup(const char *s) { return util_xstrndup(s, strlen(s)); }

char *util_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = util_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

int64_t util_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t util_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int util_http_date_parse(const char *s, time_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	static const char days[] = "SunMonTueWedThuFriSat";
	char wd[4], mon[4], tz[4], rest;
	int d, y, h, mi, sec, n = 0;
	const char *m;
	struct tm tm;

	if (s == NULL || strlen(s) != 29 ||
	    sscanf(s, "%3c, %2d %3c %4d %2d:%2d:%2d %3c%n%c", wd, &d, mon, &y, &h, &mi, &sec, tz, &n, &rest) != 8 ||
	    n != 29)
		return -1;
	wd[3] = mon[3] = tz[3] = '\0';
	m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || strstr(days, wd) == NULL || strcmp(tz, "GMT") != 0 || d < 1 ||
	    d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*out = timegm(&tm);
	return 0;
}

/* s into out, cut to out_size - 1 bytes. */
static void copy_out(char *out, size_t out_size, const char *s)
{
	size_t n = strlen(s);

	if (out_size == 0)
		return;
	if (n >= out_size)
		n = out_size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* n in exactly width digits at p (n >= 0, and < 10^width). */
static char *put_digits(char *p, int n, int width)
{
	int i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + n % 10);
		n /= 10;
	}
	return p + width;
}

void util_http_date(time_t t, char *out, size_t out_size)
{
	/* Not strftime's %a/%b: those follow LC_TIME, and RFC 9110 5.6.7 wants
	 * the English names whatever the locale. Formatted by hand: this is
	 * in every answer. */
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char s[32], *p = s;
	struct tm tm;

	gmtime_r(&t, &tm);
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
		copy_out(out, out_size, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	memcpy(p, days[tm.tm_wday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = ' ';
	memcpy(p, months[tm.tm_mon], 3);
	p += 3;
	*p++ = ' ';
	p = put_digits(p, tm.tm_year + 1900, 4);
	*p++ = ' ';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	memcpy(p, " GMT", 5);
	copy_out(out, out_size, s);
}

void util_iso_time(int64_t us, char *out, size_t out_size)
{
	/* The date and time to the second, per thread, made again when the
	 * second changes: every log line starts with it. */
	static __thread time_t base_sec = -1;
	static __thread char base[24];
	time_t t = (time_t)(us / 1000000);
	int ms = (int)((us % 1000000) / 1000);
	char s[32], *p;

	if (t != base_sec) {
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		base_sec = t;
	}
	p = stpcpy(s, base);
	*p++ = '.';
	p = put_digits(p, ms < 0 ? 0 : ms, 3);
	memcpy(p, "Z", 2);
	copy_out(out, out_size, s);
}

void util_random_id(char out[UTIL_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	/* One getrandom(2) per 256 ids: per-thread, never reused. */
	static __thread unsigned char pool[4096];
	static __thread size_t pool_left;
	unsigned char *raw;

	if (pool_left < UTIL_ID_LEN / 2) {
		size_t got = 0;
		while (got < sizeof(pool)) {
			ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				log_error("getrandom failed: %s", strerror(errno));
				abort();
			}
			got += (size_t)r;
		}
		pool_left = sizeof(pool);
	}
	raw = pool + sizeof(pool) - pool_left;
	for (size_t i = 0; i < UTIL_ID_LEN / 2; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	/* Forget the bytes handed out. */
	memset(raw, 0, UTIL_ID_LEN / 2);
	pool_left -= UTIL_ID_LEN / 2;
	out[UTIL_ID_LEN] = '\0';
}

int util_id_valid(const char *s)
{
	size_t i;
	if (s == NULL)
		return 0;
	for (i = 0; i < UTIL_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

int util_job_path_parse(const char *rest, char id[UTIL_ID_LEN + 1], int *is_result)
{
	if (*rest == '/')
		rest++;
	if (strlen(rest) < UTIL_ID_LEN)
		return -1;
	memcpy(id, rest, UTIL_ID_LEN);
	id[UTIL_ID_LEN] = '\0';
	rest += UTIL_ID_LEN;
	*is_result = strcmp(rest, "/result") == 0;
	return util_id_valid(id) && (*is_result || *rest == '\0') ? 0 : -1;
}

int util_mkdirs(const char *path)
{
	char *p;
	int r = 0;

	/* The loop starts at path[1]; an empty path has none. */
	if (path[0] == '\0')
		return -ENOENT;
	p = util_xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char saved = *s;
			*s = '\0';
			if (mkdir(p, 0750) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*s = saved;
			if (saved == '\0')
				break;
		}
	}
	free(p);
	return r;
}

int util_write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}
