/**
 * The hub's one error hierarchy, rebuilt on the client: every error has a machine-readable `code`, a human `message`,
 * `details` and the HTTP `status` it came with. `catch (e) { if (e instanceof NotFound) … }`.
 */

export type ErrorDetails = Record<string, unknown>;

export class AgoraError extends Error {
  static readonly code: string = "internal";
  static readonly httpStatus: number = 500;
  readonly details: ErrorDetails;
  readonly status: number;

  constructor(message: string, options: { details?: ErrorDetails; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const kind = new.target as typeof AgoraError;
    this.name = kind.name;
    this.details = options.details ?? {};
    this.status = options.status ?? kind.httpStatus;
  }

  /** The hub's error code: `not_found`, `conflict`, … */
  get code(): string {
    return (this.constructor as typeof AgoraError).code;
  }
}

export class InvalidArgument extends AgoraError {
  static override readonly code = "invalid_argument";
  static override readonly httpStatus = 400;
}
export class Unauthenticated extends AgoraError {
  static override readonly code = "unauthenticated";
  static override readonly httpStatus = 401;
}
export class PermissionDenied extends AgoraError {
  static override readonly code = "permission_denied";
  static override readonly httpStatus = 403;
}
export class NotFound extends AgoraError {
  static override readonly code = "not_found";
  static override readonly httpStatus = 404;
}
export class MethodNotAllowed extends AgoraError {
  static override readonly code = "method_not_allowed";
  static override readonly httpStatus = 405;
}
export class Conflict extends AgoraError {
  static override readonly code = "conflict";
  static override readonly httpStatus = 409;
}
export class FailedPrecondition extends AgoraError {
  static override readonly code = "failed_precondition";
  static override readonly httpStatus = 409;
}
/** The customer's budget (or an instance's cap) has nothing left for this; `details` say what is left and when it resets. */
export class BudgetExceeded extends AgoraError {
  static override readonly code = "budget_exceeded";
  static override readonly httpStatus = 402;
}
export class PayloadTooLarge extends AgoraError {
  static override readonly code = "payload_too_large";
  static override readonly httpStatus = 413;
}
export class UnsupportedMediaType extends AgoraError {
  static override readonly code = "unsupported_media_type";
  static override readonly httpStatus = 415;
}
export class RateLimited extends AgoraError {
  static override readonly code = "rate_limited";
  static override readonly httpStatus = 429;
}
export class Internal extends AgoraError {
  static override readonly code = "internal";
  static override readonly httpStatus = 500;
}
export class Unavailable extends AgoraError {
  static override readonly code: string = "unavailable"; // (a string: StorageFull narrows it)
  static override readonly httpStatus: number = 503;
}
/** The hub's disk is full: writes are refused until space is freed (reads go on). Try again later. */
export class StorageFull extends Unavailable {
  static override readonly code = "storage_full";
  static override readonly httpStatus = 507;
}
export class DeadlineExceeded extends AgoraError {
  static override readonly code = "deadline_exceeded";
  static override readonly httpStatus = 504;
}

const BY_CODE: ReadonlyMap<string, typeof AgoraError> = new Map(
  [
    InvalidArgument, Unauthenticated, PermissionDenied, NotFound, MethodNotAllowed, Conflict, FailedPrecondition,
    BudgetExceeded, PayloadTooLarge, UnsupportedMediaType, RateLimited, Internal, Unavailable, StorageFull,
    DeadlineExceeded,
  ].map((kind) => [kind.code, kind]),
);

/** The typed error for an error answer: `{"error": {"code", "message", "details"}}` with its HTTP status. */
export function errorFromBody(status: number, body: unknown): AgoraError {
  const error = isObject(body) ? body.error : undefined;
  if (!isObject(error)) {
    return new AgoraError(`HTTP ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`.slice(0, 500), { status });
  }
  const kind = BY_CODE.get(String(error.code)) ?? AgoraError;
  const details = isObject(error.details) ? error.details : {};
  return new kind(String(error.message ?? ""), { details, status });
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
