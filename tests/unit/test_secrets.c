/* test_secrets.c: the literal-secret detector (secrets.c), the loaders that refuse what it
 * finds (rules.c, config.c), and `ripcord check` reporting it (check.c).
 *
 * No test secret is written in this file: each case is a template whose %<class><n> parts are
 * filled at run time with n characters drawn from a fixed pseudo-random sequence (%A letters
 * and digits, %U upper case and digits, %H lower-case hex, %D digits, %B base64), and the
 * known prefixes are split across string literals ("xox" "b-"). So the repository scan
 * (scripts/secret-scan, run by meson test) finds nothing here, while the detector sees real
 * shapes. Positive cases pin the kind, line and column; negative cases must find nothing.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "check.h"
#include "config.h"
#include "rules.h"
#include "secrets.h"

/*------------------------------------------------------------------------------------------
 * Templates
 *----------------------------------------------------------------------------------------*/

static uint64_t rng;
static char rnd_char(const char *alphabet) {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  uint64_t x = rng * 2685821657736338717ull;
  return alphabet[(x >> 33) % strlen(alphabet)];
}

/* Expands a template into buf (see the file comment); seed picks the sequence. */
static const char *expand(const char *t, uint64_t seed, char *buf, size_t cap) {
  rng = 0x9e3779b97f4a7c15ull ^ (seed * 0x100000001b3ull);
  size_t n = 0;
  for (const char *p = t; *p;) {
    if (p[0] == '%' && strchr("AUHDB", p[1]) != NULL && p[1] && p[2] >= '0' && p[2] <= '9') {
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define LOWER "abcdefghijklmnopqrstuvwxyz"
      const char *alpha = UPPER LOWER "0123456789";
      switch (p[1]) {
        case 'U': alpha = UPPER "0123456789"; break;
        case 'H': alpha = "0123456789abcdef"; break;
        case 'D': alpha = "0123456789"; break;
        case 'B': alpha = UPPER LOWER "0123456789+/"; break;
        default: break;
      }
#undef UPPER
#undef LOWER
      char *end;
      long k = strtol(p + 2, &end, 10);
      for (long i = 0; i < k && n + 1 < cap; i++) buf[n++] = rnd_char(alpha);
      p = end;
    } else {
      if (n + 1 < cap) buf[n++] = *p;
      p++;
    }
  }
  buf[n] = '\0';
  return buf;
}

static void scan(const char *text, rc_secret_findings_t *f) {
  memset(f, 0, sizeof(*f));
  assert_int_equal(rc_secrets_scan_once(text, strlen(text), f), 0);
}

static void dump(const char *text, const rc_secret_findings_t *f) {
  fprintf(stderr, "text: %s\n", text);
  for (size_t i = 0; i < f->n; i++)
    fprintf(stderr, "  %d:%d %s %s%s\n", f->v[i].line, f->v[i].col,
            rc_secrets_kind_name(f->v[i].kind), f->v[i].prefix,
            f->v[i].allow_no_reason ? " (allow without reason)" : "");
}

/*------------------------------------------------------------------------------------------
 * Positive cases: one finding each, at the stated place
 *----------------------------------------------------------------------------------------*/

static const struct {
  const char *t;
  int line, col;
  rc_secret_kind_t kind;
} positive[] = {
    {"url: https://hooks.slack" ".com/services/T%U9/B%U9/%A24\n", 1, 6, RC_SECRET_SLACK_WEBHOOK},
    {"  - url: 'http://hooks.slack" ".com/services/T%U8/B%U10/%A24'\n", 1, 11,
     RC_SECRET_SLACK_WEBHOOK},
    {"slack_bot: xox" "b-%D12-%D13-%A24\n", 1, 12, RC_SECRET_SLACK_TOKEN},
    {"SLACK=xox" "p-%D11-%D11-%D12-%H32\n", 1, 7, RC_SECRET_SLACK_TOKEN},
    {"    routing_key: %H32\n", 1, 18, RC_SECRET_PAGERDUTY_KEY},
    {"{\"integration_key\": \"%H32\"}\n", 1, 22, RC_SECRET_PAGERDUTY_KEY},
    {"Service-Key = %A32\n", 1, 15, RC_SECRET_PAGERDUTY_KEY},
    {"curl -H 'Authorization: Bea" "rer %A40' https://api/\n", 1, 32, RC_SECRET_BEARER},
    {"headers: {authorization: \"bea" "rer %A24.%A30.%A20\"}\n", 1, 34, RC_SECRET_BEARER},
    {"Authorization: Basic %B24==\n", 1, 22, RC_SECRET_AUTHORIZATION},
    {"\"Authorization\": \"Token %A30\"\n", 1, 25, RC_SECRET_AUTHORIZATION},
    {"dsn: postgres://app:%A16@db.internal:5432/orders\n", 1, 21, RC_SECRET_URL_CREDENTIALS},
    {"REDIS_URL=redis://:%A20@10.0.0.7:6379/0\n", 1, 20, RC_SECRET_URL_CREDENTIALS},
    {"x: gh" "p_%A36\n", 1, 4, RC_SECRET_GITHUB_TOKEN},
    {"x: \"gh" "s_%A36\"\n", 1, 5, RC_SECRET_GITHUB_TOKEN},
    {"x: github" "_pat_%A22_%A59\n", 1, 4, RC_SECRET_GITHUB_TOKEN},
    {"x: glpat" "-%A20\n", 1, 4, RC_SECRET_GITLAB_TOKEN},
    {"aws_access_key_id: AK" "IA%U16\n", 1, 20, RC_SECRET_AWS_ACCESS_KEY},
    {"id=AS" "IA%U16;\n", 1, 4, RC_SECRET_AWS_ACCESS_KEY},
    {"-----BEGIN OPENSSH PRIVATE" " KEY-----\n%B64\n-----END OPENSSH PRIVATE" " KEY-----\n", 1, 1,
     RC_SECRET_PRIVATE_KEY},
    {"  -----BEGIN PRIVATE" " KEY-----\n", 1, 3, RC_SECRET_PRIVATE_KEY},
    {"api_key: %A32\n", 1, 10, RC_SECRET_HIGH_ENTROPY},
    {"token: %A20\n", 1, 8, RC_SECRET_HIGH_ENTROPY}, /* exactly the minimum length */
    {"{\"client_secret\": \"%A30\"}\n", 1, 20, RC_SECRET_HIGH_ENTROPY},
    {"export DB_PASSWORD=%A24\n", 1, 20, RC_SECRET_HIGH_ENTROPY},
    {"  apiKey: '%A28'\n", 1, 12, RC_SECRET_HIGH_ENTROPY},
    {"args: --api-key=%A28\n", 1, 17, RC_SECRET_HIGH_ENTROPY},
    {"db.passwd = %H40\n", 1, 13, RC_SECRET_HIGH_ENTROPY},
    {"signing_secret: %H24\n", 1, 17, RC_SECRET_HIGH_ENTROPY}, /* hex: its own threshold */
    {"credentials: %B40\n", 1, 14, RC_SECRET_HIGH_ENTROPY},
    {"auth: %A24 # rotated monthly\n", 1, 7, RC_SECRET_HIGH_ENTROPY},
    {"a: 1\nb:\n  secretKey: %A24\n", 3, 14, RC_SECRET_HIGH_ENTROPY},
    {"a: 1\r\npassword: %A24\r\n", 2, 11, RC_SECRET_HIGH_ENTROPY}, /* CRLF */
    /* Columns count characters: the 'ë' is two bytes and one column. */
    {"name: \"Zo\xc3\xab\", token: \"%A24\"\n", 1, 22, RC_SECRET_HIGH_ENTROPY},
    /* Lines count from 1, blank ones included. */
    {"# comment\n\nx: gh" "o_%A40\n", 3, 4, RC_SECRET_GITHUB_TOKEN},
};

static void test_positive(void **st) {
  (void)st;
  for (size_t i = 0; i < RC_ARRAY_SIZE(positive); i++) {
    char text[1024];
    expand(positive[i].t, i, text, sizeof(text));
    rc_secret_findings_t f;
    scan(text, &f);
    if (f.n != 1 || f.v[0].kind != positive[i].kind || f.v[0].line != positive[i].line ||
        f.v[0].col != positive[i].col || f.v[0].allow_no_reason) {
      dump(text, &f);
      fail_msg("positive case %zu: want %s at %d:%d", i, rc_secrets_kind_name(positive[i].kind),
               positive[i].line, positive[i].col);
    }
    /* The prefix: at most 4 characters of the value, then "…"; never more of the secret. */
    size_t pl = strlen(f.v[0].prefix);
    assert_true(pl >= 3 && pl <= 4 + 3);
    assert_string_equal(f.v[0].prefix + pl - 3, "\xe2\x80\xa6");
    char msg[400];
    rc_secrets_message(&f.v[0], msg, sizeof(msg));
    char want[200];
    snprintf(want, sizeof(want),
             "literal secret (%s): use an environment variable or a file (secret_env:/"
             "secret_file:, token_env:/token_file:)",
             rc_secrets_kind_name(positive[i].kind));
    assert_string_equal(msg, want);
    rc_secret_findings_free(&f);
  }
}

/* A NUL byte earlier in the text does not end the scan. */
static void test_nul_bytes(void **st) {
  (void)st;
  char text[256];
  expand("a: \"\"\n\nx: gl" "pat-%A24\n", 7, text, sizeof(text));
  size_t n = strlen(text);
  text[4] = '\0'; /* a: "<NUL>" */
  rc_secret_findings_t f = {0};
  assert_int_equal(rc_secrets_scan_once(text, n, &f), 0);
  assert_int_equal(f.n, 1);
  assert_int_equal(f.v[0].line, 3);
  assert_int_equal(f.v[0].col, 4);
  rc_secret_findings_free(&f);
}

/*------------------------------------------------------------------------------------------
 * Negative cases: nothing found
 *----------------------------------------------------------------------------------------*/

static const char *const negative[] = {
    /* References to a variable or a file: what the config wants. */
    "secret_env: RIPCORD_DEPLOY_SECRET\n",
    "token_file: /run/secrets/token-for-prometheus-%A20\n",
    "password: ${DB_PASSWORD}\n",
    "password: \"${DB_PASSWORD_FROM_THE_ENVIRONMENT}\"\n",
    "token: $RIPCORD_TOKEN_FOR_THE_WRITER_%A8\n",
    "api_key: '{{ .Values.apiKey }}'\n",
    "private_key_path: ./keys/%A24.pem\n",
    "dsn: postgres://app:${DB_PASSWORD}@db:5432/orders\n",
    "dsn: postgres://app:$PGPASSWORD@db:5432/orders\n",
    /* Placeholders as documentation writes them. */
    "dsn: postgres://user:password@db:5432/x\n",
    "dsn: postgres://app:<password>@db:5432/x\n",
    "url: https://user:%A12@example.com/hook\n",
    "redis://:pw@host\n",
    "scheme://user:password@host\n",
    /* Split so that no line of this file looks like a live secret to a plain grep. */
    "url: https://hooks.slack.com/serv" "ices/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
    "url: https://hooks.slack.com/services/...\n",
    "token: xox" "b-your-token-here-please\n",
    "token: xox" "b-not-a-real-token-at-all\n",
    "aws: AKIAIOSFODNN7EXAMPLE\n",
    "routing_key: 0123456789abcdef0123456789abcdef\n", /* a repeated unit */
    "routing_key: 00000000000000000000000000000000\n",
    "api_key: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
    "password: ********************************\n",
    "api_key: CHANGEME-%A20\n",
    "Authorization: Bearer <token>\n",
    "snprintf(h, sizeof(h), \"Authorization: Bearer %s\", token);\n",
    "return deny(401, \"send Authorization: Bearer <token>\");\n",
    "Bearer abc123\n", /* short */
    "the bearer of this letter is a friend of the family\n",
    "Authorization: Bearer 0123456789abcdef0123456789abcdef\n",
    /* Short, low-entropy or word-like values under secret keys. */
    "token: %A19\n",
    "password: hunter2\n",
    "password: correct_horse_battery_staple\n",
    "secret: Abababababababababab12\n",
    "api_key: THIS_IS_NOT_A_SECRET_VALUE\n",
    "token: RIPCORD_TOKEN_V2_PRODUCTION_WRITER\n", /* names, not values */
    "password: token_for_tests_2024_v2_rotated\n",
    "secret: 1c2b3a4f5e6d7c8b\n",                 /* hex, but short */
    /* High-entropy values under keys that do not name a secret. */
    "request_id: %H8-%H4-4%H3-a%H3-%H12\n",
    "trace: %A32\n",
    "sha256: %H64\n",
    "digest: sha256:%H64\n",
    "token: sha256:%H64\n", /* a digest reference, even under a secret key */
    "dedup_key: %H64\n",
    "idempotency_key: %A32\n",
    "public_key: %B44\n",
    "key_id: %A24\n",
    "image: registry.local/app@sha256:%H64\n",
    /* Code: a call is not a literal. */
    "key = XXH3_64bits_withSeed(lab_start, len, seed);\n",
    "const char *token = getenv(\"RIPCORD_TOKEN_FOR_TESTS\");\n",
    /* Not a private key. */
    "-----BEGIN PUBLIC KEY-----\n",
    "-----BEGIN CERTIFICATE-----\n",
    "look for -----BEGIN ... PRIVATE KEY----- lines\n",
    "",
    "\n\n\n",
};

static void test_negative(void **st) {
  (void)st;
  for (size_t i = 0; i < RC_ARRAY_SIZE(negative); i++) {
    char text[1024];
    expand(negative[i], 1000 + i, text, sizeof(text));
    rc_secret_findings_t f;
    scan(text, &f);
    if (f.n != 0) {
      dump(text, &f);
      fail_msg("negative case %zu found something", i);
    }
    rc_secret_findings_free(&f);
  }
}

/*------------------------------------------------------------------------------------------
 * The allow comment
 *----------------------------------------------------------------------------------------*/

static void test_allow(void **st) {
  (void)st;
  static const struct {
    const char *t;
    size_t found, allowed;
    int no_reason;
  } t[] = {
      {"api_key: %A32 # ripcord:allow-secret documented fake for the tutorial\n", 0, 1, 0},
      {"x: gh" "p_%A36  // ripcord:allow-secret test vector from the spec\n", 0, 1, 0},
      {"x: gh" "p_%A36  /* ripcord:allow-secret generated fixture */\n", 0, 1, 0},
      /* Two findings on the line: one comment covers both. */
      {"a: gl" "pat-%A20 b: gh" "p_%A36 # ripcord:allow-secret fixtures\n", 0, 2, 0},
      /* No reason: still a finding, which says why the comment did not count. */
      {"api_key: %A32 # ripcord:allow-secret\n", 1, 0, 1},
      {"api_key: %A32 # ripcord:allow-secret   \n", 1, 0, 1},
      {"x: gh" "p_%A36 /* ripcord:allow-secret */\n", 1, 0, 1},
      {"api_key: %A32 # ripcord:allow-secret: -- \n", 1, 0, 1},
      /* Not a comment, or on another line: no effect. */
      {"api_key: %A32 ripcord:allow-secret because\n", 1, 0, 0},
      {"# ripcord:allow-secret for the next line\napi_key: %A32\n", 1, 0, 0},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(t); i++) {
    char text[1024];
    expand(t[i].t, 2000 + i, text, sizeof(text));
    rc_secret_findings_t f;
    scan(text, &f);
    if (f.n != t[i].found || f.allowed != t[i].allowed ||
        (f.n > 0 && f.v[0].allow_no_reason != t[i].no_reason)) {
      dump(text, &f);
      fail_msg("allow case %zu: found %zu allowed %zu", i, f.n, f.allowed);
    }
    if (f.n > 0 && t[i].no_reason) {
      char msg[400];
      rc_secrets_message(&f.v[0], msg, sizeof(msg));
      assert_non_null(strstr(msg, "; a ripcord:allow-secret comment needs a reason"));
    }
    rc_secret_findings_free(&f);
  }
}

/*------------------------------------------------------------------------------------------
 * Several findings: order, one finding per span
 *----------------------------------------------------------------------------------------*/

static void test_order_and_overlap(void **st) {
  (void)st;
  char text[1024];
  expand("b: gl" "pat-%A20 a: gh" "p_%A36\n"
         "routing_key: %H32\n"
         "slack_token: xox" "b-%D12-%D12-%A24\n"
         "auth: \"Bea" "rer %A32\"\n",
         3000, text, sizeof(text));
  rc_secret_findings_t f;
  scan(text, &f);
  static const struct {
    int line, col;
    rc_secret_kind_t kind;
  } want[] = {{1, 4, RC_SECRET_GITLAB_TOKEN},
              {1, 34, RC_SECRET_GITHUB_TOKEN},
              /* Also a secret key with a high-entropy value: reported once, as the more
               * specific kind. */
              {2, 14, RC_SECRET_PAGERDUTY_KEY},
              {3, 14, RC_SECRET_SLACK_TOKEN},
              {4, 15, RC_SECRET_BEARER}};
  if (f.n != RC_ARRAY_SIZE(want)) {
    dump(text, &f);
    fail_msg("want %zu findings", RC_ARRAY_SIZE(want));
  }
  for (size_t i = 0; i < f.n; i++)
    if (f.v[i].line != want[i].line || f.v[i].col != want[i].col || f.v[i].kind != want[i].kind) {
      dump(text, &f);
      fail_msg("finding %zu", i);
    }
  rc_secret_findings_free(&f);
}

/* Kind names are distinct, and so are the hints' existence. */
static void test_names(void **st) {
  (void)st;
  for (int i = 0; i < RC_SECRET_NKINDS; i++) {
    assert_string_not_equal(rc_secrets_kind_name((rc_secret_kind_t)i), "unknown");
    assert_true(strlen(rc_secrets_hint((rc_secret_kind_t)i)) > 10);
    for (int j = 0; j < i; j++)
      assert_string_not_equal(rc_secrets_kind_name((rc_secret_kind_t)i),
                              rc_secrets_kind_name((rc_secret_kind_t)j));
  }
  assert_string_equal(rc_secrets_kind_name(RC_SECRET_NKINDS), "unknown");
}

/* Long and hostile lines finish (the patterns are possessive; linear time). */
static void test_long_lines(void **st) {
  (void)st;
  size_t n = 1 << 18;
  char *big = malloc(n + 1);
  assert_non_null(big);
  static const char *const units[] = {"a.", "a-", "x:", "::/", "a=", "\"", "Bearer ", "://a:",
                                      "xoxb-1"};
  for (size_t u = 0; u < RC_ARRAY_SIZE(units); u++) {
    size_t k = strlen(units[u]);
    for (size_t i = 0; i < n; i++) big[i] = units[u][i % k];
    big[n] = '\0';
    rc_secret_findings_t f;
    scan(big, &f);
    rc_secret_findings_free(&f);
  }
  free(big);
}

/*------------------------------------------------------------------------------------------
 * Files, loaders and ripcord check
 *----------------------------------------------------------------------------------------*/

static char tmpdir[64];

/* Appends s to the string in buf (which must have room: the tests size their buffers). */
static void append(char *buf, size_t cap, const char *s) {
  size_t n = strlen(buf), m = strlen(s);
  assert_true(n + m < cap);
  memcpy(buf + n, s, m + 1);
}

static void write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
}

/* Runs rc_check_main with stdout captured into out (NUL-terminated). */
static int run_check(int argc, char **argv, char *out, size_t cap) {
  char path[128];
  snprintf(path, sizeof(path), "%s/stdout", tmpdir);
  fflush(stdout);
  int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(saved >= 0 && fd >= 0);
  dup2(fd, 1);
  close(fd);
  int rc = rc_check_main(argc, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = '\0';
  fclose(f);
  return rc;
}

static const char RULE[] = "rollback:\n"
                           "  service: checkout\n"
                           "  environment: production\n"
                           "  triggers:\n"
                           "    - metric: error_rate\n"
                           "      threshold: 5%\n"
                           "      window: 5m\n"
                           "  action:\n"
                           "    type: previous_version\n";

#define MSG                                                                                   \
  "literal secret (slack-webhook-url): use an environment variable or a file (secret_env:/" \
  "secret_file:, token_env:/token_file:)"

static void test_scan_file(void **st) {
  (void)st;
  rc_secrets_t *s;
  rc_err_t err = {0};
  assert_int_equal(rc_secrets_new(&s, &err), 0);
  char path[128], text[512];
  rc_secret_findings_t f = {0};
  int binary = -1;
  /* Text after a NUL in the first 8 KiB: a binary file, skipped. */
  snprintf(path, sizeof(path), "%s/blob.bin", tmpdir);
  write_file(path, "\x7f" "ELF\0\n", 5);
  assert_int_equal(rc_secrets_scan_file(s, path, &f, &binary, &err), 0);
  assert_int_equal(binary, 1);
  assert_int_equal(f.n, 0);
  snprintf(path, sizeof(path), "%s/text.env", tmpdir);
  expand("A=1\nGITHUB_TOKEN=gh" "p_%A36\n", 4001, text, sizeof(text));
  write_file(path, text, strlen(text));
  assert_int_equal(rc_secrets_scan_file(s, path, &f, &binary, &err), 0);
  assert_int_equal(binary, 0);
  assert_int_equal(f.n, 1);
  assert_int_equal(f.v[0].line, 2);
  assert_int_equal(f.v[0].col, 14);
  rc_secret_findings_free(&f);
  assert_int_equal(rc_secrets_scan_file(s, "/nonexistent/x", &f, &binary, &err), RC_EIO);
  assert_non_null(strstr(err.msg, "/nonexistent/x"));
  rc_secrets_free(s);
  rc_secrets_free(NULL);
}

static void test_loaders(void **st) {
  (void)st;
  char text[1024], rule[2048];
  /* A rule file with a webhook URL in a comment: an error at the URL, nothing loaded. */
  snprintf(rule, sizeof(rule), "%s", RULE);
  expand("# alerts go to https://hooks.slack" ".com/services/T%U9/B%U9/%A24\n", 5000, text,
         sizeof(text));
  append(rule, sizeof(rule), text);
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  assert_int_equal(rc_rules_load_buffer("r.yml", rule, strlen(rule), NULL, &set, &d), RC_EPARSE);
  assert_int_equal(set.n, 0);
  assert_int_equal(d.errors, 1);
  assert_int_equal(d.v[0].line, 10);
  assert_int_equal(d.v[0].col, 16);
  assert_string_equal(d.v[0].msg, MSG);
  rc_ruleset_free(&set);
  rc_diags_free(&d);
  /* The same line with an allow comment and a reason loads. */
  rule[strlen(rule) - 1] = '\0';
  append(rule, sizeof(rule), " # ripcord:allow-secret revoked, kept for the runbook\n");
  assert_int_equal(rc_rules_load_buffer("r.yml", rule, strlen(rule), NULL, &set, &d), 0);
  assert_int_equal(set.n, 1);
  rc_ruleset_free(&set);
  rc_diags_free(&d);

  /* The config: refused at the first finding, with its position. */
  expand("receivers:\n"
         "  - name: chat\n"
         "    type: slack\n"
         "    url: https://hooks.slack" ".com/services/T%U9/B%U9/%A24\n",
         5001, text, sizeof(text));
  rc_config_t c;
  rc_err_t e = {0};
  assert_int_equal(rc_config_parse("c.yml", text, strlen(text), &c, &e), RC_EPARSE);
  assert_int_equal(e.line, 4);
  assert_int_equal(e.col, 10);
  assert_string_equal(e.msg, "c.yml:4:10: " MSG);
  /* Identities: a token written where token_env names a variable. */
  expand("identities:\n"
         "  - name: ci\n"
         "    roles: [deployer]\n"
         "    token_env: gl" "pat-%A20\n",
         5002, text, sizeof(text));
  assert_int_equal(rc_config_parse("c.yml", text, strlen(text), &c, &e), RC_EPARSE);
  assert_int_equal(e.line, 4);
  assert_int_equal(e.col, 16);
  assert_non_null(strstr(e.msg, "literal secret (gitlab-token)"));
  /* A config with only references parses. */
  static const char ok[] = "receivers:\n  - name: chat\n    type: slack\n"
                           "    url: https://chat.internal/hook\n    secret_env: CHAT_SECRET\n";
  assert_int_equal(rc_config_parse("c.yml", ok, strlen(ok), &c, &e), 0);
  rc_config_free(&c);
}

static void test_check(void **st) {
  (void)st;
  char rules[128], cfg[128], clean[128], text[1024], rule[2048], out[8192], want[1024];
  snprintf(rules, sizeof(rules), "%s/app.rollback.yml", tmpdir);
  snprintf(cfg, sizeof(cfg), "%s/ripcord.yml", tmpdir);
  snprintf(clean, sizeof(clean), "%s/clean.yml", tmpdir);
  snprintf(rule, sizeof(rule), "%s", RULE);
  write_file(clean, rule, strlen(rule));
  expand("# alerts go to https://hooks.slack" ".com/services/T%U9/B%U9/%A24\n", 6000, text,
         sizeof(text));
  append(rule, sizeof(rule), text);
  write_file(rules, rule, strlen(rule));
  /* Two findings in the config: both listed. */
  expand("rule_files: ['*.rollback.yml']\n"
         "receivers:\n"
         "  - name: chat\n"
         "    type: slack\n"
         "    url: https://hooks.slack" ".com/services/T%U9/B%U9/%A24\n"
         "  - name: deploy\n"
         "    url: https://deploy:%A16@ci.internal/hook\n",
         6001, text, sizeof(text));
  write_file(cfg, text, strlen(text));

  /* A rule file: exit 1, the error at file:line:col. */
  char *a1[] = {"check", rules};
  assert_int_equal(run_check(2, a1, out, sizeof(out)), 1);
  snprintf(want, sizeof(want), "%s:10:16: error: " MSG "\n%s: 1 error\n", rules, rules);
  assert_string_equal(out, want);

  /* The config: every finding, then nothing else is checked. */
  char *a2[] = {"check", "--config.file", cfg, clean};
  assert_int_equal(run_check(4, a2, out, sizeof(out)), 1);
  snprintf(want, sizeof(want),
           "%s:5:10: error: " MSG "\n"
           "%s:7:25: error: literal secret (url-credentials): use an environment variable or a "
           "file (secret_env:/secret_file:, token_env:/token_file:)\n"
           "%s: 2 errors\n",
           cfg, cfg, cfg);
  assert_string_equal(out, want);

  /* A clean rule file still passes. */
  char *a3[] = {"check", clean};
  assert_int_equal(run_check(2, a3, out, sizeof(out)), 0);

  /* --secrets-only: file:line:col: kind, a summary, exit 1; a clean file exits 0. */
  char *a4[] = {"check", "--secrets-only", rules, cfg, clean};
  assert_int_equal(run_check(5, a4, out, sizeof(out)), 1);
  snprintf(want, sizeof(want), "%s:10:16: slack-webhook-url \"", rules);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof(want), "%s:5:10: slack-webhook-url \"", cfg);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof(want), "%s:7:25: url-credentials \"", cfg);
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "secrets: 3 findings in 3 files\n"));
  char *a5[] = {"check", "--secrets-only", "--", clean};
  assert_int_equal(run_check(4, a5, out, sizeof(out)), 0);
  assert_string_equal(out, "secrets: 0 findings in 1 file\n");
  /* Usage: --secrets-only with --config.file, and an unreadable file. */
  char *a6[] = {"check", "--secrets-only", "--config.file", cfg, clean};
  assert_int_equal(run_check(5, a6, out, sizeof(out)), 2);
  char *a7[] = {"check", "--secrets-only", "/nonexistent/x.yml"};
  assert_int_equal(run_check(3, a7, out, sizeof(out)), 1);
  unlink(rules);
  unlink(cfg);
  unlink(clean);
}

static int setup(void **st) {
  (void)st;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_secrets_XXXXXX");
  return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **st) {
  (void)st;
  char path[128];
  static const char *const names[] = {"stdout", "blob.bin", "text.env"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(names); i++) {
    snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
    unlink(path);
  }
  return rmdir(tmpdir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_positive),  cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_negative),  cmocka_unit_test(test_allow),
      cmocka_unit_test(test_order_and_overlap), cmocka_unit_test(test_names),
      cmocka_unit_test(test_long_lines), cmocka_unit_test(test_scan_file),
      cmocka_unit_test(test_loaders),   cmocka_unit_test(test_check),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
