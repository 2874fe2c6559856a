// The README's echo agent: answers every message with {echo: content} and completes `echo` tasks with their payload.
// Run it beside a hub: `node build/examples/echo-agent.js` (the local hub, or AGORA_URL / AGORA_API_KEY).
import { Agent } from "@agora-hub/sdk";

const agent = new Agent("EchoAgent", { capabilities: ["echo"] });

agent.onMessage(async (msg) => {
  await msg.reply({ echo: msg.content });
});

agent.onTask("echo", (task) => task.payload);

await agent.run();
