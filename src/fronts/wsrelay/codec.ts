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
 * exact text (lossless-json), so integers of any size arrive exactly as sent.
 */
export function stampClientId(text: string, clientId: string): Stamped {
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

/** The notice the server gets when a client logs in or leaves. */
export function notice(action: 'connect' | 'disconnect', clientId: string): string {
  return JSON.stringify({ action, client_id: clientId });
}
