import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What `vtpm-agent version` prints and `vtpm_agent_build_info` carries. */
export interface BuildInfo {
  version: string;
  /** The git commit the build was made from; "unknown" outside a build or a clone. */
  revision: string;
  /** ISO time of the build, when a build wrote it. */
  buildDate: string | null;
  nodeVersion: string;
  platform: string;
}

/** Written beside the compiled entry by scripts/build-info.mjs (`npm run build`, the release). */
export const BUILD_INFO_FILE = 'build-info.json';

function readJson(url: URL): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** In a git clone run from source: HEAD, asked once, bounded; else "unknown". */
function gitRevision(): string {
  try {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    return execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

/**
 * The build's own record first (dist/build-info.json), then package.json for the version and git
 * for the revision; read on first use, not at start-up.
 */
export function readBuildInfo(built = readJson(new URL(`./${BUILD_INFO_FILE}`, import.meta.url))): BuildInfo {
  const pkg = built ? null : readJson(new URL('../package.json', import.meta.url));
  return {
    version: str(built?.version) ?? str(pkg?.version) ?? 'unknown',
    revision: str(built?.revision) ?? gitRevision(),
    buildDate: str(built?.buildDate),
    nodeVersion: process.version,
    platform: `${process.platform}/${process.arch}`,
  };
}

let cached: BuildInfo | undefined;
export function buildInfo(): BuildInfo {
  cached ??= readBuildInfo();
  return cached;
}

/** The `--version` text, in the shape Prometheus exporters print it. */
export function versionText(info: BuildInfo = buildInfo()): string {
  return [
    `vtpm-agent, version ${info.version} (revision: ${info.revision})`,
    ...(info.buildDate ? [`  build date:   ${info.buildDate}`] : []),
    `  node version: ${info.nodeVersion}`,
    `  platform:     ${info.platform}`,
    '',
  ].join('\n');
}
