import { Gauge, type Registry } from 'prom-client';
import { collectInventory, inventoryOptions } from '../guests/inventory.js';
import { inventorySection } from '../guests/render.js';
import { atRiskReasons, GUEST_INVENTORY, type GuestInventory } from '../guests/types.js';
import { METRIC_PREFIX } from '../metric-prefix.js';
import type { Probe, ProbeContext } from './types.js';
import { METRIC_NAMES } from '../metric-names.js';

/**
 * Every libvirt domain with an emulated TPM, with its Nova metadata, secret mode and the guests
 * that would not come back after a host reboot. Read by the Barbican and host-health helpers via
 * `state.get(GUEST_INVENTORY)`.
 */
export const guestInventoryProbe: Probe<GuestInventory> = {
  name: GUEST_INVENTORY,
  description: 'vTPM guests in libvirt (TPM, Nova metadata, secret mode) and those at risk of not restarting after a host reboot',
  schedule: (config) => config.guests.inventorySchedule,
  enabled: (config) => config.guests.inventoryEnabled,
  async run(ctx: ProbeContext) {
    const timeoutMs = Math.max(1000, Math.min(ctx.config.libvirt.timeoutSeconds * 1000, ctx.remainingMs()));
    return collectInventory(inventoryOptions(ctx.config, ctx.hostPath, ctx.env, timeoutMs, ctx.signal));
  },
  registerMetrics(registry: Registry, results) {
    const latest = () => results.get(GUEST_INVENTORY)?.data;
    new Gauge({
      name: `${METRIC_PREFIX}guests`,
      help: 'vTPM guests defined in libvirt, by domain state, TPM version and model, and secret mode',
      labelNames: ['state', 'tpm_version', 'tpm_model', 'secret_mode'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const g of latest()?.guests ?? []) {
          this.inc({ state: g.state, tpm_version: g.tpmVersion ?? 'unknown', tpm_model: g.tpmModel ?? 'unknown', secret_mode: g.secretMode });
        }
      },
    });
    new Gauge({
      name: METRIC_NAMES.guestsAtRisk,
      help: 'Running vTPM guests that would not restart by themselves after a host reboot, by reason (a guest counts once per reason)',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const inv = latest();
        if (!inv) return;
        for (const reason of atRiskReasons) this.set({ reason }, 0);
        for (const r of inv.atRisk) for (const reason of r.reasons) this.inc({ reason });
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_inventory_domain_errors`,
      help: 'libvirt domains whose XML or state could not be read in the latest inventory',
      registers: [registry],
      collect() {
        this.reset();
        const inv = latest();
        if (inv) this.set(inv.errors.length);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}nova_resume_guests_state_on_host_boot`,
      help: "nova.conf [DEFAULT] resume_guests_state_on_host_boot (1 true, 0 false); absent when nova.conf is not readable",
      registers: [registry],
      collect() {
        this.reset();
        const v = latest()?.resumeGuestsStateOnHostBoot;
        if (v !== undefined && v !== null) this.set(v ? 1 : 0);
      },
    });
  },
  report(result) {
    return inventorySection(result?.data, result && !result.ok ? result.error : undefined);
  },
};
