/**
 * Every alert rule file: promtool accepts it and its unit tests pass; every alert follows the
 * house style (Atmosphere's P1–P5 ladder) and has a case that fires and one that must not; every
 * metric an alert reads is one the agent exports (from the golden list of metric families).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { requireCommands } from '../harness/components.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ruleFiles = readdirSync(`${root}/deploy/prometheus/rules`).filter((f) => f.endsWith('.rules.yml'));
const ladder: Record<string, [number, number]> = { P1: [60, 120], P2: [240, 600], P3: [900, 1800], P4: [1800, 7200], P5: [43200, 172800] };
const exported = new Set(
  [...readFileSync(`${root}/test/fixtures/metrics-families.golden.txt`, 'utf8').matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!),
);

type Rule = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations: Record<string, string> };
type Alert = Rule & { alert: string };
const isAlert = (r: Rule): r is Alert => typeof r.alert === 'string';

/** Every recording rule of every file: an alert may read one recorded in another file. */
const recorded = new Set(
  ruleFiles.flatMap((f) =>
    (parse(readFileSync(`${root}/deploy/prometheus/rules/${f}`, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules.map((r) => r.record ?? '')),
  ),
);
recorded.delete('');
/** Recorded series names (level:metric:operations) are not agent metrics: take them out first. */
const RECORDED_NAME = /[a-z_]*:[a-z0-9_:]+/g;

t.ok(ruleFiles.length >= 5, 'rule files are present');

for (const file of ruleFiles) {
  const area = file.replace(/\.rules\.yml$/, '');
  const rulesPath = `deploy/prometheus/rules/${file}`;
  const testsPath = `deploy/prometheus/tests/${area}.test.yml`;
  const rules = (parse(readFileSync(`${root}/${rulesPath}`, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

  t.test(`${area}: promtool accepts the rules and their unit tests pass`, async (t) => {
    requireCommands('promtool');
    const check = execFileSync('promtool', ['check', 'rules', rulesPath], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    t.match(check, new RegExp(`SUCCESS: ${rules.length} rules found`));
    t.match(execFileSync('promtool', ['test', 'rules', testsPath], { cwd: root, encoding: 'utf8', timeout: 60_000 }), /SUCCESS/);
  });

  t.test(`${area}: every alert follows the house style and has a firing and a quiet case`, async (t) => {
    const testDoc = parse(readFileSync(`${root}/${testsPath}`, 'utf8')) as {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>; promql_expr_test?: Array<{ expr: string; exp_samples: unknown[] }> }>;
    };
    const cases = testDoc.tests.flatMap((c) => c.alert_rule_test ?? []);
    const exprCases = testDoc.tests.flatMap((c) => c.promql_expr_test ?? []);
    for (const rule of rules.filter((r) => r.record)) {
      const name = rule.record!;
      t.match(name, /^[a-z_]+:vtpm_[a-z0-9_]+:[a-z0-9_]+$/, `${name}: level:metric:operations naming`);
      t.ok(exprCases.some((c) => c.expr.includes(name) && c.exp_samples.length > 0), `${name}: a promql_expr_test with expected samples`);
      t.notMatch(rule.expr, /by \([^)]*\b(instance_uuid|domain|uuid)\b/, `${name}: no per-guest series`);
    }
    for (const rule of rules.filter(isAlert)) {
      const name = rule.alert;
      t.match(name, /^Vtpm[A-Z][A-Za-z]+$/, `${name}: PascalCase with the Vtpm prefix`);
      const sev = rule.labels?.severity ?? '';
      t.ok(ladder[sev], `${name}: severity P1..P5`);
      const m = /^(\d+)([smh])$/.exec(String(rule.for));
      t.ok(m, `${name}: has a for duration (never 0)`);
      if (m && ladder[sev]) {
        const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
        t.ok(seconds >= ladder[sev][0] && seconds <= ladder[sev][1], `${name}: for ${rule.for} fits ${sev}`);
      }
      t.match(rule.annotations.summary, /^[^:]+: /, `${name}: summary "<Component>: <impact>"`);
      t.ok(rule.annotations.description, `${name}: description`);
      t.match(rule.annotations.runbook_url, /README\.md#[a-z0-9-]+$/, `${name}: runbook`);
      t.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length > 0), `${name}: a case that fires`);
      t.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length === 0), `${name}: a case that must not fire`);
    }
  });

  t.test(`${area}: every metric a rule reads is exported by the agent or recorded`, async (t) => {
    for (const rule of rules) {
      const name = rule.alert ?? rule.record;
      for (const ref of rule.expr.match(RECORDED_NAME) ?? []) t.ok(recorded.has(ref), `${name}: ${ref} is a recording rule`);
      for (const raw of rule.expr.replace(RECORDED_NAME, '').match(/vtpm_[a-z0-9_]+/g) ?? []) {
        const family = exported.has(raw) ? raw : raw.replace(/_(bucket|sum|count)$/, '');
        t.ok(exported.has(family), `${name}: ${raw} is exported`);
      }
    }
  });
}
