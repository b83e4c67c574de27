/** scripts/node-flags.txt: the V8 flags of the packaged agent, one per line, `#` comments. */
import { readFileSync } from 'node:fs';

export const NODE_FLAGS_FILE = new URL('./node-flags.txt', import.meta.url);

export function readNodeFlags(text = readFileSync(NODE_FLAGS_FILE, 'utf8')): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}
