/**
 * libvirt's own config syntax (qemu.conf): `key = "string"`, `key = 123`, `key = [ "a", "b" ]`
 * (lists may span lines), `#` comments. Unknown or malformed lines are counted, never fatal:
 * a garbage file yields no settings, and the caller falls back to libvirt's defaults.
 */
export type LibvirtConfValue = string | number | string[];

export interface LibvirtConf {
  values: Map<string, LibvirtConfValue>;
  /** Lines that were neither blank, comments nor settings. */
  malformedLines: number;
}

function stripComment(line: string): string {
  let inString = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') inString = !inString;
    else if (c === '#' && !inString) return line.slice(0, i);
  }
  return line;
}

function parseScalar(text: string): string | number | null {
  const t = text.trim();
  const str = /^"((?:[^"\\]|\\.)*)"$/.exec(t);
  if (str) return str[1]!.replace(/\\(.)/g, '$1');
  if (/^-?\d+$/.test(t)) return Number.parseInt(t, 10);
  return null;
}

export function parseLibvirtConf(text: string): LibvirtConf {
  const values = new Map<string, LibvirtConfValue>();
  let malformedLines = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = stripComment(lines[i]!).trim();
    if (!line) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      malformedLines++;
      continue;
    }
    const key = m[1]!;
    let rest = m[2]!.trim();
    if (rest.startsWith('[')) {
      // A list may continue over following lines until the closing bracket.
      while (!rest.includes(']') && i + 1 < lines.length) rest += ' ' + stripComment(lines[++i]!).trim();
      const inner = /^\[(.*)\]$/.exec(rest.trim());
      if (!inner) {
        malformedLines++;
        continue;
      }
      const items = inner[1]!.split(',').map((s) => s.trim()).filter(Boolean).map(parseScalar);
      if (items.some((v) => typeof v !== 'string')) {
        malformedLines++;
        continue;
      }
      values.set(key, items as string[]);
      continue;
    }
    const scalar = parseScalar(rest);
    if (scalar === null) {
      malformedLines++;
      continue;
    }
    values.set(key, scalar);
  }
  return { values, malformedLines };
}

export function confString(conf: LibvirtConf, key: string): string | null {
  const v = conf.values.get(key);
  return typeof v === 'string' ? v : null;
}
