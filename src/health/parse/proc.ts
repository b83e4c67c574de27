/** Parsers for /proc text (pure; the readers live in proc-read.ts). */

export interface SwtpmArgs {
  /** `--tpmstate dir=…` */
  stateDir: string | null;
  /** `--ctrl type=unixio,path=…` */
  ctrlPath: string | null;
  serverPath: string | null;
  pidFile: string | null;
  logFile: string | null;
  tpm2: boolean;
}

/** Splits `key=value,key=value` option strings as swtpm does (no escaping in practice). */
function options(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export function parseSwtpmArgs(argv: readonly string[]): SwtpmArgs {
  const get = (flag: string): Map<string, string> | null => {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === flag && i + 1 < argv.length) return options(argv[i + 1]!);
      if (a.startsWith(`${flag}=`)) return options(a.slice(flag.length + 1));
    }
    return null;
  };
  return {
    stateDir: get('--tpmstate')?.get('dir') ?? null,
    ctrlPath: get('--ctrl')?.get('path') ?? null,
    serverPath: get('--server')?.get('path') ?? null,
    pidFile: get('--pid')?.get('file') ?? null,
    logFile: get('--log')?.get('file') ?? null,
    tpm2: argv.includes('--tpm2'),
  };
}

/** True when argv is an swtpm TPM instance (not swtpm_setup, swtpm_ioctl, ...). */
export function isSwtpmCommand(argv: readonly string[]): boolean {
  const exe = argv[0]?.split('/').pop();
  return exe === 'swtpm' && ['socket', 'chardev', 'cuse'].includes(argv[1] ?? '');
}

export interface ProcLock {
  kind: string;
  access: 'READ' | 'WRITE' | string;
  pid: number;
  major: number;
  minor: number;
  ino: number;
}

/** /proc/locks: `1: POSIX  ADVISORY  WRITE 12681 fe:00:1523826 0 EOF`; waiters (`->`) are skipped. */
export function parseProcLocks(text: string): ProcLock[] {
  const out: ProcLock[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+\S+\s+(\S+)\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/i.exec(line);
    if (!m) continue;
    out.push({ kind: m[1]!, access: m[2]!, pid: Number(m[3]), major: Number.parseInt(m[4]!, 16), minor: Number.parseInt(m[5]!, 16), ino: Number(m[6]) });
  }
  return out;
}

/** glibc's dev_t encoding, as returned in stat().dev. */
export function devMajorMinor(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}

/** `CapEff:\t000001fffeffffff` from /proc/<pid>/status. */
export function parseCapEff(status: string): bigint | null {
  const m = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(status);
  return m ? BigInt(`0x${m[1]}`) : null;
}

export const CAP_SYS_PTRACE = 19n;

export function hasCap(caps: bigint, cap: bigint): boolean {
  return ((caps >> cap) & 1n) === 1n;
}

/** PATH from a NUL-separated /proc/<pid>/environ. */
export function parseEnvironPath(environ: string): string | null {
  for (const entry of environ.split('\0')) if (entry.startsWith('PATH=')) return entry.slice(5);
  return null;
}

