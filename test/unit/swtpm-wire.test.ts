import { readFileSync } from 'node:fs';
import t from 'tap';
import { cmdInit, cmdShutdown, parseControlResult } from '../../src/swtpm/control.js';
import { parseGroup, parsePasswd } from '../../src/host/accounts.js';
import { parseCmdline } from '../../src/swtpm/procscan.js';
import { rcName, tpm12RcName, tpm2RcName, TpmResponseError } from '../../src/swtpm/rc.js';
import * as tpm12 from '../../src/swtpm/tpm12.js';
import * as tpm2 from '../../src/swtpm/tpm2.js';
import { announcedSize, TpmProtocolError } from '../../src/swtpm/wire.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/fake-swtpm/real-responses-swtpm-0.7.1.json', import.meta.url), 'utf8')) as {
  pairs: Record<string, { command: string; response: string }>;
};
const pair = (name: string) => {
  const p = fixture.pairs[name];
  if (!p) throw new Error(`fixture lacks ${name}`);
  return { command: Buffer.from(p.command, 'hex'), response: Buffer.from(p.response, 'hex') };
};
const AUTH = Buffer.from('0123456789abcdef');
const INDEX = 0x01007654;

t.test('TPM 2.0 builders produce the bytes the real swtpm was sent', async (t) => {
  t.same(tpm2.startup(), pair('tpm2.Startup').command);
  t.same(tpm2.selfTest(true), pair('tpm2.SelfTest').command);
  t.same(tpm2.getRandom(16), pair('tpm2.GetRandom').command);
  t.same(tpm2.getFixedProperties(), pair('tpm2.GetCapability').command);
  t.same(tpm2.nvDefineSpace({ index: INDEX, authValue: AUTH, dataSize: 32 }), pair('tpm2.NV_DefineSpace').command);
  t.same(tpm2.nvWrite(INDEX, AUTH, Buffer.alloc(32, 0xa5)), pair('tpm2.NV_Write').command);
  t.same(tpm2.nvRead(INDEX, AUTH, 32), pair('tpm2.NV_Read').command);
  t.same(tpm2.shutdown(), pair('tpm2.Shutdown').command);
  // From real-components.md (captured independently with a hand-written script).
  t.equal(tpm2.getRandom(8).toString('hex'), '80010000000c0000017b0008');
});

t.test('TPM 1.2 builders match the documented raw commands', async (t) => {
  t.equal(tpm12.startup().toString('hex'), '00c10000000c000000990001');
  t.equal(tpm12.selfTestFull().toString('hex'), '00c10000000a00000050');
  t.equal(tpm12.getRandom(8).toString('hex'), '00c10000000e0000004600000008');
  t.same(tpm12.getCapabilityVersion(), pair('tpm12.GetCapability').command);
});

t.test('control channel commands and answers', async (t) => {
  t.equal(cmdInit(0).toString('hex'), '0000000200000000');
  t.equal(cmdShutdown().toString('hex'), '00000003');
  t.equal(parseControlResult(Buffer.from('00000000', 'hex'), 'CMD_INIT'), 0);
  t.equal(parseControlResult(Buffer.from('00000101', 'hex'), 'CMD_INIT'), 0x101);
  t.throws(() => parseControlResult(Buffer.from('000001', 'hex'), 'CMD_INIT'), TpmProtocolError);
  t.throws(() => parseControlResult(Buffer.from('0000010100', 'hex'), 'CMD_INIT'), TpmProtocolError);
});

t.test('TPM 2.0 parsers on real responses', async (t) => {
  t.doesNotThrow(() => tpm2.parseStartup(pair('tpm2.Startup').response));
  t.doesNotThrow(() => tpm2.parseSelfTest(pair('tpm2.SelfTest').response));
  t.equal(tpm2.parseGetRandom(pair('tpm2.GetRandom').response).length, 16);
  const caps = tpm2.parseGetCapabilityProperties(pair('tpm2.GetCapability').response);
  t.equal(caps.moreData, true);
  const fixed = tpm2.fixedProperties(caps.properties);
  t.equal(fixed.family, '2.0');
  t.equal(fixed.manufacturer, 'IBM');
  t.equal(fixed.vendorString, 'SW   TPM');
  t.equal(fixed.revision, '1.64');
  t.same(fixed.firmwareVersionRaw, [0x20191023, 0x00163636]);
  t.equal(fixed.firmwareVersion, '8217.4131.22.13878');
  t.doesNotThrow(() => tpm2.parseNvDefineSpace(pair('tpm2.NV_DefineSpace').response));
  t.doesNotThrow(() => tpm2.parseNvWrite(pair('tpm2.NV_Write').response));
  t.same(tpm2.parseNvRead(pair('tpm2.NV_Read').response), Buffer.alloc(32, 0xa5));
  t.doesNotThrow(() => tpm2.parseShutdown(pair('tpm2.Shutdown').response));
});

t.test('TPM 2.0 error responses become named TpmResponseErrors', async (t) => {
  const cases: Array<[string, (b: Buffer) => unknown, string]> = [
    ['tpm2.Startup.again', tpm2.parseStartup, 'TPM_RC_INITIALIZE'],
    ['tpm2.NV_DefineSpace.again', tpm2.parseNvDefineSpace, 'TPM_RC_NV_DEFINED'],
    ['tpm2.NV_Read.badauth', tpm2.parseNvRead, 'TPM_RC_BAD_AUTH (session 1)'],
  ];
  for (const [name, parse, expected] of cases) {
    try {
      parse(pair(name).response);
      t.fail(`${name} should throw`);
    } catch (err) {
      t.type(err, TpmResponseError, name);
      t.equal((err as TpmResponseError).rcName, expected, name);
      t.match((err as Error).message, expected);
    }
  }
});

t.test('TPM 1.2 parsers on real responses', async (t) => {
  t.doesNotThrow(() => tpm12.parseStartup(pair('tpm12.Startup').response));
  t.doesNotThrow(() => tpm12.parseSelfTestFull(pair('tpm12.SelfTestFull').response));
  t.equal(tpm12.parseGetRandom(pair('tpm12.GetRandom').response).length, 16);
  t.same(tpm12.parseGetCapabilityVersion(pair('tpm12.GetCapability').response), {
    version: '1.2',
    specLevel: 2,
    errataRev: 3,
    manufacturer: 'IBM',
    firmwareVersion: '18.158',
  });
  t.throws(() => tpm12.parseStartup(pair('tpm12.Startup.again').response), { name: 'TpmResponseError', message: /TPM_INVALID_POSTINIT/ });
});

t.test('response code names', async (t) => {
  t.equal(tpm2RcName(0), 'TPM_RC_SUCCESS');
  t.equal(tpm2RcName(0x100), 'TPM_RC_INITIALIZE');
  t.equal(tpm2RcName(0x101), 'TPM_RC_FAILURE');
  t.equal(tpm2RcName(0x14c), 'TPM_RC_NV_DEFINED');
  t.equal(tpm2RcName(0x98e), 'TPM_RC_AUTH_FAIL (session 1)');
  t.equal(tpm2RcName(0x1c4), 'TPM_RC_VALUE (parameter 1)');
  t.equal(tpm2RcName(0x18b), 'TPM_RC_HANDLE (handle 1)');
  t.equal(tpm2RcName(0x922), 'TPM_RC_RETRY');
  t.equal(tpm2RcName(0x90a), 'TPM_RC_TESTING');
  t.equal(tpm2RcName(0x01e), 'TPM_BADTAG (TPM 1.2 code)');
  t.match(tpm2RcName(0x500), /^TPM_RC_VENDOR/);
  t.match(tpm2RcName(0x1234567), /^TPM_RC_UNKNOWN/);
  t.equal(tpm12RcName(0x09), 'TPM_FAIL');
  t.equal(tpm12RcName(0x26), 'TPM_INVALID_POSTINIT');
  t.equal(tpm12RcName(0x802), 'TPM_DOING_SELFTEST');
  t.match(tpm12RcName(0x7777), /^TPM_(UNKNOWN|VENDOR_ERROR)/);
  t.equal(rcName('2.0', 0x101), 'TPM_RC_FAILURE');
  t.equal(rcName('1.2', 0x09), 'TPM_FAIL');
  // Every 16-bit code has a non-empty name, and names never throw.
  for (let rc = 0; rc <= 0xffff; rc++) {
    if (!tpm2RcName(rc) || !tpm12RcName(rc)) t.fail(`no name for 0x${rc.toString(16)}`);
  }
});

t.test('parsers reject short, long and garbled valid responses with a typed error', async (t) => {
  const parsers: Array<[string, (b: Buffer) => unknown]> = [
    ['tpm2.Startup', tpm2.parseStartup],
    ['tpm2.SelfTest', tpm2.parseSelfTest],
    ['tpm2.GetRandom', tpm2.parseGetRandom],
    ['tpm2.GetCapability', (b) => tpm2.fixedProperties(tpm2.parseGetCapabilityProperties(b).properties)],
    ['tpm2.NV_DefineSpace', tpm2.parseNvDefineSpace],
    ['tpm2.NV_Write', tpm2.parseNvWrite],
    ['tpm2.NV_Read', tpm2.parseNvRead],
    ['tpm2.Shutdown', tpm2.parseShutdown],
    ['tpm12.Startup', tpm12.parseStartup],
    ['tpm12.SelfTestFull', tpm12.parseSelfTestFull],
    ['tpm12.GetRandom', tpm12.parseGetRandom],
    ['tpm12.GetCapability', tpm12.parseGetCapabilityVersion],
  ];
  for (const [name, parse] of parsers) {
    const good = pair(name).response;
    t.doesNotThrow(() => parse(good), `${name} accepts the real response`);
    for (let len = 0; len < good.length; len++) {
      t.throws(() => parse(good.subarray(0, len)), TpmProtocolError, `${name} truncated to ${len}`);
    }
    for (const extra of [1, 2, 7]) {
      const longer = Buffer.concat([good, Buffer.alloc(extra, 0x5a)]);
      t.throws(() => parse(longer), TpmProtocolError, `${name} with ${extra} trailing byte(s)`);
      // Even with the size field patched to match, the body has bytes the structure does not.
      longer.writeUInt32BE(longer.length, 2);
      t.throws(() => parse(longer), TpmProtocolError, `${name} with ${extra} trailing byte(s) and a matching size`);
    }
  }
});

/** mulberry32: a tiny seeded PRNG so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('fuzz: random, truncated and mutated bytes never escape as anything but a typed error', async (t) => {
  const rand = prng(0xc0ffee);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  const parsers: Array<[string, (b: Buffer) => unknown]> = [
    ['tpm2.parseStartup', tpm2.parseStartup],
    ['tpm2.parseSelfTest', tpm2.parseSelfTest],
    ['tpm2.parseShutdown', tpm2.parseShutdown],
    ['tpm2.parseGetRandom', tpm2.parseGetRandom],
    ['tpm2.parseGetCapabilityProperties', (b) => tpm2.fixedProperties(tpm2.parseGetCapabilityProperties(b).properties)],
    ['tpm2.parseNvDefineSpace', tpm2.parseNvDefineSpace],
    ['tpm2.parseNvWrite', tpm2.parseNvWrite],
    ['tpm2.parseNvRead', tpm2.parseNvRead],
    ['tpm12.parseStartup', tpm12.parseStartup],
    ['tpm12.parseSelfTestFull', tpm12.parseSelfTestFull],
    ['tpm12.parseGetRandom', tpm12.parseGetRandom],
    ['tpm12.parseGetCapabilityVersion', tpm12.parseGetCapabilityVersion],
    ['parseControlResult', (b) => parseControlResult(b, 'CMD_INIT')],
    ['announcedSize', (b) => announcedSize(b)],
  ];
  const seeds = Object.values(fixture.pairs).map((p) => Buffer.from(p.response, 'hex'));
  let unexpected = 0;
  let runs = 0;
  for (const [name, parse] of parsers) {
    const inputs: Buffer[] = [];
    for (let i = 0; i < 300; i++) inputs.push(bytes(Math.floor(rand() * 64)));
    for (let i = 0; i < 300; i++) {
      // Plausible headers with random bodies reach deeper into the parsers than pure noise.
      const body = bytes(Math.floor(rand() * 80));
      const tag = [0x8001, 0x8002, 0x00c4][Math.floor(rand() * 3)]!;
      const head = Buffer.alloc(10);
      head.writeUInt16BE(tag, 0);
      head.writeUInt32BE(rand() < 0.8 ? 10 + body.length : Math.floor(rand() * 0xffffffff), 2);
      head.writeUInt32BE(rand() < 0.7 ? 0 : Math.floor(rand() * 0x1000), 6);
      inputs.push(Buffer.concat([head, body]));
    }
    for (const seed of seeds) {
      for (let i = 0; i < 20; i++) {
        const m = Buffer.from(seed);
        const flips = 1 + Math.floor(rand() * 3);
        for (let f = 0; f < flips && m.length; f++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
        inputs.push(m.subarray(0, rand() < 0.3 ? Math.floor(rand() * m.length) : m.length));
      }
    }
    for (const input of inputs) {
      runs++;
      try {
        parse(input);
      } catch (err) {
        if (!(err instanceof TpmProtocolError) && !(err instanceof TpmResponseError)) {
          unexpected++;
          if (unexpected < 5) t.fail(`${name}(${input.toString('hex')}) threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
        }
      }
    }
  }
  t.equal(unexpected, 0, `no untyped error in ${runs} fuzzed parses`);
  t.ok(runs > 10000);
});

t.test('fuzz: passwd/group and cmdline parsers never throw', async (t) => {
  const rand = prng(42);
  const alphabet = 'ab:x0123456789\n#\0 é';
  for (let i = 0; i < 3000; i++) {
    const text = Array.from({ length: Math.floor(rand() * 120) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    for (const e of parsePasswd(text)) if (!Number.isInteger(e.uid) || e.uid < 0 || e.uid > 0xffffffff || !e.name) t.fail(`bad entry ${JSON.stringify(e)}`);
    for (const e of parseGroup(text)) if (!Number.isInteger(e.gid) || e.gid < 0 || e.gid > 0xffffffff || !e.name) t.fail(`bad entry ${JSON.stringify(e)}`);
    parseCmdline(Buffer.from(text));
  }
  t.pass('3000 random passwd/group/cmdline texts parsed without throwing');
  t.same(parsePasswd('root:x:0:0:root:/root:/bin/bash\n# c\ntss:x:103:110::/var/lib/tpm:/bin/false\nbroken\nneg:x:-1:0\nhuge:x:99999999999:0\n'), [
    { name: 'root', uid: 0, gid: 0 },
    { name: 'tss', uid: 103, gid: 110 },
  ]);
  t.same(parseCmdline(Buffer.from('swtpm\0socket\0--tpm2\0')), ['swtpm', 'socket', '--tpm2']);
});
