/**
 * Harness for the health checks: runs the guest inventory and health probes against the real
 * host into one HostState, exactly as the agent does, with a private agent state dir.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync as writeFile } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { configSchema, type AgentConfig, type ConfigInput } from '../../src/config/schema.js';
import { HostFacts } from '../../src/host/facts.js';
import { runProbe } from '../../src/probes/runner.js';
import type { Probe } from '../../src/probes/types.js';
import type { ProbeResult } from '../../src/results.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { guestInventoryProbe } from '../../src/probes/guest-inventory.js';
import { healthProbes } from '../../src/health/index.js';
import type { CheckResult, HealthProbeData } from '../../src/health/types.js';
import { testStateFiles } from '../fixtures/state-files.js';

/** The agent's own registry, in dependency order (the scheduler orders by `after`; here the list already is). */
export { healthProbes };

export interface HealthRig {
  config: AgentConfig;
  state: HostState;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  /** Runs the inventory (unless told not to) and the given probes, in order. */
  run(probes?: Probe[], opts?: { inventory?: boolean }): Promise<Map<string, ProbeResult>>;
  check(id: string): CheckResult | undefined;
  cleanup(): void;
}

export function healthRig(overrides: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env): HealthRig {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-'));
  const config = configSchema.parse({ ...overrides, stateDir });
  const state = new HostState();
  const log = pino({ level: 'silent' });
  const hostPath = hostPathResolver(config.hostRoot);
  const stateFiles = testStateFiles();
  const rig: HealthRig = {
    config,
    state,
    stateDir,
    env,
    async run(probes = healthProbes, opts = {}) {
      const out = new Map<string, ProbeResult>();
      // One call, one round: its probes share the round's host facts.
      const facts = new HostFacts({ config, hostPath });
      if (opts.inventory !== false) {
        // libvirtd may be restarting under another test: wait for a real inventory, never run per-guest checks without one.
        for (let i = 0; ; i++) {
          const inv = await runProbe(guestInventoryProbe as Probe, { config, log, hostPath, env, results: state, stateFiles, facts });
          state.set(inv);
          out.set(inv.probe, inv);
          if (inv.ok) break;
          if (i >= 120) throw new Error(`guest inventory keeps failing: ${inv.error?.message}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      for (const p of probes) {
        const r = await runProbe(p, { config, log, hostPath, env, results: state, stateFiles, facts });
        state.set(r);
        out.set(p.name, r);
      }
      return out;
    },
    check(id) {
      for (const r of state.all()) {
        const c = (r.data as HealthProbeData | undefined)?.checks?.find((x) => x.check === id);
        if (c) return c;
      }
      return undefined;
    },
    cleanup() {
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return rig;
}

/* ---- vTPM test guests on the shared libvirtd, all named `vtpmtest-health-*` ---- */


export const HEALTH_PREFIX = 'vtpmtest-health-';
export const URI = 'qemu:///system';

function virshOnce(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('virsh', ['-c', URI, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * virsh against the shared libvirtd. Other tests restart libvirtd (reboot scenarios), so a
 * connection failure is waited out (up to a minute) instead of failing this test.
 */
export async function virsh(args: string[], timeoutMs = 90_000): Promise<{ code: number; stdout: string; stderr: string }> {
  for (let i = 0; ; i++) {
    const r = await virshOnce(args, timeoutMs);
    if (r.code === 0 || !/failed to connect to the hypervisor/.test(r.stderr) || i >= 120) return r;
    await new Promise((res) => setTimeout(res, 500));
  }
}

export async function virshOk(args: string[]): Promise<string> {
  const r = await virsh(args);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export interface TestGuest {
  name: string;
  uuid: string;
  stateDir: string;
  permall: string;
  swtpmLog: string;
  qemuLog: string;
}

/** Defines a minimal TCG q35 guest with a TPM 2.0 CRB emulator (no disk, 128 MiB). */
export async function defineGuest(tag: string): Promise<TestGuest> {
  const name = `${HEALTH_PREFIX}${tag}-${randomBytes(3).toString('hex')}`;
  const uuid = crypto.randomUUID();
  const xml = `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
<video><model type='none'/></video><memballoon model='none'/></devices></domain>`;
  const file = path.join(os.tmpdir(), `${name}.xml`);
  writeFile(file, xml);
  try {
    await virshOk(['define', file]);
  } finally {
    rmSync(file, { force: true });
  }
  const stateDir = `/var/lib/libvirt/swtpm/${uuid}/tpm2`;
  return { name, uuid, stateDir, permall: `${stateDir}/tpm2-00.permall`, swtpmLog: `/var/log/swtpm/libvirt/qemu/${name}-swtpm.log`, qemuLog: `/var/log/libvirt/qemu/${name}.log` };
}

/** Destroys (if running) and undefines the guest with its TPM state, and removes its logs. */
export async function removeGuest(g: TestGuest): Promise<void> {
  await virsh(['destroy', g.name]);
  await virsh(['undefine', '--tpm', g.name]);
  rmSync(`/var/lib/libvirt/swtpm/${g.uuid}`, { recursive: true, force: true });
  rmSync(g.swtpmLog, { force: true });
  rmSync(g.qemuLog, { force: true });
}

export function findingsFor(check: CheckResult | undefined, subject: string): CheckResult['findings'] {
  return check?.findings.filter((f) => f.subject === subject) ?? [];
}
