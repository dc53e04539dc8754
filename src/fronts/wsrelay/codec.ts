// CarParty relay message rules, pure: no sockets, never throws.
import { isLosslessNumber, parse as parseLossless, stringify as stringifyLossless } from 'lossless-json';

export type Login =
  | { readonly role: 'server'; readonly code: string }
  | { readonly role: 'client'; readonly code: string; readonly clientId: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Text of a frame: text frames are validated UTF-8 by ws already; binary ones may not be UTF-8. */
export function frameText(data: Uint8Array): string | null {
  try {
    return utf8.decode(data);
  } catch {
    return null;
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** The first message of a connection; null means "close silently". Extra fields are ignored. */
export function parseLogin(text: string): Login | null {
  const login = parseObject(text);
  if (login === null) return null;
  const code = login.server_code;
  if (typeof code !== 'string') return null;
  if (login.action === 'login_server') return { role: 'server', code };
  if (login.action === 'login_client') {
    const clientId = login.client_id;
    return typeof clientId === 'string' ? { role: 'client', code, clientId } : null;
  }
  return null;
}

/** Who gets a server message: every client, the clients with one id, or nobody. */
export type Target = { readonly kind: 'all' } | { readonly kind: 'id'; readonly id: string } | { readonly kind: 'none' };

const ALL: Target = { kind: 'all' };
const NONE: Target = { kind: 'none' };

/** Decides once per server message who receives it; the message itself is forwarded unchanged. */
export function targetOf(text: string): Target {
  // Only an object can carry receiver_id; skip parsing anything else.
  let i = 0;
  while (i < text.length && isJsonSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 0x7b /* { */) return ALL;
  const message = parseObject(text);
  if (message === null || !Object.hasOwn(message, 'receiver_id')) return ALL;
  const receiver = message.receiver_id;
  return typeof receiver === 'string' ? { kind: 'id', id: receiver } : NONE;
}

function isJsonSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

export type Stamped =
  | { readonly kind: 'object'; readonly text: string }
  | { readonly kind: 'not-object' }
  | { readonly kind: 'invalid' };

const NOT_OBJECT: Stamped = { kind: 'not-object' };
const INVALID: Stamped = { kind: 'invalid' };

/**
 * A client message as the server gets it: `client_id` set to the sender's id. Numbers keep their
 * exact text, so integers of any size arrive exactly as sent.
 *
 * The output is what `stampClientIdByParsing` (parse with lossless-json, set the key,
 * re-serialise) gives, but built by one streaming scan that copies the message's text and only
 * rewrites what re-serialising would change (whitespace, escapes JSON.stringify would not write,
 * the `client_id` member), so a big message costs a pass over its characters and no value tree.
 * Shapes whose re-serialisation would reorder or merge members (duplicate keys other than
 * `client_id`, integer-like keys, which JavaScript objects list first) and nesting deeper than
 * `MAX_SCAN_DEPTH` take the parsing path.
 */
export function stampClientId(text: string, clientId: string): Stamped {
  return scanAndStamp(text, clientId, true) ?? stampClientIdByParsing(text, clientId);
}

/**
 * The same scan without its native match of array runs: every character by the loop. The
 * reference the fast path is tested and benchmarked against (test/wsrelay).
 */
export function stampClientIdPerCharacter(text: string, clientId: string): Stamped {
  return scanAndStamp(text, clientId, false) ?? stampClientIdByParsing(text, clientId);
}

/** The reference implementation (and the fallback for the shapes the scan leaves to it). */
export function stampClientIdByParsing(text: string, clientId: string): Stamped {
  let value: unknown;
  try {
    // Duplicate keys: the last one wins, as with JSON.parse and the original's serde_json.
    value = parseLossless(text, null, { onDuplicateKey: ({ newValue }) => newValue });
  } catch {
    return INVALID;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || isLosslessNumber(value)) {
    return NOT_OBJECT;
  }
  const message = value as Record<string, unknown>;
  message.client_id = clientId;
  try {
    const out = stringifyLossless(message);
    return out === undefined ? INVALID : { kind: 'object', text: out };
  } catch {
    return INVALID;
  }
}

/** Deeper nesting goes to the parsing path (which gives up on very deep nesting as it always did). */
export const MAX_SCAN_DEPTH = 256;

const CLIENT_ID_KEY = '"client_id"';
const ARRAY = 0;
const OBJECT = 1;

/** End of the JSON string starting at `start` (its opening quote), -1 if invalid. */
function scanString(text: string, start: number, flags: { rewrite: boolean }): number {
  let j = start + 1;
  for (;;) {
    // Short runs by hand; in a long one the regex finds the next character worth a look.
    const stop = j + 16;
    let c = text.charCodeAt(j);
    while (j < stop && c >= 0x20 && c !== 0x22 && c !== 0x5c && (c < 0xd800 || c > 0xdfff)) c = text.charCodeAt(++j);
    if (j === stop) {
      STRING_SPECIAL.lastIndex = j;
      if (STRING_SPECIAL.exec(text) === null) return -1;
      j = STRING_SPECIAL.lastIndex - 1;
      c = text.charCodeAt(j);
    }
    if (Number.isNaN(c)) return -1;
    if (c === 0x22) return j + 1;
    if (c === 0x5c) {
      const e = text.charCodeAt(j + 1);
      // \" \\ \b \f \n \r \t are what JSON.stringify writes; \/ and \u are rewritten.
      if (e === 0x22 || e === 0x5c || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        j += 2;
      } else if (e === 0x2f) {
        flags.rewrite = true;
        j += 2;
      } else if (e === 0x75) {
        if (!isHex(text.charCodeAt(j + 2)) || !isHex(text.charCodeAt(j + 3)) || !isHex(text.charCodeAt(j + 4)) || !isHex(text.charCodeAt(j + 5))) {
          return -1;
        }
        flags.rewrite = true;
        j += 6;
      } else {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(j + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) j += 2;
      else {
        // A lone surrogate: JSON.stringify writes it as \uXXXX.
        flags.rewrite = true;
        j++;
      }
    }
  }
}

/**
 * Up to 4096 comma-separated array elements that are copied unchanged: JSON numbers, literals and
 * strings without escapes, control characters or surrogates (bounded so the match's backtracking
 * state stays small; the scan goes on with another run).
 */
const SCALAR = String.raw`-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|"[^"\\\u0000-\u001f\ud800-\udfff]*"|true|false|null`;
const SCALAR_RUN = new RegExp(`(?:${SCALAR})(?:,(?:${SCALAR})){0,4095}`, 'y');

/** What ends or needs a look inside a string: quote, backslash, control characters, surrogates. */
const STRING_SPECIAL = /["\\\u0000-\u001f\ud800-\udfff]/g;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** End of the JSON number starting at `start`, -1 if invalid. */
function scanNumber(text: string, start: number): number {
  let j = start;
  if (text.charCodeAt(j) === 0x2d) j++;
  const first = text.charCodeAt(j);
  if (first === 0x30) j++;
  else if (first >= 0x31 && first <= 0x39) {
    j++;
    while (isDigit(text.charCodeAt(j))) j++;
  } else return -1;
  if (text.charCodeAt(j) === 0x2e) {
    j++;
    if (!isDigit(text.charCodeAt(j))) return -1;
    while (isDigit(text.charCodeAt(j))) j++;
  }
  const e = text.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    j++;
    const sign = text.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigit(text.charCodeAt(j))) return -1;
    while (isDigit(text.charCodeAt(j))) j++;
  }
  return j;
}

/** A key JavaScript objects list before the others (an array index), which re-serialising reorders. */
function isIndexKey(key: string): boolean {
  const n = key.length;
  if (n === 0 || n > 10) return false;
  if (key === '0') return true;
  if (key.charCodeAt(0) === 0x30) return false;
  for (let k = 0; k < n; k++) if (!isDigit(key.charCodeAt(k))) return false;
  return Number(key) <= 4294967294;
}

/**
 * The streaming stamp: null means "take the parsing path". Copies spans of the input, skipping
 * whitespace and replacing strings that JSON.stringify would write differently; at the top level it
 * replaces the first `client_id` value, drops later `client_id` members and otherwise appends one.
 */
function scanAndStamp(text: string, clientId: string, arrayRuns: boolean): Stamped | null {
  const n = text.length;
  let i = 0;
  const out: string[] = [];
  /** Start of the input not yet copied (or skipped). */
  let from = 0;
  /** While set, spans are skipped instead of copied: a non-object, or a replaced member's value. */
  let suppress = false;
  const flush = (to: number): void => {
    if (!suppress && to > from) out.push(text.slice(from, to));
    from = to;
  };
  const skipSpace = (): void => {
    if (i < n && isJsonSpace(text.charCodeAt(i))) {
      flush(i);
      while (i < n && isJsonSpace(text.charCodeAt(i))) i++;
      from = i;
    }
  };
  const flags = { rewrite: false };

  const kinds: number[] = [];
  const keySets: (Set<string> | null)[] = [];
  skipSpace();
  const isObject = text.charCodeAt(i) === 0x7b;
  if (!isObject) suppress = true;
  const stamp = JSON.stringify(clientId);
  let topMembers = 0;
  let stamped = false;
  /** The first top-level client_id's value is being replaced (or a later one dropped). */
  let replacing = false;
  /** out.length before the comma of the current top-level member, to drop it with the member. */
  let commaMark = 0;

  // Each turn of the loop reads one value at i (whitespace skipped) and what follows it.
  let expectKey = false;
  for (;;) {
    if (expectKey) {
      // At a key of the object on top of the stack.
      if (text.charCodeAt(i) !== 0x22) return INVALID;
      const start = i;
      flags.rewrite = false;
      const end = scanString(text, start, flags);
      if (end < 0) return INVALID;
      let key: string;
      if (flags.rewrite) {
        const decoded = JSON.parse(text.slice(start, end)) as string;
        key = JSON.stringify(decoded);
        if (isObject && isIndexKey(decoded)) return null;
        if (!suppress) {
          flush(start);
          out.push(key);
        }
        from = end;
      } else {
        key = text.slice(start, end);
        if (isObject && isDigit(key.charCodeAt(1)) && isIndexKey(key.slice(1, -1))) return null;
      }
      i = end;
      const depth = kinds.length;
      const set = keySets[depth - 1];
      if (isObject && set !== null && set !== undefined) {
        if (set.has(key)) {
          if (depth !== 1 || key !== CLIENT_ID_KEY) return null;
          // A later client_id: dropped with its comma.
          flush(start);
          out.length = commaMark;
          suppress = true;
          replacing = true;
        } else {
          set.add(key);
        }
      }
      if (depth === 1) topMembers++;
      skipSpace();
      if (text.charCodeAt(i) !== 0x3a) return INVALID;
      i++;
      skipSpace();
      if (depth === 1 && key === CLIENT_ID_KEY && !replacing && isObject) {
        flush(i);
        out.push(stamp);
        stamped = true;
        suppress = true;
        replacing = true;
      }
      expectKey = false;
    }

    // A value at i.
    const c = text.charCodeAt(i);
    let closed = false;
    if (arrayRuns && kinds[kinds.length - 1] === ARRAY && c !== 0x7b && c !== 0x5b && (SCALAR_RUN.lastIndex = i, SCALAR_RUN.test(text))) {
      // Array elements that need no rewriting (numbers, literals, plain strings, commas between
      // them): one native match over the run, copied as it is.
      i = SCALAR_RUN.lastIndex;
    } else if (c === 0x7b || c === 0x5b) {
      if (kinds.length >= MAX_SCAN_DEPTH) return null;
      const kind = c === 0x7b ? OBJECT : ARRAY;
      kinds.push(kind);
      keySets.push(kind === OBJECT && isObject ? new Set<string>() : null);
      i++;
      skipSpace();
      const close = text.charCodeAt(i);
      if ((kind === OBJECT && close === 0x7d) || (kind === ARRAY && close === 0x5d)) {
        closed = true;
      } else if (kind === OBJECT) {
        expectKey = true;
        continue;
      } else {
        continue;
      }
    } else if (c === 0x22) {
      flags.rewrite = false;
      const end = scanString(text, i, flags);
      if (end < 0) return INVALID;
      if (flags.rewrite && !suppress) {
        flush(i);
        out.push(JSON.stringify(JSON.parse(text.slice(i, end)) as string));
        from = end;
      }
      i = end;
    } else if (c === 0x2d || isDigit(c)) {
      const end = scanNumber(text, i);
      if (end < 0) return INVALID;
      i = end;
    } else if (text.startsWith('true', i)) i += 4;
    else if (text.startsWith('false', i)) i += 5;
    else if (text.startsWith('null', i)) i += 4;
    else return INVALID;

    // After a value: close containers, or find the next member.
    for (;;) {
      if (closed) {
        // The closing bracket is at i.
        if (kinds.length === 1 && isObject && !stamped) {
          flush(i);
          out.push(topMembers > 0 ? `,"client_id":${stamp}` : `"client_id":${stamp}`);
          stamped = true;
        }
        kinds.pop();
        keySets.pop();
        i++;
        closed = false;
      }
      const depth = kinds.length;
      if (depth === 1 && replacing && isObject) {
        // The end of the replaced or dropped top-level member's value.
        from = i;
        suppress = false;
        replacing = false;
      }
      if (depth === 0) {
        skipSpace();
        if (i !== n) return INVALID;
        if (!isObject) return NOT_OBJECT;
        flush(n);
        return { kind: 'object', text: out.join('') };
      }
      skipSpace();
      const d = text.charCodeAt(i);
      const kind = kinds[depth - 1];
      if (d === 0x2c) {
        if (depth === 1 && !suppress) {
          flush(i);
          commaMark = out.length;
        }
        i++;
        skipSpace();
        expectKey = kind === OBJECT;
        break;
      }
      if ((kind === OBJECT && d === 0x7d) || (kind === ARRAY && d === 0x5d)) {
        closed = true;
        continue;
      }
      return INVALID;
    }
  }
}

/** The notice the server gets when a client logs in or leaves. */
export function notice(action: 'connect' | 'disconnect', clientId: string): string {
  return JSON.stringify({ action, client_id: clientId });
}
