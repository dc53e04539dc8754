// The lobby's message format, `method:BASE64(JSON object)`, for clients: the same format as the
// server's codec (src/fronts/lobby/codec.ts) but with TextEncoder and atob/btoa instead of
// Buffer, so it runs in browsers. Pure and bounded: never throws, refuses input over maxChars.

export const DEFAULT_MAX_MESSAGE_CHARS = 64 * 1024;
const METHOD_PATTERN = /^[A-Za-z0-9_]{1,64}$/;
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export type LobbyMessage = { readonly method: string; readonly payload: Record<string, unknown> };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  // In slices: String.fromCharCode(...all) overflows the argument limit on large input.
  for (let at = 0; at < bytes.length; at += 0x2000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x2000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function encodeLobbyMessage(method: string, payload: object): string {
  return `${method}:${toBase64(encoder.encode(JSON.stringify(payload)))}`;
}

/** The message in a frame or datagram text, or null when it is not one (or longer than maxChars). */
export function decodeLobbyMessage(text: string, maxChars = DEFAULT_MAX_MESSAGE_CHARS): LobbyMessage | null {
  if (text.length > maxChars) return null;
  const colon = text.indexOf(':');
  if (colon < 0) return null;
  const method = text.slice(0, colon);
  const encoded = text.slice(colon + 1).trim();
  if (!METHOD_PATTERN.test(method) || !BASE64_PATTERN.test(encoded)) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(fromBase64(encoded)));
  } catch {
    return null;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  return { method, payload: payload as Record<string, unknown> };
}
