/* fuzz.h: the two entry points every fuzz target defines. LLVMFuzzerTestOneInput is the
 * libFuzzer interface (built with -Dfuzzers=true and CC=clang); fuzz_seeds hands a few valid
 * inputs to the replay driver (replay.c), which CI runs without clang: it feeds every seed and
 * a fixed number of deterministic mutations of each through the target. */
#ifndef RC_FUZZ_H
#define RC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef void (*fuzz_emit_fn)(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void fuzz_seeds(fuzz_emit_fn emit);

#endif
