#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

int util_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Reads leading digits into *v and returns the suffix, or NULL on junk. */
static const char *parse_number(const char *s, uint64_t *v)
{
	uint64_t n = 0;
	const char *p = s;

	if (s == NULL || !isdigit((unsigned char)*s))
		return NULL;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return NULL;
		n = n * 10 + d;
	}
	*v = n;
	return p;
}

static int scale(uint64_t v, uint64_t mul, uint64_t *out)
{
	if (mul != 0 && v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int util_parse_duration_ms(const char *s, uint64_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	uint64_t v;
	const char *rest = parse_number(s, &v);

	if (rest == NULL)
		return -EINVAL;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(units); i++)
		if (strcmp(rest, units[i].suffix) == 0)
			return scale(v, units[i].ms, out_ms);
	return -EINVAL;
}

int util_parse_size(const char *s, uint64_t *out_bytes)
{
	uint64_t v, mul;
	const char *rest = parse_number(s, &v);

	if (rest == NULL)
		return -EINVAL;
	switch (*rest) {
	case '\0': mul = 1; break;
	case 'k': case 'K': mul = 1024; break;
	case 'm': case 'M': mul = 1024 * 1024; break;
	case 'g': case 'G': mul = 1024ull * 1024 * 1024; break;
	default: return -EINVAL;
	}
	if (*rest != '\0' && rest[1] != '\0' && strcmp(rest + 1, "B") != 0 && strcmp(rest + 1, "iB") != 0)
		return -EINVAL;
	return scale(v, mul, out_bytes);
}
