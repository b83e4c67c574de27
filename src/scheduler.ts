import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import { HostFacts } from './host/facts.js';
import { probeTimeoutMs, startProbe } from './probes/runner.js';
import type { Probe } from './probes/types.js';
import type { ProbeKey, ProbeResult } from './results.js';
import type { HostState } from './state.js';
import type { StateFiles } from './util/state-file.js';
import type { HostPathResolver } from './util/hostpath.js';
import { Semaphore } from './util/semaphore.js';
import { SerialRunner } from './util/serial-runner.js';
import { scheduleIntervalMs, splayIdentity, splayOffsetMs, splayWait } from './util/splay.js';

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
  /** The agent's state-file registry (see RunProbeOptions.stateFiles). */
  stateFiles: StateFiles;
  /** Slack beyond a schedule's due time (and its probes' timeouts) before it counts as overdue. */
  overdueGraceMs?: number;
  /** What the splay offset hashes; default: the configured provider / Nova host name, else the OS host name. */
  splayIdentity?: string;
}

/** A schedule whose tick did not come: the cron loop stopped, or an earlier cycle never ended. */
export interface OverdueSchedule {
  schedule: string;
  probes: string[];
  overdueSeconds: number;
}

/** A probe whose work is still going long after its timeout (it ignored the abort): it holds a concurrency slot for good. */
export interface StuckProbe {
  probe: string;
  runningSeconds: number;
}

export interface SchedulerStalls {
  overdueSchedules: OverdueSchedule[];
  stuckProbes: StuckProbe[];
}

interface ScheduleWatch {
  expr: string;
  probes: Probe[];
  /** A cycle of this schedule is running: its time is never lateness (a slot held for good shows as a stuck probe). */
  inCycle: boolean;
  /** Monotonic ms (performance.now()) by which node-cron must have fired this schedule's timer again. */
  dueBy: number;
  /** This host's splay: each tick's cycle starts this long after the tick. */
  offsetMs: number;
}

/** Monotonic ms of the task's next run plus the grace: immune to wall-clock steps after it is taken. */
function nextDue(task: ScheduledTask, graceMs: number): number {
  const next = task.getNextRun()?.getTime();
  return next === undefined ? Infinity : performance.now() + Math.max(0, next - Date.now()) + graceMs;
}

/** A probe run in flight. */
interface RunningProbe {
  /** Settles when the probe's work has really ended (its slot and "running" mark are held until then). */
  done: Promise<void>;
  /** The published result; undefined when the agent stopped before there was one. */
  published: Promise<ProbeResult | undefined>;
  /** Asked for by refresh(), not by a schedule. */
  onDemand: boolean;
}

/** On-demand runs of one probe: serialised and coalesced by the runner; `latest` is its last pass's result. */
interface Refresher {
  runner: SerialRunner;
  latest: ProbeResult | undefined;
}

/** The promise's value, or undefined as soon as the signal aborts (the work itself goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export function enabledProbes(probes: Probe[], config: AgentConfig): Probe[] {
  return probes.filter((p) => p.enabled?.(config) ?? true);
}

/**
 * Runs probes on their node-cron schedules with a concurrency cap. A probe never overlaps
 * itself: a tick that finds it still running is skipped and counted.
 */
export class ProbeScheduler {
  /** One cron task per schedule, keyed by its expression and the probes it runs. */
  private readonly tasks = new Map<string, { task: ScheduledTask; watch: ScheduleWatch }>();
  private readonly running = new Map<string, RunningProbe>();
  private readonly refreshers = new Map<string, Refresher>();
  /** Aborted by stop(); with the agent's signal it ends every wait of refresh(). */
  private readonly halt = new AbortController();
  private readonly stopSignal: AbortSignal;
  private semaphore: Semaphore;
  private concurrency: number;
  private scheduled = false;
  private enabled: Probe[];
  /** Ticks skipped because the probe was still running, per probe. */
  readonly skipped = new Map<string, number>();
  /** When each running probe's work began (monotonic ms, after it got its concurrency slot). */
  private readonly workStartedAt = new Map<string, number>();

  constructor(private readonly options: SchedulerOptions) {
    this.concurrency = options.config.probes.concurrency;
    this.semaphore = new Semaphore(this.concurrency);
    this.enabled = enabledProbes(options.probes, options.config);
    this.stopSignal = AbortSignal.any([options.signal, this.halt.signal]);
  }

  /** The probes the current configuration enables. */
  get probes(): Probe[] {
    return this.enabled;
  }

  /** Runs the given probes once, each after the probes it reads (`after`) when they are in the set. */
  async runCycle(probes: Probe[] = this.enabled): Promise<void> {
    const names = new Set(probes.map((p) => p.name));
    const done = new Map<string, Promise<unknown>>();
    // One round, one read of each host fact: its probes share this memo, the next round starts afresh.
    const facts = this.newFacts();
    const start = (probe: Probe, chain: string[]): Promise<unknown> => {
      const existing = done.get(probe.name);
      if (existing) return existing;
      if (chain.includes(probe.name)) throw new Error(`probe dependency cycle: ${[...chain, probe.name].join(' → ')}`);
      const deps = (probe.after ?? [])
        .filter((n) => names.has(n))
        .map((n) => start(probes.find((p) => p.name === n)!, [...chain, probe.name]));
      const promise = Promise.allSettled(deps).then(() => this.runOne(probe, facts));
      done.set(probe.name, promise);
      return promise;
    };
    await Promise.all(probes.map((p) => start(p, [])));
  }

  private runOne(probe: Probe, facts: HostFacts, onDemand = false): Promise<ProbeResult | undefined> {
    const inFlight = this.running.get(probe.name);
    if (inFlight) {
      // An on-demand run is as fresh as this tick's would be: the tick (and its dependants) take its result, no skip.
      if (inFlight.onDemand) return inFlight.published;
      this.skipped.set(probe.name, (this.skipped.get(probe.name) ?? 0) + 1);
      this.options.log.warn({ probe: probe.name }, 'probe still running from an earlier tick; this tick is skipped');
      return Promise.resolve(undefined);
    }
    if (this.options.signal.aborted) return Promise.resolve(undefined);
    // The concurrency slot and the "running" mark are held until the probe's work has really
    // ended, not just until its timeout: a straggler must not overlap its own next run. Callers
    // (the cycle, dependants, refresh) only wait for the result to be published.
    let publish!: (result: ProbeResult | undefined) => void;
    const published = new Promise<ProbeResult | undefined>((resolve) => (publish = resolve));
    const done = this.semaphore
      .run(async () => {
        this.workStartedAt.set(probe.name, performance.now());
        const started = startProbe(probe, { ...this.options, results: this.options.state, facts });
        const result = await started.result;
        publish(this.options.signal.aborted ? result : this.options.state.set(result));
        await started.settled;
      })
      .finally(() => {
        publish(undefined);
        this.running.delete(probe.name);
        this.workStartedAt.delete(probe.name);
      });
    this.running.set(probe.name, { done, published, onDemand });
    return published;
  }

  /**
   * Runs one probe now, through the path of its scheduled runs (concurrency cap, timeout, result
   * into the state), and resolves with that result. A run in flight began before the request, so
   * its result may predate what the caller reacts to (a libvirt event): the request waits for it,
   * then runs once more, and every request made meanwhile shares that one extra run. It also runs
   * a probe the configuration does not schedule (the guest inventory with
   * `guests.inventoryEnabled: false` still serves the restart watcher). Resolves with undefined
   * for an unknown probe and as soon as the agent is stopping.
   */
  refresh<T>(key: ProbeKey<T>): Promise<ProbeResult<T> | undefined> {
    const probe = this.options.probes.find((p) => p.name === key);
    if (!probe || this.stopSignal.aborted) return Promise.resolve(undefined);
    const refresher = this.refreshers.get(probe.name) ?? this.refresherFor(probe);
    const latest = (): ProbeResult<T> | undefined => refresher.latest as ProbeResult<T> | undefined;
    return untilAborted(refresher.runner.trigger().then(latest), this.stopSignal);
  }

  private refresherFor(probe: Probe): Refresher {
    const refresher: Refresher = {
      latest: undefined,
      runner: new SerialRunner({
        run: async () => {
          refresher.latest = await this.runFresh(probe);
        },
        onError: (err) => this.options.log.error({ probe: probe.name, err }, 'on-demand probe run failed'),
      }),
    };
    this.refreshers.set(probe.name, refresher);
    return refresher;
  }

  /** One on-demand run that begins after the request: a run in flight (a tick's, a straggler) ends first. */
  private async runFresh(probe: Probe): Promise<ProbeResult | undefined> {
    for (let inFlight = this.running.get(probe.name); inFlight; inFlight = this.running.get(probe.name)) {
      await untilAborted(inFlight.done.catch(() => undefined), this.stopSignal);
      if (this.stopSignal.aborted) return undefined;
    }
    // A round of its own: the facts are read afresh, as the event that asked may have changed them.
    return this.stopSignal.aborted ? undefined : this.runOne(probe, this.newFacts(), true);
  }

  private newFacts(): HostFacts {
    return new HostFacts({ config: this.options.config, hostPath: this.options.hostPath });
  }

  /** Schedules every enabled probe; the first full cycle starts at once. */
  start(): Promise<void> {
    this.scheduled = true;
    this.schedule();
    const first = this.runCycle().then(() => this.options.state.completeCycle());
    return first;
  }

  /** The schedules the configuration asks for: key → expression and probes. */
  private wanted(): Map<string, { expr: string; probes: Probe[] }> {
    const bySchedule = new Map<string, Probe[]>();
    for (const probe of this.enabled) {
      const expr = probe.schedule?.(this.options.config) ?? this.options.config.probes.schedule;
      bySchedule.set(expr, [...(bySchedule.get(expr) ?? []), probe]);
    }
    return new Map([...bySchedule].map(([expr, probes]) => [`${expr}|${probes.map((p) => p.name).join(',')}`, { expr, probes }]));
  }

  /** Creates the cron tasks that are missing and destroys those no longer wanted; returns what changed. */
  private schedule(): { started: string[]; stopped: string[] } {
    const wanted = this.wanted();
    const stopped: string[] = [];
    for (const [key, { task, watch }] of this.tasks) {
      if (wanted.has(key)) continue;
      void task.destroy();
      this.tasks.delete(key);
      stopped.push(`${watch.expr} (${watch.probes.map((p) => p.name).join(', ')})`);
    }
    const graceMs = this.options.overdueGraceMs ?? 60_000;
    const identity = this.options.splayIdentity ?? splayIdentity(this.options.config.identity);
    const started: string[] = [];
    for (const [key, { expr, probes }] of wanted) {
      if (this.tasks.has(key)) continue;
      const watch: ScheduleWatch = { expr, probes, inCycle: false, dueBy: Infinity, offsetMs: 0 };
      const task = cron.schedule(
        expr,
        async () => {
          // The splay wait counts as part of the cycle: it is not lateness.
          watch.inCycle = true;
          try {
            if (await splayWait(watch.offsetMs, this.options.signal)) await this.runCycle(probes);
          } finally {
            watch.inCycle = false;
            watch.dueBy = nextDue(task, graceMs);
          }
        },
        { name: `probes ${probes.map((p) => p.name).join(',')}`, noOverlap: true },
      );
      // Any sign that node-cron's timer still fires for this schedule — a run, a tick skipped for
      // overlap, a tick missed because the loop was busy or the clock jumped — moves the deadline on.
      for (const event of ['execution:overlap', 'execution:missed', 'execution:skipped'] as const) task.on(event, () => {
        watch.dueBy = nextDue(task, graceMs);
      });
      watch.offsetMs = splayOffsetMs(`${identity} ${expr}`, scheduleIntervalMs(task), this.options.config.splay);
      watch.dueBy = nextDue(task, graceMs);
      this.tasks.set(key, { task, watch });
      started.push(`${expr} (${probes.map((p) => p.name).join(', ')})`);
    }
    return { started, stopped };
  }

  /**
   * A reloaded configuration: probes read it from their next run on, so only the schedules whose
   * expression or probe set changed get new cron tasks; the others keep ticking untouched. Probes
   * the new configuration enables run once at once (their first result), and results and counters
   * of every probe stay.
   */
  reconfigure(config: AgentConfig, hostPath: HostPathResolver): { schedulesStarted: string[]; schedulesStopped: string[]; probesAdded: Probe[]; probesRemoved: Probe[] } {
    const before = new Set(this.enabled.map((p) => p.name));
    this.options.config = config;
    this.options.hostPath = hostPath;
    this.enabled = enabledProbes(this.options.probes, config);
    // Runs in flight keep the slots they hold; new runs share the new limit.
    if (config.probes.concurrency !== this.concurrency) {
      this.concurrency = config.probes.concurrency;
      this.semaphore = new Semaphore(this.concurrency);
    }
    const after = new Set(this.enabled.map((p) => p.name));
    const probesAdded = this.enabled.filter((p) => !before.has(p.name));
    const probesRemoved = this.options.probes.filter((p) => before.has(p.name) && !after.has(p.name));
    // Before start() (or after stop()) nothing is scheduled, and a reload schedules nothing either.
    const live = this.scheduled && !this.options.signal.aborted;
    const { started, stopped } = live ? this.schedule() : { started: [], stopped: [] };
    if (live && probesAdded.length) this.runCycle(probesAdded).catch((err: unknown) => this.options.log.error({ err }, 'first run of newly enabled probes failed'));
    return { schedulesStarted: started, schedulesStopped: stopped, probesAdded, probesRemoved };
  }

  /**
   * For /healthz: schedules whose tick did not come, and probes whose work outlived its timeout by
   * more than the grace. Either means the scheduler no longer turns as configured, which only a
   * restart mends.
   */
  stalls(now = performance.now()): SchedulerStalls {
    const grace = this.options.overdueGraceMs ?? 60_000;
    const overdueSchedules = [...this.tasks.values()]
      .map((t) => t.watch)
      .filter((w) => !w.inCycle && now > w.dueBy)
      .map((w) => ({ schedule: w.expr, probes: w.probes.map((p) => p.name), overdueSeconds: Math.round((now - w.dueBy) / 1000) }));
    const stuckProbes: StuckProbe[] = [];
    for (const [name, since] of this.workStartedAt) {
      const probe = this.options.probes.find((p) => p.name === name);
      if (probe && now - since > probeTimeoutMs(probe, this.options.config) + grace) stuckProbes.push({ probe: name, runningSeconds: Math.round((now - since) / 1000) });
    }
    return { overdueSchedules, stuckProbes };
  }

  /** Each schedule's splay offset (for /status and tests). */
  splayOffsets(): Array<{ schedule: string; probes: string[]; offsetMs: number }> {
    return [...this.tasks.values()].map(({ watch: w }) => ({ schedule: w.expr, probes: w.probes.map((p) => p.name), offsetMs: w.offsetMs }));
  }

  async stop(): Promise<void> {
    this.scheduled = false;
    // Waiting refreshes resolve at once; a pass in flight ends with its probe run, awaited below.
    this.halt.abort(new Error('scheduler stopping'));
    for (const { runner } of this.refreshers.values()) void runner.stop();
    for (const { task } of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    // Probes see the agent's abort signal and kill their children; wait briefly for them.
    await Promise.race([Promise.allSettled([...this.running.values()].map((r) => r.done)), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}
