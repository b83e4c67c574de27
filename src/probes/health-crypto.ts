import { evaluateCrypto, readCryptoFacts } from '../health/checks/crypto.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe } from '../health/probe.js';
import type { HealthProbeData } from '../health/types.js';
import type { BinariesProbeData } from './health-binaries.js';

/** C9: FIPS mode and crypto policy against the swtpm version. */
export const healthCryptoProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.crypto,
  title: 'Health: FIPS and crypto policy',
  description: '/proc/sys/crypto/fips_enabled and the crypto-policies state versus the swtpm version',
  toggles: ['crypto'],
  after: [HEALTH_PROBE_NAMES.binaries],
  async run(ctx, results) {
    const swtpmVersion = results.get<BinariesProbeData>(HEALTH_PROBE_NAMES.binaries)?.data?.swtpmVersion ?? null;
    return { checks: [evaluateCrypto(await readCryptoFacts(ctx.hostPath, swtpmVersion))] };
  },
});
