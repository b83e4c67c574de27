import t from 'tap';
import { virshBatch } from '../../src/libvirt/virsh.js';
import { requireLibvirt, LIBVIRT_URI } from '../harness/libvirt.js';

requireLibvirt();
const options = { virshPath: 'virsh', uri: LIBVIRT_URI, readOnly: true, timeoutMs: 60_000 };
const cap = { baseBytes: 64 * 1024, perCommandBytes: () => 1024 };

t.test('each command gets exactly its own output, with no prompt or echoed command', async (t) => {
  const { outputs } = await virshBatch(['version', 'uri', 'hostname'], options, cap);
  t.equal(outputs.length, 3);
  t.match(outputs[0]!.stdout, /^Compiled against library: libvirt/);
  t.notMatch(outputs[0]!.stdout, /virsh [#>]|@@VTPM/);
  t.equal(outputs[1]!.stdout.trim(), 'qemu:///system');
  t.ok(outputs[2]!.stdout.trim().length > 0);
});

t.test('a failing command in the middle leaves an empty section and does not hide the others', async (t) => {
  const { outputs, stderr } = await virshBatch(['uri', 'dominfo no-such-domain-vtpm-agent-test', 'uri'], options, cap);
  t.equal(outputs[0]!.stdout.trim(), 'qemu:///system');
  t.equal(outputs[1]!.stdout.trim(), '');
  t.equal(outputs[2]!.stdout.trim(), 'qemu:///system');
  t.match(stderr, /no-such-domain|failed to get domain/);
});

t.test('thousands of commands are split into argument-sized chunks, in order', async (t) => {
  const commands = Array.from({ length: 3000 }, (_, i) => (i % 2 ? 'uri' : `echo item-${i}-${'x'.repeat(40)}`));
  const { outputs } = await virshBatch(commands, options, cap);
  t.equal(outputs.length, 3000);
  t.equal(outputs[2998]!.stdout.trim(), `item-2998-${'x'.repeat(40)}`);
  t.equal(outputs[2999]!.stdout.trim(), 'qemu:///system');
});

t.test('a separator inside a command is refused', async (t) => {
  await t.rejects(virshBatch(['uri; destroy x'], options, cap), { code: 'VTPM_ERR_EXEC_FAILED', message: /separator/ });
});

t.test('a batch that prints past its cap is killed and fails naming the batch and the cap', async (t) => {
  // 200 echoes of 300 B each (one process: the script stays under the argument limit) against an allowance of 64 B each plus 4 KiB.
  const commands = Array.from({ length: 200 }, () => `echo ${'y'.repeat(300)}`);
  const err = await virshBatch(commands, options, { baseBytes: 4096, perCommandBytes: () => 64 }).then(
    () => null,
    (e: unknown) => e as { code: string; message: string; details: Record<string, unknown> },
  );
  t.equal(err?.code, 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.match(err?.message, /^virsh <batch of 200: echo> printed more than 16896 B on stdout \(the cap for this call\) and was killed$/);
  t.match(err?.details, { maxOutputBytes: 4096 + 200 * 64, stream: 'stdout', kind: 'too-large' });
  // The same batch with room for it passes.
  const { outputs } = await virshBatch(commands, options, { baseBytes: 4096, perCommandBytes: () => 4096 });
  t.equal(outputs.length, 200);
});
