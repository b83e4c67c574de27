/**
 * Tenant data with a real libvirt guest carrying Nova metadata and a vTPM secret: the console
 * `check --json` shows the tenant fields; /status of an agent without a web config leaves them
 * out (no value anywhere in the document); an agent with basic auth refuses anonymous /status
 * and shows them to the authenticated client; /metrics has the instance UUID and no tenant value.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, runCli, spawnCli, waitFor } from '../harness/agent.js';
import { cleanupGuests, defineGuest, defineSecret, guestName, PREFIX, testUuid, waitForLibvirt } from '../harness/libvirt-guests.js';
import { bcryptHash, writeWebConfig } from '../harness/tls.js';

t.test('tenant fields: console keeps them, anonymous /status never sees them', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  const work = mkdtempSync(path.join(tmpdir(), `${PREFIX}tenant-`));
  t.teardown(async () => {
    await cleanupGuests();
    rmSync(work, { recursive: true, force: true });
  });
  const uuid = testUuid();
  const secretUuid = testUuid();
  const project = `acme-tenant-${randomBytes(3).toString('hex')}`;
  const instanceName = `db-primary-${randomBytes(3).toString('hex')}`;
  await defineGuest({ name: guestName('tenant'), uuid, tpmVersion: '2.0', model: 'tpm-crb', secretUuid, nova: { instanceName, project, flavor: 'vtpm' } });
  await defineSecret({ uuid: secretUuid, instanceUuid: uuid, key: randomBytes(32), ephemeral: true });
  const tenantValues = [project, `p-${project}`, instanceName, secretUuid];
  const common = ['--set', 'emulation.enabled=false', '--log-level', 'error'];

  const check = await runCli(['check', '--json', '--set', `stateDir=${work}/check`, ...common], { env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' } });
  for (const v of tenantValues) t.ok(check.stdout.includes(v), `check --json on the console shows ${v}`);

  const start = async (name: string, extra: string[]) => {
    const port = await freePort();
    const child = spawnCli(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${work}/${name}`, ...common, ...extra], { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' });
    t.teardown(() => child.kill('SIGKILL'));
    return `http://127.0.0.1:${port}`;
  };
  const plain = await start('plain', []);
  const status = await waitFor('the guest in /status', async () => {
    const text = await (await fetch(`${plain}/status`)).text();
    return text.includes(uuid) ? text : undefined;
  }, 90_000, 500);
  for (const v of tenantValues) t.notOk(status.includes(v), `no web config: /status leaves out ${v}`);
  t.match(status, /\[redacted\]/);
  const metrics = await (await fetch(`${plain}/metrics`)).text();
  for (const v of tenantValues) t.notOk(metrics.includes(v), `/metrics has no ${v}`);

  const web = writeWebConfig(path.join(work, 'web.yml'), { basic_auth_users: { ops: bcryptHash('pw') } });
  const authed = await start('authed', ['--web.config.file', web]);
  const basic = { authorization: `Basic ${Buffer.from('ops:pw').toString('base64')}` };
  const full = await waitFor('the guest in authenticated /status', async () => {
    const text = await (await fetch(`${authed}/status`, { headers: basic })).text();
    return text.includes(uuid) ? text : undefined;
  }, 90_000, 500);
  for (const v of tenantValues) t.ok(full.includes(v), `authenticated client sees ${v}`);
  const anon = await fetch(`${authed}/status`);
  t.equal(anon.status, 401, 'anonymous /status refused');
  const anonBody = await anon.text();
  for (const v of tenantValues) t.notOk(anonBody.includes(v), `anonymous never sees ${v}`);
});
