// API key verification. A key is hashed with HMAC-SHA256 under the server's pepper and looked up by that
// hash; verified keys and misses are cached for a short time (at most 15 seconds, so a revoked key stops
// working on every instance within that), each in a bounded LRU of its own, so that a flood of made-up
// keys churns only the misses and every real key stays cached.

import { createHmac, timingSafeEqual } from "node:crypto";
import { AppError, tenantMissing, unauthorized } from "../errors.ts";
import type { Db } from "../store/db.ts";
import { findKeyByHash, getTenant, type KeyLookup, type Scope, touchApiKeys } from "../store/tenants.ts";
import type { Metrics } from "../metrics.ts";

export interface AuthContext {
  /** The tenant the call acts on; empty for an operator call that names its tenant in the request. */
  tenantId: string;
  keyId: string;
  scopes: Scope[];
  /** The caller holds the operator key: it may change what a tenant's own keys only read (plan, limits). */
  operator?: boolean;
}

/** What a call needs: a tenant key with this scope, or the operator key. */
export type CallScope = Scope | "operator";

/** The key id the audit log records for the operator. */
export const OPERATOR_KEY_ID = "operator";

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
  /** HMAC of the operator key under the pepper; null when no operator key is configured. */
  operatorKeyHash?: string | null;
  ttlMs: number;
  /** Keys found in the database kept at most (least recently used go first). */
  maxEntries: number;
  /** Hashes found nowhere kept at most, apart from the keys: a flood of made-up keys cannot evict real ones. */
  maxMisses: number;
  now?: () => number;
}

/** A map that forgets its least recently used entry when full. */
class Lru<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    // Re-inserted, so that the first key of the map is always the least recently used.
    this.entries.delete(key);
    this.entries.set(key, v);
    return v;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.max <= 0) return;
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, value);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  deleteWhere(matches: (value: V) => boolean): void {
    for (const [key, value] of this.entries) if (matches(value)) this.entries.delete(key);
  }
}

export class ApiKeyVerifier {
  private readonly keys: Lru<CacheEntry>;
  private readonly misses: Lru<CacheEntry>;
  private readonly inflight = new Map<string, Promise<KeyLookup | null>>();
  private readonly used = new Set<string>();
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    private readonly metrics: Metrics,
    private readonly opts: KeyVerifierOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.keys = new Lru(opts.maxEntries);
    this.misses = new Lru(opts.maxMisses);
  }

  private isOperatorKey(hash: string): boolean {
    const expected = this.opts.operatorKeyHash;
    return !!expected && timingSafeEqual(Buffer.from(hash, "hex"), Buffer.from(expected, "hex"));
  }

  /**
   * Resolves the caller or throws UNAUTHORIZED / FORBIDDEN. The operator key passes every scope: on an
   * operator call it needs no tenant; on a tenant's call it acts on the tenant x-tenant-id names.
   */
  async verify(tenantId: string | null, key: string | null, scope: CallScope): Promise<AuthContext> {
    if (!key || !API_KEY_PATTERN.test(key)) throw unauthorized();
    const hash = hashApiKey(key, this.opts.pepper);
    if (this.isOperatorKey(hash)) {
      if (scope === "operator") return { tenantId: "", keyId: OPERATOR_KEY_ID, scopes: [], operator: true };
      // The same answer for a missing tenant as for a bad key, as everywhere.
      if (!tenantId) throw tenantMissing();
      if (!(await getTenant(this.db, tenantId))) throw unauthorized();
      return { tenantId, keyId: OPERATOR_KEY_ID, scopes: ["decide", "admin"], operator: true };
    }
    if (!tenantId) throw tenantMissing();
    const lookup = await this.lookup(hash);
    if (!lookup || lookup.revoked || lookup.tenantId !== tenantId) throw unauthorized();
    if (lookup.expiresAt && lookup.expiresAt.getTime() <= this.now()) throw unauthorized();
    if (lookup.tenantStatus !== "active") throw new AppError("FORBIDDEN", "Tenant is suspended");
    if (scope === "operator") throw new AppError("FORBIDDEN", "This operation needs the operator key (OPERATOR_API_KEY)");
    if (!lookup.scopes.includes(scope) && !lookup.scopes.includes("admin")) {
      throw new AppError("FORBIDDEN", `API key lacks the ${scope} scope`);
    }
    this.used.add(lookup.keyId);
    return { tenantId: lookup.tenantId, keyId: lookup.keyId, scopes: lookup.scopes };
  }

  private async lookup(hash: string): Promise<KeyLookup | null> {
    const now = this.now();
    const hit = this.keys.get(hash) ?? this.misses.get(hash);
    if (hit && hit.until > now) {
      this.metrics.cache.inc({ cache: "api_key", result: "hit" });
      return hit.lookup;
    }
    this.metrics.cache.inc({ cache: "api_key", result: "miss" });
    let pending = this.inflight.get(hash);
    if (!pending) {
      this.metrics.apiKeyLookups.inc();
      pending = findKeyByHash(this.db, hash).finally(() => this.inflight.delete(hash));
      this.inflight.set(hash, pending);
    }
    const lookup = await pending;
    const entry = { lookup, until: this.now() + this.opts.ttlMs };
    if (lookup) {
      this.misses.delete(hash);
      this.keys.set(hash, entry);
    } else {
      this.keys.delete(hash);
      this.misses.set(hash, entry);
    }
    return lookup;
  }

  /** Drops a key from this instance's cache (it was just revoked here); other instances follow within the TTL. */
  forget(hash: string): void {
    this.keys.delete(hash);
    this.misses.delete(hash);
  }

  /**
   * Drops every cached key of a tenant, so that the next call of each reads the database again: called
   * when the database announces a change to who may call for the tenant (a key revoked, the tenant
   * suspended), on whichever instance it was made.
   */
  forgetTenant(tenantId: string): void {
    this.keys.deleteWhere((entry) => entry.lookup?.tenantId === tenantId);
  }

  /** Records last-use times for the keys seen since the previous call (called on a timer). */
  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const ids = [...this.used];
    this.used.clear();
    await touchApiKeys(this.db, ids);
  }
}
