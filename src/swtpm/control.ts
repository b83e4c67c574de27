/**
 * swtpm's control channel (swtpm `man swtpm-ioctls`, socket form): 4-byte big-endian command
 * codes; CMD_INIT and CMD_SHUTDOWN answer a 4-byte TPM result code.
 */
import { ByteReader, CommandWriter } from './wire.js';

export const CMD_INIT = 0x00000002;
export const CMD_SHUTDOWN = 0x00000003;
/** CMD_INIT flag: delete the volatile state before initialising. */
export const INIT_FLAG_DELETE_VOLATILE = 0x00000001;

export const CONTROL_RESULT_SIZE = 4;

export function cmdInit(flags = 0): Buffer {
  return new CommandWriter().u32(CMD_INIT).u32(flags).toBuffer();
}

export function cmdShutdown(): Buffer {
  return new CommandWriter().u32(CMD_SHUTDOWN).toBuffer();
}

/** The TPM result code in a CMD_INIT / CMD_SHUTDOWN answer (0 = success). */
export function parseControlResult(buf: Uint8Array, command: string): number {
  const r = new ByteReader(buf, `${command} answer`);
  const rc = r.u32('tpmResult');
  r.end();
  return rc;
}
