import { describe, expect, test } from "bun:test";
import {
  checkName,
  compileFormula,
  type Evaluation,
  type FormulaScope,
  FormulaSyntaxError,
  isTruthy,
  MAX_FORMULA_NODES,
  resolverFor,
  type Value,
} from "./formula";

function makeScope(own: Record<string, unknown> = {}, customer: Record<string, unknown> = {}): FormulaScope {
  return {
    own: {
      base_rate: 19.99,
      zero: 0,
      empty: "",
      nothing: null,
      label: "Gold",
      flag: true,
      nested: { a: 1 },
      list: [1, 2],
      inf: Number.POSITIVE_INFINITY,
      big: 1e308,
      ...own,
    },
    customer: {
      loyalty_score: 85,
      credit_score: 720,
      first_name: "Ada",
      middle_name: null,
      profile: { city: "Oslo" },
      ...customer,
    },
    attributes: { tier: "gold", propensityScores: { act_x: 0.42 } },
    offer: { name: "Cashback" },
  };
}

interface Case {
  source: string;
  value: Value;
  issue?: string;
  scope?: FormulaScope;
  /** Tells apart cases that share a source. */
  label?: string;
}

function expected({ value, issue }: Case): Evaluation {
  return issue === undefined ? { value } : { value, issue };
}

function runCases(cases: readonly Case[]): void {
  for (const c of cases) {
    const title = `${c.label ? `${c.label}: ` : ""}${JSON.stringify(c.source)} → ${JSON.stringify(c.value)}`;
    test(`${title}${c.issue ? ` (${c.issue})` : ""}`, () => {
      expect(compileFormula(c.source).evaluate(c.scope ?? makeScope())).toStrictEqual(expected(c));
    });
  }
}

const DEMO = "round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : customer.loyalty_score >= 50 ? 1.25 : 0), 2)";

describe("precedence and associativity", () => {
  runCases([
    { source: "1 + 2 * 3", value: 7 },
    { source: "(1 + 2) * 3", value: 9 },
    { source: "-2 * 3", value: -6 },
    { source: "2 - -1", value: 3 },
    { source: "- - 2", value: 2 },
    { source: "10 - 4 - 3", value: 3 },
    { source: "2 * 3 % 4", value: 2 },
    { source: "7 / 2", value: 3.5 },
    { source: "7 % 3", value: 1 },
    { source: ".5 + 0.25", value: 0.75 },
    { source: "1 + 2 < 4", value: true },
    { source: "1 < 2 == true", value: true },
    { source: "true || false && false", value: true },
    { source: "!false && false", value: false },
    { source: "!0", value: true },
    { source: "true ? 1 : 0 ? 2 : 3", value: 1 },
    { source: "false ? 1 : false ? 2 : 3", value: 3 },
    { source: '1 > 0 ? 2 > 1 ? "a" : "b" : "c"', value: "a" },
    { source: '1 > 0 ? 2 < 1 ? "a" : "b" : "c"', value: "b" },
    { source: " ( 1\n+\t2 ) ", value: 3 },
  ]);
});

describe("strings, comparisons and equality", () => {
  runCases([
    { source: '"a" + 1', value: "a1" },
    { source: "1 + 'a'", value: "1a" },
    { source: '"a" + true', value: "atrue" },
    { source: '\'it\\\'s\' + " \\"q\\""', value: 'it\'s "q"' },
    { source: '"a\\\\b\\nc"', value: "a\\b\nc" },
    { source: '"abc" < "abd"', value: true },
    { source: '"b" >= "a"', value: true },
    { source: "2 <= 2", value: true },
    { source: "3 > 4", value: false },
    { source: 'attributes.tier == "gold"', value: true },
    { source: 'attributes.tier != "gold"', value: false },
    { source: '1 == "1"', value: false },
    { source: "0 == false", value: false },
    { source: "null == null", value: true },
    { source: "customer.middle_name == null", value: true },
    { source: "customer.missing == null", value: true },
    { source: "1 != 2", value: true },
    { source: 'customer.credit_score >= 700 && attributes.tier == "gold"', value: true },
    { source: 'customer.credit_score >= 750 && attributes.tier == "gold"', value: false },
  ]);
});

describe("names", () => {
  runCases([
    { source: "base_rate", value: 19.99 },
    { source: "customer.profile.city", value: "Oslo" },
    { source: "attributes.propensityScores.act_x", value: 0.42 },
    { source: "offer.name", value: "Cashback" },
    { source: "flag", value: true },
    { source: "nothing", value: null },
    { source: "customer.middle_name", value: null },
    { source: "null", value: null },
  ]);
});

describe("functions", () => {
  runCases([
    { source: "min(3, 1, 2)", value: 1 },
    { source: "max(3, 1, 2)", value: 3 },
    { source: "min(5)", value: 5 },
    { source: "max(-5)", value: -5 },
    { source: "round(2.5)", value: 3 },
    { source: "round(-2.5)", value: -3 },
    { source: "round(2.4)", value: 2 },
    { source: "round(17.489999999999998, 2)", value: 17.49 },
    { source: "round(1.005, 2)", value: 1.01 },
    { source: "round(-1.005, 2)", value: -1.01 },
    { source: "round(1234.5, -2)", value: 1200 },
    { source: "floor(-1.5)", value: -2 },
    { source: "ceil(1.2)", value: 2 },
    { source: "abs(-3)", value: 3 },
    { source: "coalesce(customer.missing, 0)", value: 0 },
    { source: 'coalesce(null, nothing, "x")', value: "x" },
    { source: "coalesce(1, 1 / 0)", value: 1 },
    { source: "coalesce(customer.missing, null)", value: null },
    { source: "coalesce(1 / 0, customer.gone)", value: null, issue: "missing name customer.gone" },
    { source: 'concat("a", 1, null, true)', value: "a1true" },
    { source: 'concat(customer.first_name, " ", customer.missing)', value: "Ada " },
    { source: "concat(0.5)", value: "0.5" },
  ]);

  test("round never yields negative zero", () => {
    expect(Object.is(compileFormula("round(-0.001, 2)").evaluate(makeScope()).value, 0)).toBe(true);
  });
});

describe("null and issues", () => {
  runCases([
    { source: "1 / 0", value: null, issue: "division by zero" },
    { source: "1 / zero", value: null, issue: "division by zero" },
    { source: "5 % 0", value: null, issue: "division by zero" },
    { source: "customer.missing", value: null, issue: "missing name customer.missing" },
    { source: "customer.first_name.x", value: null, issue: "missing name customer.first_name.x" },
    { source: "customer.constructor", value: null, issue: "missing name customer.constructor" },
    { source: "nested", value: null, issue: "non-scalar value at nested" },
    { source: "list", value: null, issue: "non-scalar value at list" },
    { source: "customer.profile", value: null, issue: "non-scalar value at customer.profile" },
    { source: "inf", value: null, issue: "non-finite number at inf" },
    { source: "big * 10", value: null, issue: "non-finite result" },
    { source: '"a" * 2', value: null, issue: "type error: cannot apply '*' to string and number" },
    { source: "true + 1", value: null, issue: "type error: cannot apply '+' to boolean and number" },
    { source: '1 < "a"', value: null, issue: "type error: cannot compare number < string" },
    { source: "true >= false", value: null, issue: "type error: cannot compare boolean >= boolean" },
    { source: '-"a"', value: null, issue: "type error: cannot negate string" },
    { source: 'round("a")', value: null, issue: "type error: round expects numbers, got string" },
    { source: "min(1, true)", value: null, issue: "type error: min expects numbers, got boolean" },
    { source: "abs(label)", value: null, issue: "type error: abs expects numbers, got string" },
    {
      source: "round(1.5, 0.5)",
      value: null,
      issue: "type error: round digits must be a whole number from -15 to 15",
    },
    { source: "null + 1", value: null, issue: "null operand" },
    { source: "1 + nothing", value: null, issue: "null operand" },
    { source: "-nothing", value: null, issue: "null operand" },
    { source: "floor(customer.middle_name)", value: null, issue: "null operand" },
    { source: "round(1, null)", value: null, issue: "null operand" },
    { source: "customer.missing + 1", value: null, issue: "missing name customer.missing" },
    { source: "round(customer.missing * 2, 2)", value: null, issue: "missing name customer.missing" },
    { source: "1 / 0 + customer.missing", value: null, issue: "division by zero" },
    { source: "customer.missing + 1 / 0", value: null, issue: "missing name customer.missing" },
    { source: "null < 1", value: null, issue: "null operand" },
    { source: "customer.missing >= 700", value: null, issue: "missing name customer.missing" },
    // The reported issue explains the null that was returned, not one a condition swallowed.
    { source: "customer.missing == null ? null + 1 : 0", value: null, issue: "null operand" },
  ]);
});

describe("logical operators", () => {
  runCases([
    { source: "false && (1 / 0 > 0)", value: false },
    { source: "true || customer.missing", value: true },
    { source: "customer.missing && true", value: false },
    { source: 'customer.missing || "x"', value: true },
    { source: "1 / 0 || false", value: false },
    { source: '1 && "a"', value: true },
    { source: 'empty || zero || nothing || ""', value: false },
    { source: "!nothing", value: true },
    { source: "customer.missing ? 1 : 2", value: 2 },
    { source: "true ? 1 : 1 / 0", value: 1 },
  ]);

  test("unevaluated operands are never read", () => {
    let reads = 0;
    const scope = makeScope();
    Object.defineProperty(scope.customer, "probe", {
      get: () => {
        reads += 1;
        return 1;
      },
    });
    for (const source of [
      "false && customer.probe > 0",
      "true || customer.probe",
      "false ? customer.probe : 1",
      "true ? 1 : customer.probe",
      "coalesce(1, customer.probe)",
    ]) {
      compileFormula(source).evaluate(scope);
    }
    expect(reads).toBe(0);
    expect(compileFormula("true && customer.probe").evaluate(scope)).toStrictEqual({ value: true });
    expect(reads).toBe(1);
  });

  test("isTruthy judges false, null, 0 and empty string falsy", () => {
    expect([false, null, 0, "", true, 1, -1, "0", "a"].map(isTruthy)).toEqual([false, false, false, false, true, true, true, true, true]);
  });
});

describe("demo formula", () => {
  runCases([
    {
      label: "19.99, loyalty 85",
      source: DEMO,
      value: 17.49,
      scope: makeScope({ base_rate: 19.99 }, { loyalty_score: 85 }),
    },
    {
      label: "20.74, loyalty 85",
      source: DEMO,
      value: 18.24,
      scope: makeScope({ base_rate: 20.74 }, { loyalty_score: 85 }),
    },
    {
      label: "19.99, loyalty 60",
      source: DEMO,
      value: 18.74,
      scope: makeScope({ base_rate: 19.99 }, { loyalty_score: 60 }),
    },
    {
      label: "19.99, loyalty 10",
      source: DEMO,
      value: 19.99,
      scope: makeScope({ base_rate: 19.99 }, { loyalty_score: 10 }),
    },
    // A missing score makes each condition null, which is falsy: no discount, and no issue since
    // the result is not null.
    {
      label: "19.99, loyalty missing",
      source: DEMO,
      value: 19.99,
      scope: makeScope({ base_rate: 19.99 }, { loyalty_score: undefined }),
    },
    {
      source: "round(base_rate - customer.loyalty_score / 100, 2)",
      value: null,
      issue: "missing name customer.loyalty_score",
      scope: makeScope({ base_rate: 19.99 }, { loyalty_score: undefined }),
    },
  ]);

  test("one compiled formula serves many scopes", () => {
    const formula = compileFormula(DEMO);
    const rates = [19.99, 20.74].map((base_rate) => formula.evaluate(makeScope({ base_rate })).value);
    expect(rates).toEqual([17.49, 18.24]);
  });
});

describe("evaluation never throws", () => {
  test("a throwing getter in the scope becomes an issue", () => {
    const scope = makeScope();
    Object.defineProperty(scope.customer, "boom", {
      get: () => {
        throw new Error("boom");
      },
    });
    expect(compileFormula("customer.boom + 1").evaluate(scope)).toStrictEqual({
      value: null,
      issue: "evaluation failed: boom",
    });
  });

  test("a scope missing a root reports the name as missing", () => {
    const scope = { own: {}, customer: {}, offer: {} } as unknown as FormulaScope;
    expect(compileFormula("attributes.tier").evaluate(scope)).toStrictEqual({
      value: null,
      issue: "missing name attributes.tier",
    });
  });
});

describe("syntax errors", () => {
  const cases: readonly { source: string; position: number; message: string }[] = [
    { source: "(1 + 2", position: 0, message: "unclosed '('" },
    { source: "round(1, 2", position: 5, message: "unclosed '('" },
    { source: "1 +", position: 3, message: "unexpected end of input" },
    { source: "", position: 0, message: "unexpected end of input" },
    { source: "1 + 2)", position: 5, message: "unexpected ')'" },
    { source: "min(1,)", position: 6, message: "unexpected ')'" },
    { source: "1 2", position: 2, message: "unexpected '2'" },
    { source: "foo(1)", position: 0, message: "unknown function 'foo'" },
    { source: "2 * bar(1)", position: 4, message: "unknown function 'bar'" },
    { source: "round(1, 2, 3)", position: 0, message: "round takes 1 to 2 arguments, got 3" },
    { source: "1 + abs()", position: 4, message: "abs takes 1 argument, got 0" },
    { source: "min()", position: 0, message: "min takes at least 1 argument, got 0" },
    { source: "1 @ 2", position: 2, message: "unexpected '@'" },
    { source: "1 = 2", position: 2, message: "unexpected '='" },
    { source: "3abc", position: 1, message: "unexpected 'a'" },
    { source: "1.", position: 1, message: "unexpected '.'" },
    { source: '"abc', position: 0, message: "unterminated string" },
    { source: "1 + 'abc\\'", position: 4, message: "unterminated string" },
    { source: '"a\\q"', position: 2, message: "unknown escape '\\q'" },
    { source: "customer", position: 0, message: "'customer' needs a field, e.g. customer.name" },
    { source: "1 + attributes", position: 4, message: "'attributes' needs a field" },
    { source: "customer.", position: 9, message: "expected a field name after '.'" },
    { source: "foo.bar", position: 0, message: "unknown root 'foo'" },
    { source: "1 ? 2", position: 5, message: "expected ':' but found end of input" },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.source)} fails at ${c.position}`, () => {
      let caught: unknown;
      try {
        compileFormula(c.source);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(FormulaSyntaxError);
      const error = caught as FormulaSyntaxError;
      expect(error.position).toBe(c.position);
      expect(error.message).toContain(c.message);
      expect(error.message).toEndWith(`at position ${c.position}`);
    });
  }
});

describe("limits", () => {
  test("a source of exactly 4096 characters compiles", () => {
    const source = `${"1+".repeat(2047)}11`;
    expect(source.length).toBe(4096);
    expect(compileFormula(source).evaluate(makeScope())).toStrictEqual({ value: 2058 });
  });

  test("a longer source is rejected at position 4096", () => {
    const source = `${"1+".repeat(2047)}111`;
    expect(() => compileFormula(source)).toThrow(FormulaSyntaxError);
    expect(() => compileFormula(source)).toThrow("at position 4096");
  });

  test("64 levels of parentheses are allowed, 65 are not", () => {
    const nest = (n: number) => `${"(".repeat(n)}1${")".repeat(n)}`;
    expect(compileFormula(nest(64)).evaluate(makeScope())).toStrictEqual({ value: 1 });
    expect(() => compileFormula(nest(65))).toThrow("nesting deeper than 64 levels at position 64");
  });

  test("deep unary chains and calls count as nesting", () => {
    expect(compileFormula(`${"-".repeat(64)}1`).evaluate(makeScope())).toStrictEqual({ value: 1 });
    expect(() => compileFormula(`${"!".repeat(65)}1`)).toThrow("at position 64");
    expect(() => compileFormula(`${"abs(".repeat(65)}1${")".repeat(65)}`)).toThrow("nesting deeper than 64");
  });

  test("hostile nesting is a syntax error, not a stack overflow", () => {
    expect(() => compileFormula("(".repeat(4000))).toThrow(FormulaSyntaxError);
    expect(() => compileFormula("-".repeat(4096))).toThrow(FormulaSyntaxError);
  });
});

describe("node counts", () => {
  // Each literal, name, operator, call and ternary is one node; parentheses are none.
  const cases: readonly { source: string; nodes: number }[] = [
    { source: "1 + 2", nodes: 3 },
    { source: "((1 + 2))", nodes: 3 },
    { source: "base_rate", nodes: 1 },
    { source: "null", nodes: 1 },
    { source: "-1", nodes: 2 },
    { source: "!flag && customer.tier == 'gold'", nodes: 6 },
    { source: "1 + 2 * 3 - 4", nodes: 7 },
    { source: "flag ? 1 : 2", nodes: 4 },
    { source: "min(1, 2, 3)", nodes: 4 },
    { source: "round(base_rate, 2)", nodes: 3 },
    { source: DEMO, nodes: 15 },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.source)} has ${c.nodes}`, () => {
      expect(compileFormula(c.source).nodes).toBe(c.nodes);
    });
  }

  test("a formula over MAX_FORMULA_NODES still compiles and evaluates: the catalog checks bound it, not the compiler", () => {
    expect(MAX_FORMULA_NODES).toBe(256);
    const source = `${"1+".repeat(2047)}11`;
    const formula = compileFormula(source);
    expect(formula.nodes).toBe(4095);
    expect(formula.evaluate(makeScope())).toStrictEqual({ value: 2058 });
  });
});

describe("names listing", () => {
  const cases: readonly { source: string; names: string[] }[] = [
    { source: DEMO, names: ["base_rate", "customer.loyalty_score"] },
    {
      source: "coalesce(attributes.propensityScores.act_x, offer.name, base_rate, offer.name)",
      names: ["attributes.propensityScores.act_x", "offer.name", "base_rate"],
    },
    { source: "round(true ? x : null) + 1", names: ["x"] },
    { source: '1 + 2 * "customer.name"', names: [] },
  ];
  for (const c of cases) {
    test(c.source, () => {
      const formula = compileFormula(c.source);
      expect(formula.names).toEqual(c.names);
      expect(formula.source).toBe(c.source);
    });
  }
});

describe("shared name helpers", () => {
  test("resolverFor returns raw values, objects included, and undefined when absent", () => {
    const scope = makeScope();
    expect(resolverFor("customer.profile")(scope)).toEqual({ city: "Oslo" });
    expect(resolverFor("customer.profile.city")(scope)).toBe("Oslo");
    expect(resolverFor("base_rate")(scope)).toBe(19.99);
    expect(resolverFor("customer.profile.zip")(scope)).toBeUndefined();
  });

  test("checkName and resolverFor reject what formulas reject", () => {
    expect(checkName("attributes.tier")).toBeUndefined();
    expect(checkName("offer")).toEqual({ reason: "'offer' needs a field, e.g. offer.name", position: 0 });
    expect(checkName("offer.a-b")).toEqual({ reason: "invalid name 'offer.a-b'", position: 6 });
    expect(() => resolverFor("foo.bar")).toThrow("unknown root 'foo'");
  });
});
