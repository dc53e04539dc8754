import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import {
  decodeBody,
  decodeBodyByParsing,
  DecodeError,
  encodeFrame,
  encodeRelayed,
  frame,
  FrameDecoder,
  PAYLOAD_TYPES,
  type Frame,
} from '../../src/fronts/tcprelay/codec.js';

const MAX = 1024 * 1024;
const decoder = (maxFrameSize = MAX) => new FrameDecoder({ maxFrameSize });
const bytes = (...values: number[]) => Uint8Array.from(values);
const utf8 = (text: string) => new TextEncoder().encode(text);
function withHeader(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setInt32(0, body.length, false);
  out.set(body, 4);
  return out;
}

describe('FrameDecoder fixtures', () => {
  it('decodes one frame from exact bytes', () => {
    // {"payloadType":"INIT"} is 22 bytes.
    const input = Uint8Array.from([0, 0, 0, 22, ...utf8('{"payloadType":"INIT"}')]);
    expect(decoder().push(input)).toEqual({ frames: [{ payloadType: 'INIT' }], error: null });
  });

  it('treats explicit nulls as missing, ignores unknown keys, accepts payloadContent', () => {
    const d = decoder();
    const body = '{"payloadType":"MESSAGE","source":null,"destination":"b","payloadContent":"hi","x":{"y":[1]}}';
    expect(d.push(withHeader(utf8(body))).frames).toEqual([{ payloadType: 'MESSAGE', destination: 'b', payload: 'hi' }]);
    expect(d.push(withHeader(utf8('{"payloadType":"INIT","source":null,"destination":null,"payloadContent":null}'))).frames).toEqual([
      { payloadType: 'INIT' },
    ]);
    expect(d.push(withHeader(utf8('{"payloadType":"ERROR","payload":"p","payloadContent":"c"}'))).frames).toEqual([
      { payloadType: 'ERROR', payload: 'p' },
    ]);
    expect(d.push(withHeader(utf8('{"payloadType":"ERROR","payload":null,"payloadContent":"c"}'))).frames).toEqual([
      { payloadType: 'ERROR', payload: 'c' },
    ]);
  });

  it('holds a partial header and body until complete', () => {
    const d = decoder();
    const whole = withHeader(utf8('{"payloadType":"CLOSE"}'));
    expect(d.push(whole.subarray(0, 2))).toEqual({ frames: [], error: null });
    expect(d.buffered).toBe(2);
    expect(d.push(whole.subarray(2, 10))).toEqual({ frames: [], error: null });
    expect(d.push(whole.subarray(10))).toEqual({ frames: [{ payloadType: 'CLOSE' }], error: null });
    expect(d.buffered).toBe(0);
  });

  it('decodes many frames from one chunk', () => {
    const one = withHeader(utf8('{"payloadType":"MESSAGE","destination":"d","payload":"p"}'));
    const chunk = new Uint8Array(one.length * 200);
    for (let i = 0; i < 200; i++) chunk.set(one, i * one.length);
    const { frames, error } = decoder().push(chunk);
    expect(error).toBeNull();
    expect(frames).toHaveLength(200);
  });

  it.each([
    ['BAD_LENGTH', bytes(0, 0, 0, 0)],
    ['BAD_LENGTH', bytes(0xff, 0xff, 0xff, 0xff)],
    ['BAD_LENGTH', bytes(0x80, 0, 0, 0)],
    ['FRAME_TOO_LARGE', bytes(0x7f, 0xff, 0xff, 0xff)],
    ['FRAME_TOO_LARGE', bytes(0, 0x10, 0, 1)],
    ['INVALID_UTF8', withHeader(bytes(0x22, 0xc3, 0x28, 0x22))],
    ['INVALID_UTF8', withHeader(bytes(0x22, 0xed, 0xa0, 0x80, 0x22))],
    ['INVALID_JSON', withHeader(utf8('{"payloadType":"INIT"'))],
    ['INVALID_JSON', withHeader(utf8('\ufeff{"payloadType":"INIT"}'))],
    ['NOT_AN_OBJECT', withHeader(utf8('[{"payloadType":"INIT"}]'))],
    ['NOT_AN_OBJECT', withHeader(utf8('null'))],
    ['NOT_AN_OBJECT', withHeader(utf8('"INIT"'))],
    ['BAD_FIELD_TYPE', withHeader(utf8('{"payloadType":"MESSAGE","destination":7}'))],
    ['BAD_FIELD_TYPE', withHeader(utf8('{"payloadType":"MESSAGE","payload":["x"]}'))],
    ['BAD_FIELD_TYPE', withHeader(utf8('{"payloadType":"MESSAGE","payloadContent":true}'))],
    ['BAD_FIELD_TYPE', withHeader(utf8('{"payloadType":"INIT","source":{}}'))],
    ['BAD_FIELD_TYPE', withHeader(utf8('{"payloadType":3}'))],
    ['UNKNOWN_PAYLOAD_TYPE', withHeader(utf8('{"payloadType":"PING"}'))],
    ['UNKNOWN_PAYLOAD_TYPE', withHeader(utf8('{"payloadType":"init"}'))],
    ['UNKNOWN_PAYLOAD_TYPE', withHeader(utf8('{"payloadType":null}'))],
    ['UNKNOWN_PAYLOAD_TYPE', withHeader(utf8('{}'))],
  ])('fails with %s', (code, input) => {
    const d = decoder();
    const { frames, error } = d.push(input);
    expect(frames).toEqual([]);
    expect(error).toBeInstanceOf(DecodeError);
    expect(error?.code).toBe(code);
  });

  it('refuses an oversize length from the header alone, buffering nothing', () => {
    const d = decoder(100);
    expect(d.push(bytes(0, 0, 0, 101)).error?.code).toBe('FRAME_TOO_LARGE');
    expect(d.buffered).toBe(0);
    expect(decoder(100).push(withHeader(new Uint8Array(100).fill(0x20))).error?.code).toBe('INVALID_JSON');
  });

  it('keeps frames before an error and stays failed afterwards', () => {
    const d = decoder();
    const good = withHeader(utf8('{"payloadType":"CLOSE"}'));
    const chunk = new Uint8Array([...good, 0, 0, 0, 0, ...good]);
    const first = d.push(chunk);
    expect(first.frames).toEqual([{ payloadType: 'CLOSE' }]);
    expect(first.error?.code).toBe('BAD_LENGTH');
    expect(d.push(good)).toEqual({ frames: [], error: first.error });
  });
});

describe('encodeFrame', () => {
  it('writes the length big-endian and keys in a fixed order, absent ones left out', () => {
    const encoded = encodeFrame({ payload: 'p', destination: 'd', payloadType: 'MESSAGE', source: 's' });
    const json = '{"payloadType":"MESSAGE","source":"s","destination":"d","payload":"p"}';
    expect([...encoded.subarray(0, 4)]).toEqual([0, 0, 0, json.length]);
    expect(encoded.subarray(4).toString()).toBe(json);
    expect(encodeFrame(frame('INIT', undefined, 'id')).subarray(4).toString()).toBe('{"payloadType":"INIT","destination":"id"}');
  });

  it('escapes a payload once: a"b arrives as a"b', () => {
    const encoded = encodeFrame(frame('MESSAGE', 's', 'd', 'a"b'));
    expect(encoded.subarray(4).toString()).toBe('{"payloadType":"MESSAGE","source":"s","destination":"d","payload":"a\\"b"}');
    expect(decodeBody(encoded.subarray(4))).toEqual({ payloadType: 'MESSAGE', source: 's', destination: 'd', payload: 'a"b' });
  });

  it('counts the length in UTF-8 bytes', () => {
    const encoded = encodeFrame(frame('MESSAGE', undefined, undefined, '🎮é'));
    expect(encoded.readInt32BE(0)).toBe(encoded.length - 4);
  });
});

const anyString = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }));
const anyFrame: fc.Arbitrary<Frame> = fc
  .record({
    payloadType: fc.constantFrom(...PAYLOAD_TYPES),
    source: fc.option(anyString, { nil: undefined }),
    destination: fc.option(anyString, { nil: undefined }),
    payload: fc.option(anyString, { nil: undefined }),
  })
  .map(({ payloadType, source, destination, payload }) => frame(payloadType, source, destination, payload));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe('FrameDecoder properties', () => {
  it('never throws on arbitrary bytes in arbitrary chunks, stays bounded and finishes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.integer({ min: 1, max: 512 }), (chunks, max) => {
        const d = decoder(max);
        for (const chunk of chunks) {
          const { error } = d.push(chunk);
          expect(d.buffered).toBeLessThanOrEqual(4 + max);
          if (error !== null) expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: runs(2000) },
    );
  });

  it('never throws on a valid length followed by arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (body) => {
        const { frames, error } = decoder().push(withHeader(body));
        expect(frames.length + (error === null ? 0 : 1)).toBe(1);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(fc.array(anyFrame, { minLength: 1, maxLength: 10 }), (frames) => {
        const { frames: out, error } = decoder().push(concat(frames.map((f) => encodeFrame(f))));
        expect(error).toBeNull();
        expect(out).toEqual(frames);
      }),
      { numRuns: runs(500) },
    );
  });

  it('gives the same frames however the stream is split', () => {
    fc.assert(
      fc.property(
        fc.array(anyFrame, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (frames, cuts) => {
          const stream = concat(frames.map((f) => encodeFrame(f)));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const d = decoder();
          const out: Frame[] = [];
          let from = 0;
          for (const point of [...points, stream.length]) {
            const result = d.push(stream.subarray(from, point));
            expect(result.error).toBeNull();
            out.push(...result.frames);
            from = point;
          }
          expect(out).toEqual(frames);
        },
      ),
      { numRuns: runs(500) },
    );
  });

  it('gives the same frames split at every byte boundary, and byte by byte', () => {
    const frames: Frame[] = [
      frame('INIT', 'ü-id'),
      frame('MESSAGE', 's', 'd', 'payload "quoted" 🎮'),
      frame('CLOSE'),
    ];
    const stream = concat(frames.map((f) => encodeFrame(f)));
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = decoder();
      const a = d.push(stream.subarray(0, cut));
      const b = d.push(stream.subarray(cut));
      expect([...a.frames, ...b.frames]).toEqual(frames);
    }
    const d = decoder();
    const out: Frame[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)).frames);
    expect(out).toEqual(frames);
  });
});

describe('decodeBody and encodeRelayed against the parsing reference', () => {
  /** A frame as a plain object (the decoded payload read), or the error. */
  const plain = (result: Frame | DecodeError): unknown =>
    result instanceof DecodeError ? result : { ...result };
  const same = (body: Uint8Array): void => {
    // The scan of big bodies, whatever the size (small ones are parsed).
    const fast = decodeBody(body, 0);
    const slow = decodeBodyByParsing(body);
    expect(plain(fast)).toEqual(plain(slow));
    if (!(fast instanceof DecodeError) && !(slow instanceof DecodeError)) {
      for (const type of ['MESSAGE', 'ERROR'] as const) {
        const reference = encodeFrame(frame(type, 'sender', fast.destination, slow.payload));
        expect(encodeRelayed(type, 'sender', fast.destination, fast)).toEqual(reference);
        expect(encodeRelayed(type, undefined, undefined, fast)).toEqual(encodeFrame(frame(type, undefined, undefined, slow.payload)));
      }
    }
  };

  it.each([
    '{"payloadType":"MESSAGE","destination":"d","payload":"p"}',
    ' { "payloadType" : "MESSAGE" , "payload" : "a\\"b\\\\c\\n\\u0041\\/\\u001f\\ud800" } ',
    '{"payloadType":"MESSAGE","payload":null,"payloadContent":"pc"}',
    '{"payloadType":"MESSAGE","payloadContent":"pc","payload":"p"}',
    '{"payloadType":"MESSAGE","payload":"1","payload":"2"}',
    '{"payload\\u0054ype":"MESSAGE","p\\u0061yload":"x"}',
    '{"payloadType":"MESSAGE","payload":"é🎮\\"","x":"é"}',
    '{"payloadType":"MESSAGE","payload":"\\\\u0041"}',
    '{"payloadType":"MESSAGE","payload":1}',
    '{"payloadType":"MESSAGE","x":{"payload":"y"},"payload":"z"}',
    '{"payloadType":"message","payload":"z"}',
    '{"payloadType":null}',
    '{}',
    '[]',
    '{"payloadType":"MESSAGE","payload":"a\tb"}',
    '{"payloadType":"MESSAGE","payload":"ab}',
    '{"payloadType":"MESSAGE","payload":"ab"}x',
    '{"payloadType":"MESSAGE","payload":"ab",}',
    '{"payloadType":"MESSAGE" "payload":"ab"}',
    '{"payloadType":"MESSAGE","payload":"\\x"}',
    '{"payloadType":"MESSAGE","payload":"\\u12"}',
    '{"payloadType":"MESSAGE","payload":nul}',
  ])('%s', (text) => same(utf8(text)));

  it('agrees on random frames, compact and spaced', () => {
    const member = fc.oneof(fc.constantFrom('payloadType', 'source', 'destination', 'payload', 'payloadContent'), fc.string());
    const value = fc.oneof(fc.constantFrom('MESSAGE', 'ERROR', 'INIT', 'CLOSE'), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.constant(null), fc.jsonValue());
    fc.assert(
      fc.property(fc.array(fc.tuple(member, value), { maxLength: 6 }), fc.integer({ min: 0, max: 2 }), (members, space) => {
        // Duplicate keys kept (JSON.stringify of an object could not write them).
        const inner = members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v, null, space)}`).join(space > 0 ? ' ,\n ' : ',');
        same(utf8(`{${inner}}`));
      }),
      { numRuns: runs(3000) },
    );
  });

  it('agrees on mutated frames and garbage', () => {
    const valid = fc.tuple(fc.string({ unit: 'binary' }), fc.string()).map(([p, d]) => JSON.stringify({ payloadType: 'MESSAGE', destination: d, payload: p }));
    const mutated = fc.tuple(valid, fc.nat(), fc.constantFrom('"', '\\', ',', ':', '}', ' ', 'u', '\\u', 'null', '\u0001', '{')).map(([s, at, ins]) => {
      const k = at % (s.length + 1);
      return s.slice(0, k) + ins + s.slice(k);
    });
    fc.assert(
      fc.property(fc.oneof(valid, mutated, fc.string({ unit: 'binary' })), (text) => same(utf8(text))),
      { numRuns: runs(3000) },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (body) => same(body)), { numRuns: runs(1000) });
  });
});
