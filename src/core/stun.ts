// STUN Binding (RFC 8489) as far as a plain STUN server needs it: tell a Binding request apart
// from anything else, answer it with XOR-MAPPED-ADDRESS, and (for `noray doctor`) build a request
// and read the answer. Pure functions over bytes; the sockets are elsewhere.
//
//   header (20 bytes): type u16 | length u16 (bytes of attributes, a multiple of 4) |
//                      magic cookie 0x2112A442 u32 | transaction id (12 bytes)
//   attribute:         type u16 | length u16 | value, padded to a multiple of 4
import ipaddr from 'ipaddr.js';
import type { Endpoint } from './endpoint.js';

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
export const TRANSACTION_ID_BYTES = 12;
/**
 * Longest request looked at. A Binding request needs no attributes at all; clients add SOFTWARE
 * (at most 763 bytes) or FINGERPRINT. Anything longer is not answered.
 */
export const MAX_REQUEST_BYTES = 1024;
/** Longest answer ever sent: header + XOR-MAPPED-ADDRESS of an IPv6 address (4 + 20). */
export const MAX_RESPONSE_BYTES = HEADER_BYTES + 4 + 20;

const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const XOR_MAPPED_ADDRESS = 0x0020;
const MAPPED_ADDRESS = 0x0001;
/** RFC 5780: a client asking the answer to come from another address or port. */
const CHANGE_REQUEST = 0x0003;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;

/** Why a STUN-shaped datagram gets no answer. */
export type StunRefusal =
  /** A response, indication or error: answering those is how two servers would ping-pong. */
  | 'not_request'
  /** A request of another method than Binding. */
  | 'not_binding'
  /** Attribute lengths that do not add up, or longer than MAX_REQUEST_BYTES. */
  | 'malformed'
  /**
   * A comprehension-required attribute we do not implement (RFC 8489 would answer 420; we stay
   * silent), or a CHANGE-REQUEST asking for another address or port, which one socket cannot do.
   */
  | 'unsupported';

export type StunClassification =
  /** No STUN header (no magic cookie in place): some other protocol's datagram. */
  | { readonly kind: 'not_stun' }
  | { readonly kind: 'binding_request'; readonly transactionId: Buffer }
  | { readonly kind: 'refused'; readonly reason: StunRefusal };

const NOT_STUN: StunClassification = { kind: 'not_stun' };

/**
 * Whether a datagram carries a STUN header: the two top bits zero, the magic cookie at bytes 4..7,
 * a length field that is a multiple of 4 and matches the datagram. A PrivateID cannot look like
 * this with the default charset (byte 6 would be 0xA4, not ASCII).
 */
export function hasStunHeader(message: Uint8Array): boolean {
  if (message.length < HEADER_BYTES || ((message[0] ?? 0) & 0xc0) !== 0) return false;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const length = view.getUint16(2);
  return view.getUint32(4) === MAGIC_COOKIE && length % 4 === 0 && HEADER_BYTES + length === message.length;
}

/** What a datagram is for a STUN server: a Binding request to answer, something to ignore, or not STUN at all. */
export function classifyStun(message: Uint8Array): StunClassification {
  if (!hasStunHeader(message)) return NOT_STUN;
  if (message.length > MAX_REQUEST_BYTES) return { kind: 'refused', reason: 'malformed' };
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const type = view.getUint16(0);
  // The class bits (C1 at 0x0100, C0 at 0x0010): 00 is a request.
  if ((type & 0x0110) !== 0) return { kind: 'refused', reason: 'not_request' };
  if (type !== BINDING_REQUEST) return { kind: 'refused', reason: 'not_binding' };
  for (let offset = HEADER_BYTES; offset < message.length; ) {
    if (offset + 4 > message.length) return { kind: 'refused', reason: 'malformed' };
    const attribute = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    const end = offset + 4 + length;
    if (end > message.length) return { kind: 'refused', reason: 'malformed' };
    if (attribute === CHANGE_REQUEST) {
      if (length !== 4) return { kind: 'refused', reason: 'malformed' };
      // Flags "change IP" (0x4) and "change port" (0x2): we answer from where we were asked only.
      if ((view.getUint32(offset + 4) & 0x6) !== 0) return { kind: 'refused', reason: 'unsupported' };
    } else if (attribute < 0x8000) {
      return { kind: 'refused', reason: 'unsupported' };
    }
    offset = end + ((4 - (length % 4)) % 4);
    if (offset > message.length) return { kind: 'refused', reason: 'malformed' };
  }
  return { kind: 'binding_request', transactionId: Buffer.from(message.subarray(8, HEADER_BYTES)) };
}

function header(type: number, attributesLength: number, transactionId: Uint8Array): Buffer {
  if (transactionId.length !== TRANSACTION_ID_BYTES) throw new RangeError(`a transaction id is ${TRANSACTION_ID_BYTES} bytes`);
  const out = Buffer.alloc(HEADER_BYTES + attributesLength);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(attributesLength, 2);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  out.set(transactionId, 8);
  return out;
}

/** The XOR key of an address: the cookie for IPv4, cookie + transaction id for IPv6. */
function xorKey(transactionId: Uint8Array): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(MAGIC_COOKIE, 0);
  key.set(transactionId, 4);
  return key;
}

/** The 4 or 16 bytes of an address as sockets report it (`1.2.3.4`, `::ffff:1.2.3.4`, `fe80::1%eth0`). */
function addressBytes(address: string): number[] {
  const parsed = ipaddr.parse(address.replace(/%.*$/, ''));
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6;
    return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toByteArray() : v6.toByteArray();
  }
  return parsed.toByteArray();
}

/** The Binding success response telling `endpoint` (the request's source) what we saw. */
export function encodeBindingSuccess(transactionId: Uint8Array, endpoint: Endpoint): Buffer {
  const raw = addressBytes(endpoint.address);
  const key = xorKey(transactionId);
  const out = header(BINDING_SUCCESS, 4 + 4 + raw.length, transactionId);
  out.writeUInt16BE(XOR_MAPPED_ADDRESS, HEADER_BYTES);
  out.writeUInt16BE(4 + raw.length, HEADER_BYTES + 2);
  out.writeUInt8(0, HEADER_BYTES + 4);
  out.writeUInt8(raw.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6, HEADER_BYTES + 5);
  out.writeUInt16BE(endpoint.port ^ (MAGIC_COOKIE >>> 16), HEADER_BYTES + 6);
  raw.forEach((byte, i) => out.writeUInt8(byte ^ (key[i] ?? 0), HEADER_BYTES + 8 + i));
  return out;
}

/** A Binding request without attributes. */
export function encodeBindingRequest(transactionId: Uint8Array): Buffer {
  return header(BINDING_REQUEST, 0, transactionId);
}

/**
 * The mapped address of a Binding success response to `transactionId`, or null when the datagram
 * is anything else. XOR-MAPPED-ADDRESS wins; plain MAPPED-ADDRESS (old servers) is taken too.
 */
export function decodeBindingSuccess(message: Uint8Array, transactionId: Uint8Array): Endpoint | null {
  if (!hasStunHeader(message)) return null;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  if (view.getUint16(0) !== BINDING_SUCCESS) return null;
  if (!Buffer.from(message.subarray(8, HEADER_BYTES)).equals(Buffer.from(transactionId))) return null;
  let plain: Endpoint | null = null;
  for (let offset = HEADER_BYTES; offset + 4 <= message.length; ) {
    const attribute = view.getUint16(offset);
    const length = view.getUint16(offset + 2);
    if (offset + 4 + length > message.length) return null;
    const value = message.subarray(offset + 4, offset + 4 + length);
    if (attribute === XOR_MAPPED_ADDRESS) return readAddress(value, xorKey(transactionId));
    if (attribute === MAPPED_ADDRESS && plain === null) plain = readAddress(value, null);
    offset += 4 + length + ((4 - (length % 4)) % 4);
  }
  return plain;
}

function readAddress(value: Uint8Array, key: Buffer | null): Endpoint | null {
  const family = value[1];
  const size = family === FAMILY_IPV4 ? 4 : family === FAMILY_IPV6 ? 16 : 0;
  if (size === 0 || value.length !== 4 + size) return null;
  const port = (((value[2] ?? 0) << 8) | (value[3] ?? 0)) ^ (key === null ? 0 : MAGIC_COOKIE >>> 16);
  const bytes = Array.from(value.subarray(4), (byte, i) => byte ^ (key?.[i] ?? 0));
  return { address: ipaddr.fromByteArray(bytes).toString(), port };
}
