import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { SocketChannel } from '../../src/swtpm/channel.js';
import { TpmProtocolError } from '../../src/swtpm/wire.js';

const OK = Buffer.from('80010000000a00000000', 'hex');
const CMD = Buffer.from('80010000000c000001440000', 'hex');

/** A unix socket server whose answer to each request is decided by `respond`. */
async function server(t: { teardown(fn: () => unknown): void }, respond: (sock: net.Socket, req: Buffer) => void): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swtpm-chan-'));
  const p = path.join(dir, 's.sock');
  const srv = net.createServer((sock) => {
    sock.on('data', (d) => respond(sock, d));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(p, r));
  t.teardown(async () => {
    await new Promise((r) => srv.close(r));
    await rm(dir, { recursive: true, force: true });
  });
  return p;
}

const never = new AbortController().signal;
const soon = () => performance.now() + 2000;

t.test('a response split into single bytes is reassembled', async (t) => {
  const p = await server(t, (sock) => {
    let i = 0;
    const tick = () => {
      if (i < OK.length) {
        sock.write(OK.subarray(i, i + 1));
        i++;
        setTimeout(tick, 1);
      }
    };
    tick();
  });
  const ch = await SocketChannel.connect(p, 'data channel', soon(), never);
  t.same(await ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), OK);
  t.same(await ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), OK, 'a second request on the same connection');
  ch.close();
});

t.test('bytes beyond the announced size are an error', async (t) => {
  const p = await server(t, (sock) => sock.write(Buffer.concat([OK, Buffer.from('ff', 'hex')])));
  const ch = await SocketChannel.connect(p, 'data channel', soon(), never);
  await t.rejects(ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), TpmProtocolError);
  ch.close();
});

t.test('an impossible size fails at once', async (t) => {
  const p = await server(t, (sock) => sock.write(Buffer.from('8001ffffffff00000000', 'hex')));
  const ch = await SocketChannel.connect(p, 'data channel', soon(), never);
  await t.rejects(ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), { message: /impossible size/ });
  ch.close();
});

t.test('a connection closed mid-response is an error naming what arrived', async (t) => {
  const p = await server(t, (sock) => sock.end(OK.subarray(0, 7)));
  const ch = await SocketChannel.connect(p, 'data channel', soon(), never);
  await t.rejects(ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), { message: /closed by swtpm after 7 byte/ });
  await t.rejects(ch.request(CMD, { kind: 'tpm' }, 'Startup', 2000, never), TpmProtocolError, 'later requests fail too');
});

t.test('silence ends at the timeout, abort ends at once', async (t) => {
  const p = await server(t, () => {});
  const ch = await SocketChannel.connect(p, 'data channel', soon(), never);
  await t.rejects(ch.request(CMD, { kind: 'tpm' }, 'Startup', 50, never), { code: 'VTPM_ERR_EXEC_TIMEOUT' });
  const ac = new AbortController();
  const pending = ch.request(CMD, { kind: 'fixed', size: 4 }, 'CMD_INIT', 60_000, ac.signal);
  ac.abort(new Error('agent is shutting down'));
  await t.rejects(pending, { code: 'VTPM_ERR_EXEC_ABORTED', message: /shutting down/ });
  ch.close();
});

t.test('connect retries until the socket exists, then gives a typed error', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'swtpm-chan-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await t.rejects(SocketChannel.connect(path.join(dir, 'none.sock'), 'control channel', performance.now() + 50, never), {
    code: 'VTPM_ERR_SWTPM_START',
    message: /cannot connect to swtpm control channel/,
  });
  const p = path.join(dir, 'late.sock');
  const srv = net.createServer(() => {});
  setTimeout(() => srv.listen(p), 30);
  const ch = await SocketChannel.connect(p, 'control channel', performance.now() + 2000, never);
  t.ok(ch, 'connected once the server listened');
  ch.close();
  await new Promise((r) => srv.close(r));
});
