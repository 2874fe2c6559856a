/** A real hub for the tests: `python -m agora serve` on a free loopback port with a data directory of its own. The
 * Python comes from AGORA_TEST_PYTHON (the pytest wrapper sets its own interpreter), else `python3` on the PATH. */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const PYTHON = process.env.AGORA_TEST_PYTHON || "python3";

export interface Hub {
  url: string;
  port: number;
  adminKey: string;
  dataDir: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Only the AGORA_* settings a test gives reach the hub (as tests/hubproc.py does). */
function hubEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AGORA_")));
  return { ...env, AGORA_LOG_LEVEL: "warning", AGORA_LOCAL_NODE: "false", ...extra };
}

export async function startHub(options: { args?: string[]; env?: Record<string, string> } = {}): Promise<Hub> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "agora-ts-hub-"));
  const log = openSync(join(dataDir, "hub.log"), "a");
  const args = ["-m", "agora", "serve", "--port", String(port), "--data-dir", dataDir, ...(options.args ?? [])];
  const proc = spawn(PYTHON, args, { env: hubEnv(options.env ?? {}), stdio: ["ignore", log, log] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`hub exited with ${proc.exitCode}:\n${readFileSync(join(dataDir, "hub.log"), "utf8").slice(-3000)}`);
    try {
      if ((await fetch(`${url}/ready`)).status === 200) {
        const adminKey = readFileSync(join(dataDir, "admin.key"), "utf8").trim();
        return { url, port, adminKey, dataDir, stop: () => stopProcess(proc).then(() => rmSync(dataDir, { recursive: true, force: true })) };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stopProcess(proc);
  throw new Error(`hub not ready after 60 s:\n${readFileSync(join(dataDir, "hub.log"), "utf8").slice(-3000)}`);
}

/** SIGTERM, then SIGKILL if it is still there after 10 s. */
export function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    proc.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    proc.kill("SIGTERM");
  });
}

/** Polls `check` until it returns something other than undefined (or fails after `seconds`). */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, seconds = 10, what = "condition"): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
