// Random JSON for differential tests: text with quotes, escapes, control characters and characters
// beyond the BMP, numbers at the edges of their printed forms, and nested objects and arrays.

import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

const ALPHABET = ["a", "Z", "0", "_", "-", " ", '"', "\\", "/", "\n", "\t", "é", "ß", "中", "😀", "\u2028", "\u0001"];

export function randomJson(random: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const text = (max: number) => Array.from({ length: Math.floor(random() * max) }, () => pick(ALPHABET)).join("");
  const value = (depth: number): JsonValue => {
    switch (Math.floor(random() * (depth > 2 ? 4 : 6))) {
      case 0:
        return text(8);
      case 1:
        return pick([0, 1, -1, 0.5, 1e21, -3.25e-7, 123456789.123]);
      case 2:
        return random() < 0.5;
      case 3:
        return null;
      case 4:
        return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      default:
        return object(depth + 1);
    }
  };
  const object = (depth: number): JsonObject => {
    const out: JsonObject = {};
    for (let i = Math.floor(random() * 5); i > 0; i--) out[text(6) || "k"] = value(depth);
    return out;
  };
  return { pick, text, value, object };
}
