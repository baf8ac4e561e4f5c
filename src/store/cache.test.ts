import { describe, expect, test } from "bun:test";
import { Metrics } from "../metrics.ts";
import { LoadingCache } from "./cache.ts";

describe("LoadingCache", () => {
  test("getFresh reloads only an entry older than asked, however often it is asked", async () => {
    let now = 0;
    let loads = 0;
    const cache = new LoadingCache(
      { name: "t", ttlMs: 60_000, maxEntries: 10, staleWhileRevalidate: true, metrics: new Metrics(), now: () => now },
      async (key) => `${key}:${++loads}`,
    );
    expect(await cache.get("a")).toBe("a:1");
    for (let i = 0; i < 5; i++) expect(await cache.getFresh("a", 1000)).toBe("a:1");
    now = 1001;
    expect(await cache.getFresh("a", 1000)).toBe("a:2");
    expect(await cache.getFresh("a", 1000)).toBe("a:2");
    expect(loads).toBe(2);
  });

  test("an invalidated key is loaded again, and a load started before does not put old data back", async () => {
    let version = 1;
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const cache = new LoadingCache(
      { name: "t", ttlMs: 60_000, maxEntries: 10, staleWhileRevalidate: false, metrics: new Metrics() },
      async () => {
        const v = version;
        if (v === 1) await gate;
        return v;
      },
    );
    const slow = cache.get("k");
    version = 2;
    cache.invalidate("k");
    expect(await cache.get("k")).toBe(2);
    release();
    expect(await slow).toBe(1);
    expect(await cache.get("k")).toBe(2);
  });
});

describe("LoadingCache bound", () => {
  test("a full cache drops its oldest entries first and never holds more than its bound", async () => {
    const cache = new LoadingCache(
      { name: "t", ttlMs: 60_000, maxEntries: 640, staleWhileRevalidate: false, metrics: new Metrics() },
      async (key) => key,
    );
    for (let i = 0; i < 5_000; i++) {
      cache.set(`k${i}`, `v${i}`);
      expect(cache.peek(`k${i}`)).toBe(`v${i}`);
    }
    let held = 0;
    for (let i = 0; i < 5_000; i++) if (cache.peek(`k${i}`) !== undefined) held++;
    expect(held).toBeLessThanOrEqual(640);
    expect(held).toBeGreaterThanOrEqual(630);
    // What is held is the newest: everything from the oldest entry still held onwards.
    const first = Array.from({ length: 5_000 }, (_, i) => i).find((i) => cache.peek(`k${i}`) !== undefined) as number;
    for (let i = first; i < 5_000; i++) expect(cache.peek(`k${i}`)).toBe(`v${i}`);
    expect(first).toBe(5_000 - held);
  });
});
