import { describe, expect, test } from "bun:test";
import { backoffMs, signature } from "./delivery.ts";
import { isPublicAddress, urlProblem } from "./webhook-target.ts";

describe("webhook targets", () => {
  test("private, loopback, link-local and reserved addresses are refused; public ones pass", () => {
    for (const a of [
      "127.0.0.1",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "::1",
      "::",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
    ]) {
      expect(`${a} ${isPublicAddress(a)}`).toBe(`${a} false`);
    }
    for (const a of ["8.8.8.8", "172.32.0.1", "93.184.216.34", "2606:4700::1111", "::ffff:808:808", "64:ff9b::808:808", "2002:808:808::1"])
      expect(`${a} ${isPublicAddress(a)}`).toBe(`${a} true`);
  });

  test("URLs: scheme, credentials, literal private hosts and localhost unless allowed", () => {
    expect(urlProblem("https://hooks.example.com/kaireon", false)).toBeNull();
    expect(urlProblem("ftp://hooks.example.com/", false)).toContain("http or https");
    expect(urlProblem("not a url", false)).toContain("absolute");
    expect(urlProblem("https://user:pw@hooks.example.com/", false)).toContain("credentials");
    expect(urlProblem("http://127.0.0.1:8080/x", false)).toContain("private");
    expect(urlProblem("http://[::1]/x", false)).toContain("private");
    // The URL parser writes these in hex: what is checked is the address, not its spelling.
    expect(new URL("http://[::ffff:127.0.0.1]/").hostname).toBe("[::ffff:7f00:1]");
    for (const u of [
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:169.254.169.254]/latest",
      "http://[::127.0.0.1]/",
      "http://[64:ff9b::10.0.0.1]/",
    ]) {
      expect(`${u} ${urlProblem(u, false)}`).toContain("private");
    }
    expect(urlProblem("http://localhost/x", false)).toContain("loopback");
    expect(urlProblem("http://127.0.0.1:8080/x", true)).toBeNull();
    expect(urlProblem(`https://example.com/${"a".repeat(3000)}`, true)).toContain("at most");
  });

  test("the signature is HMAC-SHA256 of '<t>.<body>' in hex", () => {
    // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
    expect(signature("whsec_test", '{"a":1}', 1_700_000_000)).toBe(
      "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789",
    );
    expect(signature("whsec_test", '{"a":1}', 1_700_000_000)).not.toBe(signature("whsec_test", '{"a":2}', 1_700_000_000));
  });

  test("backoff doubles from the base, with jitter between half and all of it, capped", () => {
    expect(backoffMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(backoffMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(backoffMs(4, 1000, 60_000, () => 1)).toBe(8000);
    expect(backoffMs(30, 1000, 60_000, () => 1)).toBe(60_000);
  });
});
