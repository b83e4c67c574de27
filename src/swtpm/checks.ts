/**
 * The emulation checks themselves: a named sequence of steps against throwaway swtpm instances.
 * A check never throws: the first failing step, its error and the TPM response code become the
 * result, and the workspace (children, directory) is disposed of on every path.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { AgentError } from '../errors.js';
import { abortError } from './channel.js';
import type { TpmVersion } from '../libvirt/facts.js';
import { SwtpmInstance } from './instance.js';
import { Workspace } from './workspace.js';
import type { Principal } from './principal.js';
import { TpmResponseError } from './rc.js';
import * as tpm12 from './tpm12.js';
import * as tpm2 from './tpm2.js';
import { pendingResult, type CheckLevel, type EmulationCheckResult, type StepTiming } from './types.js';

export interface CheckEnvironment {
  swtpmPath: string;
  principal: Principal | null;
  /** Parent directory of the private workspace. */
  tempBase: string;
  env: NodeJS.ProcessEnv;
  /** Agent shutdown / probe timeout. */
  signal: AbortSignal;
  /** Hard limit of this one check; swtpm is killed when it passes. */
  timeoutMs: number;
  log: Logger;
}

const RANDOM_BYTES = 16;
export const HARD_KILL_GRACE_MS = 250;
/** An owner-range NV index (TCG handle registry: 0x01000000–0x013FFFFF). */
export const NV_INDEX = 0x01007654;
const NV_SIZE = 32;

interface Run {
  ws: Workspace;
  deadline: number;
  signal: AbortSignal;
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  identity(manufacturer: string, firmware: string, revision: string): void;
}

class StepFailure extends Error {
  constructor(
    readonly step: string,
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error));
  }
}

function describe(err: unknown): Pick<EmulationCheckResult, 'message' | 'errorCode' | 'rc' | 'rcName'> {
  if (err instanceof TpmResponseError) return { message: err.message, errorCode: err.code, rc: err.rc, rcName: err.rcName };
  if (err instanceof AgentError) return { message: err.message, errorCode: err.code, rc: null, rcName: null };
  return { message: err instanceof Error ? err.message : String(err), errorCode: 'VTPM_ERR_PROBE_FAILED', rc: null, rcName: null };
}

/** Runs `body` as one check with its own hard timeout and workspace. */
export async function runCheck(version: TpmVersion, level: CheckLevel, env: CheckEnvironment, body: (run: Run) => Promise<void>): Promise<EmulationCheckResult> {
  const startedAt = Date.now();
  const t0 = performance.now();
  const deadline = t0 + env.timeoutMs;
  const controller = new AbortController();
  // Steps fail at `deadline` with a message saying what they waited for; the hard kill comes a
  // little later and only matters when something does not honour the deadline.
  const timer = setTimeout(() => controller.abort(new Error(`the check did not finish within ${env.timeoutMs} ms`)), env.timeoutMs + HARD_KILL_GRACE_MS);
  const onOuterAbort = () => controller.abort(env.signal.reason ?? new Error('aborted'));
  if (env.signal.aborted) onOuterAbort();
  else env.signal.addEventListener('abort', onOuterAbort, { once: true });
  const signal = controller.signal;
  const steps: StepTiming[] = [];
  const result: EmulationCheckResult = pendingResult(version, level, startedAt, steps);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s0 = performance.now();
    try {
      return await fn();
    } catch (err) {
      throw err instanceof StepFailure ? err : new StepFailure(name, err);
    } finally {
      steps.push({ name, durationSeconds: (performance.now() - s0) / 1000 });
    }
  };
  let ws: Workspace | null = null;
  try {
    ws = await step('workspace', () => Workspace.create({ base: env.tempBase, principal: env.principal, signal, log: env.log }));
    const run: Run = {
      ws,
      deadline,
      signal,
      step,
      identity: (manufacturer, firmware, revision) => {
        result.manufacturer = manufacturer;
        result.firmwareVersion = firmware;
        result.specRevision = revision;
      },
    };
    await body(run);
    result.ok = true;
  } catch (err) {
    const failure = err instanceof StepFailure ? err : new StepFailure('internal', err);
    result.failedStep = failure.step;
    Object.assign(result, describe(failure.error));
    // After an abort (shutdown, hard timeout) the step usually fails as a side effect of the kill;
    // the abort is the reason to report.
    if (signal.aborted && result.errorCode !== 'VTPM_ERR_EXEC_ABORTED') {
      const abort = abortError(signal, failure.step);
      Object.assign(result, { message: `${abort.message} (${result.message})`, errorCode: abort.code, rc: null, rcName: null });
    }
  } finally {
    clearTimeout(timer);
    env.signal.removeEventListener('abort', onOuterAbort);
    await ws?.dispose();
    result.durationSeconds = (performance.now() - t0) / 1000;
  }
  env.log.debug({ version, checkLevel: level, ok: result.ok, failedStep: result.failedStep, rcName: result.rcName, durationSeconds: result.durationSeconds }, 'emulation check finished');
  return result;
}

async function start(run: Run, env: CheckEnvironment, version: TpmVersion, stateDir: string, name: string, key?: Buffer): Promise<SwtpmInstance> {
  return SwtpmInstance.start(
    run.ws,
    { swtpmPath: env.swtpmPath, version, stateDir, name, env: env.env, deadline: run.deadline, ...(key ? { keyPassphrase: key } : {}) },
    run.signal,
  );
}

/** A failed TPM step names swtpm's own words when it has any (e.g. "Entering failure mode"). */
async function withDiagnostics<T>(inst: SwtpmInstance, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AgentError) {
      const diag = await inst.diagnostics();
      if (diag && !err.message.includes('swtpm said:')) err.message = `${err.message}; swtpm said: ${diag}`;
    }
    throw err;
  }
}

function checkRandom(bytes: Buffer): void {
  if (bytes.length !== RANDOM_BYTES) {
    throw new AgentError('VTPM_ERR_TPM_PROTOCOL', `GetRandom returned ${bytes.length} byte(s), ${RANDOM_BYTES} were asked for`);
  }
  if (bytes.every((b) => b === bytes[0])) {
    throw new AgentError('VTPM_ERR_TPM_PROTOCOL', `GetRandom returned ${RANDOM_BYTES} identical bytes (0x${bytes[0]?.toString(16)})`);
  }
}

/** basic, TPM 2.0: CMD_INIT, Startup, full SelfTest, GetRandom, fixed properties, Shutdown, CMD_SHUTDOWN. */
export function basicTpm2(env: CheckEnvironment): Promise<EmulationCheckResult> {
  return runCheck('2.0', 'basic', env, async (run) => {
    const { step, deadline, signal } = run;
    const stateDir = await step('state-dir', () => run.ws.stateDir('state'));
    const tpm = await step('spawn', () => start(run, env, '2.0', stateDir, 'a'));
    const send = (what: string, cmd: Buffer) => withDiagnostics(tpm, () => tpm.transmit(cmd, `TPM2_${what}`, deadline, signal));
    await step('init', () => withDiagnostics(tpm, () => tpm.init(deadline, signal)));
    await step('startup', async () => tpm2.parseStartup(await send('Startup', tpm2.startup())));
    await step('selftest', async () => tpm2.parseSelfTest(await send('SelfTest', tpm2.selfTest(true))));
    await step('getrandom', async () => checkRandom(tpm2.parseGetRandom(await send('GetRandom', tpm2.getRandom(RANDOM_BYTES)))));
    await step('getcapability', async () => {
      const props = tpm2.parseGetCapabilityProperties(await send('GetCapability', tpm2.getFixedProperties()));
      const fixed = tpm2.fixedProperties(props.properties);
      if (fixed.family !== '2.0') throw new AgentError('VTPM_ERR_TPM_PROTOCOL', `TPM family indicator is '${fixed.family}', expected '2.0'`);
      run.identity(fixed.manufacturer, fixed.firmwareVersion, fixed.revision);
    });
    await step('shutdown', async () => tpm2.parseShutdown(await send('Shutdown', tpm2.shutdown())));
    await step('stop', () => tpm.stop(deadline, signal));
  });
}

/** basic, TPM 1.2: CMD_INIT, Startup(ST_CLEAR), SelfTestFull, GetRandom, version capability, CMD_SHUTDOWN. */
export function basicTpm12(env: CheckEnvironment): Promise<EmulationCheckResult> {
  return runCheck('1.2', 'basic', env, async (run) => {
    const { step, deadline, signal } = run;
    const stateDir = await step('state-dir', () => run.ws.stateDir('state'));
    const tpm = await step('spawn', () => start(run, env, '1.2', stateDir, 'a'));
    const send = (what: string, cmd: Buffer) => withDiagnostics(tpm, () => tpm.transmit(cmd, `TPM_${what}`, deadline, signal));
    await step('init', () => withDiagnostics(tpm, () => tpm.init(deadline, signal)));
    await step('startup', async () => tpm12.parseStartup(await send('Startup', tpm12.startup())));
    await step('selftest', async () => tpm12.parseSelfTestFull(await send('SelfTestFull', tpm12.selfTestFull())));
    await step('getrandom', async () => checkRandom(tpm12.parseGetRandom(await send('GetRandom', tpm12.getRandom(RANDOM_BYTES)))));
    await step('getcapability', async () => {
      const info = tpm12.parseGetCapabilityVersion(await send('GetCapability', tpm12.getCapabilityVersion()));
      if (info.version !== '1.2') throw new AgentError('VTPM_ERR_TPM_PROTOCOL', `TPM reports version ${info.version}, expected 1.2`);
      run.identity(info.manufacturer, info.firmwareVersion, `level ${info.specLevel} errata ${info.errataRev}`);
    });
    await step('stop', () => tpm.stop(deadline, signal));
  });
}

/**
 * state, TPM 2.0: with an encrypted state (`--key`, as libvirt runs Nova's vTPMs) define and write
 * an NV index, stop, start again on the same state and key and read it back; then start with a
 * wrong key and require the TPM to refuse the state.
 */
export function stateTpm2(env: CheckEnvironment): Promise<EmulationCheckResult> {
  return runCheck('2.0', 'state', env, async (run) => {
    const { step, deadline, signal } = run;
    const key = Buffer.from(randomBytes(32).toString('hex'));
    const wrongKey = Buffer.from(randomBytes(32).toString('hex'));
    // ASCII auth value: TPM 2.0 strips trailing zero bytes from auth values, ASCII hex has none.
    const nvAuth = Buffer.from(randomBytes(8).toString('hex'));
    const payload = randomBytes(NV_SIZE);
    const stateDir = await step('state-dir', () => run.ws.stateDir('state'));

    const first = await step('spawn', () => start(run, env, '2.0', stateDir, 'a', key));
    const send1 = (what: string, cmd: Buffer) => withDiagnostics(first, () => first.transmit(cmd, `TPM2_${what}`, deadline, signal));
    await step('init', () => withDiagnostics(first, () => first.init(deadline, signal)));
    await step('startup', async () => tpm2.parseStartup(await send1('Startup', tpm2.startup())));
    await step('getcapability', async () => {
      const fixed = tpm2.fixedProperties(tpm2.parseGetCapabilityProperties(await send1('GetCapability', tpm2.getFixedProperties())).properties);
      run.identity(fixed.manufacturer, fixed.firmwareVersion, fixed.revision);
    });
    await step('nv-define', async () =>
      tpm2.parseNvDefineSpace(await send1('NV_DefineSpace', tpm2.nvDefineSpace({ index: NV_INDEX, authValue: nvAuth, dataSize: NV_SIZE }))),
    );
    await step('nv-write', async () => tpm2.parseNvWrite(await send1('NV_Write', tpm2.nvWrite(NV_INDEX, nvAuth, payload))));
    await step('shutdown', async () => tpm2.parseShutdown(await send1('Shutdown', tpm2.shutdown())));
    await step('stop', () => first.stop(deadline, signal));

    const second = await step('restart', () => start(run, env, '2.0', stateDir, 'b', key));
    const send2 = (what: string, cmd: Buffer) => withDiagnostics(second, () => second.transmit(cmd, `TPM2_${what}`, deadline, signal));
    await step('restart-init', () => withDiagnostics(second, () => second.init(deadline, signal)));
    await step('restart-startup', async () => tpm2.parseStartup(await send2('Startup', tpm2.startup())));
    const readBack = await step('nv-read', async () => tpm2.parseNvRead(await send2('NV_Read', tpm2.nvRead(NV_INDEX, nvAuth, NV_SIZE))));
    await step('nv-compare', async () => {
      if (!readBack.equals(payload)) {
        throw new AgentError('VTPM_ERR_TPM_PROTOCOL', `NV index 0x${NV_INDEX.toString(16)} read back ${readBack.length} byte(s) that differ from what was written before the restart`);
      }
    });
    await step('restart-shutdown', async () => tpm2.parseShutdown(await send2('Shutdown', tpm2.shutdown())));
    await step('restart-stop', () => second.stop(deadline, signal));

    await step('wrong-key', async () => {
      let refused = false;
      let third: SwtpmInstance | null = null;
      try {
        third = await start(run, env, '2.0', stateDir, 'c', wrongKey);
        await third.init(deadline, signal);
      } catch (err) {
        // Refusal is a TPM error at CMD_INIT (libvirt sees "TPM result for CMD_INIT: 0x101") or an exit at load.
        if (err instanceof TpmResponseError || (err instanceof AgentError && err.code === 'VTPM_ERR_SWTPM_START' && third === null)) refused = true;
        else throw err;
      } finally {
        await third?.kill();
      }
      if (!refused) throw new AgentError('VTPM_ERR_TPM_PROTOCOL', 'swtpm accepted the encrypted TPM state with a wrong key');
    });
  });
}
