// Contact policies (SPEC §4.4): frequency caps, cooldowns, outcome suppression and channel opt-outs,
// compiled once with their flow and evaluated against one customer's recent contact history. Pure: the
// caller reads the history (or fails to) and brings the clock.

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

export type ContactPolicyDef = FrequencyCapDef | CooldownDef | OutcomeSuppressionDef | OptOutDef;

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
}

/** One interaction of the customer, as the policies need it. */
export interface ContactEvent {
  offerId: string;
  channelId: string;
  outcomeType: string;
  /** Epoch milliseconds. */
  at: number;
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

/** Compiles one stored policy, or says why it cannot be used. */
function compilePolicy(raw: unknown): CompiledContactPolicy | string {
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
    default:
      return `unknown type ${JSON.stringify(p.type)}`;
  }
}

/**
 * Compiles a flow's stored policies. Malformed ones are skipped and listed in `issues`: one bad entry
 * (stored before a check existed, or edited by hand) must not take every decision of the flow down.
 */
export function compileContactPolicies(raw: unknown): CompiledContactPolicies {
  const compiled: CompiledContactPolicies = { policies: [], issues: [], lookbackMs: 0, outcomeTypes: [], needsOptOuts: false };
  if (raw === undefined || raw === null) return compiled;
  if (!Array.isArray(raw)) {
    compiled.issues.push("policies must be a list");
    return compiled;
  }
  const outcomes = new Set<string>();
  raw.forEach((entry, i) => {
    const p = compilePolicy(entry);
    if (typeof p === "string") {
      compiled.issues.push(`policies[${i}]: ${p}; skipped`);
      return;
    }
    compiled.policies.push(p);
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
): ContactPolicyGate {
  const nowMs = now.getTime();
  // A policy limited to other channels has nothing to say about this request.
  const applicable = compiled.policies.filter((p) => p.target.channels === null || p.target.channels.has(channelId));
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

  return {
    check(offerId, categoryId, mandatory) {
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
      for (const p of prepared) {
        if (p.type !== "frequency_cap" || p.policy.scope === "offer" || !covers(p.policy.target, offerId, categoryId)) continue;
        const key = capKey(p.policy.scope, offerId, categoryId, channelId) as string;
        const taken = used.get(p)?.get(key) ?? 0;
        if ((p.counts.get(key) ?? 0) + taken >= p.policy.max) return false;
      }
      return true;
    },
    take(offerId, categoryId) {
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
