import path from 'node:path';

/**
 * Resolves host paths under a configurable host root, so the same agent reads `/var/lib/libvirt`
 * on a host and `/host/var/lib/libvirt` in a pod that mounts the host at `/host`.
 */
export type HostPathResolver = (absolutePath: string) => string;

export function hostPathResolver(hostRoot: string): HostPathResolver {
  const root = path.resolve(hostRoot);
  if (root === '/') return (p) => path.resolve(p);
  return (p) => path.join(root, path.resolve('/', p));
}
