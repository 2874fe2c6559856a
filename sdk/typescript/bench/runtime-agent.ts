// One TypeScript `Agent` for the benchmark (`python -m benchmarks typescript`), as `benchmarks/runtime_agents.py` runs
// Python ones: handlers that return at once, one task each.
//
// node build/bench/runtime-agent.js URL ADMIN_KEY CAPACITY EXPECTED SECONDS OUT
//   takes `bench` tasks (capability `work`) until EXPECTED were handled or SECONDS passed. Prints "ready" once
//   registered and connected, then starts on a line from stdin. OUT gets the tasks handled (and how many more than
//   once), the seconds from the first to the last hand-off and this process's CPU seconds.
import { writeFileSync } from "node:fs";
import { once } from "node:events";

import { Agent, type Logger } from "@agora-hub/sdk";

const [url, apiKey, capacity, expected, seconds, out] = process.argv.slice(2) as [string, string, string, string, string, string];
const quiet: Logger = { debug() {}, info() {}, warn: console.warn, error: console.error };
const agent = new Agent("runtime-ts", { url, apiKey, capabilities: ["work"], concurrency: Number(capacity), logger: quiet });
const handled: string[] = [];
const seen = new Set<string>();
let first = 0;
let last = 0;
let allHandled: () => void = () => {};
const done = new Promise<void>((resolve) => (allHandled = resolve));

agent.onTask("bench", (task) => {
  if (handled.length === 0) first = performance.now();
  handled.push(task.task_id);
  seen.add(task.task_id);
  last = performance.now();
  if (seen.size >= Number(expected)) allHandled();
  return { ok: true };
});

await agent.start();
await agent.channel?.whenUp();
console.log("ready");
process.stdin.resume();
await once(process.stdin, "data");
const cpu = process.cpuUsage();
const timer = setTimeout(allHandled, Number(seconds) * 1000); // the run's time is up: the figures say how many
await done;
clearTimeout(timer);
const used = process.cpuUsage(cpu);
await agent.stop();
writeFileSync(out, JSON.stringify({
  handled: seen.size, handled_twice: handled.length - seen.size,
  span_seconds: Math.max((last - first) / 1000, 1e-9), cpu_seconds: (used.user + used.system) / 1e6,
}));
process.exit(0); // stdin stays open
