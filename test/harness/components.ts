/**
 * Tests need real components. A missing one is a failure, not a skip: the test command installs
 * and starts everything it needs, so absence means the harness is broken.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws (so tap reports a failure) when a required command is missing. */
export function requireCommands(...names: string[]): void {
  const missing = names.filter((n) => !hasCommand(n));
  if (missing.length) {
    throw new Error(`required component(s) missing: ${missing.join(', ')} — run \`npm test\` (scripts/test-all.sh installs them)`);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited (at once if it had). */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
