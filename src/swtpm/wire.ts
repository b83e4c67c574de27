/**
 * Big-endian byte framing shared by TPM 1.2 and TPM 2.0. Every decoding failure is a
 * TpmProtocolError naming the field and offset: parsers never throw anything else.
 */
import { AgentError } from '../errors.js';

/** Response header: tag(2) size(4) code(4), the same layout in TPM 1.2 and 2.0. */
export const HEADER_SIZE = 10;
/** Larger than any response we ask for; a bigger size field means garbage on the wire. */
export const MAX_RESPONSE_SIZE = 64 * 1024;

export class TpmProtocolError extends AgentError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('VTPM_ERR_TPM_PROTOCOL', message, { details });
    this.name = 'TpmProtocolError';
  }
}

/** Sequential reader over one response; `end()` rejects trailing bytes (a "long" response). */
export class ByteReader {
  private offset = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number, field: string): void {
    if (this.offset + n > this.buf.length) {
      throw new TpmProtocolError(
        `${this.what}: response too short: field '${field}' needs ${n} byte(s) at offset ${this.offset}, only ${this.buf.length - this.offset} left`,
        { field, offset: this.offset, length: this.buf.length },
      );
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.offset++]!;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = (this.buf[this.offset]! << 8) | this.buf[this.offset + 1]!;
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const b = this.buf;
    const o = this.offset;
    const v = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    this.offset += 4;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const out = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return out;
  }

  /** TPM2B: u16 size then that many bytes. */
  sized16(field: string, max = MAX_RESPONSE_SIZE): Buffer {
    const n = this.u16(`${field}.size`);
    if (n > max) throw new TpmProtocolError(`${this.what}: field '${field}' claims ${n} bytes, more than the maximum ${max}`, { field, size: n });
    return this.bytes(n, field);
  }

  /** u32 size then that many bytes (TPM 1.2 buffers). */
  sized32(field: string, max = MAX_RESPONSE_SIZE): Buffer {
    const n = this.u32(`${field}.size`);
    if (n > max) throw new TpmProtocolError(`${this.what}: field '${field}' claims ${n} bytes, more than the maximum ${max}`, { field, size: n });
    return this.bytes(n, field);
  }

  end(): void {
    if (this.offset !== this.buf.length) {
      throw new TpmProtocolError(`${this.what}: ${this.buf.length - this.offset} unexpected trailing byte(s) after offset ${this.offset}`, {
        offset: this.offset,
        length: this.buf.length,
      });
    }
  }
}

/** Builds one command: header placeholder, fields, then the size patched in. */
export class CommandWriter {
  private readonly parts: number[] = [];

  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }

  u16(v: number): this {
    this.parts.push((v >>> 8) & 0xff, v & 0xff);
    return this;
  }

  u32(v: number): this {
    this.parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    return this;
  }

  bytes(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }

  sized16(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  get length(): number {
    return this.parts.length;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.parts);
  }
}

/** Frames a command: tag, total size, command code / ordinal, body. */
export function frameCommand(tag: number, code: number, body: Uint8Array = new Uint8Array()): Buffer {
  const w = new CommandWriter().u16(tag).u32(HEADER_SIZE + body.length).u32(code).bytes(body);
  return w.toBuffer();
}

export interface ResponseHeader {
  tag: number;
  size: number;
  code: number;
}

/**
 * Reads the size a response announces, from its first 6 bytes; null while fewer have arrived.
 * Throws on a size that cannot be a TPM response, so a garbage stream fails fast.
 */
export function announcedSize(prefix: Uint8Array): number | null {
  if (prefix.length < 6) return null;
  const size = ((prefix[2]! << 24) | (prefix[3]! << 16) | (prefix[4]! << 8) | prefix[5]!) >>> 0;
  if (size < HEADER_SIZE || size > MAX_RESPONSE_SIZE) {
    throw new TpmProtocolError(`response announces an impossible size ${size} (must be ${HEADER_SIZE}..${MAX_RESPONSE_SIZE})`, {
      size,
      prefix: Buffer.from(prefix.subarray(0, 10)).toString('hex'),
    });
  }
  return size;
}

/** Parses the header of a complete response and checks its tag and size against the buffer. */
export function parseHeader(buf: Uint8Array, what: string, allowedTags: readonly number[]): { header: ResponseHeader; reader: ByteReader } {
  const reader = new ByteReader(buf, what);
  const tag = reader.u16('tag');
  const size = reader.u32('responseSize');
  const code = reader.u32('responseCode');
  if (!allowedTags.includes(tag)) {
    throw new TpmProtocolError(`${what}: unexpected response tag 0x${tag.toString(16).padStart(4, '0')}`, { tag });
  }
  if (size !== buf.length) {
    throw new TpmProtocolError(`${what}: response size field says ${size} bytes but ${buf.length} were received`, { size, length: buf.length });
  }
  return { header: { tag, size, code }, reader };
}

/** Printable ASCII from a fixed-width TPM string (vendor IDs), dropping NULs and padding. */
export function asciiField(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0) continue;
    out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?';
  }
  return out.trim();
}
