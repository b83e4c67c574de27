/** Dotted version comparison (`9.0.0` vs `8.9.0`); trailing non-numeric parts are ignored. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+~-]/).map((x) => Number.parseInt(x, 10));
  const pb = b.split(/[.+~-]/).map((x) => Number.parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.isFinite(pa[i]) ? pa[i]! : 0;
    const y = Number.isFinite(pb[i]) ? pb[i]! : 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The leading `x.y.z` of a package version (`0.9.2-3.1+deb12u1` → `0.9.2`, `1:7.2+dfsg-7` → `7.2`). */
export function upstreamVersion(pkgVersion: string): string | null {
  const noEpoch = pkgVersion.replace(/^\d+:/, '');
  const m = /^(\d+(?:\.\d+)*)/.exec(noEpoch.trim());
  return m ? m[1]! : null;
}
