/** Frames read from a WebSocket, taken one at a time by an async reader, with the socket paused while too many wait
 * (so a slow reader slows the hub down instead of filling this process's memory). */

import type WebSocket from "ws";

const HIGH_WATER = 64; // frames waiting before the socket is paused

export class FrameQueue {
  private readonly frames: Record<string, unknown>[] = [];
  private closed = false;
  private wake: (() => void) | null = null;

  constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as Record<string, unknown>);
      if (this.frames.length >= HIGH_WATER) ws.pause();
      this.notify();
    });
    ws.on("close", () => {
      this.closed = true;
      this.notify();
    });
    ws.on("error", () => ws.terminate()); // the close event follows
  }

  /** The next frame, or null once the connection is closed (or `signal` aborted). */
  async next(signal?: AbortSignal): Promise<Record<string, unknown> | null> {
    while (this.frames.length === 0) {
      if (this.closed || signal?.aborted) return null;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener("abort", done);
          this.wake = null;
          resolve();
        };
        this.wake = done;
        signal?.addEventListener("abort", done, { once: true });
      });
    }
    const frame = this.frames.shift() as Record<string, unknown>;
    if (this.frames.length < HIGH_WATER / 2 && this.ws.isPaused) this.ws.resume();
    return frame;
  }

  private notify(): void {
    this.wake?.();
  }
}
