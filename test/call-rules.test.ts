// One source for the rules of a call: every RPC of every registered service has a rule in
// transport/call-rules.ts, every REST route serves an RPC with one, and REST, Connect and native gRPC
// refuse a decide-only key on exactly the same methods (asked of the running service, one call each).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { pathOf, ruleOf } from "../src/transport/call-rules.ts";
import { registerServices } from "../src/transport/connect.ts";
import { apiRoutes, type RestRoute } from "../src/transport/routes/index.ts";
import { createTenantWithKey, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let methods: DescMethod[];
let routes: RestRoute[];
let decideKey: string;

beforeAll(async () => {
  svc = await startTestService();
  const router = createConnectRouter();
  registerServices(svc.app.deps, { ready: async () => ({}) })(router);
  methods = router.handlers.map((h) => h.method);
  routes = apiRoutes(svc.app.deps);
  decideKey = await createTenantWithKey(svc, "rules_decide", ["decide"]);
}, 30_000);
afterAll(async () => {
  await svc.stop();
}, 30_000);

/** What a decide key may do, written out here rather than read from the table under test. */
const DECIDE_METHODS = [
  "/kaireon.v1.RecommendService/Recommend",
  "/kaireon.v1.RecommendService/RecommendBatch",
  "/kaireon.v1.RespondService/Respond",
  "/kaireon.v1.RespondService/RespondBulk",
  "/kaireon.v1.DecisionTraceService/GetDecisionTrace",
  "/kaireon.v1.DecisionTraceService/ListDecisionTraces",
];
const PUBLIC_SERVICES = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

describe("the call rule table", () => {
  test("every RPC of every registered service has a rule, and the rules say what the contract means", () => {
    expect(methods.length).toBeGreaterThan(60);
    const missing = methods.filter((m) => !ruleOf(m)).map(pathOf);
    expect(missing).toEqual([]);
    const byScope = (scope: string) =>
      methods
        .filter((m) => ruleOf(m)?.scope === scope)
        .map(pathOf)
        .sort();
    expect(byScope("decide")).toEqual([...DECIDE_METHODS].sort());
    expect(new Set(byScope("public").map((p) => p.split("/")[1]))).toEqual(new Set(PUBLIC_SERVICES));
    expect(byScope("operator").every((p) => p.startsWith("/kaireon.v1.OperatorService/"))).toBe(true);
    // Respond spends its own window; operator calls spend none; the catalog import may be larger.
    expect(ruleOf("/kaireon.v1.RespondService/Respond")?.bucket).toBe("respond");
    expect(ruleOf("/kaireon.v1.RespondService/RespondBulk")?.bucket).toBe("respond");
    expect(ruleOf("/kaireon.v1.OperatorService/CreateTenant")?.bucket).toBe("none");
    const config = svc.app.deps.config;
    expect(ruleOf("/kaireon.v1.CatalogService/ImportCatalog")?.maxBytes(config)).toBe(config.catalogMaxBytes);
    expect(ruleOf("/kaireon.v1.RespondService/RespondBulk")?.maxBytes(config)).toBe(config.catalogMaxBytes);
    expect(ruleOf("/kaireon.v1.OfferService/CreateOffer")?.maxBytes(config)).toBe(config.maxBodyBytes);
  });

  test("every REST route names a registered RPC, and its body and answer are that RPC's messages or a field of them", () => {
    const registered = new Set(methods.map(pathOf));
    const messagesOf = (m: DescMessage): string[] => [
      m.typeName,
      ...m.fields.flatMap((f) => ((f.fieldKind === "message" || f.fieldKind === "list") && f.message ? [f.message.typeName] : [])),
    ];
    const problems: string[] = [];
    for (const route of routes) {
      const where = `${route.method} ${route.path}`;
      if (!registered.has(pathOf(route.rpc))) problems.push(`${where}: ${pathOf(route.rpc)} is not registered`);
      if (route.restOnly) continue;
      if (!messagesOf(route.rpc.output).includes(route.response.typeName))
        problems.push(`${where}: answers ${route.response.typeName}, not from ${route.rpc.output.typeName}`);
      if (route.body && route.body !== "ndjson" && !messagesOf(route.rpc.input).includes(route.body.typeName))
        problems.push(`${where}: reads ${route.body.typeName}, not from ${route.rpc.input.typeName}`);
    }
    expect(problems).toEqual([]);
  });
});

describe("a decide-only key is refused on the same methods by every transport", () => {
  const headers = () => ({ "x-tenant-id": "rules_decide", "x-api-key": decideKey });

  /** The RPC paths a decide key is refused (403 / permission_denied) on, over REST, by route. */
  async function refusedOverRest(): Promise<Set<string>> {
    const refused = new Set<string>();
    for (const route of routes) {
      const path = route.path.replace(/:([A-Za-z]+)/g, "x");
      const res = await fetch(`${svc.http}${path}`, {
        method: route.method,
        headers: { ...headers(), "content-type": route.body === "ndjson" ? "application/x-ndjson" : "application/json" },
        body: route.body === undefined ? undefined : route.body === "ndjson" ? "" : "{}",
      });
      await res.arrayBuffer();
      if (res.status === 403) refused.add(pathOf(route.rpc));
    }
    return refused;
  }

  async function refusedOverConnect(): Promise<Set<string>> {
    const refused = new Set<string>();
    for (const m of methods.filter((x) => x.methodKind === "unary")) {
      const res = await fetch(`${svc.http}${pathOf(m)}`, {
        method: "POST",
        headers: { ...headers(), "content-type": "application/json" },
        body: "{}",
      });
      const body = (await res.json()) as { code?: string };
      if (body.code === "permission_denied") refused.add(pathOf(m));
    }
    return refused;
  }

  async function refusedOverGrpc(): Promise<Set<string>> {
    const session = http2.connect(svc.grpc);
    session.on("error", () => {});
    const status = (m: DescMethod) =>
      new Promise<string>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": pathOf(m),
          "content-type": "application/grpc",
          te: "trailers",
          ...headers(),
        });
        let code: string | undefined;
        req.on("response", (h) => {
          if (h["grpc-status"] !== undefined) code = String(h["grpc-status"]);
        });
        req.on("trailers", (t) => {
          code = String(t["grpc-status"]);
        });
        req.on("error", reject);
        req.on("data", () => {});
        req.on("close", () => resolve(code ?? "none"));
        // One empty message: a five-byte prefix of length zero.
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    const refused = new Set<string>();
    try {
      for (const m of methods.filter((x) => x.methodKind === "unary")) {
        if ((await status(m)) === "7") refused.add(pathOf(m));
      }
    } finally {
      session.close();
    }
    return refused;
  }

  test("REST, Connect and gRPC refuse it on every method but Recommend, Respond, the trace read and the public ones", async () => {
    const expected = methods
      .filter((m) => m.methodKind === "unary")
      .map(pathOf)
      .filter((p) => !DECIDE_METHODS.includes(p) && !PUBLIC_SERVICES.includes(p.split("/")[1] as string))
      .sort();
    expect(expected.length).toBeGreaterThan(55);
    const [rest, connect, grpc] = [await refusedOverRest(), await refusedOverConnect(), await refusedOverGrpc()];
    expect([...connect].sort()).toEqual(expected);
    expect([...grpc].sort()).toEqual(expected);
    // REST serves most RPCs, not all (none for reflection; some RPCs have two routes): it refuses
    // exactly those of the expected set that it serves.
    const served = new Set(routes.map((r) => pathOf(r.rpc)));
    expect([...rest].sort()).toEqual(expected.filter((p) => served.has(p)));
    expect(rest.size).toBeGreaterThan(50);
  }, 60_000);
});
