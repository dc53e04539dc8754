// The SDK's own parsers of server input, alone: the browser-safe lobby codec (checked against the
// server's), handshake statuses and connect addresses. Bounded, total, never throwing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeLobbyMessage, encodeLobbyMessage } from '../../src/client/index.js';
import { encodeStatus, parseAddress, parseStatus } from '../../src/client/node.js';
import { decodeMessage, encodeMessage } from '../../src/fronts/lobby/codec.js';

const json = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 });
const method = fc.stringMatching(/^[A-Za-z0-9_]{1,64}$/);

describe('lobby codec (browser-safe)', () => {
  it('writes exactly what the server writes, and reads what the server writes', () => {
    fc.assert(
      fc.property(method, json, (name, payload) => {
        expect(encodeLobbyMessage(name, payload)).toBe(encodeMessage(name, payload));
        const decoded = decodeLobbyMessage(encodeMessage(name, payload));
        expect(decoded).toEqual({ method: name, payload: JSON.parse(JSON.stringify(payload)) as unknown });
      }),
    );
  });

  it('handles non-ASCII text and large payloads (base64 in slices)', () => {
    const payload = { text: 'héllo ✓ 🎮'.repeat(5000) };
    expect(decodeLobbyMessage(encodeLobbyMessage('m', payload), 1024 * 1024)).toEqual({ method: 'm', payload });
  });

  it('never throws; accepts what the server decoder accepts, and nothing longer than its limit', () => {
    const frame = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.tuple(method, fc.base64String({ maxLength: 200 })).map(([name, data]) => `${name}:${data}`),
      fc.tuple(method, json).map(([name, payload]) => encodeMessage(name, payload)),
    );
    fc.assert(
      fc.property(frame, fc.integer({ min: 0, max: 400 }), (text, limit) => {
        const decoded = decodeLobbyMessage(text, limit);
        if (text.length > limit) expect(decoded).toBeNull();
        else {
          const server = decodeMessage(text, { maxBytes: limit });
          expect(decoded === null ? { ok: false } : { ok: true, method: decoded.method, payload: decoded.payload }).toEqual(
            server.ok ? { ok: true, method: server.method, payload: server.payload } : { ok: false },
          );
        }
      }),
    );
  });
});

describe('handshake status', () => {
  it('reads back what it writes, as netfox writes it', () => {
    expect(encodeStatus({ read: false, wrote: true, handshake: false })).toBe('$-w-');
    expect(encodeStatus({ read: true, wrote: true, handshake: true })).toBe('$rwx');
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), (read, wrote, handshake) => {
        expect(parseStatus(new TextEncoder().encode(encodeStatus({ read, wrote, handshake })))).toEqual({ read, wrote, handshake });
      }),
    );
  });

  it('is null for anything that is not a short $ status (game traffic on the same socket)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const status = parseStatus(bytes);
        if (bytes[0] !== 0x24 || bytes.length > 16) expect(status).toBeNull();
      }),
    );
  });
});

describe('connect addresses', () => {
  it('reads IPv4:PORT and nothing else', () => {
    expect(parseAddress('203.0.113.7:49152')).toEqual({ address: '203.0.113.7', port: 49152 });
    for (const bad of ['::ffff:1.2.3.4:5', '1.2.3.4', '1.2.3.4:0', '1.2.3.4:65536', 'host:80', '1.2.3.4:80 x']) expect(parseAddress(bad)).toBeNull();
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), (ip, port) => {
        expect(parseAddress(`${ip}:${port}`)).toEqual({ address: ip, port });
      }),
    );
    fc.assert(fc.property(fc.string({ maxLength: 64 }), (text) => void parseAddress(text)));
  });
});
