// The Kubernetes manifests of deploy/kubernetes: valid against the Kubernetes API schema of their kind, and in
// step with the service they run (its settings, ports, health routes, version and shutdown budget).

import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../src/config.ts";
import { startTestService } from "./harness.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DIR = join(ROOT, "deploy/kubernetes");
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, read field by field below
type Manifest = Record<string, any>;
interface Document {
  file: string;
  manifest: Manifest;
}

/** Every document of a YAML file: Bun.YAML.parse answers an array for a multi-document file. */
function documentsOf(file: string): Manifest[] {
  const text = readFileSync(join(DIR, file), "utf8");
  const parsed: unknown = Bun.YAML.parse(text);
  const docs = Array.isArray(parsed) ? parsed : [parsed];
  return docs.filter((d): d is Manifest => d !== null && typeof d === "object");
}

const MANIFEST_FILES = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .sort();
const DOCUMENTS: Document[] = MANIFEST_FILES.flatMap((file) => documentsOf(file).map((manifest) => ({ file, manifest })));

function only(kind: string, name?: string): Manifest {
  const found = DOCUMENTS.filter((d) => d.manifest.kind === kind && (name === undefined || d.manifest.metadata?.name === name));
  expect(found.length).toBe(1);
  return (found[0] as Document).manifest;
}

const deployment = () => only("Deployment");
const container = (): Manifest => {
  const containers = deployment().spec.template.spec.containers;
  expect(containers).toHaveLength(1);
  return containers[0];
};
const configMap = () => only("ConfigMap");
const secret = () => only("Secret");

/** The model class of a kind from the schema package, e.g. apps/v1 Deployment. */
async function modelOf(apiVersion: string, kind: string): Promise<new (data: unknown) => { validate(): void }> {
  const mod = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<string, new (data: unknown) => { validate(): void }>;
  const model = mod[kind];
  if (!model) throw new Error(`no model for ${apiVersion} ${kind}`);
  return model;
}

async function validate(manifest: Manifest): Promise<void> {
  const Model = await modelOf(manifest.apiVersion, manifest.kind);
  new Model(manifest).validate();
}

/**
 * The schema validators accept fields they do not know (as the API server's non-strict decoding does), so a
 * misspelt or misplaced field would pass them; the schema package's type declarations know every field, and
 * the compiler refuses an object literal with one they lack. Answers the compiler's errors ("" when none).
 */
function unknownFieldErrors(documents: Document[]): string {
  const cache = join(ROOT, "node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, "kaireon-manifest-types-"));
  try {
    const lines = documents.flatMap(({ manifest }, i) => {
      const path = `kubernetes-models/${manifest.apiVersion}/${manifest.kind}`;
      return [
        `import type { I${manifest.kind} as T${i} } from ${JSON.stringify(path)};`,
        `export const m${i} = ${JSON.stringify(manifest)} satisfies T${i};`,
      ];
    });
    writeFileSync(join(dir, "manifests.ts"), `${lines.join("\n")}\n`);
    const compilerOptions = {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "bundler",
      types: [],
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["manifests.ts"] }));
    const tsc = Bun.spawnSync([join(ROOT, "node_modules/.bin/tsc"), "-p", join(dir, "tsconfig.json")], { cwd: ROOT });
    const out = `${tsc.stdout.toString()}${tsc.stderr.toString()}`;
    if (tsc.exitCode !== 0 && out.trim() === "") return `tsc exited with ${tsc.exitCode}`;
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The environment variables src/config.ts reads, from its source: `env.NAME` and `(env, "NAME", …)`. */
function configVariables(): Set<string> {
  const source = readFileSync(join(ROOT, "src/config.ts"), "utf8");
  const names = new Set<string>();
  for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1] as string);
  for (const m of source.matchAll(/\(env,\s*"([A-Z][A-Z0-9_]*)"/g)) names.add(m[1] as string);
  return names;
}

/** The Secret's keys with working values in place of its placeholders. */
const FILLED_SECRET: Record<string, string> = {
  API_KEY_PEPPER: "0123456789abcdef0123456789abcdef",
  DATABASE_URL: "postgres://kaireon:secret@postgres:5432/kaireon",
  REDIS_URL: "redis://:secret@redis:6379",
  OPERATOR_API_KEY: "krn_0123456789abcdef0123456789abcdef0123",
};

/** The configuration a pod starts with: the ConfigMap and the Secret, through envFrom. */
function podEnvironment(secretValues: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...configMap().data, ...secretValues };
  for (const e of container().env ?? []) env[e.name] = e.value;
  return env;
}

describe("deploy/kubernetes against the Kubernetes schemas", () => {
  test("there are manifests of every kind the deployment needs", () => {
    const kinds = DOCUMENTS.map((d) => `${d.manifest.apiVersion} ${d.manifest.kind}`).sort();
    expect(new Set(kinds)).toEqual(
      new Set([
        "apps/v1 Deployment",
        "autoscaling/v2 HorizontalPodAutoscaler",
        "policy/v1 PodDisruptionBudget",
        "v1 ConfigMap",
        "v1 Secret",
        "v1 Service",
      ]),
    );
  });

  for (const { file, manifest } of DOCUMENTS) {
    test(`${file}: ${manifest.kind} ${manifest.metadata?.name} is valid ${manifest.apiVersion}`, async () => {
      expect(typeof manifest.apiVersion).toBe("string");
      expect(typeof manifest.kind).toBe("string");
      await validate(manifest);
    });
  }

  test("no manifest has a field its kind does not define", () => {
    expect(unknownFieldErrors(DOCUMENTS)).toBe("");
  });

  test("a manifest with a field of the wrong type is refused", async () => {
    const broken = structuredClone(deployment());
    broken.spec.template.spec.containers[0].ports[0].containerPort = "3000";
    await expect(validate(broken)).rejects.toThrow(/containerPort must be integer/);
    const noSelector = structuredClone(deployment());
    delete noSelector.spec.selector;
    await expect(validate(noSelector)).rejects.toThrow(/selector/);
  });

  test("a manifest with a field in the wrong place is refused", () => {
    // appProtocol belongs to the Service's ports, not to the container's.
    const misplaced = structuredClone(deployment());
    misplaced.spec.template.spec.containers[0].ports[1].appProtocol = "kubernetes.io/h2c";
    expect(unknownFieldErrors([{ file: "deployment.yaml", manifest: misplaced }])).toMatch(
      /'"?appProtocol"?' does not exist in type 'IContainerPort'/,
    );
  });

  test("kustomization.yaml lists every manifest, and only files that exist", () => {
    const kustomization = documentsOf("kustomization.yaml")[0] as Manifest;
    expect(kustomization.kind).toBe("Kustomization");
    expect(kustomization.apiVersion).toBe("kustomize.config.k8s.io/v1beta1");
    expect([...kustomization.resources].sort()).toEqual(MANIFEST_FILES);
  });
});

describe("deploy/kubernetes against the service", () => {
  test("every environment variable the manifests set is one src/config.ts reads", () => {
    const known = configVariables();
    // The extraction itself works: it finds settings of both spellings and nothing made up.
    for (const name of ["NODE_ENV", "API_KEY_PEPPER", "PORT", "GRPC_PORT", "SHUTDOWN_TIMEOUT_MS", "SEED_DEMO"])
      expect(known).toContain(name);
    expect(known).not.toContain("KAIREON_NOT_A_SETTING");
    const names = [
      ...Object.keys(configMap().data ?? {}),
      ...Object.keys(secret().stringData ?? {}),
      ...Object.keys(secret().data ?? {}),
      ...(container().env ?? []).map((e: { name: string }) => e.name),
    ];
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });

  test("the Secret holds the credentials, each a marked placeholder the service refuses to start with", () => {
    const values: Record<string, string> = secret().stringData;
    expect(Object.keys(values).sort()).toEqual(["API_KEY_PEPPER", "DATABASE_URL", "OPERATOR_API_KEY", "REDIS_URL"]);
    for (const value of Object.values(values)) expect(value).toContain("REPLACE_ME");
    expect(() => loadConfig(podEnvironment(values))).toThrow(ConfigError);
    // Only the operator key left as it is: still refused.
    expect(() => loadConfig(podEnvironment({ ...FILLED_SECRET, OPERATOR_API_KEY: values.OPERATOR_API_KEY as string }))).toThrow(
      ConfigError,
    );
    // No credential lives in the ConfigMap.
    for (const name of Object.keys(FILLED_SECRET)) expect(Object.keys(configMap().data)).not.toContain(name);
  });

  test("with the Secret filled in, the pod's configuration passes the service's checks", () => {
    const config = loadConfig(podEnvironment(FILLED_SECRET));
    expect(config.nodeEnv).toBe("production");
    expect(config.seedDemo).toBe(false);
    expect(config.pepperIsDevelopment).toBe(false);
    expect(config.operatorKeyHash).not.toBeNull();
    // A shared PostgreSQL, so the embedded database (and DATA_DIR) is never used: the root filesystem can be read-only.
    expect(config.databaseUrl).toBe(FILLED_SECRET.DATABASE_URL);
    expect(config.redisUrl).toBe(FILLED_SECRET.REDIS_URL);
  });

  test("the container reads the ConfigMap and the Secret of these manifests", () => {
    const refs = container().envFrom;
    expect(refs.map((r: Manifest) => r.configMapRef?.name).filter(Boolean)).toEqual([configMap().metadata.name]);
    expect(refs.map((r: Manifest) => r.secretRef?.name).filter(Boolean)).toEqual([secret().metadata.name]);
  });

  test("the container ports are the service's defaults, named http and grpc, and the pod's settings agree", () => {
    const defaults = loadConfig({});
    const ports = Object.fromEntries(container().ports.map((p: Manifest) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: defaults.port, grpc: defaults.grpcPort });
    const config = loadConfig(podEnvironment(FILLED_SECRET));
    expect([config.port, config.grpcPort]).toEqual([defaults.port, defaults.grpcPort]);
  });

  test("the Services reach the named container ports; gRPC is declared as HTTP/2 cleartext", () => {
    const defaults = loadConfig({});
    const podLabels = deployment().spec.template.metadata.labels;
    const containerPorts = new Set(container().ports.map((p: Manifest) => p.name));
    const services = DOCUMENTS.filter((d) => d.manifest.kind === "Service").map((d) => d.manifest);
    expect(services.length).toBeGreaterThan(0);
    for (const service of services) {
      expect(podLabels).toMatchObject(service.spec.selector);
      for (const port of service.spec.ports) expect(containerPorts).toContain(port.targetPort);
    }
    const main = only("Service", "kaireon");
    const byName = Object.fromEntries(main.spec.ports.map((p: Manifest) => [p.name, p]));
    expect(byName.http).toMatchObject({ port: defaults.port, targetPort: "http" });
    expect(byName.grpc).toMatchObject({ port: defaults.grpcPort, targetPort: "grpc", appProtocol: "kubernetes.io/h2c" });
    const headless = services.find((s) => s.spec.clusterIP === "None");
    expect(headless?.spec.ports.map((p: Manifest) => p.port)).toEqual([defaults.grpcPort]);
  });

  test("the image is the one of package.json's version", () => {
    expect(container().image).toBe(`kaireon:${VERSION}`);
    expect(readFileSync(join(DIR, "README.md"), "utf8")).toContain(`kaireon:${VERSION}`);
    expect(deployment().metadata.labels["app.kubernetes.io/version"]).toBe(VERSION);
    expect(deployment().spec.template.metadata.labels["app.kubernetes.io/version"]).toBe(VERSION);
  });

  test("the pod runs as the image's non-root user on a read-only root filesystem", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^USER bun$/m);
    const pod = deployment().spec.template.spec;
    // uid 1000 is the bun user of the official Bun images.
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 });
    expect(container().securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    // The one writable path is an emptyDir, not the image.
    const mounts = container().volumeMounts.map((m: Manifest) => m.mountPath);
    expect(mounts).toEqual(["/tmp"]);
    expect(pod.volumes.find((v: Manifest) => v.name === container().volumeMounts[0].name)?.emptyDir).toBeDefined();
  });

  test("requests and limits are set: the autoscaler's CPU target is a share of the request", () => {
    const { requests, limits } = container().resources;
    expect(requests.cpu).toBeDefined();
    expect(requests.memory).toBeDefined();
    expect(limits.memory).toBeDefined();
    const hpa = only("HorizontalPodAutoscaler");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: deployment().apiVersion, kind: "Deployment", name: deployment().metadata.name });
    expect(hpa.spec.metrics.map((m: Manifest) => m.resource?.name)).toEqual(["cpu"]);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    // Left to the autoscaler: a count here would reset its choice on every apply.
    expect(deployment().spec.replicas).toBeUndefined();
  });

  test("the disruption budget covers the Deployment's pods and leaves one running", () => {
    const pdb = only("PodDisruptionBudget");
    expect(deployment().spec.template.metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(deployment().spec.selector.matchLabels).toEqual(pdb.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable).toBeLessThan(only("HorizontalPodAutoscaler").spec.minReplicas);
  });

  test("the grace period outlasts the whole shutdown", () => {
    const pod = deployment().spec.template.spec;
    const grace: number = pod.terminationGracePeriodSeconds;
    const defaultTimeout = loadConfig({}).shutdownTimeoutMs;
    expect(grace).toBeGreaterThan(defaultTimeout / 1000);
    // SIGTERM comes after preStop; then draining requests and writing buffered traces may each take up to
    // SHUTDOWN_TIMEOUT_MS (src/app.ts), under the pod's own setting.
    const timeout = loadConfig(podEnvironment(FILLED_SECRET)).shutdownTimeoutMs;
    const preStop: number = container().lifecycle?.preStop?.sleep?.seconds ?? 0;
    expect(grace).toBeGreaterThan(preStop + (2 * timeout) / 1000);
  });

  test("the probes ask the service's health routes, on the http port, and they answer", async () => {
    const c = container();
    const probes = { startup: c.startupProbe, liveness: c.livenessProbe, readiness: c.readinessProbe };
    expect(probes.startup.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(probes.liveness.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(probes.readiness.httpGet).toEqual({ path: "/readyz", port: "http" });
    const svc = await startTestService({ SEED_DEMO: "false" });
    try {
      for (const probe of Object.values(probes)) {
        const res = await fetch(`${svc.http}${probe.httpGet.path}`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { status: string }).status).toBe("ok");
      }
      // A path the service does not serve is not healthy: the check above can tell.
      expect((await fetch(`${svc.http}/health`)).status).toBe(404);
    } finally {
      await svc.stop();
    }
  });
});
