import { evaluateVersions, readVersions } from '../health/checks/versions.js';
import type { VersionsProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe, innerTimeout } from '../health/probe.js';
import { which } from '../util/which.js';

/** C13: libvirt, QEMU, swtpm, libtpms and OpenSSL versions, exported as an `_info` metric. */
export const healthVersionsProbe = healthProbe<VersionsProbeData>({
  name: HEALTH_PROBE_NAMES.versions,
  title: 'Health: component versions',
  description: 'libvirt daemon, QEMU, swtpm, libtpms (package) and OpenSSL versions',
  toggles: ['versions'],
  async run(ctx) {
    const versions = await readVersions({
      virshPath: ctx.config.libvirt.virshPath,
      uri: ctx.config.libvirt.uri,
      swtpmPath: await which(ctx.config.swtpm.swtpmPath, ctx.env.PATH),
      env: ctx.env,
      timeoutMs: innerTimeout(ctx),
      signal: ctx.signal,
    });
    return { checks: [evaluateVersions(versions)], versions };
  },
});
