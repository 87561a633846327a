/*
 * libFuzzer target: the configuration file parser (src/app/conffile.c). A
 * parse either fails with a line inside the input and a message, or gives
 * entries and blocks that honour the format: keys of [a-z0-9-], values never
 * empty and without control bytes or surrounding blanks, lines in order,
 * block indexes in range, patterns not empty and without blanks (whether a
 * pattern starts with / is config.c's check).
 */
#include <errno.h>
#include <string.h>

#include "app/conffile.h"
#include "fuzz.h"

static size_t count_lines(const uint8_t *data, size_t size)
{
	size_t n = 1;
	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct app_conf conf;
	struct app_conf_error err;
	size_t lines = count_lines(data, size);
	unsigned last_line = 0;
	int r;

	FUZZ_CHECK(text != NULL);
	if (size > 0)
		memcpy(text, data, size);
	memset(&err, 0, sizeof(err));
	r = app_conf_parse(text, size, &conf, &err);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		FUZZ_CHECK(err.line >= 1 && err.line <= lines);
		FUZZ_CHECK(err.message[0] != '\0' && memchr(err.message, '\0', sizeof(err.message)) != NULL);
		FUZZ_CHECK(conf.entry_count == 0 && conf.block_count == 0);
		free(text);
		return 0;
	}
	for (size_t i = 0; i < conf.block_count; i++) {
		const char *p = conf.blocks[i].pattern;
		FUZZ_CHECK(p[0] != '\0');
		FUZZ_CHECK(strpbrk(p, " \t") == NULL);
		FUZZ_CHECK(conf.blocks[i].line >= 1 && conf.blocks[i].line <= lines);
	}
	for (size_t i = 0; i < conf.entry_count; i++) {
		const struct app_conf_entry *e = &conf.entries[i];
		size_t vlen = strlen(e->value);
		FUZZ_CHECK(e->key[0] != '\0' && strspn(e->key, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(e->key));
		FUZZ_CHECK(vlen > 0 && e->value[0] != ' ' && e->value[0] != '\t');
		FUZZ_CHECK(e->value[vlen - 1] != ' ' && e->value[vlen - 1] != '\t');
		for (size_t k = 0; k < vlen; k++)
			FUZZ_CHECK((unsigned char)e->value[k] >= 0x20 || e->value[k] == '\t');
		FUZZ_CHECK(e->line >= 1 && e->line <= lines && e->line > last_line);
		FUZZ_CHECK(e->block >= -1 && e->block < (int)conf.block_count);
		last_line = e->line;
	}
	app_conf_free(&conf);
	app_conf_free(&conf);
	free(text);
	return 0;
}
