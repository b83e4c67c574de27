/** Names of the health probes (src/probes/health-*.ts); metrics and the CLI read their results by these. */
export const HEALTH_PROBE_NAMES = {
  binaries: 'health-binaries',
  principal: 'health-principal',
  localca: 'health-localca',
  guestState: 'health-guest-state',
  orphans: 'health-orphans',
  mac: 'health-mac',
  crypto: 'health-crypto',
  logs: 'health-logs',
  nova: 'health-nova',
  versions: 'health-versions',
  container: 'health-container',
} as const;

export const ALL_HEALTH_PROBES: readonly string[] = Object.values(HEALTH_PROBE_NAMES);
