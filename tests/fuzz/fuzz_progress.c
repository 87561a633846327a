/*
 * libFuzzer target: the progress-line parser (src/cgi/progress.c). The
 * input is split at newlines the way the engine splits what a program writes
 * on its progress pipe; an accepted line must give counts that make sense
 * and a text that is safe in a Progress header and a log line.
 */
#include <errno.h>
#include <string.h>

#include "cgi/cgi.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p <= end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct cgi_progress out;
		int r;

		memset(&out, 0x55, sizeof(out));
		r = cgi_progress_parse(p, len, &out);
		FUZZ_CHECK(r == 0 || r == -EINVAL);
		if (r == 0) {
			size_t n = strnlen(out.text, sizeof(out.text));
			FUZZ_CHECK(out.total > 0);
			FUZZ_CHECK(out.done >= 0 && out.done <= out.total);
			FUZZ_CHECK(n <= CGI_PROGRESS_TEXT_MAX);
			/* It goes inside a quoted-string: printable ASCII only, and
			 * cgiq escapes '"' and '\\' itself when it writes the header. */
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK(out.text[i] >= 0x20 && out.text[i] < 0x7f);
			FUZZ_CHECK(n == 0 || out.text[n - 1] != ' ');
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
