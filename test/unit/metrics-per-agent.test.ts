import t from 'tap';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { Agent } from '../../src/agent.js';
import { BARBICAN_FAILURES_METRIC, registerBarbicanFailureSource } from '../../src/barbican/failure-metric.js';
import { emptyReasonCounts } from '../../src/barbican/reasons.js';
import { configSchema } from '../../src/config/schema.js';
import { healthPrincipalProbe } from '../../src/health/checks/principal.js';
import { healthProbes } from '../../src/health/index.js';
import { finding } from '../../src/health/reasons.js';
import { checkResult } from '../../src/health/types.js';

// Two agents in one process keep their metric state apart: it lives in each agent's registry.

t.test('two agents: each exports the health metrics of its own results', async (t) => {
  const agent = () => new Agent({ config: configSchema.parse({}), log: pino({ level: 'silent' }), probes: healthProbes, extensions: [] });
  const failing = agent();
  const passing = agent();
  const publish = (a: Agent, fail: boolean) =>
    a.state.set({
      probe: healthPrincipalProbe.name,
      ok: true,
      data: { checks: [checkResult('principal', fail ? [finding('VTPM_HEALTH_PRINCIPAL_UNKNOWN', 'fail', 'no such user')] : [])] },
      startedAt: Date.now(),
      durationSeconds: 0,
      lastSuccessAt: null,
    });
  publish(failing, true);
  publish(passing, false);
  const ok = async (a: Agent) => ((await a.registry.getSingleMetric('vtpm_health_check_ok')!.get()).values.find((v) => v.labels.check === 'principal'))?.value;
  t.equal(await ok(failing), 0);
  t.equal(await ok(passing), 1, 'the second agent registered its own health metrics over its own results');
});

t.test('two registries: Barbican failure sources do not leak from one to the other', async (t) => {
  const a = new Registry();
  const b = new Registry();
  registerBarbicanFailureSource(a, 'preflight', () => ({ ...emptyReasonCounts(), forbidden: 2 }));
  registerBarbicanFailureSource(b, 'log', () => ({ ...emptyReasonCounts(), not_found: 3 }));
  registerBarbicanFailureSource(a, 'log', () => ({ ...emptyReasonCounts(), other: 1 }));
  const nonZero = async (r: Registry) =>
    (await r.getSingleMetric(BARBICAN_FAILURES_METRIC)!.get()).values
      .filter((v) => v.value !== 0)
      .map((v) => `${v.labels.source}/${v.labels.reason}=${v.value}`)
      .sort();
  t.same(await nonZero(a), ['log/other=1', 'preflight/forbidden=2'], 'both sources of the first registry, one counter');
  t.same(await nonZero(b), ['log/not_found=3'], 'only its own source in the second');
  const foreign = new Registry();
  new Counter({ name: BARBICAN_FAILURES_METRIC, help: 'x', registers: [foreign] });
  t.throws(() => registerBarbicanFailureSource(foreign, 'log', emptyReasonCounts), /registered by something else/, 'a counter of that name it did not make is refused, not silently shared');
});
