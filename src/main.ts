// Composition root of the process: read the configuration, start the service, stop it cleanly on SIGTERM.

import { startApp } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { DataDirLockedError } from "./store/data-dir-lock.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`configuration error: ${err.message}\n`);
    process.exit(78);
  }
  throw err;
}

const log = createLogger(config.logLevel);
const app = await startApp(config, log).catch((err: unknown) => {
  if (err instanceof DataDirLockedError) {
    log.error("cannot start: the embedded database is in use", { dataDir: err.dir, pid: err.pid });
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
});
if (app.demoApiKey && !config.demoApiKey) {
  // Printed once: only its hash is stored.
  process.stdout.write(
    `\n  Demo tenant "demo" is ready. Its API key (shown only now):\n\n    ${app.demoApiKey}\n\n  Try:  curl -s localhost:${app.listeners.port}/api/v1/recommend -H 'x-tenant-id: demo' -H 'x-api-key: ${app.demoApiKey}' -H 'content-type: application/json' -d '{"customerId":"cust_12345","channelId":"ch_email"}'\n\n`,
  );
}

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info("shutting down", { signal });
  try {
    await app.stop();
    log.info("stopped");
    process.exit(0);
  } catch (err) {
    log.error("shutdown failed", { err });
    process.exit(1);
  }
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
