/* Karpenter's built-in behaviour written against the C SDK, so the tests can
 * hold every C building block to the native built-in: selection by
 * dt_acceptable + dt_rank_cheapest + dt_truncate, ranking by scaled
 * disruption cost, approval of strictly cheaper moves. */

#include "dovetail_policy.h"

DT_POLICY("c-default", "0.1.0", "Karpenter's built-in decisions, in C");

bool dt_configure(const dt_config *config, dt_config_error *err) {
  return dt_config_deny_unknown(config, NULL, 0, err);
}

bool dt_pick(const dt_selection_request *req, const dt_launch *launch, dt_rows *picks, dt_error *err) {
  if (!dt_acceptable(req, launch, picks, err)) return false;
  if (!dt_rank_cheapest(req, picks)) return dt_fail(err, DT_INTERNAL, "out of memory");
  return dt_truncate(req, launch, picks, err);
}

bool dt_rank(const dt_context *ctx, dt_score *scores, dt_error *err) {
  for (uint32_t i = 0; i < dt_candidate_count(ctx); i++)
    scores[i].score = dt_scaled_disruption_cost(dt_candidate_at(ctx, i));
  return true;
}

bool dt_approve(const dt_context *ctx, const dt_move *move, char **reason) {
  return dt_approve_strictly_cheaper(ctx, move, reason);
}
