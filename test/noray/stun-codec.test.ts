// The STUN codec alone: RFC 5769's test vectors, and properties over arbitrary bytes (never
// throws, answers only well-formed Binding requests, answers are small and are never answered).
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { URL_ALPHABET } from '../../src/config/options/noray.js';
import {
  classifyStun,
  decodeBindingSuccess,
  encodeBindingRequest,
  encodeBindingSuccess,
  HEADER_BYTES,
  MAGIC_COOKIE,
  MAX_REQUEST_BYTES,
  MAX_RESPONSE_BYTES,
} from '../../src/core/stun.js';
import { runs } from '../helpers/fuzz.js';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
// RFC 5769 2.2 / 2.3: the transaction id and mapped addresses of the sample responses.
const RFC5769_ID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae');
const RFC5769_V4_ATTR = hex('00 20 00 08 00 01 a1 47 e1 12 a6 43');
const RFC5769_V6_ATTR = hex('00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9');

function message(type: number, attributes: Buffer, id: Uint8Array = RFC5769_ID): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(attributes.length, 2);
  head.writeUInt32BE(MAGIC_COOKIE, 4);
  head.set(id, 8);
  return Buffer.concat([head, attributes]);
}

function attribute(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(4 + value.length + ((4 - (value.length % 4)) % 4));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

const same = (a: string, b: string) => ipaddr.parse(a).toNormalizedString() === ipaddr.parse(b).toNormalizedString();

describe('STUN codec', () => {
  it('encodes XOR-MAPPED-ADDRESS exactly as RFC 5769 (IPv4 and IPv6)', () => {
    const v4 = encodeBindingSuccess(RFC5769_ID, { address: '192.0.2.1', port: 32853 });
    expect(v4.subarray(0, 8)).toEqual(hex('01 01 00 0c 21 12 a4 42'));
    expect(v4.subarray(8, 20)).toEqual(RFC5769_ID);
    expect(v4.subarray(20)).toEqual(RFC5769_V4_ATTR);
    const v6 = encodeBindingSuccess(RFC5769_ID, { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 });
    expect(v6.subarray(20)).toEqual(RFC5769_V6_ATTR);
    expect(v6.length).toBe(MAX_RESPONSE_BYTES);
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: answered as the IPv4 address it is.
    expect(encodeBindingSuccess(RFC5769_ID, { address: '::ffff:192.0.2.1', port: 32853 })).toEqual(v4);
  });

  it('decodes RFC 5769 responses, with other attributes around the address', () => {
    const software = attribute(0x8022, Buffer.from('test vector '));
    expect(decodeBindingSuccess(message(0x0101, Buffer.concat([software, RFC5769_V4_ATTR])), RFC5769_ID)).toEqual({ address: '192.0.2.1', port: 32853 });
    const v6 = decodeBindingSuccess(message(0x0101, Buffer.concat([software, RFC5769_V6_ATTR])), RFC5769_ID);
    expect(v6?.port).toBe(32853);
    expect(same(v6?.address ?? '::', '2001:db8:1234:5678:11:2233:4455:6677')).toBe(true);
    // Another transaction's answer, or a request, is not ours.
    expect(decodeBindingSuccess(message(0x0101, RFC5769_V4_ATTR), Buffer.alloc(12))).toBeNull();
    expect(decodeBindingSuccess(message(0x0001, RFC5769_V4_ATTR), RFC5769_ID)).toBeNull();
  });

  it('answers plain Binding requests and those with comprehension-optional attributes or an empty CHANGE-REQUEST', () => {
    const request = encodeBindingRequest(RFC5769_ID);
    expect(classifyStun(request)).toEqual({ kind: 'binding_request', transactionId: RFC5769_ID });
    const optional = message(0x0001, Buffer.concat([attribute(0x8022, Buffer.from('abc')), attribute(0x8028, Buffer.alloc(4))]));
    expect(classifyStun(optional).kind).toBe('binding_request');
    expect(classifyStun(message(0x0001, attribute(0x0003, Buffer.alloc(4)))).kind).toBe('binding_request');
  });

  it('refuses what it must not answer, saying why', () => {
    const reason = (m: Buffer) => {
      const parsed = classifyStun(m);
      return parsed.kind === 'refused' ? parsed.reason : parsed.kind;
    };
    expect(reason(message(0x0101, RFC5769_V4_ATTR))).toBe('not_request'); // success response
    expect(reason(message(0x0111, Buffer.alloc(0)))).toBe('not_request'); // error response
    expect(reason(message(0x0011, Buffer.alloc(0)))).toBe('not_request'); // indication
    expect(reason(message(0x0003, Buffer.alloc(0)))).toBe('not_binding'); // Allocate (TURN)
    expect(reason(message(0x0001, attribute(0x0006, Buffer.from('user'))))).toBe('unsupported'); // USERNAME
    expect(reason(message(0x0001, attribute(0x0003, hex('00000006'))))).toBe('unsupported'); // change IP and port
    const overrun = message(0x0001, hex('80220010 61626364'));
    expect(reason(overrun)).toBe('malformed');
    expect(reason(message(0x0001, attribute(0x8022, Buffer.alloc(MAX_REQUEST_BYTES))))).toBe('malformed');
    // No magic cookie (RFC 3489), a wrong length, too short: not STUN at all.
    const classic = encodeBindingRequest(RFC5769_ID);
    classic.writeUInt32BE(0x01020304, 4);
    expect(reason(classic)).toBe('not_stun');
    expect(reason(Buffer.concat([encodeBindingRequest(RFC5769_ID), Buffer.alloc(4)]))).toBe('not_stun');
    expect(reason(encodeBindingRequest(RFC5769_ID).subarray(0, 19))).toBe('not_stun');
  });

  it('mapped addresses round-trip for every IPv4 and IPv6 endpoint and transaction id', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), (address, port, id) => {
        const answer = encodeBindingSuccess(id, { address, port });
        expect(answer.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
        // An answer is never taken for something to answer: two servers cannot ping-pong.
        expect(classifyStun(answer)).toEqual({ kind: 'refused', reason: 'not_request' });
        const decoded = decodeBindingSuccess(answer, id);
        expect(decoded?.port).toBe(port);
        const expected = ipaddr.process(address).toString();
        expect(same(decoded?.address ?? '0.0.0.0', expected), `${address} -> ${decoded?.address}`).toBe(true);
      }),
      { numRuns: runs(500) },
    );
  });

  it('arbitrary bytes: never throws, and a Binding request is exactly a well-formed header plus attributes', () => {
    const stunLike = fc
      .tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ maxLength: 120 }), fc.uint8Array({ minLength: 12, maxLength: 12 }))
      .map(([type, body, id]) => message(type, Buffer.from(body.subarray(0, body.length - (body.length % 4))), id));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1500 }).map((b) => Buffer.from(b)), stunLike), (bytes) => {
        const parsed = classifyStun(bytes);
        if (parsed.kind !== 'binding_request') return;
        expect(bytes.readUInt16BE(0)).toBe(0x0001);
        expect(bytes.readUInt32BE(4)).toBe(MAGIC_COOKIE);
        expect(bytes.length).toBe(HEADER_BYTES + bytes.readUInt16BE(2));
        expect(bytes.length).toBeLessThanOrEqual(MAX_REQUEST_BYTES);
        expect(parsed.transactionId).toEqual(bytes.subarray(8, 20));
        decodeBindingSuccess(bytes, parsed.transactionId);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('Binding requests with any comprehension-optional attributes are answered; one comprehension-required attribute is refused', () => {
    const optional = fc.tuple(fc.integer({ min: 0x8000, max: 0xffff }), fc.uint8Array({ maxLength: 40 })).map(([type, value]) => attribute(type, Buffer.from(value)));
    const required = fc
      .tuple(fc.integer({ min: 0x0000, max: 0x7fff }).filter((type) => type !== 0x0003), fc.uint8Array({ maxLength: 40 }))
      .map(([type, value]) => attribute(type, Buffer.from(value)));
    fc.assert(
      fc.property(fc.array(optional, { maxLength: 8 }), required, fc.nat(8), fc.uint8Array({ minLength: 12, maxLength: 12 }), (attributes, extra, at, id) => {
        const request = message(0x0001, Buffer.concat(attributes), id);
        fc.pre(request.length <= MAX_REQUEST_BYTES - 48);
        expect(classifyStun(request)).toEqual({ kind: 'binding_request', transactionId: Buffer.from(id) });
        const withRequired = [...attributes];
        withRequired.splice(Math.min(at, withRequired.length), 0, extra);
        expect(classifyStun(message(0x0001, Buffer.concat(withRequired), id))).toEqual({ kind: 'refused', reason: 'unsupported' });
      }),
      { numRuns: runs(1000) },
    );
  });

  it('a PrivateID of the default charset is never STUN', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...URL_ALPHABET), minLength: 16, maxLength: 1024 }), (pid) => {
        expect(classifyStun(Buffer.from(pid)).kind).toBe('not_stun');
      }),
      { numRuns: runs(300) },
    );
  });
});
