// Runs a document's shell examples as a reader would: every `sh` block, in order, in one bash session,
// with curl made to fail on an HTTP error. Used by the README and guide tests.

export interface Block {
  /** The line the block's first command is on. */
  line: number;
  text: string;
}

/** The `sh` blocks of a Markdown document, with the line each starts on. */
export function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i] as string)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !(lines[end] as string).startsWith("```")) end++;
    blocks.push({ line: start + 1, text: lines.slice(start, end).join("\n") });
    i = end;
  }
  return blocks;
}

export interface ShellRun {
  /** The block that failed, if one did. */
  failed?: Block;
  output: string;
  code: number;
  /** How many blocks started. */
  started: number;
}

/**
 * Runs `blocks` in order in one bash with `env`, in `cwd`, stopping at the first that fails; `rewrite`
 * puts a test's addresses in for the document's. curl fails on an HTTP error and ends its answer with
 * a newline; everything else fails on its exit code.
 */
export async function runShellBlocks(
  blocks: Block[],
  options: { cwd: string; env: Record<string, string>; rewrite?: (text: string) => string },
): Promise<ShellRun> {
  const script = [
    "set -euo pipefail",
    'curl() { command curl --fail-with-body --show-error "$@"; local rc=$?; echo; return $rc; }',
    'block() { echo "=== block at line $1"; }',
  ];
  for (const b of blocks) script.push(`block ${b.line}`, options.rewrite ? options.rewrite(b.text) : b.text);
  const proc = Bun.spawn(["bash", "-c", script.join("\n")], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  // Both streams into one, in the order they came, so a failure shows next to its block.
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  await Promise.all([pump(proc.stdout as ReadableStream<Uint8Array>), pump(proc.stderr as ReadableStream<Uint8Array>)]);
  const code = await proc.exited;
  const markers = [...output.matchAll(/=== block at line (\d+)/g)];
  const last = markers.at(-1);
  const failed = code === 0 ? undefined : blocks.find((b) => String(b.line) === last?.[1]);
  return { failed, output, code, started: markers.length };
}

/** A failed run as an error that names the block and shows what it printed. */
export function shellFailure(document: string, run: ShellRun): Error {
  return new Error(
    `${document} block at line ${run.failed?.line ?? "?"} failed (exit ${run.code}):\n${run.failed?.text ?? ""}\n--- output:\n${run.output.slice(-4000)}`,
  );
}
