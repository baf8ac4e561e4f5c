import { describe, expect, test } from "bun:test";
import { assignVariant, bucketOf, fnv1a32 } from "./experiment.ts";

describe("experiment assignment", () => {
  test("FNV-1a matches the published test vectors", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  test("buckets are sticky and shares follow the weights within one point over 100,000 customers", () => {
    const variants = [
      { variant: "control", creativeId: "c", weight: 70 },
      { variant: "variant_a", creativeId: "v", weight: 30 },
    ];
    const counts = new Map<string, number>();
    for (let i = 0; i < 100_000; i++) {
      const v = assignVariant("exp_cc_cta_test", `cust_${i}`, variants);
      counts.set(v?.variant ?? "", (counts.get(v?.variant ?? "") ?? 0) + 1);
    }
    expect(Math.abs((counts.get("control") ?? 0) / 1000 - 70)).toBeLessThan(1);
    expect(Math.abs((counts.get("variant_a") ?? 0) / 1000 - 30)).toBeLessThan(1);
    expect(bucketOf("exp_cc_cta_test", "cust_12345")).toBe(bucketOf("exp_cc_cta_test", "cust_12345"));
    expect(assignVariant("exp_cc_cta_test", "cust_12345", variants)?.variant).toBe("control");
  });
});
