// Exact caps for Recommend: volume caps reserve their counters before an answer leaves (re-deciding
// without an offer another instance took the last room of), and a customer's frequency caps and cooldowns
// see the slots of answers still waiting for their impressions, under a per-customer lock so that two
// concurrent decisions cannot both take the last slot.

import type { ResolvedFlow } from "../decisioning/catalog.ts";
import type { Decision, DecisionInput, Recommendation } from "../decisioning/engine.ts";
import { decide } from "../decisioning/engine.ts";
import { type ContactHistory, type VolumeClaim, type VolumeView, volumeClaims } from "../decisioning/policies.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { type CapCounters, type HeldSlot, newHoldToken } from "../store/cap-counters.ts";

/** How long what a reservation reported of a counter stands in for the counter in later decisions. */
const VIEW_FRESH_MS = 1_000;
const VIEW_MAX_ENTRIES = 100_000;
/** Decisions tried before an answer is cut to what it could reserve. */
const MAX_ATTEMPTS = 3;

const UNAVAILABLE_VIEW: VolumeView = { used: () => 0, unavailable: true };

/** A customer's decision lock, taken: the slots held for them, and the step that lets it go. */
export interface CustomerHold {
  slots: HeldSlot[];
  /** Adds the answer's slots and lets the lock go. */
  commit(slots: HeldSlot[]): Promise<void>;
}

export type HoldResult = CustomerHold | "busy" | "unavailable";

/** A decision with what its answer reserved under volume caps. */
export interface CappedDecision {
  decision: Decision;
  claims: VolumeClaim[];
}

export class Caps {
  /** Counter units as the last reservation reported them, per tenant and counter. */
  private readonly seen = new Map<string, { used: number; at: number }>();

  constructor(
    private readonly counters: CapCounters,
    private readonly opts: { holdMs: number; lockWaitMs: number; lockMs: number; metrics: Metrics; log: Logger },
  ) {}

  /** Whether answers hold slots for the flow's per-customer caps. */
  holds(flow: ResolvedFlow): boolean {
    return this.opts.holdMs > 0 && flow.policies.countsImpressions;
  }

  private view(tenantId: string): VolumeView {
    const now = Date.now();
    return {
      used: (counter) => {
        const s = this.seen.get(`${tenantId}\u0000${counter}`);
        return s && now - s.at < VIEW_FRESH_MS ? s.used : 0;
      },
      unavailable: false,
    };
  }

  private remember(tenantId: string, used: Map<string, number>): void {
    if (this.seen.size > VIEW_MAX_ENTRIES) this.seen.clear();
    const at = Date.now();
    for (const [counter, n] of used) this.seen.set(`${tenantId}\u0000${counter}`, { used: n, at });
  }

  /**
   * Decides, and reserves what the answer spends of its volume caps. An offer whose reservation is refused
   * (the room went to another answer meanwhile) is left out and the decision is made again, so the answer
   * is still as full as the caps allow; when the counters cannot be reached, offers under a volume cap are
   * dropped (fail closed).
   */
  async decide(tenantId: string, input: DecisionInput, log: Logger): Promise<CappedDecision> {
    const policies = input.flow.policies;
    if (!policies.hasVolumeCaps) return { decision: decide(input), claims: [] };
    const granted = new Map<string, VolumeClaim[]>();
    const refusedOffers = new Set(input.exclude ?? []);
    let view = this.view(tenantId);
    for (let attempt = 1; ; attempt++) {
      const decision = decide({ ...input, exclude: refusedOffers, volume: view });
      if (view.unavailable) return { decision, claims: await this.keepOnly(tenantId, granted, []) };
      const pending: { r: Recommendation; claims: VolumeClaim[] }[] = [];
      for (const r of decision.recommendations) {
        if (granted.has(r.offer.def.id)) continue;
        const claims = volumeClaims(policies, input.channelId, input.now, {
          offerId: r.offer.def.id,
          categoryId: r.offer.def.categoryId,
          value: r.offer.def.businessValue,
        });
        if (claims.length > 0) pending.push({ r, claims });
      }
      let refused: Recommendation[] = [];
      if (pending.length > 0) {
        try {
          const result = await this.counters.reserve(
            tenantId,
            pending.map((p) => p.claims),
          );
          this.remember(tenantId, result.used);
          pending.forEach((p, i) => {
            if (result.granted[i]) granted.set(p.r.offer.def.id, p.claims);
            else refused.push(p.r);
          });
        } catch (err) {
          this.opts.metrics.capCounters.inc({ step: "volume" });
          log.warn("volume cap counters unavailable; offers under a volume cap are dropped", { err });
          view = UNAVAILABLE_VIEW;
          continue;
        }
      }
      if (refused.length > 0) this.opts.metrics.volumeRefusals.inc({}, refused.length);
      if (refused.length > 0 && attempt < MAX_ATTEMPTS) {
        for (const r of refused) refusedOffers.add(r.offer.def.id);
        continue;
      }
      if (refused.length > 0) {
        // Out of attempts: the answer is what could be reserved.
        const out = new Set(refused);
        decision.recommendations = decision.recommendations.filter((r) => !out.has(r));
        decision.recommendations.forEach((r, i) => {
          r.rank = i + 1;
        });
      }
      const shown = decision.recommendations.map((r) => r.offer.def.id);
      return { decision, claims: await this.keepOnly(tenantId, granted, shown) };
    }
  }

  /** Gives back what offers no longer in the answer reserved; returns what the answer keeps. */
  private async keepOnly(tenantId: string, granted: Map<string, VolumeClaim[]>, shown: string[]): Promise<VolumeClaim[]> {
    const keep = new Set(shown);
    const kept: VolumeClaim[] = [];
    const dropped: VolumeClaim[] = [];
    for (const [offerId, claims] of granted) (keep.has(offerId) ? kept : dropped).push(...claims);
    if (dropped.length > 0) await this.release(tenantId, dropped);
    return kept;
  }

  /** Gives back reserved volume (an answer that was not sent); a failure is logged, not thrown. */
  async release(tenantId: string, claims: VolumeClaim[]): Promise<void> {
    if (claims.length === 0) return;
    await this.counters.release(tenantId, claims).catch((err) => {
      this.opts.metrics.capCounters.inc({ step: "release" });
      this.opts.log.warn("volume reservation could not be given back; the counter stays higher until its window ends", { err });
    });
  }

  /**
   * Takes the customer's decision lock, waiting for another decision of theirs to finish. "busy" when it
   * did not within CAP_LOCK_WAIT_MS (capped offers are then dropped); "unavailable" when the counters
   * cannot be reached (the caps then count reported impressions only, and this is logged).
   */
  async hold(tenantId: string, customerId: string, nowMs: number, log: Logger): Promise<HoldResult> {
    const token = newHoldToken();
    const since = nowMs - this.opts.holdMs;
    const give = Date.now() + this.opts.lockWaitMs;
    let pause = 2;
    try {
      for (;;) {
        const slots = await this.counters.tryHold(tenantId, customerId, token, this.opts.lockMs, since);
        if (slots) {
          return {
            slots,
            commit: (add) =>
              this.counters.commitHold(tenantId, customerId, token, add, this.opts.holdMs).catch((err) => {
                this.opts.metrics.capCounters.inc({ step: "hold" });
                log.warn("could not record the slots this answer holds; its lock lapses on its own", { err });
              }),
          };
        }
        if (Date.now() + pause > give) {
          this.opts.metrics.capCounters.inc({ step: "busy" });
          log.warn("another decision for the customer held its lock too long; offers under contact caps are dropped", {
            waitedMs: this.opts.lockWaitMs,
          });
          return "busy";
        }
        await Bun.sleep(pause);
        pause = Math.min(pause * 2, 25);
      }
    } catch (err) {
      this.opts.metrics.capCounters.inc({ step: "hold" });
      log.warn("cap holds unavailable; contact caps count reported impressions only", { err });
      return "unavailable";
    }
  }

  /** Drops the slots of an answer that was not sent. */
  async dropSlots(tenantId: string, customerId: string, recommendationIds: string[]): Promise<void> {
    await this.counters.dropSlots(tenantId, customerId, recommendationIds).catch(() => {});
  }
}

/**
 * The history the caps see: the customer's interactions plus the slots answers hold whose impression has
 * not come. An impression that names the slot's recommendation, or else one of the same offer on the same
 * channel recorded since the slot was taken, accounts for it (each impression for one slot).
 */
export function withHeldSlots(history: ContactHistory, slots: HeldSlot[]): ContactHistory {
  if (slots.length === 0) return history;
  const impressions = history.events.filter((e) => e.outcomeType === "impression");
  const used = new Set<number>();
  const byRecommendation = new Map<string, number>();
  impressions.forEach((e, i) => {
    if (e.recommendationId) byRecommendation.set(e.recommendationId, i);
  });
  const extra: ContactHistory["events"] = [];
  const ordered = [...slots].sort((a, b) => a.at - b.at);
  // First the impressions that name their recommendation, then the rest by offer and channel.
  const open: HeldSlot[] = [];
  for (const s of ordered) {
    const i = byRecommendation.get(s.recommendationId);
    if (i !== undefined && !used.has(i)) used.add(i);
    else open.push(s);
  }
  for (const s of open) {
    const i = impressions.findIndex(
      (e, k) => !used.has(k) && !e.recommendationId && e.offerId === s.offerId && e.channelId === s.channelId && e.at >= s.at,
    );
    if (i >= 0) used.add(i);
    else
      extra.push({ offerId: s.offerId, channelId: s.channelId, outcomeType: "impression", at: s.at, recommendationId: s.recommendationId });
  }
  return extra.length === 0 ? history : { ...history, events: [...history.events, ...extra] };
}
