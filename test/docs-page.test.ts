// The documentation page in a real browser: headless Chromium loads /api/v1/docs from the service, with
// no other network, and the test drives it over the DevTools protocol: every operation is rendered, and
// typing in the search box leaves exactly the operations whose text holds the words typed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { httpStatusOf } from "../src/errors.ts";
import { startTestService, type TestService } from "./harness.ts";

type Json = Record<string, any>;

const CHROMIUM = Bun.which("chromium") ?? Bun.which("chromium-browser");
// Ports of this test's browser; each run picks one so that runs beside each other do not collide.
const DEVTOOLS_PORT = 3600 + Math.floor(Math.random() * 100);

let svc: TestService;
let doc: Json;
let browser: ReturnType<typeof Bun.spawn> | undefined;
let profile: string;
let page: DevTools;

/** One page's DevTools connection: commands by id, answers matched back. */
class DevTools {
  private next = 1;
  private readonly waiting = new Map<number, (message: Json) => void>();
  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as Json;
      if (typeof message.id === "number") this.waiting.get(message.id)?.(message);
    });
  }

  static async connect(url: string): Promise<DevTools> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("error", reject, { once: true });
    });
    return new DevTools(socket);
  }

  send(method: string, params: Json = {}): Promise<Json> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (message) => {
        this.waiting.delete(id);
        if (message.error) reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        else resolve(message.result as Json);
      });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The value of an expression evaluated in the page. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (result.exceptionDetails) throw new Error(`in the page: ${JSON.stringify(result.exceptionDetails)}`);
    return result.result.value as T;
  }

  close(): void {
    this.socket.close();
  }
}

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await Bun.sleep(100);
  }
}

/** Types text into the search box as a person would: focus, clear, then key events. */
async function search(text: string): Promise<string[]> {
  await page.evaluate(`(() => { const i = document.getElementById("search"); i.focus(); i.select(); })()`);
  await page.send("Input.dispatchKeyEvent", { type: "keyDown", key: "Backspace", code: "Backspace", windowsVirtualKeyCode: 8 });
  await page.send("Input.dispatchKeyEvent", { type: "keyUp", key: "Backspace", code: "Backspace", windowsVirtualKeyCode: 8 });
  if (text) await page.send("Input.insertText", { text });
  return visibleOperations();
}

/** The ids of the operations a reader sees: rendered with a size, not hidden. */
const visibleOperations = () =>
  page.evaluate<string[]>(
    `[...document.querySelectorAll("section.op")].filter((s) => s.getClientRects().length > 0).map((s) => s.id.slice(3)).sort()`,
  );

/** The operations whose id, method, path, summary and description hold every word: what a search must show. */
function matching(text: string): string[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  return Object.entries(doc.paths as Record<string, Json>)
    .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op: op as Json })))
    .filter(({ path, method, op }) => {
      const text = [op.operationId, method, path, op.summary, op.description].join(" ").toLowerCase();
      return words.every((w) => text.includes(w));
    })
    .map(({ op }) => op.operationId as string)
    .sort();
}

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("chromium is not installed: the docs page is checked in a headless browser (apt-get install chromium)");
  svc = await startTestService();
  doc = (await (await fetch(`${svc.http}/api/v1/openapi.json`)).json()) as Json;
  profile = `${process.env.TMPDIR ?? "/tmp"}/kaireon-docs-page-${process.pid}`;
  browser = Bun.spawn(
    [
      CHROMIUM,
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-extensions",
      "--disable-background-networking",
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      `--remote-debugging-port=${DEVTOOLS_PORT}`,
      "about:blank",
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  const target = await waitFor(async () => {
    const targets = (await (await fetch(`http://127.0.0.1:${DEVTOOLS_PORT}/json/list`)).json()) as Json[];
    return targets.find((t) => t.type === "page" && t.webSocketDebuggerUrl);
  }, "the browser did not open its DevTools port");
  page = await DevTools.connect(target.webSocketDebuggerUrl);
  await page.send("Page.enable");
  await page.send("Runtime.enable");
  await page.send("Page.navigate", { url: `${svc.http}/api/v1/docs` });
  await waitFor(
    async () =>
      (await page.evaluate<string>("location.pathname + ' ' + document.readyState")) === "/api/v1/docs complete" ? true : undefined,
    "the docs page did not load",
  );
}, 120_000);

afterAll(async () => {
  page?.close();
  browser?.kill();
  await browser?.exited;
  await Bun.$`rm -rf ${profile}`.quiet().nothrow();
  await svc?.stop();
});

describe("the documentation page in a browser", () => {
  test("renders every operation of the document, grouped by tag, with its description", async () => {
    const all = matching("");
    expect(all.length).toBeGreaterThan(70);
    expect(await visibleOperations()).toEqual(all);
    const tags = await page.evaluate<string[]>(`[...document.querySelectorAll("section.tag > h2")].map((h) => h.textContent)`);
    expect(tags).toEqual((doc.tags as Json[]).map((t) => t.name));
    const recommend = await page.evaluate<string>(`document.getElementById("op-recommend").innerText`);
    expect(recommend).toContain("RecommendService runs a tenant's decision flow");
    expect(recommend).toContain("customerId required");
    expect(await page.evaluate<string>(`document.getElementById("search-count").textContent`)).toBe(`${all.length} operations`);
  });

  test("typing in the search leaves exactly the matching operations", async () => {
    expect(await search("getDecisionTrace")).toEqual(["getDecisionTrace"]);
    expect(await page.evaluate<string>(`document.getElementById("search-count").textContent`)).toBe("1 operation");
    // Tags without a match are hidden with their operations.
    expect(
      await page.evaluate<string[]>(`[...document.querySelectorAll("section.tag")].filter((s) => !s.hidden).map((s) => s.id)`),
    ).toEqual(["tag-Decisions"]);
    // Every word must match, in any case, anywhere in the operation's text.
    const twoWords = await search("DELETE offers/{offerId}");
    expect(twoWords).toEqual(["deleteOffer"]);
    for (const text of ["experiment", "post api-keys", "RecommendService"]) {
      const shown = await search(text);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown).toEqual(matching(text));
    }
    expect(await search("no operation has this text")).toEqual([]);
    expect(await page.evaluate<boolean>(`document.getElementById("search-none").hidden`)).toBe(false);
    // Clearing the box shows them all again.
    expect(await search("")).toEqual(matching(""));
  });

  test("the navigation links every operation, and following a link puts it in view", async () => {
    await search("");
    const all = matching("");
    const linked = await page.evaluate<string[]>(
      `[...document.querySelectorAll("#nav a[href^='#op-']")].filter((a) => a.getClientRects().length > 0).map((a) => a.getAttribute("href").slice(4)).sort()`,
    );
    expect(linked).toEqual(all);
    // Each link's target is shown at the top of the window, or as near as the page's end allows.
    const outOfView = await page.evaluate<string[]>(`(() => {
      const out = [];
      for (const a of document.querySelectorAll("#nav a[href^='#op-'], #nav a[href^='#tag-']")) {
        a.click();
        const target = document.getElementById(a.getAttribute("href").slice(1));
        const r = target && target.getBoundingClientRect();
        if (!r || r.height === 0 || r.top < -1 || r.top >= innerHeight) out.push(a.getAttribute("href"));
      }
      return out;
    })()`);
    expect(outOfView).toEqual([]);
    // A real click on one link, by the mouse.
    const at = await page.evaluate<Json>(
      `(() => { const a = document.querySelector("#nav a[href='#op-getDecisionTrace']"); a.scrollIntoView(); const r = a.getBoundingClientRect(); return { x: r.x + 5, y: r.y + r.height / 2 }; })()`,
    );
    for (const type of ["mousePressed", "mouseReleased"]) {
      await page.send("Input.dispatchMouseEvent", { type, x: at.x, y: at.y, button: "left", clickCount: 1 });
    }
    await waitFor(
      async () => ((await page.evaluate<string>("location.hash")) === "#op-getDecisionTrace" ? true : undefined),
      "the link was not followed",
    );
    const top = await page.evaluate<number>(`document.getElementById("op-getDecisionTrace").getBoundingClientRect().top`);
    expect(Math.abs(top)).toBeLessThan(2);
    // Each operation shows its examples, folded until opened.
    const examples = await page.evaluate<string[]>(
      `[...document.querySelectorAll("#op-updateOffer details.example summary")].map((s) => s.textContent)`,
    );
    expect(examples).toEqual(["Example request body", "Example answer (200)"]);
  });

  test("the error table lists every code the service defines, with its HTTP status", async () => {
    const rows = await page.evaluate<string[][]>(
      `[...document.querySelectorAll("#errors tr[data-code]")].map((tr) => [tr.getAttribute("data-code"), tr.cells[0].textContent, tr.cells[2].textContent])`,
    );
    expect(rows.map(([code]) => code).sort()).toEqual(Object.keys(httpStatusOf).sort());
    for (const [code, status] of rows) expect(status).toBe(String(httpStatusOf[code as keyof typeof httpStatusOf]));
    expect(rows.find(([code]) => code === "VALIDATION_ERROR")?.[2]).toContain("invalid_argument");
    expect(rows.find(([code]) => code === "CONFLICT")?.[2]).toContain("aborted");
    expect(await page.evaluate<number>(`document.querySelectorAll("#nav a[href='#errors']").length`)).toBe(1);
  });

  test("the page loaded nothing but itself from the service", async () => {
    const resources = await page.evaluate<string[]>(`performance.getEntriesByType("resource").map((e) => e.name)`);
    expect(resources.filter((url) => !url.startsWith(svc.http))).toEqual([]);
  });
});
