/**
 * Re-reads the web configuration when it or a file it names (certificate, key, client CA)
 * changes on disk, and on demand (SIGHUP / reload). A valid new configuration is applied to the
 * running listener; an invalid one is logged with every problem and the old one stays in force,
 * so a half-written certificate during rotation never takes the endpoint down.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { loadWebConfig, type WebConfig } from './web-config.js';

/** How often the files are looked at: rotation tools write then rename, which fs.watch loses. */
const POLL_MS = 1000;

export class WebConfigWatcher {
  private timer: NodeJS.Timeout | undefined;
  private fingerprint = '';
  private reloading: Promise<void> | undefined;
  /** Reloads applied / rejected (tests read them). */
  applied = 0;
  rejected = 0;
  private polling = false;

  constructor(
    private current: WebConfig,
    private readonly apply: (web: WebConfig) => string | null,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.fingerprint = await this.fingerprintOf(this.current.files);
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async fingerprintOf(files: string[]): Promise<string> {
    const parts = await Promise.all(
      files.map(async (f) => {
        try {
          const s = await stat(f);
          return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch (err) {
          return `${f}:${(err as NodeJS.ErrnoException).code}`;
        }
      }),
    );
    return parts.join('|');
  }

  private async poll(): Promise<void> {
    // One poll at a time: a hung stat (a stale mount) must not queue one more every second.
    if (this.reloading || this.polling) return;
    this.polling = true;
    try {
      const now = await this.fingerprintOf(this.current.files);
      if (now !== this.fingerprint) await this.reload('file changed');
    } finally {
      this.polling = false;
    }
  }

  /** Re-reads now; resolves when applied or rejected. */
  reload(why: string): Promise<void> {
    this.reloading ??= this.doReload(why).finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async doReload(why: string): Promise<void> {
    const before = await this.fingerprintOf(this.current.files);
    try {
      const next = await loadWebConfig(this.current.source);
      const problem = this.apply(next);
      if (problem) {
        this.rejected += 1;
        this.log.error({ webConfig: next.source, why }, `web configuration not applied: ${problem}`);
      } else {
        this.current = next;
        this.applied += 1;
        this.log.info({ webConfig: next.source, why, tls: next.tls !== null, users: next.users.size }, 'web configuration reloaded');
      }
    } catch (err) {
      this.rejected += 1;
      const issues = err instanceof ConfigError ? err.issues : [(err as Error).message];
      this.log.error({ webConfig: this.current.source, why, issues }, 'web configuration invalid; the previous one stays in force');
    }
    // What was read: a rejected file is retried only once it changes again; a change during the
    // read differs from this and is picked up by the next poll.
    this.fingerprint = before;
  }
}
