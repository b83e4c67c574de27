/**
 * SIGKILL a process that writes guest snapshots in a loop, many times at random moments: the
 * snapshot must always be readable (old or new content, never torn), so after a crash or power
 * loss the next boot still knows which guests ran.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { guestStateFiles } from '../../src/guests/state-files.js';
import { stateStore } from '../fixtures/state-files.js';

const writer = fileURLToPath(new URL('../fixtures/guests/snapshot-writer.ts', import.meta.url));
const ROUNDS = 12;

t.test('snapshot survives SIGKILL during writes', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'guests', 'snapshot.json');
  let previousTakenAt = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`writer did not start: ${stderr}`)), 30_000);
        child.stdout.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
        child.once('exit', (code) => reject(new Error(`writer exited early (${code}): ${stderr}`)));
      });
      // Kill at a random moment inside the write loop.
      await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 120)));
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const loaded = await guestStateFiles(stateStore('test', { readOnly: true }), dir).snapshot.load();
    t.ok(loaded.value, `round ${round}: the snapshot is readable after SIGKILL`);
    t.ok((loaded.value?.takenAt ?? 0) >= previousTakenAt, `round ${round}: never older than what was read before`);
    previousTakenAt = loaded.value?.takenAt ?? previousTakenAt;
  }
  // Temp files of killed writers are cleaned at the next start (the daemon's first load); the snapshot itself stays.
  await guestStateFiles(stateStore(), dir).snapshot.load();
  t.same(readdirSync(path.dirname(file)), ['snapshot.json']);
});
