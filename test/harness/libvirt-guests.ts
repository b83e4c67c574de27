/**
 * Small vTPM guests on the shared libvirtd (TCG, no disk, 128 MiB) for the guests tests. Every
 * domain is named `vtpmtest-guests-p<pid>-*` and every domain and secret UUID starts with
 * `7e570005-`: cleanup removes this process's objects and those of dead processes only, so two
 * runs of these tests on one machine (a developer's and the full suite) do not break each other.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireCommands } from './components.js';

export const PREFIX = 'vtpmtest-guests-';
/** Prefix of this process's domains. */
export const RUN_PREFIX = `${PREFIX}p${process.pid}-`;

/** A domain name owned by this process. */
export function guestName(suffix: string): string {
  return `${RUN_PREFIX}${suffix}`;
}
export const UUID_PREFIX = '7e570005-';
export const URI = 'qemu:///system';

export interface VirshResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function virsh(args: string[], timeoutMs = 60_000): Promise<VirshResult> {
  return new Promise((resolve) => {
    execFile('virsh', ['-c', URI, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function virshOk(args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await virsh(args, timeoutMs);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A UUID in our namespace. */
export function testUuid(): string {
  const h = randomBytes(12).toString('hex');
  return `${UUID_PREFIX}${h.slice(0, 4)}-4${h.slice(4, 7)}-8${h.slice(7, 10)}-${h.slice(10, 22)}`;
}

export interface GuestSpec {
  name: string;
  uuid: string;
  tpmVersion: '2.0' | '1.2';
  model: 'tpm-crb' | 'tpm-tis';
  secretUuid?: string;
  /** Nova metadata (namespace 1.1); extra specs optional. */
  nova?: { instanceName: string; project: string; flavor: string; extraSpecs?: Record<string, string> };
}

export function domainXml(spec: GuestSpec): string {
  const nova = spec.nova
    ? `<metadata><nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
      <nova:name>${spec.nova.instanceName}</nova:name>
      <nova:flavor name="${spec.nova.flavor}"><nova:memory>128</nova:memory>${
        spec.nova.extraSpecs
          ? `<nova:extraSpecs>${Object.entries(spec.nova.extraSpecs)
              .map(([k, v]) => `<nova:extraSpec name="${k}">${v}</nova:extraSpec>`)
              .join('')}</nova:extraSpecs>`
          : ''
      }</nova:flavor>
      <nova:owner><nova:user uuid="u0">tester</nova:user><nova:project uuid="p-${spec.nova.project}">${spec.nova.project}</nova:project></nova:owner>
    </nova:instance></metadata>`
    : '';
  const enc = spec.secretUuid ? `<encryption secret='${spec.secretUuid}'/>` : '';
  return `<domain type='qemu'>
  <name>${spec.name}</name>
  <uuid>${spec.uuid}</uuid>
  ${nova}
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <tpm model='${spec.model}'><backend type='emulator' version='${spec.tpmVersion}'>${enc}</backend></tpm>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>`;
}

function withTempFile<T>(content: string, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(tmpdir(), `${PREFIX}xml-`));
  const file = path.join(dir, 'f');
  writeFileSync(file, content, { mode: 0o600 });
  return fn(file).finally(() => rmSync(dir, { recursive: true, force: true }));
}

export async function defineGuest(spec: GuestSpec): Promise<void> {
  await withTempFile(domainXml(spec), (f) => virshOk(['define', f]));
}

/**
 * A vTPM secret as Nova defines it in `user` mode: ephemeral, private, usage `vtpm` named by the
 * instance UUID, with a 32-byte value. Keep `key` to re-create it after a libvirtd restart.
 */
export async function defineSecret(opts: { uuid: string; instanceUuid: string; key: Buffer; ephemeral: boolean }): Promise<void> {
  const xml = `<secret ephemeral='${opts.ephemeral ? 'yes' : 'no'}' private='yes'>
  <uuid>${opts.uuid}</uuid><description>${PREFIX}secret</description>
  <usage type='vtpm'><name>${opts.instanceUuid}</name></usage></secret>`;
  await withTempFile(xml, (f) => virshOk(['secret-define', f]));
  await withTempFile(opts.key.toString('base64'), (f) => virshOk(['secret-set-value', opts.uuid, '--file', f]));
}

export async function domState(name: string): Promise<string> {
  return (await virshOk(['domstate', '--reason', name])).trim();
}

export async function secretUuids(): Promise<string[]> {
  const out = await virshOk(['secret-list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((u) => /^[0-9a-f-]{36}$/.test(u));
}

function ownerAlive(name: string): boolean {
  const m = /^vtpmtest-guests-p(\d+)-/.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Destroys and undefines (with TPM state) this process's `vtpmtest-guests-*` domains and those
 * left by dead processes, then our vTPM secrets that no remaining domain uses.
 */
export async function cleanupGuests(): Promise<void> {
  const names = (await virshOk(['list', '--all', '--name'])).split('\n').map((s) => s.trim()).filter((s) => s.startsWith(PREFIX));
  for (const name of names) {
    if (ownerAlive(name)) continue;
    await virsh(['destroy', name]);
    const r = await virsh(['undefine', '--tpm', name]);
    if (r.code !== 0) await virsh(['undefine', name]);
  }
  const domains = new Set((await virshOk(['list', '--all', '--uuid'])).split('\n').map((s) => s.trim()));
  const list = await virshOk(['secret-list']);
  for (const line of list.split('\n')) {
    const [uuid, , usage] = line.trim().split(/\s+/);
    if (!uuid || !(uuid.startsWith(UUID_PREFIX) || usage?.startsWith(UUID_PREFIX))) continue;
    if (usage && domains.has(usage)) continue;
    await virsh(['secret-undefine', uuid]);
  }
}

const SOCKET = '/run/libvirt/libvirt-sock';

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until libvirtd answers (the first call after a start can take a few seconds). */
export async function waitForLibvirt(timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(SOCKET)) {
      const r = await virsh(['version'], 20_000);
      if (r.code === 0) return;
    }
    if (Date.now() > until) throw new Error('libvirtd did not come back');
    await sleep(200);
  }
}

/**
 * Restarts the shared libvirtd (ephemeral secrets vanish, running guests survive), and always
 * leaves one running: started again even if the stop failed half-way.
 */
/** The running libvirtd processes, by their process name (never trusting a pid file that may be stale). */
function libvirtdPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm is in parentheses; a zombie (state Z) is already gone.
      const m = /^\d+ \((.*)\) (\S)/.exec(stat);
      if (m && m[1] === 'libvirtd' && m[2] !== 'Z') pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Stops the test host's libvirtd for real (SIGTERM, as systemd would), waiting until it is gone. */
export async function stopLibvirtd(): Promise<void> {
  requireCommands('libvirtd');
  const pids = libvirtdPids();
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const until = Date.now() + 20_000;
  while (libvirtdPids().some((p) => pids.includes(p)) && Date.now() < until) await sleep(100);
}

/** Starts libvirtd (daemonised) unless one runs, and waits until it answers. */
export async function startLibvirtd(): Promise<void> {
  if (libvirtdPids().length === 0) {
    await new Promise<void>((resolve, reject) => execFile('libvirtd', ['-d'], { timeout: 30_000 }, (err) => (err ? reject(err) : resolve())));
  }
  await waitForLibvirt();
}

export async function restartLibvirtd(): Promise<void> {
  try {
    await stopLibvirtd();
  } finally {
    await startLibvirtd();
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, stepMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(stepMs);
  }
}
