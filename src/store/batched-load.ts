// A loader of many keys used as a loader of one: what is asked for while enough loads are under way waits
// and goes with the next load, so a busy instance reads many rows per query (a batch deciding for
// thousands of new customers) while a quiet one still reads each key at once.

export interface BatchedLoaderOptions {
  /** Loads under way at once at most; keys asked for beyond them wait for the next. */
  maxInFlight: number;
  /** Keys per load at most. */
  maxKeys: number;
}

/**
 * Thrown by a loadMany that read some keys and failed others (one tenant's query of several): the keys
 * read resolve, only the failed ones reject.
 */
export class PartialLoadError<V> extends Error {
  constructor(
    readonly found: Map<string, V>,
    readonly failed: Map<string, unknown>,
  ) {
    super(`${failed.size} of the keys could not be loaded`);
    this.name = "PartialLoadError";
  }
}

interface Waiting<V> {
  resolve: (v: V) => void;
  reject: (err: unknown) => void;
}

/**
 * Returns a loader of one key. `loadMany` answers for the keys it is given; a key it leaves out resolves
 * as `missing`. A failed load rejects every key of it (and only those), a PartialLoadError only its failed keys.
 */
export function batchedLoader<V>(
  loadMany: (keys: string[]) => Promise<Map<string, V>>,
  missing: V,
  opts: BatchedLoaderOptions,
): (key: string) => Promise<V> {
  const queue = new Map<string, Waiting<V>[]>();
  let running = 0;
  let scheduled = false;

  const start = () => {
    scheduled = false;
    while (queue.size > 0 && running < opts.maxInFlight) {
      const batch = new Map<string, Waiting<V>[]>();
      for (const [key, waiting] of queue) {
        if (batch.size >= opts.maxKeys) break;
        batch.set(key, waiting);
      }
      for (const key of batch.keys()) queue.delete(key);
      running++;
      loadMany([...batch.keys()])
        .then(
          (found) => {
            for (const [key, waiting] of batch) for (const w of waiting) w.resolve(found.has(key) ? (found.get(key) as V) : missing);
          },
          (err: unknown) => {
            for (const [key, waiting] of batch) {
              for (const w of waiting) {
                if (!(err instanceof PartialLoadError)) w.reject(err);
                else if (err.failed.has(key)) w.reject(err.failed.get(key));
                else w.resolve(err.found.has(key) ? (err.found.get(key) as V) : missing);
              }
            }
          },
        )
        .finally(() => {
          running--;
          start();
        });
    }
  };

  return (key) =>
    new Promise<V>((resolve, reject) => {
      const waiting = queue.get(key);
      if (waiting) waiting.push({ resolve, reject });
      else queue.set(key, [{ resolve, reject }]);
      // Keys asked for in the same turn of the event loop go together even when no load is under way.
      if (!scheduled && running < opts.maxInFlight) {
        scheduled = true;
        queueMicrotask(start);
      }
    });
}
