import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { OUTPUT, RULES_DIR, readRuleGroups, renderPrometheusRule } from '../../scripts/gen-prometheusrule.js';
import { requireCommands } from '../harness/components.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- rule files are walked as plain YAML */
const execFileAsync = promisify(execFile);
const TESTS_DIR = path.join(path.dirname(RULES_DIR), 'tests');
requireCommands('promtool');

const work = mkdtempSync(path.join(os.tmpdir(), 'vtpm-promrule-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const committed = readFileSync(OUTPUT, 'utf8');
const object = parse(committed);
/** The rules exactly as Prometheus gets them from the PrometheusRule: its spec as a rule file. */
const extracted = path.join(work, 'from-prometheusrule.rules.yml');
writeFileSync(extracted, stringify({ groups: object.spec.groups }, { lineWidth: 0 }));

async function promtool(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync('promtool', args, { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A copy of a promtool test file that loads the PrometheusRule's rules instead of its own file. */
function retarget(testFile: string): string {
  const doc = parse(readFileSync(testFile, 'utf8'));
  doc.rule_files = [extracted];
  const out = path.join(work, path.basename(testFile));
  writeFileSync(out, stringify(doc, { lineWidth: 0 }));
  return out;
}

t.test('the PrometheusRule is generated from deploy/prometheus/rules and in sync', async (t) => {
  t.equal(committed, await renderPrometheusRule(), 'run `npx tsx scripts/gen-prometheusrule.ts` after changing a rule file');
  const { files, groups } = await readRuleGroups();
  t.ok(files.length > 0, 'there is at least one rule file');
  t.same(object.spec.groups, groups, 'every group of every rule file, in file order');
  t.equal(object.metadata.labels.release, 'kube-prometheus-stack');
  t.equal(object.metadata.namespace, undefined);
});

t.test('promtool check rules accepts the rules inside the PrometheusRule', async (t) => {
  const r = await promtool(['check', 'rules', extracted]);
  t.equal(r.code, 0, r.out);
});

t.test("the rules inside the PrometheusRule pass every area's promtool tests", async (t) => {
  const tests = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.test.yml'));
  t.ok(tests.length > 0);
  for (const f of tests) {
    const r = await promtool(['test', 'rules', retarget(path.join(TESTS_DIR, f))]);
    t.equal(r.code, 0, `${f}: ${r.out.slice(-3000)}`);
  }
});

/** Atmosphere's ladder: P1 1–2m, P2 ~5m, P3 15–30m, P4 ~1h, P5 ~24h (bounds in seconds). */
const LADDER: Record<string, [number, number]> = {
  P1: [60, 120],
  P2: [180, 600],
  P3: [900, 1800],
  P4: [2700, 7200],
  P5: [43200, 172800],
};

function durationSeconds(text: string): number {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') return Number.NaN;
  const [d, h, min, s] = m.slice(1).map((x) => Number(x ?? 0));
  return d! * 86400 + h! * 3600 + min! * 60 + s!;
}

function styleProblems(groups: any[]): string[] {
  const problems: string[] = [];
  for (const g of groups) {
    for (const r of g.rules) {
      if (!r.alert) continue;
      const where = `${g.name}/${r.alert}`;
      if (!/^Vtpm[A-Z][A-Za-z0-9]*$/.test(r.alert)) problems.push(`${where}: name is not PascalCase with the Vtpm prefix`);
      const sev = r.labels?.severity;
      const ladder = LADDER[sev];
      if (!ladder) {
        problems.push(`${where}: severity ${sev} is not one of P1..P5`);
        continue;
      }
      const f = durationSeconds(String(r.for ?? ''));
      if (!(f > 0)) problems.push(`${where}: needs a non-zero "for"`);
      else if (f < ladder[0] || f > ladder[1]) problems.push(`${where}: for ${r.for} is off the ${sev} ladder (${ladder[0] / 60}-${ladder[1] / 60} min)`);
      if (!/^[^:]+: .+/.test(r.annotations?.summary ?? '')) problems.push(`${where}: summary is not "<Component>: <impact>"`);
      if (!r.annotations?.description) problems.push(`${where}: no description`);
      if (['P1', 'P2', 'P3'].includes(sev) && !/^https:\/\/github\.com\/vtpm-agent\/vtpm-agent\/blob\/main\/README\.md#[a-z0-9-]+$/.test(r.annotations?.runbook_url ?? '')) {
        problems.push(`${where}: ${sev} needs a runbook_url into the README`);
      }
    }
  }
  return problems;
}

t.test("every alert maps onto Atmosphere's P1–P5 ladder and style", async (t) => {
  t.same(styleProblems(object.spec.groups), []);
});

t.test('test of the test: drift, duplicates, bad rules and off-ladder alerts are caught', async (t) => {
  const dir = path.join(work, 'rules-copy');
  mkdirSync(dir);
  cpSync(RULES_DIR, dir, { recursive: true });
  t.equal(await renderPrometheusRule(dir), committed, 'a faithful copy renders the same');

  const first = readdirSync(dir).filter((f) => f.endsWith('.rules.yml')).sort()[0]!;
  const doc = parse(readFileSync(path.join(dir, first), 'utf8'));
  doc.groups[0].rules[0].expr = `(${doc.groups[0].rules[0].expr}) > 0`;
  writeFileSync(path.join(dir, first), stringify(doc));
  t.not(await renderPrometheusRule(dir), committed, 'an edited rule file makes the committed PrometheusRule stale');

  writeFileSync(path.join(dir, 'zz-duplicate.rules.yml'), stringify({ groups: [{ name: doc.groups[0].name, rules: [] }] }));
  await t.rejects(renderPrometheusRule(dir), /is defined in both/);

  const broken = path.join(work, 'broken.rules.yml');
  writeFileSync(broken, stringify({ groups: [{ name: 'x', rules: [{ alert: 'VtpmX', expr: 'sum(', for: '5m' }] }] }));
  t.not((await promtool(['check', 'rules', broken])).code, 0, 'promtool rejects a broken expression');

  t.same(
    styleProblems([{ name: 'g', rules: [{ alert: 'vtpm_bad', expr: 'up', for: '0m', labels: { severity: 'critical' }, annotations: {} }] }]),
    ['g/vtpm_bad: name is not PascalCase with the Vtpm prefix', 'g/vtpm_bad: severity critical is not one of P1..P5'],
  );
  t.same(
    styleProblems([{ name: 'g', rules: [{ alert: 'VtpmFast', expr: 'up', for: '1m', labels: { severity: 'P3' }, annotations: { summary: 'no colon' } }] }]),
    ['g/VtpmFast: for 1m is off the P3 ladder (15-30 min)', 'g/VtpmFast: summary is not "<Component>: <impact>"', 'g/VtpmFast: no description', 'g/VtpmFast: P3 needs a runbook_url into the README'],
  );
  t.equal(durationSeconds('1h30m'), 5400);
  t.ok(Number.isNaN(durationSeconds('5 minutes')));
});
