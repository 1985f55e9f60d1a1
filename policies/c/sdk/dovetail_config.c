/* The operator's JSON config: a flat object read with typed getters whose
 * errors name the field, like the Rust SDK's `Config`. Nested values are
 * parsed (so any valid JSON object is accepted) but read only as their kind. */

#include "dovetail_policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper nesting than this in a config is refused rather than recursed into. */
#define DT_CONFIG_MAX_DEPTH 64

enum dt_json_kind { DT_JSON_NULL, DT_JSON_BOOL, DT_JSON_NUMBER, DT_JSON_STRING, DT_JSON_ARRAY, DT_JSON_OBJECT };

struct dt_config_field {
  char *key;
  enum dt_json_kind kind;
  bool boolean;
  double number;
  char *string; /* NUL-terminated, UTF-8 */
};

struct dt_config {
  struct dt_config_field *fields;
  size_t len, cap;
};

struct parser {
  const char *s;
  size_t len, at;
  char error[160];
};

static const char *kind_name(enum dt_json_kind k) {
  switch (k) {
  case DT_JSON_NULL: return "null";
  case DT_JSON_BOOL: return "a boolean";
  case DT_JSON_NUMBER: return "a number";
  case DT_JSON_STRING: return "a string";
  case DT_JSON_ARRAY: return "an array";
  default: return "an object";
  }
}

static bool fail(struct parser *p, const char *what) {
  if (!p->error[0])
    snprintf(p->error, sizeof p->error, "%s at byte %zu", what, p->at);
  return false;
}

static void skip_ws(struct parser *p) {
  while (p->at < p->len && (p->s[p->at] == ' ' || p->s[p->at] == '\t' || p->s[p->at] == '\n' || p->s[p->at] == '\r'))
    p->at++;
}

static bool literal(struct parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->at < n || memcmp(p->s + p->at, word, n) != 0)
    return fail(p, "unexpected character");
  p->at += n;
  return true;
}

static int hex4(struct parser *p) {
  if (p->len - p->at < 4) return -1;
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->at++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return -1;
  }
  return v;
}

static void put_utf8(char *out, size_t *n, uint32_t cp) {
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xC0 | cp >> 6);
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[(*n)++] = (char)(0xE0 | cp >> 12);
    out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*n)++] = (char)(0xF0 | cp >> 18);
    out[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  }
}

/* A string at p->at (the opening quote); *out gets a malloc'd copy when
 * out is not NULL. Escapes never grow the text, so the raw length bounds it. */
static bool string(struct parser *p, char **out) {
  p->at++;
  size_t start = p->at, end = start;
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) return fail(p, "unterminated string");
  char *buf = out ? malloc(end - start + 1) : NULL;
  if (out && !buf) return fail(p, "out of memory");
  size_t n = 0;
  while (p->at < end) {
    unsigned char c = (unsigned char)p->s[p->at++];
    if (c < 0x20) { free(buf); return fail(p, "control character in string"); }
    if (c != '\\') { if (buf) buf[n++] = (char)c; continue; }
    char e = p->s[p->at++];
    uint32_t cp;
    switch (e) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u': {
      int hi = hex4(p);
      if (hi < 0) { free(buf); return fail(p, "bad \\u escape"); }
      cp = (uint32_t)hi;
      if (hi >= 0xD800 && hi <= 0xDBFF) {
        int lo = -1;
        if (p->at + 2 <= end && p->s[p->at] == '\\' && p->s[p->at + 1] == 'u') { p->at += 2; lo = hex4(p); }
        if (lo < 0xDC00 || lo > 0xDFFF) { free(buf); return fail(p, "unpaired surrogate in \\u escape"); }
        cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
      } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
        free(buf);
        return fail(p, "unpaired surrogate in \\u escape");
      }
      break;
    }
    default: free(buf); return fail(p, "bad escape in string");
    }
    if (buf) put_utf8(buf, &n, cp);
  }
  p->at = end + 1;
  if (buf) { buf[n] = 0; *out = buf; }
  return true;
}

static bool number(struct parser *p, double *out) {
  size_t start = p->at;
  if (p->at < p->len && p->s[p->at] == '-') p->at++;
  size_t digits = p->at;
  while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') p->at++;
  if (p->at == digits || (p->s[digits] == '0' && p->at - digits > 1)) return fail(p, "bad number");
  if (p->at < p->len && p->s[p->at] == '.') {
    size_t frac = ++p->at;
    while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') p->at++;
    if (p->at == frac) return fail(p, "bad number");
  }
  if (p->at < p->len && (p->s[p->at] == 'e' || p->s[p->at] == 'E')) {
    p->at++;
    if (p->at < p->len && (p->s[p->at] == '+' || p->s[p->at] == '-')) p->at++;
    size_t exp = p->at;
    while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') p->at++;
    if (p->at == exp) return fail(p, "bad number");
  }
  char tmp[64];
  size_t n = p->at - start;
  if (n >= sizeof tmp) { *out = NAN; return true; } /* absurdly long: out of any range */
  memcpy(tmp, p->s + start, n);
  tmp[n] = 0;
  *out = strtod(tmp, NULL);
  return true;
}

static bool value(struct parser *p, int depth, struct dt_config_field *f);

static bool object(struct parser *p, int depth, struct dt_config *fields) {
  p->at++;
  skip_ws(p);
  if (p->at < p->len && p->s[p->at] == '}') { p->at++; return true; }
  for (;;) {
    skip_ws(p);
    if (p->at >= p->len || p->s[p->at] != '"') return fail(p, "expected a field name");
    struct dt_config_field f = {0};
    if (!string(p, fields ? &f.key : NULL)) return false;
    skip_ws(p);
    if (p->at >= p->len || p->s[p->at] != ':') { free(f.key); return fail(p, "expected ':'"); }
    p->at++;
    skip_ws(p);
    if (!value(p, depth + 1, fields ? &f : NULL)) { free(f.key); return false; }
    if (fields) {
      for (size_t i = 0; i < fields->len; i++)
        if (strcmp(fields->fields[i].key, f.key) == 0) {
          snprintf(p->error, sizeof p->error, "field \"%s\" appears twice", f.key);
          free(f.key);
          free(f.string);
          return false;
        }
      if (fields->len == fields->cap) {
        size_t cap = fields->cap ? fields->cap * 2 : 8;
        void *grown = realloc(fields->fields, cap * sizeof *fields->fields);
        if (!grown) { free(f.key); free(f.string); return fail(p, "out of memory"); }
        fields->fields = grown;
        fields->cap = cap;
      }
      fields->fields[fields->len++] = f;
    }
    skip_ws(p);
    if (p->at < p->len && p->s[p->at] == ',') { p->at++; continue; }
    if (p->at < p->len && p->s[p->at] == '}') { p->at++; return true; }
    return fail(p, "expected ',' or '}'");
  }
}

static bool array(struct parser *p, int depth) {
  p->at++;
  skip_ws(p);
  if (p->at < p->len && p->s[p->at] == ']') { p->at++; return true; }
  for (;;) {
    skip_ws(p);
    if (!value(p, depth + 1, NULL)) return false;
    skip_ws(p);
    if (p->at < p->len && p->s[p->at] == ',') { p->at++; continue; }
    if (p->at < p->len && p->s[p->at] == ']') { p->at++; return true; }
    return fail(p, "expected ',' or ']'");
  }
}

/* One value; its kind (and scalar) into *f when f is not NULL. */
static bool value(struct parser *p, int depth, struct dt_config_field *f) {
  if (depth > DT_CONFIG_MAX_DEPTH) return fail(p, "nested too deeply");
  struct dt_config_field ignored;
  if (!f) f = &ignored;
  if (p->at >= p->len) return fail(p, "unexpected end");
  switch (p->s[p->at]) {
  case '{': f->kind = DT_JSON_OBJECT; return object(p, depth, NULL);
  case '[': f->kind = DT_JSON_ARRAY; return array(p, depth);
  case '"': f->kind = DT_JSON_STRING; return string(p, f == &ignored ? NULL : &f->string);
  case 't': f->kind = DT_JSON_BOOL; f->boolean = true; return literal(p, "true");
  case 'f': f->kind = DT_JSON_BOOL; f->boolean = false; return literal(p, "false");
  case 'n': f->kind = DT_JSON_NULL; return literal(p, "null");
  default: f->kind = DT_JSON_NUMBER; return number(p, &f->number);
  }
}

void dt_config_free(dt_config *c) {
  if (!c) return;
  for (size_t i = 0; i < c->len; i++) {
    free(c->fields[i].key);
    free(c->fields[i].string);
  }
  free(c->fields);
  free(c);
}

static bool set_error(dt_config_error *err, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dt_config_error_setv(err, field, fmt, ap);
  va_end(ap);
  return false;
}

dt_config *dt_config_parse(const char *json, size_t len, dt_config_error *err) {
  struct parser p = {.s = json, .len = len};
  skip_ws(&p);
  if (p.at == p.len) return calloc(1, sizeof(dt_config)); /* "" means {} */
  if (p.s[p.at] != '{') {
    struct dt_config_field f = {0};
    if (value(&p, 0, &f)) {
      free(f.string);
      skip_ws(&p);
      if (p.at == p.len) {
        set_error(err, "", "config must be a JSON object, got %s", kind_name(f.kind));
        return NULL;
      }
      fail(&p, "trailing characters");
    }
    set_error(err, "", "config is not valid JSON: %s", p.error);
    return NULL;
  }
  dt_config *c = calloc(1, sizeof(dt_config));
  if (!c) { set_error(err, "", "out of memory"); return NULL; }
  if (object(&p, 0, c)) {
    skip_ws(&p);
    if (p.at == p.len) return c;
    fail(&p, "trailing characters");
  }
  dt_config_free(c);
  set_error(err, "", "config is not valid JSON: %s", p.error);
  return NULL;
}

static const struct dt_config_field *find(const dt_config *c, const char *field) {
  for (size_t i = 0; i < c->len; i++)
    if (strcmp(c->fields[i].key, field) == 0) return &c->fields[i];
  return NULL;
}

bool dt_config_has(const dt_config *c, const char *field) { return find(c, field) != NULL; }

bool dt_config_number(const dt_config *c, const char *field, double dflt, double min, double max,
                      double *out, dt_config_error *err) {
  const struct dt_config_field *f = find(c, field);
  if (!f) { *out = dflt; return true; }
  if (f->kind != DT_JSON_NUMBER)
    return set_error(err, field, "must be a number, got %s", kind_name(f->kind));
  if (!isfinite(f->number) || f->number < min || f->number > max)
    return set_error(err, field, "must be between %g and %g, got %g", min, max, f->number);
  *out = f->number;
  return true;
}

bool dt_config_bool(const dt_config *c, const char *field, bool dflt, bool *out, dt_config_error *err) {
  const struct dt_config_field *f = find(c, field);
  if (!f) { *out = dflt; return true; }
  if (f->kind != DT_JSON_BOOL)
    return set_error(err, field, "must be true or false, got %s", kind_name(f->kind));
  *out = f->boolean;
  return true;
}

bool dt_config_string(const dt_config *c, const char *field, const char *dflt, const char **out,
                      dt_config_error *err) {
  const struct dt_config_field *f = find(c, field);
  if (!f) { *out = dflt; return true; }
  if (f->kind != DT_JSON_STRING)
    return set_error(err, field, "must be a string, got %s", kind_name(f->kind));
  *out = f->string;
  return true;
}

bool dt_config_deny_unknown(const dt_config *c, const char *const *known, size_t n, dt_config_error *err) {
  for (size_t i = 0; i < c->len; i++) {
    bool ok = false;
    for (size_t k = 0; k < n && !ok; k++) ok = strcmp(c->fields[i].key, known[k]) == 0;
    if (ok) continue;
    if (n == 0) return set_error(err, c->fields[i].key, "unknown field: this policy takes no settings");
    char list[512] = "";
    size_t at = 0;
    for (size_t k = 0; k < n && at < sizeof list; k++)
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%s", k ? ", " : "", known[k]);
    return set_error(err, c->fields[i].key, "unknown field; known fields: %s", list);
  }
  return true;
}
