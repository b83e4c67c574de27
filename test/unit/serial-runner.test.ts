import t from 'tap';
import { SerialRunner } from '../../src/util/serial-runner.js';

const tick = () => new Promise((r) => setImmediate(r));

t.test('one pass at a time; triggers during a pass make exactly one more', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  let passes = 0;
  let release: () => void = () => {};
  const runner = new SerialRunner({
    run: async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      passes += 1;
      await new Promise<void>((r) => (release = r));
      inFlight -= 1;
    },
  });
  void runner.trigger();
  await tick();
  for (let i = 0; i < 5; i++) void runner.trigger();
  runner.triggerIfIdle();
  t.equal(passes, 1);
  release();
  await tick();
  await tick();
  t.equal(passes, 2, 'five triggers mid-pass: one more pass');
  release();
  await runner.idle();
  t.equal(passes, 2);
  t.equal(maxInFlight, 1, 'never two at once');
  runner.triggerIfIdle();
  await tick();
  t.equal(passes, 3, 'triggerIfIdle runs when idle');
  release();
  await runner.idle();
});

t.test('failures back off with the given delays, a success resets; stop leaves no timer', async (t) => {
  const results = [false, false, true, false];
  const retries: Array<[number, number]> = [];
  let passes = 0;
  const runner = new SerialRunner({
    run: async () => results[passes++] ?? true,
    retryDelay: (failures) => failures * 20,
    onRetry: (failures, delay) => retries.push([failures, delay]),
  });
  await runner.trigger();
  t.equal(runner.failures, 1);
  t.ok(runner.backingOff && runner.nextAttemptAt !== null);
  await new Promise((r) => setTimeout(r, 30));
  await runner.idle();
  t.equal(passes, 2, 'retried by itself');
  await new Promise((r) => setTimeout(r, 50));
  await runner.idle();
  t.equal(passes, 3);
  t.equal(runner.failures, 0, 'success resets the count');
  t.notOk(runner.backingOff);
  t.same(retries, [[1, 20], [2, 40]]);
  await runner.trigger();
  t.equal(runner.failures, 1);
  t.ok(runner.backingOff);
  await runner.stop();
  t.notOk(runner.backingOff, 'stop clears the retry');
  await new Promise((r) => setTimeout(r, 40));
  t.equal(passes, 4, 'no pass after stop');
  await runner.trigger();
  t.equal(passes, 4);
});

t.test('a trigger during a backoff runs at once; a throwing pass is a failure and reported', async (t) => {
  const errors: unknown[] = [];
  let passes = 0;
  const runner = new SerialRunner({
    run: async () => {
      passes += 1;
      if (passes === 1) throw new Error('boom');
    },
    retryDelay: () => 60_000,
    onError: (err) => errors.push(err),
  });
  await runner.trigger();
  t.equal(errors.length, 1);
  t.equal(runner.failures, 1);
  t.ok(runner.backingOff);
  await runner.trigger();
  t.equal(passes, 2, 'not held back by the backoff');
  t.notOk(runner.backingOff);
  await runner.stop();
});
