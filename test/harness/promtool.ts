import { spawnSync } from 'node:child_process';
import { requireCommands } from './components.js';

/** `promtool check metrics` reads stdin and reports findings on stderr (exit 3 lint, 1 parse). */
export function promtoolCheckMetrics(exposition: string): { code: number | null; output: string } {
  requireCommands('promtool');
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}
