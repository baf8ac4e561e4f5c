// API key verification. A key is hashed with HMAC-SHA256 under the server's pepper and looked up by that
// hash; verified keys and misses are cached for a short time (at most 15 seconds, so a revoked key stops
// working on every instance within that).

import { createHmac } from "node:crypto";
import { AppError, unauthorized } from "../errors.ts";
import type { Db } from "../store/db.ts";
import { findKeyByHash, type KeyLookup, type Scope, touchApiKeys } from "../store/tenants.ts";
import type { Metrics } from "../metrics.ts";

export interface AuthContext {
  tenantId: string;
  keyId: string;
  scopes: Scope[];
}

export function hashApiKey(key: string, pepper: string): string {
  return createHmac("sha256", pepper).update(key).digest("hex");
}

export const API_KEY_PATTERN = /^krn_[0-9A-Za-z]{32,128}$/;

interface CacheEntry {
  lookup: KeyLookup | null;
  until: number;
}

export interface KeyVerifierOptions {
  pepper: string;
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

export class ApiKeyVerifier {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<KeyLookup | null>>();
  private readonly used = new Set<string>();
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly metrics: Metrics,
    private readonly opts: KeyVerifierOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Resolves the caller or throws UNAUTHORIZED / FORBIDDEN. */
  async verify(tenantId: string | null, key: string | null, scope: Scope): Promise<AuthContext> {
    if (!tenantId || !key || !API_KEY_PATTERN.test(key)) throw unauthorized();
    const hash = hashApiKey(key, this.opts.pepper);
    const lookup = await this.lookup(hash);
    if (!lookup || lookup.revoked || lookup.tenantId !== tenantId) throw unauthorized();
    if (lookup.expiresAt && lookup.expiresAt.getTime() <= this.now()) throw unauthorized();
    if (lookup.tenantStatus !== "active") throw new AppError("FORBIDDEN", "Tenant is suspended");
    if (!lookup.scopes.includes(scope) && !lookup.scopes.includes("admin")) {
      throw new AppError("FORBIDDEN", `API key lacks the ${scope} scope`);
    }
    this.used.add(lookup.keyId);
    return { tenantId: lookup.tenantId, keyId: lookup.keyId, scopes: lookup.scopes };
  }

  private async lookup(hash: string): Promise<KeyLookup | null> {
    const hit = this.cache.get(hash);
    if (hit && hit.until > this.now()) {
      this.metrics.cache.inc({ cache: "api_key", result: "hit" });
      return hit.lookup;
    }
    this.metrics.cache.inc({ cache: "api_key", result: "miss" });
    let pending = this.inflight.get(hash);
    if (!pending) {
      pending = findKeyByHash(this.db, hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, pending);
    }
    const lookup = await pending;
    if (this.cache.size >= this.opts.maxEntries) this.cache.clear();
    this.cache.set(hash, { lookup, until: this.now() + this.opts.ttlMs });
    return lookup;
  }

  /** Drops a key from this instance's cache (it was just revoked here); other instances follow within the TTL. */
  forget(hash: string): void {
    this.cache.delete(hash);
  }

  /** Records last-use times for the keys seen since the previous call (called on a timer). */
  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const ids = [...this.used];
    this.used.clear();
    await touchApiKeys(this.db, ids);
  }
}
