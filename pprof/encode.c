/*
 * Encoding the model as profile.proto with protobuf-c, gzip'd for files.
 * The protobuf-c structs are built in a few flat arrays (one per message
 * kind) so encoding a large profile costs a handful of allocations.
 */
#include "internal.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef Perftools__Profiles__Profile PbProfile;
typedef Perftools__Profiles__ValueType PbValueType;
typedef Perftools__Profiles__Sample PbSample;
typedef Perftools__Profiles__Label PbLabel;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Line PbLine;
typedef Perftools__Profiles__Function PbFunction;

/* Everything the message tree points to, freed in one place. */
typedef struct tree {
  PbValueType *vt, period_type;
  PbValueType **vt_ptr;
  PbSample *samples;
  PbSample **sample_ptr;
  PbLabel *labels;
  PbLabel **label_ptr;
  PbMapping *mappings;
  PbMapping **mapping_ptr;
  PbLocation *locations;
  PbLocation **location_ptr;
  PbLine *lines;
  PbLine **line_ptr;
  PbFunction *functions;
  PbFunction **function_ptr;
} tree;

static void tree_free(tree *t) {
  free(t->vt);
  free(t->vt_ptr);
  free(t->samples);
  free(t->sample_ptr);
  free(t->labels);
  free(t->label_ptr);
  free(t->mappings);
  free(t->mapping_ptr);
  free(t->locations);
  free(t->location_ptr);
  free(t->lines);
  free(t->line_ptr);
  free(t->functions);
  free(t->function_ptr);
}

/* calloc that treats n == 0 as success with a harmless non-NULL result. */
static void *alloc_n(size_t n, size_t size) { return calloc(n ? n : 1, size); }

static int build(const pprof_profile *p, tree *t, PbProfile *m) {
  size_t n_labels = 0, n_lines = 0;
  for (size_t i = 0; i < p->n_sample; i++)
    n_labels += p->sample[i].n_label;
  for (size_t i = 0; i < p->n_location; i++)
    n_lines += p->location[i].n_line;

  t->vt = alloc_n(p->n_sample_type, sizeof *t->vt);
  t->vt_ptr = alloc_n(p->n_sample_type, sizeof *t->vt_ptr);
  t->samples = alloc_n(p->n_sample, sizeof *t->samples);
  t->sample_ptr = alloc_n(p->n_sample, sizeof *t->sample_ptr);
  t->labels = alloc_n(n_labels, sizeof *t->labels);
  t->label_ptr = alloc_n(n_labels, sizeof *t->label_ptr);
  t->mappings = alloc_n(p->n_mapping, sizeof *t->mappings);
  t->mapping_ptr = alloc_n(p->n_mapping, sizeof *t->mapping_ptr);
  t->locations = alloc_n(p->n_location, sizeof *t->locations);
  t->location_ptr = alloc_n(p->n_location, sizeof *t->location_ptr);
  t->lines = alloc_n(n_lines, sizeof *t->lines);
  t->line_ptr = alloc_n(n_lines, sizeof *t->line_ptr);
  t->functions = alloc_n(p->n_function, sizeof *t->functions);
  t->function_ptr = alloc_n(p->n_function, sizeof *t->function_ptr);
  if (!t->vt || !t->vt_ptr || !t->samples || !t->sample_ptr || !t->labels ||
      !t->label_ptr || !t->mappings || !t->mapping_ptr || !t->locations ||
      !t->location_ptr || !t->lines || !t->line_ptr || !t->functions ||
      !t->function_ptr)
    return -ENOMEM;

  perftools__profiles__profile__init(m);
  for (size_t i = 0; i < p->n_sample_type; i++) {
    perftools__profiles__value_type__init(&t->vt[i]);
    t->vt[i].type = p->sample_type[i].type;
    t->vt[i].unit = p->sample_type[i].unit;
    t->vt_ptr[i] = &t->vt[i];
  }
  m->n_sample_type = p->n_sample_type;
  m->sample_type = t->vt_ptr;

  size_t li = 0;
  for (size_t i = 0; i < p->n_sample; i++) {
    const pprof_sample *s = &p->sample[i];
    PbSample *ps = &t->samples[i];
    perftools__profiles__sample__init(ps);
    ps->n_location_id = s->n_location;
    ps->location_id = s->location_id;
    ps->n_value = p->n_sample_type;
    ps->value = s->value;
    ps->n_label = s->n_label;
    ps->label = &t->label_ptr[li];
    for (size_t j = 0; j < s->n_label; j++, li++) {
      PbLabel *pl = &t->labels[li];
      perftools__profiles__label__init(pl);
      pl->key = s->label[j].key;
      pl->str = s->label[j].str;
      pl->num = s->label[j].num;
      pl->num_unit = s->label[j].num_unit;
      t->label_ptr[li] = pl;
    }
    t->sample_ptr[i] = ps;
  }
  m->n_sample = p->n_sample;
  m->sample = t->sample_ptr;

  for (size_t i = 0; i < p->n_mapping; i++) {
    const pprof_mapping *s = &p->mapping[i];
    PbMapping *pm = &t->mappings[i];
    perftools__profiles__mapping__init(pm);
    pm->id = s->id;
    pm->memory_start = s->memory_start;
    pm->memory_limit = s->memory_limit;
    pm->file_offset = s->file_offset;
    pm->filename = s->filename;
    pm->build_id = s->build_id;
    pm->has_functions = s->has_functions;
    pm->has_filenames = s->has_filenames;
    pm->has_line_numbers = s->has_line_numbers;
    pm->has_inline_frames = s->has_inline_frames;
    t->mapping_ptr[i] = pm;
  }
  m->n_mapping = p->n_mapping;
  m->mapping = t->mapping_ptr;

  size_t ni = 0;
  for (size_t i = 0; i < p->n_location; i++) {
    const pprof_location *s = &p->location[i];
    PbLocation *pl = &t->locations[i];
    perftools__profiles__location__init(pl);
    pl->id = s->id;
    pl->mapping_id = s->mapping_id;
    pl->address = s->address;
    pl->is_folded = s->is_folded;
    pl->n_line = s->n_line;
    pl->line = &t->line_ptr[ni];
    for (size_t j = 0; j < s->n_line; j++, ni++) {
      PbLine *ln = &t->lines[ni];
      perftools__profiles__line__init(ln);
      ln->function_id = s->line[j].function_id;
      ln->line = s->line[j].line;
      ln->column = s->line[j].column;
      t->line_ptr[ni] = ln;
    }
    t->location_ptr[i] = pl;
  }
  m->n_location = p->n_location;
  m->location = t->location_ptr;

  for (size_t i = 0; i < p->n_function; i++) {
    const pprof_function *s = &p->function[i];
    PbFunction *pf = &t->functions[i];
    perftools__profiles__function__init(pf);
    pf->id = s->id;
    pf->name = s->name;
    pf->system_name = s->system_name;
    pf->filename = s->filename;
    pf->start_line = s->start_line;
    t->function_ptr[i] = pf;
  }
  m->n_function = p->n_function;
  m->function = t->function_ptr;

  /* protobuf-c takes char ** but only reads the strings. */
  m->n_string_table = p->n_string;
  m->string_table = (char **)p->string;
  m->drop_frames = p->drop_frames;
  m->keep_frames = p->keep_frames;
  m->time_nanos = p->time_nanos;
  m->duration_nanos = p->duration_nanos;
  perftools__profiles__value_type__init(&t->period_type);
  t->period_type.type = p->period_type.type;
  t->period_type.unit = p->period_type.unit;
  m->period_type = &t->period_type;
  m->period = p->period;
  m->n_comment = p->n_comment;
  m->comment = p->comment;
  m->default_sample_type = p->default_sample_type;
  m->doc_url = p->doc_url;
  return 0;
}

int pprof_encode(const pprof_profile *p, bool gzip, uint8_t **data, size_t *len,
                 fnp_error *err) {
  int rc = pprof_validate(p, err);
  if (rc < 0)
    return rc;
  tree t;
  memset(&t, 0, sizeof t);
  PbProfile m;
  rc = build(p, &t, &m);
  if (rc < 0) {
    tree_free(&t);
    return fnp_fail(err, rc, "encode: out of memory");
  }
  size_t n = perftools__profiles__profile__get_packed_size(&m);
  uint8_t *raw = malloc(n ? n : 1);
  if (raw == NULL) {
    tree_free(&t);
    return fnp_fail(err, -ENOMEM, "encode: out of memory");
  }
  perftools__profiles__profile__pack(&m, raw);
  tree_free(&t);
  if (!gzip) {
    *data = raw;
    *len = n;
    return 0;
  }
  rc = pprof_gzip(raw, n, data, len, err);
  free(raw);
  return rc;
}

int pprof_write_file(const pprof_profile *p, const char *path, fnp_error *err) {
  uint8_t *data;
  size_t len;
  int rc = pprof_encode(p, true, &data, &len, err);
  if (rc < 0)
    return rc;
  rc = fnp_write_file(path, data, len, err);
  free(data);
  return rc;
}
