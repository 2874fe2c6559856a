/** Live events over the WebSocket: typed events, resume after the last one taken (on a new stream, and by the
 * stream itself when its connection is cut), and the hub's refusal as a typed error. */

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { AgoraClient, type StreamEvent, Unauthenticated } from "@agora-hub/sdk";

import { type Hub, freePort, startHub } from "./hub.js";
import { TcpProxy } from "./proxy.js";

let hub: Hub;
let admin: AgoraClient;

before(async () => {
  hub = await startHub();
  admin = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
});
after(() => hub.stop());

/** The next `count` events of `stream`, as they come. */
async function take(stream: AsyncIterator<StreamEvent>, count: number): Promise<StreamEvent[]> {
  const taken: StreamEvent[] = [];
  while (taken.length < count) {
    const next = await stream.next();
    assert.equal(next.done, false);
    taken.push(next.value as StreamEvent);
  }
  return taken;
}

const registered = (events: StreamEvent[]): unknown[] => events.map((e) => (e.data as { agent_name: string }).agent_name);

test("a new stream resumes after the last event taken: nothing skipped, nothing twice", async () => {
  const stream = admin.events(["agent_registered"])[Symbol.asyncIterator]();
  const first = take(stream, 1);
  await new Promise((resolve) => setTimeout(resolve, 200)); // the stream is open before the event
  await admin.agents.register("ev-one");
  const [one] = await first;
  assert.deepEqual(registered([one!]), ["ev-one"]);
  assert.match(one!.id, /.+/);
  await stream.return?.(undefined); // disconnected

  await admin.agents.register("ev-two");
  await admin.agents.register("ev-three");
  const resumed = admin.events(["agent_registered"], { resume: one!.id })[Symbol.asyncIterator]();
  assert.deepEqual(registered(await take(resumed, 2)), ["ev-two", "ev-three"]);
  await resumed.return?.(undefined);
});

test("the stream rides out a cut connection and resumes by itself", async () => {
  const proxy = await new TcpProxy(hub.port, await freePort()).start();
  try {
    const through = new AgoraClient({ url: proxy.url, apiKey: hub.adminKey });
    const stream = through.events(["agent_registered"])[Symbol.asyncIterator]();
    const first = take(stream, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await admin.agents.register("ev-before-cut");
    assert.deepEqual(registered(await first), ["ev-before-cut"]);
    proxy.cutAll();
    await admin.agents.register("ev-after-cut-1");
    await admin.agents.register("ev-after-cut-2");
    assert.deepEqual(registered(await take(stream, 2)), ["ev-after-cut-1", "ev-after-cut-2"]);
    await stream.return?.(undefined);
  } finally {
    await proxy.close();
  }
});

test("an agent's stream carries its messages, typed", async () => {
  const receiver = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  await receiver.register("ev-receiver");
  const sender = new AgoraClient({ url: hub.url, apiKey: hub.adminKey });
  await sender.register("ev-sender");
  const controller = new AbortController();
  const seen: StreamEvent[] = [];
  const reading = (async () => {
    for await (const event of receiver.events(["message_received"], { signal: controller.signal })) {
      seen.push(event);
      await receiver.messaging.ack([event.message!.message_id]);
      if (seen.length === 2) controller.abort();
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await sender.messaging.send("ev-receiver", { n: 1 });
  await sender.messaging.send("ev-receiver", "two", { message_type: "alert" });
  await reading; // the signal ends the loop
  assert.deepEqual(seen.map((e) => [e.type, e.message?.content, e.message?.message_type, e.message?.from_agent]), [
    ["message_received", { n: 1 }, "info", sender.agentId],
    ["message_received", "two", "alert", sender.agentId],
  ]);
});

test("a key the hub refuses ends the stream with the hub's error", async () => {
  const stranger = new AgoraClient({ url: hub.url, apiKey: "agora_sk_nobody" });
  await assert.rejects(stranger.events().next(), Unauthenticated);
});
