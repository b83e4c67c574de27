/**
 * When the libvirt probe succeeds: only with data. A stand-in virsh (fault injection: answers no
 * real libvirt gives on demand) shows which answers are findings and which fail the probe.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { libvirtProbe } from '../../src/probes/libvirt.js';
import { HostFacts } from '../../src/host/facts.js';
import { runProbe } from '../../src/probes/runner.js';
import type { ProbeResult } from '../../src/results.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

const domcaps = fileURLToPath(new URL('../fixtures/captured-libvirt9.0-qemu7.2-q35.xml', import.meta.url));
const VERSION = "printf 'Compiled against library: libvirt 9.0.0\\nUsing library: libvirt 9.0.0\\nRunning hypervisor: QEMU 7.2.22\\n'";

/** A virsh answering `version` with `version` and `domcapabilities` per machine type with `caps`. */
function fakeVirsh(t: { teardown(fn: () => void): void }, version: string, caps: { default: string; q35: string }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-libvirt-probe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'virsh');
  writeFileSync(
    file,
    `#!/bin/sh\ncase "$*" in\n  *version*) ${version} ;;\n  *"--machine q35"*) ${caps.q35} ;;\n  *domcapabilities*) ${caps.default} ;;\nesac\n`,
  );
  chmodSync(file, 0o755);
  return file;
}

async function run(virshPath: string): Promise<ProbeResult> {
  const config = configSchema.parse({ libvirt: { virshPath, virtType: 'qemu', machineTypes: ['default', 'q35'] } });
  return runProbe(libvirtProbe, { config, log: pino({ level: 'silent' }), hostPath: hostPathResolver('/'), env: process.env, results: { get: () => undefined } as never, stateFiles: testStateFiles(), facts: new HostFacts({ config: config, hostPath: hostPathResolver('/') }) });
}

const REFUSED = "echo 'error: unsupported configuration: Emulator does not support machine type' >&2; exit 1";

t.test('a machine type libvirt refuses is a finding while another answers', async (t) => {
  const r = await run(fakeVirsh(t, VERSION, { default: `cat ${domcaps}`, q35: REFUSED }));
  t.equal(r.ok, true);
  const data = r.data as { libvirtVersion: string; machines: Array<{ machineType: string; capabilities: unknown; error?: string }> };
  t.equal(data.libvirtVersion, '9.0.0');
  t.ok(data.machines[0]!.capabilities);
  t.match(data.machines[1], { machineType: 'q35', capabilities: null, error: /does not support machine type/ });
});

t.test('every machine type refused: the probe produced nothing and fails', async (t) => {
  const r = await run(fakeVirsh(t, VERSION, { default: REFUSED, q35: REFUSED }));
  t.equal(r.ok, false);
  t.match(r.error, { code: 'VTPM_ERR_EXEC_FAILED', message: /^libvirt gave domain capabilities for no machine type: default: virsh: error: .*; q35: virsh: error/ });
});

t.test('garbage for one machine type fails the probe with VTPM_ERR_PARSE naming the command', async (t) => {
  const r = await run(fakeVirsh(t, VERSION, { default: `cat ${domcaps}`, q35: "printf '<domainCapabilities><devices>'" }));
  t.equal(r.ok, false);
  t.match(r.error, { code: 'VTPM_ERR_PARSE', message: /^virsh domcapabilities --virttype qemu --machine q35: domain capabilities are not well-formed XML/, details: { machineType: 'q35' } });
});

t.test('a version answer without a libvirt version fails the probe', async (t) => {
  const r = await run(fakeVirsh(t, "echo 'hello'", { default: `cat ${domcaps}`, q35: `cat ${domcaps}` }));
  t.match(r.error, { code: 'VTPM_ERR_PARSE', message: /virsh version printed no libvirt version .*"hello"/ });
});

t.test('domain capabilities past libvirt.domcapsMaxBytes: VTPM_ERR_OUTPUT_TOO_LARGE', async (t) => {
  const r = await run(fakeVirsh(t, VERSION, { default: "head -c 3000000 /dev/zero | tr '\\\\000' x", q35: `cat ${domcaps}` }));
  t.match(r.error, { code: 'VTPM_ERR_OUTPUT_TOO_LARGE', message: /domcapabilities --virttype qemu printed more than 1 MiB on stdout/, details: { maxOutputBytes: 1024 * 1024 } });
});
