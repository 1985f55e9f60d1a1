// cheapest-spot: a Dovetail instance-selection policy in JavaScript.
//
// For each planned node: the compatible offerings that are available and hold
// its demand, spot first, each tier cheapest first; on-demand and reserved
// offerings follow unless `on_demand_fallback` is false. GPU offerings are left
// out when the pods ask for no GPU and anything else fits. The picks respect
// the launch's pick limit (60 when it sets none) and keep enough distinct
// values for every minValues requirement.
//
// Config (JSON, all optional):
//   max_price           number   drop offerings pricier than this, $/hour
//   on_demand_fallback  boolean  offer on-demand and reserved after spot (default true)

import { enabled, log } from 'dovetail:policy/log@0.1.0';

const NAME = 'cheapest-spot';
const VERSION = '0.1.0';
const MAX_PICKS = 60;
const SPOT = 1;

// Set by configure(), which the host calls on every fresh instance before a decision.
let config = { maxPrice: Infinity, onDemandFallback: true };

function configError(field, message) {
  // A thrown plain object becomes the `config-error` of configure's result.
  return { field, message };
}

function parseConfig(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw configError('', `config is not JSON: ${e.message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw configError('', 'config must be a JSON object, e.g. {"max_price": 0.5}');
  }
  const out = { maxPrice: Infinity, onDemandFallback: true };
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'max_price') {
      if (typeof value !== 'number' || !(value > 0)) {
        throw configError(key, `must be a positive number of dollars per hour, got ${JSON.stringify(value)}`);
      }
      out.maxPrice = value;
    } else if (key === 'on_demand_fallback') {
      if (typeof value !== 'boolean') {
        throw configError(key, `must be true or false, got ${JSON.stringify(value)}`);
      }
      out.onDemandFallback = value;
    } else {
      throw configError(key, 'unknown field; known fields: max_price, on_demand_fallback');
    }
  }
  return out;
}

function failure(kind, message) {
  return { tag: 'err', val: { kind, message } };
}

// The value of a min-values attribute for offering `row`, as a comparable number.
function attributeValue(req, row, attribute) {
  const o = req.offerings;
  const d = req.dictionaries;
  const it = o.instanceType[row];
  switch (attribute) {
    case 'instance-type': return it;
    case 'family': return d.typeFamily[it];
    case 'category': return d.typeCategory[it];
    case 'zone': return o.zone[row];
    case 'capacity-type': return o.capacityType[row];
    case 'architecture': return d.typeArchitecture[it];
    default: return -1;
  }
}

// Available, allowed by the config, and big enough for the demand.
function acceptable(req, launch) {
  const o = req.offerings;
  const d = launch.demand;
  const cpu = Number(d.cpuMilli);
  const mem = Number(d.memoryMib);
  let rows = [];
  for (const row of launch.compatible) {
    if (o.available[row]
      && Number(o.allocCpuMilli[row]) >= cpu
      && Number(o.allocMemoryMib[row]) >= mem
      && o.allocPods[row] >= d.pods
      && o.gpus[row] >= d.gpus
      && o.pricePerHour[row] <= config.maxPrice
      && (config.onDemandFallback || o.capacityType[row] === SPOT)) {
      rows.push(row);
    }
  }
  // Never burn a GPU node on pods that ask for none, when anything else fits.
  if (d.gpus === 0 && rows.some((r) => o.gpus[r] === 0)) {
    rows = rows.filter((r) => o.gpus[r] === 0);
  }
  return rows;
}

// Spot first, then cheapest first, then by row so every run gives the same order.
function rank(req, rows) {
  const o = req.offerings;
  const tier = (r) => (o.capacityType[r] === SPOT ? 0 : 1);
  return rows.sort((a, b) => tier(a) - tier(b) || o.pricePerHour[a] - o.pricePerHour[b] || a - b);
}

// Up to the pick limit, keeping for each minValues requirement the best-ranked
// offering of every value it needs first; the result keeps the ranked order.
function truncate(req, launch, ranked) {
  const limit = launch.picks === 0 ? MAX_PICKS : Math.min(launch.picks, MAX_PICKS);
  const chosen = new Uint8Array(ranked.length);
  let count = 0;
  for (const mv of launch.minValues) {
    const seen = new Set();
    ranked.forEach((row, at) => {
      if (chosen[at]) seen.add(attributeValue(req, row, mv.attribute));
    });
    for (let at = 0; at < ranked.length && seen.size < mv.min; at++) {
      const value = attributeValue(req, ranked[at], mv.attribute);
      if (!seen.has(value)) {
        seen.add(value);
        if (!chosen[at]) {
          chosen[at] = 1;
          count++;
        }
      }
    }
    if (seen.size < mv.min) {
      return failure('unsatisfiable',
        `minValues ${mv.attribute} >= ${mv.min} cannot be met: the ${ranked.length} acceptable offerings have only ${seen.size} distinct values`);
    }
  }
  if (count > limit) {
    return failure('unsatisfiable', `minValues need ${count} offerings but at most ${limit} may be picked`);
  }
  for (let at = 0; at < ranked.length && count < limit; at++) {
    if (!chosen[at]) {
      chosen[at] = 1;
      count++;
    }
  }
  return { tag: 'ok', val: ranked.filter((_, at) => chosen[at]) };
}

function pick(req, launch, index) {
  const rowCount = req.offerings.instanceType.length;
  const bad = launch.compatible.find((r) => r >= rowCount);
  if (bad !== undefined) {
    return failure('invalid-input', `compatible row ${bad} is outside the offering table (${rowCount} rows)`);
  }
  const rows = acceptable(req, launch);
  if (rows.length === 0) {
    const d = launch.demand;
    return failure('no-acceptable-offering',
      `none of the ${launch.compatible.length} compatible offerings is available within max_price with room for cpu ${d.cpuMilli}m, memory ${d.memoryMib}Mi, ${d.pods} pods, ${d.gpus} GPUs`);
  }
  const result = truncate(req, launch, rank(req, rows));
  if (result.tag === 'ok' && enabled('debug')) {
    log('debug', `launch ${index}: ${result.val.length} picks of ${rows.length} acceptable offerings`);
  }
  return result;
}

export const meta = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      description: 'Cheapest available spot offerings first, then on-demand by price',
      decisions: ['instance-selection'],
    };
  },
  configure(text) {
    config = parseConfig(text);
  },
};

export const instanceSelection = {
  select(req) {
    return req.requests.map((launch, i) => pick(req, launch, i));
  },
};
