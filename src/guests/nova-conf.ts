/**
 * Reads one option from nova.conf (oslo.config INI). Only `[DEFAULT] resume_guests_state_on_host_boot`
 * matters here; the last occurrence wins as in oslo.config, and the default is false.
 */
export function parseResumeGuestsStateOnHostBoot(text: string): boolean {
  let section = '';
  let value: boolean | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      continue;
    }
    if (section !== 'DEFAULT') continue;
    const kv = /^([A-Za-z0-9_.-]+)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv || kv[1] !== 'resume_guests_state_on_host_boot') continue;
    const v = kv[2]!.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) value = true;
    else if (['false', 'no', 'off', '0'].includes(v)) value = false;
  }
  return value ?? false;
}
