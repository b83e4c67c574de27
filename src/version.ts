import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCommand, SMALL_OUTPUT_BYTES } from './util/exec.js';

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
async function gitRevision(): Promise<string> {
  try {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const result = await runCommand('git', ['-C', dir, 'rev-parse', 'HEAD'], { timeoutMs: 2000, maxOutputBytes: SMALL_OUTPUT_BYTES });
    return (result.exitCode === 0 && result.stdout.trim()) || 'unknown';
  } catch {
    return 'unknown'; // no git, or it hung
  }
}

const buildRecord = (): Record<string, unknown> | null => readJson(new URL(`./${BUILD_INFO_FILE}`, import.meta.url));

function str(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

/**
 * The build's own record first (dist/build-info.json), then package.json for the version and git
 * for the revision; read on first use, not at start-up.
 */
export async function readBuildInfo(built = buildRecord()): Promise<BuildInfo> {
  return {
    version: versionOf(built),
    revision: str(built?.revision) ?? (await gitRevision()),
    buildDate: str(built?.buildDate),
    nodeVersion: process.version,
    platform: `${process.platform}/${process.arch}`,
  };
}

function versionOf(built: Record<string, unknown> | null): string {
  const pkg = built ? null : readJson(new URL('../package.json', import.meta.url));
  return str(built?.version) ?? str(pkg?.version) ?? 'unknown';
}

let cached: Promise<BuildInfo> | undefined;
/** Asynchronous since a source checkout asks git for the revision (through runCommand). */
export function buildInfo(): Promise<BuildInfo> {
  cached ??= readBuildInfo();
  return cached;
}

let cachedVersion: string | undefined;
/** The version alone, read synchronously (no git), for callers that need nothing else. */
export function agentVersion(): string {
  cachedVersion ??= versionOf(buildRecord());
  return cachedVersion;
}

/** The `--version` text, in the shape Prometheus exporters print it. */
export function versionText(info: BuildInfo): string {
  return [
    `vtpm-agent, version ${info.version} (revision: ${info.revision})`,
    ...(info.buildDate ? [`  build date:   ${info.buildDate}`] : []),
    `  node version: ${info.nodeVersion}`,
    `  platform:     ${info.platform}`,
    '',
  ].join('\n');
}
