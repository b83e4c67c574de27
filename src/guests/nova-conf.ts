import { iniGet, parseIni, parseOsloBool } from '../util/ini.js';

/**
 * `[DEFAULT] resume_guests_state_on_host_boot` from nova.conf: the last occurrence wins as in
 * oslo.config, and the default (also for a value oslo.config would reject) is false.
 */
export function parseResumeGuestsStateOnHostBoot(text: string): boolean {
  return parseOsloBool(iniGet(parseIni(text), 'DEFAULT', 'resume_guests_state_on_host_boot')) ?? false;
}
