import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { BarbicanPreflightExtension } from '../../src/barbican/extension.js';
import { configSchema } from '../../src/config/schema.js';
import type { ExtensionContext } from '../../src/extension-api.js';
import { guest, inventory as inventoryOf } from '../fixtures/guests.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { contextTools } from '../fixtures/state-files.js';

const inventory = {
  ...inventoryOf([guest('00000001-0000-4000-8000-000000000001', { name: 'instance-00000001', encryptionSecret: 'aaaaaaaa-0000-4000-8000-000000000001' })]),
  collectedAt: 1,
};

function tempStateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-barbican-ext-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

t.test('the first round runs as soon as the guest inventory appears, not an interval later', async (t) => {
  const config = configSchema.parse({
    // Keystone on a closed port: the check answers "unavailable" at once, which is still a round.
    openstack: { timeoutSeconds: 1, maxAttempts: 1, auth: { authUrl: 'http://127.0.0.1:9/v3', username: 'nova', password: 'pw', userDomainId: 'default', projectId: 'p1' } },
    barbican: { intervalSeconds: 600, spread: false },
    stateDir: tempStateDir(t),
  });
  const state = new HostState();
  const ctx: ExtensionContext = { config, log: pino({ level: 'silent' }), hostPath: hostPathResolver('/'), env: {}, state, ...contextTools(), signal: new AbortController().signal };
  const ext = new BarbicanPreflightExtension();
  await ext.start(ctx);
  t.teardown(() => ext.stop());
  const lastRunAt = () => (ext.status().data as { lastRunAt: number | null }).lastRunAt;
  t.ok(await until(() => ext.status().summary === 'no guest inventory yet', 1000), 'the extension says it waits for the inventory');
  t.equal(lastRunAt(), null, 'no inventory: no round yet');
  t.equal(state.listenerCount('result'), 1, 'waiting for the inventory');
  state.set({ probe: 'other-probe', ok: true, data: {}, startedAt: Date.now(), durationSeconds: 0, lastSuccessAt: null });
  state.set({ probe: 'guest-inventory', ok: false, startedAt: Date.now(), durationSeconds: 0, lastSuccessAt: null });
  t.equal(state.listenerCount('result'), 1, 'other probes and a failed inventory do not end the wait');
  state.set({ probe: 'guest-inventory', ok: true, data: inventory, startedAt: Date.now(), durationSeconds: 0, lastSuccessAt: null });
  t.equal(state.listenerCount('result'), 0, 'subscribed once');
  t.ok(await until(() => lastRunAt() !== null, 5000), 'a round ran right after the inventory appeared');
  const guests = (ext.status().data as { guests: { result: string }[] }).guests;
  t.same(guests.map((g) => g.result), ['unavailable']);
  // The counts are saved right after the check, before any stop or scrape (a crash loses none).
  const saved = path.join(config.stateDir, 'barbican', 'preflight.json');
  t.ok(await until(() => existsSync(saved) && JSON.parse(readFileSync(saved, 'utf8')).failures.unavailable === 1, 5000), 'saved after the check');
  await ext.stop();
  // The next agent (no inventory yet, so no round of its own) starts from the saved counts.
  const next = new BarbicanPreflightExtension();
  await next.start({ ...ctx, state: new HostState(), ...contextTools() });
  t.teardown(() => next.stop());
  t.same((next.status().data as { checksByResult: Record<string, number> }).checksByResult, { ok: 0, forbidden: 0, not_found: 0, unauthenticated: 0, unavailable: 1 });
});

t.test('stop removes the inventory listener', async (t) => {
  const config = configSchema.parse({
    openstack: { auth: { authUrl: 'http://127.0.0.1:9/v3', username: 'nova', password: 'pw', userDomainId: 'default', projectId: 'p1' } },
    barbican: { intervalSeconds: 600 },
    stateDir: tempStateDir(t),
  });
  const state = new HostState();
  const ext = new BarbicanPreflightExtension();
  await ext.start({ config, log: pino({ level: 'silent' }), hostPath: hostPathResolver('/'), env: {}, state, ...contextTools(), signal: new AbortController().signal });
  t.equal(state.listenerCount('result'), 1);
  await ext.stop();
  t.equal(state.listenerCount('result'), 0);
});
