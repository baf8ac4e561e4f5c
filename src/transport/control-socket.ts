// The command line's way into a running service on the embedded database. PGlite is one process's
// database, so while the service holds DATA_DIR the CLI cannot open it; instead it sends its command
// line over a Unix socket in DATA_DIR, and the service runs the command itself, on its own database,
// and answers with what to print. A key or tenant made that way works at once and nothing is lost.
// The socket is readable by its owner only (the directory's owner runs both).

import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { type CommandResult, runCommand } from "../cli-commands.ts";
import type { ServiceDeps } from "../services/context.ts";

const SOCKET_FILE = ".kaireon.sock";
const MAX_REQUEST_BYTES = 64 * 1024;

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, SOCKET_FILE);
}

export interface ControlSocket {
  stop(): Promise<void>;
}

/** Listens on DATA_DIR's socket for command lines; call it only while this process holds DATA_DIR. */
export function startControlSocket(deps: ServiceDeps, dataDir: string): ControlSocket {
  const path = controlSocketPath(dataDir);
  // Left by a process that held the directory before (it is locked now, so that process is gone).
  if (existsSync(path)) unlinkSync(path);
  const server = Bun.serve({
    unix: path,
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method !== "POST" || url.pathname !== "/cli") return new Response("not found", { status: 404 });
      const text = await request.text();
      if (text.length > MAX_REQUEST_BYTES) return new Response("too large", { status: 413 });
      let argv: unknown;
      try {
        argv = (JSON.parse(text) as { argv?: unknown }).argv;
      } catch {
        argv = null;
      }
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) {
        return new Response('the body must be {"argv": [strings]}', { status: 400 });
      }
      deps.log.info("command line run for the CLI", { command: argv.slice(0, 2).join(" ") });
      return Response.json(await runCommand(deps, argv));
    },
  });
  chmodSync(path, 0o600);
  return {
    async stop() {
      await server.stop(true);
      try {
        unlinkSync(path);
      } catch {}
    },
  };
}

/** Runs a command line in the service that holds DATA_DIR; null when no service answers on its socket. */
export async function runThroughService(dataDir: string, argv: string[]): Promise<CommandResult | null> {
  const path = controlSocketPath(dataDir);
  if (!existsSync(path)) return null;
  try {
    const res = await fetch("http://localhost/cli", {
      unix: path,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ argv }),
    });
    if (!res.ok) return { stdout: "", stderr: `the running service refused the command: ${await res.text()}\n`, code: 1 };
    return (await res.json()) as CommandResult;
  } catch {
    return null;
  }
}
