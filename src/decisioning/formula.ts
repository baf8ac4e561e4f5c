// Formulas marketers write for computed offer fields and qualification conditions, e.g.
// `round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : 0), 2)`. A source is parsed once into a
// tree of closures because it is evaluated per candidate per request; nothing is ever eval'd.
// Evaluation never throws: any problem turns the result into null and says why in `issue`.

export type Value = number | string | boolean | null;

export interface FormulaScope {
  /** Bare names: the offer's own fields. */
  own: Record<string, unknown>;
  customer: Record<string, unknown>;
  attributes: Record<string, unknown>;
  offer: Record<string, unknown>;
}

/** `issue` is set iff `value` is null because of a problem (a present-but-null field is no problem). */
export interface Evaluation {
  value: Value;
  issue?: string;
}

export interface Formula {
  readonly source: string;
  /** Every referenced name as written, deduplicated, in order of first appearance. */
  readonly names: readonly string[];
  /** Where each name first appears (0-based offset), so a check of names can point at one. */
  readonly namePositions: ReadonlyMap<string, number>;
  /**
   * How many nodes the parsed tree has (each literal, name, operator, call and ternary; parentheses
   * build none): what one evaluation costs, counted once here so the catalog checks can bound it.
   */
  readonly nodes: number;
  evaluate(scope: FormulaScope): Evaluation;
}

export class FormulaSyntaxError extends Error {
  /** 0-based character offset into the source. */
  readonly position: number;

  constructor(reason: string, position: number) {
    super(`${reason} at position ${position}`);
    this.name = "FormulaSyntaxError";
    this.position = position;
  }
}

const MAX_SOURCE_LENGTH = 4096;
const MAX_DEPTH = 64;
/**
 * The most nodes a formula may have when the catalog is written. A formula runs for every candidate of
 * every decision, so its size is what one tenant's catalog costs everyone sharing the instance; 256 is
 * far beyond hand-written formulas (the demo's largest has 15). Not enforced by `compileFormula`, so a
 * catalog stored before the limit still compiles.
 */
export const MAX_FORMULA_NODES = 256;

export function isTruthy(v: Value): boolean {
  return v !== null && v !== false && v !== 0 && v !== "";
}

// ---- Names, shared with templates ----------------------------------------------------------------

/** What is wrong with a piece of source; `position` is relative to the string that was checked. */
export interface SourceProblem {
  reason: string;
  position: number;
}

export type NameResolver = (scope: FormulaScope) => unknown;

const ROOTS = ["customer", "attributes", "offer"] as const;
type Root = (typeof ROOTS)[number];
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isRoot(segment: string): segment is Root {
  return (ROOTS as readonly string[]).includes(segment);
}

/** Checks a name as written ("base_rate", "customer.tier"); undefined when it can be resolved. */
export function checkName(name: string): SourceProblem | undefined {
  const segments = name.split(".");
  let offset = 0;
  for (const segment of segments) {
    if (!IDENTIFIER.test(segment)) {
      return { reason: segment === "" ? "expected a field name" : `invalid name '${name}'`, position: offset };
    }
    offset += segment.length + 1;
  }
  const root = segments[0] ?? "";
  if (segments.length === 1) {
    return isRoot(root) ? { reason: `'${root}' needs a field, e.g. ${root}.name`, position: 0 } : undefined;
  }
  return isRoot(root) ? undefined : { reason: `unknown root '${root}' (use customer., attributes. or offer.)`, position: 0 };
}

/**
 * Only own properties of plain objects are reachable, so a formula cannot wander into prototypes
 * (`customer.constructor`) or array internals (`attributes.list.length`).
 */
function field(container: unknown, key: string): unknown {
  if (typeof container !== "object" || container === null || Array.isArray(container)) return undefined;
  return Object.hasOwn(container, key) ? (container as Record<string, unknown>)[key] : undefined;
}

/** Getter for a name; yields undefined when the name is absent. Throws for a name `checkName` rejects. */
export function resolverFor(name: string): NameResolver {
  const problem = checkName(name);
  if (problem) throw new Error(`resolverFor: ${problem.reason} in '${name}'`);
  const segments = name.split(".");
  const head = segments[0] ?? "";
  if (segments.length === 1) return (scope) => field(scope.own, head);
  const root = head as Root;
  const path = segments.slice(1);
  const key = path[0] ?? "";
  if (path.length === 1) return (scope) => field(scope[root], key);
  return (scope) => {
    let current: unknown = scope[root];
    for (const segment of path) {
      current = field(current, segment);
      if (current === undefined) return undefined;
    }
    return current;
  };
}

const ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'],
  ["'", "'"],
  ["\\", "\\"],
  ["n", "\n"],
  ["t", "\t"],
  ["r", "\r"],
]);

/** Reads a quoted string literal starting at the quote at `start`; `end` is just past the closing quote. */
export function scanString(source: string, start: number): { value: string; end: number } | SourceProblem {
  const quote = source.charAt(start);
  let value = "";
  let i = start + 1;
  while (i < source.length) {
    const c = source.charAt(i);
    if (c === quote) return { value, end: i + 1 };
    if (c === "\\") {
      const escaped = ESCAPES.get(source.charAt(i + 1));
      if (escaped === undefined) {
        if (i + 1 >= source.length) break;
        return { reason: `unknown escape '\\${source.charAt(i + 1)}'`, position: i };
      }
      value += escaped;
      i += 2;
    } else {
      value += c;
      i += 1;
    }
  }
  return { reason: "unterminated string", position: start };
}

// ---- Tokens -------------------------------------------------------------------------------------

type Token =
  | { kind: "literal"; value: Value; text: string; pos: number }
  | { kind: "word"; text: string; pos: number }
  | { kind: "punct"; text: string; pos: number }
  | { kind: "end"; text: ""; pos: number };

const PUNCT_2 = new Set(["==", "!=", "<=", ">=", "&&", "||"]);
const PUNCT_1 = new Set(["+", "-", "*", "/", "%", "<", ">", "!", "?", ":", "(", ")", ","]);
const KEYWORDS: ReadonlyMap<string, Value> = new Map<string, Value>([
  ["true", true],
  ["false", false],
  ["null", null],
]);

const isDigit = (c: string): boolean => c >= "0" && c <= "9";
const isIdentStart = (c: string): boolean => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
const isIdentPart = (c: string): boolean => isIdentStart(c) || isDigit(c);
const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r";

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source.charAt(i);
    const start = i;
    if (isSpace(c)) {
      i += 1;
    } else if (isDigit(c) || (c === "." && isDigit(source.charAt(i + 1)))) {
      while (isDigit(source.charAt(i))) i += 1;
      if (source.charAt(i) === "." && isDigit(source.charAt(i + 1))) {
        i += 1;
        while (isDigit(source.charAt(i))) i += 1;
      }
      const next = source.charAt(i);
      if (next === "." || isIdentStart(next)) throw new FormulaSyntaxError(`unexpected '${next}'`, i);
      const text = source.slice(start, i);
      const value = Number(text);
      if (!Number.isFinite(value)) throw new FormulaSyntaxError("number out of range", start);
      tokens.push({ kind: "literal", value, text, pos: start });
    } else if (c === '"' || c === "'") {
      const scanned = scanString(source, i);
      if ("reason" in scanned) throw new FormulaSyntaxError(scanned.reason, scanned.position);
      i = scanned.end;
      tokens.push({ kind: "literal", value: scanned.value, text: source.slice(start, i), pos: start });
    } else if (isIdentStart(c)) {
      while (isIdentPart(source.charAt(i))) i += 1;
      while (source.charAt(i) === ".") {
        if (!isIdentStart(source.charAt(i + 1))) throw new FormulaSyntaxError("expected a field name after '.'", i + 1);
        i += 1;
        while (isIdentPart(source.charAt(i))) i += 1;
      }
      const text = source.slice(start, i);
      const keyword = KEYWORDS.get(text);
      if (keyword !== undefined) tokens.push({ kind: "literal", value: keyword, text, pos: start });
      else tokens.push({ kind: "word", text, pos: start });
    } else {
      const two = source.slice(i, i + 2);
      if (PUNCT_2.has(two)) {
        tokens.push({ kind: "punct", text: two, pos: start });
        i += 2;
      } else if (PUNCT_1.has(c)) {
        tokens.push({ kind: "punct", text: c, pos: start });
        i += 1;
      } else {
        throw new FormulaSyntaxError(`unexpected '${c}'`, i);
      }
    }
  }
  tokens.push({ kind: "end", text: "", pos: source.length });
  return tokens;
}

// ---- Evaluation nodes ---------------------------------------------------------------------------

/**
 * Every node that returns null sets `issue` just before (undefined for a legitimate null), so the
 * consumer of a null can read its reason without the node allocating a result object.
 */
interface Context {
  readonly scope: FormulaScope;
  issue: string | undefined;
}

type Node = (ctx: Context) => Value;

function fail(ctx: Context, issue: string): null {
  ctx.issue = issue;
  return null;
}

/** A null operand keeps the reason it was null for; a plain null gets one, as it now breaks the result. */
function nullOperand(ctx: Context): null {
  if (ctx.issue === undefined) ctx.issue = "null operand";
  return null;
}

function finite(ctx: Context, n: number): Value {
  return Number.isFinite(n) ? n : fail(ctx, "non-finite result");
}

function typeName(v: Value): string {
  return v === null ? "null" : typeof v;
}

/** A null that is data, not a problem: literal null or a present-but-null field. */
function plainNull(ctx: Context): null {
  ctx.issue = undefined;
  return null;
}

function constant(value: Value): Node {
  if (value === null) return plainNull;
  return () => value;
}

function nameNode(name: string): Node {
  const resolve = resolverFor(name);
  // Issue texts are built once here so the hot path does not allocate them.
  const missing = `missing name ${name}`;
  const nonScalar = `non-scalar value at ${name}`;
  const nonFinite = `non-finite number at ${name}`;
  return (ctx) => {
    const v = resolve(ctx.scope);
    switch (typeof v) {
      case "number":
        return Number.isFinite(v) ? v : fail(ctx, nonFinite);
      case "string":
      case "boolean":
        return v;
      case "undefined":
        return fail(ctx, missing);
      case "object":
        return v === null ? plainNull(ctx) : fail(ctx, nonScalar);
      default:
        return fail(ctx, `unsupported ${typeof v} value at ${name}`);
    }
  };
}

type Binary = (left: Node, right: Node) => Node;

function arithmetic(symbol: string, compute: (a: number, b: number) => number, divides = false): Binary {
  return (left, right) => (ctx) => {
    const a = left(ctx);
    if (a === null) return nullOperand(ctx);
    const b = right(ctx);
    if (b === null) return nullOperand(ctx);
    if (typeof a !== "number" || typeof b !== "number") {
      return fail(ctx, `type error: cannot apply '${symbol}' to ${typeof a} and ${typeof b}`);
    }
    if (divides && b === 0) return fail(ctx, "division by zero");
    return finite(ctx, compute(a, b));
  };
}

const plus: Binary = (left, right) => (ctx) => {
  const a = left(ctx);
  if (a === null) return nullOperand(ctx);
  const b = right(ctx);
  if (b === null) return nullOperand(ctx);
  if (typeof a === "number" && typeof b === "number") return finite(ctx, a + b);
  if (typeof a === "string" || typeof b === "string") return String(a) + String(b);
  return fail(ctx, `type error: cannot apply '+' to ${typeof a} and ${typeof b}`);
};

function ordering(symbol: string, holds: (order: number) => boolean): Binary {
  return (left, right) => (ctx) => {
    const a = left(ctx);
    if (a === null) return nullOperand(ctx);
    const b = right(ctx);
    if (b === null) return nullOperand(ctx);
    if (typeof a === "number" && typeof b === "number") return holds(a < b ? -1 : a > b ? 1 : 0);
    if (typeof a === "string" && typeof b === "string") return holds(a < b ? -1 : a > b ? 1 : 0);
    return fail(ctx, `type error: cannot compare ${typeof a} ${symbol} ${typeof b}`);
  };
}

const BINARY_LEVELS: readonly ReadonlyMap<string, Binary>[] = [
  new Map([["||", (l, r) => (ctx) => isTruthy(l(ctx)) || isTruthy(r(ctx))]]),
  new Map([["&&", (l, r) => (ctx) => isTruthy(l(ctx)) && isTruthy(r(ctx))]]),
  new Map<string, Binary>([
    ["==", (l, r) => (ctx) => l(ctx) === r(ctx)],
    ["!=", (l, r) => (ctx) => l(ctx) !== r(ctx)],
  ]),
  new Map([
    ["<", ordering("<", (o) => o < 0)],
    ["<=", ordering("<=", (o) => o <= 0)],
    [">", ordering(">", (o) => o > 0)],
    [">=", ordering(">=", (o) => o >= 0)],
  ]),
  new Map([
    ["+", plus],
    ["-", arithmetic("-", (a, b) => a - b)],
  ]),
  new Map([
    ["*", arithmetic("*", (a, b) => a * b)],
    ["/", arithmetic("/", (a, b) => a / b, true)],
    ["%", arithmetic("%", (a, b) => a % b, true)],
  ]),
];

function negate(operand: Node): Node {
  return (ctx) => {
    const v = operand(ctx);
    if (v === null) return nullOperand(ctx);
    if (typeof v !== "number") return fail(ctx, `type error: cannot negate ${typeof v}`);
    return -v;
  };
}

function numberArgument(ctx: Context, fn: string, v: Value): number | null {
  if (v === null) return nullOperand(ctx);
  if (typeof v !== "number") return fail(ctx, `type error: ${fn} expects numbers, got ${typeName(v)}`);
  return v;
}

function numericUnary(fn: string, arg: Node, compute: (x: number) => number): Node {
  return (ctx) => {
    const x = numberArgument(ctx, fn, arg(ctx));
    return x === null ? null : finite(ctx, compute(x));
  };
}

function extremum(fn: string, args: readonly Node[], pick: (a: number, b: number) => number, start: number): Node {
  return (ctx) => {
    let result = start;
    for (const arg of args) {
      const x = numberArgument(ctx, fn, arg(ctx));
      if (x === null) return null;
      result = pick(result, x);
    }
    return result;
  };
}

/**
 * Shifts by decimal exponent through the number's shortest string form, so 1.005 is treated as the
 * decimal the user sees rather than its binary approximation 1.00499999...
 */
function shiftDecimal(x: number, digits: number): number {
  const text = String(x);
  const e = text.indexOf("e");
  if (e === -1) return Number(`${text}e${digits}`);
  return Number(`${text.slice(0, e)}e${Number(text.slice(e + 1)) + digits}`);
}

function roundHalfAwayFromZero(x: number, digits: number): number {
  const magnitude = digits === 0 ? Math.round(Math.abs(x)) : shiftDecimal(Math.round(shiftDecimal(Math.abs(x), digits)), -digits);
  // `+ 0` turns -0 into 0 so round(-0.001, 2) renders as "0".
  return (x < 0 ? -magnitude : magnitude) + 0;
}

const MAX_ROUND_DIGITS = 15;

function roundNode(value: Node, digits: Node | undefined): Node {
  return (ctx) => {
    const x = numberArgument(ctx, "round", value(ctx));
    if (x === null) return null;
    let d = 0;
    if (digits) {
      const dv = digits(ctx);
      if (dv === null) return nullOperand(ctx);
      if (typeof dv !== "number" || !Number.isInteger(dv) || Math.abs(dv) > MAX_ROUND_DIGITS) {
        return fail(ctx, `type error: round digits must be a whole number from -${MAX_ROUND_DIGITS} to ${MAX_ROUND_DIGITS}`);
      }
      d = dv;
    }
    return finite(ctx, roundHalfAwayFromZero(x, d));
  };
}

/** Skipped arguments leave no issue behind; if all are null the last one's reason stands. */
function coalesce(args: readonly Node[]): Node {
  return (ctx) => {
    let v: Value = null;
    for (const arg of args) {
      v = arg(ctx);
      if (v !== null) return v;
    }
    return v;
  };
}

function concat(args: readonly Node[]): Node {
  return (ctx) => {
    let out = "";
    for (const arg of args) {
      const v = arg(ctx);
      if (v !== null) out += String(v);
    }
    return out;
  };
}

interface FunctionSpec {
  minArgs: number;
  maxArgs: number;
  build(args: readonly Node[]): Node;
}

/** The parser checks arity before building, so a missing argument here is a bug, not user input. */
function argument(args: readonly Node[], index: number): Node {
  const arg = args[index];
  if (!arg) throw new Error(`formula: argument ${index} missing after arity check`);
  return arg;
}

const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map<string, FunctionSpec>([
  ["min", { minArgs: 1, maxArgs: Infinity, build: (args) => extremum("min", args, Math.min, Infinity) }],
  ["max", { minArgs: 1, maxArgs: Infinity, build: (args) => extremum("max", args, Math.max, -Infinity) }],
  ["round", { minArgs: 1, maxArgs: 2, build: (args) => roundNode(argument(args, 0), args[1]) }],
  ["floor", { minArgs: 1, maxArgs: 1, build: (args) => numericUnary("floor", argument(args, 0), Math.floor) }],
  ["ceil", { minArgs: 1, maxArgs: 1, build: (args) => numericUnary("ceil", argument(args, 0), Math.ceil) }],
  ["abs", { minArgs: 1, maxArgs: 1, build: (args) => numericUnary("abs", argument(args, 0), Math.abs) }],
  ["coalesce", { minArgs: 1, maxArgs: Infinity, build: coalesce }],
  ["concat", { minArgs: 1, maxArgs: Infinity, build: concat }],
]);

function arityText(spec: FunctionSpec): string {
  if (spec.maxArgs === Infinity) return `at least ${spec.minArgs} argument${spec.minArgs === 1 ? "" : "s"}`;
  if (spec.minArgs === spec.maxArgs) return `${spec.minArgs} argument${spec.minArgs === 1 ? "" : "s"}`;
  return `${spec.minArgs} to ${spec.maxArgs} arguments`;
}

// ---- Parser -------------------------------------------------------------------------------------

function describe(token: Token): string {
  return token.kind === "end" ? "end of input" : `'${token.text}'`;
}

/** Recursive descent; precedence from loosest: ?:, ||, &&, == !=, < <= > >=, + -, * / %, unary. */
class Parser {
  private index = 0;
  private depth = 0;
  /** Nodes built so far; see `Formula.nodes`. */
  nodes = 0;
  readonly seen = new Map<string, number>();

  constructor(private readonly tokens: readonly Token[]) {}

  get names(): string[] {
    return [...this.seen.keys()];
  }

  parse(): Node {
    const node = this.ternary();
    const rest = this.peek();
    if (rest.kind !== "end") throw new FormulaSyntaxError(`unexpected ${describe(rest)}`, rest.pos);
    return node;
  }

  private peek(): Token {
    // The tokenizer always ends with an "end" token, and the parser never moves past it.
    return this.tokens[this.index] ?? { kind: "end", text: "", pos: 0 };
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== "end") this.index += 1;
    return token;
  }

  private atPunct(text: string): boolean {
    const token = this.peek();
    return token.kind === "punct" && token.text === text;
  }

  /** Bounds recursion so hostile input yields a syntax error, not a stack overflow. */
  private enter(token: Token): void {
    this.depth += 1;
    if (this.depth > MAX_DEPTH) throw new FormulaSyntaxError(`nesting deeper than ${MAX_DEPTH} levels`, token.pos);
  }

  private leave(): void {
    this.depth -= 1;
  }

  /** Every node the parser builds passes through here, so `nodes` cannot miss one. */
  private built(node: Node): Node {
    this.nodes += 1;
    return node;
  }

  private close(open: Token): void {
    const token = this.peek();
    if (token.kind === "punct" && token.text === ")") {
      this.index += 1;
      return;
    }
    if (token.kind === "end") throw new FormulaSyntaxError("unclosed '('", open.pos);
    throw new FormulaSyntaxError(`unexpected ${describe(token)}`, token.pos);
  }

  private ternary(): Node {
    const condition = this.binary(0);
    if (!this.atPunct("?")) return condition;
    const question = this.next();
    this.enter(question);
    const yes = this.ternary();
    const colon = this.peek();
    if (!this.atPunct(":")) throw new FormulaSyntaxError(`expected ':' but found ${describe(colon)}`, colon.pos);
    this.index += 1;
    const no = this.ternary();
    this.leave();
    return this.built((ctx) => (isTruthy(condition(ctx)) ? yes(ctx) : no(ctx)));
  }

  private binary(level: number): Node {
    const operators = BINARY_LEVELS[level];
    if (!operators) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const token = this.peek();
      const build = token.kind === "punct" ? operators.get(token.text) : undefined;
      if (!build) return left;
      this.index += 1;
      left = this.built(build(left, this.binary(level + 1)));
    }
  }

  private unary(): Node {
    const token = this.peek();
    if (token.kind !== "punct" || (token.text !== "-" && token.text !== "!")) return this.primary();
    this.index += 1;
    this.enter(token);
    const operand = this.unary();
    this.leave();
    if (token.text === "-") return this.built(negate(operand));
    return this.built((ctx) => !isTruthy(operand(ctx)));
  }

  private primary(): Node {
    const token = this.next();
    switch (token.kind) {
      case "literal":
        return this.built(constant(token.value));
      case "word":
        return this.atPunct("(") ? this.call(token) : this.name(token);
      case "punct":
        if (token.text === "(") {
          this.enter(token);
          const inner = this.ternary();
          this.close(token);
          this.leave();
          return inner;
        }
        break;
      case "end":
        break;
    }
    throw new FormulaSyntaxError(`unexpected ${describe(token)}`, token.pos);
  }

  private name(token: Token): Node {
    const problem = checkName(token.text);
    if (problem) throw new FormulaSyntaxError(problem.reason, token.pos + problem.position);
    if (!this.seen.has(token.text)) this.seen.set(token.text, token.pos);
    return this.built(nameNode(token.text));
  }

  private call(fnToken: Token): Node {
    const spec = FUNCTIONS.get(fnToken.text);
    if (!spec) throw new FormulaSyntaxError(`unknown function '${fnToken.text}'`, fnToken.pos);
    const open = this.next();
    this.enter(open);
    const args: Node[] = [];
    if (!this.atPunct(")")) {
      args.push(this.ternary());
      while (this.atPunct(",")) {
        this.index += 1;
        args.push(this.ternary());
      }
    }
    this.close(open);
    this.leave();
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      throw new FormulaSyntaxError(`${fnToken.text} takes ${arityText(spec)}, got ${args.length}`, fnToken.pos);
    }
    return this.built(spec.build(args));
  }
}

export function compileFormula(source: string): Formula {
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new FormulaSyntaxError(`formula longer than ${MAX_SOURCE_LENGTH} characters`, MAX_SOURCE_LENGTH);
  }
  const parser = new Parser(tokenize(source));
  const root = parser.parse();
  const names = Object.freeze(parser.names);
  return {
    source,
    names,
    namePositions: parser.seen,
    nodes: parser.nodes,
    evaluate(scope: FormulaScope): Evaluation {
      const ctx: Context = { scope, issue: undefined };
      let value: Value;
      try {
        value = root(ctx);
      } catch (error) {
        // Only hostile scope objects (throwing getters, proxies) can get here.
        return { value: null, issue: `evaluation failed: ${error instanceof Error ? error.message : String(error)}` };
      }
      return value === null && ctx.issue !== undefined ? { value, issue: ctx.issue } : { value };
    },
  };
}
