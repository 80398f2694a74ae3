/*
 * pprof_write_flame_svg: well-formed, self-contained, escaped SVG; warm
 * colours for a plain profile, red/blue by delta for a diff; deterministic.
 */
#include "ops_fixture.h"

#include <ctype.h>
#include <errno.h>

/* Checks what our SVG needs to be well-formed XML: one root element, tags
 * that nest and close, quoted attributes, only the five predefined entities,
 * no '<' in text or attributes. (We write no comments, CDATA or PIs.) */
static const char *check_entity(const char *p) {
  static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                    "&apos;"};
  for (size_t i = 0; i < 5; i++)
    if (strncmp(p, ent[i], strlen(ent[i])) == 0)
      return p + strlen(ent[i]);
  fail_msg("bad entity at: %.20s", p);
  return NULL;
}

static const char *check_attrs(const char *q, bool *self_closing) {
  for (;;) {
    while (*q == ' ' || *q == '\n')
      q++;
    if (*q == '>' || (q[0] == '/' && q[1] == '>')) {
      *self_closing = *q == '/';
      return q + (*self_closing ? 2 : 1);
    }
    size_t n =
        strspn(q, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-:");
    if (n == 0 || q[n] != '=' || q[n + 1] != '"')
      fail_msg("bad attribute at: %.30s", q);
    for (q += n + 2; *q != '"';)
      if (*q == '&')
        q = check_entity(q);
      else if (*q == '<' || *q == '\0')
        fail_msg("unterminated attribute");
      else
        q++;
    q++;
  }
}

static void assert_well_formed(const char *s) {
  const char *open[64];
  size_t open_len[64], depth = 0;
  bool root_done = false;
  assert_int_equal(s[0], '<');
  for (const char *p = s; *p;) {
    if (*p == '&') {
      p = check_entity(p);
      continue;
    }
    if (*p != '<') {
      if (root_done && !isspace((unsigned char)*p))
        fail_msg("text after the root element");
      p++;
      continue;
    }
    bool closing = p[1] == '/';
    const char *name = p + (closing ? 2 : 1);
    size_t n = strspn(name, "abcdefghijklmnopqrstuvwxyz");
    assert_true(n > 0 && !root_done);
    if (closing) {
      assert_true(depth > 0 && name[n] == '>');
      depth--;
      assert_true(open_len[depth] == n && strncmp(open[depth], name, n) == 0);
      root_done = depth == 0;
      p = name + n + 1;
      continue;
    }
    bool self_closing;
    p = check_attrs(name + n, &self_closing);
    if (!self_closing) {
      assert_true(depth < 64);
      open[depth] = name;
      open_len[depth++] = n;
    }
  }
  assert_true(root_done);
  assert_int_equal(depth, 0);
}

static size_t count(const char *s, const char *what) {
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
    n++;
  return n;
}

static char *render(const pprof_profile *p, const pprof_flame_opts *opts) {
  char *svg = NULL;
  FX_CAPTURE(svg, pprof_write_flame_svg(p, 0, opts, out));
  assert_well_formed(svg);
  assert_memory_equal(svg, "<svg ", 5);
  size_t len = strlen(svg);
  assert_true(len > 7);
  assert_string_equal(svg + len - 7, "</svg>\n");
  return svg;
}

static pprof_profile *plain_profile(void) {
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "main");
  FX_LOC(p, 2, 0, 0x20, "operator<<(std::ostream&)");
  FX_LOC(p, 3, 0, 0x30, "a \"quoted\" 'name'");
  FX_LOC(p, 4, 0, 0x40, "tiny");
  FX_SAMPLE(p, ((int64_t[]){600}), 2, 1);
  FX_SAMPLE(p, ((int64_t[]){390}), 3, 1);
  FX_SAMPLE(p, ((int64_t[]){10}), 4, 1);
  return p;
}

/* Every fill in a plain graph comes from the warm palette (red high, green
 * up to 230, blue low). */
static void assert_warm(const char *svg) {
  size_t fills = 0;
  for (const char *p = svg; (p = strstr(p, "fill=\"rgb(")) != NULL; p++) {
    unsigned r, g, b;
    assert_int_equal(sscanf(p, "fill=\"rgb(%u,%u,%u)", &r, &g, &b), 3);
    assert_true(r >= 205 && r <= 255 && g <= 230 && b <= 55);
    fills++;
  }
  assert_int_equal(fills, 5); /* all, main and the three leaves */
}

static void flame_plain_profile(void **state) {
  (void)state;
  pprof_profile *p = plain_profile();
  char *svg = render(p, NULL);
  assert_non_null(strstr(svg, "width=\"1200\""));
  assert_non_null(strstr(svg, ">fnprof flame graph</text>"));
  assert_non_null(strstr(svg, "operator&lt;&lt;(std::ostream&amp;)"));
  assert_non_null(strstr(svg, "a &quot;quoted&quot; &apos;name&apos;"));
  assert_null(strstr(svg, "<script"));
  assert_int_equal(count(svg, "<rect "), 6); /* background + 5 frames */
  assert_warm(svg);
  /* main spans the width: labelled. tiny is 1% of 1180 px, too narrow for
   * any text: its name is only in the tooltip. */
  assert_non_null(strstr(svg, ">main</text>"));
  assert_int_equal(count(svg, ">tiny"), 1);
  assert_non_null(strstr(svg, "<title>tiny ("));
  char *again = render(p, NULL);
  assert_string_equal(svg, again); /* deterministic */
  free(again);
  free(svg);
  pprof_flame_opts opts = {.title = "heap <&> spike", .width_px = 800};
  svg = render(p, &opts);
  assert_non_null(strstr(svg, "width=\"800\""));
  assert_non_null(strstr(svg, ">heap &lt;&amp;&gt; spike</text>"));
  free(svg);
  pprof_profile_free(p);
}

/* base: grow 10, shrink 150, same 50; cur: grow 110, shrink 50, same 50,
 * mid 50 (all under main). Diff: grow +100, shrink -100, mid +50, same
 * gone; main and the root +50. The largest change (100) is the deepest
 * colour, 50 half way: channel 230 - (230 - 40) * 0.5 = 135. */
static void flame_diff_colours_by_delta(void **state) {
  (void)state;
  pprof_profile *base = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *cur = fx_new("inuse_space", "bytes", NULL);
  pprof_profile *both[] = {base, cur};
  for (int i = 0; i < 2; i++) {
    FX_LOC(both[i], 1, 0, 0x10, "main");
    FX_LOC(both[i], 2, 0, 0x20, "grow");
    FX_LOC(both[i], 3, 0, 0x30, "shrink");
    FX_LOC(both[i], 4, 0, 0x40, "same");
    FX_LOC(both[i], 5, 0, 0x50, "mid");
    FX_SAMPLE(both[i], ((int64_t[]){i ? 110 : 10}), 2, 1);
    FX_SAMPLE(both[i], ((int64_t[]){i ? 50 : 150}), 3, 1);
    FX_SAMPLE(both[i], ((int64_t[]){50}), 4, 1);
  }
  FX_SAMPLE(cur, ((int64_t[]){50}), 5, 1);
  pprof_profile *d;
  assert_int_equal(pprof_diff(base, cur, &d, NULL), 0);
  char *svg = render(d, NULL);
  assert_int_equal(count(svg, "fill=\"rgb(255,40,40)\""), 1);   /* grow */
  assert_int_equal(count(svg, "fill=\"rgb(40,40,255)\""), 1);   /* shrink */
  assert_int_equal(count(svg, "fill=\"rgb(255,135,135)\""), 3); /* mid... */
  assert_null(strstr(svg, ">same"));
  assert_non_null(strstr(svg, "<title>shrink (-100B"));
  assert_non_null(strstr(svg, "<title>grow (+100B"));
  free(svg);
  pprof_profile_free(d);
  pprof_profile_free(base);
  pprof_profile_free(cur);
}

static void flame_escapes_what_xml_cannot_carry(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, "bad\xff\xfeutf8");
  FX_LOC(p, 2, 0, 0x20, "ctl\x01x");
  FX_LOC(p, 3, 0, 0x30, "na\xc3\xafve"); /* valid UTF-8 stays */
  FX_LOC(p, 4, 0, 0x40, "surrogate\xed\xa0\x80");
  FX_SAMPLE(p, ((int64_t[]){1}), 1, 2, 3, 4);
  char *svg = render(p, NULL);
  assert_non_null(strstr(svg, "<title>bad??utf8 ("));
  assert_non_null(strstr(svg, "<title>ctl?x ("));
  assert_non_null(strstr(svg, "<title>na\xc3\xafve ("));
  assert_non_null(strstr(svg, "<title>surrogate??? ("));
  free(svg);
  pprof_profile_free(p);
}

static void flame_truncates_long_names(void **state) {
  (void)state;
  char name[301];
  memset(name, 'x', 300);
  name[300] = '\0';
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  FX_LOC(p, 1, 0, 0x10, name);
  FX_SAMPLE(p, ((int64_t[]){1}), 1);
  char *svg = render(p, NULL);
  assert_non_null(strstr(svg, name)); /* whole in the tooltip */
  const char *text = NULL;            /* the last label is the leaf's */
  for (const char *q = svg; (q = strstr(q, "<text ")) != NULL; q++)
    text = strchr(q, '>');
  assert_non_null(text);
  size_t shown = strspn(text + 1, "x");
  assert_true(shown > 10 && shown < 300);
  assert_memory_equal(text + 1 + shown, "..</text>", 9);
  free(svg);
  pprof_profile_free(p);
}

static void flame_rejects_bad_input(void **state) {
  (void)state;
  pprof_profile *p = fx_new("inuse_space", "bytes", NULL);
  char *svg = render(p, NULL); /* empty: still a valid picture */
  assert_non_null(strstr(svg, "no samples"));
  free(svg);
  FILE *out = fopen("/dev/null", "w");
  assert_non_null(out);
  pprof_flame_opts narrow = {.width_px = 50}, negative = {.width_px = -1};
  assert_int_equal(pprof_write_flame_svg(p, 0, &narrow, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_flame_svg(p, 0, &negative, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_flame_svg(p, 1, NULL, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_flame_svg(NULL, 0, NULL, out), FNP_EUSAGE);
  assert_int_equal(pprof_write_flame_svg(p, 0, NULL, NULL), FNP_EUSAGE);
  FX_LOC(p, 1, 0, 0x10, "main");
  FX_SAMPLE(p, ((int64_t[]){1}), 1);
  FILE *full = fopen("/dev/full", "w");
  if (full != NULL) {
    assert_int_equal(pprof_write_flame_svg(p, 0, NULL, full), -ENOSPC);
    fclose(full);
  }
  FX_SAMPLE(p, ((int64_t[]){1}), 9); /* dangling location id */
  assert_int_equal(pprof_write_flame_svg(p, 0, NULL, out), FNP_EPARSE);
  fclose(out);
  pprof_profile_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(flame_plain_profile),
      cmocka_unit_test(flame_diff_colours_by_delta),
      cmocka_unit_test(flame_escapes_what_xml_cannot_carry),
      cmocka_unit_test(flame_truncates_long_names),
      cmocka_unit_test(flame_rejects_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
