// The page's own server: index.html, app.ts bundled for the browser, and the page's Recommend and Respond
// calls passed on to the decisioning service with the tenant and API key added here, on the server side.
// Nothing else reaches the service through it.
//
//   KAIREON_API_KEY=krn_... bun serve.ts        # then open http://127.0.0.1:8080
//
// PORT (default 8080), KAIREON_URL (default http://127.0.0.1:3000), KAIREON_TENANT (default demo),
// KAIREON_API_KEY.

import path from "node:path";

const here = import.meta.dir;
const target = process.env.KAIREON_URL ?? "http://127.0.0.1:3000";
const tenant = process.env.KAIREON_TENANT ?? "demo";
const apiKey = process.env.KAIREON_API_KEY;
if (!apiKey) throw new Error("set KAIREON_API_KEY");

const PASSED_ON = ["/kaireon.v1.RecommendService/Recommend", "/kaireon.v1.RespondService/Respond"];

const built = await Bun.build({ entrypoints: [path.join(here, "app.ts")], target: "browser", minify: true });
if (!built.success) throw new AggregateError(built.logs, "app.ts did not build");
const script = await (built.outputs[0] as Blob).text();

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8080),
  async fetch(req) {
    const { pathname } = new URL(req.url);
    if (req.method === "GET" && pathname === "/") return new Response(Bun.file(path.join(here, "index.html")));
    if (req.method === "GET" && pathname === "/app.js") {
      return new Response(script, { headers: { "content-type": "text/javascript" } });
    }
    if (req.method === "POST" && PASSED_ON.includes(pathname)) {
      const headers = new Headers();
      for (const name of ["content-type", "connect-protocol-version", "connect-timeout-ms"]) {
        const value = req.headers.get(name);
        if (value) headers.set(name, value);
      }
      headers.set("x-tenant-id", tenant);
      headers.set("x-api-key", apiKey);
      const answer = await fetch(`${target}${pathname}`, { method: "POST", headers, body: await req.arrayBuffer() });
      // fetch has already undone any content-encoding, so only the type goes back with the body.
      return new Response(answer.body, {
        status: answer.status,
        headers: { "content-type": answer.headers.get("content-type") ?? "application/json" },
      });
    }
    return new Response("not found\n", { status: 404 });
  },
});
console.log(`page on http://127.0.0.1:${server.port}, calling ${target}`);
