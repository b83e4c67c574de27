import type { Logger } from 'pino';
import { toAgentError } from '../errors.js';
import type { AgentConfig } from '../config/schema.js';
import type { HostFacts } from '../host/facts.js';
import type { HostPathResolver } from '../util/hostpath.js';
import type { ProbeResult, ProbeResults } from '../results.js';
import type { Probe } from './types.js';
import type { StateFiles } from '../util/state-file.js';

export interface RunProbeOptions {
  config: AgentConfig;
  log: Logger;
  hostPath: HostPathResolver;
  env: NodeJS.ProcessEnv;
  results: ProbeResults;
  /** Agent-wide shutdown signal. */
  signal?: AbortSignal;
  /** See ProbeContext.readOnlyState (one-shot check). */
  readOnlyState?: boolean;
  /** The agent's state-file registry (problems make the probe's capability not ready). */
  stateFiles: StateFiles;
  /** The round's host-fact memo, shared by every probe of the round (one runCycle). */
  facts: HostFacts;
}

export function probeTimeoutMs(probe: Pick<Probe<unknown>, 'timeoutMs'>, config: AgentConfig): number {
  return probe.timeoutMs?.(config) ?? config.probes.timeoutSeconds * 1000;
}

/**
 * Runs one probe with a timeout and error isolation (node_exporter's `execute`): whatever the
 * probe does, the caller gets a result, and never waits past the timeout.
 */
export function runProbe<T>(probe: Probe<T>, options: RunProbeOptions): Promise<ProbeResult<T>> {
  return startProbe(probe, options).result;
}

export interface StartedProbe<T> {
  /** Settles at the probe's end or at its timeout, whichever comes first. */
  result: Promise<ProbeResult<T>>;
  /**
   * Settles when the probe's own work has really ended. After a timeout the probe is told to
   * stop (its signal aborts) but may take a moment: the scheduler keeps it "running" until then,
   * so a next run never overlaps a straggler.
   */
  settled: Promise<void>;
}

export function startProbe<T>(probe: Probe<T>, options: RunProbeOptions): StartedProbe<T> {
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  let tracked = false;
  const result = execute(probe, options, (work) => {
    tracked = true;
    work.then(settle, settle);
  });
  // If the probe was never even started, there is nothing to wait for.
  void result.finally(() => tracked || settle()).catch(() => undefined);
  return { result, settled };
}

async function execute<T>(probe: Probe<T>, options: RunProbeOptions, track: (work: Promise<unknown>) => void): Promise<ProbeResult<T>> {
  const timeoutMs = probeTimeoutMs(probe, options.config);
  const controller = new AbortController();
  const onShutdown = () => controller.abort(new Error('agent is shutting down'));
  options.signal?.addEventListener('abort', onShutdown, { once: true });
  if (options.signal?.aborted) onShutdown();
  const startedAt = Date.now();
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  const log = options.log.child({ probe: probe.name });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new Error('probe timeout'));
      reject(Object.assign(new Error(`probe ${probe.name} did not finish within ${timeoutMs} ms`), { probeTimeout: true }));
    }, timeoutMs);
  });
  try {
    let work: Promise<T>;
    try {
      work = Promise.resolve(
        probe.run(
          {
            signal: controller.signal,
            log,
            config: options.config,
            hostPath: options.hostPath,
            env: options.env,
            remainingMs: () => Math.max(0, deadline - performance.now()),
            readOnlyState: options.readOnlyState === true,
            stateFiles: options.stateFiles.store(probe.name),
            facts: options.facts,
          },
          options.results,
        ),
      );
    } catch (err) {
      work = Promise.reject(err);
    }
    track(work);
    const data = await Promise.race([work, timeout]);
    const durationSeconds = (performance.now() - t0) / 1000;
    log.debug({ durationSeconds }, 'probe succeeded');
    return { probe: probe.name, ok: true, data, startedAt, durationSeconds, lastSuccessAt: null };
  } catch (err) {
    const durationSeconds = (performance.now() - t0) / 1000;
    const isTimeout = (err as { probeTimeout?: boolean }).probeTimeout === true;
    const agentError = toAgentError(err, isTimeout ? 'VTPM_ERR_PROBE_TIMEOUT' : 'VTPM_ERR_PROBE_FAILED');
    log.warn({ err: agentError.toJSON(), durationSeconds }, 'probe failed');
    return {
      probe: probe.name,
      ok: false,
      error: { code: agentError.code, message: agentError.message, details: agentError.details },
      startedAt,
      durationSeconds,
      lastSuccessAt: null,
    };
  } finally {
    clearTimeout(timer);
    controller.abort(new Error('probe finished'));
    options.signal?.removeEventListener('abort', onShutdown);
  }
}
