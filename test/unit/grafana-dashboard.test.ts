/**
 * The generated Grafana dashboard: current with its code, loadable as Grafana would (the SDK's
 * schema types at compile time; here ids, layout, datasource references, variables), and every
 * query reads only series the agent exports or the shipped rules record.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { FLEET_RECORDS, buildFleetDashboard, panelQueries } from '../../scripts/grafana/dashboard.js';
import { renderGrafanaFiles } from '../../scripts/gen-grafana.js';
import { METRIC_NAMES } from '../../src/metric-names.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const exported = new Set([...readFileSync(`${root}/test/fixtures/metrics-families.golden.txt`, 'utf8').matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
const recorded = new Set(
  readdirSync(`${root}/deploy/prometheus/rules`)
    .filter((f) => f.endsWith('.rules.yml'))
    .flatMap((f) => (parse(readFileSync(`${root}/deploy/prometheus/rules/${f}`, 'utf8')) as { groups: Array<{ rules: Array<{ record?: string }> }> }).groups)
    .flatMap((g) => g.rules.map((r) => r.record))
    .filter((r): r is string => typeof r === 'string'),
);
const d = buildFleetDashboard();
const panels = d.panels ?? [];

t.test('the committed dashboard JSON and ConfigMap are what the code generates (npx tsx scripts/gen-grafana.ts)', async (t) => {
  for (const f of renderGrafanaFiles()) t.equal(readFileSync(f.path, 'utf8'), f.text, f.path);
});

t.test('every metric-name constant is a family the agent exports (golden list, checked against the live registry)', async (t) => {
  for (const name of Object.values(METRIC_NAMES)) t.ok(exported.has(name), name);
});

t.test('every recorded series the dashboard reads is defined by the shipped rules', async (t) => {
  for (const name of Object.values(FLEET_RECORDS)) t.ok(recorded.has(name), name);
});

t.test('panels: unique ids, inside the 24-column grid, not overlapping, on the datasource variable', async (t) => {
  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'unique ids');
  t.ok(ids.every((id) => typeof id === 'number' && id > 0), 'numbered');
  const boxes = panels.map((p) => ({ title: p.title, ...p.gridPos! }));
  for (const b of boxes) t.ok(b.x >= 0 && b.w > 0 && b.x + b.w <= 24 && b.h > 0, `${b.title}: within the grid`);
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i]!;
      const b = boxes[j]!;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      t.notOk(overlap, `${a.title} / ${b.title} do not overlap`);
    }
  }
  for (const p of panels.filter((p) => p.type !== 'row')) {
    t.same((p as { datasource?: unknown }).datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: datasource variable`);
    t.ok((p as { description?: string }).description, `${p.title}: description`);
    const refIds = ((p as { targets?: Array<{ refId?: string }> }).targets ?? []).map((q) => q.refId);
    t.ok(refIds.length > 0, `${p.title}: has queries`);
    t.equal(new Set(refIds).size, refIds.length, `${p.title}: unique refIds`);
  }
});

t.test('the panels the issue asks for, and region and host variables', async (t) => {
  const titles = panels.map((p) => p.title);
  for (const want of [/TPM configuration/, /drifting/, /Fenced hosts/, /Agents down/, /guests at risk/i, /Restart outcomes per host/, /Barbican access/, /Emulation check duration/]) {
    t.ok(titles.some((x) => want.test(x ?? '')), `a panel matching ${want}`);
  }
  const vars = d.templating?.list ?? [];
  t.same(vars.map((v) => v.name), ['datasource', 'region', 'host']);
  for (const v of vars.slice(1)) {
    t.equal(v.includeAll, true, `${v.name}: All`);
    t.equal(v.allValue, '.*', `${v.name}: All matches hosts without the label too`);
  }
});

t.test('every query reads exported or recorded series and honours the variables', async (t) => {
  const queries = panelQueries(d);
  t.ok(queries.length >= 15, `${queries.length} queries`);
  for (const q of queries) {
    const names = q.expr.match(/[a-z_:]*vtpm_[a-z0-9_:]+/g) ?? [];
    t.ok(names.length > 0 || /\bup\{/.test(q.expr), `${q.panel}/${q.refId}: reads vTPM series`);
    for (const n of names) t.ok(n.includes(':') ? recorded.has(n) : exported.has(n), `${q.panel}/${q.refId}: ${n}`);
    t.match(q.expr, /region=~"\$region"/, `${q.panel}/${q.refId}: filtered by region`);
  }
});
