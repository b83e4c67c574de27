import { readText } from '../../host/fsinfo.js';
import { healthBinariesProbe } from './binaries.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { compareVersions, SWTPM_FIPS_WORKAROUND } from '../../host/versions.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { healthProbe } from '../probe.js';

export interface CryptoFacts {
  /** `/proc/sys/crypto/fips_enabled`: null when the kernel has no FIPS support at all. */
  fipsEnabled: boolean | null;
  /** RHEL-family crypto-policies state (`DEFAULT`, `FIPS`, `FUTURE`, `DEFAULT:SHA1`…), null elsewhere. */
  cryptoPolicy: string | null;
  swtpmVersion: string | null;
}

export async function readCryptoFacts(hostPath: HostPathResolver, swtpmVersion: string | null): Promise<CryptoFacts> {
  const fips = await readText(hostPath('/proc/sys/crypto/fips_enabled'));
  const policy = await readText(hostPath('/etc/crypto-policies/state/current'));
  return {
    fipsEnabled: fips.text === null ? null : fips.text.trim() === '1',
    cryptoPolicy: policy.text === null ? null : policy.text.trim() || null,
    swtpmVersion,
  };
}

/**
 * C9: FIPS mode and strict crypto policies block algorithms the TPM spec needs (SHA-1
 * signatures, Camellia, TDES); libtpms then enters failure mode ("TestSymmetricAlgorithm").
 * swtpm >= 0.10 works around both; older ones fail silently.
 */
export function evaluateCrypto(f: CryptoFacts): CheckResult {
  const findings: Finding[] = [];
  const old = f.swtpmVersion === null || compareVersions(f.swtpmVersion, SWTPM_FIPS_WORKAROUND) < 0;
  if (f.fipsEnabled) {
    findings.push(
      finding('VTPM_HEALTH_FIPS_ENABLED', old ? 'fail' : 'warn', `The kernel is in FIPS mode and swtpm is ${f.swtpmVersion ?? 'of unknown version'}${old ? ` (< ${SWTPM_FIPS_WORKAROUND}: libtpms enters failure mode, TPM 2.0 guests silently lose their TPM)` : ''}.`, {
        details: { swtpmVersion: f.swtpmVersion },
      }),
    );
  }
  const base = f.cryptoPolicy?.split(':')[0]?.toUpperCase() ?? null;
  if (base && ['FIPS', 'FUTURE'].includes(base) && !/SHA1/i.test(f.cryptoPolicy ?? '')) {
    findings.push(finding('VTPM_HEALTH_CRYPTO_POLICY_STRICT', old ? 'fail' : 'warn', `The system crypto policy is ${f.cryptoPolicy}, which disables SHA-1 signatures that TPM 2.0 needs.`, { details: { policy: f.cryptoPolicy } }));
  }
  return checkResult('crypto', findings, { ...f });
}

/** C9: FIPS mode and crypto policy against the swtpm version. */
export const healthCryptoProbe = healthProbe<HealthProbeData>({
  name: 'health-crypto',
  title: 'Health: FIPS and crypto policy',
  description: '/proc/sys/crypto/fips_enabled and the crypto-policies state versus the swtpm version',
  toggles: ['crypto'],
  after: [healthBinariesProbe.name],
  async run(ctx, results) {
    const swtpmVersion = results.get(healthBinariesProbe.name)?.data?.swtpmVersion ?? null;
    return { checks: [evaluateCrypto(await readCryptoFacts(ctx.hostPath, swtpmVersion))] };
  },
});
