/* apicli.c: the CLI's HTTP client, the approval commands and `ripcord services`; see
 * apicli.h. */
#include "apicli.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_MAX 1024

int rc_apicli_common_arg(rc_apicli_t *o, int argc, char **argv, int *i) {
  const char *a = argv[*i], **dst = NULL;
  if (!strncmp(a, "--url", 5) && (a[5] == 0 || a[5] == '=')) dst = &o->url, a += 5;
  else if (!strncmp(a, "--token-file", 12) && (a[12] == 0 || a[12] == '=')) dst = &o->token_file, a += 12;
  else return 0;
  if (*a == '=') *dst = a + 1;
  else if (*i + 1 < argc) *dst = argv[++*i];
  else return -1;
  return **dst ? 1 : -1;
}

/* The token, from --token-file or RIPCORD_TOKEN; out empty when neither. -1 when the file
 * cannot be read. Trailing whitespace (a file's newline) is dropped. */
static int read_token(const rc_apicli_t *o, char *out, size_t cap) {
  out[0] = 0;
  if (o->token_file != NULL) {
    int fd = open(o->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "ripcord: error: --token-file %s: %s\n", o->token_file, strerror(errno));
      return -1;
    }
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    if (n < 0) {
      fprintf(stderr, "ripcord: error: --token-file %s: %s\n", o->token_file, strerror(errno));
      return -1;
    }
    out[n] = 0;
  } else {
    const char *env = getenv("RIPCORD_TOKEN");
    if (env != NULL) snprintf(out, cap, "%s", env);
  }
  size_t n = strlen(out);
  while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' ||
                   out[n - 1] == '\t'))
    out[--n] = 0;
  return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  rc_buf_append(ctx, p, size * n);
  return size * n;
}

int rc_apicli_request(const rc_apicli_t *o, const char *method, const char *path,
                      const char *body, long *status, rc_buf_t *out) {
  char token[TOKEN_MAX + 1], auth[TOKEN_MAX + 32];
  *status = 0;
  if (read_token(o, token, sizeof(token)) != 0) return -1;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fprintf(stderr, "ripcord: error: cannot initialise libcurl\n");
    return -1;
  }
  CURL *c = curl_easy_init();
  rc_buf_t full;
  rc_buf_init(&full);
  size_t ul = strlen(o->url);
  while (ul > 0 && o->url[ul - 1] == '/') ul--;
  rc_buf_printf(&full, "%.*s%s", (int)ul, o->url, path);
  struct curl_slist *hdrs = NULL;
  if (token[0]) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    hdrs = curl_slist_append(hdrs, auth);
  }
  if (body != NULL) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  int rc = -1;
  if (c != NULL) {
    curl_easy_setopt(c, CURLOPT_URL, full.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    else if (strcmp(method, "POST") == 0) curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK) fprintf(stderr, "ripcord: error: %s: %s\n", full.data, curl_easy_strerror(cc));
    else rc = 0;
    curl_easy_cleanup(c);
  }
  rc_buf_append(out, "", 1); /* NUL-terminate */
  out->len--;
  curl_slist_free_all(hdrs);
  OPENSSL_cleanse(token, sizeof(token));
  OPENSSL_cleanse(auth, sizeof(auth));
  rc_buf_free(&full);
  curl_global_cleanup();
  return rc;
}

int rc_apicli_escape(const char *s, char *out, size_t cap) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '.' || ch == '_' || ch == '~';
    if (n + (plain ? 1 : 3) >= cap) return -1;
    if (plain) {
      out[n++] = (char)ch;
    } else {
      out[n++] = '%';
      out[n++] = hex[ch >> 4];
      out[n++] = hex[ch & 15];
    }
  }
  out[n] = 0;
  return 0;
}

void rc_apicli_print_error(const char *what, long status, const rc_buf_t *body) {
  json_t *doc = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
  const char *msg = json_string_value(json_object_get(doc, "error"));
  if (msg != NULL) {
    fprintf(stderr, "ripcord: error: %s: HTTP %ld: %s\n", what, status, msg);
  } else {
    size_t n = body->len;
    while (n > 0 && (body->data[n - 1] == '\n' || body->data[n - 1] == '\r')) n--;
    fprintf(stderr, "ripcord: error: %s: HTTP %ld: %.*s\n", what, status, (int)(n > 300 ? 300 : n),
            body->data ? body->data : "");
  }
  json_decref(doc);
}

static void fmt_time(json_int_t ms, char *out, size_t cap) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*------------------------------------------------------------------------------------------
 * ripcord rollback
 *----------------------------------------------------------------------------------------*/

static int rollback_usage(void) {
  fprintf(stderr, "usage: ripcord rollback --service S --environment E --reason TEXT "
                  "[--url http://127.0.0.1:9095] [--token-file F]\n"
                  "  (the token: RIPCORD_TOKEN or --token-file; role deployer)\n");
  return 2;
}

int rc_apicli_rollback_main(int argc, char **argv) {
  rc_apicli_t o = {.url = "http://127.0.0.1:9095"};
  const char *service = NULL, *env = NULL, *reason = NULL;
  for (int i = 1; i < argc; i++) {
    int c = rc_apicli_common_arg(&o, argc, argv, &i);
    if (c < 0) return rollback_usage();
    if (c > 0) continue;
    const char *a = argv[i], **dst = NULL;
    if (!strncmp(a, "--service", 9)) dst = &service, a += 9;
    else if (!strncmp(a, "--environment", 13)) dst = &env, a += 13;
    else if (!strncmp(a, "--reason", 8)) dst = &reason, a += 8;
    else return rollback_usage();
    if (*a == '=') *dst = a + 1;
    else if (*a == 0 && i + 1 < argc) *dst = argv[++i];
    else return rollback_usage();
  }
  if (!service || !env || !reason || !*service || !*env || !*reason) return rollback_usage();
  json_t *req = json_pack("{s:s,s:s,s:s}", "service", service, "environment", env, "reason",
                          reason);
  char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  if (body == NULL) return 1;
  rc_buf_t out;
  rc_buf_init(&out);
  long status = 0;
  int rc = 1;
  if (rc_apicli_request(&o, "POST", "/api/v1/rollbacks", body, &status, &out) == 0) {
    if (status == 202) {
      json_t *doc = json_loadb(out.data, out.len, 0, NULL);
      json_t *d = json_object_get(doc, "data"), *ap = json_object_get(d, "approval");
      char t[40] = "?";
      fmt_time(json_integer_value(json_object_get(ap, "expires_at")), t, sizeof(t));
      printf("rollback request %lld: %s/%s %s -> %s, waiting for %lld approval(s) until %s\n",
             (long long)json_integer_value(json_object_get(d, "id")), service, env,
             json_string_value(json_object_get(json_object_get(d, "from"), "version")),
             json_string_value(json_object_get(json_object_get(d, "to"), "version")),
             (long long)json_integer_value(json_object_get(ap, "required")), t);
      json_decref(doc);
      rc = 0;
    } else {
      rc_apicli_print_error("rollback", status, &out);
    }
  }
  free(body);
  rc_buf_free(&out);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * ripcord approve | reject
 *----------------------------------------------------------------------------------------*/

static int vote_usage(const char *verb) {
  fprintf(stderr, "usage: ripcord %s ID [--comment TEXT] [--url http://127.0.0.1:9095] "
                  "[--token-file F]\n  (the token: RIPCORD_TOKEN or --token-file; role approver)\n",
          verb);
  return 2;
}

int rc_apicli_vote_main(int argc, char **argv) {
  const char *verb = strcmp(argv[0], "reject") == 0 ? "reject" : "approve";
  rc_apicli_t o = {.url = "http://127.0.0.1:9095"};
  const char *id = NULL, *comment = NULL;
  for (int i = 1; i < argc; i++) {
    int c = rc_apicli_common_arg(&o, argc, argv, &i);
    if (c < 0) return vote_usage(verb);
    if (c > 0) continue;
    const char *a = argv[i];
    if (!strncmp(a, "--comment", 9)) {
      a += 9;
      if (*a == '=') comment = a + 1;
      else if (*a == 0 && i + 1 < argc) comment = argv[++i];
      else return vote_usage(verb);
    } else if (a[0] != '-' && id == NULL) {
      id = a;
    } else {
      return vote_usage(verb);
    }
  }
  if (id == NULL || !*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 15)
    return vote_usage(verb);
  char path[96];
  snprintf(path, sizeof(path), "/api/v1/rollbacks/%s/%s", id, verb);
  json_t *req = comment ? json_pack("{s:s}", "comment", comment) : NULL;
  char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  rc_buf_t out;
  rc_buf_init(&out);
  long status = 0;
  int rc = 1;
  if (rc_apicli_request(&o, "POST", path, body, &status, &out) == 0) {
    if (status == 200) {
      json_t *doc = json_loadb(out.data, out.len, 0, NULL);
      json_t *d = json_object_get(doc, "data");
      printf("rollback request %s: %s (%lld of %lld approvals)\n", id,
             json_string_value(json_object_get(d, "state")),
             (long long)json_integer_value(json_object_get(d, "approvals")),
             (long long)json_integer_value(json_object_get(d, "required")));
      json_decref(doc);
      rc = 0;
    } else {
      char what[40];
      snprintf(what, sizeof(what), "%s %s", verb, id);
      rc_apicli_print_error(what, status, &out);
    }
  }
  free(body);
  rc_buf_free(&out);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * ripcord services
 *----------------------------------------------------------------------------------------*/

static int services_usage(void) {
  fprintf(stderr, "usage: ripcord services [--url http://127.0.0.1:9095] [--token-file F]\n"
                  "  (the token: RIPCORD_TOKEN or --token-file; any reading role)\n");
  return 2;
}

int rc_apicli_services_main(int argc, char **argv) {
  rc_apicli_t o = {.url = "http://127.0.0.1:9095"};
  for (int i = 1; i < argc; i++)
    if (rc_apicli_common_arg(&o, argc, argv, &i) <= 0) return services_usage();
  rc_buf_t out;
  rc_buf_init(&out);
  long status = 0;
  int rc = 1;
  if (rc_apicli_request(&o, "GET", "/api/v1/services", NULL, &status, &out) == 0) {
    json_t *doc = status == 200 ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    json_t *data = json_object_get(doc, "data");
    if (json_is_array(data)) {
      /* Tab-separated, one target a line, for people and for cut/awk alike. */
      printf("SERVICE\tENVIRONMENT\tCURRENT\tSINCE\tPREVIOUS\tDEPLOYS\n");
      size_t i;
      json_t *s;
      json_array_foreach(data, i, s) {
        json_t *cur = json_object_get(s, "current"), *prev = json_object_get(s, "previous");
        char since[40] = "-";
        if (json_is_integer(json_object_get(cur, "started_at")))
          fmt_time(json_integer_value(json_object_get(cur, "started_at")), since, sizeof(since));
        const char *pv = json_string_value(json_object_get(prev, "version"));
        printf("%s\t%s\t%s\t%s\t%s\t%lld\n", json_string_value(json_object_get(s, "service")),
               json_string_value(json_object_get(s, "environment")),
               json_string_value(json_object_get(cur, "version")), since, pv ? pv : "-",
               (long long)json_integer_value(json_object_get(s, "deploys")));
      }
      rc = 0;
    } else {
      rc_apicli_print_error("services", status, &out);
    }
    json_decref(doc);
  }
  rc_buf_free(&out);
  return rc;
}
