import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { HostFacts } from '../../src/host/facts.js';
import { configSchema } from '../../src/config/schema.js';
import { hostProbe } from '../../src/probes/host.js';
import { stateStore } from '../fixtures/state-files.js';

t.test('a host probe run spawns no shell or helper: host facts are read, not asked of commands', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-host-probe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'root');
  mkdirSync(root);
  mkdirSync(path.join(root, 'proc'));
  writeFileSync(path.join(root, 'proc/stat'), 'cpu  1 2 3\nbtime 1764800000\n');
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  const record = path.join(dir, 'called');
  writeFileSync(record, '');
  // What a shell-out for host facts would run (systeminformation's time() ran `date` and `ls`).
  for (const name of ['sh', 'bash', 'date', 'ls', 'lscpu', 'dmidecode', 'cat', 'uname', 'hostname']) {
    writeFileSync(path.join(bin, name), `#!/bin/sh\necho ${name} >> '${record}'\n`);
    chmodSync(path.join(bin, name), 0o755);
  }
  // Libraries spawn with process.env, not the probe's env: put the recorders first there.
  const oldPath = process.env.PATH;
  process.env.PATH = `${bin}:${oldPath ?? ''}`;
  t.teardown(() => {
    process.env.PATH = oldPath;
  });
  const config = configSchema.parse({});
  const hostPath = (p: string) => path.join(root, p);
  const data = await hostProbe.run(
    {
      signal: new AbortController().signal,
      log: pino({ level: 'silent' }),
      config,
      hostPath,
      env: process.env,
      remainingMs: () => 10_000,
      readOnlyState: true,
      stateFiles: stateStore(),
      facts: new HostFacts({ config, hostPath }),
    },
    { get: () => undefined },
  );
  t.equal(readFileSync(record, 'utf8'), '', 'nothing on PATH was run');
  t.equal(data.bootTime, 1764800000, "boot time is the host's /proc/stat btime");
  // systeminformation's mem() reads /proc/meminfo: a real host fact with no child process.
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const totalKiB = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1]);
  t.equal(data.memory?.totalBytes, totalKiB * 1024, 'total memory as /proc/meminfo says');
  t.ok(data.memory!.availableBytes > 0 && data.memory!.availableBytes <= data.memory!.totalBytes, 'available memory within the total');
});
