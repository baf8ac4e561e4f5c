import { describe, expect, test } from "bun:test";
import { batchedLoader, PartialLoadError } from "./batched-load.ts";

/** A loadMany that records each call's keys and answers when released. */
function gatedLoader(fail: (keys: string[]) => boolean = () => false) {
  const calls: string[][] = [];
  const gates: (() => void)[] = [];
  const loadMany = async (keys: string[]) => {
    calls.push(keys);
    await new Promise<void>((r) => gates.push(r));
    if (fail(keys)) throw new Error(`load of ${keys.join(",")} failed`);
    return new Map(keys.filter((k) => !k.startsWith("none")).map((k) => [k, `v:${k}`]));
  };
  const releaseAll = async () => {
    while (gates.length > 0) (gates.shift() as () => void)();
    await Bun.sleep(0);
  };
  return { calls, loadMany, releaseAll };
}

describe("batchedLoader", () => {
  test("keys asked for in one turn go in one load; a repeated key is read once; a key not found is `missing`", async () => {
    const g = gatedLoader();
    const load = batchedLoader(g.loadMany, null, { maxInFlight: 2, maxKeys: 100 });
    const answers = Promise.all(["a", "b", "a", "none1"].map(load));
    await Bun.sleep(0);
    await g.releaseAll();
    expect(await answers).toEqual(["v:a", "v:b", "v:a", null]);
    expect(g.calls).toEqual([["a", "b", "none1"]]);
  });

  test("while the loads allowed are under way, the keys asked for wait and go together in the next", async () => {
    const g = gatedLoader();
    const load = batchedLoader(g.loadMany, null, { maxInFlight: 1, maxKeys: 100 });
    const first = load("a");
    await Bun.sleep(0);
    const later = Promise.all([load("b"), load("c")]);
    await Bun.sleep(0);
    await Bun.sleep(0);
    expect(g.calls).toEqual([["a"]]);
    await g.releaseAll();
    expect(await first).toBe("v:a");
    await Bun.sleep(0);
    expect(g.calls).toEqual([["a"], ["b", "c"]]);
    await g.releaseAll();
    expect(await later).toEqual(["v:b", "v:c"]);
  });

  test("no load holds more than maxKeys keys", async () => {
    const g = gatedLoader();
    const load = batchedLoader(g.loadMany, null, { maxInFlight: 1, maxKeys: 2 });
    const all = Promise.all(["a", "b", "c", "d", "e"].map(load));
    for (let i = 0; i < 5; i++) {
      await Bun.sleep(0);
      await g.releaseAll();
    }
    expect(await all).toEqual(["v:a", "v:b", "v:c", "v:d", "v:e"]);
    expect(g.calls).toEqual([["a", "b"], ["c", "d"], ["e"]]);
  });

  test("a failed load rejects its own keys only, and later loads go on", async () => {
    const g = gatedLoader((keys) => keys.includes("bad"));
    const load = batchedLoader(g.loadMany, null, { maxInFlight: 1, maxKeys: 100 });
    const failed = Promise.allSettled([load("bad"), load("x")]);
    await Bun.sleep(0);
    const next = load("y");
    await g.releaseAll();
    const [bad, x] = await failed;
    expect(bad?.status).toBe("rejected");
    expect(x?.status).toBe("rejected");
    await Bun.sleep(0);
    await g.releaseAll();
    expect(await next).toBe("v:y");
    expect(g.calls).toEqual([["bad", "x"], ["y"]]);
  });

  test("a partial failure rejects the failed keys only; the others resolve", async () => {
    const load = batchedLoader<string | null>(
      async (keys: string[]) => {
        const found = new Map(keys.filter((k) => k.startsWith("a:")).map((k) => [k, `v:${k}`]));
        throw new PartialLoadError(found, new Map(keys.filter((k) => k.startsWith("b:")).map((k) => [k, new Error(`no ${k}`)])));
      },
      null,
      { maxInFlight: 1, maxKeys: 100 },
    );
    const [a, b, missing] = await Promise.allSettled([load("a:1"), load("b:1"), load("c:1")]);
    expect(a).toEqual({ status: "fulfilled", value: "v:a:1" });
    expect(b?.status).toBe("rejected");
    expect(String((b as PromiseRejectedResult).reason)).toContain("no b:1");
    expect(missing).toEqual({ status: "fulfilled", value: null });
  });
});
