// Checks shared by the catalog resources: texts, statuses, custom fields, formulas and templates (parsed,
// their names checked against the fields they can see, their size bounded), and references to other
// resources.

import { compileFormula, FormulaSyntaxError, MAX_FORMULA_NODES } from "../../decisioning/formula.ts";
import { compileTemplate, MAX_TEMPLATE_LENGTH, MAX_TEMPLATE_PLACEHOLDERS, TemplateSyntaxError } from "../../decisioning/template.ts";
import type { CatalogRefs, FieldNames, ReferencedTable } from "../refs.ts";
import { ID_MESSAGE, ID_PATTERN } from "../resources.ts";
import type { Violations } from "../validate.ts";

export const MAX_NAME_LENGTH = 200;
export const MAX_TEXT_LENGTH = 2000;
export const MAX_FIELDS = 64;
/**
 * Computed fields an offer evaluates at most: its category's and its own together. Every candidate of
 * every decision evaluates all of them, so this (with MAX_FORMULA_NODES) bounds what one offer costs.
 */
export const MAX_COMPUTED_FIELDS_PER_OFFER = 32;
export const MAX_ID_LIST = 1000;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ROOTS = new Set(["customer", "attributes", "offer"]);
/** What formulas and templates see as offer.*. */
const OFFER_VIEW = ["id", "name", "description", "categoryId", "priority"];

export function requireText(v: Violations, field: string, value: string, max = MAX_NAME_LENGTH): void {
  v.requireString(field, value, max);
}

export function oneOf(v: Violations, field: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) v.add(field, `${field} must be one of ${allowed.join(", ")}`);
}

export function wholeNumber(v: Violations, field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) v.add(field, `${field} must be a whole number from ${min} to ${max}`);
}

export function fraction(v: Violations, field: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value >= 0 && value <= 1)) v.add(field, `${field} must be a number from 0 to 1`);
}

/** Custom fields: at most 64, each named so that a formula can read it. */
export function customFields(v: Violations, field: string, values: Record<string, unknown> | undefined): void {
  const keys = Object.keys(values ?? {});
  if (keys.length > MAX_FIELDS) v.add(field, `${field} must have at most ${MAX_FIELDS} entries`);
  for (const k of keys) {
    if (!IDENTIFIER.test(k) || ROOTS.has(k)) {
      v.add(
        `${field}.${k}`,
        `${field}.${k}: a field name is a letter or '_' then letters, digits or '_' (not customer, attributes or offer)`,
      );
    }
  }
}

export function idList(v: Violations, field: string, ids: string[]): void {
  if (ids.length > MAX_ID_LIST) v.add(field, `${field} must have at most ${MAX_ID_LIST} entries`);
  ids.forEach((id, i) => {
    if (!ID_PATTERN.test(id)) v.add(`${field}[${i}]`, `${field}[${i}] ${ID_MESSAGE}`);
  });
}

/** Adds a violation for each id of the list that names no live resource. */
export async function referencesExist(
  v: Violations,
  refs: CatalogRefs,
  field: string,
  table: ReferencedTable,
  ids: string[],
  what: string,
): Promise<void> {
  const valid = ids.filter((id) => ID_PATTERN.test(id));
  for (const id of await refs.missing(table, valid)) v.add(`${field}[${ids.indexOf(id)}]`, `${what} ${id} does not exist`);
}

/** The bare names a formula or template of an offer may read: the offer's and its category's fields and computed values. */
export function visibleNames(...sets: (FieldNames | undefined)[]): Set<string> {
  const names = new Set<string>();
  for (const s of sets) {
    for (const k of Object.keys(s?.fields ?? {})) names.add(k);
    for (const k of Object.keys(s?.computed ?? {})) names.add(k);
  }
  return names;
}

/** Why a name cannot be read, or null. `known` null leaves bare names unchecked. */
function nameProblem(name: string, known: Set<string> | null): string | null {
  const dot = name.indexOf(".");
  if (dot === -1) {
    if (!known || known.has(name)) return null;
    const hint = known.size > 0 && known.size <= 12 ? ` (known: ${[...known].sort().join(", ")})` : "";
    return `unknown field '${name}'${hint}`;
  }
  const root = name.slice(0, dot);
  const rest = name.slice(dot + 1);
  if (root === "offer" && !OFFER_VIEW.includes(rest)) return `unknown offer field '${name}' (offer.${OFFER_VIEW.join(", offer.")})`;
  return null;
}

/** Parses a formula, bounds its size and checks its names; problems name the field and the position in the formula. */
export function formula(v: Violations, field: string, source: string, known: Set<string> | null): void {
  if (source.trim() === "") {
    v.add(field, `${field} must not be empty`);
    return;
  }
  try {
    const compiled = compileFormula(source);
    if (compiled.nodes > MAX_FORMULA_NODES) {
      v.add(field, `${field}: formula has ${compiled.nodes} nodes, at most ${MAX_FORMULA_NODES} allowed`);
    }
    for (const [name, position] of compiled.namePositions) {
      const problem = nameProblem(name, known);
      if (problem) v.add(field, `${field}: ${problem} at position ${position}`);
    }
  } catch (err) {
    if (!(err instanceof FormulaSyntaxError)) throw err;
    v.add(field, `${field}: ${err.message}`);
  }
}

/**
 * How many computed fields an offer evaluates: its category's and its own, where an own field replaces
 * the category's of the same name (as the engine merges them).
 */
export function computedFieldCount(own: Record<string, string>, category: Record<string, string> = {}): number {
  let count = Object.keys(own).length;
  for (const name of Object.keys(category)) if (!Object.hasOwn(own, name)) count += 1;
  return count;
}

/** Computed fields: names a formula can use, each formula valid and reading only what it can see. */
export function computedFields(
  v: Violations,
  field: string,
  computed: Record<string, string>,
  known: Set<string>,
  own: Record<string, unknown>,
): void {
  for (const [name, source] of Object.entries(computed)) {
    const at = `${field}.${name}`;
    if (!IDENTIFIER.test(name) || ROOTS.has(name)) v.add(at, `${at}: a computed field name is a letter or '_' then letters, digits or '_'`);
    else if (Object.hasOwn(own, name)) v.add(at, `${at}: ${name} is also a custom field; give one of them another name`);
    formula(v, at, source, known);
  }
}

/** Parses every string value of creative content as a template, bounds its size and checks its names. */
export function templates(v: Violations, field: string, content: Record<string, unknown>, known: Set<string>): void {
  for (const [key, value] of Object.entries(content)) {
    if (typeof value !== "string") continue;
    const at = `${field}.${key}`;
    if (value.length > MAX_TEMPLATE_LENGTH) {
      v.add(at, `${at}: template has ${value.length} characters, at most ${MAX_TEMPLATE_LENGTH} allowed`);
    }
    try {
      const t = compileTemplate(value);
      if (t.placeholders > MAX_TEMPLATE_PLACEHOLDERS) {
        v.add(at, `${at}: template has ${t.placeholders} placeholders, at most ${MAX_TEMPLATE_PLACEHOLDERS} allowed`);
      }
      for (const [name, position] of t.namePositions) {
        const problem = nameProblem(name, known);
        if (problem) v.add(at, `${at}: ${problem} at position ${position}`);
      }
    } catch (err) {
      if (!(err instanceof TemplateSyntaxError)) throw err;
      v.add(at, `${at}: ${err.message}`);
    }
  }
}

export function timestampOrder(v: Violations, startField: string, start: Date | null, endField: string, end: Date | null): void {
  if (start && end && end <= start) v.add(endField, `${endField} must be after ${startField}`);
}
