import { describe, expect, it } from 'vitest';
import { URL_ALPHABET } from '../../src/config/options/noray.js';
import { maskSecret, randomIdGenerator, randomToken } from '../../src/core/ids.js';

/** Pearson's chi-square statistic of the character counts against a uniform distribution. */
function chiSquare(text: string, alphabet: string): number {
  const counts = new Map<string, number>([...alphabet].map((c) => [c, 0]));
  let total = 0;
  for (const c of text) {
    counts.set(c, (counts.get(c) ?? 0) + 1);
    total++;
  }
  const expected = total / counts.size;
  let sum = 0;
  for (const count of counts.values()) sum += (count - expected) ** 2 / expected;
  return sum;
}

describe('randomIdGenerator', () => {
  it.each([
    [21, URL_ALPHABET],
    [128, URL_ALPHABET],
    [1, 'ab'],
    [4, '0123456789'],
    [1000, 'xyz'],
  ])('makes ids of %d characters from the alphabet only', (length, alphabet) => {
    const next = randomIdGenerator(alphabet, length);
    const allowed = new Set(alphabet);
    for (let i = 0; i < 200; i++) {
      const id = next();
      expect(id).toHaveLength(length);
      expect([...id].filter((c) => !allowed.has(c))).toEqual([]);
    }
  });

  it('makes an empty id for length 0', () => {
    expect(randomIdGenerator('ab', 0)()).toBe('');
  });

  it('counts characters, not UTF-16 units, for an alphabet outside the BMP', () => {
    const alphabet = '😀😃😄😁';
    const id = randomIdGenerator(alphabet, 21)();
    const chars = [...id];
    expect(chars).toHaveLength(21);
    for (const c of chars) expect([...alphabet]).toContain(c);
  });

  it('does not repeat itself', () => {
    const next = randomIdGenerator(URL_ALPHABET, 21);
    const ids = new Set(Array.from({ length: 10_000 }, () => next()));
    expect(ids.size).toBe(10_000);
  });

  it('independent generators share nothing', () => {
    const a = randomIdGenerator(URL_ALPHABET, 21);
    const b = randomIdGenerator(URL_ALPHABET, 21);
    expect(a()).not.toBe(b());
  });

  // Chi-square critical values far in the tail (p < 1e-6), so the test is not flaky;
  // a modulo bias of the size rejection sampling avoids would still show up clearly.
  it.each([
    [URL_ALPHABET, 140],
    ['0123456789', 50],
    ['abc', 30],
    ['abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_!', 140],
  ])('draws characters uniformly from %j', (alphabet, critical) => {
    const next = randomIdGenerator(alphabet, 1000);
    const text = Array.from({ length: 300 }, () => next()).join('');
    expect(chiSquare(text, alphabet)).toBeLessThan(critical);
  });

  it('positions are uniform too (no character favoured at the start)', () => {
    const next = randomIdGenerator('ab', 8);
    const firstIsA = Array.from({ length: 20_000 }, () => next()).filter((id) => id.startsWith('a')).length;
    // Binomial(20000, 0.5): sd ~71; 6 sd either side.
    expect(Math.abs(firstIsA - 10_000)).toBeLessThan(430);
  });

  it('refuses alphabets it cannot draw from without bias', () => {
    expect(() => randomIdGenerator('a', 10)).toThrow(RangeError);
    expect(() => randomIdGenerator('', 10)).toThrow(RangeError);
    const big = Array.from({ length: 257 }, (_, i) => String.fromCodePoint(0x100 + i)).join('');
    expect(() => randomIdGenerator(big, 10)).toThrow(RangeError);
    expect(randomIdGenerator(big.slice(0, 256), 10)()).toHaveLength(10);
  });
});

describe('randomToken and maskSecret', () => {
  it('tokens are v4 UUIDs, all different', () => {
    const tokens = Array.from({ length: 1000 }, randomToken);
    for (const token of tokens) expect(token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(tokens).size).toBe(1000);
  });

  it('shows at most the first 4 characters of a secret and its length', () => {
    const secret = randomIdGenerator(URL_ALPHABET, 128)();
    const masked = maskSecret(secret);
    expect(masked).toBe(`${secret.slice(0, 4)}…(128)`);
    expect(masked).not.toContain(secret.slice(0, 5));
    expect(maskSecret('abcdef')).toBe('***');
    expect(maskSecret('')).toBe('***');
  });
});
