/**
 * TPM 2.0 commands the emulation check sends, and parsers for their responses (TCG TPM 2.0
 * Library, Part 3). Builders are pure; parsers either return typed values or throw
 * TpmProtocolError (malformed bytes) / TpmResponseError (a well-formed error code).
 */
import { TpmResponseError } from './rc.js';
import { asciiField, ByteReader, CommandWriter, frameCommand, parseHeader, TpmProtocolError } from './wire.js';

export const TPM2_ST_NO_SESSIONS = 0x8001;
export const TPM2_ST_SESSIONS = 0x8002;

export const TPM2_CC = {
  NV_UndefineSpace: 0x122,
  NV_DefineSpace: 0x12a,
  NV_Write: 0x137,
  SelfTest: 0x143,
  Startup: 0x144,
  Shutdown: 0x145,
  NV_Read: 0x14e,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
} as const;

export const TPM2_SU_CLEAR = 0x0000;
export const TPM2_SU_STATE = 0x0001;
export const TPM2_RH_OWNER = 0x40000001;
export const TPM2_RS_PW = 0x40000009;
export const TPM2_ALG_SHA256 = 0x000b;
export const TPM2_CAP_TPM_PROPERTIES = 0x00000006;
export const TPM2_PT_FIXED = 0x100;

/** TPMA_NV bits used here (Part 2, 13.4). */
export const TPMA_NV = {
  AUTHWRITE: 1 << 2,
  AUTHREAD: 1 << 18,
  NO_DA: 1 << 25,
} as const;

/** Fixed property tags (Part 2, 6.13): TPM_PT_FIXED + n. */
export const TPM2_PT = {
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  VENDOR_TPM_TYPE: 0x10a,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
} as const;

/** Generous bound on the count of a TPML_TAGGED_TPM_PROPERTY; anything larger is garbage. */
const MAX_PROPERTIES = 256;
/** MAX_NV_BUFFER_SIZE of typical TPMs (swtpm: 2048); a bigger TPM2B is garbage. */
const MAX_NV_BUFFER = 2048;

// ---------------------------------------------------------------- builders

export function startup(su: number = TPM2_SU_CLEAR): Buffer {
  return frameCommand(TPM2_ST_NO_SESSIONS, TPM2_CC.Startup, new CommandWriter().u16(su).toBuffer());
}

export function shutdown(su: number = TPM2_SU_CLEAR): Buffer {
  return frameCommand(TPM2_ST_NO_SESSIONS, TPM2_CC.Shutdown, new CommandWriter().u16(su).toBuffer());
}

export function selfTest(fullTest = true): Buffer {
  return frameCommand(TPM2_ST_NO_SESSIONS, TPM2_CC.SelfTest, new CommandWriter().u8(fullTest ? 1 : 0).toBuffer());
}

export function getRandom(bytesRequested: number): Buffer {
  return frameCommand(TPM2_ST_NO_SESSIONS, TPM2_CC.GetRandom, new CommandWriter().u16(bytesRequested).toBuffer());
}

export function getCapability(capability: number, property: number, count: number): Buffer {
  return frameCommand(TPM2_ST_NO_SESSIONS, TPM2_CC.GetCapability, new CommandWriter().u32(capability).u32(property).u32(count).toBuffer());
}

/** The fixed properties from TPM_PT_FAMILY_INDICATOR up to the firmware version. */
export function getFixedProperties(): Buffer {
  return getCapability(TPM2_CAP_TPM_PROPERTIES, TPM2_PT_FIXED, TPM2_PT.FIRMWARE_VERSION_2 - TPM2_PT_FIXED + 1);
}

/** One password session (TPM_RS_PW) carrying `password` as its HMAC field (Part 1, 19.6.13). */
function passwordAuthArea(password: Uint8Array): Buffer {
  const session = new CommandWriter().u32(TPM2_RS_PW).sized16(new Uint8Array()).u8(0).sized16(password).toBuffer();
  return new CommandWriter().u32(session.length).bytes(session).toBuffer();
}

function sessionCommand(code: number, handles: number[], password: Uint8Array, params: Uint8Array): Buffer {
  const body = new CommandWriter();
  for (const h of handles) body.u32(h);
  body.bytes(passwordAuthArea(password)).bytes(params);
  return frameCommand(TPM2_ST_SESSIONS, code, body.toBuffer());
}

export interface NvDefinition {
  index: number;
  /** The index's own authValue; NV_Write / NV_Read authorise with it (AUTHWRITE / AUTHREAD). */
  authValue: Uint8Array;
  dataSize: number;
  /** Owner hierarchy password (empty on a fresh TPM). */
  ownerAuth?: Uint8Array;
}

export function nvDefineSpace(def: NvDefinition): Buffer {
  const attributes = TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA;
  const nvPublic = new CommandWriter().u32(def.index).u16(TPM2_ALG_SHA256).u32(attributes >>> 0).sized16(new Uint8Array()).u16(def.dataSize).toBuffer();
  const params = new CommandWriter().sized16(def.authValue).sized16(nvPublic).toBuffer();
  return sessionCommand(TPM2_CC.NV_DefineSpace, [TPM2_RH_OWNER], def.ownerAuth ?? new Uint8Array(), params);
}

export function nvWrite(index: number, authValue: Uint8Array, data: Uint8Array, offset = 0): Buffer {
  const params = new CommandWriter().sized16(data).u16(offset).toBuffer();
  return sessionCommand(TPM2_CC.NV_Write, [index, index], authValue, params);
}

export function nvRead(index: number, authValue: Uint8Array, size: number, offset = 0): Buffer {
  const params = new CommandWriter().u16(size).u16(offset).toBuffer();
  return sessionCommand(TPM2_CC.NV_Read, [index, index], authValue, params);
}

// ---------------------------------------------------------------- parsers

/**
 * Validates the header and turns a non-zero code into TpmResponseError. Returns a reader over the
 * parameters (after parameterSize for session responses) and, for those, the auth area's bounds.
 */
export function parseResponse(buf: Uint8Array, command: string, sessions: boolean): { params: ByteReader; reader: ByteReader } {
  const what = `TPM2_${command} response`;
  const { header, reader } = parseHeader(buf, what, [TPM2_ST_NO_SESSIONS, TPM2_ST_SESSIONS]);
  if (header.code !== 0) {
    if (header.size !== 10) throw new TpmProtocolError(`${what}: error response 0x${header.code.toString(16)} with ${header.size - 10} unexpected body byte(s)`, { size: header.size });
    throw new TpmResponseError('2.0', command, header.code);
  }
  const expectedTag = sessions ? TPM2_ST_SESSIONS : TPM2_ST_NO_SESSIONS;
  if (header.tag !== expectedTag) {
    throw new TpmProtocolError(`${what}: tag 0x${header.tag.toString(16)} on a successful response, expected 0x${expectedTag.toString(16)}`, { tag: header.tag });
  }
  if (!sessions) return { params: reader, reader };
  const parameterSize = reader.u32('parameterSize');
  const params = new ByteReader(reader.bytes(parameterSize, 'parameters'), what);
  parseAuthResponseArea(reader, what);
  return { params, reader: params };
}

/** One TPMS_AUTH_RESPONSE for our one password session: nonce, attributes, hmac (empty). */
function parseAuthResponseArea(reader: ByteReader, what: string): void {
  reader.sized16('authResponse.nonce', 64);
  reader.u8('authResponse.sessionAttributes');
  reader.sized16('authResponse.hmac', 64);
  if (reader.remaining !== 0) throw new TpmProtocolError(`${what}: ${reader.remaining} byte(s) after the one expected session response`);
}

function expectEmpty(buf: Uint8Array, command: string, sessions = false): void {
  parseResponse(buf, command, sessions).params.end();
}

export const parseStartup = (buf: Uint8Array): void => expectEmpty(buf, 'Startup');
export const parseShutdown = (buf: Uint8Array): void => expectEmpty(buf, 'Shutdown');
export const parseSelfTest = (buf: Uint8Array): void => expectEmpty(buf, 'SelfTest');
export const parseNvDefineSpace = (buf: Uint8Array): void => expectEmpty(buf, 'NV_DefineSpace', true);
export const parseNvWrite = (buf: Uint8Array): void => expectEmpty(buf, 'NV_Write', true);

export function parseGetRandom(buf: Uint8Array): Buffer {
  const { params } = parseResponse(buf, 'GetRandom', false);
  const bytes = params.sized16('randomBytes', 64);
  params.end();
  return bytes;
}

export function parseNvRead(buf: Uint8Array): Buffer {
  const { params } = parseResponse(buf, 'NV_Read', true);
  const data = params.sized16('data', MAX_NV_BUFFER);
  params.end();
  return data;
}

export interface CapabilityProperties {
  moreData: boolean;
  properties: Map<number, number>;
}

export function parseGetCapabilityProperties(buf: Uint8Array): CapabilityProperties {
  const { params } = parseResponse(buf, 'GetCapability', false);
  const moreData = params.u8('moreData');
  if (moreData > 1) throw new TpmProtocolError(`TPM2_GetCapability response: moreData is ${moreData}, not a TPMI_YES_NO`);
  const capability = params.u32('capabilityData.capability');
  if (capability !== TPM2_CAP_TPM_PROPERTIES) {
    throw new TpmProtocolError(`TPM2_GetCapability response: capability 0x${capability.toString(16)}, expected TPM_CAP_TPM_PROPERTIES`, { capability });
  }
  const count = params.u32('tpmProperties.count');
  if (count > MAX_PROPERTIES) throw new TpmProtocolError(`TPM2_GetCapability response: ${count} properties is more than ${MAX_PROPERTIES}`, { count });
  const properties = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const property = params.u32(`tpmProperty[${i}].property`);
    properties.set(property, params.u32(`tpmProperty[${i}].value`));
  }
  params.end();
  return { moreData: moreData === 1, properties };
}

export interface Tpm2FixedProperties {
  /** "2.0" from TPM_PT_FAMILY_INDICATOR. */
  family: string;
  level: number;
  /** Specification revision, e.g. "1.64". */
  revision: string;
  /** TCG vendor ID, e.g. "IBM". */
  manufacturer: string;
  vendorString: string;
  /** FIRMWARE_VERSION_1 as major.minor, then FIRMWARE_VERSION_2 as two more parts when set. */
  firmwareVersion: string;
  firmwareVersionRaw: [number, number];
}

function u32Ascii(v: number): string {
  return asciiField(Uint8Array.of((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff));
}

/** Interprets the fixed properties; the ones the check reports must be present. */
export function fixedProperties(props: Map<number, number>): Tpm2FixedProperties {
  const need = (tag: number, name: string): number => {
    const v = props.get(tag);
    if (v === undefined) throw new TpmProtocolError(`TPM2_GetCapability response lacks ${name}`, { property: tag });
    return v;
  };
  const family = u32Ascii(need(TPM2_PT.FAMILY_INDICATOR, 'TPM_PT_FAMILY_INDICATOR'));
  const revision = need(TPM2_PT.REVISION, 'TPM_PT_REVISION');
  const fw1 = need(TPM2_PT.FIRMWARE_VERSION_1, 'TPM_PT_FIRMWARE_VERSION_1');
  const fw2 = props.get(TPM2_PT.FIRMWARE_VERSION_2) ?? 0;
  // The four vendor words form one string ("SW  " + " TPM"), so join the bytes before trimming.
  const vendorBytes: number[] = [];
  for (const tag of [TPM2_PT.VENDOR_STRING_1, TPM2_PT.VENDOR_STRING_2, TPM2_PT.VENDOR_STRING_3, TPM2_PT.VENDOR_STRING_4]) {
    const v = props.get(tag);
    if (v !== undefined) vendorBytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  const vendor = asciiField(Uint8Array.from(vendorBytes));
  let firmwareVersion = `${fw1 >>> 16}.${fw1 & 0xffff}`;
  if (fw2 !== 0) firmwareVersion += `.${fw2 >>> 16}.${fw2 & 0xffff}`;
  return {
    family,
    level: props.get(TPM2_PT.LEVEL) ?? 0,
    revision: `${Math.floor(revision / 100)}.${String(revision % 100).padStart(2, '0')}`,
    manufacturer: u32Ascii(need(TPM2_PT.MANUFACTURER, 'TPM_PT_MANUFACTURER')),
    vendorString: vendor,
    firmwareVersion,
    firmwareVersionRaw: [fw1, fw2],
  };
}
