// A page to read the OpenAPI document with: rendered on the server from the document itself (served at
// /api/v1/docs), every operation grouped by tag, with a search box filtering them in the browser. Nothing
// is fetched from elsewhere, so it works on a closed network. A sidebar links every tag and operation; each
// operation shows its example request and answer; the error table is the document's x-errors.

type Json = Record<string, unknown>;

const html = (s: unknown) =>
  String(s ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");

const slug = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, "-");
const anchor = (name: string) => `schema-${slug(name)}`;

/** A schema in a few words: a link for a component, else its type. */
function typeOf(schema: Json | undefined): string {
  if (!schema) return "";
  const ref = schema.$ref;
  if (typeof ref === "string") {
    const name = ref.split("/").pop() ?? ref;
    return `<a href="#${anchor(name)}">${html(name)}</a>`;
  }
  if (schema.type === "array") return `${typeOf(schema.items as Json)}[]`;
  if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
    return `map of ${typeOf(schema.additionalProperties as Json) || "any"}`;
  }
  if (Array.isArray(schema.enum)) return schema.enum.map((e) => html(e)).join(" | ");
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type as string | undefined);
  const format = schema.format ? ` (${html(schema.format)})` : "";
  return type ? `${html(type)}${format}` : "any JSON";
}

const paragraphs = (text: unknown) =>
  String(text ?? "")
    .split(/\n\s*\n/)
    .filter((p) => p.trim() !== "")
    .map((p) => `<p class="note">${html(p)}</p>`)
    .join("");

/** The fields of a body: a component's, or those of a schema written in place. */
function bodyFields(doc: Json, schema: Json | undefined): { properties: Record<string, Json>; required: string[] } {
  const ref = schema?.$ref;
  const target =
    typeof ref === "string"
      ? (((doc.components as Json).schemas as Record<string, Json>)[ref.split("/").pop() ?? ""] ?? {})
      : (schema ?? {});
  return {
    properties: (target.properties as Record<string, Json> | undefined) ?? {},
    required: (target.required as string[] | undefined) ?? [],
  };
}

function fieldRows(properties: Record<string, Json>, required: string[]): string {
  return Object.entries(properties)
    .map(
      ([k, v]) =>
        `<tr><td><code>${html(k)}</code>${required.includes(k) ? ' <span class="req">required</span>' : ""}</td><td>${typeOf(v)}</td><td>${html(v.description)}</td></tr>`,
    )
    .join("");
}

function operationHtml(doc: Json, method: string, path: string, op: Json): string {
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = (op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
  const [bodyType, bodyMedia] = body ? (Object.entries(body)[0] ?? []) : [];
  const responses = (op.responses as Record<string, Json>) ?? {};
  const ok = (responses["200"]?.content ?? {}) as Record<string, Json>;
  const [okType, okMedia] = Object.entries(ok)[0] ?? [];
  const paramRows = params
    .map(
      (p) =>
        `<tr><td><code>${html(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ""}</td><td>${html(p.in)}</td><td>${typeOf(p.schema as Json)}</td><td>${html(p.description)}</td></tr>`,
    )
    .join("");
  const bodySchema = (bodyMedia as Json | undefined)?.schema as Json | undefined;
  const fields = bodyType === "application/json" ? bodyFields(doc, bodySchema) : undefined;
  const example = (bodyMedia as Json | undefined)?.example;
  const errors = Object.entries(responses)
    .filter(([status]) => status !== "200")
    .map(([status, r]) => `<li><code>${html(status)}</code> ${html(r.description)}</li>`)
    .join("");
  // What the search box matches: the operation's id, method, path, summary and description.
  const searchText = [op.operationId, method, path, op.summary, op.description].join(" ").toLowerCase();
  return `<section class="op" id="op-${html(op.operationId)}" data-search="${html(searchText)}">
  <h3><span class="method ${html(method)}">${html(method.toUpperCase())}</span> <code>${html(path)}</code> <small>${html(op.operationId)}</small></h3>
  <p class="summary">${html(op.summary)}</p>
  ${paragraphs(op.description)}
  ${paramRows ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>${paramRows}</table>` : ""}
  ${bodyType ? `<p>Body (<code>${html(bodyType)}</code>): ${typeOf(bodySchema) || html(bodySchema?.description)}</p>` : ""}
  ${fields && Object.keys(fields.properties).length > 0 ? `<table class="fields"><tr><th>field</th><th>type</th><th></th></tr>${fieldRows(fields.properties, fields.required)}</table>` : ""}
  ${example !== undefined ? `<details class="example"><summary>Example request body</summary><pre>${html(JSON.stringify(example, null, 2))}</pre></details>` : ""}
  ${okType ? `<p>Answer (<code>${html(okType)}</code>): ${typeOf((okMedia as Json | undefined)?.schema as Json) || "see above"}</p>` : ""}
  ${(okMedia as Json | undefined)?.example !== undefined ? `<details class="example"><summary>Example answer (200)</summary><pre>${html(JSON.stringify((okMedia as Json).example, null, 2))}</pre></details>` : ""}
  ${errors ? `<details><summary>Errors</summary><ul>${errors}</ul></details>` : ""}
</section>`;
}

/** One row of the document's error table (x-errors): a code with its HTTP status and its gRPC and Connect code. */
interface ErrorRow {
  code: string;
  httpStatus: number;
  grpcCode: number;
  connectCode: string;
  also?: { grpcCode: number; connectCode: string; when: string };
  meaning: string;
}

function errorsHtml(rows: ErrorRow[]): string {
  const body = rows
    .map(
      (r) =>
        `<tr data-code="${html(r.code)}"><td>${html(r.httpStatus)}</td><td><code>${html(r.code)}</code></td><td><code>${html(r.connectCode)}</code> (${html(r.grpcCode)})${r.also ? `; <code>${html(r.also.connectCode)}</code> (${html(r.also.grpcCode)}) ${html(r.also.when)}` : ""}</td><td>${html(r.meaning)}</td></tr>`,
    )
    .join("");
  return `<section id="errors"><h2>Errors</h2><p>Every failure carries one code from a closed set, on every transport. A REST body is the <a href="#${anchor("Error")}">Error</a> schema; gRPC and Connect send the same code, message and fields as the status.</p>
<table class="errors"><tr><th>HTTP</th><th><code>code</code></th><th>gRPC / Connect</th><th>meaning</th></tr>${body}</table></section>`;
}

function schemaHtml(name: string, schema: Json): string {
  const properties = Object.entries((schema.properties as Record<string, Json> | undefined) ?? {});
  const rows = fieldRows(Object.fromEntries(properties), (schema.required as string[] | undefined) ?? []);
  return `<section class="schema" id="${anchor(name)}"><h3>${html(name)}</h3>${schema.description ? `<p>${html(schema.description)}</p>` : ""}${rows ? `<table>${rows}</table>` : `<p>${typeOf(schema)}</p>`}</section>`;
}

/**
 * Shows the operations whose text holds every word typed, and the tags that still have one; plain script,
 * run in the page, so the search needs no network.
 */
const SEARCH_SCRIPT = `
(function () {
  var input = document.getElementById("search");
  var count = document.getElementById("search-count");
  var none = document.getElementById("search-none");
  function filter() {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    document.querySelectorAll("section.tag").forEach(function (tag) {
      var inTag = 0;
      tag.querySelectorAll("section.op").forEach(function (op) {
        var text = op.getAttribute("data-search") || "";
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        op.hidden = !match;
        var link = document.querySelector('#nav li[data-op="' + op.id + '"]');
        if (link) link.hidden = !match;
        if (match) inTag++;
      });
      tag.hidden = inTag === 0;
      var navTag = document.querySelector('#nav li[data-tag="' + tag.id + '"]');
      if (navTag) navTag.hidden = inTag === 0;
      shown += inTag;
    });
    count.textContent = shown + (shown === 1 ? " operation" : " operations");
    none.hidden = shown !== 0;
  }
  input.addEventListener("input", filter);
  filter();
})();
`;

export function renderDocsPage(doc: Json): string {
  const info = doc.info as Json;
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const byTag = new Map<string, string[]>();
  const navByTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = ((op.tags as string[] | undefined) ?? ["Other"])[0] as string;
      byTag.set(tag, [...(byTag.get(tag) ?? []), operationHtml(doc, method, path, op)]);
      const link = `<li data-op="op-${html(op.operationId)}"><a href="#op-${html(op.operationId)}"><span class="method ${html(method)}">${html(method.toUpperCase())}</span> ${html(op.summary)}</a></li>`;
      navByTag.set(tag, [...(navByTag.get(tag) ?? []), link]);
    }
  }
  const nav = [...navByTag.entries()]
    .map(
      ([tag, links]) =>
        `<li data-tag="tag-${slug(tag)}"><a href="#tag-${slug(tag)}"><b>${html(tag)}</b></a><ul>${links.join("")}</ul></li>`,
    )
    .join("");
  const errorRows = (doc["x-errors"] as ErrorRow[] | undefined) ?? [];
  const schemas = Object.entries(((doc.components as Json).schemas as Record<string, Json>) ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const count = [...byTag.values()].reduce((n, ops) => n + ops.length, 0);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(info.title)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330}
main{margin-left:300px;max-width:980px;padding:1rem 2rem}
nav#nav{position:fixed;top:0;left:0;bottom:0;width:280px;overflow:auto;border-right:1px solid #dde;padding:.5rem;box-sizing:border-box;font-size:13px;background:#fafbfc}
nav#nav ul{list-style:none;margin:0;padding-left:.6rem}nav#nav a{color:#1d2330;text-decoration:none;display:block;padding:1px 0}
nav#nav .method{min-width:3.6em;font-size:10px}
@media (max-width:800px){nav#nav{position:static;width:auto;border:0}main{margin-left:0}}
code{font:13px ui-monospace,monospace}h2{border-bottom:1px solid #ccd;margin-top:2.5rem}
.op,.schema{border:1px solid #dde;border-radius:6px;padding:.2rem 1rem;margin:.8rem 0}
.method{display:inline-block;min-width:4.5em;font-size:12px;color:#fff;border-radius:4px;padding:2px 6px;text-align:center}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}.patch{background:#805ad5}.delete{background:#c53030}
table{border-collapse:collapse;margin:.4rem 0}td,th{border-bottom:1px solid #eef;padding:2px 10px 2px 0;text-align:left;vertical-align:top}
.note{color:#555}.summary{font-weight:600}.req{color:#c53030;font-size:12px}
.op small{color:#777;font-weight:normal}pre{background:#f6f7f9;padding:.5rem;overflow:auto}
#search{font:inherit;width:100%;max-width:32rem;padding:.3rem .5rem;box-sizing:border-box}
[hidden]{display:none!important}
</style></head><body>
<nav id="nav" aria-label="Operations"><ul><li><a href="#errors"><b>Errors</b></a></li>${nav}<li><a href="#schemas"><b>Schemas</b></a></li></ul></nav>
<main>
<h1>${html(info.title)} <small>${html(info.version)}</small></h1>
<p>${html(info.description)}</p>
<p>OpenAPI ${html(doc.openapi)} document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>
<p><label for="search">Search operations</label><br><input id="search" type="search" placeholder="e.g. recommend, offers, POST" autocomplete="off">
<span id="search-count" aria-live="polite">${count} operations</span></p>
<p id="search-none" hidden>No operation matches.</p>
${[...byTag.entries()].map(([tag, ops]) => `<section class="tag" id="tag-${slug(tag)}"><h2>${html(tag)}</h2>${ops.join("\n")}</section>`).join("\n")}
${errorsHtml(errorRows)}
<h2 id="schemas">Schemas</h2>
${schemas.map(([name, schema]) => schemaHtml(name, schema)).join("\n")}
</main>
<script>${SEARCH_SCRIPT}</script>
</body></html>
`;
}
