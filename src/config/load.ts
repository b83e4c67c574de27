import { readFile, stat } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatIssues } from '../errors.js';

export { ConfigError, formatIssues };
import { permissionWarning } from '../openstack/credentials.js';
import { canonicalToggles } from '../health/config.js';
import { configSchema, type AgentConfig } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/vtpm-agent/config.yaml';
/** `VTPM_AGENT__LISTEN__PORT=9000` sets `listen.port`; double underscores separate levels. */
export const ENV_PREFIX = 'VTPM_AGENT__';

export interface LoadOptions {
  /** Explicit --config path: it must exist. The default path is optional. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** `key.path=value` overrides from the command line; values are YAML scalars. */
  overrides?: string[];
}

export interface LoadedConfig {
  config: AgentConfig;
  source: string | null;
  /** Problems worth a log line that do not stop the agent (e.g. a file with secrets readable by others). */
  warnings: string[];
}


function camelFromSnake(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function scalar(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}


/** Loads file, then environment, then command-line overrides; validates once, reporting every problem. */
export async function loadConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const path = options.path ?? env.VTPM_AGENT_CONFIG ?? DEFAULT_CONFIG_PATH;
  const explicit = options.path !== undefined || env.VTPM_AGENT_CONFIG !== undefined;
  let raw: Record<string, unknown> = {};
  let source: string | null = null;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
    source = path;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (explicit || code !== 'ENOENT') {
      throw new ConfigError(`cannot read configuration file ${path}`, [`${path}: ${(err as Error).message}`]);
    }
  }
  if (text !== undefined) {
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new ConfigError(`configuration file ${path} is not valid YAML`, [(err as Error).message.split('\n')[0] ?? 'parse error']);
    }
    if (parsed === null || parsed === undefined) parsed = {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`configuration file ${path} is invalid`, ['(root): must be a mapping of keys to values']);
    }
    raw = parsed as Record<string, unknown>;
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).split('__').map(camelFromSnake);
    setPath(raw, keys, scalar(value));
  }
  const badOverrides: string[] = [];
  for (const override of options.overrides ?? []) {
    const eq = override.indexOf('=');
    if (eq <= 0) {
      badOverrides.push(`--set ${override}: expected key.path=value`);
      continue;
    }
    setPath(raw, override.slice(0, eq).split('.'), scalar(override.slice(eq + 1)));
  }
  if (badOverrides.length) throw new ConfigError('invalid command-line overrides', badOverrides);
  canonicalToggles(raw);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`invalid configuration${source ? ` in ${source}` : ''}`, formatIssues(result.error));
  }
  const warnings: string[] = [];
  const auth = (raw.openstack as { auth?: Record<string, unknown> } | undefined)?.auth;
  if (source && auth && (auth.password || auth.applicationCredentialSecret)) {
    const warning = permissionWarning(source, (await stat(source)).mode);
    if (warning) warnings.push(warning);
  }
  return { config: result.data, source, warnings };
}

/** The defaults, for tests and for `check` when no file exists. */
export function defaultConfig(): AgentConfig {
  return configSchema.parse({});
}
