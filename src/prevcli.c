/* prevcli.c: the previous-version command; see prevcli.h. One blocking libcurl request: a CLI,
 * not the daemon. */
#include "prevcli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
  rc_buf_append(ctx, p, size * n);
  return size * n;
}

static int usage(void) {
  fprintf(stderr, "usage: ripcord previous-version --service S --environment E "
                  "[--url http://127.0.0.1:9095]\n");
  return 2;
}

int rc_prevcli_main(int argc, char **argv) {
  const char *service = NULL, *env = NULL, *url = "http://127.0.0.1:9095";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], **dst = NULL;
    if (!strncmp(a, "--service", 9)) dst = &service, a += 9;
    else if (!strncmp(a, "--environment", 13)) dst = &env, a += 13;
    else if (!strncmp(a, "--url", 5)) dst = &url, a += 5;
    else return usage();
    if (*a == '=') *dst = a + 1;
    else if (*a == 0 && i + 1 < argc) *dst = argv[++i];
    else return usage();
  }
  if (service == NULL || env == NULL || !*service || !*env) return usage();
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fprintf(stderr, "ripcord: error: cannot initialise libcurl\n");
    return 1;
  }
  CURL *c = curl_easy_init();
  char *es = c ? curl_easy_escape(c, service, 0) : NULL;
  char *ee = c ? curl_easy_escape(c, env, 0) : NULL;
  rc_buf_t full, body;
  rc_buf_init(&full);
  rc_buf_init(&body);
  int rc = 1;
  if (es && ee) {
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/') ul--;
    rc_buf_printf(&full, "%.*s/api/v1/services/%s/%s/previous-version", (int)ul, url, es, ee);
    curl_easy_setopt(c, CURLOPT_URL, full.data);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    while (body.len > 0 && (body.data[body.len - 1] == '\n' || body.data[body.len - 1] == '\r'))
      body.data[--body.len] = 0;
    if (cc != CURLE_OK) {
      fprintf(stderr, "ripcord: error: %s: %s\n", full.data, curl_easy_strerror(cc));
    } else if (status == 200 && body.len > 0) {
      printf("%.*s\n", (int)body.len, body.data);
      rc = 0;
    } else {
      fprintf(stderr, "ripcord: error: %s/%s: HTTP %ld: %.*s\n", service, env, status,
              (int)(body.len > 300 ? 300 : body.len), body.data ? body.data : "");
    }
  }
  curl_free(es);
  curl_free(ee);
  rc_buf_free(&full);
  rc_buf_free(&body);
  if (c) curl_easy_cleanup(c);
  curl_global_cleanup();
  return rc;
}
