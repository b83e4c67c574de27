/**
 * oslo.config-style INI (nova.conf) and the flat `key = value` files of swtpm
 * (swtpm_setup.conf, swtpm-localca.conf). Keys before any section land in section ''. Later
 * files and later lines override earlier ones, as oslo.config does for single-valued options.
 */
export type IniData = Map<string, Map<string, string>>;

export function parseIni(text: string, into: IniData = new Map()): IniData {
  let section = '';
  let lastKey: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || /^\s*[#;]/.test(line)) {
      lastKey = null;
      continue;
    }
    // oslo.config continuation: an indented line extends the previous value.
    if (/^\s/.test(line) && lastKey !== null) {
      const sec = into.get(section)!;
      sec.set(lastKey, `${sec.get(lastKey) ?? ''}\n${line.trim()}`.trim());
      continue;
    }
    const sec = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (sec) {
      section = sec[1]!.trim();
      lastKey = null;
      continue;
    }
    const kv = /^\s*([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv) {
      lastKey = null;
      continue;
    }
    if (!into.has(section)) into.set(section, new Map());
    lastKey = kv[1]!;
    into.get(section)!.set(lastKey, kv[2]!.trim());
  }
  return into;
}

export function iniGet(data: IniData, section: string, key: string): string | undefined {
  return data.get(section)?.get(key);
}

/** oslo.config booleans: true/1/on/yes and false/0/off/no, case-insensitive; anything else is null. */
export function parseOsloBool(value: string | undefined): boolean | null {
  if (value === undefined) return null;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(v)) return true;
  if (['false', '0', 'off', 'no'].includes(v)) return false;
  return null;
}

/** oslo.config ListOpt: comma-separated, blanks dropped. */
export function parseOsloList(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}
