/*
 * Prefer (RFC 7240, parsed in util) and the 102 Processing policy: who gets
 * unsolicited 102s, relays declared by the operator. Pure: no I/O, no state.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

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
 * Who gets unsolicited 102s under auto: an allow-list. A wrong answer is
 * worse than no interim response, and an unknown client is not a safe
 * client, so only the clients below (and the operator's own rows, which are
 * looked at first) get them. Every row was checked against the version
 * named, by the test named; the README's table is this one.
 *
 * Known to break, hence absent (DESIGN.md, "HTTP rules"): Python
 * http.client / urllib / requests / urllib3 take a 102 as the final
 * response; Java HttpURLConnection up to 17 likewise; OkHttp before 5 fails
 * on a second; Node's http handles them but sends no User-Agent, so it
 * cannot be told from a script on a library that does not. Not verified
 * here, hence absent: Go net/http (fails on a 6th up to 1.23), .NET
 * HttpClient, Node 18's fetch ("undici"), Firefox and Safari. An operator
 * who has checked one adds a row (--processing-client).
 */
static const struct http_processing_client clients[] = {
	{ "curl/*", NULL, HTTP_PROCESSING_UNLIMITED, "curl", "curl 7.88.1 (Debian 12)",
	  "integration_clients: default policy" },
	{ "Wget/*", NULL, HTTP_PROCESSING_UNLIMITED, "wget", "GNU Wget 1.21.3 (Debian 12)",
	  "integration_clients: default policy" },
	{ "node", NULL, HTTP_PROCESSING_UNLIMITED, "node-fetch", "Node.js 20 fetch (undici)",
	  "integration_clients: default policy" },
	{ "python-httpx/*", NULL, HTTP_PROCESSING_UNLIMITED, "httpx", "httpx 0.23.3 (Debian 12)",
	  "integration_clients: default policy" },
	{ "Python/* aiohttp/*", NULL, HTTP_PROCESSING_UNLIMITED, "aiohttp", "aiohttp 3.8.4 (Debian 12)",
	  "integration_clients: default policy" },
	{ "Java-http-client/*", NULL, 8, "java-httpclient", "java.net.http.HttpClient of OpenJDK 17.0.15",
	  "integration_clients: Java HttpClient (fails on a 9th 102)" },
	/* Sec-Fetch-Mode: sent by the browser on every request, and rarely by a
	 * script that borrows a browser's User-Agent. The pattern also matches
	 * browsers built on Chromium, which share its HTTP stack. */
	{ "Mozilla/5.0 *Chrome/*", "Sec-Fetch-Mode", HTTP_PROCESSING_UNLIMITED, "chromium",
	  "headless Chromium 156 (Debian 12)", "integration_clients: headless Chromium" },
};

/* Headers a proxy adds: a request carrying one came through a proxy, which
 * (nginx proxy_pass, Varnish, Apache mod_proxy, ...) may take a 102 as the
 * final response whatever the end client handles. */
static const char *const proxy_markers[] = {
	"Via", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Real-IP",
	"X-Varnish", "CDN-Loop",
};

size_t http_processing_clients(const struct http_processing_client **out)
{
	if (out != NULL)
		*out = clients;
	return UTIL_ARRAY_LEN(clients);
}

int http_processing_rule_checked(const char *rule)
{
	for (size_t i = 0; rule != NULL && i < UTIL_ARRAY_LEN(clients); i++)
		if (strcmp(rule, clients[i].name) == 0)
			return 1;
	return 0;
}

size_t http_processing_proxy_markers(const char *const **out)
{
	if (out != NULL)
		*out = proxy_markers;
	return UTIL_ARRAY_LEN(proxy_markers);
}

/* '*' matches any run of bytes, everything else itself, ASCII case folded. */
int http_glob_match(const char *pattern, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*pattern == '*') {
			star = ++pattern;
			resume = s;
		} else if (*pattern && tolower((unsigned char)*pattern) == tolower((unsigned char)*s)) {
			pattern++;
			s++;
		} else if (star) {
			pattern = star;
			s = ++resume;
		} else {
			return 0;
		}
	}
	while (*pattern == '*')
		pattern++;
	return *pattern == '\0';
}

static int client_matches(const struct http_processing_client *row, const struct http_request *r,
                          const char *ua)
{
	if (!http_glob_match(row->user_agent, ua))
		return 0;
	return row->with_header == NULL || http_request_header(r, row->with_header, 0) != NULL;
}

int http_processing_client_parse(const char *spec, struct http_processing_client *out, char *pattern,
                                 size_t pattern_size, const char **why)
{
	const char *sp = strrchr(spec, ' ');
	const char *max = sp ? sp + 1 : NULL;
	size_t plen;

	memset(out, 0, sizeof(*out));
	if (sp == NULL) {
		*why = "expected 'USER-AGENT-PATTERN MAX' (MAX: a number, none or unlimited)";
		return -EINVAL;
	}
	plen = (size_t)(sp - spec);
	while (plen > 0 && (spec[plen - 1] == ' ' || spec[plen - 1] == '\t'))
		plen--;
	while (plen > 0 && (*spec == ' ' || *spec == '\t')) {
		spec++;
		plen--;
	}
	if (plen == 0) {
		*why = "empty User-Agent pattern";
		return -EINVAL;
	}
	if (plen >= pattern_size) {
		*why = "User-Agent pattern too long";
		return -EINVAL;
	}
	if (strcmp(max, "none") == 0) {
		out->max = 0;
	} else if (strcmp(max, "unlimited") == 0) {
		out->max = HTTP_PROCESSING_UNLIMITED;
	} else {
		uint64_t v;
		if (util_parse_uint(max, 1000000, &v) < 0) {
			*why = "MAX must be a number (0..1000000), none or unlimited";
			return -EINVAL;
		}
		out->max = (unsigned)v;
	}
	memcpy(pattern, spec, plen);
	pattern[plen] = '\0';
	out->user_agent = pattern;
	out->name = "operator";
	out->version = "as the operator checked";
	out->evidence = "--processing-client";
	return 0;
}

/* ---------------- relays ---------------- */

/* An IPv4 or IPv6 literal into addr (16 bytes): AF_INET, AF_INET6, or 0. */
static int ip_parse(const char *s, unsigned char *addr)
{
	if (inet_pton(AF_INET, s, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return AF_INET6;
	return 0;
}

int http_relay_parse(const char *s, struct http_relay *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	uint64_t bits;

	memset(out, 0, sizeof(*out));
	if (strcmp(s, "unix") == 0) {
		out->family = AF_UNIX;
		return 0;
	}
	if (n == 0 || n >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, n);
	addr[n] = '\0';
	out->family = ip_parse(addr, out->addr);
	if (out->family == 0)
		return -EINVAL;
	bits = out->family == AF_INET ? 32 : 128;
	if (slash && util_parse_uint(slash + 1, bits, &bits) < 0)
		return -EINVAL;
	out->bits = (unsigned)bits;
	return 0;
}

int http_relay_match(const struct http_relay *relays, size_t n, const char *peer, int is_unix)
{
	unsigned char a[16];
	int family;

	if (is_unix) {
		for (size_t i = 0; i < n; i++)
			if (relays[i].family == AF_UNIX)
				return 1;
		return 0;
	}
	if (peer == NULL || (family = ip_parse(peer, a)) == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct http_relay *r = &relays[i];
		unsigned full = r->bits / 8, rest = r->bits % 8;
		if (r->family != family)
			continue;
		if (memcmp(r->addr, a, full) != 0)
			continue;
		if (rest && ((r->addr[full] ^ a[full]) & (unsigned char)(0xff << (8 - rest))) != 0)
			continue;
		return 1;
	}
	return 0;
}

/* ---------------- the decision ---------------- */

unsigned http_host_port(const char *host)
{
	const char *colon;
	uint64_t port;

	if (host == NULL || *host == '\0')
		return 0;
	if (*host == '[') {
		const char *end = strchr(host, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return 0;
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(host, ':');
		if (colon != NULL && memchr(host, ':', (size_t)(colon - host)) != NULL)
			return 0; /* an IPv6 address needs brackets */
	}
	if (colon == NULL)
		return 80; /* cgiq speaks plain HTTP */
	if (colon[1] == '\0')
		return 80; /* RFC 3986 3.2.3: an empty port is the scheme's */
	return util_parse_uint(colon + 1, 65535, &port) == 0 ? (unsigned)port : 0; /* port 0: none */
}

/*
 * Why a request looks relayed by a proxy, or NULL. Three signs:
 *  - a header a proxy adds (proxy_markers);
 *  - a Host whose port is not the one the request arrived on: the request
 *    was addressed to another server (nginx proxy_pass to an upstream block,
 *    as in its keepalive documentation, sends Host: UPSTREAM-NAME without
 *    a port; any proxy_set_header Host $host does the same), or it crossed
 *    a port forward; a unix-socket listener is never what a client's Host
 *    names;
 *  - Connection: close on HTTP/1.1, what nginx sends with proxy_http_version
 *    1.1 unless told otherwise, and none of the listed clients does.
 */
static const char *relayed(const struct http_request *r, const struct http_processing_context *ctx)
{
	for (size_t i = 0; i < UTIL_ARRAY_LEN(proxy_markers); i++)
		if (http_request_header(r, proxy_markers[i], 0) != NULL)
			return "proxy";
	if (ctx != NULL && ctx->local_port >= 0) {
		unsigned port = http_host_port(http_request_header(r, "Host", 0));
		if (port == 0 || port != (unsigned)ctx->local_port)
			return "host-port";
	}
	if (!r->keep_alive)
		return "connection-close";
	return NULL;
}

static void decide_send(struct http_processing_decision *out, unsigned configured_max, unsigned client_max,
                        const char *rule)
{
	unsigned max = configured_max;

	if (client_max != HTTP_PROCESSING_UNLIMITED && (max == 0 || client_max < max))
		max = client_max;
	out->send = 1;
	out->max_count = max;
	out->rule = rule;
}

static const struct http_processing_client *find_client(const struct http_processing_client *rows, size_t n,
                                                        const struct http_request *r, const char *ua)
{
	for (size_t i = 0; i < n; i++)
		if (client_matches(&rows[i], r, ua))
			return &rows[i];
	return NULL;
}

void http_processing_decide(enum http_processing_mode mode, unsigned configured_max,
                            const struct http_request *r, const struct http_prefer *prefer,
                            const struct http_processing_context *ctx,
                            struct http_processing_decision *out)
{
	const struct http_processing_client *row = NULL;
	const char *ua;

	out->send = 0;
	out->max_count = 0;
	out->solicited = prefer != NULL && prefer->processing;
	out->rule = "unknown-client";

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
		decide_send(out, configured_max, HTTP_PROCESSING_UNLIMITED, "mode-always");
		return;
	case HTTP_PROCESSING_OPT_IN:
		if (out->solicited)
			decide_send(out, configured_max, HTTP_PROCESSING_UNLIMITED, "prefer-processing");
		else
			out->rule = "opt-in";
		return;
	case HTTP_PROCESSING_AUTO:
	default:
		break;
	}

	if (out->solicited) {
		decide_send(out, configured_max, HTTP_PROCESSING_UNLIMITED, "prefer-processing");
		return;
	}
	if ((ctx == NULL || !ctx->from_relay) && (out->rule = relayed(r, ctx)) != NULL)
		return;
	out->rule = "unknown-client";
	ua = http_request_header(r, "User-Agent", 0);
	if (ua == NULL || *ua == '\0') {
		out->rule = "no-user-agent";
		return;
	}
	if (ctx != NULL && ctx->misread) {
		out->rule = "misread-evidence";
		return;
	}
	if (ctx != NULL)
		row = find_client(ctx->extra, ctx->extra_count, r, ua);
	if (row == NULL)
		row = find_client(clients, UTIL_ARRAY_LEN(clients), r, ua);
	if (row == NULL)
		return;
	out->rule = row->name;
	if (row->max == 0)
		return;
	decide_send(out, configured_max, row->max, row->name);
}
