import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readNewLines } from '../../logs/read-since.js';
import { readText } from '../../host/fsinfo.js';
import { isSwtpmAppArmorDenial, isSwtpmAvc, isSwtpmSetroubleshoot, parseAppArmorDenial, parseAppArmorProfiles, parseRestoreconDryRun, parseSelinuxAvc, parseSelinuxConfigType, pathsNotInProfile, type Relabel, selinuxType, swtpmProfile } from '../parse/mac.js';
import { lineTime } from '../parse/timestamp.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, worst, type HealthProbeData } from '../types.js';
import { MiB, runCommand, SMALL_OUTPUT_BYTES } from '../../util/exec.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import type { StateStore } from '../../util/state-file.js';
import { healthProbe, innerTimeout } from '../probe.js';

const storeSchema = z.object({
  version: z.literal(1),
  /** `baseline`: the first read of this log's backlog is not finished (larger than one run's budget). */
  files: z.record(z.string(), z.object({ ino: z.number(), offset: z.number(), baseline: z.boolean().optional() })),
  totals: z.object({ apparmor: z.number(), selinux: z.number() }),
  recent: z.array(z.object({ mac: z.enum(['apparmor', 'selinux']), at: z.number(), line: z.string() })),
});
type Store = z.infer<typeof storeSchema>;
export const MAC_STORE_FILE = 'health/mac.json';
const STORE_NAME = 'health/mac';
const STORE_CONSEQUENCE = 'MAC denial totals and log positions are not kept (each run reads the logs as new)';

export interface MacDenialTotals {
  apparmor: number;
  selinux: number;
}

export interface MacInput {
  hostPath: HostPathResolver;
  logFiles: string[];
  agentStateDir: string;
  windowSeconds: number;
  maxBytesPerFile: number;
  apparmor: boolean;
  selinux: boolean;
  signal?: AbortSignal;
  timeoutMs: number;
  now?: number;
  /** swtpm state, log and runtime dirs libvirt uses: the AppArmor profile must allow them, restorecon must find them clean. */
  swtpmPaths: string[];
  env?: NodeJS.ProcessEnv;
  /** The probe's state files (read-only in a one-shot check: read the store, never write or move it). */
  state: StateStore;
}

export interface MacOutput {
  checks: CheckResult[];
  totals: MacDenialTotals;
  /** Which MAC systems are active on the host (for the metrics: not-applicable hosts export nothing). */
  active: { apparmor: boolean; selinux: boolean };
}

/**
 * Follows the kernel/audit logs for swtpm denials, counting them (totals survive restarts).
 * Stops with the signal's reason between files and reads, saving nothing, once the probe is aborted.
 */
export async function scanDenials(input: MacInput, now: number): Promise<{ store: Store; problem: string | null }> {
  const file = path.join(input.agentStateDir, MAC_STORE_FILE);
  const stored = input.state.file({ name: STORE_NAME, path: file, version: 1, schema: storeSchema, consequence: STORE_CONSEQUENCE });
  const loaded = await stored.load(now);
  const store: Store = loaded.value ?? { version: 1, files: {}, totals: { apparmor: 0, selinux: 0 }, recent: [] };
  for (const log of input.logFiles) {
    input.signal?.throwIfAborted();
    // One bounded read per file and run (maxBytesPerFile is the upper bound of a run): a backlog
    // larger than that is read over several runs, not parsed all at once on the event loop.
    // No cursor (first start, lost store): the backlog is old. Denials count (the baseline), but
    // only those with their own time (audit(…) stamp) can be recent; others are not "now".
    const firstRead = store.files[log] === undefined || store.files[log]!.baseline === true;
    const untimed = firstRead ? null : now;
    let res;
    try {
      res = await readNewLines(input.hostPath(log), store.files[log], input.maxBytesPerFile);
    } catch {
      continue; // missing log file: that MAC (or that log) is not in use here
    }
    store.files[log] = firstRead && res.more ? { ...res.cursor, baseline: true } : res.cursor;
    for (const line of res.lines) {
      const aa = parseAppArmorDenial(line);
      if (aa && isSwtpmAppArmorDenial(aa)) {
        store.totals.apparmor++;
        const at = lineTime(line) ?? untimed;
        if (at !== null) store.recent.push({ mac: 'apparmor', at, line: line.slice(0, 400) });
        continue;
      }
      const avc = parseSelinuxAvc(line);
      if ((avc && isSwtpmAvc(avc)) || isSwtpmSetroubleshoot(line)) {
        store.totals.selinux++;
        const at = lineTime(line) ?? untimed;
        if (at !== null) store.recent.push({ mac: 'selinux', at, line: line.slice(0, 400) });
      }
    }
  }
  // Aborted (probe timeout): no partial state is saved; the next run starts from the old cursors.
  input.signal?.throwIfAborted();
  store.recent = store.recent
    .filter((r) => r.at >= now - input.windowSeconds * 1000)
    .sort((a, b) => a.at - b.at)
    .slice(-50);
  let problem = loaded.problem;
  // An existing store that could not be read is not overwritten with this run's fresh one.
  if (loaded.canSave) {
    try {
      await stored.save(store);
    } catch (err) {
      problem = (err as Error).message;
    }
  }
  return { store, problem };
}

/** C7: AppArmor enabled → swtpm profile loaded and enforcing, and no recent denials for swtpm. */
export function evaluateAppArmor(enabled: boolean, profilesText: string | null, recent: Store['recent'], profile: { file: string; text: string; paths: string[] } | null = null): CheckResult {
  if (!enabled) return checkResult('apparmor', [], { enabled: false }, 'not-applicable');
  const findings: Finding[] = [];
  const profiles = profilesText === null ? null : parseAppArmorProfiles(profilesText);
  const prof = profiles ? swtpmProfile(profiles) : null;
  if (profiles && !prof) {
    findings.push(finding('VTPM_HEALTH_APPARMOR_PROFILE_MISSING', 'warn', 'AppArmor is enabled but no swtpm profile is loaded; swtpm runs under whatever profile libvirt gives it.', { subject: 'swtpm' }));
  } else if (prof && prof.mode !== 'enforce') {
    findings.push(finding('VTPM_HEALTH_APPARMOR_PROFILE_COMPLAIN', 'warn', `The AppArmor profile ${prof.name} is in ${prof.mode} mode.`, { subject: prof.name }));
  }
  if (profile && prof) {
    for (const p of pathsNotInProfile(profile.text, profile.paths)) {
      findings.push(finding('VTPM_HEALTH_APPARMOR_PROFILE_PATHS', 'warn', `No rule of ${profile.file} covers ${p}; swtpm will be denied there.`, { subject: p }));
    }
  }
  const denials = recent.filter((r) => r.mac === 'apparmor');
  if (denials.length) {
    findings.push(
      finding('VTPM_HEALTH_APPARMOR_DENIED', 'fail', `${denials.length} AppArmor denial(s) for swtpm recently; last: ${denials[denials.length - 1]!.line}`, {
        subject: 'swtpm',
        details: { count: denials.length, last: denials[denials.length - 1]!.line },
      }),
    );
  }
  return checkResult('apparmor', findings, { enabled: true, profile: prof, profilesReadable: profiles !== null });
}

export interface SelinuxFacts {
  enforce: '0' | '1' | null;
  /** `swtpm` binary → SELinux type, when readable. */
  labels: Record<string, string | null>;
  modules: string[] | null;
  /** `restorecon -n -v` of the swtpm binaries and dirs; null when restorecon is not available. */
  relabels: Relabel[] | null;
}

/** C8: SELinux present → enforcing, swtpm_exec_t on the binary, swtpm modules, recent AVCs. */
export function evaluateSelinux(facts: SelinuxFacts | null, recent: Store['recent']): CheckResult {
  if (!facts) return checkResult('selinux', [], { enabled: false }, 'not-applicable');
  const findings: Finding[] = [];
  if (facts.enforce === '0') findings.push(finding('VTPM_HEALTH_SELINUX_PERMISSIVE', 'warn', 'SELinux is in permissive mode.'));
  for (const [bin, type] of Object.entries(facts.labels)) {
    if (bin.endsWith('/swtpm') && type !== null && type !== 'swtpm_exec_t') {
      findings.push(finding('VTPM_HEALTH_SELINUX_LABEL', 'fail', `${bin} is labelled ${type}, not swtpm_exec_t: libvirt cannot transition swtpm into swtpm_t ("cannot execute binary ${bin}: Permission denied").`, { subject: bin }));
    }
  }
  for (const r of facts.relabels ?? []) {
    if (facts.labels[r.path] !== undefined) continue; // already reported above
    findings.push(finding('VTPM_HEALTH_SELINUX_LABEL', 'warn', `${r.path} is labelled ${r.from}; the policy expects ${r.to} (restorecon would relabel it).`, { subject: r.path }));
  }
  if (facts.modules) {
    const missing = ['swtpm', 'swtpm_libvirt', 'swtpm_svirt'].filter((m) => !facts.modules!.includes(m));
    if (missing.length) findings.push(finding('VTPM_HEALTH_SELINUX_MODULES_MISSING', 'warn', `SELinux policy modules missing: ${missing.join(', ')}.`, { details: { missing } }));
  }
  const avcs = recent.filter((r) => r.mac === 'selinux');
  if (avcs.length) {
    findings.push(
      finding('VTPM_HEALTH_SELINUX_DENIED', 'fail', `${avcs.length} SELinux denial(s) involving swtpm recently; last: ${avcs[avcs.length - 1]!.line}`, {
        subject: 'swtpm',
        details: { count: avcs.length, last: avcs[avcs.length - 1]!.line },
      }),
    );
  }
  return checkResult('selinux', findings, { enabled: true, enforcing: facts.enforce === '1', labels: facts.labels, modules: facts.modules });
}

/** `stat -c %C` prints the SELinux context of a file (or `?`). */
async function selinuxLabel(file: string, input: MacInput): Promise<string | null> {
  try {
    const r = await runCommand('stat', ['-c', '%C', file], { timeoutMs: input.timeoutMs, maxOutputBytes: SMALL_OUTPUT_BYTES, signal: input.signal });
    if (r.exitCode !== 0) return null;
    return selinuxType(r.stdout.trim());
  } catch {
    return null;
  }
}

/** A dry run changes nothing; it lists what has drifted from the policy's file contexts. */
async function restoreconDryRun(input: MacInput): Promise<Relabel[] | null> {
  // restorecon compares against this namespace's paths: meaningless under a host-root prefix.
  if (input.hostPath('/') !== '/') return null;
  try {
    const targets = ['/usr/bin/swtpm', '/usr/bin/swtpm_setup', '/usr/bin/swtpm_ioctl', ...input.swtpmPaths];
    // One line per file to relabel: a few hundred at most under the swtpm state directories.
    const r = await runCommand('restorecon', ['-R', '-n', '-v', ...targets], { timeoutMs: input.timeoutMs, maxOutputBytes: 4 * MiB, signal: input.signal, env: input.env });
    return parseRestoreconDryRun(r.stdout);
  } catch {
    return null;
  }
}

async function selinuxModules(hostPath: HostPathResolver): Promise<string[] | null> {
  const cfg = await readText(hostPath('/etc/selinux/config'));
  const store = (cfg.text ? parseSelinuxConfigType(cfg.text) : null) ?? 'targeted';
  const base = hostPath(`/var/lib/selinux/${store}/active/modules`);
  try {
    const out = new Set<string>();
    for (const prio of await readdir(base)) {
      if (!/^\d+$/.test(prio)) continue;
      for (const m of await readdir(path.join(base, prio)).catch(() => [] as string[])) out.add(m);
    }
    return [...out];
  } catch {
    return null;
  }
}

export async function checkMac(input: MacInput): Promise<MacOutput> {
  const now = input.now ?? Date.now();
  const { hostPath } = input;
  const aaEnabled = (await readFile(hostPath('/sys/module/apparmor/parameters/enabled'), 'utf8').catch(() => 'N')).trim() === 'Y';
  const enforceRaw = (await readFile(hostPath('/sys/fs/selinux/enforce'), 'utf8').catch(() => null))?.trim() ?? null;
  const seEnabled = enforceRaw === '0' || enforceRaw === '1';
  const scan = aaEnabled || seEnabled ? await scanDenials(input, now) : null;
  const recent = scan?.store.recent ?? [];
  const checks: CheckResult[] = [];
  if (input.apparmor) {
    const profiles = aaEnabled ? (await readText(hostPath('/sys/kernel/security/apparmor/profiles'))).text : null;
    let profile: { file: string; text: string; paths: string[] } | null = null;
    if (aaEnabled) {
      const file = '/etc/apparmor.d/usr.bin.swtpm';
      const [main, local] = await Promise.all([readText(hostPath(file)), readText(hostPath('/etc/apparmor.d/local/usr.bin.swtpm'))]);
      if (main.text !== null) profile = { file, text: `${main.text}\n${local.text ?? ''}`, paths: input.swtpmPaths };
    }
    checks.push(evaluateAppArmor(aaEnabled, profiles, recent, profile));
  }
  if (input.selinux) {
    let facts: SelinuxFacts | null = null;
    if (seEnabled) {
      const labels: Record<string, string | null> = {};
      for (const bin of ['/usr/bin/swtpm', '/usr/bin/swtpm_setup']) labels[bin] = await selinuxLabel(hostPath(bin), input);
      facts = { enforce: enforceRaw as '0' | '1', labels, modules: await selinuxModules(hostPath), relabels: await restoreconDryRun(input) };
    }
    checks.push(evaluateSelinux(facts, recent));
  }
  if (scan?.problem) {
    for (const c of checks) {
      if (c.status === 'not-applicable') continue;
      c.findings.push(finding('VTPM_HEALTH_LOG_UNREADABLE', 'warn', `MAC log cursors: ${scan.problem}.`));
      c.status = worst(c.findings.map((f) => f.status));
    }
  }
  return { checks, totals: scan?.store.totals ?? { apparmor: 0, selinux: 0 }, active: { apparmor: aaEnabled, selinux: seEnabled } };
}

export interface MacProbeData extends HealthProbeData {
  totals: MacDenialTotals;
  active: { apparmor: boolean; selinux: boolean };
}

/** C7 + C8: AppArmor and SELinux state for swtpm and denials in the kernel/audit logs. */
export const healthMacProbe = healthProbe<MacProbeData>({
  name: 'health-mac',
  title: 'Health: AppArmor / SELinux',
  description: 'swtpm AppArmor profile mode, SELinux mode/labels/modules, and swtpm denials in the kernel and audit logs',
  toggles: ['apparmor', 'selinux'],
  async run(ctx) {
    const h = ctx.config.health;
    const out = await checkMac({
      hostPath: ctx.hostPath,
      logFiles: h.macLogFiles,
      agentStateDir: ctx.config.stateDir,
      windowSeconds: h.logFailureWindowSeconds,
      maxBytesPerFile: h.logMaxBytesPerRun,
      apparmor: h.checks.apparmor,
      selinux: h.checks.selinux,
      signal: ctx.signal,
      timeoutMs: innerTimeout(ctx),
      swtpmPaths: [ctx.config.swtpm.stateDir, h.swtpmLogDir, h.swtpmRunDir],
      env: ctx.env,
      state: ctx.stateFiles,
    });
    return { checks: out.checks, totals: out.totals, active: out.active };
  },
});
