import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * Small versioned JSON documents under the agent's state directory (log cursors, reset
 * baselines), written atomically (temp file + rename). A corrupt or foreign file is set aside
 * and replaced by a fresh document, never a crash.
 */
export async function loadJson<T>(file: string, schema: z.ZodType<T>, fresh: () => T): Promise<{ value: T; problem: string | null }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { value: fresh(), problem: code === 'ENOENT' ? null : `cannot read ${file}: ${code}` };
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (parsed.success) return { value: parsed.data, problem: null };
    await rename(file, `${file}.corrupt`).catch(() => undefined);
    return { value: fresh(), problem: `${file} did not match the expected format; started afresh (old copy: ${file}.corrupt)` };
  } catch {
    await rename(file, `${file}.corrupt`).catch(() => undefined);
    return { value: fresh(), problem: `${file} is not JSON; started afresh (old copy: ${file}.corrupt)` };
  }
}

export async function saveJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
  await rename(tmp, file);
}
