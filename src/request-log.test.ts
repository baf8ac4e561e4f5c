import { describe, expect, test } from "bun:test";
import { AppError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { grpcStatusName, RequestLog } from "./request-log.ts";
import { Code } from "@connectrpc/connect";

function recorder() {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) =>
      lines.push({ level, msg, fields });
  const log: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => log };
  return { log, lines };
}

describe("RequestLog", () => {
  test("answered calls are logged at the sample rate; refusals and failures always", () => {
    let r = 0;
    const values = [0.1, 0.6, 0.3, 0.9];
    const requestLog = new RequestLog(0.5, () => values[r++ % values.length] as number);
    const { log, lines } = recorder();
    for (let i = 0; i < 4; i++) requestLog.answered(log, { status: 200, startedAt: performance.now(), method: "POST" });
    expect(lines.map((l) => l.msg)).toEqual(["request", "request"]);
    requestLog.refused(
      log,
      { status: 400, startedAt: performance.now() },
      new AppError("VALIDATION_ERROR", "bad", [{ field: "x", message: "bad" }]),
    );
    requestLog.refused(log, { status: 500, startedAt: performance.now() }, new AppError("INTERNAL_ERROR", "boom"), new Error("cause"));
    expect(lines.slice(2)).toMatchObject([
      { level: "info", msg: "request refused", fields: { code: "VALIDATION_ERROR", status: 400, fields: ["x"] } },
      { level: "error", msg: "request failed", fields: { code: "INTERNAL_ERROR", err: expect.any(Error) } },
    ]);
  });

  test("a rate of 0 logs no answered call, 1 every one", () => {
    const none = recorder();
    const all = recorder();
    for (let i = 0; i < 5; i++) {
      new RequestLog(0).answered(none.log, { status: "OK", startedAt: 0 });
      new RequestLog(1).answered(all.log, { status: "OK", startedAt: 0 });
    }
    expect(none.lines.length).toBe(0);
    expect(all.lines.length).toBe(5);
  });

  test("gRPC statuses by their canonical names", () => {
    expect(grpcStatusName(Code.InvalidArgument)).toBe("INVALID_ARGUMENT");
    expect(grpcStatusName(Code.Unauthenticated)).toBe("UNAUTHENTICATED");
    expect(grpcStatusName(Code.DeadlineExceeded)).toBe("DEADLINE_EXCEEDED");
  });
});
