// Call deadlines with one timer per deadline length instead of one per call. Calls given the same length
// fall due in the order they started, so each length keeps its calls in a queue and a timer for the
// earliest; a call that ends marks itself done, and done calls leave from the front of the queue. Most
// calls carry the same length (the ceiling, MAX_DEADLINE_MS, when the caller sends no grpc-timeout), so
// a busy server runs one timer for all of them.

/** One call's place in its queue. */
export interface Deadline {
  /** Called when the deadline passes; null once the call ended. */
  expire: (() => void) | null;
  readonly at: number;
  readonly lane: Lane;
}

class Lane {
  private queue: Deadline[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly ms: number,
    private readonly gone: (lane: Lane) => void,
  ) {}

  /** Calls in the queue that have not ended. */
  get pending(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if ((this.queue[i] as Deadline).expire !== null) n++;
    return n;
  }

  add(expire: () => void): Deadline {
    const d: Deadline = { expire, at: performance.now() + this.ms, lane: this };
    this.queue.push(d);
    if (this.timer === undefined) this.arm(this.ms);
    return d;
  }

  /** Drops ended calls from the front; the lane goes once nothing is left in it. */
  trim(): void {
    const q = this.queue;
    while (this.head < q.length && (q[this.head] as Deadline).expire === null) this.head++;
    if (this.head === q.length) {
      this.queue = [];
      this.head = 0;
      clearTimeout(this.timer);
      this.timer = undefined;
      this.gone(this);
    } else if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(ms)));
  }

  private readonly fire = () => {
    this.timer = undefined;
    const now = performance.now();
    const q = this.queue;
    const due: (() => void)[] = [];
    while (this.head < q.length) {
      const d = q[this.head] as Deadline;
      if (d.expire !== null && d.at > now) break;
      this.head++;
      if (d.expire !== null) due.push(d.expire);
      d.expire = null;
    }
    if (this.head < q.length) this.arm((q[this.head] as Deadline).at - now);
    else this.trim();
    // Called once the queue is in order again: a callback may start or end other calls.
    for (const expire of due) expire();
  };
}

export class Deadlines {
  private readonly lanes = new Map<number, Lane>();
  private readonly gone = (lane: Lane) => {
    if (this.lanes.get(lane.ms) === lane) this.lanes.delete(lane.ms);
  };

  /** Calls `expire` once `ms` have passed, unless `end` is called first. */
  start(ms: number, expire: () => void): Deadline {
    let lane = this.lanes.get(ms);
    if (!lane) {
      lane = new Lane(ms, this.gone);
      this.lanes.set(ms, lane);
    }
    return lane.add(expire);
  }

  /** The call ended: its deadline no longer fires. */
  end(d: Deadline): void {
    if (d.expire === null) return;
    d.expire = null;
    d.lane.trim();
  }

  /** Calls whose deadline has neither passed nor been ended, and how many lengths have a queue. */
  get pending(): { calls: number; lengths: number } {
    let calls = 0;
    for (const lane of this.lanes.values()) calls += lane.pending;
    return { calls, lengths: this.lanes.size };
  }
}
