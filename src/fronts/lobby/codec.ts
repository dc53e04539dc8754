/**
 * Orion's message format, `method:BASE64(JSON object)`, used by WebSocket frames both ways and
 * by UDP datagrams from clients. Pure: no sockets, no imports, never throws.
 */

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_METHOD_LENGTH = 64;
const METHOD_PATTERN = /^[A-Za-z0-9_]+$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type DecodeError =
  | 'too_long'
  | 'not_utf8'
  | 'no_separator'
  | 'bad_method'
  | 'bad_base64'
  | 'bad_json'
  | 'not_an_object';

export type DecodeResult =
  | { readonly ok: true; readonly method: string; readonly payload: Record<string, unknown> }
  | { readonly ok: false; readonly error: DecodeError };

export interface DecodeLimits {
  /** Largest accepted message, in bytes (for text input: UTF-16 code units, a close upper bound). */
  readonly maxBytes?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a text frame, or the UTF-8 bytes of a binary frame or datagram. */
export function decodeMessage(input: string | Uint8Array, limits: DecodeLimits = {}): DecodeResult {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (input.length > maxBytes) return { ok: false, error: 'too_long' };
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = utf8.decode(input);
    } catch {
      return { ok: false, error: 'not_utf8' };
    }
  }

  const colon = text.indexOf(':');
  if (colon < 0) return { ok: false, error: 'no_separator' };
  const method = text.slice(0, colon);
  if (method.length === 0 || method.length > MAX_METHOD_LENGTH || !METHOD_PATTERN.test(method)) {
    return { ok: false, error: 'bad_method' };
  }
  const encoded = text.slice(colon + 1).trim();
  if (!BASE64_PATTERN.test(encoded)) return { ok: false, error: 'bad_base64' };

  let json: string;
  try {
    json = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    return { ok: false, error: 'not_utf8' };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch {
    return { ok: false, error: 'bad_json' };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { ok: false, error: 'not_an_object' };
  }
  return { ok: true, method, payload: payload as Record<string, unknown> };
}

/** `method:BASE64(JSON)`, standard padded base64 of the UTF-8 JSON text. */
export function encodeMessage(method: string, payload: object): string {
  return `${method}:${Buffer.from(JSON.stringify(payload), 'utf8').toString('base64')}`;
}
