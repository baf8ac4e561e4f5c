// The compiled catalogs of this instance, one per tenant. A catalog is compiled again only when it
// changed: when its cache entry expires, one read of the tenant's catalog revision says whether anything
// did. When only a few offers and creatives changed, only those rows are read again and only they are
// compiled anew. A compile runs in short slices between other work, so decisions go on being answered from
// the previous catalog meanwhile, and it reuses the previous catalog's parsed formulas and templates.

import { type CompiledCatalog, compileCatalogSteps } from "../decisioning/catalog.ts";
import type { CatalogDefinition } from "../decisioning/definitions.ts";
import { prepareCandidateLists } from "../decisioning/engine.ts";
import type { PropensityModel } from "../decisioning/propensity.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { LoadingCache } from "../store/cache.ts";
import { catalogChanges, catalogRevision, loadCatalog, reloadOffersAndCreatives } from "../store/catalog.ts";
import type { Queryable } from "../store/db.ts";

// Work spread out in slices waits here for a turn of the event loop: one slice per turn however many
// compiles run at once (several tenants, several instances in one process), so their slices never add
// up to one long stall.
const waiting: (() => void)[] = [];
let turnScheduled = false;

function runOneSlice(): void {
  turnScheduled = false;
  const next = waiting.shift();
  if (waiting.length > 0) {
    turnScheduled = true;
    setImmediate(runOneSlice);
  }
  next?.();
}

function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => {
    waiting.push(resolve);
    if (!turnScheduled) {
      turnScheduled = true;
      setImmediate(runOneSlice);
    }
  });
}

/**
 * Runs a stepwise computation to its end, giving the event loop back whenever a slice has run for
 * `sliceMs`. Reports the longest slice, which is how long the computation held up everything else.
 */
export async function runInSlices<T>(steps: Generator<void, T>, sliceMs: number): Promise<{ value: T; longestSliceMs: number }> {
  let longest = 0;
  let sliceStart = performance.now();
  for (;;) {
    const r = steps.next();
    const now = performance.now();
    if (r.done) return { value: r.value, longestSliceMs: Math.max(longest, now - sliceStart) };
    if (now - sliceStart >= sliceMs) {
      longest = Math.max(longest, now - sliceStart);
      await nextTurn();
      sliceStart = performance.now();
    }
  }
}

/** Changes read row by row at most; past this many, the whole catalog is read again. */
const MAX_ROW_CHANGES = 200;
/** The tables whose rows a reload can re-read one by one; a change anywhere else reloads everything. */
const ROW_TABLES = new Set(["offers", "creatives"]);

/**
 * The catalog's definition after a few changes to offers and creatives alone: the previous definition
 * with just those rows read again. Undefined when that does not apply (other tables changed, too many
 * rows, or the change log no longer covers the gap).
 */
async function changedRowsOnly(
  db: Queryable,
  tenantId: string,
  previous: CompiledCatalog,
  revision: number,
): Promise<CatalogDefinition | undefined> {
  if (previous.revision === null || previous.revision >= revision) return undefined;
  const changes = await catalogChanges(db, tenantId, previous.revision, revision, MAX_ROW_CHANGES);
  if (!changes || changes.some((c) => !ROW_TABLES.has(c.kind) || c.id === "")) return undefined;
  const ids = (kind: string) => changes.filter((c) => c.kind === kind).map((c) => c.id);
  return reloadOffersAndCreatives(db, tenantId, previous.definition, ids("offers"), ids("creatives"));
}

export interface CatalogCacheOptions {
  db: Queryable;
  /** The tenant's learned statistics, whose propensities a new catalog's candidate lists are prepared for. */
  propensityOf: (tenantId: string) => Promise<PropensityModel>;
  log: Logger;
  metrics: Metrics;
  ttlMs: number;
  sliceMs: number;
  now: () => Date;
}

export function createCatalogCache(opts: CatalogCacheOptions): LoadingCache<CompiledCatalog> {
  const { db, log, metrics } = opts;
  const cache: LoadingCache<CompiledCatalog> = new LoadingCache<CompiledCatalog>(
    {
      name: "catalog",
      ttlMs: opts.ttlMs,
      maxEntries: 10_000,
      staleWhileRevalidate: true,
      metrics,
      onRefreshError: (err) => log.error("cache refresh failed", { cache: "catalog", err }),
    },
    async (tenantId) => {
      const previous = cache.peek(tenantId);
      // Read before the catalog: a change landing in between makes the next check load again.
      const revision = await catalogRevision(db, tenantId);
      if (previous && previous.revision === revision) {
        metrics.catalogCompiles.inc({ result: "unchanged" });
        return previous;
      }
      try {
        const rows = previous && (await changedRowsOnly(db, tenantId, previous, revision));
        const definition = rows || (await loadCatalog(db, tenantId));
        const started = performance.now();
        const compiled = await runInSlices(compileCatalogSteps(definition, { revision, previous }), opts.sliceMs);
        const value = compiled.value;
        // What the first decisions would otherwise compute (each list's propensities and rank order) is
        // computed here too, in slices, before the new catalog starts serving.
        const prepared = await runInSlices(prepareCandidateLists(value, await opts.propensityOf(tenantId), opts.now()), opts.sliceMs);
        const longestSliceMs = Math.max(compiled.longestSliceMs, prepared.longestSliceMs);
        const tookMs = performance.now() - started;
        metrics.catalogCompiles.inc({ result: rows ? "rows" : "compiled" });
        metrics.catalogCompileSeconds.observe({}, tookMs / 1000);
        metrics.catalogCompileSliceSeconds.observe({}, longestSliceMs / 1000);
        log.debug("catalog compiled", {
          tenantId,
          revision,
          offers: value.offers.length,
          changedRowsOnly: Boolean(rows),
          tookMs,
          longestSliceMs,
        });
        return value;
      } catch (err) {
        metrics.catalogCompiles.inc({ result: "error" });
        throw err;
      }
    },
  );
  return cache;
}
