/* fuzz_secrets.c: the literal-secret detector (rc_secrets_scan) on arbitrary bytes — NUL
 * bytes, invalid UTF-8, CR without LF, endless lines. Besides not crashing, every finding
 * must be inside the text (1 <= line <= lines, 1 <= col), in line then column order, with a
 * prefix of at most 4 characters and the ellipsis, and a known kind.
 *
 * The seeds hold each kind of secret, but none is written here: the token bodies are drawn
 * at run time from a fixed pseudo-random sequence and the prefixes are split across string
 * literals, so the repository scan (scripts/secret-scan) does not report this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "secrets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rc_secret_findings_t f = {0};
  if (rc_secrets_scan_once((const char *)data, size, &f) != 0) abort();
  size_t lines = 1;
  for (size_t i = 0; i < size; i++) lines += data[i] == '\n';
  for (size_t i = 0; i < f.n; i++) {
    const rc_secret_finding_t *x = &f.v[i];
    if ((unsigned)x->kind >= RC_SECRET_NKINDS) abort();
    if (x->line < 1 || (size_t)x->line > lines || x->col < 1 || (size_t)x->col > size) abort();
    if (i > 0 && (x->line < f.v[i - 1].line ||
                  (x->line == f.v[i - 1].line && x->col < f.v[i - 1].col)))
      abort();
    size_t pl = strnlen(x->prefix, sizeof(x->prefix));
    if (pl < 3 || pl > 7 || strcmp(x->prefix + pl - 3, "\xe2\x80\xa6") != 0) abort();
    char msg[400];
    if (rc_secrets_message(x, msg, sizeof(msg)) <= 0) abort();
  }
  rc_secret_findings_free(&f);
  return 0;
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static char draw(const char *alphabet) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return alphabet[((rng * 2685821657736338717ull) >> 33) % strlen(alphabet)];
}

/* t with each '*' replaced by a letter or digit, each '&' by an upper-case letter or digit
 * and each '%' by a hex digit. */
static void emit_filled(fuzz_emit_fn emit, const char *t) {
  char buf[1024];
  size_t n = 0;
  for (; *t && n + 1 < sizeof(buf); t++)
    buf[n++] = *t == '*'   ? draw("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
               : *t == '&' ? draw("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
               : *t == '%' ? draw("0123456789abcdef")
                           : *t;
  emit((const uint8_t *)buf, n);
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "receivers:\n  - name: chat\n    type: slack\n"
      "    url: https://hooks.slack" ".com/services/T&&&&&&&&/B&&&&&&&&/"
      "************************\n",
      "slack: xox" "b-1234567890-123456789012-************************\n",
      "routing_key: %%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%\n",
      "curl -H 'Authorization: Bea" "rer ********************************'\r\n"
      "Authorization: Basic ********************==\r\n",
      "dsn: postgres://app:****************@db.internal:5432/x\n",
      "a: gh" "p_************************************ b: gl" "pat-********************\n"
      "c: AK" "IA&&&&&&&&&&&&&&&&\n",
      "-----BEGIN RSA PRIVATE" " KEY-----\n"
      "************************************************************\n",
      "{\"client_secret\": \"****************************\", "
      "\"api_key\": '************************'}\n",
      "export DB_PASSWORD=************************ --api-key=**************************\n",
      "api_key: ******************************** # ripcord:allow-secret fuzz seed\n"
      "api_key: ******************************** # ripcord:allow-secret\n",
      "name: \"Zo\xc3\xab\", token: \"************************\"\n",
      "password: ${DB_PASSWORD}\n"
      "sha256: %%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%\n",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) emit_filled(emit, seeds[i]);
}
