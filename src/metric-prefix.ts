/**
 * The one metric prefix (bottom layer: every module that registers metrics imports it). Every
 * metric name is `${METRIC_PREFIX}<subsystem>_<name>` in base units, `_total`, `_seconds`, `_info`.
 */
export const METRIC_PREFIX = 'vtpm_';
