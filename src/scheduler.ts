import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import { startProbe } from './probes/runner.js';
import type { Probe } from './probes/types.js';
import type { HostState } from './state.js';
import type { HostPathResolver } from './util/hostpath.js';
import { Semaphore } from './util/semaphore.js';

export interface SchedulerOptions {
  probes: Probe[];
  config: AgentConfig;
  log: Logger;
  hostPath: HostPathResolver;
  env: NodeJS.ProcessEnv;
  state: HostState;
  signal: AbortSignal;
  /** One-shot check: probes read the daemon's state files and write none (ProbeContext.readOnlyState). */
  readOnlyState?: boolean;
}

export function enabledProbes(probes: Probe[], config: AgentConfig): Probe[] {
  return probes.filter((p) => p.enabled?.(config) ?? true);
}

/**
 * Runs probes on their node-cron schedules with a concurrency cap. A probe never overlaps
 * itself: a tick that finds it still running is skipped and counted.
 */
export class ProbeScheduler {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly semaphore: Semaphore;
  private readonly probes: Probe[];
  /** Ticks skipped because the probe was still running, per probe. */
  readonly skipped = new Map<string, number>();
  lastTickAt = Date.now();

  constructor(private readonly options: SchedulerOptions) {
    this.semaphore = new Semaphore(options.config.probes.concurrency);
    this.probes = enabledProbes(options.probes, options.config);
  }

  /** Runs the given probes once, each after the probes it reads (`after`) when they are in the set. */
  async runCycle(probes: Probe[] = this.probes): Promise<void> {
    const names = new Set(probes.map((p) => p.name));
    const done = new Map<string, Promise<void>>();
    const start = (probe: Probe, chain: string[]): Promise<void> => {
      const existing = done.get(probe.name);
      if (existing) return existing;
      if (chain.includes(probe.name)) throw new Error(`probe dependency cycle: ${[...chain, probe.name].join(' → ')}`);
      const deps = (probe.after ?? [])
        .filter((n) => names.has(n))
        .map((n) => start(probes.find((p) => p.name === n)!, [...chain, probe.name]));
      const promise = Promise.allSettled(deps).then(() => this.runOne(probe));
      done.set(probe.name, promise);
      return promise;
    };
    await Promise.all(probes.map((p) => start(p, [])));
  }

  private runOne(probe: Probe): Promise<void> {
    if (this.running.has(probe.name)) {
      this.skipped.set(probe.name, (this.skipped.get(probe.name) ?? 0) + 1);
      this.options.log.warn({ probe: probe.name }, 'probe still running from an earlier tick; this tick is skipped');
      return Promise.resolve();
    }
    if (this.options.signal.aborted) return Promise.resolve();
    // The concurrency slot and the "running" mark are held until the probe's work has really
    // ended, not just until its timeout: a straggler must not overlap its own next run. Callers
    // (the cycle, dependants) only wait for the result to be published.
    let markPublished!: () => void;
    const published = new Promise<void>((resolve) => (markPublished = resolve));
    const run = this.semaphore
      .run(async () => {
        const started = startProbe(probe, { ...this.options, results: this.options.state });
        const result = await started.result;
        if (!this.options.signal.aborted) this.options.state.set(result);
        markPublished();
        await started.settled;
      })
      .finally(() => {
        markPublished();
        this.running.delete(probe.name);
      });
    this.running.set(probe.name, run);
    return published;
  }

  /** Schedules every enabled probe; the first full cycle starts at once. */
  start(): Promise<void> {
    const bySchedule = new Map<string, Probe[]>();
    for (const probe of this.probes) {
      const expr = probe.schedule?.(this.options.config) ?? this.options.config.probes.schedule;
      bySchedule.set(expr, [...(bySchedule.get(expr) ?? []), probe]);
    }
    for (const [expr, probes] of bySchedule) {
      const task = cron.schedule(
        expr,
        async () => {
          this.lastTickAt = Date.now();
          await this.runCycle(probes);
        },
        { name: `probes ${probes.map((p) => p.name).join(',')}`, noOverlap: true },
      );
      this.tasks.push(task);
    }
    const first = this.runCycle().then(() => this.options.state.completeCycle());
    return first;
  }

  async stop(): Promise<void> {
    for (const task of this.tasks) await task.destroy();
    this.tasks.length = 0;
    // Probes see the agent's abort signal and kill their children; wait briefly for them.
    await Promise.race([Promise.allSettled([...this.running.values()]), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}
