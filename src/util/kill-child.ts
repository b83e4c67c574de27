import type { ChildProcess } from 'node:child_process';

/**
 * Sends `signal` to a child only while it really runs. A ChildProcess whose spawn failed (ENOENT,
 * EACCES) keeps its handle with pid 0 until the error is delivered; `kill()` in that window becomes
 * kill(0, signal) — the agent's whole process group (seen in the test suite: SIGTERM to `timeout`
 * and everything under it). Returns whether a signal was sent.
 */
export function killChild(child: ChildProcess, signal: NodeJS.Signals): boolean {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return false;
  try {
    return child.kill(signal);
  } catch {
    return false; // already reaped
  }
}
