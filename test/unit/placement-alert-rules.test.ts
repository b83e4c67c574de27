import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { requireCommands } from '../harness/components.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const rules = 'deploy/prometheus/rules/placement.rules.yml';
const tests = 'deploy/prometheus/tests/placement.test.yml';

t.test('promtool accepts the Placement rules and their unit tests pass', async (t) => {
  requireCommands('promtool');
  const check = execFileSync('promtool', ['check', 'rules', rules], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  t.match(check, /SUCCESS: 3 rules found/);
  const out = execFileSync('promtool', ['test', 'rules', tests], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  t.match(out, /SUCCESS/);
});

t.test('every alert follows the house style and has a firing and a quiet promtool case', async (t) => {
  const doc = parse(readFileSync(`${root}/${rules}`, 'utf8')) as { groups: Array<{ rules: Array<Record<string, any>> }> };
  const testDoc = parse(readFileSync(`${root}/${tests}`, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
  const cases = testDoc.tests.flatMap((c) => c.alert_rule_test);
  const ladder: Record<string, [number, number]> = { P1: [60, 120], P2: [240, 600], P3: [900, 1800], P4: [1800, 7200], P5: [43200, 172800] };
  for (const rule of doc.groups.flatMap((g) => g.rules)) {
    const name = rule.alert as string;
    t.match(name, /^Vtpm[A-Z][A-Za-z]+$/, `${name}: PascalCase with Vtpm prefix`);
    const sev = rule.labels?.severity as string;
    t.ok(ladder[sev], `${name}: severity P1..P5`);
    const m = /^(\d+)([smh])$/.exec(String(rule.for));
    t.ok(m, `${name}: has a for duration`);
    const seconds = Number(m![1]) * { s: 1, m: 60, h: 3600 }[m![2] as 's' | 'm' | 'h'];
    t.ok(seconds >= ladder[sev]![0] && seconds <= ladder[sev]![1], `${name}: for ${rule.for} fits ${sev}`);
    t.match(rule.annotations.summary, /^[^:]+: /, `${name}: summary "<Component>: <impact>"`);
    t.ok(rule.annotations.description, `${name}: description`);
    if (['P1', 'P2', 'P3'].includes(sev)) t.match(rule.annotations.runbook_url, /README\.md#[a-z0-9-]+$/, `${name}: runbook`);
    t.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length > 0), `${name}: a case that fires`);
    t.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length === 0), `${name}: a case that must not fire`);
  }
});
