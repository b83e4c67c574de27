/** Starting the agent in-process or as a child, for integration tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Agent } from '../../src/agent.js';
import { loadConfig } from '../../src/config/load.js';
import type { AgentExtension } from '../../src/extension-api.js';
import type { Probe } from '../../src/probes/types.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

export interface RunningAgent {
  agent: Agent;
  url: string;
  stop(): Promise<void>;
}

/** An in-process agent on a free loopback port, with the given config overrides and probes. */
export async function startAgent(overrides: string[], options: { probes?: Probe[]; extensions?: AgentExtension[]; env?: NodeJS.ProcessEnv } = {}): Promise<RunningAgent> {
  const port = await freePort();
  const { config } = await loadConfig({ path: '/dev/null', env: {}, overrides: [`listen.host=127.0.0.1`, `listen.port=${port}`, ...overrides] });
  const agent = new Agent({ config, log: pino({ level: 'silent' }), probes: options.probes, extensions: options.extensions ?? [], env: options.env });
  await agent.start();
  return { agent, url: `http://127.0.0.1:${port}`, stop: () => agent.stop() };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source as a child process (node + tsx), with a hard timeout. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
      cwd: repoRoot,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vtpm-agent ${args.join(' ')} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `stdout` may be a connected socket, as systemd hands a service its journal stream. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = process.env, stdout: 'pipe' | Socket = 'pipe'): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], { cwd: repoRoot, env, stdio: ['ignore', stdout, 'pipe'] });
}
