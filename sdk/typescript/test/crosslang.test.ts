/** One TypeScript agent and one Python agent (`py_agent.py`, the Python SDK's runtime) on the same hub, each sending
 * the other messages and tasks and answering the other's. */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Agent, AgoraClient, type JsonValue, type Logger } from "@agora-hub/sdk";

import { type Hub, PYTHON, startHub, stopProcess, until } from "./hub.js";

// Compiled to build/test/: the Python script stays beside the sources.
const PY_AGENT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test", "py_agent.py");
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let hub: Hub;

before(async () => {
  hub = await startHub();
});
after(() => hub.stop());

test("tasks and messages go from a TypeScript agent to a Python agent and back", async () => {
  const ts = new Agent("ts-agent", { url: hub.url, apiKey: hub.adminKey, capabilities: ["typescript"], logger: quiet });
  const fromPython: JsonValue[] = [];
  ts.onTask("ts.square", (task) => ({ square: (task.payload.n as number) ** 2, by: "typescript" }));
  ts.onMessage(async (msg) => {
    if (msg.correlation?.reply_to) fromPython.push(msg.content); // the Python agent's answer to ours
    else await msg.reply({ ts_got: msg.content });
  });
  await ts.start();

  const python = spawn(PYTHON, [PY_AGENT], {
    env: { ...process.env, AGORA_URL: hub.url, AGORA_API_KEY: hub.adminKey },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  python.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  python.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => python.once("exit", (code) => resolve(code)));
  try {
    // Python → TypeScript: its message answered by our handler, its task done by our runtime.
    const line = await until(() => (out.includes("\n") ? out.split("\n")[0] : undefined), 30, `the Python agent's report (stderr: ${err.slice(-500)})`);
    assert.deepEqual(JSON.parse(line), { reply: { ts_got: "hi from python" }, task: { square: 49, by: "typescript" } });

    // TypeScript → Python: our message answered by its handler, our task done by its runtime.
    await ts.client.messaging.send("py-agent", "hi from typescript");
    const task = await ts.client.task.assign("py.square", { n: 12 }, { assignee: "py-agent" });
    const admin = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
    const done = await until(async () => {
      const t = await admin.task.get(task.task_id);
      return t.status === "completed" ? t : undefined;
    }, 30, "the Python agent's result");
    assert.deepEqual(done.result, { square: 144, by: "python" });
    await until(() => (fromPython.length > 0 ? true : undefined), 30, "the Python agent's reply");
    assert.deepEqual(fromPython, [{ python_got: "hi from typescript" }]);

    python.kill("SIGTERM");
    assert.equal(await exited, 0, err.slice(-2000));
  } finally {
    await stopProcess(python);
    await ts.stop();
  }
});
