import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metric-prefix.js';
import type { CheckStatus, HealthProbeData } from './types.js';
import type { ProbeKey, ProbeResults } from '../results.js';
import { healthLogsProbe } from './checks/logs.js';
import { healthOrphansProbe } from './checks/orphans.js';
import { healthMacProbe } from './checks/mac.js';
import { healthVersionsProbe } from './checks/versions.js';
import { healthGuestStateProbe } from './checks/guest-state.js';

const STATUSES: readonly CheckStatus[] = ['pass', 'unknown', 'warn', 'fail', 'not-applicable'];
const p = (name: string) => `${METRIC_PREFIX}health_${name}`;

function latest<T>(results: ProbeResults, probe: ProbeKey<T>): T | undefined {
  const r = results.get(probe);
  return r?.ok ? r.data : undefined;
}

/**
 * All health metrics, registered once per registry whichever health probe asks first (the
 * registry, owned by the agent, is what remembers it: no state in this module). Every
 * `collect()` reads only the latest probe results in memory. Label values are bounded: check ids
 * and reason codes come from fixed catalogues; domain/uuid labels exist only for vTPM guests
 * currently defined (a guest's series disappear when it is undefined).
 */
export function registerHealthMetrics(registry: Registry, results: ProbeResults, probes: readonly ProbeKey<HealthProbeData>[]): void {
  if (registry.getSingleMetric(p('check_ok'))) return;
  const allChecks = () => probes.flatMap((name) => latest(results, name)?.checks ?? []);

  new Gauge({
    name: p('check_ok'),
    help: 'Host health check outcome: 1 unless the check fails (0); a check that could not look (status unknown, see vtpm_health_check_status) is not a failure here, and never a pass there.',
    labelNames: ['check'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of allChecks()) this.set({ check: c.check }, c.status === 'fail' ? 0 : 1);
    },
  });
  new Gauge({
    name: p('check_status'),
    help: 'Host health check status as a state set: 1 for the current status (pass, warn, fail, not-applicable), 0 for the others.',
    labelNames: ['check', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of allChecks()) for (const s of STATUSES) this.set({ check: c.check, status: s }, c.status === s ? 1 : 0);
    },
  });
  new Gauge({
    name: p('findings'),
    help: 'Active non-passing findings per check and stable reason code.',
    labelNames: ['check', 'reason', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of allChecks()) {
        for (const f of c.findings) {
          if (f.status === 'pass') continue;
          this.inc({ check: c.check, reason: f.reason, status: f.status });
        }
      }
    },
  });
  new Counter({
    name: p('tpm_resets_total'),
    help: 'TPM resets (the TPM of a guest that already had one was re-created) per vTPM guest, while the guest is defined.',
    labelNames: ['domain', 'uuid'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of latest(results, healthLogsProbe.name)?.guests ?? []) this.inc({ domain: g.name, uuid: g.uuid }, g.resets);
    },
  });
  new Gauge({
    name: p('tpm_last_reset_timestamp_seconds'),
    help: 'When the agent last detected a TPM reset of the guest (Unix seconds).',
    labelNames: ['domain', 'uuid'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of latest(results, healthLogsProbe.name)?.guests ?? []) {
        if (g.lastResetAt !== null) this.set({ domain: g.name, uuid: g.uuid }, g.lastResetAt / 1000);
      }
    },
  });
  new Counter({
    name: p('log_events_total'),
    help: 'Failure and warning lines read from a vTPM guest\'s swtpm and QEMU logs, by kind (docs/failure-modes §0).',
    labelNames: ['domain', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of latest(results, healthLogsProbe.name)?.guests ?? []) {
        for (const [kind, n] of Object.entries(g.events)) if (n) this.inc({ domain: g.name, kind }, n);
      }
    },
  });
  new Counter({
    name: p('mac_denials_total'),
    help: 'AppArmor or SELinux denials involving swtpm read from the kernel/audit logs (only where that MAC is active).',
    labelNames: ['mac'],
    registers: [registry],
    collect() {
      this.reset();
      const d = latest(results, healthMacProbe.name);
      if (!d) return;
      if (d.active.apparmor) this.inc({ mac: 'apparmor' }, d.totals.apparmor);
      if (d.active.selinux) this.inc({ mac: 'selinux' }, d.totals.selinux);
    },
  });
  new Gauge({
    name: p('orphans'),
    help: 'swtpm leftovers on libvirt TPM state: processes and lock holders of guests not running, stale pid and socket files.',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const c = latest(results, healthOrphansProbe.name)?.counts;
      if (!c) return;
      this.set({ kind: 'process' }, c.processes);
      this.set({ kind: 'lock_holder' }, c.lockHolders);
      this.set({ kind: 'stale_pidfile' }, c.stalePidfiles);
      this.set({ kind: 'stale_socket' }, c.staleSockets);
    },
  });
  new Gauge({
    name: p('guest_state_ok'),
    help: 'Per vTPM guest: 1 when its TPM state is present, non-empty and usable by the swtpm principal.',
    labelNames: ['domain', 'uuid'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of latest(results, healthGuestStateProbe.name)?.guests ?? []) this.set({ domain: g.name, uuid: g.uuid }, g.status === 'fail' ? 0 : 1);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}component_version_info`,
    help: 'Versions of libvirt, QEMU, swtpm, libtpms and OpenSSL on this host (value is always 1), to compare hosts of a fleet.',
    labelNames: ['component', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      const v = latest(results, healthVersionsProbe.name)?.versions;
      if (!v) return;
      for (const [component, version] of Object.entries(v)) if (version) this.set({ component, version }, 1);
    },
  });
}
