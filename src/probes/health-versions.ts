import { evaluateVersions, readVersions } from '../health/checks/versions.js';
import type { VersionsProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe, innerTimeout } from '../health/probe.js';
import { libvirtViewResolver } from '../util/container-paths.js';
import { which } from '../util/which.js';

/** C13: libvirt, QEMU, swtpm, libtpms and OpenSSL versions, exported as an `_info` metric. */
export const healthVersionsProbe = healthProbe<VersionsProbeData>({
  name: HEALTH_PROBE_NAMES.versions,
  title: 'Health: component versions',
  description: 'libvirt daemon, QEMU, and the swtpm, libtpms and OpenSSL that libvirtd runs (its package database when it is in another container)',
  toggles: ['versions'],
  async run(ctx) {
    const { versions, source } = await readVersions({
      virshPath: ctx.config.libvirt.virshPath,
      uri: ctx.config.libvirt.uri,
      swtpmPath: await which(ctx.config.swtpm.swtpmPath, ctx.env.PATH),
      env: ctx.env,
      timeoutMs: innerTimeout(ctx),
      signal: ctx.signal,
      libvirtView: await libvirtViewResolver(ctx.hostPath),
    });
    return { checks: [evaluateVersions(versions, source)], versions };
  },
});
