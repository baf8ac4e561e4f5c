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

/** The 16 bytes of an IPv6 address in any of its textual forms, or null. */
function v6Bytes(address: string): number[] | null {
  let text = address.toLowerCase();
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted IPv4 (::ffff:1.2.3.4) stands for the last two groups.
  const dotted = text.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const b = v4(dotted[2] as string);
    if (!b) return null;
    text = `${dotted[1]}${((b[0] as number) * 256 + (b[1] as number)).toString(16)}:${((b[2] as number) * 256 + (b[3] as number)).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? head.length !== 8 : fill < 0) return null;
  const all = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    const n = Number.parseInt(g, 16);
    bytes.push(n >> 8, n & 255);
  }
  return bytes;
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
  const b = v6Bytes(address);
  if (!b) return false;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const embedded = (at: number) => isPublicAddress(b.slice(at, at + 4).join("."));
  if (zeros(0, 16)) return false; // unspecified
  if (zeros(0, 15) && b[15] === 1) return false; // loopback
  // Forms that carry an IPv4 address, judged by it: mapped (::ffff:0:0/96), compatible (::/96),
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return embedded(12);
  if (zeros(0, 12)) return embedded(12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return embedded(12);
  if (b[0] === 0x20 && b[1] === 0x02) return embedded(2);
  const first = b[0] as number;
  if ((first & 0xfe) === 0xfc) return false; // unique local
  if (first === 0xfe && ((b[1] as number) & 0xc0) === 0x80) return false; // link-local
  if (first === 0xff) return false; // multicast
  return true;
}
