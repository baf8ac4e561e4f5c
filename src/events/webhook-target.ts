// Where a webhook may point. A tenant's admin must not be able to make the service call into its own
// network (the database, the metrics port, a cloud metadata endpoint): private, loopback, link-local and
// other non-public addresses are refused, at creation for literal addresses and at every delivery for
// names (a name can be re-pointed after the check), unless WEBHOOK_ALLOW_PRIVATE_TARGETS=true.

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

const MAX_URL_LENGTH = 2_048;

/** Why a URL cannot be a webhook's, or null. Addresses behind a name are checked by `resolvePublic`. */
export function urlProblem(raw: string, allowPrivate: boolean): string | null {
  if (raw.length > MAX_URL_LENGTH) return `url must be at most ${MAX_URL_LENGTH} characters`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "url must be an absolute http or https URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "url must be an http or https URL";
  if (url.username || url.password) return "url must not carry credentials; sign with the secret instead";
  if (allowPrivate) return null;
  const host = hostOf(url);
  if (host === "localhost" || host.endsWith(".localhost")) return "url must not point at a loopback address";
  if (isIP(host) && !isPublicAddress(host)) return "url must not point at a private, loopback or link-local address";
  return null;
}

/** The host of a URL without IPv6 brackets. */
export const hostOf = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();

/** Resolves the URL's host and refuses it when any of its addresses is not public (unless allowed). */
export async function resolvePublic(url: URL, allowPrivate: boolean): Promise<string | null> {
  if (allowPrivate) return null;
  const host = hostOf(url);
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  const bad = addresses.find((a) => !isPublicAddress(a));
  return bad ? `${host} resolves to ${bad}, which is not a public address` : null;
}

function v4(address: string): number[] | null {
  const parts = address.split(".").map(Number);
  return parts.length === 4 && parts.every((p) => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : null;
}

/** Whether an IP address is routable on the public internet. */
export function isPublicAddress(address: string): boolean {
  const a = v4(address);
  if (a) {
    const [x, y] = a as [number, number, number, number];
    if (x === 0 || x === 10 || x === 127 || x >= 224) return false; // this network, private, loopback, multicast and reserved
    if (x === 100 && y >= 64 && y <= 127) return false; // shared address space (carrier NAT)
    if (x === 169 && y === 254) return false; // link-local, cloud metadata
    if (x === 172 && y >= 16 && y <= 31) return false;
    if (x === 192 && (y === 168 || (y === 0 && (a[2] === 0 || a[2] === 2)))) return false;
    if (x === 198 && (y === 18 || y === 19)) return false; // benchmarking
    return true;
  }
  const v6 = address.toLowerCase();
  if (v6 === "::" || v6 === "::1") return false;
  const mapped = v6.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) return isPublicAddress(mapped[1] as string);
  if (/^f[cd]/.test(v6)) return false; // unique local
  if (/^fe[89ab]/.test(v6)) return false; // link-local
  if (/^ff/.test(v6)) return false; // multicast
  return isIP(v6) === 6;
}
