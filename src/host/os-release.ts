import { readFile } from 'node:fs/promises';
import type { HostPathResolver } from '../util/hostpath.js';

/** The host's PRETTY_NAME from os-release (etc first, then usr/lib, as os-release(5) says). */
export function parseOsRelease(text: string): string | null {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2'));
  }
  return fields.get('PRETTY_NAME') ?? ([fields.get('NAME'), fields.get('VERSION')].filter(Boolean).join(' ') || null);
}

export async function readOsRelease(hostPath: HostPathResolver): Promise<string | null> {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      return parseOsRelease(await readFile(hostPath(file), 'utf8'));
    } catch {
      // try the next location
    }
  }
  return null;
}
