/** What a live stream yields: a message pushed from the inbox, or a hub event (`agent_registered`, `task_assigned`, …). */

import type { JsonValue, Message } from "./generated/types.js";

/** `id` is the resume token after this event; `message` is set for pushed messages, `data` for hub events. */
export interface StreamEvent {
  type: string;
  id: string;
  message?: Message;
  tenant_id?: string | null;
  data?: { [key: string]: JsonValue } | null;
  timestamp?: string | null;
}

/** The stream's own frames, which carry no event. */
const CONTROL_FRAMES = new Set(["ready", "pong", "acked", "error", "taking"]);

/** The events in one frame (already parsed): one, several for a `batch` frame, none for a control frame. */
export function eventsOf(frame: Record<string, unknown>): StreamEvent[] {
  if (frame.type === "batch") return frame.events as StreamEvent[];
  return CONTROL_FRAMES.has(String(frame.type)) ? [] : [frame as unknown as StreamEvent];
}
