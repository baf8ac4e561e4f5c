// The typed form of a decision's drops: each "<offerId> (<reason>)" entry the engine records, as
// {offerId, reason, detail, ruleId}. The engine words every reason with a fixed leading keyword (see
// decisioning/engine.ts and decisioning/policies.ts), which is what the reason is read from.

import { create } from "@bufbuild/protobuf";
import { type FilterDrop, FilterDropSchema, FilterReason } from "../../gen/kaireon/v1/decision_trace_pb.ts";

const BY_KEYWORD: [RegExp, FilterReason][] = [
  [/^inactive$/, FilterReason.INACTIVE],
  [/^not_started$/, FilterReason.NOT_STARTED],
  [/^expired$/, FilterReason.EXPIRED],
  [/^no_creative$/, FilterReason.NO_CREATIVE],
  [/^segment_required\b/, FilterReason.SEGMENT_REQUIRED],
  [/^condition_failed\b/, FilterReason.CONDITION_FAILED],
  [/^propensity < /, FilterReason.PROPENSITY_BELOW_MINIMUM],
  [/^frequency_cap\b/, FilterReason.FREQUENCY_CAP],
  [/^cooldown\b/, FilterReason.COOLDOWN],
  [/^outcome_suppression\b/, FilterReason.OUTCOME_SUPPRESSION],
  [/^opt_out\b/, FilterReason.OPT_OUT],
  [/^history unavailable$/, FilterReason.HISTORY_UNAVAILABLE],
  [/^volume_cap reached\b/, FilterReason.VOLUME_CAP],
  [/^volume_cap unavailable$/, FilterReason.VOLUME_UNAVAILABLE],
  [/^excluded$/, FilterReason.EXCLUDED],
];

/** A tenant rule's refusal ends with ", rule <id>". */
const RULE = /, rule ([A-Za-z0-9_.-]{1,128})$/;

export function dropOf(entry: string): FilterDrop {
  // Offer ids have no spaces or parentheses: the first " (" ends the id.
  const open = entry.indexOf(" (");
  const offerId = open < 0 ? entry : entry.slice(0, open);
  const detail = open < 0 ? "" : entry.slice(open + 2, entry.endsWith(")") ? -1 : undefined);
  const rule = detail.match(RULE);
  const reason = BY_KEYWORD.find(([pattern]) => pattern.test(detail.replace(RULE, "")))?.[1] ?? FilterReason.UNSPECIFIED;
  return create(FilterDropSchema, { offerId, reason, detail, ruleId: rule?.[1] ?? "" });
}
