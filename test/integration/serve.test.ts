import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { createConnection, createServer, type Server } from 'node:net';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadExtensions } from '../../src/extension-list.js';
import { allProbes } from '../../src/probes/index.js';
import { hostProbe } from '../../src/probes/host.js';
import { libvirtProbe } from '../../src/probes/libvirt.js';
import { swtpmProbe } from '../../src/probes/swtpm.js';
import type { Probe } from '../../src/probes/types.js';
import { freePort, spawnCli, startAgent, waitFor } from '../harness/agent.js';
import { requireLibvirt } from '../harness/libvirt.js';
import { startLibvirtd, stopLibvirtd } from '../harness/libvirt-guests.js';
import { promtoolCheckMetrics } from '../harness/promtool.js';

requireLibvirt();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-serve-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const core: Probe[] = [libvirtProbe as Probe, swtpmProbe as Probe, hostProbe as Probe];

const get = async (url: string) => {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
};
const metricValue = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

t.test('serves /healthz at once, /readyz after the first cycle, /metrics that promtool accepts, /status', async (t) => {
  const running = await startAgent(['stateDir=' + path.join(tmp, 'state1')], { probes: core });
  t.teardown(running.stop);
  t.equal((await get(`${running.url}/healthz`)).status, 200);
  await waitFor('readiness', async () => (await get(`${running.url}/readyz`)).status === 200, 60_000);
  const metrics = await get(`${running.url}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.type, /text\/plain/);
  const lint = promtoolCheckMetrics(metrics.text);
  t.equal(lint.code, 0, `promtool check metrics is clean: ${lint.output}`);
  t.equal(metricValue(metrics.text, 'vtpm_capability_usable{version="2.0",model="tpm-crb"}'), 1);
  t.equal(metricValue(metrics.text, 'vtpm_probe_success{probe="libvirt"}'), 1);
  t.match(metrics.text, /vtpm_libvirt_info\{libvirt_version="\d+\.\d+\.\d+",qemu_version="[\d.]+",virt_type="(kvm|qemu)"\} 1/);
  t.match(metrics.text, /vtpm_agent_build_info\{version="[\d.]+",revision="([0-9a-f]{40}|unknown)",node_version="v\d+/);
  t.match(metrics.text, /vtpm_agent_process_resident_memory_bytes \d+/);
  const status = JSON.parse((await get(`${running.url}/status`)).text);
  t.equal(status.verdict.anyUsable, true);

  // Prometheus asks for gzip; curl and autocannon do not. Both get the same exposition.
  const raw = async (acceptEncoding?: string) =>
    new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = httpGet(`${running.url}/metrics`, { headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {}, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  const gz = await raw('gzip, deflate');
  const plain = await raw();
  const refused = await raw('gzip;q=0, identity');
  t.equal(gz.headers['content-encoding'], 'gzip');
  t.equal(gz.headers.vary, 'accept-encoding');
  t.equal(plain.headers['content-encoding'], undefined, 'identity without Accept-Encoding');
  t.equal(refused.headers['content-encoding'], undefined, 'gzip;q=0 is a refusal');
  const unzipped = gunzipSync(gz.body).toString('utf8');
  t.ok(gz.body.length < plain.body.length / 3, `gzip is much smaller (${gz.body.length} of ${plain.body.length} bytes)`);
  const families = (text: string) => text.split('\n').filter((l) => l.startsWith('# TYPE ')).sort();
  t.same(families(unzipped), families(plain.body.toString('utf8')), 'the same metric families either way');
});

t.test('the full agent (every probe and extension) exposes metrics that promtool accepts', async (t) => {
  // Every capability on, so the golden list below covers every metric family.
  const running = await startAgent(['stateDir=' + path.join(tmp, 'state-full'), 'novaLog.source=file', `novaLog.path=${path.join(tmp, 'nova-compute.log')}`], {
    probes: allProbes,
    extensions: await loadExtensions(),
  });
  t.teardown(running.stop);
  await waitFor('readiness', async () => (await get(`${running.url}/readyz`)).status === 200, 90_000);
  const text = (await get(`${running.url}/metrics`)).text;
  const lint = promtoolCheckMetrics(text);
  t.equal(lint.code, 0, `promtool check metrics is clean: ${lint.output}`);
  // Golden list of the agent's own metric families (name, type, help): a rename or a dropped
  // metric breaks dashboards and alerts, so it must be a deliberate change of this file.
  const families = text
    .split('\n')
    .filter((l) => /^# (HELP|TYPE) vtpm_/.test(l) && !/^# (HELP|TYPE) vtpm_agent_(process|nodejs)_/.test(l))
    .sort()
    .join('\n');
  const golden = new URL('../fixtures/metrics-families.golden.txt', import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, `${families}\n`);
  t.equal(`${families}\n`, readFileSync(golden, 'utf8'), 'metric families match the golden file (UPDATE_GOLDEN=1 to accept a change)');
});

t.test('virsh hangs: killed at the timeout, the failure is in the metrics, the agent keeps serving', async (t) => {
  const marker = `${Math.floor(Math.random() * 1e9) + 1e9}`;
  const fake = path.join(tmp, 'virsh-hangs');
  writeFileSync(fake, `#!/bin/sh\nexec sleep ${marker}\n`);
  chmodSync(fake, 0o755);
  const running = await startAgent(['stateDir=' + path.join(tmp, 'state2'), `libvirt.virshPath=${fake}`, 'libvirt.timeoutSeconds=1'], { probes: core });
  t.teardown(running.stop);
  await waitFor('first cycle', async () => (await get(`${running.url}/readyz`)).status === 200, 30_000);
  const metrics = (await get(`${running.url}/metrics`)).text;
  t.equal(metricValue(metrics, 'vtpm_probe_success{probe="libvirt"}'), 0);
  t.equal(metricValue(metrics, 'vtpm_probe_success{probe="swtpm"}'), 1, 'other probes are unaffected');
  t.equal(metricValue(metrics, 'vtpm_capability_usable{version="2.0",model="tpm-crb"}'), 0);
  t.match(metrics, /vtpm_capability_reasons\{version="2.0",model="tpm-crb",reason="LIBVIRT_UNAVAILABLE"\} 1/);
  const status = JSON.parse((await get(`${running.url}/status`)).text);
  t.match(status.probes.find((p: { probe: string }) => p.probe === 'libvirt').error, { code: 'VTPM_ERR_EXEC_TIMEOUT' });
  t.equal((await get(`${running.url}/healthz`)).status, 200);
  const leftovers = await waitFor('the hung virsh to be gone', () => {
    const alive = readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });
    return alive.length === 0 ? true : undefined;
  }, 5000);
  t.ok(leftovers, 'no process of the hung virsh is left');
});

t.test('a probe that throws is isolated and reported', async (t) => {
  const thrower: Probe = { name: 'explodes', description: 'test probe', run: async () => { throw new TypeError('kaboom'); } };
  const running = await startAgent(['stateDir=' + path.join(tmp, 'state3')], { probes: [...core, thrower] });
  t.teardown(running.stop);
  await waitFor('first cycle', async () => (await get(`${running.url}/readyz`)).status === 200, 60_000);
  const metrics = (await get(`${running.url}/metrics`)).text;
  t.equal(metricValue(metrics, 'vtpm_probe_success{probe="explodes"}'), 0);
  t.equal(metricValue(metrics, 'vtpm_probe_success{probe="libvirt"}'), 1);
  t.equal(metricValue(metrics, 'vtpm_capability_usable{version="1.2",model="tpm-tis"}'), 1);
});

/** A unix-socket forwarder standing in for libvirtd's socket, so libvirtd can "go away" and "come back". */
function libvirtProxy(socketPath: string): { up(): Promise<void>; down(): Promise<void> } {
  let server: Server | undefined;
  return {
    up: () =>
      new Promise((resolve) => {
        server = createServer((client) => {
          const upstream = createConnection('/run/libvirt/libvirt-sock');
          client.pipe(upstream).pipe(client);
          const close = () => { client.destroy(); upstream.destroy(); };
          client.on('error', close);
          upstream.on('error', close);
        });
        server.listen(socketPath, () => resolve());
      }),
    down: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        server = undefined;
        if (existsSync(socketPath)) rmSync(socketPath, { force: true });
      }),
  };
}

t.test('libvirt goes away and comes back: the agent reports it and recovers by itself', async (t) => {
  const socketPath = path.join(tmp, 'libvirt-proxy.sock');
  const proxy = libvirtProxy(socketPath);
  const running = await startAgent(
    ['stateDir=' + path.join(tmp, 'state4'), `libvirt.uri=qemu+unix:///system?socket=${socketPath}`, 'probes.schedule=*/2 * * * * *', 'libvirt.timeoutSeconds=20'],
    { probes: core },
  );
  t.teardown(async () => { await running.stop(); await proxy.down(); });
  const down = await waitFor('libvirt reported unavailable', async () => {
    const status = JSON.parse((await get(`${running.url}/status`)).text);
    const libvirt = status.probes.find((p: { probe: string }) => p.probe === 'libvirt');
    return libvirt && !libvirt.ok && status.verdict ? status : undefined;
  }, 60_000);
  t.match(down.verdict.combinations[0].reasons.map((r: { code: string }) => r.code), ['LIBVIRT_UNAVAILABLE']);
  await proxy.up();
  const up = await waitFor('libvirt back', async () => {
    const status = JSON.parse((await get(`${running.url}/status`)).text);
    return status.verdict?.anyUsable ? status : undefined;
  }, 60_000);
  t.equal(up.verdict.combinations.length, 3);
  await proxy.down();
  await waitFor('libvirt gone again', async () => {
    const metrics = (await get(`${running.url}/metrics`)).text;
    return metricValue(metrics, 'vtpm_probe_success{probe="libvirt"}') === 0 ? true : undefined;
  }, 60_000);
  t.equal((await get(`${running.url}/healthz`)).status, 200, 'liveness does not depend on libvirt');
});

t.test('the real libvirtd stops and starts again: the probe fails, the agent stays alive, and recovers by itself', async (t) => {
  const running = await startAgent(['stateDir=' + path.join(tmp, 'state-real-stop'), 'probes.schedule=*/2 * * * * *', 'libvirt.timeoutSeconds=10'], { probes: core });
  // Whatever happens in between, the host's libvirtd runs again when this test ends.
  t.teardown(async () => {
    await running.stop();
    await startLibvirtd().catch(() => undefined);
  });
  const success = async () => metricValue((await get(`${running.url}/metrics`)).text, 'vtpm_probe_success{probe="libvirt"}');
  await waitFor('libvirt probe succeeds', async () => ((await success()) === 1 ? true : undefined), 60_000);
  await stopLibvirtd();
  await waitFor('libvirt probe fails while libvirtd is stopped', async () => ((await success()) === 0 ? true : undefined), 60_000);
  const status = JSON.parse((await get(`${running.url}/status`)).text);
  t.match(status.probes.find((p: { probe: string }) => p.probe === 'libvirt')?.error?.message, /libvirt|socket|connect/i, 'the failure says why');
  t.equal((await get(`${running.url}/healthz`)).status, 200, 'alive without libvirtd');
  t.equal(metricValue((await get(`${running.url}/metrics`)).text, 'vtpm_capability_usable{version="2.0",model="tpm-crb"}'), 0, 'nothing is usable without libvirt');
  await startLibvirtd();
  await waitFor('libvirt probe succeeds again', async () => ((await success()) === 1 ? true : undefined), 60_000);
  t.equal(metricValue((await get(`${running.url}/metrics`)).text, 'vtpm_capability_usable{version="2.0",model="tpm-crb"}'), 1, 'usable again, without an agent restart');
});

t.test('serve stops within 5 s of SIGTERM and exits 0', async (t) => {
  const port = await freePort();
  const child = spawnCli(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${path.join(tmp, 'state5')}`, '--set', 'emulation.enabled=false'], {
    ...process.env,
    VTPM_AGENT_CONFIG: '/dev/null',
  });
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: Date.now() })));
  t.teardown(() => { child.kill('SIGKILL'); });
  await waitFor('serve to answer /healthz', async () => (await get(`http://127.0.0.1:${port}/healthz`)).status === 200, 60_000);
  const sentAt = Date.now();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  const { code, at } = await exited;
  clearTimeout(timer);
  t.equal(code, 0, 'clean exit');
  t.ok(at - sentAt < 5000, 'exited before the 5 s deadline');
  t.match(logs, /"msg":"vtpm-agent stopped"/);
  const firstLine = JSON.parse(logs.split('\n')[0]!);
  t.match(firstLine, { level: 'info', service: 'vtpm-agent', msg: 'starting vtpm-agent' });
});

t.test('stop during start: an extension still starting is stopped too, and nothing is scheduled', async (t) => {
  const events: string[] = [];
  let releaseStart!: () => void;
  const slow = {
    name: 'slow-start',
    enabled: () => true,
    start: () => new Promise<void>((resolve) => { events.push('start'); releaseStart = resolve; }),
    stop: async () => { events.push('stop'); },
    status: () => ({ name: 'slow-start', ok: true, summary: '', data: null }),
  };
  const port = await freePort();
  const { loadConfig } = await import('../../src/config/load.js');
  const { Agent } = await import('../../src/agent.js');
  const { pino } = await import('pino');
  const { config } = await loadConfig({ path: '/dev/null', env: {}, overrides: ['listen.host=127.0.0.1', `listen.port=${port}`, `stateDir=${path.join(tmp, 'state6')}`] });
  const agent = new Agent({ config, log: pino({ level: 'silent' }), probes: core, extensions: [slow] });
  const starting = agent.start();
  await waitFor('the extension to be starting', () => events.includes('start'), 10_000, 10);
  const stopping = agent.stop();
  releaseStart();
  await Promise.all([starting, stopping]);
  t.same(events, ['start', 'stop'], 'the extension that was starting got stopped');
  t.equal(agent.state.completedCycles, 0, 'no probe cycle was started after stop');
});
