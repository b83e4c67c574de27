/**
 * Shared by the generators of committed files (PrometheusRule, Grafana dashboard): write the
 * files, or with `--check` exit 1 when any committed copy differs from what the code generates.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GeneratedFile {
  path: string;
  text: string;
}

export async function writeOrCheck(files: GeneratedFile[], argv: string[], regenerate: string): Promise<number> {
  const check = argv.includes('--check');
  let stale = 0;
  for (const file of files) {
    const rel = path.relative(ROOT, file.path);
    if (check) {
      const current = await readFile(file.path, 'utf8').catch(() => ''); // missing counts as out of date
      if (current !== file.text) {
        process.stderr.write(`${rel} is out of date: run ${regenerate}\n`);
        stale++;
      } else {
        process.stdout.write(`${rel} is up to date\n`);
      }
    } else {
      await mkdir(path.dirname(file.path), { recursive: true });
      await writeFile(file.path, file.text);
      process.stdout.write(`wrote ${rel}\n`);
    }
  }
  return stale === 0 ? 0 : 1;
}

/** Runs `main` when the module is the process entry point, with a one-line error on failure. */
export function runIfMain(importMetaUrl: string, name: string, main: (argv: string[]) => Promise<number>): void {
  if (!process.argv[1] || importMetaUrl !== pathToFileURL(path.resolve(process.argv[1])).href) return;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
