/**
 * A real Prometheus scrapes the real agent over TLS: with basic auth, and with a client
 * certificate (RequireAndVerifyClientCert). No credentials, a wrong password, plain HTTP to the
 * TLS port and TLS 1.1 are refused; the server certificate is rotated on disk while Prometheus
 * keeps scraping, without one failed scrape; an anonymous client gets no /status at all.
 * Certificates are made with openssl here, bcrypt hashes with bcryptjs.
 */
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, spawnCli, waitFor } from '../harness/agent.js';
import { requireLibvirt } from '../harness/libvirt.js';
import { startPrometheus } from '../harness/prometheus.js';
import { bcryptHash, makePki, writeWebConfig } from '../harness/tls.js';

requireLibvirt();
const pki = makePki();
t.teardown(() => pki.cleanup());
const server = pki.issue('server', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
const client = pki.issue('prometheus', { cn: 'prometheus', client: true });
const ca = readFileSync(pki.caCert);

async function startAgent(t: { teardown(fn: () => unknown): void }, web: Record<string, unknown>, withCert = false): Promise<{ port: number; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(server.cert, path.join(dir, 'tls.crt'));
  copyFileSync(server.key, path.join(dir, 'tls.key'));
  const tls = { cert_file: path.join(dir, 'tls.crt'), key_file: path.join(dir, 'tls.key'), ...(web.tls_server_config as object) };
  const cfg = writeWebConfig(path.join(dir, 'web.yml'), { ...web, tls_server_config: tls });
  const port = await freePort();
  const child = spawnCli(['serve', '--web.config.file', cfg, '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${dir}/state`, '--set', 'emulation.enabled=false', '--log-level', 'warn'], { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' });
  t.teardown(() => child.kill('SIGKILL'));
  await waitFor('agent over TLS', () => get(port, '/healthz', { cert: withCert }).then((r) => r.status === 200), 60_000);
  return { port, dir };
}

function get(port: number, urlPath: string, opts: { auth?: string; cert?: boolean } = {}): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: urlPath, ca, agent: false, auth: opts.auth, timeout: 5000, ...(opts.cert ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) }, (res) => {
      let body = '';
      const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function upSeries(prom: { query(e: string): Promise<Array<{ value: [number, string] }>> }, expr: string): Promise<number | undefined> {
  const r = await prom.query(expr);
  return r[0] ? Number(r[0].value[1]) : undefined;
}

t.test('TLS + basic auth: Prometheus scrapes, rotation keeps every scrape, the rest is refused', async (t) => {
  const { port, dir: cfgDir } = await startAgent(t, { basic_auth_users: { prometheus: bcryptHash('s3cret') }, tls_server_config: {} });
  t.equal((await get(port, '/metrics')).status, 401, 'no credentials: refused');
  t.equal((await get(port, '/metrics', { auth: 'prometheus:wrong' })).status, 401, 'wrong password: refused');
  const anon = await get(port, '/status');
  t.equal(anon.status, 401, 'anonymous /status: refused');
  t.notMatch(anon.body, /project|userId|encryptionSecret/i, 'and carries no tenant field');
  const plain = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, (e: Error) => e.message);
  t.not(plain, 200, `plain HTTP to the TLS port is refused (${plain})`);
  const tls11 = await new Promise<string>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, () => resolve(`connected with ${s.getProtocol()}`));
    s.on('error', (e) => resolve(`refused: ${e.message}`));
  });
  t.match(tls11, /^refused/, `TLS 1.1 refused (${tls11})`);

  const prom = await startPrometheus({ targets: [`127.0.0.1:${port}`], job: 'vtpm-tls', ruleFiles: [], tls: { caFile: pki.caCert }, basicAuth: { username: 'prometheus', password: 's3cret' } });
  t.teardown(() => prom.stop());
  await waitFor('Prometheus scraping over TLS with basic auth', async () => (await upSeries(prom, 'up{job="vtpm-tls"}')) === 1, 60_000, 500);
  t.pass('up == 1 over TLS with basic auth');

  // Rotate: a new certificate and key, each written beside and renamed into place (as cert-manager does).
  const before = (await get(port, '/metrics', { auth: 'prometheus:s3cret' })).serial;
  const rotated = pki.issue('rotated', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
  copyFileSync(rotated.key, path.join(cfgDir, 'tls.key.new'));
  copyFileSync(rotated.cert, path.join(cfgDir, 'tls.crt.new'));
  renameSync(path.join(cfgDir, 'tls.crt.new'), path.join(cfgDir, 'tls.crt'));
  renameSync(path.join(cfgDir, 'tls.key.new'), path.join(cfgDir, 'tls.key'));
  await waitFor('the rotated certificate served', async () => (await get(port, '/metrics', { auth: 'prometheus:s3cret' })).serial !== before, 15_000, 250);
  await new Promise((r) => setTimeout(r, 6000));
  const scrapes = await upSeries(prom, 'count_over_time(up{job="vtpm-tls"}[1m])');
  const worst = await upSeries(prom, 'min_over_time(up{job="vtpm-tls"}[1m])');
  t.ok((scrapes ?? 0) >= 5, `Prometheus kept scraping (${scrapes} scrapes in the last minute)`);
  t.equal(worst, 1, 'not one failed scrape across the rotation');
});

t.test('TLS + client certificate (RequireAndVerifyClientCert): Prometheus with its certificate scrapes; without one is refused', async (t) => {
  // The TLS layer asks every client for its certificate, /healthz included.
  const { port: p } = await startAgent(t, { tls_server_config: { client_auth_type: 'RequireAndVerifyClientCert', client_ca_file: pki.caCert } }, true);
  await t.rejects(get(p, '/metrics'), 'no client certificate: the handshake is refused');
  t.equal((await get(p, '/metrics', { cert: true })).status, 200, 'a certificate from the CA: served');
  const prom = await startPrometheus({ targets: [`127.0.0.1:${p}`], job: 'vtpm-mtls', ruleFiles: [], tls: { caFile: pki.caCert, certFile: client.cert, keyFile: client.key } });
  t.teardown(() => prom.stop());
  await waitFor('Prometheus scraping with a client certificate', async () => (await upSeries(prom, 'up{job="vtpm-mtls"}')) === 1, 60_000, 500);
  t.pass('up == 1 with a client certificate');
});
