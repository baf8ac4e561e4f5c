import { describe, expect, test } from "bun:test";
import { Counter, Histogram } from "./metrics.ts";

describe("labelled series", () => {
  test("a counter's labelled increment adds to the same series as inc with those labels", () => {
    const c = new Counter("t_total", "test");
    const hit = c.labelled({ cache: "profile", result: "hit" });
    hit();
    hit(2);
    c.inc({ cache: "profile", result: "hit" });
    c.inc({ cache: "profile", result: "miss" });
    expect(c.get({ cache: "profile", result: "hit" })).toBe(4);
    expect(c.get({ cache: "profile", result: "miss" })).toBe(1);
    expect(c.render()).toContain('t_total{cache="profile",result="hit"} 4');
  });

  test("a histogram's labelled observation lands in the series observe writes", () => {
    const h = new Histogram("t_seconds", "test", [0.1, 1]);
    h.labelled({ kind: "query", result: "ok" })(0.05);
    h.observe({ kind: "query", result: "ok" }, 0.5);
    const text = h.render();
    expect(text).toContain('t_seconds_count{kind="query",result="ok"} 2');
    expect(text).toContain('t_seconds_bucket{kind="query",result="ok",le="0.1"} 1');
  });
});
