// One process at a time on an embedded database directory. PGlite has no lock of its own: two processes
// opening one DATA_DIR each write their own copy and one loses the other's work. The holder writes its pid
// into a lock file created exclusively; a lock whose process is gone is taken over.

import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";

const LOCK_FILE = ".kaireon.lock";

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `DATA_DIR ${dir} is in use by another process (pid ${pid}), such as a running service. ` +
        "Stop it first, or while it runs make the change through its admin API.",
    );
    this.name = "DataDirLockedError";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Takes the directory's lock or throws DataDirLockedError; returns the release. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
        } catch {}
      };
      // A process that ends without closing its database must not leave the directory locked for its pid.
      process.once("exit", release);
      return release;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
      const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new DataDirLockedError(dir, pid);
      // Left behind by a process that is gone (or unreadable): take it over.
      try {
        unlinkSync(path);
      } catch {}
    }
  }
  throw new Error(`could not lock DATA_DIR ${dir}`);
}
