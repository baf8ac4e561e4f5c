// Writes src/transport/proto-comments.json: the comment of every service, method, message, field, enum
// and enum value of proto/, by full name (kaireon.v1.Offer.offer_id). The generated code embeds its
// descriptors without their comments, and the service ships without proto/, so the OpenAPI document
// reads the contract's comments from this file. `bun scripts/proto-comments.ts --check` fails when the
// file differs from proto/; test/openapi.test.ts checks the same.

import { fromBinary } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
  FileDescriptorSetSchema,
  type SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";

const ROOT = new URL("..", import.meta.url).pathname;
export const COMMENTS_FILE = `${ROOT}src/transport/proto-comments.json`;

// Field numbers of the descriptor messages, the steps of a source location's path.
const FILE_MESSAGE = 4;
const FILE_ENUM = 5;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const MESSAGE_NESTED = 3;
const MESSAGE_ENUM = 4;
const ENUM_VALUE = 2;
const SERVICE_METHOD = 2;

/** A comment as prose: the leading comment (else the trailing one), its lines joined, paragraphs kept. */
function prose(location: SourceCodeInfo_Location | undefined): string {
  const raw = location?.leadingComments || location?.trailingComments || "";
  return raw
    .split(/\n\s*\n/)
    .map((paragraph) =>
      paragraph
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "")
        .join(" "),
    )
    .filter((paragraph) => paragraph !== "")
    .join("\n\n");
}

function fileComments(file: FileDescriptorProto, out: Record<string, string>): void {
  const at = new Map<string, SourceCodeInfo_Location>();
  for (const location of file.sourceCodeInfo?.location ?? []) at.set(location.path.join("."), location);
  const put = (name: string, path: number[]) => {
    const text = prose(at.get(path.join(".")));
    if (text) out[name] = text;
  };
  const enumComments = (e: EnumDescriptorProto, scope: string, path: number[]) => {
    const name = `${scope}.${e.name}`;
    put(name, path);
    e.value.forEach((v, i) => put(`${name}.${v.name}`, [...path, ENUM_VALUE, i]));
  };
  const messageComments = (m: DescriptorProto, scope: string, path: number[]) => {
    const name = `${scope}.${m.name}`;
    put(name, path);
    m.field.forEach((f, i) => put(`${name}.${f.name}`, [...path, MESSAGE_FIELD, i]));
    m.nestedType.forEach((n, i) => messageComments(n, name, [...path, MESSAGE_NESTED, i]));
    m.enumType.forEach((e, i) => enumComments(e, name, [...path, MESSAGE_ENUM, i]));
  };
  const pkg = file.package;
  file.messageType.forEach((m, i) => messageComments(m, pkg, [FILE_MESSAGE, i]));
  file.enumType.forEach((e, i) => enumComments(e, pkg, [FILE_ENUM, i]));
  file.service.forEach((s, i) => {
    const name = `${pkg}.${s.name}`;
    put(name, [FILE_SERVICE, i]);
    s.method.forEach((m, j) => put(`${name}.${m.name}`, [FILE_SERVICE, i, SERVICE_METHOD, j]));
  });
}

/** The comments of proto/, read from `buf build` (which keeps source info), keys sorted. */
export function protoComments(): Record<string, string> {
  const build = Bun.spawnSync([`${ROOT}node_modules/.bin/buf`, "build", "-o", "-#format=binpb"], { cwd: ROOT });
  if (build.exitCode !== 0) throw new Error(`buf build failed: ${build.stderr.toString()}`);
  const set = fromBinary(FileDescriptorSetSchema, build.stdout);
  const out: Record<string, string> = {};
  // Only the files of proto/, not the well-known types they import.
  for (const file of set.file) if (!file.name.startsWith("google/")) fileComments(file, out);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

export const commentsJson = (comments: Record<string, string>) => `${JSON.stringify(comments, null, 2)}\n`;

if (import.meta.main) {
  const text = commentsJson(protoComments());
  if (process.argv.includes("--check")) {
    const current = await Bun.file(COMMENTS_FILE)
      .text()
      .catch(() => "");
    if (current !== text) {
      console.error("src/transport/proto-comments.json differs from proto/; run `bun scripts/proto-comments.ts`");
      process.exit(1);
    }
  } else {
    await Bun.write(COMMENTS_FILE, text);
  }
}
