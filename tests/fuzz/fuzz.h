/*
 * Shared by the libFuzzer targets in tests/fuzz/ and the replay driver
 * (replay.c) that runs a target over its checked-in corpus in every ctest
 * run, whatever the compiler.
 */
#ifndef CGIQ_FUZZ_H
#define CGIQ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point each target defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: one line on stderr, then abort() so that libFuzzer
 * (and the replay test) report a crash with the input that caused it. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                           \
		if (!(cond)) {                                                                             \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);          \
			abort();                                                                               \
		}                                                                                          \
	} while (0)

/*
 * Split points chosen by the fuzzer: the first byte of an input gives the
 * number of cuts (low 3 bits) and a seed for where they fall; the rest is the
 * payload. Targets feed the payload once whole and once in these pieces and
 * require the same outcome: an incremental parser must not care where a
 * read(2) ended.
 */
struct fuzz_split {
	const uint8_t *payload;
	size_t len;
	size_t cuts[8];    /* ascending offsets into payload, 0 < cut < len */
	size_t ncuts;
};

static inline void fuzz_split_init(struct fuzz_split *s, const uint8_t *data, size_t size)
{
	uint32_t x;
	size_t want, prev = 0;

	s->ncuts = 0;
	if (size == 0) {
		s->payload = data;
		s->len = 0;
		return;
	}
	s->payload = data + 1;
	s->len = size - 1;
	want = data[0] & 7;
	/* A small xorshift seeded from the first byte: cheap and deterministic. */
	x = 0x9e3779b9u ^ ((uint32_t)data[0] * 0x01000193u);
	for (size_t i = 0; i < want && s->len > 1; i++) {
		size_t left = s->len - 1 - prev;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (left == 0)
			break;
		/* Small steps are the interesting ones (1-byte reads), so bias low. */
		size_t step = 1 + (x % (left < 16 || (x & 0x100) ? left : 16));
		prev += step;
		if (prev >= s->len)
			break;
		s->cuts[s->ncuts++] = prev;
	}
}

#endif
