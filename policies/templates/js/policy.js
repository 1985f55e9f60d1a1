// {{ name }}: a Dovetail decision policy in JavaScript.
//
// It starts as Karpenter's built-in behaviour plus one setting per decision.
// Change the functions marked `YOUR POLICY` below, then run the commands in
// README.md.
//
// Config (JSON, see config.json):
{% if selection %}
// - `max-price-per-hour` (USD, default no limit): never pick an offering that
//   costs more.
{% endif %}
{% if scoring %}
// - `min-savings-percent` (0 to 100, default 0): approve a consolidation move
//   only when it saves at least this share of what it removes.
{% endif %}
//
// The WIT contract (wit/policy.wit) is the reference for what arrives: records
// become objects with camelCase fields, numeric lists arrive as arrays or typed
// arrays, u64 values as BigInt, enums as their kebab-case names. A `result`
// the contract returns is the return value, or a plain object thrown as its
// error (`{ field, message }` from configure, `{ kind, message }` from rank and
// approve); select returns `{ tag: 'ok', val: rows }` or
// `{ tag: 'err', val: { kind, message } }` per launch. Anything else thrown
// traps the instance, which the host counts as a failure.

import { enabled, log } from 'dovetail:policy/log@0.1.0';

const NAME = '{{ name }}';
const VERSION = '0.1.0';
const FIELDS = [
{% if selection %}
  'max-price-per-hour',
{% endif %}
{% if scoring %}
  'min-savings-percent',
{% endif %}
];

// Set by configure(), which the host calls on every fresh instance before a decision.
let settings = {
{% if selection %}
  maxPricePerHour: 10000,
{% endif %}
{% if scoring %}
  minSavingsPercent: 0,
{% endif %}
};

// A thrown plain object becomes configure's `config-error`.
function number(doc, field, fallback, min, max) {
  if (!(field in doc)) return fallback;
  const value = doc[field];
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw { field, message: `must be a number from ${min} to ${max}, got ${JSON.stringify(value)}` };
  }
  return value;
}

function configure(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw { field: '', message: `config is not JSON: ${e.message}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw { field: '', message: 'config must be a JSON object' };
  }
  for (const field of Object.keys(doc)) {
    if (!FIELDS.includes(field)) {
      throw { field, message: `unknown setting; known: ${FIELDS.join(', ')}` };
    }
  }
  settings = {
{% if selection %}
    maxPricePerHour: number(doc, 'max-price-per-hour', 10000, 0, 10000),
{% endif %}
{% if scoring %}
    minSavingsPercent: number(doc, 'min-savings-percent', 0, 0, 100),
{% endif %}
  };
}

function err(kind, message) {
  return { tag: 'err', val: { kind, message } };
}
{% if selection %}

const MAX_PICKS = 60;
const ON_DEMAND = 0;
const SPOT = 1;
const RESERVED = 2;

// Compatible rows that are available, have room for the pods, and cost at
// most max-price-per-hour; GPU offerings only when the pods ask for GPUs or
// nothing else fits.
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
      && o.pricePerHour[row] <= settings.maxPricePerHour) {
      rows.push(row);
    }
  }
  if (d.gpus === 0 && rows.some((r) => o.gpus[r] === 0)) {
    rows = rows.filter((r) => o.gpus[r] === 0);
  }
  return rows;
}

// YOUR POLICY: put the acceptable rows in order, best first (or drop some).
// Karpenter's order: reserved, then spot no pricier than the cheapest
// on-demand, then on-demand; cheapest first in each. A row's fields:
// req.offerings.{instanceType, vcpu, memoryMib, gpus, zone, capacityType,
// pricePerHour}[row]; its family and architecture through
// req.dictionaries.{typeFamily, typeArchitecture}[instanceType].
function order(req, rows) {
  const o = req.offerings;
  let cheapestOnDemand = Infinity;
  for (const r of rows) {
    if (o.capacityType[r] === ON_DEMAND) cheapestOnDemand = Math.min(cheapestOnDemand, o.pricePerHour[r]);
  }
  const tier = (r) => (o.capacityType[r] === RESERVED ? 0 : o.capacityType[r] === SPOT ? 1 : 2);
  return rows
    .filter((r) => o.capacityType[r] !== SPOT || o.pricePerHour[r] <= cheapestOnDemand)
    .sort((a, b) => tier(a) - tier(b) || o.pricePerHour[a] - o.pricePerHour[b] || a - b);
}

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

// Up to the launch's pick limit, keeping enough distinct values for every
// minValues requirement (the best-ranked row of each value first); the host
// refuses an answer that breaks either.
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
      return err('unsatisfiable', `minValues ${mv.attribute} >= ${mv.min} cannot be met: only ${seen.size} distinct values`);
    }
  }
  if (count > limit) {
    return err('unsatisfiable', `minValues need ${count} offerings but at most ${limit} may be picked`);
  }
  for (let at = 0; at < ranked.length && count < limit; at++) {
    if (!chosen[at]) {
      chosen[at] = 1;
      count++;
    }
  }
  return { tag: 'ok', val: ranked.filter((_, at) => chosen[at]) };
}

function pick(req, launch) {
  const rowCount = req.offerings.instanceType.length;
  const bad = launch.compatible.find((r) => r >= rowCount);
  if (bad !== undefined) {
    return err('invalid-input', `compatible row ${bad} is outside the offering table (${rowCount} rows)`);
  }
  const rows = acceptable(req, launch);
  if (rows.length === 0) {
    return err('no-acceptable-offering',
      `no compatible offering is available with room for the pods at $${settings.maxPricePerHour}/h or less (max-price-per-hour)`);
  }
  return truncate(req, launch, order(req, rows));
}

export const instanceSelection = {
  // One result per launch request: offering rows, best first.
  select(req) {
    if (enabled('debug')) log('debug', `${req.requests.length} launch requests`);
    return req.requests.map((launch) => pick(req, launch));
  },
};
{% endif %}
{% if scoring %}

function removedCost(ctx, moves, i) {
  const start = i === 0 ? 0 : moves.removedEnds[i - 1];
  let sum = 0;
  for (let k = start; k < moves.removedEnds[i]; k++) {
    sum += ctx.candidates.pricePerHour[moves.removed[k]] ?? 0;
  }
  return sum;
}

// YOUR POLICY: whether move `i` is worth its disruption. Karpenter approves
// any strictly cheaper move; this adds min-savings-percent. The move's
// fields: moves.{savingsPerHour, podsEvicted, disruptionCost, replaces,
// replacementPricePerHour}[i].
function approveMove(ctx, moves, i) {
  const current = removedCost(ctx, moves, i);
  const price = moves.replacementPricePerHour[i];
  const savings = moves.savingsPerHour[i];
  if (moves.replaces[i] && price >= current) {
    return { approve: false, reason: `replacement costs $${price.toFixed(4)}/h, not less than the $${current.toFixed(4)}/h it replaces` };
  }
  if (!(savings > 0)) {
    return { approve: false, reason: `saves nothing ($${savings.toFixed(4)}/h)` };
  }
  const percent = (100 * savings) / current;
  if (percent >= settings.minSavingsPercent) {
    return { approve: true, reason: `saves ${percent.toFixed(1)}% (threshold ${settings.minSavingsPercent}%)` };
  }
  return { approve: false, reason: `saves only ${percent.toFixed(1)}%, below the ${settings.minSavingsPercent}% threshold` };
}

export const consolidationScoring = {
  // One score per candidate, lowest tried first; undefined leaves it out.
  // Karpenter's: disruption cost scaled by the node's remaining lifetime.
  rank(ctx) {
    const c = ctx.candidates;
    return Array.from(c.node, (_, i) => {
      const expire = Number(c.expireAfterSeconds[i]);
      const life = expire === 0 ? 1 : Math.min(1, Math.max(0, 1 - Number(c.ageSeconds[i]) / expire));
      return c.disruptionCost[i] * life;
    });
  },
  // One verdict per move.
  approve(ctx, moves) {
    return Array.from(moves.reason, (_, i) => approveMove(ctx, moves, i));
  },
};
{% endif %}

export const meta = {
  describe() {
    return {
      name: NAME,
      version: VERSION,
      description: `${NAME}: Karpenter's behaviour, to be changed`,
      decisions: [
{% if selection %}
        'instance-selection',
{% endif %}
{% if scoring %}
        'consolidation-scoring',
{% endif %}
      ],
    };
  },
  configure,
};
