/* secrets.c: the literal-secret detector; see secrets.h for the kinds, thresholds and the
 * allow comment.
 *
 * How a scan runs: the text is cut into lines, and each detector (a PCRE2 pattern whose group
 * names the secret's span, plus a check in C for what a regex says badly: entropy, character
 * classes, placeholders, the key's words) runs over every line that holds its cheap needle.
 * A byte map of what was already reported keeps a span to one finding, from the most specific
 * detector (they run in secrets.h's order). Findings are sorted by line and column at the end.
 *
 * The patterns are ours, written from the token formats' public descriptions (Slack's,
 * GitHub's and GitLab's token prefixes, AWS's key id shape, RFC 7468's PEM labels, RFC 6750's
 * token68, RFC 3986's userinfo). Every repetition that could backtrack across a long line is
 * possessive, and each match call has a limit, so a hostile line costs linear time.
 *
 * Sections: patterns | value checks | the scan | files | names and messages.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "secrets.h"
#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*------------------------------------------------------------------------------------------
 * Patterns
 *----------------------------------------------------------------------------------------*/

/* Each detector: its pattern, the capture group that is the secret (its column and prefix),
 * and a needle the line must contain before the pattern runs (nocase: compared ignoring
 * case). The private-key pattern spells its dashes as -{5} so that this file does not hold
 * the marker it looks for. */
typedef struct detector {
  rc_secret_kind_t kind;
  const char *pattern;
  int group;
  const char *needle;
  int nocase;
} detector_t;

static const detector_t detectors[RC_SECRET_NKINDS] = {
    {RC_SECRET_PRIVATE_KEY, "(-{5}BEGIN (?:[A-Z0-9]++ )*PRIVATE KEY(?: BLOCK)?-{5})", 1,
     "PRIVATE KEY", 0},
    {RC_SECRET_SLACK_WEBHOOK,
     "(https?://hooks\\.slack\\.com/services/T[A-Z0-9]{6,}+/B[A-Z0-9]{6,}+/[A-Za-z0-9]{16,}+)",
     1, "hooks.slack.com", 1},
    {RC_SECRET_SLACK_TOKEN, "(?<![A-Za-z0-9_-])(xox[abprs]-[A-Za-z0-9-]{10,}+)", 1, "xox", 0},
    {RC_SECRET_GITHUB_TOKEN,
     "(?<![A-Za-z0-9_])(gh[pousr]_[A-Za-z0-9]{36,}+|github_pat_[A-Za-z0-9_]{40,}+)", 1, "_", 0},
    {RC_SECRET_GITLAB_TOKEN, "(?<![A-Za-z0-9_-])(glpat-[A-Za-z0-9_-]{20,}+)", 1, "glpat-", 0},
    {RC_SECRET_AWS_ACCESS_KEY, "(?<![A-Z0-9])((?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])", 1, "A",
     0},
    /* scheme://user:password@host; the user may be empty (redis://:pw@host). The host is a
     * name, an address or [v6]: what follows the @ in prose or code is not. */
    {RC_SECRET_URL_CREDENTIALS,
     "(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://([^\\s:@/?#'\"<>`]*+):([^\\s@/?#'\"<>`]++)@"
     "([A-Za-z0-9\\[][A-Za-z0-9._:\\[\\]-]*+)",
     2, "://", 0},
    {RC_SECRET_BEARER, "(?<![A-Za-z0-9_])(?i:bearer)\\h++([A-Za-z0-9._~+/-]++=*+)", 1, "bearer",
     1},
    /* A value after "Authorization:", any scheme but Bearer (the detector above has it). */
    {RC_SECRET_AUTHORIZATION,
     "(?i)(?<![A-Za-z0-9_-])[\"']?authorization[\"']?\\h*+[:=]\\h*+[\"']?(?!bearer\\b)"
     "(?:[a-z][a-z-]*+\\h++)?([A-Za-z0-9._~+/=:-]{12,}+)",
     1, "authorization", 1},
    {RC_SECRET_PAGERDUTY_KEY,
     "(?i)(?<![A-Za-z0-9])(?:routing|integration|service)[_-]?key[\"']?\\h*+[:=]\\h*+[\"']?"
     "([0-9a-z]{32})(?![0-9a-z])",
     1, "key", 1},
    /* key: value, key=value, "key": "value". Group 1 is the key, 2 the value. A key starts
     * where a word or a dashed or dotted part starts (--api-key=, db.password:) and is at
     * most 64 characters, and a value at most 512 (a longer one is judged by its first 512),
     * so each start costs a bounded amount of work even though the scan goes on from the
     * value (a=a=a=... is linear). An unquoted value followed by '(' is a call in code
     * (key = XXH3_64bits(...)), not a literal. */
    {RC_SECRET_HIGH_ENTROPY,
     "(?<![A-Za-z0-9_$])(?|\"([A-Za-z_][A-Za-z0-9_.-]{0,63}+)\"|"
     "'([A-Za-z_][A-Za-z0-9_.-]{0,63}+)'|([A-Za-z_][A-Za-z0-9_.-]{0,63}+))"
     "\\h*+(?:=|:(?=\\h|[\"']|$))\\h*+"
     "(?|\"([^\"\\\\\\n\\r]{0,512}+)[^\"\\\\\\n\\r]*+\"|"
     "'([^'\\\\\\n\\r]{0,512}+)[^'\\\\\\n\\r]*+'|"
     "([^\\s\"'`,;(){}\\[\\]<>#&|\\\\]{1,512}+)(?!\\())",
     2, NULL, 0},
};

/* A finding needs at most this much work per line and pattern (PCRE2's match limit). */
#define MATCH_LIMIT 1000000u

struct rc_secrets {
  pcre2_code *code[RC_SECRET_NKINDS];
  pcre2_match_context *mctx;
};

int rc_secrets_new(rc_secrets_t **out, rc_err_t *err) {
  *out = NULL;
  rc_secrets_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  s->mctx = pcre2_match_context_create(NULL);
  if (s->mctx == NULL) {
    rc_secrets_free(s);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
  for (int i = 0; i < RC_SECRET_NKINDS; i++) {
    int ec;
    PCRE2_SIZE off;
    s->code[i] = pcre2_compile((PCRE2_SPTR)detectors[i].pattern, PCRE2_ZERO_TERMINATED,
                               PCRE2_MULTILINE, &ec, &off, NULL);
    if (s->code[i] == NULL) {
      PCRE2_UCHAR msg[120];
      pcre2_get_error_message(ec, msg, sizeof(msg));
      rc_secrets_free(s);
      if (ec == PCRE2_ERROR_HEAPLIMIT || ec == PCRE2_ERROR_NOMEMORY)
        return rc_err_set(err, RC_ENOMEM, "out of memory");
      return rc_err_set(err, RC_EINVAL, "secrets: pattern %d at %zu: %s", i, (size_t)off,
                        (const char *)msg);
    }
  }
  *out = s;
  return 0;
}

void rc_secrets_free(rc_secrets_t *s) {
  if (s == NULL) return;
  for (int i = 0; i < RC_SECRET_NKINDS; i++) pcre2_code_free(s->code[i]);
  pcre2_match_context_free(s->mctx);
  free(s);
}

/*------------------------------------------------------------------------------------------
 * Value checks
 *----------------------------------------------------------------------------------------*/

/* Case-insensitive search for needle (lower case) in [p, p+n). */
static int has_nocase(const char *p, size_t n, const char *needle) {
  size_t m = strlen(needle);
  if (m == 0) return 1;
  for (size_t i = 0; i + m <= n; i++) {
    size_t j = 0;
    while (j < m && tolower((unsigned char)p[i + j]) == needle[j]) j++;
    if (j == m) return 1;
  }
  return 0;
}

static int has_exact(const char *p, size_t n, const char *needle) {
  return memmem(p, n, needle, strlen(needle)) != NULL;
}

static int starts_nocase(const char *p, size_t n, const char *prefix) {
  size_t m = strlen(prefix);
  if (n < m) return 0;
  for (size_t i = 0; i < m; i++)
    if (tolower((unsigned char)p[i]) != prefix[i]) return 0;
  return 1;
}

/* Shannon entropy of the bytes of [p, p+n), in bits per byte. */
static double entropy(const char *p, size_t n) {
  if (n == 0) return 0;
  size_t count[256] = {0};
  for (size_t i = 0; i < n; i++) count[(unsigned char)p[i]]++;
  double h = 0;
  for (int c = 0; c < 256; c++) {
    if (count[c] == 0) continue;
    double q = (double)count[c] / (double)n;
    h -= q * log2(q);
  }
  return h;
}

/* How many of lower case, upper case and digits appear. */
static int classes(const char *p, size_t n) {
  int lo = 0, up = 0, dg = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    lo |= c >= 'a' && c <= 'z';
    up |= c >= 'A' && c <= 'Z';
    dg |= c >= '0' && c <= '9';
  }
  return lo + up + dg;
}

static int all_hex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isxdigit((unsigned char)p[i])) return 0;
  return 1;
}

/* A name, not a value: SCREAMING_SNAKE_CASE or snake_case with at least one underscore
 * (RIPCORD_TOKEN_V2, token_for_tests_2). Random tokens mix cases. */
static int constant_name(const char *p, size_t n) {
  int upper = isupper((unsigned char)p[0]), under = 0;
  if (!isalpha((unsigned char)p[0])) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '_') {
      if (i + 1 == n || p[i + 1] == '_') return 0;
      under = 1;
    } else if (!(isdigit(c) || (upper ? isupper(c) : islower(c)))) {
      return 0;
    }
  }
  return under;
}

/* A shorter unit repeated to fill the value ("aaaa", "abcabcab", "0123...f0123...f"). Values
 * longer than 1 KiB are not checked (the test is quadratic in the worst case). */
static int periodic(const char *p, size_t n) {
  if (n == 0 || n > 1024) return 0;
  for (size_t per = 1; per <= n / 2; per++) {
    size_t i = per;
    while (i < n && p[i] == p[i - per]) i++;
    if (i == n) return 1;
  }
  return n == 1;
}

/* An obvious placeholder, template or format directive (secrets.h lists them). */
static int placeholder(const char *p, size_t n) {
  static const char *const words[] = {"example", "xxx", "***", "...", "\xe2\x80\xa6",
                                      "placeholder", "changeme", "redacted", "dummy", "your_",
                                      "your-"};
  if (n == 0) return 1;
  if (p[0] == '$' || p[0] == '{' || p[0] == '<' || p[0] == '%') return 1;
  for (size_t i = 0; i < RC_ARRAY_SIZE(words); i++)
    if (has_nocase(p, n, words[i])) return 1;
  return periodic(p, n);
}

static int one_of_nocase(const char *p, size_t n, const char *const *words, size_t nwords) {
  for (size_t i = 0; i < nwords; i++)
    if (strlen(words[i]) == n && starts_nocase(p, n, words[i])) return 1;
  return 0;
}

/* A URL's password that only stands for one (user:password@, user:pass@, :pw@, ...). */
static int placeholder_password(const char *p, size_t n) {
  static const char *const words[] = {"password", "passwd", "pass", "pwd", "pw", "secret",
                                      "token"};
  return one_of_nocase(p, n, words, RC_ARRAY_SIZE(words)) || placeholder(p, n);
}

/* A URL's host in a usage line (scheme://user:pw@host). */
static int placeholder_host(const char *p, size_t n) {
  static const char *const words[] = {"host", "hostname", "server", "domain"};
  return one_of_nocase(p, n, words, RC_ARRAY_SIZE(words)) || placeholder(p, n);
}

/* Bearer and Authorization values: token-like, not a name or a sentence's word. The cheap
 * tests come first: a hostile line can make many candidates. */
static int token_like(const char *p, size_t n) {
  return classes(p, n) >= 2 && entropy(p, n) >= 3.0 && !placeholder(p, n);
}

/* The words of a key: split at anything but a letter or digit, and before an upper-case
 * letter that follows a lower-case one (camelCase). Calls fn(word, len, ctx) with the word
 * in lower case; stops early when fn returns non-zero and returns that. */
static int key_words(const char *k, size_t n, int (*fn)(const char *, size_t, void *),
                     void *ctx) {
  char w[64];
  size_t wl = 0;
  for (size_t i = 0; i <= n; i++) {
    unsigned char c = i < n ? (unsigned char)k[i] : 0;
    int alnum = isalnum(c);
    int camel = i > 0 && isupper(c) && islower((unsigned char)k[i - 1]);
    if ((!alnum || camel) && wl > 0) {
      int r = fn(w, wl, ctx);
      if (r) return r;
      wl = 0;
    }
    if (alnum && wl < sizeof(w)) w[wl++] = (char)tolower(c);
  }
  return 0;
}

static int word_in(const char *w, size_t n, const char *const *list, size_t nlist) {
  for (size_t i = 0; i < nlist; i++)
    if (strlen(list[i]) == n && memcmp(w, list[i], n) == 0) return 1;
  return 0;
}

/* 1: a word that names a secret; 2: a word that says the value is not the secret. */
static int classify_word(const char *w, size_t n, void *ctx) {
  static const char *const secret[] = {"secret", "secrets", "token", "tokens", "password",
                                       "passwords", "passwd", "pwd", "passphrase", "apikey",
                                       "key", "credential", "credentials", "creds", "auth",
                                       "oauth", "authorization", "private"};
  static const char *const other[] = {
      "env", "file", "files", "path", "dir", "url", "uri", "id", "ids", "name", "names",
      "type", "kind", "public", "pub", "hash", "digest", "checksum", "fingerprint", "sha1",
      "sha256", "sha512", "md5", "dedup", "idempotency", "length", "len", "size", "count",
      "ttl", "expiry", "expires", "header", "label", "field", "ref", "format", "prefix",
      "version", "sort", "partition", "cache"};
  int *seen = ctx;
  if (word_in(w, n, other, RC_ARRAY_SIZE(other))) return 2;
  if (word_in(w, n, secret, RC_ARRAY_SIZE(secret))) *seen = 1;
  /* Run-together names: secretkey, accesstoken, dbpassword, apikey. */
  static const char *const inner[] = {"secret", "token", "password", "passwd", "apikey",
                                      "credential"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(inner); i++)
    if (memmem(w, n, inner[i], strlen(inner[i])) != NULL) *seen = 1;
  return 0;
}

static int secret_key(const char *k, size_t n) {
  int seen = 0;
  if (key_words(k, n, classify_word, &seen) == 2) return 0;
  return seen;
}

/* The checks after a detector's pattern matched: 1 if [v, v+n) is reported. */
static int accept(rc_secret_kind_t kind, const char *line, const PCRE2_SIZE *ov) {
  const char *v = line + ov[2 * detectors[kind].group];
  size_t n = ov[2 * detectors[kind].group + 1] - ov[2 * detectors[kind].group];
  switch (kind) {
    case RC_SECRET_PRIVATE_KEY: return 1;
    case RC_SECRET_SLACK_WEBHOOK:
    case RC_SECRET_GITHUB_TOKEN:
    case RC_SECRET_GITLAB_TOKEN:
    case RC_SECRET_AWS_ACCESS_KEY: return !placeholder(v, n);
    case RC_SECRET_SLACK_TOKEN: {
      int digit = 0;
      for (size_t i = 5; i < n; i++) digit |= isdigit((unsigned char)v[i]);
      return digit && !placeholder(v + 5, n - 5);
    }
    case RC_SECRET_URL_CREDENTIALS: {
      const char *user = line + ov[2], *host = line + ov[6];
      size_t nuser = ov[3] - ov[2], nhost = ov[7] - ov[6];
      if (placeholder_password(v, n)) return 0;
      if (nuser > 0 && placeholder(user, nuser)) return 0;
      return !placeholder_host(host, nhost);
    }
    case RC_SECRET_BEARER: return n >= RC_SECRETS_MIN_LEN && token_like(v, n);
    case RC_SECRET_AUTHORIZATION: return token_like(v, n);
    case RC_SECRET_PAGERDUTY_KEY: {
      int digit = 0, alpha = 0;
      for (size_t i = 0; i < n; i++) {
        digit |= isdigit((unsigned char)v[i]);
        alpha |= isalpha((unsigned char)v[i]);
      }
      return digit && alpha && !placeholder(v, n);
    }
    case RC_SECRET_HIGH_ENTROPY: {
      if (n < RC_SECRETS_MIN_LEN || classes(v, n) < 2) return 0;
      if (entropy(v, n) < (all_hex(v, n) ? RC_SECRETS_MIN_ENTROPY_HEX : RC_SECRETS_MIN_ENTROPY))
        return 0;
      if (constant_name(v, n)) return 0;
      for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)v[i])) return 0;
      if (v[0] == '/' || starts_nocase(v, n, "./") || starts_nocase(v, n, "../") ||
          starts_nocase(v, n, "~/") || starts_nocase(v, n, "file:") ||
          has_exact(v, n, "://"))
        return 0; /* a path or a URL (url-credentials looks into URLs) */
      if (starts_nocase(v, n, "sha256:") || starts_nocase(v, n, "sha512:") ||
          starts_nocase(v, n, "sha1:"))
        return 0; /* a digest reference */
      return !placeholder(v, n) && secret_key(line + ov[2], ov[3] - ov[2]);
    }
    default: return 0;
  }
}

/*------------------------------------------------------------------------------------------
 * The scan
 *----------------------------------------------------------------------------------------*/

#define ALLOW_MARK "ripcord:allow-secret"

/* The line's allow comment: 0 none, 1 with a reason, -1 without one. */
static int allow_comment(const char *p, size_t n) {
  size_t m = strlen(ALLOW_MARK);
  const char *at = memmem(p, n, ALLOW_MARK, m);
  if (at == NULL) return 0;
  /* A comment mark before it on the line. */
  size_t pre = (size_t)(at - p);
  int comment = 0;
  for (size_t i = 0; i < pre && !comment; i++)
    comment = p[i] == '#' || (p[i] == '/' && i + 1 < pre && (p[i + 1] == '/' || p[i + 1] == '*'));
  if (!comment) return 0;
  const char *r = at + m, *end = p + n;
  if (r < end && *r != ' ' && *r != '\t') return -1;
  /* Trailing comment closers are not a reason. */
  while (end > r && (isspace((unsigned char)end[-1]))) end--;
  if (end - r >= 2 && end[-2] == '*' && end[-1] == '/') end -= 2;
  if (end - r >= 3 && memcmp(end - 3, "-->", 3) == 0) end -= 3;
  for (; r < end; r++)
    if (isalnum((unsigned char)*r)) return 1;
  return -1;
}

/* Column of byte off in a line starting at p: characters (not UTF-8 continuation bytes).
 * Each detector's matches come in increasing order, so counting resumes from the last
 * answer (*at, *col) unless off is before it: linear per detector, however many findings. */
static int column(const char *p, size_t off, size_t *at, int *col) {
  if (off < *at) *at = 0, *col = 1;
  for (size_t i = *at; i < off; i++)
    if (((unsigned char)p[i] & 0xC0) != 0x80) (*col)++;
  *at = off;
  return *col;
}

/* Up to 4 printable ASCII characters of the value (fewer for short ones) and "…". */
static void make_prefix(const char *v, size_t n, char *out, size_t cap) {
  size_t show = n / 5 < 4 ? n / 5 : 4, k = 0;
  while (k < show && k + 1 < cap && v[k] > 0x20 && v[k] < 0x7f) {
    out[k] = v[k];
    k++;
  }
  snprintf(out + k, cap - k, "\xe2\x80\xa6");
}

static int push(rc_secret_findings_t *f, const rc_secret_finding_t *x) {
  if (f->n == f->cap) {
    size_t nc = f->cap ? f->cap * 2 : 16;
    rc_secret_finding_t *nv = realloc(f->v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    f->v = nv;
    f->cap = nc;
  }
  f->v[f->n++] = *x;
  return 0;
}

static int by_position(const void *a, const void *b) {
  const rc_secret_finding_t *x = a, *y = b;
  if (x->line != y->line) return x->line < y->line ? -1 : 1;
  if (x->col != y->col) return x->col < y->col ? -1 : 1;
  return (int)x->kind - (int)y->kind;
}

/* Bit map over a line's bytes: what an earlier detector already reported. */
static int covered(const uint8_t *map, size_t a, size_t b) {
  for (size_t i = a; i < b; i++)
    if (map[i >> 3] & (1u << (i & 7))) return 1;
  return 0;
}

static void cover(uint8_t *map, size_t a, size_t b) {
  for (size_t i = a; i < b; i++) map[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* One line: every detector, every match. */
static int scan_line(const rc_secrets_t *s, pcre2_match_data *md, const char *p, size_t n,
                     int lineno, uint8_t *map, rc_secret_findings_t *out) {
  int allow = -2; /* not looked at yet */
  size_t col_at = 0;
  int col = 1;
  memset(map, 0, (n >> 3) + 1);
  for (int k = 0; k < RC_SECRET_NKINDS; k++) {
    const detector_t *d = &detectors[k];
    if (d->needle != NULL &&
        !(d->nocase ? has_nocase(p, n, d->needle) : has_exact(p, n, d->needle)))
      continue;
    PCRE2_SIZE at = 0;
    while (at <= n) {
      int rc = pcre2_match(s->code[k], (PCRE2_SPTR)p, n, at, 0, md, s->mctx);
      if (rc < 0) break; /* no match, or the match limit: next detector */
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
      PCRE2_SIZE a = ov[2 * d->group], b = ov[2 * d->group + 1];
      /* Go on after the match; after a key, from its value (--opts="--token=..." holds one). */
      PCRE2_SIZE next = d->kind == RC_SECRET_HIGH_ENTROPY && a != PCRE2_UNSET ? a : ov[1];
      at = next > at ? next : at + 1;
      if (a == PCRE2_UNSET || b <= a || covered(map, a, b) || !accept(d->kind, p, ov)) continue;
      cover(map, a, b);
      if (allow == -2) allow = allow_comment(p, n);
      if (allow == 1) {
        out->allowed++;
        continue;
      }
      rc_secret_finding_t x = {.kind = d->kind, .line = lineno, .col = column(p, a, &col_at, &col),
                               .allow_no_reason = allow == -1};
      make_prefix(p + a, b - a, x.prefix, sizeof(x.prefix));
      if (push(out, &x) != 0) return RC_ENOMEM;
    }
  }
  return 0;
}

int rc_secrets_scan(const rc_secrets_t *s, const char *text, size_t len,
                    rc_secret_findings_t *out) {
  if (text == NULL || len == 0) return 0;
  size_t first = out->n;
  /* The longest line sizes the byte map. */
  size_t longest = 0;
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t e = nl ? (size_t)(nl - text) : len;
    if (e - i > longest) longest = e - i;
    i = e + 1;
  }
  uint8_t *map = malloc((longest >> 3) + 1);
  pcre2_match_data *md = pcre2_match_data_create(4, NULL);
  int rc = map == NULL || md == NULL ? RC_ENOMEM : 0;
  int lineno = 1;
  for (size_t i = 0; rc == 0 && i < len; lineno++) {
    const char *nl = memchr(text + i, '\n', len - i);
    size_t e = nl ? (size_t)(nl - text) : len;
    size_t n = e - i;
    if (n > 0 && text[e - 1] == '\r') n--;
    rc = scan_line(s, md, text + i, n, lineno, map, out);
    i = e + 1;
  }
  pcre2_match_data_free(md);
  free(map);
  if (rc == 0 && out->n - first > 1)
    qsort(out->v + first, out->n - first, sizeof(*out->v), by_position);
  return rc;
}

/* The loaders' scanner: made once per process (compiling the patterns costs more than
 * scanning a rule file), kept until exit, shared by threads (scans only read it). If it could
 * not be made, each call makes its own and reports its own failure. */
static rc_secrets_t *shared;
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;
static void make_shared(void) {
  if (rc_secrets_new(&shared, NULL) != 0) shared = NULL;
}

int rc_secrets_scan_once(const char *text, size_t len, rc_secret_findings_t *out) {
  pthread_once(&shared_once, make_shared);
  if (shared != NULL) return rc_secrets_scan(shared, text, len, out);
  rc_secrets_t *s;
  int rc = rc_secrets_new(&s, NULL);
  if (rc != 0) return rc;
  rc = rc_secrets_scan(s, text, len, out);
  rc_secrets_free(s);
  return rc;
}

void rc_secret_findings_free(rc_secret_findings_t *f) {
  free(f->v);
  memset(f, 0, sizeof(*f));
}

/*------------------------------------------------------------------------------------------
 * Files
 *----------------------------------------------------------------------------------------*/

int rc_secrets_scan_file(const rc_secrets_t *s, const char *path, rc_secret_findings_t *out,
                         int *binary, rc_err_t *err) {
  *binary = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return rc_err_set(err, RC_EIO, "%s: %s", path, strerror(errno));
  rc_buf_t b;
  rc_buf_init(&b);
  int rc = rc_buf_read_file(&b, f, RC_SECRETS_MAX_FILE);
  fclose(f);
  if (rc == RC_ELIMIT)
    rc_err_set(err, RC_ELIMIT, "%s: larger than %u MiB, not scanned", path,
               RC_SECRETS_MAX_FILE >> 20);
  else if (rc == RC_ENOMEM)
    rc_err_set(err, RC_ENOMEM, "out of memory");
  else if (rc != 0)
    rc = rc_err_set(err, RC_EIO, "%s: read error", path);
  const char *buf = b.data;
  size_t len = b.len;
  if (rc == 0 && memchr(buf ? buf : "", 0, len < 8192 ? len : 8192) != NULL) *binary = 1;
  if (rc == 0 && !*binary) {
    rc = rc_secrets_scan(s, buf ? buf : "", len, out);
    if (rc != 0) rc_err_set(err, rc, "out of memory");
  }
  rc_buf_free(&b);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Names and messages
 *----------------------------------------------------------------------------------------*/

static const struct {
  const char *name, *hint;
} kinds[RC_SECRET_NKINDS] = {
    [RC_SECRET_PRIVATE_KEY] = {"private-key",
                               "keep the key in a file outside the repository and name the "
                               "file; rotate this key"},
    [RC_SECRET_SLACK_WEBHOOK] = {"slack-webhook-url",
                                 "the URL is the credential: keep it out of the repository and "
                                 "rotate it in Slack"},
    [RC_SECRET_SLACK_TOKEN] = {"slack-token",
                               "read the token from a variable or a file; revoke this one"},
    [RC_SECRET_GITHUB_TOKEN] = {"github-token",
                                "use secret_env:/secret_file:; revoke this token on GitHub"},
    [RC_SECRET_GITLAB_TOKEN] = {"gitlab-token",
                                "use secret_env:/secret_file:; revoke this token on GitLab"},
    [RC_SECRET_AWS_ACCESS_KEY] = {"aws-access-key-id",
                                  "use the environment or an instance role; deactivate this "
                                  "key"},
    [RC_SECRET_URL_CREDENTIALS] = {"url-credentials",
                                   "drop user:password@ from the URL and pass the credential "
                                   "from a variable or a file"},
    [RC_SECRET_BEARER] = {"bearer-token",
                          "send a token read from a variable or a file (token_env:/"
                          "token_file:)"},
    [RC_SECRET_AUTHORIZATION] = {"authorization-header",
                                 "build the header from a secret read from a variable or a "
                                 "file"},
    [RC_SECRET_PAGERDUTY_KEY] = {"pagerduty-key",
                                 "the routing key is the receiver's secret: secret_env: or "
                                 "secret_file:"},
    [RC_SECRET_HIGH_ENTROPY] = {"high-entropy-value",
                                "move the value to secret_env:/secret_file: (token_env:/"
                                "token_file: for identities)"},
};

const char *rc_secrets_kind_name(rc_secret_kind_t k) {
  return (unsigned)k < RC_SECRET_NKINDS ? kinds[k].name : "unknown";
}

const char *rc_secrets_hint(rc_secret_kind_t k) {
  return (unsigned)k < RC_SECRET_NKINDS ? kinds[k].hint : "";
}

int rc_secrets_message(const rc_secret_finding_t *f, char *buf, size_t cap) {
  return snprintf(buf, cap,
                  "literal secret (%s): use an environment variable or a file "
                  "(secret_env:/secret_file:, token_env:/token_file:)%s",
                  rc_secrets_kind_name(f->kind),
                  f->allow_no_reason ? "; a ripcord:allow-secret comment needs a reason" : "");
}
