import { access, constants } from 'node:fs/promises';
import path from 'node:path';

/** Finds an executable the way a shell would, on the PATH given (tests point PATH elsewhere). */
export async function which(name: string, envPath: string | undefined): Promise<string | null> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : null;
  for (const dir of (envPath ?? '').split(':')) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return null;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
