/* pprof_validate: the invariants every reader of a profile relies on. */
#include "internal.h"

static bool str_ok(const pprof_profile *p, int64_t idx) {
  return idx >= 0 && (uint64_t)idx < p->n_string;
}

#define CHECK_STR(idx, what, ...)                                              \
  do {                                                                         \
    if (!str_ok(p, (idx)))                                                     \
      return fnp_fail(err, FNP_EPARSE,                                         \
                      what ": string index %lld out of range (table has %zu)", \
                      __VA_ARGS__, (long long)(idx), p->n_string);             \
  } while (0)

int pprof_validate(const pprof_profile *p, fnp_error *err) {
  if (p->n_string == 0 || p->string[0][0] != '\0')
    return fnp_fail(err, FNP_EPARSE, "string_table[0] must be empty");
  for (size_t i = 0; i < p->n_sample_type; i++) {
    CHECK_STR(p->sample_type[i].type, "sample_type[%zu].type", i);
    CHECK_STR(p->sample_type[i].unit, "sample_type[%zu].unit", i);
  }
  CHECK_STR(p->period_type.type, "period_type.type%s", "");
  CHECK_STR(p->period_type.unit, "period_type.unit%s", "");
  CHECK_STR(p->drop_frames, "drop_frames%s", "");
  CHECK_STR(p->keep_frames, "keep_frames%s", "");
  CHECK_STR(p->default_sample_type, "default_sample_type%s", "");
  CHECK_STR(p->doc_url, "doc_url%s", "");
  for (size_t i = 0; i < p->n_comment; i++)
    CHECK_STR(p->comment[i], "comment[%zu]", i);
  for (size_t i = 0; i < p->n_mapping; i++) {
    const pprof_mapping *m = &p->mapping[i];
    CHECK_STR(m->filename, "mapping[%zu].filename", i);
    CHECK_STR(m->build_id, "mapping[%zu].build_id", i);
  }
  for (size_t i = 0; i < p->n_function; i++) {
    const pprof_function *f = &p->function[i];
    CHECK_STR(f->name, "function[%zu].name", i);
    CHECK_STR(f->system_name, "function[%zu].system_name", i);
    CHECK_STR(f->filename, "function[%zu].filename", i);
  }
  for (size_t i = 0; i < p->n_location; i++) {
    const pprof_location *l = &p->location[i];
    if (l->mapping_id != 0 && pprof_find_mapping(p, l->mapping_id) == NULL)
      return fnp_fail(err, FNP_EPARSE,
                      "location[%zu] (id %llu): mapping_id %llu not defined", i,
                      (unsigned long long)l->id,
                      (unsigned long long)l->mapping_id);
    for (size_t j = 0; j < l->n_line; j++)
      if (pprof_find_function(p, l->line[j].function_id) == NULL)
        return fnp_fail(err, FNP_EPARSE,
                        "location[%zu] (id %llu) line[%zu]: function_id %llu "
                        "not defined",
                        i, (unsigned long long)l->id, j,
                        (unsigned long long)l->line[j].function_id);
  }
  for (size_t i = 0; i < p->n_sample; i++) {
    const pprof_sample *s = &p->sample[i];
    for (size_t j = 0; j < s->n_location; j++)
      if (pprof_find_location(p, s->location_id[j]) == NULL)
        return fnp_fail(err, FNP_EPARSE,
                        "sample[%zu] location_id[%zu]: %llu not defined", i, j,
                        (unsigned long long)s->location_id[j]);
    for (size_t j = 0; j < s->n_label; j++) {
      CHECK_STR(s->label[j].key, "sample[%zu].label[%zu].key", i, j);
      CHECK_STR(s->label[j].str, "sample[%zu].label[%zu].str", i, j);
      CHECK_STR(s->label[j].num_unit, "sample[%zu].label[%zu].num_unit", i, j);
    }
  }
  return 0;
}
