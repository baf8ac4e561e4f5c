// Creative content templates: text with `{{name}}` or `{{name | "fallback"}}` placeholders, where
// names resolve exactly as in formulas. Parsing happens once at compile time; rendering only
// concatenates static text with the placeholders' values.

import { checkName, type FormulaScope, resolverFor, scanString } from "./formula";

export interface Template {
  readonly source: string;
  /** Every referenced name as written, deduplicated, in order of first appearance. */
  readonly names: readonly string[];
  /** Where each name first appears (0-based offset). */
  readonly namePositions: ReadonlyMap<string, number>;
  /** How many `{{…}}` the source holds, repeats included: what one render resolves. */
  readonly placeholders: number;
  render(scope: FormulaScope): string;
}

/**
 * Characters of one content field at most, checked when the catalog is written. Every content field is
 * rendered for each recommended offer of each decision, so its size and its placeholders are what one
 * tenant's creatives cost everyone on the instance. `compileTemplate` enforces neither limit, so content
 * stored before them still renders.
 */
export const MAX_TEMPLATE_LENGTH = 8192;
/** Placeholders of one content field at most (repeats count), checked beside MAX_TEMPLATE_LENGTH. */
export const MAX_TEMPLATE_PLACEHOLDERS = 64;

export class TemplateSyntaxError extends Error {
  /** 0-based character offset into the source. */
  readonly position: number;

  constructor(reason: string, position: number) {
    super(`${reason} at position ${position}`);
    this.name = "TemplateSyntaxError";
    this.position = position;
  }
}

type Part = string | ((scope: FormulaScope) => string);

interface Placeholder {
  name: string;
  at: number;
  fallback: string;
  end: number;
}

const NAME_CHAR = /[A-Za-z0-9_.]/;

function skipSpace(source: string, i: number): number {
  let at = i;
  while (at < source.length && /\s/.test(source.charAt(at))) at += 1;
  return at;
}

/** Running out of input means the real mistake is the unclosed `{{`, not whatever was last read. */
function unexpected(source: string, at: number, open: number, expected: string): TemplateSyntaxError {
  if (source.indexOf("}}", at) === -1) return new TemplateSyntaxError("unclosed '{{'", open);
  return new TemplateSyntaxError(`expected ${expected} but found '${source.charAt(at)}'`, at);
}

function parsePlaceholder(source: string, open: number): Placeholder {
  let i = skipSpace(source, open + 2);
  const nameStart = i;
  while (i < source.length && NAME_CHAR.test(source.charAt(i))) i += 1;
  const name = source.slice(nameStart, i);
  if (name === "") throw unexpected(source, i, open, "a name");
  const problem = checkName(name);
  if (problem) throw new TemplateSyntaxError(problem.reason, nameStart + problem.position);

  i = skipSpace(source, i);
  let fallback = "";
  if (source.charAt(i) === "|") {
    i = skipSpace(source, i + 1);
    const quote = source.charAt(i);
    if (quote !== '"' && quote !== "'") throw unexpected(source, i, open, "a quoted fallback");
    const scanned = scanString(source, i);
    if ("reason" in scanned) throw new TemplateSyntaxError(scanned.reason, scanned.position);
    fallback = scanned.value;
    i = skipSpace(source, scanned.end);
  }
  if (!source.startsWith("}}", i)) throw unexpected(source, i, open, "'}}'");
  return { name, at: nameStart, fallback, end: i + 2 };
}

/** Absent and null values take the fallback; an empty string is a present value and renders as "". */
function display(value: unknown, fallback: string): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "boolean":
    case "bigint":
      return String(value);
    case "object":
      return value === null ? fallback : (JSON.stringify(value) ?? fallback);
    default:
      return fallback;
  }
}

function placeholderGetter({ name, fallback }: Placeholder): (scope: FormulaScope) => string {
  const resolve = resolverFor(name);
  return (scope) => {
    try {
      return display(resolve(scope), fallback);
    } catch {
      // Cyclic objects and throwing getters must not take a whole response down with them.
      return fallback;
    }
  };
}

export function compileTemplate(source: string): Template {
  if (!source.includes("{{")) {
    return { source, names: Object.freeze([]), namePositions: new Map(), placeholders: 0, render: () => source };
  }

  const parts: Part[] = [];
  const names = new Map<string, number>();
  let placeholders = 0;
  let cursor = 0;
  for (let open = source.indexOf("{{"); open !== -1; open = source.indexOf("{{", cursor)) {
    if (open > cursor) parts.push(source.slice(cursor, open));
    const placeholder = parsePlaceholder(source, open);
    parts.push(placeholderGetter(placeholder));
    placeholders += 1;
    if (!names.has(placeholder.name)) names.set(placeholder.name, placeholder.at);
    cursor = placeholder.end;
  }
  if (cursor < source.length) parts.push(source.slice(cursor));

  return {
    source,
    names: Object.freeze([...names.keys()]),
    namePositions: names,
    placeholders,
    render(scope: FormulaScope): string {
      let out = "";
      for (const part of parts) out += typeof part === "string" ? part : part(scope);
      return out;
    },
  };
}
