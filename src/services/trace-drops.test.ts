import { describe, expect, test } from "bun:test";
import { FilterReason } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { dropOf } from "./trace-drops.ts";

describe("typed drops", () => {
  test("every reason the engine words is read back as its kind, with its detail and rule", () => {
    const cases: [string, FilterReason, string][] = [
      ["act_a (inactive)", FilterReason.INACTIVE, ""],
      ["act_a (not_started)", FilterReason.NOT_STARTED, ""],
      ["act_a (expired)", FilterReason.EXPIRED, ""],
      ["act_a (no_creative)", FilterReason.NO_CREATIVE, ""],
      ["act_home_loan (segment_required)", FilterReason.SEGMENT_REQUIRED, ""],
      ["act_a (segment_required, rule qr_gold)", FilterReason.SEGMENT_REQUIRED, "qr_gold"],
      ["act_a (condition_failed: unknown name customer.x (null))", FilterReason.CONDITION_FAILED, ""],
      ["act_auto_loan (propensity < 0.4)", FilterReason.PROPENSITY_BELOW_MINIMUM, ""],
      ["act_a (propensity < 0.4, rule qr.min-prop)", FilterReason.PROPENSITY_BELOW_MINIMUM, "qr.min-prop"],
      ["act_a (frequency_cap exceeded: 3/week at scope=offer)", FilterReason.FREQUENCY_CAP, ""],
      ["act_a (cooldown: last impression 2 h ago, 24 h required)", FilterReason.COOLDOWN, ""],
      ["act_a (outcome_suppression: dismiss 3 d ago)", FilterReason.OUTCOME_SUPPRESSION, ""],
      ["act_a (opt_out on ch_email)", FilterReason.OPT_OUT, ""],
      ["act_a (history unavailable)", FilterReason.HISTORY_UNAVAILABLE, ""],
      ["act_a (something new)", FilterReason.UNSPECIFIED, ""],
    ];
    for (const [entry, reason, ruleId] of cases) {
      const d = dropOf(entry);
      expect({ entry, reason: d.reason, ruleId: d.ruleId }).toEqual({ entry, reason, ruleId });
      expect(`${d.offerId} (${d.detail})`).toBe(entry);
    }
  });
});
