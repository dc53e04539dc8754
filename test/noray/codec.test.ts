import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../helpers/fuzz.js';
import { encodeCommand, isValidCustomOid, LineDecoder, parseCommand } from '../../src/fronts/noray/codec.js';

interface Decoded {
  lines: string[];
  error: string | null;
  /** `buffered` after each push. */
  buffered: number[];
}

/** Feeds the chunks in order, collecting every line; stops at the first error like the server does. */
function decode(max: number, chunks: readonly Uint8Array[]): Decoded {
  const decoder = new LineDecoder(max);
  const out: Decoded = { lines: [], error: null, buffered: [] };
  for (const chunk of chunks) {
    const result = decoder.push(Buffer.from(chunk));
    out.lines.push(...result.lines);
    out.buffered.push(decoder.buffered);
    if (!result.ok) {
      out.error = result.error;
      break;
    }
  }
  return out;
}

function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** Cuts `data` at the given offsets (sorted, deduplicated, clamped). */
function chop(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 0), data.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(data.subarray(start, point));
    start = point;
  }
  chunks.push(data.subarray(start));
  return chunks;
}

/** An independent model: split on LF, CRLF or CR, skip empty lines, fail at the first line over max bytes. */
function model(max: number, data: Uint8Array): { lines: string[]; error: string | null } {
  const lines: string[] = [];
  let current: number[] = [];
  for (const byte of data) {
    if (byte === 0x0a || byte === 0x0d) {
      if (current.length > max) return { lines, error: 'line_too_long' };
      if (current.length > 0) lines.push(Buffer.from(current).toString('utf8'));
      current = [];
    } else {
      current.push(byte);
      if (current.length > max) return { lines, error: 'line_too_long' };
    }
  }
  return { lines, error: null };
}

describe('LineDecoder', () => {
  describe('line endings', () => {
    it('splits on LF', () => {
      expect(decode(100, [bytes('register-host\necho hi\n')]).lines).toEqual(['register-host', 'echo hi']);
    });

    it('splits on CRLF, with no CR left in the line', () => {
      expect(decode(100, [bytes('register-host\r\necho hi\r\n')]).lines).toEqual(['register-host', 'echo hi']);
    });

    it('splits on a lone CR', () => {
      expect(decode(100, [bytes('register-host\recho hi\r')]).lines).toEqual(['register-host', 'echo hi']);
    });

    it('splits on a mix of all three', () => {
      expect(decode(100, [bytes('a\nb\r\nc\rd\n\re\r\r\nf\n')]).lines).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    });

    it('skips empty lines of every kind', () => {
      expect(decode(100, [bytes('\n\n\r\n\r\r\necho x\n\n\r\n')]).lines).toEqual(['echo x']);
      expect(decode(100, [bytes('\n\r\n\r')]).lines).toEqual([]);
      expect(decode(100, [bytes('')]).lines).toEqual([]);
    });

    it('keeps spaces and other bytes inside a line as they are', () => {
      expect(decode(100, [bytes('  echo  a\tb  \n')]).lines).toEqual(['  echo  a\tb  ']);
    });

    it('holds an unfinished line until its end arrives', () => {
      const decoder = new LineDecoder(100);
      expect(decoder.push(bytes('echo hel'))).toEqual({ ok: true, lines: [] });
      expect(decoder.buffered).toBe(8);
      expect(decoder.push(bytes('lo'))).toEqual({ ok: true, lines: [] });
      expect(decoder.buffered).toBe(10);
      expect(decoder.push(bytes('\n'))).toEqual({ ok: true, lines: ['echo hello'] });
      expect(decoder.buffered).toBe(0);
    });

    it('yields many lines from one chunk, in order', () => {
      const many = Array.from({ length: 1000 }, (_, i) => `echo ${i}`);
      const endings = ['\n', '\r\n', '\r'];
      const text = many.map((line, i) => line + endings[i % 3]).join('');
      expect(decode(100, [bytes(text)]).lines).toEqual(many);
    });

    it('decodes UTF-8', () => {
      expect(decode(100, [bytes('register-host Café-😀\n')]).lines).toEqual(['register-host Café-😀']);
    });

    it('accepts a Uint8Array view into a larger buffer', () => {
      const big = bytes('XXecho a\nYY');
      expect(decode(100, [big.subarray(2, 9)]).lines).toEqual(['echo a']);
    });
  });

  describe('segmentation', () => {
    const fixture = bytes('register-host\r\necho Café 😀\rconnect abc\n\n\r\nconnect-relay ⌘x\r\nlast\n');
    const expected = ['register-host', 'echo Café 😀', 'connect abc', 'connect-relay ⌘x', 'last'];

    it('the fixture has multi-byte characters and every kind of ending', () => {
      expect(fixture.length).toBeGreaterThan(new TextDecoder().decode(fixture).length);
      expect(decode(100, [fixture]).lines).toEqual(expected);
    });

    it('gives the same lines when split in two at every byte boundary', () => {
      for (let i = 0; i <= fixture.length; i++) {
        expect(decode(100, chop(fixture, [i])).lines, `split at ${i}`).toEqual(expected);
      }
    });

    it('gives the same lines when split in three at every pair of boundaries', () => {
      for (let i = 0; i <= fixture.length; i++) {
        for (let j = i; j <= fixture.length; j++) {
          expect(decode(100, chop(fixture, [i, j])).lines, `split at ${i}, ${j}`).toEqual(expected);
        }
      }
    });

    it('gives the same lines one byte at a time', () => {
      const single = [...fixture].map((b) => Uint8Array.of(b));
      expect(decode(100, single).lines).toEqual(expected);
    });

    it('a CRLF split between CR and LF is one ending, not an extra line', () => {
      expect(decode(100, [bytes('echo a\r'), bytes('\necho b\r'), bytes('\n')]).lines).toEqual(['echo a', 'echo b']);
    });

    it('a multi-byte character split across chunks is decoded whole', () => {
      const euro = bytes('€'); // e2 82 ac
      expect(euro).toHaveLength(3);
      const chunks = [bytes('echo '), euro.subarray(0, 1), euro.subarray(1, 2), Buffer.concat([euro.subarray(2), bytes('\n')])];
      expect(decode(100, chunks).lines).toEqual(['echo €']);
      const emoji = bytes('😀\n');
      expect(decode(100, [emoji.subarray(0, 2), emoji.subarray(2)]).lines).toEqual(['😀']);
    });

    it('does not keep a reference to the caller’s chunk for a partial line', () => {
      const decoder = new LineDecoder(100);
      const chunk = bytes('echo abc');
      decoder.push(chunk);
      chunk.fill(0x21); // the socket may reuse or the caller change the chunk
      expect(decoder.push(bytes('\n')).lines).toEqual(['echo abc']);
    });
  });

  describe('maximum line length', () => {
    const max = 16;
    const exactly = 'x'.repeat(max);
    const over = 'x'.repeat(max + 1);

    it('accepts a line of exactly max bytes in one chunk', () => {
      expect(decode(max, [bytes(`${exactly}\n`)])).toMatchObject({ lines: [exactly], error: null });
      expect(decode(max, [bytes(`${exactly}\r\n`)])).toMatchObject({ lines: [exactly], error: null });
    });

    it('rejects a line of max+1 bytes in one chunk', () => {
      expect(decode(max, [bytes(`${over}\n`)])).toMatchObject({ lines: [], error: 'line_too_long' });
    });

    it('rejects an unfinished line as soon as it passes max', () => {
      expect(decode(max, [bytes(over)])).toMatchObject({ lines: [], error: 'line_too_long' });
    });

    it('accepts exactly max bytes across chunks, holding max bytes at most', () => {
      const result = decode(max, [bytes(exactly.slice(0, 5)), bytes(exactly.slice(5)), bytes('\n')]);
      expect(result).toMatchObject({ lines: [exactly], error: null });
      expect(result.buffered).toEqual([5, max, 0]);
    });

    it('rejects max+1 bytes across chunks when the extra byte arrives', () => {
      const decoder = new LineDecoder(max);
      expect(decoder.push(bytes(exactly)).ok).toBe(true);
      expect(decoder.buffered).toBe(max);
      expect(decoder.push(bytes('x'))).toEqual({ ok: false, lines: [], error: 'line_too_long' });
      expect(decoder.buffered).toBe(0);
    });

    it('rejects max+1 bytes across chunks when only the line end arrives with it', () => {
      expect(decode(max, [bytes(over.slice(0, 3)), bytes(`${over.slice(3)}\n`)]).error).toBe('line_too_long');
    });

    it('counts bytes, not characters', () => {
      const twoByte = 'é'.repeat(max / 2); // max bytes
      expect(decode(max, [bytes(`${twoByte}\n`)])).toMatchObject({ lines: [twoByte], error: null });
      expect(decode(max, [bytes(`${twoByte}a\n`)]).error).toBe('line_too_long');
    });

    it('does not count the line ending', () => {
      expect(decode(max, [bytes(`${exactly}\r`), bytes('\n'), bytes(`${exactly}\r\n`)]).lines).toEqual([exactly, exactly]);
    });

    it('yields the good lines before the long one, then nothing ever again', () => {
      const decoder = new LineDecoder(max);
      expect(decoder.push(bytes(`echo a\necho b\n${over}\necho c\n`))).toEqual({
        ok: false,
        lines: ['echo a', 'echo b'],
        error: 'line_too_long',
      });
      expect(decoder.push(bytes('echo d\n'))).toEqual({ ok: false, lines: [], error: 'line_too_long' });
      expect(decoder.push(bytes('\n'))).toEqual({ ok: false, lines: [], error: 'line_too_long' });
      expect(decoder.buffered).toBe(0);
    });

    it('many short lines in a chunk longer than max are fine', () => {
      const text = 'echo 1\n'.repeat(100);
      expect(decode(max, [bytes(text)]).lines).toHaveLength(100);
    });
  });

  describe('properties', () => {
    const byteArb = fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) },
      { weight: 1, arbitrary: fc.constantFrom(0x0a, 0x0d, 0x20) },
    );
    const data = fc.array(byteArb, { maxLength: 300 }).map((a) => Uint8Array.from(a));
    const cuts = fc.array(fc.nat({ max: 300 }), { maxLength: 20 });
    const max = fc.integer({ min: 1, max: 64 });

    it('chopped anywhere, never throws and yields what one push of the whole yields', () => {
      fc.assert(
        fc.property(max, data, cuts, (m, d, c) => {
          const whole = decode(m, [d]);
          const chopped = decode(m, chop(d, c));
          expect(chopped.lines).toEqual(whole.lines);
          expect(chopped.error).toEqual(whole.error);
        }),
        { numRuns: runs(1000) },
      );
    });

    it('matches an independent model of the framing', () => {
      fc.assert(
        fc.property(max, data, cuts, (m, d, c) => {
          const result = decode(m, chop(d, c));
          expect({ lines: result.lines, error: result.error }).toEqual(model(m, d));
        }),
        { numRuns: runs(1000) },
      );
    });

    it('lines are never empty and never contain CR or LF', () => {
      fc.assert(
        fc.property(max, data, cuts, (m, d, c) => {
          for (const line of decode(m, chop(d, c)).lines) {
            expect(line.length).toBeGreaterThan(0);
            expect(line).not.toMatch(/[\r\n]/);
          }
        }),
      );
    });

    it('never holds more than max bytes', () => {
      fc.assert(
        fc.property(max, data, cuts, (m, d, c) => {
          for (const held of decode(m, chop(d, c)).buffered) expect(held).toBeLessThanOrEqual(m);
        }),
      );
    });

    it('text lines with any endings come back as they went in', () => {
      const lineText = fc
        .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
        .filter((s) => !/[\r\n]/.test(s));
      const ending = fc.constantFrom('\n', '\r\n', '\r', '\n\n', '\r\n\r\n');
      fc.assert(
        fc.property(fc.array(fc.tuple(lineText, ending), { maxLength: 20 }), cuts, (lines, c) => {
          const d = bytes(lines.map(([text, end]) => text + end).join(''));
          expect(decode(1024, chop(d, c))).toMatchObject({ lines: lines.map(([text]) => text), error: null });
        }),
      );
    });
  });
});

describe('parseCommand', () => {
  it('splits at the first space; the rest is the data, spaces and all', () => {
    expect(parseCommand('echo a b c')).toEqual({ name: 'echo', data: 'a b c' });
    expect(parseCommand('connect abcDEF')).toEqual({ name: 'connect', data: 'abcDEF' });
    expect(parseCommand('echo  two')).toEqual({ name: 'echo', data: ' two' });
    expect(parseCommand('echo ')).toEqual({ name: 'echo', data: '' });
  });

  it('no space: the whole line is the command, the data is empty', () => {
    expect(parseCommand('register-host')).toEqual({ name: 'register-host', data: '' });
    expect(parseCommand('x')).toEqual({ name: 'x', data: '' });
  });

  it('round-trips encodeCommand', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z-]{0,15}$/),
        fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s)),
        (name, data) => {
          const [line] = decode(1024, [bytes(encodeCommand(name, data))]).lines;
          expect(parseCommand(line as string)).toEqual({ name, data });
        },
      ),
    );
  });
});

describe('encodeCommand', () => {
  it('ends with LF only', () => {
    expect(encodeCommand('set-oid', 'abc')).toBe('set-oid abc\n');
    expect(encodeCommand('connect', '1.2.3.4:5678')).toBe('connect 1.2.3.4:5678\n');
    expect(encodeCommand('connect-relay', 49152)).toBe('connect-relay 49152\n');
    expect(encodeCommand('connect-relay', 0)).toBe('connect-relay 0\n');
  });

  it('has no data part for no or empty data', () => {
    expect(encodeCommand('ping')).toBe('ping\n');
    expect(encodeCommand('ping', '')).toBe('ping\n');
  });

  it('replaces CR and LF in the data (and name) so one command is one line', () => {
    expect(encodeCommand('error', 'bad\r\nthing\rhere\nnow')).toBe('error bad  thing here now\n');
    expect(encodeCommand('echo', 'x\r\nset-pid stolen')).toBe('echo x  set-pid stolen\n');
    expect(encodeCommand('a\nb', 'c')).toBe('a b c\n');
  });

  it('never produces a CR, and exactly one LF, at the end', () => {
    fc.assert(
      fc.property(fc.string(), fc.oneof(fc.string({ unit: 'binary' }), fc.integer()), (name, data) => {
        const line = encodeCommand(name, data);
        expect(line).not.toContain('\r');
        expect(line.indexOf('\n')).toBe(line.length - 1);
      }),
    );
  });
});

describe('isValidCustomOid', () => {
  it.each(['a', 'my-lobby', 'Lobby_1', 'Café', '😀', 'a'.repeat(64), '😀'.repeat(64), 'a:b', 'x.y/z'])('accepts %j', (id) => {
    expect(isValidCustomOid(id)).toBe(true);
  });

  it.each([
    '',
    'a'.repeat(65),
    '😀'.repeat(65),
    'a b',
    ' a',
    'a\t',
    'a\r',
    'a\n',
    'a\u0000',
    'a\u007f',
    'a\u00a0b',
    'a\u200bb',
    '\ud800',
    // Not in NFKC form: lookalikes of other ids.
    '\uff4c\uff4f\uff42\uff42\uff59',
    '\ufb01sh',
    'Cafe\u0301',
    'x\u00b2',
    // Invalid UTF-8 on the wire decodes to U+FFFD.
    'a\ufffdb',
  ])('rejects %j', (id) => {
    expect(isValidCustomOid(id)).toBe(false);
  });

  it('a valid id survives a round trip through the wire as the data of a command', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }), (id) => {
        fc.pre(isValidCustomOid(id));
        const [line] = decode(4096, [bytes(encodeCommand('set-oid', id))]).lines;
        expect(parseCommand(line as string)).toEqual({ name: 'set-oid', data: id });
      }),
    );
  });
});
