// Call deadlines kept in one queue per length: a deadline fires once its time has passed and not before,
// an ended call never fires, calls of different lengths keep their own times, a callback may start
// another call, and nothing stays queued once every call has ended or expired.

import { describe, expect, test } from "bun:test";
import { Deadlines } from "../src/transport/deadline-queue.ts";

describe("Deadlines", () => {
  test("a deadline fires after its length, an ended one never does", async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const started = performance.now();
    let firedAt = 0;
    d.start(60, () => {
      fired.push("a");
      firedAt = performance.now();
    });
    const b = d.start(60, () => fired.push("b"));
    d.end(b);
    d.end(b); // twice is harmless
    expect(d.pending).toEqual({ calls: 1, lengths: 1 });
    await Bun.sleep(20);
    expect(fired).toEqual([]);
    await Bun.sleep(200);
    expect(fired).toEqual(["a"]);
    expect(firedAt - started).toBeGreaterThanOrEqual(59);
    expect(d.pending).toEqual({ calls: 0, lengths: 0 });
  });

  test("calls of one length fire in the order they started, each at its own time", async () => {
    const d = new Deadlines();
    const fired: number[] = [];
    const at: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      const begun = performance.now() - started;
      d.start(80, () => {
        fired.push(i);
        at.push(performance.now() - started - begun);
      });
      await Bun.sleep(30);
    }
    await Bun.sleep(300);
    expect(fired).toEqual([0, 1, 2]);
    for (const ms of at) expect(ms).toBeGreaterThanOrEqual(79);
  });

  test("lengths do not wait on each other; ending every call empties the queues", async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const long = d.start(5_000, () => fired.push("long"));
    d.start(30, () => fired.push("short"));
    const ended = Array.from({ length: 2000 }, () => d.start(5_000, () => fired.push("ended")));
    expect(d.pending).toEqual({ calls: 2002, lengths: 2 });
    await Bun.sleep(150);
    expect(fired).toEqual(["short"]);
    // Ended out of order: the queue shrinks as its front ends.
    for (const e of ended.slice(1000)) d.end(e);
    for (const e of ended.slice(0, 1000)) d.end(e);
    expect(d.pending).toEqual({ calls: 1, lengths: 1 });
    d.end(long);
    expect(d.pending).toEqual({ calls: 0, lengths: 0 });
    await Bun.sleep(50);
    expect(fired).toEqual(["short"]);
  });

  test("a callback that starts or ends other calls leaves the queue in order", async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const later = d.start(40, () => fired.push("later"));
    d.start(20, () => {
      fired.push("first");
      d.end(later);
      d.start(20, () => fired.push("again"));
    });
    await Bun.sleep(200);
    expect(fired).toEqual(["first", "again"]);
    expect(d.pending).toEqual({ calls: 0, lengths: 0 });
  });
});
