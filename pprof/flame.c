/*
 * pprof_write_flame_svg: a self-contained SVG flame graph (inline CSS,
 * <title> tooltips, no scripts or fonts to fetch). Stacks are merged into a
 * tree by frame name (stacks.c names them), children sorted by name, root at
 * the bottom. Widths are sums of |value| so a diff profile's frames still
 * nest; its colours come from the signed sums (red grew, blue shrank).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FLAME_DEFAULT_WIDTH_PX 1200
/* Below this there is no room for a title and frames; above, a typo. */
#define FLAME_MIN_WIDTH_PX 200
#define FLAME_MAX_WIDTH_PX 100000
#define FRAME_HEIGHT_PX 16
#define FONT_SIZE_PX 12
/* Average glyph width of Verdana in em, as flamegraph.pl assumes. */
#define FONT_WIDTH_EM 0.59
#define TEXT_PAD_PX 3
#define XPAD_PX 10
#define HEADER_PX 52 /* title and subtitle */
#define FOOTER_PX 8
/* Narrower frames (and everything above them) are invisible; leaving them
 * out keeps big profiles' SVGs small, as flamegraph.pl's minwidth does. */
#define MIN_FRAME_PX 0.1
/* Diff colours: channel value of the other two channels, from a barely
 * changed frame (pale) to the largest change (deep). */
#define DIFF_PALE 230
#define DIFF_DEEP 40
#define COLOUR_BYTES 24
/* Deeper frames are not drawn: keeps the SVG height far inside int, and no
 * viewer shows 1.6 million pixels of tower anyway. */
#define FLAME_MAX_DEPTH 100000

typedef struct node {
  uint32_t name;   /* frame name id; unused for the root */
  uint32_t parent; /* node index */
  uint32_t depth;
  uint32_t n_child;
  size_t first_child; /* into tree.child */
  int64_t delta;      /* signed sum of the values through this frame */
  uint64_t width;     /* sum of |value|: additive, so children fit inside */
  double x;           /* left edge in px, set by layout */
} node;

typedef struct flame {
  const pprof_profile *p;
  int si;
  pprof__frame_names f;
  node *node; /* node[0] is the root, "all" */
  size_t n_node, node_cap;
  pprof__u64map child_of; /* (parent << 32 | name) + 1 -> node index */
  uint32_t *child;        /* children grouped by parent, sorted by name */
  uint32_t *order;        /* visible nodes, parents before children */
  size_t n_order;
  uint32_t max_depth;
  uint64_t max_delta; /* largest |delta| shown: the colour scale */
  bool diff;          /* some value is negative */
  int width_px, height_px;
  double scale; /* px per unit of width */
} flame;

/* ---- the tree ---------------------------------------------------------- */

static uint64_t sat_uadd(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int child_of(flame *fl, uint32_t parent, uint32_t name, uint32_t *out) {
  uint64_t key = ((uint64_t)parent << 32 | name) + 1, v;
  if (pprof__u64map_get(&fl->child_of, key, &v)) {
    *out = (uint32_t)v;
    return 0;
  }
  /* Node indexes must fit 32 bits, and keep the key above from wrapping. */
  if (fl->n_node >= UINT32_MAX - 1)
    return FNP_ETOOBIG;
  if (pprof__reserve((void **)&fl->node, &fl->node_cap, fl->n_node + 1,
                     sizeof *fl->node) < 0)
    return -ENOMEM;
  fl->node[fl->n_node] = (node){
      .name = name, .parent = parent, .depth = fl->node[parent].depth + 1};
  *out = (uint32_t)fl->n_node++;
  return pprof__u64map_put(&fl->child_of, key, *out);
}

static void bump(node *nd, int64_t v) {
  nd->delta = pprof__sat_add(nd->delta, v);
  nd->width = sat_uadd(nd->width, pprof__abs(v));
}

/* Adds one stack (leaf first in fr) root first; an empty stack is one
 * "[unknown]" frame so its value stays visible. */
static int add_stack(flame *fl, const pprof__idvec *fr, int64_t v) {
  uint32_t cur = 0;
  bump(&fl->node[0], v);
  if (fr->n == 0) {
    int rc = child_of(fl, 0, PPROF__UNKNOWN_FRAME, &cur);
    if (rc == 0)
      bump(&fl->node[cur], v);
    return rc;
  }
  for (size_t k = fr->n; k-- > 0;) {
    int rc = child_of(fl, cur, fr->v[k], &cur);
    if (rc < 0)
      return rc;
    bump(&fl->node[cur], v);
  }
  return 0;
}

static int build_tree(flame *fl) {
  pprof__idvec fr = {0};
  int rc =
      pprof__reserve((void **)&fl->node, &fl->node_cap, 1, sizeof *fl->node);
  if (rc < 0)
    return rc;
  fl->node[0] = (node){0};
  fl->n_node = 1;
  for (size_t i = 0; i < fl->p->n_sample && rc == 0; i++) {
    const pprof_sample *s = &fl->p->sample[i];
    int64_t v = s->value[fl->si];
    if (v == 0)
      continue;
    fl->diff |= v < 0;
    rc = pprof__sample_names(&fl->f, s, &fr);
    if (rc == 0)
      rc = add_stack(fl, &fr, v);
  }
  free(fr.v);
  return rc;
}

/* ---- children and layout ----------------------------------------------- */

typedef struct kid {
  uint32_t parent;
  uint32_t node;
  const char *name;
} kid;

static int kid_cmp(const void *a, const void *b) {
  const kid *x = a, *y = b;
  if (x->parent != y->parent)
    return x->parent < y->parent ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Groups children by parent, sorted by name: alphabetical order makes the
 * picture reproducible and puts a frame at the same place in two graphs. */
static int sort_children(flame *fl) {
  size_t n = fl->n_node - 1;
  kid *k = calloc(n ? n : 1, sizeof *k);
  fl->child = calloc(n ? n : 1, sizeof *fl->child);
  if (k == NULL || fl->child == NULL) {
    free(k);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const node *nd = &fl->node[i + 1];
    k[i] = (kid){nd->parent, (uint32_t)(i + 1),
                 pprof__frame_name_str(&fl->f, nd->name)};
  }
  qsort(k, n, sizeof *k, kid_cmp);
  for (size_t i = 0; i < n; i++) {
    node *parent = &fl->node[k[i].parent];
    if (parent->n_child++ == 0)
      parent->first_child = i;
    fl->child[i] = k[i].node;
  }
  free(k);
  return 0;
}

/* Places every visible node (depth first, explicit stack: stacks can be
 * thousands of frames deep) and records the drawing order. */
static int layout(flame *fl) {
  uint32_t *stack = malloc(fl->n_node * sizeof *stack);
  fl->order = malloc(fl->n_node * sizeof *fl->order);
  if (stack == NULL || fl->order == NULL) {
    free(stack);
    return -ENOMEM;
  }
  size_t top = 0;
  fl->node[0].x = XPAD_PX;
  stack[top++] = 0;
  while (top > 0) {
    const node *nd = &fl->node[stack[--top]];
    fl->order[fl->n_order++] = (uint32_t)(nd - fl->node);
    if (nd->depth > fl->max_depth)
      fl->max_depth = nd->depth;
    if (pprof__abs(nd->delta) > fl->max_delta)
      fl->max_delta = pprof__abs(nd->delta);
    double x = nd->x;
    for (uint32_t c = 0; c < nd->n_child; c++) {
      node *ch = &fl->node[fl->child[nd->first_child + c]];
      ch->x = x;
      x += (double)ch->width * fl->scale;
    }
    for (uint32_t c = nd->n_child; c-- > 0;) { /* first child on top */
      uint32_t id = fl->child[nd->first_child + c];
      if ((double)fl->node[id].width * fl->scale >= MIN_FRAME_PX &&
          fl->node[id].depth <= FLAME_MAX_DEPTH)
        stack[top++] = id;
    }
  }
  free(stack);
  return 0;
}

/* ---- SVG --------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s that XML 1.0 allows, or 0. */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n = c < 0x80             ? 1
             : (c & 0xe0) == 0xc0 ? 2
             : (c & 0xf0) == 0xe0 ? 3
             : (c & 0xf8) == 0xf0 ? 4
                                  : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0; /* also stops at the NUL */
  bool bad = (n == 1 && c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
             (n == 2 && c < 0xc2) || (n == 3 && c == 0xe0 && s[1] < 0xa0) ||
             (n == 3 && c == 0xed && s[1] >= 0xa0) || /* surrogates */
             (n == 3 && c == 0xef && s[1] == 0xbf && s[2] >= 0xbe) ||
             (n == 4 && c == 0xf0 && s[1] < 0x90) ||
             (n == 4 && (c > 0xf4 || (c == 0xf4 && s[1] >= 0x90)));
  return bad ? 0 : n;
}

static size_t utf8_chars(const char *s) {
  size_t chars = 0;
  for (const unsigned char *u = (const unsigned char *)s; *u; chars++) {
    size_t n = utf8_len(u);
    u += n ? n : 1;
  }
  return chars;
}

/* Writes at most max_chars characters of s, escaped for XML text and
 * attributes; what XML cannot carry (bad UTF-8, controls) becomes '?'. */
static void put_xml(FILE *out, const char *s, size_t max_chars) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t chars = 0; *u && chars < max_chars; chars++) {
    size_t n = utf8_len(u);
    if (n == 0) {
      fputc('?', out);
      u++;
      continue;
    }
    const char *entity = *u == '&'    ? "&amp;"
                         : *u == '<'  ? "&lt;"
                         : *u == '>'  ? "&gt;"
                         : *u == '"'  ? "&quot;"
                         : *u == '\'' ? "&apos;"
                                      : NULL;
    if (entity != NULL)
      fputs(entity, out);
    else
      fwrite(u, 1, n, out);
    u += n;
  }
}

static void format_value(const flame *fl, int64_t v, char *buf, size_t len) {
  const char *unit = pprof_str(fl->p, fl->p->sample_type[fl->si].unit);
  const char *sign = fl->diff && v > 0 ? "+" : "";
  char num[32];
  if (strcmp(unit, "bytes") == 0)
    fnp_format_bytes(v, num, sizeof num);
  else
    snprintf(num, sizeof num, "%lld", (long long)v);
  bool show_unit =
      *unit != '\0' && strcmp(unit, "bytes") != 0 && strcmp(unit, "count") != 0;
  snprintf(buf, len, "%s%s%s%s", sign, num, show_unit ? " " : "",
           show_unit ? unit : "");
}

static void frame_colour(const flame *fl, const node *nd, const char *name,
                         char *buf, size_t len) {
  if (!fl->diff) { /* warm, stable per name so a function keeps its colour */
    uint64_t h =
        pprof__mix(pprof__hash_bytes(name, strlen(name), PPROF__HASH_SEED));
    snprintf(buf, len, "rgb(%u,%u,%u)", (unsigned)(205 + h % 51),
             (unsigned)((h >> 8) % 231), (unsigned)((h >> 16) % 56));
    return;
  }
  if (nd->delta == 0 || fl->max_delta == 0) {
    snprintf(buf, len, "rgb(220,220,220)");
    return;
  }
  double t = (double)pprof__abs(nd->delta) / (double)fl->max_delta;
  unsigned c = (unsigned)(DIFF_PALE - (DIFF_PALE - DIFF_DEEP) * t + 0.5);
  if (nd->delta > 0)
    snprintf(buf, len, "rgb(255,%u,%u)", c, c);
  else
    snprintf(buf, len, "rgb(%u,%u,255)", c, c);
}

static const char *node_name(const flame *fl, const node *nd) {
  return nd == fl->node ? "all" : pprof__frame_name_str(&fl->f, nd->name);
}

static void emit_label(FILE *out, const char *name, double w, double x, int y) {
  double fit = (w - 2 * TEXT_PAD_PX) / (FONT_SIZE_PX * FONT_WIDTH_EM);
  if (fit < 3)
    return; /* not even "a.." fits */
  size_t max = (size_t)fit, chars = utf8_chars(name);
  fprintf(out, "<text x=\"%.2f\" y=\"%d\">", x + TEXT_PAD_PX,
          y + FRAME_HEIGHT_PX - 4);
  put_xml(out, name, chars <= max ? max : max - 2);
  fputs(chars <= max ? "</text>" : "..</text>", out);
}

static void emit_frame(const flame *fl, const node *nd, FILE *out) {
  const char *name = node_name(fl, nd);
  char value[64], colour[COLOUR_BYTES];
  double w = (double)nd->width * fl->scale;
  int y = fl->height_px - FOOTER_PX - (int)(nd->depth + 1) * FRAME_HEIGHT_PX;
  format_value(fl, nd->delta, value, sizeof value);
  frame_colour(fl, nd, name, colour, sizeof colour);
  fputs("<g class=\"f\"><title>", out);
  put_xml(out, name, SIZE_MAX);
  fprintf(out, " (%s, %.2f%%%s)</title>", value,
          100.0 * (double)nd->width / (double)fl->node[0].width,
          fl->diff ? " of all change" : "");
  fprintf(out,
          "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" rx=\"2\" "
          "fill=\"%s\"/>",
          nd->x, y, w, FRAME_HEIGHT_PX - 1, colour);
  emit_label(out, name, w, nd->x, y);
  fputs("</g>\n", out);
}

static void emit_header(const flame *fl, const char *title, FILE *out) {
  const pprof_value_type *st = &fl->p->sample_type[fl->si];
  char total[64];
  format_value(fl, fl->node[0].delta, total, sizeof total);
  fprintf(out,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
          "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
          fl->width_px, fl->height_px, fl->width_px, fl->height_px);
  fputs("<style>\ntext{font-family:Verdana,\"DejaVu Sans\",sans-serif;"
        "font-size:12px;fill:#000}\n.title{font-size:17px}\n"
        ".sub{fill:#555}\ng.f:hover rect{stroke:#000;stroke-width:1}\n"
        "</style>\n",
        out);
  fprintf(out,
          "<rect width=\"100%%\" height=\"100%%\" fill=\"#fdfdf6\"/>\n"
          "<text class=\"title\" x=\"%d\" y=\"24\" "
          "text-anchor=\"middle\">",
          fl->width_px / 2);
  put_xml(out, title, SIZE_MAX);
  fprintf(out, "</text>\n<text class=\"sub\" x=\"%d\" y=\"44\">", XPAD_PX);
  put_xml(out, pprof_str(fl->p, st->type), SIZE_MAX);
  fprintf(out, ": %s %s%s</text>\n", fl->diff ? "change" : "total", total,
          fl->diff ? " (red grew, blue shrank)" : "");
}

static int emit_svg(const flame *fl, const char *title, FILE *out) {
  emit_header(fl, title, out);
  if (fl->node[0].width == 0)
    fprintf(out, "<text x=\"%d\" y=\"%d\">no samples</text>\n", XPAD_PX,
            HEADER_PX + FRAME_HEIGHT_PX);
  else
    for (size_t i = 0; i < fl->n_order; i++)
      emit_frame(fl, &fl->node[fl->order[i]], out);
  fputs("</svg>\n", out);
  return pprof__flush(out);
}

/* ---- entry point ------------------------------------------------------- */

static void flame_destroy(flame *fl) {
  pprof__frame_names_destroy(&fl->f);
  pprof__u64map_destroy(&fl->child_of);
  free(fl->node);
  free(fl->child);
  free(fl->order);
}

int pprof_write_flame_svg(const pprof_profile *p, int sample_index,
                          const pprof_flame_opts *opts, FILE *out) {
  int width = opts && opts->width_px ? opts->width_px : FLAME_DEFAULT_WIDTH_PX;
  if (p == NULL || out == NULL || sample_index < 0 ||
      (size_t)sample_index >= p->n_sample_type || width < FLAME_MIN_WIDTH_PX ||
      width > FLAME_MAX_WIDTH_PX)
    return FNP_EUSAGE;
  const char *title = opts && opts->title ? opts->title : "fnprof flame graph";
  flame fl = {.p = p, .si = sample_index, .width_px = width};
  int rc = pprof__frame_names_init(&fl.f, p);
  if (rc < 0)
    return rc;
  if ((rc = build_tree(&fl)) < 0 || (rc = sort_children(&fl)) < 0)
    goto done;
  if (fl.node[0].width > 0)
    fl.scale = (width - 2.0 * XPAD_PX) / (double)fl.node[0].width;
  if ((rc = layout(&fl)) < 0)
    goto done;
  fl.height_px =
      HEADER_PX + (int)(fl.max_depth + 1) * FRAME_HEIGHT_PX + FOOTER_PX;
  rc = emit_svg(&fl, title, out);
done:
  flame_destroy(&fl);
  return rc;
}
