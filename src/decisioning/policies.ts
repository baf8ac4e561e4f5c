// Contact policies (SPEC §4.4): frequency caps, cooldowns, outcome suppression and channel opt-outs,
// compiled once with their flow and evaluated against one customer's recent contact history. Pure: the
// caller reads the history (or fails to) and brings the clock; volume caps, which count across all
// customers, are checked against counters the caller keeps (services/volume.ts).

import { allowanceNow, calendarWindow, isTimeZone } from "./calendar.ts";

/** Which offers and channels a policy covers; an absent list covers all. */
export interface PolicyTargetDef {
  offerIds?: string[];
  categoryIds?: string[];
  channelIds?: string[];
}

export type CapScope = "offer" | "category" | "channel" | "global";
export type CapWindow = "day" | "week" | "30d";

export interface FrequencyCapDef extends PolicyTargetDef {
  type: "frequency_cap";
  scope: CapScope;
  max: number;
  window: CapWindow;
}

export interface CooldownDef extends PolicyTargetDef {
  type: "cooldown";
  hours: number;
  scope?: "offer";
}

export interface OutcomeSuppressionDef extends PolicyTargetDef {
  type: "outcome_suppression";
  days: number;
  outcomes?: string[];
}

export interface OptOutDef extends PolicyTargetDef {
  type: "opt_out";
}

/**
 * A cap on recommendations across all customers (a volume constraint): at most `max` recommendations, or
 * recommendations worth at most `budget` of business value, per calendar window, counted per offer,
 * category or channel, or once for everything the policy covers. Exact across instances: each answer
 * reserves its share of the counters before it leaves.
 */
export interface VolumeCapDef extends PolicyTargetDef {
  type: "volume_cap";
  scope: CapScope;
  max?: number;
  budget?: number;
  window: VolumeWindow;
  /** The IANA time zone whose calendar the windows follow; UTC when unset. */
  timeZone?: string;
  /** "even" spreads the window's allowance over the window: by a given moment only its share is spent. */
  pacing?: "even";
}

export type VolumeWindow = "day" | "week" | "month";

export type ContactPolicyDef = FrequencyCapDef | CooldownDef | OutcomeSuppressionDef | OptOutDef | VolumeCapDef;

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const CAP_WINDOW_MS: Record<CapWindow, number> = { day: DAY_MS, week: 7 * DAY_MS, "30d": 30 * DAY_MS };
const CAP_SCOPES: readonly CapScope[] = ["offer", "category", "channel", "global"];
/** Longest cooldown or suppression accepted: the history read must stay a bounded, recent range. */
export const MAX_LOOKBACK_DAYS = 365;
const DEFAULT_SUPPRESSING_OUTCOMES = ["dismiss", "not_interested"];

interface Target {
  offers: ReadonlySet<string> | null;
  categories: ReadonlySet<string> | null;
  channels: ReadonlySet<string> | null;
}

export type CompiledContactPolicy = { target: Target } & (
  | { type: "frequency_cap"; scope: CapScope; max: number; window: CapWindow; windowMs: number }
  | { type: "cooldown"; hours: number; windowMs: number }
  | { type: "outcome_suppression"; days: number; windowMs: number; outcomes: ReadonlySet<string> }
  | { type: "opt_out" }
  | {
      type: "volume_cap";
      /** The policy's identity in counter keys: stable while the policy exists. */
      key: string;
      scope: CapScope;
      /** Units per window: recommendations, or thousandths of business value for a budget. */
      limit: number;
      budget: boolean;
      /** As written: `max` recommendations or `budget` of value. */
      allowance: number;
      window: VolumeWindow;
      timeZone: string;
      pacing: boolean;
    }
);

export interface CompiledContactPolicies {
  policies: CompiledContactPolicy[];
  /** Stored policies that could not be used, and why; they are skipped rather than failing every decision. */
  issues: string[];
  /** How far back the history must reach for every policy (0 when no policy needs interactions). */
  lookbackMs: number;
  /** The outcome types the policies look at, so the history read fetches nothing else. */
  outcomeTypes: string[];
  needsOptOuts: boolean;
  /** Whether any policy reads the customer's history (every type but volume_cap does). */
  needsHistory: boolean;
  /** Whether a policy counts impressions, so an answer must hold its slots until they are reported. */
  countsImpressions: boolean;
  /** Whether any policy is a volume cap, so answers reserve from the shared counters. */
  hasVolumeCaps: boolean;
}

/** One interaction of the customer, as the policies need it. */
export interface ContactEvent {
  offerId: string;
  channelId: string;
  outcomeType: string;
  /** Epoch milliseconds. */
  at: number;
  /** The recommendation the interaction named, when it named one. */
  recommendationId?: string | null;
}

/** What the policies are evaluated against. `null` in its place means it could not be read. */
export interface ContactHistory {
  /** The customer's interactions within the policies' look-back, of the policies' outcome types. */
  events: ContactEvent[];
  /** Channels the customer opted out of and has not opted back into. */
  optedOutChannels: ReadonlySet<string>;
}

type Raw = Record<string, unknown>;

function stringList(raw: Raw, field: keyof PolicyTargetDef): ReadonlySet<string> | null | string {
  const v = raw[field];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) return `${field} must be a list of ids`;
  return new Set(v as string[]);
}

const positive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

/** The most a volume cap may allow per window: counters stay exact integers. */
export const MAX_VOLUME = 1_000_000_000;
const VOLUME_WINDOWS: readonly VolumeWindow[] = ["day", "week", "month"];

function compileVolumeCap(p: Raw, target: Target, key: string): CompiledContactPolicy | string {
  const scope = p.scope as CapScope;
  if (!CAP_SCOPES.includes(scope)) return `scope must be one of ${CAP_SCOPES.join(", ")}`;
  if (!VOLUME_WINDOWS.includes(p.window as VolumeWindow)) return "window must be day, week or month";
  const hasMax = p.max !== undefined && p.max !== null;
  const hasBudget = p.budget !== undefined && p.budget !== null;
  if (hasMax === hasBudget) return "max must be set, or budget, but not both";
  if (hasMax && (!Number.isInteger(p.max) || (p.max as number) < 1 || (p.max as number) > MAX_VOLUME)) {
    return `max must be a whole number from 1 to ${MAX_VOLUME}`;
  }
  if (hasBudget && (!positive(p.budget) || (p.budget as number) > MAX_VOLUME / 1000)) {
    return `budget must be a number above 0, at most ${MAX_VOLUME / 1000}`;
  }
  const timeZone = p.timeZone ?? "UTC";
  if (typeof timeZone !== "string" || !isTimeZone(timeZone)) return "timeZone must be an IANA time zone such as Europe/Paris";
  if (p.pacing !== undefined && p.pacing !== null && p.pacing !== "even") return 'pacing must be "even" when set';
  const allowance = (hasMax ? p.max : p.budget) as number;
  return {
    type: "volume_cap",
    target,
    key,
    scope,
    limit: hasMax ? allowance : Math.round(allowance * 1000),
    budget: hasBudget,
    allowance,
    window: p.window as VolumeWindow,
    timeZone,
    pacing: p.pacing === "even",
  };
}

/** Compiles one stored policy, or says why it cannot be used. */
function compilePolicy(raw: unknown, key: string): CompiledContactPolicy | string {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return "not an object";
  const p = raw as Raw;
  const lists = [stringList(p, "offerIds"), stringList(p, "categoryIds"), stringList(p, "channelIds")] as const;
  for (const l of lists) if (typeof l === "string") return l;
  const target = { offers: lists[0], categories: lists[1], channels: lists[2] } as Target;
  switch (p.type) {
    case "frequency_cap": {
      const scope = p.scope as CapScope;
      const window = p.window as CapWindow;
      if (!CAP_SCOPES.includes(scope)) return `scope must be one of ${CAP_SCOPES.join(", ")}`;
      if (!Object.hasOwn(CAP_WINDOW_MS, window)) return "window must be day, week or 30d";
      if (!Number.isInteger(p.max) || (p.max as number) < 1) return "max must be a whole number of at least 1";
      return { type: "frequency_cap", target, scope, max: p.max as number, window, windowMs: CAP_WINDOW_MS[window] };
    }
    case "cooldown": {
      if (!positive(p.hours) || p.hours > MAX_LOOKBACK_DAYS * 24) {
        return `hours must be a number above 0, at most ${MAX_LOOKBACK_DAYS * 24}`;
      }
      if (p.scope !== undefined && p.scope !== "offer") return 'scope must be "offer"';
      return { type: "cooldown", target, hours: p.hours, windowMs: p.hours * HOUR_MS };
    }
    case "outcome_suppression": {
      if (!positive(p.days) || p.days > MAX_LOOKBACK_DAYS) return `days must be a number above 0, at most ${MAX_LOOKBACK_DAYS}`;
      const outcomes = p.outcomes ?? DEFAULT_SUPPRESSING_OUTCOMES;
      if (!Array.isArray(outcomes) || outcomes.length === 0 || !outcomes.every((o) => typeof o === "string" && o !== "")) {
        return "outcomes must be a non-empty list of outcome types";
      }
      return { type: "outcome_suppression", target, days: p.days, windowMs: p.days * DAY_MS, outcomes: new Set(outcomes as string[]) };
    }
    case "opt_out":
      return { type: "opt_out", target };
    case "volume_cap":
      return compileVolumeCap(p, target, key);
    default:
      return `unknown type ${JSON.stringify(p.type)}`;
  }
}

/**
 * Compiles a flow's stored policies. Malformed ones are skipped and listed in `issues`: one bad entry
 * (stored before a check existed, or edited by hand) must not take every decision of the flow down.
 */
export function compileContactPolicies(raw: unknown, keyOf: (index: number) => string = String): CompiledContactPolicies {
  const compiled: CompiledContactPolicies = {
    policies: [],
    issues: [],
    lookbackMs: 0,
    outcomeTypes: [],
    needsOptOuts: false,
    needsHistory: false,
    countsImpressions: false,
    hasVolumeCaps: false,
  };
  if (raw === undefined || raw === null) return compiled;
  if (!Array.isArray(raw)) {
    compiled.issues.push("policies must be a list");
    return compiled;
  }
  const outcomes = new Set<string>();
  raw.forEach((entry, i) => {
    const p = compilePolicy(entry, keyOf(i));
    if (typeof p === "string") {
      compiled.issues.push(`policies[${i}]: ${p}; skipped`);
      return;
    }
    compiled.policies.push(p);
    if (p.type === "volume_cap") {
      compiled.hasVolumeCaps = true;
      return;
    }
    compiled.needsHistory = true;
    if (p.type === "frequency_cap" || p.type === "cooldown") compiled.countsImpressions = true;
    if (p.type === "opt_out") {
      compiled.needsOptOuts = true;
      return;
    }
    compiled.lookbackMs = Math.max(compiled.lookbackMs, p.windowMs);
    if (p.type === "outcome_suppression") for (const o of p.outcomes) outcomes.add(o);
    else outcomes.add("impression");
  });
  compiled.outcomeTypes = [...outcomes].sort();
  return compiled;
}

/** A flow's own policies together with the tenant's: every policy of both applies. */
export function combineContactPolicies(own: CompiledContactPolicies, tenant: CompiledContactPolicies): CompiledContactPolicies {
  if (tenant.policies.length === 0 && tenant.issues.length === 0) return own;
  return {
    policies: [...own.policies, ...tenant.policies],
    issues: [...own.issues, ...tenant.issues],
    lookbackMs: Math.max(own.lookbackMs, tenant.lookbackMs),
    outcomeTypes: [...new Set([...own.outcomeTypes, ...tenant.outcomeTypes])].sort(),
    needsOptOuts: own.needsOptOuts || tenant.needsOptOuts,
    needsHistory: own.needsHistory || tenant.needsHistory,
    countsImpressions: own.countsImpressions || tenant.countsImpressions,
    hasVolumeCaps: own.hasVolumeCaps || tenant.hasVolumeCaps,
  };
}

/** The policies prepared for one request: per-candidate checks and the shared cap budgets. */
export interface ContactPolicyGate {
  /** Why the offer may not be shown now, or null when every policy allows it. */
  check(offerId: string, categoryId: string, mandatory: boolean): string | null;
  /**
   * Whether one more impression of the offer fits every category, channel and global cap, counting
   * the offers already placed in this answer: three offers shown together are three impressions.
   */
  fits(offerId: string, categoryId: string): boolean;
  /** Books the offer's impression against those caps once it is placed in the answer. */
  take(offerId: string, categoryId: string): void;
}

const UNAVAILABLE = "history unavailable";

function covers(t: Target, offerId: string, categoryId: string | undefined): boolean {
  // Offer and category lists widen each other, as a flow's candidate lists do.
  if (t.offers === null && t.categories === null) return true;
  return (t.offers?.has(offerId) ?? false) || (categoryId !== undefined && (t.categories?.has(categoryId) ?? false));
}

const hoursText = (ms: number) => (Math.max(0, ms) / HOUR_MS).toFixed(1);

/** An age for a reason: hours within the first day, whole days after. */
function ageText(ms: number): string {
  return ms < DAY_MS ? `${hoursText(ms)} h` : `${Math.floor(ms / DAY_MS)} d`;
}

/** A policy with what it counted in the history, ready for per-candidate checks. */
type Prepared =
  | { type: "frequency_cap"; policy: Extract<CompiledContactPolicy, { type: "frequency_cap" }>; counts: Map<string, number> }
  | { type: "cooldown"; policy: Extract<CompiledContactPolicy, { type: "cooldown" }>; last: Map<string, number> }
  | {
      type: "outcome_suppression";
      policy: Extract<CompiledContactPolicy, { type: "outcome_suppression" }>;
      last: Map<string, { outcome: string; at: number }>;
    }
  | { type: "opt_out"; policy: Extract<CompiledContactPolicy, { type: "opt_out" }>; optedOut: boolean };

function capKey(scope: CapScope, offerId: string, categoryId: string | undefined, channelId: string): string | undefined {
  switch (scope) {
    case "offer":
      return offerId;
    case "category":
      return categoryId;
    case "channel":
      return channelId;
    case "global":
      return "";
  }
}

/** What the caller knows of the shared volume counters, for the caps' checks. */
export interface VolumeView {
  /** Units the counter has spent, as last known here (0 when not known). */
  used(counter: string): number;
  /** The counters cannot be reached: offers under a volume cap are dropped (fail closed). */
  unavailable: boolean;
}

/** One counter a recommendation spends from, with what the counter allows by now. */
export interface VolumeClaim {
  counter: string;
  limit: number;
  amount: number;
  /** How long the counter must live: its window and a margin. */
  ttlMs: number;
}

type VolumePolicy = Extract<CompiledContactPolicy, { type: "volume_cap" }>;

/** A volume cap as it stands for one request: its window's counters and what they allow by now. */
interface PreparedVolume {
  policy: VolumePolicy;
  prefix: string;
  limitNow: number;
  ttlMs: number;
}

function prepareVolume(policy: VolumePolicy, nowMs: number): PreparedVolume {
  const span = calendarWindow(policy.window, policy.timeZone, nowMs);
  return {
    policy,
    prefix: `${policy.key}:${span.id}:`,
    limitNow: allowanceNow(policy.limit, span, policy.pacing),
    ttlMs: span.lengthMs + 2 * DAY_MS,
  };
}

/** Units one recommendation of an offer spends: one, or its business value in thousandths. */
const volumeAmount = (p: VolumePolicy, value: number) => (p.budget ? Math.max(0, Math.round(value * 1000)) : 1);

/**
 * The counters one recommendation of the offer on `channelId` spends, for the caller to reserve
 * atomically: every volume cap covering it, with what its window allows now.
 */
export function volumeClaims(
  compiled: CompiledContactPolicies,
  channelId: string,
  now: Date,
  offer: { offerId: string; categoryId: string; value: number },
): VolumeClaim[] {
  const claims: VolumeClaim[] = [];
  if (!compiled.hasVolumeCaps) return claims;
  for (const policy of compiled.policies) {
    if (policy.type !== "volume_cap") continue;
    if (policy.target.channels !== null && !policy.target.channels.has(channelId)) continue;
    if (!covers(policy.target, offer.offerId, offer.categoryId)) continue;
    const v = prepareVolume(policy, now.getTime());
    const key = capKey(policy.scope, offer.offerId, offer.categoryId, channelId) as string;
    claims.push({ counter: v.prefix + key, limit: v.limitNow, amount: volumeAmount(policy, offer.value), ttlMs: v.ttlMs });
  }
  return claims;
}

const NO_VOLUME: VolumeView = { used: () => 0, unavailable: false };

/**
 * Prepares the policies for one request on `channelId`: counts the history once per policy so each
 * candidate costs a few map lookups. `history` null means it could not be read: every offer a policy
 * covers is then refused (fail closed), because these policies protect customers.
 */
export function prepareContactPolicies(
  compiled: CompiledContactPolicies,
  history: ContactHistory | null,
  channelId: string,
  now: Date,
  categoryOf: (offerId: string) => string | undefined,
  businessValueOf: (offerId: string) => number = () => 0,
  volumeView: VolumeView = NO_VOLUME,
): ContactPolicyGate {
  const nowMs = now.getTime();
  // A policy limited to other channels has nothing to say about this request.
  const relevant = compiled.policies.filter((p) => p.target.channels === null || p.target.channels.has(channelId));
  const volumes = relevant.filter((p): p is VolumePolicy => p.type === "volume_cap").map((p) => prepareVolume(p, nowMs));
  const applicable = relevant.filter((p) => p.type !== "volume_cap");
  const prepared: Prepared[] = [];
  if (history) {
    for (const policy of applicable) {
      const since = policy.type === "opt_out" ? 0 : nowMs - policy.windowMs;
      const t = policy.target;
      // Events the policy counts: inside its window, on its channels, of its offers.
      const inScope = (e: ContactEvent) => e.at > since && (t.channels === null || t.channels.has(e.channelId));
      switch (policy.type) {
        case "frequency_cap": {
          const counts = new Map<string, number>();
          for (const e of history.events) {
            if (e.outcomeType !== "impression" || !inScope(e)) continue;
            const category = categoryOf(e.offerId);
            if (!covers(t, e.offerId, category)) continue;
            const key = capKey(policy.scope, e.offerId, category, e.channelId);
            if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
          }
          prepared.push({ type: "frequency_cap", policy, counts });
          break;
        }
        case "cooldown": {
          const last = new Map<string, number>();
          for (const e of history.events) {
            if (e.outcomeType !== "impression" || !inScope(e)) continue;
            if (e.at > (last.get(e.offerId) ?? Number.NEGATIVE_INFINITY)) last.set(e.offerId, e.at);
          }
          prepared.push({ type: "cooldown", policy, last });
          break;
        }
        case "outcome_suppression": {
          const last = new Map<string, { outcome: string; at: number }>();
          for (const e of history.events) {
            if (!policy.outcomes.has(e.outcomeType) || !inScope(e)) continue;
            const seen = last.get(e.offerId);
            if (!seen || e.at > seen.at) last.set(e.offerId, { outcome: e.outcomeType, at: e.at });
          }
          prepared.push({ type: "outcome_suppression", policy, last });
          break;
        }
        case "opt_out":
          prepared.push({ type: "opt_out", policy, optedOut: history.optedOutChannels.has(channelId) });
          break;
      }
    }
  }

  // What each shared cap has left for this answer; offer caps need none (an offer appears once).
  const used = new Map<Prepared, Map<string, number>>();
  const volumeTaken = new Map<string, number>();

  /** Why a volume cap refuses the offer, counting what this answer already placed when `inAnswer`. */
  const volumeRefusal = (offerId: string, categoryId: string, inAnswer: boolean): string | null => {
    for (const v of volumes) {
      if (!covers(v.policy.target, offerId, categoryId)) continue;
      if (volumeView.unavailable) return "volume_cap unavailable";
      const counter = v.prefix + (capKey(v.policy.scope, offerId, categoryId, channelId) as string);
      const spent = volumeView.used(counter) + (inAnswer ? (volumeTaken.get(counter) ?? 0) : 0);
      if (spent + volumeAmount(v.policy, businessValueOf(offerId)) > v.limitNow) {
        const p = v.policy;
        const allowance = p.budget ? `${p.allowance} of value` : `${p.allowance}`;
        return `volume_cap reached: ${allowance}/${p.window}${p.pacing ? " paced" : ""} at scope=${p.scope}`;
      }
    }
    return null;
  };

  return {
    check(offerId, categoryId, mandatory) {
      // Volume caps are caps: mandatory offers answer to them too.
      const volume = volumes.length > 0 ? volumeRefusal(offerId, categoryId, false) : null;
      if (volume) return volume;
      if (!history) {
        // Mandatory offers answer only to caps, so only a cap can make them unknowable.
        const covered = applicable.some((p) => (!mandatory || p.type === "frequency_cap") && covers(p.target, offerId, categoryId));
        return covered ? UNAVAILABLE : null;
      }
      for (const p of prepared) {
        if (mandatory && p.type !== "frequency_cap") continue;
        if (!covers(p.policy.target, offerId, categoryId)) continue;
        switch (p.type) {
          case "frequency_cap": {
            const key = capKey(p.policy.scope, offerId, categoryId, channelId) as string;
            if ((p.counts.get(key) ?? 0) >= p.policy.max) {
              return `frequency_cap exceeded: ${p.policy.max}/${p.policy.window} at scope=${p.policy.scope}`;
            }
            break;
          }
          case "cooldown": {
            const last = p.last.get(offerId);
            if (last !== undefined) return `cooldown: last impression ${hoursText(nowMs - last)} h ago, ${p.policy.hours} h required`;
            break;
          }
          case "outcome_suppression": {
            const last = p.last.get(offerId);
            if (last) return `outcome_suppression: ${last.outcome} ${ageText(nowMs - last.at)} ago`;
            break;
          }
          case "opt_out":
            if (p.optedOut) return `opt_out on ${channelId}`;
            break;
        }
      }
      return null;
    },
    fits(offerId, categoryId) {
      if (volumes.length > 0 && volumeRefusal(offerId, categoryId, true)) return false;
      for (const p of prepared) {
        if (p.type !== "frequency_cap" || p.policy.scope === "offer" || !covers(p.policy.target, offerId, categoryId)) continue;
        const key = capKey(p.policy.scope, offerId, categoryId, channelId) as string;
        const taken = used.get(p)?.get(key) ?? 0;
        if ((p.counts.get(key) ?? 0) + taken >= p.policy.max) return false;
      }
      return true;
    },
    take(offerId, categoryId) {
      for (const v of volumes) {
        if (!covers(v.policy.target, offerId, categoryId)) continue;
        const counter = v.prefix + (capKey(v.policy.scope, offerId, categoryId, channelId) as string);
        volumeTaken.set(counter, (volumeTaken.get(counter) ?? 0) + volumeAmount(v.policy, businessValueOf(offerId)));
      }
      for (const p of prepared) {
        if (p.type !== "frequency_cap" || p.policy.scope === "offer" || !covers(p.policy.target, offerId, categoryId)) continue;
        const key = capKey(p.policy.scope, offerId, categoryId, channelId) as string;
        const byKey = used.get(p) ?? new Map<string, number>();
        byKey.set(key, (byKey.get(key) ?? 0) + 1);
        used.set(p, byKey);
      }
    },
  };
}
