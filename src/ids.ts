// Random identifiers and API keys: base62 text from the system's cryptographic random source.

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Random bytes are drawn a few kilobytes at a time: one call of the random source per id is most of an id's
// cost when a bulk call makes thousands. Each byte is used once.
const pool = new Uint8Array(4096);
let used = pool.length;

export function randomBase62(length: number): string {
  // Rejection sampling keeps every character equally likely (256 is not a multiple of 62).
  let out = "";
  while (out.length < length) {
    if (used === pool.length) {
      crypto.getRandomValues(pool);
      used = 0;
    }
    const b = pool[used++] as number;
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}

export const newTraceId = () => `trace_${randomBase62(20)}`;
export const newInteractionId = () => `int_${randomBase62(20)}`;
export const newRequestId = () => `req_${randomBase62(16)}`;
export const newApiKeyId = () => `key_${randomBase62(16)}`;
/** An API key: krn_ and 40 random base62 characters (about 238 bits). */
export const newApiKey = () => `krn_${randomBase62(40)}`;
/** A decision's random part: its id is dec_<it>, and its recommendations' ids rec_<it><rank, 2 digits>. */
export const newDecisionKey = () => randomBase62(20);
export const decisionIdOf = (key: string) => `dec_${key}`;
export const recommendationIdOf = (key: string, rank: number) => `rec_${key}${String(rank).padStart(2, "0")}`;

/** The decision id and rank a recommendation id names, or null when it is not one. */
export function parseRecommendationId(id: string): { decisionId: string; rank: number } | null {
  const m = id.match(/^rec_([0-9A-Za-z]{20})(\d{2})$/);
  return m ? { decisionId: decisionIdOf(m[1] as string), rank: Number(m[2]) } : null;
}
export const newEventId = () => `evt_${randomBase62(20)}`;
export const newWebhookId = () => `wh_${randomBase62(16)}`;
export const newWebhookSecret = () => `whsec_${randomBase62(32)}`;
