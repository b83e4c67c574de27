import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

/** swtpm / swtpm_setup failure lines (swtpm sources, see failure-modes §0.4), most specific first. */
const FAILURE_PATTERNS: RegExp[] = [
  /Verification of HMAC failed/,
  /SWTPM_NVRAM_LoadData: Error from SWTPM_NVRAM_GetDecryptedData/,
  /SWTPM_NVRAM_LoadData: Error from SWTPM_NVRAM_CheckHeader/,
  /SWTPM_NVRAM_Lock_Dir: Could not (open|lock)/,
  /SWTPM_NVRAM_\w+: Error \(fatal\)/,
  /Need (read\/write|read|write) rights on/,
  /cannot access directory/,
  /Entering failure mode/,
  /Authoring the TPM state failed/,
  /swtpm process terminated unexpectedly/,
  /Could not initialize (libtpms|the TPM)/,
  /TPM 1\.2 is not supported by libtpms/,
];

const TAIL_BYTES = 64 * 1024;

/**
 * The last swtpm failure line in `<dir>/<domain name>-swtpm.log`, if the log was written since
 * `sinceMs` (so a failure from an earlier boot is not blamed). null: no log, too old, or clean.
 */
export async function swtpmFailureSince(dir: string, domainName: string, sinceMs: number): Promise<string | null> {
  if (domainName.includes('/')) return null;
  const file = path.join(dir, `${domainName}-swtpm.log`);
  try {
    // Only a regular file is read: a FIFO (or device) at the log path would block the open or the
    // read on a libuv thread for good and freeze the watcher. The cheap stat skips those without
    // opening them; O_NONBLOCK plus fstat covers a file swapped in between.
    const pre = await stat(file);
    if (!pre.isFile() || pre.mtimeMs < sinceMs) return null;
    const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.mtimeMs < sinceMs) return null;
      const length = Math.min(st.size, TAIL_BYTES);
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, st.size - length);
      const lines = buf.subarray(0, bytesRead).toString('utf8').split('\n').reverse();
      for (const pattern of FAILURE_PATTERNS) {
        const line = lines.find((l) => pattern.test(l));
        if (line) return line.trim().slice(0, 300);
      }
      return null;
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
}
