/** The real libvirtd that scripts/test-all.sh starts; tests fail (not skip) when it is absent. */
import { execFileSync } from 'node:child_process';
import { requireCommands } from './components.js';

export const LIBVIRT_URI = 'qemu:///system';

/**
 * Fails unless libvirtd answers. Waits up to a minute first: a test before this one may have
 * restarted libvirtd (the reboot scenario does) and it takes a moment to come back.
 */
export function requireLibvirt(waitMs = 60_000): void {
  requireCommands('virsh', 'libvirtd', 'virtlogd');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      execFileSync('virsh', ['-r', '-c', LIBVIRT_URI, 'version'], { stdio: 'pipe', timeout: 60_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`libvirtd is not running or not reachable at ${LIBVIRT_URI} (start it with: virtlogd -d && libvirtd -d): ${(err as Error).message}`);
      }
      execFileSync('sleep', ['1']);
    }
  }
}
