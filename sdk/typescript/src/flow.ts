/** The runtime's flow control: handler slots, a queue of pushed messages, and calls that coalesce while one travels. */

/** Handler slots: taken as a group once one is free (a claim or receive asks for that many), or every free one at once
 * (credit for a new channel connection); given back as handlers return. */
export class Slots {
  private waiters: (() => void)[] = [];

  constructor(public free: number) {}

  /** Up to `most` slots, once at least one is free; 0 if `signal` aborts first. */
  async take(most: number, signal: AbortSignal): Promise<number> {
    while (this.free === 0) {
      if (signal.aborted) return 0;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.waiters.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    const taken = Math.min(this.free, most);
    this.free -= taken;
    return taken;
  }

  takeFree(): number {
    const taken = this.free;
    this.free = 0;
    return taken;
  }

  give(count = 1): void {
    this.free += count;
    if (count > 0) for (const wake of this.waiters.splice(0)) wake();
  }
}

/** Items handed over by one side, taken in order by an async reader. */
export class Queue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | null = null;

  put(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** The next item, or undefined if `signal` aborts first. */
  async next(signal: AbortSignal): Promise<T | undefined> {
    while (this.items.length === 0) {
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          this.wake = null;
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return this.items.shift();
  }
}

/** Items handed in while a call is on its way go together in the next one, so many short handlers cost few round trips
 * and none waits for a timer. `send` takes a batch and says why each item changed nothing (null where it did); `put`
 * waits for its item's answer. */
export class Coalescer<T> {
  private pending: { item: T; resolve(error: string | null): void; reject(error: unknown): void }[] = [];
  private sending = false;

  constructor(
    private readonly send: (items: T[]) => Promise<(string | null)[]>,
    private readonly most: number,
  ) {}

  put(item: T): Promise<string | null> {
    const answered = new Promise<string | null>((resolve, reject) => this.pending.push({ item, resolve, reject }));
    if (!this.sending) {
      this.sending = true;
      setImmediate(() => void this.drain()); // what else is handed in during this turn of the loop goes along
    }
    return answered;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.most);
        try {
          const errors = await this.send(batch.map((p) => p.item));
          batch.forEach((p, i) => p.resolve(errors[i] ?? null));
        } catch (error) { // the handlers waiting on this batch hear why it failed
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.sending = false;
    }
  }
}
