import { readFile } from 'node:fs/promises';

/** Looks a user or group up in passwd/group files (not NSS): works under a host root too. */
export interface AccountEntry {
  name: string;
  id: number;
}

export function parseColonFile(text: string): AccountEntry[] {
  const entries: AccountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(':');
    const id = Number.parseInt(fields[2] ?? '', 10);
    if (fields[0] && Number.isInteger(id)) entries.push({ name: fields[0], id });
  }
  return entries;
}

export async function readAccounts(file: string): Promise<AccountEntry[]> {
  try {
    return parseColonFile(await readFile(file, 'utf8'));
  } catch {
    return [];
  }
}
