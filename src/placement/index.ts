/** The Placement trait reconciler: drift of Nova's vTPM traits, agent-owned CUSTOM_VTPM_* traits. */
export { placementConfigSchema, type PlacementConfig } from './config.js';
export { PlacementReconcilerExtension, runReconcileOnce, virshHostname, type PlacementExtensionOptions, type ReconcileOnceOptions, type ReconcileOnceResult, type VerdictSource } from './extension.js';
export { PlacementReconciler, type ReconcileResult, type ReconcileState } from './reconciler.js';
export { renderSection } from './report.js';
