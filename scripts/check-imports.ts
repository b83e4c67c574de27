/**
 * The import check of the suite: fails on any import cycle between src/ modules (type-only
 * imports included — they are how the old extension -> state -> probes/types -> extension cycle
 * looked) and on any module importing one from a higher layer. The layers live in one file,
 * scripts/import-layers.json; the README's "Architecture" section describes them.
 *
 *   npx tsx scripts/check-imports.ts          check; exit 1 with one line per problem
 *   npx tsx scripts/check-imports.ts --list   also print each module's layer
 *   npx tsx scripts/check-imports.ts --root <dir>   check another tree (its src/ and scripts/import-layers.json)
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

interface LayerSpec {
  name: string;
  /** Regular expressions over paths relative to the repository root (`src/probes/host.ts`). */
  modules: string[];
}

const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? path.resolve(process.argv[rootArg + 1] ?? '.') : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const layers: LayerSpec[] = (JSON.parse(readFileSync(path.join(root, 'scripts/import-layers.json'), 'utf8')) as { layers: LayerSpec[] }).layers;
const matchers = layers.map((l, rank) => ({ name: l.name, rank, patterns: l.modules.map((m) => new RegExp(`^(?:${m})$`)) }));

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(rel);
    return e.isFile() && rel.endsWith('.ts') && !rel.endsWith('.d.ts') ? [rel] : [];
  });
}

/** The first layer (bottom first) whose pattern matches; a module in none is itself a problem. */
function layerOf(file: string): { name: string; rank: number } | null {
  for (const m of matchers) if (m.patterns.some((p) => p.test(file))) return m;
  return null;
}

/** Relative imports of one module (static, dynamic, type-only and re-exports), as repository paths. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

/** Tarjan's strongly connected components: every component of more than one module is a cycle. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = sources('src').sort();
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const problems: string[] = [];
for (const [file, imports] of graph) {
  const from = layerOf(file);
  if (!from) {
    problems.push(`${file}: in no layer of scripts/import-layers.json`);
    continue;
  }
  if (process.argv.includes('--list')) console.log(`${from.name.padEnd(12)} ${file}`);
  for (const target of imports) {
    if (!graph.has(target)) {
      problems.push(`${file}: imports ${target}, which does not exist`);
      continue;
    }
    const to = layerOf(target);
    if (to && to.rank > from.rank) problems.push(`${file} (${from.name}) imports ${target} (${to.name}): a lower layer never imports a higher one`);
  }
}
for (const cycle of cycles(graph)) problems.push(`import cycle: ${cycle.join(' -> ')}`);

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`${problems.length} import problem(s) in ${files.length} modules`);
  process.exit(1);
}
console.log(`imports ok: ${files.length} modules, ${[...graph.values()].reduce((n, i) => n + i.length, 0)} imports, ${layers.length} layers, no cycle`);
