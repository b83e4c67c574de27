import { METRIC_PREFIX } from './metric-prefix.js';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { configSchema, type AgentConfig } from './config/schema.js';
import type { AgentExtension, ExtensionContext } from './extension-api.js';
import type { CheckSection } from './results.js';
import { ConfigError } from './config/load.js';
import { entryFor, extensionEntries, type ExtensionEntry } from './extension-list.js';
import { allProbes } from './probes/index.js';
import type { Probe } from './probes/types.js';
import { buildReport } from './report.js';
import { createMetricsRegistry } from './reporter/metrics.js';
import { ExpositionCache } from './reporter/exposition-cache.js';
import { createServer, httpLimits, type AgentServer } from './reporter/server.js';
import type { WebConfig } from './reporter/web-config.js';
import { WebConfigWatcher } from './reporter/web-config-watch.js';
import { enabledProbes, ProbeScheduler } from './scheduler.js';
import { HostState } from './state.js';
import { hostPathResolver } from './util/hostpath.js';
import { RestartReasons } from './guests/reasons.js';
import { StateFiles } from './util/state-file.js';
import { SystemdNotifier } from './util/sdnotify.js';

export interface AgentOptions {
  config: AgentConfig;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  probes?: Probe[];
  extensions?: AgentExtension[];
  /** The loaded `web.configFile` (TLS, basic auth, headers); null or absent: plain HTTP, no auth. */
  webConfig?: WebConfig | null;
}

/** How long an extension may take to stop before the agent gives up on it. */
const EXTENSION_STOP_MS = 2000;
/** The heartbeat proves the event loop turns; /healthz fails when it stalls this long. */
const HEARTBEAT_MS = 5000;
const HEARTBEAT_STALE_MS = 60_000;

/** What a reload changed, for its log line and the tests. */
export interface ReloadOutcome {
  ok: boolean;
  /** Top-level configuration keys whose value changed. */
  changed: string[];
  /** Bad keys of an invalid configuration (`key: problem`), which was not applied. */
  issues: string[];
  schedulesStarted: string[];
  schedulesStopped: string[];
  probesAdded: string[];
  probesRemoved: string[];
  extensionsStarted: string[];
  extensionsRestarted: string[];
  extensionsStopped: string[];
  listenChanged: boolean;
}

/** What an extension handed in without its configuration keys reads: everything but the log settings. */
const ALL_BUT_LOGGING = (Object.keys(configSchema.shape) as Array<keyof AgentConfig>).filter((k) => k !== 'logLevel' && k !== 'logFormat');

/** Top-level keys whose value differs (the schema's values are plain JSON data). */
function changedKeys(before: AgentConfig, after: AgentConfig): Array<keyof AgentConfig> {
  return (Object.keys(after) as Array<keyof AgentConfig>).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
}

/** Wires probes, extensions, scheduler and HTTP server; owns start, reload and stop. */
/** STOPPING=1 gets less than the CLI's 4.5 s hard exit leaves for the whole stop. */
const STOPPING_NOTIFY_TIMEOUT_MS = 2000;

export class Agent {
  readonly state = new HostState();
  readonly registry: Registry;
  /** Every state file of this agent: a file that cannot be used makes its owner not ready. */
  readonly stateFiles: StateFiles;
  private readonly restartReasons = new RestartReasons();
  private readonly controller = new AbortController();
  private readonly scheduler: ProbeScheduler;
  /** Every capability the agent knows; its code loads when configuration first enables it. */
  private readonly entries: readonly ExtensionEntry[];
  /** Loaded capabilities by name (kept when disabled, so a re-enable keeps counters and metrics). */
  private readonly loaded = new Map<string, AgentExtension>();
  private readonly registeredProbes = new Set<string>();
  private readonly notifier: SystemdNotifier;
  private readonly env: NodeJS.ProcessEnv;
  private config: AgentConfig;
  private server: FastifyInstance | undefined;
  private http: AgentServer | undefined;
  private webWatcher: WebConfigWatcher | undefined;
  /** The web configuration in force (the watcher replaces it on rotation); a listen move keeps it. */
  private web: WebConfig | null;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastHeartbeat = Date.now();
  private stopping = false;
  private startedExtensions: AgentExtension[] = [];
  /** Reloads run one after the other: a second SIGHUP waits for the first. */
  private reloading: Promise<unknown> = Promise.resolve();
  private lastReload: { ok: boolean; at: number } | null = null;

  constructor(private readonly options: AgentOptions) {
    const { config, log } = options;
    this.config = config;
    this.web = options.webConfig ?? null;
    this.env = options.env ?? process.env;
    this.stateFiles = new StateFiles({ log });
    this.entries = options.extensions ? options.extensions.map(entryFor) : extensionEntries;
    this.scheduler = new ProbeScheduler({
      probes: options.probes ?? allProbes,
      config,
      log,
      hostPath: hostPathResolver(config.hostRoot),
      env: this.env,
      state: this.state,
      signal: this.controller.signal,
      stateFiles: this.stateFiles,
    });
    this.registry = createMetricsRegistry({ state: this.state, skipped: this.scheduler.skipped });
    this.registerProbeMetrics(this.scheduler.probes);
    this.registerReloadMetrics();
    this.stateFiles.register(this.registry);
    this.notifier = new SystemdNotifier(this.env);
  }

  private get probes(): Probe[] {
    return this.scheduler.probes;
  }

  private registerProbeMetrics(probes: Probe[]): void {
    for (const probe of probes) {
      if (this.registeredProbes.has(probe.name)) continue;
      this.registeredProbes.add(probe.name);
      probe.registerMetrics?.(this.registry, this.state);
    }
  }

  private registerReloadMetrics(): void {
    const last = () => this.lastReload;
    new Gauge({
      name: `${METRIC_PREFIX}agent_config_last_reload_successful`,
      help: 'Whether the latest configuration reload (SIGHUP) was applied (1) or rejected (0); 1 before any reload.',
      registers: [this.registry],
      collect() {
        this.set(last()?.ok === false ? 0 : 1);
      },
    });
    const startedAt = this.state.startedAt;
    new Gauge({
      name: `${METRIC_PREFIX}agent_config_last_reload_success_timestamp_seconds`,
      help: 'Unix time the running configuration was applied (start or the latest successful reload).',
      registers: [this.registry],
      collect() {
        const l = last();
        this.set((l?.ok ? l.at : startedAt) / 1000);
      },
    });
  }

  /** Loads (once) and returns the capability behind an entry, its metrics registered. */
  private async extensionFor(entry: ExtensionEntry): Promise<AgentExtension> {
    const existing = this.loaded.get(entry.name);
    if (existing) return existing;
    const extension = await entry.load();
    this.loaded.set(entry.name, extension);
    extension.registerMetrics?.(this.registry);
    return extension;
  }

  private async startExtension(extension: AgentExtension): Promise<void> {
    try {
      await extension.start(this.extensionContext(extension.name));
    } catch (err) {
      // An extension that cannot start must not take the agent down; it shows in /status.
      this.options.log.error({ extension: extension.name, err }, 'extension failed to start');
    }
  }

  /** Loads and starts a capability; false when the agent began stopping meanwhile (it is stopped again). */
  private async launch(entry: ExtensionEntry): Promise<boolean> {
    const extension = await this.extensionFor(entry);
    await this.startExtension(extension);
    if (this.stopping) {
      // stop() ran while this one was starting and did not know about it: stop it here.
      await this.stopExtension(extension);
      return false;
    }
    this.startedExtensions.push(extension);
    return true;
  }

  /** Resolves true once the extension has stopped, false when it did not within EXTENSION_STOP_MS. */
  private stopExtension(extension: AgentExtension): Promise<boolean> {
    return Promise.race([extension.stop().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), EXTENSION_STOP_MS).unref())]).catch((err: unknown) => {
      this.options.log.warn({ extension: extension.name, err }, 'extension failed to stop cleanly');
      return false;
    });
  }

  private extensionContext(name: string): ExtensionContext {
    return {
      config: this.config,
      log: this.options.log,
      hostPath: hostPathResolver(this.config.hostRoot),
      env: this.env,
      state: this.state,
      refresh: (key) => this.scheduler.refresh(key),
      stateFiles: this.stateFiles.store(name),
      restartReasons: this.restartReasons,
      signal: this.controller.signal,
    };
  }

  status(): ReturnType<typeof buildReport> {
    const sections: CheckSection[] = this.startedExtensions.map((e) => {
      try {
        return e.status();
      } catch (err) {
        return { name: e.name, ok: false, summary: `status failed: ${(err as Error).message}`, data: null };
      }
    });
    return buildReport(this.state, this.probes, sections);
  }

  private live(): { ok: boolean; detail: Record<string, unknown> } {
    const age = Date.now() - this.lastHeartbeat;
    // Alive = the event loop turns, every probe schedule keeps ticking, no probe's work is stuck.
    const stalls = this.scheduler.stalls();
    return {
      ok: !this.stopping && age < HEARTBEAT_STALE_MS && stalls.overdueSchedules.length === 0 && stalls.stuckProbes.length === 0,
      detail: { heartbeatAgeSeconds: age / 1000, stopping: this.stopping, ...stalls },
    };
  }

  private ready(): { ok: boolean; detail: Record<string, unknown> } {
    const checks: Record<string, { ready: boolean; detail?: string }> = {
      probes: { ready: this.state.completedCycles > 0, detail: `${this.state.completedCycles} completed cycle(s)` },
    };
    for (const e of this.startedExtensions) checks[e.name] = e.readiness?.() ?? { ready: true };
    // A capability that cannot keep its state is not ready: which file, where, why, what it does meanwhile.
    for (const [owner, problems] of this.stateFiles.problems()) {
      const own = checks[owner];
      checks[owner] = { ready: false, detail: [own && !own.ready ? own.detail : null, ...problems].filter(Boolean).join('; ') };
    }
    return { ok: !this.stopping && Object.values(checks).every((c) => c.ready), detail: { checks } };
  }

  private createServer(config: AgentConfig): AgentServer {
    return createServer(
      { metrics: new ExpositionCache(this.registry), live: () => this.live(), ready: () => this.ready(), status: () => this.status() },
      this.options.log,
      httpLimits(config.web),
      this.web,
    );
  }

  /** Starts serving at once; the first probe cycle runs in the background (see /readyz). */
  start(): Promise<{ address: string }> {
    const started = this.startNow();
    // A reload that arrives while the agent starts waits for the start to finish.
    this.reloading = started.catch(() => undefined);
    return started;
  }

  private async startNow(): Promise<{ address: string }> {
    const { log } = this.options;
    const config = this.config;
    this.heartbeat = setInterval(() => (this.lastHeartbeat = Date.now()), HEARTBEAT_MS);
    this.http = this.createServer(config);
    this.server = this.http.app;
    if (this.web) {
      const http = this.http;
      this.webWatcher = new WebConfigWatcher(this.web, (next) => {
        const refused = (this.http ?? http).applyWebConfig(next);
        if (!refused) this.web = next;
        return refused;
      }, log);
      await this.webWatcher.start();
    }
    const address = await this.server.listen({ host: config.listen.host, port: config.listen.port });
    if (this.stopping) return { address };
    const enabled = this.entries.filter((e) => e.enabled(config));
    log.info({ address, probes: this.probes.map((p) => p.name), extensions: enabled.map((e) => e.name) }, 'vtpm-agent serving');
    for (const entry of enabled) {
      if (this.stopping || !(await this.launch(entry))) break;
    }
    if (this.stopping) return { address };
    const roundStarted = performance.now();
    this.scheduler.start().then(
      // Its duration lets bench/footprint.ts tell the agent's own start-up from the probes' time.
      () => log.info({ cycles: this.state.completedCycles, durationSeconds: (performance.now() - roundStarted) / 1000 }, 'first probe cycle complete'),
      (err: unknown) => log.error({ err }, 'first probe cycle failed'),
    );
    const notReady = await this.notifier.notify('READY=1', { mainPid: true });
    if (notReady) log.error({ reason: notReady }, 'could not tell systemd the agent is ready (Type=notify needs systemd-notify on PATH and NotifyAccess=all)');
    this.notifier.startWatchdog(() => this.live().ok, (reason) => log.warn({ reason }, 'watchdog notification failed'));
    return { address };
  }

  /**
   * Re-reads the configuration (SIGHUP, `systemctl reload`). A configuration that does not load
   * or validate changes nothing: each bad key is logged, as at start. A valid one is applied in
   * place: the log level at once; probes read it from their next run (only schedules whose
   * expression or probe set changed are re-created); a capability is started, stopped or
   * restarted only when its switch or a section it reads changed; the HTTP server moves only when
   * `listen` changed. Results, counters and running capabilities that did not change stay.
   */
  reload(load: () => Promise<AgentConfig>): Promise<ReloadOutcome> {
    const next = this.reloading.then(() => this.reloadNow(load));
    this.reloading = next.catch(() => undefined);
    return next;
  }

  private async reloadNow(load: () => Promise<AgentConfig>): Promise<ReloadOutcome> {
    const { log } = this.options;
    const outcome: ReloadOutcome = {
      ok: false,
      changed: [],
      issues: [],
      schedulesStarted: [],
      schedulesStopped: [],
      probesAdded: [],
      probesRemoved: [],
      extensionsStarted: [],
      extensionsRestarted: [],
      extensionsStopped: [],
      listenChanged: false,
    };
    if (this.stopping) return outcome;
    // Type=notify-reload (systemd ≥ 253) wants the monotonic time; older systemd ignores it.
    await this.notifier.notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
    try {
      let config: AgentConfig;
      try {
        config = await load();
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        outcome.issues = err.issues;
        for (const issue of err.issues) {
          const colon = issue.indexOf(': ');
          log.error({ key: colon > 0 ? issue.slice(0, colon) : '(file)', problem: colon > 0 ? issue.slice(colon + 2) : issue }, 'reload: invalid configuration key; the running configuration stays');
        }
        log.error({ code: err.code, issues: err.issues.length, summary: err.message.split(':\n')[0] }, 'reload rejected: configuration unchanged');
        this.lastReload = { ok: false, at: Date.now() };
        return outcome;
      }
      const previous = this.config;
      const changed = changedKeys(previous, config);
      outcome.changed = changed;
      if (changed.includes('listen')) {
        // Bind the new address before letting go of the old one: a failure keeps everything as it was.
        const http = this.createServer(config);
        const server = http.app;
        try {
          const address = await server.listen({ host: config.listen.host, port: config.listen.port });
          const old = this.server;
          this.http = http;
          this.server = server;
          outcome.listenChanged = true;
          log.info({ address }, 'reload: serving on the new address');
          void old?.close();
        } catch (err) {
          await server.close().catch(() => undefined);
          outcome.issues = [`listen: cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`];
          log.error({ key: 'listen', problem: outcome.issues[0] }, 'reload rejected: configuration unchanged');
          this.lastReload = { ok: false, at: Date.now() };
          return outcome;
        }
      }
      this.config = config;
      log.level = config.logLevel;
      // The web configuration file is re-read on every reload (certificates, users, headers);
      // the listener's own settings (web.*: file path, limits) are fixed when it is created.
      await this.webWatcher?.reload('SIGHUP');
      if (changed.includes('web') && !outcome.listenChanged) {
        log.warn({ key: 'web' }, 'reload: web.* settings (configuration file path, HTTP limits) apply at the next restart');
      }
      const probes = this.scheduler.reconfigure(config, hostPathResolver(config.hostRoot));
      this.registerProbeMetrics(probes.probesAdded);
      for (const p of probes.probesRemoved) this.stateFiles.forget(p.name);
      Object.assign(outcome, {
        schedulesStarted: probes.schedulesStarted,
        schedulesStopped: probes.schedulesStopped,
        probesAdded: probes.probesAdded.map((p) => p.name),
        probesRemoved: probes.probesRemoved.map((p) => p.name),
      });
      await this.reconcileExtensions(config, new Set(changed), outcome);
      outcome.ok = true;
      this.lastReload = { ok: true, at: Date.now() };
      log.info({ ...outcome, issues: undefined }, changed.length ? 'configuration reloaded' : 'configuration reloaded: nothing changed');
      return outcome;
    } finally {
      await this.notifier.notify('READY=1');
    }
  }

  /** Starts, stops or restarts the capabilities whose switch or configuration changed. */
  private async reconcileExtensions(config: AgentConfig, changed: Set<keyof AgentConfig>, outcome: ReloadOutcome): Promise<void> {
    for (const entry of this.entries) {
      if (this.stopping) return;
      const running = this.startedExtensions.find((e) => e.name === entry.name);
      const wanted = entry.enabled(config);
      if (running && !wanted) {
        this.startedExtensions = this.startedExtensions.filter((e) => e !== running);
        await this.stopExtension(running);
        this.stateFiles.forget(entry.name);
        outcome.extensionsStopped.push(entry.name);
      } else if (!running && wanted) {
        if (!(await this.launch(entry))) return;
        outcome.extensionsStarted.push(entry.name);
      } else if (running && (entry.configKeys ?? ALL_BUT_LOGGING).some((k) => changed.has(k))) {
        if (!(await this.stopExtension(running))) {
          // Starting it again while its stop still runs could leave two sets of its children.
          this.startedExtensions = this.startedExtensions.filter((e) => e !== running);
          this.options.log.error({ extension: entry.name }, 'reload: the extension did not stop in time and is left stopped; restart the agent to run it again');
          outcome.extensionsStopped.push(entry.name);
          continue;
        }
        await this.startExtension(running);
        outcome.extensionsRestarted.push(entry.name);
      }
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { log } = this.options;
    this.webWatcher?.stop();
    this.notifier.stopWatchdog();
    this.controller.abort(new Error('agent stopping'));
    clearInterval(this.heartbeat);
    // Told beside the stops, not before them: a slow PID 1 must not eat the stop deadline.
    await Promise.allSettled([
      this.notifier.notify('STOPPING=1', { timeoutMs: STOPPING_NOTIFY_TIMEOUT_MS }),
      this.scheduler.stop(),
      ...this.startedExtensions.map((e) => this.stopExtension(e)),
    ]);
    await this.server?.close();
    log.info('vtpm-agent stopped');
  }
}
