// Checks a decision flow definition before it is saved, so that a flow that is published always means
// what it says. Field paths use the definition's JSON names ("score.weights.propensity", "policies[2]").

import type { FieldViolation } from "../errors.ts";
import { compileContactPolicies } from "./policies.ts";

const KNOWN_KEYS = new Set(["candidates", "score", "rank", "policies", "holdout"]);
/** The largest control group a flow may hold out, in percent of its customers. */
export const MAX_HOLDOUT_PERCENT = 50;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringList(out: FieldViolation[], field: string, v: unknown): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === "")) out.push({ field, message: `${field} must be a list of ids` });
}

export function validateFlowDefinition(def: unknown): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (!isObject(def)) return [{ field: "definition", message: "definition must be an object" }];
  for (const key of Object.keys(def)) {
    if (!KNOWN_KEYS.has(key)) out.push({ field: key, message: `unknown field ${key}; expected ${[...KNOWN_KEYS].join(", ")}` });
  }
  if (def.candidates !== undefined) {
    if (!isObject(def.candidates)) out.push({ field: "candidates", message: "candidates must be an object" });
    else {
      stringList(out, "candidates.categoryIds", def.candidates.categoryIds);
      stringList(out, "candidates.offerIds", def.candidates.offerIds);
    }
  }
  if (def.score !== undefined) {
    const s = def.score;
    if (!isObject(s)) out.push({ field: "score", message: "score must be an object" });
    else {
      if (s.method !== undefined && s.method !== "prie" && s.method !== "priority_weighted") {
        out.push({ field: "score.method", message: "score.method must be prie or priority_weighted" });
      }
      if (s.propensity !== undefined && s.propensity !== "mean" && s.propensity !== "thompson") {
        out.push({ field: "score.propensity", message: "score.propensity must be mean or thompson" });
      }
      if (s.priorWeight !== undefined && !(typeof s.priorWeight === "number" && s.priorWeight > 0 && s.priorWeight <= 1e6)) {
        out.push({ field: "score.priorWeight", message: "score.priorWeight must be a number above 0" });
      }
      if (s.weights !== undefined) {
        if (!isObject(s.weights)) out.push({ field: "score.weights", message: "score.weights must be an object" });
        else {
          const names = ["propensity", "relevance", "impact", "emphasis"];
          let sum = 0;
          for (const [k, w] of Object.entries(s.weights)) {
            if (!names.includes(k)) out.push({ field: `score.weights.${k}`, message: `unknown weight ${k}; expected ${names.join(", ")}` });
            else if (typeof w !== "number" || w < 0 || w > 1)
              out.push({ field: `score.weights.${k}`, message: `score.weights.${k} must be a number from 0 to 1` });
            else sum += w;
          }
          if (names.every((n) => n in (s.weights as object)) && Math.abs(sum - 1) > 1e-9) {
            out.push({ field: "score.weights", message: `score.weights must sum to 1, not ${Math.round(sum * 1e6) / 1e6}` });
          }
        }
      }
    }
  }
  if (def.rank !== undefined) {
    if (!isObject(def.rank)) out.push({ field: "rank", message: "rank must be an object" });
    else if (
      def.rank.perCategoryCap !== undefined &&
      !(Number.isInteger(def.rank.perCategoryCap) && (def.rank.perCategoryCap as number) >= 1)
    ) {
      out.push({ field: "rank.perCategoryCap", message: "rank.perCategoryCap must be a whole number of at least 1" });
    }
  }
  if (def.holdout !== undefined) {
    const h = def.holdout;
    if (!isObject(h)) out.push({ field: "holdout", message: "holdout must be an object" });
    else {
      if (!(typeof h.percent === "number" && h.percent >= 0 && h.percent <= MAX_HOLDOUT_PERCENT)) {
        out.push({ field: "holdout.percent", message: `holdout.percent must be a number from 0 to ${MAX_HOLDOUT_PERCENT}` });
      }
      if (h.treatment !== undefined && h.treatment !== "empty" && h.treatment !== "baseline") {
        out.push({ field: "holdout.treatment", message: "holdout.treatment must be empty or baseline" });
      }
      for (const k of Object.keys(h)) {
        if (k !== "percent" && k !== "treatment") out.push({ field: `holdout.${k}`, message: `unknown field holdout.${k}` });
      }
    }
  }
  for (const issue of compileContactPolicies(def.policies).issues) {
    const m = /^(policies\[\d+\])?:?\s*(.*?)(; skipped)?$/.exec(issue);
    out.push({ field: m?.[1] ?? "policies", message: m?.[2] ?? issue });
  }
  return out;
}
