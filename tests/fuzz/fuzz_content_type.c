/* fuzz_content_type.c: Content-Type and Content-Encoding parsing on arbitrary header values. */
#include <string.h>

#include "fuzz.h"
#include "ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int v;
  char why[200];
  rc_ingest_content_type((const char *)data, size, &v, why, sizeof(why));
  rc_ingest_content_encoding((const char *)data, size, why, sizeof(why));
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "application/x-protobuf;proto=io.prometheus.write.v2.Request",
      "application/x-protobuf; proto=\"prometheus.WriteRequest\"; x=y",
      "snappy",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
