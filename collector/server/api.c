/*
 * The query API (JSON) and profile uploads:
 *   GET  /healthz
 *   GET  /api/logs?logstore=&project=&request_id=&instance=&q=&from=&to=&limit=
 *   GET  /api/metrics?name=&instance=&from=&to=&limit=
 *   GET  /api/profiles?instance=&kind=&from=&to=&limit=   (list)
 *   GET  /api/profiles/{id}                                (pprof bytes)
 *   GET  /api/spikes?instance=&from=&to=&limit=   spike reports + profile ids
 *   GET  /api/stats
 *   POST /api/profiles?instance=&kind=&time=   body: pprof (gzip'd or not),
 *        signed like PutLogs (SLS v1, Content-Type application/octet-stream)
 * from/to are Unix ns. Reads need no key from a loopback peer; from other
 * peers (--allow-remote) they need "Authorization: Bearer ID:SECRET".
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_BYTES (64u << 20)
#define PARAM_MAX 512

static int64_t num_param(struct evhttp_request *req, const char *k) {
  char buf[32];
  const char *v = srv_query(req, k, buf, sizeof buf);
  return v ? strtoll(v, NULL, 10) : 0;
}

static void parse_query(struct evhttp_request *req, store_query *q,
                        char p[7][PARAM_MAX]) {
  static const char *const keys[] = {
      "project", "logstore", "request_id", "instance", "q", "name", "kind"};
  const char *v[7];
  for (int i = 0; i < 7; i++)
    v[i] = srv_query(req, keys[i], p[i], PARAM_MAX);
  *q = (store_query){.project = v[0],
                     .logstore = v[1],
                     .request_id = v[2],
                     .instance = v[3],
                     .text = v[4],
                     .name = v[5] ? v[5] : v[6],
                     .from_ns = num_param(req, "from"),
                     .to_ns = num_param(req, "to"),
                     .limit = (int)num_param(req, "limit")};
}

static bool loopback_peer(struct evhttp_request *req) {
  char *addr = NULL;
  ev_uint16_t port;
  struct evhttp_connection *c = evhttp_request_get_connection(req);
  if (c == NULL)
    return false;
  evhttp_connection_get_peer(c, &addr, &port);
  return addr && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
                  strncmp(addr, "::ffff:127.", 11) == 0);
}

static void answer_json(srv *s, struct evhttp_request *req, int rc, fnp_buf *j,
                        const fnp_error *err) {
  if (rc < 0)
    srv_reply_error(s, req, 500, "InternalServerError", "%s", err->msg);
  else
    srv_reply(s, req, 200, "application/json", j->data, j->len);
}

static void get_profile(srv *s, struct evhttp_request *req, const char *id) {
  char *end;
  long long n = strtoll(id, &end, 10);
  if (*id == '\0' || *end != '\0' || n <= 0) {
    srv_reply_error(s, req, 400, "ParameterInvalid", "bad profile id");
    return;
  }
  uint8_t *data = NULL;
  size_t len = 0;
  fnp_error err = {0};
  int rc = store_get_profile(s->db, n, &data, &len, &err);
  if (rc == FNP_ENOTFOUND)
    srv_reply_error(s, req, 404, "ProfileNotExist", "%s", err.msg);
  else if (rc < 0)
    srv_reply_error(s, req, 500, "InternalServerError", "%s", err.msg);
  else
    srv_reply(s, req, 200, "application/octet-stream", data, len);
  free(data);
}

/* A pprof file starts with gzip's magic or a Profile field tag (1..14, wire
 * type 0 or 2). The store keeps bytes; tools validate them fully. */
static bool looks_like_pprof(const uint8_t *d, size_t len) {
  if (len >= 2 && d[0] == 0x1f && d[1] == 0x8b)
    return true;
  unsigned field = d[0] >> 3, wt = d[0] & 7;
  return len >= 2 && field >= 1 && field <= 14 && (wt == 0 || wt == 2);
}

static void put_profile(srv *s, struct evhttp_request *req) {
  size_t len;
  const uint8_t *body = srv_body(req, &len);
  char resource[2048], inst[PARAM_MAX], kind[PARAM_MAX], t[32];
  if (srv_resource(req, "/api/profiles", resource, sizeof resource) < 0) {
    srv_reply_error(s, req, 400, "ParameterInvalid", "URI too long");
    return;
  }
  if (srv_auth_sls(s, req, resource, body, len) < 0)
    return;
  if (!looks_like_pprof(body, len)) {
    srv_reply_error(s, req, 400, "PostBodyInvalid",
                    "body is not a pprof profile");
    return;
  }
  const char *ts = srv_query(req, "time", t, sizeof t);
  store_profile p = {.project = "default",
                     .instance = srv_query(req, "instance", inst, sizeof inst),
                     .kind = srv_query(req, "kind", kind, sizeof kind),
                     .time_ns = ts ? strtoll(ts, NULL, 10) : srv_now_ns()};
  int64_t id;
  bool dup;
  fnp_error err = {0};
  if (store_put_profile(s->db, &p, body, len, &id, &dup, &err) < 0) {
    srv_reply_error(s, req, 503, "ServerBusy", "%s", err.msg);
    return;
  }
  char out[64];
  int n = snprintf(out, sizeof out, "{\"id\":%lld,\"duplicate\":%s}",
                   (long long)id, dup ? "true" : "false");
  srv_reply(s, req, 200, "application/json", out, (size_t)n);
}

static void stats(srv *s, struct evhttp_request *req) {
  char out[320];
  int n = snprintf(out, sizeof out,
                   "{\"batches\":%llu,\"records\":%llu,\"duplicates\":%llu,"
                   "\"rejected\":%llu,\"live_connections\":%d}",
                   (unsigned long long)s->stats.batches,
                   (unsigned long long)s->stats.records,
                   (unsigned long long)s->stats.duplicates,
                   (unsigned long long)s->stats.rejected, s->live_connections);
  srv_reply(s, req, 200, "application/json", out, (size_t)n);
}

static bool read_allowed(srv *s, struct evhttp_request *req) {
  if (s->n_keys == 0 || loopback_peer(req))
    return true;
  return srv_auth_otlp(s, req, "/api", NULL, 0) == 0;
}

void srv_api(srv *s, struct evhttp_request *req, const char *path) {
  if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
    put_profile(s, req);
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    srv_reply(s, req, 200, "application/json", "{\"ok\":true}", 11);
    return;
  }
  if (!read_allowed(s, req))
    return;
  if (strncmp(path, "/api/ui/", 8) == 0) {
    srv_api_ui(s, req, path);
    return;
  }
  if (strncmp(path, "/api/profiles/", 14) == 0) {
    get_profile(s, req, path + 14);
    return;
  }
  if (strcmp(path, "/api/stats") == 0) {
    stats(s, req);
    return;
  }
  char p[7][PARAM_MAX];
  store_query q;
  parse_query(req, &q, p);
  fnp_buf j;
  fnp_buf_init(&j, JSON_MAX_BYTES);
  fnp_error err = {0};
  int rc;
  if (strcmp(path, "/api/logs") == 0)
    rc = store_query_logs(s->db, &q, &j, &err);
  else if (strcmp(path, "/api/metrics") == 0)
    rc = store_query_metrics(s->db, &q, &j, &err);
  else if (strcmp(path, "/api/profiles") == 0)
    rc = store_list_profiles(s->db, &q, &j, &err);
  else if (strcmp(path, "/api/spikes") == 0)
    rc = store_query_spikes(s->db, &q, &j, &err);
  else {
    fnp_buf_destroy(&j);
    {
      srv_reply_error(s, req, 404, "ParameterInvalid", "no such API");
      return;
    }
  }
  answer_json(s, req, rc, &j, &err);
  fnp_buf_destroy(&j);
}
