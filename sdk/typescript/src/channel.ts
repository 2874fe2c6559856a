/**
 * `Channel`: one held WebSocket per agent runtime, carrying everything the runtime and the hub say to each other.
 *
 * In: pushed messages (the live stream, resumed after a reconnect where it stopped) and pushed tasks (after `take`,
 * never more than the credit given). Out: tool calls, answered on the socket once their writes are durable. Frames
 * queued in the same turn of the event loop go in one WebSocket frame (`batch`), so a handler's credit and outcome
 * travel together. A call sent but not answered when the connection broke is sent again on the next connection when
 * `resend` says that is harmless (a fenced outcome, a lease renewal, an ack), with a key that lets the hub answer it
 * with the first run's answer; otherwise its caller hears `Unavailable`, as over HTTP.
 */

import { randomBytes } from "node:crypto";

import { type AgoraClient, type CallRoute, TooLarge } from "./client.js";
import { AgoraError, Unavailable, errorFromBody } from "./errors.js";
import type { StreamEvent } from "./events.js";
import type { Claim } from "./generated/types.js";
import { RetryPolicy, sleep } from "./retry.js";
import { HandshakeRefused, type WebSocket, openSocket, streamUrl } from "./socket.js";
import type { FrameQueue } from "./frames.js";
import type { Logger } from "./logger.js";

const STREAM_CONTROL = new Set(["ready", "pong", "acked", "taking"]);
const HUB_FRAME_BYTES = 256 * 1024; // what a hub takes in one frame unless its `ready` frame says otherwise
const BATCH_OVERHEAD = '{"type":"batch","frames":[]}'.length;

/** The hub (or a proxy before it) will not hold this WebSocket: work goes over HTTP instead. */
export class ChannelRefused extends Error {}

/** What a new connection declares (`take` frame fields), or null to take no tasks. */
export type Take = { task_types: string[]; capacity: number; credit: number; lease_seconds: number } | null;

export interface ChannelOptions {
  /** Stream event types (null: none, a socket for calls and tasks only). */
  types: string[] | null;
  visibilityTimeout: number | null;
  /** At most this many messages pushed before `credit({messages})` gives room. */
  messages: number | null;
  onEvent(event: StreamEvent): void;
  onTasks(claims: Claim[]): void;
  /** Asked on every new connection, so the credit given is the room the runtime has then. */
  take(): Take;
  onDown(): void;
  log: Logger;
}

interface PendingCall {
  frame: string;
  resolve(result: unknown): void;
  reject(error: unknown): void;
  resend: boolean;
  sentOn: number; // the connection it went out on (0: not yet)
}

export class Channel implements CallRoute {
  /** Connections opened so far. */
  connections = 0;
  private ws: WebSocket | null = null;
  private up = false;
  private upWaiters: (() => void)[] = [];
  private resume: string | null = null;
  private readonly calls = new Map<number, PendingCall>();
  private nextRef = 1;
  private readonly keys = randomBytes(8).toString("hex"); // with a ref, a call's key, unique to this runtime
  private outbox: string[] = [];
  private flushing = false;
  private stopping = false;
  private maxFrame = HUB_FRAME_BYTES;
  private readonly closed = new AbortController();

  constructor(
    private readonly client: AgoraClient,
    private readonly options: ChannelOptions,
  ) {}

  get isUp(): boolean {
    return this.up;
  }

  /** Resolves once a connection is up (at once if one is). */
  whenUp(): Promise<void> {
    return this.up ? Promise.resolve() : new Promise((resolve) => this.upWaiters.push(resolve));
  }

  /**
   * Hold the connection until `close`, reconnecting with backoff. Rejects with `ChannelRefused` after `refusedAfter`
   * handshakes in a row that were answered but not as WebSockets (a proxy that drops them, a hub without `/ws`), and
   * with the hub's error for a key it refuses.
   */
  async run(refusedAfter = 3): Promise<void> {
    const backoff = new RetryPolicy(0, 250, 5000);
    let refused = 0;
    let why = "";
    for (let attempt = 0; !this.closed.signal.aborted; attempt++) {
      try {
        const { ws, frames } = await openSocket(this.target(), this.client.headers());
        attempt = refused = 0;
        await this.hold(ws, frames);
      } catch (error) {
        if (error instanceof HandshakeRefused) {
          if (error.refusal !== null && error.status < 500) throw error.refusal; // a revoked key, a bad filter
          if (error.status < 500) [refused, why] = [refused + 1, error.message];
        } else if (error instanceof AgoraError) {
          throw error;
        } else {
          this.options.log.debug(`the connection to the hub broke (${String(error)}); reconnecting`);
        }
      }
      if (refused >= refusedAfter) throw new ChannelRefused(why);
      await sleep(backoff.delay(Math.min(attempt, 5)), this.closed.signal);
    }
  }

  /** End the connection for good (calls still unanswered hear `Unavailable`). */
  close(): void {
    this.stopping = true;
    this.closed.abort();
    this.ws?.close(1000);
    this.dropUnsafe();
  }

  private target(): string {
    const { types, visibilityTimeout, messages } = this.options;
    return streamUrl(this.client.config.url, { types: types ?? ["none"], resume: this.resume, visibilityTimeout, messages });
  }

  private async hold(ws: WebSocket, frames: FrameQueue): Promise<void> {
    try {
      const ready = await frames.next(this.closed.signal); // where the stream stands, how large a frame may be
      if (ready === null) return;
      this.resume ??= String(ready.id);
      this.maxFrame = Number(ready.max_frame_bytes) || HUB_FRAME_BYTES;
      this.connections += 1;
      this.ws = ws;
      const take = this.options.take();
      if (take !== null) this.send({ type: "take", ...take });
      for (const call of this.calls.values()) { // unanswered calls of the last connection, and calls made meanwhile
        call.sentOn = this.connections;
        this.queue(call.frame);
      }
      this.up = true;
      for (const resolve of this.upWaiters.splice(0)) resolve();
      for (let frame = await frames.next(this.closed.signal); frame !== null; frame = await frames.next(this.closed.signal)) {
        try {
          this.received(frame);
        } catch (error) { // one frame this runtime cannot take must not end the channel
          this.options.log.error(`a frame from the hub could not be taken: ${JSON.stringify(frame).slice(0, 200)}`, error);
        }
      }
    } finally {
      this.up = false;
      this.ws = null;
      ws.terminate();
      this.outbox = [];
      this.dropUnsafe();
      this.options.onDown();
    }
  }

  /** Calls sent on the connection that broke and not safe to send twice (all of them once the runtime stops: there
   * may be no next connection): their callers hear it. */
  private dropUnsafe(): void {
    for (const [ref, call] of this.calls) {
      if ((call.sentOn && !call.resend) || this.stopping) {
        this.calls.delete(ref);
        call.reject(new Unavailable("the connection to the hub broke before the call was answered"));
      }
    }
  }

  private send(frame: Record<string, unknown>): void {
    this.queue(JSON.stringify(frame));
  }

  /** Frames queued in this turn of the event loop leave together, in as few WebSocket frames as the hub takes. */
  private queue(frame: string): void {
    this.outbox.push(frame);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      const frames = this.outbox;
      this.outbox = [];
      if (this.ws === null) return;
      for (const group of groups(frames, this.maxFrame - BATCH_OVERHEAD)) {
        this.ws.send(group.length === 1 ? group[0] : `{"type":"batch","frames":[${group.join(",")}]}`);
      }
    });
  }

  /** Call a tool over the socket; its result as plain JSON. Rejects with the hub's `AgoraError`, or `Unavailable` when
   * no connection is open or it broke before the answer (unless `resend`: then it waits for the next). */
  call(tool: string, args: Record<string, unknown>, resend: boolean): Promise<unknown> {
    if (this.ws === null) return Promise.reject(new Unavailable("no connection to the hub's WebSocket"));
    const ref = this.nextRef++;
    // A resent call carries a key: the hub answers it with the first run's answer (the tasks a claim_next took, say).
    const frame = JSON.stringify(resend ? { type: "call", ref, tool, args, key: `${this.keys}-${ref}` } : { type: "call", ref, tool, args });
    if (Buffer.byteLength(frame) > this.maxFrame) return Promise.reject(new TooLarge(`${frame.length} bytes`));
    return new Promise((resolve, reject) => {
      this.calls.set(ref, { frame, resolve, reject, resend, sentOn: this.connections });
      this.queue(frame);
    });
  }

  /** No more tasks on this or any later connection (what was pushed meanwhile still arrives); calls left unanswered
   * when the connection breaks from now on are not kept for the next one. */
  stopTaking(): void {
    this.options.take = () => null;
    this.stopping = true;
    if (this.ws === null) this.dropUnsafe();
    else this.send({ type: "take", capacity: 1, credit: 0 });
  }

  /** Room for more pushed tasks or messages (nothing while disconnected: a new connection starts afresh). */
  credit(room: { tasks?: number; messages?: number }): void {
    const tasks = room.tasks ?? 0;
    const messages = room.messages ?? 0;
    if (this.ws !== null && (tasks > 0 || messages > 0)) this.send({ type: "credit", tasks, messages });
  }

  private received(frame: Record<string, unknown>): void {
    if (frame.type === "batch") for (const one of frame.events as Record<string, unknown>[]) this.one(one);
    else this.one(frame);
  }

  private one(frame: Record<string, unknown>): void {
    const call = typeof frame.ref === "number" ? this.calls.get(frame.ref) : undefined;
    if ((frame.type === "result" || frame.type === "error") && call !== undefined) {
      this.calls.delete(frame.ref as number);
      if (frame.type === "result") call.resolve(frame.result);
      else call.reject(errorFromBody(Number(frame.status) || 500, { error: frame }));
    } else if (frame.type === "tasks") {
      this.options.onTasks(frame.claims as Claim[]);
    } else if (frame.type === "error") {
      this.options.log.warn(`hub: ${String(frame.message)} (${String(frame.code)})`);
    } else if (!STREAM_CONTROL.has(String(frame.type))) {
      const event = frame as unknown as StreamEvent;
      this.options.onEvent(event);
      this.resume = event.id; // handed over: a reconnect starts after it
    }
  }
}

/** Frames in order, grouped so that each group's batch frame stays within `most` bytes. */
function groups(frames: string[], most: number): string[][] {
  const out: string[][] = [];
  let size = most + 1;
  for (const frame of frames) {
    const bytes = Buffer.byteLength(frame);
    if (size + bytes + 1 > most) {
      out.push([]);
      size = 0;
    }
    (out.at(-1) as string[]).push(frame);
    size += bytes + 1;
  }
  return out;
}
