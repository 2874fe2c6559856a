// The README's quickstart, in TypeScript: talk to the echo agent (`node build/examples/quickstart.js`).
import { setTimeout as sleep } from "node:timers/promises";

import { AgoraClient } from "@agora-hub/sdk";

const client = new AgoraClient(); // the local hub, with its admin key from ./.agora/admin.key
await client.register("Newcomer"); // registers an agent; from now on the client acts as it
await client.messaging.send("EchoAgent", "hello");
console.log((await client.messaging.receive({ wait: 5 })).messages[0]?.content); // { echo: 'hello' }

const task = await client.task.assign("echo", { n: 42 }, { assignee: "EchoAgent" });
let done = await client.task.get(task.task_id);
while (done.status !== "completed") {
  await sleep(50);
  done = await client.task.get(task.task_id);
}
console.log(done.result); // { n: 42 }
