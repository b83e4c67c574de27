/**
 * vTPM guests across host reboots.
 *
 * - Inventory: the probe `guest-inventory` (src/probes/guest-inventory.ts) puts a
 *   {@link GuestInventory} into the HostState; read it with
 *   `state.get<GuestInventory>('guest-inventory')?.data` (guests with TPM, Nova metadata, secret
 *   mode, whether their libvirt secret exists, and the guests at risk of not restarting).
 * - Restart watcher: the extension `guest-restart-watcher` (./watcher.ts) snapshots running vTPM
 *   guests to `<stateDir>/guests/snapshot.json`, detects a new boot by boot id and follows every
 *   guest that ran before; the watch lives in `<stateDir>/guests/watch.json`.
 * - Failure reasons from other capabilities: implement {@link RestartReasonSource} and call
 *   {@link registerRestartReasonSource} (e.g. the Barbican preflight, when it knows that a guest's
 *   secret is not readable by Nova, answers `{ reason: 'barbican_access', detail }` for that
 *   instance UUID). The watcher asks the sources first whenever it classifies a failed restart,
 *   and again on every resync while the guest is down, so a reason that becomes known later
 *   still reaches the `vtpm_guest_restart_failed` series.
 */
export type { AtRiskGuest, AtRiskReason, GuestInventory, RestartFailureReason, SecretMode, VtpmGuest } from './types.js';
export { registerRestartReasonSource, type RestartReasonSource } from './reasons.js';
export { GuestRestartWatcher } from './watcher.js';
export { collectInventory } from './inventory.js';
