/**
 * "Run now, once more if asked mid-run, back off on failure" — the loop every extension needs
 * (placement passes, guest watcher refreshes, Barbican rounds), written once:
 * - `trigger()` starts a pass now, or asks for exactly one more after the pass in flight (any
 *   number of triggers during a pass make one more, never a parallel one);
 * - a pass that reports failure (returns false) is retried after `retryDelay(failures)`, unless
 *   something triggers it sooner; a success resets the count;
 * - `stop()` ends it: no new pass, no retry timer left, and it waits for the pass in flight.
 */
export interface SerialRunnerOptions {
  /** One pass. Return false for a failure that should be retried with backoff; throwing counts as false. */
  run: () => Promise<boolean | void>;
  /** Delay before retry number `failures` (1 = the first); absent: failures are not retried by the runner. */
  retryDelay?: (failures: number) => number;
  /** Told when a retry is scheduled (for logs and status). */
  onRetry?: (failures: number, delayMs: number, err: unknown) => void;
  /** Told after each pass once the runner has counted it (failures, next attempt are current). */
  onPass?: (ok: boolean) => void;
  /** Told when a pass throws (a pass should handle its own errors; this is the backstop). */
  onError?: (err: unknown) => void;
}

export class SerialRunner {
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Consecutive failed passes (0 after a success). */
  failures = 0;
  /** When the scheduled retry runs (Unix ms), or null. */
  nextAttemptAt: number | null = null;

  constructor(private readonly options: SerialRunnerOptions) {}

  /** A retry is scheduled: a periodic schedule may leave the next attempt to it. */
  get backingOff(): boolean {
    return this.retryTimer !== undefined;
  }

  get busy(): boolean {
    return this.running !== null;
  }

  /** Runs a pass now, or once more right after the one in flight; resolves when that is done. */
  trigger(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Runs a pass only when none is in flight (a periodic tick that must not queue up behind a long pass). */
  triggerIfIdle(): void {
    if (!this.running) void this.trigger();
  }

  /** Resolves when no pass is running or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clearRetry();
    await this.running;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.nextAttemptAt = null;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      this.clearRetry();
      let ok: boolean;
      let error: unknown = null;
      try {
        ok = (await this.options.run()) !== false;
      } catch (err) {
        ok = false;
        error = err;
        this.options.onError?.(err);
      }
      if (this.stopped) return;
      if (ok) this.failures = 0;
      else {
        this.failures += 1;
        const { retryDelay } = this.options;
        if (retryDelay) {
          const delay = retryDelay(this.failures);
          this.nextAttemptAt = Date.now() + delay;
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            void this.trigger();
          }, delay);
          this.retryTimer.unref();
          this.options.onRetry?.(this.failures, delay, error);
        }
      }
      this.options.onPass?.(ok);
    } while (this.again && !this.stopped);
  }
}
