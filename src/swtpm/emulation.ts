/**
 * One round of emulation checks, one check at a time: basic per TPM version, state for TPM 2.0,
 * as configured. Results carry each check's last success across rounds.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { toAgentError } from '../errors.js';
import type { TpmVersion } from '../libvirt/facts.js';
import { basicTpm12, basicTpm2, HARD_KILL_GRACE_MS, stateTpm2, type CheckEnvironment } from './checks.js';
import { sweepStaleWorkspaces } from './workspace.js';
import { swtpmNames, type LoadedPrincipal } from '../host/swtpm-principal.js';
import { runAsPrincipal, type Principal } from './principal.js';
import { pendingResult, type CheckLevel, type EmulationCheckResult, type EmulationData } from './types.js';

export interface EmulationRunOptions {
  config: AgentConfig;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  log: Logger;
  /** The round's swtpm principal (asked only when the check runs as the swtpm user). */
  swtpmPrincipal: () => Promise<LoadedPrincipal>;
  /** Milliseconds left for the whole round (the probe's timeout). */
  remainingMs: () => number;
  previous?: EmulationData | null;
  /** For tests: the uid to decide "root or not" by. */
  uid?: number | null;
}

/** Room left at the end of the round for disposing of the last check before the probe's deadline. */
const ROUND_MARGIN_MS = 500;

export function plannedChecks(config: AgentConfig): Array<{ version: TpmVersion; level: CheckLevel }> {
  const plan: Array<{ version: TpmVersion; level: CheckLevel }> = [];
  const { versions, levels } = config.emulation;
  for (const version of ['1.2', '2.0'] as const) {
    if (!versions.includes(version)) continue;
    if (levels.includes('basic')) plan.push({ version, level: 'basic' });
    if (version === '2.0' && levels.includes('state')) plan.push({ version, level: 'state' });
  }
  return plan;
}

function notRun(version: TpmVersion, level: CheckLevel, step: string, message: string, errorCode: string): EmulationCheckResult {
  return { ...pendingResult(version, level, Date.now()), failedStep: step, message, errorCode };
}

// Checks run one at a time in this process, whoever asks (scheduler or `check`).
let queue: Promise<unknown> = Promise.resolve();
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

export function runEmulationChecks(options: EmulationRunOptions): Promise<EmulationData> {
  return exclusive(() => runRound(options));
}

async function runRound(options: EmulationRunOptions): Promise<EmulationData> {
  const { config, log } = options;
  const tempBase = config.emulation.tempDir ?? os.tmpdir();
  const plan = plannedChecks(config);
  const data: EmulationData = {
    swtpmPath: config.swtpm.swtpmPath,
    runAs: { mode: config.emulation.runAs, user: null, group: null, uid: null, gid: null },
    tempBase,
    checks: [],
  };
  let principal: Principal | null = null;
  try {
    // The names libvirt would use (configured, or qemu.conf's); not needed when running as the agent itself.
    const loaded = config.emulation.runAs === 'self' ? null : await options.swtpmPrincipal();
    principal = loaded ? await runAsPrincipal(config.emulation.runAs, swtpmNames(config, loaded), loaded.accountsRead, options.uid === undefined ? undefined : options.uid) : null;
  } catch (err) {
    const e = toAgentError(err, 'VTPM_ERR_SWTPM_START');
    data.checks = plan.map(({ version, level }) => notRun(version, level, 'principal', e.message, e.code));
    return carry(data, options.previous);
  }
  if (principal) data.runAs = { mode: config.emulation.runAs, user: principal.user, group: principal.group, uid: principal.uid, gid: principal.gid };
  else data.runAs = { ...data.runAs, uid: process.getuid?.() ?? null, gid: process.getgid?.() ?? null };

  await sweepStaleWorkspaces(tempBase, log).then((removed) => {
    if (removed.length) log.warn({ removed }, 'removed emulation workspaces left by an agent that was killed');
  });

  for (const { version, level } of plan) {
    const left = options.remainingMs() - ROUND_MARGIN_MS;
    if (options.signal.aborted || left <= HARD_KILL_GRACE_MS) {
      data.checks.push(notRun(version, level, 'not-run', options.signal.aborted ? 'the round was aborted before this check' : 'no time left in the round for this check', 'VTPM_ERR_PROBE_TIMEOUT'));
      continue;
    }
    const env: CheckEnvironment = {
      swtpmPath: config.swtpm.swtpmPath,
      principal,
      tempBase,
      env: options.env,
      signal: options.signal,
      timeoutMs: Math.min(config.emulation.checkTimeoutSeconds * 1000, left - HARD_KILL_GRACE_MS),
      log,
    };
    const run = version === '1.2' ? basicTpm12 : level === 'basic' ? basicTpm2 : stateTpm2;
    const result = await run(env);
    if (!result.ok) log.warn({ version, checkLevel: level, failedStep: result.failedStep, rcName: result.rcName, message: result.message }, 'emulation check failed');
    data.checks.push(result);
  }
  return carry(data, options.previous);
}

function carry(data: EmulationData, previous: EmulationData | null | undefined): EmulationData {
  for (const check of data.checks) {
    const before = previous?.checks.find((c) => c.version === check.version && c.level === check.level);
    check.lastSuccessAt = check.ok ? check.startedAt + check.durationSeconds * 1000 : (before?.lastSuccessAt ?? null);
  }
  return data;
}
