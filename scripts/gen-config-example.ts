/**
 * Writes config.example.yaml from the configuration schema (a unit test checks it is current).
 * Usage: npx tsx scripts/gen-config-example.ts [--check]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigExample } from '../src/config/example.js';

const target = new URL('../config.example.yaml', import.meta.url);
const text = renderConfigExample();
if (process.argv.includes('--check')) {
  const current = readFileSync(target, 'utf8');
  if (current !== text) {
    process.stderr.write('config.example.yaml is out of date: run npx tsx scripts/gen-config-example.ts\n');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}
