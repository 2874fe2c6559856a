/**
 * Opening the hub's `/ws` with the `ws` package. Node 20 has no stable `WebSocket`, and the standard one (Node 22's)
 * cannot send an `Authorization` header nor say how a refused handshake was answered; the runtime needs both: a hub
 * that refuses the key is final, a proxy that refuses WebSockets sends the runtime to HTTP.
 */

import WebSocket from "ws";

import { type AgoraError, errorFromBody, isObject } from "./errors.js";
import { FrameQueue } from "./frames.js";

export { WebSocket };

/** The hub's frames may be large: a batch of up to 100 messages or tasks. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The handshake was answered, but not with a WebSocket. */
export class HandshakeRefused extends Error {
  constructor(
    readonly status: number,
    /** The hub's own error, when the answer was its JSON error body (not a proxy's). */
    readonly refusal: AgoraError | null,
  ) {
    super(`the WebSocket handshake was answered with ${status}`);
    this.name = "HandshakeRefused";
  }
}

/** A connected socket and its frames (read from the start: the hub's first frame may come with the handshake's
 * answer, before the caller could listen); rejects with `HandshakeRefused`, or the network's error. */
export function openSocket(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket; frames: FrameQueue }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
    const frames = new FrameQueue(ws);
    ws.once("open", () => {
      ws.off("error", reject);
      resolve({ ws, frames });
    });
    ws.once("error", reject);
    ws.once("unexpected-response", (request, response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        request.destroy();
        reject(new HandshakeRefused(response.statusCode ?? 0, hubError(response.statusCode ?? 0, Buffer.concat(chunks))));
      });
      response.on("error", reject);
    });
  });
}

function hubError(status: number, body: Buffer): AgoraError | null {
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    return isObject(parsed) && isObject(parsed.error) ? errorFromBody(status, parsed) : null;
  } catch {
    return null;
  }
}

/** The hub's `/ws` address for these filters (`ws://` for `http://`, `wss://` for `https://`), asking for batch frames,
 * and at most `messages` messages pushed before the client gives credit back. */
export function streamUrl(
  base: string,
  options: { types?: string[] | null; resume?: string | null; visibilityTimeout?: number | null; messages?: number | null },
): string {
  const params = new URLSearchParams({ batch: "1" });
  if (options.messages != null) params.set("messages", String(options.messages));
  if (options.types?.length) params.set("types", options.types.join(","));
  if (options.resume) params.set("resume", options.resume);
  if (options.visibilityTimeout != null) params.set("visibility_timeout", String(options.visibilityTimeout));
  const [scheme, rest] = base.split("://", 2) as [string, string];
  return `${scheme === "https" ? "wss" : "ws"}://${rest}/ws?${params.toString()}`;
}
