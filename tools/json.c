/*
 * tools/json.c - just enough JSON output for --json: string escaping and
 * key separators. Documents are written straight to a FILE; there is no
 * parser and no tree, which keeps fnprof free of a JSON dependency.
 */
#include "cli.h"

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. Symbol
 * names come from binaries and may hold any bytes; JSON must be UTF-8. */
static size_t utf8_len(const unsigned char *s) {
  size_t n;
  unsigned int min, cp;
  if (s[0] < 0x80)
    return 1;
  if ((s[0] & 0xe0) == 0xc0)
    n = 2, min = 0x80, cp = s[0] & 0x1f;
  else if ((s[0] & 0xf0) == 0xe0)
    n = 3, min = 0x800, cp = s[0] & 0x0f;
  else if ((s[0] & 0xf8) == 0xf0)
    n = 4, min = 0x10000, cp = s[0] & 0x07;
  else
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void json_string(FILE *f, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  fputc('"', f);
  while (*s) {
    unsigned char c = *s;
    size_t n = utf8_len(s);
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c < 0x20 || c == 0x7f) {
      fprintf(f, "\\u%04x", c);
    } else if (n == 0) {
      fputs("\\ufffd", f);
      n = 1;
    } else {
      fwrite(s, 1, n, f);
      s += n;
      continue;
    }
    s++;
  }
  fputc('"', f);
}

void json_key(FILE *f, bool first, const char *key) {
  if (!first)
    fputc(',', f);
  json_string(f, key);
  fputc(':', f);
}

void json_sample_type(FILE *f, const pprof_profile *p, int index) {
  json_key(f, true, "sample_type");
  json_string(f, pprof_str(p, p->sample_type[index].type));
  json_key(f, false, "unit");
  json_string(f, pprof_str(p, p->sample_type[index].unit));
}
