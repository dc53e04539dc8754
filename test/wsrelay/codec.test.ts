import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import { frameText, notice, parseLogin, stampClientId, stampClientIdByParsing, stampClientIdPerCharacter, targetOf } from '../../src/fronts/wsrelay/codec.js';

describe('parseLogin', () => {
  it.each([
    ['{"action":"login_server","server_code":"SNEK"}', { role: 'server', code: 'SNEK' }],
    ['{"action":"login_server","server_code":"SNEK","client_id":5,"x":null}', { role: 'server', code: 'SNEK' }],
    [' {"server_code":"","action":"login_server"} ', { role: 'server', code: '' }],
    [
      '{"action":"login_client","server_code":"SNEK","client_id":"467123746"}',
      { role: 'client', code: 'SNEK', clientId: '467123746' },
    ],
  ])('accepts %s', (text, login) => {
    expect(parseLogin(text)).toEqual(login);
  });

  it.each([
    '',
    'login',
    '[]',
    'null',
    '"login_server"',
    '{"action":"LOGIN_SERVER","server_code":"S"}',
    '{"action":"logout","server_code":"S"}',
    '{"server_code":"S"}',
    '{"action":"login_server"}',
    '{"action":"login_server","server_code":null}',
    '{"action":"login_server","server_code":["S"]}',
    '{"action":"login_client","server_code":"S"}',
    '{"action":"login_client","server_code":"S","client_id":467123746}',
    '{"action":"login_client","server_code":"S","client_id":null}',
  ])('refuses %s', (text) => {
    expect(parseLogin(text)).toBeNull();
  });
});

describe('frameText', () => {
  it('decodes UTF-8 and refuses anything else', () => {
    expect(frameText(new TextEncoder().encode('{"a":"é"}'))).toBe('{"a":"é"}');
    expect(frameText(Uint8Array.from([0xc3, 0x28]))).toBeNull();
    expect(frameText(Uint8Array.from([0xed, 0xa0, 0x80]))).toBeNull();
  });
});

describe('targetOf', () => {
  it.each([
    ['{"receiver_id":"467"}', { kind: 'id', id: '467' }],
    ['  \n{"x":1,"receiver_id":""}', { kind: 'id', id: '' }],
    ['{"receiver_id":467}', { kind: 'none' }],
    ['{"receiver_id":null}', { kind: 'none' }],
    ['{"receiver_id":["1"]}', { kind: 'none' }],
    ['{"receiver":"1"}', { kind: 'all' }],
    ['{"nested":{"receiver_id":"1"}}', { kind: 'all' }],
    ['[{"receiver_id":"1"}]', { kind: 'all' }],
    ['"receiver_id"', { kind: 'all' }],
    ['{"receiver_id":"1"', { kind: 'all' }],
    ['hello', { kind: 'all' }],
    ['', { kind: 'all' }],
    ['{"receiver\\u005fid":"1"}', { kind: 'id', id: '1' }],
    ['{"__proto__":{"receiver_id":"1"}}', { kind: 'all' }],
  ])('%s -> %o', (text, target) => {
    expect(targetOf(text)).toEqual(target);
  });
});

describe('stampClientId', () => {
  it('sets client_id, overwriting any the client sent', () => {
    const out = stampClientId('{"client_id":"forged","a":[1,{"b":null}]}', '42');
    expect(out.kind).toBe('object');
    expect(JSON.parse((out as { text: string }).text)).toEqual({ client_id: '42', a: [1, { b: null }] });
    expect(stampClientId('{}', 'x')).toEqual({ kind: 'object', text: '{"client_id":"x"}' });
  });

  it('keeps integers of any size and number text exact', () => {
    const out = stampClientId('{"a":18446744073709551616,"b":-9007199254740993,"c":1.10,"d":2E+3,"e":[123456789012345678901234567890]}', 'id');
    expect(out).toEqual({
      kind: 'object',
      text: '{"a":18446744073709551616,"b":-9007199254740993,"c":1.10,"d":2E+3,"e":[123456789012345678901234567890],"client_id":"id"}',
    });
  });

  it('handles duplicate keys like JSON.parse (last wins) and __proto__ as a plain key', () => {
    const dup = stampClientId('{"a":1,"a":2}', 'x');
    expect(JSON.parse((dup as { text: string }).text)).toEqual({ a: 2, client_id: 'x' });
    const proto = stampClientId('{"__proto__":{"polluted":true}}', 'x');
    expect(proto.kind).toBe('object');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((proto as { text: string }).text).toContain('"__proto__":{"polluted":true}');
  });

  it.each(['[1]', '"s"', '17', '1e999', 'true', 'null'])('reports %s as not an object', (text) => {
    expect(stampClientId(text, 'x')).toEqual({ kind: 'not-object' });
  });

  it.each(['', '{', '{"a":}', "{'a':1}", '{"a":1}x', 'NaN', '{"a":01}'])('reports %s as invalid', (text) => {
    expect(stampClientId(text, 'x')).toEqual({ kind: 'invalid' });
  });

  it('never throws on very deep nesting', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(() => stampClientId(deep, 'x')).not.toThrow();
    expect(() => stampClientId(`{"a":${deep}}`, 'x')).not.toThrow();
    expect(() => targetOf(`{"a":${deep}}`)).not.toThrow();
  });
});

describe('notice', () => {
  it('is exactly the CarParty notice', () => {
    expect(notice('connect', '467')).toBe('{"action":"connect","client_id":"467"}');
    expect(notice('disconnect', 'a"b')).toBe('{"action":"disconnect","client_id":"a\\"b"}');
  });
});

describe('wsrelay codec properties', () => {
  const anyText = fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'binary' }));

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(anyText, fc.string(), (text, id) => {
        parseLogin(text);
        targetOf(text);
        stampClientId(text, id);
      }),
      { numRuns: runs(3000) },
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (data) => {
        const text = frameText(data);
        if (text !== null) parseLogin(text);
      }),
      { numRuns: runs(2000) },
    );
  });

  it('stamping an object keeps every other field and adds the sender id', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), (object, id) => {
        const out = stampClientId(JSON.stringify(object), id);
        expect(out.kind).toBe('object');
        const parsed = JSON.parse((out as { text: string }).text) as Record<string, unknown>;
        expect(parsed).toEqual({ ...JSON.parse(JSON.stringify(object)), client_id: id });
      }),
      { numRuns: runs(1000) },
    );
  });

  it('keeps every integer exact', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), { maxLength: 8 }), (numbers) => {
        const text = `{"n":[${numbers.join(',')}]}`;
        expect(stampClientId(text, 'x')).toEqual({ kind: 'object', text: `{"n":[${numbers.join(',')}],"client_id":"x"}` });
      }),
      { numRuns: runs(1000) },
    );
  });

  it('routes by receiver_id only when it is a string', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue(), (object, receiver) => {
        const target = targetOf(JSON.stringify({ ...object, receiver_id: receiver }));
        expect(target).toEqual(typeof receiver === 'string' ? { kind: 'id', id: receiver } : { kind: 'none' });
      }),
      { numRuns: runs(1000) },
    );
  });

  it('finds a client message invalid exactly when JSON.parse does', () => {
    const broken = fc.oneof(
      fc.json().map((s) => s.slice(0, -1)),
      fc.json().map((s) => s.replace('"', '"\\')),
      fc.string({ unit: 'binary' }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.json(), broken), (text) => {
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        expect(stampClientId(text, 'x').kind !== 'invalid').toBe(valid);
      }),
      { numRuns: runs(3000) },
    );
  });
});

describe('stampClientId against the parsing reference', () => {
  const same = (text: string, id = 'x'): void => {
    expect(stampClientId(text, id)).toEqual(stampClientIdByParsing(text, id));
  };

  it.each([
    '{"client_id":"forged","a":1}',
    '{"a":1,"client_id":2,"b":3,"client_id":4}',
    '{"client_id":1,"client_id":2}',
    '{ "a" : [ 1 , { "b" : null } ] , "client_id" : { "x" : [ ] } }',
    '{"a":"\\u0041\\/\\n\\u001f\\u001F\\ud800"}',
    '{"client\\u005fid":"forged","z":0}',
    '{"b":1,"1":2,"0":3}',
    '{"n":{"b":1,"2":2}}',
    '{"a":1,"a":2}',
    '{"n":{"a":1,"a":2}}',
    '{"__proto__":{"a":1},"x":"\ud800"}',
    '{"4294967295":1,"a":2}',
    '{}',
    ' { } ',
    '{"a":{}}',
    '{"a":[]}',
    '[{"a":1}]',
    '{"a":01}',
    '{"a":1,}',
    '{"a":-}',
    '{"a":1.}',
    '{"a":1e}',
    '{"a":tru}',
    '{"a" 1}',
    `{"a":${'['.repeat(300)}${']'.repeat(300)}}`,
    `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
  ])('%s', (text) => same(text));

  it('agrees on random JSON values, compact and spaced', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), fc.integer({ min: 0, max: 2 }), (value, id, space) => {
        same(JSON.stringify(value, null, space), id);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          same(JSON.stringify({ ...value, client_id: value }, null, space), id);
        }
      }),
      { numRuns: runs(2000) },
    );
  });

  it('agrees on adversarial text', () => {
    const piece = fc.constantFrom('{', '}', '[', ']', ',', ':', ' ', '"', '\\', '"client_id"', '"a"', '"1"', '0', '-', '1', 'e', '.', 'true', 'null', '\\u00', '\ud800', '\udc00', '\n', '\u0001');
    const soup = fc.array(piece, { maxLength: 30 }).map((p) => p.join(''));
    const objecty = fc.tuple(soup, soup).map(([a, b]) => `{${a}"client_id":${b}}`);
    const mutated = fc.tuple(fc.json(), fc.nat(), fc.string({ maxLength: 3, unit: 'binary' })).map(([s, at, ins]) => {
      const k = at % (s.length + 1);
      return s.slice(0, k) + ins + s.slice(k);
    });
    fc.assert(
      fc.property(fc.oneof(soup, objecty, mutated, fc.string({ unit: 'binary' })), (text) => same(text)),
      { numRuns: runs(5000) },
    );
  });
});

describe('stampClientId against the same scan without array runs (per-character loop)', () => {
  const same = (text: string, id = 'x'): void => {
    expect(stampClientId(text, id)).toEqual(stampClientIdPerCharacter(text, id));
  };
  const scalar = fc.oneof(
    fc.double().map((d) => JSON.stringify(d)),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map(String),
    fc.constantFrom('0', '-0', '1.50', '2E+3', '1e-7', 'true', 'false', 'null', '""', '"a b"', '"\\u0041"', '"\\n"', '"é🎮"', '"\ud800"', '01', '1.', '-', '1e', 'tru', '"\u0001"'),
    fc.string({ unit: 'grapheme' }).map((t) => JSON.stringify(t)),
  );
  const array = fc.array(scalar, { maxLength: 40 }).chain((items) =>
    fc.constantFrom(',', ', ', ',,', ' ,').map((sep) => `[${items.join(sep)}]`),
  );

  it('agrees on arrays of scalars, valid or not, as members or nested', () => {
    fc.assert(
      fc.property(array, array, fc.string(), (a, b, id) => {
        same(`{"a":${a},"b":[${a},${b}],"client_id":${a}}`, id);
        same(a, id);
      }),
      { numRuns: runs(3000) },
    );
  });

  it('agrees on random JSON and random garbage', () => {
    const mutated = fc.tuple(fc.json(), fc.nat(), fc.constantFrom(',', '1', '"', '\\', ']', '[', ' ', 'e', '.', '-')).map(([s, at, ins]) => {
      const k = at % (s.length + 1);
      return s.slice(0, k) + ins + s.slice(k);
    });
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.jsonValue().map((v) => JSON.stringify({ v, w: [v, [v]] })), mutated, fc.string({ unit: 'binary' })), (text) => same(text)),
      { numRuns: runs(5000) },
    );
  });

  it('agrees on long runs (past one match of 4096 elements)', () => {
    const numbers = Array.from({ length: 10_000 }, (_, k) => (k % 3 === 0 ? `${9007199254740993n + BigInt(k)}` : `${k * 1.25}`));
    same(`{"n":[${numbers.join(',')}]}`);
    same(`{"n":[${numbers.join(',')},]}`);
    same(`{"n":[${numbers.join(',')}, "x\\/", {"client_id":1}]}`);
  });
});
