#!/usr/bin/env node
// Writes <dir>/build-info.json (default dist/): version, git revision and build time, read by
// src/version.ts at run time. Plain Node (no tsx) so the release build can run it anywhere.
//   node scripts/build-info.mjs [dir]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = path.resolve(root, process.argv[2] ?? 'dist');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
let revision = process.env.VTPM_AGENT_REVISION || 'unknown';
if (revision === 'unknown') {
  try {
    revision = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // A tarball without .git: the revision stays unknown (or comes from VTPM_AGENT_REVISION).
  }
}
// SOURCE_DATE_EPOCH keeps reproducible builds reproducible.
const epoch = Number(process.env.SOURCE_DATE_EPOCH);
const buildDate = new Date(Number.isFinite(epoch) && epoch > 0 ? epoch * 1000 : Date.now()).toISOString();
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'build-info.json'), `${JSON.stringify({ version, revision, buildDate }, null, 2)}\n`);
