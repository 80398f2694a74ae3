/*
 * The JSON the web page reads, beside the query API (api.c routes here after
 * its access check, so the same rules apply):
 *   GET /api/ui/instances?to=&limit=          instance list, newest first
 *   GET /api/ui/records?instance=&kinds=a,b&from=&to=&limit=&order=desc
 *   GET /api/ui/flame?id=N[&base=M][&sample=TYPE]
 * flame decodes a stored profile, symbolizes it from the files its mappings
 * name (this host's binaries; unresolved frames keep module+offset), takes
 * id minus base when base is given, and answers the call tree as
 * {name,value,delta,children} with value = |growth| for a diff. Drawing is
 * the page's job (collector/web/).
 */
#include "server.h"

#include <fnprof/pprof.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UI_JSON_MAX_BYTES (64u << 20)
#define UI_PARAM_MAX 512
/* A tree past this many nodes is refused, not drawn: no browser renders it
 * usefully, and the cap bounds this request's memory. */
#define TREE_MAX_NODES 200000
/* Deeper frames are cut: pprof stacks from the agent are far shallower, and
 * the JSON writer recurses once per level. */
#define TREE_MAX_DEPTH 256
#define FRAME_NAME_MAX 256

typedef struct tnode {
  char *name;
  int64_t value, delta;
  int32_t child, next; /* first child, next sibling; -1 for none */
} tnode;

typedef struct tree {
  tnode *n;
  size_t len, cap;
} tree;

static int64_t ui_num(struct evhttp_request *req, const char *k) {
  char buf[32];
  const char *v = srv_query(req, k, buf, sizeof buf);
  return v ? strtoll(v, NULL, 10) : 0;
}

static int tree_add(tree *t, const char *name, int32_t *out) {
  if (t->len == TREE_MAX_NODES)
    return FNP_ETOOBIG;
  if (t->len == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 256;
    tnode *n = realloc(t->n, cap * sizeof *n);
    if (n == NULL)
      return -ENOMEM;
    t->n = n;
    t->cap = cap;
  }
  char *copy = strdup(name);
  if (copy == NULL)
    return -ENOMEM;
  t->n[t->len] = (tnode){copy, 0, 0, -1, -1};
  *out = (int32_t)t->len++;
  return 0;
}

static void tree_destroy(tree *t) {
  for (size_t i = 0; i < t->len; i++)
    free(t->n[i].name);
  free(t->n);
}

/* The child of parent named name, made if missing. Linear in the number of
 * siblings, which stays small in call trees. */
static int tree_child(tree *t, int32_t parent, const char *name, int32_t *out) {
  for (int32_t c = t->n[parent].child; c >= 0; c = t->n[c].next)
    if (strcmp(t->n[c].name, name) == 0) {
      *out = c;
      return 0;
    }
  int rc = tree_add(t, name, out);
  if (rc == 0) {
    t->n[*out].next = t->n[parent].child;
    t->n[parent].child = *out;
  }
  return rc;
}

/* Function name; else "module+0xoffset" from the mapping; else the address. */
static const char *frame_name(const pprof_profile *p, const pprof_location *l,
                              size_t line, char *buf, size_t cap) {
  const pprof_mapping *m;
  if (line < l->n_line || l->mapping_id == 0 ||
      (m = pprof_find_mapping(p, l->mapping_id)) == NULL || m->filename == 0)
    return pprof_frame_name(p, l, line, buf, cap);
  const char *file = pprof_str(p, m->filename);
  const char *base = strrchr(file, '/');
  snprintf(buf, cap, "%s+0x%llx", base ? base + 1 : file,
           (unsigned long long)(l->address - m->memory_start + m->file_offset));
  return buf;
}

/* Adds one sample, root first: locations are stored leaf first, and each
 * location's lines innermost first. */
static int tree_sample(tree *t, const pprof_profile *p, const pprof_sample *s,
                       int64_t v) {
  char buf[FRAME_NAME_MAX];
  int32_t at = 0, depth = 0;
  int64_t mag = v < 0 ? -v : v;
  t->n[0].value += mag;
  t->n[0].delta += v;
  for (size_t i = s->n_location; i-- > 0 && depth < TREE_MAX_DEPTH;) {
    const pprof_location *l = pprof_find_location(p, s->location_id[i]);
    if (l == NULL)
      continue;
    size_t lines = l->n_line ? l->n_line : 1;
    for (size_t j = lines; j-- > 0 && depth < TREE_MAX_DEPTH; depth++) {
      int rc = tree_child(t, at, frame_name(p, l, j, buf, sizeof buf), &at);
      if (rc < 0)
        return rc;
      t->n[at].value += mag;
      t->n[at].delta += v;
    }
  }
  return 0;
}

static int tree_json(const tree *t, int32_t i, fnp_buf *j, int depth) {
  int rc = fnp_buf_append(j, "{\"name\":", 8);
  rc = rc ? rc : export__json_str(j, t->n[i].name, SIZE_MAX);
  rc = rc ? rc
          : fnp_buf_printf(j, ",\"value\":%lld,\"delta\":%lld",
                           (long long)t->n[i].value, (long long)t->n[i].delta);
  if (rc == 0 && t->n[i].child >= 0 && depth < TREE_MAX_DEPTH + 1) {
    rc = fnp_buf_append(j, ",\"children\":[", 13);
    bool first = true;
    for (int32_t c = t->n[i].child; c >= 0 && rc == 0; c = t->n[c].next) {
      if (t->n[c].value == 0) /* cancelled out in a diff: nothing to draw */
        continue;
      rc = first ? 0 : fnp_buf_append(j, ",", 1);
      rc = rc ? rc : tree_json(t, c, j, depth + 1);
      first = false;
    }
    rc = rc ? rc : fnp_buf_append(j, "]", 1);
  }
  return rc ? rc : fnp_buf_append(j, "}", 1);
}

/* Loads and symbolizes one stored profile. Symbolization is best effort:
 * a missing binary only leaves module+offset names. */
static int load_profile(srv *s, int64_t id, pprof_profile **out,
                        fnp_error *err) {
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = store_get_profile(s->db, id, &data, &len, err);
  if (rc < 0)
    return rc;
  pprof_decode_opts o = {.max_raw_bytes = s->lim.max_raw_bytes};
  fnp_error derr = {0};
  rc = pprof_decode(data, len, &o, out, &derr);
  free(data);
  if (rc < 0)
    return fnp_fail(err, FNP_EPARSE, "profile %lld: %s", (long long)id,
                    derr.msg);
  fnp_error serr = {0};
  if (pprof_symbolize(*out, NULL, NULL, NULL, &serr) < 0)
    fprintf(stderr, "fnprof-collector: symbolize profile %lld: %s\n",
            (long long)id, serr.msg);
  return 0;
}

/* The requested sample type, else the profile's default, else the last. */
static int pick_sample(const pprof_profile *p, const char *want) {
  int i = want ? pprof_sample_type_index(p, want) : -1;
  if (i < 0 && p->default_sample_type != 0)
    i = pprof_sample_type_index(p, pprof_str(p, p->default_sample_type));
  return i >= 0 ? i : (int)p->n_sample_type - 1;
}

static int flame_json(const pprof_profile *p, int si, bool diff, fnp_buf *j) {
  tree t = {0};
  int32_t root;
  int rc = tree_add(&t, "root", &root);
  for (size_t i = 0; rc == 0 && i < p->n_sample; i++)
    rc = tree_sample(&t, p, &p->sample[i], p->sample[i].value[si]);
  rc = rc ? rc : fnp_buf_append(j, "{\"sample_types\":[", 17);
  for (size_t i = 0; rc == 0 && i < p->n_sample_type; i++) {
    rc = fnp_buf_printf(j, "%s{\"type\":", i ? "," : "");
    rc = rc ? rc
            : export__json_str(j, pprof_str(p, p->sample_type[i].type),
                               SIZE_MAX);
    rc = rc ? rc : fnp_buf_append(j, ",\"unit\":", 8);
    rc = rc ? rc
            : export__json_str(j, pprof_str(p, p->sample_type[i].unit),
                               SIZE_MAX);
    rc = rc ? rc : fnp_buf_append(j, "}", 1);
  }
  rc = rc ? rc
          : fnp_buf_printf(j, "],\"sample_index\":%d,\"diff\":%s,\"tree\":", si,
                           diff ? "true" : "false");
  rc = rc ? rc : tree_json(&t, root, j, 0);
  rc = rc ? rc : fnp_buf_append(j, "}", 1);
  tree_destroy(&t);
  return rc;
}

static void flame_error(srv *s, struct evhttp_request *req, int rc,
                        const fnp_error *err) {
  if (rc == FNP_ENOTFOUND)
    srv_reply_error(s, req, 404, "ProfileNotExist", "%s", err->msg);
  else if (rc == FNP_EPARSE || rc == FNP_EINCOMPAT)
    srv_reply_error(s, req, 422, "ProfileInvalid", "%s", err->msg);
  else if (rc == FNP_ETOOBIG)
    srv_reply_error(s, req, 413, "ProfileTooLarge", "call tree over %d frames",
                    TREE_MAX_NODES);
  else
    srv_reply_error(s, req, 500, "InternalServerError", "%s",
                    err->msg[0] ? err->msg : fnp_strerror(rc));
}

static void flame(srv *s, struct evhttp_request *req) {
  int64_t id = ui_num(req, "id"), base_id = ui_num(req, "base");
  char want[UI_PARAM_MAX];
  const char *sample = srv_query(req, "sample", want, sizeof want);
  pprof_profile *cur = NULL, *base = NULL, *diff = NULL;
  fnp_error err = {0};
  fnp_buf j;
  fnp_buf_init(&j, UI_JSON_MAX_BYTES);
  int rc = id > 0 ? load_profile(s, id, &cur, &err)
                  : fnp_fail(&err, FNP_ENOTFOUND, "flame: id required");
  if (rc == 0 && base_id > 0) {
    rc = load_profile(s, base_id, &base, &err);
    if (rc == 0 && (rc = pprof_diff(base, cur, &diff, &err)) < 0)
      rc = FNP_EINCOMPAT;
  }
  const pprof_profile *p = diff ? diff : cur;
  if (rc == 0 && p->n_sample_type == 0)
    rc = fnp_fail(&err, FNP_EPARSE, "profile %lld has no sample types",
                  (long long)id);
  if (rc == 0)
    rc = flame_json(p, pick_sample(p, sample), diff != NULL, &j);
  if (rc < 0)
    flame_error(s, req, rc, &err);
  else
    srv_reply(s, req, 200, "application/json", j.data, j.len);
  pprof_profile_free(diff);
  pprof_profile_free(base);
  pprof_profile_free(cur);
  fnp_buf_destroy(&j);
}

static void listing(srv *s, struct evhttp_request *req, bool instances) {
  char inst[UI_PARAM_MAX], kinds[UI_PARAM_MAX], order[8];
  store_query q = {.instance = srv_query(req, "instance", inst, sizeof inst),
                   .from_ns = ui_num(req, "from"),
                   .to_ns = ui_num(req, "to"),
                   .limit = (int)ui_num(req, "limit")};
  const char *k = srv_query(req, "kinds", kinds, sizeof kinds);
  const char *o = srv_query(req, "order", order, sizeof order);
  fnp_buf j;
  fnp_buf_init(&j, UI_JSON_MAX_BYTES);
  fnp_error err = {0};
  int rc = instances ? store_ui_instances(s->db, &q, &j, &err)
                     : store_ui_records(s->db, &q, k,
                                        o && strcmp(o, "desc") == 0, &j, &err);
  if (rc == FNP_EUSAGE)
    srv_reply_error(s, req, 400, "ParameterInvalid", "%s", err.msg);
  else if (rc < 0)
    srv_reply_error(s, req, 500, "InternalServerError", "%s", err.msg);
  else
    srv_reply(s, req, 200, "application/json", j.data, j.len);
  fnp_buf_destroy(&j);
}

void srv_api_ui(srv *s, struct evhttp_request *req, const char *path) {
  if (strcmp(path, "/api/ui/instances") == 0)
    listing(s, req, true);
  else if (strcmp(path, "/api/ui/records") == 0)
    listing(s, req, false);
  else if (strcmp(path, "/api/ui/flame") == 0)
    flame(s, req);
  else
    srv_reply_error(s, req, 404, "ParameterInvalid", "no such API");
}
