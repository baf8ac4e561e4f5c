// How long this process's event loop has been held up, so that a timeout can measure the time an
// operation really took rather than the time it sat behind other work (a busy loop delays both the
// timer and the answer it races).

export class LoopStalls {
  private stalled = 0;
  private last = performance.now();
  private timer: ReturnType<typeof setInterval> | null = null;

  /** `onSample` is told how late each tick was (0 when on time): the event-loop delay metric reads it. */
  constructor(
    private readonly intervalMs = 10,
    private readonly onSample?: (lateMs: number) => void,
  ) {}

  /** Milliseconds the loop has been late so far, counting a stretch that is still going on. */
  stalledMs(): number {
    this.start();
    return this.stalled + Math.max(0, performance.now() - this.last - this.intervalMs);
  }

  /**
   * Resolves once `ms` have passed that did not go to the loop being held up (or `wallCapMs` of plain
   * time, however busy the process). When it is due it gives pending I/O one more turn first, in case
   * the answer it races already sits in a socket.
   */
  deadline(ms: number, wallCapMs: number): { reached: Promise<void>; cancel(): void } {
    const started = performance.now();
    const stalledAtStart = this.stalledMs();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let cancelled = false;
    const reached = new Promise<void>((resolve) => {
      const arm = (waitMs: number) => {
        timer = setTimeout(
          () =>
            setImmediate(() => {
              if (cancelled) return;
              const wall = performance.now() - started;
              const spent = wall - (this.stalledMs() - stalledAtStart);
              if (spent >= ms || wall >= wallCapMs) resolve();
              else arm(ms - spent);
            }),
          waitMs,
        );
      };
      arm(ms);
    });
    return {
      reached,
      cancel() {
        cancelled = true;
        clearTimeout(timer);
      },
    };
  }

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - this.intervalMs;
      if (late > 0) this.stalled += late;
      this.onSample?.(Math.max(0, late));
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
