/**
 * Agora's TypeScript SDK: talk to a hub from Node (`AgoraClient`: every catalog tool as a typed method), and run an
 * agent from a few handlers (`Agent`). The request and result types are the hub's own, generated from its catalog.
 */

export { Agent, IncomingMessage, TaskRun, type AgentOptions, type MessageHandler, type TaskHandler } from "./agent.js";
export { Channel, ChannelRefused } from "./channel.js";
export { AgoraClient, DEFAULT_TIMEOUT_MS, toolPath, type CallRoute, type ClientOptions, type EventOptions } from "./client.js";
export { DEFAULT_URL, resolveConfig, type ClientConfig, type ConnectionOptions } from "./config.js";
export {
  AgoraError, Conflict, DeadlineExceeded, FailedPrecondition, Internal, InvalidArgument, MethodNotAllowed, NotFound,
  BudgetExceeded, PayloadTooLarge, PermissionDenied, RateLimited, StorageFull, Unauthenticated, Unavailable, UnsupportedMediaType,
  errorFromBody,
  type ErrorDetails,
} from "./errors.js";
export type { StreamEvent } from "./events.js";
export * from "./generated/tools.js";
export type * from "./generated/types.js";
export type { Logger } from "./logger.js";
export { TaskOutput, Tasks, type OutputChunk, type StreamOptions } from "./output.js";
export { RetryPolicy } from "./retry.js";
