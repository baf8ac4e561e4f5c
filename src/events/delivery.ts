// One webhook delivery: the event's JSON POSTed as is, signed so the receiver can check it came from us
// and is fresh: Kaireon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>.

import { createHmac } from "node:crypto";
import { resolvePublic } from "./webhook-target.ts";

export function signature(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

export type DeliveryResult =
  | { ok: true; status: number }
  /** `retry`: worth trying again later (5xx, 429, 408, timeout, no connection); else it never will be. */
  | { ok: false; status: number; error: string; retry: boolean };

const MAX_ERROR_LENGTH = 300;

export async function deliver(
  target: { url: string; secret: string },
  event: { id: string; type: string; body: string },
  opts: { timeoutMs: number; allowPrivate: boolean; now?: () => number },
): Promise<DeliveryResult> {
  const url = new URL(target.url);
  // The name is looked up here and again by the connection itself: a name whose answer changes between
  // the two (DNS rebinding) is not caught. Literal addresses and names that always resolve privately are.
  try {
    const refused = await resolvePublic(url, opts.allowPrivate);
    if (refused) return { ok: false, status: 0, error: refused, retry: false };
  } catch (err) {
    return { ok: false, status: 0, error: `cannot resolve ${url.hostname}: ${(err as Error).message}`, retry: true };
  }
  const t = Math.floor((opts.now?.() ?? Date.now()) / 1000);
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        // Nothing of the answer is read: no need for it compressed.
        "accept-encoding": "identity",
        "user-agent": "kaireon-webhooks/1",
        "kaireon-event-id": event.id,
        "kaireon-event-type": event.type,
        "kaireon-signature": signature(target.secret, event.body, t),
      },
      body: event.body,
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    // Only the status counts: the body is dropped unread, however large a receiver makes it.
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    const retry = res.status >= 500 || res.status === 429 || res.status === 408;
    return { ok: false, status: res.status, error: `HTTP ${res.status}`, retry };
  } catch (err) {
    const e = err as Error;
    const error = e.name === "TimeoutError" ? `timeout after ${opts.timeoutMs} ms` : `${e.name}: ${e.message}`;
    return { ok: false, status: 0, error: error.slice(0, MAX_ERROR_LENGTH), retry: true };
  }
}

/** Exponential backoff with jitter: attempt n (1-based) waits between half and all of base·2^(n-1), capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const full = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + (random() * full) / 2);
}
