// How long this process's event loop has been held up, so that a timeout can measure the time an
// operation really took rather than the time it sat behind other work (a busy loop delays both the
// timer and the answer it races).

export class LoopStalls {
  private stalled = 0;
  private last = performance.now();
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly intervalMs = 10) {}

  /** Milliseconds the loop has been late so far, counting a stretch that is still going on. */
  stalledMs(): number {
    this.start();
    return this.stalled + Math.max(0, performance.now() - this.last - this.intervalMs);
  }

  private start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - this.intervalMs;
      if (late > 0) this.stalled += late;
      this.last = now;
    }, this.intervalMs);
    // It only measures; it must never keep the process alive.
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
