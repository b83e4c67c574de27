/**
 * TPM response codes to names, so errors and logs say `TPM_RC_INITIALIZE` rather than `0x100`.
 * TPM 2.0: TCG TPM 2.0 Library Part 2, 6.6 (format-zero and format-one codes). TPM 1.2: TCG TPM
 * Main Part 2, 16 (error codes). Unknown codes still get a descriptive name.
 */

import { AgentError } from '../errors.js';

const RC_VER1 = 0x100;
const RC_FMT1 = 0x080;
const RC_WARN = 0x900;

const tpm2Ver1: Record<number, string> = {
  0x000: 'INITIALIZE', 0x001: 'FAILURE', 0x003: 'SEQUENCE', 0x00b: 'PRIVATE', 0x019: 'HMAC', 0x020: 'DISABLED',
  0x021: 'EXCLUSIVE', 0x024: 'AUTH_TYPE', 0x025: 'AUTH_MISSING', 0x026: 'POLICY', 0x027: 'PCR', 0x028: 'PCR_CHANGED',
  0x02d: 'UPGRADE', 0x02e: 'TOO_MANY_CONTEXTS', 0x02f: 'AUTH_UNAVAILABLE', 0x030: 'REBOOT', 0x031: 'UNBALANCED',
  0x042: 'COMMAND_SIZE', 0x043: 'COMMAND_CODE', 0x044: 'AUTHSIZE', 0x045: 'AUTH_CONTEXT', 0x046: 'NV_RANGE',
  0x047: 'NV_SIZE', 0x048: 'NV_LOCKED', 0x049: 'NV_AUTHORIZATION', 0x04a: 'NV_UNINITIALIZED', 0x04b: 'NV_SPACE',
  0x04c: 'NV_DEFINED', 0x050: 'BAD_CONTEXT', 0x051: 'CPHASH', 0x052: 'PARENT', 0x053: 'NEEDS_TEST', 0x054: 'NO_RESULT',
  0x055: 'SENSITIVE',
};

const tpm2Fmt1: Record<number, string> = {
  0x01: 'ASYMMETRIC', 0x02: 'ATTRIBUTES', 0x03: 'HASH', 0x04: 'VALUE', 0x05: 'HIERARCHY', 0x07: 'KEY_SIZE', 0x08: 'MGF',
  0x09: 'MODE', 0x0a: 'TYPE', 0x0b: 'HANDLE', 0x0c: 'KDF', 0x0d: 'RANGE', 0x0e: 'AUTH_FAIL', 0x0f: 'NONCE', 0x10: 'PP',
  0x12: 'SCHEME', 0x15: 'SIZE', 0x16: 'SYMMETRIC', 0x17: 'TAG', 0x18: 'SELECTOR', 0x1a: 'INSUFFICIENT', 0x1b: 'SIGNATURE',
  0x1c: 'KEY', 0x1d: 'POLICY_FAIL', 0x1f: 'INTEGRITY', 0x20: 'TICKET', 0x21: 'RESERVED_BITS', 0x22: 'BAD_AUTH',
  0x23: 'EXPIRED', 0x24: 'POLICY_CC', 0x25: 'BINDING', 0x26: 'CURVE', 0x27: 'ECC_POINT',
};

const tpm2Warn: Record<number, string> = {
  0x001: 'CONTEXT_GAP', 0x002: 'OBJECT_MEMORY', 0x003: 'SESSION_MEMORY', 0x004: 'MEMORY', 0x005: 'SESSION_HANDLES',
  0x006: 'OBJECT_HANDLES', 0x007: 'LOCALITY', 0x008: 'YIELDED', 0x009: 'CANCELED', 0x00a: 'TESTING',
  0x010: 'REFERENCE_H0', 0x011: 'REFERENCE_H1', 0x012: 'REFERENCE_H2', 0x013: 'REFERENCE_H3', 0x014: 'REFERENCE_H4',
  0x015: 'REFERENCE_H5', 0x016: 'REFERENCE_H6', 0x018: 'REFERENCE_S0', 0x019: 'REFERENCE_S1', 0x01a: 'REFERENCE_S2',
  0x01b: 'REFERENCE_S3', 0x01c: 'REFERENCE_S4', 0x01d: 'REFERENCE_S5', 0x01e: 'REFERENCE_S6', 0x020: 'NV_RATE',
  0x021: 'LOCKOUT', 0x022: 'RETRY', 0x023: 'NV_UNAVAILABLE', 0x07f: 'NOT_USED',
};

const tpm12: Record<number, string> = {
  0x00: 'SUCCESS', 0x01: 'AUTHFAIL', 0x02: 'BADINDEX', 0x03: 'BAD_PARAMETER', 0x04: 'AUDITFAILURE', 0x05: 'CLEAR_DISABLED',
  0x06: 'DEACTIVATED', 0x07: 'DISABLED', 0x08: 'DISABLED_CMD', 0x09: 'FAIL', 0x0a: 'BAD_ORDINAL', 0x0b: 'INSTALL_DISABLED',
  0x0c: 'INVALID_KEYHANDLE', 0x0d: 'KEYNOTFOUND', 0x0e: 'INAPPROPRIATE_ENC', 0x0f: 'MIGRATEFAIL', 0x10: 'INVALID_PCR_INFO',
  0x11: 'NOSPACE', 0x12: 'NOSRK', 0x13: 'NOTSEALED_BLOB', 0x14: 'OWNER_SET', 0x15: 'RESOURCES', 0x16: 'SHORTRANDOM',
  0x17: 'SIZE', 0x18: 'WRONGPCRVAL', 0x19: 'BAD_PARAM_SIZE', 0x1a: 'SHA_THREAD', 0x1b: 'SHA_ERROR', 0x1c: 'FAILEDSELFTEST',
  0x1d: 'AUTH2FAIL', 0x1e: 'BADTAG', 0x1f: 'IOERROR', 0x20: 'ENCRYPT_ERROR', 0x21: 'DECRYPT_ERROR', 0x22: 'INVALID_AUTHHANDLE',
  0x23: 'NO_ENDORSEMENT', 0x24: 'INVALID_KEYUSAGE', 0x25: 'WRONG_ENTITYTYPE', 0x26: 'INVALID_POSTINIT', 0x27: 'INAPPROPRIATE_SIG',
  0x28: 'BAD_KEY_PROPERTY', 0x29: 'BAD_MIGRATION', 0x2a: 'BAD_SCHEME', 0x2b: 'BAD_DATASIZE', 0x2c: 'BAD_MODE',
  0x2d: 'BAD_PRESENCE', 0x2e: 'BAD_VERSION', 0x2f: 'NO_WRAP_TRANSPORT', 0x30: 'AUDITFAIL_UNSUCCESSFUL',
  0x31: 'AUDITFAIL_SUCCESSFUL', 0x32: 'NOTRESETABLE', 0x33: 'NOTLOCAL', 0x34: 'BAD_TYPE', 0x35: 'INVALID_RESOURCE',
  0x36: 'NOTFIPS', 0x37: 'INVALID_FAMILY', 0x38: 'NO_NV_PERMISSION', 0x39: 'REQUIRES_SIGN', 0x3a: 'KEY_NOTSUPPORTED',
  0x3b: 'AUTH_CONFLICT', 0x3c: 'AREA_LOCKED', 0x3d: 'BAD_LOCALITY', 0x3e: 'READ_ONLY', 0x3f: 'PER_NOWRITE',
  0x40: 'FAMILYCOUNT', 0x41: 'WRITE_LOCKED', 0x42: 'BAD_ATTRIBUTES', 0x43: 'INVALID_STRUCTURE', 0x44: 'KEY_OWNER_CONTROL',
  0x45: 'BAD_COUNTER', 0x46: 'NOT_FULLHASH', 0x47: 'CONTEXT_GAP', 0x48: 'MAXNVWRITES', 0x49: 'NOOPERATOR',
  0x4a: 'RESOURCEMISSING', 0x4b: 'DELEGATE_LOCK', 0x4c: 'DELEGATE_FAMILY', 0x4d: 'DELEGATE_ADMIN',
  0x4e: 'TRANSPORT_NOTEXCLUSIVE', 0x4f: 'OWNER_CONTROL', 0x50: 'DAA_RESOURCES', 0x51: 'DAA_INPUT_DATA0',
  0x52: 'DAA_INPUT_DATA1', 0x53: 'DAA_ISSUER_SETTINGS', 0x54: 'DAA_TPM_SETTINGS', 0x55: 'DAA_STAGE',
  0x56: 'DAA_ISSUER_VALIDITY', 0x57: 'DAA_WRONG_W', 0x58: 'BAD_HANDLE', 0x59: 'BAD_DELEGATE', 0x5a: 'BADCONTEXT',
  0x5b: 'TOOMANYCONTEXTS', 0x5c: 'MA_TICKET_SIGNATURE', 0x5d: 'MA_DESTINATION', 0x5e: 'MA_SOURCE', 0x5f: 'MA_AUTHORITY',
  0x61: 'PERMANENTEK', 0x62: 'BAD_SIGNATURE', 0x63: 'NOCONTEXTSPACE',
  0x800: 'RETRY', 0x801: 'NEEDS_SELFTEST', 0x802: 'DOING_SELFTEST', 0x803: 'DEFEND_LOCK_RUNNING',
};

function hex(rc: number): string {
  return `0x${(rc >>> 0).toString(16).padStart(3, '0')}`;
}

/** Name of a TPM 2.0 response code, with handle / session / parameter number for format-one codes. */
export function tpm2RcName(rc: number): string {
  rc >>>= 0;
  if (rc === 0) return 'TPM_RC_SUCCESS';
  if (rc > 0xffff) return `TPM_RC_UNKNOWN(${hex(rc)})`;
  if (rc & RC_FMT1) {
    const name = tpm2Fmt1[rc & 0x3f];
    const base = name ? `TPM_RC_${name}` : `TPM_RC_FMT1_UNKNOWN(${hex(rc & 0x3f)})`;
    const n = (rc >>> 8) & 0xf;
    if (rc & 0x40) return `${base} (parameter ${n})`;
    if (n === 0) return base;
    return n & 0x8 ? `${base} (session ${n & 0x7})` : `${base} (handle ${n})`;
  }
  if ((rc & 0xf00) === RC_WARN) {
    const name = tpm2Warn[rc & 0x7f];
    return name ? `TPM_RC_${name}` : `TPM_RC_WARN_UNKNOWN(${hex(rc)})`;
  }
  if (rc & 0x400) return `TPM_RC_VENDOR(${hex(rc)})`;
  if ((rc & 0xf00) === RC_VER1) {
    const name = tpm2Ver1[rc & 0x7f];
    return name ? `TPM_RC_${name}` : `TPM_RC_VER1_UNKNOWN(${hex(rc)})`;
  }
  if ((rc & 0xf80) === 0) {
    // Format-zero codes below 0x100 are TPM 1.2 codes a TPM 2.0 may return (e.g. to a 1.2 tag).
    const name = tpm12[rc];
    return name ? `TPM_${name} (TPM 1.2 code)` : `TPM_RC_UNKNOWN(${hex(rc)})`;
  }
  return `TPM_RC_UNKNOWN(${hex(rc)})`;
}

/** Name of a TPM 1.2 return code. */
export function tpm12RcName(rc: number): string {
  rc >>>= 0;
  const name = tpm12[rc];
  if (name) return `TPM_${name}`;
  if (rc & 0x400) return `TPM_VENDOR_ERROR(${hex(rc)})`;
  return `TPM_UNKNOWN(${hex(rc)})`;
}

export function rcName(version: '1.2' | '2.0', rc: number): string {
  return version === '2.0' ? tpm2RcName(rc) : tpm12RcName(rc);
}

/** `0x00000101` form used in messages beside the name. */
export function rcHex(rc: number): string {
  return `0x${(rc >>> 0).toString(16).padStart(8, '0')}`;
}

/** A well-formed response that carries a non-zero response code. */
export class TpmResponseError extends AgentError {
  readonly rc: number;
  readonly rcName: string;
  constructor(version: '1.2' | '2.0', command: string, rc: number) {
    const name = rcName(version, rc);
    super('VTPM_ERR_TPM_RESPONSE', `TPM ${version} ${command} returned ${name} (${rcHex(rc)})`, {
      details: { version, command, rc, rcName: name },
    });
    this.name = 'TpmResponseError';
    this.rc = rc;
    this.rcName = name;
  }
}
