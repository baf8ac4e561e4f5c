// Deterministic, sticky assignment of customers to experiment variants: a 32-bit FNV-1a hash of
// "experimentId:customerId", scaled to a bucket in [0, 100), falls into the variants' cumulative weights.
// The same customer always lands in the same variant, so no assignment table is read on the hot path.

export interface Variant {
  variant: string;
  creativeId: string;
  weight: number;
}

/** 32-bit FNV-1a over the UTF-8 bytes of the input. */
export function fnv1a32(input: string): number {
  let hash = 0x811c9dc5;
  const bytes = new TextEncoder().encode(input);
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The hash scaled onto [0, 100): every bucket gets the same share of the 2^32 hash values (±1). */
export function bucketOf(experimentId: string, customerId: string): number {
  return Math.floor((fnv1a32(`${experimentId}:${customerId}`) * 100) / 2 ** 32);
}

/** Picks the variant whose cumulative weight range holds the customer's bucket; weights sum to 100. */
export function assignVariant<V extends Variant>(experimentId: string, customerId: string, variants: readonly V[]): V | undefined {
  const bucket = bucketOf(experimentId, customerId);
  let upper = 0;
  for (const v of variants) {
    upper += v.weight;
    if (bucket < upper) return v;
  }
  return undefined;
}
