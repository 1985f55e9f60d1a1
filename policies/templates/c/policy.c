/* {{ name }}: a Dovetail policy in C.
{% if selection %}
 *
 * Instance selection: the launch's acceptable offerings (compatible,
 * available, big enough, no GPU waste), cheapest first, offerings above
 * `max-price` left out; the pick limit and minValues kept.
{% endif %}
{% if scoring %}
 *
 * Consolidation: candidates ranked by disruption cost scaled by remaining
 * lifetime (Karpenter's order); a move is approved when it is strictly cheaper
 * and saves at least `min-savings-percent` of what it removes.
{% endif %}
 *
 * The SDK (sdk/dovetail_policy.h) documents every view and helper. */

#include <math.h>
#include <stdlib.h>

#include "dovetail_policy.h"

DT_POLICY("{{ name }}", "0.1.0", "{{ name }} policy");

/* Config; set afresh by dt_configure on every instance. */
{% if selection %}
static double max_price = INFINITY;
{% endif %}
{% if scoring %}
static double min_savings_percent = 0;
{% endif %}

bool dt_configure(const dt_config *config, dt_config_error *err) {
  static const char *const known[] = {
{% if selection %}
      "max-price",
{% endif %}
{% if scoring %}
      "min-savings-percent",
{% endif %}
  };
  if (!dt_config_deny_unknown(config, known, sizeof known / sizeof *known, err)) return false;
{% if selection %}
  if (!dt_config_number(config, "max-price", INFINITY, 0, 1000, &max_price, err)) return false;
{% endif %}
{% if scoring %}
  if (!dt_config_number(config, "min-savings-percent", 0, 0, 100, &min_savings_percent, err)) return false;
{% endif %}
  return true;
}
{% if selection %}

static bool within_price(dt_offering o, void *unused) {
  (void)unused;
  return dt_offering_price(o) <= max_price;
}

static double price(dt_offering o, void *unused) {
  (void)unused;
  return dt_offering_price(o);
}

bool dt_pick(const dt_selection_request *req, const dt_launch *launch, dt_rows *picks, dt_error *err) {
  if (!dt_acceptable(req, launch, picks, err)) return false;
  dt_retain(req, picks, within_price, NULL);
  if (picks->len == 0)
    return dt_fail(err, DT_NO_ACCEPTABLE_OFFERING, "no fitting offering costs at most max-price $%g/h", max_price);
  if (!dt_rank_by(req, picks, price, NULL)) return dt_fail(err, DT_INTERNAL, "out of memory");
  dt_log(DT_DEBUG, "%zu offerings for node pool %.*s", picks->len, (int)dt_launch_node_pool(req, launch).len,
         dt_launch_node_pool(req, launch).ptr);
  return dt_truncate(req, launch, picks, err);
}
{% endif %}
{% if scoring %}

bool dt_rank(const dt_context *ctx, dt_score *scores, dt_error *err) {
  for (uint32_t i = 0; i < dt_candidate_count(ctx); i++)
    scores[i].score = dt_scaled_disruption_cost(dt_candidate_at(ctx, i));
  return true;
}

bool dt_approve(const dt_context *ctx, const dt_move *move, char **reason) {
  if (!dt_approve_strictly_cheaper(ctx, move, reason)) return false;
  double removed = dt_removed_cost(ctx, move);
  double percent = removed > 0 ? 100 * move->savings / removed : 100;
  free(*reason);
  if (percent < min_savings_percent) {
    *reason = dt_reason("saves %.1f%%, under min-savings-percent %g", percent, min_savings_percent);
    return false;
  }
  *reason = dt_reason("saves %.1f%% ($%.4f/h)", percent, move->savings);
  return true;
}
{% endif %}
