// The noray TCP control channel's wire format: text lines of `COMMAND` or `COMMAND SP DATA`.
// Pure: no sockets, no imports of ours.

export interface Command {
  readonly name: string;
  /** Everything after the first space; '' when the line has none. */
  readonly data: string;
}

export type DecodeResult =
  | { readonly ok: true; readonly lines: string[] }
  | { readonly ok: false; readonly lines: string[]; readonly error: 'line_too_long' };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines ended by LF, CRLF or a lone CR, across any segmentation.
 * Empty lines are skipped. A line longer than `maxLineLength` bytes is an error; after it
 * the decoder yields nothing more.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private failed = false;

  constructor(private readonly maxLineLength: number) {}

  push(chunk: Buffer): DecodeResult {
    const lines: string[] = [];
    if (this.failed) return { ok: false, lines, error: 'line_too_long' };
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== LF && byte !== CR) continue;
      const length = this.pendingLength + (i - start);
      if (length > this.maxLineLength) return this.fail(lines);
      if (length > 0) lines.push(this.take(chunk.subarray(start, i)));
      start = i + 1;
    }
    if (start < chunk.length) {
      if (this.pendingLength + (chunk.length - start) > this.maxLineLength) return this.fail(lines);
      // Copy: a view would keep the whole (up to 64 KiB) socket chunk alive for a few bytes.
      this.pending.push(Buffer.from(chunk.subarray(start)));
      this.pendingLength += chunk.length - start;
    }
    return { ok: true, lines };
  }

  /** Bytes held for an unfinished line. */
  get buffered(): number {
    return this.pendingLength;
  }

  private take(tail: Buffer): string {
    if (this.pendingLength === 0) return tail.toString('utf8');
    this.pending.push(tail);
    const line = Buffer.concat(this.pending).toString('utf8');
    this.pending = [];
    this.pendingLength = 0;
    return line;
  }

  private fail(lines: string[]): DecodeResult {
    this.failed = true;
    this.pending = [];
    this.pendingLength = 0;
    return { ok: false, lines, error: 'line_too_long' };
  }
}

export function parseCommand(line: string): Command {
  const space = line.indexOf(' ');
  return space < 0 ? { name: line, data: '' } : { name: line.slice(0, space), data: line.slice(space + 1) };
}

/** One outgoing line, LF only (the Godot client splits on LF and keeps any CR). */
export function encodeCommand(name: string, data?: string | number): string {
  const text = data === undefined || data === '' ? name : `${name} ${data}`;
  // Never let a reason or echo smuggle a line break into the stream.
  return `${text.replace(/[\r\n]/g, ' ')}\n`;
}

/** A host-chosen OpenID: 1..64 characters, no whitespace or control characters. */
export function isValidCustomOid(id: string): boolean {
  // Only ids already in NFKC form: compatibility lookalikes (fullwidth letters, ligatures,
  // decomposed accents) would otherwise name a second lobby that reads the same as the first.
  // U+FFFD is what invalid UTF-8 in the line decodes to.
  return /^[^\s\p{C}\uFFFD]{1,64}$/u.test(id) && id.normalize('NFKC') === id;
}
