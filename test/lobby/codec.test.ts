import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import { decodeMessage, encodeMessage } from '../../src/fronts/lobby/codec.js';

describe('lobby codec', () => {
  it("decodes Orion's README example", () => {
    expect(decodeMessage('client_registered:eyJ0b2tlbiI6IjEyMyJ9')).toEqual({
      ok: true,
      method: 'client_registered',
      payload: { token: '123' },
    });
  });

  it('encodes standard padded base64 of UTF-8 JSON', () => {
    expect(encodeMessage('client_registered', { token: '123' })).toBe('client_registered:eyJ0b2tlbiI6IjEyMyJ9');
    expect(encodeMessage('ptpMediation_success', {})).toBe('ptpMediation_success:e30=');
    const encoded = encodeMessage('m', { text: 'héllo ✓' });
    expect(Buffer.from(encoded.slice(2), 'base64').toString('utf8')).toBe('{"text":"héllo ✓"}');
  });

  it('decodes UTF-8 bytes as well as text', () => {
    expect(decodeMessage(Buffer.from('ptpMediation_connect:eyJ0b2tlbiI6IjEyMyJ9'))).toMatchObject({ ok: true, payload: { token: '123' } });
  });

  it('tolerates surrounding whitespace after the separator (a trailing newline from a shell)', () => {
    expect(decodeMessage('m:e30=\n')).toMatchObject({ ok: true, payload: {} });
  });

  it.each([
    ['', 'no_separator'],
    ['nocolon', 'no_separator'],
    [':e30=', 'bad_method'],
    ['bad method:e30=', 'bad_method'],
    [`${'m'.repeat(65)}:e30=`, 'bad_method'],
    ['m:e30', 'bad_base64'],
    ['m:e3-=', 'bad_base64'],
    ['m:', 'bad_json'],
    [`m:${Buffer.from('nope').toString('base64')}`, 'bad_json'],
    [`m:${Buffer.from('[1]').toString('base64')}`, 'not_an_object'],
    [`m:${Buffer.from('null').toString('base64')}`, 'not_an_object'],
    [`m:${Buffer.from('"s"').toString('base64')}`, 'not_an_object'],
    [`m:${Buffer.from([0x22, 0xff, 0x22]).toString('base64')}`, 'not_utf8'],
  ])('refuses %j as %s', (input, error) => {
    expect(decodeMessage(input)).toEqual({ ok: false, error });
  });

  it('refuses invalid UTF-8 bytes and input over the limit', () => {
    expect(decodeMessage(Buffer.from([0x6d, 0x3a, 0xff]))).toEqual({ ok: false, error: 'not_utf8' });
    expect(decodeMessage('m:' + 'A'.repeat(100), { maxBytes: 50 })).toEqual({ ok: false, error: 'too_long' });
    expect(decodeMessage(Buffer.alloc(100, 0x41), { maxBytes: 50 })).toEqual({ ok: false, error: 'too_long' });
  });

  it('survives deeply nested JSON within the limit', () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    expect(decodeMessage(`m:${Buffer.from(deep).toString('base64')}`).ok).toBe(false);
    const deepObject = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    expect(decodeMessage(`m:${Buffer.from(deepObject).toString('base64')}`).ok).toBe(true);
  });
});

describe('lobby codec properties', () => {
  const method = fc.stringMatching(/^[A-Za-z0-9_]{1,64}$/);
  const payload = fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 });

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (input) => {
        const result = decodeMessage(input);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: runs(2000) },
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
        const result = decodeMessage(input);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: runs(2000) },
    );
  });

  it('never throws on a valid method followed by arbitrary base64 text', () => {
    fc.assert(
      fc.property(method, fc.base64String({ maxLength: 200 }), (m, b64) => {
        const result = decodeMessage(`${m}:${b64}`);
        if (result.ok) expect(result.method).toBe(m);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('round-trips encode then decode, for text and for bytes', () => {
    fc.assert(
      fc.property(method, payload, (m, p) => {
        const encoded = encodeMessage(m, p);
        const expected = JSON.parse(JSON.stringify(p)) as unknown;
        expect(decodeMessage(encoded)).toEqual({ ok: true, method: m, payload: expected });
        expect(decodeMessage(Buffer.from(encoded, 'utf8'))).toEqual({ ok: true, method: m, payload: expected });
      }),
      { numRuns: runs(1000) },
    );
  });
});
