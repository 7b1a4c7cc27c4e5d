/* secrets.h: the literal-secret detector (issue 7, item 6). It reads text (a rule file, the
 * server config, any file of the repository) and reports every literal secret it finds with
 * its line, column, kind and a fix hint, never the secret itself: a finding carries at most a
 * 4-character prefix of the value followed by "…", fewer for short values.
 *
 * Users: the rule loader (rules.c) and the config parser (config.c) refuse a file with a
 * finding, so `ripcord check` and `ripcord serve` (start and reload) agree; `ripcord check
 * --secrets-only FILE...` (check.c) is the repository scan that scripts/secret-scan and
 * scripts/pre-commit run. One implementation, one set of thresholds.
 *
 * What counts as a literal secret (kinds, in the order they are tried; a later detector does
 * not report a span an earlier one already reported):
 *   private-key          a "-----BEGIN ... PRIVATE KEY-----" line (RSA, EC, OPENSSH, PGP ...
 *                        BLOCK, ENCRYPTED): the column of its first dash.
 *   slack-webhook-url    https://hooks.slack.com/services/T<id>/B<id>/<secret>: team and
 *                        channel ids of 6+ upper-case letters or digits, a secret of 16+
 *                        letters or digits. Column: the URL's first character.
 *   slack-token          xoxa-, xoxb-, xoxp-, xoxr-, xoxs- and 10+ more characters of
 *                        letters, digits and dashes, at least one a digit (real tokens carry
 *                        numeric ids; a placeholder such as xoxb- then "your-token-here" does not).
 *   github-token         ghp_, gho_, ghu_, ghs_, ghr_ and 36+ letters or digits; github_pat_
 *                        and 40+ letters, digits or underscores.
 *   gitlab-token         glpat- and 20+ letters, digits, '_' or '-'.
 *   aws-access-key-id    AKIA or ASIA and exactly 16 more upper-case letters or digits (20 in
 *                        all), not inside a longer run of them.
 *   url-credentials      scheme://user:password@host: the column of the password. Not when the
 *                        password (or the whole URL) is a placeholder, see below.
 *   bearer-token         "Bearer <token>" (any case) with a token of 20+ RFC 6750 token68
 *                        characters that looks like one (below).
 *   authorization-header an "Authorization:" (or authorization= / "authorization": ) value of
 *                        12+ characters other than Bearer (Basic, Token, a bare value) that
 *                        looks like a token: at least two of lower case, upper case and
 *                        digits, and 3.0+ bits of entropy per character (as bearer-token).
 *   pagerduty-key        a value of exactly 32 letters or digits, at least one of each, under
 *                        a key named like routing_key, integration_key or service_key (-, _ or
 *                        nothing between, any case).
 *   high-entropy-value   a value of 20+ characters, Shannon entropy >= 3.5 bits per character
 *                        (RC_SECRETS_MIN_ENTROPY; >= 3.0 for hex digits only), at least two of
 *                        lower case, upper case and digits, not a SCREAMING_SNAKE or
 *                        snake_case name, not a path or a URL, under a key whose name suggests
 *                        a secret: a word of the name (split at _ - . and camelCase) is secret,
 *                        token, password, passwd, pwd, passphrase, apikey, key, credential(s),
 *                        creds, auth, oauth, authorization or private, or a word contains
 *                        secret, token, password, passwd, apikey or credential (accesstoken).
 *                        A name that also has a word saying the value is not the secret itself
 *                        (env, file, path, url, id, name, public, hash, digest, checksum,
 *                        fingerprint, sha1, sha256, sha512, md5, dedup, idempotency, ...) is
 *                        not a secret name: `secret_env: VAR`, `token_file: /run/x`,
 *                        `dedup_key: <sha256>`. Forms: YAML `key: value`, `key=value` (env
 *                        files, flags, query strings) and JSON `"key": "value"`, quoted or not.
 *                        Keys are at most 64 characters; values are judged on their first 512.
 *
 * Why these numbers: entropy is measured over the value's own characters, so a short string
 * cannot show its alphabet's full entropy. 20 random letters and digits measure 3.3 to 4.5
 * bits (fewer than 1 in 500 below 3.5; none at 24+), while words and names measure 2.5 to 3.8.
 * Hex tops out at 4 bits: 20 random hex digits measure 2.5 to 3.9 (3% below 3.0, and none
 * at 40+ characters), hence its own threshold. Names that measure high are kept out by the
 * two-classes rule (this_is_a_long_value) and the name shapes (RIPCORD_TOKEN_V2).
 *
 * Placeholders are never findings: a value that starts with '$' ($VAR, ${VAR}, $(cmd)), '{'
 * ({{template}}, {var}), '<' (<password>), '%' (%s); one that contains "example", "xxx",
 * "***", "...", "…", "placeholder", "changeme", "redacted", "dummy", "your_" or "your-"
 * (any case); one that is a single character repeated, or a shorter unit repeated
 * ("0123456789abcdef0123456789abcdef"); for url-credentials also the common placeholder
 * passwords (password, passwd, pass, pwd, pw, secret, token), and URLs whose user is a
 * placeholder or whose host is one or is host, hostname, server or domain. Under a secret
 * key, a value that starts with "sha256:", "sha512:" or "sha1:" is a digest reference, one
 * that starts with '/', "./", "../", "~/" or "file:" a path, and one with "://" a URL.
 *
 * The allow comment: "ripcord:allow-secret REASON" after a comment mark ('#', "//" or
 * slash-star) on the same line suppresses every finding of that line. REASON is mandatory
 * (at least one letter or digit, separated from the marker by white space): a marker without
 * one suppresses nothing, and the line's findings say so (allow_no_reason).
 *
 * Limits: the scan is line by line, so a secret split over lines (a YAML block scalar under a
 * secret key) is seen only when its own shape is known (a private key block, a token).
 * Columns count characters (UTF-8 code points, a tab is one), as libyaml's marks do, so they
 * match the rule loader's diagnostics. A regex that hits PCRE2's match limit on a pathological
 * line skips that line for that detector rather than failing the scan.
 *
 * Ownership and threads: a scanner (rc_secrets_new/rc_secrets_free) holds the compiled
 * patterns and is read-only after construction, so threads may share one (each scan call
 * allocates its own match data). Findings belong to the caller's rc_secret_findings_t (free
 * with rc_secret_findings_free).
 */
#ifndef RC_SECRETS_H
#define RC_SECRETS_H

#include <stddef.h>

#include "rc.h"

/* Shannon entropy, bits per character, a high-entropy-value must reach; a value of hex digits
 * only (at most 4 bits per character) needs less. */
#define RC_SECRETS_MIN_ENTROPY 3.5
#define RC_SECRETS_MIN_ENTROPY_HEX 3.0
/* Minimum length of a high-entropy-value and of a bearer token. */
#define RC_SECRETS_MIN_LEN 20
/* Files larger than this are not scanned by rc_secrets_scan_file (RC_ELIMIT). */
#define RC_SECRETS_MAX_FILE (16u << 20)

typedef enum {
  RC_SECRET_PRIVATE_KEY = 0,
  RC_SECRET_SLACK_WEBHOOK,
  RC_SECRET_SLACK_TOKEN,
  RC_SECRET_GITHUB_TOKEN,
  RC_SECRET_GITLAB_TOKEN,
  RC_SECRET_AWS_ACCESS_KEY,
  RC_SECRET_URL_CREDENTIALS,
  RC_SECRET_BEARER,
  RC_SECRET_AUTHORIZATION,
  RC_SECRET_PAGERDUTY_KEY,
  RC_SECRET_HIGH_ENTROPY,
  RC_SECRET_NKINDS
} rc_secret_kind_t;

typedef struct rc_secret_finding {
  rc_secret_kind_t kind;
  int line, col;       /* 1-based; col counts characters */
  int allow_no_reason; /* the line has a ripcord:allow-secret marker without a reason */
  char prefix[16];     /* up to 4 characters of the secret and "…" (UTF-8), NUL-terminated */
} rc_secret_finding_t;

typedef struct rc_secret_findings {
  rc_secret_finding_t *v;
  size_t n, cap;
  size_t allowed; /* findings suppressed by an allow comment with a reason */
} rc_secret_findings_t;

typedef struct rc_secrets rc_secrets_t;

/* Compiles the detectors' patterns. Returns 0 with *out set (free with rc_secrets_free), or
 * RC_ENOMEM / RC_EINVAL (a pattern did not compile: a bug, reported in err). */
int rc_secrets_new(rc_secrets_t **out, rc_err_t *err);
void rc_secrets_free(rc_secrets_t *s); /* NULL is a no-op */

/* Scans len bytes of text (NUL bytes and invalid UTF-8 are fine) and appends the findings in
 * line, then column order to *out. Returns 0 or RC_ENOMEM. */
int rc_secrets_scan(const rc_secrets_t *s, const char *text, size_t len,
                    rc_secret_findings_t *out);
/* The same with the process's shared scanner, made on first use and kept until exit (the
 * loaders, which scan a file now and then from any thread). */
int rc_secrets_scan_once(const char *text, size_t len, rc_secret_findings_t *out);

/* Reads a file and scans it. *binary is set to 1 (and nothing scanned) when the first 8 KiB
 * hold a NUL byte. Returns 0, RC_EIO (unreadable, reason in err), RC_ELIMIT (larger than
 * RC_SECRETS_MAX_FILE) or RC_ENOMEM. */
int rc_secrets_scan_file(const rc_secrets_t *s, const char *path, rc_secret_findings_t *out,
                         int *binary, rc_err_t *err);

void rc_secret_findings_free(rc_secret_findings_t *f);

/* "slack-webhook-url", "high-entropy-value", ...: stable names for output and tests. */
const char *rc_secrets_kind_name(rc_secret_kind_t k);
/* One sentence on how to fix a finding of that kind (static string). */
const char *rc_secrets_hint(rc_secret_kind_t k);

/* The message the loaders and `ripcord check` give a finding: "literal secret (<kind>): use
 * an environment variable or a file (secret_env:/secret_file:, token_env:/token_file:)", with
 * a note when the line's allow comment has no reason. Returns snprintf's count. */
int rc_secrets_message(const rc_secret_finding_t *f, char *buf, size_t cap);

#endif
