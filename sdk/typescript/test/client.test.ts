/** The client against a real hub: one call of every category of tool, configuration, and the hub's errors as typed
 * classes. */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  AgoraClient, AgoraError, Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated, resolveConfig,
} from "@agora-hub/sdk";

import { type Hub, startHub } from "./hub.js";

let hub: Hub;
let admin: AgoraClient;

before(async () => {
  hub = await startHub();
  admin = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
});
after(() => hub.stop());

async function agent(name: string, capabilities: string[] = []): Promise<AgoraClient> {
  const client = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  await client.register(name, { capabilities });
  return client;
}

describe("configuration", () => {
  test("arguments win, then AGORA_URL / AGORA_API_KEY, then the local hub's admin.key", async () => {
    assert.deepEqual(resolveConfig({ url: "http://h:1/", apiKey: "k" }, {}), { url: "http://h:1", apiKey: "k", keySource: "argument" });
    const fromEnv = resolveConfig({}, { AGORA_URL: hub.url, AGORA_API_KEY: hub.adminKey });
    assert.deepEqual(fromEnv, { url: hub.url, apiKey: hub.adminKey, keySource: "AGORA_API_KEY" });
    const fromFile = resolveConfig({}, { AGORA_URL: hub.url, AGORA_DATA_DIR: hub.dataDir });
    assert.equal(fromFile.apiKey, hub.adminKey);
    assert.equal(resolveConfig({}, { AGORA_DATA_DIR: "/nonexistent" }).keySource, "none");
    const local = new AgoraClient({ url: hub.url, dataDir: hub.dataDir });
    assert.equal((await local.admin.health()).status, "healthy");
  });
});

describe("every category of tool", () => {
  test("agents", async () => {
    const registration = await admin.agents.register("ts-writer", { capabilities: ["docs"], description: "writes" });
    assert.match(registration.agent_id, /^agent_/);
    assert.ok(registration.agent_token);
    assert.equal((await admin.agents.get("ts-writer")).capabilities[0], "docs");
    assert.ok((await admin.agents.list()).agents.some((a) => a.agent_name === "ts-writer"));
    const me = await agent("ts-beater");
    assert.equal((await me.agents.heartbeat({ status: "busy" })).status, "busy");
    assert.equal((await admin.agents.update({ agent: "ts-writer", description: "edits" })).description, "edits");
    assert.equal((await admin.agents.deregister("ts-writer")).agent_id, registration.agent_id);
  });

  test("messaging", async () => {
    const alice = await agent("ts-alice");
    const bob = await agent("ts-bob");
    const receipt = await alice.messaging.send("ts-bob", { doc: "guide.md" }, { performative: "request", priority: "high" });
    assert.equal(receipt.status, "queued");
    const inbox = await bob.messaging.receive({ wait: 5 });
    assert.deepEqual(inbox.messages.map((m) => [m.message_id, m.content, m.from_agent]), [[receipt.message_id, { doc: "guide.md" }, alice.agentId]]);
    assert.equal((await bob.messaging.ack([receipt.message_id])).acked, 1);
    const subscription = await bob.messaging.subscribe({ topics: ["builds.*"] });
    await alice.messaging.publish("builds.main", "green");
    assert.equal((await bob.messaging.receive({ wait: 5 })).messages[0]?.content, "green");
    await bob.messaging.unsubscribe(subscription.subscription_id);
    assert.equal((await alice.messaging.sendBatch({ messages: [{ to_agent: "ts-bob", content: 1 }, { to_agent: "ts-bob", content: 2 }] })).count, 2);
    assert.ok((await admin.messaging.search({ from_agent: "ts-alice" })).messages.length >= 3);
  });

  test("task", async () => {
    const worker = await agent("ts-worker", ["review"]);
    const assigned = await admin.task.assign("review", { doc: 1 }, { required_capabilities: ["review"], idempotency_key: "ts-review-1" });
    assert.equal((await admin.task.assign("review", { doc: 1 }, { required_capabilities: ["review"], idempotency_key: "ts-review-1" })).task_id, assigned.task_id);
    const claimed = await worker.task.claim({ wait: 5 });
    assert.equal(claimed.task?.task_id, assigned.task_id);
    const lease = claimed.lease!;
    assert.equal((await worker.task.heartbeat({ task_id: assigned.task_id, lease_token: lease.token, progress: 50 })).progress, 50);
    const done = await worker.task.update(assigned.task_id, { lease_token: lease.token, status: "completed", result: { verdict: "ok" } });
    assert.deepEqual([done.status, done.result], ["completed", { verdict: "ok" }]);
    assert.equal((await admin.task.get(assigned.task_id)).status, "completed");
    assert.ok((await admin.task.list({ status: "completed" })).tasks.some((t) => t.task_id === assigned.task_id));
    assert.ok((await admin.task.history(assigned.task_id)).transitions.length >= 2);
    assert.ok(((await admin.task.stats({ task_type: "review" })).by_status.completed ?? 0) >= 1);
    const batch = await admin.task.assignBatch({ tasks: [1, 2].map((n) => ({ task_type: "later", payload: { n }, required_capabilities: ["later"] })) });
    assert.equal(batch.created, 2);
    await Promise.all(batch.results.map((t) => admin.task.cancel(t.task_id, { reason: "not needed" })));
  });

  test("workflow", async () => {
    const created = await admin.workflow.create("ts-flow", [{ name: "one", agent: "nobody-yet" }], { input: { x: 1 } });
    assert.equal((await admin.workflow.status(created.workflow_id)).workflow_id, created.workflow_id);
    assert.ok((await admin.workflow.list()).workflows.some((w) => w.workflow_id === created.workflow_id));
    assert.equal((await admin.workflow.cancel(created.workflow_id)).status, "cancelled");
  });

  test("a2a, query, discovery, tools", async () => {
    await assert.rejects(admin.a2a.update("task_0123456789abcdef", { state: "working" }), NotFound);
    assert.ok((await admin.query.agents({ text: "ts" })).agents.length > 0);
    assert.ok((await admin.query.services()).services.length > 0);
    assert.ok((await admin.query.marketplace()).total_agents > 0);
    assert.ok(Array.isArray((await admin.query.activity()).points));
    assert.ok((await admin.discovery.list({ category: "task" })).services.some((t) => t.name === "agora.task.claim"));
    assert.equal((await admin.discovery.schema("agora.messaging.send")).name, "agora.messaging.send");
    assert.ok((await admin.tools.search("claim a task")).tools.length > 0);
    const called = await admin.tools.call("agora.admin.health", {});
    assert.equal((called.result as { status: string }).status, "healthy");
  });

  test("mcp_servers, marketplace, billing, hosting, admin", async () => {
    assert.deepEqual((await admin.mcpServers.list()).servers, []);
    assert.ok(Array.isArray((await admin.marketplace.discover()).agents));
    assert.ok(Array.isArray((await admin.marketplace.listInstances()).instances));
    assert.ok(typeof (await admin.billing.invoice({ customer: "default" })).total === "string");
    assert.ok(Array.isArray((await admin.hosting.listNodes()).nodes));
    assert.equal((await admin.admin.health()).status, "healthy");
    const key = await admin.admin.keys.create({ kind: "customer", tenant: "ts-acme" });
    assert.ok((await admin.admin.keys.list({ tenant: "ts-acme" })).keys.some((k) => k.key_id === key.info.key_id));
    assert.equal((await admin.admin.keys.revoke(key.info.key_id)).revoked_at !== null, true);
    assert.ok((await admin.admin.audit()).entries.length > 0);
  });

  test("any tool by name, short or long", async () => {
    const health = (await admin.call("admin.health")) as { status: string };
    assert.equal(health.status, "healthy");
    assert.equal(((await admin.call("agora.agents.get", { agent: "ts-bob" })) as { agent_name: string }).agent_name, "ts-bob");
  });
});

describe("errors are typed and carry the hub's code", () => {
  test("not found, invalid argument, unauthenticated, permission denied, conflict", async () => {
    const missing = await admin.agents.get("nobody-here").catch((e: unknown) => e);
    assert.ok(missing instanceof NotFound && missing instanceof AgoraError);
    assert.deepEqual([missing.code, missing.status, missing.name], ["not_found", 404, "NotFound"]);

    const invalid = await admin.messaging.send("ts-bob", "x", { priority: "whenever" as "low" }).catch((e: unknown) => e);
    assert.ok(invalid instanceof InvalidArgument);
    assert.equal(invalid.status, 422);
    assert.equal((invalid.details.errors as { field: string }[])[0]?.field, "priority");

    const stranger = new AgoraClient({ url: hub.url, apiKey: "agora_sk_not-a-key" });
    await assert.rejects(stranger.admin.health(), (e: unknown) => e instanceof Unauthenticated && e.code === "unauthenticated");

    const worker = await agent("ts-denied");
    await assert.rejects(worker.admin.keys.list(), PermissionDenied);

    const assigned = await admin.task.assign("fenced", {}, { assignee: "ts-denied" });
    const claimed = await worker.task.claim({ task_types: ["fenced"], wait: 5 });
    assert.equal(claimed.task?.task_id, assigned.task_id);
    await assert.rejects(worker.task.update(assigned.task_id, { lease_token: `lease_${"0".repeat(32)}`, status: "completed" }), Conflict);
  });
});
