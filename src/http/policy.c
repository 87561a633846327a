/*
 * Prefer (RFC 7240, parsed in util) and the 102 Processing policy. Pure: no
 * I/O, no state.
 */
#include "http/http.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* ---------------- Prefer ---------------- */

void http_prefer_parse(const struct http_request *r, struct http_prefer *out)
{
	struct util_prefer p = {0, 0, -1};
	const char *v;
	int seen_wait = 0;

	for (size_t i = 0; r && (v = http_request_header(r, "Prefer", i)) != NULL; i++)
		util_prefer_parse(v, &p, &seen_wait);
	out->respond_async = p.respond_async;
	out->processing = p.processing;
	out->wait_s = p.wait_s;
}

/* ---------------- 102 policy ---------------- */

int http_processing_mode_parse(const char *s, enum http_processing_mode *out)
{
	static const struct {
		const char *name;
		enum http_processing_mode mode;
	} modes[] = {
		{ "auto", HTTP_PROCESSING_AUTO },
		{ "always", HTTP_PROCESSING_ALWAYS },
		{ "opt-in", HTTP_PROCESSING_OPT_IN },
		{ "never", HTTP_PROCESSING_NEVER },
	};

	if (s == NULL)
		return -EINVAL;
	for (size_t i = 0; i < UTIL_ARRAY_LEN(modes); i++) {
		if (strcmp(s, modes[i].name) == 0) {
			*out = modes[i].mode;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Clients and proxies known to mishandle unsolicited 102 (DESIGN.md, "HTTP rules"):
 *  - Python http.client / urllib / requests and Java HttpURLConnection (up to
 *    17) take a 102 as the final response; on a reused connection the next
 *    request then reads this one's answer. They get none.
 *  - OkHttp before 5 fails on a second 102: at most 1.
 *  - Java HttpClient (java.net.http) fails on a 9th: at most 8.
 *  - Go's net/http client up to 1.23 fails on a 6th; its User-Agent carries
 *    no Go version, so every Go client gets at most 5.
 *  - Apache mod_proxy_http answers 502 on the 10th: at most 9. It adds
 *    X-Forwarded-Server by default and Via with "Apache" when ProxyVia is on.
 *  - Varnish answers 503 on a 102: none when Via names it or X-Varnish is set.
 *  - A request without User-Agent is most often a script on one of the
 *    libraries above (http.client sends none by default): none.
 * Not listed because they handle 102: HAProxy, curl, wget, Node (http and
 * fetch), Chromium and other browsers, aiohttp, httpx, .NET.
 * nginx proxy_pass breaks on any 102 but leaves no reliable trace (X-Real-IP
 * alone is set by many other setups): put cgiq behind nginx through the
 * FastCGI front (which never sends 102) or run with --processing never.
 */
static const struct http_processing_rule rules[] = {
	{ "User-Agent", HTTP_MATCH_ABSENT, NULL, 0, 0, "no-user-agent",
	  "no User-Agent: usually a script on a library that takes 102 as final" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "python-requests/", 0, 0, "python-requests",
	  "Python requests (http.client) takes 102 as the final response" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "Python-urllib/", 0, 0, "python-urllib",
	  "Python urllib (http.client) takes 102 as the final response" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "Java/", 18, 0, "java-httpurlconnection",
	  "Java HttpURLConnection up to 17 takes 102 as the final response" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "okhttp/", 5, 1, "okhttp-before-5",
	  "OkHttp before 5 fails on a second 102" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "Java-http-client/", 0, 8, "java-httpclient",
	  "Java HttpClient fails on a 9th 102" },
	{ "User-Agent", HTTP_MATCH_PREFIX, "Go-http-client/", 0, 5, "go-http-client",
	  "Go net/http up to 1.23 fails on a 6th 102 (the UA carries no Go version)" },
	{ "Via", HTTP_MATCH_CONTAINS, "varnish", 0, 0, "varnish-via",
	  "Varnish answers 503 on a 102" },
	{ "X-Varnish", HTTP_MATCH_PRESENT, NULL, 0, 0, "varnish",
	  "Varnish answers 503 on a 102" },
	{ "Via", HTTP_MATCH_CONTAINS, "Apache", 0, 9, "apache-via",
	  "Apache mod_proxy_http answers 502 on the 10th 102" },
	{ "X-Forwarded-Server", HTTP_MATCH_PRESENT, NULL, 0, 9, "apache-mod-proxy",
	  "Apache mod_proxy_http (adds X-Forwarded-Server) answers 502 on the 10th 102" },
};

size_t http_processing_table(const struct http_processing_rule **out)
{
	if (out != NULL)
		*out = rules;
	return UTIL_ARRAY_LEN(rules);
}

static int starts_with_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int contains_ci(const char *s, const char *needle)
{
	size_t n = strlen(needle);
	for (; *s; s++)
		if (strncasecmp(s, needle, n) == 0)
			return 1;
	return 0;
}

/* The leading decimal number of s is below limit (no number: assume it is). */
static int version_below(const char *s, unsigned limit)
{
	unsigned long v = 0;

	if (*s < '0' || *s > '9')
		return 1;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v >= limit)
			return 0;
	}
	return 1;
}

static int rule_matches(const struct http_processing_rule *rule, const struct http_request *r)
{
	const char *v;

	if (rule->how == HTTP_MATCH_ABSENT) {
		v = http_request_header(r, rule->header, 0);
		return v == NULL || *v == '\0';
	}
	for (size_t i = 0; (v = http_request_header(r, rule->header, i)) != NULL; i++) {
		switch (rule->how) {
		case HTTP_MATCH_PRESENT:
			return 1;
		case HTTP_MATCH_PREFIX:
			if (starts_with_ci(v, rule->match) &&
			    (rule->version_below == 0 ||
			     version_below(v + strlen(rule->match), rule->version_below)))
				return 1;
			break;
		case HTTP_MATCH_CONTAINS:
			if (contains_ci(v, rule->match))
				return 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Stricter: none beats any cap, a lower cap beats a higher one. */
static int stricter(const struct http_processing_rule *a, const struct http_processing_rule *b)
{
	if (b == NULL)
		return 1;
	if (a->client_max == 0 || b->client_max == 0)
		return a->client_max == 0 && b->client_max != 0;
	return a->client_max < b->client_max;
}

static void decide_send(struct http_processing_decision *out, unsigned max, const char *rule)
{
	out->send = 1;
	out->max_count = max;
	out->rule = rule;
}

void http_processing_decide(enum http_processing_mode mode, unsigned configured_max,
                            const struct http_request *r, const struct http_prefer *prefer,
                            struct http_processing_decision *out)
{
	const struct http_processing_rule *hit = NULL;

	out->send = 0;
	out->max_count = 0;
	out->solicited = prefer != NULL && prefer->processing;
	out->rule = "default";

	/* RFC 9110 15.2: no 1xx to an HTTP/1.0 (or older) client, whatever the mode */
	if (r == NULL || r->http_major < 1 || (r->http_major == 1 && r->http_minor < 1)) {
		out->rule = "http-1.0";
		return;
	}
	switch (mode) {
	case HTTP_PROCESSING_NEVER:
		out->rule = "mode-never";
		return;
	case HTTP_PROCESSING_ALWAYS:
		decide_send(out, configured_max, "mode-always");
		return;
	case HTTP_PROCESSING_OPT_IN:
		if (out->solicited)
			decide_send(out, configured_max, "prefer-processing");
		else
			out->rule = "opt-in";
		return;
	case HTTP_PROCESSING_AUTO:
	default:
		break;
	}

	if (out->solicited) {
		decide_send(out, configured_max, "prefer-processing");
		return;
	}
	for (size_t i = 0; i < UTIL_ARRAY_LEN(rules); i++)
		if (rule_matches(&rules[i], r) && stricter(&rules[i], hit))
			hit = &rules[i];
	if (hit == NULL) {
		decide_send(out, configured_max, "default");
		return;
	}
	out->rule = hit->name;
	if (hit->client_max == 0)
		return;
	decide_send(out, configured_max != 0 && configured_max < hit->client_max ? configured_max
	                                                                         : hit->client_max,
	            hit->name);
}
