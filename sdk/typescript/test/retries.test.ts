/** Retries and timeouts against a real hub, with a TCP proxy in between to refuse, cut or stall connections. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { AgoraClient, RateLimited, Unavailable } from "@agora-hub/sdk";

import { type Hub, freePort, startHub } from "./hub.js";
import { TcpProxy } from "./proxy.js";

let hub: Hub;
let proxy: TcpProxy;

before(async () => {
  // Agents may read 5 times a second (bursts of 5): enough to see the client wait out a 429.
  hub = await startHub({ args: ["--rate-limit", "agent.read=5/s:5"] });
  proxy = await new TcpProxy(hub.port, await freePort()).start();
});
after(async () => {
  await proxy.close();
  await hub.stop();
});

async function agentThrough(url: string, name: string, options: { retries?: number; timeoutMs?: number } = {}): Promise<AgoraClient> {
  const registrar = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  const { agent_token } = await registrar.agents.register(name);
  return new AgoraClient({ url, apiKey: agent_token ?? undefined, ...options });
}

/** The next connection the client opens is cut once its request is sent (open ones are closed first, so the client
 * cannot reuse one). */
async function cutNextConnection(): Promise<void> {
  proxy.cutAll();
  await sleep(50);
  proxy.cutNext = 1;
}

test("a refused connection is tried again until the hub is there", async () => {
  const port = await freePort();
  const client = new AgoraClient({ url: `http://127.0.0.1:${port}`, apiKey: hub.adminKey, retries: 8 });
  const late = new TcpProxy(hub.port, port);
  const call = client.admin.health();
  await sleep(300);
  await late.start();
  try {
    assert.equal((await call).status, "healthy");
  } finally {
    await late.close();
  }
  const impatient = new AgoraClient({ url: `http://127.0.0.1:${port}`, apiKey: hub.adminKey, retries: 0 });
  await assert.rejects(impatient.admin.health(), (e: unknown) => e instanceof Unavailable && /cannot reach the hub/.test(e.message));
});

test("a request the hub may have run is sent again only when that is safe", async () => {
  const sender = await agentThrough(proxy.url, "retry-sender");
  const receiver = await agentThrough(hub.url, "retry-receiver");

  await cutNextConnection(); // a send without an idempotency key: the client cannot know, so it says so
  await assert.rejects(sender.messaging.send("retry-receiver", "once?"), Unavailable);
  assert.equal(proxy.cutNext, 0);
  assert.deepEqual((await receiver.messaging.receive({ wait: 0 })).messages, []);

  await cutNextConnection(); // a read-only tool: asked again
  assert.equal((await sender.agents.get("retry-receiver")).agent_name, "retry-receiver");

  await cutNextConnection(); // an idempotency key makes the send safe to repeat
  await sender.messaging.send("retry-receiver", "exactly once", { idempotency_key: "retry-1" });
  const inbox = await receiver.messaging.receive({ wait: 1 });
  assert.deepEqual(inbox.messages.map((m) => m.content), ["exactly once"]);
  assert.equal(proxy.cuts, 3);
});

test("a 429 is waited out as long as the hub asks; without retries it is a RateLimited error", async () => {
  const reader = await agentThrough(hub.url, "retry-reader");
  const started = Date.now();
  for (let i = 0; i < 10; i++) assert.equal((await reader.agents.get("retry-reader")).agent_name, "retry-reader");
  assert.ok(Date.now() - started >= 600, `10 reads at 5/s after a burst of 5 took only ${Date.now() - started} ms`);

  const impatient = new AgoraClient({ url: hub.url, apiKey: reader.apiKey ?? undefined, retries: 0 });
  const refused = await Promise.all(Array.from({ length: 8 }, () => impatient.agents.get("retry-reader").catch((e: unknown) => e)));
  const limited = refused.filter((e): e is RateLimited => e instanceof RateLimited);
  assert.ok(limited.length > 0);
  assert.equal(limited[0]?.status, 429);
  assert.equal(typeof limited[0]?.details.retry_after_seconds, "number");
});

test("a 503 (the hub halted) is retried, and is an Unavailable error once retries run out", async () => {
  const admin = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  const writer = await agentThrough(hub.url, "retry-writer", { retries: 0 });
  await admin.admin.override({ target_id: "system_wide", action: "emergency_halt", reason: "test" });
  try {
    const refused = await writer.messaging.send("retry-writer", "halted").catch((e: unknown) => e);
    assert.ok(refused instanceof Unavailable);
    assert.equal(refused.details.reason, "system_halted");
    const patient = new AgoraClient({ url: hub.url, apiKey: writer.apiKey ?? undefined, retries: 8 });
    const sending = patient.messaging.send("retry-writer", "after the halt");
    await sleep(300);
    await admin.admin.override({ target_id: "system_wide", action: "resume", reason: "test" });
    assert.equal((await sending).status, "queued");
  } finally {
    await admin.admin.override({ target_id: "system_wide", action: "resume", reason: "test" }).catch(() => undefined);
  }
});

test("every call has a timeout, extended by a long poll's wait", async () => {
  const poller = await agentThrough(hub.url, "retry-poller", { timeoutMs: 300, retries: 0 });
  const started = Date.now();
  assert.deepEqual((await poller.messaging.receive({ wait: 1 })).messages, []);
  assert.ok(Date.now() - started >= 900);

  proxy.swallowAnswers = true;
  try {
    const stalled = await agentThrough(proxy.url, "retry-stalled", { timeoutMs: 300, retries: 0 });
    const t0 = Date.now();
    await assert.rejects(stalled.admin.health(), Unavailable);
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    proxy.swallowAnswers = false;
  }
});
