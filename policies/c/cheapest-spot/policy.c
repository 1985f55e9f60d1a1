/* cheapest-spot: spot first. Every available spot offering that fits comes
 * first, cheapest first, even when pricier than on-demand (the built-in drops
 * such spot offerings); then reserved and on-demand, cheapest first. The pick
 * limit and minValues are kept as the built-in keeps them.
 *
 * Config (all optional):
 *   max-price           number, $/h: offerings pricier than this are never picked
 *   on-demand-fallback  boolean, default true: false picks spot offerings only */

#include <math.h>

#include "dovetail_policy.h"

DT_POLICY("cheapest-spot", "0.1.0",
          "available spot offerings cheapest first, then reserved and on-demand by price");

static double max_price = INFINITY;
static bool on_demand_fallback = true;

bool dt_configure(const dt_config *config, dt_config_error *err) {
  static const char *const known[] = {"max-price", "on-demand-fallback"};
  return dt_config_deny_unknown(config, known, 2, err) &&
         dt_config_number(config, "max-price", INFINITY, 0, 1000, &max_price, err) &&
         dt_config_bool(config, "on-demand-fallback", true, &on_demand_fallback, err);
}

static bool allowed(dt_offering o, void *unused) {
  (void)unused;
  return dt_offering_price(o) <= max_price && (on_demand_fallback || dt_offering_capacity_type(o) == DT_SPOT);
}

static uint32_t spot_first(dt_offering o, void *unused) {
  (void)unused;
  return dt_offering_capacity_type(o) == DT_SPOT ? 0 : 1;
}

static double price(dt_offering o, void *unused) {
  (void)unused;
  return dt_offering_price(o);
}

bool dt_pick(const dt_selection_request *req, const dt_launch *launch, dt_rows *picks, dt_error *err) {
  if (!dt_acceptable(req, launch, picks, err)) return false;
  size_t fitting = picks->len;
  dt_retain(req, picks, allowed, NULL);
  if (picks->len == 0) {
    if (on_demand_fallback)
      return dt_fail(err, DT_NO_ACCEPTABLE_OFFERING, "none of the %zu fitting offerings costs at most max-price $%g/h",
                     fitting, max_price);
    return dt_fail(err, DT_NO_ACCEPTABLE_OFFERING,
                   "none of the %zu fitting offerings is spot at most max-price $%g/h, and on-demand-fallback is false",
                   fitting, max_price);
  }
  if (!dt_rank_tiered(req, picks, spot_first, price, NULL)) return dt_fail(err, DT_INTERNAL, "out of memory");
  return dt_truncate(req, launch, picks, err);
}
