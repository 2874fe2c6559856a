/**
 * A task's output: on its way to the hub from a running handler (`TaskRun.emit`, batched here), and from the hub to
 * whoever follows it (`client.task.stream`, the task's Server-Sent Events stream, resumed after a broken connection).
 */

import type { AgoraClient } from "./client.js";
import { AgoraError, errorFromBody } from "./errors.js";
import { TaskTools } from "./generated/tools.js";
import type { Chunk } from "./generated/types.js";
import { sleep } from "./retry.js";

export type OutputChunk = { text: string } | { data: unknown };

/** Chunks go in order, one `agora.task.emit` in flight at a time, each taking every chunk that came meanwhile (so a
 * handler emitting tokens one by one does not pay a round trip each). */
export class TaskOutput {
  static readonly BACKLOG = 5000; // chunks waiting at most; past that, `add` waits for them to go
  static readonly BATCH = 500;
  #pending: OutputChunk[] = [];
  #sending: Promise<void> | null = null;
  #error: unknown = null;

  constructor(private readonly send: (chunks: OutputChunk[]) => Promise<unknown>) {}

  async add(chunk: OutputChunk): Promise<void> {
    if (this.#error !== null) throw this.#error;
    this.#pending.push(chunk);
    this.#sending ??= this.#drain();
    if (this.#pending.length > TaskOutput.BACKLOG) await this.flush();
  }

  /** Wait until every chunk added so far is stored; throw why not (e.g. the lease was lost). */
  async flush(): Promise<void> {
    while (this.#sending !== null) await this.#sending;
    if (this.#error !== null) throw this.#error;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, TaskOutput.BATCH);
        try {
          await this.send(batch);
        } catch (error) { // not stored, nor what follows: the handler hears it at its next emit
          this.#error = error;
          this.#pending.length = 0;
        }
      }
    } finally {
      this.#sending = null;
    }
  }
}

export interface StreamOptions {
  /** Start after this chunk number (default: from the first). */
  after?: number;
  /** Ends the stream. */
  signal?: AbortSignal;
}

/** `client.task`: the catalog's task tools, and `stream` (a task's output as it is made). */
export class Tasks extends TaskTools {
  constructor(private readonly client: AgoraClient) {
    super(client);
  }

  /**
   * The chunks the task emits, as they come, until it has finished and every one was given
   * (`for await (const chunk of client.task.stream(taskId))`). A broken connection is opened again after the last
   * chunk given: none is missed or given twice. A refusal of the hub (no such task, no right to it) is thrown.
   */
  async *stream(taskId: string, options: StreamOptions = {}): AsyncGenerator<Chunk, void, undefined> {
    let after = options.after ?? 0;
    const { signal } = options;
    for (let attempt = 0; !signal?.aborted; attempt++) {
      try {
        const url = `${this.client.config.url}/tasks/${encodeURIComponent(taskId)}/output/stream?after=${after}`;
        const response = await fetch(url, { headers: this.client.headers(), signal });
        if (!response.ok) {
          const body = await response.text();
          if (response.status < 502) throw errorFromBody(response.status, parsed(body)); // the hub's refusal
        } else {
          for await (const event of sseEvents(response)) {
            attempt = 0;
            if (event.event === "end") return;
            if (event.event !== "chunk") continue;
            const chunk = JSON.parse(event.data) as Chunk;
            after = chunk.seq;
            yield chunk;
          }
        }
      } catch (error) {
        if (error instanceof AgoraError || signal?.aborted) {
          if (signal?.aborted) return;
          throw error;
        }
      }
      await sleep(this.client.retry.delay(Math.min(attempt, 5)), signal).catch(() => undefined);
    }
  }
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The events of a Server-Sent Events response (`event` and `data` fields; comments skipped). */
async function* sseEvents(response: Response): AsyncGenerator<{ event: string; data: string }, void, undefined> {
  if (response.body === null) return;
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line === "") {
        if (event !== "" || data.length > 0) yield { event: event || "message", data: data.join("\n") };
        event = "";
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
    }
  }
}
