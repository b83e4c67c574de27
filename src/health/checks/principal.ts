import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { type Accounts, resolveGroup, resolveUser } from '../../host/accounts.js';
import { SWTPM_PRINCIPAL, type PrincipalResolution } from '../../host/swtpm-principal.js';
import { NOVA_SETTINGS, type NovaVtpmSettings } from '../../host/nova-conf.js';
import { healthProbe } from '../probe.js';

/**
 * C3: libvirt's effective swtpm principal (qemu.conf, default tss, silent root fallback) against
 * nova.conf's [libvirt] swtpm_user/swtpm_group, by name and by UID/GID. Nova chowns vTPM files to
 * its own principal on migration and resize, libvirt to its own on start: they must agree.
 */
export function evaluatePrincipal(res: PrincipalResolution, accounts: Accounts, nova: NovaVtpmSettings | null, qemuConfPath: string): CheckResult {
  const findings: Finding[] = [];
  if (res.qemuConfError) {
    findings.push(finding('VTPM_HEALTH_QEMU_CONF_UNREADABLE', 'warn', `${qemuConfPath} cannot be read (${res.qemuConfError}); libvirt's defaults are assumed for swtpm_user/swtpm_group.`, { subject: qemuConfPath }));
  }
  if (res.unknownUser !== null) {
    findings.push(finding('VTPM_HEALTH_PRINCIPAL_UNKNOWN', 'fail', `qemu.conf sets swtpm_user = "${res.unknownUser}", but no such user exists on this host.`, { subject: qemuConfPath }));
  }
  if (res.unknownGroup !== null) {
    findings.push(finding('VTPM_HEALTH_PRINCIPAL_UNKNOWN', 'fail', `qemu.conf sets swtpm_group = "${res.unknownGroup}", but no such group exists on this host.`, { subject: qemuConfPath }));
  }
  const p = res.principal;
  if (p && (p.userSource === 'root-fallback' || p.groupSource === 'root-fallback')) {
    findings.push(
      finding('VTPM_HEALTH_PRINCIPAL_ROOT_FALLBACK', 'warn', `qemu.conf sets no swtpm_user/swtpm_group and there is no "tss" account, so libvirt runs swtpm as ${p.user}:${p.group}.`, {
        subject: qemuConfPath,
      }),
    );
  }
  if (nova) {
    // A latent mismatch only bites once Nova manages vTPM guests.
    const severity = nova.swtpmEnabled ? 'fail' : 'warn';
    for (const u of nova.unreadable) {
      findings.push(finding('VTPM_HEALTH_NOVA_CONF_UNREADABLE', 'warn', `${u.path} exists but cannot be read (${u.error}); Nova's swtpm principal is not known.`, { subject: u.path }));
    }
    const novaUser = resolveUser(accounts, nova.swtpmUser);
    const novaGroup = resolveGroup(accounts, nova.swtpmGroup);
    if (!novaUser) {
      findings.push(finding('VTPM_HEALTH_NOVA_PRINCIPAL_UNKNOWN', severity, `nova.conf [libvirt] swtpm_user = "${nova.swtpmUser}" does not exist on this host; nova-compute refuses to start with vTPM enabled.`));
    }
    if (!novaGroup) {
      findings.push(finding('VTPM_HEALTH_NOVA_PRINCIPAL_UNKNOWN', severity, `nova.conf [libvirt] swtpm_group = "${nova.swtpmGroup}" does not exist on this host; nova-compute refuses to start with vTPM enabled.`));
    }
    if (p && novaUser && novaUser.uid !== p.uid) {
      findings.push(
        finding('VTPM_HEALTH_PRINCIPAL_MISMATCH', severity, `libvirt runs swtpm as user ${p.user} (uid ${p.uid}) but nova.conf [libvirt] swtpm_user is ${nova.swtpmUser} (uid ${novaUser.uid}): vTPM files will be chowned back and forth and swtpm loses access after a migration or resize.`, {
          details: { libvirt: { user: p.user, uid: p.uid }, nova: { user: nova.swtpmUser, uid: novaUser.uid } },
        }),
      );
    }
    if (p && novaGroup && novaGroup.gid !== p.gid) {
      findings.push(
        finding('VTPM_HEALTH_PRINCIPAL_MISMATCH', severity, `libvirt runs swtpm with group ${p.group} (gid ${p.gid}) but nova.conf [libvirt] swtpm_group is ${nova.swtpmGroup} (gid ${novaGroup.gid}).`, {
          details: { libvirt: { group: p.group, gid: p.gid }, nova: { group: nova.swtpmGroup, gid: novaGroup.gid } },
        }),
      );
    }
  }
  return checkResult('principal', findings, {
    libvirt: p ? { user: p.user, group: p.group, uid: p.uid, gid: p.gid, userSource: p.userSource, groupSource: p.groupSource } : null,
    nova: nova ? { user: nova.swtpmUser, group: nova.swtpmGroup, swtpmEnabled: nova.swtpmEnabled, files: nova.files } : null,
  });
}

/** C3: libvirt's effective swtpm principal against Nova's. */
export const healthPrincipalProbe = healthProbe<HealthProbeData>({
  name: 'health-principal',
  title: 'Health: swtpm principal',
  description: 'qemu.conf swtpm_user/swtpm_group (default tss, root fallback) versus nova.conf [libvirt] swtpm_user/swtpm_group',
  toggles: ['principal'],
  async run(ctx) {
    const h = ctx.config.health;
    const res = await ctx.facts.get(SWTPM_PRINCIPAL);
    const nova = await ctx.facts.get(NOVA_SETTINGS);
    return { checks: [evaluatePrincipal(res, res.accounts, nova, h.qemuConf)] };
  },
});
