// gRPC server reflection (grpc.reflection.v1 and v1alpha): the services this server offers and the
// descriptors of their files, taken from the generated code, so that a client needs no proto files. Both
// versions share one implementation; their messages have the same fields.

import { create, type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as V1 from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflectionResponseSchema as V1Response } from "../../gen/grpc/reflection/v1/reflection_pb.ts";

type Request = V1.ServerReflectionRequest;
type Response = V1.ServerReflectionResponse;

const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/** What reflection knows: every file by name and the file of every symbol, from the services offered. */
export class ReflectionIndex {
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  private readonly serviceNames: string[];
  /** Each file's descriptor with those of the files it imports, serialized once. */
  private readonly serialized = new Map<string, Uint8Array[]>();

  constructor(services: DescService[]) {
    this.serviceNames = [...new Set(services.map((s) => s.typeName))].sort();
    for (const s of services) this.addFile(s.file);
  }

  private addFile(file: DescFile): void {
    // file.name lacks the .proto suffix; reflection names files as they were compiled.
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const dep of file.dependencies) this.addFile(dep);
    for (const s of file.services) {
      this.symbols.set(s.typeName, file);
      for (const m of s.methods) this.symbols.set(`${s.typeName}.${m.name}`, file);
    }
    const addMessage = (m: DescMessage) => {
      this.symbols.set(m.typeName, file);
      for (const e of m.nestedEnums) this.symbols.set(e.typeName, file);
      for (const n of m.nestedMessages) addMessage(n);
    };
    for (const m of file.messages) addMessage(m);
    for (const e of file.enums) this.symbols.set(e.typeName, file);
  }

  get services(): string[] {
    return this.serviceNames;
  }

  /** The file and, after it, every file it imports (directly or not), each once. */
  descriptors(file: DescFile): Uint8Array[] {
    const cached = this.serialized.get(file.name);
    if (cached) return cached;
    const out: Uint8Array[] = [];
    const seen = new Set<string>();
    const visit = (f: DescFile) => {
      if (seen.has(f.name)) return;
      seen.add(f.name);
      out.push(toBinary(FileDescriptorProtoSchema, f.proto));
      for (const d of f.dependencies) visit(d);
    };
    visit(file);
    this.serialized.set(file.name, out);
    return out;
  }

  fileNamed(name: string): DescFile | undefined {
    return this.files.get(name.replace(/^\//, ""));
  }

  fileOf(symbol: string): DescFile | undefined {
    return this.symbols.get(symbol.replace(/^\./, ""));
  }
}

/** The answer to one reflection request (v1 shape; v1alpha's is the same message, field for field). */
export function answer(index: ReflectionIndex, req: Request): Response {
  const base = { validHost: req.host, originalRequest: req };
  const error = (code: number, message: string) =>
    create(V1Response, { ...base, messageResponse: { case: "errorResponse", value: { errorCode: code, errorMessage: message } } });
  const files = (file: DescFile | undefined, what: string) =>
    file
      ? create(V1Response, {
          ...base,
          messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: index.descriptors(file) } },
        })
      : error(NOT_FOUND, `${what} not found`);
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return create(V1Response, {
        ...base,
        messageResponse: { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } },
      });
    case "fileByFilename":
      return files(index.fileNamed(r.value), `file ${r.value}`);
    case "fileContainingSymbol":
      return files(index.fileOf(r.value), `symbol ${r.value}`);
    case "allExtensionNumbersOfType":
      // The contract declares no extensions: a known message has none, an unknown one is not found.
      return index.fileOf(r.value)
        ? create(V1Response, {
            ...base,
            messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: [] } },
          })
        : error(NOT_FOUND, `type ${r.value} not found`);
    case "fileContainingExtension":
      return error(NOT_FOUND, `extension ${r.value.extensionNumber} of ${r.value.containingType} not found`);
    default:
      return error(UNIMPLEMENTED, "the request names nothing to reflect on");
  }
}

/** The stream of a ServerReflectionInfo call: one answer per request, in order. */
export async function* reflect(index: ReflectionIndex, requests: AsyncIterable<Request>): AsyncIterable<Response> {
  for await (const req of requests) yield answer(index, req);
}
