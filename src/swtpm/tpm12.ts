/**
 * TPM 1.2 commands the emulation check sends, and parsers for their responses (TCG TPM Main
 * Part 3). Same contract as tpm2.ts: typed values, TpmProtocolError or TpmResponseError.
 */
import { TpmResponseError } from './rc.js';
import { asciiField, ByteReader, CommandWriter, frameCommand, parseHeader, TpmProtocolError } from './wire.js';

export const TPM_TAG_RQU_COMMAND = 0x00c1;
export const TPM_TAG_RSP_COMMAND = 0x00c4;
export const TPM_ORD = { SelfTestFull: 0x50, GetRandom: 0x46, GetCapability: 0x65, Startup: 0x99 } as const;
export const TPM_ST_CLEAR = 0x0001;
export const TPM_CAP_VERSION_VAL = 0x0000001a;
export const TPM_TAG_CAP_VERSION_INFO = 0x0030;

export function startup(st: number = TPM_ST_CLEAR): Buffer {
  return frameCommand(TPM_TAG_RQU_COMMAND, TPM_ORD.Startup, new CommandWriter().u16(st).toBuffer());
}

export function selfTestFull(): Buffer {
  return frameCommand(TPM_TAG_RQU_COMMAND, TPM_ORD.SelfTestFull);
}

export function getRandom(bytesRequested: number): Buffer {
  return frameCommand(TPM_TAG_RQU_COMMAND, TPM_ORD.GetRandom, new CommandWriter().u32(bytesRequested).toBuffer());
}

export function getCapabilityVersion(): Buffer {
  return frameCommand(TPM_TAG_RQU_COMMAND, TPM_ORD.GetCapability, new CommandWriter().u32(TPM_CAP_VERSION_VAL).u32(0).toBuffer());
}

function parseResponse(buf: Uint8Array, command: string): ByteReader {
  const what = `TPM_${command} response`;
  const { header, reader } = parseHeader(buf, what, [TPM_TAG_RSP_COMMAND]);
  if (header.code !== 0) {
    if (header.size !== 10) throw new TpmProtocolError(`${what}: error response 0x${header.code.toString(16)} with ${header.size - 10} unexpected body byte(s)`, { size: header.size });
    throw new TpmResponseError('1.2', command, header.code);
  }
  return reader;
}

export function parseStartup(buf: Uint8Array): void {
  parseResponse(buf, 'Startup').end();
}

export function parseSelfTestFull(buf: Uint8Array): void {
  parseResponse(buf, 'SelfTestFull').end();
}

export function parseGetRandom(buf: Uint8Array): Buffer {
  const r = parseResponse(buf, 'GetRandom');
  const bytes = r.sized32('randomBytes', 4096);
  r.end();
  return bytes;
}

export interface Tpm12VersionInfo {
  /** "1.2" from TPM_VERSION major.minor. */
  version: string;
  specLevel: number;
  errataRev: number;
  /** TCG vendor ID, e.g. "IBM". */
  manufacturer: string;
  /** revMajor.revMinor: the vendor's firmware revision. */
  firmwareVersion: string;
}

/** TPM_GetCapability(TPM_CAP_VERSION_VAL) → TPM_CAP_VERSION_INFO (Main Part 2, 21.6). */
export function parseGetCapabilityVersion(buf: Uint8Array): Tpm12VersionInfo {
  const r = parseResponse(buf, 'GetCapability');
  const info = new ByteReader(r.sized32('resp', 4096), 'TPM_CAP_VERSION_INFO');
  r.end();
  const tag = info.u16('tag');
  if (tag !== TPM_TAG_CAP_VERSION_INFO) {
    throw new TpmProtocolError(`TPM_CAP_VERSION_INFO: tag 0x${tag.toString(16)}, expected 0x0030`, { tag });
  }
  const major = info.u8('version.major');
  const minor = info.u8('version.minor');
  const revMajor = info.u8('version.revMajor');
  const revMinor = info.u8('version.revMinor');
  const specLevel = info.u16('specLevel');
  const errataRev = info.u8('errataRev');
  const vendor = info.bytes(4, 'tpmVendorID');
  info.sized16('vendorSpecific', 4096);
  info.end();
  return {
    version: `${major}.${minor}`,
    specLevel,
    errataRev,
    manufacturer: asciiField(vendor),
    firmwareVersion: `${revMajor}.${revMinor}`,
  };
}
