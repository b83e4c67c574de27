import { checkLocalCa } from '../health/checks/localca.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { loadPrincipal } from '../host/swtpm-principal.js';
import { healthProbe } from '../health/probe.js';
import { checkResult, type HealthProbeData } from '../health/types.js';
import { libvirtViewResolver } from '../util/container-paths.js';

/** C4: the swtpm local CA is usable by the swtpm principal (else every new vTPM guest fails). */
export const healthLocalCaProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.localca,
  title: 'Health: swtpm local CA',
  description: 'swtpm_setup.conf → swtpm-localca.conf statedir exists and every file is usable by the swtpm principal',
  toggles: ['localca'],
  async run(ctx) {
    const h = ctx.config.health;
    const res = await loadPrincipal(h, await libvirtViewResolver(ctx.hostPath));
    if (!res.principal) {
      return { checks: [checkResult('localca', [], { note: 'the swtpm principal is unknown (see C3)' }, 'not-applicable')] };
    }
    return { checks: [await checkLocalCa({ swtpmSetupConf: h.swtpmSetupConf, principal: res.principal, accounts: res.accounts, hostPath: await libvirtViewResolver(ctx.hostPath) })] };
  },
});
