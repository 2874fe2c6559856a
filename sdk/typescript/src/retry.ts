/** Exponential backoff with full jitter, and when a failed attempt may be made again. */

export const DEFAULT_RETRIES = 3;

/** Failures of a connection that never carried the request: the hub cannot have acted on it. */
const NEVER_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "UND_ERR_CONNECT_TIMEOUT"]);

export class RetryPolicy {
  constructor(
    readonly retries: number = DEFAULT_RETRIES,
    readonly baseMs: number = 200,
    readonly capMs: number = 5000,
  ) {}

  delay(attempt: number): number {
    return Math.random() * Math.min(this.capMs, this.baseMs * 2 ** attempt);
  }

  /** After a transport failure: the wait before the next attempt, or null to give up. A request the hub may have
   * carried out is sent again only when `retrySafe` (a read-only tool, or one with an idempotency key). */
  afterError(attempt: number, error: unknown, retrySafe: boolean): number | null {
    if (attempt >= this.retries || !(neverSent(error) || retrySafe)) return null;
    return this.delay(attempt);
  }

  /** After an answer: a 429 (rate limited) or 503 (unavailable) was refused before anything ran, so it is always safe
   * to send again, after the time the hub asks for (`details.retry_after_seconds`, else `Retry-After`). */
  afterResponse(attempt: number, status: number, body: unknown, retryAfterHeader: string | null): number | null {
    if ((status !== 429 && status !== 503) || attempt >= this.retries) return null;
    const asked = retryAfterSeconds(body, retryAfterHeader);
    return asked === null ? this.delay(attempt) : Math.min(this.capMs, asked * 1000 * (1 + Math.random() * 0.1));
  }
}

function retryAfterSeconds(body: unknown, header: string | null): number | null {
  const wait = (body as { error?: { details?: { retry_after_seconds?: unknown } } } | null)?.error?.details?.retry_after_seconds;
  if (typeof wait === "number" && wait >= 0) return wait;
  return header !== null && /^\d+$/.test(header) ? Number(header) : null;
}

/** Whether `error` (from `fetch`) failed before the request left: its cause is a refused or unreachable connection. */
export function neverSent(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (NEVER_SENT.has(String((e as NodeJS.ErrnoException).code))) return true;
  }
  return false;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
