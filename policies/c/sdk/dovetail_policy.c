/* The component's exports over the policy's callbacks, and the building
 * blocks of the Rust SDK's prelude. Everything the host hands in is freed
 * here after the callback; everything handed back is heap memory the
 * generated post-return functions free. */

#include "dovetail_policy.h"

#include <stdio.h>
#include <stdlib.h>

/* Longest verdict reason the host keeps (MAX_REASON_BYTES). */
#define DT_MAX_REASON_BYTES 4096

/* ---- messages ------------------------------------------------------------ */

static char *vformat(const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  char *s = n < 0 ? NULL : malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, again);
  va_end(again);
  return s;
}

bool dt_fail(dt_error *err, dt_error_kind kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  free(err->message);
  err->kind = kind;
  err->message = vformat(fmt, ap);
  va_end(ap);
  return false;
}

void dt_config_error_setv(dt_config_error *err, const char *field, const char *fmt, va_list ap) {
  free(err->field);
  free(err->message);
  err->field = strdup(field ? field : "");
  err->message = vformat(fmt, ap);
}

bool dt_config_fail(dt_config_error *err, const char *field, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dt_config_error_setv(err, field, fmt, ap);
  va_end(ap);
  return false;
}

void dt_log(dt_level level, const char *fmt, ...) {
  if (!dovetail_policy_log_enabled((dovetail_policy_log_level_t)level)) return;
  va_list ap;
  va_start(ap, fmt);
  char *text = vformat(fmt, ap);
  va_end(ap);
  if (!text) return;
  dovetail_bindings_string_t s = {(uint8_t *)text, strlen(text)};
  dovetail_policy_log_log((dovetail_policy_log_level_t)level, &s);
  free(text);
}

/* Hands a heap C string (or NULL, meaning `fallback`) to a wire string. */
static void to_wire(dovetail_bindings_string_t *out, char *s, const char *fallback) {
  if (!s && fallback) s = strdup(fallback);
  size_t len = s ? strlen(s) : 0;
  if (len == 0) { /* post-return frees only non-empty strings */
    free(s);
    out->ptr = NULL;
    out->len = 0;
    return;
  }
  out->ptr = (uint8_t *)s;
  out->len = len;
}

/* ---- rows --------------------------------------------------------------- */

bool dt_rows_push(dt_rows *rows, uint32_t row) {
  if (rows->len == rows->cap) {
    size_t cap = rows->cap ? rows->cap * 2 : 16;
    uint32_t *grown = realloc(rows->ptr, cap * sizeof *grown);
    if (!grown) return false;
    rows->ptr = grown;
    rows->cap = cap;
  }
  rows->ptr[rows->len++] = row;
  return true;
}

void dt_rows_free(dt_rows *rows) {
  free(rows->ptr);
  rows->ptr = NULL;
  rows->len = rows->cap = 0;
}

/* ---- meta ----------------------------------------------------------------- */

void exports_dovetail_policy_meta_describe(exports_dovetail_policy_meta_policy_info_t *ret) {
  to_wire(&ret->name, strdup(dt_policy.name ? dt_policy.name : ""), NULL);
  to_wire(&ret->version, strdup(dt_policy.version ? dt_policy.version : ""), NULL);
  to_wire(&ret->description, strdup(dt_policy.description ? dt_policy.description : ""), NULL);
  exports_dovetail_policy_meta_decision_t *d = malloc(2 * sizeof *d);
  size_t n = 0;
  if (d && DT_SELECTION) d[n++] = EXPORTS_DOVETAIL_POLICY_META_DECISION_INSTANCE_SELECTION;
  if (d && DT_SCORING) d[n++] = EXPORTS_DOVETAIL_POLICY_META_DECISION_CONSOLIDATION_SCORING;
  ret->decisions.ptr = d;
  ret->decisions.len = n;
}

bool exports_dovetail_policy_meta_configure(dovetail_bindings_string_t *config,
                                           exports_dovetail_policy_meta_config_error_t *err) {
  dt_config_error e = {NULL, NULL};
  dt_config *c = dt_config_parse((const char *)config->ptr, config->len, &e);
  bool ok = c && dt_configure(c, &e);
  dt_config_free(c);
  dovetail_bindings_string_free(config);
  if (ok) {
    free(e.field);
    free(e.message);
    return true;
  }
  to_wire(&err->field, e.field, NULL);
  to_wire(&err->message, e.message, "invalid config");
  return false;
}

#if DT_SELECTION
/* ---- instance selection -------------------------------------------------- */

static bool offerings_rectangular(const dt_selection_request *r) {
  const dovetail_policy_types_offering_table_t *o = &r->offerings;
  size_t n = o->instance_type.len;
  return o->vcpu.len == n && o->memory_mib.len == n && o->gpus.len == n && o->alloc_cpu_milli.len == n &&
         o->alloc_memory_mib.len == n && o->alloc_pods.len == n && o->zone.len == n &&
         o->capacity_type.len == n && o->price_per_hour.len == n && o->available.len == n;
}

/* What every decision checks first, so the views of its rows are in range. */
static bool check_launch(const dt_selection_request *r, const dt_launch *l, dt_error *err) {
  if (!offerings_rectangular(r)) return dt_fail(err, DT_INVALID_INPUT, "offering table columns differ in length");
  size_t rows = dt_offering_count(r);
  for (size_t i = 0; i < l->compatible.len; i++)
    if (l->compatible.ptr[i] >= rows)
      return dt_fail(err, DT_INVALID_INPUT, "compatible row %u is outside the offering table (%zu rows)",
                     (unsigned)l->compatible.ptr[i], rows);
  return true;
}

void exports_dovetail_policy_instance_selection_select(
    dt_selection_request *req, exports_dovetail_policy_instance_selection_list_result_list_u32_policy_error_t *ret) {
  size_t n = req->requests.len;
  ret->ptr = n ? calloc(n, sizeof *ret->ptr) : NULL;
  ret->len = n && ret->ptr ? n : 0;
  for (size_t i = 0; i < ret->len; i++) {
    const dt_launch *launch = &req->requests.ptr[i];
    exports_dovetail_policy_instance_selection_result_list_u32_policy_error_t *out = &ret->ptr[i];
    dt_rows picks = {NULL, 0, 0};
    dt_error err = {DT_INTERNAL, NULL};
    if (check_launch(req, launch, &err) && dt_pick(req, launch, &picks, &err)) {
      out->is_err = false;
      if (picks.len == 0) dt_rows_free(&picks);
      out->val.ok.ptr = picks.ptr;
      out->val.ok.len = picks.len;
    } else {
      dt_rows_free(&picks);
      out->is_err = true;
      out->val.err.kind = (dovetail_policy_types_error_kind_t)err.kind;
      to_wire(&out->val.err.message, err.message, "the policy gave no reason");
    }
  }
  dovetail_policy_types_selection_request_free(req);
}

bool dt_fits(const dt_selection_request *r, const dt_launch *l, uint32_t row) {
  const dovetail_policy_types_offering_table_t *o = &r->offerings;
  const dt_demand *d = &l->demand;
  return row < dt_offering_count(r) && o->available.ptr[row] && o->alloc_cpu_milli.ptr[row] >= d->cpu_milli &&
         o->alloc_memory_mib.ptr[row] >= d->memory_mib && o->alloc_pods.ptr[row] >= d->pods &&
         o->gpus.ptr[row] >= d->gpus;
}

bool dt_acceptable(const dt_selection_request *r, const dt_launch *l, dt_rows *out, dt_error *err) {
  size_t start = out->len;
  bool any_plain = false;
  for (size_t i = 0; i < l->compatible.len; i++) {
    uint32_t row = l->compatible.ptr[i];
    if (!dt_fits(r, l, row)) continue;
    if (!dt_rows_push(out, row)) return dt_fail(err, DT_INTERNAL, "out of memory");
    any_plain |= r->offerings.gpus.ptr[row] == 0;
  }
  /* Never burn a GPU node on CPU pods when anything else fits. */
  if (l->demand.gpus == 0 && any_plain) {
    size_t kept = start;
    for (size_t i = start; i < out->len; i++)
      if (r->offerings.gpus.ptr[out->ptr[i]] == 0) out->ptr[kept++] = out->ptr[i];
    out->len = kept;
  }
  if (out->len > start) return true;
  return dt_fail(err, DT_NO_ACCEPTABLE_OFFERING,
                 "none of the %zu compatible offerings is available with room for cpu %llum, memory %lluMi, "
                 "%u pods, %u GPUs",
                 l->compatible.len, (unsigned long long)l->demand.cpu_milli,
                 (unsigned long long)l->demand.memory_mib, (unsigned)l->demand.pods, (unsigned)l->demand.gpus);
}

void dt_retain(const dt_selection_request *r, dt_rows *rows, bool (*keep)(dt_offering, void *), void *ctx) {
  size_t kept = 0;
  for (size_t i = 0; i < rows->len; i++)
    if (keep(dt_offering_at(r, rows->ptr[i]), ctx)) rows->ptr[kept++] = rows->ptr[i];
  rows->len = kept;
}

typedef struct {
  double key;
  uint32_t tier;
  uint32_t row;
} keyed;

static int by_key(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->tier != y->tier) return x->tier < y->tier ? -1 : 1;
  /* NaN keys sort last, like an unordered key in the Rust SDK's stable tie-break. */
  bool xn = x->key != x->key, yn = y->key != y->key;
  if (xn != yn) return xn ? 1 : -1;
  if (!xn && x->key != y->key) return x->key < y->key ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static bool sort_keyed(dt_rows *rows, keyed *k) {
  qsort(k, rows->len, sizeof *k, by_key);
  for (size_t i = 0; i < rows->len; i++) rows->ptr[i] = k[i].row;
  free(k);
  return true;
}

bool dt_rank_tiered(const dt_selection_request *r, dt_rows *rows, uint32_t (*tier)(dt_offering, void *),
                    double (*key)(dt_offering, void *), void *ctx) {
  if (rows->len == 0) return true;
  keyed *k = malloc(rows->len * sizeof *k);
  if (!k) return false;
  for (size_t i = 0; i < rows->len; i++) {
    dt_offering o = dt_offering_at(r, rows->ptr[i]);
    k[i] = (keyed){key ? key(o, ctx) : 0, tier ? tier(o, ctx) : 0, rows->ptr[i]};
  }
  return sort_keyed(rows, k);
}

bool dt_rank_by(const dt_selection_request *r, dt_rows *rows, double (*key)(dt_offering, void *), void *ctx) {
  return dt_rank_tiered(r, rows, NULL, key, ctx);
}

bool dt_rank_cheapest(const dt_selection_request *r, dt_rows *rows) {
  const dovetail_policy_types_offering_table_t *o = &r->offerings;
  double cheapest_on_demand = __builtin_inf();
  for (size_t i = 0; i < rows->len; i++) {
    uint32_t row = rows->ptr[i];
    if (o->capacity_type.ptr[row] == DT_ON_DEMAND && o->price_per_hour.ptr[row] < cheapest_on_demand)
      cheapest_on_demand = o->price_per_hour.ptr[row];
  }
  size_t kept = 0;
  for (size_t i = 0; i < rows->len; i++) {
    uint32_t row = rows->ptr[i];
    if (o->capacity_type.ptr[row] != DT_SPOT || o->price_per_hour.ptr[row] <= cheapest_on_demand)
      rows->ptr[kept++] = row;
  }
  rows->len = kept;
  if (rows->len == 0) return true;
  keyed *k = malloc(rows->len * sizeof *k);
  if (!k) return false;
  for (size_t i = 0; i < rows->len; i++) {
    uint32_t row = rows->ptr[i];
    uint8_t cap = o->capacity_type.ptr[row];
    k[i] = (keyed){o->price_per_hour.ptr[row], cap == DT_RESERVED ? 0 : cap == DT_SPOT ? 1 : 2, row};
  }
  return sort_keyed(rows, k);
}

uint32_t dt_attribute_value(const dt_selection_request *r, uint32_t row, dovetail_policy_types_attribute_t attribute) {
  const dovetail_policy_types_offering_table_t *o = &r->offerings;
  const dovetail_policy_types_dictionaries_t *d = &r->dictionaries;
  if (row >= dt_offering_count(r)) return UINT32_MAX;
  uint32_t t = o->instance_type.ptr[row];
  switch (attribute) {
  case DOVETAIL_POLICY_TYPES_ATTRIBUTE_INSTANCE_TYPE: return t;
  case DOVETAIL_POLICY_TYPES_ATTRIBUTE_FAMILY: return t < d->type_family.len ? d->type_family.ptr[t] : UINT32_MAX;
  case DOVETAIL_POLICY_TYPES_ATTRIBUTE_CATEGORY: return t < d->type_category.len ? d->type_category.ptr[t] : UINT32_MAX;
  case DOVETAIL_POLICY_TYPES_ATTRIBUTE_ZONE: return o->zone.ptr[row];
  case DOVETAIL_POLICY_TYPES_ATTRIBUTE_CAPACITY_TYPE: return o->capacity_type.ptr[row];
  default: return t < d->type_architecture.len ? d->type_architecture.ptr[t] : UINT32_MAX;
  }
}

static const char *attribute_label(dovetail_policy_types_attribute_t a) {
  /* The Kubernetes labels minValues are written with, as the host names them. */
  static const char *labels[] = {"node.kubernetes.io/instance-type", "karpenter.k8s.aws/instance-family",
                                 "karpenter.k8s.aws/instance-category", "topology.kubernetes.io/zone",
                                 "karpenter.sh/capacity-type", "kubernetes.io/arch"};
  return a < 6 ? labels[a] : "attribute";
}

/* Whether `v` is among the first `n` of `seen`; appends it when not. */
static bool insert_value(uint32_t *seen, size_t *n, uint32_t v) {
  for (size_t i = 0; i < *n; i++)
    if (seen[i] == v) return false;
  seen[(*n)++] = v;
  return true;
}

bool dt_truncate(const dt_selection_request *r, const dt_launch *l, dt_rows *rows, dt_error *err) {
  size_t limit = dt_pick_limit(l);
  size_t n = rows->len;
  /* By position in `rows`; `seen` holds distinct values (never more than n). */
  bool *chosen = calloc(n ? n : 1, sizeof *chosen);
  uint32_t *seen = malloc((n ? n : 1) * sizeof *seen);
  if (!chosen || !seen) {
    free(chosen);
    free(seen);
    return dt_fail(err, DT_INTERNAL, "out of memory");
  }
  size_t count = 0;
  for (size_t m = 0; m < l->min_values.len; m++) {
    dovetail_policy_types_min_values_t mv = l->min_values.ptr[m];
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
      if (chosen[i]) insert_value(seen, &distinct, dt_attribute_value(r, rows->ptr[i], mv.attribute));
    for (size_t i = 0; i < n && distinct < mv.min; i++)
      if (insert_value(seen, &distinct, dt_attribute_value(r, rows->ptr[i], mv.attribute)) && !chosen[i]) {
        chosen[i] = true;
        count++;
      }
    if (distinct < mv.min) {
      free(chosen);
      free(seen);
      return dt_fail(err, DT_UNSATISFIABLE,
                     "minValues %s >= %u cannot be met: the %zu acceptable offerings have only %zu distinct values",
                     attribute_label(mv.attribute), (unsigned)mv.min, n, distinct);
    }
  }
  free(seen);
  if (count > limit) {
    free(chosen);
    return dt_fail(err, DT_UNSATISFIABLE, "minValues need %zu offerings but at most %zu may be picked", count, limit);
  }
  for (size_t i = 0; i < n && count < limit; i++)
    if (!chosen[i]) {
      chosen[i] = true;
      count++;
    }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++)
    if (chosen[i]) rows->ptr[kept++] = rows->ptr[i];
  rows->len = kept;
  free(chosen);
  return true;
}
#endif /* DT_SELECTION */

#if DT_SCORING
/* ---- consolidation scoring ---------------------------------------------- */

static bool candidates_rectangular(const dt_context *c) {
  const dovetail_policy_types_candidate_table_t *t = &c->candidates;
  size_t n = t->node.len;
  return t->node_pool.len == n && t->instance_type.len == n && t->capacity_type.len == n && t->zone.len == n &&
         t->price_per_hour.len == n && t->age_seconds.len == n && t->expire_after_seconds.len == n &&
         t->cpu_utilisation.len == n && t->memory_utilisation.len == n && t->pods.len == n &&
         t->disruption_cost.len == n && t->reason.len == n;
}

static void policy_error(dovetail_policy_types_policy_error_t *out, dt_error *e) {
  out->kind = (dovetail_policy_types_error_kind_t)e->kind;
  to_wire(&out->message, e->message, "the policy gave no reason");
}

bool exports_dovetail_policy_consolidation_scoring_rank(dt_context *ctx, dovetail_bindings_list_option_f64_t *ret,
                                                        dovetail_policy_types_policy_error_t *err) {
  dt_error e = {DT_INTERNAL, NULL};
  size_t n = dt_candidate_count(ctx);
  dt_score *scores = NULL;
  bool ok;
  if (!candidates_rectangular(ctx)) {
    ok = dt_fail(&e, DT_INVALID_INPUT, "candidate table columns differ in length");
  } else if (n && !(scores = calloc(n, sizeof *scores))) {
    ok = dt_fail(&e, DT_INTERNAL, "out of memory");
  } else {
    for (size_t i = 0; i < n; i++) scores[i].included = true;
    ok = dt_rank(ctx, scores, &e);
  }
  if (ok) {
    ret->ptr = n ? malloc(n * sizeof *ret->ptr) : NULL;
    ret->len = ret->ptr ? n : 0;
    for (size_t i = 0; i < ret->len; i++) {
      ret->ptr[i].is_some = scores[i].included;
      ret->ptr[i].val = scores[i].included ? scores[i].score : 0;
    }
    if (n && !ret->ptr) ok = dt_fail(&e, DT_INTERNAL, "out of memory");
  }
  if (!ok) policy_error(err, &e);
  free(scores);
  dovetail_policy_types_consolidation_context_free(ctx);
  return ok;
}

/* Cuts a reason to the host's limit on a UTF-8 character boundary. */
static void clamp_reason(char *s) {
  size_t len = s ? strlen(s) : 0;
  if (len <= DT_MAX_REASON_BYTES) return;
  size_t at = DT_MAX_REASON_BYTES;
  while (at > 0 && ((unsigned char)s[at] & 0xC0) == 0x80) at--;
  s[at] = 0;
}

bool exports_dovetail_policy_consolidation_scoring_approve(
    dt_context *ctx, dovetail_policy_types_move_table_t *moves,
    exports_dovetail_policy_consolidation_scoring_list_verdict_t *ret, dovetail_policy_types_policy_error_t *err) {
  dt_error e = {DT_INTERNAL, NULL};
  size_t n = moves->reason.len, candidates = dt_candidate_count(ctx);
  bool ok = candidates_rectangular(ctx) && moves->removed_ends.len == n && moves->replaces.len == n &&
            moves->replacement_price_per_hour.len == n && moves->savings_per_hour.len == n &&
            moves->pods_evicted.len == n && moves->disruption_cost.len == n;
  for (size_t i = 0; ok && i < n; i++) {
    uint32_t start = i ? moves->removed_ends.ptr[i - 1] : 0, end = moves->removed_ends.ptr[i];
    ok = start <= end && end <= moves->removed.len;
  }
  for (size_t i = 0; ok && i < moves->removed.len; i++) ok = moves->removed.ptr[i] < candidates;
  if (!ok) dt_fail(&e, DT_INVALID_INPUT, "move table columns do not line up");
  if (ok && n && !(ret->ptr = calloc(n, sizeof *ret->ptr))) ok = dt_fail(&e, DT_INTERNAL, "out of memory");
  if (ok) {
    ret->len = n;
    for (size_t i = 0; i < n; i++) {
      uint32_t start = i ? moves->removed_ends.ptr[i - 1] : 0;
      dt_move m = {
          .reason = moves->reason.ptr[i],
          .removed = moves->removed.ptr + start,
          .removed_len = moves->removed_ends.ptr[i] - start,
          .replaces = moves->replaces.ptr[i],
          .replacement_price = moves->replacement_price_per_hour.ptr[i],
          .savings = moves->savings_per_hour.ptr[i],
          .pods_evicted = moves->pods_evicted.ptr[i],
          .disruption_cost = moves->disruption_cost.ptr[i],
      };
      char *reason = NULL;
      ret->ptr[i].approve = dt_approve(ctx, &m, &reason);
      clamp_reason(reason);
      to_wire(&ret->ptr[i].reason, reason, NULL);
    }
  } else {
    policy_error(err, &e);
  }
  dovetail_policy_types_consolidation_context_free(ctx);
  dovetail_policy_types_move_table_free(moves);
  return ok;
}

char *dt_reason(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

double dt_lifetime_remaining(dt_candidate k) {
  uint64_t expire = dt_candidate_expire_after_seconds(k);
  if (expire == 0) return 1.0;
  double left = 1.0 - (double)dt_candidate_age_seconds(k) / (double)expire;
  return left < 0 ? 0 : left > 1 ? 1 : left;
}

double dt_removed_cost(const dt_context *ctx, const dt_move *m) {
  double sum = 0;
  for (size_t i = 0; i < m->removed_len; i++)
    if (m->removed[i] < dt_candidate_count(ctx)) sum += ctx->candidates.price_per_hour.ptr[m->removed[i]];
  return sum;
}

bool dt_approve_strictly_cheaper(const dt_context *ctx, const dt_move *m, char **reason) {
  double current = dt_removed_cost(ctx, m);
  if (m->replaces && m->replacement_price >= current) {
    *reason = dt_reason("replacement costs $%.4f/h, not less than the $%.4f/h it replaces", m->replacement_price,
                        current);
    return false;
  }
  if (m->savings <= 0) {
    *reason = dt_reason("saves nothing ($%.4f/h)", m->savings);
    return false;
  }
  *reason = dt_reason("saves $%.4f/h", m->savings);
  return true;
}
#endif /* DT_SCORING */
