// Value syntax of upstream noray's config: durations, byte sizes and port lists.
// Pure functions; each throws a ConfigValueError with a human-readable reason.

export class ConfigValueError extends Error {
  override name = 'ConfigValueError';
}

const NUMBER_WITH_UNIT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i;

function splitUnit(raw: string, what: string): [number, string] {
  if (/^\s*-/.test(raw)) throw new ConfigValueError(`a ${what} cannot be negative`);
  const match = NUMBER_WITH_UNIT.exec(raw);
  if (!match) throw new ConfigValueError(`expected a ${what} such as ${what === 'duration' ? '"30s"' : '"128kb"'}`);
  const value = Number(match[1]);
  // A few hundred digits overflow to Infinity, which no timer or limit can use.
  if (!Number.isFinite(value)) throw new ConfigValueError(`${what} ${JSON.stringify(raw.trim())} is too large`);
  return [value, (match[2] ?? '').toLowerCase()];
}

const DURATION_UNITS_MS: Record<string, number> = {
  '': 1000,
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  mo: 2_592_000_000,
  yr: 31_536_000_000,
};

/** Parses `500ms`, `30s`, `4hr`, ... into milliseconds. A bare number means seconds. */
export function parseDuration(raw: string): number {
  const [value, unit] = splitUnit(raw, 'duration');
  const factor = DURATION_UNITS_MS[unit];
  if (factor === undefined) {
    throw new ConfigValueError(`unknown duration unit "${unit}" (use us, ms, s, m, h, hr, d, w, mo, yr)`);
  }
  const ms = value * factor;
  if (!Number.isFinite(ms)) throw new ConfigValueError('duration is too large');
  return ms;
}

/** A duration usable as a timer delay: from 1 ms to 2^31-1 ms (about 24 days). */
export function parsePositiveDuration(raw: string): number {
  const ms = parseDuration(raw);
  if (ms < 1 || ms > 2 ** 31 - 1) throw new ConfigValueError('expected a duration from 1ms to 24d');
  return ms;
}

const BYTE_UNITS = ['b', 'kb', 'mb', 'gb', 'tb', 'pb'];

/** Parses `128kb`, `1Gb`, ... into bytes (powers of 1024). A bare number means bytes. */
export function parseByteSize(raw: string): number {
  const [value, unit] = splitUnit(raw, 'byte size');
  // Upstream also accepts "kbps" etc. for traffic limits; they mean the same.
  const base = unit === '' ? 'b' : unit.endsWith('ps') ? unit.slice(0, -2) || 'b' : unit;
  const power = BYTE_UNITS.indexOf(base === 'bps' ? 'b' : base);
  if (power < 0) throw new ConfigValueError(`unknown byte size unit "${unit}" (use b, kb, mb, gb, tb)`);
  const bytes = Math.round(value * 1024 ** power);
  if (!Number.isFinite(bytes)) throw new ConfigValueError('byte size is too large');
  return bytes;
}

function parsePortNumber(raw: string, allowZero: boolean): number {
  if (!/^\d+$/.test(raw)) throw new ConfigValueError(`"${raw}" is not a port number`);
  const port = Number(raw);
  if (port > 65535 || (!allowZero && port === 0)) {
    throw new ConfigValueError(`port ${raw} is out of range (${allowZero ? 0 : 1}-65535)`);
  }
  return port;
}

/** Parses a single port; 0 means "any free port". */
export function parsePort(raw: string): number {
  return parsePortNumber(raw.trim(), true);
}

/** A port that may be switched off with `off`: null means the part is disabled. */
export function parseOptionalPort(raw: string): number | null {
  const value = raw.trim().toLowerCase();
  if (value === 'off' || value === 'false' || value === 'disabled') return null;
  return parsePort(value);
}

const MAX_PORT_LIST = 65536;

/** Parses `49152-51200`, `2048+3`, `2048, 2049` (combinable) into sorted unique ports. */
export function parsePortList(raw: string): number[] {
  const ports = new Set<number>();
  const items = raw.split(',').map((item) => item.trim());
  for (const item of items) {
    if (item === '') throw new ConfigValueError('empty item in port list');
    let from: number;
    let to: number;
    const range = /^(\d+)\s*-\s*(\d+)$/.exec(item);
    const offset = /^(\d+)\s*\+\s*(\d+)$/.exec(item);
    if (range) {
      from = parsePortNumber(range[1] ?? '', false);
      to = parsePortNumber(range[2] ?? '', false);
      if (to < from) throw new ConfigValueError(`range "${item}" ends before it starts`);
    } else if (offset) {
      from = parsePortNumber(offset[1] ?? '', false);
      to = from + Number(offset[2]);
      if (to > 65535) throw new ConfigValueError(`range "${item}" goes past port 65535`);
    } else {
      from = to = parsePortNumber(item, false);
    }
    for (let port = from; port <= to && ports.size < MAX_PORT_LIST; port++) ports.add(port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** Port list or `off`. */
export function parseOptionalPortList(raw: string): number[] | null {
  const value = raw.trim().toLowerCase();
  if (value === 'off' || value === 'false' || value === 'disabled' || value === '') return null;
  return parsePortList(value);
}

export function parseInteger(raw: string, min: number, max: number): number {
  const value = raw.trim();
  if (!/^-?\d+$/.test(value)) throw new ConfigValueError('expected an integer');
  const n = Number(value);
  if (n < min || n > max) throw new ConfigValueError(`expected an integer from ${min} to ${max}`);
  return n;
}

export function parseBoolean(raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ConfigValueError('expected true or false');
}

export function parseHost(raw: string): string {
  const value = raw.trim();
  if (value === '' || /\s/.test(value)) throw new ConfigValueError('expected a host name or IP address');
  return value;
}

export function parseEnum<T extends string>(allowed: readonly T[]) {
  return (raw: string): T => {
    const value = raw.trim().toLowerCase();
    const found = allowed.find((candidate) => candidate === value);
    if (found === undefined) throw new ConfigValueError(`expected one of ${allowed.join(', ')}`);
    return found;
  };
}

export function parseCharset(raw: string): string {
  const chars = [...new Set(raw)];
  if (chars.length < 2) throw new ConfigValueError('a charset needs at least 2 distinct characters');
  // The id generator draws one random byte per character, so it supports at most 256.
  if (chars.length > 256) throw new ConfigValueError('a charset may have at most 256 distinct characters');
  if (chars.some((c) => /\s/.test(c))) throw new ConfigValueError('a charset may not contain whitespace');
  return chars.join('');
}
