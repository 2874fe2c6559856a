/** The TypeScript agent runtime against a real hub: tasks (results, failures retried, progress, lease renewal,
 * concurrency), messages (replies, acks after the handler, redelivery), the WebSocket channel riding out a cut
 * connection, HTTP when a proxy refuses WebSockets, graceful shutdown on SIGTERM, and the README's examples. */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { Agent, AgoraClient, type Logger, type Task } from "@agora-hub/sdk";

import { type Hub, freePort, startHub, stopProcess, until } from "./hub.js";
import { TcpProxy } from "./proxy.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let hub: Hub;
let admin: AgoraClient;
const running: Agent[] = [];

before(async () => {
  hub = await startHub();
  admin = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
});
after(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await hub.stop();
});

function agent(name: string, options: ConstructorParameters<typeof Agent>[1] = {}): Agent {
  const made = new Agent(name, { url: hub.url, apiKey: hub.adminKey, logger: quiet, ...options });
  running.push(made);
  return made;
}

async function settled(taskId: string, statuses = ["completed", "dead_letter", "failed"]): Promise<Task> {
  return until(async () => {
    const task = await admin.task.get(taskId);
    return statuses.includes(task.status) ? task : undefined;
  }, 20, `task ${taskId} to settle`);
}

test("tasks: results, progress, failures retried then dead-lettered, never more than `concurrency` at once", async () => {
  const worker = agent("rt-worker", { concurrency: 2, leaseSeconds: 1.5 });
  let inFlight = 0;
  let most = 0;
  const progress: number[] = [];
  worker.onTask("square", async (task) => {
    inFlight += 1;
    most = Math.max(most, inFlight);
    progress.push((await task.progress(50, "half way")).progress);
    await sleep(20);
    inFlight -= 1;
    return { square: (task.payload.n as number) ** 2 };
  });
  worker.onTask("boom", () => {
    throw new TypeError("boom");
  });
  worker.onTask("long", async () => {
    await sleep(2000); // past its 1.5 s lease: renewed every half second, it is never taken back
    return "held";
  });
  await worker.start();

  const squares = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => admin.task.assign("square", { n }, { assignee: "rt-worker" })));
  const boom = await admin.task.assign("boom", {}, { assignee: "rt-worker", max_attempts: 2, retry_backoff_seconds: 0.1 });
  const long = await admin.task.assign("long", {}, { assignee: "rt-worker" });
  const done = await Promise.all(squares.map((t) => settled(t.task_id)));
  assert.deepEqual(done.map((t) => [t.status, t.result]), [1, 2, 3, 4, 5, 6].map((n) => ["completed", { square: n * n }]));
  assert.ok(most === 2, `at most 2 at once, and 2 at some point: saw ${most}`);
  assert.deepEqual(progress, [50, 50, 50, 50, 50, 50]);
  const failed = await settled(boom.task_id);
  assert.deepEqual([failed.status, failed.attempts, failed.last_error], ["dead_letter", 2, "TypeError: boom"]);
  const held = await settled(long.task_id);
  assert.deepEqual([held.status, held.attempts, held.result], ["completed", 1, "held"]);
  assert.ok(worker.channel?.isUp, "the work went over the WebSocket channel");
});

test("output: a handler's chunks reach a client's stream in order, all stored before its result; a stream resumes after a chunk", async () => {
  const writer = agent("rt-writer");
  let release: () => void = () => {};
  const going = new Promise<void>((resolve) => { release = resolve; });
  writer.onTask("tell", async (task) => {
    for (const word of ["Once ", "upon ", "a time"]) await task.emit(word);
    await task.emitData({ words: 3 });
    await going; // the watcher is following: the rest comes as it is made
    for (let n = 0; n < 50; n++) void task.emit(`.${n}`); // not awaited: batched while the handler goes on
    return { told: true };
  });
  await writer.start();
  const { task_id } = await admin.task.assign("tell", {}, { assignee: "rt-writer" });
  const seen: unknown[] = [];
  for await (const chunk of admin.task.stream(task_id)) {
    seen.push(chunk.kind === "data" ? chunk.data : chunk.text);
    if (seen.length === 4) release();
  }
  const dots = Array.from({ length: 50 }, (_, n) => `.${n}`);
  assert.deepEqual(seen, ["Once ", "upon ", "a time", { words: 3 }, ...dots]);
  assert.equal((await settled(task_id)).status, "completed"); // the stream ended with the task
  const rest = [];
  for await (const chunk of admin.task.stream(task_id, { after: 50 })) rest.push(chunk.text);
  assert.deepEqual(rest, dots.slice(46));
});

test("messages: a handler's reply reaches the sender; a failing handler gets the message again, acked once handled", async () => {
  const echo = agent("rt-echo", { visibilityTimeout: 1 });
  let flaky = 0;
  echo.onMessage({ messageType: "flaky" }, (msg) => {
    flaky += 1;
    if (msg.delivery_count < 2) throw new Error("not yet");
  });
  echo.onMessage(async (msg) => {
    await msg.reply({ echo: msg.content });
  });
  await echo.start();
  const sender = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  await sender.register("rt-sender");
  const sent = await sender.messaging.send("rt-echo", "hello");
  const reply = (await sender.messaging.receive({ wait: 10 })).messages[0];
  assert.deepEqual([reply?.content, reply?.correlation?.reply_to, reply?.performative], [{ echo: "hello" }, sent.message_id, "inform"]);

  await sender.messaging.send("rt-echo", "again?", { message_type: "flaky" });
  await until(() => (flaky >= 2 ? true : undefined), 15, "the flaky message's second delivery");
  await sleep(1500); // acked: no third delivery after the visibility timeout
  assert.equal(flaky, 2);
});

test("the channel rides out a cut connection: an outcome is sent again on the next one, the task done once", async () => {
  const proxy = await new TcpProxy(hub.port, await freePort()).start();
  try {
    const worker = agent("rt-cut", { url: proxy.url });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handled: string[] = [];
    worker.onTask("gated", async (task) => {
      handled.push(task.task_id);
      await gate;
      return "after the cut";
    });
    await worker.start();
    await until(() => (worker.channel?.isUp ? true : undefined), 10, "the channel");
    const task = await admin.task.assign("gated", {}, { assignee: "rt-cut" });
    await until(() => (handled.length ? true : undefined), 10, "the handler to start");
    proxy.cutAll();
    release();
    const done = await settled(task.task_id);
    assert.deepEqual([done.status, done.result, done.attempts, handled.length], ["completed", "after the cut", 1, 1]);
    assert.ok((worker.channel?.connections ?? 0) >= 2);
  } finally {
    await proxy.close();
  }
});

test("a proxy that refuses WebSockets sends the runtime to HTTP: claims and receives parked on the hub", async () => {
  const proxy = await new TcpProxy(hub.port, await freePort()).start();
  proxy.refuseWebSockets = true;
  try {
    const worker = agent("rt-http", { url: proxy.url });
    worker.onTask("plain", (task) => ({ got: task.payload }));
    worker.onMessage((msg) => msg.reply("over http"));
    await worker.start();
    await until(() => (worker.channel === null ? true : undefined), 15, "the fall-back to HTTP");
    const task = await admin.task.assign("plain", { x: 1 }, { assignee: "rt-http" });
    assert.deepEqual((await settled(task.task_id)).result, { got: { x: 1 } });
    const sender = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
    await sender.register("rt-http-sender");
    await sender.messaging.send("rt-http", "hi");
    assert.equal((await sender.messaging.receive({ wait: 10 })).messages[0]?.content, "over http");
  } finally {
    await proxy.close();
  }
});

function node(script: string, env: Record<string, string>): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [join(HERE, script)], {
    env: { ...process.env, AGORA_URL: hub.url, AGORA_API_KEY: hub.adminKey, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  proc.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, output: () => output, exited };
}

test("SIGTERM: the running handler finishes and reports, nothing more is taken, the process exits 0", async () => {
  const slow = node("slow-agent.js", { SLOW_SECONDS: "1" });
  try {
    const first = await admin.task.assign("slow", {}, { assignee: "slow-agent" });
    await until(() => (slow.output().includes(`started ${first.task_id}`) ? true : undefined), 20, "the slow handler to start");
    const second = await admin.task.assign("slow", {}, { assignee: "slow-agent" });
    slow.proc.kill("SIGTERM");
    assert.equal(await slow.exited, 0, slow.output());
    assert.equal((await admin.task.get(first.task_id)).status, "completed");
    const left = await admin.task.get(second.task_id);
    assert.deepEqual([left.status, left.attempts], ["pending", 0]);
  } finally {
    await stopProcess(slow.proc);
  }
});

test("the README's echo agent and quickstart, in TypeScript", async () => {
  const echo = node("../examples/echo-agent.js", {});
  try {
    await until(async () => ((await admin.agents.list()).agents.some((a) => a.agent_name === "EchoAgent") ? true : undefined), 20, "EchoAgent");
    const quickstart = node("../examples/quickstart.js", {});
    assert.equal(await quickstart.exited, 0, quickstart.output());
    assert.equal(quickstart.output(), "{ echo: 'hello' }\n{ n: 42 }\n");
  } finally {
    await stopProcess(echo.proc);
  }
});
