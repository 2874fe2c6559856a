/**
 * `Agent`: declare a name, capabilities and handlers, then `run()`.
 *
 * The runtime registers (idempotently: the same name is the same agent), heartbeats, takes tasks under leases it
 * renews while a handler runs, completes a task with the handler's return value or fails it with the error's text
 * (back to the queue while attempts remain), takes messages and acks each only after its handler returned, runs at most
 * `concurrency` task handlers and as many message handlers at once, rides out a hub restart (every loop retries with
 * backoff, the stream resumes where it stopped) and stops gracefully on SIGINT/SIGTERM. The same semantics as the
 * Python runtime (`agora_sdk/agent.py`).
 *
 * By default everything goes over one held WebSocket (`Channel`): the hub pushes messages and tasks — as many tasks as
 * the runtime has free slots, each slot's credit given back when its handler returns — and outcomes (each carrying
 * `claim_next`, so reporting a task and taking the next is one transaction), lease renewals, acks and the handlers' own
 * calls go back on it. A hub or proxy that refuses the WebSocket sends the runtime to HTTP: claims parked in
 * `task.claim_batch(wait)` and messages from `messaging.receive(wait)`.
 */

import { Channel, ChannelRefused, type Take } from "./channel.js";
import { AgoraClient } from "./client.js";
import type { ConnectionOptions } from "./config.js";
import { AgoraError, Unavailable } from "./errors.js";
import type { StreamEvent } from "./events.js";
import { Coalescer, Queue, Slots } from "./flow.js";
import type {
  Claim, ClaimedBatch, EmitOutput, Inbox, Lease, Message, MessageReceipt, Performative, RegisterAgent, SendMessage, Task, UpdatedBatch,
} from "./generated/types.js";
import { type Logger, consoleLogger } from "./logger.js";
import { TaskOutput } from "./output.js";
import { RetryPolicy, sleep } from "./retry.js";

const MESSAGE_TYPES = ["message_received", "broadcast_message", "topic_message"];
const CLAIM_WAIT = 20; // seconds a parked claim waits for work before asking again
const MAX_CLAIM = 100; // tasks one claim takes at most (agora.task.claim_batch's limit)
const MAX_REPORT = 100; // task outcomes one report carries at most (agora.task.update_batch's limit)
const MAX_ACK = 1000; // message ids one ack carries at most (agora.messaging.ack's limit)

export type TaskHandler = (task: TaskRun) => unknown;
export type MessageHandler = (message: IncomingMessage) => unknown;

export interface AgentOptions extends ConnectionOptions {
  capabilities?: string[];
  description?: string;
  serviceTier?: "basic" | "premium" | "enterprise";
  metadata?: Record<string, unknown>;
  /** Task handlers running at once, and as many message handlers (default 4). */
  concurrency?: number;
  /** A claimed task's lease, renewed every third of it while its handler runs (default 30). */
  leaseSeconds?: number;
  /** Default 30. */
  heartbeatSeconds?: number;
  /** A message handed to a handler stays hidden from other deliveries this long unless acked (default 60). */
  visibilityTimeout?: number;
  /** A message whose handler failed this many times is acked and dropped (default 5). */
  maxDeliveries?: number;
  /** On stop, running handlers get this long to finish (default 30). */
  shutdownGraceSeconds?: number;
  /** false: HTTP only, claims and receives parked on the hub (default: the WebSocket channel). */
  channel?: boolean;
  logger?: Logger;
}

/** A claimed task handed to an `onTask` handler: the `Task`'s fields (its `progress` field is `task.task.progress`), its
 * `lease`, `progress(percent)` and `emit(text)`. */
export interface TaskRun extends Omit<Task, "progress"> {}
export class TaskRun {
  readonly #agent: Agent;
  readonly task: Task;
  readonly lease: Lease;
  readonly output: TaskOutput;

  constructor(agent: Agent, task: Task, lease: Lease) {
    const { progress: _progress, ...fields } = task;
    Object.assign(this, fields);
    this.#agent = agent;
    this.task = task;
    this.lease = lease;
    this.output = new TaskOutput((chunks) =>
      agent.client.task.emit(task.task_id, lease.token, chunks as EmitOutput["chunks"]),
    );
  }

  /** Report progress (0–100); it also renews the lease. */
  progress(percent: number, notes?: string): Promise<Task> {
    return this.#agent.renew(this, percent, notes);
  }

  /** Output while the task runs (an LLM's next tokens, a log line), in order, to whoever watches it
   * (`client.task.stream`, the console's task page). Chunks travel in batches while the handler goes on; its result is
   * reported only once every chunk before it is stored. */
  emit(text: string): Promise<void> {
    return this.output.add({ text });
  }

  /** A structured chunk of output (any JSON), in order with the text. */
  emitData(data: unknown): Promise<void> {
    return this.output.add({ data });
  }
}

/** A message handed to an `onMessage` handler: the `Message`'s fields, plus `reply`. */
export interface IncomingMessage extends Message {}
export class IncomingMessage {
  readonly #agent: Agent;
  readonly message: Message;

  constructor(agent: Agent, message: Message) {
    Object.assign(this, message);
    this.#agent = agent;
    this.message = message;
  }

  /** Answer the sender in the same conversation (`correlation.reply_to` is this message). */
  reply(content: unknown, options: Omit<SendMessage, "to_agent" | "content"> = {}): Promise<MessageReceipt> {
    const conversation = this.message.correlation?.conversation_id ?? null;
    return this.#agent.client.messaging.send(this.message.from_agent, content, {
      performative: "inform",
      ...options,
      correlation: options.correlation ?? { reply_to: this.message.message_id, conversation_id: conversation as string | null },
    });
  }
}

interface Route {
  handler: MessageHandler;
  messageType?: string;
  performative?: Performative;
}

type Outcome = { task_id: string; lease_token: string; status: "completed" | "failed"; result?: unknown; notes?: string; retry?: boolean };

export class Agent {
  readonly name: string;
  readonly client: AgoraClient;
  readonly concurrency: number;
  readonly leaseSeconds: number;
  /** The held WebSocket, while the runtime works over it. */
  channel: Channel | null = null;
  agentId: string | null = null;
  private readonly profile: Omit<RegisterAgent, "agent_name">;
  private readonly options: AgentOptions;
  private readonly log: Logger;
  private readonly taskHandlers = new Map<string | null, TaskHandler>();
  private readonly routes: Route[] = [];
  private readonly taskSlots: Slots;
  private readonly messageSlots: Slots;
  private readonly backoff = new RetryPolicy(0, 250, 5000);
  private readonly stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly outcomes = new Coalescer<Outcome>((o) => this.sendOutcomes(o), MAX_REPORT);
  private readonly acks = new Coalescer<string>((ids) => this.sendAcks(ids), MAX_ACK);
  private readonly incoming = new Queue<Message>();
  private lent = 0; // task slots given to the hub as credit on the open channel
  private channelLoop: Promise<void> | null = null;
  private stopped: Promise<void> | null = null;
  private fatal: unknown = null;

  constructor(name: string, options: AgentOptions = {}) {
    this.name = name;
    this.options = options;
    this.profile = {
      capabilities: options.capabilities ?? [],
      description: options.description ?? "",
      service_tier: options.serviceTier ?? "basic",
      metadata: options.metadata ?? {},
    };
    this.client = new AgoraClient(options);
    this.concurrency = options.concurrency ?? 4;
    this.leaseSeconds = options.leaseSeconds ?? 30;
    this.log = options.logger ?? consoleLogger;
    this.taskSlots = new Slots(this.concurrency);
    this.messageSlots = new Slots(this.concurrency);
  }

  // -- declaring handlers ---------------------------------------------------------------------------------------------

  /** Handle tasks of `taskType` (every type without one). The handler's return value is the task's result. */
  onTask(handler: TaskHandler): this;
  onTask(taskType: string, handler: TaskHandler): this;
  onTask(first: string | TaskHandler, handler?: TaskHandler): this {
    if (typeof first === "function") this.taskHandlers.set(null, first);
    else this.taskHandlers.set(first, handler as TaskHandler);
    return this;
  }

  /** Handle messages (optionally only of one `messageType` or `performative`); each is acked once its handler returned. */
  onMessage(handler: MessageHandler): this;
  onMessage(filter: { messageType?: string; performative?: Performative }, handler: MessageHandler): this;
  onMessage(first: MessageHandler | { messageType?: string; performative?: Performative }, handler?: MessageHandler): this {
    this.routes.push(typeof first === "function" ? { handler: first } : { ...first, handler: handler as MessageHandler });
    return this;
  }

  // -- running --------------------------------------------------------------------------------------------------------

  /** Run until SIGINT or SIGTERM (or `stop()`), then let running handlers finish (up to `shutdownGraceSeconds`). */
  async run(): Promise<void> {
    const onSignal = (): void => void this.stop();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      await this.start();
      await new Promise<void>((resolve) => this.stopping.signal.addEventListener("abort", () => resolve(), { once: true }));
      await this.stop();
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (this.fatal !== null) throw this.fatal;
  }

  /** Register and start taking work; resolves once the agent is registered. */
  async start(): Promise<void> {
    const registration = await this.retrying(() => this.client.register(this.name, this.profile), "register");
    this.agentId = registration.agent_id;
    this.loops.push(this.heartbeats());
    if (this.options.channel !== false && (this.taskHandlers.size > 0 || this.routes.length > 0)) {
      this.channel = new Channel(this.client, {
        types: this.routes.length > 0 ? MESSAGE_TYPES : null,
        visibilityTimeout: this.options.visibilityTimeout ?? 60,
        messages: this.routes.length > 0 ? this.concurrency : null,
        onEvent: (event) => this.pushedEvent(event),
        onTasks: (claims) => this.pushedTasks(claims),
        take: () => this.take(),
        onDown: () => this.channelDown(),
        log: this.log,
      });
      this.client.route = this.channel;
      this.channelLoop = this.holdChannel(this.channel);
      if (this.routes.length > 0) this.loops.push(this.dispatchMessages());
    } else {
      this.startHttpLoops();
    }
    this.log.info(`agent ${this.name} (${this.agentId}) is running`);
  }

  /** Stop taking work, let running handlers finish (up to `shutdownGraceSeconds`), then close. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping.abort(); // parked polls, waits for a slot or a message, heartbeats: all end now
    this.channel?.stopTaking(); // running handlers still answer on it
    const grace = (this.options.shutdownGraceSeconds ?? 30) * 1000;
    const waited = new AbortController(); // its timer must not hold the process once the handlers are done
    await Promise.race([Promise.allSettled([...this.loops, ...this.running]), sleep(grace, waited.signal)]);
    waited.abort();
    this.channel?.close(); // after the handlers' last answers went out on it
    await this.channelLoop;
    this.log.info(`agent ${this.name} stopped`);
  }

  private startHttpLoops(): void {
    if (this.taskHandlers.size > 0) this.loops.push(this.claims());
    if (this.routes.length > 0) this.loops.push(this.receives());
  }

  private async holdChannel(channel: Channel): Promise<void> {
    try {
      await channel.run();
    } catch (error) {
      if (error instanceof ChannelRefused) {
        this.log.warn(`the hub's WebSocket is out of reach (${error.message}): taking work over HTTP`);
        this.client.route = this.channel = null;
        if (!this.stopping.signal.aborted) this.startHttpLoops();
        return;
      }
      this.log.error(`agent ${this.name}: the hub refused the connection: ${String(error)}`);
      this.fatal = error; // a revoked key, say: nothing more will work
      void this.stop();
    }
  }

  /** Call until it succeeds while the hub is unreachable (a restart), backing off; other errors are thrown. */
  private async retrying<T>(call: () => Promise<T>, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof Unavailable) || this.stopping.signal.aborted) throw error;
        this.log.warn(`${what}: hub unavailable (${error.message}); retrying`);
        await sleep(this.backoff.delay(Math.min(attempt, 5)));
      }
    }
  }

  private async heartbeats(): Promise<void> {
    const every = (this.options.heartbeatSeconds ?? 30) * 1000;
    for (;;) {
      await sleep(every, this.stopping.signal);
      if (this.stopping.signal.aborted) return;
      try {
        await this.client.agents.heartbeat({ status: this.running.size > 0 ? "busy" : "active" });
      } catch (error) {
        if (!(error instanceof AgoraError)) throw error;
      }
    }
  }

  // -- tasks ----------------------------------------------------------------------------------------------------------

  /** What a new connection declares: the task types handled, and every slot free now as credit. */
  private take(): Take {
    if (this.taskHandlers.size === 0 || this.stopping.signal.aborted) return null;
    this.lent += this.taskSlots.takeFree();
    return { task_types: this.wantedTypes(), capacity: this.concurrency, credit: this.lent, lease_seconds: this.leaseSeconds };
  }

  private pushedTasks(claims: Claim[]): void {
    this.lent -= claims.length; // the hub pushes no more than the credit given
    if (this.stopping.signal.aborted) { // pushed while we said we stop: back to the queue, no attempt spent
      this.taskSlots.give(claims.length);
      this.startHandler(() => this.giveBack(claims), null);
      return;
    }
    for (const claim of claims) this.startHandler(() => this.work(new TaskRun(this, claim.task, claim.lease)), null);
  }

  private async giveBack(claims: Claim[]): Promise<void> {
    const updates = claims.map((c) => ({ task_id: c.task.task_id, lease_token: c.lease.token, status: "pending" }));
    try {
      await this.client.invoke("agora.task.update_batch", { updates }, true);
    } catch (error) {
      if (!(error instanceof AgoraError)) throw error; // else their leases run out and they go back all the same
    }
  }

  /** Credit given on a broken connection is void: its slots are free again (the next `take` lends them). */
  private channelDown(): void {
    this.taskSlots.give(this.lent);
    this.lent = 0;
  }

  /** Task slots free again: given to the hub as credit on the open channel, else to the HTTP claim loop. */
  private slotsBack(count: number): void {
    if (count <= 0) return;
    if (this.channel?.isUp && !this.stopping.signal.aborted) {
      this.lent += count;
      this.channel.credit({ tasks: count });
    } else {
      this.taskSlots.give(count);
    }
  }

  private wantedTypes(): string[] {
    return this.taskHandlers.has(null) ? [] : [...this.taskHandlers.keys()].filter((t): t is string => t !== null);
  }

  /** Without the channel: one claim at a time, parked until work comes, for as many tasks as task slots are free. */
  private claims(): Promise<void> {
    return this.poll(
      this.taskSlots,
      async (free) => {
        const args = { wait: CLAIM_WAIT, lease_seconds: this.leaseSeconds, max_tasks: free, task_types: this.wantedTypes() };
        return ((await this.client.invoke("agora.task.claim_batch", args, false, this.stopping.signal)) as ClaimedBatch).claims;
      },
      (claim) => this.startHandler(() => this.work(new TaskRun(this, claim.task, claim.lease)), null),
      "claim",
    );
  }

  /** Long polls parked on the hub for as many items as `slots` are free, each item started in its slot; a failed poll
   * is retried with backoff. */
  private async poll<T>(slots: Slots, fetch: (free: number) => Promise<T[]>, start: (item: T) => void, what: string): Promise<void> {
    let attempt = 0;
    while (!this.stopping.signal.aborted) {
      const free = await slots.take(MAX_CLAIM, this.stopping.signal);
      if (free === 0) return;
      let items: T[];
      try {
        items = await fetch(free);
      } catch (error) {
        slots.give(free);
        if (this.stopping.signal.aborted) return;
        if (!(error instanceof AgoraError)) throw error;
        this.log.warn(`${what} failed (${error.message}); retrying`);
        await sleep(this.backoff.delay(Math.min(attempt++, 5)), this.stopping.signal);
        continue;
      }
      attempt = 0;
      for (const item of items) start(item);
      slots.give(free - items.length);
    }
  }

  private async work(run: TaskRun): Promise<void> {
    const handler = this.taskHandlers.get(run.task_type) ?? this.taskHandlers.get(null);
    const renewing = new AbortController();
    void this.keepLease(run, renewing.signal);
    let outcome: Outcome;
    try {
      if (handler === undefined) throw new Error(`no handler for task type ${run.task_type}`);
      const result = (await handler(run)) ?? null;
      await run.output.flush(); // its output is all there before the task is seen to end
      outcome = { task_id: run.task_id, lease_token: run.lease.token, status: "completed", result };
    } catch (error) { // the handler's failure is the task's failure
      this.log.error(`task ${run.task_id} failed`, error);
      const notes = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      outcome = { task_id: run.task_id, lease_token: run.lease.token, status: "failed", notes: notes.slice(0, 4000), retry: true };
    } finally {
      renewing.abort();
    }
    await this.report(outcome);
  }

  /** Hand a task's outcome to the hub, with those of other tasks that finish meanwhile. With the channel, the task's
   * slot rides along: the report takes the next task in the same call (`claim_next`). */
  private async report(outcome: Outcome): Promise<void> {
    if (this.channel === null) this.taskSlots.give();
    const error = await this.outcomes.put(outcome);
    if (error !== null) this.log.warn(`task ${outcome.task_id}: ${error}`); // the lease was lost: a newer claim counts
  }

  /** Report outcomes in one call (and take as many tasks as they free slots): why each changed nothing. */
  private async sendOutcomes(outcomes: Outcome[]): Promise<(string | null)[]> {
    const riding = this.channel !== null ? outcomes.length : 0;
    const args: Record<string, unknown> = { updates: outcomes, brief: true };
    if (riding > 0 && !this.stopping.signal.aborted) {
      args.claim_next = { max_tasks: riding, task_types: this.wantedTypes(), lease_seconds: this.leaseSeconds };
    }
    let answer: UpdatedBatch;
    try {
      answer = await this.retrying(() => this.client.invoke("agora.task.update_batch", args, true) as Promise<UpdatedBatch>, "task update");
    } catch (error) {
      this.slotsBack(riding);
      if (!(error instanceof AgoraError) || outcomes.length === 1) throw error;
      // Refused as a whole (one result too large for a request, say): each on its own, so one bad outcome never costs
      // the others theirs.
      const alone: (string | null)[] = [];
      for (const outcome of outcomes) alone.push(await this.sendAlone(outcome));
      return alone;
    }
    for (const claim of answer.claims) this.startHandler(() => this.work(new TaskRun(this, claim.task, claim.lease)), null);
    this.slotsBack(riding - answer.claims.length);
    return answer.results.map((r) => r.error?.message ?? null);
  }

  private async sendAlone(outcome: Outcome): Promise<string | null> {
    try {
      await this.retrying(() => this.client.invoke("agora.task.update", outcome, true), "task update");
      return null;
    } catch (error) {
      if (error instanceof AgoraError) return error.message;
      throw error;
    }
  }

  private async keepLease(run: TaskRun, done: AbortSignal): Promise<void> {
    for (;;) {
      await sleep((this.leaseSeconds / 3) * 1000, done);
      if (done.aborted) return;
      try {
        await this.renew(run);
      } catch (error) {
        if (error instanceof Unavailable) continue; // the hub is away: try again at the next turn
        this.log.warn(`task ${run.task_id}: lease not renewed (${String(error)})`);
        return;
      }
    }
  }

  /** Renew a task's lease, reporting progress (0–100) and notes if given. */
  renew(run: TaskRun, percent?: number, notes?: string): Promise<Task> {
    const args = { task_id: run.task_id, lease_token: run.lease.token, lease_seconds: this.leaseSeconds, progress: percent, notes };
    return this.client.invoke("agora.task.heartbeat", args, true) as Promise<Task>;
  }

  // -- messages -------------------------------------------------------------------------------------------------------

  private pushedEvent(event: StreamEvent): void {
    if (event.message !== undefined) this.incoming.put(event.message);
  }

  /** Messages pushed on the channel, each to a handler as a slot frees (the socket is never held up: the answers to
   * the handlers' own calls come on it). */
  private async dispatchMessages(): Promise<void> {
    for (;;) {
      const message = await this.incoming.next(this.stopping.signal);
      if (message === undefined || (await this.messageSlots.take(1, this.stopping.signal)) === 0) return;
      this.startHandler(() => this.deliver(new IncomingMessage(this, message)), this.messageSlots);
    }
  }

  /** Without the channel: messages from a receive parked on the hub, as many as message slots are free. */
  private receives(): Promise<void> {
    return this.poll(
      this.messageSlots,
      async (free) => {
        const args = { wait: CLAIM_WAIT, limit: free, visibility_timeout: this.options.visibilityTimeout ?? 60 };
        return ((await this.client.invoke("agora.messaging.receive", args, false, this.stopping.signal)) as Inbox).messages;
      },
      (message) => this.startHandler(() => this.deliver(new IncomingMessage(this, message)), this.messageSlots),
      "receive",
    );
  }

  private route(message: Message): Route | undefined {
    return this.routes.find(
      (r) => (r.messageType ?? message.message_type) === message.message_type && (r.performative ?? message.performative) === message.performative,
    );
  }

  private async deliver(incoming: IncomingMessage): Promise<void> {
    try {
      await this.handle(incoming);
    } finally {
      this.channel?.credit({ messages: 1 }); // its slot is free: room for the next pushed message
    }
  }

  private async handle(incoming: IncomingMessage): Promise<void> {
    const { message } = incoming;
    const route = this.route(message);
    if (route !== undefined) {
      try {
        await route.handler(incoming);
      } catch (error) { // unacked, it comes back after the visibility timeout
        this.log.error(`message ${message.message_id}: handler failed (delivery ${message.delivery_count})`, error);
        if (message.delivery_count < (this.options.maxDeliveries ?? 5)) return;
        this.log.error(`message ${message.message_id} dropped after ${message.delivery_count} deliveries`);
      }
    }
    const error = await this.acks.put(message.message_id);
    if (error !== null) this.log.warn(`message ${message.message_id}: ack refused: ${error}`);
  }

  /** Ack handled messages in one call; if it is refused (a message no longer in the inbox), each on its own. */
  private async sendAcks(ids: string[]): Promise<(string | null)[]> {
    try {
      await this.retrying(() => this.client.invoke("agora.messaging.ack", { message_ids: ids }, true), "ack");
      return ids.map(() => null);
    } catch (error) {
      if (!(error instanceof AgoraError)) throw error;
      if (ids.length === 1) return [error.message];
    }
    const each: (string | null)[] = [];
    for (const id of ids) each.push((await this.sendAcks([id]))[0] ?? null);
    return each;
  }

  // -- shared ---------------------------------------------------------------------------------------------------------

  /** Run one handler; `slots`: the slot its caller took, given back when it ends (null: the handler gives its own). */
  private startHandler(work: () => Promise<void>, slots: Slots | null): void {
    const running: Promise<void> = work()
      .catch((error: unknown) => this.log.error(`agent ${this.name}: a handler's report failed`, error))
      .finally(() => {
        this.running.delete(running);
        slots?.give();
      });
    this.running.add(running);
  }
}
