import { describe, expect, test } from "bun:test";
import type { FormulaScope } from "./formula";
import { compileTemplate, MAX_TEMPLATE_LENGTH, MAX_TEMPLATE_PLACEHOLDERS, TemplateSyntaxError } from "./template";

function makeScope(): FormulaScope {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  return {
    own: {
      personalized_rate: 4.5,
      zero: 0,
      empty: "",
      nothing: null,
      flag: false,
      terms: { apr: 4.5, tags: ["a"] },
      cyclic,
    },
    customer: { first_name: "Ada", middle_name: null, profile: { city: "Oslo" } },
    attributes: { tier: "gold", propensityScores: { act_x: 0.42 }, segments: ["young", "urban"] },
    offer: { name: "Cashback" },
  };
}

describe("rendering", () => {
  const cases: readonly { source: string; expected: string }[] = [
    { source: "Plain text, a lone } and }} stay", expected: "Plain text, a lone } and }} stay" },
    { source: "", expected: "" },
    { source: "Hello {{customer.first_name}}", expected: "Hello Ada" },
    { source: "{{personalized_rate}}%", expected: "4.5%" },
    { source: "Tier: {{ attributes.tier }}!", expected: "Tier: gold!" },
    { source: "{{offer.name}}", expected: "Cashback" },
    { source: "{{customer.profile.city}} / {{attributes.propensityScores.act_x}}", expected: "Oslo / 0.42" },
    { source: "{{offer.name}}{{personalized_rate}}", expected: "Cashback4.5" },
    { source: 'Hello {{customer.nickname | "there"}}', expected: "Hello there" },
    { source: "Hello {{ customer.nickname|'there' }}", expected: "Hello there" },
    { source: 'Hello {{customer.middle_name | "M."}}', expected: "Hello M." },
    { source: 'Hi {{nothing | "-"}}', expected: "Hi -" },
    { source: "[{{customer.nickname}}]", expected: "[]" },
    { source: "[{{customer.middle_name}}]", expected: "[]" },
    { source: '[{{empty | "fallback"}}]', expected: "[]" },
    { source: '[{{zero | "fallback"}}]', expected: "[0]" },
    { source: "{{flag}}", expected: "false" },
    { source: '{{customer.nickname | "say \\"hi\\"\\n"}}', expected: 'say "hi"\n' },
    { source: '{{customer.nickname | "}}"}} and more', expected: "}} and more" },
    { source: "{{terms}}", expected: '{"apr":4.5,"tags":["a"]}' },
    { source: "{{attributes.segments}}", expected: '["young","urban"]' },
    { source: '{{cyclic | "n/a"}}', expected: "n/a" },
    { source: "[{{customer.constructor}}]", expected: "[]" },
    { source: "[{{customer.first_name.length}}]", expected: "[]" },
  ];
  for (const c of cases) {
    test(JSON.stringify(c.source), () => {
      expect(compileTemplate(c.source).render(makeScope())).toBe(c.expected);
    });
  }

  test("a template without placeholders does not look at the scope", () => {
    const untouchable = new Proxy({} as FormulaScope, {
      get: () => {
        throw new Error("scope was read");
      },
    });
    expect(compileTemplate("50% off today").render(untouchable)).toBe("50% off today");
  });

  test("a throwing getter renders the fallback", () => {
    const scope = makeScope();
    Object.defineProperty(scope.customer, "boom", {
      get: () => {
        throw new Error("boom");
      },
    });
    expect(compileTemplate('[{{customer.boom | "x"}}]').render(scope)).toBe("[x]");
  });

  test("one compiled template serves many scopes", () => {
    const template = compileTemplate("Hi {{customer.first_name}}");
    const other = makeScope();
    other.customer.first_name = "Grace";
    expect([template.render(makeScope()), template.render(other)]).toEqual(["Hi Ada", "Hi Grace"]);
  });
});

describe("names listing", () => {
  const cases: readonly { source: string; names: string[] }[] = [
    { source: "no placeholders", names: [] },
    {
      source: '{{a}} {{customer.x | "y"}} {{ a }} {{offer.name}}',
      names: ["a", "customer.x", "offer.name"],
    },
  ];
  for (const c of cases) {
    test(c.source, () => {
      const template = compileTemplate(c.source);
      expect(template.names).toEqual(c.names);
      expect(template.source).toBe(c.source);
    });
  }
});

describe("placeholder counts", () => {
  const cases: readonly { source: string; placeholders: number }[] = [
    { source: "", placeholders: 0 },
    { source: "Plain text, a lone } and }} stay", placeholders: 0 },
    { source: "Hello {{customer.first_name}}", placeholders: 1 },
    { source: '{{a}} {{customer.x | "y"}} {{ a }} {{offer.name}}', placeholders: 4 },
    { source: '{{a | "{{"}} and {{b}}', placeholders: 2 },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.source)} has ${c.placeholders}`, () => {
      expect(compileTemplate(c.source).placeholders).toBe(c.placeholders);
    });
  }

  test("a template over the limits still compiles and renders: the catalog checks bound it, not the compiler", () => {
    expect([MAX_TEMPLATE_LENGTH, MAX_TEMPLATE_PLACEHOLDERS]).toEqual([8192, 64]);
    const source = "{{offer.name}} ".repeat(600);
    expect(source.length).toBeGreaterThan(MAX_TEMPLATE_LENGTH);
    const template = compileTemplate(source);
    expect(template.placeholders).toBe(600);
    expect(template.render(makeScope())).toBe("Cashback ".repeat(600));
  });
});

describe("syntax errors", () => {
  const cases: readonly { source: string; position: number; message: string }[] = [
    { source: "Hello {{customer.first_name", position: 6, message: "unclosed '{{'" },
    { source: "{{a}} and {{b", position: 10, message: "unclosed '{{'" },
    { source: "Hello {{customer.first_name }", position: 6, message: "unclosed '{{'" },
    { source: "Hi {{ }}", position: 6, message: "expected a name but found '}'" },
    { source: "{{customer}}", position: 2, message: "'customer' needs a field" },
    { source: "{{ foo.bar }}", position: 3, message: "unknown root 'foo'" },
    { source: "{{customer..x}}", position: 11, message: "expected a field name" },
    { source: "{{1abc}}", position: 2, message: "invalid name '1abc'" },
    { source: "{{a-b}}", position: 3, message: "expected '}}' but found '-'" },
    { source: "{{x y}}", position: 4, message: "expected '}}' but found 'y'" },
    { source: "{{x | there}}", position: 6, message: "expected a quoted fallback but found 't'" },
    { source: '{{x | "there}}', position: 6, message: "unterminated string" },
    { source: '{{x | "a\\qb"}}', position: 8, message: "unknown escape '\\q'" },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.source)} fails at ${c.position}`, () => {
      let caught: unknown;
      try {
        compileTemplate(c.source);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TemplateSyntaxError);
      const error = caught as TemplateSyntaxError;
      expect(error.position).toBe(c.position);
      expect(error.message).toContain(c.message);
      expect(error.message).toEndWith(`at position ${c.position}`);
    });
  }
});
