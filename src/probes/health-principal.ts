import { evaluatePrincipal } from '../health/checks/principal.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { loadNovaSettings } from '../health/nova-conf.js';
import { loadPrincipal } from '../host/swtpm-principal.js';
import { healthProbe } from '../health/probe.js';
import type { HealthProbeData } from '../health/types.js';
import { libvirtViewResolver } from '../util/container-paths.js';

/** C3: libvirt's effective swtpm principal against Nova's. */
export const healthPrincipalProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.principal,
  title: 'Health: swtpm principal',
  description: 'qemu.conf swtpm_user/swtpm_group (default tss, root fallback) versus nova.conf [libvirt] swtpm_user/swtpm_group',
  toggles: ['principal'],
  async run(ctx) {
    const h = ctx.config.health;
    const res = await loadPrincipal(h, await libvirtViewResolver(ctx.hostPath));
    const nova = await loadNovaSettings(h, ctx.hostPath);
    return { checks: [evaluatePrincipal(res, res.accounts, nova, h.qemuConf)] };
  },
});
