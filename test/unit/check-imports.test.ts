import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
const script = path.join(ROOT, 'scripts/check-imports.ts');

/** A tree with the repository's layer file and the given src/ modules. */
function tree(t: { teardown(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-imports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'scripts'));
  copyFileSync(path.join(ROOT, 'scripts/import-layers.json'), path.join(dir, 'scripts/import-layers.json'));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

async function check(dir: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(tsx, [script, '--root', dir]);
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

t.test('the repository itself passes', async (t) => {
  const r = await check(ROOT);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /imports ok: \d+ modules/);
});

t.test('a cycle fails, type-only imports included', async (t) => {
  const dir = tree(t, {
    'src/probes/a.ts': "import type { B } from './b.js';\nexport type A = B;\n",
    'src/probes/b.ts': "import type { A } from './a.js';\nexport type B = { a?: A };\n",
  });
  const r = await check(dir);
  t.equal(r.code, 1);
  t.match(r.out, 'import cycle: src/probes/a.ts -> src/probes/b.ts');
});

t.test('a lower layer importing probes/, reporter/ or the wiring fails', async (t) => {
  const dir = tree(t, {
    'src/probes/types.ts': 'export type Probe = { name: string };\n',
    'src/reporter/server.ts': 'export const port = 1;\n',
    'src/agent.ts': 'export const agent = 1;\n',
    'src/swtpm/uses-probe.ts': "import type { Probe } from '../probes/types.js';\nexport type P = Probe;\n",
    'src/health/uses-reporter.ts': "import { port } from '../reporter/server.js';\nexport const p = port;\n",
    'src/placement/uses-agent.ts': "export { agent } from '../agent.js';\n",
  });
  const r = await check(dir);
  t.equal(r.code, 1);
  t.match(r.out, 'src/swtpm/uses-probe.ts (host-facts) imports src/probes/types.ts (probes)');
  t.match(r.out, 'src/health/uses-reporter.ts (probes) imports src/reporter/server.ts (extensions)');
  t.match(r.out, 'src/placement/uses-agent.ts (extensions) imports src/agent.ts (wiring)');
  t.match(r.out, '3 import problem(s)');
});

t.test('a module in no layer fails', async (t) => {
  const r = await check(tree(t, { 'src/newfolder/x.ts': 'export const x = 1;\n' }));
  t.equal(r.code, 1);
  t.match(r.out, 'src/newfolder/x.ts: in no layer');
});
