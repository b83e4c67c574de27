/**
 * Validates Kubernetes manifests two ways, both with the kubernetes-models packages:
 *  - their ajv validators (types, required fields, patterns, enums) — `schemaErrors`;
 *  - their TypeScript interfaces, by compiling each manifest as an object literal: excess
 *    property checks reject unknown or misspelled fields, which the JSON schemas let through
 *    (they allow additional properties) — `unknownFieldErrors`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';

const execFileAsync = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MANIFEST_DIR = path.join(ROOT, 'deploy/kubernetes');

export type Manifest = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string } };

interface Kind {
  model: new (data: never) => { validate(): void };
  /** Module and interface name of the type used for the unknown-field check. */
  typeModule: string;
  typeName: string;
}

/** Every kind the project ships, keyed `apiVersion/kind`. A kind not listed here is an error. */
export const KINDS: Record<string, Kind> = {
  'v1/ConfigMap': { model: ConfigMap as never, typeModule: 'kubernetes-models/v1/ConfigMap', typeName: 'IConfigMap' },
  'v1/ServiceAccount': { model: ServiceAccount as never, typeModule: 'kubernetes-models/v1/ServiceAccount', typeName: 'IServiceAccount' },
  'apps/v1/DaemonSet': { model: DaemonSet as never, typeModule: 'kubernetes-models/apps/v1/DaemonSet', typeName: 'IDaemonSet' },
  'monitoring.coreos.com/v1/PodMonitor': {
    model: PodMonitor as never,
    typeModule: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
    typeName: 'IPodMonitor',
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    model: PrometheusRule as never,
    typeModule: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
    typeName: 'IPrometheusRule',
  },
};

export function kindKey(doc: Manifest): string {
  return `${doc.apiVersion}/${doc.kind}`;
}

export function label(doc: Manifest): string {
  return `${doc.kind ?? '?'}/${doc.metadata?.name ?? '?'}`;
}

/** All documents of all `*.yaml` files in the directory except kustomization.yaml. */
export async function loadManifests(dir: string = MANIFEST_DIR): Promise<Array<{ file: string; doc: Manifest }>> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
  const out: Array<{ file: string; doc: Manifest }> = [];
  for (const file of files) {
    for (const document of parseAllDocuments(await readFile(path.join(dir, file), 'utf8'))) {
      if (document.errors.length) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc = document.toJS() as Manifest | null;
      if (doc) out.push({ file, doc });
    }
  }
  return out;
}

/** Schema errors (ajv, via kubernetes-models) as `Kind/name: path message`; empty when valid. */
export function schemaErrors(doc: Manifest): string[] {
  const kind = KINDS[kindKey(doc)];
  if (!kind) return [`${label(doc)}: kind ${kindKey(doc)} has no model here (add it to KINDS)`];
  try {
    new kind.model(doc as never).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: Array<{ instancePath?: string; message?: string }> }).errors;
    if (Array.isArray(errors) && errors.length) return errors.map((e) => `${label(doc)}: ${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
    return [`${label(doc)}: ${(err as Error).message}`];
  }
}

/**
 * Unknown or misspelled fields, found by TypeScript's excess property check against the
 * kubernetes-models interfaces. One tsc run for all documents (a few seconds).
 */
export async function unknownFieldErrors(docs: Manifest[]): Promise<string[]> {
  const problems: string[] = [];
  const imports = new Map<string, string>(); // module -> import line
  const entries: Array<{ label: string; lines: string[] }> = [];
  docs.forEach((doc, i) => {
    const kind = KINDS[kindKey(doc)];
    if (!kind) {
      problems.push(`${label(doc)}: kind ${kindKey(doc)} has no model here (add it to KINDS)`);
      return;
    }
    const alias = `T_${kind.typeName}`;
    imports.set(kind.typeModule, `import type { ${kind.typeName} as ${alias} } from '${kind.typeModule}';`);
    entries.push({ label: label(doc), lines: `export const m${i}: ${alias} = ${JSON.stringify(doc, null, 2)};`.split('\n') });
  });
  if (entries.length === 0) return problems;
  const lines = [...imports.values()];
  const owners: string[] = lines.map(() => 'imports');
  for (const e of entries) {
    lines.push(...e.lines);
    owners.push(...e.lines.map(() => e.label));
  }
  // The file lives under the project so node_modules resolution finds kubernetes-models.
  await mkdir(path.join(ROOT, '.cache'), { recursive: true });
  const dir = await mkdtemp(path.join(ROOT, '.cache', 'manifest-typecheck-'));
  try {
    await writeFile(path.join(dir, 'check.mts'), lines.join('\n') + '\n');
    await writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [] },
        files: ['check.mts'],
      }),
    );
    let output = '';
    try {
      await execFileAsync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      output = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`;
      if (!output.trim()) throw err;
    }
    for (const line of output.split('\n')) {
      const m = /check\.mts\((\d+),\d+\): error (TS\d+): (.*)$/.exec(line);
      if (m) problems.push(`${owners[Number(m[1]) - 1] ?? 'manifest'}: ${m[2]} ${m[3]}`);
    }
    if (!problems.length && output.trim()) problems.push(`tsc failed: ${output.trim().slice(0, 2000)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return problems;
}
