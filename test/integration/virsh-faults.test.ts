/**
 * virsh and swtpm_setup answers the agent cannot use, against the real agent process (`serve`):
 * stand-ins that pass through to the real tools except in the mode a file names
 * (test/fixtures/faulty-output) print garbage or 50 MB. Each fault must fail its probe with a coded
 * reason (vtpm_probe_success 0), be cited by the verdict, keep the agent's memory bounded (the
 * child is killed at its output cap, never buffered whole), and heal without a restart once the
 * real tool answers again.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, spawnCli, waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { requireLibvirt } from '../harness/libvirt.js';

requireLibvirt();
requireCommands('swtpm_setup', 'sh', 'head', 'tr', 'sed');

const fixtures = fileURLToPath(new URL('../fixtures/faulty-output/', import.meta.url));
const MiB = 1024 * 1024;

interface ProbeStatus {
  probe: string;
  ok: boolean;
  error?: { code: string; message: string; details?: Record<string, unknown> };
}
interface Status {
  probes: ProbeStatus[];
  verdict: { anyUsable: boolean; combinations: Array<{ version: string; model: string; reasons: Array<{ code: string; message: string }> }> } | null;
}

/** The value of one exact series in an exposition, or undefined. */
function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** VmRSS and VmHWM (peak RSS) of a process, in MiB, from /proc. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/**
 * Peak RSS above the RSS at the start while `during` runs. The peak is reset first (`5` into
 * clear_refs, Linux ≥ 4.0), so it belongs to this stage; where that is refused the lifetime peak
 * is used, which can only overstate.
 */
async function stageGrowth(pid: number, during: () => Promise<void>): Promise<{ before: number; peak: number; growth: number }> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined);
  const before = (await memory(pid)).rss;
  await during();
  const peak = (await memory(pid)).peak;
  return { before, peak, growth: peak - before };
}

/** One 50 MB answer held whole is 50 MiB; the former runCommand grew the agent by 105 MiB on it. */
const BOUND_MIB = 50;

const dir = await mkdtemp(path.join(os.tmpdir(), 'vtpm-virsh-faults-'));
const modeFile = path.join(dir, 'mode');
await writeFile(modeFile, 'pass');
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const agent: ChildProcess = spawnCli(
  [
    'serve',
    ...['listen.host=127.0.0.1', `listen.port=${port}`, `stateDir=${path.join(dir, 'state')}`, 'emulation.enabled=false', 'guests.watcherEnabled=false']
      .concat(['probes.schedule=*/2 * * * * *', 'guests.inventorySchedule=*/2 * * * * *', 'libvirt.timeoutSeconds=20'])
      .concat([`libvirt.virshPath=${path.join(fixtures, 'virsh')}`, `swtpm.swtpmSetupPath=${path.join(fixtures, 'swtpm_setup')}`])
      .flatMap((s) => ['--set', s]),
  ],
  { ...process.env, VTPM_AGENT_CONFIG: '/dev/null', FAKE_OUTPUT_MODE_FILE: modeFile },
);
let logs = '';
agent.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
agent.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
t.teardown(async () => {
  agent.kill('SIGTERM');
  await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.once('exit', r)));
  await rm(dir, { recursive: true, force: true });
});
const pid = agent.pid!;

const status = async (): Promise<Status> => (await (await fetch(`${base}/status`)).json()) as Status;
const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
const probe = (s: Status, name: string) => s.probes.find((p) => p.probe === name);

/** Switches the stand-ins' mode and waits until `name` fails with `code`; returns the status then. */
async function fault(mode: string, name: string, code: string): Promise<Status> {
  await writeFile(modeFile, mode);
  return waitFor(`${name} to fail with ${code} (${mode})`, async () => {
    const s = await status();
    return probe(s, name)?.error?.code === code ? s : undefined;
  }, 90_000, 250);
}

const summary = (s: Status | undefined) =>
  s ? s.probes.map((p) => `${p.probe}=${p.ok ? 'ok' : (p.error?.code ?? 'failed')}`).join(' ') + ` usable=${s.verdict?.anyUsable}` : 'no status';

async function healthy(): Promise<Status> {
  await writeFile(modeFile, 'pass');
  // The first start under tsx on a loaded machine can take a while.
  await waitFor('the agent to answer /healthz', async () => (await fetch(`${base}/healthz`)).status === 200, 180_000, 500);
  let last: Status | undefined;
  return waitFor('libvirt, swtpm and guest-inventory to succeed', async () => {
    const s = (last = await status());
    return ['libvirt', 'swtpm', 'guest-inventory'].every((n) => probe(s, n)?.ok === true) && s.verdict?.anyUsable ? s : undefined;
  }, 90_000, 250).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${summary(last)}`);
  });
}

/** Waits until the probe has run `runs` more times with the given outcome (1 success, 0 failure). */
async function runsOf(name: string, runs: number, success: 0 | 1): Promise<void> {
  let seen = 0;
  let last = 0;
  await waitFor(`${runs} runs of ${name} with vtpm_probe_success ${success}`, async () => {
    const text = await metrics();
    const started = metric(text, `vtpm_probe_duration_seconds{probe="${name}"}`);
    if (metric(text, `vtpm_probe_success{probe="${name}"}`) === success && started !== undefined && started !== last) {
      last = started;
      seen += 1;
    }
    return seen >= runs;
  }, 120_000, 300);
}

t.test('the real tools answer: every probe succeeds (the control for memory)', async (t) => {
  await healthy();
  await runsOf('libvirt', 2, 1); // warm-up
  const control = await stageGrowth(pid, () => runsOf('libvirt', 5, 1));
  t.comment(`agent RSS, 5 healthy libvirt runs (control): ${control.before.toFixed(0)} MiB at the start, peak ${control.peak.toFixed(0)} MiB (+${control.growth.toFixed(0)} MiB)`);
  t.equal(metric(await metrics(), 'vtpm_probe_success{probe="libvirt"}'), 1);
});

t.test('domain capabilities that are not well-formed XML fail the libvirt probe, and the verdict cites it', async (t) => {
  const s = await fault('garbage-domcaps', 'libvirt', 'VTPM_ERR_PARSE');
  t.match(probe(s, 'libvirt')!.error!.message, /^virsh domcapabilities --virttype (kvm|qemu).*: domain capabilities are not well-formed XML/);
  const m = await waitFor('vtpm_probe_success{probe="libvirt"} 0', async () => {
    const text = await metrics();
    return metric(text, 'vtpm_probe_success{probe="libvirt"}') === 0 ? text : undefined;
  });
  t.equal(metric(m, 'vtpm_capability_reasons{version="2.0",model="tpm-crb",reason="LIBVIRT_OUTPUT_UNPARSABLE"}'), 1);
  t.equal(metric(m, 'vtpm_capability_usable{version="2.0",model="tpm-crb"}'), 0);
  for (const c of s.verdict!.combinations) {
    t.match(c.reasons[0], { code: 'LIBVIRT_OUTPUT_UNPARSABLE', message: /libvirt probe failed with VTPM_ERR_PARSE: virsh domcapabilities/ }, `${c.version} ${c.model}`);
  }
});

t.test('50 MB of domain capabilities: virsh is killed at the 1 MiB cap and memory stays bounded', async (t) => {
  const s = await fault('huge-domcaps', 'libvirt', 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.match(probe(s, 'libvirt')!.error!.message, /^.*virsh .*domcapabilities .*printed more than 1 MiB on stdout \(the cap for this call\) and was killed$/);
  t.match(probe(s, 'libvirt')!.error!.details, { maxOutputBytes: MiB, stream: 'stdout' });
  t.match(s.verdict!.combinations[0]!.reasons[0], { code: 'LIBVIRT_OUTPUT_TOO_LARGE', message: /VTPM_ERR_OUTPUT_TOO_LARGE/ });
  const m = await stageGrowth(pid, () => runsOf('libvirt', 5, 0));
  t.comment(`agent RSS, 5 libvirt runs answered with 50 MB: ${m.before.toFixed(0)} MiB at the start, peak ${m.peak.toFixed(0)} MiB (+${m.growth.toFixed(0)} MiB)`);
  t.ok(m.growth < BOUND_MIB, `peak RSS +${m.growth.toFixed(0)} MiB stays under ${BOUND_MIB} MiB: no answer is held whole`);
});

t.test('a guest inventory whose domain list cannot be parsed fails the guest-inventory probe', async (t) => {
  const s = await fault('garbage-inventory', 'guest-inventory', 'VTPM_ERR_PARSE');
  t.match(probe(s, 'guest-inventory')!.error!.message, /virsh list --all --uuid printed a line it never prints: "<domain type=\\"kvm\\"><name>half a domain"/);
  t.equal(metric(await metrics(), 'vtpm_probe_success{probe="guest-inventory"}'), 0);
});

t.test('50 MB from the inventory batch: killed at its 2 MiB cap', async (t) => {
  const s = await fault('huge-inventory', 'guest-inventory', 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.match(probe(s, 'guest-inventory')!.error!.message, /<batch of 4: list, secret-list, version, domstats> printed more than 2 MiB on stdout/);
  const m = await stageGrowth(pid, () => runsOf('guest-inventory', 5, 0));
  t.comment(`agent RSS, 5 inventory runs answered with 50 MB: ${m.before.toFixed(0)} MiB at the start, peak ${m.peak.toFixed(0)} MiB (+${m.growth.toFixed(0)} MiB)`);
  t.ok(m.growth < BOUND_MIB, `peak RSS +${m.growth.toFixed(0)} MiB stays under ${BOUND_MIB} MiB: no answer is held whole`);
});

t.test('swtpm_setup capabilities that are not JSON, or 50 MB of them, fail the swtpm probe with their own reasons', async (t) => {
  const garbage = await fault('garbage-swtpm', 'swtpm', 'VTPM_ERR_PARSE');
  t.match(probe(garbage, 'swtpm')!.error!.message, /swtpm_setup --print-capabilities did not print JSON/);
  t.ok(garbage.verdict!.combinations.every((c) => c.reasons.some((r) => r.code === 'SWTPM_OUTPUT_UNPARSABLE')));
  const huge = await fault('huge-swtpm', 'swtpm', 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.match(probe(huge, 'swtpm')!.error!.message, /swtpm_setup --print-capabilities printed more than 64 KiB on stdout/);
  t.ok(huge.verdict!.combinations.every((c) => c.reasons.some((r) => r.code === 'SWTPM_OUTPUT_TOO_LARGE')));
  t.equal(metric(await metrics(), 'vtpm_probe_success{probe="swtpm"}'), 0);
});

t.test('the real tools answer again: every probe recovers without a restart', async (t) => {
  const s = await healthy();
  t.notOk(s.verdict!.combinations.some((c) => c.reasons.some((r) => /OUTPUT/.test(r.code))), 'no output reason left');
  const text = await metrics();
  for (const name of ['libvirt', 'swtpm', 'guest-inventory']) t.equal(metric(text, `vtpm_probe_success{probe="${name}"}`), 1, name);
  t.equal(agent.exitCode, null, 'the same agent process');
  t.equal(agent.pid, pid);
  t.notMatch(logs, /"level":(50|60)/, 'nothing logged at error or fatal');
});
