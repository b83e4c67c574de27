/**
 * Guest inventory cost at 50 / 200 / 500 defined (not started) vTPM domains: the agent's
 * inventory (two virsh processes whatever the count) beside the naive baseline of one virsh
 * process per domain, measured in the same run on the same domains. Then the time from
 * libvirt's lifecycle event to the restart watcher's decision.
 *
 *   npx tsx bench/guests-inventory.ts [--sizes 50,200,500] [--baseline-max 500]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { configSchema } from '../src/config/schema.js';
import { buildInventory, fetchInventoryRaw } from '../src/guests/inventory.js';
import { guestStateFiles } from '../src/guests/state-files.js';
import type { Transition } from '../src/guests/restart-model.js';
import { GuestRestartWatcher } from '../src/guests/watcher.js';
import { defineGuest, domainXml, testUuid, virsh, virshOk, waitFor, waitForLibvirt } from '../test/harness/libvirt-guests.js';

import { guestName } from '../test/harness/libvirt-guests.js';
import { stateStore } from '../test/fixtures/state-files.js';
import { extensionContext } from '../test/fixtures/extension-context.js';
const BENCH_PREFIX = guestName('bench-');
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
};
const sizes = arg('sizes', '50,200,500').split(',').map(Number);
const baselineMax = Number(arg('baseline-max', '500'));
const virshOpts = { virshPath: 'virsh', uri: 'qemu:///system', readOnly: true, timeoutMs: 120_000 };

function run(file: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 300_000, maxBuffer: 256 * 1024 * 1024 }, (err) => (err ? reject(err) : resolve()));
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function cleanupBench(): Promise<void> {
  const names = (await virshOk(['list', '--all', '--name'])).split('\n').map((s) => s.trim()).filter((s) => s.startsWith(BENCH_PREFIX));
  if (names.length) await run('virsh', ['-q', '-c', 'qemu:///system'], names.map((n) => `destroy ${n}\nundefine --tpm ${n}`).join('\n') + '\n').catch(() => undefined);
  const left = (await virshOk(['list', '--all', '--name'])).split('\n').filter((s) => s.trim().startsWith(BENCH_PREFIX));
  for (const n of left) await virsh(['undefine', n.trim()]);
}

/** Defines domains in one virsh process (setup only, not measured). */
async function defineMany(dir: string, from: number, to: number): Promise<void> {
  const cmds: string[] = [];
  for (let i = from; i < to; i++) {
    const file = path.join(dir, `d${i}.xml`);
    writeFileSync(
      file,
      domainXml({
        name: `${BENCH_PREFIX}${String(i).padStart(4, '0')}`,
        uuid: testUuid(),
        tpmVersion: '2.0',
        model: 'tpm-crb',
        secretUuid: testUuid(),
        nova: { instanceName: `bench-${i}`, project: 'bench', flavor: 'vtpm', extraSpecs: { 'hw:tpm_secret_security': i % 2 ? 'user' : 'host' } },
      }),
    );
    cmds.push(`define ${file}`);
  }
  await run('virsh', ['-q', '-c', 'qemu:///system'], cmds.join('\n') + '\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeIt(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** The naive way: one virsh process per domain (dumpxml + domstate), after listing them. */
async function baseline(): Promise<number> {
  const list = await virshOk(['-r', 'list', '--all', '--uuid']);
  const uuids = list.split('\n').map((s) => s.trim()).filter(Boolean);
  await virshOk(['-r', 'secret-list']);
  // Other tests' domains may vanish meanwhile: a failed call costs the same and is not an error here.
  for (const u of uuids) await virsh(['-r', '-q', `dumpxml ${u}; domstate --reason ${u}`]);
  return uuids.length;
}

async function inventoryBench(): Promise<string[][]> {
  const dir = mkdtempSync(path.join(tmpdir(), `${BENCH_PREFIX}xml-`));
  const rows: string[][] = [['defined vTPM domains', 'domains seen', 'agent inventory (median of 3)', 'of which virsh / parse', 'one virsh per domain', 'speed-up']];
  try {
    await cleanupBench();
    let defined = 0;
    for (const n of sizes) {
      await defineMany(dir, defined, n);
      defined = n;
      let seen = 0;
      const split: Array<[number, number]> = [];
      const agentMs = await timeIt(async () => {
        const t0 = performance.now();
        const raw = await fetchInventoryRaw(virshOpts, 128 * 1024);
        const t1 = performance.now();
        const inv = buildInventory(raw, null);
        split.push([t1 - t0, performance.now() - t1]);
        seen = inv.domainsSeen;
        const found = inv.guests.filter((g) => g.name.startsWith(BENCH_PREFIX)).length;
        if (found !== n) throw new Error(`inventory found ${found} of ${n} bench domains (did something else undefine them?)`);
      }, 3);
      let baseMs: number | null = null;
      if (n <= baselineMax) baseMs = await timeIt(baseline, 1);
      console.error(`  measured ${n}`);
      rows.push([
        String(n),
        String(seen),
        `${agentMs.toFixed(0)} ms`,
        `${median(split.map((x) => x[0])).toFixed(0)} / ${median(split.map((x) => x[1])).toFixed(0)} ms`,
        baseMs === null ? 'skipped' : `${baseMs.toFixed(0)} ms`,
        baseMs === null ? '-' : `${(baseMs / agentMs).toFixed(1)}×`,
      ]);
    }
  } finally {
    await cleanupBench();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Event → decision latency: a pending guest is started; compare libvirt's event time with the watcher's decision. */
async function latencyBench(rounds: number): Promise<string[][]> {
  const work = mkdtempSync(path.join(tmpdir(), `${BENCH_PREFIX}lat-`));
  const name = `${BENCH_PREFIX}latency`;
  const uuid = testUuid();
  const rows: string[][] = [['round', 'event → decision', 'virsh start → decision']];
  const log = pino({ level: 'silent' });
  try {
    await defineGuest({ name, uuid, tpmVersion: '2.0', model: 'tpm-crb' });
    const bootId = path.join(work, 'boot_id');
    const stateDir = path.join(work, 'state');
    mkdirSync(path.join(stateDir, 'guests'), { recursive: true });
    for (let r = 1; r <= rounds; r++) {
      await virsh(['destroy', name]);
      // A previous boot in which the guest ran, and a new boot id: the guest is pending.
      rmSync(path.join(stateDir, 'guests', 'watch.json'), { force: true });
      await guestStateFiles(stateStore(), stateDir).snapshot.save({
        version: 1,
        bootId: `prev-boot-${r}-0000`,
        bootTime: null,
        takenAt: Date.now() - 1000,
        guests: [{ uuid, name, instanceUuid: null, secretMode: 'unknown', encryptionSecret: null }],
      });
      writeFileSync(bootId, `next-boot-${r}-0000\n`);
      const config = configSchema.parse({
        stateDir,
        guests: { bootIdPath: bootId, novaConfPath: '', resyncIntervalSeconds: 3600, snapshotIntervalSeconds: 3600, restartDeadlineSeconds: 3600 },
      });
      const watcher = new GuestRestartWatcher();
      let decidedAt: number | null = null;
      watcher.onTransitions = (ts: Transition[], at: number) => {
        if (ts.some((x) => x.uuid === uuid && x.outcome === 'restarted')) decidedAt = performance.timeOrigin + performance.now();
        void at;
      };
      await watcher.start(extensionContext({ config, log, env: process.env }));
      // Let the event stream connect and the initial resync finish so only the event drives the decision.
      await new Promise((res) => setTimeout(res, 1500));
      await watcher.refreshSoon();
      const t0 = Date.now();
      await virshOk(['start', name]);
      await waitFor('decision', async () => decidedAt !== null, 30_000, 5);
      const ev = watcher.lastEvent;
      await watcher.stop();
      const evMs = ev?.timestamp ?? null;
      rows.push([String(r), evMs === null ? 'n/a' : `${(decidedAt! - evMs).toFixed(0)} ms`, `${(decidedAt! - t0).toFixed(0)} ms`]);
    }
  } finally {
    await virsh(['destroy', name]);
    await virsh(['undefine', '--tpm', name]);
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

function print(title: string, rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log(`\n${title}`);
  for (const [k, r] of rows.entries()) {
    console.log(r.map((c, i) => c.padEnd(widths[i]!)).join(' | '));
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  }
}

await waitForLibvirt();
print('Guest inventory vs one virsh process per domain', await inventoryBench());
print('Restart detection latency (libvirt lifecycle event → watcher decision)', await latencyBench(3));
