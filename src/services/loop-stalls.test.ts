import { describe, expect, test } from "bun:test";
import { LoopStalls } from "./loop-stalls.ts";

/** Holds the event loop (and this thread) for `ms`. */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

describe("LoopStalls", () => {
  test("counts the time the loop was held", async () => {
    const stalls = new LoopStalls();
    const before = stalls.stalledMs();
    await Bun.sleep(30);
    hold(200);
    await Bun.sleep(30);
    expect(stalls.stalledMs() - before).toBeGreaterThanOrEqual(150);
    stalls.stop();
  });

  test("a deadline does not count time the loop was held: it is due that much later", async () => {
    const stalls = new LoopStalls();
    stalls.stalledMs();
    await Bun.sleep(20);
    const started = performance.now();
    let dueAt = 0;
    const deadline = stalls.deadline(200, 10_000);
    deadline.reached.then(() => {
      dueAt = performance.now();
    });
    await Bun.sleep(20);
    // The loop is held past the deadline: a plain timer would fire as soon as it is let go.
    hold(400);
    const releasedAt = performance.now();
    await deadline.reached;
    // 200 ms of time not held were owed, about 20 of which had passed before the hold.
    expect(dueAt - releasedAt).toBeGreaterThanOrEqual(120);
    expect(dueAt - started).toBeGreaterThanOrEqual(520);
    stalls.stop();
  });

  test("however busy the process, a deadline is due at its wall-clock cap", async () => {
    const stalls = new LoopStalls();
    stalls.stalledMs();
    await Bun.sleep(20);
    const started = performance.now();
    const deadline = stalls.deadline(200, 250);
    hold(600);
    await deadline.reached;
    // Due soon after the hold (a timer and an I/O turn), not 200 ms of unheld time later.
    expect(performance.now() - started).toBeLessThan(750);
    stalls.stop();
  });

  test("a cancelled deadline never resolves", async () => {
    const stalls = new LoopStalls();
    const deadline = stalls.deadline(20, 40);
    let reached = false;
    deadline.reached.then(() => {
      reached = true;
    });
    deadline.cancel();
    await Bun.sleep(100);
    expect(reached).toBe(false);
    stalls.stop();
  });
});
