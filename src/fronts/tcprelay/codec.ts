// RoccoRelayServer framing, pure: a signed 32-bit big-endian length N, then N bytes of UTF-8 JSON.
// The decoder is an incremental state machine that never touches a socket and never throws.
import { isUtf8 } from 'node:buffer';

export const PAYLOAD_TYPES = ['INIT', 'MESSAGE', 'ERROR', 'CLOSE'] as const;
export type PayloadType = (typeof PAYLOAD_TYPES)[number];

export interface Frame {
  readonly payloadType: PayloadType;
  readonly source?: string;
  readonly destination?: string;
  readonly payload?: string;
}

export type DecodeErrorCode =
  | 'BAD_LENGTH'
  | 'FRAME_TOO_LARGE'
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'BAD_FIELD_TYPE'
  | 'UNKNOWN_PAYLOAD_TYPE';

export class DecodeError {
  constructor(
    readonly code: DecodeErrorCode,
    readonly message: string,
  ) {}
}

export interface DecodeResult {
  /** Frames completed by this chunk, in order (those before an error included). */
  readonly frames: Frame[];
  /** Set once the stream is broken; every later push returns it again and decodes nothing. */
  readonly error: DecodeError | null;
}

export interface DecoderOptions {
  /** Largest N accepted; a larger announced length is an error before any of the body is buffered. */
  readonly maxFrameSize: number;
}

const HEADER = 4;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export class FrameDecoder {
  private readonly header = new Uint8Array(HEADER);
  private headerFill = 0;
  /** Body being assembled across chunks; null while reading a header. */
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private failed: DecodeError | null = null;

  constructor(private readonly options: DecoderOptions) {}

  get error(): DecodeError | null {
    return this.failed;
  }

  /** Bytes held for a frame not yet complete (bounded by 4 + maxFrameSize). */
  get buffered(): number {
    return this.headerFill + this.bodyFill;
  }

  push(chunk: Uint8Array): DecodeResult {
    const frames: Frame[] = [];
    let at = 0;
    while (this.failed === null && at < chunk.length) {
      if (this.body === null) {
        const take = Math.min(HEADER - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFill);
        this.headerFill += take;
        at += take;
        if (this.headerFill < HEADER) break;
        this.headerFill = 0;
        const h = this.header;
        const length = ((h[0] as number) << 24) | ((h[1] as number) << 16) | ((h[2] as number) << 8) | (h[3] as number);
        if (length <= 0) {
          this.failed = new DecodeError('BAD_LENGTH', `frame length ${length} is not positive`);
          break;
        }
        if (length > this.options.maxFrameSize) {
          this.failed = new DecodeError('FRAME_TOO_LARGE', `frame length ${length} exceeds ${this.options.maxFrameSize}`);
          break;
        }
        if (chunk.length - at >= length) {
          // Whole body in this chunk: decode in place, no copy.
          this.emit(chunk.subarray(at, at + length), frames);
          at += length;
        } else {
          this.body = new Uint8Array(length);
          this.bodyFill = 0;
        }
      } else {
        const take = Math.min(this.body.length - this.bodyFill, chunk.length - at);
        this.body.set(chunk.subarray(at, at + take), this.bodyFill);
        this.bodyFill += take;
        at += take;
        if (this.bodyFill === this.body.length) {
          const body = this.body;
          this.body = null;
          this.bodyFill = 0;
          this.emit(body, frames);
        }
      }
    }
    return { frames, error: this.failed };
  }

  private emit(body: Uint8Array, frames: Frame[]): void {
    const result = decodeBody(body);
    if (result instanceof DecodeError) this.failed = result;
    else frames.push(result);
  }
}

/** One frame body (the N bytes after the length) to a frame. */
export function decodeBody(body: Uint8Array, scanFrom = SCAN_FROM_BYTES): Frame | DecodeError {
  // Small frames (the game traffic): the native JSON.parse is quicker than any scan in JavaScript.
  if (body.length < scanFrom) return decodeBodyByParsing(body);
  // Big ones: native checks first, UTF-8, then the common shape (an object of string or null
  // members) by a scan of its top-level members that leaves the payload's characters undecoded.
  if (!isUtf8(body)) return new DecodeError('INVALID_UTF8', 'frame is not valid UTF-8');
  return scanBody(body) ?? decodeBodyByParsing(body);
}

/** Bodies from this size on are scanned (their payload kept as bytes) rather than parsed whole. */
const SCAN_FROM_BYTES = 4096;

/** The reference path (and the fallback for other shapes): decode, JSON.parse, read the fields. */
export function decodeBodyByParsing(body: Uint8Array): Frame | DecodeError {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return new DecodeError('INVALID_UTF8', 'frame is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return new DecodeError('INVALID_JSON', 'frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new DecodeError('NOT_AN_OBJECT', 'frame is not a JSON object');
  }
  return toFrame(value as Record<string, unknown>);
}

/** Outside a string: JSON whitespace. */
const SPACE = /[ \t\n\r]*/y;
/**
 * One JSON string, validated: the body read as latin1 keeps every ASCII character in place and
 * turns each byte of a multi-byte UTF-8 character (already validated) into one character >= 0x80,
 * which JSON allows in strings as it allows the character itself.
 */
const STRING = /"[^"\\\u0000-\u001f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\u0000-\u001f]*)*"/y;

/** Members the frame reads; any other top-level key is ignored. */
const KEYS = new Set(['payloadType', 'source', 'destination', 'payload', 'payloadContent']);

/** A string member's token: its bytes from the opening to past the closing quote. */
interface Token {
  readonly start: number;
  readonly end: number;
}

/**
 * The frame of a body that is a JSON object whose top-level members are all strings or null, as
 * decodeBodyByParsing gives it, without decoding the payload; null for any other body (decodeBodyByParsing decides).
 */
function scanBody(body: Uint8Array): Frame | DecodeError | null {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const text = bytes.toString('latin1');
  const n = text.length;
  const skip = (at: number): number => {
    SPACE.lastIndex = at;
    SPACE.test(text);
    return SPACE.lastIndex;
  };
  const string = (at: number): number => {
    STRING.lastIndex = at;
    return STRING.test(text) ? STRING.lastIndex : -1;
  };
  // Last one wins, as with JSON.parse; null is a member set to null.
  const members = new Map<string, Token | null>();
  let i = skip(0);
  if (text.charCodeAt(i) !== 0x7b) return null;
  i = skip(i + 1);
  if (text.charCodeAt(i) !== 0x7d) {
    for (;;) {
      const keyEnd = string(i);
      if (keyEnd < 0) return null;
      const raw = text.slice(i + 1, keyEnd - 1);
      // Escaped keys are rare and short: JSON.parse decodes them (latin1 is enough to compare
      // with the ASCII names, which no other key decodes to).
      const key = raw.includes('\\') ? (JSON.parse(text.slice(i, keyEnd)) as string) : raw;
      i = skip(keyEnd);
      if (text.charCodeAt(i) !== 0x3a) return null;
      i = skip(i + 1);
      let value: Token | null;
      if (text.charCodeAt(i) === 0x22) {
        const end = string(i);
        if (end < 0) return null;
        value = { start: i, end };
        i = end;
      } else if (text.startsWith('null', i)) {
        value = null;
        i += 4;
      } else {
        return null;
      }
      if (KEYS.has(key)) members.set(key, value);
      i = skip(i);
      const c = text.charCodeAt(i);
      if (c === 0x7d) break;
      if (c !== 0x2c) return null;
      i = skip(i + 1);
    }
  }
  if (skip(i + 1) !== n) return null;

  const decode = (token: Token | null | undefined): string | undefined =>
    token === null || token === undefined ? undefined : (JSON.parse(bytes.toString('utf8', token.start, token.end)) as string);
  const type = decode(members.get('payloadType'));
  if (type === undefined) return new DecodeError('UNKNOWN_PAYLOAD_TYPE', 'payloadType is missing');
  if (!(PAYLOAD_TYPES as readonly string[]).includes(type)) {
    return new DecodeError('UNKNOWN_PAYLOAD_TYPE', 'payloadType is not INIT, MESSAGE, ERROR or CLOSE');
  }
  const token = members.get('payload') ?? members.get('payloadContent') ?? undefined;
  const out = frame(type as PayloadType, decode(members.get('source')), decode(members.get('destination')));
  if (token === undefined) return out;
  // The payload's JSON text is kept as it came when JSON.stringify would write it the same way
  // (only \" \\ \b \f \n \r \t escapes), so relaying it copies bytes; it is decoded if read.
  // Not copied: the body is the decoder's own or a slice of a chunk it was given (not reused).
  const json = bytes.subarray(token.start, token.end);
  const canonical = !hasEscape(json, '\\u') && !hasEscape(json, '\\/');
  let decoded: string | undefined;
  Object.defineProperty(out, 'payload', {
    enumerable: true,
    configurable: true,
    get: (): string => (decoded ??= JSON.parse(json.toString('utf8')) as string),
  });
  if (canonical) rawPayloads.set(out, json);
  return out;
}

/** Whether `escape` appears (possibly as the tail of an escaped backslash: then only a slower copy). */
function hasEscape(json: Buffer, escape: string): boolean {
  return json.indexOf(escape, 0, 'latin1') >= 0;
}

/** Payloads of decoded frames as JSON text exactly as JSON.stringify writes them. */
const rawPayloads = new WeakMap<Frame, Buffer>();

function toFrame(object: Record<string, unknown>): Frame | DecodeError {
  const type = field(object, 'payloadType');
  if (type instanceof DecodeError) return type;
  if (type === undefined) return new DecodeError('UNKNOWN_PAYLOAD_TYPE', 'payloadType is missing');
  if (!(PAYLOAD_TYPES as readonly string[]).includes(type)) {
    return new DecodeError('UNKNOWN_PAYLOAD_TYPE', 'payloadType is not INIT, MESSAGE, ERROR or CLOSE');
  }
  const source = field(object, 'source');
  if (source instanceof DecodeError) return source;
  const destination = field(object, 'destination');
  if (destination instanceof DecodeError) return destination;
  // The original's README calls it payloadContent; `payload` wins when both are present.
  const payload = field(object, 'payload');
  if (payload instanceof DecodeError) return payload;
  const payloadContent = field(object, 'payloadContent');
  if (payloadContent instanceof DecodeError) return payloadContent;
  return frame(type as PayloadType, source, destination, payload ?? payloadContent);
}

/** A string field; missing and explicit null are the same. */
function field(object: Record<string, unknown>, key: string): string | undefined | DecodeError {
  if (!Object.hasOwn(object, key)) return undefined;
  const value = object[key];
  if (value === null) return undefined;
  if (typeof value === 'string') return value;
  return new DecodeError('BAD_FIELD_TYPE', `${key} is not a string`);
}

/** Builds a frame without keys for absent fields. */
export function frame(
  payloadType: PayloadType,
  source?: string,
  destination?: string,
  payload?: string,
): Frame {
  const out: { payloadType: PayloadType; source?: string; destination?: string; payload?: string } = {
    payloadType,
  };
  if (source !== undefined) out.source = source;
  if (destination !== undefined) out.destination = destination;
  if (payload !== undefined) out.payload = payload;
  return out;
}

/** A frame on the wire: length, then the JSON object with keys in a fixed order and absent ones left out. */
export function encodeFrame(value: Frame): Buffer {
  const json = JSON.stringify(frame(value.payloadType, value.source, value.destination, value.payload));
  const length = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(HEADER + length);
  out.writeInt32BE(length, 0);
  out.write(json, HEADER, 'utf8');
  return out;
}

/**
 * `encodeFrame(frame(payloadType, source, destination, received.payload))`, byte for byte, but a
 * payload decoded by this codec is copied as the JSON text it came in rather than decoded and
 * written again.
 */
export function encodeRelayed(payloadType: PayloadType, source: string | undefined, destination: string | undefined, received: Frame): Buffer {
  const raw = rawPayloads.get(received);
  if (raw === undefined) return encodeFrame(frame(payloadType, source, destination, received.payload));
  // The same object without the payload, its closing brace replaced by the payload member.
  const head = JSON.stringify(frame(payloadType, source, destination));
  const headLength = Buffer.byteLength(head, 'utf8') - 1;
  const length = headLength + PAYLOAD_MEMBER.length + raw.length + 1;
  const out = Buffer.allocUnsafe(HEADER + length);
  out.writeInt32BE(length, 0);
  let at = HEADER + out.write(head, HEADER, headLength, 'utf8');
  at += PAYLOAD_MEMBER.copy(out, at);
  at += raw.copy(out, at);
  out[at] = 0x7d;
  return out;
}

const PAYLOAD_MEMBER = Buffer.from(',"payload":', 'latin1');
