// A page to read the OpenAPI document with: rendered on the server from the document itself (served at
// /api/v1/docs), with no script and nothing fetched from elsewhere, so it works on a closed network.

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

function operationHtml(method: string, path: string, op: Json): string {
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = (op.requestBody as Json | undefined)?.content as Record<string, Json> | undefined;
  const [bodyType, bodyMedia] = body ? (Object.entries(body)[0] ?? []) : [];
  const ok = ((op.responses as Record<string, Json>)["200"]?.content ?? {}) as Record<string, Json>;
  const [okType, okMedia] = Object.entries(ok)[0] ?? [];
  const rows = params
    .map(
      (p) =>
        `<tr><td><code>${html(p.name)}</code></td><td>${html(p.in)}</td><td>${typeOf(p.schema as Json)}</td><td>${html(p.description)}</td></tr>`,
    )
    .join("");
  return `<section class="op" id="op-${html(op.operationId)}">
  <h3><span class="method ${html(method)}">${html(method.toUpperCase())}</span> <code>${html(path)}</code></h3>
  <p>${html(op.summary)}</p>
  ${op.description ? `<p class="note">${html(op.description)}</p>` : ""}
  ${rows ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>${rows}</table>` : ""}
  ${bodyType ? `<p>Body (<code>${html(bodyType)}</code>): ${typeOf((bodyMedia as Json | undefined)?.schema as Json)}</p>` : ""}
  ${okType ? `<p>Answer (<code>${html(okType)}</code>): ${typeOf((okMedia as Json | undefined)?.schema as Json) || "see above"}</p>` : ""}
</section>`;
}

function schemaHtml(name: string, schema: Json): string {
  const properties = Object.entries((schema.properties as Record<string, Json> | undefined) ?? {});
  const rows = properties
    .map(([k, v]) => `<tr><td><code>${html(k)}</code></td><td>${typeOf(v)}</td><td>${html(v.description)}</td></tr>`)
    .join("");
  return `<section class="schema" id="${anchor(name)}"><h3>${html(name)}</h3>${rows ? `<table>${rows}</table>` : `<p>${typeOf(schema)}</p>`}</section>`;
}

export function renderDocsPage(doc: Json): string {
  const info = doc.info as Json;
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = ((op.tags as string[] | undefined) ?? ["Other"])[0] as string;
      const list = byTag.get(tag) ?? [];
      list.push(operationHtml(method, path, op));
      byTag.set(tag, list);
    }
  }
  const schemas = Object.entries(((doc.components as Json).schemas as Record<string, Json>) ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const toc = [...byTag.keys()].map((t) => `<li><a href="#tag-${slug(t)}">${html(t)}</a></li>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(info.title)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1rem 2rem;color:#1d2330}
code{font:13px ui-monospace,monospace}h2{border-bottom:1px solid #ccd;margin-top:2.5rem}
.op,.schema{border:1px solid #dde;border-radius:6px;padding:.2rem 1rem;margin:.8rem 0}
.method{display:inline-block;min-width:4.5em;font-size:12px;color:#fff;border-radius:4px;padding:2px 6px;text-align:center}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}.patch{background:#805ad5}.delete{background:#c53030}
table{border-collapse:collapse;margin:.4rem 0}td,th{border-bottom:1px solid #eef;padding:2px 10px 2px 0;text-align:left;vertical-align:top}
.note{color:#555}
</style></head><body>
<h1>${html(info.title)} <small>${html(info.version)}</small></h1>
<p>${html(info.description)}</p>
<p>OpenAPI ${html(doc.openapi)} document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a></p>
<ul>${toc}<li><a href="#schemas">Schemas</a></li></ul>
${[...byTag.entries()].map(([tag, ops]) => `<h2 id="tag-${slug(tag)}">${html(tag)}</h2>${ops.join("\n")}`).join("\n")}
<h2 id="schemas">Schemas</h2>
${schemas.map(([name, schema]) => schemaHtml(name, schema)).join("\n")}
</body></html>
`;
}
