/**
 * `AgoraClient`: every catalog tool as a typed method, grouped by category (`client.messaging.send(…)`,
 * `client.task.claim(…)`, generated from the catalog in `generated/tools.ts`), plus `call` for any tool by name,
 * `register` (act as the agent registered) and `events` (live events over the WebSocket, resumed after a reconnect).
 *
 * A refused connection, a 429 and a 503 are retried with backoff; a request the hub may already have carried out is
 * sent again only when that is safe (a read-only tool, or a call with an `idempotency_key`). Every call has a timeout,
 * extended by a long poll's `wait`.
 */

import { type ClientConfig, type ConnectionOptions, resolveConfig } from "./config.js";
import { AgoraError, Unavailable, errorFromBody } from "./errors.js";
import { type StreamEvent, eventsOf } from "./events.js";
import { ToolGroups } from "./generated/tools.js";
import type { RegisterAgent, Registration } from "./generated/types.js";
import { DEFAULT_RETRIES, RetryPolicy, sleep } from "./retry.js";
import { Tasks } from "./output.js";
import { HandshakeRefused, openSocket, streamUrl } from "./socket.js";

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface ClientOptions extends ConnectionOptions {
  /** Each call's timeout (default 30 s), extended by a long poll's `wait`. */
  timeoutMs?: number;
  /** How many times a failed call is tried again (default 3). */
  retries?: number;
}

export interface EventOptions {
  /** Start after this resume token (an event's `id`). */
  resume?: string;
  /** Seconds a pushed message stays hidden from other deliveries until acked. */
  visibilityTimeout?: number;
  /** Ends the stream. */
  signal?: AbortSignal;
}

/** A way to the hub other than HTTP: an agent runtime's held WebSocket (`Channel`), used while it is up. */
export interface CallRoute {
  readonly isUp: boolean;
  /** Resolves with the result, or rejects with the hub's error; `TooLarge` if the call does not fit in one frame. */
  call(tool: string, args: Record<string, unknown>, resend: boolean): Promise<unknown>;
}

/** A call too large for the route's frames: it goes over HTTP instead. */
export class TooLarge extends Error {}

/** `agora.messaging.send` → `/agora/messaging/send` (the REST door's route for every tool). */
export function toolPath(tool: string): string {
  const name = tool.startsWith("agora.") || tool.startsWith("ext.") ? tool : `agora.${tool}`;
  return "/" + name.replaceAll(".", "/");
}

export class AgoraClient extends ToolGroups {
  /** The catalog's task tools, and `stream` (a task's output as it is made). */
  override readonly task: Tasks = new Tasks(this);
  config: ClientConfig;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  /** Set once `register` made this client act as an agent. */
  agentId: string | null = null;
  /** While set and up, calls go over it instead of HTTP. */
  route: CallRoute | null = null;

  constructor(options: ClientOptions = {}) {
    super();
    this.config = resolveConfig(options);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = new RetryPolicy(options.retries ?? DEFAULT_RETRIES);
  }

  get apiKey(): string | null {
    return this.config.apiKey;
  }

  headers(): Record<string, string> {
    return this.config.apiKey ? { Authorization: `Bearer ${this.config.apiKey}` } : {};
  }

  /** One tool call (what every generated method ends in): over the runtime's socket while it is up, else HTTP. */
  async invoke(tool: string, args: Record<string, unknown>, retrySafe: boolean, signal?: AbortSignal): Promise<unknown> {
    const safe = retrySafe || args.idempotency_key != null;
    if (this.route?.isUp) {
      try {
        return await this.route.call(tool, args, safe);
      } catch (error) {
        if (!(error instanceof TooLarge)) throw error; // else: more than the hub takes in one frame, HTTP takes it
      }
    }
    return this.post(tool, args, safe, signal);
  }

  /** Call any tool by name (`agora.…`, or an imported `ext.…` one) and get its result as plain JSON. */
  call(tool: string, args: Record<string, unknown> = {}): Promise<unknown> {
    return this.post(tool, args, false);
  }

  /** Register (or re-register) an agent, then act as it: its token replaces the key that registered it. */
  async register(agentName: string, options?: Omit<RegisterAgent, "agent_name">): Promise<Registration> {
    const registration = await this.agents.register(agentName, options);
    this.agentId = registration.agent_id;
    if (registration.agent_token) {
      this.config = { url: this.config.url, apiKey: registration.agent_token, keySource: "registration" };
    }
    return registration;
  }

  private async post(tool: string, args: Record<string, unknown>, retrySafe: boolean, signal?: AbortSignal): Promise<unknown> {
    const body = JSON.stringify(args);
    // A long poll must not be cut off by the client's own timeout.
    const timeoutMs = this.timeoutMs + (typeof args.wait === "number" ? args.wait * 1000 : 0);
    for (let attempt = 0; ; attempt++) {
      let delay: number | null;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        const response = await fetch(this.config.url + toolPath(tool), {
          method: "POST",
          body,
          headers: { ...this.headers(), "Content-Type": "application/json" },
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        const answer = await readBody(response);
        if (response.ok) return answer;
        delay = this.retry.afterResponse(attempt, response.status, answer, response.headers.get("retry-after"));
        if (delay === null) throw errorFromBody(response.status, answer);
      } catch (error) {
        if (error instanceof AgoraError || signal?.aborted) throw error;
        delay = this.retry.afterError(attempt, error, retrySafe);
        if (delay === null) throw this.unreachable(error);
      }
      await sleep(delay, signal);
    }
  }

  private unreachable(error: unknown): Unavailable {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    return new Unavailable(`cannot reach the hub at ${this.config.url}: ${cause}`, { cause: error });
  }

  /**
   * Live events over the WebSocket (`for await (const event of client.events(["message_received"]))`), until `signal`
   * aborts or the loop breaks: reconnects with backoff and resumes after the last event taken. A refusal of the hub
   * (a bad key or filter) is thrown; a hub that is down or restarting is waited for.
   */
  async *events(types?: string[], options: EventOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    let resume = options.resume ?? null;
    const { signal } = options;
    for (let attempt = 0; !signal?.aborted; attempt++) {
      let socket: Awaited<ReturnType<typeof openSocket>> | null = null;
      try {
        socket = await openSocket(streamUrl(this.config.url, { types, resume, visibilityTimeout: options.visibilityTimeout }), this.headers());
        const { frames } = socket;
        for (let frame = await frames.next(signal); frame !== null; frame = await frames.next(signal)) {
          attempt = 0;
          if (frame.type === "ready") resume ??= String(frame.id); // nothing taken yet: resume from here
          for (const event of eventsOf(frame)) {
            yield event;
            resume = event.id; // taken: a reconnect starts after it
          }
        }
      } catch (error) {
        if (error instanceof HandshakeRefused && error.status < 502 && error.status !== 503) {
          throw error.refusal ?? errorFromBody(error.status, null);
        }
        if (error instanceof AgoraError) throw error;
      } finally {
        socket?.ws.terminate();
      }
      await sleep(this.retry.delay(Math.min(attempt, 5)), signal);
    }
  }
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
