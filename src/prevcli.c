/* prevcli.c: the previous-version command; see prevcli.h. One blocking libcurl request: a CLI,
 * not the daemon. */
#include "prevcli.h"

#include <stdio.h>
#include <string.h>

#include "apicli.h"
#include "buf.h"

static int usage(void) {
  fprintf(stderr, "usage: ripcord previous-version --service S --environment E "
                  "[--url http://127.0.0.1:9095] [--token-file F]\n");
  return 2;
}

int rc_prevcli_main(int argc, char **argv) {
  rc_apicli_t o = {.url = "http://127.0.0.1:9095"};
  const char *service = NULL, *env = NULL;
  for (int i = 1; i < argc; i++) {
    int c = rc_apicli_common_arg(&o, argc, argv, &i);
    if (c < 0) return usage();
    if (c > 0) continue;
    const char *a = argv[i], **dst = NULL;
    if (!strncmp(a, "--service", 9)) dst = &service, a += 9;
    else if (!strncmp(a, "--environment", 13)) dst = &env, a += 13;
    else return usage();
    if (*a == '=') *dst = a + 1;
    else if (*a == 0 && i + 1 < argc) *dst = argv[++i];
    else return usage();
  }
  if (service == NULL || env == NULL || !*service || !*env) return usage();
  char es[512], ee[512], path[1100];
  if (rc_apicli_escape(service, es, sizeof(es)) != 0 || rc_apicli_escape(env, ee, sizeof(ee)) != 0)
    return usage();
  snprintf(path, sizeof(path), "/api/v1/services/%s/%s/previous-version", es, ee);
  rc_buf_t body;
  rc_buf_init(&body);
  long status = 0;
  int rc = 1;
  if (rc_apicli_request(&o, "GET", path, NULL, &status, &body) == 0) {
    while (body.len > 0 && (body.data[body.len - 1] == '\n' || body.data[body.len - 1] == '\r'))
      body.data[--body.len] = 0;
    if (status == 200 && body.len > 0) {
      printf("%.*s\n", (int)body.len, body.data);
      rc = 0;
    } else {
      char what[300];
      snprintf(what, sizeof(what), "%.120s/%.120s", service, env);
      rc_apicli_print_error(what, status, &body);
    }
  }
  rc_buf_free(&body);
  return rc;
}
