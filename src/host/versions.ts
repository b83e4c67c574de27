/**
 * Versions and the limits the agent checks them against: one comparison, one name per limit.
 * Package versions (`1:8.0.0-1+deb12u2`) and plain ones (`8.9.0`) compare by their upstream part.
 */

/** Nova's minimums for vTPM (nova/virt/libvirt/driver.py). */
export const LIBVIRT_MIN = '8.0.0';
export const QEMU_MIN = '6.2.0';
/** Below this, libvirt erases vTPM state on a hard reboot or power-on (Nova bug 2118888). */
export const LIBVIRT_KEEP_TPM = '8.9.0';
/** Before this libvirt, a containerised libvirtd needs CAP_SYS_PTRACE to find swtpm's pid. */
export const LIBVIRT_NO_PTRACE_NEEDED = '8.1.0';
/** From this swtpm on, FIPS mode and strict crypto policies no longer put libtpms in failure mode. */
export const SWTPM_FIPS_WORKAROUND = '0.10.0';
/** swtpm_localca uses certtool before this swtpm release and openssl from it on. */
export const SWTPM_LOCALCA_OPENSSL = '0.11.0';

/** The leading `x.y.z` of a package version (`0.9.2-3.1+deb12u1` → `0.9.2`, `1:7.2+dfsg-7` → `7.2`). */
export function upstreamVersion(pkgVersion: string): string | null {
  const noEpoch = pkgVersion.replace(/^\d+:/, '');
  const m = /^(\d+(?:\.\d+)*)/.exec(noEpoch.trim());
  return m ? m[1]! : null;
}

/**
 * -1, 0 or 1 as `a` is older than, the same as or newer than `b`, numerically per dotted part
 * (`8.9.0` < `8.10.0`, `9.0` = `9.0.0`). The upstream part of a package version is compared.
 */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => (upstreamVersion(v) ?? '').split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
