/** The real libvirtd that scripts/test-all.sh starts; tests fail (not skip) when it is absent. */
import { execFileSync } from 'node:child_process';
import { requireCommands } from './components.js';

export const LIBVIRT_URI = 'qemu:///system';

export function requireLibvirt(): void {
  requireCommands('virsh', 'libvirtd', 'virtlogd');
  try {
    execFileSync('virsh', ['-r', '-c', LIBVIRT_URI, 'version'], { stdio: 'pipe', timeout: 60_000 });
  } catch (err) {
    throw new Error(`libvirtd is not running or not reachable at ${LIBVIRT_URI} (start it with: virtlogd -d && libvirtd -d): ${(err as Error).message}`);
  }
}
