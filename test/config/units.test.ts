import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import {
  ConfigValueError,
  parseBoolean,
  parseByteSize,
  parseCharset,
  parseDuration,
  parseEnum,
  parseHost,
  parseInteger,
  parseOptionalPort,
  parseOptionalPortList,
  parsePort,
  parsePortList,
} from '../../src/config/units.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Milliseconds per unit, written out independently of the code under test. */
const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: SECOND,
  m: MINUTE,
  h: HOUR,
  hr: HOUR,
  d: DAY,
  w: 7 * DAY,
  mo: 30 * DAY,
  yr: 365 * DAY,
};

const BYTE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  mb: 1024 * 1024,
  gb: 1024 * 1024 * 1024,
  tb: 1024 * 1024 * 1024 * 1024,
};

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function expectValueError(fn: () => unknown): ConfigValueError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValueError);
    expect((error as Error).message.length).toBeGreaterThan(0);
    return error as ConfigValueError;
  }
  throw new Error('expected a ConfigValueError, nothing was thrown');
}

/** Only a ConfigValueError may escape a parser; anything else fails the property. */
function onlyValueErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ConfigValueError)) throw error;
  }
}

/** Upper/lower case mixed at random, to check case-insensitivity. */
const randomCase = (text: string) =>
  fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length }).map((upper) =>
    [...text].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(''),
  );

describe('parseDuration', () => {
  it.each([
    ['1us', 0.001],
    ['500us', 0.5],
    ['1ms', 1],
    ['100ms', 100],
    ['1s', SECOND],
    ['30s', 30 * SECOND],
    ['1m', MINUTE],
    ['5m', 5 * MINUTE],
    ['1h', HOUR],
    ['4hr', 4 * HOUR],
    ['1d', DAY],
    ['1w', 7 * DAY],
    ['1mo', 30 * DAY],
    ['1yr', 365 * DAY],
    ['0s', 0],
    ['0', 0],
  ])('%s is %d ms', (raw, ms) => {
    expect(parseDuration(raw)).toBeCloseTo(ms, 9);
  });

  it('takes a bare number as seconds', () => {
    expect(parseDuration('30')).toBe(30 * SECOND);
    expect(parseDuration('1')).toBe(SECOND);
    expect(parseDuration('0.25')).toBe(250);
  });

  it('is case-insensitive', () => {
    expect(parseDuration('4HR')).toBe(4 * HOUR);
    expect(parseDuration('4Hr')).toBe(4 * HOUR);
    expect(parseDuration('100MS')).toBe(100);
    expect(parseDuration('2Mo')).toBe(60 * DAY);
    expect(parseDuration('1YR')).toBe(365 * DAY);
    expect(parseDuration('3US')).toBeCloseTo(0.003, 12);
  });

  it('accepts decimals and surrounding or inner spaces', () => {
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('.5s')).toBe(500);
    expect(parseDuration('0.5h')).toBe(30 * MINUTE);
    expect(parseDuration('2.5ms')).toBe(2.5);
    expect(parseDuration(' 30s ')).toBe(30 * SECOND);
    expect(parseDuration('30 s')).toBe(30 * SECOND);
  });

  it('tells minutes (m) from months (mo) and milliseconds (ms)', () => {
    expect(parseDuration('1m')).toBe(MINUTE);
    expect(parseDuration('1mo')).toBe(30 * DAY);
    expect(parseDuration('1ms')).toBe(1);
  });

  it.each([
    '',
    ' ',
    's',
    'abc',
    '10x',
    '10sec',
    '10 minutes',
    '-5s',
    '+5s',
    '1e3',
    '1.2.3s',
    '1.s',
    '10 s s',
    '5 5s',
    '1_000ms',
    '0x10',
    'Infinity',
    'NaN',
    `1${'0'.repeat(400)}s`,
  ])('rejects %j', (raw) => {
    expectValueError(() => parseDuration(raw));
  });

  it('names the accepted units when the unit is unknown', () => {
    expect(expectValueError(() => parseDuration('3fortnights')).message).toMatch(/unit "fortnights".*ms.*hr/);
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1b', 1],
    ['1kb', 1024],
    ['128kb', 131072],
    ['1mb', 1024 ** 2],
    ['4mb', 4 * 1024 ** 2],
    ['1gb', 1024 ** 3],
    ['1Gb', 1024 ** 3],
    ['4Gb', 4 * 1024 ** 3],
    ['1tb', 1024 ** 4],
    ['0b', 0],
  ])('%s is %d bytes', (raw, bytes) => {
    expect(parseByteSize(raw)).toBe(bytes);
  });

  it('takes a bare number as bytes', () => {
    expect(parseByteSize('100')).toBe(100);
    expect(parseByteSize('0')).toBe(0);
  });

  it('is case-insensitive', () => {
    for (const raw of ['1gb', '1Gb', '1GB', '1gB']) expect(parseByteSize(raw)).toBe(1024 ** 3);
    expect(parseByteSize('128KB')).toBe(131072);
    expect(parseByteSize('7B')).toBe(7);
  });

  it('accepts decimals (rounded to whole bytes) and spaces', () => {
    expect(parseByteSize('1.5kb')).toBe(1536);
    expect(parseByteSize('.5mb')).toBe(512 * 1024);
    expect(parseByteSize('0.5b')).toBe(1);
    expect(parseByteSize(' 128 kb ')).toBe(131072);
  });

  it.each(['', 'kb', 'abc', '1k', '1kib', '1xb', '1 kb b', '-1kb', '1e3b', '1,5kb', `1${'0'.repeat(400)}`])(
    'rejects %j',
    (raw) => {
      expectValueError(() => parseByteSize(raw));
    },
  );

  it('names the accepted units when the unit is unknown', () => {
    expect(expectValueError(() => parseByteSize('1kib')).message).toMatch(/unit "kib".*kb.*gb/);
  });
});

describe('parsePortList', () => {
  it('parses an inclusive range: 49152-51200 is 2049 ports', () => {
    const ports = parsePortList('49152-51200');
    expect(ports).toHaveLength(2049);
    expect(ports[0]).toBe(49152);
    expect(ports[ports.length - 1]).toBe(51200);
    expect(ports).toEqual(range(49152, 51200));
  });

  it('parses A+N as A to A+N inclusive', () => {
    expect(parsePortList('2048+3')).toEqual([2048, 2049, 2050, 2051]);
    expect(parsePortList('2048+0')).toEqual([2048]);
  });

  it('parses comma-separated single ports, with or without spaces', () => {
    expect(parsePortList('2048, 2049, 2050')).toEqual([2048, 2049, 2050]);
    expect(parsePortList('2048,2049,2050')).toEqual([2048, 2049, 2050]);
    expect(parsePortList('  2048 ,2049  ')).toEqual([2048, 2049]);
    expect(parsePortList('2048')).toEqual([2048]);
  });

  it('combines items, sorts and removes duplicates', () => {
    expect(parsePortList('3000-3002, 10, 2048+2, 5')).toEqual([5, 10, 2048, 2049, 2050, 3000, 3001, 3002]);
    expect(parsePortList('10-12, 11+3, 12, 5')).toEqual([5, 10, 11, 12, 13, 14]);
    expect(parsePortList('9, 9, 9')).toEqual([9]);
    expect(parsePortList('100 - 102')).toEqual([100, 101, 102]);
    expect(parsePortList('100 + 1')).toEqual([100, 101]);
  });

  it('accepts the edges of the port range', () => {
    expect(parsePortList('1')).toEqual([1]);
    expect(parsePortList('65535')).toEqual([65535]);
    expect(parsePortList('65534-65535')).toEqual([65534, 65535]);
    expect(parsePortList('65530+5')).toEqual(range(65530, 65535));
    expect(parsePortList('1-65535')).toHaveLength(65535);
  });

  it('rejects a reversed range', () => {
    expect(expectValueError(() => parsePortList('51200-49152')).message).toMatch(/51200-49152/);
  });

  it.each(['65536', '1-65536', '65535+1', '65000+1000', '99999', '1-99999999999999999999'])(
    'rejects %j (past 65535)',
    (raw) => {
      expectValueError(() => parsePortList(raw));
    },
  );

  it.each(['', ',', '2048,', ',2048', '2048,,2049', '2048, ,2049'])('rejects %j (empty item)', (raw) => {
    expect(expectValueError(() => parsePortList(raw)).message).toMatch(/empty/);
  });

  it.each(['0', '0-10', 'abc', '20-', '-20', '+5', '20+', '1.5', '2048 2049', '2048;2049', '-1', '10--12', 'off'])(
    'rejects %j',
    (raw) => {
      expectValueError(() => parsePortList(raw));
    },
  );
});

describe('parseOptionalPortList', () => {
  it('turns off with "off" in any case (and its synonyms)', () => {
    for (const raw of ['off', 'OFF', ' Off ', 'false', 'disabled']) expect(parseOptionalPortList(raw)).toBeNull();
  });

  it('parses a list otherwise', () => {
    expect(parseOptionalPortList('2048+1')).toEqual([2048, 2049]);
    expect(parseOptionalPortList('49152-51200')).toHaveLength(2049);
  });

  it('rejects garbage', () => {
    expectValueError(() => parseOptionalPortList('of'));
    expectValueError(() => parseOptionalPortList('1-0'));
  });
});

describe('parsePort and parseOptionalPort', () => {
  it('parses a port, 0 meaning any free port', () => {
    expect(parsePort('8890')).toBe(8890);
    expect(parsePort(' 80 ')).toBe(80);
    expect(parsePort('0')).toBe(0);
    expect(parsePort('65535')).toBe(65535);
  });

  it('switches off with "off" in any case', () => {
    for (const raw of ['off', 'OFF', 'Off', ' off ', 'false', 'disabled']) expect(parseOptionalPort(raw)).toBeNull();
    expect(parseOptionalPort('0')).toBe(0);
    expect(parseOptionalPort('8891')).toBe(8891);
  });

  it.each(['', 'abc', '65536', '-1', '1.5', '80 81', '8890x', 'of', 'on', '1e3'])('rejects %j', (raw) => {
    expectValueError(() => parsePort(raw));
    expectValueError(() => parseOptionalPort(raw));
  });

  it('names the bad text', () => {
    expect(expectValueError(() => parseOptionalPort('abc')).message).toContain('abc');
  });
});

describe('parseInteger', () => {
  it('parses integers inside the bounds, inclusive', () => {
    expect(parseInteger('21', 4, 256)).toBe(21);
    expect(parseInteger('4', 4, 256)).toBe(4);
    expect(parseInteger('256', 4, 256)).toBe(256);
    expect(parseInteger(' 7 ', 0, 10)).toBe(7);
    expect(parseInteger('-5', -10, 10)).toBe(-5);
  });

  it.each([
    ['3', 4, 256],
    ['257', 4, 256],
    ['1.5', 0, 10],
    ['abc', 0, 10],
    ['', 0, 10],
    ['1e2', 0, 1000],
    ['0x10', 0, 100],
    ['5 5', 0, 100],
  ])('rejects %j in %d..%d', (raw, min, max) => {
    expectValueError(() => parseInteger(raw, min, max));
  });

  it('names the bounds', () => {
    expect(expectValueError(() => parseInteger('3', 4, 256)).message).toMatch(/4 to 256/);
  });
});

describe('parseBoolean', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'Yes', 'on', ' on '])('%j is true', (raw) => {
    expect(parseBoolean(raw)).toBe(true);
  });
  it.each(['false', 'False', '0', 'no', 'NO', 'off'])('%j is false', (raw) => {
    expect(parseBoolean(raw)).toBe(false);
  });
  it.each(['', 'maybe', '2', 'y', 'n', 'truee'])('rejects %j', (raw) => {
    expectValueError(() => parseBoolean(raw));
  });
});

describe('parseCharset', () => {
  it('keeps the distinct characters in their first order', () => {
    expect(parseCharset('abc')).toBe('abc');
    expect(parseCharset('aabbcab')).toBe('abc');
    expect(parseCharset('0123456789')).toBe('0123456789');
  });

  it('counts characters, not UTF-16 units', () => {
    expect(parseCharset('😀😃😀')).toBe('😀😃');
    expectValueError(() => parseCharset('😀😀'));
  });

  it.each(['', 'a', 'aaaa', 'a b', 'ab\t', 'ab\n', 'ab\r'])('rejects %j', (raw) => {
    expectValueError(() => parseCharset(raw));
  });

  it('accepts up to 256 distinct characters (one random byte each), not more', () => {
    const chars = (n: number) => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x100 + i)).join('');
    expect([...parseCharset(chars(256))]).toHaveLength(256);
    expectValueError(() => parseCharset(chars(257)));
  });
});

describe('parseEnum and parseHost', () => {
  const level = parseEnum(['silent', 'info', 'debug'] as const);

  it('matches case-insensitively and rejects others, listing the allowed values', () => {
    expect(level('INFO')).toBe('info');
    expect(level(' debug ')).toBe('debug');
    expect(expectValueError(() => level('verbose')).message).toContain('silent, info, debug');
  });

  it('takes a host name or address, trimmed', () => {
    expect(parseHost(' 127.0.0.1 ')).toBe('127.0.0.1');
    expect(parseHost('::')).toBe('::');
    expect(parseHost('example.org')).toBe('example.org');
    expectValueError(() => parseHost(''));
    expectValueError(() => parseHost('   '));
    expectValueError(() => parseHost('a b'));
  });
});

describe('properties', () => {
  const parsers: Array<[string, (raw: string) => unknown]> = [
    ['parseDuration', parseDuration],
    ['parseByteSize', parseByteSize],
    ['parsePortList', parsePortList],
    ['parseOptionalPortList', parseOptionalPortList],
    ['parsePort', parsePort],
    ['parseOptionalPort', parseOptionalPort],
    ['parseInteger', (raw) => parseInteger(raw, 0, 100)],
    ['parseBoolean', parseBoolean],
    ['parseCharset', parseCharset],
    ['parseHost', parseHost],
    ['parseEnum', parseEnum(['a', 'b'])],
  ];

  /** Strings made of the grammar's own characters: far more likely to get deep into a parser. */
  const grammarish = fc.string({
    unit: fc.constantFrom(...'0123456789.,-+ \t kKmMgGtTbBsSuUhHrRdDwWoOyYpfnx'.split('')),
    maxLength: 24,
  });

  it.each(parsers)('%s throws nothing but ConfigValueError on any string', (_name, parse) => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), grammarish), (raw) => {
        onlyValueErrors(() => parse(raw));
      }),
      { numRuns: runs(500) },
    );
  });

  it('numbers parsed from any string are finite and not negative', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), grammarish), (raw) => {
        for (const parse of [parseDuration, parseByteSize]) {
          try {
            const value = parse(raw);
            expect(Number.isFinite(value)).toBe(true);
            expect(value).toBeGreaterThanOrEqual(0);
          } catch (error) {
            if (!(error instanceof ConfigValueError)) throw error;
          }
        }
      }),
      { numRuns: runs(500) },
    );
  });

  it('a formatted duration parses back to its milliseconds', () => {
    const unit = fc.constantFrom(...Object.keys(DURATION_UNITS)).chain((u) => randomCase(u).map((text) => [u, text] as const));
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), unit, fc.constantFrom('', ' '), (n, [u, text], gap) => {
        expect(parseDuration(`${n}${gap}${text}`)).toBe(n * (DURATION_UNITS[u] as number));
      }),
    );
    // Bare numbers are seconds; microseconds are thousandths of a millisecond.
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), (n) => {
        expect(parseDuration(String(n))).toBe(n * SECOND);
        expect(parseDuration(`${n}us`)).toBeCloseTo(n / 1000, 6);
      }),
    );
  });

  it('a formatted byte size parses back to its bytes', () => {
    const unit = fc.constantFrom(...Object.keys(BYTE_UNITS)).chain((u) => randomCase(u).map((text) => [u, text] as const));
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), unit, (n, [u, text]) => {
        expect(parseByteSize(`${n}${text}`)).toBe(n * (BYTE_UNITS[u] as number));
        expect(parseByteSize(String(n))).toBe(n);
      }),
    );
  });

  it('a formatted port list parses back to the sorted set of its ports', () => {
    const port = fc.integer({ min: 1, max: 65535 });
    const item = fc.oneof(
      port.map((p) => ({ text: String(p), ports: [p] })),
      fc
        .tuple(port, fc.nat({ max: 40 }))
        .filter(([from, span]) => from + span <= 65535)
        .map(([from, span]) => ({ text: `${from}-${from + span}`, ports: range(from, from + span) })),
      fc
        .tuple(port, fc.nat({ max: 40 }))
        .filter(([from, n]) => from + n <= 65535)
        .map(([from, n]) => ({ text: `${from}+${n}`, ports: range(from, from + n) })),
    );
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 8 }), fc.constantFrom(',', ', ', ' , '), (items, sep) => {
        const expected = [...new Set(items.flatMap((i) => i.ports))].sort((a, b) => a - b);
        const text = items.map((i) => i.text).join(sep);
        expect(parsePortList(text)).toEqual(expected);
        expect(parseOptionalPortList(text)).toEqual(expected);
      }),
    );
  });
});
