/** What the generated tool groups (`generated/tools.ts`) stand on: one call into the client. */

/** Runs one tool call; `retrySafe`: the hub may be asked again if the first attempt's fate is unknown. Arguments left
 * `undefined` are left out of the request (JSON has no `undefined`), so the hub's defaults apply. */
export interface Invoker {
  invoke(tool: string, args: Record<string, unknown>, retrySafe: boolean): Promise<unknown>;
}

export class ToolGroup {
  constructor(protected readonly invoker: Invoker) {}
}
