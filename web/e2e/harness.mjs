// The browser tests' harness: an `authms dev` of their own (a temporary
// data directory, free ports, a unique database prefix whose databases and
// roles are dropped afterwards), Debian's Chromium driven by
// playwright-core, and small static servers for the cross-origin checks.

import { spawn, execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, mkdir } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, "..", "..");
export const outDir = join(here, "..", "test-results");
export const chromiumPath = "/usr/bin/chromium";
const databaseURL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/** freePort asks the kernel for a port nobody listens on. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** staticServer serves one HTML page at / on a free port of 127.0.0.1. */
export async function staticServer(html) {
  const port = await freePort();
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/**
 * startAuthms runs bin/authms dev (built by `task build`) and resolves once
 * it has printed its banner (after the dev bootstrap) and its health check
 * answers SERVING. corsOrigins are the other browser origins it lets
 * call the APIs (AUTHMS_CORS_ORIGINS); its own origin, the console's, is
 * never listed. The instance's natsURL is its embedded NATS
 * server's client URL, read from the banner, for tests that publish
 * straight to the streams.
 */
export async function startAuthms({ corsOrigins = [] } = {}) {
  const bin = join(repoRoot, "bin", "authms");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run 'task build' (go build -o bin/authms ./cmd/authms) first`);
  const dataDir = await mkdtemp(join(tmpdir(), "authms-e2e-"));
  const port = await freePort();
  const prefix = `authms_e2e${randomBytes(4).toString("hex")}`;
  const url = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    DATABASE_URL: databaseURL,
    AUTHMS_HTTP_ADDR: `127.0.0.1:${port}`,
    AUTHMS_DATA_DIR: dataDir,
    AUTHMS_NATS_PORT: "0",
    AUTHMS_DATABASE_PREFIX: prefix,
    // Only the other origins: the console's own is same-origin, as in the
    // default deployment, which needs no allow-list.
    AUTHMS_CORS_ORIGINS: corsOrigins.join(","),
    AUTHMS_LOG_FORMAT: "json",
    AUTHMS_LOG_LEVEL: "warn",
  };
  const child = spawn(bin, ["dev"], { cwd: dataDir, env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (chunk) => {
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));

  const instance = {
    url,
    natsURL: "",
    dataDir,
    prefix,
    log: () => log,
    /** stop ends authms dev (Ctrl-C, then a kill) and drops its databases and roles. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
        await exited;
        clearTimeout(t);
      }
      dropDatabases(prefix);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitHealthy(url, exited, () => log);
    instance.natsURL = bannerNATS(log);
  } catch (err) {
    await instance.stop();
    throw err;
  }
  return instance;
}

async function waitHealthy(url, exited, log) {
  let done = null;
  exited.then((r) => (done = r));
  const deadline = Date.now() + 180_000;
  let last = "";
  while (Date.now() < deadline) {
    if (done) throw new Error(`authms dev exited (${JSON.stringify(done)}) before it was healthy:\n${log()}`);
    // The banner comes after the dev bootstrap (tenant dev and its admin),
    // which runs once the APIs answer.
    if (!log().includes("authms dev is running")) {
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    try {
      const res = await fetch(`${url}/grpc.health.v1.Health/Check`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      const body = await res.json();
      // protojson names the enum value SERVING_STATUS_SERVING in connect-go's
      // health schema and SERVING in gRPC's; either is healthy.
      if (body.status === "SERVING" || body.status === "SERVING_STATUS_SERVING") return;
      last = JSON.stringify(body);
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`authms dev did not become healthy in 3 minutes (last: ${last}):\n${log()}`);
}

// bannerNATS reads the NATS server's URL from authms dev's banner, the
// line "NATS  nats://127.0.0.1:PORT  (embedded, …)". The port is a free one
// (AUTHMS_NATS_PORT=0), so the banner is the only place that tells it.
function bannerNATS(log) {
  const m = /^NATS\s+(nats:\/\/\S+)/m.exec(log);
  if (!m) throw new Error(`authms dev's banner names no NATS URL:\n${log}`);
  return m[1];
}

function psql(sql) {
  return execFileSync("psql", [databaseURL, "-XAtqc", sql], { encoding: "utf8" });
}

/** dropDatabases drops the databases and roles named <prefix>_<service>. */
export function dropDatabases(prefix) {
  if (!/^[a-z0-9_]+$/.test(prefix)) throw new Error(`unsafe prefix ${prefix}`);
  const like = `${prefix.replace(/_/g, "\\_")}\\_%`;
  for (const db of psql(`SELECT datname FROM pg_database WHERE datname LIKE '${like}'`).split("\n").filter(Boolean)) {
    psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
  }
  for (const role of psql(`SELECT rolname FROM pg_roles WHERE rolname LIKE '${like}'`).split("\n").filter(Boolean)) {
    psql(`DROP ROLE IF EXISTS "${role}"`);
  }
}

/** devAdmin is the bootstrap admin authms dev creates in tenant dev. */
export async function devAdmin(instance) {
  const password = (await readFile(join(instance.dataDir, "secrets", "authms.dev-admin-password"), "utf8")).trim();
  return { email: "admin@authms.test", password };
}

/** consoleConfig is the console's /console/config.json. */
export async function consoleConfig(instance) {
  const res = await fetch(`${instance.url}/console/config.json`);
  if (!res.ok) throw new Error(`/console/config.json: HTTP ${res.status}`);
  return res.json();
}

/**
 * launch starts headless Chromium with a new, empty profile directory and
 * returns its one browser context. Each person of a test gets their own.
 */
export async function launch({ viewport = { width: 1280, height: 900 } } = {}) {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: apt-get install chromium`);
  const profile = await mkdtemp(join(tmpdir(), "authms-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** shot saves a full-page screenshot under web/test-results. */
export async function shot(page, name) {
  await mkdir(outDir, { recursive: true });
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
}

// until returns once fn (run in the page) is true, failing with what the
// page's status line says rather than a bare timeout.
export async function until(p, fn, arg, what) {
  try {
    await p.waitForFunction(fn, arg, { timeout: 30_000 });
  } catch (err) {
    const statuses = await p.locator("[role=status]").allTextContents().catch(() => []);
    await shot(p, `failed-${what.replace(/\W+/g, "-")}`).catch(() => {});
    throw new Error(`${what}: ${err.message.split("\n")[0]}; statuses: ${JSON.stringify(statuses)}`);
  }
}
