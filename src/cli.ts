// Operator command line, against the same database the service uses (DATABASE_URL, or the embedded
// database under DATA_DIR). Tenants are created here; everything a tenant owns goes through the same
// service functions as the API (same checks, same audit log, with "cli" as the actor). With a service
// running on the embedded database, the command runs inside that service (transport/control-socket.ts).
//
//   bun src/cli.ts tenants create <id> [--name NAME] [--plan community|professional|enterprise]
//   bun src/cli.ts tenants list
//   bun src/cli.ts tenants suspend|activate <id>
//   bun src/cli.ts keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
//   bun src/cli.ts keys list <tenant>
//   bun src/cli.ts keys revoke <tenant> <key id or prefix>
//   bun src/cli.ts tenants set <id> [--trace-sample-rate 0..1] [--trace-retention-days N]
//                                  [--plan P] [--rate-limit N|plan] [--respond-rate-limit N|plan]
//                                  [--admin-rate-limit N|plan] [--monthly-quota N|plan] [--holdout-percent 0..50]
//   bun src/cli.ts customers opt-in <tenant> <customer> <channel>
//   bun src/cli.ts outcomes add <tenant> <type> --class positive|negative|neutral
//   bun src/cli.ts outcomes list <tenant>
//   bun src/cli.ts flows versions <tenant> <flow>
//   bun src/cli.ts flows publish <tenant> <flow> --file definition.json [--name NAME] [--default]
//   bun src/cli.ts flows rollback <tenant> <flow> <version>
//   bun src/cli.ts catalog export <tenant> [--file catalog.json]
//   bun src/cli.ts catalog import <tenant> --file catalog.json

import { openDatabase } from "./app.ts";
import { runCommand, withAbsoluteFiles } from "./cli-commands.ts";
import { loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { createServiceDeps } from "./services/context.ts";
import { DataDirLockedError } from "./store/data-dir-lock.ts";
import { migrate } from "./store/migrate.ts";
import { runThroughService } from "./transport/control-socket.ts";

const argv = process.argv.slice(2);
const config = loadConfig();
const db = await openDatabase(config).catch(async (err: unknown) => {
  if (err instanceof DataDirLockedError) {
    // The embedded database of a running service: the service runs the command, on its own database.
    const result = await runThroughService(config.dataDir, withAbsoluteFiles(argv, process.cwd()));
    if (result) {
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      process.exit(result.code);
    }
    // It holds the directory but does not answer: refused, with what to do, rather than a copy of the
    // database changed behind its back.
    process.stderr.write(`${err.message}\n`);
    process.exit(3);
  }
  throw err;
});
const deps = createServiceDeps({
  config,
  db,
  log: createLogger(config.logLevel === "info" ? "warn" : config.logLevel),
  metrics: new Metrics(),
});
let code = 1;
try {
  await migrate(db);
  const result = await runCommand(deps, argv);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  code = result.code;
} finally {
  await deps.limits.close();
  await db.close();
}
process.exit(code);
