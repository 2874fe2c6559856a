// An agent process for the shutdown test: each `slow` task's handler takes `SLOW_SECONDS` (default 1) seconds and
// prints "started <task id>" when it begins.
import { Agent } from "@agora-hub/sdk";

const seconds = Number(process.env.SLOW_SECONDS ?? "1");
const agent = new Agent("slow-agent", { concurrency: 1 });

agent.onTask("slow", async (task) => {
  console.log(`started ${task.task_id}`);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return { slept: seconds };
});

await agent.run();
