import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from './config/schema.js';
import type { AgentExtension, ExtensionContext } from './extension-api.js';
import type { CheckSection } from './results.js';
import { extensionFactories } from './extension-list.js';
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

/** Wires probes, extensions, scheduler and HTTP server; owns start and stop. */
export class Agent {
  readonly state = new HostState();
  readonly registry: Registry;
  /** Every state file of this agent: a file that cannot be used makes its owner not ready. */
  readonly stateFiles: StateFiles;
  private readonly restartReasons = new RestartReasons();
  private readonly controller = new AbortController();
  private readonly scheduler: ProbeScheduler;
  private readonly probes: Probe[];
  private readonly extensions: AgentExtension[];
  private readonly notifier: SystemdNotifier;
  private readonly env: NodeJS.ProcessEnv;
  private server: FastifyInstance | undefined;
  private http: AgentServer | undefined;
  private webWatcher: WebConfigWatcher | undefined;
  private readonly onHangup = () => void this.reloadWebConfig('SIGHUP');
  private heartbeat: NodeJS.Timeout | undefined;
  private lastHeartbeat = Date.now();
  private stopping = false;
  private readonly startedExtensions: AgentExtension[] = [];

  constructor(private readonly options: AgentOptions) {
    const { config, log } = options;
    this.env = options.env ?? process.env;
    this.probes = enabledProbes(options.probes ?? allProbes, config);
    this.stateFiles = new StateFiles({ log });
    this.extensions = (options.extensions ?? extensionFactories.map((f) => f())).filter((e) => e.enabled(config));
    this.scheduler = new ProbeScheduler({
      probes: this.probes,
      config,
      log,
      hostPath: hostPathResolver(config.hostRoot),
      env: this.env,
      state: this.state,
      signal: this.controller.signal,
      stateFiles: this.stateFiles,
    });
    this.registry = createMetricsRegistry({ probes: this.probes, extensions: this.extensions, state: this.state, skipped: this.scheduler.skipped });
    this.stateFiles.register(this.registry);
    this.notifier = new SystemdNotifier(this.env);
  }

  private extensionContext(name: string): ExtensionContext {
    return {
      config: this.options.config,
      log: this.options.log,
      hostPath: hostPathResolver(this.options.config.hostRoot),
      env: this.env,
      state: this.state,
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

  /** Starts serving at once; the first probe cycle runs in the background (see /readyz). */
  async start(): Promise<{ address: string }> {
    const { config, log } = this.options;
    this.heartbeat = setInterval(() => (this.lastHeartbeat = Date.now()), HEARTBEAT_MS);
    const web = this.options.webConfig ?? null;
    this.http = createServer(
      { metrics: new ExpositionCache(this.registry), live: () => this.live(), ready: () => this.ready(), status: () => this.status() },
      log,
      httpLimits(config.web),
      web,
    );
    this.server = this.http.app;
    if (web) {
      const http = this.http;
      this.webWatcher = new WebConfigWatcher(web, (next) => http.applyWebConfig(next), log);
      await this.webWatcher.start();
      process.on('SIGHUP', this.onHangup);
    }
    const address = await this.server.listen({ host: config.listen.host, port: config.listen.port });
    if (this.stopping) return { address };
    log.info({ address, probes: this.probes.map((p) => p.name), extensions: this.extensions.map((e) => e.name) }, 'vtpm-agent serving');
    for (const extension of this.extensions) {
      if (this.stopping) break;
      try {
        await extension.start(this.extensionContext(extension.name));
      } catch (err) {
        // An extension that cannot start must not take the agent down; it shows in /status.
        log.error({ extension: extension.name, err }, 'extension failed to start');
      }
      if (this.stopping) {
        // stop() ran while this one was starting and did not know about it: stop it here.
        await extension.stop().catch((err: unknown) => log.warn({ extension: extension.name, err }, 'extension failed to stop cleanly'));
        break;
      }
      this.startedExtensions.push(extension);
    }
    if (this.stopping) return { address };
    this.scheduler.start().then(
      () => log.info({ cycles: this.state.completedCycles }, 'first probe cycle complete'),
      (err: unknown) => log.error({ err }, 'first probe cycle failed'),
    );
    if (this.env.NOTIFY_SOCKET && !this.notifier.active) {
      log.warn('NOTIFY_SOCKET is set but the unix-dgram addon could not be loaded (built for another Node.js?): run `npm rebuild unix-dgram`, or use Type=simple');
    }
    await this.notifier.notify('READY=1');
    this.notifier.startWatchdog(this.env, () => this.live().ok);
    return { address };
  }

  /** Re-reads the web configuration file now (SIGHUP; certificates also reload on change by themselves). */
  async reloadWebConfig(why = 'reload'): Promise<void> {
    await this.webWatcher?.reload(why);
  }

  /** The HTTP server's connection guard and auth (tests and benches read their counters). */
  get httpServer(): AgentServer | undefined {
    return this.http;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { log } = this.options;
    this.webWatcher?.stop();
    process.off('SIGHUP', this.onHangup);
    await this.notifier.notify('STOPPING=1');
    this.notifier.stopWatchdog();
    this.controller.abort(new Error('agent stopping'));
    clearInterval(this.heartbeat);
    await Promise.allSettled([
      this.scheduler.stop(),
      ...this.startedExtensions.map((e) =>
        Promise.race([e.stop(), new Promise((r) => setTimeout(r, EXTENSION_STOP_MS).unref())]).catch((err: unknown) =>
          log.warn({ extension: e.name, err }, 'extension failed to stop cleanly'),
        ),
      ),
    ]);
    await this.server?.close();
    log.info('vtpm-agent stopped');
  }
}
